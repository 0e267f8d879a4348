//! `uml_switch`: the userspace Ethernet switch of User-Mode Linux's
//! `daemon` network transport, a drop-in for Debian's (spec: `switch.md`).
#![forbid(unsafe_code)]

pub mod cli;
pub mod core;
pub mod server;

use std::ffi::OsString;

/// Runs the switch with `argv`; returns how the process must end.
pub fn main_with_args(argv: &[OsString]) -> server::Exit {
    let prog = argv.first().map_or_else(
        || "uml_switch".to_string(),
        |a| a.to_string_lossy().into_owned(),
    );
    let parsed = cli::parse(&prog, argv.get(1..).unwrap_or(&[]));
    for notice in &parsed.notices {
        print!("{notice}");
    }
    let Some(opts) = parsed.options else {
        eprint!("{}", cli::usage(&prog));
        return server::Exit::Status(1);
    };
    server::run(&prog, opts)
}
