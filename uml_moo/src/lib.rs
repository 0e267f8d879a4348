//! `uml_moo`: merge a UML copy-on-write file with its backing file into a
//! plain image, a drop-in replacement for Debian's `uml_moo` (see
//! `docs/cow.md` §5).
//!
//! ```text
//! uml_moo [-b <actual backing file>] <COW file> <new image>
//! uml_moo -d [-b <actual backing file>] <COW file>        (in place)
//! ```
//!
//! The command line is parsed exactly as the C tool parses it (`-d` must
//! come before `-b`), the messages, their streams and the exit statuses
//! are Debian's, and the merged image is byte for byte C's. The backing
//! file (the header's, or the one `-b` names) must have the size and the
//! modification time recorded in the header, as the kernel requires.
//!
//! The merge itself ([`merge`]) works on runs of sectors with large reads
//! and writes, keeps holes, and uses a few MiB of memory whatever the
//! image size. Deliberate differences from C (README):
//! * `-d` alone prints the usage (C crashes);
//! * a header with sector size or alignment 0 is reported (C divides by
//!   zero);
//! * a new image is written to a temporary file in the target directory
//!   and renamed over the target when complete (C truncates the target
//!   first, so an interrupted merge — or an output naming the backing file
//!   — destroys it); the file is then new: hard links to the old target
//!   keep the old content;
//! * `-d` syncs the backing file before reporting success;
//! * short reads say `unexpected end of file` (C: `Success`), and a failed
//!   merge leaves no partial output;
//! * a block-device backing file is sized like the kernel does (C compares
//!   its `st_size`, 0, and refuses it);
//! * on a file system that shares extents (XFS with reflink, btrfs), a
//!   new image shares the backing file's unchanged blocks instead of
//!   holding copies ([`merge::Merger::new_image_reflink`]; same bytes, a
//!   fraction of the time and space); `--no-reflink` copies;
//! * files a running UML holds are refused (see below), unless
//!   `--ignore-locks` is given; `--help` alone prints the usage and these
//!   options on stdout, status 0 (C: the usage on stderr, status 1).
//!
//! **Files in use.** Before anything is written, the COW file (read), the
//! backing file (read; written with `-d`) and an existing output file
//! (replaced) are checked for `fcntl` locks of a UML kernel's block driver
//! that conflict with that access ([`uml_common::inuse`]): a 7.x guest
//! holds them while the device exists, 6.1 while the guest has it open.
//! A conflict is reported with the file's name and the holder's pid, the
//! status is 1 and nothing is changed. A backing file that guests only read
//! can still be merged from (without `-d`).
#![forbid(unsafe_code)]

#[cfg(feature = "clap-command")]
pub mod command;
mod error;
pub mod merge;
pub mod output;

use std::ffi::{OsStr, OsString};
use std::fs::{self, File, OpenOptions};
use std::io::{self, Seek, SeekFrom, Write};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::path::{Path, PathBuf};

use uml_common::cow::{parse_header, GeometryError, HEADER_READ_LEN};
use uml_common::inuse::{self, Access, InUse};

pub use crate::error::Error;
use crate::merge::{Merger, Stats};
use crate::output::Output;

/// Exit status of every failure (and of the usage text), as in C.
pub const EXIT_FAILURE: i32 = 1;

/// Every option, as [`parse_args`] and [`run`] match it: `-d` (first),
/// `-b FILE` (next), `--ignore-locks` (anywhere; [`inuse::IGNORE_LOCKS`])
/// and `--help` (alone). Packaging's tests check that this is the set of
/// options in the description (`command.rs`).
pub const OPTIONS: &[&str] = &["-d", "-b", inuse::IGNORE_LOCKS, NO_REFLINK, "--help"];

/// The option that makes a new image a plain copy, never sharing the
/// backing file's extents (anywhere on the command line, like
/// `--ignore-locks`).
pub const NO_REFLINK: &str = "--no-reflink";

/// Whether `arg` is option `name`; only the names in [`OPTIONS`] ever
/// match, so the parser cannot accept an option that is not listed.
fn is_option(arg: &OsStr, name: &str) -> bool {
    OPTIONS.contains(&name) && arg.as_bytes() == name.as_bytes()
}

const USAGE: &str = "%s usage:\n\
\t%s [ -b <actual backing file> ] <COW file> <new backing file>\n\
\t%s [ -b <actual backing file> ] -d <COW file>\n\
Creates a new filesystem image from the COW file and its backing file.\n\
Specifying -d will cause a destructive, in-place merge of the COW file into\n\
its current backing file\n\
Specifying -b overrides the backing_file specified in the COW file.  This is\n\
needed when dealing with a COW file that was created inside a chroot jail.\n\
%s supports version 1,2 and 3 COW files.\n";

/// The usage text for program name `prog` (stderr, status 1).
pub fn usage(prog: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    for (i, piece) in USAGE.split("%s").enumerate() {
        if i > 0 {
            out.extend_from_slice(prog);
        }
        out.extend_from_slice(piece.as_bytes());
    }
    out
}

/// The options of this implementation, after the usage text in `--help`.
const MORE_HELP: &str = concat!(
    "\n",
    "Options of this implementation (anywhere on the command line):\n",
    "  --ignore-locks  merge even when a UML guest holds a lock on the COW file,\n",
    "                  the backing file or the output file (without it, such a\n",
    "                  file is refused, since a running guest is using it); only\n",
    "                  for a guest that is stopped and will not write\n",
    "  --no-reflink    write every block of a new image, even on a file system\n",
    "                  that can share the backing file's unchanged blocks with\n",
    "                  it (XFS with reflink, btrfs); no effect with -d\n",
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
    /// `-b`: the backing file to use instead of the header's.
    pub backing: Option<PathBuf>,
    /// The COW file.
    pub cow: PathBuf,
    /// The new image; `None` for `-d` (merge into the backing file).
    pub output: Option<PathBuf>,
    /// `--ignore-locks`: skip the check for files a UML guest holds.
    pub ignore_locks: bool,
    /// Share the backing file's extents with a new image where the file
    /// system can (`false` with `--no-reflink`).
    pub reflink: bool,
}

/// Parses the arguments after the program name as the C tool does: an
/// optional `-d` first, then an optional `-b FILE`, then exactly two
/// operands (one with `-d`). `None` means usage — also for `-d` alone,
/// where C crashes. `--ignore-locks` may appear anywhere (except as the
/// value of `-b`) and is taken out first.
pub fn parse_args(args: &[OsString]) -> Option<Options> {
    let (args, ignore_locks) = inuse::take_ignore_locks(args, &["-b"]);
    let (args, no_reflink) = take_flag(&args, NO_REFLINK, &["-b"]);
    let reflink = !no_reflink;
    let mut rest = &args[..];
    let in_place = is_option(rest.first()?, "-d");
    if in_place {
        rest = rest.get(1..)?;
    }
    let mut backing = None;
    if rest.first().is_some_and(|a| is_option(a, "-b")) {
        backing = Some(PathBuf::from(rest.get(1)?));
        rest = rest.get(2..)?;
    }
    match (in_place, rest) {
        (true, [cow]) => Some(Options {
            backing,
            cow: PathBuf::from(cow),
            output: None,
            ignore_locks,
            reflink,
        }),
        (false, [cow, out]) => Some(Options {
            backing,
            cow: PathBuf::from(cow),
            output: Some(PathBuf::from(out)),
            ignore_locks,
            reflink,
        }),
        _ => None,
    }
}

/// Takes every `flag` out of `args`, except as the value of one of
/// `value_options`; says whether there was one.
fn take_flag(args: &[OsString], flag: &str, value_options: &[&str]) -> (Vec<OsString>, bool) {
    let mut kept = Vec::with_capacity(args.len());
    let mut found = false;
    let mut iter = args.iter();
    while let Some(a) = iter.next() {
        if is_option(a, flag) {
            found = true;
            continue;
        }
        kept.push(a.clone());
        if value_options.iter().any(|o| is_option(a, o)) {
            if let Some(v) = iter.next() {
                kept.push(v.clone());
            }
        }
    }
    (kept, found)
}

/// Reads the start of a file for [`parse_header`]: up to
/// [`HEADER_READ_LEN`] bytes, fewer at end of file.
fn read_head(file: &File) -> io::Result<Vec<u8>> {
    use std::os::unix::fs::FileExt;
    let mut buf = vec![0u8; HEADER_READ_LEN];
    let mut n = 0;
    while n < buf.len() {
        match file.read_at(buf.get_mut(n..).unwrap_or_default(), n as u64) {
            Ok(0) => break,
            Ok(k) => n += k,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    buf.truncate(n);
    Ok(buf)
}

/// Size of the backing file as the kernel sees it: `st_size`, or the
/// device size of a block device.
fn backing_size(path: &Path, meta: &fs::Metadata) -> io::Result<u64> {
    if meta.file_type().is_block_device() {
        return File::open(path)?.seek(SeekFrom::End(0));
    }
    Ok(meta.len())
}

/// Refuses files a UML guest holds in a way that conflicts with the merge:
/// the COW file and the backing file are read (the backing file written
/// with `-d`), an existing output file is replaced.
fn check_not_in_use(opts: &Options, cow: &File, backing: &Path) -> Result<(), InUse> {
    inuse::check_file(cow, &opts.cow, "COW file", Access::Read)?;
    let backing_access = match opts.output {
        None => Access::Write,
        Some(_) => Access::Read,
    };
    inuse::check_path(backing, "backing file", backing_access)?;
    if let Some(target) = &opts.output {
        inuse::check_path(target, "output file", Access::Write)?;
    }
    Ok(())
}

/// Runs the merge `opts` describes. Header notices go to `out`.
pub fn merge(opts: &Options, out: &mut dyn Write) -> Result<Stats, Error> {
    let cow = File::open(&opts.cow).map_err(Error::CowOpen)?;
    let head = read_head(&cow).map_err(|_| Error::Header(Vec::new()))?;
    let header = match parse_header(&head) {
        Ok(Some(h)) => h,
        Ok(None) => return Err(Error::Header(Vec::new())),
        Err(e) => return Err(Error::Header(e.lines())),
    };
    let notices: Vec<String> = header.notices().iter().map(|s| s.to_string()).collect();
    let geometry = match header.geometry() {
        Ok(g) => g,
        Err(e) => {
            let mut lines = notices;
            if e != GeometryError::ZeroAlignment {
                lines.push(e.to_string());
            }
            return Err(Error::Header(lines));
        }
    };
    for n in &notices {
        let _ = writeln!(out, "{n}");
    }

    let backing_path = match &opts.backing {
        Some(p) => p.clone(),
        None => PathBuf::from(std::ffi::OsStr::from_bytes(&header.backing_file)),
    };
    let meta = fs::metadata(&backing_path).map_err(Error::StatBacking)?;
    let size = backing_size(&backing_path, &meta).map_err(Error::StatBacking)?;
    header
        .check_backing(size, meta.mtime())
        .map_err(|mismatch| Error::Mismatch {
            mismatch,
            name: backing_path.clone(),
        })?;

    if !opts.ignore_locks {
        check_not_in_use(opts, &cow, &backing_path).map_err(Error::InUse)?;
    }

    let backing = OpenOptions::new()
        .read(true)
        .write(opts.output.is_none())
        .open(&backing_path)
        .map_err(Error::OpenBacking)?;

    match &opts.output {
        None => {
            merge::check_bitmap(&cow, &geometry)?;
            Ok(Merger::new(&cow, &backing, geometry).in_place()?)
        }
        Some(target) => {
            let output = Output::create(target).map_err(Error::OutputOpen)?;
            let result = (|| {
                if output.is_direct() {
                    let (a, b) = (output.file().metadata(), cow.metadata());
                    if let (Ok(a), Ok(b)) = (a, b) {
                        if a.dev() == b.dev() && a.ino() == b.ino() {
                            return Err(Error::OutputIsCow);
                        }
                    }
                }
                merge::check_bitmap(&cow, &geometry)?;
                // A fresh regular file on a file system that shares
                // extents: clone the backing file, write the dirty blocks.
                if opts.reflink && output.keep_holes() {
                    let mut m = Merger::new(&cow, &backing, geometry);
                    if let Some(stats) = m.new_image_reflink(output.file())? {
                        return Ok(stats);
                    }
                }
                // One thread: ext4 and others serialise buffered writes to
                // one file, and the write copy dominates (2 threads were no
                // faster).
                Ok(Merger::new(&cow, &backing, geometry)
                    .new_image(output.file(), output.keep_holes())?)
            })();
            match result {
                Ok(stats) => {
                    output.commit().map_err(Error::Commit)?;
                    Ok(stats)
                }
                Err(e) => {
                    output.abort();
                    Err(e)
                }
            }
        }
    }
}

/// The whole tool: `args` is argv (program name first); `--help` and the
/// header notices are written to `out`.
fn run(args: &[OsString], out: &mut dyn Write) -> Result<(), Error> {
    let prog = args
        .first()
        .map(|a| a.as_bytes().to_vec())
        .unwrap_or_else(|| b"uml_moo".to_vec());
    let rest = args.get(1..).unwrap_or_default();
    if rest.len() == 1 && is_option(&rest[0], "--help") {
        let _ = out.write_all(&help(&prog));
        return Ok(());
    }
    let opts = parse_args(rest).ok_or(Error::Usage(prog))?;
    merge(&opts, out).map(|_| ())
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
    use std::os::unix::fs::FileExt;
    use std::time::{Duration, UNIX_EPOCH};
    use uml_common::cow::Header;

    fn os(v: &[&str]) -> Vec<OsString> {
        v.iter().map(OsString::from).collect()
    }

    /// [`uumain`] with `out` and `err` for stdout and stderr.
    fn run_buf(args: &[OsString], out: &mut Vec<u8>, err: &mut Vec<u8>) -> i32 {
        uumain_to(args, out, err)
    }

    fn opts(backing: Option<&str>, cow: &str, output: Option<&str>) -> Options {
        Options {
            backing: backing.map(PathBuf::from),
            cow: PathBuf::from(cow),
            output: output.map(PathBuf::from),
            ignore_locks: false,
            reflink: true,
        }
    }

    #[test]
    fn parse_like_c() {
        for bad in [
            &[][..],
            &["-d"],
            &["-b"],
            &["-d", "-b"],
            &["-b", "x"],
            &["-b", "x", "y"],
            &["x"],
            &["a", "b", "c"],
            &["-d", "a", "b"],
            &["-d", "-b", "x"],
        ] {
            assert_eq!(parse_args(&os(bad)), None, "{bad:?}");
        }
        assert_eq!(
            parse_args(&os(&["c", "n"])),
            Some(opts(None, "c", Some("n")))
        );
        assert_eq!(parse_args(&os(&["-d", "c"])), Some(opts(None, "c", None)));
        assert_eq!(
            parse_args(&os(&["-b", "B", "c", "n"])),
            Some(opts(Some("B"), "c", Some("n")))
        );
        assert_eq!(
            parse_args(&os(&["-d", "-b", "B", "c"])),
            Some(opts(Some("B"), "c", None))
        );
        // `-d` after `-b` is an operand, as in C.
        assert_eq!(
            parse_args(&os(&["-b", "B", "-d", "c"])),
            Some(opts(Some("B"), "-d", Some("c")))
        );
        // --ignore-locks anywhere, but not as the value of -b.
        let ignoring = |o: Options| {
            Some(Options {
                ignore_locks: true,
                ..o
            })
        };
        assert_eq!(
            parse_args(&os(&["--ignore-locks", "-d", "-b", "B", "c"])),
            ignoring(opts(Some("B"), "c", None))
        );
        assert_eq!(
            parse_args(&os(&["-d", "c", "--ignore-locks"])),
            ignoring(opts(None, "c", None))
        );
        assert_eq!(
            parse_args(&os(&["c", "--ignore-locks", "n"])),
            ignoring(opts(None, "c", Some("n")))
        );
        assert_eq!(
            parse_args(&os(&["-b", "--ignore-locks", "c", "n"])),
            Some(opts(Some("--ignore-locks"), "c", Some("n")))
        );
        assert_eq!(parse_args(&os(&["--ignore-locks"])), None);
        // --no-reflink likewise.
        let plain = |o: Options| {
            Some(Options {
                reflink: false,
                ..o
            })
        };
        assert_eq!(
            parse_args(&os(&["c", "--no-reflink", "n"])),
            plain(opts(None, "c", Some("n")))
        );
        assert_eq!(
            parse_args(&os(&["--no-reflink", "-d", "c", "--ignore-locks"])),
            plain(ignoring(opts(None, "c", None)).unwrap())
        );
        assert_eq!(
            parse_args(&os(&["-b", "--no-reflink", "c", "n"])),
            Some(opts(Some("--no-reflink"), "c", Some("n")))
        );
        assert_eq!(parse_args(&os(&["--no-reflink", "c"])), None);
        assert_eq!(parse_args(&os(&["--ignore-locks", "c"])), None);
    }

    #[test]
    fn help_is_the_usage_and_the_added_options() {
        let (mut o, mut e) = (Vec::new(), Vec::new());
        assert_eq!(run_buf(&os(&["moo", "--help"]), &mut o, &mut e), 0);
        assert!(e.is_empty());
        let text = String::from_utf8(o).unwrap();
        assert!(text.starts_with(&String::from_utf8(usage(b"moo")).unwrap()));
        assert!(text.contains("\n  --ignore-locks  "), "{text}");
        // With anything else, --help is an operand, as in C.
        let (mut o, mut e) = (Vec::new(), Vec::new());
        assert_eq!(run_buf(&os(&["moo", "--help", "x"]), &mut o, &mut e), 1);
        assert!(o.is_empty() && !e.is_empty());
    }

    #[test]
    fn usage_for_bad_command_lines() {
        let (mut o, mut e) = (Vec::new(), Vec::new());
        assert_eq!(run_buf(&os(&["moo", "-d"]), &mut o, &mut e), 1);
        assert!(o.is_empty());
        let text = String::from_utf8(e).unwrap();
        assert!(text.starts_with("moo usage:\n\tmoo [ -b <actual backing file> ] <COW file>"));
        assert!(text.ends_with("moo supports version 1,2 and 3 COW files.\n"));
        assert_eq!(text.lines().count(), 9);
    }

    fn run_str(args: &[&str]) -> (i32, String, String) {
        let (mut o, mut e) = (Vec::new(), Vec::new());
        let code = run_buf(&os(args), &mut o, &mut e);
        (
            code,
            String::from_utf8(o).unwrap(),
            String::from_utf8(e).unwrap(),
        )
    }

    fn set_mtime(path: &Path, secs: u64) {
        File::options()
            .write(true)
            .open(path)
            .unwrap()
            .set_modified(UNIX_EPOCH + Duration::from_secs(secs))
            .unwrap();
    }

    #[test]
    fn messages_of_failures() {
        let dir = tempfile::tempdir().unwrap();
        let p = |n: &str| dir.path().join(n).to_str().unwrap().to_string();
        let (code, o, e) = run_str(&["moo", &p("none"), &p("out")]);
        assert_eq!((code, o.as_str()), (1, ""));
        assert_eq!(e, "COW file open: No such file or directory\n");

        std::fs::write(p("plain"), vec![1u8; 9000]).unwrap();
        let (code, o, e) = run_str(&["moo", &p("plain"), &p("out")]);
        assert_eq!(
            (code, o.as_str(), e.as_str()),
            (1, "", "Reading COW header failed\n")
        );

        std::fs::write(p("short"), b"OOOM").unwrap();
        let (_, o, e) = run_str(&["moo", &p("short"), &p("out")]);
        assert_eq!(o, "read_cow_header - short header\n");
        assert_eq!(e, "Reading COW header failed\n");

        // Alignment 0: C prints the complaint, then divides by zero.
        let mut h = Header::new_v3(p("back").as_bytes(), 5, 4096, 512, 0);
        std::fs::write(p("a0.cow"), h.encode().unwrap()).unwrap();
        let (code, o, e) = run_str(&["moo", &p("a0.cow"), &p("out")]);
        assert_eq!(code, 1);
        assert_eq!(o, "read_cow_header - invalid COW header, align == 0\n");
        assert_eq!(e, "Reading COW header failed\n");
        h.alignment = 4096;
        h.sectorsize = 0;
        std::fs::write(p("s0.cow"), h.encode().unwrap()).unwrap();
        let (_, o, _) = run_str(&["moo", &p("s0.cow"), &p("out")]);
        assert_eq!(o, "read_cow_header - invalid COW header, sectorsize == 0\n");

        // Backing checks.
        h.sectorsize = 512;
        let mut cow = h.encode().unwrap();
        cow.resize(h.geometry().unwrap().cow_file_len() as usize, 0);
        std::fs::write(p("x.cow"), &cow).unwrap();
        let (_, _, e) = run_str(&["moo", &p("x.cow"), &p("out")]);
        assert_eq!(e, "Stating backing file: No such file or directory\n");
        std::fs::write(p("back"), vec![3u8; 4096]).unwrap();
        set_mtime(&dir.path().join("back"), 6);
        let (code, _, e) = run_str(&["moo", &p("x.cow"), &p("out")]);
        assert_eq!(code, 1);
        assert_eq!(
            e,
            format!(
                "mtime mismatch (5 vs 6) of COW header vs backing file \"{}\"\n",
                p("back")
            )
        );
        std::fs::write(p("b2"), vec![3u8; 512]).unwrap();
        let (_, _, e) = run_str(&["moo", "-b", &p("b2"), &p("x.cow"), &p("out")]);
        assert_eq!(
            e,
            format!(
                "Size mismatch (4096 vs 512) of COW header vs backing file \"{}\"\n",
                p("b2")
            )
        );
        assert!(!dir.path().join("out").exists());

        // Success; then an output in a missing directory.
        set_mtime(&dir.path().join("back"), 5);
        assert_eq!(
            run_str(&["moo", &p("x.cow"), &p("out")]),
            (0, String::new(), String::new())
        );
        assert_eq!(std::fs::read(p("out")).unwrap(), vec![3u8; 4096]);
        let (code, _, e) = run_str(&["moo", &p("x.cow"), &p("nodir/out")]);
        assert_eq!(code, 1);
        assert_eq!(e, "Output file open: No such file or directory\n");

        // A truncated bitmap leaves no output behind.
        std::fs::write(p("t.cow"), &cow[..8192]).unwrap();
        let (code, _, e) = run_str(&["moo", &p("t.cow"), &p("out2")]);
        assert_eq!(code, 1);
        assert_eq!(e, "Reading COW bitmap: unexpected end of file\n");
        assert!(!dir.path().join("out2").exists());
        let leftovers: Vec<_> = std::fs::read_dir(dir.path())
            .unwrap()
            .filter_map(|e| e.ok())
            .filter(|e| e.file_name().to_string_lossy().contains(".moo-"))
            .collect();
        assert!(leftovers.is_empty(), "{leftovers:?}");
    }

    #[test]
    fn broken_v3_notice_and_merge() {
        let dir = tempfile::tempdir().unwrap();
        let back = dir.path().join("back");
        std::fs::write(&back, vec![9u8; 8192]).unwrap();
        set_mtime(&back, 1_000_000);
        let h = Header {
            version: uml_common::cow::Version::V3Broken,
            ..Header::new_v3(back.as_os_str().as_bytes(), 1_000_000, 8192, 512, 4096)
        };
        let g = h.geometry().unwrap();
        let cow_path = dir.path().join("b.cow");
        let f = File::create(&cow_path).unwrap();
        f.write_all_at(&h.encode().unwrap(), 0).unwrap();
        f.write_all_at(&[0x01], g.bitmap_offset + 1).unwrap(); // sector 8
        f.write_all_at(&[7u8; 512], g.data_offset + 8 * 512)
            .unwrap();
        f.set_len(g.cow_file_len()).unwrap();
        let out = dir.path().join("out");
        let (code, o, e) = run_str(&["moo", cow_path.to_str().unwrap(), out.to_str().unwrap()]);
        assert_eq!((code, e.as_str()), (0, ""));
        assert_eq!(
            o,
            "read_cow_header - broken V3 file with 64-bit layout - recovering content.\n"
        );
        let mut want = vec![9u8; 8192];
        want[4096..4608].fill(7);
        assert_eq!(std::fs::read(&out).unwrap(), want);

        // In place: the backing file takes the merge and keeps its size.
        let (code, _, _) = run_str(&["moo", "-d", cow_path.to_str().unwrap()]);
        assert_eq!(code, 0);
        assert_eq!(std::fs::read(&back).unwrap(), want);
    }

    #[test]
    fn output_over_its_own_backing_file_is_safe() {
        // C truncates the output first: naming the backing file destroys
        // it. Here the merge is written aside and renamed.
        let dir = tempfile::tempdir().unwrap();
        let back = dir.path().join("back");
        std::fs::write(&back, vec![5u8; 4096]).unwrap();
        set_mtime(&back, 77);
        let h = Header::new_v3(back.as_os_str().as_bytes(), 77, 4096, 512, 4096);
        let g = h.geometry().unwrap();
        let cow_path = dir.path().join("c.cow");
        let f = File::create(&cow_path).unwrap();
        f.write_all_at(&h.encode().unwrap(), 0).unwrap();
        f.write_all_at(&[0x80], g.bitmap_offset).unwrap(); // sector 7
        f.write_all_at(&[1u8; 512], g.data_offset + 7 * 512)
            .unwrap();
        f.set_len(g.cow_file_len()).unwrap();
        let (code, _, e) = run_str(&["moo", cow_path.to_str().unwrap(), back.to_str().unwrap()]);
        assert_eq!((code, e.as_str()), (0, ""));
        let mut want = vec![5u8; 4096];
        want[3584..].fill(1);
        assert_eq!(std::fs::read(&back).unwrap(), want);
    }
}
