//! Who used the CPU during a measurement: snapshots of every process's
//! CPU time (`/proc/PID/stat`) and network namespace, and their
//! difference split into the benchmark's own processes (those in its
//! network namespace, and the driver), one named process among them (the
//! switch), and everything else on the machine (other users' builds on a
//! shared host).

use std::collections::HashMap;
use std::fs;
use std::path::Path;
use std::time::Instant;

/// One process in a snapshot.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Proc {
    /// utime + stime, clock ticks.
    ticks: u64,
    /// cutime + cstime (children reaped), clock ticks.
    child_ticks: u64,
    /// Start time after boot, clock ticks (tells reused pids apart).
    start: u64,
    /// Network namespace inode (0 when unreadable).
    netns: u64,
    comm: String,
}

/// CPU times of every process at one moment.
#[derive(Debug, Clone)]
pub struct Snapshot {
    at: Instant,
    procs: HashMap<u32, Proc>,
    /// Busy time of all CPUs (`/proc/stat`), clock ticks.
    busy: Option<u64>,
}

/// CPU used between two snapshots, in % of one core.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Usage {
    /// Processes in the benchmark's namespace and the driver.
    pub ours: f64,
    /// The process named as the switch (part of `ours`).
    pub switch: f64,
    /// Everything else: the machine's busy time (all CPUs, `/proc/stat`)
    /// less `ours`.
    pub other: f64,
}

/// The `ticks`, `child_ticks`, `start` and `comm` of a `/proc/PID/stat`
/// line (fields after the parenthesised name, which may hold spaces).
fn parse_stat(line: &str) -> Option<(u64, u64, u64, String)> {
    let open = line.find('(')?;
    let close = line.rfind(')')?;
    let comm = line.get(open + 1..close)?.to_string();
    let rest: Vec<&str> = line.get(close + 1..)?.split_whitespace().collect();
    // rest[0] is field 3 (state); utime is field 14, starttime field 22.
    let field = |n: usize| rest.get(n - 3).and_then(|v| v.parse::<u64>().ok());
    let ticks = field(14)? + field(15)?;
    let child = field(16)? + field(17)?;
    Some((ticks, child, field(22)?, comm))
}

/// Busy ticks of all CPUs in `/proc/stat`'s first line (user, nice,
/// system, irq, softirq, steal; guest time is part of user).
fn parse_proc_stat(text: &str) -> Option<u64> {
    let line = text.lines().next()?.strip_prefix("cpu ")?;
    let v: Vec<u64> = line
        .split_whitespace()
        .map(|x| x.parse().ok())
        .collect::<Option<_>>()?;
    let get = |i: usize| v.get(i).copied().unwrap_or(0);
    Some(get(0) + get(1) + get(2) + get(5) + get(6) + get(7))
}

/// The inode in a `net:[4026531840]` namespace link.
fn parse_ns_link(link: &str) -> Option<u64> {
    link.strip_prefix("net:[")?.strip_suffix(']')?.parse().ok()
}

/// The network namespace inode of `pid` (`/proc/PID/ns/net`).
pub fn netns_of(pid: u32) -> Option<u64> {
    let link = fs::read_link(format!("/proc/{pid}/ns/net")).ok()?;
    parse_ns_link(&link.to_string_lossy())
}

/// The inode of a named namespace (`/run/netns/NAME`).
pub fn netns_inode(name: &str) -> Option<u64> {
    use std::os::unix::fs::MetadataExt;
    fs::metadata(Path::new("/run/netns").join(name))
        .ok()
        .map(|m| m.ino())
}

impl Snapshot {
    /// Reads every process now.
    pub fn take() -> Snapshot {
        let at = Instant::now();
        let mut procs = HashMap::new();
        if let Ok(dir) = fs::read_dir("/proc") {
            for entry in dir.flatten() {
                let Some(pid) = entry
                    .file_name()
                    .to_str()
                    .and_then(|s| s.parse::<u32>().ok())
                else {
                    continue;
                };
                let Ok(stat) = fs::read_to_string(format!("/proc/{pid}/stat")) else {
                    continue;
                };
                let Some((ticks, child_ticks, start, comm)) = parse_stat(&stat) else {
                    continue;
                };
                let netns = netns_of(pid).unwrap_or(0);
                procs.insert(
                    pid,
                    Proc {
                        ticks,
                        child_ticks,
                        start,
                        netns,
                        comm,
                    },
                );
            }
        }
        let busy = fs::read_to_string("/proc/stat")
            .ok()
            .and_then(|t| parse_proc_stat(&t));
        Snapshot { at, procs, busy }
    }

    /// What was used from `self` to `later`: processes in namespace
    /// `netns` and the driver (`me`) are ours, the one called `switch`
    /// among them is also counted apart; everything else the machine did
    /// is `other`. An own process that started in between counts with all
    /// its time; one that ended in between counts in its parent's reaped
    /// children (the guests' processes are reaped by their kernels).
    pub fn usage(&self, later: &Snapshot, netns: u64, me: u32, switch: &str, tick: f64) -> Usage {
        let secs = later.at.duration_since(self.at).as_secs_f64().max(1e-6);
        let pct = |ticks: u64| ticks as f64 / tick / secs * 100.0;
        let mut u = Usage::default();
        for (pid, p) in &later.procs {
            if *pid != me && (netns == 0 || p.netns != netns) {
                continue;
            }
            let (t0, c0) = match self.procs.get(pid) {
                Some(q) if q.start == p.start => (q.ticks, q.child_ticks),
                _ => (0, 0),
            };
            let mut used = p.ticks.saturating_sub(t0);
            if *pid != me {
                used += p.child_ticks.saturating_sub(c0);
            }
            u.ours += pct(used);
            if !switch.is_empty() && p.comm == switch {
                u.switch += pct(used);
            }
        }
        if let (Some(a), Some(b)) = (self.busy, later.busy) {
            u.other = (pct(b.saturating_sub(a)) - u.ours).max(0.0);
        }
        u
    }
}

impl Snapshot {
    /// The processes called `comm` in namespace `netns`.
    pub fn pids_named(&self, netns: u64, comm: &str) -> Vec<u32> {
        let mut v: Vec<u32> = self
            .procs
            .iter()
            .filter(|(_, p)| p.netns == netns && p.comm == comm)
            .map(|(pid, _)| *pid)
            .collect();
        v.sort_unstable();
        v
    }

    /// How busy all CPUs were from `self` to `later`, in % of one core.
    pub fn busy_pct(&self, later: &Snapshot, tick: f64) -> Option<f64> {
        let secs = later.at.duration_since(self.at).as_secs_f64().max(1e-6);
        let (a, b) = (self.busy?, later.busy?);
        Some(b.saturating_sub(a) as f64 / tick / secs * 100.0)
    }
}

/// Clock ticks per second (`sysconf(_SC_CLK_TCK)`, 100 when unknown).
pub fn clock_ticks() -> f64 {
    match nix::unistd::sysconf(nix::unistd::SysconfVar::CLK_TCK) {
        Ok(Some(t)) if t > 0 => t as f64,
        _ => 100.0,
    }
}

/// The name the kernel gives a program's process (`comm`: its file name,
/// cut to 15 bytes).
pub fn comm_of(program: &Path) -> String {
    let name = program
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    name.chars().take(15).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stat_lines() {
        // Fields counted from 1: pid, comm, state (3), then the value k
        // stands in field k + 3: utime (14) = 11, stime 12, cutime 13,
        // cstime 14, starttime (22) = 999.
        let line = "123 (a b) c) S 1 2 3 4 5 6 7 8 9 10 11 12 13 14 15 16 17 18 999 20";
        let (t, c, start, comm) = parse_stat(line).unwrap_or_default();
        assert_eq!(comm, "a b) c");
        assert_eq!((t, c), (11 + 12, 13 + 14));
        assert_eq!(start, 999);
        assert_eq!(parse_stat("garbage"), None);
    }

    #[test]
    fn proc_stat_busy() {
        let t = "cpu  10 1 5 1000 7 2 3 4 9 0\ncpu0 1 2 3\n";
        assert_eq!(parse_proc_stat(t), Some(10 + 1 + 5 + 2 + 3 + 4));
        assert_eq!(parse_proc_stat("intr 1"), None);
    }

    #[test]
    fn namespace_links() {
        assert_eq!(parse_ns_link("net:[4026531840]"), Some(4026531840));
        assert_eq!(parse_ns_link("mnt:[1]"), None);
    }

    #[test]
    fn this_process_is_seen_and_counted_as_ours() {
        let me = std::process::id();
        let a = Snapshot::take();
        assert!(a.procs.contains_key(&me));
        // Burn a little CPU.
        let t = Instant::now();
        let mut x = 0u64;
        while t.elapsed().as_millis() < 50 {
            x = x.wrapping_mul(6364136223846793005).wrapping_add(1);
        }
        std::hint::black_box(x);
        let b = Snapshot::take();
        let u = a.usage(&b, 0, me, "", clock_ticks());
        assert!(u.ours >= 0.0 && u.other >= 0.0);
        assert_eq!(u.switch, 0.0);
        let comm = a.procs.get(&me).map(|p| p.comm.clone()).unwrap_or_default();
        let ns = a.procs.get(&me).map_or(0, |p| p.netns);
        assert!(a.pids_named(ns, &comm).contains(&me));
        assert!(a.busy_pct(&b, clock_ticks()).is_some_and(|b| b >= 0.0));
        assert!(comm_of(Path::new("/x/uml_switch")) == "uml_switch");
        assert_eq!(comm_of(Path::new("a-very-long-program-name")).len(), 15);
    }
}
