//! `uml_switch --nat` with real kernels (`docs/nat.md`): guests behind one
//! switch whose NAT port (libslirp in `uml_switch_nat`) is their gateway,
//! the switch running as an unprivileged user (`setpriv --reuid=65534`):
//! each guest gets its address by DHCP from its own client (busybox
//! `udhcpc`), resolves a name through the port's DNS forwarder (which
//! asks a resolver the test runs in its namespace: `/etc/netns/NS/
//! resolv.conf`, which `ip netns exec` shows as `/etc/resolv.conf`), and
//! fetches a page from an HTTP server the test runs on a veth address of
//! the namespace (not loopback); a host port forward reaches an HTTP
//! server in the first guest.
//!
//! Everything runs in a network namespace the test creates and removes;
//! every wait is bounded.

// Test code: a failed setup step should abort the test with its message.
#![allow(clippy::expect_used, clippy::unwrap_used)]

use std::ffi::OsString;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Stdio};
use std::time::{Duration, Instant};

use uml_integration_tests::guestnet;
use uml_integration_tests::segment::{self, expect_step_ok, guest_mac as mac, halt};
use uml_integration_tests::switch_client::{new_temp_dir, open_to_all, NsSwitch, AS_NOBODY};
use uml_integration_tests::{require, Kernel, NetNs, Requirement, Uml, UmlConfig};

/// Hard lifetime of the switch process.
const SWITCH_LIFETIME: Duration = Duration::from_secs(240);
/// Hard lifetime of each UML.
const UML_LIFETIME: Duration = Duration::from_secs(200);
/// Bound for a guest's step (DHCP, DNS, a fetch by a cold python3).
const GUEST_STEP: Duration = Duration::from_secs(60);
/// Bound for a UML to exit after it was halted.
const UML_EXIT: Duration = Duration::from_secs(20);
/// The namespace's own address (a veth end), where its servers listen.
const OUTSIDE: &str = "10.77.0.1";
/// The name the resolver knows.
const NAME: &str = "web.nat.test";
/// The page the namespace's HTTP server serves, and its text.
const PAGE: &str = "page.txt";
const PAGE_TEXT: &str = "served-from-the-namespace-4711";
/// The page the first guest serves through the host port forward.
const GUEST_PAGE_TEXT: &str = "served-from-guest-one-0815";
/// The host port forwarded to the first guest's port 8080.
const FWD_PORT: u16 = 18_080;

/// A resolver for the test's namespace: answers A queries for argv[2]
/// with argv[3], everything else with no answer.
const RESOLVER: &str = r#"
import socket, sys
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.bind((sys.argv[1], 53))
name = sys.argv[2].encode().lower()
addr = bytes(int(x) for x in sys.argv[3].split('.'))
print('resolver ready', flush=True)
while True:
    q, peer = s.recvfrom(512)
    if len(q) < 17:
        continue
    i, labels = 12, []
    while i < len(q) and q[i]:
        labels.append(q[i + 1:i + 1 + q[i]])
        i += 1 + q[i]
    qtype = q[i + 1:i + 3]
    end = i + 5
    hit = b'.'.join(labels).lower() == name and qtype == b'\x00\x01'
    r = q[:2] + b'\x81\x80' + b'\x00\x01' + (b'\x00\x01' if hit else b'\x00\x00')
    r += b'\x00\x00\x00\x00' + q[12:end]
    if hit:
        r += b'\xc0\x0c\x00\x01\x00\x01\x00\x00\x00\x3c\x00\x04' + addr
    s.sendto(r, peer)
"#;

/// Processes the test runs in its namespace, killed when dropped.
struct Servers(Vec<Child>);

impl Drop for Servers {
    fn drop(&mut self) {
        for c in &mut self.0 {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

/// `/etc/netns/NS/`, removed when dropped (and `/etc/netns` when this made
/// it and it is empty).
struct NsEtc {
    dir: PathBuf,
    made_parent: bool,
}

impl NsEtc {
    fn new(ns: &NetNs, resolv_conf: &str) -> NsEtc {
        let parent = Path::new("/etc/netns");
        let made_parent = !parent.exists();
        let dir = parent.join(ns.name());
        std::fs::create_dir_all(&dir).unwrap();
        let guard = NsEtc { dir, made_parent };
        std::fs::write(guard.dir.join("resolv.conf"), resolv_conf).unwrap();
        guard
    }
}

impl Drop for NsEtc {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
        if self.made_parent {
            let _ = std::fs::remove_dir("/etc/netns");
        }
    }
}

/// The namespace's outside world: a veth pair with [`OUTSIDE`] on one end,
/// a resolver and an HTTP server on it, and resolv.conf pointing at the
/// resolver.
fn outside_world(ns: &NetNs, dir: &Path) -> (Servers, NsEtc) {
    for args in [
        &[
            "link", "add", "natv0", "type", "veth", "peer", "name", "natv1",
        ][..],
        &["addr", "add", &format!("{OUTSIDE}/24"), "dev", "natv0"],
        &["link", "set", "natv0", "up"],
        &["link", "set", "natv1", "up"],
    ] {
        let out = ns.ip(args);
        assert!(out.success(), "ip {args:?}: {out}");
    }
    let etc = NsEtc::new(ns, &format!("nameserver {OUTSIDE}\n"));
    let www = dir.join("www");
    std::fs::create_dir_all(&www).unwrap();
    std::fs::write(www.join(PAGE), format!("{PAGE_TEXT}\n")).unwrap();
    std::fs::write(dir.join("resolver.py"), RESOLVER).unwrap();
    let resolver = ns
        .exec("python3")
        .arg(dir.join("resolver.py"))
        .args([OUTSIDE, NAME, OUTSIDE])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut servers = Servers(vec![resolver]);
    // Ready once it printed its line.
    let mut line = [0u8; 14];
    servers.0[0]
        .stdout
        .as_mut()
        .unwrap()
        .read_exact(&mut line)
        .unwrap();
    assert_eq!(&line, b"resolver ready");
    let http = ns
        .exec("python3")
        .args([
            "-m",
            "http.server",
            "--bind",
            OUTSIDE,
            "8000",
            "--directory",
        ])
        .arg(&www)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    servers.0.push(http);
    // The same page on the namespace's loopback (reached through the
    // gateway unless host-loopback=off).
    let lo = ns
        .exec("python3")
        .args([
            "-m",
            "http.server",
            "--bind",
            "127.0.0.1",
            "8001",
            "--directory",
        ])
        .arg(&www)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    servers.0.push(lo);
    let up = wait_for(Duration::from_secs(20), || {
        ns.run_in(|| {
            TcpStream::connect((OUTSIDE, 8000)).is_ok()
                && TcpStream::connect(("127.0.0.1", 8001)).is_ok()
        })
    });
    assert!(up, "the namespace's HTTP servers did not start");
    (servers, etc)
}

fn wait_for(bound: Duration, mut cond: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + bound;
    loop {
        if cond() {
            return true;
        }
        if Instant::now() >= deadline {
            return false;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// Starts the switch as uid/gid 65534 in `ns`, with its sockets in `dir`
/// and `--nat=NAT`.
fn start_switch(ns: &NetNs, dir: &Path, nat: &str) -> NsSwitch {
    // The unprivileged switch makes its sockets here.
    open_to_all(dir);
    let args: Vec<OsString> = vec![
        "-unix".into(),
        dir.join("sw.ctl").into(),
        "--bess".into(),
        dir.join("sw.bess").into(),
        format!("--nat={nat}").into(),
    ];
    let wrapper = AS_NOBODY;
    let mut sw = NsSwitch::start_wrapped(ns, dir, &wrapper, &args, SWITCH_LIFETIME)
        .unwrap_or_else(|e| panic!("{e}"));
    let announced = sw.wait_output(Duration::from_secs(10), |o| {
        o.contains("network 10.0.2.0/24, gateway 10.0.2.2, DNS 10.0.2.3, DHCP from 10.0.2.15: ")
    });
    assert!(announced, "{}", sw.report());
    sw
}

/// The init script of a guest on `dev`: DHCP, a name looked up through the
/// lease's DNS server, the namespace's page fetched with bash's /dev/tcp
/// from the address found; then `extra`, then idle.
fn guest_script(dev: &str, extra: &str) -> String {
    format!(
        "{}set -- $(cat /tmp/lease)\n\
         busybox nslookup {NAME} \"$3\" >/tmp/ns.log 2>&1; cat /tmp/ns.log\n\
         addr=$(awk '/^Address/ {{a=$NF}} END {{print a}}' /tmp/ns.log)\n\
         echo \"TEST: resolved $addr\"\n\
         test \"$addr\" = {OUTSIDE}; echo \"TEST: dns rc=$?\"\n\
         {}\
         cat /tmp/page\n\
         grep -q {PAGE_TEXT} /tmp/page; echo \"TEST: fetch rc=$?\"\n\
         {extra}\n\
         while :; do sleep 3600; done",
        guestnet::dhcp(dev),
        guestnet::http_get("$addr", 8000, PAGE, "/tmp/page"),
    )
}

/// What the first guest adds: an HTTP server on port 8080 (busybox
/// httpd), for the host port forward.
fn guest_one_server() -> String {
    format!(
        "mkdir -p /tmp/www && echo {GUEST_PAGE_TEXT} >/tmp/www/index.html\n\
         busybox httpd -p 8080 -h /tmp/www; echo \"TEST: httpd rc=$?\""
    )
}

/// The namespace's loopback page fetched through the gateway 10.0.2.2
/// (`TEST: loopback rc=`).
fn loopback_fetch() -> String {
    format!(
        "{}grep -q {PAGE_TEXT} /tmp/lo; echo \"TEST: loopback rc=$?\"",
        guestnet::http_get("10.0.2.2", 8001, PAGE, "/tmp/lo")
    )
}

fn boot(ns: &NetNs, n: u8, kernel: Kernel, net: String, dev: &str, extra: &str) -> Uml {
    let mut cfg = UmlConfig::with_kernel(&format!("nat{n}"), kernel);
    cfg.netns = Some(ns.name().to_string());
    cfg.extra_args.push(net);
    cfg.init_script = guest_script(dev, extra);
    cfg.lifetime = UML_LIFETIME;
    cfg.mem = "128M".to_string();
    segment::boot(cfg)
}

/// The lease line a guest printed.
fn lease(uml: &Uml) -> String {
    uml.console()
        .lines()
        .find_map(|l| {
            l.trim_end()
                .strip_prefix("TEST: lease ")
                .map(str::to_string)
        })
        .unwrap_or_default()
}

/// GET / through the host port forward, from inside `ns`: the body.
fn fetch_forwarded(ns: &NetNs) -> String {
    ns.run_in(|| {
        let mut s = match TcpStream::connect(("127.0.0.1", FWD_PORT)) {
            Ok(s) => s,
            Err(e) => return format!("connect: {e}"),
        };
        let _ = s.set_read_timeout(Some(Duration::from_secs(10)));
        let _ = s.write_all(b"GET /index.html HTTP/1.0\r\n\r\n");
        let mut body = String::new();
        let _ = s.read_to_string(&mut body);
        body
    })
}

/// A 6.1 guest on the daemon transport and a 7.2 guest on bess, behind one
/// unprivileged switch's NAT port: DHCP, DNS, an outside page, and a host
/// port forward to the first guest.
#[test]
fn two_guests_reach_the_outside_through_the_nat_port() {
    require!(
        Requirement::Root,
        Requirement::LinuxUml,
        Requirement::LinuxUml7,
        Requirement::NetNs
    );
    require!(
        Requirement::Program("python3", "python3"),
        Requirement::Program("busybox", "busybox"),
        Requirement::Program("setpriv", "util-linux"),
        Requirement::Program("bash", "bash")
    );
    if !segment::switch_is_ours("--nat is not an option of the C switch") {
        return;
    }
    let _one = segment::one_at_a_time();
    let dir = new_temp_dir();
    let ns = NetNs::new("nat");
    let (_servers, _etc) = outside_world(&ns, dir.path());
    let nat = format!("hostfwd=tcp::{FWD_PORT}-10.0.2.15:8080");
    let mut sw = start_switch(&ns, dir.path(), &nat);

    let ctl = dir.path().join("sw.ctl");
    let net = format!("eth0=daemon,{},unix,{}", mac(1), ctl.display());
    let extra = format!("{}\n{}", loopback_fetch(), guest_one_server());
    let mut a = boot(&ns, 1, Kernel::Linux61, net, "eth0", &extra);
    for step in ["dhcp", "dns", "fetch", "loopback", "httpd"] {
        expect_step_ok(&mut a, step, GUEST_STEP, &mut sw, &[]);
    }
    assert_eq!(lease(&a), "10.0.2.15 10.0.2.2 10.0.2.3", "{}", a.console());
    let body = fetch_forwarded(&ns);
    assert!(
        body.contains(GUEST_PAGE_TEXT),
        "the host port forward did not reach guest 1: {body:?}\n{}",
        sw.report()
    );

    let bess = dir.path().join("sw.bess");
    let net = format!("vec0:transport=bess,dst={},mac={}", bess.display(), mac(2));
    let mut b = boot(&ns, 2, Kernel::Linux7, net, "vec0", "");
    for step in ["dhcp", "dns", "fetch"] {
        expect_step_ok(&mut b, step, GUEST_STEP, &mut sw, &[&a]);
    }
    assert_eq!(lease(&b), "10.0.2.16 10.0.2.2 10.0.2.3", "{}", b.console());
    halt(&mut b, UML_EXIT);
    halt(&mut a, UML_EXIT);
    assert!(sw.running(), "switch ended:\n{}", sw.report());
    eprintln!("--- switch output ---\n{}", sw.output());
}

/// `host-loopback=off`: a 7.2 guest still reaches the outside, but no
/// longer the namespace's loopback through the gateway.
#[test]
fn host_loopback_off_keeps_guests_off_the_hosts_loopback() {
    require!(
        Requirement::Root,
        Requirement::LinuxUml7,
        Requirement::NetNs,
        Requirement::Program("python3", "python3"),
        Requirement::Program("busybox", "busybox"),
        Requirement::Program("setpriv", "util-linux"),
        Requirement::Program("bash", "bash")
    );
    if !segment::switch_is_ours("--nat is not an option of the C switch") {
        return;
    }
    let _one = segment::one_at_a_time();
    let dir = new_temp_dir();
    let ns = NetNs::new("natlo");
    let (_servers, _etc) = outside_world(&ns, dir.path());
    let mut sw = start_switch(&ns, dir.path(), "host-loopback=off");
    let bess = dir.path().join("sw.bess");
    let net = format!("vec0:transport=bess,dst={},mac={}", bess.display(), mac(3));
    let mut c = boot(&ns, 3, Kernel::Linux7, net, "vec0", &loopback_fetch());
    for step in ["dhcp", "dns", "fetch"] {
        expect_step_ok(&mut c, step, GUEST_STEP, &mut sw, &[]);
    }
    assert!(
        c.wait_console("TEST: loopback rc=", GUEST_STEP),
        "{}",
        c.console()
    );
    let console = c.console();
    assert!(
        console.lines().any(|l| {
            let l = l.trim_end();
            l.starts_with("TEST: loopback rc=") && !l.ends_with("rc=0")
        }),
        "the guest reached the host's loopback through the gateway:\n{console}"
    );
    halt(&mut c, UML_EXIT);
}

/// `ipv6=on`: a 7.2 guest configures an address of fec0::/64 from the
/// gateway's router advertisements, pings the gateway fec0::2 and fetches
/// a page from a server on an IPv6 veth address of the namespace.
#[test]
fn ipv6_guest_reaches_the_outside() {
    require!(
        Requirement::Root,
        Requirement::LinuxUml7,
        Requirement::NetNs,
        Requirement::Program("python3", "python3"),
        Requirement::Program("busybox", "busybox"),
        Requirement::Program("setpriv", "util-linux"),
        Requirement::Program("bash", "bash"),
        Requirement::Program("ping", "iputils-ping")
    );
    if !segment::switch_is_ours("--nat is not an option of the C switch") {
        return;
    }
    let _one = segment::one_at_a_time();
    let dir = new_temp_dir();
    let ns = NetNs::new("nat6");
    let (mut servers, _etc) = outside_world(&ns, dir.path());
    let out = ns.ip(&["addr", "add", "fd00:77::1/64", "dev", "natv0", "nodad"]);
    assert!(out.success(), "{out}");
    let http6 = ns
        .exec("python3")
        .args([
            "-m",
            "http.server",
            "--bind",
            "fd00:77::1",
            "8002",
            "--directory",
        ])
        .arg(dir.path().join("www"))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    servers.0.push(http6);
    let up = wait_for(Duration::from_secs(20), || {
        ns.run_in(|| TcpStream::connect(("fd00:77::1", 8002)).is_ok())
    });
    assert!(up, "the namespace's IPv6 HTTP server did not start");
    let mut sw = start_switch(&ns, dir.path(), "ipv6=on");
    assert!(
        sw.output()
            .contains("IPv6 fec0::/64, gateway fec0::2, DNS fec0::3"),
        "{}",
        sw.report()
    );
    let extra = format!(
        "i=0; while [ $i -lt 100 ] && ! ip -6 addr show dev vec0 | grep -q 'inet6 fec0:'; \
         do sleep 0.2; i=$((i+1)); done\n\
         ip -6 addr show dev vec0; ip -6 route\n\
         ip -6 addr show dev vec0 | grep -q 'inet6 fec0:'; echo \"TEST: slaac rc=$?\"\n\
         ping -6 -c 1 -W 5 fec0::2; echo \"TEST: ping6 rc=$?\"\n\
         {}\
         cat /tmp/p6; grep -q {PAGE_TEXT} /tmp/p6; echo \"TEST: fetch6 rc=$?\"",
        guestnet::http_get("fd00:77::1", 8002, PAGE, "/tmp/p6")
    );
    let bess = dir.path().join("sw.bess");
    let net = format!("vec0:transport=bess,dst={},mac={}", bess.display(), mac(4));
    let mut g = boot(&ns, 4, Kernel::Linux7, net, "vec0", &extra);
    for step in ["dhcp", "fetch", "slaac", "ping6", "fetch6"] {
        expect_step_ok(&mut g, step, GUEST_STEP, &mut sw, &[]);
    }
    halt(&mut g, UML_EXIT);
}
