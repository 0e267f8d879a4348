//! `bench-switch`: frames/s, loss and round-trip latency of Debian's C
//! `uml_switch` and ours, side by side in one run; see
//! [`uml_bench::switch`] (`bench/src/switch/`) for the method and the
//! options.
#![forbid(unsafe_code)]

use std::process::ExitCode;

fn main() -> ExitCode {
    uml_bench::switch::main(std::env::args_os().skip(1))
}
