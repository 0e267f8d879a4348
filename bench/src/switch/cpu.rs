//! CPU: what the switch, the generator (this process) and everything else
//! on the machine used during a phase ([`CpuMeter`]), and the pinning of
//! the generator and the switch to two different CPUs.

use std::sync::OnceLock;
use std::time::Instant;

use nix::sched::{sched_getaffinity, sched_setaffinity, CpuSet};
use nix::unistd::{sysconf, Pid, SysconfVar};

use super::args::Options;
use crate::driver::{failed, Error};
use crate::switchload::{cpu_ticks, system_busy_ticks};

/// CPU used during a phase, in % of one core.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct Cpu {
    pub(crate) switch_pct: f64,
    pub(crate) gen_pct: f64,
    /// Everything else on the machine: other processes competing for the
    /// two cores.
    pub(crate) other_pct: f64,
    /// CPU time of the switch, seconds.
    pub(crate) switch_secs: f64,
}

/// Measures a phase: started before it, stopped after it.
#[derive(Debug)]
pub(crate) struct CpuMeter {
    pub(crate) pid: u32,
    pub(crate) tick: f64,
    pub(crate) sw: Option<u64>,
    pub(crate) gen: Option<u64>,
    pub(crate) all: Option<u64>,
    pub(crate) t: Instant,
}

impl CpuMeter {
    pub(crate) fn start(pid: u32, tick: f64) -> CpuMeter {
        CpuMeter {
            pid,
            tick,
            sw: cpu_ticks(Some(pid)),
            gen: cpu_ticks(None),
            all: system_busy_ticks(),
            t: Instant::now(),
        }
    }

    pub(crate) fn stop(self) -> Cpu {
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

/// The CPU the switch is pinned to (the generator and this driver run on
/// another one), when pinning is on.
pub(crate) static SWITCH_CPU: OnceLock<usize> = OnceLock::new();

/// Pins this process (the generator; children inherit it) to the first
/// CPU it may use and records the second for the switch. Returns a note
/// for the report.
pub(crate) fn pin_cpus(opts: &Options) -> Result<String, Error> {
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

/// Clock ticks per second (`CLK_TCK`), 100 when unknown.
pub(crate) fn clock_tick() -> f64 {
    match sysconf(SysconfVar::CLK_TCK) {
        Ok(Some(t)) if t > 0 => t as f64,
        _ => 100.0,
    }
}
