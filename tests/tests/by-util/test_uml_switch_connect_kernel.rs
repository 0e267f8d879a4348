//! Real user-mode network stacks attached to a switch segment through the
//! ports that connect out (`docs/vector.md` §12), with a real UML guest
//! (Debian 12's `linux.uml` 6.1 on `eth0=daemon`, or the 7.2 kernel on a
//! `--bess` socket of the same switch): **passt** listening on
//! a stream socket (`passt -s PATH`, the QEMU 4-byte length framing;
//! `--qemu-connect`) and **slirp4netns** in bess mode
//! (`--target-type=bess`; `--bess-connect`). The guest gets its address
//! from the stack's DHCP server (busybox `udhcpc` with a script the test
//! writes) and fetches a page from an HTTP server the test runs on a
//! non-loopback address of its namespace.
//!
//! Everything runs in a network namespace the test creates and removes: a
//! veth pair inside it carries the stack's "uplink" addresses (passt
//! copies the guest's address and gateway from the interface with the
//! default route), and the HTTP server listens on a second address of
//! that veth. Nothing leaves the namespace. Every wait is bounded; the
//! stack, the switch and the guest are ended by process group or pid.

// Test code: a failed setup step should abort the test with its message.
#![allow(clippy::expect_used, clippy::unwrap_used)]

use std::ffi::OsString;
use std::io::{Read, Write};
use std::net::TcpListener;
use std::os::unix::fs::PermissionsExt;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

use uml_integration_tests::guestnet;
use uml_integration_tests::segment::{self, consoles, guest_mac, learned, one_at_a_time};
use uml_integration_tests::switch_client::{new_temp_dir, NsSwitch};
use uml_integration_tests::{
    require, wait_until, Kernel, NetNs, ProcessGroup, Requirement, Uml, UmlConfig,
};

/// Hard lifetime of the switch and the stack.
const LIFETIME: Duration = Duration::from_secs(150);
/// Hard lifetime of the guest.
const UML_LIFETIME: Duration = Duration::from_secs(120);
/// Bound for one step of the guest's script.
const GUEST_STEP: Duration = Duration::from_secs(60);
/// The namespace's uplink address (passt hands it to the guest).
const UPLINK: &str = "10.77.0.1";
/// Where the HTTP server listens (a second address of the uplink).
const SERVER: &str = "10.77.0.2";
/// Its port.
const HTTP_PORT: u16 = 8080;

/// The namespace with its uplink: a veth pair (both ends inside), the
/// uplink and server addresses on one end, a default route through a
/// gateway that does not exist (passt needs a default route to copy).
fn namespace() -> NetNs {
    let ns = NetNs::new("ucon");
    for args in [
        &["link", "add", "up0", "type", "veth", "peer", "name", "up1"][..],
        &["addr", "add", &format!("{UPLINK}/24"), "dev", "up0"],
        &["addr", "add", &format!("{SERVER}/24"), "dev", "up0"],
        &["link", "set", "up0", "up"],
        &["link", "set", "up1", "up"],
        &[
            "route",
            "add",
            "default",
            "via",
            "10.77.0.254",
            "dev",
            "up0",
        ],
    ] {
        let out = ns.ip(args);
        assert!(out.success(), "ip {args:?}: {out}");
    }
    ns
}

/// An HTTP server on `SERVER:HTTP_PORT` in `ns` answering every request
/// with `body`, on a thread that ends by itself after `LIFETIME`.
fn http_server(ns: &NetNs, body: String) {
    let l = ns.run_in(|| TcpListener::bind((SERVER, HTTP_PORT)).expect("bind the HTTP server"));
    l.set_nonblocking(true).unwrap();
    std::thread::spawn(move || {
        let deadline = Instant::now() + LIFETIME;
        while Instant::now() < deadline {
            match l.accept() {
                Ok((mut s, _)) => {
                    s.set_nonblocking(false).unwrap();
                    s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
                    // The whole request (it may come in pieces): closing
                    // with unread bytes would reset the connection, and
                    // the guest's `cat` would fail after the page.
                    let mut req = Vec::new();
                    let mut piece = [0u8; 1024];
                    while !req.windows(4).any(|w| w == b"\r\n\r\n") && req.len() < 65536 {
                        match s.read(&mut piece) {
                            Ok(n) if n > 0 => req.extend_from_slice(&piece[..n]),
                            _ => break,
                        }
                    }
                    let _ = write!(
                        s,
                        "HTTP/1.0 200 OK\r\nContent-Length: {}\r\n\r\n{body}",
                        body.len()
                    );
                    // End our side, then let the client close first.
                    let _ = s.shutdown(std::net::Shutdown::Write);
                    let _ = s.read(&mut piece);
                }
                Err(_) => std::thread::sleep(Duration::from_millis(50)),
            }
        }
    });
}

/// A directory the stack (which may drop to user nobody) can create its
/// socket in; the temporary directory holding it is traversable.
fn socket_dir(dir: &Path) -> std::path::PathBuf {
    std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o711)).unwrap();
    let d = dir.join("stack");
    std::fs::create_dir(&d).unwrap();
    std::fs::set_permissions(&d, std::fs::Permissions::from_mode(0o1777)).unwrap();
    d
}

/// Whether a unix socket in `ns` listens at `path` (`/proc/net/unix` of
/// the namespace: the flag `__SO_ACCEPTCON`). Probing by connecting
/// would not do: these stacks take the first connection as their one
/// client.
fn listening(ns: &NetNs, path: &Path) -> bool {
    let table =
        ns.run_in(|| std::fs::read_to_string("/proc/thread-self/net/unix").unwrap_or_default());
    let path = path.to_string_lossy();
    table.lines().any(|l| {
        let f: Vec<&str> = l.split_whitespace().collect();
        f.len() >= 8 && f[7] == path && f[3] == "00010000"
    })
}

/// Starts `program args` in `ns` under `timeout`, in a process group of
/// its own, output to `out`.
fn start_stack(ns: &NetNs, program: &str, args: &[String], out: &Path) -> ProcessGroup {
    let file = std::fs::File::create(out).unwrap();
    let mut cmd = ns.exec("timeout");
    cmd.args(["-k", "5", &LIFETIME.as_secs().to_string(), program])
        .args(args)
        .stdin(Stdio::null())
        .stdout(file.try_clone().unwrap())
        .stderr(file)
        .process_group(0);
    ProcessGroup(
        cmd.spawn()
            .unwrap_or_else(|e| panic!("start {program}: {e}")),
    )
}

/// The guest's script for its device `dev`: DHCP through busybox udhcpc,
/// then an HTTP fetch with bash's /dev/tcp; each step prints
/// `TEST: <step> rc=N`.
fn guest_script(dev: &str) -> String {
    format!(
        "{}{}echo \"TEST: fetch rc=$?\"\ncat /tmp/page\necho\n",
        guestnet::dhcp(dev),
        guestnet::http_get(SERVER, HTTP_PORT, "page", "/tmp/page")
    )
}

/// How the guest joins the switch.
enum Join<'a> {
    /// A 6.1 guest on `eth0=daemon` at this control socket.
    Daemon(&'a Path),
    /// A 7.2 guest on `vec0:transport=bess` at this `--bess` socket.
    Bess7(&'a Path),
}

/// Boots guest 1 in `ns` on the switch (`join`), lets it get an address
/// from the stack by DHCP and fetch the page; checks that the lease is
/// `lease` and that the page came.
fn guest_fetches(ns: &NetNs, join: Join<'_>, sw: &mut NsSwitch, body: &str, lease: &str) -> Uml {
    let (kernel, net, dev) = match join {
        Join::Daemon(ctl) => (
            Kernel::Linux61,
            format!("eth0=daemon,{},unix,{}", guest_mac(1), ctl.display()),
            "eth0",
        ),
        Join::Bess7(path) => (
            Kernel::Linux7,
            format!(
                "vec0:transport=bess,dst={},mac={}",
                path.display(),
                guest_mac(1)
            ),
            "vec0",
        ),
    };
    let mut cfg = UmlConfig::with_kernel("ucon1", kernel);
    cfg.netns = Some(ns.name().to_string());
    cfg.extra_args.push(net);
    cfg.lifetime = UML_LIFETIME;
    cfg.init_script = guest_script(dev);
    let mut uml = segment::boot(cfg);
    segment::expect_step_ok(&mut uml, "dhcp", GUEST_STEP, sw, &[]);
    let console = uml.console();
    assert!(
        console.contains(&format!("TEST: lease {lease}")),
        "unexpected lease (want {lease}):\n{console}"
    );
    segment::expect_step_ok(&mut uml, "fetch", GUEST_STEP, sw, &[]);
    assert!(
        uml.wait_console(body, Duration::from_secs(10)),
        "the page did not come:\n{}\n{}",
        consoles([&uml]),
        sw.report()
    );
    uml
}

/// Starts passt in `ns` on a stream socket under `dir` (`-f`: in the
/// foreground, `-e`: log to stderr, MTU 1500) and waits until it
/// listens; returns it and its socket.
fn start_passt(ns: &NetNs, dir: &Path) -> (ProcessGroup, PathBuf) {
    let sock = socket_dir(dir).join("passt.socket");
    let passt = start_stack(
        ns,
        "passt",
        &[
            "-f".into(),
            "-e".into(),
            "-s".into(),
            sock.display().to_string(),
            "-m".into(),
            "1500".into(),
        ],
        &dir.join("passt.out"),
    );
    assert!(
        wait_until(Duration::from_secs(10), || listening(ns, &sock)),
        "passt does not listen on {}:\n{}",
        sock.display(),
        std::fs::read_to_string(dir.join("passt.out")).unwrap_or_default()
    );
    (passt, sock)
}

/// passt on a stream socket, attached with `--qemu-connect`: the guest
/// gets passt's lease (the uplink's address) and fetches the page.
#[test]
fn passt_through_qemu_connect_gives_a_guest_dhcp_and_tcp() {
    require!(
        Requirement::Root,
        Requirement::NetNs,
        Requirement::LinuxUml,
        Requirement::Program("passt", "passt"),
        Requirement::Program("busybox", "busybox"),
        Requirement::Program("bash", "bash"),
    );
    if !segment::switch_is_ours("--qemu-connect is not an option of the C switch") {
        return;
    }
    let _serial = one_at_a_time();
    let ns = namespace();
    let dir = new_temp_dir();
    let body = format!("PASST-PAGE-{}", std::process::id());
    http_server(&ns, body.clone());
    let (_passt, sock) = start_passt(&ns, dir.path());
    let ctl = dir.path().join("ctl");
    let args: Vec<OsString> = vec![
        "-unix".into(),
        ctl.clone().into(),
        "--qemu-connect".into(),
        sock.clone().into(),
    ];
    let mut sw =
        NsSwitch::start(&ns, dir.path(), &args, LIFETIME).unwrap_or_else(|e| panic!("{e}"));
    assert!(
        sw.output().contains(&format!(
            "connected to qemu-stream peer '{}'",
            sock.display()
        )),
        "{}",
        sw.report()
    );
    let mut uml = guest_fetches(&ns, Join::Daemon(&ctl), &mut sw, &body, UPLINK);
    // Both ends were learned: the guest on its daemon port, passt on the
    // stream port.
    let out = sw.output();
    assert!(out.contains(&learned(&guest_mac(1))), "{}", sw.report());
    assert!(
        out.matches(" New port ").count() >= 2,
        "passt's MAC not learned:\n{}",
        sw.report()
    );
    segment::expect_power_off(&mut uml, Duration::from_secs(20));
    assert!(sw.running(), "{}", sw.report());
}

/// slirp4netns in bess mode, attached with `--bess-connect`: the guest
/// gets libslirp's first lease (10.0.2.15) and fetches the page through
/// slirp's NAT.
#[test]
fn slirp4netns_through_bess_connect_gives_a_guest_dhcp_and_tcp() {
    require!(
        Requirement::Root,
        Requirement::NetNs,
        Requirement::LinuxUml,
        Requirement::Program("slirp4netns", "slirp4netns"),
        Requirement::Program("busybox", "busybox"),
        Requirement::Program("bash", "bash"),
    );
    if !segment::switch_is_ours("--bess-connect is not an option of the C switch") {
        return;
    }
    let _serial = one_at_a_time();
    let ns = namespace();
    let dir = new_temp_dir();
    let sockets = socket_dir(dir.path());
    let sock = sockets.join("slirp.bess");
    let body = format!("SLIRP-PAGE-{}", std::process::id());
    http_server(&ns, body.clone());
    let _slirp = start_stack(
        &ns,
        "slirp4netns",
        &["--target-type=bess".into(), sock.display().to_string()],
        &dir.path().join("slirp.out"),
    );
    assert!(
        wait_until(Duration::from_secs(10), || listening(&ns, &sock)),
        "slirp4netns does not listen on {}:\n{}",
        sock.display(),
        std::fs::read_to_string(dir.path().join("slirp.out")).unwrap_or_default()
    );
    let ctl = dir.path().join("ctl");
    let args: Vec<OsString> = vec![
        "-unix".into(),
        ctl.clone().into(),
        "--bess-connect".into(),
        sock.clone().into(),
    ];
    let mut sw =
        NsSwitch::start(&ns, dir.path(), &args, LIFETIME).unwrap_or_else(|e| panic!("{e}"));
    assert!(
        sw.output()
            .contains(&format!("connected to bess peer '{}'", sock.display())),
        "{}",
        sw.report()
    );
    let mut uml = guest_fetches(&ns, Join::Daemon(&ctl), &mut sw, &body, "10.0.2.15");
    segment::expect_power_off(&mut uml, Duration::from_secs(20));
    assert!(sw.running(), "{}", sw.report());
}

/// A 7.2 guest (no daemon transport) on the switch's `--bess` socket
/// reaches passt behind `--qemu-connect` the same way: bess framing on
/// one side, the stream framing on the other.
#[test]
fn passt_gives_a_72_bess_guest_dhcp_and_tcp() {
    require!(
        Requirement::Root,
        Requirement::NetNs,
        Requirement::LinuxUml7,
        Requirement::Program("passt", "passt"),
        Requirement::Program("busybox", "busybox"),
        Requirement::Program("bash", "bash"),
    );
    if !segment::switch_is_ours("--qemu-connect is not an option of the C switch") {
        return;
    }
    let _serial = one_at_a_time();
    let ns = namespace();
    let dir = new_temp_dir();
    let body = format!("PASST7-PAGE-{}", std::process::id());
    http_server(&ns, body.clone());
    let (_passt, sock) = start_passt(&ns, dir.path());
    let ctl = dir.path().join("ctl");
    let guests = dir.path().join("guests");
    let args: Vec<OsString> = vec![
        "-unix".into(),
        ctl.into(),
        "--bess".into(),
        guests.clone().into(),
        "--qemu-connect".into(),
        sock.into(),
    ];
    let mut sw =
        NsSwitch::start(&ns, dir.path(), &args, LIFETIME).unwrap_or_else(|e| panic!("{e}"));
    let mut uml = guest_fetches(&ns, Join::Bess7(&guests), &mut sw, &body, UPLINK);
    assert!(
        sw.output().contains("New bess connection: "),
        "{}",
        sw.report()
    );
    segment::expect_power_off(&mut uml, Duration::from_secs(20));
    assert!(sw.running(), "{}", sw.report());
}
