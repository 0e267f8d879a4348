//! The pcap port's spec (`--pcap-port IFNAME[,filter=EXPR]`, `port add
//! pcap …` from a management client; `docs/pcap-port.md`) and the status
//! message its helper sends: any bytes are parsed without a panic; an
//! accepted spec names a possible interface and a one-line filter; an
//! error status reads back as the message it carried.
#![no_main]
use libfuzzer_sys::fuzz_target;
use uml_common::pcap_port;

fuzz_target!(|data: &[u8]| {
    let _ = pcap_port::parse_status(data);
    let text = String::from_utf8_lossy(&data[..data.len().min(8192)]);
    if let Ok(spec) = pcap_port::parse_spec(&text) {
        assert!(!spec.ifname.is_empty() && spec.ifname.len() <= 15, "{spec:?}");
        assert!(!spec.ifname.contains(['/', '\0', ',', ' ']), "{spec:?}");
        if let Some(f) = &spec.filter {
            assert!(!f.trim().is_empty() && f.len() <= pcap_port::MAX_FILTER, "{spec:?}");
            assert!(!f.contains(['\n', '\0']), "{spec:?}");
        }
    }
    assert_eq!(
        pcap_port::parse_status(&pcap_port::status_error(&text)),
        Err(text.to_string())
    );
});
