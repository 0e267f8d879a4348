//! Signals, received through a signalfd in the event loop: SIGINT, SIGTERM
//! and SIGHUP end the switch after cleanup (then it dies by the signal);
//! SIGUSR1 prints the counters. SIGPIPE is ignored by the Rust runtime.

use std::fs::File;
use std::io::{self, Read};
use std::os::fd::BorrowedFd;

use nix::sys::signal::{SigSet, Signal};
#[allow(deprecated)]
use nix::sys::signalfd::{signalfd, SfdFlags};
use uml_common::sys::fd::move_high;

/// The signals the switch handles.
pub const HANDLED: [Signal; 4] = [
    Signal::SIGINT,
    Signal::SIGTERM,
    Signal::SIGHUP,
    Signal::SIGUSR1,
];

/// Blocks the handled signals (so that they wait for the signalfd) and
/// returns their set.
pub fn block_handled() -> nix::Result<SigSet> {
    let mut mask = SigSet::empty();
    for s in HANDLED {
        mask.add(s);
    }
    mask.thread_block()?;
    Ok(mask)
}

/// A non-blocking signalfd for `mask`, its descriptor at `high_fd` or
/// above.
pub fn open_signalfd(mask: &SigSet, high_fd: i32) -> io::Result<File> {
    // nix's SignalFd cannot be rebuilt from a moved descriptor, hence the
    // plain (deprecated) constructor.
    #[allow(deprecated)]
    let fd = signalfd(
        None::<BorrowedFd<'_>>,
        mask,
        SfdFlags::SFD_NONBLOCK | SfdFlags::SFD_CLOEXEC,
    )
    .map_err(io::Error::from)?;
    move_high(fd, high_fd).map(File::from)
}

/// The next pending signal's number, if any.
pub fn next(signals: &mut File) -> Option<i32> {
    // struct signalfd_siginfo is 128 bytes; ssi_signo is its first u32.
    let mut info = [0u8; 128];
    match signals.read(&mut info) {
        Ok(128) => Some(u32::from_ne_bytes([info[0], info[1], info[2], info[3]]) as i32),
        _ => None,
    }
}
