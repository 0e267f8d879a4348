//! `bench-switch`'s options: the clap command (the same option names as
//! before, which `scripts/bench-switch` passes through) and the
//! [`Options`] a run uses.

use std::fs;
use std::path::PathBuf;
use std::time::Duration;

use clap::{ArgMatches, Command};

use super::trial::{DRAIN_QUIET, LEARN_TIMEOUT, MAX_DRAIN, REPLY_TIMEOUT, STOP_TIMEOUT, WARMUP};
use crate::args::{
    flag, float_min, get, get_or, given, int, int_list, int_min, opt, path_opt, require_file, secs,
    BUILD_HINT,
};
use crate::driver::{failed, sibling, Error};
use crate::switchload::{MAX_FRAME_LEN, MIN_FRAME_LEN};

const ABOUT: &str = "\
Runs Debian's C uml_switch and ours, interleaved, each fresh per trial,
against a load generator speaking the daemon protocol with N ports, and
reports median delivered frames/s, loss, sender EAGAIN, CPU and ping-pong
round-trip percentiles, the ratios ours/C and PASS/FAIL against the
targets. Meant to run inside a private network namespace (use
scripts/bench-switch, which creates one and passes --netns).";

/// The command line of `bench-switch`.
pub fn command() -> Command {
    Command::new("bench-switch")
        .about(ABOUT)
        .arg(path_opt(
            "ours",
            "our switch (default: uml_switch beside this program, i.e. \
             target/x86_64-unknown-linux-gnu/release/uml_switch)",
        ))
        .arg(path_opt("c", "the C switch (default /usr/bin/uml_switch)"))
        .arg(
            opt(
                "ports",
                "LIST",
                "port counts, comma separated (default 2,8,64)",
            )
            .value_parser(int_list(2usize, 1000)),
        )
        .arg(
            opt(
                "qlen",
                "LIST",
                "net.unix.max_dgram_qlen values (default 10,512)",
            )
            .value_parser(int_list(1u32, 1_000_000)),
        )
        .arg(
            opt(
                "judge-qlen",
                "Q",
                "qlen at which the targets are judged (default 10, else the first of --qlen)",
            )
            .value_parser(int_min(1u32)),
        )
        .arg(opt(
            "netns",
            "NAME",
            "the network namespace this process runs in (as named by `ip netns`); \
             required to change the qlen",
        ))
        .arg(
            opt(
                "trials",
                "N",
                "trials per switch per configuration (default 5)",
            )
            .value_parser(int_min(1usize)),
        )
        .arg(secs_opt(
            "unicast-secs",
            "timed unicast window per trial (default 1.5)",
        ))
        .arg(secs_opt(
            "broadcast-secs",
            "timed broadcast window per trial (default 1)",
        ))
        .arg(secs_opt(
            "pingpong-secs",
            "ping-pong time per trial (default 1.5)",
        ))
        .arg(
            opt(
                "pingpong-max",
                "N",
                "at most N round trips per trial (default 60000)",
            )
            .value_parser(int_min(10usize)),
        )
        .arg(
            opt(
                "ceiling-secs",
                "S",
                "per trial round, the generator alone (port to port, no switch) for S s: \
                 the most any switch can show here (default 0.5; 0 skips it)",
            )
            .value_parser(secs(0.05, 600.0, true)),
        )
        .arg(
            path_opt(
                "floor",
                "per trial round, also run this minimal forwarder (default: floor-switch \
                 beside this program): the per-frame work no switch can avoid here (one \
                 recvmmsg, a MAC lookup, one sendmmsg per destination); its unicast rate / C \
                 bounds what any switch over these sockets can show",
            )
            .overrides_with("no-floor"),
        )
        .arg(flag("no-floor", "skip the floor runs").overrides_with("floor"))
        .arg(
            opt("frame-size", "N", "frame length in bytes (default 64)")
                .value_parser(int(MIN_FRAME_LEN, MAX_FRAME_LEN)),
        )
        .arg(
            opt(
                "rate",
                "FPS",
                "pace the senders to FPS frames/s in all (default: blast, as fast as the \
                 switch takes them)",
            )
            .value_parser(float_min(1.0)),
        )
        .arg(
            opt(
                "burst",
                "N",
                "sends per flow before the next flow (default 8)",
            )
            .value_parser(int(1usize, 64)),
        )
        .arg(flag(
            "credit",
            "after an EAGAIN, send only into the room the switch's input queue is known to \
             have (default: blast, i.e. send again as soon as any frame arrived)",
        ))
        .arg(
            opt(
                "slack",
                "N",
                "with --credit: frames sent beyond that room (default 0)",
            )
            .value_parser(int_min(0u64)),
        )
        .arg(
            opt(
                "round-max",
                "N",
                "most frames sent before the receivers are drained again (default 32)",
            )
            .value_parser(int_min(1u64)),
        )
        .arg(
            opt(
                "max-other",
                "PCT",
                "a trial during which other processes used more than PCT % of a core is run \
                 again (default 25)",
            )
            .value_parser(float_min(0.0)),
        )
        .arg(
            opt(
                "retries",
                "N",
                "at most N such repeats per trial, and at most one run in five repeated in \
                 all (default 2; the last attempt is kept, with a note)",
            )
            .value_parser(int_min(0usize)),
        )
        .arg(flag(
            "sendmmsg",
            "send bursts with sendmmsg (default: one sendto per frame, a burst ends at the \
             first EAGAIN)",
        ))
        .arg(
            opt(
                "spin-us",
                "N",
                "when nothing moved, poll N µs before sleeping in epoll_wait (default 50; 0 \
                 sleeps at once)",
            )
            .value_parser(int_min(0u64)),
        )
        .arg(
            opt(
                "loss-slack",
                "PP",
                "loss verdict: ours <= C + PP percentage points (default 0.01)",
            )
            .value_parser(float_min(0.0)),
        )
        .arg(
            opt(
                "p99-slack",
                "F",
                "p99 verdict: ours <= C x (1 + F) (default 0.05)",
            )
            .value_parser(float_min(0.0)),
        )
        .arg(
            opt(
                "max-seconds",
                "N",
                "bound of the whole run (default: 1.5 x the plan plus 60 s)",
            )
            .value_parser(int_min(1u64)),
        )
        .arg(flag("enforce", "exit 1 when a target is missed"))
        .arg(flag(
            "no-pin",
            "do not pin the generator and the switch to two different CPUs (default: \
             pinned when this process may use two or more; unpinned, the scheduler sometimes \
             puts both on one CPU, which moved the ping-pong p50 by ~20 % between trials)",
        ))
}

/// An option taking seconds between 0.05 and 600.
fn secs_opt(name: &'static str, help: &'static str) -> clap::Arg {
    opt(name, "S", help).value_parser(secs(0.05, 600.0, false))
}

/// What a run measures and how.
#[derive(Debug)]
pub(crate) struct Options {
    pub(crate) ours: PathBuf,
    pub(crate) c: PathBuf,
    pub(crate) floor: Option<PathBuf>,
    pub(crate) ports: Vec<usize>,
    pub(crate) qlens: Vec<u32>,
    pub(crate) judge_qlen: Option<u32>,
    pub(crate) netns: Option<String>,
    pub(crate) trials: usize,
    pub(crate) unicast: Duration,
    pub(crate) broadcast: Duration,
    pub(crate) pingpong: Duration,
    pub(crate) pingpong_max: usize,
    pub(crate) ceiling: Duration,
    pub(crate) frame_size: usize,
    pub(crate) rate: Option<f64>,
    pub(crate) burst: usize,
    pub(crate) credit: bool,
    pub(crate) slack: u64,
    pub(crate) round_max: u64,
    pub(crate) max_other: f64,
    pub(crate) retries: usize,
    pub(crate) spin: Duration,
    pub(crate) sendmmsg: bool,
    pub(crate) loss_slack: f64,
    pub(crate) p99_slack: f64,
    pub(crate) max_seconds: Option<u64>,
    pub(crate) enforce: bool,
    pub(crate) pin: bool,
}

impl Options {
    /// Upper estimate of one trial (one switch run), without failures.
    pub(crate) fn trial_estimate(&self, n: usize) -> Duration {
        let phases = WARMUP + self.unicast + self.broadcast + self.pingpong;
        let drains = 3 * DRAIN_QUIET + Duration::from_millis(100);
        let setup = Duration::from_millis(150) + Duration::from_millis(3) * n as u32;
        phases + drains + setup
    }

    /// Deadline of one trial: set-up, learning (bounded per port),
    /// phases, drains, stopping.
    pub(crate) fn trial_deadline(&self, n: usize) -> Duration {
        let phases = WARMUP + self.unicast + self.broadcast + self.pingpong;
        let learn = LEARN_TIMEOUT * 2 * n as u32;
        let connect = REPLY_TIMEOUT * 2;
        phases + 4 * MAX_DRAIN + learn + connect + STOP_TIMEOUT + Duration::from_secs(10)
    }

    pub(crate) fn planned(&self) -> Duration {
        let per: Duration = self.ports.iter().map(|&n| self.trial_estimate(n)).sum();
        let ceiling = (self.ceiling + Duration::from_millis(100)) * self.ports.len() as u32;
        let switches = if self.floor.is_some() { 3 } else { 2 };
        (per * switches + ceiling) * (self.trials * self.qlens.len()) as u32
    }

    pub(crate) fn judge_qlen(&self) -> u32 {
        self.judge_qlen.unwrap_or_else(|| {
            if self.qlens.contains(&10) {
                10
            } else {
                self.qlens[0]
            }
        })
    }

    /// The options `m` gives, with the defaults for the others; the
    /// programs made absolute (the switches run in their temp dirs).
    pub(crate) fn from_matches(m: &ArgMatches) -> Result<Options, Error> {
        let mut o = Options {
            ours: get_or(m, "ours", sibling("uml_switch")),
            floor: if given(m, "no-floor") {
                None
            } else {
                Some(get_or(m, "floor", sibling("floor-switch")))
            },
            c: get_or(m, "c", PathBuf::from("/usr/bin/uml_switch")),
            ports: get_or(m, "ports", vec![2, 8, 64]),
            qlens: get_or(m, "qlen", vec![10, 512]),
            judge_qlen: get(m, "judge-qlen"),
            netns: get(m, "netns"),
            trials: get_or(m, "trials", 5),
            unicast: get_or(m, "unicast-secs", Duration::from_millis(1500)),
            broadcast: get_or(m, "broadcast-secs", Duration::from_secs(1)),
            pingpong: get_or(m, "pingpong-secs", Duration::from_millis(1500)),
            pingpong_max: get_or(m, "pingpong-max", 60_000),
            ceiling: get_or(m, "ceiling-secs", Duration::from_millis(500)),
            frame_size: get_or(m, "frame-size", 64),
            rate: get(m, "rate"),
            burst: get_or(m, "burst", 8),
            credit: given(m, "credit"),
            slack: get_or(m, "slack", 0),
            round_max: get_or(m, "round-max", 32),
            max_other: get_or(m, "max-other", 25.0),
            retries: get_or(m, "retries", 2),
            spin: Duration::from_micros(get_or(m, "spin-us", 50)),
            sendmmsg: given(m, "sendmmsg"),
            loss_slack: get_or(m, "loss-slack", 0.01),
            p99_slack: get_or(m, "p99-slack", 0.05),
            max_seconds: get(m, "max-seconds"),
            enforce: given(m, "enforce"),
            pin: !given(m, "no-pin"),
        };
        if let Some(q) = o.judge_qlen {
            if !o.qlens.contains(&q) {
                return Err(Error::Usage(format!("--judge-qlen {q} is not in --qlen")));
            }
        }
        let mut paths = vec![
            ("--ours", &mut o.ours, BUILD_HINT),
            ("--c", &mut o.c, " (Debian package uml-utilities)"),
        ];
        if let Some(f) = o.floor.as_mut() {
            paths.push(("--floor", f, BUILD_HINT));
        }
        for (what, path, hint) in paths {
            require_file(what, path, hint)?;
            *path = fs::canonicalize(&*path)
                .map_err(|e| failed(format!("{what}: {}: {e}", path.display())))?;
        }
        Ok(o)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::args::{parse, Parsed};
    use std::ffi::OsString;

    fn parse_all(args: &[&str]) -> Result<Options, Error> {
        match parse(command(), args.iter().map(OsString::from))? {
            Parsed::Run(m) => Options::from_matches(&m),
            Parsed::Help(h) => panic!("help: {h}"),
        }
    }

    #[test]
    fn every_option_as_the_scripts_pass_it() {
        command().debug_assert();
        let o = parse_all(&[
            "--ours",
            "/bin/sh",
            "--c=/bin/sh",
            "--floor",
            "/bin/sh",
            "--ports",
            "2,64",
            "--qlen",
            "10,512",
            "--judge-qlen",
            "512",
            "--netns",
            "ns1",
            "--trials",
            "1",
            "--unicast-secs",
            "0.5",
            "--broadcast-secs",
            "0.25",
            "--pingpong-secs",
            "2",
            "--pingpong-max",
            "100",
            "--ceiling-secs",
            "0",
            "--frame-size",
            "100",
            "--rate",
            "5000",
            "--burst",
            "4",
            "--credit",
            "--slack",
            "3",
            "--round-max",
            "16",
            "--max-other",
            "50",
            "--retries",
            "0",
            "--sendmmsg",
            "--spin-us",
            "0",
            "--loss-slack",
            "0.1",
            "--p99-slack",
            "0.2",
            "--max-seconds",
            "30",
            "--enforce",
            "--no-pin",
        ])
        .unwrap();
        assert!(o.ours.is_absolute() && o.floor.is_some());
        assert_eq!(
            (o.ports.as_slice(), o.qlens.as_slice()),
            (&[2, 64][..], &[10, 512][..])
        );
        assert_eq!((o.judge_qlen(), o.netns.as_deref()), (512, Some("ns1")));
        assert_eq!(
            (o.trials, o.pingpong_max, o.frame_size, o.burst),
            (1, 100, 100, 4)
        );
        assert_eq!(o.unicast, Duration::from_millis(500));
        assert_eq!(o.broadcast, Duration::from_millis(250));
        assert_eq!(
            (o.pingpong, o.ceiling),
            (Duration::from_secs(2), Duration::ZERO)
        );
        assert_eq!(
            (o.rate, o.slack, o.round_max, o.retries),
            (Some(5000.0), 3, 16, 0)
        );
        assert_eq!((o.max_other, o.loss_slack, o.p99_slack), (50.0, 0.1, 0.2));
        assert_eq!((o.spin, o.max_seconds), (Duration::ZERO, Some(30)));
        assert!(o.credit && o.sendmmsg && o.enforce && !o.pin);

        let o = parse_all(&["--ours", "/bin/sh", "--c", "/bin/sh", "--no-floor"]).unwrap();
        assert_eq!((o.trials, o.ports.as_slice()), (5, &[2, 8, 64][..]));
        assert_eq!((o.judge_qlen(), o.floor), (10, None));
        assert_eq!(o.spin, Duration::from_micros(50));
        assert!(o.pin && !o.enforce);
        // The last of --floor and --no-floor counts.
        let o = parse_all(&[
            "--ours=/bin/sh",
            "--c=/bin/sh",
            "--no-floor",
            "--floor=/bin/sh",
        ])
        .unwrap();
        assert!(o.floor.is_some());
    }

    #[test]
    fn bad_command_lines() {
        for bad in [
            &["--ports", "1"][..],
            &["--qlen", "10", "--judge-qlen", "512"],
            &["--frame-size", "2000"],
            &["--burst", "65"],
            &["--unicast-secs", "0"],
            &["--no-pin=1"],
            &["extra"],
        ] {
            let mut args = vec!["--ours", "/bin/sh", "--c", "/bin/sh", "--no-floor"];
            args.extend_from_slice(bad);
            let e = parse_all(&args).unwrap_err();
            assert!(matches!(e, Error::Usage(_)), "{bad:?}: {e}");
        }
        let e = parse_all(&["--ours", "/nonexistent/sw", "--c", "/bin/sh"]).unwrap_err();
        assert!(e
            .to_string()
            .starts_with("--ours: /nonexistent/sw does not exist"));
        match parse(command(), [OsString::from("--help")]).unwrap() {
            Parsed::Help(h) => assert!(h.contains("--pingpong-secs <S>"), "{h}"),
            Parsed::Run(_) => panic!("no help"),
        }
    }
}
