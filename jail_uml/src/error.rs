//! Why `jail_uml` stops: one variant per failure, each displayed as the
//! exact text `jail_uml` writes to stderr (Debian's where it has one,
//! trailing newline included). [`uumain`](crate::uumain) prints it.

use std::io;

use uml_common::cli::{perror_text, strerror};

use crate::{NOT_ROOT, USAGE};

/// Why `jail_uml` stops (every failure exits 1, as in C).
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// Not run as root.
    #[error("{}", NOT_ROOT)]
    NotRoot,
    /// Bad command line: the usage text.
    #[error("{}", USAGE)]
    Usage,
    /// A system call failed: C's `perror(what)` text.
    #[error("{}\n", perror_text(.0, .1))]
    Step(&'static str, io::Error),
    /// The ids after the switch are not the requested ones.
    #[error("jail_uml: could not change to the requested ids\n")]
    Incomplete,
    /// `execve` of the program (its path as given) failed.
    #[error("execve of {} failed : {}\n", String::from_utf8_lossy(.0), strerror(.1))]
    Exec(Vec<u8>, io::Error),
}

impl Error {
    /// The exit status: 1 for every failure, as Debian's `jail_uml`.
    pub fn exit_code(&self) -> i32 {
        1
    }
}
