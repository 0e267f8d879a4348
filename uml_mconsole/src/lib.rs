//! `uml_mconsole`: the management-console client of User-Mode Linux, a
//! drop-in for Debian's, that never hangs (`docs/mconsole.md` §5).
#![forbid(unsafe_code)]

pub mod absolutize;
pub mod client;
#[cfg(feature = "clap-command")]
pub mod command;
pub mod interactive;
pub mod notify;
pub mod options;

use std::io::{self, Write};

use client::{Io, Session};
use options::{Mode, UsageError};
use uml_common::cli::perror_text;

/// Runs the program with `args` (without the program name); returns the
/// exit status.
pub fn main_with_args(args: &[std::ffi::OsString]) -> i32 {
    let opts = match options::parse(args) {
        Ok(o) => o,
        Err(UsageError::Usage) => {
            eprint!("{}", options::USAGE);
            return 1;
        }
        Err(UsageError::Bad(msg)) => {
            eprint!("{msg}");
            return 1;
        }
    };
    match opts.mode {
        Mode::Help => {
            print!("{}", options::HELP);
            0
        }
        Mode::Version => {
            println!(
                "uml_mconsole (uml-utilities-rs) {}\nmconsole protocol version 2",
                env!("CARGO_PKG_VERSION")
            );
            0
        }
        Mode::Notify { socket } => notify::run(std::path::Path::new(&socket)),
        Mode::Run { name, command } => {
            let sock = match client::bind_client_socket() {
                Ok(s) => s,
                Err(e) => {
                    eprintln!("{}", perror_text("bind", &e));
                    return 1;
                }
            };
            let mut session = Session::new(sock, opts.timeout);
            let stdout = io::stdout();
            let stderr = io::stderr();
            {
                let mut out = stdout.lock();
                let mut err = stderr.lock();
                session.switch(
                    &name,
                    &mut Io {
                        out: &mut out,
                        err: &mut err,
                    },
                );
            }
            match command {
                Some(cmd) => {
                    let mut out = stdout.lock();
                    let mut err = stderr.lock();
                    let outcome = session.run_line(
                        &cmd,
                        &mut Io {
                            out: &mut out,
                            err: &mut err,
                        },
                    );
                    let _ = out.flush();
                    outcome.status
                }
                None => interactive::run(&mut session),
            }
        }
    }
}
