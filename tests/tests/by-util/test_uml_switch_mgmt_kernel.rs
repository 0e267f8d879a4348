//! The management socket with real guests: a 7.x guest on `bess` and a
//! 6.1 guest on `daemon` ping each other through one switch; the
//! management client (`uml_switch --mgmt PATH …`) lists both ports with
//! their kinds and the guests' processes, the MAC table holds both guests'
//! MACs on the ports the switch's log names, and both ports counted the
//! pings both ways; the capture the switch wrote (`--pcap`) holds the
//! echo requests and replies. Then the guests are put in different VLANs through the
//! socket and can no longer reach each other.
//!
//! Everything runs in a network namespace the test creates and removes;
//! guests and switch are ended by pid; every wait is bounded.

#![allow(clippy::expect_used, clippy::unwrap_used)]

use std::ffi::OsString;
use std::path::Path;
use std::process::Command;
use std::time::Duration;

use uml_integration_tests::segment::{
    self, expect_power_off, guest_mac as mac, halt, learned, switch_is_ours, Guest, LINK_UP,
};
use uml_integration_tests::switch_client::{new_temp_dir, NsSwitch, SwitchBinary, WAIT};
use uml_integration_tests::{
    require, run_with_timeout, Kernel, NetNs, Requirement, Uml, IDLE_SCRIPT,
};

const SWITCH_LIFETIME: Duration = Duration::from_secs(150);
const UML_LIFETIME: Duration = Duration::from_secs(120);
const GUEST_STEP: Duration = Duration::from_secs(40);
const UML_EXIT: Duration = Duration::from_secs(20);

/// `uml_switch --mgmt PATH WORDS…`: status and stdout (stderr in panics).
fn mgmt(path: &Path, words: &[&str]) -> (i32, String) {
    let mut cmd = Command::new(&SwitchBinary::under_test().path);
    cmd.arg("--mgmt").arg(path).args(words);
    let out = run_with_timeout(&mut cmd, WAIT);
    assert!(
        out.stderr.is_empty() || out.code != Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    (
        out.code.unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
    )
}

/// Echo requests 10.0.0.2 -> 10.0.0.1 and replies 10.0.0.1 -> 10.0.0.2
/// in the capture file `path` (untagged IPv4 frames).
fn icmp_echoes(path: &Path) -> (usize, usize) {
    let file = std::fs::File::open(path).unwrap();
    let mut r = pcap_file::pcap::PcapReader::new(file).unwrap();
    let (mut requests, mut replies) = (0, 0);
    while let Some(p) = r.next_packet() {
        let f = p.unwrap().data;
        // Ethernet (14) + IPv4 header (20, no options) + ICMP type.
        if f.len() < 35 || f[12..14] != [0x08, 0x00] || f[14] != 0x45 || f[23] != 1 {
            continue;
        }
        let (src, dst, kind) = (&f[26..30], &f[30..34], f[34]);
        match (src, dst, kind) {
            ([10, 0, 0, 2], [10, 0, 0, 1], 8) => requests += 1,
            ([10, 0, 0, 1], [10, 0, 0, 2], 0) => replies += 1,
            _ => {}
        }
    }
    (requests, replies)
}

fn expect_step_ok(uml: &mut Uml, step: &str, sw: &mut NsSwitch, others: &[&Uml]) {
    segment::expect_step_ok(uml, step, GUEST_STEP, sw, others);
}

/// The port number the switch's log gives guest `n`'s MAC.
fn port_of(out: &str, n: u8) -> String {
    let prefix = learned(&mac(n));
    let line = out
        .lines()
        .find(|l| l.starts_with(&prefix))
        .unwrap_or_else(|| panic!("{} not learned:\n{out}", mac(n)));
    line[prefix.len()..]
        .split_whitespace()
        .next()
        .unwrap()
        .to_string()
}

#[test]
fn the_management_socket_shows_two_pinging_guests_and_splits_them_by_vlan() {
    require!(
        Requirement::Root,
        Requirement::LinuxUml,
        Requirement::LinuxUml7,
        Requirement::NetNs
    );
    require!(Requirement::Program("ping", "iputils-ping"));
    if !switch_is_ours("--mgmt is not an option of the C switch") {
        return;
    }
    let dir = new_temp_dir();
    let ns = NetNs::new("mgmtk");
    let ctl = dir.path().join("sw.ctl");
    let bess = dir.path().join("sw.bess");
    let sock = dir.path().join("sw.mgmt");
    let args: Vec<OsString> = vec![
        "-unix".into(),
        ctl.clone().into(),
        "--bess".into(),
        bess.clone().into(),
        "--mgmt".into(),
        sock.clone().into(),
        "--pcap".into(),
        dir.path().join("seg.pcap").into(),
    ];
    let mut sw =
        NsSwitch::start(&ns, dir.path(), &args, SWITCH_LIFETIME).unwrap_or_else(|e| panic!("{e}"));

    // Guest 1: 7.x on bess, idle. Guest 2: 6.1 on daemon, pings guest 1,
    // then waits for a second ping round that must fail.
    let g1 = Guest::new(
        1,
        Kernel::Linux7,
        format!("vec0:transport=bess,dst={},mac={}", bess.display(), mac(1)),
        "vec0",
    );
    let mut c1 = g1.then(IDLE_SCRIPT).config(&ns, "mg");
    c1.lifetime = UML_LIFETIME;
    let mut a = segment::boot(c1);
    expect_step_ok(&mut a, LINK_UP, &mut sw, &[]);
    // After its pings, guest 2 keeps pinging until a ping fails (bounded:
    // 300 tries): that happens when the test puts the guests in different
    // VLANs.
    let script = "ping -c 3 -i 0.3 -w 20 10.0.0.1\necho \"TEST: ping rc=$?\"\n\
                  r=1; i=0\n\
                  while [ $i -lt 300 ]; do\n\
                  \x20 if ! ping -c 1 -W 1 10.0.0.1 >/dev/null 2>&1; then r=0; break; fi\n\
                  \x20 i=$((i+1)); sleep 0.2\n\
                  done\n\
                  echo \"TEST: isolated rc=$r\"";
    let g2 = Guest::new(
        2,
        Kernel::Linux61,
        format!("eth0=daemon,{},unix,{}", mac(2), ctl.display()),
        "eth0",
    );
    let mut c2 = g2.then(script).config(&ns, "mg");
    c2.lifetime = UML_LIFETIME;
    let mut b = segment::boot(c2);
    expect_step_ok(&mut b, LINK_UP, &mut sw, &[]);
    expect_step_ok(&mut b, "ping", &mut sw, &[&a]);

    let out = sw.output();
    let (p1, p2) = (port_of(&out, 1), port_of(&out, 2));
    let (status, ports) = mgmt(&sock, &["ports"]);
    assert_eq!(status, 0);
    let rows: Vec<Vec<&str>> = ports
        .lines()
        .skip(1)
        .map(|l| l.split_whitespace().collect())
        .collect();
    assert_eq!(rows.len(), 2, "{ports}");
    let row = |p: &str| {
        rows.iter()
            .find(|r| r[0] == p)
            .unwrap_or_else(|| panic!("{ports}"))
    };
    assert_eq!((row(&p1)[1], row(&p2)[1]), ("bess", "daemon"), "{ports}");
    // Columns: port kind vlan trunk macs frames_in bytes_in frames_out ...
    for p in [&p1, &p2] {
        let r = row(p);
        assert_eq!(r[4], "1", "one MAC per guest: {ports}");
        let (fin, fout): (u64, u64) = (r[5].parse().unwrap(), r[7].parse().unwrap());
        assert!(fin >= 4 && fout >= 4, "3 pings and ARP each way: {ports}");
    }
    // Who is on the ports: the guests' processes (pid, uid 0).
    assert!(
        ports.lines().skip(1).all(|l| l.ends_with(", uid 0")),
        "{ports}"
    );
    let (_, macs) = mgmt(&sock, &["macs"]);
    for (n, p) in [(1, &p1), (2, &p2)] {
        assert!(
            macs.lines().any(|l| {
                let c: Vec<&str> = l.split_whitespace().collect();
                c.len() == 4 && c[0] == "0" && c[1] == mac(n) && c[2] == p.as_str()
            }),
            "{} on port {p}:\n{macs}",
            mac(n)
        );
    }

    // The capture, written out by `capture stop`, holds the pings: echo
    // requests from 10.0.0.2 to 10.0.0.1 and the replies.
    let (status, _) = mgmt(&sock, &["capture", "stop"]);
    assert_eq!(status, 0);
    let (requests, replies) = icmp_echoes(&dir.path().join("seg.pcap"));
    assert!(
        requests >= 3 && replies >= 3,
        "{requests} requests, {replies} replies"
    );

    // Different VLANs: guest 2's pings stop getting replies.
    for (p, v) in [(&p1, "access=10"), (&p2, "access=20")] {
        assert_eq!(mgmt(&sock, &["vlan", p, v]).0, 0);
    }
    expect_step_ok(&mut b, "isolated", &mut sw, &[&a]);
    expect_power_off(&mut b, UML_EXIT);
    halt(&mut a, UML_EXIT);
    eprintln!("--- ports ---\n{ports}--- macs ---\n{macs}");
}
