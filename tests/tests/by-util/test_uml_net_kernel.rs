//! `uml_net` driven by the real UML kernel (linux.uml 6.1, see
//! `docs/testing.md` §7.2 and §8.1, `docs/uml_net.md` §2.2, issue 4), each
//! test in a network namespace of its own.
//!
//! A UML with `eth0=tuntap,,,10.0.0.254` finds `uml_net` through its
//! `PATH`: the first directory holds a wrapper script named `uml_net` that
//! appends its argv (and afterwards the helper's exit status) to a log
//! and runs the helper under test with the same arguments and inherited
//! descriptors, writing nothing to its stdout or stderr. The guest
//! configures 10.0.0.1/24 (with `ip`, or with `ifconfig`) and pings the
//! gateway; the namespace pings the guest and shows the tap, the host route
//! and `proxy_arp`; after the guest removes its address the route is gone,
//! and after the UML exits the tap is gone. The argv log must show the
//! kernel's calls (`4 tuntap up 10.0.0.254`, `4 add tap0 10.0.0.1
//! 255.255.255.0`, ..., `4 del tap0 10.0.0.1 255.255.255.0`), each with
//! status 0.
//!
//! One test hides `ifconfig`, `route` and `arp` (when installed) with a
//! read-only overlay whose upper layer holds whiteouts, in a private mount
//! namespace of the test's own thread only — never on the host. One test
//! compares the argv/status log with the one Debian's C helper produces.
//!
//! The helper under test is this workspace's `uml_net`, or the program named by
//! `UML_NET_UNDER_TEST` (e.g. `/usr/bin/uml_net`, which needs net-tools, and
//! fails the no-net-tools test as `docs/uml_net.md` §4.1 describes).

// Test code: a failed setup step should abort the test with its message.
#![allow(clippy::expect_used, clippy::unwrap_used)]
#![forbid(unsafe_code)]

use std::fs;
use std::io::Write;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::thread;
use std::time::{Duration, Instant};

use nix::sched::{unshare, CloneFlags};
use uml_integration_tests::{
    binary_under_test, find_in_path, require, run_with_timeout, NetNs, Requirement, RunOutput, Uml,
    UmlConfig,
};

/// Environment variable naming the helper to test instead of ours.
const HELPER_ENV: &str = "UML_NET_UNDER_TEST";
/// Debian's C helper.
const C_HELPER: &str = "/usr/bin/uml_net";
/// Hard lifetime of each UML.
const UML_LIFETIME: Duration = Duration::from_secs(180);
/// Bound for a guest step (boot to ping result, del, ...).
const GUEST_STEP: Duration = Duration::from_secs(60);
/// Bound for the UML to exit after its stop file appeared.
const UML_EXIT: Duration = Duration::from_secs(30);
/// Bound for host-side state to follow.
const SETTLE: Duration = Duration::from_secs(5);
/// The programs the C helper runs and the rewrite must not need.
const NET_TOOLS: [&str; 3] = ["ifconfig", "route", "arp"];

const GATE: &str = "10.0.0.254";
const GUEST: &str = "10.0.0.1";

/// The helper binary under test.
#[derive(Debug, Clone)]
struct Helper {
    path: PathBuf,
    is_c: bool,
}

fn helper() -> Helper {
    let (path, is_c) = binary_under_test("uml_net", HELPER_ENV, C_HELPER);
    Helper { path, is_c }
}

/// Skips (or fails under `CI=true`) with `why`.
fn skip(test: &str, why: &str) {
    if std::env::var("CI").as_deref() == Ok("true") {
        panic!("{why}; CI must provide it");
    }
    let _ = writeln!(std::io::stderr(), "SKIP {test}: {why}");
}

/// Single-quotes `s` for `/bin/sh`.
fn sh_quote(s: &str) -> String {
    format!("'{}'", s.replace('\'', r"'\''"))
}

// ---------------------------------------------------------------------------
// The PATH wrapper and its log
// ---------------------------------------------------------------------------

/// A directory holding the `uml_net` wrapper, and its log.
struct Wrapper {
    dir: tempfile::TempDir,
    log: PathBuf,
}

/// Writes `DIR/uml_net`: logs `argv: ARGS`, runs `real` with the same
/// arguments (fds 0, 1 and any inherited data fd untouched), logs
/// `rc: STATUS` and exits with that status. Nothing goes to its stdout or
/// stderr (fd 1 is the kernel's socketpair or pipe).
fn wrapper(real: &Path) -> Wrapper {
    let dir = tempfile::Builder::new()
        .prefix("umlnet-path-")
        .tempdir()
        .expect("tempdir");
    let log = dir.path().join("argv.log");
    let l = sh_quote(&log.to_string_lossy());
    let script = format!(
        "#!/bin/sh\n\
         # uml_net wrapper of the uml_net_kernel tests: log, run, log status.\n\
         {{ printf 'argv: %s\\n' \"$*\" >>{l}; }} 2>/dev/null\n\
         {real} \"$@\"\n\
         rc=$?\n\
         {{ printf 'rc: %s\\n' \"$rc\" >>{l}; }} 2>/dev/null\n\
         exit $rc\n",
        real = sh_quote(&real.to_string_lossy()),
    );
    let path = dir.path().join("uml_net");
    fs::write(&path, script).expect("write wrapper");
    fs::set_permissions(&path, fs::Permissions::from_mode(0o755)).expect("chmod wrapper");
    fs::set_permissions(dir.path(), fs::Permissions::from_mode(0o755)).expect("chmod dir");
    Wrapper { dir, log }
}

/// One helper call seen by the wrapper.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Call {
    argv: String,
    rc: Option<i32>,
}

fn calls(log: &Path) -> Vec<Call> {
    let text = fs::read_to_string(log).unwrap_or_default();
    let mut out: Vec<Call> = Vec::new();
    for line in text.lines() {
        if let Some(a) = line.strip_prefix("argv: ") {
            out.push(Call {
                argv: a.to_string(),
                rc: None,
            });
        } else if let Some(rc) = line.strip_prefix("rc: ") {
            if let Some(last) = out.last_mut() {
                last.rc = rc.trim().parse().ok();
            }
        }
    }
    out
}

fn show_calls(c: &[Call]) -> String {
    c.iter()
        .map(|c| format!("  {} -> {:?}\n", c.argv, c.rc))
        .collect()
}

// ---------------------------------------------------------------------------
// Namespace observation
// ---------------------------------------------------------------------------

fn ip_ok(ns: &NetNs, args: &[&str]) -> String {
    let out = ns.ip(args);
    assert!(out.success(), "ip {args:?} failed: {out}");
    out.stdout_str()
}

fn ns_run(ns: &NetNs, program: &str, args: &[&str], limit: Duration) -> RunOutput {
    run_with_timeout(ns.exec(program).args(args), limit)
}

fn ns_read(ns: &NetNs, path: &str) -> String {
    let out = ns_run(ns, "cat", &[path], Duration::from_secs(10));
    assert!(out.success(), "cat {path}: {out}");
    out.stdout_str().trim().to_string()
}

/// Main-table routes for exactly `addr/32`, whitespace-normalised.
fn host_routes(ns: &NetNs, addr: &str) -> Vec<String> {
    ip_ok(ns, &["-4", "route", "show", "exact", &format!("{addr}/32")])
        .lines()
        .map(|l| l.split_whitespace().collect::<Vec<_>>().join(" "))
        .filter(|l| !l.is_empty())
        .collect()
}

/// Polls `cond` for at most [`SETTLE`].
fn eventually(mut cond: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + SETTLE;
    loop {
        if cond() {
            return true;
        }
        if Instant::now() >= deadline {
            return false;
        }
        thread::sleep(Duration::from_millis(100));
    }
}

// ---------------------------------------------------------------------------
// The scenario
// ---------------------------------------------------------------------------

/// How the guest configures its address.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum GuestConfig {
    /// `ip addr add 10.0.0.1/24 dev eth0; ip link set eth0 up`, removal
    /// with `ip addr del`.
    Ip,
    /// `ifconfig eth0 10.0.0.1 netmask 255.255.255.0 up` (busybox's when
    /// net-tools are absent), removal with `ifconfig eth0 0.0.0.0`.
    Ifconfig,
}

/// The guest's init body: configure, ping the gateway, wait for the
/// host's `del` file, remove the address, wait for the `stop` file.
fn guest_script(cfg: GuestConfig) -> String {
    let ifconfig = if find_in_path("ifconfig").is_some() {
        "ifconfig"
    } else {
        "busybox ifconfig"
    };
    let (up, down) = match cfg {
        GuestConfig::Ip => (
            format!("ip addr add {GUEST}/24 dev eth0 && ip link set eth0 up"),
            format!("ip addr del {GUEST}/24 dev eth0"),
        ),
        GuestConfig::Ifconfig => (
            format!("{ifconfig} eth0 {GUEST} netmask 255.255.255.0 up"),
            format!("{ifconfig} eth0 0.0.0.0"),
        ),
    };
    let wait_for = |file: &str| {
        format!(
            "i=0; while [ ! -e \"$OUT/{file}\" ] && [ $i -lt 1200 ]; do sleep 0.1; i=$((i+1)); done\n"
        )
    };
    format!(
        "{up}\n\
         echo \"TEST: up rc=$?\"\n\
         ip -4 addr show dev eth0\n\
         ping -c 3 -w 20 {GATE}\n\
         echo \"TEST: ping rc=$?\"\n\
         {}\
         {down}\n\
         echo \"TEST: del rc=$?\"\n\
         ip -4 addr show dev eth0\n\
         {}",
        wait_for("del"),
        wait_for("stop"),
    )
}

/// Waits for `TEST: <step> rc=` on the console and requires `rc=0`.
fn expect_step_ok(uml: &mut Uml, step: &str, log: &Path) {
    let marker = format!("TEST: {step} rc=");
    let seen = uml.wait_console(&marker, GUEST_STEP);
    let console = uml.console();
    let ok = format!("{marker}0");
    assert!(
        seen && console.lines().any(|l| l.trim_end() == ok),
        "{}: {}\n--- uml_net calls ---\n{}--- console ---\n{console}",
        uml.umid(),
        if seen {
            format!("guest step `{step}` failed")
        } else {
            format!("`{marker}` never printed")
        },
        show_calls(&calls(log)),
    );
}

/// Boots the UML in a fresh namespace with the wrapper first in `PATH`,
/// runs the whole exchange, checks everything and returns the calls.
fn tuntap_scenario(tag: &str, h: &Helper, cfg: GuestConfig) -> Vec<Call> {
    let ns = NetNs::new(tag);
    ns.sysctl("net.ipv4.ip_forward", "0")
        .expect("ip_forward 0 in the namespace");
    let w = wrapper(&h.path);
    let mut ucfg = UmlConfig::new(tag);
    ucfg.netns = Some(ns.name().to_string());
    ucfg.lifetime = UML_LIFETIME;
    ucfg.extra_args.push(format!("eth0=tuntap,,,{GATE}"));
    ucfg.path_prepend = Some(w.dir.path().to_path_buf());
    ucfg.init_script = guest_script(cfg);
    let mut uml = Uml::boot(ucfg).expect("boot UML");

    expect_step_ok(&mut uml, "up", &w.log);
    expect_step_ok(&mut uml, "ping", &w.log);
    let console = uml.console();
    for bad in [
        "tuntap_open_tramp",
        "didn't receive",
        "read_output",
        "helper_wait",
    ] {
        assert!(
            !console.contains(bad),
            "console reports `{bad}`:\n{console}\n--- calls ---\n{}",
            show_calls(&calls(&w.log))
        );
    }

    // Host side, while the guest is up (`docs/testing.md` §7.2).
    let ping = ns_run(
        &ns,
        "ping",
        &["-c", "3", "-i", "0.3", "-w", "20", GUEST],
        Duration::from_secs(30),
    );
    assert!(
        ping.success(),
        "the namespace cannot ping the guest: {ping}\n{}",
        uml.console()
    );
    let routes = host_routes(&ns, GUEST);
    assert!(
        routes.len() == 1
            && routes[0].starts_with(&format!("{GUEST} dev tap0 "))
            && routes[0].contains(" scope link"),
        "expected the host route `{GUEST} dev tap0 scope link`, got {routes:?}\n--- calls ---\n{}",
        show_calls(&calls(&w.log))
    );
    let addrs = ip_ok(&ns, &["-4", "-o", "addr", "show", "dev", "tap0"]);
    assert!(
        addrs.contains(&format!("inet {GATE}/32 ")),
        "tap0 lacks {GATE}/32: {addrs}"
    );
    assert_eq!(ns_read(&ns, "/proc/sys/net/ipv4/ip_forward"), "1");
    assert_eq!(ns_read(&ns, "/proc/sys/net/ipv4/conf/tap0/proxy_arp"), "1");
    let details = ip_ok(&ns, &["-d", "link", "show", "dev", "tap0"]);
    assert!(details.contains("tun type tap"), "{details}");
    if !h.is_c {
        // The kernel runs the helper as root here: root owns the tap.
        assert_eq!(
            ns_read(&ns, "/sys/class/net/tap0/owner"),
            "0",
            "tap0 not owned by the caller\n{details}"
        );
    }

    // The guest removes its address: route and proxy_arp go.
    fs::write(uml.out_dir().join("del"), b"").expect("create del file");
    expect_step_ok(&mut uml, "del", &w.log);
    assert!(
        eventually(|| host_routes(&ns, GUEST).is_empty()),
        "route left after the guest removed its address: {:?}\n--- calls ---\n{}",
        host_routes(&ns, GUEST),
        show_calls(&calls(&w.log))
    );
    assert_eq!(ns_read(&ns, "/proc/sys/net/ipv4/conf/tap0/proxy_arp"), "0");

    // The UML ends: the tap goes with its fd.
    fs::write(uml.out_dir().join("stop"), b"").expect("create stop file");
    assert!(
        uml.wait_exit(UML_EXIT),
        "UML did not power off:\n{}",
        uml.console()
    );
    assert!(
        eventually(|| !ns.ip(&["link", "show", "dev", "tap0"]).success()),
        "tap0 survived the UML:\n{}",
        ip_ok(&ns, &["-d", "link"])
    );

    let c = calls(&w.log);
    let shown = show_calls(&c);
    eprintln!("--- uml_net calls ({tag}) ---\n{shown}");
    let up = format!("4 tuntap up {GATE}");
    let add = format!("4 add tap0 {GUEST} 255.255.255.0");
    let del = format!("4 del tap0 {GUEST} 255.255.255.0");
    let classful = [
        format!("4 add tap0 {GUEST} 255.0.0.0"),
        format!("4 del tap0 {GUEST} 255.0.0.0"),
    ];
    assert_eq!(
        c.first().map(|c| c.argv.as_str()),
        Some(up.as_str()),
        "first call must be `{up}`:\n{shown}"
    );
    assert!(c.iter().any(|c| c.argv == add), "no `{add}` call:\n{shown}");
    assert_eq!(
        c.last().map(|c| c.argv.as_str()),
        Some(del.as_str()),
        "last call must be `{del}`:\n{shown}"
    );
    for call in &c {
        assert!(
            call.argv == up
                || call.argv == add
                || call.argv == del
                || classful.contains(&call.argv),
            "unexpected call `{}`:\n{shown}",
            call.argv
        );
        assert_eq!(call.rc, Some(0), "`{}` did not exit 0:\n{shown}", call.argv);
    }
    c
}

#[test]
fn guest_configured_with_ip() {
    require!(
        Requirement::Root,
        Requirement::LinuxUml,
        Requirement::NetNs,
        Requirement::DevNetTun
    );
    tuntap_scenario("netip", &helper(), GuestConfig::Ip);
}

#[test]
fn guest_configured_with_ifconfig() {
    require!(
        Requirement::Root,
        Requirement::LinuxUml,
        Requirement::NetNs,
        Requirement::DevNetTun
    );
    if find_in_path("ifconfig").is_none() && find_in_path("busybox").is_none() {
        return skip(
            "guest_configured_with_ifconfig",
            "neither ifconfig nor busybox is installed (apt-get install busybox)",
        );
    }
    tuntap_scenario("netifc", &helper(), GuestConfig::Ifconfig);
}

// ---------------------------------------------------------------------------
// Without net-tools on the host
// ---------------------------------------------------------------------------

/// Where `ifconfig`, `route` and `arp` are installed (canonical paths),
/// looked up like `find_in_path`.
fn installed_net_tools() -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = NET_TOOLS
        .iter()
        .filter_map(|t| find_in_path(t))
        .filter_map(|p| p.canonicalize().ok())
        .collect();
    v.sort();
    v.dedup();
    v
}

/// Runs `cmd` (a child of the calling thread, so in its mount namespace),
/// which must succeed.
fn must(cmd: &mut Command, what: &str) -> String {
    let out = run_with_timeout(cmd, Duration::from_secs(10));
    assert!(out.success(), "{what} failed: {out}");
    out.stdout_str()
}

/// In the calling thread only: a private mount namespace in which every
/// directory holding one of `tools` is covered by a read-only overlay
/// whose top layer holds whiteouts for them. Returns the whiteout
/// directory (keep it until the namespace is gone).
fn hide_in_private_mount_ns(tools: &[PathBuf]) -> tempfile::TempDir {
    let before = fs::read_link("/proc/thread-self/ns/mnt").expect("ns/mnt");
    unshare(CloneFlags::CLONE_NEWNS).expect("unshare(CLONE_NEWNS) of the test thread");
    let mine = fs::read_link("/proc/thread-self/ns/mnt").expect("ns/mnt");
    assert_ne!(before, mine, "unshare did not give a new mount namespace");
    // Children of this thread must be in it too, before anything is mounted.
    let child_ns = must(
        Command::new("readlink").arg("/proc/self/ns/mnt"),
        "readlink",
    );
    assert_eq!(
        child_ns.trim(),
        mine.to_string_lossy(),
        "a child process is not in the thread's mount namespace"
    );
    // No propagation back to the host, ever.
    must(
        Command::new("mount").args(["--make-rprivate", "/"]),
        "mount --make-rprivate /",
    );
    let prop = must(
        Command::new("findmnt").args(["-n", "-o", "PROPAGATION", "/"]),
        "findmnt",
    );
    assert_eq!(
        prop.trim(),
        "private",
        "/ is not private in the test's namespace"
    );

    let white = tempfile::Builder::new()
        .prefix("umlnet-whiteout-")
        .tempdir()
        .expect("tempdir");
    let mut dirs: Vec<&Path> = tools.iter().filter_map(|t| t.parent()).collect();
    dirs.sort();
    dirs.dedup();
    for (i, dir) in dirs.iter().enumerate() {
        let layer = white.path().join(i.to_string());
        fs::create_dir(&layer).expect("mkdir layer");
        for tool in tools.iter().filter(|t| t.parent() == Some(*dir)) {
            let name = tool.file_name().expect("file name");
            // An overlay whiteout: a 0/0 character device.
            must(
                Command::new("mknod")
                    .arg(layer.join(name))
                    .args(["c", "0", "0"]),
                "mknod whiteout",
            );
        }
        let opts = format!("ro,lowerdir={}:{}", layer.display(), dir.display());
        must(
            Command::new("mount")
                .args(["-t", "overlay", "overlay", "-o", &opts])
                .arg(dir),
            "mount overlay",
        );
    }
    for tool in tools {
        assert!(!tool.exists(), "{} still visible", tool.display());
    }
    white
}

#[test]
fn works_without_ifconfig_route_arp_on_the_host() {
    require!(
        Requirement::Root,
        Requirement::LinuxUml,
        Requirement::NetNs,
        Requirement::DevNetTun
    );
    let h = helper();
    let tools = installed_net_tools();
    if tools.is_empty() {
        eprintln!(
            "net-tools are not installed: this host has no ifconfig/route/arp by construction"
        );
        tuntap_scenario("netnotools", &h, GuestConfig::Ip);
        return;
    }
    let hidden = tools.clone();
    let result = thread::Builder::new()
        .name("no-net-tools".into())
        .spawn(move || {
            // Everything started from this thread (ip netns exec, the UML,
            // its helpers) inherits this thread's private mount namespace;
            // the namespace and its mounts end with the thread and them.
            let white = hide_in_private_mount_ns(&hidden);
            let which = run_with_timeout(
                Command::new("sh").args(["-c", "command -v ifconfig route arp"]),
                Duration::from_secs(10),
            );
            assert!(which.stdout.is_empty(), "net-tools still found: {which}");
            tuntap_scenario("netnotools", &h, GuestConfig::Ip);
            drop(white);
        })
        .expect("spawn")
        .join();
    // The host never saw the overlay.
    for t in &tools {
        assert!(t.exists(), "{} vanished from the host", t.display());
    }
    if let Err(panic) = result {
        std::panic::resume_unwind(panic);
    }
}

// ---------------------------------------------------------------------------
// Differential: the same calls and statuses as with Debian's C helper
// ---------------------------------------------------------------------------

#[test]
fn calls_and_statuses_match_the_c_helper() {
    require!(
        Requirement::Root,
        Requirement::LinuxUml,
        Requirement::NetNs,
        Requirement::DevNetTun,
        Requirement::CBinary("uml_net")
    );
    let ours = helper();
    if ours.is_c {
        return skip(
            "calls_and_statuses_match_the_c_helper",
            "the helper under test is the C helper",
        );
    }
    if installed_net_tools().len() < NET_TOOLS.len() {
        return skip(
            "calls_and_statuses_match_the_c_helper",
            "the C helper needs net-tools (apt-get install net-tools)",
        );
    }
    let c = Helper {
        path: PathBuf::from(C_HELPER),
        is_c: true,
    };
    let from_c = tuntap_scenario("netdiffc", &c, GuestConfig::Ip);
    let from_ours = tuntap_scenario("netdiffrs", &ours, GuestConfig::Ip);
    assert_eq!(
        from_c,
        from_ours,
        "calls differ\n--- C ---\n{}--- ours ---\n{}",
        show_calls(&from_c),
        show_calls(&from_ours)
    );
}
