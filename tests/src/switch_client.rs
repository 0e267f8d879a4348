//! A switch under test and fake UML ports that speak the `uml_switch`
//! control and data protocol directly (`docs/switch.md` §4, §5).
//!
//! * [`SwitchBinary`]: which switch to run — `workspace_bin("uml_switch")`,
//!   or the program named by `UML_SWITCH_UNDER_TEST` (e.g. Debian's
//!   `/usr/bin/uml_switch`, which is then run under `stdbuf -oL -eL`
//!   because it block-buffers stdout when it is not a terminal).
//! * [`RunningSwitch`]: a switch started in a private temporary directory
//!   with stdin from `/dev/null` and stdout/stderr captured to files; it is
//!   killed (by pid) and the directory removed when the guard is dropped.
//! * [`FakePort`]: a control connection plus a data socket bound to a full
//!   110-byte abstract address, as the kernel's `daemon` transport uses.
//! * [`NsSwitch`]: a switch run in a network namespace, for tests with
//!   real kernels.
//! * [`BessClient`]: a `SOCK_SEQPACKET` connection to a `--bess` socket,
//!   as the kernel's vector `transport=bess` makes; [`FramePort`] sends
//!   and receives frames through either kind of client.
//! * Request and frame builders ([`request_v0`], [`request_v1`],
//!   [`request_v3`], [`frame`], …).
//!
//! Every wait is bounded: sockets carry read and write timeouts, `connect`
//! runs in a helper thread with a deadline, and output waits poll with a
//! deadline.

use std::ffi::OsString;
use std::fs::File;
use std::io::{ErrorKind, Read, Write};
use std::os::linux::net::SocketAddrExt;
use std::os::unix::net::{SocketAddr, UnixDatagram, UnixStream};
use std::os::unix::process::ExitStatusExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::mpsc;
use std::thread;
use std::time::{Duration, Instant};

use nix::sys::signal::Signal;

use crate::process::{signal_pid, wait_bounded, POLL};

/// Environment variable naming the switch binary to test instead of the
/// workspace build.
pub const SWITCH_ENV: &str = "UML_SWITCH_UNDER_TEST";

/// `SWITCH_MAGIC` (`docs/switch.md` §4.1).
pub const SWITCH_MAGIC: u32 = 0xfeed_face;

/// Size of a `struct sockaddr_un` on the wire.
pub const SOCKADDR_LEN: usize = 110;

/// Length of the abstract name of a full 110-byte abstract address
/// (`sun_path` minus its leading NUL).
pub const ABSTRACT_NAME_LEN: usize = 107;

/// Largest frame the switch forwards (14-byte header + 1500).
pub const MAX_FRAME: usize = 1514;

/// The broadcast MAC address.
pub const BROADCAST: [u8; 6] = [0xff; 6];

/// Default bound of a single wait (reply, frame, output line).
pub const WAIT: Duration = Duration::from_secs(5);

/// How long the switch may take to start (print its "attached" line).
const START_TIMEOUT: Duration = Duration::from_secs(10);

static COUNTER: AtomicU32 = AtomicU32::new(0);

/// A unique number within this process.
fn next_id() -> u32 {
    COUNTER.fetch_add(1, Ordering::Relaxed)
}

// ---------------------------------------------------------------------------
// The binary under test
// ---------------------------------------------------------------------------

/// The switch program the tests run.
#[derive(Debug, Clone)]
pub struct SwitchBinary {
    /// Path as passed to `exec` (so `argv[0]`, i.e. `PROG` in messages).
    pub path: PathBuf,
    /// It is Debian's C switch (run under `stdbuf -oL -eL`).
    pub is_c_reference: bool,
}

impl SwitchBinary {
    /// `$UML_SWITCH_UNDER_TEST` if set (non-empty), else the workspace's
    /// `uml_switch`.
    ///
    /// # Panics
    ///
    /// When the selected binary does not exist.
    pub fn under_test() -> SwitchBinary {
        let path = match std::env::var_os(SWITCH_ENV) {
            Some(p) if !p.is_empty() => PathBuf::from(p),
            _ => crate::workspace_bin("uml_switch"),
        };
        if !path.is_file() {
            panic!("{SWITCH_ENV}={} does not exist", path.display());
        }
        let is_c_reference = is_c_switch(&path);
        SwitchBinary {
            path,
            is_c_reference,
        }
    }

    /// `PROG` as the switch prints it (`argv[0]` as invoked).
    pub fn argv0(&self) -> String {
        self.path.to_string_lossy().into_owned()
    }

    /// A command running the switch with `args` (wrapped in
    /// `stdbuf -oL -eL` for the C reference).
    pub fn command<I, S>(&self, args: I) -> Command
    where
        I: IntoIterator<Item = S>,
        S: Into<OsString>,
    {
        let mut cmd = if self.is_c_reference {
            let mut c = Command::new("stdbuf");
            c.arg("-oL").arg("-eL").arg(&self.path);
            c
        } else {
            Command::new(&self.path)
        };
        cmd.args(args.into_iter().map(Into::into));
        cmd
    }
}

/// Whether `path` is Debian's C switch: `/usr/bin/uml_switch` (after
/// resolving links), or any binary when `UML_SWITCH_UNDER_TEST_IS_C=1`.
fn is_c_switch(path: &Path) -> bool {
    if std::env::var("UML_SWITCH_UNDER_TEST_IS_C").as_deref() == Ok("1") {
        return true;
    }
    let c = Path::new("/usr/bin/uml_switch");
    match (path.canonicalize(), c.canonicalize()) {
        (Ok(a), Ok(b)) => a == b,
        _ => false,
    }
}

// ---------------------------------------------------------------------------
// A running switch
// ---------------------------------------------------------------------------

/// Which captured output stream to look at.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stream {
    /// The switch's stdout.
    Stdout,
    /// The switch's stderr.
    Stderr,
    /// Either of them.
    Either,
}

/// A switch process started by a test; killed by pid (`SIGKILL`) and its
/// temporary directory removed on drop.
#[derive(Debug)]
pub struct RunningSwitch {
    child: Child,
    exited: Option<ExitStatus>,
    dir: tempfile::TempDir,
    binary: SwitchBinary,
    ctl: PathBuf,
    data: Option<PathBuf>,
    stdout_path: PathBuf,
    stderr_path: PathBuf,
}

/// How to start a switch (see [`RunningSwitch::start_with`]).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SwitchMode {
    /// Pass `-hub` (before `-unix`).
    pub hub: bool,
    /// Pass `-compat-v0` and `-unix <ctl> <data>`.
    pub compat_v0: bool,
}

impl RunningSwitch {
    /// `PROG -unix $DIR/ctl`, waiting for the "attached" line.
    ///
    /// # Panics
    ///
    /// When the switch does not start (the message includes its output).
    pub fn start() -> RunningSwitch {
        RunningSwitch::start_with(SwitchMode::default())
    }

    /// Starts the switch in `mode` in a fresh temporary directory.
    ///
    /// # Panics
    ///
    /// When the switch does not start.
    pub fn start_with(mode: SwitchMode) -> RunningSwitch {
        let dir = new_temp_dir();
        match RunningSwitch::start_in(dir, mode) {
            Ok(s) => s,
            Err(e) => panic!("{e}"),
        }
    }

    /// Starts the switch in `mode` with its sockets in `dir` (`ctl`, and
    /// `data` for compat-v0), stdin `/dev/null`, output to `dir/stdout`
    /// and `dir/stderr`, and waits up to 10 s for the line
    /// `PROG attached to unix socket '<ctl>'` (compat-v0:
    /// `... sockets '<ctl>' and '<data>'`) on stdout.
    ///
    /// # Errors
    ///
    /// When the switch exits or does not print that line in time (the
    /// error holds its output; the process is killed).
    pub fn start_in(dir: tempfile::TempDir, mode: SwitchMode) -> Result<RunningSwitch, String> {
        RunningSwitch::start_in_with_args(dir, mode, &[])
    }

    /// Starts the switch in `mode` in a fresh temporary directory with
    /// `extra` arguments after the standard ones (e.g. `--bess PATH`).
    ///
    /// # Panics
    ///
    /// When the switch does not start.
    pub fn start_with_args(mode: SwitchMode, extra: &[OsString]) -> RunningSwitch {
        let dir = new_temp_dir();
        match RunningSwitch::start_in_with_args(dir, mode, extra) {
            Ok(s) => s,
            Err(e) => panic!("{e}"),
        }
    }

    /// [`start_in`](Self::start_in) with `extra` arguments after the
    /// standard ones.
    ///
    /// # Errors
    ///
    /// As [`start_in`](Self::start_in).
    pub fn start_in_with_args(
        dir: tempfile::TempDir,
        mode: SwitchMode,
        extra: &[OsString],
    ) -> Result<RunningSwitch, String> {
        let binary = SwitchBinary::under_test();
        let ctl = dir.path().join("ctl");
        let data = mode.compat_v0.then(|| dir.path().join("data"));
        let mut args: Vec<OsString> = Vec::new();
        if mode.compat_v0 {
            args.push("-compat-v0".into());
        }
        if mode.hub {
            args.push("-hub".into());
        }
        args.push("-unix".into());
        args.push(ctl.clone().into());
        if let Some(d) = &data {
            args.push(d.clone().into());
        }
        args.extend(extra.iter().cloned());
        let stdout_path = dir.path().join("stdout");
        let stderr_path = dir.path().join("stderr");
        let out = File::create(&stdout_path).map_err(|e| format!("create stdout file: {e}"))?;
        let err = File::create(&stderr_path).map_err(|e| format!("create stderr file: {e}"))?;
        let child = binary
            .command(args)
            .stdin(Stdio::null())
            .stdout(out)
            .stderr(err)
            .spawn()
            .map_err(|e| format!("cannot start {}: {e}", binary.path.display()))?;
        let mut sw = RunningSwitch {
            child,
            exited: None,
            dir,
            binary,
            ctl,
            data,
            stdout_path,
            stderr_path,
        };
        let attached = sw.attached_line();
        if let Err(e) = sw.wait_line(Stream::Stdout, &attached, 1, START_TIMEOUT) {
            return Err(format!("switch did not start: {e}"));
        }
        // The lines after `attached` (how guests join each listener) are
        // written before the switch first waits for events: once it does,
        // the whole start-up output is in the file. (A switch that has
        // exited, e.g. after -daemon forked, has written all it will.)
        let pid = sw.pid();
        if crate::wait_until(START_TIMEOUT, || {
            !crate::pid_alive(pid) || crate::wait_idle(pid, Duration::ZERO)
        }) {
            Ok(sw)
        } else {
            Err(format!(
                "switch did not reach its event loop:\n{}",
                sw.output_report()
            ))
        }
    }

    /// The line the switch prints once its sockets are ready.
    pub fn attached_line(&self) -> String {
        match &self.data {
            Some(data) => format!(
                "{} attached to unix sockets '{}' and '{}'",
                self.binary.argv0(),
                self.ctl.display(),
                data.display()
            ),
            None => format!(
                "{} attached to unix socket '{}'",
                self.binary.argv0(),
                self.ctl.display()
            ),
        }
    }

    /// The binary that runs.
    pub fn binary(&self) -> &SwitchBinary {
        &self.binary
    }

    /// `PROG` as printed in messages.
    pub fn argv0(&self) -> String {
        self.binary.argv0()
    }

    /// The switch's process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// The control socket path.
    pub fn ctl(&self) -> &Path {
        &self.ctl
    }

    /// The data socket path (compat-v0 only).
    pub fn data_path(&self) -> Option<&Path> {
        self.data.as_deref()
    }

    /// The private temporary directory.
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// Everything written to stdout so far.
    pub fn stdout(&self) -> String {
        read_lossy(&self.stdout_path)
    }

    /// Everything written to stderr so far.
    pub fn stderr(&self) -> String {
        read_lossy(&self.stderr_path)
    }

    fn text(&self, stream: Stream) -> String {
        match stream {
            Stream::Stdout => self.stdout(),
            Stream::Stderr => self.stderr(),
            Stream::Either => {
                let mut s = self.stdout();
                if !s.is_empty() && !s.ends_with('\n') {
                    s.push('\n');
                }
                s.push_str(&self.stderr());
                s
            }
        }
    }

    /// Both streams (the last 60 lines of each), for assertion messages.
    pub fn output_report(&self) -> String {
        format!(
            "--- switch stdout (tail) ---\n{}--- switch stderr (tail) ---\n{}",
            tail(&self.stdout(), 60),
            tail(&self.stderr(), 60)
        )
    }

    /// How many complete lines of `stream` are exactly `line`.
    pub fn count_lines(&self, stream: Stream, line: &str) -> usize {
        complete_lines(&self.text(stream))
            .filter(|l| *l == line)
            .count()
    }

    /// How many complete lines of `stream` contain `needle`.
    pub fn count_containing(&self, stream: Stream, needle: &str) -> usize {
        complete_lines(&self.text(stream))
            .filter(|l| l.contains(needle))
            .count()
    }

    /// The complete lines of `stream` that start with `prefix`.
    pub fn lines_starting_with(&self, stream: Stream, prefix: &str) -> Vec<String> {
        complete_lines(&self.text(stream))
            .filter(|l| l.starts_with(prefix))
            .map(str::to_string)
            .collect()
    }

    /// Waits until `stream` holds at least `count` complete lines equal to
    /// `line`.
    ///
    /// # Errors
    ///
    /// When the deadline passes or the switch exits first (with both
    /// outputs in the message).
    pub fn wait_line(
        &mut self,
        stream: Stream,
        line: &str,
        count: usize,
        timeout: Duration,
    ) -> Result<(), String> {
        self.wait_until(timeout, |sw| sw.count_lines(stream, line) >= count)
            .map_err(|why| format!("waiting for {count} x line {line:?} on {stream:?}: {why}"))
    }

    /// Waits for a complete line of `stream` starting with `prefix` and
    /// returns the first such line.
    ///
    /// # Errors
    ///
    /// As [`wait_line`](Self::wait_line).
    pub fn wait_line_starting(
        &mut self,
        stream: Stream,
        prefix: &str,
        timeout: Duration,
    ) -> Result<String, String> {
        self.wait_until(timeout, |sw| {
            !sw.lines_starting_with(stream, prefix).is_empty()
        })
        .map_err(|why| format!("waiting for a line starting {prefix:?} on {stream:?}: {why}"))?;
        Ok(self.lines_starting_with(stream, prefix).swap_remove(0))
    }

    /// Polls `cond` until it holds, the switch exits, or `timeout` passes.
    ///
    /// # Errors
    ///
    /// With a description and the switch's output.
    pub fn wait_until(
        &mut self,
        timeout: Duration,
        mut cond: impl FnMut(&RunningSwitch) -> bool,
    ) -> Result<(), String> {
        let deadline = Instant::now() + timeout;
        loop {
            if cond(self) {
                return Ok(());
            }
            if let Some(status) = self.try_exit_status() {
                // Output written just before exiting is in the files now.
                if cond(self) {
                    return Ok(());
                }
                return Err(format!(
                    "the switch exited ({status})\n{}",
                    self.output_report()
                ));
            }
            if Instant::now() >= deadline {
                return Err(format!("not within {timeout:?}\n{}", self.output_report()));
            }
            thread::sleep(POLL);
        }
    }

    /// The exit status, if the process has ended (reaps it).
    pub fn try_exit_status(&mut self) -> Option<ExitStatus> {
        if self.exited.is_none() {
            if let Ok(Some(status)) = self.child.try_wait() {
                self.exited = Some(status);
            }
        }
        self.exited
    }

    /// Whether the process is still running.
    pub fn is_running(&mut self) -> bool {
        self.try_exit_status().is_none()
    }

    /// Waits up to `timeout` for the process to end.
    pub fn wait_exit(&mut self, timeout: Duration) -> Option<ExitStatus> {
        if self.exited.is_none() {
            self.exited = wait_bounded(&mut self.child, timeout);
        }
        self.exited
    }

    /// Sends `sig` to the switch (by pid).
    pub fn signal(&self, sig: Signal) {
        if self.exited.is_none() {
            signal_pid(self.pid(), sig);
        }
    }

    /// Number of open file descriptors (entries of `/proc/<pid>/fd`).
    ///
    /// # Panics
    ///
    /// When the directory cannot be read (the switch is gone).
    pub fn fd_count(&self) -> usize {
        match std::fs::read_dir(format!("/proc/{}/fd", self.pid())) {
            Ok(rd) => rd.count(),
            Err(e) => panic!("cannot read /proc/{}/fd: {e}", self.pid()),
        }
    }

    /// Resident set size in KiB (`VmRSS` of `/proc/<pid>/status`).
    ///
    /// # Panics
    ///
    /// When the status file cannot be read or has no `VmRSS` line.
    pub fn rss_kib(&self) -> u64 {
        let status = match std::fs::read_to_string(format!("/proc/{}/status", self.pid())) {
            Ok(s) => s,
            Err(e) => panic!("cannot read /proc/{}/status: {e}", self.pid()),
        };
        status
            .lines()
            .find_map(|l| l.strip_prefix("VmRSS:"))
            .and_then(|v| v.split_whitespace().next())
            .and_then(|v| v.parse().ok())
            .unwrap_or_else(|| panic!("no VmRSS line in /proc/{}/status", self.pid()))
    }

    /// Registers a new v3 port (see [`FakePort::register`]).
    ///
    /// # Panics
    ///
    /// When registration fails (with the switch's output).
    pub fn port(&self) -> FakePort {
        self.port_version(Version::V3)
    }

    /// Registers a new port with a `version` request.
    ///
    /// # Panics
    ///
    /// When registration fails (with the switch's output).
    pub fn port_version(&self, version: Version) -> FakePort {
        match FakePort::register(&self.ctl, version) {
            Ok(p) => p,
            Err(e) => panic!(
                "registering a {version:?} port failed: {e}\n{}",
                self.output_report()
            ),
        }
    }
}

impl Drop for RunningSwitch {
    fn drop(&mut self) {
        if self.try_exit_status().is_none() {
            signal_pid(self.pid(), Signal::SIGKILL);
            let _ = wait_bounded(&mut self.child, Duration::from_secs(5));
        }
    }
}

/// A switch process in a network namespace (for tests with real UML
/// kernels, whose daemon data sockets are abstract addresses of their
/// namespace), stdout and stderr in one file. It runs under
/// `timeout -k 5 LIFETIME` in a process group of its own; dropping it
/// sends `SIGTERM` (by pid), then `SIGKILL` to that group.
#[derive(Debug)]
pub struct NsSwitch {
    child: Child,
    binary: SwitchBinary,
    out: PathBuf,
}

impl NsSwitch {
    /// Starts the switch under test with `args` in `ns`, with its output
    /// in `dir/switch.out` and stdin `/dev/null`, and waits until it
    /// printed its `attached to unix socket` line.
    ///
    /// # Errors
    ///
    /// When it cannot be started or does not print that line in 10 s.
    pub fn start(
        ns: &crate::NetNs,
        dir: &Path,
        args: &[OsString],
        lifetime: Duration,
    ) -> Result<NsSwitch, String> {
        NsSwitch::start_full(ns, dir, &[], args, lifetime, &[])
    }

    /// [`NsSwitch::start`] with `env` added to the switch's environment
    /// (e.g. `UML_SWITCH_PCAP`, the pcap port's helper).
    ///
    /// # Errors
    ///
    /// As [`NsSwitch::start`].
    pub fn start_with_env(
        ns: &crate::NetNs,
        dir: &Path,
        args: &[OsString],
        lifetime: Duration,
        env: &[(&str, &std::ffi::OsStr)],
    ) -> Result<NsSwitch, String> {
        NsSwitch::start_full(ns, dir, &[], args, lifetime, env)
    }

    /// Like [`NsSwitch::start`], with `wrapper` (a command that ends by
    /// exec'ing its arguments, e.g. `setpriv --reuid=65534 ...` to run the
    /// switch as another user) between `timeout` and the switch.
    ///
    /// # Errors
    ///
    /// As [`NsSwitch::start`].
    pub fn start_wrapped(
        ns: &crate::NetNs,
        dir: &Path,
        wrapper: &[&str],
        args: &[OsString],
        lifetime: Duration,
    ) -> Result<NsSwitch, String> {
        NsSwitch::start_full(ns, dir, wrapper, args, lifetime, &[])
    }

    /// [`NsSwitch::start_wrapped`] with `env` added to the environment.
    ///
    /// # Errors
    ///
    /// As [`NsSwitch::start`].
    pub fn start_full(
        ns: &crate::NetNs,
        dir: &Path,
        wrapper: &[&str],
        args: &[OsString],
        lifetime: Duration,
        env: &[(&str, &std::ffi::OsStr)],
    ) -> Result<NsSwitch, String> {
        use std::os::unix::process::CommandExt;
        let binary = SwitchBinary::under_test();
        let out = dir.join("switch.out");
        let file = File::create(&out).map_err(|e| format!("create switch.out: {e}"))?;
        let file2 = file
            .try_clone()
            .map_err(|e| format!("dup switch.out: {e}"))?;
        let mut cmd = ns.exec("timeout");
        cmd.args(["-k", "5", &lifetime.as_secs().max(1).to_string()]);
        if binary.is_c_reference {
            cmd.args(["stdbuf", "-oL", "-eL"]);
        }
        cmd.envs(env.iter().copied())
            .args(wrapper)
            .arg(&binary.path)
            .args(args)
            .current_dir(dir)
            .stdin(Stdio::null())
            .stdout(file)
            .stderr(file2)
            .process_group(0);
        let child = cmd
            .spawn()
            .map_err(|e| format!("cannot start {}: {e}", binary.path.display()))?;
        let mut sw = NsSwitch { child, binary, out };
        if sw.wait_output(START_TIMEOUT, |o| o.contains("attached to unix socket")) {
            Ok(sw)
        } else {
            Err(format!("switch did not start:\n{}", sw.report()))
        }
    }

    /// `PROG` as the switch prints it.
    pub fn argv0(&self) -> String {
        self.binary.argv0()
    }

    /// Everything it printed so far.
    pub fn output(&self) -> String {
        read_lossy(&self.out)
    }

    /// Whether it still runs.
    pub fn running(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(None))
    }

    /// The output and whether it still runs, for assertion messages.
    pub fn report(&mut self) -> String {
        let status = match self.child.try_wait() {
            Ok(Some(s)) => format!("exited: {s}"),
            _ => "running".to_string(),
        };
        format!(
            "--- switch ({status}) output ---\n{}--- end ---",
            self.output()
        )
    }

    /// Polls the output until `done` holds, the switch exited, or
    /// `timeout` passed; returns whether `done` held.
    pub fn wait_output(&mut self, timeout: Duration, done: impl Fn(&str) -> bool) -> bool {
        let deadline = Instant::now() + timeout;
        loop {
            let running = self.running();
            if done(&self.output()) {
                return true;
            }
            if !running || Instant::now() >= deadline {
                return false;
            }
            thread::sleep(POLL);
        }
    }
}

impl Drop for NsSwitch {
    fn drop(&mut self) {
        let pid = self.child.id();
        if self.running() {
            // `timeout` passes SIGTERM on to the switch and exits.
            signal_pid(pid, Signal::SIGTERM);
            let _ = wait_bounded(&mut self.child, Duration::from_secs(3));
        }
        // The group `process_group(0)` made for the wrapper (pgid = its
        // pid); `timeout` keeps the switch in it.
        crate::process::signal_group(pid, Signal::SIGKILL);
        let _ = self.child.kill();
        let _ = wait_bounded(&mut self.child, Duration::from_secs(3));
    }
}

/// A fresh private temporary directory (short path: sockets need < 108
/// bytes).
///
/// # Panics
///
/// When it cannot be created.
pub fn new_temp_dir() -> tempfile::TempDir {
    match tempfile::Builder::new().prefix("umlsw").tempdir() {
        Ok(d) => d,
        Err(e) => panic!("cannot create a temporary directory: {e}"),
    }
}

fn read_lossy(path: &Path) -> String {
    match std::fs::read(path) {
        Ok(b) => String::from_utf8_lossy(&b).into_owned(),
        Err(_) => String::new(),
    }
}

/// Lines terminated by `\n` (a partial last line is still being written).
fn complete_lines(text: &str) -> impl Iterator<Item = &str> {
    let end = text.rfind('\n').map_or(0, |i| i + 1);
    text[..end].lines()
}

/// The last `n` lines of `text`, newline-terminated.
fn tail(text: &str, n: usize) -> String {
    let lines: Vec<&str> = text.lines().collect();
    let skip = lines.len().saturating_sub(n);
    let mut out = String::new();
    if skip > 0 {
        out.push_str(&format!("[... {skip} earlier lines]\n"));
    }
    for l in &lines[skip..] {
        out.push_str(l);
        out.push('\n');
    }
    out
}

/// Describes how a process ended, for messages.
pub fn describe_status(status: Option<ExitStatus>) -> String {
    match status {
        None => "still running".to_string(),
        Some(s) => match (s.code(), s.signal()) {
            (Some(c), _) => format!("exit code {c}"),
            (None, Some(sig)) => format!("killed by signal {sig}"),
            _ => format!("{s}"),
        },
    }
}

// ---------------------------------------------------------------------------
// Wire formats
// ---------------------------------------------------------------------------

/// Request layouts of `docs/switch.md` §4.1.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Version {
    /// 120 bytes, no magic, no reply (needs `-compat-v0`).
    V0,
    /// 124 bytes, magic + type 0 at offset 4.
    V1,
    /// 124 bytes, magic + version 3 + type 0 + address + 2 pad bytes.
    V3,
    /// 122 bytes: v3 without the trailing padding.
    V3Short,
}

/// A `sockaddr_un` for the abstract `name` (≤ 107 bytes), zero padded to
/// 110 bytes: `01 00`, `00`, name.
pub fn abstract_sockaddr(name: &[u8]) -> [u8; SOCKADDR_LEN] {
    let mut a = [0u8; SOCKADDR_LEN];
    a[0] = 1;
    let n = name.len().min(ABSTRACT_NAME_LEN);
    a[3..3 + n].copy_from_slice(&name[..n]);
    a
}

/// A `sockaddr_un` for the filesystem `path`, zero padded to 110 bytes.
pub fn path_sockaddr(path: &Path) -> [u8; SOCKADDR_LEN] {
    use std::os::unix::ffi::OsStrExt;
    let mut a = [0u8; SOCKADDR_LEN];
    a[0] = 1;
    let p = path.as_os_str().as_bytes();
    let n = p.len().min(SOCKADDR_LEN - 3);
    a[2..2 + n].copy_from_slice(&p[..n]);
    a
}

/// A v3 request (124 bytes) with the given version word (3 for a valid
/// one), type and client address.
pub fn request_versioned(version: u32, kind: u32, sock: &[u8; SOCKADDR_LEN]) -> Vec<u8> {
    let mut r = Vec::with_capacity(124);
    r.extend_from_slice(&SWITCH_MAGIC.to_le_bytes());
    r.extend_from_slice(&version.to_le_bytes());
    r.extend_from_slice(&kind.to_le_bytes());
    r.extend_from_slice(sock);
    r.extend_from_slice(&[0, 0]);
    r
}

/// A valid v3 request (124 bytes).
pub fn request_v3(sock: &[u8; SOCKADDR_LEN]) -> Vec<u8> {
    request_versioned(3, 0, sock)
}

/// A v1 request (124 bytes): magic, type 0, 6 MAC bytes, address.
pub fn request_v1(sock: &[u8; SOCKADDR_LEN]) -> Vec<u8> {
    let mut r = Vec::with_capacity(124);
    r.extend_from_slice(&SWITCH_MAGIC.to_le_bytes());
    r.extend_from_slice(&0u32.to_le_bytes());
    r.extend_from_slice(&[0x02, 0x00, 0x00, 0x00, 0x00, 0xaa]);
    r.extend_from_slice(sock);
    r
}

/// A v0 request (120 bytes): type 0, 6 MAC bytes, address.
pub fn request_v0(sock: &[u8; SOCKADDR_LEN]) -> Vec<u8> {
    let mut r = Vec::with_capacity(120);
    r.extend_from_slice(&0u32.to_le_bytes());
    r.extend_from_slice(&[0x02, 0x00, 0x00, 0x00, 0x00, 0xbb]);
    r.extend_from_slice(sock);
    r
}

/// The request of `version` for `sock`.
pub fn request(version: Version, sock: &[u8; SOCKADDR_LEN]) -> Vec<u8> {
    match version {
        Version::V0 => request_v0(sock),
        Version::V1 => request_v1(sock),
        Version::V3 => request_v3(sock),
        Version::V3Short => request_v3(sock)[..122].to_vec(),
    }
}

/// The socket address a 110-byte `sockaddr_un` reply names: abstract when
/// `sun_path[0]` is 0 (all 107 remaining bytes are the name), else the
/// NUL-terminated filesystem path.
///
/// # Errors
///
/// When the reply is not a 110-byte `AF_UNIX` address.
pub fn reply_to_addr(reply: &[u8]) -> Result<SocketAddr, String> {
    if reply.len() != SOCKADDR_LEN {
        return Err(format!("reply is {} bytes, not 110", reply.len()));
    }
    if reply[0..2] != [1, 0] {
        return Err(format!(
            "reply sun_family is {:02x} {:02x}, not 01 00 (AF_UNIX)",
            reply[0], reply[1]
        ));
    }
    if reply[2] == 0 {
        SocketAddr::from_abstract_name(&reply[3..])
            .map_err(|e| format!("bad abstract reply address: {e}"))
    } else {
        use std::os::unix::ffi::OsStrExt;
        let path = &reply[2..];
        let end = path.iter().position(|&b| b == 0).unwrap_or(path.len());
        SocketAddr::from_pathname(Path::new(std::ffi::OsStr::from_bytes(&path[..end])))
            .map_err(|e| format!("bad path reply address: {e}"))
    }
}

/// An Ethernet frame: `dst`, `src`, ethertype 0x0800, `payload`.
pub fn frame(dst: [u8; 6], src: [u8; 6], payload: &[u8]) -> Vec<u8> {
    let mut f = Vec::with_capacity(14 + payload.len());
    f.extend_from_slice(&dst);
    f.extend_from_slice(&src);
    f.extend_from_slice(&[0x08, 0x00]);
    f.extend_from_slice(payload);
    f
}

/// Bytes of frames the switch keeps for a port whose socket is full
/// (`uml_switch/src/port/backlog.rs`, `BUDGET`).
pub const BACKLOG_BUDGET: usize = 512 * 1024;

/// Broadcast number `i` from `src`, full size (1514 bytes): `s00042....`.
pub fn numbered_broadcast(src: [u8; 6], i: usize) -> Vec<u8> {
    let mut payload = format!("s{i:05}").into_bytes();
    payload.resize(1500, b'.');
    frame(BROADCAST, src, &payload)
}

/// Checks what a port that stopped reading while `sent` numbered
/// broadcasts (from [`numbered_broadcast`] with `src`) passed got once it
/// read again: the oldest frames, in order — those its socket held, then
/// at least a backlog's worth — and that every frame it missed is counted
/// in `queue_full`.
pub fn check_backlog_delivery(got: &[Vec<u8>], src: [u8; 6], sent: usize, queue_full: u64) {
    for (i, f) in got.iter().enumerate() {
        assert!(
            f == &numbered_broadcast(src, i),
            "frame {i} of {} the stalled port got is not s{i:05}",
            got.len()
        );
    }
    let backlog_frames = BACKLOG_BUDGET / numbered_broadcast(src, 0).len();
    assert!(
        got.len() > backlog_frames && got.len() < sent,
        "the stalled port got {} frames of {sent} (backlog alone: {backlog_frames})",
        got.len()
    );
    assert_eq!(
        queue_full as usize,
        sent - got.len(),
        "every frame the stalled port did not get is counted"
    );
}

/// `02:00:00:00:00:nn`, a locally administered unicast MAC.
pub fn mac(n: u8) -> [u8; 6] {
    [0x02, 0, 0, 0, 0, n]
}

/// `aa:bb:cc:dd:ee:ff` (lower-case hex, as the switch prints MACs).
pub fn mac_str(m: [u8; 6]) -> String {
    m.iter()
        .map(|b| format!("{b:02x}"))
        .collect::<Vec<_>>()
        .join(":")
}

/// Source MAC of marker frames: multicast (bit 0 of the first byte set),
/// so the switch never learns it.
const MARKER_SRC: [u8; 6] = [0x03, 0x00, 0x5e, 0x4d, 0x4b, 0x52];
/// Ethertype of marker frames (IEEE local experimental).
const MARKER_TYPE: [u8; 2] = [0x88, 0xb5];

/// A broadcast marker frame with id `id`, sent from a multicast source MAC
/// so that it is flooded to every other port without learning anything.
pub fn marker_frame(id: u32) -> Vec<u8> {
    let mut f = Vec::with_capacity(32);
    f.extend_from_slice(&BROADCAST);
    f.extend_from_slice(&MARKER_SRC);
    f.extend_from_slice(&MARKER_TYPE);
    f.extend_from_slice(b"MARKER");
    f.extend_from_slice(&id.to_le_bytes());
    f
}

/// The id of a marker frame, if `f` is one.
pub fn marker_id(f: &[u8]) -> Option<u32> {
    if f.len() == 24
        && f[6..12] == MARKER_SRC
        && f[12..14] == MARKER_TYPE
        && &f[14..20] == b"MARKER"
    {
        let mut id = [0u8; 4];
        id.copy_from_slice(&f[20..24]);
        Some(u32::from_le_bytes(id))
    } else {
        None
    }
}

/// A fresh marker id, unique in this process.
pub fn new_marker_id() -> u32 {
    next_id()
}

// ---------------------------------------------------------------------------
// Sockets
// ---------------------------------------------------------------------------

/// Connects a stream socket to `path`, giving up after `timeout` (the
/// blocking `connect` runs in a helper thread; a switch that never accepts
/// must not hang the test).
///
/// # Errors
///
/// When `connect` fails or does not finish in time.
pub fn connect_control(path: &Path, timeout: Duration) -> Result<UnixStream, String> {
    let (tx, rx) = mpsc::channel();
    let p = path.to_path_buf();
    thread::spawn(move || {
        let _ = tx.send(UnixStream::connect(&p));
    });
    match rx.recv_timeout(timeout) {
        Ok(Ok(s)) => {
            s.set_read_timeout(Some(WAIT))
                .map_err(|e| format!("set_read_timeout: {e}"))?;
            s.set_write_timeout(Some(WAIT))
                .map_err(|e| format!("set_write_timeout: {e}"))?;
            Ok(s)
        }
        Ok(Err(e)) => Err(format!("connect to {}: {e}", path.display())),
        Err(_) => Err(format!(
            "connect to {} did not finish within {timeout:?}",
            path.display()
        )),
    }
}

/// A datagram socket bound to a unique full-length (107-byte name, 110-byte
/// address) abstract name, with read and write timeouts; returns it and its
/// 110-byte `sockaddr_un`.
///
/// # Errors
///
/// When the socket cannot be bound.
pub fn bind_data_socket() -> Result<(UnixDatagram, [u8; SOCKADDR_LEN]), String> {
    let mut name = [0u8; ABSTRACT_NAME_LEN];
    let tag = format!("uml-switch-test-{}-{}", std::process::id(), next_id());
    name[..tag.len()].copy_from_slice(tag.as_bytes());
    let addr = SocketAddr::from_abstract_name(name).map_err(|e| format!("abstract name: {e}"))?;
    let sock = UnixDatagram::bind_addr(&addr).map_err(|e| format!("bind {tag}: {e}"))?;
    sock.set_read_timeout(Some(WAIT))
        .map_err(|e| format!("set_read_timeout: {e}"))?;
    sock.set_write_timeout(Some(WAIT))
        .map_err(|e| format!("set_write_timeout: {e}"))?;
    Ok((sock, abstract_sockaddr(&name)))
}

/// What reading a control connection showed.
#[derive(Debug, PartialEq, Eq)]
pub enum ControlRead {
    /// Bytes arrived.
    Data(Vec<u8>),
    /// Orderly EOF: the switch closed the connection.
    Eof,
    /// Connection reset: the switch closed it with unread data pending.
    Reset,
    /// Nothing within the timeout; still open.
    Quiet,
    /// Another error.
    Error(String),
}

impl ControlRead {
    /// The switch closed the connection (EOF or reset).
    pub fn closed(&self) -> bool {
        matches!(self, ControlRead::Eof | ControlRead::Reset)
    }
}

/// One `read` of up to 4096 bytes on `s` with `timeout`.
pub fn read_control(s: &mut UnixStream, timeout: Duration) -> ControlRead {
    if s.set_read_timeout(Some(timeout.max(Duration::from_millis(1))))
        .is_err()
    {
        return ControlRead::Error("set_read_timeout failed".into());
    }
    let mut buf = vec![0u8; 4096];
    match s.read(&mut buf) {
        Ok(0) => ControlRead::Eof,
        Ok(n) => {
            buf.truncate(n);
            ControlRead::Data(buf)
        }
        Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {
            ControlRead::Quiet
        }
        Err(e) if e.kind() == ErrorKind::ConnectionReset => ControlRead::Reset,
        Err(e) => ControlRead::Error(e.to_string()),
    }
}

/// Reads until EOF/reset or `timeout`, collecting any data first; returns
/// the data and how reading ended.
pub fn read_control_until_closed(s: &mut UnixStream, timeout: Duration) -> (Vec<u8>, ControlRead) {
    let deadline = Instant::now() + timeout;
    let mut data = Vec::new();
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return (data, ControlRead::Quiet);
        }
        match read_control(s, left) {
            ControlRead::Data(d) => data.extend_from_slice(&d),
            other => return (data, other),
        }
    }
}

/// A fake UML network interface: control connection plus data socket.
#[derive(Debug)]
pub struct FakePort {
    /// The control connection (dropping it disconnects the port).
    pub control: Option<UnixStream>,
    /// The data socket, bound to [`addr`](Self::addr).
    pub data: UnixDatagram,
    /// The 110-byte address registered with the switch.
    pub addr: [u8; SOCKADDR_LEN],
    /// The 110-byte reply (v1/v3), if any.
    pub reply: Option<Vec<u8>>,
    switch_addr: SocketAddr,
}

impl FakePort {
    /// Connects to `ctl`, sends a `version` request for a fresh data socket
    /// and (v1/v3) reads the 110-byte reply, which becomes the destination
    /// of [`send`](Self::send). A v0 port has no reply; use
    /// [`register_v0`](Self::register_v0).
    ///
    /// # Errors
    ///
    /// When any step fails or times out.
    pub fn register(ctl: &Path, version: Version) -> Result<FakePort, String> {
        if version == Version::V0 {
            return Err("v0 ports need the data socket path: use register_v0".into());
        }
        let (data, addr) = bind_data_socket()?;
        let mut control = connect_control(ctl, WAIT)?;
        control
            .write_all(&request(version, &addr))
            .map_err(|e| format!("sending the {version:?} request: {e}"))?;
        let reply = read_reply(&mut control, WAIT)?;
        let switch_addr = reply_to_addr(&reply)?;
        Ok(FakePort {
            control: Some(control),
            data,
            addr,
            reply: Some(reply),
            switch_addr,
        })
    }

    /// A port from parts a test set up by hand (e.g. a request written in
    /// pieces): frames go to the address in `reply`.
    ///
    /// # Errors
    ///
    /// When `reply` is not a valid 110-byte address.
    pub fn from_parts(
        control: UnixStream,
        data: UnixDatagram,
        addr: [u8; SOCKADDR_LEN],
        reply: Vec<u8>,
    ) -> Result<FakePort, String> {
        let switch_addr = reply_to_addr(&reply)?;
        Ok(FakePort {
            control: Some(control),
            data,
            addr,
            reply: Some(reply),
            switch_addr,
        })
    }

    /// Connects to `ctl` and sends a v0 request; frames go to the data
    /// socket path `data_path`. No reply is expected (the caller should
    /// wait for the switch's `New connection` line before sending).
    ///
    /// # Errors
    ///
    /// When any step fails.
    pub fn register_v0(ctl: &Path, data_path: &Path) -> Result<FakePort, String> {
        let (data, addr) = bind_data_socket()?;
        let mut control = connect_control(ctl, WAIT)?;
        control
            .write_all(&request_v0(&addr))
            .map_err(|e| format!("sending the v0 request: {e}"))?;
        let switch_addr = SocketAddr::from_pathname(data_path)
            .map_err(|e| format!("data path {}: {e}", data_path.display()))?;
        Ok(FakePort {
            control: Some(control),
            data,
            addr,
            reply: None,
            switch_addr,
        })
    }

    /// The control connection.
    ///
    /// # Panics
    ///
    /// After [`disconnect`](Self::disconnect).
    pub fn control(&mut self) -> &mut UnixStream {
        match self.control.as_mut() {
            Some(c) => c,
            None => panic!("control connection already closed"),
        }
    }

    /// Closes the control connection (the switch should drop the port).
    pub fn disconnect(&mut self) {
        self.control = None;
    }

    /// Sends one datagram to the switch's data socket.
    ///
    /// # Panics
    ///
    /// When `sendto` fails or blocks for more than 5 s.
    pub fn send(&self, datagram: &[u8]) {
        if let Err(e) = self.try_send(datagram) {
            panic!(
                "sending a {}-byte datagram to the switch: {e}",
                datagram.len()
            );
        }
    }

    /// Sends one datagram to the switch's data socket.
    ///
    /// # Errors
    ///
    /// When `sendto` fails or times out.
    pub fn try_send(&self, datagram: &[u8]) -> std::io::Result<()> {
        let n = self.data.send_to_addr(datagram, &self.switch_addr)?;
        if n != datagram.len() {
            return Err(std::io::Error::other(format!(
                "short send: {n} of {} bytes",
                datagram.len()
            )));
        }
        Ok(())
    }

    /// Sends a marker frame (see [`marker_frame`]) and returns its id.
    pub fn send_marker(&self) -> u32 {
        let id = new_marker_id();
        self.send(&marker_frame(id));
        id
    }

    /// Receives one datagram, waiting at most `timeout`.
    pub fn recv(&self, timeout: Duration) -> Option<Vec<u8>> {
        let _ = self
            .data
            .set_read_timeout(Some(timeout.max(Duration::from_millis(1))));
        let mut buf = vec![0u8; 65536];
        let got = match self.data.recv(&mut buf) {
            Ok(n) => {
                buf.truncate(n);
                Some(buf)
            }
            Err(_) => None,
        };
        let _ = self.data.set_read_timeout(Some(WAIT));
        got
    }

    /// Receives datagrams until the marker `id` arrives and returns those
    /// that came before it.
    ///
    /// # Errors
    ///
    /// When the marker does not arrive within `timeout` (with what came).
    pub fn recv_until_marker(&self, id: u32, timeout: Duration) -> Result<Vec<Vec<u8>>, String> {
        let deadline = Instant::now() + timeout;
        let mut got = Vec::new();
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return Err(format!(
                    "marker {id} did not arrive within {timeout:?}; received before: {}",
                    describe_frames(&got)
                ));
            }
            match self.recv(left) {
                Some(f) if marker_id(&f) == Some(id) => return Ok(got),
                Some(f) => got.push(f),
                None => {}
            }
        }
    }

    /// Receives everything queued (waiting `quiet` after the last datagram).
    pub fn drain(&self, quiet: Duration) -> Vec<Vec<u8>> {
        let mut got = Vec::new();
        while let Some(f) = self.recv(quiet) {
            got.push(f);
        }
        got
    }
}

/// A test client that exchanges frames through the switch: a daemon
/// protocol [`FakePort`] or a bess [`BessClient`].
pub trait FramePort {
    /// Sends one frame.
    ///
    /// # Panics
    ///
    /// When sending fails or blocks for more than 5 s.
    fn send_frame(&self, frame: &[u8]);

    /// Receives one frame, waiting at most `timeout`.
    fn recv_frame(&self, timeout: Duration) -> Option<Vec<u8>>;

    /// Sends a marker frame (see [`marker_frame`]) and returns its id.
    fn send_marker_frame(&self) -> u32 {
        let id = new_marker_id();
        self.send_frame(&marker_frame(id));
        id
    }

    /// Receives frames until the marker `id` arrives and returns those
    /// that came before it.
    ///
    /// # Errors
    ///
    /// When the marker does not arrive within `timeout` (with what came).
    fn frames_until_marker(&self, id: u32, timeout: Duration) -> Result<Vec<Vec<u8>>, String> {
        let deadline = Instant::now() + timeout;
        let mut got = Vec::new();
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return Err(format!(
                    "marker {id} did not arrive within {timeout:?}; received before: {}",
                    describe_frames(&got)
                ));
            }
            match self.recv_frame(left) {
                Some(f) if marker_id(&f) == Some(id) => return Ok(got),
                Some(f) => got.push(f),
                None => {}
            }
        }
    }
}

impl FramePort for FakePort {
    fn send_frame(&self, frame: &[u8]) {
        self.send(frame);
    }

    fn recv_frame(&self, timeout: Duration) -> Option<Vec<u8>> {
        self.recv(timeout)
    }
}

/// What one receive on a bess connection showed.
#[derive(Debug, PartialEq, Eq)]
pub enum BessRecv {
    /// A message (possibly empty).
    Frame(Vec<u8>),
    /// The switch closed the connection (or sent an empty message: a
    /// seqpacket receive cannot tell them apart).
    Closed,
    /// Nothing within the timeout.
    Quiet,
    /// Another error.
    Error(String),
}

/// A fake bess guest (the vector driver's `transport=bess`): a
/// `SOCK_SEQPACKET` connection to the switch's `--bess` socket; one
/// Ethernet frame per message, both ways.
#[derive(Debug)]
pub struct BessClient {
    /// The connection (a seqpacket socket; std's type only carries the
    /// descriptor and its timeouts). `None` after
    /// [`disconnect`](Self::disconnect).
    pub sock: Option<UnixStream>,
}

impl BessClient {
    /// Connects to the bess socket at `path`, bounded by [`WAIT`] (the
    /// blocking `connect` runs in a helper thread).
    ///
    /// # Errors
    ///
    /// When `connect` fails or does not finish in time.
    pub fn connect(path: &Path) -> Result<BessClient, String> {
        let (tx, rx) = mpsc::channel();
        let p = path.to_path_buf();
        thread::spawn(move || {
            let _ = tx.send(uml_common::sys::seqpacket::connect(&p));
        });
        let fd = match rx.recv_timeout(WAIT) {
            Ok(Ok(fd)) => fd,
            Ok(Err(e)) => return Err(format!("bess connect to {}: {e}", path.display())),
            Err(_) => {
                return Err(format!(
                    "bess connect to {} did not finish within {WAIT:?}",
                    path.display()
                ))
            }
        };
        let sock = UnixStream::from(fd);
        sock.set_read_timeout(Some(WAIT))
            .map_err(|e| format!("set_read_timeout: {e}"))?;
        sock.set_write_timeout(Some(WAIT))
            .map_err(|e| format!("set_write_timeout: {e}"))?;
        Ok(BessClient { sock: Some(sock) })
    }

    fn fd(&self) -> std::os::fd::RawFd {
        use std::os::fd::AsRawFd;
        match &self.sock {
            Some(s) => s.as_raw_fd(),
            None => panic!("bess client already disconnected"),
        }
    }

    /// Sends one message (any length, also empty).
    ///
    /// # Errors
    ///
    /// When `send` fails or times out.
    pub fn try_send(&self, message: &[u8]) -> std::io::Result<()> {
        use nix::sys::socket::{send, MsgFlags};
        let n = send(self.fd(), message, MsgFlags::MSG_NOSIGNAL)?;
        if n != message.len() {
            return Err(std::io::Error::other(format!(
                "short send: {n} of {} bytes",
                message.len()
            )));
        }
        Ok(())
    }

    /// Sends one message.
    ///
    /// # Panics
    ///
    /// When sending fails or blocks for more than 5 s.
    pub fn send(&self, message: &[u8]) {
        if let Err(e) = self.try_send(message) {
            panic!("bess client sending {} bytes: {e}", message.len());
        }
    }

    /// One receive, waiting at most `timeout`.
    pub fn recv_event(&self, timeout: Duration) -> BessRecv {
        use nix::sys::socket::{recv, MsgFlags};
        let Some(sock) = &self.sock else {
            return BessRecv::Closed;
        };
        let _ = sock.set_read_timeout(Some(timeout.max(Duration::from_millis(1))));
        let mut buf = vec![0u8; 65536];
        let got = match recv(self.fd(), &mut buf, MsgFlags::empty()) {
            Ok(0) => BessRecv::Closed,
            Ok(n) => {
                buf.truncate(n);
                BessRecv::Frame(buf)
            }
            Err(nix::errno::Errno::EAGAIN) => BessRecv::Quiet,
            Err(e) => BessRecv::Error(e.to_string()),
        };
        let _ = sock.set_read_timeout(Some(WAIT));
        got
    }

    /// Receives one frame, waiting at most `timeout`.
    pub fn recv(&self, timeout: Duration) -> Option<Vec<u8>> {
        match self.recv_event(timeout) {
            BessRecv::Frame(f) => Some(f),
            _ => None,
        }
    }

    /// Receives everything queued (waiting `quiet` after the last frame).
    pub fn drain(&self, quiet: Duration) -> Vec<Vec<u8>> {
        let mut got = Vec::new();
        while let Some(f) = self.recv(quiet) {
            got.push(f);
        }
        got
    }

    /// Closes the connection (the switch should drop the port).
    pub fn disconnect(&mut self) {
        self.sock = None;
    }
}

impl FramePort for BessClient {
    fn send_frame(&self, frame: &[u8]) {
        self.send(frame);
    }

    fn recv_frame(&self, timeout: Duration) -> Option<Vec<u8>> {
        self.recv(timeout)
    }
}

// ---------------------------------------------------------------------------
// vde clients (vdeplug4's `vde://`)
// ---------------------------------------------------------------------------

/// What vdeplug4's `vde://` client does, by hand (`docs/switch.md` §8.1):
/// a data socket bound at `DIR/.PPPPP-NNNNN` next to the control socket, a
/// 122-byte v3 request plus a description tail, a connect to the reply's
/// address, the path unlinked.
#[derive(Debug)]
pub struct FakeVde {
    /// The control connection (dropping the client ends the port).
    pub control: UnixStream,
    /// The data socket, connected to the switch's per-port data socket.
    pub data: UnixDatagram,
    /// The switch's reply (its data socket for this port).
    pub reply: Vec<u8>,
}

/// How a fake vde client sends its request.
#[derive(Debug, Clone)]
pub struct VdeRequest<'a> {
    /// The description tail after the 122-byte request.
    pub description: &'a [u8],
    /// Written in pieces ending at these offsets (the rest after them).
    pub splits: &'a [usize],
    /// The request's type word (vdeplug4 puts a requested port in its
    /// upper bits).
    pub kind: u32,
}

/// The request vdeplug4 sends by default.
pub const VDE_PLAIN: VdeRequest<'static> = VdeRequest {
    description: b"fake user=root pid=1",
    splits: &[],
    kind: 0,
};

/// A data socket bound where vdeplug4 binds it: `DIR/.PPPPP-NNNNN`.
///
/// # Errors
///
/// When the socket cannot be bound.
pub fn vde_data_socket(dir: &Path) -> Result<(UnixDatagram, PathBuf), String> {
    let path = dir.join(format!(
        ".{:05}-{:05}",
        std::process::id() % 100_000,
        next_id() % 100_000
    ));
    let sock = UnixDatagram::bind(&path).map_err(|e| format!("bind {}: {e}", path.display()))?;
    Ok((sock, path))
}

/// The request bytes: v3, `kind`, the client's path, the description.
pub fn vde_request_bytes(client: &Path, req: &VdeRequest<'_>) -> Vec<u8> {
    let mut bytes = request_versioned(3, req.kind, &path_sockaddr(client));
    bytes.truncate(122);
    bytes.extend_from_slice(req.description);
    bytes
}

/// Writes `bytes` on `control` in the pieces `splits` gives, pausing
/// between them so that the switch reads them apart.
///
/// # Errors
///
/// When a write fails.
pub fn write_in_pieces(
    control: &mut UnixStream,
    bytes: &[u8],
    splits: &[usize],
) -> Result<(), String> {
    let mut at = 0;
    for &end in splits.iter().chain(std::iter::once(&bytes.len())) {
        let end = end.clamp(at, bytes.len());
        control
            .write_all(&bytes[at..end])
            .map_err(|e| format!("writing the vde request: {e}"))?;
        at = end;
        if !splits.is_empty() {
            thread::sleep(Duration::from_millis(30));
        }
    }
    Ok(())
}

impl FakeVde {
    /// Registers with the control socket `ctl`, as vdeplug4 does (the data
    /// socket is bound in `ctl`'s directory).
    ///
    /// # Errors
    ///
    /// When any step fails or times out.
    pub fn register(ctl: &Path, req: &VdeRequest<'_>) -> Result<FakeVde, String> {
        let dir = ctl.parent().unwrap_or(Path::new("."));
        let (data, path) = vde_data_socket(dir)?;
        let registered = (|| {
            let mut control = connect_control(ctl, WAIT)?;
            write_in_pieces(&mut control, &vde_request_bytes(&path, req), req.splits)?;
            let reply = read_reply(&mut control, WAIT)?;
            Ok::<_, String>((control, reply))
        })();
        let _ = std::fs::remove_file(&path);
        let (control, reply) = registered?;
        data.connect_addr(&reply_to_addr(&reply)?)
            .map_err(|e| format!("connect to the reply: {e}"))?;
        data.set_write_timeout(Some(WAIT))
            .map_err(|e| format!("set_write_timeout: {e}"))?;
        Ok(FakeVde {
            control,
            data,
            reply,
        })
    }

    /// The path the reply names (`None`: not a path).
    pub fn reply_path(&self) -> Option<PathBuf> {
        reply_to_addr(&self.reply)
            .ok()?
            .as_pathname()
            .map(Path::to_path_buf)
    }

    /// Sends one frame.
    ///
    /// # Errors
    ///
    /// When `send` fails, times out or is short.
    pub fn try_send(&self, f: &[u8]) -> std::io::Result<()> {
        let n = self.data.send(f)?;
        if n != f.len() {
            return Err(std::io::Error::other(format!(
                "short send: {n} of {} bytes",
                f.len()
            )));
        }
        Ok(())
    }

    /// Sends one frame.
    ///
    /// # Panics
    ///
    /// When sending fails.
    pub fn send(&self, f: &[u8]) {
        if let Err(e) = self.try_send(f) {
            panic!("send on the vde data socket: {e}");
        }
    }

    /// Receives one frame, waiting at most `timeout`.
    pub fn recv(&self, timeout: Duration) -> Option<Vec<u8>> {
        let _ = self
            .data
            .set_read_timeout(Some(timeout.max(Duration::from_millis(1))));
        let mut buf = vec![0u8; 65536];
        let n = self.data.recv(&mut buf).ok()?;
        buf.truncate(n);
        Some(buf)
    }

    /// Receives everything queued (waiting `quiet` after the last frame).
    pub fn drain(&self, quiet: Duration) -> Vec<Vec<u8>> {
        std::iter::from_fn(|| self.recv(quiet)).collect()
    }
}

impl FramePort for FakeVde {
    fn send_frame(&self, frame: &[u8]) {
        self.send(frame);
    }

    fn recv_frame(&self, timeout: Duration) -> Option<Vec<u8>> {
        self.recv(timeout)
    }
}

/// Reads exactly the 110-byte reply, bounded by `timeout`.
///
/// # Errors
///
/// On EOF, reset, error or timeout (with the bytes received so far).
pub fn read_reply(control: &mut UnixStream, timeout: Duration) -> Result<Vec<u8>, String> {
    let deadline = Instant::now() + timeout;
    let mut reply = Vec::new();
    while reply.len() < SOCKADDR_LEN {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Err(format!(
                "no complete 110-byte reply within {timeout:?} (got {} bytes)",
                reply.len()
            ));
        }
        let _ = control.set_read_timeout(Some(left));
        let mut buf = vec![0u8; SOCKADDR_LEN - reply.len()];
        match control.read(&mut buf) {
            Ok(0) => {
                return Err(format!(
                    "the switch closed the control connection after {} reply bytes",
                    reply.len()
                ))
            }
            Ok(n) => reply.extend_from_slice(&buf[..n]),
            Err(e) if e.kind() == ErrorKind::Interrupted => {}
            Err(e) => {
                return Err(format!(
                    "reading the reply (after {} bytes): {e}",
                    reply.len()
                ))
            }
        }
    }
    let _ = control.set_read_timeout(Some(WAIT));
    Ok(reply)
}

/// A short description of received frames, for assertion messages.
pub fn describe_frames(frames: &[Vec<u8>]) -> String {
    let items: Vec<String> = frames
        .iter()
        .map(|f| {
            if let Some(id) = marker_id(f) {
                format!("marker {id}")
            } else if f.len() >= 14 {
                format!(
                    "{} bytes {} -> {}",
                    f.len(),
                    mac_str(mac_at(f, 6)),
                    mac_str(mac_at(f, 0))
                )
            } else {
                format!("{} bytes {:02x?}", f.len(), f)
            }
        })
        .collect();
    format!("[{}]", items.join(", "))
}

fn mac_at(f: &[u8], off: usize) -> [u8; 6] {
    let mut m = [0u8; 6];
    m.copy_from_slice(&f[off..off + 6]);
    m
}

// ---------------------------------------------------------------------------
// Checks shared by the switch tests of every port kind
// ---------------------------------------------------------------------------

/// What each of `ports` received since the last check, collected up to
/// marker frames: `ports[0]` sends one that reaches every other port,
/// `ports[1]` one that reaches `ports[0]` and the others (the switch keeps
/// the order of one port's frames to each destination; the two markers
/// may arrive in either order).
pub fn marker_deliveries(sw: &RunningSwitch, ports: &[&dyn FramePort]) -> Vec<Vec<Vec<u8>>> {
    let m0 = ports[0].send_marker_frame();
    let m1 = ports[1].send_marker_frame();
    ports
        .iter()
        .enumerate()
        .map(|(i, p)| {
            let mut expect: Vec<u32> = [(0, m0), (1, m1)]
                .into_iter()
                .filter(|&(sender, _)| sender != i)
                .map(|(_, m)| m)
                .collect();
            let deadline = Instant::now() + WAIT;
            let mut got = Vec::new();
            while !expect.is_empty() {
                let left = deadline.saturating_duration_since(Instant::now());
                let f = p.recv_frame(left).unwrap_or_else(|| {
                    panic!(
                        "port #{i}: markers {expect:?} did not arrive within {WAIT:?}; \
                         received before: {}\n{}",
                        describe_frames(&got),
                        sw.output_report()
                    )
                });
                match marker_id(&f) {
                    Some(m) if expect.contains(&m) => expect.retain(|&x| x != m),
                    _ => got.push(f),
                }
            }
            got
        })
        .collect()
}

#[track_caller]
pub fn assert_delivered(
    sw: &RunningSwitch,
    got: &[Vec<Vec<u8>>],
    i: usize,
    want: &[&[u8]],
    what: &str,
) {
    let want: Vec<Vec<u8>> = want.iter().map(|f| f.to_vec()).collect();
    assert!(
        got[i] == want,
        "{what}: port #{i} received {} but should have received {}\n{}",
        describe_frames(&got[i]),
        describe_frames(&want),
        sw.output_report()
    );
}

/// The label the switch printed when it learned `m` (` Addr: m New port N`).
pub fn learned_port(sw: &mut RunningSwitch, m: [u8; 6]) -> String {
    let prefix = format!(" Addr: {} New port ", mac_str(m));
    let line = sw
        .wait_line_starting(Stream::Stdout, &prefix, WAIT)
        .unwrap_or_else(|e| panic!("{e}"));
    line[prefix.len()..].to_string()
}

/// The counters line printed on SIGUSR1, as (name, value) pairs.
pub fn counters(sw: &mut RunningSwitch) -> Vec<(String, u64)> {
    let before = sw.count_containing(Stream::Stderr, ", frames in ");
    sw.signal(Signal::SIGUSR1);
    sw.wait_until(WAIT, |s| {
        s.count_containing(Stream::Stderr, ", frames in ") > before
    })
    .unwrap_or_else(|e| panic!("no counters after SIGUSR1: {e}"));
    let line = sw
        .stderr()
        .lines()
        .rfind(|l| l.contains(", frames in "))
        .unwrap_or_else(|| panic!("no counters line:\n{}", sw.output_report()))
        .to_string();
    // "...: ports 3, MAC entries 2, frames in 10, out 9, truncated 1,
    // dropped: short 3, too long 0, unknown sender 0, queue full 0, send
    // errors 0;
    // MACs not learned (table full) 0"
    let mut out = Vec::new();
    let words: Vec<&str> = line.split([',', ';', ':']).collect();
    for w in words {
        let w = w.trim();
        if let Some((name, value)) = w.rsplit_once(' ') {
            if let Ok(v) = value.parse() {
                out.push((name.to_string(), v));
            }
        }
    }
    out
}

pub fn counter(c: &[(String, u64)], name: &str) -> u64 {
    c.iter()
        .find(|(n, _)| n == name)
        .map(|(_, v)| *v)
        .unwrap_or_else(|| panic!("no counter {name:?} in {c:?}"))
}

/// A wrapper for [`NsSwitch::start_wrapped`] (or any command line) that
/// runs the program as `nobody` (uid and gid 65534, no supplementary
/// groups): util-linux `setpriv`.
pub const AS_NOBODY: [&str; 5] = [
    "setpriv",
    "--reuid=65534",
    "--regid=65534",
    "--clear-groups",
    "--",
];

/// Makes `dir` writable by everyone (mode 0777), so that a switch run
/// as another user ([`AS_NOBODY`], `--user`) can make its sockets there.
///
/// # Panics
///
/// When the mode cannot be set (test set-up).
pub fn open_to_all(dir: &Path) {
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o777))
        .unwrap_or_else(|e| panic!("chmod 0777 {}: {e}", dir.display()));
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    #[test]
    fn request_layouts_match_the_spec() {
        let sock = abstract_sockaddr(b"clA");
        let v3 = request_v3(&sock);
        assert_eq!(v3.len(), 124);
        assert_eq!(&v3[..12], &[0xce, 0xfa, 0xed, 0xfe, 3, 0, 0, 0, 0, 0, 0, 0]);
        assert_eq!(&v3[12..18], &[1, 0, 0, b'c', b'l', b'A']);
        assert_eq!(request(Version::V3Short, &sock).len(), 122);
        // S3: v1 request for `\0clA`.
        let v1 = request_v1(&sock);
        assert_eq!(v1.len(), 124);
        assert_eq!(&v1[..8], &[0xce, 0xfa, 0xed, 0xfe, 0, 0, 0, 0]);
        assert_eq!(&v1[14..20], &[1, 0, 0, 0x63, 0x6c, 0x41]);
        assert!(v1[20..].iter().all(|&b| b == 0));
        let v0 = request_v0(&sock);
        assert_eq!(v0.len(), 120);
        assert_eq!(&v0[..4], &[0, 0, 0, 0]);
        assert_eq!(&v0[10..16], &[1, 0, 0, b'c', b'l', b'A']);
    }

    #[test]
    fn s2_reply_is_an_abstract_address() {
        let mut reply = vec![1, 0, 0, 0x7f, 0, 0, 0x42, 0x57, 0, 0, 0x47, 0x0e, 9, 0];
        reply.resize(110, 0);
        let addr = reply_to_addr(&reply).unwrap();
        assert_eq!(addr.as_abstract_name().unwrap(), &reply[3..]);
        assert!(reply_to_addr(&reply[..100]).is_err());
        let p = path_sockaddr(Path::new("/tmp/uml.data"));
        let addr = reply_to_addr(&p).unwrap();
        assert_eq!(addr.as_pathname(), Some(Path::new("/tmp/uml.data")));
    }

    #[test]
    fn markers_round_trip_and_are_not_learnable() {
        let f = marker_frame(77);
        assert_eq!(marker_id(&f), Some(77));
        assert_eq!(f[6] & 1, 1);
        assert_eq!(marker_id(&frame(BROADCAST, mac(1), b"x")), None);
        assert_eq!(mac_str(mac(1)), "02:00:00:00:00:01");
    }

    #[test]
    fn complete_lines_skip_a_partial_tail() {
        let v: Vec<&str> = complete_lines("a\nb\npart").collect();
        assert_eq!(v, ["a", "b"]);
        assert_eq!(complete_lines("x").count(), 0);
    }
}
