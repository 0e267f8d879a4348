//! Socket activation (sd_listen_fds(3); parsing in
//! `uml_common::activation`): a service manager may pass the switch's
//! listening sockets already bound — the control socket (a stream socket
//! at `-unix`'s path), `--bess` sockets (seqpacket) and the management
//! socket (stream, `--mgmt`'s path). Each passed socket is matched to an
//! option by its type and the path it is bound to (names, if given, are
//! not needed); the switch then uses it instead of binding, and leaves its
//! file in place at exit (the manager owns it). A passed socket that
//! matches no option is closed with a warning.

use std::os::fd::{AsFd, OwnedFd};
use std::path::{Path, PathBuf};

use uml_common::activation::listen_fds;
use uml_common::sys::fd::{adopt_passed, unix_socket_info};

use crate::error::Error;
use crate::output::err;

/// The sockets passed at start-up, not yet taken.
#[derive(Debug, Default)]
pub struct Passed(Vec<(OwnedFd, i32, Option<PathBuf>)>);

impl Passed {
    /// The sockets the service manager passed to this process (none
    /// without socket activation). The `LISTEN_*` variables are removed
    /// from the environment, as `sd_listen_fds(1)` does.
    pub fn from_env(prog: &str) -> Result<Passed, Error> {
        let fds = listen_fds(|k| std::env::var(k).ok(), std::process::id()).map_err(|e| {
            Error::Activation {
                prog: prog.to_string(),
                why: e.to_string(),
            }
        })?;
        for k in ["LISTEN_PID", "LISTEN_FDS", "LISTEN_FDNAMES"] {
            std::env::remove_var(k);
        }
        let mut passed = Vec::new();
        for f in fds {
            let fail = |e: std::io::Error| Error::Activation {
                prog: prog.to_string(),
                why: format!("descriptor {}: {e}", f.fd),
            };
            let fd = adopt_passed(f.fd).map_err(fail)?;
            let (kind, path) = unix_socket_info(fd.as_fd()).map_err(fail)?;
            passed.push((fd, kind, path));
        }
        Ok(Passed(passed))
    }

    /// The passed socket of type `kind` bound at `path`, if any.
    pub fn take(&mut self, kind: i32, path: &Path) -> Option<OwnedFd> {
        let i = self
            .0
            .iter()
            .position(|(_, k, p)| *k == kind && p.as_deref() == Some(path))?;
        Some(self.0.remove(i).0)
    }

    /// Closes the sockets no option took, saying so.
    pub fn close_rest(self, prog: &str) {
        for (fd, _, path) in self.0 {
            let what = path.map_or("an unnamed socket".to_string(), |p| {
                format!("'{}'", p.display())
            });
            err(&format!(
                "{prog}: passed socket {what} matches no option; closed\n"
            ));
            drop(fd);
        }
    }
}
