//! The raw port kind (`--raw IFNAME`; `docs/vector.md` §6): one port that
//! is a host network interface, read and written through an `AF_PACKET`
//! socket bound to it (`CAP_NET_RAW`). What the guests behind it use:
//!
//! * one end of a veth pair: the switch takes one end, a guest on
//!   `vecN:transport=raw,ifname=OTHER` the other;
//! * the tap of a guest on `vecN:transport=tap,ifname=TAP` (the tap must
//!   exist, e.g. made by `tunctl`, and be up);
//! * any other interface, e.g. a bridge's veth port: the switch then
//!   bridges that segment in.
//!
//! The socket is promiscuous, receives every protocol, never receives the
//! frames it sent itself (`PACKET_IGNORE_OUTGOING`, else filtered by
//! `PACKET_OUTGOING`), and reads and writes a virtio-net header in front of
//! every frame: the guests' drivers turn on TCP segmentation and checksum
//! offload, so their frames may be up to 64 KiB with a checksum left to do.
//! Those frames are completed here ([`super::offload`]: checksums filled
//! in, TSO frames cut into segments) before they are forwarded, so the
//! other ports get ordinary frames. Frames leave with an all-zero header
//! (complete frames). The kernel takes the VLAN tag out of a received
//! frame before packet sockets see it; the tag comes alongside and is put
//! back, so tagged frames cross the switch tagged.
//!
//! Frames are received with `recvmmsg` into buffers of 64 KiB and copied
//! into the shared inbox; one TSO frame may fill many inbox slots, so what
//! does not fit waits for the next call, and an eventfd makes the event
//! loop come back for it. They are sent with `sendmmsg`, through the
//! interface's qdisc (a `hybrid` guest reads its tap with a packet socket,
//! which sees only what passes there). The port's limit is the smaller of
//! the switch's largest frame and the interface's MTU plus the Ethernet
//! header; longer frames are dropped and counted. Send errors of an
//! interface whose far side is not up yet (`ENETDOWN`; `ENOBUFS` from a
//! tap no guest has attached) are counted, not reported.

use std::fs::File;
use std::io::{self, Read, Write};
use std::os::fd::{AsFd, AsRawFd, OwnedFd};

use nix::sys::epoll::{Epoll, EpollFlags};
use nix::sys::eventfd::{EfdFlags, EventFd};
use uml_common::cli::strerror;
use uml_common::switch::{ETH_HEADER_LEN, MAX_FRAME_LEN};
use uml_common::sys::fd::move_high;
use uml_common::sys::mmsg::SendBatch;
use uml_common::sys::packet::{self, PacketBatch, PacketError, VlanTag};

use super::offload::{complete_checksum, OffloadError, Tso, VnetHdr, F_NEEDS_CSUM, VNET_HDR_LEN};
use super::{
    Ctx, Endpoint, Inbox, Ready, Received, Stats, EAGAIN_COOLDOWN, EAGAIN_PATIENCE, HIGH_FD,
    SEND_BATCH,
};
use crate::core::PortId;
use crate::output::err;
use crate::{Error, RawRefusal};

/// The command-line option of this kind.
pub const OPTION: &str = "--raw";
/// Receive buffer: the virtio-net header and a 64 KiB TSO frame.
const RX_BUF: usize = VNET_HDR_LEN + 65_536 + 64;
/// Sub-token of the packet socket.
const SUB_SOCKET: u32 = 0;
/// Sub-token of the eventfd that brings the loop back for frames still
/// waiting in the receive batch.
const SUB_WAKE: u32 = 1;
/// The header of a complete frame.
const PLAIN_HEADER: [u8; VNET_HDR_LEN] = [0; VNET_HDR_LEN];

/// Per-port counters, printed on SIGUSR1.
#[derive(Debug, Default, Clone, Copy)]
struct Counts {
    received: u64,
    segmented: u64,
    checksummed: u64,
    own: u64,
    bad_offload: u64,
    sent: u64,
    send_errors: u64,
}

/// Where the processing of the last receive batch stands.
#[derive(Debug, Default, Clone, Copy)]
struct Cursor {
    /// Frames in the batch.
    filled: usize,
    /// Next frame to process.
    next: usize,
    /// Next segment of that frame (TSO frames).
    seg: usize,
}

/// A raw port.
pub struct Raw {
    ifname: String,
    sock: OwnedFd,
    ignores_outgoing: bool,
    label: i32,
    port: Option<PortId>,
    if_mtu: u32,
    guest_argument: Option<String>,
    rx: PacketBatch,
    /// A frame with its VLAN tag put back.
    scratch: Vec<u8>,
    cursor: Cursor,
    wake: File,
    wake_armed: bool,
    tx: SendBatch,
    counts: Counts,
    offload_reported: bool,
    send_error_reported: bool,
    recv_error_reported: bool,
}

impl std::fmt::Debug for Raw {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Raw({} port {})", self.ifname, self.label)
    }
}

/// What a guest uses to reach interface `ifname` (index `ifindex`), as far
/// as sysfs tells: the tap itself, or the other end of a veth pair in this
/// network namespace. `None` when it cannot tell.
fn guest_argument(ifname: &str, ifindex: u32) -> Option<String> {
    let sys = |name: &str, attr: &str| {
        std::fs::read_to_string(format!("/sys/class/net/{name}/{attr}"))
            .ok()
            .and_then(|s| s.trim().parse::<u32>().ok())
    };
    // A sysfs of another network namespace (not remounted after setns)
    // would describe another interface of the same name.
    if sys(ifname, "ifindex") != Some(ifindex) {
        return None;
    }
    if std::path::Path::new(&format!("/sys/class/net/{ifname}/tun_flags")).exists() {
        return Some(format!("vec0:transport=tap,ifname={ifname}"));
    }
    let peer_index = sys(ifname, "iflink")?;
    if peer_index == ifindex {
        return None;
    }
    let peer = packet::ifname(peer_index)?;
    // The index is the peer's in its own namespace: only a peer here
    // that links back is the other end.
    (sys(&peer, "iflink") == Some(ifindex) && sys(&peer, "ifindex") == Some(peer_index))
        .then(|| format!("vec0:transport=raw,ifname={peer}"))
}

/// What became of one received frame.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Outcome {
    /// In the inbox (all its segments), its checksum completed or not, cut
    /// or not.
    Done { checksummed: bool, tso: bool },
    /// The inbox filled up first: the rest of its segments come next time.
    Full,
    /// Shorter than the virtio-net header.
    Short,
    /// Longer than the switch's largest frame (or the receive buffer).
    TooLong,
    /// An offload that cannot be done.
    Bad(OffloadError),
}

/// `frame` with VLAN tag `tag` put back after the MAC addresses, in
/// `scratch`.
fn with_tag<'a>(frame: &[u8], tag: VlanTag, scratch: &'a mut Vec<u8>) -> &'a mut [u8] {
    scratch.clear();
    let at = frame.len().min(12);
    scratch.extend_from_slice(&frame[..at]);
    scratch.extend_from_slice(&tag.bytes());
    scratch.extend_from_slice(&frame[at..]);
    scratch
}

/// Completes `frame` as its virtio-net header `h` says and puts it (or
/// its segments from `*seg` on, counting them in `*seg`) into the inbox.
fn complete(
    frame: &mut [u8],
    h: &VnetHdr,
    seg: &mut usize,
    port: PortId,
    inbox: &mut Inbox,
) -> Outcome {
    let cap = inbox.rx.capacity();
    let room = inbox.rx.buffer_mut(0).len();
    match Tso::plan(frame, h) {
        Err(e) => Outcome::Bad(e),
        Ok(None) => {
            if frame.len() > room {
                return Outcome::TooLong;
            }
            let checksummed = h.flags & F_NEEDS_CSUM != 0;
            if checksummed {
                let (start, offset) = (usize::from(h.csum_start), usize::from(h.csum_offset));
                if let Err(e) = complete_checksum(frame, start, offset) {
                    return Outcome::Bad(e);
                }
            }
            let slot = inbox.frames.len();
            inbox.rx.buffer_mut(slot)[..frame.len()].copy_from_slice(frame);
            inbox.frames.push(Received {
                port,
                slot,
                len: frame.len(),
            });
            Outcome::Done {
                checksummed,
                tso: false,
            }
        }
        Ok(Some(t)) => {
            if t.max_segment_len() > room {
                return Outcome::TooLong;
            }
            while *seg < t.count {
                let slot = inbox.frames.len();
                if slot == cap {
                    return Outcome::Full;
                }
                let n = t.write_segment(frame, *seg, inbox.rx.buffer_mut(slot));
                inbox.frames.push(Received { port, slot, len: n });
                *seg += 1;
            }
            Outcome::Done {
                checksummed: false,
                tso: true,
            }
        }
    }
}

impl Raw {
    /// Opens the packet socket on `ifname`. An interface that is down is
    /// a warning (printed here): frames flow once it is up.
    pub fn open(prog: &str, ifname: &str) -> Result<Raw, Error> {
        let refuse = |why: RawRefusal| Error::Raw {
            prog: prog.to_string(),
            ifname: ifname.to_string(),
            why,
        };
        let ps = packet::open(ifname).map_err(|e| {
            refuse(match e {
                PacketError::BadName => RawRefusal::BadName,
                PacketError::NoDevice(_) => RawRefusal::NoDevice,
                PacketError::Socket(e) => RawRefusal::Socket(e),
                PacketError::Option(what, e) => RawRefusal::Option(what, e),
                PacketError::Bind(e) => RawRefusal::Bind(e),
            })
        })?;
        let if_mtu = packet::interface_mtu(ps.fd.as_fd(), ifname).unwrap_or(1500);
        if !packet::interface_is_up(ps.fd.as_fd(), ifname).unwrap_or(true) {
            err(&format!(
                "{prog}: {OPTION} '{ifname}': the interface is down; frames flow once it is up \
                 (ip link set {ifname} up)\n"
            ));
        }
        let guest_argument = guest_argument(ifname, ps.ifindex);
        // Above the descriptors that are port numbers, so that -tap and the
        // control connections keep the C switch's numbers.
        let sock = move_high(ps.fd, HIGH_FD).map_err(|e| refuse(RawRefusal::MoveHigh(e)))?;
        let wake = EventFd::from_value_and_flags(0, EfdFlags::EFD_CLOEXEC | EfdFlags::EFD_NONBLOCK)
            .map_err(io::Error::from)
            .and_then(|fd| move_high(OwnedFd::from(fd), HIGH_FD))
            .map_err(|e| refuse(RawRefusal::Eventfd(e)))?;
        let mut tx = SendBatch::new(SEND_BATCH, MAX_FRAME_LEN + VNET_HDR_LEN);
        tx.set_eagain_patience(EAGAIN_PATIENCE, EAGAIN_COOLDOWN);
        Ok(Raw {
            ifname: ifname.to_string(),
            label: sock.as_raw_fd(),
            sock,
            ignores_outgoing: ps.ignores_outgoing,
            port: None,
            if_mtu,
            guest_argument,
            rx: PacketBatch::new(1, 1),
            scratch: Vec::new(),
            cursor: Cursor::default(),
            wake: File::from(wake),
            wake_armed: false,
            tx,
            counts: Counts::default(),
            offload_reported: false,
            send_error_reported: false,
            recv_error_reported: false,
        })
    }

    fn describe(&self) -> String {
        format!("raw port {} on '{}'", self.label, self.ifname)
    }

    fn bad_offload(&mut self, e: OffloadError) {
        self.counts.bad_offload += 1;
        if !self.offload_reported {
            self.offload_reported = true;
            let why = match e {
                OffloadError::UnsupportedGso(t) => format!(
                    "a frame to be segmented as GSO type {t} (only TCP segmentation is done \
                     here; turn the offload off in the guest: ethtool -K DEV gso off)"
                ),
                OffloadError::Malformed => {
                    "a frame whose offload header does not match its headers".to_string()
                }
            };
            err(&format!(
                "{}: dropped {why}; further such frames are only counted (SIGUSR1)\n",
                self.describe()
            ));
        }
    }

    /// Moves frames of the receive batch into the inbox until one of them
    /// is used up. Returns whether the inbox is full.
    fn drain(&mut self, port: PortId, ctx: &mut Ctx<'_>, inbox: &mut Inbox) -> bool {
        let cap = inbox.rx.capacity();
        while self.cursor.next < self.cursor.filled {
            if inbox.frames.len() == cap {
                return true;
            }
            let i = self.cursor.next;
            if !self.ignores_outgoing && self.rx.outgoing(i) {
                self.counts.own += 1;
                self.cursor.next += 1;
                continue;
            }
            if self.cursor.seg == 0 {
                ctx.stats.frames_in += 1;
                self.counts.received += 1;
            }
            let outcome = if self.rx.truncated(i) {
                Outcome::TooLong
            } else {
                match VnetHdr::parse(self.rx.frame(i)) {
                    None => Outcome::Short,
                    Some(h) => {
                        let vlan = self.rx.vlan(i);
                        let frame = match vlan {
                            None => &mut self.rx.frame_mut(i)[VNET_HDR_LEN..],
                            Some(tag) => {
                                with_tag(&self.rx.frame(i)[VNET_HDR_LEN..], tag, &mut self.scratch)
                            }
                        };
                        let h = match vlan {
                            Some(_) if h.flags & F_NEEDS_CSUM != 0 => VnetHdr {
                                csum_start: h.csum_start.saturating_add(4),
                                ..h
                            },
                            _ => h,
                        };
                        complete(frame, &h, &mut self.cursor.seg, port, inbox)
                    }
                }
            };
            match outcome {
                Outcome::Full => return true,
                Outcome::Done { checksummed, tso } => {
                    self.counts.checksummed += u64::from(checksummed);
                    self.counts.segmented += u64::from(tso);
                }
                Outcome::Short => ctx.stats.short += 1,
                Outcome::TooLong => ctx.drop_oversized(port),
                Outcome::Bad(e) => self.bad_offload(e),
            }
            self.cursor.next += 1;
            self.cursor.seg = 0;
        }
        inbox.frames.len() == cap
    }

    fn flush_tx(&mut self, stats: &mut Stats) {
        if self.tx.is_empty() {
            return;
        }
        let mut first_error: Option<io::Error> = None;
        let mut errors = 0u64;
        let f = self.tx.flush(self.sock.as_fd(), |fail| {
            errors += 1;
            if first_error.is_none() {
                first_error = Some(fail.error);
            }
        });
        stats.frames_out += f.sent as u64;
        stats.queue_full += f.would_block as u64;
        stats.send_errors += errors;
        self.counts.sent += f.sent as u64;
        self.counts.send_errors += errors + f.would_block as u64;
        if let Some(e) = first_error {
            if !self.send_error_reported && !is_link_down(&e) {
                self.send_error_reported = true;
                err(&format!(
                    "Sending to {}: {}\n",
                    self.describe(),
                    strerror(&e)
                ));
            }
        }
    }
}

/// Errors of an interface whose other side is not there yet (a link that
/// is down; a tap whose guest has not attached, which drops what is sent
/// to it): counted, not reported.
fn is_link_down(e: &io::Error) -> bool {
    matches!(
        e.raw_os_error(),
        Some(libc::ENETDOWN | libc::ENOBUFS | libc::ENXIO)
    )
}

impl Endpoint for Raw {
    fn removable(&self) -> bool {
        true
    }

    fn port_info(&self, _port: PortId) -> (&'static str, Option<String>) {
        ("raw", Some(format!("interface {}", self.ifname)))
    }

    fn register(&mut self, ctx: &mut Ctx<'_>) -> io::Result<()> {
        self.rx = PacketBatch::new(super::BATCH, RX_BUF);
        self.scratch = Vec::with_capacity(RX_BUF + 4);
        if ctx.max_frame != MAX_FRAME_LEN {
            self.tx = SendBatch::new(SEND_BATCH, ctx.max_frame + VNET_HDR_LEN);
            self.tx
                .set_eagain_patience(EAGAIN_PATIENCE, EAGAIN_COOLDOWN);
        }
        ctx.watch(&self.sock, SUB_SOCKET)?;
        ctx.watch(&self.wake, SUB_WAKE)?;
        self.port = Some(ctx.add_port(self.label));
        Ok(())
    }

    fn ready(
        &mut self,
        sub: u32,
        _events: EpollFlags,
        ctx: &mut Ctx<'_>,
        inbox: &mut Inbox,
    ) -> Ready {
        let Some(port) = self.port else {
            return Ready::Done;
        };
        if sub == SUB_WAKE && self.wake_armed {
            let mut b = [0u8; 8];
            let _ = self.wake.read(&mut b);
            self.wake_armed = false;
        }
        let cap = inbox.rx.capacity();
        let ready = loop {
            if self.drain(port, ctx, inbox) {
                break Ready::More;
            }
            let want = cap - inbox.frames.len();
            let n = match self.rx.recv_up_to(self.sock.as_fd(), want) {
                Ok(n) => n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => {
                    if !self.recv_error_reported && !is_link_down(&e) {
                        self.recv_error_reported = true;
                        err(&format!(
                            "Receiving on {}: {}\n",
                            self.describe(),
                            strerror(&e)
                        ));
                    }
                    self.cursor = Cursor::default();
                    break Ready::Done;
                }
            };
            self.cursor = Cursor {
                filled: n,
                next: 0,
                seg: 0,
            };
            if n == 0 {
                break Ready::Done;
            }
            if n < want {
                // Drained the socket: what is left fits or waits.
                break if self.drain(port, ctx, inbox) {
                    Ready::More
                } else {
                    Ready::Done
                };
            }
        };
        // Frames left in the batch: come back even if the socket has
        // nothing more to say.
        let pending = self.cursor.next < self.cursor.filled;
        if pending && !self.wake_armed && self.wake.write(&1u64.to_ne_bytes()).is_ok() {
            self.wake_armed = true;
        }
        ready
    }

    fn queue(&mut self, _port: PortId, frame: &[u8], stats: &mut Stats) {
        if self.tx.is_full() {
            self.flush_tx(stats);
        }
        self.tx
            .push_connected_with_header(&PLAIN_HEADER, frame, self.sock.as_fd(), 0);
    }

    fn flush(&mut self, _epoll: &Epoll, stats: &mut Stats) {
        self.flush_tx(stats);
    }

    fn announce(&self) -> Option<String> {
        let mtu = self.if_mtu;
        Some(match &self.guest_argument {
            Some(arg) => format!("{} (mtu {mtu}): guests join with {arg}\n", self.describe()),
            None => format!(
                "{} (mtu {mtu}): bridged; a guest joins from the other end of a veth pair \
                 (vec0:transport=raw,ifname=OTHER_END) or a tap (vec0:transport=tap,ifname=TAP)\n",
                self.describe()
            ),
        })
    }

    fn frame_limit(&self, max_frame: usize) -> usize {
        max_frame.min(self.if_mtu as usize + ETH_HEADER_LEN)
    }

    fn print_stats(&self, prog: &str) {
        let c = &self.counts;
        err(&format!(
            "{prog}: {}: frames in {} ({} segmented, {} checksummed), out {}, send errors {}; \
             dropped: own {}, bad offload {}\n",
            self.describe(),
            c.received,
            c.segmented,
            c.checksummed,
            c.sent,
            c.send_errors,
            c.own,
            c.bad_offload
        ));
    }
}
