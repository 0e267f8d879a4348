//! Why `port-helper` stops, and its one warning: each variant displays as
//! the exact text written to stderr (trailing newline included).
//! [`uumain`](crate::uumain) prints it.

use std::io;

use uml_common::cli::{perror_text, strerror};

use crate::USAGE;

/// What `port-helper` reports on stderr.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// `-uml-socket` without a path.
    #[error("{}", USAGE)]
    Usage,
    /// Socket mode: a call setting up the channel failed (C's
    /// `perror(call)` text).
    #[error("{}\n", perror_text(.0, .1))]
    Channel(&'static str, io::Error),
    /// `TIOCNOTTY` failed: a warning, printed as C does, after which the
    /// helper goes on.
    #[error(
        "TIOCNOTTY failed in port-helper, check UML's exec call for xterm or telnetd: {}\n",
        strerror(.0)
    )]
    NoTty(io::Error),
}

impl Error {
    /// The exit status when this error ends the helper: 1.
    pub fn exit_code(&self) -> i32 {
        1
    }
}
