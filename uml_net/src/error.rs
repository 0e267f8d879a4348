//! Why a `uml_net` request fails. Each variant displays as the line the
//! helper reports, without its final newline: argument errors as
//! [`ArgError`] words them, everything after validation as one readable
//! line for the kernel's console. Where it goes (stderr, stdout, or the
//! reply the kernel reads in its framing) is decided at the edge:
//! [`uumain`](crate::uumain) and [`actions::perform`](crate::actions::perform).

use std::io;
use std::net::Ipv4Addr;
use std::path::PathBuf;

use nix::errno::Errno;
use uml_common::cli::strerror;
use uml_common::sys::tun::{TunError, DEFAULT_CLONE_DEVICE};
use uml_common::umlnet::{ArgError, IfName};

use crate::policy::POLICY_PATH;

/// Why a `uml_net` request fails.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The argv is refused (see [`uml_common::umlnet::Parsed`] for where
    /// each is reported).
    #[error(transparent)]
    Arguments(#[from] ArgError),

    /// A system call giving up root or privileges failed at this step.
    #[error("uml_net : {0} failed : {1}")]
    System(&'static str, Errno),
    /// Changing the capability sets failed at `step`.
    #[error("uml_net : {0} failed : {1}")]
    Capabilities(&'static str, caps::errors::CapsError),
    /// A capability could not be dropped from the bounding set.
    #[error("uml_net : {0}")]
    Bounding(uml_common::sys::caps::BoundingError),
    /// A privilege step reported success but the kernel's account of the
    /// process (ids, capability sets, NoNewPrivs, dumpable, core limit)
    /// is not what it should be.
    #[error("uml_net : privileges not dropped as required: {0}")]
    Unconfined(String),
    /// The ids after `setresuid` are not the caller's.
    #[error("uml_net : could not give up root")]
    StillRoot,
    /// Neither setuid root nor run by root.
    #[error(
        "uml_net : needs CAP_NET_ADMIN: install it setuid root (mode 4754 root:uml-net) or run it as root"
    )]
    NoNetAdmin,

    /// The policy file exists but cannot be read.
    #[error("uml_net : cannot read {}: {}", .path.display(), strerror(.source))]
    PolicyRead {
        /// The policy file.
        path: PathBuf,
        /// Why.
        source: io::Error,
    },
    /// The policy file is not a regular file owned by root and closed to
    /// others' writes.
    #[error(
        "uml_net : refusing: {} must be a regular file owned by root and not writable by others",
        .0.display()
    )]
    PolicyInsecure(PathBuf),
    /// A directory on the way to the policy file is not a directory owned
    /// by root and closed to others' writes (or root's and sticky).
    #[error(
        "uml_net : refusing {POLICY_PATH}: {} must be a directory owned by root and not writable by others",
        .0.display()
    )]
    PolicyDirInsecure(PathBuf),
    /// A line of the policy file is not a rule.
    #[error("{POLICY_PATH}:{line}: {why}")]
    PolicySyntax {
        /// The line number (from 1).
        line: usize,
        /// What is wrong with it.
        why: &'static str,
    },
    /// The policy does not let the caller use the address.
    #[error("uml_net : refused by {POLICY_PATH}: uid {uid} may not use {addr}")]
    PolicyRefused {
        /// The caller's real uid.
        uid: u32,
        /// The gateway or guest address asked for.
        addr: Ipv4Addr,
    },

    /// The device is not a TUN/TAP device.
    #[error("uml_net : refusing to change '{0}': it is not a TUN/TAP device")]
    NotTun(IfName),
    /// The device belongs to another user.
    #[error("uml_net : refusing to change '{dev}': it belongs to uid {owner}, not to uid {uid}")]
    NotOwner {
        /// The device.
        dev: IfName,
        /// Its owner.
        owner: u32,
        /// The caller.
        uid: u32,
    },
    /// The device has no owner and the caller is not root.
    #[error("uml_net : refusing to change '{0}': it has no owner, so only root may change it")]
    NoOwner(IfName),

    /// The rtnetlink socket cannot be opened.
    #[error("netlink socket: {}", strerror(.0))]
    NetlinkSocket(io::Error),
    /// The kernel refused a netlink request.
    #[error("RTNETLINK answers: {}", strerror(.0))]
    Netlink(io::Error),
    /// No interface of that name.
    #[error("uml_net : no such interface '{0}'")]
    NoSuchInterface(String),
    /// A `/proc/sys` setting cannot be written.
    #[error("{path}: {}", strerror(.source))]
    Sysctl {
        /// The `/proc/sys` file.
        path: String,
        /// Why.
        source: io::Error,
    },

    /// The clone device cannot be opened.
    #[error("{DEFAULT_CLONE_DEVICE}: {}", strerror(.0))]
    CloneDevice(io::Error),
    /// No tap can be made on the clone device.
    #[error("{DEFAULT_CLONE_DEVICE}: {0}")]
    Attach(TunError),
    /// The kernel named the interface in a way this helper does not accept.
    #[error("unexpected interface name '{0}'")]
    UnexpectedName(String),
    /// `TUNSETOWNER` failed.
    #[error("TUNSETOWNER: {}", strerror(.0))]
    SetOwner(io::Error),
    /// The new tap could not be given its address or brought up; it has
    /// been removed.
    #[error("{cause}\n'{name}' could not be configured; it has been removed")]
    TapRemoved {
        /// The tap.
        name: IfName,
        /// What failed.
        cause: Box<Error>,
    },

    /// A step of the SLIP set-up on the pty (stdin) failed.
    #[error("{0}: {}", strerror(.1))]
    Slip(&'static str, io::Error),
    /// The host kernel has no ethertap driver.
    #[error(
        "uml_net : ethertap device '{0}' is not available: the host kernel has no ethertap driver (removed in Linux 2.6); use eth0=tuntap,,,GATEWAY instead"
    )]
    EthertapUnavailable(IfName),
    /// Some steps of an address change failed; each is reported on its
    /// own line where it happened (no further message).
    #[error("")]
    Incomplete,

    /// The reply could not be written on fd 1.
    #[error("write_output : write failed: {}", .0.desc())]
    WriteReply(Errno),
    /// Fd 1 took no more of the reply (no message).
    #[error("")]
    ShortReply,
    /// The `tuntap up` reply datagram could not be sent.
    #[error("sendmsg: {}", .0.desc())]
    SendReply(Errno),
}

impl Error {
    /// The exit status: 1. (A `tuntap up` request that fails after
    /// validation answers the kernel in its reply datagram and exits 0:
    /// see [`actions::perform`](crate::actions::perform).)
    pub fn exit_code(&self) -> i32 {
        1
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::reply::Output;

    #[test]
    fn messages() {
        let tap0 = IfName::parse("tap0").unwrap();
        assert_eq!(
            Error::PolicyRefused {
                uid: 1000,
                addr: Ipv4Addr::new(10, 0, 0, 1)
            }
            .to_string(),
            "uml_net : refused by /etc/uml-utilities/uml_net.conf: uid 1000 may not use 10.0.0.1"
        );
        assert_eq!(
            Error::NotOwner {
                dev: tap0.clone(),
                owner: 1,
                uid: 2
            }
            .to_string(),
            "uml_net : refusing to change 'tap0': it belongs to uid 1, not to uid 2"
        );
        assert_eq!(
            Error::System("setresuid", Errno::EPERM).to_string(),
            "uml_net : setresuid failed : EPERM: Operation not permitted"
        );
        assert_eq!(
            Error::WriteReply(Errno::EPIPE).to_string(),
            "write_output : write failed: Broken pipe"
        );
        assert_eq!(
            Error::from(ArgError::IfNameCharacters).to_string(),
            "Device doesn't contain only alphanumeric characters"
        );
        assert!(Error::Incomplete.to_string().is_empty());
    }

    #[test]
    fn a_removed_tap_logs_the_cause_then_the_removal() {
        let e = Error::TapRemoved {
            name: IfName::parse("tap0").unwrap(),
            cause: Box::new(Error::Netlink(io::Error::from_raw_os_error(libc::EEXIST))),
        };
        let mut out = Output::default();
        out.action("ip address add 10.0.0.254/32 dev tap0");
        out.error(&e);
        out.error(&Error::Incomplete);
        assert_eq!(
            out.text(),
            "* ip address add 10.0.0.254/32 dev tap0\n\
             RTNETLINK answers: File exists\n\
             'tap0' could not be configured; it has been removed\n"
        );
        assert_eq!(e.exit_code(), 1);
    }
}
