//! The switch's management protocol (`uml_switch --mgmt PATH`,
//! `docs/mgmt.md` §1-§4): one request per line on a unix stream socket, one
//! answer per request. Pure: requests are parsed and answers formatted
//! here; the switch fills in the data and does the I/O.
//!
//! A request is a line of at most [`MAX_LINE`] bytes of UTF-8 text ended
//! by `\n`: a command and its words, separated by blanks, optionally
//! preceded by the word `json`. A text answer is zero or more body lines
//! followed by one status line, `ok` or `error: MESSAGE`; no body line is
//! `ok` or starts with `error:`. A JSON answer is one line, an object
//! with `"ok": true` and the command's data, or `"ok": false` and
//! `"error"`.

use serde::Serialize;

use crate::vlan::{Vid, VidSet};

/// The longest request line, `\n` included.
pub const MAX_LINE: usize = 4096;

/// The commands, with their one-line descriptions (`help`).
pub const COMMANDS: &[(&str, &str)] = &[
    ("help", "list the commands"),
    (
        "ports",
        "list the ports: id, kind, peer, MACs learned, frames and bytes in and out, drops",
    ),
    (
        "macs",
        "show the MAC table: VLAN, MAC, port, seconds since last seen",
    ),
    ("counters", "show the switch's counters"),
    (
        "mode",
        "mode hub|switch: flood every frame (hub) or learn (switch)",
    ),
    (
        "port",
        "port add raw IFNAME | port add tap NAME | port add l2tpv3|gre|vxlan OPTIONS | \
         port add bess-connect|qemu-connect PATH | port add pcap IFNAME [filter=EXPR] | \
         port remove PORT: add a port at run time (answer: how the guest joins) or remove one \
         added so (or given on the command line)",
    ),
    (
        "capture",
        "capture [start FILE [port=N] [vlan=V] [limit=BYTES] [format=pcap|pcapng] | stop]: \
         capture frames to a new pcap or pcapng file (absolute path; rotated to FILE.1 at the \
         limit), stop, or show the capture",
    ),
    (
        "hostfwd",
        "hostfwd | hostfwd add [tcp|udp]:[HOSTADDR]:HOSTPORT-[GUESTADDR]:GUESTPORT | \
         hostfwd remove [tcp|udp]:[HOSTADDR]:HOSTPORT: list, add or remove the NAT port's host \
         port forwards (--nat)",
    ),
    (
        "vlan",
        "vlan PORT [access=VLAN|access=0] [trunk=LIST|trunk=-]: set a port's VLANs \
         (access: its untagged frames; trunk: the VLANs it carries tagged, e.g. 10,20-29); \
         vlan default SOCKET …: the VLANs of the ports that later connect to the control or \
         bess socket SOCKET",
    ),
];

/// A parsed request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Command {
    /// `mode hub|switch`.
    Mode {
        /// Hub (true) or learning switch.
        hub: bool,
    },
    /// `port add KIND SPEC`.
    PortAdd {
        /// `raw`, `tap`, `l2tpv3` or `gre`.
        kind: String,
        /// The interface, tap or the guest's tunnel options.
        spec: String,
    },
    /// `port remove PORT`.
    PortRemove {
        /// The port's id as printed.
        label: i32,
    },
    /// `capture`: show the capture in progress.
    CaptureStatus,
    /// `capture stop`.
    CaptureStop,
    /// `capture start FILE [port=N] [vlan=V] [limit=BYTES]`.
    CaptureStart {
        /// The new file (absolute).
        path: String,
        /// Only frames from or to this port (its id as printed).
        port: Option<i32>,
        /// Only frames of this VLAN.
        vlan: Option<u16>,
        /// Rotation size in bytes.
        limit: Option<u64>,
        /// `format=pcapng`: the PCAP Next Generation format (default:
        /// libpcap's classic format).
        pcapng: bool,
    },
    /// `vlan PORT [access=V] [trunk=LIST]`: what to change (`None`: keep;
    /// `access=0`: the default VLAN). With `listener`, `vlan default
    /// SOCKET …`: the VLANs of ports that connect to SOCKET from now on.
    Vlan {
        /// The port's id (as printed); 0 with `listener`.
        label: i32,
        /// `vlan default SOCKET`: the listening socket's path.
        listener: Option<String>,
        /// The new access VLAN.
        access: Option<Option<Vid>>,
        /// The new trunk VLANs (boxed: a set is 512 bytes).
        trunk: Option<Box<VidSet>>,
    },
    /// `hostfwd`: list the NAT port's forwards.
    HostFwdList,
    /// `hostfwd add RULE`.
    HostFwdAdd {
        /// `[tcp|udp]:[HOSTADDR]:HOSTPORT-[GUESTADDR]:GUESTPORT`.
        rule: String,
    },
    /// `hostfwd remove HOST`.
    HostFwdRemove {
        /// `[tcp|udp]:[HOSTADDR]:HOSTPORT`.
        host: String,
    },
    /// `help`.
    Help,
    /// `ports`.
    Ports,
    /// `macs`.
    Macs,
    /// `counters`.
    Counters,
}

/// A request: its command and whether the answer is JSON.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Request {
    /// The command.
    pub command: Command,
    /// `json COMMAND`: answer in JSON.
    pub json: bool,
}

/// Why a request line is refused (the answer's message).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RequestError {
    /// Not UTF-8.
    #[error("the request is not UTF-8 text")]
    NotText,
    /// Nothing but blanks.
    #[error("empty request (try 'help')")]
    Empty,
    /// An unknown command.
    #[error("unknown command '{0}' (try 'help')")]
    Unknown(String),
    /// Words after a command that takes none.
    #[error("'{0}' takes no arguments")]
    Arguments(&'static str),
    /// Longer than [`MAX_LINE`].
    #[error("request longer than {MAX_LINE} bytes")]
    TooLong,
    /// A bad argument of a command.
    #[error("{0}")]
    BadArgument(String),
}

impl RequestError {
    /// Whether the request was JSON (so is the error answer).
    fn json_of(line: &[u8]) -> bool {
        line.split(|b| b.is_ascii_whitespace())
            .find(|w| !w.is_empty())
            .is_some_and(|w| w == b"json")
    }
}

/// Parses one request line (without its `\n`). The error comes with
/// whether its answer must be JSON.
pub fn parse(line: &[u8]) -> Result<Request, (RequestError, bool)> {
    let json = RequestError::json_of(line);
    let text = std::str::from_utf8(line).map_err(|_| (RequestError::NotText, json))?;
    let mut words = text.split_ascii_whitespace();
    let mut first = words.next();
    if first == Some("json") {
        first = words.next();
    }
    let Some(name) = first else {
        return Err((RequestError::Empty, json));
    };
    let command = match name {
        "help" => Command::Help,
        "ports" => Command::Ports,
        "macs" => Command::Macs,
        "counters" => Command::Counters,
        "mode" => {
            let hub = match (words.next(), words.next()) {
                (Some("hub"), None) => true,
                (Some("switch"), None) => false,
                _ => {
                    return Err((
                        RequestError::BadArgument("usage: mode hub|switch".to_string()),
                        json,
                    ))
                }
            };
            return Ok(Request {
                command: Command::Mode { hub },
                json,
            });
        }
        "port" => {
            return parse_port(words)
                .map(|command| Request { command, json })
                .map_err(|e| (e, json))
        }
        "capture" => {
            return parse_capture(words)
                .map(|command| Request { command, json })
                .map_err(|e| (e, json))
        }
        "hostfwd" => {
            let usage = || {
                RequestError::BadArgument(
                    "usage: hostfwd | hostfwd add RULE | hostfwd remove [tcp|udp]:[HOSTADDR]:HOSTPORT"
                        .to_string(),
                )
            };
            let command = match (words.next(), words.next(), words.next()) {
                (None, _, _) => Command::HostFwdList,
                (Some("add"), Some(rule), None) => Command::HostFwdAdd {
                    rule: rule.to_string(),
                },
                (Some("remove"), Some(host), None) => Command::HostFwdRemove {
                    host: host.to_string(),
                },
                _ => return Err((usage(), json)),
            };
            return Ok(Request { command, json });
        }
        "vlan" => {
            return parse_vlan(words)
                .map(|command| Request { command, json })
                .map_err(|e| (e, json))
        }
        other => {
            let shown: String = other.chars().take(64).collect();
            return Err((RequestError::Unknown(shown), json));
        }
    };
    if words.next().is_some() {
        let name = COMMANDS
            .iter()
            .find(|(n, _)| *n == name)
            .map_or("command", |(n, _)| n);
        return Err((RequestError::Arguments(name), json));
    }
    Ok(Request { command, json })
}

/// `vlan PORT [access=V|access=0] [trunk=LIST|trunk=-]`.
fn parse_vlan<'a>(mut words: impl Iterator<Item = &'a str>) -> Result<Command, RequestError> {
    let usage = || {
        RequestError::BadArgument(
            "usage: vlan PORT [access=VLAN|access=0] [trunk=LIST|trunk=-]".to_string(),
        )
    };
    let first = words.next().ok_or_else(usage)?;
    let (label, listener) = if first == "default" {
        (0, Some(words.next().ok_or_else(usage)?.to_string()))
    } else {
        (first.parse::<i32>().map_err(|_| usage())?, None)
    };
    let (mut access, mut trunk) = (None, None);
    let mut any = false;
    for w in words {
        any = true;
        let bad = |e: crate::vlan::VlanError| RequestError::BadArgument(e.to_string());
        match w.split_once('=') {
            Some(("access", "0")) => access = Some(None),
            Some(("access", v)) => access = Some(Some(v.parse().map_err(bad)?)),
            Some(("trunk", "-")) => trunk = Some(Box::default()),
            Some(("trunk", v)) => trunk = Some(Box::new(v.parse().map_err(bad)?)),
            _ => return Err(usage()),
        }
    }
    if !any {
        return Err(usage());
    }
    Ok(Command::Vlan {
        label,
        listener,
        access,
        trunk,
    })
}

/// `port add KIND SPEC | port remove PORT`.
fn parse_port<'a>(mut words: impl Iterator<Item = &'a str>) -> Result<Command, RequestError> {
    let usage = || {
        RequestError::BadArgument(
            "usage: port add raw IFNAME | port add tap NAME | port add l2tpv3|gre|vxlan OPTIONS | \
             port add bess-connect|qemu-connect PATH | port add pcap IFNAME [filter=EXPR] | \
             port remove PORT"
                .to_string(),
        )
    };
    match (words.next(), words.next(), words.next()) {
        // The filter expression is the rest of the line (words joined by
        // single spaces, which pcap-filter(7) does not tell apart).
        (Some("add"), Some("pcap"), Some(ifname)) => {
            let rest: Vec<&str> = words.collect();
            let spec = if rest.is_empty() {
                ifname.to_string()
            } else {
                format!("{ifname} {}", rest.join(" "))
            };
            crate::pcap_port::parse_spec(&spec).map_err(RequestError::BadArgument)?;
            Ok(Command::PortAdd {
                kind: "pcap".to_string(),
                spec,
            })
        }
        (
            Some("add"),
            Some(
                kind @ ("raw" | "tap" | "l2tpv3" | "gre" | "vxlan" | "bess-connect"
                | "qemu-connect"),
            ),
            Some(spec),
        ) if words.next().is_none() => Ok(Command::PortAdd {
            kind: kind.to_string(),
            spec: spec.to_string(),
        }),
        (Some("remove"), Some(label), None) => Ok(Command::PortRemove {
            label: label.parse().map_err(|_| usage())?,
        }),
        _ => Err(usage()),
    }
}

/// `capture [start FILE [port=N] [vlan=V] [limit=BYTES] | stop]`.
fn parse_capture<'a>(mut words: impl Iterator<Item = &'a str>) -> Result<Command, RequestError> {
    let usage = || {
        RequestError::BadArgument(
            "usage: capture [start FILE [port=N] [vlan=V] [limit=BYTES] [format=pcap|pcapng] | \
             stop]"
                .to_string(),
        )
    };
    match words.next() {
        None => Ok(Command::CaptureStatus),
        Some("stop") => match words.next() {
            None => Ok(Command::CaptureStop),
            Some(_) => Err(usage()),
        },
        Some("start") => {
            let path = words.next().ok_or_else(usage)?;
            if !path.starts_with('/') {
                return Err(RequestError::BadArgument(format!(
                    "'{path}': the capture file must be an absolute path"
                )));
            }
            let (mut port, mut vlan, mut limit, mut pcapng) = (None, None, None, false);
            for w in words {
                let bad = || RequestError::BadArgument(format!("bad capture option '{w}'"));
                match w.split_once('=') {
                    Some(("port", v)) => port = Some(v.parse().map_err(|_| bad())?),
                    Some(("vlan", "0")) => vlan = Some(0),
                    Some(("vlan", v)) => {
                        let id: Vid = v.parse().map_err(|_| bad())?;
                        vlan = Some(id.get());
                    }
                    Some(("limit", v)) => limit = Some(parse_size(v).ok_or_else(bad)?),
                    Some(("format", "pcap")) => pcapng = false,
                    Some(("format", "pcapng")) => pcapng = true,
                    _ => return Err(bad()),
                }
            }
            if port.is_some() && vlan.is_some() {
                return Err(RequestError::BadArgument(
                    "capture one port or one VLAN, not both".to_string(),
                ));
            }
            Ok(Command::CaptureStart {
                path: path.to_string(),
                port,
                vlan,
                limit,
                pcapng,
            })
        }
        Some(_) => Err(usage()),
    }
}

/// `BYTES`, `NK`, `NM`, `NG` (powers of 1024).
pub fn parse_size(text: &str) -> Option<u64> {
    let (digits, shift) = match text.as_bytes().last()? {
        b'K' | b'k' => (&text[..text.len() - 1], 10),
        b'M' | b'm' => (&text[..text.len() - 1], 20),
        b'G' | b'g' => (&text[..text.len() - 1], 30),
        _ => (text, 0),
    };
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    digits.parse::<u64>().ok()?.checked_mul(1 << shift)
}

/// The answer to `capture` (status): one line, or none when no capture
/// runs.
pub fn capture_status(status: Option<&str>, json: bool) -> String {
    if json {
        return json_line(serde_json::json!({"ok": true, "capture": status}));
    }
    match status {
        Some(s) => format!("capturing to {}\nok\n", one_line(s)),
        None => "no capture\nok\n".to_string(),
    }
}

/// An `ok` answer with `text`'s lines as its body (JSON: `"lines"`).
pub fn lines(text: &str, json: bool) -> String {
    if json {
        let lines: Vec<&str> = text.lines().collect();
        return json_line(serde_json::json!({"ok": true, "lines": lines}));
    }
    let mut s = String::new();
    for l in text.lines() {
        s.push_str(&one_line(l));
        s.push('\n');
    }
    s.push_str("ok\n");
    s
}

/// The answer to a command that only acts (`vlan`).
pub fn done(json: bool) -> String {
    if json {
        json_line(serde_json::json!({"ok": true}))
    } else {
        "ok\n".to_string()
    }
}

/// One port, as `ports` lists it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PortRow {
    /// The number the switch's messages print (a descriptor).
    pub id: i32,
    /// `daemon`, `vde`, `bess`, `tap`, `l2tpv3`, `gre`, `raw`, `mcast`.
    pub kind: &'static str,
    /// Who is on it, when known (pid and uid, a vde client's
    /// description, a tunnel's addresses, an interface).
    pub peer: Option<String>,
    /// Access VLAN (0: the default VLAN).
    pub vlan: u16,
    /// Trunk VLANs (`10,20-29`; `-`: none).
    pub trunk: String,
    /// MAC addresses learned on it.
    pub macs: usize,
    /// Frames received from it.
    pub frames_in: u64,
    /// Their bytes.
    pub bytes_in: u64,
    /// Frames forwarded to it.
    pub frames_out: u64,
    /// Their bytes.
    pub bytes_out: u64,
    /// Frames dropped as longer than it takes.
    pub drops_oversized: u64,
}

/// One entry of the MAC table.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct MacRow {
    /// Its VLAN (0: the default VLAN).
    pub vlan: u16,
    /// The address, `aa:bb:cc:dd:ee:ff`.
    pub mac: String,
    /// The port's id.
    pub port: i32,
    /// Seconds since it was last seen.
    pub age: u32,
}

/// The answer to `help`.
pub fn help(json: bool) -> String {
    if json {
        let cmds: Vec<serde_json::Value> = COMMANDS
            .iter()
            .map(|(n, d)| serde_json::json!({"command": n, "description": d}))
            .collect();
        return json_line(serde_json::json!({"ok": true, "commands": cmds}));
    }
    let mut s = String::new();
    for (name, what) in COMMANDS {
        s.push_str(&format!("{name:<10}{what}\n"));
    }
    s.push_str("(any command after 'json': the answer as one JSON object)\nok\n");
    s
}

/// The answer to `ports`.
pub fn ports(rows: &[PortRow], json: bool) -> String {
    if json {
        return json_line(serde_json::json!({"ok": true, "ports": rows}));
    }
    let mut s = String::from(
        "port kind     vlan trunk      macs  frames_in   bytes_in frames_out  bytes_out oversized peer\n",
    );
    for r in rows {
        s.push_str(&format!(
            "{:<4} {:<8} {:>4} {:<10} {:>4} {:>10} {:>10} {:>10} {:>10} {:>9} {}\n",
            r.id,
            r.kind,
            r.vlan,
            r.trunk,
            r.macs,
            r.frames_in,
            r.bytes_in,
            r.frames_out,
            r.bytes_out,
            r.drops_oversized,
            r.peer.as_deref().map_or("-".to_string(), one_line),
        ));
    }
    s.push_str("ok\n");
    s
}

/// The answer to `macs`.
pub fn macs(rows: &[MacRow], json: bool) -> String {
    if json {
        return json_line(serde_json::json!({"ok": true, "macs": rows}));
    }
    let mut s = String::from("vlan mac               port   age\n");
    for r in rows {
        s.push_str(&format!(
            "{:<4} {} {:<6} {:>5}\n",
            r.vlan, r.mac, r.port, r.age
        ));
    }
    s.push_str("ok\n");
    s
}

/// The answer to `counters`: name and value pairs, in order.
pub fn counters(pairs: &[(&str, u64)], json: bool) -> String {
    if json {
        let map: serde_json::Map<String, serde_json::Value> = pairs
            .iter()
            .map(|(k, v)| (k.to_string(), serde_json::Value::from(*v)))
            .collect();
        return json_line(serde_json::json!({"ok": true, "counters": map}));
    }
    let mut s = String::new();
    for (name, value) in pairs {
        s.push_str(&format!("{name} {value}\n"));
    }
    s.push_str("ok\n");
    s
}

/// An error answer.
pub fn error(message: &str, json: bool) -> String {
    if json {
        return json_line(serde_json::json!({"ok": false, "error": message}));
    }
    format!("error: {}\n", one_line(message))
}

/// Whether `line` (without `\n`) ends a text answer, and how: `Some(Ok)`
/// for `ok`, `Some(Err(message))` for `error: MESSAGE`.
pub fn status_of(line: &str) -> Option<Result<(), String>> {
    if line == "ok" {
        Some(Ok(()))
    } else {
        line.strip_prefix("error: ").map(|m| Err(m.to_string()))
    }
}

/// Whether a JSON answer line says `"ok": true`.
pub fn json_ok(line: &str) -> bool {
    serde_json::from_str::<serde_json::Value>(line)
        .ok()
        .and_then(|v| v.get("ok").and_then(serde_json::Value::as_bool))
        .unwrap_or(false)
}

fn json_line(v: serde_json::Value) -> String {
    let mut s = v.to_string();
    s.push('\n');
    s
}

/// `text` on one line: control characters shown as `?`.
fn one_line(text: &str) -> String {
    text.chars()
        .map(|c| if c.is_control() { '?' } else { c })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ok(line: &str) -> Request {
        parse(line.as_bytes()).unwrap()
    }

    fn refused(line: &[u8]) -> (RequestError, bool) {
        parse(line).unwrap_err()
    }

    #[test]
    fn hostfwd_requests() {
        assert_eq!(ok("hostfwd").command, Command::HostFwdList);
        assert_eq!(
            ok("json hostfwd add tcp::8080-:80"),
            Request {
                command: Command::HostFwdAdd {
                    rule: "tcp::8080-:80".to_string()
                },
                json: true
            }
        );
        assert_eq!(
            ok("hostfwd remove udp:127.0.0.1:53").command,
            Command::HostFwdRemove {
                host: "udp:127.0.0.1:53".to_string()
            }
        );
        for bad in [
            &b"hostfwd add"[..],
            b"hostfwd add a b",
            b"hostfwd remove",
            b"hostfwd list",
        ] {
            let (e, _) = refused(bad);
            assert!(e.to_string().starts_with("usage: hostfwd"), "{e}");
        }
        assert!(help(false).contains("hostfwd  "));
    }

    #[test]
    fn requests_are_words_optionally_after_json() {
        assert_eq!(
            ok("ports"),
            Request {
                command: Command::Ports,
                json: false
            }
        );
        assert_eq!(
            ok("  json\tmacs  "),
            Request {
                command: Command::Macs,
                json: true
            }
        );
        assert_eq!(ok("counters").command, Command::Counters);
        assert_eq!(ok("help").command, Command::Help);
        assert_eq!(refused(b""), (RequestError::Empty, false));
        assert_eq!(refused(b"json"), (RequestError::Empty, true));
        assert_eq!(
            refused(b"json frob"),
            (RequestError::Unknown("frob".into()), true)
        );
        assert_eq!(
            refused(b"ports all"),
            (RequestError::Arguments("ports"), false)
        );
        assert_eq!(refused(b"ports \xff"), (RequestError::NotText, false));
        assert_eq!(refused(b"json \xff"), (RequestError::NotText, true));
        // An unknown command is echoed cut short, on one line.
        let (e, _) = refused(&[b'x'; 1000]);
        assert_eq!(
            e.to_string().len(),
            "unknown command '' (try 'help')".len() + 64
        );
    }

    #[test]
    fn mode_and_port_requests() {
        assert_eq!(ok("mode hub").command, Command::Mode { hub: true });
        assert_eq!(ok("mode switch").command, Command::Mode { hub: false });
        assert_eq!(
            ok("port add l2tpv3 src=127.0.0.1,dst=127.0.0.2").command,
            Command::PortAdd {
                kind: "l2tpv3".into(),
                spec: "src=127.0.0.1,dst=127.0.0.2".into()
            }
        );
        for kind in ["bess-connect", "qemu-connect"] {
            assert_eq!(
                ok(&format!("port add {kind} /run/stack.sock")).command,
                Command::PortAdd {
                    kind: kind.into(),
                    spec: "/run/stack.sock".into()
                }
            );
        }
        assert_eq!(
            ok("port add pcap vb filter=udp   port 9 or (tcp and port 80)").command,
            Command::PortAdd {
                kind: "pcap".into(),
                spec: "vb filter=udp port 9 or (tcp and port 80)".into()
            }
        );
        assert_eq!(
            ok("port add pcap vb").command,
            Command::PortAdd {
                kind: "pcap".into(),
                spec: "vb".into()
            }
        );
        assert_eq!(
            ok("port remove 1003").command,
            Command::PortRemove { label: 1003 }
        );
        for bad in [
            "mode",
            "mode bridge",
            "mode hub now",
            "port",
            "port add",
            "port add bess /x",
            "port add qemu-connect",
            "port add bess-connect /a /b",
            "port add raw",
            "port add raw a b",
            "port add pcap",
            "port add pcap vb udp",
            "port add pcap vb filter=",
            "port remove x",
            "port remove 1 2",
        ] {
            assert!(
                matches!(refused(bad.as_bytes()).0, RequestError::BadArgument(_)),
                "{bad}"
            );
        }
    }

    #[test]
    fn capture_requests() {
        assert_eq!(ok("capture").command, Command::CaptureStatus);
        assert_eq!(ok("capture stop").command, Command::CaptureStop);
        assert_eq!(
            ok("capture start /tmp/a.pcap port=5 limit=2M").command,
            Command::CaptureStart {
                path: "/tmp/a.pcap".into(),
                port: Some(5),
                vlan: None,
                limit: Some(2 << 20),
                pcapng: false,
            }
        );
        assert_eq!(
            ok("capture start /x.pcapng format=pcapng limit=1M").command,
            Command::CaptureStart {
                path: "/x.pcapng".into(),
                port: None,
                vlan: None,
                limit: Some(1 << 20),
                pcapng: true,
            }
        );
        assert_eq!(
            ok("capture start /x vlan=0").command,
            Command::CaptureStart {
                path: "/x".into(),
                port: None,
                vlan: Some(0),
                limit: None,
                pcapng: false,
            }
        );
        for bad in [
            "capture start",
            "capture start rel.pcap",
            "capture start /x port=a",
            "capture start /x vlan=4095",
            "capture start /x limit=1X",
            "capture start /x port=1 vlan=2",
            "capture start /x format=pcapng2",
            "capture start /x format=",
            "capture stop now",
            "capture frob",
        ] {
            assert!(
                matches!(refused(bad.as_bytes()).0, RequestError::BadArgument(_)),
                "{bad}"
            );
        }
        assert_eq!(parse_size("64K"), Some(65536));
        assert_eq!(parse_size("1g"), Some(1 << 30));
        assert_eq!(parse_size("12"), Some(12));
        assert_eq!(parse_size("99999999999999999999G"), None);
        assert_eq!(parse_size(""), None);
        assert_eq!(parse_size("K"), None);
        assert_eq!(capture_status(None, false), "no capture\nok\n");
        assert_eq!(
            capture_status(Some("/x (3 frames)"), false),
            "capturing to /x (3 frames)\nok\n"
        );
        assert!(json_ok(&capture_status(None, true)));
    }

    #[test]
    fn vlan_requests() {
        assert_eq!(
            ok("vlan 5 access=10 trunk=20-22").command,
            Command::Vlan {
                label: 5,
                listener: None,
                access: Some(Vid::new(10)),
                trunk: Some(Box::new("20-22".parse().unwrap()))
            }
        );
        assert_eq!(
            ok("vlan 7 access=0").command,
            Command::Vlan {
                label: 7,
                listener: None,
                access: Some(None),
                trunk: None
            }
        );
        assert_eq!(
            ok("vlan 7 trunk=-").command,
            Command::Vlan {
                label: 7,
                listener: None,
                access: None,
                trunk: Some(Box::default())
            }
        );
        for bad in [
            "vlan",
            "vlan x",
            "vlan 5",
            "vlan 5 access=4095",
            "vlan 5 mode=x",
            "vlan 5 trunk=9-3",
        ] {
            assert!(
                matches!(refused(bad.as_bytes()).0, RequestError::BadArgument(_)),
                "{bad}"
            );
        }
        assert_eq!(
            refused(b"vlan 5 access=4095").0.to_string(),
            "'4095' is not a VLAN id (1-4094)"
        );
        assert_eq!(done(false), "ok\n");
        assert!(json_ok(&done(true)));
    }

    #[test]
    fn text_answers_end_in_one_status_line() {
        let rows = [PortRow {
            id: 5,
            kind: "bess",
            peer: Some("pid 42, uid 1000\nsecond line".into()),
            vlan: 0,
            trunk: "-".into(),
            macs: 1,
            frames_in: 3,
            bytes_in: 180,
            frames_out: 2,
            bytes_out: 120,
            drops_oversized: 0,
        }];
        let text = ports(&rows, false);
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines.len(), 3, "{text}");
        assert!(
            lines[1].starts_with("5    bess        0 -             1          3        180"),
            "{text}"
        );
        assert!(
            lines[1].ends_with(" pid 42, uid 1000?second line"),
            "{text}"
        );
        assert_eq!(status_of(lines[2]), Some(Ok(())));
        for l in &lines[..2] {
            assert_eq!(status_of(l), None, "{l}");
        }
        let m = macs(
            &[MacRow {
                vlan: 10,
                mac: "02:00:00:00:00:01".into(),
                port: 5,
                age: 7,
            }],
            false,
        );
        assert_eq!(
            m,
            "vlan mac               port   age\n10   02:00:00:00:00:01 5          7\nok\n"
        );
        assert_eq!(
            counters(&[("frames_in", 3), ("frames_out", 2)], false),
            "frames_in 3\nframes_out 2\nok\n"
        );
        assert_eq!(error("bad\nthing", false), "error: bad?thing\n");
        assert_eq!(status_of("error: bad?thing"), Some(Err("bad?thing".into())));
        assert!(help(false).ends_with("ok\n"));
        assert_eq!(
            help(false)
                .lines()
                .filter(|l| status_of(l).is_some())
                .count(),
            1
        );
    }

    #[test]
    fn json_answers_are_one_object_per_line() {
        let rows = [PortRow {
            id: 5,
            kind: "daemon",
            peer: None,
            vlan: 0,
            trunk: "-".into(),
            macs: 0,
            frames_in: 0,
            bytes_in: 0,
            frames_out: 1,
            bytes_out: 60,
            drops_oversized: 0,
        }];
        for answer in [
            ports(&rows, true),
            macs(&[], true),
            counters(&[("frames_in", 1)], true),
            help(true),
            error("unknown command 'x'", true),
        ] {
            assert_eq!(answer.matches('\n').count(), 1, "{answer}");
            let v: serde_json::Value = serde_json::from_str(&answer).unwrap();
            assert!(v["ok"].is_boolean(), "{answer}");
        }
        let v: serde_json::Value = serde_json::from_str(&ports(&rows, true)).unwrap();
        assert_eq!(v["ports"][0]["kind"], "daemon");
        assert_eq!(v["ports"][0]["bytes_out"], 60);
        assert!(v["ports"][0]["peer"].is_null());
        let v: serde_json::Value =
            serde_json::from_str(&counters(&[("frames_in", 1)], true)).unwrap();
        assert_eq!(v["counters"]["frames_in"], 1);
        assert!(json_ok(&help(true)) && !json_ok(&error("x", true)) && !json_ok("ok"));
        let v: serde_json::Value = serde_json::from_str(&error("x", true)).unwrap();
        assert_eq!(
            (v["ok"].as_bool(), v["error"].as_str()),
            (Some(false), Some("x"))
        );
    }
}
