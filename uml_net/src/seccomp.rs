//! `uml_net`'s seccomp allow-list (`docs/uml_net.md` §9),
//! installed once the helper holds CAP_NET_ADMIN alone and has read its
//! policy, before anything on the host changes.
//!
//! `uml_net` never runs a program (the C helper ran `ip`, `route`,
//! `ifconfig` through a shell; this one speaks rtnetlink and writes
//! `/proc/sys`), so `execve` is simply not in the list. What stays is its
//! job: a `NETLINK_ROUTE` socket (no other netlink family), the TUN/TAP
//! and SLIP ioctls it makes (no `SIOCSIF*`), `/proc/sys`, and the reply
//! on its descriptors. The policy file is read (as root) and parsed, its
//! user and group names resolved, before the filter (`lib.rs`): the C
//! library's name-service modules (nss_systemd and others) make
//! calls no list can foresee, so they run unconfined, and the confined
//! helper has no `AF_UNIX` socket and no executable memory.
//!
//! The escape hatch `UML_UTILITIES_NO_SECCOMP` does not exist here: the
//! environment of a setuid program is its caller's. The self-test
//! (`UML_UTILITIES_SECCOMP_SELF_TEST=exec`, read before the environment is
//! cleared) can only kill the caller's own helper.

#[cfg(not(target_arch = "x86_64"))]
compile_error!(
    "the seccomp allow-list of this tool names x86_64 system calls; write \
     and test one for this architecture (uml_common::sys::seccomp) first"
);

use uml_common::sys::seccomp::{self, AllowList, Cond};

use crate::Error;

/// `SIOCSIFENCAP`: the SLIP encapsulation.
const SIOCSIFENCAP: u64 = 0x8926;
/// `NETLINK_ROUTE`.
const NETLINK_ROUTE: u64 = 0;

/// Whether the self-test is asked for: read first thing, while the
/// caller's environment is still there.
pub fn self_test_requested() -> bool {
    seccomp::self_test_requested()
}

/// The calls the helper makes once privileges are dropped (besides the
/// common base).
pub fn allow_list() -> AllowList {
    let request = |r: u64| [Cond::Eq(1, r)];
    let ioctls = [
        request(libc::TUNSETIFF),
        request(libc::TUNSETOWNER),
        request(libc::TUNGETIFF),
        request(libc::TIOCSETD),
        request(libc::TIOCGETD),
        request(SIOCSIFENCAP),
        request(libc::SIOCGIFNAME),
        request(libc::TCGETS),
        request(libc::FIONREAD),
    ];
    let ioctls: Vec<&[Cond]> = ioctls.iter().map(|c| &c[..]).collect();
    let netlink = [
        Cond::Eq(0, libc::AF_NETLINK as u64),
        Cond::Eq(2, NETLINK_ROUTE),
    ];
    AllowList::new("uml_net")
        .allow(&[
            // rtnetlink, the reply (SCM_RIGHTS).
            libc::SYS_bind,
            libc::SYS_connect,
            libc::SYS_getsockname,
            libc::SYS_getsockopt,
            libc::SYS_setsockopt,
            libc::SYS_sendto,
            libc::SYS_sendmsg,
            libc::SYS_recvfrom,
            libc::SYS_recvmsg,
            libc::SYS_poll,
            libc::SYS_ppoll,
            // /proc/sys.
            libc::SYS_openat,
            libc::SYS_fstat,
            libc::SYS_newfstatat,
            libc::SYS_statx,
            libc::SYS_lseek,
            libc::SYS_pread64,
            libc::SYS_readv,
            libc::SYS_fcntl,
            libc::SYS_getdents64,
            // Who asked (the policy's uid and groups).
            libc::SYS_getuid,
            libc::SYS_geteuid,
            libc::SYS_getgid,
            libc::SYS_getegid,
            libc::SYS_getgroups,
            libc::SYS_getresuid,
            libc::SYS_getresgid,
        ])
        .allow_when(libc::SYS_socket, &[&netlink])
        .allow_when(libc::SYS_ioctl, &ioctls)
}

/// Confines the helper; `Some`: the self-test's exit status.
pub fn confine(self_test: bool) -> Result<Option<i32>, Error> {
    seccomp::confine(&allow_list(), self_test, false).map_err(Error::Seccomp)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn compiles_and_changes_only_what_uml_net_changes() {
        let list = allow_list();
        assert_eq!(list.compile().unwrap().len(), 1);
        for call in [
            libc::SYS_execve,
            libc::SYS_execveat,
            libc::SYS_clone,
            libc::SYS_setresuid,
            libc::SYS_capset,
            libc::SYS_unlink,
            libc::SYS_rename,
        ] {
            assert!(!list.permits(call, &[0; 6]), "{call}");
        }
        let route = [libc::AF_NETLINK as u64, 3, 0, 0, 0, 0];
        let xfrm = [libc::AF_NETLINK as u64, 3, 6, 0, 0, 0];
        let inet = [libc::AF_INET as u64, 2, 0, 0, 0, 0];
        let unix = [libc::AF_UNIX as u64, 1, 0, 0, 0, 0];
        assert!(!list.permits(libc::SYS_socket, &unix));
        assert!(list.permits(libc::SYS_socket, &route));
        assert!(!list.permits(libc::SYS_socket, &xfrm));
        assert!(!list.permits(libc::SYS_socket, &inet));
        assert!(list.permits(libc::SYS_ioctl, &[0, libc::TUNSETIFF, 0, 0, 0, 0]));
        assert!(!list.permits(libc::SYS_ioctl, &[0, libc::TUNSETPERSIST, 0, 0, 0, 0]));
        assert!(!list.permits(libc::SYS_ioctl, &[0, libc::SIOCSIFADDR, 0, 0, 0, 0]));
    }
}
