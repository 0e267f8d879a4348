//! Capability steps that the `caps` crate does not cover in the form the
//! privileged programs need: emptying the bounding set of *every*
//! capability the running kernel knows (also those newer than the crate),
//! each drop checked; and reading back the process's privileges from
//! `/proc/self/status`, the kernel's own account, to verify that every
//! step took effect (`uml_net`, `uml_switch --user`).

use std::io;

/// `CAP_SETPCAP` (changes the bounding set).
pub const CAP_SETPCAP: u8 = 8;
/// `CAP_NET_ADMIN`.
pub const CAP_NET_ADMIN: u8 = 12;
/// `CAP_NET_RAW`.
pub const CAP_NET_RAW: u8 = 13;

/// Names of capabilities 0–40, as `capabilities(7)` spells them.
const NAMES: [&str; 41] = [
    "CAP_CHOWN",
    "CAP_DAC_OVERRIDE",
    "CAP_DAC_READ_SEARCH",
    "CAP_FOWNER",
    "CAP_FSETID",
    "CAP_KILL",
    "CAP_SETGID",
    "CAP_SETUID",
    "CAP_SETPCAP",
    "CAP_LINUX_IMMUTABLE",
    "CAP_NET_BIND_SERVICE",
    "CAP_NET_BROADCAST",
    "CAP_NET_ADMIN",
    "CAP_NET_RAW",
    "CAP_IPC_LOCK",
    "CAP_IPC_OWNER",
    "CAP_SYS_MODULE",
    "CAP_SYS_RAWIO",
    "CAP_SYS_CHROOT",
    "CAP_SYS_PTRACE",
    "CAP_SYS_PACCT",
    "CAP_SYS_ADMIN",
    "CAP_SYS_BOOT",
    "CAP_SYS_NICE",
    "CAP_SYS_RESOURCE",
    "CAP_SYS_TIME",
    "CAP_SYS_TTY_CONFIG",
    "CAP_MKNOD",
    "CAP_LEASE",
    "CAP_AUDIT_WRITE",
    "CAP_AUDIT_CONTROL",
    "CAP_SETFCAP",
    "CAP_MAC_OVERRIDE",
    "CAP_MAC_ADMIN",
    "CAP_SYSLOG",
    "CAP_WAKE_ALARM",
    "CAP_BLOCK_SUSPEND",
    "CAP_AUDIT_READ",
    "CAP_PERFMON",
    "CAP_BPF",
    "CAP_CHECKPOINT_RESTORE",
];

/// The name of capability `cap` (`capability N` for one newer than this
/// table).
pub fn name(cap: u8) -> String {
    NAMES
        .get(usize::from(cap))
        .map_or_else(|| format!("capability {cap}"), |n| (*n).to_string())
}

/// The bit of each capability in `caps`.
pub fn mask(caps: &[u8]) -> u64 {
    caps.iter()
        .filter(|&&c| c < 64)
        .fold(0, |m, &c| m | (1u64 << c))
}

/// The names of the capabilities in `mask`, comma-separated (`none`).
pub fn names(mask: u64) -> String {
    let v: Vec<String> = (0..64u8)
        .filter(|c| mask & (1u64 << c) != 0)
        .map(name)
        .collect();
    if v.is_empty() {
        "none".to_string()
    } else {
        v.join(", ")
    }
}

/// The highest capability the running kernel knows
/// (`/proc/sys/kernel/cap_last_cap`; 63 if that cannot be read, the drop
/// loop then stops at the first number the kernel rejects).
pub fn last_cap() -> u8 {
    std::fs::read_to_string("/proc/sys/kernel/cap_last_cap")
        .ok()
        .and_then(|s| s.trim().parse::<u8>().ok())
        .map_or(63, |n| n.min(63))
}

/// Whether `cap` is in the bounding set (`PR_CAPBSET_READ`); `None` when
/// the kernel does not know it.
pub fn bounding_has(cap: u8) -> io::Result<Option<bool>> {
    // SAFETY: PR_CAPBSET_READ takes one integer argument and reads nothing
    // from memory; the unused arguments are 0.
    let rc = unsafe { libc::prctl(libc::PR_CAPBSET_READ, libc::c_ulong::from(cap), 0, 0, 0) };
    match rc {
        0 => Ok(Some(false)),
        1 => Ok(Some(true)),
        _ => {
            let e = io::Error::last_os_error();
            if e.raw_os_error() == Some(libc::EINVAL) {
                Ok(None)
            } else {
                Err(e)
            }
        }
    }
}

/// A capability that could not be dropped from the bounding set.
#[derive(Debug)]
pub struct BoundingError {
    /// The capability.
    pub cap: u8,
    /// Why (`EPERM` without `CAP_SETPCAP` in the effective set).
    pub error: io::Error,
}

impl std::fmt::Display for BoundingError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "cannot drop {} from the bounding set: {}",
            name(self.cap),
            crate::cli::strerror(&self.error)
        )
    }
}

/// Drops every capability but those in `keep` (a [`mask`]) from the
/// bounding set, each drop checked: the first failure is returned (the
/// process must then stop). Needs `CAP_SETPCAP` in the effective set
/// unless there is nothing to drop.
pub fn drop_bounding_except(keep: u64) -> Result<(), BoundingError> {
    for cap in 0..=last_cap() {
        if keep & (1u64 << cap) != 0 {
            continue;
        }
        match bounding_has(cap) {
            Ok(Some(true)) => {}
            Ok(Some(false)) => continue,
            Ok(None) => break,
            Err(error) => return Err(BoundingError { cap, error }),
        }
        // SAFETY: PR_CAPBSET_DROP takes one integer argument and reads
        // nothing from memory; the unused arguments are 0.
        let rc = unsafe { libc::prctl(libc::PR_CAPBSET_DROP, libc::c_ulong::from(cap), 0, 0, 0) };
        if rc != 0 {
            return Err(BoundingError {
                cap,
                error: io::Error::last_os_error(),
            });
        }
    }
    Ok(())
}

/// The number of threads of this process (`/proc/self/task`).
/// Capability sets belong to threads: a drop made with `capset` must be
/// made while the process has one thread, or the others keep theirs.
pub fn thread_count() -> io::Result<usize> {
    Ok(std::fs::read_dir("/proc/self/task")?.count())
}

/// The privileges of a process as `/proc/PID/status` shows them.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ProcStatus {
    /// Real, effective, saved and file-system uid.
    pub uid: [u32; 4],
    /// Real, effective, saved and file-system gid.
    pub gid: [u32; 4],
    /// Supplementary groups.
    pub groups: Vec<u32>,
    /// `CapInh`.
    pub inheritable: u64,
    /// `CapPrm`.
    pub permitted: u64,
    /// `CapEff`.
    pub effective: u64,
    /// `CapBnd`.
    pub bounding: u64,
    /// `CapAmb` (0 on kernels without it).
    pub ambient: u64,
    /// `NoNewPrivs`.
    pub no_new_privs: bool,
}

impl ProcStatus {
    /// Parses the text of `/proc/PID/status`; `None` if a field the
    /// kernel always writes (ids, the four capability sets) is missing or
    /// malformed.
    pub fn parse(text: &str) -> Option<ProcStatus> {
        let mut s = ProcStatus::default();
        let mut seen = 0u32;
        for line in text.lines() {
            let Some((key, value)) = line.split_once(':') else {
                continue;
            };
            let value = value.trim();
            let ids = |v: &str| -> Option<[u32; 4]> {
                let n: Vec<u32> = v
                    .split_whitespace()
                    .map(str::parse)
                    .collect::<Result<_, _>>()
                    .ok()?;
                n.try_into().ok()
            };
            let hex = |v: &str| u64::from_str_radix(v, 16).ok();
            match key {
                "Uid" => (s.uid, seen) = (ids(value)?, seen | 1),
                "Gid" => (s.gid, seen) = (ids(value)?, seen | 2),
                "Groups" => {
                    s.groups = value
                        .split_whitespace()
                        .map(str::parse)
                        .collect::<Result<_, _>>()
                        .ok()?;
                }
                "CapInh" => (s.inheritable, seen) = (hex(value)?, seen | 4),
                "CapPrm" => (s.permitted, seen) = (hex(value)?, seen | 8),
                "CapEff" => (s.effective, seen) = (hex(value)?, seen | 16),
                "CapBnd" => (s.bounding, seen) = (hex(value)?, seen | 32),
                "CapAmb" => s.ambient = hex(value)?,
                "NoNewPrivs" => s.no_new_privs = value == "1",
                _ => {}
            }
        }
        (seen == 63).then_some(s)
    }

    /// This process's (the calling thread's) status.
    pub fn read_self() -> io::Result<ProcStatus> {
        let text = std::fs::read_to_string("/proc/thread-self/status")
            .or_else(|_| std::fs::read_to_string("/proc/self/status"))?;
        ProcStatus::parse(&text).ok_or_else(|| {
            io::Error::new(
                io::ErrorKind::InvalidData,
                "/proc/self/status lacks the id or capability lines",
            )
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const STATUS: &str = "Name:\tuml_switch\nUmask:\t0022\nState:\tS (sleeping)\n\
        Uid:\t65534\t65534\t65534\t65534\nGid:\t65534\t65534\t65534\t65534\n\
        FDSize:\t64\nGroups:\t\nNStgid:\t42\n\
        CapInh:\t0000000000000000\nCapPrm:\t0000000000002000\n\
        CapEff:\t0000000000002000\nCapBnd:\t0000000000002000\n\
        CapAmb:\t0000000000000000\nNoNewPrivs:\t1\nSeccomp:\t0\n";

    #[test]
    fn status_lines_are_parsed() {
        let s = ProcStatus::parse(STATUS).unwrap();
        assert_eq!(s.uid, [65534; 4]);
        assert_eq!(s.gid, [65534; 4]);
        assert!(s.groups.is_empty());
        assert_eq!(s.permitted, mask(&[CAP_NET_RAW]));
        assert_eq!(s.effective, 0x2000);
        assert_eq!(s.bounding, 0x2000);
        assert_eq!(s.inheritable, 0);
        assert!(s.no_new_privs);
        let with_groups = STATUS.replace("Groups:\t", "Groups:\t4 24 27 ");
        assert_eq!(
            ProcStatus::parse(&with_groups).unwrap().groups,
            vec![4, 24, 27]
        );
        // A missing capability line or a bad number is not a status.
        assert!(ProcStatus::parse(&STATUS.replace("CapBnd", "CapXyz")).is_none());
        assert!(ProcStatus::parse(&STATUS.replace("Uid:\t65534\t", "Uid:\tx\t")).is_none());
        assert!(ProcStatus::parse("").is_none());
    }

    #[test]
    fn own_status_and_bounding_set_agree() {
        let s = ProcStatus::read_self().unwrap();
        for cap in 0..=last_cap() {
            let has = bounding_has(cap).unwrap();
            assert_eq!(has, Some(s.bounding & (1 << cap) != 0), "{}", name(cap));
        }
        assert_eq!(bounding_has(last_cap() + 1).unwrap_or(None), None);
    }

    #[test]
    fn a_test_thread_is_counted() {
        let before = thread_count().unwrap();
        assert!(before >= 1);
        let (tx, rx) = std::sync::mpsc::channel::<()>();
        let t = std::thread::spawn(move || {
            let _ = rx.recv();
        });
        assert_eq!(thread_count().unwrap(), before + 1);
        drop(tx);
        t.join().unwrap();
    }

    #[test]
    fn names_and_masks() {
        assert_eq!(name(CAP_NET_ADMIN), "CAP_NET_ADMIN");
        assert_eq!(name(CAP_SETPCAP), "CAP_SETPCAP");
        assert_eq!(name(0), "CAP_CHOWN");
        assert_eq!(name(40), "CAP_CHECKPOINT_RESTORE");
        assert_eq!(name(41), "capability 41");
        assert_eq!(mask(&[CAP_NET_ADMIN, CAP_NET_RAW]), 0x3000);
        assert_eq!(names(0x3000), "CAP_NET_ADMIN, CAP_NET_RAW");
        assert_eq!(names(0), "none");
    }
}
