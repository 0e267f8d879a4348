//! The `uml_switch` control protocol (request versions 0, 1, 3; the data
//! socket address reply), Ethernet frame header helpers and the MAC type
//! (`docs/switch.md` §4, §5, §11).
//!
//! Socket addresses are opaque 110-byte `sockaddr_un` values: both ends put
//! uninitialised bytes into them, so they are stored, compared and sent
//! verbatim, never interpreted as C strings (except filesystem paths, whose
//! bytes after the NUL are not part of the name).

use std::fmt;

/// `SWITCH_MAGIC` (wire bytes `ce fa ed fe`).
pub const MAGIC: u32 = 0xfeed_face;
/// `REQ_NEW_CONTROL`, the only request type.
pub const REQ_NEW_CONTROL: u32 = 0;
/// netkit's `REQ_NEW_DUMP` (`uml_dump`): a v3 request for a port that gets
/// a copy of every frame (docs/interop.md §0, item 6). vde clients mean their
/// management port by the same number; for them it stays refused.
pub const REQ_NEW_DUMP: u32 = 1;
/// vde clients (vdeplug4 `vde://DIR[N]`) ask for switch port N with
/// `type = REQ_NEW_CONTROL + (N << 8)` in a v3 request; the bits above the
/// low byte are such a port number, which is tolerated (not honoured).
pub const REQ_TYPE_MASK: u32 = 0xff;
/// `sizeof(struct sockaddr_un)` on Linux: 2-byte family + 108-byte path.
pub const SOCKADDR_UN_LEN: usize = 110;
/// Length of `sun_path`.
pub const SUN_PATH_LEN: usize = 108;
/// `AF_UNIX`.
pub const AF_UNIX: u16 = 1;
/// Size of a v0 request.
pub const V0_LEN: usize = 120;
/// Size of a v1 request.
pub const V1_LEN: usize = 124;
/// A v3 request without its two trailing padding bytes.
pub const V3_MIN_LEN: usize = 122;
/// A v3 request as the kernel writes it.
pub const V3_LEN: usize = 124;
/// Longest description tail of a vde-style v3 request that is tolerated.
pub const V3_DESCRIPTION_MAX: usize = 128;
/// Ethernet header length.
pub const ETH_HEADER_LEN: usize = 14;
/// Largest frame forwarded: header + MTU 1500. Longer ones are truncated.
pub const MAX_FRAME_LEN: usize = ETH_HEADER_LEN + 1500;

fn u32_at(buf: &[u8], off: usize) -> Option<u32> {
    let b = buf.get(off..off + 4)?;
    Some(u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
}

/// An opaque `struct sockaddr_un` as carried in requests and replies.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct SockAddrUn(pub [u8; SOCKADDR_UN_LEN]);

impl SockAddrUn {
    /// From the 110 bytes of a request.
    pub fn from_slice(bytes: &[u8]) -> Option<SockAddrUn> {
        let arr: [u8; SOCKADDR_UN_LEN] = bytes.get(..SOCKADDR_UN_LEN)?.try_into().ok()?;
        Some(SockAddrUn(arr))
    }

    /// An abstract address whose whole 108-byte path is significant:
    /// `sun_path[0] = 0` followed by `name` (at most 107 bytes, zero padded).
    pub fn abstract_name(name: &[u8]) -> SockAddrUn {
        let mut a = [0u8; SOCKADDR_UN_LEN];
        a[..2].copy_from_slice(&AF_UNIX.to_le_bytes());
        let n = name.len().min(SUN_PATH_LEN - 1);
        a[3..3 + n].copy_from_slice(&name[..n]);
        SockAddrUn(a)
    }

    /// A filesystem-path address (cut to 107 bytes).
    pub fn path(path: &[u8]) -> SockAddrUn {
        let mut a = [0u8; SOCKADDR_UN_LEN];
        a[..2].copy_from_slice(&AF_UNIX.to_le_bytes());
        let n = path.len().min(SUN_PATH_LEN - 1);
        a[2..2 + n].copy_from_slice(&path[..n]);
        SockAddrUn(a)
    }

    /// The `sun_path` bytes.
    pub fn sun_path(&self) -> &[u8] {
        &self.0[2..]
    }

    /// Whether this is an abstract address (`sun_path[0] == 0`).
    pub fn is_abstract(&self) -> bool {
        self.0[2] == 0
    }

    /// The address as std's [`std::os::unix::net::SocketAddr`], to
    /// `connect` or `send_to` with (abstract: all 107 bytes after the
    /// leading zero, as the client bound them; a path: up to its NUL).
    /// `None` for a path without a NUL or an unusable one.
    pub fn socket_addr(&self) -> Option<std::os::unix::net::SocketAddr> {
        use std::os::linux::net::SocketAddrExt;
        use std::os::unix::ffi::OsStrExt;
        use std::os::unix::net::SocketAddr;
        let path = self.sun_path();
        if self.is_abstract() {
            SocketAddr::from_abstract_name(&path[1..]).ok()
        } else {
            let end = path.iter().position(|&b| b == 0)?;
            SocketAddr::from_pathname(std::ffi::OsStr::from_bytes(&path[..end])).ok()
        }
    }

    /// The identity of the socket this address names when used with
    /// addrlen 110: an abstract name is all 108 path bytes; a filesystem
    /// path ends at its NUL.
    pub fn key(&self) -> AddrKey {
        if self.is_abstract() {
            AddrKey::from_sockaddr(&self.0)
        } else {
            let path = self.sun_path();
            let end = path.iter().position(|&b| b == 0).unwrap_or(path.len());
            AddrKey::from_sockaddr(&self.0[..2 + end])
        }
    }
}

impl fmt::Debug for SockAddrUn {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "SockAddrUn(")?;
        for b in self.sun_path() {
            write!(f, "{b:02x}")?;
        }
        write!(f, ")")
    }
}

/// The identity of a unix socket address as a sender appears in
/// `recvfrom` (family + path bytes up to the returned length, with a
/// filesystem path cut at its NUL), for O(1) lookup of the sending port.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct AddrKey {
    len: u8,
    bytes: [u8; SUN_PATH_LEN],
}

impl AddrKey {
    /// From raw `sockaddr_un` bytes as returned by `recvfrom` (family
    /// included, `addrlen` bytes). Unnamed senders give an empty key.
    pub fn from_sockaddr(raw: &[u8]) -> AddrKey {
        let path = raw.get(2..).unwrap_or(&[]);
        let path = &path[..path.len().min(SUN_PATH_LEN)];
        let path = if path.first().is_some_and(|&b| b != 0) {
            let end = path.iter().position(|&b| b == 0).unwrap_or(path.len());
            &path[..end]
        } else {
            path
        };
        let mut bytes = [0u8; SUN_PATH_LEN];
        bytes[..path.len()].copy_from_slice(path);
        AddrKey {
            len: path.len() as u8,
            bytes,
        }
    }

    /// The significant path bytes.
    pub fn as_bytes(&self) -> &[u8] {
        &self.bytes[..self.len as usize]
    }
}

/// Hashes the significant bytes in one `write` (bytes past `len` are
/// always zero, so equal keys hash equally), which lets a word-wise
/// hasher do a 108-byte address in 14 steps instead of 109.
impl std::hash::Hash for AddrKey {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        state.write(self.as_bytes());
    }
}

impl fmt::Debug for AddrKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "AddrKey({:?})", self.as_bytes())
    }
}

/// The request versions the switch serves.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Version {
    /// Version 0: no magic, no reply (needs `-compat-v0`).
    V0,
    /// Version 1: magic, then the type where v3 has its version.
    V1,
    /// Version 3: what Linux's daemon transport sends.
    V3,
}

/// What a (possibly partial) request on a new control connection means.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Parsed {
    /// Not enough bytes yet to decide; keep them and read more.
    NeedMore,
    /// A complete request for a new port.
    Port {
        /// Request version.
        version: Version,
        /// The client's data socket address (where its frames go).
        addr: SockAddrUn,
        /// Bytes of the buffer that belong to the request.
        consumed: usize,
    },
    /// A v3 `REQ_NEW_DUMP` request (exactly that type): a mirror port.
    Dump {
        /// The client's data socket address (where the copies go).
        addr: SockAddrUn,
        /// Bytes of the buffer that belong to the request.
        consumed: usize,
    },
    /// A request to refuse: print `message` and close the connection once.
    Reject {
        /// The message the C switch prints for it.
        message: String,
    },
}

/// Decides what the bytes received so far on a new control connection
/// are. Never looks at bytes that were not received: a prefix that cannot
/// be decided yet yields [`Parsed::NeedMore`]. Rules as in spec §4.1/§4.4:
/// first word ≠ magic → v0 (type = that word); version 3 → v3 (122 bytes
/// suffice; port bits above [`REQ_TYPE_MASK`] in its type are tolerated,
/// see [`v3_requested_port`]); 2 → rejected; > 3 → rejected; 0 or 1 → v1
/// (that word is the type).
pub fn parse_request(buf: &[u8]) -> Parsed {
    let Some(w0) = u32_at(buf, 0) else {
        return Parsed::NeedMore;
    };
    let bad_type = |t: u32| Parsed::Reject {
        message: format!("Bad request type : {}", t as i32),
    };
    if w0 != MAGIC {
        if w0 != REQ_NEW_CONTROL {
            return bad_type(w0);
        }
        return match SockAddrUn::from_slice(buf.get(10..).unwrap_or(&[])) {
            Some(addr) => Parsed::Port {
                version: Version::V0,
                addr,
                consumed: V0_LEN,
            },
            None => Parsed::NeedMore,
        };
    }
    let Some(version) = u32_at(buf, 4) else {
        return Parsed::NeedMore;
    };
    match version {
        3 => {
            let Some(kind) = u32_at(buf, 8) else {
                return Parsed::NeedMore;
            };
            if kind == REQ_NEW_DUMP {
                return match SockAddrUn::from_slice(buf.get(12..).unwrap_or(&[])) {
                    Some(addr) => Parsed::Dump {
                        addr,
                        consumed: buf.len().min(V3_LEN),
                    },
                    None => Parsed::NeedMore,
                };
            }
            if kind & REQ_TYPE_MASK != REQ_NEW_CONTROL {
                return bad_type(kind);
            }
            match SockAddrUn::from_slice(buf.get(12..).unwrap_or(&[])) {
                Some(addr) => Parsed::Port {
                    version: Version::V3,
                    addr,
                    consumed: buf.len().min(V3_LEN),
                },
                None => Parsed::NeedMore,
            }
        }
        2 => Parsed::Reject {
            message: "Version 2 is not supported".to_string(),
        },
        0 | 1 => {
            if version != REQ_NEW_CONTROL {
                return bad_type(version);
            }
            match SockAddrUn::from_slice(buf.get(14..).unwrap_or(&[])) {
                Some(addr) => Parsed::Port {
                    version: Version::V1,
                    addr,
                    consumed: V1_LEN,
                },
                None => Parsed::NeedMore,
            }
        }
        v => Parsed::Reject {
            message: format!(
                "Request for a version {v} port, which this uml_switch doesn't support"
            ),
        },
    }
}

/// The switch port a v3 request asks for (vde clients: `type >> 8`), or
/// `None` when it asks for none (or `buf` is not a v3 request).
pub fn v3_requested_port(buf: &[u8]) -> Option<u32> {
    if u32_at(buf, 0)? != MAGIC || u32_at(buf, 4)? != 3 {
        return None;
    }
    let port = u32_at(buf, 8)? >> 8;
    (port != 0).then_some(port)
}

/// Encodes a v3 request (124 bytes with the two padding bytes zero).
pub fn encode_v3(addr: &SockAddrUn) -> [u8; V3_LEN] {
    let mut b = [0u8; V3_LEN];
    b[0..4].copy_from_slice(&MAGIC.to_le_bytes());
    b[4..8].copy_from_slice(&3u32.to_le_bytes());
    b[8..12].copy_from_slice(&REQ_NEW_CONTROL.to_le_bytes());
    b[12..122].copy_from_slice(&addr.0);
    b
}

/// Encodes a v1 request (124 bytes; the MAC field is ignored by switches).
/// Only tests use it (here and `uml_switch`'s): it is the v1 request layout of
/// `docs/switch.md` §4.1, kept as the encoder of their vectors.
pub fn encode_v1(mac: Mac, addr: &SockAddrUn) -> [u8; V1_LEN] {
    let mut b = [0u8; V1_LEN];
    b[0..4].copy_from_slice(&MAGIC.to_le_bytes());
    b[4..8].copy_from_slice(&REQ_NEW_CONTROL.to_le_bytes());
    b[8..14].copy_from_slice(&mac.0);
    b[14..124].copy_from_slice(&addr.0);
    b
}

/// Encodes a v0 request (120 bytes). Only tests use it (here and
/// `uml_switch`'s): it is the v0 request layout of `docs/switch.md` §4.1,
/// kept as the encoder of their vectors.
pub fn encode_v0(mac: Mac, addr: &SockAddrUn) -> [u8; V0_LEN] {
    let mut b = [0u8; V0_LEN];
    b[0..4].copy_from_slice(&REQ_NEW_CONTROL.to_le_bytes());
    b[4..10].copy_from_slice(&mac.0);
    b[10..120].copy_from_slice(&addr.0);
    b
}

/// The 107 bytes after `sun_path[0]` of the switch's abstract data socket
/// name: the C struct `{ char zero; 3 padding bytes; int pid; int usecs; }`
/// followed by zeros (padding written as zeros here).
pub fn data_socket_name(pid: u32, usecs: u32) -> [u8; SUN_PATH_LEN - 1] {
    let mut name = [0u8; SUN_PATH_LEN - 1];
    name[3..7].copy_from_slice(&pid.to_le_bytes());
    name[7..11].copy_from_slice(&usecs.to_le_bytes());
    name
}

/// An Ethernet MAC address.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct Mac(pub [u8; 6]);

impl Mac {
    /// Group (broadcast or multicast) address: low bit of the first byte.
    pub fn is_multicast(&self) -> bool {
        self.0[0] & 1 != 0
    }

    /// As a u64 (for hashing).
    pub fn to_u64(self) -> u64 {
        let m = self.0;
        u64::from_le_bytes([m[0], m[1], m[2], m[3], m[4], m[5], 0, 0])
    }
}

impl fmt::Display for Mac {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let m = self.0;
        write!(
            f,
            "{:02x}:{:02x}:{:02x}:{:02x}:{:02x}:{:02x}",
            m[0], m[1], m[2], m[3], m[4], m[5]
        )
    }
}

impl fmt::Debug for Mac {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Mac({self})")
    }
}

/// Destination and source MAC of a frame, or `None` when it is shorter
/// than an Ethernet header (such frames are dropped, never forwarded).
pub fn frame_macs(frame: &[u8]) -> Option<(Mac, Mac)> {
    if frame.len() < ETH_HEADER_LEN {
        return None;
    }
    let mut dst = [0u8; 6];
    let mut src = [0u8; 6];
    dst.copy_from_slice(&frame[0..6]);
    src.copy_from_slice(&frame[6..12]);
    Some((Mac(dst), Mac(src)))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hex(s: &str) -> Vec<u8> {
        s.split_whitespace()
            .map(|b| u8::from_str_radix(b, 16).unwrap())
            .collect()
    }

    fn s1() -> Vec<u8> {
        hex("ce fa ed fe 03 00 00 00 00 00 00 00 01 00 00 00
             00 00 ad 45 00 00 d1 ad 0b 00 00 00 00 00 00 00
             00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00
             00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00
             00 00 00 00 00 00 00 00 00 00 00 00 00 0c 03 8a
             00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00
             00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00
             00 00 00 00 00 00 00 00 00 00 00 00")
    }

    #[test]
    fn s1_kernel_v3_request() {
        let req = s1();
        assert_eq!(req.len(), 124);
        let Parsed::Port {
            version,
            addr,
            consumed,
        } = parse_request(&req)
        else {
            panic!("not a port");
        };
        assert_eq!(version, Version::V3);
        assert_eq!(consumed, 124);
        assert_eq!(&addr.0[..], &req[12..122]);
        assert!(addr.is_abstract());
        // Garbage bytes at 77..80 are part of the name.
        assert_eq!(&addr.0[77 - 12..80 - 12], &[0x0c, 0x03, 0x8a]);
        assert_eq!(encode_v3(&addr)[..], req[..]);
    }

    #[test]
    fn v3_without_padding_and_every_prefix() {
        let req = s1();
        for n in 0..V3_MIN_LEN {
            assert_eq!(parse_request(&req[..n]), Parsed::NeedMore, "prefix {n}");
        }
        assert!(matches!(
            parse_request(&req[..122]),
            Parsed::Port { consumed: 122, .. }
        ));
        // A vde-style description tail is not part of the request.
        let mut long = req.clone();
        long.extend_from_slice(&[b'x'; 128]);
        assert!(matches!(
            parse_request(&long),
            Parsed::Port { consumed: 124, .. }
        ));
    }

    #[test]
    fn v3_port_bits_are_tolerated() {
        let addr = SockAddrUn::path(b"/tmp/sw/.01234-00000");
        let mut req = encode_v3(&addr).to_vec();
        assert_eq!(v3_requested_port(&req), None);
        req[8..12].copy_from_slice(&(5u32 << 8).to_le_bytes());
        assert_eq!(
            parse_request(&req[..122]),
            Parsed::Port {
                version: Version::V3,
                addr,
                consumed: 122
            }
        );
        assert_eq!(v3_requested_port(&req), Some(5));
        assert_eq!(v3_requested_port(&req[..11]), None);
        assert_eq!(v3_requested_port(&encode_v1(Mac([0; 6]), &addr)), None);
    }

    #[test]
    fn s2_reply_address() {
        let name = data_socket_name(0x5742, 0x090e47);
        let addr = SockAddrUn::abstract_name(&name);
        assert_eq!(
            &addr.0[..14],
            &hex("01 00 00 00 00 00 42 57 00 00 47 0e 09 00")[..]
        );
        assert!(addr.0[14..].iter().all(|&b| b == 0));
        assert_eq!(addr.0.len(), 110);
    }

    #[test]
    fn socket_addr_conversion() {
        use std::os::linux::net::SocketAddrExt;
        let name = data_socket_name(0x5742, 0x090e47);
        let a = SockAddrUn::abstract_name(&name).socket_addr().unwrap();
        assert_eq!(a.as_abstract_name(), Some(&name[..]));
        let p = SockAddrUn::path(b"/tmp/uml.data").socket_addr().unwrap();
        assert_eq!(p.as_pathname(), Some(std::path::Path::new("/tmp/uml.data")));
        // 108 path bytes without a NUL name no socket.
        let mut full = SockAddrUn::path(b"x").0;
        full[2..].fill(b'x');
        assert!(SockAddrUn(full).socket_addr().is_none());
    }

    #[test]
    fn s3_v1_request() {
        let addr = SockAddrUn::abstract_name(b"clA");
        let req = encode_v1(Mac([2, 0, 0, 0, 0, 1]), &addr);
        let mut expected = hex("ce fa ed fe 00 00 00 00 02 00 00 00 00 01 01 00 00 63 6c 41");
        expected.resize(124, 0);
        assert_eq!(req[..], expected[..]);
        assert_eq!(
            parse_request(&req),
            Parsed::Port {
                version: Version::V1,
                addr,
                consumed: 124
            }
        );
        for n in 0..124 {
            assert_eq!(parse_request(&req[..n]), Parsed::NeedMore, "prefix {n}");
        }
    }

    #[test]
    fn s4_v0_request() {
        let addr = SockAddrUn::path(b"/tmp/client.sock");
        let req = encode_v0(Mac([2, 0, 0, 0, 0, 1]), &addr);
        assert_eq!(&req[..4], &[0, 0, 0, 0]);
        assert_eq!(&req[10..12], &[1, 0]);
        assert_eq!(
            parse_request(&req),
            Parsed::Port {
                version: Version::V0,
                addr,
                consumed: 120
            }
        );
        for n in 0..120 {
            assert_eq!(parse_request(&req[..n]), Parsed::NeedMore, "prefix {n}");
        }
    }

    #[test]
    fn s6_v2_and_other_rejections() {
        let mut v2 = hex("ce fa ed fe 02 00 00 00 00 00 00 00");
        v2.resize(124, 0);
        assert_eq!(
            parse_request(&v2[..8]),
            Parsed::Reject {
                message: "Version 2 is not supported".into()
            }
        );
        let v4 = hex("ce fa ed fe 04 00 00 00");
        assert_eq!(
            parse_request(&v4),
            Parsed::Reject {
                message: "Request for a version 4 port, which this uml_switch doesn't support"
                    .into()
            }
        );
        assert_eq!(
            parse_request(&hex("ef be ad de")),
            Parsed::Reject {
                message: "Bad request type : -559038737".into()
            }
        );
        assert_eq!(
            parse_request(&hex("ce fa ed fe 03 00 00 00 07 00 00 00")),
            Parsed::Reject {
                message: "Bad request type : 7".into()
            }
        );
        // netkit's uml_dump: type 1, a mirror port.
        let mut dump = hex("ce fa ed fe 03 00 00 00 01 00 00 00");
        dump.extend_from_slice(&[1, 0, 0, b'd']);
        dump.resize(124, 0);
        assert!(matches!(
            parse_request(&dump),
            Parsed::Dump { consumed: 124, addr } if addr.0[..4] == [1, 0, 0, b'd']
        ));
        assert_eq!(parse_request(&dump[..100]), Parsed::NeedMore);
        // Port bits do not make a bad type acceptable.
        assert_eq!(
            parse_request(&hex("ce fa ed fe 03 00 00 00 01 03 00 00")),
            Parsed::Reject {
                message: "Bad request type : 769".into()
            }
        );
        assert_eq!(
            parse_request(&hex("ce fa ed fe 01 00 00 00")),
            Parsed::Reject {
                message: "Bad request type : 1".into()
            }
        );
        assert_eq!(
            parse_request(&[0xff; 4096]),
            Parsed::Reject {
                message: "Bad request type : -1".into()
            }
        );
    }

    #[test]
    fn address_keys() {
        // A kernel-style abstract address: all 108 path bytes matter.
        let a = SockAddrUn::abstract_name(&[0, 0, 0, 1, 2, 3, 4]);
        let from_recv = AddrKey::from_sockaddr(&a.0);
        assert_eq!(a.key(), from_recv);
        // The same name bound short is a different socket.
        let short = AddrKey::from_sockaddr(&a.0[..12]);
        assert_ne!(a.key(), short);
        // A path address: bytes after the NUL do not count; recvfrom
        // reports addrlen = 2 + strlen + 1.
        let mut p = SockAddrUn::path(b"/tmp/x.sock");
        p.0[50] = 0x99; // garbage after the NUL
        let mut raw = vec![1, 0];
        raw.extend_from_slice(b"/tmp/x.sock\0");
        assert_eq!(p.key(), AddrKey::from_sockaddr(&raw));
        assert_eq!(p.key().as_bytes(), b"/tmp/x.sock");
        // Unnamed sender.
        assert_eq!(AddrKey::from_sockaddr(&[1, 0]).as_bytes(), b"");
        assert_eq!(AddrKey::from_sockaddr(&[]).as_bytes(), b"");
    }

    #[test]
    fn macs_and_frames() {
        let m = Mac([0xfe, 0xfd, 0x0a, 0, 0, 1]);
        assert_eq!(m.to_string(), "fe:fd:0a:00:00:01");
        assert!(!m.is_multicast());
        assert!(Mac([0xff; 6]).is_multicast());
        assert!(Mac([0x01, 0, 0x5e, 0, 0, 1]).is_multicast());
        assert_eq!(frame_macs(&[0; 13]), None);
        let mut f = vec![0xff; 6];
        f.extend_from_slice(&m.0);
        f.extend_from_slice(&[8, 0]);
        assert_eq!(frame_macs(&f), Some((Mac([0xff; 6]), m)));
    }

    #[test]
    fn parser_never_panics() {
        let mut seed = 7u32;
        for len in 0..400usize {
            let mut buf: Vec<u8> = (0..len)
                .map(|_| {
                    seed = seed.wrapping_mul(1_103_515_245).wrapping_add(12345);
                    (seed >> 16) as u8
                })
                .collect();
            let _ = parse_request(&buf);
            if len >= 8 {
                buf[..4].copy_from_slice(&MAGIC.to_le_bytes());
                let _ = parse_request(&buf);
            }
            let _ = AddrKey::from_sockaddr(&buf);
            let _ = frame_macs(&buf);
        }
    }
}
