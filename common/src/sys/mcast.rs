//! UDP multicast sockets for the switch's port on the legacy `mcast`
//! transport (`ethN=mcast` of kernels up to 6.15, `docs/vector.md` §7).
//!
//! The guests' sockets are bound to the group address and port with
//! `SO_REUSEADDR`, joined on the default interface, and send with
//! `IP_MULTICAST_LOOP` on, so every member on the host — the switch too —
//! receives every member's frames, its own included. The switch therefore
//! uses two sockets: [`open_receiver`], a member like the guests, and
//! [`open_sender`], bound to a port of its own and connected to the
//! group, whose address ([`crate::sys::ipsock::local_addr`]) tells the
//! switch's own datagrams apart from the guests' (which all come from the
//! group's port).

use std::io;
use std::net::{Ipv4Addr, SocketAddrV4, UdpSocket};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};

/// Which step failed.
#[derive(Debug, thiserror::Error)]
pub enum McastError {
    /// `socket()`.
    #[error("socket: {0}")]
    Socket(#[source] io::Error),
    /// `SO_REUSEADDR`, `IP_MULTICAST_TTL` or `IP_MULTICAST_LOOP`.
    #[error("setsockopt {0}: {1}")]
    Option(&'static str, #[source] io::Error),
    /// `bind()`.
    #[error("bind: {0}")]
    Bind(#[source] io::Error),
    /// `IP_ADD_MEMBERSHIP` (`ENODEV`: no route to the group).
    #[error("IP_ADD_MEMBERSHIP: {0}")]
    Join(#[source] io::Error),
    /// `connect()` of the sending socket.
    #[error("connect: {0}")]
    Connect(#[source] io::Error),
}

/// A member of `group` on UDP port `port`, as the guests are: bound to
/// `group:port` with `SO_REUSEADDR`, joined on the default interface,
/// non-blocking and close-on-exec.
pub fn open_receiver(group: Ipv4Addr, port: u16) -> Result<UdpSocket, McastError> {
    // SAFETY: socket() takes no pointers; a non-negative result is a new
    // descriptor that nothing else owns, so OwnedFd may take it.
    let fd = unsafe {
        libc::socket(
            libc::AF_INET,
            libc::SOCK_DGRAM | libc::SOCK_NONBLOCK | libc::SOCK_CLOEXEC,
            libc::IPPROTO_UDP,
        )
    };
    if fd < 0 {
        return Err(McastError::Socket(io::Error::last_os_error()));
    }
    // SAFETY: see above: `fd` is a fresh descriptor owned by no one else.
    let fd = unsafe { OwnedFd::from_raw_fd(fd) };
    let one: libc::c_int = 1;
    // SAFETY: the option value is a live c_int of the size given; `fd` is
    // an open socket.
    let rc = unsafe {
        libc::setsockopt(
            fd.as_raw_fd(),
            libc::SOL_SOCKET,
            libc::SO_REUSEADDR,
            (&one as *const libc::c_int).cast(),
            std::mem::size_of::<libc::c_int>() as libc::socklen_t,
        )
    };
    if rc != 0 {
        return Err(McastError::Option(
            "SO_REUSEADDR",
            io::Error::last_os_error(),
        ));
    }
    let sin = libc::sockaddr_in {
        sin_family: libc::AF_INET as libc::sa_family_t,
        sin_port: port.to_be(),
        sin_addr: libc::in_addr {
            s_addr: u32::from(group).to_be(),
        },
        sin_zero: [0; 8],
    };
    // SAFETY: `sin` is a live sockaddr_in of the length given; `fd` is open.
    let rc = unsafe {
        libc::bind(
            fd.as_raw_fd(),
            (&sin as *const libc::sockaddr_in).cast(),
            std::mem::size_of::<libc::sockaddr_in>() as libc::socklen_t,
        )
    };
    if rc != 0 {
        return Err(McastError::Bind(io::Error::last_os_error()));
    }
    let sock = UdpSocket::from(fd);
    sock.join_multicast_v4(&group, &Ipv4Addr::UNSPECIFIED)
        .map_err(McastError::Join)?;
    Ok(sock)
}

/// The switch's sending socket for `group:port`: bound to a free port,
/// connected to the group, TTL `ttl`, loop on (the guests on this host
/// must get the frames), non-blocking.
pub fn open_sender(group: Ipv4Addr, port: u16, ttl: u32) -> Result<UdpSocket, McastError> {
    let sock = UdpSocket::bind(SocketAddrV4::new(Ipv4Addr::UNSPECIFIED, 0)).map_err(|e| {
        if e.raw_os_error()
            .is_some_and(|n| n == libc::EACCES || n == libc::EPERM)
        {
            McastError::Socket(e)
        } else {
            McastError::Bind(e)
        }
    })?;
    sock.set_multicast_ttl_v4(ttl)
        .map_err(|e| McastError::Option("IP_MULTICAST_TTL", e))?;
    sock.set_multicast_loop_v4(true)
        .map_err(|e| McastError::Option("IP_MULTICAST_LOOP", e))?;
    sock.connect(SocketAddrV4::new(group, port))
        .map_err(McastError::Connect)?;
    sock.set_nonblocking(true)
        .map_err(|e| McastError::Option("O_NONBLOCK", e))?;
    Ok(sock)
}

/// The IPv4 address and port of a `sockaddr_in` as returned in
/// `msg_name` (`None` for anything else).
pub fn sender_v4(raw: &[u8]) -> Option<SocketAddrV4> {
    if raw.len() < 8 || u16::from_ne_bytes([raw[0], raw[1]]) != libc::AF_INET as u16 {
        return None;
    }
    let port = u16::from_be_bytes([raw[2], raw[3]]);
    let ip = Ipv4Addr::new(raw[4], raw[5], raw[6], raw[7]);
    Some(SocketAddrV4::new(ip, port))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sender_addresses_are_decoded() {
        let mut raw = [0u8; 16];
        raw[..2].copy_from_slice(&(libc::AF_INET as u16).to_ne_bytes());
        raw[2..4].copy_from_slice(&1102u16.to_be_bytes());
        raw[4..8].copy_from_slice(&[127, 0, 0, 1]);
        assert_eq!(
            sender_v4(&raw),
            Some(SocketAddrV4::new(Ipv4Addr::LOCALHOST, 1102))
        );
        assert_eq!(sender_v4(&raw[..6]), None);
        raw[0] = 0xff;
        assert_eq!(sender_v4(&raw), None);
    }

    #[test]
    // Miri: unshare and UDP multicast sockets: not emulated by Miri.
    #[cfg_attr(miri, ignore)]
    fn the_sender_has_a_port_of_its_own() {
        // 239.255.x.x: organisation-local scope; nothing needs to listen.
        let group = Ipv4Addr::new(239, 255, 77, 1);
        let r = crate::sys::packet::tests::in_private_netns(|_| open_sender(group, 1102, 1));
        match r {
            Ok(s) => {
                let a = s.local_addr().unwrap();
                assert_ne!(a.port(), 1102);
                assert_ne!(a.port(), 0);
            }
            // No route to multicast on a host without a default route.
            Err(McastError::Connect(e)) => {
                assert_eq!(e.raw_os_error(), Some(libc::ENETUNREACH), "{e}")
            }
            Err(e) => panic!("{e}"),
        }
    }
}
