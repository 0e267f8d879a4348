//! The one description of `uml_watchdog`'s command line, as a clap
//! [`Command`] (feature `clap-command`), for the man page and the shell
//! completions; packaging's tests check it against [`crate::OPTIONS`] in
//! both directions. The program has no `--help` (the kernel runs it).
//!
//! Documentation, not a parser: the program reads its argv by hand, as
//! the C helper does ([`crate::parse_args`]), and does not carry clap.

use clap::{Arg, ArgGroup, Command, ValueHint};

/// Long options spelled with one dash, as the C helper does.
pub const SINGLE_DASH: &[&str] = &["pid", "mconsole"];

/// The command line of `uml_watchdog`.
pub fn command() -> Command {
    let secs = crate::TIMEOUT.as_secs();
    Command::new("uml_watchdog")
        .version(env!("CARGO_PKG_VERSION"))
        .disable_help_flag(true)
        .disable_version_flag(true)
        .about("host side of the User-Mode Linux harddog watchdog")
        .long_about(format!(
            "When a guest process opens /dev/watchdog, the UML kernel runs \
             /usr/bin/uml_watchdog (at that fixed path) with a pipe on standard input that \
             carries one byte per ping. If no ping arrives for {secs} seconds, uml_watchdog \
             acts on the UML: with -pid it sends SIGINT, waits a second, SIGINT again, and \
             then SIGKILL; with -mconsole it sends a HANG notification to the given mconsole \
             notification socket. When the guest closes the device (end of file) it exits \
             quietly. It is not meant to be run by hand."
        ))
        .arg(
            Arg::new("pid")
                .long("pid")
                .value_name("pid")
                .help("The UML's host process id (a positive number)."),
        )
        .arg(
            Arg::new("mconsole")
                .long("mconsole")
                .value_name("socket")
                .value_hint(ValueHint::FilePath)
                .help("The mconsole notification socket (mconsole=notify:SOCKET)."),
        )
        .group(
            ArgGroup::new("mode")
                .args(["pid", "mconsole"])
                .required(true),
        )
}
