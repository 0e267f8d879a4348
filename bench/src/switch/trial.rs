//! One trial: a fresh switch, N ports, learning, warm-up, the timed
//! unicast and broadcast phases, ping-pong, then the switch stopped
//! ([`run_trial`]); and the generator alone, without a switch
//! ([`run_ceiling`]).

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use super::args::Options;
use super::cpu::{Cpu, CpuMeter};
use super::guard::{StderrSummary, SwitchProc};
use crate::driver::{failed, Error};
use crate::switchload::{
    build_frame, cpu_ticks, port_mac, BlastParams, BlastResult, Flow, Generator, Phase, BROADCAST,
};
use crate::watchdog::Watchdog;

/// Bound of the switch's reply to a port's request.
pub(crate) const REPLY_TIMEOUT: Duration = Duration::from_secs(3);
/// Bound of each learning broadcast's deliveries.
pub(crate) const LEARN_TIMEOUT: Duration = Duration::from_secs(1);
/// Untimed unicast before the timed phases.
pub(crate) const WARMUP: Duration = Duration::from_millis(200);
/// Bound of one ping-pong round trip.
pub(crate) const PINGPONG_TIMEOUT: Duration = Duration::from_millis(500);
/// Round trips discarded before the timed ones.
pub(crate) const PINGPONG_WARMUP: usize = 100;
/// Ping-pong ends after this many lost frames.
pub(crate) const PINGPONG_MAX_LOST: u64 = 5;
/// SIGTERM to SIGKILL.
pub(crate) const STOP_TIMEOUT: Duration = Duration::from_secs(2);
/// A drain ends after this long without a frame...
pub(crate) const DRAIN_QUIET: Duration = Duration::from_millis(30);
/// ... or after this long in all.
pub(crate) const MAX_DRAIN: Duration = Duration::from_secs(1);

/// What a successful trial measured.
#[derive(Debug, Clone)]
pub(crate) struct TrialData {
    pub(crate) unicast: BlastResult,
    pub(crate) unicast_cpu: Cpu,
    pub(crate) broadcast: BlastResult,
    pub(crate) broadcast_cpu: Cpu,
    pub(crate) rtt: Vec<u64>,
    pub(crate) rtt_lost: u64,
    pub(crate) notes: Vec<String>,
    pub(crate) stderr: StderrSummary,
}

/// A trial's result: its data, or why it failed.
#[derive(Debug, Clone)]
pub(crate) enum Outcome {
    Ok(Box<TrialData>),
    Failed(String),
}

/// A switch program under test.
#[derive(Debug)]
pub(crate) struct Subject {
    pub(crate) label: &'static str,
    pub(crate) path: PathBuf,
}

/// What every trial of a run shares.
pub(crate) struct Ctx<'a> {
    pub(crate) opts: &'a Options,
    /// The qlen in force (sockets created now get it).
    pub(crate) qlen: AtomicUsize,
    pub(crate) watchdog: Watchdog,
    pub(crate) stop: Arc<AtomicBool>,
    pub(crate) tick: f64,
}

impl Ctx<'_> {
    pub(crate) fn check_stop(&self) -> Result<(), Error> {
        if self.stop.load(Ordering::Relaxed) {
            Err(Error::Interrupted)
        } else {
            Ok(())
        }
    }

    /// How the generator sends in `phase`: for `duration`, each frame to
    /// `fanout` receivers, as the options say.
    fn blast_params(&self, phase: Phase, duration: Duration, fanout: u64) -> BlastParams {
        let opts = self.opts;
        BlastParams {
            phase,
            duration,
            rate: opts.rate,
            fanout,
            burst: opts.burst,
            credit: opts.credit,
            slack: opts.slack,
            round_max: opts.round_max,
            recv_queue: self.qlen.load(Ordering::Relaxed),
            spin: opts.spin,
            sendmmsg: opts.sendmmsg,
            quiet: DRAIN_QUIET,
            max_drain: MAX_DRAIN,
        }
    }

    /// The unicast flows of `n` ports in `phase`: port 2i to port 2i+1's
    /// MAC.
    fn unicast_pairs(&self, n: usize, phase: Phase) -> Vec<Flow> {
        (0..n / 2)
            .map(|i| Flow {
                from: 2 * i,
                frame: build_frame(
                    self.opts.frame_size,
                    port_mac(2 * i + 1),
                    port_mac(2 * i),
                    phase,
                    0,
                ),
            })
            .collect()
    }
}

pub(crate) fn run_trial(
    ctx: &Ctx<'_>,
    subject: &Subject,
    n: usize,
    tag: &str,
) -> Result<Outcome, Error> {
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

    let pairs = ctx.unicast_pairs(n, Phase::Warmup);
    let params = |phase, duration, fanout| ctx.blast_params(phase, duration, fanout);
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
pub(crate) fn run_ceiling(ctx: &Ctx<'_>, n: usize, tag: &str) -> Result<(f64, f64), Error> {
    let opts = ctx.opts;
    let mut gen = Generator::direct(tag, n).map_err(failed)?;
    let mut flows = ctx.unicast_pairs(n, Phase::Unicast);
    let params = ctx.blast_params(Phase::Unicast, opts.ceiling, 1);
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
