//! The NAT port's options (`--nat=OPTIONS`, `docs/nat.md`) and the host
//! port forwards a management client adds (`hostfwd add RULE`): any text
//! is parsed without a panic, and what is accepted is a usable network —
//! a prefix of 8 to 30 bits, no host bits in the network address, the
//! gateway, DNS and DHCP addresses inside it, forwards with real ports.
#![no_main]
use libfuzzer_sys::fuzz_target;
use std::net::Ipv4Addr;
use uml_common::nat;

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(&data[..data.len().min(4096)]);
    if let Ok(cfg) = nat::parse(&text) {
        assert!((8..=30).contains(&cfg.prefix), "{cfg:?}");
        let mask = u32::MAX << (32 - u32::from(cfg.prefix));
        let net = u32::from(cfg.net);
        assert_eq!(net & !mask, 0, "{cfg:?}");
        for a in [cfg.host, cfg.dns, cfg.dhcp_start] {
            assert_eq!(u32::from(a) & mask, net, "{a} outside: {cfg:?}");
        }
        for f in &cfg.hostfwd {
            let _ = format!("{f:?}");
        }
    }
    let _ = nat::parse_host_side(&text);
    let _ = nat::parse_hostfwd(&text, Ipv4Addr::new(10, 0, 2, 15));
});
