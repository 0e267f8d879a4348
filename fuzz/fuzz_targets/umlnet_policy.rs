//! `uml_net`'s policy file (`/etc/uml-utilities/uml_net.policy`): parsed
//! with made-up user and group databases, then asked about addresses.
#![no_main]
use std::net::Ipv4Addr;

use libfuzzer_sys::fuzz_target;
use uml_net::policy::{allows, parse, Caller};

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    let user = |n: &str| (n == "alice").then_some(1000);
    let group = |n: &str| (n == "uml-net").then_some(120);
    match parse(&text, user, group) {
        Ok(rules) => {
            let caller = Caller {
                uid: 1000,
                groups: vec![1000, 120],
            };
            for addr in [
                Ipv4Addr::new(10, 0, 0, 1),
                Ipv4Addr::new(192, 168, 1, 254),
                Ipv4Addr::UNSPECIFIED,
                Ipv4Addr::BROADCAST,
            ] {
                let _ = allows(&rules, &caller, addr);
            }
            assert!(allows(
                &rules,
                &Caller {
                    uid: 0,
                    groups: vec![]
                },
                Ipv4Addr::LOCALHOST
            ));
        }
        Err(e) => {
            let _ = e.to_string();
        }
    }
});
