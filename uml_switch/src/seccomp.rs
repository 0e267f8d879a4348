//! The switch's seccomp allow-list (`docs/switch.md` §12),
//! installed by [`crate::server::run`] once every port is open, before the
//! event loop.
//!
//! The switch keeps running the management socket's `port add` (raw,
//! tap, l2tpv3, gre, vxlan, bess-connect and qemu-connect ports) and
//! `capture start` (a new pcap file, rotated by renaming), accepts new daemon, vde and bess clients and
//! removes its socket files at exit, so it keeps opening sockets and
//! files; what the list takes away is everything else:
//!
//! * no program, no new process or thread, no identity or namespace change
//!   (the common `NEVER` list);
//! * sockets of the families its ports use only (`AF_UNIX`, `AF_INET`,
//!   `AF_INET6`, `AF_PACKET`): no `AF_NETLINK`, so no route, address or
//!   link change through rtnetlink;
//! * `ioctl` only for the requests that read (interface index and name,
//!   MTU, flags, terminal check) and `TUNSETIFF` (attaching a tap, its job):
//!   no `SIOCSIF*`, so no interface is reconfigured;
//! * files: seccomp cannot tell paths apart, so `openat`, `rename` and
//!   `unlink` stay (capture files, the tap's clone device, socket files),
//!   limited by the switch's uid as before. No
//!   `mkdir`, `link`, `symlink`, `truncate`, no change of a file's owner
//!   (a vde data socket only gets its control socket's group);
//! * no executable memory.

#[cfg(not(target_arch = "x86_64"))]
compile_error!(
    "the seccomp allow-list of this tool names x86_64 system calls; write \
     and test one for this architecture (uml_common::sys::seccomp) first"
);

use uml_common::sys::seccomp::{self, AllowList, Cond};

use crate::Error;

/// `SIOCGIFINDEX` (glibc's `if_nametoindex`).
const SIOCGIFINDEX: u64 = 0x8933;

/// The calls the switch makes once set up (besides the common base).
pub fn allow_list() -> AllowList {
    let family = |f: i32| [Cond::Eq(0, f as u64)];
    let (unix, inet, inet6, packet) = (
        family(libc::AF_UNIX),
        family(libc::AF_INET),
        family(libc::AF_INET6),
        family(libc::AF_PACKET),
    );
    let request = |r: u64| [Cond::Eq(1, r)];
    let ioctls = [
        request(libc::TUNSETIFF),
        request(SIOCGIFINDEX),
        request(libc::SIOCGIFNAME),
        request(libc::SIOCGIFMTU),
        request(libc::SIOCGIFFLAGS),
        request(libc::TCGETS),
        request(libc::FIONBIO),
        request(libc::FIONREAD),
    ];
    let ioctls: Vec<&[Cond]> = ioctls.iter().map(|c| &c[..]).collect();
    AllowList::new("uml_switch")
        .allow(&[
            // The event loop.
            libc::SYS_epoll_wait,
            libc::SYS_epoll_pwait,
            libc::SYS_epoll_ctl,
            libc::SYS_poll,
            libc::SYS_ppoll,
            // Frames and control messages, descriptors passed (SCM_RIGHTS).
            libc::SYS_recvfrom,
            libc::SYS_recvmsg,
            libc::SYS_recvmmsg,
            libc::SYS_sendto,
            libc::SYS_sendmsg,
            libc::SYS_sendmmsg,
            libc::SYS_readv,
            // New clients and new ports.
            libc::SYS_accept,
            libc::SYS_accept4,
            libc::SYS_bind,
            libc::SYS_connect,
            libc::SYS_listen,
            libc::SYS_shutdown,
            libc::SYS_getsockname,
            libc::SYS_getpeername,
            libc::SYS_getsockopt,
            libc::SYS_setsockopt,
            libc::SYS_socketpair,
            libc::SYS_fcntl,
            libc::SYS_dup,
            libc::SYS_dup3,
            // A raw port's wake-up (raw ports can be added at run time).
            libc::SYS_eventfd2,
            // Capture files, the tap's clone device, socket files.
            libc::SYS_openat,
            libc::SYS_fstat,
            libc::SYS_newfstatat,
            libc::SYS_statx,
            libc::SYS_lseek,
            libc::SYS_fsync,
            libc::SYS_fdatasync,
            libc::SYS_unlink,
            libc::SYS_unlinkat,
            libc::SYS_rename,
            libc::SYS_renameat,
            libc::SYS_renameat2,
            libc::SYS_chmod,
            libc::SYS_fchmod,
            libc::SYS_fchmodat,
            libc::SYS_umask,
            // vde socket paths made absolute.
            libc::SYS_getcwd,
            // SO_PEERCRED answers, `ports` listings.
            libc::SYS_getuid,
            libc::SYS_geteuid,
            libc::SYS_getgid,
            libc::SYS_getegid,
            libc::SYS_getrlimit,
            libc::SYS_prlimit64,
        ])
        // Pcap ports' helpers (started at set-up): reaped when their port
        // goes (`wait4`: own children only), and killed if one has not
        // ended 1 s after its socket closed — SIGKILL only.
        .allow(&[libc::SYS_wait4])
        .allow_when(libc::SYS_kill, &[&[Cond::Eq(1, libc::SIGKILL as u64)]])
        .allow_when(libc::SYS_socket, &[&unix, &inet, &inet6, &packet])
        .allow_when(libc::SYS_ioctl, &ioctls)
        // A vde data socket gets its control socket's group: the owner
        // stays (uid -1).
        .allow_when(libc::SYS_chown, &[&[Cond::Eq(1, KEEP_ID)]])
        .allow_when(libc::SYS_fchownat, &[&[Cond::Eq(2, KEEP_ID)]])
}

/// `(uid_t) -1`: `chown` leaves the owner alone.
const KEEP_ID: u64 = 0xffff_ffff;

/// Confines the switch (unless `UML_UTILITIES_NO_SECCOMP=1`); `Some`: the
/// self-test's exit status.
pub fn confine() -> Result<Option<i32>, Error> {
    seccomp::confine(&allow_list(), seccomp::self_test_requested(), true).map_err(Error::Seccomp)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn compiles_and_keeps_to_the_switch_job() {
        let list = allow_list();
        assert_eq!(list.compile().unwrap().len(), 1);
        for call in [
            libc::SYS_execve,
            libc::SYS_execveat,
            libc::SYS_clone,
            libc::SYS_mkdir,
            libc::SYS_symlink,
            libc::SYS_lchown,
        ] {
            assert!(!list.permits(call, &[0; 6]), "{call}");
        }
        let netlink = [libc::AF_NETLINK as u64, 3, 0, 0, 0, 0];
        assert!(!list.permits(libc::SYS_socket, &netlink));
        let packet = [libc::AF_PACKET as u64, 3, 0, 0, 0, 0];
        assert!(list.permits(libc::SYS_socket, &packet));
        let set_flags = [3, libc::SIOCSIFFLAGS, 0, 0, 0, 0];
        assert!(!list.permits(libc::SYS_ioctl, &set_flags));
        let get_flags = [3, libc::SIOCGIFFLAGS, 0, 0, 0, 0];
        assert!(list.permits(libc::SYS_ioctl, &get_flags));
        assert!(list.permits(libc::SYS_chown, &[0, KEEP_ID, 100, 0, 0, 0]));
        assert!(!list.permits(libc::SYS_chown, &[0, 0, 100, 0, 0, 0]));
    }
}
