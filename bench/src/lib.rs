//! `uml-bench`: benchmark support for the UML host utilities.
//!
//! * [`fake`]: what a fake mconsole server answers (the kernel's request
//!   processing order, reduced to the `version` command);
//! * [`stats`]: quantiles of timing samples.
//!
//! The binaries are `fake-mconsole` (the server) and `bench-mconsole` (the
//! driver that times `uml_mconsole SOCKET version` as whole processes).
#![forbid(unsafe_code)]

pub mod fake;
pub mod stats;
