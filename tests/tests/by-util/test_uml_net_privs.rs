//! `uml_net`'s privilege steps (`docs/uml_net.md` §5.1; issue 16): each
//! one is checked, and a failure stops the helper with its message on
//! stderr (and in the reply) and exit status 1 before any change on the
//! host. Provoked here, each run `4 tuntap up GATE` in a network
//! namespace of the test's, which must gain no link:
//!
//! * a bounding set that cannot be changed (`setpriv --bounding-set
//!   -setpcap`), run by root and as a setuid copy run by nobody;
//! * `SECBIT_KEEP_CAPS_LOCKED` (the setuid copy cannot keep CAP_NET_ADMIN
//!   across the uid change);
//! * `SECBIT_NOROOT` and a bounding set without CAP_NET_ADMIN (no
//!   CAP_NET_ADMIN to keep);
//!
//! and while it works (its reply held up by a full socket), started with
//! an unlimited core size and an ambient capability, `/proc/PID` shows
//! the result: the caller's ids, CAP_NET_ADMIN alone in the effective,
//! permitted and bounding sets, empty inheritable and ambient sets,
//! NoNewPrivs 1, a core size limit of 0.
//!
//! The policy file is read while the helper is still root: a root-owned
//! mode-0600 policy applies to a setuid run by nobody (allowing one
//! gateway, refusing another), and a symbolic link in its place is
//! refused. The policy lives in a private mount namespace (`/etc` an
//! overlay), never on the host.

// Test code: a failed setup step should abort the test with its message.
#![allow(clippy::expect_used, clippy::unwrap_used)]
#![forbid(unsafe_code)]

use std::fs;
use std::io::{IoSliceMut, Read};
use std::os::fd::{AsRawFd, OwnedFd, RawFd};
use std::os::unix::fs::PermissionsExt;
use std::os::unix::net::UnixDatagram;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use nix::errno::Errno;
use nix::sys::socket::{recvmsg, send, ControlMessageOwned, MsgFlags};
use uml_integration_tests::uml_common::sys::caps::{mask, ProcStatus, CAP_NET_ADMIN};
use uml_integration_tests::{
    blocked_syscall, find_in_path, require, run_with_timeout, wait_until, workspace_bin, NetNs,
    Requirement,
};

const GATE: &str = "10.0.0.254";
const NOBODY: u32 = 65534;
const WAIT: Duration = Duration::from_secs(20);
/// `sendmsg` on x86_64.
const SYS_SENDMSG: i64 = 46;

fn setpriv() -> String {
    find_in_path("setpriv")
        .expect("setpriv (util-linux) not found")
        .display()
        .to_string()
}

/// `setpriv` arguments that become nobody (no groups).
fn as_nobody() -> Vec<String> {
    vec![
        setpriv(),
        format!("--reuid={NOBODY}"),
        format!("--regid={NOBODY}"),
        "--clear-groups".into(),
    ]
}

/// Whether this process has NoNewPrivs (setuid bits would be ignored).
fn no_new_privs() -> bool {
    ProcStatus::parse(&fs::read_to_string("/proc/self/status").unwrap())
        .is_some_and(|s| s.no_new_privs)
}

/// A root-owned mode-4755 copy of `uml_net` on a mount without `nosuid`.
fn setuid_copy() -> (tempfile::TempDir, PathBuf) {
    assert!(!no_new_privs(), "the tests run with no_new_privs");
    let nosuid = |p: &Path| {
        let out = run_with_timeout(
            Command::new("findmnt")
                .args(["-n", "-o", "OPTIONS", "-T"])
                .arg(p),
            WAIT,
        );
        !out.success() || out.stdout_str().split(',').any(|o| o.trim() == "nosuid")
    };
    let base = [std::env::temp_dir(), PathBuf::from("/var/tmp")]
        .into_iter()
        .find(|b| b.is_dir() && !nosuid(b))
        .expect("every temporary directory is mounted nosuid");
    let dir = tempfile::Builder::new()
        .prefix("umlnet-privs-")
        .tempdir_in(base)
        .unwrap();
    fs::set_permissions(dir.path(), fs::Permissions::from_mode(0o755)).unwrap();
    let copy = dir.path().join("uml_net");
    fs::copy(workspace_bin("uml_net"), &copy).unwrap();
    std::os::unix::fs::chown(&copy, Some(0), Some(0)).unwrap();
    fs::set_permissions(&copy, fs::Permissions::from_mode(0o4755)).unwrap();
    (dir, copy)
}

/// The namespace's links, one per line (names and kinds only).
fn links(ns: &NetNs) -> String {
    let out = ns.ip(&["-o", "link", "show"]);
    assert!(out.success(), "{out}");
    out.stdout_str()
        .lines()
        .map(|l| l.split_whitespace().nth(1).unwrap_or("").to_string())
        .collect::<Vec<_>>()
        .join(" ")
}

/// One datagram: its bytes and the descriptors it carried.
struct Datagram {
    data: Vec<u8>,
    fds: Vec<OwnedFd>,
}

fn recv_all(sock: &UnixDatagram) -> Vec<Datagram> {
    let mut out = Vec::new();
    loop {
        let mut buf = vec![0u8; 65536];
        let mut cmsg = nix::cmsg_space!([RawFd; 8]);
        let mut iov = [IoSliceMut::new(&mut buf)];
        let (bytes, fds) = match recvmsg::<()>(
            sock.as_raw_fd(),
            &mut iov,
            Some(&mut cmsg),
            MsgFlags::MSG_DONTWAIT | MsgFlags::MSG_CMSG_CLOEXEC,
        ) {
            Ok(msg) => {
                let mut fds = Vec::new();
                for c in msg.cmsgs().into_iter().flatten() {
                    if let ControlMessageOwned::ScmRights(v) = c {
                        fds.extend(v.into_iter().map(owned));
                    }
                }
                (msg.bytes, fds)
            }
            Err(Errno::EAGAIN) => break,
            Err(e) => panic!("recvmsg: {e}"),
        };
        buf.truncate(bytes);
        out.push(Datagram { data: buf, fds });
    }
    out
}

/// A received descriptor as an `OwnedFd`, through `/proc/self/fd` (no
/// unsafe code here): reopened, and the received one closed.
fn owned(fd: RawFd) -> OwnedFd {
    let f = fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open(format!("/proc/self/fd/{fd}"));
    let _ = nix::unistd::close(fd);
    f.map(OwnedFd::from)
        .unwrap_or_else(|e| panic!("reopening fd {fd}: {e}"))
}

/// A finished helper run.
struct Run {
    code: Option<i32>,
    stderr: String,
    /// The helper's reply datagrams (fillers removed).
    replies: Vec<Datagram>,
}

impl Run {
    fn show(&self) -> String {
        let texts: Vec<String> = self
            .replies
            .iter()
            .map(|d| {
                format!(
                    "{:?} ({} fds)",
                    String::from_utf8_lossy(&d.data),
                    d.fds.len()
                )
            })
            .collect();
        format!(
            "code {:?}, stderr {:?}, replies {texts:?}",
            self.code, self.stderr
        )
    }
}

/// Starts `argv` (the helper somewhere in it) in `ns` with stdout one end
/// of a datagram socketpair; with `hold`, the other end's queue is filled
/// first so that the reply blocks until [`finish`] drains it.
fn start(ns: &NetNs, argv: &[String], hold: bool) -> (Child, UnixDatagram) {
    let (ours, theirs) = UnixDatagram::pair().unwrap();
    if hold {
        while send(theirs.as_raw_fd(), b"F", MsgFlags::MSG_DONTWAIT).is_ok() {}
    }
    let mut cmd = ns.exec(&argv[0]);
    cmd.args(&argv[1..])
        .stdin(Stdio::null())
        .stdout(Stdio::from(OwnedFd::from(theirs)))
        .stderr(Stdio::piped());
    (cmd.spawn().unwrap(), ours)
}

fn finish(mut child: Child, ours: UnixDatagram) -> Run {
    let deadline = Instant::now() + WAIT;
    let mut replies = Vec::new();
    let status = loop {
        // Drain as it goes (a held reply is released).
        replies.extend(recv_all(&ours).into_iter().filter(|d| d.data != b"F"));
        if let Some(s) = child.try_wait().unwrap() {
            break Some(s);
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            break child.wait().ok();
        }
        std::thread::sleep(Duration::from_millis(10));
    };
    replies.extend(recv_all(&ours).into_iter().filter(|d| d.data != b"F"));
    let mut stderr = String::new();
    let _ = child.stderr.take().unwrap().read_to_string(&mut stderr);
    Run {
        code: status.and_then(|s| s.code()),
        stderr,
        replies,
    }
}

fn run(ns: &NetNs, argv: &[String]) -> Run {
    let (child, ours) = start(ns, argv, false);
    finish(child, ours)
}

/// The run stopped with `message` on stderr and in the one reply
/// datagram (no descriptor), exit status 1, and `ns` has the same links.
fn expect_stopped(ns: &NetNs, before: &str, run: &Run, message: &str) {
    assert_eq!(run.code, Some(1), "{}", run.show());
    assert!(
        run.stderr.lines().any(|l| l == message),
        "expected {message:?} on stderr: {}",
        run.show()
    );
    assert_eq!(run.replies.len(), 1, "{}", run.show());
    assert!(run.replies[0].fds.is_empty(), "{}", run.show());
    let text = String::from_utf8_lossy(&run.replies[0].data).into_owned();
    assert!(text.contains(message), "{}", run.show());
    assert_eq!(links(ns), before, "a link appeared: {}", run.show());
}

fn argv(prefix: &[String], helper: &Path) -> Vec<String> {
    let mut v = prefix.to_vec();
    v.push(helper.display().to_string());
    v.extend(["4", "tuntap", "up", GATE].map(String::from));
    v
}

#[test]
fn every_failed_privilege_step_stops_the_helper_before_any_change() {
    require!(
        Requirement::Root,
        Requirement::NetNs,
        Requirement::DevNetTun
    );
    let helper = workspace_bin("uml_net");
    let (_dir, suid) = setuid_copy();
    let ns = NetNs::new("netprivs");
    let before = links(&ns);
    let sp = setpriv();
    let s = |v: &[&str]| v.iter().map(|x| x.to_string()).collect::<Vec<_>>();
    let nobody = as_nobody();
    let cases: Vec<(Vec<String>, &Path, &str)> = vec![
        // The bounding set cannot be emptied without CAP_SETPCAP.
        (
            s(&[&sp, "--bounding-set", "-setpcap"]),
            &helper,
            "uml_net : cannot drop CAP_CHOWN from the bounding set: Operation not permitted",
        ),
        (
            [s(&[&sp, "--bounding-set", "-setpcap"]), nobody.clone()].concat(),
            &suid,
            "uml_net : cannot drop CAP_CHOWN from the bounding set: Operation not permitted",
        ),
        // keepcaps locked off: CAP_NET_ADMIN cannot survive the uid change.
        (
            // (setpriv itself sets keepcaps when it changes the uid, so
            // util-linux runuser does that.)
            s(&[&sp, "--securebits", "+keep_caps_locked", "runuser", "-u", "nobody", "--"]),
            &suid,
            "uml_net : PR_SET_KEEPCAPS failed : EPERM: Operation not permitted",
        ),
        // No CAP_NET_ADMIN to begin with.
        (
            s(&[&sp, "--securebits", "+noroot,+noroot_locked"]),
            &helper,
            "uml_net : needs CAP_NET_ADMIN: install it setuid root (mode 4754 root:uml-net) or run it as root",
        ),
        (
            s(&[&sp, "--bounding-set", "-net_admin"]),
            &helper,
            "uml_net : needs CAP_NET_ADMIN: install it setuid root (mode 4754 root:uml-net) or run it as root",
        ),
    ];
    for (prefix, program, message) in &cases {
        let r = run(&ns, &argv(prefix, program));
        expect_stopped(&ns, &before, &r, message);
    }
    // Without the obstacles both succeed (the cases failed for their
    // reason, not for another).
    for (prefix, program) in [(vec![], &helper), (nobody, &suid)] {
        let r = run(&ns, &argv(&prefix, program));
        assert_eq!(r.code, Some(0), "{}", r.show());
        assert_eq!(r.replies.len(), 1, "{}", r.show());
        assert_eq!(r.replies[0].fds.len(), 1, "{}", r.show());
    }
}

#[test]
fn while_it_works_only_cap_net_admin_no_core_and_no_new_privs() {
    require!(
        Requirement::Root,
        Requirement::NetNs,
        Requirement::DevNetTun
    );
    require!(Requirement::Program("prlimit", "util-linux"));
    let helper = workspace_bin("uml_net");
    let (_dir, suid) = setuid_copy();
    let ns = NetNs::new("netprivs2");
    let sp = setpriv();
    let prlimit = find_in_path("prlimit").unwrap().display().to_string();
    // Unlimited core files, and an ambient capability, handed down.
    let mut root_prefix = vec![prlimit.clone(), "--core=unlimited:unlimited".into()];
    root_prefix
        .extend([&sp, "--inh-caps", "+net_raw", "--ambient-caps", "+net_raw"].map(String::from));
    let mut nobody_prefix = vec![prlimit, "--core=unlimited:unlimited".into()];
    nobody_prefix.extend(as_nobody());
    for (prefix, program, uid) in [(root_prefix, &helper, 0), (nobody_prefix, &suid, NOBODY)] {
        let (child, ours) = start(&ns, &argv(&prefix, program), true);
        let pid = child.id();
        let blocked = wait_until(WAIT, || blocked_syscall(pid) == Some(SYS_SENDMSG));
        let status = fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
        let limits = fs::read_to_string(format!("/proc/{pid}/limits")).unwrap_or_default();
        let r = finish(child, ours);
        assert!(blocked, "the reply never blocked: {}", r.show());
        let s = ProcStatus::parse(&status).unwrap_or_else(|| panic!("{status}"));
        let only = mask(&[CAP_NET_ADMIN]);
        let expected = ProcStatus {
            uid: [uid; 4],
            gid: [uid; 4],
            groups: Vec::new(),
            inheritable: 0,
            permitted: only,
            effective: only,
            bounding: only,
            ambient: 0,
            no_new_privs: true,
        };
        assert_eq!(s, expected, "{status}");
        let core = limits
            .lines()
            .find(|l| l.starts_with("Max core file size"))
            .unwrap_or_else(|| panic!("{limits}"));
        assert_eq!(
            core.split_whitespace().collect::<Vec<_>>()[4..6],
            ["0", "0"],
            "{core}"
        );
        assert_eq!(r.code, Some(0), "{}", r.show());
        assert_eq!(r.replies.len(), 1, "{}", r.show());
        assert_eq!(r.replies[0].fds.len(), 1, "{}", r.show());
    }
}

/// Overlays `/etc` in a new mount namespace (upper directory `$1`), then
/// runs the rest of the arguments.
const ENTER: &str = "set -e
mount -t overlay overlay -o \"lowerdir=/etc,upperdir=$1/upper,workdir=$1/work\" /etc
shift
exec \"$@\"";

/// An overlay for `/etc` with `uml-utilities/uml_net.conf` made by `make`.
fn policy_overlay(make: impl FnOnce(&Path)) -> tempfile::TempDir {
    let dir = tempfile::Builder::new()
        .prefix("umlnet-policy-")
        .tempdir()
        .unwrap();
    for d in ["upper", "work", "upper/uml-utilities"] {
        fs::create_dir(dir.path().join(d)).unwrap();
    }
    for d in ["", "upper", "upper/uml-utilities"] {
        fs::set_permissions(dir.path().join(d), fs::Permissions::from_mode(0o755)).unwrap();
    }
    make(&dir.path().join("upper/uml-utilities"));
    dir
}

fn in_overlay(overlay: &Path, inner: &[String]) -> Vec<String> {
    let mut v: Vec<String> = [
        "unshare",
        "-m",
        "--propagation",
        "private",
        "sh",
        "-c",
        ENTER,
        "sh",
    ]
    .map(String::from)
    .to_vec();
    v.push(overlay.display().to_string());
    v.extend(inner.iter().cloned());
    v
}

#[test]
fn a_root_only_policy_file_is_read_before_the_drop() {
    require!(
        Requirement::Root,
        Requirement::NetNs,
        Requirement::DevNetTun
    );
    let (_dir, suid) = setuid_copy();
    let ns = NetNs::new("netprivs3");
    let overlay = policy_overlay(|d| {
        let f = d.join("uml_net.conf");
        fs::write(
            &f,
            format!("allow uid:{NOBODY} 10.0.0.0/24\ndeny all 0.0.0.0/0\n"),
        )
        .unwrap();
        fs::set_permissions(&f, fs::Permissions::from_mode(0o600)).unwrap();
    });
    let with_gate = |gate: &str| {
        let mut v = as_nobody();
        v.extend([
            suid.display().to_string(),
            "4".into(),
            "tuntap".into(),
            "up".into(),
        ]);
        v.push(gate.into());
        in_overlay(overlay.path(), &v)
    };
    // Allowed by the root-only policy file, which the helper reads as root.
    let before = links(&ns);
    let r = run(&ns, &with_gate(GATE));
    assert_eq!(r.code, Some(0), "{}", r.show());
    assert_eq!(r.replies.len(), 1, "{}", r.show());
    assert_eq!(
        r.replies[0].fds.len(),
        1,
        "the tap was not made: {}",
        r.show()
    );
    drop(r);
    assert!(wait_until(WAIT, || links(&ns) == before), "the tap stayed");
    // Refused by the same file.
    let r = run(&ns, &with_gate("10.9.9.9"));
    let text = r
        .replies
        .first()
        .map(|d| String::from_utf8_lossy(&d.data).into_owned())
        .unwrap_or_default();
    assert!(
        text.contains(&format!(
            "uml_net : refused by /etc/uml-utilities/uml_net.conf: uid {NOBODY} may not use 10.9.9.9"
        )),
        "{}",
        r.show()
    );
    assert!(r.replies[0].fds.is_empty(), "{}", r.show());
    assert_eq!(links(&ns), before);

    // A symbolic link in its place, even to a good file, is not followed.
    let good = tempfile::NamedTempFile::new().unwrap();
    fs::write(good.path(), "allow all 0.0.0.0/0\n").unwrap();
    let target = good.path().to_path_buf();
    let linked =
        policy_overlay(|d| std::os::unix::fs::symlink(&target, d.join("uml_net.conf")).unwrap());
    let mut v = as_nobody();
    v.extend([
        suid.display().to_string(),
        "4".into(),
        "tuntap".into(),
        "up".into(),
        GATE.into(),
    ]);
    let r = run(&ns, &in_overlay(linked.path(), &v));
    let text = r
        .replies
        .first()
        .map(|d| String::from_utf8_lossy(&d.data).into_owned())
        .unwrap_or_default();
    assert!(
        text.contains("uml_net : refusing: /etc/uml-utilities/uml_net.conf must be a regular file owned by root"),
        "{}",
        r.show()
    );
    assert_eq!(links(&ns), before);
}
