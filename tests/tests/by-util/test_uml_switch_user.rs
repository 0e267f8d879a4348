//! `uml_switch --user USER[:GROUP]` (`docs/switch.md`, "Running as a
//! user"), started as root:
//!
//! * with unix-socket ports only (daemon, bess, mgmt) and `--user nobody`:
//!   `/proc/PID/status` shows nobody's uid and gid (all four), no
//!   supplementary groups, no capability in any set, NoNewPrivs 1; two
//!   fake daemon ports exchange frames; `port add raw` on the management
//!   socket answers an error naming CAP_NET_RAW; SIGTERM removes every
//!   socket file;
//! * with a gre port and a numeric `UID:GID`: only CAP_NET_RAW is left
//!   (permitted, effective, bounding), and it serves `port add raw`;
//! * refusals at set-up (exit status 1, the message, no socket left): an
//!   unknown user or group, root, a socket directory the user could not
//!   remove the socket from, and a switch that cannot change its bounding
//!   set (started without CAP_SETPCAP);
//! * vdeplug4's `vde_plug` run as nobody gets a port (its data socket
//!   file made by the switch as nobody), one run as root is refused with
//!   `Permission denied` (the switch may not write to root's socket), and
//!   SIGTERM removes every file;
//! * two 6.1 guests on the daemon transport ping each other through a
//!   switch running as nobody.

// Test code: a failed setup step should abort the test with its message.
#![allow(clippy::expect_used, clippy::unwrap_used)]
#![forbid(unsafe_code)]

use std::ffi::OsString;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

use nix::sys::signal::Signal;
use uml_integration_tests::segment::{
    self, count_lines, expect_power_off, guest_mac as mac, halt, switch_is_ours, Guest, LINK_UP,
};
use uml_integration_tests::switch_client::{
    frame, new_temp_dir, FakePort, NsSwitch, RunningSwitch, Stream, SwitchBinary, SwitchMode,
    Version,
};
use uml_integration_tests::uml_common::sys::caps::{mask, ProcStatus, CAP_NET_RAW};
use uml_integration_tests::{
    find_in_path, require, run_with_timeout, wait_until, Kernel, NetNs, Requirement, Uml,
    IDLE_SCRIPT,
};

/// nobody / nogroup on Debian.
const NOBODY: u32 = 65534;
/// Bound of every poll and client run.
const WAIT: Duration = Duration::from_secs(10);

fn status_of(pid: u32) -> ProcStatus {
    let text = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    ProcStatus::parse(&text).unwrap_or_else(|| panic!("bad status:\n{text}"))
}

/// The expected status of a switch that became `uid`:`gid` keeping `caps`.
fn dropped(uid: u32, gid: u32, caps: u64) -> ProcStatus {
    ProcStatus {
        uid: [uid; 4],
        gid: [gid; 4],
        groups: Vec::new(),
        inheritable: 0,
        permitted: caps,
        effective: caps,
        bounding: caps,
        ambient: 0,
        no_new_privs: true,
    }
}

/// A temporary directory owned by `uid` (mode 0700), so that a switch
/// running as `uid` can remove its sockets there.
fn dir_for(uid: u32) -> tempfile::TempDir {
    let dir = new_temp_dir();
    std::os::unix::fs::chown(dir.path(), Some(uid), Some(uid)).unwrap();
    dir
}

fn os(args: &[&str]) -> Vec<OsString> {
    args.iter().map(OsString::from).collect()
}

/// `uml_switch --mgmt PATH WORDS...` (the client).
fn mgmt(path: &Path, words: &[&str]) -> (Option<i32>, String) {
    let mut args = vec![OsString::from("--mgmt"), path.into()];
    args.extend(words.iter().map(OsString::from));
    run_switch(&[], &args)
}

#[test]
fn unix_ports_as_nobody_no_capabilities_frames_flow_and_sockets_removed() {
    require!(Requirement::Root);
    if !switch_is_ours("--user is new in the rewrite") {
        return;
    }
    let dir = dir_for(NOBODY);
    let bess = dir.path().join("bess");
    let mgmt_path = dir.path().join("mgmt");
    let extra = [
        OsString::from("--bess"),
        bess.clone().into(),
        OsString::from("--mgmt"),
        mgmt_path.clone().into(),
        OsString::from("--user"),
        OsString::from("nobody"),
    ];
    let mut sw = RunningSwitch::start_in_with_args(dir, SwitchMode::default(), &extra)
        .unwrap_or_else(|e| panic!("{e}"));
    // The `attached` line is printed after the drop.
    assert_eq!(status_of(sw.pid()), dropped(NOBODY, NOBODY, 0));

    // The sockets belong to nobody now; root's clients still get in.
    for path in [sw.ctl().to_path_buf(), bess.clone(), mgmt_path.clone()] {
        use std::os::unix::fs::MetadataExt;
        let meta = std::fs::symlink_metadata(&path).unwrap();
        assert_eq!(meta.uid(), NOBODY, "{}", path.display());
    }
    let a = FakePort::register(sw.ctl(), Version::V3).unwrap();
    let b = FakePort::register(sw.ctl(), Version::V3).unwrap();
    let f = frame([0xff; 6], [0xfe, 0xfd, 0, 0, 0, 1], b"from a as nobody");
    a.send(&f);
    assert_eq!(b.recv(WAIT), Some(f.clone()), "{}", sw.output_report());
    let back = frame([0xfe, 0xfd, 0, 0, 0, 1], [0xfe, 0xfd, 0, 0, 0, 2], b"reply");
    b.send(&back);
    assert_eq!(a.recv(WAIT), Some(back), "{}", sw.output_report());

    // The management socket works; a port that needs CAP_NET_RAW is
    // refused with the reason.
    let (code, text) = mgmt(&mgmt_path, &["ports"]);
    assert_eq!(code, Some(0), "{text}");
    let (code, text) = mgmt(&mgmt_path, &["port", "add", "raw", "lo"]);
    assert_eq!(code, Some(1), "{text}");
    assert!(
        text.contains(
            "this port needs CAP_NET_RAW, which the switch gave up when it became 'nobody'"
        ),
        "{text}"
    );
    assert!(sw.is_running(), "{}", sw.output_report());

    // SIGTERM: the switch (as nobody) removes every socket file.
    sw.signal(Signal::SIGTERM);
    assert!(sw.wait_exit(WAIT).is_some(), "{}", sw.output_report());
    for path in [sw.ctl().to_path_buf(), bess, mgmt_path] {
        assert!(
            !path.exists(),
            "{} left behind\n{}",
            path.display(),
            sw.output_report()
        );
    }
    assert!(
        !sw.stderr().contains("Couldn't remove"),
        "{}",
        sw.output_report()
    );
}

#[test]
fn a_gre_port_keeps_cap_net_raw_only_and_a_numeric_uid_gid() {
    require!(Requirement::Root, Requirement::NetNs);
    if !switch_is_ours("--user is new in the rewrite") {
        return;
    }
    let ns = NetNs::new("swuser-raw");
    for args in [
        &["link", "add", "vu0", "type", "veth", "peer", "name", "vu1"][..],
        &["link", "set", "vu0", "up"],
        &["link", "set", "vu1", "up"],
        &["link", "add", "vu2", "type", "veth", "peer", "name", "vu3"],
        &["link", "set", "vu2", "up"],
        &["link", "set", "vu3", "up"],
        &["addr", "add", "10.9.0.1/24", "dev", "vu1"],
    ] {
        let out = ns.ip(args);
        assert!(out.success(), "{out}");
    }
    let dir = dir_for(4242);
    std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    let ctl = dir.path().join("ctl");
    let mgmt_path = dir.path().join("mgmt");
    let args = [
        OsString::from("-unix"),
        ctl.clone().into(),
        OsString::from("--gre"),
        OsString::from("src=10.9.0.2,dst=10.9.0.1"),
        OsString::from("--mgmt"),
        mgmt_path.clone().into(),
        OsString::from("--user"),
        OsString::from("4242:4243"),
    ];
    let mut sw = NsSwitch::start(&ns, dir.path(), &args, Duration::from_secs(60))
        .unwrap_or_else(|e| panic!("{e}"));
    let pid = ns
        .pids()
        .into_iter()
        .find(|p| {
            std::fs::read_to_string(format!("/proc/{p}/comm"))
                .is_ok_and(|c| c.trim() == "uml_switch")
        })
        .unwrap_or_else(|| panic!("no uml_switch in the namespace\n{}", sw.report()));
    assert_eq!(status_of(pid), dropped(4242, 4243, mask(&[CAP_NET_RAW])));
    // The kept capability serves raw ports added at run time.
    let (code, text) = mgmt(&mgmt_path, &["port", "add", "raw", "vu2"]);
    assert_eq!(code, Some(0), "{text}\n{}", sw.report());
    assert!(sw.running(), "{}", sw.report());
}

/// Runs the switch with `args` (in `dir`) to its end: exit status and
/// output.
fn run_switch(wrapper: &[&str], args: &[OsString]) -> (Option<i32>, String) {
    let bin = SwitchBinary::under_test();
    let mut cmd = match wrapper.split_first() {
        Some((first, rest)) => {
            let mut c = Command::new(first);
            c.args(rest).arg(&bin.path);
            c
        }
        None => Command::new(&bin.path),
    };
    cmd.args(args).stdin(Stdio::null());
    let out = run_with_timeout(&mut cmd, WAIT);
    (
        out.code,
        format!("{}{}", out.stdout_str(), out.stderr_str()),
    )
}

#[test]
fn refusals_are_set_up_errors_and_leave_no_socket() {
    require!(Requirement::Root);
    if !switch_is_ours("--user is new in the rewrite") {
        return;
    }
    let bin = SwitchBinary::under_test().argv0();
    let open = dir_for(NOBODY);
    let ctl = open.path().join("ctl");
    let closed = new_temp_dir(); // root's, mode 0755: nobody cannot write
    std::fs::set_permissions(closed.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    let closed_ctl = closed.path().join("ctl");
    let cases: Vec<(Vec<&str>, &Path, String)> = vec![
        (
            vec![],
            &ctl,
            "--user 'no-such-user-x': no user 'no-such-user-x' in /etc/passwd".into(),
        ),
        (
            vec![],
            &ctl,
            "--user 'nobody:no-such-group-x': no group 'no-such-group-x' in /etc/group".into(),
        ),
        (vec![], &ctl, "--user 'root': refusing to run as root (uid 0)".into()),
        (
            vec![],
            &closed_ctl,
            format!(
                "--user 'nobody': uid {NOBODY} could not remove '{}' at exit: it may not write to '{}'",
                closed_ctl.display(),
                closed.path().display()
            ),
        ),
    ];
    let users = ["no-such-user-x", "nobody:no-such-group-x", "root", "nobody"];
    for ((wrapper, path, message), user) in cases.iter().zip(users) {
        let args = [
            OsString::from("-unix"),
            path.into(),
            OsString::from("--user"),
            OsString::from(user),
        ];
        let (code, text) = run_switch(wrapper, &args);
        assert_eq!(code, Some(1), "{user}: {text}");
        assert!(
            text.contains(&format!("{bin}: {message}")),
            "{user}: expected {message:?} in\n{text}"
        );
        assert!(!text.contains("attached"), "{text}");
        assert!(!path.exists(), "{} left behind", path.display());
    }

    // A bounding set that cannot be changed (no CAP_SETPCAP): the drop
    // fails after the sockets were bound; they are removed again.
    let Some(setpriv) = find_in_path("setpriv") else {
        panic!("setpriv (util-linux) is needed");
    };
    let setpriv = setpriv.display().to_string();
    let bess = open.path().join("bess");
    let args = [
        OsString::from("-unix"),
        ctl.clone().into(),
        OsString::from("--bess"),
        bess.clone().into(),
        OsString::from("--user"),
        OsString::from("nobody"),
    ];
    let (code, text) = run_switch(&[&setpriv, "--bounding-set", "-setpcap"], &args);
    assert_eq!(code, Some(1), "{text}");
    assert!(
        text.contains(&format!(
            "{bin}: --user 'nobody': changing the user needs root (CAP_SETPCAP is not permitted)"
        )),
        "{text}"
    );
    assert!(!text.contains("attached"), "{text}");
    assert!(
        !ctl.exists() && !bess.exists(),
        "sockets left behind:\n{text}"
    );
}

/// Hard lifetime of the switch in the kernel test.
const SWITCH_LIFETIME: Duration = Duration::from_secs(120);

/// A 6.1 guest on the daemon transport of the switch at `ctl`.
fn boot_on_switch(ns: &NetNs, ctl: &Path, n: u8, then: &str) -> Uml {
    let net = format!("eth0=daemon,{},unix,{}", mac(n), ctl.display());
    let mut cfg = Guest::new(n, Kernel::Linux61, net, "eth0")
        .then(then)
        .config(ns, "swuser");
    cfg.lifetime = Duration::from_secs(90);
    segment::boot(cfg)
}

#[test]
fn two_guests_ping_through_a_switch_running_as_nobody() {
    require!(Requirement::Root, Requirement::LinuxUml, Requirement::NetNs);
    require!(Requirement::Program("ping", "iputils-ping"));
    if !switch_is_ours("--user is new in the rewrite") {
        return;
    }
    let _one = segment::one_at_a_time();
    let dir = dir_for(NOBODY);
    let ns = NetNs::new("swuser-ping");
    let ctl = dir.path().join("sw.ctl");
    let args = os(&["-unix", &ctl.to_string_lossy(), "--user", "nobody"]);
    let mut sw =
        NsSwitch::start(&ns, dir.path(), &args, SWITCH_LIFETIME).unwrap_or_else(|e| panic!("{e}"));
    let pid = ns
        .pids()
        .into_iter()
        .find(|p| {
            std::fs::read_to_string(format!("/proc/{p}/comm"))
                .is_ok_and(|c| c.trim() == "uml_switch")
        })
        .unwrap_or_else(|| panic!("no uml_switch in the namespace\n{}", sw.report()));
    assert_eq!(status_of(pid), dropped(NOBODY, NOBODY, 0));

    let step = Duration::from_secs(30);
    let mut a = boot_on_switch(&ns, &ctl, 1, IDLE_SCRIPT);
    segment::expect_step_ok(&mut a, LINK_UP, step, &mut sw, &[]);
    let mut b = boot_on_switch(
        &ns,
        &ctl,
        2,
        "ping -c 3 -i 0.3 -w 20 10.0.0.1\necho \"TEST: ping rc=$?\"",
    );
    segment::expect_step_ok(&mut b, LINK_UP, step, &mut sw, &[]);
    segment::expect_step_ok(&mut b, "ping", step, &mut sw, &[&a]);
    expect_power_off(&mut b, Duration::from_secs(20));
    halt(&mut a, Duration::from_secs(20));
    assert!(
        sw.wait_output(WAIT, |o| count_lines(o, "Disconnect") >= 2),
        "{}",
        sw.report()
    );
    // Still nobody, and the control socket is removed at SIGTERM.
    assert_eq!(status_of(pid).uid, [NOBODY; 4]);
    let _ = nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid as i32), Signal::SIGTERM);
    assert!(
        wait_until(WAIT, || !ctl.exists()),
        "control socket left behind\n{}",
        sw.report()
    );
}

/// `vde_plug URL` (stdin and stdout pipes, kept open), through `wrapper`.
fn spawn_vde_plug(wrapper: &[String], url: &str) -> std::process::Child {
    let mut cmd = Command::new(&wrapper[0]);
    cmd.args(&wrapper[1..])
        .arg("vde_plug")
        .arg(url)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null());
    cmd.spawn().unwrap()
}

#[test]
fn vde_plug_clients_of_the_switch_user_are_served_and_their_sockets_removed() {
    require!(Requirement::Root);
    require!(Requirement::Program("vde_plug", "vdeplug"));
    if !switch_is_ours("--user is new in the rewrite") {
        return;
    }
    let dir = dir_for(NOBODY);
    let root = dir.path().to_path_buf();
    let url = format!("vde://{}", root.display());
    let extra = [OsString::from("--user"), OsString::from("nobody")];
    let mut sw = RunningSwitch::start_in_with_args(dir, SwitchMode::default(), &extra)
        .unwrap_or_else(|e| panic!("{e}"));
    let sp = find_in_path("setpriv").unwrap().display().to_string();
    let as_nobody = [
        sp,
        format!("--reuid={NOBODY}"),
        format!("--regid={NOBODY}"),
        "--clear-groups".into(),
    ];
    // A client running as the switch's user: a port with its own data
    // socket file next to the control socket, made by the switch (nobody).
    let mut plug = spawn_vde_plug(&as_nobody, &url);
    let served = sw.wait_until(WAIT, |s| {
        !s.lines_starting_with(Stream::Stdout, "New vde port ")
            .is_empty()
    });
    let files = || -> Vec<String> {
        std::fs::read_dir(&root)
            .unwrap()
            .flatten()
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .filter(|n| n.starts_with("ctl"))
            .collect()
    };
    let port_files: Vec<String> = files().into_iter().filter(|n| n != "ctl").collect();
    let _ = plug.kill();
    let _ = plug.wait();
    served.unwrap_or_else(|e| panic!("vde_plug as nobody not served: {e}"));
    assert_eq!(
        port_files.len(),
        1,
        "{port_files:?}\n{}",
        sw.output_report()
    );
    // A client running as root binds its data socket with root's umask
    // (0755): the switch, now nobody, may not connect to it and says so.
    let mut plug = spawn_vde_plug(&["env".into()], &url);
    let refused = sw.wait_until(WAIT, |s| {
        s.count_containing(Stream::Either, "connecting to the client's data socket") > 0
            && s.count_containing(Stream::Either, "Permission denied") > 0
    });
    let _ = plug.kill();
    let _ = plug.wait();
    refused.unwrap_or_else(|e| panic!("no refusal for a root vde_plug: {e}"));
    assert!(sw.is_running(), "{}", sw.output_report());
    sw.signal(Signal::SIGTERM);
    assert!(sw.wait_exit(WAIT).is_some(), "{}", sw.output_report());
    assert_eq!(files(), Vec::<String>::new(), "{}", sw.output_report());
}
