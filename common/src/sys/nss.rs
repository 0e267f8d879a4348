//! User and group names → ids, through the C library's name services
//! (`getpwnam_r`, `getgrnam_r`, `getgrouplist`).
//!
//! The programs that take user or group names — `tunctl -u/-g`, `jail_uml`
//! and the `uml_net` policy file — are linked dynamically against glibc
//! (`.cargo/link-cc`, marked by their `build.rs`), so these lookups go
//! through every service `/etc/nsswitch.conf` names: `files`, but also
//! `systemd`, `sss`, `ldap`, `extrausers`, ... Every other program is a
//! static-pie executable for start-up speed and looks no names up, but
//! for `uml_switch --mgmt-group NAME`, which [`prepare`]s and so reads
//! `/etc/group` only.
//!
//! A static glibc has the `files` service built in but loads every other
//! one with `dlopen`, which brings a second, shared libc into the process;
//! on Debian 12 (glibc 2.36, `passwd: files systemd`) a lookup that `files`
//! does not answer then dies with SIGSEGV. [`prepare`] therefore restricts a
//! static process to `files` (and does nothing in a dynamic one): call it
//! before the first lookup, so that a static build of a name-taking
//! program (made without the workspace's linker) still never crashes.
//!
//! In the setuid `uml_net`, glibc's secure mode (`AT_SECURE`) governs the
//! dynamic loader: it ignores `LD_PRELOAD` (but for setuid libraries in the
//! standard directories), `LD_LIBRARY_PATH`, `LD_AUDIT` and the other
//! unsafe variables before `main`, and loads NSS modules only from the
//! system's library directories.

use std::ffi::{CStr, CString};
use std::io;

extern "C" {
    /// glibc: overrides the `nsswitch.conf` line of database `db` with
    /// `service_line` for this process. Returns 0, or -1 with `errno`.
    fn __nss_configure_lookup(
        db: *const libc::c_char,
        service_line: *const libc::c_char,
    ) -> libc::c_int;
}

/// Whether this process runs without a dynamic loader (a static or
/// static-pie executable): the kernel then reports no interpreter base
/// address (`AT_BASE` is 0).
pub fn is_static() -> bool {
    // SAFETY: getauxval reads the process's auxiliary vector and takes no
    // pointers; it returns 0 for a type that is absent.
    unsafe { libc::getauxval(libc::AT_BASE) == 0 }
}

/// Makes name lookups safe for this process: in a static one, restricts
/// the `passwd` and `group` databases to the built-in `files` service (see
/// the module documentation); in a dynamic one, does nothing, so the
/// system's NSS configuration applies. Call it before any thread is
/// started and before the first lookup. Returns whether lookups go through
/// the full NSS configuration.
pub fn prepare() -> io::Result<bool> {
    if !is_static() {
        return Ok(true);
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
    Ok(false)
}

/// A user's ids.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct UserIds {
    /// `pw_uid`.
    pub uid: u32,
    /// `pw_gid`, the primary group.
    pub gid: u32,
}

/// First size of the string buffer of the `_r` lookups; doubled on
/// `ERANGE` up to [`MAX_BUFFER`].
const FIRST_BUFFER: usize = 1024;
/// Largest string buffer tried (a group with very many members).
const MAX_BUFFER: usize = 1 << 24;

/// Runs a `get*nam_r` call with a growing buffer. `call` gets the buffer
/// and returns the function's result code and whether an entry was
/// found; `Ok(true)` when found, `Ok(false)` when there is none.
fn with_buffer(
    mut call: impl FnMut(&mut [libc::c_char]) -> (libc::c_int, bool),
) -> io::Result<bool> {
    let mut size = FIRST_BUFFER;
    loop {
        let mut buf = vec![0 as libc::c_char; size];
        match call(&mut buf) {
            (0, found) => return Ok(found),
            (libc::ERANGE, _) if size < MAX_BUFFER => size *= 2,
            // "Not found" may also be reported as one of these.
            (libc::ENOENT | libc::ESRCH | libc::EBADF | libc::EPERM, _) => return Ok(false),
            (rc, _) => return Err(io::Error::from_raw_os_error(rc)),
        }
    }
}

/// `getpwnam_r(name)`: the user's ids, `None` when no service knows the
/// name (or it contains a NUL). An error of a service (e.g. an LDAP server
/// that does not answer) is also `None`, as `getpwnam` gives the C tools.
pub fn user_by_name(name: &[u8]) -> Option<UserIds> {
    let name = CString::new(name).ok()?;
    let mut ids = None;
    let found = with_buffer(|buf| {
        // SAFETY: all-zero bytes are a valid `struct passwd` (integers and
        // null pointers); it is an output buffer only.
        let mut pwd: libc::passwd = unsafe { std::mem::zeroed() };
        let mut result: *mut libc::passwd = std::ptr::null_mut();
        // SAFETY: `name` is NUL-terminated and outlives the call; `pwd`,
        // `buf` (with its true length) and `result` are live and writable
        // for the call. Only the integer fields are read afterwards, not
        // the strings that point into `buf`.
        let rc = unsafe {
            libc::getpwnam_r(
                name.as_ptr(),
                &mut pwd,
                buf.as_mut_ptr(),
                buf.len(),
                &mut result,
            )
        };
        if rc == 0 && !result.is_null() {
            ids = Some(UserIds {
                uid: pwd.pw_uid,
                gid: pwd.pw_gid,
            });
        }
        (rc, !result.is_null())
    })
    .ok()?;
    found.then_some(ids).flatten()
}

/// `getgrnam_r(name)`: the group's gid, `None` when no service knows it.
pub fn group_by_name(name: &[u8]) -> Option<u32> {
    let name = CString::new(name).ok()?;
    let mut gid = None;
    let found = with_buffer(|buf| {
        // SAFETY: all-zero bytes are a valid `struct group`; output only.
        let mut grp: libc::group = unsafe { std::mem::zeroed() };
        let mut result: *mut libc::group = std::ptr::null_mut();
        // SAFETY: as in `user_by_name`, for `struct group`; only `gr_gid`
        // is read afterwards.
        let rc = unsafe {
            libc::getgrnam_r(
                name.as_ptr(),
                &mut grp,
                buf.as_mut_ptr(),
                buf.len(),
                &mut result,
            )
        };
        if rc == 0 && !result.is_null() {
            gid = Some(grp.gr_gid);
        }
        (rc, !result.is_null())
    })
    .ok()?;
    found.then_some(gid).flatten()
}

/// `getgrouplist(user, gid)`: `gid` and every group that lists `user` as a
/// member, as `initgroups` would set them (in the services' order,
/// duplicates removed). `None` if the name contains a NUL.
pub fn group_list(user: &[u8], gid: u32) -> Option<Vec<u32>> {
    let user = CString::new(user).ok()?;
    group_list_c(&user, gid)
}

fn group_list_c(user: &CStr, gid: u32) -> Option<Vec<u32>> {
    let mut groups: Vec<libc::gid_t> = vec![0; 64];
    loop {
        let mut n = libc::c_int::try_from(groups.len()).ok()?;
        // SAFETY: `user` is NUL-terminated; `groups` has room for `n`
        // entries and `n` is live and writable; glibc writes at most `n`
        // gids and stores the number found (or needed) in `n`.
        let rc = unsafe { libc::getgrouplist(user.as_ptr(), gid, groups.as_mut_ptr(), &mut n) };
        let count = usize::try_from(n).ok()?;
        if rc >= 0 {
            groups.truncate(count);
            let mut seen = Vec::with_capacity(count);
            for g in groups {
                if !seen.contains(&g) {
                    seen.push(g);
                }
            }
            return Some(seen);
        }
        // Too small: `n` is the number needed (grow at least twofold, for
        // a list that grew in between).
        let want = count.max(groups.len() * 2);
        if want > 1 << 20 {
            return None;
        }
        groups.resize(want, 0);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lookups_that_files_cannot_answer_do_not_crash() {
        // The unit-test binary is static: files only from here on.
        assert!(is_static(), "unit tests are static-pie");
        assert!(!prepare().unwrap());
        // Before the restriction, each of these crashed a static binary.
        assert_eq!(user_by_name(b"no_such_user_xyz"), None);
        assert_eq!(user_by_name(b"1234"), None);
        assert_eq!(group_by_name(b"no_such_group_xyz"), None);
        assert_eq!(user_by_name(b"root"), Some(UserIds { uid: 0, gid: 0 }));
        assert_eq!(group_by_name(b"root"), Some(0));
        assert_eq!(user_by_name(b"ro\0ot"), None);
        assert_eq!(user_by_name(&[0xff, 0xfe]), None);
        assert_eq!(user_by_name(b""), None);
    }

    #[test]
    fn group_lists_start_with_the_primary_group() {
        prepare().unwrap();
        let nobody = user_by_name(b"nobody").expect("Debian has nobody");
        let list = group_list(b"nobody", nobody.gid).unwrap();
        assert_eq!(list.first(), Some(&nobody.gid));
        // An unknown user still gets the group given.
        assert_eq!(group_list(b"no_such_user_xyz", 4321).unwrap(), vec![4321]);
        assert_eq!(group_list(b"a\0b", 1), None);
        // root is in group root, listed once.
        let root = group_list(b"root", 0).unwrap();
        assert_eq!(root.iter().filter(|&&g| g == 0).count(), 1);
    }

    #[test]
    fn buffers_grow_on_erange() {
        let mut sizes = Vec::new();
        let found = with_buffer(|buf| {
            sizes.push(buf.len());
            if buf.len() < 4 * FIRST_BUFFER {
                (libc::ERANGE, false)
            } else {
                (0, true)
            }
        })
        .unwrap();
        assert!(found);
        assert_eq!(sizes, [FIRST_BUFFER, 2 * FIRST_BUFFER, 4 * FIRST_BUFFER]);
        assert!(!with_buffer(|_| (libc::ENOENT, false)).unwrap());
        assert!(with_buffer(|_| (libc::EIO, false)).is_err());
        assert!(with_buffer(|_| (libc::ERANGE, false)).is_err());
    }
}
