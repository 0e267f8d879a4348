//! `bench-mconsole`: times `uml_mconsole SOCKET version` as whole processes
//! against a fake mconsole server, our client and Debian's C client side by
//! side in one run, and reports median per-call time and peak RSS of both.
//!
//! Targets (issue): ours ≤ 0.8 × C's median time, ours' peak RSS ≤ C's.
//!
//! Method:
//! 1. `fake-mconsole` is started in a fresh temp dir that doubles as `$HOME`
//!    of the clients: its socket is `$HOME/.uml/bench/mconsole` with a pid
//!    file beside it, so `uml_mconsole bench version` finds it at the first
//!    place it looks, printing no warnings (`--abs-path` passes the socket's
//!    absolute path instead).
//! 2. Verification: every client runs `--verify` times with stdout captured;
//!    each call must exit 0 and print exactly `OK <version text>\n`.
//! 3. Timing: after a warm-up, each client runs `--calls` times, interleaved
//!    in batches (C, ours, floor, ours, C, floor, …) so that machine noise hits
//!    all alike. Wall time of spawn + exit + reap per call, stdout and stderr
//!    to /dev/null, every exit status checked.
//! 4. Peak RSS: `--rss-runs` runs per client (interleaved) under GNU
//!    `time -f %M`, i.e. each process's `ru_maxrss` from `wait4`; the median
//!    over runs is compared, the maximum shown.
//!
//! The floor row (`/bin/true`, `--floor`) shows what spawning any dynamically
//! linked program costs on this machine; it is not part of the verdict.
//!
//! Every process gets its own process group and a deadline (`--timeout-ms`);
//! a watchdog thread kills the group when it passes. The server is bounded by
//! `--max-seconds`. The server and the temp dir are removed on every exit
//! path, SIGINT/SIGTERM/SIGHUP included (not on SIGKILL: the server then
//! still exits at its deadline and removes its socket).
//!
//! Exit status: 0 when measured (whatever the verdict), 1 when `--enforce`
//! is given and a target is missed, 2 on errors, 130 when interrupted.
#![forbid(unsafe_code)]

use std::ffi::OsString;
use std::fs::{self, File};
use std::io::{BufRead, BufReader, Read};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitCode, ExitStatus, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc;
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

use clap::{ArgMatches, Command as ClapCommand};
use nix::errno::Errno;
use nix::sys::signal::{kill, killpg, Signal};
use nix::sys::wait::{waitid, Id, WaitPidFlag};
use nix::unistd::Pid;
use signal_hook::consts::{SIGHUP, SIGINT, SIGTERM};
use uml_bench::args::{flag, get, get_or, given, int_min, opt, path_opt, require_file, BUILD_HINT};
use uml_bench::driver::{failed, io_ctx, sibling, Error};
use uml_bench::fake::expected_version_output;
use uml_bench::stats::{quantile_f64, sorted, summarize, Summary};
use uml_bench::watchdog::{Target, Watchdog};

const ABOUT: &str = "\
Times `uml_mconsole SOCKET version` (whole processes) for our client and
Debian's C client against a fake mconsole server, interleaved, and reports
median/p90 µs per call, peak RSS, the ratios ours/C and PASS/FAIL against
the targets (time ratio <= 0.80, RSS ratio <= 1.00).";

const UMID: &str = "bench";
const TIME_TARGET: f64 = 0.80;
const RSS_TARGET: f64 = 1.00;
const READY_TIMEOUT: Duration = Duration::from_secs(10);
const SERVER_STOP_TIMEOUT: Duration = Duration::from_secs(3);

// ---------------------------------------------------------------------------
// Options
// ---------------------------------------------------------------------------

#[derive(Debug)]
struct Options {
    ours: PathBuf,
    c: PathBuf,
    calls: usize,
    batch: usize,
    warmup: usize,
    verify: usize,
    rss_runs: usize,
    time: PathBuf,
    floor: Option<PathBuf>,
    abs_path: bool,
    timeout: Duration,
    /// `None`: derived from the planned number of runs.
    max_seconds: Option<u64>,
    server: PathBuf,
    hyperfine: bool,
    enforce: bool,
}

impl Options {
    /// The fake server's lifetime: `--max-seconds`, or 300 s plus 20 ms
    /// (about 20 times a normal call) per planned process run.
    fn server_seconds(&self) -> u64 {
        self.max_seconds.unwrap_or_else(|| {
            let per_subject = self.verify + self.warmup + self.calls + self.rss_runs;
            let runs = per_subject.saturating_mul(3) + if self.hyperfine { 2040 } else { 0 };
            300 + (runs as u64).saturating_mul(20) / 1000
        })
    }
}

/// The command line of `bench-mconsole`.
fn command() -> ClapCommand {
    ClapCommand::new("bench-mconsole")
        .about(ABOUT)
        .arg(path_opt(
            "ours",
            "our client (default: uml_mconsole beside this program, i.e. \
             target/x86_64-unknown-linux-gnu/release/uml_mconsole)",
        ))
        .arg(path_opt(
            "c",
            "the C client (default /usr/bin/uml_mconsole)",
        ))
        .arg(
            opt("calls", "N", "timed calls per client (default 2000)")
                .value_parser(int_min(1usize)),
        )
        .arg(
            opt("batch", "N", "calls per client per batch (default 20)")
                .value_parser(int_min(1usize)),
        )
        .arg(
            opt("warmup", "N", "untimed calls per client first (default 20)")
                .value_parser(int_min(0usize)),
        )
        .arg(
            opt(
                "verify",
                "N",
                "calls per client whose stdout is checked (default 50)",
            )
            .value_parser(int_min(1usize)),
        )
        .arg(
            opt(
                "rss-runs",
                "N",
                "runs per client under GNU time for peak RSS (default 200; 0 skips the RSS \
                 measurement)",
            )
            .value_parser(int_min(0usize)),
        )
        .arg(path_opt("time", "GNU time (default /usr/bin/time)"))
        .arg(
            path_opt(
                "floor",
                "reference program timed alongside (default /bin/true)",
            )
            .overrides_with("no-floor"),
        )
        .arg(flag("no-floor", "do not time a reference program").overrides_with("floor"))
        .arg(flag(
            "abs-path",
            "pass the socket's absolute path instead of a umid",
        ))
        .arg(
            opt(
                "timeout-ms",
                "N",
                "deadline of one client process (default 5000)",
            )
            .value_parser(int_min(1u64)),
        )
        .arg(
            opt(
                "max-seconds",
                "N",
                "lifetime bound of the fake server (default: 300 plus 20 ms per planned \
                 process run)",
            )
            .value_parser(int_min(1u64)),
        )
        .arg(path_opt(
            "server",
            "the fake server (default: fake-mconsole beside this program)",
        ))
        .arg(flag(
            "hyperfine",
            "also run hyperfine on both clients as a cross-check",
        ))
        .arg(flag("enforce", "exit 1 when a target is missed"))
}

/// The options `m` gives, with the defaults for the others.
fn options(m: &ArgMatches) -> Result<Options, Error> {
    let o = Options {
        ours: get_or(m, "ours", sibling("uml_mconsole")),
        c: get_or(m, "c", PathBuf::from("/usr/bin/uml_mconsole")),
        calls: get_or(m, "calls", 2000),
        batch: get_or(m, "batch", 20),
        warmup: get_or(m, "warmup", 20),
        verify: get_or(m, "verify", 50),
        rss_runs: get_or(m, "rss-runs", 200),
        time: get_or(m, "time", PathBuf::from("/usr/bin/time")),
        floor: if given(m, "no-floor") {
            None
        } else {
            Some(get_or(m, "floor", PathBuf::from("/bin/true")))
        },
        abs_path: given(m, "abs-path"),
        timeout: Duration::from_millis(get_or(m, "timeout-ms", 5000)),
        max_seconds: get(m, "max-seconds"),
        server: get_or(m, "server", sibling("fake-mconsole")),
        hyperfine: given(m, "hyperfine"),
        enforce: given(m, "enforce"),
    };
    require_file("--ours", &o.ours, BUILD_HINT)?;
    require_file("--c", &o.c, " (Debian package uml-utilities)")?;
    require_file("--server", &o.server, BUILD_HINT)?;
    if o.rss_runs > 0 && !o.time.is_file() {
        return Err(failed(format!(
            "{} missing: peak RSS needs GNU time (Debian package `time`); \
             pass --time PATH, or --rss-runs 0 to skip RSS",
            o.time.display()
        )));
    }
    Ok(o)
}

// ---------------------------------------------------------------------------
// Running children under the watchdog (uml_bench::watchdog)
// ---------------------------------------------------------------------------

/// A spawned process (leader of its own process group) under the watchdog.
/// Dropping it unfinished kills the group and reaps the process.
struct Running<'a> {
    child: Child,
    pid: Pid,
    watchdog: &'a Watchdog,
    reaped: bool,
}

impl<'a> Running<'a> {
    fn new(child: Child, watchdog: &'a Watchdog, deadline: Instant) -> Result<Self, Error> {
        let raw = i32::try_from(child.id()).map_err(io_ctx("child pid"))?;
        let pid = Pid::from_raw(raw);
        watchdog.arm(Target::Group(pid), deadline);
        Ok(Running {
            child,
            pid,
            watchdog,
            reaped: false,
        })
    }

    /// Waits for the exit (bounded by the watchdog), then reaps. Fails if
    /// the deadline passed.
    fn finish(&mut self, what: &str) -> Result<ExitStatus, Error> {
        // Wait without reaping, so that the watchdog never signals a
        // recycled process group.
        loop {
            match waitid(
                Id::Pid(self.pid),
                WaitPidFlag::WEXITED | WaitPidFlag::WNOWAIT,
            ) {
                Ok(_) => break,
                Err(Errno::EINTR) => continue,
                Err(e) => return Err(failed(format!("waiting for {what}: {e}"))),
            }
        }
        let killed = self.watchdog.disarm();
        let status = self
            .child
            .wait()
            .map_err(io_ctx(format!("reaping {what}")))?;
        self.reaped = true;
        if killed {
            return Err(failed(format!(
                "{what}: no exit within the deadline; killed"
            )));
        }
        Ok(status)
    }
}

impl Drop for Running<'_> {
    fn drop(&mut self) {
        if !self.reaped {
            let _ = killpg(self.pid, Signal::SIGKILL);
            let _ = self.child.wait();
            self.watchdog.disarm();
        }
    }
}

struct Outcome {
    status: ExitStatus,
    elapsed: Duration,
    stdout: Vec<u8>,
}

/// Runs `cmd` once: spawn, (read its stdout if piped), wait, reap; the
/// elapsed time covers all of it.
fn run_once(
    cmd: &mut Command,
    watchdog: &Watchdog,
    timeout: Duration,
    what: &str,
) -> Result<Outcome, Error> {
    let start = Instant::now();
    let child = cmd.spawn().map_err(io_ctx(format!("starting {what}")))?;
    let mut running = Running::new(child, watchdog, start + timeout)?;
    let mut stdout = Vec::new();
    if let Some(mut pipe) = running.child.stdout.take() {
        pipe.read_to_end(&mut stdout)
            .map_err(io_ctx(format!("reading the output of {what}")))?;
    }
    let status = running.finish(what)?;
    let elapsed = start.elapsed();
    Ok(Outcome {
        status,
        elapsed,
        stdout,
    })
}

// ---------------------------------------------------------------------------
// Fake server
// ---------------------------------------------------------------------------

/// The running fake server; stopped (SIGTERM, then SIGKILL) when dropped.
struct Server {
    child: Child,
}

impl Server {
    fn start(opts: &Options, socket: &Path) -> Result<Self, Error> {
        let mut child = Command::new(&opts.server)
            .arg("--max-seconds")
            .arg(opts.server_seconds().to_string())
            .arg(socket)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            // Its own group: a terminal's ^C reaches only the driver, which
            // then stops the server in order.
            .process_group(0)
            .spawn()
            .map_err(io_ctx(format!("starting {}", opts.server.display())))?;
        let stdout = child.stdout.take();
        let server = Server { child };
        let Some(stdout) = stdout else {
            return Err(failed("fake server: no stdout pipe"));
        };
        let (tx, rx) = mpsc::channel();
        // Ends at EOF, i.e. when the server exits.
        thread::Builder::new()
            .name("server-stdout".into())
            .spawn(move || {
                for line in BufReader::new(stdout).lines() {
                    let Ok(line) = line else { return };
                    if tx.send(line).is_err() {
                        return;
                    }
                }
            })
            .map_err(io_ctx("starting the server reader thread"))?;
        match rx.recv_timeout(READY_TIMEOUT) {
            Ok(line) if line == "ready" => Ok(server),
            Ok(line) => Err(failed(format!(
                "fake server said {line:?} instead of ready"
            ))),
            Err(mpsc::RecvTimeoutError::Timeout) => Err(failed(format!(
                "fake server not ready within {READY_TIMEOUT:?}"
            ))),
            Err(mpsc::RecvTimeoutError::Disconnected) => {
                Err(failed("fake server exited before it was ready"))
            }
        }
    }

    fn pid(&self) -> u32 {
        self.child.id()
    }

    fn check_alive(&mut self) -> Result<(), Error> {
        match self.child.try_wait() {
            Ok(None) => Ok(()),
            Ok(Some(status)) => Err(failed(format!("fake server exited early ({status})"))),
            Err(e) => Err(failed(format!("fake server: {e}"))),
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            if let Ok(raw) = i32::try_from(self.child.id()) {
                let _ = kill(Pid::from_raw(raw), Signal::SIGTERM);
            }
            let deadline = Instant::now() + SERVER_STOP_TIMEOUT;
            while Instant::now() < deadline {
                match self.child.try_wait() {
                    Ok(None) => thread::sleep(Duration::from_millis(10)),
                    _ => return,
                }
            }
            let _ = self.child.kill();
        }
        let _ = self.child.wait();
    }
}

// ---------------------------------------------------------------------------
// The benchmark
// ---------------------------------------------------------------------------

struct Subject {
    label: &'static str,
    path: PathBuf,
    /// A client (verified, part of the verdict) rather than the floor.
    client: bool,
}

struct Setup<'a> {
    opts: &'a Options,
    home: PathBuf,
    socket_arg: OsString,
    watchdog: Watchdog,
    stop: Arc<AtomicBool>,
}

impl Setup<'_> {
    fn check_stop(&self) -> Result<(), Error> {
        if self.stop.load(Ordering::Relaxed) {
            Err(Error::Interrupted)
        } else {
            Ok(())
        }
    }

    /// `PROGRAM SOCKET version`, in its own process group, stdio to
    /// /dev/null.
    fn command(&self, program: &Path, prefix: &[&std::ffi::OsStr]) -> Command {
        let mut cmd = if let Some((first, rest)) = prefix.split_first() {
            let mut c = Command::new(first);
            c.args(rest).arg(program);
            c
        } else {
            Command::new(program)
        };
        cmd.arg(&self.socket_arg)
            .arg("version")
            .env("HOME", &self.home)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .process_group(0);
        cmd
    }
}

fn show(bytes: &[u8]) -> String {
    format!("{:?}", String::from_utf8_lossy(bytes))
}

fn verify(setup: &Setup<'_>, subjects: &[Subject]) -> Result<(), Error> {
    let expected = expected_version_output();
    let stderr_path = setup.home.join("verify.stderr");
    let mut noted = vec![false; subjects.len()];
    for _ in 0..setup.opts.verify {
        for (i, s) in subjects.iter().enumerate().filter(|(_, s)| s.client) {
            setup.check_stop()?;
            let stderr_file = File::create(&stderr_path).map_err(io_ctx(stderr_path.display()))?;
            let mut cmd = setup.command(&s.path, &[]);
            cmd.stdout(Stdio::piped()).stderr(stderr_file);
            let what = format!("{} ({})", s.label, s.path.display());
            let out = run_once(&mut cmd, &setup.watchdog, setup.opts.timeout, &what)?;
            let stderr = fs::read(&stderr_path).map_err(io_ctx(stderr_path.display()))?;
            if !out.status.success() || out.stdout != expected {
                return Err(failed(format!(
                    "verification of {what} failed: {}, stdout {}, stderr {}; expected exit 0 and stdout {}",
                    out.status,
                    show(&out.stdout),
                    show(&stderr),
                    show(&expected)
                )));
            }
            if !stderr.is_empty() && !noted[i] {
                noted[i] = true;
                eprintln!("note: {} writes to stderr: {}", s.label, show(&stderr));
            }
        }
    }
    Ok(())
}

/// Per subject: all timed samples (ns) and the median of each batch.
struct Timings {
    samples: Vec<Vec<u64>>,
    batch_medians: Vec<Vec<f64>>,
}

fn time_calls(setup: &Setup<'_>, subjects: &[Subject]) -> Result<Timings, Error> {
    let opts = setup.opts;
    let mut commands: Vec<Command> = subjects
        .iter()
        .map(|s| setup.command(&s.path, &[]))
        .collect();
    let what: Vec<String> = subjects
        .iter()
        .map(|s| format!("{} ({})", s.label, s.path.display()))
        .collect();
    let call = |cmd: &mut Command, what: &str| -> Result<Duration, Error> {
        setup.check_stop()?;
        let out = run_once(cmd, &setup.watchdog, opts.timeout, what)?;
        if !out.status.success() {
            return Err(failed(format!("{what} {}", out.status)));
        }
        Ok(out.elapsed)
    };
    for _ in 0..opts.warmup {
        for (cmd, w) in commands.iter_mut().zip(&what) {
            call(cmd, w)?;
        }
    }
    let mut t = Timings {
        samples: vec![Vec::with_capacity(opts.calls); subjects.len()],
        batch_medians: vec![Vec::new(); subjects.len()],
    };
    let mut remaining = opts.calls;
    let mut round = 0usize;
    while remaining > 0 {
        let n = remaining.min(opts.batch);
        // C, ours, floor, then ours, C, floor, …: neither client always
        // runs right after the other one's batch.
        let mut order: Vec<usize> = (0..subjects.len()).collect();
        if round % 2 == 1 && order.len() >= 2 {
            order.swap(0, 1);
        }
        for i in order {
            let mut batch = Vec::with_capacity(n);
            for _ in 0..n {
                let ns = call(&mut commands[i], &what[i])?.as_nanos();
                batch.push(u64::try_from(ns).unwrap_or(u64::MAX));
            }
            if let Some(sum) = summarize(&batch) {
                t.batch_medians[i].push(sum.median);
            }
            t.samples[i].extend(batch);
        }
        remaining -= n;
        round += 1;
    }
    Ok(t)
}

/// Peak RSS (KiB) of each run, per subject, from GNU time's `%M`.
fn measure_rss(setup: &Setup<'_>, subjects: &[Subject]) -> Result<Vec<Vec<u64>>, Error> {
    let opts = setup.opts;
    let out_file = setup.home.join("rss.txt");
    let prefix: Vec<&std::ffi::OsStr> = vec![
        opts.time.as_os_str(),
        "-f".as_ref(),
        "%M".as_ref(),
        "-o".as_ref(),
        out_file.as_os_str(),
    ];
    let mut rss = vec![Vec::with_capacity(opts.rss_runs); subjects.len()];
    for _ in 0..opts.rss_runs {
        for (i, s) in subjects.iter().enumerate() {
            setup.check_stop()?;
            let _ = fs::remove_file(&out_file);
            let mut cmd = setup.command(&s.path, &prefix);
            let what = format!("{} {} ({})", opts.time.display(), s.label, s.path.display());
            let out = run_once(&mut cmd, &setup.watchdog, opts.timeout, &what)?;
            if !out.status.success() {
                return Err(failed(format!("{what} {}", out.status)));
            }
            let text = fs::read_to_string(&out_file).map_err(io_ctx(out_file.display()))?;
            let kib = text
                .lines()
                .rev()
                .find(|l| !l.trim().is_empty())
                .and_then(|l| l.trim().parse::<u64>().ok())
                .ok_or_else(|| failed(format!("{what}: no %M figure in {text:?}")))?;
            rss[i].push(kib);
        }
    }
    Ok(rss)
}

fn shell_quote(s: &std::ffi::OsStr) -> String {
    format!("'{}'", s.to_string_lossy().replace('\'', "'\\''"))
}

fn run_hyperfine(setup: &Setup<'_>, subjects: &[Subject]) -> Result<(), Error> {
    let runs = setup.opts.calls.clamp(10, 1000);
    let mut cmd = Command::new("hyperfine");
    cmd.args(["-N", "--warmup", "20", "--runs", &runs.to_string()]);
    for s in subjects.iter().filter(|s| s.client) {
        cmd.arg("-n").arg(s.label).arg(format!(
            "{} {} version",
            shell_quote(s.path.as_os_str()),
            shell_quote(&setup.socket_arg)
        ));
    }
    cmd.env("HOME", &setup.home)
        .stdin(Stdio::null())
        .process_group(0);
    println!("\n== hyperfine cross-check ({runs} runs each)");
    let budget = setup.opts.timeout * u32::try_from(runs * 3).unwrap_or(u32::MAX);
    let out = run_once(&mut cmd, &setup.watchdog, budget, "hyperfine")?;
    if !out.status.success() {
        return Err(failed(format!("hyperfine {}", out.status)));
    }
    Ok(())
}

fn us(ns: f64) -> String {
    format!("{:.1}", ns / 1000.0)
}

fn verdict(ok: bool) -> &'static str {
    if ok {
        "PASS"
    } else {
        "FAIL"
    }
}

/// Prints the report; returns whether all targets were met.
fn report(
    opts: &Options,
    subjects: &[Subject],
    timings: &Timings,
    rss: &[Vec<u64>],
) -> Result<bool, Error> {
    let time: Vec<Summary> = timings
        .samples
        .iter()
        .map(|v| summarize(v).ok_or_else(|| failed("no timing samples")))
        .collect::<Result<_, _>>()?;
    let rss_sum: Vec<Option<Summary>> = rss.iter().map(|v| summarize(v)).collect();
    println!();
    println!("== uml_mconsole SOCKET version: whole processes against fake-mconsole");
    println!(
        "   {} timed calls per subject in batches of {} (interleaved), {} warm-up, {} verified",
        opts.calls, opts.batch, opts.warmup, opts.verify
    );
    if opts.rss_runs > 0 {
        println!(
            "   peak RSS = ru_maxrss of each process ({} runs under {} -f %M): median and max over runs",
            opts.rss_runs,
            opts.time.display()
        );
    }
    for s in subjects {
        println!("   {:<6} = {}", s.label, s.path.display());
    }
    println!();
    println!(
        "{:<7} {:>10} {:>10} {:>10} {:>10} {:>14} {:>13}",
        "", "median µs", "p90 µs", "min µs", "max µs", "RSS KiB (med)", "RSS KiB (max)"
    );
    for (i, s) in subjects.iter().enumerate() {
        let t = &time[i];
        let (rmed, rmax) = match rss_sum.get(i).copied().flatten() {
            Some(r) => (format!("{:.0}", r.median), format!("{:.0}", r.max)),
            None => ("-".into(), "-".into()),
        };
        println!(
            "{:<7} {:>10} {:>10} {:>10} {:>10} {:>14} {:>13}",
            s.label,
            us(t.median),
            us(t.p90),
            us(t.min),
            us(t.max),
            rmed,
            rmax
        );
    }
    // Subjects 0 and 1 are C and ours.
    let time_ratio = time[1].median / time[0].median;
    let p90_ratio = time[1].p90 / time[0].p90;
    let batch_ratios = sorted(
        timings.batch_medians[1]
            .iter()
            .zip(&timings.batch_medians[0])
            .map(|(o, c)| o / c),
    );
    let bq = |q| quantile_f64(&batch_ratios, q).unwrap_or(f64::NAN);
    let time_ok = time_ratio <= TIME_TARGET;
    println!();
    println!(
        "ours/C  time (median)  {time_ratio:.3}  target <= {TIME_TARGET:.2}  {}",
        verdict(time_ok)
    );
    println!(
        "        p90 ratio {p90_ratio:.3}; per-batch median ratios: median {:.3}, p10..p90 {:.3}..{:.3}",
        bq(0.5),
        bq(0.1),
        bq(0.9)
    );
    let rss_ratio = match (
        rss_sum.first().copied().flatten(),
        rss_sum.get(1).copied().flatten(),
    ) {
        (Some(c), Some(o)) => Some((o.median / c.median, o.max / c.max)),
        _ => None,
    };
    let rss_ok = match rss_ratio {
        Some((med, max)) => {
            let ok = med <= RSS_TARGET;
            println!(
                "ours/C  peak RSS (median)  {med:.3}  target <= {RSS_TARGET:.2}  {}   (max/max {max:.3})",
                verdict(ok)
            );
            ok
        }
        None => {
            println!("ours/C  peak RSS  not measured (--rss-runs 0)");
            true
        }
    };
    println!(
        "RESULT time_ratio={time_ratio:.3} rss_ratio={} time={} rss={}",
        rss_ratio.map_or("-".into(), |(m, _)| format!("{m:.3}")),
        verdict(time_ok),
        if rss_ratio.is_some() {
            verdict(rss_ok)
        } else {
            "SKIP"
        }
    );
    Ok(time_ok && rss_ok)
}

fn run(opts: &Options) -> Result<bool, Error> {
    let stop = Arc::new(AtomicBool::new(false));
    for sig in [SIGINT, SIGTERM, SIGHUP] {
        signal_hook::flag::register(sig, Arc::clone(&stop))
            .map_err(io_ctx(format!("installing the handler of signal {sig}")))?;
    }
    // A signal may make the current step fail first (e.g. a killed child):
    // report the interruption, not that failure.
    bench(opts, &stop).map_err(|e| {
        if stop.load(Ordering::Relaxed) {
            Error::Interrupted
        } else {
            e
        }
    })
}

fn bench(opts: &Options, stop: &Arc<AtomicBool>) -> Result<bool, Error> {
    // Declared before the server: dropped (removed) after it is stopped.
    let tmp = tempfile::Builder::new()
        .prefix("bench-mconsole.")
        .tempdir()
        .map_err(io_ctx("creating a temp dir"))?;
    let home = tmp.path().to_owned();
    let umid_dir = home.join(".uml").join(UMID);
    fs::create_dir_all(&umid_dir).map_err(io_ctx(umid_dir.display()))?;
    let socket = umid_dir.join("mconsole");
    let mut server = Server::start(opts, &socket)?;
    let pid_file = umid_dir.join("pid");
    fs::write(&pid_file, format!("{}\n", server.pid())).map_err(io_ctx(pid_file.display()))?;

    let setup = Setup {
        opts,
        socket_arg: if opts.abs_path {
            socket.clone().into_os_string()
        } else {
            UMID.into()
        },
        home,
        watchdog: Watchdog::start().map_err(io_ctx("starting the watchdog thread"))?,
        stop: Arc::clone(stop),
    };
    let mut subjects = vec![
        Subject {
            label: "C",
            path: opts.c.clone(),
            client: true,
        },
        Subject {
            label: "ours",
            path: opts.ours.clone(),
            client: true,
        },
    ];
    if let Some(floor) = &opts.floor {
        subjects.push(Subject {
            label: "floor",
            path: floor.clone(),
            client: false,
        });
    }

    eprintln!(
        "bench-mconsole: verifying ({} calls per client)",
        opts.verify
    );
    verify(&setup, &subjects)?;
    eprintln!(
        "bench-mconsole: timing ({} calls per subject, {} subjects)",
        opts.calls,
        subjects.len()
    );
    let timings = time_calls(&setup, &subjects)?;
    server.check_alive()?;
    let rss = if opts.rss_runs > 0 {
        eprintln!(
            "bench-mconsole: peak RSS ({} runs per subject)",
            opts.rss_runs
        );
        measure_rss(&setup, &subjects)?
    } else {
        Vec::new()
    };
    let ok = report(opts, &subjects, &timings, &rss)?;
    if opts.hyperfine {
        run_hyperfine(&setup, &subjects)?;
    }
    server.check_alive()?;
    drop(server);
    tmp.close().map_err(io_ctx("removing the temp dir"))?;
    Ok(ok)
}

fn main() -> ExitCode {
    uml_bench::args::main(
        "bench-mconsole",
        "server stopped, temp dir removed",
        command(),
        std::env::args_os().skip(1),
        options,
        |o| {
            let enforce = o.enforce;
            run(&o).map(|ok| ok || !enforce)
        },
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use uml_bench::args::{parse, Parsed};

    fn options_of(args: &[&str]) -> Result<Options, Error> {
        match parse(command(), args.iter().map(OsString::from))? {
            Parsed::Run(m) => options(&m),
            Parsed::Help(h) => panic!("help: {h}"),
        }
    }

    #[test]
    fn every_option() {
        command().debug_assert();
        let files = ["--ours", "/bin/sh", "--c", "/bin/sh", "--server", "/bin/sh"];
        let mut args = files.to_vec();
        args.extend([
            "--calls",
            "7",
            "--batch",
            "3",
            "--warmup",
            "0",
            "--verify",
            "2",
            "--rss-runs",
            "0",
            "--time",
            "/nonexistent/time",
            "--floor",
            "/bin/false",
            "--abs-path",
            "--timeout-ms",
            "100",
            "--max-seconds",
            "9",
            "--hyperfine",
            "--enforce",
        ]);
        let o = options_of(&args).unwrap();
        assert_eq!(
            (o.calls, o.batch, o.warmup, o.verify, o.rss_runs),
            (7, 3, 0, 2, 0)
        );
        assert_eq!(o.floor.as_deref(), Some(Path::new("/bin/false")));
        assert_eq!(
            (o.timeout, o.max_seconds),
            (Duration::from_millis(100), Some(9))
        );
        assert!(o.abs_path && o.hyperfine && o.enforce);
        let mut args = files.to_vec();
        args.extend(["--no-floor", "--rss-runs", "0"]);
        let o = options_of(&args).unwrap();
        assert_eq!((o.calls, o.batch, o.floor), (2000, 20, None));
        assert!(options_of(&[&files[..], &["--calls", "0"]].concat()).is_err());
        // GNU time is needed for RSS.
        let e = options_of(&[&files[..], &["--time", "/nonexistent/t"]].concat()).unwrap_err();
        assert!(e.to_string().contains("--rss-runs 0"), "{e}");
    }
}
