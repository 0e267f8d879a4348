//! `uml-bench`: benchmark support for the UML host utilities.
//!
//! * [`args`]: the drivers' command lines (clap), value bounds, exit
//!   statuses;
//! * [`driver`]: the drivers' error type and binary lookup;
//! * [`fake`]: what a fake mconsole server answers (the kernel's request
//!   processing order, reduced to the `version` command);
//! * [`procstat`]: CPU used by the benchmark's processes and by others;
//! * [`soak`]: `soak-switch`, the switch under churn for a bounded
//!   time, its memory, descriptors and ports sampled and judged;
//! * [`stats`]: quantiles of timing samples;
//! * [`switch`]: `bench-switch` itself (options, process guards, CPU
//!   meter, trials, verdicts, report);
//! * [`switchload`]: a load generator speaking the `uml_switch` daemon
//!   protocol (ports, learning, unicast/broadcast blasts, ping-pong).
//!
//! The binaries are `fake-mconsole` (the server), `bench-mconsole` (the
//! driver that times `uml_mconsole SOCKET version` as whole processes) and
//! `bench-switch` (frames/s, loss and round-trip latency of Debian's C
//! `uml_switch` and ours).
#![forbid(unsafe_code)]

pub mod args;
pub mod driver;
pub mod fake;
pub mod procstat;
pub mod soak;
pub mod stats;
pub mod switch;
pub mod switchload;
pub mod watchdog;
