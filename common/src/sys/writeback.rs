//! Starting write-back of a file range early (`sync_file_range` with
//! `SYNC_FILE_RANGE_WRITE`), so that a later `fdatasync` waits only for
//! the tail: the disk works while the program computes.

use std::fs::File;
use std::io;
use std::os::fd::AsRawFd;

/// Asks the kernel to start writing the dirty pages of `file` in
/// `[offset, offset + len)` to disk, without waiting. A hint only: it
/// gives no durability (callers still `fdatasync`), and file systems or
/// files that cannot do it report an error the caller may ignore.
pub fn start_writeback(file: &File, offset: u64, len: u64) -> io::Result<()> {
    let off = i64::try_from(offset).map_err(|_| io::Error::from_raw_os_error(libc::EOVERFLOW))?;
    let n = i64::try_from(len).map_err(|_| io::Error::from_raw_os_error(libc::EOVERFLOW))?;
    // SAFETY: sync_file_range takes a descriptor (valid: borrowed from
    // `file` for the call), two integers and flags; it touches no memory
    // of ours.
    let r = unsafe { libc::sync_file_range(file.as_raw_fd(), off, n, libc::SYNC_FILE_RANGE_WRITE) };
    if r < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::FileExt;

    #[test]
    fn starts_writeback_of_a_written_range() {
        let dir = tempfile::tempdir().unwrap();
        let f = File::create(dir.path().join("f")).unwrap();
        f.write_all_at(&[7u8; 8192], 0).unwrap();
        start_writeback(&f, 0, 8192).unwrap();
        f.sync_data().unwrap();
    }

    #[test]
    fn rejects_what_the_kernel_rejects() {
        let dir = tempfile::tempdir().unwrap();
        let f = File::create(dir.path().join("f")).unwrap();
        assert!(start_writeback(&f, 0, u64::MAX).is_err());
        let pipe = std::fs::File::open("/dev/null").unwrap();
        // A character device: ESPIPE or success depending on the kernel,
        // never a crash; an offset beyond i64 is ours to reject.
        let _ = start_writeback(&pipe, 0, 1);
        assert!(start_writeback(&pipe, u64::MAX, 1).is_err());
    }
}
