//! Each tool's description (its crate's `command::command()`) against the
//! tool itself, per tool and in both directions: the options its
//! hand-written parser accepts (the table it matches against: `OPTIONS`,
//! tunctl's `OPTSTRING` and `LONG_OPTIONS`) are exactly the options
//! described, and the parser accepts every option described in the form
//! described (one dash or two, with or without a value); the `--help` text
//! the program prints is the text rendered from the description; and the
//! rendered man pages and completions spell the options as the tools read
//! them.

// Test code: a broken fixture should stop the test with its message.
#![allow(clippy::expect_used, clippy::unwrap_used)]

use std::collections::BTreeSet;
use std::ffi::OsString;

use clap::{Arg, ArgAction, Command};
use clap_complete::Shell;
use uml_utilities_packaging::tools::{self, Tool};
use uml_utilities_packaging::{help, render};

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
    let name = help::option_name(arg, tool.single_dash);
    assert!(!name.is_empty(), "{}: option without a name", tool.name);
    name
}

/// The options described, as the tool spells them.
fn described(tool: &Tool) -> BTreeSet<String> {
    options(tool).iter().map(|a| spelling(tool, a)).collect()
}

fn set(names: &[&str]) -> BTreeSet<String> {
    let set: BTreeSet<String> = names.iter().map(|n| n.to_string()).collect();
    assert_eq!(set.len(), names.len(), "a name twice in {names:?}");
    set
}

fn tool(name: &str) -> Tool {
    tools::tools()
        .into_iter()
        .find(|t| t.name == name)
        .unwrap_or_else(|| panic!("no tool {name}"))
}

/// The `--help` text rendered from `name`'s description.
fn rendered_help(name: &str) -> String {
    help::help_text(&tool(name)).unwrap_or_else(|| panic!("{name} has no help layout"))
}

#[test]
fn every_packaged_program_is_described_once() {
    let names: Vec<&str> = tools::tools().iter().map(|t| t.name).collect();
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
    for t in tools::tools() {
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
fn tunctl_options_are_the_described_ones() {
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
    assert_eq!(got, expected, "the description vs tunctl::OPTSTRING");
    let mut expected_long: Vec<String> = tunctl::LONG_OPTIONS
        .iter()
        .map(|l| String::from_utf8_lossy(l).into_owned())
        .collect();
    expected_long.sort();
    long.sort();
    assert_eq!(
        long, expected_long,
        "the description vs tunctl::LONG_OPTIONS"
    );
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
fn uml_switch_options_are_the_described_ones() {
    let t = tool("uml_switch");
    assert_eq!(
        set(uml_switch::cli::OPTIONS),
        described(&t),
        "uml_switch::cli::OPTIONS vs the description"
    );
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
fn uml_switch_launcher_is_described() {
    // `--launch` is a mode of its own, with its own parser
    // (uml_switch::launch): --help and the man page show its usage line.
    let usage = uml_switch::launch::usage("uml_switch");
    let synopsis = usage.trim_end().trim_start_matches("Usage: ");
    let help = rendered_help("uml_switch");
    assert!(help.contains(&format!("\n   or: {synopsis}\n")), "{help}");
    let t = tool("uml_switch");
    let launcher = t
        .sections
        .iter()
        .find(|s| s.title == "FD LAUNCHER")
        .expect("an FD LAUNCHER section");
    assert_eq!(
        launcher.blocks.first(),
        Some(&tools::Block::Code(synopsis.to_string()))
    );
}

#[test]
fn uml_switch_help_is_rendered_from_the_description() {
    assert_eq!(
        uml_switch::cli::help("uml_switch"),
        rendered_help("uml_switch")
    );
}

#[test]
fn uml_mconsole_options_are_the_described_ones() {
    let t = tool("uml_mconsole");
    assert_eq!(
        set(uml_mconsole::options::OPTIONS),
        described(&t),
        "uml_mconsole::options::OPTIONS vs the description"
    );
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
fn uml_mconsole_help_is_rendered_from_the_description() {
    assert_eq!(uml_mconsole::options::HELP, rendered_help("uml_mconsole"));
}

#[test]
fn tunctl_help_is_rendered_from_the_description() {
    let help = String::from_utf8(tunctl::help(b"tunctl")).unwrap();
    assert_eq!(help, rendered_help("tunctl"));
}

/// Runs a COW tool's `uumain_to` with `args`: its status and standard
/// output.
fn run_cow_tool(
    run: fn(&[OsString], &mut dyn std::io::Write, &mut dyn std::io::Write) -> i32,
    args: &[&str],
) -> (i32, Vec<u8>) {
    let (mut out, mut err) = (Vec::new(), Vec::new());
    let status = run(&os(args), &mut out, &mut err);
    (status, out)
}

#[test]
fn uml_moo_options_are_the_described_ones() {
    let t = tool("uml_moo");
    assert_eq!(
        set(uml_moo::OPTIONS),
        described(&t),
        "uml_moo::OPTIONS vs the description"
    );
    for name in described(&t) {
        let accepted = match name.as_str() {
            "-d" => {
                uml_moo::parse_args(&os(&["-d", "root.cow"])).is_some_and(|o| o.output.is_none())
            }
            "-b" => uml_moo::parse_args(&os(&["-b", "back", "root.cow", "new.img"]))
                .is_some_and(|o| o.backing.is_some()),
            "--ignore-locks" => {
                uml_moo::parse_args(&os(&["--ignore-locks", "root.cow", "new.img"]))
                    .is_some_and(|o| o.ignore_locks)
            }
            "--no-reflink" => uml_moo::parse_args(&os(&["root.cow", "new.img", "--no-reflink"]))
                .is_some_and(|o| !o.reflink),
            "--help" => {
                run_cow_tool(uml_moo::uumain_to, &["uml_moo", "--help"])
                    == (0, uml_moo::help(b"uml_moo"))
            }
            other => panic!("uml_moo: no form to try for {other}"),
        };
        assert!(accepted, "uml_moo does not accept {name} as described");
    }
    // -d before -b, as documented.
    assert!(uml_moo::parse_args(&os(&["-d", "-b", "back", "root.cow"])).is_some());
    assert!(uml_moo::parse_args(&os(&["root.cow", "new.img"])).is_some());
}

#[test]
fn uml_moo_help_is_rendered_from_the_description() {
    let help = String::from_utf8(uml_moo::help(b"uml_moo")).unwrap();
    assert_eq!(help, rendered_help("uml_moo"));
}

#[test]
fn uml_mkcow_options_are_the_described_ones() {
    let t = tool("uml_mkcow");
    assert_eq!(
        set(uml_mkcow::OPTIONS),
        described(&t),
        "uml_mkcow::OPTIONS vs the description"
    );
    for name in described(&t) {
        let accepted = match name.as_str() {
            "-f" => {
                uml_mkcow::parse_args(&os(&["-f", "root.cow", "root.img"])).is_some_and(|o| o.force)
            }
            "--ignore-locks" => {
                uml_mkcow::parse_args(&os(&["-f", "root.cow", "root.img", "--ignore-locks"]))
                    .is_some_and(|o| o.force && o.ignore_locks)
            }
            "--help" => {
                run_cow_tool(uml_mkcow::uumain_to, &["uml_mkcow", "--help"])
                    == (0, uml_mkcow::help(b"uml_mkcow"))
            }
            other => panic!("uml_mkcow: no form to try for {other}"),
        };
        assert!(accepted, "uml_mkcow does not accept {name} as described");
    }
    assert!(uml_mkcow::parse_args(&os(&["root.cow", "root.img"])).is_some());
}

#[test]
fn uml_mkcow_help_is_rendered_from_the_description() {
    let help = String::from_utf8(uml_mkcow::help(b"uml_mkcow")).unwrap();
    assert_eq!(help, rendered_help("uml_mkcow"));
}

#[test]
fn uml_watchdog_options_are_the_described_ones() {
    let t = tool("uml_watchdog");
    assert_eq!(
        set(uml_watchdog::OPTIONS),
        described(&t),
        "uml_watchdog::OPTIONS vs the description"
    );
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
}

#[test]
fn port_helper_options_are_the_described_ones() {
    let t = tool("port-helper");
    assert_eq!(
        set(port_helper::OPTIONS),
        described(&t),
        "port_helper::OPTIONS vs the description"
    );
    let flag = spelling(&t, &options(&t)[0]);
    assert_eq!(flag, "-uml-socket");
    assert!(matches!(
        port_helper::parse_args(&os(&[&flag, "/tmp/s"])),
        Some(port_helper::Mode::Socket(_))
    ));
}

#[test]
fn jail_uml_has_operands_only() {
    // jail_uml has no options: every argument is an operand, as in C.
    assert_eq!(described(&tool("jail_uml")), BTreeSet::new());
    let plan = jail_uml::parse(&os(&["/srv/jail", "1000", "/linux", "mem=64M"]), |_| None);
    assert!(plan.is_ok(), "{plan:?}");
}

#[test]
fn uml_net_has_operands_only_and_knows_every_described_transport() {
    let t = tool("uml_net");
    assert_eq!(described(&t), BTreeSet::new());
    let cmd = built(&t);
    let transport = cmd
        .get_arguments()
        .find(|a| a.get_id() == "transport")
        .expect("transport operand");
    let values: BTreeSet<String> = transport
        .get_possible_values()
        .iter()
        .map(|v| v.get_name().to_string())
        .collect();
    let known: Vec<&str> = uml_common::umlnet::TRANSPORTS
        .iter()
        .map(|(word, _)| *word)
        .collect();
    assert_eq!(set(&known), values, "umlnet::TRANSPORTS vs the description");
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
fn help_texts_exist_where_the_programs_print_one() {
    let with: BTreeSet<&str> = tools::tools()
        .iter()
        .filter(|t| help::help_text(t).is_some())
        .map(|t| t.name)
        .collect();
    assert_eq!(
        with,
        BTreeSet::from([
            "tunctl",
            "uml_mconsole",
            "uml_mkcow",
            "uml_moo",
            "uml_switch"
        ])
    );
    // Where a program has a help text, --help is an option of it, and the
    // option list leaves nothing out that the text should show.
    for t in tools::tools() {
        let Some(text) = help::help_text(&t) else {
            continue;
        };
        assert!(described(&t).contains("--help"), "{}", t.name);
        assert!(text.contains("--help "), "{}: {text}", t.name);
    }
}

#[test]
fn man_pages_spell_options_as_the_tools_read_them() {
    for t in tools::tools() {
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
    for t in tools::tools().into_iter().filter(|t| t.completions) {
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
