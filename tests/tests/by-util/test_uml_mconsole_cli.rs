//! uml_mconsole without a kernel: a fake mconsole server in the test
//! process, the command line, notifications, and differential checks
//! against Debian's client where no UML is needed.

// Test code: a failed setup step should abort the test with its message.
#![allow(clippy::expect_used, clippy::unwrap_used)]

use std::io::Write;
use std::os::unix::net::UnixDatagram;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::thread;
use std::time::{Duration, Instant};

use uml_common::mconsole::{
    decode_request, encode_notify, encode_reply, encode_reply_packet, NotifyKind, Request,
    UNVERSIONED_ANSWER,
};
use uml_integration_tests::{
    require, run_with_timeout, run_with_timeout_input, workspace_bin, Requirement,
};

const LIMIT: Duration = Duration::from_secs(20);

fn ours() -> PathBuf {
    workspace_bin("uml_mconsole")
}

/// A fake mconsole server: answers each request with what `answer`
/// returns (a list of datagrams) until `count` requests were served or
/// 15 s passed.
struct FakeServer {
    dir: tempfile::TempDir,
    handle: Option<thread::JoinHandle<Vec<Vec<u8>>>>,
    /// Datagrams sent so far (each queued at the client when counted).
    sent: std::sync::Arc<std::sync::atomic::AtomicUsize>,
}

impl FakeServer {
    fn start(count: usize, answer: fn(&[u8]) -> Vec<Vec<u8>>) -> FakeServer {
        let dir = tempfile::tempdir().expect("tempdir");
        let sock = UnixDatagram::bind(dir.path().join("mconsole")).expect("bind fake server");
        sock.set_read_timeout(Some(Duration::from_millis(100)))
            .expect("timeout");
        let sent = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let counter = std::sync::Arc::clone(&sent);
        let handle = thread::spawn(move || {
            let deadline = Instant::now() + Duration::from_secs(15);
            let mut seen = Vec::new();
            let mut buf = [0u8; 1024];
            while seen.len() < count && Instant::now() < deadline {
                let Ok((n, from)) = sock.recv_from(&mut buf) else {
                    continue;
                };
                let command = match decode_request(&buf[..n]) {
                    Request::Command { command, .. } => command.to_vec(),
                    other => panic!("unexpected request {other:?}"),
                };
                for dgram in answer(&command) {
                    let _ = sock.send_to_addr(&dgram, &from);
                    counter.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                }
                seen.push(command);
            }
            seen
        });
        FakeServer {
            dir,
            handle: Some(handle),
            sent,
        }
    }

    fn sent(&self) -> usize {
        self.sent.load(std::sync::atomic::Ordering::SeqCst)
    }

    fn socket(&self) -> PathBuf {
        self.dir.path().join("mconsole")
    }

    fn requests(mut self) -> Vec<Vec<u8>> {
        self.handle
            .take()
            .expect("joined once")
            .join()
            .expect("fake server thread")
    }
}

fn run(args: &[&str]) -> uml_integration_tests::RunOutput {
    run_with_timeout(Command::new(ours()).args(args), LIMIT)
}

fn run_path(socket: &Path, args: &[&str]) -> uml_integration_tests::RunOutput {
    run_with_timeout(Command::new(ours()).arg(socket).args(args), LIMIT)
}

#[test]
fn unfinished_multi_part_reply_ends_with_status_2_instead_of_hanging() {
    let server = FakeServer::start(1, |_| {
        vec![
            encode_reply_packet(0, true, b"first "),
            encode_reply_packet(0, true, b"second"),
        ]
    });
    let start = Instant::now();
    let sock = server.socket();
    let out = run(&[
        "--timeout",
        "0.5",
        sock.to_str().expect("utf8"),
        "sysrq",
        "m",
    ]);
    assert!(!out.timed_out, "client hung:\n{out}");
    assert!(start.elapsed() < Duration::from_secs(10));
    assert_eq!(out.code, Some(2), "{out}");
    assert_eq!(out.stdout_str(), "OK first second\n");
    assert!(
        out.stderr_str().contains("incomplete reply from")
            && out.stderr_str().contains("2 packet(s)"),
        "{out}"
    );
    assert_eq!(server.requests(), vec![b"sysrq m".to_vec()]);
}

#[test]
fn silent_server_gives_no_reply_message() {
    let server = FakeServer::start(1, |_| vec![]);
    let out = run(&[
        "--timeout",
        "0.3",
        "--",
        server.socket().to_str().expect("utf8"),
        "version",
    ]);
    assert_eq!(out.code, Some(2), "{out}");
    assert!(out.stdout.is_empty(), "{out}");
    assert!(
        out.stderr_str().ends_with(&format!(
            "no reply from '{}' within 0.3 s\n",
            server.socket().display()
        )),
        "{out}"
    );
}

#[test]
fn multi_part_reply_is_joined_and_error_status_is_the_low_byte() {
    let server = FakeServer::start(2, |cmd| {
        if cmd == b"help" {
            encode_reply(0, false, &vec![b'h'; 700])
        } else {
            encode_reply(-19i32 as u32, false, b"Device doesn't exist")
        }
    });
    let out = run_path(&server.socket(), &["help"]);
    assert_eq!(out.code, Some(0), "{out}");
    let expected = format!(
        "OK {}\n{}",
        "h".repeat(700),
        "Additional local mconsole commands:\n    quit - Quit mconsole\n    switch <socket-name> - Switch control to the given machine\n    log -f <filename> - use contents of <filename> as UML log messages\n    mconsole-version - version of this mconsole program\n    int  - Interrupt UML session\n"
    );
    assert_eq!(out.stdout_str(), expected);
    let out = run_path(&server.socket(), &["remove", "ubd9"]);
    assert_eq!(out.code, Some(237), "{out}");
    assert_eq!(out.stdout_str(), "ERR Device doesn't exist\n");
    assert_eq!(
        server.requests(),
        vec![b"help".to_vec(), b"remove ubd9".to_vec()]
    );
}

#[test]
fn header_less_answer_is_printed_as_text() {
    let server = FakeServer::start(1, |_| vec![UNVERSIONED_ANSWER.to_vec()]);
    let out = run_path(&server.socket(), &["version"]);
    assert_eq!(out.code, Some(1), "{out}");
    assert_eq!(
        out.stdout_str(),
        "ERR Version 0 mconsole clients are not supported by this driver\n"
    );
}

#[test]
fn stale_and_foreign_datagrams_are_not_taken_for_the_reply() {
    // First reply: a second, unsolicited reply follows the real one (as the
    // kernel does after a version error). The next command must not see it.
    let server = FakeServer::start(2, |cmd| {
        if cmd == b"first" {
            vec![
                encode_reply_packet(0, false, b"one"),
                encode_reply_packet(1, false, b"stray"),
            ]
        } else {
            vec![encode_reply_packet(0, false, b"two")]
        }
    });
    // The kernel queues both at once; here the client types `second` only
    // once both datagrams of the first answer are in its queue (else the
    // stray one might arrive after the client looked for leftovers).
    let mut child = Command::new(ours())
        .arg(server.socket())
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("spawn");
    let mut stdin = child.stdin.take().expect("stdin");
    stdin.write_all(b"first\n").expect("write");
    assert!(
        uml_integration_tests::wait_until(LIMIT, || server.sent() >= 2),
        "the fake server did not answer `first`"
    );
    stdin.write_all(b"second\n").expect("write");
    drop(stdin);
    let pid = child.id();
    if !uml_integration_tests::wait_until(LIMIT, || !uml_integration_tests::pid_alive(pid)) {
        let _ = child.kill();
    }
    let out = child.wait_with_output().expect("wait");
    assert_eq!(out.status.code(), Some(0), "{out:?}");
    let name = server.socket().to_string_lossy().into_owned();
    let short: String = name.chars().take(11).collect();
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        format!("({short}) first\nOK one\n({short}) second\nOK two\n({short}) \n")
    );
}

#[test]
fn long_log_text_is_split_into_506_byte_pieces() {
    let server = FakeServer::start(4, |_| vec![encode_reply_packet(0, false, b"")]);
    let text = "x".repeat(1196);
    let out = run_path(&server.socket(), &["log", &text]);
    assert_eq!(out.code, Some(0), "{out}");
    assert_eq!(out.stdout_str(), "OK \n".repeat(4));
    let reqs = server.requests();
    let lens: Vec<usize> = reqs.iter().map(|r| r.len()).collect();
    assert_eq!(lens, [4 + 506, 4 + 506, 4 + 184, 5]);
    assert_eq!(reqs[3], b"log \n");
}

#[test]
fn int_without_a_pid_never_signals_our_process_group() {
    // Debian's client would kill(0, SIGINT) here and take the test runner
    // down with it. If ours did, this test process would die.
    let out = run(&["nosuch-umid-for-int", "int"]);
    assert_eq!(out.code, Some(0), "{out}");
    assert_eq!(
        out.stdout_str(),
        "Cannot determine the PID of your UML session, not sending signal.\n"
    );
}

#[test]
fn int_sends_sigint_to_the_pid_beside_the_socket() {
    let dir = tempfile::tempdir().expect("tempdir");
    let _sock = UnixDatagram::bind(dir.path().join("mconsole")).expect("bind");
    let mut victim = Command::new("sleep").arg("30").spawn().expect("sleep");
    std::fs::write(dir.path().join("pid"), format!("{}\n", victim.id())).expect("pid file");
    let out = run_path(&dir.path().join("mconsole"), &["int"]);
    assert_eq!(out.code, Some(0), "{out}");
    let deadline = Instant::now() + Duration::from_secs(10);
    let status = loop {
        if let Some(st) = victim.try_wait().expect("wait") {
            break Some(st);
        }
        if Instant::now() > deadline {
            let _ = victim.kill();
            break None;
        }
        thread::sleep(Duration::from_millis(20));
    };
    use std::os::unix::process::ExitStatusExt;
    assert_eq!(
        status.and_then(|s| s.signal()),
        Some(2),
        "SIGINT not delivered"
    );
}

#[test]
fn notify_prints_one_line_per_notification_and_removes_its_socket() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("notify.sock");
    let mut child = Command::new(ours())
        .arg("--notify")
        .arg(&path)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("spawn");
    let deadline = Instant::now() + Duration::from_secs(10);
    while !path.exists() && Instant::now() < deadline {
        thread::sleep(Duration::from_millis(10));
    }
    let tx = UnixDatagram::unbound().expect("socket");
    let mut c64_hang = vec![0xbe, 0xba, 0xfe, 0xca, 0, 0, 0, 0, 2, 0, 0, 0, 2, 0, 0, 0];
    c64_hang.extend_from_slice(&[0, 0, 0, 0, 0xfe, 0x7f, 0, 0]);
    for dgram in [
        encode_notify(NotifyKind::Socket, b"/w/uml/t1/mconsole\0"),
        encode_notify(NotifyKind::UserNotify, b"hello-user-notify"),
        b"garbage".to_vec(),
        encode_notify(NotifyKind::Panic, b"sysrq triggered crash\0"),
        encode_notify(NotifyKind::Hang, b""),
        c64_hang,
    ] {
        tx.send_to(&dgram, &path).expect("send");
    }
    // One flushed line per notification: once the fifth (the last
    // datagram's) is out, every datagram has been handled.
    let mut stdout = std::io::BufReader::new(child.stdout.take().expect("stdout"));
    let (lines_tx, lines_rx) = std::sync::mpsc::channel();
    let reader = thread::spawn(move || {
        use std::io::BufRead;
        let mut line = String::new();
        while stdout.read_line(&mut line).is_ok_and(|n| n > 0) {
            if lines_tx.send(std::mem::take(&mut line)).is_err() {
                break;
            }
        }
    });
    let mut printed = String::new();
    let deadline = Instant::now() + Duration::from_secs(10);
    while printed.lines().count() < 5 {
        let left = deadline.saturating_duration_since(Instant::now());
        match lines_rx.recv_timeout(left) {
            Ok(l) => printed.push_str(&l),
            Err(_) => panic!("--notify printed only {printed:?}"),
        }
    }
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(child.id() as i32),
        nix::sys::signal::Signal::SIGTERM,
    )
    .expect("kill");
    let deadline = Instant::now() + Duration::from_secs(10);
    while child.try_wait().expect("wait").is_none() {
        assert!(
            Instant::now() < deadline,
            "--notify did not exit on SIGTERM"
        );
        thread::sleep(Duration::from_millis(20));
    }
    let out = child.wait_with_output().expect("output");
    reader.join().expect("stdout reader");
    printed.extend(lines_rx.try_iter());
    assert_eq!(out.status.code(), Some(0));
    assert_eq!(
        printed,
        "SOCKET /w/uml/t1/mconsole\nUSER_NOTIFY hello-user-notify\nPANIC sysrq triggered crash\nHANG\nHANG\n"
    );
    assert!(String::from_utf8_lossy(&out.stderr).contains("not a notification"));
    assert!(!path.exists(), "socket file left behind");
}

#[test]
fn new_options() {
    let out = run(&["--help"]);
    assert_eq!(out.code, Some(0));
    assert!(out.stdout_str().starts_with("Usage: uml_mconsole"));
    let out = run(&["--version"]);
    assert_eq!(out.code, Some(0));
    assert!(out.stdout_str().contains("uml-utilities-rs"));
    let out = run(&["--timeout", "zero", "x", "version"]);
    assert_eq!(out.code, Some(1));
    assert!(out.stderr_str().contains("invalid --timeout value 'zero'"));
    let out = run(&["--bogus"]);
    assert_eq!(out.code, Some(1));
    assert!(out.stderr_str().contains("unrecognized option '--bogus'"));
}

/// Runs Debian's client and ours with the same arguments, environment and
/// working directory and asserts identical stdout, stderr and status.
fn same_as_c(args: &[&str], env: &[(&str, Option<&str>)], input: Option<&[u8]>) {
    let mut outs = Vec::new();
    for bin in [PathBuf::from("/usr/bin/uml_mconsole"), ours()] {
        let mut cmd = Command::new(&bin);
        cmd.args(args).current_dir("/");
        for (k, v) in env {
            match v {
                Some(v) => cmd.env(k, v),
                None => cmd.env_remove(k),
            };
        }
        let out = match input {
            Some(i) => run_with_timeout_input(&mut cmd, i, LIMIT),
            None => run_with_timeout(&mut cmd, LIMIT),
        };
        assert!(!out.timed_out, "{} {args:?} timed out", bin.display());
        outs.push(out);
    }
    assert_eq!(
        outs[0].stdout_str(),
        outs[1].stdout_str(),
        "stdout of {args:?}"
    );
    assert_eq!(
        outs[0].stderr_str(),
        outs[1].stderr_str(),
        "stderr of {args:?}"
    );
    assert_eq!(outs[0].code, outs[1].code, "status of {args:?}");
}

#[test]
fn differential_without_a_kernel() {
    require!(Requirement::CBinary("uml_mconsole"));
    let home = tempfile::tempdir().expect("tempdir");
    let h = home.path().to_str().expect("utf8 path");
    let env = [("HOME", Some(h))];
    same_as_c(&[], &env, None);
    same_as_c(&["nosuch"], &env, Some(b""));
    for cmd in [
        "version",
        "help",
        "log x",
        "log",
        "umlfs abc",
        "umlfs 1",
        "umlfs 1x",
        "switch",
        "switch nosuch",
        "quit",
        "mconsole-version",
        "log -f /nonexistent",
    ] {
        same_as_c(&["nosuch", cmd], &env, None);
    }
    same_as_c(&["nosuch", "version"], &[("HOME", None)], None);
    same_as_c(&["/tmp/nonexistent/dir/mconsole", "version"], &env, None);
    same_as_c(
        &["nosuch"],
        &env,
        Some(b"version\nmconsole-version\nswitch x\nversion"),
    );
    same_as_c(
        &["nosuch"],
        &env,
        Some(b"mconsole-version\nquit\nversion\n"),
    );
    same_as_c(&["nosuch"], &env, Some(b"log -f /nonexistent\nversion\n"));
}
