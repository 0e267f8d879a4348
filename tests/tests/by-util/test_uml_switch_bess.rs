//! `uml_switch --bess PATH` at the protocol level: the test process acts
//! as bess guests (the vector driver's `transport=bess`: a
//! `SOCK_SEQPACKET` connection to PATH, one Ethernet frame per message,
//! `docs/vector.md` §2) and as daemon-protocol ports, and checks learning
//! and flooding between both kinds on one switch, many guests on one
//! socket, hostile clients (empty, runt, oversized and garbage messages, a
//! client that stops reading), the purge of a closed port's MACs, the
//! start-up line and the socket's life cycle.
//!
//! `--bess` is new in the rewrite: against Debian's C switch
//! (`UML_SWITCH_UNDER_TEST`) these tests are skipped.

// Test code: a failed setup step should abort the test with its message.
#![allow(clippy::expect_used, clippy::unwrap_used)]

use std::ffi::OsString;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use nix::sys::signal::Signal;
use uml_integration_tests::run_with_timeout;
use uml_integration_tests::switch_client::{
    assert_delivered, check_backlog_delivery, counter, counters, describe_frames, frame,
    learned_port, mac, marker_deliveries, new_temp_dir, numbered_broadcast, BessClient, BessRecv,
    FramePort, RunningSwitch, Stream, SwitchBinary, SwitchMode, BROADCAST, WAIT,
};

/// Returns from the test when the switch under test is the C reference,
/// which has no `--bess`.
macro_rules! require_ours {
    () => {
        if SwitchBinary::under_test().is_c_reference {
            let _ = writeln!(
                std::io::stderr(),
                "SKIP: --bess is not an option of the C switch"
            );
            return;
        }
    };
}

/// A switch with `-unix DIR/ctl --bess DIR/bess`, and the bess path.
fn start() -> (RunningSwitch, PathBuf) {
    start_with(SwitchMode::default())
}

fn start_with(mode: SwitchMode) -> (RunningSwitch, PathBuf) {
    let dir = new_temp_dir();
    let bess = dir.path().join("bess");
    let args: Vec<OsString> = vec!["--bess".into(), bess.clone().into()];
    match RunningSwitch::start_in_with_args(dir, mode, &args) {
        Ok(sw) => (sw, bess),
        Err(e) => panic!("{e}"),
    }
}

/// A bess client of `path` whose connection the switch has accepted
/// (its `New bess connection` line is out).
fn client(sw: &mut RunningSwitch, path: &Path) -> BessClient {
    let before = sw
        .lines_starting_with(Stream::Stdout, "New bess connection: ")
        .len();
    let c = BessClient::connect(path).unwrap_or_else(|e| panic!("{e}\n{}", sw.output_report()));
    sw.wait_until(WAIT, |s| {
        s.lines_starting_with(Stream::Stdout, "New bess connection: ")
            .len()
            > before
    })
    .unwrap_or_else(|e| panic!("bess connection not accepted: {e}"));
    c
}

// ---------------------------------------------------------------------------
// Start-up, help, life cycle
// ---------------------------------------------------------------------------

/// The start-up line names the guest argument; `--help` documents it.
#[test]
fn startup_line_names_the_guest_argument() {
    require_ours!();
    let (sw, bess) = start();
    let lines: Vec<String> = sw.stdout().lines().map(str::to_string).collect();
    assert_eq!(lines.first(), Some(&sw.attached_line()), "{lines:?}");
    // The control socket's line comes first (daemon, then vde argument).
    assert_eq!(
        lines.get(1).map(String::as_str),
        Some(
            format!(
                "control socket '{c}': kernels before 6.16 join with eth0=daemon,,unix,{c}",
                c = sw.ctl().display()
            )
            .as_str()
        ),
        "{lines:?}"
    );
    assert_eq!(
        lines
            .iter()
            .find(|l| l.starts_with("bess socket "))
            .map(String::as_str),
        Some(
            format!(
                "bess socket '{p}': guests join with vec0:transport=bess,dst={p}",
                p = bess.display()
            )
            .as_str()
        ),
        "{lines:?}"
    );
    let help = run_with_timeout(&mut SwitchBinary::under_test().command(["--help"]), WAIT);
    assert!(help.success(), "{help}");
    let text = help.stdout_str();
    assert!(text.contains("--bess PATH"), "{text}");
    assert!(text.contains("vec0:transport=bess,dst=PATH"), "{text}");
}

/// A stale socket is replaced; a live one, a regular file, an unnameable
/// path are refused at start-up (status 1, the control socket removed);
/// SIGTERM removes the bess socket.
#[test]
fn bess_socket_life_cycle() {
    require_ours!();
    let dir = new_temp_dir();
    let ctl = dir.path().join("ctl");
    let bess = dir.path().join("bess");
    let run = |bess: &Path| {
        let mut cmd = SwitchBinary::under_test().command([
            OsString::from("-unix"),
            ctl.clone().into(),
            "--bess".into(),
            bess.into(),
        ]);
        run_with_timeout(&mut cmd, WAIT)
    };
    // A stale socket (its listener gone) is replaced.
    drop(uml_integration_tests::uml_common::sys::seqpacket::listen(&bess, 1).unwrap());
    assert!(bess.exists());
    let dir2 = tempfile::Builder::new().prefix("umlsw").tempdir().unwrap();
    let args: Vec<OsString> = vec!["--bess".into(), bess.clone().into()];
    let mut sw = RunningSwitch::start_in_with_args(dir2, SwitchMode::default(), &args)
        .unwrap_or_else(|e| panic!("stale socket not replaced: {e}"));
    let c = client(&mut sw, &bess);
    // A second switch on the same (live) socket is refused.
    let out = run(&bess);
    assert_eq!(out.code, Some(1), "{out}");
    assert!(
        out.stderr_str()
            .contains("another server is attached to this socket"),
        "{out}"
    );
    assert!(!ctl.exists(), "the refused switch left its control socket");
    drop(c);
    sw.signal(Signal::SIGTERM);
    assert!(sw.wait_exit(WAIT).is_some(), "{}", sw.output_report());
    assert!(!bess.exists(), "SIGTERM left the bess socket");

    // Not a socket: refused, left alone.
    std::fs::write(&bess, b"data").unwrap();
    let out = run(&bess);
    assert_eq!(out.code, Some(1), "{out}");
    assert!(
        out.stderr_str().contains("exists and is not a socket"),
        "{out}"
    );
    assert_eq!(std::fs::read(&bess).unwrap(), b"data");
    assert!(!ctl.exists());
    // A path no guest can name in dst=.
    let out = run(&dir.path().join("a,b"));
    assert_eq!(out.code, Some(1), "{out}");
    assert!(out.stderr_str().contains("cannot name a path"), "{out}");
    assert!(!ctl.exists());
}

// ---------------------------------------------------------------------------
// Forwarding
// ---------------------------------------------------------------------------

/// Learning and flooding between bess ports and a daemon port on one
/// switch; the connection's pid and uid are in its log line.
#[test]
fn bess_and_daemon_ports_learn_and_flood() {
    require_ours!();
    let (mut sw, bess) = start();
    let b = client(&mut sw, &bess);
    let line = sw.lines_starting_with(Stream::Stdout, "New bess connection: ")[0].clone();
    let uid = nix::unistd::getuid().as_raw();
    let want = format!("(pid {}, uid {uid})", std::process::id());
    assert!(line.ends_with(&want), "{line:?} should end with {want:?}");
    let d = sw.port();
    let c = client(&mut sw, &bess);

    // Broadcast from the bess port: everyone else gets it.
    let bc = frame(BROADCAST, mac(1), b"bess broadcast");
    b.send(&bc);
    let got = marker_deliveries(&sw, &[&b, &d, &c]);
    assert_delivered(&sw, &got, 1, &[&bc], "daemon port, bess broadcast");
    assert_delivered(&sw, &got, 2, &[&bc], "bess port, bess broadcast");
    let b_label = learned_port(&mut sw, mac(1));
    assert!(line.contains(&format!("port {b_label} ")), "{line:?}");

    // Daemon port to the learned bess MAC: only b.
    let uc = frame(mac(1), mac(2), b"daemon to bess");
    d.send(&uc);
    let got = marker_deliveries(&sw, &[&d, &b, &c]);
    assert_delivered(&sw, &got, 1, &[&uc], "bess port b, unicast from daemon");
    assert_delivered(&sw, &got, 2, &[], "bess port c, unicast for b");
    learned_port(&mut sw, mac(2));

    // Bess port to the learned daemon MAC: only d.
    let uc = frame(mac(2), mac(1), b"bess to daemon");
    b.send(&uc);
    let got = marker_deliveries(&sw, &[&b, &d, &c]);
    assert_delivered(&sw, &got, 1, &[&uc], "daemon port, unicast from bess");
    assert_delivered(&sw, &got, 2, &[], "bess port c, unicast for d");

    // Unknown unicast from the daemon port floods to both bess ports.
    let unknown = frame(mac(9), mac(2), b"to nobody yet");
    d.send(&unknown);
    let got = marker_deliveries(&sw, &[&d, &b, &c]);
    assert_delivered(&sw, &got, 1, &[&unknown], "bess port b, unknown unicast");
    assert_delivered(&sw, &got, 2, &[&unknown], "bess port c, unknown unicast");
}

/// Many guests on one socket (and a second socket): each gets every
/// broadcast of the others and only its own unicast.
#[test]
fn many_bess_clients_share_one_socket() {
    require_ours!();
    let dir = new_temp_dir();
    let first = dir.path().join("bess");
    let second = dir.path().join("bess2");
    let args: Vec<OsString> = vec![
        "--bess".into(),
        first.clone().into(),
        "--bess".into(),
        second.clone().into(),
    ];
    let mut sw = RunningSwitch::start_in_with_args(dir, SwitchMode::default(), &args)
        .unwrap_or_else(|e| panic!("{e}"));
    let n = 24u8;
    let clients: Vec<BessClient> = (0..n)
        .map(|i| client(&mut sw, if i % 3 == 2 { &second } else { &first }))
        .collect();
    // Broadcasts: every client learns its MAC; everyone else receives.
    let broadcasts: Vec<Vec<u8>> = (0..n)
        .map(|i| frame(BROADCAST, mac(i + 1), &[b'b', i]))
        .collect();
    for (c, f) in clients.iter().zip(&broadcasts) {
        c.send(f);
        // One at a time, so each receiver's order is known.
        for (j, other) in clients.iter().enumerate() {
            if !std::ptr::eq(other, c) {
                let got = other.recv(WAIT);
                assert_eq!(
                    got.as_deref(),
                    Some(&f[..]),
                    "client {j}: {}",
                    sw.output_report()
                );
            }
        }
    }
    let mut labels: Vec<String> = (0..n).map(|i| learned_port(&mut sw, mac(i + 1))).collect();
    labels.sort();
    labels.dedup();
    assert_eq!(labels.len(), usize::from(n), "{labels:?}");
    // Unicast around the ring: only the addressee receives.
    for i in 0..n {
        let to = (i + 1) % n;
        let f = frame(mac(to + 1), mac(i + 1), &[b'u', i]);
        clients[usize::from(i)].send(&f);
        let got = clients[usize::from(to)].recv(WAIT);
        assert_eq!(got.as_deref(), Some(&f[..]), "{}", sw.output_report());
    }
    for (j, c) in clients.iter().enumerate() {
        let extra = c.drain(Duration::from_millis(50));
        assert!(
            extra.is_empty(),
            "client {j} got more than its unicast: {}",
            describe_frames(&extra)
        );
    }
}

// ---------------------------------------------------------------------------
// Hostile clients
// ---------------------------------------------------------------------------

/// Empty (also 1000 in a row), runt, oversized and garbage messages: runts
/// and frames longer than 1514 bytes (the switch's largest without
/// `--mtu`) are dropped and counted (not truncated, unlike on daemon
/// ports), the client keeps its port, and the others keep working.
#[test]
fn hostile_messages_affect_only_their_sender() {
    require_ours!();
    let (mut sw, bess) = start();
    let a = client(&mut sw, &bess);
    let d = sw.port();
    let h = client(&mut sw, &bess);
    let before = counters(&mut sw);

    h.send(&[]);
    h.send(&[0xff; 5]);
    h.send(&frame(BROADCAST, mac(9), b"")[..13]);
    // Many more empty messages than a receive batch holds (and than h's
    // send buffer holds, so the switch reads full batches of them): a
    // full batch of empty entries is also what end of file looks like,
    // but h has not closed, so it keeps its port.
    for _ in 0..1000 {
        h.send(&[]);
    }
    let big = frame(BROADCAST, mac(9), &[0x5a; 3000]);
    h.send(&big);
    // The others got nothing of the runts and of the long frame.
    let got = marker_deliveries(&sw, &[&h, &a, &d]);
    assert_delivered(&sw, &got, 1, &[], "bess port a");
    assert_delivered(&sw, &got, 2, &[], "daemon port d");
    // Garbage: pseudo-random lengths and bytes, multicast sources (bit 0
    // of byte 6 set) so that nothing is learned from them, in groups the
    // daemon port's receive queue (net.unix.max_dgram_qlen, 10) holds.
    let mut seed = 0x1234_5678_u32;
    for _ in 0..20 {
        let mut garbage = Vec::new();
        for _ in 0..5 {
            seed = seed.wrapping_mul(1_664_525).wrapping_add(1_013_904_223);
            let len = 14 + (seed as usize % 1500);
            let mut g: Vec<u8> = (0..len)
                .map(|k| (seed >> (k % 24)) as u8 ^ k as u8)
                .collect();
            g[0] |= 1; // multicast destination: flooded
            g[6] |= 1;
            h.send(&g);
            garbage.push(g);
        }
        let want: Vec<&[u8]> = garbage.iter().map(Vec::as_slice).collect();
        let got = marker_deliveries(&sw, &[&h, &a, &d]);
        assert_delivered(&sw, &got, 1, &want, "bess port a, garbage");
        assert_delivered(&sw, &got, 2, &want, "daemon port d, garbage");
    }

    let after = counters(&mut sw);
    assert_eq!(
        counter(&after, "short") - counter(&before, "short"),
        1003,
        "{after:?}"
    );
    assert_eq!(
        counter(&after, "truncated") - counter(&before, "truncated"),
        0,
        "{after:?}"
    );
    assert_eq!(
        counter(&after, "too long") - counter(&before, "too long"),
        1,
        "{after:?}"
    );
    // h still has its port, and a and d still talk.
    let bc = frame(BROADCAST, mac(3), b"still here");
    h.send(&bc);
    let uc = frame(BROADCAST, mac(1), b"a to all");
    a.send(&uc);
    let got = marker_deliveries(&sw, &[&a, &d, &h]);
    assert_delivered(&sw, &got, 1, &[&bc, &uc], "daemon port d");
    assert_delivered(&sw, &got, 2, &[&uc], "hostile port h");
    assert_eq!(
        sw.count_containing(Stream::Stdout, " disconnected"),
        0,
        "{}",
        sw.output_report()
    );
}

/// A guest that stops reading fills only its own connection and backlog:
/// the others get every frame, its drops (beyond its backlog) are
/// counted (not printed per frame), what it gets when it reads again is
/// the oldest frames in order, at least a backlog's worth beyond what its
/// socket held, and then it gets fresh frames again.
#[test]
fn a_client_that_stops_reading_hurts_only_itself() {
    require_ours!();
    let (mut sw, bess) = start();
    let a = client(&mut sw, &bess);
    let b = client(&mut sw, &bess);
    let stalled = client(&mut sw, &bess);
    let d = sw.port();
    // Full-size frames, 4.3 MiB in all: more than the connection and the
    // backlog hold.
    let n = 3000;
    let numbered = |i: usize| numbered_broadcast(mac(1), i);
    let t = Instant::now();
    for i in 0..n {
        let f = numbered(i);
        a.send(&f);
        for (name, p) in [("bess b", &b as &dyn FramePort), ("daemon d", &d)] {
            let got = p.recv_frame(WAIT);
            assert_eq!(
                got.as_deref(),
                Some(&f[..]),
                "frame {i} of {n} to {name} with a client not reading\n{}",
                sw.output_report()
            );
        }
    }
    let took = t.elapsed();
    let c = counters(&mut sw);
    assert!(
        counter(&c, "queue full") > 0,
        "the stalled client should have lost frames: {c:?}"
    );
    assert!(
        sw.stderr().lines().count() < 10,
        "drops printed per frame?\n{}",
        sw.output_report()
    );
    eprintln!("{n} broadcasts past a stalled client in {took:?}; {c:?}");

    // Reading again, it gets the oldest frames in order: those its
    // connection held, then its backlog.
    let queued = stalled.drain(Duration::from_millis(300));
    check_backlog_delivery(&queued, mac(1), n, counter(&c, "queue full"));
    let deadline = Instant::now() + WAIT;
    loop {
        let f = frame(BROADCAST, mac(1), b"again");
        a.send(&f);
        assert_eq!(b.recv(WAIT).as_deref(), Some(&f[..]));
        assert_eq!(d.recv(WAIT).as_deref(), Some(&f[..]));
        if stalled.recv(Duration::from_millis(100)).as_deref() == Some(&f[..]) {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the client that read again got nothing\n{}",
            sw.output_report()
        );
    }
}

/// A closed connection removes its port and every MAC learned on it:
/// unicast to those MACs is flooded again.
#[test]
fn disconnect_purges_every_mac_of_the_port() {
    require_ours!();
    let (mut sw, bess) = start();
    let mut a = client(&mut sw, &bess);
    let b = client(&mut sw, &bess);
    let d = sw.port();
    for m in [mac(1), mac(3)] {
        a.send(&frame(BROADCAST, m, b"learn me"));
    }
    let got = marker_deliveries(&sw, &[&a, &b, &d]);
    assert_eq!(got[2].len(), 2, "{}", describe_frames(&got[2]));
    let label = learned_port(&mut sw, mac(1));
    learned_port(&mut sw, mac(3));
    // While a is connected, unicast to its MACs goes to a only.
    let uc = frame(mac(3), mac(2), b"for a");
    d.send(&uc);
    let got = marker_deliveries(&sw, &[&d, &a, &b]);
    assert_delivered(&sw, &got, 1, &[&uc], "a, while connected");
    assert_delivered(&sw, &got, 2, &[], "b, while a is connected");

    a.disconnect();
    let gone = format!("Bess port {label} (pid ");
    sw.wait_until(WAIT, |s| {
        s.lines_starting_with(Stream::Stdout, &gone)
            .iter()
            .any(|l| l.ends_with(" disconnected"))
    })
    .unwrap_or_else(|e| panic!("no disconnect line for port {label}: {e}"));
    for m in [mac(1), mac(3)] {
        let uc = frame(m, mac(2), b"after a left");
        d.send(&uc);
        let got = marker_deliveries(&sw, &[&d, &b]);
        assert_delivered(&sw, &got, 1, &[&uc], "b: unicast to a purged MAC floods");
    }
    assert!(
        sw.count_containing(Stream::Stdout, "unknown Addr: ") >= 1,
        "{}",
        sw.output_report()
    );
    // The switch writes nothing to a closed connection and stays up.
    assert!(sw.is_running());
    match b.recv_event(Duration::from_millis(20)) {
        BessRecv::Quiet => {}
        other => panic!("b: {other:?}"),
    }
}

/// Hub mode treats bess ports like any other port.
#[test]
fn hub_mode_repeats_to_bess_ports() {
    require_ours!();
    let (mut sw, bess) = start_with(SwitchMode {
        hub: true,
        ..SwitchMode::default()
    });
    let a = client(&mut sw, &bess);
    let b = client(&mut sw, &bess);
    let c = client(&mut sw, &bess);
    a.send(&frame(BROADCAST, mac(1), b"learn a"));
    let got = marker_deliveries(&sw, &[&a, &b, &c]);
    assert_eq!(got[1].len(), 1);
    learned_port(&mut sw, mac(1));
    let uc = frame(mac(1), mac(2), b"b to a");
    b.send(&uc);
    let got = marker_deliveries(&sw, &[&b, &a, &c]);
    assert_delivered(&sw, &got, 1, &[&uc], "a");
    assert_delivered(&sw, &got, 2, &[&uc], "c (hub)");
}

/// Frames a guest sent right before closing are forwarded (they usually
/// arrive in the same receive as the end of file); then its port and
/// MACs are gone.
#[test]
fn frames_sent_just_before_closing_are_forwarded_then_purged() {
    require_ours!();
    let (mut sw, bess) = start();
    let b = client(&mut sw, &bess);
    let c = client(&mut sw, &bess);
    for round in 0..5u8 {
        let mut a = client(&mut sw, &bess);
        let sent: Vec<Vec<u8>> = (0..3u8)
            .map(|k| frame(BROADCAST, mac(1), &[b'l', round, k]))
            .collect();
        for f in &sent {
            a.send(f);
        }
        a.disconnect();
        for f in &sent {
            assert_eq!(
                b.recv(WAIT).as_deref(),
                Some(&f[..]),
                "round {round}\n{}",
                sw.output_report()
            );
            assert_eq!(c.recv(WAIT).as_deref(), Some(&f[..]));
        }
        let closed = usize::from(round) + 1;
        sw.wait_until(WAIT, |s| {
            s.count_containing(Stream::Stdout, ") disconnected") >= closed
        })
        .unwrap_or_else(|e| panic!("round {round}: no disconnect: {e}"));
        // mac(1) went with a's port: unicast to it floods to c.
        let uc = frame(mac(1), mac(2), &[b'u', round]);
        b.send(&uc);
        let got = marker_deliveries(&sw, &[&b, &c]);
        assert_delivered(&sw, &got, 1, &[&uc], "c: unicast to a purged MAC");
    }
    assert_eq!(
        sw.count_containing(Stream::Stdout, "New port -1"),
        0,
        "{}",
        sw.output_report()
    );
}
