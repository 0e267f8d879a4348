//! `port-helper`'s seccomp allow-list (`docs/helpers.md` §7): once the
//! channel is open and the terminal given up, the helper only sends one
//! message, waits for the hang-up and exits. No file, no socket, no
//! ioctl, no program.

#[cfg(not(target_arch = "x86_64"))]
compile_error!(
    "the seccomp allow-list of this tool names x86_64 system calls; write \
     and test one for this architecture (uml_common::sys::seccomp) first"
);

use uml_common::sys::seccomp::{self, AllowList};

use crate::Error;

/// The calls the helper makes once set up (besides the common base).
pub fn allow_list() -> AllowList {
    AllowList::new("port-helper").allow(&[
        // The one datagram to the kernel, with the terminal as SCM_RIGHTS.
        libc::SYS_sendmsg,
        // Waiting for the hang-up.
        libc::SYS_poll,
        libc::SYS_ppoll,
    ])
}

/// Confines the helper (unless `UML_UTILITIES_NO_SECCOMP=1`); `Some`: the
/// self-test's exit status.
pub fn confine() -> Result<Option<i32>, Error> {
    seccomp::confine(&allow_list(), seccomp::self_test_requested(), true).map_err(Error::Seccomp)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn compiles_and_runs_nothing() {
        let list = allow_list();
        assert_eq!(list.compile().unwrap().len(), 1);
        for call in [
            libc::SYS_execve,
            libc::SYS_execveat,
            libc::SYS_openat,
            libc::SYS_socket,
        ] {
            assert!(!list.permits(call, &[0; 6]), "{call}");
        }
    }
}
