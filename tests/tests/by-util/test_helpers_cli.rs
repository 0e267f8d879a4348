//! `uml_watchdog`, `port-helper` and `jail_uml` on the host, without a
//! kernel: differential command-line tests against Debian's binaries
//! (stdout, stderr and status must be the same where the behaviour is meant
//! to be), the documented deviations, the descriptor hygiene of the
//! rewrite, port-helper's fd-passing message and hang-up exit, and
//! `jail_uml` jailing a small static program.
#![allow(clippy::expect_used, clippy::unwrap_used)]

use std::fs;
use std::io::{IoSliceMut, Read, Write};
use std::os::fd::{AsRawFd, OwnedFd, RawFd};
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::os::unix::net::UnixDatagram;
use std::os::unix::process::ExitStatusExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use nix::sys::socket::{recvmsg, ControlMessageOwned, MsgFlags, UnixAddr};
use uml_integration_tests::diff::{Differential, Side};
use uml_integration_tests::{
    find_in_path, require, wait_idle, workspace_bin, Requirement, RunOutput,
};

const C_WATCHDOG: &str = "/usr/bin/uml_watchdog";
const C_PORT_HELPER: &str = "/usr/lib/uml/port-helper";
const C_JAIL: &str = "/usr/sbin/jail_uml";
const LIMIT: Duration = Duration::from_secs(10);

/// Debian's tool at `c` against ours, each run bounded by [`LIMIT`].
fn tool(c: &str, ours: &str) -> Differential<'static> {
    Differential::new(c, ours).limit(LIMIT)
}

/// The open descriptors of process `pid`.
fn fds_of(pid: u32) -> Vec<RawFd> {
    let mut fds: Vec<RawFd> = fs::read_dir(format!("/proc/{pid}/fd"))
        .unwrap()
        .flatten()
        .filter_map(|e| e.file_name().to_str().and_then(|s| s.parse().ok()))
        .collect();
    fds.sort_unstable();
    fds
}

/// Kills and reaps a child that is still running.
fn finish(mut child: Child) {
    let _ = child.kill();
    let _ = child.wait();
}

/// Waits (bounded) for `child` to exit by itself.
fn wait_child(child: &mut Child, timeout: Duration) -> Option<std::process::ExitStatus> {
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(s) = child.try_wait().unwrap() {
            return Some(s);
        }
        if Instant::now() >= deadline {
            return None;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Polls until `cond` holds, at most `timeout`.
fn eventually(timeout: Duration, mut cond: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + timeout;
    while Instant::now() < deadline {
        if cond() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    cond()
}

// ---------------------------------------------------------------------------
// uml_watchdog
// ---------------------------------------------------------------------------

#[test]
fn watchdog_arguments_like_c() {
    require!(Requirement::CBinary("uml_watchdog"));
    let me = std::process::id().to_string();
    // stdin is an empty pipe: a valid start writes the ready byte, reads
    // EOF and exits 0; every argument error exits 1 silently.
    let cases: &[&[&str]] = &[
        &[],
        &["-pid"],
        &["-mconsole"],
        &["-foo", "x"],
        &["pid", "1"],
        &["-pid", "abc"],
        &["-pid", "1x"],
        &["-pid", "1 "],
        &["-pid", "999999999"],
        &["-pid", &me],
        &["-pid", "0x1"],
        &["-pid", " 01"],
        &["-pid", "1", "extra", "args"],
        &["-mconsole", "/nonexistent/notify.sock"],
        &["-mconsole", "/x", "-pid", "1"],
    ];
    let watchdog = tool(C_WATCHDOG, "uml_watchdog");
    for args in cases {
        watchdog.same(args);
    }
    let ok = watchdog.run(Side::Ours, &["-pid", &me]);
    assert_eq!((ok.stdout.as_slice(), ok.code), (&[0u8][..], Some(0)));
}

#[test]
fn watchdog_refuses_pids_that_name_groups_or_everyone() {
    // C accepts these (exit 0 here); on expiry it would have signalled its
    // own process group (0, ""), every process (-1) or init (2^32 + 1).
    for pid in ["", "0", "-1", "-42", "4294967297", "2147483648"] {
        let out = tool(C_WATCHDOG, "uml_watchdog").run(Side::Ours, &["-pid", pid]);
        assert_eq!(
            (out.code, out.stdout.len(), out.stderr.len()),
            (Some(1), 0, 0),
            "-pid {pid:?}: {out}"
        );
    }
}

#[test]
fn watchdog_pings_then_eof_and_closes_inherited_fds() {
    // fd 7 stands for the kernel's descriptors the helper inherits.
    let mut child = Command::new("sh")
        .args(["-c", "exec 7</dev/null; exec \"$0\" -pid $$"])
        .arg(workspace_bin("uml_watchdog"))
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdout = child.stdout.take().unwrap();
    let mut ready = [0u8; 1];
    stdout.read_exact(&mut ready).unwrap();
    // 0–2 and its pidfd for the watched process; fd 7 is gone.
    let pid = child.id();
    let fds = fds_of(pid);
    let links: Vec<String> = fds
        .iter()
        .map(|fd| {
            let link = fs::read_link(format!("/proc/{pid}/fd/{fd}")).unwrap();
            link.to_string_lossy().into_owned()
        })
        .collect();
    assert_eq!(fds, [0, 1, 2, 3], "{links:?}");
    assert_eq!(links[3], "anon_inode:[pidfd]");
    let mut stdin = child.stdin.take().unwrap();
    for _ in 0..5 {
        stdin.write_all(b"\n").unwrap();
        std::thread::sleep(Duration::from_millis(50));
    }
    assert!(child.try_wait().unwrap().is_none());
    drop(stdin);
    let status = wait_child(&mut child, LIMIT).expect("no exit after EOF");
    assert_eq!(status.code(), Some(0));
}

// ---------------------------------------------------------------------------
// port-helper
// ---------------------------------------------------------------------------

/// One message as the kernel receives it.
#[derive(Debug)]
struct Received {
    data: Vec<u8>,
    fds: Vec<OwnedFd>,
    sender: Option<Vec<u8>>,
}

fn receive(sock: &UnixDatagram) -> Received {
    sock.set_read_timeout(Some(LIMIT)).unwrap();
    let mut data = [0u8; 64];
    let mut cmsg = nix::cmsg_space!([RawFd; 4]);
    let mut iov = [IoSliceMut::new(&mut data)];
    let msg = recvmsg::<UnixAddr>(
        sock.as_raw_fd(),
        &mut iov,
        Some(&mut cmsg),
        MsgFlags::empty(),
    )
    .expect("no message from port-helper");
    let mut fds = Vec::new();
    for c in msg.cmsgs().unwrap() {
        if let ControlMessageOwned::ScmRights(v) = c {
            for fd in v {
                // Received descriptors are new and ours: wrap them through
                // /proc, which needs no unsafe code.
                fds.push(reopen(fd));
            }
        }
    }
    let sender = msg
        .address
        .and_then(|a| a.as_abstract().map(<[u8]>::to_vec));
    let n = msg.bytes;
    Received {
        data: data[..n].to_vec(),
        fds,
        sender,
    }
}

/// Takes ownership of a raw received descriptor by duplicating it through
/// `/proc/self/fd` and closing the original.
fn reopen(fd: RawFd) -> OwnedFd {
    let file = fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open(format!("/proc/self/fd/{fd}"))
        .expect("reopen received fd");
    nix::unistd::close(fd).unwrap();
    file.into()
}

fn identity(path: &Path) -> (u64, u64) {
    let m = fs::metadata(path).unwrap();
    (m.dev(), m.ino())
}

/// Starts `helper -uml-socket SOCK` with stdin `stdin`; returns the child
/// and the message it sent.
fn socket_mode(helper: &Path, sock_path: &Path, stdin: Stdio) -> (Child, Received) {
    let kernel = UnixDatagram::bind(sock_path).unwrap();
    let child = Command::new(helper)
        .arg("-uml-socket")
        .arg(sock_path)
        .stdin(stdin)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let got = receive(&kernel);
    (child, got)
}

#[test]
fn port_helper_socket_mode_message_like_c() {
    require!(Requirement::CBinary(C_PORT_HELPER));
    let dir = tempfile::tempdir().unwrap();
    let tty_stand_in = dir.path().join("terminal");
    fs::write(&tty_stand_in, b"x").unwrap();
    for (name, helper) in [
        ("C", PathBuf::from(C_PORT_HELPER)),
        ("ours", workspace_bin("port-helper")),
    ] {
        let sock = dir.path().join(format!("xterm-pipe-{name}"));
        let stdin = fs::File::open(&tty_stand_in).unwrap();
        let (mut child, got) = socket_mode(&helper, &sock, stdin.into());
        let pid = child.id();
        // H1: 4-byte host-order pid, one descriptor: the helper's stdin.
        assert_eq!(got.data, pid.to_ne_bytes(), "{name}");
        assert_eq!(got.fds.len(), 1, "{name}");
        let fd_path = format!("/proc/self/fd/{}", got.fds[0].as_raw_fd());
        assert_eq!(
            identity(Path::new(&fd_path)),
            identity(&tty_stand_in),
            "{name}"
        );
        // H2: sent from the abstract name "%5d" of its pid, zero-padded.
        let sender = got.sender.expect("abstract sender address");
        let mut want = format!("{pid:5}").into_bytes();
        want.resize(107, 0);
        assert_eq!(sender, want, "{name}");
        // A file never hangs up: both keep waiting.
        assert!(wait_idle(pid, LIMIT), "{name} does not wait");
        assert!(child.try_wait().unwrap().is_none(), "{name} exited");
        let _ = child.kill();
        let _ = child.wait();
        let mut err = String::new();
        child
            .stderr
            .take()
            .unwrap()
            .read_to_string(&mut err)
            .unwrap();
        assert_eq!(
            err,
            "TIOCNOTTY failed in port-helper, check UML's exec call for xterm or telnetd: \
             Inappropriate ioctl for device\n",
            "{name}"
        );
    }
}

#[test]
fn port_helper_exits_when_its_terminal_hangs_up() {
    let dir = tempfile::tempdir().unwrap();
    let pty = nix::pty::openpty(None, None).unwrap();
    let (master, slave) = (pty.master, pty.slave);
    let sock = dir.path().join("xterm-pipe");
    let (mut child, got) = socket_mode(&workspace_bin("port-helper"), &sock, slave.into());
    assert_eq!(got.fds.len(), 1);
    // In use (output both ways through the passed descriptor): it stays.
    let mut term = fs::File::from(got.fds.into_iter().next().unwrap());
    term.write_all(b"hello from the kernel\n").unwrap();
    let mut m = fs::File::from(master);
    m.write_all(b"typed\n").unwrap();
    assert!(wait_idle(child.id(), LIMIT), "does not wait while in use");
    assert!(child.try_wait().unwrap().is_none(), "exited while in use");
    // The terminal window (pty master) goes away: the helper follows.
    drop(m);
    let status = wait_child(&mut child, LIMIT).expect("no exit after hang-up");
    assert_eq!(status.code(), Some(0));
    drop(term);
}

#[test]
fn port_helper_keeps_only_the_terminal_and_the_channel() {
    let pty = nix::pty::openpty(None, None).unwrap();
    let (master, slave) = (pty.master, pty.slave);
    // Telnet mode: fd 3 is the channel; fds 7 and 8 stand for the UML's
    // listening socket and other descriptors (not close-on-exec).
    let child = Command::new("sh")
        .args([
            "-c",
            "exec 3</dev/null 7</dev/null 8</dev/null; exec \"$0\"",
        ])
        .arg(workspace_bin("port-helper"))
        .stdin(slave)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let pid = child.id();
    let exec_done = eventually(LIMIT, || {
        fs::read_link(format!("/proc/{pid}/exe")).is_ok_and(|p| p.ends_with("port-helper"))
            && fds_of(pid).len() == 4
    });
    let fds = fds_of(pid);
    finish(child);
    drop(master);
    assert!(exec_done, "port-helper kept {fds:?}");
    assert_eq!(fds, [0, 1, 2, 3]);
}

#[test]
fn port_helper_errors_like_c() {
    require!(Requirement::CBinary(C_PORT_HELPER));
    let helper = tool(C_PORT_HELPER, "port-helper");
    // Connect failure.
    let ours = helper.same(&["-uml-socket", "/nonexistent/xterm-pipe"]);
    assert_eq!(ours.stderr_str(), "connect: No such file or directory\n");
    assert_eq!(ours.code, Some(1));

    // C dereferences NULL here; ours prints a usage line.
    let ours = helper.run(Side::Ours, &["-uml-socket"]);
    assert_eq!(
        (ours.code, ours.stderr_str().as_str()),
        (Some(1), "Usage : port-helper [-uml-socket socket-path]\n")
    );
}

#[test]
fn port_helper_telnet_mode_without_a_channel_like_c() {
    require!(Requirement::CBinary(C_PORT_HELPER));
    // No fd 3, stdin not a terminal: both report TIOCNOTTY, fail to send
    // (silently) and wait; stdin /dev/null never hangs up.
    let mut errs = Vec::new();
    for helper in [PathBuf::from(C_PORT_HELPER), workspace_bin("port-helper")] {
        let mut child = Command::new(&helper)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        // It has reported and sent what it could once it waits.
        assert!(wait_idle(child.id(), LIMIT), "{}", helper.display());
        assert!(child.try_wait().unwrap().is_none(), "{}", helper.display());
        let _ = child.kill();
        let status = child.wait().unwrap();
        assert_eq!(status.signal(), Some(libc::SIGKILL));
        let mut out = String::new();
        let mut err = String::new();
        child
            .stdout
            .take()
            .unwrap()
            .read_to_string(&mut out)
            .unwrap();
        child
            .stderr
            .take()
            .unwrap()
            .read_to_string(&mut err)
            .unwrap();
        errs.push((out, err));
    }
    assert_eq!(errs[0], errs[1]);
    assert!(errs[1].1.starts_with("TIOCNOTTY failed in port-helper"));
}

// ---------------------------------------------------------------------------
// jail_uml
// ---------------------------------------------------------------------------

/// A jail directory (mode 0755) holding `jail-probe` and a marker file.
fn make_jail() -> tempfile::TempDir {
    let jail = tempfile::Builder::new()
        .prefix("umlt-jail-")
        .tempdir()
        .unwrap();
    fs::set_permissions(jail.path(), fs::Permissions::from_mode(0o755)).unwrap();
    fs::copy(workspace_bin("jail-probe"), jail.path().join("jail-probe")).unwrap();
    fs::write(jail.path().join("MARKER"), b"inside\n").unwrap();
    jail
}

/// The `key=value` lines of a jail-probe report.
fn report(out: &RunOutput) -> Vec<(String, String)> {
    assert_eq!(out.code, Some(0), "{out}");
    out.stdout_str()
        .lines()
        .filter_map(|l| l.split_once('='))
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

fn field<'a>(report: &'a [(String, String)], key: &str) -> &'a str {
    report
        .iter()
        .find(|(k, _)| k == key)
        .map(|(_, v)| v.as_str())
        .unwrap_or_else(|| panic!("no {key} in {report:?}"))
}

/// `jail_uml` (C and ours) run with an extra inherited descriptor (7) and
/// an extra environment variable, as a caller's shell might.
fn jail_from_a_shell() -> Differential<'static> {
    tool(C_JAIL, "jail_uml")
        .wrapper(["sh", "-c", "exec 7</dev/null; exec \"$@\"", "sh"])
        .env("JAIL_TEST_VAR", "leak")
}

#[test]
fn jail_uml_jails_a_static_program() {
    require!(Requirement::Root);
    let jail = make_jail();
    let dir = jail.path().to_str().unwrap();
    let jail_uml = jail_from_a_shell();
    let ours = |args: &[&str]| jail_uml.run(Side::Ours, args);

    // By number: uid as given, gid 99, groups {99}.
    let r = report(&ours(&[dir, "4242", "/jail-probe", "a", "b c"]));
    assert_eq!(field(&r, "uid"), "4242,4242,4242");
    assert_eq!(field(&r, "gid"), "99,99,99");
    assert_eq!(field(&r, "groups"), "99");
    assert_eq!(field(&r, "cwd"), "/");
    assert_eq!(field(&r, "root"), "MARKER,jail-probe");
    assert_eq!(field(&r, "env"), "0");
    assert_eq!(field(&r, "fds"), "");
    assert_eq!(field(&r, "args"), "a,b c");

    // By name (host user database), program path relative to the jail root.
    let nobody = nix::unistd::User::from_name("nobody").unwrap().unwrap();
    let r = report(&ours(&[dir, "nobody", "jail-probe"]));
    let uid = nobody.uid.as_raw();
    let gid = nobody.gid.as_raw();
    assert_eq!(field(&r, "uid"), format!("{uid},{uid},{uid}"));
    assert_eq!(field(&r, "gid"), format!("{gid},{gid},{gid}"));
    let groups = nix::unistd::getgrouplist(c"nobody", nobody.gid).unwrap();
    let mut groups: Vec<u32> = groups.into_iter().map(|g| g.as_raw()).collect();
    groups.sort_unstable();
    groups.dedup();
    let want: Vec<String> = groups.iter().map(u32::to_string).collect();
    assert_eq!(field(&r, "groups"), want.join(","));
    assert_eq!(field(&r, "root"), "MARKER,jail-probe");
}

#[test]
fn jail_uml_identity_like_c_without_its_leaks() {
    require!(Requirement::Root, Requirement::CBinary(C_JAIL));
    let jail = make_jail();
    let dir = jail.path().to_str().unwrap();
    let (c, ours) = jail_from_a_shell().both(&[dir, "4242", "/jail-probe", "x"]);
    let (c, ours) = (report(&c), report(&ours));
    for key in ["uid", "gid", "groups", "cwd", "root", "args"] {
        assert_eq!(field(&c, key), field(&ours, key), "{key}");
    }
    // What C lets through and ours does not.
    assert!(field(&c, "fds").split(',').any(|fd| fd == "7"), "{c:?}");
    assert_ne!(field(&c, "env"), "0");
    assert_eq!((field(&ours, "fds"), field(&ours, "env")), ("", "0"));
}

#[test]
fn jail_uml_errors_like_c() {
    require!(Requirement::Root, Requirement::CBinary(C_JAIL));
    let jail = make_jail();
    let dir = jail.path().to_str().unwrap();
    let cases: &[&[&str]] = &[
        &[],
        &["/nonexistent"],
        &["/nonexistent", "no_such_user_xyz"],
        &["/nonexistent", "no_such_user_xyz", "/linux"],
        &["/nonexistent", "12x", "/linux"],
        &["/nonexistent", "root", "/linux", "mem=64M"],
        &["/nonexistent", "0x10", "/linux"],
        &[dir, "4242", "/no-such-program"],
        &[dir, "4242", "no-such-program", "arg"],
        &[dir, "4242", "/MARKER"],
    ];
    let jail_uml = tool(C_JAIL, "jail_uml");
    for args in cases {
        let ours = jail_uml.same(args);
        assert_eq!(ours.code, Some(1), "{args:?}");
    }
    let ours = jail_uml.run(Side::Ours, &[dir, "4242", "/no-such-program"]);
    assert_eq!(
        ours.stderr_str(),
        "execve of /no-such-program failed : No such file or directory\n"
    );
}

#[test]
fn jail_uml_refuses_non_root_like_c() {
    require!(Requirement::Root, Requirement::CBinary(C_JAIL));
    let Some(setpriv) = find_in_path("setpriv") else {
        eprintln!("SKIP: setpriv (util-linux) not found");
        return;
    };
    let ours = tool(C_JAIL, "jail_uml")
        .wrapper([
            setpriv.into_os_string(),
            "--reuid=65534".into(),
            "--regid=65534".into(),
            "--clear-groups".into(),
        ])
        .same(&["/", "root", "/bin/true"]);
    assert_eq!(ours.stderr_str(), "jail_uml must be run as root\n");
}

#[test]
fn jail_uml_deviations() {
    require!(Requirement::Root);
    let jail = make_jail();
    let dir = jail.path().to_str().unwrap();
    let usage = "Usage : jail_uml jail-directory user uml-command-line ...\n";
    // No command (C: chdir, chroot, then execv(NULL)); an empty, negative
    // or out-of-range uid (C: "" and 4294967296 became uid 0).
    for args in [
        &[dir, "4242"][..],
        &[dir, "", "/jail-probe"],
        &[dir, "-1", "/jail-probe"],
        &[dir, "4294967295", "/jail-probe"],
        &[dir, "4294967296", "/jail-probe"],
    ] {
        let out = tool(C_JAIL, "jail_uml").run(Side::Ours, args);
        assert_eq!(out.code, Some(1), "{args:?}: {out}");
        assert!(out.stdout.is_empty(), "{args:?}: {out}");
        assert!(out.stderr_str().starts_with(usage), "{args:?}: {out}");
    }
}
