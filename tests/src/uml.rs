//! Booting and always stopping a real `linux.uml` (`docs/testing.md` §3–§4).

use std::ffi::OsString;
use std::fs;
use std::os::unix::fs::{FileTypeExt, PermissionsExt};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::thread;
use std::time::{Duration, Instant};

use nix::sys::signal::Signal;
use tempfile::TempDir;
use uml_common::mconsole::Reply;

use crate::mconsole::{mconsole_request, NotifyListener};
use crate::process::{
    child_pid, pid_alive, signal_group, signal_pid, wait_bounded, wait_pid_gone, POLL,
};
use crate::require::{find_in_path, linux_uml, linux_uml7, Requirement};

/// Printed on the console by the init preamble right before the test's
/// script body runs.
pub const READY_MARKER: &str = "UMLTEST-READY";
/// Printed on the console after the body, followed by its exit status
/// (`UMLTEST-DONE rc=0`), before the guest powers off.
pub const DONE_MARKER: &str = "UMLTEST-DONE rc=";
/// An init body that keeps the guest up until the host halts it.
pub const IDLE_SCRIPT: &str = "while :; do sleep 3600; done";

/// How long [`Uml::boot`] waits for the mconsole socket and pid file.
const BOOT_TIMEOUT: Duration = Duration::from_secs(30);
/// Bound of each mconsole call made by the harness itself.
const MCONSOLE_TIMEOUT: Duration = Duration::from_secs(5);
/// Longest `sun_path` (without the terminating NUL).
const MAX_SUN_PATH: usize = 107;

/// Which `linux.uml` a test boots.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Kernel {
    /// The host's `linux.uml` (Debian 12: 6.1.176, `/usr/bin/linux.uml`),
    /// started through `uml-launch` (the XSTATE seccomp filter for the
    /// AMX host quirk, README "Testing against the real kernel").
    #[default]
    Linux61,
    /// The second test kernel, Linux 7.x (>= 6.16) from
    /// `scripts/fetch-kernel7` or `$UML_KERNEL7` (`docs/testing.md` §11;
    /// see [`linux_uml7`]). It has only the vector network driver:
    /// `ethN=` arguments are not errors but are logged as `Unknown kernel
    /// command line parameters` and handed to init as environment
    /// variables (`docs/kernel7.md` §4). Started without `uml-launch`'s
    /// filter: 7.x sizes its XSTATE buffer from the host's answer to the
    /// probe the filter fails, and a failed probe is fatal to it (`Failed
    /// to initialize default registers`). Unless the test sets
    /// `UML_PORT_HELPER` itself or turns
    /// [`UmlConfig::debian_port_helper`] off, [`Uml::boot`] points it at
    /// `/usr/lib/uml/port-helper` (when that exists), where the 6.1 kernel
    /// looks; 7.x would look in `/usr/lib64/uml/`, which Debian's package
    /// lacks.
    Linux7,
}

impl Kernel {
    /// The executable, or why there is none.
    pub fn path(self) -> Result<PathBuf, String> {
        match self {
            Kernel::Linux61 => linux_uml().ok_or_else(|| "linux.uml not found".to_string()),
            Kernel::Linux7 => linux_uml7().map(|k| k.path.clone()),
        }
    }

    /// The [`Requirement`] a test booting this kernel states.
    pub fn requirement(self) -> Requirement {
        match self {
            Kernel::Linux61 => Requirement::LinuxUml,
            Kernel::Linux7 => Requirement::LinuxUml7,
        }
    }

    /// Whether the kernel is started through `uml-launch` (XSTATE probe
    /// made to fail).
    fn uses_launch_filter(self) -> bool {
        self == Kernel::Linux61
    }

    /// Whether the kernel still has the legacy `ethN=` transports.
    pub fn has_legacy_net(self) -> bool {
        self == Kernel::Linux61
    }
}

/// Where Debian installs port-helper (and where the 6.1 kernel looks).
const DEBIAN_PORT_HELPER: &str = "/usr/lib/uml/port-helper";
/// The variable through which the port channel's helper can be chosen.
const PORT_HELPER_ENV: &str = "UML_PORT_HELPER";

/// How to boot a test UML. `$WORK` in `extra_args` and in `env` values is
/// replaced by the instance's work directory (which does not exist before
/// [`Uml::boot`]); the init script gets it as the shell variable `WORK`.
#[derive(Debug, Clone)]
pub struct UmlConfig {
    /// Machine id (`umid=`); the control files are
    /// `$WORK/uml/<umid>/{mconsole,pid}`. Default `test`.
    pub umid: String,
    /// Guest memory (`mem=`). Default `64M`.
    pub mem: String,
    /// More kernel arguments, after the standard ones (`eth0=...`,
    /// `KEY=VALUE` for the init script's environment, ...).
    pub extra_args: Vec<String>,
    /// Body of the `/bin/sh` init script, run in a subshell after the
    /// standard preamble (`PATH`, `/proc`, `/sys`, `/dev/pts`, tmpfs on
    /// `/tmp` `/run` `/var/tmp`, `$WORK` visible read-only, `$WORK/out`
    /// read-write, then [`READY_MARKER`]). When it ends, [`DONE_MARKER`]
    /// and its status are printed and the guest powers off. Default
    /// [`IDLE_SCRIPT`].
    pub init_script: String,
    /// Start the kernel inside this network namespace (`ip netns exec`).
    pub netns: Option<String>,
    /// Extra environment of the kernel process (and so of its helpers).
    pub env: Vec<(String, String)>,
    /// Directory put first in the kernel's `PATH` (e.g. the workspace's
    /// binaries, so that the kernel runs our `uml_net`).
    pub path_prepend: Option<PathBuf>,
    /// Hard lifetime limit: the kernel runs under `timeout -k 5 <secs>`.
    /// Default 300 s.
    pub lifetime: Duration,
    /// Bind a [`NotifyListener`] at `$WORK/notify.sock` before booting and
    /// pass `mconsole=notify:$WORK/notify.sock`; see [`Uml::notify`].
    pub notify: bool,
    /// A command put in front of the launcher, inside the network namespace
    /// if any: `[ip netns exec NS] WRAPPER... timeout ... linux.uml ...`.
    /// It must end by `exec`ing its arguments (so the harness still stops
    /// the right processes), e.g. `unshare -m --propagation private sh -c
    /// 'mount --bind ... && exec "$@"' sh` to run the kernel in a private
    /// mount namespace (`docs/testing.md` §8.3). `$WORK` is substituted.
    /// Default: none.
    pub wrapper: Vec<String>,
    /// Which kernel to boot. Default [`Kernel::Linux61`].
    pub kernel: Kernel,
    /// With [`Kernel::Linux7`], set `UML_PORT_HELPER` to Debian's
    /// `/usr/lib/uml/port-helper` when neither `env` nor the test
    /// process's environment sets it (Debian's package has no
    /// `/usr/lib64/uml/port-helper`, where 7.x looks). `false`: the kernel
    /// gets no `UML_PORT_HELPER` at all, not even one the test process
    /// inherited (unless `env` sets it), so that it looks where it was
    /// compiled to look, as on a system with the package installed.
    /// Default `true`.
    pub debian_port_helper: bool,
}

impl Default for UmlConfig {
    fn default() -> Self {
        UmlConfig {
            umid: "test".to_string(),
            mem: "64M".to_string(),
            extra_args: Vec::new(),
            init_script: IDLE_SCRIPT.to_string(),
            netns: None,
            env: Vec::new(),
            path_prepend: None,
            lifetime: Duration::from_secs(300),
            notify: false,
            wrapper: Vec::new(),
            kernel: Kernel::default(),
            debian_port_helper: true,
        }
    }
}

impl UmlConfig {
    /// The defaults with machine id `umid`.
    pub fn new(umid: &str) -> Self {
        UmlConfig {
            umid: umid.to_string(),
            ..UmlConfig::default()
        }
    }

    /// The defaults with machine id `umid`, booting `kernel`.
    pub fn with_kernel(umid: &str, kernel: Kernel) -> Self {
        UmlConfig {
            umid: umid.to_string(),
            kernel,
            ..UmlConfig::default()
        }
    }
}

/// A running test UML. Dropping it always stops the kernel (mconsole
/// `halt`, then `SIGTERM`/`SIGKILL` to its process group, then the
/// launcher) and removes the work directory, unless `UML_TEST_KEEP=1`.
#[derive(Debug)]
pub struct Uml {
    umid: String,
    work_path: PathBuf,
    /// `None` once kept or removed.
    work: Option<TempDir>,
    /// `timeout` (possibly via `ip netns exec`, which execs).
    launcher: Child,
    launcher_status: Option<ExitStatus>,
    /// The kernel's pid from the pid file; 0 while unknown.
    pid: u32,
    notify: Option<NotifyListener>,
    kernel: Kernel,
}

impl Uml {
    /// Creates a work directory, writes the init script and boots the
    /// configured kernel (6.1 through the `uml-launch` seccomp shim; see
    /// [`Kernel`]) with the command line of `docs/testing.md` §3.1. Returns
    /// once the mconsole socket and the pid file exist (at most 30 s). On
    /// failure the instance is stopped and the error carries the tail of the
    /// console.
    pub fn boot(cfg: UmlConfig) -> Result<Uml, String> {
        let kernel = cfg.kernel.path()?;
        let launch = if cfg.kernel.uses_launch_filter() {
            Some(crate::workspace_bin("uml-launch"))
        } else {
            None
        };
        if !cfg.kernel.has_legacy_net() {
            for a in cfg.extra_args.iter().filter(|a| is_legacy_net_arg(a)) {
                eprintln!(
                    "uml harness: {a:?}: the {:?} kernel has no ethN= transports; it passes \
                     this to init as an environment variable (use vecN: devices)",
                    cfg.kernel
                );
            }
        }
        let work = tempfile::Builder::new()
            .prefix("umlt-")
            .tempdir()
            .map_err(|e| format!("cannot create a work directory: {e}"))?;
        let work_path = work.path().to_path_buf();
        let sock = socket_path_in(&work_path, &cfg.umid);
        if sock.as_os_str().len() > MAX_SUN_PATH {
            return Err(format!(
                "socket path {} is too long; use a shorter TMPDIR or umid",
                sock.display()
            ));
        }
        for d in ["out", "uml"] {
            fs::create_dir(work_path.join(d))
                .map_err(|e| format!("cannot create {d} in {}: {e}", work_path.display()))?;
        }
        let script_path = work_path.join("init.sh");
        fs::write(&script_path, init_script_text(&work_path, &cfg.init_script))
            .and_then(|()| fs::set_permissions(&script_path, fs::Permissions::from_mode(0o755)))
            .map_err(|e| format!("cannot write {}: {e}", script_path.display()))?;

        let mut args = kernel_args(&cfg, &work_path);
        let notify = if cfg.notify {
            let l = NotifyListener::bind(work_path.join("notify.sock"))?;
            args.push(format!("mconsole=notify:{}", l.path().display()));
            Some(l)
        } else {
            None
        };

        let ip = match &cfg.netns {
            Some(_) => Some(find_in_path("ip").ok_or("`ip` not found")?),
            None => None,
        };
        let wrapper: Vec<String> = cfg
            .wrapper
            .iter()
            .map(|a| substitute_work(a, &work_path))
            .collect();
        let argv = launcher_argv(
            ip.as_deref(),
            cfg.netns.as_deref(),
            &wrapper,
            cfg.lifetime,
            launch.as_deref(),
            &kernel,
            &args,
        );
        let console = fs::File::create(work_path.join("console.log"))
            .map_err(|e| format!("cannot create console.log: {e}"))?;
        let console2 = console
            .try_clone()
            .map_err(|e| format!("cannot duplicate console.log: {e}"))?;
        let mut cmd = Command::new(&argv[0]);
        cmd.args(&argv[1..])
            .current_dir(&work_path)
            .stdin(Stdio::null())
            .stdout(console)
            .stderr(console2)
            .process_group(0);
        let env_sets_helper = cfg.env.iter().any(|(k, _)| k == PORT_HELPER_ENV);
        if !cfg.debian_port_helper {
            cmd.env_remove(PORT_HELPER_ENV);
        } else if cfg.kernel == Kernel::Linux7
            && !env_sets_helper
            && std::env::var_os(PORT_HELPER_ENV).is_none()
            && Path::new(DEBIAN_PORT_HELPER).is_file()
        {
            cmd.env(PORT_HELPER_ENV, DEBIAN_PORT_HELPER);
        }
        for (k, v) in &cfg.env {
            cmd.env(k, substitute_work(v, &work_path));
        }
        if let Some(dir) = &cfg.path_prepend {
            let old = std::env::var_os("PATH").unwrap_or_else(|| "/usr/bin:/bin".into());
            let mut path = OsString::from(dir.as_os_str());
            path.push(":");
            path.push(old);
            cmd.env("PATH", path);
        }
        let launcher = cmd
            .spawn()
            .map_err(|e| format!("cannot start {:?}: {e}", argv[0]))?;

        // From here on, Drop cleans up whatever happens.
        let mut uml = Uml {
            umid: cfg.umid.clone(),
            work_path,
            work: Some(work),
            launcher,
            launcher_status: None,
            pid: 0,
            notify,
            kernel: cfg.kernel,
        };
        uml.wait_for_control_files()
            .map_err(|why| format!("UML {} did not come up: {why}\n{}", cfg.umid, uml.tail()))?;
        Ok(uml)
    }

    fn wait_for_control_files(&mut self) -> Result<(), String> {
        let deadline = Instant::now() + BOOT_TIMEOUT;
        let pid_file = self.pid_file();
        loop {
            let sock_ok = self
                .socket_path()
                .symlink_metadata()
                .is_ok_and(|m| m.file_type().is_socket());
            if sock_ok {
                if let Some(pid) = fs::read_to_string(&pid_file)
                    .ok()
                    .and_then(|s| parse_pid(&s))
                {
                    self.pid = pid;
                    return Ok(());
                }
            }
            if let Ok(Some(status)) = self.launcher.try_wait() {
                self.launcher_status = Some(status);
                return Err(format!("the kernel process ended ({status})"));
            }
            if Instant::now() >= deadline {
                return Err(format!(
                    "no mconsole socket and pid file after {BOOT_TIMEOUT:?}"
                ));
            }
            thread::sleep(POLL);
        }
    }

    /// The mconsole socket: `$WORK/uml/<umid>/mconsole`.
    pub fn socket_path(&self) -> PathBuf {
        socket_path_in(&self.work_path, &self.umid)
    }

    fn pid_file(&self) -> PathBuf {
        self.work_path.join("uml").join(&self.umid).join("pid")
    }

    /// The `uml_dir=` directory (`$WORK/uml/`), for clients that resolve
    /// umids themselves.
    pub fn uml_dir(&self) -> PathBuf {
        self.work_path.join("uml")
    }

    /// The kernel it runs.
    pub fn kernel(&self) -> Kernel {
        self.kernel
    }

    /// The machine id.
    pub fn umid(&self) -> &str {
        &self.umid
    }

    /// The kernel's host pid (from the pid file).
    pub fn pid(&self) -> u32 {
        self.pid
    }

    /// The work directory (`$WORK`).
    pub fn work_dir(&self) -> &Path {
        &self.work_path
    }

    /// `$WORK/out`, mounted read-write in the guest.
    pub fn out_dir(&self) -> PathBuf {
        self.work_path.join("out")
    }

    /// The notification socket, when booted with `notify: true`.
    pub fn notify(&self) -> Option<&NotifyListener> {
        self.notify.as_ref()
    }

    /// Everything on the console so far (lossy UTF-8).
    pub fn console(&self) -> String {
        match fs::read(self.work_path.join("console.log")) {
            Ok(b) => String::from_utf8_lossy(&b).into_owned(),
            Err(_) => String::new(),
        }
    }

    fn tail(&self) -> String {
        format!("--- console tail ---\n{}", tail_lines(&self.console(), 40))
    }

    /// Waits until `pattern` appears on the console, at most `timeout`.
    /// Returns `false` on timeout or when the kernel exited without
    /// printing it.
    pub fn wait_console(&mut self, pattern: &str, timeout: Duration) -> bool {
        let deadline = Instant::now() + timeout;
        loop {
            let running = self.is_running();
            if self.console().contains(pattern) {
                return true;
            }
            if !running || Instant::now() >= deadline {
                return false;
            }
            thread::sleep(Duration::from_millis(50));
        }
    }

    /// Waits for [`READY_MARKER`]: the init script's body is starting.
    pub fn wait_ready(&mut self, timeout: Duration) -> bool {
        self.wait_console(READY_MARKER, timeout)
    }

    /// Whether the kernel process still runs.
    pub fn is_running(&mut self) -> bool {
        if self.pid != 0 {
            pid_alive(self.pid)
        } else {
            self.launcher_exit().is_none()
        }
    }

    fn launcher_exit(&mut self) -> Option<ExitStatus> {
        if self.launcher_status.is_none() {
            if let Ok(Some(s)) = self.launcher.try_wait() {
                self.launcher_status = Some(s);
            }
        }
        self.launcher_status
    }

    /// Exit code of the launcher once it ended: the kernel's exit status,
    /// or 124 when `timeout` ended it (see `timeout(1)`).
    pub fn exit_code(&mut self) -> Option<i32> {
        self.launcher_exit().and_then(|s| s.code())
    }

    /// Sends `command` through the raw mconsole client (5 s bound); see
    /// [`mconsole_request`].
    pub fn mconsole(&self, command: &str) -> Result<Reply, String> {
        mconsole_request(&self.socket_path(), command, MCONSOLE_TIMEOUT)
    }

    /// Sends `halt`. The kernel exits 1–2 s later; see [`Uml::wait_exit`].
    pub fn halt(&self) -> Result<(), String> {
        let reply = self.mconsole("halt")?;
        if reply.is_error() {
            return Err(format!(
                "halt refused: {}",
                String::from_utf8_lossy(&reply.text)
            ));
        }
        Ok(())
    }

    /// Waits at most `timeout` for the kernel process to end (and reaps the
    /// launcher). Returns `true` when it has ended.
    pub fn wait_exit(&mut self, timeout: Duration) -> bool {
        let deadline = Instant::now() + timeout;
        if self.pid != 0 && !wait_pid_gone(self.pid, timeout) {
            return false;
        }
        // The launcher (`timeout`) follows its child within moments.
        let left = deadline
            .saturating_duration_since(Instant::now())
            .max(Duration::from_secs(2));
        if self.launcher_status.is_none() {
            self.launcher_status = wait_bounded(&mut self.launcher, left);
        }
        self.pid != 0 || self.launcher_status.is_some()
    }

    /// Stops the kernel with escalating force; every step is bounded.
    fn stop(&mut self) {
        if self.pid != 0 && pid_alive(self.pid) {
            // Wait the full 15 s only when the kernel took the request.
            let grace = match self.halt() {
                Ok(()) => Duration::from_secs(15),
                Err(_) => Duration::from_secs(1),
            };
            if !wait_pid_gone(self.pid, grace) {
                eprintln!(
                    "uml harness: {} (pid {}) did not halt; sending SIGTERM",
                    self.umid, self.pid
                );
                signal_group(self.pid, Signal::SIGTERM);
                signal_pid(self.pid, Signal::SIGTERM);
                if !wait_pid_gone(self.pid, Duration::from_secs(3)) {
                    signal_group(self.pid, Signal::SIGKILL);
                    signal_pid(self.pid, Signal::SIGKILL);
                    wait_pid_gone(self.pid, Duration::from_secs(3));
                }
            }
        }
        if self.launcher_exit().is_none() {
            // Normally `timeout` ends right after its child. If not (or the
            // kernel's pid was never known), SIGTERM makes `timeout` pass
            // the signal on to the kernel, then SIGKILL for the group.
            self.launcher_status = wait_bounded(&mut self.launcher, Duration::from_secs(2));
            if self.launcher_status.is_none() {
                let pgid = child_pid(&self.launcher).as_raw().unsigned_abs();
                signal_group(pgid, Signal::SIGTERM);
                self.launcher_status = wait_bounded(&mut self.launcher, Duration::from_secs(3));
                if self.launcher_status.is_none() {
                    signal_group(pgid, Signal::SIGKILL);
                    let _ = self.launcher.kill();
                    self.launcher_status = wait_bounded(&mut self.launcher, Duration::from_secs(3));
                }
            }
        }
        if self.pid == 0 {
            // The pid file may have appeared after boot gave up.
            if let Some(pid) = fs::read_to_string(self.pid_file())
                .ok()
                .and_then(|s| parse_pid(&s))
            {
                signal_group(pid, Signal::SIGKILL);
                signal_pid(pid, Signal::SIGKILL);
            }
        }
    }
}

impl Drop for Uml {
    fn drop(&mut self) {
        self.stop();
        self.notify = None;
        if let Some(work) = self.work.take() {
            if std::env::var("UML_TEST_KEEP").as_deref() == Ok("1") {
                eprintln!("uml harness: keeping {}", work.keep().display());
            } else if let Err(e) = work.close() {
                eprintln!(
                    "uml harness: cannot remove {}: {e}",
                    self.work_path.display()
                );
            }
        }
    }
}

fn socket_path_in(work: &Path, umid: &str) -> PathBuf {
    work.join("uml").join(umid).join("mconsole")
}

/// The pid in a UML pid file (decimal, newline).
fn parse_pid(text: &str) -> Option<u32> {
    text.trim().parse().ok().filter(|&p| p > 1)
}

/// Replaces every `$WORK` in `s` by `work`.
fn substitute_work(s: &str, work: &Path) -> String {
    s.replace("$WORK", &work.to_string_lossy())
}

/// The last `n` lines of `text`.
fn tail_lines(text: &str, n: usize) -> String {
    let lines: Vec<&str> = text.lines().collect();
    let start = lines.len().saturating_sub(n);
    let mut out = lines[start..].join("\n");
    out.push('\n');
    out
}

/// Single-quotes `s` for `/bin/sh`.
fn shell_quote(s: &str) -> String {
    format!("'{}'", s.replace('\'', r"'\''"))
}

/// glibc tunables for every guest program (see `init_script_text`).
pub const GUEST_GLIBC_TUNABLES: &str =
    "glibc.cpu.hwcaps=-AVX512F,-AVX512VL,-AVX512BW,-AVX512DQ,-AVX512CD";

/// The directories the preamble covers with a tmpfs.
const TMPFS_DIRS: [&str; 3] = ["/tmp", "/run", "/var/tmp"];

/// The whole init script: preamble (`docs/testing.md` §4), the body in a
/// subshell, the done marker and a power-off.
fn init_script_text(work: &Path, body: &str) -> String {
    let w = shell_quote(&work.to_string_lossy());
    let mut s = String::new();
    s.push_str("#!/bin/sh\n# Generated by the uml-integration-tests harness.\n");
    s.push_str("export PATH=/usr/sbin:/usr/bin:/sbin:/bin\n");
    // Under uml-launch (see src/bin/uml-launch.rs) the kernel saves only
    // the FXSAVE part of the guest processes' registers; glibc's AVX-512
    // (EVEX) string functions then misbehave (ping printed its format
    // strings literally), so guest programs must not select them.
    s.push_str(&format!("export GLIBC_TUNABLES={GUEST_GLIBC_TUNABLES}\n"));
    s.push_str(&format!("WORK={w}\nOUT=\"$WORK/out\"\nexport WORK OUT\n"));
    s.push_str("mount -t proc proc /proc\n");
    s.push_str("mount -t sysfs sysfs /sys\n");
    s.push_str("mkdir -p /dev/pts && mount -t devpts devpts /dev/pts\n");
    s.push_str("mount -t tmpfs -o mode=1777 tmpfs /tmp\n");
    s.push_str("mount -t tmpfs tmpfs /run\n");
    s.push_str("mount -t tmpfs tmpfs /var/tmp\n");
    if TMPFS_DIRS.iter().any(|d| work.starts_with(d)) {
        // The tmpfs hides the host's copy: show it again, read-only.
        s.push_str("mkdir -p \"$WORK\" && mount -t hostfs -o \"ro,$WORK\" none \"$WORK\"\n");
    }
    s.push_str("mount -t hostfs -o \"rw,$OUT\" none \"$OUT\"\n");
    s.push_str(&format!("echo {READY_MARKER}\n"));
    s.push_str("(\n");
    s.push_str(body);
    if !body.ends_with('\n') {
        s.push('\n');
    }
    s.push_str(")\n");
    s.push_str(&format!("echo \"{DONE_MARKER}$?\"\n"));
    s.push_str("sync\necho o > /proc/sysrq-trigger\nsleep 30\n");
    s
}

/// The kernel command line of `docs/testing.md` §3.1 plus the configured
/// extras.
fn kernel_args(cfg: &UmlConfig, work: &Path) -> Vec<String> {
    let w = work.to_string_lossy();
    let mut args = vec![
        format!("mem={}", cfg.mem),
        format!("umid={}", cfg.umid),
        format!("uml_dir={w}/uml/"),
        "root=/dev/root".to_string(),
        "rootfstype=hostfs".to_string(),
        "rootflags=/".to_string(),
        "ro".to_string(),
        "con0=fd:0,fd:1".to_string(),
        "con=null".to_string(),
        "ssl=null".to_string(),
        format!("init={w}/init.sh"),
    ];
    args.extend(cfg.extra_args.iter().map(|a| substitute_work(a, work)));
    args
}

/// Whether a kernel argument configures a legacy network device
/// (`eth<N>=...`), which kernels from 6.16 on do not have.
fn is_legacy_net_arg(arg: &str) -> bool {
    arg.strip_prefix("eth")
        .and_then(|rest| rest.split_once('='))
        .is_some_and(|(n, _)| !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()))
}

/// `[ip netns exec NS] [WRAPPER...] timeout -k 5 SECS [uml-launch] linux.uml ARGS...`
fn launcher_argv(
    ip: Option<&Path>,
    netns: Option<&str>,
    wrapper: &[String],
    lifetime: Duration,
    launch: Option<&Path>,
    kernel: &Path,
    args: &[String],
) -> Vec<OsString> {
    let mut argv: Vec<OsString> = Vec::new();
    if let (Some(ip), Some(ns)) = (ip, netns) {
        argv.extend([ip.into(), "netns".into(), "exec".into(), ns.into()]);
    }
    argv.extend(wrapper.iter().map(OsString::from));
    let secs = lifetime.as_secs().max(1);
    argv.extend([
        "timeout".into(),
        "-k".into(),
        "5".into(),
        secs.to_string().into(),
    ]);
    argv.extend(launch.map(OsString::from));
    argv.push(kernel.into());
    argv.extend(args.iter().map(OsString::from));
    argv
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    #[test]
    fn standard_command_line() {
        let mut cfg = UmlConfig::new("a1");
        cfg.extra_args = vec!["eth0=daemon,,unix,$WORK/sw.ctl".into(), "X=1".into()];
        let args = kernel_args(&cfg, Path::new("/tmp/w"));
        assert_eq!(
            args.join(" "),
            "mem=64M umid=a1 uml_dir=/tmp/w/uml/ root=/dev/root rootfstype=hostfs \
             rootflags=/ ro con0=fd:0,fd:1 con=null ssl=null init=/tmp/w/init.sh \
             eth0=daemon,,unix,/tmp/w/sw.ctl X=1"
        );
    }

    #[test]
    fn launcher_with_and_without_netns() {
        let args = vec!["mem=64M".to_string()];
        let plain = launcher_argv(
            None,
            None,
            &[],
            Duration::from_secs(300),
            Some(Path::new("/b/uml-launch")),
            Path::new("/usr/bin/linux.uml"),
            &args,
        );
        assert_eq!(
            plain,
            [
                "timeout",
                "-k",
                "5",
                "300",
                "/b/uml-launch",
                "/usr/bin/linux.uml",
                "mem=64M"
            ]
            .map(OsString::from)
        );
        let ns = launcher_argv(
            Some(Path::new("/usr/sbin/ip")),
            Some("n1"),
            &[],
            Duration::from_millis(10),
            Some(Path::new("/b/uml-launch")),
            Path::new("/usr/bin/linux.uml"),
            &args,
        );
        assert_eq!(
            &ns[..5],
            &["/usr/sbin/ip", "netns", "exec", "n1", "timeout"].map(OsString::from)
        );
        assert_eq!(ns[7], "1");
        let wrapped = launcher_argv(
            Some(Path::new("/usr/sbin/ip")),
            Some("n1"),
            &["unshare".to_string(), "-m".to_string()],
            Duration::from_secs(9),
            Some(Path::new("/b/uml-launch")),
            Path::new("/usr/bin/linux.uml"),
            &args,
        );
        assert_eq!(
            &wrapped[3..8],
            &["n1", "unshare", "-m", "timeout", "-k"].map(OsString::from)
        );
        // The 7.x kernel is started without uml-launch.
        let k7 = launcher_argv(
            None,
            None,
            &[],
            Duration::from_secs(60),
            None,
            Path::new("/c/linux.uml"),
            &args,
        );
        assert_eq!(
            k7,
            ["timeout", "-k", "5", "60", "/c/linux.uml", "mem=64M"].map(OsString::from)
        );
    }

    #[test]
    fn kernel_choice() {
        assert_eq!(UmlConfig::new("a").kernel, Kernel::Linux61);
        let cfg = UmlConfig::with_kernel("b", Kernel::Linux7);
        assert_eq!((cfg.umid.as_str(), cfg.kernel), ("b", Kernel::Linux7));
        assert!(cfg.debian_port_helper);
        assert!(Kernel::Linux61.uses_launch_filter() && Kernel::Linux61.has_legacy_net());
        assert!(!Kernel::Linux7.uses_launch_filter() && !Kernel::Linux7.has_legacy_net());
        assert_eq!(Kernel::Linux7.requirement(), Requirement::LinuxUml7);
        assert_eq!(Kernel::Linux61.requirement(), Requirement::LinuxUml);
    }

    #[test]
    fn legacy_net_args() {
        assert!(is_legacy_net_arg("eth0=daemon,,unix,/x"));
        assert!(is_legacy_net_arg("eth12=tuntap,,,10.0.0.1"));
        assert!(!is_legacy_net_arg("vec0:transport=tap,ifname=t"));
        assert!(!is_legacy_net_arg("eth=x"));
        assert!(!is_legacy_net_arg("ethx=1"));
        assert!(!is_legacy_net_arg("ETH0=1"));
    }

    #[test]
    fn init_script_under_tmp() {
        let s = init_script_text(Path::new("/tmp/umlt-x"), "echo hi");
        assert!(s.starts_with("#!/bin/sh\n"));
        assert!(s.contains("WORK='/tmp/umlt-x'\n"));
        assert!(s.contains("mount -t hostfs -o \"ro,$WORK\" none \"$WORK\"\n"));
        assert!(s.contains("mount -t hostfs -o \"rw,$OUT\" none \"$OUT\"\n"));
        let ready = s.find(READY_MARKER).unwrap();
        let body = s.find("(\necho hi\n)\n").unwrap();
        let done = s.find(DONE_MARKER).unwrap();
        assert!(ready < body && body < done);
        assert!(s.contains("echo o > /proc/sysrq-trigger"));
    }

    #[test]
    fn init_script_elsewhere_skips_ro_remount() {
        let s = init_script_text(Path::new("/srv/w"), "true\n");
        assert!(!s.contains("\"ro,$WORK\""));
        assert!(s.contains("\"rw,$OUT\""));
        assert!(s.contains("(\ntrue\n)\n"));
    }

    #[test]
    fn small_helpers() {
        assert_eq!(shell_quote("a'b"), r"'a'\''b'");
        assert_eq!(parse_pid("1234\n"), Some(1234));
        assert_eq!(parse_pid("x"), None);
        assert_eq!(parse_pid("1\n"), None);
        assert_eq!(tail_lines("a\nb\nc\n", 2), "b\nc\n");
        assert_eq!(substitute_work("$WORK/a:$WORK", Path::new("/w")), "/w/a:/w");
    }

    #[test]
    fn script_is_valid_shell() {
        let s = init_script_text(Path::new("/tmp/a b"), "echo 'x'");
        let out = crate::run_with_timeout(
            Command::new("sh").args(["-n", "-c", &s]),
            Duration::from_secs(10),
        );
        assert!(out.success(), "{out}");
    }
}
