//! `uml_switch`: the userspace Ethernet switch of User-Mode Linux's
//! `daemon` network transport, a drop-in for Debian's (`docs/switch.md`).
//!
//! * `cli`: the legacy command line;
//! * `setup`: start-up in the C switch's order; `signals`: the signalfd;
//! * `server`: the epoll event loop, which hands readiness to the port
//!   kinds and their frames to the forwarding core;
//! * `core`: MAC learning and the per-frame decision (knows ports only as
//!   ids);
//! * `port/`: one module per port kind behind the `Endpoint` trait
//!   (`daemon`, `tap`, `bess`, `l2tpv3`, `gre`), made by `port::open`
//!   from a `PortSpec`;
//! * `control`: the daemon protocol's control-connection state machine
//!   (no sockets);
//! * `output`: line-by-line stdout and stderr;
//! * `launch`: `--launch`, which runs a program (a UML on
//!   `vecN:transport=fd`) on a connection to a switch's bess socket.
#![forbid(unsafe_code)]

pub mod cli;
pub mod control;
pub mod core;
pub mod launch;
pub mod output;
pub mod port;
pub mod server;
pub mod setup;
pub mod signals;

use std::ffi::OsString;

/// Runs the switch with `argv`; returns how the process must end.
pub fn main_with_args(argv: &[OsString]) -> server::Exit {
    let prog = argv.first().map_or_else(
        || "uml_switch".to_string(),
        |a| a.to_string_lossy().into_owned(),
    );
    if argv.get(1).is_some_and(|a| a == "--launch") {
        return launch::main(&prog, &argv[2..]);
    }
    let parsed = cli::parse(&prog, argv.get(1..).unwrap_or(&[]));
    for notice in &parsed.notices {
        print!("{notice}");
    }
    let Some(opts) = parsed.options else {
        eprint!("{}", cli::usage(&prog));
        return server::Exit::Status(1);
    };
    if opts.help {
        print!("{}", cli::help(&prog));
        return server::Exit::Status(0);
    }
    server::run(&prog, opts)
}
