//! tunctl: differential tests against Debian's `/usr/bin/tunctl` (see
//! `docs/tunctl.md` §4, `docs/testing.md` §7.3), tests of the new options
//! (`-n`/`-p`, `--vnet-hdr`, `--multi-queue`, `--list` against `ip tuntap
//! show`, `--help`), and real-kernel tests: a 6.1 UML attached to a tap
//! made by our `tunctl` pings its namespace and is pinged back
//! (`docs/testing.md` §7.2), and a 7.x guest does the same over
//! `vecN:transport=tap`.
//!
//! Every device is created inside a network namespace the test creates
//! (and deletes, with its devices). Each implementation runs the same
//! sequence of commands in a fresh namespace of its own, so that
//! kernel-chosen names (`tap0`, `tap1`, …) are the same for both. Both are
//! run by full path; their path in stderr is replaced by `PROG`.

// Test code: a failed setup step should abort the test with its message.
#![allow(clippy::expect_used, clippy::unwrap_used)]

use std::ffi::OsString;
use std::io::Write;
use std::os::unix::ffi::OsStringExt;
use std::path::Path;
use std::time::Duration;

use uml_integration_tests::diff::{self, Differential, Side};
use uml_integration_tests::{
    find_in_path, require, run_with_timeout, workspace_bin, Kernel, NetNs, Requirement, RunOutput,
    Uml, UmlConfig,
};

/// Debian's C tunctl.
const C_TUNCTL: &str = "/usr/bin/tunctl";
/// Bound of each tunctl run.
const LIMIT: Duration = Duration::from_secs(15);
/// What the program name is replaced by in stderr.
const PROG: &str = "PROG";

/// Debian's usage text for program name `prog` (`docs/tunctl.md` §1).
fn usage(prog: &str) -> String {
    format!(
        "Create: {prog} [-b] [-u owner] [-g group] [-t device-name] [-f tun-clone-device]\n\
         Delete: {prog} -d device-name [-f tun-clone-device]\n\
         \n\
         The default tun clone device is /dev/net/tun - some systems use\n\
         /dev/misc/net/tun instead\n\
         \n\
         -b will result in brief output (just the device name)\n"
    )
}

/// The arguments as `OsString`s.
fn a(args: &[&str]) -> Vec<OsString> {
    args.iter().map(OsString::from).collect()
}

/// One step of a sequence.
#[derive(Clone)]
enum Step {
    /// Runs tunctl with these arguments, optionally under a wrapper
    /// program (e.g. `unshare -U -r`) and with extra environment.
    Run {
        args: Vec<OsString>,
        wrapper: &'static [&'static str],
        env: &'static [(&'static str, &'static str)],
    },
    /// Runs `ip -n NS ARGS` (set-up, e.g. a device made by other means).
    Ip(&'static [&'static str]),
}

fn run(args: &[&str]) -> Step {
    Step::Run {
        args: a(args),
        wrapper: &[],
        env: &[],
    }
}

fn run_os(args: Vec<OsString>) -> Step {
    Step::Run {
        args,
        wrapper: &[],
        env: &[],
    }
}

/// What a step printed, and the namespace's links afterwards.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Outcome {
    /// With the program's path replaced by [`PROG`].
    out: RunOutput,
    /// One line per link except `lo`: name, flags, mtu and the `tun …`
    /// details of `ip -d link show` (no MAC, no index).
    links: Vec<String>,
}

impl Outcome {
    /// The `tun type … ` details of link `name`, `None` when it does not
    /// exist.
    fn tun_details(&self, name: &str) -> Option<String> {
        self.links.iter().find_map(|l| {
            let (n, rest) = l.split_once(' ')?;
            (n == name).then(|| rest.split_once(" | ").map_or("", |(_, t)| t).to_string())
        })
    }
}

/// Debian's tunctl and ours, run by full path inside `ns` with a plain
/// `LC_ALL=C` environment without `POSIXLY_CORRECT`; the program's path
/// in what it prints is replaced by [`PROG`].
fn tunctl_in(ns: &NetNs) -> Differential<'_> {
    Differential::new(C_TUNCTL, "tunctl")
        .limit(LIMIT)
        .launcher(|program| ns.exec(program))
        .env_remove("POSIXLY_CORRECT")
        .env("LC_ALL", "C")
        .program_as(PROG)
}

/// The namespace's links (see [`Outcome::links`]).
fn links(ns: &NetNs) -> Vec<String> {
    let out = ns.ip(&["-d", "-o", "link", "show"]);
    assert!(out.success(), "ip link show: {out}");
    out.stdout_str().lines().filter_map(link_summary).collect()
}

/// `2: tap0: <BROADCAST,MULTICAST> mtu 1500 … \    tun type tap … user root
/// addrgenmode …` → `tap0 <BROADCAST,MULTICAST> mtu 1500 | tun type tap …
/// user root`; `None` for `lo`.
fn link_summary(line: &str) -> Option<String> {
    let mut words = line.split_whitespace();
    let _index = words.next()?;
    let name = words.next()?.trim_end_matches(':');
    if name == "lo" {
        return None;
    }
    let flags = words.next().unwrap_or("");
    let mtu = words
        .skip_while(|w| *w != "mtu")
        .nth(1)
        .unwrap_or("?")
        .to_string();
    let tun = match line.find("tun type ") {
        Some(at) => {
            let t = &line[at..];
            let end = t
                .find(" addrgenmode")
                .or_else(|| t.find(" \\"))
                .unwrap_or(t.len());
            t[..end].trim_end().to_string()
        }
        None => String::new(),
    };
    Some(format!("{name} {flags} mtu {mtu} | {tun}"))
}

/// Runs `steps` with `side`'s tunctl in a fresh namespace; one outcome
/// per step (for `Ip` steps only the links are meaningful).
fn run_sequence(side: Side, tag: &str, steps: &[Step]) -> Vec<Outcome> {
    let ns = NetNs::new(tag);
    let tunctl = tunctl_in(&ns);
    steps
        .iter()
        .map(|step| {
            let out = match step {
                Step::Run { args, wrapper, env } => env
                    .iter()
                    .fold(tunctl.clone().wrapper(wrapper.iter()), |t, (k, v)| {
                        t.env(k, v)
                    })
                    .run(side, args),
                Step::Ip(args) => {
                    let out = ns.ip(args);
                    assert!(out.success(), "ip {args:?}: {out}");
                    out
                }
            };
            Outcome {
                out,
                links: links(&ns),
            }
        })
        .collect()
}

fn describe(step: &Step) -> String {
    match step {
        Step::Run { args, wrapper, env } => format!("{env:?} {wrapper:?} tunctl {args:?}"),
        Step::Ip(args) => format!("ip {args:?}"),
    }
}

/// Runs `steps` with Debian's tunctl and with ours (each in a fresh
/// namespace) and asserts that every step printed the same stdout and
/// stderr, exited the same way and left the same links. Returns our
/// outcomes.
fn differential(tag: &str, steps: &[Step]) -> Vec<Outcome> {
    let theirs = run_sequence(Side::C, &format!("{tag}-c"), steps);
    let ours = run_sequence(Side::Ours, &format!("{tag}-rs"), steps);
    for ((step, t), o) in steps.iter().zip(&theirs).zip(&ours) {
        let what = describe(step);
        diff::assert_same(&what, &t.out, &o.out);
        diff::assert_same_lines(&format!("links after {what}"), &t.links, &o.links);
    }
    ours
}

/// `tun type tap pi off vnet_hdr off persist on ` + `owner`.
fn tap(owner: &str) -> String {
    format!("tun type tap pi off vnet_hdr off persist on {owner}")
}

/// `tun type tun pi off vnet_hdr off persist on ` + `owner`.
fn tun(owner: &str) -> String {
    format!("tun type tun pi off vnet_hdr off persist on {owner}")
}

/// A device expectation of the table in `docs/tunctl.md` §4.
enum Dev {
    /// No statement.
    Any,
    /// `name` exists with these `tun` details.
    Is(&'static str, String),
    /// `name` does not exist.
    Gone(&'static str),
}

/// Checks one outcome against `docs/tunctl.md` §4 (stdout, stderr, status,
/// device).
fn check_spec(o: &Outcome, what: &str, stdout: &str, stderr: &str, code: i32, dev: &Dev) {
    assert_eq!(o.out.stdout_str(), stdout, "stdout of {what}");
    assert_eq!(o.out.stderr_str(), stderr, "stderr of {what}");
    assert_eq!(o.out.code, Some(code), "status of {what}");
    match dev {
        Dev::Any => {}
        Dev::Is(name, details) => assert_eq!(
            o.tun_details(name).as_deref(),
            Some(details.as_str()),
            "device {name} after {what}: {:#?}",
            o.links
        ),
        Dev::Gone(name) => assert_eq!(o.tun_details(name), None, "{name} still there after {what}"),
    }
}

/// The whole transcript of `docs/tunctl.md` §4, in its order: the same
/// output, status and devices as Debian's tunctl, and as observed there.
#[test]
fn transcript_matches_debian() {
    require!(
        Requirement::Root,
        Requirement::NetNs,
        Requirement::DevNetTun,
        Requirement::CBinary("tunctl")
    );
    let u = usage(PROG);
    let set = |name: &str, who: &str| format!("Set '{name}' persistent and owned by {who}\n");
    let gone = |name: &str| format!("Set '{name}' nonpersistent\n");
    let not_user = |x: &str| format!("'{x}' is neither a username nor a numeric uid.\n{u}");
    let not_group = |x: &str| format!("'{x}' is neither a groupname nor a numeric group.\n{u}");
    #[rustfmt::skip]
    let table: Vec<(Step, String, String, i32, Dev)> = vec![
        (run(&[]), set("tap0", "uid 0"), String::new(), 0, Dev::Is("tap0", tap("user root"))),
        (run(&[]), set("tap1", "uid 0"), String::new(), 0, Dev::Is("tap1", tap("user root"))),
        (run(&["-b"]), "tap2\n".into(), String::new(), 0, Dev::Is("tap2", tap("user root"))),
        (run(&["-t", "mytap0"]), set("mytap0", "uid 0"), String::new(), 0, Dev::Is("mytap0", tap("user root"))),
        (run(&["-t", "mytap0"]), set("mytap0", "uid 0"), String::new(), 0, Dev::Is("mytap0", tap("user root"))),
        (run(&["-u", "nobody", "-t", "utap"]), set("utap", "uid 65534"), String::new(), 0, Dev::Is("utap", tap("user nobody"))),
        (run(&["-u", "1234", "-t", "ntap"]), set("ntap", "uid 1234"), String::new(), 0, Dev::Is("ntap", tap("user 1234"))),
        (run(&["-g", "nogroup", "-t", "gtap"]), set("gtap", "gid 65534"), String::new(), 0, Dev::Is("gtap", tap("group nogroup"))),
        (run(&["-u", "nobody", "-g", "nogroup", "-t", "ugtap"]), set("ugtap", "uid 65534 gid 65534"), String::new(), 0, Dev::Is("ugtap", tap("user nobody group nogroup"))),
        (run(&["-g", "4321", "-t", "g2tap"]), set("g2tap", "gid 4321"), String::new(), 0, Dev::Is("g2tap", tap("group 4321"))),
        (run(&["-t", "tun7"]), set("tun7", "uid 0"), String::new(), 0, Dev::Is("tun7", tap("user root"))),
        (run(&["-b", "-t", "btap"]), "btap\n".into(), String::new(), 0, Dev::Is("btap", tap("user root"))),
        (run(&["-f", "/dev/net/tun", "-t", "ftap"]), set("ftap", "uid 0"), String::new(), 0, Dev::Is("ftap", tap("user root"))),
        (run(&["-t", "abcdefghijklmnopqrstuvwxyz"]), set("abcdefghijklmno", "uid 0"), String::new(), 0, Dev::Is("abcdefghijklmno", tap("user root"))),
        (run(&["-d", "tap0"]), gone("tap0"), String::new(), 0, Dev::Gone("tap0")),
        (run(&["-d", "nosuchtap"]), gone("nosuchtap"), String::new(), 0, Dev::Gone("nosuchtap")),
        (run(&["-d", "tun7"]), gone("tun7"), String::new(), 0, Dev::Gone("tun7")),
        (run(&["-b", "-d", "tap1"]), gone("tap1"), String::new(), 0, Dev::Gone("tap1")),
        (run(&["-u", "no_such_user_xyz"]), String::new(), not_user("no_such_user_xyz"), 1, Dev::Any),
        (run(&["-g", "no_such_group_xyz"]), String::new(), not_group("no_such_group_xyz"), 1, Dev::Any),
        (run(&["-u", "12abc"]), String::new(), not_user("12abc"), 1, Dev::Any),
        (run(&["-f", "/nonexistent/tun"]), String::new(), "Failed to open '/nonexistent/tun' : No such file or directory\n".into(), 1, Dev::Any),
        (run(&["-f", "/dev/null"]), String::new(), "TUNSETIFF: Inappropriate ioctl for device\n".into(), 1, Dev::Any),
        (run(&["-x"]), String::new(), format!("{PROG}: invalid option -- 'x'\n{u}"), 1, Dev::Any),
        (run(&["-h"]), String::new(), format!("{PROG}: invalid option -- 'h'\n{u}"), 1, Dev::Any),
        (run(&["-t"]), String::new(), format!("{PROG}: option requires an argument -- 't'\n{u}"), 1, Dev::Any),
        (run(&["-d"]), String::new(), format!("{PROG}: option requires an argument -- 'd'\n{u}"), 1, Dev::Any),
        (run(&["foo"]), String::new(), u.clone(), 1, Dev::Any),
    ];
    let steps: Vec<Step> = table.iter().map(|t| t.0.clone()).collect();
    let ours = differential("tctr", &steps);
    for ((step, stdout, stderr, code, dev), o) in table.iter().zip(&ours) {
        check_spec(o, &describe(step), stdout, stderr, *code, dev);
    }
    // The transcript's error cases changed nothing: the links left are
    // those the successful cases made and did not delete.
    let names: Vec<&str> = ours
        .last()
        .unwrap()
        .links
        .iter()
        .filter_map(|l| l.split(' ').next())
        .collect();
    assert_eq!(
        names,
        [
            "tap2",
            "mytap0",
            "utap",
            "ntap",
            "gtap",
            "ugtap",
            "g2tap",
            "btap",
            "ftap",
            "abcdefghijklmno"
        ]
    );
}

/// Corners of getopt, strtol, name handling and kernel errors beyond the table
/// of `docs/tunctl.md` §4: same output, status and devices as Debian's tunctl.
#[test]
fn corner_cases_match_debian() {
    require!(
        Requirement::Root,
        Requirement::NetNs,
        Requirement::DevNetTun,
        Requirement::CBinary("tunctl")
    );
    let posix: &'static [(&str, &str)] = &[("POSIXLY_CORRECT", "1")];
    let mut steps = vec![
        // Clustered flags, attached values, repeated options.
        run(&["-bt", "ctap"]),
        run(&["-bttap9"]),
        run(&["-ttap8", "-b"]),
        run(&["-t", "first", "-t", "second"]),
        run(&["-d", "nosuch", "-t", "second"]),
        run(&["-t", "--"]),
        run(&["-t", ""]),
        run(&["-d", ""]),
        run(&["-t", "abcdefghijklmno"]),
        // strtol base 0, whole string, long → uid_t, (uid_t)-1 = unset.
        run(&["-u", "0x10", "-t", "hx"]),
        run(&["-u", "010", "-t", "oc"]),
        run(&["-u", "-5", "-t", "neg"]),
        run(&["-u", "4294967295", "-t", "big"]),
        run(&["-u", "99999999999", "-t", "huge"]),
        run(&["-u", "99999999999999999999999", "-t", "sat"]),
        run(&["-u", "", "-t", "emp"]),
        run(&["-g", "", "-t", "gemp"]),
        run(&["-u", " 12", "-t", "sp"]),
        run(&["-u", "+7", "-t", "plus"]),
        run(&["-u", "-1", "-g", "-1", "-t", "m1"]),
        run(&["-u", "nobody", "-u", "-1", "-t", "m2"]),
        run(&["-g", "nogroup", "-u", "-1", "-t", "m3"]),
        run(&["-u", "root", "-g", "root", "-t", "rr"]),
        run(&["-u", "0x"]),
        run(&["-u", "08"]),
        run(&["-u", "-"]),
        run(&["-u", " "]),
        run(&["-g", "12 "]),
        run(&["-d", "tap0", "-u", "bad_user_xyz"]),
        // getopt: operands, permutation, `--`, errors.
        run(&["-t", "a", "--", "extra"]),
        run(&["--", "-t", "x"]),
        run(&["foo", "-x"]),
        run(&["foo", "-t", "y"]),
        run(&["-b", "-"]),
        // Only exactly `--help`, `--list`, `--vnet-hdr` and `--multi-queue`
        // are new; anything else spelled with two dashes is Debian's error.
        run(&["--hel"]),
        run(&["--lis"]),
        run(&["--list=1"]),
        run(&["--vnet_hdr"]),
        run(&["--multi_queue"]),
        run(&["-t", "--list"]),
        run(&["-d", "--list"]),
        run(&["-:"]),
        run(&["-bx"]),
        run(&["-u"]),
        run(&["-g"]),
        run(&["-f"]),
        run(&["-u", "bad_user_xyz", "-x"]),
        run(&["-x", "-u", "bad_user_xyz"]),
        Step::Run {
            args: a(&["foo", "-x"]),
            wrapper: &[],
            env: posix,
        },
        Step::Run {
            args: a(&["-t", "ptap", "foo"]),
            wrapper: &[],
            env: posix,
        },
        // Bytes that are not UTF-8.
        run_os(vec!["-u".into(), OsString::from_vec(vec![0xff])]),
        run_os(vec![OsString::from_vec(vec![b'-', 0xfe])]),
        run_os(vec!["-t".into(), "ééééééééé".into()]),
        // Kernel errors.
        run(&["-t", "bad/name"]),
        run(&["-t", "a b"]),
        run(&["-f", "/tmp"]),
        run(&["-f", ""]),
        // A TUN device made by other means: TAP mode cannot attach.
        Step::Ip(&["tuntap", "add", "dev", "iptun", "mode", "tun"]),
        run(&["-t", "iptun"]),
        run(&["-d", "iptun"]),
    ];
    // Clean up the devices, as a user would.
    for name in ["ctap", "tap9", "tap8", "second", "--", "hx", "big"] {
        steps.push(run(&["-d", name]));
    }
    differential("tcorner", &steps);
}

/// Failures after `TUNSETIFF`: in a user namespace the owner and group
/// must be mapped, else `TUNSETOWNER`/`TUNSETGROUP` fail — and Debian
/// prints the `TUNSETPERSIST` text for both, leaving the device
/// persistent. Plus the permission errors of an ordinary user.
#[test]
fn privilege_errors_match_debian() {
    require!(
        Requirement::Root,
        Requirement::NetNs,
        Requirement::DevNetTun,
        Requirement::CBinary("tunctl")
    );
    for program in ["unshare", "setpriv"] {
        if find_in_path(program).is_none() {
            skip_or_fail(&format!(
                "`{program}` not found (apt-get install util-linux)"
            ));
            return;
        }
    }
    let userns: &'static [&str] = &["unshare", "-U", "-r"];
    let nobody: &'static [&str] = &[
        "setpriv",
        "--reuid=65534",
        "--regid=65534",
        "--clear-groups",
    ];
    let under = |wrapper: &'static [&'static str], args: &[&str]| Step::Run {
        args: a(args),
        wrapper,
        env: &[],
    };
    let mut steps = vec![
        run(&["-t", "rtap"]),
        // Root in a user namespace may attach to root's device…
        under(userns, &["-u", "5", "-t", "rtap"]),
        under(userns, &["-g", "5", "-t", "rtap"]),
        under(userns, &["-u", "0", "-g", "5", "-t", "rtap"]),
        under(userns, &["-t", "rtap"]),
        // …but not create one in a namespace it does not own.
        under(userns, &["-t", "newtap"]),
        under(userns, &["-d", "rtap"]),
    ];
    // An ordinary user cannot open /dev/net/tun (mode 0600) — when that
    // user can run our binary at all (a checkout under /root cannot).
    let as_nobody = others_can_execute(&workspace_bin("tunctl"));
    if as_nobody {
        steps.push(under(nobody, &["-t", "x"]));
        steps.push(under(nobody, &["-d", "x"]));
    } else {
        eprintln!("note: our tunctl is not executable by others; no steps as nobody");
    }
    let ours = differential("tpriv", &steps);
    let o = &ours[1];
    assert_eq!(o.out.stderr_str(), "TUNSETPERSIST: Invalid argument\n");
    assert_eq!(o.out.code, Some(1));
    assert_eq!(o.tun_details("rtap"), Some(tap("user root")));
    assert_eq!(
        ours[5].out.stderr_str(),
        "TUNSETIFF: Operation not permitted\n"
    );
    if as_nobody {
        assert_eq!(
            ours[7].out.stderr_str(),
            "Failed to open '/dev/net/tun' : Permission denied\n"
        );
    }
}

/// Whether users other than the owner may execute `path` (it and every
/// directory above it have the "others" execute bit).
fn others_can_execute(path: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt;
    path.ancestors().all(|p| {
        p.as_os_str().is_empty()
            || p.metadata()
                .is_ok_and(|m| m.permissions().mode() & 0o001 != 0)
    })
}

/// The new options: `-n` makes TUN devices, `-p` TAP devices (the
/// default); the last one given wins; output is unchanged.
#[test]
fn tun_and_tap_mode_options() {
    require!(
        Requirement::Root,
        Requirement::NetNs,
        Requirement::DevNetTun
    );
    let set = |name: &str, who: &str| format!("Set '{name}' persistent and owned by {who}\n");
    let gone = |name: &str| format!("Set '{name}' nonpersistent\n");
    let einval = "TUNSETIFF: Invalid argument\n".to_string();
    #[rustfmt::skip]
    let table: Vec<(Step, String, String, i32, Dev)> = vec![
        (run(&["-n"]), set("tun0", "uid 0"), String::new(), 0, Dev::Is("tun0", tun("user root"))),
        (run(&["-n", "-b"]), "tun1\n".into(), String::new(), 0, Dev::Is("tun1", tun("user root"))),
        (run(&["-p"]), set("tap0", "uid 0"), String::new(), 0, Dev::Is("tap0", tap("user root"))),
        (run(&["-n", "-t", "mytun"]), set("mytun", "uid 0"), String::new(), 0, Dev::Is("mytun", tun("user root"))),
        (run(&["-nt", "mytun"]), set("mytun", "uid 0"), String::new(), 0, Dev::Is("mytun", tun("user root"))),
        (run(&["-p", "-t", "ptap"]), set("ptap", "uid 0"), String::new(), 0, Dev::Is("ptap", tap("user root"))),
        (run(&["-n", "-p", "-t", "ptap2"]), set("ptap2", "uid 0"), String::new(), 0, Dev::Is("ptap2", tap("user root"))),
        (run(&["-p", "-n", "-t", "ntun2"]), set("ntun2", "uid 0"), String::new(), 0, Dev::Is("ntun2", tun("user root"))),
        (run(&["-n", "-u", "nobody", "-g", "nogroup", "-t", "ugtun"]), set("ugtun", "uid 65534 gid 65534"), String::new(), 0, Dev::Is("ugtun", tun("user nobody group nogroup"))),
        (run(&["-n", "-g", "4321", "-t", "gtun"]), set("gtun", "gid 4321"), String::new(), 0, Dev::Is("gtun", tun("group 4321"))),
        // A device keeps its kind.
        (run(&["-t", "mytun"]), String::new(), einval.clone(), 1, Dev::Is("mytun", tun("user root"))),
        (run(&["-n", "-t", "ptap"]), String::new(), einval.clone(), 1, Dev::Is("ptap", tap("user root"))),
        (run(&["-d", "mytun"]), String::new(), einval.clone(), 1, Dev::Is("mytun", tun("user root"))),
        (run(&["-n", "-d", "mytun"]), gone("mytun"), String::new(), 0, Dev::Gone("mytun")),
        (run(&["-n", "-b", "-d", "tun0"]), gone("tun0"), String::new(), 0, Dev::Gone("tun0")),
        (run(&["-p", "-d", "ptap"]), gone("ptap"), String::new(), 0, Dev::Gone("ptap")),
        // A TUN device made by other means can be deleted with -n.
        (Step::Ip(&["tuntap", "add", "dev", "iptun", "mode", "tun"]), String::new(), String::new(), 0, Dev::Any),
        (run(&["-n", "-d", "iptun"]), gone("iptun"), String::new(), 0, Dev::Gone("iptun")),
        // Neither option is in the usage text (Debian's, unchanged).
        (run(&["-n", "foo"]), String::new(), usage(PROG), 1, Dev::Any),
    ];
    let steps: Vec<Step> = table.iter().map(|t| t.0.clone()).collect();
    let ours = run_sequence(Side::Ours, "tmode", &steps);
    for ((step, stdout, stderr, code, dev), o) in table.iter().zip(&ours) {
        if matches!(step, Step::Ip(_)) {
            continue;
        }
        check_spec(o, &describe(step), stdout, stderr, *code, dev);
    }
}

/// Under `CI=true` a missing prerequisite fails; elsewhere the test is
/// skipped loudly (as [`uml_integration_tests::require`] does).
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

/// `docs/testing.md` §7.2 with a fixed tap: `tunctl -u nobody -t umltap0`
/// (ours) in a namespace, the tap configured and up there, a UML booted with
/// `eth0=tuntap,umltap0` pings the namespace and is pinged from it; the tap
/// outlives the UML until `tunctl -d` removes it.
#[test]
fn uml_pings_through_a_tunctl_tap() {
    require!(
        Requirement::Root,
        Requirement::LinuxUml,
        Requirement::NetNs,
        Requirement::DevNetTun
    );
    if find_in_path("ping").is_none() {
        skip_or_fail("`ping` not found (apt-get install iputils-ping)");
        return;
    }
    let ns = NetNs::new("tunctl-uml");
    let tunctl = tunctl_in(&ns);
    let made = tunctl.run(Side::Ours, &["-u", "nobody", "-t", "umltap0"]);
    assert!(made.success(), "tunctl: {made}");
    assert_eq!(
        made.stdout_str(),
        "Set 'umltap0' persistent and owned by uid 65534\n"
    );
    // The tap must be configured and up before the UML opens it.
    for step in [
        &["addr", "add", "10.0.1.254/24", "dev", "umltap0"][..],
        &["link", "set", "umltap0", "up"],
    ] {
        let out = ns.ip(step);
        assert!(out.success(), "ip {step:?}: {out}");
    }

    let mut cfg = UmlConfig::new("tunctl1");
    cfg.netns = Some(ns.name().to_string());
    cfg.lifetime = Duration::from_secs(120);
    cfg.extra_args.push("eth0=tuntap,umltap0".to_string());
    cfg.init_script = "ip addr add 10.0.1.1/24 dev eth0\n\
                       ip link set eth0 up\n\
                       ping -c 3 -w 20 10.0.1.254\n\
                       echo \"TEST: ping rc=$?\"\n\
                       while :; do sleep 3600; done\n"
        .to_string();
    let mut uml = Uml::boot(cfg).expect("boot UML");
    let seen = uml.wait_console("TEST: ping rc=", Duration::from_secs(60));
    let console = uml.console();
    assert!(
        seen && console.lines().any(|l| l.trim_end() == "TEST: ping rc=0"),
        "the guest's ping of 10.0.1.254 failed:\n{console}"
    );

    let host_ping = run_with_timeout(
        ns.exec("ping").args(["-c", "3", "-w", "20", "10.0.1.1"]),
        Duration::from_secs(30),
    );
    assert!(
        host_ping.success(),
        "ping from the namespace to the guest failed: {host_ping}\n{}",
        uml.console()
    );

    uml.halt().expect("halt");
    assert!(
        uml.wait_exit(Duration::from_secs(20)),
        "UML did not halt:\n{}",
        uml.console()
    );
    drop(uml);

    // The tap is persistent: still there, still nobody's.
    let state = links(&ns);
    let line = state
        .iter()
        .find(|l| l.starts_with("umltap0 "))
        .unwrap_or_else(|| panic!("umltap0 gone after the UML: {state:#?}"));
    assert!(line.ends_with(&tap("user nobody")), "{line}");
    let del = tunctl.run(Side::Ours, &["-d", "umltap0"]);
    assert!(del.success(), "tunctl -d: {del}");
    assert_eq!(del.stdout_str(), "Set 'umltap0' nonpersistent\n");
    assert!(
        !links(&ns).iter().any(|l| l.starts_with("umltap0 ")),
        "umltap0 still there after tunctl -d"
    );
}

#[test]
fn link_summaries() {
    let line = "3: tap0: <BROADCAST,MULTICAST> mtu 1500 qdisc noop state DOWN mode DEFAULT \
                group default qlen 1000\\    link/ether aa:04:53:cf:ee:ca brd ff:ff:ff:ff:ff:ff \
                promiscuity 0  allmulti 0 minmtu 68 maxmtu 65521 \\    tun type tap pi off \
                vnet_hdr off persist on user root addrgenmode eui64 numtxqueues 1";
    let s = link_summary(line).unwrap();
    assert_eq!(
        s,
        "tap0 <BROADCAST,MULTICAST> mtu 1500 | tun type tap pi off vnet_hdr off persist on user root"
    );
    let o = Outcome {
        out: RunOutput::default(),
        links: vec![s],
    };
    assert_eq!(o.tun_details("tap0"), Some(tap("user root")));
    assert_eq!(o.tun_details("tap1"), None);
    assert_eq!(link_summary("1: lo: <LOOPBACK,UP> mtu 65536"), None);
}

/// `ip -d` details of a tap with `vnet_hdr on`.
fn vtap(owner: &str) -> String {
    format!("tun type tap pi off vnet_hdr on persist on {owner}")
}

/// `ip -d` details of a multi-queue tap nobody has open.
fn mqtap(vnet: &str, owner: &str) -> String {
    format!(
        "tun type tap pi off vnet_hdr {vnet} multi_queue numqueues 0 numdisabled 0 persist on \
         {owner}"
    )
}

/// `--vnet-hdr` and `--multi-queue` set the flags `ip tuntap add`
/// sets; a multi-queue device is taken over and deleted only with
/// `--multi-queue`; output and the other options are unchanged.
#[test]
fn vnet_hdr_and_multi_queue_options() {
    require!(
        Requirement::Root,
        Requirement::NetNs,
        Requirement::DevNetTun
    );
    let set = |name: &str, who: &str| format!("Set '{name}' persistent and owned by {who}\n");
    let gone = |name: &str| format!("Set '{name}' nonpersistent\n");
    let einval = "TUNSETIFF: Invalid argument\n".to_string();
    #[rustfmt::skip]
    let table: Vec<(Step, String, String, i32, Dev)> = vec![
        (run(&["--vnet-hdr", "-t", "v0"]), set("v0", "uid 0"), String::new(), 0, Dev::Is("v0", vtap("user root"))),
        (run(&["-b", "--vnet-hdr"]), "tap0\n".into(), String::new(), 0, Dev::Is("tap0", vtap("user root"))),
        // vnet_hdr is what the last attach asked for.
        (run(&["-t", "v0", "-u", "nobody"]), set("v0", "uid 65534"), String::new(), 0, Dev::Is("v0", tap("user nobody"))),
        (run(&["-n", "--vnet-hdr", "-t", "vtun"]), set("vtun", "uid 0"), String::new(), 0, Dev::Is("vtun", "tun type tun pi off vnet_hdr on persist on user root".into())),
        (run(&["--multi-queue", "-u", "nobody", "-g", "nogroup", "-t", "mq0"]), set("mq0", "uid 65534 gid 65534"), String::new(), 0, Dev::Is("mq0", mqtap("off", "user nobody group nogroup"))),
        (run(&["--vnet-hdr", "--multi-queue", "-t", "mq1"]), set("mq1", "uid 0"), String::new(), 0, Dev::Is("mq1", mqtap("on", "user root"))),
        // Every attach must agree on multi_queue.
        (run(&["-t", "mq0"]), String::new(), einval.clone(), 1, Dev::Is("mq0", mqtap("off", "user nobody group nogroup"))),
        (run(&["-d", "mq0"]), String::new(), einval.clone(), 1, Dev::Is("mq0", mqtap("off", "user nobody group nogroup"))),
        (run(&["--multi-queue", "-t", "v0"]), String::new(), einval, 1, Dev::Is("v0", tap("user nobody"))),
        (run(&["--multi-queue", "-g", "4321", "-t", "mq0"]), set("mq0", "gid 4321"), String::new(), 0, Dev::Is("mq0", mqtap("off", "user nobody group 4321"))),
        (run(&["--multi-queue", "-d", "mq0"]), gone("mq0"), String::new(), 0, Dev::Gone("mq0")),
        (run(&["-d", "mq1", "--multi-queue"]), gone("mq1"), String::new(), 0, Dev::Gone("mq1")),
        (run(&["-d", "v0"]), gone("v0"), String::new(), 0, Dev::Gone("v0")),
        (run(&["-n", "-d", "vtun"]), gone("vtun"), String::new(), 0, Dev::Gone("vtun")),
        // Not in the usage text either.
        (run(&["--vnet-hdr", "foo"]), String::new(), usage(PROG), 1, Dev::Any),
    ];
    let steps: Vec<Step> = table.iter().map(|t| t.0.clone()).collect();
    let ours = run_sequence(Side::Ours, "tfeat", &steps);
    for ((step, stdout, stderr, code, dev), o) in table.iter().zip(&ours) {
        check_spec(o, &describe(step), stdout, stderr, *code, dev);
    }
}

/// `ip tuntap show` of the namespace, one line per device, sorted.
fn ip_tuntap_show(ns: &NetNs) -> Vec<String> {
    let out = ns.ip(&["tuntap", "show"]);
    assert!(out.success(), "ip tuntap show: {out}");
    let mut lines: Vec<String> = out.stdout_str().lines().map(String::from).collect();
    lines.sort();
    lines
}

/// `--list` prints what `ip tuntap show` prints, in `ifindex` order (as
/// `ip link` lists devices); `-b --list` just the names; it takes no
/// option that creates or deletes; `--help` adds the new options to
/// Debian's usage text, on stdout.
#[test]
fn list_matches_ip_tuntap_show_and_help() {
    require!(
        Requirement::Root,
        Requirement::NetNs,
        Requirement::DevNetTun
    );
    let ns = NetNs::new("tlist");
    let ours = tunctl_in(&ns);
    let tunctl = |args: &[&str]| ours.run(Side::Ours, args);

    let empty = tunctl(&["--list"]);
    assert_eq!(
        (empty.code, empty.stdout_str(), empty.stderr_str()),
        (Some(0), String::new(), String::new()),
        "{empty}"
    );

    // Devices of every kind, made by both tools.
    for args in [
        &["-t", "plain"][..],
        &["--vnet-hdr", "-u", "nobody", "-g", "nogroup", "-t", "vh"],
        &["--multi-queue", "--vnet-hdr", "-g", "4321", "-t", "mqv"],
        &["-n", "-t", "tn"],
        &["-n", "--multi-queue", "-u", "1234", "-t", "tnmq"],
    ] {
        let out = tunctl(args);
        assert!(out.success(), "tunctl {args:?}: {out}");
    }
    for args in [
        &[
            "tuntap",
            "add",
            "dev",
            "ipa",
            "mode",
            "tap",
            "one_queue",
            "pi",
            "user",
            "7",
        ][..],
        &[
            "tuntap",
            "add",
            "dev",
            "ipb",
            "mode",
            "tun",
            "vnet_hdr",
            "multi_queue",
            "group",
            "8",
        ],
        &[
            "link", "add", "veth0", "type", "veth", "peer", "name", "veth1",
        ],
    ] {
        let out = ns.ip(args);
        assert!(out.success(), "ip {args:?}: {out}");
    }
    let listed = tunctl(&["--list"]);
    assert!(
        listed.success() && listed.stderr_str().is_empty(),
        "{listed}"
    );
    let ours_lines: Vec<String> = listed.stdout_str().lines().map(String::from).collect();
    let mut sorted = ours_lines.clone();
    sorted.sort();
    assert_eq!(
        sorted,
        ip_tuntap_show(&ns),
        "tunctl --list vs ip tuntap show"
    );
    for line in [
        "vh: tap vnet_hdr persist user 65534 group 65534",
        "mqv: tap multi_queue vnet_hdr persist group 4321",
        "tnmq: tun multi_queue persist user 1234",
        "ipa: tap pi one_queue persist filter user 7",
    ] {
        assert!(
            ours_lines.iter().any(|l| l == line),
            "{line}: {ours_lines:#?}"
        );
    }
    // ifindex order: that of `ip -o link show`, without lo and the veths.
    let order: Vec<String> = links(&ns)
        .iter()
        .filter_map(|l| l.split(' ').next().map(String::from))
        .filter(|n| !n.starts_with("veth"))
        .collect();
    let names: Vec<String> = ours_lines
        .iter()
        .map(|l| l.split(':').next().unwrap().to_string())
        .collect();
    assert_eq!(names, order);
    assert_eq!(names, ["plain", "vh", "mqv", "tn", "tnmq", "ipa", "ipb"]);
    let brief = tunctl(&["-b", "--list"]);
    assert!(brief.success(), "{brief}");
    assert_eq!(brief.stdout_str(), format!("{}\n", names.join("\n")));

    let conflict = tunctl(&["--list", "-t", "x"]);
    assert_eq!(conflict.code, Some(1), "{conflict}");
    assert_eq!(
        conflict.stderr_str(),
        format!("{PROG}: --list cannot be combined with -t; it takes only -b\n")
    );
    assert!(conflict.stdout_str().is_empty());
    assert!(
        !links(&ns).iter().any(|l| l.starts_with("x ")),
        "--list -t x made x"
    );

    let help = tunctl(&["--help"]);
    assert_eq!(
        (help.code, help.stderr_str()),
        (Some(0), String::new()),
        "{help}"
    );
    let text = help.stdout_str();
    assert!(text.starts_with(&usage(PROG)), "{text}");
    for option in ["--vnet-hdr", "--multi-queue", "--list", "--help", "-n "] {
        assert!(text.contains(&format!("\n{option}")), "{option}: {text}");
    }
}

/// A 7.x guest (which has only the vector network driver) on
/// `vec0:transport=tap,ifname=vt0` over a tap made by our `tunctl
/// --vnet-hdr` pings the namespace and is pinged back. While the guest has
/// the tap open `tunctl --list` shows the flags its vector driver asked
/// for (`vnet_hdr`, no `multi_queue`); and the driver cannot attach to a
/// tap made with `--multi-queue` (`vec1`), which is why the help text
/// advises against it.
#[test]
fn linux7_guest_pings_over_a_tunctl_vnet_hdr_tap() {
    require!(
        Requirement::Root,
        Requirement::LinuxUml7,
        Requirement::NetNs,
        Requirement::DevNetTun
    );
    if find_in_path("ping").is_none() {
        skip_or_fail("`ping` not found (apt-get install iputils-ping)");
        return;
    }
    let ns = NetNs::new("tunctl-k7");
    let ours = tunctl_in(&ns);
    let tunctl = |args: &[&str]| ours.run(Side::Ours, args);
    for (args, want) in [
        (
            &["--vnet-hdr", "-t", "vt0"][..],
            "Set 'vt0' persistent and owned by uid 0\n",
        ),
        (
            &["--multi-queue", "-t", "mq1"],
            "Set 'mq1' persistent and owned by uid 0\n",
        ),
    ] {
        let out = tunctl(args);
        assert_eq!(
            (out.code, out.stdout_str().as_str()),
            (Some(0), want),
            "{out}"
        );
    }
    for step in [
        &["addr", "add", "10.0.7.254/24", "dev", "vt0"][..],
        &["link", "set", "vt0", "up"],
    ] {
        let out = ns.ip(step);
        assert!(out.success(), "ip {step:?}: {out}");
    }

    let mut cfg = UmlConfig::with_kernel("tunctl7", Kernel::Linux7);
    cfg.netns = Some(ns.name().to_string());
    cfg.lifetime = Duration::from_secs(120);
    cfg.extra_args
        .push("vec0:transport=tap,ifname=vt0".to_string());
    cfg.extra_args
        .push("vec1:transport=tap,ifname=mq1".to_string());
    cfg.init_script = "ip link set vec1 up; echo \"TEST: vec1 up rc=$?\"\n\
                       ip addr add 10.0.7.1/24 dev vec0\n\
                       ip link set vec0 up\n\
                       ping -c 3 -i 0.3 -w 20 10.0.7.254\n\
                       echo \"TEST: ping rc=$?\"\n\
                       while :; do sleep 3600; done\n"
        .to_string();
    let mut uml = Uml::boot(cfg).expect("boot the 7.x guest");
    let seen = uml.wait_console("TEST: ping rc=", Duration::from_secs(60));
    let console = uml.console();
    assert!(
        seen && console.lines().any(|l| l.trim_end() == "TEST: ping rc=0"),
        "the guest's ping of 10.0.7.254 failed:\n{console}"
    );
    assert!(
        console
            .lines()
            .any(|l| l.starts_with("TEST: vec1 up rc=") && l.trim_end() != "TEST: vec1 up rc=0"),
        "the vector driver attached to a multi-queue tap:\n{console}"
    );
    let host_ping = run_with_timeout(
        ns.exec("ping")
            .args(["-c", "3", "-i", "0.3", "-w", "20", "10.0.7.1"]),
        Duration::from_secs(30),
    );
    assert!(
        host_ping.success(),
        "ping from the namespace to the guest failed: {host_ping}\n{}",
        uml.console()
    );
    let listed = tunctl(&["--list"]);
    assert!(listed.success(), "{listed}");
    assert_eq!(
        listed.stdout_str(),
        "vt0: tap vnet_hdr persist user 0\nmq1: tap multi_queue persist user 0\n",
        "flags while the guest has vt0 open"
    );

    uml.halt().expect("halt");
    assert!(
        uml.wait_exit(Duration::from_secs(20)),
        "UML did not halt:\n{}",
        uml.console()
    );
    drop(uml);
    for args in [&["-d", "vt0"][..], &["--multi-queue", "-d", "mq1"]] {
        let out = tunctl(args);
        assert!(out.success(), "tunctl {args:?}: {out}");
    }
    assert!(links(&ns).is_empty(), "{:#?}", links(&ns));
}
