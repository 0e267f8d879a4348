//! `bess-relay PATH`: the least a switch serving bess guests must do, to
//! measure what any such switch could reach in `scripts/bench-guests`.
//!
//! It is NOT a switch to use: it listens on the `SOCK_SEQPACKET` socket
//! PATH (the vector driver's `transport=bess`, `docs/vector.md` §2),
//! accepts exactly two connections (then removes PATH), and forwards every
//! message of one to the other: one `recvmmsg` of up to `--depth` frames
//! (64, the guests' own batch), then `sendmmsg` of the same buffers,
//! unchanged and uncopied. No MAC table, no port bookkeeping, no counters,
//! no epoll: one `poll` on the two connections while idle. When the
//! receiver's queue is full it waits for it (`poll` for `POLLOUT`, at most
//! 10 ms, then that frame is dropped). It ends (status 0) when either
//! guest disconnects, saying how many frames it dropped; signals just end
//! it.

use std::io;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
use uml_common::sys::mmsg::{ForwardBatch, RecvBatch};
use uml_common::sys::seqpacket;

/// Largest message accepted: a guest's frame with `mtu=65535`, `gro=1`.
const BUF_LEN: usize = 65552;
/// Batches received from one connection before the other gets a turn.
const ROUNDS: usize = 8;
/// How long a full receiver is waited for before a frame is dropped.
const FULL_WAIT_MS: u16 = 10;
/// Queue of connections not accepted yet (as `uml_switch --bess`).
const BACKLOG: i32 = 128;

const USAGE: &str = "usage: bess-relay [--depth N] PATH   (a benchmark floor, not a switch)";

/// What forwarding from one connection found.
#[derive(Debug, PartialEq, Eq)]
enum Flow {
    /// Nothing more to read for now.
    Drained,
    /// The sender disconnected (or its connection failed).
    Closed,
}

/// Whether `poll` saw the peer go. (`POLLRDHUP` is never asked for: nix's
/// `revents()` does not know that flag and would return `None`. A closed
/// peer of a seqpacket connection shows as `POLLHUP` anyway.)
fn hangup(flags: PollFlags) -> bool {
    flags.intersects(PollFlags::POLLHUP | PollFlags::POLLERR)
}

/// Whether the peer of `fd` has closed (checked without waiting).
fn peer_hung_up(fd: BorrowedFd<'_>) -> bool {
    let mut fds = [PollFd::new(fd, PollFlags::POLLIN)];
    matches!(poll(&mut fds, PollTimeout::ZERO), Ok(1)) && fds[0].revents().is_some_and(hangup)
}

/// Waits (at most [`FULL_WAIT_MS`]) until `fd` can take a message.
fn wait_writable(fd: BorrowedFd<'_>) -> bool {
    let mut fds = [PollFd::new(fd, PollFlags::POLLOUT)];
    matches!(poll(&mut fds, PollTimeout::from(FULL_WAIT_MS)), Ok(1))
        && fds[0]
            .revents()
            .is_some_and(|r| r.contains(PollFlags::POLLOUT))
}

/// Sends frames `0..n` of `rx` to `to`, waiting for a full receiver and
/// dropping a frame it still refuses. `Err` when `to` is gone.
fn send_all(
    rx: &RecvBatch,
    n: usize,
    to: BorrowedFd<'_>,
    fwd: &mut ForwardBatch,
    dropped: &mut u64,
) -> Result<(), ()> {
    let mut start = 0;
    while start < n {
        match fwd.send(to, rx, start..n) {
            Ok(k) => start += k.max(1),
            Err(e) => match e.raw_os_error() {
                Some(libc::EINTR) => {}
                Some(libc::EAGAIN) => {
                    if !wait_writable(to) {
                        start += 1;
                        *dropped += 1;
                    }
                }
                Some(libc::EPIPE | libc::ECONNRESET | libc::ENOTCONN) => return Err(()),
                _ => {
                    start += 1;
                    *dropped += 1;
                }
            },
        }
    }
    Ok(())
}

/// Forwards what `from` has (up to [`ROUNDS`] batches) to `to`.
fn forward(
    from: BorrowedFd<'_>,
    hung_up: bool,
    to: BorrowedFd<'_>,
    rx: &mut RecvBatch,
    fwd: &mut ForwardBatch,
    dropped: &mut u64,
) -> Flow {
    for _ in 0..ROUNDS {
        let n = match rx.recv(from) {
            Ok(n) => n,
            Err(_) => return Flow::Closed,
        };
        if n == 0 {
            return if hung_up { Flow::Closed } else { Flow::Drained };
        }
        // At end of file a receive fills the whole batch with empty
        // entries; frames received before it come first.
        let full = n == rx.capacity();
        let mut frames = n;
        if full && rx.frame(n - 1).is_empty() && (hung_up || peer_hung_up(from)) {
            while frames > 0 && rx.frame(frames - 1).is_empty() {
                frames -= 1;
            }
            let _ = send_all(rx, frames, to, fwd, dropped);
            return Flow::Closed;
        }
        if send_all(rx, frames, to, fwd, dropped).is_err() {
            return Flow::Closed;
        }
        if !full {
            return Flow::Drained;
        }
    }
    Flow::Drained
}

fn accept_two(listener: &OwnedFd) -> io::Result<[OwnedFd; 2]> {
    let mut conns = Vec::with_capacity(2);
    while conns.len() < 2 {
        let mut fds = [PollFd::new(listener.as_fd(), PollFlags::POLLIN)];
        match poll(&mut fds, PollTimeout::NONE) {
            Ok(_) | Err(nix::errno::Errno::EINTR) => {}
            Err(e) => return Err(e.into()),
        }
        match seqpacket::accept(listener.as_fd()) {
            Ok(fd) => {
                println!("bess-relay: connection {}", conns.len() + 1);
                conns.push(fd);
            }
            Err(e)
                if e.kind() == io::ErrorKind::WouldBlock
                    || matches!(e.raw_os_error(), Some(libc::EINTR | libc::ECONNABORTED)) => {}
            Err(e) => return Err(e),
        }
    }
    let b = conns.pop();
    let a = conns.pop();
    match (a, b) {
        (Some(a), Some(b)) => Ok([a, b]),
        _ => Err(io::Error::other("lost a connection")),
    }
}

fn run(path: &Path, depth: usize) -> Result<(), String> {
    let listener =
        seqpacket::listen(path, BACKLOG).map_err(|e| format!("{}: {e}", path.display()))?;
    println!("bess-relay listening on '{}'", path.display());
    let conns = accept_two(&listener).map_err(|e| format!("accept: {e}"))?;
    drop(listener);
    let _ = std::fs::remove_file(path);
    let mut rx = RecvBatch::new(depth, BUF_LEN);
    let mut fwd = ForwardBatch::new(depth);
    let events = PollFlags::POLLIN;
    let mut dropped = 0u64;
    loop {
        let mut fds = [
            PollFd::new(conns[0].as_fd(), events),
            PollFd::new(conns[1].as_fd(), events),
        ];
        match poll(&mut fds, PollTimeout::NONE) {
            Ok(_) => {}
            Err(nix::errno::Errno::EINTR) => continue,
            Err(e) => return Err(format!("poll: {e}")),
        }
        let revents = [
            fds[0].revents().unwrap_or(PollFlags::empty()),
            fds[1].revents().unwrap_or(PollFlags::empty()),
        ];
        for (i, r) in revents.into_iter().enumerate() {
            if r.is_empty() {
                continue;
            }
            let (from, to) = (conns[i].as_fd(), conns[1 - i].as_fd());
            if forward(from, hangup(r), to, &mut rx, &mut fwd, &mut dropped) == Flow::Closed {
                println!(
                    "bess-relay: connection {} closed; {dropped} frames dropped",
                    i + 1
                );
                return Ok(());
            }
        }
    }
}

fn main() -> ExitCode {
    let mut depth = 64usize;
    let mut path: Option<PathBuf> = None;
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        match a.as_str() {
            "-h" | "--help" => {
                println!("{USAGE}");
                return ExitCode::SUCCESS;
            }
            "--depth" => match args.next().and_then(|v| v.parse().ok()) {
                Some(d) if (1..=1024).contains(&d) => depth = d,
                _ => {
                    eprintln!("bess-relay: --depth takes a number from 1 to 1024\n{USAGE}");
                    return ExitCode::from(2);
                }
            },
            _ if path.is_none() && !a.starts_with('-') => path = Some(PathBuf::from(a)),
            _ => {
                eprintln!("bess-relay: unexpected argument {a:?}\n{USAGE}");
                return ExitCode::from(2);
            }
        }
    }
    let Some(path) = path else {
        eprintln!("{USAGE}");
        return ExitCode::from(2);
    };
    match run(&path, depth) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("bess-relay: {e}");
            ExitCode::FAILURE
        }
    }
}
