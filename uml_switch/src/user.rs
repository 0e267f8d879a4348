//! `--user USER[:GROUP]`: after every socket is bound and every port
//! opened, the switch gives up root (`docs/switch.md`, "Running as a
//! user").
//!
//! * [`Target::resolve`] (before anything is opened): the user and group,
//!   from `/etc/passwd` and `/etc/group` only — the switch is static-pie,
//!   so name lookups go through glibc's built-in `files` service
//!   (`uml_common::sys::nss::prepare`) — or numbers;
//! * [`check_dirs`] (before anything is bound): the directory of every
//!   socket file the switch will create must let the user remove it again
//!   at exit (and create the vde ports' data sockets next to the control
//!   socket);
//! * [`drop_to`] (after set-up, before the event loop): the socket files
//!   are given to the user, the bounding set is emptied but for what the
//!   ports need, the ids change (keepcaps only when a capability is kept),
//!   the capability sets become exactly what is kept, `no_new_privs` is
//!   set, and the kernel's account (`/proc/self/status`) is read back.
//!   Every step is checked; a failure ends the start-up.
//!
//! Capabilities are checked when a socket is made, not when it is used: the
//! sockets opened before the drop keep working without any. The switch
//! keeps `CAP_NET_RAW` only when a raw, gre or IP l2tpv3 port is
//! configured, so that the management socket's `port add` can make more
//! of them; without it `port add` of those kinds answers an error
//! ([`missing_for`]). Nothing is executed after the drop, so the
//! inheritable and ambient sets are empty: keepcaps (not the ambient set)
//! carries the kept capability across `setresuid`.

use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use caps::{CapSet, Capability, CapsHashSet};
use nix::unistd::{setgroups, setresgid, setresuid, Gid, Uid};
use uml_common::sys::caps::{self as syscaps, ProcStatus, CAP_NET_RAW};
use uml_common::sys::nss;
use uml_common::tunnel_opts::Carrier;

use crate::port::PortSpec;
use crate::Error;

/// The user and group to become.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Target {
    /// The `--user` value as given.
    pub spec: String,
    /// The uid.
    pub uid: u32,
    /// The gid.
    pub gid: u32,
}

/// What the switch kept after the drop (for `port add`): the `--user`
/// value and the capability mask.
static DROPPED: OnceLock<(String, u64)> = OnceLock::new();

fn refuse(prog: &str, spec: &str, why: impl Into<String>) -> Error {
    Error::User {
        prog: prog.to_string(),
        spec: spec.to_string(),
        why: why.into(),
    }
}

impl Target {
    /// `USER`, `USER:GROUP`, `UID`, `UID:GID` (names from `/etc/passwd`
    /// and `/etc/group`; a group defaults to the user's primary group, or
    /// for a numeric uid to the same number). Root (uid 0) is refused:
    /// the option is for giving root up.
    pub fn resolve(prog: &str, spec: &str) -> Result<Target, Error> {
        let bad = |why: &str| refuse(prog, spec, why);
        let (user, group) = match spec.split_once(':') {
            Some((u, g)) => (u, Some(g)),
            None => (spec, None),
        };
        if user.is_empty() || group.is_some_and(str::is_empty) {
            return Err(bad("expected USER, USER:GROUP, UID or UID:GID"));
        }
        let numeric = |s: &str| s.bytes().all(|b| b.is_ascii_digit());
        let number = |s: &str, what: &str| {
            s.parse::<u32>()
                .ok()
                .filter(|&n| n != u32::MAX)
                .ok_or_else(|| bad(&format!("{what} '{s}' is out of range")))
        };
        if !numeric(user) || group.is_some_and(|g| !numeric(g)) {
            // Only the built-in `files` service in this static program.
            let _ = nss::prepare();
        }
        let (uid, primary) = if numeric(user) {
            let uid = number(user, "uid")?;
            (uid, uid)
        } else {
            let ids = nss::user_by_name(user.as_bytes())
                .ok_or_else(|| bad(&format!("no user '{user}' in /etc/passwd")))?;
            (ids.uid, ids.gid)
        };
        let gid = match group {
            None => primary,
            Some(g) if numeric(g) => number(g, "gid")?,
            Some(g) => nss::group_by_name(g.as_bytes())
                .ok_or_else(|| bad(&format!("no group '{g}' in /etc/group")))?,
        };
        if uid == 0 {
            return Err(bad(
                "refusing to run as root (uid 0): name an unprivileged user",
            ));
        }
        Ok(Target {
            spec: spec.to_string(),
            uid,
            gid,
        })
    }
}

/// The capabilities the configured ports need after the drop:
/// `CAP_NET_RAW` for raw ports and tunnels over raw IP sockets (gre,
/// l2tpv3 without `udp=1`); nothing for the others.
pub fn needed(specs: &[PortSpec]) -> u64 {
    let raw = specs.iter().any(|s| match s {
        PortSpec::Raw { .. } => true,
        PortSpec::Tunnel(t) => matches!(t.carrier, Carrier::Raw(_)),
        _ => false,
    });
    if raw {
        syscaps::mask(&[CAP_NET_RAW])
    } else {
        0
    }
}

/// Whether uid `uid` / gid `gid` (no supplementary groups) have all of
/// `bits` (of r=4, w=2, x=1) on a file with `meta`.
fn may(meta: &std::fs::Metadata, uid: u32, gid: u32, bits: u32) -> bool {
    let mode = meta.mode();
    let class = if meta.uid() == uid {
        mode >> 6
    } else if meta.gid() == gid {
        mode >> 3
    } else {
        mode
    };
    class & bits == bits
}

/// Checks, before anything is bound, that `t` will be able to remove each
/// of `files` at exit (and make the vde ports' sockets beside the control
/// socket): write and search permission on its directory, search
/// permission on every directory above (mode bits; ACLs are not read).
/// The files themselves are given to `t` at the drop, so a sticky
/// directory such as `/tmp` is fine.
pub fn check_dirs(prog: &str, t: &Target, files: &[PathBuf]) -> Result<(), Error> {
    let cwd = std::env::current_dir().unwrap_or_else(|_| PathBuf::from("/"));
    for file in files {
        let file = cwd.join(file);
        let Some(dir) = file.parent() else {
            continue;
        };
        let cannot = |what: &str, at: &Path| {
            refuse(
                prog,
                &t.spec,
                format!(
                    "uid {} could not remove '{}' at exit: it may not {what} '{}'",
                    t.uid,
                    file.display(),
                    at.display()
                ),
            )
        };
        let mut at = PathBuf::new();
        for part in dir.components() {
            at.push(part);
            let last = at == dir;
            let meta = std::fs::metadata(&at).map_err(|e| {
                refuse(
                    prog,
                    &t.spec,
                    format!("'{}': {}", at.display(), uml_common::cli::strerror(&e)),
                )
            })?;
            if !may(&meta, t.uid, t.gid, 1) {
                return Err(cannot("search", &at));
            }
            if last && !may(&meta, t.uid, t.gid, 2) {
                return Err(cannot("write to", &at));
            }
        }
    }
    Ok(())
}

/// Becomes `t`, keeping only the capabilities in `keep` (a
/// [`syscaps::mask`]), after giving `files` (the socket files the switch
/// made) to `t`. Each step is checked and the result read back; the
/// error says which step failed.
pub fn drop_to(prog: &str, t: &Target, keep: u64, files: &[PathBuf]) -> Result<(), Error> {
    let fail = |why: String| refuse(prog, &t.spec, why);
    let caps_err = |step: &str, e: caps::errors::CapsError| fail(format!("{step}: {e}"));
    // 1. The socket files: owner only, so the group and the permissions
    // that decide who may connect stay as they were.
    for f in files {
        std::os::unix::fs::lchown(f, Some(t.uid), None).map_err(|e| {
            fail(format!(
                "cannot give '{}' to uid {}: {}",
                f.display(),
                t.uid,
                uml_common::cli::strerror(&e)
            ))
        })?;
    }
    // Capabilities are per thread: the drop must cover the process.
    match syscaps::thread_count() {
        Ok(1) => {}
        Ok(n) => return Err(fail(format!("{n} threads (capabilities are per thread)"))),
        Err(e) => return Err(fail(format!("/proc/self/task: {e}"))),
    }
    // 2. What changing ids and the bounding set takes.
    let permitted =
        caps::read(None, CapSet::Permitted).map_err(|e| caps_err("reading the capabilities", e))?;
    for cap in [
        Capability::CAP_SETUID,
        Capability::CAP_SETGID,
        Capability::CAP_SETPCAP,
    ] {
        if !permitted.contains(&cap) {
            return Err(fail(format!(
                "changing the user needs root ({cap} is not permitted)"
            )));
        }
    }
    let kept: CapsHashSet = caps::all()
        .into_iter()
        .filter(|c| keep & c.bitmask() != 0)
        .collect();
    if !kept.is_subset(&permitted) {
        return Err(fail(format!(
            "cannot keep {}: not permitted",
            syscaps::names(keep)
        )));
    }
    caps::raise(None, CapSet::Effective, Capability::CAP_SETPCAP)
        .map_err(|e| caps_err("raising CAP_SETPCAP", e))?;
    // 3. The bounding set, while CAP_SETPCAP is effective.
    syscaps::drop_bounding_except(keep).map_err(|e| fail(e.to_string()))?;
    // 4. The ids; the permitted set survives setresuid only with keepcaps.
    if keep != 0 {
        nix::sys::prctl::set_keepcaps(true)
            .map_err(|e| fail(format!("PR_SET_KEEPCAPS: {}", e.desc())))?;
    }
    let (uid, gid) = (Uid::from_raw(t.uid), Gid::from_raw(t.gid));
    setgroups(&[]).map_err(|e| fail(format!("setgroups: {}", e.desc())))?;
    setresgid(gid, gid, gid).map_err(|e| fail(format!("setresgid: {}", e.desc())))?;
    setresuid(uid, uid, uid).map_err(|e| fail(format!("setresuid: {}", e.desc())))?;
    if keep != 0 {
        nix::sys::prctl::set_keepcaps(false)
            .map_err(|e| fail(format!("PR_SET_KEEPCAPS 0: {}", e.desc())))?;
    }
    // 5. Exactly `keep`: ambient first (a subset of inheritable and
    // permitted), effective before permitted (a subset of it).
    caps::clear(None, CapSet::Ambient).map_err(|e| caps_err("clearing the ambient set", e))?;
    caps::clear(None, CapSet::Inheritable)
        .map_err(|e| caps_err("clearing the inheritable set", e))?;
    caps::set(None, CapSet::Effective, &kept)
        .map_err(|e| caps_err("setting the effective set", e))?;
    caps::set(None, CapSet::Permitted, &kept)
        .map_err(|e| caps_err("setting the permitted set", e))?;
    // 6.
    nix::sys::prctl::set_no_new_privs()
        .map_err(|e| fail(format!("PR_SET_NO_NEW_PRIVS: {}", e.desc())))?;
    // 7. The kernel's account.
    let s = ProcStatus::read_self().map_err(|e| fail(format!("/proc/self/status: {e}")))?;
    let expected = ProcStatus {
        uid: [t.uid; 4],
        gid: [t.gid; 4],
        groups: Vec::new(),
        inheritable: 0,
        permitted: keep,
        effective: keep,
        bounding: keep,
        ambient: 0,
        no_new_privs: true,
    };
    if s != expected {
        return Err(fail(format!(
            "the privileges are not as required after dropping them: {s:?}"
        )));
    }
    let _ = DROPPED.set((t.spec.clone(), keep));
    Ok(())
}

/// Why `port add` of `spec` cannot work after the drop, if it cannot:
/// the port needs a capability the switch gave up.
pub fn missing_for(spec: &PortSpec) -> Option<String> {
    let (user, kept) = DROPPED.get()?;
    let need = needed(std::slice::from_ref(spec));
    (need & !kept != 0).then(|| {
        format!(
            "this port needs {}, which the switch gave up when it became '{user}' \
             (--user keeps it only when a raw, gre or IP l2tpv3 port is configured at start-up)",
            syscaps::names(need & !kept)
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numeric_specs_and_refusals() {
        let t = Target::resolve("sw", "65534").unwrap();
        assert_eq!((t.uid, t.gid), (65534, 65534));
        let t = Target::resolve("sw", "1234:5678").unwrap();
        assert_eq!((t.uid, t.gid), (1234, 5678));
        for (spec, why) in [
            ("0", "refusing to run as root"),
            ("0:5", "refusing to run as root"),
            ("", "expected USER"),
            (":5", "expected USER"),
            ("5:", "expected USER"),
            ("99999999999", "uid '99999999999' is out of range"),
            ("4294967295", "out of range"),
            (
                "no-such-user-here",
                "no user 'no-such-user-here' in /etc/passwd",
            ),
            (
                "5:no-such-group-here",
                "no group 'no-such-group-here' in /etc/group",
            ),
        ] {
            let e = Target::resolve("sw", spec).unwrap_err().to_string();
            assert!(e.starts_with(&format!("sw: --user '{spec}': ")), "{e}");
            assert!(e.contains(why), "{spec}: {e}");
        }
    }

    #[test]
    fn names_come_from_etc_passwd() {
        // root is in every /etc/passwd, and refused.
        let e = Target::resolve("sw", "root").unwrap_err().to_string();
        assert!(e.contains("refusing to run as root"), "{e}");
    }

    #[test]
    fn only_raw_and_raw_ip_tunnels_need_cap_net_raw() {
        use uml_common::tunnel_opts::TunnelKind;
        let tunnel = |kind, opts: &str| {
            let mut c = crate::port::tunnel::check_options("sw", &[(kind, opts.to_string())], 1500)
                .unwrap();
            PortSpec::Tunnel(c.remove(0))
        };
        let udp = tunnel(
            TunnelKind::L2tpv3,
            "udp=1,src=127.0.0.2,srcport=5556,dst=127.0.0.1,dstport=5555,rx_session=1,tx_session=2",
        );
        let ip = tunnel(
            TunnelKind::L2tpv3,
            "src=127.0.0.2,dst=127.0.0.1,rx_session=1,tx_session=2",
        );
        let gre = tunnel(TunnelKind::Gre, "src=127.0.0.2,dst=127.0.0.1");
        let raw = PortSpec::Raw {
            ifname: "veth0".into(),
        };
        let bess = PortSpec::Bess {
            path: "/tmp/b".into(),
        };
        let net_raw = syscaps::mask(&[CAP_NET_RAW]);
        assert_eq!(needed(&[]), 0);
        assert_eq!(needed(&[bess.clone(), udp.clone()]), 0);
        assert_eq!(needed(&[bess.clone(), ip]), net_raw);
        assert_eq!(needed(&[gre]), net_raw);
        assert_eq!(needed(&[udp, raw]), net_raw);
        // Nothing dropped in this process: nothing is missing.
        assert_eq!(missing_for(&bess), None);
    }

    #[test]
    fn permission_classes() {
        let dir = tempfile::tempdir().unwrap();
        use std::os::unix::fs::PermissionsExt;
        let set = |m| {
            std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(m)).unwrap();
            std::fs::metadata(dir.path()).unwrap()
        };
        let (me, my_group) = (
            nix::unistd::geteuid().as_raw(),
            nix::unistd::getegid().as_raw(),
        );
        let m = set(0o700);
        assert!(may(&m, me, 4242, 7));
        assert!(!may(&m, 4242, 4242, 1));
        let m = set(0o730);
        assert!(may(&m, 4242, my_group, 3));
        assert!(!may(&m, 4242, 4243, 1));
        let m = set(0o1777);
        assert!(may(&m, 4242, 4243, 3));
    }
}
