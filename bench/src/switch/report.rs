//! The report: per-trial lines while running, then the tables, the
//! failures and notes, the verdicts and the `RESULT` line.

use std::collections::BTreeMap;

use super::args::Options;
use super::cpu::{Cpu, SWITCH_CPU};
use super::trial::{Outcome, Subject, TrialData, PINGPONG_WARMUP};
use super::verdict::{figures, judge, median_at, ratio, verdict, Fig};
use super::{Ceilings, Results};
use crate::stats::quantile;

pub(crate) fn fold_digits(s: &str) -> String {
    s.chars()
        .map(|c| if c.is_ascii_digit() { '#' } else { c })
        .collect()
}

pub(crate) fn kfps(v: f64) -> String {
    if v.is_nan() {
        "-".into()
    } else {
        format!("{:.1}k", v / 1000.0)
    }
}

pub(crate) fn num(v: f64, prec: usize) -> String {
    if v.is_nan() {
        "-".into()
    } else {
        format!("{v:.prec$}")
    }
}

pub(crate) fn trial_line(d: &TrialData) -> String {
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

pub(crate) fn report(
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
