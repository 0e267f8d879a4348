//! What a raw port of `uml_switch` reads from an `AF_PACKET` socket with
//! `PACKET_VNET_HDR`: a virtio-net header, then a frame that may stand for
//! many TCP segments (TSO) or need its checksum completed, cut and
//! completed as `port/raw.rs` does.
#![no_main]
use libfuzzer_sys::fuzz_target;
use uml_switch::port::offload::{complete_checksum, Tso, VnetHdr, F_NEEDS_CSUM, VNET_HDR_LEN};

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
                total += n - t.hdrs;
            }
            assert_eq!(total, frame.len() - t.hdrs);
        }
    }
});
