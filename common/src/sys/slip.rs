//! SLIP on a pseudo-terminal: attaching the line discipline and finding
//! the `slN` interface the kernel made for it.

use std::io;
use std::os::fd::{AsFd, AsRawFd};

/// `N_SLIP` line discipline.
const N_SLIP: libc::c_int = 1;
/// `SIOCSIFENCAP`.
const SIOCSIFENCAP: libc::c_ulong = 0x8926;

/// Sets the SLIP line discipline and plain (uncompressed) encapsulation on
/// the terminal `tty`. Fails with `EINVAL` when the host has no SLIP.
pub fn set_line_discipline(tty: &impl AsFd) -> io::Result<()> {
    let fd = tty.as_fd().as_raw_fd();
    let disc: libc::c_int = N_SLIP;
    // SAFETY: TIOCSETD reads one int through the pointer, which points at
    // a live local for the duration of the call.
    if unsafe { libc::ioctl(fd, libc::TIOCSETD, &disc) } < 0 {
        return Err(io::Error::last_os_error());
    }
    let encap: libc::c_int = 0;
    // SAFETY: SIOCSIFENCAP on a SLIP tty reads one int through the pointer
    // (a live local).
    if unsafe { libc::ioctl(fd, SIOCSIFENCAP, &encap) } < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// The name of the SLIP interface attached to `tty` (`SIOCGIFNAME`).
pub fn interface_name(tty: &impl AsFd) -> io::Result<String> {
    let mut name = [0u8; 16];
    // SAFETY: SIOCGIFNAME on a SLIP tty writes at most IFNAMSIZ (16) bytes
    // into the buffer, which is 16 bytes long and live for the call.
    if unsafe {
        libc::ioctl(
            tty.as_fd().as_raw_fd(),
            libc::SIOCGIFNAME,
            name.as_mut_ptr(),
        )
    } < 0
    {
        return Err(io::Error::last_os_error());
    }
    let end = name.iter().position(|&b| b == 0).unwrap_or(name.len());
    Ok(String::from_utf8_lossy(&name[..end]).into_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    // Miri: terminal ioctls (TCGETS) on a file: not emulated by Miri.
    #[cfg_attr(miri, ignore)]
    fn not_a_tty_fails_cleanly() {
        let f = std::fs::File::open("/dev/null").unwrap();
        assert!(set_line_discipline(&f).is_err());
        assert!(interface_name(&f).is_err());
    }
}
