//! Why `jail_uml` stops: one variant per failure, each displayed as the
//! message `jail_uml` writes to stderr (Debian's where it has one), without
//! the final newline. [`uumain`](crate::uumain) prints it as a line.

use std::io;

use uml_common::cli::{perror_text, strerror};

use crate::{NOT_ROOT, USAGE};

/// Why `jail_uml` stops (every failure exits 1, as in C).
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// Not run as root.
    #[error("{}", NOT_ROOT.trim_end())]
    NotRoot,
    /// Bad command line: the usage text.
    #[error("{}", USAGE.trim_end())]
    Usage,
    /// A system call failed: C's `perror(what)` text.
    #[error("{}", perror_text(.0, .1))]
    Step(&'static str, io::Error),
    /// The ids after the switch are not the requested ones.
    #[error("jail_uml: could not change to the requested ids")]
    Incomplete,
    /// `execve` of the program (its path as given) failed.
    #[error("execve of {} failed : {}", String::from_utf8_lossy(.0), strerror(.1))]
    Exec(Vec<u8>, io::Error),
}

impl Error {
    /// The exit status: 1 for every failure, as Debian's `jail_uml`.
    pub fn exit_code(&self) -> i32 {
        1
    }
}
