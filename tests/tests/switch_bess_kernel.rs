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
use std::io::Write;
use std::path::Path;
use std::time::Duration;

use uml_integration_tests::switch_client::{NsSwitch, SwitchBinary};
use uml_integration_tests::{require, NetNs, Requirement, Uml, UmlConfig};

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

/// Idle until the host halts the guest.
const IDLE: &str = "while :; do sleep 3600; done";
/// Guest-side ping of 10.0.0.1 with its result on the console.
const PING_A: &str = "ping -c 3 -i 0.3 -w 20 10.0.0.1\necho \"TEST: ping rc=$?\"";

/// Returns from the test when the switch under test is the C reference,
/// which has no `--bess`.
macro_rules! require_ours {
    () => {
        if SwitchBinary::under_test().is_c_reference {
            let _ = writeln!(
                std::io::stderr(),
                "SKIP: --bess is not an option of the C switch"
            );
            return;
        }
    };
}

/// Guest addresses: MAC `fe:fd:0a:00:00:0N`, IP `10.0.0.N/24`.
fn mac(n: u8) -> String {
    format!("fe:fd:0a:00:00:{n:02x}")
}

/// How guest N joins the switch.
enum Link<'a> {
    /// `vec0:transport=bess,dst=PATH`.
    Bess(&'a Path),
    /// `eth0=daemon,MAC,unix,CTL`.
    Daemon(&'a Path),
}

/// Boots guest `n` in `ns` on `link`, with address `10.0.0.N/24`, running
/// `then` after bringing its interface up.
fn boot(ns: &NetNs, link: Link<'_>, n: u8, then: &str) -> Uml {
    let mut cfg = UmlConfig::new(&format!("bs{n}"));
    cfg.netns = Some(ns.name().to_string());
    cfg.lifetime = UML_LIFETIME;
    let dev = match link {
        Link::Bess(path) => {
            cfg.extra_args.push(format!(
                "vec0:transport=bess,dst={},mac={}",
                path.display(),
                mac(n)
            ));
            "vec0"
        }
        Link::Daemon(ctl) => {
            cfg.extra_args
                .push(format!("eth0=daemon,{},unix,{}", mac(n), ctl.display()));
            "eth0"
        }
    };
    // The harness preamble keeps guest programs off glibc's AVX-512
    // string functions.
    cfg.init_script = format!(
        "ip addr add 10.0.0.{n}/24 dev {dev} && ip link set {dev} up\n\
         echo \"TEST: link up rc=$?\"\n\
         {then}\n"
    );
    Uml::boot(cfg).expect("boot UML")
}

/// Waits (bounded) for the console line `TEST: <step> rc=` of `uml` and
/// asserts that it reads `rc=0`.
fn expect_step_ok(uml: &mut Uml, step: &str, sw: &mut NsSwitch, peer: Option<&Uml>) {
    let marker = format!("TEST: {step} rc=");
    let seen = uml.wait_console(&marker, GUEST_STEP);
    let console = uml.console();
    let ok = format!("{marker}0");
    let peer = peer.map_or(String::new(), |p| {
        format!("--- console of {} ---\n{}\n", p.umid(), p.console())
    });
    assert!(
        seen && console.lines().any(|l| l.trim_end() == ok),
        "{}: {}\n--- console ---\n{console}\n{peer}{}",
        uml.umid(),
        if seen {
            format!("{step} failed")
        } else {
            format!("{marker} never printed")
        },
        sw.report()
    );
}

fn count_prefixed(out: &str, prefix: &str) -> usize {
    out.lines().filter(|l| l.starts_with(prefix)).count()
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

/// Two 6.1 guests on one bess socket ping each other; the switch learns
/// both MACs and reports both disconnects.
#[test]
fn two_bess_guests_ping_each_other() {
    require!(Requirement::Root, Requirement::LinuxUml, Requirement::NetNs);
    require!(Requirement::Program("ping", "iputils-ping"));
    require_ours!();
    let dir = tempfile::Builder::new()
        .prefix("umlsw-")
        .tempdir()
        .expect("tempdir");
    let ns = NetNs::new("bessping");
    let mut sw = start_switch(&ns, dir.path());
    let bess = dir.path().join("sw.bess");

    let mut a = boot(&ns, Link::Bess(&bess), 1, IDLE);
    expect_step_ok(&mut a, "link up", &mut sw, None);
    let mut b = boot(&ns, Link::Bess(&bess), 2, PING_A);
    expect_step_ok(&mut b, "link up", &mut sw, None);
    expect_step_ok(&mut b, "ping", &mut sw, Some(&a));

    assert!(
        b.wait_exit(UML_EXIT),
        "b did not power off:\n{}",
        b.console()
    );
    a.halt().expect("halt a");
    assert!(a.wait_exit(UML_EXIT), "a did not halt:\n{}", a.console());
    let both_gone = sw.wait_output(SWITCH_REPORT, |o| bess_disconnects(o) >= 2);
    assert!(both_gone, "no two bess disconnects:\n{}", sw.report());
    assert!(sw.running(), "switch ended:\n{}", sw.report());
    let out = sw.output();
    assert_eq!(count_prefixed(&out, "New bess connection: "), 2, "{out}");
    for n in [1, 2] {
        let learned = format!(" Addr: {} New port ", mac(n));
        assert_eq!(count_prefixed(&out, &learned), 1, "{out}");
    }
    eprintln!("--- switch output (two bess guests) ---\n{out}");
}

/// A guest on the classic daemon transport and a guest on bess share the
/// switch: the bess guest pings the daemon guest.
#[test]
fn bess_guest_pings_a_daemon_guest() {
    require!(Requirement::Root, Requirement::LinuxUml, Requirement::NetNs);
    require!(Requirement::Program("ping", "iputils-ping"));
    require_ours!();
    let dir = tempfile::Builder::new()
        .prefix("umlsw-")
        .tempdir()
        .expect("tempdir");
    let ns = NetNs::new("bessdmn");
    let mut sw = start_switch(&ns, dir.path());
    let ctl = dir.path().join("sw.ctl");
    let bess = dir.path().join("sw.bess");

    let mut a = boot(&ns, Link::Daemon(&ctl), 1, IDLE);
    expect_step_ok(&mut a, "link up", &mut sw, None);
    let mut b = boot(&ns, Link::Bess(&bess), 2, PING_A);
    expect_step_ok(&mut b, "link up", &mut sw, None);
    expect_step_ok(&mut b, "ping", &mut sw, Some(&a));

    assert!(
        b.wait_exit(UML_EXIT),
        "b did not power off:\n{}",
        b.console()
    );
    a.halt().expect("halt a");
    assert!(a.wait_exit(UML_EXIT), "a did not halt:\n{}", a.console());
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
    assert_eq!(
        out.lines().filter(|l| *l == "New connection").count(),
        1,
        "{out}"
    );
    assert_eq!(count_prefixed(&out, "New bess connection: "), 1, "{out}");
    for n in [1, 2] {
        let learned = format!(" Addr: {} New port ", mac(n));
        assert_eq!(count_prefixed(&out, &learned), 1, "{out}");
    }
    eprintln!("--- switch output (bess and daemon guests) ---\n{out}");
}
