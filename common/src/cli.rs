//! Helpers shared by the legacy command lines: C-compatible error texts and
//! the common "not implemented yet" exit of stub tools.

use std::io;

/// The text `strerror(errno)` gives for an OS error, without Rust's
/// ` (os error N)` suffix, so messages match the C tools' `perror` output.
pub fn strerror(err: &io::Error) -> String {
    let text = match err.raw_os_error() {
        Some(code) => io::Error::from_raw_os_error(code).to_string(),
        None => return err.to_string(),
    };
    match text.rfind(" (os error ") {
        Some(cut) => text[..cut].to_string(),
        None => text,
    }
}

/// `perror(prefix)` as C prints it: `prefix: text` (or just `text` for an
/// empty prefix).
pub fn perror_text(prefix: &str, err: &io::Error) -> String {
    if prefix.is_empty() {
        strerror(err)
    } else {
        format!("{prefix}: {}", strerror(err))
    }
}

/// Exit of a tool that has not been rebuilt yet: a clear message on stderr
/// and status 1. Nothing is done that could be mistaken for working.
pub fn not_implemented(tool: &str) -> ! {
    eprintln!(
        "{tool}: not implemented yet in uml-utilities-rs; use Debian's uml-utilities for now"
    );
    std::process::exit(1)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn strerror_has_no_rust_suffix() {
        let e = io::Error::from_raw_os_error(111);
        assert_eq!(strerror(&e), "Connection refused");
        assert_eq!(perror_text("recvmsg", &e), "recvmsg: Connection refused");
        assert_eq!(perror_text("", &e), "Connection refused");
    }

    #[test]
    fn strerror_of_non_os_error_is_its_text() {
        let e = io::Error::other("boom");
        assert_eq!(strerror(&e), "boom");
    }
}
