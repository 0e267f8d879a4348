//! Where a new-image merge writes: a temporary file in the target's
//! directory that replaces the target only when the merge is complete, so
//! an interrupted merge never leaves a half-written image under the final
//! name.
//!
//! The temporary file is unnamed (`O_TMPFILE`) where the file system
//! supports it — nothing is left behind even on `SIGKILL` — and is given a
//! name only at the end (`linkat` through `/proc/self/fd`, then `rename`).
//! Elsewhere it is a hidden `.<name>.moo-<pid>-<n>` file, removed on
//! failure. A target that exists and is not a regular file (a block
//! device, `/dev/null`) is written directly, as is a regular target whose
//! directory does not allow a new file (C's `creat` semantics).

use std::ffi::OsString;
use std::fs::{self, File, OpenOptions};
use std::io;
use std::os::fd::AsRawFd;
use std::os::unix::fs::{fchown, MetadataExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

use nix::fcntl::AtFlags;
use nix::unistd::linkat;

/// How many names a hidden temporary file may try.
const NAME_TRIES: u32 = 100;

#[derive(Debug)]
enum Kind {
    /// Unnamed until [`Output::commit`].
    Unnamed { dir: PathBuf },
    /// Named temporary file.
    Named { temp: PathBuf },
    /// The target itself.
    Direct,
}

/// The output of a new-image merge.
#[derive(Debug)]
pub struct Output {
    file: File,
    target: PathBuf,
    kind: Kind,
    keep_holes: bool,
}

fn temp_name(dir: &Path, target: &Path, n: u32) -> PathBuf {
    let mut name = OsString::from(".");
    name.push(target.file_name().unwrap_or_else(|| "image".as_ref()));
    name.push(format!(".moo-{}-{n}", std::process::id()));
    dir.join(name)
}

impl Output {
    /// Prepares to write `target`.
    pub fn create(target: &Path) -> io::Result<Output> {
        // Write where a symlink points, as `creat` would.
        let target = match fs::symlink_metadata(target) {
            Ok(m) if m.file_type().is_symlink() => {
                fs::canonicalize(target).unwrap_or_else(|_| target.to_path_buf())
            }
            _ => target.to_path_buf(),
        };
        let existing = fs::metadata(&target).ok();
        if let Some(meta) = &existing {
            if !meta.is_file() {
                let file = OpenOptions::new().write(true).open(&target)?;
                return Ok(Output {
                    file,
                    target,
                    kind: Kind::Direct,
                    keep_holes: false,
                });
            }
        }
        let dir = match target.parent() {
            Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
            _ => PathBuf::from("."),
        };
        let temp = Self::unnamed(&dir)
            .map(|file| (file, Kind::Unnamed { dir: dir.clone() }))
            .or_else(|_| Self::named(&dir, &target).map(|(f, p)| (f, Kind::Named { temp: p })));
        let (file, kind) = match temp {
            Ok(v) => v,
            Err(_) => {
                // No new file possible there: C's `creat(target, 0644)`.
                let file = OpenOptions::new()
                    .write(true)
                    .create(true)
                    .truncate(true)
                    .mode(0o644)
                    .open(&target)?;
                (file, Kind::Direct)
            }
        };
        if let (Some(meta), false) = (&existing, matches!(kind, Kind::Direct)) {
            // Keep the replaced file's permissions and, where allowed, owner.
            let _ = file.set_permissions(fs::Permissions::from_mode(meta.mode() & 0o7777));
            let _ = fchown(&file, Some(meta.uid()), Some(meta.gid()));
        }
        Ok(Output {
            file,
            target,
            kind,
            keep_holes: true,
        })
    }

    fn unnamed(dir: &Path) -> io::Result<File> {
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .mode(0o644)
            .custom_flags(libc::O_TMPFILE)
            .open(dir)?;
        // It can be named later only through /proc.
        if fs::metadata(Self::proc_path(&file)).is_err() {
            return Err(io::Error::from_raw_os_error(libc::ENOENT));
        }
        Ok(file)
    }

    fn proc_path(file: &File) -> PathBuf {
        PathBuf::from(format!("/proc/self/fd/{}", file.as_raw_fd()))
    }

    fn named(dir: &Path, target: &Path) -> io::Result<(File, PathBuf)> {
        let mut last = io::Error::from_raw_os_error(libc::EEXIST);
        for n in 0..NAME_TRIES {
            let path = temp_name(dir, target, n);
            match OpenOptions::new()
                .read(true)
                .write(true)
                .create_new(true)
                .mode(0o644)
                .open(&path)
            {
                Ok(f) => return Ok((f, path)),
                Err(e) if e.kind() == io::ErrorKind::AlreadyExists => last = e,
                Err(e) => return Err(e),
            }
        }
        Err(last)
    }

    /// The file to write.
    pub fn file(&self) -> &File {
        &self.file
    }

    /// Whether zero blocks may be left out (a fresh regular file) or must
    /// be written (a device with old content).
    pub fn keep_holes(&self) -> bool {
        self.keep_holes
    }

    /// Whether the output is written in place of the target (no
    /// temporary file).
    pub fn is_direct(&self) -> bool {
        matches!(self.kind, Kind::Direct)
    }

    /// Puts the finished file in place of the target.
    pub fn commit(self) -> io::Result<()> {
        match &self.kind {
            Kind::Direct => Ok(()),
            Kind::Named { temp } => fs::rename(temp, &self.target).inspect_err(|_| {
                let _ = fs::remove_file(temp);
            }),
            Kind::Unnamed { dir } => {
                let proc_path = Self::proc_path(&self.file);
                let mut n = 0;
                let temp = loop {
                    let temp = temp_name(dir, &self.target, n);
                    match linkat(
                        None,
                        proc_path.as_path(),
                        None,
                        temp.as_path(),
                        AtFlags::AT_SYMLINK_FOLLOW,
                    ) {
                        Ok(()) => break temp,
                        Err(nix::errno::Errno::EEXIST) if n < NAME_TRIES => n += 1,
                        Err(e) => return Err(io::Error::from(e)),
                    }
                };
                fs::rename(&temp, &self.target).inspect_err(|_| {
                    let _ = fs::remove_file(&temp);
                })
            }
        }
    }

    /// Gives up: a named temporary file is removed (an unnamed one goes
    /// away with its descriptor; a direct target keeps what was written,
    /// as with C).
    pub fn abort(self) {
        if let Kind::Named { temp } = &self.kind {
            let _ = fs::remove_file(temp);
        }
    }

    /// The target's path (after following a symlink).
    pub fn target(&self) -> &Path {
        &self.target
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::FileExt;

    fn finish(out: Output, bytes: &[u8]) -> io::Result<()> {
        out.file().write_all_at(bytes, 0)?;
        out.commit()
    }

    #[test]
    fn unnamed_and_named_temporaries_replace_the_target() {
        let dir = tempfile::tempdir().unwrap();
        let target = dir.path().join("img");
        fs::write(&target, b"old").unwrap();
        fs::set_permissions(&target, fs::Permissions::from_mode(0o600)).unwrap();
        let out = Output::create(&target).unwrap();
        assert!(!out.is_direct() && out.keep_holes());
        // Nothing visible under the final name until the commit.
        assert_eq!(fs::read(&target).unwrap(), b"old");
        finish(out, b"new").unwrap();
        assert_eq!(fs::read(&target).unwrap(), b"new");
        assert_eq!(fs::metadata(&target).unwrap().mode() & 0o777, 0o600);

        let (file, temp) = Output::named(dir.path(), &target).unwrap();
        assert!(temp
            .file_name()
            .unwrap()
            .to_string_lossy()
            .starts_with(".img.moo-"));
        let out = Output {
            file,
            target: target.clone(),
            kind: Kind::Named { temp: temp.clone() },
            keep_holes: true,
        };
        finish(out, b"named").unwrap();
        assert_eq!(fs::read(&target).unwrap(), b"named");
        assert!(!temp.exists());

        // Aborting a named temporary removes it.
        let (file, temp) = Output::named(dir.path(), &target).unwrap();
        Output {
            file,
            target: target.clone(),
            kind: Kind::Named { temp: temp.clone() },
            keep_holes: true,
        }
        .abort();
        assert!(!temp.exists());
        let names: Vec<_> = fs::read_dir(dir.path()).unwrap().collect();
        assert_eq!(names.len(), 1);
    }

    #[test]
    fn devices_and_symlinks() {
        let out = Output::create(Path::new("/dev/null")).unwrap();
        assert!(out.is_direct() && !out.keep_holes());
        let dir = tempfile::tempdir().unwrap();
        let real = dir.path().join("real");
        fs::write(&real, b"x").unwrap();
        let link = dir.path().join("link");
        std::os::unix::fs::symlink(&real, &link).unwrap();
        let out = Output::create(&link).unwrap();
        assert_eq!(out.target(), fs::canonicalize(&real).unwrap());
        finish(out, b"via link").unwrap();
        assert_eq!(fs::read(&real).unwrap(), b"via link");
        assert!(fs::symlink_metadata(&link)
            .unwrap()
            .file_type()
            .is_symlink());
    }
}
