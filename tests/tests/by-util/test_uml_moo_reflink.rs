//! `uml_moo` on copy-on-write file systems (issue 17): on file systems the
//! tests make themselves (loop-mounted XFS with `reflink=1`, btrfs, and
//! ext4 as the file system without extent sharing), COW files of every
//! version — generated ones, and ones a real UML kernel made and wrote —
//! are merged into new images by Debian's `uml_moo` and ours, with and
//! without `--no-reflink`. The images must be byte for byte Debian's
//! (`cmp`), and the new disk space each took (free space before and after,
//! by `statvfs` after `syncfs`: shared extents count once, unlike `du`)
//! never more than Debian's; on XFS and btrfs ours must actually share
//! (take far less). A target on another file system than the backing file
//! takes the copying path: same bytes, same sparseness rules.

// Test code: a failed setup step should abort the test with its message.
#![allow(clippy::expect_used, clippy::unwrap_used)]

use std::fs::{self, File};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, UNIX_EPOCH};

use uml_integration_tests::cowfile::make_cow;
use uml_integration_tests::loopfs::{FsKind, LoopFs};
use uml_integration_tests::sparse::assert_never_less_sparse;
use uml_integration_tests::uml_common::cow::Version;
use uml_integration_tests::uml_common::testrng::SplitMix64 as Rng;
use uml_integration_tests::{
    require, run_with_timeout, workspace_bin, Requirement, RunOutput, Uml, UmlConfig,
};

const LIMIT: Duration = Duration::from_secs(120);
/// 2020-01-02 03:04:05 UTC, the backing-file mtime of `docs/testing.md` §9.
const MTIME: u64 = 1_577_934_245;
/// Size of each loop file system (sparse; XFS needs at least 300 MiB).
const FS_MIB: u64 = 512;
/// Backing files: 16 MiB and a partial 4 KiB block (3 sectors).
const BACKING_SIZE: u64 = (16 << 20) + 1536;

fn set_mtime(path: &Path, secs: u64) {
    File::options()
        .write(true)
        .open(path)
        .unwrap()
        .set_modified(UNIX_EPOCH + Duration::from_secs(secs))
        .unwrap();
}

/// Checks the requirements of making `kinds`; `false` to skip.
fn requirements(kinds: &[FsKind]) -> bool {
    kinds
        .iter()
        .flat_map(|k| k.requirements())
        .chain([Requirement::CBinary("uml_moo")])
        .all(uml_integration_tests::require)
}

/// A backing file of [`BACKING_SIZE`]: random data, runs of written zeros
/// and holes, with the fixed mtime.
fn make_backing(path: &Path, rng: &mut Rng) {
    let f = File::create(path).unwrap();
    let mut pos = 0u64;
    while pos < BACKING_SIZE {
        let len = (4096 + rng.next_u64() % 600_000).min(BACKING_SIZE - pos);
        match rng.next_u64() % 5 {
            0 => {}                                                      // hole
            1 => f.write_all_at(&vec![0u8; len as usize], pos).unwrap(), // zeros
            _ => f.write_all_at(&rng.bytes(len as usize), pos).unwrap(),
        }
        pos += len;
    }
    f.set_len(BACKING_SIZE).unwrap();
    f.sync_all().unwrap();
    drop(f);
    set_mtime(path, MTIME);
}

fn moo(c: bool, args: &[&Path]) -> RunOutput {
    let bin = if c {
        PathBuf::from("/usr/bin/uml_moo")
    } else {
        workspace_bin("uml_moo")
    };
    let out = run_with_timeout(Command::new(bin).args(args), LIMIT);
    // Only the notice of a broken v3 header may be printed (stdout).
    let notice = "read_cow_header - broken V3 file with 64-bit layout - recovering content.\n";
    assert!(
        out.success()
            && (out.stdout.is_empty() || out.stdout_str() == notice)
            && out.stderr.is_empty(),
        "uml_moo (C: {c}) {args:?}: {out}"
    );
    out
}

fn same_bytes(a: &Path, b: &Path) {
    let out = run_with_timeout(Command::new("cmp").arg(a).arg(b), LIMIT);
    assert!(
        out.success(),
        "{} and {} differ: {}",
        a.display(),
        b.display(),
        out.stdout_str()
    );
}

/// New disk space the three merges of `cow` into `target` took: Debian's,
/// ours, ours with `--no-reflink`.
#[derive(Debug)]
struct Used {
    c: u64,
    ours: u64,
    plain: u64,
}

/// Merges `cow` (backing file from its header) into new images on `target`
/// with Debian's tool, ours and ours `--no-reflink`; checks the bytes are
/// Debian's and that neither of ours took more new space; returns the
/// space each took. The images are removed again.
fn merge_three_ways(cow: &Path, target: &LoopFs, shares: bool, what: &str) -> Used {
    let d = target.path();
    let (c_img, o_img, p_img) = (d.join("c.img"), d.join("o.img"), d.join("p.img"));
    let f0 = target.settled_free_bytes();
    let c_out = moo(true, &[cow, &c_img]);
    let f1 = target.free_bytes();
    let o_out = moo(false, &[cow, &o_img]);
    let f2 = target.free_bytes();
    let p_out = moo(false, &[Path::new("--no-reflink"), cow, &p_img]);
    let f3 = target.free_bytes();
    assert_eq!(
        (&o_out.stdout, &p_out.stdout),
        (&c_out.stdout, &c_out.stdout)
    );
    same_bytes(&o_img, &c_img);
    same_bytes(&p_img, &c_img);
    let used = Used {
        c: f0.saturating_sub(f1),
        ours: f1.saturating_sub(f2),
        plain: f2.saturating_sub(f3),
    };
    eprintln!(
        "{what} on {}: new space C {} KiB, ours {} KiB, ours --no-reflink {} KiB",
        target.kind().name(),
        used.c >> 10,
        used.ours >> 10,
        used.plain >> 10
    );
    // The copying path's sparseness rules, checked by extent.
    assert_never_less_sparse(&p_img, &c_img, what);
    if !shares {
        assert_never_less_sparse(&o_img, &c_img, what);
    }
    // btrfs counts its global metadata reserve, which grows in steps with
    // the extent and checksum trees, as used: copies of the same data
    // differ there by up to ~2 % (the data extents are checked exactly
    // above). Sharing leaves nothing to tolerate.
    let slack = if target.kind() == FsKind::Btrfs {
        used.c / 50
    } else {
        0
    };
    let ours_slack = if shares { 0 } else { slack };
    assert!(
        used.ours <= used.c + ours_slack && used.plain <= used.c + slack,
        "{what}: ours took more new space than C: {used:?}"
    );
    for p in [&c_img, &o_img, &p_img] {
        fs::remove_file(p).unwrap();
    }
    used
}

/// COW versions and geometries merged on each file system.
const GEOMETRIES: [(&str, Version, u32, u32); 6] = [
    ("v3", Version::V3, 512, 4096),
    ("v3-align512", Version::V3, 512, 512),
    ("v3-sector1024", Version::V3, 1024, 4096),
    ("v2", Version::V2, 512, 512),
    ("v1", Version::V1, 512, 512),
    ("v3-broken", Version::V3Broken, 512, 4096),
];

/// On one file system: COW files of every version, sparse and dense
/// dirt, merged in place of the backing file's file system.
fn generated_cow_files_on(kind: FsKind) {
    if !requirements(&[kind]) {
        return;
    }
    let fs = LoopFs::new(kind, FS_MIB);
    let d = fs.path();
    let mut rng = Rng::new(17);
    let back = d.join("back.img");
    make_backing(&back, &mut rng);
    for (n, (name, version, ss, align)) in GEOMETRIES.into_iter().enumerate() {
        let cow = d.join(format!("{name}.cow"));
        let seed = rng.next_u64();
        // Page-sized runs over ~10 % of the image, single sectors, and
        // (every third case) a dense stretch.
        let dense = n % 3 == 2;
        make_cow(&cow, &back, (version, ss, align), &mut rng, move |i| {
            let x = (i / 8).wrapping_mul(seed | 1) >> 7;
            x % 10 == 0 || (i.wrapping_mul(seed) >> 3) % 97 == 0 || (dense && i / 8192 == 1)
        });
        let used = merge_three_ways(&cow, &fs, kind.reflinks(), name);
        if kind.reflinks() {
            // Sharing happened: far less than a full copy (the dense case
            // has half of the image dirty).
            let share = if dense { 4 } else { 2 };
            assert!(
                used.ours * share < used.c * (share - 1),
                "{name} on {}: no extents shared? {used:?}",
                kind.name()
            );
        }
        fs::remove_file(&cow).unwrap();
    }
    // Nothing dirty at all: an image of pure shared extents.
    let cow = d.join("clean.cow");
    make_cow(&cow, &back, (Version::V3, 512, 4096), &mut rng, |_| false);
    let used = merge_three_ways(&cow, &fs, kind.reflinks(), "clean");
    if kind.reflinks() {
        assert!(used.ours * 8 < used.c, "{used:?}");
    }
    // Everything dirty: nothing to share, never more than C.
    let cow = d.join("dirty.cow");
    make_cow(&cow, &back, (Version::V3, 512, 4096), &mut rng, |_| true);
    merge_three_ways(&cow, &fs, kind.reflinks(), "all dirty");
}

#[test]
fn generated_cow_files_merge_like_debian_on_xfs() {
    generated_cow_files_on(FsKind::Xfs);
}

#[test]
fn generated_cow_files_merge_like_debian_on_btrfs() {
    generated_cow_files_on(FsKind::Btrfs);
}

#[test]
fn generated_cow_files_merge_like_debian_on_ext4() {
    generated_cow_files_on(FsKind::Ext4);
}

/// The backing file on XFS, the new image on another file system (btrfs,
/// ext4): cloning is impossible (`EXDEV`), ours copies — the same bytes as
/// C, never more space, never less sparse (ext4, by extent).
#[test]
fn a_target_on_another_file_system_is_copied() {
    if !requirements(&[FsKind::Xfs, FsKind::Btrfs, FsKind::Ext4]) {
        return;
    }
    let src = LoopFs::new(FsKind::Xfs, FS_MIB);
    let mut rng = Rng::new(18);
    let back = src.path().join("back.img");
    make_backing(&back, &mut rng);
    let cow = src.path().join("a.cow");
    make_cow(&cow, &back, (Version::V3, 512, 4096), &mut rng, |i| {
        (i / 8) % 10 == 3
    });
    for kind in [FsKind::Btrfs, FsKind::Ext4] {
        let dst = LoopFs::new(kind, FS_MIB);
        let used = merge_three_ways(&cow, &dst, false, "across file systems");
        // Nothing shared: ours writes what C writes.
        assert!(used.ours * 10 >= used.c * 9, "{used:?}");
    }
}

// ---------------------------------------------------------------------
// COW files made and written by a real UML kernel, on XFS and btrfs.

const STAMP: &str = "2020-01-02 03:04:05 UTC";
const RAW_SIZE: u64 = 8 << 20;
/// Guest writes: (offset, length, fill byte), unaligned (`docs/cow.md` C6),
/// plus a longer run.
const RAW_WRITES: [(u64, u64, u8); 5] = [
    (0, 100, b'A'),
    (1_000_000, 700, b'B'),
    (1_001_000, 300, b'C'),
    (3 << 20, 300_000, b'E'),
    (RAW_SIZE - 3037, 3037, b'D'),
];

fn raw_content() -> Vec<u8> {
    let mut v = vec![0u8; RAW_SIZE as usize];
    for (i, b) in v.iter_mut().enumerate() {
        *b = (((i / 512) * 7 + i * 13) % 251 + 1) as u8;
    }
    // A zero region (a hole in the backing file) in the middle.
    v[(4 << 20)..(5 << 20)].fill(0);
    v
}

fn write_raw(path: &Path) {
    let content = raw_content();
    let f = File::create(path).unwrap();
    for (i, chunk) in content.chunks(1 << 16).enumerate() {
        if chunk.iter().any(|&b| b != 0) {
            f.write_all_at(chunk, (i as u64) << 16).unwrap();
        }
    }
    f.set_len(RAW_SIZE).unwrap();
    f.sync_all().unwrap();
    drop(f);
    let out = run_with_timeout(Command::new("touch").arg("-d").arg(STAMP).arg(path), LIMIT);
    assert!(out.success(), "{out}");
}

fn raw_script(dev: &str) -> String {
    let mut s = String::new();
    for (off, len, fill) in RAW_WRITES {
        s.push_str(&format!(
            "head -c {len} /dev/zero | tr '\\000' '{}' | dd of={dev} bs=1k seek={off} oflag=seek_bytes conv=notrunc status=none || exit 1\n",
            fill as char
        ));
    }
    s.push_str("sync\n");
    s
}

#[test]
fn kernel_cow_files_merge_like_debian_on_xfs_and_btrfs() {
    if !requirements(&[FsKind::Xfs, FsKind::Btrfs]) {
        return;
    }
    require!(Requirement::LinuxUml);
    let xfs = LoopFs::new(FsKind::Xfs, FS_MIB);
    let btrfs = LoopFs::new(FsKind::Btrfs, FS_MIB);
    let mut expected = raw_content();
    for (off, len, fill) in RAW_WRITES {
        expected[off as usize..(off + len) as usize].fill(fill);
    }
    let mut args = Vec::new();
    let mut body = String::new();
    for (i, fs) in [&xfs, &btrfs].into_iter().enumerate() {
        let d = fs.path();
        write_raw(&d.join("raw.img"));
        fs::write(d.join("expected.img"), &expected).unwrap();
        args.push(format!(
            "ubd{}={},{}",
            i + 1,
            d.join("raw.cow").display(),
            d.join("raw.img").display()
        ));
        body.push_str(&raw_script(if i == 0 { "/dev/ubdb" } else { "/dev/ubdc" }));
    }
    let mut uml = Uml::boot(UmlConfig {
        extra_args: args,
        init_script: body,
        ..UmlConfig::new("reflink")
    })
    .expect("boot");
    assert!(
        uml.wait_exit(Duration::from_secs(120)),
        "guest did not power off:\n{}",
        uml.console()
    );
    let console = uml.console();
    assert!(console.contains("UMLTEST-DONE rc=0"), "{console}");
    drop(uml);
    for fs in [&xfs, &btrfs] {
        let d = fs.path();
        let cow = d.join("raw.cow");
        let what = "kernel-made COW file";
        // Made by the kernel: version 3, 512-byte sectors, 4 KiB alignment.
        let head = fs::read(&cow).unwrap();
        let h = uml_integration_tests::uml_common::cow::parse_header(&head)
            .unwrap()
            .expect("a COW header");
        assert_eq!(
            (h.version, h.sectorsize, h.alignment),
            (Version::V3, 512, 4096)
        );
        let img = d.join("merged.img");
        moo(false, &[&cow, &img]);
        same_bytes(&img, &d.join("expected.img"));
        fs::remove_file(&img).unwrap();
        let used = merge_three_ways(&cow, fs, true, what);
        assert!(used.ours * 4 < used.c, "{what}: {used:?}");
    }
}

// ---------------------------------------------------------------------
// Failures part-way through a sharing merge, injected into the real
// binary by strace (`-e inject=`): no build of ours carries a test hook.

/// An XFS with a backing file and a COW file whose dirty blocks include
/// some that merge to zeros (so that the sharing merge punches holes at
/// several places, one `fallocate` each). Returns the file system, the
/// COW file and Debian's merge of it.
fn punching_case(seed: u64) -> (LoopFs, PathBuf, PathBuf) {
    let fs = LoopFs::new(FsKind::Xfs, FS_MIB);
    let d = fs.path().to_path_buf();
    let mut rng = Rng::new(seed);
    let back = d.join("back.img");
    make_backing(&back, &mut rng);
    let cow = d.join("punch.cow");
    let geo = make_cow(&cow, &back, (Version::V3, 512, 4096), &mut rng, |i| {
        (i / 8) % 10 == 3
    });
    // Every fourth dirty 4 KiB block gets zeros in the COW file: on the
    // clone, whose block held the backing file's data, it becomes a hole.
    let f = File::options().write(true).open(&cow).unwrap();
    let zeros = [0u8; 4096];
    for block in (0..geo.sectors / 8).filter(|b| b % 40 == 3) {
        f.write_all_at(&zeros, geo.data_offset + block * 4096)
            .unwrap();
    }
    f.sync_all().unwrap();
    drop(f);
    let c_img = d.join("c.img");
    moo(true, &[&cow, &c_img]);
    (fs, cow, c_img)
}

/// In `dir`: a backing file, a version-3 COW file as the kernel makes
/// them (sectors of 512 bytes, alignment 4096) whose sector `i` is dirty
/// when `dirty(i)`, and Debian's merge of it. Returns the backing file,
/// the COW file and Debian's image.
fn kernel_like_case(
    dir: &Path,
    seed: u64,
    dirty: impl Fn(u64) -> bool,
) -> (PathBuf, PathBuf, PathBuf) {
    let mut rng = Rng::new(seed);
    let back = dir.join("back.img");
    make_backing(&back, &mut rng);
    let cow = dir.join("case.cow");
    make_cow(&cow, &back, (Version::V3, 512, 4096), &mut rng, dirty);
    let c_img = dir.join("c.img");
    moo(true, &[&cow, &c_img]);
    (back, cow, c_img)
}

/// Runs our `uml_moo` under strace with `inject` (an `-e inject=` rule),
/// tracing `trace`; returns the run and the trace.
fn moo_injected(trace: &str, inject: &str, args: &[&Path], log: &Path) -> (RunOutput, String) {
    moo_traced(trace, Some(inject), args, log)
}

/// Runs our `uml_moo` under strace tracing `trace`, with an `-e inject=`
/// rule if given; returns the run and the trace.
fn moo_traced(
    trace: &str,
    inject: Option<&str>,
    args: &[&Path],
    log: &Path,
) -> (RunOutput, String) {
    let mut cmd = Command::new("strace");
    cmd.arg("-f")
        .arg("-o")
        .arg(log)
        .arg("-e")
        .arg(format!("trace={trace}"));
    if let Some(inject) = inject {
        cmd.arg("-e").arg(format!("inject={inject}"));
    }
    cmd.arg(workspace_bin("uml_moo")).args(args);
    let out = run_with_timeout(&mut cmd, LIMIT);
    let trace = fs::read_to_string(log).unwrap_or_default();
    (out, trace)
}

/// The clone succeeded and the first holes were punched, then punching
/// fails (the third `fallocate` gets `EIO`): ours abandons the shared
/// image, empties it and takes the copying path. The image is still
/// Debian's byte for byte, never less sparse, never more new space.
#[test]
fn a_sharing_merge_that_fails_part_way_falls_back_to_copying() {
    if !requirements(&[FsKind::Xfs])
        || !uml_integration_tests::require(Requirement::Program("strace", "strace"))
    {
        return;
    }
    let (fs, cow, c_img) = punching_case(19);
    let d = fs.path();
    let o_img = d.join("o.img");
    // The trace goes elsewhere: it must not count as new space.
    let log = std::env::temp_dir().join(format!("moo-strace-{}.log", std::process::id()));
    let f0 = fs.settled_free_bytes();
    let (out, trace) = moo_injected(
        "ioctl,fallocate,ftruncate",
        "fallocate:error=EIO:when=3",
        &[&cow, &o_img],
        &log,
    );
    let f1 = fs.free_bytes();
    let _ = fs::remove_file(&log);
    assert!(out.success() && out.stderr.is_empty(), "{out}\n{trace}");
    // It went as planned: a clone, two punches, the injected failure,
    // then the emptied file.
    let lines: Vec<&str> = trace.lines().collect();
    let clone = lines
        .iter()
        .position(|l| l.contains("FICLONERANGE") && l.ends_with("= 0"));
    let failed = lines
        .iter()
        .position(|l| l.contains("fallocate(") && l.contains("(INJECTED)"));
    let (Some(clone), Some(failed)) = (clone, failed) else {
        panic!("no clone or no injected punch failure:\n{trace}");
    };
    let punched = lines[clone..failed]
        .iter()
        .filter(|l| l.contains("fallocate(") && l.ends_with("= 0"))
        .count();
    assert_eq!(punched, 2, "{trace}");
    assert!(
        lines[failed..]
            .iter()
            .any(|l| l.contains("ftruncate(") && l.contains(", 0)")),
        "the shared image was not emptied:\n{trace}"
    );
    same_bytes(&o_img, &c_img);
    assert_never_less_sparse(&o_img, &c_img, "fallback after a failed punch");
    let c_len = File::open(&c_img).unwrap().metadata().unwrap().len();
    let used = f0.saturating_sub(f1);
    assert!(
        used <= c_len + (1 << 20),
        "the fallback took {used} bytes of new space for a {c_len}-byte image"
    );
}

/// A write failing part-way through a sharing merge (`ENOSPC` on the
/// third `pwrite64`): a clear error, exit status 1, and no image left
/// behind — neither the target nor a temporary file.
#[test]
fn a_write_failing_part_way_leaves_no_image() {
    if !requirements(&[FsKind::Xfs])
        || !uml_integration_tests::require(Requirement::Program("strace", "strace"))
    {
        return;
    }
    let (fs, cow, c_img) = punching_case(20);
    let d = fs.path();
    let o_img = d.join("o.img");
    let before: Vec<_> = fs::read_dir(d)
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    let log = std::env::temp_dir().join(format!("moo-strace-w-{}.log", std::process::id()));
    let (out, trace) = moo_injected(
        "ioctl,pwrite64",
        "pwrite64:error=ENOSPC:when=3",
        &[&cow, &o_img],
        &log,
    );
    let _ = fs::remove_file(&log);
    assert!(
        trace.contains("FICLONERANGE"),
        "not the sharing path:\n{trace}"
    );
    assert!(trace.contains("(INJECTED)"), "nothing injected:\n{trace}");
    assert_eq!(out.code, Some(1), "{out}");
    assert!(
        out.stderr_str().contains("No space left on device"),
        "unclear error: {out}"
    );
    let after: Vec<_> = fs::read_dir(d)
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(before, after, "files left behind");
    assert!(!o_img.exists());
    assert!(c_img.exists());
}

/// On btrfs a sharing merge starts the write-back of what it wrote every
/// 4 MiB of image (so that thousands of scattered dirty blocks do not
/// stall it in metadata reservations), in order and without gaps; on XFS
/// it never does (there it would only slow the merge). Either way the
/// image is Debian's. (Dirty single sectors: blocks that are only partly
/// dirty are merged and written, never cloned from the COW file.)
#[test]
fn sharing_merges_start_write_back_as_they_go_on_btrfs_only() {
    if !requirements(&[FsKind::Xfs, FsKind::Btrfs])
        || !uml_integration_tests::require(Requirement::Program("strace", "strace"))
    {
        return;
    }
    for kind in [FsKind::Btrfs, FsKind::Xfs] {
        let fs = LoopFs::new(kind, FS_MIB);
        let d = fs.path();
        let (_, cow, c_img) = kernel_like_case(d, 23, |i| i % 80 == 5);
        let o_img = d.join("o.img");
        let log = std::env::temp_dir().join(format!(
            "moo-strace-wb-{}-{}.log",
            kind.name(),
            std::process::id()
        ));
        let (out, trace) = moo_traced("ioctl,sync_file_range", None, &[&cow, &o_img], &log);
        let _ = fs::remove_file(&log);
        assert!(out.success() && out.stderr.is_empty(), "{out}\n{trace}");
        assert!(
            trace.contains("FICLONERANGE"),
            "not the sharing path:\n{trace}"
        );
        same_bytes(&o_img, &c_img);
        // sync_file_range(3, OFFSET, NBYTES, SYNC_FILE_RANGE_WRITE) = 0
        let calls: Vec<(u64, u64)> = trace
            .lines()
            .filter(|l| l.contains("sync_file_range("))
            .map(|l| {
                assert!(l.contains("SYNC_FILE_RANGE_WRITE)"), "{l}");
                let args: Vec<&str> = l.split(['(', ',', ')']).map(str::trim).collect();
                (args[2].parse().unwrap(), args[3].parse().unwrap())
            })
            .collect();
        if kind == FsKind::Btrfs {
            // 16 MiB of image: write-back started after 4, 8 and 12 MiB
            // (and after 16 when the 1 MiB windows reach it exactly).
            assert!(calls.len() >= 3, "{calls:?}\n{trace}");
            let mut next = calls[0].0;
            for &(off, len) in &calls {
                assert_eq!(off, next, "gap or overlap: {calls:?}");
                assert!(len >= 4 << 20, "{calls:?}");
                next = off + len;
            }
        } else {
            assert!(calls.is_empty(), "write-back started on XFS: {calls:?}");
        }
    }
}

/// A sharing merge normally reads on one thread and writes on another;
/// when no thread can be made (here: run as nobody with a process limit
/// of 1, so `clone3` fails with `EAGAIN`), it does both on one, with the
/// same result: Debian's bytes, the clone shared.
#[test]
fn without_a_second_thread_the_sharing_merge_is_the_same() {
    if !requirements(&[FsKind::Xfs])
        || !uml_integration_tests::require(Requirement::Program("strace", "strace"))
        || !uml_integration_tests::require(Requirement::Program("setpriv", "util-linux"))
        || !uml_integration_tests::require(Requirement::Program("prlimit", "util-linux"))
    {
        return;
    }
    use std::os::unix::fs::PermissionsExt;
    let fs = LoopFs::new(FsKind::Xfs, FS_MIB);
    let d = fs.path().join("nobody");
    fs::create_dir(&d).unwrap();
    fs::set_permissions(&d, fs::Permissions::from_mode(0o777)).unwrap();
    let (back, cow, c_img) = kernel_like_case(&d, 29, |i| (i / 8) % 7 == 2);
    for f in [&cow, &back] {
        fs::set_permissions(f, fs::Permissions::from_mode(0o644)).unwrap();
    }
    let o_img = d.join("o.img");
    let log = std::env::temp_dir().join(format!("moo-strace-nt-{}.log", std::process::id()));
    let f0 = fs.settled_free_bytes();
    let out = run_with_timeout(
        Command::new("strace")
            .arg("-f")
            .arg("-o")
            .arg(&log)
            .args(["-e", "trace=clone,clone3,ioctl"])
            .args([
                "setpriv",
                "--reuid=65534",
                "--regid=65534",
                "--clear-groups",
                "prlimit",
                "--nproc=1",
            ])
            .arg(workspace_bin("uml_moo"))
            .arg(&cow)
            .arg(&o_img),
        LIMIT,
    );
    let f1 = fs.free_bytes();
    let trace = fs::read_to_string(&log).unwrap_or_default();
    let _ = fs::remove_file(&log);
    assert!(out.success() && out.stderr.is_empty(), "{out}\n{trace}");
    assert!(
        trace.contains("FICLONERANGE"),
        "not the sharing path:\n{trace}"
    );
    assert!(
        trace
            .lines()
            .any(|l| l.contains("clone3(") && l.contains("EAGAIN")),
        "a thread was made after all:\n{trace}"
    );
    same_bytes(&o_img, &c_img);
    let c_len = File::open(&c_img).unwrap().metadata().unwrap().len();
    let used = f0.saturating_sub(f1);
    assert!(
        used < c_len / 2,
        "took {used} bytes of new space for a {c_len}-byte image: not shared"
    );
}

/// The `FICLONERANGE` calls of a trace: (source descriptor, source
/// offset, length, destination offset, succeeded).
fn clones_in(trace: &str) -> Vec<(u64, u64, u64, u64, bool)> {
    trace
        .lines()
        .filter(|l| l.contains("FICLONERANGE, {"))
        .map(|l| {
            let field = |name: &str| -> u64 {
                l.split(&format!("{name}="))
                    .nth(1)
                    .and_then(|r| r.split([',', '}']).next())
                    .and_then(|v| v.parse().ok())
                    .unwrap_or_else(|| panic!("no {name} in {l}"))
            };
            (
                field("src_fd"),
                field("src_offset"),
                field("src_length"),
                field("dest_offset"),
                l.ends_with("= 0"),
            )
        })
        .collect()
}

/// On btrfs, a COW file as the kernel writes them (whole dirty pages, data
/// area aligned): after the backing file, the dirty blocks are cloned
/// from the COW file too — nothing is written, the image is Debian's and
/// takes less new space than its dirty data. A COW file marked No_COW
/// (`chattr +C`), which btrfs will not share with a file that is not: one
/// clone fails, then its blocks are read and written — still Debian's.
#[test]
fn on_btrfs_dirty_blocks_are_cloned_from_the_cow_file() {
    if !requirements(&[FsKind::Btrfs])
        || !uml_integration_tests::require(Requirement::Program("strace", "strace"))
        || !uml_integration_tests::require(Requirement::Program("chattr", "e2fsprogs"))
    {
        return;
    }
    let fs = LoopFs::new(FsKind::Btrfs, FS_MIB);
    for no_cow in [false, true] {
        let d = fs.path().join(if no_cow { "nocow" } else { "cow" });
        fs::create_dir(&d).unwrap();
        if no_cow {
            // New files in the directory inherit No_COW: the COW file.
            let out = run_with_timeout(Command::new("chattr").arg("+C").arg(&d), LIMIT);
            assert!(out.success(), "{out}");
        }
        let (back, cow, c_img) = kernel_like_case(&d, 31, |i| (i / 8) % 10 == 4);
        if no_cow {
            // The backing file shared with the image: not No_COW.
            let plain = fs.path().join("back-plain.img");
            fs::copy(&back, &plain).unwrap();
            fs::remove_file(&back).unwrap();
            fs::rename(&plain, &back).unwrap();
            set_mtime(&back, MTIME);
        }
        let dirty = (File::open(&back).unwrap().metadata().unwrap().len() / 4096 / 10) * 4096;
        let o_img = fs.path().join(if no_cow { "o-nocow.img" } else { "o.img" });
        let log = std::env::temp_dir().join(format!("moo-strace-cc-{}.log", std::process::id()));
        let f0 = fs.settled_free_bytes();
        let (out, trace) = moo_traced("ioctl,pwrite64", None, &[&cow, &o_img], &log);
        let f1 = fs.settled_free_bytes();
        let _ = fs::remove_file(&log);
        assert!(out.success() && out.stderr.is_empty(), "{out}\n{trace}");
        same_bytes(&o_img, &c_img);
        let clones = clones_in(&trace);
        let Some(&(back_fd, 0, _, 0, true)) = clones.first() else {
            panic!("the backing file was not cloned first:\n{trace}");
        };
        let from_cow: Vec<_> = clones.iter().filter(|c| c.0 != back_fd).collect();
        let writes = trace.lines().filter(|l| l.contains("pwrite64(")).count();
        if no_cow {
            assert!(
                from_cow.len() == 1 && !from_cow[0].4,
                "one failed clone from the No_COW file expected: {from_cow:?}"
            );
            assert!(
                writes > 100,
                "its blocks were not written ({writes} writes)"
            );
        } else {
            assert!(
                from_cow.len() > 100 && from_cow.iter().all(|c| c.4),
                "{from_cow:?}"
            );
            assert!(
                from_cow
                    .iter()
                    .all(|c| c.1 % 4096 == 0 && c.2 % 4096 == 0 && c.3 % 4096 == 0),
                "{from_cow:?}"
            );
            // Only the partial block at the image's end is written.
            assert!(writes <= 1, "{writes} writes:\n{trace}");
            let used = f0.saturating_sub(f1);
            assert!(
                used < dirty,
                "{used} bytes of new space for {dirty} bytes of dirty blocks"
            );
        }
        fs::remove_file(&o_img).unwrap();
    }
}
