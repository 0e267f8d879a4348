//! Real-kernel test support for the uml-utilities rewrite.
//!
//! The integration tests of this crate boot Debian's `linux.uml` (see
//! `docs/testing.md`) and drive it with the project's tools and the C
//! reference tools. This library holds the reusable pieces:
//!
//! * [`require`] / [`require!`]: skip a test (or fail it under `CI=true`)
//!   when root, `linux.uml`, the 7.x test kernel, `/dev/net/tun`, a C
//!   reference binary or `ip` is missing;
//! * [`Uml`] / [`UmlConfig`]: boot a UML with the standard command line and
//!   init-script preamble and always stop it again, even when the test
//!   panics; [`Kernel`] chooses Debian 12's 6.1 (default) or the 7.x
//!   kernel of `scripts/fetch-kernel7` ([`linux_uml7`]);
//! * [`NetNs`]: a network namespace that is deleted, with everything still
//!   running in it, when the guard is dropped;
//! * [`run_with_timeout`]: run a client with a hard deadline;
//! * [`mconsole_request`] and [`NotifyListener`]: a raw mconsole client and
//!   notification socket built on `uml_common`;
//! * [`workspace_bin`]: the path of a binary built from this workspace;
//! * [`segment`]: UML guests on one switch segment (boot, console steps,
//!   halting) for the real-kernel switch tests;
//! * [`diff`]: run Debian's C tool and ours the same way and compare what
//!   they print and how they end;
//! * [`loopfs`]: loop-mounted XFS, btrfs and ext4 file systems a test
//!   makes in a temporary file, unmounted and removed when dropped.
//!
//! Every wait in here is bounded. Helpers that can only fail because the
//! test machine is broken panic with a message saying what to do; helpers
//! whose failure a test may want to check return `Result<_, String>`.

#![forbid(unsafe_code)]

pub mod cowfile;
pub mod diff;
pub mod guestnet;
pub mod loopfs;
mod mconsole;
mod netns;
pub mod pcap_port;
mod process;
mod require;
pub mod segment;
pub mod sparse;
pub mod switch_client;
mod uml;

use std::path::PathBuf;

pub use mconsole::{mconsole_request, NotifyListener};
pub use netns::NetNs;
pub use process::{
    blocked_syscall, pid_alive, run_with_timeout, run_with_timeout_input, wait_idle, wait_until,
    ProcessGroup, RunOutput,
};
pub use require::{
    find_in_path, linux_uml, linux_uml7, nss_module, parse_kernel_version, require, Kernel7,
    Requirement, DEFAULT_KERNEL7_CACHE, KERNEL7_MIN_VERSION,
};
pub use uml::{Kernel, Uml, UmlConfig, DONE_MARKER, IDLE_SCRIPT, READY_MARKER};

/// Re-exported so tests can name reply and notification types without a
/// separate dependency.
pub use uml_common;

/// The directory holding the binaries of this workspace's current build
/// profile, derived from the running test executable
/// (`target/<profile>/deps/<test>-<hash>` → `target/<profile>`).
pub fn workspace_bin_dir() -> PathBuf {
    let exe = match std::env::current_exe() {
        Ok(exe) => exe,
        Err(e) => panic!("cannot find the running test executable: {e}"),
    };
    bin_dir_of(&exe)
}

/// `target/<profile>/deps/x` → `target/<profile>`; `target/<profile>/x` →
/// `target/<profile>`.
fn bin_dir_of(exe: &std::path::Path) -> PathBuf {
    let dir = exe.parent().unwrap_or(std::path::Path::new("."));
    if dir.file_name().is_some_and(|n| n == "deps") {
        dir.parent().unwrap_or(dir).to_path_buf()
    } else {
        dir.to_path_buf()
    }
}

/// Cargo's target directory (`target/`, or wherever `CARGO_TARGET_DIR` or
/// `build.target-dir` put it) of the running test executable.
/// `packaging/build-deb` leaves the package in its `debian/`.
pub fn cargo_target_dir() -> PathBuf {
    target_dir_of(&workspace_bin_dir())
}

/// See [`cargo_target_dir`]; `bin_dir` is `TARGET[/<triple>]/<profile>`.
/// The target directory is the nearest directory above `bin_dir` that
/// holds cargo's `.rustc_info.json`; without one (cargo may skip it), the
/// profile's grandparent if cargo tagged both it and the parent with
/// `CACHEDIR.TAG` (`TARGET/<triple>/<profile>`), else the parent.
fn target_dir_of(bin_dir: &std::path::Path) -> PathBuf {
    if let Some(dir) = bin_dir
        .ancestors()
        .skip(1)
        .find(|d| d.join(".rustc_info.json").is_file())
    {
        return dir.to_path_buf();
    }
    let tagged = |d: &std::path::Path| d.join("CACHEDIR.TAG").is_file();
    let parent = bin_dir.parent().unwrap_or(bin_dir);
    match parent.parent() {
        Some(grand) if tagged(parent) && tagged(grand) => grand.to_path_buf(),
        _ => parent.to_path_buf(),
    }
}

/// The binary a test exercises: the program named by environment variable
/// `env` when it is set and non-empty (e.g. Debian's C tool, to check a
/// test against the reference), else the workspace binary `name`. Also
/// says whether it is the C reference at `c_path` (links resolved).
///
/// # Panics
///
/// When the chosen path is not a file.
pub fn binary_under_test(name: &str, env: &str, c_path: &str) -> (PathBuf, bool) {
    let path = match std::env::var_os(env) {
        Some(p) if !p.is_empty() => PathBuf::from(p),
        _ => workspace_bin(name),
    };
    assert!(path.is_file(), "{env}={} is not a file", path.display());
    let canon = |p: &std::path::Path| p.canonicalize().ok();
    let is_c = canon(&path).is_some_and(|p| Some(p) == canon(std::path::Path::new(c_path)));
    (path, is_c)
}

/// The path of the workspace binary `name` (e.g. `"uml_mconsole"`,
/// `"uml-launch"`) of the current build profile.
///
/// # Panics
///
/// When the binary has not been built, with a message telling to run
/// `cargo build --workspace --bins`.
pub fn workspace_bin(name: &str) -> PathBuf {
    let dir = workspace_bin_dir();
    let path = dir.join(name);
    if !path.is_file() {
        panic!(
            "workspace binary {name:?} not found at {}; run `cargo build --workspace --bins` \
             (with the same profile as the tests) first",
            path.display()
        );
    }
    path
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;
    use std::path::Path;

    #[test]
    fn bin_dir_from_deps_and_direct() {
        assert_eq!(
            bin_dir_of(Path::new("/w/target/debug/deps/harness_smoke-0123")),
            Path::new("/w/target/debug")
        );
        assert_eq!(
            bin_dir_of(Path::new("/w/target/release/uml-launch")),
            Path::new("/w/target/release")
        );
    }

    #[test]
    fn target_dir_above_the_triple() {
        let root = tempfile::tempdir().unwrap();
        let t = root.path().join("elsewhere/tgt");
        let triple = t.join("x86_64-unknown-linux-gnu");
        let bin = triple.join("debug");
        std::fs::create_dir_all(&bin).unwrap();
        assert_eq!(target_dir_of(&bin), triple, "nothing to go by");
        for tagged in [&t, &triple] {
            std::fs::write(tagged.join("CACHEDIR.TAG"), "").unwrap();
        }
        assert_eq!(target_dir_of(&bin), t);
        let plain = t.join("release");
        std::fs::create_dir_all(&plain).unwrap();
        assert_eq!(target_dir_of(&plain), t);
        // A target directory inside another one.
        let inner = t.join("ci");
        let inner_bin = inner.join("x86_64-unknown-linux-gnu/debug");
        std::fs::create_dir_all(&inner_bin).unwrap();
        std::fs::write(t.join(".rustc_info.json"), "{}").unwrap();
        std::fs::write(inner.join(".rustc_info.json"), "{}").unwrap();
        assert_eq!(target_dir_of(&inner_bin), inner);
        assert_eq!(target_dir_of(&inner.join("debug")), inner);
        assert_eq!(target_dir_of(&bin), t);
        // The running build's own target directory holds its profile dir.
        assert!(workspace_bin_dir().starts_with(cargo_target_dir()));
        assert!(cargo_target_dir().join("CACHEDIR.TAG").is_file());
    }

    #[test]
    fn launcher_is_found() {
        // `cargo test` builds this package's binaries before running tests.
        let p = workspace_bin("uml-launch");
        assert!(p.ends_with("uml-launch"));
    }

    #[test]
    #[should_panic(expected = "cargo build --workspace --bins")]
    fn missing_bin_panics_with_hint() {
        workspace_bin("no-such-binary-here");
    }
}
