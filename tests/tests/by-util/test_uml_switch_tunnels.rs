//! `uml_switch --l2tpv3` and `--gre` against fake tunnel guests (see
//! `docs/vector.md` §4, §5, §9): each fake guest is the socket a guest's
//! vector driver opens (a UDP socket, or a raw IP socket of protocol 115 or 47)
//! and checks every header byte the switch sends; frames cross to a
//! daemon-protocol port or a bess connection and back. Mismatching
//! sessions, cookies, keys and GRE flags are dropped, reported once and
//! counted; bad option combinations are refused before anything is
//! opened. Also a `--vxlan` trunk with two fake remote VTEPs: the switch
//! learns which remote each MAC is behind.
//!
//! UDP tests run unprivileged on 127.0.0.1 and ::1 with ports bound as
//! port 0 (the switch's own port too: `dstport=0`, read back from its
//! start-up line). Raw-socket tests run as root inside a network namespace
//! they create: the fake guests' sockets are made on a thread that entered
//! it. Every wait is bounded.

// Test code: a failed setup step should abort the test with its message.
#![allow(clippy::expect_used, clippy::unwrap_used)]

use std::ffi::OsString;
use std::io::Write;
use std::net::{SocketAddr, UdpSocket};
use std::process::Command;
use std::time::Duration;

use uml_integration_tests::switch_client::{
    frame, mac, mac_str, marker_frame, marker_id, new_marker_id, new_temp_dir, BessClient,
    FakePort, RunningSwitch, Stream, SwitchBinary, SwitchMode, BROADCAST, WAIT,
};
use uml_integration_tests::uml_common::sys::ipsock::{open_connected, IpSocketKind};
use uml_integration_tests::uml_common::tunnel::decode_ipv4;
use uml_integration_tests::{require, run_with_timeout, NetNs, Requirement};

/// How long a frame that must not arrive is waited for (after a marker
/// sent later did arrive, nothing earlier is still on its way).
const QUIET: Duration = Duration::from_millis(200);

/// Returns from the test when the switch under test is the C reference,
/// which has no tunnel ports.
macro_rules! require_ours {
    () => {
        if SwitchBinary::under_test().is_c_reference {
            let _ = writeln!(
                std::io::stderr(),
                "SKIP: --l2tpv3/--gre are not options of the C switch"
            );
            return;
        }
    };
}

fn hex(s: &str) -> Vec<u8> {
    s.split_whitespace()
        .map(|b| u8::from_str_radix(b, 16).unwrap())
        .collect()
}

fn cat(a: &[u8], b: &[u8]) -> Vec<u8> {
    let mut v = a.to_vec();
    v.extend_from_slice(b);
    v
}

/// A fake tunnel guest: the socket its vector driver would have, bound to
/// the guest's address and connected to the switch's.
struct FakeGuest {
    sock: UdpSocket,
    /// A raw IPv4 socket: received packets start with the IPv4 header.
    raw_v4: bool,
}

impl FakeGuest {
    /// A UDP guest bound to `ip` port 0 (not yet connected).
    fn udp(ip: &str) -> FakeGuest {
        let sock = UdpSocket::bind((ip, 0)).unwrap();
        sock.set_read_timeout(Some(WAIT)).unwrap();
        FakeGuest {
            sock,
            raw_v4: false,
        }
    }

    fn port(&self) -> u16 {
        self.sock.local_addr().unwrap().port()
    }

    fn connect(&self, switch: SocketAddr) {
        self.sock.connect(switch).unwrap();
    }

    /// A raw guest of IP `protocol` at `guest`, talking to `switch`, made
    /// inside `ns`.
    fn raw(ns: &NetNs, protocol: u8, guest: &str, switch: &str) -> FakeGuest {
        let g: SocketAddr = SocketAddr::new(guest.parse().unwrap(), 0);
        let s: SocketAddr = SocketAddr::new(switch.parse().unwrap(), 0);
        let fd = ns
            .run_in(move || open_connected(IpSocketKind::Raw(protocol), g, s))
            .unwrap_or_else(|e| panic!("raw socket {guest} -> {switch}: {e}"));
        // std's UDP type only carries the descriptor: recv/send and the
        // timeouts work on any connected datagram socket.
        let sock = UdpSocket::from(fd);
        sock.set_nonblocking(false).unwrap();
        sock.set_read_timeout(Some(WAIT)).unwrap();
        FakeGuest {
            sock,
            raw_v4: g.is_ipv4(),
        }
    }

    fn send(&self, packet: &[u8]) {
        let n = self.sock.send(packet).unwrap();
        assert_eq!(n, packet.len());
    }

    /// One packet (without the IPv4 header of raw IPv4 sockets), waiting
    /// at most `timeout`.
    fn recv(&self, timeout: Duration) -> Option<Vec<u8>> {
        self.sock
            .set_read_timeout(Some(timeout.max(Duration::from_millis(1))))
            .unwrap();
        let mut buf = vec![0u8; 65536];
        let got = self.sock.recv(&mut buf).ok().map(|n| {
            buf.truncate(n);
            buf
        });
        self.sock.set_read_timeout(Some(WAIT)).unwrap();
        let packet = got?;
        if self.raw_v4 {
            let ip = decode_ipv4(&packet).expect("an IPv4 packet");
            return Some(ip.payload.to_vec());
        }
        Some(packet)
    }

    /// Packets until one whose frame (after `header_len` bytes) is marker
    /// `id`; returns the packets before it.
    fn recv_until_marker(&self, header_len: usize, id: u32) -> Vec<Vec<u8>> {
        let mut before = Vec::new();
        loop {
            let p = self
                .recv(WAIT)
                .unwrap_or_else(|| panic!("marker {id} never arrived; before: {before:?}"));
            if p.len() >= header_len && marker_id(&p[header_len..]) == Some(id) {
                return before;
            }
            before.push(p);
        }
    }
}

/// The guest argument the switch printed for its tunnel port number `n`
/// (0-based, in start-up order).
fn announced(out: &str, n: usize) -> String {
    let lines: Vec<&str> = out
        .lines()
        .filter(|l| l.contains(": the guest joins with "))
        .collect();
    let line = lines
        .get(n)
        .unwrap_or_else(|| panic!("no tunnel line {n} in:\n{out}"));
    line.split(": the guest joins with ")
        .nth(1)
        .unwrap()
        .to_string()
}

/// The value of `key=` in a guest argument.
fn option_value(arg: &str, key: &str) -> String {
    arg.split([',', ':'])
        .find_map(|item| item.strip_prefix(&format!("{key}=")))
        .unwrap_or_else(|| panic!("no {key}= in {arg}"))
        .to_string()
}

/// L2TPv3/UDP: frames cross between a fake UDP guest and a daemon port
/// with the guest's header layout, session, 64-bit cookie and counter;
/// packets with another session or cookie, runts and strangers' packets
/// are dropped, reported once and counted.
#[test]
fn l2tpv3_udp_carries_frames_both_ways_and_drops_mismatches() {
    require_ours!();
    let guest = FakeGuest::udp("127.0.0.1");
    let opts = format!(
        "udp=1,src=127.0.0.1,srcport={},dst=127.0.0.1,dstport=0,rx_session=0x1234,\
         tx_session=0x5678,cookie64=1,rx_cookie=0xcafe,tx_cookie=0x1122334455667788,counter=1",
        guest.port()
    );
    let mut sw = RunningSwitch::start_with_args(
        SwitchMode::default(),
        &["--l2tpv3".into(), opts.clone().into()],
    );
    let line = sw
        .wait_line_starting(Stream::Stdout, "l2tpv3 port ", WAIT)
        .unwrap();
    let arg = announced(&sw.stdout(), 0);
    let port: u16 = option_value(&arg, "dstport").parse().unwrap();
    assert_ne!(port, 0, "{line}");
    // The guest argument is the option, with the chosen port.
    assert_eq!(
        arg,
        format!(
            "vec0:transport=l2tpv3,{}",
            opts.replace("dstport=0", &format!("dstport={port}"))
        )
    );
    assert!(
        line.contains(&format!(
            "(127.0.0.1:{port} <-> 127.0.0.1:{})",
            guest.port()
        )),
        "{line}"
    );
    guest.connect(SocketAddr::from(([127, 0, 0, 1], port)));
    let daemon = sw.port();

    let from_guest = |counter: u32| {
        cat(
            &hex("00 03 00 00 00 00 56 78 11 22 33 44 55 66 77 88"),
            &counter.to_be_bytes(),
        )
    };
    // Guest → daemon port: exactly the frame.
    let f1 = frame(BROADCAST, mac(1), b"from the tunnel");
    guest.send(&cat(&from_guest(1), &f1));
    assert_eq!(daemon.recv(WAIT), Some(f1));
    sw.wait_line_starting(
        Stream::Stdout,
        &format!(" Addr: {} New port ", mac_str(mac(1))),
        WAIT,
    )
    .unwrap();

    // Daemon port → guest: the guest's rx_session and rx_cookie, counter
    // 1, 2, ...
    for n in 1..=2u32 {
        let f = frame(mac(1), mac(2), format!("reply {n}").as_bytes());
        daemon.send(&f);
        let want = cat(
            &cat(
                &hex("00 03 00 00 00 00 12 34 00 00 00 00 00 00 ca fe"),
                &n.to_be_bytes(),
            ),
            &f,
        );
        assert_eq!(guest.recv(WAIT), Some(want), "frame {n}");
    }

    // Dropped: another session (twice), another cookie, a runt, and a
    // correct packet from a stranger (the socket is connected to the
    // guest's address).
    let f = frame(mac(2), mac(1), b"must not arrive");
    let mut wrong_session = cat(&from_guest(3), &f);
    wrong_session[7] = 0x79;
    guest.send(&wrong_session);
    guest.send(&wrong_session);
    let mut wrong_cookie = cat(&from_guest(4), &f);
    wrong_cookie[15] = 0x99;
    guest.send(&wrong_cookie);
    guest.send(&hex("00 03 00"));
    let stranger = UdpSocket::bind("127.0.0.1:0").unwrap();
    stranger
        .send_to(&cat(&from_guest(5), &f), ("127.0.0.1", port))
        .unwrap();
    let id = new_marker_id();
    guest.send(&cat(&from_guest(6), &marker_frame(id)));
    let before = daemon.recv_until_marker(id, WAIT).unwrap();
    assert!(before.is_empty(), "dropped packets arrived: {before:?}");

    // A marker from the daemon port reaches the guest after nothing else.
    let id = new_marker_id();
    daemon.send(&marker_frame(id));
    assert!(guest.recv_until_marker(20, id).is_empty());

    // Each reason is reported once, then only counted.
    for needle in [
        "dropped a packet: session 0x5679 (22137), but the guest's tx_session is 0x5678",
        "dropped a packet: cookie 0x1122334455667799, but the guest's tx_cookie is \
         0x1122334455667788",
        "dropped a packet: shorter than its 20-byte L2TPv3 header",
    ] {
        sw.wait_until(WAIT, |s| s.count_containing(Stream::Stderr, needle) == 1)
            .unwrap();
    }
    sw.signal(nix::sys::signal::Signal::SIGUSR1);
    let counts = "dropped: malformed 1, session mismatch 2, cookie mismatch 1, header \
                  mismatch 0, key mismatch 0";
    sw.wait_until(WAIT, |s| s.count_containing(Stream::Stderr, counts) == 1)
        .unwrap();
    assert_eq!(sw.count_containing(Stream::Stderr, "dropped a packet"), 3);
    assert!(sw.is_running());
}

/// L2TPv3/UDP over IPv6 (`v6=1`), without cookie or counter: the 8-byte
/// header both ways.
#[test]
fn l2tpv3_udp_over_ipv6() {
    require_ours!();
    if let Err(e) = UdpSocket::bind("[::1]:0") {
        let reason = format!("no IPv6 loopback address here ({e})");
        if std::env::var("CI").as_deref() == Ok("true") {
            panic!("{reason}; CI must provide it");
        }
        let _ = writeln!(std::io::stderr(), "SKIP: {reason}");
        return;
    }
    let guest = FakeGuest::udp("::1");
    let opts = format!(
        "v6=1,udp=1,src=::1,srcport={},dst=::1,dstport=0,rx_session=-2,tx_session=7",
        guest.port()
    );
    let mut sw =
        RunningSwitch::start_with_args(SwitchMode::default(), &["--l2tpv3".into(), opts.into()]);
    sw.wait_line_starting(Stream::Stdout, "l2tpv3 port ", WAIT)
        .unwrap();
    let port: u16 = option_value(&announced(&sw.stdout(), 0), "dstport")
        .parse()
        .unwrap();
    guest.connect(SocketAddr::new("::1".parse().unwrap(), port));
    let daemon = sw.port();
    let f = frame(BROADCAST, mac(5), b"six");
    guest.send(&cat(&hex("00 03 00 00 00 00 00 07"), &f));
    assert_eq!(daemon.recv(WAIT), Some(f));
    let back = frame(mac(5), mac(6), b"back");
    daemon.send(&back);
    assert_eq!(
        guest.recv(WAIT),
        Some(cat(&hex("00 03 00 00 ff ff ff fe"), &back))
    );
}

/// L2TPv3 over IP and GRE (raw sockets, IPv4 and IPv6) between fake
/// guests and a bess connection, in a namespace: the guests' exact header
/// bytes both ways, and mismatching keys, flags and cookies dropped.
#[test]
fn l2tpv3_ip_and_gre_over_raw_sockets() {
    require!(Requirement::Root, Requirement::NetNs);
    require_ours!();
    let ns = NetNs::new("tunraw");
    for a in ["fd00::1/128", "fd00::2/128"] {
        let out = ns.ip(&["addr", "add", a, "dev", "lo", "nodad"]);
        assert!(out.success(), "ip addr add {a}: {out}");
    }
    let dir = new_temp_dir();
    let bess_path = dir.path().join("sw.bess");
    let l2tp_opts = "src=127.0.0.2,dst=127.0.0.1,rx_session=-1,tx_session=0x5678,\
                     rx_cookie=0xcafef00d,tx_cookie=0xdeadbeef,counter=1,pin_counter=1";
    let gre_opts = "src=127.0.0.3,dst=127.0.0.1,tx_key=0x11223344,rx_key=0x55667788,sequence=1";
    let gre6_opts = "v6=1,src=fd00::2,dst=fd00::1";
    // A guest that never comes up: what the switch floods to it comes
    // back as ICMP protocol unreachable, which must stay quiet.
    let absent_opts = "src=127.0.0.9,dst=127.0.0.1,rx_session=1,tx_session=2";
    let args: Vec<OsString> = vec![
        "-unix".into(),
        dir.path().join("sw.ctl").into(),
        "--bess".into(),
        bess_path.clone().into(),
        "--l2tpv3".into(),
        l2tp_opts.into(),
        "--gre".into(),
        gre_opts.into(),
        "--gre".into(),
        gre6_opts.into(),
        "--l2tpv3".into(),
        absent_opts.into(),
    ];
    let mut sw = uml_integration_tests::switch_client::NsSwitch::start(
        &ns,
        dir.path(),
        &args,
        Duration::from_secs(60),
    )
    .unwrap_or_else(|e| panic!("{e}"));
    assert!(
        sw.wait_output(WAIT, |o| o.matches(": the guest joins with ").count() == 4),
        "{}",
        sw.report()
    );
    let out = sw.output();
    assert_eq!(
        announced(&out, 0),
        format!("vec0:transport=l2tpv3,{l2tp_opts}")
    );
    assert_eq!(announced(&out, 1), format!("vec0:transport=gre,{gre_opts}"));
    assert_eq!(
        announced(&out, 2),
        format!("vec0:transport=gre,{gre6_opts}")
    );
    assert!(out.contains("l2tpv3 port "), "{out}");
    assert!(out.contains("(127.0.0.1 <-> 127.0.0.3)"), "{out}");

    let l2tp = FakeGuest::raw(&ns, 115, "127.0.0.2", "127.0.0.1");
    let gre = FakeGuest::raw(&ns, 47, "127.0.0.3", "127.0.0.1");
    let gre6 = FakeGuest::raw(&ns, 47, "fd00::2", "fd00::1");
    let bess = BessClient::connect(&bess_path).unwrap();
    assert!(
        sw.wait_output(WAIT, |o| o.contains("New bess connection")),
        "{}",
        sw.report()
    );

    // L2TPv3/IP guest (MAC 2) broadcasts: the bess client gets the frame,
    // the GRE guests get it with their rx_key and sequence 1 / bare.
    let l2tp_hdr = hex("00 00 56 78 de ad be ef 00 00 00 00");
    let f = frame(BROADCAST, mac(2), b"from l2tpv3/ip");
    l2tp.send(&cat(&l2tp_hdr, &f));
    assert_eq!(bess.recv(WAIT), Some(f.clone()));
    assert_eq!(
        gre.recv(WAIT),
        Some(cat(&hex("30 00 65 58 55 66 77 88 00 00 00 01"), &f))
    );
    assert_eq!(gre6.recv(WAIT), Some(cat(&hex("00 00 65 58"), &f)));

    // GRE guest (MAC 3) → L2TPv3 guest (unicast, MAC 2 learned): session
    // 0xffffffff (rx_session=-1), cookie 0xcafef00d, pinned counter 0.
    let gre_hdr = hex("30 00 65 58 11 22 33 44 00 00 00 09");
    let f = frame(mac(2), mac(3), b"from gre");
    gre.send(&cat(&gre_hdr, &f));
    assert_eq!(
        l2tp.recv(WAIT),
        Some(cat(&hex("ff ff ff ff ca fe f0 0d 00 00 00 00"), &f))
    );
    // IPv6 GRE guest (MAC 4) → bess.
    let f6 = frame(BROADCAST, mac(4), b"from gre over ipv6");
    gre6.send(&cat(&hex("00 00 65 58"), &f6));
    assert_eq!(bess.recv(WAIT), Some(f6));
    // Drain what the broadcasts flooded elsewhere.
    let _ = l2tp.recv(QUIET);
    let _ = gre.recv(QUIET);

    // Dropped: another key, a header without the sequence bit, a checksum
    // bit, another cookie, an L2TPv3 packet too short for its header.
    let junk = frame(BROADCAST, mac(3), b"must not arrive");
    let mut wrong_key = cat(&gre_hdr, &junk);
    wrong_key[7] = 0x45;
    gre.send(&wrong_key);
    gre.send(&cat(&hex("20 00 65 58 11 22 33 44"), &junk));
    gre6.send(&cat(&hex("80 00 65 58 00 00 00 00"), &junk));
    let mut wrong_cookie = cat(&l2tp_hdr, &junk);
    wrong_cookie[4] = 0;
    l2tp.send(&wrong_cookie);
    l2tp.send(&hex("00 00 56 78 de ad"));
    let ids: Vec<u32> = (0..3).map(|_| new_marker_id()).collect();
    l2tp.send(&cat(&l2tp_hdr, &marker_frame(ids[0])));
    gre.send(&cat(&gre_hdr, &marker_frame(ids[1])));
    gre6.send(&cat(&hex("00 00 65 58"), &marker_frame(ids[2])));
    // The three ports are read in any order: only the markers arrive.
    let mut seen = Vec::new();
    while seen.len() < ids.len() {
        let got = bess
            .recv(WAIT)
            .unwrap_or_else(|| panic!("markers missing (saw {seen:?}): {}", sw.report()));
        match marker_id(&got) {
            Some(id) if ids.contains(&id) && !seen.contains(&id) => seen.push(id),
            _ => panic!("a dropped frame arrived: {got:?}"),
        }
    }
    for needle in [
        "dropped a packet: key 0x11223345",
        "dropped a packet: GRE flags and protocol 0x20006558, but the guest sends 0x30006558",
        "dropped a packet: GRE flags and protocol 0x80006558, but the guest sends 0x00006558",
        "dropped a packet: cookie 0x00adbeef, but the guest's tx_cookie is 0xdeadbeef",
        "dropped a packet: shorter than its 12-byte L2TPv3 header",
    ] {
        assert!(
            sw.wait_output(WAIT, |o| o.matches(needle).count() == 1),
            "{needle}\n{}",
            sw.report()
        );
    }
    assert!(sw.running(), "{}", sw.report());
    let out = sw.output();
    assert!(
        !out.contains("Receiving on") && !out.contains("Sending to"),
        "{out}"
    );
}

/// Option combinations that would panic a guest (or that it would
/// misread) are refused with status 1 before anything is opened: no
/// `attached` line, no control socket left. A port that cannot be opened
/// (its `dst` is not an address of this host) fails the start-up and
/// leaves no socket behind either.
#[test]
fn bad_tunnel_options_are_refused_before_anything_starts() {
    require_ours!();
    let binary = SwitchBinary::under_test();
    let ok_udp = "udp=1,src=127.0.0.1,srcport=9,dst=127.0.0.1,dstport=0";
    let cases: Vec<(Vec<String>, &str, bool)> = vec![
        (
            vec![
                "--l2tpv3".into(),
                format!("{ok_udp},rx_session=0xffffffff,tx_session=1"),
            ],
            "rx_session=0xffffffff: the guest reads this as a signed 32-bit number and \
             0xffffffff is too large; write the same bits as rx_session=-1",
            true,
        ),
        (
            vec!["--l2tpv3".into(), format!("{ok_udp},rx_session=1")],
            "tx_session= is missing",
            true,
        ),
        (
            vec![
                "--l2tpv3".into(),
                format!("{ok_udp},rx_session=1,tx_session=2,rx_cookie=5"),
            ],
            "rx_cookie= without tx_cookie=",
            true,
        ),
        (
            vec![
                "--gre".into(),
                "src=127.0.0.2,dst=127.0.0.1,rx_key=5".into(),
            ],
            "rx_key= without tx_key=",
            true,
        ),
        (
            vec!["--gre=src=127.0.0.2,dst=127.0.0.1,rx_key=5,tx_key=0x80000000".into()],
            "tx_key=0x80000000",
            true,
        ),
        (
            vec![
                "--l2tpv3".into(),
                format!("{ok_udp},rx_session=1,tx_session=2,depth=100000000"),
            ],
            "depth=100000000",
            true,
        ),
        (
            vec![
                "--l2tpv3".into(),
                format!("{ok_udp},rx_session=1,tx_session=2,src_port=5"),
            ],
            "unknown option src_port (the option is srcport",
            false,
        ),
        (
            vec![
                "--l2tpv3".into(),
                "udp=1,src=127.0.0.1,srcport=9,dst=127.0.0.1,dstport=5555,rx_session=1,\
                 tx_session=2"
                    .into(),
                "--l2tpv3".into(),
                "udp=1,src=127.0.0.1,srcport=8,dst=127.0.0.1,dstport=5555,rx_session=3,\
                 tx_session=4"
                    .into(),
            ],
            "both use dst=127.0.0.1 dstport=5555",
            false,
        ),
        (
            vec!["--gre".into(), "src=127.0.0.1,dst=127.0.0.1".into()],
            "src and dst are both 127.0.0.1",
            false,
        ),
        (
            vec![
                "--l2tpv3".into(),
                format!("{ok_udp},rx_session=1,tx_session=2,mtu=9000"),
            ],
            "mtu=9000",
            false,
        ),
    ];
    for (extra, needle, panics) in cases {
        let dir = new_temp_dir();
        let ctl = dir.path().join("ctl");
        let bess = dir.path().join("b");
        let mut args: Vec<OsString> = vec![
            "-unix".into(),
            ctl.clone().into(),
            "--bess".into(),
            bess.clone().into(),
        ];
        args.extend(extra.iter().map(OsString::from));
        let out = run_with_timeout(&mut binary.command(&args), WAIT);
        let stderr = String::from_utf8_lossy(&out.stderr);
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert_eq!(out.code, Some(1), "{extra:?}: {stdout}{stderr}");
        assert!(stderr.contains(needle), "{extra:?}: {stderr}");
        assert_eq!(
            stderr.contains("a guest given these options panics"),
            panics,
            "{stderr}"
        );
        let prefix = format!("{}: --", binary.argv0());
        assert!(stderr.starts_with(&prefix), "{stderr}");
        assert!(stdout.is_empty(), "{extra:?} printed: {stdout}");
        assert!(!ctl.exists() && !bess.exists(), "{extra:?} left sockets");
    }

    // Valid options, but dst= is not an address of this host: the start
    // fails after the daemon and bess sockets were made, and removes them.
    let dir = new_temp_dir();
    let ctl = dir.path().join("ctl");
    let bess = dir.path().join("b");
    let args: Vec<OsString> = vec![
        "-unix".into(),
        ctl.clone().into(),
        "--bess".into(),
        bess.clone().into(),
        "--l2tpv3".into(),
        "udp=1,src=127.0.0.1,srcport=9,dst=192.0.2.1,dstport=0,rx_session=1,tx_session=2".into(),
    ];
    let out = run_with_timeout(&mut binary.command(&args), WAIT);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.code, Some(1), "{stderr}");
    assert!(
        stderr.contains("cannot bind 192.0.2.1:0") && stderr.contains("address of this host"),
        "{stderr}"
    );
    assert!(!ctl.exists() && !bess.exists(), "sockets left behind");

    // Without CAP_NET_RAW (root with the capability dropped from its
    // bounding and inheritable sets), raw tunnels are refused with the
    // reason; UDP ones need no privilege.
    if !nix::unistd::geteuid().is_root() {
        return;
    }
    let Some(setpriv) = uml_integration_tests::find_in_path("setpriv") else {
        let _ = writeln!(std::io::stderr(), "SKIP (part): setpriv not found");
        return;
    };
    let dir = new_temp_dir();
    let ctl = dir.path().join("ctl");
    let mut cmd = Command::new(setpriv);
    cmd.args(["--bounding-set", "-net_raw", "--inh-caps", "-net_raw"])
        .arg(&binary.path)
        .arg("-unix")
        .arg(&ctl)
        .args(["--gre", "src=127.0.0.2,dst=127.0.0.1"]);
    let out = run_with_timeout(&mut cmd, WAIT);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.code, Some(1), "{stderr}");
    assert!(
        stderr.contains("cannot open a raw IP socket") && stderr.contains("GRE needs CAP_NET_RAW"),
        "{stderr}"
    );
    assert!(!ctl.exists(), "control socket left behind");
}

/// Two UDP tunnel ports and a daemon port on one switch: a frame from
/// one tunnel guest reaches the other with the other's header, and
/// unknown destinations are flooded to both.
#[test]
fn two_udp_tunnels_switch_between_each_other() {
    require_ours!();
    let a = FakeGuest::udp("127.0.0.1");
    let b = FakeGuest::udp("127.0.0.1");
    let opts = |g: &FakeGuest, rx: u32, tx: u32| {
        format!(
            "udp=1,src=127.0.0.1,srcport={},dst=127.0.0.1,dstport=0,rx_session={rx},\
             tx_session={tx}",
            g.port()
        )
    };
    let mut sw = RunningSwitch::start_with_args(
        SwitchMode::default(),
        &[
            "--l2tpv3".into(),
            opts(&a, 1, 2).into(),
            "--l2tpv3".into(),
            opts(&b, 3, 4).into(),
        ],
    );
    sw.wait_until(WAIT, |s| {
        s.count_containing(Stream::Stdout, ": the guest joins with ") == 2
    })
    .unwrap();
    let out = sw.stdout();
    for (g, n) in [(&a, 0), (&b, 1)] {
        let port: u16 = option_value(&announced(&out, n), "dstport")
            .parse()
            .unwrap();
        g.connect(SocketAddr::from(([127, 0, 0, 1], port)));
    }
    let daemon: FakePort = sw.port();
    let fa = frame(BROADCAST, mac(10), b"a");
    a.send(&cat(&hex("00 03 00 00 00 00 00 02"), &fa));
    assert_eq!(
        b.recv(WAIT),
        Some(cat(&hex("00 03 00 00 00 00 00 03"), &fa))
    );
    assert_eq!(daemon.recv(WAIT), Some(fa));
    let fb = frame(mac(10), mac(11), b"b");
    b.send(&cat(&hex("00 03 00 00 00 00 00 04"), &fb));
    assert_eq!(
        a.recv(WAIT),
        Some(cat(&hex("00 03 00 00 00 00 00 01"), &fb))
    );
    // Unicast to A only: the daemon port saw nothing more.
    assert_eq!(daemon.recv(QUIET), None);
}

/// A VXLAN datagram of network `vni` carrying `frame`.
fn vxlan_datagram(vni: u32, frame: &[u8]) -> Vec<u8> {
    cat(
        &uml_integration_tests::uml_common::vxlan::header(vni),
        frame,
    )
}

/// The next datagram on `sock` within `timeout`.
fn next_datagram(sock: &UdpSocket, timeout: Duration) -> Option<Vec<u8>> {
    sock.set_read_timeout(Some(timeout)).unwrap();
    let mut buf = vec![0u8; 65_536];
    let n = sock.recv(&mut buf).ok()?;
    buf.truncate(n);
    Some(buf)
}

/// A VXLAN trunk with two remote VTEPs (UDP sockets on 127.0.0.2 and
/// 127.0.0.3, the switch on 127.0.0.1, one port number for all): the
/// switch learns which remote a source MAC came from and sends unicast
/// frames for it to that remote only (the other gets the next broadcast
/// first); unknown unicast and broadcast go to both; a MAC that shows up
/// behind the other remote moves there (RFC 7348 §4, as a Linux vxlan
/// device does).
#[test]
fn vxlan_learns_which_remote_a_mac_is_behind() {
    require_ours!();
    // A port free on every address: the one the first remote got.
    let r1 = UdpSocket::bind("127.0.0.2:0").unwrap();
    let port = r1.local_addr().unwrap().port();
    let r2 = UdpSocket::bind(("127.0.0.3", port)).unwrap();
    let vni = 77;
    let mut sw = RunningSwitch::start_with_args(
        SwitchMode::default(),
        &[
            "--vxlan".into(),
            format!("local=127.0.0.1,remote=127.0.0.2,remote=127.0.0.3,vni={vni},port={port}")
                .into(),
        ],
    );
    sw.wait_line_starting(Stream::Stdout, "vxlan port ", WAIT)
        .unwrap();
    let switch = SocketAddr::from(([127, 0, 0, 1], port));
    let daemon = sw.port();
    let local = mac(5);

    // Guest 1 behind remote 1 says hello: the daemon port gets it.
    let hello = frame(BROADCAST, mac(1), b"hello from behind r1");
    r1.send_to(&vxlan_datagram(vni, &hello), switch).unwrap();
    assert_eq!(daemon.recv(WAIT), Some(hello));
    // Guest 2 behind remote 2 too.
    let hello2 = frame(BROADCAST, mac(2), b"hello from behind r2");
    r2.send_to(&vxlan_datagram(vni, &hello2), switch).unwrap();
    assert_eq!(daemon.recv(WAIT), Some(hello2));

    // Unicast to guest 1: remote 1 only. Remote 2's next datagram is the
    // broadcast sent after it.
    let to1 = frame(mac(1), local, b"for guest 1 only");
    daemon.send(&to1);
    assert_eq!(next_datagram(&r1, WAIT), Some(vxlan_datagram(vni, &to1)));
    let id = new_marker_id();
    let marker = marker_frame(id);
    daemon.send(&marker);
    assert_eq!(
        next_datagram(&r2, WAIT),
        Some(vxlan_datagram(vni, &marker)),
        "remote 2 got the unicast for remote 1's guest"
    );
    assert_eq!(next_datagram(&r1, WAIT), Some(vxlan_datagram(vni, &marker)));
    // And to guest 2: remote 2 only.
    let to2 = frame(mac(2), local, b"for guest 2 only");
    daemon.send(&to2);
    assert_eq!(next_datagram(&r2, WAIT), Some(vxlan_datagram(vni, &to2)));
    // Unknown unicast floods to both (remote 1's next datagram: not the
    // one for guest 2).
    let unknown = frame(mac(9), local, b"for nobody known");
    daemon.send(&unknown);
    for r in [&r1, &r2] {
        assert_eq!(next_datagram(r, WAIT), Some(vxlan_datagram(vni, &unknown)));
    }

    // Guest 1 moves behind remote 2.
    let moved = frame(local, mac(1), b"guest 1, now behind r2");
    r2.send_to(&vxlan_datagram(vni, &moved), switch).unwrap();
    assert_eq!(daemon.recv(WAIT), Some(moved));
    daemon.send(&to1);
    assert_eq!(next_datagram(&r2, WAIT), Some(vxlan_datagram(vni, &to1)));
    let id = new_marker_id();
    let marker = marker_frame(id);
    daemon.send(&marker);
    assert_eq!(
        next_datagram(&r1, WAIT),
        Some(vxlan_datagram(vni, &marker)),
        "remote 1 still got guest 1's unicast after it moved"
    );
    assert!(sw.is_running());
}
