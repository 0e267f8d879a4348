//! Why `uml_mconsole` stops before or instead of talking to a UML. Each
//! variant displays as the message written to stderr, without the final
//! newline (Debian's usage line for [`Error::Usage`]); the silent ones
//! display as nothing. [`uumain`](crate::uumain) prints it. What a kernel
//! command answers, and its status, is not an error here: the session
//! prints it and the status is the command's.

use std::io;
use std::path::PathBuf;

use uml_common::cli::{perror_text, strerror};

use crate::options::USAGE;

/// Why `uml_mconsole` stops (status 1 for all).
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// No socket name: Debian's usage line.
    #[error("{}", USAGE.trim_end())]
    Usage,
    /// `--timeout` with a value that is not a positive number of seconds
    /// (at most a day).
    #[error(
        "uml_mconsole: invalid --timeout value '{0}': expected a positive number of seconds (at most 86400)"
    )]
    BadTimeout(String),
    /// `--timeout` or `--notify` as the last argument.
    #[error("uml_mconsole: option '{0}' needs a value")]
    MissingValue(String),
    /// A `--` option this program does not have.
    #[error(
        "uml_mconsole: unrecognized option '{0}'\nTry 'uml_mconsole --help' for more information."
    )]
    UnknownOption(String),
    /// `--notify` with a socket name or command after it.
    #[error("uml_mconsole: --notify takes no socket-name or command")]
    NotifyWithOperands,
    /// The client socket cannot be bound (C's `perror("bind")`).
    #[error("{}", perror_text("bind", .0))]
    Bind(io::Error),
    /// `--notify`: a signal handler cannot be installed.
    #[error("uml_mconsole: cannot handle signal {0}: {}", strerror(.1))]
    Signal(i32, io::Error),
    /// `--notify`: the notification socket cannot be bound.
    #[error(
        "uml_mconsole: cannot bind notification socket '{}': {}{}",
        .path.display(),
        strerror(.source),
        bind_hint(.source)
    )]
    NotifyBind {
        /// The socket path.
        path: PathBuf,
        /// Why.
        source: io::Error,
    },
    /// `--notify`: receiving failed.
    #[error("uml_mconsole: recvmsg: {}", strerror(.0))]
    NotifyReceive(io::Error),
    /// `--notify`: the socket's receive timeout cannot be set (no
    /// message).
    #[error("")]
    NotifySetup(io::Error),
    /// `--notify`: a notification cannot be written to stdout (no
    /// message).
    #[error("")]
    Output(io::Error),
}

/// What to do about a notification socket path already bound.
fn bind_hint(e: &io::Error) -> &'static str {
    if e.kind() == io::ErrorKind::AddrInUse {
        " (remove the old socket file or choose another path)"
    } else {
        ""
    }
}

impl Error {
    /// The exit status: 1.
    pub fn exit_code(&self) -> i32 {
        1
    }
}
