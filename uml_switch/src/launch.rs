//! `uml_switch --launch BESS-PATH [--fd N] [--] PROGRAM [ARG]...`: the fd
//! launcher (`docs/vector.md` §3). It connects to the `--bess` socket of a
//! running switch (one `SOCK_SEQPACKET` connection: one port of that
//! switch), puts the connection on descriptor N (default 3) without
//! close-on-exec, and execs PROGRAM with it. A UML started so joins the
//! switch with `vecN:transport=fd,fd=N` — no socket path in the guest's
//! command line, nothing for the guest to bind or connect.
//!
//! The process keeps its pid through the exec, so the switch's `New bess
//! connection: port P (pid N, …)` line names the UML. The kernel closes the
//! descriptor when the guest takes the interface down: an fd port serves
//! one `ip link set up` per boot (the switch then removes the port).

use std::ffi::{OsStr, OsString};
use std::os::fd::{AsRawFd, IntoRawFd, RawFd};
use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::Command;

use nix::fcntl::{fcntl, FcntlArg, FdFlag};
use uml_common::cli::strerror;
use uml_common::sys::seqpacket;

use crate::output::err;
use crate::server::Exit;

/// The descriptor the connection is put on unless `--fd` says otherwise.
pub const DEFAULT_FD: RawFd = 3;
/// Highest descriptor `--fd` accepts.
const MAX_FD: RawFd = 1023;

/// What `--launch` was asked to do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Launch {
    /// The switch's bess socket.
    pub bess: OsString,
    /// Where the connection goes.
    pub fd: RawFd,
    /// The program and its arguments.
    pub command: Vec<OsString>,
}

/// The usage line of `--launch`.
pub fn usage(prog: &str) -> String {
    format!("Usage: {prog} --launch BESS-PATH [--fd N] [--] PROGRAM [ARG]...\n")
}

/// Parses the arguments after `--launch`. The error is the line to print.
pub fn parse(args: &[OsString]) -> Result<Launch, String> {
    let mut it = args.iter();
    let bess = it
        .next()
        .filter(|p| !p.is_empty())
        .ok_or("missing BESS-PATH (the --bess socket of a running switch)")?
        .clone();
    let mut fd = DEFAULT_FD;
    let mut rest: Vec<OsString> = it.cloned().collect();
    if rest.first().map(OsString::as_os_str) == Some(OsStr::new("--fd")) {
        let n = rest.get(1).ok_or("--fd needs a descriptor number")?;
        fd = n
            .to_str()
            .filter(|s| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit()))
            .and_then(|s| s.parse::<RawFd>().ok())
            .filter(|n| (3..=MAX_FD).contains(n))
            .ok_or_else(|| {
                format!(
                    "--fd {}: give a descriptor from 3 to {MAX_FD} (0-2 are the program's stdin, stdout and stderr)",
                    n.to_string_lossy()
                )
            })?;
        rest.drain(..2);
    }
    if rest.first().map(OsString::as_os_str) == Some(OsStr::new("--")) {
        rest.remove(0);
    }
    if rest.is_empty() {
        return Err("missing PROGRAM (e.g. linux.uml ... vec0:transport=fd,fd=3)".to_string());
    }
    Ok(Launch {
        bess,
        fd,
        command: rest,
    })
}

/// Connects to the bess socket and puts the connection on `fd`, without
/// close-on-exec. The error is the line to print.
pub fn connect(bess: &Path, fd: RawFd) -> Result<(), String> {
    let conn = seqpacket::connect(bess).map_err(|e| {
        let why = match e.raw_os_error() {
            Some(libc::EPROTOTYPE) => {
                "not a --bess socket (Protocol wrong type for socket)".to_string()
            }
            _ => strerror(&e),
        };
        format!("connecting to bess socket '{}': {why}", bess.display())
    })?;
    let fail = |e: nix::errno::Errno| format!("descriptor {fd}: {}", e.desc());
    if conn.as_raw_fd() == fd {
        fcntl(fd, FcntlArg::F_SETFD(FdFlag::empty())).map_err(fail)?;
        // Kept open for the program.
        let _ = conn.into_raw_fd();
    } else {
        // dup2 clears close-on-exec on the copy; `conn` is closed on drop.
        nix::unistd::dup2(conn.as_raw_fd(), fd).map_err(fail)?;
    }
    Ok(())
}

/// `uml_switch --launch ARGS`: returns only on failure.
pub fn main(prog: &str, args: &[OsString]) -> Exit {
    let launch = match parse(args) {
        Ok(l) => l,
        Err(why) => {
            err(&format!("{prog} --launch: {why}\n{}", usage(prog)));
            return Exit::Status(1);
        }
    };
    if let Err(why) = connect(Path::new(&launch.bess), launch.fd) {
        err(&format!("{prog} --launch: {why}\n"));
        return Exit::Status(1);
    }
    let e = Command::new(&launch.command[0])
        .args(&launch.command[1..])
        .exec();
    err(&format!(
        "{prog} --launch: cannot run '{}': {}\n",
        launch.command[0].to_string_lossy(),
        strerror(&e)
    ));
    Exit::Status(if e.kind() == std::io::ErrorKind::NotFound {
        127
    } else {
        126
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(args: &[&str]) -> Result<Launch, String> {
        parse(&args.iter().map(OsString::from).collect::<Vec<_>>())
    }

    fn os(v: &[&str]) -> Vec<OsString> {
        v.iter().map(OsString::from).collect()
    }

    #[test]
    fn arguments() {
        assert_eq!(
            p(&["/s", "linux.uml", "--fd", "x"]),
            Ok(Launch {
                bess: "/s".into(),
                fd: 3,
                command: os(&["linux.uml", "--fd", "x"]),
            })
        );
        assert_eq!(
            p(&["/s", "--fd", "7", "--", "--fd"]),
            Ok(Launch {
                bess: "/s".into(),
                fd: 7,
                command: os(&["--fd"]),
            })
        );
        assert_eq!(p(&["/s", "--", "--"]).unwrap().command, os(&["--"]));
        for bad in [
            &[][..],
            &[""],
            &["/s"],
            &["/s", "--"],
            &["/s", "--fd"],
            &["/s", "--fd", "2", "x"],
            &["/s", "--fd", "+4", "x"],
            &["/s", "--fd", "1024", "x"],
            &["/s", "--fd", "4"],
        ] {
            assert!(p(bad).is_err(), "{bad:?}");
        }
        assert!(p(&["/s", "--fd", "0", "x"])
            .unwrap_err()
            .contains("from 3 to"));
    }

    #[test]
    fn refuses_what_is_not_a_bess_socket() {
        let e = connect(Path::new("/nonexistent/bess"), 40).unwrap_err();
        assert!(e.contains("No such file or directory"), "{e}");
    }
}
