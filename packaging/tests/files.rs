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
    // uml_switch notifies readiness; systemd would remove the socket
    // unit's directory with a RuntimeDirectory=.
    assert!(unit.contains("\nType=notify\n"), "{unit}");
    assert!(!unit.contains("\nRuntimeDirectory="), "{unit}");
    assert!(unit.contains("WantedBy=multi-user.target"));
    assert!(unit.contains("\nAlso=uml-utilities.socket\n"), "{unit}");
    let service = read("service/uml-switch-service");
    assert!(service.contains("UML_DIR=/run/uml-utilities\n"));
    assert!(service.contains("UML_SWITCH_USER=\"uml-net\"\n"));
    assert!(service.contains("set -- -unix \"$UML_SWITCH_CTL\""));
    assert!(service.contains("chmod 777 \"$UML_SWITCH_CTL\""));
    // The wrapper execs the switch: it is the process systemd started.
    assert!(service.contains("exec setpriv "));
}

/// The value of `key=` in a unit (the last one).
fn unit_value<'a>(unit: &'a str, key: &str) -> Option<&'a str> {
    unit.lines()
        .rev()
        .find_map(|l| l.strip_prefix(key)?.strip_prefix('='))
}

#[test]
fn socket_unit_passes_the_default_control_socket() {
    let socket = read("systemd/uml-utilities.socket");
    let wrapper = read("service/uml-switch-service");
    // The wrapper's default UML_SWITCH_CTL, which /etc/default names too.
    let ctl = "/run/uml-utilities/uml_switch.ctl";
    assert!(wrapper.contains("UML_SWITCH_CTL=\"$UML_DIR/uml_switch.ctl\"\n"));
    assert!(read("default/uml-utilities").contains(&format!("#UML_SWITCH_CTL=\"{ctl}\"\n")));
    assert_eq!(unit_value(&socket, "ListenStream"), Some(ctl));
    assert_eq!(unit_value(&socket, "FileDescriptorName"), Some("ctl"));
    // Every local user may connect, as with Debian's init script.
    assert_eq!(unit_value(&socket, "SocketMode"), Some("0666"));
    assert_eq!(
        unit_value(&socket, "Service"),
        Some("uml-utilities.service")
    );
    assert_eq!(unit_value(&socket, "WantedBy"), Some("sockets.target"));
    let init = read("init.d/uml-utilities");
    for script in [&wrapper, &init] {
        assert!(script.contains("--mgmt-mode 0660"));
        assert!(script.contains("--mgmt-group"));
    }
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
