//! Skip logic for tests that need things only some machines have.

use std::io::Write;
use std::path::{Path, PathBuf};

/// Something a real-kernel test needs from the machine.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Requirement {
    /// Running as root (effective uid 0).
    Root,
    /// `linux.uml` on `PATH` or at `/usr/bin/linux.uml`.
    LinuxUml,
    /// The tun/tap device `/dev/net/tun`.
    DevNetTun,
    /// Debian's C reference tool `/usr/bin/<name>`, or the absolute path
    /// `<name>` (e.g. `/usr/lib/uml/port-helper`), from uml-utilities.
    CBinary(&'static str),
    /// Network namespaces: the `ip` program and root.
    NetNs,
}

impl Requirement {
    /// `None` when the requirement is met, else why not.
    pub fn missing(self) -> Option<String> {
        match self {
            Requirement::Root => {
                (!nix::unistd::geteuid().is_root()).then(|| "not running as root".to_string())
            }
            Requirement::LinuxUml => linux_uml()
                .is_none()
                .then(|| "linux.uml not found (apt-get install user-mode-linux)".to_string()),
            Requirement::DevNetTun => (!Path::new("/dev/net/tun").exists())
                .then(|| "/dev/net/tun does not exist".to_string()),
            Requirement::CBinary(name) => {
                // `join` keeps an absolute `name` as it is.
                let path = Path::new("/usr/bin").join(name);
                (!path.is_file()).then(|| {
                    format!(
                        "C reference binary {} not found (apt-get install uml-utilities)",
                        path.display()
                    )
                })
            }
            Requirement::NetNs => {
                if find_in_path("ip").is_none() {
                    Some("`ip` not found (apt-get install iproute2)".to_string())
                } else if !nix::unistd::geteuid().is_root() {
                    Some("network namespaces need root".to_string())
                } else {
                    None
                }
            }
        }
    }
}

/// Checks `what`. Returns `true` when it is met.
///
/// When it is not: under `CI=true` this panics (`"<reason>; CI must provide
/// it"`), since CI is set up to run every test; elsewhere it prints a loud
/// `SKIP <test>: <reason>` line on stderr and returns `false`, and the test
/// should return (see [`require!`](crate::require!)).
pub fn require(what: Requirement) -> bool {
    let Some(reason) = what.missing() else {
        return true;
    };
    if std::env::var("CI").as_deref() == Ok("true") {
        panic!("{reason}; CI must provide it");
    }
    let current = std::thread::current();
    let test = current.name().unwrap_or("<unknown test>");
    // Written to the stderr handle, not with `eprintln!`: the test runner
    // captures the print macros, and a skip must be visible in every run.
    let _ = writeln!(std::io::stderr(), "SKIP {test}: {reason}");
    false
}

/// Returns from the calling test (which must return `()`) unless every
/// listed [`Requirement`] is met; see [`require`].
///
/// ```ignore
/// require!(Requirement::Root, Requirement::LinuxUml);
/// ```
#[macro_export]
macro_rules! require {
    ($($what:expr),+ $(,)?) => {
        $(
            if !$crate::require($what) {
                return;
            }
        )+
    };
}

/// The first executable file named `name` in `PATH`, then in `/usr/sbin`,
/// `/usr/bin`, `/sbin` and `/bin` (root tools such as `ip` live in sbin,
/// which an unprivileged `PATH` may lack).
pub fn find_in_path(name: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .chain(["/usr/sbin", "/usr/bin", "/sbin", "/bin"].map(PathBuf::from))
        .map(|dir| dir.join(name))
        .find(|p| is_executable(p))
}

fn is_executable(path: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt;
    path.metadata()
        .is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
}

/// Where `linux.uml` is: on `PATH`, or `/usr/bin/linux.uml`.
pub fn linux_uml() -> Option<PathBuf> {
    find_in_path("linux.uml")
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    #[test]
    fn finds_sh() {
        assert!(find_in_path("sh").is_some());
        assert!(find_in_path("surely-no-such-program-xyz").is_none());
    }

    #[test]
    fn missing_c_binary_has_reason() {
        let r = Requirement::CBinary("surely-no-such-program-xyz").missing();
        assert!(r.is_some_and(|r| r.contains("/usr/bin/surely-no-such-program-xyz")));
    }

    #[test]
    fn c_binary_by_absolute_path() {
        let r = Requirement::CBinary("/surely/no/such-program").missing();
        assert!(r.is_some_and(|r| r.contains(" /surely/no/such-program ")));
        if Path::new("/usr/bin/sh").is_file() {
            assert!(Requirement::CBinary("/usr/bin/sh").missing().is_none());
        }
    }

    #[test]
    fn met_requirement_is_true() {
        // `sh` is in /usr/bin on every Debian (merged /usr).
        if Path::new("/usr/bin/sh").is_file() {
            assert!(require(Requirement::CBinary("sh")));
        }
    }

    #[test]
    fn macro_returns_early() {
        fn body(reached: &mut bool) {
            if std::env::var("CI").as_deref() == Ok("true") {
                // Under CI the macro would panic instead; nothing to test.
                *reached = true;
                return;
            }
            require!(Requirement::CBinary("surely-no-such-program-xyz"));
            *reached = true;
        }
        let mut reached = false;
        body(&mut reached);
        assert_eq!(reached, std::env::var("CI").as_deref() == Ok("true"));
    }
}
