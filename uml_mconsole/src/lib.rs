//! `uml_mconsole`: the management-console client of User-Mode Linux, a
//! drop-in for Debian's, that never hangs (`docs/mconsole.md` §5).
#![forbid(unsafe_code)]

pub mod absolutize;
pub mod client;
#[cfg(feature = "clap-command")]
pub mod command;
mod error;
pub mod interactive;
pub mod notify;
pub mod options;

use std::ffi::OsString;
use std::io::{self, Write};

use client::{Io, Session};
pub use error::Error;
use options::Mode;

/// The program: `args` is argv (program name first). Returns the exit
/// status: the command's (see `options::HELP`), or the error's.
pub fn uumain(args: impl IntoIterator<Item = OsString>) -> i32 {
    let args: Vec<OsString> = args.into_iter().skip(1).collect();
    match run(&args) {
        Ok(status) => status,
        Err(e) => {
            let message = e.to_string();
            if !message.is_empty() {
                let _ = writeln!(io::stderr(), "{message}");
            }
            e.exit_code()
        }
    }
}

/// Everything after the program name: the exit status of what was done,
/// or why nothing could be.
fn run(args: &[OsString]) -> Result<i32, Error> {
    let opts = options::parse(args)?;
    match opts.mode {
        Mode::Help => {
            print!("{}", options::HELP);
            Ok(0)
        }
        Mode::Version => {
            println!(
                "uml_mconsole (uml-utilities-rs) {}\nmconsole protocol version 2",
                env!("CARGO_PKG_VERSION")
            );
            Ok(0)
        }
        Mode::Notify { socket } => notify::run(std::path::Path::new(&socket)).map(|()| 0),
        Mode::Run { name, command } => {
            let sock = client::bind_client_socket().map_err(Error::Bind)?;
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
            Ok(match command {
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
            })
        }
    }
}
