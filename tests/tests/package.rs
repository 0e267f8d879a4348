//! The Debian package `uml-utilities-rs` (issue #6), as `packaging/build-deb`
//! leaves it in `debian/` of cargo's target directory (`target/debian/`
//! unless `CARGO_TARGET_DIR` moves it):
//!
//! * its contents and metadata, read with `dpkg-deb` (paths, modes,
//!   relations, conffiles, md5sums, maintainer scripts), and lintian;
//! * installation, removal and purge in a fresh Debian chroot (debootstrap
//!   minbase), also over Debian's own `uml-utilities` and next to an
//!   administrator's statoverride — each in a Debian 12 (`bookworm`) and
//!   in a Debian unstable userland (what Debian 13 and later come from:
//!   newer glibc, dpkg, adduser, init-system-helpers);
//! * the service: the installed units, driven as systemd would (the
//!   socket unit's socket bound and passed by `systemd-socket-activate`,
//!   ExecCondition, ExecStart with `NOTIFY_SOCKET` until `READY=1`,
//!   ExecStartPost), and the init script start the installed `uml_switch`
//!   as `uml-net` on `/run/uml-utilities/uml_switch.ctl` (with a
//!   management socket for a group), and two UMLs booted with a plain
//!   `eth0=daemon` (the kernel's built-in socket) ping each other through
//!   it; and the ifupdown hooks. All of it in a private network namespace
//!   and a private mount namespace whose `/run` is the chroot's tmpfs, so
//!   nothing of the host changes.
//!
//! The package is not built here (a release build takes minutes): run
//! `packaging/build-deb` first. Each chroot is made from a tarball of a
//! debootstrapped root, cached in `/var/cache/uml-utilities-rs-test/`
//! (`UML_PKG_TEST_CACHE`): bookworm's for ever, unstable's for a week.
//! Making one downloads from the host's own configured Debian archive and
//! keyring (`/etc/apt/sources.list.d/*.sources` or `sources.list`, as
//! `docs/testing.md` §11 does for the 7.x kernel; `UML_PKG_TEST_MIRROR` and
//! `UML_PKG_TEST_KEYRING` override them, deb.debian.org is the fallback)
//! and takes a minute or two. Without the package, debootstrap, lintian or
//! the archive these tests print `SKIP`; under `CI=true` they fail.
//!
//! Every command runs with a deadline; every mount is made inside a mount
//! namespace of its own (`unshare -m --propagation private`), so it
//! disappears with the namespace's last process.

// Test code: a failed setup step should abort the test with its message.
#![allow(clippy::expect_used, clippy::unwrap_used)]

use std::collections::BTreeSet;
use std::fs;
use std::io::Write;
use std::os::unix::fs::PermissionsExt;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Mutex;
use std::thread;
use std::time::{Duration, Instant};

use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;
use tempfile::TempDir;
use uml_integration_tests::{
    cargo_target_dir, find_in_path, pid_alive, require, run_with_timeout, NetNs, Requirement,
    RunOutput, Uml, UmlConfig,
};

const PACKAGE: &str = "uml-utilities-rs";
/// The Debian revision `packaging/Cargo.toml` gives cargo-deb.
const REVISION: &str = "1";
const DEFAULT_MIRROR: &str = "http://deb.debian.org/debian";
const DEFAULT_KEYRING: &str = "/usr/share/keyrings/debian-archive-keyring.gpg";
const DEFAULT_CACHE: &str = "/var/cache/uml-utilities-rs-test";
/// A Debian userland the package is installed into.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Suite {
    /// Debian 12, the host's own release.
    Bookworm,
    /// Debian unstable (the next release, 13/trixie and later, comes from
    /// it): glibc, adduser, dpkg and init-system-helpers as users of
    /// current Debian have them.
    Unstable,
}

impl Suite {
    fn name(self) -> &'static str {
        match self {
            Suite::Bookworm => "bookworm",
            Suite::Unstable => "unstable",
        }
    }

    /// The cached root's name; change it when the recipe below changes.
    fn base_name(self) -> &'static str {
        match self {
            Suite::Bookworm => "bookworm-minbase-v4",
            Suite::Unstable => "unstable-minbase-v4",
        }
    }

    /// Packages added to minbase: adduser, libpcap0.8 and libslirp0 (our
    /// Depends; uml_switch_pcap and uml_switch_nat), iproute2 (the if-up hook), and the dependencies
    /// of Debian's uml-utilities, whose .deb is downloaded into the root
    /// for the replacement test (unstable's are the 64-bit-time_t
    /// libraries).
    fn include(self) -> &'static str {
        match self {
            Suite::Bookworm => {
                "adduser,iproute2,libfuse2,libreadline8,lsb-base,libpcap0.8,libslirp0"
            }
            Suite::Unstable => {
                "adduser,iproute2,libfuse2t64,libreadline8t64,lsb-base,libpcap0.8t64,libslirp0"
            }
        }
    }

    /// How long a cached root is used: bookworm's for ever (a stable
    /// release), unstable's for a week (it moves; an older one is still
    /// used when making a new one fails).
    fn max_age(self) -> Option<Duration> {
        match self {
            Suite::Bookworm => None,
            Suite::Unstable => Some(Duration::from_secs(7 * 24 * 3600)),
        }
    }
}

const DEBOOTSTRAP_TIMEOUT: Duration = Duration::from_secs(900);
const CMD_TIMEOUT: Duration = Duration::from_secs(120);
const SHORT: Duration = Duration::from_secs(20);
const UML_LIFETIME: Duration = Duration::from_secs(120);
const GUEST_STEP: Duration = Duration::from_secs(40);

const BINARIES: [&str; 7] = [
    "tunctl",
    "uml_mconsole",
    "uml_mkcow",
    "uml_moo",
    "uml_net",
    "uml_switch",
    "uml_watchdog",
];
const CONFFILES: [&str; 4] = [
    "/etc/default/uml-utilities",
    "/etc/init.d/uml-utilities",
    "/etc/network/if-pre-up.d/uml-utilities",
    "/etc/network/if-up.d/uml-utilities",
];
const WRAPPER: &str = "/usr/libexec/uml-utilities-rs/uml-switch-service";
const CTL: &str = "/run/uml-utilities/uml_switch.ctl";

/// Fails under `CI=true`, else prints a loud `SKIP` line (as
/// [`uml_integration_tests::require`] does).
fn unmet(reason: &str) {
    if std::env::var("CI").as_deref() == Ok("true") {
        panic!("{reason}; CI must provide it");
    }
    let current = thread::current();
    let _ = writeln!(
        std::io::stderr(),
        "SKIP {}: {reason}",
        current.name().unwrap_or("<unknown test>")
    );
}

/// `let x = need!(option_or_result, "why");` returns from the test (after
/// [`unmet`]) when the value is missing.
macro_rules! need {
    ($value:expr) => {
        match $value {
            Ok(v) => v,
            Err(reason) => {
                unmet(&reason);
                return;
            }
        }
    };
}

fn arch() -> String {
    let out = run_with_timeout(Command::new("dpkg").arg("--print-architecture"), SHORT);
    assert!(out.success(), "dpkg --print-architecture: {out}");
    out.stdout_str().trim().to_string()
}

fn version() -> String {
    format!("{}-{REVISION}", env!("CARGO_PKG_VERSION"))
}

/// The package `packaging/build-deb` writes.
fn the_deb() -> Result<PathBuf, String> {
    let path =
        cargo_target_dir()
            .join("debian")
            .join(format!("{PACKAGE}_{}_{}.deb", version(), arch()));
    if path.is_file() {
        Ok(path)
    } else {
        Err(format!(
            "{} not found: run packaging/build-deb first",
            path.display()
        ))
    }
}

fn program(name: &str, package: &str) -> Result<PathBuf, String> {
    find_in_path(name).ok_or_else(|| format!("`{name}` not found (apt-get install {package})"))
}

fn dpkg_deb(args: &[&str], deb: &Path) -> RunOutput {
    let out = run_with_timeout(Command::new("dpkg-deb").args(args).arg(deb), CMD_TIMEOUT);
    assert!(out.success(), "dpkg-deb {args:?}: {out}");
    out
}

/// `path → (permissions, owner)` from `dpkg-deb -c`.
fn contents(deb: &Path) -> Vec<(String, String, String)> {
    dpkg_deb(&["-c"], deb)
        .stdout_str()
        .lines()
        .map(|l| {
            let f: Vec<&str> = l.split_whitespace().collect();
            assert!(f.len() >= 6, "odd dpkg-deb -c line {l:?}");
            let path = f[5].trim_start_matches('.').to_string();
            (path, f[0].to_string(), f[1].to_string())
        })
        .collect()
}

#[test]
fn deb_contents_and_metadata() {
    let deb = need!(the_deb());
    let list = contents(&deb);
    let mode_of = |p: &str| {
        list.iter()
            .find(|(path, _, _)| path == p)
            .map(|(_, mode, _)| mode.clone())
            .unwrap_or_else(|| panic!("{p} is not in the package"))
    };
    for (path, mode, owner) in &list {
        assert!(owner == "root/root" || owner == "0/0", "{path}: {owner}");
        assert!(
            !mode.contains('s') && !mode.contains('S'),
            "{path} {mode}: setuid only through dpkg-statoverride"
        );
    }

    // The programs, at Debian's paths, and nothing else in bin/sbin.
    let exe = "-rwxr-xr-x";
    for b in BINARIES {
        assert_eq!(mode_of(&format!("/usr/bin/{b}")), exe, "{b}");
    }
    assert_eq!(mode_of("/usr/sbin/jail_uml"), exe);
    assert_eq!(mode_of("/usr/lib/uml/port-helper"), exe);
    assert_eq!(mode_of("/usr/lib/uml/uml_switch_pcap"), exe);
    // The NAT port's helper (uml_switch --nat), next to it.
    assert_eq!(mode_of("/usr/lib/uml/uml_switch_nat"), exe);
    // 64-bit kernels from 6.16 on look in /usr/lib64/uml/: a relative
    // link to the program.
    let listing = dpkg_deb(&["-c"], &deb).stdout_str();
    let link = listing
        .lines()
        .find(|l| l.contains(" ./usr/lib64/uml/port-helper"))
        .expect("no /usr/lib64/uml/port-helper in the package");
    assert!(link.starts_with('l'), "not a link: {link}");
    assert!(
        link.ends_with(" ./usr/lib64/uml/port-helper -> ../../lib/uml/port-helper"),
        "{link}"
    );
    let in_bin: BTreeSet<String> = list
        .iter()
        .filter(|(p, m, _)| {
            !m.starts_with('d') && (p.starts_with("/usr/bin/") || p.starts_with("/usr/sbin/"))
        })
        .map(|(p, _, _)| p.clone())
        .collect();
    let want: BTreeSet<String> = BINARIES
        .iter()
        .map(|b| format!("/usr/bin/{b}"))
        .chain(["/usr/sbin/jail_uml".to_string()])
        .collect();
    assert_eq!(in_bin, want);

    // Service, settings and hooks.
    assert_eq!(mode_of(WRAPPER), exe);
    assert_eq!(
        mode_of("/usr/lib/systemd/system/uml-utilities.service"),
        "-rw-r--r--"
    );
    assert_eq!(
        mode_of("/usr/lib/systemd/system/uml-utilities.socket"),
        "-rw-r--r--"
    );
    assert_eq!(mode_of("/etc/init.d/uml-utilities"), exe);
    assert_eq!(mode_of("/etc/default/uml-utilities"), "-rw-r--r--");
    assert_eq!(mode_of("/etc/network/if-pre-up.d/uml-utilities"), exe);
    assert_eq!(mode_of("/etc/network/if-up.d/uml-utilities"), exe);

    // Documentation: a man page for every program, completions.
    for b in BINARIES
        .iter()
        .filter(|b| **b != "tunctl")
        .chain(&["jail_uml", "port-helper"])
    {
        assert_eq!(
            mode_of(&format!("/usr/share/man/man1/{b}.1.gz")),
            "-rw-r--r--"
        );
    }
    assert_eq!(mode_of("/usr/share/man/man8/tunctl.8.gz"), "-rw-r--r--");
    for b in BINARIES.iter().chain(&["jail_uml"]) {
        mode_of(&format!("/usr/share/bash-completion/completions/{b}"));
        mode_of(&format!("/usr/share/zsh/vendor-completions/_{b}"));
    }
    for b in ["tunctl", "uml_mconsole", "uml_switch", "uml_watchdog"] {
        mode_of(&format!("/usr/share/fish/vendor_completions.d/{b}.fish"));
    }
    for doc in [
        "copyright",
        "changelog.Debian.gz",
        "README.Debian",
        "README.md",
    ] {
        assert_eq!(
            mode_of(&format!("/usr/share/doc/{PACKAGE}/{doc}")),
            "-rw-r--r--"
        );
    }

    // Control fields.
    let info = dpkg_deb(&["-f"], &deb).stdout_str();
    let get = |name: &str| {
        info.lines()
            .find_map(|l| l.strip_prefix(&format!("{name}: ")))
            .unwrap_or_default()
            .to_string()
    };
    assert_eq!(get("Package"), PACKAGE);
    assert_eq!(get("Version"), version());
    assert_eq!(get("Architecture"), arch());
    let depends: Vec<String> = get("Depends").split(", ").map(str::to_string).collect();
    assert!(
        depends.iter().any(|d| d == "adduser"),
        "Depends: {depends:?}"
    );
    assert!(
        !depends.iter().any(|d| d.starts_with("net-tools")),
        "Depends: {depends:?}"
    );
    // uml_switch_pcap, the capture helper, links libpcap.
    assert!(
        depends.iter().any(|d| d.starts_with("libpcap0.8")),
        "Depends: {depends:?}"
    );
    // uml_switch_nat links libslirp.
    assert!(
        depends.iter().any(|d| d.starts_with("libslirp0")),
        "Depends: {depends:?}"
    );
    // tunctl, jail_uml and uml_net are linked against the shared glibc
    // (names through NSS); the others are static.
    assert!(
        depends.iter().any(|d| d.starts_with("libc6 (>= ")),
        "Depends: {depends:?}"
    );
    assert!(get("Pre-Depends").starts_with("init-system-helpers"));
    for rel in ["Provides", "Conflicts", "Replaces"] {
        assert_eq!(get(rel), "uml-utilities", "{rel}");
    }
    assert!(get("Built-Using").contains("glibc (= "), "{info}");

    // conffiles, md5sums, maintainer scripts.
    let out = run_with_timeout(
        Command::new("dpkg-deb")
            .arg("-I")
            .arg(&deb)
            .arg("conffiles"),
        SHORT,
    );
    assert!(out.success(), "{out}");
    let mut listed: Vec<String> = out.stdout_str().lines().map(str::to_string).collect();
    listed.sort();
    assert_eq!(listed, CONFFILES);
    let out = run_with_timeout(
        Command::new("dpkg-deb").arg("-I").arg(&deb).arg("md5sums"),
        SHORT,
    );
    assert!(out.success(), "{out}");
    assert!(out.stdout_str().contains("  usr/bin/uml_net\n"), "{out}");

    let dir = TempDir::new().unwrap();
    let ctl = dir.path().join("DEBIAN");
    let out = run_with_timeout(
        Command::new("dpkg-deb").arg("-e").arg(&deb).arg(&ctl),
        SHORT,
    );
    assert!(out.success(), "{out}");
    for script in ["postinst", "prerm", "postrm"] {
        let path = ctl.join(script);
        let text = fs::read_to_string(&path).unwrap();
        assert!(!text.contains("#DEBHELPER#"), "{script}: token left");
        let out = run_with_timeout(Command::new("sh").arg("-n").arg(&path), SHORT);
        assert!(out.success(), "{script}: {out}");
    }
    let postinst = fs::read_to_string(ctl.join("postinst")).unwrap();
    for needle in [
        "adduser --quiet --system --group --no-create-home",
        "--home /nonexistent uml-net",
        "dpkg-statoverride --update --add root uml-net 4754 /usr/bin/uml_net",
        "deb-systemd-helper enable uml-utilities.service",
        "deb-systemd-helper enable uml-utilities.socket",
        "update-rc.d uml-utilities defaults",
    ] {
        assert!(postinst.contains(needle), "postinst lacks {needle:?}");
    }

    // The unit runs the packaged wrapper.
    let data = dir.path().join("data");
    let out = run_with_timeout(
        Command::new("dpkg-deb").arg("-x").arg(&deb).arg(&data),
        SHORT,
    );
    assert!(out.success(), "{out}");
    let unit =
        fs::read_to_string(data.join("usr/lib/systemd/system/uml-utilities.service")).unwrap();
    assert!(
        unit.contains(&format!("ExecStart={WRAPPER} start\n")),
        "{unit}"
    );
    assert!(unit.contains("\nType=notify\n"), "{unit}");
    let socket =
        fs::read_to_string(data.join("usr/lib/systemd/system/uml-utilities.socket")).unwrap();
    assert!(
        socket.contains(&format!("\nListenStream={CTL}\n")),
        "{socket}"
    );
}

#[test]
fn lintian_reports_no_errors_or_warnings() {
    let deb = need!(the_deb());
    let lintian = need!(program("lintian", "lintian"));
    let out = run_with_timeout(
        Command::new(lintian)
            .args(["--no-tag-display-limit"])
            .arg(&deb),
        Duration::from_secs(300),
    );
    let text = out.stdout_str();
    let bad: Vec<&str> = text
        .lines()
        .filter(|l| l.starts_with("E: ") || l.starts_with("W: "))
        .collect();
    assert!(
        bad.is_empty() && !out.timed_out,
        "lintian: fix these or override them with a reason in \
         packaging/debian/lintian-overrides (and packaging/README.md):\n{out}"
    );
    eprintln!("lintian:\n{text}");
}

// ---------------------------------------------------------------------
// The chroot.

/// The cached base root (a tarball), made once per machine.
static BASES: Mutex<Vec<(Suite, Result<PathBuf, String>)>> = Mutex::new(Vec::new());

fn cache_dir() -> PathBuf {
    std::env::var_os("UML_PKG_TEST_CACHE")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(DEFAULT_CACHE))
}

/// The Debian archive and its keyring: `UML_PKG_TEST_MIRROR` and
/// `UML_PKG_TEST_KEYRING` when set, else the host's own configured archive
/// (the first `.../debian` source of a plain suite in
/// `/etc/apt/sources.list.d/*.sources` or `/etc/apt/sources.list`, with
/// its `Signed-By`), as `scripts/fetch-kernel7` does (`docs/testing.md` §11),
/// else deb.debian.org with debian-archive-keyring.
fn archive() -> (String, Option<String>) {
    let host = host_archive();
    let mirror = std::env::var("UML_PKG_TEST_MIRROR")
        .ok()
        .filter(|m| !m.is_empty())
        .or_else(|| host.as_ref().map(|h| h.0.clone()))
        .unwrap_or_else(|| DEFAULT_MIRROR.to_string());
    let keyring = std::env::var("UML_PKG_TEST_KEYRING")
        .ok()
        .filter(|k| !k.is_empty())
        .or_else(|| host.and_then(|h| h.1))
        .or_else(|| {
            Path::new(DEFAULT_KEYRING)
                .is_file()
                .then(|| DEFAULT_KEYRING.to_string())
        });
    (mirror, keyring)
}

/// The host's Debian archive: `(URI, Signed-By)` of the first source of a
/// plain suite (no `-security`, `-updates`) whose URI ends in `/debian`.
fn host_archive() -> Option<(String, Option<String>)> {
    let mut texts: Vec<(bool, String)> = Vec::new();
    if let Ok(dir) = fs::read_dir("/etc/apt/sources.list.d") {
        let mut files: Vec<PathBuf> = dir
            .flatten()
            .map(|e| e.path())
            .filter(|p| p.extension().is_some_and(|e| e == "sources"))
            .collect();
        files.sort();
        for f in files {
            texts.push((true, fs::read_to_string(f).unwrap_or_default()));
        }
    }
    texts.push((
        false,
        fs::read_to_string("/etc/apt/sources.list").unwrap_or_default(),
    ));
    texts
        .iter()
        .find_map(|(deb822, text)| parse_sources(text, *deb822))
}

/// See [`host_archive`]; `deb822`: the text is in the `.sources` format,
/// else one-line `deb [options] URI SUITE COMPONENTS`.
fn parse_sources(text: &str, deb822: bool) -> Option<(String, Option<String>)> {
    let is_debian = |uri: &str| uri.trim_end_matches('/').ends_with("/debian");
    let plain = |suite: &str| !suite.contains('-');
    if deb822 {
        for stanza in text.split("\n\n") {
            let field = |name: &str| {
                stanza.lines().find_map(|l| {
                    let (k, v) = l.split_once(':')?;
                    (!l.trim_start().starts_with('#') && k.trim().eq_ignore_ascii_case(name))
                        .then(|| v.trim().to_string())
                })
            };
            let (Some(uris), Some(suites)) = (field("URIs"), field("Suites")) else {
                continue;
            };
            if !field("Types")
                .unwrap_or_default()
                .split_whitespace()
                .any(|t| t == "deb")
            {
                continue;
            }
            let Some(uri) = uris.split_whitespace().find(|u| is_debian(u)) else {
                continue;
            };
            if suites.split_whitespace().any(plain) {
                return Some((uri.to_string(), field("Signed-By")));
            }
        }
        return None;
    }
    for line in text.lines() {
        let mut words = line.split_whitespace().peekable();
        if words.next() != Some("deb") {
            continue;
        }
        let mut keyring = None;
        if words.peek().is_some_and(|w| w.starts_with('[')) {
            for w in words.by_ref() {
                let opt = w.trim_start_matches('[').trim_end_matches(']');
                if let Some(k) = opt.strip_prefix("signed-by=") {
                    keyring = Some(k.to_string());
                }
                if w.ends_with(']') {
                    break;
                }
            }
        }
        let (Some(uri), Some(suite)) = (words.next(), words.next()) else {
            continue;
        };
        if is_debian(uri) && plain(suite) {
            return Some((uri.to_string(), keyring));
        }
    }
    None
}

fn tail(text: &str, n: usize) -> String {
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(n)..].join("\n")
}

/// `sh -c SCRIPT` chrooted into `root`, with `/proc` mounted there inside a
/// private mount namespace (gone when the command ends).
fn chroot_cmd(root: &Path, script: &str) -> Command {
    let mut cmd = Command::new("unshare");
    cmd.args(["-m", "--propagation", "private", "sh", "-c"])
        .arg(r#"mount -t proc proc "$0/proc" && exec chroot "$0" /bin/sh -c "$1""#)
        .arg(root)
        .arg(script)
        .env_clear()
        .env("PATH", "/usr/sbin:/usr/bin:/sbin:/bin")
        .env("LC_ALL", "C")
        .env("HOME", "/root")
        .env("DEBIAN_FRONTEND", "noninteractive");
    cmd
}

/// The base tarball of `suite`: a debootstrapped minbase root with
/// [`Suite::include`] and Debian's uml-utilities .deb in
/// `/var/cache/apt/archives`. Made when missing or older than
/// [`Suite::max_age`] (under a lock, so that concurrent test processes
/// make it once).
fn base_tarball(suite: Suite) -> Result<PathBuf, String> {
    let mut bases = BASES.lock().unwrap_or_else(|e| e.into_inner());
    if let Some((_, r)) = bases.iter().find(|(s, _)| *s == suite) {
        return r.clone();
    }
    let r = make_base_tarball(suite);
    bases.push((suite, r.clone()));
    r
}

/// Whether the cached `tarball` of `suite` can be used as it is.
fn fresh(suite: Suite, tarball: &Path) -> bool {
    let Ok(meta) = fs::metadata(tarball) else {
        return false;
    };
    match suite.max_age() {
        None => true,
        Some(max) => meta
            .modified()
            .ok()
            .and_then(|t| t.elapsed().ok())
            .is_some_and(|age| age < max),
    }
}

fn make_base_tarball(suite: Suite) -> Result<PathBuf, String> {
    let dir = cache_dir();
    let tarball = dir.join(format!("{}-{}.tar.gz", suite.base_name(), arch()));
    if fresh(suite, &tarball) {
        return Ok(tarball);
    }
    match debootstrap_tarball(suite, &dir, &tarball) {
        Ok(()) => Ok(tarball),
        Err(e) if tarball.is_file() => {
            eprintln!(
                "package tests: renewing {} failed, using the old one: {e}",
                tarball.display()
            );
            Ok(tarball)
        }
        Err(e) => Err(e),
    }
}

/// Debootstraps `suite` and writes the tarball (atomically).
fn debootstrap_tarball(suite: Suite, dir: &Path, tarball: &Path) -> Result<(), String> {
    let debootstrap = program("debootstrap", "debootstrap")?;
    fs::create_dir_all(dir).map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
    let lock = fs::File::create(dir.join(".lock"))
        .map_err(|e| format!("cannot create {}/.lock: {e}", dir.display()))?;
    let deadline = Instant::now() + DEBOOTSTRAP_TIMEOUT + Duration::from_secs(120);
    let _lock = loop {
        match nix::fcntl::Flock::lock(
            lock.try_clone().map_err(|e| e.to_string())?,
            nix::fcntl::FlockArg::LockExclusiveNonblock,
        ) {
            Ok(l) => break l,
            Err((_, _)) if Instant::now() < deadline => thread::sleep(Duration::from_secs(1)),
            Err((_, e)) => return Err(format!("cannot lock {}/.lock: {e}", dir.display())),
        }
    };
    if fresh(suite, tarball) {
        return Ok(());
    }
    let work = tempfile::Builder::new()
        .prefix(".make-")
        .tempdir_in(dir)
        .map_err(|e| format!("cannot create a directory in {}: {e}", dir.display()))?;
    let root = work.path().join("root");
    let started = Instant::now();
    let (mirror, keyring) = archive();
    let name = suite.name();
    eprintln!(
        "package tests: debootstrap {name} (minbase) from {mirror} (keyring {}) into {} ...",
        keyring.as_deref().unwrap_or("debootstrap's default"),
        root.display()
    );
    // In a private mount namespace: whatever debootstrap mounts goes away
    // with it, even when it is killed.
    let mut cmd = Command::new("unshare");
    cmd.args(["-m", "--propagation", "private"])
        .arg(&debootstrap)
        .args([
            "--variant=minbase",
            &format!("--include={}", suite.include()),
        ]);
    if let Some(k) = &keyring {
        cmd.arg(format!("--keyring={k}"));
    }
    cmd.arg(name).arg(&root).arg(&mirror);
    let out = run_with_timeout(&mut cmd, DEBOOTSTRAP_TIMEOUT);
    if !out.success() {
        return Err(format!(
            "debootstrap {name} from {mirror} failed (mirror unreachable?): code {:?}, timed out {}\n{}\n{}",
            out.code,
            out.timed_out,
            tail(&out.stdout_str(), 15),
            tail(&out.stderr_str(), 15)
        ));
    }
    let out = run_with_timeout(
        &mut chroot_cmd(
            &root,
            // (Valid-Until is not checked: unstable's Release files expire
            // within a week, and a test machine's archive may be a
            // snapshot older than that.)
            "apt-get clean && apt-get -o Acquire::Check-Valid-Until=false update -q && \
             apt-get install -y -q --download-only --no-install-recommends uml-utilities && \
             ls /var/cache/apt/archives/uml-utilities_*.deb && rm -rf /var/lib/apt/lists/*",
        ),
        Duration::from_secs(300),
    );
    if !out.success() {
        return Err(format!(
            "downloading Debian's uml-utilities into the chroot failed: {out}"
        ));
    }
    let partial = work.path().join("base.tar.gz");
    let out = run_with_timeout(
        Command::new("tar")
            .arg("-C")
            .arg(&root)
            .args(["--numeric-owner", "-czf"])
            .arg(&partial)
            .arg("."),
        Duration::from_secs(300),
    );
    if !out.success() {
        return Err(format!("tar of the chroot failed: {out}"));
    }
    fs::rename(&partial, tarball).map_err(|e| format!("rename: {e}"))?;
    eprintln!(
        "package tests: cached {} after {:.0?}",
        tarball.display(),
        started.elapsed()
    );
    Ok(())
}

/// A fresh root from the base tarball, with a `policy-rc.d` that keeps
/// maintainer scripts from starting services. Removed on drop.
struct Chroot {
    dir: Option<TempDir>,
    root: PathBuf,
}

impl Chroot {
    fn new(tarball: &Path) -> Chroot {
        let dir = tempfile::Builder::new()
            .prefix("umlpkg-")
            .tempdir()
            .expect("tempdir");
        let root = dir.path().join("root");
        fs::create_dir(&root).unwrap();
        let c = Chroot {
            dir: Some(dir),
            root,
        };
        let out = run_with_timeout(
            Command::new("tar")
                .arg("-C")
                .arg(&c.root)
                .args(["--numeric-owner", "-xzf"])
                .arg(tarball),
            CMD_TIMEOUT,
        );
        assert!(out.success(), "extracting {}: {out}", tarball.display());
        let policy = c.path("/usr/sbin/policy-rc.d");
        fs::write(&policy, "#!/bin/sh\nexit 101\n").unwrap();
        fs::set_permissions(&policy, fs::Permissions::from_mode(0o755)).unwrap();
        c
    }

    /// `rel` (absolute inside the chroot) as a host path.
    fn path(&self, rel: &str) -> PathBuf {
        self.root.join(rel.trim_start_matches('/'))
    }

    fn copy_in(&self, from: &Path, to: &str) {
        fs::copy(from, self.path(to)).unwrap();
    }

    fn run(&self, script: &str) -> RunOutput {
        run_with_timeout(&mut chroot_cmd(&self.root, script), CMD_TIMEOUT)
    }

    /// Runs `script`, asserts success and returns its stdout.
    fn ok(&self, script: &str) -> String {
        let out = self.run(script);
        assert!(out.success(), "in the chroot: {script}\n{out}");
        out.stdout_str()
    }

    fn exists(&self, rel: &str) -> bool {
        self.path(rel).symlink_metadata().is_ok()
    }

    /// Every path in the root, except dpkg's and the logs' bookkeeping, the
    /// password files' backups (`/etc/passwd-`), which any account change
    /// rewrites, and adduser's lock file `/run/adduser`.
    fn snapshot(&self) -> BTreeSet<String> {
        const SKIP: [&str; 7] = [
            "proc",
            "dev",
            "sys",
            "var/lib/dpkg",
            "var/log",
            "var/cache/debconf",
            "var/cache/ldconfig",
        ];
        fn walk(base: &Path, dir: &Path, out: &mut BTreeSet<String>) {
            let Ok(entries) = fs::read_dir(dir) else {
                return;
            };
            for e in entries.flatten() {
                let path = e.path();
                let rel = path
                    .strip_prefix(base)
                    .unwrap()
                    .to_string_lossy()
                    .into_owned();
                if SKIP.contains(&rel.as_str())
                    || [
                        "etc/passwd-",
                        "etc/group-",
                        "etc/shadow-",
                        "etc/gshadow-",
                        "run/adduser",
                    ]
                    .contains(&rel.as_str())
                {
                    continue;
                }
                let is_dir = e.file_type().is_ok_and(|t| t.is_dir());
                out.insert(rel);
                if is_dir {
                    walk(base, &path, out);
                }
            }
        }
        let mut out = BTreeSet::new();
        walk(&self.root, &self.root, &mut out);
        out
    }
}

impl Drop for Chroot {
    fn drop(&mut self) {
        // Every mount of these tests lives in a private namespace; should
        // one have reached the host's, take it away before deleting.
        if let Ok(info) = fs::read_to_string("/proc/self/mountinfo") {
            let prefix = self.root.to_string_lossy().into_owned();
            let mut leaked: Vec<String> = info
                .lines()
                .filter_map(|l| l.split(' ').nth(4).map(str::to_string))
                .filter(|m| m.starts_with(&prefix))
                .collect();
            leaked.sort_by_key(|m| std::cmp::Reverse(m.len()));
            for m in leaked {
                eprintln!("package tests: unmounting leaked {m}");
                let _ = run_with_timeout(Command::new("umount").args(["-l", &m]), SHORT);
            }
        }
        if let Some(dir) = self.dir.take() {
            if std::env::var("UML_TEST_KEEP").as_deref() == Ok("1") {
                eprintln!("package tests: keeping {}", dir.keep().display());
            } else if let Err(e) = dir.close() {
                eprintln!("package tests: cannot remove the chroot: {e}");
            }
        }
    }
}

fn chroot_with_package(suite: Suite) -> Result<(Chroot, PathBuf), String> {
    let deb = the_deb()?;
    let tarball = base_tarball(suite)?;
    let c = Chroot::new(&tarball);
    // The userland is the suite's.
    let version = fs::read_to_string(c.path("/etc/debian_version")).unwrap_or_default();
    let libc = c.ok("dpkg-query -W -f '${Version}' libc6");
    let right = match suite {
        Suite::Bookworm => version.starts_with("12."),
        Suite::Unstable => version.trim_end().ends_with("/sid"),
    };
    assert!(
        right,
        "{} root with debian_version {version:?}",
        suite.name()
    );
    eprintln!(
        "package tests: {} root: debian_version {}, libc6 {libc}",
        suite.name(),
        version.trim()
    );
    c.copy_in(&deb, "/tmp/pkg.deb");
    Ok((c, deb))
}

fn statoverride(c: &Chroot) -> Option<String> {
    let out = c.run("dpkg-statoverride --list /usr/bin/uml_net");
    out.success().then(|| out.stdout_str().trim().to_string())
}

/// The programs run; `uml_net` runs only for root and group uml-net.
fn check_programs(c: &Chroot) {
    let out = c.run("uml_mconsole --version");
    assert!(out.success(), "{out}");
    assert!(
        out.stdout_str().contains(env!("CARGO_PKG_VERSION")),
        "{out}"
    );
    for (cmd, code, text) in [
        ("tunctl -h", 1, "Create: tunctl [-b] [-u owner]"),
        ("uml_switch -bogus", 1, "Usage : uml_switch"),
        ("uml_moo", 1, "uml_moo usage:"),
        ("uml_mkcow", 2, "uml_mkcow usage:"),
        ("jail_uml", 1, "Usage : jail_uml"),
        (
            "/usr/lib/uml/port-helper -uml-socket",
            1,
            "Usage : port-helper",
        ),
        (
            "/usr/lib64/uml/port-helper -uml-socket",
            1,
            "Usage : port-helper",
        ),
        ("uml_net", 1, "uml_net : bad argument list"),
        // The switch's capture helper: it starts (libpcap0.8 is there).
        (
            "/usr/lib/uml/uml_switch_pcap",
            2,
            "usage: uml_switch_pcap --fd N IFNAME [FILTER]",
        ),
    ] {
        let out = c.run(cmd);
        assert_eq!(out.code, Some(code), "{cmd}: {out}");
        assert!(out.stderr_str().contains(text), "{cmd}: {out}");
    }
    assert_eq!(c.run("uml_watchdog").code, Some(1));
    // Where 6.1 and where 64-bit 7.x kernels look: one program.
    assert_eq!(
        c.ok("readlink -e /usr/lib64/uml/port-helper").trim(),
        "/usr/lib/uml/port-helper"
    );
    // (Through sh: setpriv checks the program's permissions before it
    // changes its credentials.)
    let out = c.run("setpriv --reuid=nobody --regid=nogroup --clear-groups sh -c /usr/bin/uml_net");
    assert!(
        !out.success() && out.stderr_str().contains("Permission denied"),
        "uml_net must not run for others: {out}"
    );
    let out = c.run("setpriv --reuid=nobody --regid=uml-net --clear-groups sh -c /usr/bin/uml_net");
    assert!(
        out.code == Some(1) && out.stderr_str().contains("bad argument list"),
        "group uml-net runs uml_net: {out}"
    );
    let page = c.ok("zcat /usr/share/man/man8/tunctl.8.gz");
    assert!(page.contains(".TH tunctl 8 "), "{page}");
}

#[test]
fn install_remove_purge_in_a_debootstrap_chroot() {
    install_remove_purge(Suite::Bookworm);
}

#[test]
fn install_remove_purge_in_an_unstable_chroot() {
    install_remove_purge(Suite::Unstable);
}

fn install_remove_purge(suite: Suite) {
    require!(Requirement::Root);
    let (c, _) = need!(chroot_with_package(suite));
    let before = c.snapshot();
    let accounts = |c: &Chroot| {
        ["passwd", "group", "shadow", "gshadow"]
            .map(|f| fs::read_to_string(c.path(&format!("/etc/{f}"))).unwrap_or_default())
    };
    let accounts_before = accounts(&c);
    assert!(c.run("getent passwd uml-net").code == Some(2));

    // Install.
    let out = c.ok("dpkg -i /tmp/pkg.deb");
    eprintln!("dpkg -i:\n{out}");
    assert!(c
        .ok("dpkg -s uml-utilities-rs")
        .contains("Status: install ok installed"));
    assert_eq!(
        statoverride(&c).as_deref(),
        Some("root uml-net 4754 /usr/bin/uml_net")
    );
    assert_eq!(
        c.ok("stat -c '%a %U %G' /usr/bin/uml_net").trim(),
        "4754 root uml-net"
    );
    let user = c.ok("getent passwd uml-net");
    let f: Vec<&str> = user.trim().split(':').collect();
    assert_eq!(f.len(), 7, "{user}");
    let uid: u32 = f[2].parse().unwrap();
    assert!(uid < 1000, "not a system user: {user}");
    assert_eq!(
        (f[5], f[6]),
        ("/nonexistent", "/usr/sbin/nologin"),
        "{user}"
    );
    let group = c.ok("getent group uml-net");
    assert_eq!(group.split(':').nth(2), Some(f[3]), "{group} vs {user}");
    assert!(!c.exists("/nonexistent"));
    assert_eq!(c.ok("dpkg --verify uml-utilities-rs"), "");
    check_programs(&c);
    assert!(c.exists("/etc/systemd/system/multi-user.target.wants/uml-utilities.service"));
    assert!(c.exists("/etc/systemd/system/sockets.target.wants/uml-utilities.socket"));
    assert!(c.exists("/etc/rc2.d/S01uml-utilities"));

    // Remove: the statoverride goes, the account and the conffiles stay.
    c.ok("dpkg -r uml-utilities-rs");
    assert_eq!(statoverride(&c), None);
    assert!(!c.exists("/usr/bin/uml_net"));
    assert!(c.run("getent passwd uml-net").success());
    assert!(c.exists("/etc/default/uml-utilities"));
    let mode = fs::metadata(c.path("/etc/init.d/uml-utilities"))
        .unwrap()
        .permissions()
        .mode();
    assert_eq!(mode & 0o111, 0, "the init script of a removed package runs");

    // Purge: nothing left.
    c.ok("dpkg -P uml-utilities-rs");
    assert_eq!(c.run("getent passwd uml-net").code, Some(2));
    assert_eq!(c.run("getent group uml-net").code, Some(2));
    assert!(!c.exists("/run/uml-utilities") && !c.exists("/var/lib/uml-utilities-rs"));
    // (--list exits 1 when there is no override at all.)
    assert_eq!(c.run("dpkg-statoverride --list").stdout_str(), "");
    let after = c.snapshot();
    let added: Vec<&String> = after.difference(&before).collect();
    let removed: Vec<&String> = before.difference(&after).collect();
    assert!(
        added.is_empty() && removed.is_empty(),
        "purge left {added:?} and lost {removed:?}"
    );
    assert_eq!(accounts(&c), accounts_before, "account files changed");
    assert!(!c.ok("dpkg -l").contains("uml-utilities-rs"));

    // An administrator's statoverride is kept, on install and on removal.
    c.ok("dpkg-statoverride --add root root 0755 /usr/bin/uml_net");
    c.ok("dpkg -i /tmp/pkg.deb");
    assert_eq!(
        statoverride(&c).as_deref(),
        Some("root root 755 /usr/bin/uml_net")
    );
    assert_eq!(
        c.ok("stat -c '%a %U %G' /usr/bin/uml_net").trim(),
        "755 root root"
    );
    c.ok("dpkg -r uml-utilities-rs");
    assert_eq!(
        statoverride(&c).as_deref(),
        Some("root root 755 /usr/bin/uml_net")
    );
    c.ok("dpkg-statoverride --remove /usr/bin/uml_net && dpkg -P uml-utilities-rs");
    assert_eq!(c.run("getent passwd uml-net").code, Some(2));
}

#[test]
fn replaces_debians_uml_utilities_in_a_debootstrap_chroot() {
    replaces_debians_uml_utilities(Suite::Bookworm);
}

#[test]
fn replaces_debians_uml_utilities_in_an_unstable_chroot() {
    replaces_debians_uml_utilities(Suite::Unstable);
}

fn replaces_debians_uml_utilities(suite: Suite) {
    require!(Requirement::Root);
    let (c, _) = need!(chroot_with_package(suite));
    c.ok("dpkg -i /var/cache/apt/archives/uml-utilities_*.deb");
    assert_eq!(
        statoverride(&c).as_deref(),
        Some("root uml-net 4754 /usr/bin/uml_net")
    );
    assert!(c.exists("/usr/bin/humfsify"));

    // Ours in its place: Debian's package is removed, its conffiles and
    // the statoverride become ours.
    let out = c.run("dpkg -i /tmp/pkg.deb");
    assert!(
        out.success()
            && out
                .stderr_str()
                .contains("will remove uml-utilities in favour of uml-utilities-rs"),
        "{out}"
    );
    assert!(c.ok("dpkg -s uml-utilities").contains(" ok config-files\n"));
    assert!(c
        .ok("dpkg -s uml-utilities-rs")
        .contains("Status: install ok installed"));
    assert!(!c.exists("/usr/bin/humfsify"), "Debian's files are gone");
    for f in CONFFILES {
        assert_eq!(
            c.ok(&format!("dpkg -S {f}")).trim(),
            format!("uml-utilities-rs: {f}")
        );
    }
    assert!(fs::read_to_string(c.path("/etc/default/uml-utilities"))
        .unwrap()
        .contains("/run/uml-utilities/uml_switch.ctl"));
    assert_eq!(
        statoverride(&c).as_deref(),
        Some("root uml-net 4754 /usr/bin/uml_net")
    );
    assert_eq!(
        c.ok("stat -c '%a %U %G' /usr/bin/uml_net").trim(),
        "4754 root uml-net"
    );
    check_programs(&c);

    // Purging what is left of Debian's package keeps our files, but its
    // postrm runs `update-rc.d uml-utilities remove`, which takes the
    // init script's links away (README.Debian says to run update-rc.d
    // again; systemd's enablement is not affected).
    assert!(c.exists("/etc/rc2.d/S01uml-utilities"));
    c.ok("dpkg -P uml-utilities");
    assert!(c
        .ok("dpkg -s uml-utilities-rs")
        .contains("install ok installed"));
    assert_eq!(c.ok("dpkg --verify uml-utilities-rs"), "");
    assert!(c.exists("/etc/systemd/system/multi-user.target.wants/uml-utilities.service"));
    assert!(!c.exists("/etc/rc2.d/S01uml-utilities"));
    c.ok("update-rc.d uml-utilities defaults");
    assert!(c.exists("/etc/rc2.d/S01uml-utilities"));

    // Purging ours keeps the uml-net account Debian's package made.
    c.ok("dpkg -P uml-utilities-rs");
    assert!(!c.exists("/usr/bin/uml_switch"));
    assert!(!c.exists("/etc/rc2.d/S01uml-utilities"));
    assert!(c.run("getent passwd uml-net").success());
    assert_eq!(statoverride(&c), None);
}

// ---------------------------------------------------------------------
// The service, in private network and mount namespaces.

/// A process in the test's network namespace holding a private mount
/// namespace in which `/run` is a tmpfs shared with the chroot (`/run`
/// there too), the chroot has `/proc` and `/dev/net`. Killed on drop.
struct Holder {
    child: Child,
    ns: String,
    root: PathBuf,
}

impl Holder {
    fn start(ns: &NetNs, root: &Path, dir: &Path) -> Holder {
        let ready = dir.join("holder.ready");
        let log = fs::File::create(dir.join("holder.log")).unwrap();
        let child = ns
            .exec("unshare")
            .args(["-m", "--propagation", "private", "sh", "-c"])
            .arg(
                r#"set -e
root="$1"
mount -t tmpfs -o mode=0755 tmpfs "$root/run"
mount -t proc proc "$root/proc"
mkdir -p "$root/dev/net"
mount --bind /dev/net "$root/dev/net"
mount --bind "$root/run" /run
touch "$2"
exec sleep 900"#,
            )
            .arg("holder")
            .arg(root)
            .arg(&ready)
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .process_group(0)
            .spawn()
            .expect("start the namespace holder");
        let mut h = Holder {
            child,
            ns: ns.name().to_string(),
            root: root.to_path_buf(),
        };
        let deadline = Instant::now() + SHORT;
        while !ready.exists() {
            if Instant::now() >= deadline || h.child.try_wait().ok().flatten().is_some() {
                panic!(
                    "the namespace holder did not come up: {}",
                    fs::read_to_string(dir.join("holder.log")).unwrap_or_default()
                );
            }
            thread::sleep(Duration::from_millis(50));
        }
        h
    }

    fn pid(&self) -> u32 {
        self.child.id()
    }

    fn mount_ns(&self) -> String {
        format!("--mount=/proc/{}/ns/mnt", self.pid())
    }

    /// `ARGS` in the network and mount namespaces (host root).
    fn cmd(&self, args: &[&str]) -> Command {
        let mut cmd = Command::new("nsenter");
        cmd.arg(format!("--net=/run/netns/{}", self.ns))
            .arg(self.mount_ns())
            .arg("--")
            .args(args);
        cmd
    }

    fn run(&self, args: &[&str]) -> RunOutput {
        run_with_timeout(&mut self.cmd(args), SHORT)
    }

    /// `sh -c SCRIPT` in the namespaces, chrooted.
    fn chroot(&self, script: &str) -> Command {
        let root = self.root.to_string_lossy().into_owned();
        let mut cmd = self.cmd(&["chroot", &root, "/bin/sh", "-c", script]);
        cmd.env_clear()
            .env("PATH", "/usr/sbin:/usr/bin:/sbin:/bin")
            .env("LC_ALL", "C");
        cmd
    }

    fn in_chroot(&self, script: &str) -> RunOutput {
        run_with_timeout(&mut self.chroot(script), SHORT)
    }

    fn ok(&self, script: &str) -> String {
        let out = self.in_chroot(script);
        assert!(out.success(), "in the namespaces: {script}\n{out}");
        out.stdout_str()
    }
}

impl Drop for Holder {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let deadline = Instant::now() + Duration::from_secs(5);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
                return;
            }
            thread::sleep(Duration::from_millis(20));
        }
    }
}

/// A process started by the test and stopped (SIGTERM, then SIGKILL) on
/// drop.
struct Daemon {
    pid: u32,
    child: Option<Child>,
}

impl Daemon {
    fn stop(&mut self) -> bool {
        if pid_alive(self.pid) {
            let _ = kill(Pid::from_raw(self.pid as i32), Signal::SIGTERM);
        }
        let deadline = Instant::now() + Duration::from_secs(5);
        loop {
            let gone = match self.child.as_mut() {
                Some(c) => c.try_wait().ok().flatten().is_some(),
                None => !pid_alive(self.pid),
            };
            if gone {
                return true;
            }
            if Instant::now() >= deadline {
                let _ = kill(Pid::from_raw(self.pid as i32), Signal::SIGKILL);
                if let Some(c) = self.child.as_mut() {
                    let _ = c.wait();
                }
                return false;
            }
            thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        self.stop();
    }
}

/// `Uid:` of `/proc/PID/status`: real, effective, saved, filesystem.
fn uids(pid: u32) -> Vec<u32> {
    let status = fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("Uid:"))
        .map(|v| {
            v.split_whitespace()
                .filter_map(|n| n.parse().ok())
                .collect()
        })
        .unwrap_or_default()
}

fn wait_for(what: &str, timeout: Duration, mut done: impl FnMut() -> bool) {
    let deadline = Instant::now() + timeout;
    while !done() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        thread::sleep(Duration::from_millis(50));
    }
}

/// A UML in the holder's namespaces with a plain `eth0=daemon` and the
/// address `10.0.0.N/24`, running `then` after bringing `eth0` up.
fn boot_on_default_socket(ns: &NetNs, holder: &Holder, n: u8, then: &str) -> Uml {
    let mut cfg = UmlConfig::new(&format!("pkg{n}"));
    cfg.netns = Some(ns.name().to_string());
    cfg.wrapper = vec!["nsenter".into(), holder.mount_ns(), "--".into()];
    cfg.lifetime = UML_LIFETIME;
    cfg.extra_args.push("eth0=daemon".to_string());
    cfg.init_script = format!(
        "ip addr add 10.0.0.{n}/24 dev eth0 && ip link set eth0 up\n\
         echo \"TEST: eth0 up rc=$?\"\n\
         {then}\n"
    );
    Uml::boot(cfg).expect("boot UML")
}

fn expect_step_ok(uml: &mut Uml, step: &str, switch_out: &Path) {
    let marker = format!("TEST: {step} rc=");
    let seen = uml.wait_console(&marker, GUEST_STEP);
    let console = uml.console();
    assert!(
        seen && console
            .lines()
            .any(|l| l.trim_end() == format!("{marker}0")),
        "{}: {step} failed\n--- console ---\n{console}\n--- switch ---\n{}",
        uml.umid(),
        fs::read_to_string(switch_out).unwrap_or_default()
    );
}

#[test]
fn service_serves_umls_on_the_default_socket() {
    service_serves_umls(Suite::Bookworm);
}

#[test]
fn service_serves_umls_on_the_default_socket_in_unstable() {
    service_serves_umls(Suite::Unstable);
}

fn service_serves_umls(suite: Suite) {
    require!(Requirement::Root, Requirement::LinuxUml, Requirement::NetNs);
    need!(program("ping", "iputils-ping"));
    need!(program("nsenter", "util-linux"));
    need!(program("systemd-socket-activate", "systemd"));
    let (c, _) = need!(chroot_with_package(suite));
    c.ok("dpkg -i /tmp/pkg.deb");
    let uid: u32 = c.ok("id -u uml-net").trim().parse().unwrap();
    let work = TempDir::new().unwrap();
    let ns = NetNs::new("pkgsvc");
    let holder = Holder::start(&ns, &c.root, work.path());

    // A management socket for the group adm, of which uml-net is made a
    // member (UML_SWITCH_MGMT, UML_SWITCH_MGMT_GROUP).
    holder.ok("adduser --quiet uml-net adm && \
         printf 'UML_SWITCH_MGMT=\"%s\"\\nUML_SWITCH_MGMT_GROUP=\"adm\"\\n' \
         /run/uml-utilities/uml_switch.mgmt >> /etc/default/uml-utilities");

    // systemd's steps, with the installed units' settings: the socket
    // unit's directory and socket (systemd-socket-activate binds it and
    // passes it with its name, as LISTEN_FDS/LISTEN_FDNAMES), ExecCondition,
    // ExecStart (Type=notify: systemd waits for READY=1 on NOTIFY_SOCKET),
    // ExecStartPost.
    let socket_unit = fs::read_to_string(c.path("/usr/lib/systemd/system/uml-utilities.socket"))
        .expect("the socket unit is installed");
    let service_unit =
        fs::read_to_string(c.path("/usr/lib/systemd/system/uml-utilities.service")).unwrap();
    let setting = |unit: &str, key: &str| -> String {
        unit.lines()
            .rev()
            .find_map(|l| l.strip_prefix(key)?.strip_prefix('='))
            .unwrap_or_else(|| panic!("no {key}= in {unit}"))
            .to_string()
    };
    assert_eq!(setting(&service_unit, "Type"), "notify");
    let listen = setting(&socket_unit, "ListenStream");
    assert_eq!(listen, CTL);
    let exec_start = setting(&service_unit, "ExecStart");
    holder.ok(&format!(
        "mkdir -p -m {} /run/uml-utilities",
        setting(&socket_unit, "DirectoryMode")
    ));
    holder.ok(&format!("{WRAPPER} condition"));
    // The notification socket, where the chroot's processes find it.
    let notify = std::os::unix::net::UnixDatagram::bind(c.path("/tmp/notify.sock")).unwrap();
    fs::set_permissions(
        c.path("/tmp/notify.sock"),
        fs::Permissions::from_mode(0o777),
    )
    .unwrap();
    notify.set_read_timeout(Some(GUEST_STEP)).unwrap();
    let out_path = work.path().join("switch.out");
    let out = fs::File::create(&out_path).unwrap();
    let root = c.root.to_string_lossy().into_owned();
    let mut args = vec![
        "env".to_string(),
        "-i".into(),
        "PATH=/usr/sbin:/usr/bin:/sbin:/bin".into(),
        "LC_ALL=C".into(),
        "systemd-socket-activate".into(),
        "-l".into(),
        listen.clone(),
        format!("--fdname={}", setting(&socket_unit, "FileDescriptorName")),
        "-E".into(),
        "NOTIFY_SOCKET=/tmp/notify.sock".into(),
        "chroot".into(),
        root,
    ];
    args.extend(exec_start.split_whitespace().map(str::to_string));
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let child = holder
        .cmd(&args)
        .stdin(Stdio::null())
        .stdout(out.try_clone().unwrap())
        .stderr(out)
        .process_group(0)
        .spawn()
        .expect("start the service");
    let mut switch = Daemon {
        pid: child.id(),
        child: Some(child),
    };
    wait_for("the socket unit's socket", SHORT, || {
        holder.in_chroot(&format!("test -S {CTL}")).success()
    });
    holder.ok(&format!(
        "chmod {} {CTL}",
        setting(&socket_unit, "SocketMode")
    ));
    let mode = setting(&socket_unit, "SocketMode");
    let mode = mode.trim_start_matches('0');

    // Two UMLs with eth0=daemon, the kernel's default socket
    // /var/run/uml-utilities/uml_switch.ctl; the first connection starts
    // the switch.
    {
        let mut a = boot_on_default_socket(&ns, &holder, 1, "while :; do sleep 3600; done");
        let mut buf = [0u8; 256];
        let n = notify
            .recv(&mut buf)
            .unwrap_or_else(|e| panic!("no READY=1 from the service: {e}"));
        assert_eq!(
            String::from_utf8_lossy(&buf[..n]),
            format!(
                "READY=1\nSTATUS=0 ports, switching\nMAINPID={}\n",
                switch.pid
            )
        );
        holder.ok(&format!("{WRAPPER} post-start"));
        assert_eq!(
            holder
                .ok(&format!(
                    "stat -c '%a %U %G %F' {CTL} /run/uml-utilities \
                     /run/uml-utilities/uml_switch.mgmt"
                ))
                .lines()
                .collect::<Vec<_>>(),
            [
                format!("{mode} root root socket"),
                "755 uml-net uml-net directory".to_string(),
                "660 uml-net adm socket".to_string(),
            ]
        );
        assert_eq!(uids(switch.pid), [uid; 4], "uml_switch runs as uml-net");
        let exe = fs::read_link(format!("/proc/{}/exe", switch.pid)).unwrap();
        assert!(exe.ends_with("usr/bin/uml_switch"), "{}", exe.display());
        expect_step_ok(&mut a, "eth0 up", &out_path);
        let mut b = boot_on_default_socket(
            &ns,
            &holder,
            2,
            "ping -c 3 -i 0.3 -w 20 10.0.0.1\necho \"TEST: ping rc=$?\"",
        );
        expect_step_ok(&mut b, "eth0 up", &out_path);
        expect_step_ok(&mut b, "ping", &out_path);
        // The management socket lists guest 1's port with the replies it
        // sent (guest 2's too while it is still shutting down).
        let ports = holder.ok("uml_switch --mgmt /run/uml-utilities/uml_switch.mgmt ports");
        let rows: Vec<Vec<&str>> = ports
            .lines()
            .filter(|l| l.contains(" daemon "))
            .map(|l| l.split_whitespace().collect())
            .collect();
        assert!((1..=2).contains(&rows.len()), "{ports}");
        assert!(
            rows.iter()
                .any(|r| r[5].parse::<u64>().is_ok_and(|n| n >= 3)),
            "{ports}"
        );
    }
    let log = fs::read_to_string(&out_path).unwrap();
    assert!(
        log.contains(&format!("attached to unix socket '{CTL}'")),
        "{log}"
    );
    // The passed socket was used: nothing bound there, nothing closed.
    assert!(
        !log.contains("bind") && !log.contains("matches no option"),
        "{log}"
    );
    assert_eq!(log.matches("New connection").count(), 2, "{log}");
    eprintln!("--- uml_switch of the service ---\n{log}");

    // systemctl stop: SIGTERM; the switch removes the management socket
    // it made and leaves the socket unit's (RemoveOnStop= is systemd's).
    assert!(switch.stop(), "uml_switch did not end on SIGTERM");
    assert!(holder
        .in_chroot("test ! -e /run/uml-utilities/uml_switch.mgmt")
        .success());
    assert!(holder.in_chroot(&format!("test -S {CTL}")).success());
    holder.ok(&format!("rm {CTL}"));

    // Without the socket unit (disabled; or UML_SWITCH_CTL elsewhere): the
    // switch binds the socket itself and post-start opens it to every
    // local user, as Debian's script.
    let child = holder
        .chroot(&format!("exec {WRAPPER} start"))
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .process_group(0)
        .spawn()
        .expect("start the service");
    let mut unsocketed = Daemon {
        pid: child.id(),
        child: Some(child),
    };
    holder.ok(&format!("{WRAPPER} post-start"));
    assert_eq!(
        holder.ok(&format!("stat -c '%a %U %F' {CTL}")).trim(),
        "777 uml-net socket"
    );
    assert!(unsocketed.stop(), "uml_switch did not end on SIGTERM");
    assert!(holder.in_chroot(&format!("test ! -e {CTL}")).success());

    // The init script, as on a system without systemd.
    holder.ok("/etc/init.d/uml-utilities start");
    assert_eq!(
        holder.ok(&format!("stat -c '%a %U %F' {CTL}")).trim(),
        "777 uml-net socket"
    );
    wait_for("the init script's management socket", SHORT, || {
        holder
            .in_chroot("test -S /run/uml-utilities/uml_switch.mgmt")
            .success()
    });
    assert_eq!(
        holder
            .ok("stat -c '%a %U %G' /run/uml-utilities/uml_switch.mgmt")
            .trim(),
        "660 uml-net adm"
    );
    let pid: u32 = holder
        .ok("cat /run/uml-utilities/uml_switch.pid")
        .trim()
        .parse()
        .unwrap();
    let mut sysv = Daemon { pid, child: None };
    assert_eq!(uids(pid), [uid; 4]);
    holder.ok("/etc/init.d/uml-utilities status");
    holder.ok("/etc/init.d/uml-utilities stop");
    wait_for("the init script's switch to end", SHORT, || !pid_alive(pid));
    assert!(holder.in_chroot(&format!("test ! -e {CTL}")).success());
    sysv.stop();

    // UML_SWITCH_START=false: the unit is skipped, the script does nothing.
    holder.ok("echo 'UML_SWITCH_START=\"false\"' >> /etc/default/uml-utilities");
    assert_eq!(
        holder.in_chroot(&format!("{WRAPPER} condition")).code,
        Some(1)
    );
    holder.ok("/etc/init.d/uml-utilities start");
    assert!(holder.in_chroot(&format!("test ! -e {CTL}")).success());

    // ifupdown: tunctl_user, then uml_proxy_arp with uml_proxy_ether.
    let out =
        holder.ok("IFACE=umltap0 IF_TUNCTL_USER=uml-net /etc/network/if-pre-up.d/uml-utilities");
    assert_eq!(
        out.trim(),
        format!("Set 'umltap0' persistent and owned by uid {uid}")
    );
    let owner = holder.run(&["cat", "/sys/class/net/umltap0/owner"]);
    assert_eq!(owner.stdout_str().trim(), uid.to_string(), "{owner}");
    for args in [
        // (A tap stands in for the Ethernet device: the dummy and veth
        // drivers may be missing.)
        &["ip", "tuntap", "add", "dev", "umlether0", "mode", "tap"][..],
        &["ip", "link", "set", "umlether0", "up"],
        &["ip", "link", "set", "umltap0", "up"],
    ] {
        let out = holder.run(args);
        assert!(out.success(), "{args:?}: {out}");
    }
    holder.ok(
        "IFACE=umltap0 IF_UML_PROXY_ARP='10.1.0.5 10.1.0.6' IF_UML_PROXY_ETHER=umlether0 \
         /etc/network/if-up.d/uml-utilities",
    );
    let proxy_arp = holder.run(&["cat", "/proc/sys/net/ipv4/conf/umltap0/proxy_arp"]);
    assert_eq!(proxy_arp.stdout_str().trim(), "1", "{proxy_arp}");
    let routes = holder
        .run(&["ip", "-4", "route", "show", "dev", "umltap0"])
        .stdout_str();
    let neigh = holder
        .run(&["ip", "-4", "neigh", "show", "proxy"])
        .stdout_str();
    for a in ["10.1.0.5", "10.1.0.6"] {
        assert!(
            routes.lines().any(|l| l.starts_with(&format!("{a} "))),
            "{routes}"
        );
        assert!(
            neigh.contains(&format!("{a} dev umlether0 proxy")),
            "{neigh}"
        );
    }
}

#[test]
fn host_archive_from_apt_sources() {
    let deb822 = "Types: deb\n\
                  # http://snapshot.debian.org/archive/debian/20250520T000000Z\n\
                  URIs: http://deb.debian.org/debian\n\
                  Suites: bookworm bookworm-updates\n\
                  Components: main\n\
                  Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg\n\
                  \n\
                  Types: deb\n\
                  URIs: http://deb.debian.org/debian-security\n\
                  Suites: bookworm-security\n";
    assert_eq!(
        parse_sources(deb822, true),
        Some((
            "http://deb.debian.org/debian".to_string(),
            Some("/usr/share/keyrings/debian-archive-keyring.gpg".to_string())
        ))
    );
    let only_security = "Types: deb\nURIs: http://security.debian.org/debian-security\n\
                         Suites: bookworm-security\n";
    assert_eq!(parse_sources(only_security, true), None);
    let src_only = "Types: deb-src\nURIs: http://m.example/debian\nSuites: bookworm\n";
    assert_eq!(parse_sources(src_only, true), None);
    let one_line = "# comment\n\
                    deb http://security.debian.org/debian-security bookworm-security main\n\
                    deb [arch=amd64 signed-by=/k.gpg] http://m.example/debian/ bookworm main\n";
    assert_eq!(
        parse_sources(one_line, false),
        Some((
            "http://m.example/debian/".to_string(),
            Some("/k.gpg".to_string())
        ))
    );
    assert_eq!(
        parse_sources("deb http://m.example/debian bookworm main\n", false),
        Some(("http://m.example/debian".to_string(), None))
    );
}

// ---------------------------------------------------------------------
// README's two commands on a fresh Debian 12 machine: scripts/demo and
// scripts/test install the Debian packages they need when run as root,
// and say exactly what to install otherwise.

/// The workspace's `scripts/` directory.
fn scripts_dir() -> PathBuf {
    let tests = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    tests
        .parent()
        .map(Path::to_path_buf)
        .unwrap_or(tests)
        .join("scripts")
}

/// A package list of `scripts/lib/debian-packages.bash` (e.g.
/// `DEMO_PACKAGES`).
fn package_list(var: &str) -> Vec<String> {
    let lib = scripts_dir().join("lib/debian-packages.bash");
    let out = run_with_timeout(
        Command::new("bash")
            .arg("-c")
            .arg(format!(". \"$0\"; echo ${var}"))
            .arg(&lib),
        SHORT,
    );
    assert!(out.success(), "{out}");
    out.stdout_str()
        .split_whitespace()
        .map(str::to_string)
        .collect()
}

/// A fresh bookworm root (no package of ours) with the workspace's
/// `scripts/` at `/src/scripts`, and which of `packages` it lacks.
fn fresh_machine(packages: &[String]) -> Result<(Chroot, Vec<String>), String> {
    let tarball = base_tarball(Suite::Bookworm)?;
    let c = Chroot::new(&tarball);
    fs::create_dir(c.path("/src")).unwrap();
    fs::set_permissions(c.path("/src"), fs::Permissions::from_mode(0o755)).unwrap();
    let out = run_with_timeout(
        Command::new("cp")
            .arg("-a")
            .arg(scripts_dir())
            .arg(c.path("/src/scripts")),
        SHORT,
    );
    assert!(out.success(), "{out}");
    let status = c.ok("dpkg-query -W -f '${Package} ${db:Status-Abbrev}\\n'");
    let installed: BTreeSet<&str> = status
        .lines()
        .filter_map(|l| l.split_once(' '))
        .filter(|(_, s)| s.starts_with("ii"))
        .map(|(p, _)| p)
        .collect();
    let missing = packages
        .iter()
        .filter(|p| !installed.contains(p.as_str()))
        .cloned()
        .collect();
    Ok((c, missing))
}

const AS_NOBODY: &str = "setpriv --reuid=65534 --regid=65534 --clear-groups";

#[test]
fn readme_commands_as_a_user_on_a_fresh_debian_12_say_what_to_install() {
    require!(Requirement::Root);
    let demo_packages = package_list("DEMO_PACKAGES");
    let test_packages = package_list("TEST_PACKAGES");
    assert!(demo_packages.contains(&"user-mode-linux".to_string()));
    let (c, missing_demo) = need!(fresh_machine(&demo_packages));
    let missing_test: Vec<String> = test_packages
        .iter()
        .filter(|p| {
            let status = c.run(&format!("dpkg-query -W -f '${{db:Status-Abbrev}}' {p}"));
            !status.stdout_str().starts_with("ii")
        })
        .cloned()
        .collect();
    assert!(
        missing_demo.contains(&"user-mode-linux".to_string()),
        "the fresh root has user-mode-linux: {missing_demo:?}"
    );

    let out = c.run(&format!("{AS_NOBODY} /src/scripts/demo"));
    assert_eq!(out.code, Some(1), "{out}");
    assert_eq!(
        out.stderr_str(),
        format!(
            "demo: needs Debian packages that are not installed; run as root: apt-get install \
             --no-install-recommends {}\n",
            missing_demo.join(" ")
        ),
        "{out}"
    );

    let out = c.run(&format!("{AS_NOBODY} /src/scripts/test"));
    assert_eq!(out.code, Some(1), "{out}");
    let err = out.stderr_str();
    let lines: Vec<&str> = err.lines().collect();
    assert_eq!(
        lines.first().copied(),
        Some(
            format!(
                "test: needs Debian packages that are not installed; run as root: apt-get \
                 install --no-install-recommends {}",
                missing_test.join(" ")
            )
            .as_str()
        ),
        "{out}"
    );
    assert!(
        err.contains("test: no 7.x test kernel; run scripts/fetch-kernel7 once as root"),
        "{out}"
    );
    // (This root has no Rust either.)
    assert_eq!(
        lines.last().copied(),
        Some("test: cargo not found in PATH: install Rust (https://rustup.rs)"),
        "{out}"
    );
    // Nothing was installed.
    for p in &missing_demo {
        assert!(
            !c.run(&format!("dpkg-query -W -f '${{db:Status-Abbrev}}' {p}"))
                .stdout_str()
                .starts_with("ii"),
            "{p} got installed"
        );
    }
}

#[test]
fn demo_as_root_on_a_fresh_debian_12_installs_what_it_needs() {
    require!(Requirement::Root);
    let demo_packages = package_list("DEMO_PACKAGES");
    let (c, missing) = need!(fresh_machine(&demo_packages));
    assert!(!missing.is_empty());
    let out = run_with_timeout(
        &mut chroot_cmd(&c.root, "/src/scripts/demo"),
        Duration::from_secs(900),
    );
    let err = out.stderr_str();
    let mut lines = err.lines();
    assert_eq!(
        lines.next(),
        Some(format!("demo: installing Debian packages: {}", missing.join(" ")).as_str()),
        "{out}"
    );
    // Then it goes on: every package is there, linux.uml with it; this
    // root has no Rust, which is the next thing the demo says.
    for p in &demo_packages {
        assert!(
            c.ok(&format!("dpkg-query -W -f '${{db:Status-Abbrev}}' {p}"))
                .starts_with("ii"),
            "{p} not installed: {out}"
        );
    }
    assert!(c.run("command -v linux.uml").success());
    assert_eq!(out.code, Some(1), "{out}");
    assert!(
        lines
            .next()
            .is_some_and(|l| l.starts_with("demo: cargo not found in PATH")),
        "{out}"
    );
    // A second run has nothing to install.
    let out = c.run("/src/scripts/demo");
    assert!(
        out.stderr_str()
            .starts_with("demo: cargo not found in PATH"),
        "{out}"
    );
}
