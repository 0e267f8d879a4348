//! `AF_PACKET` sockets on a host interface, for the switch's raw ports: a
//! socket bound to one interface that receives every frame arriving there
//! (promiscuous, all protocols) and sends frames out of it, each frame
//! preceded by a 10-byte virtio-net header (`PACKET_VNET_HDR`), so that
//! the offloads of the guests behind the interface (TSO, checksums left
//! to the "hardware") are visible and can be completed. Frames this socket
//! sends are never received back by it (`PACKET_IGNORE_OUTGOING`; where
//! the kernel lacks it, the receiver checks [`is_outgoing`]). Sends go
//! through the interface's qdisc, not around it (`PACKET_QDISC_BYPASS`):
//! a guest on the vector `hybrid` transport reads its tap with a packet
//! socket, which sees what is sent out of the tap only that way.
//!
//! Everything is non-blocking and close-on-exec. Needs `CAP_NET_RAW`.

use std::io;
use std::os::fd::{AsRawFd, BorrowedFd, FromRawFd, OwnedFd};

use crate::sys::tun::IFNAME_MAX;

/// Length of the virtio-net header in front of every frame.
pub const VNET_HDR_LEN: usize = 10;
/// `ETH_P_ALL`: every protocol.
const ETH_P_ALL: u16 = 0x0003;
/// `sizeof(struct ifreq)` on Linux x86_64.
const IFREQ_LEN: usize = 40;
/// Offset of the union after the 16-byte name in `struct ifreq`.
const IFREQ_UNION: usize = 16;
/// Offset of `sll_pkttype` in `struct sockaddr_ll`.
const SLL_PKTTYPE: usize = 10;

/// Which step failed.
#[derive(Debug, thiserror::Error)]
pub enum PacketError {
    /// The name is empty, too long or contains a NUL.
    #[error("bad interface name (1 to {IFNAME_MAX} bytes, no NUL)")]
    BadName,
    /// No interface of that name in this network namespace.
    #[error("no such interface: {0}")]
    NoDevice(#[source] io::Error),
    /// `socket()` (`EPERM` without `CAP_NET_RAW`).
    #[error("socket: {0}")]
    Socket(#[source] io::Error),
    /// A socket option the port cannot do without.
    #[error("setsockopt {0}: {1}")]
    Option(&'static str, #[source] io::Error),
    /// `bind()` to the interface.
    #[error("bind: {0}")]
    Bind(#[source] io::Error),
}

/// What [`open`] set up.
#[derive(Debug)]
pub struct PacketSocket {
    /// The socket.
    pub fd: OwnedFd,
    /// The interface's index.
    pub ifindex: u32,
    /// Whether the kernel drops this socket's own frames before they are
    /// received (`PACKET_IGNORE_OUTGOING`, Linux ≥ 4.20); if not, the
    /// receiver must drop frames [`is_outgoing`] says are outgoing.
    pub ignores_outgoing: bool,
}

fn ifreq_with_name(name: &str) -> Result<[u8; IFREQ_LEN], PacketError> {
    let bytes = name.as_bytes();
    if bytes.is_empty() || bytes.len() > IFNAME_MAX || bytes.contains(&0) {
        return Err(PacketError::BadName);
    }
    let mut req = [0u8; IFREQ_LEN];
    req[..bytes.len()].copy_from_slice(bytes);
    Ok(req)
}

/// The index of interface `name` in this network namespace.
pub fn ifindex(name: &str) -> Result<u32, PacketError> {
    let req = ifreq_with_name(name)?;
    // SAFETY: `req` is a NUL-terminated name of at most IFNAME_MAX bytes in
    // a buffer of IFNAMSIZ or more; if_nametoindex only reads it.
    let index = unsafe { libc::if_nametoindex(req.as_ptr().cast()) };
    if index == 0 {
        return Err(PacketError::NoDevice(io::Error::last_os_error()));
    }
    Ok(index)
}

fn set_int(fd: &OwnedFd, name: libc::c_int, value: libc::c_int) -> io::Result<()> {
    // SAFETY: the option value is a live c_int of the size given; `fd` is
    // an open socket.
    let rc = unsafe {
        libc::setsockopt(
            fd.as_raw_fd(),
            libc::SOL_PACKET,
            name,
            (&value as *const libc::c_int).cast(),
            std::mem::size_of::<libc::c_int>() as libc::socklen_t,
        )
    };
    if rc != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// Opens an `AF_PACKET` socket on interface `name` as the module describes:
/// virtio-net headers, promiscuous mode (released when the socket closes),
/// own frames ignored, bound to the interface.
pub fn open(name: &str) -> Result<PacketSocket, PacketError> {
    let ifindex = ifindex(name)?;
    let proto = ETH_P_ALL.to_be();
    // SAFETY: socket() takes no pointers; a non-negative result is a new
    // descriptor that nothing else owns, so OwnedFd may take it.
    let fd = unsafe {
        libc::socket(
            libc::AF_PACKET,
            libc::SOCK_RAW | libc::SOCK_NONBLOCK | libc::SOCK_CLOEXEC,
            libc::c_int::from(proto),
        )
    };
    if fd < 0 {
        return Err(PacketError::Socket(io::Error::last_os_error()));
    }
    // SAFETY: see above: `fd` is a fresh descriptor owned by no one else.
    let fd = unsafe { OwnedFd::from_raw_fd(fd) };
    set_int(&fd, libc::PACKET_VNET_HDR, 1)
        .map_err(|e| PacketError::Option("PACKET_VNET_HDR", e))?;
    let ignores_outgoing = set_int(&fd, libc::PACKET_IGNORE_OUTGOING, 1).is_ok();
    let mreq = libc::packet_mreq {
        mr_ifindex: ifindex as libc::c_int,
        mr_type: libc::PACKET_MR_PROMISC as libc::c_ushort,
        mr_alen: 0,
        mr_address: [0; 8],
    };
    // SAFETY: `mreq` is a live packet_mreq of the size given; `fd` is open.
    let rc = unsafe {
        libc::setsockopt(
            fd.as_raw_fd(),
            libc::SOL_PACKET,
            libc::PACKET_ADD_MEMBERSHIP,
            (&mreq as *const libc::packet_mreq).cast(),
            std::mem::size_of::<libc::packet_mreq>() as libc::socklen_t,
        )
    };
    if rc != 0 {
        return Err(PacketError::Option(
            "PACKET_ADD_MEMBERSHIP (promiscuous)",
            io::Error::last_os_error(),
        ));
    }
    // SAFETY: sockaddr_ll is plain data; all zeros is a valid value.
    let mut sll: libc::sockaddr_ll = unsafe { std::mem::zeroed() };
    sll.sll_family = libc::AF_PACKET as libc::c_ushort;
    sll.sll_protocol = proto;
    sll.sll_ifindex = ifindex as libc::c_int;
    // SAFETY: `sll` is a live sockaddr_ll of the length given; `fd` is open.
    let rc = unsafe {
        libc::bind(
            fd.as_raw_fd(),
            (&sll as *const libc::sockaddr_ll).cast(),
            std::mem::size_of::<libc::sockaddr_ll>() as libc::socklen_t,
        )
    };
    if rc != 0 {
        return Err(PacketError::Bind(io::Error::last_os_error()));
    }
    Ok(PacketSocket {
        fd,
        ifindex,
        ignores_outgoing,
    })
}

/// Whether the `sockaddr_ll` a frame was received with (as returned in
/// `msg_name`) says the frame was going out of the interface
/// (`PACKET_OUTGOING`), i.e. it was sent on this host rather than
/// received by the interface.
pub fn is_outgoing(sender: &[u8]) -> bool {
    sender.get(SLL_PKTTYPE).copied() == Some(libc::PACKET_OUTGOING)
}

/// An `ifreq` ioctl on `fd` for interface `name`; returns the union's
/// first 4 bytes.
fn ifreq_ioctl(fd: BorrowedFd<'_>, name: &str, request: libc::c_ulong) -> io::Result<[u8; 4]> {
    let mut req = ifreq_with_name(name).map_err(|_| io::Error::from_raw_os_error(libc::EINVAL))?;
    // SAFETY: `req` is a live, writable 40-byte struct ifreq (name set,
    // union zeroed); SIOCGIFMTU and SIOCGIFFLAGS write only inside it.
    let rc = unsafe { libc::ioctl(fd.as_raw_fd(), request as _, req.as_mut_ptr()) };
    if rc != 0 {
        return Err(io::Error::last_os_error());
    }
    let mut out = [0u8; 4];
    out.copy_from_slice(&req[IFREQ_UNION..IFREQ_UNION + 4]);
    Ok(out)
}

/// The MTU of interface `name` (`SIOCGIFMTU` on any socket `fd`).
pub fn interface_mtu(fd: BorrowedFd<'_>, name: &str) -> io::Result<u32> {
    let b = ifreq_ioctl(fd, name, libc::SIOCGIFMTU)?;
    Ok(i32::from_ne_bytes(b).max(0) as u32)
}

/// Whether interface `name` is up (`IFF_UP`, `SIOCGIFFLAGS`).
pub fn interface_is_up(fd: BorrowedFd<'_>, name: &str) -> io::Result<bool> {
    let b = ifreq_ioctl(fd, name, libc::SIOCGIFFLAGS)?;
    let flags = i16::from_ne_bytes([b[0], b[1]]);
    Ok(i32::from(flags) & libc::IFF_UP != 0)
}

/// The name of the interface with index `index`, if there is one in this
/// network namespace.
pub fn ifname(index: u32) -> Option<String> {
    let mut buf = [0u8; libc::IF_NAMESIZE];
    // SAFETY: `buf` is IF_NAMESIZE writable bytes, as if_indextoname needs;
    // it NUL-terminates what it writes.
    let p = unsafe { libc::if_indextoname(index, buf.as_mut_ptr().cast()) };
    if p.is_null() {
        return None;
    }
    let len = buf.iter().position(|&b| b == 0).unwrap_or(buf.len());
    String::from_utf8(buf[..len].to_vec()).ok()
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use std::os::fd::AsFd;

    #[test]
    fn names_are_checked_before_any_call() {
        assert!(matches!(ifindex(""), Err(PacketError::BadName)));
        assert!(matches!(
            ifindex("sixteen-bytes-xx"),
            Err(PacketError::BadName)
        ));
        assert!(matches!(ifindex("a\0b"), Err(PacketError::BadName)));
        assert!(matches!(
            ifindex("surely-absent0"),
            Err(PacketError::NoDevice(_))
        ));
        assert!(matches!(
            open("surely-absent0"),
            Err(PacketError::NoDevice(_))
        ));
    }

    #[test]
    fn loopback_is_found_and_described() {
        let lo = ifindex("lo").unwrap();
        assert!(lo > 0);
        assert_eq!(ifname(lo).as_deref(), Some("lo"));
        assert_eq!(ifname(0x7fff_fff0), None);
        let sock = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
        assert!(interface_mtu(sock.as_fd(), "lo").unwrap() >= 1500);
        assert!(interface_is_up(sock.as_fd(), "lo").unwrap());
        assert!(interface_mtu(sock.as_fd(), "surely-absent0").is_err());
    }

    /// Runs `f` on a thread in a network namespace of its own when this
    /// process may make one (root), else in the current one (where
    /// opening a packet socket then fails with `EPERM` and changes
    /// nothing).
    pub(crate) fn in_private_netns<T: Send>(f: impl FnOnce(bool) -> T + Send) -> T {
        std::thread::scope(|s| {
            s.spawn(|| {
                // SAFETY: unshare takes no pointers; it moves only this
                // thread into a new network namespace.
                let private = unsafe { libc::unshare(libc::CLONE_NEWNET) } == 0;
                f(private)
            })
            .join()
            .unwrap()
        })
    }

    #[test]
    fn raw_socket_needs_the_privilege_or_opens() {
        in_private_netns(|private| match open("lo") {
            Ok(s) => {
                assert!(private, "a packet socket in the host's namespace");
                assert!(s.ifindex > 0);
                assert!(!interface_is_up(s.fd.as_fd(), "lo").unwrap());
            }
            Err(PacketError::Socket(e)) => assert_eq!(e.raw_os_error(), Some(libc::EPERM)),
            Err(e) => panic!("{e}"),
        })
    }

    #[test]
    fn outgoing_frames_are_recognised() {
        let mut sll = [0u8; 20];
        assert!(!is_outgoing(&sll));
        sll[SLL_PKTTYPE] = libc::PACKET_OUTGOING;
        assert!(is_outgoing(&sll));
        assert!(!is_outgoing(&sll[..5]));
    }
}
