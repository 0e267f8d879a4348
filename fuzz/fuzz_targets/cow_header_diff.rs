//! Differential: our COW header reader and geometry against the rules of
//! `docs/cow.md` §2 as written there, re-implemented here from the text
//! alone (absent bytes read as zero, as in the C reader's zeroed buffer;
//! arithmetic in 128 bits, so nothing overflows):
//!
//! * fewer than 8 bytes: "short header"; no magic in either byte order:
//!   not a COW file; host-order magic: version raw, else byte-swapped;
//! * v1 (280 bytes, host order): name at 8 (256), mtime 264, size 268,
//!   sectorsize 276; v2 (4120, big-endian): name at 8 (4096), mtime 4104,
//!   size 4108, sectorsize 4116; alignment = sectorsize;
//! * v3 (4128, big-endian): mtime 8, size 12, sectorsize 20, alignment 24,
//!   cow_format 28, name 32; with bytes 32..36 zero the broken layout
//!   (4136): mtime = first 4 bytes at 8, size 16, sectorsize 24, alignment
//!   28, cow_format 32, name 36;
//! * any other version: "invalid COW version";
//! * geometry (§2.1, §2.3): v1/v2 `bitmap_len = (size + S - 1) / (8 S)`,
//!   `data_offset = round_up(header + bitmap_len, S)`; v3 `bitmap_offset =
//!   round_up(header, align)`, `bitmap_len = ceil(ceil(size / S) / 8)`,
//!   `data_offset = round_up(bitmap_offset + bitmap_len, align)`; ours
//!   refuses S = 0, align = 0 and files beyond 2^63 bytes (C pitfall 67).
#![no_main]
use libfuzzer_sys::fuzz_target;
use uml_common::cow::{parse_header, HeaderError, Version};

#[derive(Debug, PartialEq)]
enum Spec {
    Short,
    NotCow,
    ShortV(u32, bool),
    BadVersion(u32),
    Header {
        version: Version,
        name: Vec<u8>,
        mtime: u32,
        size: u64,
        sectorsize: u32,
        alignment: u32,
        cow_format: u32,
    },
}

fn byte(d: &[u8], i: usize) -> u8 {
    d.get(i).copied().unwrap_or(0)
}

fn le(d: &[u8], i: usize, n: usize) -> u64 {
    (0..n)
        .rev()
        .fold(0, |acc, k| acc << 8 | u64::from(byte(d, i + k)))
}

fn be(d: &[u8], i: usize, n: usize) -> u64 {
    (0..n).fold(0, |acc, k| acc << 8 | u64::from(byte(d, i + k)))
}

fn name(d: &[u8], at: usize, field: usize) -> Vec<u8> {
    (at..at + field)
        .map(|i| byte(d, i))
        .take_while(|&b| b != 0)
        .collect()
}

fn spec(d: &[u8]) -> Spec {
    if d.len() < 8 {
        return Spec::Short;
    }
    let version = if le(d, 0, 4) == 0x4f4f_4f4d {
        le(d, 4, 4) as u32
    } else if be(d, 0, 4) == 0x4f4f_4f4d {
        be(d, 4, 4) as u32
    } else {
        return Spec::NotCow;
    };
    let n = d.len();
    match version {
        1 if n < 280 => Spec::ShortV(1, false),
        1 => Spec::Header {
            version: Version::V1,
            name: name(d, 8, 256),
            mtime: le(d, 264, 4) as u32,
            size: le(d, 268, 8),
            sectorsize: le(d, 276, 4) as u32,
            alignment: le(d, 276, 4) as u32,
            cow_format: 0,
        },
        2 if n < 4120 => Spec::ShortV(2, false),
        2 => Spec::Header {
            version: Version::V2,
            name: name(d, 8, 4096),
            mtime: be(d, 4104, 4) as u32,
            size: be(d, 4108, 8),
            sectorsize: be(d, 4116, 4) as u32,
            alignment: be(d, 4116, 4) as u32,
            cow_format: 0,
        },
        3 => {
            let broken = (32..36).all(|i| byte(d, i) == 0);
            if n < if broken { 4136 } else { 4128 } {
                return Spec::ShortV(3, broken);
            }
            if broken {
                Spec::Header {
                    version: Version::V3Broken,
                    name: name(d, 36, 4096),
                    mtime: be(d, 8, 4) as u32,
                    size: be(d, 16, 8),
                    sectorsize: be(d, 24, 4) as u32,
                    alignment: be(d, 28, 4) as u32,
                    cow_format: be(d, 32, 4) as u32,
                }
            } else {
                Spec::Header {
                    version: Version::V3,
                    name: name(d, 32, 4096),
                    mtime: be(d, 8, 4) as u32,
                    size: be(d, 12, 8),
                    sectorsize: be(d, 20, 4) as u32,
                    alignment: be(d, 24, 4) as u32,
                    cow_format: be(d, 28, 4) as u32,
                }
            }
        }
        v => Spec::BadVersion(v),
    }
}

fn round_up(x: u128, a: u128) -> u128 {
    x.div_ceil(a) * a
}

/// `(bitmap_offset, bitmap_len, data_offset)`, or `None` where ours must
/// refuse.
fn spec_geometry(version: Version, size: u64, s: u32, align: u32) -> Option<(u64, u64, u64)> {
    let (size, s) = (u128::from(size), u128::from(s));
    if s == 0 {
        return None;
    }
    let (off, len, a) = match version {
        Version::V1 | Version::V2 => {
            let header = if version == Version::V1 { 280 } else { 4120 };
            (header, (size + s - 1) / (8 * s), s)
        }
        Version::V3 | Version::V3Broken => {
            if align == 0 {
                return None;
            }
            let a = u128::from(align);
            let header = if version == Version::V3 { 4128 } else { 4136 };
            (round_up(header, a), size.div_ceil(s).div_ceil(8), a)
        }
    };
    let data = round_up(off + len, a);
    if data + size > i64::MAX as u128 {
        return None;
    }
    Some((off as u64, len as u64, data as u64))
}

fuzz_target!(|data: &[u8]| {
    let want = spec(data);
    let got = match parse_header(data) {
        Err(HeaderError::Short) => Spec::Short,
        Err(HeaderError::ShortV1) => Spec::ShortV(1, false),
        Err(HeaderError::ShortV2) => Spec::ShortV(2, false),
        Err(HeaderError::ShortV3 { broken }) => Spec::ShortV(3, broken),
        Err(HeaderError::InvalidVersion(v)) => Spec::BadVersion(v),
        Ok(None) => Spec::NotCow,
        Ok(Some(h)) => {
            let g = h
                .geometry()
                .ok()
                .map(|g| (g.bitmap_offset, g.bitmap_len, g.data_offset));
            assert_eq!(
                g,
                spec_geometry(h.version, h.size, h.sectorsize, h.alignment),
                "{h:?}"
            );
            Spec::Header {
                version: h.version,
                name: h.backing_file,
                mtime: h.mtime,
                size: h.size,
                sectorsize: h.sectorsize,
                alignment: h.alignment,
                cow_format: h.cow_format,
            }
        }
    };
    assert_eq!(got, want);
});
