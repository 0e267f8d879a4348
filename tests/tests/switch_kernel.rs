//! uml_switch with the real UML kernel (linux.uml 6.1, `daemon` transport):
//! two UMLs ping each other through the switch (switch and hub mode), and a
//! UML and its host namespace ping each other through a tap port
//! (`docs/testing.md` §7.1, `docs/switch.md` §8).
//!
//! The switch under test is this workspace's `uml_switch`, or the program
//! named by `UML_SWITCH_UNDER_TEST` (e.g. `/usr/bin/uml_switch`, Debian's C
//! switch, which is run under `stdbuf -oL -eL` because it block-buffers its
//! output when it is not a terminal). Everything runs inside a network
//! namespace of its own: the switch's data socket and the kernels' data
//! sockets are abstract Unix addresses, which exist per namespace.

// Test code: a failed setup step should abort the test with its message.
#![allow(clippy::expect_used, clippy::unwrap_used)]

use std::fs;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Stdio};
use std::thread;
use std::time::{Duration, Instant};

use nix::sys::signal::{kill, killpg, Signal};
use nix::unistd::Pid;
use uml_integration_tests::{
    binary_under_test, require, run_with_timeout, NetNs, Requirement, Uml, UmlConfig,
};

/// Environment variable naming the switch binary to test instead of ours.
const SWITCH_ENV: &str = "UML_SWITCH_UNDER_TEST";
/// Debian's C switch.
const C_SWITCH: &str = "/usr/bin/uml_switch";
/// Hard lifetime of the switch process (`timeout -k 5 ...`), a last resort
/// should the test process die without running its destructors.
const SWITCH_LIFETIME_SECS: u32 = 120;
/// Hard lifetime of each UML.
const UML_LIFETIME: Duration = Duration::from_secs(90);
/// How long the switch may take to print its start-up line.
const SWITCH_START: Duration = Duration::from_secs(10);
/// Bound for a guest's init script to reach a marker.
const GUEST_STEP: Duration = Duration::from_secs(30);
/// Bound for a UML to exit after it powered off or was halted.
const UML_EXIT: Duration = Duration::from_secs(20);
/// Bound for the switch to report events that already happened.
const SWITCH_REPORT: Duration = Duration::from_secs(10);

/// Guest addresses: MAC `fe:fd:0a:00:00:0N`, IP `10.0.0.N/24`.
fn mac(n: u8) -> String {
    format!("fe:fd:0a:00:00:{n:02x}")
}

/// The switch binary under test and whether it is the C reference.
fn switch_under_test() -> (PathBuf, bool) {
    binary_under_test("uml_switch", SWITCH_ENV, C_SWITCH)
}

/// A switch process running in a namespace, its stdout and stderr in a
/// file. Dropping it kills it (by pid: `SIGTERM`, then `SIGKILL` to its
/// process group, which holds only the `timeout` wrapper and the switch).
struct Switch {
    child: Child,
    program: PathBuf,
    out: PathBuf,
}

impl Switch {
    /// Starts `[stdbuf -oL -eL] SWITCH ARGS` in `ns` under
    /// `timeout -k 5 SWITCH_LIFETIME_SECS`, stdin `/dev/null`, output in
    /// `dir/switch.out`, and waits until it printed its `attached to unix
    /// socket` line.
    fn start(ns: &NetNs, dir: &Path, args: &[&str]) -> Switch {
        let (program, is_c) = switch_under_test();
        let out = dir.join("switch.out");
        let file = fs::File::create(&out).expect("create switch.out");
        let file2 = file.try_clone().expect("dup switch.out");
        let mut cmd = ns.exec("timeout");
        cmd.args(["-k", "5", &SWITCH_LIFETIME_SECS.to_string()]);
        if is_c {
            cmd.args(["stdbuf", "-oL", "-eL"]);
        }
        cmd.arg(&program)
            .args(args)
            .current_dir(dir)
            .stdin(Stdio::null())
            .stdout(file)
            .stderr(file2)
            .process_group(0);
        let child = cmd.spawn().expect("start the switch");
        let mut sw = Switch {
            child,
            program,
            out,
        };
        let started = sw.wait_output(SWITCH_START, |o| o.contains("attached to unix socket"));
        assert!(
            started,
            "switch did not start:\n{}",
            sw.output_with_status()
        );
        sw
    }

    /// `PROG` as the switch sees it (its `argv[0]`).
    fn prog(&self) -> String {
        self.program.to_string_lossy().into_owned()
    }

    /// Everything the switch printed so far.
    fn output(&self) -> String {
        String::from_utf8_lossy(&fs::read(&self.out).unwrap_or_default()).into_owned()
    }

    /// The output plus whether the process still runs, for messages.
    fn output_with_status(&mut self) -> String {
        let status = match self.child.try_wait() {
            Ok(Some(s)) => format!("exited: {s}"),
            _ => "running".to_string(),
        };
        format!(
            "--- switch ({status}) output ---\n{}--- end ---",
            self.output()
        )
    }

    /// Polls the output until `done` holds, the switch exited or `timeout`
    /// passed.
    fn wait_output(&mut self, timeout: Duration, done: impl Fn(&str) -> bool) -> bool {
        let deadline = Instant::now() + timeout;
        loop {
            let running = matches!(self.child.try_wait(), Ok(None));
            if done(&self.output()) {
                return true;
            }
            if !running || Instant::now() >= deadline {
                return false;
            }
            thread::sleep(Duration::from_millis(50));
        }
    }

    /// Whether the switch is still running.
    fn running(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(None))
    }
}

impl Drop for Switch {
    fn drop(&mut self) {
        let Ok(raw) = i32::try_from(self.child.id()) else {
            return;
        };
        let pid = Pid::from_raw(raw);
        if self.running() {
            // `timeout` passes SIGTERM on to the switch and then exits.
            let _ = kill(pid, Signal::SIGTERM);
            let deadline = Instant::now() + Duration::from_secs(3);
            while self.running() && Instant::now() < deadline {
                thread::sleep(Duration::from_millis(20));
            }
        }
        // The group is the one `process_group(0)` created for the wrapper
        // (pgid = its pid); `timeout` keeps the switch in it.
        let _ = killpg(pid, Signal::SIGKILL);
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Lines of `out` equal to `line`.
fn count_lines(out: &str, line: &str) -> usize {
    out.lines().filter(|l| *l == line).count()
}

/// Lines of `out` starting with `prefix`.
fn count_prefixed(out: &str, prefix: &str) -> usize {
    out.lines().filter(|l| l.starts_with(prefix)).count()
}

/// ` Addr: <mac> New port ` — the learning message (`docs/switch.md` §6.1).
fn learned(mac: &str) -> String {
    format!(" Addr: {mac} New port ")
}

/// A UML in `ns` whose `eth0` is a `daemon` port of the switch at `ctl`,
/// with MAC `fe:fd:0a:00:00:0N` and address `10.0.0.N/24`, running `then`
/// after bringing `eth0` up.
fn boot_on_switch(ns: &NetNs, ctl: &Path, n: u8, then: &str) -> Uml {
    let mut cfg = UmlConfig::new(&format!("sw{n}"));
    cfg.netns = Some(ns.name().to_string());
    cfg.lifetime = UML_LIFETIME;
    cfg.extra_args
        .push(format!("eth0=daemon,{},unix,{}", mac(n), ctl.display()));
    // The harness preamble keeps guest programs off glibc's AVX-512
    // string functions (see GUEST_GLIBC_TUNABLES).
    cfg.init_script = format!(
        "ip addr add 10.0.0.{n}/24 dev eth0 && ip link set eth0 up\n\
         echo \"TEST: eth0 up rc=$?\"\n\
         {then}\n"
    );
    Uml::boot(cfg).expect("boot UML")
}

/// Waits (bounded) for the console line `TEST: <step> rc=` of `uml` and
/// asserts that it reads `rc=0` (the console ends lines with `\r\n`).
/// `peer` is another UML whose console goes into the failure message.
fn expect_step_ok(uml: &mut Uml, step: &str, sw: &mut Switch, peer: Option<&Uml>) {
    let marker = format!("TEST: {step} rc=");
    let seen = uml.wait_console(&marker, GUEST_STEP);
    let console = uml.console();
    let ok = format!("{marker}0");
    let peer = peer.map_or(String::new(), |p| {
        format!("--- console of {} ---\n{}\n", p.umid(), p.console())
    });
    assert!(
        seen && console.lines().any(|l| l.trim_end() == ok),
        "{}: {}\n--- console ---\n{console}\n{peer}{}",
        uml.umid(),
        if seen {
            format!("{step} failed")
        } else {
            format!("{marker} never printed")
        },
        sw.output_with_status()
    );
}

/// Idle until the host halts the guest.
const IDLE: &str = "while :; do sleep 3600; done";
/// Guest-side ping of 10.0.0.1 with its result on the console.
const PING_A: &str = "ping -c 3 -i 0.3 -w 20 10.0.0.1\necho \"TEST: ping rc=$?\"";

/// Recipe 7.1: UML b pings UML a through the switch; checks the switch's
/// messages (`docs/switch.md` §8) before and after both UMLs are gone.
fn two_umls_ping(tag: &str, hub: bool) {
    require!(Requirement::Root, Requirement::LinuxUml, Requirement::NetNs);
    require!(Requirement::Program("ping", "iputils-ping"));
    let dir = tempfile::Builder::new()
        .prefix("umlsw-")
        .tempdir()
        .expect("tempdir");
    let ns = NetNs::new(tag);
    let ctl = dir.path().join("sw.ctl");
    let ctl_s = ctl.to_string_lossy().into_owned();
    let mut args = vec!["-unix", ctl_s.as_str()];
    if hub {
        args.push("-hub");
    }
    let mut sw = Switch::start(&ns, dir.path(), &args);

    let mut a = boot_on_switch(&ns, &ctl, 1, IDLE);
    expect_step_ok(&mut a, "eth0 up", &mut sw, None);
    let mut b = boot_on_switch(&ns, &ctl, 2, PING_A);
    expect_step_ok(&mut b, "eth0 up", &mut sw, None);
    expect_step_ok(&mut b, "ping", &mut sw, Some(&a));

    // b powers off by itself after its script; a is halted.
    assert!(
        b.wait_exit(UML_EXIT),
        "b did not power off:\n{}",
        b.console()
    );
    a.halt().expect("halt a");
    assert!(a.wait_exit(UML_EXIT), "a did not halt:\n{}", a.console());
    let both_gone = sw.wait_output(SWITCH_REPORT, |o| count_lines(o, "Disconnect") >= 2);
    let out = sw.output();
    assert!(
        both_gone,
        "switch did not report two disconnects:\n{}",
        sw.output_with_status()
    );
    assert!(sw.running(), "switch ended:\n{}", sw.output_with_status());

    let prog = sw.prog();
    let mut lines = out.lines();
    if hub {
        assert_eq!(
            lines.next(),
            Some(format!("{prog} will be a hub instead of a switch").as_str()),
            "{out}"
        );
    }
    assert_eq!(
        lines.next(),
        Some(format!("{prog} attached to unix socket '{ctl_s}'").as_str()),
        "{out}"
    );
    assert_eq!(count_lines(&out, "New connection"), 2, "{out}");
    for n in [1, 2] {
        assert_eq!(count_prefixed(&out, &learned(&mac(n))), 1, "{out}");
    }
    assert_eq!(count_lines(&out, "Disconnect"), 2, "{out}");
    eprintln!("--- switch output ({tag}) ---\n{out}");
}

#[test]
fn switch_mode_two_umls_ping() {
    two_umls_ping("swping", false);
}

#[test]
fn hub_mode_two_umls_ping() {
    two_umls_ping("hubping", true);
}

/// The MAC of `dev` in `ns` (`link/ether xx:...`).
fn link_mac(ns: &NetNs, dev: &str) -> String {
    let out = ns.ip(&["-o", "link", "show", "dev", dev]);
    assert!(out.success(), "ip link show {dev}: {out}");
    let text = out.stdout_str();
    let mut words = text.split_whitespace();
    words
        .find(|w| *w == "link/ether")
        .and_then(|_| words.next())
        .unwrap_or_else(|| panic!("no MAC in {text:?}"))
        .to_string()
}

/// `-tap tapsw`: a tap configured in the namespace is a switch port; the
/// guest pings the tap's address and the namespace pings the guest.
#[test]
fn tap_port_pings_both_ways() {
    require!(
        Requirement::Root,
        Requirement::LinuxUml,
        Requirement::NetNs,
        Requirement::DevNetTun
    );
    require!(Requirement::Program("ping", "iputils-ping"));
    let dir = tempfile::Builder::new()
        .prefix("umlsw-")
        .tempdir()
        .expect("tempdir");
    let ns = NetNs::new("swtap");
    for step in [
        &["tuntap", "add", "dev", "tapsw", "mode", "tap"][..],
        &["addr", "add", "10.0.0.254/24", "dev", "tapsw"],
        &["link", "set", "tapsw", "up"],
    ] {
        let out = ns.ip(step);
        assert!(out.success(), "ip {step:?}: {out}");
    }
    let tap_mac = link_mac(&ns, "tapsw");
    let ctl = dir.path().join("sw.ctl");
    let ctl_s = ctl.to_string_lossy().into_owned();
    let mut sw = Switch::start(&ns, dir.path(), &["-unix", &ctl_s, "-tap", "tapsw"]);
    // The tap port is registered at start-up.
    let tap_port = sw.wait_output(SWITCH_REPORT, |o| count_lines(o, "New connection") >= 1);
    assert!(tap_port, "no tap port:\n{}", sw.output_with_status());

    let guest_ping = "ping -c 3 -i 0.3 -w 20 10.0.0.254\necho \"TEST: ping rc=$?\"\n".to_string();
    let mut a = boot_on_switch(&ns, &ctl, 1, &(guest_ping + IDLE));
    expect_step_ok(&mut a, "eth0 up", &mut sw, None);
    expect_step_ok(&mut a, "ping", &mut sw, None);

    let host_ping = run_with_timeout(
        ns.exec("ping")
            .args(["-c", "3", "-i", "0.3", "-w", "20", "10.0.0.1"]),
        Duration::from_secs(30),
    );
    assert!(
        host_ping.success(),
        "ping from the namespace to the guest failed: {host_ping}\n{}",
        sw.output_with_status()
    );

    a.halt().expect("halt");
    assert!(a.wait_exit(UML_EXIT), "UML did not halt:\n{}", a.console());
    let gone = sw.wait_output(SWITCH_REPORT, |o| count_lines(o, "Disconnect") >= 1);
    assert!(gone, "no disconnect:\n{}", sw.output_with_status());
    assert!(sw.running(), "switch ended:\n{}", sw.output_with_status());

    let out = sw.output();
    assert_eq!(
        out.lines().next(),
        Some(
            format!(
                "{} attached to unix socket '{ctl_s}' tap device 'tapsw'",
                sw.prog()
            )
            .as_str()
        ),
        "{out}"
    );
    assert_eq!(count_lines(&out, "New connection"), 2, "{out}");
    assert_eq!(count_prefixed(&out, &learned(&mac(1))), 1, "{out}");
    assert_eq!(count_prefixed(&out, &learned(&tap_mac)), 1, "{out}");
    assert_eq!(count_lines(&out, "Disconnect"), 1, "{out}");
    eprintln!("--- switch output (tap) ---\n{out}");
}
