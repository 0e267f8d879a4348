//! What `uml_switch` reads from its environment and its VLAN options:
//! systemd socket activation (`LISTEN_PID`, `LISTEN_FDS`,
//! `LISTEN_FDNAMES`), `NOTIFY_SOCKET`, and VLAN id lists (`10,20-29`).
//!
//! Input: up to four NUL-separated strings: the three activation
//! variables, then the notify socket / VLAN list.
#![no_main]
use std::str::FromStr;

use libfuzzer_sys::fuzz_target;
use uml_common::activation::{listen_fds, notify_target, ready_message};
use uml_common::vlan::{Vid, VidSet};

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    let mut parts = text.split('\0');
    let pid = parts.next().map(str::to_string);
    let fds = parts.next().map(str::to_string);
    let names = parts.next().map(str::to_string);
    let last = parts.next().unwrap_or("").to_string();
    let env = |k: &str| match k {
        "LISTEN_PID" => pid.clone(),
        "LISTEN_FDS" => fds.clone(),
        "LISTEN_FDNAMES" => names.clone(),
        "NOTIFY_SOCKET" => Some(last.clone()),
        _ => None,
    };
    if let Ok(v) = listen_fds(env, 42) {
        assert!(v.len() <= 4096);
    }
    let _ = notify_target(env);
    let _ = ready_message(&last, Some(1));
    if let Ok(set) = VidSet::from_str(&last) {
        // Printed and read again, a set is the same set.
        let shown = set.to_string();
        if !set.is_empty() {
            assert_eq!(VidSet::from_str(&shown).ok(), Some(set));
        }
    }
    let _ = Vid::from_str(&last);
});
