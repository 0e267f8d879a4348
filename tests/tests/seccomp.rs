//! The seccomp confinement of `uml_switch`, `port-helper`, `uml_watchdog`
//! and `uml_net` (`docs/helpers.md` §7), on the built programs:
//!
//! * while each runs, `/proc/PID/status` says `Seccomp: 2` (filter mode)
//!   and `NoNewPrivs: 1`;
//! * each one's hidden self-test (`UML_UTILITIES_SECCOMP_SELF_TEST=exec`:
//!   once confined, attempt `execve("")`) ends by `SIGSYS`, the filter's
//!   verdict for a call not in the list;
//! * the switch, confined, still adds every port kind (raw, tap, gre,
//!   l2tpv3, vxlan) and starts a capture through its management socket;
//! * with the escape hatch `UML_UTILITIES_NO_SECCOMP=1` the same self-test
//!   reports `Seccomp: 0` and that `execve` came back (status 125) — the
//!   proof that the self-test can tell a confined tool from an unconfined
//!   one — except in the setuid `uml_net`, which ignores the hatch.
//!
//! `uml_net`'s `Seccomp: 2` while it works is checked by
//! test_uml_net_privs (the helper held on its reply).
//!
//! The other tests of these tools (test_uml_switch_*, test_helpers_*,
//! test_uml_net*) run with the filters on: a list too tight fails there.
#![allow(clippy::expect_used, clippy::unwrap_used)]

use std::ffi::OsString;
use std::fs;
use std::io::Read;
use std::os::fd::OwnedFd;
use std::os::unix::net::UnixDatagram;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use uml_integration_tests::switch_client::{RunningSwitch, SwitchMode};
use uml_integration_tests::{
    require, run_with_timeout, wait_until, workspace_bin, NetNs, Requirement, RunOutput,
};

const LIMIT: Duration = Duration::from_secs(20);
const SELF_TEST: &str = "UML_UTILITIES_SECCOMP_SELF_TEST";
const NO_SECCOMP: &str = "UML_UTILITIES_NO_SECCOMP";

/// A field of `/proc/PID/status`.
fn status_field(pid: u32, field: &str) -> Option<String> {
    let text = fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    text.lines()
        .find_map(|l| l.strip_prefix(field)?.strip_prefix(':'))
        .map(|v| v.trim().to_string())
}

/// Checks that running process `pid` is confined.
fn assert_confined(tool: &str, pid: u32) {
    // The filter is installed after set-up: poll (bounded) until it is.
    let confined = wait_until(LIMIT, || {
        status_field(pid, "Seccomp").as_deref() == Some("2")
    });
    assert!(
        confined,
        "{tool} (pid {pid}) is not in seccomp filter mode: Seccomp: {:?}",
        status_field(pid, "Seccomp")
    );
    assert_eq!(
        status_field(pid, "NoNewPrivs").as_deref(),
        Some("1"),
        "{tool}"
    );
}

/// The self-test's run: killed by SIGSYS after saying it was confined.
fn assert_killed_by_the_filter(tool: &str, out: &RunOutput) {
    assert!(
        out.stderr_str()
            .contains(&format!("{tool}: seccomp self-test: Seccomp: 2")),
        "{tool}: {out}"
    );
    assert_eq!(
        (out.signal, out.code, out.timed_out),
        (Some(libc::SIGSYS), None, false),
        "{tool}: the forbidden execve did not kill it: {out}"
    );
}

/// The self-test's run with the escape hatch: unconfined, it says so.
fn assert_unconfined(tool: &str, out: &RunOutput) {
    assert!(
        out.stderr_str()
            .contains(&format!("{tool}: seccomp self-test: Seccomp: 0")),
        "{tool}: {out}"
    );
    assert!(
        out.stderr_str().contains("execve was not stopped"),
        "{tool}: {out}"
    );
    assert_eq!(out.code, Some(125), "{tool}: {out}");
}

fn finish(mut child: Child) {
    let _ = child.kill();
    let _ = child.wait();
}

// ---------------------------------------------------------------------------
// uml_switch
// ---------------------------------------------------------------------------

/// The switch of this workspace (the tests may point at Debian's C switch
/// with UML_SWITCH_UNDER_TEST, which has no filter).
fn ours() -> bool {
    uml_integration_tests::segment::switch_is_ours("the C switch installs no seccomp filter")
}

#[test]
fn switch_runs_confined() {
    if !ours() {
        return;
    }
    let mut sw = RunningSwitch::start_with(SwitchMode::default());
    assert_confined("uml_switch", sw.pid());
    assert!(sw.is_running());
}

fn switch_self_test(extra_env: &[(&str, &str)]) -> RunOutput {
    let dir = tempfile::tempdir().unwrap();
    let ctl = dir.path().join("ctl");
    let mut cmd = Command::new(workspace_bin("uml_switch"));
    cmd.arg("-unix").arg(&ctl).env(SELF_TEST, "exec");
    for (k, v) in extra_env {
        cmd.env(k, v);
    }
    run_with_timeout(&mut cmd, LIMIT)
}

#[test]
fn switch_dies_on_a_forbidden_call() {
    let out = switch_self_test(&[]);
    assert!(
        out.stdout_str().contains("attached to unix socket"),
        "{out}"
    );
    assert_killed_by_the_filter("uml_switch", &out);
}

#[test]
fn switch_escape_hatch_leaves_it_unconfined() {
    assert_unconfined("uml_switch", &switch_self_test(&[(NO_SECCOMP, "1")]));
}

#[test]
fn switch_launch_and_mgmt_client_are_not_confined_by_it() {
    // `--launch` must exec its program, so it installs no filter: a
    // missing program is still reported as a shell would (127).
    let dir = tempfile::tempdir().unwrap();
    let bess = dir.path().join("bess");
    let mut sw = RunningSwitch::start_with_args(
        SwitchMode::default(),
        &[OsString::from("--bess"), bess.clone().into()],
    );
    assert_confined("uml_switch", sw.pid());
    let out = run_with_timeout(
        Command::new(workspace_bin("uml_switch"))
            .arg("--launch")
            .arg(&bess)
            .arg("/nonexistent/program"),
        LIMIT,
    );
    assert_eq!(out.code, Some(127), "{out}");
    assert!(sw.is_running());
}

/// `uml_switch --mgmt PATH WORDS...`: status and output.
fn mgmt(path: &std::path::Path, words: &[&str]) -> RunOutput {
    run_with_timeout(
        Command::new(workspace_bin("uml_switch"))
            .arg("--mgmt")
            .arg(path)
            .args(words),
        LIMIT,
    )
}

#[test]
fn switch_adds_every_port_kind_and_a_capture_at_run_time_while_confined() {
    // What the management socket does after set-up opens new sockets,
    // devices and files: every kind it can add must pass the filter.
    require!(
        Requirement::Root,
        Requirement::NetNs,
        Requirement::DevNetTun
    );
    let ns = NetNs::new("seccomp-ports");
    for args in [
        &["link", "add", "sc0", "type", "veth", "peer", "name", "sc1"][..],
        &["link", "set", "sc0", "up"],
        &["link", "set", "sc1", "up"],
        &["addr", "add", "10.9.8.1/24", "dev", "sc1"],
    ] {
        let out = ns.ip(args);
        assert!(out.success(), "{out}");
    }
    let dir = tempfile::tempdir().unwrap();
    let sock = dir.path().join("mgmt");
    let log = fs::File::create(dir.path().join("log")).unwrap();
    let mut child = ns
        .exec(workspace_bin("uml_switch"))
        .arg("-unix")
        .arg(dir.path().join("ctl"))
        .arg("--mgmt")
        .arg(&sock)
        .stdin(Stdio::null())
        .stdout(Stdio::from(log.try_clone().unwrap()))
        .stderr(Stdio::from(log))
        .spawn()
        .unwrap();
    let confined = wait_until(LIMIT, || {
        sock.exists() && status_field(child.id(), "Seccomp").as_deref() == Some("2")
    });
    let report = |what: &str| {
        let log = fs::read_to_string(dir.path().join("log")).unwrap_or_default();
        format!("{what}\n--- switch ---\n{log}")
    };
    if !confined {
        finish(child);
        panic!("{}", report("the switch did not start confined"));
    }
    let capture = dir.path().join("cap.pcap");
    let capture = capture.to_str().unwrap();
    let commands: [&[&str]; 7] = [
        &["port", "add", "raw", "sc0"],
        &["port", "add", "tap", "scap0"],
        &["port", "add", "gre", "src=10.9.8.2,dst=10.9.8.1"],
        &[
            "port",
            "add",
            "l2tpv3",
            "src=10.9.8.2,dst=10.9.8.1,rx_session=1,tx_session=1",
        ],
        &["port", "add", "vxlan", "local=10.9.8.1,remote=10.9.8.2"],
        &["capture", "start", capture],
        &["ports"],
    ];
    for words in commands {
        let out = mgmt(&sock, words);
        let alive = matches!(child.try_wait(), Ok(None));
        if !(out.success() && alive) {
            finish(child);
            panic!("{}", report(&format!("{words:?}: {out}")));
        }
    }
    assert!(std::path::Path::new(capture).exists());
    finish(child);
}

// ---------------------------------------------------------------------------
// uml_watchdog
// ---------------------------------------------------------------------------

/// Starts `uml_watchdog -pid <ours>` with pipes; returns it after its
/// ready byte.
fn start_watchdog(env: &[(&str, &str)]) -> (Child, std::process::ChildStdin) {
    let mut cmd = Command::new(workspace_bin("uml_watchdog"));
    cmd.arg("-pid")
        .arg(std::process::id().to_string())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    for (k, v) in env {
        cmd.env(k, v);
    }
    let mut child = cmd.spawn().unwrap();
    let stdin = child.stdin.take().unwrap();
    (child, stdin)
}

#[test]
fn watchdog_runs_confined() {
    let (mut child, stdin) = start_watchdog(&[]);
    let mut ready = [0u8; 1];
    child.stdout.take().unwrap().read_exact(&mut ready).unwrap();
    assert_confined("uml_watchdog", child.id());
    // End of file: the guest closed the device; a clean exit.
    drop(stdin);
    let ok = wait_until(LIMIT, || matches!(child.try_wait(), Ok(Some(_))));
    assert!(ok, "uml_watchdog did not exit at end of file");
    let status = child.wait().unwrap();
    assert_eq!(status.code(), Some(0), "{status:?}");
}

#[test]
fn watchdog_dies_on_a_forbidden_call_and_the_hatch_works() {
    let run = |env: &[(&str, &str)]| {
        let mut cmd = Command::new(workspace_bin("uml_watchdog"));
        cmd.args(["-mconsole", "/nonexistent/notify"])
            .env(SELF_TEST, "exec");
        for (k, v) in env {
            cmd.env(k, v);
        }
        run_with_timeout(&mut cmd, LIMIT)
    };
    assert_killed_by_the_filter("uml_watchdog", &run(&[]));
    assert_unconfined("uml_watchdog", &run(&[(NO_SECCOMP, "1")]));
}

// ---------------------------------------------------------------------------
// port-helper
// ---------------------------------------------------------------------------

/// Starts `port-helper -uml-socket PATH` on a pty; returns it, the pty's
/// master (its hang-up ends the helper) and the kernel's socket.
fn start_port_helper(
    dir: &std::path::Path,
    env: &[(&str, &str)],
) -> (Child, OwnedFd, UnixDatagram) {
    let path = dir.join("xterm-pipe");
    let kernel = UnixDatagram::bind(&path).unwrap();
    kernel.set_read_timeout(Some(LIMIT)).unwrap();
    let pty = nix::pty::openpty(None, None).unwrap();
    let mut cmd = Command::new(workspace_bin("port-helper"));
    cmd.arg("-uml-socket")
        .arg(&path)
        .stdin(Stdio::from(pty.slave))
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
    for (k, v) in env {
        cmd.env(k, v);
    }
    (cmd.spawn().unwrap(), pty.master, kernel)
}

#[test]
fn port_helper_runs_confined_and_still_passes_the_terminal() {
    let dir = tempfile::tempdir().unwrap();
    let (mut child, master, kernel) = start_port_helper(dir.path(), &[]);
    // The one message, sent after the filter is installed (sendmsg with
    // SCM_RIGHTS is in its list).
    let mut buf = [0u8; 16];
    let n = kernel.recv(&mut buf).unwrap();
    assert_eq!(n, 4);
    assert_confined("port-helper", child.id());
    drop(master);
    let ok = wait_until(LIMIT, || matches!(child.try_wait(), Ok(Some(_))));
    if !ok {
        finish(child);
        panic!("port-helper did not exit after the hang-up");
    }
    assert_eq!(child.wait().unwrap().code(), Some(0));
}

#[test]
fn port_helper_dies_on_a_forbidden_call_and_the_hatch_works() {
    use std::os::unix::process::ExitStatusExt;
    for (env, confined) in [
        (&[(SELF_TEST, "exec")][..], true),
        (&[(SELF_TEST, "exec"), (NO_SECCOMP, "1")][..], false),
    ] {
        let dir = tempfile::tempdir().unwrap();
        let (mut child, master, _kernel) = start_port_helper(dir.path(), env);
        let ok = wait_until(LIMIT, || matches!(child.try_wait(), Ok(Some(_))));
        if !ok {
            finish(child);
            panic!("port-helper's self-test did not end");
        }
        let status = child.wait().unwrap();
        let mut stderr = String::new();
        child
            .stderr
            .take()
            .unwrap()
            .read_to_string(&mut stderr)
            .unwrap();
        let out = RunOutput {
            stderr: stderr.into_bytes(),
            code: status.code(),
            signal: status.signal(),
            ..RunOutput::default()
        };
        if confined {
            assert_killed_by_the_filter("port-helper", &out);
        } else {
            assert_unconfined("port-helper", &out);
        }
        drop(master);
    }
}

// ---------------------------------------------------------------------------
// uml_net
// ---------------------------------------------------------------------------

/// `uml_net 4 tuntap up GATE` in a fresh namespace with `env` (the
/// self-test ends it before its reply, so stdout is a plain pipe).
fn uml_net_tuntap_up(env: &[(&str, &str)]) -> RunOutput {
    let ns = NetNs::new("seccomp");
    let mut cmd = ns.exec(workspace_bin("uml_net"));
    cmd.args(["4", "tuntap", "up", "10.0.0.254"]);
    for (k, v) in env {
        cmd.env(k, v);
    }
    run_with_timeout(&mut cmd, LIMIT)
}

#[test]
fn uml_net_dies_on_a_forbidden_call_even_with_the_hatch() {
    require!(
        Requirement::Root,
        Requirement::NetNs,
        Requirement::DevNetTun
    );
    // Confined after the privilege drop, before any change.
    assert_killed_by_the_filter("uml_net", &uml_net_tuntap_up(&[(SELF_TEST, "exec")]));
    // The setuid helper's environment is its caller's: no escape hatch.
    assert_killed_by_the_filter(
        "uml_net",
        &uml_net_tuntap_up(&[(SELF_TEST, "exec"), (NO_SECCOMP, "1")]),
    );
}
