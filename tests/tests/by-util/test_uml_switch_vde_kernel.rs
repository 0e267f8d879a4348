//! `uml_switch` with real UML kernels on the vde and fd transports (see
//! `docs/kernel7.md` §1.3 and §5, `docs/vector.md` §3):
//!
//! * two Linux 7.x guests on `vec0:transport=vde,vnl=vde://DIR` — the
//!   kernel runs vdeplug4's `vde_plug` (found on the `PATH` it gives its
//!   helpers: the test puts `vde_plug`'s directory first) — ping each
//!   other through a switch started with `-unix DIR/ctl`;
//! * a 7.x guest started by the fd launcher (`uml_switch --launch BESS
//!   --fd 3 -- …`) on `vec0:transport=fd,fd=3` pings a bess guest;
//! * one mixed segment: a 6.1 guest on `eth0=daemon`, a 7.x guest on bess,
//!   a 7.x guest through `vde_plug` and a 7.x guest on l2tpv3/UDP all ping
//!   each other through one switch.
//!
//! Every guest gets exactly the argument the switch printed for its
//! listener (plus `mac=`). Everything runs in a network namespace the test
//! creates and removes; guests and switch are ended by pid; every wait
//! polls a condition with a deadline. Missing prerequisites (root, the
//! kernels, `vde_plug`, `ping`) skip the tests, and fail them under
//! `CI=true`.

// Test code: a failed setup step should abort the test with its message.
#![allow(clippy::expect_used, clippy::unwrap_used)]

use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::time::Duration;

use uml_integration_tests::segment::{
    self, free_udp_port, guest_mac as mac, learned, one_at_a_time, switch_is_ours, Guest, LINK_UP,
};
use uml_integration_tests::switch_client::{new_temp_dir, NsSwitch, SwitchBinary};
use uml_integration_tests::{find_in_path, require, Kernel, NetNs, Requirement, Uml, IDLE_SCRIPT};

/// Hard lifetime of the switch process (`timeout -k 5 ...`).
const SWITCH_LIFETIME: Duration = Duration::from_secs(420);
/// Hard lifetime of each UML.
const UML_LIFETIME: Duration = Duration::from_secs(360);
/// Bound for a guest to bring its link up (four guests boot at once on a
/// shared machine).
const LINK_UP_BOUND: Duration = Duration::from_secs(120);
/// Bound for a guest to finish its pings (each peer may still be booting:
/// `ping -w` gives each one 90 s).
const PINGS: Duration = Duration::from_secs(240);
/// Bound for a UML to exit after it was halted.
const UML_EXIT: Duration = Duration::from_secs(30);
/// Bound for the switch to print what it prints at start-up.
const SWITCH_REPORT: Duration = Duration::from_secs(10);

/// Why the tests skip with the C switch.
const NOT_IN_C: &str = "the C switch serves neither vde_plug nor vector guests";

/// Boots `g` in `ns`: brings its device up, pings every address of
/// `peers` (each bounded by `ping -w`), prints the results on its console
/// and idles until halted. `vde_dir` goes first in the kernel's `PATH`
/// (where it looks for `vde_plug`).
fn boot(ns: &NetNs, g: &Guest, peers: &[u8], vde_dir: &Path) -> Uml {
    let pings: String = peers
        .iter()
        .map(|p| {
            format!(
                "ping -c 2 -i 0.3 -w 90 10.0.0.{p} >/dev/null; echo \"TEST: ping 10.0.0.{p} rc=$?\"\n"
            )
        })
        .collect();
    let mut cfg = g
        .clone()
        .then(format!("{pings}echo \"TEST: pings done\"\n{IDLE_SCRIPT}"))
        .config(ns, "vd");
    cfg.lifetime = UML_LIFETIME;
    cfg.mem = "96M".to_string();
    cfg.path_prepend = Some(vde_dir.to_path_buf());
    segment::boot(cfg)
}

/// Waits (bounded) for `marker` on guest `i`'s console; panics with every
/// console and the switch's output if it does not come.
fn wait_marker(umls: &mut [Uml], i: usize, marker: &str, bound: Duration, sw: &mut NsSwitch) {
    if !umls[i].wait_console(marker, bound) {
        panic!(
            "{}: {marker:?} not printed within {bound:?}\n{}{}",
            umls[i].umid(),
            segment::consoles(umls.iter()),
            sw.report()
        );
    }
}

/// Asserts that guest `i` reported `rc=0` for its link and each ping.
fn assert_all_ok(umls: &[Uml], i: usize, peers: &[u8], sw: &mut NsSwitch) {
    let console = umls[i].console();
    let mut steps = vec![format!("TEST: {LINK_UP} rc=0")];
    steps.extend(peers.iter().map(|p| format!("TEST: ping 10.0.0.{p} rc=0")));
    for step in steps {
        if !console.lines().any(|l| l.trim_end() == step) {
            panic!(
                "{}: no {step:?}\n{}{}",
                umls[i].umid(),
                segment::consoles(umls),
                sw.report()
            );
        }
    }
}

/// Boots `guests` (each pinging all the others), waits for every link and
/// every ping, then halts them all.
fn ping_mesh(ns: &NetNs, guests: &[Guest], sw: &mut NsSwitch) {
    let vde_dir = vde_dir();
    let vde_dir = vde_dir.as_path();
    let all: Vec<u8> = guests.iter().map(|g| g.n).collect();
    let mut umls: Vec<Uml> = Vec::new();
    for g in guests {
        let peers: Vec<u8> = all.iter().copied().filter(|&p| p != g.n).collect();
        umls.push(boot(ns, g, &peers, vde_dir));
    }
    for i in 0..umls.len() {
        let marker = format!("TEST: {LINK_UP} rc=");
        wait_marker(&mut umls, i, &marker, LINK_UP_BOUND, sw);
    }
    for (i, g) in guests.iter().enumerate() {
        wait_marker(&mut umls, i, "TEST: pings done", PINGS, sw);
        let peers: Vec<u8> = all.iter().copied().filter(|&p| p != g.n).collect();
        assert_all_ok(&umls, i, &peers, sw);
    }
    for u in &mut umls {
        u.halt().expect("halt");
    }
    for u in &mut umls {
        assert!(u.wait_exit(UML_EXIT), "{} did not halt", u.umid());
    }
}

/// The argument the switch printed after `marker` (e.g. `through vde_plug
/// with `), waiting for it.
fn printed_argument(sw: &mut NsSwitch, marker: &str) -> String {
    segment::printed_argument(sw, marker, SWITCH_REPORT)
}

/// The directory `vde_plug` is in (after `require!` found it).
fn vde_dir() -> PathBuf {
    let vde_plug = find_in_path("vde_plug").expect("vde_plug");
    vde_plug.parent().unwrap().to_path_buf()
}

/// Two 7.x guests on `vecN:transport=vde,vnl=vde://DIR` ping each other
/// through a switch on `DIR/ctl`; each is a vde port with its own data
/// socket, named in the log with vde_plug's description.
#[test]
fn kernel7_vde_guests_ping_each_other() {
    require!(
        Requirement::Root,
        Requirement::LinuxUml7,
        Requirement::NetNs
    );
    require!(
        Requirement::Program("vde_plug", "vdeplug"),
        Requirement::Program("ping", "iputils-ping")
    );
    if !switch_is_ours(NOT_IN_C) {
        return;
    }
    let _serial = one_at_a_time();
    let dir = new_temp_dir();
    let ns = NetNs::new("vdek");
    let args: Vec<OsString> = vec!["-unix".into(), dir.path().join("ctl").into()];
    let mut sw =
        NsSwitch::start(&ns, dir.path(), &args, SWITCH_LIFETIME).unwrap_or_else(|e| panic!("{e}"));
    let arg = printed_argument(&mut sw, "through vde_plug with ");
    assert_eq!(
        arg,
        format!("vec0:transport=vde,vnl=vde://{}", dir.path().display())
    );
    let guests: Vec<Guest> = (1..=2)
        .map(|n| Guest::new(n, Kernel::Linux7, format!("{arg},mac={}", mac(n)), "vec0"))
        .collect();
    ping_mesh(&ns, &guests, &mut sw);
    let out = sw.output();
    assert_eq!(
        out.lines()
            .filter(|l| l.starts_with("New vde port "))
            .count(),
        2,
        "{out}"
    );
    // The kernel's vde_plug describes itself as "UML user=... pid=...".
    assert!(
        out.lines()
            .filter(|l| l.starts_with("New vde port "))
            .all(|l| l.contains("): UML user=")),
        "{out}"
    );
    for n in 1..=2 {
        let learned = learned(&mac(n));
        assert!(out.contains(&learned), "{learned:?} missing:\n{out}");
    }
    assert!(!out.contains("Bad request"), "{out}");
    assert!(sw.running(), "switch ended:\n{}", sw.report());
    eprintln!("--- switch output (vde guests) ---\n{out}");
}

/// A 7.x guest started by the fd launcher on `vec0:transport=fd,fd=3`
/// (no socket path on its command line) and a 7.x bess guest ping each
/// other.
#[test]
fn kernel7_fd_guest_from_the_launcher_pings_a_bess_guest() {
    require!(
        Requirement::Root,
        Requirement::LinuxUml7,
        Requirement::NetNs
    );
    require!(
        Requirement::Program("vde_plug", "vdeplug"),
        Requirement::Program("ping", "iputils-ping")
    );
    if !switch_is_ours(NOT_IN_C) {
        return;
    }
    let _serial = one_at_a_time();
    let dir = new_temp_dir();
    let ns = NetNs::new("vdfd");
    let bess = dir.path().join("sw.bess");
    let args: Vec<OsString> = vec![
        "-unix".into(),
        dir.path().join("ctl").into(),
        "--bess".into(),
        bess.clone().into(),
    ];
    let mut sw =
        NsSwitch::start(&ns, dir.path(), &args, SWITCH_LIFETIME).unwrap_or_else(|e| panic!("{e}"));
    let bess_arg = printed_argument(&mut sw, "guests join with ");
    let switch = SwitchBinary::under_test().path;
    let guests = [
        Guest::new(
            1,
            Kernel::Linux7,
            format!("{bess_arg},mac={}", mac(1)),
            "vec0",
        ),
        Guest::new(
            2,
            Kernel::Linux7,
            format!("vec0:transport=fd,fd=3,mac={}", mac(2)),
            "vec0",
        )
        // `ip netns exec NS uml_switch --launch ... -- timeout ...
        // linux.uml ...`: the kernel inherits descriptor 3.
        .wrapper(vec![
            switch.to_string_lossy().into_owned(),
            "--launch".into(),
            bess.to_string_lossy().into_owned(),
            "--fd".into(),
            "3".into(),
            "--".into(),
        ]),
    ];
    ping_mesh(&ns, &guests, &mut sw);
    let out = sw.output();
    assert_eq!(
        out.lines()
            .filter(|l| l.starts_with("New bess connection: "))
            .count(),
        2,
        "{out}"
    );
    for n in 1..=2 {
        let learned = learned(&mac(n));
        assert!(out.contains(&learned), "{learned:?} missing:\n{out}");
    }
    assert!(sw.running(), "switch ended:\n{}", sw.report());
    eprintln!("--- switch output (fd guest) ---\n{out}");
}

/// One segment, both kernel generations, four transports: a 6.1 guest on
/// `eth0=daemon`, a 7.x guest on bess, a 7.x guest through `vde_plug`
/// and a 7.x guest on l2tpv3/UDP all ping each other through one switch.
#[test]
fn mixed_segment_daemon_bess_vde_and_l2tpv3_guests_ping_each_other() {
    require!(
        Requirement::Root,
        Requirement::LinuxUml,
        Requirement::LinuxUml7,
        Requirement::NetNs
    );
    require!(
        Requirement::Program("vde_plug", "vdeplug"),
        Requirement::Program("ping", "iputils-ping")
    );
    if !switch_is_ours(NOT_IN_C) {
        return;
    }
    let _serial = one_at_a_time();
    let dir = new_temp_dir();
    let ns = NetNs::new("vdmx");
    let ctl = dir.path().join("ctl");
    let bess = dir.path().join("sw.bess");
    let srcport = free_udp_port(&ns);
    let args: Vec<OsString> = vec![
        "-unix".into(),
        ctl.clone().into(),
        "--bess".into(),
        bess.into(),
        "--l2tpv3".into(),
        format!(
            "udp=1,src=127.0.0.1,srcport={srcport},dst=127.0.0.1,dstport=0,rx_session=1,\
             tx_session=2,mac={}",
            mac(4)
        )
        .into(),
    ];
    let mut sw =
        NsSwitch::start(&ns, dir.path(), &args, SWITCH_LIFETIME).unwrap_or_else(|e| panic!("{e}"));
    let daemon_arg = printed_argument(&mut sw, "kernels before 6.16 join with ");
    let vde_arg = printed_argument(&mut sw, "through vde_plug with ");
    let bess_arg = printed_argument(&mut sw, "guests join with ");
    let l2tpv3_arg = printed_argument(&mut sw, ": the guest joins with ");
    assert_eq!(daemon_arg, format!("eth0=daemon,,unix,{}", ctl.display()));
    let guests = [
        // eth0=daemon,MAC,unix,CTL
        Guest::new(
            1,
            Kernel::Linux61,
            daemon_arg.replacen(",,", &format!(",{},", mac(1)), 1),
            "eth0",
        ),
        Guest::new(
            2,
            Kernel::Linux7,
            format!("{bess_arg},mac={}", mac(2)),
            "vec0",
        ),
        Guest::new(
            3,
            Kernel::Linux7,
            format!("{vde_arg},mac={}", mac(3)),
            "vec0",
        ),
        Guest::new(4, Kernel::Linux7, l2tpv3_arg, "vec0"),
    ];
    ping_mesh(&ns, &guests, &mut sw);
    let out = sw.output();
    for n in 1..=4 {
        let learned = learned(&mac(n));
        assert!(out.contains(&learned), "{learned:?} missing:\n{out}");
    }
    assert_eq!(
        out.lines().filter(|l| *l == "New connection").count(),
        2,
        "one daemon and one vde control connection:\n{out}"
    );
    assert!(!out.contains("dropped a packet"), "{out}");
    assert!(!out.contains("Bad request"), "{out}");
    assert!(sw.running(), "switch ended:\n{}", sw.report());
    eprintln!("--- switch output (mixed segment) ---\n{out}");
}
