//! The descriptions in `cli_defs.rs` against the tools' own hand-written
//! parsers: every option documented is accepted by the tool in the form
//! documented (one dash or two, with or without a value), the option
//! strings agree, and the rendered man pages and completions spell the
//! options as the tools read them.

// Test code: a broken fixture should stop the test with its message.
#![allow(clippy::expect_used, clippy::unwrap_used)]

use std::collections::BTreeSet;
use std::ffi::OsString;

use clap::{Arg, ArgAction, Command};
use clap_complete::Shell;
use uml_utilities_packaging::cli_defs::{self, Tool};
use uml_utilities_packaging::render;

fn os(v: &[&str]) -> Vec<OsString> {
    v.iter().map(OsString::from).collect()
}

fn built(tool: &Tool) -> Command {
    let mut cmd = tool.command.clone();
    cmd.build();
    cmd
}

fn takes_value(arg: &Arg) -> bool {
    arg.get_num_args().is_some_and(|r| r.takes_values())
        && !matches!(
            arg.get_action(),
            ArgAction::SetTrue | ArgAction::Help | ArgAction::Version
        )
}

fn options(tool: &Tool) -> Vec<Arg> {
    built(tool)
        .get_arguments()
        .filter(|a| !a.is_positional())
        .cloned()
        .collect()
}

/// The spelling of `arg` as the tool reads it.
fn spelling(tool: &Tool, arg: &Arg) -> String {
    match (arg.get_short(), arg.get_long()) {
        (Some(s), _) => format!("-{s}"),
        (None, Some(l)) if tool.single_dash.contains(&l) => format!("-{l}"),
        (None, Some(l)) => format!("--{l}"),
        (None, None) => panic!("{}: option without a name", tool.name),
    }
}

fn tool(name: &str) -> Tool {
    cli_defs::tools()
        .into_iter()
        .find(|t| t.name == name)
        .unwrap_or_else(|| panic!("no tool {name}"))
}

#[test]
fn every_packaged_program_is_described_once() {
    let names: Vec<&str> = cli_defs::tools().iter().map(|t| t.name).collect();
    let unique: BTreeSet<&str> = names.iter().copied().collect();
    assert_eq!(names.len(), unique.len());
    assert_eq!(
        unique,
        BTreeSet::from([
            "jail_uml",
            "port-helper",
            "tunctl",
            "uml_mconsole",
            "uml_mkcow",
            "uml_moo",
            "uml_net",
            "uml_switch",
            "uml_watchdog",
        ])
    );
    for t in cli_defs::tools() {
        assert_eq!(t.command.get_name(), t.name);
        assert!(t.path.ends_with(&format!("/{}", t.name)), "{}", t.path);
        assert_eq!(t.section, if t.name == "tunctl" { "8" } else { "1" });
        for name in t.single_dash {
            assert!(
                t.command
                    .get_arguments()
                    .any(|a| a.get_long() == Some(name)),
                "{}: single-dash option {name} is not declared",
                t.name
            );
        }
        built(&t).debug_assert();
    }
}

#[test]
fn tunctl_options_are_its_getopt_string() {
    let t = tool("tunctl");
    let mut described = String::new();
    let mut long: Vec<String> = Vec::new();
    for arg in options(&t) {
        if let Some(l) = arg.get_long() {
            assert_eq!(arg.get_short(), None, "{l}: tunctl has no short alias");
            assert!(!takes_value(&arg), "--{l} takes no value");
            long.push(l.to_string());
            continue;
        }
        let c = arg.get_short().expect("a short or a long option");
        described.push(c);
        if takes_value(&arg) {
            described.push(':');
        }
    }
    let mut expected: Vec<String> = Vec::new();
    let bytes = tunctl::OPTSTRING;
    let mut i = 0;
    while i < bytes.len() {
        let mut o = (bytes[i] as char).to_string();
        if bytes.get(i + 1) == Some(&b':') {
            o.push(':');
            i += 1;
        }
        expected.push(o);
        i += 1;
    }
    let mut got: Vec<String> = Vec::new();
    let d = described.as_bytes();
    let mut i = 0;
    while i < d.len() {
        let mut o = (d[i] as char).to_string();
        if d.get(i + 1) == Some(&b':') {
            o.push(':');
            i += 1;
        }
        got.push(o);
        i += 1;
    }
    expected.sort();
    got.sort();
    assert_eq!(got, expected, "cli_defs vs tunctl::OPTSTRING");
    let mut expected_long: Vec<String> = tunctl::LONG_OPTIONS
        .iter()
        .map(|l| String::from_utf8_lossy(l).into_owned())
        .collect();
    expected_long.sort();
    long.sort();
    assert_eq!(long, expected_long, "cli_defs vs tunctl::LONG_OPTIONS");
    // The tool's parser accepts each as documented.
    for l in &long {
        let args = if l == "list" {
            os(&["tunctl", "--list", "-b"])
        } else {
            os(&["tunctl", &format!("--{l}"), "-t", "x"])
        };
        struct NoNames;
        impl tunctl::Accounts for NoNames {
            fn uid_of(&self, _: &[u8]) -> Option<u32> {
                None
            }
            fn gid_of(&self, _: &[u8]) -> Option<u32> {
                None
            }
        }
        let cfg = tunctl::parse(&args, false, &NoNames).unwrap();
        let on = match l.as_str() {
            "vnet-hdr" => cfg.features.vnet_hdr,
            "multi-queue" => cfg.features.multi_queue,
            "list" => cfg.action == tunctl::Action::List,
            "help" => cfg.action == tunctl::Action::Help,
            other => panic!("unknown long option {other}"),
        };
        assert!(on, "--{l} not understood: {cfg:?}");
    }
}

#[test]
fn uml_switch_accepts_every_documented_option() {
    let t = tool("uml_switch");
    for arg in options(&t) {
        let mut argv = vec![spelling(&t, &arg)];
        if arg.is_require_equals_set() {
            // An optional value (`--mcast[=VALUE]`): alone, and with `=`.
            argv.push(format!("{}=/tmp/x", argv[0]));
        } else if takes_value(&arg) {
            argv.push("/tmp/x".into());
        }
        let parsed = uml_switch::cli::parse(
            "uml_switch",
            &os(&argv.iter().map(String::as_str).collect::<Vec<_>>()),
        );
        assert!(parsed.options.is_some(), "uml_switch rejects {argv:?}");
        // The GNU spelling is not what the switch reads.
        let gnu = format!("-{}", spelling(&t, &arg));
        let parsed = uml_switch::cli::parse("uml_switch", &os(&[gnu.as_str(), "/tmp/x"]));
        assert!(parsed.options.is_none(), "uml_switch accepts {gnu}");
    }
    // -unix takes a second path after -compat-v0, as documented.
    let p = uml_switch::cli::parse("uml_switch", &os(&["-compat-v0", "-unix", "c", "d"]));
    assert!(p.options.is_some_and(|o| o.data.is_some()));
}

#[test]
fn uml_mconsole_accepts_every_documented_option() {
    let t = tool("uml_mconsole");
    for arg in options(&t) {
        let mut argv = vec![spelling(&t, &arg)];
        if takes_value(&arg) {
            argv.push("2".into());
        }
        if arg.get_long() != Some("notify") {
            argv.push("umid".into());
        }
        let r =
            uml_mconsole::options::parse(&os(&argv.iter().map(String::as_str).collect::<Vec<_>>()));
        assert!(r.is_ok(), "uml_mconsole rejects {argv:?}: {r:?}");
    }
    let r = uml_mconsole::options::parse(&os(&["umid", "config", "eth0=daemon"]));
    assert!(r.is_ok());
}

#[test]
fn cow_tools_accept_their_documented_forms() {
    assert!(uml_moo::parse_args(&os(&["-d", "-b", "back", "root.cow"])).is_some());
    assert!(uml_moo::parse_args(&os(&["-b", "back", "root.cow", "new.img"])).is_some());
    assert!(uml_moo::parse_args(&os(&["root.cow", "new.img"])).is_some());
    let t = tool("uml_moo");
    let shorts: BTreeSet<char> = options(&t).iter().filter_map(Arg::get_short).collect();
    assert_eq!(shorts, BTreeSet::from(['b', 'd']));
    let longs: BTreeSet<String> = options(&t)
        .iter()
        .filter_map(|a| a.get_long().map(str::to_string))
        .collect();
    assert_eq!(
        longs,
        BTreeSet::from(["help".into(), "ignore-locks".into()])
    );
    let o = uml_moo::parse_args(&os(&["--ignore-locks", "root.cow", "new.img"])).unwrap();
    assert!(o.ignore_locks);
    assert!(String::from_utf8(uml_moo::help(b"uml_moo"))
        .unwrap()
        .contains("  --ignore-locks  "));

    assert!(uml_mkcow::parse_args(&os(&["-f", "root.cow", "root.img"])).is_some());
    assert!(uml_mkcow::parse_args(&os(&["root.cow", "root.img"])).is_some());
    let t = tool("uml_mkcow");
    let shorts: BTreeSet<char> = options(&t).iter().filter_map(Arg::get_short).collect();
    assert_eq!(shorts, BTreeSet::from(['f']));
    let longs: BTreeSet<String> = options(&t)
        .iter()
        .filter_map(|a| a.get_long().map(str::to_string))
        .collect();
    assert_eq!(
        longs,
        BTreeSet::from(["help".into(), "ignore-locks".into()])
    );
    let o = uml_mkcow::parse_args(&os(&["-f", "root.cow", "root.img", "--ignore-locks"])).unwrap();
    assert!(o.force && o.ignore_locks);
    assert!(String::from_utf8(uml_mkcow::help(b"uml_mkcow"))
        .unwrap()
        .contains("  --ignore-locks  "));
}

#[test]
fn helpers_accept_their_documented_forms() {
    let t = tool("uml_watchdog");
    for arg in options(&t) {
        let value = if arg.get_long() == Some("pid") {
            "42"
        } else {
            "/tmp/n"
        };
        let flag = spelling(&t, &arg);
        assert!(
            uml_watchdog::parse_args(&os(&[&flag, value])).is_some(),
            "{flag}"
        );
        assert!(uml_watchdog::parse_args(&os(&[&format!("-{flag}"), value])).is_none());
    }
    let t = tool("port-helper");
    let flag = spelling(&t, &options(&t)[0]);
    assert_eq!(flag, "-uml-socket");
    assert!(matches!(
        port_helper::parse_args(&os(&[&flag, "/tmp/s"])),
        Some(port_helper::Mode::Socket(_))
    ));
    let plan = jail_uml::parse(&os(&["/srv/jail", "1000", "/linux", "mem=64M"]), |_| None);
    assert!(plan.is_ok(), "{plan:?}");
}

#[test]
fn uml_net_knows_every_documented_transport() {
    let t = tool("uml_net");
    let cmd = built(&t);
    let transport = cmd
        .get_arguments()
        .find(|a| a.get_id() == "transport")
        .expect("transport operand");
    let values: Vec<String> = transport
        .get_possible_values()
        .iter()
        .map(|v| v.get_name().to_string())
        .collect();
    assert_eq!(values.len(), 5);
    for v in values {
        let argv: Vec<String> = ["uml_net", "4", &v, "x"].map(String::from).to_vec();
        if let uml_common::umlnet::Parsed::Stdout(e) = uml_common::umlnet::parse_argv(&argv) {
            assert!(
                !matches!(e, uml_common::umlnet::ArgError::UnknownTransport(_)),
                "{v}: {e}"
            );
        }
    }
}

#[test]
fn man_pages_spell_options_as_the_tools_read_them() {
    for t in cli_defs::tools() {
        let page = String::from_utf8(render::man_page(&t, Some("2026-01-01")).expect("render"))
            .expect("utf-8");
        assert!(
            page.contains(&format!(".TH {} {} 2026-01-01", t.name, t.section)),
            "{}",
            t.name
        );
        assert!(page.contains(".SH NAME\n"), "{}", t.name);
        assert!(page.contains(".SH SYNOPSIS\n"), "{}", t.name);
        assert_eq!(
            page.matches(".ds Aq").count(),
            2,
            "{}: one preamble",
            t.name
        );
        for arg in options(&t) {
            let want = spelling(&t, &arg).replace('-', "\\-");
            assert!(
                page.contains(&format!("\\fB{want}\\fR")),
                "{}: {want}",
                t.name
            );
        }
        for name in t.single_dash {
            let gnu = format!("\\-\\-{}", name.replace('-', "\\-"));
            assert!(!page.contains(&gnu), "{}: {gnu} in the man page", t.name);
        }
    }
}

#[test]
fn completions_spell_options_as_the_tools_read_them() {
    for t in cli_defs::tools().into_iter().filter(|t| t.completions) {
        for shell in render::SHELLS {
            let text = String::from_utf8(render::completion(&t, shell)).expect("utf-8");
            for name in t.single_dash {
                let wrong = match shell {
                    Shell::Fish => format!(" -l {name}"),
                    _ => format!("--{name}"),
                };
                assert!(!text.contains(&wrong), "{} {shell}: {wrong}", t.name);
                let right = match shell {
                    Shell::Fish => format!(" -o {name}"),
                    _ => format!("-{name}"),
                };
                assert!(text.contains(&right), "{} {shell}: no {right}", t.name);
            }
        }
    }
    assert!(!tool("port-helper").completions);
}
