//! Asking whether another process holds a record lock on a file, without
//! taking one.
//!
//! The UML block driver locks the files of a ubd device with `fcntl`
//! record locks over the whole file (`os_lock_file`: `F_SETLK`, a write
//! lock on a writable image or COW file, a read lock on a backing file).
//! Linux 7.x holds them from the device's creation (boot or mconsole
//! `config`) until `remove`; 6.1 while the guest has the device open
//! (`docs/kernel7.md` §2.2). Seen in `/proc/locks` for a 7.2 guest with
//! `ubd1=c.cow,back.img`: `POSIX ADVISORY WRITE <pid> … 0 EOF` on the COW
//! file and `POSIX ADVISORY READ <pid> … 0 EOF` on the backing file.
//!
//! [`conflicting_lock`] only *tests* with `F_OFD_GETLK` (`F_GETLK` where
//! the kernel lacks open file description locks): it never sets, changes
//! or releases a lock, so it cannot disturb a guest. (Closing a descriptor
//! releases only the POSIX locks of the closing process, never another
//! process's.)

use std::io;
use std::os::fd::{AsFd, AsRawFd};

/// The access a tool is about to make.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Access {
    /// Reading: only a write lock held elsewhere conflicts.
    Read,
    /// Writing (or replacing): any lock held elsewhere conflicts.
    Write,
}

/// A lock held elsewhere that conflicts with the access asked about.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LockHolder {
    /// A write (exclusive) lock; else a read (shared) lock.
    pub write: bool,
    /// The process holding a POSIX lock (`None` for an open file
    /// description lock, or a process outside this pid namespace).
    pub pid: Option<u32>,
}

/// The first lock on `file` that conflicts with `access` to the whole
/// file, held by anyone but this open file description; `None` when there
/// is none. Takes no lock.
///
/// # Errors
///
/// The `fcntl` error, when the file system cannot report locks.
pub fn conflicting_lock(file: &impl AsFd, access: Access) -> io::Result<Option<LockHolder>> {
    let fd = file.as_fd().as_raw_fd();
    match get_lock(fd, libc::F_OFD_GETLK, access) {
        // Kernels before 3.15 know no OFD commands.
        Err(e) if e.raw_os_error() == Some(libc::EINVAL) => get_lock(fd, libc::F_GETLK, access),
        other => other,
    }
}

fn get_lock(fd: i32, cmd: libc::c_int, access: Access) -> io::Result<Option<LockHolder>> {
    let l_type = match access {
        Access::Read => libc::F_RDLCK,
        Access::Write => libc::F_WRLCK,
    };
    // SAFETY: `flock` is a plain C struct of integers, for which all-zero
    // is a valid value (l_pid must be 0 for the OFD commands).
    let mut fl: libc::flock = unsafe { std::mem::zeroed() };
    fl.l_type = l_type as libc::c_short;
    fl.l_whence = libc::SEEK_SET as libc::c_short;
    fl.l_start = 0;
    fl.l_len = 0; // to the end of the file, however long it grows
                  // SAFETY: F_OFD_GETLK and F_GETLK read and write the `flock` struct
                  // behind the pointer, which is valid and exclusively borrowed for the
                  // call; `fd` is a descriptor the caller keeps open. They only query
                  // the lock table and set no lock.
    let rc = unsafe { libc::fcntl(fd, cmd, &mut fl as *mut libc::flock) };
    if rc < 0 {
        return Err(io::Error::last_os_error());
    }
    if fl.l_type == libc::F_UNLCK as libc::c_short {
        return Ok(None);
    }
    Ok(Some(LockHolder {
        write: fl.l_type == libc::F_WRLCK as libc::c_short,
        pid: u32::try_from(fl.l_pid).ok().filter(|&p| p > 0),
    }))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::fs::{File, OpenOptions};

    /// Sets a lock of `kind` over the whole file (test only).
    fn set_lock(file: &File, cmd: libc::c_int, kind: libc::c_int) {
        // SAFETY: all-zero is a valid `flock` (see above).
        let mut fl: libc::flock = unsafe { std::mem::zeroed() };
        fl.l_type = kind as libc::c_short;
        fl.l_whence = libc::SEEK_SET as libc::c_short;
        // SAFETY: as in `get_lock`; F_SETLK / F_OFD_SETLK read the struct.
        let rc = unsafe { libc::fcntl(file.as_raw_fd(), cmd, &mut fl as *mut libc::flock) };
        assert_eq!(rc, 0, "{}", io::Error::last_os_error());
    }

    fn open_rw(path: &std::path::Path) -> File {
        OpenOptions::new()
            .read(true)
            .write(true)
            .open(path)
            .unwrap()
    }

    #[test]
    // Miri: fcntl record locks (F_GETLK, F_OFD_GETLK): not emulated by Miri.
    #[cfg_attr(miri, ignore)]
    fn unlocked_file_has_no_holder() {
        let f = tempfile::NamedTempFile::new().unwrap();
        for access in [Access::Read, Access::Write] {
            assert_eq!(conflicting_lock(f.as_file(), access).unwrap(), None);
        }
    }

    #[test]
    // Miri: fcntl record locks (F_GETLK, F_OFD_GETLK): not emulated by Miri.
    #[cfg_attr(miri, ignore)]
    fn posix_locks_of_this_process_are_seen_with_its_pid() {
        // A POSIX lock belongs to the process; the OFD query comes from
        // another owner (this descriptor), so it sees the conflict.
        let f = tempfile::NamedTempFile::new().unwrap();
        let holder = open_rw(f.path());
        set_lock(&holder, libc::F_SETLK, libc::F_WRLCK);
        let probe = File::open(f.path()).unwrap();
        let me = Some(std::process::id());
        for access in [Access::Read, Access::Write] {
            assert_eq!(
                conflicting_lock(&probe, access).unwrap(),
                Some(LockHolder {
                    write: true,
                    pid: me
                })
            );
        }
        // Downgraded to a read lock, it conflicts with writing only.
        set_lock(&holder, libc::F_SETLK, libc::F_RDLCK);
        assert_eq!(conflicting_lock(&probe, Access::Read).unwrap(), None);
        assert_eq!(
            conflicting_lock(&probe, Access::Write).unwrap(),
            Some(LockHolder {
                write: false,
                pid: me
            })
        );
    }

    #[test]
    // Miri: fcntl record locks (F_GETLK, F_OFD_GETLK): not emulated by Miri.
    #[cfg_attr(miri, ignore)]
    fn ofd_locks_are_seen_without_a_pid() {
        let f = tempfile::NamedTempFile::new().unwrap();
        let holder = File::open(f.path()).unwrap();
        set_lock(&holder, libc::F_OFD_SETLK, libc::F_RDLCK);
        let probe = File::open(f.path()).unwrap();
        assert_eq!(conflicting_lock(&probe, Access::Read).unwrap(), None);
        assert_eq!(
            conflicting_lock(&probe, Access::Write).unwrap(),
            Some(LockHolder {
                write: false,
                pid: None
            })
        );
        // The holder's own description does not conflict with itself.
        assert_eq!(conflicting_lock(&holder, Access::Write).unwrap(), None);
        drop(holder);
        assert_eq!(conflicting_lock(&probe, Access::Write).unwrap(), None);
    }

    #[test]
    // Miri: fcntl record locks (F_GETLK, F_OFD_GETLK): not emulated by Miri.
    #[cfg_attr(miri, ignore)]
    fn probing_sets_no_lock() {
        let f = tempfile::NamedTempFile::new().unwrap();
        let probe = File::open(f.path()).unwrap();
        conflicting_lock(&probe, Access::Write).unwrap();
        conflicting_lock(&probe, Access::Read).unwrap();
        // Another description can still take an exclusive OFD lock.
        let other = open_rw(f.path());
        set_lock(&other, libc::F_OFD_SETLK, libc::F_WRLCK);
    }
}
