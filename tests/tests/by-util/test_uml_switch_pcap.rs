//! `uml_switch --pcap-port` and `port add pcap` against fake guests
//! (`docs/pcap-port.md`): a veth pair in a namespace the test creates;
//! frames sent on the far end `va` (an `AF_PACKET` socket, as from a host
//! on that wire) are captured by the helper `uml_switch_pcap` on `vb` and
//! reach a bess client when they pass the BPF filter, never when they do
//! not; frames the clients send are never written to the interface; the
//! helper runs as nobody without capabilities and ends with its port (and
//! the port with its helper, when the interface goes); a bad interface,
//! filter or helper is refused at start and answered `error:` on the
//! management socket without affecting anything else.
//!
//! Everything runs in namespaces the tests create; every wait is bounded.

// Test code: a failed setup step should abort the test with its message.
#![allow(clippy::expect_used, clippy::unwrap_used)]

use std::ffi::{OsStr, OsString};
use std::path::Path;
use std::time::Duration;

use uml_integration_tests::pcap_port::{helper_env, helper_pid, udp_frame, veth_namespace, Wire};
use uml_integration_tests::switch_client::{
    frame, mac, marker_frame, marker_id, new_marker_id, new_temp_dir, BessClient, NsSwitch,
    SwitchBinary, BROADCAST, WAIT,
};
use uml_integration_tests::{require, run_with_timeout, wait_until, NetNs, Requirement};

/// Lifetime of a switch in a namespace.
const LIFETIME: Duration = Duration::from_secs(120);
/// How long the wire is watched for frames that must not come (after the
/// switch counted them as discarded).
const QUIET: Duration = Duration::from_millis(300);
/// The filter: UDP to port 5001, and the tests' marker frames.
const FILTER: &str = "udp dst port 5001 or ether proto 0x88b5";
const GUEST_IP: [u8; 4] = [10, 0, 0, 1];
const WIRE_IP: [u8; 4] = [10, 0, 0, 99];

/// Returns from the test when the switch under test is the C reference.
macro_rules! require_ours {
    () => {
        if !uml_integration_tests::segment::switch_is_ours(
            "--pcap-port is not an option of the C switch",
        ) {
            return;
        }
    };
}

/// Starts the switch in `ns` with `args` and the workspace's helper.
fn start(ns: &NetNs, dir: &Path, args: &[OsString]) -> NsSwitch {
    let (key, helper) = helper_env();
    NsSwitch::start_with_env(ns, dir, args, LIFETIME, &[(key, helper.as_os_str())])
        .unwrap_or_else(|e| panic!("{e}"))
}

/// [`start`], without the seccomp filter (`UML_UTILITIES_NO_SECCOMP=1`):
/// only such a switch can start a helper at run time.
fn start_unconfined(ns: &NetNs, dir: &Path, args: &[OsString]) -> NsSwitch {
    let (key, helper) = helper_env();
    let env = [
        (key, helper.as_os_str()),
        ("UML_UTILITIES_NO_SECCOMP", std::ffi::OsStr::new("1")),
    ];
    NsSwitch::start_with_env(ns, dir, args, LIFETIME, &env).unwrap_or_else(|e| panic!("{e}"))
}

/// `uml_switch --mgmt SOCK WORDS...`: (status, stdout, stderr).
fn mgmt(sock: &Path, words: &[&str]) -> (i32, String, String) {
    let mut cmd = SwitchBinary::under_test().command(["--mgmt"]);
    cmd.arg(sock).args(words);
    let out = run_with_timeout(&mut cmd, WAIT);
    (
        out.code.unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// The row of port `label` in `ports` (split on blanks).
fn port_row(sock: &Path, label: u32) -> Vec<String> {
    let (status, out, err) = mgmt(sock, &["ports"]);
    assert_eq!(status, 0, "{err}");
    out.lines()
        .find(|l| l.split_whitespace().next() == Some(&label.to_string()))
        .unwrap_or_else(|| panic!("no port {label} in:\n{out}"))
        .split_whitespace()
        .map(str::to_string)
        .collect()
}

/// The label of the pcap port named in `line` (`pcap port N on ...`).
fn label_of(line: &str) -> u32 {
    let at = line.find("pcap port ").unwrap_or_else(|| panic!("{line}")) + "pcap port ".len();
    line[at..].split(' ').next().unwrap().parse().unwrap()
}

/// Frames the bess client receives before marker `id`.
fn until_marker(b: &BessClient, id: u32) -> Vec<Vec<u8>> {
    let mut before = Vec::new();
    loop {
        let f = b
            .recv(WAIT)
            .unwrap_or_else(|| panic!("marker {id} never arrived; before: {before:?}"));
        if marker_id(&f) == Some(id) {
            return before;
        }
        before.push(f);
    }
}

/// A frame that passes [`FILTER`], one that does not (UDP to 5002), one
/// that is not UDP at all.
fn frames(tag: &str) -> (Vec<u8>, Vec<u8>, Vec<u8>) {
    let g = mac(1);
    let w = mac(7);
    (
        udp_frame(
            g,
            w,
            WIRE_IP,
            GUEST_IP,
            5001,
            format!("{tag}: to 5001").as_bytes(),
        ),
        udp_frame(
            g,
            w,
            WIRE_IP,
            GUEST_IP,
            5002,
            format!("{tag}: to 5002").as_bytes(),
        ),
        frame(BROADCAST, w, format!("{tag}: not UDP").as_bytes()),
    )
}

/// Frames on the wire from the bess client (source MAC 2): none may be.
fn from_client(got: &[Vec<u8>]) -> Vec<&Vec<u8>> {
    got.iter()
        .filter(|f| f.len() >= 12 && f[6..12] == mac(2))
        .collect()
}

/// Frames captured on the interface that pass the filter reach a bess
/// client, the others do not; what the client sends (flooded, or to the
/// MAC learned on the pcap port) is counted for the pcap port and never
/// appears on the interface.
#[test]
fn pcap_port_delivers_filtered_frames_and_writes_nothing() {
    require!(Requirement::Root, Requirement::NetNs);
    require_ours!();
    let ns = veth_namespace("pcapf");
    let dir = new_temp_dir();
    let bess_path = dir.path().join("sw.bess");
    let sock = dir.path().join("mgmt");
    let args: Vec<OsString> = vec![
        "-unix".into(),
        dir.path().join("ctl").into(),
        "--bess".into(),
        bess_path.clone().into(),
        "--mgmt".into(),
        sock.clone().into(),
        "--pcap-port".into(),
        format!("vb,filter={FILTER}").into(),
    ];
    let mut sw = start(&ns, dir.path(), &args);
    let out = sw.output();
    let line = out
        .lines()
        .find(|l| l.starts_with("pcap port "))
        .unwrap_or_else(|| panic!("no pcap port line:\n{out}"));
    assert!(
        line.ends_with(&format!(
            " on 'vb' (read-only, filter '{FILTER}'): frames captured there enter the segment"
        )),
        "{line}"
    );
    let label = label_of(line);
    let row = port_row(&sock, label);
    assert_eq!(row[1], "pcap", "{row:?}");
    assert_eq!(
        row[10..].join(" "),
        format!("vb filter={FILTER}"),
        "{row:?}"
    );

    let bess = BessClient::connect(&bess_path).unwrap();
    assert!(
        sw.wait_output(WAIT, |o| o.contains("New bess connection")),
        "{}",
        sw.report()
    );
    let wire = Wire::open(&ns, "va");
    let (pass, udp_other, not_udp) = frames("one");
    wire.send(&udp_other);
    wire.send(&not_udp);
    wire.send(&pass);
    wire.send(&udp_other);
    let id = new_marker_id();
    wire.send(&marker_frame(id));
    assert_eq!(
        until_marker(&bess, id),
        vec![pass.clone()],
        "{}",
        sw.report()
    );

    // The client floods, and sends to the wire's MAC (learned on the pcap
    // port): both go to the pcap port, which discards them.
    bess.send(&frame(BROADCAST, mac(2), b"flooded by the client"));
    bess.send(&frame(mac(7), mac(2), b"to the wire's MAC"));
    assert!(
        wait_until(WAIT, || port_row(&sock, label)[7] == "2"),
        "frames_out of the pcap port: {:?}",
        port_row(&sock, label)
    );
    let got = wire.drain(QUIET);
    assert!(
        from_client(&got).is_empty(),
        "written to the interface: {got:?}"
    );
    let row = port_row(&sock, label);
    // In: the frames that passed (the data frame, the marker).
    assert_eq!((row[5].as_str(), row[7].as_str()), ("2", "2"), "{row:?}");
    assert!(sw.running(), "{}", sw.report());
}

/// `port add pcap` at run time: the port carries filtered frames, its
/// helper runs as nobody with no capabilities and no-new-privileges, and
/// `port remove` ends the helper. A bad filter, a missing interface and
/// a bad option get `error:` answers and leave the switch and its ports
/// as they were.
#[test]
fn pcap_port_added_at_run_time_drops_privileges_and_ends_with_its_port() {
    require!(Requirement::Root, Requirement::NetNs);
    require_ours!();
    let ns = veth_namespace("pcapm");
    let dir = new_temp_dir();
    let bess_path = dir.path().join("sw.bess");
    let sock = dir.path().join("mgmt");
    let args: Vec<OsString> = vec![
        "-unix".into(),
        dir.path().join("ctl").into(),
        "--bess".into(),
        bess_path.clone().into(),
        "--mgmt".into(),
        sock.clone().into(),
    ];
    let mut sw = start_unconfined(&ns, dir.path(), &args);
    let bess = BessClient::connect(&bess_path).unwrap();

    for (words, want) in [
        (
            &["port", "add", "pcap", "vb", "filter=udp", "prt", "5001"][..],
            "--pcap-port 'vb': bad filter 'udp prt 5001': ",
        ),
        (
            &["port", "add", "pcap", "nosuchif0"],
            "--pcap-port 'nosuchif0': cannot capture on 'nosuchif0': ",
        ),
        (
            &["port", "add", "pcap", "vb", "snaplen=9"],
            "the only option is filter=EXPR",
        ),
    ] {
        let (status, _, err) = mgmt(&sock, words);
        assert_eq!(status, 1, "{words:?}: {err}");
        assert!(err.contains(want), "{words:?}: {err}");
    }
    assert!(
        helper_pid(&ns, "vb").is_none(),
        "a refused helper still runs"
    );
    let (_, ports, _) = mgmt(&sock, &["ports"]);
    assert!(!ports.contains(" pcap "), "{ports}");

    let mut words = vec!["port", "add", "pcap", "vb"];
    let filter = format!("filter={FILTER}");
    words.extend(filter.split(' '));
    let (status, out, err) = mgmt(&sock, &words);
    assert_eq!(status, 0, "{err}");
    let label = label_of(&out);
    let pid = helper_pid(&ns, "vb").expect("the helper runs");
    let status_file = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let field = |name: &str| {
        status_file
            .lines()
            .find_map(|l| l.strip_prefix(name))
            .unwrap_or_else(|| panic!("no {name} in {status_file}"))
            .split_whitespace()
            .collect::<Vec<_>>()
    };
    assert_eq!(field("Uid:"), ["65534"; 4], "{status_file}");
    assert_eq!(field("Groups:"), Vec::<&str>::new(), "{status_file}");
    for caps in ["CapEff:", "CapPrm:", "CapInh:", "CapAmb:"] {
        assert_eq!(field(caps), ["0000000000000000"], "{caps} {status_file}");
    }
    assert_eq!(field("NoNewPrivs:"), ["1"], "{status_file}");

    let wire = Wire::open(&ns, "va");
    let (pass, udp_other, _) = frames("two");
    wire.send(&udp_other);
    wire.send(&pass);
    let id = new_marker_id();
    wire.send(&marker_frame(id));
    assert_eq!(until_marker(&bess, id), vec![pass], "{}", sw.report());

    let (status, _, err) = mgmt(&sock, &["port", "remove", &label.to_string()]);
    assert_eq!(status, 0, "{err}");
    assert!(
        wait_until(WAIT, || !Path::new(&format!("/proc/{pid}")).exists()),
        "the helper {pid} did not end (or was not reaped) with its port"
    );
    // Nothing arrives from the interface any more.
    let id = new_marker_id();
    wire.send(&marker_frame(id));
    assert!(bess.drain(QUIET).is_empty());
    assert!(sw.running(), "{}", sw.report());
}

/// A switch confined by seccomp (the default) cannot start a helper
/// program: `port add pcap` gets an `error:` answer that says what to do,
/// no helper runs, and the switch goes on.
#[test]
fn a_confined_switch_refuses_pcap_ports_at_run_time() {
    require!(Requirement::Root, Requirement::NetNs);
    require_ours!();
    let ns = veth_namespace("pcapc");
    let dir = new_temp_dir();
    let sock = dir.path().join("mgmt");
    let args: Vec<OsString> = vec![
        "-unix".into(),
        dir.path().join("ctl").into(),
        "--mgmt".into(),
        sock.clone().into(),
    ];
    let mut sw = start(&ns, dir.path(), &args);
    let (status, _, err) = mgmt(&sock, &["port", "add", "pcap", "vb", "filter=udp"]);
    assert_eq!(status, 1, "{err}");
    assert!(
        err.contains("seccomp confines it") && err.contains("--pcap-port"),
        "{err}"
    );
    assert!(helper_pid(&ns, "vb").is_none(), "a helper runs");
    let (status, ports, err) = mgmt(&sock, &["ports"]);
    assert_eq!(status, 0, "{err}");
    assert!(!ports.contains(" pcap "), "{ports}");
    assert!(sw.running(), "{}", sw.report());
}

/// Refusals at start-up: exit status 1 and one message; no socket left.
#[test]
fn bad_pcap_ports_are_refused_at_start() {
    require!(Requirement::Root, Requirement::NetNs);
    require_ours!();
    let ns = veth_namespace("pcapr");
    let dir = new_temp_dir();
    let ctl = dir.path().join("ctl");
    let prog = SwitchBinary::under_test().argv0();
    let (key, helper) = helper_env();
    let missing = OsStr::new("/nonexistent/uml_switch_pcap");
    for (value, env, want) in [
        (
            "vb,filter=udp prt 1",
            helper.as_os_str(),
            format!("{prog}: --pcap-port 'vb': bad filter 'udp prt 1': "),
        ),
        (
            "nosuchif0",
            helper.as_os_str(),
            format!("{prog}: --pcap-port 'nosuchif0': cannot capture on 'nosuchif0': "),
        ),
        (
            "vb,filter=",
            helper.as_os_str(),
            format!("{prog}: --pcap-port 'vb,filter=': filter= needs an expression"),
        ),
        (
            "vb",
            missing,
            format!(
                "{prog}: --pcap-port 'vb': cannot run the capture helper \
                 '/nonexistent/uml_switch_pcap': No such file or directory"
            ),
        ),
    ] {
        let mut cmd = ns.exec(&prog);
        cmd.env(key, env)
            .arg("-unix")
            .arg(&ctl)
            .arg("--bess")
            .arg(dir.path().join("b"))
            .arg("--pcap-port")
            .arg(value);
        let out = run_with_timeout(&mut cmd, Duration::from_secs(20));
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.code, Some(1), "{value}: {err}");
        assert!(err.starts_with(&want), "{value}: {err}\nwant: {want}");
        assert_eq!(err.lines().count(), 1, "{value}: {err}");
        assert!(!ctl.exists() && !dir.path().join("b").exists(), "{value}");
        assert!(helper_pid(&ns, "").is_none(), "{value}: a helper is left");
    }
}

/// When the interface goes away the helper's capture fails and it exits;
/// the switch removes the port (one line), reaps the helper and goes on.
#[test]
fn pcap_port_goes_when_its_interface_goes() {
    require!(Requirement::Root, Requirement::NetNs);
    require_ours!();
    let ns = veth_namespace("pcapg");
    let dir = new_temp_dir();
    let sock = dir.path().join("mgmt");
    let args: Vec<OsString> = vec![
        "-unix".into(),
        dir.path().join("ctl").into(),
        "--mgmt".into(),
        sock.clone().into(),
        "--pcap-port".into(),
        "vb".into(),
    ];
    let mut sw = start(&ns, dir.path(), &args);
    let out = sw.output();
    let line = out
        .lines()
        .find(|l| l.starts_with("pcap port "))
        .unwrap_or_else(|| panic!("no pcap port line:\n{out}"));
    assert!(line.contains("(read-only, no filter)"), "{line}");
    let label = label_of(line);
    let pid = helper_pid(&ns, "vb").expect("the helper runs");
    let gone = ns.ip(&["link", "del", "va"]);
    assert!(gone.success(), "{gone}");
    let removed = format!("pcap port {label} on 'vb': the capture helper ended; port removed");
    assert!(
        sw.wait_output(WAIT, |o| o.contains(&removed)),
        "{}",
        sw.report()
    );
    assert!(
        wait_until(WAIT, || !Path::new(&format!("/proc/{pid}")).exists()),
        "the helper {pid} was not reaped"
    );
    let (status, ports, err) = mgmt(&sock, &["ports"]);
    assert_eq!(status, 0, "{err}");
    assert!(!ports.contains(" pcap "), "{ports}");
    assert_eq!(sw.output().matches(&removed).count(), 1, "{}", sw.report());
    assert!(sw.running(), "{}", sw.report());
}
