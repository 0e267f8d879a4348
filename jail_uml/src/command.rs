//! The one description of `jail_uml`'s command line, as a clap
//! [`Command`] (feature `clap-command`), for the man page and the shell
//! completions. `jail_uml` has operands only, no options (and no
//! `--help`): packaging's tests check that the description has none
//! either.
//!
//! Documentation, not a parser: the program reads its argv by hand
//! ([`crate::parse`]) and does not carry clap.

use clap::{Arg, Command, ValueHint};

/// Long options spelled with one dash: none.
pub const SINGLE_DASH: &[&str] = &[];

/// The command line of `jail_uml`.
pub fn command() -> Command {
    let gid = crate::NUMERIC_USER_GID;
    Command::new("jail_uml")
        .version(env!("CARGO_PKG_VERSION"))
        .disable_help_flag(true)
        .disable_version_flag(true)
        .about("run a User-Mode Linux kernel chrooted as an unprivileged user")
        .long_about(format!(
            "jail_uml, run as root, changes into jail-directory, makes it the root directory, \
             takes the identity of user (its uid, primary group and supplementary groups) and \
             runs uml-command-line there: the program path is taken inside the jail, without \
             a PATH search, and with an empty environment. A user name that is not found is \
             read as a number (uid), which then gets group {gid}. Every step is checked; \
             inherited descriptors other than 0 to 2 are closed."
        ))
        .arg(
            Arg::new("jail-directory")
                .value_name("jail-directory")
                .required(true)
                .value_hint(ValueHint::DirPath)
                .help("The directory that becomes the root directory."),
        )
        .arg(
            Arg::new("user")
                .value_name("user")
                .required(true)
                .value_hint(ValueHint::Username)
                .help("A user name, or a numeric uid."),
        )
        .arg(
            Arg::new("uml-command-line")
                .value_name("uml-command-line")
                .required(true)
                .num_args(1..)
                .trailing_var_arg(true)
                .allow_hyphen_values(true)
                .help("The program (a path inside the jail) and its arguments."),
        )
}
