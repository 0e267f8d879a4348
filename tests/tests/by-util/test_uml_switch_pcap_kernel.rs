//! `uml_switch --pcap-port` with real UML kernels (`docs/pcap-port.md`):
//! in a network namespace the test creates, a veth pair `va`–`vb`; the
//! switch's pcap port captures on `vb` with the filter `udp dst port
//! 5001`; a guest on the switch with address 10.0.0.1 gets frames sent on
//! `va` to its MAC and address (made by hand with valid checksums, as
//! from a host on that wire: the port is read-only, so the guest's ARP
//! replies could not go out), sent in order: first those the filter
//! drops, then datagrams to UDP port 5001.
//!
//! * a 7.x guest on the `bess` transport runs a UDP receiver on ports
//!   5001 and 5002 (the host's perl through hostfs) and receives the
//!   datagrams to 5001 only, none of those to 5002;
//! * a 6.1 guest on the `daemon` transport (whose user space runs
//!   busybox, ping and the like, but not perl or python in this
//!   harness) has no receiver: its `/proc/net/snmp` counters, copied to
//!   the host, count the datagrams to 5001 (`Udp: NoPorts`) and no ICMP
//!   echo request (`Icmp: InEchos`), which the filter dropped.
//!
//! In both, the guest's own frames (ARP requests for the sender) never
//! appear on `va`. Guests and switch are ended by pid; every wait polls a
//! condition with a deadline.

// Test code: a failed setup step should abort the test with its message.
#![allow(clippy::expect_used, clippy::unwrap_used)]

use std::ffi::OsString;
use std::time::Duration;

use uml_integration_tests::pcap_port::{
    helper_env, icmp_echo_frame, udp_frame, veth_namespace, Wire,
};
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

/// The guest's receiver (the host's perl through hostfs; perl-base is
/// Essential in Debian): binds UDP ports 5001 and 5002, says so, and
/// appends each datagram (and a newline) to `$OUT/udpPORT`. Then the
/// guest asks for 10.0.0.99's MAC (ARP requests that must not reach the
/// wire) and idles.
const RECEIVER: &str = "perl -e '
use IO::Socket::INET; use IO::Select;
my $out = shift;
my @s = map { IO::Socket::INET->new(LocalPort => $_, Proto => \"udp\") or die \"bind $_: $!\" }
    (5001, 5002);
my $sel = IO::Select->new(@s);
$| = 1;
print \"TEST: listening rc=0\\n\";
while (1) {
    for my $s ($sel->can_read) {
        my $d;
        $s->recv($d, 2048);
        open(my $f, \">>\", \"$out/udp\" . $s->sockport) or die \"open: $!\";
        print $f \"$d\\n\";
        close $f;
    }
}
' \"$OUT\" &
ping -c 2 -w 3 10.0.0.99 >/dev/null 2>&1
echo \"TEST: arp sent rc=0\"
while :; do sleep 3600; done";

/// The 6.1 guest's script: copies `/proc/net/snmp` to `$OUT/snmp` every
/// 0.2 s (for at most two minutes), then as [`RECEIVER`] after its
/// receiver.
const COUNTERS: &str = "i=0
while [ $i -lt 600 ]; do
    cat /proc/net/snmp > \"$OUT/snmp.new\" && mv \"$OUT/snmp.new\" \"$OUT/snmp\"
    sleep 0.2
    i=$((i + 1))
done &
echo \"TEST: listening rc=0\"
ping -c 2 -w 3 10.0.0.99 >/dev/null 2>&1
echo \"TEST: arp sent rc=0\"
while :; do sleep 3600; done";

/// How the test sees what the guest received.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Observe {
    /// [`RECEIVER`]'s files.
    Receiver,
    /// [`COUNTERS`]' copies of `/proc/net/snmp`.
    Counters,
}

/// Counter `field` of the `proto:` lines of the snmp file `text`.
fn snmp(text: &str, proto: &str, field: &str) -> Option<u64> {
    let mut lines = text
        .lines()
        .filter(|l| l.starts_with(&format!("{proto}: ")));
    let names = lines.next()?;
    let values = lines.next()?;
    let at = names.split_whitespace().position(|n| n == field)?;
    values.split_whitespace().nth(at)?.parse().ok()
}

fn mac_bytes(text: &str) -> [u8; 6] {
    let mut m = [0u8; 6];
    for (i, part) in text.split(':').enumerate() {
        m[i] = u8::from_str_radix(part, 16).unwrap();
    }
    m
}

/// The receiver got the datagrams to 5001, in order, and none to 5002.
fn expect_received(guest: &Uml, report: &str) {
    let got = guest.out_dir().join("udp5001");
    let want: String = (0..COUNT).map(|i| format!("for the guest {i}\n")).collect();
    let complete = wait_until(DELIVERY, || {
        std::fs::read_to_string(&got).is_ok_and(|t| t.len() >= want.len())
    });
    assert!(
        complete,
        "the guest received {:?}\n--- console ---\n{}\n{report}",
        std::fs::read_to_string(&got).unwrap_or_default(),
        guest.console(),
    );
    assert_eq!(std::fs::read_to_string(&got).unwrap(), want);
    let filtered = guest.out_dir().join("udp5002");
    assert!(
        !filtered.exists(),
        "filtered datagrams reached the guest: {:?}",
        std::fs::read_to_string(&filtered)
    );
}

/// The guest's counters: [`COUNT`] datagrams to a closed port (5001), no
/// echo request. Had the filter passed the frames sent first (to 5002,
/// echo requests), they would have been counted before the last datagram
/// to 5001: `NoPorts` would pass [`COUNT`] or `InEchos` would not be 0.
fn expect_counted(guest: &Uml, report: &str) {
    let path = guest.out_dir().join("snmp");
    let mut text = String::new();
    let arrived = wait_until(DELIVERY, || {
        text = std::fs::read_to_string(&path).unwrap_or_default();
        snmp(&text, "Udp", "NoPorts").is_some_and(|n| n >= COUNT as u64)
    });
    assert!(
        arrived,
        "the guest counted {:?} datagrams to closed ports:\n{text}\n--- console ---\n{}\n{report}",
        snmp(&text, "Udp", "NoPorts"),
        guest.console(),
    );
    assert_eq!(snmp(&text, "Udp", "NoPorts"), Some(COUNT as u64), "{text}");
    assert_eq!(snmp(&text, "Icmp", "InEchos"), Some(0), "{text}");
}

/// The guest of `kernel` joins with the network argument `net(ctl, bess)`
/// as device `dev`; it receives the datagrams that pass the filter only.
fn guest_receives_filtered_datagrams(
    kernel: Kernel,
    observe: Observe,
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
        .then(match observe {
            Observe::Receiver => RECEIVER,
            Observe::Counters => COUNTERS,
        })
        .config(&ns, "pcap");
    cfg.lifetime = UML_LIFETIME;
    cfg.mem = "128M".to_string();
    let mut guest: Uml = segment::boot(cfg);
    segment::expect_step_ok(&mut guest, LINK_UP, GUEST_STEP, &mut sw, &[]);
    segment::expect_step_ok(&mut guest, "listening", GUEST_STEP, &mut sw, &[]);
    segment::expect_step_ok(&mut guest, "arp sent", GUEST_STEP, &mut sw, &[]);

    let g = mac_bytes(&guest_mac(1));
    let w = [0x02, 0, 0, 0, 0, 0x63];
    // The frames the filter drops first: had they passed, they would
    // arrive before the last of the others.
    for i in 0..COUNT {
        let other = format!("not for the guest {i}");
        wire.send(&udp_frame(
            g,
            w,
            [10, 0, 0, 99],
            [10, 0, 0, 1],
            5002,
            other.as_bytes(),
        ));
        wire.send(&icmp_echo_frame(
            g,
            w,
            [10, 0, 0, 99],
            [10, 0, 0, 1],
            i as u16,
        ));
    }
    for i in 0..COUNT {
        let wanted = format!("for the guest {i}");
        wire.send(&udp_frame(
            g,
            w,
            [10, 0, 0, 99],
            [10, 0, 0, 1],
            5001,
            wanted.as_bytes(),
        ));
    }
    match observe {
        Observe::Receiver => expect_received(&guest, &sw.report()),
        Observe::Counters => expect_counted(&guest, &sw.report()),
    }
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
    require!(Requirement::Program("ping", "iputils-ping"));
    if !switch_is_ours(NOT_IN_C) {
        return;
    }
    guest_receives_filtered_datagrams(Kernel::Linux61, Observe::Counters, "eth0", |ctl, _| {
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
    require!(Requirement::Program("perl", "perl-base"));
    require!(Requirement::Program("ping", "iputils-ping"));
    if !switch_is_ours(NOT_IN_C) {
        return;
    }
    guest_receives_filtered_datagrams(Kernel::Linux7, Observe::Receiver, "vec0", |_, bess| {
        format!(
            "vec0:transport=bess,dst={},mac={}",
            bess.display(),
            guest_mac(1)
        )
    });
}
