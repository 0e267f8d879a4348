//! A network namespace guard (`docs/testing.md` §6).

use std::ffi::OsStr;
use std::path::PathBuf;
use std::process::Command;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use nix::sys::signal::Signal;

use crate::process::{pid_alive, run_with_timeout, signal_pid, wait_pid_gone, RunOutput};
use crate::require::find_in_path;

/// Bound of each `ip` call.
const IP_TIMEOUT: Duration = Duration::from_secs(10);

static COUNTER: AtomicU32 = AtomicU32::new(0);

/// A network namespace `umlt-<pid>-<n>-<tag>` with `lo` up. Dropping it
/// kills every process still in it (`SIGTERM`, then `SIGKILL`) and deletes
/// it, also when the test panics.
#[derive(Debug)]
pub struct NetNs {
    name: String,
    ip: PathBuf,
}

impl NetNs {
    /// Creates the namespace and brings `lo` up.
    ///
    /// # Panics
    ///
    /// When `ip netns add` or `ip link set lo up` fails (the test needs
    /// root and iproute2; check with [`Requirement::NetNs`](crate::Requirement::NetNs)).
    pub fn new(tag: &str) -> NetNs {
        let n = COUNTER.fetch_add(1, Ordering::Relaxed);
        let name = ns_name(std::process::id(), n, tag);
        let ip = match find_in_path("ip") {
            Some(ip) => ip,
            None => panic!("`ip` not found; install iproute2"),
        };
        let out = run_with_timeout(Command::new(&ip).args(["netns", "add", &name]), IP_TIMEOUT);
        if !out.success() {
            panic!("ip netns add {name} failed (root needed?): {out}");
        }
        // Constructed now so that Drop deletes it if the next step fails.
        let ns = NetNs { name, ip };
        let out = ns.ip(&["link", "set", "lo", "up"]);
        if !out.success() {
            panic!("ip -n {} link set lo up failed: {out}", ns.name);
        }
        ns
    }

    /// The namespace's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// A `Command` for `ip netns exec NAME program`; add arguments to it.
    pub fn exec(&self, program: impl AsRef<OsStr>) -> Command {
        let mut cmd = Command::new(&self.ip);
        cmd.args(["netns", "exec", &self.name])
            .arg(program.as_ref());
        cmd
    }

    /// Runs `ip -n NAME ARGS...` (bounded).
    pub fn ip(&self, args: &[&str]) -> RunOutput {
        run_with_timeout(
            Command::new(&self.ip).args(["-n", &self.name]).args(args),
            IP_TIMEOUT,
        )
    }

    /// Sets sysctl `key` (e.g. `net.unix.max_dgram_qlen`) to `value` inside
    /// the namespace, by writing `/proc/sys/...` from a process in it.
    pub fn sysctl(&self, key: &str, value: &str) -> Result<(), String> {
        let path = sysctl_path(key)?;
        let out = run_with_timeout(
            self.exec("sh")
                .args(["-c", "printf '%s\\n' \"$1\" > \"$2\"", "sh", value, &path]),
            IP_TIMEOUT,
        );
        if out.success() {
            Ok(())
        } else {
            Err(format!(
                "setting {key}={value} in {} failed: {out}",
                self.name
            ))
        }
    }

    /// Pids of the processes in the namespace (`ip netns pids`).
    pub fn pids(&self) -> Vec<u32> {
        let out = run_with_timeout(
            Command::new(&self.ip).args(["netns", "pids", &self.name]),
            IP_TIMEOUT,
        );
        parse_pids(&out.stdout_str())
    }
}

impl Drop for NetNs {
    fn drop(&mut self) {
        let me = std::process::id();
        for (sig, wait) in [
            (Signal::SIGTERM, Duration::from_secs(3)),
            (Signal::SIGKILL, Duration::from_secs(3)),
        ] {
            let pids: Vec<u32> = self.pids().into_iter().filter(|&p| p != me).collect();
            if pids.is_empty() {
                break;
            }
            for &p in &pids {
                signal_pid(p, sig);
            }
            for &p in &pids {
                wait_pid_gone(p, wait);
            }
        }
        let left: Vec<u32> = self.pids().into_iter().filter(|&p| pid_alive(p)).collect();
        if !left.is_empty() {
            eprintln!("netns guard: processes left in {}: {left:?}", self.name);
        }
        let out = run_with_timeout(
            Command::new(&self.ip).args(["netns", "del", &self.name]),
            IP_TIMEOUT,
        );
        if !out.success() {
            eprintln!("netns guard: ip netns del {} failed: {out}", self.name);
        }
    }
}

/// `umlt-<pid>-<n>-<tag>`, the tag reduced to `[A-Za-z0-9_-]` and 16
/// characters.
fn ns_name(pid: u32, n: u32, tag: &str) -> String {
    let tag: String = tag
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' || c == '_' {
                c
            } else {
                '_'
            }
        })
        .take(16)
        .collect();
    format!("umlt-{pid}-{n}-{tag}")
}

/// `net.unix.max_dgram_qlen` → `/proc/sys/net/unix/max_dgram_qlen`.
fn sysctl_path(key: &str) -> Result<String, String> {
    let ok = !key.is_empty()
        && !key.contains("..")
        && key
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-' | '/'));
    if !ok {
        return Err(format!("bad sysctl key {key:?}"));
    }
    Ok(format!("/proc/sys/{}", key.replace('.', "/")))
}

fn parse_pids(text: &str) -> Vec<u32> {
    text.split_whitespace()
        .filter_map(|w| w.parse().ok())
        .collect()
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    #[test]
    fn names() {
        assert_eq!(ns_name(12, 3, "ping"), "umlt-12-3-ping");
        assert_eq!(
            ns_name(1, 0, "a b/c.d-very-long-tag-indeed"),
            "umlt-1-0-a_b_c_d-very-lon"
        );
    }

    #[test]
    fn sysctl_paths() {
        assert_eq!(
            sysctl_path("net.unix.max_dgram_qlen").unwrap(),
            "/proc/sys/net/unix/max_dgram_qlen"
        );
        assert_eq!(
            sysctl_path("net/ipv4/ip_forward").unwrap(),
            "/proc/sys/net/ipv4/ip_forward"
        );
        assert!(sysctl_path("../x").is_err());
        assert!(sysctl_path("a;b").is_err());
    }

    #[test]
    fn pid_list() {
        assert_eq!(parse_pids("12\n345\n"), vec![12, 345]);
        assert!(parse_pids("").is_empty());
    }
}
