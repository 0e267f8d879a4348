//! Port kinds. Each kind is one module behind the [`Endpoint`] trait and
//! is made by [`open`] from a parsed [`PortSpec`]:
//!
//! * [`daemon`]: the daemon protocol — control socket, control
//!   connections (one port each) and the shared data socket;
//! * [`tap`]: a host tap device (one port);
//! * [`bess`]: a `SOCK_SEQPACKET` listener for the vector driver's
//!   `transport=bess` (one port per connection);
//! * [`l2tpv3`], [`gre`]: a statically configured tunnel to one guest of
//!   the vector driver's `transport=l2tpv3` or `transport=gre` (one port;
//!   the socket, batching and counters they share are [`tunnel`]'s);
//! * [`vde`]: vde clients (`vde_plug vde://DIR`, 7.x guests'
//!   `vecN:transport=vde`) of the daemon control socket, each with a data
//!   socket of its own (used by [`daemon`]);
//! * [`raw`]: an `AF_PACKET` socket on a host interface (one port), for
//!   guests on `transport=raw` behind a veth pair or `transport=tap`;
//! * [`mcast`]: a member of the legacy `ethN=mcast` transport's multicast
//!   group (one port for the whole group);
//! * [`pcap`]: a read-only port fed by libpcap on a host interface,
//!   through a BPF filter (one port; the capture runs in a helper
//!   program);
//! * [`qemu`]: a connection out to a QEMU-stream peer (passt, gvproxy
//!   `-listen-qemu`, QEMU `-netdev stream,server=on`; one port). The bess
//!   connection out (`--bess-connect`) is [`bess`]'s;
//! * [`nat`]: the segment's gateway (DHCP, DNS, outbound TCP/UDP, host
//!   port forwards), libslirp in the helper process `uml_switch_nat` on
//!   a socket pair (one port).
//!
//! An endpoint owns its descriptors and carries one port or many. The
//! event loop (`server.rs`) hands it readiness events for the descriptors
//! it registered; it receives a batch of frames into the shared
//! [`Inbox`], which the loop forwards through the core (`core.rs`),
//! calling [`Endpoint::queue`] for each destination and then
//! [`Endpoint::flush`] once per batch. Ports are created and removed
//! through [`Ctx`], which keeps the port table and purges the MAC
//! addresses of a removed port.
//!
//! Frame size: the switch forwards frames of at most [`Ctx::max_frame`]
//! bytes (`--mtu` plus the Ethernet header; 1514 by default); an endpoint
//! may take less ([`Endpoint::frame_limit`]: the daemon ports keep 1514).
//! A frame longer than a port's limit is not sent to it but dropped and
//! counted for that port ([`PortTable::oversized`]); endpoints size their
//! buffers from `max_frame` when they register.

pub mod backlog;
pub mod bess;
pub mod daemon;
pub mod gre;
pub mod l2tpv3;
pub mod mcast;
pub mod nat;
pub mod offload;
pub mod pcap;
pub mod qemu;
pub mod raw;
pub mod tap;
pub mod tunnel;
pub mod unix;
pub mod vde;
pub mod vxlan;

use std::io;
use std::os::fd::{AsFd, RawFd};
use std::path::PathBuf;
use std::time::{Duration, Instant};

use nix::sys::epoll::{Epoll, EpollEvent, EpollFlags};
use uml_common::sys::mmsg::RecvBatch;
use uml_common::tunnel_opts::{Encap, TunnelConfig};

use crate::core::{MacTable, PortId};
use crate::Error;
use uml_common::vlan::PortVlans;

/// Lowest descriptor number of descriptors users never see (the event
/// loop's own, per-port sending sockets): ports keep the descriptor
/// numbers the C switch gives them, as those are printed as port numbers.
pub const HIGH_FD: i32 = 1000;
/// Frames per `recvmmsg`/`sendmmsg` call.
pub const BATCH: usize = 64;
/// Room in a send batch: a flood of a full receive batch to many ports is
/// split over several `sendmmsg` calls.
pub const SEND_BATCH: usize = 256;

/// How long a frame whose receiver queue is full is retried (yielding in
/// between) before it is dropped and counted; a port whose queue stays
/// full that long is then congested for EAGAIN_COOLDOWN (one attempt per
/// frame, no waiting). A receiver that is briefly behind loses nothing; a
/// stopped or slow one costs the switch at most 0.5 ms per 50 ms (1 %).
pub const EAGAIN_PATIENCE: Duration = Duration::from_micros(500);
/// See EAGAIN_PATIENCE.
pub const EAGAIN_COOLDOWN: Duration = Duration::from_millis(50);
/// Counters, printed on SIGUSR1.
#[derive(Debug, Default, Clone, Copy)]
pub struct Stats {
    /// Frames received on any port.
    pub frames_in: u64,
    /// Frames sent (per destination).
    pub frames_out: u64,
    /// Dropped: shorter than an Ethernet header.
    pub short: u64,
    /// Longer than 1514 bytes: forwarded truncated.
    pub truncated: u64,
    /// Dropped: from an address no port registered.
    pub unknown_sender: u64,
    /// Dropped: a receiver's queue was full.
    pub queue_full: u64,
    /// Dropped: other send errors.
    pub send_errors: u64,
    /// Addresses not learned because the table was full.
    pub table_full: u64,
    /// Dropped: longer than the receiving or the sending port takes.
    pub oversized: u64,
}

/// What a port is, as parsed from the command line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PortSpec {
    /// The daemon protocol: control socket `ctl`; with `-compat-v0` the
    /// data socket is the file `data`, else an abstract address.
    Daemon {
        /// Control socket path.
        ctl: PathBuf,
        /// Data socket path (`-compat-v0`).
        data: Option<PathBuf>,
    },
    /// A host tap device.
    Tap {
        /// Its name.
        name: String,
    },
    /// A bess (`SOCK_SEQPACKET`) listening socket.
    Bess {
        /// Its path.
        path: PathBuf,
    },
    /// An l2tpv3 or gre tunnel to one guest (checked options).
    Tunnel(TunnelConfig),
    /// An `AF_PACKET` socket on a host interface.
    Raw {
        /// The interface's name.
        ifname: String,
    },
    /// A member of a legacy `mcast` group (checked options).
    Mcast(mcast::McastConfig),
    /// A VXLAN trunk (checked options).
    Vxlan(vxlan::VxlanConfig),
    /// A read-only port fed by libpcap on a host interface (through the
    /// capture helper).
    Pcap(uml_common::pcap_port::PcapSpec),
    /// A connection out to a peer listening in bess mode.
    BessConnect {
        /// Its socket.
        path: PathBuf,
    },
    /// A connection out to a QEMU-stream (4-byte length) peer.
    QemuConnect {
        /// Its socket.
        path: PathBuf,
    },
    /// The NAT port: its options as given and as checked.
    Nat {
        /// The `--nat` value (passed to the helper).
        text: String,
        /// The checked options.
        config: uml_common::nat::NatConfig,
        /// `--user`: the uid and gid the helper runs as from the start.
        run_as: Option<(u32, u32)>,
    },
}

/// Opens the endpoint `spec` describes (binding its sockets). `Ok(None)`:
/// the kind is optional and could not be opened (a tap: the warning has
/// been printed); the switch runs without it. The error says why a port
/// the switch cannot run without could not be opened (not printed).
pub fn open(prog: &str, spec: &PortSpec) -> Result<Option<Box<dyn Endpoint>>, Error> {
    open_passed(prog, spec, None)
}

/// Like [`open`], with the listening socket already bound and passed by
/// a service manager (`activation.rs`) for a daemon or bess port.
pub fn open_passed(
    prog: &str,
    spec: &PortSpec,
    passed: Option<std::os::fd::OwnedFd>,
) -> Result<Option<Box<dyn Endpoint>>, Error> {
    match spec {
        PortSpec::Daemon { ctl, data } => Ok(Some(Box::new(daemon::Daemon::open(
            prog,
            ctl,
            data.as_deref(),
            passed,
        )?))),
        PortSpec::Tap { name } => {
            Ok(tap::Tap::open(name).map(|t| Box::new(t) as Box<dyn Endpoint>))
        }
        PortSpec::Bess { path } => Ok(Some(Box::new(bess::Bess::open(prog, path, passed)?))),
        PortSpec::Tunnel(config) => Ok(Some(match config.encap {
            Encap::L2tpv3(p) => Box::new(l2tpv3::open(prog, config, p)?),
            Encap::Gre(p) => Box::new(gre::open(prog, config, p)?),
        })),
        PortSpec::Raw { ifname } => Ok(Some(Box::new(raw::Raw::open(prog, ifname)?))),
        PortSpec::Mcast(config) => Ok(Some(Box::new(mcast::Mcast::open(prog, config)?))),
        PortSpec::Vxlan(config) => Ok(Some(Box::new(vxlan::Vxlan::open(prog, config)?))),
        PortSpec::Pcap(spec) => Ok(Some(Box::new(pcap::Pcap::open(prog, spec)?))),
        PortSpec::BessConnect { path } => Ok(Some(Box::new(bess::Bess::connect(prog, path)?))),
        PortSpec::QemuConnect { path } => {
            Ok(Some(Box::new(qemu::QemuClient::connect(prog, path)?)))
        }
        PortSpec::Nat {
            text,
            config,
            run_as,
        } => Ok(Some(Box::new(nat::Nat::open(prog, text, config, *run_as)?))),
    }
}

/// A management request for the NAT port's host forwards.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HostFwdRequest {
    /// List them.
    List,
    /// Add `[tcp|udp]:[HOSTADDR]:HOSTPORT-[GUESTADDR]:GUESTPORT`.
    Add(String),
    /// Remove `[tcp|udp]:[HOSTADDR]:HOSTPORT`.
    Remove(String),
}

/// Whether an endpoint wants to be called again for the same event.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ready {
    /// Nothing more to do now.
    Done,
    /// A batch was received; there may be more.
    More,
}

/// A port kind's descriptors, ports and I/O.
pub trait Endpoint {
    /// Registers the endpoint's descriptors with [`Ctx::watch`] and adds
    /// the ports it carries from the start.
    fn register(&mut self, ctx: &mut Ctx<'_>) -> io::Result<()>;

    /// Descriptor `sub` (as given to [`Ctx::watch`]) is ready with
    /// `events`: accept, handle control bytes, or receive one batch of
    /// frames into `inbox` (noting each frame's port). The loop forwards
    /// the batch, flushes, and calls again while this returns
    /// [`Ready::More`] (a bounded number of times). A port whose frames
    /// are put in the inbox must not be removed in the same call (the
    /// loop would drop them).
    fn ready(
        &mut self,
        sub: u32,
        events: EpollFlags,
        ctx: &mut Ctx<'_>,
        inbox: &mut Inbox,
    ) -> Ready;

    /// Queues `frame` for `port` (one of this endpoint's).
    fn queue(&mut self, port: PortId, frame: &[u8], stats: &mut Stats);

    /// Sends everything queued (`epoll`: the event loop's, for endpoints
    /// that watch a full port's socket for room, see [`backlog`]).
    fn flush(&mut self, epoll: &Epoll, stats: &mut Stats);

    /// When [`Endpoint::on_deadline`] must run next, if ever.
    fn next_deadline(&self) -> Option<Instant> {
        None
    }

    /// Time-based work (request timeouts, resuming a paused listener).
    fn on_deadline(&mut self, _now: Instant, _ctx: &mut Ctx<'_>) {}

    /// At exit: removes the endpoint's socket files, printing the C
    /// switch's messages on failure.
    fn cleanup(&mut self) {}

    /// After a failed set-up: removes the socket files silently.
    fn discard(&mut self) {}

    /// A line printed at start-up after the `attached` line (e.g. the
    /// guest argument that joins a tunnel port), if any.
    fn announce(&self) -> Option<String> {
        None
    }

    /// On SIGUSR1, after the switch's counters: the endpoint's own
    /// counters, if it keeps any (on stderr).
    fn print_stats(&self, _prog: &str) {}

    /// What `port` (one of this endpoint's) is, for the management
    /// socket: its kind (`daemon`, `bess`, ...) and who is on it, when
    /// known.
    fn port_info(&self, port: PortId) -> (&'static str, Option<String>);

    /// The listening socket's path, for endpoints whose ports connect to
    /// one (the control socket, a bess socket).
    fn listen_path(&self) -> Option<&std::path::Path> {
        None
    }

    /// Whether its ports may be removed through the management socket
    /// (statically configured ports: tunnels, raw, tap, mcast). Default:
    /// no (a guest's port ends with its connection).
    fn removable(&self) -> bool {
        false
    }

    /// The NAT port's host forwards (`hostfwd` on the management
    /// socket): the answer's text or why not. `None`: not a NAT port.
    fn hostfwd(&mut self, _request: &HostFwdRequest) -> Option<Result<String, String>> {
        None
    }

    /// The longest frame this endpoint's ports take (and are sent), given
    /// the switch's largest frame `max_frame`; frames longer than that are
    /// dropped and counted for the port. Default: `max_frame`.
    fn frame_limit(&self, max_frame: usize) -> usize {
        max_frame
    }
}

/// What stands in the event loop's table for an endpoint removed at run
/// time (its descriptors are closed; its index is never reused).
#[derive(Debug)]
pub struct Removed;

impl Endpoint for Removed {
    fn register(&mut self, _ctx: &mut Ctx<'_>) -> io::Result<()> {
        Ok(())
    }
    fn ready(&mut self, _: u32, _: EpollFlags, _: &mut Ctx<'_>, _: &mut Inbox) -> Ready {
        Ready::Done
    }
    fn queue(&mut self, _: PortId, _: &[u8], _: &mut Stats) {}
    fn flush(&mut self, _: &Epoll, _: &mut Stats) {}
    fn port_info(&self, _: PortId) -> (&'static str, Option<String>) {
        ("removed", None)
    }
}

/// Index of an endpoint in the event loop.
pub type EndpointId = u32;

/// One received frame: its port and where it is in the receive batch.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Received {
    /// The port it came from.
    pub port: PortId,
    /// Buffer index in the batch.
    pub slot: usize,
    /// Its length (at most the buffer length).
    pub len: usize,
}

/// The receive buffers shared by all endpoints, and the frames of the last
/// batch.
#[derive(Debug)]
pub struct Inbox {
    /// Preallocated frame buffers.
    pub rx: RecvBatch,
    /// The frames to forward, in order.
    pub frames: Vec<Received>,
}

impl Inbox {
    /// `count` buffers of `len` bytes.
    pub fn new(count: usize, len: usize) -> Inbox {
        Inbox {
            rx: RecvBatch::new(count, len),
            frames: Vec::with_capacity(count),
        }
    }

    /// The bytes of `frame`.
    pub fn bytes(&self, frame: Received) -> &[u8] {
        self.rx.buffer(frame.slot, frame.len)
    }
}

#[derive(Debug, Clone)]
struct PortEntry {
    endpoint: EndpointId,
    label: RawFd,
    /// Frames dropped as longer than this port (or its sender) takes.
    oversized: u64,
    traffic: Traffic,
    /// Its VLANs (default: the default VLAN only, untagged).
    vlans: PortVlans,
    /// A mirror port (netkit's `uml_dump`): gets a copy of every frame,
    /// is never flooded to or learned on.
    mirror: bool,
}

/// A port's frame and byte counts (the management socket's `ports`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Traffic {
    /// Frames received from the port and forwarded or dropped by the core.
    pub frames_in: u64,
    /// Their bytes.
    pub bytes_in: u64,
    /// Frames queued to the port.
    pub frames_out: u64,
    /// Their bytes.
    pub bytes_out: u64,
}

/// Every port of the switch: its endpoint and its label (the number the
/// messages print: a descriptor, as the C switch prints).
#[derive(Debug, Default)]
pub struct PortTable {
    entries: Vec<Option<PortEntry>>,
    free: Vec<PortId>,
    /// Ports with VLANs configured (0: every frame is in the default VLAN
    /// and forwarded untouched, without looking at tags).
    with_vlans: usize,
    /// The mirror ports.
    mirrors: Vec<PortId>,
    /// Per endpoint: the VLANs its new ports get (`vlan default`).
    defaults: std::collections::HashMap<EndpointId, PortVlans>,
}

/// The VLANs of a port that has none configured.
static DEFAULT_VLANS: std::sync::LazyLock<PortVlans> = std::sync::LazyLock::new(PortVlans::default);

impl PortTable {
    /// One more than the largest port id in use (ids below are iterated
    /// when flooding).
    pub fn id_limit(&self) -> PortId {
        self.entries.len() as PortId
    }

    /// The endpoint of `port`, if it exists.
    #[inline]
    pub fn endpoint(&self, port: PortId) -> Option<EndpointId> {
        match self.entries.get(port as usize) {
            Some(Some(e)) => Some(e.endpoint),
            _ => None,
        }
    }

    /// The label of `port`, if it exists.
    pub fn label(&self, port: PortId) -> Option<RawFd> {
        match self.entries.get(port as usize) {
            Some(Some(e)) => Some(e.label),
            _ => None,
        }
    }

    /// Counts a frame dropped because it is longer than `port` takes
    /// (received from it, or to be sent to it).
    pub fn count_oversized(&mut self, port: PortId) {
        if let Some(Some(e)) = self.entries.get_mut(port as usize) {
            e.oversized += 1;
        }
    }

    /// Counts a frame of `len` bytes received from `port`.
    #[inline]
    pub fn count_in(&mut self, port: PortId, len: usize) {
        if let Some(Some(e)) = self.entries.get_mut(port as usize) {
            e.traffic.frames_in += 1;
            e.traffic.bytes_in += len as u64;
        }
    }

    /// Counts a frame of `len` bytes queued to `port`.
    #[inline]
    pub fn count_out(&mut self, port: PortId, len: usize) {
        if let Some(Some(e)) = self.entries.get_mut(port as usize) {
            e.traffic.frames_out += 1;
            e.traffic.bytes_out += len as u64;
        }
    }

    /// The frame and byte counts of `port`.
    pub fn traffic(&self, port: PortId) -> Traffic {
        match self.entries.get(port as usize) {
            Some(Some(e)) => e.traffic,
            _ => Traffic::default(),
        }
    }

    /// The VLANs the ports `endpoint` adds from now on get.
    pub fn set_default_vlans(&mut self, endpoint: EndpointId, vlans: PortVlans) {
        if vlans.is_default() {
            self.defaults.remove(&endpoint);
        } else {
            self.defaults.insert(endpoint, vlans);
        }
    }

    /// The VLANs the ports of `endpoint` get.
    pub fn default_vlans(&self, endpoint: EndpointId) -> PortVlans {
        self.defaults.get(&endpoint).cloned().unwrap_or_default()
    }

    /// Makes `port` a mirror port.
    pub fn set_mirror(&mut self, port: PortId) {
        if let Some(Some(e)) = self.entries.get_mut(port as usize) {
            if !e.mirror {
                e.mirror = true;
                self.mirrors.push(port);
            }
        }
    }

    /// The mirror ports.
    #[inline]
    pub fn mirrors(&self) -> &[PortId] {
        &self.mirrors
    }

    /// Whether `port` is a mirror port.
    #[inline]
    pub fn is_mirror(&self, port: PortId) -> bool {
        !self.mirrors.is_empty() && self.mirrors.contains(&port)
    }

    /// Whether any port has VLANs configured.
    #[inline]
    pub fn vlans_in_use(&self) -> bool {
        self.with_vlans > 0
    }

    /// The VLANs of `port`.
    #[inline]
    pub fn vlans(&self, port: PortId) -> &PortVlans {
        match self.entries.get(port as usize) {
            Some(Some(e)) => &e.vlans,
            _ => &DEFAULT_VLANS,
        }
    }

    /// Sets the VLANs of `port`; false if there is no such port.
    pub fn set_vlans(&mut self, port: PortId, vlans: PortVlans) -> bool {
        let Some(Some(e)) = self.entries.get_mut(port as usize) else {
            return false;
        };
        let was = !e.vlans.is_default();
        let is = !vlans.is_default();
        e.vlans = vlans;
        self.with_vlans = self.with_vlans + usize::from(is) - usize::from(was);
        true
    }

    /// The ports of `endpoint`.
    pub fn of_endpoint(&self, endpoint: EndpointId) -> Vec<PortId> {
        (0..self.id_limit())
            .filter(|&p| self.endpoint(p) == Some(endpoint))
            .collect()
    }

    /// Removes `port` (its endpoint is gone); false if there is none.
    pub fn drop_port(&mut self, port: PortId) -> bool {
        self.remove(port)
    }

    /// The port whose label is `label`, if any.
    pub fn by_label(&self, label: RawFd) -> Option<PortId> {
        self.entries
            .iter()
            .position(|e| e.as_ref().is_some_and(|e| e.label == label))
            .map(|i| i as PortId)
    }

    /// Frames dropped as too long for `port` so far.
    pub fn oversized(&self, port: PortId) -> u64 {
        match self.entries.get(port as usize) {
            Some(Some(e)) => e.oversized,
            _ => 0,
        }
    }

    /// Number of ports.
    pub fn count(&self) -> usize {
        self.entries.iter().flatten().count()
    }

    fn add(&mut self, endpoint: EndpointId, label: RawFd) -> PortId {
        let vlans = self.defaults.get(&endpoint).cloned().unwrap_or_default();
        if !vlans.is_default() {
            self.with_vlans += 1;
        }
        let entry = Some(PortEntry {
            endpoint,
            label,
            oversized: 0,
            traffic: Traffic::default(),
            vlans,
            mirror: false,
        });
        match self.free.pop() {
            Some(id) => {
                self.entries[id as usize] = entry;
                id
            }
            None => {
                self.entries.push(entry);
                self.entries.len() as PortId - 1
            }
        }
    }

    fn remove(&mut self, port: PortId) -> bool {
        match self.entries.get_mut(port as usize).and_then(Option::take) {
            Some(e) => {
                if !e.vlans.is_default() {
                    self.with_vlans -= 1;
                }
                if e.mirror {
                    self.mirrors.retain(|&m| m != port);
                }
                self.free.push(port);
                true
            }
            None => false,
        }
    }
}

/// What an endpoint may use while handling an event.
#[derive(Debug)]
pub struct Ctx<'a> {
    /// `argv[0]`, for messages.
    pub prog: &'a str,
    /// The event loop.
    pub epoll: &'a Epoll,
    /// The endpoint being called.
    pub endpoint: EndpointId,
    /// The port table.
    pub ports: &'a mut PortTable,
    /// The MAC table (purged when a port goes).
    pub macs: &'a mut MacTable,
    /// Counters.
    pub stats: &'a mut Stats,
    /// The longest frame the switch forwards (`--mtu` + 14; at least
    /// 1514): the length of the inbox's buffers.
    pub max_frame: usize,
}

/// Epoll token of `sub` of `endpoint` (tokens below 2^32 are the event
/// loop's own).
pub fn token(endpoint: EndpointId, sub: u32) -> u64 {
    (u64::from(endpoint) + 1) << 32 | u64::from(sub)
}

/// The endpoint and sub-token of an epoll token made by [`token`].
pub fn split_token(token: u64) -> Option<(EndpointId, u32)> {
    let hi = token >> 32;
    (hi > 0).then(|| ((hi - 1) as EndpointId, token as u32))
}

impl Ctx<'_> {
    /// Watches `fd` for input; its events come back to
    /// [`Endpoint::ready`] as `sub`.
    pub fn watch(&self, fd: impl AsFd, sub: u32) -> io::Result<()> {
        self.watch_with(fd, sub, EpollFlags::EPOLLIN)
    }

    /// Like [`Ctx::watch`] with explicit event flags.
    pub fn watch_with(&self, fd: impl AsFd, sub: u32, flags: EpollFlags) -> io::Result<()> {
        self.epoll
            .add(fd, EpollEvent::new(flags, token(self.endpoint, sub)))
            .map_err(io::Error::from)
    }

    /// Stops watching `fd`.
    pub fn unwatch(&self, fd: impl AsFd) {
        let _ = self.epoll.delete(fd);
    }

    /// A new port of this endpoint, printed as `label`.
    pub fn add_port(&mut self, label: RawFd) -> PortId {
        self.ports.add(self.endpoint, label)
    }

    /// Counts a frame received on `port` and dropped because it is longer
    /// than the port takes.
    pub fn drop_oversized(&mut self, port: PortId) {
        self.stats.oversized += 1;
        self.ports.count_oversized(port);
    }

    /// Removes `port` and every MAC address learned on it.
    pub fn remove_port(&mut self, port: PortId) {
        if self.ports.remove(port) {
            self.macs.purge_port(port);
        }
    }
}

/// Sets `O_NONBLOCK` on `fd`.
pub fn set_nonblocking(fd: impl AsFd) -> io::Result<()> {
    use nix::fcntl::{fcntl, FcntlArg, OFlag};
    use std::os::fd::AsRawFd;
    let raw = fd.as_fd().as_raw_fd();
    let flags = fcntl(raw, FcntlArg::F_GETFL).map_err(io::Error::from)?;
    let flags = OFlag::from_bits_truncate(flags) | OFlag::O_NONBLOCK;
    fcntl(raw, FcntlArg::F_SETFL(flags)).map_err(io::Error::from)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_round_trip_and_leave_room_for_the_loop() {
        assert_eq!(split_token(token(0, 0)), Some((0, 0)));
        assert_eq!(split_token(token(7, u32::MAX)), Some((7, u32::MAX)));
        assert_eq!(split_token(5), None);
    }

    #[test]
    fn port_ids_are_reused_and_labels_kept() {
        let mut t = PortTable::default();
        let a = t.add(0, 5);
        let b = t.add(1, 6);
        assert_eq!((a, b), (0, 1));
        assert_eq!(t.label(b), Some(6));
        assert_eq!(t.endpoint(b), Some(1));
        assert!(t.remove(a));
        assert!(!t.remove(a));
        assert_eq!(t.endpoint(a), None);
        assert_eq!(t.count(), 1);
        assert_eq!(t.add(2, 9), a);
        assert_eq!(t.id_limit(), 2);
        t.count_oversized(a);
        t.count_oversized(a);
        t.count_oversized(7);
        assert_eq!((t.oversized(a), t.oversized(b), t.oversized(7)), (2, 0, 0));
        assert!(t.remove(a));
        assert_eq!(t.add(3, 10), a);
        assert_eq!(t.oversized(a), 0, "a new port starts at 0");
    }
}
