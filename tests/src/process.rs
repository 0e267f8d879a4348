//! Running processes with deadlines and stopping them.

use std::io::{Read, Write};
use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

use nix::sys::signal::{kill, killpg, Signal};
use nix::unistd::Pid;

/// Poll interval of every wait loop.
pub(crate) const POLL: Duration = Duration::from_millis(20);

/// What [`run_with_timeout`] observed.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RunOutput {
    /// Everything the process wrote to stdout.
    pub stdout: Vec<u8>,
    /// Everything the process wrote to stderr.
    pub stderr: Vec<u8>,
    /// Exit code, `None` when it was ended by a signal.
    pub code: Option<i32>,
    /// The signal that ended it, if any.
    pub signal: Option<i32>,
    /// The deadline passed and the process (group) was killed.
    pub timed_out: bool,
}

impl RunOutput {
    /// stdout as text (lossy).
    pub fn stdout_str(&self) -> String {
        String::from_utf8_lossy(&self.stdout).into_owned()
    }

    /// stderr as text (lossy).
    pub fn stderr_str(&self) -> String {
        String::from_utf8_lossy(&self.stderr).into_owned()
    }

    /// Exited by itself with status 0.
    pub fn success(&self) -> bool {
        !self.timed_out && self.code == Some(0)
    }
}

impl std::fmt::Display for RunOutput {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "code={:?} signal={:?} timed_out={}\n--- stdout ---\n{}--- stderr ---\n{}",
            self.code,
            self.signal,
            self.timed_out,
            self.stdout_str(),
            self.stderr_str()
        )
    }
}

/// Runs `cmd` with an empty stdin, capturing stdout and stderr; see
/// [`run_with_timeout_input`].
pub fn run_with_timeout(cmd: &mut Command, timeout: Duration) -> RunOutput {
    run_with_timeout_input(cmd, &[], timeout)
}

/// Runs `cmd` with `input` on its stdin (then EOF), capturing stdout and
/// stderr, for at most `timeout`.
///
/// The child is put in a process group of its own. When the deadline
/// passes, the whole group gets `SIGKILL` and the result has
/// `timed_out = true`. Output of descendants that escaped the group and
/// keep the pipes open is collected for at most 2 s after the child ended.
///
/// # Panics
///
/// When the program cannot be started at all (a test set-up error).
pub fn run_with_timeout_input(cmd: &mut Command, input: &[u8], timeout: Duration) -> RunOutput {
    let deadline = Instant::now() + timeout;
    let mut child = match cmd
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .process_group(0)
        .spawn()
    {
        Ok(c) => c,
        Err(e) => panic!("cannot start {:?}: {e}", cmd.get_program()),
    };
    if let Some(mut stdin) = child.stdin.take() {
        let input = input.to_vec();
        // A child that never reads must not block us: write in a thread.
        thread::spawn(move || {
            let _ = stdin.write_all(&input);
        });
    }
    let stdout = spawn_reader(child.stdout.take());
    let stderr = spawn_reader(child.stderr.take());

    let (status, timed_out) = loop {
        match child.try_wait() {
            Ok(Some(status)) => break (Some(status), false),
            Ok(None) if Instant::now() >= deadline => {
                let pid = child_pid(&child);
                let _ = killpg(pid, Signal::SIGKILL);
                let _ = child.kill();
                break (wait_bounded(&mut child, Duration::from_secs(5)), true);
            }
            Ok(None) => thread::sleep(POLL),
            Err(_) => break (None, false),
        }
    };
    let grace = Instant::now() + Duration::from_secs(2);
    RunOutput {
        stdout: stdout.finish(grace),
        stderr: stderr.finish(grace),
        code: status.and_then(|s| s.code()),
        signal: status.and_then(|s| s.signal()),
        timed_out,
    }
}

struct Reader {
    buf: Arc<Mutex<Vec<u8>>>,
    done: Option<thread::JoinHandle<()>>,
}

impl Reader {
    /// Waits for EOF until `deadline`, then returns what was read so far.
    fn finish(mut self, deadline: Instant) -> Vec<u8> {
        while self.done.as_ref().is_some_and(|h| !h.is_finished()) && Instant::now() < deadline {
            thread::sleep(POLL);
        }
        if let Some(h) = self.done.take() {
            if h.is_finished() {
                let _ = h.join();
            }
        }
        match self.buf.lock() {
            Ok(b) => b.clone(),
            Err(poisoned) => poisoned.into_inner().clone(),
        }
    }
}

fn spawn_reader<R: Read + Send + 'static>(pipe: Option<R>) -> Reader {
    let buf = Arc::new(Mutex::new(Vec::new()));
    let done = pipe.map(|mut pipe| {
        let buf = Arc::clone(&buf);
        thread::spawn(move || {
            let mut chunk = [0u8; 8192];
            loop {
                match pipe.read(&mut chunk) {
                    Ok(0) | Err(_) => break,
                    Ok(n) => match buf.lock() {
                        Ok(mut b) => b.extend_from_slice(&chunk[..n]),
                        Err(_) => break,
                    },
                }
            }
        })
    });
    Reader { buf, done }
}

pub(crate) fn child_pid(child: &Child) -> Pid {
    Pid::from_raw(i32::try_from(child.id()).unwrap_or(i32::MAX))
}

/// Waits up to `timeout` for `child` to exit (reaping it).
pub(crate) fn wait_bounded(
    child: &mut Child,
    timeout: Duration,
) -> Option<std::process::ExitStatus> {
    let deadline = Instant::now() + timeout;
    loop {
        match child.try_wait() {
            Ok(Some(status)) => return Some(status),
            Ok(None) if Instant::now() < deadline => thread::sleep(POLL),
            _ => return None,
        }
    }
}
/// A child started in a process group of its own (`process_group(0)`),
/// ended when dropped: SIGTERM to the group, at most a few seconds' wait,
/// then SIGKILL, and reaped. For daemons a test starts (vde_switch, a
/// socket activator) that must not outlive it, even when it fails.
#[derive(Debug)]
pub struct ProcessGroup(pub Child);

impl Drop for ProcessGroup {
    fn drop(&mut self) {
        let pgid = Pid::from_raw(self.0.id() as i32);
        let _ = killpg(pgid, Signal::SIGTERM);
        let deadline = Instant::now() + Duration::from_secs(5);
        while matches!(self.0.try_wait(), Ok(None)) && Instant::now() < deadline {
            thread::sleep(Duration::from_millis(20));
        }
        let _ = killpg(pgid, Signal::SIGKILL);
        let _ = self.0.wait();
    }
}

/// Whether a process with this pid exists and is not a zombie.
///
/// (Processes that are not our children cannot be reaped by us; a zombie
/// has finished running, which is what the callers care about.)
pub fn pid_alive(pid: u32) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Ok(stat) => proc_stat_state(&stat).is_some_and(|s| s != 'Z' && s != 'X'),
        Err(_) => false,
    }
}

/// Polls `cond` until it holds, at most `timeout`; whether it held.
/// The one bounded wait for a condition that tests should use instead of
/// sleeping a fixed time.
pub fn wait_until(timeout: Duration, mut cond: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + timeout;
    loop {
        if cond() {
            return true;
        }
        if Instant::now() >= deadline {
            return false;
        }
        thread::sleep(POLL);
    }
}

/// The system calls in which an event-driven program waits for its next
/// event (x86_64 numbers): poll, select, pause, nanosleep, wait4,
/// rt_sigsuspend, pselect6, ppoll, epoll_wait, epoll_pwait, epoll_pwait2,
/// clock_nanosleep, read, recvfrom, recvmsg, accept, accept4.
const WAITING_SYSCALLS: &[i64] = &[
    7, 23, 34, 35, 61, 130, 270, 271, 232, 281, 441, 230, 0, 45, 47, 43, 288,
];

/// The number of the system call `pid` is blocked in (from
/// `/proc/PID/syscall`), `None` when it is running, gone or unreadable.
pub fn blocked_syscall(pid: u32) -> Option<i64> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/syscall")).ok()?;
    let nr: i64 = text.split_whitespace().next()?.parse().ok()?;
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    (nr >= 0 && proc_stat_state(&stat) == Some('S')).then_some(nr)
}

/// Polls until `pid` sleeps waiting for an event (poll, epoll, a read,
/// a pause, …): it has finished whatever it was doing, such as its
/// start-up. At most `timeout`; whether it got there.
pub fn wait_idle(pid: u32, timeout: Duration) -> bool {
    wait_until(timeout, || {
        blocked_syscall(pid).is_some_and(|nr| WAITING_SYSCALLS.contains(&nr))
    })
}

/// The state letter of a `/proc/<pid>/stat` line (after the `(comm)`,
/// which may itself contain spaces and parentheses).
pub(crate) fn proc_stat_state(stat: &str) -> Option<char> {
    let after = &stat[stat.rfind(')')? + 1..];
    after.split_whitespace().next()?.chars().next()
}

/// Polls until `pid` is gone (or a zombie), at most `timeout`.
pub(crate) fn wait_pid_gone(pid: u32, timeout: Duration) -> bool {
    let deadline = Instant::now() + timeout;
    loop {
        if !pid_alive(pid) {
            return true;
        }
        if Instant::now() >= deadline {
            return false;
        }
        thread::sleep(POLL);
    }
}

/// Sends `sig` to process group `pgid`, ignoring errors (e.g. the group is
/// already gone).
pub(crate) fn signal_group(pgid: u32, sig: Signal) {
    if let Ok(raw) = i32::try_from(pgid) {
        if raw > 1 {
            let _ = killpg(Pid::from_raw(raw), sig);
        }
    }
}

/// Sends `sig` to process `pid`, ignoring errors.
pub(crate) fn signal_pid(pid: u32, sig: Signal) {
    if let Ok(raw) = i32::try_from(pid) {
        if raw > 1 {
            let _ = kill(Pid::from_raw(raw), sig);
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    #[test]
    fn captures_output_and_status() {
        let out = run_with_timeout(
            Command::new("sh").args(["-c", "echo out; echo err >&2; exit 3"]),
            Duration::from_secs(10),
        );
        assert_eq!(out.stdout, b"out\n");
        assert_eq!(out.stderr, b"err\n");
        assert_eq!(out.code, Some(3));
        assert!(!out.timed_out && !out.success());
    }

    #[test]
    fn feeds_stdin() {
        let out = run_with_timeout_input(&mut Command::new("cat"), b"abc", Duration::from_secs(10));
        assert_eq!(out.stdout, b"abc");
        assert!(out.success());
    }

    #[test]
    fn kills_on_timeout_including_grandchildren() {
        let start = Instant::now();
        // The grandchild `sleep` keeps stdout open; it must die with the group.
        let out = run_with_timeout(
            Command::new("sh").args(["-c", "echo started; sleep 30 & sleep 30"]),
            Duration::from_millis(500),
        );
        assert!(out.timed_out);
        assert_eq!(out.code, None);
        assert_eq!(out.signal, Some(9));
        assert_eq!(out.stdout, b"started\n");
        assert!(start.elapsed() < Duration::from_secs(10));
    }

    #[test]
    fn stat_state_parsing() {
        assert_eq!(proc_stat_state("42 (a b) c) S 1 2 3"), Some('S'));
        assert_eq!(proc_stat_state("42 (x) Z 1"), Some('Z'));
        assert_eq!(proc_stat_state("garbage"), None);
        assert!(pid_alive(std::process::id()));
    }
}
