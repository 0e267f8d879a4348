//! The one description of `port-helper`'s command line, as a clap
//! [`Command`] (feature `clap-command`), for the man page; packaging's
//! tests check it against [`crate::OPTIONS`] in both directions. The
//! program has no `--help` (the kernel's console channels run it).
//!
//! Documentation, not a parser: the program reads its argv by hand, as
//! the C helper does ([`crate::parse_args`]), and does not carry clap.

use clap::{Arg, Command, ValueHint};

/// Long options spelled with one dash, as the C helper does.
pub const SINGLE_DASH: &[&str] = &["uml-socket"];

/// The command line of `port-helper`.
pub fn command() -> Command {
    Command::new("port-helper")
        .version(env!("CARGO_PKG_VERSION"))
        .disable_help_flag(true)
        .disable_version_flag(true)
        .about("hand a terminal to a User-Mode Linux console channel")
        .long_about(
            "port-helper is run for the UML kernel's port and xterm console channels, not by \
             hand. For a port channel, in.telnetd -L /usr/lib/uml/port-helper runs it with the \
             telnet session's terminal as standard input and output and descriptor 3 \
             connected to the kernel. For an xterm channel, the terminal emulator runs \
             port-helper -uml-socket SOCKET inside the new window. Either way it sends its \
             terminal (descriptor 0) and its pid to the kernel and waits until the terminal \
             hangs up. Kernels up to 6.15 (and 32-bit ones) find it at \
             /usr/lib/uml/port-helper, 64-bit kernels from 6.16 on (Debian's 7.x) at \
             /usr/lib64/uml/port-helper; the package installs both (the second is a link to \
             the first). For the port channel the environment variable UML_PORT_HELPER \
             overrides the path; the xterm channel has no override.",
        )
        .arg(
            Arg::new("uml-socket")
                .long("uml-socket")
                .value_name("socket-path")
                .value_hint(ValueHint::FilePath)
                .help(
                    "Socket mode: connect to the kernel's datagram socket at socket-path \
                     instead of using descriptor 3.",
                ),
        )
}
