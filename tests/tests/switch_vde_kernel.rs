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
use std::io::Write;
use std::net::UdpSocket;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::Duration;

use uml_integration_tests::switch_client::{NsSwitch, SwitchBinary};
use uml_integration_tests::{find_in_path, require, Kernel, NetNs, Requirement, Uml, UmlConfig};

/// Hard lifetime of the switch process (`timeout -k 5 ...`).
const SWITCH_LIFETIME: Duration = Duration::from_secs(420);
/// Hard lifetime of each UML.
const UML_LIFETIME: Duration = Duration::from_secs(360);
/// Bound for a guest to bring its link up (four guests boot at once on a
/// shared machine).
const LINK_UP: Duration = Duration::from_secs(120);
/// Bound for a guest to finish its pings (each peer may still be booting:
/// `ping -w` gives each one 90 s).
const PINGS: Duration = Duration::from_secs(240);
/// Bound for a UML to exit after it was halted.
const UML_EXIT: Duration = Duration::from_secs(30);
/// Bound for the switch to print what it prints at start-up.
const SWITCH_REPORT: Duration = Duration::from_secs(10);

/// One test of this file at a time: each boots several kernels.
static ONE_AT_A_TIME: Mutex<()> = Mutex::new(());

/// Returns `program`'s path, or from the test unless it is installed
/// (fails under `CI=true`, else skips loudly).
macro_rules! require_program {
    ($program:expr, $package:expr) => {
        match find_in_path($program) {
            Some(p) => p,
            None => {
                let reason = format!("`{}` not found (apt-get install {})", $program, $package);
                if std::env::var("CI").as_deref() == Ok("true") {
                    panic!("{reason}; CI must provide it");
                }
                let _ = writeln!(std::io::stderr(), "SKIP: {reason}");
                return;
            }
        }
    };
}

/// Returns from the test when the switch under test is the C reference.
macro_rules! require_ours {
    () => {
        if SwitchBinary::under_test().is_c_reference {
            let _ = writeln!(
                std::io::stderr(),
                "SKIP: the C switch serves neither vde_plug nor vector guests"
            );
            return;
        }
    };
}

/// Guest MACs `fe:fd:0a:00:00:0N` (IP `10.0.0.N`).
fn mac(n: u8) -> String {
    format!("fe:fd:0a:00:00:{n:02x}")
}

/// A guest to boot: its number (address 10.0.0.N), kernel, network
/// argument and device.
struct Guest {
    n: u8,
    kernel: Kernel,
    net: String,
    dev: &'static str,
    /// Put in front of the kernel (`UmlConfig::wrapper`).
    wrapper: Vec<String>,
}

/// Boots `g` in `ns`: brings its device up, pings every address of
/// `peers` (each bounded by `ping -w`), prints the results on its console
/// and idles until halted. `vde_dir` goes first in the kernel's `PATH`
/// (where it looks for `vde_plug`).
fn boot(ns: &NetNs, g: &Guest, peers: &[u8], vde_dir: Option<&Path>) -> Uml {
    let mut cfg = UmlConfig::with_kernel(&format!("vd{}", g.n), g.kernel);
    cfg.netns = Some(ns.name().to_string());
    cfg.lifetime = UML_LIFETIME;
    cfg.mem = "96M".to_string();
    cfg.extra_args.push(g.net.clone());
    cfg.path_prepend = vde_dir.map(Path::to_path_buf);
    cfg.wrapper = g.wrapper.clone();
    let pings: String = peers
        .iter()
        .map(|p| {
            format!(
                "ping -c 2 -i 0.3 -w 90 10.0.0.{p} >/dev/null; echo \"TEST: ping 10.0.0.{p} rc=$?\"\n"
            )
        })
        .collect();
    let dev = g.dev;
    cfg.init_script = format!(
        "ip addr add 10.0.0.{n}/24 dev {dev} && ip link set {dev} up\n\
         echo \"TEST: link up rc=$?\"\n\
         {pings}\
         echo \"TEST: pings done\"\n\
         while :; do sleep 3600; done\n",
        n = g.n
    );
    Uml::boot(cfg).unwrap_or_else(|e| panic!("boot guest {}: {e}", g.n))
}

/// The consoles of `umls`, for failure messages.
fn consoles(umls: &[Uml]) -> String {
    umls.iter()
        .map(|u| format!("--- console of {} ---\n{}\n", u.umid(), u.console()))
        .collect()
}

/// Waits (bounded) for `marker` on guest `i`'s console; panics with every
/// console and the switch's output if it does not come.
fn wait_marker(umls: &mut [Uml], i: usize, marker: &str, bound: Duration, sw: &mut NsSwitch) {
    if !umls[i].wait_console(marker, bound) {
        panic!(
            "{}: {marker:?} not printed within {bound:?}\n{}{}",
            umls[i].umid(),
            consoles(umls),
            sw.report()
        );
    }
}

/// Asserts that guest `i` reported `rc=0` for its link and each ping.
fn assert_all_ok(umls: &[Uml], i: usize, peers: &[u8], sw: &mut NsSwitch) {
    let console = umls[i].console();
    let mut steps = vec!["TEST: link up rc=0".to_string()];
    steps.extend(peers.iter().map(|p| format!("TEST: ping 10.0.0.{p} rc=0")));
    for step in steps {
        if !console.lines().any(|l| l.trim_end() == step) {
            panic!(
                "{}: no {step:?}\n{}{}",
                umls[i].umid(),
                consoles(umls),
                sw.report()
            );
        }
    }
}

/// Boots `guests` (each pinging all the others), waits for every link and
/// every ping, then halts them all.
fn ping_mesh(ns: &NetNs, guests: &[Guest], vde_dir: &Path, sw: &mut NsSwitch) {
    let all: Vec<u8> = guests.iter().map(|g| g.n).collect();
    let mut umls: Vec<Uml> = Vec::new();
    for g in guests {
        let peers: Vec<u8> = all.iter().copied().filter(|&p| p != g.n).collect();
        umls.push(boot(ns, g, &peers, Some(vde_dir)));
    }
    for i in 0..umls.len() {
        wait_marker(&mut umls, i, "TEST: link up rc=", LINK_UP, sw);
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
    assert!(
        sw.wait_output(SWITCH_REPORT, |o| o.contains(marker)),
        "{}",
        sw.report()
    );
    sw.output()
        .lines()
        .find_map(|l| l.split(marker).nth(1))
        .unwrap()
        .to_string()
}

/// A UDP port of 127.0.0.1 that is free in `ns`.
fn free_udp_port(ns: &NetNs) -> u16 {
    let path = format!("/run/netns/{}", ns.name());
    std::thread::scope(|s| {
        s.spawn(|| {
            let file = std::fs::File::open(&path).unwrap_or_else(|e| panic!("{path}: {e}"));
            nix::sched::setns(&file, nix::sched::CloneFlags::CLONE_NEWNET)
                .unwrap_or_else(|e| panic!("setns {path}: {e}"));
            UdpSocket::bind("127.0.0.1:0")
                .and_then(|s| s.local_addr())
                .map(|a| a.port())
                .expect("a free UDP port")
        })
        .join()
        .expect("namespace thread")
    })
}

fn temp_dir() -> tempfile::TempDir {
    tempfile::Builder::new()
        .prefix("umlvd-")
        .tempdir()
        .expect("tempdir")
}

/// The directory `vde_plug` is in.
fn dir_of(program: &Path) -> PathBuf {
    program.parent().unwrap().to_path_buf()
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
    let vde_plug = require_program!("vde_plug", "vdeplug");
    require_program!("ping", "iputils-ping");
    require_ours!();
    let _serial = ONE_AT_A_TIME.lock().unwrap_or_else(|p| p.into_inner());
    let dir = temp_dir();
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
        .map(|n| Guest {
            n,
            kernel: Kernel::Linux7,
            net: format!("{arg},mac={}", mac(n)),
            dev: "vec0",
            wrapper: Vec::new(),
        })
        .collect();
    ping_mesh(&ns, &guests, &dir_of(&vde_plug), &mut sw);
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
        let learned = format!(" Addr: {} New port ", mac(n));
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
    let vde_plug = require_program!("vde_plug", "vdeplug");
    require_program!("ping", "iputils-ping");
    require_ours!();
    let _serial = ONE_AT_A_TIME.lock().unwrap_or_else(|p| p.into_inner());
    let dir = temp_dir();
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
        Guest {
            n: 1,
            kernel: Kernel::Linux7,
            net: format!("{bess_arg},mac={}", mac(1)),
            dev: "vec0",
            wrapper: Vec::new(),
        },
        Guest {
            n: 2,
            kernel: Kernel::Linux7,
            net: format!("vec0:transport=fd,fd=3,mac={}", mac(2)),
            dev: "vec0",
            // `ip netns exec NS uml_switch --launch ... -- timeout ...
            // linux.uml ...`: the kernel inherits descriptor 3.
            wrapper: vec![
                switch.to_string_lossy().into_owned(),
                "--launch".into(),
                bess.to_string_lossy().into_owned(),
                "--fd".into(),
                "3".into(),
                "--".into(),
            ],
        },
    ];
    ping_mesh(&ns, &guests, &dir_of(&vde_plug), &mut sw);
    let out = sw.output();
    assert_eq!(
        out.lines()
            .filter(|l| l.starts_with("New bess connection: "))
            .count(),
        2,
        "{out}"
    );
    for n in 1..=2 {
        let learned = format!(" Addr: {} New port ", mac(n));
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
    let vde_plug = require_program!("vde_plug", "vdeplug");
    require_program!("ping", "iputils-ping");
    require_ours!();
    let _serial = ONE_AT_A_TIME.lock().unwrap_or_else(|p| p.into_inner());
    let dir = temp_dir();
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
        Guest {
            n: 1,
            kernel: Kernel::Linux61,
            // eth0=daemon,MAC,unix,CTL
            net: daemon_arg.replacen(",,", &format!(",{},", mac(1)), 1),
            dev: "eth0",
            wrapper: Vec::new(),
        },
        Guest {
            n: 2,
            kernel: Kernel::Linux7,
            net: format!("{bess_arg},mac={}", mac(2)),
            dev: "vec0",
            wrapper: Vec::new(),
        },
        Guest {
            n: 3,
            kernel: Kernel::Linux7,
            net: format!("{vde_arg},mac={}", mac(3)),
            dev: "vec0",
            wrapper: Vec::new(),
        },
        Guest {
            n: 4,
            kernel: Kernel::Linux7,
            net: l2tpv3_arg,
            dev: "vec0",
            wrapper: Vec::new(),
        },
    ];
    ping_mesh(&ns, &guests, &dir_of(&vde_plug), &mut sw);
    let out = sw.output();
    for n in 1..=4 {
        let learned = format!(" Addr: {} New port ", mac(n));
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
