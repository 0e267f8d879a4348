//! TUN/TAP devices: attaching through a clone device (`/dev/net/tun`,
//! `TUNSETIFF`) and the per-device ioctls the host tools need
//! (`TUNSETPERSIST`, `TUNSETOWNER`, `TUNSETGROUP`, `TUNGETIFF`).
//!
//! [`TunDevice::attach`] is the general entry point (any clone device,
//! kernel-chosen names, TAP or TUN mode); [`open_tun`] is the simple form
//! `uml_switch -tap` uses. Every ioctl is a small safe method; the kernel
//! checks permissions, and its errors are returned unchanged so callers can
//! print them the way the C tools do.
//!
//! A device is created in the network namespace of the thread that opened
//! the clone device. [`list_devices`] reads the TUN/TAP devices of the
//! network namespace sysfs shows (`/sys/class/net/*/tun_flags`, `owner`,
//! `group`), as `ip tuntap show` does.

use std::ffi::OsStr;
use std::fmt;
use std::fs::{File, OpenOptions};
use std::io;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, RawFd};
use std::os::unix::ffi::OsStrExt;
use std::path::Path;

/// `IFF_TUN` (`linux/if_tun.h`): IP packets.
pub const IFF_TUN: u16 = 0x0001;
/// `IFF_TAP`: Ethernet frames.
pub const IFF_TAP: u16 = 0x0002;
/// `IFF_MULTI_QUEUE`: the device has several queues,
/// one per attached descriptor.
pub const IFF_MULTI_QUEUE: u16 = 0x0100;
/// `IFF_VNET_HDR`: every frame on the descriptor starts with a
/// `virtio_net_hdr`.
pub const IFF_VNET_HDR: u16 = 0x4000;
/// `IFF_NO_PI`: no 4-byte packet-information header.
pub const IFF_NO_PI: u16 = 0x1000;
/// `IFF_ONE_QUEUE` (obsolete, kept in the flags).
pub const IFF_ONE_QUEUE: u16 = 0x2000;
/// `IFF_PERSIST` (read-only: set by `TUNSETPERSIST`).
pub const IFF_PERSIST: u16 = 0x0800;

/// The standard clone device.
pub const DEFAULT_CLONE_DEVICE: &str = "/dev/net/tun";
/// Longest interface name (IFNAMSIZ - 1).
pub const IFNAME_MAX: usize = 15;
/// `sizeof(struct ifreq)` on Linux x86_64.
const IFREQ_LEN: usize = 40;
/// Offset of `ifr_flags` (the union after the 16-byte name).
const IFREQ_FLAGS: usize = 16;

/// Which kind of device.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// Ethernet frames (`IFF_TAP`).
    Tap,
    /// IP packets (`IFF_TUN`).
    Tun,
}

impl Mode {
    /// The `IFF_TAP` / `IFF_TUN` flag.
    fn flag(self) -> u16 {
        let flag = match self {
            Mode::Tap => libc::IFF_TAP,
            Mode::Tun => libc::IFF_TUN,
        };
        // Both are small positive constants (2 and 1).
        flag as u16
    }
}

/// Optional `TUNSETIFF` flags beyond the mode and `IFF_NO_PI`.
///
/// The kernel stores them per device but takes them again from every
/// `TUNSETIFF`: `vnet_hdr` is whatever the last attach asked for, while
/// `multi_queue` is fixed when the device is created and every later
/// attach must ask for the same (else `EINVAL`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Features {
    /// `IFF_VNET_HDR`.
    pub vnet_hdr: bool,
    /// `IFF_MULTI_QUEUE`.
    pub multi_queue: bool,
}

impl Features {
    /// The flag bits.
    pub fn flags(self) -> u16 {
        let mut f = 0;
        if self.vnet_hdr {
            f |= IFF_VNET_HDR;
        }
        if self.multi_queue {
            f |= IFF_MULTI_QUEUE;
        }
        f
    }
}

/// Why attaching failed, with the step that failed (the C tools print
/// different messages for each).
#[derive(Debug)]
pub enum TunError {
    /// The name is too long or contains a NUL ([`open_tun`] also refuses
    /// an empty name).
    BadName,
    /// Opening the clone device failed.
    Open(io::Error),
    /// The `TUNSETIFF` ioctl failed.
    SetIff(io::Error),
}

impl fmt::Display for TunError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TunError::BadName => {
                write!(f, "bad interface name (at most {IFNAME_MAX} bytes, no NUL)")
            }
            TunError::Open(e) => write!(f, "cannot open the tun clone device: {e}"),
            TunError::SetIff(e) => write!(f, "TUNSETIFF: {e}"),
        }
    }
}

impl std::error::Error for TunError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            TunError::BadName => None,
            TunError::Open(e) | TunError::SetIff(e) => Some(e),
        }
    }
}

/// The device's flags as `TUNGETIFF` reports them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TunInfo {
    /// TAP or TUN; `None` for a kind this module does not know.
    pub mode: Option<Mode>,
    /// `IFF_PERSIST`: the device outlives its last descriptor.
    pub persistent: bool,
    /// Packets carry the 4-byte packet-information header (no `IFF_NO_PI`).
    pub packet_info: bool,
    /// `IFF_VNET_HDR`.
    pub vnet_hdr: bool,
    /// `IFF_MULTI_QUEUE`.
    pub multi_queue: bool,
    /// All flags, as the kernel returned them.
    pub raw: u16,
}

impl TunInfo {
    fn from_flags(raw: u16) -> TunInfo {
        let has = |flag: libc::c_int| raw & (flag as u16) != 0;
        let mode = match (has(libc::IFF_TAP), has(libc::IFF_TUN)) {
            (true, false) => Some(Mode::Tap),
            (false, true) => Some(Mode::Tun),
            _ => None,
        };
        TunInfo {
            mode,
            persistent: has(libc::IFF_PERSIST),
            packet_info: !has(libc::IFF_NO_PI),
            vnet_hdr: has(libc::IFF_VNET_HDR),
            multi_queue: raw & IFF_MULTI_QUEUE != 0,
            raw,
        }
    }
}

/// A TUN/TAP interface this process is attached to. Dropping it closes the
/// descriptor; a device that is not persistent then disappears.
#[derive(Debug)]
pub struct TunDevice {
    file: File,
    name: Vec<u8>,
}

impl TunDevice {
    /// Opens `clone_device` (read-write, close-on-exec) and attaches to —
    /// or creates — interface `name` in `mode` with `IFF_NO_PI`. An empty
    /// `name` lets the kernel choose (`tap0`, `tap1`, … or `tun0`, …);
    /// [`TunDevice::name`] gives the name in use.
    ///
    /// `name` is used as given: it must fit in [`IFNAME_MAX`] bytes and
    /// contain no NUL ([`truncate_name`] reproduces the C tools' silent
    /// cut). Whether the kernel accepts it (`/`, `:`, blanks, an existing
    /// device of the other kind, permissions) is its decision, reported
    /// as [`TunError::SetIff`].
    pub fn attach(clone_device: &Path, name: &[u8], mode: Mode) -> Result<TunDevice, TunError> {
        Self::attach_with(clone_device, name, mode, Features::default())
    }

    /// [`TunDevice::attach`] with the optional flags `features`
    /// (`IFF_VNET_HDR`, `IFF_MULTI_QUEUE`).
    pub fn attach_with(
        clone_device: &Path,
        name: &[u8],
        mode: Mode,
        features: Features,
    ) -> Result<TunDevice, TunError> {
        if name.len() > IFNAME_MAX || name.contains(&0) {
            return Err(TunError::BadName);
        }
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .open(clone_device)
            .map_err(TunError::Open)?;
        Self::attach_file_with(file, name, mode, features)
    }

    /// Like [`TunDevice::attach`] on a clone device opened earlier (a
    /// setuid helper opens it before giving up root).
    pub fn attach_file(file: File, name: &[u8], mode: Mode) -> Result<TunDevice, TunError> {
        Self::attach_file_with(file, name, mode, Features::default())
    }

    /// [`TunDevice::attach_file`] with the optional flags `features`.
    pub fn attach_file_with(
        file: File,
        name: &[u8],
        mode: Mode,
        features: Features,
    ) -> Result<TunDevice, TunError> {
        if name.len() > IFNAME_MAX || name.contains(&0) {
            return Err(TunError::BadName);
        }
        let mut ifr = ifreq(name, mode.flag() | IFF_NO_PI | features.flags());
        // SAFETY: TUNSETIFF reads and writes one `struct ifreq` (40 bytes
        // on Linux x86_64) at the pointer; `ifr` is a live, writable
        // 40-byte buffer for the duration of the call. On a descriptor
        // that is not a tun device the ioctl fails without touching it.
        let rc = unsafe { libc::ioctl(file.as_raw_fd(), libc::TUNSETIFF, ifr.as_mut_ptr()) };
        if rc < 0 {
            return Err(TunError::SetIff(io::Error::last_os_error()));
        }
        let name = ifreq_name(&ifr).to_vec();
        Ok(TunDevice { file, name })
    }

    /// The interface name in use (the kernel's choice for an empty name).
    pub fn name(&self) -> &OsStr {
        OsStr::from_bytes(&self.name)
    }

    /// [`TunDevice::name`] as bytes.
    pub fn name_bytes(&self) -> &[u8] {
        &self.name
    }

    /// `TUNSETPERSIST`: keep the device after the last descriptor closes
    /// (`true`), or let it go then (`false`).
    pub fn set_persist(&self, persist: bool) -> io::Result<()> {
        self.int_ioctl(libc::TUNSETPERSIST, libc::c_ulong::from(persist))
    }

    /// `TUNSETOWNER`: the user allowed to attach without `CAP_NET_ADMIN`.
    /// The kernel refuses `u32::MAX` (no uid) and uids not mapped in the
    /// caller's user namespace (`EINVAL`).
    pub fn set_owner(&self, uid: u32) -> io::Result<()> {
        self.int_ioctl(libc::TUNSETOWNER, libc::c_ulong::from(uid))
    }

    /// `TUNSETGROUP`: the group allowed to attach without `CAP_NET_ADMIN`
    /// (same rules as [`TunDevice::set_owner`]).
    pub fn set_group(&self, gid: u32) -> io::Result<()> {
        self.int_ioctl(libc::TUNSETGROUP, libc::c_ulong::from(gid))
    }

    /// `TUNGETIFF`: the device's current flags.
    pub fn info(&self) -> io::Result<TunInfo> {
        let mut ifr = [0u8; IFREQ_LEN];
        // SAFETY: TUNGETIFF writes one `struct ifreq` (40 bytes) at the
        // pointer; `ifr` is a live, writable 40-byte buffer for the call.
        let rc = unsafe { libc::ioctl(self.file.as_raw_fd(), libc::TUNGETIFF, ifr.as_mut_ptr()) };
        if rc < 0 {
            return Err(io::Error::last_os_error());
        }
        let flags = u16::from_ne_bytes([ifr[IFREQ_FLAGS], ifr[IFREQ_FLAGS + 1]]);
        Ok(TunInfo::from_flags(flags))
    }

    /// The device descriptor (frames or packets are read and written here).
    pub fn file(&self) -> &File {
        &self.file
    }

    /// Gives up the name and keeps the descriptor.
    pub fn into_file(self) -> File {
        self.file
    }

    /// An ioctl whose argument is an integer passed by value.
    fn int_ioctl(&self, request: libc::c_ulong, arg: libc::c_ulong) -> io::Result<()> {
        // SAFETY: the TUNSET{PERSIST,OWNER,GROUP} requests take their
        // argument by value, not as a pointer, so the kernel touches no
        // memory of ours; the descriptor is open for the whole call.
        let rc = unsafe { libc::ioctl(self.file.as_raw_fd(), request, arg) };
        if rc < 0 {
            return Err(io::Error::last_os_error());
        }
        Ok(())
    }
}

impl AsFd for TunDevice {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.file.as_fd()
    }
}

impl AsRawFd for TunDevice {
    fn as_raw_fd(&self) -> RawFd {
        self.file.as_raw_fd()
    }
}

/// The name the C tools put in `ifr_name`:
/// `strncpy(ifr_name, name, IFNAMSIZ - 1)`, i.e. up to the first NUL and at
/// most [`IFNAME_MAX`] bytes.
pub fn truncate_name(name: &[u8]) -> &[u8] {
    let end = name.iter().position(|&b| b == 0).unwrap_or(name.len());
    &name[..end.min(IFNAME_MAX)]
}

/// A zeroed `struct ifreq` with `name` and `flags` (native byte order).
/// `name` must already fit (at most [`IFNAME_MAX`] bytes).
fn ifreq(name: &[u8], flags: u16) -> [u8; IFREQ_LEN] {
    let mut ifr = [0u8; IFREQ_LEN];
    let name = truncate_name(name);
    ifr[..name.len()].copy_from_slice(name);
    ifr[IFREQ_FLAGS..IFREQ_FLAGS + 2].copy_from_slice(&flags.to_ne_bytes());
    ifr
}

/// The NUL-terminated name at the start of an `ifreq`.
fn ifreq_name(ifr: &[u8; IFREQ_LEN]) -> &[u8] {
    let field = &ifr[..IFREQ_FLAGS];
    let end = field.iter().position(|&b| b == 0).unwrap_or(field.len());
    &field[..end]
}

/// A TUN/TAP device as sysfs shows it (`/sys/class/net/NAME/`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Listed {
    /// The interface name.
    pub name: Vec<u8>,
    /// Its index (`ifindex`), 0 when unreadable.
    pub ifindex: u32,
    /// `tun_flags`: `IFF_TUN`/`IFF_TAP`, `IFF_PERSIST` and the features
    /// (`IFF_NO_PI`, `IFF_VNET_HDR`, `IFF_MULTI_QUEUE`, ...).
    pub flags: u32,
    /// `owner`; `None` when unset (`-1`).
    pub owner: Option<u32>,
    /// `group`; `None` when unset (`-1`).
    pub group: Option<u32>,
}

impl Listed {
    /// [`TunInfo`] of the low 16 bits of the flags.
    pub fn info(&self) -> TunInfo {
        // tun_flags fit in the 16-bit ifr_flags.
        TunInfo::from_flags(self.flags as u16)
    }
}

/// The sysfs directory of network devices.
pub const SYSFS_NET: &str = "/sys/class/net";

/// The TUN/TAP devices under `sysfs_net` (normally [`SYSFS_NET`], which
/// shows the network namespace sysfs was mounted in), in `ifindex`
/// order: every entry with a `tun_flags` attribute. Devices that vanish
/// while being read are left out.
pub fn list_devices(sysfs_net: &Path) -> io::Result<Vec<Listed>> {
    let mut found = Vec::new();
    for entry in std::fs::read_dir(sysfs_net)? {
        let entry = entry?;
        let dir = entry.path();
        let read = |attr: &str| std::fs::read_to_string(dir.join(attr)).ok();
        let Some(flags) = read("tun_flags").and_then(|t| parse_hex(t.trim())) else {
            continue;
        };
        let (Some(owner), Some(group)) = (read("owner"), read("group")) else {
            continue;
        };
        found.push(Listed {
            name: entry.file_name().as_bytes().to_vec(),
            ifindex: read("ifindex")
                .and_then(|t| t.trim().parse().ok())
                .unwrap_or(0),
            flags,
            owner: parse_id(owner.trim()),
            group: parse_id(group.trim()),
        });
    }
    found.sort_by(|a, b| (a.ifindex, &a.name).cmp(&(b.ifindex, &b.name)));
    Ok(found)
}

/// `0x1002` → 0x1002.
fn parse_hex(text: &str) -> Option<u32> {
    let digits = text
        .strip_prefix("0x")
        .or_else(|| text.strip_prefix("0X"))?;
    u32::from_str_radix(digits, 16).ok()
}

/// sysfs `owner`/`group`: a number, or `-1` for none.
fn parse_id(text: &str) -> Option<u32> {
    text.parse::<u32>().ok().filter(|&id| id != u32::MAX)
}

/// Opens `/dev/net/tun` and attaches to (or creates) interface `name` with
/// `IFF_NO_PI`. Returns the device file (blocking). An empty name is
/// refused ([`TunDevice::attach`] accepts it).
pub fn open_tun(name: &str, mode: Mode) -> Result<File, TunError> {
    if name.is_empty() {
        return Err(TunError::BadName);
    }
    TunDevice::attach(Path::new(DEFAULT_CLONE_DEVICE), name.as_bytes(), mode)
        .map(TunDevice::into_file)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ioctl_numbers_are_the_specs() {
        // `docs/tunctl.md` §3: _IOW('T', 202..206, int), and _IOR('T', 210,
        // uint).
        assert_eq!(libc::TUNSETIFF, 0x4004_54ca);
        assert_eq!(libc::TUNSETPERSIST, 0x4004_54cb);
        assert_eq!(libc::TUNSETOWNER, 0x4004_54cc);
        assert_eq!(libc::TUNSETGROUP, 0x4004_54ce);
        assert_eq!(libc::TUNGETIFF, 0x8004_54d2);
        assert_eq!(Mode::Tap.flag() | libc::IFF_NO_PI as u16, 0x1002);
        assert_eq!(Mode::Tun.flag() | libc::IFF_NO_PI as u16, 0x1001);
        for (ours, libc) in [
            (IFF_MULTI_QUEUE, libc::IFF_MULTI_QUEUE),
            (IFF_VNET_HDR, libc::IFF_VNET_HDR),
            (IFF_NO_PI, libc::IFF_NO_PI),
            (IFF_ONE_QUEUE, libc::IFF_ONE_QUEUE),
            (IFF_PERSIST, libc::IFF_PERSIST),
            (IFF_TUN, libc::IFF_TUN),
            (IFF_TAP, libc::IFF_TAP),
        ] {
            assert_eq!(libc::c_int::from(ours), libc);
        }
        let both = Features {
            vnet_hdr: true,
            multi_queue: true,
        };
        assert_eq!(both.flags(), 0x4100);
        assert_eq!(Features::default().flags(), 0);
    }

    #[test]
    fn sysfs_values() {
        assert_eq!(parse_hex("0x5902"), Some(0x5902));
        assert_eq!(parse_hex("5902"), None);
        assert_eq!(parse_hex("0xzz"), None);
        assert_eq!(parse_id("-1"), None);
        assert_eq!(parse_id("65534"), Some(65534));
        assert_eq!(parse_id("4294967295"), None);
        assert_eq!(parse_id(""), None);
    }

    #[test]
    fn listing_reads_tun_attributes_only() {
        let dir = std::env::temp_dir().join(format!("tun-list-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let dev = |name: &str, attrs: &[(&str, &str)]| {
            let d = dir.join(name);
            std::fs::create_dir_all(&d).unwrap();
            for (a, v) in attrs {
                std::fs::write(d.join(a), format!("{v}\n")).unwrap();
            }
        };
        dev("lo", &[("ifindex", "1")]);
        dev(
            "tap9",
            &[
                ("ifindex", "9"),
                ("tun_flags", "0x5902"),
                ("owner", "1000"),
                ("group", "-1"),
            ],
        );
        dev(
            "tun3",
            &[
                ("ifindex", "3"),
                ("tun_flags", "0x2801"),
                ("owner", "-1"),
                ("group", "100"),
            ],
        );
        dev("half", &[("ifindex", "4"), ("tun_flags", "0x1002")]);
        let got = list_devices(&dir).unwrap();
        std::fs::remove_dir_all(&dir).unwrap();
        assert_eq!(
            got,
            vec![
                Listed {
                    name: b"tun3".to_vec(),
                    ifindex: 3,
                    flags: 0x2801,
                    owner: None,
                    group: Some(100),
                },
                Listed {
                    name: b"tap9".to_vec(),
                    ifindex: 9,
                    flags: 0x5902,
                    owner: Some(1000),
                    group: None,
                },
            ]
        );
        let i = got[1].info();
        assert!(i.multi_queue && i.vnet_hdr && i.persistent && !i.packet_info);
        assert_eq!(i.mode, Some(Mode::Tap));
        assert!(list_devices(Path::new("/nonexistent/net")).is_err());
    }

    #[test]
    fn ifreq_bytes_of_the_spec() {
        // `docs/tunctl.md` §5: `tap0`, 12 NULs, 02 10, 22 NULs.
        let ifr = ifreq(b"tap0", 0x1002);
        let mut want = Vec::new();
        want.extend_from_slice(b"tap0");
        want.extend_from_slice(&[0; 12]);
        want.extend_from_slice(&[0x02, 0x10]);
        want.extend_from_slice(&[0; 22]);
        assert_eq!(ifr.to_vec(), want);
        assert_eq!(ifreq_name(&ifr), b"tap0");
        let full = ifreq(b"abcdefghijklmno", 0);
        assert_eq!(ifreq_name(&full), b"abcdefghijklmno");
        assert_eq!(full[15], 0);
    }

    #[test]
    fn names_are_cut_like_strncpy() {
        assert_eq!(
            truncate_name(b"abcdefghijklmnopqrstuvwxyz"),
            b"abcdefghijklmno"
        );
        assert_eq!(truncate_name(b"tap0"), b"tap0");
        assert_eq!(truncate_name(b""), b"");
        assert_eq!(truncate_name(b"ab\0cd"), b"ab");
    }

    #[test]
    fn info_decodes_flags() {
        let i = TunInfo::from_flags(0x1802);
        assert_eq!(i.mode, Some(Mode::Tap));
        assert!(i.persistent && !i.packet_info && !i.vnet_hdr);
        let i = TunInfo::from_flags(0x4001);
        assert_eq!(i.mode, Some(Mode::Tun));
        assert!(!i.persistent && i.packet_info && i.vnet_hdr && !i.multi_queue);
        assert!(TunInfo::from_flags(0x1102).multi_queue);
        assert_eq!(TunInfo::from_flags(0).mode, None);
    }

    #[test]
    fn bad_names_are_refused_before_any_syscall() {
        for name in ["", "0123456789abcdef", "a\0b"] {
            assert!(matches!(open_tun(name, Mode::Tap), Err(TunError::BadName)));
        }
        let nowhere = Path::new("/nonexistent/tun");
        for name in [&b"0123456789abcdef"[..], b"a\0b"] {
            assert!(matches!(
                TunDevice::attach(nowhere, name, Mode::Tap),
                Err(TunError::BadName)
            ));
        }
    }

    #[test]
    fn missing_clone_device_is_an_open_error() {
        match TunDevice::attach(Path::new("/nonexistent/tun"), b"", Mode::Tap) {
            Err(TunError::Open(e)) => assert_eq!(e.raw_os_error(), Some(libc::ENOENT)),
            other => panic!("expected Open(ENOENT), got {other:?}"),
        }
    }

    #[test]
    // Miri: ioctl (TUNSETIFF, TUNGETIFF, …) and /dev/net/tun: not emulated by Miri.
    #[cfg_attr(miri, ignore)]
    fn a_file_that_is_not_a_tun_device_fails_tunsetiff() {
        // `docs/tunctl.md` §4: `-f /dev/null` → `TUNSETIFF: Inappropriate ioctl
        // for device`. Needs no privilege and creates nothing.
        match TunDevice::attach(Path::new("/dev/null"), b"tap0", Mode::Tap) {
            Err(TunError::SetIff(e)) => {
                assert_eq!(e.raw_os_error(), Some(libc::ENOTTY));
                assert_eq!(
                    TunError::SetIff(e).to_string(),
                    "TUNSETIFF: Inappropriate ioctl for device (os error 25)"
                );
            }
            other => panic!("expected SetIff(ENOTTY), got {other:?}"),
        }
    }

    /// Runs `f` on a new thread moved into a network namespace of its own,
    /// which disappears with the thread (and every device made in it).
    /// `None` when that is impossible (not root, no `/dev/net/tun`): the
    /// caller skips, and nothing is ever created in the caller's namespace.
    fn in_private_netns<R: Send + 'static>(
        test: &str,
        f: impl FnOnce() -> R + Send + 'static,
    ) -> Option<R> {
        if !Path::new(DEFAULT_CLONE_DEVICE).exists() {
            eprintln!("SKIP {test}: {DEFAULT_CLONE_DEVICE} does not exist");
            return None;
        }
        let handle = std::thread::spawn(move || {
            // SAFETY: unshare(CLONE_NEWNET) has no memory effects; it moves
            // only this thread (a thread of its own, ended right after `f`)
            // into a new network namespace, or fails without a change.
            if unsafe { libc::unshare(libc::CLONE_NEWNET) } != 0 {
                return Err(io::Error::last_os_error());
            }
            Ok(f())
        });
        match handle.join() {
            Ok(Ok(r)) => Some(r),
            Ok(Err(e)) => {
                eprintln!("SKIP {test}: no private network namespace ({e}; needs root)");
                None
            }
            Err(panic) => std::panic::resume_unwind(panic),
        }
    }

    fn tun() -> &'static Path {
        Path::new(DEFAULT_CLONE_DEVICE)
    }

    #[test]
    // Miri: ioctl (TUNSETIFF, TUNGETIFF, …) and /dev/net/tun: not emulated by Miri.
    #[cfg_attr(miri, ignore)]
    fn kernel_chosen_names_persistence_and_ownership() {
        in_private_netns("kernel_chosen_names_persistence_and_ownership", || {
            let a = TunDevice::attach(tun(), b"", Mode::Tap).unwrap();
            assert_eq!(a.name_bytes(), b"tap0");
            assert_eq!(a.name(), OsStr::new("tap0"));
            let info = a.info().unwrap();
            assert_eq!(info.mode, Some(Mode::Tap));
            assert!(!info.persistent && !info.packet_info && !info.vnet_hdr);
            assert!(!info.multi_queue);
            a.set_persist(true).unwrap();
            assert!(a.info().unwrap().persistent);
            a.set_owner(65534).unwrap();
            a.set_group(65534).unwrap();
            // (uid_t)-1 is "no uid": the kernel refuses it.
            let e = a.set_owner(u32::MAX).unwrap_err();
            assert_eq!(e.raw_os_error(), Some(libc::EINVAL));
            let e = a.set_group(u32::MAX).unwrap_err();
            assert_eq!(e.raw_os_error(), Some(libc::EINVAL));
            drop(a);

            // tap0 persists: the next kernel-chosen name is tap1, and
            // tap0 can be attached to again by name.
            let b = TunDevice::attach(tun(), b"", Mode::Tap).unwrap();
            assert_eq!(b.name_bytes(), b"tap1");
            let again = TunDevice::attach(tun(), b"tap0", Mode::Tap).unwrap();
            assert!(again.info().unwrap().persistent);
            // A tap is not a tun.
            match TunDevice::attach(tun(), b"tap0", Mode::Tun) {
                Err(TunError::SetIff(e)) => assert_eq!(e.raw_os_error(), Some(libc::EINVAL)),
                other => panic!("tap0 attached as tun: {other:?}"),
            }
            again.set_persist(false).unwrap();
            assert!(!again.info().unwrap().persistent);
        });
    }

    #[test]
    // Miri: ioctl (TUNSETIFF, TUNGETIFF, …) and /dev/net/tun: not emulated by Miri.
    #[cfg_attr(miri, ignore)]
    fn tun_mode_and_names() {
        in_private_netns("tun_mode_and_names", || {
            let t = TunDevice::attach(tun(), b"", Mode::Tun).unwrap();
            assert_eq!(t.name_bytes(), b"tun0");
            assert_eq!(t.info().unwrap().mode, Some(Mode::Tun));
            let long = TunDevice::attach(tun(), b"abcdefghijklmno", Mode::Tap).unwrap();
            assert_eq!(long.name_bytes(), b"abcdefghijklmno");
            // The kernel decides which names are valid.
            match TunDevice::attach(tun(), b"a/b", Mode::Tap) {
                Err(TunError::SetIff(e)) => assert_eq!(e.raw_os_error(), Some(libc::EINVAL)),
                other => panic!("a/b accepted: {other:?}"),
            }
            // The simple form still works, and returns the device file.
            let f = open_tun("umlsw0", Mode::Tap).unwrap();
            assert!(f.as_raw_fd() >= 0);
        });
    }

    #[test]
    // Miri: ioctl (TUNSETIFF, TUNGETIFF, …) and /dev/net/tun: not emulated by Miri.
    #[cfg_attr(miri, ignore)]
    fn vnet_hdr_and_multi_queue() {
        in_private_netns("vnet_hdr_and_multi_queue", || {
            let both = Features {
                vnet_hdr: true,
                multi_queue: true,
            };
            let mq = TunDevice::attach_with(tun(), b"mq0", Mode::Tap, both).unwrap();
            let info = mq.info().unwrap();
            assert!(info.vnet_hdr && info.multi_queue, "{info:?}");
            mq.set_persist(true).unwrap();
            // A second queue of the same device.
            let q2 = TunDevice::attach_with(tun(), b"mq0", Mode::Tap, both).unwrap();
            // Every attach must agree on multi_queue...
            match TunDevice::attach(tun(), b"mq0", Mode::Tap) {
                Err(TunError::SetIff(e)) => assert_eq!(e.raw_os_error(), Some(libc::EINVAL)),
                other => panic!("single-queue attach to mq0: {other:?}"),
            }
            drop((mq, q2));
            // ...while vnet_hdr is what the last attach asked for.
            let vh = Features {
                vnet_hdr: true,
                multi_queue: false,
            };
            let v = TunDevice::attach_with(tun(), b"vh0", Mode::Tap, vh).unwrap();
            assert!(v.info().unwrap().vnet_hdr);
            drop(v);
            let plain = TunDevice::attach(tun(), b"vh0", Mode::Tap).unwrap();
            assert!(!plain.info().unwrap().vnet_hdr);
        });
    }
}
