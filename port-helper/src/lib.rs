//! `port-helper`: hands a terminal to the UML kernel, a drop-in
//! replacement for Debian's `/usr/lib/uml/port-helper` (`docs/helpers.md`
//! §1).
//!
//! * **Telnet mode** (no arguments, or any first argument other than
//!   `-uml-socket`): run by `in.telnetd -L <helper>` for a `port:` console
//!   channel, with the pty slave as stdin/stdout/stderr and fd 3 one end of
//!   a datagram socketpair whose other end the kernel holds.
//! * **Socket mode** (`-uml-socket PATH`): run by the terminal emulator of
//!   an `xterm` channel; the helper binds a datagram socket to the abstract
//!   name `"\0" + printf("%5d", pid)` and connects it to `PATH`, where the
//!   kernel waits.
//!
//! Then, as the C helper: ignore `SIGHUP`, give up the controlling
//! terminal (`TIOCNOTTY`; a failure is reported and ignored), send one
//! datagram on the channel — the 4-byte pid as data and fd 0 as
//! `SCM_RIGHTS` (errors ignored) — and wait.
//!
//! Differences from the C helper: every inherited descriptor other than
//! 0–2 (and fd 3 in telnet mode) is closed first, so a helper never keeps
//! the UML's listening port (or anything else of the kernel's) open; the
//! helper exits once its terminal hangs up (the telnet session or the
//! terminal window is gone) instead of pausing forever; `-uml-socket`
//! without a path prints a usage line (the C helper dereferences NULL).

#![forbid(unsafe_code)]

#[cfg(feature = "clap-command")]
pub mod command;
mod error;
mod seccomp;

use std::ffi::{OsStr, OsString};
use std::io::{self, IoSlice, Write};
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, RawFd};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::net::UnixDatagram;
use std::path::{Path, PathBuf};

use nix::errno::Errno;
use nix::poll::{PollFd, PollFlags, PollTimeout};
use nix::sys::socket::{
    bind, sendmsg, socket, AddressFamily, ControlMessage, MsgFlags, SockFlag, SockType, UnixAddr,
};
use uml_common::mconsole::client_abstract_name;
use uml_common::sys::process::{
    close_fds_from, give_up_controlling_tty, set_disposition, Disposition,
};

pub use crate::error::Error;

/// The channel descriptor the kernel sets up in telnet mode.
pub const TELNET_CHANNEL_FD: RawFd = 3;

/// The terminal handed to the kernel.
pub const TERMINAL_FD: RawFd = 0;

/// Printed for `-uml-socket` without a path.
pub const USAGE: &str = "Usage : port-helper [-uml-socket socket-path]\n";

/// Every option [`parse_args`] knows (only as the first argument): the C
/// helper's `-uml-socket`. Packaging's tests check that this is the set of
/// options in the description (`command.rs`).
pub const OPTIONS: &[&str] = &["-uml-socket"];

/// Whether `arg` is option `name`; only the names in [`OPTIONS`] ever
/// match, so the parser cannot accept an option that is not listed.
fn is_option(arg: &OsStr, name: &str) -> bool {
    OPTIONS.contains(&name) && arg.as_bytes() == name.as_bytes()
}

/// Where the channel to the kernel comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Mode {
    /// Inherited as fd 3.
    Telnet,
    /// A datagram socket connected to this path.
    Socket(PathBuf),
}

/// Parses the arguments after the program name; `None`: usage.
pub fn parse_args(args: &[OsString]) -> Option<Mode> {
    match args {
        [first, rest @ ..] if is_option(first, "-uml-socket") => {
            rest.first().map(|p| Mode::Socket(PathBuf::from(p)))
        }
        // The C helper looks at nothing else.
        _ => Some(Mode::Telnet),
    }
}

/// Socket mode's channel: an `AF_UNIX` datagram socket bound to the
/// abstract name of `pid` (the naming `uml_mconsole` uses, addrlen 110)
/// and connected to `path`. The error names the failed call, as the C
/// helper's `perror`.
pub fn open_socket_channel(path: &Path, pid: u32) -> Result<UnixDatagram, Error> {
    let fd = socket(
        AddressFamily::Unix,
        SockType::Datagram,
        SockFlag::SOCK_CLOEXEC,
        None,
    )
    .map_err(|e| Error::Channel("socket", e.into()))?;
    let addr = UnixAddr::new_abstract(&client_abstract_name(pid))
        .map_err(|e| Error::Channel("bind", e.into()))?;
    bind(fd.as_raw_fd(), &addr).map_err(|e| Error::Channel("bind", e.into()))?;
    let sock = UnixDatagram::from(fd);
    sock.connect(path)
        .map_err(|e| Error::Channel("connect", e))?;
    Ok(sock)
}

/// Sends the one message the kernel expects on `channel`: `pid` as 4
/// host-order bytes, `terminal` as `SCM_RIGHTS`.
pub fn send_terminal(channel: RawFd, terminal: RawFd, pid: u32) -> io::Result<()> {
    let data = pid.to_ne_bytes();
    let fds = [terminal];
    sendmsg::<()>(
        channel,
        &[IoSlice::new(&data)],
        &[ControlMessage::ScmRights(&fds)],
        MsgFlags::empty(),
        None,
    )?;
    Ok(())
}

/// How the wait on the terminal ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ended {
    /// The terminal hung up (its other side is closed).
    HungUp,
    /// The terminal descriptor is not open.
    NoTerminal,
    /// The seccomp self-test came back with this status (`seccomp.rs`).
    SelfTest(i32),
}

/// Waits until `terminal` hangs up. Its data is left alone (it belongs to
/// the kernel): only `POLLHUP` (or `POLLNVAL`) ends the wait, so a
/// terminal in use, or one that never hangs up (not a tty), keeps the
/// helper waiting as the C helper's `pause()` did.
pub fn wait_for_hangup(terminal: BorrowedFd<'_>) -> io::Result<Ended> {
    loop {
        let mut fds = [PollFd::new(terminal, PollFlags::empty())];
        match nix::poll::poll(&mut fds, PollTimeout::NONE) {
            Ok(_) => {}
            Err(Errno::EINTR) => continue,
            Err(e) => return Err(e.into()),
        }
        let revents = fds[0].revents().unwrap_or(PollFlags::empty());
        if revents.contains(PollFlags::POLLNVAL) {
            return Ok(Ended::NoTerminal);
        }
        if revents.contains(PollFlags::POLLHUP) {
            return Ok(Ended::HungUp);
        }
    }
}

/// The program, `argv` including the program name. Returns the exit
/// status: 0 after a hang-up, 1 on a set-up error (socket mode) or when
/// there is no terminal to watch.
pub fn uumain(argv: impl IntoIterator<Item = OsString>) -> i32 {
    let args: Vec<OsString> = argv.into_iter().skip(1).collect();
    match run(&args) {
        Ok(Ended::HungUp) => 0,
        Ok(Ended::NoTerminal) => 1,
        Ok(Ended::SelfTest(status)) => status,
        Err(e) => {
            let _ = writeln!(io::stderr(), "{e}");
            e.exit_code()
        }
    }
}

/// Everything after the command line: returns how the wait ended.
fn run(args: &[OsString]) -> Result<Ended, Error> {
    let mode = parse_args(args).ok_or(Error::Usage)?;
    // Before anything is opened: keep the terminal (0–2) and, in telnet
    // mode, the kernel's channel; close everything else the kernel,
    // in.telnetd or the terminal emulator left us (the UML's listening
    // socket among them).
    let keep: &[RawFd] = match mode {
        Mode::Telnet => &[TELNET_CHANNEL_FD],
        Mode::Socket(_) => &[],
    };
    let _ = close_fds_from(3, keep);

    let pid = std::process::id();
    let socket;
    let channel = match &mode {
        Mode::Telnet => TELNET_CHANNEL_FD,
        Mode::Socket(path) => {
            socket = open_socket_channel(path, pid)?;
            socket.as_raw_fd()
        }
    };

    let _ = set_disposition(libc::SIGHUP, Disposition::Ignore);
    let terminal = io::stdin();
    if let Err(e) = give_up_controlling_tty(terminal.as_fd()) {
        // A warning, as in C: the helper goes on.
        let _ = writeln!(io::stderr(), "{}", Error::NoTty(e));
    }
    // Set up: from here on, only the allow-list of seccomp.rs.
    if let Some(status) = seccomp::confine()? {
        return Ok(Ended::SelfTest(status));
    }
    // As in C, a failed send is not reported: the kernel notices.
    let _ = send_terminal(channel, TERMINAL_FD, pid);

    // A failed wait (never seen) ends the helper like a closed terminal,
    // silently: its stderr is the terminal being watched.
    Ok(wait_for_hangup(terminal.as_fd()).unwrap_or(Ended::NoTerminal))
}

#[cfg(test)]
mod tests {
    use super::*;
    use nix::sys::socket::{recvmsg, ControlMessageOwned};
    use std::io::IoSliceMut;
    use std::os::linux::net::SocketAddrExt;
    use std::os::unix::fs::MetadataExt;
    use std::time::Duration;

    fn args(list: &[&str]) -> Vec<OsString> {
        list.iter().map(OsString::from).collect()
    }

    #[test]
    fn modes() {
        assert_eq!(parse_args(&args(&[])), Some(Mode::Telnet));
        assert_eq!(parse_args(&args(&["foo", "bar"])), Some(Mode::Telnet));
        assert_eq!(
            parse_args(&args(&["-uml-socket", "/tmp/xterm-pipeAb12Cd"])),
            Some(Mode::Socket("/tmp/xterm-pipeAb12Cd".into()))
        );
        assert_eq!(parse_args(&args(&["-uml-socket"])), None);
    }

    /// A descriptor received in a test: its (device, inode); it is closed.
    fn identity(fd: RawFd) -> (u64, u64) {
        let st = nix::sys::stat::fstat(fd).unwrap();
        let _ = nix::unistd::close(fd);
        (st.st_dev, st.st_ino)
    }

    /// Receives one message: its data and the descriptors it carried.
    fn receive(sock: &UnixDatagram) -> (Vec<u8>, Vec<RawFd>) {
        let mut data = [0u8; 64];
        let mut cmsg = nix::cmsg_space!([RawFd; 4]);
        let mut iov = [IoSliceMut::new(&mut data)];
        let msg = recvmsg::<()>(
            sock.as_raw_fd(),
            &mut iov,
            Some(&mut cmsg),
            MsgFlags::empty(),
        )
        .unwrap();
        let mut fds = Vec::new();
        for c in msg.cmsgs().unwrap() {
            if let ControlMessageOwned::ScmRights(v) = c {
                fds.extend(v);
            }
        }
        let n = msg.bytes;
        (data[..n].to_vec(), fds)
    }

    #[test]
    fn h1_message_is_pid_and_one_fd() {
        let (kernel, helper) = UnixDatagram::pair().unwrap();
        let file = std::fs::File::open("/dev/null").unwrap();
        send_terminal(helper.as_raw_fd(), file.as_raw_fd(), 4242).unwrap();
        let (data, fds) = receive(&kernel);
        assert_eq!(data, [0x92, 0x10, 0x00, 0x00]);
        assert_eq!(fds.len(), 1);
        let b = file.metadata().unwrap();
        assert_eq!(identity(fds[0]), (b.dev(), b.ino()));
    }

    #[test]
    fn h2_socket_mode_binds_the_abstract_name_and_connects() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("xterm-pipe");
        let kernel = UnixDatagram::bind(&path).unwrap();
        // A pid nobody in this network namespace binds as a client name.
        let chan = open_socket_channel(&path, 4_000_001).unwrap();
        let local = chan.local_addr().unwrap();
        let name = local.as_abstract_name().unwrap();
        assert_eq!(name.len(), 107);
        assert_eq!(&name[..7], b"4000001");
        assert!(name[7..].iter().all(|&b| b == 0));
        send_terminal(chan.as_raw_fd(), 0, 4242).unwrap();
        kernel
            .set_read_timeout(Some(Duration::from_secs(5)))
            .unwrap();
        let (data, fds) = receive(&kernel);
        assert_eq!((data.len(), fds.len()), (4, 1));
        identity(fds[0]);

        let short = open_socket_channel(&path, 4242).unwrap();
        let name = short.local_addr().unwrap();
        let name = name.as_abstract_name().unwrap();
        assert_eq!(&name[..5], b" 4242");
    }

    #[test]
    fn socket_mode_errors_are_perror_texts() {
        let dir = tempfile::tempdir().unwrap();
        let e = open_socket_channel(&dir.path().join("nope"), 4_000_002).unwrap_err();
        assert_eq!(e.to_string(), "connect: No such file or directory");
        assert_eq!(e.exit_code(), 1);
    }

    #[test]
    fn hangup_ends_the_wait_and_use_does_not() {
        let pty = nix::pty::openpty(None, None).unwrap();
        let (master, slave) = (pty.master, pty.slave);
        let waiter = std::thread::spawn(move || wait_for_hangup(slave.as_fd()).unwrap());
        // Traffic in both directions is not a hang-up.
        let mut m = std::fs::File::from(master);
        m.write_all(b"ls\n").unwrap();
        std::thread::sleep(Duration::from_millis(200));
        assert!(!waiter.is_finished());
        drop(m);
        assert_eq!(waiter.join().unwrap(), Ended::HungUp);
    }

    #[test]
    fn notty_text() {
        let e = io::Error::from_raw_os_error(libc::ENOTTY);
        assert_eq!(
            Error::NoTty(e).to_string(),
            "TIOCNOTTY failed in port-helper, check UML's exec call for xterm or telnetd: \
             Inappropriate ioctl for device"
        );
    }
}
