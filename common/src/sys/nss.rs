//! User and group lookups that cannot crash a statically linked binary.
//!
//! The workspace links every binary statically against glibc
//! (`.cargo/config.toml`). Static glibc has the `files` name service built
//! in but loads every other service named in `/etc/nsswitch.conf`
//! (`systemd`, `sss`, `ldap`, …) with `dlopen`, which brings a second,
//! shared libc into the process. On Debian 12 (glibc 2.36, `passwd: files
//! systemd`) a `getpwnam` that `files` does not answer — an unknown name,
//! or a number such as `1234` looked up as a name — then dies with
//! SIGSEGV, in C programs linked with `-static` as well as in Rust ones.
//!
//! [`builtin_services_only`] makes `passwd` and `group` lookups use the
//! built-in `files` service alone when the binary is static, so names come
//! from `/etc/passwd` and `/etc/group`. A dynamically linked build keeps
//! the full `nsswitch.conf` configuration.

use std::io;

extern "C" {
    /// glibc: overrides the `nsswitch.conf` line of database `db` with
    /// `service_line` for this process. Returns 0, or -1 with `errno`.
    fn __nss_configure_lookup(
        db: *const libc::c_char,
        service_line: *const libc::c_char,
    ) -> libc::c_int;
}

/// Whether this binary was linked statically (`crt-static`).
pub const STATIC_BINARY: bool = cfg!(target_feature = "crt-static");

/// In a static binary, restricts the `passwd` and `group` databases to the
/// built-in `files` service (see the module documentation); in a dynamic
/// one, does nothing. Call it at start-up, before any thread is started
/// and before the first user or group lookup.
pub fn builtin_services_only() -> io::Result<()> {
    if !STATIC_BINARY {
        return Ok(());
    }
    for db in [c"passwd", c"group"] {
        // SAFETY: both arguments are valid NUL-terminated strings that
        // live for the whole call (static literals); glibc copies what it
        // keeps. The call only replaces the service list of `db`.
        let rc = unsafe { __nss_configure_lookup(db.as_ptr(), c"files".as_ptr()) };
        if rc != 0 {
            return Err(io::Error::last_os_error());
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The uid of `name` via `getpwnam_r`, `None` when not found.
    fn uid_of(name: &std::ffi::CStr) -> Option<libc::uid_t> {
        // SAFETY: all-zero bytes are a valid `struct passwd` (integers and
        // null pointers); it is only an output buffer here.
        let mut pwd: libc::passwd = unsafe { std::mem::zeroed() };
        let mut buf = vec![0 as libc::c_char; 16384];
        let mut result: *mut libc::passwd = std::ptr::null_mut();
        // SAFETY: `name` is NUL-terminated; `pwd`, `buf` (with its true
        // length) and `result` are live and writable for the call; the
        // strings glibc stores point into `buf`, which outlives their use.
        let rc = unsafe {
            libc::getpwnam_r(
                name.as_ptr(),
                &mut pwd,
                buf.as_mut_ptr(),
                buf.len(),
                &mut result,
            )
        };
        (rc == 0 && !result.is_null()).then_some(pwd.pw_uid)
    }

    #[test]
    fn lookups_that_files_cannot_answer_do_not_crash() {
        builtin_services_only().unwrap();
        // Before the fix, each of these crashed the static test binary.
        assert_eq!(uid_of(c"no_such_user_xyz"), None);
        assert_eq!(uid_of(c"1234"), None);
        assert_eq!(uid_of(c"root"), Some(0));
    }
}
