//! Why `uml_mkcow` fails. Each variant displays as its stderr message
//! (without the final newline; names that are not UTF-8 shown lossily);
//! [`Error::report`] writes it byte for byte, after the C library's detail
//! line of a header failure on stdout. [`uumain`](crate::uumain) prints it.

use std::io::{self, Write};

use uml_common::cli::strerror;
use uml_common::inuse::InUse;

use crate::{usage, EXIT_FAILURE, EXIT_USAGE};

/// A failure of `init_cow_file`: the C library's detail line (stdout) and
/// the error `perror("write_cow_header")` reports (stderr).
#[derive(Debug)]
pub struct InitError {
    /// The line `cow_printf` prints, without the newline.
    pub detail: Vec<u8>,
    /// The error behind it.
    pub error: io::Error,
}

/// Why `uml_mkcow` fails.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// Bad command line: the usage text for the program name given
    /// (status 2).
    #[error("{}", String::from_utf8_lossy(&usage(.0)).trim_end())]
    Usage(Vec<u8>),
    /// A UML guest holds the backing file (write lock) or, with `-f`, the
    /// COW file: two lines naming the file and the holder.
    #[error("{}", String::from_utf8_lossy(&.0.message()).trim_end())]
    InUse(InUse),
    /// The COW file cannot be created (or, with `-f`, opened).
    #[error("open COW file: {}", strerror(.0))]
    OpenCow(io::Error),
    /// The header cannot be made or written: [`InitError::detail`] on
    /// stdout, then this on stderr.
    #[error("write_cow_header: {}", strerror(&.0.error))]
    Init(InitError),
}

impl Error {
    /// The exit status: 2 for the usage text, 1 for everything else (as
    /// Debian's `uml_mkcow`).
    pub fn exit_code(&self) -> i32 {
        match self {
            Error::Usage(_) => EXIT_USAGE,
            _ => EXIT_FAILURE,
        }
    }

    /// Prints the error as C does: a header failure's detail line on `out`
    /// (flushed), then the message on `err`, names byte for byte.
    pub fn report(&self, out: &mut dyn Write, err: &mut dyn Write) {
        let text = match self {
            Error::Usage(prog) => usage(prog),
            Error::InUse(in_use) => in_use.message(),
            Error::Init(init) => {
                let mut line = init.detail.clone();
                line.push(b'\n');
                let _ = out.write_all(&line);
                let _ = out.flush();
                format!("{self}\n").into_bytes()
            }
            Error::OpenCow(_) => format!("{self}\n").into_bytes(),
        };
        let _ = err.write_all(&text);
    }
}
