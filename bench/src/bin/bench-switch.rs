//! `bench-switch`: frames/s, loss and round-trip latency of Debian's C
//! `uml_switch` and ours, side by side in one run.
//!
//! Targets (issue "uml_switch … Speed"), judged at the default
//! `net.unix.max_dgram_qlen` (10) unless `--judge-qlen` says otherwise:
//! 64-byte unicast ≥ 1.5 × C with 2 ports and ≥ 4 × C with 64 ports; our
//! unicast throughput flat as ports are added (64 ports ≥ 0.8 × 2 ports);
//! loss no worse than C; p99 round trip no worse than C.
//!
//! Method (per `net.unix.max_dgram_qlen` value, per port count N, per
//! trial, C and ours interleaved — C first in even trials, ours first in
//! odd ones):
//! 1. The sysctl is set in this process's network namespace, which must be
//!    the private one named by `--netns` (scripts/bench-switch creates it
//!    and runs this driver inside with `ip netns exec`); the host's own
//!    setting is never touched. It applies to sockets created afterwards:
//!    every trial's switch and ports are new.
//! 2. A fresh switch runs in its own temp dir: `SWITCH -unix DIR/ctl`,
//!    stdin /dev/null, stdout/stderr to files there, own process group.
//! 3. N ports connect (see `uml_bench::switchload`): data sockets on
//!    full-length abstract addresses, v3 requests, control connections
//!    kept open. Learning: each port's broadcast must reach all others.
//! 4. Warm-up (0.2 s unicast, untimed), then unicast: port 2i → port
//!    2i+1's MAC, N/2 pairs, blasting non-blocking sends for
//!    `--unicast-secs`; broadcast: port 0 → ff:ff:ff:ff:ff:ff, N − 1
//!    receivers, `--broadcast-secs`; ping-pong between ports 0 and 1, one
//!    frame in flight, `--pingpong-secs`. Delivered frames/s counts good
//!    deliveries in the timed window; loss = expected deliveries (sent ×
//!    receivers) − deliveries after a drain; EAGAIN at the sender (switch
//!    input queue full) is reported apart and is not loss.
//! 5. The switch is stopped by PID (SIGTERM, SIGKILL after 2 s) and the
//!    temp dir removed; its stderr is summarised by kind of line.
//! 6. After each C/ours pair of trials, the generator runs alone (ports
//!    2i → 2i+1 directly, no switch): an upper bound of what it offers.
//!
//! The generator is one thread, so that on a 2-core machine the switch
//! keeps a core to itself. It sends with one non-blocking `sendto` per
//! frame; a burst ends at the first EAGAIN, and no receiver is sent more
//! than half its queue between two drains (otherwise the generator's own
//! slowness would be counted as the switch's loss). Per phase it records
//! the CPU time of the switch, of itself and of everything else on the
//! machine: "ns/fr" (switch CPU per delivered frame) compares the two
//! switches even when other processes take CPU away, and a trial during
//! which others took more than `--max-other` % of a core is run again
//! (`--retries`, bounded in all).
//!
//! A trial that fails (switch exits, hangs, delivers nothing during
//! learning, …) is reported with what was seen, and the run goes on. Every
//! wait is bounded; a watchdog kills a switch whose trial overruns its
//! deadline; `--max-seconds` bounds the whole run.
//!
//! Exit status: 0 when measured (whatever the verdict), 1 when `--enforce`
//! is given and a target is missed, 2 on errors, 130 when interrupted.
#![forbid(unsafe_code)]

use std::collections::BTreeMap;
use std::ffi::OsString;
use std::fs::{self, File};
use std::io::{BufRead, BufReader};
use std::os::unix::fs::MetadataExt;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitCode, ExitStatus, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

use nix::sched::{sched_getaffinity, sched_setaffinity, CpuSet};
use nix::sys::signal::{kill, Signal};
use nix::unistd::{sysconf, Pid, SysconfVar};
use signal_hook::consts::{SIGHUP, SIGINT, SIGTERM};
use uml_bench::driver::{failed, sibling, Error};
use uml_bench::stats::quantile;
use uml_bench::switchload::{
    build_frame, cpu_ticks, port_mac, system_busy_ticks, BlastParams, BlastResult, Flow, Generator,
    Phase, BROADCAST, MAX_FRAME_LEN, MIN_FRAME_LEN,
};
use uml_bench::watchdog::{Target, Watchdog};

const USAGE: &str = "\
Usage: bench-switch [OPTIONS]

Runs Debian's C uml_switch and ours, interleaved, each fresh per trial,
against a load generator speaking the daemon protocol with N ports, and
reports median delivered frames/s, loss, sender EAGAIN, CPU and ping-pong
round-trip percentiles, the ratios ours/C and PASS/FAIL against the
targets. Meant to run inside a private network namespace (use
scripts/bench-switch, which creates one and passes --netns).

Options:
  --ours PATH           our switch (default: uml_switch beside this program,
                        i.e. target/x86_64-unknown-linux-gnu/release/uml_switch)
  --c PATH              the C switch (default /usr/bin/uml_switch)
  --ports LIST          port counts, comma separated (default 2,8,64)
  --qlen LIST           net.unix.max_dgram_qlen values (default 10,512)
  --judge-qlen Q        qlen at which the targets are judged (default 10,
                        else the first of --qlen)
  --netns NAME          the network namespace this process runs in (as
                        named by `ip netns`); required to change the qlen
  --trials N            trials per switch per configuration (default 5)
  --unicast-secs S      timed unicast window per trial (default 1.5)
  --broadcast-secs S    timed broadcast window per trial (default 1)
  --pingpong-secs S     ping-pong time per trial (default 1.5)
  --pingpong-max N      at most N round trips per trial (default 60000)
  --ceiling-secs S      per trial round, the generator alone (port to port,
                        no switch) for S s: the most any switch can show
                        here (default 0.5; 0 skips it)
  --floor PATH          per trial round, also run this minimal forwarder
                        (default: floor-switch beside this program): the
                        per-frame work no switch can avoid here (one
                        recvmmsg, a MAC lookup, one sendmmsg per
                        destination); its unicast rate / C bounds what any
                        switch over these sockets can show
  --no-floor            skip the floor runs
  --frame-size N        frame length in bytes (default 64)
  --rate FPS            pace the senders to FPS frames/s in all (default:
                        blast, as fast as the switch takes them)
  --burst N             sends per flow before the next flow (default 8)
  --credit              after an EAGAIN, send only into the room the
                        switch's input queue is known to have (default:
                        blast, i.e. send again as soon as any frame arrived)
  --slack N             with --credit: frames sent beyond that room
                        (default 0)
  --round-max N         most frames sent before the receivers are drained
                        again (default 32)
  --max-other PCT       a trial during which other processes used more than
                        PCT % of a core is run again (default 25)
  --retries N           at most N such repeats per trial, and at most one
                        run in five repeated in all (default 2; the last
                        attempt is kept, with a note)
  --sendmmsg            send bursts with sendmmsg (default: one sendto per
                        frame, a burst ends at the first EAGAIN)
  --spin-us N           when nothing moved, poll N µs before sleeping in
                        epoll_wait (default 50; 0 sleeps at once)
  --loss-slack PP       loss verdict: ours <= C + PP percentage points
                        (default 0.01)
  --p99-slack F         p99 verdict: ours <= C x (1 + F) (default 0.05)
  --max-seconds N       bound of the whole run (default: 1.5 x the plan
                        plus 60 s)
  --enforce             exit 1 when a target is missed
  --no-pin              do not pin the generator and the switch to two
                        different CPUs (default: pinned when this process
                        may use two or more; unpinned, the scheduler
                        sometimes puts both on one CPU, which moved the
                        ping-pong p50 by ~20 % between trials)
  -h, --help            this text";

const BUILD_HINT: &str = " (build it: cargo build --release --workspace --bins)";
const QLEN_SYSCTL: &str = "/proc/sys/net/unix/max_dgram_qlen";
const REPLY_TIMEOUT: Duration = Duration::from_secs(3);
const LEARN_TIMEOUT: Duration = Duration::from_secs(1);
const WARMUP: Duration = Duration::from_millis(200);
const PINGPONG_TIMEOUT: Duration = Duration::from_millis(500);
const PINGPONG_WARMUP: usize = 100;
const PINGPONG_MAX_LOST: u64 = 5;
const STOP_TIMEOUT: Duration = Duration::from_secs(2);
const DRAIN_QUIET: Duration = Duration::from_millis(30);
const MAX_DRAIN: Duration = Duration::from_secs(1);
const UNICAST_2_TARGET: f64 = 1.5;
const UNICAST_64_TARGET: f64 = 4.0;
const FLAT_TARGET: f64 = 0.8;

// ---------------------------------------------------------------------------
// Options
// ---------------------------------------------------------------------------

#[derive(Debug)]
struct Options {
    ours: PathBuf,
    c: PathBuf,
    floor: Option<PathBuf>,
    ports: Vec<usize>,
    qlens: Vec<u32>,
    judge_qlen: Option<u32>,
    netns: Option<String>,
    trials: usize,
    unicast: Duration,
    broadcast: Duration,
    pingpong: Duration,
    pingpong_max: usize,
    ceiling: Duration,
    frame_size: usize,
    rate: Option<f64>,
    burst: usize,
    credit: bool,
    slack: u64,
    round_max: u64,
    max_other: f64,
    retries: usize,
    spin: Duration,
    sendmmsg: bool,
    loss_slack: f64,
    p99_slack: f64,
    max_seconds: Option<u64>,
    enforce: bool,
    pin: bool,
}

impl Options {
    /// Upper estimate of one trial (one switch run), without failures.
    fn trial_estimate(&self, n: usize) -> Duration {
        let phases = WARMUP + self.unicast + self.broadcast + self.pingpong;
        let drains = 3 * DRAIN_QUIET + Duration::from_millis(100);
        let setup = Duration::from_millis(150) + Duration::from_millis(3) * n as u32;
        phases + drains + setup
    }

    /// Deadline of one trial: set-up, learning (bounded per port),
    /// phases, drains, stopping.
    fn trial_deadline(&self, n: usize) -> Duration {
        let phases = WARMUP + self.unicast + self.broadcast + self.pingpong;
        let learn = LEARN_TIMEOUT * 2 * n as u32;
        let connect = REPLY_TIMEOUT * 2;
        phases + 4 * MAX_DRAIN + learn + connect + STOP_TIMEOUT + Duration::from_secs(10)
    }

    fn planned(&self) -> Duration {
        let per: Duration = self.ports.iter().map(|&n| self.trial_estimate(n)).sum();
        let ceiling = (self.ceiling + Duration::from_millis(100)) * self.ports.len() as u32;
        let switches = if self.floor.is_some() { 3 } else { 2 };
        (per * switches + ceiling) * (self.trials * self.qlens.len()) as u32
    }

    fn judge_qlen(&self) -> u32 {
        self.judge_qlen.unwrap_or_else(|| {
            if self.qlens.contains(&10) {
                10
            } else {
                self.qlens[0]
            }
        })
    }
}

fn parse_list<T: std::str::FromStr + PartialOrd>(v: &str, min: T) -> Option<Vec<T>> {
    let items: Option<Vec<T>> = v
        .split(',')
        .map(|s| s.trim().parse::<T>().ok().filter(|x| *x >= min))
        .collect();
    items.filter(|v| !v.is_empty())
}

fn parse_args(args: Vec<OsString>) -> Result<Options, Error> {
    let mut o = Options {
        ours: sibling("uml_switch"),
        floor: Some(sibling("floor-switch")),
        c: PathBuf::from("/usr/bin/uml_switch"),
        ports: vec![2, 8, 64],
        qlens: vec![10, 512],
        judge_qlen: None,
        netns: None,
        trials: 5,
        unicast: Duration::from_millis(1500),
        broadcast: Duration::from_secs(1),
        pingpong: Duration::from_millis(1500),
        pingpong_max: 60_000,
        ceiling: Duration::from_millis(500),
        frame_size: 64,
        rate: None,
        burst: 8,
        credit: false,
        slack: 0,
        round_max: 32,
        max_other: 25.0,
        retries: 2,
        spin: Duration::from_micros(50),
        sendmmsg: false,
        loss_slack: 0.01,
        p99_slack: 0.05,
        max_seconds: None,
        enforce: false,
        pin: true,
    };
    let mut it = args.into_iter();
    while let Some(arg) = it.next() {
        let Some(text) = arg.to_str() else {
            return Err(Error::Usage(format!("unexpected argument {arg:?}")));
        };
        let (name, inline) = match text.split_once('=') {
            Some((n, v)) if n.starts_with("--") => (n.to_owned(), Some(OsString::from(v))),
            _ => (text.to_owned(), None),
        };
        let mut inline = inline;
        let mut value = |it: &mut std::vec::IntoIter<OsString>| -> Result<String, Error> {
            inline
                .take()
                .or_else(|| it.next())
                .and_then(|v| v.into_string().ok())
                .ok_or_else(|| Error::Usage(format!("{name} needs a value")))
        };
        let bad = |what: &str| Error::Usage(format!("{name} needs {what}"));
        let number = |v: String, min: usize| -> Result<usize, Error> {
            v.parse::<usize>()
                .ok()
                .filter(|&n| n >= min)
                .ok_or_else(|| bad(&format!("an integer >= {min}")))
        };
        let float = |v: String, min: f64| -> Result<f64, Error> {
            v.parse::<f64>()
                .ok()
                .filter(|x| x.is_finite() && *x >= min)
                .ok_or_else(|| bad(&format!("a number >= {min}")))
        };
        let secs = |v: String| -> Result<Duration, Error> {
            v.parse::<f64>()
                .ok()
                .filter(|x| x.is_finite() && (0.05..=600.0).contains(x))
                .map(Duration::from_secs_f64)
                .ok_or_else(|| bad("seconds between 0.05 and 600"))
        };
        match name.as_str() {
            "-h" | "--help" => {
                println!("{USAGE}");
                std::process::exit(0);
            }
            "--ours" => o.ours = value(&mut it)?.into(),
            "--c" => o.c = value(&mut it)?.into(),
            "--floor" => o.floor = Some(value(&mut it)?.into()),
            "--no-floor" => o.floor = None,
            "--ports" => {
                o.ports = parse_list(&value(&mut it)?, 2usize)
                    .filter(|v| v.iter().all(|&n| n <= 1000))
                    .ok_or_else(|| bad("a list of port counts between 2 and 1000"))?
            }
            "--qlen" => {
                o.qlens = parse_list(&value(&mut it)?, 1u32)
                    .filter(|v| v.iter().all(|&q| q <= 1_000_000))
                    .ok_or_else(|| bad("a list of queue lengths between 1 and 1000000"))?
            }
            "--judge-qlen" => o.judge_qlen = Some(number(value(&mut it)?, 1)? as u32),
            "--netns" => o.netns = Some(value(&mut it)?),
            "--trials" => o.trials = number(value(&mut it)?, 1)?,
            "--unicast-secs" => o.unicast = secs(value(&mut it)?)?,
            "--broadcast-secs" => o.broadcast = secs(value(&mut it)?)?,
            "--pingpong-secs" => o.pingpong = secs(value(&mut it)?)?,
            "--pingpong-max" => o.pingpong_max = number(value(&mut it)?, 10)?,
            "--ceiling-secs" => {
                let v = value(&mut it)?;
                o.ceiling = if v == "0" { Duration::ZERO } else { secs(v)? };
            }
            "--frame-size" => {
                o.frame_size = number(value(&mut it)?, MIN_FRAME_LEN)?;
                if o.frame_size > MAX_FRAME_LEN {
                    return Err(bad(&format!("at most {MAX_FRAME_LEN}")));
                }
            }
            "--rate" => o.rate = Some(float(value(&mut it)?, 1.0)?),
            "--burst" => {
                o.burst = number(value(&mut it)?, 1)?;
                if o.burst > 64 {
                    return Err(bad("at most 64"));
                }
            }
            "--credit" => o.credit = true,
            "--max-other" => o.max_other = float(value(&mut it)?, 0.0)?,
            "--retries" => o.retries = number(value(&mut it)?, 0)?,
            "--slack" => o.slack = number(value(&mut it)?, 0)? as u64,
            "--round-max" => o.round_max = number(value(&mut it)?, 1)? as u64,
            "--sendmmsg" => o.sendmmsg = true,
            "--spin-us" => o.spin = Duration::from_micros(number(value(&mut it)?, 0)? as u64),
            "--loss-slack" => o.loss_slack = float(value(&mut it)?, 0.0)?,
            "--p99-slack" => o.p99_slack = float(value(&mut it)?, 0.0)?,
            "--max-seconds" => o.max_seconds = Some(number(value(&mut it)?, 1)? as u64),
            "--enforce" => o.enforce = true,
            "--no-pin" => o.pin = false,
            other => return Err(Error::Usage(format!("unknown argument {other}"))),
        }
        if inline.is_some() {
            return Err(Error::Usage(format!("{name} takes no value")));
        }
    }
    if let Some(q) = o.judge_qlen {
        if !o.qlens.contains(&q) {
            return Err(Error::Usage(format!("--judge-qlen {q} is not in --qlen")));
        }
    }
    let mut paths = vec![
        ("--ours", &mut o.ours, BUILD_HINT),
        ("--c", &mut o.c, " (Debian package uml-utilities)"),
    ];
    if let Some(f) = o.floor.as_mut() {
        paths.push(("--floor", f, BUILD_HINT));
    }
    for (what, path, hint) in paths {
        if !path.is_file() {
            return Err(failed(format!(
                "{what}: {} does not exist{hint}",
                path.display()
            )));
        }
        // The switches run in their temp dirs: a relative path would be
        // looked up there.
        *path = fs::canonicalize(&*path)
            .map_err(|e| failed(format!("{what}: {}: {e}", path.display())))?;
    }
    Ok(o)
}

// ---------------------------------------------------------------------------
// net.unix.max_dgram_qlen, in this network namespace only
// ---------------------------------------------------------------------------

fn read_qlen() -> Result<u32, Error> {
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
struct QlenGuard {
    original: u32,
    allowed: bool,
}

impl QlenGuard {
    fn new(opts: &Options) -> Result<QlenGuard, Error> {
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

    fn set(&self, q: u32) -> Result<(), Error> {
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

// ---------------------------------------------------------------------------
// The switch process
// ---------------------------------------------------------------------------

/// A switch started for one trial. Dropping it kills (SIGKILL, by PID) and
/// reaps it if [`SwitchProc::stop`] was not called.
struct SwitchProc<'w> {
    child: Child,
    pid: Pid,
    watchdog: &'w Watchdog,
    reaped: bool,
    stderr: PathBuf,
}

impl<'w> SwitchProc<'w> {
    fn start(
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

    fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Fails if the switch has exited (or the watchdog killed it).
    fn alive(&mut self, during: &str) -> Result<(), String> {
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
    fn stop(mut self) -> Option<String> {
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
struct StderrSummary {
    lines: u64,
    kinds: Vec<(String, String, u64)>,
    other_kinds: u64,
}

impl StderrSummary {
    const MAX_KINDS: usize = 8;

    fn read(path: &Path) -> StderrSummary {
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

    fn describe(&self) -> String {
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

// ---------------------------------------------------------------------------
// Trials
// ---------------------------------------------------------------------------

#[derive(Debug, Clone, Copy, Default)]
struct Cpu {
    switch_pct: f64,
    gen_pct: f64,
    /// Everything else on the machine: other processes competing for the
    /// two cores.
    other_pct: f64,
    /// CPU time of the switch, seconds.
    switch_secs: f64,
}

struct CpuMeter {
    pid: u32,
    tick: f64,
    sw: Option<u64>,
    gen: Option<u64>,
    all: Option<u64>,
    t: Instant,
}

impl CpuMeter {
    fn start(pid: u32, tick: f64) -> CpuMeter {
        CpuMeter {
            pid,
            tick,
            sw: cpu_ticks(Some(pid)),
            gen: cpu_ticks(None),
            all: system_busy_ticks(),
            t: Instant::now(),
        }
    }

    fn stop(self) -> Cpu {
        let secs = self.t.elapsed().as_secs_f64().max(1e-6);
        let pct = |a: Option<u64>, b: Option<u64>| match (a, b) {
            (Some(a), Some(b)) => b.saturating_sub(a) as f64 / self.tick / secs * 100.0,
            _ => f64::NAN,
        };
        let sw_now = cpu_ticks(Some(self.pid));
        let switch_secs = match (self.sw, sw_now) {
            (Some(a), Some(b)) => b.saturating_sub(a) as f64 / self.tick,
            _ => f64::NAN,
        };
        let switch_pct = pct(self.sw, sw_now);
        let gen_pct = pct(self.gen, cpu_ticks(None));
        let all_pct = pct(self.all, system_busy_ticks());
        Cpu {
            switch_pct,
            gen_pct,
            other_pct: (all_pct - switch_pct - gen_pct).max(0.0),
            switch_secs,
        }
    }
}

#[derive(Debug, Clone)]
struct TrialData {
    unicast: BlastResult,
    unicast_cpu: Cpu,
    broadcast: BlastResult,
    broadcast_cpu: Cpu,
    rtt: Vec<u64>,
    rtt_lost: u64,
    notes: Vec<String>,
    stderr: StderrSummary,
}

#[derive(Debug, Clone)]
enum Outcome {
    Ok(Box<TrialData>),
    Failed(String),
}

struct Subject {
    label: &'static str,
    path: PathBuf,
}

struct Ctx<'a> {
    opts: &'a Options,
    /// The qlen in force (sockets created now get it).
    qlen: std::sync::atomic::AtomicUsize,
    watchdog: Watchdog,
    stop: Arc<AtomicBool>,
    tick: f64,
}

impl Ctx<'_> {
    fn check_stop(&self) -> Result<(), Error> {
        if self.stop.load(Ordering::Relaxed) {
            Err(Error::Interrupted)
        } else {
            Ok(())
        }
    }
}

fn run_trial(ctx: &Ctx<'_>, subject: &Subject, n: usize, tag: &str) -> Result<Outcome, Error> {
    let opts = ctx.opts;
    let tmp = tempfile::Builder::new()
        .prefix("bench-switch.")
        .tempdir()
        .map_err(|e| failed(format!("creating a temp dir: {e}")))?;
    let deadline = Instant::now() + opts.trial_deadline(n);
    let mut sw = match SwitchProc::start(&subject.path, tmp.path(), &ctx.watchdog, deadline) {
        Ok(sw) => sw,
        Err(e) => return Ok(Outcome::Failed(e)),
    };
    let result = measure(ctx, &mut sw, tmp.path(), n, tag);
    let interrupted = ctx.stop.load(Ordering::Relaxed);
    let watchdog_fired = ctx.watchdog.fired();
    let stderr_path = sw.stderr.clone();
    let stop_note = sw.stop();
    let stderr = StderrSummary::read(&stderr_path);
    tmp.close()
        .map_err(|e| failed(format!("removing the temp dir: {e}")))?;
    if interrupted {
        return Err(Error::Interrupted);
    }
    Ok(match result {
        Ok(mut data) => {
            if let Some(note) = stop_note {
                data.notes.push(format!("switch {note}"));
            }
            data.stderr = stderr;
            Outcome::Ok(Box::new(data))
        }
        Err(e) => {
            let mut msg = e;
            if watchdog_fired {
                msg.push_str(" [the watchdog killed the switch at the trial deadline]");
            }
            if let Some(note) = stop_note {
                msg.push_str(&format!("; switch {note}"));
            }
            msg.push_str(&format!("; {}", stderr.describe()));
            Outcome::Failed(msg)
        }
    })
}

fn measure(
    ctx: &Ctx<'_>,
    sw: &mut SwitchProc<'_>,
    dir: &Path,
    n: usize,
    tag: &str,
) -> Result<TrialData, String> {
    let opts = ctx.opts;
    let stop = ctx.stop.as_ref();
    let ctl = dir.join("ctl");
    let step = |sw: &mut SwitchProc<'_>, what: &str, r: Result<(), String>| -> Result<(), String> {
        // A failure is usually explained best by the switch having died.
        sw.alive(what)?;
        r.map_err(|e| format!("{what}: {e}"))
    };
    let mut gen = match Generator::connect(&ctl, tag, n, REPLY_TIMEOUT) {
        Ok(g) => g,
        Err(e) => {
            step(sw, "connecting the ports", Err(e.clone()))?;
            return Err(e);
        }
    };
    step(
        sw,
        "learning",
        gen.learn(opts.frame_size, LEARN_TIMEOUT, stop),
    )?;

    let pairs: Vec<Flow> = (0..n / 2)
        .map(|i| Flow {
            from: 2 * i,
            frame: build_frame(
                opts.frame_size,
                port_mac(2 * i + 1),
                port_mac(2 * i),
                Phase::Warmup,
                0,
            ),
        })
        .collect();
    let params = |phase, duration, fanout| BlastParams {
        phase,
        duration,
        rate: opts.rate,
        fanout,
        burst: opts.burst,
        credit: opts.credit,
        slack: opts.slack,
        round_max: opts.round_max,
        recv_queue: ctx.qlen.load(Ordering::Relaxed),
        spin: opts.spin,
        sendmmsg: opts.sendmmsg,
        quiet: DRAIN_QUIET,
        max_drain: MAX_DRAIN,
    };
    let mut warm = pairs.clone();
    let r = gen.blast(&mut warm, &params(Phase::Warmup, WARMUP, 1), stop);
    step(sw, "the warm-up", r.map(|_| ()))?;

    let mut uni: Vec<Flow> = pairs
        .iter()
        .map(|f| {
            let mut f = f.clone();
            f.frame[18] = Phase::Unicast as u8;
            f
        })
        .collect();
    let meter = CpuMeter::start(sw.pid(), ctx.tick);
    let r = gen.blast(&mut uni, &params(Phase::Unicast, opts.unicast, 1), stop);
    let unicast_cpu = meter.stop();
    let unicast = r.clone().unwrap_or_default();
    step(sw, "unicast", r.map(|_| ()))?;

    let mut bc = vec![Flow {
        from: 0,
        frame: build_frame(opts.frame_size, BROADCAST, port_mac(0), Phase::Broadcast, 0),
    }];
    let meter = CpuMeter::start(sw.pid(), ctx.tick);
    let r = gen.blast(
        &mut bc,
        &params(Phase::Broadcast, opts.broadcast, n as u64 - 1),
        stop,
    );
    let broadcast_cpu = meter.stop();
    let broadcast = r.clone().unwrap_or_default();
    step(sw, "broadcast", r.map(|_| ()))?;

    let r = gen.ping_pong(
        0,
        1,
        opts.frame_size,
        opts.pingpong,
        opts.pingpong_max,
        PINGPONG_WARMUP,
        PINGPONG_TIMEOUT,
        PINGPONG_MAX_LOST,
        stop,
    );
    let pp = r.clone().unwrap_or_default();
    step(sw, "ping-pong", r.map(|_| ()))?;

    let mut notes = Vec::new();
    if let Some(i) = gen.closed_port() {
        notes.push(format!(
            "the switch closed the control connection of port {i}"
        ));
    }
    for (what, r) in [("unicast", &unicast), ("broadcast", &broadcast)] {
        if r.stray > 0 {
            notes.push(format!(
                "{what}: {} stray frames (wrong port, phase or duplicate)",
                r.stray
            ));
        }
        if r.send_errors > 0 {
            notes.push(format!(
                "{what}: {} sends failed (not EAGAIN)",
                r.send_errors
            ));
        }
        if r.sent > 0 && r.delivered == 0 {
            notes.push(format!(
                "{what}: nothing delivered of {} frames sent",
                r.sent
            ));
        }
    }
    if pp.stray > 0 {
        notes.push(format!("ping-pong: {} stray frames", pp.stray));
    }
    if pp.lost > 0 {
        notes.push(format!("ping-pong: {} frames lost (timeouts)", pp.lost));
    }
    drop(gen);
    Ok(TrialData {
        unicast,
        unicast_cpu,
        broadcast,
        broadcast_cpu,
        rtt: pp.rtt_ns,
        rtt_lost: pp.lost,
        notes,
        stderr: StderrSummary::default(),
    })
}

/// The generator alone: unicast pairs port to port, no switch.
fn run_ceiling(ctx: &Ctx<'_>, n: usize, tag: &str) -> Result<(f64, f64), Error> {
    let opts = ctx.opts;
    let mut gen = Generator::direct(tag, n).map_err(failed)?;
    let mut flows: Vec<Flow> = (0..n / 2)
        .map(|i| Flow {
            from: 2 * i,
            frame: build_frame(
                opts.frame_size,
                port_mac(2 * i + 1),
                port_mac(2 * i),
                Phase::Unicast,
                0,
            ),
        })
        .collect();
    let params = BlastParams {
        phase: Phase::Unicast,
        duration: opts.ceiling,
        rate: opts.rate,
        fanout: 1,
        burst: opts.burst,
        credit: opts.credit,
        slack: opts.slack,
        round_max: opts.round_max,
        recv_queue: ctx.qlen.load(Ordering::Relaxed),
        spin: opts.spin,
        sendmmsg: opts.sendmmsg,
        quiet: DRAIN_QUIET,
        max_drain: MAX_DRAIN,
    };
    let g0 = cpu_ticks(None);
    let t0 = Instant::now();
    let r = gen.blast(&mut flows, &params, ctx.stop.as_ref());
    ctx.check_stop()?;
    let r = r.map_err(|e| failed(format!("generator ceiling: {e}")))?;
    let cpu = match (g0, cpu_ticks(None)) {
        (Some(a), Some(b)) => {
            b.saturating_sub(a) as f64 / ctx.tick / t0.elapsed().as_secs_f64() * 100.0
        }
        _ => f64::NAN,
    };
    Ok((r.rate(), cpu))
}

// ---------------------------------------------------------------------------
// Figures
// ---------------------------------------------------------------------------

/// Median of the rates recorded for `key`; NaN when there are none.
fn median_at(rates: &Ceilings, key: (u32, usize)) -> f64 {
    rates.get(&key).map_or(f64::NAN, |v| median(v))
}

fn median(v: &[f64]) -> f64 {
    let mut s: Vec<f64> = v.iter().copied().filter(|x| !x.is_nan()).collect();
    if s.is_empty() {
        return f64::NAN;
    }
    s.sort_by(|a, b| a.total_cmp(b));
    let m = s.len() / 2;
    if s.len() % 2 == 1 {
        s[m]
    } else {
        (s[m - 1] + s[m]) / 2.0
    }
}

/// Medians over the successful trials of one switch in one configuration.
#[derive(Debug, Clone, Copy)]
struct Fig {
    ok: usize,
    failed: usize,
    uni_rate: f64,
    uni_loss: f64,
    uni_eagain: f64,
    uni_cpu: Cpu,
    uni_nspf: f64,
    bc_rate: f64,
    bc_loss: f64,
    bc_eagain: f64,
    bc_cpu: Cpu,
    bc_nspf: f64,
    p50: f64,
    p90: f64,
    p99: f64,
}

/// Switch CPU time per delivered frame, ns.
fn ns_per_frame(cpu: &Cpu, r: &BlastResult) -> f64 {
    if r.delivered == 0 {
        f64::NAN
    } else {
        cpu.switch_secs * 1e9 / r.delivered as f64
    }
}

fn figures(outcomes: &[Outcome]) -> Fig {
    let data: Vec<&TrialData> = outcomes
        .iter()
        .filter_map(|o| match o {
            Outcome::Ok(d) => Some(d.as_ref()),
            Outcome::Failed(_) => None,
        })
        .collect();
    let m = |f: &dyn Fn(&TrialData) -> f64| median(&data.iter().map(|d| f(d)).collect::<Vec<_>>());
    let q = |d: &TrialData, p: f64| {
        let mut s = d.rtt.clone();
        s.sort_unstable();
        quantile(&s, p).map_or(f64::NAN, |ns| ns / 1000.0)
    };
    Fig {
        ok: data.len(),
        failed: outcomes.len() - data.len(),
        uni_rate: m(&|d| d.unicast.rate()),
        uni_loss: m(&|d| d.unicast.loss_pct()),
        uni_eagain: m(&|d| d.unicast.eagain_pct()),
        uni_cpu: Cpu {
            switch_pct: m(&|d| d.unicast_cpu.switch_pct),
            gen_pct: m(&|d| d.unicast_cpu.gen_pct),
            other_pct: m(&|d| d.unicast_cpu.other_pct),
            switch_secs: m(&|d| d.unicast_cpu.switch_secs),
        },
        uni_nspf: m(&|d| ns_per_frame(&d.unicast_cpu, &d.unicast)),
        bc_rate: m(&|d| d.broadcast.rate()),
        bc_loss: m(&|d| d.broadcast.loss_pct()),
        bc_eagain: m(&|d| d.broadcast.eagain_pct()),
        bc_cpu: Cpu {
            switch_pct: m(&|d| d.broadcast_cpu.switch_pct),
            gen_pct: m(&|d| d.broadcast_cpu.gen_pct),
            other_pct: m(&|d| d.broadcast_cpu.other_pct),
            switch_secs: m(&|d| d.broadcast_cpu.switch_secs),
        },
        bc_nspf: m(&|d| ns_per_frame(&d.broadcast_cpu, &d.broadcast)),
        p50: m(&|d| q(d, 0.50)),
        p90: m(&|d| q(d, 0.90)),
        p99: m(&|d| q(d, 0.99)),
    }
}

fn fold_digits(s: &str) -> String {
    s.chars()
        .map(|c| if c.is_ascii_digit() { '#' } else { c })
        .collect()
}

fn kfps(v: f64) -> String {
    if v.is_nan() {
        "-".into()
    } else {
        format!("{:.1}k", v / 1000.0)
    }
}

fn num(v: f64, prec: usize) -> String {
    if v.is_nan() {
        "-".into()
    } else {
        format!("{v:.prec$}")
    }
}

fn ratio(a: f64, b: f64) -> f64 {
    if b > 0.0 && !a.is_nan() {
        a / b
    } else {
        f64::NAN
    }
}

fn verdict(ok: bool) -> &'static str {
    if ok {
        "PASS"
    } else {
        "FAIL"
    }
}

fn trial_line(d: &TrialData) -> String {
    let mut s = d.rtt.clone();
    s.sort_unstable();
    let q = |p| quantile(&s, p).map_or(f64::NAN, |ns| ns / 1000.0);
    format!(
        "unicast {} fr/s loss {}% EAGAIN {}% cpu sw {}%/gen {}%/other {}% | broadcast {} fr/s loss {}% | rtt p50 {} p99 {} µs ({} samples{})",
        kfps(d.unicast.rate()),
        num(d.unicast.loss_pct(), 3),
        num(d.unicast.eagain_pct(), 1),
        num(d.unicast_cpu.switch_pct, 0),
        num(d.unicast_cpu.gen_pct, 0),
        num(d.unicast_cpu.other_pct, 0),
        kfps(d.broadcast.rate()),
        num(d.broadcast.loss_pct(), 3),
        num(q(0.5), 1),
        num(q(0.99), 1),
        d.rtt.len(),
        if d.rtt_lost > 0 {
            format!(", {} lost", d.rtt_lost)
        } else {
            String::new()
        }
    )
}

type Results = BTreeMap<(u32, usize), [Vec<Outcome>; 2]>;
/// Generator-alone unicast frames/s per trial round.
type Ceilings = BTreeMap<(u32, usize), Vec<f64>>;

struct Verdicts {
    lines: Vec<String>,
    all_ok: bool,
    summary: Vec<String>,
}

fn judge(
    opts: &Options,
    results: &Results,
    ceilings: &Ceilings,
    floors: &Ceilings,
    qlen: u32,
) -> Verdicts {
    let fig = |n: usize| {
        results
            .get(&(qlen, n))
            .map(|r| (figures(&r[0]), figures(&r[1])))
    };
    let mut v = Verdicts {
        lines: Vec::new(),
        all_ok: true,
        summary: Vec::new(),
    };
    let check = |v: &mut Verdicts, key: &str, text: String, ok: Option<bool>| {
        let word = match ok {
            Some(true) => "PASS",
            Some(false) => "FAIL",
            None => "SKIP",
        };
        if ok == Some(false) {
            v.all_ok = false;
        }
        v.lines.push(format!("  {text:<78} {word}"));
        v.summary.push(format!("{key}={word}"));
    };
    // The best ratios any switch could show: the generator alone (no
    // switch at all) against C, and a switch doing the least per frame.
    let reachable = |n: usize, c_rate: f64| median_at(ceilings, (qlen, n)) / c_rate;
    let floor_ratio = |n: usize, c_rate: f64| median_at(floors, (qlen, n)) / c_rate;
    let smallest = opts.ports.iter().copied().min().unwrap_or(2);
    let largest = opts.ports.iter().copied().max().unwrap_or(2);
    for (n, target) in [(2, UNICAST_2_TARGET), (64, UNICAST_64_TARGET)] {
        let key = format!("unicast{n}");
        match fig(n) {
            Some((c, o)) => {
                let r = ratio(o.uni_rate, c.uni_rate);
                check(
                    &mut v,
                    &key,
                    format!(
                        "unicast, {n} ports: ours/C {} (target >= {target}; floor switch / C {}; gen alone / C {})",
                        num(r, 3),
                        num(floor_ratio(n, c.uni_rate), 2),
                        num(reachable(n, c.uni_rate), 2)
                    ),
                    Some(r >= target),
                );
            }
            None => check(
                &mut v,
                &key,
                format!("unicast, {n} ports: not measured"),
                None,
            ),
        }
    }
    match (fig(smallest), fig(largest)) {
        (Some((_, lo)), Some((_, hi))) if largest > smallest => {
            let r = ratio(hi.uni_rate, lo.uni_rate);
            check(
                &mut v,
                "flat",
                format!(
                    "flat: ours unicast at {largest} ports / at {smallest} ports {} (target >= {FLAT_TARGET})",
                    num(r, 3)
                ),
                Some(r >= FLAT_TARGET),
            );
        }
        _ => check(&mut v, "flat", "flat: needs two port counts".into(), None),
    }
    let mut loss_bad = Vec::new();
    let mut p99_bad = Vec::new();
    let mut any = false;
    for &n in &opts.ports {
        let Some((c, o)) = fig(n) else { continue };
        any = true;
        for (what, cl, ol) in [
            ("unicast", c.uni_loss, o.uni_loss),
            ("broadcast", c.bc_loss, o.bc_loss),
        ] {
            if ol.is_nan() || cl.is_nan() || ol > cl + opts.loss_slack {
                loss_bad.push(format!(
                    "{what} N={n}: {}% vs C {}%",
                    num(ol, 3),
                    num(cl, 3)
                ));
            }
        }
        if o.p99.is_nan() || c.p99.is_nan() || o.p99 > c.p99 * (1.0 + opts.p99_slack) {
            p99_bad.push(format!(
                "N={n}: {} vs C {} µs",
                num(o.p99, 1),
                num(c.p99, 1)
            ));
        }
    }
    let detail = |bad: &[String]| {
        if bad.is_empty() {
            "every row".to_string()
        } else {
            bad.join("; ")
        }
    };
    check(
        &mut v,
        "loss",
        format!(
            "loss: ours <= C + {} pp, unicast and broadcast: {}",
            opts.loss_slack,
            detail(&loss_bad)
        ),
        any.then_some(loss_bad.is_empty()),
    );
    check(
        &mut v,
        "p99",
        format!(
            "p99 round trip: ours <= C x {:.2}: {}",
            1.0 + opts.p99_slack,
            detail(&p99_bad)
        ),
        any.then_some(p99_bad.is_empty()),
    );
    v
}

fn report(
    opts: &Options,
    subjects: &[Subject; 2],
    results: &Results,
    ceilings: &Ceilings,
    floors: &Ceilings,
    partial: Option<&str>,
) -> bool {
    println!();
    println!("== uml_switch: delivered frames/s, loss and round trip, C vs ours");
    for s in subjects {
        println!("   {:<4} = {}", s.label, s.path.display());
    }
    println!(
        "   {} trials per switch per configuration, interleaved (C first in even trials, ours first in odd ones), a fresh switch per trial; medians over trials",
        opts.trials
    );
    match SWITCH_CPU.get() {
        Some(cpu) => println!(
            "   CPUs: the switch pinned to CPU {cpu}, the generator (one thread) to another"
        ),
        None => println!("   CPUs: not pinned"),
    }
    println!(
        "   {}-byte frames; unicast: N/2 pairs (port 2i -> port 2i+1's MAC), {:.1} s; broadcast: port 0 -> ff:ff:ff:ff:ff:ff, N-1 receivers, {:.1} s; {}",
        opts.frame_size,
        opts.unicast.as_secs_f64(),
        opts.broadcast.as_secs_f64(),
        match opts.rate {
            Some(r) => format!("senders paced to {r:.0} frames/s in all"),
            None => "senders blast (non-blocking sends; EAGAIN = switch input queue full, counted apart, not loss)".into(),
        }
    );
    println!(
        "   fr/s = good deliveries per second over all receivers; loss = (sent x receivers - delivered) / (sent x receivers)"
    );
    println!(
        "   ns/fr = switch CPU time per delivered frame (C/ours > 1: ours needs less CPU per frame; robust to CPU lost to other processes)"
    );
    println!(
        "   CPU s/g/o = % of one core used by the switch / the generator / other processes during the phase (o high = disturbed)"
    );
    if !opts.ceiling.is_zero() {
        println!(
            "   gen alone = the generator without a switch (port 2i -> 2i+1 directly, one core, {:.1} s per trial round): an upper bound of what it can offer;",
            opts.ceiling.as_secs_f64()
        );
        println!(
            "   with a switch on the other core each frame costs it more (wake-ups, cross-CPU traffic): generator CPU near 100% with switch CPU well below means generator-bound"
        );
    }
    if let Some(f) = &opts.floor {
        println!(
            "   floor = {} (bench/src/bin/floor-switch.rs): the least a switch process does per frame (recvmmsg, sender and MAC lookup, sendmmsg per destination; nothing else), unicast, one run per trial round: what any switch over these sockets can reach here",
            f.display()
        );
    }
    println!(
        "   ping-pong: ports 0 <-> 1, one frame in flight, {:.1} s or {} round trips per trial (first {PINGPONG_WARMUP} discarded); µs",
        opts.pingpong.as_secs_f64(),
        opts.pingpong_max
    );
    if let Some(p) = partial {
        println!("   PARTIAL RESULTS: {p}");
    }
    for &q in &opts.qlens {
        println!();
        println!(
            "== net.unix.max_dgram_qlen = {q}{}",
            if q == opts.judge_qlen() {
                " (targets judged here)"
            } else {
                " (for information)"
            }
        );
        println!(
            "{:<9} {:>3} | {:>8} {:>9} {:>6} | {:>7} {:>7} | {:>6} {:>6} | {:>7} {:>7} {:>6} | {:>11} {:>11} | {:>9} {:>8} | ok C/ours",
            "scenario",
            "N",
            "C fr/s",
            "ours fr/s",
            "ours/C",
            "C loss%",
            "ours%",
            "C EAG%",
            "ours%",
            "C ns/fr",
            "ours",
            "C/ours",
            "C CPU s/g/o",
            "ours",
            "gen alone",
            "floor",
        );
        for (scenario, bc) in [("unicast", false), ("broadcast", true)] {
            for &n in &opts.ports {
                let Some(r) = results.get(&(q, n)) else {
                    continue;
                };
                let (c, o) = (figures(&r[0]), figures(&r[1]));
                let pick = |f: &Fig| {
                    if bc {
                        (f.bc_rate, f.bc_loss, f.bc_eagain, f.bc_cpu, f.bc_nspf)
                    } else {
                        (f.uni_rate, f.uni_loss, f.uni_eagain, f.uni_cpu, f.uni_nspf)
                    }
                };
                let (cr, cl, ce, cc, cn) = pick(&c);
                let (or, ol, oe, oc, on) = pick(&o);
                let cpu = |x: Cpu| {
                    format!(
                        "{}/{}/{}",
                        num(x.switch_pct, 0),
                        num(x.gen_pct, 0),
                        num(x.other_pct, 0)
                    )
                };
                let (alone, floor) = if bc {
                    (f64::NAN, f64::NAN)
                } else {
                    (median_at(ceilings, (q, n)), median_at(floors, (q, n)))
                };
                println!(
                    "{:<9} {:>3} | {:>8} {:>9} {:>6} | {:>7} {:>7} | {:>6} {:>6} | {:>7} {:>7} {:>6} | {:>11} {:>11} | {:>9} {:>8} | {}/{} {}/{}",
                    scenario,
                    n,
                    kfps(cr),
                    kfps(or),
                    num(ratio(or, cr), 2),
                    num(cl, 3),
                    num(ol, 3),
                    num(ce, 1),
                    num(oe, 1),
                    num(cn, 0),
                    num(on, 0),
                    num(ratio(cn, on), 2),
                    cpu(cc),
                    cpu(oc),
                    kfps(alone),
                    kfps(floor),
                    c.ok,
                    c.ok + c.failed,
                    o.ok,
                    o.ok + o.failed
                );
            }
        }
        println!(
            "{:<10} {:>3} | {:>7} {:>7} {:>7} | {:>8} {:>8} {:>8} | {:>10}",
            "ping-pong",
            "N",
            "C p50",
            "C p90",
            "C p99",
            "ours p50",
            "ours p90",
            "ours p99",
            "p99 ours/C"
        );
        for &n in &opts.ports {
            let Some(r) = results.get(&(q, n)) else {
                continue;
            };
            let (c, o) = (figures(&r[0]), figures(&r[1]));
            println!(
                "{:<10} {:>3} | {:>7} {:>7} {:>7} | {:>8} {:>8} {:>8} | {:>10}",
                "rtt µs",
                n,
                num(c.p50, 1),
                num(c.p90, 1),
                num(c.p99, 1),
                num(o.p50, 1),
                num(o.p90, 1),
                num(o.p99, 1),
                num(ratio(o.p99, c.p99), 2)
            );
        }
    }

    // Failures and notes.
    let mut failures = Vec::new();
    // Per subject: note (digits folded) -> (trials, an example).
    let mut notes: [BTreeMap<String, (u64, String)>; 2] = [BTreeMap::new(), BTreeMap::new()];
    // Per subject: stderr kind -> (lines, trials, an example).
    let mut stderr: [BTreeMap<String, (u64, u64, String)>; 2] = [BTreeMap::new(), BTreeMap::new()];
    let mut trials = [0u64; 2];
    for (&(q, n), r) in results {
        for (si, outcomes) in r.iter().enumerate() {
            for (t, o) in outcomes.iter().enumerate() {
                match o {
                    Outcome::Failed(msg) => failures.push(format!(
                        "  qlen {q}, N={n}, {} trial {}: {msg}",
                        subjects[si].label,
                        t + 1
                    )),
                    Outcome::Ok(d) => {
                        trials[si] += 1;
                        for note in &d.notes {
                            let e = notes[si]
                                .entry(fold_digits(note))
                                .or_insert((0, note.clone()));
                            e.0 += 1;
                        }
                        for (kind, example, lines) in &d.stderr.kinds {
                            let e =
                                stderr[si]
                                    .entry(kind.clone())
                                    .or_insert((0, 0, example.clone()));
                            e.0 += lines;
                            e.1 += 1;
                        }
                        if d.stderr.other_kinds > 0 {
                            let e = stderr[si]
                                .entry("(further kinds of lines)".into())
                                .or_insert((0, 0, "(further kinds of lines)".into()));
                            e.0 += d.stderr.other_kinds;
                            e.1 += 1;
                        }
                    }
                }
            }
        }
    }
    if !failures.is_empty() {
        println!();
        println!("== failed trials");
        for f in &failures {
            println!("{f}");
        }
    }
    println!();
    println!("== switch stderr over all trials, by kind of line (digits folded)");
    for si in 0..2 {
        if stderr[si].is_empty() {
            println!("  {:<4} nothing", subjects[si].label);
        }
        for (lines, in_trials, example) in stderr[si].values() {
            println!(
                "  {:<4} {lines} lines in {in_trials} of {} trials, e.g. {example:?}",
                subjects[si].label, trials[si]
            );
        }
    }
    if notes.iter().any(|m| !m.is_empty()) {
        println!();
        println!("== notes");
        for si in 0..2 {
            for (count, example) in notes[si].values() {
                println!(
                    "  {:<4} {count} of {} trials: {example}{}",
                    subjects[si].label,
                    trials[si],
                    if *count > 1 { " (or similar)" } else { "" }
                );
            }
        }
    }

    let jq = opts.judge_qlen();
    let mut all_ok = true;
    let mut summary = Vec::new();
    for &q in &opts.qlens {
        let v = judge(opts, results, ceilings, floors, q);
        println!();
        if q == jq {
            println!("== targets at qlen {q}");
            all_ok = v.all_ok;
            summary = v.summary.clone();
        } else {
            println!("== the same checks at qlen {q} (for information, not the verdict)");
        }
        for l in &v.lines {
            println!("{l}");
        }
    }
    let failures_note = if failures.is_empty() {
        String::new()
    } else {
        format!(" failed_trials={}", failures.len())
    };
    println!();
    println!(
        "RESULT qlen={jq} {} overall={}{failures_note}",
        summary.join(" "),
        verdict(all_ok && failures.is_empty() && partial.is_none())
    );
    all_ok && failures.is_empty() && partial.is_none()
}

// ---------------------------------------------------------------------------
// Main
// ---------------------------------------------------------------------------

fn run(opts: &Options) -> Result<bool, Error> {
    let stop = Arc::new(AtomicBool::new(false));
    for sig in [SIGINT, SIGTERM, SIGHUP] {
        signal_hook::flag::register(sig, Arc::clone(&stop))
            .map_err(|e| failed(format!("installing the handler of signal {sig}: {e}")))?;
    }
    let r = bench(opts, &stop);
    if stop.load(Ordering::Relaxed) {
        return Err(Error::Interrupted);
    }
    r
}

/// The CPU the switch is pinned to (the generator and this driver run on
/// another one), when pinning is on.
static SWITCH_CPU: std::sync::OnceLock<usize> = std::sync::OnceLock::new();

/// Pins this process (the generator; children inherit it) to the first
/// CPU it may use and records the second for the switch. Returns a note
/// for the report.
fn pin_cpus(opts: &Options) -> Result<String, Error> {
    if !opts.pin {
        return Ok("not pinned (--no-pin)".into());
    }
    let me = Pid::from_raw(0);
    let allowed = sched_getaffinity(me).map_err(|e| failed(format!("sched_getaffinity: {e}")))?;
    let cpus: Vec<usize> = (0..CpuSet::count())
        .filter(|&c| allowed.is_set(c).unwrap_or(false))
        .take(2)
        .collect();
    let [gen_cpu, sw_cpu] = cpus[..] else {
        return Ok("not pinned (fewer than two CPUs available)".into());
    };
    let mut set = CpuSet::new();
    set.set(gen_cpu)
        .map_err(|e| failed(format!("cpu {gen_cpu}: {e}")))?;
    sched_setaffinity(me, &set)
        .map_err(|e| failed(format!("pinning the generator to CPU {gen_cpu}: {e}")))?;
    let _ = SWITCH_CPU.set(sw_cpu);
    Ok(format!(
        "generator on CPU {gen_cpu}, switch on CPU {sw_cpu}"
    ))
}

fn bench(opts: &Options, stop: &Arc<AtomicBool>) -> Result<bool, Error> {
    let pinning = pin_cpus(opts)?;
    eprintln!("bench-switch: {pinning}");
    let qlen = QlenGuard::new(opts)?;
    let tick = match sysconf(SysconfVar::CLK_TCK) {
        Ok(Some(t)) if t > 0 => t as f64,
        _ => 100.0,
    };
    let ctx = Ctx {
        opts,
        qlen: std::sync::atomic::AtomicUsize::new(read_qlen()? as usize),
        watchdog: Watchdog::start()
            .map_err(|e| failed(format!("starting the watchdog thread: {e}")))?,
        stop: Arc::clone(stop),
        tick,
    };
    let subjects = [
        Subject {
            label: "C",
            path: opts.c.clone(),
        },
        Subject {
            label: "ours",
            path: opts.ours.clone(),
        },
    ];
    let planned = opts.planned();
    let budget = Duration::from_secs(
        opts.max_seconds
            .unwrap_or_else(|| planned.as_secs() * 3 / 2 + 60),
    );
    let total_runs = 2 * opts.trials * opts.qlens.len() * opts.ports.len();
    eprintln!(
        "bench-switch: {total_runs} switch runs (qlen {:?} x ports {:?} x {} trials x 2 switches), about {} s; bound {} s",
        opts.qlens,
        opts.ports,
        opts.trials,
        planned.as_secs(),
        budget.as_secs()
    );
    let started = Instant::now();
    let mut results: Results = BTreeMap::new();
    let mut ceilings: Ceilings = BTreeMap::new();
    let mut floors: Ceilings = BTreeMap::new();
    let mut partial: Option<String> = None;
    let mut run_no = 0usize;
    let mut retried = 0usize;
    // Repeats are bounded in all, too: a machine busy for the whole run
    // must not double its length.
    let retry_budget = total_runs / 5;
    'all: for &q in &opts.qlens {
        qlen.set(q)?;
        ctx.qlen.store(q as usize, Ordering::Relaxed);
        for &n in &opts.ports {
            for t in 0..opts.trials {
                let order: [usize; 2] = if t % 2 == 0 { [0, 1] } else { [1, 0] };
                for si in order {
                    ctx.check_stop()?;
                    if started.elapsed() > budget {
                        partial = Some(format!(
                            "the run exceeded its bound of {} s (--max-seconds) at qlen {q}, N={n}, trial {}",
                            budget.as_secs(),
                            t + 1
                        ));
                        break 'all;
                    }
                    run_no += 1;
                    let mut attempt = 0;
                    let outcome = loop {
                        attempt += 1;
                        let tag = format!("{}-{run_no}-{attempt}", std::process::id());
                        let outcome = run_trial(&ctx, &subjects[si], n, &tag)?;
                        let other = match &outcome {
                            Outcome::Ok(d) => {
                                d.unicast_cpu.other_pct.max(d.broadcast_cpu.other_pct)
                            }
                            Outcome::Failed(_) => 0.0,
                        };
                        let disturbed = other > opts.max_other;
                        eprintln!(
                            "[{run_no}/{total_runs} {:>5.0}s] qlen {q} N={n} trial {} {:<4} {}{}",
                            started.elapsed().as_secs_f64(),
                            t + 1,
                            subjects[si].label,
                            match &outcome {
                                Outcome::Ok(d) => trial_line(d),
                                Outcome::Failed(msg) => format!("FAILED: {msg}"),
                            },
                            if disturbed && attempt <= opts.retries && retried < retry_budget {
                                format!(
                                    " -- disturbed (other CPU {other:.0}% > {:.0}%), again",
                                    opts.max_other
                                )
                            } else {
                                String::new()
                            }
                        );
                        let may_retry = attempt <= opts.retries && retried < retry_budget;
                        if !disturbed || !may_retry || started.elapsed() > budget {
                            break match outcome {
                                Outcome::Ok(mut d) if disturbed => {
                                    d.notes.push(format!(
                                        "kept although disturbed: other processes used {other:.0}% of a core"
                                    ));
                                    Outcome::Ok(d)
                                }
                                o => o,
                            };
                        }
                        retried += 1;
                    };
                    results
                        .entry((q, n))
                        .or_insert_with(|| [Vec::new(), Vec::new()])[si]
                        .push(outcome);
                }
                if !opts.ceiling.is_zero() {
                    let tag = format!("{}-{run_no}-alone", std::process::id());
                    let (rate, cpu) = run_ceiling(&ctx, n, &tag)?;
                    eprintln!(
                        "[{:>5.0}s] qlen {q} N={n} trial {} generator alone (no switch): unicast {} fr/s, cpu {}%",
                        started.elapsed().as_secs_f64(),
                        t + 1,
                        kfps(rate),
                        num(cpu, 0)
                    );
                    ceilings.entry((q, n)).or_default().push(rate);
                }
                if let Some(path) = &opts.floor {
                    let tag = format!("{}-{run_no}-floor", std::process::id());
                    let floor = Subject {
                        label: "floor",
                        path: path.clone(),
                    };
                    match run_trial(&ctx, &floor, n, &tag)? {
                        Outcome::Ok(d) => {
                            eprintln!(
                                "[{:>5.0}s] qlen {q} N={n} trial {} floor switch: unicast {} fr/s, switch cpu {}%",
                                started.elapsed().as_secs_f64(),
                                t + 1,
                                kfps(d.unicast.rate()),
                                num(d.unicast_cpu.switch_pct, 0)
                            );
                            floors.entry((q, n)).or_default().push(d.unicast.rate());
                        }
                        Outcome::Failed(msg) => eprintln!(
                            "[{:>5.0}s] qlen {q} N={n} trial {} floor switch FAILED: {msg}",
                            started.elapsed().as_secs_f64(),
                            t + 1
                        ),
                    }
                }
            }
        }
    }
    drop(qlen);
    eprintln!(
        "bench-switch: done in {:.0} s ({retried} disturbed trials run again)",
        started.elapsed().as_secs_f64()
    );
    Ok(report(
        opts,
        &subjects,
        &results,
        &ceilings,
        &floors,
        partial.as_deref(),
    ))
}

fn main() -> ExitCode {
    let result = parse_args(std::env::args_os().skip(1).collect()).and_then(|o| {
        let enforce = o.enforce;
        run(&o).map(|ok| ok || !enforce)
    });
    match result {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::from(1),
        Err(Error::Interrupted) => {
            eprintln!("bench-switch: interrupted; switch stopped, temp dir removed");
            ExitCode::from(130)
        }
        Err(e) => {
            eprintln!("bench-switch: {e}");
            ExitCode::from(2)
        }
    }
}
