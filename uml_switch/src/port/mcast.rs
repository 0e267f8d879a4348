//! The mcast port kind (`--mcast[=GROUP[,PORT[,TTL]]]`; `docs/vector.md`
//! §7): one port that is a member of the multicast group of the legacy
//! `ethN=mcast` transport (kernels up to 6.15; 6.16 removed it). Guests
//! join with `eth0=mcast,MAC,GROUP,PORT,TTL`; the defaults are the
//! kernel's own (`umcast_kern.c`): 239.192.168.1, port 1102, TTL 1.
//!
//! Wire format: one bare Ethernet frame per UDP datagram, sent to
//! `GROUP:PORT`. The group is a shared segment: every member gets every
//! member's frames, so the switch is one more member and the whole group
//! is one port (frames between two guests of the group reach each other
//! directly; the switch learns both on this port and forwards nothing).
//!
//! The guests send with multicast loop on, so the switch also receives
//! its own frames; it must not forward them again. It receives on a
//! member socket bound to `GROUP:PORT` like the guests' and sends from a
//! second socket bound to a port of its own: datagrams from that socket's
//! address are its own and are dropped (counted). A route to the group
//! must exist (e.g. `ip route add 224.0.0.0/4 dev IFACE`); the guests need
//! it too.
//!
//! Frames are received with `recvmmsg` straight into the inbox and sent
//! with `sendmmsg`. The legacy devices' MTU is at most 1500, so the port
//! takes and sends frames of at most 1514 bytes; longer ones are dropped
//! and counted.

use std::io;
use std::net::{Ipv4Addr, SocketAddr, SocketAddrV4, UdpSocket};
use std::os::fd::{AsFd, AsRawFd, OwnedFd};

use nix::sys::epoll::{Epoll, EpollFlags};
use uml_common::cli::strerror;
use uml_common::switch::MAX_FRAME_LEN;
use uml_common::sys::fd::move_high;
use uml_common::sys::mcast;
use uml_common::sys::mmsg::SendBatch;

use super::{
    Ctx, Endpoint, Inbox, Ready, Received, Stats, EAGAIN_COOLDOWN, EAGAIN_PATIENCE, HIGH_FD,
    SEND_BATCH,
};
use crate::core::PortId;
use crate::output::err;
use crate::{Error, McastRefusal};

/// The command-line option of this kind.
pub const OPTION: &str = "--mcast";
/// The kernel's default group (`umcast_kern.c`, `mcast_setup`).
pub const DEFAULT_GROUP: Ipv4Addr = Ipv4Addr::new(239, 192, 168, 1);
/// The kernel's default port.
pub const DEFAULT_PORT: u16 = 1102;
/// The kernel's default TTL.
pub const DEFAULT_TTL: u32 = 1;

/// A checked `--mcast` value.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct McastConfig {
    /// The group address.
    pub group: Ipv4Addr,
    /// The UDP port (the guests' local and remote port).
    pub port: u16,
    /// Multicast TTL of what the switch sends.
    pub ttl: u32,
}

impl Default for McastConfig {
    fn default() -> Self {
        McastConfig {
            group: DEFAULT_GROUP,
            port: DEFAULT_PORT,
            ttl: DEFAULT_TTL,
        }
    }
}

impl McastConfig {
    /// Reads `GROUP[,PORT[,TTL]]` (empty: all defaults; an empty field:
    /// its default). Refuses what a guest given the same values could not
    /// use: a group that is not an IPv4 multicast address (its join
    /// fails), port 0 (it would bind a random port and send to port 0), a
    /// TTL above 255 (refused by the kernel when the interface comes up).
    pub fn parse(value: &str) -> Result<McastConfig, String> {
        let mut c = McastConfig::default();
        if value.is_empty() {
            return Ok(c);
        }
        let fields: Vec<&str> = value.split(',').collect();
        if fields.len() > 3 {
            return Err(format!(
                "expected GROUP[,PORT[,TTL]], got {} fields (the guest's eth0=mcast,MAC,GROUP,\
                 PORT,TTL without eth0=mcast,MAC)",
                fields.len()
            ));
        }
        if let Some(g) = fields.first().filter(|g| !g.is_empty()) {
            let ip: Ipv4Addr = g
                .parse()
                .map_err(|_| format!("{g}: not a numeric IPv4 address"))?;
            if !ip.is_multicast() {
                return Err(format!(
                    "{g}: not a multicast address (224.0.0.0 to 239.255.255.255; the guests' \
                     default is {DEFAULT_GROUP})"
                ));
            }
            c.group = ip;
        }
        if let Some(p) = fields.get(1).filter(|p| !p.is_empty()) {
            c.port = match p.parse::<u16>() {
                Ok(n) if n > 0 => n,
                _ => return Err(format!("port {p}: expected 1 to 65535")),
            };
        }
        if let Some(t) = fields.get(2).filter(|t| !t.is_empty()) {
            c.ttl = match t.parse::<u32>() {
                Ok(n) if n <= 255 => n,
                _ => return Err(format!("ttl {t}: expected 0 to 255")),
            };
        }
        Ok(c)
    }

    /// The kernel argument that joins this group.
    pub fn guest_argument(&self) -> String {
        format!("eth0=mcast,,{},{},{}", self.group, self.port, self.ttl)
    }
}

/// Checks every `--mcast` value before anything is opened; refuses two
/// ports on the same group and port (each would receive the other's
/// frames as a guest's and send them back).
pub fn check_options(prog: &str, values: &[String]) -> Result<Vec<McastConfig>, Error> {
    let mut out: Vec<McastConfig> = Vec::new();
    for v in values {
        let c = McastConfig::parse(v).map_err(|why| Error::McastOption {
            prog: prog.to_string(),
            value: v.clone(),
            why,
        })?;
        if out.iter().any(|o| o.group == c.group && o.port == c.port) {
            return Err(Error::McastTwice {
                prog: prog.to_string(),
                value: v.clone(),
                config: c,
            });
        }
        out.push(c);
    }
    Ok(out)
}

/// Per-port counters, printed on SIGUSR1.
#[derive(Debug, Default, Clone, Copy)]
struct Counts {
    received: u64,
    own: u64,
    sent: u64,
    send_errors: u64,
}

/// An mcast port.
pub struct Mcast {
    config: McastConfig,
    rx: OwnedFd,
    tx_sock: OwnedFd,
    /// The sending socket's address: datagrams from it are the switch's.
    own: SocketAddrV4,
    label: i32,
    port: Option<PortId>,
    tx: SendBatch,
    counts: Counts,
    send_error_reported: bool,
    recv_error_reported: bool,
}

impl std::fmt::Debug for Mcast {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Mcast({} port {})", self.describe_group(), self.label)
    }
}

/// Whether a datagram from `from` was sent by the socket bound to `own`.
fn is_own(own: SocketAddrV4, from: Option<SocketAddrV4>) -> bool {
    from.is_some_and(|a| {
        a.port() == own.port() && (a.ip() == own.ip() || own.ip().is_unspecified())
    })
}

impl Mcast {
    /// Joins the group of `config`.
    pub fn open(prog: &str, config: &McastConfig) -> Result<Mcast, Error> {
        let refuse = |why: McastRefusal| Error::Mcast {
            prog: prog.to_string(),
            config: *config,
            why,
        };
        let rx = mcast::open_receiver(config.group, config.port)
            .map_err(|e| refuse(McastRefusal::Open(e)))?;
        let tx_sock = mcast::open_sender(config.group, config.port, config.ttl)
            .map_err(|e| refuse(McastRefusal::Open(e)))?;
        let own = match tx_sock.local_addr() {
            Ok(SocketAddr::V4(a)) => a,
            Ok(other) => return Err(refuse(McastRefusal::UnexpectedLocal(other))),
            Err(e) => return Err(refuse(McastRefusal::Getsockname(e))),
        };
        // Above the descriptors that are port numbers, so that -tap and the
        // control connections keep the C switch's numbers.
        let high = |s: UdpSocket| move_high(OwnedFd::from(s), HIGH_FD);
        let rx = high(rx).map_err(|e| refuse(McastRefusal::MoveHigh(e)))?;
        let tx_sock = high(tx_sock).map_err(|e| refuse(McastRefusal::MoveHigh(e)))?;
        let mut tx = SendBatch::new(SEND_BATCH, MAX_FRAME_LEN);
        tx.set_eagain_patience(EAGAIN_PATIENCE, EAGAIN_COOLDOWN);
        Ok(Mcast {
            config: *config,
            label: rx.as_raw_fd(),
            rx,
            tx_sock,
            own,
            port: None,
            tx,
            counts: Counts::default(),
            send_error_reported: false,
            recv_error_reported: false,
        })
    }

    fn describe_group(&self) -> String {
        format!(
            "group {}:{}, ttl {}",
            self.config.group, self.config.port, self.config.ttl
        )
    }

    fn describe(&self) -> String {
        format!("mcast port {} ({})", self.label, self.describe_group())
    }

    fn flush_tx(&mut self, stats: &mut Stats) {
        if self.tx.is_empty() {
            return;
        }
        let mut first_error: Option<io::Error> = None;
        let mut errors = 0u64;
        let f = self.tx.flush(self.tx_sock.as_fd(), |fail| {
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

impl Endpoint for Mcast {
    fn removable(&self) -> bool {
        true
    }

    fn port_info(&self, _port: PortId) -> (&'static str, Option<String>) {
        ("mcast", Some(self.describe_group()))
    }

    fn register(&mut self, ctx: &mut Ctx<'_>) -> io::Result<()> {
        ctx.watch(&self.rx, 0)?;
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
        let n = match inbox.rx.recv(self.rx.as_fd()) {
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => return Ready::More,
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
        for i in 0..n {
            if is_own(self.own, mcast::sender_v4(inbox.rx.sender(i))) {
                self.counts.own += 1;
                continue;
            }
            ctx.stats.frames_in += 1;
            self.counts.received += 1;
            let len = inbox.rx.frame(i).len();
            if inbox.rx.truncated(i) || len > MAX_FRAME_LEN {
                ctx.drop_oversized(port);
                continue;
            }
            inbox.frames.push(Received { port, slot: i, len });
        }
        if n == inbox.rx.capacity() {
            Ready::More
        } else {
            Ready::Done
        }
    }

    fn queue(&mut self, _port: PortId, frame: &[u8], stats: &mut Stats) {
        if self.tx.is_full() {
            self.flush_tx(stats);
        }
        self.tx.push_connected(frame, self.tx_sock.as_fd(), 0);
    }

    fn flush(&mut self, _epoll: &Epoll, stats: &mut Stats) {
        self.flush_tx(stats);
    }

    fn announce(&self) -> Option<String> {
        Some(format!(
            "{}: guests join with {}\n",
            self.describe(),
            self.config.guest_argument()
        ))
    }

    /// The legacy devices' MTU is at most 1500.
    fn frame_limit(&self, _max_frame: usize) -> usize {
        MAX_FRAME_LEN
    }

    fn print_stats(&self, prog: &str) {
        let c = &self.counts;
        err(&format!(
            "{prog}: {}: frames in {}, out {}, send errors {}; own frames looped back and \
             dropped {}\n",
            self.describe(),
            c.received,
            c.sent,
            c.send_errors,
            c.own
        ));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_the_kernels() {
        let d = McastConfig::parse("").unwrap();
        assert_eq!(d, McastConfig::default());
        assert_eq!(d.guest_argument(), "eth0=mcast,,239.192.168.1,1102,1");
        assert_eq!(McastConfig::parse(",,").unwrap(), d);
        let c = McastConfig::parse("239.1.2.3,2000,0").unwrap();
        assert_eq!(
            (c.group, c.port, c.ttl),
            (Ipv4Addr::new(239, 1, 2, 3), 2000, 0)
        );
        let c = McastConfig::parse(",1103").unwrap();
        assert_eq!((c.group, c.port, c.ttl), (DEFAULT_GROUP, 1103, 1));
    }

    #[test]
    fn values_a_guest_could_not_use_are_refused() {
        for (bad, why) in [
            ("10.0.0.1", "not a multicast address"),
            ("239.1.2", "not a numeric IPv4 address"),
            ("localhost", "not a numeric IPv4 address"),
            ("239.1.2.3,0", "expected 1 to 65535"),
            ("239.1.2.3,65536", "expected 1 to 65535"),
            ("239.1.2.3,x", "expected 1 to 65535"),
            ("239.1.2.3,1,256", "expected 0 to 255"),
            ("239.1.2.3,1,-1", "expected 0 to 255"),
            ("fe:fd:0:0:0:1,239.1.2.3,1,1", "4 fields"),
        ] {
            let e = McastConfig::parse(bad).unwrap_err();
            assert!(e.contains(why), "{bad}: {e}");
        }
    }

    #[test]
    fn own_datagrams_are_recognised_by_address_and_port() {
        let own = SocketAddrV4::new(Ipv4Addr::LOCALHOST, 40000);
        let other_ip = SocketAddrV4::new(Ipv4Addr::new(10, 0, 0, 1), 40000);
        assert!(is_own(own, Some(own)));
        assert!(!is_own(own, None));
        assert!(!is_own(
            own,
            Some(SocketAddrV4::new(Ipv4Addr::LOCALHOST, 1102))
        ));
        assert!(!is_own(own, Some(other_ip)));
        let any = SocketAddrV4::new(Ipv4Addr::UNSPECIFIED, 40000);
        assert!(is_own(any, Some(other_ip)));
    }
}
