//! `uml_net` run the way the UML kernel runs it (`docs/uml_net.md` §2–§4,
//! issue 4), each test in a network namespace of its own:
//!
//! * `4 tuntap up GATE` with stdout = one end of an `AF_UNIX SOCK_DGRAM`
//!   socketpair: exactly one datagram (16-byte NUL-padded name, text, NUL)
//!   carrying the tap's fd as one `SCM_RIGHTS` message; the tap is a
//!   non-persistent `IFF_TAP|IFF_NO_PI` device owned by the caller's real
//!   uid, has GATE/32, is up, `ip_forward` is 1 in the namespace, and the
//!   tap disappears when the received fd is closed;
//! * `4 add|del DEV ADDR MASK` with stdout = a pipe, read exactly as the
//!   kernel's `read_output` reads it (one `read` for the length, one for
//!   the data, then the pipe is closed): 4-byte host-order length + text +
//!   NUL, which must arrive in time for those reads; the host route `ADDR dev DEV scope link`, DEV's
//!   `proxy_arp` and a proxy neighbour entry on every *other* interface
//!   with a route containing ADDR appear, and all vanish again on `del`;
//! * hostile argument vectors (shell metacharacters in every position,
//!   `lo`, a veth, another user's tap, bad addresses and netmasks, overlong
//!   names, wrong versions, missing arguments, unknown transports, ethertap
//!   and slip on this driverless host) are refused with the expected
//!   framing and exit status and change nothing in the namespace (links,
//!   addresses, routes of every table, neighbours and proxies, rules,
//!   `ip_forward`, every `proxy_arp` and `forwarding`);
//! * a hostile environment (`BASH_ENV`, `ENV`, `LD_PRELOAD`,
//!   `MODPROBE_OPTIONS`, `PATH`, `IFS`) has no effect;
//! * a setuid-root copy run by an unprivileged user (`setpriv`) creates a
//!   tap owned by that user, may `add`/`del` on it, and is refused on
//!   root's tap and by a third user;
//! * the reply framing matches Debian's C helper (`/usr/bin/uml_net`) for
//!   the same argv (structure only, not the text).
//!
//! The helper under test is this workspace's `uml_net`, or the program
//! named by `UML_NET_UNDER_TEST` (e.g. `/usr/bin/uml_net`, Debian's C
//! helper, which needs net-tools). The C helper fails the tests that
//! specify the rewrite's fixes (ownership, validation, environment); that
//! is expected. The policy file `/etc/uml-utilities/uml_net.conf` is never
//! created here (it is system-wide; it has unit tests).
//!
//! Safety: every interface, route, neighbour entry and sysctl touched here
//! lives in a namespace the test created (the helper always runs under
//! `ip netns exec`); the namespaces are deleted by their guards.

// Test code: a failed setup step should abort the test with its message.
#![allow(clippy::expect_used, clippy::unwrap_used)]
#![forbid(unsafe_code)]

use std::fmt::Write as _;
use std::fs;
use std::io::{IoSliceMut, Read, Write};
use std::os::fd::{AsRawFd, OwnedFd, RawFd};
use std::os::unix::fs::PermissionsExt;
use std::os::unix::net::{UnixDatagram, UnixStream};
use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::thread;
use std::time::{Duration, Instant};

use nix::errno::Errno;
use nix::fcntl::{fcntl, FcntlArg, FdFlag, OFlag};
use nix::sys::signal::{killpg, Signal};
use nix::sys::socket::{recvmsg, ControlMessageOwned, MsgFlags};
use nix::unistd::Pid;
use uml_integration_tests::{
    binary_under_test, find_in_path, require, run_with_timeout, NetNs, Requirement, RunOutput,
};

/// Environment variable naming the helper to test instead of ours.
const HELPER_ENV: &str = "UML_NET_UNDER_TEST";
/// Debian's C helper.
const C_HELPER: &str = "/usr/bin/uml_net";
/// Bound of one helper run.
const RUN_LIMIT: Duration = Duration::from_secs(20);
/// Bound of every other poll (tap gone, links settled).
const SETTLE: Duration = Duration::from_secs(5);
/// `IFNAMSIZ`.
const IFNAMSIZ: usize = 16;
/// The kernel receives the `tuntap up` reply into one page and keeps the
/// last byte for a terminating NUL (`docs/uml_net.md` §4.1).
const KERNEL_REPLY_MAX: usize = 4095;
/// The gateway address used throughout.
const GATE: &str = "10.0.0.254";
/// The guest address used throughout.
const ADDR: &str = "10.0.0.1";
/// Its netmask.
const MASK: &str = "255.255.255.0";

// ---------------------------------------------------------------------------
// The helper and how it is run
// ---------------------------------------------------------------------------

/// The helper binary under test.
#[derive(Debug, Clone)]
struct Helper {
    path: PathBuf,
    /// Debian's C helper (the tests of the rewrite's fixes fail on it).
    is_c: bool,
}

fn helper() -> Helper {
    let (path, is_c) = binary_under_test("uml_net", HELPER_ENV, C_HELPER);
    Helper { path, is_c }
}

/// How the helper's fd 1 is connected (`docs/uml_net.md` §2.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Out {
    /// One end of an `AF_UNIX SOCK_DGRAM` socketpair (`tuntap up`).
    Datagram,
    /// The write end of a pipe (`add`, `del`, `slip`), read exactly like
    /// the kernel's `read_output` does (see [`kernel_read_output`]).
    Pipe,
    /// One end of an `AF_UNIX SOCK_STREAM` socketpair (`ethertap`).
    Stream,
}

/// Optional parts of a run.
#[derive(Debug, Default)]
struct Opts {
    /// Run as this uid (and gid) through `setpriv`, started as root.
    as_user: Option<u32>,
    /// Extra environment (of `ip netns exec`, which passes it on).
    env: Vec<(String, String)>,
    /// fd 0 (default `/dev/null`).
    stdin: Option<OwnedFd>,
}

/// A descriptor received with `SCM_RIGHTS`, closed on drop.
#[derive(Debug)]
struct Received(RawFd);

impl Drop for Received {
    fn drop(&mut self) {
        let _ = nix::unistd::close(self.0);
    }
}

/// One datagram read from the helper's stdout socket.
#[derive(Debug)]
struct Datagram {
    data: Vec<u8>,
    fds: Vec<Received>,
    /// Number of `SCM_RIGHTS` control messages.
    rights_msgs: usize,
    /// Other control messages.
    other_cmsgs: usize,
    /// `MSG_TRUNC` or `MSG_CTRUNC` was set.
    truncated: bool,
}

/// Everything one helper run produced.
#[derive(Debug)]
struct HelperRun {
    argv: Vec<String>,
    code: Option<i32>,
    signal: Option<i32>,
    timed_out: bool,
    stderr: Vec<u8>,
    /// `Out::Datagram`: every datagram, in order.
    datagrams: Vec<Datagram>,
    /// `Out::Pipe` / `Out::Stream`: every byte read.
    stream: Vec<u8>,
    /// `Out::Pipe`: what the kernel's `read_output` would have logged.
    kernel_read_error: Option<String>,
}

impl HelperRun {
    fn stderr_str(&self) -> String {
        String::from_utf8_lossy(&self.stderr).into_owned()
    }

    /// All fds received in all datagrams.
    fn fd_count(&self) -> usize {
        self.datagrams.iter().map(|d| d.fds.len()).sum()
    }

    /// A description for failure messages.
    fn show(&self) -> String {
        let mut s = format!(
            "uml_net {:?}: code={:?} signal={:?} timed_out={}\n",
            self.argv, self.code, self.signal, self.timed_out
        );
        for (i, d) in self.datagrams.iter().enumerate() {
            let _ = writeln!(
                s,
                "datagram {i}: {} bytes, {} fd(s) in {} SCM_RIGHTS, {} other cmsg(s), truncated={}: {:?}",
                d.data.len(),
                d.fds.len(),
                d.rights_msgs,
                d.other_cmsgs,
                d.truncated,
                String::from_utf8_lossy(&d.data)
            );
        }
        if let Some(e) = &self.kernel_read_error {
            let _ = writeln!(s, "kernel read_output: {e}");
        }
        if !self.stream.is_empty() {
            let _ = writeln!(
                s,
                "stdout bytes ({}): {:02x?}\nstdout text: {:?}",
                self.stream.len(),
                &self.stream[..self.stream.len().min(64)],
                String::from_utf8_lossy(&self.stream)
            );
        }
        let _ = write!(s, "stderr: {:?}", self.stderr_str());
        s
    }
}

/// `setpriv` from util-linux.
fn setpriv() -> PathBuf {
    find_in_path("setpriv").expect("setpriv (util-linux) not found")
}

/// Runs `program ARGS` in `ns` (`ip netns exec`) the way the kernel does:
/// stdout connected as `out`, stdin `/dev/null` unless given, stderr
/// captured; bounded by [`RUN_LIMIT`] (the process group is killed then).
fn run_helper(ns: &NetNs, program: &Path, args: &[&str], out: Out, opts: Opts) -> HelperRun {
    let mut dgram = None;
    let mut reader: Option<ReadAll> = None;
    let mut child = {
        let mut cmd = match opts.as_user {
            Some(uid) => {
                let mut c = ns.exec(setpriv());
                c.arg(format!("--reuid={uid}"))
                    .arg(format!("--regid={uid}"))
                    .arg("--clear-groups")
                    .arg(program);
                c
            }
            None => ns.exec(program),
        };
        cmd.args(args)
            .stderr(Stdio::piped())
            .stdin(opts.stdin.map_or_else(Stdio::null, Stdio::from))
            .process_group(0);
        for (k, v) in &opts.env {
            cmd.env(k, v);
        }
        match out {
            Out::Datagram => {
                let (ours, theirs) = UnixDatagram::pair().expect("socketpair");
                cmd.stdout(Stdio::from(OwnedFd::from(theirs)));
                dgram = Some(ours);
            }
            Out::Pipe => {
                let (r, w) = nix::unistd::pipe2(OFlag::O_CLOEXEC).expect("pipe");
                cmd.stdout(Stdio::from(w));
                reader = Some(spawn_kernel_read_output(r));
            }
            Out::Stream => {
                let (ours, theirs) = UnixStream::pair().expect("socketpair");
                cmd.stdout(Stdio::from(OwnedFd::from(theirs)));
                reader = Some(spawn_read_all(Box::new(ours)));
            }
        }
        cmd.spawn()
            .unwrap_or_else(|e| panic!("cannot start {}: {e}", program.display()))
        // `cmd` (holding our copy of the child's stdout) is dropped here,
        // so the pipe and stream readers see EOF when the child exits.
    };
    let stderr_reader = spawn_read_all(Box::new(child.stderr.take().expect("stderr")));

    let deadline = Instant::now() + RUN_LIMIT;
    let (status, timed_out) = loop {
        match child.try_wait() {
            Ok(Some(s)) => break (Some(s), false),
            Ok(None) if Instant::now() >= deadline => {
                if let Ok(pid) = i32::try_from(child.id()) {
                    let _ = killpg(Pid::from_raw(pid), Signal::SIGKILL);
                }
                let _ = child.kill();
                break (child.wait().ok(), true);
            }
            Ok(None) => thread::sleep(Duration::from_millis(10)),
            Err(e) => panic!("waiting for uml_net: {e}"),
        }
    };
    let grace = Instant::now() + Duration::from_secs(2);
    let mut run = HelperRun {
        argv: args.iter().map(|a| a.to_string()).collect(),
        code: status.and_then(|s| s.code()),
        signal: status.and_then(|s| s.signal()),
        timed_out,
        stderr: stderr_reader.finish(grace).0,
        datagrams: dgram.map(|s| recv_all(&s)).unwrap_or_default(),
        kernel_read_error: None,
        stream: Vec::new(),
    };
    if let Some((bytes, err)) = reader.map(|r| r.finish(grace)) {
        run.stream = bytes;
        run.kernel_read_error = err;
    }
    run
}

/// A thread reading the helper's output: the bytes, and for
/// `kernel_read_output` the error the kernel would have logged.
struct ReadAll(thread::JoinHandle<(Vec<u8>, Option<String>)>);

fn spawn_read_all(mut r: Box<dyn Read + Send>) -> ReadAll {
    ReadAll(thread::spawn(move || {
        let mut buf = Vec::new();
        let _ = r.read_to_end(&mut buf);
        (buf, None)
    }))
}

/// The kernel's buffer for the helper's output (a page).
const KERNEL_PAGE: usize = 4096;

/// Reads the pipe exactly as the kernel's `read_output`
/// (`arch/um/drivers/net_user.c`) does, starting at once (the kernel is
/// blocked in `read` while the helper works): **one** `read` of the 4-byte
/// length, then single `read`s of the data in page-sized pieces, each of
/// which must return exactly what was asked for; then the pipe is closed
/// at once (the kernel closes it before `helper_wait`), so a helper that
/// writes more afterwards gets `EPIPE`. A helper that splits its reply
/// into several `write`s can be caught here as the kernel would catch it
/// (`read_output - read of data failed, read only X of Y bytes`).
fn kernel_read_output(mut r: impl Read) -> (Vec<u8>, Option<String>) {
    let mut got = Vec::new();
    let mut len = [0u8; 4];
    let n = match r.read(&mut len) {
        Ok(n) => n,
        Err(e) => return (got, Some(format!("read of length failed, {e}"))),
    };
    got.extend_from_slice(&len[..n]);
    if n != 4 {
        return (
            got,
            Some(format!("read of length failed, read only {n} of 4 bytes")),
        );
    }
    let mut remain = i32::from_ne_bytes(len);
    let mut page = vec![0u8; KERNEL_PAGE];
    while remain != 0 {
        // The kernel's `expected`: remain < len ? remain : len (a negative
        // length makes it read "remain" bytes, i.e. fail).
        let expected = usize::try_from(remain).map_or(0, |r| r.min(KERNEL_PAGE));
        let n = match r.read(&mut page[..expected]) {
            Ok(n) => n,
            Err(e) => return (got, Some(format!("read of data failed, {e}"))),
        };
        got.extend_from_slice(&page[..n]);
        if n != expected || expected == 0 {
            return (
                got,
                Some(format!(
                    "read of data failed, read only {n} of {expected} bytes"
                )),
            );
        }
        remain -= i32::try_from(n).unwrap_or(i32::MAX);
    }
    (got, None)
}

fn spawn_kernel_read_output(r: OwnedFd) -> ReadAll {
    ReadAll(thread::spawn(move || kernel_read_output(fs::File::from(r))))
}

impl ReadAll {
    /// The result, once the reader is done (before `deadline`).
    fn finish(self, deadline: Instant) -> (Vec<u8>, Option<String>) {
        while !self.0.is_finished() && Instant::now() < deadline {
            thread::sleep(Duration::from_millis(10));
        }
        assert!(
            self.0.is_finished(),
            "no EOF on the helper's output: a process still holds it"
        );
        self.0.join().expect("reader thread")
    }
}

/// Every datagram queued on `sock` (the helper has exited).
fn recv_all(sock: &UnixDatagram) -> Vec<Datagram> {
    let mut out = Vec::new();
    loop {
        let mut buf = vec![0u8; 65536];
        let mut cmsg = nix::cmsg_space!([RawFd; 8]);
        let (bytes, fds, rights_msgs, other_cmsgs, truncated) = {
            let mut iov = [IoSliceMut::new(&mut buf)];
            match recvmsg::<()>(
                sock.as_raw_fd(),
                &mut iov,
                Some(&mut cmsg),
                MsgFlags::MSG_DONTWAIT | MsgFlags::MSG_CMSG_CLOEXEC,
            ) {
                Ok(msg) => {
                    let mut fds = Vec::new();
                    let (mut rights, mut other) = (0, 0);
                    let truncated = msg
                        .flags
                        .intersects(MsgFlags::MSG_TRUNC | MsgFlags::MSG_CTRUNC);
                    if let Ok(cmsgs) = msg.cmsgs() {
                        for c in cmsgs {
                            match c {
                                ControlMessageOwned::ScmRights(v) => {
                                    rights += 1;
                                    fds.extend(v.into_iter().map(Received));
                                }
                                _ => other += 1,
                            }
                        }
                    }
                    (msg.bytes, fds, rights, other, truncated)
                }
                Err(Errno::EAGAIN) => break,
                Err(e) => panic!("recvmsg on the helper's socket: {e}"),
            }
        };
        buf.truncate(bytes);
        out.push(Datagram {
            data: buf,
            fds,
            rights_msgs,
            other_cmsgs,
            truncated,
        });
    }
    out
}

// ---------------------------------------------------------------------------
// Reply decoding
// ---------------------------------------------------------------------------

/// `bytes` must be text + one terminating NUL (and no other NUL); returns
/// the text.
fn nul_text(bytes: &[u8]) -> Result<String, String> {
    match bytes.split_last() {
        Some((0, text)) if !text.contains(&0) => {
            String::from_utf8(text.to_vec()).map_err(|_| format!("text is not UTF-8: {text:02x?}"))
        }
        Some((0, _)) => Err(format!("NUL inside the text: {bytes:02x?}")),
        Some(_) => Err(format!("text not NUL-terminated: {bytes:02x?}")),
        None => Err("no text at all (not even the NUL)".to_string()),
    }
}

/// The length-prefixed output (`docs/uml_net.md` §3): 4-byte host-order
/// `used`, then exactly `used` bytes of text + NUL (nothing when `used` is
/// 0). Returns the text.
fn length_prefixed(bytes: &[u8]) -> Result<String, String> {
    let Some((len, rest)) = bytes.split_first_chunk::<4>() else {
        return Err(format!("shorter than the 4-byte length: {bytes:02x?}"));
    };
    let used = i32::from_ne_bytes(*len);
    if usize::try_from(used).ok() != Some(rest.len()) {
        return Err(format!(
            "length prefix {used} but {} bytes follow",
            rest.len()
        ));
    }
    if used == 0 {
        return Ok(String::new());
    }
    nul_text(rest)
}

/// `text` is exactly one non-empty line (a refusal).
fn one_line(text: &str) -> Result<(), String> {
    if text.lines().count() == 1 && !text.trim().is_empty() {
        Ok(())
    } else {
        Err(format!("expected a one-line message, got {text:?}"))
    }
}

/// A successful `tuntap up`.
#[derive(Debug)]
struct Tap {
    name: String,
    text: String,
    fd: Received,
}

/// Checks a `tuntap up` success reply (`docs/uml_net.md` §4.1 step 7, §7,
/// N3) and takes the tap's fd out of it.
fn take_tap(mut run: HelperRun) -> Tap {
    let shown = run.show();
    assert!(
        !run.timed_out && run.signal.is_none() && run.code == Some(0),
        "tuntap up did not exit 0:\n{shown}"
    );
    assert_eq!(
        run.datagrams.len(),
        1,
        "tuntap up must send exactly one datagram:\n{shown}"
    );
    let mut d = run.datagrams.remove(0);
    assert!(!d.truncated, "reply truncated:\n{shown}");
    assert!(
        d.rights_msgs == 1 && d.fds.len() == 1 && d.other_cmsgs == 0,
        "expected one SCM_RIGHTS message with one fd:\n{shown}"
    );
    assert!(
        d.data.len() > IFNAMSIZ && d.data.len() <= KERNEL_REPLY_MAX,
        "reply of {} bytes (the kernel reads at most {KERNEL_REPLY_MAX}):\n{shown}",
        d.data.len()
    );
    let (field, rest) = d.data.split_at(IFNAMSIZ);
    let len = field.iter().position(|&b| b == 0).unwrap_or(IFNAMSIZ);
    assert!(
        (1..IFNAMSIZ).contains(&len) && field[len..].iter().all(|&b| b == 0),
        "name field is not a NUL-padded name: {field:02x?}\n{shown}"
    );
    let name = String::from_utf8(field[..len].to_vec()).expect("name is UTF-8");
    assert!(
        name.bytes().all(|b| b.is_ascii_alphanumeric()),
        "odd interface name {name:?}\n{shown}"
    );
    let text = nul_text(rest).unwrap_or_else(|e| panic!("{e}\n{shown}"));
    let fd = d.fds.remove(0);
    Tap { name, text, fd }
}

/// Checks an `add`/`del` reply: exit `code`, length-prefixed text on the
/// pipe, nothing else. Returns the text.
fn expect_framed(run: &HelperRun, code: i32) -> String {
    let shown = run.show();
    assert!(
        !run.timed_out && run.signal.is_none() && run.code == Some(code),
        "expected exit status {code}:\n{shown}"
    );
    if let Some(e) = &run.kernel_read_error {
        panic!("the kernel would log `read_output - {e}`\n{shown}");
    }
    length_prefixed(&run.stream).unwrap_or_else(|e| panic!("{e}\n{shown}"))
}

/// For the rewrite (not the C helper): every line of the text describes
/// one action as `* ...`.
fn check_action_lines(h: &Helper, text: &str, mentions: &str) {
    if h.is_c {
        return;
    }
    assert!(
        !text.is_empty() && text.ends_with('\n'),
        "text {text:?} should be newline-terminated lines"
    );
    for line in text.lines() {
        assert!(
            line.starts_with("* "),
            "line {line:?} of {text:?} does not describe an action as `* ...`"
        );
    }
    assert!(
        text.contains(mentions),
        "{text:?} does not mention {mentions}"
    );
}

// ---------------------------------------------------------------------------
// Namespace set-up and observation
// ---------------------------------------------------------------------------

/// `ip -n NS ARGS`, which must succeed; returns stdout.
fn ip_ok(ns: &NetNs, args: &[&str]) -> String {
    let out = ns.ip(args);
    assert!(out.success(), "ip {args:?} failed: {out}");
    out.stdout_str()
}

/// Runs `program ARGS` in `ns`, bounded.
fn ns_run(ns: &NetNs, program: &str, args: &[&str]) -> RunOutput {
    run_with_timeout(ns.exec(program).args(args), Duration::from_secs(10))
}

/// A file under `/proc/sys` or `/sys` as seen in `ns`, trimmed.
fn ns_read(ns: &NetNs, path: &str) -> String {
    let out = ns_run(ns, "cat", &[path]);
    assert!(out.success(), "cat {path} in {}: {out}", ns.name());
    out.stdout_str().trim().to_string()
}

fn ip_forward(ns: &NetNs) -> String {
    ns_read(ns, "/proc/sys/net/ipv4/ip_forward")
}

fn proxy_arp(ns: &NetNs, dev: &str) -> String {
    ns_read(ns, &format!("/proc/sys/net/ipv4/conf/{dev}/proxy_arp"))
}

/// A namespace with IPv6 off (no addresses that change on their own) and
/// `ip_forward` 0 (so that the helper setting it is visible).
fn fresh_ns(tag: &str) -> NetNs {
    let ns = NetNs::new(tag);
    for key in [
        "net.ipv6.conf.all.disable_ipv6",
        "net.ipv6.conf.default.disable_ipv6",
    ] {
        // Absent when the host runs without IPv6: nothing to quieten then.
        let _ = ns.sysctl(key, "1");
    }
    ns.sysctl("net.ipv4.ip_forward", "0")
        .expect("set ip_forward in the namespace");
    assert_eq!(ip_forward(&ns), "0");
    ns
}

/// Two veth pairs in `ns`: veth0 10.0.0.100/24 and its peer veth1
/// 10.0.0.200/16 (both routes contain 10.0.0.1: proxy entries expected on
/// both), veth2 192.168.5.1/24 and its peer veth3 without an address (no
/// proxy entries expected). Waits until the links have settled.
fn add_veths(ns: &NetNs) {
    for step in [
        &[
            "link", "add", "veth0", "type", "veth", "peer", "name", "veth1",
        ][..],
        &[
            "link", "add", "veth2", "type", "veth", "peer", "name", "veth3",
        ],
        &["addr", "add", "10.0.0.100/24", "dev", "veth0"],
        &["addr", "add", "10.0.0.200/16", "dev", "veth1"],
        &["addr", "add", "192.168.5.1/24", "dev", "veth2"],
        &["link", "set", "veth0", "up"],
        &["link", "set", "veth1", "up"],
        &["link", "set", "veth2", "up"],
        &["link", "set", "veth3", "up"],
    ] {
        ip_ok(ns, step);
    }
    settled_snapshot(ns);
}

/// A tap not created by the helper: `ip tuntap add dev NAME mode tap user UID`.
fn add_foreign_tap(ns: &NetNs, name: &str, uid: u32) {
    ip_ok(
        ns,
        &[
            "tuntap",
            "add",
            "dev",
            name,
            "mode",
            "tap",
            "user",
            &uid.to_string(),
        ],
    );
}

/// The namespace's whole network state as text: links (with tun details
/// and owners), addresses, routes of every table, rules, neighbours and
/// proxy entries, `ip_forward`, every `proxy_arp` and `forwarding`.
fn snapshot(ns: &NetNs) -> String {
    let mut s = String::new();
    for args in [
        &["-d", "link", "show"][..],
        &["addr", "show"],
        &["route", "show", "table", "all"],
        &["rule", "show"],
        &["neigh", "show"],
        &["neigh", "show", "proxy"],
    ] {
        let _ = writeln!(s, "## ip {}\n{}", args.join(" "), ip_ok(ns, args));
    }
    let out = ns_run(
        ns,
        "sh",
        &[
            "-c",
            "for f in /proc/sys/net/ipv4/ip_forward /proc/sys/net/ipv4/conf/*/proxy_arp \
             /proc/sys/net/ipv4/conf/*/forwarding; do printf '%s=%s\\n' \"$f\" \"$(cat \"$f\")\"; done",
        ],
    );
    assert!(out.success(), "sysctl dump: {out}");
    s.push_str("## sysctl\n");
    s.push_str(&out.stdout_str());
    s
}

/// A snapshot once two in a row (200 ms apart) agree: link state changes
/// (carrier, operstate) are applied asynchronously by the kernel.
fn settled_snapshot(ns: &NetNs) -> String {
    let deadline = Instant::now() + SETTLE;
    let mut last = snapshot(ns);
    loop {
        thread::sleep(Duration::from_millis(200));
        let now = snapshot(ns);
        if now == last || Instant::now() >= deadline {
            return now;
        }
        last = now;
    }
}

/// `snapshot` with MAC addresses replaced (they are random per namespace)
/// and whitespace normalised, to compare two namespaces.
fn masked(snapshot: &str) -> String {
    let is_mac = |w: &str| {
        w.len() == 17
            && w.split(':').count() == 6
            && w.split(':')
                .all(|p| p.len() == 2 && p.bytes().all(|b| b.is_ascii_hexdigit()))
    };
    snapshot
        .lines()
        .map(|l| {
            l.split_whitespace()
                .map(|w| if is_mac(w) { "MAC" } else { w })
                .collect::<Vec<_>>()
                .join(" ")
        })
        .collect::<Vec<_>>()
        .join("\n")
}

/// The lines of `before` and `after` that differ, for messages.
fn diff(before: &str, after: &str) -> String {
    let b: Vec<&str> = before.lines().collect();
    let a: Vec<&str> = after.lines().collect();
    let mut s = String::new();
    for l in &b {
        if !a.contains(l) {
            let _ = writeln!(s, "- {l}");
        }
    }
    for l in &a {
        if !b.contains(l) {
            let _ = writeln!(s, "+ {l}");
        }
    }
    s
}

/// Whitespace-normalised lines of `text` that start with `prefix` + space.
fn lines_for(text: &str, prefix: &str) -> Vec<String> {
    text.lines()
        .map(|l| l.split_whitespace().collect::<Vec<_>>().join(" "))
        .filter(|l| l.starts_with(&format!("{prefix} ")))
        .collect()
}

/// The main-table routes for exactly `ADDR/32`.
fn host_routes(ns: &NetNs, addr: &str) -> Vec<String> {
    lines_for(
        &ip_ok(ns, &["-4", "route", "show", "exact", &format!("{addr}/32")]),
        addr,
    )
}

/// The proxy neighbour entries for `addr`.
fn proxies(ns: &NetNs, addr: &str) -> Vec<String> {
    let mut v = lines_for(&ip_ok(ns, &["neigh", "show", "proxy"]), addr);
    v.sort();
    v
}

/// Waits (bounded) until `name` no longer exists in `ns`.
fn wait_link_gone(ns: &NetNs, name: &str) -> bool {
    let deadline = Instant::now() + SETTLE;
    loop {
        if !ns.ip(&["link", "show", "dev", name]).success() {
            return true;
        }
        if Instant::now() >= deadline {
            return false;
        }
        thread::sleep(Duration::from_millis(50));
    }
}

/// Checks the tap `tap` in `ns` after `tuntap up GATE` by `uid`
/// (`docs/uml_net.md` §4.1, issue 4): a non-persistent tap without packet
/// information, owned by `uid`, with GATE/32, up, `ip_forward` 1, and the
/// received fd is attached to it.
fn check_new_tap(ns: &NetNs, h: &Helper, tap: &Tap, uid: u32) {
    let name = &tap.name;
    let fdinfo = fs::read_to_string(format!("/proc/self/fdinfo/{}", tap.fd.0))
        .expect("fdinfo of the received fd");
    assert!(
        fdinfo.lines().any(|l| l == format!("iff:\t{name}")),
        "the received fd is not attached to {name}:\n{fdinfo}"
    );
    let details = ip_ok(ns, &["-d", "link", "show", "dev", name]);
    for want in ["tun type tap", "pi off", "persist off"] {
        assert!(details.contains(want), "{name}: no `{want}` in\n{details}");
    }
    let flags = details
        .split_once('<')
        .and_then(|(_, r)| r.split_once('>'))
        .map(|(f, _)| f.split(',').map(str::to_string).collect::<Vec<_>>())
        .unwrap_or_default();
    assert!(
        flags.iter().any(|f| f == "UP"),
        "{name} is not up:\n{details}"
    );
    let addrs = ip_ok(ns, &["-4", "-o", "addr", "show", "dev", name]);
    assert!(
        addrs.contains(&format!("inet {GATE}/32 ")),
        "{name} lacks {GATE}/32:\n{addrs}"
    );
    assert_eq!(ip_forward(ns), "1", "ip_forward not set in the namespace");
    let owner = ns_read(ns, &format!("/sys/class/net/{name}/owner"));
    assert_eq!(
        owner,
        uid.to_string(),
        "{name} must be owned by the caller's real uid {uid} (TUNSETOWNER){}",
        if h.is_c {
            " — the C helper never sets an owner"
        } else {
            ""
        }
    );
}

/// `tuntap up GATE` by `h` in `ns` (as root), checked, fd kept.
fn tuntap_up(ns: &NetNs, h: &Helper) -> Tap {
    let run = run_helper(
        ns,
        &h.path,
        &["4", "tuntap", "up", GATE],
        Out::Datagram,
        Opts::default(),
    );
    take_tap(run)
}

// ---------------------------------------------------------------------------
// tuntap up
// ---------------------------------------------------------------------------

#[test]
fn tuntap_up_replies_with_name_text_and_fd() {
    require!(
        Requirement::Root,
        Requirement::NetNs,
        Requirement::DevNetTun
    );
    let h = helper();
    let ns = fresh_ns("nettap");
    let tap = tuntap_up(&ns, &h);
    eprintln!("tuntap up: {} {:?}", tap.name, tap.text);
    assert_eq!(tap.name, "tap0", "first tap of a fresh namespace");
    check_new_tap(&ns, &h, &tap, 0);
    check_action_lines(&h, &tap.text, GATE);

    // Only the received fd keeps the tap alive (the helper has exited).
    let name = tap.name.clone();
    drop(tap);
    assert!(
        wait_link_gone(&ns, &name),
        "{name} still exists after its fd was closed:\n{}",
        ip_ok(&ns, &["-d", "link"])
    );
}

#[test]
fn tuntap_up_twice_gives_two_taps() {
    require!(
        Requirement::Root,
        Requirement::NetNs,
        Requirement::DevNetTun
    );
    let h = helper();
    let ns = fresh_ns("nettap2");
    let a = tuntap_up(&ns, &h);
    let b = tuntap_up(&ns, &h);
    assert_ne!(a.name, b.name);
    check_new_tap(&ns, &h, &a, 0);
    check_new_tap(&ns, &h, &b, 0);
    let (na, nb) = (a.name.clone(), b.name.clone());
    drop(a);
    assert!(wait_link_gone(&ns, &na), "{na} survived its fd");
    assert!(
        ns.ip(&["link", "show", "dev", &nb]).success(),
        "{nb} vanished with {na}"
    );
    drop(b);
    assert!(wait_link_gone(&ns, &nb), "{nb} survived its fd");
}

// ---------------------------------------------------------------------------
// add / del
// ---------------------------------------------------------------------------

/// `add`/`del` on the caller's tap as the kernel runs them.
fn add_del_cycle(ns: &NetNs, h: &Helper, tap: &str, opts: impl Fn() -> Opts) {
    assert!(host_routes(ns, ADDR).is_empty());
    assert!(proxies(ns, ADDR).is_empty());
    let add = run_helper(
        ns,
        &h.path,
        &["4", "add", tap, ADDR, MASK],
        Out::Pipe,
        opts(),
    );
    let text = expect_framed(&add, 0);
    eprintln!("add: {text:?}");
    check_action_lines(h, &text, ADDR);
    let routes = host_routes(ns, ADDR);
    assert!(
        routes.len() == 1
            && routes[0].starts_with(&format!("{ADDR} dev {tap} "))
            && routes[0].contains(" scope link"),
        "expected the route `{ADDR} dev {tap} scope link`, got {routes:?}\n{}",
        add.show()
    );
    assert_eq!(
        proxy_arp(ns, tap),
        "1",
        "proxy_arp of {tap}\n{}",
        add.show()
    );
    assert_eq!(
        proxies(ns, ADDR),
        [
            format!("{ADDR} dev veth0 proxy"),
            format!("{ADDR} dev veth1 proxy")
        ],
        "proxy entries on the interfaces whose routes contain {ADDR} (not on {tap}, veth2, veth3, lo)\n{}",
        add.show()
    );

    let del = run_helper(
        ns,
        &h.path,
        &["4", "del", tap, ADDR, MASK],
        Out::Pipe,
        opts(),
    );
    let text = expect_framed(&del, 0);
    eprintln!("del: {text:?}");
    check_action_lines(h, &text, ADDR);
    assert!(
        host_routes(ns, ADDR).is_empty(),
        "route left after del: {:?}\n{}",
        host_routes(ns, ADDR),
        del.show()
    );
    assert_eq!(proxy_arp(ns, tap), "0", "proxy_arp of {tap} after del");
    assert!(
        proxies(ns, ADDR).is_empty(),
        "proxy entries left after del: {:?}\n{}",
        proxies(ns, ADDR),
        del.show()
    );
}

#[test]
fn add_and_del_route_proxy_arp_and_proxy_neighbours() {
    require!(
        Requirement::Root,
        Requirement::NetNs,
        Requirement::DevNetTun
    );
    let h = helper();
    let ns = fresh_ns("netadd");
    let tap = tuntap_up(&ns, &h);
    add_veths(&ns);
    let before = settled_snapshot(&ns);
    add_del_cycle(&ns, &h, &tap.name, Opts::default);
    // Everything is as before (ip_forward stays as `tuntap up` set it).
    let after = settled_snapshot(&ns);
    assert!(
        before == after,
        "add + del did not restore the namespace:\n{}",
        diff(&before, &after)
    );
    // A second cycle works the same.
    add_del_cycle(&ns, &h, &tap.name, Opts::default);
    drop(tap);
}

// ---------------------------------------------------------------------------
// Hostile argument vectors
// ---------------------------------------------------------------------------

/// What a refused vector must produce.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Expect {
    /// `add`/`del`/`slip`: length-prefixed one-line text, exit 1.
    Framed,
    /// `tuntap up`: exactly one datagram without fd and without a name
    /// field (one-line text + NUL); exit 0 (like C) or 1.
    TapRefused,
    /// `tuntap` without a usable op (the kernel never sends these): no fd;
    /// exit 1; some message (datagram or stderr).
    TapOpRefused,
    /// Rejected before any framing: exit 1, a message on stdout or stderr,
    /// no fd.
    Unframed,
    /// `ethertap`: status byte 0, then length-prefixed one-line text, exit 1.
    StatusFramed,
}

/// One hostile vector.
#[derive(Debug, Clone)]
struct Vector {
    args: Vec<String>,
    out: Out,
    expect: Expect,
}

fn v(args: &[&str], out: Out, expect: Expect) -> Vector {
    Vector {
        args: args.iter().map(|a| a.to_string()).collect(),
        out,
        expect,
    }
}

/// Checks the reply of a refused vector; `Err` says what is wrong.
fn check_refusal(run: &HelperRun, expect: Expect) -> Result<(), String> {
    if run.timed_out || run.signal.is_some() {
        return Err("did not exit by itself".into());
    }
    if run.stderr_str().contains("panicked") {
        return Err("panicked".into());
    }
    if run.fd_count() != 0 {
        return Err(format!("{} fd(s) handed out", run.fd_count()));
    }
    let want_code = |codes: &[i32]| {
        if run.code.is_some_and(|c| codes.contains(&c)) {
            Ok(())
        } else {
            Err(format!("exit status {:?}, expected {codes:?}", run.code))
        }
    };
    match expect {
        Expect::Framed => {
            want_code(&[1])?;
            if let Some(e) = &run.kernel_read_error {
                return Err(format!("the kernel would log `read_output - {e}`"));
            }
            one_line(&length_prefixed(&run.stream)?)
        }
        Expect::StatusFramed => {
            want_code(&[1])?;
            match run.stream.split_first() {
                Some((0, rest)) => one_line(&length_prefixed(rest)?),
                Some((b, _)) => Err(format!("status byte {b}, expected 0")),
                None => Err("no status byte".into()),
            }
        }
        Expect::TapRefused => {
            want_code(&[0, 1])?;
            if run.datagrams.len() != 1 {
                return Err(format!(
                    "{} datagrams, expected exactly one",
                    run.datagrams.len()
                ));
            }
            one_line(&nul_text(&run.datagrams[0].data)?)
        }
        Expect::TapOpRefused => {
            want_code(&[1])?;
            if run.datagrams.is_empty() && run.stderr.is_empty() {
                return Err("no message at all".into());
            }
            Ok(())
        }
        Expect::Unframed => {
            want_code(&[1])?;
            let said =
                !run.stream.is_empty() || !run.stderr.is_empty() || !run.datagrams.is_empty();
            if said {
                Ok(())
            } else {
                Err("no message at all".into())
            }
        }
    }
}

/// Runs every vector in `ns`, requiring the refusal of `check_refusal`,
/// no marker file, and an unchanged namespace. Collects every failure and
/// fails once at the end with all of them.
fn run_vectors(ns: &NetNs, h: &Helper, vectors: &[Vector], marker: &Path) {
    let mut baseline = settled_snapshot(ns);
    let mut failures = Vec::new();
    for vec in vectors {
        let args: Vec<&str> = vec.args.iter().map(String::as_str).collect();
        let run = run_helper(ns, &h.path, &args, vec.out, Opts::default());
        let mut problems = Vec::new();
        if let Err(e) = check_refusal(&run, vec.expect) {
            problems.push(format!("reply ({:?}): {e}", vec.expect));
        }
        if marker.exists() {
            problems.push("a shell ran: the marker file was created".to_string());
            let _ = fs::remove_file(marker);
        }
        // Compared while any handed-out fd is still open, so that a tap
        // created by mistake is seen.
        let mut after = snapshot(ns);
        if after != baseline {
            // Let asynchronous link state settle before calling it a change.
            after = settled_snapshot(ns);
        }
        let changed = after != baseline;
        if changed {
            problems.push(format!(
                "the namespace changed:\n{}",
                diff(&baseline, &after)
            ));
        }
        if !problems.is_empty() {
            failures.push(format!("{}\n  {}", run.show(), problems.join("\n  ")));
        }
        drop(run);
        if changed {
            // Judge the next vector on its own.
            baseline = settled_snapshot(ns);
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {} hostile vectors failed:\n\n{}",
        failures.len(),
        vectors.len(),
        failures.join("\n\n")
    );
    eprintln!("{} hostile vectors refused, nothing changed", vectors.len());
}

/// A namespace for the hostile tests: the caller's tap (from `tuntap up`,
/// fd kept), the veths, `othertap` owned by uid 4242, `ip_forward` back to
/// 0 and the marker file's directory.
struct HostileSetup {
    // Fields drop in this order: the tap's fd before its namespace.
    tap: Tap,
    ns: NetNs,
    h: Helper,
    dir: tempfile::TempDir,
}

impl HostileSetup {
    fn new(tag: &str) -> HostileSetup {
        let h = helper();
        let ns = fresh_ns(tag);
        let tap = tuntap_up(&ns, &h);
        add_veths(&ns);
        add_foreign_tap(&ns, "othertap", 4242);
        ns.sysctl("net.ipv4.ip_forward", "0").expect("ip_forward");
        let dir = tempfile::Builder::new()
            .prefix("umlnet-")
            .tempdir()
            .expect("tempdir");
        HostileSetup { tap, ns, h, dir }
    }

    fn marker(&self) -> PathBuf {
        self.dir.path().join("marker")
    }

    fn run(&self, vectors: &[Vector]) {
        run_vectors(&self.ns, &self.h, vectors, &self.marker());
    }
}

/// Shell metacharacter payloads that would create `marker` if a shell saw
/// them.
fn payloads(marker: &Path) -> Vec<String> {
    let m = marker.display();
    vec![
        format!(";touch {m}"),
        format!("$(touch {m})"),
        format!("`touch {m}`"),
        format!("|touch {m}"),
        format!("&&touch {m}"),
        format!(" ; touch {m}"),
        format!("\ntouch {m}"),
        format!(">{m}"),
        format!("'\"; touch {m} #"),
    ]
}

#[test]
fn hostile_shell_metacharacters_in_every_position() {
    require!(
        Requirement::Root,
        Requirement::NetNs,
        Requirement::DevNetTun
    );
    let s = HostileSetup::new("nethmeta");
    let t = s.tap.name.as_str();
    let mut vectors = Vec::new();
    for p in payloads(&s.marker()) {
        let p = p.as_str();
        for op in ["add", "del"] {
            for (dev, addr, mask) in [
                (format!("{t}{p}"), ADDR.to_string(), MASK.to_string()),
                (p.to_string(), ADDR.to_string(), MASK.to_string()),
                (t.to_string(), format!("{ADDR}{p}"), MASK.to_string()),
                (t.to_string(), p.to_string(), MASK.to_string()),
                (t.to_string(), ADDR.to_string(), format!("{MASK}{p}")),
                (t.to_string(), ADDR.to_string(), p.to_string()),
            ] {
                vectors.push(v(&["4", op, &dev, &addr, &mask], Out::Pipe, Expect::Framed));
            }
            vectors.push(v(
                &["4", "tuntap", op, &format!("{t}{p}"), ADDR, MASK],
                Out::Datagram,
                Expect::TapOpRefused,
            ));
        }
        vectors.push(v(
            &["4", "tuntap", "up", &format!("{GATE}{p}")],
            Out::Datagram,
            Expect::TapRefused,
        ));
        vectors.push(v(
            &["4", "tuntap", "up", p],
            Out::Datagram,
            Expect::TapRefused,
        ));
        vectors.push(v(
            &[&format!("4{p}"), "tuntap", "up", GATE],
            Out::Datagram,
            Expect::Unframed,
        ));
        vectors.push(v(
            &["4", &format!("add{p}"), t, ADDR, MASK],
            Out::Pipe,
            Expect::Unframed,
        ));
        vectors.push(v(
            &["4", "ethertap", &format!("tap9{p}"), "0", GATE],
            Out::Stream,
            Expect::StatusFramed,
        ));
        vectors.push(v(
            &["4", "ethertap", "tap9", "0", &format!("{GATE}{p}")],
            Out::Stream,
            Expect::StatusFramed,
        ));
        vectors.push(v(
            &["4", "slip", "up", &format!("{GATE}{p}")],
            Out::Pipe,
            Expect::Framed,
        ));
    }
    s.run(&vectors);
}

#[test]
fn hostile_devices_lo_veth_foreign_tap_and_bad_names() {
    require!(
        Requirement::Root,
        Requirement::NetNs,
        Requirement::DevNetTun
    );
    let s = HostileSetup::new("nethdev");
    let long16 = "abcdefghijklmnop";
    let long15 = "abcdefghijklmno";
    let huge = "a".repeat(100_000);
    let mut vectors = Vec::new();
    for op in ["add", "del"] {
        for dev in [
            "lo", "veth0", "veth1", "veth2", "othertap", "tap9", "TAP0", long16, long15, &huge, "",
            "../tap0", "tap0/", "tap 0", "tap0\n", "-tap0", "tap0:1", "täp0",
        ] {
            vectors.push(v(&["4", op, dev, ADDR, MASK], Out::Pipe, Expect::Framed));
        }
        // Routes that exist, on devices that are not the caller's tap.
        vectors.push(v(
            &["4", op, "veth0", "10.0.0.100", MASK],
            Out::Pipe,
            Expect::Framed,
        ));
        vectors.push(v(
            &["4", op, "lo", "127.0.0.1", "255.0.0.0"],
            Out::Pipe,
            Expect::Framed,
        ));
    }
    s.run(&vectors);
}

#[test]
fn hostile_addresses_and_netmasks() {
    require!(
        Requirement::Root,
        Requirement::NetNs,
        Requirement::DevNetTun
    );
    let s = HostileSetup::new("nethaddr");
    let t = s.tap.name.as_str();
    let bad_addrs = [
        "10.0.0.256",
        "256.0.0.1",
        "10.0.0",
        "10.0.0.1.2",
        "10..0.1",
        "-net",
        "-10.0.0.1",
        "-host",
        "+10.0.0.1",
        "0x0a.0.0.1",
        "0x0a000001",
        "167772161",
        "10.0.0.1x",
        " 10.0.0.1",
        "10.0.0.1 ",
        "",
        "10.0.0.-1",
        "0010.0.0.1",
        "1e1.0.0.1",
        "１0.0.0.1",
        "10.0.0.1/32",
        "default",
        "localhost",
    ];
    let bad_masks = [
        "255.0.255.0",
        "0.255.255.255",
        "255.255.255.1",
        "255.255.254.255",
        "255.255.255.256",
        "255.255.255",
        "255.255.255.0.0",
        "-netmask",
        "",
        "24",
        "/24",
        "0xffffff00",
        " 255.255.255.0",
    ];
    let mut vectors = Vec::new();
    for op in ["add", "del"] {
        for a in bad_addrs {
            vectors.push(v(&["4", op, t, a, MASK], Out::Pipe, Expect::Framed));
        }
        for m in bad_masks {
            vectors.push(v(&["4", op, t, ADDR, m], Out::Pipe, Expect::Framed));
        }
    }
    let huge = "9".repeat(100_000);
    for g in bad_addrs.iter().copied().filter(|g| !g.is_empty()).chain([
        huge.as_str(),
        "10.0.0.254/24",
        "-netmask",
    ]) {
        vectors.push(v(
            &["4", "tuntap", "up", g],
            Out::Datagram,
            Expect::TapRefused,
        ));
    }
    s.run(&vectors);
}

#[test]
fn hostile_versions_missing_arguments_and_unknown_transports() {
    require!(
        Requirement::Root,
        Requirement::NetNs,
        Requirement::DevNetTun
    );
    let s = HostileSetup::new("nethargv");
    let t = s.tap.name.as_str();
    let d = Out::Datagram;
    let p = Out::Pipe;
    let vectors = vec![
        // Versions.
        v(&["5", "tuntap", "up", GATE], d, Expect::Unframed),
        v(&["4x", "tuntap", "up", GATE], d, Expect::Unframed),
        v(&["0x5", "tuntap", "up", GATE], d, Expect::Unframed),
        v(
            &["99999999999999999999", "tuntap", "up", GATE],
            d,
            Expect::Unframed,
        ),
        v(&["4294967300", "tuntap", "up", GATE], d, Expect::Unframed),
        v(&["-1", "tuntap", "up", GATE], d, Expect::Unframed),
        v(&["3", "add", t, ADDR, MASK], p, Expect::Unframed),
        v(&["0", "add", t, ADDR, MASK], p, Expect::Unframed),
        v(&["1", "tuntap", "up", GATE], d, Expect::Unframed),
        v(&["add", t, ADDR, MASK], p, Expect::Unframed),
        // Missing arguments.
        v(&[], p, Expect::Unframed),
        v(&["4"], p, Expect::Unframed),
        v(&["4", "add"], p, Expect::Framed),
        v(&["4", "add", t], p, Expect::Framed),
        v(&["4", "add", t, ADDR], p, Expect::Framed),
        v(&["4", "del"], p, Expect::Framed),
        v(&["4", "del", t, ADDR], p, Expect::Framed),
        v(&["4", "tuntap"], d, Expect::TapOpRefused),
        v(&["4", "tuntap", "up"], d, Expect::TapRefused),
        v(&["4", "tuntap", "add", t, ADDR], d, Expect::TapOpRefused),
        v(&["4", "tuntap", "frob", GATE], d, Expect::TapOpRefused),
        v(&["4", "tuntap", "down", t], d, Expect::TapOpRefused),
        v(&["4", "slip"], p, Expect::Framed),
        v(&["4", "slip", "up"], p, Expect::Framed),
        v(&["4", "slip", "sideways", "x"], p, Expect::Framed),
        v(&["4", "ethertap"], Out::Stream, Expect::StatusFramed),
        v(
            &["4", "ethertap", "tap9"],
            Out::Stream,
            Expect::StatusFramed,
        ),
        // Unknown transports.
        v(&["4", "frob", "x"], p, Expect::Unframed),
        v(&["4", "TUNTAP", "up", GATE], d, Expect::Unframed),
        v(&["4", "vde", "x"], p, Expect::Unframed),
        v(&["4", "", ""], p, Expect::Unframed),
        v(&["4", "add ", t, ADDR, MASK], p, Expect::Unframed),
        // ethertap (no host driver) and slip (no SLIP here): clear
        // failures, and no half-made state — even on existing devices.
        v(
            &["4", "ethertap", "tap9", "0", GATE],
            Out::Stream,
            Expect::StatusFramed,
        ),
        v(
            &["4", "ethertap", t, "0", GATE],
            Out::Stream,
            Expect::StatusFramed,
        ),
        v(
            &["4", "ethertap", "lo", "0", GATE],
            Out::Stream,
            Expect::StatusFramed,
        ),
        v(
            &["4", "ethertap", "veth0", "0", GATE],
            Out::Stream,
            Expect::StatusFramed,
        ),
        v(
            &["4", "ethertap", "tap9", "-3", GATE],
            Out::Stream,
            Expect::StatusFramed,
        ),
        v(
            &["4", "ethertap", "tap9", "3x", GATE],
            Out::Stream,
            Expect::StatusFramed,
        ),
        v(&["4", "slip", "up", GATE], p, Expect::Framed),
        v(&["4", "slip", "down", "sl0"], p, Expect::Framed),
    ];
    s.run(&vectors);
}

// ---------------------------------------------------------------------------
// Hostile environment
// ---------------------------------------------------------------------------

/// A directory with traps: `evil/` holds programs named like everything
/// the C helper runs, a `BASH_ENV`/`ENV` script and a modprobe
/// configuration, all of which create `marker` when used.
fn evil_dir() -> (tempfile::TempDir, Vec<(String, String)>) {
    let dir = tempfile::Builder::new()
        .prefix("umlnet-env-")
        .tempdir()
        .expect("tempdir");
    let marker = dir.path().join("marker");
    let m = marker.display();
    let evil = dir.path().join("evil");
    fs::create_dir(&evil).expect("mkdir evil");
    let trap = format!("#!/bin/sh\necho \"$0 $*\" >> '{m}'\n");
    for prog in [
        "ifconfig", "route", "arp", "modprobe", "bash", "sh", "ip", "echo", "cat",
    ] {
        let p = evil.join(prog);
        fs::write(&p, &trap).expect("write trap");
        fs::set_permissions(&p, fs::Permissions::from_mode(0o755)).expect("chmod trap");
    }
    let rc = dir.path().join("rc.sh");
    fs::write(&rc, format!("echo \"sourced $0\" >> '{m}'\n")).expect("write rc");
    let conf = dir.path().join("modprobe.conf");
    fs::write(
        &conf,
        format!("install tun /bin/sh -c 'echo modprobe >> {m}'\n"),
    )
    .expect("write modprobe.conf");
    let env = vec![
        ("BASH_ENV".to_string(), rc.display().to_string()),
        ("ENV".to_string(), rc.display().to_string()),
        ("LD_PRELOAD".to_string(), "/nonexistent.so".to_string()),
        ("LD_LIBRARY_PATH".to_string(), evil.display().to_string()),
        (
            "MODPROBE_OPTIONS".to_string(),
            format!("-C {}", conf.display()),
        ),
        ("PATH".to_string(), evil.display().to_string()),
        ("IFS".to_string(), "/".to_string()),
        ("SHELLOPTS".to_string(), "xtrace".to_string()),
    ];
    (dir, env)
}

/// `tuntap up`, `add`, `del` with `env` in a fresh namespace; returns the
/// three texts and the (masked) namespace state after each step.
fn valid_sequence(h: &Helper, env: &[(String, String)], tag: &str) -> Vec<(String, String)> {
    let ns = fresh_ns(tag);
    add_veths(&ns);
    let opts = || Opts {
        env: env.to_vec(),
        ..Opts::default()
    };
    let mut steps = Vec::new();
    let tap = take_tap(run_helper(
        &ns,
        &h.path,
        &["4", "tuntap", "up", GATE],
        Out::Datagram,
        opts(),
    ));
    check_new_tap(&ns, h, &tap, 0);
    steps.push((tap.text.clone(), masked(&settled_snapshot(&ns))));
    for op in ["add", "del"] {
        let run = run_helper(
            &ns,
            &h.path,
            &["4", op, &tap.name, ADDR, MASK],
            Out::Pipe,
            opts(),
        );
        let text = expect_framed(&run, 0);
        steps.push((text, masked(&settled_snapshot(&ns))));
    }
    drop(tap);
    steps
}

#[test]
fn hostile_environment_has_no_effect() {
    require!(
        Requirement::Root,
        Requirement::NetNs,
        Requirement::DevNetTun
    );
    let h = helper();
    let (dir, env) = evil_dir();
    let marker = dir.path().join("marker");
    let clean = valid_sequence(&h, &[], "netenvok");
    let hostile = valid_sequence(&h, &env, "netenvbad");
    let log = fs::read_to_string(&marker).unwrap_or_default();
    assert!(
        !marker.exists(),
        "the hostile environment made the helper run something:\n{log}"
    );
    for (i, (c, b)) in clean.iter().zip(&hostile).enumerate() {
        let step = ["tuntap up", "add", "del"][i];
        if !h.is_c {
            assert_eq!(
                c.0, b.0,
                "{step}: text differs under the hostile environment"
            );
        }
        assert!(
            c.1 == b.1,
            "{step}: namespace state differs under the hostile environment:\n{}",
            diff(&c.1, &b.1)
        );
    }
}

// ---------------------------------------------------------------------------
// Setuid copy run by an unprivileged user
// ---------------------------------------------------------------------------

/// The unprivileged user running the setuid copy.
const NOBODY: u32 = 65534;
/// A third user.
const STRANGER: u32 = 4242;

/// Whether `path`'s mount has `nosuid`.
fn nosuid(path: &Path) -> bool {
    let out = run_with_timeout(
        Command::new("findmnt")
            .args(["-n", "-o", "OPTIONS", "-T"])
            .arg(path),
        Duration::from_secs(10),
    );
    !out.success() || out.stdout_str().split(',').any(|o| o.trim() == "nosuid")
}

/// Our own `NoNewPrivs` flag (set, setuid bits are ignored for children).
fn no_new_privs() -> bool {
    fs::read_to_string("/proc/self/status")
        .unwrap_or_default()
        .lines()
        .any(|l| l.starts_with("NoNewPrivs:") && l.trim_end().ends_with('1'))
}

/// A root-owned mode-4755 copy of the helper in a directory every user can
/// reach, on a mount without `nosuid`; `None` (with the reason) if there
/// is no such place.
fn setuid_copy(h: &Helper) -> Result<(tempfile::TempDir, PathBuf), String> {
    let bases = [std::env::temp_dir(), PathBuf::from("/var/tmp")];
    let base = bases
        .iter()
        .find(|b| b.is_dir() && !nosuid(b))
        .ok_or_else(|| format!("every candidate directory is mounted nosuid: {bases:?}"))?;
    let dir = tempfile::Builder::new()
        .prefix("umlnet-suid-")
        .tempdir_in(base)
        .map_err(|e| e.to_string())?;
    fs::set_permissions(dir.path(), fs::Permissions::from_mode(0o755))
        .map_err(|e| e.to_string())?;
    let copy = dir.path().join("uml_net");
    fs::copy(&h.path, &copy).map_err(|e| e.to_string())?;
    std::os::unix::fs::chown(&copy, Some(0), Some(0)).map_err(|e| e.to_string())?;
    fs::set_permissions(&copy, fs::Permissions::from_mode(0o4755)).map_err(|e| e.to_string())?;
    Ok((dir, copy))
}

#[test]
fn setuid_copy_run_by_an_unprivileged_user() {
    require!(
        Requirement::Root,
        Requirement::NetNs,
        Requirement::DevNetTun
    );
    let h = helper();
    let skip = |why: &str| {
        if std::env::var("CI").as_deref() == Ok("true") {
            panic!("{why}; CI must provide it");
        }
        let _ = writeln!(
            std::io::stderr(),
            "SKIP setuid_copy_run_by_an_unprivileged_user: {why}"
        );
    };
    if find_in_path("setpriv").is_none() {
        return skip("setpriv not found (apt-get install util-linux)");
    }
    if no_new_privs() {
        return skip("the test runs with no_new_privs: setuid bits are ignored");
    }
    let (_dir, copy) = match setuid_copy(&h) {
        Ok(x) => x,
        Err(why) => return skip(&why),
    };
    let suid = Helper {
        path: copy,
        is_c: h.is_c,
    };
    let ns = fresh_ns("netsuid");
    add_veths(&ns);
    add_foreign_tap(&ns, "roottap", 0);
    let as_nobody = || Opts {
        as_user: Some(NOBODY),
        ..Opts::default()
    };

    let tap = take_tap(run_helper(
        &ns,
        &suid.path,
        &["4", "tuntap", "up", GATE],
        Out::Datagram,
        as_nobody(),
    ));
    check_new_tap(&ns, &suid, &tap, NOBODY);

    // add/del on its own tap work.
    add_del_cycle(&ns, &suid, &tap.name, as_nobody);

    // Not on root's tap, and a third user may not touch nobody's tap.
    let mut before = settled_snapshot(&ns);
    let mut failures = Vec::new();
    for (uid, dev) in [
        (NOBODY, "roottap"),
        (NOBODY, "veth0"),
        (NOBODY, "lo"),
        (STRANGER, tap.name.as_str()),
    ] {
        for op in ["add", "del"] {
            let run = run_helper(
                &ns,
                &suid.path,
                &["4", op, dev, ADDR, MASK],
                Out::Pipe,
                Opts {
                    as_user: Some(uid),
                    ..Opts::default()
                },
            );
            let after = snapshot(&ns);
            let mut problems = Vec::new();
            if let Err(e) = check_refusal(&run, Expect::Framed) {
                problems.push(format!("reply: {e}"));
            }
            if after != before {
                problems.push(format!("namespace changed:\n{}", diff(&before, &after)));
                before = settled_snapshot(&ns);
            }
            if !problems.is_empty() {
                failures.push(format!(
                    "uid {uid}: {}\n  {}",
                    run.show(),
                    problems.join("\n  ")
                ));
            }
        }
    }
    assert!(
        failures.is_empty(),
        "refusals failed:\n\n{}",
        failures.join("\n\n")
    );
    drop(tap);
}

// ---------------------------------------------------------------------------
// Framing differential against Debian's C helper
// ---------------------------------------------------------------------------

/// The structure of a reply, without its text.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Shape {
    /// One datagram: name field `name`, NUL-terminated text, one fd in
    /// one `SCM_RIGHTS`.
    TapOk { name: String },
    /// One datagram, no fd, text + NUL only.
    TapFailed,
    /// Optional status byte, then length prefix consistent with the rest
    /// (text + NUL, or nothing when 0).
    LengthPrefixed { status: Option<u8>, empty: bool },
    /// Nothing framed: text on stdout and/or stderr.
    Unframed { stdout: bool, stderr: bool },
    /// Anything else.
    Malformed(String),
}

fn shape(run: &HelperRun, out: Out, status_byte: bool) -> Shape {
    if out == Out::Datagram {
        if run.datagrams.is_empty() {
            return Shape::Unframed {
                stdout: false,
                stderr: !run.stderr.is_empty(),
            };
        }
        if run.datagrams.len() != 1 {
            return Shape::Malformed(format!("{} datagrams", run.datagrams.len()));
        }
        let d = &run.datagrams[0];
        if d.fds.is_empty() {
            return match nul_text(&d.data) {
                Ok(_) => Shape::TapFailed,
                Err(e) => Shape::Malformed(e),
            };
        }
        if d.fds.len() != 1 || d.rights_msgs != 1 || d.data.len() <= IFNAMSIZ {
            return Shape::Malformed("odd fd/size".into());
        }
        let (field, rest) = d.data.split_at(IFNAMSIZ);
        let len = field.iter().position(|&b| b == 0).unwrap_or(IFNAMSIZ);
        if field[len..].iter().any(|&b| b != 0) {
            return Shape::Malformed("name field not NUL-padded".into());
        }
        return match nul_text(rest) {
            Ok(_) => Shape::TapOk {
                name: String::from_utf8_lossy(&field[..len]).into_owned(),
            },
            Err(e) => Shape::Malformed(e),
        };
    }
    let bytes = run.stream.as_slice();
    let (status, body) = if status_byte {
        match bytes.split_first() {
            Some((s, rest)) => (Some(*s), rest),
            None => return Shape::Malformed("no status byte".into()),
        }
    } else {
        (None, bytes)
    };
    if let Some(e) = &run.kernel_read_error {
        // A plausible length that the data did not live up to (rather than
        // unframed text read as a length, or nothing at all).
        let plausible = bytes
            .first_chunk::<4>()
            .map(|l| i32::from_ne_bytes(*l))
            .is_some_and(|used| (0..=65536).contains(&used));
        if plausible {
            return Shape::Malformed(format!("the kernel would log `read_output - {e}`"));
        }
    }
    if !status_byte && !bytes.is_empty() && length_prefixed(bytes).is_err() {
        return Shape::Unframed {
            stdout: true,
            stderr: !run.stderr.is_empty(),
        };
    }
    if bytes.is_empty() {
        return Shape::Unframed {
            stdout: false,
            stderr: !run.stderr.is_empty(),
        };
    }
    match length_prefixed(body) {
        Ok(t) => Shape::LengthPrefixed {
            status,
            empty: t.is_empty(),
        },
        Err(e) => Shape::Malformed(e),
    }
}

/// One differential case.
struct Case {
    args: Vec<String>,
    out: Out,
    status_byte: bool,
    /// The exit status matters to the kernel's log here: compare it too.
    same_status: bool,
    stdin: fn() -> (Option<OwnedFd>, Option<OwnedFd>),
}

fn no_stdin() -> (Option<OwnedFd>, Option<OwnedFd>) {
    (None, None)
}

/// stdin = the slave side of a fresh pty (as for `slip`); the master is
/// kept until the run ends.
fn pty_stdin() -> (Option<OwnedFd>, Option<OwnedFd>) {
    let pty = nix::pty::openpty(None, None).expect("openpty");
    for fd in [&pty.master, &pty.slave] {
        fcntl(fd.as_raw_fd(), FcntlArg::F_SETFD(FdFlag::FD_CLOEXEC)).expect("cloexec");
    }
    (Some(pty.slave), Some(pty.master))
}

/// stdin = one end of a datagram socketpair (the ethertap data fd 0).
fn dgram_stdin() -> (Option<OwnedFd>, Option<OwnedFd>) {
    let (a, b) = UnixDatagram::pair().expect("socketpair");
    (Some(OwnedFd::from(a)), Some(OwnedFd::from(b)))
}

/// Runs `cases` with helper `h` in a fresh namespace (after its own
/// `tuntap up`, whose fd is kept, so that `tap0` is its tap) and returns
/// the shapes, statuses and descriptions.
fn shapes(h: &Helper, cases: &[Case], tag: &str) -> Vec<(Shape, Option<i32>, String)> {
    let ns = fresh_ns(tag);
    let first = run_helper(
        &ns,
        &h.path,
        &["4", "tuntap", "up", GATE],
        Out::Datagram,
        Opts::default(),
    );
    let first_shape = shape(&first, Out::Datagram, false);
    let first_code = first.code;
    let tap = take_tap(first);
    assert_eq!(tap.name, "tap0");
    let mut res = vec![(first_shape, first_code, String::new())];
    for c in cases {
        let (stdin, keep) = (c.stdin)();
        let args: Vec<&str> = c.args.iter().map(String::as_str).collect();
        let run = run_helper(
            &ns,
            &h.path,
            &args,
            c.out,
            Opts {
                stdin,
                ..Opts::default()
            },
        );
        drop(keep);
        res.push((shape(&run, c.out, c.status_byte), run.code, run.show()));
    }
    drop(tap);
    res
}

#[test]
fn framing_matches_the_c_helper() {
    require!(
        Requirement::Root,
        Requirement::NetNs,
        Requirement::DevNetTun,
        Requirement::CBinary("uml_net")
    );
    let ours = helper();
    if ours.is_c {
        let _ = writeln!(
            std::io::stderr(),
            "SKIP framing_matches_the_c_helper: the helper under test is the C helper"
        );
        return;
    }
    for tool in ["ifconfig", "route", "arp"] {
        if find_in_path(tool).is_none() {
            let why = format!("`{tool}` not found: the C helper needs net-tools");
            if std::env::var("CI").as_deref() == Ok("true") {
                panic!("{why}; CI must provide it");
            }
            let _ = writeln!(
                std::io::stderr(),
                "SKIP framing_matches_the_c_helper: {why}"
            );
            return;
        }
    }
    let c = Helper {
        path: PathBuf::from(C_HELPER),
        is_c: true,
    };
    let case = |args: &[&str], out: Out, status_byte: bool, same_status: bool| Case {
        args: args.iter().map(|a| a.to_string()).collect(),
        out,
        status_byte,
        same_status,
        stdin: no_stdin,
    };
    let mut cases = vec![
        case(&["4", "tuntap", "up", GATE], Out::Datagram, false, true),
        case(&["4", "tuntap", "up"], Out::Datagram, false, false),
        case(&["4", "add", "tap0", ADDR, MASK], Out::Pipe, false, true),
        case(&["4", "del", "tap0", ADDR, MASK], Out::Pipe, false, true),
        case(&["4", "add", "tap;0", ADDR, MASK], Out::Pipe, false, false),
        case(&["4", "del", "tap;0", ADDR, MASK], Out::Pipe, false, false),
        case(&["5", "tuntap", "up", GATE], Out::Datagram, false, true),
        case(&["4", "frob", "x"], Out::Pipe, false, true),
        case(&["3", "add", "tap0", ADDR, MASK], Out::Pipe, false, true),
        case(&["4"], Out::Pipe, false, true),
    ];
    cases.push(Case {
        stdin: pty_stdin,
        ..case(&["4", "slip", "up", GATE], Out::Pipe, false, true)
    });
    cases.push(Case {
        stdin: dgram_stdin,
        ..case(
            &["4", "ethertap", "tap9", "0", GATE],
            Out::Stream,
            true,
            true,
        )
    });
    let from_c = shapes(&c, &cases, "netdiffc");
    let from_ours = shapes(&ours, &cases, "netdiffrs");
    let mut failures = Vec::new();
    let first = vec!["4".to_string(), "tuntap".into(), "up".into(), GATE.into()];
    let all_args = std::iter::once(&first).chain(cases.iter().map(|c| &c.args));
    let same_status = std::iter::once(true).chain(cases.iter().map(|c| c.same_status));
    for (((args, same), cr), or) in all_args.zip(same_status).zip(&from_c).zip(&from_ours) {
        let status_differs = same && cr.1 != or.1;
        if cr.0 != or.0 || status_differs {
            failures.push(format!(
                "{args:?}: C {:?} status {:?}, ours {:?} status {:?}\n--- C ---\n{}\n--- ours ---\n{}",
                cr.0, cr.1, or.0, or.1, cr.2, or.2
            ));
        } else {
            eprintln!(
                "{args:?}: {:?} (status C {:?}, ours {:?})",
                cr.0, cr.1, or.1
            );
        }
    }
    assert!(
        failures.is_empty(),
        "framing differs from the C helper:\n\n{}",
        failures.join("\n\n")
    );
}
