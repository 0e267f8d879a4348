//! The management socket (`--mgmt PATH`; protocol: `docs/mgmt.md`,
//! parsing and answers in `uml_common::mgmt`): a unix stream socket on
//! which any number of clients (at most [`MAX_CLIENTS`] at once) send
//! request lines and read answers. The event loop owns it; the answers are
//! computed by the loop from its port table, MAC table and counters.
//!
//! A client cannot hurt the switch or the others: its input is bounded
//! (a line longer than `MAX_LINE` gets an error answer and the connection
//! is closed), its unread answers are bounded ([`MAX_UNREAD`]: a client
//! that does not read is disconnected), nothing blocks, and every
//! descriptor lives above the port numbers.

use std::collections::HashMap;
use std::io::{self, Read, Write};
use std::os::fd::{AsFd, AsRawFd, OwnedFd, RawFd};
use std::os::unix::fs::{FileTypeExt, PermissionsExt};
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::{Path, PathBuf};

use nix::sys::epoll::{Epoll, EpollEvent, EpollFlags};
use uml_common::mgmt::{self, Request, RequestError, MAX_LINE};
use uml_common::sys::fd::move_high;

use crate::port::HIGH_FD;

/// Epoll token of the listener (tokens below 2^32 are the loop's own).
pub const TOKEN_LISTENER: u64 = 3;
/// Epoll tokens of the connections: this plus the descriptor.
const TOKEN_CONN_BASE: u64 = 1 << 31;
/// Connections served at once; more are told so and closed.
pub const MAX_CLIENTS: usize = 64;
/// Answer bytes a client may leave unread before it is disconnected.
pub const MAX_UNREAD: usize = 1 << 20;
/// Default mode of the socket: the switch's user only.
pub const DEFAULT_MODE: u32 = 0o600;

/// Why the management socket cannot be opened.
#[derive(Debug, thiserror::Error)]
pub enum MgmtError {
    /// Something other than a socket is at the path.
    #[error("exists and is not a socket")]
    NotASocket,
    /// Another switch answers there.
    #[error("another program is listening on it")]
    InUse,
    /// The socket cannot be given to the group (`--mgmt-group`).
    #[error("cannot give it to group {0}: {}", uml_common::cli::strerror(.1))]
    Group(u32, io::Error),
    /// Binding, listening or setting the mode failed.
    #[error("{0}")]
    Io(#[from] io::Error),
}

struct Conn {
    stream: UnixStream,
    input: Vec<u8>,
    output: Vec<u8>,
    /// Close once the output is written (a refused line).
    closing: bool,
    /// Watched for `EPOLLOUT`.
    writing: bool,
}

/// The listener and its clients.
pub struct Mgmt {
    path: PathBuf,
    listener: UnixListener,
    conns: HashMap<RawFd, Conn>,
    /// Passed by a service manager: its file is not removed at exit.
    activated: bool,
}

impl std::fmt::Debug for Mgmt {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "Mgmt({}, {} clients)",
            self.path.display(),
            self.conns.len()
        )
    }
}

const CONN_EVENTS: EpollFlags = EpollFlags::EPOLLIN.union(EpollFlags::EPOLLRDHUP);

impl Mgmt {
    /// Listens on `path` with permissions `mode`, replacing a stale socket
    /// (one nobody listens on) but nothing else.
    pub fn open(path: &Path, mode: u32, passed: Option<OwnedFd>) -> Result<Mgmt, MgmtError> {
        if let Some(fd) = passed {
            // Socket activation: bound and listening already, its file and
            // mode the service manager's.
            let fd = move_high(fd, HIGH_FD)?;
            let listener = UnixListener::from(fd);
            listener.set_nonblocking(true)?;
            return Ok(Mgmt {
                path: path.to_path_buf(),
                listener,
                conns: HashMap::new(),
                activated: true,
            });
        }
        if let Ok(meta) = std::fs::symlink_metadata(path) {
            if !meta.file_type().is_socket() {
                return Err(MgmtError::NotASocket);
            }
            match UnixStream::connect(path) {
                Ok(_) => return Err(MgmtError::InUse),
                Err(_) => std::fs::remove_file(path)?,
            }
        }
        let listener = UnixListener::bind(path)?;
        let fail = |e: io::Error| {
            let _ = std::fs::remove_file(path);
            MgmtError::Io(e)
        };
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).map_err(fail)?;
        listener.set_nonblocking(true).map_err(fail)?;
        let listener = move_high(OwnedFd::from(listener), HIGH_FD).map_err(fail)?;
        Ok(Mgmt {
            path: path.to_path_buf(),
            listener: UnixListener::from(listener),
            conns: HashMap::new(),
            activated: false,
        })
    }

    /// Gives the socket file to group `gid` (`--mgmt-group`), keeping its
    /// owner; a socket passed by a service manager is left as the manager
    /// made it. On failure the caller removes the socket ([`Mgmt::cleanup`]).
    pub fn set_group(&mut self, gid: u32) -> Result<(), MgmtError> {
        if self.activated {
            return Ok(());
        }
        // lchown: the file is the socket just bound, never a symlink's
        // target.
        std::os::unix::fs::lchown(&self.path, None, Some(gid)).map_err(|e| MgmtError::Group(gid, e))
    }

    /// Its path.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Watches the listener.
    pub fn register(&self, epoll: &Epoll) -> io::Result<()> {
        epoll
            .add(
                &self.listener,
                EpollEvent::new(EpollFlags::EPOLLIN, TOKEN_LISTENER),
            )
            .map_err(io::Error::from)
    }

    /// Whether `token` is one of the management socket's.
    pub fn owns(token: u64) -> bool {
        token == TOKEN_LISTENER || (TOKEN_CONN_BASE..1 << 32).contains(&token)
    }

    /// Handles an event of `token`, computing answers with `answer`.
    pub fn ready(
        &mut self,
        token: u64,
        events: EpollFlags,
        epoll: &Epoll,
        answer: &mut dyn FnMut(Request) -> String,
    ) {
        if token == TOKEN_LISTENER {
            self.accept(epoll);
            return;
        }
        let fd = (token - TOKEN_CONN_BASE) as RawFd;
        let Some(conn) = self.conns.get_mut(&fd) else {
            return;
        };
        let mut gone = false;
        if events.intersects(EpollFlags::EPOLLIN | EpollFlags::EPOLLRDHUP | EpollFlags::EPOLLHUP)
            && !conn.closing
        {
            gone = read_requests(conn, answer);
        }
        if events.contains(EpollFlags::EPOLLERR) {
            gone = true;
        }
        if !gone {
            gone = flush(conn, epoll, fd);
        }
        if gone {
            self.close(fd, epoll);
        }
    }

    fn accept(&mut self, epoll: &Epoll) {
        loop {
            let stream = match self.listener.accept() {
                Ok((s, _)) => s,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                // Would block, or out of descriptors: try at the next
                // event (the listener stays readable).
                Err(_) => return,
            };
            let mut stream = match move_high(OwnedFd::from(stream), HIGH_FD) {
                Ok(fd) => UnixStream::from(fd),
                Err(_) => continue,
            };
            if self.conns.len() >= MAX_CLIENTS || stream.set_nonblocking(true).is_err() {
                let _ = stream.write_all(
                    mgmt::error("too many management clients; try again later", false).as_bytes(),
                );
                continue;
            }
            let fd = stream.as_raw_fd();
            let ev = EpollEvent::new(CONN_EVENTS, TOKEN_CONN_BASE + fd as u64);
            if epoll.add(stream.as_fd(), ev).is_err() {
                continue;
            }
            self.conns.insert(
                fd,
                Conn {
                    stream,
                    input: Vec::new(),
                    output: Vec::new(),
                    closing: false,
                    writing: false,
                },
            );
        }
    }

    fn close(&mut self, fd: RawFd, epoll: &Epoll) {
        if let Some(conn) = self.conns.remove(&fd) {
            let _ = epoll.delete(conn.stream.as_fd());
        }
    }

    /// Removes the socket file (at exit).
    pub fn cleanup(&mut self) {
        if !self.activated {
            let _ = std::fs::remove_file(&self.path);
        }
    }
}

/// Reads what `conn` sent and queues an answer per complete line. Returns
/// whether the client is gone.
fn read_requests(conn: &mut Conn, answer: &mut dyn FnMut(Request) -> String) -> bool {
    let mut buf = [0u8; 4096];
    let mut eof = false;
    loop {
        match conn.stream.read(&mut buf) {
            Ok(0) => {
                eof = true;
                break;
            }
            Ok(n) => {
                conn.input.extend_from_slice(&buf[..n]);
                if conn.input.len() > 4 * MAX_LINE {
                    break;
                }
            }
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
            Err(_) => return true,
        }
    }
    let mut start = 0;
    while let Some(nl) = conn.input[start..].iter().position(|&b| b == b'\n') {
        let line = &conn.input[start..start + nl];
        start += nl + 1;
        if line.len() + 1 > MAX_LINE {
            refuse(conn, &RequestError::TooLong, false);
            return false;
        }
        let text = match mgmt::parse(line) {
            Ok(request) => answer(request),
            Err((e, json)) => mgmt::error(&e.to_string(), json),
        };
        conn.output.extend_from_slice(text.as_bytes());
    }
    conn.input.drain(..start);
    if conn.input.len() >= MAX_LINE {
        refuse(conn, &RequestError::TooLong, false);
        return false;
    }
    // A client that closed its end gets the answers to what it sent
    // (written below) unless it hung up entirely.
    eof && conn.output.is_empty()
}

/// Answers `e` and closes the connection once that is written.
fn refuse(conn: &mut Conn, e: &RequestError, json: bool) {
    conn.output
        .extend_from_slice(mgmt::error(&e.to_string(), json).as_bytes());
    conn.input.clear();
    conn.closing = true;
}

/// Writes what is queued for `conn` without blocking; watches it for room
/// while something is left. Returns whether the client must go (it reads
/// too slowly, it failed, or a refused connection is done).
fn flush(conn: &mut Conn, epoll: &Epoll, fd: RawFd) -> bool {
    while !conn.output.is_empty() {
        match conn.stream.write(&conn.output) {
            Ok(0) => return true,
            Ok(n) => {
                conn.output.drain(..n);
            }
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
            Err(_) => return true,
        }
    }
    if conn.output.len() > MAX_UNREAD {
        return true;
    }
    if conn.output.is_empty() && conn.closing {
        return true;
    }
    let want = !conn.output.is_empty();
    if want != conn.writing {
        let flags = if want {
            CONN_EVENTS | EpollFlags::EPOLLOUT
        } else {
            CONN_EVENTS
        };
        let mut ev = EpollEvent::new(flags, TOKEN_CONN_BASE + fd as u64);
        let _ = epoll.modify(conn.stream.as_fd(), &mut ev);
        conn.writing = want;
    }
    false
}

/// The client: sends `words` as one request to the switch's management
/// socket at `path` and copies the answer: the body to `out`, an error
/// message to `err`. Returns the exit status: 0 for `ok`, 1 for an error
/// answer or when the switch cannot be reached.
pub fn client(
    prog: &str,
    path: &Path,
    words: &[String],
    out: &mut dyn Write,
    err: &mut dyn Write,
) -> i32 {
    let fail = |err: &mut dyn Write, what: &str| {
        let _ = writeln!(
            err,
            "{prog}: management socket '{}': {what}",
            path.display()
        );
        1
    };
    let mut stream = match UnixStream::connect(path) {
        Ok(s) => s,
        Err(e) => return fail(err, &uml_common::cli::strerror(&e)),
    };
    let _ = stream.set_read_timeout(Some(std::time::Duration::from_secs(30)));
    let line = format!("{}\n", words.join(" "));
    if let Err(e) = stream.write_all(line.as_bytes()) {
        return fail(err, &uml_common::cli::strerror(&e));
    }
    let json = words.first().is_some_and(|w| w == "json");
    let mut reader = io::BufReader::new(stream);
    let mut text = String::new();
    loop {
        let mut l = String::new();
        match io::BufRead::read_line(&mut reader, &mut l) {
            Ok(0) => return fail(err, "the switch closed the connection before answering"),
            Ok(_) => {}
            Err(e) => return fail(err, &uml_common::cli::strerror(&e)),
        }
        if json {
            let _ = out.write_all(l.as_bytes());
            return if mgmt::json_ok(&l) { 0 } else { 1 };
        }
        match mgmt::status_of(l.trim_end_matches('\n')) {
            Some(Ok(())) => {
                let _ = out.write_all(text.as_bytes());
                return 0;
            }
            Some(Err(message)) => {
                let _ = out.write_all(text.as_bytes());
                let _ = writeln!(err, "{prog}: {message}");
                return 1;
            }
            None => text.push_str(&l),
        }
    }
}
