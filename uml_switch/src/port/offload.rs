//! Offloads a host interface leaves to its reader: the virtio-net header
//! an `AF_PACKET` socket with `PACKET_VNET_HDR` puts in front of each
//! frame, checksums left to the "hardware" (`NEEDS_CSUM`) and TCP
//! segmentation offload (TSO: one frame of up to 64 KiB standing for many
//! segments). Guests on the vector driver's `raw`, `tap` and `hybrid`
//! transports turn these offloads on, so the frames that reach the
//! switch's raw ports from them must be completed before they go to ports
//! that expect ordinary frames. Pure functions, no I/O.
//!
//! The header (legacy virtio-net, host byte order for `AF_PACKET`):
//! `flags u8, gso_type u8, hdr_len u16, gso_size u16, csum_start u16,
//! csum_offset u16`.

/// Length of the header.
pub const VNET_HDR_LEN: usize = 10;
/// `VIRTIO_NET_HDR_F_NEEDS_CSUM`: the checksum at `csum_start +
/// csum_offset` holds only the pseudo-header's sum.
pub const F_NEEDS_CSUM: u8 = 1;
/// `VIRTIO_NET_HDR_GSO_NONE`.
pub const GSO_NONE: u8 = 0;
/// `VIRTIO_NET_HDR_GSO_TCPV4`.
pub const GSO_TCPV4: u8 = 1;
/// `VIRTIO_NET_HDR_GSO_TCPV6`.
pub const GSO_TCPV6: u8 = 4;
/// `VIRTIO_NET_HDR_GSO_ECN`: a flag in `gso_type`.
pub const GSO_ECN: u8 = 0x80;
/// Most segments one frame may stand for (a 64 KiB frame of 536-byte
/// segments is 123).
pub const MAX_SEGMENTS: usize = 256;

const ETH_P_IP: u16 = 0x0800;
const ETH_P_IPV6: u16 = 0x86dd;
const ETH_P_8021Q: u16 = 0x8100;
const ETH_P_8021AD: u16 = 0x88a8;
const IPPROTO_TCP: u8 = 6;
const TCP_FIN: u8 = 0x01;
const TCP_PSH: u8 = 0x08;
const TCP_CWR: u8 = 0x80;

/// A parsed virtio-net header.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct VnetHdr {
    /// `F_NEEDS_CSUM`, `DATA_VALID`.
    pub flags: u8,
    /// `GSO_*`, possibly with `GSO_ECN`.
    pub gso_type: u8,
    /// Length of the headers (a hint; not trusted).
    pub hdr_len: u16,
    /// Segment payload size (MSS).
    pub gso_size: u16,
    /// Where checksumming starts (the L4 header).
    pub csum_start: u16,
    /// Where, after `csum_start`, the checksum field is.
    pub csum_offset: u16,
}

impl VnetHdr {
    /// The header at the start of `b`.
    pub fn parse(b: &[u8]) -> Option<VnetHdr> {
        let b: &[u8; VNET_HDR_LEN] = b.get(..VNET_HDR_LEN)?.try_into().ok()?;
        let u16_at = |i: usize| u16::from_ne_bytes([b[i], b[i + 1]]);
        Some(VnetHdr {
            flags: b[0],
            gso_type: b[1],
            hdr_len: u16_at(2),
            gso_size: u16_at(4),
            csum_start: u16_at(6),
            csum_offset: u16_at(8),
        })
    }

    /// The header's bytes.
    pub fn to_bytes(self) -> [u8; VNET_HDR_LEN] {
        let mut b = [0u8; VNET_HDR_LEN];
        b[0] = self.flags;
        b[1] = self.gso_type;
        b[2..4].copy_from_slice(&self.hdr_len.to_ne_bytes());
        b[4..6].copy_from_slice(&self.gso_size.to_ne_bytes());
        b[6..8].copy_from_slice(&self.csum_start.to_ne_bytes());
        b[8..10].copy_from_slice(&self.csum_offset.to_ne_bytes());
        b
    }

    /// Whether the frame stands for several segments.
    pub fn is_gso(&self) -> bool {
        self.gso_type & !GSO_ECN != GSO_NONE
    }
}

/// Why a frame cannot be completed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OffloadError {
    /// A GSO type other than TCP over IPv4 or IPv6 (UDP fragmentation or
    /// segmentation, which the guests' drivers do not offer).
    UnsupportedGso(u8),
    /// Headers too short or inconsistent with the virtio-net header.
    Malformed,
}

/// One's complement sum of `data` (as 16-bit big-endian words, an odd
/// last byte padded with zero) added to `acc`, not folded.
pub fn sum(data: &[u8], mut acc: u64) -> u64 {
    let mut words = data.chunks_exact(4);
    for w in &mut words {
        acc += u64::from(u32::from_be_bytes([w[0], w[1], w[2], w[3]]));
    }
    let rest = words.remainder();
    let mut pairs = rest.chunks_exact(2);
    for p in &mut pairs {
        acc += u64::from(u16::from_be_bytes([p[0], p[1]]));
    }
    if let [b] = pairs.remainder() {
        acc += u64::from(*b) << 8;
    }
    acc
}

/// `acc` folded to 16 bits (not inverted).
pub fn fold(mut acc: u64) -> u16 {
    while acc >> 16 != 0 {
        acc = (acc & 0xffff) + (acc >> 16);
    }
    acc as u16
}

/// Completes a checksum left to the hardware: the one's complement of the
/// sum from `start` to the end of `frame` (the field at `start + offset`
/// holds the pseudo-header's sum) is written at `start + offset` (0 is
/// sent as 0xffff, as the kernel does).
pub fn complete_checksum(
    frame: &mut [u8],
    start: usize,
    offset: usize,
) -> Result<(), OffloadError> {
    let at = start.checked_add(offset).ok_or(OffloadError::Malformed)?;
    if at + 2 > frame.len() {
        return Err(OffloadError::Malformed);
    }
    let c = !fold(sum(&frame[start..], 0));
    let c = if c == 0 { 0xffff } else { c };
    frame[at..at + 2].copy_from_slice(&c.to_be_bytes());
    Ok(())
}

/// Where the headers of a TSO frame are and how it is cut.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Tso {
    /// Offset of the IP header.
    pub l3: usize,
    /// Offset of the TCP header.
    pub l4: usize,
    /// Length of all headers (Ethernet, IP, TCP).
    pub hdrs: usize,
    /// Payload bytes per segment.
    pub mss: usize,
    /// IPv6 (else IPv4).
    pub v6: bool,
    /// Number of segments.
    pub count: usize,
    /// Length of the frame.
    pub len: usize,
}

fn be16(b: &[u8], i: usize) -> Option<u16> {
    Some(u16::from_be_bytes([*b.get(i)?, *b.get(i + 1)?]))
}

/// Offset of the network header after the Ethernet header and any VLAN
/// tags, and its EtherType.
fn network_header(frame: &[u8]) -> Option<(usize, u16)> {
    let mut at = 12;
    let mut ty = be16(frame, at)?;
    while ty == ETH_P_8021Q || ty == ETH_P_8021AD {
        at += 4;
        ty = be16(frame, at)?;
    }
    Some((at + 2, ty))
}

impl Tso {
    /// How `frame` (without the virtio-net header) is cut as `h` says;
    /// `Ok(None)` for a frame that is not GSO.
    pub fn plan(frame: &[u8], h: &VnetHdr) -> Result<Option<Tso>, OffloadError> {
        let ty = h.gso_type & !GSO_ECN;
        let v6 = match ty {
            GSO_NONE => return Ok(None),
            GSO_TCPV4 => false,
            GSO_TCPV6 => true,
            other => return Err(OffloadError::UnsupportedGso(other)),
        };
        let bad = OffloadError::Malformed;
        let (l3, ethertype) = network_header(frame).ok_or(bad)?;
        let l4 = if v6 {
            if ethertype != ETH_P_IPV6 || frame.get(l3).ok_or(bad)? >> 4 != 6 {
                return Err(bad);
            }
            // Extension headers: the TCP header is where the checksum
            // starts.
            if h.flags & F_NEEDS_CSUM != 0 && usize::from(h.csum_start) >= l3 + 40 {
                usize::from(h.csum_start)
            } else if *frame.get(l3 + 6).ok_or(bad)? == IPPROTO_TCP {
                l3 + 40
            } else {
                return Err(bad);
            }
        } else {
            let vihl = *frame.get(l3).ok_or(bad)?;
            if ethertype != ETH_P_IP || vihl >> 4 != 4 || vihl & 0xf < 5 {
                return Err(bad);
            }
            if *frame.get(l3 + 9).ok_or(bad)? != IPPROTO_TCP {
                return Err(bad);
            }
            l3 + usize::from(vihl & 0xf) * 4
        };
        let thl = usize::from(frame.get(l4 + 12).ok_or(bad)? >> 4) * 4;
        let hdrs = l4 + thl;
        let mss = usize::from(h.gso_size);
        if thl < 20 || hdrs > frame.len() || mss == 0 {
            return Err(bad);
        }
        let payload = frame.len() - hdrs;
        let count = payload.div_ceil(mss).max(1);
        if count > MAX_SEGMENTS {
            return Err(bad);
        }
        Ok(Some(Tso {
            l3,
            l4,
            hdrs,
            mss,
            v6,
            count,
            len: frame.len(),
        }))
    }

    /// Length of segment `k`.
    pub fn segment_len(&self, k: usize) -> usize {
        let start = self.hdrs + k * self.mss;
        self.hdrs + self.mss.min(self.len.saturating_sub(start))
    }

    /// The longest segment.
    pub fn max_segment_len(&self) -> usize {
        self.segment_len(0)
    }

    /// Writes segment `k` (< `count`) of `frame` into `out` (at least
    /// [`Tso::segment_len`] bytes) with its IP lengths, IPv4 id and
    /// header checksum, TCP sequence number, flags and checksum; returns
    /// its length.
    pub fn write_segment(&self, frame: &[u8], k: usize, out: &mut [u8]) -> usize {
        let start = self.hdrs + k * self.mss;
        let data = self.mss.min(self.len.saturating_sub(start));
        let total = self.hdrs + data;
        let out = &mut out[..total];
        out[..self.hdrs].copy_from_slice(&frame[..self.hdrs]);
        out[self.hdrs..].copy_from_slice(&frame[start..start + data]);
        let (l3, l4) = (self.l3, self.l4);
        let tcp_len = total - l4;
        let mut acc;
        if self.v6 {
            let plen = (total - l3 - 40) as u16;
            out[l3 + 4..l3 + 6].copy_from_slice(&plen.to_be_bytes());
            acc = sum(&out[l3 + 8..l3 + 40], 0);
        } else {
            let ihl = l4 - l3;
            out[l3 + 2..l3 + 4].copy_from_slice(&((total - l3) as u16).to_be_bytes());
            let id = u16::from_be_bytes([frame[l3 + 4], frame[l3 + 5]]).wrapping_add(k as u16);
            out[l3 + 4..l3 + 6].copy_from_slice(&id.to_be_bytes());
            out[l3 + 10..l3 + 12].copy_from_slice(&[0, 0]);
            let c = !fold(sum(&out[l3..l3 + ihl], 0));
            out[l3 + 10..l3 + 12].copy_from_slice(&c.to_be_bytes());
            acc = sum(&out[l3 + 12..l3 + 20], 0);
        }
        acc += u64::from(IPPROTO_TCP) + tcp_len as u64;
        let seq = u32::from_be_bytes([frame[l4 + 4], frame[l4 + 5], frame[l4 + 6], frame[l4 + 7]])
            .wrapping_add((k * self.mss) as u32);
        out[l4 + 4..l4 + 8].copy_from_slice(&seq.to_be_bytes());
        let mut flags = frame[l4 + 13];
        if k + 1 < self.count {
            flags &= !(TCP_FIN | TCP_PSH);
        }
        if k > 0 {
            flags &= !TCP_CWR;
        }
        out[l4 + 13] = flags;
        out[l4 + 16..l4 + 18].copy_from_slice(&[0, 0]);
        let c = !fold(sum(&out[l4..], acc));
        out[l4 + 16..l4 + 18].copy_from_slice(&c.to_be_bytes());
        total
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A TCP frame over IPv4 (or IPv6) with `payload` and the pseudo-
    /// header's sum in its checksum field, as a guest hands it over with
    /// `NEEDS_CSUM`.
    fn tcp_frame(v6: bool, payload: &[u8], flags: u8) -> Vec<u8> {
        let mut f = vec![2, 0, 0, 0, 0, 1, 2, 0, 0, 0, 0, 2];
        let tcp_len = 20 + payload.len();
        let pseudo;
        if v6 {
            f.extend_from_slice(&ETH_P_IPV6.to_be_bytes());
            f.extend_from_slice(&[0x60, 0, 0, 0]);
            f.extend_from_slice(&(tcp_len as u16).to_be_bytes());
            f.extend_from_slice(&[IPPROTO_TCP, 64]);
            let mut src = [0u8; 16];
            src[0] = 0xfd;
            src[15] = 1;
            let mut dst = src;
            dst[15] = 2;
            f.extend_from_slice(&src);
            f.extend_from_slice(&dst);
            pseudo = sum(&f[14 + 8..14 + 40], 0);
        } else {
            f.extend_from_slice(&ETH_P_IP.to_be_bytes());
            f.extend_from_slice(&[0x45, 0]);
            f.extend_from_slice(&((20 + tcp_len) as u16).to_be_bytes());
            f.extend_from_slice(&[0x12, 0x34, 0x40, 0, 64, IPPROTO_TCP, 0, 0]);
            f.extend_from_slice(&[10, 0, 0, 1, 10, 0, 0, 2]);
            let c = !fold(sum(&f[14..34], 0));
            f[24..26].copy_from_slice(&c.to_be_bytes());
            pseudo = sum(&f[26..34], 0);
        }
        let l4 = f.len();
        f.extend_from_slice(&[0x30, 0x39, 0x00, 0x50]); // ports 12345 -> 80
        f.extend_from_slice(&0xffff_fff0u32.to_be_bytes()); // seq, wraps
        f.extend_from_slice(&7u32.to_be_bytes()); // ack
        f.extend_from_slice(&[0x50, flags, 0x10, 0x00, 0, 0, 0, 0]);
        f.extend_from_slice(payload);
        let p = fold(pseudo + u64::from(IPPROTO_TCP) + tcp_len as u64);
        f[l4 + 16..l4 + 18].copy_from_slice(&p.to_be_bytes());
        f
    }

    /// Whether the TCP (and IPv4 header) checksums of `seg` verify.
    fn checksums_ok(seg: &[u8], v6: bool) -> bool {
        let l3 = 14;
        let (pseudo, l4) = if v6 {
            (sum(&seg[l3 + 8..l3 + 40], 0), l3 + 40)
        } else {
            if fold(sum(&seg[l3..l3 + 20], 0)) != 0xffff {
                return false;
            }
            (sum(&seg[l3 + 12..l3 + 20], 0), l3 + 20)
        };
        let len = (seg.len() - l4) as u64;
        fold(sum(&seg[l4..], pseudo + u64::from(IPPROTO_TCP) + len)) == 0xffff
    }

    #[test]
    fn header_round_trip() {
        let h = VnetHdr {
            flags: F_NEEDS_CSUM,
            gso_type: GSO_TCPV4 | GSO_ECN,
            hdr_len: 66,
            gso_size: 1448,
            csum_start: 34,
            csum_offset: 16,
        };
        assert_eq!(VnetHdr::parse(&h.to_bytes()), Some(h));
        assert!(h.is_gso());
        assert!(!VnetHdr::default().is_gso());
        assert_eq!(VnetHdr::parse(&[0; 9]), None);
    }

    #[test]
    fn sums_match_rfc1071() {
        // RFC 1071's example: 00 01 f2 03 f4 f5 f6 f7 sums to ddf2.
        let d = [0x00, 0x01, 0xf2, 0x03, 0xf4, 0xf5, 0xf6, 0xf7];
        assert_eq!(fold(sum(&d, 0)), 0xddf2);
        assert_eq!(fold(sum(&[0xab], 0)), 0xab00);
        assert_eq!(fold(sum(&[1, 2, 3, 4, 5, 6], 0)), 0x090c);
    }

    #[test]
    fn partial_checksums_are_completed() {
        for v6 in [false, true] {
            let mut f = tcp_frame(v6, b"hello, odd length", 0x18);
            assert!(!checksums_ok(&f, v6));
            let l4 = if v6 { 54 } else { 34 };
            complete_checksum(&mut f, l4, 16).unwrap();
            assert!(checksums_ok(&f, v6), "v6={v6}");
        }
        let mut short = [0u8; 20];
        assert_eq!(
            complete_checksum(&mut short, 14, 6),
            Err(OffloadError::Malformed)
        );
        assert_eq!(
            complete_checksum(&mut short, usize::MAX, 6),
            Err(OffloadError::Malformed)
        );
        // A sum of zero is sent as 0xffff.
        let mut z = [0u8, 0, 0, 0];
        complete_checksum(&mut z, 0, 2).unwrap();
        assert_eq!(z, [0, 0, 0xff, 0xff]);
    }

    #[test]
    fn tso_frames_are_cut_into_valid_segments() {
        for v6 in [false, true] {
            let payload: Vec<u8> = (0..3000u32).map(|i| (i * 7) as u8).collect();
            // PSH|FIN|CWR|ACK on the big frame.
            let f = tcp_frame(v6, &payload, 0x80 | 0x10 | 0x08 | 0x01);
            let h = VnetHdr {
                flags: F_NEEDS_CSUM,
                gso_type: if v6 { GSO_TCPV6 } else { GSO_TCPV4 },
                hdr_len: 0,
                gso_size: 1400,
                csum_start: if v6 { 54 } else { 34 },
                csum_offset: 16,
            };
            let t = Tso::plan(&f, &h).unwrap().unwrap();
            assert_eq!(t.count, 3);
            assert_eq!(t.hdrs, if v6 { 74 } else { 54 });
            assert_eq!(t.max_segment_len(), t.hdrs + 1400);
            let mut data = Vec::new();
            let mut out = vec![0u8; 2000];
            for k in 0..t.count {
                let n = t.write_segment(&f, k, &mut out);
                assert_eq!(n, t.segment_len(k));
                let seg = &out[..n];
                assert!(checksums_ok(seg, v6), "v6={v6} segment {k}");
                let l4 = t.l4;
                let seq = u32::from_be_bytes(seg[l4 + 4..l4 + 8].try_into().unwrap());
                assert_eq!(seq, 0xffff_fff0u32.wrapping_add(1400 * k as u32));
                let flags = seg[l4 + 13];
                assert_eq!(flags & 0x10, 0x10, "ACK kept");
                assert_eq!(flags & 0x80 != 0, k == 0, "CWR on the first only");
                assert_eq!(flags & 0x09 != 0, k == 2, "FIN/PSH on the last only");
                if v6 {
                    let plen = u16::from_be_bytes([seg[18], seg[19]]);
                    assert_eq!(usize::from(plen), n - 54);
                } else {
                    let tot = u16::from_be_bytes([seg[16], seg[17]]);
                    assert_eq!(usize::from(tot), n - 14);
                    let id = u16::from_be_bytes([seg[18], seg[19]]);
                    assert_eq!(id, 0x1234 + k as u16);
                }
                data.extend_from_slice(&seg[t.hdrs..]);
            }
            assert_eq!(data, payload);
            assert_eq!(t.segment_len(2), t.hdrs + 200);
        }
    }

    #[test]
    fn frames_that_are_not_tso_or_make_no_sense() {
        let f = tcp_frame(false, &[1; 100], 0x10);
        let mut h = VnetHdr::default();
        assert_eq!(Tso::plan(&f, &h), Ok(None));
        h.gso_type = 3; // UDP fragmentation
        assert_eq!(Tso::plan(&f, &h), Err(OffloadError::UnsupportedGso(3)));
        h.gso_type = GSO_TCPV6; // but it is IPv4
        assert_eq!(Tso::plan(&f, &h), Err(OffloadError::Malformed));
        h.gso_type = GSO_TCPV4;
        assert_eq!(Tso::plan(&f, &h), Err(OffloadError::Malformed), "mss 0");
        h.gso_size = 1;
        assert_eq!(Tso::plan(&f, &h).map(|t| t.map(|t| t.count)), Ok(Some(100)));
        assert_eq!(Tso::plan(&f[..40], &h), Err(OffloadError::Malformed));
        let big = tcp_frame(false, &[1; 300], 0x10);
        assert_eq!(
            Tso::plan(&big, &h),
            Err(OffloadError::Malformed),
            "too many"
        );
        // A VLAN tag in front of the IP header.
        let mut tagged = f[..12].to_vec();
        tagged.extend_from_slice(&[0x81, 0x00, 0x00, 0x05]);
        tagged.extend_from_slice(&f[12..]);
        h.gso_size = 50;
        let t = Tso::plan(&tagged, &h).unwrap().unwrap();
        assert_eq!((t.l3, t.l4, t.count), (18, 38, 2));
    }
}
