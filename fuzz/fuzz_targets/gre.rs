//! GRE packets as a gre port of `uml_switch` receives them (behind the
//! IPv4 header of its raw socket, or bare), checked by the port's codec,
//! and the checksum helpers over them.
#![no_main]
use libfuzzer_sys::fuzz_target;
use uml_common::tunnel::{
    decode_gre, decode_ipv4, encode_gre, fill_gre_checksum, gre_checksum_ok, internet_checksum,
};
use uml_common::tunnel_opts::GreParams;
use uml_switch::port::gre::GreCodec;
use uml_switch::port::tunnel::Codec;

fuzz_target!(|data: &[u8]| {
    let Some((&cfg, packet)) = data.split_first() else {
        return;
    };
    let packet = if cfg & 1 != 0 {
        match decode_ipv4(packet) {
            Ok(ip) => ip.payload,
            Err(_) => return,
        }
    } else {
        packet
    };
    if let Ok(p) = decode_gre(packet) {
        assert!(p.payload_offset <= packet.len());
        let mut out = [0u8; 32];
        if let Some(n) = encode_gre(&p.header, &mut out) {
            assert_eq!(n, p.payload_offset);
        }
        let _ = gre_checksum_ok(packet);
        let mut copy = packet.to_vec();
        if fill_gre_checksum(&mut copy) {
            assert!(gre_checksum_ok(&copy));
        }
    }
    let _ = internet_checksum(packet);
    let keys = (cfg & 2 != 0).then_some((0x1234_5678, 0x8765_4321));
    let codec = GreCodec::new(GreParams {
        keys,
        sequence: cfg & 4 != 0,
        pin_sequence: cfg & 8 != 0,
    });
    match codec.check(packet) {
        Ok(at) => {
            let _frame = &packet[at..];
        }
        Err(r) => {
            let _ = codec.explain(r);
        }
    }
});
