//! The processes and settings a trial changes, each undone however the
//! run ends: `net.unix.max_dgram_qlen` of this (private) network namespace
//! ([`QlenGuard`]) and the switch process of one trial ([`SwitchProc`],
//! with a summary of its stderr).

use std::collections::BTreeMap;
use std::fs::{self, File};
use std::io::{BufRead, BufReader};
use std::os::unix::fs::MetadataExt;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::thread;
use std::time::{Duration, Instant};

use nix::sched::{sched_setaffinity, CpuSet};
use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;

use super::args::Options;
use super::cpu::SWITCH_CPU;
use super::report::fold_digits;
use super::trial::STOP_TIMEOUT;
use crate::driver::{failed, Error};
use crate::watchdog::{Target, Watchdog};

const QLEN_SYSCTL: &str = "/proc/sys/net/unix/max_dgram_qlen";

pub(crate) fn read_qlen() -> Result<u32, Error> {
    let text =
        fs::read_to_string(QLEN_SYSCTL).map_err(|e| failed(format!("{QLEN_SYSCTL}: {e}")))?;
    text.trim()
        .parse()
        .map_err(|_| failed(format!("{QLEN_SYSCTL}: unexpected {text:?}")))
}

/// Whether this process runs in the network namespace `ip netns` calls
/// `name` (same nsfs inode as /proc/self/ns/net).
fn in_netns(name: &str) -> Result<(), Error> {
    if name.is_empty() || name.contains('/') || name.starts_with('.') {
        return Err(failed(format!("--netns {name:?}: not a namespace name")));
    }
    let named = Path::new("/run/netns").join(name);
    let a = fs::metadata(&named).map_err(|e| failed(format!("{}: {e}", named.display())))?;
    let b =
        fs::metadata("/proc/self/ns/net").map_err(|e| failed(format!("/proc/self/ns/net: {e}")))?;
    if (a.dev(), a.ino()) != (b.dev(), b.ino()) {
        return Err(failed(format!(
            "this process is not in network namespace {name:?}: run it with `ip netns exec {name} …` \
             (scripts/bench-switch does); the host's sysctls are never changed"
        )));
    }
    Ok(())
}

/// Sets the qlen of this (private) namespace; puts the original value
/// back when dropped.
pub(crate) struct QlenGuard {
    pub(crate) original: u32,
    pub(crate) allowed: bool,
}

impl QlenGuard {
    pub(crate) fn new(opts: &Options) -> Result<QlenGuard, Error> {
        let original = read_qlen()?;
        let allowed = match &opts.netns {
            Some(name) => {
                in_netns(name)?;
                true
            }
            None => false,
        };
        if !allowed {
            if let Some(q) = opts.qlens.iter().find(|&&q| q != original) {
                return Err(failed(format!(
                    "net.unix.max_dgram_qlen is {original} here and --qlen asks for {q}: changing it \
                     needs a private network namespace named with --netns (use scripts/bench-switch), \
                     or pass --qlen {original}"
                )));
            }
        }
        Ok(QlenGuard { original, allowed })
    }

    pub(crate) fn set(&self, q: u32) -> Result<(), Error> {
        if read_qlen()? == q {
            return Ok(());
        }
        if !self.allowed {
            return Err(failed(
                "refusing to change net.unix.max_dgram_qlen outside --netns",
            ));
        }
        fs::write(QLEN_SYSCTL, format!("{q}\n"))
            .map_err(|e| failed(format!("{QLEN_SYSCTL}: {e}")))?;
        let now = read_qlen()?;
        if now != q {
            return Err(failed(format!("{QLEN_SYSCTL} is {now} after writing {q}")));
        }
        Ok(())
    }
}

impl Drop for QlenGuard {
    fn drop(&mut self) {
        if self.allowed {
            let _ = fs::write(QLEN_SYSCTL, format!("{}\n", self.original));
        }
    }
}

/// A switch started for one trial. Dropping it kills (SIGKILL, by PID) and
/// reaps it if [`SwitchProc::stop`] was not called.
pub(crate) struct SwitchProc<'w> {
    pub(crate) child: Child,
    pub(crate) pid: Pid,
    pub(crate) watchdog: &'w Watchdog,
    pub(crate) reaped: bool,
    pub(crate) stderr: PathBuf,
}

impl<'w> SwitchProc<'w> {
    pub(crate) fn start(
        path: &Path,
        dir: &Path,
        watchdog: &'w Watchdog,
        deadline: Instant,
    ) -> Result<Self, String> {
        let ctl = dir.join("ctl");
        let out = dir.join("stdout");
        let err = dir.join("stderr");
        let stdout = File::create(&out).map_err(|e| format!("{}: {e}", out.display()))?;
        let stderr = File::create(&err).map_err(|e| format!("{}: {e}", err.display()))?;
        let child = Command::new(path)
            .arg("-unix")
            .arg(&ctl)
            .current_dir(dir)
            .stdin(Stdio::null())
            .stdout(stdout)
            .stderr(stderr)
            // Its own group: a terminal's ^C reaches only the driver,
            // which then stops the switch by PID.
            .process_group(0)
            .spawn()
            .map_err(|e| format!("starting {}: {e}", path.display()))?;
        let pid = Pid::from_raw(i32::try_from(child.id()).map_err(|e| format!("pid: {e}"))?);
        watchdog.arm(Target::Process(pid), deadline);
        if let Some(&cpu) = SWITCH_CPU.get() {
            let mut set = CpuSet::new();
            set.set(cpu).map_err(|e| format!("cpu {cpu}: {e}"))?;
            sched_setaffinity(pid, &set)
                .map_err(|e| format!("pinning the switch to CPU {cpu}: {e}"))?;
        }
        Ok(SwitchProc {
            child,
            pid,
            watchdog,
            reaped: false,
            stderr: err,
        })
    }

    pub(crate) fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Fails if the switch has exited (or the watchdog killed it).
    pub(crate) fn alive(&mut self, during: &str) -> Result<(), String> {
        match self.child.try_wait() {
            Ok(None) => Ok(()),
            Ok(Some(status)) => {
                self.reaped = true;
                let killed = self.watchdog.disarm();
                Err(if killed {
                    format!("the trial overran its deadline during {during}; the watchdog killed the switch")
                } else {
                    format!("the switch exited during {during}: {}", describe(status))
                })
            }
            Err(e) => Err(format!("waiting for the switch: {e}")),
        }
    }

    /// SIGTERM, then SIGKILL after [`STOP_TIMEOUT`]; reaps. Returns a note
    /// when the switch did not go quietly.
    pub(crate) fn stop(mut self) -> Option<String> {
        if self.reaped {
            return None;
        }
        let mut note = None;
        if let Ok(None) = self.child.try_wait() {
            let _ = kill(self.pid, Signal::SIGTERM);
            let deadline = Instant::now() + STOP_TIMEOUT;
            while Instant::now() < deadline {
                match self.child.try_wait() {
                    Ok(None) => thread::sleep(Duration::from_millis(5)),
                    _ => break,
                }
            }
            if let Ok(None) = self.child.try_wait() {
                let _ = kill(self.pid, Signal::SIGKILL);
                note = Some(format!(
                    "did not exit within {STOP_TIMEOUT:?} of SIGTERM; killed"
                ));
            }
        }
        let status = self.child.wait();
        self.reaped = true;
        self.watchdog.disarm();
        if let Ok(status) = status {
            let expected = status.code() == Some(0)
                || matches!(status_signal(status), Some(libc_sig) if libc_sig == Signal::SIGTERM as i32 || libc_sig == Signal::SIGKILL as i32)
                || status.code() == Some(128 + Signal::SIGTERM as i32);
            if !expected && note.is_none() {
                note = Some(format!("exit after SIGTERM: {}", describe(status)));
            }
        }
        note
    }
}

impl Drop for SwitchProc<'_> {
    fn drop(&mut self) {
        if !self.reaped {
            let _ = kill(self.pid, Signal::SIGKILL);
            let _ = self.child.wait();
            self.watchdog.disarm();
        }
    }
}

fn status_signal(status: ExitStatus) -> Option<i32> {
    use std::os::unix::process::ExitStatusExt;
    status.signal()
}

fn describe(status: ExitStatus) -> String {
    match (status.code(), status_signal(status)) {
        (Some(c), _) => format!("exit status {c}"),
        (None, Some(s)) => format!(
            "killed by signal {s}{}",
            Signal::try_from(s).map_or(String::new(), |sig| format!(" ({sig})"))
        ),
        _ => format!("{status}"),
    }
}

/// The lines of a switch's stderr, by kind (digits folded to `#`), in
/// order of first appearance, with counts.
#[derive(Debug, Default, Clone)]
pub(crate) struct StderrSummary {
    pub(crate) lines: u64,
    pub(crate) kinds: Vec<(String, String, u64)>,
    pub(crate) other_kinds: u64,
}

impl StderrSummary {
    const MAX_KINDS: usize = 8;

    pub(crate) fn read(path: &Path) -> StderrSummary {
        let mut s = StderrSummary::default();
        let Ok(file) = File::open(path) else {
            return s;
        };
        let mut index: BTreeMap<String, usize> = BTreeMap::new();
        for line in BufReader::new(file).split(b'\n') {
            let Ok(line) = line else { break };
            s.lines += 1;
            let text = String::from_utf8_lossy(&line).into_owned();
            let kind = fold_digits(&text);
            match index.get(&kind) {
                Some(&i) => s.kinds[i].2 += 1,
                None if s.kinds.len() < Self::MAX_KINDS => {
                    index.insert(kind.clone(), s.kinds.len());
                    s.kinds.push((kind, text, 1));
                }
                None => s.other_kinds += 1,
            }
        }
        s
    }

    pub(crate) fn describe(&self) -> String {
        if self.lines == 0 {
            return "stderr empty".into();
        }
        let mut parts: Vec<String> = self
            .kinds
            .iter()
            .map(|(_, example, n)| format!("{n} × {example:?}"))
            .collect();
        if self.other_kinds > 0 {
            parts.push(format!("{} other lines", self.other_kinds));
        }
        format!("stderr {} lines: {}", self.lines, parts.join("; "))
    }
}
