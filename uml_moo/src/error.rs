//! Why a merge fails. Each variant displays as its stderr message (one
//! line, without the newline; names that are not UTF-8 shown lossily);
//! [`Error::report`] writes it byte for byte as C does, after the header
//! lines C prints on stdout. [`uumain`](crate::uumain) prints it.

use std::io::{self, Write};
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

use uml_common::cli::strerror;
use uml_common::cow::BackingMismatch;
use uml_common::inuse::InUse;

use crate::merge::MergeError;
use crate::{usage, EXIT_FAILURE};

/// Why `uml_moo` fails (status 1 for all, as in C).
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// Bad command line: the usage text for the program name given.
    #[error("{}", String::from_utf8_lossy(&usage(.0)).trim_end())]
    Usage(Vec<u8>),
    /// The COW file cannot be opened.
    #[error("COW file open: {}", strerror(.0))]
    CowOpen(io::Error),
    /// The header is unreadable or not a COW header; the lines go to
    /// stdout (the C library's `printf`s), then the summary to stderr.
    #[error("Reading COW header failed")]
    Header(Vec<String>),
    /// The backing file cannot be `stat`ed.
    #[error("Stating backing file: {}", strerror(.0))]
    StatBacking(io::Error),
    /// Size or mtime of the backing file differ from the header's.
    #[error("{}", mismatch_text(.mismatch, .name))]
    Mismatch {
        /// What differs.
        mismatch: BackingMismatch,
        /// The backing file as given or as stored.
        name: PathBuf,
    },
    /// The backing file cannot be opened.
    #[error("Opening backing file: {}", strerror(.0))]
    OpenBacking(io::Error),
    /// The output cannot be created.
    #[error("Output file open: {}", strerror(.0))]
    OutputOpen(io::Error),
    /// The output would overwrite the COW file while it is being read.
    #[error("Output file open: the output is the COW file itself")]
    OutputIsCow,
    /// A merge step failed.
    #[error(transparent)]
    Merge(#[from] MergeError),
    /// The finished image cannot be put in place.
    #[error("Renaming output file: {}", strerror(.0))]
    Commit(io::Error),
    /// A UML guest holds one of the files (two lines, see
    /// [`InUse::message`]).
    #[error("{}", String::from_utf8_lossy(&.0.message()).trim_end())]
    InUse(InUse),
}

/// C's mismatch messages: the values as `long`, the name (bytes as
/// given) in quotes.
fn mismatch_bytes(m: &BackingMismatch, name: &[u8]) -> Vec<u8> {
    let (what, a, b) = match *m {
        BackingMismatch::Size { header, actual } => ("Size", header as i64, actual as i64),
        BackingMismatch::Mtime { header, actual } => ("mtime", header, actual),
    };
    let mut v =
        format!("{what} mismatch ({a} vs {b}) of COW header vs backing file \"").into_bytes();
    v.extend_from_slice(name);
    v.push(b'"');
    v
}

fn mismatch_text(m: &BackingMismatch, name: &Path) -> String {
    String::from_utf8_lossy(&mismatch_bytes(m, name.as_os_str().as_bytes())).into_owned()
}

impl Error {
    /// The exit status: 1, as Debian's `uml_moo` for every failure and for
    /// the usage text.
    pub fn exit_code(&self) -> i32 {
        EXIT_FAILURE
    }

    /// Prints the error as C does: stdout lines first (header failures),
    /// then the message on stderr, names byte for byte.
    pub fn report(&self, out: &mut dyn Write, err: &mut dyn Write) {
        if let Error::Header(lines) = self {
            for l in lines {
                let _ = writeln!(out, "{l}");
            }
            let _ = out.flush();
        }
        let text = match self {
            Error::Usage(prog) => usage(prog),
            Error::InUse(in_use) => in_use.message(),
            Error::Mismatch { mismatch, name } => {
                let mut line = mismatch_bytes(mismatch, name.as_os_str().as_bytes());
                line.push(b'\n');
                line
            }
            other => format!("{other}\n").into_bytes(),
        };
        let _ = err.write_all(&text);
    }
}
