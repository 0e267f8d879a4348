//! `uml_switch --l2tpv3` and `--gre` with real UML kernels (see
//! `docs/vector.md` §4, §5; `docs/kernel7.md` §1.2): a guest on
//! `vec0:transport=l2tpv3` over UDP (64-bit cookies, counter), one on
//! l2tpv3 over IP (a session written as `-1`, 32-bit cookies, pinned
//! counter) and one on `gre` (keys, sequence numbers) each ping a bess
//! guest through one switch — with Linux 7.x guests (no daemon transport
//! any more) and with Debian 12's 6.1 guests. Each guest is started with
//! exactly the argument the switch printed for its port.
//!
//! Everything runs in a network namespace the test creates and removes
//! (127.0.0.x are all loopback addresses there; a raw tunnel needs an
//! address per end). The guests' UDP source port is a port the namespace
//! gave out as free; the switch's is chosen by the switch (`dstport=0`).
//! Guests and switch are ended by pid; every wait polls a condition with
//! a deadline.

// Test code: a failed setup step should abort the test with its message.
#![allow(clippy::expect_used, clippy::unwrap_used)]

use std::ffi::OsString;
use std::path::Path;
use std::time::Duration;

use uml_integration_tests::segment::{
    self, expect_power_off, free_udp_port, guest_mac as mac, halt, one_at_a_time, switch_is_ours,
    Guest, LINK_UP,
};
use uml_integration_tests::switch_client::NsSwitch;
use uml_integration_tests::{require, Kernel, NetNs, Requirement, Uml, IDLE_SCRIPT};

/// Hard lifetime of the switch process (`timeout -k 5 ...`).
const SWITCH_LIFETIME: Duration = Duration::from_secs(240);
/// Hard lifetime of each UML.
const UML_LIFETIME: Duration = Duration::from_secs(180);
/// Bound for a guest's init script to reach a marker (four guests boot at
/// once on a shared machine).
const GUEST_STEP: Duration = Duration::from_secs(90);
/// Bound for a UML to exit after it powered off or was halted.
const UML_EXIT: Duration = Duration::from_secs(30);
/// Bound for the switch to print what it prints at start-up.
const SWITCH_REPORT: Duration = Duration::from_secs(10);

/// Guest-side ping of the bess guest, with its result on the console.
const PING_PEER: &str = "ping -c 3 -i 0.3 -w 30 10.0.0.1\necho \"TEST: ping rc=$?\"";

/// Why the tests skip with the C switch.
const NOT_IN_C: &str = "--l2tpv3/--gre are not options of the C switch";

/// Boots guest `n` of `kernel` in `ns` with the network argument `net`
/// (device `dev`), address `10.0.0.N/24`, running `then` after bringing
/// the device up.
fn boot(ns: &NetNs, kernel: Kernel, net: &str, dev: &'static str, n: u8, then: &str) -> Uml {
    let mut cfg = Guest::new(n, kernel, net, dev).then(then).config(ns, "tn");
    cfg.lifetime = UML_LIFETIME;
    segment::boot(cfg)
}

/// [`segment::expect_step_ok`] with this file's bound.
fn expect_step_ok(uml: &mut Uml, step: &str, sw: &mut NsSwitch, others: &[&Uml]) {
    segment::expect_step_ok(uml, step, GUEST_STEP, sw, others);
}

/// The guest arguments the switch printed for its tunnel ports, in order.
fn announced(out: &str) -> Vec<String> {
    out.lines()
        .filter_map(|l| l.split(": the guest joins with ").nth(1))
        .map(str::to_string)
        .collect()
}

/// A 6.1 or 7.x guest on each tunnel kind pings a bess guest of the same
/// kernel through one switch.
fn tunnel_guests_ping_a_bess_guest(kernel: Kernel) {
    let _serial = one_at_a_time();
    let dir = tempfile::Builder::new()
        .prefix("umlsw-")
        .tempdir()
        .expect("tempdir");
    let ns = NetNs::new("tunk");
    let bess = dir.path().join("sw.bess");
    let srcport = free_udp_port(&ns);
    let udp = format!(
        "udp=1,src=127.0.0.1,srcport={srcport},dst=127.0.0.1,dstport=0,rx_session=0x1234,\
         tx_session=0x5678,cookie64=1,rx_cookie=0xcafe,tx_cookie=0x1122334455667788,\
         counter=1,mac={}",
        mac(2)
    );
    let ip = format!(
        "src=127.0.0.3,dst=127.0.0.1,rx_session=-1,tx_session=0x7ffffffe,\
         rx_cookie=0xcafef00d,tx_cookie=0xdeadbeef,counter=1,pin_counter=1,mac={}",
        mac(3)
    );
    let gre = format!(
        "src=127.0.0.4,dst=127.0.0.1,rx_key=-2,tx_key=0x11223344,sequence=1,mac={}",
        mac(4)
    );
    let args: Vec<OsString> = vec![
        "-unix".into(),
        dir.path().join("sw.ctl").into(),
        "--bess".into(),
        bess.clone().into(),
        "--l2tpv3".into(),
        udp.into(),
        "--l2tpv3".into(),
        ip.into(),
        "--gre".into(),
        gre.into(),
    ];
    let mut sw =
        NsSwitch::start(&ns, dir.path(), &args, SWITCH_LIFETIME).unwrap_or_else(|e| panic!("{e}"));
    assert!(
        sw.wait_output(SWITCH_REPORT, |o| announced(o).len() == 3),
        "{}",
        sw.report()
    );
    let tunnels = announced(&sw.output());
    assert!(
        tunnels[0].starts_with("vec0:transport=l2tpv3,udp=1,"),
        "{tunnels:?}"
    );
    assert!(!tunnels[0].contains("dstport=0,"), "{tunnels:?}");
    assert!(
        tunnels[1].starts_with("vec0:transport=l2tpv3,src=127.0.0.3,"),
        "{tunnels:?}"
    );
    assert!(tunnels[2].starts_with("vec0:transport=gre,"), "{tunnels:?}");

    let mut peer = boot(
        &ns,
        kernel,
        &format!("vec0:transport=bess,dst={},mac={}", bess.display(), mac(1)),
        "vec0",
        1,
        IDLE_SCRIPT,
    );
    expect_step_ok(&mut peer, LINK_UP, &mut sw, &[]);
    let mut guests: Vec<Uml> = tunnels
        .iter()
        .zip(2u8..)
        .map(|(arg, n)| boot(&ns, kernel, arg, "vec0", n, PING_PEER))
        .collect();
    for i in 0..guests.len() {
        let (g, rest) = guests.split_at_mut(i + 1);
        let others: Vec<&Uml> = rest.iter().chain(std::iter::once(&peer)).collect();
        expect_step_ok(&mut g[i], LINK_UP, &mut sw, &others);
        expect_step_ok(&mut g[i], "ping", &mut sw, &others);
    }
    for g in &mut guests {
        expect_power_off(g, UML_EXIT);
    }
    halt(&mut peer, UML_EXIT);
    assert!(sw.running(), "switch ended:\n{}", sw.report());
    let out = sw.output();
    for n in 1..=4 {
        let learned = format!(" Addr: {} New port ", mac(n));
        assert!(out.contains(&learned), "{learned:?} missing:\n{out}");
    }
    // Both ends agreed on every header: nothing was dropped.
    assert!(!out.contains("dropped a packet"), "{out}");
    // ICMP errors from guests not up yet are counted, not reported.
    assert!(
        !out.contains("Receiving on") && !out.contains("Sending to"),
        "{out}"
    );
    eprintln!("--- switch output ({kernel:?} tunnel guests) ---\n{out}");
}

/// Three Linux 7.x guests, on l2tpv3/UDP, l2tpv3/IP and gre, ping a 7.x
/// bess guest.
#[test]
fn kernel7_tunnel_guests_ping_a_bess_guest() {
    require!(
        Requirement::Root,
        Requirement::LinuxUml7,
        Requirement::NetNs
    );
    require!(Requirement::Program("ping", "iputils-ping"));
    if !switch_is_ours(NOT_IN_C) {
        return;
    }
    tunnel_guests_ping_a_bess_guest(Kernel::Linux7);
}

/// The same with Debian 12's 6.1 guests.
#[test]
fn kernel61_tunnel_guests_ping_a_bess_guest() {
    require!(Requirement::Root, Requirement::LinuxUml, Requirement::NetNs);
    require!(Requirement::Program("ping", "iputils-ping"));
    if !switch_is_ours(NOT_IN_C) {
        return;
    }
    tunnel_guests_ping_a_bess_guest(Kernel::Linux61);
}

/// Old and new kernels on one segment: a 7.x guest on l2tpv3/UDP pings a
/// 6.1 guest on the classic daemon transport.
#[test]
fn kernel7_l2tpv3_guest_pings_a_daemon_guest() {
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
    let ns = NetNs::new("tund");
    let ctl = dir.path().join("sw.ctl");
    let srcport = free_udp_port(&ns);
    let args: Vec<OsString> = vec![
        "-unix".into(),
        ctl.clone().into(),
        "--l2tpv3".into(),
        format!(
            "udp=1,src=127.0.0.1,srcport={srcport},dst=127.0.0.1,dstport=0,rx_session=1,\
             tx_session=2,mac={}",
            mac(2)
        )
        .into(),
    ];
    let mut sw =
        NsSwitch::start(&ns, dir.path(), &args, SWITCH_LIFETIME).unwrap_or_else(|e| panic!("{e}"));
    assert!(
        sw.wait_output(SWITCH_REPORT, |o| announced(o).len() == 1),
        "{}",
        sw.report()
    );
    let arg = announced(&sw.output()).remove(0);
    let mut old = boot(
        &ns,
        Kernel::Linux61,
        &format!("eth0=daemon,{},unix,{}", mac(1), ctl.display()),
        "eth0",
        1,
        IDLE_SCRIPT,
    );
    expect_step_ok(&mut old, LINK_UP, &mut sw, &[]);
    let mut new = boot(&ns, Kernel::Linux7, &arg, "vec0", 2, PING_PEER);
    expect_step_ok(&mut new, LINK_UP, &mut sw, &[&old]);
    expect_step_ok(&mut new, "ping", &mut sw, &[&old]);
    expect_power_off(&mut new, UML_EXIT);
    halt(&mut old, UML_EXIT);
    let out = sw.output();
    assert!(!out.contains("dropped a packet"), "{out}");
    // ICMP errors from guests not up yet are counted, not reported.
    assert!(
        !out.contains("Receiving on") && !out.contains("Sending to"),
        "{out}"
    );
    assert!(
        Path::new(&ctl).exists(),
        "control socket gone while running"
    );
}
