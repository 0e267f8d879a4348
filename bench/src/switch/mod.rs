//! `bench-switch` (`bench/src/bin/bench-switch.rs` calls [`main`]):
//! frames/s, loss and round-trip latency of Debian's C `uml_switch` and
//! ours, side by side in one run.
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
//!
//! Modules: [`args`] (the command line), `guard` (the qlen setting and
//! the switch process, undone however a trial ends), `cpu` (CPU meters
//! and pinning), `trial` (one trial), `verdict` (medians and targets),
//! `report` (what is printed).

pub mod args;
mod cpu;
mod guard;
mod report;
mod trial;
mod verdict;

use std::collections::BTreeMap;
use std::ffi::OsString;
use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use signal_hook::consts::{SIGHUP, SIGINT, SIGTERM};

use self::args::Options;
use self::cpu::{clock_tick, pin_cpus};
use self::guard::{read_qlen, QlenGuard};
use self::report::{kfps, num, report, trial_line};
use self::trial::{run_ceiling, run_trial, Ctx, Outcome, Subject};
use crate::driver::{failed, Error};
use crate::watchdog::Watchdog;

/// Per (qlen, port count): the outcomes of C's trials and of ours.
type Results = BTreeMap<(u32, usize), [Vec<Outcome>; 2]>;
/// Per (qlen, port count): unicast frames/s of each trial round (the
/// generator alone, or the floor switch).
type Ceilings = BTreeMap<(u32, usize), Vec<f64>>;

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

fn bench(opts: &Options, stop: &Arc<AtomicBool>) -> Result<bool, Error> {
    let pinning = pin_cpus(opts)?;
    eprintln!("bench-switch: {pinning}");
    let qlen = QlenGuard::new(opts)?;
    let tick = clock_tick();
    let ctx = Ctx {
        opts,
        qlen: AtomicUsize::new(read_qlen()? as usize),
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

/// `bench-switch` with `args` (without the program name): the exit status
/// is 0 when measured (whatever the verdict), 1 with `--enforce` and a
/// target missed, 2 on errors, 130 when interrupted.
pub fn main(args: impl IntoIterator<Item = OsString>) -> ExitCode {
    crate::args::main(
        "bench-switch",
        "switch stopped, temp dir removed",
        args::command(),
        args,
        Options::from_matches,
        |o| {
            let enforce = o.enforce;
            run(&o).map(|ok| ok || !enforce)
        },
    )
}
