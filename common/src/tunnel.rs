//! Wire formats of the vector driver's tunnel transports (`docs/vector.md`
//! §4, §5, §9; unchanged in 7.x, `docs/kernel7.md` §1.2): Ethernet over
//! L2TPv3 (RFC 3931 static sessions, over UDP or directly over IP,
//! protocol 115) and Ethernet over GRE (protocol 0x6558, transparent
//! Ethernet bridging, with the key and sequence fields of RFC 2890 and the
//! checksum of RFC 2784), plus the IPv4 header a raw IPv4 socket returns
//! in front of them.
//!
//! Pure functions over byte slices: headers are written into a caller's
//! buffer (no allocation) and read from a received packet, and no input
//! makes them panic. Policy (which session, cookie or key a port
//! expects) is the caller's.

use std::net::Ipv4Addr;

/// IP protocol number of L2TPv3 over IP.
pub const IPPROTO_L2TP: u8 = 115;
/// IP protocol number of GRE.
pub const IPPROTO_GRE: u8 = 47;
/// GRE protocol type of transparent Ethernet bridging (an Ethernet frame
/// follows the header).
pub const GRE_PROTO_TEB: u16 = 0x6558;
/// The first word of an L2TPv3 data message over UDP: T=0 (data), version
/// 3, reserved 0 (`00 03 00 00`).
pub const L2TPV3_UDP_DATA_WORD: u32 = 0x0003_0000;

/// GRE flag: checksum present (RFC 2784).
pub const GRE_FLAG_CHECKSUM: u16 = 0x8000;
/// GRE flag: routing present (RFC 1701; not supported).
pub const GRE_FLAG_ROUTING: u16 = 0x4000;
/// GRE flag: key present (RFC 2890).
pub const GRE_FLAG_KEY: u16 = 0x2000;
/// GRE flag: sequence number present (RFC 2890).
pub const GRE_FLAG_SEQUENCE: u16 = 0x1000;
/// GRE version bits (must be 0).
pub const GRE_VERSION_MASK: u16 = 0x0007;

/// Longest L2TPv3 header: UDP word, session, 64-bit cookie, counter.
pub const L2TPV3_MAX_HEADER: usize = 20;
/// Longest GRE header: flags and protocol, checksum, key, sequence.
pub const GRE_MAX_HEADER: usize = 16;
/// Longest IPv4 header (IHL 15).
pub const IPV4_MAX_HEADER: usize = 60;

/// Why a packet could not be decoded.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum TunnelError {
    /// Shorter than the header it must carry.
    #[error("packet of {len} bytes is shorter than its {need}-byte header")]
    TooShort {
        /// Bytes received.
        len: usize,
        /// Bytes the header needs.
        need: usize,
    },
    /// Not an IPv4 packet, or an IHL below 5.
    #[error("not an IPv4 header (first byte {0:#04x})")]
    NotIpv4(u8),
    /// An IPv4 total length below its header length.
    #[error("IPv4 total length {total} is below the header length {header}")]
    BadIpv4Length {
        /// The total length field.
        total: usize,
        /// The header length (IHL * 4).
        header: usize,
    },
    /// A GRE version other than 0.
    #[error("GRE version {0} (only 0 is Ethernet over GRE)")]
    GreVersion(u16),
    /// A GRE header with routing information (RFC 1701), which has no
    /// fixed length.
    #[error("GRE header with routing information")]
    GreRouting,
}

// ---------------------------------------------------------------------------
// L2TPv3
// ---------------------------------------------------------------------------

/// Width of the L2TPv3 cookie field.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum CookieLen {
    /// No cookie.
    #[default]
    None,
    /// 4 bytes (`rx_cookie`/`tx_cookie`).
    Four,
    /// 8 bytes (`cookie64=1`).
    Eight,
}

impl CookieLen {
    /// Bytes on the wire.
    pub fn bytes(self) -> usize {
        match self {
            CookieLen::None => 0,
            CookieLen::Four => 4,
            CookieLen::Eight => 8,
        }
    }
}

/// Which fields an L2TPv3 header has; both ends must agree, as nothing in
/// the header says so.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct L2tpv3Layout {
    /// Over UDP: the header starts with the 4-byte `00 03 00 00` word.
    pub udp: bool,
    /// The cookie field.
    pub cookie: CookieLen,
    /// The 4-byte counter (sequence) field (`counter=1`).
    pub counter: bool,
}

impl L2tpv3Layout {
    /// Header length: 4 (UDP only) + 4 (session) + 0/4/8 (cookie) + 0/4
    /// (counter).
    pub fn header_len(&self) -> usize {
        4 * usize::from(self.udp) + 4 + self.cookie.bytes() + 4 * usize::from(self.counter)
    }
}

/// The variable fields of an L2TPv3 data header.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct L2tpv3Fields {
    /// Session id (the receiver's `rx_session`).
    pub session: u32,
    /// Cookie (the receiver's `rx_cookie`); with a 4-byte cookie only the
    /// low 32 bits are sent.
    pub cookie: u64,
    /// Counter value (1, 2, 3, … or 0 when pinned).
    pub counter: u32,
}

/// Writes the header of `layout` with `fields` at the start of `out` and
/// returns its length, or `None` when `out` is too short.
pub fn encode_l2tpv3(
    layout: &L2tpv3Layout,
    fields: &L2tpv3Fields,
    out: &mut [u8],
) -> Option<usize> {
    let len = layout.header_len();
    let out = out.get_mut(..len)?;
    let mut at = 0;
    if layout.udp {
        out[..4].copy_from_slice(&L2TPV3_UDP_DATA_WORD.to_be_bytes());
        at = 4;
    }
    out[at..at + 4].copy_from_slice(&fields.session.to_be_bytes());
    at += 4;
    match layout.cookie {
        CookieLen::None => {}
        CookieLen::Four => {
            out[at..at + 4].copy_from_slice(&(fields.cookie as u32).to_be_bytes());
            at += 4;
        }
        CookieLen::Eight => {
            out[at..at + 8].copy_from_slice(&fields.cookie.to_be_bytes());
            at += 8;
        }
    }
    if layout.counter {
        out[at..at + 4].copy_from_slice(&fields.counter.to_be_bytes());
    }
    Some(len)
}

/// A decoded L2TPv3 data header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct L2tpv3Header {
    /// The first word over UDP (`00 03 00 00` for a data message; not
    /// checked, as the kernel does not check it).
    pub udp_word: Option<u32>,
    /// Session id.
    pub session: u32,
    /// Cookie, if the layout has one (a 4-byte cookie zero-extended).
    pub cookie: Option<u64>,
    /// Counter, if the layout has one (not checked by the kernel).
    pub counter: Option<u32>,
    /// Where the Ethernet frame starts (the header length).
    pub payload_offset: usize,
}

fn be32(b: &[u8], at: usize) -> u32 {
    let mut w = [0u8; 4];
    w.copy_from_slice(&b[at..at + 4]);
    u32::from_be_bytes(w)
}

fn be16(b: &[u8], at: usize) -> u16 {
    u16::from_be_bytes([b[at], b[at + 1]])
}

/// Reads the L2TPv3 header of `layout` at the start of `packet` (for IP
/// mode, after the IPv4 header, see [`decode_ipv4`]).
pub fn decode_l2tpv3(layout: &L2tpv3Layout, packet: &[u8]) -> Result<L2tpv3Header, TunnelError> {
    let need = layout.header_len();
    if packet.len() < need {
        return Err(TunnelError::TooShort {
            len: packet.len(),
            need,
        });
    }
    let mut at = 0;
    let udp_word = if layout.udp {
        at = 4;
        Some(be32(packet, 0))
    } else {
        None
    };
    let session = be32(packet, at);
    at += 4;
    let cookie = match layout.cookie {
        CookieLen::None => None,
        CookieLen::Four => {
            at += 4;
            Some(u64::from(be32(packet, at - 4)))
        }
        CookieLen::Eight => {
            at += 8;
            Some(u64::from(be32(packet, at - 8)) << 32 | u64::from(be32(packet, at - 4)))
        }
    };
    let counter = if layout.counter {
        at += 4;
        Some(be32(packet, at - 4))
    } else {
        None
    };
    Ok(L2tpv3Header {
        udp_word,
        session,
        cookie,
        counter,
        payload_offset: at,
    })
}

// ---------------------------------------------------------------------------
// GRE
// ---------------------------------------------------------------------------

/// A GRE header (RFC 2784 with the RFC 2890 key and sequence number).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct GreHeader {
    /// Protocol type of the payload ([`GRE_PROTO_TEB`] for Ethernet).
    pub protocol: u16,
    /// Checksum field, if present. [`encode_gre`] writes it as given (0
    /// before [`fill_gre_checksum`]).
    pub checksum: Option<u16>,
    /// Key, if present.
    pub key: Option<u32>,
    /// Sequence number, if present.
    pub sequence: Option<u32>,
}

impl GreHeader {
    /// An Ethernet-over-GRE header with the given optional fields.
    pub fn ethernet(key: Option<u32>, sequence: Option<u32>) -> GreHeader {
        GreHeader {
            protocol: GRE_PROTO_TEB,
            checksum: None,
            key,
            sequence,
        }
    }

    /// The flags and version word: C, K and S bits for the fields present,
    /// version 0.
    pub fn flags(&self) -> u16 {
        let mut f = 0;
        if self.checksum.is_some() {
            f |= GRE_FLAG_CHECKSUM;
        }
        if self.key.is_some() {
            f |= GRE_FLAG_KEY;
        }
        if self.sequence.is_some() {
            f |= GRE_FLAG_SEQUENCE;
        }
        f
    }

    /// The first four bytes (flags and protocol) as one big-endian word:
    /// what the vector driver compares a received header against.
    pub fn first_word(&self) -> u32 {
        u32::from(self.flags()) << 16 | u32::from(self.protocol)
    }

    /// Header length: 4 + 4 (checksum and reserved) + 4 (key) + 4
    /// (sequence), each when present.
    pub fn len(&self) -> usize {
        4 + 4 * usize::from(self.checksum.is_some())
            + 4 * usize::from(self.key.is_some())
            + 4 * usize::from(self.sequence.is_some())
    }

    /// Never: a GRE header has at least 4 bytes.
    pub fn is_empty(&self) -> bool {
        false
    }
}

/// Writes `h` at the start of `out` and returns its length, or `None` when
/// `out` is too short.
pub fn encode_gre(h: &GreHeader, out: &mut [u8]) -> Option<usize> {
    let len = h.len();
    let out = out.get_mut(..len)?;
    out[..2].copy_from_slice(&h.flags().to_be_bytes());
    out[2..4].copy_from_slice(&h.protocol.to_be_bytes());
    let mut at = 4;
    if let Some(c) = h.checksum {
        out[at..at + 2].copy_from_slice(&c.to_be_bytes());
        out[at + 2..at + 4].fill(0);
        at += 4;
    }
    if let Some(k) = h.key {
        out[at..at + 4].copy_from_slice(&k.to_be_bytes());
        at += 4;
    }
    if let Some(s) = h.sequence {
        out[at..at + 4].copy_from_slice(&s.to_be_bytes());
    }
    Some(len)
}

/// A decoded GRE packet.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct GrePacket {
    /// The flags and version word as received (reserved bits included).
    pub flags: u16,
    /// The header's fields.
    pub header: GreHeader,
    /// Where the payload starts (the header length).
    pub payload_offset: usize,
}

impl GrePacket {
    /// The first four bytes as received, as one big-endian word.
    pub fn first_word(&self) -> u32 {
        u32::from(self.flags) << 16 | u32::from(self.header.protocol)
    }
}

/// Reads the GRE header at the start of `packet` (after the IPv4 header
/// for raw IPv4 sockets, see [`decode_ipv4`]). The fields present follow
/// the C, K and S bits; version 1 (PPTP) and routing (RFC 1701) are
/// refused. The checksum is returned, not verified (see
/// [`gre_checksum_ok`]).
pub fn decode_gre(packet: &[u8]) -> Result<GrePacket, TunnelError> {
    if packet.len() < 4 {
        return Err(TunnelError::TooShort {
            len: packet.len(),
            need: 4,
        });
    }
    let flags = be16(packet, 0);
    let protocol = be16(packet, 2);
    let version = flags & GRE_VERSION_MASK;
    if version != 0 {
        return Err(TunnelError::GreVersion(version));
    }
    if flags & GRE_FLAG_ROUTING != 0 {
        return Err(TunnelError::GreRouting);
    }
    let has = |bit: u16| flags & bit != 0;
    let need = 4
        + 4 * usize::from(has(GRE_FLAG_CHECKSUM))
        + 4 * usize::from(has(GRE_FLAG_KEY))
        + 4 * usize::from(has(GRE_FLAG_SEQUENCE));
    if packet.len() < need {
        return Err(TunnelError::TooShort {
            len: packet.len(),
            need,
        });
    }
    let mut at = 4;
    let mut field = |present: bool| {
        present.then(|| {
            at += 4;
            be32(packet, at - 4)
        })
    };
    let checksum = field(has(GRE_FLAG_CHECKSUM)).map(|w| (w >> 16) as u16);
    let key = field(has(GRE_FLAG_KEY));
    let sequence = field(has(GRE_FLAG_SEQUENCE));
    Ok(GrePacket {
        flags,
        header: GreHeader {
            protocol,
            checksum,
            key,
            sequence,
        },
        payload_offset: need,
    })
}

/// The Internet checksum (RFC 1071) of `data`: the ones' complement of the
/// ones' complement sum of its 16-bit big-endian words (an odd last byte
/// padded with zero).
pub fn internet_checksum(data: &[u8]) -> u16 {
    let mut sum: u64 = 0;
    let mut words = data.chunks_exact(2);
    for w in &mut words {
        sum += u64::from(u16::from_be_bytes([w[0], w[1]]));
    }
    if let [last] = words.remainder() {
        sum += u64::from(*last) << 8;
    }
    while sum >> 16 != 0 {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    !(sum as u16)
}

/// Fills in the checksum of a GRE packet (header with the C bit, then the
/// payload) in place: the checksum of the whole packet with the field
/// zero. Returns false when the packet has no checksum field.
pub fn fill_gre_checksum(packet: &mut [u8]) -> bool {
    match decode_gre(packet) {
        Ok(p) if p.header.checksum.is_some() => {
            packet[4..6].fill(0);
            let c = internet_checksum(packet);
            packet[4..6].copy_from_slice(&c.to_be_bytes());
            true
        }
        _ => false,
    }
}

/// Whether a GRE packet's checksum is right (true when it has none).
pub fn gre_checksum_ok(packet: &[u8]) -> bool {
    match decode_gre(packet) {
        Ok(p) if p.header.checksum.is_some() => internet_checksum(packet) == 0,
        Ok(_) => true,
        Err(_) => false,
    }
}

// ---------------------------------------------------------------------------
// IPv4 (what a raw IPv4 socket returns)
// ---------------------------------------------------------------------------

/// The parts of an IPv4 packet a raw socket's reader needs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Ipv4Packet<'a> {
    /// Source address.
    pub src: Ipv4Addr,
    /// Destination address.
    pub dst: Ipv4Addr,
    /// Protocol of the payload.
    pub protocol: u8,
    /// Header length (IHL * 4).
    pub header_len: usize,
    /// The payload: after the header, up to the total length (or the end
    /// of `packet` when it was cut short).
    pub payload: &'a [u8],
}

/// Reads the IPv4 header at the start of `packet`, as a raw IPv4 socket
/// returns it (options included: IHL is honoured, unlike the vector
/// driver, which assumes 20 bytes).
pub fn decode_ipv4(packet: &[u8]) -> Result<Ipv4Packet<'_>, TunnelError> {
    let first = *packet
        .first()
        .ok_or(TunnelError::TooShort { len: 0, need: 20 })?;
    let header_len = usize::from(first & 0x0f) * 4;
    if first >> 4 != 4 || header_len < 20 {
        return Err(TunnelError::NotIpv4(first));
    }
    if packet.len() < header_len {
        return Err(TunnelError::TooShort {
            len: packet.len(),
            need: header_len,
        });
    }
    let total = usize::from(be16(packet, 2));
    if total < header_len {
        return Err(TunnelError::BadIpv4Length {
            total,
            header: header_len,
        });
    }
    let end = total.min(packet.len());
    let addr =
        |at: usize| Ipv4Addr::new(packet[at], packet[at + 1], packet[at + 2], packet[at + 3]);
    Ok(Ipv4Packet {
        src: addr(12),
        dst: addr(16),
        protocol: packet[9],
        header_len,
        payload: &packet[header_len..end],
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The kernel's first frame in the captures of `docs/vector.md` §9:
    /// an ARP request from 02:00:00:00:00:02 / 10.0.0.2 for 10.0.0.1.
    const F: [u8; 42] = [
        0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x02, 0x00, 0x00, 0x00, 0x00, 0x02, 0x08, 0x06, 0x00,
        0x01, 0x08, 0x00, 0x06, 0x04, 0x00, 0x01, 0x02, 0x00, 0x00, 0x00, 0x00, 0x02, 0x0a, 0x00,
        0x00, 0x02, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x0a, 0x00, 0x00, 0x01,
    ];

    fn hex(s: &str) -> Vec<u8> {
        s.split_whitespace()
            .map(|b| u8::from_str_radix(b, 16).unwrap_or_else(|_| panic!("bad hex {b}")))
            .collect()
    }

    fn with_frame(header: &str) -> Vec<u8> {
        let mut v = hex(header);
        v.extend_from_slice(&F);
        v
    }

    fn encode_packet_l2tpv3(layout: &L2tpv3Layout, fields: &L2tpv3Fields) -> Vec<u8> {
        let mut buf = [0u8; L2TPV3_MAX_HEADER];
        let n = encode_l2tpv3(layout, fields, &mut buf).unwrap();
        let mut v = buf[..n].to_vec();
        v.extend_from_slice(&F);
        v
    }

    #[test]
    fn l2tpv3_udp_without_cookie_or_counter() {
        // `docs/vector.md` §9:
        // udp=1,rx_session=0x1234,tx_session=0x5678: 50 bytes.
        let layout = L2tpv3Layout {
            udp: true,
            ..L2tpv3Layout::default()
        };
        let from_guest = with_frame("00 03 00 00 00 00 56 78");
        assert_eq!(from_guest.len(), 50);
        let h = decode_l2tpv3(&layout, &from_guest).unwrap();
        assert_eq!(
            h,
            L2tpv3Header {
                udp_word: Some(L2TPV3_UDP_DATA_WORD),
                session: 0x5678,
                cookie: None,
                counter: None,
                payload_offset: 8,
            }
        );
        assert_eq!(&from_guest[h.payload_offset..], &F[..]);
        // The switch's answer carries the guest's rx_session.
        let fields = L2tpv3Fields {
            session: 0x1234,
            ..L2tpv3Fields::default()
        };
        assert_eq!(
            encode_packet_l2tpv3(&layout, &fields),
            with_frame("00 03 00 00 00 00 12 34")
        );
    }

    #[test]
    fn l2tpv3_udp_cookie64_and_counter() {
        // `docs/vector.md` §9:
        // tx_session=0x5678,cookie64=1,tx_cookie=0x1122334455667788,
        // counter=1: 62 bytes, counter 1 then 2.
        let layout = L2tpv3Layout {
            udp: true,
            cookie: CookieLen::Eight,
            counter: true,
        };
        assert_eq!(layout.header_len(), 20);
        for (n, counter) in [(1u32, "00 00 00 01"), (2, "00 00 00 02")] {
            let wire = with_frame(&format!(
                "00 03 00 00 00 00 56 78 11 22 33 44 55 66 77 88 {counter}"
            ));
            assert_eq!(wire.len(), 62);
            let h = decode_l2tpv3(&layout, &wire).unwrap();
            assert_eq!(h.session, 0x5678);
            assert_eq!(h.cookie, Some(0x1122_3344_5566_7788));
            assert_eq!(h.counter, Some(n));
            assert_eq!(&wire[h.payload_offset..], &F[..]);
            let fields = L2tpv3Fields {
                session: 0x5678,
                cookie: 0x1122_3344_5566_7788,
                counter: n,
            };
            assert_eq!(encode_packet_l2tpv3(&layout, &fields), wire);
        }
    }

    #[test]
    fn l2tpv3_ip_with_cookie32_and_pinned_counter() {
        // `docs/vector.md` §9: IP mode,
        // tx_session=0x5678,tx_cookie=0xdeadbeef,counter=1,
        // pin_counter=1, as read from the switch's raw IPv4 socket (74).
        let wire = with_frame(
            "45 00 00 4a 46 39 40 00 40 73 f6 04 7f 00 00 02 7f 00 00 01 \
             00 00 56 78 de ad be ef 00 00 00 00",
        );
        assert_eq!(wire.len(), 74);
        let ip = decode_ipv4(&wire).unwrap();
        assert_eq!(ip.protocol, IPPROTO_L2TP);
        assert_eq!(ip.src, Ipv4Addr::new(127, 0, 0, 2));
        assert_eq!(ip.dst, Ipv4Addr::new(127, 0, 0, 1));
        assert_eq!(ip.header_len, 20);
        // The IPv4 header checksum of the capture is right.
        assert_eq!(internet_checksum(&wire[..20]), 0);
        let layout = L2tpv3Layout {
            udp: false,
            cookie: CookieLen::Four,
            counter: true,
        };
        let h = decode_l2tpv3(&layout, ip.payload).unwrap();
        assert_eq!(h.udp_word, None);
        assert_eq!(h.session, 0x5678);
        assert_eq!(h.cookie, Some(0xdead_beef));
        assert_eq!(h.counter, Some(0));
        assert_eq!(&ip.payload[h.payload_offset..], &F[..]);
        // The reply: payload 00 00 12 34 ca fe f0 0d 00 00 00 01 + frame.
        let fields = L2tpv3Fields {
            session: 0x1234,
            cookie: 0xcafe_f00d,
            counter: 1,
        };
        assert_eq!(
            encode_packet_l2tpv3(&layout, &fields),
            with_frame("00 00 12 34 ca fe f0 0d 00 00 00 01")
        );
        // A 4-byte cookie sends the low 32 bits of the value.
        let wide = L2tpv3Fields {
            cookie: 0x1_cafe_f00d,
            ..fields
        };
        assert_eq!(
            encode_packet_l2tpv3(&layout, &wide),
            encode_packet_l2tpv3(&layout, &fields)
        );
    }

    #[test]
    fn l2tpv3_short_packets_and_buffers() {
        let layout = L2tpv3Layout {
            udp: true,
            cookie: CookieLen::Eight,
            counter: true,
        };
        for len in 0..20 {
            assert_eq!(
                decode_l2tpv3(&layout, &[0u8; 20][..len]),
                Err(TunnelError::TooShort { len, need: 20 })
            );
        }
        // A header with nothing after it is a packet with an empty frame.
        assert_eq!(
            decode_l2tpv3(&layout, &[0u8; 20]).unwrap().payload_offset,
            20
        );
        let mut small = [0u8; 19];
        assert_eq!(
            encode_l2tpv3(&layout, &L2tpv3Fields::default(), &mut small),
            None
        );
        let minimal = L2tpv3Layout::default();
        assert_eq!(minimal.header_len(), 4);
        let mut four = [0u8; 4];
        assert_eq!(
            encode_l2tpv3(
                &minimal,
                &L2tpv3Fields {
                    session: 0xffff_ffff,
                    ..L2tpv3Fields::default()
                },
                &mut four
            ),
            Some(4)
        );
        assert_eq!(four, [0xff; 4]);
    }

    #[test]
    fn gre_without_key() {
        // `docs/vector.md` §9: gre,src=127.0.0.2,dst=127.0.0.1, raw IPv4
        // read (66).
        let wire =
            with_frame("45 00 00 42 e4 95 40 00 40 2f 57 f4 7f 00 00 02 7f 00 00 01 00 00 65 58");
        assert_eq!(wire.len(), 66);
        let ip = decode_ipv4(&wire).unwrap();
        assert_eq!(ip.protocol, IPPROTO_GRE);
        assert_eq!(internet_checksum(&wire[..20]), 0);
        let p = decode_gre(ip.payload).unwrap();
        assert_eq!(p.flags, 0);
        assert_eq!(p.header, GreHeader::ethernet(None, None));
        assert_eq!(p.first_word(), 0x0000_6558);
        assert_eq!(&ip.payload[p.payload_offset..], &F[..]);
        let mut buf = [0u8; GRE_MAX_HEADER];
        assert_eq!(
            encode_gre(&GreHeader::ethernet(None, None), &mut buf),
            Some(4)
        );
        assert_eq!(buf[..4], hex("00 00 65 58")[..]);
    }

    #[test]
    fn gre_with_key_and_sequence() {
        // `docs/vector.md` §9 and `docs/kernel7.md` §1.2:
        // tx_key=0x11223344,rx_key=0x55667788,sequence=1; raw IPv4 read
        // (74): ... 30 00 65 58 11 22 33 44
        // 00 00 00 01 + F (7.2's capture had sequence 2).
        for seq in [1u32, 2] {
            let mut wire = hex("45 00 00 4a 00 00 40 00 40 2f 00 00 7f 00 00 02 7f 00 00 01");
            wire.extend_from_slice(&hex("30 00 65 58 11 22 33 44"));
            wire.extend_from_slice(&seq.to_be_bytes());
            wire.extend_from_slice(&F);
            assert_eq!(wire.len(), 74);
            let ip = decode_ipv4(&wire).unwrap();
            let p = decode_gre(ip.payload).unwrap();
            assert_eq!(p.flags, 0x3000);
            assert_eq!(p.first_word(), 0x3000_6558);
            assert_eq!(p.header, GreHeader::ethernet(Some(0x1122_3344), Some(seq)));
            assert_eq!(p.payload_offset, 12);
            assert_eq!(&ip.payload[12..], &F[..]);
        }
        // The switch replies with the guest's rx_key.
        let h = GreHeader::ethernet(Some(0x5566_7788), Some(7));
        assert_eq!(h.first_word(), 0x3000_6558);
        let mut buf = [0u8; GRE_MAX_HEADER];
        let n = encode_gre(&h, &mut buf).unwrap();
        assert_eq!(buf[..n], hex("30 00 65 58 55 66 77 88 00 00 00 07")[..]);
        // Key only.
        let k = GreHeader::ethernet(Some(1), None);
        assert_eq!(k.first_word(), 0x2000_6558);
        let n = encode_gre(&k, &mut buf).unwrap();
        assert_eq!(buf[..n], hex("20 00 65 58 00 00 00 01")[..]);
    }

    #[test]
    fn gre_checksum_round_trip() {
        let h = GreHeader {
            checksum: Some(0),
            ..GreHeader::ethernet(Some(9), Some(3))
        };
        assert_eq!(h.len(), 16);
        let mut pkt = vec![0u8; 16];
        encode_gre(&h, &mut pkt).unwrap();
        pkt.extend_from_slice(&F);
        pkt.push(0x5a); // odd length
        assert!(fill_gre_checksum(&mut pkt));
        assert!(gre_checksum_ok(&pkt));
        let p = decode_gre(&pkt).unwrap();
        assert_eq!(p.flags, 0xb000);
        assert_eq!(p.header.key, Some(9));
        assert_eq!(p.header.sequence, Some(3));
        assert_eq!(p.payload_offset, 16);
        assert_ne!(p.header.checksum, Some(0));
        pkt[20] ^= 1;
        assert!(!gre_checksum_ok(&pkt));
        // Without a checksum field there is nothing to fill.
        let mut plain = with_frame("00 00 65 58");
        assert!(!fill_gre_checksum(&mut plain));
        assert!(gre_checksum_ok(&plain));
        // RFC 1071's example sum.
        assert_eq!(
            internet_checksum(&hex("00 01 f2 03 f4 f5 f6 f7")),
            !0xddf2u16
        );
    }

    #[test]
    fn gre_refusals() {
        assert_eq!(
            decode_gre(&hex("00 01 88 0b")),
            Err(TunnelError::GreVersion(1))
        );
        assert_eq!(
            decode_gre(&hex("40 00 65 58 00 00 00 00")),
            Err(TunnelError::GreRouting)
        );
        assert_eq!(
            decode_gre(&hex("30 00 65 58 00 00 00 01")),
            Err(TunnelError::TooShort { len: 8, need: 12 })
        );
        assert_eq!(
            decode_gre(&hex("00 00 65")),
            Err(TunnelError::TooShort { len: 3, need: 4 })
        );
        // Other protocols decode (the caller checks the word).
        let p = decode_gre(&hex("00 00 08 00 45")).unwrap();
        assert_eq!(p.header.protocol, 0x0800);
        assert_eq!(p.payload_offset, 4);
    }

    #[test]
    fn ipv4_headers_with_options_and_bad_lengths() {
        let mut opt =
            hex("46 00 00 19 00 00 00 00 40 2f 00 00 0a 00 00 01 0a 00 00 02 01 01 01 00");
        opt.push(0xaa);
        opt.extend_from_slice(&[0xbb, 0xcc]); // beyond the total length
        let ip = decode_ipv4(&opt).unwrap();
        assert_eq!(ip.header_len, 24);
        assert_eq!(ip.payload, &[0xaa]);
        assert_eq!(ip.src, Ipv4Addr::new(10, 0, 0, 1));
        assert_eq!(ip.dst, Ipv4Addr::new(10, 0, 0, 2));
        assert_eq!(
            decode_ipv4(&[]),
            Err(TunnelError::TooShort { len: 0, need: 20 })
        );
        assert_eq!(decode_ipv4(&hex("60 00")), Err(TunnelError::NotIpv4(0x60)));
        assert_eq!(decode_ipv4(&hex("44 00")), Err(TunnelError::NotIpv4(0x44)));
        assert_eq!(
            decode_ipv4(&opt[..23]),
            Err(TunnelError::TooShort { len: 23, need: 24 })
        );
        let mut bad = opt.clone();
        bad[2..4].copy_from_slice(&10u16.to_be_bytes());
        assert_eq!(
            decode_ipv4(&bad),
            Err(TunnelError::BadIpv4Length {
                total: 10,
                header: 24
            })
        );
        // A packet cut short by the buffer: payload up to its end.
        let mut long = opt.clone();
        long[2..4].copy_from_slice(&1000u16.to_be_bytes());
        assert_eq!(decode_ipv4(&long).unwrap().payload.len(), 3);
    }

    #[test]
    fn decoders_never_panic_on_arbitrary_bytes() {
        let layouts: Vec<L2tpv3Layout> = [false, true]
            .into_iter()
            .flat_map(|udp| {
                [CookieLen::None, CookieLen::Four, CookieLen::Eight]
                    .into_iter()
                    .flat_map(move |cookie| {
                        [false, true].into_iter().map(move |counter| L2tpv3Layout {
                            udp,
                            cookie,
                            counter,
                        })
                    })
            })
            .collect();
        let mut rng = crate::testrng::SplitMix64::new(0x9e37_79b9);
        let mut next = || rng.next_u64() as u32;
        for round in 0..crate::testrng::rounds(4000) {
            let len = round % 90;
            let mut buf: Vec<u8> = (0..len).map(|_| next() as u8).collect();
            // Steer some inputs at the interesting first bytes.
            if len > 0 && round % 3 == 0 {
                buf[0] = 0x40 | (next() as u8 & 0x0f);
            }
            if len > 1 && round % 5 == 0 {
                buf[0] &= 0xb0;
                buf[1] &= 0xf8;
            }
            let _ = decode_ipv4(&buf);
            if let Ok(p) = decode_gre(&buf) {
                assert!(p.payload_offset <= buf.len());
                let _ = gre_checksum_ok(&buf);
                let mut copy = buf.clone();
                let _ = fill_gre_checksum(&mut copy);
            }
            for l in &layouts {
                if let Ok(h) = decode_l2tpv3(l, &buf) {
                    assert_eq!(h.payload_offset, l.header_len());
                    assert!(h.payload_offset <= buf.len());
                }
                let mut out = buf.clone();
                let f = L2tpv3Fields {
                    session: next(),
                    cookie: u64::from(next()) << 32 | u64::from(next()),
                    counter: next(),
                };
                if let Some(n) = encode_l2tpv3(l, &f, &mut out) {
                    let back = decode_l2tpv3(l, &out[..n]).unwrap();
                    assert_eq!(back.session, f.session);
                    assert_eq!(back.counter, l.counter.then_some(f.counter));
                }
            }
            let h = GreHeader {
                protocol: next() as u16,
                checksum: (next() % 2 == 0).then_some(0),
                key: (next() % 2 == 0).then(&mut next),
                sequence: (next() % 2 == 0).then(&mut next),
            };
            let mut out = buf.clone();
            if let Some(n) = encode_gre(&h, &mut out) {
                assert_eq!(decode_gre(&out[..n]).unwrap().header, h);
            } else {
                assert!(buf.len() < h.len());
            }
        }
    }
}
