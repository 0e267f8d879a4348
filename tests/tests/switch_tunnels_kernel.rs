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
use std::io::Write;
use std::net::UdpSocket;
use std::path::Path;
use std::sync::Mutex;
use std::time::Duration;

use uml_integration_tests::switch_client::{NsSwitch, SwitchBinary};
use uml_integration_tests::{require, Kernel, NetNs, Requirement, Uml, UmlConfig};

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

/// Idle until the host halts the guest.
const IDLE: &str = "while :; do sleep 3600; done";
/// Guest-side ping of the bess guest, with its result on the console.
const PING_PEER: &str = "ping -c 3 -i 0.3 -w 30 10.0.0.1\necho \"TEST: ping rc=$?\"";

/// One test of this file at a time: each boots four kernels.
static ONE_AT_A_TIME: Mutex<()> = Mutex::new(());

/// Returns from the test when the switch under test is the C reference.
macro_rules! require_ours {
    () => {
        if SwitchBinary::under_test().is_c_reference {
            let _ = writeln!(
                std::io::stderr(),
                "SKIP: --l2tpv3/--gre are not options of the C switch"
            );
            return;
        }
    };
}

/// Guest MACs `fe:fd:0a:00:00:0N` (IP `10.0.0.N`).
fn mac(n: u8) -> String {
    format!("fe:fd:0a:00:00:{n:02x}")
}

/// Runs `f` on a thread that entered the network namespace `ns`.
fn in_ns<T: Send>(ns: &NetNs, f: impl FnOnce() -> T + Send) -> T {
    let path = format!("/run/netns/{}", ns.name());
    std::thread::scope(|s| {
        s.spawn(|| {
            let file = std::fs::File::open(&path).unwrap_or_else(|e| panic!("{path}: {e}"));
            nix::sched::setns(&file, nix::sched::CloneFlags::CLONE_NEWNET)
                .unwrap_or_else(|e| panic!("setns {path}: {e}"));
            f()
        })
        .join()
        .expect("namespace thread")
    })
}

/// A UDP port of 127.0.0.1 that is free in `ns` (bound as port 0 and
/// released; nothing else runs in the namespace to take it).
fn free_udp_port(ns: &NetNs) -> u16 {
    in_ns(ns, || {
        UdpSocket::bind("127.0.0.1:0")
            .and_then(|s| s.local_addr())
            .map(|a| a.port())
            .expect("a free UDP port")
    })
}

/// Boots guest `n` of `kernel` in `ns` with the network argument `net`
/// (device `dev`), address `10.0.0.N/24`, running `then` after bringing
/// the device up.
fn boot(ns: &NetNs, kernel: Kernel, net: &str, dev: &str, n: u8, then: &str) -> Uml {
    let mut cfg = UmlConfig::with_kernel(&format!("tn{n}"), kernel);
    cfg.netns = Some(ns.name().to_string());
    cfg.lifetime = UML_LIFETIME;
    cfg.extra_args.push(net.to_string());
    cfg.init_script = format!(
        "ip addr add 10.0.0.{n}/24 dev {dev} && ip link set {dev} up\n\
         echo \"TEST: link up rc=$?\"\n\
         {then}\n"
    );
    Uml::boot(cfg).unwrap_or_else(|e| panic!("boot guest {n}: {e}"))
}

/// Waits (bounded) for the console line `TEST: <step> rc=` of `uml` and
/// asserts that it reads `rc=0`.
fn expect_step_ok(uml: &mut Uml, step: &str, sw: &mut NsSwitch, others: &[&Uml]) {
    let marker = format!("TEST: {step} rc=");
    let seen = uml.wait_console(&marker, GUEST_STEP);
    let console = uml.console();
    let ok = format!("{marker}0");
    if seen && console.lines().any(|l| l.trim_end() == ok) {
        return;
    }
    let mut report = String::new();
    for o in others {
        report.push_str(&format!(
            "--- console of {} ---\n{}\n",
            o.umid(),
            o.console()
        ));
    }
    panic!(
        "{}: {}\n--- console ---\n{console}\n{report}{}",
        uml.umid(),
        if seen {
            format!("{step} failed")
        } else {
            format!("{marker} never printed")
        },
        sw.report()
    );
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
    let _serial = ONE_AT_A_TIME.lock().unwrap_or_else(|p| p.into_inner());
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
        IDLE,
    );
    expect_step_ok(&mut peer, "link up", &mut sw, &[]);
    let mut guests: Vec<Uml> = tunnels
        .iter()
        .zip(2u8..)
        .map(|(arg, n)| boot(&ns, kernel, arg, "vec0", n, PING_PEER))
        .collect();
    for i in 0..guests.len() {
        let (g, rest) = guests.split_at_mut(i + 1);
        let others: Vec<&Uml> = rest.iter().chain(std::iter::once(&peer)).collect();
        expect_step_ok(&mut g[i], "link up", &mut sw, &others);
        expect_step_ok(&mut g[i], "ping", &mut sw, &others);
    }
    for g in &mut guests {
        assert!(
            g.wait_exit(UML_EXIT),
            "{} did not power off:\n{}",
            g.umid(),
            g.console()
        );
    }
    peer.halt().expect("halt the bess guest");
    assert!(
        peer.wait_exit(UML_EXIT),
        "peer did not halt:\n{}",
        peer.console()
    );
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
    require_ours!();
    tunnel_guests_ping_a_bess_guest(Kernel::Linux7);
}

/// The same with Debian 12's 6.1 guests.
#[test]
fn kernel61_tunnel_guests_ping_a_bess_guest() {
    require!(Requirement::Root, Requirement::LinuxUml, Requirement::NetNs);
    require!(Requirement::Program("ping", "iputils-ping"));
    require_ours!();
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
    require_ours!();
    let _serial = ONE_AT_A_TIME.lock().unwrap_or_else(|p| p.into_inner());
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
        IDLE,
    );
    expect_step_ok(&mut old, "link up", &mut sw, &[]);
    let mut new = boot(&ns, Kernel::Linux7, &arg, "vec0", 2, PING_PEER);
    expect_step_ok(&mut new, "link up", &mut sw, &[&old]);
    expect_step_ok(&mut new, "ping", &mut sw, &[&old]);
    assert!(new.wait_exit(UML_EXIT), "7.x guest did not power off");
    old.halt().expect("halt the 6.1 guest");
    assert!(old.wait_exit(UML_EXIT), "6.1 guest did not halt");
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
