//! Dying by a signal the way the C tools do after cleaning up.

use std::io;

/// Restores the default action of `sig`, unblocks it and raises it, so the
/// process ends "killed by signal `sig`" as the C tools do after their
/// cleanup. Returns only if the signal does not end the process.
pub fn reraise_default(sig: i32) -> io::Result<()> {
    // SAFETY: SIG_DFL is a valid disposition for any catchable signal;
    // `signal` has no memory-safety preconditions.
    let prev = unsafe { libc::signal(sig, libc::SIG_DFL) };
    if prev == libc::SIG_ERR {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: `set` is a local, initialised by sigemptyset before use, and
    // only pointers to it (valid for the call) are passed.
    unsafe {
        let mut set: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&mut set);
        libc::sigaddset(&mut set, sig);
        libc::pthread_sigmask(libc::SIG_UNBLOCK, &set, std::ptr::null_mut());
    }
    // SAFETY: raising a signal has no memory-safety preconditions.
    if unsafe { libc::raise(sig) } != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    // Miri: signal dispositions and raise: not emulated by Miri.
    #[cfg_attr(miri, ignore)]
    fn reraising_an_ignored_harmless_signal_returns() {
        // SIGWINCH's default action is to ignore it: raising it returns.
        reraise_default(libc::SIGWINCH).unwrap();
    }
}
