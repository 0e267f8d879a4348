//! A tunnel port's option string (`--l2tpv3 OPTIONS`, `--gre OPTIONS`),
//! read as the guest's kernel reads `vecN:transport=...,OPTIONS`.
#![no_main]
use libfuzzer_sys::fuzz_target;
use uml_common::tunnel_opts::{kstrtoint, kstrtoul, parse_tunnel_with_mtu, TunnelKind};

fuzz_target!(|data: &[u8]| {
    let Some((&cfg, rest)) = data.split_first() else {
        return;
    };
    let Ok(spec) = std::str::from_utf8(rest) else {
        return;
    };
    let kind = if cfg & 1 == 0 {
        TunnelKind::L2tpv3
    } else {
        TunnelKind::Gre
    };
    let mtu = if cfg & 2 == 0 { 1500 } else { 9000 };
    let _ = kstrtoul(spec);
    let _ = kstrtoint(spec);
    match parse_tunnel_with_mtu(kind, spec, mtu) {
        Ok(cfg) => {
            let arg = cfg.guest_argument(4242);
            // The argument the switch prints for the guest reads back as
            // the same tunnel.
            let again = parse_tunnel_with_mtu(kind, &arg, mtu);
            assert!(again.is_ok(), "{arg:?}: {again:?}");
            let _ = cfg.conflict(&cfg);
        }
        Err(e) => {
            let _ = e.to_string();
        }
    }
});
