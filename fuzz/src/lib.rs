//! Helpers shared by the fuzz targets.

use std::ffi::OsString;
use std::os::unix::ffi::OsStringExt;

/// Splits fuzz input into command-line arguments at NUL bytes (a C argv
/// cannot hold a NUL), at most 64 of them.
pub fn argv(data: &[u8]) -> Vec<OsString> {
    if data.is_empty() {
        return Vec::new();
    }
    data.split(|&b| b == 0)
        .take(64)
        .map(|a| OsString::from_vec(a.to_vec()))
        .collect()
}

/// [`argv`] as UTF-8 strings (lossy), for parsers that take `String`s.
pub fn argv_lossy(data: &[u8]) -> Vec<String> {
    argv(data)
        .into_iter()
        .map(|a| a.to_string_lossy().into_owned())
        .collect()
}

/// Splits `data` at the first occurrence of the 4-byte separator
/// `"\xff\xfe\xfd\xfc"` (a structured input's two halves); without it the
/// second half is empty.
pub fn split2(data: &[u8]) -> (&[u8], &[u8]) {
    const SEP: &[u8] = b"\xff\xfe\xfd\xfc";
    match data.windows(SEP.len()).position(|w| w == SEP) {
        Some(i) => (&data[..i], &data[i + SEP.len()..]),
        None => (data, &[]),
    }
}
