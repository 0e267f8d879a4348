//! COW bitmap geometry from arbitrary header numbers, and the bitmap scans
//! `uml_moo` merges by (`test_bit`, `next_run`) against a bit-by-bit model.
#![no_main]
use libfuzzer_sys::fuzz_target;
use uml_common::cow::{next_run, test_bit, Geometry, Version};

fn u64_at(d: &[u8], i: usize) -> u64 {
    let mut w = [0u8; 8];
    for (k, b) in w.iter_mut().enumerate() {
        *b = d.get(i + k).copied().unwrap_or(0);
    }
    u64::from_le_bytes(w)
}

fuzz_target!(|data: &[u8]| {
    if data.len() < 25 {
        return;
    }
    let version = match data[0] & 3 {
        0 => Version::V1,
        1 => Version::V2,
        2 => Version::V3,
        _ => Version::V3Broken,
    };
    let size = u64_at(data, 1);
    let sectorsize = u64_at(data, 9) as u32;
    let alignment = u64_at(data, 13) as u32;
    if let Ok(g) = Geometry::new(version, size, sectorsize, alignment) {
        assert!(g.data_offset.checked_add(g.size).is_some());
        assert!(g.cow_file_len() <= i64::MAX as u64);
        let align = match version {
            Version::V1 | Version::V2 => g.sector_size,
            _ => u64::from(alignment),
        };
        assert_eq!(g.data_offset % align, 0);
        if matches!(version, Version::V3 | Version::V3Broken) {
            assert_eq!(g.bitmap_offset % align, 0);
        }
    }
    let bitmap = &data[25..];
    let nbits = bitmap.len() as u64 * 8 + 70;
    let start = u64_at(data, 17) % (nbits + 1);
    let end = (u64_at(data, 21) >> 8) % (nbits + 1);
    let (value, next) = next_run(bitmap, start, end);
    assert_eq!(value, test_bit(bitmap, start));
    if start >= end {
        assert_eq!(next, start);
    } else {
        assert!(next > start && next <= end);
        for i in start..next {
            assert_eq!(test_bit(bitmap, i), value, "bit {i}");
        }
        if next < end {
            assert_ne!(test_bit(bitmap, next), value);
        }
    }
});
