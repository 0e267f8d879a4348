//! Why `uml_watchdog` ends with status 1. As in C, only a failed HANG
//! notification has a message (its `perror` text, displayed without the
//! final newline); every other variant displays as nothing and prints
//! nothing. [`uumain`](crate::uumain) prints it.

use std::io;

use uml_common::cli::perror_text;

/// Why `uml_watchdog` ends with status 1.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// Fewer than two arguments, an unknown switch, or a pid that is not a
    /// whole positive `pid_t` (no message, as in C).
    #[error("")]
    Usage,
    /// `-pid`: no such process (no message, as in C).
    #[error("")]
    NoProcess(i32),
    /// The ready byte could not be written to the kernel (no message).
    #[error("")]
    Ready(io::Error),
    /// Reading the pings failed (no message).
    #[error("")]
    Pings(io::Error),
    /// No ping within the timeout; the expiry action was taken (no
    /// message).
    #[error("")]
    Expired,
    /// No ping within the timeout, and the `-mconsole` HANG notification
    /// could not be sent: C's `perror(call)` text.
    #[error("{}", perror_text(.0, .1))]
    Hang(&'static str, io::Error),
    /// The seccomp allow-list could not be installed (`seccomp.rs`).
    #[error("uml_watchdog: {0}")]
    Seccomp(uml_common::sys::seccomp::SeccompError),
    /// The seccomp self-test came back (it printed why); the status.
    #[error("")]
    SelfTest(i32),
}

impl Error {
    /// The exit status: 1, as Debian's `uml_watchdog` for every failure
    /// (the self-test's own status for a failed self-test).
    pub fn exit_code(&self) -> i32 {
        match self {
            Error::SelfTest(status) => *status,
            _ => 1,
        }
    }
}
