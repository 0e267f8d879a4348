//! The argv `uml_net` (setuid root) gets from whoever runs it: parsed and
//! validated whole by `uml_common::umlnet::parse_argv` (arguments split at
//! NUL bytes), and the reply framings built for what it decides.
#![no_main]
use libfuzzer_sys::fuzz_target;
use uml_common::umlnet::{
    decode_ethertap_change, length_prefixed, parse_argv, printable, tuntap_reply, IfName, Parsed,
};
use uml_utilities_fuzz::argv_lossy;

fuzz_target!(|data: &[u8]| {
    let mut argv = vec!["uml_net".to_string()];
    argv.extend(argv_lossy(data));
    match parse_argv(&argv) {
        Parsed::Run { .. } => {}
        Parsed::Stderr(e) | Parsed::Stdout(e) | Parsed::Refuse { error: e, .. } => {
            let text = e.to_string();
            let _ = length_prefixed(&text);
            let _ = tuntap_reply(None, &text);
        }
    }
    for a in &argv {
        let _ = printable(a);
        if let Ok(name) = IfName::parse(a) {
            assert!(name.as_str().len() < 16);
            let _ = name.ifr_name();
        }
    }
    let _ = decode_ethertap_change(data);
});
