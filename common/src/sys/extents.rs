//! Where a file holds data and where it has holes, as the file system
//! reports them (`SEEK_DATA` / `SEEK_HOLE`).
//!
//! Used to compare how sparse two files are by what was written to them,
//! not by `st_blocks`: that count also includes blocks the file system has
//! reserved or preallocated and not yet settled, which varies with load.

use std::fs::File;
use std::io;
use std::ops::Range;
use std::os::fd::AsRawFd;

fn seek(file: &File, offset: u64, whence: libc::c_int) -> io::Result<Option<u64>> {
    let off = i64::try_from(offset).map_err(|_| io::Error::from_raw_os_error(libc::EOVERFLOW))?;
    // SAFETY: lseek takes a descriptor (valid: borrowed from `file` for the
    // call), an offset and a whence value; it touches no memory of ours.
    let r = unsafe { libc::lseek(file.as_raw_fd(), off, whence) };
    if r < 0 {
        let e = io::Error::last_os_error();
        return if e.raw_os_error() == Some(libc::ENXIO) {
            Ok(None)
        } else {
            Err(e)
        };
    }
    Ok(Some(r as u64))
}

/// The data extents of `file`, in order, as `[start, end)` byte ranges.
/// File systems without hole support report one extent for the whole file.
/// (Used by tests — `uml_moo`'s and `tests/src/sparse.rs` — to check that
/// merged images keep their holes.)
pub fn data_extents(file: &File) -> io::Result<Vec<Range<u64>>> {
    let len = file.metadata()?.len();
    let mut out = Vec::new();
    let mut pos = 0;
    while pos < len {
        let Some(start) = seek(file, pos, libc::SEEK_DATA)? else {
            break;
        };
        let end = seek(file, start, libc::SEEK_HOLE)?.unwrap_or(len);
        if end <= start {
            break;
        }
        out.push(start..end);
        pos = end;
    }
    Ok(out)
}

/// The first byte range of `ours` that no extent of `theirs` covers, if
/// any: where `ours` holds data and `theirs` a hole. Both lists must be
/// sorted and non-overlapping, as [`data_extents`] returns them.
pub fn first_uncovered(ours: &[Range<u64>], theirs: &[Range<u64>]) -> Option<Range<u64>> {
    for r in ours {
        let mut p = r.start;
        for t in theirs.iter().filter(|t| t.end > r.start && t.start < r.end) {
            if t.start > p {
                break;
            }
            p = p.max(t.end);
        }
        if p < r.end {
            let gap_end = theirs
                .iter()
                .find(|t| t.start > p && t.start < r.end)
                .map_or(r.end, |t| t.start);
            return Some(p..gap_end);
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::FileExt;

    #[test]
    #[allow(clippy::single_range_in_vec_init)] // one-extent lists are the point
    fn coverage_of_extent_lists() {
        let t = [0..4096, 8192..16384];
        assert_eq!(first_uncovered(&[], &t), None);
        assert_eq!(first_uncovered(&[0..4096], &t), None);
        assert_eq!(first_uncovered(&[8192..12288, 12288..16384], &t), None);
        assert_eq!(first_uncovered(&[0..8192], &t), Some(4096..8192));
        assert_eq!(first_uncovered(&[8192..20480], &t), Some(16384..20480));
        assert_eq!(first_uncovered(&[0..16384], &t), Some(4096..8192));
        assert_eq!(first_uncovered(&[0..4096], &[]), Some(0..4096));
        // Adjacent extents of theirs cover a range spanning both.
        assert_eq!(first_uncovered(&[0..8192], &[0..4096, 4096..8192]), None);
    }

    #[test]
    // Miri: lseek SEEK_DATA/SEEK_HOLE: not emulated by Miri (EINVAL).
    #[cfg_attr(miri, ignore)]
    fn reports_written_blocks_and_holes() {
        let dir = tempfile::tempdir().unwrap();
        let f = File::create(dir.path().join("f")).unwrap();
        f.set_len(1 << 20).unwrap();
        assert_eq!(data_extents(&f).unwrap(), Vec::<Range<u64>>::new());
        f.write_all_at(&[1u8; 512], 256 << 10).unwrap();
        f.sync_all().unwrap();
        let e = data_extents(&f).unwrap();
        assert_eq!(e.len(), 1, "{e:?}");
        // Block granularity: the written sector lies inside the extent,
        // far from both ends of the file.
        assert!(
            e[0].start <= 256 << 10 && e[0].end >= (256 << 10) + 512,
            "{e:?}"
        );
        assert!(e[0].start > 0 && e[0].end < 1 << 20, "{e:?}");
        // A file that is all data.
        let g = File::create(dir.path().join("g")).unwrap();
        g.write_all_at(&[1u8; 8192], 0).unwrap();
        assert_eq!(data_extents(&g).unwrap(), vec![0..8192]);
    }
}
