//! uml_mconsole against the real UML kernels, 6.1 and the 7.x test kernel
//! (each test runs on both; the 7.x one is named `..._on_7`): every
//! command family, multi-part replies, notifications, halt and int; on 7.x
//! also hot-plugging a vector network device (`config vecN:...`, `remove
//! vecN`) on a tap made by our `tunctl` in a network namespace.

// Test code: a failed setup step should abort the test with its message.
#![allow(clippy::expect_used, clippy::unwrap_used)]

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use uml_integration_tests::{
    linux_uml7, require, run_with_timeout, workspace_bin, Kernel, NetNs, Requirement, RunOutput,
    Uml, UmlConfig,
};

const LIMIT: Duration = Duration::from_secs(20);

fn mc(sock: &Path, args: &[&str]) -> RunOutput {
    let out = run_with_timeout(
        Command::new(workspace_bin("uml_mconsole"))
            .arg(sock)
            .args(args),
        LIMIT,
    );
    assert!(!out.timed_out, "uml_mconsole {args:?} hung:\n{out}");
    out
}

fn mc_ok(sock: &Path, cmd: &str) -> String {
    let out = mc(sock, &[cmd]);
    assert_eq!(out.code, Some(0), "{cmd}: {out}");
    out.stdout_str()
}

fn boot(umid: &str, kernel: Kernel) -> Uml {
    let mut uml = Uml::boot(UmlConfig::with_kernel(umid, kernel)).expect("boot");
    assert!(
        uml.wait_ready(Duration::from_secs(30)),
        "guest not ready:\n{}",
        uml.console()
    );
    uml
}

/// How the `version` reply starts: `OK Linux (none) <release>`.
fn version_prefix(kernel: Kernel) -> String {
    match kernel {
        Kernel::Linux61 => "OK Linux (none) 6.".to_string(),
        Kernel::Linux7 => format!(
            "OK Linux (none) {} ",
            linux_uml7().expect("7.x kernel").version
        ),
    }
}

#[test]
fn commands_against_a_real_kernel() {
    commands(Kernel::Linux61, "cmds");
}

#[test]
fn commands_against_a_real_kernel_on_7() {
    commands(Kernel::Linux7, "cmds7");
}

fn commands(kernel: Kernel, umid: &str) {
    require!(kernel.requirement());
    let mut uml = boot(umid, kernel);
    let sock = uml.socket_path();

    let v = mc_ok(&sock, "version");
    assert!(v.starts_with(&version_prefix(kernel)), "{v}");
    assert!(v.ends_with('\n'));

    let help = mc_ok(&sock, "help");
    assert!(
        help.starts_with("OK Commands: \n    version - Get kernel version \n"),
        "{help}"
    );
    assert!(help.contains("stack <pid> - returns the stack of the specified pid\n"));
    assert!(
        help.ends_with("    int  - Interrupt UML session\n"),
        "{help}"
    );

    assert_eq!(mc_ok(&sock, "config ubd0"), "OK root_fs\n");
    assert_eq!(mc_ok(&sock, "config con0"), "OK fd:0,fd:1\n");
    let out = mc(&sock, &["config", "foo"]);
    assert_eq!(
        (out.code, out.stdout_str().as_str()),
        (Some(1), "ERR Bad configuration option\n")
    );

    let up = mc_ok(&sock, "proc uptime");
    let fields: Vec<&str> = up.split_whitespace().collect();
    assert!(up.starts_with("OK \n") && fields.len() == 3, "{up:?}");
    let meminfo = mc_ok(&sock, "proc meminfo");
    assert!(
        meminfo.contains("MemTotal:") && meminfo.contains("Committed_AS:"),
        "{meminfo}"
    );

    // Hot-plug a file given relative to the client's cwd, see it in the
    // guest, remove it, remove it again.
    let dir = uml.work_dir().join("disks");
    std::fs::create_dir_all(&dir).expect("mkdir");
    std::fs::write(dir.join("disk.img"), vec![0u8; 8 << 20]).expect("disk");
    let run_in = |args: &[&str]| {
        run_with_timeout(
            Command::new(workspace_bin("uml_mconsole"))
                .current_dir(&dir)
                .arg(&sock)
                .args(args),
            LIMIT,
        )
    };
    let out = run_in(&["config", "ubd1=disk.img"]);
    assert_eq!(
        (out.code, out.stdout_str().as_str()),
        (Some(0), "OK \n"),
        "{out}"
    );
    let abs = dir.canonicalize().expect("canonical").join("disk.img");
    assert_eq!(
        mc_ok(&sock, "config ubd1"),
        format!("OK {}\n", abs.display())
    );
    let parts = mc_ok(&sock, "proc partitions");
    assert!(parts.contains("98       16       8192 ubdb"), "{parts}");
    let out = run_in(&["config", "ubd1=disk.img"]);
    assert_eq!(out.code, Some(240), "{out}");
    assert_eq!(mc_ok(&sock, "remove ubd1"), "OK \n");
    let out = mc(&sock, &["remove", "ubd1"]);
    assert_eq!(
        (out.code, out.stdout_str().as_str()),
        (Some(237), "ERR Device doesn't exist\n")
    );
    assert!(!mc_ok(&sock, "proc partitions").contains("ubdb"));

    // log: the text reaches the kernel log, i.e. the console.
    let marker = format!("mconsole-log-{}", std::process::id());
    let out = mc(&sock, &["log", &marker]);
    assert_eq!(
        (out.code, out.stdout_str().as_str()),
        (Some(0), "OK \nOK \n"),
        "{out}"
    );
    assert!(
        uml.wait_console(&marker, Duration::from_secs(5)),
        "log text not in the console"
    );

    // stop / go: mconsole keeps answering while the UML is stopped.
    assert_eq!(mc_ok(&sock, "stop"), "OK stopped\n");
    assert!(mc_ok(&sock, "version").starts_with("OK Linux"));
    let out = mc(&sock, &["stop"]);
    assert_eq!(
        (out.code, out.stdout_str().as_str()),
        (Some(1), "ERR Already stopped\n")
    );
    assert_eq!(mc_ok(&sock, "go"), "OK \n");
    let out = mc(&sock, &["go"]);
    assert_eq!(
        (out.code, out.stdout_str().as_str()),
        (Some(1), "ERR Not stopped\n")
    );

    // halt: OK, then the UML exits and removes its umid directory.
    assert_eq!(mc_ok(&sock, "halt"), "OK \n");
    assert!(
        uml.wait_exit(Duration::from_secs(20)),
        "UML still running after halt"
    );
    assert!(!sock.exists(), "mconsole socket left after halt");
}

#[test]
fn long_sysrq_reply_is_complete_with_a_long_queue() {
    long_sysrq_reply(Kernel::Linux61, "sysrq");
}

#[test]
fn long_sysrq_reply_is_complete_with_a_long_queue_on_7() {
    long_sysrq_reply(Kernel::Linux7, "sysrq7");
}

fn long_sysrq_reply(kernel: Kernel, tag: &str) {
    require!(kernel.requirement(), Requirement::NetNs);
    let ns = NetNs::new(tag);
    ns.sysctl("net.unix.max_dgram_qlen", "1000")
        .expect("sysctl");
    let mut cfg = UmlConfig::with_kernel(tag, kernel);
    cfg.netns = Some(ns.name().to_string());
    let mut uml = Uml::boot(cfg).expect("boot");
    assert!(uml.wait_ready(Duration::from_secs(30)), "{}", uml.console());
    let sock = uml.socket_path();
    let run = |cmd: &str| {
        let out = run_with_timeout(
            ns.exec(workspace_bin("uml_mconsole").as_os_str())
                .arg(&sock)
                .arg(cmd),
            LIMIT,
        );
        assert!(!out.timed_out, "{cmd} hung: {out}");
        out
    };
    // Raise the console loglevel so sysrq output is captured in full.
    let out = run("sysrq 9");
    assert_eq!(out.code, Some(0), "{out}");
    let out = run("sysrq m");
    assert_eq!(out.code, Some(0), "{out}");
    let text = out.stdout_str();
    assert!(text.starts_with("OK "), "{text}");
    assert!(text.contains("Mem-Info"), "{text}");
    assert!(text.lines().count() > 15, "short reply: {text}");
    assert!(!out.stderr_str().contains("incomplete"), "{out}");
    let out = run("stack 1");
    assert_eq!(out.code, Some(0), "{out}");
    assert!(out.stdout_str().contains("Call Trace"), "{out}");
}

#[test]
fn lost_reply_packets_end_in_status_2_not_a_hang() {
    lost_reply_packets(Kernel::Linux61, "qlen");
}

#[test]
fn lost_reply_packets_end_in_status_2_not_a_hang_on_7() {
    lost_reply_packets(Kernel::Linux7, "qlen7");
}

fn lost_reply_packets(kernel: Kernel, tag: &str) {
    // A short queue makes sysrq m lose packets (`docs/mconsole.md` §3.2). The C
    // client hangs forever then; ours must finish within its timeout and say
    // what happened. Whether a given run loses packets depends on scheduling,
    // so both outcomes are checked for consistency; the deterministic case (a
    // reply that never comes) is
    // `panic_gives_no_reply_and_a_panic_notification`.
    require!(kernel.requirement(), Requirement::NetNs);
    let ns = NetNs::new(tag);
    ns.sysctl("net.unix.max_dgram_qlen", "1").expect("sysctl");
    let mut cfg = UmlConfig::with_kernel(tag, kernel);
    cfg.netns = Some(ns.name().to_string());
    let mut uml = Uml::boot(cfg).expect("boot");
    assert!(uml.wait_ready(Duration::from_secs(30)), "{}", uml.console());
    let sock = uml.socket_path();
    let mut incomplete = 0;
    for _ in 0..3 {
        let mut cmd = ns.exec(workspace_bin("uml_mconsole").as_os_str());
        cmd.args(["--timeout", "1"]).arg(&sock).args(["sysrq", "m"]);
        let start = Instant::now();
        let out = run_with_timeout(&mut cmd, LIMIT);
        assert!(!out.timed_out, "client hung: {out}");
        assert!(start.elapsed() < Duration::from_secs(10));
        assert!(out.stdout_str().starts_with("OK "), "{out}");
        match out.code {
            Some(0) => assert!(!out.stderr_str().contains("incomplete"), "{out}"),
            Some(2) => {
                incomplete += 1;
                assert!(
                    out.stderr_str().contains("incomplete reply from")
                        && out.stderr_str().contains("net.unix.max_dgram_qlen"),
                    "{out}"
                );
            }
            _ => panic!("unexpected status: {out}"),
        }
    }
    eprintln!("sysrq m with qlen 1: {incomplete}/3 replies incomplete");
    // The UML still answers afterwards (stale packets were drained).
    let out = run_with_timeout(
        ns.exec(workspace_bin("uml_mconsole").as_os_str())
            .arg(&sock)
            .arg("version"),
        LIMIT,
    );
    assert_eq!(out.code, Some(0), "{out}");
    assert!(out.stdout_str().starts_with("OK Linux"));
}

/// Lines printed by a running `uml_mconsole --notify`.
struct NotifyClient {
    child: std::process::Child,
    lines: mpsc::Receiver<String>,
}

impl NotifyClient {
    fn start(path: &Path) -> NotifyClient {
        let mut child = Command::new(workspace_bin("uml_mconsole"))
            .arg("--notify")
            .arg(path)
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("spawn --notify");
        let stdout = child.stdout.take().expect("stdout");
        let (tx, lines) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        let deadline = Instant::now() + Duration::from_secs(10);
        while !path.exists() {
            assert!(Instant::now() < deadline, "--notify did not bind");
            std::thread::sleep(Duration::from_millis(10));
        }
        NotifyClient { child, lines }
    }

    fn expect_line(&self, want: &str, timeout: Duration) {
        let deadline = Instant::now() + timeout;
        let mut seen = Vec::new();
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.lines.recv_timeout(left) {
                Ok(line) if line == want => return,
                Ok(line) => seen.push(line),
                Err(_) => panic!("no notification line {want:?}; got {seen:?}"),
            }
        }
    }
}

impl Drop for NotifyClient {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[test]
fn notifications_from_the_kernel() {
    notifications(Kernel::Linux61, "notify");
}

#[test]
fn notifications_from_the_kernel_on_7() {
    notifications(Kernel::Linux7, "notify7");
}

fn notifications(kernel: Kernel, umid: &str) {
    require!(kernel.requirement());
    let dir = tempfile::tempdir().expect("tempdir");
    let notify_path = dir.path().join("notify.sock");
    let notify = NotifyClient::start(&notify_path);
    let mut cfg = UmlConfig::with_kernel(umid, kernel);
    cfg.extra_args
        .push(format!("mconsole=notify:{}", notify_path.display()));
    cfg.init_script = "sleep 0.5; echo -n hello-user-notify > /proc/mconsole; echo sent-user-notify; while :; do sleep 3600; done".into();
    let mut uml = Uml::boot(cfg).expect("boot");
    notify.expect_line(
        &format!("SOCKET {}", uml.socket_path().display()),
        Duration::from_secs(20),
    );
    assert!(
        uml.wait_console("sent-user-notify", Duration::from_secs(30)),
        "{}",
        uml.console()
    );
    notify.expect_line("USER_NOTIFY hello-user-notify", Duration::from_secs(10));
}

#[test]
fn int_by_umid_interrupts_the_uml() {
    int_by_umid(Kernel::Linux61, "intr");
}

#[test]
fn int_by_umid_interrupts_the_uml_on_7() {
    int_by_umid(Kernel::Linux7, "intr7");
}

fn int_by_umid(kernel: Kernel, umid: &str) {
    require!(kernel.requirement());
    let mut uml = boot(umid, kernel);
    // $HOME/.uml -> the UML's uml_dir: the umid resolves and its pid file
    // is found, so `int` knows whom to signal.
    let home = tempfile::tempdir().expect("tempdir");
    std::os::unix::fs::symlink(uml.uml_dir(), home.path().join(".uml")).expect("symlink");
    let out = run_with_timeout(
        Command::new(workspace_bin("uml_mconsole"))
            .env("HOME", home.path())
            .args([umid, "int"]),
        LIMIT,
    );
    assert_eq!(out.code, Some(0), "{out}");
    assert!(out.stdout.is_empty() && out.stderr.is_empty(), "{out}");
    assert!(
        uml.wait_exit(Duration::from_secs(20)),
        "UML survived SIGINT"
    );
}

#[test]
fn panic_gives_no_reply_and_a_panic_notification() {
    panic_notification(Kernel::Linux61, "panic");
}

#[test]
fn panic_gives_no_reply_and_a_panic_notification_on_7() {
    panic_notification(Kernel::Linux7, "panic7");
}

fn panic_notification(kernel: Kernel, umid: &str) {
    // `sysrq c` panics the guest by design: the client never gets the end
    // of the reply (Debian's blocks forever) and the notify socket gets PANIC.
    require!(kernel.requirement());
    let dir = tempfile::tempdir().expect("tempdir");
    let notify_path = dir.path().join("notify.sock");
    let notify = NotifyClient::start(&notify_path);
    let mut cfg = UmlConfig::with_kernel(umid, kernel);
    cfg.extra_args
        .push(format!("mconsole=notify:{}", notify_path.display()));
    let mut uml = Uml::boot(cfg).expect("boot");
    assert!(uml.wait_ready(Duration::from_secs(30)), "{}", uml.console());
    let sock = uml.socket_path();
    let start = Instant::now();
    let out = run_with_timeout(
        Command::new(workspace_bin("uml_mconsole"))
            .args(["--timeout", "2"])
            .arg(&sock)
            .args(["sysrq", "c"]),
        LIMIT,
    );
    assert!(!out.timed_out, "client hung: {out}");
    assert!(start.elapsed() < Duration::from_secs(10), "{out}");
    assert_eq!(out.code, Some(2), "{out}");
    // The console output captured before the panic arrives; the final
    // packet never does.
    assert!(
        out.stdout_str().starts_with("OK sysrq: Trigger a crash\n"),
        "{out}"
    );
    assert!(
        out.stderr_str().contains(&format!(
            "uml_mconsole: incomplete reply from '{}'",
            sock.display()
        )),
        "{out}"
    );
    notify.expect_line("PANIC sysrq triggered crash", Duration::from_secs(10));
}

/// `config vecN:transport=tap,ifname=...` adds a vector device to a running
/// guest, on a tap our `tunctl` made in the test's namespace: the guest
/// sees it, pings the namespace and is pinged back; `remove vecN` takes it
/// away again once the guest has brought it down (refused while it is up).
fn vector_hot_plug(kernel: Kernel, tag: &str) {
    require!(
        Requirement::Root,
        kernel.requirement(),
        Requirement::NetNs,
        Requirement::DevNetTun
    );
    let ns = NetNs::new(tag);
    let tap = format!("{tag}tap");
    let out = run_with_timeout(
        ns.exec(workspace_bin("tunctl").as_os_str())
            .args(["-t", &tap]),
        LIMIT,
    );
    assert!(out.success(), "tunctl: {out}");
    assert_eq!(
        out.stdout_str(),
        format!("Set '{tap}' persistent and owned by uid 0\n")
    );
    for args in [
        &["addr", "add", "10.0.8.254/24", "dev", &tap][..],
        &["link", "set", &tap, "up"],
    ] {
        let out = ns.ip(args);
        assert!(out.success(), "ip {args:?}: {out}");
    }
    let mut cfg = UmlConfig::with_kernel(tag, kernel);
    cfg.netns = Some(ns.name().to_string());
    cfg.init_script = r#"
i=0
while [ ! -e /sys/class/net/vec1 ]; do
    i=$((i+1)); [ $i -gt 600 ] && { echo "HOTPLUG: no vec1"; exit 1; }
    sleep 0.1
done
echo "HOTPLUG: vec1 present"
ip addr add 10.0.8.1/24 dev vec1 && ip link set vec1 up || exit 2
ping -c 3 -i 0.3 -w 20 10.0.8.254
echo "HOTPLUG: ping rc=$?"
while [ ! -e "$WORK/down" ]; do sleep 0.1; done
ip link set vec1 down
echo "HOTPLUG: vec1 down rc=$?"
while [ ! -e "$WORK/removed" ]; do sleep 0.1; done
if [ -e /sys/class/net/vec1 ]; then echo "HOTPLUG: vec1 still there"; else echo "HOTPLUG: vec1 gone"; fi
while :; do sleep 3600; done
"#
    .into();
    let mut uml = Uml::boot(cfg).expect("boot");
    assert!(uml.wait_ready(Duration::from_secs(30)), "{}", uml.console());
    let sock = uml.socket_path();
    let mc_ns = |args: &[&str]| {
        let out = run_with_timeout(
            ns.exec(workspace_bin("uml_mconsole").as_os_str())
                .arg(&sock)
                .args(args),
            LIMIT,
        );
        assert!(!out.timed_out, "uml_mconsole {args:?} hung: {out}");
        out
    };
    let spec = format!("vec1:transport=tap,ifname={tap},mac=fe:fd:0a:00:08:01");
    let out = mc_ns(&["config", &spec]);
    assert_eq!(
        (out.code, out.stdout_str().as_str()),
        (Some(0), "OK \n"),
        "{out}"
    );
    // The vector driver has no get_config (`docs/kernel7.md` §1.1).
    let out = mc_ns(&["config", "vec1"]);
    assert_eq!(
        (out.code, out.stdout_str().as_str()),
        (Some(1), "ERR No get_config routine defined\n"),
        "{out}"
    );
    assert!(
        uml.wait_console("HOTPLUG: ping rc=", Duration::from_secs(60)),
        "{}",
        uml.console()
    );
    assert!(
        uml.console().contains("HOTPLUG: ping rc=0"),
        "{}",
        uml.console()
    );
    let back = run_with_timeout(
        ns.exec("ping")
            .args(["-c", "2", "-i", "0.3", "-w", "10", "10.0.8.1"]),
        LIMIT,
    );
    assert!(back.success(), "ping from the namespace: {back}");

    // Up: refused (EBUSY, status 240 = -16 & 0xff).
    let out = mc_ns(&["remove", "vec1"]);
    assert_eq!(
        (out.code, out.stdout_str().as_str()),
        (Some(240), "ERR Device is currently open\n"),
        "{out}"
    );

    // Down: removed, and gone from the guest.
    std::fs::write(uml.work_dir().join("down"), b"").unwrap();
    assert!(
        uml.wait_console("HOTPLUG: vec1 down rc=0", Duration::from_secs(30)),
        "{}",
        uml.console()
    );
    let out = mc_ns(&["remove", "vec1"]);
    assert_eq!(
        (out.code, out.stdout_str().as_str()),
        (Some(0), "OK \n"),
        "{out}"
    );
    std::fs::write(uml.work_dir().join("removed"), b"").unwrap();
    assert!(
        uml.wait_console("HOTPLUG: vec1 gone", Duration::from_secs(30)),
        "{}",
        uml.console()
    );
    let out = mc_ns(&["remove", "vec1"]);
    assert_eq!(
        (out.code, out.stdout_str().as_str()),
        (Some(237), "ERR Device doesn't exist\n"),
        "{out}"
    );
    // The tap is the namespace's, untouched by the removal.
    let link = ns.ip(&["link", "show", &tap]);
    assert!(link.success(), "{link}");
    uml.halt().expect("halt");
    assert!(uml.wait_exit(Duration::from_secs(20)), "{}", uml.console());
}

#[test]
fn vector_device_hot_plug_and_remove_on_7() {
    vector_hot_plug(Kernel::Linux7, "vhp7");
}

#[test]
fn vector_device_hot_plug_and_remove() {
    vector_hot_plug(Kernel::Linux61, "vhp");
}
