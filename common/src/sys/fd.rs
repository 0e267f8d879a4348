//! Moving a descriptor to a high number, so that the descriptors a tool
//! shows to users (the C switch prints port numbers that are fds) stay the
//! same as the C tool's.

use std::io;
use std::os::fd::{AsRawFd, BorrowedFd, FromRawFd, OwnedFd, RawFd};
use std::os::unix::ffi::OsStrExt;
use std::path::PathBuf;

/// Duplicates `fd` to the lowest free descriptor ≥ `min` (close-on-exec)
/// and closes the original.
pub fn move_high(fd: OwnedFd, min: i32) -> io::Result<OwnedFd> {
    // SAFETY: F_DUPFD_CLOEXEC on a valid, owned descriptor has no memory
    // effects; it returns a new descriptor or -1.
    let new = unsafe { libc::fcntl(fd.as_raw_fd(), libc::F_DUPFD_CLOEXEC, min) };
    if new < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: `new` was just returned by fcntl, is open, and nothing else
    // owns it.
    Ok(unsafe { OwnedFd::from_raw_fd(new) })
}

/// Takes descriptor `fd`, passed open by a service manager (socket
/// activation, sd_listen_fds(3)), and marks it close-on-exec. The caller
/// must call this once per passed descriptor, before anything else could
/// have taken it (at start-up): it then owns it.
pub fn adopt_passed(fd: RawFd) -> io::Result<OwnedFd> {
    if fd < 0 {
        return Err(io::Error::from_raw_os_error(libc::EBADF));
    }
    // SAFETY: F_GETFD takes no pointer; on a closed descriptor it fails
    // with EBADF, which is how an absent descriptor is detected.
    if unsafe { libc::fcntl(fd, libc::F_GETFD) } < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: as above; sets the flag on an open descriptor.
    if unsafe { libc::fcntl(fd, libc::F_SETFD, libc::FD_CLOEXEC) } < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: `fd` is open (checked) and, passed by the service manager
    // and adopted once at start-up (the caller's contract), owned by
    // nothing else in this process.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

/// The type (`SOCK_STREAM`, `SOCK_SEQPACKET`, …) of the unix socket `fd`
/// and the file-system path it is bound to (`None`: another family, or
/// unnamed or abstract).
pub fn unix_socket_info(fd: BorrowedFd<'_>) -> io::Result<(i32, Option<PathBuf>)> {
    let mut kind: libc::c_int = 0;
    let mut len = std::mem::size_of::<libc::c_int>() as libc::socklen_t;
    // SAFETY: `kind` and `len` are live and sized for SO_TYPE's int.
    let rc = unsafe {
        libc::getsockopt(
            fd.as_raw_fd(),
            libc::SOL_SOCKET,
            libc::SO_TYPE,
            (&mut kind as *mut libc::c_int).cast(),
            &mut len,
        )
    };
    if rc != 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: sockaddr_un is plain data; all zeros is a valid value.
    let mut addr: libc::sockaddr_un = unsafe { std::mem::zeroed() };
    let mut alen = std::mem::size_of::<libc::sockaddr_un>() as libc::socklen_t;
    // SAFETY: `addr` is a live, writable sockaddr_un of `alen` bytes.
    let rc = unsafe {
        libc::getsockname(
            fd.as_raw_fd(),
            (&mut addr as *mut libc::sockaddr_un).cast(),
            &mut alen,
        )
    };
    if rc != 0 {
        return Err(io::Error::last_os_error());
    }
    if addr.sun_family != libc::AF_UNIX as libc::sa_family_t || addr.sun_path[0] == 0 {
        return Ok((kind, None));
    }
    let bytes: Vec<u8> = addr
        .sun_path
        .iter()
        .take_while(|&&c| c != 0)
        .map(|&c| c as u8)
        .collect();
    Ok((
        kind,
        Some(PathBuf::from(std::ffi::OsStr::from_bytes(&bytes))),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    // Miri: Miri's descriptor table does not hand out the lowest free number.
    #[cfg_attr(miri, ignore)]
    fn moves_above_min_and_frees_the_original() {
        let f: OwnedFd = std::fs::File::open("/dev/null").unwrap().into();
        let old = f.as_raw_fd();
        let moved = move_high(f, 200).unwrap();
        assert!(moved.as_raw_fd() >= 200);
        let again: OwnedFd = std::fs::File::open("/dev/null").unwrap().into();
        assert!(again.as_raw_fd() <= old);
    }

    #[test]
    // Miri: unix sockets: not emulated by Miri (only AF_INET/AF_INET6 streams).
    #[cfg_attr(miri, ignore)]
    fn passed_descriptors_are_adopted_and_described() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("s");
        let l = std::os::unix::net::UnixListener::bind(&path).unwrap();
        let raw = OwnedFd::from(l);
        let n = raw.as_raw_fd();
        std::mem::forget(raw);
        let fd = adopt_passed(n).unwrap();
        let (kind, p) = unix_socket_info(std::os::fd::AsFd::as_fd(&fd)).unwrap();
        assert_eq!(
            (kind, p.as_deref()),
            (libc::SOCK_STREAM, Some(path.as_path()))
        );
        assert!(adopt_passed(-1).is_err());
        assert!(adopt_passed(9999).is_err());
        let f = std::fs::File::open("/dev/null").unwrap();
        assert!(unix_socket_info(std::os::fd::AsFd::as_fd(&f)).is_err());
    }
}
