//! The one description of `uml_mkcow`'s command line, as a clap [`Command`]
//! (feature `clap-command`), for the man page, the shell completions and
//! the `--help` text ([`crate::help`]: Debian's usage text, then the
//! options of this implementation, which have a short `help`); packaging's
//! tests check it against [`crate::OPTIONS`] in both directions and
//! [`crate::help`] against the text rendered from it. The conventions are
//! in `uml-utilities-packaging`'s `help` module.
//!
//! Documentation, not a parser: `uml_mkcow` reads its argv by hand, in the C
//! tool's fixed order ([`crate::parse_args`]), and does not carry clap.

use clap::{Arg, ArgAction, Command, ValueHint};

/// The indent of the option list in `--help` and the column its texts
/// start at.
pub const HELP_LAYOUT: (usize, usize) = (2, 18);

/// Long options spelled with one dash: none.
pub const SINGLE_DASH: &[&str] = &[];

/// The command line of `uml_mkcow`.
pub fn command() -> Command {
    Command::new("uml_mkcow")
        .version(env!("CARGO_PKG_VERSION"))
        .disable_help_flag(true)
        .disable_version_flag(true)
        .about("create an empty UML copy-on-write file")
        .long_about(
            "uml_mkcow creates a COW (copy-on-write) file for backing file without booting a \
             UML kernel: a version 3 header recording the backing file's absolute path, size \
             and modification time, and an empty sparse bitmap and data area, exactly as the \
             kernel would write them. Use it as ubd0=COW,BACKING.\n\n\
             Only the first argument can be -f; arguments after the backing file are ignored.\n\n\
             Files a running UML guest holds are refused: the UML block driver locks the files \
             of each ubd device (a write lock on the COW file or a writable image, a read lock \
             on a backing file; Linux 7.x as long as the device exists, 6.1 while the guest \
             has it open). uml_mkcow -f refuses an existing COW file a guest uses, and \
             uml_mkcow refuses a backing file a guest writes to, with a message naming the \
             file and the process holding the lock; nothing is created or changed and the \
             exit status is 1. A backing file that guests only read (through other COW files) \
             is fine. Halt the guest (or remove its device with uml_mconsole UMID remove \
             ubdN) first, or give --ignore-locks for a guest that is stopped.",
        )
        .before_help(format!(
            "{}\nOptions of this implementation (anywhere on the command line):\n",
            String::from_utf8_lossy(&crate::usage(b"uml_mkcow"))
        ))
        .arg(
            Arg::new("force")
                .short('f')
                .action(ArgAction::SetTrue)
                .long_help(
                    "Overwrite an existing COW file (it is started afresh; the backing file \
                     itself is refused).",
                ),
        )
        .arg(
            Arg::new("ignore-locks")
                .long("ignore-locks")
                .action(ArgAction::SetTrue)
                .help(
                    "write even when a UML guest holds a lock on the COW file\n\
                     (with -f) or a write lock on the backing file (without\n\
                     it, such a file is refused, since a running guest is\n\
                     using it); only for a guest that is stopped",
                )
                .long_help(
                    "Write even when a UML guest holds a lock on the COW file (with -f) or a \
                     write lock on the backing file; only for a guest that is stopped. May \
                     appear anywhere. Not in Debian's uml_mkcow.",
                ),
        )
        .arg(
            Arg::new("help")
                .long("help")
                .action(ArgAction::Help)
                .help("print this help and exit")
                .long_help(
                    "Print the usage text and the options of this implementation on standard \
                     output and exit 0 (only as the sole argument; Debian's uml_mkcow prints \
                     the usage on standard error and exits 2).",
                ),
        )
        .arg(
            Arg::new("cow")
                .value_name("COW-file")
                .required(true)
                .value_hint(ValueHint::FilePath)
                .help("The COW file to create."),
        )
        .arg(
            Arg::new("backing")
                .value_name("backing-file")
                .required(true)
                .value_hint(ValueHint::FilePath)
                .help("The backing file (a regular file or a block device)."),
        )
}
