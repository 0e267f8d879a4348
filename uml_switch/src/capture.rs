//! Capture of the segment's frames to a pcap file (`--pcap FILE`, or
//! `capture start FILE …` on the management socket; `docs/mgmt.md` §6):
//! every frame the switch receives, as received (tags included), once,
//! optionally only those of one port (from it, or sent to it) or of one
//! VLAN. The file is written with the `pcap-file` crate in libpcap's
//! classic format (Ethernet link type, microsecond timestamps) or, with
//! `--pcap-format pcapng` / `format=pcapng`, in pcapng (one section with
//! one Ethernet interface, nanosecond timestamps declared by
//! `if_tsresol`, one enhanced packet block per frame); Wireshark and
//! tcpdump read both.
//!
//! A long lab cannot fill the disk: when the file reaches its size limit
//! it is renamed `FILE.1` (replacing the previous one, which this capture
//! made) and a new `FILE` is started, so at most twice the limit is used.
//! The file must not exist (it is created, never overwritten, and a
//! symbolic link is not followed): whoever may use the management socket
//! cannot make the switch clobber a file. Writes are buffered and flushed
//! every few seconds, at `capture stop` and at exit; a write error ends the
//! capture with one log line.

use std::cell::RefCell;
use std::fs::{File, OpenOptions};
use std::io::{self, BufWriter, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::rc::Rc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use std::borrow::Cow;

use pcap_file::pcap::{PcapHeader, PcapPacket, PcapWriter};
use pcap_file::pcapng::blocks::enhanced_packet::EnhancedPacketBlock;
use pcap_file::pcapng::blocks::interface_description::{
    InterfaceDescriptionBlock, InterfaceDescriptionOption,
};
use pcap_file::pcapng::PcapNgWriter;
use pcap_file::DataLink;

use crate::core::PortId;

/// Default size limit of a capture file.
pub const DEFAULT_LIMIT: u64 = 64 << 20;
/// The smallest limit accepted (a few frames).
pub const MIN_LIMIT: u64 = 64 << 10;
/// Largest frame written (the snap length; longer frames are cut, with
/// their original length recorded).
const SNAPLEN: usize = 65_535;
/// Bytes of a record header in the file.
const RECORD_HEADER: u64 = 16;
/// Bytes of a pcapng enhanced packet block around its (padded) data.
const EPB_OVERHEAD: u64 = 32;

/// The file format of a capture.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Format {
    /// libpcap's classic format.
    #[default]
    Pcap,
    /// PCAP Next Generation.
    PcapNg,
}

impl Format {
    /// `pcap` or `pcapng`.
    pub fn parse(text: &str) -> Option<Format> {
        match text {
            "pcap" => Some(Format::Pcap),
            "pcapng" => Some(Format::PcapNg),
            _ => None,
        }
    }

    /// Its name, as [`Format::parse`] takes it.
    pub fn name(self) -> &'static str {
        match self {
            Format::Pcap => "pcap",
            Format::PcapNg => "pcapng",
        }
    }

    /// Bytes in the file of a record of a frame of `len` bytes.
    fn record_len(self, len: usize) -> u64 {
        let len = len.min(SNAPLEN) as u64;
        match self {
            Format::Pcap => RECORD_HEADER + len,
            Format::PcapNg => EPB_OVERHEAD + len.div_ceil(4) * 4,
        }
    }
}

/// Which frames are captured.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Filter {
    /// All.
    All,
    /// Those received from this port or sent to it (its id, and its
    /// number as printed).
    Port(PortId, i32),
    /// Those of this VLAN (0: the default VLAN).
    Vlan(u16),
}

/// The file's buffered writer, shared between the pcap writer (which
/// offers no way to flush what it wraps) and the capture, which flushes it.
#[derive(Debug, Clone)]
struct Shared(Rc<RefCell<BufWriter<File>>>);

impl Write for Shared {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.0.borrow_mut().write(buf)
    }
    fn flush(&mut self) -> io::Result<()> {
        self.0.borrow_mut().flush()
    }
}

/// The format's writer.
enum Writer {
    Pcap(PcapWriter<Shared>),
    PcapNg(PcapNgWriter<Shared>),
}

impl std::fmt::Debug for Writer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Writer::Pcap(w) => w.fmt(f),
            Writer::PcapNg(_) => f.write_str("PcapNgWriter"),
        }
    }
}

/// An open capture file.
#[derive(Debug)]
struct Output {
    writer: Writer,
    file: Shared,
    /// Bytes of its headers.
    header_len: u64,
}

/// A capture in progress.
#[derive(Debug)]
pub struct Capture {
    path: PathBuf,
    writer: Option<Output>,
    filter: Filter,
    format: Format,
    limit: u64,
    /// Bytes in the current file.
    size: u64,
    /// Frames written in all.
    frames: u64,
    /// `FILE.1` was made by this capture (so it may be replaced).
    rotated: bool,
}

/// Why a capture cannot start.
#[derive(Debug, thiserror::Error)]
pub enum CaptureError {
    /// Creating the file failed (it exists, a directory is missing, …).
    #[error("cannot create '{}': {}", .0.display(), uml_common::cli::strerror(.1))]
    Create(PathBuf, io::Error),
    /// The rotation name exists already.
    #[error("'{}' exists (it would be replaced when the file is rotated)", .0.display())]
    RotationExists(PathBuf),
    /// Writing the file header failed.
    #[error("cannot write '{}': {}", .0.display(), .1)]
    Write(PathBuf, String),
}

fn create(path: &Path, format: Format) -> Result<Output, CaptureError> {
    let file = OpenOptions::new()
        .write(true)
        .create_new(true)
        .custom_flags(libc::O_NOFOLLOW | libc::O_CLOEXEC)
        .mode(0o640)
        .open(path)
        .map_err(|e| CaptureError::Create(path.to_path_buf(), e))?;
    let shared = Shared(Rc::new(RefCell::new(BufWriter::with_capacity(
        64 << 10,
        file,
    ))));
    let fail = |e: pcap_file::PcapError| CaptureError::Write(path.to_path_buf(), e.to_string());
    let writer = match format {
        Format::Pcap => {
            let header = PcapHeader {
                snaplen: SNAPLEN as u32,
                ..PcapHeader::default()
            };
            Writer::Pcap(PcapWriter::with_header(shared.clone(), header).map_err(fail)?)
        }
        Format::PcapNg => {
            let mut w = PcapNgWriter::new(shared.clone()).map_err(fail)?;
            // pcap-file writes timestamps in nanoseconds: say so (the
            // default resolution is microseconds).
            let interface = InterfaceDescriptionBlock {
                linktype: DataLink::ETHERNET,
                snaplen: SNAPLEN as u32,
                options: vec![InterfaceDescriptionOption::IfTsResol(9)],
            };
            w.write_pcapng_block(interface).map_err(fail)?;
            Writer::PcapNg(w)
        }
    };
    // Nothing is flushed yet: the headers are what is buffered.
    let header_len = shared.0.borrow().buffer().len() as u64;
    Ok(Output {
        writer,
        file: shared,
        header_len,
    })
}

/// `FILE.1`.
fn rotation_name(path: &Path) -> PathBuf {
    let mut name = path.as_os_str().to_owned();
    name.push(".1");
    PathBuf::from(name)
}

impl Capture {
    /// Starts capturing the frames `filter` selects into a new file at
    /// `path`, rotated at `limit` bytes.
    pub fn start(path: &Path, filter: Filter, limit: u64) -> Result<Capture, CaptureError> {
        Capture::start_as(path, filter, limit, Format::Pcap)
    }

    /// [`Capture::start`] in `format`.
    pub fn start_as(
        path: &Path,
        filter: Filter,
        limit: u64,
        format: Format,
    ) -> Result<Capture, CaptureError> {
        let rotated_path = rotation_name(path);
        if std::fs::symlink_metadata(&rotated_path).is_ok() {
            return Err(CaptureError::RotationExists(rotated_path));
        }
        let writer = create(path, format)?;
        Ok(Capture {
            path: path.to_path_buf(),
            size: writer.header_len,
            writer: Some(writer),
            filter,
            format,
            limit: limit.max(MIN_LIMIT),
            frames: 0,
            rotated: false,
        })
    }

    /// Its filter.
    pub fn filter(&self) -> Filter {
        self.filter
    }

    /// Whether the capture still runs (it ends at a write error).
    pub fn running(&self) -> bool {
        self.writer.is_some()
    }

    /// `FILE (N frames)` and the filter, for the management socket.
    pub fn status(&self) -> String {
        let filter = match self.filter {
            Filter::All => "all frames".to_string(),
            Filter::Port(_, label) => format!("port {label}"),
            Filter::Vlan(v) => format!("vlan {v}"),
        };
        let format = match self.format {
            Format::Pcap => String::new(),
            // Only when not the default: the pcap status stays as it was.
            f => format!(", {}", f.name()),
        };
        format!(
            "{} ({} frames, {filter}, limit {} bytes{format})",
            self.path.display(),
            self.frames,
            self.limit
        )
    }

    /// Writes `frame` (received now). Returns the error that ended the
    /// capture, once, for the log.
    pub fn write(&mut self, frame: &[u8]) -> Option<String> {
        let record = self.format.record_len(frame.len());
        if self.size + record > self.limit && self.frames > 0 {
            if let Err(e) = self.rotate() {
                self.writer = None;
                return Some(e);
            }
        }
        let writer = self.writer.as_mut()?;
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap_or(Duration::ZERO);
        let data = &frame[..frame.len().min(SNAPLEN)];
        let written = match &mut writer.writer {
            Writer::Pcap(w) => w.write_packet(&PcapPacket::new(now, frame.len() as u32, data)),
            Writer::PcapNg(w) => w.write_pcapng_block(EnhancedPacketBlock {
                interface_id: 0,
                timestamp: now,
                original_len: frame.len() as u32,
                data: Cow::Borrowed(data),
                options: Vec::new(),
            }),
        };
        if let Err(e) = written {
            self.writer = None;
            return Some(format!("writing '{}': {e}", self.path.display()));
        }
        self.size += record;
        self.frames += 1;
        None
    }

    fn rotate(&mut self) -> Result<(), String> {
        self.flush();
        let rotated = rotation_name(&self.path);
        if !self.rotated && std::fs::symlink_metadata(&rotated).is_ok() {
            return Err(format!(
                "'{}' appeared: not replaced, capture ended",
                rotated.display()
            ));
        }
        std::fs::rename(&self.path, &rotated).map_err(|e| {
            format!(
                "rotating '{}': {}",
                self.path.display(),
                uml_common::cli::strerror(&e)
            )
        })?;
        self.rotated = true;
        let writer = create(&self.path, self.format).map_err(|e| e.to_string())?;
        self.size = writer.header_len;
        self.writer = Some(writer);
        Ok(())
    }

    /// Writes what is buffered to the file.
    pub fn flush(&mut self) {
        if let Some(w) = &mut self.writer {
            // A failure shows at the next write.
            let _ = w.file.flush();
        }
    }
}

impl Drop for Capture {
    fn drop(&mut self) {
        self.flush();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use pcap_file::pcap::PcapReader;

    fn read_all(path: &Path) -> Vec<Vec<u8>> {
        let mut r = PcapReader::new(File::open(path).unwrap()).unwrap();
        let mut frames = Vec::new();
        while let Some(p) = r.next_packet() {
            frames.push(p.unwrap().data.into_owned());
        }
        frames
    }

    #[test]
    fn frames_are_written_readably_and_rotated_at_the_limit() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("seg.pcap");
        let mut c = Capture::start(&path, Filter::All, MIN_LIMIT).unwrap();
        // 1000 frames of 100 bytes: 116 KiB of records, so one rotation.
        for i in 0..1000u32 {
            let mut f = vec![0u8; 100];
            f[..4].copy_from_slice(&i.to_be_bytes());
            assert_eq!(c.write(&f), None);
        }
        drop(c);
        let old = read_all(&dir.path().join("seg.pcap.1"));
        let new = read_all(&path);
        assert_eq!(old.len() + new.len(), 1000);
        assert!(std::fs::metadata(&path).unwrap().len() <= MIN_LIMIT);
        for (i, f) in old.iter().chain(&new).enumerate() {
            assert_eq!(&f[..4], &(i as u32).to_be_bytes(), "frame {i}");
        }
    }

    /// The frames of a pcapng file and their timestamps; checks that it
    /// has one Ethernet interface with nanosecond timestamps.
    fn read_all_ng(path: &Path) -> Vec<(Duration, Vec<u8>)> {
        use pcap_file::pcapng::{Block, PcapNgReader};
        let mut r = PcapNgReader::new(File::open(path).unwrap()).unwrap();
        let mut frames = Vec::new();
        while let Some(b) = r.next_block() {
            if let Block::EnhancedPacket(p) = b.unwrap() {
                assert_eq!(p.original_len as usize, p.data.len());
                frames.push((p.timestamp, p.data.into_owned()));
            }
        }
        let interfaces = r.interfaces();
        assert_eq!(interfaces.len(), 1);
        assert_eq!(interfaces[0].linktype, DataLink::ETHERNET);
        assert_eq!(
            interfaces[0].options,
            [InterfaceDescriptionOption::IfTsResol(9)]
        );
        frames
    }

    #[test]
    fn pcapng_frames_are_written_readably_and_rotated_at_the_limit() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("seg.pcapng");
        let mut c = Capture::start_as(&path, Filter::All, MIN_LIMIT, Format::PcapNg).unwrap();
        assert!(c.status().ends_with(", pcapng)"), "{}", c.status());
        let before = SystemTime::now().duration_since(UNIX_EPOCH).unwrap();
        // 1000 frames of 101 bytes (padded to 104 in the file): 133 KiB
        // of blocks, so two rotations.
        for i in 0..1000u32 {
            let mut f = vec![0u8; 101];
            f[..4].copy_from_slice(&i.to_be_bytes());
            assert_eq!(c.write(&f), None);
        }
        c.flush();
        // The size counted is the file's.
        assert_eq!(std::fs::metadata(&path).unwrap().len(), c.size);
        drop(c);
        let after = SystemTime::now().duration_since(UNIX_EPOCH).unwrap();
        let old = read_all_ng(&dir.path().join("seg.pcapng.1"));
        let new = read_all_ng(&path);
        // 136-byte blocks: 481 fit in a file; the first file was
        // replaced at the second rotation.
        assert_eq!((old.len(), new.len()), (481, 1000 - 2 * 481));
        assert!(std::fs::metadata(&path).unwrap().len() <= MIN_LIMIT);
        assert!(
            std::fs::metadata(dir.path().join("seg.pcapng.1"))
                .unwrap()
                .len()
                <= MIN_LIMIT
        );
        let last = old.len() + new.len();
        for (i, (t, f)) in old.iter().chain(&new).enumerate() {
            assert_eq!(f.len(), 101);
            assert!((before..=after).contains(t), "frame {i}: {t:?}");
            let n = u32::from_be_bytes(f[..4].try_into().unwrap()) as usize;
            // Frames of the first file that rotated away are gone.
            assert_eq!(n, 1000 - last + i, "frame {i}");
        }
    }

    #[test]
    fn the_pcap_size_counted_is_the_files() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("seg.pcap");
        let mut c = Capture::start(&path, Filter::All, MIN_LIMIT).unwrap();
        for len in [14, 60, 1514] {
            assert_eq!(c.write(&vec![1u8; len]), None);
        }
        c.flush();
        assert_eq!(std::fs::metadata(&path).unwrap().len(), c.size);
        assert_eq!(Format::parse("pcapng"), Some(Format::PcapNg));
        assert_eq!(Format::parse("pcap"), Some(Format::Pcap));
        assert_eq!(Format::parse("ng"), None);
    }

    #[test]
    fn existing_files_are_never_overwritten() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("seg.pcap");
        std::fs::write(&path, b"precious").unwrap();
        assert!(matches!(
            Capture::start(&path, Filter::All, MIN_LIMIT),
            Err(CaptureError::Create(..))
        ));
        assert_eq!(std::fs::read(&path).unwrap(), b"precious");
        let other = dir.path().join("b.pcap");
        std::fs::write(dir.path().join("b.pcap.1"), b"precious too").unwrap();
        assert!(matches!(
            Capture::start(&other, Filter::All, MIN_LIMIT),
            Err(CaptureError::RotationExists(_))
        ));
        assert!(!other.exists());
        // A symbolic link is not followed.
        let link = dir.path().join("link.pcap");
        std::os::unix::fs::symlink(dir.path().join("target"), &link).unwrap();
        assert!(Capture::start(&link, Filter::All, MIN_LIMIT).is_err());
        assert!(!dir.path().join("target").exists());
    }
}
