//! `uml_switch --raw`, `--mcast` and `--mtu` against fake guests (see
//! `docs/vector.md` §6, §7; issue 11):
//!
//! * raw: a veth pair in a namespace the test creates; the fake guest is
//!   an `AF_PACKET` socket with virtio-net headers on the far end, as the
//!   vector driver's `transport=raw` opens it. Frames cross to a bess
//!   client both ways; the guest's checksum offload is completed and its
//!   TSO frames are cut into valid segments; the switch never receives
//!   back what it sent; frames longer than the switch's largest are
//!   dropped and counted.
//! * mcast: fake `ethN=mcast` guests (UDP sockets bound to the group and
//!   port, loop on) in a namespace with a multicast route on `lo`; the
//!   group is one port, the switch's own frames that loop back are not
//!   forwarded again.
//! * `--mtu`: large frames between bess ports, daemon ports keep 1514
//!   (their long frames still truncated, long frames to them dropped).
//! * refusals: missing interface, no `CAP_NET_RAW`, bad values, no route.
//!
//! Everything that needs privileges runs in namespaces the tests create;
//! every wait is bounded.

// Test code: a failed setup step should abort the test with its message.
#![allow(clippy::expect_used, clippy::unwrap_used)]

use std::ffi::OsString;
use std::io::Write;
use std::net::{Ipv4Addr, SocketAddrV4, UdpSocket};
use std::os::fd::{AsRawFd, OwnedFd};
use std::path::Path;
use std::time::{Duration, Instant};

use nix::sys::signal::Signal;
use nix::sys::socket::{recv, send, MsgFlags};
use uml_integration_tests::switch_client::{
    frame, mac, mac_str, marker_frame, marker_id, new_marker_id, new_temp_dir, BessClient,
    NsSwitch, RunningSwitch, Stream, SwitchBinary, SwitchMode, BROADCAST, WAIT,
};
use uml_integration_tests::uml_common::sys::{mcast as umcast, packet};
use uml_integration_tests::{require, run_with_timeout, wait_until, NetNs, Requirement};

/// Lifetime of a switch in a namespace.
const LIFETIME: Duration = Duration::from_secs(120);
/// The legacy mcast transport's default group and port.
const GROUP: Ipv4Addr = Ipv4Addr::new(239, 192, 168, 1);
const GROUP_PORT: u16 = 1102;

/// Returns from the test when the switch under test is the C reference.
macro_rules! require_ours {
    () => {
        if SwitchBinary::under_test().is_c_reference {
            let _ = writeln!(
                std::io::stderr(),
                "SKIP: --raw/--mcast/--mtu are not options of the C switch"
            );
            return;
        }
    };
}

/// `ip -n NS ARGS`, which must succeed.
fn ip(ns: &NetNs, args: &[&str]) {
    let out = ns.ip(args);
    assert!(out.success(), "ip {args:?}: {out}");
}

/// A namespace with the veth pair `va` (the guest's end) – `vb` (the
/// switch's), both up with MTU `mtu`, IPv6 off (no host chatter).
fn veth_namespace(tag: &str, mtu: u32) -> NetNs {
    let ns = NetNs::new(tag);
    for key in [
        "net.ipv6.conf.all.disable_ipv6",
        "net.ipv6.conf.default.disable_ipv6",
    ] {
        ns.sysctl(key, "1").unwrap();
    }
    ip(
        &ns,
        &["link", "add", "va", "type", "veth", "peer", "name", "vb"],
    );
    for dev in ["va", "vb"] {
        ip(&ns, &["link", "set", dev, "mtu", &mtu.to_string(), "up"]);
    }
    ns
}

/// The pid of the `uml_switch` running in `ns` (behind `timeout`).
fn switch_pid(ns: &NetNs) -> u32 {
    let mut found = None;
    let ok = wait_until(WAIT, || {
        found = ns.pids().into_iter().find(|p| {
            std::fs::read_link(format!("/proc/{p}/exe"))
                .is_ok_and(|e| e.to_string_lossy().ends_with("/uml_switch"))
        });
        found.is_some()
    });
    assert!(ok, "no uml_switch process in {}", ns.name());
    found.unwrap()
}

/// Sends SIGUSR1 to the switch in `ns` and returns its output once the
/// new counters and, after them, `then` (an endpoint's counters) appeared.
fn counters_ns(ns: &NetNs, sw: &mut NsSwitch, then: &str) -> String {
    let before = sw.output().matches(", MAC entries ").count();
    let pid = switch_pid(ns);
    nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid as i32), Signal::SIGUSR1).unwrap();
    assert!(
        sw.wait_output(WAIT, |o| {
            o.matches(", MAC entries ").count() > before
                && o.rsplit(", MAC entries ")
                    .next()
                    .is_some_and(|t| t.contains(then))
        }),
        "{}",
        sw.report()
    );
    sw.output()
}

/// The value of counter `name` (`name N`) in the last SIGUSR1 line of the
/// switch (the one with `MAC entries`).
fn counter(out: &str, name: &str) -> u64 {
    let line = out
        .lines()
        .rfind(|l| l.contains(", MAC entries "))
        .unwrap_or_else(|| panic!("no counters in:\n{out}"));
    let at = line
        .find(&format!(" {name} "))
        .unwrap_or_else(|| panic!("no {name:?} in {line}"));
    line[at + name.len() + 2..]
        .split(|c: char| !c.is_ascii_digit())
        .next()
        .unwrap()
        .parse()
        .unwrap()
}

// ---------------------------------------------------------------------------
// Frames with offloads, as a vector raw guest sends them
// ---------------------------------------------------------------------------

fn sum(data: &[u8], mut acc: u64) -> u64 {
    for c in data.chunks(2) {
        let hi = u64::from(c[0]) << 8;
        acc += hi | c.get(1).map_or(0, |&b| u64::from(b));
    }
    acc
}

fn fold(mut acc: u64) -> u16 {
    while acc >> 16 != 0 {
        acc = (acc & 0xffff) + (acc >> 16);
    }
    acc as u16
}

/// A virtio-net header (host byte order).
fn vnet(flags: u8, gso: u8, gso_size: u16, csum_start: u16, csum_offset: u16) -> [u8; 10] {
    let mut h = [0u8; 10];
    h[0] = flags;
    h[1] = gso;
    h[4..6].copy_from_slice(&gso_size.to_ne_bytes());
    h[6..8].copy_from_slice(&csum_start.to_ne_bytes());
    h[8..10].copy_from_slice(&csum_offset.to_ne_bytes());
    h
}

/// An IPv4 packet of `proto` with `l4` (its checksum field holding the
/// pseudo-header's sum, as with checksum offload) in an Ethernet frame
/// from `src` to `dst`; returns the frame and the L4 header's offset.
fn ipv4_frame(dst: [u8; 6], src: [u8; 6], proto: u8, l4: &[u8], csum_at: usize) -> Vec<u8> {
    let mut f = dst.to_vec();
    f.extend_from_slice(&src);
    f.extend_from_slice(&[0x08, 0x00, 0x45, 0]);
    f.extend_from_slice(&((20 + l4.len()) as u16).to_be_bytes());
    f.extend_from_slice(&[0x43, 0x21, 0x40, 0, 64, proto, 0, 0]);
    f.extend_from_slice(&[10, 0, 0, 1, 10, 0, 0, 2]);
    let c = !fold(sum(&f[14..34], 0));
    f[24..26].copy_from_slice(&c.to_be_bytes());
    f.extend_from_slice(l4);
    let pseudo = fold(sum(&f[26..34], 0) + u64::from(proto) + l4.len() as u64);
    f[34 + csum_at..36 + csum_at].copy_from_slice(&pseudo.to_be_bytes());
    f
}

/// Whether the IPv4 header and L4 checksums of `f` verify.
fn ipv4_checksums_ok(f: &[u8]) -> bool {
    let proto = f[23];
    let l4 = &f[34..];
    fold(sum(&f[14..34], 0)) == 0xffff
        && fold(sum(
            l4,
            sum(&f[26..34], 0) + u64::from(proto) + l4.len() as u64,
        )) == 0xffff
}

// ---------------------------------------------------------------------------
// Fake guests
// ---------------------------------------------------------------------------

/// The vector driver's raw transport: an `AF_PACKET` socket with
/// virtio-net headers on one end of the veth pair.
struct PacketGuest {
    fd: OwnedFd,
}

impl PacketGuest {
    fn open(ns: &NetNs, ifname: &str) -> PacketGuest {
        let s = ns
            .run_in(|| packet::open(ifname))
            .unwrap_or_else(|e| panic!("{ifname}: {e}"));
        PacketGuest { fd: s.fd }
    }

    fn send(&self, hdr: [u8; 10], frame: &[u8]) {
        let mut b = hdr.to_vec();
        b.extend_from_slice(frame);
        let n = send(self.fd.as_raw_fd(), &b, MsgFlags::empty())
            .unwrap_or_else(|e| panic!("raw guest sending {} bytes: {e}", frame.len()));
        assert_eq!(n, b.len());
    }

    /// One frame (header, frame), waiting at most `timeout`.
    fn recv(&self, timeout: Duration) -> Option<([u8; 10], Vec<u8>)> {
        let deadline = Instant::now() + timeout;
        let mut buf = vec![0u8; 70_000];
        loop {
            match recv(self.fd.as_raw_fd(), &mut buf, MsgFlags::MSG_DONTWAIT) {
                Ok(n) if n >= 10 => {
                    let mut h = [0u8; 10];
                    h.copy_from_slice(&buf[..10]);
                    return Some((h, buf[10..n].to_vec()));
                }
                Ok(_) => {}
                Err(nix::errno::Errno::EAGAIN) => {
                    if Instant::now() >= deadline {
                        return None;
                    }
                    std::thread::sleep(Duration::from_millis(2));
                }
                Err(e) => panic!("raw guest receiving: {e}"),
            }
        }
    }

    /// Frames until marker `id`; returns those before it.
    fn until_marker(&self, id: u32) -> Vec<Vec<u8>> {
        let mut before = Vec::new();
        loop {
            let (_, f) = self
                .recv(WAIT)
                .unwrap_or_else(|| panic!("marker {id} never arrived; before: {before:?}"));
            if marker_id(&f) == Some(id) {
                return before;
            }
            before.push(f);
        }
    }
}

/// Frames a bess client receives until marker `id`.
fn bess_until_marker(b: &BessClient, id: u32) -> Vec<Vec<u8>> {
    let mut before = Vec::new();
    loop {
        let f = b
            .recv(WAIT)
            .unwrap_or_else(|| panic!("marker {id} never arrived; before: {before:?}"));
        if marker_id(&f) == Some(id) {
            return before;
        }
        before.push(f);
    }
}

/// The legacy mcast transport: a UDP socket bound to the group and port
/// (`SO_REUSEADDR`), joined, loop on, sending to the group from that port.
struct McastGuest {
    sock: UdpSocket,
}

impl McastGuest {
    fn open(ns: &NetNs) -> McastGuest {
        let sock = ns
            .run_in(|| umcast::open_receiver(GROUP, GROUP_PORT))
            .unwrap();
        sock.set_nonblocking(false).unwrap();
        sock.set_multicast_loop_v4(true).unwrap();
        McastGuest { sock }
    }

    fn send(&self, frame: &[u8]) {
        let n = self
            .sock
            .send_to(frame, SocketAddrV4::new(GROUP, GROUP_PORT))
            .unwrap();
        assert_eq!(n, frame.len());
    }

    fn recv(&self, timeout: Duration) -> Option<Vec<u8>> {
        self.sock
            .set_read_timeout(Some(timeout.max(Duration::from_millis(1))))
            .unwrap();
        let mut buf = vec![0u8; 65536];
        let n = self.sock.recv(&mut buf).ok()?;
        buf.truncate(n);
        Some(buf)
    }

    fn until_marker(&self, id: u32) -> Vec<Vec<u8>> {
        let mut before = Vec::new();
        loop {
            let f = self
                .recv(WAIT)
                .unwrap_or_else(|| panic!("marker {id} never arrived; before: {before:?}"));
            if marker_id(&f) == Some(id) {
                return before;
            }
            before.push(f);
        }
    }
}

/// The switch's start-up line that names how guests join `what`.
fn join_line<'a>(out: &'a str, what: &str) -> &'a str {
    out.lines()
        .find(|l| l.starts_with(what) && l.contains(" join with "))
        .unwrap_or_else(|| panic!("no {what:?} line in:\n{out}"))
}

// ---------------------------------------------------------------------------
// raw
// ---------------------------------------------------------------------------

/// A fake raw guest and a bess client through a raw port on the other
/// end of its veth pair: frames both ways, the switch's own frames not
/// received back, checksum offload completed, TSO frames cut into valid
/// segments, frames too long for the switch dropped and counted.
#[test]
fn raw_port_carries_frames_and_completes_offloads() {
    require!(Requirement::Root, Requirement::NetNs);
    require_ours!();
    let ns = veth_namespace("rawp", 9000);
    let dir = new_temp_dir();
    let bess_path = dir.path().join("sw.bess");
    let ctl = dir.path().join("sw.ctl");
    let args: Vec<OsString> = vec![
        "-unix".into(),
        ctl.clone().into(),
        "--bess".into(),
        bess_path.clone().into(),
        "--raw".into(),
        "vb".into(),
    ];
    let mut sw =
        NsSwitch::start(&ns, dir.path(), &args, LIFETIME).unwrap_or_else(|e| panic!("{e}"));
    assert!(
        sw.wait_output(WAIT, |o| o.contains("raw port ")),
        "{}",
        sw.report()
    );
    let out = sw.output();
    let line = join_line(&out, "raw port ");
    assert!(
        line.ends_with(" on 'vb' (mtu 9000): guests join with vec0:transport=raw,ifname=va"),
        "{line}"
    );
    let label: u32 = line["raw port ".len()..]
        .split(' ')
        .next()
        .unwrap()
        .parse()
        .unwrap();
    assert!(label >= 1000, "{line}");
    join_line(&out, &format!("control socket '{}'", ctl.display()));

    let guest = PacketGuest::open(&ns, "va");
    let bess = BessClient::connect(&bess_path).unwrap();
    assert!(
        sw.wait_output(WAIT, |o| o.contains("New bess connection")),
        "{}",
        sw.report()
    );
    let plain = [0u8; 10];

    // Guest (MAC 1) → bess: broadcast, learned on the raw port.
    let f = frame(BROADCAST, mac(1), b"from the raw guest");
    guest.send(plain, &f);
    assert_eq!(bess.recv(WAIT), Some(f));
    assert!(
        sw.wait_output(WAIT, |o| o
            .contains(&format!(" Addr: {} New port {label}", mac_str(mac(1))))),
        "{}",
        sw.report()
    );
    // Bess (MAC 2) → guest: unicast, and a broadcast that the switch must
    // not receive back from the interface (it would flood it to bess and
    // move MAC 2 to the raw port).
    let u = frame(mac(1), mac(2), b"to the raw guest");
    bess.send(&u);
    assert_eq!(guest.recv(WAIT), Some((plain, u)));
    let b = frame(BROADCAST, mac(2), b"broadcast from bess");
    bess.send(&b);
    let id = new_marker_id();
    bess.send(&marker_frame(id));
    assert_eq!(guest.until_marker(id), vec![b]);
    let id = new_marker_id();
    guest.send(plain, &marker_frame(id));
    assert_eq!(bess_until_marker(&bess, id), Vec::<Vec<u8>>::new());

    // A VLAN-tagged frame: the kernel takes the tag out before packet
    // sockets see it; the switch puts it back.
    let mut tagged = frame(BROADCAST, mac(1), b"on VLAN 7");
    tagged.splice(12..12, [0x81, 0x00, 0x00, 0x07]);
    guest.send(plain, &tagged);
    assert_eq!(bess.recv(WAIT), Some(tagged));

    // Checksum offload: a UDP datagram whose checksum is left to do.
    let mut udp = vec![0x30, 0x39, 0x00, 0x35, 0, 0, 0, 0];
    udp.extend_from_slice(b"checksum me, odd length");
    let len = udp.len() as u16;
    udp[4..6].copy_from_slice(&len.to_be_bytes());
    let partial = ipv4_frame(mac(2), mac(1), 17, &udp, 6);
    assert!(!ipv4_checksums_ok(&partial));
    guest.send(vnet(1, 0, 0, 34, 6), &partial);
    let got = bess.recv(WAIT).expect("the checksummed datagram");
    assert!(ipv4_checksums_ok(&got), "{got:02x?}");
    assert_eq!((&got[..40], &got[42..]), (&partial[..40], &partial[42..]));

    // TSO: one 4000-byte TCP frame with a 1448-byte MSS becomes three
    // segments with their own lengths, ids, sequence numbers, flags and
    // checksums.
    let payload: Vec<u8> = (0..4000u32).map(|i| (i % 251) as u8).collect();
    let mut tcp = vec![0x30, 0x39, 0x00, 0x50, 0, 0, 0x10, 0, 0, 0, 0, 1];
    tcp.extend_from_slice(&[0x50, 0x19, 0x01, 0x00, 0, 0, 0, 0]); // FIN|PSH|ACK
    tcp.extend_from_slice(&payload);
    let big = ipv4_frame(mac(2), mac(1), 6, &tcp, 16);
    guest.send(vnet(1, 1, 1448, 34, 16), &big);
    let mut data = Vec::new();
    for k in 0..3u32 {
        let seg = bess
            .recv(WAIT)
            .unwrap_or_else(|| panic!("segment {k}:\n{}", sw.report()));
        assert!(ipv4_checksums_ok(&seg), "segment {k}: {:02x?}", &seg[..60]);
        let want_len = 54 + if k < 2 { 1448 } else { 4000 - 2 * 1448 };
        assert_eq!(seg.len(), want_len, "segment {k}");
        assert_eq!(
            u16::from_be_bytes([seg[16], seg[17]]) as usize,
            want_len - 14
        );
        assert_eq!(u16::from_be_bytes([seg[18], seg[19]]), 0x4321 + k as u16);
        let seq = u32::from_be_bytes(seg[38..42].try_into().unwrap());
        assert_eq!(seq, 0x1000 + 1448 * k);
        assert_eq!(seg[47], if k < 2 { 0x10 } else { 0x19 }, "flags {k}");
        data.extend_from_slice(&seg[54..]);
    }
    assert_eq!(data, payload);

    // Longer than the switch's largest frame (1514): dropped, counted for
    // the raw port, not cut.
    guest.send(plain, &frame(BROADCAST, mac(1), &[7; 1600]));
    let id = new_marker_id();
    guest.send(plain, &marker_frame(id));
    assert_eq!(bess_until_marker(&bess, id), Vec::<Vec<u8>>::new());

    let out = counters_ns(
        &ns,
        &mut sw,
        &format!("raw port {label} on 'vb': frames in"),
    );
    assert_eq!(counter(&out, "too long"), 1, "{out}");
    assert!(
        out.contains(&format!(
            "port {label}: 1 frames dropped as longer than 1514 bytes"
        )),
        "{out}"
    );
    assert!(
        out.contains(&format!(
            "raw port {label} on 'vb': frames in 7 (1 segmented, 1 checksummed), out 3,"
        )),
        "{out}"
    );
    assert!(!out.contains(" old port "), "{out}");
    assert!(
        !out.contains("Receiving on") && !out.contains("Sending to"),
        "{out}"
    );
    assert!(sw.running(), "{}", sw.report());
}

/// With `--mtu 9000`, frames of up to 9014 bytes cross between a raw and
/// a bess port both ways; longer ones are dropped.
#[test]
fn raw_port_carries_large_frames_with_mtu() {
    require!(Requirement::Root, Requirement::NetNs);
    require_ours!();
    let ns = veth_namespace("rawm", 9000);
    let dir = new_temp_dir();
    let bess_path = dir.path().join("sw.bess");
    let args: Vec<OsString> = vec![
        "-unix".into(),
        dir.path().join("sw.ctl").into(),
        "--mtu".into(),
        "9000".into(),
        "--bess".into(),
        bess_path.clone().into(),
        "--raw=vb".into(),
    ];
    let mut sw =
        NsSwitch::start(&ns, dir.path(), &args, LIFETIME).unwrap_or_else(|e| panic!("{e}"));
    assert!(
        sw.wait_output(WAIT, |o| o.contains("raw port ")),
        "{}",
        sw.report()
    );
    let guest = PacketGuest::open(&ns, "va");
    let bess = BessClient::connect(&bess_path).unwrap();
    assert!(
        sw.wait_output(WAIT, |o| o.contains("New bess connection")),
        "{}",
        sw.report()
    );
    let plain = [0u8; 10];
    let big = frame(BROADCAST, mac(1), &[0xa5; 9000]);
    assert_eq!(big.len(), 9014);
    guest.send(plain, &big);
    assert_eq!(bess.recv(WAIT), Some(big));
    let back = frame(mac(1), mac(2), &[0x5a; 9000]);
    bess.send(&back);
    assert_eq!(guest.recv(WAIT), Some((plain, back)));
    // One byte more: dropped on the way in (bess) and not sent (to raw).
    bess.send(&frame(mac(1), mac(2), &[1; 9001]));
    let id = new_marker_id();
    bess.send(&marker_frame(id));
    assert_eq!(guest.until_marker(id), Vec::<Vec<u8>>::new());
    let out = counters_ns(&ns, &mut sw, "raw port ");
    assert_eq!(counter(&out, "too long"), 1, "{out}");
    assert!(
        out.contains(" frames dropped as longer than 9014 bytes"),
        "{out}"
    );
}

/// A raw port on an interface that is down: reported at start-up, and
/// frames flow once it is up.
#[test]
fn raw_port_on_a_down_interface_works_once_it_is_up() {
    require!(Requirement::Root, Requirement::NetNs);
    require_ours!();
    let ns = veth_namespace("rawd", 1500);
    ip(&ns, &["link", "set", "vb", "down"]);
    let dir = new_temp_dir();
    let bess_path = dir.path().join("sw.bess");
    let args: Vec<OsString> = vec![
        "-unix".into(),
        dir.path().join("sw.ctl").into(),
        "--bess".into(),
        bess_path.clone().into(),
        "--raw".into(),
        "vb".into(),
    ];
    let mut sw =
        NsSwitch::start(&ns, dir.path(), &args, LIFETIME).unwrap_or_else(|e| panic!("{e}"));
    assert!(
        sw.wait_output(WAIT, |o| o.contains("raw port ")),
        "{}",
        sw.report()
    );
    assert!(
        sw.output().contains(
            "--raw 'vb': the interface is down; frames flow once it is up (ip link set vb up)"
        ),
        "{}",
        sw.report()
    );
    let guest = PacketGuest::open(&ns, "va");
    let bess = BessClient::connect(&bess_path).unwrap();
    assert!(
        sw.wait_output(WAIT, |o| o.contains("New bess connection")),
        "{}",
        sw.report()
    );
    // While it is down, what the switch sends it is lost quietly.
    bess.send(&frame(BROADCAST, mac(2), b"into a down link"));
    ip(&ns, &["link", "set", "vb", "up"]);
    let plain = [0u8; 10];
    let f = frame(BROADCAST, mac(1), b"after the link came up");
    // The veth pair may take a moment to carry frames after it is up.
    let mut got = None;
    let ok = wait_until(WAIT, || {
        guest.send(plain, &f);
        got = bess.recv(Duration::from_millis(100));
        got.is_some()
    });
    assert!(ok, "nothing arrived:\n{}", sw.report());
    assert_eq!(got, Some(f));
    let back = frame(mac(1), mac(2), b"and back");
    bess.send(&back);
    let mut seen = Vec::new();
    let mut arrived = false;
    while let Some((_, g)) = guest.recv(WAIT) {
        if g == back {
            arrived = true;
            break;
        }
        seen.push(g);
    }
    assert!(arrived, "the unicast never arrived; saw {seen:?}");
    assert!(
        seen.iter().all(|g| g[6..12] == mac(2)),
        "unexpected frames: {seen:?}"
    );
    assert!(
        !sw.output().contains("Receiving on") && !sw.output().contains("Sending to"),
        "{}",
        sw.report()
    );
}

/// `--raw` refusals: a missing interface, a name too long, and no
/// `CAP_NET_RAW` (status 1, the reason, no socket left behind).
#[test]
fn raw_port_refusals() {
    require!(Requirement::Root, Requirement::NetNs);
    require_ours!();
    let ns = veth_namespace("rawr", 1500);
    let binary = SwitchBinary::under_test();
    for (ifname, why) in [
        ("nosuch0", "no such interface in this network namespace"),
        ("a-very-long-name0", "not an interface name"),
    ] {
        let dir = new_temp_dir();
        let ctl = dir.path().join("ctl");
        let mut cmd = ns.exec(&binary.path);
        cmd.arg("-unix").arg(&ctl).args(["--raw", ifname]);
        let out = run_with_timeout(&mut cmd, WAIT);
        assert_eq!(out.code, Some(1), "{out}");
        let stderr = out.stderr_str();
        assert!(
            stderr.contains(&format!("--raw '{ifname}': {why}")),
            "{stderr}"
        );
        assert!(!ctl.exists(), "control socket left behind");
    }
    let Some(setpriv) = uml_integration_tests::find_in_path("setpriv") else {
        let reason = "setpriv not found (apt-get install util-linux)";
        if std::env::var("CI").as_deref() == Ok("true") {
            panic!("{reason}; CI must provide it");
        }
        let _ = writeln!(std::io::stderr(), "SKIP (part): {reason}");
        return;
    };
    let dir = new_temp_dir();
    let ctl = dir.path().join("ctl");
    let mut cmd = ns.exec(setpriv);
    cmd.args(["--bounding-set", "-net_raw", "--inh-caps", "-net_raw"])
        .arg(&binary.path)
        .arg("-unix")
        .arg(&ctl)
        .args(["--raw", "vb"]);
    let out = run_with_timeout(&mut cmd, WAIT);
    assert_eq!(out.code, Some(1), "{out}");
    let stderr = out.stderr_str();
    assert!(
        stderr.contains("--raw 'vb': cannot open an AF_PACKET socket")
            && stderr.contains("raw ports need CAP_NET_RAW"),
        "{stderr}"
    );
    assert!(!ctl.exists(), "control socket left behind");
}

// ---------------------------------------------------------------------------
// mcast
// ---------------------------------------------------------------------------

/// A namespace whose `lo` carries multicast, with a route to 224.0.0.0/4.
fn mcast_namespace(tag: &str) -> NetNs {
    let ns = NetNs::new(tag);
    ip(&ns, &["link", "set", "lo", "multicast", "on"]);
    ip(&ns, &["route", "add", "224.0.0.0/4", "dev", "lo"]);
    ns
}

/// Two fake mcast guests and a bess client: the group is one port; the
/// guests reach each other directly and the bess client through the
/// switch; what the switch sends to the group comes back to it (loop) and
/// is not forwarded again; long datagrams are dropped and counted.
#[test]
fn mcast_group_is_one_port_and_own_frames_stay_out() {
    require!(Requirement::Root, Requirement::NetNs);
    require_ours!();
    let ns = mcast_namespace("mcast");
    let dir = new_temp_dir();
    let bess_path = dir.path().join("sw.bess");
    let args: Vec<OsString> = vec![
        "-unix".into(),
        dir.path().join("sw.ctl").into(),
        "--bess".into(),
        bess_path.clone().into(),
        "--mcast".into(),
    ];
    let mut sw =
        NsSwitch::start(&ns, dir.path(), &args, LIFETIME).unwrap_or_else(|e| panic!("{e}"));
    assert!(
        sw.wait_output(WAIT, |o| o.contains("mcast port ")),
        "{}",
        sw.report()
    );
    let out = sw.output();
    let line = join_line(&out, "mcast port ");
    assert!(
        line.ends_with(
            " (group 239.192.168.1:1102, ttl 1): guests join with eth0=mcast,,239.192.168.1,1102,1"
        ),
        "{line}"
    );
    let label: u32 = line["mcast port ".len()..]
        .split(' ')
        .next()
        .unwrap()
        .parse()
        .unwrap();
    let a = McastGuest::open(&ns);
    let b = McastGuest::open(&ns);
    let bess = BessClient::connect(&bess_path).unwrap();
    assert!(
        sw.wait_output(WAIT, |o| o.contains("New bess connection")),
        "{}",
        sw.report()
    );

    // a (MAC 1) broadcasts: b gets it from a directly, bess through the
    // switch, once.
    let f = frame(BROADCAST, mac(1), b"from mcast guest a");
    a.send(&f);
    assert_eq!(bess.recv(WAIT), Some(f.clone()));
    assert_eq!(b.recv(WAIT), Some(f.clone()));
    assert!(
        sw.wait_output(WAIT, |o| o
            .contains(&format!(" Addr: {} New port {label}", mac_str(mac(1))))),
        "{}",
        sw.report()
    );
    // bess (MAC 9) broadcasts: each guest gets one copy, from the switch;
    // the copy that loops back to the switch is not flooded to bess.
    let g = frame(BROADCAST, mac(9), b"from bess");
    bess.send(&g);
    let id = new_marker_id();
    bess.send(&marker_frame(id));
    for (guest, name) in [(&a, "a"), (&b, "b")] {
        let mut before = guest.until_marker(id);
        before.retain(|x| *x != f); // a's own frame, looped back to it
        assert_eq!(before, vec![g.clone()], "guest {name}");
    }
    // b (MAC 2) → a (MAC 1), unicast: a and b share the switch's port, so
    // nothing goes to bess.
    b.send(&frame(BROADCAST, mac(2), b"b is here"));
    let _ = bess.recv(WAIT).expect("b's broadcast");
    b.send(&frame(mac(1), mac(2), b"b to a"));
    // A datagram longer than the legacy devices' frames: dropped.
    a.send(&frame(BROADCAST, mac(1), &[3; 1600]));
    let id = new_marker_id();
    a.send(&marker_frame(id));
    assert_eq!(bess_until_marker(&bess, id), Vec::<Vec<u8>>::new());

    let out = counters_ns(&ns, &mut sw, &format!("mcast port {label} (group"));
    assert!(!out.contains(" old port "), "{out}");
    assert_eq!(counter(&out, "too long"), 1, "{out}");
    let stats = out
        .lines()
        .rfind(|l| l.contains(&format!("mcast port {label} (group")))
        .unwrap_or_else(|| panic!("no mcast counters in:\n{out}"));
    let own: u64 = stats
        .rsplit(' ')
        .next()
        .unwrap()
        .parse()
        .unwrap_or_else(|_| panic!("{stats}"));
    // The switch sent g and its marker to the group and got both back.
    assert!(own >= 2, "{stats}");
    assert!(sw.running(), "{}", sw.report());
}

/// `--mcast` values a guest could not use, two ports on one group, and a
/// group without a route: refused with status 1 and the reason.
#[test]
fn mcast_refusals() {
    require!(Requirement::Root, Requirement::NetNs);
    require_ours!();
    let binary = SwitchBinary::under_test();
    let plain = NetNs::new("mcnr");
    let routed = mcast_namespace("mcr");
    for (ns, args, why) in [
        (
            &routed,
            vec!["--mcast=10.0.0.1"],
            "--mcast=10.0.0.1: 10.0.0.1: not a multicast address",
        ),
        (
            &routed,
            vec!["--mcast=239.1.1.1,0"],
            "port 0: expected 1 to 65535",
        ),
        (
            &routed,
            vec!["--mcast=239.1.1.1,1,300"],
            "ttl 300: expected 0 to 255",
        ),
        (
            &routed,
            vec!["--mcast", "--mcast=239.192.168.1,1102,4"],
            "group 239.192.168.1:1102 given twice",
        ),
        (
            &plain,
            vec!["--mcast"],
            "--mcast=239.192.168.1,1102,1: cannot join the group",
        ),
    ] {
        let dir = new_temp_dir();
        let ctl = dir.path().join("ctl");
        let mut cmd = ns.exec(&binary.path);
        cmd.arg("-unix").arg(&ctl).args(&args);
        let out = run_with_timeout(&mut cmd, WAIT);
        assert_eq!(out.code, Some(1), "{args:?}: {out}");
        let stderr = out.stderr_str();
        assert!(stderr.contains(why), "{args:?}: {stderr}");
        if ns.name() == plain.name() {
            assert!(stderr.contains("ip route add 224.0.0.0/4"), "{stderr}");
        }
        assert!(!ctl.exists(), "{args:?}: control socket left behind");
    }
}

// ---------------------------------------------------------------------------
// --mtu
// ---------------------------------------------------------------------------

fn bess_client(sw: &mut RunningSwitch, path: &Path, n: usize) -> BessClient {
    let c = BessClient::connect(path).unwrap();
    sw.wait_until(WAIT, |s| {
        s.count_containing(Stream::Stdout, "New bess connection") == n
    })
    .unwrap_or_else(|e| panic!("{e}"));
    c
}

/// SIGUSR1's counters of a switch started by the test harness.
fn counters(sw: &mut RunningSwitch) -> String {
    let before = sw.count_containing(Stream::Stderr, ", frames in ");
    sw.signal(Signal::SIGUSR1);
    sw.wait_until(WAIT, |s| {
        s.count_containing(Stream::Stderr, ", frames in ") > before
    })
    .unwrap_or_else(|e| panic!("no counters after SIGUSR1: {e}"));
    sw.stderr()
}

/// With `--mtu 9000`: 9014-byte frames between bess ports; one byte
/// more is dropped; a daemon port (1514) gets no long frame (dropped and
/// counted for it) and its own long frames are still cut to 1514 bytes.
#[test]
fn mtu_lets_bess_ports_carry_large_frames_and_daemon_ports_keep_1514() {
    require_ours!();
    let dir = new_temp_dir();
    let bess_path = dir.path().join("sw.bess");
    let mut sw = RunningSwitch::start_in_with_args(
        dir,
        SwitchMode::default(),
        &[
            "--mtu".into(),
            "9000".into(),
            "--bess".into(),
            bess_path.clone().into(),
        ],
    )
    .unwrap_or_else(|e| panic!("{e}"));
    let a = bess_client(&mut sw, &bess_path, 1);
    let b = bess_client(&mut sw, &bess_path, 2);
    let d = sw.port();
    let d_label = {
        d.send(&frame(BROADCAST, mac(4), b"d is here"));
        let prefix = format!(" Addr: {} New port ", mac_str(mac(4)));
        let line = sw
            .wait_line_starting(Stream::Stdout, &prefix, WAIT)
            .unwrap_or_else(|e| panic!("{e}"));
        line[prefix.len()..].to_string()
    };
    let _ = a.recv(WAIT);
    let _ = b.recv(WAIT);

    let big = frame(BROADCAST, mac(1), &[0x11; 9000]);
    a.send(&big);
    assert_eq!(b.recv(WAIT), Some(big));
    a.send(&frame(BROADCAST, mac(1), &[0x22; 9001]));
    let small = frame(BROADCAST, mac(1), b"small frames still reach everyone");
    a.send(&small);
    assert_eq!(b.recv(WAIT), Some(small.clone()));
    assert_eq!(d.recv(WAIT), Some(small));
    // The daemon port's long frame is cut to 1514 bytes, as before.
    let long = frame(BROADCAST, mac(4), &[0x33; 3000]);
    d.send(&long);
    assert_eq!(a.recv(WAIT).as_deref(), Some(&long[..1514]));
    assert_eq!(b.recv(WAIT).as_deref(), Some(&long[..1514]));
    let err = counters(&mut sw);
    let last = err.lines().rfind(|l| l.contains(", frames in ")).unwrap();
    assert!(last.contains(", truncated 1,"), "{last}");
    assert!(last.contains(" too long 2,"), "{last}");
    assert!(
        err.contains(&format!(
            "port {d_label}: 1 frames dropped as longer than 1514 bytes (this port's limit; the \
             switch's is 9014)"
        )),
        "{err}"
    );
}

/// Bad `--mtu` values, and tunnel guests' `mtu=` beyond the switch's.
#[test]
fn mtu_refusals() {
    require_ours!();
    let binary = SwitchBinary::under_test();
    let tunnel = "udp=1,src=127.0.0.1,srcport=1,dst=127.0.0.1,dstport=0,rx_session=1,\
                  tx_session=2,mtu=9000";
    for (args, why) in [
        (
            vec!["--mtu", "1499"],
            "--mtu '1499': expected a number from 1500 to 65535",
        ),
        (vec!["--mtu=65536"], "--mtu '65536': expected a number"),
        (vec!["--mtu", "x"], "--mtu 'x': expected a number"),
        (
            vec!["--l2tpv3", tunnel],
            "mtu=9000: the switch forwards frames of at most 1514 bytes",
        ),
        (
            vec!["--mtu", "8000", "--l2tpv3", tunnel],
            "use an mtu from 576 to 8000",
        ),
    ] {
        let dir = new_temp_dir();
        let ctl = dir.path().join("ctl");
        let mut cmd = binary.command([OsString::from("-unix"), ctl.clone().into_os_string()]);
        cmd.args(&args);
        let out = run_with_timeout(&mut cmd, WAIT);
        assert_eq!(out.code, Some(1), "{args:?}: {out}");
        assert!(out.stderr_str().contains(why), "{args:?}: {out}");
        assert!(!ctl.exists(), "{args:?}: control socket left behind");
    }
    let help = run_with_timeout(&mut binary.command(["--help"]), WAIT);
    let text = help.stdout_str();
    for o in ["--raw IFNAME", "--mcast[=GROUP[,PORT[,TTL]]]", "--mtu N"] {
        assert!(text.contains(o), "{o}: {text}");
    }
}

/// With `--mtu 9000`, an l2tpv3/UDP tunnel guest at `mtu=9000` and a bess
/// client exchange 9014-byte frames; a longer frame from the tunnel is
/// dropped and counted (in a namespace of its own).
#[test]
fn mtu_applies_to_tunnel_ports() {
    require!(Requirement::Root, Requirement::NetNs);
    require_ours!();
    let ns = NetNs::new("mtut");
    let guest = ns.run_in(|| UdpSocket::bind("127.0.0.1:0")).unwrap();
    guest.set_read_timeout(Some(WAIT)).unwrap();
    let opts = format!(
        "udp=1,src=127.0.0.1,srcport={},dst=127.0.0.1,dstport=0,rx_session=1,tx_session=2,\
         mtu=9000",
        guest.local_addr().unwrap().port()
    );
    let dir = new_temp_dir();
    let bess_path = dir.path().join("sw.bess");
    let args: Vec<OsString> = vec![
        "-unix".into(),
        dir.path().join("sw.ctl").into(),
        "--mtu=9000".into(),
        "--bess".into(),
        bess_path.clone().into(),
        "--l2tpv3".into(),
        opts.into(),
    ];
    let mut sw =
        NsSwitch::start(&ns, dir.path(), &args, LIFETIME).unwrap_or_else(|e| panic!("{e}"));
    assert!(
        sw.wait_output(WAIT, |o| o.contains(": the guest joins with ")),
        "{}",
        sw.report()
    );
    let out = sw.output();
    let port: u16 = out
        .split(",dstport=")
        .nth(1)
        .and_then(|r| r.split(',').next())
        .and_then(|p| p.parse().ok())
        .unwrap_or_else(|| panic!("no dstport in:\n{out}"));
    guest.connect(("127.0.0.1", port)).unwrap();
    let bess = BessClient::connect(&bess_path).unwrap();
    assert!(
        sw.wait_output(WAIT, |o| o.contains("New bess connection")),
        "{}",
        sw.report()
    );
    let header_in = [0, 3, 0, 0, 0, 0, 0, 2];
    let header_out = [0, 3, 0, 0, 0, 0, 0, 1];
    let big = frame(BROADCAST, mac(1), &[0x77; 9000]);
    let mut packet = header_in.to_vec();
    packet.extend_from_slice(&big);
    guest.send(&packet).unwrap();
    assert_eq!(bess.recv(WAIT), Some(big));
    let back = frame(mac(1), mac(2), &[0x88; 9000]);
    bess.send(&back);
    let mut buf = vec![0u8; 65536];
    let n = guest.recv(&mut buf).expect("the large frame back");
    assert_eq!(&buf[..8], &header_out);
    assert_eq!(&buf[8..n], &back[..]);
    let mut longer = header_in.to_vec();
    longer.extend_from_slice(&frame(BROADCAST, mac(1), &[1; 9001]));
    guest.send(&longer).unwrap();
    let id = new_marker_id();
    let mut marker = header_in.to_vec();
    marker.extend_from_slice(&marker_frame(id));
    guest.send(&marker).unwrap();
    assert_eq!(bess_until_marker(&bess, id), Vec::<Vec<u8>>::new());
    let out = counters_ns(&ns, &mut sw, "l2tpv3 port ");
    assert_eq!(counter(&out, "too long"), 1, "{out}");
}
