//! Smoke tests of the harness with the second test kernel, Linux 7.x
//! (`docs/testing.md` §11, `docs/kernel7.md`): boot, version, mconsole, stop
//! and clean up; the legacy `ethN=` transports are gone while a vector
//! device works.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::PathBuf;
use std::time::Duration;

use uml_integration_tests::uml_common::mconsole::{decode_notify, NotifyKind};
use uml_integration_tests::{
    linux_uml7, parse_kernel_version, pid_alive, require, Kernel, NetNs, Requirement, Uml,
    UmlConfig, DONE_MARKER, KERNEL7_MIN_VERSION,
};

fn boot(cfg: UmlConfig) -> Uml {
    match Uml::boot(cfg) {
        Ok(uml) => uml,
        Err(e) => panic!("boot failed: {e}"),
    }
}

/// The text after `prefix` on the first console line that starts with it.
fn console_value(console: &str, prefix: &str) -> Option<String> {
    console
        .lines()
        .find_map(|l| l.strip_prefix(prefix))
        .map(|v| v.trim().to_string())
}

fn assert_new_enough(release: &str, what: &str) {
    let v = parse_kernel_version(release)
        .unwrap_or_else(|| panic!("{what}: {release:?} is not a kernel version"));
    assert!(
        v >= KERNEL7_MIN_VERSION,
        "{what}: {release} is older than {}.{}",
        KERNEL7_MIN_VERSION.0,
        KERNEL7_MIN_VERSION.1
    );
}

/// The value of `UML_PORT_HELPER` in the environment of process `pid`.
fn port_helper_env(pid: u32) -> Option<Vec<u8>> {
    let environ = std::fs::read(format!("/proc/{pid}/environ")).unwrap();
    environ
        .split(|&b| b == 0)
        .find_map(|v| v.strip_prefix(&b"UML_PORT_HELPER="[..]))
        .map(<[u8]>::to_vec)
}

#[test]
fn kernel7_boots_reports_version_and_answers_mconsole() {
    require!(Requirement::Root, Requirement::LinuxUml7);
    let expected = linux_uml7().unwrap().version.clone();
    let mut cfg = UmlConfig::with_kernel("k7smoke", Kernel::Linux7);
    cfg.init_script = "echo \"K7-UNAME $(uname -r)\"\nwhile :; do sleep 3600; done".into();
    let mut uml = boot(cfg);
    assert_eq!(uml.kernel(), Kernel::Linux7);
    let pid = uml.pid();
    assert!(pid_alive(pid), "pid {pid} from the pid file is not running");
    assert!(
        uml.wait_ready(Duration::from_secs(30)),
        "no ready marker:\n{}",
        uml.console()
    );
    assert!(
        uml.wait_console("K7-UNAME ", Duration::from_secs(30)),
        "no uname line:\n{}",
        uml.console()
    );
    let console = uml.console();
    let release = console_value(&console, "K7-UNAME ").unwrap();
    assert_new_enough(&release, "guest uname -r");
    assert_eq!(release, expected, "guest release vs. linux.uml --version");
    assert!(
        console.contains(&format!("Linux version {release} ")),
        "{console}"
    );

    // mconsole `version`: "Linux <nodename> <release> <version> <machine>".
    let reply = uml.mconsole("version").expect("mconsole version");
    assert!(reply.complete && !reply.is_error(), "{reply:?}");
    let text = String::from_utf8_lossy(&reply.text).into_owned();
    let words: Vec<&str> = text.split_whitespace().collect();
    assert_eq!(words.first(), Some(&"Linux"), "version reply: {text:?}");
    assert_eq!(
        words.get(2),
        Some(&release.as_str()),
        "version reply: {text:?}"
    );
    assert_new_enough(words[2], "mconsole version");

    // 7.x looks for port-helper in /usr/lib64/uml/; the harness points it
    // at Debian's path, where 6.1 looks, unless told otherwise.
    if std::env::var_os("UML_PORT_HELPER").is_none()
        && std::path::Path::new("/usr/lib/uml/port-helper").is_file()
    {
        assert_eq!(
            port_helper_env(pid).as_deref(),
            Some(&b"/usr/lib/uml/port-helper"[..]),
            "kernel environment lacks UML_PORT_HELPER"
        );
    }

    let work: PathBuf = uml.work_dir().to_path_buf();
    drop(uml);
    assert!(!pid_alive(pid), "UML pid {pid} still running after drop");
    assert!(!work.exists(), "work dir {} not removed", work.display());
}

/// Also runs the kernel through a `wrapper` (a private mount namespace,
/// as the watchdog tests do): the guest sees, through hostfs, a tmpfs that
/// exists only in the kernel's mount namespace.
#[test]
fn kernel7_guest_writes_out_and_powers_off() {
    require!(Requirement::Root, Requirement::LinuxUml7);
    let mut cfg = UmlConfig::with_kernel("k7out", Kernel::Linux7);
    cfg.extra_args.push("TEST_WORD=hello".into());
    cfg.wrapper = [
        "unshare",
        "-m",
        "--propagation",
        "private",
        "sh",
        "-c",
        "mkdir \"$WORK/mnt\" && mount -t tmpfs tmpfs \"$WORK/mnt\" && \
         echo wrapped > \"$WORK/mnt/flag\" && exec \"$@\"",
        "sh",
    ]
    .map(String::from)
    .to_vec();
    cfg.init_script =
        "echo \"$TEST_WORD\" > \"$OUT/word\"\ncat \"$WORK/mnt/flag\" > \"$OUT/flag\"".into();
    let mut uml = boot(cfg);
    assert!(
        !uml.work_dir().join("mnt/flag").exists(),
        "the wrapper's tmpfs leaked out of its mount namespace"
    );
    assert!(
        uml.wait_exit(Duration::from_secs(60)),
        "guest did not power off:\n{}",
        uml.console()
    );
    assert!(
        uml.console().contains(&format!("{DONE_MARKER}0")),
        "{}",
        uml.console()
    );
    let word = std::fs::read_to_string(uml.out_dir().join("word")).unwrap();
    assert_eq!(word, "hello\n");
    let flag = std::fs::read_to_string(uml.out_dir().join("flag")).unwrap();
    assert_eq!(flag, "wrapped\n");
}

/// `debian_port_helper: false` boots the kernel without `UML_PORT_HELPER`
/// (as a user's system would), so it looks where it was compiled to look.
#[test]
fn kernel7_without_the_port_helper_variable() {
    require!(Requirement::Root, Requirement::LinuxUml7);
    let cfg = UmlConfig {
        debian_port_helper: false,
        ..UmlConfig::with_kernel("k7noph", Kernel::Linux7)
    };
    let uml = boot(cfg);
    assert_eq!(port_helper_env(uml.pid()), None);
    // An explicit setting still wins.
    let cfg = UmlConfig {
        debian_port_helper: false,
        env: vec![("UML_PORT_HELPER".into(), "$WORK/ph".into())],
        ..UmlConfig::with_kernel("k7ph", Kernel::Linux7)
    };
    let uml2 = boot(cfg);
    let want = uml2.work_dir().join("ph");
    assert_eq!(
        port_helper_env(uml2.pid()).as_deref(),
        Some(want.as_os_str().as_encoded_bytes())
    );
    drop(uml);
}

#[test]
fn kernel7_panic_while_holding_uml_still_stops_it() {
    require!(Requirement::Root, Requirement::LinuxUml7);
    let (tx, rx) = std::sync::mpsc::channel();
    let result = std::panic::catch_unwind(move || {
        let uml = boot(UmlConfig::with_kernel("k7panic", Kernel::Linux7));
        tx.send((uml.pid(), uml.work_dir().to_path_buf())).unwrap();
        panic!("deliberate panic with a running 7.x UML");
    });
    assert!(result.is_err());
    let (pid, work) = rx.recv().unwrap();
    assert!(!pid_alive(pid), "UML pid {pid} survived the panic");
    assert!(!work.exists());
}

/// In a namespace of its own: `eth0=daemon,...` is no longer a device
/// (only an unknown parameter handed to init), while
/// `vec0:transport=tap` on a tap the namespace prepared appears in the
/// guest and passes traffic. Also checks the SOCKET notification.
#[test]
fn kernel7_rejects_eth_daemon_and_runs_vector_tap() {
    require!(
        Requirement::Root,
        Requirement::LinuxUml7,
        Requirement::NetNs,
        Requirement::DevNetTun
    );
    let ns = NetNs::new("k7vec");
    ns.sysctl("net.unix.max_dgram_qlen", "1000").unwrap();
    // The tap exists, is configured and up before the kernel opens it
    // (`docs/testing.md` §7.4); it vanishes with the namespace.
    for args in [
        &["tuntap", "add", "dev", "k7tap", "mode", "tap"][..],
        &["addr", "add", "10.0.7.254/24", "dev", "k7tap"],
        &["link", "set", "k7tap", "up"],
    ] {
        let out = ns.ip(args);
        assert!(out.success(), "ip {args:?}: {out}");
    }

    let eth = "eth0=daemon,fe:fd:0a:00:07:01,unix,$WORK/sw.ctl";
    let mut cfg = UmlConfig::with_kernel("k7vec", Kernel::Linux7);
    cfg.netns = Some(ns.name().to_string());
    cfg.notify = true;
    cfg.extra_args = vec![
        eth.into(),
        "vec0:transport=tap,ifname=k7tap,depth=128,mac=fe:fd:0a:00:07:02".into(),
    ];
    cfg.init_script = r#"
if [ -e /sys/class/net/eth0 ]; then echo "K7NET: eth0 present"; else echo "K7NET: no eth0"; fi
if [ -e /sys/class/net/vec0 ]; then echo "K7NET: vec0 present"; else echo "K7NET: no vec0"; exit 1; fi
echo "K7NET: eth0 env=$eth0"
ip addr add 10.0.7.1/24 dev vec0 && ip link set vec0 up || exit 2
ping -c 3 -i 0.3 -w 20 10.0.7.254
echo "K7NET: ping rc=$?"
"#
    .into();
    let mut uml = boot(cfg);
    let pid = uml.pid();
    assert!(ns.pids().contains(&pid), "pid {pid} not in {}", ns.name());

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

    assert!(
        uml.wait_exit(Duration::from_secs(90)),
        "guest did not power off:\n{}",
        uml.console()
    );
    let console = uml.console();
    let eth_expanded = eth.replace("$WORK", &uml.work_dir().to_string_lossy());
    let unknown = console
        .lines()
        .find(|l| l.contains("Unknown kernel command line parameters"))
        .unwrap_or_else(|| panic!("no unknown-parameters line:\n{console}"));
    assert!(unknown.contains(&eth_expanded), "{unknown}");
    assert!(!unknown.contains("vec0:"), "{unknown}");
    assert!(console.contains("K7NET: no eth0"), "{console}");
    assert!(console.contains("K7NET: vec0 present"), "{console}");
    assert!(
        console.contains(&format!(
            "K7NET: eth0 env={}",
            &eth_expanded["eth0=".len()..]
        )),
        "{console}"
    );
    assert!(console.contains("K7NET: ping rc=0"), "{console}");
    assert!(console.contains(&format!("{DONE_MARKER}0")), "{console}");

    drop(uml);
    assert!(!pid_alive(pid));
    drop(ns);
}
