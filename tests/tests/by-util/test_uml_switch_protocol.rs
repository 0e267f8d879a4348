//! `uml_switch` at the protocol level: the test process acts as one or
//! more UMLs, speaking the control protocol (v0/v1/v3 requests,
//! `docs/switch.md` §4) and the data protocol (raw Ethernet frames over
//! abstract-address datagram sockets, `docs/switch.md` §5–§6) directly,
//! and checks forwarding, learning, the messages of `docs/switch.md`
//! §2–§8 and the required handling of the malformed cases of
//! `docs/switch.md` §4.4, signals and start-up errors (`docs/switch.md`
//! §3, §7). In this file, a bare § number is one of `docs/switch.md`.
//!
//! The binary under test is `target/<profile>/uml_switch`, or the program
//! in `UML_SWITCH_UNDER_TEST` (e.g. `/usr/bin/uml_switch`, then run under
//! `stdbuf -oL -eL`). Against Debian's C switch the tests marked
//! "deviation" in their doc comment are expected to fail: they specify the
//! rewrite's behaviour where `docs/switch.md` §4.4/§7 require a fix.
//!
//! Streams (observed with the C switch, kept by the rewrite): stdout has
//! `PROG attached ...`, `PROG will be a hub ...`, `Control protocol 0
//! compatibility`, `New connection`, ` Addr: ...`, `unknown Addr: ...`,
//! `Disconnect`, `Bad request`, `Bad request type : N`,
//! `EOF from new port` and `Caught signal 2, ...`; stderr has
//! `Version 2 is not supported`, `Request for a version N port, ...`,
//! `No port associated with descriptor N`, the usage text and the
//! "has another server attached" block.
//!
//! No network namespace is needed: only Unix sockets are used, and the
//! switch and the fake clients share the test's namespace (abstract names
//! are unique per test process and client).

// Test code: a failed setup step should abort the test with its message.
#![allow(clippy::expect_used, clippy::unwrap_used)]

use std::io::Write;
use std::os::unix::net::{UnixListener, UnixStream};
use std::thread;
use std::time::{Duration, Instant};

use nix::sys::signal::Signal;
use uml_integration_tests::run_with_timeout;
use uml_integration_tests::switch_client::{
    bind_data_socket, check_backlog_delivery, connect_control, counter, counters, describe_frames,
    describe_status, frame, mac, mac_str, new_temp_dir, numbered_broadcast, read_control,
    read_control_until_closed, read_reply, request_versioned, FakePort, RunningSwitch, Stream,
    SwitchBinary, SwitchMode, Version, BROADCAST, MAX_FRAME, SWITCH_MAGIC, WAIT,
};
use uml_integration_tests::uml_common::testrng::SplitMix64;

/// How long a closed connection may take to show EOF.
const CLOSE_WAIT: Duration = Duration::from_secs(3);

// ---------------------------------------------------------------------------
// Helpers
// ---------------------------------------------------------------------------

/// What each of `ports` received since the last check.
///
/// Frames are collected up to marker frames (broadcasts from a multicast
/// source, never learned): `ports[0]` sends one that reaches every other
/// port, `ports[1]` one that reaches `ports[0]`. The switch handles its
/// data socket in order and sends to each port in order, so anything a
/// port was going to get from frames sent earlier arrives before the
/// marker — no "nothing arrived within N ms" guesswork.
fn deliveries(sw: &RunningSwitch, ports: &[&FakePort]) -> Vec<Vec<Vec<u8>>> {
    assert!(ports.len() >= 2, "deliveries() needs at least two ports");
    let m0 = ports[0].send_marker();
    let m1 = ports[1].send_marker();
    ports
        .iter()
        .enumerate()
        .map(|(i, p)| {
            let mut got = Vec::new();
            if i != 0 {
                got.extend(
                    p.recv_until_marker(m0, WAIT)
                        .unwrap_or_else(|e| panic!("port #{i}: {e}\n{}", sw.output_report())),
                );
            }
            if i != 1 {
                got.extend(
                    p.recv_until_marker(m1, WAIT)
                        .unwrap_or_else(|e| panic!("port #{i}: {e}\n{}", sw.output_report())),
                );
            }
            got
        })
        .collect()
}

/// Asserts that port #i of the last [`deliveries`] got exactly `want`.
#[track_caller]
fn assert_got(sw: &RunningSwitch, got: &[Vec<Vec<u8>>], i: usize, want: &[&[u8]], what: &str) {
    let want: Vec<Vec<u8>> = want.iter().map(|f| f.to_vec()).collect();
    assert!(
        got[i] == want,
        "{what}: port #{i} received {} but should have received {}\n{}",
        describe_frames(&got[i]),
        describe_frames(&want),
        sw.output_report()
    );
}

/// Waits for ` Addr: <mac> New port N` (without `old port`) and returns N.
fn learned_port(sw: &mut RunningSwitch, m: [u8; 6]) -> String {
    let prefix = format!(" Addr: {} New port ", mac_str(m));
    let line = sw
        .wait_line_starting(Stream::Stdout, &prefix, WAIT)
        .unwrap_or_else(|e| panic!("{e}"));
    let id = line[prefix.len()..].to_string();
    assert!(
        !id.is_empty() && id.bytes().all(|b| b.is_ascii_digit()),
        "learning line {line:?} should end in a port number (spec §6.1)"
    );
    id
}

#[track_caller]
fn wait_line(sw: &mut RunningSwitch, stream: Stream, line: &str, count: usize) {
    if let Err(e) = sw.wait_line(stream, line, count, WAIT) {
        panic!("{e}");
    }
}

/// Asserts that no line of either stream contains `needle`.
#[track_caller]
fn assert_no_line(sw: &RunningSwitch, needle: &str, why: &str) {
    let n = sw.count_containing(Stream::Either, needle);
    assert!(
        n == 0,
        "{why}: found {n} line(s) containing {needle:?}\n{}",
        sw.output_report()
    );
}

/// Two fresh ports exchange a broadcast: the switch is still working.
#[track_caller]
fn assert_switch_works(sw: &RunningSwitch, tag: &str) {
    let a = sw.port();
    let b = sw.port();
    let f = frame(BROADCAST, [0x02, 0xee, 0, 0, 0, 1], tag.as_bytes());
    a.send(&f);
    let got = deliveries(sw, &[&a, &b]);
    assert_got(sw, &got, 1, &[&f], &format!("switch still working ({tag})"));
}

/// Connects to the control socket (bounded).
/// Waits (bounded) until the switch sleeps in its event loop: it has
/// handled everything that was pending.
fn wait_switch_idle(sw: &RunningSwitch, after: &str) {
    assert!(
        uml_integration_tests::wait_idle(sw.pid(), WAIT),
        "the switch did not become idle after {after}\n{}",
        sw.output_report()
    );
}

fn connect(sw: &RunningSwitch) -> UnixStream {
    connect_control(sw.ctl(), WAIT).unwrap_or_else(|e| panic!("{e}\n{}", sw.output_report()))
}

/// A connection that sent `bytes` and expects the switch to close it
/// without a reply; returns how it ended.
#[track_caller]
fn expect_closed_without_reply(sw: &RunningSwitch, s: &mut UnixStream, what: &str) {
    let (data, end) = read_control_until_closed(s, CLOSE_WAIT);
    assert!(
        data.is_empty(),
        "{what}: the switch answered {} bytes instead of closing\n{}",
        data.len(),
        sw.output_report()
    );
    assert!(
        end.closed(),
        "{what}: the switch should close the connection (EOF within {CLOSE_WAIT:?}), \
         but reading showed {end:?}\n{}",
        sw.output_report()
    );
}

/// `n` deterministic pseudo-random bytes.
fn pseudo_random_bytes(seed: u64, n: usize) -> Vec<u8> {
    SplitMix64::new(seed).bytes(n)
}

// ---------------------------------------------------------------------------
// 1. Switching, learning, flooding, purge on disconnect
// ---------------------------------------------------------------------------

/// S5-style trace: broadcast, learned unicast, unknown unicast, and the
/// MAC purge when a port's control connection closes (`docs/switch.md`
/// §6.1, §6.2, §4.3).
#[test]
fn learns_forwards_floods_and_forgets_a_closed_port() {
    let mut sw = RunningSwitch::start();
    let mut a = sw.port();
    let b = sw.port();
    let c = sw.port();
    wait_line(&mut sw, Stream::Stdout, "New connection", 3);

    // The reply is the switch's one data address: abstract, the same for
    // every port (`docs/switch.md` §4.2).
    let reply = a.reply.clone().unwrap();
    assert_eq!(
        &reply[..3],
        &[1, 0, 0],
        "reply should be an abstract AF_UNIX address"
    );
    assert_eq!(
        b.reply.as_ref(),
        Some(&reply),
        "every port gets the same reply"
    );

    // Broadcast from A reaches B and C, not A.
    let bc = frame(BROADCAST, mac(1), b"broadcast from A");
    a.send(&bc);
    let got = deliveries(&sw, &[&a, &b, &c]);
    assert_got(&sw, &got, 0, &[], "A's own broadcast");
    assert_got(&sw, &got, 1, &[&bc], "broadcast from A");
    assert_got(&sw, &got, 2, &[&bc], "broadcast from A");
    let port_a = learned_port(&mut sw, mac(1));

    // Unicast from B to A's learned MAC reaches only A.
    let uc = frame(mac(1), mac(2), b"unicast B to A");
    b.send(&uc);
    let got = deliveries(&sw, &[&a, &b, &c]);
    assert_got(&sw, &got, 0, &[&uc], "unicast to A's learned MAC");
    assert_got(&sw, &got, 1, &[], "unicast to A's learned MAC");
    assert_got(&sw, &got, 2, &[], "unicast to A's learned MAC");
    let port_b = learned_port(&mut sw, mac(2));
    assert_ne!(port_a, port_b, "two ports must have different ids");

    // Unknown unicast is flooded to everyone but the sender, and the
    // message names the *source* MAC (C quirk kept, C pitfall 33,
    // `docs/switch.md` §6.2).
    let unk = frame(mac(9), mac(1), b"to an unknown MAC");
    a.send(&unk);
    let got = deliveries(&sw, &[&a, &b, &c]);
    assert_got(&sw, &got, 0, &[], "unknown unicast from A");
    assert_got(&sw, &got, 1, &[&unk], "unknown unicast from A");
    assert_got(&sw, &got, 2, &[&unk], "unknown unicast from A");
    wait_line(
        &mut sw,
        Stream::Stdout,
        &format!("unknown Addr: 02:00:00:00:00:01 from port {port_a}"),
        1,
    );

    // A closes its control connection: `Disconnect`, port and MAC gone.
    a.disconnect();
    wait_line(&mut sw, Stream::Stdout, "Disconnect", 1);
    let after = frame(mac(1), mac(2), b"to A after it left");
    b.send(&after);
    let got = deliveries(&sw, &[&b, &c]);
    assert_got(
        &sw,
        &got,
        1,
        &[&after],
        "frame to a closed port's MAC must be flooded",
    );
    assert_got(&sw, &got, 0, &[], "frame to a closed port's MAC (sender)");
    assert!(
        a.recv(Duration::from_millis(100)).is_none(),
        "a closed port must not receive frames\n{}",
        sw.output_report()
    );
    wait_line(
        &mut sw,
        Stream::Stdout,
        &format!("unknown Addr: 02:00:00:00:00:02 from port {port_b}"),
        1,
    );
    assert_eq!(sw.count_lines(Stream::Stdout, "New connection"), 3);
}

/// A MAC seen on another port moves there: ` Addr: M New port P old port Q`
/// (new port first, C pitfall 33, `docs/switch.md` §6.1) and unicast
/// follows it.
#[test]
fn moved_mac_prints_old_port_and_unicast_follows_it() {
    let mut sw = RunningSwitch::start();
    let a = sw.port();
    let b = sw.port();
    let c = sw.port();
    let m = mac(0x31);

    let f1 = frame(BROADCAST, m, b"M from A");
    a.send(&f1);
    let got = deliveries(&sw, &[&a, &b, &c]);
    assert_got(&sw, &got, 1, &[&f1], "broadcast from A");
    let port_a = learned_port(&mut sw, m);

    let f2 = frame(BROADCAST, m, b"M from B now");
    b.send(&f2);
    let got = deliveries(&sw, &[&a, &b, &c]);
    assert_got(&sw, &got, 0, &[&f2], "broadcast from B");
    let prefix = format!(" Addr: {} New port ", mac_str(m));
    sw.wait_until(WAIT, |s| {
        s.lines_starting_with(Stream::Stdout, &prefix).len() >= 2
    })
    .unwrap_or_else(|e| panic!("waiting for the second learning line of {prefix:?}: {e}"));
    let lines = sw.lines_starting_with(Stream::Stdout, &format!(" Addr: {} New port ", mac_str(m)));
    assert_eq!(lines.len(), 2, "one learning line per move: {lines:?}");
    let rest = lines[1]
        .strip_prefix(&format!(" Addr: {} New port ", mac_str(m)))
        .unwrap();
    let (port_b, old) = rest
        .split_once(" old port ")
        .unwrap_or_else(|| panic!("second learning line {:?} lacks ' old port '", lines[1]));
    assert_eq!(old, port_a, "old port must be A's id: {:?}", lines[1]);
    assert_ne!(port_b, port_a);

    let uc = frame(m, mac(0x33), b"unicast to moved MAC");
    c.send(&uc);
    let got = deliveries(&sw, &[&a, &b, &c]);
    assert_got(
        &sw,
        &got,
        1,
        &[&uc],
        "unicast to the moved MAC goes to its new port",
    );
    assert_got(
        &sw,
        &got,
        0,
        &[],
        "unicast to the moved MAC must not go to the old port",
    );
}

/// Deviation (C purges only the last MAC of a port, C pitfall 29,
/// `docs/switch.md` §4.3): when a port that learned two MACs disconnects,
/// neither is delivered as known unicast any more; both are flooded.
#[test]
fn disconnect_purges_every_mac_of_the_port() {
    let mut sw = RunningSwitch::start();
    let a = sw.port();
    let b = sw.port();
    let mut d = sw.port();
    let (m3, m4) = (mac(0x43), mac(0x44));

    let f3 = frame(BROADCAST, m3, b"first MAC of D");
    let f4 = frame(BROADCAST, m4, b"second MAC of D");
    d.send(&f3);
    d.send(&f4);
    let got = deliveries(&sw, &[&a, &b, &d]);
    assert_got(&sw, &got, 0, &[&f3, &f4], "D's broadcasts");
    learned_port(&mut sw, m3);
    learned_port(&mut sw, m4);

    // Known unicast: only D.
    let u3 = frame(m3, mac(0x41), b"to m3 while D is up");
    let u4 = frame(m4, mac(0x41), b"to m4 while D is up");
    a.send(&u3);
    a.send(&u4);
    let got = deliveries(&sw, &[&a, &b, &d]);
    assert_got(&sw, &got, 2, &[&u3, &u4], "known unicast to D's MACs");
    assert_got(&sw, &got, 1, &[], "known unicast to D's MACs");

    d.disconnect();
    wait_line(&mut sw, Stream::Stdout, "Disconnect", 1);
    let v3 = frame(m3, mac(0x41), b"to m3 after D left");
    let v4 = frame(m4, mac(0x41), b"to m4 after D left");
    a.send(&v3);
    a.send(&v4);
    let got = deliveries(&sw, &[&a, &b]);
    assert_got(
        &sw,
        &got,
        1,
        &[&v3, &v4],
        "both MACs of the closed port must be purged, so both frames are flooded to B",
    );
    assert!(
        d.recv(Duration::from_millis(100)).is_none(),
        "the closed port D must not receive frames\n{}",
        sw.output_report()
    );
}

/// Data on an established control connection drops the port: `Bad
/// request` (stdout), connection closed, its MAC forgotten
/// (`docs/switch.md` §4.3). A v1 port sends one byte; a v3 port sends 200
/// bytes, more than the 128-byte vde description tail a rewrite may ignore
/// right after a v3 request (`docs/switch.md` §8.1).
#[test]
fn data_on_an_established_port_drops_it() {
    let mut sw = RunningSwitch::start();
    let mut a = sw.port_version(Version::V1);
    let mut e = sw.port();
    let b = sw.port();
    let c = sw.port();
    let fa = frame(BROADCAST, mac(1), b"A before its extra byte");
    let fe = frame(BROADCAST, mac(5), b"E before its extra bytes");
    a.send(&fa);
    e.send(&fe);
    let got = deliveries(&sw, &[&a, &e, &b, &c]);
    assert_got(&sw, &got, 2, &[&fa, &fe], "broadcasts from A and E");
    learned_port(&mut sw, mac(1));
    learned_port(&mut sw, mac(5));

    a.control().write_all(b"x").unwrap();
    e.control().write_all(&[0x42; 200]).unwrap();
    wait_line(&mut sw, Stream::Stdout, "Bad request", 2);
    expect_closed_without_reply(&sw, a.control(), "1 byte on an established v1 port");
    expect_closed_without_reply(&sw, e.control(), "200 bytes on an established v3 port");
    let ua = frame(mac(1), mac(2), b"to A after its extra byte");
    let ue = frame(mac(5), mac(2), b"to E after its extra bytes");
    b.send(&ua);
    b.send(&ue);
    let got = deliveries(&sw, &[&b, &c]);
    assert_got(
        &sw,
        &got,
        1,
        &[&ua, &ue],
        "the dropped ports' MACs must be forgotten, so the frames are flooded",
    );
    for (name, p) in [("A", &a), ("E", &e)] {
        assert!(
            p.recv(Duration::from_millis(100)).is_none(),
            "dropped port {name} must not receive frames\n{}",
            sw.output_report()
        );
    }
}

/// A datagram from an address that no port registered is never learned
/// (it may be flooded or dropped, `docs/switch.md` §4.4, C pitfall 31).
#[test]
fn datagrams_from_unregistered_senders_are_never_learned() {
    let sw = RunningSwitch::start();
    let a = sw.port();
    let b = sw.port();
    let c = sw.port();
    let (stranger, _) = bind_data_socket().unwrap();
    let switch_addr =
        uml_integration_tests::switch_client::reply_to_addr(a.reply.as_ref().unwrap()).unwrap();
    let m7 = mac(0x77);
    stranger
        .send_to_addr(&frame(BROADCAST, m7, b"from a stranger"), &switch_addr)
        .unwrap();
    // Sync: whatever the switch did with it is done once the markers pass;
    // flooding or dropping are both allowed.
    let _ = deliveries(&sw, &[&a, &b, &c]);
    let uc = frame(m7, mac(1), b"to the stranger's MAC");
    a.send(&uc);
    let got = deliveries(&sw, &[&a, &b, &c]);
    assert_got(
        &sw,
        &got,
        1,
        &[&uc],
        "the stranger's MAC must stay unknown (flooded)",
    );
    assert_got(
        &sw,
        &got,
        2,
        &[&uc],
        "the stranger's MAC must stay unknown (flooded)",
    );
    assert_eq!(
        sw.lines_starting_with(Stream::Stdout, &format!(" Addr: {}", mac_str(m7))),
        Vec::<String>::new(),
        "a MAC from an unregistered sender must not be learned"
    );
}

/// Sends `n` broadcasts from `from` (payloads `{tag}0`, `{tag}1`, ...);
/// `reader` must receive each before the next is sent (`context` says why
/// in the failure message).
#[track_caller]
fn broadcasts_reach(
    sw: &RunningSwitch,
    from: &FakePort,
    reader: &FakePort,
    n: usize,
    tag: &str,
    context: &str,
) {
    for i in 0..n {
        let f = frame(BROADCAST, mac(1), format!("{tag}{i}").as_bytes());
        from.send(&f);
        let got = reader.recv(WAIT);
        assert_eq!(
            got.as_ref(),
            Some(&f),
            "frame {i} of {n} to the reading port ({context})\n{}",
            sw.output_report()
        );
    }
}

/// Number of output lines (both streams).
fn output_lines(sw: &RunningSwitch) -> usize {
    sw.stdout().lines().count() + sw.stderr().lines().count()
}

/// Deviation (C prints `send_sock ...` per frame): a port whose address
/// nobody bound is reported at most once, not once per frame
/// (`docs/switch.md` §4.4).
#[test]
fn unreachable_port_is_not_reported_per_frame() {
    let sw = RunningSwitch::start();
    let a = sw.port();
    let b = sw.port();
    let dead = sw.port();
    drop(dead.data); // its registered address is now unbound
    let dead_control = dead.control;
    let before = output_lines(&sw);
    for i in 0..20u8 {
        let f = frame(BROADCAST, mac(1), &[b'u', i]);
        a.send(&f);
        // B reads each frame, so its own queue never fills.
        assert_eq!(
            b.recv(WAIT).as_ref(),
            Some(&f),
            "frame {i} to the live port next to an unreachable one\n{}",
            sw.output_report()
        );
    }
    let got = deliveries(&sw, &[&a, &b]);
    assert_got(&sw, &got, 1, &[], "nothing else for the live port");
    let grown = output_lines(&sw) - before;
    // One learning line for mac(1), at most a couple of report lines.
    assert!(
        grown <= 3,
        "20 frames to a port whose address is unbound added {grown} output lines; \
         report once per port, not per frame\n{}",
        sw.output_report()
    );
    drop(dead_control);
}

/// Deviation (C prints one `send_sock ...` line per dropped frame): when a
/// port's receive queue is full, frames to it are dropped silently (or
/// counted), other ports still get everything, and sends never block.
#[test]
fn full_receive_queue_drops_are_not_logged_per_frame() {
    let qlen: usize = std::fs::read_to_string("/proc/sys/net/unix/max_dgram_qlen")
        .ok()
        .and_then(|s| s.trim().parse().ok())
        .unwrap_or(10);
    let sw = RunningSwitch::start();
    let a = sw.port();
    let c = sw.port();
    let slow = sw.port(); // never reads
    let before = output_lines(&sw);
    let n = (qlen + 40).min(2000);
    let start = Instant::now();
    // C reads each one, so its own queue (default qlen 10) never
    // overflows: only `slow` should drop.
    broadcasts_reach(&sw, &a, &c, n, "q", "a full port must not stall others");
    let got = deliveries(&sw, &[&a, &c]);
    assert_got(&sw, &got, 1, &[], "nothing left for the reading port");
    assert!(start.elapsed() < Duration::from_secs(20));
    let grown = output_lines(&sw) - before;
    assert!(
        grown <= 3,
        "{} frames to a port with a full queue (qlen {qlen}) added {grown} output lines; \
         count drops, do not print one line per frame\n{}",
        n,
        sw.output_report()
    );
    drop(slow);
}

/// Ports that stop reading must not silence the others. Frames queued at a
/// receiver are charged to the sending socket until they are read; with
/// one shared data socket (the C switch), 40 stalled ports (or one, when
/// net.unix.max_dgram_qlen is systemd's 512) use up its whole send buffer
/// and no port gets anything any more. Ours sends on a socket per port.
#[test]
fn stalled_ports_do_not_block_the_others() {
    let sw = RunningSwitch::start();
    let a = sw.port();
    let c = sw.port();
    let stalled: Vec<FakePort> = (0..40).map(|_| sw.port()).collect();
    let n = 1000;
    let context = format!("with {} ports not reading", stalled.len());
    broadcasts_reach(&sw, &a, &c, n, "s", &context);
    drop(stalled);
}

/// Ours: a port that stops reading keeps a backlog (its socket full, the
/// frames wait in the switch and are sent once it reads): it then gets the
/// oldest frames in order, at least a backlog's worth beyond what its
/// socket held; every other frame is counted as dropped, and the reading
/// port lost nothing meanwhile. (C drops every frame a full port refuses.)
#[test]
fn a_stalled_port_gets_its_backlog_in_order() {
    if SwitchBinary::under_test().is_c_reference {
        let _ = writeln!(std::io::stderr(), "SKIP: the C switch keeps no backlog");
        return;
    }
    let mut sw = RunningSwitch::start();
    let a = sw.port();
    let reader = sw.port();
    let stalled = sw.port();
    let n = 3000;
    for i in 0..n {
        let f = numbered_broadcast(mac(1), i);
        a.send(&f);
        assert_eq!(
            reader.recv(WAIT).as_ref(),
            Some(&f),
            "frame {i} of {n} to the reading port\n{}",
            sw.output_report()
        );
    }
    let c = counters(&mut sw);
    let queued = stalled.drain(Duration::from_millis(300));
    check_backlog_delivery(&queued, mac(1), n, counter(&c, "queue full"));
}

// ---------------------------------------------------------------------------
// 3. Hub mode
// ---------------------------------------------------------------------------

/// `-hub`: the first stdout line announces it; a unicast to a learned MAC
/// reaches every other port.
#[test]
fn hub_mode_sends_known_unicast_to_every_port() {
    let mut sw = RunningSwitch::start_with(SwitchMode {
        hub: true,
        ..SwitchMode::default()
    });
    let lines: Vec<String> = sw.stdout().lines().map(str::to_string).collect();
    assert_eq!(
        lines.first().map(String::as_str),
        Some(format!("{} will be a hub instead of a switch", sw.argv0()).as_str()),
        "first stdout line\n{}",
        sw.output_report()
    );
    assert_eq!(lines.get(1), Some(&sw.attached_line()));

    let a = sw.port();
    let b = sw.port();
    let c = sw.port();
    let bc = frame(BROADCAST, mac(1), b"hub broadcast from A");
    a.send(&bc);
    let got = deliveries(&sw, &[&a, &b, &c]);
    assert_got(&sw, &got, 1, &[&bc], "hub broadcast");
    assert_got(&sw, &got, 2, &[&bc], "hub broadcast");
    learned_port(&mut sw, mac(1));

    let uc = frame(mac(1), mac(2), b"hub unicast B to A");
    b.send(&uc);
    let got = deliveries(&sw, &[&a, &b, &c]);
    assert_got(&sw, &got, 0, &[&uc], "hub unicast to A's MAC");
    assert_got(
        &sw,
        &got,
        2,
        &[&uc],
        "hub unicast to A's MAC also reaches C",
    );
    assert_got(
        &sw,
        &got,
        1,
        &[],
        "hub unicast is not sent back to the sender",
    );
}

// ---------------------------------------------------------------------------
// 4. Request versions
// ---------------------------------------------------------------------------

/// v1 requests (magic + type 0 at offset 4) get the reply and work.
#[test]
fn v1_request_gets_a_reply_and_frames_flow() {
    let mut sw = RunningSwitch::start();
    let a = sw.port_version(Version::V1);
    let b = sw.port_version(Version::V1);
    wait_line(&mut sw, Stream::Stdout, "New connection", 2);
    assert_eq!(a.reply, b.reply);

    let bc = frame(BROADCAST, mac(1), b"v1 broadcast");
    a.send(&bc);
    let uc = frame(mac(1), mac(2), b"v1 unicast");
    // A's MAC is learned once the broadcast is processed; the unicast is
    // queued behind it.
    b.send(&uc);
    let got = deliveries(&sw, &[&a, &b]);
    assert_got(&sw, &got, 1, &[&bc], "v1 broadcast");
    assert_got(&sw, &got, 0, &[&uc], "v1 unicast");
}

/// A 122-byte v3 request (no trailing padding) is complete
/// (`docs/switch.md` §4.1).
#[test]
fn v3_request_without_padding_is_accepted() {
    let mut sw = RunningSwitch::start();
    let a = sw.port_version(Version::V3Short);
    let b = sw.port();
    wait_line(&mut sw, Stream::Stdout, "New connection", 2);
    let bc = frame(BROADCAST, mac(1), b"from a 122-byte port");
    a.send(&bc);
    let uc = frame(mac(1), mac(2), b"to a 122-byte port");
    b.send(&uc);
    let got = deliveries(&sw, &[&a, &b]);
    assert_got(&sw, &got, 1, &[&bc], "broadcast from the 122-byte port");
    assert_got(&sw, &got, 0, &[&uc], "unicast to the 122-byte port");
}

/// `-compat-v0 -unix CTL DATA`: data socket at the path, v0 requests get
/// no reply, frames flow.
#[test]
fn compat_v0_ports_work_without_a_reply() {
    let mut sw = RunningSwitch::start_with(SwitchMode {
        compat_v0: true,
        ..SwitchMode::default()
    });
    let out = sw.stdout();
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(
        lines.first().copied(),
        Some("Control protocol 0 compatibility"),
        "\n{}",
        sw.output_report()
    );
    let attached = sw.attached_line();
    assert!(
        attached.ends_with(&format!(
            "attached to unix sockets '{}' and '{}'",
            sw.ctl().display(),
            sw.data_path().unwrap().display()
        )),
        "{attached}"
    );
    assert_eq!(lines.get(1).copied(), Some(attached.as_str()));
    let data_path = sw.data_path().unwrap().to_path_buf();
    assert!(
        data_path.exists(),
        "data socket {} not created",
        data_path.display()
    );

    let mut a = FakePort::register_v0(sw.ctl(), &data_path).unwrap();
    wait_line(&mut sw, Stream::Stdout, "New connection", 1);
    let b = FakePort::register_v0(sw.ctl(), &data_path).unwrap();
    wait_line(&mut sw, Stream::Stdout, "New connection", 2);
    let r = read_control(a.control(), Duration::from_millis(300));
    assert_eq!(
        r,
        uml_integration_tests::switch_client::ControlRead::Quiet,
        "a v0 port gets no reply and stays open"
    );

    let bc = frame(BROADCAST, mac(1), b"v0 broadcast");
    a.send(&bc);
    let uc = frame(mac(1), mac(2), b"v0 unicast");
    b.send(&uc);
    let got = deliveries(&sw, &[&a, &b]);
    assert_got(&sw, &got, 1, &[&bc], "v0 broadcast");
    assert_got(&sw, &got, 0, &[&uc], "v0 unicast");
}

// ---------------------------------------------------------------------------
// 5. Hostile and malformed control connections (`docs/switch.md` §4.4)
// ---------------------------------------------------------------------------

/// Deviation: a request written as 12 bytes, a pause, then the rest is
/// reassembled into ONE working port with one reply (C takes the 12 bytes
/// as the request and then drops the port on the rest).
#[test]
fn split_request_is_reassembled_into_one_port() {
    let sw = RunningSwitch::start();
    let a = sw.port();
    let (data, addr) = bind_data_socket().unwrap();
    let mut ctl = connect(&sw);
    let req = request_versioned(3, 0, &addr);
    ctl.write_all(&req[..12]).unwrap();
    thread::sleep(Duration::from_millis(100));
    ctl.write_all(&req[12..]).unwrap();
    let reply =
        read_reply(&mut ctl, WAIT).unwrap_or_else(|e| panic!("{e}\n{}", sw.output_report()));
    assert_eq!(
        reply,
        a.reply.clone().unwrap(),
        "the reply is the data address"
    );
    let more = read_control(&mut ctl, Duration::from_millis(300));
    assert_eq!(
        more,
        uml_integration_tests::switch_client::ControlRead::Quiet,
        "after the one reply the connection stays open and silent\n{}",
        sw.output_report()
    );
    let s = FakePort::from_parts(ctl, data, addr, reply).unwrap();

    let bc = frame(BROADCAST, mac(5), b"from the split port");
    s.send(&bc);
    let uc = frame(mac(5), mac(1), b"to the split port");
    a.send(&uc);
    let got = deliveries(&sw, &[&a, &s]);
    assert_got(
        &sw,
        &got,
        0,
        &[&bc],
        "broadcast from the split-request port",
    );
    assert_got(&sw, &got, 1, &[&uc], "unicast to the split-request port");
    assert_eq!(
        sw.count_lines(Stream::Stdout, "New connection"),
        2,
        "exactly one port per request\n{}",
        sw.output_report()
    );
    assert_no_line(
        &sw,
        "Bad request",
        "the second piece is part of the request",
    );
}

/// Deviation: a short request followed by close must not register a port
/// made of bytes that were never received (C does, with stale bytes).
#[test]
fn short_request_then_close_registers_nothing() {
    let mut sw = RunningSwitch::start();
    let mut s = connect(&sw);
    // magic, version 3, type 0 — and then nothing.
    let (_data, addr) = bind_data_socket().unwrap();
    s.write_all(&request_versioned(3, 0, &addr)[..12]).unwrap();
    thread::sleep(Duration::from_millis(150));
    let early = read_control(&mut s, Duration::from_millis(50));
    assert_eq!(
        early,
        uml_integration_tests::switch_client::ControlRead::Quiet,
        "12 of 124 bytes must not be answered\n{}",
        sw.output_report()
    );
    drop(s);
    wait_line(&mut sw, Stream::Stdout, "EOF from new port", 1);
    assert_switch_works(&sw, "after a short request");
    assert_eq!(
        sw.count_lines(Stream::Stdout, "New connection"),
        2,
        "only the two complete requests register ports\n{}",
        sw.output_report()
    );
}

/// Deviation (extra C line): bad magic is read as a v0 request with type
/// 0xdeadbeef: `Bad request type : -559038737` on stdout, the connection
/// is closed once, no `No port associated` line, other clients unaffected.
#[test]
fn bad_magic_is_rejected_and_closed() {
    let mut sw = RunningSwitch::start();
    let a = sw.port();
    let b = sw.port();
    let mut s = connect(&sw);
    let mut req = vec![0u8; 124];
    req[..4].copy_from_slice(&0xdead_beef_u32.to_le_bytes());
    s.write_all(&req).unwrap();
    expect_closed_without_reply(&sw, &mut s, "bad magic");
    wait_line(&mut sw, Stream::Stdout, "Bad request type : -559038737", 1);

    let bc = frame(BROADCAST, mac(1), b"after bad magic");
    a.send(&bc);
    let got = deliveries(&sw, &[&a, &b]);
    assert_got(
        &sw,
        &got,
        1,
        &[&bc],
        "existing ports keep working after a bad request",
    );
    assert_switch_works(&sw, "after bad magic");
    assert_no_line(
        &sw,
        "No port associated",
        "a rejected request is closed once, quietly",
    );
}

/// Deviation (extra C line): v3 with an unknown type: `Bad request type : 7`,
/// closed, nothing else.
#[test]
fn unknown_request_type_is_rejected_and_closed() {
    let mut sw = RunningSwitch::start();
    let (_data, addr) = bind_data_socket().unwrap();
    let mut s = connect(&sw);
    s.write_all(&request_versioned(3, 7, &addr)).unwrap();
    expect_closed_without_reply(&sw, &mut s, "v3 type 7");
    wait_line(&mut sw, Stream::Stdout, "Bad request type : 7", 1);
    assert_switch_works(&sw, "after type 7");
    assert_eq!(sw.count_lines(Stream::Stdout, "New connection"), 2);
    assert_no_line(
        &sw,
        "No port associated",
        "a rejected request is closed once, quietly",
    );
}

/// Deviation (C's fall-through bug, C pitfall 27, `docs/switch.md` §4.1): a v2
/// request prints only `Version 2 is not supported` (stderr), is closed once,
/// and the poll set stays intact — an established port's later disconnect is
/// still seen.
#[test]
fn version_2_is_rejected_once_and_the_poll_set_stays_intact() {
    let mut sw = RunningSwitch::start();
    let a = sw.port();
    let mut b = sw.port();
    let mut s = connect(&sw);
    let mut req = Vec::new();
    req.extend_from_slice(&SWITCH_MAGIC.to_le_bytes());
    req.extend_from_slice(&2u32.to_le_bytes());
    req.resize(124, 0); // S6
    s.write_all(&req).unwrap();
    expect_closed_without_reply(&sw, &mut s, "v2 request");
    wait_line(&mut sw, Stream::Stderr, "Version 2 is not supported", 1);

    // B was the last descriptor in C's poll set before the v2 connection.
    b.disconnect();
    if let Err(e) = sw.wait_line(Stream::Stdout, "Disconnect", 1, WAIT) {
        panic!("after a v2 request, closing an established port must still be noticed: {e}");
    }
    let c = sw.port();
    let bc = frame(BROADCAST, mac(1), b"after v2");
    a.send(&bc);
    let got = deliveries(&sw, &[&a, &c]);
    assert_got(&sw, &got, 1, &[&bc], "after a v2 request");

    assert_eq!(
        sw.count_lines(Stream::Either, "Version 2 is not supported"),
        1,
        "\n{}",
        sw.output_report()
    );
    assert_no_line(
        &sw,
        "Bad request type : 2",
        "v2 must not fall through to v1",
    );
    assert_no_line(&sw, "Couldn't find descriptor", "v2 must be closed once");
    assert_no_line(&sw, "No port associated", "v2 must be closed once, quietly");
}

/// Deviation: a v4 request prints the C message (stderr) and the
/// connection is CLOSED at once (C leaves it open, the client hangs).
#[test]
fn version_4_is_rejected_and_closed() {
    let mut sw = RunningSwitch::start();
    let (_data, addr) = bind_data_socket().unwrap();
    let mut s = connect(&sw);
    s.write_all(&request_versioned(4, 0, &addr)).unwrap();
    wait_line(
        &mut sw,
        Stream::Stderr,
        "Request for a version 4 port, which this uml_switch doesn't support",
        1,
    );
    expect_closed_without_reply(&sw, &mut s, "v4 request");
    assert_switch_works(&sw, "after v4");
    assert_eq!(sw.count_lines(Stream::Stdout, "New connection"), 2);
}

/// Deviation (extra C line): connect and close without data prints only
/// `EOF from new port`.
#[test]
fn connect_and_close_prints_only_eof_from_new_port() {
    let mut sw = RunningSwitch::start();
    drop(connect(&sw));
    wait_line(&mut sw, Stream::Stdout, "EOF from new port", 1);
    assert_switch_works(&sw, "after connect-and-close");
    assert_no_line(
        &sw,
        "No port associated",
        "an unregistered connection closes quietly",
    );
}

/// A client that connects and says nothing (or sends 4 bytes and stalls)
/// does not block other clients.
#[test]
fn silent_and_stalled_clients_do_not_block_others() {
    let mut sw = RunningSwitch::start();
    let _silent = connect(&sw);
    let mut stalled = connect(&sw);
    stalled.write_all(&SWITCH_MAGIC.to_le_bytes()).unwrap();
    let start = Instant::now();
    assert_switch_works(&sw, "with a silent client connected");
    assert!(
        start.elapsed() < Duration::from_secs(3),
        "registering two ports took {:?} while a client was silent",
        start.elapsed()
    );
    wait_line(&mut sw, Stream::Stdout, "New connection", 2);
}

/// 200 random bytes and 4096 × 0xff: `Bad request type : <first word>`,
/// closed; the switch keeps working.
#[test]
fn garbage_requests_are_rejected_and_closed() {
    let mut sw = RunningSwitch::start();
    let mut junk = pseudo_random_bytes(0x5eed_1234, 200);
    let mut first = u32::from_le_bytes(junk[..4].try_into().unwrap());
    if first == SWITCH_MAGIC || first == 0 {
        junk[0] ^= 0x55;
        first = u32::from_le_bytes(junk[..4].try_into().unwrap());
    }
    let mut s = connect(&sw);
    s.write_all(&junk).unwrap();
    expect_closed_without_reply(&sw, &mut s, "200 random bytes");
    wait_line(
        &mut sw,
        Stream::Stdout,
        &format!("Bad request type : {}", first as i32),
        1,
    );

    let mut s = connect(&sw);
    s.write_all(&[0xff; 4096]).unwrap();
    expect_closed_without_reply(&sw, &mut s, "4096 x 0xff");
    wait_line(&mut sw, Stream::Stdout, "Bad request type : -1", 1);
    assert_switch_works(&sw, "after garbage");
}

/// 300 simultaneous connections with 50 valid v3 requests among them: 50
/// replies, and the 50 ports work (no small fixed connection limit).
#[test]
fn three_hundred_connections_fifty_ports() {
    let mut sw = RunningSwitch::start();
    let conns: Vec<UnixStream> = (0..300).map(|_| connect(&sw)).collect();
    let mut pending = Vec::new();
    let mut idle = Vec::new();
    for (i, mut s) in conns.into_iter().enumerate() {
        if i % 6 == 3 {
            let (data, addr) = bind_data_socket().unwrap();
            s.write_all(&request_versioned(3, 0, &addr)).unwrap();
            pending.push((s, data, addr));
        } else {
            idle.push(s);
        }
    }
    assert_eq!(pending.len(), 50);
    let ports: Vec<FakePort> = pending
        .into_iter()
        .enumerate()
        .map(|(i, (mut s, data, addr))| {
            let reply = read_reply(&mut s, WAIT)
                .unwrap_or_else(|e| panic!("request #{i}: {e}\n{}", sw.output_report()));
            FakePort::from_parts(s, data, addr, reply).unwrap()
        })
        .collect();
    wait_line(&mut sw, Stream::Stdout, "New connection", 50);

    let bc = frame(BROADCAST, mac(1), b"to 49 ports");
    ports[0].send(&bc);
    let refs: Vec<&FakePort> = ports.iter().collect();
    let got = deliveries(&sw, &refs);
    assert_got(&sw, &got, 0, &[], "sender of the broadcast");
    for i in 1..ports.len() {
        assert_got(&sw, &got, i, &[&bc], "broadcast among 50 ports");
    }
    let uc = frame(mac(1), mac(0x50), b"unicast among 50 ports");
    ports[49].send(&uc);
    let got = deliveries(&sw, &refs);
    assert_got(&sw, &got, 0, &[&uc], "unicast among 50 ports");
    for i in 1..ports.len() {
        assert_got(&sw, &got, i, &[], "unicast among 50 ports");
    }
    drop(idle);
    drop(ports);
    assert_switch_works(&sw, "after 300 connections");
}

/// After 200 ports connect and disconnect, the switch's descriptor count
/// (`/proc/<pid>/fd`) is back at its baseline.
#[test]
fn descriptors_return_to_baseline_after_200_ports() {
    let mut sw = RunningSwitch::start();
    wait_switch_idle(&sw, "start-up");
    let baseline = sw.fd_count();
    let ports: Vec<FakePort> = (0..200).map(|_| sw.port()).collect();
    wait_line(&mut sw, Stream::Stdout, "New connection", 200);
    let busy = sw.fd_count();
    assert!(
        busy >= baseline + 200,
        "200 open ports should hold >= 200 more fds: baseline {baseline}, now {busy}"
    );
    drop(ports);
    wait_line(&mut sw, Stream::Stdout, "Disconnect", 200);
    let settled = sw.wait_until(WAIT, |s| s.fd_count() == baseline);
    assert!(
        settled.is_ok(),
        "fd count {} after all ports closed, baseline {baseline}\n{}",
        sw.fd_count(),
        sw.output_report()
    );
}

/// Deviation (C closes a v2 connection twice and loses a poll entry):
/// after rounds of malformed requests are closed, the descriptor count is
/// back at its baseline and the switch works.
#[test]
fn descriptors_return_to_baseline_after_malformed_requests() {
    let mut sw = RunningSwitch::start();
    wait_switch_idle(&sw, "start-up");
    let baseline = sw.fd_count();
    let (_data, addr) = bind_data_socket().unwrap();
    let mut conns = Vec::new();
    for round in 0..10u64 {
        let mut bad_magic = request_versioned(3, 0, &addr);
        bad_magic[..4].copy_from_slice(&0xdead_beef_u32.to_le_bytes());
        let requests: Vec<Vec<u8>> = vec![
            bad_magic,
            request_versioned(2, 0, &addr),
            request_versioned(4, 0, &addr),
            request_versioned(3, 9, &addr),
            request_versioned(3, 0, &addr)[..8].to_vec(),
            Vec::new(),
            pseudo_random_bytes(round + 77, 200),
        ];
        for req in requests {
            let mut s = connect(&sw);
            if !req.is_empty() {
                let _ = s.write_all(&req);
            }
            conns.push(s);
        }
    }
    wait_switch_idle(&sw, "the malformed requests");
    drop(conns);
    assert_switch_works(&sw, "after malformed requests");
    // The two ports of assert_switch_works are closed now too.
    let settled = sw.wait_until(WAIT, |s| s.fd_count() == baseline);
    assert!(
        settled.is_ok(),
        "fd count {} after every connection closed, baseline {baseline}\n{}",
        sw.fd_count(),
        sw.output_report()
    );
    assert_switch_works(&sw, "after the fd check");
}

// ---------------------------------------------------------------------------
// 6. Frames
// ---------------------------------------------------------------------------

/// Deviation (C forwards runts with a stale header): datagrams shorter
/// than 14 bytes are dropped; a bare 14-byte header is forwarded.
#[test]
fn runt_datagrams_are_not_forwarded() {
    let sw = RunningSwitch::start();
    let a = sw.port();
    let b = sw.port();
    let full = frame(BROADCAST, mac(1), b"a full frame first");
    let header_only = frame(BROADCAST, mac(1), b"");
    a.send(&full);
    a.send(&[0xde, 0xad, 0x01]);
    a.send(&full[..13]);
    a.send(&header_only);
    let got = deliveries(&sw, &[&a, &b]);
    assert_got(
        &sw,
        &got,
        1,
        &[&full, &header_only],
        "3- and 13-byte datagrams must be dropped, a 14-byte one forwarded",
    );
}

/// Frames longer than 1514 bytes are delivered truncated to 1514; 1514
/// bytes pass unchanged (S5).
#[test]
fn long_frames_are_truncated_to_1514_bytes() {
    let mut sw = RunningSwitch::start();
    let a = sw.port();
    let b = sw.port();
    let payload: Vec<u8> = (0..2050u32).map(|i| (i % 251) as u8).collect();
    let long = frame(mac(9), mac(1), &payload);
    assert_eq!(long.len(), 2064);
    let exact = frame(BROADCAST, mac(1), &payload[..MAX_FRAME - 14]);
    a.send(&long);
    a.send(&exact);
    let got = deliveries(&sw, &[&a, &b]);
    assert_got(
        &sw,
        &got,
        1,
        &[&long[..MAX_FRAME], &exact],
        "2064-byte frame truncated to 1514, 1514-byte frame unchanged",
    );
    let port_a = learned_port(&mut sw, mac(1));
    wait_line(
        &mut sw,
        Stream::Stdout,
        &format!("unknown Addr: 02:00:00:00:00:01 from port {port_a}"),
        1,
    );
}

/// 100 000 distinct source MACs from one port: RSS stays bounded and the
/// switch keeps working.
#[test]
fn mac_flood_keeps_memory_bounded() {
    const N: u32 = 100_000;
    const RSS_LIMIT_KIB: u64 = 64 * 1024;
    let sw = RunningSwitch::start();
    let a = sw.port();
    let start = Instant::now();
    for i in 0..N {
        let b = i.to_be_bytes();
        let src = [0x02, 0x10, b[0], b[1], b[2], b[3]];
        let f = frame(BROADCAST, src, b"flood");
        if let Err(e) = a.try_send(&f) {
            panic!(
                "flood frame {i} could not be sent ({e}); the switch stopped reading?\n{}",
                sw.output_report()
            );
        }
        assert!(
            start.elapsed() < Duration::from_secs(30),
            "flood too slow: only {i} of {N} frames with new source MACs were taken \
             in 30 s (the C switch takes all in ~2 s); is learning O(table size) per frame?"
        );
    }
    // A port joining afterwards gets A's next broadcast only once the flood
    // has been processed (the data socket is read in order). It may also
    // get the tail of the flood if it registered while frames were queued.
    let b = sw.port();
    let bc = frame(BROADCAST, mac(1), b"after the flood");
    a.send(&bc);
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        let f = b.recv(left).unwrap_or_else(|| {
            panic!(
                "the broadcast sent after the flood did not arrive\n{}",
                sw.output_report()
            )
        });
        if f == bc {
            break;
        }
        assert!(
            f.len() == 19 && f[6..8] == [0x02, 0x10],
            "unexpected frame {} while waiting for the end of the flood",
            describe_frames(&[f])
        );
    }
    let flooded = 12_345u32.to_be_bytes();
    let uc = frame(
        [0x02, 0x10, flooded[0], flooded[1], flooded[2], flooded[3]],
        mac(2),
        b"to a flooded MAC",
    );
    b.send(&uc);
    let got = deliveries(&sw, &[&a, &b]);
    assert_got(&sw, &got, 0, &[&uc], "unicast to one of the flooded MACs");
    let rss = sw.rss_kib();
    assert!(
        rss < RSS_LIMIT_KIB,
        "switch RSS {rss} KiB after {N} source MACs (limit {RSS_LIMIT_KIB} KiB)"
    );
}

// ---------------------------------------------------------------------------
// 7. Signals and lifecycle
// ---------------------------------------------------------------------------

fn stop_with(sig: Signal) -> RunningSwitch {
    let mut sw = RunningSwitch::start();
    let _a = sw.port();
    wait_line(&mut sw, Stream::Stdout, "New connection", 1);
    assert!(sw.ctl().exists());
    sw.signal(sig);
    let status = sw.wait_exit(WAIT);
    assert!(
        status.is_some(),
        "the switch did not end within {WAIT:?} after {sig:?}\n{}",
        sw.output_report()
    );
    assert!(
        !sw.ctl().exists(),
        "the control socket {} must be removed on {sig:?} (ended: {})\n{}",
        sw.ctl().display(),
        describe_status(status),
        sw.output_report()
    );
    sw
}

/// Deviation (C dies on SIGTERM and leaves the socket): SIGTERM removes
/// the control socket and ends the switch.
#[test]
fn sigterm_removes_the_control_socket() {
    stop_with(Signal::SIGTERM);
}

/// SIGINT: `Caught signal 2, cleaning up and exiting`, socket removed,
/// process ends.
#[test]
fn sigint_removes_the_control_socket() {
    let sw = stop_with(Signal::SIGINT);
    assert_eq!(
        sw.count_lines(Stream::Stdout, "Caught signal 2, cleaning up and exiting"),
        1,
        "\n{}",
        sw.output_report()
    );
}

/// Deviation (C does not ignore SIGPIPE): clients that send a request and
/// close before the reply is written do not kill the switch.
#[test]
fn client_closing_before_the_reply_does_not_kill_the_switch() {
    let mut sw = RunningSwitch::start();
    for _ in 0..30 {
        let (data, addr) = bind_data_socket().unwrap();
        // Once the switch is dead, connecting fails: stop and report below.
        let Ok(mut s) = connect_control(sw.ctl(), WAIT) else {
            break;
        };
        let _ = s.write_all(&request_versioned(3, 0, &addr));
        drop(s);
        drop(data);
    }
    // Let the switch process them all.
    wait_switch_idle(&sw, "the early-closing clients");
    assert!(
        sw.is_running(),
        "the switch died ({}) when clients closed before the reply\n{}",
        describe_status(sw.try_exit_status()),
        sw.output_report()
    );
    assert_switch_works(&sw, "after early-closing clients");
}

/// A leftover socket file at the control path with no listener is replaced.
#[test]
fn stale_control_socket_is_replaced() {
    let dir = new_temp_dir();
    let ctl = dir.path().join("ctl");
    drop(UnixListener::bind(&ctl).unwrap());
    assert!(ctl.exists(), "stale socket file should be left behind");
    let sw = RunningSwitch::start_in(dir, SwitchMode::default())
        .unwrap_or_else(|e| panic!("switch did not replace a stale socket: {e}"));
    assert_switch_works(&sw, "on a replaced stale socket");
}

/// A second switch on a live control socket prints the "another server"
/// block on stderr and exits 1; the first keeps working.
#[test]
fn live_control_socket_is_not_taken_over() {
    let sw = RunningSwitch::start();
    let ctl = sw.ctl().display().to_string();
    let out = run_with_timeout(
        &mut sw.binary().command(["-unix", ctl.as_str()]),
        Duration::from_secs(10),
    );
    assert!(!out.timed_out, "second switch did not exit:\n{out}");
    assert_eq!(out.code, Some(1), "{out}");
    let want = format!(
        "The control socket '{ctl}' has another server attached to it\n\
         You can either\n\
         \tremove '{ctl}'\n\
         \tor rerun with a different, unused filename for a socket\n"
    );
    assert_eq!(out.stderr_str(), want, "{out}");
    assert_eq!(out.stdout_str(), "", "{out}");
    assert!(sw.ctl().exists(), "the first switch's socket must survive");
    assert_switch_works(&sw, "after a second switch was refused");
}

/// Usage errors: the two usage lines on stderr, exit 1.
#[test]
fn usage_errors_print_usage_and_exit_1() {
    let bin = SwitchBinary::under_test();
    let prog = bin.argv0();
    let want = format!(
        "Usage : {prog} [ -unix control-socket ] [ -hub ] [ -tap tap-device ]\n\
         or : {prog} -compat-v0 [ -unix control-socket data-socket ] [ -hub ] [ -tap tap-device ]\n"
    );
    for args in [&["-bogus"][..], &["-unix"][..]] {
        let out = run_with_timeout(&mut bin.command(args), Duration::from_secs(10));
        assert_eq!(out.code, Some(1), "{args:?}: {out}");
        assert_eq!(out.stderr_str(), want, "{args:?}: {out}");
        assert_eq!(out.stdout_str(), "", "{args:?}: {out}");
    }
}
