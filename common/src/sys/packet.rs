//! `AF_PACKET` sockets on a host interface, for the switch's raw ports: a
//! socket bound to one interface that receives every frame arriving there
//! (promiscuous, all protocols) and sends frames out of it, each frame
//! preceded by a 10-byte virtio-net header (`PACKET_VNET_HDR`), so that
//! the offloads of the guests behind the interface (TSO, checksums left
//! to the "hardware") are visible and can be completed. Frames this socket
//! sends are never received back by it (`PACKET_IGNORE_OUTGOING`; where
//! the kernel lacks it, the receiver checks [`PacketBatch::outgoing`]). Sends go
//! through the interface's qdisc, not around it (`PACKET_QDISC_BYPASS`):
//! a guest on the vector `hybrid` transport reads its tap with a packet
//! socket, which sees what is sent out of the tap only that way.
//!
//! The kernel takes a received frame's VLAN tag out of the frame before
//! packet sockets see it; [`PacketBatch`] receives it alongside
//! (`PACKET_AUXDATA`), so that the tag can be put back.
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
    /// receiver must drop frames [`PacketBatch::outgoing`] says are
    /// outgoing.
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
/// virtio-net headers, VLAN tags alongside, promiscuous mode (released
/// when the socket closes), own frames ignored, bound to the interface.
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
    set_int(&fd, libc::PACKET_AUXDATA, 1).map_err(|e| PacketError::Option("PACKET_AUXDATA", e))?;
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

/// Room for the control messages of one frame: one `tpacket_auxdata`
/// (20 bytes after a 16-byte header), in 8-byte words for alignment.
const CTRL_WORDS: usize = 8;

/// A VLAN tag the kernel took out of a received frame.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct VlanTag {
    /// The tag protocol (0x8100, or 0x88a8 for a service tag).
    pub tpid: u16,
    /// Priority, DEI and VLAN id.
    pub tci: u16,
}

impl VlanTag {
    /// The 4 bytes that go after the source MAC address.
    pub fn bytes(self) -> [u8; 4] {
        let [a, b] = self.tpid.to_be_bytes();
        let [c, d] = self.tci.to_be_bytes();
        [a, b, c, d]
    }
}

/// Preallocated buffers for receiving a batch of frames from a packet
/// socket with `recvmmsg`, with each frame's `sockaddr_ll` and VLAN tag.
pub struct PacketBatch {
    buf_len: usize,
    bufs: Vec<u8>,
    addrs: Vec<libc::sockaddr_ll>,
    ctrl: Vec<[u64; CTRL_WORDS]>,
    iovs: Vec<libc::iovec>,
    hdrs: Vec<libc::mmsghdr>,
    filled: usize,
}

impl std::fmt::Debug for PacketBatch {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "PacketBatch({} x {} bytes, {} filled)",
            self.hdrs.len(),
            self.buf_len,
            self.filled
        )
    }
}

impl PacketBatch {
    /// `count` buffers of `buf_len` bytes.
    pub fn new(count: usize, buf_len: usize) -> PacketBatch {
        let count = count.max(1);
        // SAFETY: sockaddr_ll and mmsghdr are plain C structs (integers,
        // byte arrays, raw pointers); all zeros is a valid value of each.
        let (addr, hdr) = unsafe {
            (
                std::mem::zeroed::<libc::sockaddr_ll>(),
                std::mem::zeroed::<libc::mmsghdr>(),
            )
        };
        PacketBatch {
            buf_len,
            bufs: vec![0u8; count * buf_len],
            addrs: vec![addr; count],
            ctrl: vec![[0u64; CTRL_WORDS]; count],
            iovs: vec![
                libc::iovec {
                    iov_base: std::ptr::null_mut(),
                    iov_len: 0
                };
                count
            ],
            hdrs: vec![hdr; count],
            filled: 0,
        }
    }

    /// Number of buffers.
    pub fn capacity(&self) -> usize {
        self.hdrs.len()
    }

    /// Receives up to `max` frames without blocking; returns how many (0
    /// when none was waiting).
    pub fn recv_up_to(&mut self, fd: BorrowedFd<'_>, max: usize) -> io::Result<usize> {
        let n = max.min(self.capacity());
        self.filled = 0;
        let base = self.bufs.as_mut_ptr();
        for i in 0..n {
            // SAFETY: i < count, so the offset stays inside `bufs`
            // (count * buf_len bytes).
            self.iovs[i].iov_base = unsafe { base.add(i * self.buf_len) }.cast();
            self.iovs[i].iov_len = self.buf_len;
            let h = &mut self.hdrs[i].msg_hdr;
            h.msg_name = (&mut self.addrs[i] as *mut libc::sockaddr_ll).cast();
            h.msg_namelen = std::mem::size_of::<libc::sockaddr_ll>() as libc::socklen_t;
            h.msg_iov = &mut self.iovs[i];
            h.msg_iovlen = 1;
            h.msg_control = self.ctrl[i].as_mut_ptr().cast();
            h.msg_controllen = std::mem::size_of::<[u64; CTRL_WORDS]>();
            h.msg_flags = 0;
            self.hdrs[i].msg_len = 0;
        }
        // SAFETY: the first n headers point at live buffers owned by self
        // (iovecs, addresses, control buffers, frame bytes) with the
        // lengths given; they stay valid and unaliased during the call.
        let rc = unsafe {
            libc::recvmmsg(
                fd.as_raw_fd(),
                self.hdrs.as_mut_ptr(),
                n as libc::c_uint,
                libc::MSG_DONTWAIT,
                std::ptr::null_mut(),
            )
        };
        if rc < 0 {
            let e = io::Error::last_os_error();
            if e.kind() == io::ErrorKind::WouldBlock {
                return Ok(0);
            }
            return Err(e);
        }
        self.filled = rc as usize;
        Ok(self.filled)
    }

    fn len_of(&self, i: usize) -> usize {
        if i >= self.filled {
            return 0;
        }
        (self.hdrs[i].msg_len as usize).min(self.buf_len)
    }

    /// Frame `i` of the last receive (with its virtio-net header).
    pub fn frame(&self, i: usize) -> &[u8] {
        let len = self.len_of(i);
        let i = i.min(self.capacity() - 1);
        &self.bufs[i * self.buf_len..i * self.buf_len + len]
    }

    /// Frame `i`, writable (to complete a checksum in place).
    pub fn frame_mut(&mut self, i: usize) -> &mut [u8] {
        let len = self.len_of(i);
        let i = i.min(self.capacity() - 1);
        &mut self.bufs[i * self.buf_len..i * self.buf_len + len]
    }

    /// Whether frame `i` was longer than the buffer.
    pub fn truncated(&self, i: usize) -> bool {
        i < self.filled && self.hdrs[i].msg_hdr.msg_flags & libc::MSG_TRUNC != 0
    }

    /// Whether frame `i` was going out of the interface
    /// (`PACKET_OUTGOING`).
    pub fn outgoing(&self, i: usize) -> bool {
        i < self.filled && self.addrs[i].sll_pkttype == libc::PACKET_OUTGOING
    }

    /// The VLAN tag the kernel took out of frame `i`, if any.
    pub fn vlan(&self, i: usize) -> Option<VlanTag> {
        if i >= self.filled {
            return None;
        }
        let h = &self.hdrs[i].msg_hdr;
        let mut aux: Option<libc::tpacket_auxdata> = None;
        // SAFETY: `h` is the header the kernel filled in for message i: its
        // msg_control points at self.ctrl[i] (alive, 8-byte aligned) and
        // msg_controllen says how much of it the kernel wrote; the CMSG
        // macros stay within that length, and a PACKET_AUXDATA message's
        // data is a tpacket_auxdata (read unaligned to be safe).
        unsafe {
            let mut c = libc::CMSG_FIRSTHDR(h);
            while !c.is_null() {
                if (*c).cmsg_level == libc::SOL_PACKET
                    && (*c).cmsg_type == libc::PACKET_AUXDATA
                    && (*c).cmsg_len as usize
                        >= libc::CMSG_LEN(std::mem::size_of::<libc::tpacket_auxdata>() as u32)
                            as usize
                {
                    aux = Some(std::ptr::read_unaligned(
                        libc::CMSG_DATA(c).cast::<libc::tpacket_auxdata>(),
                    ));
                }
                c = libc::CMSG_NXTHDR(h, c);
            }
        }
        let aux = aux?;
        if aux.tp_status & libc::TP_STATUS_VLAN_VALID == 0 {
            return None;
        }
        let tpid = if aux.tp_status & libc::TP_STATUS_VLAN_TPID_VALID != 0 {
            aux.tp_vlan_tpid
        } else {
            0x8100
        };
        Some(VlanTag {
            tpid,
            tci: aux.tp_vlan_tci,
        })
    }
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
    // Miri: if_nametoindex, AF_PACKET sockets, unshare: not emulated by Miri.
    #[cfg_attr(miri, ignore)]
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
    // Miri: if_nametoindex, AF_PACKET sockets, unshare: not emulated by Miri.
    #[cfg_attr(miri, ignore)]
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
    // Miri: if_nametoindex, AF_PACKET sockets, unshare: not emulated by Miri.
    #[cfg_attr(miri, ignore)]
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

    /// Brings `lo` of the current (private) namespace up.
    fn lo_up(fd: BorrowedFd<'_>) {
        let mut req = ifreq_with_name("lo").unwrap();
        let flags = (libc::IFF_UP | libc::IFF_RUNNING) as i16;
        req[IFREQ_UNION..IFREQ_UNION + 2].copy_from_slice(&flags.to_ne_bytes());
        // SAFETY: `req` is a live 40-byte struct ifreq with the name and
        // flags set; SIOCSIFFLAGS only reads it.
        let rc = unsafe { libc::ioctl(fd.as_raw_fd(), libc::SIOCSIFFLAGS as _, req.as_mut_ptr()) };
        assert_eq!(rc, 0, "{}", io::Error::last_os_error());
    }

    #[test]
    // Miri: if_nametoindex, AF_PACKET sockets, unshare: not emulated by Miri.
    #[cfg_attr(miri, ignore)]
    fn batches_carry_frames_and_their_vlan_tags() {
        in_private_netns(|private| {
            if !private {
                // Not root: nothing to open (and the host's lo is not ours).
                assert!(matches!(open("lo"), Err(PacketError::Socket(_))));
                return;
            }
            // Up before binding: a socket bound to a down interface gets
            // ENETDOWN as a pending error.
            let udp = std::net::UdpSocket::bind("0.0.0.0:0").unwrap();
            lo_up(udp.as_fd());
            let (rx, tx) = (open("lo").unwrap(), open("lo").unwrap());
            let mut plain = vec![0u8; VNET_HDR_LEN];
            plain.extend_from_slice(&[0xff; 6]);
            plain.extend_from_slice(&[2, 0, 0, 0, 0, 1, 0x88, 0xb5]);
            plain.extend_from_slice(b"untagged");
            let mut tagged = plain[..VNET_HDR_LEN + 12].to_vec();
            tagged.extend_from_slice(&[0x81, 0x00, 0x20, 0x07]);
            tagged.extend_from_slice(&plain[VNET_HDR_LEN + 12..]);
            for f in [&plain, &tagged] {
                // SAFETY: `f` is a live buffer of the length given; `tx` is
                // an open, bound packet socket.
                let n = unsafe { libc::send(tx.fd.as_raw_fd(), f.as_ptr().cast(), f.len(), 0) };
                assert_eq!(n, f.len() as isize, "{}", io::Error::last_os_error());
            }
            let mut b = PacketBatch::new(4, 128);
            let mut got = Vec::new();
            let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
            while got.len() < 2 && std::time::Instant::now() < deadline {
                let n = b.recv_up_to(rx.fd.as_fd(), 4).unwrap();
                for i in 0..n {
                    if !b.outgoing(i) {
                        got.push((b.frame(i).to_vec(), b.vlan(i), b.truncated(i)));
                    }
                }
            }
            // The kernel took the tag out of the second frame.
            assert_eq!(got.len(), 2, "{got:?}");
            assert_eq!(got[0], (plain.clone(), None, false));
            let tag = VlanTag {
                tpid: 0x8100,
                tci: 0x2007,
            };
            assert_eq!(got[1], (plain.clone(), Some(tag), false));
            assert_eq!(tag.bytes(), [0x81, 0x00, 0x20, 0x07]);
            assert_eq!(b.frame(7), b"");
            assert_eq!(b.vlan(7), None);
        })
    }
}
