//! A control request of the daemon protocol (v0, v1, v3, with or without
//! the vde description tail), as `uml_common::switch::parse_request` reads
//! the bytes received so far on a new control connection.
#![no_main]
use libfuzzer_sys::fuzz_target;
use uml_common::switch::{parse_request, v3_requested_port, Parsed};

fuzz_target!(|data: &[u8]| {
    let parsed = parse_request(data);
    if let Parsed::Port { consumed, addr, .. } = &parsed {
        assert!(*consumed <= data.len());
        let _ = addr.key();
        let _ = addr.sun_path();
        let _ = addr.socket_addr();
        let _ = format!("{addr:?}");
    }
    let _ = v3_requested_port(data);
    // Once the bytes received decide the request, more bytes never turn
    // it back into "need more".
    let mut decided = false;
    for n in 0..=data.len().min(300) {
        let now = parse_request(&data[..n]) != Parsed::NeedMore;
        assert!(now || !decided, "undecided again at {n} bytes");
        decided = now;
    }
});
