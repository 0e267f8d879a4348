//! The one description of `uml_moo`'s command line, as a clap [`Command`]
//! (feature `clap-command`), for the man page, the shell completions and
//! the `--help` text ([`crate::help`]: Debian's usage text, then the
//! options of this implementation, which have a short `help`); packaging's
//! tests check it against [`crate::OPTIONS`] in both directions and
//! [`crate::help`] against the text rendered from it. The conventions are
//! in `uml-utilities-packaging`'s `help` module.
//!
//! Documentation, not a parser: `uml_moo` reads its argv by hand, in the C
//! tool's fixed order ([`crate::parse_args`]), and does not carry clap.

use clap::{Arg, ArgAction, Command, ValueHint};

/// The indent of the option list in `--help` and the column its texts
/// start at.
pub const HELP_LAYOUT: (usize, usize) = (2, 18);

/// Long options spelled with one dash: none.
pub const SINGLE_DASH: &[&str] = &[];

/// The command line of `uml_moo`.
pub fn command() -> Command {
    Command::new("uml_moo")
        .version(env!("CARGO_PKG_VERSION"))
        .disable_help_flag(true)
        .disable_version_flag(true)
        .about("merge a UML copy-on-write file with its backing file")
        .long_about(
            "uml_moo writes the disk image that a UML kernel sees through a COW \
             (copy-on-write) file: the backing file with the COW file's changed sectors \
             applied. It reads COW files of versions 1, 2 and 3. The backing file (the one \
             recorded in the COW header, or the one given with -b) must still have the size \
             and modification time recorded in the header.\n\n\
             Without -d the result is a new file; it is written to a temporary file beside \
             it and renamed into place when complete, keeping holes; on XFS (reflink) and \
             btrfs it shares the backing file's unchanged blocks instead of copying them \
             (see --no-reflink). With -d the backing \
             file itself is changed in place (destructive: other COW files based on it become \
             invalid). -d must come before -b, as in the C tool.\n\n\
             Files a running UML guest holds are refused: the UML block driver locks the files \
             of each ubd device (a write lock on the COW file, a read lock on the backing \
             file; Linux 7.x as long as the device exists, 6.1 while the guest has it open). \
             uml_moo refuses a COW file a guest writes to, a backing file a guest uses when \
             merging into it with -d, and an output file a guest uses, with a message naming \
             the file and the process holding the lock; nothing is changed and the exit \
             status is 1. Merging into a new image from a backing file that guests only read \
             is allowed. Halt the guest (or remove its device with uml_mconsole UMID remove \
             ubdN) first, or give --ignore-locks for a guest that is stopped.",
        )
        .before_help(format!(
            "{}\nOptions of this implementation (anywhere on the command line):\n",
            String::from_utf8_lossy(&crate::usage(b"uml_moo"))
        ))
        .arg(
            Arg::new("destructive")
                .short('d')
                .action(ArgAction::SetTrue)
                .long_help(
                    "Merge in place into the backing file; then only the COW file is given. \
                     Must be the first argument.",
                ),
        )
        .arg(
            Arg::new("backing")
                .short('b')
                .value_name("actual-backing-file")
                .value_hint(ValueHint::FilePath)
                .long_help(
                    "Use this backing file instead of the one named in the COW header (for \
                     a COW file made inside a chroot).",
                ),
        )
        .arg(
            Arg::new("ignore-locks")
                .long("ignore-locks")
                .action(ArgAction::SetTrue)
                .help(
                    "merge even when a UML guest holds a lock on the COW file,\n\
                     the backing file or the output file (without it, such a\n\
                     file is refused, since a running guest is using it); only\n\
                     for a guest that is stopped and will not write",
                )
                .long_help(
                    "Merge even when a UML guest holds a lock on the COW, backing or output \
                     file; only for a guest that is stopped and will not write. May appear \
                     anywhere (not as the value of -b). Not in Debian's uml_moo.",
                ),
        )
        .arg(
            Arg::new("no-reflink")
                .long("no-reflink")
                .action(ArgAction::SetTrue)
                .help(
                    "write every block of a new image, even on a file system\n\
                     that can share the backing file's unchanged blocks with\n\
                     it (XFS with reflink, btrfs); no effect with -d",
                )
                .long_help(
                    "Write every block of a new image (as Debian's uml_moo does). Without it, \
                     on a file system that shares extents between files (XFS with reflink=1, \
                     btrfs) and with the output on the backing file's file system, the new \
                     image shares the backing file's unchanged blocks (FICLONERANGE) and only \
                     the dirty blocks are written: the same bytes, in a fraction of the time \
                     and new disk space. Elsewhere, or when sharing fails, the image is \
                     copied anyway. May appear anywhere (not as the value of -b); no effect \
                     with -d. Not in Debian's uml_moo.",
                ),
        )
        .arg(
            Arg::new("help")
                .long("help")
                .action(ArgAction::Help)
                .help("print this help and exit")
                .long_help(
                    "Print the usage text and the options of this implementation on standard \
                     output and exit 0 (only as the sole argument; Debian's uml_moo prints the \
                     usage on standard error and exits 1).",
                ),
        )
        .arg(
            Arg::new("cow")
                .value_name("COW-file")
                .required(true)
                .value_hint(ValueHint::FilePath)
                .help("The COW file."),
        )
        .arg(
            Arg::new("new")
                .value_name("new-image")
                .value_hint(ValueHint::FilePath)
                .help("The file to write (not with -d)."),
        )
}
