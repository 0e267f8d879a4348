//! Unix socket helpers shared by the port kinds that own a socket file:
//! the C switch's bind with stale-socket detection.

use std::io;
use std::os::unix::net::{UnixDatagram, UnixStream};
use std::path::Path;

use uml_common::cli::strerror;

use crate::output::err;

/// How binding a socket file went.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BindOutcome {
    /// Bound.
    Bound,
    /// Another server answers on the path.
    InUse,
    /// The path exists, nobody answers, but it could not be replaced.
    CantRemove,
}

/// `bind_socket` of the C switch: bind, and on `EADDRINUSE` test the old
/// socket with `probe_alive`; remove it and bind again when nobody
/// answers (`ECONNREFUSED`). Prints the C switch's `bind:`/`connect:`
/// lines.
pub fn bind_with_stale_check<T>(
    path: &Path,
    bind: impl Fn(&Path) -> io::Result<T>,
    probe_alive: impl Fn(&Path) -> io::Result<()>,
) -> (BindOutcome, Option<T>) {
    match bind(path) {
        Ok(s) => return (BindOutcome::Bound, Some(s)),
        Err(e) if e.kind() == io::ErrorKind::AddrInUse => {}
        Err(e) => {
            err(&format!("bind: {}\n", strerror_path(&e)));
            return (BindOutcome::CantRemove, None);
        }
    }
    match probe_alive(path) {
        Ok(()) => (BindOutcome::InUse, None),
        Err(e) if e.raw_os_error() == Some(libc::ECONNREFUSED) => {
            if let Err(e) = std::fs::remove_file(path) {
                err(&format!(
                    "Failed to removed unused socket '{}': {}\n",
                    path.display(),
                    strerror(&e)
                ));
            }
            match bind(path) {
                Ok(s) => (BindOutcome::Bound, Some(s)),
                Err(e) => {
                    err(&format!("bind: {}\n", strerror_path(&e)));
                    (BindOutcome::CantRemove, None)
                }
            }
        }
        Err(e) => {
            err(&format!("connect: {}\n", strerror(&e)));
            (BindOutcome::InUse, None)
        }
    }
}

/// `strerror` of a bind error; std reports a path longer than `sun_path`
/// without an errno.
pub fn strerror_path(e: &io::Error) -> String {
    if e.raw_os_error().is_none() && e.kind() == io::ErrorKind::InvalidInput {
        "File name too long".to_string()
    } else {
        strerror(e)
    }
}

/// Whether a stream server answers on `path`.
pub fn probe_stream(path: &Path) -> io::Result<()> {
    UnixStream::connect(path).map(|_| ())
}

/// Whether a datagram socket is bound at `path`.
pub fn probe_dgram(path: &Path) -> io::Result<()> {
    UnixDatagram::unbound()?.connect(path)
}
