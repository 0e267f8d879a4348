//! Helpers shared by the legacy command lines: C-compatible error texts and
//! C's reading of numbers.

use std::io;

/// The text `strerror(errno)` gives for an OS error, without Rust's
/// ` (os error N)` suffix, so messages match the C tools' `perror` output.
pub fn strerror(err: &io::Error) -> String {
    let text = match err.raw_os_error() {
        Some(code) => io::Error::from_raw_os_error(code).to_string(),
        None => return err.to_string(),
    };
    // The first: an emulated libc (Miri's strerror_r) gives std's own
    // text, suffix included, so it can come twice.
    match text.find(" (os error ") {
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

/// A whole argument read as C reads a number with `strtol(s, &end, 0)` or
/// `strtoul(s, &end, 0)` followed by a `*end == '\0'` check: leading white
/// space, an optional sign, then `0x`/`0X` hexadecimal, a leading-`0`
/// octal or decimal digits, and nothing after them. The value is returned
/// with its sign and without C's clamping or wrapping, so that callers can
/// refuse what does not fit instead of silently getting `LONG_MAX` or a
/// truncated `pid_t`/`uid_t`.
///
/// As in C, the empty string is "whole" and reads as 0 (callers that must
/// not accept it check for it); a string with no digits otherwise (`"-"`,
/// `" "`, `"x"`) or with anything after the digits (`"1x"`, `"0x"`, `"1 "`)
/// is `None`. So is a magnitude above `u64::MAX`, which C would clamp.
pub fn c_integer(s: &[u8]) -> Option<i128> {
    if s.is_empty() {
        return Some(0);
    }
    // C's isspace() in the "C" locale.
    let start = s
        .iter()
        .position(|b| !matches!(b, b' ' | b'\t' | b'\n' | 0x0b | 0x0c | b'\r'))
        .unwrap_or(s.len());
    let rest = &s[start..];
    let (negative, rest) = match rest.first() {
        Some(b'-') => (true, &rest[1..]),
        Some(b'+') => (false, &rest[1..]),
        _ => (false, rest),
    };
    let (radix, digits) = match rest {
        [b'0', b'x' | b'X', d, ..] if d.is_ascii_hexdigit() => (16, &rest[2..]),
        [b'0', ..] => (8, rest),
        _ => (10, rest),
    };
    if digits.is_empty() {
        return None;
    }
    let mut value: u64 = 0;
    for &b in digits {
        let d = char::from(b).to_digit(radix)?;
        value = value
            .checked_mul(u64::from(radix))?
            .checked_add(u64::from(d))?;
    }
    let value = i128::from(value);
    Some(if negative { -value } else { value })
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

    #[test]
    fn c_integer_reads_like_strtol_base_0() {
        assert_eq!(c_integer(b"42"), Some(42));
        assert_eq!(c_integer(b" \t+42"), Some(42));
        assert_eq!(c_integer(b"-1"), Some(-1));
        assert_eq!(c_integer(b"0x1F"), Some(31));
        assert_eq!(c_integer(b"0X1f"), Some(31));
        assert_eq!(c_integer(b"010"), Some(8));
        assert_eq!(c_integer(b"0"), Some(0));
        assert_eq!(c_integer(b""), Some(0));
        assert_eq!(c_integer(b"4294967297"), Some(4_294_967_297));
        assert_eq!(
            c_integer(b"18446744073709551615"),
            Some(i128::from(u64::MAX))
        );
        assert_eq!(
            c_integer(b"-18446744073709551615"),
            Some(-i128::from(u64::MAX))
        );
    }

    #[test]
    fn c_integer_refuses_what_is_not_whole() {
        for bad in [
            &b"1x"[..],
            b"1 ",
            b"x",
            b"-",
            b"+",
            b" ",
            b"0x",
            b"0xg",
            b"08",
            b"1.5",
            b"--1",
            b"18446744073709551616",
            b"\x001",
        ] {
            assert_eq!(c_integer(bad), None, "{:?}", String::from_utf8_lossy(bad));
        }
    }
}
