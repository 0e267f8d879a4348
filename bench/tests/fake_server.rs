//! The fake mconsole server and the benchmark driver, end to end.

// Helpers outside #[test] functions unwrap too: a failure is a test failure.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::io::{BufRead, BufReader};
use std::os::linux::net::SocketAddrExt;
use std::os::unix::net::{SocketAddr, UnixDatagram};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::mpsc;
use std::thread;
use std::time::{Duration, Instant};

use uml_bench::fake::{expected_version_output, VERSION_TEXT};
use uml_common::mconsole::{decode_reply, encode_request, UNVERSIONED_ANSWER};

const C_CLIENT: &str = "/usr/bin/uml_mconsole";

/// The C client, or `None` (skip) when it is missing outside CI.
fn c_client() -> Option<&'static str> {
    if Path::new(C_CLIENT).is_file() {
        return Some(C_CLIENT);
    }
    assert!(
        std::env::var_os("CI").is_none(),
        "{C_CLIENT} missing (Debian package uml-utilities)"
    );
    eprintln!("SKIP: {C_CLIENT} missing (Debian package uml-utilities)");
    None
}

/// A running `fake-mconsole`; killed if still running when dropped.
struct Server {
    child: Child,
    socket: PathBuf,
    _dir: tempfile::TempDir,
}

impl Server {
    fn start(max_seconds: u64) -> Server {
        let dir = tempfile::tempdir().unwrap();
        let socket = dir.path().join("mconsole");
        let mut child = Command::new(env!("CARGO_BIN_EXE_fake-mconsole"))
            .arg("--max-seconds")
            .arg(max_seconds.to_string())
            .arg(&socket)
            .stdout(Stdio::piped())
            .spawn()
            .unwrap();
        let stdout = child.stdout.take().unwrap();
        let (tx, rx) = mpsc::channel();
        thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let _ = tx.send(line.unwrap_or_default());
            }
        });
        let server = Server {
            child,
            socket,
            _dir: dir,
        };
        assert_eq!(rx.recv_timeout(Duration::from_secs(10)).unwrap(), "ready");
        server
    }

    fn wait_exit(&mut self, timeout: Duration) -> ExitStatus {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                return status;
            }
            assert!(Instant::now() < deadline, "server did not exit in time");
            thread::sleep(Duration::from_millis(20));
        }
    }

    fn signal(&self, sig: nix::sys::signal::Signal) {
        let pid = nix::unistd::Pid::from_raw(self.child.id() as i32);
        nix::sys::signal::kill(pid, sig).unwrap();
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A client bound to an abstract address, as `uml_mconsole` is.
fn abstract_client(tag: &str) -> UnixDatagram {
    let name = format!("uml-bench-test-{tag}-{}", std::process::id());
    let addr = SocketAddr::from_abstract_name(name.as_bytes()).unwrap();
    let sock = UnixDatagram::bind_addr(&addr).unwrap();
    sock.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    sock
}

#[test]
fn answers_abstract_clients_and_stops_on_sigterm() {
    let mut server = Server::start(60);
    let client = abstract_client("term");
    let mut buf = [0u8; 1024];

    client
        .send_to(&encode_request(b"version"), &server.socket)
        .unwrap();
    let n = client.recv(&mut buf).unwrap();
    let p = decode_reply(&buf[..n]).unwrap();
    assert_eq!((p.err, p.more), (0, false));
    assert_eq!(p.text, VERSION_TEXT.as_bytes());

    client
        .send_to(&encode_request(b"frobnicate"), &server.socket)
        .unwrap();
    let n = client.recv(&mut buf).unwrap();
    let p = decode_reply(&buf[..n]).unwrap();
    assert_eq!((p.err, p.text), (1, &b"Unknown command"[..]));

    client.send_to(b"version\0", &server.socket).unwrap();
    let n = client.recv(&mut buf).unwrap();
    assert_eq!(&buf[..n], UNVERSIONED_ANSWER);

    // An unbound sender cannot be answered; the server carries on.
    UnixDatagram::unbound()
        .unwrap()
        .send_to(&encode_request(b"version"), &server.socket)
        .unwrap();
    client
        .send_to(&encode_request(b"version"), &server.socket)
        .unwrap();
    let n = client.recv(&mut buf).unwrap();
    assert_eq!(decode_reply(&buf[..n]).unwrap().err, 0);

    server.signal(nix::sys::signal::Signal::SIGTERM);
    let status = server.wait_exit(Duration::from_secs(5));
    assert!(status.success(), "{status}");
    assert!(!server.socket.exists(), "socket left behind");
}

#[test]
fn stops_by_itself_after_max_seconds() {
    let mut server = Server::start(1);
    let status = server.wait_exit(Duration::from_secs(10));
    assert!(status.success(), "{status}");
    assert!(!server.socket.exists(), "socket left behind");
}

#[test]
fn refuses_to_replace_a_regular_file() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("mconsole");
    std::fs::write(&path, "keep me").unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_fake-mconsole"))
        .arg("--max-seconds=5")
        .arg(&path)
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert_eq!(std::fs::read_to_string(&path).unwrap(), "keep me");
}

#[test]
fn c_client_gets_the_version() {
    let Some(c) = c_client() else { return };
    let mut server = Server::start(60);
    let out = Command::new(c)
        .arg(&server.socket)
        .arg("version")
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", out.status);
    assert_eq!(out.stdout, expected_version_output());
    server.signal(nix::sys::signal::Signal::SIGINT);
    assert!(server.wait_exit(Duration::from_secs(5)).success());
    assert!(!server.socket.exists());
}

#[test]
fn driver_compares_c_with_itself() {
    let Some(c) = c_client() else { return };
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_bench-mconsole"));
    cmd.args(["--ours", c, "--c", c]).args([
        "--calls", "20", "--batch", "5", "--warmup", "2", "--verify", "2",
    ]);
    if !Path::new("/usr/bin/time").is_file() {
        cmd.args(["--rss-runs", "0"]);
    } else {
        cmd.args(["--rss-runs", "3"]);
    }
    let out = cmd.stdin(Stdio::null()).output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{}\n{stdout}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    let result = stdout
        .lines()
        .find(|l| l.starts_with("RESULT "))
        .unwrap_or_else(|| panic!("no RESULT line in\n{stdout}"));
    let ratio: f64 = result
        .split_whitespace()
        .find_map(|w| w.strip_prefix("time_ratio="))
        .unwrap()
        .parse()
        .unwrap();
    // Same binary on both sides: about 1 (loosely: 20 calls on a busy
    // machine are noisy).
    assert!(ratio > 0.1 && ratio < 10.0, "{result}");
    assert!(
        result.contains("time=PASS") || result.contains("time=FAIL"),
        "{result}"
    );
}

#[test]
fn driver_kills_a_hanging_client_and_cleans_up() {
    let dir = tempfile::tempdir().unwrap();
    let hang = dir.path().join("hang");
    std::fs::write(&hang, "#!/bin/sh\nexec sleep 30\n").unwrap();
    std::fs::set_permissions(&hang, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    let start = Instant::now();
    let out = Command::new(env!("CARGO_BIN_EXE_bench-mconsole"))
        .arg("--ours")
        .arg(&hang)
        .arg("--c")
        .arg(&hang)
        .args(["--timeout-ms", "300", "--rss-runs", "0", "--calls", "1"])
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert!(start.elapsed() < Duration::from_secs(20));
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("killed"), "{stderr}");
}
