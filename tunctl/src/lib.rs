//! `tunctl`: create and delete persistent TUN/TAP devices, a drop-in
//! replacement for Debian's `tunctl` (uml-utilities 20070815.4-1).
//!
//! The command line, the messages, the order of the ioctls and the exit
//! statuses are those of Debian's binary (`docs/tunctl.md`): getopt option
//! string `bd:f:t:u:g:`, owner and group by name then by number (`strtol`
//! base 0), `TUNSETPERSIST` before `TUNSETOWNER` and `TUNSETGROUP`, and
//! the `TUNSETPERSIST` perror text for all three. New: `-n` makes a TUN
//! device (`IFF_TUN`, IP packets), `-p` a TAP device (the default),
//! `--vnet-hdr` and `--multi-queue` add `IFF_VNET_HDR` and
//! `IFF_MULTI_QUEUE` (as `ip tuntap add` does), `--list` lists the TUN/TAP
//! devices in `ip tuntap show`'s format and `--help` prints the usage text
//! with these options. Long options are recognised only as whole
//! arguments, so every other command line means what it means to Debian's
//! getopt.
//!
//! [`parse`] turns argv into a [`Config`], [`execute`] makes the kernel
//! calls and returns what to print; [`uumain`] ties them to the process.

#![forbid(unsafe_code)]

pub mod getopt;

use std::ffi::{OsStr, OsString};
use std::io::{self, Write};
use std::os::unix::ffi::OsStrExt;
use std::path::PathBuf;

use uml_common::cli::strerror;
use uml_common::sys::nss;
use uml_common::sys::tun::{self, Features, Listed, Mode, TunDevice, TunError};

use crate::getopt::{Event, Getopt};

/// Debian's option string plus the new `-n` (TUN) and `-p` (TAP).
pub const OPTSTRING: &[u8] = b"bd:f:t:u:g:np";

/// The new long options (none takes a value): `--vnet-hdr`,
/// `--multi-queue`, `--list`, `--help`.
pub const LONG_OPTIONS: &[&[u8]] = &[b"vnet-hdr", b"multi-queue", b"list", b"help"];

/// What `--help` adds after Debian's usage text.
const HELP_EXTRA: &[&str] = &[
    "",
    "New in this tunctl (not in Debian's):",
    "-n              make a TUN device (IP packets); -p a TAP device (the default)",
    "--vnet-hdr      set IFF_VNET_HDR: frames carry a virtio-net header",
    "--multi-queue   make a multi-queue device (IFF_MULTI_QUEUE); such a device is",
    "                taken over and deleted only with --multi-queue as well",
    "--list          list the TUN/TAP devices with their flags, owner and group,",
    "                as ip tuntap show does (with -b: just the names)",
    "--help          print this text",
    "",
    "A tap for a Linux 7.x guest (vecN:transport=tap,ifname=NAME) needs neither:",
    "the guest asks for virtio-net headers itself, and it cannot attach to a",
    "multi-queue device.",
];

/// The `--help` text: Debian's usage text for `argv0`, then the new
/// options.
pub fn help(argv0: &[u8]) -> Vec<u8> {
    let mut out = usage(argv0);
    for line in HELP_EXTRA {
        out.extend_from_slice(line.as_bytes());
        out.push(b'\n');
    }
    out
}

/// Debian's usage text; `%s` is `argv[0]`.
const USAGE: &str =
    "Create: %s [-b] [-u owner] [-g group] [-t device-name] [-f tun-clone-device]\n\
Delete: %s -d device-name [-f tun-clone-device]\n\
\n\
The default tun clone device is /dev/net/tun - some systems use\n\
/dev/misc/net/tun instead\n\
\n\
-b will result in brief output (just the device name)\n";

/// The usage text for program name `argv0`.
pub fn usage(argv0: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    for (i, piece) in USAGE.split("%s").enumerate() {
        if i > 0 {
            out.extend_from_slice(argv0);
        }
        out.extend_from_slice(piece.as_bytes());
    }
    out
}

/// What to do, from the command line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Config {
    /// `-b`: print only the device name (create only).
    pub brief: bool,
    /// `-d`: make the device non-persistent.
    pub delete: bool,
    /// `-t`/`-d`: the requested name as given (empty: the kernel chooses).
    pub name: Vec<u8>,
    /// `-f`: the clone device.
    pub clone_device: PathBuf,
    /// `-u`: the owner, `None` when not given (or given as `(uid_t)-1`).
    pub owner: Option<u32>,
    /// `-g`: the group, `None` when not given (or given as `(gid_t)-1`).
    pub group: Option<u32>,
    /// `-n` / `-p`: TUN or TAP (default).
    pub mode: Mode,
    /// `--vnet-hdr`, `--multi-queue`.
    pub features: Features,
    /// What to do: create or delete (the default), list, or print help.
    pub action: Action,
}

/// What `tunctl` was asked to do besides creating or deleting.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Action {
    /// Create, or delete with `-d` (Debian's behaviour).
    #[default]
    Change,
    /// `--list`.
    List,
    /// `--help`.
    Help,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            brief: false,
            delete: false,
            name: Vec::new(),
            clone_device: PathBuf::from(tun::DEFAULT_CLONE_DEVICE),
            owner: None,
            group: None,
            mode: Mode::Tap,
            features: Features::default(),
            action: Action::Change,
        }
    }
}

/// User and group names → ids (`getpwnam` / `getgrnam`).
pub trait Accounts {
    /// The uid of user `name`, `None` when there is no such user.
    fn uid_of(&self, name: &[u8]) -> Option<u32>;
    /// The gid of group `name`, `None` when there is no such group.
    fn gid_of(&self, name: &[u8]) -> Option<u32>;
}

/// The system's user and group databases, through the C library's name
/// services as `/etc/nsswitch.conf` configures them (`tunctl` is linked
/// dynamically for this; see `uml_common::sys::nss`). Names are looked up
/// as bytes, as C's `getpwnam` does.
#[derive(Debug, Clone, Copy, Default)]
pub struct SystemAccounts;

impl Accounts for SystemAccounts {
    fn uid_of(&self, name: &[u8]) -> Option<u32> {
        nss::user_by_name(name).map(|u| u.uid)
    }

    fn gid_of(&self, name: &[u8]) -> Option<u32> {
        nss::group_by_name(name)
    }
}

/// Why `tunctl` stops; each prints what Debian's binary prints.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// An operand was given: usage only.
    #[error("unexpected operand")]
    Usage,
    /// getopt: unknown option character; then usage.
    #[error("invalid option -- '{}'", char::from(*.0))]
    InvalidOption(u8),
    /// getopt: `-d`, `-f`, `-t`, `-u` or `-g` without a value; then usage.
    #[error("option requires an argument -- '{}'", char::from(*.0))]
    MissingArgument(u8),
    /// `-u` that is neither a user nor a number; then usage.
    #[error("'{}' is neither a username nor a numeric uid.", String::from_utf8_lossy(.0))]
    NotAUser(Vec<u8>),
    /// `-g` that is neither a group nor a number; then usage.
    #[error("'{}' is neither a groupname nor a numeric group.", String::from_utf8_lossy(.0))]
    NotAGroup(Vec<u8>),
    /// The clone device cannot be opened.
    #[error("Failed to open '{}' : {}", .path.display(), strerror(.source))]
    Open {
        /// The `-f` path.
        path: PathBuf,
        /// Why.
        source: io::Error,
    },
    /// `TUNSETIFF` failed.
    #[error("TUNSETIFF: {}", strerror(.0))]
    SetIff(io::Error),
    /// `TUNSETPERSIST` failed.
    #[error("TUNSETPERSIST: {}", strerror(.0))]
    Persist(io::Error),
    /// `TUNSETOWNER` failed (Debian prints the `TUNSETPERSIST` text).
    #[error("TUNSETPERSIST: {}", strerror(.0))]
    Owner(io::Error),
    /// `TUNSETGROUP` failed (Debian prints the `TUNSETPERSIST` text).
    #[error("TUNSETPERSIST: {}", strerror(.0))]
    Group(io::Error),
    /// `--list` with an option that creates or deletes.
    #[error("--list cannot be combined with {0}; it takes only -b")]
    ListWith(&'static str),
    /// The sysfs directory of network devices cannot be read.
    #[error("cannot read {}: {}", tun::SYSFS_NET, strerror(.0))]
    List(io::Error),
}

impl Error {
    /// Everything Debian's `tunctl` writes to stderr for this error, byte
    /// for byte, with program name `argv0`.
    pub fn stderr_text(&self, argv0: &[u8]) -> Vec<u8> {
        let mut out = Vec::new();
        match self {
            Error::Usage => {}
            Error::InvalidOption(c) => {
                out = Event::Invalid(*c).error_message(argv0).unwrap_or_default()
            }
            Error::MissingArgument(c) => {
                out = Event::MissingArgument(*c)
                    .error_message(argv0)
                    .unwrap_or_default();
            }
            Error::NotAUser(arg) => {
                quoted(
                    &mut out,
                    arg,
                    b" is neither a username nor a numeric uid.\n",
                );
            }
            Error::NotAGroup(arg) => {
                quoted(
                    &mut out,
                    arg,
                    b" is neither a groupname nor a numeric group.\n",
                );
            }
            Error::Open { path, source } => {
                out.extend_from_slice(b"Failed to open ");
                quoted(&mut out, path.as_os_str().as_bytes(), b" : ");
                out.extend_from_slice(strerror(source).as_bytes());
                out.push(b'\n');
            }
            Error::SetIff(_) | Error::Persist(_) | Error::Owner(_) | Error::Group(_) => {
                out.extend_from_slice(self.to_string().as_bytes());
                out.push(b'\n');
            }
            Error::ListWith(_) | Error::List(_) => {
                out.extend_from_slice(argv0);
                out.extend_from_slice(b": ");
                out.extend_from_slice(self.to_string().as_bytes());
                out.push(b'\n');
            }
        }
        if self.shows_usage() {
            out.extend_from_slice(&usage(argv0));
        }
        out
    }

    /// Whether the usage text follows the message.
    fn shows_usage(&self) -> bool {
        matches!(
            self,
            Error::Usage
                | Error::InvalidOption(_)
                | Error::MissingArgument(_)
                | Error::NotAUser(_)
                | Error::NotAGroup(_)
        )
    }

    /// The exit status (always 1, as in C).
    pub fn exit_code(&self) -> i32 {
        1
    }
}

/// `'TEXT'` then `tail`.
fn quoted(out: &mut Vec<u8>, text: &[u8], tail: &[u8]) {
    out.push(b'\'');
    out.extend_from_slice(text);
    out.push(b'\'');
    out.extend_from_slice(tail);
}

/// `strtol(s, &end, 0)` with the C tools' check `*end == '\0'`: the value
/// when the whole string is a number (leading blanks, a sign, `0x` hex or
/// `0` octal prefixes allowed; the empty string is 0), saturated to the
/// `long` range like `strtol`. `None` when anything follows the number.
pub fn c_strtol(s: &[u8]) -> Option<i64> {
    let mut i = 0;
    while i < s.len() && matches!(s[i], b' ' | b'\t' | b'\n' | 0x0b | 0x0c | b'\r') {
        i += 1;
    }
    if i == s.len() {
        // No digits: strtol's end pointer is the start of the string.
        return s.is_empty().then_some(0);
    }
    let negative = s[i] == b'-';
    if matches!(s[i], b'-' | b'+') {
        i += 1;
    }
    let mut base = 10;
    if s.get(i) == Some(&b'0') {
        if matches!(s.get(i + 1), Some(b'x' | b'X')) {
            if s.get(i + 2).is_some_and(u8::is_ascii_hexdigit) {
                base = 16;
                i += 2;
            } else {
                // "0x" without hex digits: 0, ending at the 'x'.
                return None;
            }
        } else {
            base = 8;
        }
    }
    let digits = &s[i..];
    if digits.is_empty() {
        return None;
    }
    // Accumulate the magnitude; saturate once it exceeds what fits.
    let limit: u64 = if negative { 1 << 63 } else { i64::MAX as u64 };
    let mut value: u64 = 0;
    let mut overflow = false;
    for &b in digits {
        let d = match char::from(b).to_digit(base) {
            Some(d) => u64::from(d),
            None => return None,
        };
        match value
            .checked_mul(u64::from(base))
            .and_then(|v| v.checked_add(d))
        {
            Some(v) if v <= limit => value = v,
            _ => overflow = true,
        }
    }
    Some(match (overflow, negative) {
        (true, false) => i64::MAX,
        (true, true) => i64::MIN,
        // `value` ≤ 2^63 here; 2^63 only when negative.
        (false, true) => 0i64.wrapping_sub_unsigned(value),
        (false, false) => value as i64,
    })
}

/// A C `long` stored in a `uid_t`/`gid_t` (the low 32 bits), with
/// `(uid_t)-1` meaning "not set", as in Debian's source.
fn as_id(value: i64) -> Option<u32> {
    // Truncation to 32 bits is what the C assignment does.
    let id = value as u32;
    (id != u32::MAX).then_some(id)
}

/// Parses the command line like Debian's `tunctl`, looking names up in
/// `accounts` as each `-u`/`-g` is met (so errors come in command-line
/// order). `posixly_correct`: whether `POSIXLY_CORRECT` is set (getopt
/// then stops at the first operand).
pub fn parse(
    args: &[OsString],
    posixly_correct: bool,
    accounts: &dyn Accounts,
) -> Result<Config, Error> {
    let mut cfg = Config::default();
    // The first option given that --list cannot be combined with.
    let mut changes: Option<&'static str> = None;
    let mut opts = Getopt::new(args, OPTSTRING, posixly_correct).long_options(LONG_OPTIONS);
    for event in opts.by_ref() {
        let (c, value) = match event {
            Event::Opt(c, value) => (c, value.unwrap_or_default()),
            Event::Invalid(c) => return Err(Error::InvalidOption(c)),
            Event::MissingArgument(c) => return Err(Error::MissingArgument(c)),
            Event::Long(name) => {
                match name {
                    b"help" => {
                        cfg.action = Action::Help;
                        return Ok(cfg);
                    }
                    b"list" => cfg.action = Action::List,
                    b"vnet-hdr" => {
                        cfg.features.vnet_hdr = true;
                        changes.get_or_insert("--vnet-hdr");
                    }
                    _ => {
                        cfg.features.multi_queue = true;
                        changes.get_or_insert("--multi-queue");
                    }
                }
                continue;
            }
        };
        if let Some(i) = b"dftugnp".iter().position(|&o| o == c) {
            changes.get_or_insert(["-d", "-f", "-t", "-u", "-g", "-n", "-p"][i]);
        }
        match c {
            b'b' => cfg.brief = true,
            b'd' => {
                cfg.delete = true;
                cfg.name = value.to_vec();
            }
            b'f' => cfg.clone_device = PathBuf::from(OsStr::from_bytes(value)),
            b't' => cfg.name = value.to_vec(),
            b'u' => {
                cfg.owner = match accounts.uid_of(value) {
                    Some(uid) => as_id(i64::from(uid)),
                    None => as_id(c_strtol(value).ok_or_else(|| Error::NotAUser(value.to_vec()))?),
                };
            }
            b'g' => {
                cfg.group = match accounts.gid_of(value) {
                    Some(gid) => as_id(i64::from(gid)),
                    None => as_id(c_strtol(value).ok_or_else(|| Error::NotAGroup(value.to_vec()))?),
                };
            }
            b'n' => cfg.mode = Mode::Tun,
            b'p' => cfg.mode = Mode::Tap,
            _ => return Err(Error::InvalidOption(c)),
        }
    }
    if !opts.operands().is_empty() {
        return Err(Error::Usage);
    }
    if cfg.action == Action::List {
        if let Some(option) = changes {
            return Err(Error::ListWith(option));
        }
    }
    Ok(cfg)
}

/// The `--list` text for `devices`: per device, with `brief` its name,
/// else what `ip tuntap show` prints (`tap0: tap vnet_hdr persist user
/// 1000`): the kind, `pi`, `one_queue`, `multi_queue`, `vnet_hdr`,
/// `persist` and iproute2's `filter` (printed whenever `pi` is, since
/// `IFF_NOFILTER` is `IFF_NO_PI`'s bit), any other flags in hex, then the
/// owner and group ids when set.
pub fn list_text(devices: &[Listed], brief: bool) -> Vec<u8> {
    let flag_words: [(u32, &str); 4] = [
        (u32::from(tun::IFF_ONE_QUEUE), "one_queue"),
        (u32::from(tun::IFF_MULTI_QUEUE), "multi_queue"),
        (u32::from(tun::IFF_VNET_HDR), "vnet_hdr"),
        (u32::from(tun::IFF_PERSIST), "persist"),
    ];
    let tun_flag = u32::from(tun::IFF_TUN);
    let tap_flag = u32::from(tun::IFF_TAP);
    let no_pi = u32::from(tun::IFF_NO_PI);
    let mut out = Vec::new();
    for d in devices {
        out.extend_from_slice(&d.name);
        if brief {
            out.push(b'\n');
            continue;
        }
        out.push(b':');
        let mut words: Vec<String> = Vec::new();
        if d.flags & tun_flag != 0 {
            words.push("tun".into());
        }
        if d.flags & tap_flag != 0 {
            words.push("tap".into());
        }
        let pi = d.flags & no_pi == 0;
        if pi {
            words.push("pi".into());
        }
        let mut known = tun_flag | tap_flag | no_pi;
        for (flag, word) in flag_words {
            known |= flag;
            if d.flags & flag != 0 {
                words.push(word.into());
            }
        }
        if pi {
            words.push("filter".into());
        }
        let rest = d.flags & !known;
        if rest != 0 {
            words.push(format!("{rest:#x}"));
        }
        if let Some(uid) = d.owner {
            words.push(format!("user {uid}"));
        }
        if let Some(gid) = d.group {
            words.push(format!("group {gid}"));
        }
        for w in words {
            out.push(b' ');
            out.extend_from_slice(w.as_bytes());
        }
        out.push(b'\n');
    }
    out
}

/// Does what `cfg` asks, in Debian's order, and returns the text for
/// stdout. `euid` is the owner used when neither `-u` nor `-g` was given.
///
/// Create: `TUNSETIFF`, `TUNSETPERSIST(1)`, then `TUNSETOWNER` and/or
/// `TUNSETGROUP` (a failure there leaves the device persistent, as in C).
/// Delete: `TUNSETIFF`, `TUNSETPERSIST(0)`.
pub fn execute(cfg: &Config, euid: u32) -> Result<Vec<u8>, Error> {
    match cfg.action {
        Action::Change => {}
        Action::Help => return Ok(Vec::new()),
        Action::List => {
            let devices =
                tun::list_devices(std::path::Path::new(tun::SYSFS_NET)).map_err(Error::List)?;
            return Ok(list_text(&devices, cfg.brief));
        }
    }
    let name = tun::truncate_name(&cfg.name);
    let dev = TunDevice::attach_with(&cfg.clone_device, name, cfg.mode, cfg.features).map_err(
        |e| match e {
            TunError::Open(source) => Error::Open {
                path: cfg.clone_device.clone(),
                source,
            },
            TunError::SetIff(e) => Error::SetIff(e),
            // `truncate_name` made it fit and argv holds no NUL; were it
            // otherwise, this is what the kernel would say.
            TunError::BadName => Error::SetIff(nix::errno::Errno::EINVAL.into()),
        },
    )?;
    let mut out = Vec::new();
    if cfg.delete {
        dev.set_persist(false).map_err(Error::Persist)?;
        quoted_line(&mut out, b"Set ", dev.name_bytes(), b" nonpersistent");
        return Ok(out);
    }
    dev.set_persist(true).map_err(Error::Persist)?;
    let owner = match (cfg.owner, cfg.group) {
        (None, None) => Some(euid),
        (owner, _) => owner,
    };
    if let Some(uid) = owner {
        dev.set_owner(uid).map_err(Error::Owner)?;
    }
    if let Some(gid) = cfg.group {
        dev.set_group(gid).map_err(Error::Group)?;
    }
    if cfg.brief {
        out.extend_from_slice(dev.name_bytes());
        out.push(b'\n');
        return Ok(out);
    }
    out.extend_from_slice(b"Set '");
    out.extend_from_slice(dev.name_bytes());
    out.extend_from_slice(b"' persistent and owned by");
    // C prints uid_t/gid_t with %d.
    if let Some(uid) = owner {
        out.extend_from_slice(format!(" uid {}", uid as i32).as_bytes());
    }
    if let Some(gid) = cfg.group {
        out.extend_from_slice(format!(" gid {}", gid as i32).as_bytes());
    }
    out.push(b'\n');
    Ok(out)
}

/// `HEAD'NAME'TAIL\n`.
fn quoted_line(out: &mut Vec<u8>, head: &[u8], name: &[u8], tail: &[u8]) {
    out.extend_from_slice(head);
    quoted(out, name, tail);
    out.push(b'\n');
}

/// The whole tool: parses `args` (with `args[0]` the program name as
/// invoked), acts, prints, and returns the exit status.
pub fn uumain(args: impl IntoIterator<Item = OsString>) -> i32 {
    let args: Vec<OsString> = args.into_iter().collect();
    let argv0 = args
        .first()
        .map_or_else(|| b"tunctl".to_vec(), |a| a.as_bytes().to_vec());
    // Dynamic (the build's tunctl): nothing to do. Static: files only, as
    // other services would crash it; a failure leaves glibc's defaults.
    let _ = nss::prepare();
    let posixly_correct = std::env::var_os("POSIXLY_CORRECT").is_some();
    let result = parse(&args, posixly_correct, &SystemAccounts).and_then(|cfg| match cfg.action {
        Action::Help => Ok(help(&argv0)),
        _ => execute(&cfg, nix::unistd::geteuid().as_raw()),
    });
    match result {
        Ok(out) => {
            // As in C (printf, exit status 0), a failed write is not an error.
            let mut stdout = io::stdout().lock();
            let _ = stdout.write_all(&out).and_then(|()| stdout.flush());
            0
        }
        Err(e) => {
            let _ = io::stderr().lock().write_all(&e.stderr_text(&argv0));
            e.exit_code()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `nobody`/65534 and `nogroup`/65534, like Debian's databases, plus a
    /// user named like a number.
    struct Fake;

    impl Accounts for Fake {
        fn uid_of(&self, name: &[u8]) -> Option<u32> {
            match name {
                b"nobody" => Some(65534),
                b"root" => Some(0),
                b"42" => Some(1042),
                _ => None,
            }
        }

        fn gid_of(&self, name: &[u8]) -> Option<u32> {
            match name {
                b"nogroup" => Some(65534),
                _ => None,
            }
        }
    }

    fn p(args: &[&str]) -> Result<Config, Error> {
        p_env(args, false)
    }

    fn p_env(args: &[&str], posix: bool) -> Result<Config, Error> {
        let argv: Vec<OsString> = std::iter::once("tunctl")
            .chain(args.iter().copied())
            .map(OsString::from)
            .collect();
        parse(&argv, posix, &Fake)
    }

    fn err_text(args: &[&str]) -> String {
        let e = p(args).unwrap_err();
        String::from_utf8(e.stderr_text(b"/usr/bin/tunctl")).unwrap()
    }

    const USAGE_TEXT: &str =
        "Create: /usr/bin/tunctl [-b] [-u owner] [-g group] [-t device-name] [-f tun-clone-device]\n\
         Delete: /usr/bin/tunctl -d device-name [-f tun-clone-device]\n\
         \n\
         The default tun clone device is /dev/net/tun - some systems use\n\
         /dev/misc/net/tun instead\n\
         \n\
         -b will result in brief output (just the device name)\n";

    #[test]
    fn defaults() {
        let c = p(&[]).unwrap();
        assert_eq!(c, Config::default());
        assert_eq!(c.clone_device, PathBuf::from("/dev/net/tun"));
        assert_eq!(c.mode, Mode::Tap);
    }

    #[test]
    fn options() {
        let c = p(&["-bt", "tap0", "-u", "nobody", "-g", "nogroup", "-f", "/x"]).unwrap();
        assert!(c.brief && !c.delete);
        assert_eq!(c.name, b"tap0");
        assert_eq!((c.owner, c.group), (Some(65534), Some(65534)));
        assert_eq!(c.clone_device, PathBuf::from("/x"));
        let c = p(&["-d", "tap1", "-t", "tap2"]).unwrap();
        assert!(c.delete);
        assert_eq!(c.name, b"tap2", "-t and -d both set the name; last wins");
        let c = p(&["-n"]).unwrap();
        assert_eq!(c.mode, Mode::Tun);
        assert_eq!(p(&["-n", "-p"]).unwrap().mode, Mode::Tap);
        assert_eq!(p(&["-ttap9", "-bn"]).unwrap().mode, Mode::Tun);
    }

    #[test]
    fn owners_by_name_then_number() {
        let owner = |v: &str| p(&["-u", v]).unwrap().owner;
        assert_eq!(owner("nobody"), Some(65534));
        assert_eq!(owner("42"), Some(1042), "names first, even numeric ones");
        assert_eq!(owner("1234"), Some(1234));
        assert_eq!(owner("0x10"), Some(16));
        assert_eq!(owner("010"), Some(8));
        assert_eq!(owner(" 12"), Some(12));
        assert_eq!(owner("+7"), Some(7));
        assert_eq!(owner(""), Some(0), "-u \"\" is uid 0");
        assert_eq!(owner("-5"), Some(4_294_967_291));
        assert_eq!(
            owner("99999999999"),
            Some(1_215_752_191),
            "long cut to 32 bits"
        );
        assert_eq!(owner("-1"), None, "(uid_t)-1 means not set");
        assert_eq!(owner("4294967295"), None);
        assert_eq!(owner("99999999999999999999999"), None, "LONG_MAX cut to -1");
        assert_eq!(p(&["-u", "nobody", "-u", "-1"]).unwrap().owner, None);
        let group = |v: &str| p(&["-g", v]).unwrap().group;
        assert_eq!(group("nogroup"), Some(65534));
        assert_eq!(group("4321"), Some(4321));
        assert_eq!(group(""), Some(0));
    }

    #[test]
    fn strtol_model() {
        for (s, want) in [
            ("", Some(0)),
            ("0", Some(0)),
            ("00", Some(0)),
            ("077", Some(63)),
            ("0X1f", Some(31)),
            ("-0x10", Some(-16)),
            ("\t\n 5", Some(5)),
            ("9223372036854775807", Some(i64::MAX)),
            ("9223372036854775808", Some(i64::MAX)),
            ("-9223372036854775808", Some(i64::MIN)),
            ("-9223372036854775809", Some(i64::MIN)),
            ("12abc", None),
            ("08", None),
            ("0x", None),
            ("0xg", None),
            ("-", None),
            ("+", None),
            (" ", None),
            ("12 ", None),
            ("1.0", None),
            ("--1", None),
        ] {
            assert_eq!(c_strtol(s.as_bytes()), want, "{s:?}");
        }
    }

    #[test]
    fn error_texts_of_the_spec() {
        assert_eq!(
            err_text(&["-u", "no_such_user_xyz"]),
            format!("'no_such_user_xyz' is neither a username nor a numeric uid.\n{USAGE_TEXT}")
        );
        assert_eq!(
            err_text(&["-g", "no_such_group_xyz"]),
            format!(
                "'no_such_group_xyz' is neither a groupname nor a numeric group.\n{USAGE_TEXT}"
            )
        );
        assert_eq!(
            err_text(&["-u", "12abc"]),
            format!("'12abc' is neither a username nor a numeric uid.\n{USAGE_TEXT}")
        );
        assert_eq!(
            err_text(&["-x"]),
            format!("/usr/bin/tunctl: invalid option -- 'x'\n{USAGE_TEXT}")
        );
        assert_eq!(
            err_text(&["-h"]),
            format!("/usr/bin/tunctl: invalid option -- 'h'\n{USAGE_TEXT}")
        );
        assert_eq!(
            err_text(&["-t"]),
            format!("/usr/bin/tunctl: option requires an argument -- 't'\n{USAGE_TEXT}")
        );
        assert_eq!(
            err_text(&["-d"]),
            format!("/usr/bin/tunctl: option requires an argument -- 'd'\n{USAGE_TEXT}")
        );
        assert_eq!(err_text(&["foo"]), USAGE_TEXT);
    }

    #[test]
    fn errors_come_in_command_line_order() {
        assert!(matches!(p(&["-u", "bad", "-x"]), Err(Error::NotAUser(_))));
        assert!(matches!(
            p(&["-x", "-u", "bad"]),
            Err(Error::InvalidOption(b'x'))
        ));
        // Operands are checked after every option (getopt permutes)...
        assert!(matches!(p(&["foo", "-x"]), Err(Error::InvalidOption(b'x'))));
        assert!(matches!(p(&["foo", "-t", "a"]), Err(Error::Usage)));
        // ...unless POSIXLY_CORRECT stops at the first operand.
        assert!(matches!(p_env(&["foo", "-x"], true), Err(Error::Usage)));
        assert!(matches!(p(&["--", "-t"]), Err(Error::Usage)));
        assert!(matches!(p(&["--hel"]), Err(Error::InvalidOption(b'-'))));
        // -d still looks owners up.
        assert!(matches!(
            p(&["-d", "tap0", "-u", "bad"]),
            Err(Error::NotAUser(_))
        ));
    }

    #[test]
    fn kernel_error_texts() {
        let enoent = || io::Error::from_raw_os_error(2);
        let e = Error::Open {
            path: PathBuf::from("/nonexistent/tun"),
            source: enoent(),
        };
        assert_eq!(
            e.stderr_text(b"x"),
            b"Failed to open '/nonexistent/tun' : No such file or directory\n"
        );
        let enotty = io::Error::from_raw_os_error(25);
        assert_eq!(
            Error::SetIff(enotty).stderr_text(b"x"),
            b"TUNSETIFF: Inappropriate ioctl for device\n"
        );
        for e in [
            Error::Persist(io::Error::from_raw_os_error(22)),
            Error::Owner(io::Error::from_raw_os_error(22)),
            Error::Group(io::Error::from_raw_os_error(22)),
        ] {
            assert_eq!(e.stderr_text(b"x"), b"TUNSETPERSIST: Invalid argument\n");
            assert_eq!(e.exit_code(), 1);
        }
    }

    #[test]
    fn new_long_options() {
        let c = p(&["--vnet-hdr", "-t", "v0"]).unwrap();
        assert!(c.features.vnet_hdr && !c.features.multi_queue);
        assert_eq!(c.action, Action::Change);
        let c = p(&["--multi-queue", "--vnet-hdr", "-n"]).unwrap();
        assert!(c.features.vnet_hdr && c.features.multi_queue);
        assert_eq!(c.mode, Mode::Tun);
        let c = p(&["--multi-queue", "-d", "mq0"]).unwrap();
        assert!(c.delete && c.features.multi_queue);
        assert_eq!(p(&["--list"]).unwrap().action, Action::List);
        let c = p(&["-b", "--list"]).unwrap();
        assert!(c.brief && c.action == Action::List);
        // --help wins over what follows it, not over errors before it.
        assert_eq!(p(&["--help", "-x", "foo"]).unwrap().action, Action::Help);
        assert!(matches!(
            p(&["-x", "--help"]),
            Err(Error::InvalidOption(b'x'))
        ));
        // A name that only looks like a long option is a name.
        assert_eq!(p(&["-t", "--list"]).unwrap().name, b"--list");
        // Not exactly one of ours: Debian's getopt reading.
        assert!(matches!(p(&["--lis"]), Err(Error::InvalidOption(b'-'))));
        assert!(matches!(
            p(&["--vnet_hdr"]),
            Err(Error::InvalidOption(b'-'))
        ));
        assert!(matches!(p(&["--list", "foo"]), Err(Error::Usage)));
    }

    #[test]
    fn list_takes_only_brief() {
        for (args, first) in [
            (&["--list", "-t", "x"][..], "-t"),
            (&["-d", "x", "--list"], "-d"),
            (&["--list", "-u", "nobody", "-g", "nogroup"], "-u"),
            (&["--list", "-g", "nogroup"], "-g"),
            (&["--list", "-n"], "-n"),
            (&["-p", "--list"], "-p"),
            (&["--list", "-f", "/dev/net/tun"], "-f"),
            (&["--vnet-hdr", "--list"], "--vnet-hdr"),
            (&["--list", "--multi-queue"], "--multi-queue"),
        ] {
            match p(args) {
                Err(Error::ListWith(o)) => assert_eq!(o, first, "{args:?}"),
                other => panic!("{args:?}: {other:?}"),
            }
        }
        assert_eq!(
            err_text(&["--list", "-t", "x"]),
            "/usr/bin/tunctl: --list cannot be combined with -t; it takes only -b\n"
        );
        let e = Error::List(io::Error::from_raw_os_error(2));
        assert_eq!(
            e.stderr_text(b"tunctl"),
            b"tunctl: cannot read /sys/class/net: No such file or directory\n"
        );
        assert_eq!(e.exit_code(), 1);
    }

    #[test]
    fn list_text_is_ip_tuntap_shows() {
        let dev = |name: &str, flags: u32, owner: Option<u32>, group: Option<u32>| Listed {
            name: name.as_bytes().to_vec(),
            ifindex: 0,
            flags,
            owner,
            group,
        };
        // As iproute2 6.1 printed these devices (see the integration test).
        let devices = [
            dev("t1", 0x5902, Some(65534), None),
            dev("t3", 0x6901, None, None),
            dev("tap0", 0x1802, Some(0), Some(100)),
            dev("tun0", 0x1001, None, Some(4321)),
            dev("odd", 0x1832, None, None),
        ];
        assert_eq!(
            String::from_utf8(list_text(&devices, false)).unwrap(),
            "t1: tap multi_queue vnet_hdr persist user 65534\n\
             t3: tun pi one_queue multi_queue vnet_hdr persist filter\n\
             tap0: tap persist user 0 group 100\n\
             tun0: tun group 4321\n\
             odd: tap persist 0x30\n"
        );
        assert_eq!(
            String::from_utf8(list_text(&devices, true)).unwrap(),
            "t1\nt3\ntap0\ntun0\nodd\n"
        );
        assert!(list_text(&[], false).is_empty());
    }

    #[test]
    fn help_is_debians_usage_then_the_new_options() {
        let h = String::from_utf8(help(b"/usr/bin/tunctl")).unwrap();
        assert!(h.starts_with(USAGE_TEXT), "{h}");
        for option in ["-n ", "--vnet-hdr", "--multi-queue", "--list", "--help"] {
            assert!(h.contains(option), "{option} missing: {h}");
        }
        // Every long option is described.
        for name in LONG_OPTIONS {
            let name = String::from_utf8_lossy(name);
            assert!(h.contains(&format!("\n--{name} ")), "--{name}: {h}");
        }
        let extra = &h[USAGE_TEXT.len()..];
        assert!(extra.lines().all(|l| l.len() <= 80), "{extra}");
        assert!(extra.contains("\n                taken over"), "{extra}");
        assert!(h.ends_with("multi-queue device.\n"), "{h}");
    }

    #[test]
    fn usage_uses_argv0_twice() {
        let u = String::from_utf8(usage(b"tunctl")).unwrap();
        assert!(u.starts_with("Create: tunctl [-b]"));
        assert!(u.contains("\nDelete: tunctl -d device-name"));
        assert_eq!(u.lines().count(), 7);
    }

    #[test]
    fn execute_reports_the_clone_device_errors() {
        let cfg = Config {
            clone_device: PathBuf::from("/nonexistent/tun"),
            ..Config::default()
        };
        let e = execute(&cfg, 0).unwrap_err();
        assert_eq!(
            e.stderr_text(b"tunctl"),
            b"Failed to open '/nonexistent/tun' : No such file or directory\n"
        );
        let cfg = Config {
            clone_device: PathBuf::from("/dev/null"),
            name: b"abcdefghijklmnopqrstuvwxyz".to_vec(),
            ..Config::default()
        };
        let e = execute(&cfg, 0).unwrap_err();
        assert_eq!(
            e.stderr_text(b"tunctl"),
            b"TUNSETIFF: Inappropriate ioctl for device\n"
        );
    }

    #[test]
    fn system_accounts_know_root_and_survive_unknown_names() {
        nss::prepare().unwrap();
        assert_eq!(SystemAccounts.uid_of(b"root"), Some(0));
        assert_eq!(SystemAccounts.gid_of(b"root"), Some(0));
        // In the static build these crashed before the NSS restriction.
        assert_eq!(SystemAccounts.uid_of(b"no_such_user_xyz"), None);
        assert_eq!(SystemAccounts.gid_of(b"1234"), None);
        assert_eq!(SystemAccounts.uid_of(&[0xff, 0xfe]), None);
    }
}
