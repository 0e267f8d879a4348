//! Refusing to change a disk file that a running UML is using.
//!
//! The UML block driver takes `fcntl` record locks on the files of each
//! ubd device: a write lock on a writable image or COW file, a read lock
//! on a backing file. Linux 7.x holds them for the device's whole
//! lifetime, 6.1 while the guest has the device open (see
//! [`crate::sys::lock`]). `uml_moo` and `uml_mkcow` ask, before they
//! change anything, whether their access to each file conflicts with such
//! a lock — reading conflicts with a write lock, writing or replacing with
//! any lock — and refuse if it does, unless given [`IGNORE_LOCKS`]. The
//! test takes no lock itself.

use std::ffi::OsString;
use std::fs::File;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

pub use crate::sys::lock::Access;
use crate::sys::lock::{conflicting_lock, LockHolder};

/// The option that skips the check (for a guest known to be stopped).
pub const IGNORE_LOCKS: &str = "--ignore-locks";

/// A file a UML holds in a way that conflicts with what the tool would do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InUse {
    /// What the file is to the tool: `COW file`, `backing file`, ...
    pub role: &'static str,
    /// The file as the tool names it (given, or from the COW header).
    pub path: PathBuf,
    /// The lock found.
    pub holder: LockHolder,
}

impl InUse {
    /// The two lines printed on stderr (each ends in `\n`): the file, the
    /// lock and its holder; that nothing changed and what to do.
    ///
    /// ```text
    /// COW file "root.cow" is in use by a UML guest (process 4242 holds a write lock on it)
    /// Nothing was changed. Halt the guest, or remove the device (uml_mconsole UMID remove ubdN), and try again; --ignore-locks proceeds anyway, for a guest that is stopped.
    /// ```
    pub fn message(&self) -> Vec<u8> {
        let mut v = Vec::new();
        v.extend_from_slice(self.role.as_bytes());
        v.extend_from_slice(b" \"");
        v.extend_from_slice(self.path.as_os_str().as_bytes());
        v.extend_from_slice(b"\" is in use by a UML guest (");
        let kind = if self.holder.write { "write" } else { "read" };
        match self.holder.pid {
            Some(pid) => v.extend_from_slice(
                format!("process {pid} holds a {kind} lock on it)\n").as_bytes(),
            ),
            None => v.extend_from_slice(format!("a {kind} lock is held on it)\n").as_bytes()),
        }
        v.extend_from_slice(
            format!(
                "Nothing was changed. Halt the guest, or remove the device (uml_mconsole UMID \
                 remove ubdN), and try again; {IGNORE_LOCKS} proceeds anyway, for a guest that \
                 is stopped.\n"
            )
            .as_bytes(),
        );
        v
    }
}

/// Checks the open `file` (named `path`, playing `role`) for a lock that
/// conflicts with `access`. A file system that cannot report locks counts
/// as unlocked (the tool then behaves as Debian's).
pub fn check_file(
    file: &File,
    path: &Path,
    role: &'static str,
    access: Access,
) -> Result<(), InUse> {
    match conflicting_lock(file, access) {
        Ok(Some(holder)) => Err(InUse {
            role,
            path: path.to_path_buf(),
            holder,
        }),
        Ok(None) | Err(_) => Ok(()),
    }
}

/// [`check_file`] for a path: opened read-only for the test (a lock is
/// tested, not taken, so read access is enough even for [`Access::Write`]).
/// A file that cannot be opened passes: the tool's own open reports it.
pub fn check_path(path: &Path, role: &'static str, access: Access) -> Result<(), InUse> {
    match File::open(path) {
        Ok(file) => check_file(&file, path, role, access),
        Err(_) => Ok(()),
    }
}

/// Removes every [`IGNORE_LOCKS`] from `args` (the arguments after the
/// program name) and says whether there was one. The argument after any
/// of `value_options` is a value and kept as it is.
pub fn take_ignore_locks(args: &[OsString], value_options: &[&str]) -> (Vec<OsString>, bool) {
    let mut kept = Vec::with_capacity(args.len());
    let mut found = false;
    let mut iter = args.iter();
    while let Some(a) = iter.next() {
        if a.as_bytes() == IGNORE_LOCKS.as_bytes() {
            found = true;
            continue;
        }
        kept.push(a.clone());
        if value_options.iter().any(|o| a.as_bytes() == o.as_bytes()) {
            if let Some(v) = iter.next() {
                kept.push(v.clone());
            }
        }
    }
    (kept, found)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn os(v: &[&str]) -> Vec<OsString> {
        v.iter().map(OsString::from).collect()
    }

    #[test]
    fn option_is_taken_anywhere_but_as_a_value() {
        assert_eq!(
            take_ignore_locks(&os(&["--ignore-locks", "-d", "c"]), &["-b"]),
            (os(&["-d", "c"]), true)
        );
        assert_eq!(
            take_ignore_locks(&os(&["-d", "c", "--ignore-locks"]), &["-b"]),
            (os(&["-d", "c"]), true)
        );
        assert_eq!(
            take_ignore_locks(&os(&["-b", "--ignore-locks", "c", "o"]), &["-b"]),
            (os(&["-b", "--ignore-locks", "c", "o"]), false)
        );
        assert_eq!(
            take_ignore_locks(&os(&["-f", "c", "b"]), &[]),
            (os(&["-f", "c", "b"]), false)
        );
        assert_eq!(
            take_ignore_locks(&os(&["-b"]), &["-b"]),
            (os(&["-b"]), false)
        );
    }

    #[test]
    fn messages() {
        let m = InUse {
            role: "COW file",
            path: PathBuf::from("root.cow"),
            holder: LockHolder {
                write: true,
                pid: Some(4242),
            },
        };
        assert_eq!(
            String::from_utf8(m.message()).unwrap(),
            "COW file \"root.cow\" is in use by a UML guest (process 4242 holds a write lock \
             on it)\nNothing was changed. Halt the guest, or remove the device (uml_mconsole \
             UMID remove ubdN), and try again; --ignore-locks proceeds anyway, for a guest \
             that is stopped.\n"
        );
        let m = InUse {
            role: "backing file",
            path: PathBuf::from("/b.img"),
            holder: LockHolder {
                write: false,
                pid: None,
            },
        };
        let text = String::from_utf8(m.message()).unwrap();
        assert!(
            text.starts_with(
                "backing file \"/b.img\" is in use by a UML guest (a read lock is held on it)\n"
            ),
            "{text}"
        );
    }

    #[test]
    // Open file description locks (fcntl F_OFD_GETLK): not emulated by Miri.
    #[cfg_attr(miri, ignore)]
    fn unopenable_and_unlocked_files_pass() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("none");
        assert_eq!(check_path(&p, "COW file", Access::Write), Ok(()));
        std::fs::write(&p, b"x").unwrap();
        assert_eq!(check_path(&p, "COW file", Access::Write), Ok(()));
    }
}
