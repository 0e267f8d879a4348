//! Process hygiene for the programs the kernel (or root) starts on the
//! host: `port-helper`, `uml_watchdog` and `jail_uml`.
//!
//! * [`close_fds_from`] closes every descriptor a process inherited but
//!   does not need (the UML kernel sets no close-on-exec flags, so its
//!   helpers inherit its listening sockets, files and epoll descriptor);
//! * [`set_disposition`] ignores a signal or restores its default action
//!   (neither nix nor std offers a safe call for it);
//! * [`give_up_controlling_tty`] is `ioctl(fd, TIOCNOTTY)`;
//! * [`PidFd`] signals a process through a pidfd, so that a recycled pid
//!   is never signalled by mistake.

use std::collections::BTreeSet;
use std::io;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, FromRawFd, OwnedFd, RawFd};

/// Closes every open descriptor numbered `first` or higher except those in
/// `keep`.
///
/// Uses `close_range(2)` (Linux 5.9); on older kernels it falls back to
/// closing what `/proc/self/fd` lists. Meant for the start of a program
/// (or right before `exec`), when nothing in the process owns a
/// descriptor in that range other than the ones kept: a descriptor owned
/// by a live Rust object would be closed under its feet.
pub fn close_fds_from(first: RawFd, keep: &[RawFd]) -> io::Result<()> {
    let first = first.max(0);
    let ranges = ranges_to_close(first, keep);
    for &(lo, hi) in &ranges {
        // SAFETY: close_range only closes descriptors; it touches no
        // memory of ours. That closing them is acceptable is this
        // function's documented contract.
        let rc = unsafe { libc::close_range(lo, hi, 0) };
        if rc != 0 {
            let err = io::Error::last_os_error();
            return match err.raw_os_error() {
                // No close_range (kernel < 5.9, or a seccomp filter).
                Some(libc::ENOSYS) | Some(libc::EPERM) => close_listed_fds(first, keep),
                _ => Err(err),
            };
        }
    }
    Ok(())
}

/// The inclusive descriptor ranges `[lo, hi]` that together cover every
/// descriptor ≥ `first` except those in `keep`.
fn ranges_to_close(first: RawFd, keep: &[RawFd]) -> Vec<(u32, u32)> {
    let first = u32::try_from(first).unwrap_or(0);
    let keep: BTreeSet<u32> = keep
        .iter()
        .filter_map(|&k| u32::try_from(k).ok())
        .filter(|&k| k >= first)
        .collect();
    let mut ranges = Vec::new();
    let mut next = first;
    for k in keep {
        if k > next {
            ranges.push((next, k - 1));
        }
        next = k.saturating_add(1);
    }
    // `keep` holds no value above i32::MAX, so `next` ≤ 2^31.
    ranges.push((next, u32::MAX));
    ranges
}

/// The fallback of [`close_fds_from`]: closes what `/proc/self/fd` lists.
fn close_listed_fds(first: RawFd, keep: &[RawFd]) -> io::Result<()> {
    // Collect first, so that the directory's own descriptor is closed
    // (by dropping the iterator) before the list is acted on.
    let listed: Vec<RawFd> = std::fs::read_dir("/proc/self/fd")?
        .flatten()
        .filter_map(|e| e.file_name().to_str().and_then(|s| s.parse().ok()))
        .collect();
    for fd in listed {
        if fd >= first && !keep.contains(&fd) {
            // SAFETY: closing a descriptor touches no memory; EBADF (the
            // directory's own, already closed descriptor) is harmless.
            unsafe { libc::close(fd) };
        }
    }
    Ok(())
}

/// What to do with a signal.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Disposition {
    /// `SIG_IGN`.
    Ignore,
    /// `SIG_DFL`.
    Default,
}

/// Sets the disposition of `sig` to ignore or to its default action.
///
/// Rust's runtime ignores `SIGPIPE`, and an ignored signal stays ignored
/// across `exec`: a program that `exec`s another restores the default
/// first, as a C program would have it.
pub fn set_disposition(sig: i32, what: Disposition) -> io::Result<()> {
    let handler = match what {
        Disposition::Ignore => libc::SIG_IGN,
        Disposition::Default => libc::SIG_DFL,
    };
    // SAFETY: an all-zero sigaction is a valid value (empty mask, no
    // flags); only SIG_IGN or SIG_DFL is installed, never a handler, so no
    // code of ours can run in signal context. The pointers passed are to
    // live locals (or null for the old action).
    let rc = unsafe {
        let mut action: libc::sigaction = std::mem::zeroed();
        action.sa_sigaction = handler;
        libc::sigemptyset(&mut action.sa_mask);
        libc::sigaction(sig, &action, std::ptr::null_mut())
    };
    if rc != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// `ioctl(fd, TIOCNOTTY)`: if `fd` is this process's controlling terminal,
/// give it up (a session leader's foreground group gets `SIGHUP` and
/// `SIGCONT`).
pub fn give_up_controlling_tty(fd: BorrowedFd<'_>) -> io::Result<()> {
    // SAFETY: TIOCNOTTY takes no argument and writes no memory; `fd` is a
    // valid descriptor for the duration of the borrow.
    let rc = unsafe { libc::ioctl(fd.as_raw_fd(), libc::TIOCNOTTY) };
    if rc != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// A process file descriptor (`pidfd_open(2)`, Linux 5.3): signals sent
/// through it reach the process it was opened for, or nobody once that
/// process has gone, even if its pid has been given to another process.
#[derive(Debug)]
pub struct PidFd(OwnedFd);

impl PidFd {
    /// Opens a pidfd for `pid`. Fails with `ESRCH` when there is no such
    /// process, `EINVAL` for a pid that is not a thread-group leader (or is
    /// not positive), `ENOSYS` on kernels without pidfds.
    pub fn open(pid: i32) -> io::Result<PidFd> {
        if pid <= 0 {
            return Err(io::Error::from_raw_os_error(libc::EINVAL));
        }
        // SAFETY: pidfd_open takes two integers and touches no memory of
        // ours; it returns a new descriptor or -1.
        let rc = unsafe { libc::syscall(libc::SYS_pidfd_open, pid, 0) };
        if rc < 0 {
            return Err(io::Error::last_os_error());
        }
        let fd = RawFd::try_from(rc).map_err(|_| io::Error::from_raw_os_error(libc::EBADF))?;
        // SAFETY: `fd` was just returned by pidfd_open; nothing else owns
        // it. (pidfd_open sets close-on-exec itself.)
        Ok(PidFd(unsafe { OwnedFd::from_raw_fd(fd) }))
    }

    /// Sends `sig` to the process (`pidfd_send_signal(2)`). Fails with
    /// `ESRCH` once the process has ended.
    pub fn send_signal(&self, sig: i32) -> io::Result<()> {
        // SAFETY: a null siginfo pointer is allowed (the kernel fills in
        // the same information as kill(2)); the descriptor is valid while
        // `self` lives.
        let rc = unsafe {
            libc::syscall(
                libc::SYS_pidfd_send_signal,
                self.0.as_raw_fd(),
                sig,
                std::ptr::null::<libc::siginfo_t>(),
                0u32,
            )
        };
        if rc != 0 {
            return Err(io::Error::last_os_error());
        }
        Ok(())
    }
}

impl AsFd for PidFd {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.0.as_fd()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::process::ExitStatusExt;

    #[test]
    fn ranges_skip_the_kept_descriptors() {
        assert_eq!(ranges_to_close(3, &[]), vec![(3, u32::MAX)]);
        assert_eq!(ranges_to_close(3, &[0, 1, 2]), vec![(3, u32::MAX)]);
        assert_eq!(ranges_to_close(3, &[3]), vec![(4, u32::MAX)]);
        assert_eq!(
            ranges_to_close(3, &[7, 5, 5, -1]),
            vec![(3, 4), (6, 6), (8, u32::MAX)]
        );
        assert_eq!(ranges_to_close(0, &[1]), vec![(0, 0), (2, u32::MAX)]);
    }

    /// Descriptors duplicated to `base..base+n`, far above anything the
    /// test runner uses.
    fn high_fds(base: RawFd, n: RawFd) -> Vec<OwnedFd> {
        let f = std::fs::File::open("/dev/null").unwrap();
        (0..n)
            .map(|i| {
                // SAFETY: (test) F_DUPFD_CLOEXEC on a valid descriptor.
                let fd = unsafe { libc::fcntl(f.as_raw_fd(), libc::F_DUPFD_CLOEXEC, base + i) };
                assert_eq!(fd, base + i, "descriptor {} is in use", base + i);
                // SAFETY: (test) just created, owned by nobody else.
                unsafe { OwnedFd::from_raw_fd(fd) }
            })
            .collect()
    }

    fn is_open(fd: RawFd) -> bool {
        // SAFETY: (test) F_GETFD only queries the descriptor.
        unsafe { libc::fcntl(fd, libc::F_GETFD) != -1 }
    }

    /// Marks closed descriptors as no longer owned, closes the kept one.
    fn release(fds: Vec<OwnedFd>, kept: RawFd) {
        for fd in fds {
            let raw = fd.as_raw_fd();
            std::mem::forget(fd);
            if raw == kept {
                // SAFETY: (test) `kept` is still open and owned here.
                drop(unsafe { OwnedFd::from_raw_fd(raw) });
            }
        }
    }

    // One test for both paths: each closes everything above its range, so
    // they must not run concurrently.
    #[test]
    // Miri: close_range, sigaction, pidfd, fork: not emulated by Miri.
    #[cfg_attr(miri, ignore)]
    fn closes_all_but_the_kept() {
        let fds = high_fds(900, 4);
        close_fds_from(900, &[902]).unwrap();
        assert_eq!(
            (900..904).map(is_open).collect::<Vec<_>>(),
            [false, false, true, false]
        );
        release(fds, 902);

        let fds = high_fds(800, 3);
        close_listed_fds(800, &[801]).unwrap();
        assert_eq!(
            (800..803).map(is_open).collect::<Vec<_>>(),
            [false, true, false]
        );
        release(fds, 801);
    }

    #[test]
    // Miri: close_range, sigaction, pidfd, fork: not emulated by Miri.
    #[cfg_attr(miri, ignore)]
    fn dispositions_can_be_set() {
        // SIGWINCH is ignored by default anyway: harmless for the runner.
        set_disposition(libc::SIGWINCH, Disposition::Ignore).unwrap();
        set_disposition(libc::SIGWINCH, Disposition::Default).unwrap();
        let e = set_disposition(libc::SIGKILL, Disposition::Ignore).unwrap_err();
        assert_eq!(e.raw_os_error(), Some(libc::EINVAL));
    }

    #[test]
    // Miri: close_range, sigaction, pidfd, fork: not emulated by Miri.
    #[cfg_attr(miri, ignore)]
    fn notty_on_a_non_terminal_fails() {
        let f = std::fs::File::open("/dev/null").unwrap();
        let e = give_up_controlling_tty(f.as_fd()).unwrap_err();
        assert_eq!(e.raw_os_error(), Some(libc::ENOTTY));
    }

    #[test]
    // Miri: close_range, sigaction, pidfd, fork: not emulated by Miri.
    #[cfg_attr(miri, ignore)]
    fn pidfd_signals_its_process_only() {
        let mut child = std::process::Command::new("sleep")
            .arg("30")
            .spawn()
            .unwrap();
        let pid = i32::try_from(child.id()).unwrap();
        let pidfd = PidFd::open(pid).unwrap();
        pidfd.send_signal(libc::SIGTERM).unwrap();
        let status = child.wait().unwrap();
        assert_eq!(status.signal(), Some(libc::SIGTERM));
        // Reaped: the pidfd now refers to nobody.
        let e = pidfd.send_signal(libc::SIGTERM).unwrap_err();
        assert_eq!(e.raw_os_error(), Some(libc::ESRCH));
        assert!(PidFd::open(0).is_err());
        assert!(PidFd::open(-1).is_err());
    }
}
