//! Figures (medians over a configuration's successful trials, with
//! `crate::stats`) and the verdicts against the targets.

use super::args::Options;
use super::cpu::Cpu;
use super::report::num;
use super::trial::{Outcome, TrialData};
use super::{Ceilings, Results};
use crate::stats::{median, quantile};
use crate::switchload::BlastResult;

pub(crate) const UNICAST_2_TARGET: f64 = 1.5;
pub(crate) const UNICAST_64_TARGET: f64 = 4.0;
pub(crate) const FLAT_TARGET: f64 = 0.8;

/// Median of the rates recorded for `key`; NaN when there are none.
pub(crate) fn median_at(rates: &Ceilings, key: (u32, usize)) -> f64 {
    rates
        .get(&key)
        .and_then(|v| median(v.iter().copied()))
        .unwrap_or(f64::NAN)
}

pub(crate) fn ratio(a: f64, b: f64) -> f64 {
    if b > 0.0 && !a.is_nan() {
        a / b
    } else {
        f64::NAN
    }
}

pub(crate) fn verdict(ok: bool) -> &'static str {
    if ok {
        "PASS"
    } else {
        "FAIL"
    }
}

/// Medians over the successful trials of one switch in one configuration.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Fig {
    pub(crate) ok: usize,
    pub(crate) failed: usize,
    pub(crate) uni_rate: f64,
    pub(crate) uni_loss: f64,
    pub(crate) uni_eagain: f64,
    pub(crate) uni_cpu: Cpu,
    pub(crate) uni_nspf: f64,
    pub(crate) bc_rate: f64,
    pub(crate) bc_loss: f64,
    pub(crate) bc_eagain: f64,
    pub(crate) bc_cpu: Cpu,
    pub(crate) bc_nspf: f64,
    pub(crate) p50: f64,
    pub(crate) p90: f64,
    pub(crate) p99: f64,
}

/// Switch CPU time per delivered frame, ns.
pub(crate) fn ns_per_frame(cpu: &Cpu, r: &BlastResult) -> f64 {
    if r.delivered == 0 {
        f64::NAN
    } else {
        cpu.switch_secs * 1e9 / r.delivered as f64
    }
}

pub(crate) fn figures(outcomes: &[Outcome]) -> Fig {
    let data: Vec<&TrialData> = outcomes
        .iter()
        .filter_map(|o| match o {
            Outcome::Ok(d) => Some(d.as_ref()),
            Outcome::Failed(_) => None,
        })
        .collect();
    let m = |f: &dyn Fn(&TrialData) -> f64| median(data.iter().map(|d| f(d))).unwrap_or(f64::NAN);
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

pub(crate) struct Verdicts {
    pub(crate) lines: Vec<String>,
    pub(crate) all_ok: bool,
    pub(crate) summary: Vec<String>,
}

pub(crate) fn judge(
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
