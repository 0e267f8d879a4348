//! The options of a vector tunnel device (`vecN:transport=l2tpv3,…` and
//! `vecN:transport=gre,…`, `docs/vector.md` §1, §4, §5, §8, `docs/kernel7.md`
//! §1.5) read exactly as the guest's kernel reads them, and the rules that keep
//! a guest given those options from panicking.
//!
//! A switch port of one of these kinds is configured with **the guest's
//! own options**: the same string the guest gets after `transport=…`. The
//! guest binds `src[:srcport]` and sends to `dst[:dstport]`, so the switch
//! binds `dst[:dstport]` and sends to `src[:srcport]`; it expects the
//! guest's `tx_session`/`tx_cookie`/`tx_key` and sends with its
//! `rx_session`/`rx_cookie`/`rx_key`. [`TunnelConfig`] holds those values
//! from the switch's side and [`TunnelConfig::guest_argument`] gives back
//! the guest's argument.
//!
//! Every combination a 6.1 or 7.x guest would panic on (its transport
//! set-up fails after the socket was opened and the error path disables a
//! NAPI context that was never set up) is refused: a missing or
//! unparsable `rx_session`/`tx_session` (sessions and keys are signed
//! 32-bit: `0xffffffff` fails, `-1` is the same value), `rx_cookie`
//! without `tx_cookie`, `rx_key` without a parsable `tx_key`, and a
//! `depth` beyond what the guest can allocate (it does not check). So is every
//! value the guest would read differently from what it says (ignored,
//! undefined, or parsed two ways), so that the switch's end always
//! matches the guest's.

use std::fmt;
use std::net::{IpAddr, SocketAddr};

use crate::tunnel::{CookieLen, L2tpv3Layout, IPPROTO_GRE, IPPROTO_L2TP};

/// The vector driver reads at most this many `key=value` options.
pub const MAX_OPTIONS: usize = 20;
/// Largest `mtu=` a tunnel guest may use when the switch forwards frames
/// of at most 1514 bytes (its default; see [`parse_tunnel_with_mtu`]).
pub const MAX_GUEST_MTU: u32 = 1500;
/// Largest `depth=` accepted: 4096 works on 6.1 and 7.2; a huge depth
/// (`depth=100000000`) crashes both when the interface comes up (their
/// queue allocation fails and is not checked; observed).
pub const MAX_GUEST_DEPTH: u32 = 4096;

/// Which tunnel.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TunnelKind {
    /// `transport=l2tpv3`.
    L2tpv3,
    /// `transport=gre`.
    Gre,
}

impl TunnelKind {
    /// The transport name (`l2tpv3`, `gre`).
    pub fn name(self) -> &'static str {
        match self {
            TunnelKind::L2tpv3 => "l2tpv3",
            TunnelKind::Gre => "gre",
        }
    }

    /// The options the guest reads for this transport (besides the common
    /// ones of [`GUEST_ONLY`]).
    fn known(self) -> &'static [&'static str] {
        match self {
            TunnelKind::L2tpv3 => &[
                "src",
                "dst",
                "srcport",
                "dstport",
                "udp",
                "v6",
                "rx_session",
                "tx_session",
                "rx_cookie",
                "tx_cookie",
                "cookie64",
                "counter",
                "pin_counter",
            ],
            TunnelKind::Gre => &[
                "src",
                "dst",
                "v6",
                "rx_key",
                "tx_key",
                "sequence",
                "pin_sequence",
            ],
        }
    }
}

impl fmt::Display for TunnelKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// Options of every vector device that concern only the guest: accepted
/// (checked where a wrong value would hurt) and kept in the guest
/// argument.
pub const GUEST_ONLY: [&str; 8] = [
    "mac", "mtu", "depth", "headroom", "gro", "vec", "bpffile", "bpfflash",
];

/// How the switch's socket for a tunnel is made.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Carrier {
    /// A UDP socket (`l2tpv3` with `udp=1`; no privileges).
    Udp,
    /// A raw IP socket of this protocol (`l2tpv3` over IP: 115; `gre`:
    /// 47; needs `CAP_NET_RAW`).
    Raw(u8),
}

/// What the switch sends and expects on an L2TPv3 tunnel.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct L2tpv3Params {
    /// The header layout both ends use.
    pub layout: L2tpv3Layout,
    /// Session id of the guest's frames (its `tx_session`).
    pub expect_session: u32,
    /// Session id the switch sends (the guest's `rx_session`).
    pub send_session: u32,
    /// Cookie of the guest's frames (its `tx_cookie`; 4-byte cookies in
    /// the low 32 bits).
    pub expect_cookie: u64,
    /// Cookie the switch sends (the guest's `rx_cookie`).
    pub send_cookie: u64,
    /// Send the counter as 0 (`pin_counter=1`) instead of 1, 2, 3, …
    pub pin_counter: bool,
}

/// What the switch sends and expects on a GRE tunnel.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct GreParams {
    /// `(expected, sent)` keys: the guest's `tx_key` and `rx_key`.
    pub keys: Option<(u32, u32)>,
    /// Sequence numbers are present (`sequence=1`).
    pub sequence: bool,
    /// Send the sequence number as 0 (`pin_sequence=1`).
    pub pin_sequence: bool,
}

/// The encapsulation of a tunnel.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Encap {
    /// L2TPv3.
    L2tpv3(L2tpv3Params),
    /// GRE.
    Gre(GreParams),
}

/// A tunnel port, from the guest's options.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TunnelConfig {
    /// Which transport.
    pub kind: TunnelKind,
    /// Unit number of the guest argument (`vecN:`; 0 unless given).
    pub unit: u32,
    /// The switch's socket.
    pub carrier: Carrier,
    /// The guest's address (`src`, `srcport`): the switch sends there and
    /// accepts packets only from there.
    pub guest: SocketAddr,
    /// The switch's address (the guest's `dst`, `dstport`): the switch
    /// binds it. Port 0 with UDP: the switch takes any free port (the
    /// guest argument then names it). Port 0 for raw sockets.
    pub local: SocketAddr,
    /// Sessions, cookies, keys and optional fields.
    pub encap: Encap,
    /// The guest's options in order, without `transport`.
    items: Vec<(String, String)>,
}

impl TunnelConfig {
    /// The guest's kernel argument that joins this port, with `local_port`
    /// as `dstport` when the configuration left the port to the switch
    /// (UDP, `dstport=0`).
    pub fn guest_argument(&self, local_port: u16) -> String {
        let mut s = format!("vec{}:transport={}", self.unit, self.kind);
        for (k, v) in &self.items {
            s.push(',');
            s.push_str(k);
            s.push('=');
            if k == "dstport" && self.local.port() == 0 {
                s.push_str(&local_port.to_string());
            } else {
                s.push_str(v);
            }
        }
        s
    }

    /// Why this port and `other` cannot both be opened (they would bind
    /// the same UDP address and port, or receive each other's packets).
    pub fn conflict(&self, other: &TunnelConfig) -> Option<String> {
        match (self.carrier, other.carrier) {
            (Carrier::Udp, Carrier::Udp) if self.local == other.local && self.local.port() != 0 => {
                Some(format!(
                    "both use dst={} dstport={} (each UDP tunnel needs its own port on the \
                     switch's side)",
                    self.local.ip(),
                    self.local.port()
                ))
            }
            (Carrier::Raw(a), Carrier::Raw(b))
                if a == b
                    && self.local.ip() == other.local.ip()
                    && self.guest.ip() == other.guest.ip() =>
            {
                Some(format!(
                    "both tunnel {} between src={} and dst={} (each raw tunnel of a protocol \
                     needs its own pair of addresses)",
                    self.kind,
                    self.guest.ip(),
                    self.local.ip()
                ))
            }
            _ => None,
        }
    }
}

/// Why a tunnel option string is refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TunnelOptError {
    /// What is wrong and what to write instead.
    pub reason: String,
    /// A guest given these options would panic when its interface comes
    /// up.
    pub panics_guest: bool,
}

impl TunnelOptError {
    fn new(reason: impl Into<String>) -> TunnelOptError {
        TunnelOptError {
            reason: reason.into(),
            panics_guest: false,
        }
    }

    fn panic(reason: impl Into<String>) -> TunnelOptError {
        TunnelOptError {
            reason: reason.into(),
            panics_guest: true,
        }
    }
}

impl fmt::Display for TunnelOptError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.reason)?;
        if self.panics_guest {
            f.write_str(" — a guest given these options panics when its interface comes up")?;
        }
        Ok(())
    }
}

impl std::error::Error for TunnelOptError {}

// ---------------------------------------------------------------------------
// The kernel's number parsers
// ---------------------------------------------------------------------------

/// The kernel's `_kstrtoull` with base 0: `0x`/`0X` and a hex digit →
/// hex, a leading `0` → octal, else decimal; one trailing newline allowed.
fn kstrtoull_digits(s: &[u8]) -> Option<u64> {
    let (base, digits): (u64, &[u8]) = match s {
        [b'0', x, h, ..] if (x | 0x20) == b'x' && h.is_ascii_hexdigit() => (16, &s[2..]),
        [b'0', ..] => (8, s),
        _ => (10, s),
    };
    let mut value: u64 = 0;
    let mut overflow = false;
    let mut used = 0;
    for &c in digits {
        let d = match c {
            b'0'..=b'9' => u64::from(c - b'0'),
            b'a'..=b'f' | b'A'..=b'F' => u64::from((c | 0x20) - b'a' + 10),
            _ => break,
        };
        if d >= base {
            break;
        }
        match value.checked_mul(base).and_then(|v| v.checked_add(d)) {
            Some(v) => value = v,
            None => overflow = true,
        }
        used += 1;
    }
    if overflow || used == 0 {
        return None;
    }
    match &digits[used..] {
        [] | [b'\n'] => Some(value),
        _ => None,
    }
}

/// The kernel's `kstrtoul(s, 0, …)` on a 64-bit kernel: an optional `+`,
/// then [`kstrtoull_digits`]. Used for L2TPv3 cookies.
pub fn kstrtoul(s: &str) -> Option<u64> {
    let b = s.as_bytes();
    kstrtoull_digits(b.strip_prefix(b"+").unwrap_or(b))
}

/// The kernel's `kstrtoint(s, 0, …)`: like [`kstrtoul`] with an optional
/// `-`, and the value must fit a signed 32-bit int (so `0xffffffff`
/// fails while `-1` gives the same bits). Used for sessions, keys and
/// flags.
pub fn kstrtoint(s: &str) -> Option<i32> {
    let b = s.as_bytes();
    let v: i64 = if let Some(rest) = b.strip_prefix(b"-") {
        let t = kstrtoull_digits(rest)?;
        let neg = (t as i64).wrapping_neg();
        if neg > 0 {
            return None;
        }
        neg
    } else {
        let t = kstrtoul(s)?;
        if (t as i64) < 0 {
            return None;
        }
        t as i64
    };
    i32::try_from(v).ok()
}

// ---------------------------------------------------------------------------
// Parsing
// ---------------------------------------------------------------------------

/// Splits `vecN:` off the front of `spec`, if present.
fn split_unit(spec: &str) -> Result<(u32, &str), TunnelOptError> {
    let Some(rest) = spec.strip_prefix("vec") else {
        return Ok((0, spec));
    };
    let digits = rest.bytes().take_while(u8::is_ascii_digit).count();
    if digits == 0 {
        return Ok((0, spec));
    }
    let unit = rest[..digits].parse::<u32>().map_err(|_| {
        TunnelOptError::new(format!("unit number vec{} is too large", &rest[..digits]))
    })?;
    match rest[digits..].strip_prefix(':') {
        Some(opts) => Ok((unit, opts)),
        None => Err(TunnelOptError::new(format!(
            "expected ':' after vec{unit} (the guest refuses '{spec}')"
        ))),
    }
}

/// The items of an option string, split as the guest splits them, with
/// every spelling the guest would misread refused.
fn split_items(opts: &str) -> Result<Vec<(String, String)>, TunnelOptError> {
    if opts.is_empty() {
        return Err(TunnelOptError::new("no options"));
    }
    let mut items: Vec<(String, String)> = Vec::new();
    for item in opts.split(',') {
        if item.is_empty() {
            return Err(TunnelOptError::new(
                "an empty option (two commas in a row, or a comma at an end)",
            ));
        }
        if item.chars().any(|c| c.is_whitespace() || c.is_control()) {
            return Err(TunnelOptError::new(format!(
                "'{item}' contains white space or a control character, which a kernel \
                 argument cannot"
            )));
        }
        let Some((key, value)) = item.split_once('=') else {
            return Err(TunnelOptError::new(format!(
                "'{item}' has no value (the guest ignores it; write {item}=VALUE)"
            )));
        };
        if value.contains('=') {
            return Err(TunnelOptError::new(format!(
                "'{item}' has a second '=' (the guest refuses the whole device argument)"
            )));
        }
        if key.is_empty() {
            return Err(TunnelOptError::new(format!("'{item}' has no option name")));
        }
        if value.is_empty() {
            return Err(TunnelOptError::new(format!("{key}= has an empty value")));
        }
        if items.iter().any(|(k, _)| k == key) {
            return Err(TunnelOptError::new(format!(
                "{key} is given twice (the guest would silently use the first)"
            )));
        }
        items.push((key.to_string(), value.to_string()));
    }
    Ok(items)
}

/// The options after checking names, as a lookup.
struct Items<'a>(&'a [(String, String)]);

impl Items<'_> {
    fn get(&self, key: &str) -> Option<&str> {
        self.0
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }

    /// A 0/1 flag; absent is 0.
    fn flag(&self, key: &str) -> Result<bool, TunnelOptError> {
        match self.get(key) {
            None | Some("0") => Ok(false),
            Some("1") => Ok(true),
            Some(v) => Err(TunnelOptError::new(format!(
                "{key}={v}: write {key}=0 or {key}=1 (the guest reads other spellings \
                 inconsistently or not at all)"
            ))),
        }
    }

    fn decimal(&self, key: &str) -> Result<Option<u32>, TunnelOptError> {
        match self.get(key) {
            None => Ok(None),
            Some(v) if !v.is_empty() && v.bytes().all(|c| c.is_ascii_digit()) => v
                .parse::<u32>()
                .map(Some)
                .map_err(|_| TunnelOptError::new(format!("{key}={v}: the value is too large"))),
            Some(v) => Err(TunnelOptError::new(format!(
                "{key}={v}: expected a decimal number"
            ))),
        }
    }
}

fn hint_for_unknown(kind: TunnelKind, key: &str) -> String {
    let known = kind.known().join(", ");
    let hint = match key {
        "src_port" => " (the option is srcport; the guest ignores src_port)".to_string(),
        "dst_port" => " (the option is dstport; the guest ignores dst_port)".to_string(),
        "srcport" | "dstport" | "udp" | "rx_session" | "tx_session" | "rx_cookie" | "tx_cookie"
        | "cookie64" | "counter" | "pin_counter"
            if kind == TunnelKind::Gre =>
        {
            " (an l2tpv3 option; gre has keys rx_key/tx_key and sequence numbers)".to_string()
        }
        "rx_key" | "tx_key" | "sequence" | "pin_sequence" if kind == TunnelKind::L2tpv3 => {
            " (a gre option; l2tpv3 has sessions, cookies and a counter)".to_string()
        }
        _ => String::new(),
    };
    format!(
        "unknown option {key}{hint}; {kind} options are {known}, and the guest's {}",
        GUEST_ONLY.join(", ")
    )
}

fn check_guest_only(items: &Items<'_>, max_mtu: u32) -> Result<(), TunnelOptError> {
    if let Some(mac) = items.get("mac") {
        let parts: Vec<&str> = mac.split(':').collect();
        let ok = parts.len() == 6
            && parts
                .iter()
                .all(|p| p.len() == 2 && p.bytes().all(|c| c.is_ascii_hexdigit()));
        if !ok {
            return Err(TunnelOptError::new(format!(
                "mac={mac}: expected six hex pairs such as fe:fd:0a:00:00:02 (the guest would \
                 pick a random address)"
            )));
        }
    }
    if let Some(mtu) = items.decimal("mtu")? {
        if !(576..=max_mtu).contains(&mtu) {
            let hint = if max_mtu == MAX_GUEST_MTU && mtu > max_mtu && mtu < 65535 {
                " (or give the switch --mtu)"
            } else {
                ""
            };
            return Err(TunnelOptError::new(format!(
                "mtu={mtu}: the switch forwards frames of at most {} bytes; use an mtu from \
                 576 to {max_mtu}{hint}",
                max_mtu + 14
            )));
        }
    }
    if let Some(depth) = items.decimal("depth")? {
        if !(1..=MAX_GUEST_DEPTH).contains(&depth) {
            return Err(if depth == 0 {
                TunnelOptError::new("depth=0: the guest's queues would hold no frame")
            } else {
                TunnelOptError::panic(format!(
                    "depth={depth}: the guest cannot allocate queues that deep; use a depth \
                     from 1 to {MAX_GUEST_DEPTH} (default 64)"
                ))
            });
        }
    }
    items.decimal("headroom")?;
    for key in ["gro", "vec", "bpfflash"] {
        items.flag(key)?;
    }
    Ok(())
}

/// A numeric address of the family `v6` says.
fn address(items: &Items<'_>, key: &str, v6: bool) -> Result<IpAddr, TunnelOptError> {
    let family = if v6 { "IPv6" } else { "IPv4" };
    let Some(v) = items.get(key) else {
        return Err(TunnelOptError::new(format!(
            "{key}= is missing: the {family} address the guest {}",
            if key == "src" {
                "binds (the switch sends there)"
            } else {
                "sends to (the switch binds it)"
            }
        )));
    };
    let ip: IpAddr = v.parse().map_err(|_| {
        TunnelOptError::new(format!(
            "{key}={v}: expected a numeric {family} address{}",
            if v6 { "" } else { " (or v6=1 for IPv6)" }
        ))
    })?;
    if ip.is_ipv6() != v6 {
        return Err(TunnelOptError::new(format!(
            "{key}={v}: {}",
            if v6 {
                "an IPv4 address with v6=1"
            } else {
                "an IPv6 address needs v6=1"
            }
        )));
    }
    if ip.is_unspecified() {
        return Err(TunnelOptError::new(format!(
            "{key}={v}: a tunnel needs a specific address at each end"
        )));
    }
    if ip.is_multicast() {
        return Err(TunnelOptError::new(format!(
            "{key}={v}: a multicast address cannot be a tunnel end"
        )));
    }
    Ok(ip)
}

/// A session or key: kstrtoint, with a hint for values written as
/// unsigned hex.
fn signed32(key: &str, v: &str) -> Result<u32, String> {
    if let Some(n) = kstrtoint(v) {
        return Ok(n as u32);
    }
    match kstrtoul(v) {
        Some(u) if u <= u64::from(u32::MAX) => Err(format!(
            "{key}={v}: the guest reads this as a signed 32-bit number and {v} is too large; \
             write the same bits as {key}={}",
            u as u32 as i32
        )),
        Some(_) => Err(format!("{key}={v}: more than 32 bits")),
        None => Err(format!(
            "{key}={v}: not a number (decimal, 0x hex or 0 octal, optionally negative)"
        )),
    }
}

fn parse_l2tpv3(items: &Items<'_>) -> Result<(Carrier, Encap, u16, u16), TunnelOptError> {
    let udp = items.flag("udp")?;
    let (srcport, dstport) = if udp {
        let port = |key: &str| -> Result<u16, TunnelOptError> {
            let v = items.get(key).ok_or_else(|| {
                TunnelOptError::new(format!(
                    "{key}= is missing: with udp=1 the guest needs srcport (the UDP port it \
                     binds) and dstport (the switch's port; 0 lets the switch choose one)"
                ))
            })?;
            v.parse::<u16>().map_err(|_| {
                TunnelOptError::new(format!("{key}={v}: expected a port number from 0 to 65535"))
            })
        };
        let srcport = port("srcport")?;
        if srcport == 0 {
            return Err(TunnelOptError::new(
                "srcport=0: the guest would bind a port the switch cannot know; give its port",
            ));
        }
        (srcport, port("dstport")?)
    } else {
        if let Some(key) = ["srcport", "dstport"]
            .into_iter()
            .find(|k| items.get(k).is_some())
        {
            return Err(TunnelOptError::new(format!(
                "{key}= without udp=1: L2TPv3 over IP has no ports (add udp=1 for UDP)"
            )));
        }
        (0, 0)
    };
    // Sessions: both mandatory, signed 32-bit (the guest's
    // build_l2tpv3_transport_data fails, and panics, otherwise).
    let session = |key: &str| -> Result<u32, TunnelOptError> {
        let v = items.get(key).ok_or_else(|| {
            TunnelOptError::panic(format!(
                "{key}= is missing (rx_session and tx_session are both required)"
            ))
        })?;
        signed32(key, v).map_err(TunnelOptError::panic)
    };
    let rx_session = session("rx_session")?;
    let tx_session = session("tx_session")?;
    let cookie64 = items.flag("cookie64")?;
    let (cookie, expect_cookie, send_cookie) =
        match (items.get("rx_cookie"), items.get("tx_cookie")) {
            (None, None) => (CookieLen::None, 0, 0),
            (Some(_), None) => {
                return Err(TunnelOptError::panic(
                    "rx_cookie= without tx_cookie= (give both or neither)",
                ))
            }
            (None, Some(_)) => {
                return Err(TunnelOptError::new(
                    "tx_cookie= without rx_cookie= (the guest would ignore it and send no cookie; \
                 give both or neither)",
                ))
            }
            (Some(rx), Some(tx)) => {
                let cookie = |key: &str, v: &str| -> Result<u64, TunnelOptError> {
                    let c = kstrtoul(v).ok_or_else(|| {
                        TunnelOptError::new(format!(
                            "{key}={v}: not an unsigned number (the guest would use an undefined \
                         cookie)"
                        ))
                    })?;
                    if !cookie64 && c > u64::from(u32::MAX) {
                        return Err(TunnelOptError::new(format!(
                            "{key}={v}: more than 32 bits without cookie64=1 (the guest would use \
                         only the low 32 bits)"
                        )));
                    }
                    Ok(c)
                };
                let rx = cookie("rx_cookie", rx)?;
                let tx = cookie("tx_cookie", tx)?;
                let len = if cookie64 {
                    CookieLen::Eight
                } else {
                    CookieLen::Four
                };
                (len, tx, rx)
            }
        };
    let counter = items.flag("counter")?;
    let pin_counter = items.flag("pin_counter")?;
    let params = L2tpv3Params {
        layout: L2tpv3Layout {
            udp,
            cookie,
            counter,
        },
        expect_session: tx_session,
        send_session: rx_session,
        expect_cookie,
        send_cookie,
        pin_counter,
    };
    let carrier = if udp {
        Carrier::Udp
    } else {
        Carrier::Raw(IPPROTO_L2TP)
    };
    Ok((carrier, Encap::L2tpv3(params), srcport, dstport))
}

fn parse_gre(items: &Items<'_>) -> Result<Encap, TunnelOptError> {
    let keys =
        match (items.get("rx_key"), items.get("tx_key")) {
            (None, None) => None,
            (Some(rx), tx) => {
                // An unparsable rx_key silently turns keys off in the guest;
                // a parsable one without a parsable tx_key panics it.
                let rx = signed32("rx_key", rx).map_err(|why| {
                    TunnelOptError::new(format!("{why} (the guest would silently use no key)"))
                })?;
                let tx = match tx {
                    None => {
                        return Err(TunnelOptError::panic(
                            "rx_key= without tx_key= (give both or neither)",
                        ))
                    }
                    Some(tx) => signed32("tx_key", tx).map_err(TunnelOptError::panic)?,
                };
                Some((tx, rx))
            }
            (None, Some(_)) => return Err(TunnelOptError::new(
                "tx_key= without rx_key= (the guest would ignore it and send no key; give both \
                 or neither)",
            )),
        };
    Ok(Encap::Gre(GreParams {
        keys,
        sequence: items.flag("sequence")?,
        pin_sequence: items.flag("pin_sequence")?,
    }))
}

/// Reads a tunnel port's options: the guest's options for `kind`, with or
/// without `transport=KIND` and a leading `vecN:`, for a switch that
/// forwards frames of at most 1514 bytes (`mtu=` up to 1500).
pub fn parse_tunnel(kind: TunnelKind, spec: &str) -> Result<TunnelConfig, TunnelOptError> {
    parse_tunnel_with_mtu(kind, spec, MAX_GUEST_MTU)
}

/// [`parse_tunnel`] for a switch whose MTU is `max_mtu` (`--mtu`): the
/// guest's `mtu=` may be up to that.
pub fn parse_tunnel_with_mtu(
    kind: TunnelKind,
    spec: &str,
    max_mtu: u32,
) -> Result<TunnelConfig, TunnelOptError> {
    let (unit, opts) = split_unit(spec)?;
    let mut items = split_items(opts)?;
    if let Some(i) = items.iter().position(|(k, _)| k == "transport") {
        let (_, t) = items.remove(i);
        if t != kind.name() {
            return Err(TunnelOptError::new(format!(
                "transport={t}: these are the options of a {kind} port"
            )));
        }
    }
    // transport= counts too.
    if items.len() + 1 > MAX_OPTIONS {
        return Err(TunnelOptError::new(format!(
            "{} options with transport=: the guest reads at most {MAX_OPTIONS}",
            items.len() + 1
        )));
    }
    if let Some((key, _)) = items
        .iter()
        .find(|(k, _)| !kind.known().contains(&k.as_str()) && !GUEST_ONLY.contains(&k.as_str()))
    {
        return Err(TunnelOptError::new(hint_for_unknown(kind, key)));
    }
    let view = Items(&items);
    check_guest_only(&view, max_mtu)?;
    let v6 = view.flag("v6")?;
    let src = address(&view, "src", v6)?;
    let dst = address(&view, "dst", v6)?;
    let (carrier, encap, srcport, dstport) = match kind {
        TunnelKind::L2tpv3 => parse_l2tpv3(&view)?,
        TunnelKind::Gre => (Carrier::Raw(IPPROTO_GRE), parse_gre(&view)?, 0, 0),
    };
    if src == dst && (carrier != Carrier::Udp || srcport == dstport) {
        return Err(TunnelOptError::new(match carrier {
            Carrier::Udp => format!(
                "src and dst are both {src} port {srcport}: the guest and the switch need \
                 different ports"
            ),
            Carrier::Raw(_) => format!(
                "src and dst are both {src}: over raw IP the guest and the switch each need an \
                 address of their own (e.g. 127.0.0.2 and 127.0.0.1)"
            ),
        }));
    }
    Ok(TunnelConfig {
        kind,
        unit,
        carrier,
        guest: SocketAddr::new(src, srcport),
        local: SocketAddr::new(dst, dstport),
        encap,
        items,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn l2(spec: &str) -> Result<TunnelConfig, TunnelOptError> {
        parse_tunnel(TunnelKind::L2tpv3, spec)
    }

    fn gre(spec: &str) -> Result<TunnelConfig, TunnelOptError> {
        parse_tunnel(TunnelKind::Gre, spec)
    }

    fn refused(r: Result<TunnelConfig, TunnelOptError>) -> TunnelOptError {
        match r {
            Ok(c) => panic!("accepted: {c:?}"),
            Err(e) => e,
        }
    }

    const UDP: &str = "udp=1,src=127.0.0.2,srcport=5556,dst=127.0.0.1,dstport=5555";

    #[test]
    fn kstrtoint_as_the_kernel() {
        for (s, v) in [
            ("0", Some(0)),
            ("42", Some(42)),
            ("+42", Some(42)),
            ("-1", Some(-1)),
            ("0x1234", Some(0x1234)),
            ("0X7fffffff", Some(i32::MAX)),
            ("-0x10", Some(-16)),
            ("010", Some(8)),
            ("-2147483648", Some(i32::MIN)),
            ("2147483647", Some(i32::MAX)),
            ("5\n", Some(5)),
            ("0x80000000", None),
            ("0xffffffff", None),
            ("2147483648", None),
            ("-2147483649", None),
            ("08", None),
            ("0x", None),
            ("0xg", None),
            ("", None),
            ("-", None),
            ("+", None),
            ("-+5", None),
            ("--5", None),
            ("5 ", None),
            ("5\n\n", None),
            ("abc", None),
            ("99999999999999999999999", None),
            ("-9223372036854775808", None),
            ("-18446744073709551615", None),
        ] {
            assert_eq!(kstrtoint(s), v, "{s:?}");
        }
        for (s, v) in [
            ("0x1122334455667788", Some(0x1122_3344_5566_7788u64)),
            ("0xffffffffffffffff", Some(u64::MAX)),
            ("+7", Some(7)),
            ("0xdeadbeef", Some(0xdead_beef)),
            ("-1", None),
            ("0x10000000000000000", None),
            ("cafe", None),
        ] {
            assert_eq!(kstrtoul(s), v, "{s:?}");
        }
    }

    #[test]
    fn udp_tunnel_values_are_mirrored() {
        let c = l2(&format!(
            "{UDP},rx_session=0x1234,tx_session=0x5678,cookie64=1,rx_cookie=0xcafe,\
             tx_cookie=0x1122334455667788,counter=1"
        ))
        .unwrap();
        assert_eq!(c.kind, TunnelKind::L2tpv3);
        assert_eq!(c.carrier, Carrier::Udp);
        assert_eq!(c.guest, "127.0.0.2:5556".parse().unwrap());
        assert_eq!(c.local, "127.0.0.1:5555".parse().unwrap());
        assert_eq!(
            c.encap,
            Encap::L2tpv3(L2tpv3Params {
                layout: L2tpv3Layout {
                    udp: true,
                    cookie: CookieLen::Eight,
                    counter: true
                },
                expect_session: 0x5678,
                send_session: 0x1234,
                expect_cookie: 0x1122_3344_5566_7788,
                send_cookie: 0xcafe,
                pin_counter: false,
            })
        );
        assert_eq!(
            c.guest_argument(9),
            "vec0:transport=l2tpv3,udp=1,src=127.0.0.2,srcport=5556,dst=127.0.0.1,\
             dstport=5555,rx_session=0x1234,tx_session=0x5678,cookie64=1,rx_cookie=0xcafe,\
             tx_cookie=0x1122334455667788,counter=1"
        );
    }

    #[test]
    fn the_guest_argument_round_trips_and_names_a_chosen_port() {
        let spec = "vec3:transport=l2tpv3,udp=1,src=127.0.0.2,srcport=7,dst=127.0.0.1,\
                    dstport=0,rx_session=-1,tx_session=1,mac=fe:fd:0a:00:00:02";
        let c = l2(spec).unwrap();
        assert_eq!(c.unit, 3);
        assert_eq!(c.local.port(), 0);
        let arg = c.guest_argument(40000);
        assert_eq!(arg, spec.replace("dstport=0", "dstport=40000"));
        let again = l2(&arg).unwrap();
        assert_eq!(again.local.port(), 40000);
        assert_eq!(again.encap, c.encap);
        match c.encap {
            Encap::L2tpv3(p) => assert_eq!((p.send_session, p.expect_session), (u32::MAX, 1)),
            Encap::Gre(_) => unreachable!(),
        }
        assert!(l2(&format!(
            "{UDP},rx_session=1,tx_session=2,depth=4096,mtu=576"
        ))
        .is_ok());
        // A fixed dstport is printed as given.
        let fixed = l2(&format!("{UDP},rx_session=1,tx_session=2")).unwrap();
        assert!(fixed.guest_argument(1).contains(",dstport=5555,"));
    }

    #[test]
    fn ip_mode_and_gre() {
        let c = l2(
            "src=127.0.0.2,dst=127.0.0.1,rx_session=0x1234,tx_session=0x5678,\
                    rx_cookie=0xcafef00d,tx_cookie=0xdeadbeef,counter=1,pin_counter=1",
        )
        .unwrap();
        assert_eq!(c.carrier, Carrier::Raw(115));
        assert_eq!(c.local, "127.0.0.1:0".parse().unwrap());
        match c.encap {
            Encap::L2tpv3(p) => {
                assert_eq!(p.layout.cookie, CookieLen::Four);
                assert!(!p.layout.udp && p.layout.counter && p.pin_counter);
                assert_eq!((p.expect_cookie, p.send_cookie), (0xdead_beef, 0xcafe_f00d));
            }
            Encap::Gre(_) => unreachable!(),
        }
        let g = gre(
            "transport=gre,src=127.0.0.2,dst=127.0.0.1,tx_key=0x11223344,\
                     rx_key=0x55667788,sequence=1",
        )
        .unwrap();
        assert_eq!(g.carrier, Carrier::Raw(47));
        assert_eq!(
            g.encap,
            Encap::Gre(GreParams {
                keys: Some((0x1122_3344, 0x5566_7788)),
                sequence: true,
                pin_sequence: false
            })
        );
        assert_eq!(
            g.guest_argument(0),
            "vec0:transport=gre,src=127.0.0.2,dst=127.0.0.1,tx_key=0x11223344,\
             rx_key=0x55667788,sequence=1"
        );
        let v6 = gre("v6=1,src=fd00::2,dst=fd00::1").unwrap();
        assert_eq!(v6.guest, "[fd00::2]:0".parse().unwrap());
        let plain = gre("src=10.0.0.2,dst=10.0.0.1").unwrap();
        assert_eq!(
            plain.encap,
            Encap::Gre(GreParams {
                keys: None,
                sequence: false,
                pin_sequence: false
            })
        );
    }

    #[test]
    fn combinations_that_panic_the_guest_are_refused() {
        for spec in [
            // The howto's own example.
            format!("{UDP},rx_session=0xffffffff,tx_session=1"),
            format!("{UDP},rx_session=1,tx_session=0x80000000"),
            format!("{UDP},rx_session=1"),
            format!("{UDP},tx_session=1"),
            UDP.to_string(),
            format!("{UDP},rx_session=x,tx_session=1"),
            format!("{UDP},rx_session=1,tx_session=1,rx_cookie=5"),
            format!("{UDP},rx_session=1,tx_session=1,depth=100000000"),
        ] {
            let e = refused(l2(&spec));
            assert!(e.panics_guest, "{spec}: {e}");
            assert!(e.to_string().contains("panics"), "{e}");
        }
        let e = refused(l2(&format!("{UDP},rx_session=0xffffffff,tx_session=1")));
        assert!(e.reason.contains("rx_session=-1"), "{e}");
        for spec in [
            "src=127.0.0.2,dst=127.0.0.1,rx_key=5",
            "src=127.0.0.2,dst=127.0.0.1,rx_key=5,tx_key=0xffffffff",
            "src=127.0.0.2,dst=127.0.0.1,rx_key=5,tx_key=five",
        ] {
            let e = refused(gre(spec));
            assert!(e.panics_guest, "{spec}: {e}");
        }
        let e = refused(gre(
            "src=127.0.0.2,dst=127.0.0.1,rx_key=5,tx_key=0xffffffff",
        ));
        assert!(e.reason.contains("tx_key=-1"), "{e}");
    }

    #[test]
    fn combinations_a_guest_would_misread_are_refused() {
        let ok = "rx_session=1,tx_session=2";
        for (spec, needle) in [
            (format!("{UDP},{ok},tx_cookie=5"), "ignore"),
            (format!("{UDP},{ok},rx_cookie=-1,tx_cookie=5"), "undefined"),
            (
                format!("{UDP},{ok},rx_cookie=0x100000000,tx_cookie=5"),
                "cookie64",
            ),
            (format!("{UDP},{ok},udp=1"), "twice"),
            (format!("{UDP},{ok},src_port=5"), "srcport"),
            (format!("{UDP},{ok},rx_key=5"), "gre option"),
            (format!("{UDP},{ok},counter=yes"), "counter=0 or counter=1"),
            (format!("{UDP},{ok},counter=0x1"), "counter=0 or"),
            (
                format!("udp=0x1,src=127.0.0.2,srcport=1,dst=127.0.0.1,dstport=2,{ok}"),
                "udp=0 or",
            ),
            (
                format!("{UDP},{ok},mtu=9000"),
                "1514 bytes; use an mtu from 576 to 1500 (or give",
            ),
            (format!("{UDP},{ok},depth=0"), "no frame"),
            (format!("{UDP},{ok},depth=x"), "decimal"),
            (format!("{UDP},{ok},mac=zz"), "hex pairs"),
            (format!("{UDP},{ok},"), "empty option"),
            (format!("{UDP},{ok},counter"), "no value"),
            (format!("{UDP},{ok},counter=1=1"), "second '='"),
            (format!("{UDP},{ok},counter="), "empty value"),
            (format!("{UDP},{ok},counter=1 "), "white space"),
            (format!("transport=gre,{UDP},{ok}"), "l2tpv3 port"),
            (format!("vec0={UDP},{ok}"), "':'"),
            (
                format!("udp=1,src=127.0.0.2,dst=127.0.0.1,dstport=5,{ok}"),
                "srcport= is missing",
            ),
            (
                format!("udp=1,src=127.0.0.2,srcport=0,dst=127.0.0.1,dstport=5,{ok}"),
                "srcport=0",
            ),
            (
                format!("udp=1,src=127.0.0.2,srcport=70000,dst=127.0.0.1,dstport=5,{ok}"),
                "65535",
            ),
            (
                format!("src=127.0.0.2,srcport=5,dst=127.0.0.1,{ok}"),
                "without udp=1",
            ),
            (
                format!("udp=1,srcport=5,dst=127.0.0.1,dstport=5,{ok}"),
                "src= is missing",
            ),
            (
                format!("udp=1,src=localhost,srcport=5,dst=127.0.0.1,dstport=5,{ok}"),
                "numeric",
            ),
            (
                format!("udp=1,src=::1,srcport=5,dst=::1,dstport=6,{ok}"),
                "needs v6=1",
            ),
            (
                format!("v6=1,udp=1,src=127.0.0.1,srcport=5,dst=::1,dstport=6,{ok}"),
                "with v6=1",
            ),
            (
                format!("udp=1,src=0.0.0.0,srcport=5,dst=127.0.0.1,dstport=6,{ok}"),
                "specific",
            ),
            (
                format!("udp=1,src=127.0.0.1,srcport=5,dst=127.0.0.1,dstport=5,{ok}"),
                "different ports",
            ),
            (
                format!("src=127.0.0.1,dst=127.0.0.1,{ok}"),
                "address of their own",
            ),
        ] {
            let e = refused(l2(&spec));
            assert!(!e.panics_guest, "{spec}: {e}");
            assert!(e.reason.contains(needle), "{spec}: {e}");
        }
        for (spec, needle) in [
            ("src=127.0.0.2,dst=127.0.0.1,tx_key=5", "ignore"),
            (
                "src=127.0.0.2,dst=127.0.0.1,rx_key=0x80000000,tx_key=5",
                "silently use no key",
            ),
            ("src=127.0.0.2,dst=127.0.0.1,udp=1", "l2tpv3 option"),
            ("src=127.0.0.2,dst=127.0.0.1,sequence=2", "sequence=0 or"),
            ("src=127.0.0.1,dst=127.0.0.1", "address of their own"),
            ("", "no options"),
        ] {
            let e = refused(gre(spec));
            assert!(!e.panics_guest, "{spec}: {e}");
            assert!(e.reason.contains(needle), "{spec}: {e}");
        }
        let many: String = (0..19).map(|i| format!(",mac{i}=1")).collect();
        let e = refused(gre(&format!("src=127.0.0.2,dst=127.0.0.1{many}")));
        assert!(e.reason.contains("at most 20"), "{e}");
    }

    #[test]
    fn conflicts_between_ports() {
        let a = l2(&format!("{UDP},rx_session=1,tx_session=2")).unwrap();
        let b = l2(
            "udp=1,src=127.0.0.3,srcport=1,dst=127.0.0.1,dstport=5555,rx_session=1,\
                    tx_session=2",
        )
        .unwrap();
        assert!(a.conflict(&b).is_some_and(|m| m.contains("dstport=5555")));
        let any = |p: &str| {
            l2(&format!(
                "udp=1,src=127.0.0.3,srcport=1,dst=127.0.0.1,dstport={p},rx_session=1,tx_session=2"
            ))
            .unwrap()
        };
        assert_eq!(any("0").conflict(&any("0")), None);
        let g1 = gre("src=127.0.0.2,dst=127.0.0.1").unwrap();
        let g2 = gre("src=127.0.0.3,dst=127.0.0.1").unwrap();
        let g3 = gre("src=127.0.0.2,dst=127.0.0.1,rx_key=1,tx_key=2").unwrap();
        assert_eq!(g1.conflict(&g2), None);
        assert!(g1.conflict(&g3).is_some());
        let ip = l2("src=127.0.0.2,dst=127.0.0.1,rx_session=1,tx_session=2").unwrap();
        assert_eq!(g1.conflict(&ip), None);
        assert_eq!(a.conflict(&ip), None);
    }

    #[test]
    fn a_switch_mtu_lets_guests_use_larger_frames() {
        let opts = "udp=1,src=127.0.0.2,srcport=1,dst=127.0.0.1,dstport=2,rx_session=1,\
                    tx_session=2,mtu=9000";
        assert!(parse_tunnel_with_mtu(TunnelKind::L2tpv3, opts, 9000).is_ok());
        let e = parse_tunnel_with_mtu(TunnelKind::L2tpv3, opts, 8999).unwrap_err();
        assert!(
            e.to_string()
                .contains("at most 9013 bytes; use an mtu from 576 to 8999"),
            "{e}"
        );
        assert!(!e.to_string().contains("--mtu"), "{e}");
        let e = parse_tunnel(TunnelKind::L2tpv3, opts).unwrap_err();
        assert!(e.to_string().contains("(or give the switch --mtu)"), "{e}");
    }

    #[test]
    fn arbitrary_option_strings_never_panic() {
        let pieces = [
            "src=",
            "dst=",
            "127.0.0.",
            "::",
            "udp=",
            "1",
            "0",
            "0x",
            "ffffffff",
            "-",
            ",",
            "=",
            "rx_session=",
            "tx_session=",
            "rx_cookie=",
            "tx_cookie=",
            "cookie64=",
            "rx_key=",
            "tx_key=",
            "vec",
            ":",
            "srcport=",
            "dstport=",
            "9",
            "transport=",
            "gre",
            "l2tpv3",
            "v6=",
            "mac=",
            "mtu=",
            "é",
            " ",
        ];
        let mut seed = 0x2545_f491u32;
        for _ in 0..crate::testrng::rounds(20_000) {
            let mut s = String::new();
            seed ^= seed << 13;
            seed ^= seed >> 17;
            seed ^= seed << 5;
            let n = seed % 24;
            for _ in 0..n {
                seed ^= seed << 13;
                seed ^= seed >> 17;
                seed ^= seed << 5;
                s.push_str(pieces[seed as usize % pieces.len()]);
            }
            for kind in [TunnelKind::L2tpv3, TunnelKind::Gre] {
                if let Ok(c) = parse_tunnel(kind, &s) {
                    let again = parse_tunnel(kind, &c.guest_argument(1)).unwrap();
                    assert_eq!(again.encap, c.encap);
                }
            }
            let _ = kstrtoint(&s);
            let _ = kstrtoul(&s);
        }
    }
}
