//! `uml_switch --bess-connect PATH` and `--qemu-connect PATH` at the
//! protocol level: the test listens where a user-mode network stack would
//! (a `SOCK_SEQPACKET` socket in bess mode, as slirp4netns
//! `--target-type=bess` and gvproxy `-listen-bess`; a `SOCK_STREAM` socket
//! with the 4-byte big-endian length framing, as passt, gvproxy
//! `-listen-qemu` and QEMU `-netdev stream`; `docs/vector.md` §12), the
//! switch connects, and frames go both ways between that peer and a
//! daemon-protocol port. Also: a length prefix split across reads, frames
//! back to back, a frame longer than the switch's largest, a length no
//! Ethernet frame has, a peer that closes, a peer that stops reading, no
//! peer at start-up, and `port add` through the management socket.
//!
//! These options are new in the rewrite: against Debian's C switch
//! (`UML_SWITCH_UNDER_TEST`) these tests are skipped.

// Test code: a failed setup step should abort the test with its message.
#![allow(clippy::expect_used, clippy::unwrap_used)]

use std::ffi::OsString;
use std::io::{Read, Write};
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::Path;
use std::time::Duration;

use uml_integration_tests::switch_client::{
    check_backlog_delivery, counter, counters, frame, mac, new_temp_dir, numbered_broadcast,
    BessClient, FramePort, RunningSwitch, Stream, SwitchBinary, SwitchMode, BROADCAST, WAIT,
};
use uml_integration_tests::{run_with_timeout, wait_idle, wait_until};

/// Returns from the test when the switch under test is the C reference.
macro_rules! require_ours {
    () => {
        if !uml_integration_tests::segment::switch_is_ours(
            "--bess-connect/--qemu-connect are not options of the C switch",
        ) {
            return;
        }
    };
}

/// A peer speaking the QEMU stream framing on an accepted connection.
struct QemuPeer {
    s: UnixStream,
}

impl QemuPeer {
    /// Accepts the switch's connection on `l` (which it made at start-up).
    fn accept(l: &UnixListener) -> QemuPeer {
        l.set_nonblocking(true).unwrap();
        let mut got = None;
        assert!(
            wait_until(WAIT, || {
                got = l.accept().ok();
                got.is_some()
            }),
            "the switch did not connect"
        );
        let (s, _) = got.unwrap();
        s.set_nonblocking(false).unwrap();
        s.set_read_timeout(Some(WAIT)).unwrap();
        s.set_write_timeout(Some(WAIT)).unwrap();
        QemuPeer { s }
    }

    fn write(&self, bytes: &[u8]) {
        (&self.s).write_all(bytes).expect("writing to the switch");
    }

    /// One frame, or `None` at a timeout or end of file.
    fn read_frame(&self, timeout: Duration) -> Option<Vec<u8>> {
        let _ = self
            .s
            .set_read_timeout(Some(timeout.max(Duration::from_millis(1))));
        let mut head = [0u8; 4];
        (&self.s).read_exact(&mut head).ok()?;
        let len = u32::from_be_bytes(head) as usize;
        assert!(len <= 65_549, "the switch sent a length of {len}");
        let _ = self.s.set_read_timeout(Some(WAIT));
        let mut f = vec![0u8; len];
        (&self.s)
            .read_exact(&mut f)
            .expect("a frame cut by the switch");
        Some(f)
    }

    /// Whether the switch closed the connection (end of file within WAIT).
    fn closed_by_switch(&self) -> bool {
        let _ = self.s.set_read_timeout(Some(WAIT));
        let mut buf = [0u8; 4096];
        loop {
            match (&self.s).read(&mut buf) {
                Ok(0) => return true,
                Ok(_) => {}
                Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => return true,
                Err(_) => return false,
            }
        }
    }
}

impl FramePort for QemuPeer {
    fn send_frame(&self, f: &[u8]) {
        let mut bytes = (f.len() as u32).to_be_bytes().to_vec();
        bytes.extend_from_slice(f);
        self.write(&bytes);
    }

    fn recv_frame(&self, timeout: Duration) -> Option<Vec<u8>> {
        self.read_frame(timeout)
    }
}

fn start(args: &[&str], peer: &Path) -> RunningSwitch {
    let mut extra: Vec<OsString> = args.iter().map(OsString::from).collect();
    extra.push(peer.into());
    RunningSwitch::start_with_args(SwitchMode::default(), &extra)
}

/// Frames both ways between `peer` (whose MAC is mac(1)) and a daemon
/// port; returns the daemon port.
fn exchange(
    sw: &RunningSwitch,
    peer: &dyn FramePort,
) -> uml_integration_tests::switch_client::FakePort {
    let d = sw.port();
    let out = frame(BROADCAST, mac(1), b"from the stack");
    peer.send_frame(&out);
    assert_eq!(
        d.recv(WAIT).as_deref(),
        Some(&out[..]),
        "peer -> daemon port\n{}",
        sw.output_report()
    );
    let back = frame(mac(1), mac(2), b"to the stack");
    d.send(&back);
    assert_eq!(
        peer.recv_frame(WAIT).as_deref(),
        Some(&back[..]),
        "daemon port -> peer (learned unicast)\n{}",
        sw.output_report()
    );
    d
}

/// `--bess-connect`: the start-up line, frames both ways; the peer
/// closing removes the port, logged once, and the switch goes on.
#[test]
fn bess_connect_carries_frames_and_notices_the_peer_leaving() {
    require_ours!();
    let dir = new_temp_dir();
    let path = dir.path().join("slirp.bess");
    let l = uml_common::sys::seqpacket::listen(&path, 1).unwrap();
    let mut sw = start(&["--bess-connect"], &path);
    let line = format!("connected to bess peer '{}': port ", path.display());
    assert!(
        sw.stdout().lines().any(|l| l.starts_with(&line)),
        "{}",
        sw.output_report()
    );
    let mut fd = None;
    assert!(wait_until(WAIT, || {
        fd = uml_common::sys::seqpacket::accept(std::os::fd::AsFd::as_fd(&l)).ok();
        fd.is_some()
    }));
    let sock = UnixStream::from(fd.unwrap());
    sock.set_nonblocking(false).unwrap();
    sock.set_read_timeout(Some(WAIT)).unwrap();
    let mut peer = BessClient { sock: Some(sock) };
    let d = exchange(&sw, &peer);
    // A peer that goes: the port is removed, once, and the switch runs on.
    peer.disconnect();
    sw.wait_line_starting(Stream::Stdout, "Bess peer '", WAIT)
        .unwrap_or_else(|e| panic!("{e}"));
    d.send(&frame(BROADCAST, mac(2), b"after"));
    let e = sw.port();
    let f = frame(BROADCAST, mac(3), b"still switching");
    e.send(&f);
    assert_eq!(d.recv(WAIT).as_deref(), Some(&f[..]));
    assert_eq!(
        sw.count_containing(Stream::Stdout, "Bess peer '"),
        1,
        "{}",
        sw.output_report()
    );
    assert!(sw.is_running());
    assert!(sw.stderr().is_empty(), "{}", sw.output_report());
}

/// `--qemu-connect`: frames both ways, a length prefix split across
/// reads, a frame split, frames back to back in one write, a frame longer
/// than the switch's largest skipped and counted.
#[test]
fn qemu_connect_puts_frames_back_together() {
    require_ours!();
    let dir = new_temp_dir();
    let path = dir.path().join("passt.socket");
    let l = UnixListener::bind(&path).unwrap();
    let mut sw = start(&["--qemu-connect"], &path);
    let line = format!("connected to qemu-stream peer '{}': port ", path.display());
    assert!(
        sw.stdout().lines().any(|l| l.starts_with(&line)),
        "{}",
        sw.output_report()
    );
    let peer = QemuPeer::accept(&l);
    let d = exchange(&sw, &peer);

    // Split at every interesting place, each piece read by the switch
    // before the next is written (it is idle in epoll_wait again).
    let f = frame(BROADCAST, mac(1), b"in pieces");
    let mut bytes = (f.len() as u32).to_be_bytes().to_vec();
    bytes.extend_from_slice(&f);
    for cut in [1, 2, 3, 4, 5, 20] {
        peer.write(&bytes[..cut]);
        assert!(wait_idle(sw.pid(), WAIT), "switch not idle");
        assert!(
            d.recv(Duration::from_millis(50)).is_none(),
            "a frame from {cut} bytes"
        );
        peer.write(&bytes[cut..]);
        assert_eq!(d.recv(WAIT).as_deref(), Some(&f[..]), "cut at {cut}");
    }
    // One byte at a time.
    for b in &bytes {
        peer.write(std::slice::from_ref(b));
    }
    assert_eq!(d.recv(WAIT).as_deref(), Some(&f[..]), "byte by byte");
    // Back to back, with an oversized frame (2000 bytes > 1514) between:
    // skipped and counted, the next ones still read.
    let big = frame(BROADCAST, mac(1), &[7u8; 2000 - 14]);
    let g = frame(BROADCAST, mac(1), b"after the big one");
    let mut all = Vec::new();
    for x in [&f, &big, &g, &f] {
        all.extend_from_slice(&(x.len() as u32).to_be_bytes());
        all.extend_from_slice(x);
    }
    peer.write(&all);
    for want in [&f, &g, &f] {
        assert_eq!(
            d.recv(WAIT).as_deref(),
            Some(&want[..]),
            "{}",
            sw.output_report()
        );
    }
    let c = counters(&mut sw);
    assert_eq!(counter(&c, "too long"), 1, "{c:?}");
    assert!(sw.is_running());
}

/// A length longer than any Ethernet frame: the port is closed (never a
/// large allocation or a panic), logged once and counted; a peer that
/// closes is logged the same way; the switch runs on.
#[test]
fn qemu_connect_closes_on_a_bad_length_or_when_the_peer_goes() {
    require_ours!();
    let dir = new_temp_dir();
    let bad = dir.path().join("bad.socket");
    let gone = dir.path().join("gone.socket");
    let lb = UnixListener::bind(&bad).unwrap();
    let lg = UnixListener::bind(&gone).unwrap();
    let extra: Vec<OsString> = vec![
        "--qemu-connect".into(),
        bad.clone().into(),
        "--qemu-connect".into(),
        gone.clone().into(),
    ];
    let mut sw = RunningSwitch::start_with_args(SwitchMode::default(), &extra);
    let pb = QemuPeer::accept(&lb);
    let pg = QemuPeer::accept(&lg);
    let d = sw.port();
    // 0x7fffffff: the switch must not try to allocate it.
    pb.write(&[0x7f, 0xff, 0xff, 0xff, 1, 2, 3]);
    assert!(pb.closed_by_switch(), "{}", sw.output_report());
    let line = format!("qemu-connect peer '{}' (port ", bad.display());
    sw.wait_line_starting(Stream::Stdout, &line, WAIT)
        .unwrap_or_else(|e| panic!("{e}"));
    let said = sw.lines_starting_with(Stream::Stdout, &line);
    assert!(
        said.len() == 1
            && said[0].contains("sent a bad frame")
            && said[0].ends_with("port removed"),
        "{said:?}"
    );
    // The other peer still works; then it goes, in the middle of a frame.
    let f = frame(BROADCAST, mac(5), b"still here");
    pg.send_frame(&f);
    assert_eq!(d.recv(WAIT).as_deref(), Some(&f[..]));
    pg.write(&[0, 0, 0, 60, 1, 2]);
    drop(pg);
    let line = format!("qemu-connect peer '{}' (port ", gone.display());
    sw.wait_line_starting(Stream::Stdout, &line, WAIT)
        .unwrap_or_else(|e| panic!("{e}"));
    let said = sw.lines_starting_with(Stream::Stdout, &line);
    assert_eq!(said.len(), 1, "{said:?}");
    assert!(said[0].contains("in the middle of a frame"), "{said:?}");
    // Counted on SIGUSR1; the switch still switches.
    let _ = counters(&mut sw);
    assert!(
        sw.stderr().contains(&format!(
            "qemu-connect '{}': 1 protocol errors",
            bad.display()
        )),
        "{}",
        sw.output_report()
    );
    let e = sw.port();
    let g = frame(BROADCAST, mac(6), b"on");
    e.send(&g);
    assert_eq!(d.recv(WAIT).as_deref(), Some(&g[..]));
    assert!(sw.is_running());
}

/// A stream peer that stops reading costs only its own queue: the other
/// ports get every frame, the switch never blocks, frames beyond the
/// budget are dropped whole and counted, and what the peer reads later
/// is the oldest frames, whole and in order.
#[test]
fn qemu_connect_peer_that_stops_reading_hurts_only_itself() {
    require_ours!();
    let dir = new_temp_dir();
    let path = dir.path().join("slow.socket");
    let l = UnixListener::bind(&path).unwrap();
    let mut sw = start(&["--qemu-connect"], &path);
    let stalled = QemuPeer::accept(&l);
    let a = sw.port();
    let b = sw.port();
    let n = 3000;
    for i in 0..n {
        let f = numbered_broadcast(mac(1), i);
        a.send(&f);
        assert_eq!(
            b.recv(WAIT).as_deref(),
            Some(&f[..]),
            "frame {i} with a stream peer not reading\n{}",
            sw.output_report()
        );
    }
    let c = counters(&mut sw);
    assert!(counter(&c, "queue full") > 0, "{c:?}");
    let mut got = Vec::new();
    while let Some(f) = stalled.read_frame(Duration::from_millis(300)) {
        got.push(f);
    }
    check_backlog_delivery(&got, mac(1), n, counter(&c, "queue full"));
    assert!(sw.is_running());
}

/// Nothing listening at start-up: a clear message and status 1, and the
/// control socket is not left behind.
#[test]
fn no_peer_at_start_up_is_a_set_up_error() {
    require_ours!();
    for option in ["--bess-connect", "--qemu-connect"] {
        let dir = new_temp_dir();
        let ctl = dir.path().join("ctl");
        let peer = dir.path().join("nobody");
        let out = run_with_timeout(
            &mut SwitchBinary::under_test().command([
                OsString::from("-unix"),
                ctl.clone().into(),
                option.into(),
                peer.clone().into(),
            ]),
            WAIT,
        );
        assert_eq!(out.code, Some(1), "{out}");
        let want = format!(
            ": {option} '{}': cannot connect: No such file or directory (is the peer listening there?)",
            peer.display()
        );
        assert!(out.stderr_str().contains(&want), "{out}");
        assert!(!ctl.exists(), "control socket left behind");
    }
}

/// `port add bess-connect|qemu-connect PATH` on the management socket.
#[test]
fn port_add_connects_at_run_time() {
    require_ours!();
    let dir = new_temp_dir();
    let mgmt = dir.path().join("mgmt");
    let qpath = dir.path().join("q.socket");
    let bpath = dir.path().join("b.socket");
    let ql = UnixListener::bind(&qpath).unwrap();
    let _bl = uml_common::sys::seqpacket::listen(&bpath, 1).unwrap();
    let extra: Vec<OsString> = vec!["--mgmt".into(), mgmt.clone().into()];
    let sw = RunningSwitch::start_with_args(SwitchMode::default(), &extra);
    let ask = |cmd: &str| {
        let mut argv: Vec<OsString> = vec!["--mgmt".into(), mgmt.clone().into()];
        argv.extend(cmd.split(' ').map(OsString::from));
        run_with_timeout(&mut SwitchBinary::under_test().command(argv), WAIT)
    };
    let out = ask(&format!("port add qemu-connect {}", qpath.display()));
    assert!(out.success(), "{out}");
    assert!(
        out.stdout_str()
            .starts_with("connected to qemu-stream peer"),
        "{out}"
    );
    let qlabel = out
        .stdout_str()
        .lines()
        .next()
        .and_then(|l| l.rsplit_once("port "))
        .map(|(_, n)| n.to_string())
        .unwrap_or_default();
    let peer = QemuPeer::accept(&ql);
    exchange(&sw, &peer);
    let out = ask(&format!("port add bess-connect {}", bpath.display()));
    assert!(
        out.success() && out.stdout_str().starts_with("connected to bess peer"),
        "{out}"
    );
    let out = ask("ports");
    assert!(
        out.stdout_str().contains("qemu-connect") && out.stdout_str().contains("bess-connect"),
        "{out}"
    );
    // A port that connects out may be removed: the peer sees its end.
    let label = qlabel.trim().to_string();
    let out = ask(&format!("port remove {label}"));
    assert!(out.success(), "{out}");
    assert!(peer.closed_by_switch(), "{}", sw.output_report());
    let out = ask(&format!(
        "port add qemu-connect {}",
        dir.path().join("none").display()
    ));
    assert!(!out.success(), "{out}");
    assert!(out.stderr_str().contains("cannot connect"), "{out}");
}

/// A peer that writes each prefix and its frame separately (as passt
/// 0.0~git20230309 does, two `send`s per frame) while the switch sends to
/// it: every frame arrives whole.
#[test]
fn qemu_connect_prefix_and_frame_in_separate_writes() {
    require_ours!();
    let dir = new_temp_dir();
    let path = dir.path().join("p.socket");
    let l = UnixListener::bind(&path).unwrap();
    let mut sw = start(&["--qemu-connect"], &path);
    let peer = QemuPeer::accept(&l);
    let d = sw.port();
    for i in 0..2000u32 {
        let f = frame(BROADCAST, mac(1), &i.to_be_bytes());
        peer.write(&(f.len() as u32).to_be_bytes());
        if i % 3 == 0 {
            d.send(&frame(BROADCAST, mac(2), b"x"));
        }
        peer.write(&f);
        assert_eq!(
            d.recv(WAIT).as_deref(),
            Some(&f[..]),
            "{i} {}",
            sw.output_report()
        );
    }
    let _ = counters(&mut sw);
}
