//! User and group names resolve through the system's NSS configuration,
//! not just `/etc/passwd` and `/etc/group` (issue 12): for `tunctl -u/-g`,
//! `jail_uml` and the `uml_net` policy file, with a name that only a
//! non-`files` module knows — Debian's `libnss-extrausers`, configured in
//! a private mount namespace: `/etc` is an overlay whose
//! `nsswitch.conf` says `passwd: files extrausers` and `group: files
//! extrausers` (and which holds the `uml_net` policy), and
//! `/var/lib/extrausers` is bind-mounted from the test's directory. The
//! same commands without that configuration must fail to find the names,
//! so the module is what resolves them.
//!
//! Also: the name-taking programs are dynamically linked (which is how
//! they can load NSS modules) and the others static; and the setuid
//! `uml_net`, being dynamic, is protected by glibc's secure mode from
//! `LD_PRELOAD` and `LD_LIBRARY_PATH`, which do reach a dynamic program
//! run without privilege change (the control).
//!
//! Every tap and route is made in a network namespace the test creates.

// Test code: a failed setup step should abort the test with its message.
#![allow(clippy::expect_used, clippy::unwrap_used)]

use std::ffi::OsStr;
use std::fs;
use std::io::Write;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use uml_integration_tests::{
    find_in_path, require, run_with_timeout, workspace_bin, NetNs, Requirement, RunOutput,
};

const LIMIT: Duration = Duration::from_secs(30);

/// The user only extrausers knows, its primary group and a second group.
const USER: &str = "k7nssuser";
const UID: u32 = 43210;
const PRIMARY: &str = "k7nssprimary";
const PRIMARY_GID: u32 = 43211;
const NET_GROUP: &str = "k7nssnet";
const NET_GID: u32 = 43212;
/// A second extrausers user, in no group but its own.
const OTHER: &str = "k7nssother";
const OTHER_UID: u32 = 43220;
const OTHER_GID: u32 = 43221;

/// Under `CI=true` a missing prerequisite fails; elsewhere the test is
/// skipped loudly.
fn skip_or_fail(reason: &str) {
    if std::env::var("CI").as_deref() == Ok("true") {
        panic!("{reason}; CI must provide it");
    }
    let current = std::thread::current();
    let _ = writeln!(
        std::io::stderr(),
        "SKIP {}: {reason}",
        current.name().unwrap_or("<unknown test>")
    );
}

/// The private NSS configuration: overlay upper and work directories for
/// `/etc` and the extrausers files.
struct ExtraUsers {
    dir: tempfile::TempDir,
}

/// Sets up `/etc` and `/var/lib/extrausers` in the (new, private) mount
/// namespace, then runs the rest of the arguments.
const ENTER: &str = "set -e
mount -t overlay overlay -o \"lowerdir=/etc,upperdir=$1/upper,workdir=$1/work\" /etc
mount --bind \"$1/extrausers\" /var/lib/extrausers
shift
exec \"$@\"";

impl ExtraUsers {
    /// The configuration, with the `uml_net` policy `policy` if given.
    fn new(policy: Option<&str>) -> ExtraUsers {
        let dir = tempfile::Builder::new().prefix("k7nss-").tempdir().unwrap();
        let p = dir.path();
        for d in ["upper", "work", "extrausers"] {
            fs::create_dir(p.join(d)).unwrap();
        }
        fs::write(
            p.join("upper/nsswitch.conf"),
            "passwd: files extrausers\ngroup: files extrausers\nshadow: files\n",
        )
        .unwrap();
        fs::write(
            p.join("extrausers/passwd"),
            format!(
                "{USER}:x:{UID}:{PRIMARY_GID}:NSS test:/nonexistent:/usr/sbin/nologin\n\
                 {OTHER}:x:{OTHER_UID}:{OTHER_GID}:NSS test:/nonexistent:/usr/sbin/nologin\n"
            ),
        )
        .unwrap();
        fs::write(
            p.join("extrausers/group"),
            format!(
                "{PRIMARY}:x:{PRIMARY_GID}:\n{NET_GROUP}:x:{NET_GID}:{USER}\n\
                 {OTHER}:x:{OTHER_GID}:\n"
            ),
        )
        .unwrap();
        if let Some(text) = policy {
            let conf = p.join("upper/uml-utilities");
            fs::create_dir(&conf).unwrap();
            fs::set_permissions(&conf, fs::Permissions::from_mode(0o755)).unwrap();
            let file = conf.join("uml_net.conf");
            fs::write(&file, text).unwrap();
            fs::set_permissions(&file, fs::Permissions::from_mode(0o644)).unwrap();
        }
        // Readable by the users the programs become.
        for sub in ["", "extrausers", "upper"] {
            fs::set_permissions(p.join(sub), fs::Permissions::from_mode(0o755)).unwrap();
        }
        for f in [
            "extrausers/passwd",
            "extrausers/group",
            "upper/nsswitch.conf",
        ] {
            fs::set_permissions(p.join(f), fs::Permissions::from_mode(0o644)).unwrap();
        }
        ExtraUsers { dir }
    }

    /// `program args` in a private mount namespace with this
    /// configuration, inside `ns` if given.
    fn command(&self, ns: Option<&NetNs>, program: &OsStr, args: &[&OsStr]) -> Command {
        let mut cmd = match ns {
            Some(ns) => ns.exec("unshare"),
            None => Command::new("unshare"),
        };
        cmd.args(["-m", "--propagation", "private", "sh", "-c", ENTER, "sh"])
            .arg(self.dir.path())
            .arg(program)
            .args(args);
        cmd
    }

    fn run(&self, ns: Option<&NetNs>, program: &Path, args: &[&str]) -> RunOutput {
        let args: Vec<&OsStr> = args.iter().map(OsStr::new).collect();
        run_with_timeout(&mut self.command(ns, program.as_os_str(), &args), LIMIT)
    }
}

/// Whether the host resolves `name` as a user (`getent passwd`).
fn host_knows_user(name: &str) -> bool {
    run_with_timeout(Command::new("getent").args(["passwd", name]), LIMIT).success()
}

/// The common requirements; `false` when the test should stop.
fn prerequisites() -> bool {
    for r in [Requirement::Root, Requirement::NssModule("extrausers")] {
        if !require(r) {
            return false;
        }
    }
    if !Path::new("/var/lib/extrausers").is_dir() {
        skip_or_fail("/var/lib/extrausers missing (apt-get install libnss-extrausers)");
        return false;
    }
    for name in [USER, OTHER] {
        assert!(
            !host_knows_user(name),
            "{name} exists on this host; the test needs a name only extrausers knows"
        );
    }
    true
}

/// The extrausers configuration works as the test assumes: `getent`, run
/// with it, knows the names.
#[test]
fn the_private_configuration_resolves_through_extrausers() {
    if !prerequisites() {
        return;
    }
    let eu = ExtraUsers::new(None);
    let getent = find_in_path("getent").expect("getent (libc-bin)");
    let out = eu.run(None, &getent, &["passwd", USER]);
    assert!(out.success(), "{out}");
    assert!(
        out.stdout_str()
            .starts_with(&format!("{USER}:x:{UID}:{PRIMARY_GID}:")),
        "{out}"
    );
    let out = eu.run(None, &getent, &["group", NET_GROUP]);
    assert!(out.success(), "{out}");
    // Outside that mount namespace nothing changed.
    assert!(!host_knows_user(USER));
}

#[test]
fn tunctl_owner_and_group_from_a_non_files_module() {
    if !prerequisites() || !require(Requirement::NetNs) || !require(Requirement::DevNetTun) {
        return;
    }
    let eu = ExtraUsers::new(None);
    let ns = NetNs::new("nss-tunctl");
    let tunctl = workspace_bin("tunctl");
    let out = eu.run(
        Some(&ns),
        &tunctl,
        &["-u", USER, "-g", NET_GROUP, "-t", "nss0"],
    );
    assert_eq!(
        (out.code, out.stdout_str()),
        (
            Some(0),
            format!("Set 'nss0' persistent and owned by uid {UID} gid {NET_GID}\n")
        ),
        "{out}"
    );
    let out = eu.run(Some(&ns), &tunctl, &["-g", PRIMARY, "-t", "nss1"]);
    assert_eq!(
        out.stdout_str(),
        format!("Set 'nss1' persistent and owned by gid {PRIMARY_GID}\n"),
        "{out}"
    );
    let list = run_with_timeout(ns.exec(&tunctl).arg("--list"), LIMIT);
    assert_eq!(
        list.stdout_str(),
        format!(
            "nss0: tap persist user {UID} group {NET_GID}\nnss1: tap persist group {PRIMARY_GID}\n"
        ),
        "{list}"
    );
    // Without the module's configuration the names are unknown.
    let out = run_with_timeout(ns.exec(&tunctl).args(["-u", USER, "-t", "nss2"]), LIMIT);
    assert_eq!(out.code, Some(1), "{out}");
    assert!(
        out.stderr_str().starts_with(&format!(
            "'{USER}' is neither a username nor a numeric uid.\n"
        )),
        "{out}"
    );
    let out = run_with_timeout(
        ns.exec(&tunctl).args(["-g", NET_GROUP, "-t", "nss2"]),
        LIMIT,
    );
    assert!(
        out.stderr_str().starts_with(&format!(
            "'{NET_GROUP}' is neither a groupname nor a numeric group.\n"
        )),
        "{out}"
    );
}

#[test]
fn jail_uml_user_from_a_non_files_module() {
    if !prerequisites() {
        return;
    }
    let eu = ExtraUsers::new(None);
    // A jail holding the static probe, reachable by the jailed user.
    let jail = tempfile::Builder::new()
        .prefix("k7nss-jail-")
        .tempdir()
        .unwrap();
    fs::set_permissions(jail.path(), fs::Permissions::from_mode(0o755)).unwrap();
    let probe = jail.path().join("jail-probe");
    fs::copy(workspace_bin("jail-probe"), &probe).unwrap();
    fs::set_permissions(&probe, fs::Permissions::from_mode(0o755)).unwrap();
    let dir = jail.path().to_str().unwrap();
    let jail_uml = workspace_bin("jail_uml");

    let out = eu.run(None, &jail_uml, &[dir, USER, "/jail-probe"]);
    assert!(out.success(), "{out}");
    let report = out.stdout_str();
    let field = |key: &str| {
        report
            .lines()
            .find_map(|l| l.strip_prefix(&format!("{key}=")))
            .unwrap_or_else(|| panic!("no {key}= in {report}"))
            .to_string()
    };
    assert_eq!(field("uid"), format!("{UID},{UID},{UID}"));
    assert_eq!(
        field("gid"),
        format!("{PRIMARY_GID},{PRIMARY_GID},{PRIMARY_GID}")
    );
    assert_eq!(field("groups"), format!("{PRIMARY_GID},{NET_GID}"));

    // Without the configuration the name is not a user and not a number.
    let out = run_with_timeout(
        Command::new(&jail_uml).args([dir, USER, "/jail-probe"]),
        LIMIT,
    );
    assert_eq!(out.code, Some(1), "{out}");
    assert!(out.stderr_str().starts_with("Usage : jail_uml"), "{out}");
}

/// A root-owned mode-4755 copy of our `uml_net` on a mount without
/// `nosuid`, in a directory every user can reach.
fn setuid_uml_net() -> Result<(tempfile::TempDir, PathBuf), String> {
    let nosuid = |path: &Path| {
        let out = run_with_timeout(
            Command::new("findmnt")
                .args(["-n", "-o", "OPTIONS", "-T"])
                .arg(path),
            LIMIT,
        );
        !out.success() || out.stdout_str().split(',').any(|o| o.trim() == "nosuid")
    };
    let bases = [std::env::temp_dir(), PathBuf::from("/var/tmp")];
    let base = bases
        .iter()
        .find(|b| b.is_dir() && !nosuid(b))
        .ok_or_else(|| format!("every candidate directory is mounted nosuid: {bases:?}"))?;
    let dir = tempfile::Builder::new()
        .prefix("k7nss-suid-")
        .tempdir_in(base)
        .map_err(|e| e.to_string())?;
    fs::set_permissions(dir.path(), fs::Permissions::from_mode(0o755))
        .map_err(|e| e.to_string())?;
    let copy = dir.path().join("uml_net");
    fs::copy(workspace_bin("uml_net"), &copy).map_err(|e| e.to_string())?;
    std::os::unix::fs::chown(&copy, Some(0), Some(0)).map_err(|e| e.to_string())?;
    fs::set_permissions(&copy, fs::Permissions::from_mode(0o4755)).map_err(|e| e.to_string())?;
    Ok((dir, copy))
}

/// Our own `NoNewPrivs` flag (set: setuid bits are ignored for children).
fn no_new_privs() -> bool {
    fs::read_to_string("/proc/self/status")
        .unwrap_or_default()
        .lines()
        .any(|l| l.starts_with("NoNewPrivs:") && l.trim_end().ends_with('1'))
}

/// What the setuid tests need beyond root; `None` when they should stop.
fn setuid_setup() -> Option<(tempfile::TempDir, PathBuf, PathBuf)> {
    let Some(setpriv) = find_in_path("setpriv") else {
        skip_or_fail("setpriv not found (apt-get install util-linux)");
        return None;
    };
    if no_new_privs() {
        skip_or_fail("the test runs with no_new_privs: setuid bits are ignored");
        return None;
    }
    match setuid_uml_net() {
        Ok((dir, copy)) => Some((dir, copy, setpriv)),
        Err(why) => {
            skip_or_fail(&why);
            None
        }
    }
}

/// `setpriv` arguments for uid `uid`, gid `gid`, supplementary `groups`.
fn as_user(setpriv: &Path, uid: u32, gid: u32, groups: &[u32]) -> Vec<String> {
    let mut v = vec![
        setpriv.display().to_string(),
        format!("--reuid={uid}"),
        format!("--regid={gid}"),
    ];
    if groups.is_empty() {
        v.push("--clear-groups".into());
    } else {
        let list: Vec<String> = groups.iter().map(u32::to_string).collect();
        v.push(format!("--groups={}", list.join(",")));
    }
    v
}

/// The policy: the extrausers group may use 10.0.0.0/8, the other
/// extrausers user only 10.9.0.0/16.
const POLICY: &str = "# test policy\n\
allow user:k7nssother 10.9.0.0/16\n\
allow group:k7nssnet 10.0.0.0/8\n\
deny all 0.0.0.0/0\n";

#[test]
fn uml_net_policy_names_from_a_non_files_module() {
    if !prerequisites() || !require(Requirement::NetNs) || !require(Requirement::DevNetTun) {
        return;
    }
    assert!(POLICY.contains(&format!("user:{OTHER} ")));
    assert!(POLICY.contains(&format!("group:{NET_GROUP} ")));
    let Some((_suid_dir, uml_net, setpriv)) = setuid_setup() else {
        return;
    };
    let eu = ExtraUsers::new(Some(POLICY));
    let ns = NetNs::new("nss-umlnet");
    let tunctl = workspace_bin("tunctl");
    // Each user's own tap (by number: no names needed here).
    for (uid, tap) in [(UID, "nsst0"), (OTHER_UID, "nsst1")] {
        let out = run_with_timeout(
            ns.exec(&tunctl).args(["-u", &uid.to_string(), "-t", tap]),
            LIMIT,
        );
        assert!(out.success(), "{out}");
        let out = ns.ip(&["link", "set", tap, "up"]);
        assert!(out.success(), "{out}");
    }
    let add = |ids: (u32, u32, &[u32]), tap: &str, addr: &str, with_nss: bool| {
        let mut argv = as_user(&setpriv, ids.0, ids.1, ids.2);
        argv.push(uml_net.display().to_string());
        argv.extend(["4", "add", tap, addr, "255.255.255.0"].map(String::from));
        let args: Vec<&OsStr> = argv[1..].iter().map(OsStr::new).collect();
        let mut cmd = if with_nss {
            eu.command(Some(&ns), OsStr::new(&argv[0]), &args)
        } else {
            let mut c = ns.exec(&argv[0]);
            c.args(&args);
            c
        };
        run_with_timeout(&mut cmd, LIMIT)
    };
    let route = |addr: &str| ns.ip(&["route", "show", addr]).stdout_str();
    let member = (UID, PRIMARY_GID, &[NET_GID][..]);
    let other = (OTHER_UID, OTHER_GID, &[][..]);
    let refused = |out: &RunOutput, uid: u32, addr: &str| {
        assert_eq!(out.code, Some(1), "{out}");
        let text = String::from_utf8_lossy(&out.stdout).into_owned();
        assert!(
            text.contains(&format!(
                "refused by /etc/uml-utilities/uml_net.conf: uid {uid} may not use {addr}"
            )),
            "{out}"
        );
    };

    // The group member: allowed in 10/8 through group:k7nssnet.
    let out = add(member, "nsst0", "10.0.0.2", true);
    assert_eq!(out.code, Some(0), "{out}");
    assert!(
        route("10.0.0.2").contains("dev nsst0"),
        "{}",
        route("10.0.0.2")
    );
    // The other user: not in the group, allowed in 10.9/16 by name only.
    let out = add(other, "nsst1", "10.0.0.3", true);
    refused(&out, OTHER_UID, "10.0.0.3");
    assert!(route("10.0.0.3").is_empty());
    let out = add(other, "nsst1", "10.9.0.3", true);
    assert_eq!(out.code, Some(0), "{out}");
    assert!(route("10.9.0.3").contains("dev nsst1"));

    // The same policy where the names do not resolve: the helper refuses
    // (an unknown name makes the policy invalid), and changes nothing.
    let no_module = ExtraUsers::new(Some(POLICY));
    fs::write(
        no_module.dir.path().join("upper/nsswitch.conf"),
        "passwd: files\ngroup: files\n",
    )
    .unwrap();
    let mut argv = as_user(&setpriv, UID, PRIMARY_GID, &[NET_GID]);
    argv.push(uml_net.display().to_string());
    argv.extend(["4", "add", "nsst0", "10.0.0.4", "255.255.255.0"].map(String::from));
    let args: Vec<&OsStr> = argv[1..].iter().map(OsStr::new).collect();
    let out = run_with_timeout(
        &mut no_module.command(Some(&ns), OsStr::new(&argv[0]), &args),
        LIMIT,
    );
    assert_eq!(out.code, Some(1), "{out}");
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(text.contains("unknown user"), "{out}");
    assert!(route("10.0.0.4").is_empty());
    // (And without any policy file, the Debian behaviour: allowed.)
    let out = add(member, "nsst0", "10.0.0.5", false);
    assert_eq!(out.code, Some(0), "{out}");
}

/// Whether the ELF file at `path` has a `PT_INTERP` program header (is
/// dynamically linked).
fn has_interpreter(path: &Path) -> bool {
    let bytes = fs::read(path).unwrap();
    assert_eq!(&bytes[..4], b"\x7fELF", "{}", path.display());
    assert_eq!(bytes[4], 2, "64-bit ELF expected");
    let u16_at = |o: usize| u16::from_le_bytes([bytes[o], bytes[o + 1]]);
    let u32_at = |o: usize| u32::from_le_bytes(bytes[o..o + 4].try_into().unwrap());
    let u64_at = |o: usize| u64::from_le_bytes(bytes[o..o + 8].try_into().unwrap());
    let phoff = usize::try_from(u64_at(0x20)).unwrap();
    let phentsize = usize::from(u16_at(0x36));
    let phnum = usize::from(u16_at(0x38));
    (0..phnum).any(|i| u32_at(phoff + i * phentsize) == 3)
}

/// The programs that take names are dynamic (they can load NSS modules);
/// the others stay static-pie (start-up speed: `scripts/bench-mconsole`).
#[test]
fn name_taking_programs_are_dynamic_the_others_static() {
    for name in ["tunctl", "jail_uml", "uml_net"] {
        assert!(
            has_interpreter(&workspace_bin(name)),
            "{name} is statically linked: it cannot load NSS modules (.cargo/link-cc, {name}/build.rs)"
        );
    }
    for name in [
        "uml_mconsole",
        "uml_switch",
        "uml_moo",
        "uml_mkcow",
        "uml_watchdog",
        "port-helper",
        "jail-probe",
    ] {
        assert!(
            !has_interpreter(&workspace_bin(name)),
            "{name} is dynamically linked"
        );
    }
}

/// The setuid `uml_net` is dynamic now; glibc's secure mode keeps
/// `LD_PRELOAD` and `LD_LIBRARY_PATH` from loading anything into it. The
/// control shows the planted library does load into a dynamic program
/// started without a privilege change (our `tunctl`).
#[test]
fn setuid_uml_net_ignores_the_loader_environment() {
    if !require(Requirement::Root) || !require(Requirement::NetNs) {
        return;
    }
    let Some(cc) = find_in_path("cc") else {
        skip_or_fail("cc not found (apt-get install gcc)");
        return;
    };
    let Some((_suid_dir, uml_net, setpriv)) = setuid_setup() else {
        return;
    };
    let dir = tempfile::Builder::new()
        .prefix("k7nss-preload-")
        .tempdir()
        .unwrap();
    fs::set_permissions(dir.path(), fs::Permissions::from_mode(0o777)).unwrap();
    let marker = dir.path().join("marker");
    let src = dir.path().join("evil.c");
    fs::write(
        &src,
        format!(
            "#include <stdio.h>\n\
             #include <string.h>\n\
             #include <unistd.h>\n\
             __attribute__((constructor)) static void evil(void) {{\n\
             char exe[4096] = \"\";\n\
             ssize_t n = readlink(\"/proc/self/exe\", exe, sizeof exe - 1);\n\
             if (n > 0) exe[n] = 0;\n\
             const char *base = strrchr(exe, '/');\n\
             base = base ? base + 1 : exe;\n\
             /* ip and setpriv, which start the program, are not the point. */\n\
             if (strcmp(base, \"uml_net\") && strcmp(base, \"tunctl\")) return;\n\
             FILE *f = fopen(\"{}\", \"a\");\n\
             if (f) {{ fprintf(f, \"loaded into %s\\n\", base); fclose(f); }}\n}}\n",
            marker.display()
        ),
    )
    .unwrap();
    let lib = dir.path().join("evil.so");
    let out = run_with_timeout(
        Command::new(&cc)
            .args(["-shared", "-fPIC", "-o"])
            .arg(&lib)
            .arg(&src),
        LIMIT,
    );
    assert!(out.success(), "cc: {out}");
    // A directory posing as a library directory: its libgcc_s.so.1 (which
    // the Rust programs need) is the planted library.
    let libdir = dir.path().join("lib");
    fs::create_dir(&libdir).unwrap();
    fs::copy(&lib, libdir.join("libgcc_s.so.1")).unwrap();
    for p in [&lib, &libdir.join("libgcc_s.so.1")] {
        fs::set_permissions(p, fs::Permissions::from_mode(0o755)).unwrap();
    }
    fs::set_permissions(&libdir, fs::Permissions::from_mode(0o755)).unwrap();
    let ns = NetNs::new("nss-preload");
    let hostile = |cmd: &mut Command| {
        cmd.env("LD_PRELOAD", &lib)
            .env("LD_LIBRARY_PATH", &libdir)
            .env("LD_AUDIT", &lib);
    };

    // Controls: each variable reaches a dynamic program started without a
    // privilege change (our tunctl): LD_PRELOAD runs the planted code, and
    // the loader takes libgcc_s from LD_LIBRARY_PATH (and then fails, as
    // the planted one lacks the unwinder).
    let mut control = ns.exec(workspace_bin("tunctl"));
    control.arg("--list").env("LD_PRELOAD", &lib);
    let out = run_with_timeout(&mut control, LIMIT);
    assert!(
        marker.exists(),
        "LD_PRELOAD did not load the planted library into a dynamic program (the test \
         would prove nothing): {out}"
    );
    fs::remove_file(&marker).unwrap();
    let mut control = ns.exec(workspace_bin("tunctl"));
    control.arg("--list").env("LD_LIBRARY_PATH", &libdir);
    let out = run_with_timeout(&mut control, LIMIT);
    let planted = libdir.display().to_string();
    assert!(
        out.stderr_str().contains(&planted),
        "LD_LIBRARY_PATH did not reach the loader of a dynamic program: {out}"
    );

    // The setuid helper, run by nobody: nothing planted runs (the request
    // itself is refused: nobody owns no tap).
    let mut cmd = ns.exec(&setpriv);
    cmd.args(["--reuid=65534", "--regid=65534", "--clear-groups"])
        .arg(&uml_net)
        .args(["4", "add", "lo", "10.0.0.1", "255.255.255.0"]);
    hostile(&mut cmd);
    let out = run_with_timeout(&mut cmd, LIMIT);
    assert!(!out.timed_out, "{out}");
    assert!(
        !marker.exists(),
        "LD_PRELOAD/LD_LIBRARY_PATH/LD_AUDIT reached the setuid uml_net: {}",
        fs::read_to_string(&marker).unwrap_or_default()
    );
    // It ran, with the system's libgcc_s (the planted one would have
    // stopped it with a symbol lookup error, status 127), and refused as
    // usual: lo is no tap of nobody's.
    assert_eq!(out.code, Some(1), "{out}");
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("refusing to change 'lo'"),
        "{out}"
    );
}
