//! `bench-moo`: Debian's C `uml_moo` and ours side by side on a large COW
//! file: wall time (median of interleaved trials), peak RSS and output
//! sparseness, every output checked against an independent reference.
//!
//! Targets (issue 5): ours ≥ 10× faster than C for a new image from a full
//! backing file, ≥ 5× from a sparse one, ≥ 3× for `-d`; peak RSS ≤ 4 MiB;
//! outputs never less sparse than C's.
//!
//! Method:
//! 1. In a fresh temp dir (`--dir`, default `$TMPDIR`): a backing file of
//!    `--size-mib` MiB (default 1 GiB) of pseudo-random data ("full"), and
//!    one that is mostly holes with 64 KiB data extents over 1/16 of it
//!    ("sparse"); for each a version-3 COW file (sector 512, alignment
//!    4096) in which `--dirty-pct` % (default 10) of the 4 KiB blocks,
//!    chosen at random (seeded), are dirty — every 50th dirty block holds
//!    zeros, the others random data. Fixed mtimes.
//! 2. The reference: every block's expected content is generated again
//!    from the seeds (no file is read, no `uml_moo` code is used) and
//!    hashed; each output's hash and size must match.
//! 3. Scenarios, for each of `--trials` trials, C and ours interleaved
//!    (order alternating per trial), caches warm (never dropped):
//!    * `new full`: `uml_moo full.cow out.img`;
//!    * `new sparse`: `uml_moo sparse.cow out.img`;
//!    * `-d`: `uml_moo -d -b copy.img full.cow` on a copy of the full
//!      backing file (one copy per tool, restored and synced before each
//!      run, so only the merge's own writes are dirty). Ours syncs before
//!      it exits; C does not, so `fdatasync` of C's result is timed
//!      separately and shown as "C + sync".
//!
//!    * `floor` (after `new full`, same prewarm): `full.img` copied to a
//!      new file with `std::fs::copy` (`copy_file_range`, no user-space
//!      copy, no merge) — the least work any tool writing a new full
//!      image does, so C/floor is the best ratio reachable on this
//!      machine and file system.
//!
//!    * `floor -d` (after `-d`, on a third copy, same prewarm): only the
//!      dirty blocks' merged content, generated in memory before the
//!      clock starts, written with write-back started per MiB, then
//!      `fdatasync` — the disk work any durable `-d` does.
//!
//!    Each run goes through GNU `time -f %M` (peak RSS in KiB); the wall
//!    time covers the whole process. Right before each timed run (of
//!    either tool) a scratch file as large as what the run will write is
//!    written and deleted (`--no-prewarm` skips it): on VMs that hand
//!    freed guest memory back to the host (virtio-balloon free page
//!    reporting, here within ~1 s), the first large writer afterwards
//!    pays about 1 s per GiB for the host faulting it back in — that
//!    measures the hypervisor, not the tool, and hits whichever tool runs
//!    after a pause. Output sizes on disk (`st_blocks`) are compared as
//!    they stand after the run (new images: neither tool syncs) or after
//!    the sync (`-d`).
//! 4. The big files are removed at the end, on errors and on SIGINT,
//!    SIGTERM or SIGHUP (`--keep` keeps them).
//!
//! 5. Copy-on-write file systems (issue 17; root): for each of XFS
//!    (`reflink=1`) and btrfs, a file system of 4 GiB is made in a sparse
//!    file in `--dir` and loop-mounted ([`LoopFs`]); the full backing file
//!    and its COW file are written there, and per trial Debian's tool and
//!    ours (order alternating) merge into a new image on it, then the
//!    reference "dirty write": the dirty blocks' merged content (generated
//!    in memory before the clock starts) written into a new sparse file of
//!    the image's size (sized first), one `pwrite` per run of adjacent
//!    blocks, no sync
//!    (neither tool syncs a new image) — what any tool that shares the
//!    clean blocks must at least write. Same prewarm; outputs verified;
//!    new space per run by `statvfs` after `syncfs` (shared blocks count
//!    once). Targets: ours >= 20x C, and <= 1.5x the dirty write.
//!    Two more references: the sharing floor (the backing file cloned,
//!    the dirty blocks written into the clone from memory), and the same
//!    with what ours adds on that file system — on btrfs write-back
//!    started every 4 MiB, on XFS a copy-on-write extent size hint of one
//!    block (without it XFS reserves 32 blocks around each rewritten
//!    block, which could take more space than Debian's tool).
//!
//! Exit status: 0 when measured (whatever the verdict), 1 when `--enforce`
//! is given and a target is missed, 2 on errors (a wrong output included),
//! 130 when interrupted.
#![forbid(unsafe_code)]

use std::fs::{self, File};
use std::io::Read;
use std::os::unix::fs::{FileExt, MetadataExt};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant, UNIX_EPOCH};

use clap::{ArgMatches, Command as ClapCommand};
use nix::sys::signal::{killpg, Signal};
use nix::unistd::Pid;
use signal_hook::consts::{SIGHUP, SIGINT, SIGTERM};
use uml_bench::args::{flag, get, get_or, given, int, opt, path_opt, require_file, BUILD_HINT};
use uml_bench::driver::{failed, io_ctx, sibling, Error};
use uml_bench::stats::{median, median_u64};
use uml_common::cow::Header;
use uml_common::testrng::SplitMix64 as Rng;
use uml_integration_tests::loopfs::{FsKind, LoopFs};

const ABOUT: &str = "\
Times Debian's C uml_moo and ours on a large COW file (new image from a
full and from a sparse backing file, and -d), interleaved, and reports
median times, the ratios C/ours, peak RSS and output sizes on disk, with
PASS/FAIL against the targets (>= 10x, >= 5x, >= 3x, RSS <= 4 MiB); as
root also a new image on loop-mounted XFS (reflink) and btrfs, against C
(>= 20x) and against writing the dirty blocks alone (<= 1.5x).";

const BLOCK: usize = 4096;
const SECTOR: u32 = 512;
const ALIGN: u32 = 4096;
/// 2020-01-02 03:04:05 UTC.
const MTIME: u64 = 1_577_934_245;
const RSS_TARGET_KIB: u64 = 4096;

// ---------------------------------------------------------------------------
// Options
// ---------------------------------------------------------------------------

#[derive(Debug)]
struct Options {
    ours: PathBuf,
    c: PathBuf,
    time: PathBuf,
    dir: Option<PathBuf>,
    size_mib: u64,
    dirty_pct: u64,
    trials: usize,
    seed: u64,
    full: bool,
    sparse: bool,
    in_place: bool,
    /// Copy-on-write file systems to run the new-image case on.
    cow_fs: Vec<FsKind>,
    timeout: Duration,
    prewarm: bool,
    keep: bool,
    enforce: bool,
}

/// The command line of `bench-moo`.
fn command() -> ClapCommand {
    ClapCommand::new("bench-moo")
        .about(ABOUT)
        .arg(path_opt(
            "ours",
            "our uml_moo (default: beside this program, i.e. \
             target/x86_64-unknown-linux-gnu/release/uml_moo)",
        ))
        .arg(path_opt("c", "the C uml_moo (default /usr/bin/uml_moo)"))
        .arg(path_opt("time", "GNU time (default /usr/bin/time)"))
        .arg(
            opt(
                "dir",
                "DIR",
                "where the big files go (default $TMPDIR or /tmp)",
            )
            .value_parser(clap::value_parser!(PathBuf)),
        )
        .arg(
            opt("size-mib", "N", "backing file size in MiB (default 1024)")
                .value_parser(int(1u64, 1 << 20)),
        )
        .arg(
            opt(
                "dirty-pct",
                "N",
                "percentage of dirty 4 KiB blocks (default 10)",
            )
            .value_parser(int(0u64, 100)),
        )
        .arg(
            opt(
                "trials",
                "N",
                "timed runs per tool and scenario (default 5)",
            )
            .value_parser(int(1usize, 1000)),
        )
        .arg(
            opt("seed", "N", "seed of the generated data (default 1)")
                .value_parser(int(0u64, u64::MAX)),
        )
        .arg(
            opt(
                "only",
                "LIST",
                "scenarios, comma-separated: full,sparse,d,xfs,btrfs (default all; xfs and \
                 btrfs need root and are left out without it)",
            )
            .value_parser(scenarios),
        )
        .arg(
            opt("timeout-s", "N", "deadline of one run (default 300)")
                .value_parser(int(1u64, 86400)),
        )
        .arg(flag(
            "no-prewarm",
            "do not write and delete a scratch file of the output's size right before each \
             timed run (it keeps a VM's free page reporting from charging ~1 s/GiB of \
             page-cache refaults to whichever tool runs after a pause)",
        ))
        .arg(flag("keep", "keep the generated files"))
        .arg(flag("enforce", "exit 1 when a target is missed"))
}

/// `--only`: which of full, sparse, d, xfs and btrfs (in that order).
fn scenarios(list: &str) -> Result<[bool; 5], String> {
    let mut only = [false; 5];
    for item in list.split(',') {
        match item {
            "full" => only[0] = true,
            "sparse" => only[1] = true,
            "d" => only[2] = true,
            "xfs" => only[3] = true,
            "btrfs" => only[4] = true,
            other => return Err(format!("unknown scenario {other}")),
        }
    }
    Ok(only)
}

/// The options `m` gives, with the defaults for the others.
fn options(m: &ArgMatches) -> Result<Options, Error> {
    let only_given = m.contains_id("only");
    let [full, sparse, in_place, xfs, btrfs] = get_or(m, "only", [true; 5]);
    let root = nix::unistd::geteuid().is_root();
    if (xfs || btrfs) && !root {
        if only_given {
            return Err(failed(
                "xfs and btrfs need root (loop-mounted file systems)",
            ));
        }
        eprintln!("bench-moo: not root: leaving out the xfs and btrfs cases");
    }
    let cow_fs: Vec<FsKind> = [(xfs, FsKind::Xfs), (btrfs, FsKind::Btrfs)]
        .into_iter()
        .filter(|&(wanted, _)| wanted && root)
        .map(|(_, k)| k)
        .collect();
    let o = Options {
        ours: get_or(m, "ours", sibling("uml_moo")),
        c: get_or(m, "c", PathBuf::from("/usr/bin/uml_moo")),
        time: get_or(m, "time", PathBuf::from("/usr/bin/time")),
        dir: get(m, "dir"),
        size_mib: get_or(m, "size-mib", 1024),
        dirty_pct: get_or(m, "dirty-pct", 10),
        trials: get_or(m, "trials", 5),
        seed: get_or(m, "seed", 1),
        full,
        sparse,
        in_place,
        cow_fs,
        timeout: Duration::from_secs(get_or(m, "timeout-s", 300)),
        prewarm: !given(m, "no-prewarm"),
        keep: given(m, "keep"),
        enforce: given(m, "enforce"),
    };
    require_file("--ours", &o.ours, BUILD_HINT)?;
    require_file("--c", &o.c, " (Debian package uml-utilities)")?;
    require_file("--time", &o.time, " (Debian package `time`)")?;
    Ok(o)
}

// ---------------------------------------------------------------------------
// Deterministic data and the reference merge
// ---------------------------------------------------------------------------

/// Which backing file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Full,
    Sparse,
}

/// The generated data set: which blocks are dirty and what every block
/// holds, all derived from the seed.
#[derive(Debug)]
struct Plan {
    seed: u64,
    blocks: u64,
    /// Dirty blocks, one bit each.
    dirty: Vec<u64>,
    dirty_count: u64,
    /// Data extents of the sparse backing file, in 64 KiB units.
    sparse_data: Vec<u64>,
}

const EXTENT: u64 = 64 << 10;
const BLOCKS_PER_EXTENT: u64 = EXTENT / BLOCK as u64;

fn bit(v: &[u64], i: u64) -> bool {
    v.get((i / 64) as usize)
        .is_some_and(|w| w & (1 << (i % 64)) != 0)
}

fn set(v: &mut [u64], i: u64) {
    if let Some(w) = v.get_mut((i / 64) as usize) {
        *w |= 1 << (i % 64);
    }
}

impl Plan {
    fn new(size: u64, dirty_pct: u64, seed: u64) -> Plan {
        let blocks = size / BLOCK as u64;
        let mut rng = Rng::new(seed ^ 0x00d1_27b1);
        // Exactly dirty_pct % of the blocks: partial Fisher-Yates.
        let want = blocks * dirty_pct / 100;
        let mut idx: Vec<u32> = (0..blocks as u32).collect();
        let mut dirty = vec![0u64; blocks.div_ceil(64) as usize];
        for k in 0..want as usize {
            let j = k + (rng.next_u64() % (blocks - k as u64)) as usize;
            idx.swap(k, j);
            set(&mut dirty, u64::from(idx[k]));
        }
        // Sparse backing: 1/16 of the 64 KiB extents hold data.
        let extents = size / EXTENT;
        let mut sparse_data = vec![0u64; extents.div_ceil(64) as usize];
        for e in 0..extents {
            if rng.next_u64() % 16 == 0 {
                set(&mut sparse_data, e);
            }
        }
        Plan {
            seed,
            blocks,
            dirty,
            dirty_count: want,
            sparse_data,
        }
    }

    fn is_dirty(&self, block: u64) -> bool {
        bit(&self.dirty, block)
    }

    /// Block `i` of the backing file.
    fn backing_block(&self, kind: Kind, i: u64, buf: &mut [u8]) {
        if kind == Kind::Sparse && !bit(&self.sparse_data, i / BLOCKS_PER_EXTENT) {
            buf.fill(0);
            return;
        }
        Rng::new(self.seed.wrapping_mul(31).wrapping_add(i) ^ 0xbac0_0000_0000).fill(buf);
    }

    /// Block `i`'s copy in the COW file (dirty blocks only): random, every
    /// 50th one zero.
    fn cow_block(&self, kind: Kind, i: u64, buf: &mut [u8]) {
        if i % 50 == 7 {
            buf.fill(0);
            return;
        }
        let k = if kind == Kind::Full { 1 } else { 2 };
        Rng::new(self.seed.wrapping_mul(37).wrapping_add(i) ^ (0xc0e0_0000_0000 * k)).fill(buf);
    }

    /// The merged image's block `i`: the reference merge.
    fn merged_block(&self, kind: Kind, i: u64, buf: &mut [u8]) {
        if self.is_dirty(i) {
            self.cow_block(kind, i, buf);
        } else {
            self.backing_block(kind, i, buf);
        }
    }
}

/// A 64-bit hash of a byte stream (4 independent lanes of
/// xor-multiply-rotate over little-endian words, then the length).
#[derive(Debug, Clone)]
struct Hasher {
    lanes: [u64; 4],
    len: u64,
}

impl Hasher {
    fn new() -> Self {
        Hasher {
            lanes: [1, 2, 3, 4],
            len: 0,
        }
    }

    /// `buf.len()` must be a multiple of 32 except for the last call.
    fn update(&mut self, buf: &[u8]) {
        let mut chunks = buf.chunks_exact(32);
        for c in &mut chunks {
            for (lane, w) in self.lanes.iter_mut().zip(c.chunks_exact(8)) {
                let mut a = [0u8; 8];
                a.copy_from_slice(w);
                *lane = (*lane ^ u64::from_le_bytes(a))
                    .wrapping_mul(0x9e37_79b9_7f4a_7c15)
                    .rotate_left(29);
            }
        }
        for &b in chunks.remainder() {
            self.lanes[0] = (self.lanes[0] ^ u64::from(b))
                .wrapping_mul(0x9e37_79b9_7f4a_7c15)
                .rotate_left(29);
        }
        self.len += buf.len() as u64;
    }

    fn finish(&self) -> u64 {
        let mut h = self.len;
        for l in self.lanes {
            h = (h ^ l).wrapping_mul(0xff51_afd7_ed55_8ccd).rotate_left(31);
        }
        h
    }
}

fn reference_hash(plan: &Plan, kind: Kind) -> u64 {
    let mut h = Hasher::new();
    let mut buf = vec![0u8; BLOCK];
    for i in 0..plan.blocks {
        plan.merged_block(kind, i, &mut buf);
        h.update(&buf);
    }
    h.finish()
}

fn file_hash(path: &Path) -> Result<(u64, u64), Error> {
    let mut f = File::open(path).map_err(io_ctx(format!("opening {}", path.display())))?;
    let mut h = Hasher::new();
    let mut buf = vec![0u8; 1 << 20];
    loop {
        let mut n = 0;
        while n < buf.len() {
            match f.read(buf.get_mut(n..).unwrap_or_default()) {
                Ok(0) => break,
                Ok(k) => n += k,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                Err(e) => return Err(failed(format!("reading {}: {e}", path.display()))),
            }
        }
        if n == 0 {
            break;
        }
        h.update(buf.get(..n).unwrap_or_default());
    }
    Ok((h.finish(), h.len))
}

// ---------------------------------------------------------------------------
// Generating the files
// ---------------------------------------------------------------------------

fn set_mtime(path: &Path) -> Result<(), Error> {
    File::options()
        .write(true)
        .open(path)
        .and_then(|f| f.set_modified(UNIX_EPOCH + Duration::from_secs(MTIME)))
        .map_err(io_ctx(format!("setting the mtime of {}", path.display())))
}

/// Writes the backing file (data blocks only; holes stay holes).
fn write_backing(plan: &Plan, kind: Kind, path: &Path) -> Result<(), Error> {
    let f = File::create(path).map_err(io_ctx(format!("creating {}", path.display())))?;
    let per = 256u64; // blocks per write (1 MiB)
    let mut buf = vec![0u8; BLOCK * per as usize];
    let mut i = 0;
    while i < plan.blocks {
        let n = per.min(plan.blocks - i);
        // Write runs of non-zero blocks only: zero blocks stay holes.
        let mut run: Option<u64> = None;
        for k in 0..=n {
            let nonzero = k < n && {
                let b = buf
                    .get_mut(k as usize * BLOCK..(k as usize + 1) * BLOCK)
                    .unwrap_or_default();
                plan.backing_block(kind, i + k, b);
                b.iter().any(|&x| x != 0)
            };
            if nonzero {
                run.get_or_insert(k);
            } else if let Some(r) = run.take() {
                let bytes = buf
                    .get(r as usize * BLOCK..k as usize * BLOCK)
                    .unwrap_or_default();
                f.write_all_at(bytes, (i + r) * BLOCK as u64)
                    .map_err(io_ctx(format!("writing {}", path.display())))?;
            }
        }
        i += n;
    }
    f.set_len(plan.blocks * BLOCK as u64)
        .and_then(|()| f.sync_all())
        .map_err(io_ctx(format!("finishing {}", path.display())))?;
    drop(f);
    set_mtime(path)
}

/// Writes a v3 COW file for `backing` with the plan's dirty blocks.
fn write_cow(plan: &Plan, kind: Kind, backing: &Path, path: &Path) -> Result<(), Error> {
    let size = plan.blocks * BLOCK as u64;
    let name = backing.as_os_str().as_encoded_bytes();
    let header = Header::new_v3(name, MTIME as u32, size, SECTOR, ALIGN);
    let geo = header
        .geometry()
        .map_err(|e| failed(format!("COW geometry: {e}")))?;
    let bytes = header
        .encode()
        .map_err(|e| failed(format!("COW header: {e}")))?;
    let f = File::create(path).map_err(io_ctx(format!("creating {}", path.display())))?;
    let werr = io_ctx(format!("writing {}", path.display()));
    let mut bitmap = vec![0u8; geo.bitmap_len as usize];
    let mut buf = vec![0u8; BLOCK];
    let mut result = f.write_all_at(&bytes, 0);
    for i in 0..plan.blocks {
        if result.is_err() {
            break;
        }
        if plan.is_dirty(i) {
            if let Some(b) = bitmap.get_mut(i as usize) {
                *b = 0xff; // 8 sectors of 512 bytes per 4 KiB block
            }
            plan.cow_block(kind, i, &mut buf);
            result = f.write_all_at(&buf, geo.data_offset + i * BLOCK as u64);
        }
    }
    result
        .and_then(|()| f.write_all_at(&bitmap, geo.bitmap_offset))
        .and_then(|()| f.set_len(geo.cow_file_len()))
        .and_then(|()| f.sync_all())
        .map_err(werr)
}

/// Puts the backing content back into the dirty blocks of a `-d` copy,
/// syncs it and resets its mtime.
fn restore_copy(plan: &Plan, path: &Path) -> Result<(), Error> {
    let f = File::options()
        .write(true)
        .open(path)
        .map_err(io_ctx(format!("opening {}", path.display())))?;
    let mut buf = vec![0u8; BLOCK];
    for i in 0..plan.blocks {
        if plan.is_dirty(i) {
            plan.backing_block(Kind::Full, i, &mut buf);
            f.write_all_at(&buf, i * BLOCK as u64)
                .map_err(io_ctx(format!("restoring {}", path.display())))?;
        }
    }
    f.sync_all()
        .map_err(io_ctx(format!("syncing {}", path.display())))?;
    drop(f);
    set_mtime(path)
}

/// Writes and deletes `bytes` of zeros in `dir`, so that the page cache
/// the next run fills comes from recently freed, host-backed memory.
fn prewarm(dir: &Path, bytes: u64) -> Result<(), Error> {
    let path = dir.join("prewarm.tmp");
    let f = File::create(&path).map_err(io_ctx("creating the prewarm file"))?;
    let buf = vec![0u8; 1 << 20];
    let mut pos = 0;
    while pos < bytes {
        let n = (bytes - pos).min(buf.len() as u64) as usize;
        f.write_all_at(buf.get(..n).unwrap_or_default(), pos)
            .map_err(io_ctx("writing the prewarm file"))?;
        pos += n as u64;
    }
    drop(f);
    fs::remove_file(&path).map_err(io_ctx("removing the prewarm file"))
}

// ---------------------------------------------------------------------------
// Running one process
// ---------------------------------------------------------------------------

#[derive(Debug, Clone, Copy)]
struct Sample {
    secs: f64,
    rss_kib: u64,
}

/// Runs `time -f %M -o rss tool args` with a deadline; the wall time
/// covers the whole process.
fn run_tool(
    o: &Options,
    tool: &Path,
    args: &[&Path],
    dir: &Path,
    stop: &Arc<AtomicBool>,
) -> Result<Sample, Error> {
    let rss_file = dir.join("rss.txt");
    let mut cmd = Command::new(&o.time);
    cmd.arg("-f")
        .arg("%M")
        .arg("-o")
        .arg(&rss_file)
        .arg(tool)
        .args(args)
        .current_dir(dir)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .process_group(0);
    let what = format!("{} {:?}", tool.display(), args);
    let start = Instant::now();
    let mut child = cmd.spawn().map_err(io_ctx(format!("starting {what}")))?;
    let pgid = Pid::from_raw(i32::try_from(child.id()).unwrap_or(i32::MAX));
    // Watchdog: the deadline and interrupts end the process group.
    let done = Arc::new(Mutex::new(false));
    let fired = Arc::new(AtomicBool::new(false));
    let watch = {
        let (done, fired, stop) = (Arc::clone(&done), Arc::clone(&fired), Arc::clone(stop));
        let deadline = start + o.timeout;
        thread::spawn(move || loop {
            thread::sleep(Duration::from_millis(20));
            let guard = done.lock().unwrap_or_else(|p| p.into_inner());
            if *guard {
                return;
            }
            if Instant::now() >= deadline || stop.load(Ordering::SeqCst) {
                let _ = killpg(pgid, Signal::SIGKILL);
                fired.store(true, Ordering::SeqCst);
                return;
            }
        })
    };
    let mut out = Vec::new();
    let mut err = Vec::new();
    if let Some(mut p) = child.stdout.take() {
        let _ = p.read_to_end(&mut out);
    }
    if let Some(mut p) = child.stderr.take() {
        let _ = p.read_to_end(&mut err);
    }
    let status = child.wait();
    let secs = start.elapsed().as_secs_f64();
    *done.lock().unwrap_or_else(|p| p.into_inner()) = true;
    let _ = watch.join();
    if stop.load(Ordering::SeqCst) {
        return Err(Error::Interrupted);
    }
    if fired.load(Ordering::SeqCst) {
        return Err(failed(format!("{what}: no exit within {:?}", o.timeout)));
    }
    let status = status.map_err(io_ctx(format!("waiting for {what}")))?;
    if !status.success() || !out.is_empty() || !err.is_empty() {
        return Err(failed(format!(
            "{what}: {status}; stdout {:?}; stderr {:?}",
            String::from_utf8_lossy(&out),
            String::from_utf8_lossy(&err)
        )));
    }
    let rss_kib = fs::read_to_string(&rss_file)
        .ok()
        .and_then(|s| s.lines().last().and_then(|l| l.trim().parse().ok()))
        .ok_or_else(|| failed(format!("no peak RSS from {}", o.time.display())))?;
    Ok(Sample { secs, rss_kib })
}

// ---------------------------------------------------------------------------
// The benchmark
// ---------------------------------------------------------------------------

#[derive(Debug, Default)]
struct Series {
    secs: Vec<f64>,
    rss: Vec<u64>,
    blocks: Vec<u64>,
    sync_secs: Vec<f64>,
}

impl Series {
    /// The median of `v`; NaN for none.
    fn median(v: &[f64]) -> f64 {
        median(v.iter().copied()).unwrap_or(f64::NAN)
    }

    /// The median of `v`, rounded down; 0 for none.
    fn median_u(v: &[u64]) -> u64 {
        median_u64(v).map_or(0, |m| m as u64)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Scenario {
    NewFull,
    NewSparse,
    InPlace,
}

impl Scenario {
    fn name(self) -> &'static str {
        match self {
            Scenario::NewFull => "new image, full backing",
            Scenario::NewSparse => "new image, sparse backing",
            Scenario::InPlace => "-d (in place), full backing",
        }
    }

    fn target(self) -> f64 {
        match self {
            Scenario::NewFull => 10.0,
            Scenario::NewSparse => 5.0,
            Scenario::InPlace => 3.0,
        }
    }
}

fn check_interrupt(stop: &AtomicBool) -> Result<(), Error> {
    if stop.load(Ordering::SeqCst) {
        Err(Error::Interrupted)
    } else {
        Ok(())
    }
}

fn verify(path: &Path, want: u64, size: u64, what: &str) -> Result<(), Error> {
    let (h, len) = file_hash(path)?;
    if len != size || h != want {
        return Err(failed(format!(
            "{what}: output {} is wrong (size {len}, want {size}; hash {h:016x}, want {want:016x})",
            path.display()
        )));
    }
    Ok(())
}

fn blocks_of(path: &Path) -> Result<u64, Error> {
    fs::metadata(path)
        .map(|m| m.blocks() * 512)
        .map_err(io_ctx(format!("stat {}", path.display())))
}

fn run(o: &Options, stop: &Arc<AtomicBool>) -> Result<bool, Error> {
    let base = o.dir.clone().unwrap_or_else(std::env::temp_dir);
    let tmp = tempfile::Builder::new()
        .prefix("bench-moo-")
        .tempdir_in(&base)
        .map_err(io_ctx(format!("creating a temp dir in {}", base.display())))?;
    let dir = fs::canonicalize(tmp.path()).map_err(io_ctx("canonicalize"))?;
    let result = bench(o, &dir, stop);
    if o.keep {
        let kept = tmp.keep();
        eprintln!("bench-moo: files kept in {}", kept.display());
    } else if let Err(e) = tmp.close() {
        eprintln!("bench-moo: cannot remove {}: {e}", dir.display());
    }
    result
}

fn bench(o: &Options, dir: &Path, stop: &Arc<AtomicBool>) -> Result<bool, Error> {
    let size = o.size_mib << 20;
    let plan = Plan::new(size, o.dirty_pct, o.seed);
    let t0 = Instant::now();
    eprintln!(
        "bench-moo: {} MiB backing files, {} of {} 4 KiB blocks dirty (seed {}), in {}",
        o.size_mib,
        plan.dirty_count,
        plan.blocks,
        o.seed,
        dir.display()
    );
    let p = |n: &str| dir.join(n);
    let mut scenarios = Vec::new();
    let mut hashes = [0u64; 2];
    if !o.cow_fs.is_empty() {
        hashes[Kind::Full as usize] = reference_hash(&plan, Kind::Full);
    }
    for (kind, wanted) in [(Kind::Full, o.full || o.in_place), (Kind::Sparse, o.sparse)] {
        if !wanted {
            continue;
        }
        let (name, cow) = match kind {
            Kind::Full => ("full.img", "full.cow"),
            Kind::Sparse => ("sparse.img", "sparse.cow"),
        };
        write_backing(&plan, kind, &p(name))?;
        check_interrupt(stop)?;
        write_cow(&plan, kind, &p(name), &p(cow))?;
        check_interrupt(stop)?;
        hashes[kind as usize] = reference_hash(&plan, kind);
    }
    if o.full {
        scenarios.push(Scenario::NewFull);
    }
    if o.sparse {
        scenarios.push(Scenario::NewSparse);
    }
    if o.in_place {
        for n in ["copy-c.img", "copy-ours.img", "copy-floor.img"] {
            write_backing(&plan, Kind::Full, &p(n))?;
            check_interrupt(stop)?;
        }
        scenarios.push(Scenario::InPlace);
    }
    eprintln!(
        "bench-moo: files ready after {:.1} s; {} trials",
        t0.elapsed().as_secs_f64(),
        o.trials
    );

    let tools = [("C", o.c.as_path()), ("ours", o.ours.as_path())];
    let mut series: Vec<[Series; 2]> = scenarios.iter().map(|_| Default::default()).collect();
    let mut floor = Vec::new();
    let mut floor_d = Vec::new();
    let classic_trials = if scenarios.is_empty() { 0 } else { o.trials };
    for trial in 0..classic_trials {
        for (si, &sc) in scenarios.iter().enumerate() {
            let order: [usize; 2] = if trial % 2 == 0 { [0, 1] } else { [1, 0] };
            for t in order {
                check_interrupt(stop)?;
                let (label, tool) = tools[t];
                let what = format!("{label} {}", sc.name());
                let s = match sc {
                    Scenario::NewFull | Scenario::NewSparse => {
                        let (cow, kind) = if sc == Scenario::NewFull {
                            ("full.cow", Kind::Full)
                        } else {
                            ("sparse.cow", Kind::Sparse)
                        };
                        let out = p("out.img");
                        if o.prewarm {
                            prewarm(dir, size)?;
                        }
                        let s = run_tool(o, tool, &[Path::new(cow), &out], dir, stop)?;
                        series[si][t].blocks.push(blocks_of(&out)?);
                        verify(&out, hashes[kind as usize], size, &what)?;
                        fs::remove_file(&out).map_err(io_ctx("removing out.img"))?;
                        s
                    }
                    Scenario::InPlace => {
                        let copy = p(if t == 0 {
                            "copy-c.img"
                        } else {
                            "copy-ours.img"
                        });
                        if trial > 0 {
                            restore_copy(&plan, &copy)?;
                        }
                        if o.prewarm {
                            prewarm(dir, plan.dirty_count * BLOCK as u64)?;
                        }
                        let s = run_tool(
                            o,
                            tool,
                            &[
                                Path::new("-d"),
                                Path::new("-b"),
                                &copy,
                                Path::new("full.cow"),
                            ],
                            dir,
                            stop,
                        )?;
                        let t1 = Instant::now();
                        File::open(&copy)
                            .and_then(|f| f.sync_data())
                            .map_err(io_ctx("syncing the -d result"))?;
                        series[si][t].sync_secs.push(t1.elapsed().as_secs_f64());
                        series[si][t].blocks.push(blocks_of(&copy)?);
                        verify(&copy, hashes[Kind::Full as usize], size, &what)?;
                        s
                    }
                };
                series[si][t].secs.push(s.secs);
                series[si][t].rss.push(s.rss_kib);
            }
            if sc == Scenario::NewFull {
                floor.push(copy_floor(o, dir, size)?);
            }
            if sc == Scenario::InPlace {
                let copy = p("copy-floor.img");
                if trial > 0 {
                    restore_copy(&plan, &copy)?;
                }
                if o.prewarm {
                    prewarm(dir, plan.dirty_count * BLOCK as u64)?;
                }
                floor_d.push(write_floor(&plan, &copy)?);
                verify(&copy, hashes[Kind::Full as usize], size, "floor -d")?;
            }
        }
        eprintln!(
            "bench-moo: trial {}/{} done ({:.0} s)",
            trial + 1,
            o.trials,
            t0.elapsed().as_secs_f64()
        );
    }
    let mut ok = scenarios.is_empty() || report(o, &scenarios, &series, [&floor, &floor_d]);
    for &kind in &o.cow_fs {
        check_interrupt(stop)?;
        let r = bench_cow_fs(o, &plan, hashes[Kind::Full as usize], dir, kind, stop)?;
        ok &= report_cow_fs(o, kind, &r);
    }
    if !o.cow_fs.is_empty() {
        println!(
            "verdict with the copy-on-write cases: {}",
            if ok {
                "all targets met"
            } else {
                "targets missed"
            }
        );
    }
    Ok(ok)
}

/// Figures of the new-image case on a copy-on-write file system.
#[derive(Debug, Default)]
struct CowFsSeries {
    /// C, ours.
    tools: [Series; 2],
    /// New disk space per run: C, ours.
    space: [Vec<u64>; 2],
    /// The dirty blocks written alone.
    dirty_write: Vec<f64>,
    /// The backing file cloned, then the dirty blocks written into the
    /// clone (the least a sharing merge does; empty when cloning fails).
    clone_write: Vec<f64>,
    /// The same with what ours adds on this file system: on btrfs
    /// write-back started every 4 MiB of image, on XFS a copy-on-write
    /// extent size hint of one block (ours' guard against XFS reserving
    /// 32 blocks around each rewritten block).
    clone_write_as_ours: Vec<f64>,
}

/// Size of the loop file system (sparse): the backing file, its COW file
/// (data area mostly holes), C's full image, ours, and a prewarm file.
const COW_FS_MIB: u64 = 4096;

/// The new-image case on a loop-mounted `kind` (see the module doc, 5).
fn bench_cow_fs(
    o: &Options,
    plan: &Plan,
    want: u64,
    dir: &Path,
    kind: FsKind,
    stop: &Arc<AtomicBool>,
) -> Result<CowFsSeries, Error> {
    for r in kind.requirements() {
        if let Some(why) = r.missing() {
            return Err(failed(format!("{}: {why}", kind.name())));
        }
    }
    let size = plan.blocks * BLOCK as u64;
    let fs = LoopFs::new_in(dir, kind, COW_FS_MIB.max(4 * (size >> 20) + 512));
    let d = fs.path();
    let t0 = Instant::now();
    write_backing(plan, Kind::Full, &d.join("full.img"))?;
    check_interrupt(stop)?;
    write_cow(plan, Kind::Full, &d.join("full.img"), &d.join("full.cow"))?;
    eprintln!(
        "bench-moo: {}: files ready after {:.1} s",
        kind.name(),
        t0.elapsed().as_secs_f64()
    );
    // The dirty blocks' merged content, before any clock starts.
    let runs = dirty_runs(plan);
    let tools = [("C", o.c.as_path()), ("ours", o.ours.as_path())];
    let mut r = CowFsSeries::default();
    let out = d.join("out.img");
    for trial in 0..o.trials {
        let order: [usize; 2] = if trial % 2 == 0 { [0, 1] } else { [1, 0] };
        for t in order {
            check_interrupt(stop)?;
            let (label, tool) = tools[t];
            if o.prewarm {
                prewarm(d, size)?;
            }
            let before = fs.settled_free_bytes();
            let s = run_tool(o, tool, &[Path::new("full.cow"), &out], d, stop)?;
            r.space[t].push(before.saturating_sub(fs.free_bytes()));
            verify(&out, want, size, &format!("{label} on {}", kind.name()))?;
            fs::remove_file(&out).map_err(io_ctx("removing out.img"))?;
            r.tools[t].secs.push(s.secs);
            r.tools[t].rss.push(s.rss_kib);
        }
        if o.prewarm {
            prewarm(d, size)?;
        }
        let _ = fs.settled_free_bytes();
        r.dirty_write.push(dirty_write(&runs, size, &out)?);
        fs::remove_file(&out).map_err(io_ctx("removing out.img"))?;
        if o.prewarm {
            prewarm(d, size)?;
        }
        let _ = fs.settled_free_bytes();
        if let Some(secs) = clone_write(&runs, &d.join("full.img"), &out, None, None)? {
            r.clone_write.push(secs);
        }
        fs::remove_file(&out).map_err(io_ctx("removing out.img"))?;
        if o.prewarm {
            prewarm(d, size)?;
        }
        let _ = fs.settled_free_bytes();
        let (behind, hint) = match kind {
            FsKind::Btrfs => (Some(4 << 20), None),
            _ => (None, Some(BLOCK as u32)),
        };
        if let Some(secs) = clone_write(&runs, &d.join("full.img"), &out, behind, hint)? {
            r.clone_write_as_ours.push(secs);
        }
        fs::remove_file(&out).map_err(io_ctx("removing out.img"))?;
        eprintln!(
            "bench-moo: {} trial {}/{} done ({:.0} s)",
            kind.name(),
            trial + 1,
            o.trials,
            t0.elapsed().as_secs_f64()
        );
    }
    Ok(r)
}

/// The dirty blocks' merged content, one buffer per run of adjacent
/// blocks, with the run's image offset.
fn dirty_runs(plan: &Plan) -> Vec<(u64, Vec<u8>)> {
    let mut runs: Vec<(u64, Vec<u8>)> = Vec::new();
    let mut buf = vec![0u8; BLOCK];
    for i in 0..plan.blocks {
        if !plan.is_dirty(i) {
            continue;
        }
        plan.merged_block(Kind::Full, i, &mut buf);
        match runs.last_mut() {
            Some((start, data)) if *start + data.len() as u64 == i * BLOCK as u64 => {
                data.extend_from_slice(&buf);
            }
            _ => runs.push((i * BLOCK as u64, buf.clone())),
        }
    }
    runs
}

/// Writing the dirty data alone: a new file at `path` of `size` bytes
/// (set first: on XFS extending a file after writing makes the kernel
/// write back everything up to the new end at once), `runs` written into
/// it; no sync. Returns the seconds taken.
fn dirty_write(runs: &[(u64, Vec<u8>)], size: u64, path: &Path) -> Result<f64, Error> {
    let t = Instant::now();
    let f = File::create(path).map_err(io_ctx(format!("creating {}", path.display())))?;
    f.set_len(size)
        .map_err(io_ctx(format!("sizing {}", path.display())))?;
    for (off, data) in runs {
        f.write_all_at(data, *off)
            .map_err(io_ctx(format!("writing {}", path.display())))?;
    }
    drop(f);
    Ok(t.elapsed().as_secs_f64())
}

/// The sharing floor: the backing file cloned whole into a new file at
/// `path` (`FICLONERANGE`, as ours does), then `runs` written into the
/// clone from memory; no sync. What any sharing merge must pay: the file
/// system's copy-on-write of every dirty block. `None` when the file
/// system refuses the clone. With `write_behind`, write-back of the
/// written part is started (`sync_file_range`) after every that many
/// bytes of image; with `cow_hint`, the clone's copy-on-write extent size
/// hint is set to that many bytes before the writes (XFS).
fn clone_write(
    runs: &[(u64, Vec<u8>)],
    backing: &Path,
    path: &Path,
    write_behind: Option<u64>,
    cow_hint: Option<u32>,
) -> Result<Option<f64>, Error> {
    let src = File::open(backing).map_err(io_ctx(format!("opening {}", backing.display())))?;
    let len = src
        .metadata()
        .map_err(io_ctx(format!("stat {}", backing.display())))?
        .len();
    let t = Instant::now();
    let f = File::create(path).map_err(io_ctx(format!("creating {}", path.display())))?;
    if uml_common::sys::reflink::clone_range(&src, 0, len, &f, 0).is_err() {
        return Ok(None);
    }
    if let Some(bytes) = cow_hint {
        uml_common::sys::reflink::set_cow_extent_size(&f, bytes).map_err(io_ctx(format!(
            "setting the cowextsize of {}",
            path.display()
        )))?;
    }
    let mut started = 0u64;
    for (off, data) in runs {
        f.write_all_at(data, *off)
            .map_err(io_ctx(format!("writing {}", path.display())))?;
        if let Some(every) = write_behind {
            let end = off + data.len() as u64;
            if end - started >= every {
                let _ = uml_common::sys::writeback::start_writeback(&f, started, end - started);
                started = end;
            }
        }
    }
    drop(f);
    Ok(Some(t.elapsed().as_secs_f64()))
}

/// Prints the copy-on-write case's table; whether its targets are met.
fn report_cow_fs(o: &Options, kind: FsKind, r: &CowFsSeries) -> bool {
    let [c, ours] = &r.tools;
    let (tc, to) = (Series::median(&c.secs), Series::median(&ours.secs));
    let tw = Series::median(&r.dirty_write);
    let (sc, so) = (Series::median_u(&r.space[0]), Series::median_u(&r.space[1]));
    let vs_c = tc / to;
    let vs_write = to / tw;
    let space_ok = r.space[1].iter().zip(&r.space[0]).all(|(o, c)| o <= c);
    let ok = vs_c >= 20.0 && vs_write <= 1.5 && space_ok;
    println!();
    println!(
        "uml_moo, new image on a loop-mounted {} ({}), {} MiB, {} % of 4 KiB blocks dirty, {} trials, medians",
        kind.name(),
        if kind == FsKind::Xfs { "reflink=1" } else { "defaults" },
        o.size_mib,
        o.dirty_pct,
        o.trials
    );
    println!();
    println!("| case | time | C / this | this / dirty write | new space | peak RSS |");
    println!("|---|---|---|---|---|---|");
    println!(
        "| C | {tc:.3} s | 1.0x | {:.1}x | {} MiB | {} KiB |",
        tc / tw,
        sc >> 20,
        Series::median_u(&c.rss)
    );
    println!(
        "| ours | {to:.3} s | {vs_c:.1}x (>= 20x {}) | {vs_write:.2}x (<= 1.5x {}) | {} MiB ({}) | {} KiB |",
        if vs_c >= 20.0 { "PASS" } else { "FAIL" },
        if vs_write <= 1.5 { "PASS" } else { "FAIL" },
        so >> 20,
        if space_ok { "never more than C: ok" } else { "MORE THAN C" },
        Series::median_u(&ours.rss)
    );
    println!(
        "| the dirty blocks written alone (new sparse file, no sync) | {tw:.3} s | {:.1}x | 1.0x | | |",
        tc / tw
    );
    if !r.clone_write.is_empty() {
        let tcw = Series::median(&r.clone_write);
        println!(
            "| the backing file cloned, then the dirty blocks written into the clone (the sharing floor, no sync) | {tcw:.3} s | {:.1}x | {:.2}x | | |",
            tc / tcw,
            tcw / tw
        );
        if !r.clone_write_as_ours.is_empty() {
            let tcb = Series::median(&r.clone_write_as_ours);
            let what = match kind {
                FsKind::Btrfs => "write-back started every 4 MiB",
                _ => "a copy-on-write extent size hint of one block",
            };
            println!(
                "| the sharing floor with {what}, as ours | {tcb:.3} s | {:.1}x | {:.2}x | | |",
                tc / tcb,
                tcb / tw
            );
            println!();
            println!("ours / the sharing floor with {what}: {:.2}x", to / tcb);
        }
        println!();
        println!("ours / the sharing floor: {:.2}x", to / tcw);
    }
    ok
}

/// The least work a new full image needs: the backing file copied to a
/// new file inside the kernel (no merge, no user-space copy), timed the
/// same way as the tools (after the same prewarm).
fn copy_floor(o: &Options, dir: &Path, size: u64) -> Result<f64, Error> {
    let out = dir.join("floor.img");
    if o.prewarm {
        prewarm(dir, size)?;
    }
    let t = Instant::now();
    fs::copy(dir.join("full.img"), &out).map_err(io_ctx("copying full.img (floor)"))?;
    let secs = t.elapsed().as_secs_f64();
    fs::remove_file(&out).map_err(io_ctx("removing floor.img"))?;
    Ok(secs)
}

/// The least work a durable `-d` needs: every dirty block's merged
/// content (generated before the clock starts) written into `path`, one
/// `pwrite` per run of adjacent dirty blocks, write-back started every
/// MiB of image, then `fdatasync`. No COW reads, no zero checks.
fn write_floor(plan: &Plan, path: &Path) -> Result<f64, Error> {
    let mut runs: Vec<(u64, Vec<u8>)> = Vec::new();
    let mut buf = vec![0u8; BLOCK];
    for i in 0..plan.blocks {
        if !plan.is_dirty(i) {
            continue;
        }
        plan.merged_block(Kind::Full, i, &mut buf);
        match runs.last_mut() {
            Some((start, data)) if *start + data.len() as u64 == i * BLOCK as u64 => {
                data.extend_from_slice(&buf);
            }
            _ => runs.push((i * BLOCK as u64, buf.clone())),
        }
    }
    let f = File::options()
        .write(true)
        .open(path)
        .map_err(io_ctx(format!("opening {}", path.display())))?;
    let t = Instant::now();
    let mut window = 0u64;
    for (off, data) in &runs {
        if off >> 20 != window {
            let _ = uml_common::sys::writeback::start_writeback(&f, window << 20, 1 << 20);
            window = off >> 20;
        }
        f.write_all_at(data, *off)
            .map_err(io_ctx(format!("writing {}", path.display())))?;
    }
    f.sync_data()
        .map_err(io_ctx(format!("syncing {}", path.display())))?;
    let secs = t.elapsed().as_secs_f64();
    drop(f);
    set_mtime(path)?;
    Ok(secs)
}

fn report(
    o: &Options,
    scenarios: &[Scenario],
    series: &[[Series; 2]],
    [floor, floor_d]: [&[f64]; 2],
) -> bool {
    let mut ok = true;
    println!();
    println!(
        "uml_moo: C ({}) vs ours ({}), {} MiB, {} % of 4 KiB blocks dirty, {} trials, medians, {}",
        o.c.display(),
        o.ours.display(),
        o.size_mib,
        o.dirty_pct,
        o.trials,
        if o.prewarm {
            "prewarmed"
        } else {
            "not prewarmed"
        }
    );
    println!();
    println!(
        "| scenario | C | ours | C / ours | target | peak RSS C | peak RSS ours (max) | on disk C | on disk ours |"
    );
    println!("|---|---|---|---|---|---|---|---|---|");
    for (sc, [c, ours]) in scenarios.iter().zip(series) {
        let (tc, to) = (Series::median(&c.secs), Series::median(&ours.secs));
        let ratio = tc / to;
        let pass = ratio >= sc.target();
        ok &= pass;
        let (dc, d_o) = (Series::median_u(&c.blocks), Series::median_u(&ours.blocks));
        let sparse_ok = d_o <= dc;
        ok &= sparse_ok;
        let rss_max = ours.rss.iter().copied().max().unwrap_or(0);
        println!(
            "| {} | {:.3} s | {:.3} s | {:.1}x | >= {:.0}x {} | {} KiB | {} KiB ({}) | {} MiB | {} MiB {} |",
            sc.name(),
            tc,
            to,
            ratio,
            sc.target(),
            if pass { "PASS" } else { "FAIL" },
            Series::median_u(&c.rss),
            Series::median_u(&ours.rss),
            rss_max,
            dc >> 20,
            d_o >> 20,
            if sparse_ok { "ok" } else { "LESS SPARSE" }
        );
        if *sc == Scenario::NewFull && !floor.is_empty() {
            let tf = Series::median(floor);
            println!(
                "| floor: plain copy of the backing file (std::fs::copy = copy_file_range) | {tc:.3} s | {tf:.3} s | {:.1}x | (the best ratio any tool writing this image reaches here) | | | | |",
                tc / tf
            );
        }
        if *sc == Scenario::InPlace {
            let tcs = tc + Series::median(&c.sync_secs);
            let tos = to + Series::median(&ours.sync_secs);
            println!(
                "| -d, C + fdatasync of its result | {tcs:.3} s | {tos:.3} s | {:.1}x | (same work: ours syncs itself) | | | | |",
                tcs / tos
            );
            if !floor_d.is_empty() {
                let tf = Series::median(floor_d);
                println!(
                    "| floor: the dirty blocks written from memory + write-back + fdatasync | {tc:.3} s | {tf:.3} s | {:.1}x | (the best ratio a tool that syncs reaches here; C + sync / floor {:.1}x) | | | | |",
                    tc / tf,
                    tcs / tf
                );
            }
        }
    }
    let rss_max = series
        .iter()
        .flat_map(|s| s[1].rss.iter().copied())
        .max()
        .unwrap_or(0);
    let rss_ok = rss_max <= RSS_TARGET_KIB;
    ok &= rss_ok;
    println!();
    println!(
        "peak RSS of ours: max {rss_max} KiB (target <= {RSS_TARGET_KIB} KiB): {}",
        if rss_ok { "PASS" } else { "FAIL" }
    );
    println!(
        "verdict: {}",
        if ok {
            "all targets met"
        } else {
            "targets missed"
        }
    );
    ok
}

fn main() -> ExitCode {
    let stop = Arc::new(AtomicBool::new(false));
    for sig in [SIGINT, SIGTERM, SIGHUP] {
        if let Err(e) = signal_hook::flag::register(sig, Arc::clone(&stop)) {
            eprintln!("bench-moo: cannot handle signal {sig}: {e}");
            return ExitCode::from(2);
        }
    }
    uml_bench::args::main(
        "bench-moo",
        "temp dir removed",
        command(),
        std::env::args_os().skip(1),
        options,
        |o| {
            let enforce = o.enforce;
            run(&o, &stop).map(|ok| ok || !enforce)
        },
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::ffi::OsString;
    use uml_bench::args::{parse, Parsed};

    fn options_of(args: &[&str]) -> Result<Options, Error> {
        match parse(command(), args.iter().map(OsString::from))? {
            Parsed::Run(m) => options(&m),
            Parsed::Help(h) => panic!("help: {h}"),
        }
    }

    #[test]
    fn every_option() {
        command().debug_assert();
        let files = ["--ours", "/bin/sh", "--c", "/bin/sh", "--time", "/bin/sh"];
        let mut args = files.to_vec();
        args.extend([
            "--dir",
            "/tmp",
            "--size-mib",
            "8",
            "--dirty-pct",
            "0",
            "--trials",
            "2",
            "--seed",
            "42",
            "--only",
            "sparse,d",
            "--timeout-s",
            "60",
            "--no-prewarm",
            "--keep",
            "--enforce",
        ]);
        let o = options_of(&args).unwrap();
        assert_eq!(o.dir.as_deref(), Some(Path::new("/tmp")));
        assert_eq!((o.size_mib, o.dirty_pct, o.trials, o.seed), (8, 0, 2, 42));
        assert_eq!((o.full, o.sparse, o.in_place), (false, true, true));
        assert_eq!(o.timeout, Duration::from_secs(60));
        assert!(!o.prewarm && o.keep && o.enforce);
        let o = options_of(&files).unwrap();
        assert_eq!(
            (o.size_mib, o.trials, o.full, o.in_place),
            (1024, 5, true, true)
        );
        assert!(o.prewarm);
        for bad in [
            &["--only", "full,x"][..],
            &["--dirty-pct", "101"],
            &["--trials", "0"],
        ] {
            assert!(options_of(&[&files[..], bad].concat()).is_err(), "{bad:?}");
        }
    }
}
