//! Two switches on two "hosts" (network namespaces joined by a veth pair)
//! share one segment over an L2TPv3-over-UDP trunk, and over a GRE trunk:
//! each switch's `--l2tpv3` (`--gre`) port is configured with the options
//! the other switch's port mirrors (src/dst, ports and sessions or keys
//! swapped), so each switch is the other's "guest". A 6.1 guest behind
//! one switch (bess for L2TPv3, daemon for GRE) and a 7.x bess guest
//! behind the other ping each other; then both guests' ports are put in
//! VLAN 10 through the management sockets, the trunk ports carry VLAN 10
//! tagged, the pings go on, and a capture of one trunk port shows the
//! guests' ICMP frames tagged with VLAN 10.
//!
//! Everything runs in network namespaces the test creates and removes;
//! processes are ended by pid; every wait is bounded.

#![allow(clippy::expect_used, clippy::unwrap_used)]

use std::ffi::OsString;
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use uml_integration_tests::segment::{
    self, expect_power_off, guest_mac as mac, halt, learned, switch_is_ours, Guest, LINK_UP,
};
use uml_integration_tests::switch_client::{new_temp_dir, NsSwitch, SwitchBinary, WAIT};
use uml_integration_tests::{
    require, run_with_timeout, Kernel, NetNs, ProcessGroup, Requirement, Uml, IDLE_SCRIPT,
};

const SWITCH_LIFETIME: Duration = Duration::from_secs(150);
const UML_LIFETIME: Duration = Duration::from_secs(120);
const GUEST_STEP: Duration = Duration::from_secs(60);
const UML_EXIT: Duration = Duration::from_secs(20);

fn mgmt(path: &Path, words: &[&str]) -> String {
    let mut cmd = Command::new(&SwitchBinary::under_test().path);
    cmd.arg("--mgmt").arg(path).args(words);
    let out = run_with_timeout(&mut cmd, WAIT);
    assert_eq!(
        out.code,
        Some(0),
        "{words:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// The port number of the first `ports` row of `kind`.
fn port_of_kind(sock: &Path, kind: &str) -> String {
    let ports = mgmt(sock, &["ports"]);
    ports
        .lines()
        .skip(1)
        .map(|l| l.split_whitespace().collect::<Vec<_>>())
        .find(|c| c.get(1) == Some(&kind))
        .unwrap_or_else(|| panic!("no {kind} port:\n{ports}"))[0]
        .to_string()
}

/// ICMP frames tagged with VLAN `vid` in the capture file `path`.
fn tagged_icmp(path: &Path, vid: u16) -> usize {
    let Ok(file) = std::fs::File::open(path) else {
        return 0;
    };
    let Ok(mut r) = pcap_file::pcap::PcapReader::new(file) else {
        return 0;
    };
    let mut n = 0;
    while let Some(Ok(p)) = r.next_packet() {
        let f = p.data;
        // MACs, 802.1Q tag, IPv4 (no options), protocol 1.
        if f.len() >= 42
            && f[12..14] == [0x81, 0x00]
            && u16::from_be_bytes([f[14], f[15]]) & 0x0fff == vid
            && f[16..18] == [0x08, 0x00]
            && f[27] == 1
        {
            n += 1;
        }
    }
    n
}

fn switch_args(dir: &Path, tag: &str, option: &str, tunnel: &str) -> Vec<OsString> {
    vec![
        "-unix".into(),
        dir.join(format!("{tag}.ctl")).into(),
        "--bess".into(),
        dir.join(format!("{tag}.bess")).into(),
        "--mgmt".into(),
        dir.join(format!("{tag}.mgmt")).into(),
        option.into(),
        tunnel.into(),
    ]
}

/// Guest `n` (10.0.0.N) on `transport`: `"bess"` (socket `DIR/TAG.bess`)
/// or `"daemon"` (control socket `DIR/TAG.ctl`).
fn guest(
    n: u8,
    kernel: Kernel,
    transport: &str,
    dir: &Path,
    tag: &str,
    ns: &NetNs,
    script: &str,
) -> Uml {
    let g = match transport {
        "daemon" => Guest::new(
            n,
            kernel,
            format!(
                "eth0=daemon,{},unix,{}",
                mac(n),
                dir.join(format!("{tag}.ctl")).display()
            ),
            "eth0",
        ),
        _ => Guest::new(
            n,
            kernel,
            format!(
                "vec0:transport=bess,dst={},mac={}",
                dir.join(format!("{tag}.bess")).display(),
                mac(n)
            ),
            "vec0",
        ),
    };
    let mut cfg = g.then(script).config(ns, "tk");
    cfg.lifetime = UML_LIFETIME;
    segment::boot(cfg)
}

/// Two "hosts": namespaces `a` and `b` joined by a veth pair `{a}0`/`{b}0`
/// with 10.1.0.1 and 10.1.0.2.
fn joined_hosts(a: &str, b: &str) -> (NetNs, NetNs) {
    let host_a = NetNs::new(a);
    let host_b = NetNs::new(b);
    let (dev_a, dev_b) = (format!("{a}0"), format!("{b}0"));
    let out = host_a.ip(&[
        "link",
        "add",
        &dev_a,
        "type",
        "veth",
        "peer",
        "name",
        &dev_b,
        "netns",
        host_b.name(),
    ]);
    assert!(out.success(), "{out}");
    for (ns, dev, addr) in [
        (&host_a, &dev_a, "10.1.0.1/24"),
        (&host_b, &dev_b, "10.1.0.2/24"),
    ] {
        assert!(ns.ip(&["addr", "add", addr, "dev", dev]).success());
        assert!(ns.ip(&["link", "set", dev, "up"]).success());
    }
    (host_a, host_b)
}

/// A trunk between two switches in two namespaces: switch A's port is
/// `option a_port`, B's `option b_port` (the mirrored options), of kind
/// `kind` in `ports`. A 6.1 guest on A (on `a_transport`) and a 7.x bess
/// guest on B ping each other; then both are put in VLAN 10, the trunk
/// carries it tagged (a capture of A's trunk port shows the ICMP frames
/// tagged 10) and the pings go on.
fn trunk_between_two_switches(
    hosts: (&str, &str),
    option: &str,
    kind: &str,
    a_port: &str,
    b_port: &str,
    a_transport: &str,
) {
    let dir = new_temp_dir();
    let (host_a, host_b) = joined_hosts(hosts.0, hosts.1);
    let d = dir.path();
    // Each switch writes its output in a directory of its own.
    let (out_a, out_b) = (d.join("a"), d.join("b"));
    std::fs::create_dir(&out_a).unwrap();
    std::fs::create_dir(&out_b).unwrap();
    let mut sw_a = NsSwitch::start(
        &host_a,
        &out_a,
        &switch_args(d, "a", option, a_port),
        SWITCH_LIFETIME,
    )
    .unwrap_or_else(|e| panic!("{e}"));
    let mut sw_b = NsSwitch::start(
        &host_b,
        &out_b,
        &switch_args(d, "b", option, b_port),
        SWITCH_LIFETIME,
    )
    .unwrap_or_else(|e| panic!("{e}"));
    let (mgmt_a, mgmt_b) = (d.join("a.mgmt"), d.join("b.mgmt"));
    let trunk_a = port_of_kind(&mgmt_a, kind);
    let trunk_b = port_of_kind(&mgmt_b, kind);
    for (sock, port) in [(&mgmt_a, &trunk_a), (&mgmt_b, &trunk_b)] {
        mgmt(sock, &["vlan", port, "trunk=10"]);
    }

    let mut a = guest(
        1,
        Kernel::Linux61,
        a_transport,
        d,
        "a",
        &host_a,
        IDLE_SCRIPT,
    );
    segment::expect_step_ok(&mut a, LINK_UP, GUEST_STEP, &mut sw_a, &[]);
    // Guest 2 pings three times, then keeps pinging (one reply is enough)
    // while the test moves both guests into VLAN 10.
    let script = "ping -c 3 -i 0.3 -w 30 10.0.0.1\necho \"TEST: ping rc=$?\"\n\
                  ping -c 150 -i 0.2 -w 60 10.0.0.1 >/dev/null\necho \"TEST: vlan rc=$?\"";
    let mut b = guest(2, Kernel::Linux7, "bess", d, "b", &host_b, script);
    segment::expect_step_ok(&mut b, LINK_UP, GUEST_STEP, &mut sw_b, &[&a]);
    segment::expect_step_ok(&mut b, "ping", GUEST_STEP, &mut sw_b, &[&a]);
    // Each switch learned the far guest on its trunk port.
    for (sw, far, trunk) in [(&sw_a, 2, &trunk_a), (&sw_b, 1, &trunk_b)] {
        let line = format!("{}{trunk}", learned(&mac(far)));
        assert!(sw.output().contains(&line), "{}", sw.output());
    }

    // VLAN 10 for both guests; the trunk carries it tagged.
    let capture = d.join("trunk.pcap");
    mgmt(
        &mgmt_a,
        &[
            "capture",
            "start",
            capture.to_str().unwrap(),
            &format!("port={trunk_a}"),
        ],
    );
    for (sock, guest_kind) in [(&mgmt_a, a_transport), (&mgmt_b, "bess")] {
        let port = port_of_kind(sock, guest_kind);
        mgmt(sock, &["vlan", &port, "access=10"]);
    }
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        // The capture is written out at least every 2 s.
        if tagged_icmp(&capture, 10) >= 4 {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "no VLAN 10 ICMP frames on the trunk:\n{}",
            mgmt(&mgmt_a, &["ports"])
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    mgmt(&mgmt_a, &["capture", "stop"]);
    segment::expect_step_ok(&mut b, "vlan", GUEST_STEP, &mut sw_b, &[&a]);
    expect_power_off(&mut b, UML_EXIT);
    halt(&mut a, UML_EXIT);
}

#[test]
fn two_switches_on_two_hosts_share_a_segment_over_an_l2tpv3_trunk_with_vlans() {
    require!(
        Requirement::Root,
        Requirement::LinuxUml,
        Requirement::LinuxUml7,
        Requirement::NetNs
    );
    require!(Requirement::Program("ping", "iputils-ping"));
    if !switch_is_ours("the C switch has no tunnel ports") {
        return;
    }
    // Each switch's port: the other switch is its "guest".
    let a_port = "udp=1,src=10.1.0.2,srcport=5002,dst=10.1.0.1,dstport=5001,\
                  rx_session=0x11,tx_session=0x22";
    let b_port = "udp=1,src=10.1.0.1,srcport=5001,dst=10.1.0.2,dstport=5002,\
                  rx_session=0x22,tx_session=0x11";
    trunk_between_two_switches(
        ("trka", "trkb"),
        "--l2tpv3",
        "l2tpv3",
        a_port,
        b_port,
        "bess",
    );
}

/// The same over GRE (raw IP protocol 47, `CAP_NET_RAW`): keys and
/// sequence numbers mirrored, a 6.1 daemon guest on one switch, a 7.x
/// bess guest on the other, then VLAN 10 carried tagged.
#[test]
fn two_switches_on_two_hosts_share_a_segment_over_a_gre_trunk_with_vlans() {
    require!(
        Requirement::Root,
        Requirement::LinuxUml,
        Requirement::LinuxUml7,
        Requirement::NetNs
    );
    require!(Requirement::Program("ping", "iputils-ping"));
    if !switch_is_ours("the C switch has no tunnel ports") {
        return;
    }
    // A sends its guest's rx_key (17), which B expects as its guest's
    // tx_key; and the other way round.
    let a_port = "src=10.1.0.2,dst=10.1.0.1,rx_key=17,tx_key=34,sequence=1";
    let b_port = "src=10.1.0.1,dst=10.1.0.2,rx_key=34,tx_key=17,sequence=1";
    trunk_between_two_switches(("grea", "greb"), "--gre", "gre", a_port, b_port, "daemon");
}

/// A VXLAN trunk to an implementation we did not write: a Linux `vxlan`
/// device on the other "host" (namespace), with an address on it; a 6.1
/// guest behind our switch pings that address across the trunk.
#[test]
fn a_vxlan_trunk_to_a_linux_vxlan_device() {
    require!(Requirement::Root, Requirement::LinuxUml, Requirement::NetNs);
    require!(Requirement::Program("ping", "iputils-ping"));
    if !switch_is_ours("the C switch has no vxlan ports") {
        return;
    }
    let dir = new_temp_dir();
    let (host_a, host_b) = joined_hosts("vxa", "vxb");
    for args in [
        &[
            "link", "add", "vx0", "type", "vxlan", "id", "42", "local", "10.1.0.2", "remote",
            "10.1.0.1", "dstport", "4789", "dev", "vxb0",
        ][..],
        &["addr", "add", "10.0.0.2/24", "dev", "vx0"],
        &["link", "set", "vx0", "address", &mac(2)],
        &["link", "set", "vx0", "up"],
    ] {
        let out = host_b.ip(args);
        assert!(out.success(), "ip {args:?}: {out}");
    }
    let d = dir.path();
    let out_a = d.join("a");
    std::fs::create_dir(&out_a).unwrap();
    let args: Vec<OsString> = vec![
        "-unix".into(),
        d.join("a.ctl").into(),
        "--bess".into(),
        d.join("a.bess").into(),
        "--vxlan".into(),
        "local=10.1.0.1,remote=10.1.0.2,vni=42".into(),
    ];
    let mut sw =
        NsSwitch::start(&host_a, &out_a, &args, SWITCH_LIFETIME).unwrap_or_else(|e| panic!("{e}"));
    assert!(
        sw.output()
            .contains("(10.1.0.1:4789 <-> 10.1.0.2:4789, vni 42): a VXLAN trunk"),
        "{}",
        sw.output()
    );
    let script = "ping -c 3 -i 0.3 -w 30 10.0.0.2\necho \"TEST: ping rc=$?\"";
    let mut g = guest(1, Kernel::Linux61, "bess", d, "a", &host_a, script);
    segment::expect_step_ok(&mut g, LINK_UP, GUEST_STEP, &mut sw, &[]);
    segment::expect_step_ok(&mut g, "ping", GUEST_STEP, &mut sw, &[]);
    expect_power_off(&mut g, UML_EXIT);
    // The switch learned the vxlan device's MAC on the trunk.
    assert!(sw.output().contains(&learned(&mac(2))), "{}", sw.output());
}

/// Runs `program args` in `ns` in a process group of its own, stdin kept
/// open (vde_switch ends at the end of its console input), output to
/// `log`.
fn spawn_in(ns: &NetNs, program: &str, args: &[&str], log: &Path) -> ProcessGroup {
    use std::os::unix::process::CommandExt;
    let out = std::fs::File::create(log).unwrap();
    let child = ns
        .exec(program)
        .args(args)
        .stdin(std::process::Stdio::piped())
        .stdout(out.try_clone().unwrap())
        .stderr(out)
        .process_group(0)
        .spawn()
        .unwrap_or_else(|e| panic!("{program}: {e}"));
    ProcessGroup(child)
}

/// vde_switch (vde2) and our switch joined by a cable (`dpipe vde_plug
/// vde://OURS = vde_plug vde://THEIRS`), a 6.1 guest on each on the
/// daemon transport: they ping each other across the two switch families.
#[test]
fn our_switch_and_vde_switch_share_a_segment_through_dpipe() {
    require!(Requirement::Root, Requirement::LinuxUml, Requirement::NetNs);
    require!(
        Requirement::Program("ping", "iputils-ping"),
        Requirement::Program("vde_switch", "vde2"),
        Requirement::Program("dpipe", "vde2"),
        Requirement::Program("vde_plug", "vdeplug")
    );
    if !switch_is_ours("the C switch does not serve vde_plug") {
        return;
    }
    let dir = new_temp_dir();
    let ns = NetNs::new("vdecable");
    let d = dir.path();
    let (ours, theirs) = (d.join("ours"), d.join("theirs"));
    std::fs::create_dir(&ours).unwrap();
    let out_dir = d.join("out");
    std::fs::create_dir(&out_dir).unwrap();
    let args: Vec<OsString> = vec!["-unix".into(), ours.join("ctl").into()];
    let mut sw =
        NsSwitch::start(&ns, &out_dir, &args, SWITCH_LIFETIME).unwrap_or_else(|e| panic!("{e}"));
    let _vde = spawn_in(
        &ns,
        "vde_switch",
        &["-s", theirs.to_str().unwrap()],
        &d.join("vde_switch.log"),
    );
    let deadline = Instant::now() + WAIT;
    while !theirs.join("ctl").exists() {
        assert!(Instant::now() < deadline, "vde_switch did not start");
        std::thread::sleep(Duration::from_millis(20));
    }
    let ours_url = format!("vde://{}", ours.display());
    let theirs_url = format!("vde://{}", theirs.display());
    let _cable = spawn_in(
        &ns,
        "dpipe",
        &["vde_plug", &ours_url, "=", "vde_plug", &theirs_url],
        &d.join("dpipe.log"),
    );
    let plugged = sw.wait_output(WAIT, |o| o.contains("New connection"));
    assert!(plugged, "the cable never plugged in:\n{}", sw.report());

    let daemon_guest = |n: u8, ctl: &Path, script: &str| {
        let g = Guest::new(
            n,
            Kernel::Linux61,
            format!("eth0=daemon,{},unix,{}", mac(n), ctl.display()),
            "eth0",
        );
        let mut cfg = g.then(script).config(&ns, "vc");
        cfg.lifetime = UML_LIFETIME;
        segment::boot(cfg)
    };
    let mut a = daemon_guest(1, &ours.join("ctl"), IDLE_SCRIPT);
    segment::expect_step_ok(&mut a, LINK_UP, GUEST_STEP, &mut sw, &[]);
    let script = "ping -c 3 -i 0.3 -w 30 10.0.0.1\necho \"TEST: ping rc=$?\"";
    let mut b = daemon_guest(2, &theirs.join("ctl"), script);
    segment::expect_step_ok(&mut b, LINK_UP, GUEST_STEP, &mut sw, &[&a]);
    segment::expect_step_ok(&mut b, "ping", GUEST_STEP, &mut sw, &[&a]);
    expect_power_off(&mut b, UML_EXIT);
    halt(&mut a, UML_EXIT);
    // Our switch saw guest 2 behind the cable's port.
    assert!(sw.output().contains(&learned(&mac(2))), "{}", sw.output());
}
