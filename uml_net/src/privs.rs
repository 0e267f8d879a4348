//! Process hygiene for a setuid-root helper, done before anything else:
//! empty environment, sane umask, no core dumps, only the descriptors the
//! protocol needs, and no privilege but CAP_NET_ADMIN.
//!
//! Every step is checked, and the result is read back from the kernel
//! (`/proc/self/status`, `PR_GET_DUMPABLE`, `getrlimit`): a step that
//! fails or does not take effect stops the helper before it changes
//! anything on the host ([`harden_process`], [`drop_to_net_admin`]).

use std::collections::BTreeSet;

use crate::Error;

use caps::{CapSet, Capability, CapsHashSet};
use nix::sys::resource::{getrlimit, setrlimit, Resource};
use nix::sys::stat::{umask, Mode};
use nix::unistd::{getegid, geteuid, getgid, getresgid, getresuid, getuid, setresgid, setresuid};
use uml_common::sys::caps::{self as syscaps, ProcStatus, CAP_NET_ADMIN};

/// The caller's real uid (who asked for the change).
pub fn real_uid() -> u32 {
    getuid().as_raw()
}

/// Empties the environment. Nothing below reads it, and no program is
/// executed, but a clean slate costs nothing.
pub fn clear_environment() {
    let keys: Vec<_> = std::env::vars_os().map(|(k, _)| k).collect();
    for k in keys {
        std::env::remove_var(k);
    }
}

/// umask 022, no core dumps (`RLIMIT_CORE` 0, soft and hard), not
/// dumpable (no ptrace by the caller, no core even if the limit were
/// raised). Each step is checked and read back.
pub fn harden_process() -> Result<(), Error> {
    umask(Mode::from_bits_truncate(0o022));
    setrlimit(Resource::RLIMIT_CORE, 0, 0)
        .map_err(|e| Error::System("setrlimit(RLIMIT_CORE)", e))?;
    let core =
        getrlimit(Resource::RLIMIT_CORE).map_err(|e| Error::System("getrlimit(RLIMIT_CORE)", e))?;
    if core != (0, 0) {
        return Err(Error::Unconfined(format!(
            "the core size limit is {}/{} after setting it to 0",
            core.0, core.1
        )));
    }
    nix::sys::prctl::set_dumpable(false).map_err(|e| Error::System("PR_SET_DUMPABLE", e))?;
    let dumpable =
        nix::sys::prctl::get_dumpable().map_err(|e| Error::System("PR_GET_DUMPABLE", e))?;
    if dumpable {
        return Err(Error::Unconfined(
            "the process is still dumpable after PR_SET_DUMPABLE 0".into(),
        ));
    }
    Ok(())
}

/// Closes every descriptor but 0, 1, 2 and `keep`.
pub fn close_other_fds(keep: &[i32]) {
    let keep: BTreeSet<i32> = keep.iter().copied().chain([0, 1, 2]).collect();
    let Ok(dir) = std::fs::read_dir("/proc/self/fd") else {
        return;
    };
    let fds: Vec<i32> = dir
        .flatten()
        .filter_map(|e| e.file_name().to_str().and_then(|s| s.parse().ok()))
        .collect();
    for fd in fds {
        if !keep.contains(&fd) {
            let _ = nix::unistd::close(fd);
        }
    }
}

/// Becomes the real user (uid and gid) while keeping CAP_NET_ADMIN only
/// (permitted and effective). In this order, each step checked:
///
/// 1. CAP_NET_ADMIN must be permitted ([`Error::NoNetAdmin`] otherwise);
/// 2. the bounding set is emptied but for CAP_NET_ADMIN, while
///    CAP_SETPCAP is still effective (a drop that fails stops us);
/// 3. the gid becomes the real gid (when it differs), then, with
///    `PR_SET_KEEPCAPS`, the uid becomes the real uid (a setuid-root run);
///    keepcaps is switched off again;
/// 4. the ambient and inheritable sets are emptied, the effective and
///    permitted sets become CAP_NET_ADMIN;
/// 5. `no_new_privs`;
/// 6. the kernel's account (`/proc/self/status`) is read back and must
///    show exactly that: ids, the five capability sets, NoNewPrivs.
pub fn drop_to_net_admin() -> Result<(), Error> {
    let ruid = getuid();
    let rgid = getgid();
    // Capabilities are per thread: the drop below must cover the process.
    match syscaps::thread_count() {
        Ok(1) => {}
        Ok(n) => {
            return Err(Error::Unconfined(format!(
                "{n} threads (capabilities are per thread)"
            )))
        }
        Err(e) => {
            return Err(Error::Unconfined(format!(
                "cannot read /proc/self/task: {e}"
            )))
        }
    }
    let caps_step = |step| move |e| Error::Capabilities(step, e);
    let permitted =
        caps::read(None, CapSet::Permitted).map_err(caps_step("reading capabilities"))?;
    if !permitted.contains(&Capability::CAP_NET_ADMIN) {
        return Err(Error::NoNetAdmin);
    }
    let mut only = CapsHashSet::new();
    only.insert(Capability::CAP_NET_ADMIN);
    let keep = syscaps::mask(&[CAP_NET_ADMIN]);

    // 2. The bounding set needs CAP_SETPCAP in the effective set: raise it
    // if it is permitted (it is for root); without it the first drop fails
    // with EPERM and the helper stops.
    if permitted.contains(&Capability::CAP_SETPCAP) {
        caps::raise(None, CapSet::Effective, Capability::CAP_SETPCAP)
            .map_err(caps_step("raising CAP_SETPCAP"))?;
    }
    syscaps::drop_bounding_except(keep).map_err(Error::Bounding)?;

    // 3. The ids. A setuid-root program is not setgid: the gid step only
    // matters if it was installed so.
    if getegid() != rgid {
        setresgid(rgid, rgid, rgid).map_err(|e| Error::System("setresgid", e))?;
    }
    if geteuid() != ruid {
        // Keep the permitted set across the uid change.
        nix::sys::prctl::set_keepcaps(true).map_err(|e| Error::System("PR_SET_KEEPCAPS", e))?;
        setresuid(ruid, ruid, ruid).map_err(|e| Error::System("setresuid", e))?;
        nix::sys::prctl::set_keepcaps(false).map_err(|e| Error::System("PR_SET_KEEPCAPS 0", e))?;
    }
    let u = getresuid().map_err(|e| Error::System("getresuid", e))?;
    let g = getresgid().map_err(|e| Error::System("getresgid", e))?;
    if u.real != ruid || u.effective != ruid || u.saved != ruid {
        return Err(Error::StillRoot);
    }
    if g.real != rgid || g.effective != rgid || g.saved != rgid {
        return Err(Error::Unconfined(format!(
            "the gids are {}/{}/{}, not the caller's {rgid}",
            g.real, g.effective, g.saved
        )));
    }

    // 4. The capability sets. Ambient first: it must stay a subset of the
    // inheritable and permitted sets. Effective before permitted: it must
    // stay a subset of the permitted set.
    caps::clear(None, CapSet::Ambient).map_err(caps_step("clearing the ambient set"))?;
    caps::clear(None, CapSet::Inheritable).map_err(caps_step("clearing the inheritable set"))?;
    caps::set(None, CapSet::Effective, &only).map_err(caps_step("setting the effective set"))?;
    caps::set(None, CapSet::Permitted, &only).map_err(caps_step("setting the permitted set"))?;

    // 5.
    nix::sys::prctl::set_no_new_privs().map_err(|e| Error::System("PR_SET_NO_NEW_PRIVS", e))?;

    // 6. The kernel's own account.
    let status = ProcStatus::read_self()
        .map_err(|e| Error::Unconfined(format!("cannot read /proc/self/status: {e}")))?;
    check_status(&status, ruid.as_raw(), rgid.as_raw(), keep)
}

/// Whether `s` shows uid `uid`, gid `gid` (real, effective, saved,
/// file-system), exactly the capabilities `keep` permitted, effective and
/// bounding, none inheritable or ambient, and NoNewPrivs.
pub fn check_status(s: &ProcStatus, uid: u32, gid: u32, keep: u64) -> Result<(), Error> {
    let mut wrong = Vec::new();
    if s.uid != [uid; 4] {
        wrong.push(format!("Uid {:?} (expected {uid})", s.uid));
    }
    if s.gid != [gid; 4] {
        wrong.push(format!("Gid {:?} (expected {gid})", s.gid));
    }
    for (name, got, want) in [
        ("CapEff", s.effective, keep),
        ("CapPrm", s.permitted, keep),
        ("CapBnd", s.bounding, keep),
        ("CapInh", s.inheritable, 0),
        ("CapAmb", s.ambient, 0),
    ] {
        if got != want {
            wrong.push(format!(
                "{name} {} (expected {})",
                syscaps::names(got),
                syscaps::names(want)
            ));
        }
    }
    if !s.no_new_privs {
        wrong.push("NoNewPrivs 0".into());
    }
    if wrong.is_empty() {
        Ok(())
    } else {
        Err(Error::Unconfined(wrong.join("; ")))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_status_check_names_every_difference() {
        let keep = syscaps::mask(&[CAP_NET_ADMIN]);
        let good = ProcStatus {
            uid: [1000; 4],
            gid: [100; 4],
            groups: vec![],
            inheritable: 0,
            permitted: keep,
            effective: keep,
            bounding: keep,
            ambient: 0,
            no_new_privs: true,
        };
        assert!(check_status(&good, 1000, 100, keep).is_ok());
        let bad = ProcStatus {
            uid: [1000, 0, 0, 0],
            bounding: u64::MAX >> 23,
            ambient: keep,
            no_new_privs: false,
            ..good.clone()
        };
        let text = check_status(&bad, 1000, 100, keep).unwrap_err().to_string();
        assert!(text.starts_with("uml_net : privileges not dropped as required: Uid [1000, 0, 0, 0] (expected 1000); CapBnd CAP_CHOWN, "), "{text}");
        assert!(
            text.contains(
                "(expected CAP_NET_ADMIN); CapAmb CAP_NET_ADMIN (expected none); NoNewPrivs 0"
            ),
            "{text}"
        );
    }
}
