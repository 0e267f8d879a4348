//! `uml_mkcow`: create an empty UML copy-on-write file for a backing file,
//! a drop-in replacement for Debian's `uml_mkcow` (`docs/cow.md` §3, §6).
//!
//! ```text
//! uml_mkcow [-f] <COW file> <backing file>
//! ```
//!
//! The header (version 3, sector size 512, alignment = page size, the
//! backing file's absolute path, mtime and size) and the file size
//! (`data_offset + size`, sparse) are byte for byte those of the C tool and
//! of the kernel. Messages and exit statuses are Debian's: the usage text
//! on stderr with status 2; `open COW file: <error>` with status 1; for a
//! failure while writing the header, the C library's detail line on stdout
//! and `write_cow_header: <error>` on stderr, status 1.
//!
//! Deliberate differences (README):
//! * the errors are the real ones (C reports a missing backing file as
//!   `Operation not permitted`, `err = 1`);
//! * a COW file this run created is removed again when the header cannot
//!   be written (C leaves an empty file behind);
//! * `-f` starts the existing file afresh (C keeps its old bitmap bits and
//!   data under the new header, silently corrupting the overlay), and
//!   refuses to turn the backing file itself into a COW file;
//! * backing files in `/` and working directories longer than 255 bytes
//!   work (C fails in `absolutize`); a directory is refused as backing file
//!   (C writes a COW file for it); block devices are sized by seeking to
//!   their end;
//! * files a running UML holds are refused (see below), unless
//!   `--ignore-locks` is given; `--help` alone prints the usage and these
//!   options on stdout, status 0 (C: the usage on stderr, status 2).
//!
//! **Files in use.** Before anything is created or written, the backing
//! file is checked for a write lock and, with `-f`, an existing COW file
//! for any lock of a UML kernel's block driver ([`uml_common::inuse`]): a
//! 7.x guest holds them while the device exists, 6.1 while the guest has
//! it open. A conflict is reported with the file's name and the holder's
//! pid, the status is 1 and nothing is changed. A backing file that
//! guests only read (the usual case: other COW files on it) is fine.
#![forbid(unsafe_code)]

#[cfg(feature = "clap-command")]
pub mod command;
mod error;

use std::ffi::{OsStr, OsString};
use std::fs::{self, File, OpenOptions};
use std::io::{self, Seek, SeekFrom, Write};
use std::os::unix::ffi::{OsStrExt, OsStringExt};
use std::os::unix::fs::{FileExt, FileTypeExt, MetadataExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

use uml_common::cow::{Header, MAX_BACKING_NAME, PATH_LEN_V3, SECTOR_SIZE};
use uml_common::inuse::{self, Access};

pub use crate::error::{Error, InitError};

/// Exit status of a usage error (Debian's `uml_mkcow` uses 2).
pub const EXIT_USAGE: i32 = 2;
/// Exit status of every other failure.
pub const EXIT_FAILURE: i32 = 1;

/// The bitmap and data alignment: the page size, as `sysconf(_SC_PAGESIZE)`
/// gives it to the C tool and `PAGE_SIZE` to the kernel (4096 on x86_64).
pub const ALIGNMENT: u32 = 4096;

/// Every option, as [`parse_args`] and [`run`] match it: `-f` (first),
/// `--ignore-locks` (anywhere; [`inuse::IGNORE_LOCKS`]) and `--help`
/// (alone). Packaging's tests check that this is the set of options in
/// the description (`command.rs`).
pub const OPTIONS: &[&str] = &["-f", inuse::IGNORE_LOCKS, "--help"];

/// Whether `arg` is option `name`; only the names in [`OPTIONS`] ever
/// match, so the parser cannot accept an option that is not listed.
fn is_option(arg: &OsStr, name: &str) -> bool {
    OPTIONS.contains(&name) && arg.as_bytes() == name.as_bytes()
}

/// The usage text for program name `prog` (stderr, status 2).
pub fn usage(prog: &[u8]) -> Vec<u8> {
    let mut v = Vec::new();
    v.extend_from_slice(prog);
    v.extend_from_slice(b" usage: \n\t");
    v.extend_from_slice(prog);
    v.extend_from_slice(b" [-f] <COW file> <backing file>\n");
    v.extend_from_slice(b"\t-f forces overwrite of an existing COW file\n");
    v
}

/// The options of this implementation, after the usage text in `--help`.
const MORE_HELP: &str = concat!(
    "\n",
    "Options of this implementation (anywhere on the command line):\n",
    "  --ignore-locks  write even when a UML guest holds a lock on the COW file\n",
    "                  (with -f) or a write lock on the backing file (without\n",
    "                  it, such a file is refused, since a running guest is\n",
    "                  using it); only for a guest that is stopped\n",
    "  --help          print this help and exit\n",
);

/// `--help`: the usage text, then the options this implementation adds
/// (stdout, status 0). Packaging's tests check that it is the text
/// rendered from the description (`command.rs`).
pub fn help(prog: &[u8]) -> Vec<u8> {
    let mut out = usage(prog);
    out.extend_from_slice(MORE_HELP.as_bytes());
    out
}

/// What the command line asks for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Options {
    /// `-f`: overwrite an existing COW file.
    pub force: bool,
    /// The COW file to create.
    pub cow: PathBuf,
    /// The backing file as given.
    pub backing: OsString,
    /// `--ignore-locks`: skip the check for files a UML guest holds.
    pub ignore_locks: bool,
}

/// Parses the arguments after the program name exactly as the C tool:
/// `-f` is recognised only as the first argument; arguments after the
/// second operand are ignored. `None` means usage. `--ignore-locks` may
/// appear anywhere and is taken out first.
pub fn parse_args(args: &[OsString]) -> Option<Options> {
    let (args, ignore_locks) = inuse::take_ignore_locks(args, &[]);
    let mut rest = &args[..];
    let first = rest.first()?;
    let force = is_option(first, "-f");
    if force {
        rest = rest.get(1..)?;
    }
    match rest {
        [cow, backing, ..] => Some(Options {
            force,
            cow: PathBuf::from(cow),
            backing: backing.clone(),
            ignore_locks,
        }),
        _ => None,
    }
}

fn init_error(parts: &[&[u8]], error: io::Error) -> InitError {
    InitError {
        detail: parts.concat(),
        error,
    }
}

fn errno_of(e: &io::Error) -> i32 {
    e.raw_os_error().unwrap_or(libc::EINVAL)
}

fn einval() -> io::Error {
    io::Error::from_raw_os_error(libc::EINVAL)
}

/// Makes `name` absolute as the C `absolutize` does, without changing the
/// process's working directory: the directory part is resolved physically
/// (`canonicalize`, like `chdir` + `getcwd`), the last component is kept
/// as given; a name without `/` is appended to the working directory.
/// A name directly in `/` works (C fails on it).
pub fn absolutize(
    name: &[u8],
    cwd: impl FnOnce() -> io::Result<PathBuf>,
    canonicalize: impl FnOnce(&Path) -> io::Result<PathBuf>,
) -> Result<Vec<u8>, InitError> {
    let (dir, last): (Vec<u8>, &[u8]) = match name.iter().rposition(|&b| b == b'/') {
        Some(slash) => {
            let dir_part = name.get(..slash).unwrap_or_default();
            let dir_part: &[u8] = if dir_part.is_empty() { b"/" } else { dir_part };
            let resolved = canonicalize(Path::new(OsStr::from_bytes(dir_part))).map_err(|e| {
                init_error(
                    &[
                        b"absolutize : Can't cd to '",
                        name,
                        b"' - errno = ",
                        errno_of(&e).to_string().as_bytes(),
                    ],
                    einval(),
                )
            })?;
            (
                resolved.into_os_string().into_vec(),
                name.get(slash + 1..).unwrap_or_default(),
            )
        }
        None => {
            let wd = cwd().map_err(|e| {
                init_error(
                    &[
                        b"absolutize : unable to get cwd - errno = ",
                        errno_of(&e).to_string().as_bytes(),
                    ],
                    einval(),
                )
            })?;
            (wd.into_os_string().into_vec(), name)
        }
    };
    let mut out = dir;
    if out.last() != Some(&b'/') {
        out.push(b'/');
    }
    out.extend_from_slice(last);
    if out.len() + 1 > PATH_LEN_V3 {
        return Err(init_error(
            &[
                b"absolutize : unable to fit '",
                name,
                b"' into ",
                PATH_LEN_V3.to_string().as_bytes(),
                b" chars",
            ],
            einval(),
        ));
    }
    Ok(out)
}

/// Size of a backing file: `st_size`, or for a block device its size
/// (found by seeking to its end). Directories are refused.
pub fn backing_size(path: &Path, meta: &fs::Metadata) -> io::Result<u64> {
    let ft = meta.file_type();
    if ft.is_dir() {
        return Err(io::Error::from_raw_os_error(libc::EISDIR));
    }
    if ft.is_block_device() {
        let mut f = File::open(path)?;
        return f.seek(SeekFrom::End(0));
    }
    Ok(meta.len())
}

/// The header `init_cow_file` would write for `backing` (as given on the
/// command line), with the C library's checks and messages.
pub fn header_for(backing: &[u8]) -> Result<Header, InitError> {
    if backing.len() > MAX_BACKING_NAME {
        return Err(init_error(
            &[
                b"Backing file name \"",
                backing,
                b"\" is too long - names are limited to ",
                MAX_BACKING_NAME.to_string().as_bytes(),
                b" characters",
            ],
            einval(),
        ));
    }
    let abs = absolutize(backing, std::env::current_dir, |p| fs::canonicalize(p))?;
    let path = Path::new(OsStr::from_bytes(&abs));
    let meta = fs::metadata(path).map_err(|e| {
        let code = errno_of(&e).to_string();
        init_error(
            &[
                b"write_cow_header - backing file '",
                &abs,
                b"' mtime request failed, err = ",
                code.as_bytes(),
            ],
            e,
        )
    })?;
    let size = backing_size(path, &meta).map_err(|e| {
        let code = errno_of(&e).to_string();
        init_error(
            &[
                b"write_cow_header - couldn't get size of backing file '",
                &abs,
                b"', err = ",
                code.as_bytes(),
            ],
            e,
        )
    })?;
    // `htonl(modtime)`: the seconds truncated to 32 bits.
    let mtime = meta.mtime() as u32;
    Ok(Header::new_v3(&abs, mtime, size, SECTOR_SIZE, ALIGNMENT))
}

/// Writes `header` and extends the file to its full (sparse) size: the
/// 4128-byte header at 0, one zero byte at `data_offset + size - 1`.
pub fn write_cow(file: &File, cow_name: &[u8], header: &Header) -> Result<(), InitError> {
    let bytes = header.encode().map_err(|_| {
        init_error(
            &[
                b"Backing file name \"",
                &header.backing_file,
                b"\" is too long",
            ],
            einval(),
        )
    })?;
    let geometry = header.geometry().map_err(|e| {
        init_error(
            &[b"write_cow_header - ", e.to_string().as_bytes()],
            einval(),
        )
    })?;
    file.write_all_at(&bytes, 0).map_err(|e| {
        let code = errno_of(&e).to_string();
        init_error(
            &[
                b"write_cow_header - write of header to new COW file '",
                cow_name,
                b"' failed, err = ",
                code.as_bytes(),
            ],
            e,
        )
    })?;
    let last = geometry.cow_file_len() - 1;
    file.write_all_at(&[0], last).map_err(|e| {
        let code = errno_of(&e).to_string();
        init_error(
            &[
                b"Write of bitmap to new COW file '",
                cow_name,
                b"' failed, err = ",
                code.as_bytes(),
            ],
            e,
        )
    })?;
    Ok(())
}

/// Zeroes `[from, to)` of a file that cannot be truncated (a device), in
/// bounded pieces.
fn zero_range(file: &File, from: u64, to: u64) -> io::Result<()> {
    let zeros = vec![0u8; 64 * 1024];
    let mut pos = from;
    while pos < to {
        let n = (to - pos).min(zeros.len() as u64) as usize;
        file.write_all_at(zeros.get(..n).unwrap_or_default(), pos)?;
        pos += n as u64;
    }
    Ok(())
}

/// Opens the COW file as the C tool does (`O_RDWR|O_CREAT`, mode 0644,
/// `O_EXCL` unless forced). Returns whether this call created it.
fn open_cow(path: &Path, force: bool) -> io::Result<(File, bool)> {
    let mut opts = OpenOptions::new();
    opts.read(true).write(true).create_new(true).mode(0o644);
    match opts.open(path) {
        Ok(f) => Ok((f, true)),
        Err(e) if force && e.kind() == io::ErrorKind::AlreadyExists => {
            let f = OpenOptions::new().read(true).write(true).open(path)?;
            Ok((f, false))
        }
        Err(e) => Err(e),
    }
}

/// Creates the COW file. On failure a file this run created is removed
/// again.
fn create(opts: &Options) -> Result<(), Error> {
    // A backing file a guest writes to: refused before anything exists.
    if !opts.ignore_locks {
        let backing = Path::new(&opts.backing);
        inuse::check_path(backing, "backing file", Access::Read).map_err(Error::InUse)?;
    }
    let (file, created) = open_cow(&opts.cow, opts.force).map_err(Error::OpenCow)?;
    // `-f` over a COW file a guest uses: refused before it is cleared.
    if !created && !opts.ignore_locks {
        inuse::check_file(&file, &opts.cow, "COW file", Access::Write).map_err(Error::InUse)?;
    }
    let cow_name = opts.cow.as_os_str().as_bytes();
    let result = header_for(opts.backing.as_bytes()).and_then(|header| {
        if !created {
            prepare_existing(&file, &header)?;
        }
        write_cow(&file, cow_name, &header)
    });
    if result.is_err() && created {
        // Remove what this run created, unless it has been replaced by
        // another file meanwhile.
        let ours = file.metadata().ok();
        let there = fs::symlink_metadata(&opts.cow).ok();
        if let (Some(a), Some(b)) = (ours, there) {
            if a.dev() == b.dev() && a.ino() == b.ino() {
                let _ = fs::remove_file(&opts.cow);
            }
        }
    }
    result.map_err(Error::Init)
}

/// `-f` on an existing file: refuse the backing file itself, then start
/// afresh (truncate a regular file; zero header and bitmap of a device).
fn prepare_existing(file: &File, header: &Header) -> Result<(), InitError> {
    let cow_meta = file
        .metadata()
        .map_err(|e| init_error(&[b"fstat failed"], e))?;
    if let Ok(b) = fs::metadata(OsStr::from_bytes(&header.backing_file)) {
        if b.dev() == cow_meta.dev() && b.ino() == cow_meta.ino() {
            return Err(init_error(
                &[
                    b"write_cow_header - backing file '",
                    &header.backing_file,
                    b"' is the COW file itself",
                ],
                einval(),
            ));
        }
    }
    let fail = |e: io::Error| {
        let code = errno_of(&e).to_string();
        init_error(
            &[
                b"write_cow_header - clearing the existing COW file failed, err = ",
                code.as_bytes(),
            ],
            e,
        )
    };
    if cow_meta.file_type().is_file() {
        file.set_len(0).map_err(fail)
    } else {
        let end = header
            .geometry()
            .map(|g| g.data_offset)
            .map_err(|_| init_error(&[b"write_cow_header - invalid sizes"], einval()))?;
        zero_range(file, 0, end).map_err(fail)
    }
}

/// The whole tool: `args` is argv (program name first); `--help` is
/// written to `out`.
fn run(args: &[OsString], out: &mut dyn Write) -> Result<(), Error> {
    let prog = args
        .first()
        .map(|a| a.as_bytes().to_vec())
        .unwrap_or_else(|| b"uml_mkcow".to_vec());
    let rest = args.get(1..).unwrap_or_default();
    if rest.len() == 1 && is_option(&rest[0], "--help") {
        let _ = out.write_all(&help(&prog));
        return Ok(());
    }
    let opts = parse_args(rest).ok_or(Error::Usage(prog))?;
    create(&opts)
}

/// Prints what `result` says, as Debian's tool does, and returns the exit
/// status.
fn finish(result: Result<(), Error>, out: &mut dyn Write, err: &mut dyn Write) -> i32 {
    match result {
        Ok(()) => 0,
        Err(e) => {
            e.report(out, err);
            e.exit_code()
        }
    }
}

/// The program: `args` is argv (program name first). Returns the exit
/// status.
pub fn uumain(args: impl IntoIterator<Item = OsString>) -> i32 {
    let args: Vec<OsString> = args.into_iter().collect();
    let mut out = io::stdout().lock();
    let code = uumain_to(&args, &mut out, &mut io::stderr().lock());
    let _ = out.flush();
    code
}

/// [`uumain`] writing to `out` and `err` instead of stdout and stderr
/// (for tests, and packaging's check of `--help`).
pub fn uumain_to(args: &[OsString], out: &mut dyn Write, err: &mut dyn Write) -> i32 {
    let result = run(args, out);
    finish(result, out, err)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn os(v: &[&str]) -> Vec<OsString> {
        v.iter().map(OsString::from).collect()
    }

    /// [`uumain`] with `out` and `err` for stdout and stderr.
    fn run_buf(args: &[OsString], out: &mut Vec<u8>, err: &mut Vec<u8>) -> i32 {
        uumain_to(args, out, err)
    }

    #[test]
    fn parse_like_c() {
        assert_eq!(parse_args(&os(&[])), None);
        assert_eq!(parse_args(&os(&["a"])), None);
        assert_eq!(parse_args(&os(&["-f"])), None);
        assert_eq!(parse_args(&os(&["-f", "a"])), None);
        assert_eq!(
            parse_args(&os(&["a", "b", "c"])),
            Some(Options {
                force: false,
                cow: "a".into(),
                backing: "b".into(),
                ignore_locks: false,
            })
        );
        let o = parse_args(&os(&["-f", "a", "b"])).unwrap();
        assert!(o.force && o.cow == Path::new("a") && o.backing == "b");
        // `-f` only counts first.
        let o = parse_args(&os(&["a", "-f", "b"])).unwrap();
        assert!(!o.force && o.backing == "-f");
        // --ignore-locks anywhere.
        for args in [
            &["--ignore-locks", "-f", "a", "b"][..],
            &["-f", "a", "b", "--ignore-locks"],
            &["-f", "--ignore-locks", "a", "b"],
        ] {
            let o = parse_args(&os(args)).unwrap();
            assert!(o.force && o.ignore_locks && o.cow == Path::new("a") && o.backing == "b");
        }
        assert_eq!(parse_args(&os(&["--ignore-locks", "a"])), None);
        assert!(!parse_args(&os(&["a", "b"])).unwrap().ignore_locks);
    }

    #[test]
    fn help_is_the_usage_and_the_added_options() {
        let (mut o, mut e) = (Vec::new(), Vec::new());
        assert_eq!(run_buf(&os(&["mk", "--help"]), &mut o, &mut e), 0);
        assert!(e.is_empty());
        let text = String::from_utf8(o).unwrap();
        assert!(text.starts_with(&String::from_utf8(usage(b"mk")).unwrap()));
        assert!(text.contains("\n  --ignore-locks  "), "{text}");
    }

    #[test]
    fn usage_text() {
        assert_eq!(
            String::from_utf8(usage(b"uml_mkcow")).unwrap(),
            "uml_mkcow usage: \n\tuml_mkcow [-f] <COW file> <backing file>\n\
             \t-f forces overwrite of an existing COW file\n"
        );
        let mut o = Vec::new();
        let mut e = Vec::new();
        assert_eq!(run_buf(&os(&["mk"]), &mut o, &mut e), 2);
        assert!(o.is_empty());
        assert_eq!(e, usage(b"mk"));
    }

    fn canon_ok(p: &Path) -> io::Result<PathBuf> {
        Ok(Path::new("/real").join(p.strip_prefix("/").unwrap_or(p)))
    }

    #[test]
    fn absolutize_like_c() {
        let cwd = || Ok(PathBuf::from("/work/dir"));
        assert_eq!(absolutize(b"img", cwd, canon_ok).unwrap(), b"/work/dir/img");
        assert_eq!(
            absolutize(b"sub/img", cwd, canon_ok).unwrap(),
            b"/real/sub/img"
        );
        assert_eq!(
            absolutize(b"/a/b/img", cwd, |p| Ok(p.to_path_buf())).unwrap(),
            b"/a/b/img"
        );
        // A file directly in `/` (C cannot do this one).
        assert_eq!(
            absolutize(b"/img", cwd, |p| Ok(p.to_path_buf())).unwrap(),
            b"/img"
        );
        let e = absolutize(b"no/img", cwd, |_| Err(io::Error::from_raw_os_error(2))).unwrap_err();
        assert_eq!(e.detail, b"absolutize : Can't cd to 'no/img' - errno = 2");
        let e = absolutize(b"img", || Err(io::Error::from_raw_os_error(34)), canon_ok).unwrap_err();
        assert_eq!(e.detail, b"absolutize : unable to get cwd - errno = 34");
        let long = vec![b'a'; 4090];
        let e = absolutize(&long, cwd, canon_ok).unwrap_err();
        assert!(e.detail.ends_with(b"' into 4096 chars"));
        assert_eq!(e.error.raw_os_error(), Some(22));
    }

    #[test]
    fn too_long_name() {
        let e = header_for(&vec![b'x'; 4096]).unwrap_err();
        assert!(e
            .detail
            .ends_with(b"\" is too long - names are limited to 4095 characters"));
        assert_eq!(uml_common::cli::strerror(&e.error), "Invalid argument");
    }

    #[test]
    fn creates_the_c_layout() {
        let dir = tempfile::tempdir().unwrap();
        let back = dir.path().join("back.img");
        fs::write(&back, vec![7u8; 1 << 20]).unwrap();
        let f = File::options().write(true).open(&back).unwrap();
        f.set_modified(std::time::UNIX_EPOCH + std::time::Duration::from_secs(1_600_000_000))
            .unwrap();
        drop(f);
        let cow = dir.path().join("x.cow");
        let args = vec![
            OsString::from("uml_mkcow"),
            cow.clone().into(),
            back.clone().into(),
        ];
        let (mut o, mut e) = (Vec::new(), Vec::new());
        assert_eq!(
            run_buf(&args, &mut o, &mut e),
            0,
            "{}",
            String::from_utf8_lossy(&e)
        );
        assert!(o.is_empty() && e.is_empty());
        let bytes = fs::read(&cow).unwrap();
        assert_eq!(bytes.len(), 1_060_864);
        assert_eq!(&bytes[..8], b"OOOM\0\0\0\x03");
        assert_eq!(&bytes[8..12], &[0x5f, 0x5e, 0x10, 0x00]);
        let canon = fs::canonicalize(&back).unwrap();
        let h = uml_common::cow::parse_header(&bytes).unwrap().unwrap();
        assert_eq!(h.backing_file, canon.as_os_str().as_bytes());
        assert!(bytes[4128..].iter().all(|&b| b == 0));

        // Exists: refused without -f, the file untouched.
        let (mut o, mut e) = (Vec::new(), Vec::new());
        assert_eq!(run_buf(&args, &mut o, &mut e), 1);
        assert_eq!(e, b"open COW file: File exists\n");

        // -f with a dirty bitmap starts afresh.
        let f = File::options().write(true).open(&cow).unwrap();
        f.write_all_at(&[0xff; 16], 8192).unwrap();
        drop(f);
        let mut fargs = args.clone();
        fargs.insert(1, "-f".into());
        let (mut o, mut e) = (Vec::new(), Vec::new());
        assert_eq!(run_buf(&fargs, &mut o, &mut e), 0);
        assert_eq!(fs::read(&cow).unwrap(), bytes);

        // -f naming the backing file as COW file is refused.
        let self_args = vec![
            OsString::from("uml_mkcow"),
            "-f".into(),
            back.clone().into(),
            back.clone().into(),
        ];
        let (mut o, mut e) = (Vec::new(), Vec::new());
        assert_eq!(run_buf(&self_args, &mut o, &mut e), 1);
        assert!(String::from_utf8_lossy(&o).contains("is the COW file itself"));
        assert_eq!(fs::read(&back).unwrap(), vec![7u8; 1 << 20]);
    }

    #[test]
    fn missing_backing_leaves_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let cow = dir.path().join("a.cow");
        let missing = dir.path().join("nonexist");
        let args = vec![
            OsString::from("uml_mkcow"),
            cow.clone().into(),
            missing.into(),
        ];
        let (mut o, mut e) = (Vec::new(), Vec::new());
        assert_eq!(run_buf(&args, &mut o, &mut e), 1);
        let canon = fs::canonicalize(dir.path()).unwrap().join("nonexist");
        assert_eq!(
            String::from_utf8(o).unwrap(),
            format!(
                "write_cow_header - backing file '{}' mtime request failed, err = 2\n",
                canon.display()
            )
        );
        assert_eq!(e, b"write_cow_header: No such file or directory\n");
        assert!(!cow.exists());

        // With -f on an existing file, the file is left as it was.
        fs::write(&cow, b"keep").unwrap();
        let mut fargs = args.clone();
        fargs.insert(1, "-f".into());
        let (mut o, mut e) = (Vec::new(), Vec::new());
        assert_eq!(run_buf(&fargs, &mut o, &mut e), 1);
        assert_eq!(fs::read(&cow).unwrap(), b"keep");
    }

    #[test]
    fn directory_backing_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let cow = dir.path().join("d.cow");
        let args = vec![
            OsString::from("uml_mkcow"),
            cow.clone().into(),
            dir.path().into(),
        ];
        let (mut o, mut e) = (Vec::new(), Vec::new());
        assert_eq!(run_buf(&args, &mut o, &mut e), 1);
        assert!(String::from_utf8_lossy(&o).contains("couldn't get size of backing file"));
        assert_eq!(e, b"write_cow_header: Is a directory\n");
        assert!(!cow.exists());
    }
}
