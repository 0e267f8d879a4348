//! What `uml_mconsole` reads to find a UML: the umid or socket name given
//! on its command line (and `$HOME`), resolved to candidate sockets, and
//! the pid file's content.
#![no_main]
use std::ffi::OsStr;
use std::io;
use std::os::unix::ffi::OsStrExt;

use libfuzzer_sys::fuzz_target;
use uml_common::umid::{parse_pid, resolve};
use uml_utilities_fuzz::split2;

fuzz_target!(|data: &[u8]| {
    let (name, home) = split2(data);
    if let Some(pid) = parse_pid(data) {
        assert!(pid > 0);
    }
    let home = (!home.is_empty()).then(|| OsStr::from_bytes(home));
    let r = resolve(OsStr::from_bytes(name), home, |_| {
        Err(io::Error::from_raw_os_error(libc_enoent()))
    });
    assert!(r.found.is_none());
});

fn libc_enoent() -> i32 {
    2
}
