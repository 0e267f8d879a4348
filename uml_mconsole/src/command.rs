//! The one description of `uml_mconsole`'s command line, as a clap
//! [`Command`] (feature `clap-command`), for the man page, the shell
//! completions and the `--help` text ([`crate::options::HELP`], checked
//! against the text rendered from it); packaging's tests check it against
//! [`crate::options::OPTIONS`] in both directions. The conventions are in
//! `uml-utilities-packaging`'s `help` module.
//!
//! Documentation, not a parser: the client reads its argv by hand
//! ([`crate::options::parse`]), keeping Debian's positional form, and does
//! not carry clap.

use clap::{Arg, ArgAction, Command, ValueHint};

use crate::options::DEFAULT_TIMEOUT;

/// The indent of the option list in `--help` and the column its texts
/// start at.
pub const HELP_LAYOUT: (usize, usize) = (2, 21);

/// Long options spelled with one dash: none.
pub const SINGLE_DASH: &[&str] = &[];

/// The command line of `uml_mconsole`.
pub fn command() -> Command {
    let timeout = DEFAULT_TIMEOUT.as_secs();
    Command::new("uml_mconsole")
        .version(env!("CARGO_PKG_VERSION"))
        .disable_help_flag(true)
        .disable_version_flag(true)
        .about("send management-console commands to a User-Mode Linux kernel")
        .long_about(
            "uml_mconsole talks to the management console (mconsole) of a running User-Mode \
             Linux kernel. With a command on the command line it sends that command once, \
             prints the reply (\"OK text\" or \"ERR text\") and exits with the command's \
             status. Without one it reads commands interactively, with line editing, history \
             and completion of command names.\n\n\
             socket-name is a umid, looked up as ~/.uml/UMID/mconsole and then \
             /tmp/uml/UMID/mconsole, or the path of an mconsole socket. Every candidate that \
             does not exist is reported on standard error (\"Warning: couldn't stat file: \
             ...\"), as Debian's client does.\n\n\
             The options are new in this implementation; they are recognised only before \
             socket-name, so every command line of Debian's uml_mconsole means what it meant.",
        )
        .before_help(
            "Usage: uml_mconsole [OPTIONS] socket-name [command...]\n\
             \x20      uml_mconsole --notify SOCKET\n\
             \n\
             Send management-console commands to a User-Mode Linux kernel. With a command,\n\
             run it once and exit with its status; without, read commands interactively.\n\
             socket-name is a umid (looked up in ~/.uml/UMID/mconsole and\n\
             /tmp/uml/UMID/mconsole) or the path of an mconsole socket.\n\
             \n\
             Options (before socket-name):\n",
        )
        .after_help(
            "  --                 end of options\n\
             \n\
             Exit status: 0 on success; the low byte of the kernel's error code for a\n\
             failed command (1, or 256 - errno); 1 for usage, send and receive errors;\n\
             2 when a reply did not arrive in full within the timeout.\n\
             Local commands: quit, help, switch NAME, log TEXT, log -f FILE,\n\
             mconsole-version, int (SIGINT to the UML).\n",
        )
        .arg(
            Arg::new("timeout")
                .long("timeout")
                .value_name("SECONDS")
                .help(format!(
                    "give up waiting for a reply packet after SECONDS\n\
                     (default {timeout}; fractions allowed)"
                ))
                .long_help(format!(
                    "Give up waiting for a reply packet after SECONDS (default {timeout}; \
                     fractions allowed, at most 86400). An incomplete reply is printed, \
                     reported on standard error and ends with status 2."
                )),
        )
        .arg(
            Arg::new("notify")
                .long("notify")
                .value_name("SOCKET")
                .value_hint(ValueHint::FilePath)
                .help(
                    "bind a datagram socket at SOCKET (boot the UML with\n\
                     mconsole=notify:SOCKET) and print each notification\n\
                     (SOCKET, PANIC, HANG, USER_NOTIFY) on its own line\n\
                     until interrupted",
                )
                .long_help(
                    "Bind a datagram socket at SOCKET (boot the UML with \
                     mconsole=notify:SOCKET) and print each notification (SOCKET, PANIC, HANG, \
                     USER_NOTIFY) on its own line until interrupted. Takes no socket-name.",
                ),
        )
        .arg(
            Arg::new("help")
                .long("help")
                .action(ArgAction::Help)
                .help("print this help and exit")
                .long_help("Print a help text and exit."),
        )
        .arg(
            Arg::new("version")
                .long("version")
                .action(ArgAction::Version)
                .help("print the version and exit")
                .long_help("Print the version and exit."),
        )
        .arg(
            Arg::new("socket-name")
                .value_name("socket-name")
                .value_hint(ValueHint::AnyPath)
                .help("The umid of the UML, or the path of its mconsole socket."),
        )
        .arg(
            Arg::new("command")
                .value_name("command")
                .num_args(0..)
                .trailing_var_arg(true)
                .allow_hyphen_values(true)
                .help(
                    "A command for the kernel or a local command; its words are joined with \
                     single spaces. Without it, commands are read from standard input.",
                ),
        )
}
