//! `uml_switch --pcap-port` with real UML kernels (`docs/pcap-port.md`):
//! in a network namespace the test creates, a veth pair `va`–`vb`; the
//! switch's pcap port captures on `vb` with the filter `udp dst port
//! 5001`; a guest on the switch (a 6.1 guest on the `daemon` transport, a
//! 7.x guest on `bess`) with address 10.0.0.1 runs a UDP receiver on
//! ports 5001 and 5002 (the host's python3 through hostfs). From `va`,
//! UDP datagrams to the guest's MAC and address go to both ports (frames
//! made by hand with valid checksums, as from a host on that wire: the
//! port is read-only, so the guest's ARP replies could not go out): the
//! guest receives those to 5001 only. The guest's own frames (ARP
//! requests for the sender) never appear on `va`.
//!
//! Guests and switch are ended by pid; every wait polls a condition with
//! a deadline.

// Test code: a failed setup step should abort the test with its message.
#![allow(clippy::expect_used, clippy::unwrap_used)]

use std::ffi::OsString;
use std::time::Duration;

use uml_integration_tests::pcap_port::{helper_env, udp_frame, veth_namespace, Wire};
use uml_integration_tests::segment::{
    self, guest_mac, halt, one_at_a_time, switch_is_ours, Guest, LINK_UP,
};
use uml_integration_tests::switch_client::{new_temp_dir, NsSwitch};
use uml_integration_tests::{require, wait_until, Kernel, Requirement, Uml};

/// Hard lifetime of the switch process.
const SWITCH_LIFETIME: Duration = Duration::from_secs(240);
/// Hard lifetime of the UML.
const UML_LIFETIME: Duration = Duration::from_secs(180);
/// Bound for the guest's init script to reach a step.
const GUEST_STEP: Duration = Duration::from_secs(90);
/// Bound for the datagrams to be received.
const DELIVERY: Duration = Duration::from_secs(30);
/// Bound for the UML to exit after it was halted.
const UML_EXIT: Duration = Duration::from_secs(30);
/// Datagrams sent to each port.
const COUNT: usize = 5;

const NOT_IN_C: &str = "--pcap-port is not an option of the C switch";

/// The guest's receiver: binds UDP ports 5001 and 5002, says so, and
/// appends each datagram (and a newline) to `$OUT/udpPORT`.
const RECEIVER: &str = "python3 -c '
import select, socket, sys
out = sys.argv[1]
socks = []
for port in (5001, 5002):
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.bind((\"0.0.0.0\", port))
    socks.append(s)
print(\"TEST: listening rc=0\", flush=True)
while True:
    ready, _, _ = select.select(socks, [], [])
    for s in ready:
        data = s.recv(2048)
        with open(\"%s/udp%d\" % (out, s.getsockname()[1]), \"ab\") as f:
            f.write(data + b\"\\n\")
' \"$OUT\" &
ping -c 2 -w 3 10.0.0.99 >/dev/null 2>&1
echo \"TEST: arp sent rc=0\"
while :; do sleep 3600; done";

fn mac_bytes(text: &str) -> [u8; 6] {
    let mut m = [0u8; 6];
    for (i, part) in text.split(':').enumerate() {
        m[i] = u8::from_str_radix(part, 16).unwrap();
    }
    m
}

/// The guest of `kernel` joins with the network argument `net(ctl, bess)`
/// as device `dev`; it receives the datagrams that pass the filter only.
fn guest_receives_filtered_datagrams(
    kernel: Kernel,
    dev: &'static str,
    net: impl Fn(&std::path::Path, &std::path::Path) -> String,
) {
    let _serial = one_at_a_time();
    let ns = veth_namespace("pcapk");
    let dir = new_temp_dir();
    let ctl = dir.path().join("sw.ctl");
    let bess = dir.path().join("sw.bess");
    let args: Vec<OsString> = vec![
        "-unix".into(),
        ctl.clone().into(),
        "--bess".into(),
        bess.clone().into(),
        "--pcap-port".into(),
        "vb,filter=udp dst port 5001".into(),
    ];
    let (key, helper) = helper_env();
    let mut sw = NsSwitch::start_with_env(
        &ns,
        dir.path(),
        &args,
        SWITCH_LIFETIME,
        &[(key, helper.as_os_str())],
    )
    .unwrap_or_else(|e| panic!("{e}"));
    assert!(
        sw.output().contains("pcap port "),
        "no pcap port:\n{}",
        sw.report()
    );
    // Open before the guest boots: everything written to `vb` shows here.
    let wire = Wire::open(&ns, "va");

    let mut cfg = Guest::new(1, kernel, net(&ctl, &bess), dev)
        .then(RECEIVER)
        .config(&ns, "pcap");
    cfg.lifetime = UML_LIFETIME;
    cfg.mem = "128M".to_string();
    let mut guest: Uml = segment::boot(cfg);
    segment::expect_step_ok(&mut guest, LINK_UP, GUEST_STEP, &mut sw, &[]);
    segment::expect_step_ok(&mut guest, "listening", GUEST_STEP, &mut sw, &[]);
    segment::expect_step_ok(&mut guest, "arp sent", GUEST_STEP, &mut sw, &[]);

    let g = mac_bytes(&guest_mac(1));
    let w = [0x02, 0, 0, 0, 0, 0x63];
    // The filtered datagrams first: had they passed, they would arrive
    // before the last of the others.
    for i in 0..COUNT {
        let other = format!("not for the guest {i}");
        wire.send(&udp_frame(g, w, [10, 0, 0, 99], [10, 0, 0, 1], 5002, other.as_bytes()));
        let wanted = format!("for the guest {i}");
        wire.send(&udp_frame(g, w, [10, 0, 0, 99], [10, 0, 0, 1], 5001, wanted.as_bytes()));
    }
    let got = guest.out_dir().join("udp5001");
    let want: String = (0..COUNT).map(|i| format!("for the guest {i}\n")).collect();
    let complete = wait_until(DELIVERY, || {
        std::fs::read_to_string(&got).is_ok_and(|t| t.len() >= want.len())
    });
    assert!(
        complete,
        "the guest received {:?}\n--- console ---\n{}\n{}",
        std::fs::read_to_string(&got).unwrap_or_default(),
        guest.console(),
        sw.report()
    );
    assert_eq!(std::fs::read_to_string(&got).unwrap(), want);
    let filtered = guest.out_dir().join("udp5002");
    assert!(
        !filtered.exists(),
        "filtered datagrams reached the guest: {:?}",
        std::fs::read_to_string(&filtered)
    );
    // The guest's ARP requests for 10.0.0.99 went to the pcap port, which
    // dropped them: nothing from the guest is on the wire.
    let from_guest: Vec<Vec<u8>> = wire
        .drain(Duration::from_millis(300))
        .into_iter()
        .filter(|f| f.len() >= 12 && f[6..12] == g)
        .collect();
    assert!(from_guest.is_empty(), "written to vb: {from_guest:02x?}");
    assert!(
        sw.output()
            .contains(&format!(" Addr: {} New port ", guest_mac(1))),
        "the guest's frames did not reach the switch:\n{}",
        sw.report()
    );
    halt(&mut guest, UML_EXIT);
    assert!(sw.running(), "switch ended:\n{}", sw.report());
}

/// A Debian 12 (6.1) guest on the daemon transport.
#[test]
fn kernel61_daemon_guest_receives_filtered_datagrams_from_a_pcap_port() {
    require!(Requirement::Root, Requirement::LinuxUml, Requirement::NetNs);
    require!(Requirement::Program("python3", "python3"));
    require!(Requirement::Program("ping", "iputils-ping"));
    if !switch_is_ours(NOT_IN_C) {
        return;
    }
    guest_receives_filtered_datagrams(Kernel::Linux61, "eth0", |ctl, _| {
        format!("eth0=daemon,{},unix,{}", guest_mac(1), ctl.display())
    });
}

/// A Linux 7.x guest on the bess transport.
#[test]
fn kernel7_bess_guest_receives_filtered_datagrams_from_a_pcap_port() {
    require!(
        Requirement::Root,
        Requirement::LinuxUml7,
        Requirement::NetNs
    );
    require!(Requirement::Program("python3", "python3"));
    require!(Requirement::Program("ping", "iputils-ping"));
    if !switch_is_ours(NOT_IN_C) {
        return;
    }
    guest_receives_filtered_datagrams(Kernel::Linux7, "vec0", |_, bess| {
        format!("vec0:transport=bess,dst={},mac={}", bess.display(), guest_mac(1))
    });
}
