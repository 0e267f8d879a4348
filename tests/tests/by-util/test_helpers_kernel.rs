//! `uml_watchdog` and `port-helper` run by the real kernel (linux.uml 6.1,
//! and the 7.x test kernel where a test says so).
//!
//! * The harddog driver runs the fixed path `/usr/bin/uml_watchdog`: the
//!   UML is started in a private mount namespace in which the test build
//!   is bind-mounted over that file (`docs/testing.md` §8.3). The timer is
//!   60 s, so each watchdog test takes about 65 s (they run in parallel);
//!   both modes are tested with 6.1 and 7.x.
//! * The `port:` console channel runs `in.telnetd -L <helper>` through `PATH`,
//!   `<helper>` being `UML_PORT_HELPER` (the test build) or, with no variable,
//!   the compiled-in path: `/usr/lib//uml/port-helper` (6.1) or
//!   `/usr/lib64//uml/port-helper` (7.x). For the latter the kernel runs in a
//!   private mount namespace with the package's layout: the test build
//!   bind-mounted over `/usr/lib/uml/port-helper` and `/usr/lib64` overlaid
//!   with the link that `packaging/Cargo.toml` ships as
//!   `usr/lib64/uml/port-helper`. A small `in.telnetd` wrapper turns `-L
//!   <helper>` into inetutils' `telnetd -h -E <helper>` (`docs/testing.md`
//!   §8.2). A minimal telnet client in this file (refusing every option) logs
//!   into the guest's `/dev/tty1`. The xterm channel (no variable exists for
//!   it) runs in the same layout with a fake terminal emulator. Everything runs
//!   in a private network namespace.
#![allow(clippy::expect_used, clippy::unwrap_used)]

use std::fs;
use std::io::{ErrorKind, Read, Write};
use std::net::{Ipv4Addr, SocketAddrV4, TcpListener, TcpStream};
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use uml_integration_tests::uml_common::mconsole::{decode_notify, NotifyKind};
use uml_integration_tests::{
    find_in_path, pid_alive, require, run_with_timeout, wait_until, workspace_bin, Kernel, NetNs,
    Requirement, Uml, UmlConfig,
};

/// The kernel's fixed watchdog path.
const WATCHDOG_PATH: &str = "/usr/bin/uml_watchdog";
/// The HANG notification in the kernel's layout (helpers.md H4).
const HANG: [u8; 16] = [0xbe, 0xba, 0xfe, 0xca, 2, 0, 0, 0, 2, 0, 0, 0, 0, 0, 0, 0];
/// Printed by the guest right after its last ping.
const LAST_PING: &str = "WDTEST-LAST-PING";

// ---------------------------------------------------------------------------
// Helpers
// ---------------------------------------------------------------------------

/// Processes whose command line is exactly `argv`.
fn pids_with_cmdline(argv: &[&str]) -> Vec<u32> {
    let want: Vec<u8> = argv
        .iter()
        .flat_map(|a| [a.as_bytes(), b"\0"].concat())
        .collect();
    let Ok(dir) = fs::read_dir("/proc") else {
        return Vec::new();
    };
    dir.flatten()
        .filter_map(|e| e.file_name().to_str().and_then(|s| s.parse::<u32>().ok()))
        .filter(|pid| fs::read(format!("/proc/{pid}/cmdline")).is_ok_and(|c| c == want))
        .collect()
}

/// (device, inode) of a file, following links (`/proc/<pid>/exe` too).
fn identity(path: &Path) -> Option<(u64, u64)> {
    fs::metadata(path).ok().map(|m| (m.dev(), m.ino()))
}

/// A UML (`kernel`) booted under `unshare -m` with the test build of
/// `uml_watchdog` bind-mounted over the kernel's fixed path, running
/// `body`.
fn boot_with_watchdog(kernel: Kernel, umid: &str, notify: bool, body: &str) -> Uml {
    let build = workspace_bin("uml_watchdog");
    let cfg = UmlConfig {
        init_script: body.to_string(),
        notify,
        lifetime: Duration::from_secs(240),
        wrapper: vec![
            "unshare".into(),
            "-m".into(),
            "--propagation".into(),
            "private".into(),
            "sh".into(),
            "-c".into(),
            format!("mount --bind \"$0\" {WATCHDOG_PATH} && exec \"$@\""),
            build.to_string_lossy().into_owned(),
        ],
        ..UmlConfig::with_kernel(umid, kernel)
    };
    Uml::boot(cfg).expect("boot")
}

/// The guest side: open the watchdog, ping 4 times a second apart, say
/// so, keep the device open and stay up.
fn pinging_guest() -> String {
    format!(
        "exec 3>/dev/watchdog || {{ echo WDTEST-OPEN-FAILED; exit 1; }}\n\
         for i in 1 2 3; do echo ping >&3; sleep 1; done\n\
         echo ping >&3\n\
         echo {LAST_PING}\n\
         while :; do sleep 3600; done\n"
    )
}

/// Waits for the last ping, then checks the helper the kernel started is
/// our build (through the bind mount) and returns when the ping was seen.
fn wait_last_ping(uml: &mut Uml, helper_argv: &[&str]) -> Instant {
    assert!(
        uml.wait_console(LAST_PING, Duration::from_secs(60)),
        "the guest did not ping the watchdog:\n{}",
        uml.console()
    );
    let seen = Instant::now();
    let helpers = pids_with_cmdline(helper_argv);
    assert_eq!(
        helpers.len(),
        1,
        "expected one {helper_argv:?}, found {helpers:?}:\n{}",
        uml.console()
    );
    assert_eq!(
        identity(Path::new(&format!("/proc/{}/exe", helpers[0]))),
        identity(&workspace_bin("uml_watchdog")),
        "the kernel did not run the test build"
    );
    seen
}

// ---------------------------------------------------------------------------
// uml_watchdog
// ---------------------------------------------------------------------------

#[test]
fn watchdog_pid_mode_stops_a_silent_uml() {
    watchdog_pid_mode(Kernel::Linux61, "wdpid");
}

/// 7.x runs the same `/usr/bin/uml_watchdog -pid N` (`docs/kernel7.md` §2.2).
#[test]
fn watchdog_pid_mode_stops_a_silent_uml_on_7() {
    watchdog_pid_mode(Kernel::Linux7, "wdpid7");
}

fn watchdog_pid_mode(kernel: Kernel, umid: &str) {
    // `unshare` and `mount` come from util-linux and mount (essential).
    require!(
        Requirement::Root,
        kernel.requirement(),
        Requirement::CBinary("uml_watchdog")
    );
    let mut uml = boot_with_watchdog(kernel, umid, false, &pinging_guest());
    let pid = uml.pid().to_string();
    let last = wait_last_ping(&mut uml, &[WATCHDOG_PATH, "-pid", &pid]);

    // Still alive well into the 60 s: watched, not slept through, so that
    // an early end is seen when it happens.
    let ended_early = wait_until(
        Duration::from_secs(50).saturating_sub(last.elapsed()),
        || !uml.is_running(),
    );
    assert!(
        !ended_early && uml.is_running(),
        "UML gone after {:?}:\n{}",
        last.elapsed(),
        uml.console()
    );
    let gone = uml.wait_exit(Duration::from_secs(90).saturating_sub(last.elapsed()));
    let after = last.elapsed();
    assert!(gone, "UML still running {after:?} after the last ping");
    assert!(
        after >= Duration::from_secs(58) && after <= Duration::from_secs(70),
        "UML ended {after:?} after the last ping (expected 60 s + the SIGINTs)"
    );
    eprintln!("watchdog -pid: UML gone {after:?} after the last ping");
}

#[test]
fn watchdog_mconsole_mode_sends_hang_and_uml_keeps_running() {
    watchdog_mconsole_mode(Kernel::Linux61, "wdmc");
}

/// 7.x runs the same `/usr/bin/uml_watchdog -mconsole SOCKET` and, like
/// 6.1, does not react to HANG.
#[test]
fn watchdog_mconsole_mode_sends_hang_and_uml_keeps_running_on_7() {
    watchdog_mconsole_mode(Kernel::Linux7, "wdmc7");
}

fn watchdog_mconsole_mode(kernel: Kernel, umid: &str) {
    // `unshare` and `mount` come from util-linux and mount (essential).
    require!(
        Requirement::Root,
        kernel.requirement(),
        Requirement::CBinary("uml_watchdog")
    );
    let mut uml = boot_with_watchdog(kernel, umid, true, &pinging_guest());
    let notify_path = uml.notify().unwrap().path().to_string_lossy().into_owned();
    let last = wait_last_ping(&mut uml, &[WATCHDOG_PATH, "-mconsole", &notify_path]);

    let mut others = Vec::new();
    let hang = loop {
        let left = Duration::from_secs(90).saturating_sub(last.elapsed());
        assert!(!left.is_zero(), "no HANG within 90 s; got {others:02x?}");
        match uml.notify().unwrap().recv(left) {
            Some(d) if decode_notify(&d).is_ok_and(|n| n.kind == NotifyKind::Hang) => break d,
            Some(d) => others.push(d),
            None => {}
        }
    };
    let after = last.elapsed();
    assert_eq!(hang, HANG, "not the kernel's 16-byte layout");
    assert!(
        after >= Duration::from_secs(58) && after <= Duration::from_secs(66),
        "HANG {after:?} after the last ping"
    );
    // Only the boot-time SOCKET notification besides.
    for d in &others {
        assert_eq!(
            decode_notify(d).map(|n| n.kind),
            Ok(NotifyKind::Socket),
            "{d:02x?}"
        );
    }
    eprintln!("watchdog -mconsole: HANG {after:?} after the last ping");

    // Nothing in the kernel reacts to HANG: the helper exits (it stays a
    // zombie of the kernel), the UML keeps running and answers.
    assert!(
        wait_until(Duration::from_secs(10), || {
            pids_with_cmdline(&[WATCHDOG_PATH, "-mconsole", &notify_path])
                .into_iter()
                .all(|p| !pid_alive(p))
        }),
        "the watchdog is still running"
    );
    let still = wait_until(Duration::from_secs(3), || !uml.is_running());
    assert!(!still && uml.is_running(), "{}", uml.console());
    let v = uml.mconsole("version").expect("mconsole after HANG");
    assert!(!v.is_error());
    assert!(uml
        .notify()
        .unwrap()
        .recv(Duration::from_millis(200))
        .is_none());
}

// ---------------------------------------------------------------------------
// port-helper
// ---------------------------------------------------------------------------

const PORT: u16 = 9000;
const SHELL_STARTED: &str = "PHTEST-TTY1-SHELL";

/// Runs `f` on a thread that has joined network namespace `ns` (sockets it
/// creates live there, also after the thread ends).
fn in_netns<T: Send + 'static>(ns: &str, f: impl FnOnce() -> T + Send + 'static) -> T {
    let path = format!("/run/netns/{ns}");
    std::thread::spawn(move || {
        let file = fs::File::open(&path).expect("open netns");
        nix::sched::setns(file, nix::sched::CloneFlags::CLONE_NEWNET).expect("setns");
        f()
    })
    .join()
    .expect("netns thread")
}

const IAC: u8 = 255;
const DONT: u8 = 254;
const DO: u8 = 253;
const WONT: u8 = 252;
const WILL: u8 = 251;
const SB: u8 = 250;
const SE: u8 = 240;

/// Where the telnet byte parser is.
#[derive(Debug, Clone, Copy)]
enum TState {
    Data,
    Iac,
    Option(u8),
    Sub,
    SubIac,
}

/// A telnet client that refuses every option (RFC 854/855): `DO x` is
/// answered `WONT x`, `WILL x` with `DONT x`; subnegotiations are skipped.
struct Telnet {
    sock: TcpStream,
    state: TState,
    text: Vec<u8>,
}

impl Telnet {
    fn connect(sock: TcpStream) -> Telnet {
        sock.set_read_timeout(Some(Duration::from_millis(200)))
            .unwrap();
        Telnet {
            sock,
            state: TState::Data,
            text: Vec::new(),
        }
    }

    /// Feeds received bytes through the parser; returns the replies.
    fn parse(&mut self, data: &[u8]) -> Vec<u8> {
        let mut replies = Vec::new();
        for &b in data {
            self.state = match (self.state, b) {
                (TState::Data, IAC) => TState::Iac,
                (TState::Data, _) => {
                    self.text.push(b);
                    TState::Data
                }
                (TState::Iac, IAC) => {
                    self.text.push(IAC);
                    TState::Data
                }
                (TState::Iac, DO | DONT | WILL | WONT) => TState::Option(b),
                (TState::Iac, SB) => TState::Sub,
                (TState::Iac, _) => TState::Data,
                (TState::Option(cmd), opt) => {
                    match cmd {
                        DO => replies.extend([IAC, WONT, opt]),
                        WILL => replies.extend([IAC, DONT, opt]),
                        _ => {} // already off: no answer
                    }
                    TState::Data
                }
                (TState::Sub, IAC) => TState::SubIac,
                (TState::Sub, _) => TState::Sub,
                (TState::SubIac, SE) => TState::Data,
                (TState::SubIac, _) => TState::Sub,
            };
        }
        replies
    }

    /// Reads for at most `timeout`; false once the connection is closed.
    fn pump(&mut self, timeout: Duration) -> bool {
        let deadline = Instant::now() + timeout;
        let mut buf = [0u8; 4096];
        while Instant::now() < deadline {
            match self.sock.read(&mut buf) {
                Ok(0) => return false,
                Ok(n) => {
                    let replies = self.parse(&buf[..n]);
                    if !replies.is_empty() {
                        self.sock.write_all(&replies).unwrap();
                    }
                }
                Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {}
                Err(_) => return false,
            }
        }
        true
    }

    /// Reads until the session text contains `needle`.
    fn expect(&mut self, needle: &str, timeout: Duration) -> bool {
        let deadline = Instant::now() + timeout;
        loop {
            if String::from_utf8_lossy(&self.text).contains(needle) {
                return true;
            }
            if Instant::now() >= deadline || !self.pump(Duration::from_millis(200)) {
                return String::from_utf8_lossy(&self.text).contains(needle);
            }
        }
    }

    /// Sends a command line (CR LF, as NVT wants it).
    fn line(&mut self, text: &str) {
        self.sock
            .write_all(format!("{text}\r\n").as_bytes())
            .unwrap();
    }

    fn text(&self) -> String {
        String::from_utf8_lossy(&self.text).into_owned()
    }
}

/// Connects to the UML's port inside `ns`, retrying for a while.
fn connect_port(ns: &str) -> TcpStream {
    let addr = SocketAddrV4::new(Ipv4Addr::LOCALHOST, PORT);
    in_netns(ns, move || {
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            match TcpStream::connect_timeout(&addr.into(), Duration::from_secs(5)) {
                Ok(s) => return s,
                Err(e) if Instant::now() < deadline => {
                    eprintln!("connect {addr}: {e}; retrying");
                    std::thread::sleep(Duration::from_millis(200));
                }
                Err(e) => panic!("cannot connect to {addr}: {e}"),
            }
        }
    })
}

/// A directory holding an `in.telnetd` that accepts the kernel's
/// `-L <helper>` and runs inetutils' telnetd with it.
fn telnetd_wrapper_dir(telnetd: &Path) -> tempfile::TempDir {
    let dir = tempfile::Builder::new()
        .prefix("umlt-telnetd-")
        .tempdir()
        .unwrap();
    fs::set_permissions(dir.path(), fs::Permissions::from_mode(0o755)).unwrap();
    let script = format!(
        "#!/bin/sh\n\
         # The kernel runs `in.telnetd -L HELPER` (netkit syntax) with fds 0-3\n\
         # set up; exec keeps them for inetutils' telnetd.\n\
         [ \"$1\" = -L ] && [ -n \"$2\" ] || exit 1\n\
         exec {} -h -E \"$2\"\n",
        telnetd.display()
    );
    let path = dir.path().join("in.telnetd");
    fs::write(&path, script).unwrap();
    fs::set_permissions(&path, fs::Permissions::from_mode(0o755)).unwrap();
    dir
}

/// The port-helper processes of our build in network namespace `ns`.
fn our_port_helpers(ns: &NetNs) -> Vec<u32> {
    let build = identity(&workspace_bin("port-helper"));
    let netns = identity(&Path::new("/run/netns").join(ns.name()));
    let Ok(dir) = fs::read_dir("/proc") else {
        return Vec::new();
    };
    dir.flatten()
        .filter_map(|e| e.file_name().to_str().and_then(|s| s.parse::<u32>().ok()))
        .filter(|pid| identity(Path::new(&format!("/proc/{pid}/exe"))) == build)
        .filter(|pid| identity(Path::new(&format!("/proc/{pid}/ns/net"))) == netns)
        .filter(|&pid| pid_alive(pid))
        .collect()
}

fn fds_of(pid: u32) -> Vec<u32> {
    let mut fds: Vec<u32> = fs::read_dir(format!("/proc/{pid}/fd"))
        .map(|d| {
            d.flatten()
                .filter_map(|e| e.file_name().to_str().and_then(|s| s.parse().ok()))
                .collect()
        })
        .unwrap_or_default();
    fds.sort_unstable();
    fds
}

/// Polls until `pid` has gone (or is a zombie), at most `timeout`.
fn gone_within(pid: u32, timeout: Duration) -> bool {
    let deadline = Instant::now() + timeout;
    while pid_alive(pid) && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(50));
    }
    !pid_alive(pid)
}

/// Listening TCP sockets on `PORT` in `ns` (`ss -ltnH`).
fn listeners(ns: &NetNs) -> String {
    let out = run_with_timeout(
        ns.exec("ss").args(["-ltnH", &format!("sport = :{PORT}")]),
        Duration::from_secs(10),
    );
    assert!(out.success(), "ss: {out}");
    out.stdout_str()
}

/// Debian's compiled-in port-helper path (6.1; the package installs the
/// program there).
const PORT_HELPER_PATH: &str = "/usr/lib/uml/port-helper";
/// Where 64-bit kernels from 6.16 on look (`docs/kernel7.md` §2.1); the package
/// installs a link there.
const PORT_HELPER_LIB64: &str = "/usr/lib64/uml/port-helper";

/// How the kernel finds port-helper in a test.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum HelperPath {
    /// `UML_PORT_HELPER` names the test build (port channel only).
    Env,
    /// No variable: the package's layout, in a private mount namespace of
    /// the kernel — the test build bind-mounted over
    /// `/usr/lib/uml/port-helper`, and `/usr/lib64` overlaid with the
    /// link the package ships as `usr/lib64/uml/port-helper`.
    Installed,
}

/// The link target of the package's `usr/lib64/uml/port-helper` asset,
/// read from `packaging/Cargo.toml` (`{ dest = ..., link_name = ... }`).
fn packaged_lib64_link() -> String {
    let manifest = Path::new(env!("CARGO_MANIFEST_DIR")).join("../packaging/Cargo.toml");
    let text = fs::read_to_string(&manifest).unwrap();
    let quoted = |line: &str, key: &str| -> Option<String> {
        let rest = line.split(&format!("{key} = \"")).nth(1)?;
        Some(rest.split('"').next()?.to_string())
    };
    text.lines()
        .filter(|l| quoted(l, "dest").as_deref() == Some(&PORT_HELPER_LIB64[1..]))
        .find_map(|l| quoted(l, "link_name"))
        .unwrap_or_else(|| {
            panic!(
                "{} has no link asset for {PORT_HELPER_LIB64}",
                manifest.display()
            )
        })
}

/// A directory holding `uml/port-helper`, the package's link, to be
/// overlaid on `/usr/lib64`.
fn lib64_overlay_dir() -> tempfile::TempDir {
    let dir = tempfile::Builder::new()
        .prefix("umlt-lib64-")
        .tempdir()
        .unwrap();
    fs::set_permissions(dir.path(), fs::Permissions::from_mode(0o755)).unwrap();
    fs::create_dir(dir.path().join("uml")).unwrap();
    std::os::unix::fs::symlink(packaged_lib64_link(), dir.path().join("uml/port-helper")).unwrap();
    dir
}

/// The kernel's wrapper for [`HelperPath::Installed`]: a private mount
/// namespace with our build at the package's paths.
fn installed_layout_wrapper(lib64: &Path) -> Vec<String> {
    assert!(
        Path::new("/usr/lib64").is_dir(),
        "/usr/lib64 does not exist: the test overlays it"
    );
    let build = workspace_bin("port-helper");
    vec![
        "unshare".into(),
        "-m".into(),
        "--propagation".into(),
        "private".into(),
        "sh".into(),
        "-c".into(),
        format!(
            "mount --bind \"$0\" {PORT_HELPER_PATH} && \
             mount -t overlay overlay -o \"lowerdir=$1:/usr/lib64\" /usr/lib64 && \
             shift && exec \"$@\""
        ),
        build.to_string_lossy().into_owned(),
        lib64.to_string_lossy().into_owned(),
    ]
}

/// The path `kernel` runs port-helper from when no variable says
/// otherwise (as it spells it).
fn compiled_in_path(kernel: Kernel) -> &'static str {
    match kernel {
        Kernel::Linux61 => "/usr/lib//uml/port-helper",
        Kernel::Linux7 => "/usr/lib64//uml/port-helper",
    }
}

/// The value of `UML_PORT_HELPER` in the environment of process `pid`.
fn port_helper_env(pid: u32) -> Option<String> {
    let environ = fs::read(format!("/proc/{pid}/environ")).unwrap();
    environ
        .split(|&b| b == 0)
        .find_map(|v| v.strip_prefix(&b"UML_PORT_HELPER="[..]))
        .map(|v| String::from_utf8_lossy(v).into_owned())
}

/// `argv[0]` of process `pid`.
fn argv0(pid: u32) -> String {
    let cmdline = fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default();
    let first = cmdline.split(|&b| b == 0).next().unwrap_or_default();
    String::from_utf8_lossy(first).into_owned()
}

/// A telnet login on the guest's `/dev/tty1` through `con1=port:`, our
/// helper found as `via` says; then a refused connection; then the port
/// is free after the UML halts.
fn telnet_session(kernel: Kernel, via: HelperPath, tag: &str) {
    require!(
        Requirement::Root,
        kernel.requirement(),
        Requirement::NetNs,
        Requirement::CBinary(PORT_HELPER_PATH)
    );
    let Some(telnetd) = find_in_path("telnetd") else {
        // inetutils-telnetd; `telnetd` alone is a transitional dummy.
        require!(Requirement::CBinary("/usr/sbin/telnetd"));
        return;
    };
    let ns = NetNs::new(tag);
    let wrappers = telnetd_wrapper_dir(&telnetd);
    let lib64 = lib64_overlay_dir();
    let helper: PathBuf = workspace_bin("port-helper");
    let mut cfg = UmlConfig {
        netns: Some(ns.name().to_string()),
        path_prepend: Some(wrappers.path().to_path_buf()),
        extra_args: vec![format!("con1=port:{PORT}")],
        init_script: format!(
            "setsid sh -c 'exec sh -i </dev/tty1 >/dev/tty1 2>&1' &\n\
             echo {SHELL_STARTED}\n\
             while :; do sleep 3600; done\n"
        ),
        ..UmlConfig::with_kernel(&format!("{tag}tel"), kernel)
    };
    match via {
        HelperPath::Env => cfg.env.push((
            "UML_PORT_HELPER".to_string(),
            helper.to_string_lossy().into_owned(),
        )),
        HelperPath::Installed => {
            cfg.debian_port_helper = false;
            cfg.wrapper = installed_layout_wrapper(lib64.path());
        }
    }
    let mut uml = Uml::boot(cfg).expect("boot");
    let env = port_helper_env(uml.pid());
    match via {
        HelperPath::Env => assert_eq!(env.as_deref(), helper.to_str()),
        HelperPath::Installed => assert_eq!(env, None, "the kernel has UML_PORT_HELPER"),
    }
    assert!(
        uml.wait_console(SHELL_STARTED, Duration::from_secs(60)),
        "{}",
        uml.console()
    );
    assert!(
        listeners(&ns).contains(&format!(":{PORT}")),
        "the UML does not listen on {PORT}:\n{}",
        uml.console()
    );

    // A login on the guest's /dev/tty1 through telnetd and our helper.
    let mut session = Telnet::connect(connect_port(ns.name()));
    // Input sent before the guest shell has the tty open is lost: wait
    // for its prompt.
    assert!(
        session.expect("# ", Duration::from_secs(30)),
        "no prompt:\n{}\nconsole:\n{}",
        session.text(),
        uml.console()
    );
    session.line("tty");
    session.line("echo PHTEST-$((6*7))");
    let ok = session.expect("/dev/tty1", Duration::from_secs(30))
        && session.expect("PHTEST-42", Duration::from_secs(10));
    assert!(
        ok,
        "session:\n{}\nconsole:\n{}",
        session.text(),
        uml.console()
    );

    // The helper the kernel got the terminal from is ours, started from
    // the path the kernel was told or compiled with, and it holds only the
    // terminal and the kernel's channel.
    let helpers = our_port_helpers(&ns);
    assert_eq!(helpers.len(), 1, "{helpers:?}");
    let want_argv0 = match via {
        HelperPath::Env => helper.to_string_lossy().into_owned(),
        HelperPath::Installed => compiled_in_path(kernel).to_string(),
    };
    assert_eq!(argv0(helpers[0]), want_argv0);
    assert_eq!(fds_of(helpers[0]), [0, 1, 2, 3]);

    // End the session: the helper exits with it.
    session.line("exit");
    drop(session);
    assert!(
        gone_within(helpers[0], Duration::from_secs(15)),
        "port-helper outlived its session"
    );

    // A connection while no guest console waits: the kernel tells the
    // client so and forgets the helper. The C helper then stays forever,
    // holding the UML's listening socket, even after the UML halts.
    let mut session = Telnet::connect(connect_port(ns.name()));
    assert!(
        session.expect(
            "There are currently no UML consoles waiting for port connections.",
            Duration::from_secs(30)
        ),
        "session:\n{}\nconsole:\n{}",
        session.text(),
        uml.console()
    );
    let helpers = our_port_helpers(&ns);
    assert_eq!(helpers.len(), 1, "{helpers:?}");
    assert_eq!(fds_of(helpers[0]), [0, 1, 2, 3]);
    drop(session);
    assert!(
        gone_within(helpers[0], Duration::from_secs(15)),
        "port-helper outlived the refused session"
    );

    // After the UML halts nothing keeps the port: no listener, and it can
    // be bound again.
    uml.halt().expect("halt");
    assert!(uml.wait_exit(Duration::from_secs(20)), "{}", uml.console());
    assert_eq!(listeners(&ns), "", "port {PORT} still bound");
    let bound = in_netns(ns.name(), || {
        TcpListener::bind(SocketAddrV4::new(Ipv4Addr::UNSPECIFIED, PORT)).map(|_| ())
    });
    assert!(bound.is_ok(), "cannot bind {PORT} again: {bound:?}");
    assert_eq!(our_port_helpers(&ns), Vec::<u32>::new());
}

#[test]
fn port_helper_serves_a_telnet_session_and_frees_the_port() {
    telnet_session(Kernel::Linux61, HelperPath::Env, "ph");
}

/// Linux 6.1 finds the package's `/usr/lib/uml/port-helper` with no
/// environment variable.
#[test]
fn port_helper_found_by_6_1_without_a_variable() {
    telnet_session(Kernel::Linux61, HelperPath::Installed, "ph61");
}

/// Linux 7.x looks in `/usr/lib64/uml/` (`docs/kernel7.md` §2.1, §3): the
/// package's link there is found with no environment variable, and 7.x,
/// which drops a helper message that is not exactly 4 bytes, gets the
/// terminal.
#[test]
fn port_helper_found_by_7_without_a_variable() {
    telnet_session(Kernel::Linux7, HelperPath::Installed, "ph7");
}

/// The xterm channel runs `<terminal> -T <title> -e <compiled-in
/// port-helper path> -uml-socket <socket>`: no environment variable
/// redirects that path, so the kernel runs in the package's layout
/// ([`HelperPath::Installed`]), and the terminal is fake-xterm, which logs
/// the terminal's output and types two commands.
fn xterm_channel(kernel: Kernel, tag: &str) {
    require!(
        Requirement::Root,
        kernel.requirement(),
        Requirement::NetNs,
        Requirement::CBinary(PORT_HELPER_PATH)
    );
    let ns = NetNs::new(tag);
    let lib64 = lib64_overlay_dir();
    let cfg = UmlConfig {
        netns: Some(ns.name().to_string()),
        env: vec![
            // The channel refuses to start a terminal without one.
            ("DISPLAY".into(), ":99".into()),
            ("FAKE_XTERM_LOG".into(), "$WORK/xterm.log".into()),
            // Typed before the guest shell has the tty, input is lost.
            ("FAKE_XTERM_TYPE_AFTER".into(), "# ".into()),
            (
                "FAKE_XTERM_INPUT".into(),
                "tty\\necho XTERM-$((6*7))\\n".into(),
            ),
        ],
        extra_args: vec![
            "con2=xterm".into(),
            format!("xterm={},-T,-e", workspace_bin("fake-xterm").display()),
        ],
        wrapper: installed_layout_wrapper(lib64.path()),
        debian_port_helper: false,
        init_script: format!(
            "setsid sh -c 'exec sh -i </dev/tty2 >/dev/tty2 2>&1' &\n\
             echo {SHELL_STARTED}\n\
             while :; do sleep 3600; done\n"
        ),
        ..UmlConfig::with_kernel(&format!("{tag}xterm"), kernel)
    };
    let mut uml = Uml::boot(cfg).expect("boot");
    assert_eq!(port_helper_env(uml.pid()), None);
    assert!(
        uml.wait_console(SHELL_STARTED, Duration::from_secs(60)),
        "{}",
        uml.console()
    );
    let log = uml.work_dir().join("xterm.log");
    let read_log = || String::from_utf8_lossy(&fs::read(&log).unwrap_or_default()).into_owned();
    // A race in the kernel (6.1 xterm_fd): it arms the SIGIO for the
    // helper's socket only after starting the terminal, so a descriptor
    // that arrives first (fake-xterm and port-helper start faster than the
    // UML process gets the CPU back on a loaded machine) is noticed only
    // at the next interrupt of any kind. Any mconsole request is one: when
    // the terminal stays silent, nudge the kernel with `version`.
    let done = || read_log().contains("/dev/tty2") && read_log().contains("XTERM-42");
    let deadline = Instant::now() + Duration::from_secs(30);
    let mut next_nudge = Instant::now() + Duration::from_secs(3);
    while !done() && Instant::now() < deadline {
        if Instant::now() >= next_nudge {
            eprintln!("xterm channel silent: nudging the kernel with an mconsole request");
            let _ = uml.mconsole("version");
            next_nudge = Instant::now() + Duration::from_secs(3);
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    let text = read_log();
    assert!(
        text.contains("/dev/tty2") && text.contains("XTERM-42"),
        "terminal:\n{text}\nconsole:\n{}",
        uml.console()
    );

    // Our build, run from the compiled-in path, got the socket from the
    // kernel and keeps nothing else.
    let helpers = our_port_helpers(&ns);
    assert_eq!(helpers.len(), 1, "{helpers:?}");
    assert_eq!(argv0(helpers[0]), compiled_in_path(kernel));
    let fds = fds_of(helpers[0]);
    assert_eq!(fds, [0, 1, 2, 3]);
    let channel = fs::read_link(format!("/proc/{}/fd/3", helpers[0])).unwrap();
    assert!(
        channel.to_string_lossy().starts_with("socket:"),
        "{channel:?}"
    );

    uml.halt().expect("halt");
    assert!(uml.wait_exit(Duration::from_secs(20)), "{}", uml.console());
    assert!(
        gone_within(helpers[0], Duration::from_secs(15)),
        "port-helper outlived the UML"
    );
}

#[test]
fn port_helper_socket_mode_with_the_xterm_channel() {
    xterm_channel(Kernel::Linux61, "phx");
}

/// The xterm channel of 7.x runs `/usr/lib64//uml/port-helper`; there is
/// no variable to redirect it, so without the package's link it has no
/// helper at all.
#[test]
fn port_helper_xterm_channel_on_7() {
    xterm_channel(Kernel::Linux7, "phx7");
}
