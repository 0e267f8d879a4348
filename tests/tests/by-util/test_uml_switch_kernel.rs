//! uml_switch with the real UML kernel (linux.uml 6.1, `daemon` transport):
//! two UMLs ping each other through the switch (switch and hub mode), and a
//! UML and its host namespace ping each other through a tap port
//! (`docs/testing.md` §7.1, `docs/switch.md` §8).
//!
//! The switch under test is this workspace's `uml_switch`, or the program
//! named by `UML_SWITCH_UNDER_TEST` (e.g. `/usr/bin/uml_switch`, Debian's C
//! switch, which is run under `stdbuf -oL -eL` because it block-buffers its
//! output when it is not a terminal). Everything runs inside a network
//! namespace of its own: the switch's data socket and the kernels' data
//! sockets are abstract Unix addresses, which exist per namespace.

// Test code: a failed setup step should abort the test with its message.
#![allow(clippy::expect_used, clippy::unwrap_used)]

use std::ffi::OsString;
use std::path::Path;
use std::time::Duration;

use uml_integration_tests::segment::{
    self, count_lines, count_prefixed, expect_power_off, guest_mac as mac, halt, learned, Guest,
    LINK_UP,
};
use uml_integration_tests::switch_client::{new_temp_dir, NsSwitch};
use uml_integration_tests::{
    require, run_with_timeout, Kernel, NetNs, Requirement, Uml, IDLE_SCRIPT,
};

/// Hard lifetime of the switch process (`timeout -k 5 ...`), a last resort
/// should the test process die without running its destructors.
const SWITCH_LIFETIME: Duration = Duration::from_secs(120);
/// Hard lifetime of each UML.
const UML_LIFETIME: Duration = Duration::from_secs(90);
/// Bound for a guest's init script to reach a marker.
const GUEST_STEP: Duration = Duration::from_secs(30);
/// Bound for a UML to exit after it powered off or was halted.
const UML_EXIT: Duration = Duration::from_secs(20);
/// Bound for the switch to report events that already happened.
const SWITCH_REPORT: Duration = Duration::from_secs(10);

/// Guest-side ping of 10.0.0.1 with its result on the console.
const PING_A: &str = "ping -c 3 -i 0.3 -w 20 10.0.0.1\necho \"TEST: ping rc=$?\"";

/// Starts the switch under test with `args` in `ns` (output in
/// `dir/switch.out`) and waits until it printed its `attached to unix
/// socket` line.
fn start_switch(ns: &NetNs, dir: &Path, args: &[&str]) -> NsSwitch {
    let args: Vec<OsString> = args.iter().map(OsString::from).collect();
    NsSwitch::start(ns, dir, &args, SWITCH_LIFETIME).unwrap_or_else(|e| panic!("{e}"))
}

/// A 6.1 UML in `ns` whose `eth0` is a `daemon` port of the switch at
/// `ctl`, with MAC `fe:fd:0a:00:00:0N` and address `10.0.0.N/24`, running
/// `then` after bringing `eth0` up.
fn boot_on_switch(ns: &NetNs, ctl: &Path, n: u8, then: &str) -> Uml {
    let net = format!("eth0=daemon,{},unix,{}", mac(n), ctl.display());
    let mut cfg = Guest::new(n, Kernel::Linux61, net, "eth0")
        .then(then)
        .config(ns, "sw");
    cfg.lifetime = UML_LIFETIME;
    segment::boot(cfg)
}

/// [`segment::expect_step_ok`] with this file's bound.
fn expect_step_ok(uml: &mut Uml, step: &str, sw: &mut NsSwitch, others: &[&Uml]) {
    segment::expect_step_ok(uml, step, GUEST_STEP, sw, others);
}

/// Recipe 7.1: UML b pings UML a through the switch; checks the switch's
/// messages (`docs/switch.md` §8) before and after both UMLs are gone.
fn two_umls_ping(tag: &str, hub: bool) {
    require!(Requirement::Root, Requirement::LinuxUml, Requirement::NetNs);
    require!(Requirement::Program("ping", "iputils-ping"));
    let dir = new_temp_dir();
    let ns = NetNs::new(tag);
    let ctl = dir.path().join("sw.ctl");
    let ctl_s = ctl.to_string_lossy().into_owned();
    let mut args = vec!["-unix", ctl_s.as_str()];
    if hub {
        args.push("-hub");
    }
    let mut sw = start_switch(&ns, dir.path(), &args);

    let mut a = boot_on_switch(&ns, &ctl, 1, IDLE_SCRIPT);
    expect_step_ok(&mut a, LINK_UP, &mut sw, &[]);
    let mut b = boot_on_switch(&ns, &ctl, 2, PING_A);
    expect_step_ok(&mut b, LINK_UP, &mut sw, &[]);
    expect_step_ok(&mut b, "ping", &mut sw, &[&a]);

    // b powers off by itself after its script; a is halted.
    expect_power_off(&mut b, UML_EXIT);
    halt(&mut a, UML_EXIT);
    let both_gone = sw.wait_output(SWITCH_REPORT, |o| count_lines(o, "Disconnect") >= 2);
    let out = sw.output();
    assert!(
        both_gone,
        "switch did not report two disconnects:\n{}",
        sw.report()
    );
    assert!(sw.running(), "switch ended:\n{}", sw.report());

    let prog = sw.argv0();
    let mut lines = out.lines();
    if hub {
        assert_eq!(
            lines.next(),
            Some(format!("{prog} will be a hub instead of a switch").as_str()),
            "{out}"
        );
    }
    assert_eq!(
        lines.next(),
        Some(format!("{prog} attached to unix socket '{ctl_s}'").as_str()),
        "{out}"
    );
    assert_eq!(count_lines(&out, "New connection"), 2, "{out}");
    for n in [1, 2] {
        assert_eq!(count_prefixed(&out, &learned(&mac(n))), 1, "{out}");
    }
    assert_eq!(count_lines(&out, "Disconnect"), 2, "{out}");
    eprintln!("--- switch output ({tag}) ---\n{out}");
}

#[test]
fn switch_mode_two_umls_ping() {
    two_umls_ping("swping", false);
}

#[test]
fn hub_mode_two_umls_ping() {
    two_umls_ping("hubping", true);
}

/// The MAC of `dev` in `ns` (`link/ether xx:...`).
fn link_mac(ns: &NetNs, dev: &str) -> String {
    let out = ns.ip(&["-o", "link", "show", "dev", dev]);
    assert!(out.success(), "ip link show {dev}: {out}");
    let text = out.stdout_str();
    let mut words = text.split_whitespace();
    words
        .find(|w| *w == "link/ether")
        .and_then(|_| words.next())
        .unwrap_or_else(|| panic!("no MAC in {text:?}"))
        .to_string()
}

/// `-tap tapsw`: a tap configured in the namespace is a switch port; the
/// guest pings the tap's address and the namespace pings the guest.
#[test]
fn tap_port_pings_both_ways() {
    require!(
        Requirement::Root,
        Requirement::LinuxUml,
        Requirement::NetNs,
        Requirement::DevNetTun
    );
    require!(Requirement::Program("ping", "iputils-ping"));
    let dir = new_temp_dir();
    let ns = NetNs::new("swtap");
    for step in [
        &["tuntap", "add", "dev", "tapsw", "mode", "tap"][..],
        &["addr", "add", "10.0.0.254/24", "dev", "tapsw"],
        &["link", "set", "tapsw", "up"],
    ] {
        let out = ns.ip(step);
        assert!(out.success(), "ip {step:?}: {out}");
    }
    let tap_mac = link_mac(&ns, "tapsw");
    let ctl = dir.path().join("sw.ctl");
    let ctl_s = ctl.to_string_lossy().into_owned();
    let mut sw = start_switch(&ns, dir.path(), &["-unix", &ctl_s, "-tap", "tapsw"]);
    // The tap port is registered at start-up.
    let tap_port = sw.wait_output(SWITCH_REPORT, |o| count_lines(o, "New connection") >= 1);
    assert!(tap_port, "no tap port:\n{}", sw.report());

    let guest_ping = "ping -c 3 -i 0.3 -w 20 10.0.0.254\necho \"TEST: ping rc=$?\"\n".to_string();
    let mut a = boot_on_switch(&ns, &ctl, 1, &(guest_ping + IDLE_SCRIPT));
    expect_step_ok(&mut a, LINK_UP, &mut sw, &[]);
    expect_step_ok(&mut a, "ping", &mut sw, &[]);

    let host_ping = run_with_timeout(
        ns.exec("ping")
            .args(["-c", "3", "-i", "0.3", "-w", "20", "10.0.0.1"]),
        Duration::from_secs(30),
    );
    assert!(
        host_ping.success(),
        "ping from the namespace to the guest failed: {host_ping}\n{}",
        sw.report()
    );

    halt(&mut a, UML_EXIT);
    let gone = sw.wait_output(SWITCH_REPORT, |o| count_lines(o, "Disconnect") >= 1);
    assert!(gone, "no disconnect:\n{}", sw.report());
    assert!(sw.running(), "switch ended:\n{}", sw.report());

    let out = sw.output();
    assert_eq!(
        out.lines().next(),
        Some(
            format!(
                "{} attached to unix socket '{ctl_s}' tap device 'tapsw'",
                sw.argv0()
            )
            .as_str()
        ),
        "{out}"
    );
    assert_eq!(count_lines(&out, "New connection"), 2, "{out}");
    assert_eq!(count_prefixed(&out, &learned(&mac(1))), 1, "{out}");
    assert_eq!(count_prefixed(&out, &learned(&tap_mac)), 1, "{out}");
    assert_eq!(count_lines(&out, "Disconnect"), 1, "{out}");
    eprintln!("--- switch output (tap) ---\n{out}");
}
