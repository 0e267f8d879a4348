//! L2TPv3 packets as an l2tpv3 port of `uml_switch` receives them: over UDP,
//! or over IP behind the IPv4 header a raw socket returns, checked by the
//! port's codec against a configured session (the layout comes from the
//! first input byte).
#![no_main]
use libfuzzer_sys::fuzz_target;
use uml_common::tunnel::{
    decode_ipv4, decode_l2tpv3, encode_l2tpv3, CookieLen, L2tpv3Fields, L2tpv3Layout,
};
use uml_common::tunnel_opts::L2tpv3Params;
use uml_switch::port::l2tpv3::L2tpv3Codec;
use uml_switch::port::tunnel::Codec;

fuzz_target!(|data: &[u8]| {
    let Some((&cfg, packet)) = data.split_first() else {
        return;
    };
    let layout = L2tpv3Layout {
        udp: cfg & 1 != 0,
        cookie: match (cfg >> 1) & 3 {
            0 => CookieLen::None,
            1 => CookieLen::Four,
            _ => CookieLen::Eight,
        },
        counter: cfg & 8 != 0,
    };
    let packet = if cfg & 16 != 0 {
        match decode_ipv4(packet) {
            Ok(ip) => {
                assert!(ip.header_len >= 20);
                ip.payload
            }
            Err(_) => return,
        }
    } else {
        packet
    };
    if let Ok(h) = decode_l2tpv3(&layout, packet) {
        assert_eq!(h.payload_offset, layout.header_len());
        let mut out = [0u8; 64];
        let fields = L2tpv3Fields {
            session: h.session,
            cookie: h.cookie.unwrap_or(0),
            counter: h.counter.unwrap_or(0),
        };
        let n = encode_l2tpv3(&layout, &fields, &mut out).unwrap_or(0);
        if !layout.udp {
            assert_eq!(&out[..n], &packet[..n]);
        }
    }
    let codec = L2tpv3Codec::new(L2tpv3Params {
        layout,
        expect_session: 0x5678,
        send_session: 0x1234,
        expect_cookie: 0x1122_3344_5566_7788,
        send_cookie: 0x8877_6655_4433_2211,
        pin_counter: false,
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
