//! Why `uml_switch` ends before its event loop runs. Each variant displays
//! as what is written to stderr, without the final newline: Debian's C
//! switch's texts where it has them (its usage lines, `bind:`, the
//! control-socket blocks), for a failure to bind a socket file preceded by
//! the lines C prints on the way ([`BindFailure`]). [`uumain`](crate::uumain)
//! prints it, in the one place; the exit status is [`Error::exit_code`].
//!
//! Not errors: the notices of the command line and the `attached` lines
//! (stdout), a tap that cannot be opened (a warning; the switch runs
//! without it), and everything the event loop logs.

use std::ffi::OsString;
use std::io;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use nix::errno::Errno;
use uml_common::cli::strerror;
use uml_common::sys::mcast::McastError;
use uml_common::tunnel_opts::{TunnelKind, TunnelOptError};

use crate::port::mcast::McastConfig;
use crate::port::tunnel::option_name;
pub use crate::port::unix::BindFailure;
use crate::setup::{MAX_MTU, MIN_MTU};

/// Why `uml_switch` ends at start-up (status 1; `--launch`: 1, or 126 or
/// 127 when the program cannot be run).
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A bad argument or a missing option value: the C switch's usage
    /// lines.
    #[error("{}", crate::cli::usage(.prog).trim_end())]
    Usage {
        /// argv\[0\].
        prog: String,
    },
    /// `--mtu` is not a number from [`MIN_MTU`] to [`MAX_MTU`].
    #[error(
        "{prog}: --mtu '{value}': expected a number from {MIN_MTU} to {MAX_MTU} (the guests' \
         mtu=; frames of up to N + 14 bytes are forwarded)"
    )]
    Mtu {
        /// argv\[0\].
        prog: String,
        /// The value given.
        value: String,
    },
    /// `--user`: the user cannot be looked up or become (each step of
    /// giving up root is checked), or the socket files could not be
    /// removed by that user at exit.
    #[error("{prog}: --user '{spec}': {why}")]
    User {
        /// argv\[0\].
        prog: String,
        /// The value given.
        spec: String,
        /// What is wrong.
        why: String,
    },
    /// A `--l2tpv3`/`--gre` value a guest would refuse, panic on or
    /// misread.
    #[error("{prog}: {} '{value}': {reason}", option_name(*.kind))]
    TunnelOption {
        /// argv\[0\].
        prog: String,
        /// Which option (`--l2tpv3` or `--gre`).
        kind: TunnelKind,
        /// The value given.
        value: String,
        /// What is wrong.
        reason: TunnelOptError,
    },
    /// Two tunnel ports that would share a socket address.
    #[error(
        "{prog}: {} '{value}' and {} '{other_value}': {why}",
        option_name(*.kind),
        option_name(*.other_kind)
    )]
    TunnelConflict {
        /// argv\[0\].
        prog: String,
        /// Which option the later port was given with.
        kind: TunnelKind,
        /// Its value.
        value: String,
        /// Which option the earlier port was given with.
        other_kind: TunnelKind,
        /// Its value.
        other_value: String,
        /// What they share.
        why: String,
    },
    /// A `--mcast` value that is not `GROUP[,PORT[,TTL]]`.
    #[error("{prog}: {}: {why}", mcast_shown(.value))]
    McastOption {
        /// argv\[0\].
        prog: String,
        /// The value given (empty for plain `--mcast`).
        value: String,
        /// What is wrong.
        why: String,
    },
    /// The same mcast group and port given twice.
    #[error(
        "{prog}: {}: group {}:{} given twice (one port serves the whole group)",
        mcast_shown(.value),
        .config.group,
        .config.port
    )]
    McastTwice {
        /// argv\[0\].
        prog: String,
        /// The second value given.
        value: String,
        /// The group it names.
        config: McastConfig,
    },
    /// The handled signals cannot be blocked.
    #[error("sigprocmask: {0}")]
    Sigprocmask(Errno),
    /// The control socket cannot be bound (without `-compat-v0`).
    #[error("{failure}{}", control_socket_text(.path, .failure))]
    ControlSocket {
        /// The control socket's path.
        path: PathBuf,
        /// Why.
        failure: BindFailure,
    },
    /// `-compat-v0`: the control or the data socket (or both) cannot be
    /// bound; both are tried, as in C.
    #[error(
        "{}",
        compat_text(.prog, .ctl, .data, .ctl_failure.as_deref(), .data_failure.as_deref())
    )]
    CompatSockets {
        /// argv\[0\].
        prog: String,
        /// The control socket's path.
        ctl: PathBuf,
        /// The data socket's path.
        data: PathBuf,
        /// Why the control socket failed, if it did (boxed, as the other
        /// one: keeps `Error` small).
        ctl_failure: Option<Box<BindFailure>>,
        /// Why the data socket failed, if it did.
        data_failure: Option<Box<BindFailure>>,
    },
    /// The abstract data socket cannot be bound.
    #[error("Binding to data socket: {}", strerror(.0))]
    DataSocket(io::Error),
    /// A socket of the daemon port cannot be made non-blocking (`what`:
    /// C's `perror` text).
    #[error("{what}: {}", strerror(.source))]
    Nonblocking {
        /// C's `perror` argument.
        what: &'static str,
        /// Why.
        source: io::Error,
    },
    /// `--nat` options that are malformed or inconsistent.
    #[error("{prog}: --nat '{value}': {why}")]
    NatOption {
        /// argv\[0\].
        prog: String,
        /// The value given.
        value: String,
        /// What is wrong.
        why: uml_common::nat::NatOptionError,
    },
    /// `--nat` given more than once.
    #[error(
        "{prog}: --nat given twice (one NAT port per switch: its DHCP server serves every guest \
         of the segment)"
    )]
    NatTwice {
        /// argv\[0\].
        prog: String,
    },
    /// The NAT port's virtual network overlaps a network of the host.
    #[error(
        "{prog}: --nat '{value}': the virtual network {net} overlaps {host} of the host's \
         interface {ifname} (guests could not reach it); choose another with net="
    )]
    NatOverlap {
        /// argv\[0\].
        prog: String,
        /// The value given.
        value: String,
        /// The virtual network.
        net: String,
        /// The host's address and prefix.
        host: String,
        /// Its interface.
        ifname: String,
    },
    /// A forward of a privileged host port without the privilege.
    #[error(
        "{prog}: --nat: hostfwd={fwd}: host ports below {start} \
         (net.ipv4.ip_unprivileged_port_start) need CAP_NET_BIND_SERVICE, which the switch \
         lacks; forward a port from {start} on"
    )]
    NatPrivileged {
        /// argv\[0\].
        prog: String,
        /// The forward.
        fwd: String,
        /// The first unprivileged port.
        start: u16,
    },
    /// The NAT helper could not be started or did not start.
    #[error("{prog}: --nat: the NAT helper '{}' {why}", .helper.display())]
    NatStart {
        /// argv\[0\].
        prog: String,
        /// The helper's path.
        helper: PathBuf,
        /// What happened.
        why: String,
    },
    /// A `--bess` socket is refused or cannot be listened on.
    #[error("{}{prog}: --bess '{}': {why}", why.bind_lines(), .path.display())]
    Bess {
        /// argv\[0\].
        prog: String,
        /// The socket's path.
        path: PathBuf,
        /// Why.
        why: BessRefusal,
    },
    /// A tunnel port's socket cannot be opened.
    #[error("{prog}: {option} '{argument}': {why}")]
    Tunnel {
        /// argv\[0\].
        prog: String,
        /// `--l2tpv3` or `--gre`.
        option: &'static str,
        /// The guest argument of the port (as given, with `dstport=0`
        /// kept).
        argument: String,
        /// Why.
        why: TunnelRefusal,
    },
    /// A `--raw` port cannot be opened.
    #[error("{prog}: --raw '{ifname}': {why}")]
    Raw {
        /// argv\[0\].
        prog: String,
        /// The interface.
        ifname: String,
        /// Why.
        why: RawRefusal,
    },
    /// A `--mcast` group cannot be joined.
    #[error(
        "{prog}: --mcast={},{},{}: {why}",
        .config.group,
        .config.port,
        .config.ttl
    )]
    Mcast {
        /// argv\[0\].
        prog: String,
        /// The group.
        config: McastConfig,
        /// Why.
        why: McastRefusal,
    },
    /// `--mgmt-mode` is not an octal mode.
    #[error("{prog}: --mgmt-mode '{value}': expected permissions in octal, such as 0600 or 0660")]
    MgmtMode {
        /// argv\[0\].
        prog: String,
        /// The value given.
        value: String,
    },
    /// `--mgmt-mode` without `--mgmt`.
    #[error("{prog}: --mgmt-mode needs --mgmt PATH")]
    MgmtModeAlone {
        /// argv\[0\].
        prog: String,
    },
    /// `--mgmt-group` is not a known group, or without `--mgmt`.
    #[error("{prog}: --mgmt-group '{value}': {why}")]
    MgmtGroup {
        /// argv\[0\].
        prog: String,
        /// The value given.
        value: String,
        /// What is wrong.
        why: String,
    },
    /// A port that connects out (`--bess-connect`, `--qemu-connect`)
    /// cannot reach its peer.
    #[error("{prog}: {option} '{}': cannot connect: {} (is the peer listening there?)", .path.display(), strerror(.source))]
    Connect {
        /// argv\[0\].
        prog: String,
        /// The option.
        option: &'static str,
        /// The peer's socket.
        path: PathBuf,
        /// Why.
        source: io::Error,
    },
    /// The management socket cannot be opened.
    #[error("{prog}: --mgmt '{}': {source}", .path.display())]
    Mgmt {
        /// argv\[0\].
        prog: String,
        /// Its path.
        path: PathBuf,
        /// Why.
        source: crate::mgmt::MgmtError,
    },
    /// `--pcap-limit` is not a size, or `--pcap-limit` without `--pcap`.
    #[error("{prog}: --pcap-limit '{value}': expected a size of at least 64K with --pcap FILE (bytes, or with K, M, G)")]
    PcapLimit {
        /// argv\[0\].
        prog: String,
        /// The value given.
        value: String,
    },
    /// The capture file cannot be started.
    #[error("{prog}: --pcap: {source}")]
    Pcap {
        /// argv\[0\].
        prog: String,
        /// Why.
        source: crate::capture::CaptureError,
    },
    /// `--pcap-format` is neither `pcap` nor `pcapng`, or given without
    /// `--pcap`.
    #[error("{prog}: --pcap-format '{value}': expected pcap or pcapng, with --pcap FILE")]
    PcapFormat {
        /// argv\[0\].
        prog: String,
        /// The value given.
        value: String,
    },
    /// Bad `--pcap-port` options.
    #[error("{prog}: --pcap-port '{value}': {why}")]
    PcapPortOptions {
        /// argv\[0\].
        prog: String,
        /// The value given.
        value: String,
        /// What is wrong.
        why: String,
    },
    /// A pcap port cannot be opened (the helper's message for a bad
    /// interface or filter).
    #[error("{prog}: --pcap-port '{ifname}': {why}")]
    PcapPort {
        /// argv\[0\].
        prog: String,
        /// The interface.
        ifname: String,
        /// Why.
        why: String,
    },
    /// Bad `--vxlan` options.
    #[error("{prog}: --vxlan '{value}': {why}")]
    VxlanOptions {
        /// argv\[0\].
        prog: String,
        /// The options given.
        value: String,
        /// What is wrong.
        why: String,
    },
    /// A VXLAN port cannot be opened.
    #[error("{prog}: --vxlan: {why}")]
    Vxlan {
        /// argv\[0\].
        prog: String,
        /// Why.
        why: String,
    },
    /// The sockets passed by the service manager are not usable.
    #[error("{prog}: socket activation: {why}")]
    Activation {
        /// argv\[0\].
        prog: String,
        /// What is wrong.
        why: String,
    },
    /// `-daemon`: `daemon()` failed.
    #[error("daemon: {}", .0.desc())]
    Daemon(Errno),
    /// The event loop's epoll instance cannot be made or set up.
    #[error("epoll: {}", strerror(.0))]
    Epoll(io::Error),
    /// The signalfd cannot be made.
    #[error("signalfd: {}", strerror(.0))]
    Signalfd(io::Error),
    /// The seccomp allow-list cannot be installed (`seccomp.rs`).
    #[error("{0}")]
    Seccomp(uml_common::sys::seccomp::SeccompError),
    /// `--launch` with bad arguments (`why`), then its usage line.
    #[error("{prog} --launch: {why}\n{}", crate::launch::usage(.prog).trim_end())]
    LaunchUsage {
        /// argv\[0\].
        prog: String,
        /// What is wrong.
        why: String,
    },
    /// `--launch`: the bess socket cannot be connected to or the
    /// connection cannot be put on its descriptor.
    #[error("{prog} --launch: {why}")]
    LaunchConnect {
        /// argv\[0\].
        prog: String,
        /// What failed.
        why: String,
    },
    /// `--launch`: the program cannot be run (status 127 when it is not
    /// found, else 126, as a shell's).
    #[error("{prog} --launch: cannot run '{}': {}", .program.to_string_lossy(), strerror(.source))]
    LaunchExec {
        /// argv\[0\].
        prog: String,
        /// The program.
        program: OsString,
        /// Why.
        source: io::Error,
    },
}

impl Error {
    /// The exit status: 1, as the C switch's for every start-up failure;
    /// `--launch` that cannot run its program: 127 (not found) or 126.
    pub fn exit_code(&self) -> i32 {
        match self {
            Error::LaunchExec { source, .. } if source.kind() == io::ErrorKind::NotFound => 127,
            Error::LaunchExec { .. } => 126,
            _ => 1,
        }
    }
}

/// Why a `--bess` socket is refused.
#[derive(Debug, thiserror::Error)]
pub enum BessRefusal {
    /// The path has a character a guest's `dst=` cannot hold.
    #[error("a guest cannot name a path with ',' or '=' (vecN:transport=bess,dst=PATH)")]
    Unnameable,
    /// Something other than a socket is there.
    #[error("exists and is not a socket")]
    NotASocket,
    /// Binding failed (the lines C's `bind_socket` prints come first).
    #[error(
        "{}",
        if .0.in_use() {
            "another server is attached to this socket"
        } else {
            "cannot listen there (or a stale socket there could not be removed)"
        }
    )]
    Bind(BindFailure),
    /// The listener cannot be moved above the port descriptors.
    #[error("{}", strerror(.0))]
    MoveHigh(io::Error),
}

impl BessRefusal {
    /// The lines printed before the message: those of a failed bind.
    fn bind_lines(&self) -> String {
        match self {
            BessRefusal::Bind(f) => f.to_string(),
            _ => String::new(),
        }
    }
}

/// Why a tunnel port's socket cannot be opened.
#[derive(Debug, thiserror::Error)]
pub enum TunnelRefusal {
    /// A raw IP socket without `CAP_NET_RAW` (`EPERM`).
    #[error(
        "cannot open a raw IP socket: {} ({protocol} needs CAP_NET_RAW: run the switch as root \
         or give it that capability; only l2tpv3 with udp=1 needs none)",
        strerror(.error)
    )]
    RawSocketDenied {
        /// `L2TPv3 over IP` or `GRE`.
        protocol: &'static str,
        /// Why.
        error: io::Error,
    },
    /// `socket()` failed.
    #[error("cannot open a socket: {}", strerror(.0))]
    Socket(io::Error),
    /// The guest's `dst=` (and `dstport=`) cannot be bound.
    #[error("cannot bind {at}: {}{}", strerror(.error), bind_hint(.error))]
    Bind {
        /// The address: `IP:PORT` for UDP, `IP` for raw IP sockets.
        at: String,
        /// Why.
        error: io::Error,
    },
    /// The guest's `src=` (and `srcport=`) cannot be connected to.
    #[error("cannot connect to the guest's address {guest}: {}", strerror(.error))]
    Connect {
        /// The guest's address.
        guest: SocketAddr,
        /// Why.
        error: io::Error,
    },
    /// The bound address cannot be read back.
    #[error("getsockname: {}", strerror(.0))]
    Getsockname(io::Error),
    /// The socket cannot be moved above the port descriptors.
    #[error("{}", strerror(.0))]
    MoveHigh(io::Error),
}

/// What to do about a tunnel's failed bind.
fn bind_hint(e: &io::Error) -> &'static str {
    match e.raw_os_error() {
        Some(libc::EADDRNOTAVAIL) => {
            " (the switch binds the guest's dst=, which must be an address of this host)"
        }
        Some(libc::EADDRINUSE) => " (another program uses this dstport)",
        _ => "",
    }
}

/// Why a `--raw` port cannot be opened.
#[derive(Debug, thiserror::Error)]
pub enum RawRefusal {
    /// Not a possible interface name.
    #[error("not an interface name (1 to 15 bytes, no NUL)")]
    BadName,
    /// No such interface here.
    #[error(
        "no such interface in this network namespace (create it first, e.g. ip link add NAME \
         type veth peer name OTHER, or tunctl -t NAME)"
    )]
    NoDevice,
    /// `socket()` failed (`EPERM`: no `CAP_NET_RAW`).
    #[error("cannot open an AF_PACKET socket: {}{}", strerror(.0), raw_socket_hint(.0))]
    Socket(io::Error),
    /// A socket option the port needs.
    #[error("setsockopt {0}: {}", strerror(.1))]
    Option(&'static str, io::Error),
    /// Binding to the interface failed.
    #[error("cannot bind to the interface: {}", strerror(.0))]
    Bind(io::Error),
    /// The socket cannot be moved above the port descriptors.
    #[error("{}", strerror(.0))]
    MoveHigh(io::Error),
    /// The port's eventfd cannot be made.
    #[error("eventfd: {}", strerror(.0))]
    Eventfd(io::Error),
}

fn raw_socket_hint(e: &io::Error) -> &'static str {
    if e.raw_os_error() == Some(libc::EPERM) {
        " (raw ports need CAP_NET_RAW: run the switch as root or give it that capability)"
    } else {
        ""
    }
}

/// Why a `--mcast` group cannot be joined.
#[derive(Debug, thiserror::Error)]
pub enum McastRefusal {
    /// A member or the sending socket cannot be opened.
    #[error("{}", describe_mcast_error(.0))]
    Open(McastError),
    /// The sending socket's address is not IPv4.
    #[error("unexpected local address {0}")]
    UnexpectedLocal(SocketAddr),
    /// The sending socket's address cannot be read back.
    #[error("getsockname: {}", strerror(.0))]
    Getsockname(io::Error),
    /// A socket cannot be moved above the port descriptors.
    #[error("{}", strerror(.0))]
    MoveHigh(io::Error),
}

fn describe_mcast_error(e: &McastError) -> String {
    const NO_ROUTE: &str = " (no route to it: add one, e.g. ip route add 224.0.0.0/4 dev \
                            IFACE; the guests need it too)";
    match e {
        McastError::Socket(io) => format!("socket: {}", strerror(io)),
        McastError::Option(what, io) => format!("setsockopt {what}: {}", strerror(io)),
        McastError::Bind(io) => format!("cannot bind: {}", strerror(io)),
        McastError::Join(io) => {
            let hint = if io.raw_os_error() == Some(libc::ENODEV) {
                NO_ROUTE
            } else {
                ""
            };
            format!("cannot join the group: {}{hint}", strerror(io))
        }
        McastError::Connect(io) => {
            let hint = if io.raw_os_error() == Some(libc::ENETUNREACH) {
                NO_ROUTE
            } else {
                ""
            };
            format!("cannot send to the group: {}{hint}", strerror(io))
        }
    }
}

/// `--mcast` or `--mcast=VALUE`, as given.
fn mcast_shown(value: &str) -> String {
    if value.is_empty() {
        crate::port::mcast::OPTION.to_string()
    } else {
        format!("{}={value}", crate::port::mcast::OPTION)
    }
}

/// The C switch's block for a control socket it cannot bind.
fn control_socket_text(path: &Path, failure: &BindFailure) -> String {
    let c = path.display();
    if failure.in_use() {
        format!(
            "The control socket '{c}' has another server attached to it\n\
             You can either\n\tremove '{c}'\n\tor rerun with a different, unused filename for a \
             socket"
        )
    } else {
        format!("The control socket '{c}' exists, isn't used, but couldn't be removed")
    }
}

/// The C switch's lines for `-compat-v0` sockets it cannot bind: those of
/// each failed bind, then which sockets failed and what to do.
fn compat_text(
    prog: &str,
    ctl: &Path,
    data: &Path,
    ctl_failure: Option<&BindFailure>,
    data_failure: Option<&BindFailure>,
) -> String {
    let mut msg = String::new();
    for f in [ctl_failure, data_failure].into_iter().flatten() {
        msg.push_str(&f.to_string());
    }
    let (c, d) = (ctl.display(), data.display());
    let mut removable = Vec::new();
    for (kind, path, failure) in [("control", &c, ctl_failure), ("data", &d, data_failure)] {
        let Some(failure) = failure else {
            continue;
        };
        if failure.in_use() {
            msg.push_str(&format!(
                "The {kind} socket '{path}' has another server attached to it\n"
            ));
        } else {
            // A socket nobody uses that could not be removed automatically
            // is one the user can remove; one in use is not (the C switch
            // then only suggests other names).
            msg.push_str(&format!(
                "The {kind} socket '{path}' exists, isn't used, but couldn't be removed\n"
            ));
            removable.push(format!("'{path}'"));
        }
    }
    if removable.is_empty() {
        msg.push_str(&format!(
            "You should rerun with different, unused filenames for sockets:\n\t{prog} -unix \
             <control> <data>\n\tand run the UMLs with 'eth0=daemon,,unix,<control>,<data>'"
        ));
    } else {
        msg.push_str(&format!(
            "You can either\n\tremove {}\n\tor rerun with different, unused filenames for \
             sockets:\n\t\t{prog} -unix <control> <data>\n\t\tand run the UMLs with \
             'eth0=daemon,,unix,<control>,<data>",
            removable.join(" and ")
        ));
    }
    msg
}

#[cfg(test)]
mod tests {
    use super::*;

    fn einval() -> io::Error {
        io::Error::from_raw_os_error(libc::EINVAL)
    }

    #[test]
    fn control_socket_blocks_are_the_c_switchs() {
        let e = Error::ControlSocket {
            path: PathBuf::from("/tmp/c"),
            failure: BindFailure::InUse,
        };
        assert_eq!(
            e.to_string(),
            "The control socket '/tmp/c' has another server attached to it\n\
             You can either\n\tremove '/tmp/c'\n\tor rerun with a different, unused filename \
             for a socket"
        );
        let e = Error::ControlSocket {
            path: PathBuf::from("/tmp/c"),
            failure: BindFailure::Bind(io::Error::from_raw_os_error(libc::EACCES)),
        };
        assert_eq!(
            e.to_string(),
            "bind: Permission denied\n\
             The control socket '/tmp/c' exists, isn't used, but couldn't be removed"
        );
        assert_eq!(e.exit_code(), 1);
    }

    #[test]
    fn compat_blocks_are_the_c_switchs() {
        let e = Error::CompatSockets {
            prog: "sw".into(),
            ctl: PathBuf::from("/c"),
            data: PathBuf::from("/d"),
            ctl_failure: Some(Box::new(BindFailure::Probe(io::Error::from_raw_os_error(
                libc::EACCES,
            )))),
            data_failure: Some(Box::new(BindFailure::Bind(io::Error::from_raw_os_error(
                libc::EROFS,
            )))),
        };
        assert_eq!(
            e.to_string(),
            "connect: Permission denied\n\
             bind: Read-only file system\n\
             The control socket '/c' has another server attached to it\n\
             The data socket '/d' exists, isn't used, but couldn't be removed\n\
             You can either\n\tremove '/d'\n\tor rerun with different, unused filenames for \
             sockets:\n\t\tsw -unix <control> <data>\n\t\tand run the UMLs with \
             'eth0=daemon,,unix,<control>,<data>"
        );
        let e = Error::CompatSockets {
            prog: "sw".into(),
            ctl: PathBuf::from("/c"),
            data: PathBuf::from("/d"),
            ctl_failure: None,
            data_failure: Some(Box::new(BindFailure::InUse)),
        };
        assert_eq!(
            e.to_string(),
            "The data socket '/d' has another server attached to it\n\
             You should rerun with different, unused filenames for sockets:\n\tsw -unix \
             <control> <data>\n\tand run the UMLs with 'eth0=daemon,,unix,<control>,<data>'"
        );
    }

    #[test]
    fn port_refusals_name_the_option() {
        let e = Error::Bess {
            prog: "sw".into(),
            path: PathBuf::from("/b"),
            why: BessRefusal::Bind(BindFailure::Bind(einval())),
        };
        assert_eq!(
            e.to_string(),
            "bind: Invalid argument\nsw: --bess '/b': cannot listen there (or a stale socket \
             there could not be removed)"
        );
        let e = Error::Raw {
            prog: "sw".into(),
            ifname: "v0".into(),
            why: RawRefusal::Socket(io::Error::from_raw_os_error(libc::EPERM)),
        };
        assert!(e.to_string().starts_with(
            "sw: --raw 'v0': cannot open an AF_PACKET socket: Operation not permitted (raw"
        ));
        let e = Error::McastOption {
            prog: "sw".into(),
            value: String::new(),
            why: "x".into(),
        };
        assert_eq!(e.to_string(), "sw: --mcast: x");
        let e = Error::Mcast {
            prog: "sw".into(),
            config: McastConfig::default(),
            why: McastRefusal::Open(McastError::Join(io::Error::from_raw_os_error(libc::ENODEV))),
        };
        assert!(e.to_string().starts_with(
            "sw: --mcast=239.192.168.1,1102,1: cannot join the group: No such device (no route"
        ));
    }

    #[test]
    fn launch_statuses_are_a_shells() {
        let exec = |kind: i32| Error::LaunchExec {
            prog: "sw".into(),
            program: "p".into(),
            source: io::Error::from_raw_os_error(kind),
        };
        assert_eq!(exec(libc::ENOENT).exit_code(), 127);
        assert_eq!(exec(libc::EACCES).exit_code(), 126);
        assert_eq!(
            exec(libc::EACCES).to_string(),
            "sw --launch: cannot run 'p': Permission denied"
        );
        let e = Error::LaunchUsage {
            prog: "sw".into(),
            why: "missing PROGRAM".into(),
        };
        assert_eq!(
            e.to_string(),
            "sw --launch: missing PROGRAM\nUsage: sw --launch BESS-PATH [--fd N] [--] PROGRAM \
             [ARG]..."
        );
        assert_eq!(e.exit_code(), 1);
    }
}
