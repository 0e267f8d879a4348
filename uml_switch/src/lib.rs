//! `uml_switch`: the userspace Ethernet switch of User-Mode Linux's
//! `daemon` network transport, a drop-in for Debian's (`docs/switch.md`).
//!
//! * `cli`: the legacy command line;
//! * `setup`: start-up in the C switch's order; `signals`: the signalfd;
//!   `user`: `--user`, giving up root after set-up;
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
//!   `vecN:transport=fd`) on a connection to a switch's bess socket;
//! * `error`: why the switch ends at start-up ([`Error`]), printed by
//!   [`uumain`] only.
#![forbid(unsafe_code)]

pub mod activation;
pub mod capture;
pub mod cli;
pub mod control;
pub mod core;
mod error;
pub mod launch;
pub mod mgmt;
pub mod output;
pub mod port;
pub mod server;
pub mod setup;
pub mod signals;
pub mod user;

use std::ffi::OsString;

pub use error::{BessRefusal, BindFailure, Error, McastRefusal, RawRefusal, TunnelRefusal};
use server::Exit;

/// The program: `args` is argv (program name first). Returns the exit
/// status: 0, or the error's ([`Error::exit_code`]) after printing it on
/// stderr, the one place start-up failures are printed. A switch ended by
/// a signal (SIGINT, SIGTERM, SIGHUP) dies by that signal here, after its
/// cleanup, as the C switch does: its default action is restored and it is
/// raised again; only if that does not end the process is `128 + signal`
/// returned.
pub fn uumain(args: impl IntoIterator<Item = OsString>) -> i32 {
    let argv: Vec<OsString> = args.into_iter().collect();
    match run(&argv) {
        Ok(Exit::Status(code)) => code,
        Ok(Exit::Signal(sig)) => {
            let _ = uml_common::sys::signal::reraise_default(sig);
            128 + sig
        }
        Err(e) => {
            output::err(&format!("{e}\n"));
            e.exit_code()
        }
    }
}

/// Runs the switch (or `--launch`) with `argv`: how it ended, or why it
/// could not start.
fn run(argv: &[OsString]) -> Result<Exit, Error> {
    let prog = argv.first().map_or_else(
        || "uml_switch".to_string(),
        |a| a.to_string_lossy().into_owned(),
    );
    if argv.get(1).is_some_and(|a| a == "--launch") {
        return Err(launch::run(&prog, &argv[2..]));
    }
    // `--mgmt PATH COMMAND...`: the management client.
    if let (Some(first), Some(path), Some(word)) = (argv.get(1), argv.get(2), argv.get(3)) {
        if first == "--mgmt" && !word.to_string_lossy().starts_with('-') {
            let words: Vec<String> = argv[3..]
                .iter()
                .map(|w| w.to_string_lossy().into_owned())
                .collect();
            let code = mgmt::client(
                &prog,
                std::path::Path::new(path),
                &words,
                &mut std::io::stdout().lock(),
                &mut std::io::stderr().lock(),
            );
            return Ok(Exit::Status(code));
        }
    }
    let parsed = cli::parse(&prog, argv.get(1..).unwrap_or(&[]));
    for notice in &parsed.notices {
        print!("{notice}");
    }
    let Some(opts) = parsed.options else {
        return Err(Error::Usage { prog });
    };
    if opts.help {
        print!("{}", cli::help(&prog));
        return Ok(Exit::Status(0));
    }
    server::run(&prog, opts)
}
