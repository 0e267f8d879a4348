//! `uml_switch --raw`, `--mcast` and `--mtu` with real UML kernels (see
//! `docs/vector.md` §6, §7; issue 11):
//!
//! * a guest on `vec0:transport=raw,ifname=va` (one end of a veth pair;
//!   the switch has the other end) pings a bess guest and sends it 1 MiB
//!   over TCP (the raw guest's driver turns on TSO and checksum offload,
//!   which the switch completes) — with Linux 7.x guests and with Debian
//!   12's 6.1 guests;
//! * two 6.1 guests on the legacy `eth0=mcast` transport ping each other
//!   and a bess guest;
//! * with `--mtu 9000`, two 7.x bess guests at MTU 9000 pass an 8000-byte
//!   ping (not fragmented) while a 6.1 daemon guest still works.
//!
//! Everything runs in a network namespace the test creates and removes.
//! Each guest is started with the argument the switch printed for its
//! port. Guests and switch are ended by pid; every wait polls a condition
//! with a deadline.

// Test code: a failed setup step should abort the test with its message.
#![allow(clippy::expect_used, clippy::unwrap_used)]

use std::ffi::OsString;
use std::path::Path;
use std::time::Duration;

use uml_integration_tests::segment::{
    self, expect_power_off, guest_mac as mac, halt, one_at_a_time, switch_is_ours, Guest, LINK_UP,
};
use uml_integration_tests::switch_client::NsSwitch;
use uml_integration_tests::{require, wait_until, Kernel, NetNs, Requirement, Uml, IDLE_SCRIPT};

/// Hard lifetime of the switch process (`timeout -k 5 ...`).
const SWITCH_LIFETIME: Duration = Duration::from_secs(240);
/// Hard lifetime of each UML.
const UML_LIFETIME: Duration = Duration::from_secs(180);
/// Bound for a guest's init script to reach a marker (several guests boot
/// at once on a shared machine).
const GUEST_STEP: Duration = Duration::from_secs(90);
/// Bound for a UML to exit after it powered off or was halted.
const UML_EXIT: Duration = Duration::from_secs(30);
/// Bound for the switch to print what it prints at start-up.
const SWITCH_REPORT: Duration = Duration::from_secs(10);
/// Bytes the raw guest sends over TCP.
const TCP_BYTES: usize = 1 << 20;

/// Why the tests skip with the C switch.
const NOT_IN_C: &str = "--raw/--mcast/--mtu are not options of the C switch";

/// `ip -n NS ARGS`, which must succeed.
fn ip(ns: &NetNs, args: &[&str]) {
    let out = ns.ip(args);
    assert!(out.success(), "ip {args:?}: {out}");
}

/// Boots guest `n` of `kernel` in `ns` with the network argument `net`
/// (device `dev`), address `10.0.0.N/24`, running `then` after bringing
/// the device up.
fn boot(ns: &NetNs, kernel: Kernel, net: &str, dev: &'static str, n: u8, then: &str) -> Uml {
    let mut cfg = Guest::new(n, kernel, net, dev).then(then).config(ns, "rw");
    cfg.lifetime = UML_LIFETIME;
    cfg.mem = "128M".to_string();
    segment::boot(cfg)
}

/// [`segment::expect_step_ok`] with this file's bound.
fn expect_step_ok(uml: &mut Uml, step: &str, sw: &mut NsSwitch, others: &[&Uml]) {
    segment::expect_step_ok(uml, step, GUEST_STEP, sw, others);
}

/// No IPv6 in `ns`: nothing of the host's own reaches the switch through
/// its raw ports.
fn disable_ipv6(ns: &NetNs) {
    for key in [
        "net.ipv6.conf.all.disable_ipv6",
        "net.ipv6.conf.default.disable_ipv6",
    ] {
        ns.sysctl(key, "1").unwrap();
    }
}

/// The bess guest's script: receive one TCP stream into `$OUT/recv.bin`
/// (busybox nc ends when the sender closes), then idle.
const RECEIVE: &str = "busybox nc -l -p 5000 > \"$OUT/recv.bin\"\necho \"TEST: recv rc=$?\"\n\
                       while :; do sleep 3600; done";

/// A sender's script: ping the bess guest, then send it [`TCP_BYTES`]
/// random bytes over TCP (a copy in `$OUT/sent.bin`).
fn ping_and_send() -> String {
    format!(
        "ping -c 3 -i 0.3 -w 30 10.0.0.1\necho \"TEST: ping rc=$?\"\n\
         head -c {TCP_BYTES} /dev/urandom > /tmp/data && cp /tmp/data \"$OUT/sent.bin\"\n\
         timeout 60 busybox nc 10.0.0.1 5000 < /tmp/data\necho \"TEST: send rc=$?\""
    )
}

/// Waits (bounded) until `receiver` has all that `sender` sent, and
/// asserts that it is the same.
fn expect_received(receiver: &Uml, sender: &Uml, sw: &mut NsSwitch) {
    let recv_path = receiver.out_dir().join("recv.bin");
    let complete = wait_until(GUEST_STEP, || {
        std::fs::metadata(&recv_path).is_ok_and(|m| m.len() as usize >= TCP_BYTES)
    });
    let got = std::fs::read(&recv_path).unwrap_or_default();
    let data = std::fs::read(sender.out_dir().join("sent.bin")).unwrap_or_default();
    assert!(
        complete && got == data,
        "received {} of {TCP_BYTES} bytes{}\n{}{}",
        got.len(),
        if complete { " (content differs)" } else { "" },
        segment::consoles([sender, receiver]),
        sw.report()
    );
}

/// The argument after `guests join with ` on the start-up line that
/// starts with `what`.
fn joins(out: &str, what: &str) -> Option<String> {
    out.lines()
        .find(|l| l.starts_with(what))
        .and_then(|l| l.split(" join with ").nth(1))
        .map(str::to_string)
}

/// Starts the switch with `args` in `ns` and waits for the start-up line
/// of `what`.
fn start_switch(ns: &NetNs, dir: &Path, args: Vec<OsString>, what: &str) -> (NsSwitch, String) {
    let mut sw = NsSwitch::start(ns, dir, &args, SWITCH_LIFETIME).unwrap_or_else(|e| panic!("{e}"));
    assert!(
        sw.wait_output(SWITCH_REPORT, |o| joins(o, what).is_some()),
        "{}",
        sw.report()
    );
    let arg = joins(&sw.output(), what).unwrap();
    (sw, arg)
}

/// Sends SIGUSR1 to the switch in `ns` and returns its raw port's
/// counters line.
fn raw_counters(ns: &NetNs, sw: &mut NsSwitch) -> String {
    let mut pid = None;
    let found = wait_until(SWITCH_REPORT, || {
        pid = ns.pids().into_iter().find(|p| {
            std::fs::read_link(format!("/proc/{p}/exe"))
                .is_ok_and(|e| e.to_string_lossy().ends_with("/uml_switch"))
        });
        pid.is_some()
    });
    assert!(found, "no uml_switch process in {}", ns.name());
    let pid = nix::unistd::Pid::from_raw(pid.unwrap() as i32);
    nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGUSR1).unwrap();
    let is_counts = |l: &str| l.contains(" on 'vb': frames in ");
    assert!(
        sw.wait_output(SWITCH_REPORT, |o| o.lines().any(is_counts)),
        "{}",
        sw.report()
    );
    sw.output()
        .lines()
        .find(|l| is_counts(l))
        .unwrap()
        .to_string()
}

/// A raw guest of `kernel` behind a veth pair pings a bess guest of the
/// same kernel and sends it 1 MiB over TCP, through one switch.
fn raw_guest_pings_and_sends_to_a_bess_guest(kernel: Kernel) {
    let _serial = one_at_a_time();
    let dir = tempfile::Builder::new()
        .prefix("umlsw-")
        .tempdir()
        .expect("tempdir");
    let ns = NetNs::new("rawk");
    // No IPv6 on the host's side of the veth pair.
    disable_ipv6(&ns);
    ip(
        &ns,
        &["link", "add", "va", "type", "veth", "peer", "name", "vb"],
    );
    for dev in ["va", "vb"] {
        ip(&ns, &["link", "set", dev, "up"]);
    }
    let bess = dir.path().join("sw.bess");
    let args: Vec<OsString> = vec![
        "-unix".into(),
        dir.path().join("sw.ctl").into(),
        "--bess".into(),
        bess.clone().into(),
        "--raw".into(),
        "vb".into(),
    ];
    let (mut sw, raw_arg) = start_switch(&ns, dir.path(), args, "raw port ");
    assert_eq!(raw_arg, "vec0:transport=raw,ifname=va");

    // The bess guest listens for the TCP stream (busybox nc ends when the
    // sender closes).
    let mut peer = boot(
        &ns,
        kernel,
        &format!("vec0:transport=bess,dst={},mac={}", bess.display(), mac(1)),
        "vec0",
        1,
        RECEIVE,
    );
    expect_step_ok(&mut peer, LINK_UP, &mut sw, &[]);
    let mut guest = boot(
        &ns,
        kernel,
        &format!("{raw_arg},mac={}", mac(2)),
        "vec0",
        2,
        &ping_and_send(),
    );
    expect_step_ok(&mut guest, LINK_UP, &mut sw, &[&peer]);
    expect_step_ok(&mut guest, "ping", &mut sw, &[&peer]);
    expect_received(&peer, &guest, &mut sw);
    expect_step_ok(&mut guest, "send", &mut sw, &[&peer]);
    // The guest's driver handed over TSO frames, which were cut here.
    let counts = raw_counters(&ns, &mut sw);
    let segmented: u64 = counts
        .split(" segmented")
        .next()
        .and_then(|s| s.rsplit('(').next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("{counts}"));
    assert!(segmented > 0, "no TSO frame from the raw guest: {counts}");
    assert!(counts.ends_with("bad offload 0"), "{counts}");
    eprintln!("{counts}");
    expect_power_off(&mut guest, UML_EXIT);
    halt(&mut peer, UML_EXIT);
    assert!(sw.running(), "switch ended:\n{}", sw.report());
    let out = sw.output();
    for n in [1, 2] {
        let learned = format!(" Addr: {} New port ", mac(n));
        assert!(out.contains(&learned), "{learned:?} missing:\n{out}");
    }
    assert!(!out.contains(" old port "), "{out}");
    assert!(
        !out.contains("Receiving on") && !out.contains("Sending to") && !out.contains("dropped a"),
        "{out}"
    );
    eprintln!("--- switch output ({kernel:?} raw guest) ---\n{out}");
}

/// A Linux 7.x guest on `transport=raw` and a 7.x bess guest.
#[test]
fn kernel7_raw_guest_pings_and_sends_to_a_bess_guest() {
    require!(
        Requirement::Root,
        Requirement::LinuxUml7,
        Requirement::NetNs
    );
    require!(Requirement::Program("ping", "iputils-ping"));
    require!(Requirement::Program("busybox", "busybox"));
    if !switch_is_ours(NOT_IN_C) {
        return;
    }
    raw_guest_pings_and_sends_to_a_bess_guest(Kernel::Linux7);
}

/// The same with Debian 12's 6.1 guests.
#[test]
fn kernel61_raw_guest_pings_and_sends_to_a_bess_guest() {
    require!(Requirement::Root, Requirement::LinuxUml, Requirement::NetNs);
    require!(Requirement::Program("ping", "iputils-ping"));
    require!(Requirement::Program("busybox", "busybox"));
    if !switch_is_ours(NOT_IN_C) {
        return;
    }
    raw_guest_pings_and_sends_to_a_bess_guest(Kernel::Linux61);
}

/// Two 6.1 guests on the legacy mcast transport (one group, one switch
/// port) ping each other and a 6.1 bess guest.
#[test]
fn kernel61_mcast_guests_ping_each_other_and_a_bess_guest() {
    require!(Requirement::Root, Requirement::LinuxUml, Requirement::NetNs);
    require!(Requirement::Program("ping", "iputils-ping"));
    if !switch_is_ours(NOT_IN_C) {
        return;
    }
    let _serial = one_at_a_time();
    let dir = tempfile::Builder::new()
        .prefix("umlsw-")
        .tempdir()
        .expect("tempdir");
    let ns = NetNs::new("mck");
    ip(&ns, &["link", "set", "lo", "multicast", "on"]);
    ip(&ns, &["route", "add", "224.0.0.0/4", "dev", "lo"]);
    let bess = dir.path().join("sw.bess");
    let args: Vec<OsString> = vec![
        "-unix".into(),
        dir.path().join("sw.ctl").into(),
        "--bess".into(),
        bess.clone().into(),
        "--mcast".into(),
    ];
    let (mut sw, mcast_arg) = start_switch(&ns, dir.path(), args, "mcast port ");
    assert_eq!(mcast_arg, "eth0=mcast,,239.192.168.1,1102,1");
    let with_mac =
        |n: u8| mcast_arg.replacen("eth0=mcast,,", &format!("eth0=mcast,{},", mac(n)), 1);

    let mut peer = boot(
        &ns,
        Kernel::Linux61,
        &format!("vec0:transport=bess,dst={},mac={}", bess.display(), mac(1)),
        "vec0",
        1,
        IDLE_SCRIPT,
    );
    expect_step_ok(&mut peer, LINK_UP, &mut sw, &[]);
    let mut b = boot(&ns, Kernel::Linux61, &with_mac(3), "eth0", 3, IDLE_SCRIPT);
    expect_step_ok(&mut b, LINK_UP, &mut sw, &[&peer]);
    let mut a = boot(
        &ns,
        Kernel::Linux61,
        &with_mac(2),
        "eth0",
        2,
        "ping -c 3 -i 0.3 -w 30 10.0.0.3\necho \"TEST: ping mcast rc=$?\"\n\
         ping -c 3 -i 0.3 -w 30 10.0.0.1\necho \"TEST: ping bess rc=$?\"",
    );
    expect_step_ok(&mut a, LINK_UP, &mut sw, &[&peer, &b]);
    expect_step_ok(&mut a, "ping mcast", &mut sw, &[&peer, &b]);
    expect_step_ok(&mut a, "ping bess", &mut sw, &[&peer, &b]);
    expect_power_off(&mut a, UML_EXIT);
    halt(&mut b, UML_EXIT);
    halt(&mut peer, UML_EXIT);
    assert!(sw.running(), "switch ended:\n{}", sw.report());
    let out = sw.output();
    let label = out
        .lines()
        .find_map(|l| l.strip_prefix("mcast port "))
        .and_then(|l| l.split(' ').next())
        .unwrap()
        .to_string();
    // Both mcast guests are on the one mcast port; none of them moved.
    for n in [2, 3] {
        let learned = format!(" Addr: {} New port {label}", mac(n));
        assert!(out.contains(&learned), "{learned:?} missing:\n{out}");
    }
    assert!(!out.contains(" old port "), "{out}");
    eprintln!("--- switch output (mcast guests) ---\n{out}");
}

/// `--mtu 9000`: two 7.x bess guests at MTU 9000 pass an 8000-byte ping
/// (DF set: one 8042-byte frame each way) while a 6.1 daemon guest at MTU
/// 1500 pings one of them.
#[test]
fn bess_guests_at_mtu_9000_and_a_daemon_guest() {
    require!(
        Requirement::Root,
        Requirement::LinuxUml,
        Requirement::LinuxUml7,
        Requirement::NetNs
    );
    require!(Requirement::Program("ping", "iputils-ping"));
    if !switch_is_ours(NOT_IN_C) {
        return;
    }
    let _serial = one_at_a_time();
    let dir = tempfile::Builder::new()
        .prefix("umlsw-")
        .tempdir()
        .expect("tempdir");
    let ns = NetNs::new("mtuk");
    let bess = dir.path().join("sw.bess");
    let ctl = dir.path().join("sw.ctl");
    let args: Vec<OsString> = vec![
        "-unix".into(),
        ctl.clone().into(),
        "--mtu".into(),
        "9000".into(),
        "--bess".into(),
        bess.clone().into(),
    ];
    let (mut sw, bess_arg) = start_switch(&ns, dir.path(), args, "bess socket ");
    let daemon_arg = joins(&sw.output(), "control socket ").unwrap();
    let big = |n: u8| format!("{bess_arg},mtu=9000,mac={}", mac(n));

    let mut b = boot(&ns, Kernel::Linux7, &big(1), "vec0", 1, IDLE_SCRIPT);
    expect_step_ok(&mut b, LINK_UP, &mut sw, &[]);
    let mut d = boot(
        &ns,
        Kernel::Linux61,
        &daemon_arg.replacen("eth0=daemon,,", &format!("eth0=daemon,{},", mac(3)), 1),
        "eth0",
        3,
        "ping -c 3 -i 0.3 -w 30 10.0.0.1\necho \"TEST: ping small rc=$?\"",
    );
    expect_step_ok(&mut d, LINK_UP, &mut sw, &[&b]);
    let mut a = boot(
        &ns,
        Kernel::Linux7,
        &big(2),
        "vec0",
        2,
        "ip link show vec0\n\
         ping -c 3 -i 0.3 -w 30 -s 8000 -M do 10.0.0.1\necho \"TEST: ping large rc=$?\"",
    );
    expect_step_ok(&mut a, LINK_UP, &mut sw, &[&b, &d]);
    expect_step_ok(&mut a, "ping large", &mut sw, &[&b, &d]);
    assert!(
        a.console().contains("mtu 9000"),
        "vec0 of a is not at MTU 9000:\n{}",
        a.console()
    );
    expect_step_ok(&mut d, "ping small", &mut sw, &[&a, &b]);
    for g in [&mut a, &mut d] {
        expect_power_off(g, UML_EXIT);
    }
    halt(&mut b, UML_EXIT);
    assert!(sw.running(), "switch ended:\n{}", sw.report());
    let out = sw.output();
    assert!(out.contains("New connection"), "{out}");
    eprintln!("--- switch output (MTU 9000) ---\n{out}");
}

/// Linux 7.x guests on `transport=tap` and `transport=hybrid`, each on a
/// tap of its own that the switch attaches with `--raw`, ping a bess
/// guest; the tap guest also sends it 1 MiB over TCP (its TSO frames
/// come through the tap and are cut by the switch).
#[test]
fn kernel7_tap_and_hybrid_guests_ping_a_bess_guest() {
    require!(
        Requirement::Root,
        Requirement::LinuxUml7,
        Requirement::NetNs,
        Requirement::DevNetTun
    );
    require!(Requirement::Program("ping", "iputils-ping"));
    require!(Requirement::Program("busybox", "busybox"));
    if !switch_is_ours(NOT_IN_C) {
        return;
    }
    let _serial = one_at_a_time();
    let dir = tempfile::Builder::new()
        .prefix("umlsw-")
        .tempdir()
        .expect("tempdir");
    let ns = NetNs::new("tapk");
    disable_ipv6(&ns);
    for tap in ["tapt", "taph"] {
        ip(&ns, &["tuntap", "add", "dev", tap, "mode", "tap"]);
        ip(&ns, &["link", "set", tap, "up"]);
    }
    let bess = dir.path().join("sw.bess");
    let args: Vec<OsString> = vec![
        "-unix".into(),
        dir.path().join("sw.ctl").into(),
        "--bess".into(),
        bess.clone().into(),
        "--raw".into(),
        "tapt".into(),
        "--raw".into(),
        "taph".into(),
    ];
    let (mut sw, tap_arg) = start_switch(&ns, dir.path(), args, "raw port ");
    assert_eq!(tap_arg, "vec0:transport=tap,ifname=tapt");
    let out = sw.output();
    let hybrid_line = out
        .lines()
        .find(|l| l.contains(" on 'taph' "))
        .unwrap_or_else(|| panic!("{out}"));
    assert!(
        hybrid_line.ends_with("guests join with vec0:transport=tap,ifname=taph"),
        "{hybrid_line}"
    );

    let mut peer = boot(
        &ns,
        Kernel::Linux7,
        &format!("vec0:transport=bess,dst={},mac={}", bess.display(), mac(1)),
        "vec0",
        1,
        RECEIVE,
    );
    expect_step_ok(&mut peer, LINK_UP, &mut sw, &[]);
    let mut hybrid = boot(
        &ns,
        Kernel::Linux7,
        &format!("vec0:transport=hybrid,ifname=taph,mac={}", mac(3)),
        "vec0",
        3,
        "ping -c 3 -i 0.3 -w 30 10.0.0.1\necho \"TEST: ping rc=$?\"",
    );
    let mut tap = boot(
        &ns,
        Kernel::Linux7,
        &format!("{tap_arg},mac={}", mac(2)),
        "vec0",
        2,
        &ping_and_send(),
    );
    expect_step_ok(&mut hybrid, LINK_UP, &mut sw, &[&peer, &tap]);
    expect_step_ok(&mut hybrid, "ping", &mut sw, &[&peer, &tap]);
    expect_step_ok(&mut tap, LINK_UP, &mut sw, &[&peer, &hybrid]);
    expect_step_ok(&mut tap, "ping", &mut sw, &[&peer, &hybrid]);
    expect_step_ok(&mut tap, "send", &mut sw, &[&peer, &hybrid]);
    expect_received(&peer, &tap, &mut sw);
    for g in [&mut tap, &mut hybrid] {
        expect_power_off(g, UML_EXIT);
    }
    halt(&mut peer, UML_EXIT);
    assert!(sw.running(), "switch ended:\n{}", sw.report());
    let out = sw.output();
    assert!(!out.contains(" old port "), "{out}");
    eprintln!("--- switch output (tap and hybrid guests) ---\n{out}");
}
