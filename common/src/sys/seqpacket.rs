//! Unix `SOCK_SEQPACKET` sockets bound to filesystem paths, which std does
//! not offer: a listener, `accept` of connections (non-blocking,
//! close-on-exec), a client `connect`, and the peer's credentials
//! (`SO_PEERCRED`). Used by the switch's bess ports (the vector
//! `transport=bess` of UML kernels: one Ethernet frame per message).
//!
//! Message I/O on these descriptors goes through [`crate::sys::mmsg`]
//! (`recvmmsg`/`sendmmsg`) or through std's `UnixStream` (`read`/`write`
//! of one message each).

use std::io;
use std::os::fd::{AsRawFd, BorrowedFd, FromRawFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::Path;

use crate::switch::{SockAddrUn, SUN_PATH_LEN};

/// Who is on the other end of a connection (`struct ucred`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PeerCred {
    /// Process id of the peer when it connected.
    pub pid: i32,
    /// Its effective user id.
    pub uid: u32,
    /// Its effective group id.
    pub gid: u32,
}

/// The `sockaddr_un` of `path` and its length (family + path + NUL).
fn path_addr(path: &Path) -> io::Result<(SockAddrUn, libc::socklen_t)> {
    let bytes = path.as_os_str().as_bytes();
    if bytes.is_empty() || bytes.contains(&0) {
        return Err(io::Error::from_raw_os_error(libc::EINVAL));
    }
    if bytes.len() >= SUN_PATH_LEN {
        return Err(io::Error::from_raw_os_error(libc::ENAMETOOLONG));
    }
    let len = 2 + bytes.len() + 1;
    Ok((SockAddrUn::path(bytes), len as libc::socklen_t))
}

/// A new `AF_UNIX`/`SOCK_SEQPACKET` socket with `flags` (`SOCK_NONBLOCK`,
/// `SOCK_CLOEXEC`).
fn new_socket(flags: libc::c_int) -> io::Result<OwnedFd> {
    // SAFETY: socket(2) takes no pointers; it returns a new descriptor or
    // -1.
    let fd = unsafe { libc::socket(libc::AF_UNIX, libc::SOCK_SEQPACKET | flags, 0) };
    if fd < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: `fd` was just returned by socket(2), is open and owned by
    // nobody else.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

/// A non-blocking, close-on-exec listening socket bound to `path`, with a
/// queue of `backlog` connections. Fails with `EADDRINUSE` when `path`
/// exists (the caller decides whether a stale socket may be removed).
pub fn listen(path: &Path, backlog: i32) -> io::Result<OwnedFd> {
    let (addr, len) = path_addr(path)?;
    let fd = new_socket(libc::SOCK_NONBLOCK | libc::SOCK_CLOEXEC)?;
    // SAFETY: `addr` is a 110-byte sockaddr_un image (family AF_UNIX, the
    // NUL-terminated path) that lives for the call; `len` does not exceed
    // its size.
    let rc = unsafe {
        libc::bind(
            fd.as_raw_fd(),
            addr.0.as_ptr().cast::<libc::sockaddr>(),
            len,
        )
    };
    if rc < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: listen(2) takes no pointers.
    if unsafe { libc::listen(fd.as_raw_fd(), backlog) } < 0 {
        let e = io::Error::last_os_error();
        let _ = std::fs::remove_file(path);
        return Err(e);
    }
    Ok(fd)
}

/// Accepts one connection on `listener`: the new descriptor is
/// non-blocking and close-on-exec. `WouldBlock` when none is waiting.
pub fn accept(listener: BorrowedFd<'_>) -> io::Result<OwnedFd> {
    // SAFETY: null address and length pointers are allowed (the peer's
    // address is not wanted); accept4 returns a new descriptor or -1.
    let fd = unsafe {
        libc::accept4(
            listener.as_raw_fd(),
            std::ptr::null_mut(),
            std::ptr::null_mut(),
            libc::SOCK_NONBLOCK | libc::SOCK_CLOEXEC,
        )
    };
    if fd < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: `fd` was just returned by accept4, is open and owned by
    // nobody else.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

/// Connects a new (blocking, close-on-exec) socket to the listener at
/// `path`.
pub fn connect(path: &Path) -> io::Result<OwnedFd> {
    let (addr, len) = path_addr(path)?;
    let fd = new_socket(libc::SOCK_CLOEXEC)?;
    loop {
        // SAFETY: as for bind in `listen`: a valid sockaddr_un image of
        // `len` bytes, alive for the call.
        let rc = unsafe {
            libc::connect(
                fd.as_raw_fd(),
                addr.0.as_ptr().cast::<libc::sockaddr>(),
                len,
            )
        };
        if rc == 0 {
            return Ok(fd);
        }
        let e = io::Error::last_os_error();
        if e.kind() != io::ErrorKind::Interrupted {
            return Err(e);
        }
    }
}

/// The credentials of the process that connected `fd` (`SO_PEERCRED`).
pub fn peer_cred(fd: BorrowedFd<'_>) -> io::Result<PeerCred> {
    let mut cred = libc::ucred {
        pid: 0,
        uid: 0,
        gid: 0,
    };
    let mut len = std::mem::size_of::<libc::ucred>() as libc::socklen_t;
    // SAFETY: `cred` and `len` are live locals; `len` holds the size of
    // `cred`, so the kernel writes at most that many bytes.
    let rc = unsafe {
        libc::getsockopt(
            fd.as_raw_fd(),
            libc::SOL_SOCKET,
            libc::SO_PEERCRED,
            (&mut cred as *mut libc::ucred).cast(),
            &mut len,
        )
    };
    if rc < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(PeerCred {
        pid: cred.pid,
        uid: cred.uid,
        gid: cred.gid,
    })
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::sys::mmsg::{RecvBatch, SendBatch};
    use std::io::{Read, Write};
    use std::os::fd::AsFd;
    use std::os::unix::net::UnixStream;

    fn pair() -> (tempfile::TempDir, OwnedFd, UnixStream, OwnedFd) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("s");
        let l = listen(&path, 4).unwrap();
        assert_eq!(
            accept(l.as_fd()).unwrap_err().kind(),
            io::ErrorKind::WouldBlock
        );
        let client = UnixStream::from(connect(&path).unwrap());
        let server = accept(l.as_fd()).unwrap();
        (dir, l, client, server)
    }

    #[test]
    // Miri: unix seqpacket sockets: not emulated by Miri.
    #[cfg_attr(miri, ignore)]
    fn accepts_with_the_peers_credentials_and_keeps_message_boundaries() {
        let (dir, l, mut client, server) = pair();
        let cred = peer_cred(server.as_fd()).unwrap();
        assert_eq!(cred.pid, std::process::id() as i32);
        // SAFETY: getuid/getgid have no preconditions.
        let (uid, gid) = unsafe { (libc::getuid(), libc::getgid()) };
        assert_eq!((cred.uid, cred.gid), (uid, gid));
        client.write_all(&[1; 60]).unwrap();
        client.write_all(&[2; 42]).unwrap();
        let mut rx = RecvBatch::new(4, 1514);
        assert_eq!(rx.recv(server.as_fd()).unwrap(), 2);
        assert_eq!(rx.frame(0), &[1; 60][..]);
        assert_eq!(rx.frame(1), &[2; 42][..]);
        let mut tx = SendBatch::new(4, 1514);
        tx.push_connected(&[3; 70], server.as_fd(), 1);
        tx.push_connected(&[4; 14], server.as_fd(), 1);
        assert_eq!(tx.flush(l.as_fd(), |f| panic!("{:?}", f.error)).sent, 2);
        let mut buf = [0u8; 2000];
        assert_eq!(client.read(&mut buf).unwrap(), 70);
        assert_eq!(client.read(&mut buf).unwrap(), 14);
        // The path is taken while bound.
        let e = listen(&dir.path().join("s"), 4).unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::AddrInUse);
    }

    #[test]
    // Miri: unix seqpacket sockets: not emulated by Miri.
    #[cfg_attr(miri, ignore)]
    fn oversized_messages_are_truncated_and_flagged() {
        let (_dir, _l, mut client, server) = pair();
        client.write_all(&[7; 3000]).unwrap();
        let mut rx = RecvBatch::new(2, 1514);
        assert_eq!(rx.recv(server.as_fd()).unwrap(), 1);
        assert!(rx.truncated(0));
        assert_eq!(rx.frame(0).len(), 1514);
    }

    /// What the bess port relies on: a zero-length message and the end of
    /// the stream both read as zero-length entries, but end of file fills
    /// the whole batch (it repeats), while a real message does not.
    #[test]
    // Miri: unix seqpacket sockets: not emulated by Miri.
    #[cfg_attr(miri, ignore)]
    fn end_of_file_fills_a_batch_with_empty_entries() {
        let (_dir, _l, client, server) = pair();
        // SAFETY: a zero-length send reads no memory; the descriptor is
        // open.
        let rc = unsafe { libc::send(client.as_raw_fd(), [0u8; 0].as_ptr().cast(), 0, 0) };
        assert_eq!(rc, 0);
        let mut rx = RecvBatch::new(8, 1514);
        assert_eq!(rx.recv(server.as_fd()).unwrap(), 1);
        assert_eq!(rx.frame(0).len(), 0);
        assert_eq!(rx.recv(server.as_fd()).unwrap(), 0);
        (&client).write_all(&[5; 20]).unwrap();
        drop(client);
        assert_eq!(rx.recv(server.as_fd()).unwrap(), 8);
        assert_eq!(rx.frame(0), &[5; 20][..]);
        assert!((1..8).all(|i| rx.frame(i).is_empty()));
        assert_eq!(rx.recv(server.as_fd()).unwrap(), 8);
    }

    #[test]
    // Miri: unix seqpacket sockets: not emulated by Miri.
    #[cfg_attr(miri, ignore)]
    fn bad_paths_and_absent_listeners() {
        let dir = tempfile::tempdir().unwrap();
        let long = dir.path().join("x".repeat(120));
        assert_eq!(
            listen(&long, 1).unwrap_err().raw_os_error(),
            Some(libc::ENAMETOOLONG)
        );
        assert_eq!(
            connect(&dir.path().join("none")).unwrap_err().kind(),
            io::ErrorKind::NotFound
        );
        // A socket file nobody listens on refuses connections.
        let path = dir.path().join("stale");
        drop(listen(&path, 1).unwrap());
        assert_eq!(
            connect(&path).unwrap_err().raw_os_error(),
            Some(libc::ECONNREFUSED)
        );
    }
}
