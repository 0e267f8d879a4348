//! What `soak-switch` samples and how it judges the samples: the switch's
//! memory and descriptors (`/proc/PID/status`, `/proc/PID/fd`), its ports
//! and MAC table over the management socket (`docs/mgmt.md`), the CSV
//! table and the verdict (a pure function of the samples, unit-tested).

use std::fmt::Write as _;
use std::io::{BufRead, BufReader, Write};
use std::os::unix::net::UnixStream;
use std::path::Path;
use std::time::Duration;

/// One row of the table.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Sample {
    /// Seconds since the switch started.
    pub t: f64,
    /// `base` (before the churn), `warmup`, `churn` or `quiet` (after
    /// every churning client left).
    pub phase: &'static str,
    /// `VmRSS`, KiB.
    pub rss_kib: u64,
    /// `VmHWM` (peak RSS), KiB.
    pub hwm_kib: u64,
    /// Entries of `/proc/PID/fd`.
    pub fds: u64,
    /// Entries of the switch's directory (sockets it made: ctl, bess,
    /// mgmt, vde per-port data sockets).
    pub dir_entries: u64,
    /// Ports (`json ports`).
    pub ports: u64,
    /// MAC table entries (`json counters`: `mac_entries`).
    pub mac_entries: u64,
    /// Rows of `json macs` (-1: the request failed).
    pub macs_listed: i64,
    /// Switch counters (`json counters`).
    pub frames_in: u64,
    /// See `frames_in`.
    pub frames_out: u64,
    /// See `frames_in`.
    pub dropped_queue_full: u64,
    /// Frames the steady pair sent.
    pub steady_sent: u64,
    /// Frames of the steady pair that arrived where they should.
    pub steady_received: u64,
    /// Churning clients that have connected so far (daemon, bess, vde,
    /// floods, stalled).
    pub clients: u64,
    /// Hostile requests made so far.
    pub hostile: u64,
    /// Errors seen by the clients so far.
    pub errors: u64,
    /// The switch's CPU use since the previous sample, % of one core.
    pub cpu_pct: f64,
}

/// The CSV header.
pub const CSV_HEADER: &str =
    "t_s,phase,rss_kib,hwm_kib,fds,dir_entries,ports,mac_entries,macs_listed,\
frames_in,frames_out,dropped_queue_full,steady_sent,steady_received,clients,hostile,errors,cpu_pct";

impl Sample {
    /// The CSV line (no newline).
    pub fn csv(&self) -> String {
        format!(
            "{:.1},{},{},{},{},{},{},{},{},{},{},{},{},{},{},{},{},{:.1}",
            self.t,
            self.phase,
            self.rss_kib,
            self.hwm_kib,
            self.fds,
            self.dir_entries,
            self.ports,
            self.mac_entries,
            self.macs_listed,
            self.frames_in,
            self.frames_out,
            self.dropped_queue_full,
            self.steady_sent,
            self.steady_received,
            self.clients,
            self.hostile,
            self.errors,
            self.cpu_pct
        )
    }

    /// Parses a line made by [`csv`](Self::csv) (the phase must be one of
    /// the four).
    pub fn parse_csv(line: &str) -> Option<Sample> {
        let f: Vec<&str> = line.trim_end().split(',').collect();
        if f.len() != CSV_HEADER.split(',').count() {
            return None;
        }
        let u = |i: usize| f.get(i).and_then(|v| v.parse::<u64>().ok());
        let phase = ["base", "warmup", "churn", "quiet"]
            .into_iter()
            .find(|p| *p == f[1])?;
        Some(Sample {
            t: f[0].parse().ok()?,
            phase,
            rss_kib: u(2)?,
            hwm_kib: u(3)?,
            fds: u(4)?,
            dir_entries: u(5)?,
            ports: u(6)?,
            mac_entries: u(7)?,
            macs_listed: f[8].parse().ok()?,
            frames_in: u(9)?,
            frames_out: u(10)?,
            dropped_queue_full: u(11)?,
            steady_sent: u(12)?,
            steady_received: u(13)?,
            clients: u(14)?,
            hostile: u(15)?,
            errors: u(16)?,
            cpu_pct: f[17].parse().ok()?,
        })
    }
}

/// `VmRSS` and `VmHWM` (KiB) of a `/proc/PID/status` text.
pub fn parse_status(text: &str) -> Option<(u64, u64)> {
    let field = |name: &str| {
        text.lines()
            .find_map(|l| l.strip_prefix(name))
            .and_then(|v| v.split_whitespace().next())
            .and_then(|v| v.parse::<u64>().ok())
    };
    Some((field("VmRSS:")?, field("VmHWM:")?))
}

/// `VmRSS`, `VmHWM` (KiB) and the descriptor count of process `pid`.
pub fn proc_figures(pid: u32) -> Result<(u64, u64, u64), String> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))
        .map_err(|e| format!("/proc/{pid}/status: {e}"))?;
    let (rss, hwm) =
        parse_status(&status).ok_or_else(|| format!("/proc/{pid}/status: no VmRSS/VmHWM"))?;
    let fds = std::fs::read_dir(format!("/proc/{pid}/fd"))
        .map_err(|e| format!("/proc/{pid}/fd: {e}"))?
        .count() as u64;
    Ok((rss, hwm, fds))
}

/// Sends one management request (`docs/mgmt.md`, e.g. `json counters`) and
/// returns the JSON answer, bounded by `timeout`.
pub fn mgmt_json(
    path: &Path,
    request: &str,
    timeout: Duration,
) -> Result<serde_json::Value, String> {
    let mut s = UnixStream::connect(path).map_err(|e| format!("{}: {e}", path.display()))?;
    s.set_read_timeout(Some(timeout))
        .and_then(|()| s.set_write_timeout(Some(timeout)))
        .map_err(|e| format!("mgmt timeouts: {e}"))?;
    s.write_all(format!("{request}\n").as_bytes())
        .map_err(|e| format!("mgmt {request:?}: {e}"))?;
    let mut line = String::new();
    BufReader::new(s)
        .read_line(&mut line)
        .map_err(|e| format!("mgmt {request:?}: {e}"))?;
    let v: serde_json::Value =
        serde_json::from_str(&line).map_err(|e| format!("mgmt {request:?}: {e}: {line:?}"))?;
    if v["ok"] != serde_json::Value::Bool(true) {
        return Err(format!("mgmt {request:?}: {}", line.trim_end()));
    }
    Ok(v)
}

/// Tolerances of the verdict.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Tolerance {
    /// RSS may grow by this many % from the early window to the late one.
    pub rss_pct: f64,
    /// … plus this many KiB (allocator granularity on a small RSS).
    pub rss_slack_kib: u64,
}

impl Default for Tolerance {
    fn default() -> Tolerance {
        Tolerance {
            rss_pct: 10.0,
            rss_slack_kib: 1024,
        }
    }
}

/// What the verdict found.
#[derive(Debug, Clone, PartialEq)]
pub struct Verdict {
    /// One line per check: `ok …` or `FAIL …`.
    pub lines: Vec<String>,
    /// Every check passed.
    pub pass: bool,
}

/// The maximum of `f` over `s` (0 when empty).
fn max_of(s: &[&Sample], f: impl Fn(&Sample) -> u64) -> u64 {
    s.iter().map(|x| f(x)).max().unwrap_or(0)
}

/// The median of `f` over `s` (the upper one of an even count; 0 when
/// empty).
fn median_of(s: &[&Sample], f: impl Fn(&Sample) -> u64) -> u64 {
    let mut v: Vec<u64> = s.iter().map(|x| f(x)).collect();
    v.sort_unstable();
    v.get(v.len() / 2).copied().unwrap_or(0)
}

/// Judges a run:
/// * RSS flat: the median RSS of the late window (the last third of the
///   churn samples) is at most the median of the early window (the first
///   third after the warm-up) × (1 + `rss_pct`/100) + `rss_slack_kib`
///   (medians: a moment of many clients with full backlogs is a peak, not
///   growth; a leak moves the median);
/// * descriptors, ports, socket files and MAC table back to the baseline
///   (`base` sample, taken before any churn) in the `quiet` sample, after
///   every churning client left;
/// * the steady pair moved frames in every sampling interval after the
///   warm-up (no stall);
/// * no client saw an error, and the switch ran to the end (`alive`).
pub fn judge(samples: &[Sample], tol: Tolerance, alive: bool) -> Verdict {
    let mut lines = Vec::new();
    let mut pass = true;
    let mut check = |ok: bool, text: String| {
        pass &= ok;
        lines.push(format!("{} {text}", if ok { "ok  " } else { "FAIL" }));
    };
    check(alive, "the switch ran to the end".to_string());
    let base = samples.iter().find(|s| s.phase == "base");
    let quiet = samples.iter().rev().find(|s| s.phase == "quiet");
    let churn: Vec<&Sample> = samples.iter().filter(|s| s.phase == "churn").collect();
    let third = churn.len() / 3;
    if third == 0 {
        check(
            false,
            format!(
                "RSS: {} churn samples after the warm-up; at least 3 are needed (run longer)",
                churn.len()
            ),
        );
    } else {
        let early = median_of(&churn[..third], |s| s.rss_kib);
        let late = median_of(&churn[churn.len() - third..], |s| s.rss_kib);
        let limit = (early as f64 * (1.0 + tol.rss_pct / 100.0)) as u64 + tol.rss_slack_kib;
        check(
            late <= limit,
            format!(
                "RSS flat: late median {late} KiB vs early median {early} KiB (limit {limit} KiB: +{}% +{} KiB)",
                tol.rss_pct, tol.rss_slack_kib
            ),
        );
    }
    match (base, quiet) {
        (Some(b), Some(q)) => {
            check(
                q.fds <= b.fds,
                format!(
                    "descriptors back to baseline: {} after, {} before",
                    q.fds, b.fds
                ),
            );
            check(
                q.ports == b.ports,
                format!(
                    "ports back to baseline: {} after, {} before",
                    q.ports, b.ports
                ),
            );
            check(
                q.dir_entries <= b.dir_entries,
                format!(
                    "socket files back to baseline: {} after, {} before",
                    q.dir_entries, b.dir_entries
                ),
            );
            check(
                q.mac_entries <= b.mac_entries,
                format!(
                    "MAC table back to baseline: {} after, {} before",
                    q.mac_entries, b.mac_entries
                ),
            );
        }
        _ => check(false, "no baseline or no quiet sample".to_string()),
    }
    let after_warmup: Vec<&Sample> = samples
        .iter()
        .filter(|s| s.phase == "churn" || s.phase == "quiet")
        .collect();
    let stalls = after_warmup
        .windows(2)
        .filter(|w| w[1].phase == "churn" && w[1].steady_received <= w[0].steady_received)
        .count();
    check(
        stalls == 0,
        format!("the steady pair moved frames in every interval ({stalls} stalled)"),
    );
    let errors = samples.iter().map(|s| s.errors).max().unwrap_or(0);
    check(errors == 0, format!("client errors: {errors}"));
    Verdict { lines, pass }
}

/// The summary: first and last figures, extremes, totals, the verdict.
pub fn summary(samples: &[Sample], verdict: &Verdict, notes: &[String]) -> String {
    let mut s = String::new();
    let first = samples.first().cloned().unwrap_or_default();
    let last = samples.last().cloned().unwrap_or_default();
    let churn: Vec<&Sample> = samples.iter().filter(|x| x.phase != "quiet").collect();
    let _ = writeln!(
        s,
        "soak-switch summary ({} samples, {:.0} s)",
        samples.len(),
        last.t
    );
    let _ = writeln!(
        s,
        "  RSS      start {} KiB, end {} KiB, max {} KiB, peak (VmHWM) {} KiB",
        first.rss_kib,
        last.rss_kib,
        max_of(&churn, |x| x.rss_kib),
        last.hwm_kib
    );
    let _ = writeln!(
        s,
        "  fds      start {}, end {}, max {}",
        first.fds,
        last.fds,
        max_of(&churn, |x| x.fds)
    );
    let _ = writeln!(
        s,
        "  ports    start {}, end {}, max {}",
        first.ports,
        last.ports,
        max_of(&churn, |x| x.ports)
    );
    let _ = writeln!(
        s,
        "  MACs     start {}, end {}, max {}",
        first.mac_entries,
        last.mac_entries,
        max_of(&churn, |x| x.mac_entries)
    );
    let _ = writeln!(
        s,
        "  frames   switch in {}, out {}, dropped (queue full) {}; steady pair sent {}, received {}",
        last.frames_in,
        last.frames_out,
        last.dropped_queue_full,
        last.steady_sent,
        last.steady_received
    );
    let _ = writeln!(
        s,
        "  clients  {} churning clients, {} hostile requests, {} errors",
        last.clients, last.hostile, last.errors
    );
    for n in notes {
        let _ = writeln!(s, "  note: {n}");
    }
    for l in &verdict.lines {
        let _ = writeln!(s, "  {l}");
    }
    let _ = writeln!(s, "verdict: {}", if verdict.pass { "PASS" } else { "FAIL" });
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(rss_late: u64, quiet_fds: u64, stall: bool) -> Vec<Sample> {
        let mut v = vec![Sample {
            phase: "base",
            rss_kib: 2000,
            fds: 20,
            ports: 10,
            mac_entries: 2,
            dir_entries: 3,
            ..Sample::default()
        }];
        for i in 0..9u64 {
            v.push(Sample {
                t: i as f64,
                phase: "churn",
                rss_kib: if i >= 6 { rss_late } else { 10_000 },
                fds: 200,
                ports: 300,
                mac_entries: 5000,
                steady_received: if stall && i == 4 { 300 } else { (i + 1) * 100 },
                ..Sample::default()
            });
        }
        v.push(Sample {
            phase: "quiet",
            rss_kib: rss_late,
            fds: quiet_fds,
            ports: 10,
            mac_entries: 2,
            dir_entries: 3,
            steady_received: 2000,
            ..Sample::default()
        });
        v
    }

    #[test]
    fn flat_runs_pass_and_leaks_fail() {
        let tol = Tolerance::default();
        let ok = judge(&run(11_000, 20, false), tol, true);
        assert!(ok.pass, "{:?}", ok.lines);
        // 10 % + 1024 KiB of 10 000 KiB is 12 024 KiB.
        assert!(judge(&run(12_024, 20, false), tol, true).pass);
        let grown = judge(&run(12_025, 20, false), tol, true);
        assert!(!grown.pass);
        assert!(grown.lines.iter().any(|l| l.starts_with("FAIL RSS flat")));
        // One peak in the late window is not growth.
        let mut peak = run(10_000, 20, false);
        peak[8].rss_kib = 50_000;
        assert!(judge(&peak, tol, true).pass);
        let fds = judge(&run(10_000, 21, false), tol, true);
        assert!(!fds.pass);
        assert!(fds.lines.iter().any(|l| l.starts_with("FAIL descriptors")));
        let stalled = judge(&run(10_000, 20, true), tol, true);
        assert!(
            stalled.lines.iter().any(|l| l.contains("(1 stalled)")),
            "{stalled:?}"
        );
        assert!(!judge(&run(10_000, 20, false), tol, false).pass);
        let mut err = run(10_000, 20, false);
        err[3].errors = 1;
        assert!(!judge(&err, tol, true).pass);
        let mut ports = run(10_000, 20, false);
        if let Some(q) = ports.last_mut() {
            q.ports = 11;
        }
        assert!(!judge(&ports, tol, true).pass);
        // Too short to judge RSS.
        let short: Vec<Sample> = run(10_000, 20, false)
            .into_iter()
            .filter(|s| s.phase != "churn" || s.t < 2.0)
            .collect();
        assert!(!judge(&short, tol, true).pass);
    }

    #[test]
    fn csv_round_trips_and_status_parses() {
        let s = run(11_000, 20, false)[4].clone();
        let line = s.csv();
        assert_eq!(line.split(',').count(), CSV_HEADER.split(',').count());
        assert_eq!(Sample::parse_csv(&line), Some(s));
        assert_eq!(Sample::parse_csv("1,bogus"), None);
        let status = "Name:\tuml_switch\nVmHWM:\t    4200 kB\nVmRSS:\t    3100 kB\n";
        assert_eq!(parse_status(status), Some((3100, 4200)));
        assert_eq!(parse_status("VmRSS: 1 kB\n"), None);
        let v = judge(&run(11_000, 20, false), Tolerance::default(), true);
        let text = summary(&run(11_000, 20, false), &v, &["n".into()]);
        assert!(text.ends_with("verdict: PASS\n"), "{text}");
        assert!(text.contains("  note: n\n"), "{text}");
    }
}
