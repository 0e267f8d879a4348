//! Sharing a file's extents with another file on copy-on-write file
//! systems (`FICLONERANGE`: XFS with `reflink=1`, btrfs, and others), and
//! giving a range's blocks back (`fallocate(PUNCH_HOLE)`).
//!
//! `uml_moo` clones the backing file into a new image and then writes
//! only the dirty blocks: the clean part of the image costs no new disk
//! space and no copying. Every failure is the caller's to handle (file
//! systems without reflink answer `EOPNOTSUPP`, files on different file
//! systems `EXDEV`, unaligned ranges `EINVAL`); `uml_moo` then falls back
//! to copying.

use std::fs::File;
use std::io;
use std::os::fd::AsRawFd;

fn off(v: u64) -> io::Result<i64> {
    i64::try_from(v).map_err(|_| io::Error::from_raw_os_error(libc::EOVERFLOW))
}

/// Makes bytes `[dst_offset, dst_offset + len)` of `dst` share the extents
/// of `[src_offset, src_offset + len)` of `src` (`ioctl(FICLONERANGE)`).
/// Offsets and `len` must be multiples of the file system's block size,
/// except that the source range may end at the source's end of file; `len`
/// 0 means "to the source's end of file". `dst` must be open for writing,
/// `src` for reading, both on the same file system. The kernel may have
/// shared part of the range when it fails.
pub fn clone_range(
    src: &File,
    src_offset: u64,
    len: u64,
    dst: &File,
    dst_offset: u64,
) -> io::Result<()> {
    // The kernel takes these as signed 64-bit offsets.
    off(src_offset)?;
    off(dst_offset)?;
    off(len)?;
    let arg = libc::file_clone_range {
        src_fd: i64::from(src.as_raw_fd()),
        src_offset,
        src_length: len,
        dest_offset: dst_offset,
    };
    // SAFETY: FICLONERANGE reads one `struct file_clone_range` (the libc
    // definition of the kernel's layout) through the pointer, which points
    // to `arg`, alive and initialised for the whole call; it writes
    // nothing of ours. Both descriptors are valid: borrowed from `src` and
    // `dst` for the call.
    let r = unsafe {
        libc::ioctl(
            dst.as_raw_fd(),
            libc::FICLONERANGE,
            &arg as *const libc::file_clone_range,
        )
    };
    if r < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// Deallocates `[offset, offset + len)` of `file`, which then reads as
/// zeros, keeping the file's size (`fallocate(PUNCH_HOLE | KEEP_SIZE)`).
/// Whole file-system blocks in the range are freed; partial ones at its
/// ends are zeroed in place.
pub fn punch_hole(file: &File, offset: u64, len: u64) -> io::Result<()> {
    let (o, n) = (off(offset)?, off(len)?);
    // SAFETY: fallocate takes a descriptor (valid: borrowed from `file`
    // for the call), a mode and two integers; it touches no memory of
    // ours.
    let r = unsafe {
        libc::fallocate(
            file.as_raw_fd(),
            libc::FALLOC_FL_PUNCH_HOLE | libc::FALLOC_FL_KEEP_SIZE,
            o,
            n,
        )
    };
    if r < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// `struct fsxattr` of `<linux/fs.h>` (28 bytes; the libc crate lacks
/// it).
#[repr(C)]
#[derive(Debug, Default, Clone, Copy)]
struct FsXattr {
    xflags: u32,
    extsize: u32,
    nextents: u32,
    projid: u32,
    cowextsize: u32,
    pad: [u8; 8],
}

/// `_IOR('X', 31, struct fsxattr)`.
const FS_IOC_FSGETXATTR: libc::Ioctl = 0x801c_581f;
/// `_IOW('X', 32, struct fsxattr)`.
const FS_IOC_FSSETXATTR: libc::Ioctl = 0x401c_5820;
/// `FS_XFLAG_COWEXTSIZE`: `cowextsize` is set.
const FS_XFLAG_COWEXTSIZE: u32 = 0x0001_0000;

fn get_xattr(file: &File) -> io::Result<FsXattr> {
    let mut attr = FsXattr::default();
    // SAFETY: FS_IOC_FSGETXATTR writes one `struct fsxattr` (28 bytes, the
    // layout of `FsXattr`, `repr(C)`) through the pointer, which points to
    // `attr`, alive and writable for the call. The descriptor is valid:
    // borrowed from `file`.
    let r = unsafe {
        libc::ioctl(
            file.as_raw_fd(),
            FS_IOC_FSGETXATTR,
            &mut attr as *mut FsXattr,
        )
    };
    if r < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(attr)
}

/// The copy-on-write extent size hint of `file` in bytes (XFS: how much
/// is reserved around a write to shared blocks; 0: the file system's
/// default, 32 blocks on XFS).
pub fn cow_extent_size(file: &File) -> io::Result<u32> {
    let attr = get_xattr(file)?;
    Ok(if attr.xflags & FS_XFLAG_COWEXTSIZE != 0 {
        attr.cowextsize
    } else {
        0
    })
}

/// Sets the copy-on-write extent size hint of `file` to `bytes` (a
/// multiple of the block size), or back to the default with 0. Only file
/// systems with such a hint take it (XFS with reflink; others refuse).
pub fn set_cow_extent_size(file: &File, bytes: u32) -> io::Result<()> {
    let mut attr = get_xattr(file)?;
    if bytes == 0 {
        attr.xflags &= !FS_XFLAG_COWEXTSIZE;
    } else {
        attr.xflags |= FS_XFLAG_COWEXTSIZE;
    }
    attr.cowextsize = bytes;
    // SAFETY: FS_IOC_FSSETXATTR reads one `struct fsxattr` (the layout of
    // `FsXattr`, `repr(C)`) through the pointer, which points to `attr`,
    // alive and initialised for the call; it writes nothing of ours. The
    // descriptor is valid: borrowed from `file`.
    let r = unsafe { libc::ioctl(file.as_raw_fd(), FS_IOC_FSSETXATTR, &attr as *const FsXattr) };
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
    // Miri: ioctl (FICLONE, FS_IOC_FIEMAP) and fallocate: not emulated by Miri.
    #[cfg_attr(miri, ignore)]
    fn clones_where_supported_and_fails_cleanly_elsewhere() {
        let dir = tempfile::tempdir().unwrap();
        let src = File::create(dir.path().join("src")).unwrap();
        let data: Vec<u8> = (0..16384u32).map(|i| (i % 251) as u8 + 1).collect();
        src.write_all_at(&data, 0).unwrap();
        let src = File::open(dir.path().join("src")).unwrap();
        let dst = File::options()
            .read(true)
            .write(true)
            .create(true)
            .truncate(true)
            .open(dir.path().join("dst"))
            .unwrap();
        match clone_range(&src, 4096, 8192, &dst, 4096) {
            Ok(()) => {
                let mut got = vec![0u8; 8192];
                dst.read_exact_at(&mut got, 4096).unwrap();
                assert_eq!(got, data[4096..12288]);
                assert_eq!(dst.metadata().unwrap().len(), 12288);
            }
            // Not a reflink file system (ext4, tmpfs): nothing changed.
            Err(e) => {
                assert!(
                    matches!(
                        e.raw_os_error(),
                        Some(libc::EOPNOTSUPP | libc::EXDEV | libc::EINVAL | libc::ENOTTY)
                    ),
                    "{e}"
                );
                assert_eq!(dst.metadata().unwrap().len(), 0);
            }
        }
        // A read-only destination is refused on every file system.
        assert!(clone_range(&src, 0, 4096, &src, 8192).is_err());
        assert!(clone_range(&src, u64::MAX, 4096, &dst, 0).is_err());
    }

    #[test]
    // Miri: ioctl (FICLONE, FS_IOC_FIEMAP) and fallocate: not emulated by Miri.
    #[cfg_attr(miri, ignore)]
    fn cow_extent_hint_where_supported() {
        assert_eq!(std::mem::size_of::<FsXattr>(), 28);
        let dir = tempfile::tempdir().unwrap();
        let f = File::create(dir.path().join("f")).unwrap();
        // XFS takes the hint; ext4 answers the query and ignores or
        // refuses it; tmpfs may not know the ioctl at all.
        match cow_extent_size(&f) {
            Ok(v) => {
                assert_eq!(v, 0);
                if set_cow_extent_size(&f, 4096).is_ok() {
                    let now = cow_extent_size(&f).unwrap();
                    assert!(now == 4096 || now == 0, "{now}");
                    set_cow_extent_size(&f, 0).unwrap();
                    assert_eq!(cow_extent_size(&f).unwrap(), 0);
                }
            }
            Err(e) => assert!(
                matches!(e.raw_os_error(), Some(libc::ENOTTY | libc::EOPNOTSUPP)),
                "{e}"
            ),
        }
    }

    #[test]
    // Miri: ioctl (FICLONE, FS_IOC_FIEMAP) and fallocate: not emulated by Miri.
    #[cfg_attr(miri, ignore)]
    fn punched_ranges_read_as_zeros() {
        let dir = tempfile::tempdir().unwrap();
        let f = File::options()
            .read(true)
            .write(true)
            .create(true)
            .truncate(true)
            .open(dir.path().join("f"))
            .unwrap();
        f.write_all_at(&[7u8; 16384], 0).unwrap();
        match punch_hole(&f, 4096, 8192) {
            Ok(()) => {
                let mut got = vec![1u8; 16384];
                f.read_exact_at(&mut got, 0).unwrap();
                assert!(got[..4096].iter().all(|&b| b == 7));
                assert!(got[4096..12288].iter().all(|&b| b == 0));
                assert!(got[12288..].iter().all(|&b| b == 7));
                assert_eq!(f.metadata().unwrap().len(), 16384);
            }
            Err(e) => assert_eq!(e.raw_os_error(), Some(libc::EOPNOTSUPP), "{e}"),
        }
        assert!(punch_hole(&f, u64::MAX, 1).is_err());
    }
}
