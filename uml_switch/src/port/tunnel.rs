//! What the tunnel port kinds ([`super::l2tpv3`], [`super::gre`]) share: a
//! statically configured port that is one socket, bound to the address
//! the guest sends to and connected to the address the guest binds (so
//! the kernel hands it only that guest's packets), carrying one
//! encapsulated Ethernet frame per datagram or raw IP packet.
//!
//! The encapsulation is a [`Codec`]: it writes the header of each frame
//! sent and checks the header of each packet received (session, cookie,
//! key, GRE flags: both ends must agree on them, as the vector driver
//! does). Packets that fail the check are dropped and counted per port
//! and per reason; the first of each reason is reported on stderr, the
//! counts on SIGUSR1. Frames are received with `recvmmsg` into the port's
//! own buffers (room for the IPv4 header of raw IPv4 sockets and the
//! tunnel header in front of a full frame) and copied into the shared
//! inbox; they are sent with `sendmmsg`, the header and the frame copied
//! once into the send batch. Nothing allocates or prints per frame.
//!
//! The peer is a guest whose interface may be down: the ICMP errors its
//! host then returns surface as `ECONNREFUSED` (and similar) on the next
//! send or receive; they are counted as send errors, never reported.

use std::io;
use std::net::SocketAddr;
use std::os::fd::{AsFd, AsRawFd, OwnedFd};

use nix::sys::epoll::{Epoll, EpollFlags};
use uml_common::cli::strerror;
use uml_common::switch::MAX_FRAME_LEN;
use uml_common::sys::fd::move_high;
use uml_common::sys::ipsock::{self, IpSocketError, IpSocketKind};
use uml_common::sys::mmsg::{RecvBatch, SendBatch};
use uml_common::tunnel::{decode_ipv4, IPV4_MAX_HEADER, L2TPV3_MAX_HEADER};
use uml_common::tunnel_opts::{parse_tunnel_with_mtu, Carrier, TunnelConfig, TunnelKind};

use super::{
    Ctx, Endpoint, Inbox, Ready, Received, Stats, EAGAIN_COOLDOWN, EAGAIN_PATIENCE, HIGH_FD,
    SEND_BATCH,
};
use crate::core::PortId;
use crate::output::err;
use crate::{Error, TunnelRefusal};

/// Room for a tunnel header (the longest: L2TPv3 over UDP with a 64-bit
/// cookie and a counter; GRE headers are shorter).
pub const MAX_HEADER: usize = L2TPV3_MAX_HEADER;

/// The command-line option of `kind`.
pub fn option_name(kind: TunnelKind) -> &'static str {
    match kind {
        TunnelKind::L2tpv3 => super::l2tpv3::OPTION,
        TunnelKind::Gre => super::gre::OPTION,
    }
}

/// Checks every `--l2tpv3`/`--gre` option (the guest's options, see
/// `docs/vector.md` §4, §5) before anything is opened: refuses any a
/// guest would panic on or misread, and two ports that would share a
/// socket address.
pub fn check_options(
    prog: &str,
    options: &[(TunnelKind, String)],
    max_mtu: u32,
) -> Result<Vec<TunnelConfig>, Error> {
    let mut configs: Vec<TunnelConfig> = Vec::with_capacity(options.len());
    for (i, (kind, value)) in options.iter().enumerate() {
        let config =
            parse_tunnel_with_mtu(*kind, value, max_mtu).map_err(|reason| Error::TunnelOption {
                prog: prog.to_string(),
                kind: *kind,
                value: value.clone(),
                reason,
            })?;
        if let Some((j, why)) = configs
            .iter()
            .enumerate()
            .find_map(|(j, c)| config.conflict(c).map(|why| (j, why)))
        {
            let (other_kind, other_value) = &options[j];
            return Err(Error::TunnelConflict {
                prog: prog.to_string(),
                kind: *kind,
                value: value.clone(),
                other_kind: *other_kind,
                other_value: other_value.clone(),
                why,
            });
        }
        debug_assert_eq!(configs.len(), i);
        configs.push(config);
    }
    Ok(configs)
}

/// Why a received packet was dropped.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reject {
    /// Too short for its headers, or not the expected IP packet or GRE
    /// version.
    Malformed,
    /// L2TPv3 session id other than the guest's `tx_session`.
    Session(u32),
    /// L2TPv3 cookie other than the guest's `tx_cookie`.
    Cookie(u64),
    /// GRE flags or protocol other than the guest's (key and sequence
    /// bits as configured, protocol 0x6558).
    Header(u32),
    /// GRE key other than the guest's `tx_key`.
    Key(u32),
}

impl Reject {
    const COUNT: usize = 5;

    fn index(self) -> usize {
        match self {
            Reject::Malformed => 0,
            Reject::Session(_) => 1,
            Reject::Cookie(_) => 2,
            Reject::Header(_) => 3,
            Reject::Key(_) => 4,
        }
    }

    const NAMES: [&'static str; Reject::COUNT] = [
        "malformed",
        "session mismatch",
        "cookie mismatch",
        "header mismatch",
        "key mismatch",
    ];
}

/// A tunnel's encapsulation.
pub trait Codec {
    /// Writes the header of the next frame sent into `out` (at least
    /// [`MAX_HEADER`] bytes) and returns its length.
    fn encode(&mut self, out: &mut [u8]) -> usize;

    /// Checks the header at the start of `packet` (after the IPv4 header
    /// on raw IPv4 sockets); returns where the frame starts.
    fn check(&self, packet: &[u8]) -> Result<usize, Reject>;

    /// Says, for the log, what was expected instead of `r`.
    fn explain(&self, r: Reject) -> String;

    /// The length of the header [`Codec::encode`] writes (its longest,
    /// if it varies).
    fn header_len(&self) -> usize {
        MAX_HEADER
    }
}

/// Per-port counters, printed on SIGUSR1.
#[derive(Debug, Default, Clone, Copy)]
struct Counts {
    received: u64,
    rejected: [u64; Reject::COUNT],
    sent: u64,
    send_errors: u64,
}

/// A tunnel port.
pub struct Tunnel<C> {
    config: TunnelConfig,
    codec: C,
    sock: OwnedFd,
    /// The bound address (the port chosen for `dstport=0`).
    local: SocketAddr,
    /// Raw IPv4 sockets return the IPv4 header in front.
    strip_ipv4: bool,
    port: Option<PortId>,
    label: i32,
    /// Created at the first receive, sized after the inbox's buffers.
    rx: Option<RecvBatch>,
    tx: SendBatch,
    counts: Counts,
    reported: [bool; Reject::COUNT],
    recv_error_reported: bool,
    send_error_reported: bool,
}

impl<C> std::fmt::Debug for Tunnel<C> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "Tunnel({} port {}, {} <-> {})",
            self.config.kind, self.label, self.local, self.config.guest
        )
    }
}

/// Errors a guest whose interface is down (or a host on the way) causes,
/// returned by the next send or receive after the ICMP error came back
/// (port unreachable: `ECONNREFUSED`; protocol unreachable, for raw
/// sockets: `ENOPROTOOPT`): counted, not reported.
fn is_unreachable(e: &io::Error) -> bool {
    matches!(
        e.raw_os_error(),
        Some(
            libc::ECONNREFUSED
                | libc::ENOPROTOOPT
                | libc::EMSGSIZE
                | libc::EHOSTUNREACH
                | libc::ENETUNREACH
                | libc::EHOSTDOWN
                | libc::ENETDOWN
                | libc::EPROTO
        )
    )
}

impl<C: Codec> Tunnel<C> {
    /// Opens the socket of `config`.
    pub fn open(
        prog: &str,
        option: &'static str,
        config: &TunnelConfig,
        codec: C,
    ) -> Result<Tunnel<C>, Error> {
        let refuse = |why: TunnelRefusal| Error::Tunnel {
            prog: prog.to_string(),
            option,
            argument: config.guest_argument(config.local.port()),
            why,
        };
        let kind = match config.carrier {
            Carrier::Udp => IpSocketKind::Udp,
            Carrier::Raw(p) => IpSocketKind::Raw(p),
        };
        let sock = ipsock::open_connected(kind, config.local, config.guest).map_err(|e| {
            refuse(match e {
                IpSocketError::Socket(error) if error.raw_os_error() == Some(libc::EPERM) => {
                    TunnelRefusal::RawSocketDenied {
                        protocol: match config.carrier {
                            Carrier::Raw(115) => "L2TPv3 over IP",
                            _ => "GRE",
                        },
                        error,
                    }
                }
                IpSocketError::Socket(e) => TunnelRefusal::Socket(e),
                IpSocketError::Bind(error) => TunnelRefusal::Bind {
                    at: match config.carrier {
                        Carrier::Udp => config.local.to_string(),
                        Carrier::Raw(_) => config.local.ip().to_string(),
                    },
                    error,
                },
                IpSocketError::Connect(error) => TunnelRefusal::Connect {
                    guest: config.guest,
                    error,
                },
            })
        })?;
        let local =
            ipsock::local_addr(sock.as_fd()).map_err(|e| refuse(TunnelRefusal::Getsockname(e)))?;
        // Above the descriptors that are port numbers, so that -tap and
        // the control connections keep the C switch's numbers.
        let sock = move_high(sock, HIGH_FD).map_err(|e| refuse(TunnelRefusal::MoveHigh(e)))?;
        let mut tx = SendBatch::new(SEND_BATCH, MAX_FRAME_LEN + MAX_HEADER);
        tx.set_eagain_patience(EAGAIN_PATIENCE, EAGAIN_COOLDOWN);
        Ok(Tunnel {
            config: config.clone(),
            codec,
            strip_ipv4: matches!(config.carrier, Carrier::Raw(_)) && local.is_ipv4(),
            label: sock.as_raw_fd(),
            sock,
            local,
            port: None,
            rx: None,
            tx,
            counts: Counts::default(),
            reported: [false; Reject::COUNT],
            recv_error_reported: false,
            send_error_reported: false,
        })
    }

    /// The guest argument that joins this port.
    pub fn guest_argument(&self) -> String {
        self.config.guest_argument(self.local.port())
    }

    /// `l2tpv3 port 1003 (127.0.0.1:5555 <-> 127.0.0.2:5556)`, or without
    /// ports for raw sockets.
    fn describe(&self) -> String {
        let (l, g) = match self.config.carrier {
            Carrier::Udp => (self.local.to_string(), self.config.guest.to_string()),
            Carrier::Raw(_) => (
                self.local.ip().to_string(),
                self.config.guest.ip().to_string(),
            ),
        };
        format!("{} port {} ({l} <-> {g})", self.config.kind, self.label)
    }

    fn reject(&mut self, r: Reject) {
        let i = r.index();
        self.counts.rejected[i] += 1;
        if !self.reported[i] {
            self.reported[i] = true;
            err(&format!(
                "{}: dropped a packet: {}; further packets dropped for this reason are only \
                 counted (SIGUSR1)\n",
                self.describe(),
                self.codec.explain(r)
            ));
        }
    }

    /// Receives one batch into `rx` and passes the frames of the packets
    /// that pass the checks to the inbox.
    fn receive(
        &mut self,
        rx: &mut RecvBatch,
        port: PortId,
        ctx: &mut Ctx<'_>,
        inbox: &mut Inbox,
    ) -> Ready {
        let n = match rx.recv(self.sock.as_fd()) {
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted || is_unreachable(&e) => {
                // A pending ICMP error was returned (and cleared) instead
                // of the packets: read them next time round.
                return Ready::More;
            }
            Err(e) => {
                if !self.recv_error_reported {
                    self.recv_error_reported = true;
                    err(&format!(
                        "Receiving on {}: {}\n",
                        self.describe(),
                        strerror(&e)
                    ));
                }
                return Ready::Done;
            }
        };
        let mut slot = 0;
        for i in 0..n {
            let bytes = rx.frame(i);
            let packet = if self.strip_ipv4 {
                match decode_ipv4(bytes) {
                    Ok(ip) => ip.payload,
                    Err(_) => {
                        self.reject(Reject::Malformed);
                        continue;
                    }
                }
            } else {
                bytes
            };
            let frame = match self.codec.check(packet) {
                Ok(at) => &packet[at..],
                Err(r) => {
                    self.reject(r);
                    continue;
                }
            };
            ctx.stats.frames_in += 1;
            let buf = inbox.rx.buffer_mut(slot);
            if frame.len() > buf.len() || rx.truncated(i) {
                // Longer than the switch's largest frame: not cut.
                ctx.drop_oversized(port);
                continue;
            }
            let len = frame.len();
            buf[..len].copy_from_slice(frame);
            self.counts.received += 1;
            inbox.frames.push(Received { port, slot, len });
            slot += 1;
        }
        if n == rx.capacity() {
            Ready::More
        } else {
            Ready::Done
        }
    }

    fn flush_tx(&mut self, stats: &mut Stats) {
        if self.tx.is_empty() {
            return;
        }
        let mut first_error: Option<io::Error> = None;
        let mut errors = 0u64;
        let f = self.tx.flush(self.sock.as_fd(), |fail| {
            errors += 1;
            if first_error.is_none() && !is_unreachable(&fail.error) {
                first_error = Some(fail.error);
            }
        });
        stats.frames_out += f.sent as u64;
        stats.queue_full += f.would_block as u64;
        stats.send_errors += errors;
        self.counts.sent += f.sent as u64;
        self.counts.send_errors += errors + f.would_block as u64;
        if let Some(e) = first_error {
            if !self.send_error_reported {
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

impl<C: Codec> Endpoint for Tunnel<C> {
    fn removable(&self) -> bool {
        true
    }

    fn port_info(&self, _port: PortId) -> (&'static str, Option<String>) {
        (self.config.kind.name(), Some(self.describe()))
    }

    fn register(&mut self, ctx: &mut Ctx<'_>) -> io::Result<()> {
        if ctx.max_frame != MAX_FRAME_LEN {
            self.tx = SendBatch::new(SEND_BATCH, ctx.max_frame + MAX_HEADER);
            self.tx
                .set_eagain_patience(EAGAIN_PATIENCE, EAGAIN_COOLDOWN);
        }
        ctx.watch(&self.sock, 0)?;
        self.port = Some(ctx.add_port(self.label));
        Ok(())
    }

    fn ready(
        &mut self,
        _sub: u32,
        _events: EpollFlags,
        ctx: &mut Ctx<'_>,
        inbox: &mut Inbox,
    ) -> Ready {
        let Some(port) = self.port else {
            return Ready::Done;
        };
        let mut rx = match self.rx.take() {
            Some(rx) => rx,
            None => {
                let frame_room = inbox.rx.buffer_mut(0).len();
                RecvBatch::new(
                    inbox.rx.capacity(),
                    frame_room + MAX_HEADER + IPV4_MAX_HEADER,
                )
            }
        };
        let ready = self.receive(&mut rx, port, ctx, inbox);
        self.rx = Some(rx);
        ready
    }

    fn queue(&mut self, _port: PortId, frame: &[u8], stats: &mut Stats) {
        if self.tx.is_full() {
            self.flush_tx(stats);
        }
        let mut header = [0u8; MAX_HEADER];
        let h = self.codec.encode(&mut header);
        self.tx
            .push_connected_with_header(&header[..h], frame, self.sock.as_fd(), 0);
    }

    fn flush(&mut self, _epoll: &Epoll, stats: &mut Stats) {
        self.flush_tx(stats);
    }

    fn announce(&self) -> Option<String> {
        Some(format!(
            "{}: the guest joins with {}\n",
            self.describe(),
            self.guest_argument()
        ))
    }

    /// A datagram or IP packet carries at most 65535 bytes: an IPv4 UDP
    /// payload at most 65507, of which the tunnel header takes its part.
    fn frame_limit(&self, max_frame: usize) -> usize {
        let payload = match (self.config.carrier, self.local.is_ipv4()) {
            (Carrier::Udp, true) => 65_507,
            (Carrier::Udp, false) => 65_527,
            (Carrier::Raw(_), true) => 65_515,
            (Carrier::Raw(_), false) => 65_535,
        };
        max_frame.min(payload - self.codec.header_len())
    }

    fn print_stats(&self, prog: &str) {
        let c = &self.counts;
        let mut line = format!(
            "{prog}: {}: frames in {}, out {}, send errors {}; dropped:",
            self.describe(),
            c.received,
            c.sent,
            c.send_errors
        );
        for (i, name) in Reject::NAMES.iter().enumerate() {
            line.push_str(&format!(" {name} {}", c.rejected[i]));
            line.push(if i + 1 < Reject::COUNT { ',' } else { '\n' });
        }
        err(&line);
    }
}
