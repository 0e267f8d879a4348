//! The shell scripts of `scripts/` and `packaging/build-deb` work with any
//! cargo target directory (issue 12): none of them names `target/` (they
//! ask `scripts/lib/cargo-paths.bash`, which asks cargo), and that helper
//! follows `CARGO_TARGET_DIR`, `CARGO_BUILD_TARGET_DIR` and the build
//! target. Every script parses (`bash -n`).
//!
//! The whole flow — a release build, `packaging/build-deb` and the package
//! tests finding its .deb — runs with a target directory outside `target/`
//! in CI: `.ci/run` sets `CARGO_TARGET_DIR`.

// Test code: a failed setup step should abort the test with its message.
#![allow(clippy::expect_used, clippy::unwrap_used)]

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use uml_integration_tests::{cargo_target_dir, run_with_timeout};

const LIMIT: Duration = Duration::from_secs(60);

fn repo_root() -> PathBuf {
    let tests = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    tests.parent().map(Path::to_path_buf).unwrap_or(tests)
}

/// Every file under `scripts/` (recursively), `packaging/build-deb` and
/// the workspace's linker `.cargo/link-cc`.
fn scripts() -> Vec<PathBuf> {
    fn walk(dir: &Path, out: &mut Vec<PathBuf>) {
        for entry in std::fs::read_dir(dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                walk(&path, out);
            } else {
                out.push(path);
            }
        }
    }
    let root = repo_root();
    let mut out = Vec::new();
    walk(&root.join("scripts"), &mut out);
    out.push(root.join("packaging/build-deb"));
    out.push(root.join(".cargo/link-cc"));
    out.sort();
    out
}

/// The places in `line` (a shell line, comments excluded) where a path
/// starts with `target/`: `target/…`, `./target/…`, `"target/…`,
/// `=target/…`, and not `$TARGET_DIR/`, `x-target/` or `--target`.
fn names_target_dir(line: &str) -> bool {
    let code = line.trim_start();
    if code.starts_with('#') {
        return false;
    }
    let bytes = code.as_bytes();
    code.match_indices("target/").any(|(at, _)| {
        let before = |back: usize| at.checked_sub(back).map(|i| bytes[i]);
        match before(1) {
            None => true,
            // `./target/`, but not `x/target/` or `../target/`.
            Some(b'/') => {
                before(2) == Some(b'.')
                    && !before(3)
                        .is_some_and(|c| c.is_ascii_alphanumeric() || b"._-/$".contains(&c))
            }
            Some(b) => !(b.is_ascii_alphanumeric() || b"._-$".contains(&b)),
        }
    })
}

#[test]
fn target_path_detection() {
    for yes in [
        "exec target/x86_64-unknown-linux-gnu/release/bench \"$@\"",
        "OUT=target/debian",
        "\"target/$TRIPLE/release/gen-docs\" --out x",
        "sudo apt install ./target/debian/x.deb",
        "  [ -x target/release/x ] && y",
    ] {
        assert!(names_target_dir(yes), "{yes}");
    }
    for no in [
        "# binaries land in target/<triple>/release",
        "OUT=\"$TARGET_DIR/debian\"",
        "cargo build --target \"$TRIPLE\"",
        "x=$cache/target/y",
        "ln -s ../target/x y",
        "mv some-target/x .",
    ] {
        assert!(!names_target_dir(no), "{no}");
    }
}

#[test]
fn no_script_assumes_the_target_directory() {
    let mut found = Vec::new();
    for path in scripts() {
        let text = std::fs::read_to_string(&path).unwrap();
        for (n, line) in text.lines().enumerate() {
            if names_target_dir(line) {
                found.push(format!("{}:{}: {line}", path.display(), n + 1));
            }
        }
    }
    assert!(
        found.is_empty(),
        "scripts that look under target/ instead of asking cargo \
         (scripts/lib/cargo-paths.bash):\n{}",
        found.join("\n")
    );
}

#[test]
fn every_script_parses() {
    for path in scripts() {
        let out = run_with_timeout(Command::new("bash").arg("-n").arg(&path), LIMIT);
        assert!(out.success(), "bash -n {}: {out}", path.display());
    }
}

/// Runs `FUNCTION` of the helper from the workspace root with the given
/// environment changes (`None` removes a variable); its stdout line.
fn helper(function: &str, env: &[(&str, Option<&str>)]) -> String {
    let mut cmd = Command::new("bash");
    cmd.current_dir(repo_root()).args([
        "-c",
        "set -euo pipefail; . scripts/lib/cargo-paths.bash; \"$@\"",
        "helper",
        function,
    ]);
    // The cargo running these tests, whatever PATH says.
    if let Some(cargo) = std::env::var_os("CARGO") {
        let dir = Path::new(&cargo).parent().unwrap().to_path_buf();
        let path = std::env::var_os("PATH").unwrap_or_default();
        let mut dirs = vec![dir];
        dirs.extend(std::env::split_paths(&path));
        cmd.env("PATH", std::env::join_paths(dirs).unwrap());
    }
    for var in [
        "CARGO_TARGET_DIR",
        "CARGO_BUILD_TARGET_DIR",
        "CARGO_BUILD_TARGET",
    ] {
        cmd.env_remove(var);
    }
    for (var, value) in env {
        match value {
            Some(v) => cmd.env(var, v),
            None => cmd.env_remove(var),
        };
    }
    let out = run_with_timeout(&mut cmd, LIMIT);
    assert!(out.success(), "{function} {env:?}: {out}");
    let text = out.stdout_str();
    assert_eq!(text.lines().count(), 1, "{function}: {text:?}");
    text.trim_end().to_string()
}

#[test]
fn cargo_paths_follow_the_configuration() {
    let root = repo_root();
    let triple = "x86_64-unknown-linux-gnu";
    assert_eq!(
        helper("cargo_target_dir", &[]),
        root.join("target").to_str().unwrap()
    );
    assert_eq!(helper("cargo_build_triple", &[]), triple);
    assert_eq!(
        helper("cargo_bin_dir", &[]),
        format!("{}/target/{triple}/release", root.display())
    );
    let elsewhere = "/nonexistent/k7-target";
    assert_eq!(
        helper("cargo_target_dir", &[("CARGO_TARGET_DIR", Some(elsewhere))]),
        elsewhere
    );
    assert_eq!(
        helper(
            "cargo_target_dir",
            &[("CARGO_BUILD_TARGET_DIR", Some(elsewhere))]
        ),
        elsewhere
    );
    assert_eq!(
        helper("cargo_bin_dir", &[("CARGO_TARGET_DIR", Some(elsewhere))]),
        format!("{elsewhere}/{triple}/release")
    );
    assert_eq!(
        helper(
            "cargo_bin_dir",
            &[
                ("CARGO_TARGET_DIR", Some(elsewhere)),
                ("CARGO_BUILD_TARGET", Some("aarch64-unknown-linux-gnu"))
            ]
        ),
        format!("{elsewhere}/aarch64-unknown-linux-gnu/release")
    );
}

/// The target directory the harness derives from the running test
/// executable is the one the scripts' helper reports for the same
/// environment (so the package tests look where build-deb writes).
#[test]
fn harness_and_scripts_agree_on_the_target_directory() {
    let env: Vec<(&str, Option<String>)> = ["CARGO_TARGET_DIR", "CARGO_BUILD_TARGET_DIR"]
        .into_iter()
        .map(|v| (v, std::env::var(v).ok()))
        .collect();
    let env: Vec<(&str, Option<&str>)> = env.iter().map(|(k, v)| (*k, v.as_deref())).collect();
    let theirs = PathBuf::from(helper("cargo_target_dir", &env));
    assert_eq!(
        cargo_target_dir().canonicalize().unwrap(),
        theirs.canonicalize().unwrap()
    );
}

/// Under `CI=true` a missing prerequisite fails; elsewhere the test is
/// skipped loudly.
fn skip_or_fail(reason: &str) {
    if std::env::var("CI").as_deref() == Ok("true") {
        panic!("{reason}; CI must provide it");
    }
    let current = std::thread::current();
    let _ = std::io::Write::write_all(
        &mut std::io::stderr(),
        format!(
            "SKIP {}: {reason}\n",
            current.name().unwrap_or("<unknown test>")
        )
        .as_bytes(),
    );
}

/// `scripts/test` as root outside CI fetches the 7.x test kernel (with
/// `scripts/fetch-kernel7`) and runs the tests with `UML_KERNEL7` set, so
/// the kernel tests do not skip. Its cargo is a stand-in that records
/// what it is asked (the real suite is not run again); the kernel must be
/// in the cache already (this test does not download it) and every
/// package of the test list installed (it must not install any here).
#[test]
fn scripts_test_as_root_fetches_the_7x_kernel() {
    use uml_integration_tests::{require, Requirement};
    require!(Requirement::Root);
    let cache = std::env::var_os("UML_KERNEL7_CACHE")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("/var/cache/uml-utilities-rs/kernel7"));
    if !cache.join("linux.uml").is_file() {
        return skip_or_fail(&format!(
            "no 7.x kernel in {} (run scripts/fetch-kernel7 as root once)",
            cache.display()
        ));
    }
    let root = repo_root();
    let missing = run_with_timeout(
        Command::new("bash").current_dir(&root).arg("-c").arg(
            ". scripts/lib/debian-packages.bash; \
             if [ -z \"$(missing_packages uml-utilities-rs)\" ]; then \
             TEST_PACKAGES=$(printf '%s\\n' $TEST_PACKAGES | grep -vx uml-utilities); fi; \
             missing_packages $TEST_PACKAGES",
        ),
        LIMIT,
    );
    assert!(missing.success(), "{missing}");
    if !missing.stdout_str().trim().is_empty() {
        return skip_or_fail(&format!(
            "packages missing on this host, which scripts/test would install: {}",
            missing.stdout_str().trim()
        ));
    }
    let fake = tempfile::tempdir().unwrap();
    let log = fake.path().join("cargo.log");
    let cargo = fake.path().join("cargo");
    std::fs::write(
        &cargo,
        "#!/bin/sh\nprintf '%s | UML_KERNEL7=%s\\n' \"$*\" \"${UML_KERNEL7:-}\" >> \"$FAKE_CARGO_LOG\"\n",
    )
    .unwrap();
    std::fs::set_permissions(&cargo, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    let path = std::env::var_os("PATH").unwrap_or_default();
    let mut dirs = vec![fake.path().to_path_buf()];
    dirs.extend(std::env::split_paths(&path));
    let out = run_with_timeout(
        Command::new(root.join("scripts/test"))
            .env("PATH", std::env::join_paths(dirs).unwrap())
            .env("FAKE_CARGO_LOG", &log)
            .env_remove("CI")
            .env_remove("UML_KERNEL7")
            .env_remove("UML_TEST_PACKAGE"),
        Duration::from_secs(300),
    );
    assert!(out.success(), "{out}");
    assert!(
        out.stdout_str().contains("== scripts/fetch-kernel7"),
        "{out}"
    );
    assert!(
        !out.stderr_str().contains("installing Debian packages"),
        "{out}"
    );
    let calls = std::fs::read_to_string(&log).unwrap();
    let kernel = cache.join("linux.uml");
    let test_call = calls
        .lines()
        .find(|l| l.starts_with("test --workspace"))
        .unwrap_or_else(|| panic!("cargo test was not run: {calls}"));
    assert!(
        test_call.ends_with(&format!("| UML_KERNEL7={}", kernel.display())),
        "{calls}"
    );
    for step in [
        "fmt --all -- --check",
        "clippy --workspace",
        "build --workspace",
    ] {
        assert!(
            calls.lines().any(|l| l.starts_with(step)),
            "{step}: {calls}"
        );
    }
}

/// README's `scripts/demo`, end to end, as a user runs it: two 6.1 guests
/// on the switch's daemon socket ping each other, a 7.x guest joins the
/// same switch over bess and pings the first, all three answer
/// `uml_mconsole`, and everything is cleaned up (its namespace is gone).
/// Takes a release build (shared with `packaging/build-deb` in CI).
#[test]
fn demo_runs_end_to_end_with_a_7x_guest() {
    use uml_integration_tests::{linux_uml7, require, Requirement};
    require!(
        Requirement::Root,
        Requirement::LinuxUml,
        Requirement::LinuxUml7,
        Requirement::NetNs
    );
    let kernel7 = linux_uml7().unwrap();
    let out = run_with_timeout(
        Command::new(repo_root().join("scripts/demo"))
            .env("UML_KERNEL7", &kernel7.path)
            .env_remove("UML_SWITCH")
            .env_remove("UML_DEMO_KERNEL7"),
        Duration::from_secs(1200),
    );
    assert!(out.success(), "{out}");
    let text = out.stdout_str();
    assert!(
        text.contains("PASS: the guests (a b c) pinged each other through uml_switch"),
        "{out}"
    );
    // c's own ping replies, printed between its section and mconsole's.
    let c = text
        .split("joins over bess and pings a ====")
        .nth(1)
        .and_then(|rest| rest.split("==== uml_mconsole version").next())
        .unwrap_or_else(|| panic!("no section of guest c:\n{out}"));
    assert_eq!(c.matches("bytes from 10.0.0.1").count(), 3, "{out}");
    assert!(
        text.contains(&format!("UML c ({}", kernel7.version)),
        "{out}"
    );
    // Its namespace was removed.
    let pid_ns = text
        .lines()
        .find_map(|l| l.strip_prefix("deleted namespace "))
        .unwrap_or_else(|| panic!("the demo did not delete its namespace:\n{out}"));
    assert!(
        !Path::new("/run/netns").join(pid_ns).exists(),
        "{pid_ns} left behind"
    );
}
