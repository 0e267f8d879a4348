//! UML guests on one switch segment, for the real-kernel switch tests
//! (`test_uml_switch_kernel`, `test_uml_switch_bess_kernel`,
//! `test_uml_switch_raw_kernel`, `test_uml_switch_tunnels_kernel`,
//! `test_uml_switch_vde_kernel`): guest `N` has MAC
//! [`guest_mac`]`(N)` and address `10.0.0.N/24`, boots in the test's
//! network namespace with the network argument the switch printed for its
//! port, brings its device up, prints `TEST: link up rc=$?` on its console
//! and runs a script that prints more `TEST: <step> rc=$?` lines, which
//! [`expect_step_ok`] waits for. Every wait is bounded.

use std::io::Write;
use std::net::UdpSocket;
use std::sync::{Mutex, MutexGuard};
use std::time::Duration;

use crate::switch_client::{NsSwitch, SwitchBinary};
use crate::{Kernel, NetNs, Uml, UmlConfig, IDLE_SCRIPT};

/// The console step every guest reports first.
pub const LINK_UP: &str = "link up";

/// Guest `n`'s MAC, `fe:fd:0a:00:00:0N` (its address is `10.0.0.N`).
pub fn guest_mac(n: u8) -> String {
    format!("fe:fd:0a:00:00:{n:02x}")
}

/// The switch's learning message for `mac`: ` Addr: <mac> New port `.
pub fn learned(mac: &str) -> String {
    format!(" Addr: {mac} New port ")
}

/// Lines of `out` that start with `prefix`.
pub fn count_prefixed(out: &str, prefix: &str) -> usize {
    out.lines().filter(|l| l.starts_with(prefix)).count()
}

/// Lines of `out` equal to `line`.
pub fn count_lines(out: &str, line: &str) -> usize {
    out.lines().filter(|l| *l == line).count()
}

static ONE_AT_A_TIME: Mutex<()> = Mutex::new(());

/// Holds the tests of one test binary that take it to one at a time (each
/// boots several kernels on a shared machine); a test that panicked while
/// holding it does not stop the others.
pub fn one_at_a_time() -> MutexGuard<'static, ()> {
    ONE_AT_A_TIME.lock().unwrap_or_else(|p| p.into_inner())
}

/// Whether the switch under test is ours. When it is Debian's C switch
/// (`UML_SWITCH_UNDER_TEST`), prints `SKIP: <why>` and returns `false`:
/// the test is about something the C switch does not have, and returns.
pub fn switch_is_ours(why: &str) -> bool {
    if SwitchBinary::under_test().is_c_reference {
        let _ = writeln!(std::io::stderr(), "SKIP: {why}");
        return false;
    }
    true
}

/// A guest of the segment; see the [module](self) documentation.
#[derive(Debug, Clone)]
pub struct Guest {
    /// Its number: address `10.0.0.N/24`.
    pub n: u8,
    /// The kernel it boots.
    pub kernel: Kernel,
    /// Its network argument (`eth0=daemon,...`, `vec0:transport=...`).
    pub net: String,
    /// The device `net` makes (`eth0`, `vec0`).
    pub dev: &'static str,
    /// What its init script runs after bringing `dev` up. Default: idle
    /// until halted.
    pub then: String,
    /// Put in front of the kernel ([`UmlConfig::wrapper`]). Default: none.
    pub wrapper: Vec<String>,
}

impl Guest {
    /// Guest `n` of `kernel` on `net` as device `dev`, idle once its link
    /// is up.
    pub fn new(n: u8, kernel: Kernel, net: impl Into<String>, dev: &'static str) -> Guest {
        Guest {
            n,
            kernel,
            net: net.into(),
            dev,
            then: IDLE_SCRIPT.to_string(),
            wrapper: Vec::new(),
        }
    }

    /// The same running `script` after bringing its link up.
    #[must_use]
    pub fn then(mut self, script: impl Into<String>) -> Guest {
        self.then = script.into();
        self
    }

    /// The same started through `wrapper` (e.g. `uml_switch --launch
    /// ... --`).
    #[must_use]
    pub fn wrapper(mut self, wrapper: Vec<String>) -> Guest {
        self.wrapper = wrapper;
        self
    }

    /// Its configuration: machine id `<tag><n>`, in `ns`, its network
    /// argument and wrapper, and an init script that sets the address,
    /// brings the device up, reports [`LINK_UP`] and runs
    /// [`then`](Self::then). Lifetime and memory are the harness's
    /// defaults, for the caller to change.
    pub fn config(&self, ns: &NetNs, tag: &str) -> UmlConfig {
        let (n, dev) = (self.n, self.dev);
        let mut cfg = UmlConfig::with_kernel(&format!("{tag}{n}"), self.kernel);
        cfg.netns = Some(ns.name().to_string());
        cfg.extra_args.push(self.net.clone());
        cfg.wrapper = self.wrapper.clone();
        cfg.init_script = format!(
            "ip addr add 10.0.0.{n}/24 dev {dev} && ip link set {dev} up\n\
             echo \"TEST: {LINK_UP} rc=$?\"\n\
             {}\n",
            self.then
        );
        cfg
    }
}

/// Boots `cfg`.
///
/// # Panics
///
/// When the guest cannot be started.
pub fn boot(cfg: UmlConfig) -> Uml {
    let umid = cfg.umid.clone();
    Uml::boot(cfg).unwrap_or_else(|e| panic!("boot guest {umid}: {e}"))
}

/// The consoles of `umls`, for failure messages.
pub fn consoles<'u>(umls: impl IntoIterator<Item = &'u Uml>) -> String {
    umls.into_iter()
        .map(|u| format!("--- console of {} ---\n{}\n", u.umid(), u.console()))
        .collect()
}

/// Waits at most `bound` for the console line `TEST: <step> rc=` of
/// `uml` and asserts that it reads `rc=0` (the console ends lines with
/// `\r\n`).
///
/// # Panics
///
/// When the line does not come or reads otherwise, with `uml`'s console,
/// those of `others` and the switch's output.
pub fn expect_step_ok(
    uml: &mut Uml,
    step: &str,
    bound: Duration,
    sw: &mut NsSwitch,
    others: &[&Uml],
) {
    let marker = format!("TEST: {step} rc=");
    let seen = uml.wait_console(&marker, bound);
    let console = uml.console();
    let ok = format!("{marker}0");
    if seen && console.lines().any(|l| l.trim_end() == ok) {
        return;
    }
    panic!(
        "{}: {}\n--- console ---\n{console}\n{}{}",
        uml.umid(),
        if seen {
            format!("{step} failed")
        } else {
            format!("{marker} never printed")
        },
        consoles(others.iter().copied()),
        sw.report()
    );
}

/// Asserts that `uml` powers off by itself (its script ended) within
/// `bound`.
///
/// # Panics
///
/// When it does not, with its console.
pub fn expect_power_off(uml: &mut Uml, bound: Duration) {
    assert!(
        uml.wait_exit(bound),
        "{} did not power off:\n{}",
        uml.umid(),
        uml.console()
    );
}

/// Halts `uml` (mconsole `halt`) and asserts that it exits within
/// `bound`.
///
/// # Panics
///
/// When it cannot be halted or does not exit, with its console.
pub fn halt(uml: &mut Uml, bound: Duration) {
    uml.halt()
        .unwrap_or_else(|e| panic!("halt {}: {e}", uml.umid()));
    assert!(
        uml.wait_exit(bound),
        "{} did not halt:\n{}",
        uml.umid(),
        uml.console()
    );
}

/// A UDP port of 127.0.0.1 that is free in `ns` (bound as port 0 and
/// released; nothing else runs in the namespace to take it).
///
/// # Panics
///
/// When no port can be bound.
pub fn free_udp_port(ns: &NetNs) -> u16 {
    ns.run_in(|| {
        UdpSocket::bind("127.0.0.1:0")
            .and_then(|s| s.local_addr())
            .map(|a| a.port())
            .unwrap_or_else(|e| panic!("no free UDP port: {e}"))
    })
}

/// Waits at most `bound` for the switch to print `marker` and returns
/// the rest of the first line holding it (e.g. the argument after
/// `guests join with `).
///
/// # Panics
///
/// When it does not print it, with its output.
pub fn printed_argument(sw: &mut NsSwitch, marker: &str, bound: Duration) -> String {
    assert!(
        sw.wait_output(bound, |o| o.contains(marker)),
        "{marker:?} not printed:\n{}",
        sw.report()
    );
    sw.output()
        .lines()
        .find_map(|l| l.split_once(marker).map(|(_, rest)| rest.to_string()))
        .unwrap_or_else(|| panic!("{marker:?} not on one line:\n{}", sw.report()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn guest_addresses_and_script() {
        assert_eq!(guest_mac(1), "fe:fd:0a:00:00:01");
        assert_eq!(guest_mac(12), "fe:fd:0a:00:00:0c");
        assert_eq!(learned("x"), " Addr: x New port ");
        let out = "New connection\nNew connection\nNew bess connection: 3\n";
        assert_eq!(count_lines(out, "New connection"), 2);
        assert_eq!(count_prefixed(out, "New "), 3);
    }
}
