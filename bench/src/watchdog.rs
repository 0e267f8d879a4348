//! A watchdog thread that bounds every wait of a benchmark driver on a
//! child process: armed with a deadline, it SIGKILLs the process (or its
//! process group) when the deadline passes.

use std::io;
use std::sync::{Arc, Mutex, MutexGuard};
use std::thread;
use std::time::{Duration, Instant};

use nix::sys::signal::{kill, killpg, Signal};
use nix::unistd::Pid;

/// How often the deadline is checked.
const TICK: Duration = Duration::from_millis(50);

/// What to kill when the deadline passes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Target {
    /// One process.
    Process(Pid),
    /// A process group (its leader's pid).
    Group(Pid),
}

#[derive(Debug, Default)]
struct State {
    armed: Option<(Target, Instant)>,
    fired: bool,
    stop: bool,
}

/// The watchdog; dropping it stops its thread.
#[derive(Debug)]
pub struct Watchdog {
    state: Arc<Mutex<State>>,
    thread: Option<thread::JoinHandle<()>>,
}

fn lock(m: &Mutex<State>) -> MutexGuard<'_, State> {
    // The state stays consistent even if a holder panicked.
    m.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

impl Watchdog {
    /// Starts the watchdog thread.
    pub fn start() -> io::Result<Watchdog> {
        let state = Arc::new(Mutex::new(State::default()));
        let shared = Arc::clone(&state);
        let thread = thread::Builder::new()
            .name("watchdog".into())
            .spawn(move || loop {
                thread::sleep(TICK);
                let mut s = lock(&shared);
                if s.stop {
                    return;
                }
                if let Some((target, deadline)) = s.armed {
                    if Instant::now() >= deadline {
                        // The process is not reaped until it is disarmed,
                        // so its pid (and group) cannot have been reused.
                        let _ = match target {
                            Target::Process(pid) => kill(pid, Signal::SIGKILL),
                            Target::Group(pgid) => killpg(pgid, Signal::SIGKILL),
                        };
                        s.fired = true;
                        s.armed = None;
                    }
                }
            })?;
        Ok(Watchdog {
            state,
            thread: Some(thread),
        })
    }

    /// Kills `target` at `deadline` unless disarmed before.
    pub fn arm(&self, target: Target, deadline: Instant) {
        let mut s = lock(&self.state);
        s.armed = Some((target, deadline));
        s.fired = false;
    }

    /// Whether the armed deadline has passed and the target was killed.
    pub fn fired(&self) -> bool {
        lock(&self.state).fired
    }

    /// Disarms; returns whether the deadline had passed and the target was
    /// killed.
    pub fn disarm(&self) -> bool {
        let mut s = lock(&self.state);
        s.armed = None;
        std::mem::take(&mut s.fired)
    }
}

impl Drop for Watchdog {
    fn drop(&mut self) {
        lock(&self.state).stop = true;
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::process::Command;

    #[test]
    fn kills_an_overrunning_process_and_not_a_disarmed_one() {
        let w = Watchdog::start().unwrap();
        let mut c = Command::new("sleep").arg("30").spawn().unwrap();
        let pid = Pid::from_raw(c.id() as i32);
        w.arm(
            Target::Process(pid),
            Instant::now() + Duration::from_millis(100),
        );
        let st = c.wait().unwrap();
        assert!(w.disarm());
        use std::os::unix::process::ExitStatusExt;
        assert_eq!(st.signal(), Some(9));
        let mut c = Command::new("sleep").arg("0.2").spawn().unwrap();
        let pid = Pid::from_raw(c.id() as i32);
        w.arm(
            Target::Process(pid),
            Instant::now() + Duration::from_secs(30),
        );
        assert!(c.wait().unwrap().success());
        assert!(!w.disarm());
    }
}
