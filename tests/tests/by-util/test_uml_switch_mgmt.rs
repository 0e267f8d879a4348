//! The switch's management socket (`--mgmt PATH`, `docs/mgmt.md`): the
//! client (`uml_switch --mgmt PATH COMMAND...`) lists the ports, MACs and
//! counters of a running switch with daemon and bess ports, the figures
//! follow the traffic exactly, hostile clients (endless lines, non-text,
//! clients that never read, too many clients) hurt nobody else, and bad
//! options are refused before anything starts. Ours only: the C switch
//! has no management socket.

#![allow(clippy::expect_used, clippy::unwrap_used)]

use std::ffi::OsString;
use std::io::{BufRead, BufReader, Read, Write};
use std::os::linux::net::SocketAddrExt;
use std::os::unix::fs::PermissionsExt;
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use uml_integration_tests::switch_client::{
    bind_data_socket, connect_control, frame, learned_port, mac, mac_str, new_temp_dir, read_reply,
    request_versioned, BessClient, FramePort, RunningSwitch, SwitchBinary, SwitchMode, BROADCAST,
    WAIT,
};
use uml_integration_tests::{require, run_with_timeout, ProcessGroup, Requirement};

macro_rules! require_ours {
    () => {
        if SwitchBinary::under_test().is_c_reference {
            let _ = writeln!(
                std::io::stderr(),
                "SKIP: --mgmt is not an option of the C switch"
            );
            return;
        }
    };
}

/// A switch with `-unix DIR/ctl --bess DIR/bess --mgmt DIR/mgmt` and more
/// arguments; the bess and management paths.
fn start(extra: &[&str]) -> (RunningSwitch, PathBuf, PathBuf) {
    let dir = new_temp_dir();
    let bess = dir.path().join("bess");
    let mgmt = dir.path().join("mgmt");
    let mut args: Vec<OsString> = vec![
        "--bess".into(),
        bess.clone().into(),
        "--mgmt".into(),
        mgmt.clone().into(),
    ];
    args.extend(extra.iter().map(OsString::from));
    match RunningSwitch::start_in_with_args(dir, SwitchMode::default(), &args) {
        Ok(sw) => (sw, bess, mgmt),
        Err(e) => panic!("{e}"),
    }
}

/// `uml_switch --mgmt PATH WORDS...`: status, stdout, stderr.
fn client(path: &Path, words: &[&str]) -> (i32, String, String) {
    let mut cmd = Command::new(&SwitchBinary::under_test().path);
    cmd.arg("--mgmt").arg(path).args(words);
    let out = run_with_timeout(&mut cmd, WAIT);
    (
        out.code.unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// The rows of `ports` (without the header), split into columns.
fn port_rows(path: &Path) -> Vec<Vec<String>> {
    let (status, out, err) = client(path, &["ports"]);
    assert_eq!(status, 0, "ports: {err}");
    let mut lines = out.lines();
    assert!(
        lines.next().is_some_and(|h| h.starts_with("port kind")),
        "{out}"
    );
    lines
        .map(|l| l.split_whitespace().map(str::to_string).collect())
        .collect()
}

fn row<'a>(rows: &'a [Vec<String>], label: &str) -> &'a [String] {
    rows.iter()
        .find(|r| r[0] == label)
        .unwrap_or_else(|| panic!("no port {label} in {rows:?}"))
}

fn num(row: &[String], column: usize) -> u64 {
    row[column].parse().unwrap()
}

// Columns of `ports`.
const KIND: usize = 1;
const VLAN: usize = 2;
const TRUNK: usize = 3;
const MACS: usize = 4;
const FRAMES_IN: usize = 5;
const BYTES_IN: usize = 6;
const FRAMES_OUT: usize = 7;
const BYTES_OUT: usize = 8;

#[test]
fn ports_macs_and_counters_follow_the_traffic() {
    require_ours!();
    let (mut sw, bess, mgmt) = start(&[]);
    assert!(
        sw.stdout().contains(&format!(
            "management socket '{}': {} --mgmt {} help",
            mgmt.display(),
            sw.binary().path.display(),
            mgmt.display()
        )),
        "{}",
        sw.output_report()
    );
    let mode = std::fs::metadata(&mgmt).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o600, "default mode");

    let d = sw.port();
    let b = BessClient::connect(&bess).unwrap();
    sw.wait_until(WAIT, |s| s.stdout().contains("New bess connection"))
        .unwrap_or_else(|e| panic!("{e}"));
    let from_d = frame(BROADCAST, mac(1), b"hello from the daemon port");
    d.send(&from_d);
    assert_eq!(b.recv_frame(WAIT).as_deref(), Some(&from_d[..]));
    let from_b = frame(mac(1), mac(2), b"unicast from bess");
    b.send(&from_b);
    assert_eq!(d.recv_frame(WAIT).as_deref(), Some(&from_b[..]));
    let d_label = learned_port(&mut sw, mac(1));
    let b_label = learned_port(&mut sw, mac(2));

    let rows = port_rows(&mgmt);
    assert_eq!(rows.len(), 2, "{rows:?}");
    let rd = row(&rows, &d_label);
    let rb = row(&rows, &b_label);
    assert_eq!((rd[KIND].as_str(), rb[KIND].as_str()), ("daemon", "bess"));
    assert_eq!((num(rd, MACS), num(rb, MACS)), (1, 1));
    assert_eq!(
        (num(rd, FRAMES_IN), num(rd, BYTES_IN)),
        (1, from_d.len() as u64)
    );
    assert_eq!(
        (num(rd, FRAMES_OUT), num(rd, BYTES_OUT)),
        (1, from_b.len() as u64)
    );
    assert_eq!(
        (num(rb, FRAMES_IN), num(rb, FRAMES_OUT)),
        (1, 1),
        "{rows:?}"
    );
    // Who is on the ports: this test process, over both kinds.
    let me = format!("pid {},", std::process::id());
    let (_, text, _) = client(&mgmt, &["ports"]);
    assert_eq!(text.matches(&me).count(), 2, "{text}");

    // The counters move by exactly what was sent.
    for i in 0..10u8 {
        d.send(&frame(mac(2), mac(1), &[i; 50]));
        assert!(b.recv_frame(WAIT).is_some());
    }
    let rows = port_rows(&mgmt);
    assert_eq!(num(row(&rows, &d_label), FRAMES_IN), 11);
    assert_eq!(num(row(&rows, &b_label), FRAMES_OUT), 11);

    let (status, macs, _) = client(&mgmt, &["macs"]);
    assert_eq!(status, 0);
    for (m, label) in [(mac(1), &d_label), (mac(2), &b_label)] {
        let line = macs
            .lines()
            .find(|l| l.contains(&mac_str(m)))
            .unwrap_or_else(|| panic!("{} not in\n{macs}", mac_str(m)));
        let cols: Vec<&str> = line.split_whitespace().collect();
        assert_eq!((cols[0], cols[2]), ("0", label.as_str()), "{line}");
    }

    // JSON: one object, the same figures.
    let (status, json, _) = client(&mgmt, &["json", "counters"]);
    assert_eq!(status, 0);
    assert_eq!(json.lines().count(), 1, "{json}");
    assert!(
        json.contains("\"ok\":true") && json.contains("\"frames_in\":12"),
        "{json}"
    );
    let (status, json, _) = client(&mgmt, &["json", "ports"]);
    assert_eq!(status, 0);
    assert!(
        json.contains("\"kind\":\"bess\"") && json.contains("\"frames_in\":11"),
        "{json}"
    );

    // Errors: status 1, the message on stderr.
    let (status, out, err) = client(&mgmt, &["frob"]);
    assert_eq!((status, out.as_str()), (1, ""));
    assert!(err.contains("unknown command 'frob' (try 'help')"), "{err}");
    let (status, out, _) = client(&mgmt, &["json", "frob"]);
    assert_eq!(status, 1);
    assert!(out.contains("\"ok\":false"), "{out}");
    let (status, _, _) = client(&mgmt, &["help"]);
    assert_eq!(status, 0);

    // At exit (SIGTERM) the socket goes with the others; the directory
    // stays while `sw` lives.
    drop(d);
    drop(b);
    assert!(mgmt.exists());
    sw.signal(nix::sys::signal::Signal::SIGTERM);
    assert!(sw.wait_exit(WAIT).is_some(), "{}", sw.output_report());
    assert!(sw.dir().exists() && !mgmt.exists() && !sw.ctl().exists());
}

/// Reads one answer line from `s`.
fn line(s: &mut BufReader<UnixStream>) -> String {
    let mut l = String::new();
    s.read_line(&mut l).unwrap();
    l
}

fn connect(path: &Path) -> BufReader<UnixStream> {
    let s = UnixStream::connect(path).unwrap();
    s.set_read_timeout(Some(WAIT)).unwrap();
    BufReader::new(s)
}

#[test]
fn hostile_clients_hurt_nobody_else() {
    require_ours!();
    let (sw, bess, mgmt) = start(&["--mgmt-mode", "0660"]);
    let mode = std::fs::metadata(&mgmt).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o660);
    let d = sw.port();
    let b = BessClient::connect(&bess).unwrap();

    // Not text: an error answer, and the connection goes on.
    let mut odd = connect(&mgmt);
    odd.get_mut().write_all(b"ports \xff\xfe\nhelp\n").unwrap();
    assert_eq!(line(&mut odd), "error: the request is not UTF-8 text\n");
    let mut help = String::new();
    loop {
        let l = line(&mut odd);
        help.push_str(&l);
        if l == "ok\n" || l.is_empty() {
            break;
        }
    }
    assert!(help.starts_with("help "), "{help}");

    // An endless line: an error, then the switch hangs up.
    let mut endless = connect(&mgmt);
    endless.get_mut().write_all(&[b'x'; 5000]).unwrap();
    assert_eq!(
        line(&mut endless),
        "error: request longer than 4096 bytes\n"
    );
    let mut rest = Vec::new();
    endless.read_to_end(&mut rest).unwrap();
    assert!(rest.is_empty());

    // A client that asks and never reads is dropped once 1 MiB of answers
    // waits for it; the switch goes on meanwhile.
    let mut greedy = UnixStream::connect(&mgmt).unwrap();
    greedy
        .set_write_timeout(Some(Duration::from_millis(200)))
        .unwrap();
    let ask = b"help\n".repeat(1000);
    let mut hung_up = false;
    for _ in 0..2000 {
        if greedy.write_all(&ask).is_err() {
            hung_up = true;
            break;
        }
    }
    assert!(hung_up, "a client that never reads was never disconnected");

    // Too many clients: the extra one is told so; the first ones work.
    let crowd: Vec<BufReader<UnixStream>> = (0..64).map(|_| connect(&mgmt)).collect();
    let mut extra = connect(&mgmt);
    assert_eq!(
        line(&mut extra),
        "error: too many management clients; try again later\n"
    );
    drop(crowd);
    let f = frame(BROADCAST, mac(1), b"still switching");
    d.send(&f);
    assert_eq!(b.recv_frame(WAIT).as_deref(), Some(&f[..]));
    let ok = (0..50).any(|_| {
        let (status, _, _) = client(&mgmt, &["counters"]);
        status == 0 || {
            std::thread::sleep(Duration::from_millis(20));
            false
        }
    });
    assert!(ok, "{}", sw.output_report());
}

/// `frame` with an 802.1Q tag of `vid` (priority 0) after the MACs.
fn tagged(frame: &[u8], vid: u16) -> Vec<u8> {
    let mut f = frame[..12].to_vec();
    f.extend_from_slice(&[0x81, 0x00]);
    f.extend_from_slice(&vid.to_be_bytes());
    f.extend_from_slice(&frame[12..]);
    f
}

/// VLANs set through the management socket: access ports of one VLAN
/// reach each other only, a trunk carries both VLANs tagged, tags are
/// added and removed at the edges, ports with no VLAN stay transparent
/// (tagged frames pass untouched), and the MAC table is per VLAN.
#[test]
fn vlans_set_through_the_management_socket_keep_segments_apart() {
    require_ours!();
    let (mut sw, _bess, mgmt) = start(&[]);
    let ports: Vec<_> = (0..5).map(|_| sw.port()).collect();
    let mut labels = Vec::new();
    for (i, p) in ports.iter().enumerate() {
        p.send(&frame(BROADCAST, mac(i as u8 + 1), b"hello"));
        labels.push(learned_port(&mut sw, mac(i as u8 + 1)));
    }
    for p in &ports {
        p.drain(Duration::from_millis(200));
    }
    let [a, b, c, t, plain] = &ports[..] else {
        unreachable!()
    };
    let [la, lb, lc, lt, lplain] = &labels[..] else {
        unreachable!()
    };
    for (label, setting) in [
        (la, "access=10"),
        (lb, "access=10"),
        (lc, "access=20"),
        (lt, "trunk=10,20"),
    ] {
        let (status, out, err) = client(&mgmt, &["vlan", label, setting]);
        assert_eq!(
            (status, out.as_str()),
            (0, ""),
            "vlan {label} {setting}: {err}"
        );
    }
    let rows = port_rows(&mgmt);
    assert_eq!(row(&rows, la)[VLAN], "10");
    assert_eq!(row(&rows, lc)[VLAN], "20");
    assert_eq!(
        (
            row(&rows, lt)[VLAN].as_str(),
            row(&rows, lt)[TRUNK].as_str()
        ),
        ("0", "10,20")
    );
    assert_eq!(row(&rows, lplain)[TRUNK], "-");
    // A VLAN change forgets the port's addresses.
    assert_eq!(num(row(&rows, la), MACS), 0);

    // a's broadcast: b untagged, the trunk tagged 10, c and plain nothing.
    let from_a = frame(BROADCAST, mac(1), b"vlan 10 broadcast");
    a.send(&from_a);
    assert_eq!(b.recv_frame(WAIT).as_deref(), Some(&from_a[..]));
    assert_eq!(t.recv_frame(WAIT), Some(tagged(&from_a, 10)));
    // The trunk's frame tagged 20 reaches c untagged, and nobody else:
    // it is the first thing c gets, so a's broadcast never reached c.
    let untagged_20 = frame(BROADCAST, mac(4), b"vlan 20 from the trunk");
    t.send(&tagged(&untagged_20, 20));
    assert_eq!(c.recv_frame(WAIT), Some(untagged_20.clone()));
    // Unicast from c to a's MAC: a is in VLAN 10, so in VLAN 20 the MAC is
    // unknown: flooded in VLAN 20 only (the trunk, tagged).
    let c_to_a = frame(mac(1), mac(3), b"across VLANs?");
    c.send(&c_to_a);
    assert_eq!(t.recv_frame(WAIT), Some(tagged(&c_to_a, 20)));
    // Ports without VLANs: the default VLAN, tags untouched both ways.
    let guest_tagged = tagged(&frame(BROADCAST, mac(5), b"a guest's own VLAN"), 30);
    plain.send(&guest_tagged);
    // The trunk is in the default VLAN (untagged) too.
    assert_eq!(t.recv_frame(WAIT), Some(guest_tagged.clone()));
    // Markers: each of a, b and plain gets exactly what it should next.
    let marker10 = frame(BROADCAST, mac(2), b"marker 10");
    b.send(&marker10);
    assert_eq!(
        a.recv_frame(WAIT),
        Some(marker10.clone()),
        "a got c's or plain's frame"
    );
    let marker0 = frame(BROADCAST, mac(4), b"marker 0");
    t.send(&marker0);
    assert_eq!(
        plain.recv_frame(WAIT),
        Some(marker0),
        "plain got a VLAN frame"
    );
    // The MAC table is per VLAN.
    let (_, macs, _) = client(&mgmt, &["macs"]);
    let entry = |vlan: &str, m: [u8; 6]| {
        macs.lines().any(|l| {
            let cols: Vec<&str> = l.split_whitespace().collect();
            cols.first() == Some(&vlan) && cols.get(1) == Some(&mac_str(m).as_str())
        })
    };
    assert!(
        entry("10", mac(1)) && entry("20", mac(3)) && entry("20", mac(4)),
        "{macs}"
    );
    assert!(entry("0", mac(5)) && !entry("0", mac(1)), "{macs}");
    // Bad requests change nothing.
    for bad in [
        vec!["vlan", "999"],
        vec!["vlan", la.as_str(), "access=5000"],
        vec!["vlan", la.as_str(), "access=20", "trunk=20"],
    ] {
        let (status, _, err) = client(&mgmt, &bad);
        assert_eq!(status, 1, "{bad:?}: {err}");
    }
    assert_eq!(row(&port_rows(&mgmt), la)[VLAN], "10");
}

/// A refused `port add` says why once, after the program's name once
/// (the switch's command-line messages start with it; the client adds
/// it): `uml_switch: …`, never `uml_switch: uml_switch: …` (here the
/// name is the path the tests run it by).
#[test]
fn refused_port_adds_name_the_program_once() {
    require_ours!();
    let (_sw, _bess, mgmt) = start(&[]);
    for bad in [
        &[
            "port",
            "add",
            "l2tpv3",
            "udp=1,src=127.0.0.1,dst=nowhere.invalid",
        ][..],
        &["port", "add", "gre", "src=127.0.0.1"][..],
        &["port", "add", "raw", "no-such-interface-0"][..],
        &["port", "add", "pcap", "no-such-interface-0,filter=("][..],
    ] {
        let (status, _, err) = client(&mgmt, bad);
        assert_eq!(status, 1, "{bad:?}: {err}");
        assert!(
            err.split(": ")
                .next()
                .is_some_and(|p| p.ends_with("uml_switch"))
                && err.matches("uml_switch:").count() == 1,
            "{bad:?}: {err}"
        );
    }
}

/// `port add l2tpv3 …` opens a tunnel port at run time (the answer says
/// how the guest joins), frames cross it, `port remove` ends it (its
/// socket closes); a guest's port cannot be removed; `mode hub` and
/// `mode switch` change the forwarding at once.
#[test]
fn ports_added_and_removed_and_hub_mode_at_run_time() {
    require_ours!();
    let (mut sw, _bess, mgmt) = start(&[]);
    let guest = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    guest.set_read_timeout(Some(WAIT)).unwrap();
    let opts = format!(
        "udp=1,src=127.0.0.1,srcport={},dst=127.0.0.1,dstport=0,rx_session=0x1234,tx_session=0x5678",
        guest.local_addr().unwrap().port()
    );
    let (status, out, err) = client(&mgmt, &["port", "add", "l2tpv3", &opts]);
    assert_eq!(status, 0, "{err}");
    let arg = out
        .split(": the guest joins with ")
        .nth(1)
        .unwrap_or_else(|| panic!("{out}"))
        .trim_end()
        .to_string();
    let label = out
        .strip_prefix("l2tpv3 port ")
        .and_then(|r| r.split_whitespace().next())
        .unwrap_or_else(|| panic!("{out}"))
        .to_string();
    let port: u16 = arg
        .split(',')
        .find_map(|o| o.strip_prefix("dstport="))
        .unwrap()
        .parse()
        .unwrap();
    guest.connect(("127.0.0.1", port)).unwrap();
    let d = sw.port();
    let header = [0u8, 3, 0, 0, 0, 0, 0x56, 0x78];
    let f = frame(BROADCAST, mac(7), b"over the new tunnel");
    guest.send(&[&header[..], &f].concat()).unwrap();
    assert_eq!(d.recv_frame(WAIT).as_deref(), Some(&f[..]));
    let rows = port_rows(&mgmt);
    assert_eq!(row(&rows, &label)[KIND], "l2tpv3", "{rows:?}");

    // A daemon port is its guest's: refused.
    let d_label = learned_port(&mut sw, mac(7));
    assert_eq!(d_label, label);
    let marker = frame(BROADCAST, mac(8), b"daemon");
    d.send(&marker);
    let dl = learned_port(&mut sw, mac(8));
    let (status, _, err) = client(&mgmt, &["port", "remove", &dl]);
    assert_eq!(status, 1);
    assert!(err.contains("is a daemon port"), "{err}");

    let (status, _, err) = client(&mgmt, &["port", "remove", &label]);
    assert_eq!(status, 0, "{err}");
    assert!(port_rows(&mgmt).iter().all(|r| r[0] != label));
    sw.wait_until(WAIT, |s| {
        s.stdout().contains(&format!("Port {label} removed"))
    })
    .unwrap_or_else(|e| panic!("{e}"));
    // Its socket is closed: the guest's next frame reaches nobody (d gets
    // a later marker first).
    let gone = frame(BROADCAST, mac(7), b"after the port was removed");
    let _ = guest.send(&[&header[..], &gone].concat());
    let marker2 = frame(BROADCAST, mac(8), b"marker after removal");
    let m = sw.port();
    m.send(&marker2);
    assert_eq!(
        d.recv_frame(WAIT),
        Some(marker2),
        "the removed port still forwards"
    );
    drop(m);
    let (status, _, _) = client(&mgmt, &["port", "remove", &label]);
    assert_eq!(status, 1);

    // Hub mode: a unicast to a learned MAC reaches every other port.
    let e = sw.port();
    let g = sw.port();
    e.send(&frame(BROADCAST, mac(9), b"learn e"));
    learned_port(&mut sw, mac(9));
    for p in [&d, &g] {
        assert!(p.recv_frame(WAIT).is_some());
    }
    assert_eq!(client(&mgmt, &["mode", "hub"]).0, 0);
    let to_e = frame(mac(9), mac(8), b"to e, in hub mode");
    d.send(&to_e);
    assert_eq!(e.recv_frame(WAIT).as_deref(), Some(&to_e[..]));
    assert_eq!(g.recv_frame(WAIT).as_deref(), Some(&to_e[..]));
    assert_eq!(client(&mgmt, &["mode", "switch"]).0, 0);
    let to_e2 = frame(mac(9), mac(8), b"to e, switching again");
    d.send(&to_e2);
    assert_eq!(e.recv_frame(WAIT).as_deref(), Some(&to_e2[..]));
    // g gets the next broadcast first: the unicast did not reach it.
    let bc = frame(BROADCAST, mac(8), b"broadcast");
    d.send(&bc);
    assert_eq!(g.recv_frame(WAIT).as_deref(), Some(&bc[..]));
    assert!(sw.stdout().contains("is now a hub") && sw.stdout().contains("is now a switch"));
}

/// netkit's `uml_dump` (a v3 request of type 1, `REQ_NEW_DUMP`,
/// `docs/interop.md` §0 (item 6)): a mirror port that gets a copy of every frame
/// as received — unicast between two other ports included — is never
/// learned on or flooded to twice, and whose own frames are ignored.
#[test]
fn a_uml_dump_client_gets_a_copy_of_every_frame() {
    require_ours!();
    let (mut sw, _bess, mgmt) = start(&[]);
    let a = sw.port();
    let b = sw.port();
    let (data, addr) = bind_data_socket().unwrap();
    let mut control = connect_control(sw.ctl(), WAIT).unwrap();
    control.write_all(&request_versioned(3, 1, &addr)).unwrap();
    read_reply(&mut control, WAIT).unwrap();
    sw.wait_until(WAIT, |s| s.stdout().contains("New dump connection"))
        .unwrap_or_else(|e| panic!("{e}"));
    let recv = || {
        let mut buf = [0u8; 2048];
        data.recv(&mut buf).ok().map(|n| buf[..n].to_vec())
    };
    let bc = frame(BROADCAST, mac(1), b"a broadcasts");
    a.send(&bc);
    assert_eq!(b.recv_frame(WAIT), Some(bc.clone()));
    learned_port(&mut sw, mac(1));
    let uc = frame(mac(1), mac(2), b"b to a, unicast");
    b.send(&uc);
    assert_eq!(a.recv_frame(WAIT), Some(uc.clone()));
    // Frames from the mirror port are ignored (not forwarded, not learned).
    data.send_to_addr(
        &frame(BROADCAST, mac(9), b"from uml_dump"),
        &std::os::unix::net::SocketAddr::from_abstract_name(sw_data_name(&sw)).unwrap(),
    )
    .unwrap();
    let after = frame(BROADCAST, mac(2), b"b broadcasts");
    b.send(&after);
    assert_eq!(
        a.recv_frame(WAIT),
        Some(after.clone()),
        "a got uml_dump's frame"
    );
    // The mirror got each frame exactly once, in order.
    assert_eq!(recv(), Some(bc));
    assert_eq!(recv(), Some(uc));
    assert_eq!(recv(), Some(after));
    let (_, macs, _) = client(&mgmt, &["macs"]);
    assert!(!macs.contains(&mac_str(mac(9))), "{macs}");
    // The switch did receive the mirror's frame (counted), and dropped it.
    let (_, ports, _) = client(&mgmt, &["ports"]);
    let mirror: Vec<&str> = ports
        .lines()
        .find(|l| l.ends_with("uml_dump mirror"))
        .unwrap_or_else(|| panic!("{ports}"))
        .split_whitespace()
        .collect();
    assert_eq!(mirror[FRAMES_IN], "1", "{ports}");
}

/// The switch's data socket's abstract name, from its `attached` reply.
fn sw_data_name(sw: &RunningSwitch) -> Vec<u8> {
    let (_d, addr) = bind_data_socket().unwrap();
    let mut control = connect_control(sw.ctl(), WAIT).unwrap();
    control.write_all(&request_versioned(3, 0, &addr)).unwrap();
    let reply = read_reply(&mut control, WAIT).unwrap();
    // sun_family (2), then NUL and the name: all of sun_path (the switch
    // binds the full-length abstract address, trailing NULs included).
    reply[3..].to_vec()
}

#[test]
fn bad_management_options_are_refused_before_anything_starts() {
    require_ours!();
    let prog = SwitchBinary::under_test().path;
    let dir = new_temp_dir();
    let ctl = dir.path().join("ctl");
    let file = dir.path().join("plain");
    std::fs::write(&file, b"not a socket").unwrap();
    let cases: [(Vec<OsString>, String); 6] = [
        (
            vec![
                "--mgmt".into(),
                dir.path().join("m").into(),
                "--mgmt-mode".into(),
                "999".into(),
            ],
            format!(
                "{}: --mgmt-mode '999': expected permissions in octal, such as 0600 or 0660\n",
                prog.display()
            ),
        ),
        (
            vec!["--mgmt-mode".into(), "0600".into()],
            format!("{}: --mgmt-mode needs --mgmt PATH\n", prog.display()),
        ),
        (
            vec![
                "--mgmt".into(),
                dir.path().join("m").into(),
                "--mgmt-group".into(),
                "uml-no-such-group".into(),
            ],
            format!(
                "{}: --mgmt-group 'uml-no-such-group': no such group in /etc/group (give a \
                 group of another name service by its number)\n",
                prog.display()
            ),
        ),
        (
            vec![
                "--mgmt".into(),
                dir.path().join("m").into(),
                "--mgmt-group".into(),
                "4294967295".into(),
            ],
            format!(
                "{}: --mgmt-group '4294967295': not a group id\n",
                prog.display()
            ),
        ),
        (
            vec!["--mgmt-group".into(), "0".into()],
            format!("{}: --mgmt-group '0': needs --mgmt PATH\n", prog.display()),
        ),
        (
            vec!["--mgmt".into(), file.clone().into()],
            format!(
                "{}: --mgmt '{}': exists and is not a socket\n",
                prog.display(),
                file.display()
            ),
        ),
    ];
    for (args, want) in cases {
        let mut cmd = Command::new(&prog);
        cmd.arg("-unix").arg(&ctl).args(&args);
        let out = run_with_timeout(&mut cmd, WAIT);
        assert_eq!(out.code, Some(1), "{args:?}");
        assert_eq!(String::from_utf8_lossy(&out.stderr), want, "{args:?}");
        assert!(!ctl.exists(), "{args:?}: the control socket was left");
        assert!(!dir.path().join("m").exists());
    }
    assert_eq!(std::fs::read(&file).unwrap(), b"not a socket");
    // No switch there: the client says so.
    let (status, out, err) = client(&dir.path().join("none"), &["ports"]);
    assert_eq!((status, out.as_str()), (1, ""));
    assert!(
        err.contains("management socket") && err.contains("No such file"),
        "{err}"
    );
}

/// `--mgmt-group`: the socket file belongs to the group given by number or
/// by its name in /etc/group, with the mode given, and the switch serves
/// it; the control socket keeps its own group. A switch not allowed to
/// give it to the group does not start.
#[test]
fn the_management_socket_gets_the_group_and_mode_asked_for() {
    require_ours!();
    use std::os::unix::fs::MetadataExt;
    if !nix::unistd::geteuid().is_root() {
        let _ = writeln!(
            std::io::stderr(),
            "SKIP: only root may give a socket to any group"
        );
        return;
    }
    // A group that /etc/group names and that is not root's.
    let group = std::fs::read_to_string("/etc/group")
        .unwrap()
        .lines()
        .filter_map(|l| {
            let mut f = l.split(':');
            let name = f.next()?.to_string();
            let gid: u32 = f.nth(1)?.parse().ok()?;
            (gid != 0).then_some((name, gid))
        })
        .next()
        .expect("a group other than root in /etc/group");
    for (value, gid) in [("43117".to_string(), 43117), (group.0.clone(), group.1)] {
        let (sw, _bess, mgmt) = start(&["--mgmt-mode", "0660", "--mgmt-group", &value]);
        let meta = std::fs::metadata(&mgmt).unwrap();
        assert_eq!(meta.gid(), gid, "--mgmt-group {value}");
        assert_eq!(meta.uid(), nix::unistd::geteuid().as_raw());
        assert_eq!(
            meta.permissions().mode() & 0o7777,
            0o660,
            "--mgmt-group {value}"
        );
        assert_ne!(std::fs::metadata(sw.ctl()).unwrap().gid(), gid);
        let (status, out, err) = client(&mgmt, &["ports"]);
        assert_eq!(status, 0, "{err}");
        assert!(out.starts_with("port kind"), "{out}");
    }

    // A switch that may not give its socket to the group (nobody, not a
    // member of group 0) does not start and leaves no socket.
    let dir = new_temp_dir();
    let open = dir.path().join("open");
    std::fs::create_dir(&open).unwrap();
    for (d, mode) in [(dir.path(), 0o755), (open.as_path(), 0o777)] {
        std::fs::set_permissions(d, std::fs::Permissions::from_mode(mode)).unwrap();
    }
    let (ctl, sock) = (open.join("ctl"), open.join("mgmt"));
    let prog = SwitchBinary::under_test().path;
    let mut cmd = Command::new("setpriv");
    cmd.args(["--reuid=65534", "--regid=65534", "--clear-groups"])
        .arg(&prog)
        .arg("-unix")
        .arg(&ctl)
        .arg("--mgmt")
        .arg(&sock)
        .args(["--mgmt-group", "0"]);
    let out = run_with_timeout(&mut cmd, WAIT);
    assert_eq!(out.code, Some(1), "{out:?}");
    assert_eq!(
        String::from_utf8_lossy(&out.stderr),
        format!(
            "{}: --mgmt '{}': cannot give it to group 0: Operation not permitted\n",
            prog.display(),
            sock.display()
        )
    );
    assert!(!ctl.exists() && !sock.exists(), "sockets left behind");
}

/// Under a service manager: once every socket listens the switch sends
/// `READY=1` with its pid to `NOTIFY_SOCKET` (a path or, with `@`, an
/// abstract name), as sd_notify(3) describes; without it, nothing.
#[test]
fn readiness_is_notified_to_the_service_manager() {
    require_ours!();
    use std::os::unix::net::UnixDatagram;
    use std::process::Stdio;
    let dir = new_temp_dir();
    let path_sock = dir.path().join("notify");
    let abstract_name = format!("uml-switch-test-notify-{}", std::process::id());
    let by_path = UnixDatagram::bind(&path_sock).unwrap();
    let by_name = UnixDatagram::bind_addr(
        &std::os::unix::net::SocketAddr::from_abstract_name(abstract_name.as_bytes()).unwrap(),
    )
    .unwrap();
    for (n, (sock, value)) in [
        (&by_path, path_sock.display().to_string()),
        (&by_name, format!("@{abstract_name}")),
    ]
    .into_iter()
    .enumerate()
    {
        sock.set_read_timeout(Some(WAIT)).unwrap();
        let ctl = dir.path().join(format!("ctl{n}"));
        let mut child = Command::new(&SwitchBinary::under_test().path)
            .arg("-unix")
            .arg(&ctl)
            .env("NOTIFY_SOCKET", &value)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let mut buf = [0u8; 512];
        let got = sock.recv(&mut buf);
        // Ready means listening: the control socket is there.
        let listening = ctl.exists();
        let _ = nix::sys::signal::kill(
            nix::unistd::Pid::from_raw(child.id() as i32),
            nix::sys::signal::Signal::SIGTERM,
        );
        let deadline = std::time::Instant::now() + WAIT;
        while child.try_wait().unwrap().is_none() {
            assert!(
                std::time::Instant::now() < deadline,
                "the switch did not end"
            );
            std::thread::sleep(Duration::from_millis(10));
        }
        let n = got.unwrap_or_else(|e| panic!("no notification on {value}: {e}"));
        assert_eq!(
            String::from_utf8_lossy(&buf[..n]),
            format!(
                "READY=1\nSTATUS=0 ports, switching\nMAINPID={}\n",
                child.id()
            )
        );
        assert!(listening);
    }
}

/// Socket activation driven as systemd does it (`systemd-socket-activate`
/// passes the bound sockets, `LISTEN_FDS`): the switch uses the passed
/// control, management and bess sockets instead of binding, serves the
/// connection that woke it, and leaves the sockets' files (the manager's)
/// in place when it ends.
#[test]
fn passed_sockets_are_used_as_systemd_passes_them() {
    require_ours!();
    require!(Requirement::Program("systemd-socket-activate", "systemd"));
    use std::os::unix::process::CommandExt;
    let dir = new_temp_dir();
    let (ctl, sock, bess) = (
        dir.path().join("ctl"),
        dir.path().join("mgmt"),
        dir.path().join("bess"),
    );
    let log = dir.path().join("switch.out");
    let out = std::fs::File::create(&log).unwrap();
    let prog = SwitchBinary::under_test().path;
    // Stream sockets: control and management.
    let child = Command::new("systemd-socket-activate")
        .arg("-l")
        .arg(&ctl)
        .arg("-l")
        .arg(&sock)
        .arg("--fdname=ctl:mgmt")
        .arg(&prog)
        .arg("-unix")
        .arg(&ctl)
        .arg("--mgmt")
        .arg(&sock)
        .stdin(std::process::Stdio::null())
        .stdout(out.try_clone().unwrap())
        .stderr(out)
        .process_group(0)
        .spawn()
        .unwrap();
    let group = ProcessGroup(child);
    let deadline = std::time::Instant::now() + WAIT;
    while !(ctl.exists() && sock.exists()) {
        assert!(std::time::Instant::now() < deadline, "no sockets");
        std::thread::sleep(Duration::from_millis(20));
    }
    // The first connection wakes the switch, which serves it.
    let (_data, addr) = bind_data_socket().unwrap();
    let mut control = connect_control(&ctl, WAIT).unwrap();
    control.write_all(&request_versioned(3, 0, &addr)).unwrap();
    read_reply(&mut control, WAIT).unwrap();
    let (status, ports, err) = client(&sock, &["ports"]);
    assert_eq!(status, 0, "{err}");
    assert_eq!(
        ports.lines().filter(|l| l.contains(" daemon ")).count(),
        1,
        "{ports}"
    );
    let text = std::fs::read_to_string(&log).unwrap();
    assert!(
        !text.contains("bind"),
        "it bound instead of using the passed sockets:\n{text}"
    );
    drop(control);
    drop(group);
    assert!(
        ctl.exists() && sock.exists(),
        "the manager's socket files were removed"
    );

    // A seqpacket socket: bess.
    let log2 = dir.path().join("switch2.out");
    let out = std::fs::File::create(&log2).unwrap();
    let child = Command::new("systemd-socket-activate")
        .arg("--seqpacket")
        .arg("-l")
        .arg(&bess)
        .arg(&prog)
        .arg("-unix")
        .arg(dir.path().join("ctl2"))
        .arg("--bess")
        .arg(&bess)
        .stdin(std::process::Stdio::null())
        .stdout(out.try_clone().unwrap())
        .stderr(out)
        .process_group(0)
        .spawn()
        .unwrap();
    let _group = ProcessGroup(child);
    let deadline = std::time::Instant::now() + WAIT;
    while !bess.exists() {
        assert!(std::time::Instant::now() < deadline, "no bess socket");
        std::thread::sleep(Duration::from_millis(20));
    }
    let _b = BessClient::connect(&bess).unwrap();
    let deadline = std::time::Instant::now() + WAIT;
    loop {
        let text = std::fs::read_to_string(&log2).unwrap_or_default();
        if text.contains("New bess connection") {
            break;
        }
        assert!(std::time::Instant::now() < deadline, "not served:\n{text}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// `vlan default SOCKET …`: ports that connect to that socket later are in
/// those VLANs from their first frame (a lab puts a bess socket per VLAN).
#[test]
fn ports_of_a_listener_get_its_default_vlans() {
    require_ours!();
    let (mut sw, bess, mgmt) = start(&[]);
    let (status, _, err) = client(
        &mgmt,
        &["vlan", "default", bess.to_str().unwrap(), "access=10"],
    );
    assert_eq!(status, 0, "{err}");
    let (status, _, err) = client(&mgmt, &["vlan", "default", "/nonexistent", "access=10"]);
    assert_eq!(status, 1);
    assert!(
        err.contains("is not the control socket or a bess socket"),
        "{err}"
    );
    let d = sw.port();
    let b1 = BessClient::connect(&bess).unwrap();
    let b2 = BessClient::connect(&bess).unwrap();
    sw.wait_until(WAIT, |s| {
        s.stdout().matches("New bess connection").count() == 2
    })
    .unwrap_or_else(|e| panic!("{e}"));
    let rows = port_rows(&mgmt);
    let vlans: Vec<&str> = rows.iter().map(|r| r[VLAN].as_str()).collect();
    assert_eq!(vlans.iter().filter(|v| **v == "10").count(), 2, "{rows:?}");
    let from_b1 = frame(BROADCAST, mac(1), b"VLAN 10 only");
    b1.send(&from_b1);
    assert_eq!(b2.recv_frame(WAIT), Some(from_b1));
    // The daemon port (default VLAN) gets the next default-VLAN frame
    // first: b1's broadcast never reached it.
    let e = sw.port();
    let marker = frame(BROADCAST, mac(5), b"default VLAN");
    e.send(&marker);
    assert_eq!(d.recv_frame(WAIT), Some(marker));
}
