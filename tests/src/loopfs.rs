//! File systems a test makes for itself: a sparse file in a temporary
//! directory, formatted (`mkfs.xfs -m reflink=1`, `mkfs.btrfs`,
//! `mkfs.ext4`) and loop-mounted on a directory beside it. Dropping the
//! guard unmounts it (the loop device goes with it: `mount -o loop` sets
//! autoclear) and removes both, also when the test panics.
//!
//! Needs root, `/dev/loop-control` and the mkfs program
//! ([`FsKind::requirements`]).

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use crate::process::run_with_timeout;
use crate::require::Requirement;

const LIMIT: Duration = Duration::from_secs(120);

/// Which file system.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FsKind {
    /// XFS with `reflink=1`: shares extents (`FICLONERANGE`).
    Xfs,
    /// btrfs: shares extents.
    Btrfs,
    /// ext4: no extent sharing.
    Ext4,
}

impl FsKind {
    /// The kernel's name of the file system.
    pub fn name(self) -> &'static str {
        match self {
            FsKind::Xfs => "xfs",
            FsKind::Btrfs => "btrfs",
            FsKind::Ext4 => "ext4",
        }
    }

    /// Whether it can share extents between files.
    pub fn reflinks(self) -> bool {
        self != FsKind::Ext4
    }

    /// What making and mounting one needs.
    pub fn requirements(self) -> [Requirement; 4] {
        let mkfs = match self {
            FsKind::Xfs => Requirement::Program("mkfs.xfs", "xfsprogs"),
            FsKind::Btrfs => Requirement::Program("mkfs.btrfs", "btrfs-progs"),
            FsKind::Ext4 => Requirement::Program("mkfs.ext4", "e2fsprogs"),
        };
        [
            Requirement::Root,
            Requirement::LoopDevice,
            Requirement::FileSystem(self.name()),
            mkfs,
        ]
    }

    fn mkfs(self, image: &Path) -> Command {
        let mut c = match self {
            FsKind::Xfs => {
                let mut c = Command::new("mkfs.xfs");
                c.args(["-q", "-f", "-m", "reflink=1"]);
                c
            }
            FsKind::Btrfs => {
                let mut c = Command::new("mkfs.btrfs");
                c.args(["-q", "-f"]);
                c
            }
            FsKind::Ext4 => {
                let mut c = Command::new("mkfs.ext4");
                c.args(["-q", "-F"]);
                c
            }
        };
        c.arg(image);
        c
    }
}

/// A loop-mounted file system, unmounted and removed when dropped.
#[derive(Debug)]
pub struct LoopFs {
    kind: FsKind,
    mnt: PathBuf,
    mounted: bool,
    // Last: removed after the unmount in `drop`.
    _dir: tempfile::TempDir,
}

impl LoopFs {
    /// Makes a file system of `kind` on a sparse file of `size_mib` MiB
    /// (XFS needs at least 300) and mounts it. Panics, saying why, when a
    /// step fails.
    pub fn new(kind: FsKind, size_mib: u64) -> LoopFs {
        Self::new_in(&std::env::temp_dir(), kind, size_mib)
    }

    /// [`LoopFs::new`] with its file and mount point in a new temporary
    /// directory in `parent`.
    pub fn new_in(parent: &Path, kind: FsKind, size_mib: u64) -> LoopFs {
        let dir = tempfile::Builder::new()
            .prefix(&format!("loopfs-{}-", kind.name()))
            .tempdir_in(parent)
            .unwrap_or_else(|e| panic!("temp dir in {}: {e}", parent.display()));
        let image = dir.path().join("fs.img");
        let mnt = dir.path().join("mnt");
        let made = std::fs::File::create(&image)
            .and_then(|f| f.set_len(size_mib << 20))
            .and_then(|()| std::fs::create_dir(&mnt));
        if let Err(e) = made {
            panic!("{}: {e}", image.display());
        }
        let mut fs = LoopFs {
            kind,
            mnt,
            mounted: false,
            _dir: dir,
        };
        let out = run_with_timeout(&mut kind.mkfs(&image), LIMIT);
        assert!(out.success(), "mkfs {}: {out}", kind.name());
        let out = run_with_timeout(
            Command::new("mount")
                .args(["-t", kind.name(), "-o", "loop"])
                .arg(&image)
                .arg(&fs.mnt),
            LIMIT,
        );
        assert!(out.success(), "mount {}: {out}", kind.name());
        fs.mounted = true;
        fs
    }

    /// The file system's kind.
    pub fn kind(&self) -> FsKind {
        self.kind
    }

    /// Where it is mounted.
    pub fn path(&self) -> &Path {
        &self.mnt
    }

    /// Bytes free after everything written is on disk (`syncfs`, then
    /// `statvfs`: free blocks × fragment size). Space shared between
    /// files counts once, unlike `du`.
    pub fn free_bytes(&self) -> u64 {
        let dir = std::fs::File::open(&self.mnt)
            .unwrap_or_else(|e| panic!("open {}: {e}", self.mnt.display()));
        use std::os::fd::AsRawFd;
        nix::unistd::syncfs(dir.as_raw_fd())
            .unwrap_or_else(|e| panic!("syncfs {}: {e}", self.mnt.display()));
        let st = nix::sys::statvfs::fstatvfs(&dir)
            .unwrap_or_else(|e| panic!("statvfs {}: {e}", self.mnt.display()));
        st.blocks_free() * st.fragment_size()
    }
}

impl LoopFs {
    /// [`LoopFs::free_bytes`] once it has stopped changing (the same in
    /// three readings 100 ms apart, for at most 10 s): XFS and btrfs give
    /// the blocks of removed files back in the background, which must
    /// not count against the next file measured.
    pub fn settled_free_bytes(&self) -> u64 {
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        let mut last = self.free_bytes();
        let mut same = 0;
        while same < 2 && std::time::Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(100));
            let now = self.free_bytes();
            same = if now == last { same + 1 } else { 0 };
            last = now;
        }
        last
    }
}

impl Drop for LoopFs {
    fn drop(&mut self) {
        if !self.mounted {
            return;
        }
        // A process still using it (a failed test's child) may hold it
        // for a moment; then detach it lazily rather than leave it.
        let umount = |lazy: bool| {
            let mut c = Command::new("umount");
            if lazy {
                c.arg("-l");
            }
            run_with_timeout(c.arg(&self.mnt), LIMIT).success()
        };
        if !umount(false) {
            std::thread::sleep(Duration::from_millis(500));
            if !umount(false) && !umount(true) {
                eprintln!("LoopFs: cannot unmount {}", self.mnt.display());
            }
        }
    }
}
