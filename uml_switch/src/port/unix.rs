//! Unix socket helpers shared by the port kinds that own a socket file:
//! the C switch's bind with stale-socket detection.

use std::fmt;
use std::io;
use std::os::unix::net::{UnixDatagram, UnixStream};
use std::path::{Path, PathBuf};

use uml_common::cli::strerror;

use crate::output::err;

/// Why a socket file could not be bound (C's `bind_socket` failed). Its
/// `Display` is what C printed on the way, before the caller's message:
/// the `connect:`, `Failed to removed unused socket` and `bind:` lines,
/// each with its newline (nothing for [`BindFailure::InUse`]).
#[derive(Debug)]
pub enum BindFailure {
    /// Another server answers on the path.
    InUse,
    /// The path is taken and testing it failed otherwise than with
    /// `ECONNREFUSED` (C's `perror("connect")`); counted as in use.
    Probe(io::Error),
    /// `bind` failed otherwise than with `EADDRINUSE` (C's
    /// `perror("bind")`).
    Bind(io::Error),
    /// Nobody answers on the path, but binding again failed (C's
    /// `perror("bind")`), after removing the stale socket failed too
    /// (`unlink`, C's `Failed to removed unused socket` line) or not.
    Rebind {
        /// The socket file.
        path: PathBuf,
        /// Why removing the stale socket failed, if it did.
        unlink: Option<io::Error>,
        /// Why binding again failed.
        bind: io::Error,
    },
}

impl BindFailure {
    /// Whether the C switch reports this as "another server attached"
    /// (else: "exists, isn't used, but couldn't be removed").
    pub fn in_use(&self) -> bool {
        matches!(self, BindFailure::InUse | BindFailure::Probe(_))
    }
}

impl fmt::Display for BindFailure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            BindFailure::InUse => Ok(()),
            BindFailure::Probe(e) => writeln!(f, "connect: {}", strerror(e)),
            BindFailure::Bind(e) => writeln!(f, "bind: {}", strerror_path(e)),
            BindFailure::Rebind { path, unlink, bind } => {
                if let Some(e) = unlink {
                    writeln!(f, "{}", unlink_failure_text(path, e))?;
                }
                writeln!(f, "bind: {}", strerror_path(bind))
            }
        }
    }
}

/// C's line for a stale socket that could not be removed.
fn unlink_failure_text(path: &Path, e: &io::Error) -> String {
    format!(
        "Failed to removed unused socket '{}': {}",
        path.display(),
        strerror(e)
    )
}

/// `bind_socket` of the C switch: bind, and on `EADDRINUSE` test the old
/// socket with `probe_alive`; remove it and bind again when nobody
/// answers (`ECONNREFUSED`). The lines C prints on the way are in the
/// failure (see [`BindFailure`]), except the one of a stale socket that
/// could not be removed yet was bound again (someone else removed it): a
/// warning, printed here, as C does.
pub fn bind_with_stale_check<T>(
    path: &Path,
    bind: impl Fn(&Path) -> io::Result<T>,
    probe_alive: impl Fn(&Path) -> io::Result<()>,
) -> Result<T, BindFailure> {
    match bind(path) {
        Ok(s) => return Ok(s),
        Err(e) if e.kind() == io::ErrorKind::AddrInUse => {}
        Err(e) => return Err(BindFailure::Bind(e)),
    }
    match probe_alive(path) {
        Ok(()) => Err(BindFailure::InUse),
        Err(e) if e.raw_os_error() == Some(libc::ECONNREFUSED) => {
            let unlink = std::fs::remove_file(path).err();
            match bind(path) {
                Ok(s) => {
                    if let Some(e) = unlink {
                        err(&format!("{}\n", unlink_failure_text(path, &e)));
                    }
                    Ok(s)
                }
                Err(bind) => Err(BindFailure::Rebind {
                    path: path.to_path_buf(),
                    unlink,
                    bind,
                }),
            }
        }
        Err(e) => Err(BindFailure::Probe(e)),
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

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::net::UnixListener;

    fn temp_dir(tag: &str) -> PathBuf {
        let d = std::env::temp_dir().join(format!("uml_switch-unix-{tag}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        std::fs::create_dir_all(&d).unwrap();
        d
    }

    #[test]
    fn a_stale_socket_is_replaced_and_a_live_one_is_not() {
        let d = temp_dir("stale");
        let path = d.join("s");
        drop(UnixListener::bind(&path).unwrap());
        let live = bind_with_stale_check(&path, |p| UnixListener::bind(p), probe_stream).unwrap();
        let e = bind_with_stale_check(&path, |p| UnixListener::bind(p), probe_stream).unwrap_err();
        assert!(matches!(e, BindFailure::InUse) && e.in_use(), "{e:?}");
        assert_eq!(e.to_string(), "");
        drop(live);
        let _ = std::fs::remove_dir_all(&d);
    }

    #[test]
    fn the_c_lines_of_a_failure() {
        let e = BindFailure::Bind(io::Error::from_raw_os_error(libc::EACCES));
        assert!(!e.in_use());
        assert_eq!(e.to_string(), "bind: Permission denied\n");
        let e = BindFailure::Probe(io::Error::from_raw_os_error(libc::EACCES));
        assert!(e.in_use());
        assert_eq!(e.to_string(), "connect: Permission denied\n");
        let e = BindFailure::Rebind {
            path: PathBuf::from("/d/s"),
            unlink: Some(io::Error::from_raw_os_error(libc::EACCES)),
            bind: io::Error::from_raw_os_error(libc::EADDRINUSE),
        };
        assert!(!e.in_use());
        assert_eq!(
            e.to_string(),
            "Failed to removed unused socket '/d/s': Permission denied\n\
             bind: Address already in use\n"
        );
        let long = Path::new("/").join("x".repeat(200));
        let e = bind_with_stale_check(&long, |p| UnixListener::bind(p), probe_stream).unwrap_err();
        assert_eq!(e.to_string(), "bind: File name too long\n");
    }
}
