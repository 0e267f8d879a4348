//! Why `port-helper` stops, and its one warning: each variant displays as
//! the message written to stderr, without the final newline.
//! [`uumain`](crate::uumain) prints it as a line.

use std::io;

use uml_common::cli::{perror_text, strerror};

use crate::USAGE;

/// What `port-helper` reports on stderr.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// `-uml-socket` without a path.
    #[error("{}", USAGE.trim_end())]
    Usage,
    /// Socket mode: a call setting up the channel failed (C's
    /// `perror(call)` text).
    #[error("{}", perror_text(.0, .1))]
    Channel(&'static str, io::Error),
    /// `TIOCNOTTY` failed: a warning, printed as C does, after which the
    /// helper goes on.
    #[error(
        "TIOCNOTTY failed in port-helper, check UML's exec call for xterm or telnetd: {}",
        strerror(.0)
    )]
    NoTty(io::Error),
    /// The seccomp allow-list could not be installed (`seccomp.rs`).
    #[error("port-helper: {0}")]
    Seccomp(uml_common::sys::seccomp::SeccompError),
}

impl Error {
    /// The exit status when this error ends the helper: 1.
    pub fn exit_code(&self) -> i32 {
        1
    }
}
