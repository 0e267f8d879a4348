//! The bess port kind (`--bess PATH`; `docs/vector.md` §2): a listening
//! `SOCK_SEQPACKET` unix socket at PATH; every accepted connection is one
//! port, numbered by its descriptor like the daemon ports. Guests join
//! with `vecN:transport=bess,dst=PATH` (kernels with the vector driver,
//! including ≥ 6.16, which no longer have the daemon transport); any
//! number of guests may use one socket.
//!
//! Wire format: one Ethernet frame per message, no header, both ways.
//! Frames are received with `recvmmsg` into buffers of the switch's
//! largest frame (1514 bytes, or `--mtu` + 14; longer messages are dropped
//! and counted for the port; runts are dropped by the core) and sent with
//! `sendmmsg` on each connection, without blocking: when a guest's
//! connection is full, its frames wait in the port's backlog and are sent
//! when it has room (`backlog.rs`); a guest that stops reading costs only
//! its own backlog's budget, beyond which its frames are dropped and
//! counted. End of file, a reset or `EPOLLRDHUP` ends the port
//! and removes its MAC addresses. The peer's pid and uid (`SO_PEERCRED`)
//! are kept for the log lines.
//!
//! The same endpoint also *connects out* (`--bess-connect PATH`): to a
//! user-mode network stack listening in bess mode (slirp4netns
//! `--target-type=bess`, gvproxy `-listen-bess`). That connection is one
//! port with the same data path, backlog and counters; it has no listener
//! and no socket file of its own, and when the peer closes it the port is
//! removed and the endpoint stays empty (no reconnection: the stack's
//! listener takes one connection only, see `docs/vector.md` §12).

use std::io;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};
use std::os::unix::fs::FileTypeExt;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
use nix::sys::epoll::{Epoll, EpollFlags};
use uml_common::cli::strerror;
use uml_common::switch::MAX_FRAME_LEN;
use uml_common::sys::fd::move_high;
use uml_common::sys::mmsg::SendBatch;
use uml_common::sys::seqpacket::{self, PeerCred};

use super::backlog::{watch_writable, Backlogs};
use super::unix::bind_with_stale_check;
use super::{Ctx, Endpoint, EndpointId, Inbox, Ready, Received, Stats, HIGH_FD, SEND_BATCH};
use crate::core::PortId;
use crate::output::{err, out};
use crate::{BessRefusal, Error};

/// Queue of connections not accepted yet.
const BACKLOG: i32 = 128;
/// How soon accepting is tried again after it failed (out of descriptors).
const ACCEPT_RETRY: Duration = Duration::from_millis(100);
/// Sub-token of the listener; connections use `port + 1`.
const SUB_LISTENER: u32 = 0;
/// Events a connection is watched for (and `EPOLLOUT` while frames wait
/// in its backlog).
const CONN_EVENTS: EpollFlags = EpollFlags::EPOLLIN.union(EpollFlags::EPOLLRDHUP);

/// Characters a guest cannot put in `dst=` (the vector driver splits its
/// options on `,` and `=`).
const UNNAMEABLE: [char; 2] = [',', '='];

struct Conn {
    fd: OwnedFd,
    label: i32,
    cred: Option<PeerCred>,
    send_error_reported: bool,
}

impl Conn {
    /// `port N (pid P, uid U)` for messages.
    fn describe(&self) -> String {
        match self.cred {
            Some(c) => format!("port {} (pid {}, uid {})", self.label, c.pid, c.uid),
            None => format!("port {}", self.label),
        }
    }
}

/// A bess listener and its connections.
pub struct Bess {
    path: PathBuf,
    /// `None` for a connection out (`--bess-connect`).
    listener: Option<OwnedFd>,
    /// The connection out, until `register` makes it a port.
    outgoing: Option<OwnedFd>,
    listener_paused: bool,
    retry_accept: Instant,
    /// Indexed by port id.
    conns: Vec<Option<Conn>>,
    tx: SendBatch,
    /// Frames waiting for full connections.
    backlogs: Backlogs,
    /// This endpoint's id in the event loop (for epoll tokens).
    me: EndpointId,
    /// Passed by a service manager: its file is not removed at exit.
    activated: bool,
}

impl std::fmt::Debug for Bess {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "Bess({}, {} connections)",
            self.path.display(),
            self.conns.iter().flatten().count()
        )
    }
}

/// The kernel argument that joins a bess switch at `path` (made absolute
/// against the current directory).
pub fn guest_argument(path: &Path) -> String {
    let abs = if path.is_absolute() {
        path.to_path_buf()
    } else {
        std::env::current_dir().map_or_else(|_| path.to_path_buf(), |d| d.join(path))
    };
    format!("vec0:transport=bess,dst={}", abs.display())
}

impl Bess {
    /// Listens on `path`, replacing a stale socket (one nobody listens on)
    /// but nothing else.
    pub fn open(prog: &str, path: &Path, passed: Option<OwnedFd>) -> Result<Bess, Error> {
        let refuse = |why: BessRefusal| Error::Bess {
            prog: prog.to_string(),
            path: path.to_path_buf(),
            why,
        };
        if let Some(listener) = passed {
            // Socket activation: bound and listening already; its file is
            // the service manager's.
            let listener =
                move_high(listener, HIGH_FD).map_err(|e| refuse(BessRefusal::MoveHigh(e)))?;
            let _ = super::set_nonblocking(&listener);
            return Ok(Bess::with_listener(path, Some(listener), true));
        }
        if path.to_string_lossy().contains(UNNAMEABLE) {
            return Err(refuse(BessRefusal::Unnameable));
        }
        if let Ok(meta) = std::fs::symlink_metadata(path) {
            if !meta.file_type().is_socket() {
                return Err(refuse(BessRefusal::NotASocket));
            }
        }
        let listener = bind_with_stale_check(
            path,
            |p| seqpacket::listen(p, BACKLOG),
            |p| seqpacket::connect(p).map(drop),
        )
        .map_err(|f| refuse(BessRefusal::Bind(f)))?;
        // Kept above the descriptors that are port numbers, so that -tap
        // and the control connections keep the C switch's numbers.
        let listener = move_high(listener, HIGH_FD).map_err(|e| {
            let _ = std::fs::remove_file(path);
            refuse(BessRefusal::MoveHigh(e))
        })?;
        Ok(Bess::with_listener(path, Some(listener), false))
    }

    /// Connects to a peer listening in bess mode at `path`
    /// (`--bess-connect`): one port, added when registered.
    pub fn connect(prog: &str, path: &Path) -> Result<Bess, Error> {
        let refuse = |source: io::Error| Error::Connect {
            prog: prog.to_string(),
            option: "--bess-connect",
            path: path.to_path_buf(),
            source,
        };
        let fd = seqpacket::connect(path).map_err(refuse)?;
        super::set_nonblocking(&fd).map_err(refuse)?;
        let mut bess = Bess::with_listener(path, None, false);
        bess.outgoing = Some(fd);
        Ok(bess)
    }

    /// Whether this is a connection out (`--bess-connect`).
    fn connects_out(&self) -> bool {
        self.listener.is_none()
    }

    fn with_listener(path: &Path, listener: Option<OwnedFd>, activated: bool) -> Bess {
        Bess {
            path: path.to_path_buf(),
            listener,
            outgoing: None,
            listener_paused: false,
            retry_accept: Instant::now(),
            conns: Vec::new(),
            tx: SendBatch::new(SEND_BATCH, MAX_FRAME_LEN),
            backlogs: Backlogs::default(),
            me: 0,
            activated,
        }
    }

    fn accept(&mut self, ctx: &mut Ctx<'_>) {
        loop {
            let Some(listener) = &self.listener else {
                return;
            };
            let fd = match seqpacket::accept(listener.as_fd()) {
                Ok(fd) => fd,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return,
                Err(e) if matches!(e.raw_os_error(), Some(libc::EINTR | libc::ECONNABORTED)) => {
                    continue
                }
                Err(e) => {
                    err(&format!(
                        "{}: accept on bess socket '{}': {}\n",
                        ctx.prog,
                        self.path.display(),
                        strerror(&e)
                    ));
                    // Out of descriptors: stop accepting for a moment
                    // instead of spinning on a level-triggered listener.
                    if ctx.epoll.delete(listener).is_ok() {
                        self.listener_paused = true;
                        self.retry_accept = Instant::now() + ACCEPT_RETRY;
                    }
                    return;
                }
            };
            if let Some(conn) = self.add_conn(fd, ctx) {
                out(&format!("New bess connection: {}\n", conn.describe()));
            }
        }
    }

    /// Makes the connection `fd` a port.
    fn add_conn(&mut self, fd: OwnedFd, ctx: &mut Ctx<'_>) -> Option<&Conn> {
        let label = fd.as_raw_fd();
        let cred = seqpacket::peer_cred(fd.as_fd()).ok();
        let port = ctx.add_port(label);
        if ctx.watch_with(&fd, port + 1, CONN_EVENTS).is_err() {
            ctx.remove_port(port);
            return None;
        }
        let conn = Conn {
            fd,
            label,
            cred,
            send_error_reported: false,
        };
        let i = port as usize;
        if self.conns.len() <= i {
            self.conns.resize_with(i + 1, || None);
        }
        self.conns[i] = Some(conn);
        self.conns[i].as_ref()
    }

    /// `Bess port N (pid P, uid U)`, or for a connection out the peer's
    /// socket as well.
    fn describe(&self, conn: &Conn) -> String {
        if self.connects_out() {
            match conn.cred {
                Some(c) => format!(
                    "peer '{}' (port {}, pid {}, uid {})",
                    self.path.display(),
                    conn.label,
                    c.pid,
                    c.uid
                ),
                None => format!("peer '{}' (port {})", self.path.display(), conn.label),
            }
        } else {
            conn.describe()
        }
    }

    /// Receives one batch from the connection of `port`.
    fn recv(
        &mut self,
        port: PortId,
        events: EpollFlags,
        ctx: &mut Ctx<'_>,
        inbox: &mut Inbox,
    ) -> Ready {
        let Some(Some(conn)) = self.conns.get(port as usize) else {
            return Ready::Done;
        };
        let n = match inbox.rx.recv(conn.fd.as_fd()) {
            Ok(n) => n,
            Err(e) => {
                out(&format!(
                    "Bess {} disconnected: {}\n",
                    self.describe(conn),
                    strerror(&e)
                ));
                self.close(port, ctx);
                return Ready::Done;
            }
        };
        // At end of file every call returns a full batch of empty entries
        // (end of file repeats); a batch that is not full ended at "would
        // block", so its empty entries are empty messages. A full batch
        // ending in empty entries is end of file only if the peer has shut
        // down (else they are empty messages, counted as runts).
        let full = n > 0 && n == inbox.rx.capacity();
        let hangup = events.intersects(EpollFlags::EPOLLRDHUP | EpollFlags::EPOLLHUP);
        let eof_from = if full
            && inbox.rx.frame(n - 1).is_empty()
            && (hangup || peer_shut_down(conn.fd.as_fd()))
        {
            (0..n)
                .rev()
                .take_while(|&i| inbox.rx.frame(i).is_empty())
                .last()
        } else {
            None
        };
        // The port goes only once nothing it sent waits to be forwarded
        // (a removed port must not be learned on): frames before the end
        // of file are returned first, and the next call, which finds
        // nothing but the end, closes it.
        if eof_from == Some(0) || (n == 0 && hangup) {
            out(&format!("Bess {} disconnected\n", self.describe(conn)));
            self.close(port, ctx);
            return Ready::Done;
        }
        let frames = eof_from.unwrap_or(n);
        for i in 0..frames {
            ctx.stats.frames_in += 1;
            if inbox.rx.truncated(i) {
                // Longer than the switch's largest frame: not cut.
                ctx.drop_oversized(port);
                continue;
            }
            let len = inbox.rx.frame(i).len();
            inbox.frames.push(Received { port, slot: i, len });
        }
        if full {
            Ready::More
        } else {
            Ready::Done
        }
    }

    fn close(&mut self, port: PortId, ctx: &mut Ctx<'_>) {
        let Some(conn) = self.conns.get_mut(port as usize).and_then(Option::take) else {
            return;
        };
        ctx.unwatch(&conn.fd);
        ctx.remove_port(port);
        self.tx.forget_tag(port);
        self.backlogs.forget(port);
    }

    /// Sends the batch; frames for a full connection go to its backlog.
    fn send_batch(&mut self, stats: &mut Stats) {
        // Every message is for a connection: the listener (or the first
        // connection) is never used to send.
        let fd = match (&self.listener, self.conns.iter().flatten().next()) {
            (Some(l), _) => l.as_fd(),
            (None, Some(c)) => c.fd.as_fd(),
            // No connection: nothing can have been queued.
            (None, None) => return,
        };
        let failed = self.backlogs.send_batch(&mut self.tx, fd, stats);
        for (tag, e) in failed {
            if let Some(Some(conn)) = self.conns.get_mut(tag as usize) {
                report_send_error(conn, &e);
            }
        }
    }

    /// The connection of `port` has room: sends its backlog.
    fn drain(&mut self, port: PortId, ctx: &mut Ctx<'_>) {
        let Some(Some(conn)) = self.conns.get_mut(port as usize) else {
            return;
        };
        let (empty, error) = self.backlogs.send(port, conn.fd.as_fd(), ctx.stats);
        if let Some(e) = error {
            report_send_error(conn, &e);
        }
        if empty {
            watch_writable(
                ctx.epoll,
                conn.fd.as_fd(),
                self.me,
                port + 1,
                CONN_EVENTS,
                false,
            );
        }
    }
}

/// Whether the peer of `fd` has closed its socket (or it failed).
///
/// Asks for POLLIN only: the kernel then reports no bits beyond POLLIN,
/// POLLHUP and POLLERR. (Asking for POLLRDHUP made nix's `revents()`
/// return `None` whenever the kernel set it, as nix 0.29 has no name for
/// that bit, so a closed peer was never seen here.) A closed peer of a
/// `SOCK_SEQPACKET` socket sets POLLHUP.
fn peer_shut_down(fd: BorrowedFd<'_>) -> bool {
    let mut fds = [PollFd::new(fd, PollFlags::POLLIN)];
    matches!(poll(&mut fds, PollTimeout::ZERO), Ok(1))
        && fds[0]
            .revents()
            .is_some_and(|r| r.intersects(PollFlags::POLLHUP | PollFlags::POLLERR))
}

/// Reports a failure to send to `conn`, once per connection (a peer that
/// closed is reported when its end of file is read).
fn report_send_error(conn: &mut Conn, e: &io::Error) {
    if matches!(e.raw_os_error(), Some(libc::EPIPE | libc::ECONNRESET)) || conn.send_error_reported
    {
        return;
    }
    conn.send_error_reported = true;
    err(&format!(
        "Sending to bess {}: {}\n",
        conn.describe(),
        strerror(e)
    ));
}

impl Endpoint for Bess {
    fn listen_path(&self) -> Option<&Path> {
        (!self.connects_out()).then_some(self.path.as_path())
    }

    fn port_info(&self, port: PortId) -> (&'static str, Option<String>) {
        let peer = match self.conns.get(port as usize) {
            Some(Some(Conn { cred: Some(c), .. })) => Some(format!("pid {}, uid {}", c.pid, c.uid)),
            _ => None,
        };
        if self.connects_out() {
            let peer = match peer {
                Some(p) => format!("{}, {p}", self.path.display()),
                None => self.path.display().to_string(),
            };
            return ("bess-connect", Some(peer));
        }
        ("bess", peer)
    }

    fn removable(&self) -> bool {
        self.connects_out()
    }

    fn announce(&self) -> Option<String> {
        let label = match (&self.outgoing, self.conns.iter().flatten().next()) {
            (Some(fd), _) => fd.as_raw_fd(),
            (None, Some(conn)) => conn.label,
            (None, None) => return None,
        };
        self.connects_out().then(|| {
            format!(
                "connected to bess peer '{}': port {label}\n",
                self.path.display()
            )
        })
    }

    fn register(&mut self, ctx: &mut Ctx<'_>) -> io::Result<()> {
        if ctx.max_frame != MAX_FRAME_LEN {
            self.tx = SendBatch::new(SEND_BATCH, ctx.max_frame);
        }
        self.me = ctx.endpoint;
        if let Some(fd) = self.outgoing.take() {
            return match self.add_conn(fd, ctx) {
                Some(_) => Ok(()),
                None => Err(io::Error::other("cannot watch the connection")),
            };
        }
        match &self.listener {
            Some(l) => ctx.watch(l, SUB_LISTENER),
            None => Ok(()),
        }
    }

    fn ready(
        &mut self,
        sub: u32,
        events: EpollFlags,
        ctx: &mut Ctx<'_>,
        inbox: &mut Inbox,
    ) -> Ready {
        if sub == SUB_LISTENER {
            self.accept(ctx);
            return Ready::Done;
        }
        let port = sub - 1;
        if events.contains(EpollFlags::EPOLLOUT) {
            self.drain(port, ctx);
        }
        if !events.intersects(
            EpollFlags::EPOLLIN
                | EpollFlags::EPOLLRDHUP
                | EpollFlags::EPOLLHUP
                | EpollFlags::EPOLLERR,
        ) {
            return Ready::Done;
        }
        self.recv(port, events, ctx, inbox)
    }

    fn queue(&mut self, port: PortId, frame: &[u8], stats: &mut Stats) {
        if !matches!(self.conns.get(port as usize), Some(Some(_))) {
            return;
        }
        if self.backlogs.is_waiting(port) {
            // After the frames that already wait.
            self.backlogs.keep(port, frame, stats);
            return;
        }
        if self.tx.is_full() {
            self.send_batch(stats);
        }
        if let Some(Some(conn)) = self.conns.get(port as usize) {
            self.tx.push_connected(frame, conn.fd.as_fd(), port);
        }
    }

    fn flush(&mut self, epoll: &Epoll, stats: &mut Stats) {
        if !self.tx.is_empty() {
            self.send_batch(stats);
        }
        // Connections that filled up: watch them for room.
        for port in self.backlogs.take_started() {
            if let Some(Some(conn)) = self.conns.get(port as usize) {
                watch_writable(epoll, conn.fd.as_fd(), self.me, port + 1, CONN_EVENTS, true);
            }
        }
    }

    fn next_deadline(&self) -> Option<Instant> {
        self.listener_paused.then_some(self.retry_accept)
    }

    fn on_deadline(&mut self, now: Instant, ctx: &mut Ctx<'_>) {
        if !self.listener_paused || now < self.retry_accept {
            return;
        }
        let Some(listener) = &self.listener else {
            return;
        };
        if ctx.watch(listener, SUB_LISTENER).is_ok() {
            self.listener_paused = false;
        } else {
            self.retry_accept = now + ACCEPT_RETRY;
        }
    }

    fn cleanup(&mut self) {
        if self.activated || self.connects_out() {
            return;
        }
        if let Err(e) = std::fs::remove_file(&self.path) {
            out(&format!(
                "Couldn't remove bess socket '{}' : ",
                self.path.display()
            ));
            err(&format!("{}\n", strerror(&e)));
        }
    }

    fn discard(&mut self) {
        if !self.activated && !self.connects_out() {
            let _ = std::fs::remove_file(&self.path);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::fd::AsFd;
    use std::os::unix::net::UnixStream;

    #[test]
    fn a_closed_peer_is_seen() {
        // A stream pair stands in for the seqpacket connection: a closed
        // peer sets POLLHUP on both kinds.
        let (ours, theirs) = UnixStream::pair().unwrap();
        assert!(!peer_shut_down(ours.as_fd()));
        drop(theirs);
        assert!(peer_shut_down(ours.as_fd()));
    }
}
