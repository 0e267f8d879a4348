//! Moving a descriptor to a high number, so that the descriptors a tool
//! shows to users (the C switch prints port numbers that are fds) stay the
//! same as the C tool's.

use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};

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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn moves_above_min_and_frees_the_original() {
        let f: OwnedFd = std::fs::File::open("/dev/null").unwrap().into();
        let old = f.as_raw_fd();
        let moved = move_high(f, 200).unwrap();
        assert!(moved.as_raw_fd() >= 200);
        let again: OwnedFd = std::fs::File::open("/dev/null").unwrap().into();
        assert!(again.as_raw_fd() <= old);
    }
}
