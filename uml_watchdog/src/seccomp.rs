//! `uml_watchdog`'s seccomp allow-list (`docs/helpers.md` §7), installed
//! once the arguments are read: the helper reads pings, writes the ready
//! byte and, on expiry, signals the one process it watches (`-pid`) or
//! sends one datagram (`-mconsole`). No file, no other process, no
//! program.

#[cfg(not(target_arch = "x86_64"))]
compile_error!(
    "the seccomp allow-list of this tool names x86_64 system calls; write \
     and test one for this architecture (uml_common::sys::seccomp) first"
);

use uml_common::sys::seccomp::{self, AllowList, Cond};

use crate::{Error, Mode};

/// The calls the helper makes in `mode` (besides the common base).
pub fn allow_list(mode: &Mode) -> AllowList {
    let list = AllowList::new("uml_watchdog").allow(&[libc::SYS_poll, libc::SYS_ppoll]);
    match mode {
        Mode::Pid(pid) => {
            // Only the watched process: kill(pid, 0) to check it exists,
            // its pidfd, and the signals (through the pidfd, or kill(2)
            // on kernels without pidfds).
            let pid = u64::from(pid.unsigned_abs());
            list.allow_when(libc::SYS_kill, &[&[Cond::Eq(0, pid)]])
                .allow_when(libc::SYS_pidfd_open, &[&[Cond::Eq(0, pid)]])
                .allow(&[libc::SYS_pidfd_send_signal])
        }
        // The HANG notification: an unbound AF_UNIX datagram socket.
        Mode::Mconsole(_) => list
            .allow_when(libc::SYS_socket, &[&[Cond::Eq(0, libc::AF_UNIX as u64)]])
            .allow(&[libc::SYS_sendto]),
    }
}

/// Confines the helper (unless `UML_UTILITIES_NO_SECCOMP=1`); `Some`: the
/// self-test's exit status.
pub fn confine(mode: &Mode) -> Result<Option<i32>, Error> {
    seccomp::confine(&allow_list(mode), seccomp::self_test_requested(), true)
        .map_err(Error::Seccomp)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn compiles_and_signals_only_the_watched_process() {
        let list = allow_list(&Mode::Pid(4242));
        assert_eq!(list.compile().unwrap().len(), 1);
        assert!(list.permits(libc::SYS_kill, &[4242, 9, 0, 0, 0, 0]));
        assert!(!list.permits(libc::SYS_kill, &[1, 9, 0, 0, 0, 0]));
        assert!(!list.permits(libc::SYS_kill, &[u64::from(u32::MAX), 9, 0, 0, 0, 0]));
        assert!(!list.permits(libc::SYS_socket, &[libc::AF_UNIX as u64, 2, 0, 0, 0, 0]));
        let list = allow_list(&Mode::Mconsole("/n".into()));
        assert!(list.compile().is_ok());
        assert!(!list.permits(libc::SYS_kill, &[4242, 9, 0, 0, 0, 0]));
        assert!(!list.permits(libc::SYS_socket, &[libc::AF_INET as u64, 2, 0, 0, 0, 0]));
        for call in [libc::SYS_execve, libc::SYS_execveat, libc::SYS_openat] {
            assert!(!list.permits(call, &[0; 6]), "{call}");
        }
    }
}
