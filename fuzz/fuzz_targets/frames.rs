//! Ethernet frames as they arrive on the switch's bess and vde ports (a
//! `SOCK_SEQPACKET` record or a datagram is one frame, no header of its
//! own) and on daemon ports: MAC extraction and the forwarding core
//! (learning, table limits, verdicts), the 802.1Q classification and
//! rewriting, and VXLAN decapsulation.
//!
//! Input: records of a port byte, a 2-byte length and the frame.
#![no_main]
use libfuzzer_sys::fuzz_target;
use uml_common::switch::frame_macs;
use uml_common::vlan::{rewrite, PortVlans, Vid, VidSet};
use uml_common::vxlan;
use uml_switch::core::{Forwarder, Verdict};

fuzz_target!(|data: &[u8]| {
    let mut fwd = Forwarder::new(data.first().is_some_and(|b| b & 1 != 0), 16);
    let mut trunk = VidSet::default();
    for v in [1u16, 10, 4094] {
        if let Some(v) = Vid::new(v) {
            trunk.insert(v);
        }
    }
    let ports = [
        Some(PortVlans::default()),
        PortVlans::new(Vid::new(10), VidSet::default()).ok(),
        PortVlans::new(None, trunk).ok(),
    ];
    let mut rest = data.get(1..).unwrap_or(&[]);
    let mut now = 0u32;
    let mut buf = Vec::new();
    while rest.len() >= 3 {
        let port = u32::from(rest[0] & 7);
        let n = usize::from(u16::from_le_bytes([rest[1], rest[2]])).min(rest.len() - 3);
        let frame = &rest[3..3 + n];
        rest = &rest[3 + n..];
        now = now.wrapping_add(u32::from(rest.first().copied().unwrap_or(0) & 0x3f));
        let _ = frame_macs(frame);
        let verdict = fwd.forward(port, 0, frame, now, |_| {});
        if let Verdict::To(p) = verdict {
            assert_ne!(p, port);
        }
        if frame.len() < 12 {
            assert_eq!(verdict, Verdict::Drop);
        }
        if now.is_multiple_of(7) {
            fwd.table.expire(now);
        }
        if now.is_multiple_of(11) {
            fwd.table.purge_port(port);
        }
        assert!(fwd.table.len() <= 16);
        for p in ports.iter().flatten() {
            let class = p.classify(frame);
            for q in ports.iter().flatten() {
                let out = rewrite(frame, class, q.egress(class.vlan), &mut buf);
                assert!(out.len() <= frame.len() + 4);
            }
        }
        if let Ok(inner) = vxlan::decode(frame, 42) {
            let _ = frame_macs(inner);
        }
    }
    let _ = fwd.table.entries(now);
});
