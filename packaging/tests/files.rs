//! The packaging files agree with each other: the changelog's version with
//! the workspace's, the unit's programs with the package's assets, and the
//! shell scripts are valid `sh`.

// Test code: a broken fixture should stop the test with its message.
#![allow(clippy::expect_used, clippy::unwrap_used)]

use std::path::{Path, PathBuf};
use std::process::Command;

fn dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn read(rel: &str) -> String {
    let p = dir().join(rel);
    std::fs::read_to_string(&p).unwrap_or_else(|e| panic!("{}: {e}", p.display()))
}

/// `(source, destination directory or file, mode)` of every asset in
/// `[package.metadata.deb]` (one asset per line, as Cargo.toml writes them).
fn assets() -> Vec<(String, String, String)> {
    let toml = read("Cargo.toml");
    toml.lines()
        .map(str::trim)
        .filter(|l| l.starts_with("[\"") && l.ends_with("],"))
        .map(|l| {
            let parts: Vec<String> = l
                .trim_start_matches('[')
                .trim_end_matches("],")
                .split(", ")
                .map(|s| s.trim_matches('"').to_string())
                .collect();
            assert_eq!(parts.len(), 3, "{l}");
            (parts[0].clone(), parts[1].clone(), parts[2].clone())
        })
        .collect()
}

/// Where asset `source` is installed (with a leading `/`).
fn installed(source: &str) -> String {
    let (_, dest, _) = assets()
        .into_iter()
        .find(|(s, _, _)| s == source)
        .unwrap_or_else(|| panic!("no asset {source}"));
    let name = Path::new(source).file_name().expect("file name");
    if dest.ends_with('/') {
        format!("/{dest}{}", name.to_string_lossy())
    } else {
        format!("/{dest}")
    }
}

#[test]
fn changelog_version_is_the_workspace_version() {
    let changelog = read("debian/changelog");
    let first = changelog.lines().next().expect("a first line");
    let want = format!("uml-utilities-rs ({}-1) ", env!("CARGO_PKG_VERSION"));
    assert!(
        first.starts_with(&want),
        "{first:?} does not start with {want:?}"
    );
    assert!(read("Cargo.toml").contains("revision = \"1\""));
}

#[test]
fn every_asset_source_exists_or_is_built() {
    for (src, _, mode) in assets() {
        assert!(mode == "644" || mode == "755", "{src}: mode {mode}");
        if src.starts_with("target/release/") {
            continue;
        }
        if let Some(dir_glob) = src.strip_suffix("/*") {
            assert!(dir().join(dir_glob).is_dir(), "{src}");
        } else {
            assert!(dir().join(&src).is_file(), "{src}");
        }
    }
}

#[test]
fn unit_runs_the_packaged_wrapper() {
    let unit = read("systemd/uml-utilities.service");
    let wrapper = installed("service/uml-switch-service");
    for action in ["condition", "start", "post-start"] {
        assert!(unit.contains(&format!("={wrapper} {action}\n")), "{action}");
    }
    assert!(unit.contains("RuntimeDirectory=uml-utilities\n"));
    assert!(unit.contains("WantedBy=multi-user.target"));
    let service = read("service/uml-switch-service");
    assert!(service.contains("UML_DIR=/run/uml-utilities\n"));
    assert!(service.contains("UML_SWITCH_USER=\"uml-net\"\n"));
    assert!(service.contains("-unix \"$UML_SWITCH_CTL\""));
    assert!(service.contains("chmod 777 \"$UML_SWITCH_CTL\""));
}

#[test]
fn programs_are_installed_at_debians_paths() {
    for tool in uml_utilities_packaging::tools::tools() {
        let src = format!("target/release/{}", tool.name);
        assert_eq!(installed(&src), tool.path, "{}", tool.name);
    }
}

#[test]
fn shell_scripts_parse() {
    for rel in [
        "build-deb",
        "service/uml-switch-service",
        "init.d/uml-utilities",
        "network/if-pre-up.d/uml-utilities",
        "network/if-up.d/uml-utilities",
        "debian/postinst",
        "debian/prerm",
        "debian/postrm",
    ] {
        let path = dir().join(rel);
        let text = read(rel);
        let shell = if text.starts_with("#!/usr/bin/env bash") {
            "bash"
        } else {
            "sh"
        };
        let out = Command::new(shell)
            .arg("-n")
            .arg(&path)
            .output()
            .expect("run the shell");
        assert!(
            out.status.success(),
            "{rel}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let meta = std::fs::metadata(&path).expect("stat");
        use std::os::unix::fs::PermissionsExt;
        assert!(
            meta.permissions().mode() & 0o111 != 0,
            "{rel} is not executable"
        );
    }
    // The maintainer scripts take cargo-deb's systemd snippets.
    for rel in ["debian/postinst", "debian/prerm", "debian/postrm"] {
        assert_eq!(read(rel).matches("#DEBHELPER#").count(), 1, "{rel}");
    }
}
