//! `jail_uml`: run a program (a UML kernel) chrooted as an unprivileged
//! user, a drop-in replacement for Debian's `/usr/sbin/jail_uml` (see
//! `docs/helpers.md` §3).
//!
//! `jail_uml JAIL-DIRECTORY USER|UID COMMAND [ARGS...]`:
//!
//! 1. refuse unless the effective uid is 0 (`jail_uml must be run as
//!    root`);
//! 2. look the user up in the host's user database: its uid, its primary
//!    group and its supplementary groups (`initgroups` semantics). A name
//!    that is not found is read as a number (`strtoul` base 0) and gets
//!    group 99 and the group list `{99}`, as in C;
//! 3. close every inherited descriptor but 0–2;
//! 4. `chdir(JAIL-DIRECTORY)`, `chroot(".")`, then `setgroups`, `setgid`,
//!    `setuid` — each checked, each failure printed as C's `perror` and
//!    status 1 — and a final check that real, effective and saved ids are
//!    all the requested ones;
//! 5. `execve(COMMAND, [COMMAND, ARGS...], [])`: the path is taken inside
//!    the jail, relative to its root, without a `PATH` search, and with an
//!    **empty environment**. Failure: `execve of COMMAND failed : <error>`.
//!
//! Differences from the C tool: a missing COMMAND prints the usage (C
//! called `execv(NULL)`); a number that is empty, negative or not a valid
//! `uid_t` is a usage error (C turned `""` into uid 0 and `4294967296`
//! into uid 0 by truncation); `setgroups` is checked (C ignored
//! `initgroups` failures); inherited descriptors are closed and the
//! environment is cleared before `exec`; `SIGPIPE` is restored to its
//! default action for the jailed program.

#![forbid(unsafe_code)]

#[cfg(feature = "clap-command")]
pub mod command;
mod error;

use std::ffi::{CString, OsString};
use std::io::{self, Write};
use std::os::unix::ffi::OsStrExt;
use std::path::PathBuf;

use nix::unistd::{Gid, Uid};
use uml_common::cli::c_integer;
use uml_common::sys::nss;
use uml_common::sys::process::{close_fds_from, set_disposition, Disposition};

pub use crate::error::Error;

/// The usage text (stderr, status 1), byte for byte Debian's.
pub const USAGE: &str = "Usage : jail_uml jail-directory user uml-command-line ...\n    \
or: jail_uml jail-directory uid uml-command-line ...\n\
\n\
If the user is not found, it's assumed to be a uid.\n";

/// The message for a non-root caller.
pub const NOT_ROOT: &str = "jail_uml must be run as root\n";

/// The group of a user given by number (C's hard-coded "nobody" group).
pub const NUMERIC_USER_GID: u32 = 99;

/// Who the jailed program runs as.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Identity {
    /// Its uid.
    pub uid: Uid,
    /// Its gid.
    pub gid: Gid,
    /// Its supplementary groups.
    pub groups: Vec<Gid>,
}

/// Everything the command line asks for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Plan {
    /// The jail directory (host path).
    pub dir: PathBuf,
    /// The identity to take.
    pub identity: Identity,
    /// The command inside the jail: `argv[0]` is also the program path.
    pub argv: Vec<CString>,
}

/// Reads a numeric user: a whole `strtoul` base-0 number that is a valid
/// uid (not empty, not negative, below `(uid_t)-1`).
pub fn parse_uid(text: &[u8]) -> Option<Uid> {
    if text.is_empty() {
        return None;
    }
    let n = c_integer(text)?;
    u32::try_from(n)
        .ok()
        .filter(|&n| n != u32::MAX)
        .map(Uid::from_raw)
}

/// Looks `user` up as a name (host user database), then as a number.
/// `lookup` is the name lookup (injectable for tests).
pub fn resolve_user(
    user: &[u8],
    lookup: impl FnOnce(&[u8]) -> Option<Identity>,
) -> Option<Identity> {
    if let Some(id) = lookup(user) {
        return Some(id);
    }
    let uid = parse_uid(user)?;
    let gid = Gid::from_raw(NUMERIC_USER_GID);
    Some(Identity {
        uid,
        gid,
        groups: vec![gid],
    })
}

/// The host user database, through every NSS service of
/// `/etc/nsswitch.conf` (`jail_uml` is linked dynamically for this; see
/// `uml_common::sys::nss`): the user's uid, primary gid and group list.
pub fn lookup_user(name: &[u8]) -> Option<Identity> {
    let user = nss::user_by_name(name)?;
    // initgroups(name, gid) semantics: the primary group plus every group
    // listing the user.
    let groups = nss::group_list(name, user.gid).unwrap_or_else(|| vec![user.gid]);
    Some(Identity {
        uid: Uid::from_raw(user.uid),
        gid: Gid::from_raw(user.gid),
        groups: groups.into_iter().map(Gid::from_raw).collect(),
    })
}

/// Parses the arguments after the program name (not checking root).
pub fn parse(
    args: &[OsString],
    lookup: impl FnOnce(&[u8]) -> Option<Identity>,
) -> Result<Plan, Error> {
    let [dir, user, command @ ..] = args else {
        return Err(Error::Usage);
    };
    if command.is_empty() {
        return Err(Error::Usage);
    }
    let identity = resolve_user(user.as_bytes(), lookup).ok_or(Error::Usage)?;
    let argv = command
        .iter()
        .map(|a| CString::new(a.as_bytes()).map_err(|_| Error::Usage))
        .collect::<Result<Vec<_>, _>>()?;
    Ok(Plan {
        dir: PathBuf::from(dir),
        identity,
        argv,
    })
}

/// The path `execve` gets for `argv[0]`: as given when it contains a `/`,
/// else `./NAME` — relative to the jail's root, the working directory,
/// exactly as C's `execv(NAME)` (which searches no `PATH`).
pub fn exec_path(program: &CString) -> CString {
    if program.as_bytes().contains(&b'/') {
        program.clone()
    } else {
        let mut p = b"./".to_vec();
        p.extend_from_slice(program.as_bytes());
        CString::new(p).unwrap_or_else(|_| program.clone())
    }
}

/// Enters the jail and becomes the user; on success the process is still
/// this program, chrooted, with the new ids.
pub fn enter(plan: &Plan) -> Result<(), Error> {
    let id = &plan.identity;
    nix::unistd::chdir(&plan.dir).map_err(|e| Error::Step("chdir", e.into()))?;
    nix::unistd::chroot(".").map_err(|e| Error::Step("chroot", e.into()))?;
    nix::unistd::setgroups(&id.groups).map_err(|e| Error::Step("setgroups", e.into()))?;
    nix::unistd::setgid(id.gid).map_err(|e| Error::Step("setgid", e.into()))?;
    nix::unistd::setuid(id.uid).map_err(|e| Error::Step("setuid", e.into()))?;
    let r = nix::unistd::getresuid().map_err(|e| Error::Step("getresuid", e.into()))?;
    let g = nix::unistd::getresgid().map_err(|e| Error::Step("getresgid", e.into()))?;
    if [r.real, r.effective, r.saved] != [id.uid; 3]
        || [g.real, g.effective, g.saved] != [id.gid; 3]
    {
        return Err(Error::Incomplete);
    }
    Ok(())
}

/// Replaces the process with the jailed command (empty environment).
/// Returns only on failure.
pub fn exec(plan: &Plan) -> Error {
    let Some(program) = plan.argv.first() else {
        return Error::Usage;
    };
    // std ignores SIGPIPE; the jailed program gets the default, as from C.
    let _ = set_disposition(libc::SIGPIPE, Disposition::Default);
    let env: [CString; 0] = [];
    match nix::unistd::execve(&exec_path(program), &plan.argv, &env) {
        Err(e) => Error::Exec(program.as_bytes().to_vec(), e.into()),
        Ok(never) => match never {},
    }
}

/// The program, `argv` including the program name; returns the exit
/// status when the command could not be started.
pub fn uumain(argv: impl IntoIterator<Item = OsString>) -> i32 {
    let args: Vec<OsString> = argv.into_iter().skip(1).collect();
    let err = match run(&args) {
        Ok(never) => match never {},
        Err(e) => e,
    };
    let _ = writeln!(io::stderr(), "{err}");
    err.exit_code()
}

fn run(args: &[OsString]) -> Result<std::convert::Infallible, Error> {
    if !nix::unistd::geteuid().is_root() {
        return Err(Error::NotRoot);
    }
    // Names through the system's NSS configuration (a static build: files
    // only, see uml_common::sys::nss).
    let _ = nss::prepare();
    let plan = parse(args, lookup_user)?;
    close_fds_from(3, &[]).map_err(|e| Error::Step("close_range", e))?;
    enter(&plan)?;
    Err(exec(&plan))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(list: &[&str]) -> Vec<OsString> {
        list.iter().map(OsString::from).collect()
    }

    fn nobody_known(name: &[u8]) -> Option<Identity> {
        (name == b"uml").then(|| Identity {
            uid: Uid::from_raw(1000),
            gid: Gid::from_raw(1000),
            groups: vec![Gid::from_raw(1000), Gid::from_raw(24)],
        })
    }

    #[test]
    fn usage_is_debians() {
        assert!(USAGE.starts_with("Usage : jail_uml jail-directory user uml-command-line ...\n"));
        assert!(USAGE.contains("\n    or: jail_uml jail-directory uid uml-command-line ...\n\n"));
        assert!(USAGE.ends_with("\nIf the user is not found, it's assumed to be a uid.\n"));
        assert_eq!(USAGE.len(), 168);
    }

    #[test]
    fn uid_numbers() {
        assert_eq!(parse_uid(b"1000"), Some(Uid::from_raw(1000)));
        assert_eq!(parse_uid(b"0x10"), Some(Uid::from_raw(16)));
        assert_eq!(parse_uid(b" 010"), Some(Uid::from_raw(8)));
        assert_eq!(parse_uid(b"0"), Some(Uid::from_raw(0)));
        for bad in [
            &b""[..],
            b"-1",
            b"12x",
            b"4294967295",
            b"4294967296",
            b"99999999999999999999",
            b" ",
        ] {
            assert_eq!(parse_uid(bad), None, "{:?}", String::from_utf8_lossy(bad));
        }
    }

    #[test]
    fn names_then_numbers() {
        let plan = parse(&args(&["/jail", "uml", "/linux", "mem=64M"]), nobody_known).unwrap();
        assert_eq!(plan.identity.uid, Uid::from_raw(1000));
        assert_eq!(plan.identity.groups.len(), 2);
        assert_eq!(plan.argv, [c"/linux".to_owned(), c"mem=64M".to_owned()]);

        let plan = parse(&args(&["/jail", "4242", "linux"]), nobody_known).unwrap();
        assert_eq!(
            plan.identity,
            Identity {
                uid: Uid::from_raw(4242),
                gid: Gid::from_raw(99),
                groups: vec![Gid::from_raw(99)],
            }
        );
    }

    #[test]
    fn usage_errors() {
        for bad in [
            &[][..],
            &["/jail"],
            &["/jail", "uml"],
            &["/jail", "nosuchuser", "/linux"],
            &["/jail", "", "/linux"],
        ] {
            assert!(
                matches!(parse(&args(bad), nobody_known), Err(Error::Usage)),
                "{bad:?}"
            );
        }
    }

    #[test]
    fn program_paths_stay_inside_the_jail() {
        assert_eq!(exec_path(&c"/linux".to_owned()), c"/linux".to_owned());
        assert_eq!(exec_path(&c"bin/linux".to_owned()), c"bin/linux".to_owned());
        assert_eq!(exec_path(&c"linux".to_owned()), c"./linux".to_owned());
    }

    #[test]
    fn messages() {
        let e = io::Error::from_raw_os_error(libc::ENOENT);
        assert_eq!(
            Error::Step("chdir", e).to_string(),
            "chdir: No such file or directory"
        );
        let e = io::Error::from_raw_os_error(libc::EACCES);
        assert_eq!(
            Error::Exec(b"/nope".to_vec(), e).to_string(),
            "execve of /nope failed : Permission denied"
        );
        assert_eq!(format!("{}\n", Error::NotRoot), NOT_ROOT);
        assert_eq!(format!("{}\n", Error::Usage), USAGE);
    }

    #[test]
    fn real_user_database() {
        nss::prepare().unwrap();
        let root = lookup_user(b"root").unwrap();
        assert_eq!((root.uid, root.gid), (Uid::from_raw(0), Gid::from_raw(0)));
        assert!(root.groups.contains(&Gid::from_raw(0)));
        assert!(lookup_user(b"no_such_user_xyz").is_none());
    }
}
