//! The VXLAN trunk port (`--vxlan OPTIONS`; RFC 7348, framing in
//! `uml_common::vxlan`): one port that joins the segment to remote VXLAN
//! tunnel endpoints — another switch of ours, a Linux `vxlan` device, Open
//! vSwitch — over UDP. OPTIONS: `local=IP` (the address to bind; port
//! [`vxlan::PORT`] unless `port=`), `remote=IP` (one or more, each a
//! peer), `vni=N` (default 1), `port=N`.
//!
//! Received datagrams count only from a listed remote's address (any
//! source port: Linux picks one per flow) and with our VNI; the others
//! are dropped and counted. As a Linux vxlan device does (RFC 7348 §4),
//! the port learns which remote each source MAC came from
//! ([`vxlan::RemoteTable`], aged as the switch's MAC table): a unicast
//! frame to a known MAC goes to that remote only; unknown, broadcast and
//! multicast destinations are flooded to every remote. Frames are
//! received and sent one datagram each, without blocking; a peer that
//! cannot take a frame loses it.

use std::io;
use std::net::{IpAddr, SocketAddr, UdpSocket};
use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::time::Instant;

use nix::sys::epoll::{Epoll, EpollFlags};
use uml_common::sys::fd::move_high;
use uml_common::vxlan;

use super::{Ctx, Endpoint, Inbox, Ready, Received, Stats, HIGH_FD};
use crate::core::{PortId, DEFAULT_TABLE_CAP, MAX_AGE_SECS};
use crate::error::Error;
use crate::output::err;

/// A VXLAN port's options, checked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VxlanConfig {
    /// Where the port's socket is bound.
    pub local: SocketAddr,
    /// The peers.
    pub remotes: Vec<SocketAddr>,
    /// The network identifier.
    pub vni: u32,
}

/// Parses `local=IP,remote=IP[,remote=IP…][,vni=N][,port=N]`; the error
/// says what is wrong.
pub fn parse_options(text: &str) -> Result<VxlanConfig, String> {
    let (mut local, mut remotes, mut vni, mut port) = (None, Vec::new(), 1u32, vxlan::PORT);
    for item in text.split(',') {
        let (key, value) = item
            .split_once('=')
            .ok_or_else(|| format!("'{item}' is not KEY=VALUE"))?;
        let ip = || -> Result<IpAddr, String> {
            value
                .parse()
                .map_err(|_| format!("{key}='{value}' is not an IP address"))
        };
        match key {
            "local" => local = Some(ip()?),
            "remote" => remotes.push(ip()?),
            "vni" => {
                vni = value
                    .parse()
                    .ok()
                    .filter(|&v| v <= vxlan::MAX_VNI)
                    .ok_or_else(|| format!("vni='{value}' is not a number from 0 to 16777215"))?
            }
            "port" => {
                port = value
                    .parse()
                    .ok()
                    .filter(|&p| p != 0)
                    .ok_or_else(|| format!("port='{value}' is not a port number"))?
            }
            _ => {
                return Err(format!(
                    "unknown option '{key}' (local=, remote=, vni=, port=)"
                ))
            }
        }
    }
    let local = local.ok_or("local=IP is missing")?;
    if remotes.is_empty() {
        return Err("remote=IP is missing".to_string());
    }
    if remotes.iter().any(|r| r.is_ipv4() != local.is_ipv4()) {
        return Err("local= and remote= must be of one IP version".to_string());
    }
    Ok(VxlanConfig {
        local: SocketAddr::new(local, port),
        remotes: remotes
            .into_iter()
            .map(|ip| SocketAddr::new(ip, port))
            .collect(),
        vni,
    })
}

/// A VXLAN trunk port.
#[derive(Debug)]
pub struct Vxlan {
    config: VxlanConfig,
    sock: UdpSocket,
    label: i32,
    port: Option<PortId>,
    /// One datagram: header and frame.
    buf: Vec<u8>,
    /// Dropped: not from a remote, not our VNI, not VXLAN.
    rejected: u64,
    reported: bool,
    /// Which remote (index into `config.remotes`) each MAC is behind.
    learned: vxlan::RemoteTable,
    /// The clock of `learned` (seconds since the port opened).
    start: Instant,
    /// When `learned` was last swept.
    swept: u32,
}

impl Vxlan {
    /// Binds the port's socket.
    pub fn open(prog: &str, config: &VxlanConfig) -> Result<Vxlan, Error> {
        let refuse = |why: String| Error::Vxlan {
            prog: prog.to_string(),
            why,
        };
        let sock = UdpSocket::bind(config.local)
            .map_err(|e| refuse(format!("cannot bind {}: {e}", config.local)))?;
        sock.set_nonblocking(true)
            .map_err(|e| refuse(e.to_string()))?;
        let sock = UdpSocket::from(
            move_high(OwnedFd::from(sock), HIGH_FD).map_err(|e| refuse(e.to_string()))?,
        );
        let label = sock.as_raw_fd();
        Ok(Vxlan {
            config: config.clone(),
            sock,
            label,
            port: None,
            buf: vec![0u8; 65_536],
            rejected: 0,
            reported: false,
            learned: vxlan::RemoteTable::new(MAX_AGE_SECS, DEFAULT_TABLE_CAP),
            start: Instant::now(),
            swept: 0,
        })
    }

    /// Seconds since the port opened (the clock of `learned`).
    fn now(&self) -> u32 {
        u32::try_from(self.start.elapsed().as_secs()).unwrap_or(u32::MAX)
    }

    fn describe(&self) -> String {
        let remotes: Vec<String> = self.config.remotes.iter().map(|r| r.to_string()).collect();
        format!(
            "vxlan port {} ({} <-> {}, vni {})",
            self.label,
            self.config.local,
            remotes.join(" "),
            self.config.vni
        )
    }
}

impl Endpoint for Vxlan {
    fn port_info(&self, _port: PortId) -> (&'static str, Option<String>) {
        ("vxlan", Some(self.describe()))
    }

    fn removable(&self) -> bool {
        true
    }

    fn register(&mut self, ctx: &mut Ctx<'_>) -> io::Result<()> {
        ctx.watch(self.sock.as_fd(), 0)?;
        self.port = Some(ctx.add_port(self.label));
        Ok(())
    }

    fn ready(&mut self, _: u32, _: EpollFlags, ctx: &mut Ctx<'_>, inbox: &mut Inbox) -> Ready {
        let Some(port) = self.port else {
            return Ready::Done;
        };
        let mut slot = 0;
        let now = self.now();
        if now.saturating_sub(self.swept) > MAX_AGE_SECS {
            self.swept = now;
            self.learned.expire(now);
        }
        while slot < inbox.rx.capacity() {
            let (n, from) = match self.sock.recv_from(&mut self.buf) {
                Ok(r) => r,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(_) => return Ready::Done,
            };
            ctx.stats.frames_in += 1;
            let remote = self.config.remotes.iter().position(|r| r.ip() == from.ip());
            let (frame, remote) = match (vxlan::decode(&self.buf[..n], self.config.vni), remote) {
                (Ok(f), Some(r)) => (f, r),
                _ => {
                    self.rejected += 1;
                    continue;
                }
            };
            self.learned.learn(frame, remote, now);
            let room = inbox.rx.buffer_mut(slot);
            if frame.len() > room.len() {
                ctx.drop_oversized(port);
                continue;
            }
            room[..frame.len()].copy_from_slice(frame);
            inbox.frames.push(Received {
                port,
                slot,
                len: frame.len(),
            });
            slot += 1;
        }
        Ready::More
    }

    fn queue(&mut self, _port: PortId, frame: &[u8], stats: &mut Stats) {
        let header = vxlan::header(self.config.vni);
        let n = vxlan::HEADER_LEN + frame.len();
        if n > self.buf.len() {
            stats.oversized += 1;
            return;
        }
        self.buf[..vxlan::HEADER_LEN].copy_from_slice(&header);
        self.buf[vxlan::HEADER_LEN..n].copy_from_slice(frame);
        // A known unicast destination: its remote only; else all.
        let one = if self.learned.is_empty() {
            None
        } else {
            self.learned.remote_for(frame, self.now())
        };
        let remotes = match one {
            Some(i) => self
                .config
                .remotes
                .get(i..=i)
                .unwrap_or(&self.config.remotes),
            None => &self.config.remotes[..],
        };
        for remote in remotes {
            match self.sock.send_to(&self.buf[..n], remote) {
                Ok(_) => stats.frames_out += 1,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => stats.queue_full += 1,
                Err(e) => {
                    stats.send_errors += 1;
                    if !self.reported {
                        self.reported = true;
                        err(&format!("{}: sending to {remote}: {e}\n", self.describe()));
                    }
                }
            }
        }
    }

    fn flush(&mut self, _epoll: &Epoll, _stats: &mut Stats) {}

    fn announce(&self) -> Option<String> {
        Some(format!("{}: a VXLAN trunk\n", self.describe()))
    }

    fn print_stats(&self, prog: &str) {
        if self.rejected > 0 {
            err(&format!(
                "{prog}: {}: {} datagrams dropped (not VXLAN, another VNI, or not from a remote)\n",
                self.describe(),
                self.rejected
            ));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn options() {
        let c = parse_options("local=10.1.0.1,remote=10.1.0.2,remote=10.1.0.3,vni=42").unwrap();
        assert_eq!(c.local, "10.1.0.1:4789".parse().unwrap());
        assert_eq!(c.remotes.len(), 2);
        assert_eq!(c.vni, 42);
        let c = parse_options("remote=::1,local=::1,port=4790").unwrap();
        assert_eq!(c.remotes[0], "[::1]:4790".parse().unwrap());
        for (bad, why) in [
            ("remote=10.0.0.1", "local=IP is missing"),
            ("local=10.0.0.1", "remote=IP is missing"),
            ("local=10.0.0.1,remote=::1", "one IP version"),
            ("local=x,remote=10.0.0.2", "not an IP address"),
            ("local=10.0.0.1,remote=10.0.0.2,vni=16777216", "vni="),
            ("local=10.0.0.1,remote=10.0.0.2,port=0", "port="),
            ("local=10.0.0.1,remote=10.0.0.2,ttl=3", "unknown option"),
            ("local", "not KEY=VALUE"),
        ] {
            let e = parse_options(bad).unwrap_err();
            assert!(e.contains(why), "{bad}: {e}");
        }
    }
}
