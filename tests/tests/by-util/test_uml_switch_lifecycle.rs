//! uml_switch process life cycle: stdin on a terminal, -daemon, counters.
//! Compared with Debian's C switch where the behaviour is meant to match.

// Test code: a failed setup step should abort the test with its message.
#![allow(clippy::expect_used, clippy::unwrap_used)]

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use uml_integration_tests::{pid_alive, require, wait_idle, workspace_bin, Requirement};

fn wait_for(what: &str, timeout: Duration, mut cond: impl FnMut() -> bool) {
    let deadline = Instant::now() + timeout;
    while !cond() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

struct Killer(Vec<u32>);

impl Drop for Killer {
    fn drop(&mut self) {
        for &pid in &self.0 {
            let _ = nix::sys::signal::kill(
                nix::unistd::Pid::from_raw(pid as i32),
                nix::sys::signal::Signal::SIGKILL,
            );
        }
    }
}

fn wait_child(child: &mut Child, timeout: Duration) -> Option<std::process::ExitStatus> {
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(st) = child.try_wait().expect("wait") {
            return Some(st);
        }
        if Instant::now() > deadline {
            return None;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Starts `bin` with stdin on a pseudo-terminal, then hangs the terminal
/// up; returns stdout and the exit status.
fn stdin_terminal_eof(bin: &Path, dir: &Path) -> (String, Option<i32>, bool) {
    let pty = nix::pty::openpty(None, None).expect("openpty");
    // Close-on-exec, so that children spawned by tests running in parallel
    // do not keep the terminal open (the hang-up would never come).
    for fd in [&pty.master, &pty.slave] {
        use std::os::fd::AsRawFd;
        nix::fcntl::fcntl(
            fd.as_raw_fd(),
            nix::fcntl::FcntlArg::F_SETFD(nix::fcntl::FdFlag::FD_CLOEXEC),
        )
        .expect("cloexec");
    }
    let ctl = dir.join("ctl");
    let mut child = Command::new(bin)
        .arg("-unix")
        .arg(&ctl)
        .stdin(Stdio::from(pty.slave))
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn");
    let _k = Killer(vec![child.id()]);
    let stdout = child.stdout.take().expect("stdout");
    let mut reader = BufReader::new(stdout);
    let mut first = String::new();
    reader.read_line(&mut first).expect("read");
    assert!(first.contains("attached to unix socket"), "{first:?}");
    assert!(ctl.exists());
    // Let the switch finish its start-up (C checks isatty after the first
    // line) and wait in its event loop, then hang up: EOF on its stdin.
    assert!(
        wait_idle(child.id(), Duration::from_secs(10)),
        "{} did not reach its event loop",
        bin.display()
    );
    drop(pty.master);
    let status =
        wait_child(&mut child, Duration::from_secs(10)).expect("did not exit on stdin EOF");
    let mut rest = String::new();
    for line in reader.lines() {
        let line = line.expect("line");
        // Ours then prints how guests join the control socket (not C).
        if line.starts_with("control socket '") {
            continue;
        }
        rest.push_str(&line);
        rest.push('\n');
    }
    (rest, status.code(), ctl.exists())
}

#[test]
fn eof_on_a_terminal_stdin_exits_like_the_c_switch() {
    let dir = tempfile::tempdir().unwrap();
    let ours = stdin_terminal_eof(&workspace_bin("uml_switch"), dir.path());
    assert_eq!(
        ours,
        (
            "EOF on stdin, cleaning up and exiting\n".to_string(),
            Some(0),
            false
        )
    );
    if !require(Requirement::CBinary("uml_switch")) {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    // The C switch block-buffers stdout on a pipe; stdbuf makes it line
    // buffered so both see the same text.
    let c = {
        let wrapper = dir.path().join("c-switch");
        std::fs::write(
            &wrapper,
            "#!/bin/sh\nexec stdbuf -oL -eL /usr/bin/uml_switch \"$@\"\n",
        )
        .unwrap();
        std::fs::set_permissions(
            &wrapper,
            std::os::unix::fs::PermissionsExt::from_mode(0o755),
        )
        .unwrap();
        stdin_terminal_eof(&wrapper, dir.path())
    };
    assert_eq!(ours, c);
}

fn find_pid_by_arg(needle: &str) -> Option<u32> {
    for entry in std::fs::read_dir("/proc").ok()?.flatten() {
        let Ok(pid) = entry.file_name().to_string_lossy().parse::<u32>() else {
            continue;
        };
        if let Ok(cmd) = std::fs::read(entry.path().join("cmdline")) {
            if String::from_utf8_lossy(&cmd).contains(needle) {
                return Some(pid);
            }
        }
    }
    None
}

#[test]
fn daemon_mode_detaches_and_still_removes_a_relative_socket() {
    let dir = tempfile::tempdir().unwrap();
    let tag = format!("daemon-ctl-{}", std::process::id());
    let out = dir.path().join("out");
    let status = Command::new(workspace_bin("uml_switch"))
        .current_dir(dir.path())
        .args(["-daemon", "-unix", &tag])
        .stdin(Stdio::null())
        .stdout(std::fs::File::create(&out).unwrap())
        .stderr(Stdio::null())
        .status()
        .expect("run");
    assert!(status.success(), "parent of -daemon must exit 0");
    let ctl: PathBuf = dir.path().join(&tag);
    wait_for("the control socket", Duration::from_secs(10), || {
        ctl.exists()
    });
    let pid = find_pid_by_arg(&tag).expect("daemon process");
    let _k = Killer(vec![pid]);
    assert!(std::fs::read_to_string(&out)
        .unwrap()
        .contains(&format!("attached to unix socket '{}'", ctl.display())));
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(pid as i32),
        nix::sys::signal::Signal::SIGTERM,
    )
    .unwrap();
    wait_for("the daemon to exit", Duration::from_secs(10), || {
        !pid_alive(pid)
    });
    // The C switch chdirs to / and cannot remove a relative socket; ours
    // resolved it before detaching.
    assert!(!ctl.exists(), "control socket left behind");
}

/// Starts our switch on `dir/ctl` with stderr in `dir/err`; returns once
/// the control socket exists.
fn start_switch(dir: &Path) -> (Child, PathBuf, PathBuf) {
    let ctl = dir.join("ctl");
    let err_path = dir.join("err");
    let out_path = dir.join("out");
    let child = Command::new(workspace_bin("uml_switch"))
        .arg("-unix")
        .arg(&ctl)
        .stdin(Stdio::null())
        .stdout(std::fs::File::create(&out_path).unwrap())
        .stderr(std::fs::File::create(&err_path).unwrap())
        .spawn()
        .unwrap();
    let pid = child.id();
    // Killed if the switch never gets ready; the caller guards it afterwards.
    let mut guard = Killer(vec![pid]);
    // The socket file appears at bind(), before listen(): only the
    // "attached" line says that connections are accepted.
    wait_for("the switch to attach", Duration::from_secs(10), || {
        std::fs::read_to_string(&out_path)
            .unwrap_or_default()
            .contains("attached to unix socket")
    });
    assert!(ctl.exists(), "attached without a control socket");
    // Disarmed, not forgotten (mem::forget leaked its Vec: LeakSanitizer,
    // scripts/asan).
    guard.0.clear();
    (child, ctl, err_path)
}

#[test]
fn sigusr1_prints_the_counters() {
    let dir = tempfile::tempdir().unwrap();
    let (mut child, ctl, err_path) = start_switch(dir.path());
    let _k = Killer(vec![child.id()]);
    let pid = nix::unistd::Pid::from_raw(child.id() as i32);
    nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGUSR1).unwrap();
    wait_for("the counters", Duration::from_secs(10), || {
        std::fs::read_to_string(&err_path)
            .unwrap_or_default()
            .contains("frames in 0")
    });
    assert!(pid_alive(child.id()), "SIGUSR1 must not end the switch");
    nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGINT).unwrap();
    let st = wait_child(&mut child, Duration::from_secs(10)).expect("exit on SIGINT");
    use std::os::unix::process::ExitStatusExt;
    assert_eq!(
        st.signal(),
        Some(2),
        "dies by SIGINT after cleanup, as in C"
    );
    assert!(!ctl.exists());
}

#[test]
fn an_unfinished_request_is_closed_after_its_deadline() {
    use std::io::{Read, Write};
    let dir = tempfile::tempdir().unwrap();
    let (mut child, ctl, err_path) = start_switch(dir.path());
    let _k = Killer(vec![child.id()]);
    let mut conn = std::os::unix::net::UnixStream::connect(&ctl).unwrap();
    // The magic, then nothing: the switch must not wait forever.
    conn.write_all(&0xfeed_faceu32.to_le_bytes()).unwrap();
    conn.set_read_timeout(Some(Duration::from_secs(15)))
        .unwrap();
    let start = Instant::now();
    let mut b = [0u8; 16];
    let n = conn.read(&mut b).expect("EOF, not a timeout");
    assert_eq!(n, 0, "no reply to an unfinished request");
    let waited = start.elapsed();
    assert!(
        waited >= Duration::from_secs(4) && waited < Duration::from_secs(10),
        "closed after {waited:?}"
    );
    assert!(std::fs::read_to_string(&err_path)
        .unwrap()
        .contains("incomplete request (4 bytes) after 5 s"));
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(child.id() as i32),
        nix::sys::signal::Signal::SIGTERM,
    )
    .unwrap();
    wait_child(&mut child, Duration::from_secs(10)).expect("exit on SIGTERM");
}
