//! `uml_switch --bess` with the real UML kernel (Debian 12's `linux.uml`
//! 6.1, whose vector driver has `transport=bess`, `docs/vector.md` §2):
//! two guests on `vec0:transport=bess,dst=PATH` ping each other through
//! the switch, and a bess guest pings a guest on the classic `daemon`
//! transport (`eth0=daemon`) on the same switch.
//!
//! Everything runs in a network namespace the test creates and removes:
//! the daemon guest's data socket and the switch's are abstract unix
//! addresses of their namespace. Guests and switch are ended by pid; every
//! wait polls a condition with a deadline.

// Test code: a failed setup step should abort the test with its message.
#![allow(clippy::expect_used, clippy::unwrap_used)]

use std::ffi::OsString;
use std::path::Path;
use std::time::Duration;

use uml_integration_tests::segment::{
    self, count_lines, count_prefixed, expect_power_off, guest_mac as mac, halt, learned,
    switch_is_ours, Guest, LINK_UP,
};
use uml_integration_tests::switch_client::{new_temp_dir, NsSwitch};
use uml_integration_tests::{require, Kernel, NetNs, Requirement, Uml, IDLE_SCRIPT};

/// Hard lifetime of the switch process (`timeout -k 5 ...`).
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

/// Why the tests skip with the C switch.
const NOT_IN_C: &str = "--bess is not an option of the C switch";

/// How guest N joins the switch.
enum Link<'a> {
    /// `vec0:transport=bess,dst=PATH`.
    Bess(&'a Path),
    /// `eth0=daemon,MAC,unix,CTL`.
    Daemon(&'a Path),
}

/// Boots 6.1 guest `n` in `ns` on `link`, with address `10.0.0.N/24`,
/// running `then` after bringing its interface up.
fn boot(ns: &NetNs, link: Link<'_>, n: u8, then: &str) -> Uml {
    let guest = match link {
        Link::Bess(path) => Guest::new(
            n,
            Kernel::Linux61,
            format!("vec0:transport=bess,dst={},mac={}", path.display(), mac(n)),
            "vec0",
        ),
        Link::Daemon(ctl) => Guest::new(
            n,
            Kernel::Linux61,
            format!("eth0=daemon,{},unix,{}", mac(n), ctl.display()),
            "eth0",
        ),
    };
    let mut cfg = guest.then(then).config(ns, "bs");
    cfg.lifetime = UML_LIFETIME;
    segment::boot(cfg)
}

/// [`segment::expect_step_ok`] with this file's bound.
fn expect_step_ok(uml: &mut Uml, step: &str, sw: &mut NsSwitch, others: &[&Uml]) {
    segment::expect_step_ok(uml, step, GUEST_STEP, sw, others);
}

fn bess_disconnects(out: &str) -> usize {
    out.lines()
        .filter(|l| l.starts_with("Bess port ") && l.ends_with(" disconnected"))
        .count()
}

/// Starts `-unix DIR/sw.ctl --bess DIR/sw.bess` in `ns`.
fn start_switch(ns: &NetNs, dir: &Path) -> NsSwitch {
    let args: Vec<OsString> = vec![
        "-unix".into(),
        dir.join("sw.ctl").into(),
        "--bess".into(),
        dir.join("sw.bess").into(),
    ];
    let sw = NsSwitch::start(ns, dir, &args, SWITCH_LIFETIME).unwrap_or_else(|e| panic!("{e}"));
    let want = format!(
        "bess socket '{p}': guests join with vec0:transport=bess,dst={p}",
        p = dir.join("sw.bess").display()
    );
    assert!(sw.output().lines().any(|l| l == want), "{}", sw.output());
    sw
}

/// Starts the switch in `ns` with its sockets in `dir`, boots guest 1 on
/// `first` (idle) and guest 2 on the bess socket, which pings guest 1.
/// Returns the switch once guest 2 powered off and guest 1 was halted.
fn bess_guest_pings_guest_1(ns: &NetNs, dir: &Path, first: Link<'_>) -> NsSwitch {
    let mut sw = start_switch(ns, dir);
    let bess = dir.join("sw.bess");
    let mut a = boot(ns, first, 1, IDLE_SCRIPT);
    expect_step_ok(&mut a, LINK_UP, &mut sw, &[]);
    let mut b = boot(ns, Link::Bess(&bess), 2, PING_A);
    expect_step_ok(&mut b, LINK_UP, &mut sw, &[]);
    expect_step_ok(&mut b, "ping", &mut sw, &[&a]);
    expect_power_off(&mut b, UML_EXIT);
    halt(&mut a, UML_EXIT);
    sw
}

/// Two 6.1 guests on one bess socket ping each other; the switch learns
/// both MACs and reports both disconnects.
#[test]
fn two_bess_guests_ping_each_other() {
    require!(Requirement::Root, Requirement::LinuxUml, Requirement::NetNs);
    require!(Requirement::Program("ping", "iputils-ping"));
    if !switch_is_ours(NOT_IN_C) {
        return;
    }
    let dir = new_temp_dir();
    let ns = NetNs::new("bessping");
    let bess = dir.path().join("sw.bess");
    let mut sw = bess_guest_pings_guest_1(&ns, dir.path(), Link::Bess(&bess));
    let both_gone = sw.wait_output(SWITCH_REPORT, |o| bess_disconnects(o) >= 2);
    assert!(both_gone, "no two bess disconnects:\n{}", sw.report());
    assert!(sw.running(), "switch ended:\n{}", sw.report());
    let out = sw.output();
    assert_eq!(count_prefixed(&out, "New bess connection: "), 2, "{out}");
    for n in [1, 2] {
        assert_eq!(count_prefixed(&out, &learned(&mac(n))), 1, "{out}");
    }
    eprintln!("--- switch output (two bess guests) ---\n{out}");
}

/// A guest on the classic daemon transport and a guest on bess share the
/// switch: the bess guest pings the daemon guest.
#[test]
fn bess_guest_pings_a_daemon_guest() {
    require!(Requirement::Root, Requirement::LinuxUml, Requirement::NetNs);
    require!(Requirement::Program("ping", "iputils-ping"));
    if !switch_is_ours(NOT_IN_C) {
        return;
    }
    let dir = new_temp_dir();
    let ns = NetNs::new("bessdmn");
    let ctl = dir.path().join("sw.ctl");
    let mut sw = bess_guest_pings_guest_1(&ns, dir.path(), Link::Daemon(&ctl));
    let gone = sw.wait_output(SWITCH_REPORT, |o| {
        bess_disconnects(o) >= 1 && o.lines().any(|l| l == "Disconnect")
    });
    assert!(
        gone,
        "both guests' disconnects not reported:\n{}",
        sw.report()
    );
    assert!(sw.running(), "switch ended:\n{}", sw.report());
    let out = sw.output();
    assert_eq!(
        out.lines().next(),
        Some(format!("{} attached to unix socket '{}'", sw.argv0(), ctl.display()).as_str()),
        "{out}"
    );
    assert_eq!(count_lines(&out, "New connection"), 1, "{out}");
    assert_eq!(count_prefixed(&out, "New bess connection: "), 1, "{out}");
    for n in [1, 2] {
        assert_eq!(count_prefixed(&out, &learned(&mac(n))), 1, "{out}");
    }
    eprintln!("--- switch output (bess and daemon guests) ---\n{out}");
}
