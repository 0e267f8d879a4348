//! Generated COW files for the `uml_moo` tests (`test_uml_moo_mkcow_cli`,
//! `test_uml_moo_reflink`).

use std::fs::{self, File};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{FileExt, MetadataExt};
use std::path::Path;

use uml_common::cow::{Geometry, Header, Version};
use uml_common::testrng::SplitMix64;

/// Writes a COW file of `version` for `backing` at `path` (`sectorsize`,
/// `alignment`): every sector for which `dirty` holds is marked in the
/// bitmap and gets random data (every seventh such sector all zeros, so
/// that merges meet written zeros too), the file is sized as the geometry
/// says and synced. Returns its geometry.
///
/// # Panics
///
/// On any I/O error, or when the header cannot be made (test set-up).
pub fn make_cow(
    path: &Path,
    backing: &Path,
    (version, sectorsize, alignment): (Version, u32, u32),
    rng: &mut SplitMix64,
    dirty: impl Fn(u64) -> bool,
) -> Geometry {
    let meta = fs::metadata(backing).unwrap_or_else(|e| panic!("backing file: {e}"));
    let h = Header {
        version,
        ..Header::new_v3(
            backing.as_os_str().as_bytes(),
            meta.mtime() as u32,
            meta.len(),
            sectorsize,
            alignment,
        )
    };
    let g = h.geometry().unwrap_or_else(|e| panic!("geometry: {e}"));
    let f = File::create(path).unwrap_or_else(|e| panic!("create COW file: {e}"));
    f.write_all_at(&h.encode().unwrap_or_else(|e| panic!("header: {e}")), 0)
        .unwrap_or_else(|e| panic!("write header: {e}"));
    let mut bitmap = vec![0u8; g.bitmap_len as usize];
    let mut k = 0;
    for i in 0..g.sectors {
        if dirty(i) && (i / 8) < g.bitmap_len {
            bitmap[(i / 8) as usize] |= 1 << (i % 8);
            k += 1;
            let data = if k % 7 == 0 {
                vec![0u8; sectorsize as usize]
            } else {
                rng.bytes(sectorsize as usize)
            };
            f.write_all_at(&data, g.data_offset + i * g.sector_size)
                .unwrap_or_else(|e| panic!("write sector: {e}"));
        }
    }
    f.write_all_at(&bitmap, g.bitmap_offset)
        .unwrap_or_else(|e| panic!("write bitmap: {e}"));
    f.set_len(g.cow_file_len())
        .unwrap_or_else(|e| panic!("size COW file: {e}"));
    f.sync_all()
        .unwrap_or_else(|e| panic!("sync COW file: {e}"));
    g
}
