//! The pcap input port (`uml_switch --pcap-port IFNAME[,filter=EXPR]`,
//! `port add pcap IFNAME [filter=EXPR]`; `docs/pcap-port.md`): its option
//! text, and the messages between the switch and its capture helper
//! `uml_switch_pcap`, which opens the interface with libpcap (the switch
//! is static-pie and cannot link libpcap) and sends what it captures over
//! a `SOCK_SEQPACKET` socketpair:
//!
//! * the helper's first message is its status: [`STATUS_OK`] once the
//!   capture is open, its filter set and its privileges dropped, or
//!   `error: MESSAGE` (then it exits);
//! * then every captured frame, one message each, as captured (Ethernet
//!   header first);
//! * the switch never sends anything (it shuts down its sending side);
//!   the helper exits when the switch closes its end.

/// The helper's status message when the capture runs.
pub const STATUS_OK: &[u8] = b"ok";
/// The prefix of the helper's status message when it cannot capture.
pub const STATUS_ERROR: &str = "error: ";
/// Where the package installs the helper.
pub const DEFAULT_HELPER: &str = "/usr/lib/uml/uml_switch_pcap";
/// The environment variable that names another helper program (tests,
/// a build tree).
pub const HELPER_ENV: &str = "UML_SWITCH_PCAP";
/// The longest filter expression taken.
pub const MAX_FILTER: usize = 4096;

/// A pcap port's interface and filter.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PcapSpec {
    /// The host interface.
    pub ifname: String,
    /// The BPF filter expression (libpcap's syntax, pcap-filter(7));
    /// `None`: every frame.
    pub filter: Option<String>,
}

/// Parses `IFNAME[,filter=EXPR]` (the command line) or `IFNAME
/// [filter=EXPR]` (the management socket): the expression is the rest of
/// the text after `filter=`, spaces and commas included.
pub fn parse_spec(text: &str) -> Result<PcapSpec, String> {
    let (ifname, rest) = match text.find([',', ' ']) {
        Some(at) => (&text[..at], Some(text[at + 1..].trim_start())),
        None => (text, None),
    };
    if ifname.is_empty() || ifname.len() > 15 || ifname.contains(['/', '\0']) {
        return Err(format!("'{ifname}' is not an interface name"));
    }
    let filter = match rest {
        None => None,
        Some(r) => {
            let expr = r
                .strip_prefix("filter=")
                .ok_or_else(|| format!("'{r}': the only option is filter=EXPR"))?;
            if expr.trim().is_empty() {
                return Err("filter= needs an expression (pcap-filter(7))".to_string());
            }
            if expr.len() > MAX_FILTER || expr.contains(['\0', '\n']) {
                return Err(format!(
                    "the filter must be one line of at most {MAX_FILTER} bytes"
                ));
            }
            Some(expr.to_string())
        }
    };
    Ok(PcapSpec {
        ifname: ifname.to_string(),
        filter,
    })
}

/// The helper's status message for `error`.
pub fn status_error(error: &str) -> Vec<u8> {
    format!("{STATUS_ERROR}{error}").into_bytes()
}

/// What the helper's status message says: `Ok` when the capture runs,
/// else the helper's message.
pub fn parse_status(message: &[u8]) -> Result<(), String> {
    if message == STATUS_OK {
        return Ok(());
    }
    let text = String::from_utf8_lossy(message);
    match text.strip_prefix(STATUS_ERROR) {
        Some(why) => Err(why.to_string()),
        None => Err(format!(
            "unexpected status from the capture helper: {text:?}"
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn specs() {
        assert_eq!(
            parse_spec("vb0").unwrap(),
            PcapSpec {
                ifname: "vb0".into(),
                filter: None
            }
        );
        let want = PcapSpec {
            ifname: "vb0".into(),
            filter: Some("udp port 53, or (tcp and port 80)".into()),
        };
        assert_eq!(
            parse_spec("vb0,filter=udp port 53, or (tcp and port 80)").unwrap(),
            want
        );
        assert_eq!(
            parse_spec("vb0 filter=udp port 53, or (tcp and port 80)").unwrap(),
            want
        );
        for bad in [
            "",
            ",filter=udp",
            "a/b",
            "sixteen-chars-xx",
            "vb0,",
            "vb0,snaplen=5",
            "vb0,filter=",
            "vb0,filter=  ",
            "vb0 filter=a\nb",
        ] {
            assert!(parse_spec(bad).is_err(), "{bad:?}");
        }
        assert!(parse_spec(&format!("v,filter={}", "x".repeat(MAX_FILTER + 1))).is_err());
    }

    #[test]
    fn status_messages() {
        assert_eq!(parse_status(b"ok"), Ok(()));
        assert_eq!(
            parse_status(&status_error("bad filter 'x': syntax error")),
            Err("bad filter 'x': syntax error".to_string())
        );
        assert_eq!(status_error("e"), b"error: e");
        assert!(parse_status(b"\xff\x00 frame").is_err());
        assert!(parse_status(b"").is_err());
    }
}
