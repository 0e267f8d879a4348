//! Notification datagrams as `uml_mconsole --notify` reads them.
#![no_main]
use libfuzzer_sys::fuzz_target;
use uml_common::mconsole::{decode_notify, encode_notify, MAX_DATA};

fuzz_target!(|data: &[u8]| {
    if let Ok(n) = decode_notify(data) {
        assert!(n.data.len() <= MAX_DATA);
        let _ = n.kind.name();
        let _ = n.text();
        // Re-encoding a kernel-layout notification gives it back.
        let again = encode_notify(n.kind, n.data);
        assert_eq!(decode_notify(&again), Ok(n));
    }
});
