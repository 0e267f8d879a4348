//! Smoke tests of the real-kernel harness itself: boot, talk, stop, clean up.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::PathBuf;
use std::time::Duration;

use uml_integration_tests::uml_common::mconsole::{decode_notify, NotifyKind};
use uml_integration_tests::{pid_alive, require, NetNs, Requirement, Uml, UmlConfig};

fn boot(cfg: UmlConfig) -> Uml {
    match Uml::boot(cfg) {
        Ok(uml) => uml,
        Err(e) => panic!("boot failed: {e}"),
    }
}

#[test]
fn boot_version_and_drop_cleans_up() {
    require!(Requirement::Root, Requirement::LinuxUml);
    let mut uml = boot(UmlConfig::new("smoke"));
    let pid = uml.pid();
    assert!(pid_alive(pid), "pid {pid} from the pid file is not running");
    let reply = uml.mconsole("version").expect("mconsole version");
    assert!(reply.complete && !reply.is_error(), "{reply:?}");
    let text = String::from_utf8_lossy(&reply.text).into_owned();
    assert!(text.starts_with("Linux"), "version reply: {text:?}");

    // The init script ran: the marker is on the console and $OUT is writable.
    assert!(
        uml.wait_ready(Duration::from_secs(30)),
        "no ready marker:\n{}",
        uml.console()
    );
    let work: PathBuf = uml.work_dir().to_path_buf();
    assert!(work.join("console.log").is_file());

    drop(uml);
    assert!(!pid_alive(pid), "UML pid {pid} still running after drop");
    assert!(!work.exists(), "work dir {} not removed", work.display());
}

#[test]
fn guest_writes_out_and_powers_off() {
    require!(Requirement::Root, Requirement::LinuxUml);
    let mut cfg = UmlConfig::new("out");
    cfg.extra_args.push("TEST_WORD=hello".into());
    cfg.init_script = "echo \"$TEST_WORD\" > \"$OUT/word\"".into();
    let mut uml = boot(cfg);
    assert!(
        uml.wait_exit(Duration::from_secs(60)),
        "guest did not power off:\n{}",
        uml.console()
    );
    assert!(
        uml.console().contains("UMLTEST-DONE rc=0"),
        "{}",
        uml.console()
    );
    let word = std::fs::read_to_string(uml.out_dir().join("word")).unwrap();
    assert_eq!(word, "hello\n");
}

#[test]
fn boot_in_netns_sends_socket_notification() {
    require!(Requirement::Root, Requirement::LinuxUml, Requirement::NetNs);
    let ns = NetNs::new("smoke");
    ns.sysctl("net.unix.max_dgram_qlen", "1000").unwrap();
    let mut cfg = UmlConfig::new("nsnotify");
    cfg.netns = Some(ns.name().to_string());
    cfg.notify = true;
    let uml = boot(cfg);

    let listener = uml.notify().expect("notify listener");
    let mut socket_note = None;
    for _ in 0..10 {
        let Some(dgram) = listener.recv(Duration::from_secs(10)) else {
            break;
        };
        let note = decode_notify(&dgram).unwrap();
        if note.kind == NotifyKind::Socket {
            socket_note = Some(String::from_utf8_lossy(note.text()).into_owned());
            break;
        }
    }
    let path = socket_note.expect("no SOCKET notification");
    assert_eq!(PathBuf::from(&path), uml.socket_path());

    // The UML really is in the namespace, and the raw client (path-bound
    // reply socket) reaches it from outside.
    assert!(ns.pids().contains(&uml.pid()), "pid not in {}", ns.name());
    let reply = uml.mconsole("version").unwrap();
    assert!(String::from_utf8_lossy(&reply.text).starts_with("Linux"));

    let pid = uml.pid();
    drop(uml);
    assert!(!pid_alive(pid));
    drop(ns);
}

#[test]
fn panic_while_holding_uml_still_stops_it() {
    require!(Requirement::Root, Requirement::LinuxUml);
    let (tx, rx) = std::sync::mpsc::channel();
    let result = std::panic::catch_unwind(move || {
        let uml = boot(UmlConfig::new("panic"));
        tx.send((uml.pid(), uml.work_dir().to_path_buf())).unwrap();
        panic!("deliberate panic with a running UML");
    });
    assert!(result.is_err());
    let (pid, work) = rx.recv().unwrap();
    assert!(!pid_alive(pid), "UML pid {pid} survived the panic");
    assert!(!work.exists());
}

#[test]
fn failed_boot_reports_console_tail() {
    require!(Requirement::Root, Requirement::LinuxUml);
    let mut cfg = UmlConfig::new("tiny");
    cfg.mem = "1K".into(); // far too little: the kernel exits at once
    let err = match Uml::boot(cfg) {
        Ok(_) => panic!("boot with mem=1K succeeded"),
        Err(e) => e,
    };
    assert!(err.contains("did not come up"), "{err}");
    assert!(err.contains("--- console tail ---"), "{err}");
}
