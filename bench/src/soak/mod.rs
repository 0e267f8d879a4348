//! `soak-switch` (`bench/src/bin/soak-switch.rs` calls [`main`];
//! `scripts/soak-switch` builds and runs it): `uml_switch` under churn for
//! a bounded time (30 minutes by default), sampled every few seconds, with
//! a verdict on whether its memory, descriptors and ports stay flat.
//!
//! Method:
//! 1. The switch (`uml_switch -unix DIR/ctl --bess DIR/bess --mgmt
//!    DIR/mgmt`, the release build beside this program, or `--switch`)
//!    starts in a private temporary directory (the tests'
//!    `RunningSwitch`).
//! 2. A steady pair of daemon ports (the load generator's
//!    [`crate::switchload::Port`]) and stalled receivers (daemon, bess and
//!    vde clients that never read) connect; the `base` sample is taken.
//! 3. Workers start ([`clients`]): daemon clients (v1, v3, short v3
//!    requests), bess clients and vde clients connecting and leaving in
//!    rounds, MAC floods (thousands of random source MACs a second, purged
//!    when the flooding port leaves), stalled receivers that come and go,
//!    and hostile requests (malformed control requests, garbage on the
//!    bess, management and data sockets) — while the steady pair moves
//!    tagged frames both ways.
//! 4. Every `--interval` seconds: `VmRSS`/`VmHWM` (`/proc/PID/status`),
//!    descriptors (`/proc/PID/fd`), entries of the switch's directory, and
//!    over the management socket `json ports`, `json counters` and `json
//!    macs` (`docs/mgmt.md`). Samples of the first `--warmup` seconds are
//!    marked `warmup`, the others `churn`.
//! 5. At the end the workers stop and their clients leave; once the switch
//!    is back to the baseline's port count (bounded wait) the `quiet`
//!    sample is taken.
//! 6. Verdict ([`sample::judge`]): RSS flat (median of the late window ≤
//!    median of the early window + `--rss-tolerance` % + 1 MiB), descriptors, ports, socket files and
//!    MAC table back to the baseline, the steady pair never stalled, no
//!    client error, the switch alive.
//!
//! Output: `OUT/soak.csv` (one row per sample), `OUT/summary.txt` (also
//! printed). Exit status 0 when the verdict passes, 1 when it fails, 2 on
//! errors, 130 when interrupted.

pub mod clients;
pub mod sample;

use std::ffi::OsString;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

use clap::{ArgMatches, Command};
use uml_integration_tests::switch_client::{new_temp_dir, RunningSwitch, SwitchMode, SWITCH_ENV};

use self::clients::{Load, Shared, Sockets};
use self::sample::{judge, mgmt_json, proc_figures, summary, Sample, Tolerance, CSV_HEADER};
use crate::args::{flag, get, get_or, given, int, opt, path_opt, require_file, secs, BUILD_HINT};
use crate::driver::{failed, sibling, Error};

/// The options.
#[derive(Debug, Clone)]
pub struct Options {
    /// How long the churn runs.
    pub duration: Duration,
    /// Time between samples.
    pub interval: Duration,
    /// Samples before this are not judged.
    pub warmup: Duration,
    /// The switch binary.
    pub switch: PathBuf,
    /// Where the CSV and summary go.
    pub out: PathBuf,
    /// How much churn.
    pub load: Load,
    /// Stalled receivers of each kind kept for the whole run.
    pub stalled: usize,
    /// The verdict's tolerances.
    pub tolerance: Tolerance,
    /// Print every sample on stderr.
    pub quiet: bool,
}

/// The command line.
pub fn command() -> Command {
    Command::new("soak-switch")
        .about(
            "Soak test of uml_switch: hundreds of daemon, bess and vde clients connecting and \
             leaving, MAC floods, stalled receivers and hostile requests while a steady pair \
             moves frames; RSS, descriptors, ports and the MAC table are sampled and must stay \
             flat. Writes OUT/soak.csv and OUT/summary.txt; exit 0 when the verdict passes, 1 \
             when it fails, 2 on errors.",
        )
        .arg(
            opt("minutes", "N", "churn for N minutes (default 30)")
                .value_parser(int(1u64, 24 * 60)),
        )
        .arg(
            opt(
                "seconds",
                "N",
                "churn for N seconds instead (overrides --minutes)",
            )
            .value_parser(int(3u64, 24 * 3600)),
        )
        .arg(
            opt("interval", "SECONDS", "time between samples (default 5)")
                .value_parser(secs(0.2, 600.0, false)),
        )
        .arg(
            opt(
                "warmup",
                "SECONDS",
                "samples before this are not judged (default: a fifth of the run, at most 120)",
            )
            .value_parser(secs(0.0, 3600.0, true)),
        )
        .arg(path_opt(
            "switch",
            "the switch to soak (default: uml_switch beside this program)",
        ))
        .arg(path_opt(
            "out",
            "directory for soak.csv and summary.txt (default: soak-out)",
        ))
        .arg(
            opt(
                "daemon-clients",
                "N",
                "daemon clients per round (default 100)",
            )
            .value_parser(int(0usize, 2000)),
        )
        .arg(
            opt("bess-clients", "N", "bess clients per round (default 20)")
                .value_parser(int(0usize, 500)),
        )
        .arg(
            opt("vde-clients", "N", "vde clients per round (default 20)")
                .value_parser(int(0usize, 500)),
        )
        .arg(
            opt(
                "flood-macs",
                "N",
                "random source MACs per flood, sent in about a second (default 2000)",
            )
            .value_parser(int(0usize, 100_000)),
        )
        .arg(
            opt(
                "stalled",
                "N",
                "stalled receivers of each kind (daemon, bess, vde; default 4)",
            )
            .value_parser(int(0usize, 100)),
        )
        .arg(
            opt(
                "rate",
                "FPS",
                "frames/s of the steady pair, both ways together (default 2000)",
            )
            .value_parser(int(100u64, 1_000_000)),
        )
        .arg(
            opt(
                "rss-tolerance",
                "PCT",
                "allowed RSS growth from the early to the late window (default 10)",
            )
            .value_parser(int(0u64, 1000)),
        )
        .arg(flag("quiet", "do not print each sample on stderr"))
}

impl Options {
    /// The options from parsed arguments.
    ///
    /// # Errors
    ///
    /// When the switch binary is missing.
    pub fn from_matches(m: &ArgMatches) -> Result<Options, Error> {
        let duration = match get::<u64>(m, "seconds") {
            Some(s) => Duration::from_secs(s),
            None => Duration::from_secs(60 * get_or(m, "minutes", 30u64)),
        };
        let interval = get_or(m, "interval", Duration::from_secs(5));
        let warmup =
            get(m, "warmup").unwrap_or_else(|| (duration / 5).min(Duration::from_secs(120)));
        let switch = get(m, "switch").unwrap_or_else(|| sibling("uml_switch"));
        require_file("--switch", &switch, BUILD_HINT)?;
        let stalled = get_or(m, "stalled", 4usize);
        Ok(Options {
            duration,
            interval,
            warmup,
            switch,
            out: get_or(m, "out", PathBuf::from("soak-out")),
            load: Load {
                daemon: get_or(m, "daemon-clients", 100),
                bess: get_or(m, "bess-clients", 20),
                vde: get_or(m, "vde-clients", 20),
                flood_macs: get_or(m, "flood-macs", 2000),
                stalled: stalled.max(1),
                rate: get_or(m, "rate", 2000),
            },
            stalled,
            tolerance: Tolerance {
                rss_pct: get_or(m, "rss-tolerance", 10u64) as f64,
                ..Tolerance::default()
            },
            quiet: given(m, "quiet"),
        })
    }
}

/// Entries of a directory (0 when unreadable).
fn dir_entries(dir: &Path) -> u64 {
    fs::read_dir(dir).map(|d| d.count() as u64).unwrap_or(0)
}

/// What the descriptors of `pid` point to (`/proc/PID/fd`), counted by
/// kind (`socket`, `anon_inode:[eventpoll]`, files by path).
fn fd_targets(pid: u32) -> String {
    let mut kinds = std::collections::BTreeMap::<String, usize>::new();
    if let Ok(dir) = fs::read_dir(format!("/proc/{pid}/fd")) {
        for e in dir.flatten() {
            let target = fs::read_link(e.path())
                .map(|t| t.to_string_lossy().into_owned())
                .unwrap_or_default();
            let kind = match target.split_once(":[") {
                Some((k, _)) if k == "socket" || k == "pipe" => k.to_string(),
                _ => target,
            };
            *kinds.entry(kind).or_default() += 1;
        }
    }
    kinds
        .iter()
        .map(|(k, n)| format!("{n} x {k}"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// Takes one sample of the switch.
struct Sampler<'a> {
    sw: &'a RunningSwitch,
    mgmt: PathBuf,
    started: Instant,
    shared: &'a Shared,
    last_cpu: Option<(Instant, u64)>,
    tick: f64,
}

impl Sampler<'_> {
    fn take(&mut self, phase: &'static str) -> Result<Sample, String> {
        let pid = self.sw.pid();
        let (rss_kib, hwm_kib, fds) = proc_figures(pid)?;
        let t = Duration::from_secs(5);
        let ports = mgmt_json(&self.mgmt, "json ports", t)?;
        let counters = mgmt_json(&self.mgmt, "json counters", t)?;
        let macs_listed = match mgmt_json(&self.mgmt, "json macs", t) {
            Ok(v) => v["macs"].as_array().map_or(-1, |a| a.len() as i64),
            Err(e) => {
                self.shared.error("sampler: json macs", e);
                -1
            }
        };
        let c = |name: &str| counters["counters"][name].as_u64().unwrap_or(0);
        let now = Instant::now();
        let cpu = crate::switchload::cpu_ticks(Some(pid));
        let cpu_pct = match (self.last_cpu, cpu) {
            (Some((at, before)), Some(ticks)) => {
                let secs = now.duration_since(at).as_secs_f64().max(1e-3);
                ticks.saturating_sub(before) as f64 / self.tick / secs * 100.0
            }
            _ => 0.0,
        };
        if let Some(ticks) = cpu {
            self.last_cpu = Some((now, ticks));
        }
        let s = self.shared;
        Ok(Sample {
            t: self.started.elapsed().as_secs_f64(),
            phase,
            rss_kib,
            hwm_kib,
            fds,
            dir_entries: dir_entries(self.sw.dir()),
            ports: ports["ports"].as_array().map_or(0, |a| a.len() as u64),
            mac_entries: c("mac_entries"),
            macs_listed,
            frames_in: c("frames_in"),
            frames_out: c("frames_out"),
            dropped_queue_full: c("dropped_queue_full"),
            steady_sent: s.steady_sent.load(Ordering::Relaxed),
            steady_received: s.steady_received.load(Ordering::Relaxed),
            clients: s.clients.load(Ordering::Relaxed),
            hostile: s.hostile.load(Ordering::Relaxed),
            errors: s.errors.load(Ordering::Relaxed),
            cpu_pct,
        })
    }
}

/// Runs the soak; `Ok(true)` when the verdict passes.
///
/// # Errors
///
/// When the switch does not start, or the run is interrupted.
pub fn run(opts: &Options) -> Result<bool, Error> {
    let stop_signal = Arc::new(std::sync::atomic::AtomicBool::new(false));
    for sig in [
        signal_hook::consts::SIGINT,
        signal_hook::consts::SIGTERM,
        signal_hook::consts::SIGHUP,
    ] {
        signal_hook::flag::register(sig, Arc::clone(&stop_signal))
            .map_err(|e| failed(format!("signal handler: {e}")))?;
    }
    fs::create_dir_all(&opts.out).map_err(|e| failed(format!("{}: {e}", opts.out.display())))?;
    // The tests' RunningSwitch runs `$UML_SWITCH_UNDER_TEST`.
    std::env::set_var(SWITCH_ENV, &opts.switch);
    let dir = new_temp_dir();
    let socks = Sockets {
        ctl: dir.path().join("ctl"),
        bess: dir.path().join("bess"),
        mgmt: dir.path().join("mgmt"),
    };
    let args: Vec<OsString> = vec![
        "--bess".into(),
        socks.bess.clone().into(),
        "--mgmt".into(),
        socks.mgmt.clone().into(),
    ];
    let mut sw =
        RunningSwitch::start_in_with_args(dir, SwitchMode::default(), &args).map_err(failed)?;
    eprintln!(
        "soak-switch: {} (pid {}) for {} s, a sample every {:.1} s, warm-up {} s",
        opts.switch.display(),
        sw.pid(),
        opts.duration.as_secs(),
        opts.interval.as_secs_f64(),
        opts.warmup.as_secs()
    );
    let shared = Arc::new(Shared::default());
    let tag = format!("soak-{}", std::process::id());
    let pair = clients::steady_pair(&socks.ctl, &tag).map_err(failed)?;
    let data_to = Some(pair[0].switch.clone());
    let stalled = clients::stalled(&socks, opts.stalled).map_err(failed)?;

    let csv_path = opts.out.join("soak.csv");
    let mut csv = format!("{CSV_HEADER}\n");
    let mut samples: Vec<Sample> = Vec::new();
    let started = Instant::now();
    let mut sampler = Sampler {
        sw: &sw,
        mgmt: socks.mgmt.clone(),
        started,
        shared: &shared,
        last_cpu: None,
        tick: crate::procstat::clock_ticks(),
    };
    let record = |s: Sample, samples: &mut Vec<Sample>, csv: &mut String| {
        if !opts.quiet {
            eprintln!("{}", s.csv());
        }
        csv.push_str(&s.csv());
        csv.push('\n');
        let _ = fs::write(&csv_path, csv.as_bytes());
        samples.push(s);
    };
    if !opts.quiet {
        eprintln!("{CSV_HEADER}");
    }

    // The steady pair first: its MACs are learned before the baseline.
    let steady = {
        let shared = Arc::clone(&shared);
        let rate = opts.load.rate;
        thread::spawn(move || clients::steady(&shared, pair, rate))
    };
    let learned = uml_integration_tests::wait_until(Duration::from_secs(10), || {
        shared.steady_received.load(Ordering::Relaxed) > 10
    });
    if !learned {
        shared.stop.store(true, Ordering::Relaxed);
        let _ = steady.join();
        return Err(failed("the steady pair moved no frames"));
    }
    let base = sampler.take("base").map_err(failed)?;
    record(base, &mut samples, &mut csv);

    let mut workers = Vec::new();
    let spawn = |workers: &mut Vec<thread::JoinHandle<()>>, f: Box<dyn FnOnce(&Shared) + Send>| {
        let shared = Arc::clone(&shared);
        workers.push(thread::spawn(move || f(&shared)));
    };
    let load = opts.load;
    let seed = u64::from(std::process::id());
    if load.daemon > 0 {
        let ctl = socks.ctl.clone();
        spawn(
            &mut workers,
            Box::new(move |s| clients::daemon_churn(s, &ctl, load.daemon, seed)),
        );
    }
    if load.bess > 0 {
        let bess = socks.bess.clone();
        spawn(
            &mut workers,
            Box::new(move |s| clients::bess_churn(s, &bess, load.bess, seed + 1)),
        );
    }
    if load.vde > 0 {
        let ctl = socks.ctl.clone();
        spawn(
            &mut workers,
            Box::new(move |s| clients::vde_churn(s, &ctl, load.vde, seed + 2)),
        );
    }
    if load.flood_macs > 0 {
        let ctl = socks.ctl.clone();
        spawn(
            &mut workers,
            Box::new(move |s| clients::flood(s, &ctl, load.flood_macs, seed + 3)),
        );
    }
    {
        let s2 = socks.clone();
        spawn(
            &mut workers,
            Box::new(move |s| clients::stalled_churn(s, &s2, load.stalled, seed + 4)),
        );
    }
    {
        let s2 = socks.clone();
        spawn(
            &mut workers,
            Box::new(move |s| clients::hostile(s, &s2, data_to, seed + 5)),
        );
    }

    let churn_start = Instant::now();
    let mut next = churn_start + opts.interval;
    let mut interrupted = false;
    let mut alive = true;
    while churn_start.elapsed() < opts.duration {
        while Instant::now() < next {
            if stop_signal.load(Ordering::Relaxed) {
                interrupted = true;
                break;
            }
            thread::sleep(Duration::from_millis(50));
        }
        if interrupted {
            break;
        }
        next += opts.interval;
        let phase = if churn_start.elapsed() < opts.warmup {
            "warmup"
        } else {
            "churn"
        };
        match sampler.take(phase) {
            Ok(s) => record(s, &mut samples, &mut csv),
            Err(e) => {
                alive = false;
                shared.error("sampler", &e);
                break;
            }
        }
    }

    // Everyone but the steady pair and the stalled receivers leaves.
    shared.stop.store(true, Ordering::Relaxed);
    for w in workers {
        if w.join().is_err() {
            shared.error("worker", "panicked");
        }
    }
    let pair = steady
        .join()
        .map_err(|_| failed("the steady pair's thread panicked"))?;
    let mut notes: Vec<String> = Vec::new();
    let base_ports = samples.first().map_or(0, |s| s.ports);
    let base_fds = samples.first().map_or(0, |s| s.fds);
    if alive {
        // Bounded wait for the switch to notice every departure (and to
        // close the sampler's own management connections): the first
        // sample back at the baseline, or the last one taken.
        let deadline = Instant::now() + Duration::from_secs(15);
        let quiet = loop {
            match sampler.take("quiet") {
                Ok(s) if s.ports <= base_ports && s.fds <= base_fds => break Ok(s),
                Ok(s) if Instant::now() >= deadline => break Ok(s),
                Ok(_) => thread::sleep(Duration::from_millis(200)),
                Err(e) => break Err(e),
            }
        };
        match quiet {
            Ok(s) => {
                if s.fds > base_fds {
                    notes.push(format!(
                        "descriptors left after 15 s: {}",
                        fd_targets(sw.pid())
                    ));
                }
                record(s, &mut samples, &mut csv);
            }
            Err(e) => {
                alive = false;
                shared.error("sampler", e);
            }
        }
    }
    drop(sampler);
    alive &= sw.is_running();
    notes.splice(
        0..0,
        shared
            .first_errors
            .lock()
            .map(|v| v.clone())
            .unwrap_or_default(),
    );
    notes.push(format!(
        "flood frames sent {}; load: {} daemon, {} bess, {} vde clients per round, {} MACs per flood, {} stalled of each kind",
        shared.flood_frames.load(Ordering::Relaxed),
        load.daemon,
        load.bess,
        load.vde,
        load.flood_macs,
        opts.stalled
    ));
    if !alive {
        notes.push(format!("switch output:\n{}", sw.output_report()));
    }
    drop(pair);
    drop(stalled);
    if interrupted {
        return Err(Error::Interrupted);
    }
    let verdict = judge(&samples, opts.tolerance, alive);
    let text = summary(&samples, &verdict, &notes);
    print!("{text}");
    fs::write(opts.out.join("summary.txt"), &text)
        .map_err(|e| failed(format!("{}: {e}", opts.out.display())))?;
    Ok(verdict.pass)
}

/// `soak-switch` with `args` (without the program name).
pub fn main(args: impl IntoIterator<Item = OsString>) -> ExitCode {
    crate::args::main(
        "soak-switch",
        "switch stopped, temp dir removed",
        command(),
        args,
        Options::from_matches,
        |o| run(&o),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn options_and_defaults() {
        command().debug_assert();
        let parse = |a: &[&str]| match crate::args::parse(command(), a.iter().map(OsString::from)) {
            Ok(crate::args::Parsed::Run(m)) => m,
            _ => panic!("{a:?}"),
        };
        let m = parse(&["--switch", "/bin/sh", "--seconds", "10"]);
        let o = Options::from_matches(&m).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(o.duration, Duration::from_secs(10));
        assert_eq!(o.warmup, Duration::from_secs(2));
        assert_eq!(o.interval, Duration::from_secs(5));
        let m = parse(&["--switch", "/bin/sh"]);
        let o = Options::from_matches(&m).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(o.duration, Duration::from_secs(1800));
        assert_eq!(o.warmup, Duration::from_secs(120));
        assert_eq!(o.load.daemon, 100);
        assert!(Options::from_matches(&parse(&["--switch", "/nonexistent"])).is_err());
        assert!(crate::args::parse(command(), ["--seconds", "1"].map(OsString::from)).is_err());
    }
}
