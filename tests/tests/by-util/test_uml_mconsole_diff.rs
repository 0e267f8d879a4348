//! Differential tests: Debian's C `uml_mconsole` and ours against the same
//! live UML must print the same stdout and stderr and exit with the same
//! status (`docs/mconsole.md` §3.1, §5; `docs/testing.md` §8.4).

// Test code: a failed setup step should abort the test with its message.
#![allow(clippy::expect_used, clippy::unwrap_used)]

use std::time::Duration;

use uml_integration_tests::diff::Differential;
use uml_integration_tests::{require, Requirement, Uml, UmlConfig};

const C_CLIENT: &str = "/usr/bin/uml_mconsole";
const LIMIT: Duration = Duration::from_secs(15);

/// Runs a sequence of invocations with the C client, then the same
/// sequence with ours (so state changes replay identically), in `client`'s
/// directory and environment, with `input` on stdin, and compares each
/// step. Returns the number of invocations compared.
fn compare(client: &Differential, steps: &[Vec<String>], input: Option<&[u8]>) -> usize {
    let client = match input {
        Some(i) => client.clone().stdin(i),
        None => client.clone(),
    };
    client.same_sequence(steps).len()
}

#[test]
fn same_output_as_debian_client_on_a_live_uml() {
    require!(Requirement::LinuxUml, Requirement::CBinary("uml_mconsole"));
    let mut uml = Uml::boot(UmlConfig::new("diff")).expect("boot");
    assert!(
        uml.wait_ready(Duration::from_secs(30)),
        "guest not ready:\n{}",
        uml.console()
    );
    let sock = uml.socket_path();
    let s = sock.to_str().expect("utf8 socket path").to_string();

    // HOME/.uml -> the UML's uml_dir, so the umid resolves without warnings.
    let home = tempfile::tempdir().expect("tempdir");
    std::os::unix::fs::symlink(uml.uml_dir(), home.path().join(".uml")).expect("symlink");
    let cwd = uml.work_dir().join("cwd");
    std::fs::create_dir_all(&cwd).expect("cwd");
    std::fs::write(cwd.join("disk.img"), vec![0u8; 1 << 20]).expect("disk image");
    let ctx = Differential::new(C_CLIENT, "uml_mconsole")
        .limit(LIMIT)
        .current_dir(&cwd)
        .env("HOME", home.path());

    let one = |cmd: &str| vec![vec![s.clone(), cmd.to_string()]];
    let mut compared = 0;
    // Single commands, including every error case the issue lists.
    for cmd in [
        "version",
        "versionXYZ",
        "VERSION",
        "frobnicate",
        "",
        "  version",
        "help",
        "proc nonexistent",
        "proc",
        "config con0",
        "config con",
        "config foo",
        "config",
        "config ubd0",
        "config ubd5",
        "config ubd3=/nonexistent/file",
        "config ubd3=/file",
        "remove foo",
        "remove ubd9",
        "remove",
        "go",
        "sysrq",
        "sysrq h",
        "stack 99999",
        "stack",
        "umlfs abc",
        "umlfs 99",
        "umlfs 0",
        "log diff-test-marker",
        "logout",
        "mconsole-version",
        "switch",
        "switch /nonexistent/socket",
    ] {
        compared += compare(&ctx, &one(cmd), None);
    }
    // Command words given separately are joined with single spaces.
    compared += compare(
        &ctx,
        &[vec![s.clone(), "config".into(), "ubd0".into()]],
        None,
    );
    // Hot-plug with a relative file name (absolutized against the cwd),
    // double configuration (-EBUSY, 240) and double removal (-ENODEV, 237).
    let seq: Vec<Vec<String>> = [
        "config ubd2=disk.img",
        "config ubd2",
        "config ubd2=disk.img",
        "remove ubd2",
        "remove ubd2",
    ]
    .iter()
    .map(|c| vec![s.clone(), c.to_string()])
    .collect();
    compared += compare(&ctx, &seq, None);
    // stop / go, and a command while stopped.
    let seq: Vec<Vec<String>> = ["stop", "version", "stop", "go", "go"]
        .iter()
        .map(|c| vec![s.clone(), c.to_string()])
        .collect();
    compared += compare(&ctx, &seq, None);
    // Console devices: configure, query, remove, query.
    let seq: Vec<Vec<String>> = [
        "config con1=null",
        "config con1",
        "remove con1",
        "config con1",
    ]
    .iter()
    .map(|c| vec![s.clone(), c.to_string()])
    .collect();
    compared += compare(&ctx, &seq, None);
    // umid lookup through $HOME/.uml, usage error, unresolvable umid.
    compared += compare(&ctx, &[vec!["diff".into(), "version".into()]], None);
    compared += compare(&ctx, &[vec![]], None);
    compared += compare(&ctx, &[vec!["no-such-umid".into(), "version".into()]], None);
    compared += compare(&ctx, &[vec!["/tmp".into(), "version".into()]], None);
    // Interactive sessions on a pipe: echo, prompts, switch, quit.
    let script = format!(
        "version\nconfig ubd0\nswitch {s}\nmconsole-version\nproc nonexistent\n\nquit\nversion\n"
    );
    compared += compare(
        &ctx,
        &[vec!["no-such-umid".into()]],
        Some(script.as_bytes()),
    );
    compared += compare(
        &ctx,
        &[vec![s.clone()]],
        Some(b"version\nhelp\nremove ubd9"),
    );
    compared += compare(
        &ctx,
        &[vec!["diff".into()]],
        Some(b"log -f /nonexistent\nversion\n"),
    );

    assert!(compared >= 20, "only {compared} invocations compared");
    // Both clients' log requests reached the kernel log.
    assert!(
        uml.wait_console("diff-test-marker", Duration::from_secs(5)),
        "log text missing from the console"
    );
    assert!(
        uml.is_running(),
        "the UML died during the differential test"
    );
}
