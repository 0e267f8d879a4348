//! `uml_switch --nat` without a kernel (`docs/nat.md`): options that are
//! refused at start-up with a clear message and status 1 (malformed,
//! overlapping the host's networks, privileged forwards without the
//! privilege, a forward whose host port is taken, a missing helper),
//! nothing left behind; and the helper ending with the switch.

// Test code: a failed setup step should abort the test with its message.
#![allow(clippy::expect_used, clippy::unwrap_used)]

use std::ffi::OsString;
use std::path::Path;
use std::process::Command;
use std::time::Duration;

use uml_integration_tests::segment::switch_is_ours;
use uml_integration_tests::switch_client::{
    new_temp_dir, open_to_all, NsSwitch, SwitchBinary, AS_NOBODY,
};
use uml_integration_tests::{pid_alive, run_with_timeout, wait_until, RunOutput};
use uml_integration_tests::{require, NetNs, Requirement};

const NOT_IN_C: &str = "--nat is not an option of the C switch";
const BOUND: Duration = Duration::from_secs(30);

/// Runs the switch with `-unix DIR/ctl` and `args` (stdin /dev/null, so
/// that it would run until killed if it started).
fn run(dir: &Path, args: &[&str], env: &[(&str, &str)]) -> RunOutput {
    let sw = SwitchBinary::under_test();
    let mut all: Vec<OsString> = vec!["-unix".into(), dir.join("ctl").into()];
    all.extend(args.iter().map(OsString::from));
    let mut cmd = sw.command(all);
    cmd.current_dir(dir);
    for (k, v) in env {
        cmd.env(k, v);
    }
    run_with_timeout(&mut cmd, BOUND)
}

/// Asserts a refusal: status 1, `needle` on stderr, the control socket
/// gone, nothing on stdout's `attached` line.
fn refused(out: &RunOutput, dir: &Path, needle: &str) {
    assert_eq!(out.code, Some(1), "{out}");
    let err = out.stderr_str();
    assert!(err.contains(needle), "{needle:?} not in:\n{out}");
    assert!(!out.stdout_str().contains("attached"), "{out}");
    assert!(!dir.join("ctl").exists(), "the control socket was left");
}

#[test]
fn malformed_options_are_refused_before_anything_is_opened() {
    if !switch_is_ours(NOT_IN_C) {
        return;
    }
    let dir = new_temp_dir();
    for (value, needle) in [
        (
            "--nat=net=10.0.2.1/24",
            "--nat 'net=10.0.2.1/24': net: '10.0.2.1/24' is not a network",
        ),
        ("--nat=net=127.0.0.0/8", "reserved network"),
        (
            "--nat=dns=10.0.2.300",
            "dns: '10.0.2.300' is not an IPv4 address",
        ),
        (
            "--nat=host=10.0.3.2",
            "host: 10.0.3.2 is not a host address of the virtual network 10.0.2.0/24",
        ),
        (
            "--nat=hostfwd=tcp::8080",
            "hostfwd: 'tcp::8080' is not [tcp|udp]:",
        ),
        (
            "--nat=hostfwd=tcp::8080-10.9.9.9:80",
            "hostfwd: 10.9.9.9 is not a host address",
        ),
        ("--nat=bogus=1", "unknown option 'bogus=1'"),
        ("--nat=host=10.0.2.20", "host 10.0.2.20 is in the DHCP pool"),
    ] {
        let out = run(dir.path(), &[value], &[]);
        refused(&out, dir.path(), needle);
    }
    let out = run(dir.path(), &["--nat", "--nat=net=10.9.0.0/16"], &[]);
    refused(&out, dir.path(), "--nat given twice");
}

#[test]
fn a_missing_helper_is_refused() {
    if !switch_is_ours(NOT_IN_C) {
        return;
    }
    let dir = new_temp_dir();
    let out = run(
        dir.path(),
        &["--nat"],
        &[("UML_SWITCH_NAT", "/nonexistent/uml_switch_nat")],
    );
    refused(
        &out,
        dir.path(),
        "--nat: the NAT helper '/nonexistent/uml_switch_nat' cannot be run: No such file or directory",
    );
}

/// In a namespace of its own, so that the host's interfaces and ports
/// are the test's.
#[test]
fn host_conflicts_are_refused() {
    require!(Requirement::Root, Requirement::NetNs);
    require!(Requirement::Program("setpriv", "util-linux"));
    if !switch_is_ours(NOT_IN_C) {
        return;
    }
    let ns = NetNs::new("natref");
    for args in [
        &[
            "link", "add", "natr0", "type", "veth", "peer", "name", "natr1",
        ][..],
        &["addr", "add", "10.0.2.100/24", "dev", "natr0"],
        &["addr", "add", "10.88.0.1/24", "dev", "natr1"],
        &["link", "set", "natr0", "up"],
        &["link", "set", "natr1", "up"],
    ] {
        let out = ns.ip(args);
        assert!(out.success(), "ip {args:?}: {out}");
    }
    let dir = new_temp_dir();
    open_to_all(dir.path());
    let sw = SwitchBinary::under_test();
    let in_ns = |unprivileged: bool, nat: &str| {
        let mut cmd: Command = ns.exec("timeout");
        cmd.args(["-k", "5", "30"]);
        if unprivileged {
            cmd.args(AS_NOBODY);
        }
        cmd.arg(&sw.path)
            .arg("-unix")
            .arg(dir.path().join("ctl"))
            .arg(nat)
            .current_dir(dir.path());
        run_with_timeout(&mut cmd, BOUND)
    };
    // The default network is the host's 10.0.2.100/24's.
    let out = in_ns(false, "--nat");
    refused(
        &out,
        dir.path(),
        "the virtual network 10.0.2.0/24 overlaps 10.0.2.100/24 of the host's interface natr0",
    );
    let out = in_ns(false, "--nat=net=10.88.0.0/16");
    refused(
        &out,
        dir.path(),
        "overlaps 10.88.0.1/24 of the host's interface natr1",
    );
    // Port 80 needs CAP_NET_BIND_SERVICE, which uid 65534 lacks.
    let out = in_ns(true, "--nat=net=10.5.0.0/24,hostfwd=tcp::80-:80");
    refused(
        &out,
        dir.path(),
        "hostfwd=tcp:0.0.0.0:80-10.5.0.15:80: host ports below 1024 \
         (net.ipv4.ip_unprivileged_port_start) need CAP_NET_BIND_SERVICE",
    );
    // A host port that is taken: the helper says so, the switch stops.
    let taken = ns.run_in(|| std::net::TcpListener::bind("127.0.0.1:0").unwrap());
    let port = taken.local_addr().unwrap().port();
    let started = std::time::Instant::now();
    let out = in_ns(
        true,
        &format!("--nat=net=10.5.0.0/24,hostfwd=tcp:127.0.0.1:{port}-:80"),
    );
    refused(&out, dir.path(), "--nat: the NAT helper");
    // Seen at the helper's exit (its end of file), not at the 20 s limit
    // for its start.
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "the helper's failure was seen after {:?}",
        started.elapsed()
    );
    let err = out.stderr_str();
    assert!(
        err.contains(&format!(
            "uml_switch_nat: hostfwd=tcp:127.0.0.1:{port}-10.5.0.15:80: cannot listen on the host"
        )),
        "{out}"
    );
    drop(taken);
}

/// The helper runs as long as the switch, as the switch's user, and ends
/// with it.
#[test]
fn the_helper_ends_with_the_switch() {
    require!(Requirement::Root, Requirement::NetNs);
    require!(Requirement::Program("setpriv", "util-linux"));
    if !switch_is_ours(NOT_IN_C) {
        return;
    }
    let ns = NetNs::new("natend");
    let dir = new_temp_dir();
    open_to_all(dir.path());
    let wrapper = AS_NOBODY;
    let args: Vec<OsString> = vec![
        "-unix".into(),
        dir.path().join("ctl").into(),
        "--nat".into(),
    ];
    let mut sw = NsSwitch::start_wrapped(&ns, dir.path(), &wrapper, &args, BOUND)
        .unwrap_or_else(|e| panic!("{e}"));
    let helper_pids = || -> Vec<u32> {
        ns.pids()
            .into_iter()
            .filter(|p| {
                std::fs::read_to_string(format!("/proc/{p}/comm"))
                    .is_ok_and(|c| c.trim_end() == "uml_switch_nat")
            })
            .collect()
    };
    let pids = helper_pids();
    assert_eq!(pids.len(), 1, "{pids:?}\n{}", sw.report());
    let status = std::fs::read_to_string(format!("/proc/{}/status", pids[0])).unwrap();
    let uid_line = status.lines().find(|l| l.starts_with("Uid:")).unwrap();
    assert!(
        uid_line.split_whitespace().skip(1).all(|u| u == "65534"),
        "{uid_line}"
    );
    let pid = pids[0];
    // SIGTERM to the switch alone (its process group holds the helper
    // too, which dropping `sw` would kill).
    let switch_pid = ns
        .pids()
        .into_iter()
        .find(|p| {
            std::fs::read_to_string(format!("/proc/{p}/comm"))
                .is_ok_and(|c| c.trim_end() == "uml_switch")
        })
        .expect("the switch's pid");
    let _ = nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(switch_pid as i32),
        nix::sys::signal::Signal::SIGTERM,
    );
    let gone = wait_until(Duration::from_secs(10), || !pid_alive(pid));
    assert!(gone, "the helper outlived the switch:\n{}", sw.report());
    drop(sw);
}

/// `hostfwd add`, `hostfwd` and `hostfwd remove` on the management
/// socket: a forward added at run time listens (libslirp accepts on the
/// host side before it reaches the guest), is listed, and stops listening
/// when removed; a taken port and a switch without `--nat` are refused.
#[test]
fn forwards_are_added_and_removed_through_the_management_socket() {
    require!(Requirement::Root, Requirement::NetNs);
    require!(Requirement::Program("setpriv", "util-linux"));
    if !switch_is_ours(NOT_IN_C) {
        return;
    }
    let ns = NetNs::new("natmgmt");
    let dir = new_temp_dir();
    open_to_all(dir.path());
    let mgmt = dir.path().join("mgmt");
    let wrapper = AS_NOBODY;
    let args: Vec<OsString> = vec![
        "-unix".into(),
        dir.path().join("ctl").into(),
        "--mgmt".into(),
        mgmt.clone().into(),
        "--nat=net=10.6.0.0/24".into(),
    ];
    let mut sw = NsSwitch::start_wrapped(&ns, dir.path(), &wrapper, &args, BOUND)
        .unwrap_or_else(|e| panic!("{e}"));
    let ask = |words: &[&str]| {
        let mut all: Vec<OsString> = vec!["--mgmt".into(), mgmt.clone().into()];
        all.extend(words.iter().map(OsString::from));
        run_with_timeout(&mut SwitchBinary::under_test().command(all), BOUND)
    };
    let listening =
        |port: u16| ns.run_in(|| std::net::TcpStream::connect(("127.0.0.1", port)).is_ok());
    let port = ns.run_in(|| {
        std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .unwrap()
            .port()
    });
    assert!(!listening(port));
    let rule = format!("tcp:127.0.0.1:{port}-:8080");
    let out = ask(&["hostfwd", "add", &rule]);
    assert!(out.success(), "{out}\n{}", sw.report());
    assert!(
        out.stdout_str().contains(&format!(
            "host tcp 127.0.0.1:{port} is forwarded to 10.6.0.15:8080"
        )),
        "{out}"
    );
    assert!(listening(port), "the added forward does not listen");
    let out = ask(&["hostfwd"]);
    assert!(out.success(), "{out}");
    assert_eq!(
        out.stdout_str(),
        format!("tcp:127.0.0.1:{port}-10.6.0.15:8080\n")
    );
    // The same again: refused by the switch; a port taken on the host:
    // refused by the helper.
    let out = ask(&["hostfwd", "add", &rule]);
    assert_eq!(out.code, Some(1), "{out}");
    assert!(out.stderr_str().contains("forwarded twice"), "{out}");
    let taken = ns.run_in(|| std::net::TcpListener::bind("127.0.0.1:0").unwrap());
    let taken_port = taken.local_addr().unwrap().port();
    let out = ask(&["hostfwd", "add", &format!("tcp:127.0.0.1:{taken_port}-:22")]);
    assert_eq!(out.code, Some(1), "{out}");
    assert!(
        out.stderr_str().contains("cannot listen on the host"),
        "{out}"
    );
    let out = ask(&["hostfwd", "remove", &format!("tcp:127.0.0.1:{port}")]);
    assert!(out.success(), "{out}");
    assert!(!listening(port), "the removed forward still listens");
    let out = ask(&["hostfwd"]);
    assert_eq!(out.stdout_str(), "", "{out}");
    let out = ask(&["hostfwd", "remove", &format!("tcp:127.0.0.1:{port}")]);
    assert_eq!(out.code, Some(1), "{out}");
    assert!(sw.running(), "{}", sw.report());
    drop(taken);
    drop(sw);

    // A switch without --nat.
    let mgmt2 = dir.path().join("mgmt2");
    let args: Vec<OsString> = vec![
        "-unix".into(),
        dir.path().join("ctl2").into(),
        "--mgmt".into(),
        mgmt2.clone().into(),
    ];
    let _sw = NsSwitch::start(&ns, dir.path(), &args, BOUND).unwrap_or_else(|e| panic!("{e}"));
    let mut all: Vec<OsString> = vec!["--mgmt".into(), mgmt2.into(), "hostfwd".into()];
    all.push("add".into());
    all.push("tcp::8080-:80".into());
    let out = run_with_timeout(&mut SwitchBinary::under_test().command(all), BOUND);
    assert_eq!(out.code, Some(1), "{out}");
    assert!(out.stderr_str().contains("no NAT port"), "{out}");
}

/// A root switch with `--user`: the helper runs as that user from its
/// start (libslirp never runs as root).
#[test]
fn with_user_the_helper_never_runs_as_root() {
    require!(Requirement::Root, Requirement::NetNs);
    if !switch_is_ours(NOT_IN_C) {
        return;
    }
    let ns = NetNs::new("natuser");
    let dir = new_temp_dir();
    open_to_all(dir.path());
    let args: Vec<OsString> = vec![
        "-unix".into(),
        dir.path().join("ctl").into(),
        "--user".into(),
        "65534:65534".into(),
        "--nat".into(),
    ];
    let mut sw = NsSwitch::start(&ns, dir.path(), &args, BOUND).unwrap_or_else(|e| panic!("{e}"));
    let helper = ns.pids().into_iter().find(|p| {
        std::fs::read_to_string(format!("/proc/{p}/comm"))
            .is_ok_and(|c| c.trim_end() == "uml_switch_nat")
    });
    let pid = helper.unwrap_or_else(|| panic!("no helper\n{}", sw.report()));
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    for key in ["Uid:", "Gid:"] {
        let line = status.lines().find(|l| l.starts_with(key)).unwrap();
        assert!(
            line.split_whitespace().skip(1).all(|u| u == "65534"),
            "{line}"
        );
    }
    let groups = status.lines().find(|l| l.starts_with("Groups:")).unwrap();
    assert_eq!(groups.trim_end(), "Groups:", "{groups}");
    assert!(sw.running(), "{}", sw.report());
}
