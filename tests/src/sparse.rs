//! Comparing how sparse two files are by what was written to them: the
//! data extents the file system reports (`SEEK_DATA`/`SEEK_HOLE`), not
//! `st_blocks`, which also counts blocks reserved or preallocated and not
//! yet settled and so varies with the machine's load.

use std::fs::File;
use std::ops::Range;
use std::path::Path;

use uml_common::sys::extents::{data_extents, first_uncovered};

/// The data extents of the file at `path`, after flushing it.
pub fn extents(path: &Path) -> Vec<Range<u64>> {
    let f = File::open(path).unwrap_or_else(|e| panic!("open {}: {e}", path.display()));
    f.sync_all()
        .unwrap_or_else(|e| panic!("fsync {}: {e}", path.display()));
    data_extents(&f).unwrap_or_else(|e| panic!("SEEK_DATA on {}: {e}", path.display()))
}

/// Fails unless every data extent of `ours` lies inside data of
/// `theirs`: never a data block where the other file has a hole.
pub fn assert_never_less_sparse(ours: &Path, theirs: &Path, what: &str) {
    let (o, t) = (extents(ours), extents(theirs));
    if let Some(gap) = first_uncovered(&o, &t) {
        panic!(
            "{what}: data at {gap:?} where the reference has a hole\n ours: {o:?}\n them: {t:?}"
        );
    }
}

/// Fails unless both files have data in exactly the same places.
pub fn assert_same_allocation(ours: &Path, theirs: &Path, what: &str) {
    assert_never_less_sparse(ours, theirs, what);
    assert_never_less_sparse(theirs, ours, what);
}
