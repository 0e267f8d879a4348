//! Frames kept for ports whose receiver is full, for the port kinds whose
//! ports are connected sockets of their own (bess connections, vde data
//! sockets).
//!
//! A guest that is briefly slower than its senders (the common case: a
//! TCP receiver on a busy machine) fills its socket; the switch must
//! neither wait for it (that would stall every other port) nor drop the
//! frames at once (TCP then slows down far below what the guest could
//! take). So when a port's socket refuses a frame with `EAGAIN`, that
//! frame and every later one for the port are kept in its [`Backlog`]
//! (at most [`BUDGET`] bytes), the port's descriptor is watched for
//! `EPOLLOUT`, and the kept frames are sent, in order, as soon as the
//! socket has room again. Only frames beyond the budget are dropped (and
//! counted as `queue_full`): a guest that stops reading costs the switch
//! the budget's memory and one copy per frame, and no waiting.

use std::io;
use std::os::fd::BorrowedFd;

use nix::sys::epoll::{Epoll, EpollEvent, EpollFlags};
use uml_common::sys::mmsg::{Backlog, SendBatch};

use super::{token, EndpointId, Stats};
use crate::core::PortId;

/// Bytes of frames kept per port (about 346 full 1514-byte frames; more
/// than a guest's own receive ring).
pub const BUDGET: usize = 512 * 1024;

/// What [`Backlogs::keep`] did with a frame.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kept {
    /// Kept; the port's backlog was empty before (start watching for
    /// `EPOLLOUT`).
    First,
    /// Kept after others.
    More,
    /// Over the budget: dropped and counted.
    Dropped,
}

/// The backlogs of an endpoint's ports, indexed by port id.
#[derive(Debug, Default)]
pub struct Backlogs {
    per_port: Vec<Option<Backlog>>,
    /// Ports whose backlog was started since [`Backlogs::take_started`]
    /// (to be watched for `EPOLLOUT`).
    started: Vec<PortId>,
}

impl Backlogs {
    /// Whether `port` has frames waiting: new frames for it must go after
    /// them ([`Backlogs::keep`]), not to the socket.
    #[inline]
    pub fn is_waiting(&self, port: PortId) -> bool {
        matches!(self.per_port.get(port as usize), Some(Some(b)) if !b.is_empty())
    }

    /// Keeps `frame` for `port` after the frames already kept.
    pub fn keep(&mut self, port: PortId, frame: &[u8], stats: &mut Stats) -> Kept {
        let i = port as usize;
        if self.per_port.len() <= i {
            self.per_port.resize_with(i + 1, || None);
        }
        let backlog = self.per_port[i].get_or_insert_with(|| Backlog::new(BUDGET));
        let first = backlog.is_empty();
        if !backlog.push(frame) {
            stats.queue_full += 1;
            return Kept::Dropped;
        }
        if first {
            Kept::First
        } else {
            Kept::More
        }
    }

    /// Sends `tx` on `fd` (or on each message's connected socket): the
    /// frames a full connected socket refuses go to their port's backlog.
    /// Returns the other failures (port, error), for the caller to report.
    pub fn send_batch(
        &mut self,
        tx: &mut SendBatch,
        fd: BorrowedFd<'_>,
        stats: &mut Stats,
    ) -> Vec<(PortId, io::Error)> {
        let mut failed = Vec::new();
        let f = tx.flush_deferring(
            fd,
            |fail| failed.push((fail.tag, fail.error)),
            |port, frame| {
                if self.keep(port, frame, stats) == Kept::First {
                    self.started.push(port);
                }
            },
        );
        stats.frames_out += f.sent as u64;
        stats.queue_full += f.would_block as u64;
        stats.send_errors += failed.len() as u64;
        failed
    }

    /// The ports whose backlog was started since the last call: watch
    /// their sockets for `EPOLLOUT`.
    pub fn take_started(&mut self) -> Vec<PortId> {
        std::mem::take(&mut self.started)
    }

    /// Sends what `port` has kept on its socket `fd`, as far as the
    /// receiver takes it. Returns whether nothing is left (stop watching
    /// for `EPOLLOUT`) and the first error other than a full receiver.
    pub fn send(
        &mut self,
        port: PortId,
        fd: BorrowedFd<'_>,
        stats: &mut Stats,
    ) -> (bool, Option<io::Error>) {
        let Some(Some(backlog)) = self.per_port.get_mut(port as usize) else {
            return (true, None);
        };
        let sent = backlog.send(fd);
        stats.frames_out += sent.sent as u64;
        stats.send_errors += sent.failed as u64;
        (backlog.is_empty(), sent.error)
    }

    /// Forgets `port`'s frames and memory (the port is gone).
    pub fn forget(&mut self, port: PortId) {
        if let Some(slot) = self.per_port.get_mut(port as usize) {
            *slot = None;
        }
    }
}

/// Watches `fd` (registered as `sub` of `endpoint` with `base` flags, or
/// not registered at all when `base` is empty) for `EPOLLOUT` as well, or
/// no longer.
pub fn watch_writable(
    epoll: &Epoll,
    fd: BorrowedFd<'_>,
    endpoint: EndpointId,
    sub: u32,
    base: EpollFlags,
    on: bool,
) {
    let flags = if on {
        base | EpollFlags::EPOLLOUT
    } else {
        base
    };
    let ev = EpollEvent::new(flags, token(endpoint, sub));
    // These fail only if fd is not (or already) registered, which cannot
    // be: a descriptor leaves the epoll set only with its port.
    if !base.is_empty() {
        let mut ev = ev;
        let _ = epoll.modify(fd, &mut ev);
    } else if on {
        let _ = epoll.add(fd, ev);
    } else {
        let _ = epoll.delete(fd);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::fd::AsFd;
    use std::os::unix::net::UnixDatagram;

    #[test]
    fn frames_wait_in_order_until_the_receiver_has_room() {
        let (a, b) = UnixDatagram::pair().unwrap();
        a.set_nonblocking(true).unwrap();
        b.set_nonblocking(true).unwrap();
        let mut stats = Stats::default();
        let mut backlogs = Backlogs::default();
        assert!(!backlogs.is_waiting(3));
        assert_eq!(backlogs.keep(3, &[1; 60], &mut stats), Kept::First);
        assert_eq!(backlogs.keep(3, &[2; 60], &mut stats), Kept::More);
        assert!(backlogs.is_waiting(3) && !backlogs.is_waiting(2));
        // Over the budget: dropped and counted.
        assert_eq!(
            backlogs.keep(3, &vec![0; BUDGET], &mut stats),
            Kept::Dropped
        );
        assert_eq!(stats.queue_full, 1);
        let (empty, error) = backlogs.send(3, a.as_fd(), &mut stats);
        assert!(empty && error.is_none());
        assert_eq!(stats.frames_out, 2);
        assert!(!backlogs.is_waiting(3));
        let mut buf = [0u8; 100];
        assert_eq!(b.recv(&mut buf).unwrap(), 60);
        assert_eq!(buf[0], 1);
        assert_eq!(b.recv(&mut buf).unwrap(), 60);
        assert_eq!(buf[0], 2);
        // A port that goes loses what it kept.
        assert_eq!(backlogs.keep(3, &[3; 60], &mut stats), Kept::First);
        backlogs.forget(3);
        assert!(!backlogs.is_waiting(3));
        let (empty, error) = backlogs.send(3, a.as_fd(), &mut stats);
        assert!(empty && error.is_none());
        assert_eq!(stats.frames_out, 2);
    }
}
