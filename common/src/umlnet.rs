//! The `uml_net` helper protocol: the argv the UML kernel passes (versions
//! 0–4), strict validation of every argument, and the reply framings
//! (`docs/uml_net.md` §2–§4, §8).

use std::fmt;
use std::net::Ipv4Addr;

/// Highest protocol version (`UML_NET_VERSION`).
pub const MAX_VERSION: u32 = 4;
/// `IFNAMSIZ`.
pub const IFNAMSIZ: usize = 16;

/// The stderr text for too few arguments.
pub const BAD_ARGUMENT_LIST: &str = "uml_net : bad argument list - if you're running uml_net by\nhand, don't bother.  uml_net is run automatically by UML when\nnecessary.\n";

/// Why an argv is refused. Each displays as the helper's message without
/// its final newline (the C helper's text where it has one). Where it is
/// reported follows from the variant: [`Parsed`] says which.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ArgError {
    /// Fewer than two arguments after the program name (stderr).
    #[error("{}", BAD_ARGUMENT_LIST.trim_end())]
    BadArgumentList,
    /// A version word that starts like a number but is not one (stderr).
    #[error("uml_net : bad version number '{}'", printable(.0))]
    BadVersion(String),
    /// A version above [`MAX_VERSION`] (stderr).
    #[error(
        "Version mismatch - requested version {0}, uml_net supports up to version {MAX_VERSION}"
    )]
    VersionMismatch(u32),
    /// Not a transport word (stdout).
    #[error("Unknown transport : '{}'", printable(.0))]
    UnknownTransport(String),
    /// The transport has no handler in this protocol version (stdout).
    #[error("No version #{0} handler for '{1}'")]
    NoHandler(u32, String),
    /// Too few arguments for a request: `add`, `del`, `tuntap_v4`,
    /// `tuntap change_addr` or `slip_v4` (framed).
    #[error("uml_net : too few arguments to {0}")]
    TooFewArguments(&'static str),
    /// Too few arguments to `ethertap` (framed; C's capital T).
    #[error("uml_net : Too few arguments to ethertap_v4")]
    TooFewEthertap,
    /// Too few arguments to `tuntap up` (framed).
    #[error("Too few arguments to tuntap_up")]
    TooFewTuntapUp,
    /// A `tuntap` operation other than `up`, `add`, `del` (framed).
    #[error("Bad tuntap op : '{}'", printable(.0))]
    BadTuntapOp(String),
    /// A `slip` operation other than `up`, `down` (framed).
    #[error("slip - Unknown op '{}'", printable(.0))]
    BadSlipOp(String),
    /// An interface name that is empty or too long (framed).
    #[error(
        "Bad interface name '{}': it must be 1 to {} characters long",
        printable(.0),
        IFNAMSIZ - 1
    )]
    IfNameLength(String),
    /// An interface name with other characters than letters and digits
    /// (framed; C's text).
    #[error("Device doesn't contain only alphanumeric characters")]
    IfNameCharacters,
    /// Not a dotted-quad address; `what` says which argument (framed).
    #[error("Bad {what} '{}': expected a dotted-quad IPv4 address", printable(.text))]
    Address {
        /// `address`, `netmask`, `gateway address`, ...
        what: &'static str,
        /// The argument.
        text: String,
    },
    /// A netmask whose one bits are not contiguous (framed).
    #[error("Bad netmask '{}': the one bits must be contiguous", printable(.0))]
    NetmaskHoles(String),
    /// Not a descriptor number (framed).
    #[error("Bad file descriptor '{}'", printable(.0))]
    Fd(String),
}

/// A validated interface name: 1–15 ASCII letters and digits (the C
/// helper's `isalnum` rule, plus the kernel's length limit).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct IfName(String);

impl IfName {
    /// Validates `name`.
    pub fn parse(name: &str) -> Result<IfName, ArgError> {
        if name.is_empty() || name.len() >= IFNAMSIZ {
            return Err(ArgError::IfNameLength(name.to_string()));
        }
        if !name.bytes().all(|b| b.is_ascii_alphanumeric()) {
            return Err(ArgError::IfNameCharacters);
        }
        Ok(IfName(name.to_string()))
    }

    /// The name.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// `ifr_name`: the name NUL-padded to 16 bytes.
    pub fn ifr_name(&self) -> [u8; IFNAMSIZ] {
        let mut b = [0u8; IFNAMSIZ];
        b[..self.0.len()].copy_from_slice(self.0.as_bytes());
        b
    }
}

impl fmt::Display for IfName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// Shows hostile input safely in one line: control characters escaped,
/// cut to 64 characters.
pub fn printable(s: &str) -> String {
    let mut out = String::new();
    for c in s.chars().take(64) {
        if c.is_control() {
            out.push_str(&c.escape_default().to_string());
        } else {
            out.push(c);
        }
    }
    if s.chars().count() > 64 {
        out.push_str("...");
    }
    out
}

/// Parses a strict dotted quad: exactly four decimal numbers 0–255, no
/// signs, spaces, leading `0x` or empty parts (the kernel prints
/// `%d.%d.%d.%d`).
pub fn parse_ipv4(s: &str, what: &'static str) -> Result<Ipv4Addr, ArgError> {
    let bad = || ArgError::Address {
        what,
        text: s.to_string(),
    };
    let parts: Vec<&str> = s.split('.').collect();
    if parts.len() != 4 {
        return Err(bad());
    }
    let mut b = [0u8; 4];
    for (i, p) in parts.iter().enumerate() {
        if p.is_empty() || p.len() > 3 || !p.bytes().all(|c| c.is_ascii_digit()) {
            return Err(bad());
        }
        b[i] = p.parse::<u8>().map_err(|_| bad())?;
    }
    Ok(Ipv4Addr::from(b))
}

/// Parses a contiguous netmask (ones then zeros) and returns it with its
/// prefix length.
pub fn parse_netmask(s: &str) -> Result<(Ipv4Addr, u8), ArgError> {
    let mask = parse_ipv4(s, "netmask")?;
    let bits = u32::from(mask);
    let prefix = bits.leading_ones();
    if bits.checked_shl(prefix).unwrap_or(0) != 0 {
        return Err(ArgError::NetmaskHoles(s.to_string()));
    }
    Ok((mask, prefix as u8))
}

/// `strtoul(s, &end, 0)` as the C helper parses the version: `None` when
/// `s` does not start with a number (the v0 form). Trailing junk is
/// refused (`Some(Err)`), unlike C.
pub fn parse_version(s: &str) -> Option<Result<u32, ArgError>> {
    let t = s.trim_start();
    let first = t.bytes().next()?;
    let digits_start = if first == b'+' { 1 } else { 0 };
    if !t[digits_start..]
        .bytes()
        .next()
        .is_some_and(|b| b.is_ascii_digit())
    {
        return None;
    }
    let body = &t[digits_start..];
    let (radix, digits) =
        if let Some(h) = body.strip_prefix("0x").or_else(|| body.strip_prefix("0X")) {
            (16, h)
        } else if body.len() > 1 && body.starts_with('0') {
            (8, &body[1..])
        } else {
            (10, body)
        };
    Some(u32::from_str_radix(digits, radix).map_err(|_| ArgError::BadVersion(s.to_string())))
}

/// A file descriptor number given on the command line.
pub fn parse_fd(s: &str) -> Result<i32, ArgError> {
    match s.parse::<i32>() {
        Ok(fd) if fd >= 0 && s.bytes().all(|b| b.is_ascii_digit()) => Ok(fd),
        _ => Err(ArgError::Fd(s.to_string())),
    }
}

/// Which transport.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Transport {
    /// `ethertap`.
    Ethertap,
    /// `slip`.
    Slip,
    /// `tuntap`.
    Tuntap,
    /// `add`.
    Add,
    /// `del`.
    Del,
}

/// Every transport word [`parse_argv`] knows, with its transport: the
/// parser looks the word up here, so it knows no other. (`uml_net` has no
/// options; packaging's tests check that these are the transports of its
/// description, `uml_net/src/command.rs`.)
pub const TRANSPORTS: &[(&str, Transport)] = &[
    ("ethertap", Transport::Ethertap),
    ("slip", Transport::Slip),
    ("tuntap", Transport::Tuntap),
    ("add", Transport::Add),
    ("del", Transport::Del),
];

impl Transport {
    fn from_word(w: &str) -> Option<Transport> {
        TRANSPORTS
            .iter()
            .find(|(word, _)| *word == w)
            .map(|&(_, transport)| transport)
    }

    /// Whether the C helper has a handler for this transport and version.
    pub fn has_handler(self, version: u32) -> bool {
        match self {
            Transport::Ethertap | Transport::Slip => version <= 4,
            Transport::Tuntap => (2..=4).contains(&version),
            Transport::Add | Transport::Del => version == 4,
        }
    }

    /// How replies and errors of this transport are framed.
    pub fn framing(self) -> Framing {
        match self {
            Transport::Tuntap => Framing::TuntapDatagram,
            Transport::Ethertap => Framing::StatusThenLength,
            _ => Framing::LengthPrefixed,
        }
    }
}

/// Reply framings (`docs/uml_net.md` §3, §4).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Framing {
    /// One datagram: 16-byte name (success only) + text + NUL, fd attached
    /// on success.
    TuntapDatagram,
    /// 4-byte host-order length (text + NUL), then the bytes.
    LengthPrefixed,
    /// A status byte (1 ok, 0 failed), then length-prefixed text.
    StatusThenLength,
}

/// A fully validated request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Request {
    /// `tuntap up [GATE]`: create a tap, give it GATE/32, reply with its fd
    /// on `reply_fd` (1, or the fd given in v2).
    TuntapUp {
        /// Gateway address for the host side.
        gate: Option<Ipv4Addr>,
        /// Where to send the reply datagram.
        reply_fd: i32,
    },
    /// `add`/`del` (also `tuntap add|del`): host route and proxy ARP for
    /// ADDR on DEV.
    Address {
        /// Add (true) or delete.
        add: bool,
        /// The tap.
        dev: IfName,
        /// The guest's address.
        addr: Ipv4Addr,
        /// Its netmask and prefix length.
        mask: (Ipv4Addr, u8),
    },
    /// `ethertap DEV FD [GATE]`.
    Ethertap {
        /// The ethertap device.
        dev: IfName,
        /// The data socket inherited from the kernel.
        data_fd: i32,
        /// Gateway address.
        gate: Option<Ipv4Addr>,
    },
    /// `slip up GATE` (stdin is the pty).
    SlipUp {
        /// Gateway address.
        gate: Ipv4Addr,
    },
    /// `slip down NAME` (the name is ignored; the pty on stdin decides).
    SlipDown,
}

/// What the parser decided.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Parsed {
    /// Run this.
    Run {
        /// Protocol version used.
        version: u32,
        /// The transport (for framing).
        transport: Transport,
        /// The request.
        request: Request,
    },
    /// Print the error on stderr (nothing framed).
    Stderr(ArgError),
    /// Print the error on stdout (nothing framed).
    Stdout(ArgError),
    /// Refuse with the error, framed for `transport` (and `reply_fd` for
    /// tuntap).
    Refuse {
        /// Transport, for the framing.
        transport: Transport,
        /// Where a tuntap reply goes.
        reply_fd: i32,
        /// The reason.
        error: ArgError,
    },
}

/// Parses and validates the whole argv (including argv[0]).
pub fn parse_argv(argv: &[String]) -> Parsed {
    if argv.len() < 3 {
        return Parsed::Stderr(ArgError::BadArgumentList);
    }
    let (version, transport_word, args) = match parse_version(&argv[1]) {
        None => (0, argv[1].as_str(), &argv[2..]),
        Some(Err(e)) => return Parsed::Stderr(e),
        Some(Ok(v)) => (v, argv[2].as_str(), &argv[3..]),
    };
    if version > MAX_VERSION {
        return Parsed::Stderr(ArgError::VersionMismatch(version));
    }
    let Some(transport) = Transport::from_word(transport_word) else {
        return Parsed::Stdout(ArgError::UnknownTransport(transport_word.to_string()));
    };
    if !transport.has_handler(version) {
        return Parsed::Stdout(ArgError::NoHandler(version, transport_word.to_string()));
    }
    let result = match transport {
        Transport::Tuntap => parse_tuntap(version, args),
        Transport::Add | Transport::Del => {
            let add = transport == Transport::Add;
            if args.len() < 3 {
                Err((
                    ArgError::TooFewArguments(if add { "add" } else { "del" }),
                    1,
                ))
            } else {
                parse_address(add, &args[0], &args[1], &args[2]).map_err(|e| (e, 1))
            }
        }
        Transport::Ethertap => parse_ethertap(args).map_err(|e| (e, 1)),
        Transport::Slip => parse_slip(args).map_err(|e| (e, 1)),
    };
    match result {
        Ok(request) => Parsed::Run {
            version,
            transport,
            request,
        },
        Err((error, reply_fd)) => Parsed::Refuse {
            transport,
            reply_fd,
            error,
        },
    }
}

fn parse_address(add: bool, dev: &str, addr: &str, mask: &str) -> Result<Request, ArgError> {
    let dev = IfName::parse(dev)?;
    let addr = parse_ipv4(addr, "address")?;
    let mask = parse_netmask(mask)?;
    Ok(Request::Address {
        add,
        dev,
        addr,
        mask,
    })
}

fn parse_tuntap(version: u32, args: &[String]) -> Result<Request, (ArgError, i32)> {
    let Some(op) = args.first() else {
        return Err((ArgError::TooFewArguments("tuntap_v4"), 1));
    };
    match op.as_str() {
        "up" => {
            // v4: up [GATE]; v3: up FD GATE (fd ignored); v2: up x FD GATE.
            let (reply_fd, gate) = match version {
                2 => {
                    let fd = match args.get(2) {
                        Some(f) => parse_fd(f).map_err(|e| (e, 1))?,
                        None => return Err((ArgError::TooFewTuntapUp, 1)),
                    };
                    (fd, args.get(3))
                }
                3 => (1, args.get(2)),
                _ => (1, args.get(1)),
            };
            let Some(gate) = gate else {
                return Err((ArgError::TooFewTuntapUp, reply_fd));
            };
            let gate = if gate.is_empty() {
                None
            } else {
                Some(parse_ipv4(gate, "gateway address").map_err(|e| (e, reply_fd))?)
            };
            Ok(Request::TuntapUp { gate, reply_fd })
        }
        "add" | "del" => {
            if args.len() < 4 {
                return Err((ArgError::TooFewArguments("tuntap change_addr"), 1));
            }
            parse_address(op == "add", &args[1], &args[2], &args[3]).map_err(|e| (e, 1))
        }
        other => Err((ArgError::BadTuntapOp(other.to_string()), 1)),
    }
}

fn parse_ethertap(args: &[String]) -> Result<Request, ArgError> {
    if args.len() < 2 {
        return Err(ArgError::TooFewEthertap);
    }
    let dev = IfName::parse(&args[0])?;
    let data_fd = parse_fd(&args[1])?;
    let gate = match args.get(2) {
        Some(g) if !g.is_empty() => Some(parse_ipv4(g, "gateway address")?),
        _ => None,
    };
    Ok(Request::Ethertap { dev, data_fd, gate })
}

fn parse_slip(args: &[String]) -> Result<Request, ArgError> {
    if args.len() < 2 {
        return Err(ArgError::TooFewArguments("slip_v4"));
    }
    match args[0].as_str() {
        "up" => Ok(Request::SlipUp {
            gate: parse_ipv4(&args[1], "gateway address")?,
        }),
        "down" => Ok(Request::SlipDown),
        other => Err(ArgError::BadSlipOp(other.to_string())),
    }
}

/// The length-prefixed output (`docs/uml_net.md` §3): host-order i32 `used`
/// (text + NUL, or 0 for no text), then the text and its NUL.
pub fn length_prefixed(text: &str) -> Vec<u8> {
    if text.is_empty() {
        return 0i32.to_ne_bytes().to_vec();
    }
    let used = text.len() + 1;
    let mut out = Vec::with_capacity(4 + used);
    out.extend_from_slice(&(used as i32).to_ne_bytes());
    out.extend_from_slice(text.as_bytes());
    out.push(0);
    out
}

/// The data of the `tuntap up` reply datagram: on success the 16-byte
/// interface name, then the text and a NUL; on failure only text + NUL.
pub fn tuntap_reply(name: Option<&IfName>, text: &str) -> Vec<u8> {
    let mut out = Vec::with_capacity(IFNAMSIZ + text.len() + 1);
    if let Some(n) = name {
        out.extend_from_slice(&n.ifr_name());
    }
    out.extend_from_slice(text.as_bytes());
    out.push(0);
    out
}

/// The ethertap address-change request (kernel → helper, 12 bytes).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EthertapChange {
    /// Add (true) or delete.
    pub add: bool,
    /// Address.
    pub addr: Ipv4Addr,
    /// Netmask.
    pub netmask: Ipv4Addr,
}

/// Decodes the 12-byte ethertap change request. Kept for vector N4 of
/// `docs/uml_net.md` only: `uml_net` no longer serves ethertap (the host
/// kernel has no ethertap driver), so nothing reads this request.
pub fn decode_ethertap_change(b: &[u8]) -> Option<EthertapChange> {
    let b: &[u8; 12] = b.get(..12)?.try_into().ok()?;
    let what = i32::from_ne_bytes([b[0], b[1], b[2], b[3]]);
    Some(EthertapChange {
        add: what == 0,
        addr: Ipv4Addr::new(b[4], b[5], b[6], b[7]),
        netmask: Ipv4Addr::new(b[8], b[9], b[10], b[11]),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn argv(s: &str) -> Vec<String> {
        s.split(' ').map(String::from).collect()
    }

    #[test]
    fn n1_n2_length_prefixed() {
        // N1 (`docs/uml_net.md` §8): 35 characters and used = 36 (0x24),
        // i.e. the text without a trailing newline.
        let text = "* route add -host 10.0.0.2 dev tap0";
        assert_eq!(text.len(), 35);
        let out = length_prefixed(text);
        assert_eq!(&out[..4], &[0x24, 0, 0, 0]);
        assert_eq!(&out[4..39], text.as_bytes());
        assert_eq!(out[39], 0);
        assert_eq!(out.len(), 40);
        assert_eq!(length_prefixed(""), vec![0, 0, 0, 0]);
    }

    #[test]
    fn n3_tuntap_reply() {
        let name = IfName::parse("tap0").unwrap();
        let out = tuntap_reply(Some(&name), "T\n");
        let mut expected = vec![0x74, 0x61, 0x70, 0x30];
        expected.extend_from_slice(&[0; 12]);
        expected.extend_from_slice(&[0x54, 0x0a, 0x00]);
        assert_eq!(out, expected);
        assert_eq!(out.len(), 19);
        assert_eq!(tuntap_reply(None, "x\n"), b"x\n\0");
    }

    #[test]
    fn n4_ethertap_change() {
        let c = decode_ethertap_change(&[0, 0, 0, 0, 0x0a, 0, 0, 5, 0xff, 0xff, 0xff, 0]).unwrap();
        assert_eq!(
            c,
            EthertapChange {
                add: true,
                addr: Ipv4Addr::new(10, 0, 0, 5),
                netmask: Ipv4Addr::new(255, 255, 255, 0)
            }
        );
        assert_eq!(decode_ethertap_change(&[0; 11]), None);
    }

    #[test]
    fn n5_n6_kernel_argv() {
        assert_eq!(
            parse_argv(&argv("uml_net 4 tuntap up 192.168.0.254")),
            Parsed::Run {
                version: 4,
                transport: Transport::Tuntap,
                request: Request::TuntapUp {
                    gate: Some(Ipv4Addr::new(192, 168, 0, 254)),
                    reply_fd: 1
                }
            }
        );
        assert_eq!(
            parse_argv(&argv("uml_net 4 add tap0 192.168.0.1 255.255.255.0")),
            Parsed::Run {
                version: 4,
                transport: Transport::Add,
                request: Request::Address {
                    add: true,
                    dev: IfName::parse("tap0").unwrap(),
                    addr: Ipv4Addr::new(192, 168, 0, 1),
                    mask: (Ipv4Addr::new(255, 255, 255, 0), 24)
                }
            }
        );
        assert!(matches!(
            parse_argv(&argv("uml_net 4 del tap0 10.0.0.1 255.255.255.0")),
            Parsed::Run {
                request: Request::Address { add: false, .. },
                ..
            }
        ));
        assert!(matches!(
            parse_argv(&argv("uml_net 4 slip up 10.0.0.254")),
            Parsed::Run {
                request: Request::SlipUp { .. },
                ..
            }
        ));
        assert!(matches!(
            parse_argv(&argv("uml_net 4 ethertap tap0 27 10.0.0.254")),
            Parsed::Run {
                request: Request::Ethertap { data_fd: 27, .. },
                ..
            }
        ));
        // Older forms.
        assert!(matches!(
            parse_argv(&argv("uml_net 3 tuntap up 5 10.0.0.254")),
            Parsed::Run {
                request: Request::TuntapUp { reply_fd: 1, .. },
                ..
            }
        ));
        assert!(matches!(
            parse_argv(&argv("uml_net 2 tuntap up x 7 10.0.0.254")),
            Parsed::Run {
                request: Request::TuntapUp { reply_fd: 7, .. },
                ..
            }
        ));
        assert!(matches!(
            parse_argv(&argv("uml_net 0x4 tuntap up 10.0.0.254")),
            Parsed::Run { version: 4, .. }
        ));
        assert!(matches!(
            parse_argv(&argv("uml_net 04 tuntap up 10.0.0.254")),
            Parsed::Run { version: 4, .. }
        ));
        // v0: no version word.
        assert!(matches!(
            parse_argv(&argv("uml_net slip up 10.0.0.254")),
            Parsed::Run { version: 0, .. }
        ));
    }

    /// The message of a refused or unframed argv, newline added.
    fn text(parsed: Parsed) -> String {
        match parsed {
            Parsed::Stderr(e) | Parsed::Stdout(e) | Parsed::Refuse { error: e, .. } => {
                format!("{e}\n")
            }
            Parsed::Run { .. } => panic!("{parsed:?} is not refused"),
        }
    }

    #[test]
    fn c_messages() {
        assert_eq!(
            parse_argv(&argv("uml_net 4")),
            Parsed::Stderr(ArgError::BadArgumentList)
        );
        assert_eq!(text(parse_argv(&argv("uml_net 4"))), BAD_ARGUMENT_LIST);
        assert_eq!(
            parse_argv(&argv("uml_net 5 tuntap up")),
            Parsed::Stderr(ArgError::VersionMismatch(5))
        );
        assert_eq!(
            text(parse_argv(&argv("uml_net 5 tuntap up"))),
            "Version mismatch - requested version 5, uml_net supports up to version 4\n"
        );
        assert!(matches!(
            parse_argv(&argv("uml_net 4 frob x")),
            Parsed::Stdout(ArgError::UnknownTransport(_))
        ));
        assert_eq!(
            text(parse_argv(&argv("uml_net 4 frob x"))),
            "Unknown transport : 'frob'\n"
        );
        assert!(matches!(
            parse_argv(&argv("uml_net 3 add tap0 1.2.3.4 255.0.0.0")),
            Parsed::Stdout(ArgError::NoHandler(3, _))
        ));
        assert_eq!(
            text(parse_argv(&argv("uml_net 3 add tap0 1.2.3.4 255.0.0.0"))),
            "No version #3 handler for 'add'\n"
        );
        assert_eq!(
            text(parse_argv(&argv("uml_net tuntap up 1.2.3.4"))),
            "No version #0 handler for 'tuntap'\n"
        );
        for (args, want) in [
            (
                "uml_net 4x tuntap up",
                "uml_net : bad version number '4x'\n",
            ),
            ("uml_net 4 tuntap up", "Too few arguments to tuntap_up\n"),
            ("uml_net 4 tuntap frob", "Bad tuntap op : 'frob'\n"),
            (
                "uml_net 4 tuntap",
                "uml_net : too few arguments to tuntap_v4\n",
            ),
            (
                "uml_net 4 tuntap add tap0",
                "uml_net : too few arguments to tuntap change_addr\n",
            ),
            ("uml_net 4 add tap0", "uml_net : too few arguments to add\n"),
            ("uml_net 4 del tap0", "uml_net : too few arguments to del\n"),
            (
                "uml_net 4 ethertap",
                "uml_net : Too few arguments to ethertap_v4\n",
            ),
            (
                "uml_net 4 slip up",
                "uml_net : too few arguments to slip_v4\n",
            ),
            (
                "uml_net 4 slip sideways x",
                "slip - Unknown op 'sideways'\n",
            ),
            (
                "uml_net 4 add abcdefghijklmnop 10.0.0.1 255.255.255.0",
                "Bad interface name 'abcdefghijklmnop': it must be 1 to 15 characters long\n",
            ),
            (
                "uml_net 4 add tap0 10.0.0 255.255.255.0",
                "Bad address '10.0.0': expected a dotted-quad IPv4 address\n",
            ),
            (
                "uml_net 4 add tap0 10.0.0.1 255.0.255.0",
                "Bad netmask '255.0.255.0': the one bits must be contiguous\n",
            ),
            ("uml_net 4 ethertap tap0 3x", "Bad file descriptor '3x'\n"),
            (
                "uml_net 4 tuntap up 1.2.3",
                "Bad gateway address '1.2.3': expected a dotted-quad IPv4 address\n",
            ),
        ] {
            assert_eq!(text(parse_argv(&argv(args))), want, "{args}");
        }
    }

    #[test]
    fn hostile_arguments_are_refused() {
        for bad in [
            "uml_net 4 add tap0;reboot 10.0.0.1 255.255.255.0",
            "uml_net 4 add $(id) 10.0.0.1 255.255.255.0",
            "uml_net 4 add tap0 -net 255.255.255.0",
            "uml_net 4 add tap0 10.0.0.1 -netmask",
            "uml_net 4 add tap0 10.0.0.256 255.255.255.0",
            "uml_net 4 add tap0 10.0.0 255.255.255.0",
            "uml_net 4 add tap0 10.0.0.1.2 255.255.255.0",
            "uml_net 4 add tap0 010.0.0.1x 255.255.255.0",
            "uml_net 4 add tap0 10.0.0.1 255.0.255.0",
            "uml_net 4 add abcdefghijklmnop 10.0.0.1 255.255.255.0",
            "uml_net 4 add ../x 10.0.0.1 255.255.255.0",
            "uml_net 4 add tap0 10.0.0.1",
            "uml_net 4 tuntap up -1",
            "uml_net 4 tuntap up 1.2.3.4;id",
            "uml_net 4 ethertap tap0 -3 10.0.0.1",
            "uml_net 4 ethertap tap0 3x 10.0.0.1",
            "uml_net 4x tuntap up 1.2.3.4",
        ] {
            let p = parse_argv(&argv(bad));
            assert!(
                matches!(
                    p,
                    Parsed::Refuse { .. } | Parsed::Stderr(_) | Parsed::Stdout(_)
                ),
                "{bad}: {p:?}"
            );
        }
        assert_eq!(
            parse_argv(&argv("uml_net 4 add tap;0 10.0.0.1 255.255.255.0")),
            Parsed::Refuse {
                transport: Transport::Add,
                reply_fd: 1,
                error: ArgError::IfNameCharacters,
            }
        );
    }

    #[test]
    fn netmasks() {
        assert_eq!(parse_netmask("255.255.255.0").unwrap().1, 24);
        assert_eq!(parse_netmask("255.255.255.255").unwrap().1, 32);
        assert_eq!(parse_netmask("0.0.0.0").unwrap().1, 0);
        assert_eq!(parse_netmask("255.0.0.0").unwrap().1, 8);
        assert!(parse_netmask("255.255.0.255").is_err());
        assert!(parse_netmask("0.255.255.255").is_err());
    }

    #[test]
    fn never_panics_on_odd_input() {
        for s in ["", "+", "0x", "0xZZ", "99999999999999", " 4", "-1", "٤"] {
            let _ = parse_version(s);
            let _ = parse_ipv4(s, "x");
            let _ = parse_fd(s);
            let _ = IfName::parse(s);
            let _ = parse_argv(&[String::new(), s.to_string(), "tuntap".into(), s.to_string()]);
        }
    }
}
