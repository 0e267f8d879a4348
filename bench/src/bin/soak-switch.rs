//! `soak-switch`: `uml_switch` under churn for a bounded time, its
//! memory, descriptors and ports sampled and judged; see
//! [`uml_bench::soak`] (`bench/src/soak/`) for the method and the
//! options. `scripts/soak-switch` builds and runs it.
#![forbid(unsafe_code)]

use std::process::ExitCode;

fn main() -> ExitCode {
    uml_bench::soak::main(std::env::args_os().skip(1))
}
