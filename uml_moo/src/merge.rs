//! The merge engine: COW file + backing file → plain image, with large
//! I/O over runs of equal bitmap bits and bounded memory.
//!
//! The image is processed in aligned windows of [`WINDOW`] bytes. For each
//! window the bitmap (streamed through a [`BITMAP_WINDOW`]-byte buffer)
//! gives runs of dirty and clean sectors:
//!
//! * **new image**: clean bytes come from the backing file — one read over
//!   the window's clean data, holes of the backing file (`SEEK_DATA` /
//!   `SEEK_HOLE`) are not read at all; dirty bytes come from the COW data
//!   area, one read per run or one read over the window's dirty span when
//!   the runs are many. Then every 512-byte unit that is all zero is left
//!   out (a hole) and each run of non-zero units is written with one
//!   `pwrite`; the file is finally cut to its size. The C tool skips zero
//!   sectors one by one, so a skipped unit always lies in a block C leaves
//!   out too: the output is never less sparse than C's.
//! * **new image, sharing** ([`Merger::new_image_reflink`], XFS with
//!   reflink, btrfs): the image's whole blocks are cloned from the backing
//!   file (one `FICLONERANGE`), then only the blocks that dirty runs touch
//!   are rebuilt in the window buffer (their clean bytes from the backing
//!   file, their dirty bytes from the COW file) and written, or punched
//!   out when they merge to zeros (where C leaves a hole), and the
//!   partial block at the end is written. Clean blocks cost no I/O and no
//!   new space. On btrfs, blocks that are wholly dirty are cloned from
//!   the COW file as well (its data area block-aligned, as the kernel
//!   makes it): neither read nor written. Windows are prepared (read,
//!   checked for zeros) on the calling thread while a writer thread
//!   writes, punches and clones the one before (`Merger::reflink_piped`;
//!   both on one thread when no thread can be made). On btrfs the
//!   write-back of what was written is started every `WRITE_BEHIND` bytes
//!   of image (see there). Where cloning is impossible, or a hole cannot
//!   be punched, the output is emptied and the copying merge runs.
//! * **in place** (`-d`): only dirty runs are read and written. A run of
//!   zero units is written only where the backing file is not already zero
//!   there (C's "Checking backing file for zeros"), so holes of the backing
//!   file stay holes.
//!
//!   Write-back of each window is started as soon as it is written, so
//!   the final `fdatasync` overlaps with the merge instead of following it.
//!
//! Memory: two window buffers, the bitmap buffer and the run list of one
//! window, whatever the image size.

use std::fs::File;
use std::io;
use std::os::fd::AsRawFd;
use std::os::unix::fs::FileExt;

use nix::errno::Errno;
use nix::unistd::{lseek, Whence};
use uml_common::cli::strerror;
use uml_common::cow::{next_run, Geometry};
use uml_common::sys::reflink::{clone_range, cow_extent_size, punch_hole, set_cow_extent_size};
use uml_common::sys::writeback::start_writeback;

/// Bytes of image handled per step (and the largest single read or write).
pub const WINDOW: usize = 1 << 20;
/// Granularity of hole detection in the output: one sector of the
/// smallest size, aligned in the file.
pub const UNIT: usize = 512;
/// Sharing merge on btrfs: write-back of the rebuilt blocks is started
/// after every this many bytes of image. Scattered dirty blocks are as
/// many separate delayed extents, each holding a metadata reservation; on
/// a file system with little free space for them, the writer otherwise
/// stalls in reservation flushes, thousands of times per GiB. Measured on
/// a 4.5 GiB btrfs, 1 GiB image, 10 % of 4 KiB blocks dirty: 0.78 s
/// without, 0.40 s with 2-4 MiB, 0.45 s with 8 MiB; on a 32 GiB btrfs
/// 0.46 s either way. On XFS (no such reservations) it made the same merge
/// 2.5x slower, so it is btrfs's only.
const WRITE_BEHIND: u64 = 4 << 20;
/// Bitmap bytes held at a time (covers 256 MiB of 512-byte sectors).
pub const BITMAP_WINDOW: usize = 64 << 10;
/// What a system call costs, in bytes copied: reading the gaps between
/// runs along with the runs pays when the gaps are smaller than this per
/// call saved (≈1.5 µs per call vs. ≈7 GB/s copying).
const CALL_COST_BYTES: u64 = 8 << 10;

/// Whether one read over a span with `gap` bytes between its `runs` runs
/// is cheaper than one read per run.
fn span_pays(gap: u64, runs: u64) -> bool {
    runs > 1 && gap < (runs - 1) * CALL_COST_BYTES
}

const UNITS: usize = WINDOW / UNIT;

/// What failed, with the C tool's `perror` prefixes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stage {
    /// Reading the bitmap.
    ReadBitmap,
    /// Reading sector data (COW or backing file).
    ReadData,
    /// Reading the backing file to see whether it is zero already.
    CheckZeros,
    /// Writing the output.
    WriteData,
    /// Setting the output's final size.
    Truncate,
    /// Syncing the merged backing file (`-d`).
    Sync,
}

impl Stage {
    /// The `perror` prefix.
    pub fn prefix(self) -> &'static str {
        match self {
            Stage::ReadBitmap => "Reading COW bitmap",
            Stage::ReadData => "Reading data",
            Stage::CheckZeros => "Checking backing file for zeros",
            Stage::WriteData => "Writing data",
            Stage::Truncate => "Setting the size of the output file",
            Stage::Sync => "Syncing backing file",
        }
    }
}

/// A failed merge step.
#[derive(Debug, thiserror::Error)]
#[error("{}: {}", .stage.prefix(), strerror(.error))]
pub struct MergeError {
    /// The step.
    pub stage: Stage,
    /// The error.
    pub error: io::Error,
}

fn at(stage: Stage) -> impl FnOnce(io::Error) -> MergeError {
    move |error| MergeError { stage, error }
}

/// Reads exactly `buf.len()` bytes at `off`; a short file is an error
/// ("unexpected end of file", where C prints `Success`).
pub fn read_full(file: &File, mut buf: &mut [u8], mut off: u64) -> io::Result<()> {
    while !buf.is_empty() {
        match file.read_at(buf, off) {
            Ok(0) => {
                return Err(io::Error::new(
                    io::ErrorKind::UnexpectedEof,
                    "unexpected end of file",
                ))
            }
            Ok(n) => {
                buf = buf.get_mut(n..).unwrap_or_default();
                off += n as u64;
            }
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

/// Whether every byte is zero (vectorisable: OR of 64-byte blocks).
pub fn is_zero(b: &[u8]) -> bool {
    let mut chunks = b.chunks_exact(64);
    for c in &mut chunks {
        if c.iter().fold(0u8, |a, &x| a | x) != 0 {
            return false;
        }
    }
    chunks.remainder().iter().all(|&x| x == 0)
}

/// The bitmap, read through a bounded window.
#[derive(Debug)]
struct Bitmap<'a> {
    file: &'a File,
    offset: u64,
    len: u64,
    buf: Vec<u8>,
    /// Bitmap byte index of `buf[0]`.
    start: u64,
    filled: usize,
}

impl<'a> Bitmap<'a> {
    fn new(file: &'a File, geo: &Geometry) -> Self {
        let cap = geo.bitmap_len.min(BITMAP_WINDOW as u64) as usize;
        Bitmap {
            file,
            offset: geo.bitmap_offset,
            len: geo.bitmap_len,
            buf: vec![0; cap],
            start: 0,
            filled: 0,
        }
    }

    /// The run of equal bits from `sector`, ending at most at `end` (and
    /// at the end of the buffered window: callers loop).
    fn run(&mut self, sector: u64, end: u64) -> io::Result<(bool, u64)> {
        let byte = sector / 8;
        if byte >= self.len {
            return Ok((false, end));
        }
        if byte < self.start || byte >= self.start + self.filled as u64 {
            let n = (self.len - byte).min(self.buf.len() as u64) as usize;
            let dst = self.buf.get_mut(..n).unwrap_or_default();
            read_full(self.file, dst, self.offset + byte)?;
            self.start = byte;
            self.filled = n;
        }
        let base = self.start * 8;
        let window_end = (self.start + self.filled as u64) * 8;
        let local_end = end.min(window_end);
        let bits = self.buf.get(..self.filled).unwrap_or_default();
        let (value, stop) = next_run(bits, sector - base, local_end - base);
        Ok((value, stop + base))
    }
}

/// Where a file has data and where holes (`SEEK_DATA`/`SEEK_HOLE`), asked
/// at increasing offsets; everything is data where the file system cannot
/// tell.
#[derive(Debug)]
struct DataMap<'a> {
    file: &'a File,
    len: u64,
    next_data: u64,
    next_hole: u64,
    probed: bool,
    unsupported: bool,
}

impl<'a> DataMap<'a> {
    fn new(file: &'a File, len: u64) -> Self {
        DataMap {
            file,
            len,
            next_data: 0,
            next_hole: 0,
            probed: false,
            unsupported: false,
        }
    }

    fn seek(&self, pos: u64, whence: Whence) -> Result<u64, Errno> {
        let off = i64::try_from(pos).map_err(|_| Errno::EOVERFLOW)?;
        lseek(self.file.as_raw_fd(), off, whence).map(|o| o.max(0) as u64)
    }

    fn probe(&mut self, pos: u64) {
        self.probed = true;
        match self.seek(pos, Whence::SeekData) {
            Ok(d) => {
                self.next_data = d.max(pos);
                self.next_hole = match self.seek(self.next_data, Whence::SeekHole) {
                    Ok(h) => h.max(self.next_data),
                    Err(_) => self.len,
                };
                if self.next_hole <= pos {
                    // Inconsistent answer (the file changed): read it.
                    self.unsupported = true;
                }
            }
            // No data at or after `pos`.
            Err(Errno::ENXIO) => {
                self.next_data = self.len.max(pos);
                self.next_hole = self.next_data;
            }
            Err(_) => self.unsupported = true,
        }
    }

    /// Whether `pos` is in data, and up to where that holds.
    fn at(&mut self, pos: u64) -> (bool, u64) {
        if self.unsupported || pos >= self.len {
            return (true, u64::MAX);
        }
        if !self.probed || pos >= self.next_hole {
            self.probe(pos);
            if self.unsupported {
                return (true, u64::MAX);
            }
        }
        if pos < self.next_data {
            (false, self.next_data)
        } else {
            (true, self.next_hole.max(pos + 1))
        }
    }
}

/// One run of equal bits inside a window (file offsets of the image).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Seg {
    start: u64,
    end: u64,
    dirty: bool,
}

/// Units of a window that may hold non-zero bytes.
#[derive(Debug)]
struct Marks([u64; UNITS / 64]);

impl Marks {
    fn clear(&mut self) {
        self.0 = [0; UNITS / 64];
    }

    /// Marks the units overlapping window bytes `[a, b)`.
    fn mark(&mut self, a: usize, b: usize) {
        if a >= b {
            return;
        }
        let first = a / UNIT;
        let last = (b - 1) / UNIT;
        for u in first..=last.min(UNITS - 1) {
            if let Some(w) = self.0.get_mut(u / 64) {
                *w |= 1 << (u % 64);
            }
        }
    }

    fn get(&self, u: usize) -> bool {
        self.0.get(u / 64).is_some_and(|w| w & (1 << (u % 64)) != 0)
    }
}

/// Counts of what a merge did (for tests and curiosity).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Stats {
    /// Bytes written to the output.
    pub written: u64,
    /// `pwrite` calls.
    pub writes: u64,
    /// Bytes taken from the COW file.
    pub from_cow: u64,
    /// Bytes of the image shared with the backing file (cloned, not
    /// written).
    pub cloned: u64,
    /// Bytes of the image shared with the COW file (its dirty blocks
    /// cloned, not written; btrfs).
    pub cloned_cow: u64,
}

impl Stats {
    /// Adds what `other` wrote.
    fn add_written(&mut self, other: &Stats) {
        self.writes += other.writes;
        self.written += other.written;
        self.cloned_cow += other.cloned_cow;
    }
}

/// Merges a COW file with its backing file.
#[derive(Debug)]
pub struct Merger<'a> {
    cow: &'a File,
    backing: &'a File,
    geo: Geometry,
    bitmap: Bitmap<'a>,
    data: DataMap<'a>,
    /// Bytes per window.
    window: usize,
    buf: Vec<u8>,
    cbuf: Vec<u8>,
    segs: Vec<Seg>,
    /// Backing-file data ranges of the window's clean runs.
    clean: Vec<(u64, u64)>,
    marks: Marks,
    /// Sharing merge: whole dirty blocks are cloned from the COW file
    /// (see [`Merger::new_image_reflink`]).
    clone_cow: bool,
    stats: Stats,
}

impl<'a> Merger<'a> {
    /// A merger for `cow` (whose header gave `geo`) and `backing`.
    pub fn new(cow: &'a File, backing: &'a File, geo: Geometry) -> Self {
        Self::with_window(cow, backing, geo, WINDOW)
    }

    /// A merger working in windows of `window` bytes (a multiple of
    /// [`UNIT`], at most [`WINDOW`]).
    fn with_window(cow: &'a File, backing: &'a File, geo: Geometry, window: usize) -> Self {
        let window = window.clamp(UNIT, WINDOW) / UNIT * UNIT;
        let buffer = (geo.image_len().min(window as u64)) as usize;
        Merger {
            cow,
            backing,
            geo,
            bitmap: Bitmap::new(cow, &geo),
            data: DataMap::new(backing, geo.size),
            window,
            buf: vec![0; buffer],
            cbuf: vec![0; buffer],
            segs: Vec::new(),
            clean: Vec::new(),
            marks: Marks([0; UNITS / 64]),
            clone_cow: false,
            stats: Stats::default(),
        }
    }

    /// The runs of window `[pos, wend)`.
    fn segments(&mut self, pos: u64, wend: u64) -> Result<(), MergeError> {
        self.segs.clear();
        let s = self.geo.sector_size;
        let end_sector = wend / s + u64::from(wend % s != 0);
        let mut p = pos;
        while p < wend {
            let (dirty, stop) = self
                .bitmap
                .run(p / s, end_sector)
                .map_err(at(Stage::ReadBitmap))?;
            let seg_end = stop.saturating_mul(s).min(wend).max(p + 1);
            match self.segs.last_mut() {
                Some(last) if last.dirty == dirty && last.end == p => last.end = seg_end,
                _ => self.segs.push(Seg {
                    start: p,
                    end: seg_end,
                    dirty,
                }),
            }
            p = seg_end;
        }
        Ok(())
    }

    /// Puts the COW data of the window's dirty runs at their window
    /// offsets (`x - pos` for image byte `x`) into `buf` (`to_buf`) or
    /// `cbuf`: one read per run, or one read over the span of all runs
    /// (into `cbuf`, then copied) when that copies less than the calls it
    /// saves would cost.
    fn read_dirty(&mut self, pos: u64, to_buf: bool) -> Result<(), MergeError> {
        let mut runs = 0u64;
        let mut bytes = 0u64;
        let mut first = None;
        let mut last = 0;
        for seg in self.segs.iter().filter(|s| s.dirty) {
            runs += 1;
            bytes += seg.end - seg.start;
            first.get_or_insert(seg.start);
            last = seg.end;
        }
        let Some(first) = first else {
            return Ok(());
        };
        self.stats.from_cow += bytes;
        let data_offset = self.geo.data_offset;
        if span_pays(last - first - bytes, runs) {
            let dst = self
                .cbuf
                .get_mut((first - pos) as usize..(last - pos) as usize)
                .unwrap_or_default();
            read_full(self.cow, dst, data_offset + first).map_err(at(Stage::ReadData))?;
            if to_buf {
                for seg in self.segs.iter().filter(|s| s.dirty) {
                    let (a, b) = ((seg.start - pos) as usize, (seg.end - pos) as usize);
                    if let (Some(dst), Some(src)) = (self.buf.get_mut(a..b), self.cbuf.get(a..b)) {
                        dst.copy_from_slice(src);
                    }
                }
            }
        } else {
            let target = if to_buf {
                &mut self.buf
            } else {
                &mut self.cbuf
            };
            for seg in self.segs.iter().filter(|s| s.dirty) {
                let dst = target
                    .get_mut((seg.start - pos) as usize..(seg.end - pos) as usize)
                    .unwrap_or_default();
                read_full(self.cow, dst, data_offset + seg.start).map_err(at(Stage::ReadData))?;
            }
        }
        Ok(())
    }

    /// Merges into `out`, a new (empty) file or a device. With
    /// `keep_holes`, all-zero units are not written and the file is cut to
    /// the image size at the end (regular files); without, everything is
    /// written (devices, whose old content must be overwritten).
    pub fn new_image(&mut self, out: &File, keep_holes: bool) -> Result<Stats, MergeError> {
        let total = self.geo.image_len();
        let mut pos = 0u64;
        while pos < total {
            self.new_window(pos, out, keep_holes)?;
            pos += self.window as u64;
        }
        if keep_holes && out.metadata().map_err(at(Stage::Truncate))?.len() != total {
            // Not when the size is right already: on XFS a truncate, even
            // to the same size, makes the last close flush the file.
            out.set_len(total).map_err(at(Stage::Truncate))?;
        }
        Ok(self.stats)
    }

    /// Merges the window starting at `pos` into `out`.
    fn new_window(&mut self, pos: u64, out: &File, keep_holes: bool) -> Result<(), MergeError> {
        let total = self.geo.image_len();
        let wend = (pos + self.window as u64).min(total);
        let wlen = (wend - pos) as usize;
        self.segments(pos, wend)?;
        self.marks.clear();

        // Clean runs: backing data (one read over their span when that
        // pays), holes zeroed.
        let mut span: Option<(u64, u64)> = None;
        let mut data_runs = 0u64;
        let mut data_bytes = 0u64;
        self.clean.clear();
        for i in 0..self.segs.len() {
            let Some(seg) = self.segs.get(i).copied() else {
                break;
            };
            if seg.dirty {
                continue;
            }
            let mut p = seg.start;
            while p < seg.end {
                let (is_data, until) = self.data.at(p);
                let q = until.min(seg.end).max(p + 1);
                let (a, b) = ((p - pos) as usize, (q - pos) as usize);
                if is_data {
                    span = Some(match span {
                        Some((s, _)) => (s, q),
                        None => (p, q),
                    });
                    data_runs += 1;
                    data_bytes += q - p;
                    self.clean.push((p, q));
                    self.marks.mark(a, b);
                } else if let Some(dst) = self.buf.get_mut(a..b) {
                    dst.fill(0);
                }
                p = q;
            }
        }
        match span {
            Some((a, b)) if span_pays(b - a - data_bytes, data_runs) => {
                let dst = self
                    .buf
                    .get_mut((a - pos) as usize..(b - pos) as usize)
                    .unwrap_or_default();
                read_full(self.backing, dst, a).map_err(at(Stage::ReadData))?;
            }
            Some(_) => {
                for &(a, b) in &self.clean {
                    let dst = self
                        .buf
                        .get_mut((a - pos) as usize..(b - pos) as usize)
                        .unwrap_or_default();
                    read_full(self.backing, dst, a).map_err(at(Stage::ReadData))?;
                }
            }
            None => {}
        }

        // Dirty runs: from the COW file (after the span read above,
        // which may have covered them).
        self.read_dirty(pos, true)?;
        for seg in self.segs.iter().filter(|s| s.dirty) {
            self.marks
                .mark((seg.start - pos) as usize, (seg.end - pos) as usize);
        }

        let window = self.buf.get(..wlen).unwrap_or_default();
        if keep_holes {
            write_nonzero_units(out, window, pos, &self.marks, &mut self.stats)?;
        } else {
            out.write_all_at(window, pos)
                .map_err(at(Stage::WriteData))?;
            self.stats.writes += 1;
            self.stats.written += wlen as u64;
        }
        Ok(())
    }

    /// Merges into `out`, a new, empty regular file, by sharing the
    /// backing file's extents (see [`Reflink`]). `Ok(None)`: the file
    /// system cannot share them here (no reflink, another file system, an
    /// unaligned size) or gave up part-way; `out` is empty again and the
    /// caller merges with [`Merger::new_image`] (on a fresh `Merger`).
    pub fn new_image_reflink(&mut self, out: &File) -> Result<Option<Stats>, MergeError> {
        let total = self.geo.image_len();
        let Some(block) = clone_block(out) else {
            return Ok(None);
        };
        let shared = total / block * block;
        if shared == 0 || clone_range(self.backing, 0, shared, out, 0).is_err() {
            return give_up(out);
        }
        self.stats.cloned = shared;
        // XFS reserves 32 blocks around every write to shared blocks (its
        // copy-on-write extent size hint): for scattered dirty blocks that
        // is as much space as a full copy, until a background scan gives
        // it back. One block while merging; the default again after.
        let hint = cow_extent_size(out).ok();
        let narrowed = hint.is_some() && set_cow_extent_size(out, block as u32).is_ok();
        let r = Reflink { block, shared };
        // On btrfs, whole dirty blocks are cloned from the COW file too
        // when its data area is block-aligned there and on this file
        // system: no reading, no writing, no new data space. (XFS clones
        // them too slowly: 1.5 s for 26,214 blocks against 0.18 s to
        // write them.)
        self.clone_cow =
            is_btrfs(out) && self.geo.data_offset % block == 0 && same_file_system(self.cow, out);
        let mut pos = 0u64;
        let mut done = true;
        let piped = std::thread::scope(|scope| self.reflink_piped(scope, out, r));
        match piped {
            Some(result) => done = result?,
            None => {
                // No second thread: each window prepared, then applied.
                let mut writer = Writer::new(out, self.cow_source(), r, self.buf.len());
                let mut ops = Vec::new();
                while pos < total {
                    self.reflink_prepare(pos, r, &mut ops)?;
                    if !writer.apply(pos, &self.buf, &ops)? {
                        done = false;
                        break;
                    }
                    pos += self.window as u64;
                }
                self.stats.add_written(&writer.stats);
            }
        }
        if let (true, Some(h)) = (narrowed, hint) {
            let _ = set_cow_extent_size(out, h);
        }
        if !done {
            return give_up(out);
        }
        // Only when the tail left it short: on XFS even a truncate to
        // the same size makes the last close flush the file.
        let len = out.metadata().map_err(at(Stage::Truncate))?.len();
        if len != total {
            out.set_len(total).map_err(at(Stage::Truncate))?;
        }
        Ok(Some(self.stats))
    }

    /// The COW file and its data offset, for a writer that clones from
    /// it (when [`Merger::clone_cow`] is on).
    fn cow_source(&self) -> Option<(&'a File, u64)> {
        self.clone_cow.then_some((self.cow, self.geo.data_offset))
    }

    /// Prepares window `[pos, …)` of a sharing merge: the merged content
    /// of the blocks that hold dirty sectors (and of the uncloned tail)
    /// into `self.buf` (at window offsets), and into `ops` what
    /// [`Writer::apply`] must do with it — runs of non-zero blocks to
    /// write, runs of zero blocks to punch out of the clone; or, when
    /// every such block is wholly dirty and `clone_cow` is on, only the
    /// runs to clone from the COW file (nothing read).
    fn reflink_prepare(
        &mut self,
        pos: u64,
        r: Reflink,
        ops: &mut Vec<Op>,
    ) -> Result<(), MergeError> {
        ops.clear();
        let total = self.geo.image_len();
        let wend = (pos + self.window as u64).min(total);
        self.segments(pos, wend)?;
        // Blocks touched by dirty runs, and the tail past the clone.
        let touched = &mut self.clean;
        touched.clear();
        let mut add = |a: u64, b: u64| match touched.last_mut() {
            Some(last) if last.1 >= a => last.1 = last.1.max(b),
            _ => touched.push((a, b)),
        };
        for seg in self.segs.iter().filter(|s| s.dirty) {
            let a = (seg.start / r.block * r.block).max(pos);
            let b = seg.end.div_ceil(r.block).saturating_mul(r.block).min(wend);
            add(a, b);
        }
        if wend > r.shared {
            add(r.shared.max(pos), wend);
        }
        if self.clean.is_empty() {
            return Ok(());
        }
        // Every touched block wholly dirty (the kernel writes whole
        // pages), below the clone's end: cloned from the COW file.
        if self.clone_cow
            && wend <= r.shared
            && self
                .segs
                .iter()
                .all(|s| !s.dirty || (s.start % r.block == 0 && s.end % r.block == 0))
        {
            for &(a, b) in &self.clean {
                self.stats.from_cow += b - a;
                ops.push(Op::CloneCow(a, b));
            }
            return Ok(());
        }
        // Their clean bytes from the backing file (holes read as zeros).
        let mut k = 0;
        for &(a, b) in &self.clean {
            while self.segs.get(k).is_some_and(|s| s.end <= a) {
                k += 1;
            }
            for seg in self.segs.iter().skip(k) {
                if seg.start >= b {
                    break;
                }
                if seg.dirty {
                    continue;
                }
                let (x, y) = (seg.start.max(a), seg.end.min(b));
                let dst = self
                    .buf
                    .get_mut((x - pos) as usize..(y - pos) as usize)
                    .unwrap_or_default();
                read_full(self.backing, dst, x).map_err(at(Stage::ReadData))?;
            }
        }
        self.read_dirty(pos, true)?;
        for &range in &self.clean {
            block_ops(&self.buf, pos, range, r, ops);
        }
        Ok(())
    }

    /// The windows of a sharing merge on two threads: this one prepares
    /// them (reads, zero checks: [`Merger::reflink_prepare`]) while a
    /// writer thread applies the ones before ([`Writer::apply`]), with
    /// [`PIPE_BUFFERS`] window buffers going round. `None` when no thread
    /// can be made (nothing done yet); else whether every window was
    /// applied (`false`: a hole could not be punched, the caller gives up
    /// sharing).
    fn reflink_piped<'s>(
        &mut self,
        scope: &'s std::thread::Scope<'s, '_>,
        out: &'s File,
        r: Reflink,
    ) -> Option<Result<bool, MergeError>>
    where
        'a: 's,
    {
        use std::sync::mpsc;
        let total = self.geo.image_len();
        let (full_tx, full_rx) = mpsc::sync_channel::<Window>(PIPE_BUFFERS);
        let (free_tx, free_rx) = mpsc::channel::<Window>();
        let cow = self.cow_source();
        let len = self.buf.len();
        let writer = std::thread::Builder::new()
            .name("uml_moo writer".into())
            .spawn_scoped(scope, move || {
                let mut w = Writer::new(out, cow, r, len);
                for win in full_rx {
                    match w.apply(win.pos, &win.buf, &win.ops) {
                        Ok(true) => {}
                        other => return (other.map(|_| false), w.stats),
                    }
                    // The preparing side gone: it stopped on an error.
                    if free_tx.send(win).is_err() {
                        break;
                    }
                }
                (Ok(true), w.stats)
            })
            .ok()?;
        // Our own window buffer is one of them (given back at the end).
        let mut spare: Vec<Window> = (0..PIPE_BUFFERS)
            .map(|i| Window {
                pos: 0,
                buf: if i == 0 {
                    std::mem::take(&mut self.buf)
                } else {
                    vec![0; len]
                },
                ops: Vec::new(),
            })
            .collect();
        let mut failed = None;
        let mut pos = 0u64;
        while pos < total {
            let Some(mut win) = spare.pop().or_else(|| free_rx.recv().ok()) else {
                break; // the writer stopped (its result says why)
            };
            self.buf = std::mem::take(&mut win.buf);
            let prepared = self.reflink_prepare(pos, r, &mut win.ops);
            win.buf = std::mem::take(&mut self.buf);
            if let Err(e) = prepared {
                failed = Some(e);
                break;
            }
            win.pos = pos;
            if full_tx.send(win).is_err() {
                break;
            }
            pos += self.window as u64;
        }
        drop(full_tx);
        let joined = writer.join();
        // A window buffer back for the merger (the others are dropped).
        self.buf = spare
            .pop()
            .or_else(|| free_rx.try_recv().ok())
            .map_or_else(|| vec![0; len], |w| w.buf);
        let (applied, stats) = match joined {
            Ok(r) => r,
            Err(_) => (
                Err(MergeError {
                    stage: Stage::WriteData,
                    error: io::Error::other("the writer thread failed"),
                }),
                Stats::default(),
            ),
        };
        self.stats.add_written(&stats);
        Some(match (failed, applied) {
            (Some(e), _) => Err(e),
            (None, applied) => applied,
        })
    }

    /// Merges the dirty sectors into the backing file itself (opened
    /// read-write), then syncs it.
    pub fn in_place(&mut self) -> Result<Stats, MergeError> {
        let total = self.geo.image_len();
        let mut pos = 0u64;
        while pos < total {
            let wend = (pos + self.window as u64).min(total);
            self.segments(pos, wend)?;
            if self.segs.iter().any(|s| s.dirty) {
                self.read_dirty(pos, false)?;
                let writes = self.stats.writes;
                for i in 0..self.segs.len() {
                    match self.segs.get(i).copied() {
                        Some(seg) if seg.dirty => self.merge_run_in_place(pos, seg)?,
                        _ => {}
                    }
                }
                if self.stats.writes != writes {
                    // Let the disk work while the next windows are
                    // merged; the final fdatasync then waits only for
                    // the tail. A hint: failure changes nothing. (Per
                    // window measured faster than every 8 MiB written.)
                    let _ = start_writeback(self.backing, pos, wend - pos);
                }
            }
            pos = wend;
        }
        self.backing.sync_data().map_err(at(Stage::Sync))?;
        Ok(self.stats)
    }

    /// Writes one dirty run (its COW data in `cbuf`) into the backing
    /// file, leaving out zero units where the backing file is zero too.
    fn merge_run_in_place(&mut self, pos: u64, seg: Seg) -> Result<(), MergeError> {
        // Pieces: the run cut at unit boundaries (window offsets).
        let (a, b) = ((seg.start - pos) as usize, (seg.end - pos) as usize);
        let pieces = |from: usize| {
            let next = (from / UNIT + 1) * UNIT;
            next.min(b)
        };
        // Which zero pieces lie in backing data: read the backing file
        // over their span once.
        let mut check: Option<(usize, usize)> = None;
        let mut p = a;
        while p < b {
            let q = pieces(p);
            let zero = self.cbuf.get(p..q).is_some_and(is_zero);
            if zero {
                let (is_data, _) = self.data.at(pos + p as u64);
                if is_data {
                    check = Some(match check {
                        Some((s, _)) => (s, q),
                        None => (p, q),
                    });
                }
            }
            p = q;
        }
        if let Some((s, e)) = check {
            let dst = self.buf.get_mut(s..e).unwrap_or_default();
            read_full(self.backing, dst, pos + s as u64).map_err(at(Stage::CheckZeros))?;
        }
        // Write runs of pieces that change the backing file's bytes or are
        // non-zero.
        let mut run: Option<usize> = None;
        let mut p = a;
        while p <= b {
            let write = if p < b {
                let q = pieces(p);
                let cow_zero = self.cbuf.get(p..q).is_some_and(is_zero);
                // A zero piece outside the checked span lies in a hole of
                // the backing file; inside it, holes read back as zeros.
                let needs = !cow_zero
                    || matches!(check, Some((s, e)) if p >= s && q <= e
                        && !self.buf.get(p..q).is_some_and(is_zero));
                Some((q, needs))
            } else {
                None
            };
            match write {
                Some((q, true)) => {
                    run.get_or_insert(p);
                    p = q;
                }
                other => {
                    if let Some(r) = run.take() {
                        let src = self.cbuf.get(r..p).unwrap_or_default();
                        self.backing
                            .write_all_at(src, pos + r as u64)
                            .map_err(at(Stage::WriteData))?;
                        self.stats.writes += 1;
                        self.stats.written += (p - r) as u64;
                    }
                    match other {
                        Some((q, _)) => p = q,
                        None => break,
                    }
                }
            }
        }
        Ok(())
    }
}

/// The clone geometry of a new image: blocks of `block` bytes (the file
/// system's), the first `shared` bytes cloned from the backing file.
#[derive(Debug, Clone, Copy)]
struct Reflink {
    block: u64,
    shared: u64,
}

/// Window buffers of a sharing merge on two threads: one being
/// prepared while the other is written (a third measured no faster, and
/// 0.9 MiB more peak RSS).
const PIPE_BUFFERS: usize = 2;

/// What a sharing merge does in the clone.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Op {
    /// Write the merged bytes of image range `[start, end)`.
    Write(u64, u64),
    /// Punch image range `[start, end)` out of the clone (it merges to
    /// zeros).
    Punch(u64, u64),
    /// Clone image range `[start, end)` (whole blocks, all dirty) from
    /// the COW file.
    CloneCow(u64, u64),
}

/// Adds to `ops` what range `[a, b)` of the image (whole blocks, the last
/// one possibly cut at the image's end), whose merged bytes are in `buf`
/// at offsets from `pos`, needs: runs of non-zero blocks written, runs of
/// zero blocks punched (past the clone there is nothing to punch).
fn block_ops(buf: &[u8], pos: u64, (a, b): (u64, u64), r: Reflink, ops: &mut Vec<Op>) {
    let mut run: Option<(u64, bool)> = None;
    let mut p = a;
    while p <= b {
        let block = if p < b {
            let q = ((p / r.block + 1) * r.block).min(b);
            let src = buf.get((p - pos) as usize..(q - pos) as usize);
            Some((q, src.is_some_and(is_zero)))
        } else {
            None
        };
        match (run, block) {
            (Some((_, z)), Some((q, zero))) if z == zero => p = q,
            _ => {
                if let Some((s, zero)) = run.take() {
                    if zero {
                        let e = p.min(r.shared);
                        if s < e {
                            ops.push(Op::Punch(s, e));
                        }
                    } else {
                        ops.push(Op::Write(s, p));
                    }
                }
                match block {
                    Some((q, zero)) => {
                        run = Some((p, zero));
                        p = q;
                    }
                    None => break,
                }
            }
        }
    }
}

/// Whether `a` and `b` lie on the same file system (device).
fn same_file_system(a: &File, b: &File) -> bool {
    use std::os::unix::fs::MetadataExt;
    matches!((a.metadata(), b.metadata()), (Ok(x), Ok(y)) if x.dev() == y.dev())
}

/// A prepared window of a sharing merge: its merged bytes (at window
/// offsets from `pos`) and what to do with them.
#[derive(Debug)]
struct Window {
    pos: u64,
    buf: Vec<u8>,
    ops: Vec<Op>,
}

/// The writing side of a sharing merge.
struct Writer<'f> {
    out: &'f File,
    /// The COW file and its data offset, when blocks are cloned from it.
    cow: Option<(&'f File, u64)>,
    /// A clone from the COW file failed: its blocks are read and written
    /// from then on.
    clone_failed: bool,
    /// For those: a window's worth of buffer, and their ops.
    scratch: Vec<u8>,
    scratch_ops: Vec<Op>,
    r: Reflink,
    /// Start write-back every [`WRITE_BEHIND`] bytes (btrfs).
    write_behind: bool,
    /// Where the next write-back starts.
    started: u64,
    stats: Stats,
}

impl<'f> Writer<'f> {
    fn new(out: &'f File, cow: Option<(&'f File, u64)>, r: Reflink, window: usize) -> Self {
        Writer {
            out,
            cow,
            clone_failed: false,
            scratch: if cow.is_some() {
                vec![0; window]
            } else {
                Vec::new()
            },
            scratch_ops: Vec::new(),
            r,
            write_behind: is_btrfs(out),
            started: 0,
            stats: Stats::default(),
        }
    }

    /// Carries out `ops` of the window at `pos` (bytes in `buf`). `false`
    /// when a hole cannot be punched.
    fn apply(&mut self, pos: u64, buf: &[u8], ops: &[Op]) -> Result<bool, MergeError> {
        for &op in ops {
            let done = match op {
                Op::CloneCow(s, e) => self.clone_cow(s, e)?,
                other => self.apply_op(pos, buf, other)?,
            };
            if !done {
                return Ok(false);
            }
        }
        if self.write_behind {
            // Only writes leave pages to write back (clones and punches
            // do not).
            if let Some(end) = ops
                .iter()
                .filter_map(|op| match *op {
                    Op::Write(_, e) => Some(e),
                    Op::Punch(..) | Op::CloneCow(..) => None,
                })
                .max()
            {
                if end - self.started >= WRITE_BEHIND {
                    // A hint: failure changes nothing.
                    let _ = start_writeback(self.out, self.started, end - self.started);
                    self.started = end;
                }
            }
        }
        Ok(true)
    }

    /// A write or a punch. `false` when a hole cannot be punched.
    fn apply_op(&mut self, pos: u64, buf: &[u8], op: Op) -> Result<bool, MergeError> {
        match op {
            Op::Punch(s, e) => {
                if punch_hole(self.out, s, e - s).is_err() {
                    return Ok(false);
                }
            }
            Op::Write(s, e) => {
                let src = buf
                    .get((s - pos) as usize..(e - pos) as usize)
                    .unwrap_or_default();
                self.out
                    .write_all_at(src, s)
                    .map_err(at(Stage::WriteData))?;
                self.stats.writes += 1;
                self.stats.written += e - s;
            }
            Op::CloneCow(..) => return Ok(false),
        }
        Ok(true)
    }

    /// Image range `[s, e)` from the COW file: cloned, or — once a clone
    /// has failed (e.g. a COW file marked No_COW, which btrfs will not
    /// share with a file that is not) — read, and written or punched.
    fn clone_cow(&mut self, s: u64, e: u64) -> Result<bool, MergeError> {
        let Some((cow, data_offset)) = self.cow else {
            return Ok(false);
        };
        if !self.clone_failed {
            if clone_range(cow, data_offset + s, e - s, self.out, s).is_ok() {
                self.stats.cloned_cow += e - s;
                return Ok(true);
            }
            self.clone_failed = true;
        }
        let mut scratch = std::mem::take(&mut self.scratch);
        let mut ops = std::mem::take(&mut self.scratch_ops);
        let len = (e - s) as usize;
        if scratch.len() < len {
            scratch.resize(len, 0);
        }
        let result = (|| {
            let dst = scratch.get_mut(..len).unwrap_or_default();
            read_full(cow, dst, data_offset + s).map_err(at(Stage::ReadData))?;
            ops.clear();
            block_ops(&scratch, s, (s, e), self.r, &mut ops);
            for &op in &ops {
                if !self.apply_op(s, &scratch, op)? {
                    return Ok(false);
                }
            }
            Ok(true)
        })();
        self.scratch = scratch;
        self.scratch_ops = ops;
        result
    }
}

/// Whether `f` lies on btrfs, where every separate range of a file
/// written and not yet on disk holds a metadata reservation (some 256 KiB
/// with 16 KiB nodes) until it is written back.
fn is_btrfs(f: &File) -> bool {
    use nix::sys::statfs::{fstatfs, BTRFS_SUPER_MAGIC};
    fstatfs(f).is_ok_and(|s| s.filesystem_type() == BTRFS_SUPER_MAGIC)
}

/// The block size to clone and punch in on `out`'s file system
/// (`st_blksize`), if the merge can work in it: a power of two from
/// [`UNIT`] to [`WINDOW`], so that windows are whole blocks.
fn clone_block(out: &File) -> Option<u64> {
    use std::os::unix::fs::MetadataExt;
    let b = out.metadata().ok()?.blksize();
    (b.is_power_of_two() && (UNIT as u64..=WINDOW as u64).contains(&b)).then_some(b)
}

/// Abandons a reflink merge: `out` is emptied for the copying merge. A
/// file still empty is left alone: on ext4 a truncate to size 0 makes the
/// last close write the whole (copied) image back at once.
fn give_up(out: &File) -> Result<Option<Stats>, MergeError> {
    if out.metadata().map_err(at(Stage::Truncate))?.len() != 0 {
        out.set_len(0).map_err(at(Stage::Truncate))?;
    }
    Ok(None)
}

/// Checks that the whole bitmap can be read (C reads it up front).
pub fn check_bitmap(cow: &File, geo: &Geometry) -> Result<(), MergeError> {
    let len = cow.metadata().map_err(at(Stage::ReadBitmap))?.len();
    if len < geo.bitmap_offset + geo.bitmap_len {
        return Err(MergeError {
            stage: Stage::ReadBitmap,
            error: io::Error::new(io::ErrorKind::UnexpectedEof, "unexpected end of file"),
        });
    }
    Ok(())
}

/// Writes the runs of marked, non-zero units of `window` (image offset
/// `pos`) with one `pwrite` each.
fn write_nonzero_units(
    out: &File,
    window: &[u8],
    pos: u64,
    marks: &Marks,
    stats: &mut Stats,
) -> Result<(), MergeError> {
    let mut run: Option<usize> = None;
    let units = window.len().div_ceil(UNIT);
    for u in 0..=units {
        let keep = u < units && marks.get(u) && {
            let a = u * UNIT;
            let b = (a + UNIT).min(window.len());
            !window.get(a..b).is_some_and(is_zero)
        };
        if keep {
            run.get_or_insert(u * UNIT);
        } else if let Some(r) = run.take() {
            let end = (u * UNIT).min(window.len());
            let src = window.get(r..end).unwrap_or_default();
            out.write_all_at(src, pos + r as u64)
                .map_err(at(Stage::WriteData))?;
            stats.writes += 1;
            stats.written += (end - r) as u64;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use uml_common::cow::{test_bit, Geometry, Version};
    use uml_common::testrng::SplitMix64 as Rng;

    /// A generated case: backing bytes (with hole ranges), COW bytes.
    struct Case {
        dir: tempfile::TempDir,
        geo: Geometry,
        backing: Vec<u8>,
        cow: Vec<u8>,
    }

    fn write_sparse(path: &std::path::Path, bytes: &[u8]) {
        // Leave 4 KiB blocks of zeros as holes.
        let f = File::create(path).unwrap();
        for (i, chunk) in bytes.chunks(4096).enumerate() {
            if !is_zero(chunk) {
                f.write_all_at(chunk, (i * 4096) as u64).unwrap();
            }
        }
        f.set_len(bytes.len() as u64).unwrap();
    }

    fn make_case(rng: &mut Rng) -> Case {
        let sizes = [512u32, 512, 512, 1024, 4096, 1000, 256, 520];
        let s = sizes[rng.below(sizes.len() as u64) as usize];
        let version = match rng.below(4) {
            0 => Version::V1,
            1 => Version::V2,
            2 => Version::V3Broken,
            _ => Version::V3,
        };
        let align = [512u32, 4096, 1000][rng.below(3) as usize];
        let size = match rng.below(4) {
            0 => rng.below(5000),
            1 => (WINDOW as u64) * (1 + rng.below(2)) + rng.below(3) * 512,
            _ => rng.below(3 * WINDOW as u64),
        };
        let geo = Geometry::new(version, size, s, align).unwrap();
        // Backing: random extents of data, zero sectors, holes.
        let mut backing = vec![0u8; size as usize];
        let mut p = 0usize;
        while p < backing.len() {
            let len = (1 + rng.below(40_000)) as usize;
            let end = (p + len).min(backing.len());
            if rng.below(3) != 0 {
                rng.fill_nonzero(&mut backing[p..end]);
            }
            p = end;
        }
        // COW: bitmap with clustered runs, data for dirty sectors (some zero).
        let mut cow = vec![0u8; (geo.data_offset + size) as usize];
        let bm_off = geo.bitmap_offset as usize;
        let nbits = geo.bitmap_len * 8;
        let mut i = 0;
        let density = rng.below(4);
        while i < nbits {
            let run = 1 + rng.below(64);
            let dirty = match density {
                0 => false,
                1 => rng.below(10) == 0,
                2 => rng.below(2) == 0,
                _ => rng.below(10) != 0,
            };
            for b in i..(i + run).min(nbits) {
                if dirty {
                    cow[bm_off + (b / 8) as usize] |= 1 << (b % 8);
                }
            }
            i += run;
        }
        for sector in 0..geo.sectors {
            if test_bit(&cow[bm_off..bm_off + geo.bitmap_len as usize], sector) {
                let a = (geo.data_offset + sector * geo.sector_size) as usize;
                let b = a + geo.sector_size as usize;
                match rng.below(5) {
                    0 => {} // zero sector in the COW file
                    1 => cow[a..b].copy_from_slice(
                        &backing[a - geo.data_offset as usize..b - geo.data_offset as usize],
                    ),
                    _ => rng.fill_nonzero(&mut cow[a..b]),
                }
            }
        }
        let dir = tempfile::tempdir().unwrap();
        write_sparse(&dir.path().join("backing"), &backing);
        write_sparse(&dir.path().join("cow"), &cow);
        Case {
            dir,
            geo,
            backing,
            cow,
        }
    }

    /// The merge as `docs/cow.md` §5 describes it, sector by sector.
    fn reference(c: &Case) -> Vec<u8> {
        let g = &c.geo;
        let bm = &c.cow[g.bitmap_offset as usize..(g.bitmap_offset + g.bitmap_len) as usize];
        let mut out = vec![0u8; g.image_len() as usize];
        for i in 0..g.sectors {
            let a = (i * g.sector_size) as usize;
            let b = a + g.sector_size as usize;
            let src = if test_bit(bm, i) {
                &c.cow[a + g.data_offset as usize..b + g.data_offset as usize]
            } else {
                &c.backing[a..b]
            };
            out[a..b].copy_from_slice(src);
        }
        out
    }

    /// C's writing pattern (one write per non-zero sector and the last
    /// one, or in place: dirty sectors, zeros only over non-zero backing)
    /// applied to `file`, for comparing allocation.
    fn c_like(c: &Case, file: &File, in_place: bool) {
        let g = &c.geo;
        let bm = &c.cow[g.bitmap_offset as usize..(g.bitmap_offset + g.bitmap_len) as usize];
        let merged = reference(c);
        for i in 0..g.sectors {
            let a = (i * g.sector_size) as usize;
            let b = a + g.sector_size as usize;
            let dirty = test_bit(bm, i);
            if in_place && !dirty {
                continue;
            }
            let zero = is_zero(&merged[a..b]);
            if i < g.sectors - 1 && zero && (!in_place || is_zero(&c.backing[a..b])) {
                continue;
            }
            file.write_all_at(&merged[a..b], a as u64).unwrap();
        }
    }

    /// Asserts that `ours` holds no data where the C-like writer left a
    /// hole, by the extents the file system reports (`st_blocks` would
    /// also count blocks reserved or preallocated, which vary with load).
    fn assert_never_less_sparse(ours: &File, theirs: &File, what: &str) {
        use uml_common::sys::extents::{data_extents, first_uncovered};
        ours.sync_all().unwrap();
        theirs.sync_all().unwrap();
        let (o, t) = (data_extents(ours).unwrap(), data_extents(theirs).unwrap());
        if let Some(gap) = first_uncovered(&o, &t) {
            panic!("{what}: data at {gap:?} where the C-like merge left a hole\n ours: {o:?}\n C:    {t:?}");
        }
    }

    #[test]
    fn merges_equal_the_reference_and_are_never_less_sparse() {
        let mut rng = Rng::new(0x00c0_ffee);
        for round in 0..40 {
            let c = make_case(&mut rng);
            let d = c.dir.path();
            let cow = File::open(d.join("cow")).unwrap();
            let want = reference(&c);

            // New image.
            let backing = File::open(d.join("backing")).unwrap();
            let out = File::create(d.join("out")).unwrap();
            check_bitmap(&cow, &c.geo).unwrap();
            let window = [WINDOW, 64 << 10, 3 * UNIT][round % 3];
            let stats = Merger::with_window(&cow, &backing, c.geo, window)
                .new_image(&out, true)
                .unwrap();
            let got = std::fs::read(d.join("out")).unwrap();
            assert!(
                got == want,
                "round {round}: new image differs ({:?})",
                c.geo
            );
            let cf = File::create(d.join("c-out")).unwrap();
            c_like(&c, &cf, false);
            assert_never_less_sparse(
                &out,
                &cf,
                &format!("round {round}: new image ({:?})", c.geo),
            );
            // At most one write per sector (C makes one per non-zero sector).
            let windows = c.geo.image_len().div_ceil(window as u64);
            assert!(stats.writes <= c.geo.sectors.max(1) + windows);

            // In place, on a copy of the backing file.
            let copy = d.join("copy");
            write_sparse(&copy, &c.backing);
            let ccopy = d.join("c-copy");
            write_sparse(&ccopy, &c.backing);
            let rw = File::options().read(true).write(true).open(&copy).unwrap();
            Merger::new(&cow, &rw, c.geo).in_place().unwrap();
            let got = std::fs::read(&copy).unwrap();
            let mut want_in_place = c.backing.clone();
            want_in_place[..want.len()].copy_from_slice(&want);
            assert!(
                got == want_in_place,
                "round {round}: -d differs ({:?})",
                c.geo
            );
            let cw = File::options().write(true).open(&ccopy).unwrap();
            c_like(&c, &cw, true);
            assert_never_less_sparse(&rw, &cw, &format!("round {round}: -d ({:?})", c.geo));

            // Writing everything (a device) gives the same bytes.
            let dev = File::create(d.join("dev")).unwrap();
            Merger::new(&cow, &backing, c.geo)
                .new_image(&dev, false)
                .unwrap();
            assert!(std::fs::read(d.join("dev")).unwrap() == want);
        }
    }

    /// The reflink merge gives the reference's bytes where the temporary
    /// directory's file system shares extents (run with `TMPDIR` on XFS or
    /// btrfs to see it); elsewhere it declines and leaves the output empty.
    #[test]
    fn reflink_merges_equal_the_reference_or_decline() {
        let mut rng = Rng::new(0x00ef_11e5);
        for round in 0..12 {
            let c = make_case(&mut rng);
            let d = c.dir.path();
            let cow = File::open(d.join("cow")).unwrap();
            let backing = File::open(d.join("backing")).unwrap();
            let out = File::options()
                .read(true)
                .write(true)
                .create(true)
                .truncate(true)
                .open(d.join("out"))
                .unwrap();
            let window = [WINDOW, 64 << 10, 3 * UNIT][round % 3];
            let got = Merger::with_window(&cow, &backing, c.geo, window)
                .new_image_reflink(&out)
                .unwrap();
            match got {
                Some(stats) => {
                    assert!(
                        std::fs::read(d.join("out")).unwrap() == reference(&c),
                        "round {round}: reflink merge differs ({:?})",
                        c.geo
                    );
                    assert!(stats.cloned <= c.geo.image_len());
                }
                None => assert_eq!(out.metadata().unwrap().len(), 0),
            }
        }
    }

    #[test]
    fn large_runs_use_few_calls() {
        // 4 MiB, every other 4 KiB block dirty, full backing: one write
        // per window.
        let size = 4u64 << 20;
        let geo = Geometry::new(Version::V3, size, 512, 4096).unwrap();
        let mut rng = Rng::new(3);
        let mut backing = vec![0u8; size as usize];
        rng.fill_nonzero(&mut backing);
        let mut cow = vec![0u8; (geo.data_offset + size) as usize];
        for byte in 0..geo.bitmap_len as usize {
            if byte % 2 == 0 {
                cow[geo.bitmap_offset as usize + byte] = 0xff;
            }
        }
        rng.fill_nonzero(&mut cow[geo.data_offset as usize..]);
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("b"), &backing).unwrap();
        std::fs::write(dir.path().join("c"), &cow).unwrap();
        let (b, c) = (
            File::open(dir.path().join("b")).unwrap(),
            File::open(dir.path().join("c")).unwrap(),
        );
        let out = File::create(dir.path().join("o")).unwrap();
        let stats = Merger::new(&c, &b, geo).new_image(&out, true).unwrap();
        assert_eq!(stats.writes, 4);
        assert_eq!(stats.written, size);
        assert_eq!(stats.from_cow, size / 2);
    }

    #[test]
    fn truncated_cow_files_fail_cleanly() {
        let mut rng = Rng::new(9);
        let size = 64u64 << 10;
        let geo = Geometry::new(Version::V3, size, 512, 4096).unwrap();
        let mut cow = vec![0u8; (geo.data_offset + size) as usize];
        cow[geo.bitmap_offset as usize + 15] = 0x80; // last sector dirty
        rng.fill_nonzero(&mut cow[geo.data_offset as usize..]);
        let dir = tempfile::tempdir().unwrap();
        let mut backing = vec![0u8; size as usize];
        rng.fill_nonzero(&mut backing);
        std::fs::write(dir.path().join("b"), &backing).unwrap();
        let b = File::open(dir.path().join("b")).unwrap();
        for cut in [
            0,
            geo.bitmap_offset + 3,
            geo.data_offset + 100,
            geo.data_offset + size - 1,
        ] {
            std::fs::write(dir.path().join("c"), &cow[..cut as usize]).unwrap();
            let c = File::open(dir.path().join("c")).unwrap();
            let out = File::create(dir.path().join("o")).unwrap();
            let mut m = Merger::new(&c, &b, geo);
            let r = check_bitmap(&c, &geo).and_then(|()| m.new_image(&out, true).map(|_| ()));
            let e = r.unwrap_err();
            let want = if cut < geo.bitmap_offset + geo.bitmap_len {
                "Reading COW bitmap: unexpected end of file"
            } else {
                "Reading data: unexpected end of file"
            };
            assert_eq!(e.to_string(), want, "cut at {cut}");
        }
    }

    #[test]
    fn zero_detection() {
        assert!(is_zero(&[]));
        assert!(is_zero(&[0; 1000]));
        let mut v = vec![0u8; 1000];
        for i in [0, 63, 64, 999] {
            v[i] = 1;
            assert!(!is_zero(&v));
            v[i] = 0;
        }
        assert!(span_pays(0, 2) && !span_pays(0, 1) && !span_pays(1 << 20, 3));
    }
}
