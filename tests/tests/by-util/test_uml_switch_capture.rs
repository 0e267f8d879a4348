//! Capture (`--pcap FILE`, `capture start|stop` on the management socket,
//! `docs/mgmt.md` §6): the file, read back with a pcap reader, holds
//! exactly the frames the switch received, in order; a port filter keeps
//! that port's frames (from it and to it) only; existing files are never
//! overwritten; bad options are refused. The same in pcapng
//! (`--pcap-format pcapng`, `format=pcapng`), read back with pcap-file's
//! pcapng reader and with `tcpdump -r`. Ours only.

#![allow(clippy::expect_used, clippy::unwrap_used)]

use std::ffi::OsString;
use std::fs::File;
use std::io::Write;
use std::path::Path;
use std::process::Command;

use nix::sys::signal::Signal;
use pcap_file::pcap::PcapReader;
use uml_integration_tests::switch_client::{
    frame, learned_port, mac, mac_str, new_temp_dir, FramePort, RunningSwitch, SwitchBinary,
    SwitchMode, BROADCAST, WAIT,
};
use uml_integration_tests::{require, run_with_timeout, Requirement};

macro_rules! require_ours {
    () => {
        if SwitchBinary::under_test().is_c_reference {
            let _ = writeln!(std::io::stderr(), "SKIP: the C switch has no capture");
            return;
        }
    };
}

fn read_frames(path: &Path) -> Vec<Vec<u8>> {
    let mut r = PcapReader::new(File::open(path).unwrap()).unwrap();
    assert_eq!(r.header().datalink, pcap_file::DataLink::ETHERNET);
    let mut out = Vec::new();
    while let Some(p) = r.next_packet() {
        let p = p.unwrap();
        assert_eq!(p.orig_len as usize, p.data.len());
        out.push(p.data.into_owned());
    }
    out
}

/// The frames of the pcapng file `path` (one Ethernet interface).
fn read_frames_ng(path: &Path) -> Vec<Vec<u8>> {
    use pcap_file::pcapng::{Block, PcapNgReader};
    let mut r = PcapNgReader::new(File::open(path).unwrap()).unwrap();
    let mut out = Vec::new();
    while let Some(b) = r.next_block() {
        if let Block::EnhancedPacket(p) = b.unwrap() {
            assert_eq!(p.interface_id, 0);
            assert_eq!(p.original_len as usize, p.data.len());
            out.push(p.data.into_owned());
        }
    }
    assert_eq!(r.interfaces().len(), 1);
    assert_eq!(r.interfaces()[0].linktype, pcap_file::DataLink::ETHERNET);
    out
}

/// `tcpdump -tt -nn -e -r FILE`'s lines.
fn tcpdump(path: &Path) -> Vec<String> {
    let mut cmd = Command::new("tcpdump");
    cmd.args(["-tt", "-nn", "-e", "-r"]).arg(path);
    let out = run_with_timeout(&mut cmd, WAIT);
    assert_eq!(
        out.code,
        Some(0),
        "tcpdump -r {}: {}",
        path.display(),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(str::to_string)
        .collect()
}

fn mgmt(path: &Path, words: &[&str]) -> (i32, String, String) {
    let mut cmd = Command::new(&SwitchBinary::under_test().path);
    cmd.arg("--mgmt").arg(path).args(words);
    let out = run_with_timeout(&mut cmd, WAIT);
    (
        out.code.unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

fn start(extra: Vec<OsString>) -> RunningSwitch {
    let dir = new_temp_dir();
    let extra: Vec<OsString> = extra
        .into_iter()
        .map(|a| {
            // DIR/ prefixes name files of the switch's directory.
            let s = a.to_string_lossy().into_owned();
            match s.strip_prefix("DIR/") {
                Some(rest) => dir.path().join(rest).into(),
                None => a,
            }
        })
        .collect();
    RunningSwitch::start_in_with_args(dir, SwitchMode::default(), &extra)
        .unwrap_or_else(|e| panic!("{e}"))
}

#[test]
fn pcap_holds_every_received_frame_in_order() {
    require_ours!();
    let mut sw = start(vec!["--pcap".into(), "DIR/seg.pcap".into()]);
    let file = sw.dir().join("seg.pcap");
    assert!(
        sw.stdout()
            .contains(&format!("capturing every frame to '{}'", file.display())),
        "{}",
        sw.output_report()
    );
    let a = sw.port();
    let b = sw.port();
    let mut sent = Vec::new();
    for i in 0..200u32 {
        let (from, to, src) = if i % 2 == 0 { (&a, &b, 1) } else { (&b, &a, 2) };
        let f = frame(BROADCAST, mac(src), format!("frame {i}").as_bytes());
        from.send(&f);
        assert_eq!(to.recv_frame(WAIT).as_deref(), Some(&f[..]));
        sent.push(f);
    }
    // SIGTERM: the switch writes the capture out as it ends.
    sw.signal(Signal::SIGTERM);
    assert!(sw.wait_exit(WAIT).is_some(), "{}", sw.output_report());
    assert_eq!(read_frames(&file), sent);
}

#[test]
fn a_port_filtered_capture_through_the_management_socket() {
    require_ours!();
    let mut sw = start(vec!["--mgmt".into(), "DIR/mgmt".into()]);
    let sock = sw.dir().join("mgmt");
    let file = sw.dir().join("a.pcap");
    let (a, b, c) = (sw.port(), sw.port(), sw.port());
    for (p, n) in [(&a, 1), (&b, 2), (&c, 3)] {
        p.send(&frame(BROADCAST, mac(n), b"learn"));
    }
    let la = learned_port(&mut sw, mac(1));
    learned_port(&mut sw, mac(2));
    learned_port(&mut sw, mac(3));
    for p in [&a, &b, &c] {
        p.drain(std::time::Duration::from_millis(200));
    }
    let (status, out, err) = mgmt(
        &sock,
        &[
            "capture",
            "start",
            file.to_str().unwrap(),
            &format!("port={la}"),
        ],
    );
    assert_eq!(status, 0, "{err}");
    assert!(
        out.starts_with(&format!("capturing to {}", file.display())),
        "{out}"
    );

    let from_a = frame(BROADCAST, mac(1), b"a floods");
    let b_to_c = frame(mac(3), mac(2), b"b to c: not a's");
    let c_to_a = frame(mac(1), mac(3), b"c to a");
    let b_floods = frame(BROADCAST, mac(2), b"b floods: reaches a");
    a.send(&from_a);
    assert!(b.recv_frame(WAIT).is_some() && c.recv_frame(WAIT).is_some());
    b.send(&b_to_c);
    assert!(c.recv_frame(WAIT).is_some());
    c.send(&c_to_a);
    assert!(a.recv_frame(WAIT).is_some());
    b.send(&b_floods);
    assert!(a.recv_frame(WAIT).is_some());
    let (status, status_text, _) = mgmt(&sock, &["capture"]);
    assert_eq!(status, 0);
    assert!(
        status_text.contains(&format!("(3 frames, port {la},")),
        "{status_text}"
    );
    let (status, _, err) = mgmt(&sock, &["capture", "stop"]);
    assert_eq!(status, 0, "{err}");
    assert_eq!(read_frames(&file), vec![from_a, c_to_a, b_floods]);
    let (_, text, _) = mgmt(&sock, &["capture"]);
    assert_eq!(text, "no capture\n");

    // Refusals: an existing file (untouched), a relative path, a second
    // stop, an unknown port.
    let (status, _, err) = mgmt(&sock, &["capture", "start", file.to_str().unwrap()]);
    assert_eq!(status, 1);
    assert!(
        err.contains("cannot create") && err.contains("File exists"),
        "{err}"
    );
    assert_eq!(read_frames(&file).len(), 3);
    let (status, _, err) = mgmt(&sock, &["capture", "start", "rel.pcap"]);
    assert!(status == 1 && err.contains("absolute path"), "{err}");
    let (status, _, err) = mgmt(&sock, &["capture", "stop"]);
    assert!(status == 1 && err.contains("no capture runs"), "{err}");
    let other = sw.dir().join("b.pcap");
    let (status, _, err) = mgmt(
        &sock,
        &["capture", "start", other.to_str().unwrap(), "port=999"],
    );
    assert!(status == 1 && err.contains("no port 999"), "{err}");
    assert!(!other.exists());
}

/// `--pcap-format pcapng`, then a port-filtered `capture start ...
/// format=pcapng`: both files hold the frames (all, then the port's) in
/// order, for pcap-file's pcapng reader and for tcpdump, which reads
/// the timestamps right (their resolution is declared).
#[test]
fn pcapng_captures_read_back_with_pcapng_readers() {
    require_ours!();
    require!(Requirement::Program("tcpdump", "tcpdump"));
    let mut sw = start(vec![
        "--pcap".into(),
        "DIR/seg.pcapng".into(),
        "--pcap-format".into(),
        "pcapng".into(),
        "--mgmt".into(),
        "DIR/mgmt".into(),
    ]);
    let file = sw.dir().join("seg.pcapng");
    let sock = sw.dir().join("mgmt");
    let (a, b, c) = (sw.port(), sw.port(), sw.port());
    let mut sent = Vec::new();
    for (p, n) in [(&a, 1), (&b, 2), (&c, 3)] {
        let f = frame(BROADCAST, mac(n), b"learn");
        p.send(&f);
        sent.push(f);
    }
    let la = learned_port(&mut sw, mac(1));
    learned_port(&mut sw, mac(2));
    learned_port(&mut sw, mac(3));
    for p in [&a, &b, &c] {
        p.drain(std::time::Duration::from_millis(200));
    }
    for i in 0..20u32 {
        let (from, to, dst, src) = if i % 2 == 0 {
            (&a, &b, 2, 1)
        } else {
            (&b, &a, 1, 2)
        };
        let f = frame(mac(dst), mac(src), format!("frame {i}").as_bytes());
        from.send(&f);
        assert_eq!(to.recv_frame(WAIT).as_deref(), Some(&f[..]));
        sent.push(f);
    }
    let (status, text, err) = mgmt(&sock, &["capture"]);
    assert_eq!(status, 0, "{err}");
    assert!(
        text.contains("(23 frames, all frames,") && text.contains(", pcapng)"),
        "{text}"
    );
    let (status, _, err) = mgmt(&sock, &["capture", "stop"]);
    assert_eq!(status, 0, "{err}");
    assert_eq!(read_frames_ng(&file), sent);
    let lines = tcpdump(&file);
    assert_eq!(lines.len(), sent.len(), "{lines:#?}");
    // -tt: seconds since the epoch, as tcpdump read them (a wrong
    // timestamp resolution would put them centuries away).
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs_f64();
    for l in &lines {
        let t: f64 = l.split(' ').next().unwrap().parse().unwrap();
        assert!((now - 600.0..=now + 1.0).contains(&t), "{now}: {l}");
    }
    assert!(
        lines[3].contains(&format!("{} > {}", mac_str(mac(1)), mac_str(mac(2)))),
        "{}",
        lines[3]
    );

    // One port's frames, through the management socket.
    let other = sw.dir().join("a.pcapng");
    let (status, out, err) = mgmt(
        &sock,
        &[
            "capture",
            "start",
            other.to_str().unwrap(),
            &format!("port={la}"),
            "format=pcapng",
        ],
    );
    assert_eq!(status, 0, "{err}");
    assert!(out.contains(", pcapng)"), "{out}");
    let from_a = frame(BROADCAST, mac(1), b"a floods");
    let b_to_c = frame(mac(3), mac(2), b"b to c: not a's");
    let c_to_a = frame(mac(1), mac(3), b"c to a");
    a.send(&from_a);
    assert!(b.recv_frame(WAIT).is_some() && c.recv_frame(WAIT).is_some());
    b.send(&b_to_c);
    assert!(c.recv_frame(WAIT).is_some());
    c.send(&c_to_a);
    assert!(a.recv_frame(WAIT).is_some());
    let (status, _, err) = mgmt(&sock, &["capture", "stop"]);
    assert_eq!(status, 0, "{err}");
    assert_eq!(read_frames_ng(&other), vec![from_a, c_to_a]);
    assert_eq!(tcpdump(&other).len(), 2);
    let (status, _, err) = mgmt(
        &sock,
        &[
            "capture",
            "start",
            sw.dir().join("c").to_str().unwrap(),
            "format=ng",
        ],
    );
    assert!(
        status == 1 && err.contains("bad capture option 'format=ng'"),
        "{err}"
    );
}

#[test]
fn bad_capture_options_are_refused_before_anything_starts() {
    require_ours!();
    let prog = SwitchBinary::under_test().path;
    let dir = new_temp_dir();
    let ctl = dir.path().join("ctl");
    let existing = dir.path().join("old.pcap");
    std::fs::write(&existing, b"keep me").unwrap();
    let cases: Vec<(Vec<OsString>, String)> = vec![
        (
            vec!["--pcap".into(), existing.clone().into()],
            format!(
                "{}: --pcap: cannot create '{}': File exists\n",
                prog.display(),
                existing.display()
            ),
        ),
        (
            vec![
                "--pcap".into(),
                dir.path().join("n.pcap").into(),
                "--pcap-limit".into(),
                "1K".into(),
            ],
            format!(
                "{}: --pcap-limit '1K': expected a size of at least 64K with --pcap FILE (bytes, or with K, M, G)\n",
                prog.display()
            ),
        ),
        (
            vec![
                "--pcap".into(),
                dir.path().join("n.pcap").into(),
                "--pcap-format".into(),
                "pcapng2".into(),
            ],
            format!(
                "{}: --pcap-format 'pcapng2': expected pcap or pcapng, with --pcap FILE\n",
                prog.display()
            ),
        ),
        (
            vec!["--pcap-format".into(), "pcapng".into()],
            format!(
                "{}: --pcap-format 'pcapng': expected pcap or pcapng, with --pcap FILE\n",
                prog.display()
            ),
        ),
        (
            vec!["--pcap-limit".into(), "1M".into()],
            format!(
                "{}: --pcap-limit '1M': expected a size of at least 64K with --pcap FILE (bytes, or with K, M, G)\n",
                prog.display()
            ),
        ),
    ];
    for (args, want) in cases {
        let mut cmd = Command::new(&prog);
        cmd.arg("-unix").arg(&ctl).args(&args);
        let out = run_with_timeout(&mut cmd, WAIT);
        assert_eq!(out.code, Some(1), "{args:?}");
        assert_eq!(String::from_utf8_lossy(&out.stderr), want, "{args:?}");
        assert!(!ctl.exists(), "{args:?}");
        assert!(!dir.path().join("n.pcap").exists());
    }
    assert_eq!(std::fs::read(&existing).unwrap(), b"keep me");
}
