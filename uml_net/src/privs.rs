//! Process hygiene for a setuid-root helper, done before anything else:
//! empty environment, sane umask, no core dumps, only the descriptors the
//! protocol needs, and no privilege but CAP_NET_ADMIN.

use std::collections::BTreeSet;

use crate::Error;

use caps::{CapSet, Capability, CapsHashSet};
use nix::sys::resource::{setrlimit, Resource};
use nix::sys::stat::{umask, Mode};
use nix::unistd::{getresuid, getuid, setresuid};

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

/// umask 022, no core dumps, not dumpable (no ptrace by the caller).
pub fn harden_process() {
    umask(Mode::from_bits_truncate(0o022));
    let _ = setrlimit(Resource::RLIMIT_CORE, 0, 0);
    let _ = nix::sys::prctl::set_dumpable(false);
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

/// Becomes the real user while keeping CAP_NET_ADMIN only (permitted and
/// effective); clears the other capability sets and the bounding set and
/// sets no_new_privs. Fails with [`Error::NoNetAdmin`] if CAP_NET_ADMIN is
/// not available (not installed setuid root and not run by root).
pub fn drop_to_net_admin() -> Result<(), Error> {
    let ruid = getuid();
    let euid = nix::unistd::geteuid();
    let caps_step = |step| move |e| Error::Capabilities(step, e);
    if euid.is_root() && !ruid.is_root() {
        // Keep the permitted set across the uid change.
        caps::securebits::set_keepcaps(true).map_err(caps_step("PR_SET_KEEPCAPS"))?;
        setresuid(ruid, ruid, ruid).map_err(|e| Error::System("setresuid", e))?;
        let r = getresuid().map_err(|e| Error::System("getresuid", e))?;
        if r.real != ruid || r.effective != ruid || r.saved != ruid {
            return Err(Error::StillRoot);
        }
    }
    let mut only = CapsHashSet::new();
    only.insert(Capability::CAP_NET_ADMIN);
    let permitted =
        caps::read(None, CapSet::Permitted).map_err(caps_step("reading capabilities"))?;
    if !permitted.contains(&Capability::CAP_NET_ADMIN) {
        return Err(Error::NoNetAdmin);
    }
    // The bounding set needs CAP_SETPCAP, which is still effective for a
    // root process here; a non-root process after setresuid has an empty
    // effective set, so raise CAP_SETPCAP first if permitted.
    if permitted.contains(&Capability::CAP_SETPCAP) {
        let mut eff = only.clone();
        eff.insert(Capability::CAP_SETPCAP);
        let _ = caps::set(None, CapSet::Effective, &eff);
        for cap in caps::all() {
            if cap != Capability::CAP_NET_ADMIN {
                let _ = caps::drop(None, CapSet::Bounding, cap);
            }
        }
    }
    let _ = caps::clear(None, CapSet::Ambient);
    caps::clear(None, CapSet::Inheritable).map_err(caps_step("clearing capabilities"))?;
    // Effective first: it must stay a subset of the permitted set.
    caps::set(None, CapSet::Effective, &only).map_err(caps_step("setting capabilities"))?;
    caps::set(None, CapSet::Permitted, &only).map_err(caps_step("setting capabilities"))?;
    nix::sys::prctl::set_no_new_privs().map_err(|e| Error::System("PR_SET_NO_NEW_PRIVS", e))?;
    Ok(())
}
