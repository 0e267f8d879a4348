//! What a raw port of `uml_switch` reads from an `AF_PACKET` socket with
//! `PACKET_VNET_HDR`: a virtio-net header, then a frame that may stand for
//! many TCP segments (TSO) or need its checksum completed, cut and
//! completed as `port/raw.rs` does.
#![no_main]
use libfuzzer_sys::fuzz_target;
use uml_common::tunnel::internet_checksum;
use uml_switch::port::offload::{complete_checksum, Tso, VnetHdr, F_NEEDS_CSUM, VNET_HDR_LEN};

/// Checks a segment's IPv4 header checksum and its TCP checksum with an
/// independent checksum routine and the pseudo-header of RFC 793 / RFC
/// 8200 §8.1 built here.
fn check_segment(t: &Tso, seg: &[u8]) {
    let (l3, l4) = (t.l3, t.l4);
    let tcp = &seg[l4..];
    let mut pseudo = Vec::with_capacity(40 + tcp.len());
    if t.v6 {
        pseudo.extend_from_slice(&seg[l3 + 8..l3 + 40]);
        pseudo.extend_from_slice(&(tcp.len() as u32).to_be_bytes());
        pseudo.extend_from_slice(&[0, 0, 0, 6]);
        let plen = u16::from_be_bytes([seg[l3 + 4], seg[l3 + 5]]);
        assert_eq!(usize::from(plen), seg.len() - l3 - 40);
    } else {
        assert_eq!(internet_checksum(&seg[l3..l4]), 0, "IPv4 header checksum");
        let total = u16::from_be_bytes([seg[l3 + 2], seg[l3 + 3]]);
        assert_eq!(usize::from(total), seg.len() - l3);
        pseudo.extend_from_slice(&seg[l3 + 12..l3 + 20]);
        pseudo.extend_from_slice(&[0, 6]);
        pseudo.extend_from_slice(&(tcp.len() as u16).to_be_bytes());
    }
    pseudo.extend_from_slice(tcp);
    assert_eq!(internet_checksum(&pseudo), 0, "TCP checksum");
}

fuzz_target!(|data: &[u8]| {
    let Some(h) = VnetHdr::parse(data) else {
        return;
    };
    assert_eq!(VnetHdr::parse(&h.to_bytes()), Some(h));
    let mut frame = data[VNET_HDR_LEN..].to_vec();
    match Tso::plan(&frame, &h) {
        Err(_) => {}
        Ok(None) => {
            if h.flags & F_NEEDS_CSUM != 0 {
                let _ = complete_checksum(
                    &mut frame,
                    usize::from(h.csum_start),
                    usize::from(h.csum_offset),
                );
            }
        }
        Ok(Some(t)) => {
            let mut out = vec![0u8; t.max_segment_len()];
            let mut total = 0;
            for k in 0..t.count {
                let n = t.write_segment(&frame, k, &mut out);
                assert!(n <= out.len());
                assert_eq!(n, t.segment_len(k));
                check_segment(&t, &out[..n]);
                total += n - t.hdrs;
            }
            assert_eq!(total, frame.len() - t.hdrs);
        }
    }
});
