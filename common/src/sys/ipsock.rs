//! IP sockets for the switch's tunnel ports: a UDP socket, or a raw IP
//! socket of one protocol (L2TPv3 over IP, GRE; std and nix cannot open
//! those), bound to a local address and connected to the one peer it
//! serves, non-blocking and close-on-exec. Connecting makes the kernel
//! deliver only that peer's packets (for raw sockets as for UDP) and lets
//! batches be sent without addresses.

use std::io;
use std::net::{Ipv4Addr, Ipv6Addr, SocketAddr, SocketAddrV4, SocketAddrV6};
use std::os::fd::{AsRawFd, BorrowedFd, FromRawFd, OwnedFd};

/// What kind of socket.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IpSocketKind {
    /// `SOCK_DGRAM`, UDP.
    Udp,
    /// `SOCK_RAW` of this IP protocol (needs `CAP_NET_RAW`). Reading an
    /// IPv4 one returns the IPv4 header too; an IPv6 one does not.
    Raw(u8),
}

/// Which step failed.
#[derive(Debug, thiserror::Error)]
pub enum IpSocketError {
    /// `socket()` (`EPERM` without `CAP_NET_RAW` for raw sockets).
    #[error("socket: {0}")]
    Socket(#[source] io::Error),
    /// `bind()` of the local address.
    #[error("bind: {0}")]
    Bind(#[source] io::Error),
    /// `connect()` to the peer.
    #[error("connect: {0}")]
    Connect(#[source] io::Error),
}

/// A socket address in the C layout, with its length.
enum CAddr {
    V4(libc::sockaddr_in),
    V6(libc::sockaddr_in6),
}

impl CAddr {
    fn new(addr: SocketAddr) -> CAddr {
        match addr {
            SocketAddr::V4(a) => CAddr::V4(libc::sockaddr_in {
                sin_family: libc::AF_INET as libc::sa_family_t,
                sin_port: a.port().to_be(),
                sin_addr: libc::in_addr {
                    s_addr: u32::from(*a.ip()).to_be(),
                },
                sin_zero: [0; 8],
            }),
            SocketAddr::V6(a) => CAddr::V6(libc::sockaddr_in6 {
                sin6_family: libc::AF_INET6 as libc::sa_family_t,
                sin6_port: a.port().to_be(),
                sin6_flowinfo: a.flowinfo(),
                sin6_addr: libc::in6_addr {
                    s6_addr: a.ip().octets(),
                },
                sin6_scope_id: a.scope_id(),
            }),
        }
    }

    fn ptr_len(&self) -> (*const libc::sockaddr, libc::socklen_t) {
        match self {
            CAddr::V4(a) => (
                (a as *const libc::sockaddr_in).cast(),
                std::mem::size_of::<libc::sockaddr_in>() as libc::socklen_t,
            ),
            CAddr::V6(a) => (
                (a as *const libc::sockaddr_in6).cast(),
                std::mem::size_of::<libc::sockaddr_in6>() as libc::socklen_t,
            ),
        }
    }
}

/// Opens a socket of `kind` bound to `local` (port 0: any free port for
/// UDP; ignored for raw sockets) and connected to `peer` (same family).
pub fn open_connected(
    kind: IpSocketKind,
    local: SocketAddr,
    peer: SocketAddr,
) -> Result<OwnedFd, IpSocketError> {
    let family = if local.is_ipv6() {
        libc::AF_INET6
    } else {
        libc::AF_INET
    };
    let (ty, proto) = match kind {
        IpSocketKind::Udp => (libc::SOCK_DGRAM, libc::IPPROTO_UDP),
        IpSocketKind::Raw(p) => (libc::SOCK_RAW, libc::c_int::from(p)),
    };
    // SAFETY: socket() takes no pointers; a non-negative result is a new
    // descriptor that nothing else owns, so OwnedFd may take it.
    let fd = unsafe { libc::socket(family, ty | libc::SOCK_NONBLOCK | libc::SOCK_CLOEXEC, proto) };
    if fd < 0 {
        return Err(IpSocketError::Socket(io::Error::last_os_error()));
    }
    // SAFETY: see above: `fd` is a fresh descriptor owned by no one else.
    let fd = unsafe { OwnedFd::from_raw_fd(fd) };
    // Raw sockets have no ports: bind and connect with port 0.
    let (local, peer) = match kind {
        IpSocketKind::Udp => (local, peer),
        IpSocketKind::Raw(_) => (with_port(local, 0), with_port(peer, 0)),
    };
    let l = CAddr::new(local);
    let (ptr, len) = l.ptr_len();
    // SAFETY: `ptr` points at a live sockaddr_in/sockaddr_in6 of `len`
    // bytes (owned by `l`, alive for the call); `fd` is open.
    if unsafe { libc::bind(fd.as_raw_fd(), ptr, len) } != 0 {
        return Err(IpSocketError::Bind(io::Error::last_os_error()));
    }
    let p = CAddr::new(peer);
    let (ptr, len) = p.ptr_len();
    // SAFETY: as for bind: a live address of `len` bytes and an open fd.
    // A non-blocking UDP or raw connect completes at once.
    if unsafe { libc::connect(fd.as_raw_fd(), ptr, len) } != 0 {
        return Err(IpSocketError::Connect(io::Error::last_os_error()));
    }
    Ok(fd)
}

fn with_port(a: SocketAddr, port: u16) -> SocketAddr {
    let mut a = a;
    a.set_port(port);
    a
}

/// The local address of an IPv4 or IPv6 socket (`getsockname`), e.g. the
/// port a UDP socket bound to port 0 was given.
pub fn local_addr(fd: BorrowedFd<'_>) -> io::Result<SocketAddr> {
    // SAFETY: sockaddr_storage is plain data; all zeros is a valid value.
    let mut ss: libc::sockaddr_storage = unsafe { std::mem::zeroed() };
    let mut len = std::mem::size_of::<libc::sockaddr_storage>() as libc::socklen_t;
    // SAFETY: `ss` is a live, writable sockaddr_storage of `len` bytes, and
    // `len` a live socklen_t; the kernel writes at most `len` bytes.
    let rc = unsafe {
        libc::getsockname(
            fd.as_raw_fd(),
            (&mut ss as *mut libc::sockaddr_storage).cast(),
            &mut len,
        )
    };
    if rc != 0 {
        return Err(io::Error::last_os_error());
    }
    match i32::from(ss.ss_family) {
        libc::AF_INET => {
            // SAFETY: the family says the storage holds a sockaddr_in,
            // which is smaller than sockaddr_storage and suitably aligned
            // (sockaddr_storage has the strictest alignment).
            let a = unsafe { &*(&ss as *const libc::sockaddr_storage).cast::<libc::sockaddr_in>() };
            Ok(SocketAddr::V4(SocketAddrV4::new(
                Ipv4Addr::from(u32::from_be(a.sin_addr.s_addr)),
                u16::from_be(a.sin_port),
            )))
        }
        libc::AF_INET6 => {
            // SAFETY: as above, for sockaddr_in6.
            let a =
                unsafe { &*(&ss as *const libc::sockaddr_storage).cast::<libc::sockaddr_in6>() };
            Ok(SocketAddr::V6(SocketAddrV6::new(
                Ipv6Addr::from(a.sin6_addr.s6_addr),
                u16::from_be(a.sin6_port),
                a.sin6_flowinfo,
                a.sin6_scope_id,
            )))
        }
        f => Err(io::Error::new(
            io::ErrorKind::InvalidData,
            format!("not an IP socket (family {f})"),
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::UdpSocket;
    use std::os::fd::AsFd;

    #[test]
    // Miri: UDP, raw and bound IP sockets: not emulated by Miri (only TCP streams).
    #[cfg_attr(miri, ignore)]
    fn udp_socket_bound_to_a_free_port_and_connected_to_its_peer() {
        let peer = UdpSocket::bind("127.0.0.1:0").unwrap();
        let stranger = UdpSocket::bind("127.0.0.1:0").unwrap();
        let fd = open_connected(
            IpSocketKind::Udp,
            "127.0.0.1:0".parse().unwrap(),
            peer.local_addr().unwrap(),
        )
        .unwrap();
        let local = local_addr(fd.as_fd()).unwrap();
        assert!(local.ip().is_loopback() && local.port() != 0, "{local}");
        let sock = UdpSocket::from(fd);
        // Non-blocking: nothing waiting is WouldBlock.
        let mut buf = [0u8; 16];
        assert_eq!(
            sock.recv(&mut buf).unwrap_err().kind(),
            io::ErrorKind::WouldBlock
        );
        // Only the peer's datagrams arrive.
        stranger.send_to(b"no", local).unwrap();
        peer.send_to(b"yes", local).unwrap();
        peer.set_read_timeout(Some(std::time::Duration::from_secs(5)))
            .unwrap();
        sock.send(b"hi").unwrap();
        let (n, from) = peer.recv_from(&mut buf).unwrap();
        assert_eq!((&buf[..n], from), (&b"hi"[..], local));
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
        let n = loop {
            match sock.recv(&mut buf) {
                Ok(n) => break n,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                    assert!(std::time::Instant::now() < deadline, "nothing received");
                    std::thread::sleep(std::time::Duration::from_millis(5));
                }
                Err(e) => panic!("{e}"),
            }
        };
        assert_eq!(&buf[..n], b"yes");
    }

    #[test]
    // Miri: UDP, raw and bound IP sockets: not emulated by Miri (only TCP streams).
    #[cfg_attr(miri, ignore)]
    fn bind_errors_are_told_apart() {
        let taken = UdpSocket::bind("127.0.0.1:0").unwrap();
        let peer: SocketAddr = "127.0.0.1:9".parse().unwrap();
        match open_connected(IpSocketKind::Udp, taken.local_addr().unwrap(), peer) {
            Err(IpSocketError::Bind(e)) => {
                assert_eq!(e.raw_os_error(), Some(libc::EADDRINUSE))
            }
            other => panic!("{other:?}"),
        }
        // 192.0.2.1 (TEST-NET-1) is not an address of this host.
        match open_connected(IpSocketKind::Udp, "192.0.2.1:0".parse().unwrap(), peer) {
            Err(IpSocketError::Bind(e)) => {
                assert_eq!(e.raw_os_error(), Some(libc::EADDRNOTAVAIL))
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    // Miri: UDP, raw and bound IP sockets: not emulated by Miri (only TCP streams).
    #[cfg_attr(miri, ignore)]
    fn raw_sockets_open_with_the_privilege_or_fail_at_socket() {
        let r = open_connected(
            IpSocketKind::Raw(115),
            "127.0.0.1:0".parse().unwrap(),
            "127.0.0.2:0".parse().unwrap(),
        );
        match r {
            Ok(fd) => {
                let a = local_addr(fd.as_fd()).unwrap();
                assert_eq!(a.ip(), "127.0.0.1".parse::<std::net::IpAddr>().unwrap());
            }
            Err(IpSocketError::Socket(e)) => {
                assert_eq!(e.raw_os_error(), Some(libc::EPERM))
            }
            Err(e) => panic!("{e}"),
        }
    }

    #[test]
    // Miri: UDP, raw and bound IP sockets: not emulated by Miri (only TCP streams).
    #[cfg_attr(miri, ignore)]
    fn ipv6_udp() {
        let peer = match UdpSocket::bind("[::1]:0") {
            Ok(p) => p,
            Err(_) => return, // no IPv6 loopback here
        };
        let fd = open_connected(
            IpSocketKind::Udp,
            "[::1]:0".parse().unwrap(),
            peer.local_addr().unwrap(),
        )
        .unwrap();
        let local = local_addr(fd.as_fd()).unwrap();
        assert!(local.is_ipv6() && local.port() != 0);
    }
}
