//! Capture (`--pcap FILE`, `capture start|stop` on the management socket,
//! `docs/mgmt.md` §6): the file, read back with a pcap reader, holds
//! exactly the frames the switch received, in order; a port filter keeps
//! that port's frames (from it and to it) only; existing files are never
//! overwritten; bad options are refused. Ours only.

#![allow(clippy::expect_used, clippy::unwrap_used)]

use std::ffi::OsString;
use std::fs::File;
use std::io::Write;
use std::path::Path;
use std::process::Command;

use nix::sys::signal::Signal;
use pcap_file::pcap::PcapReader;
use uml_integration_tests::run_with_timeout;
use uml_integration_tests::switch_client::{
    frame, learned_port, mac, new_temp_dir, FramePort, RunningSwitch, SwitchBinary, SwitchMode,
    BROADCAST, WAIT,
};

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
