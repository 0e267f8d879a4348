//! Skip logic for tests that need things only some machines have.

use std::ffi::OsString;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;
use std::time::Duration;

use crate::process::run_with_timeout;

/// Something a real-kernel test needs from the machine.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Requirement {
    /// Running as root (effective uid 0).
    Root,
    /// `linux.uml` on `PATH` or at `/usr/bin/linux.uml`.
    LinuxUml,
    /// The second test kernel, Linux 7.x (any version >= 6.16; see
    /// `docs/testing.md` §11): `$UML_KERNEL7`, else `linux.uml` in the cache
    /// of `scripts/fetch-kernel7` (see [`linux_uml7`]). It must run and report
    /// its version; [`require`] prints which one a test uses.
    LinuxUml7,
    /// The tun/tap device `/dev/net/tun`.
    DevNetTun,
    /// Debian's C reference tool `/usr/bin/<name>`, or the absolute path
    /// `<name>` (e.g. `/usr/lib/uml/port-helper`), from uml-utilities.
    CBinary(&'static str),
    /// Network namespaces: the `ip` program and root.
    NetNs,
    /// The glibc NSS module `libnss_<name>.so.2` (Debian package
    /// `libnss-<name>`), e.g. `extrausers`.
    NssModule(&'static str),
    /// A host program on `PATH` (guests run the host's programs through
    /// hostfs), with the Debian package that provides it.
    Program(&'static str, &'static str),
    /// Loop devices (`/dev/loop-control`), for file systems a test makes
    /// in a file ([`crate::loopfs`]).
    LoopDevice,
    /// A file system the kernel has (`/proc/filesystems`; as root, its
    /// module is loaded first if need be), e.g. `xfs`.
    FileSystem(&'static str),
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
            Requirement::LinuxUml7 => linux_uml7().err(),
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
            Requirement::NssModule(name) => nss_module(name).is_none().then(|| {
                format!("NSS module libnss_{name}.so.2 not found (apt-get install libnss-{name})")
            }),
            Requirement::Program(program, package) => find_in_path(program)
                .is_none()
                .then(|| format!("`{program}` not found (apt-get install {package})")),
            Requirement::LoopDevice => (!Path::new("/dev/loop-control").exists())
                .then(|| "/dev/loop-control does not exist (no loop devices)".to_string()),
            Requirement::FileSystem(name) => {
                if !kernel_has_fs(name) && nix::unistd::geteuid().is_root() {
                    let _ = run_with_timeout(
                        Command::new("modprobe").arg("-q").arg(name),
                        VERSION_TIMEOUT,
                    );
                }
                (!kernel_has_fs(name))
                    .then(|| format!("the kernel has no {name} file system (/proc/filesystems)"))
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

    /// What a met requirement has to say in the test's output (the 7.x
    /// kernel's version and path), if anything.
    pub fn report(self) -> Option<String> {
        match self {
            Requirement::LinuxUml7 => linux_uml7()
                .ok()
                .map(|k| format!("UML kernel {} at {}", k.version, k.path.display())),
            _ => None,
        }
    }
}

/// Whether `/proc/filesystems` lists `name`.
fn kernel_has_fs(name: &str) -> bool {
    std::fs::read_to_string("/proc/filesystems")
        .is_ok_and(|t| t.lines().any(|l| l.split_whitespace().last() == Some(name)))
}

/// Where glibc's dynamic loader would find the NSS module
/// `libnss_<name>.so.2`: the multiarch and plain library directories.
pub fn nss_module(name: &str) -> Option<PathBuf> {
    let file = format!("libnss_{name}.so.2");
    [
        "/lib/x86_64-linux-gnu",
        "/usr/lib/x86_64-linux-gnu",
        "/lib64",
        "/usr/lib64",
        "/lib",
        "/usr/lib",
    ]
    .iter()
    .map(|d| Path::new(d).join(&file))
    .find(|p| p.is_file())
}

/// Checks `what`. Returns `true` when it is met.
///
/// When it is not: under `CI=true` this panics (`"<reason>; CI must provide
/// it"`), since CI is set up to run every test; elsewhere it prints a loud
/// `SKIP <test>: <reason>` line on stderr and returns `false`, and the test
/// should return (see [`require!`](crate::require!)). A met requirement
/// with something to [report](Requirement::report) prints `USING <test>:
/// <report>` there.
pub fn require(what: Requirement) -> bool {
    let current = std::thread::current();
    let test = current.name().unwrap_or("<unknown test>");
    let Some(reason) = what.missing() else {
        if let Some(report) = what.report() {
            let _ = writeln!(std::io::stderr(), "USING {test}: {report}");
        }
        return true;
    };
    if std::env::var("CI").as_deref() == Ok("true") {
        panic!("{reason}; CI must provide it");
    }
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

/// Where `scripts/fetch-kernel7` caches the 7.x kernel unless
/// `UML_KERNEL7_CACHE` says otherwise; the kernel is `<cache>/linux.uml`.
pub const DEFAULT_KERNEL7_CACHE: &str = "/var/cache/uml-utilities-rs/kernel7";

/// The oldest kernel accepted as the second test kernel: 6.16 dropped the
/// legacy `ethN=` transports (`docs/kernel7.md`).
pub const KERNEL7_MIN_VERSION: (u32, u32) = (6, 16);

/// Bound of `linux.uml --version`.
const VERSION_TIMEOUT: Duration = Duration::from_secs(60);

/// The second test kernel: a Linux >= 6.16 `linux.uml` that runs on this
/// host.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Kernel7 {
    /// The executable (as found, not resolved: the cache's `linux.uml` is
    /// a symlink into the current version's directory).
    pub path: PathBuf,
    /// What `--version` printed, e.g. `7.2.7`.
    pub version: String,
}

/// The 7.x test kernel: `$UML_KERNEL7` when set and non-empty, else
/// `<cache>/linux.uml` with the cache `$UML_KERNEL7_CACHE` or
/// [`DEFAULT_KERNEL7_CACHE`]. It must run `--version` (bounded) and report
/// at least [`KERNEL7_MIN_VERSION`]. Looked up once per test process; the
/// error says what is wrong and how to get the kernel
/// (`scripts/fetch-kernel7`).
pub fn linux_uml7() -> Result<&'static Kernel7, String> {
    static FOUND: OnceLock<Result<Kernel7, String>> = OnceLock::new();
    FOUND
        .get_or_init(|| {
            find_kernel7(
                std::env::var_os("UML_KERNEL7"),
                std::env::var_os("UML_KERNEL7_CACHE"),
            )
        })
        .as_ref()
        .map_err(Clone::clone)
}

/// [`linux_uml7`] with the two environment variables as arguments.
fn find_kernel7(
    env_kernel: Option<OsString>,
    env_cache: Option<OsString>,
) -> Result<Kernel7, String> {
    const HOW: &str = "run scripts/fetch-kernel7 (as root) or set UML_KERNEL7";
    let path = match env_kernel.filter(|p| !p.is_empty()) {
        Some(p) => {
            let p = PathBuf::from(p);
            if !is_executable(&p) {
                return Err(format!(
                    "UML_KERNEL7={} is not an executable file",
                    p.display()
                ));
            }
            p
        }
        None => {
            let cache = env_cache
                .filter(|c| !c.is_empty())
                .map_or_else(|| PathBuf::from(DEFAULT_KERNEL7_CACHE), PathBuf::from);
            let p = cache.join("linux.uml");
            if !is_executable(&p) {
                return Err(format!(
                    "Linux 7.x UML kernel not found at {} ({HOW})",
                    p.display()
                ));
            }
            p
        }
    };
    // Through timeout(1): a kernel that cannot be executed at all is then a
    // reason to skip (status 126/127), not a panic of run_with_timeout.
    let out = run_with_timeout(
        Command::new("timeout")
            .args(["-k", "5"])
            .arg(VERSION_TIMEOUT.as_secs().to_string())
            .arg(&path)
            .arg("--version"),
        VERSION_TIMEOUT + Duration::from_secs(10),
    );
    let version = out
        .stdout_str()
        .lines()
        .map(str::trim)
        .rfind(|l| !l.is_empty())
        .unwrap_or("")
        .to_string();
    if !out.success() || version.is_empty() {
        return Err(format!(
            "{} --version failed ({HOW}): {out}",
            path.display()
        ));
    }
    match parse_kernel_version(&version) {
        Some(v) if v >= KERNEL7_MIN_VERSION => Ok(Kernel7 { path, version }),
        Some(_) => Err(format!(
            "{} is Linux {version}, older than {}.{} ({HOW})",
            path.display(),
            KERNEL7_MIN_VERSION.0,
            KERNEL7_MIN_VERSION.1
        )),
        None => Err(format!(
            "{} --version printed {version:?}, not a kernel version",
            path.display()
        )),
    }
}

/// `(major, minor)` of a kernel release such as `7.2.7` or `6.16.0-rc1`.
pub fn parse_kernel_version(release: &str) -> Option<(u32, u32)> {
    let mut parts = release.trim().split(|c: char| !c.is_ascii_digit());
    let major = parts.next()?.parse().ok()?;
    let minor = parts.next()?.parse().ok()?;
    Some((major, minor))
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    /// A fake kernel in `dir` whose `--version` prints `version`. Returns
    /// once it can be executed: a child that another test thread forks
    /// while the file is open for writing keeps it "busy" (ETXTBSY) until
    /// that child execs.
    fn fake_kernel(dir: &Path, version: &str) -> PathBuf {
        let p = dir.join("linux.uml");
        let _ = std::fs::remove_file(&p);
        std::fs::write(&p, format!("#!/bin/sh\necho '{version}'\n")).unwrap();
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o755)).unwrap();
        let runs = crate::wait_until(Duration::from_secs(10), || {
            Command::new(&p).output().is_ok()
        });
        assert!(runs, "{} never became executable", p.display());
        p
    }

    #[test]
    fn kernel_versions() {
        assert_eq!(parse_kernel_version("7.2.7"), Some((7, 2)));
        assert_eq!(parse_kernel_version("6.16-rc1\n"), Some((6, 16)));
        assert_eq!(parse_kernel_version("6.1.176"), Some((6, 1)));
        assert_eq!(parse_kernel_version("seven"), None);
        assert_eq!(parse_kernel_version("7"), None);
        assert!(parse_kernel_version("6.16.0").unwrap() >= KERNEL7_MIN_VERSION);
        assert!(parse_kernel_version("6.15.9").unwrap() < KERNEL7_MIN_VERSION);
    }

    #[test]
    fn kernel7_from_env_and_cache() {
        let dir = tempfile::tempdir().unwrap();
        let k = fake_kernel(dir.path(), "7.2.7");
        // UML_KERNEL7 wins over the cache.
        let found = find_kernel7(Some(k.clone().into()), Some("/nonexistent".into())).unwrap();
        assert_eq!(
            found,
            Kernel7 {
                path: k.clone(),
                version: "7.2.7".into()
            }
        );
        // The cache directory's linux.uml.
        let found = find_kernel7(None, Some(dir.path().into())).unwrap();
        assert_eq!(found.path, k);
        // An empty UML_KERNEL7 counts as unset.
        let found = find_kernel7(Some("".into()), Some(dir.path().into())).unwrap();
        assert_eq!(found.version, "7.2.7");
    }

    #[test]
    fn kernel7_missing_or_too_old() {
        let dir = tempfile::tempdir().unwrap();
        let e = find_kernel7(None, Some(dir.path().into())).unwrap_err();
        assert!(
            e.contains("not found") && e.contains("scripts/fetch-kernel7"),
            "{e}"
        );
        let e = find_kernel7(Some(dir.path().join("nope").into()), None).unwrap_err();
        assert!(
            e.contains("UML_KERNEL7=") && e.contains("not an executable"),
            "{e}"
        );
        let k = fake_kernel(dir.path(), "6.1.176");
        let e = find_kernel7(Some(k.into()), None).unwrap_err();
        assert!(e.contains("Linux 6.1.176, older than 6.16"), "{e}");
        let k = fake_kernel(dir.path(), "junk");
        let e = find_kernel7(Some(k.into()), None).unwrap_err();
        assert!(e.contains("not a kernel version"), "{e}");
    }

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
