//! Attaching to a TUN/TAP device (`/dev/net/tun` + `TUNSETIFF`).

use std::fs::{File, OpenOptions};
use std::io;
use std::os::fd::AsRawFd;

/// `TUNSETIFF` = `_IOW('T', 202, int)`.
const TUNSETIFF: libc::c_ulong = 0x4004_54ca;
/// Longest interface name (IFNAMSIZ - 1).
pub const IFNAME_MAX: usize = 15;

/// Which kind of device.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// Ethernet frames (`IFF_TAP`).
    Tap,
    /// IP packets (`IFF_TUN`).
    Tun,
}

/// Why attaching failed, with the step that failed (the C tools print
/// different messages for each).
#[derive(Debug)]
pub enum TunError {
    /// The name is empty, too long or contains a NUL.
    BadName,
    /// Opening `/dev/net/tun` failed.
    Open(io::Error),
    /// The `TUNSETIFF` ioctl failed.
    SetIff(io::Error),
}

/// Opens `/dev/net/tun` and attaches to (or creates) interface `name` with
/// `IFF_NO_PI`. Returns the device file (blocking).
pub fn open_tun(name: &str, mode: Mode) -> Result<File, TunError> {
    if name.is_empty() || name.len() > IFNAME_MAX || name.contains('\0') {
        return Err(TunError::BadName);
    }
    let file = OpenOptions::new()
        .read(true)
        .write(true)
        .open("/dev/net/tun")
        .map_err(TunError::Open)?;
    // struct ifreq: 16-byte name, then the union (flags: short), 40 bytes.
    let mut ifr = [0u8; 40];
    ifr[..name.len()].copy_from_slice(name.as_bytes());
    let kind = match mode {
        Mode::Tap => libc::IFF_TAP,
        Mode::Tun => libc::IFF_TUN,
    };
    let flags = (kind | libc::IFF_NO_PI) as libc::c_short;
    ifr[16..18].copy_from_slice(&flags.to_ne_bytes());
    // SAFETY: `file` is an open /dev/net/tun descriptor; TUNSETIFF reads and
    // writes one `struct ifreq` (40 bytes), and `ifr` is a live, writable
    // 40-byte buffer for the duration of the call.
    let rc = unsafe { libc::ioctl(file.as_raw_fd(), TUNSETIFF, ifr.as_mut_ptr()) };
    if rc < 0 {
        return Err(TunError::SetIff(io::Error::last_os_error()));
    }
    Ok(file)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bad_names_are_refused_before_any_syscall() {
        for name in ["", "0123456789abcdef", "a\0b"] {
            assert!(matches!(open_tun(name, Mode::Tap), Err(TunError::BadName)));
        }
    }

    #[test]
    fn attaching_needs_the_device_or_fails_cleanly() {
        // Without root or /dev/net/tun this must fail with an error, never
        // crash; with them it is exercised by the integration tests.
        match open_tun("umltestnone0", Mode::Tap) {
            Ok(_) | Err(TunError::Open(_)) | Err(TunError::SetIff(_)) => {}
            Err(TunError::BadName) => panic!("valid name refused"),
        }
    }
}
