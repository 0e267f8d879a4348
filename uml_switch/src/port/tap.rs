//! The tap port kind (`-tap DEV`, `docs/switch.md` §6.4): one port, a host
//! tap device opened with `IFF_TAP | IFF_NO_PI`, numbered by its
//! descriptor as in C. Frames are read and written one `read`/`write` each
//! (a tun descriptor has no batch calls), without blocking.

use std::fs::File;
use std::io::{self, Read, Write};
use std::os::fd::{AsFd, AsRawFd};

use nix::sys::epoll::{Epoll, EpollFlags};
use uml_common::cli::strerror;
use uml_common::sys::tun;

use super::{set_nonblocking, Ctx, Endpoint, Inbox, Ready, Received, Stats};
use crate::core::PortId;
use crate::output::{err, out};

/// The tap endpoint.
#[derive(Debug)]
pub struct Tap {
    file: File,
    port: Option<PortId>,
}

impl Tap {
    /// Opens the tap `name` as the C switch does; on failure prints why and
    /// the switch runs without it. Prints `New connection` on success.
    pub fn open(name: &str) -> Option<Tap> {
        let file = match tun::open_tun(name, tun::Mode::Tap) {
            Ok(f) => f,
            Err(tun::TunError::Open(e)) => {
                err(&format!("Failed to open /dev/net/tun: {}\n", strerror(&e)));
                return None;
            }
            Err(tun::TunError::SetIff(e)) => {
                err(&format!("TUNSETIFF failed: {}\n", strerror(&e)));
                return None;
            }
            Err(tun::TunError::BadName) => {
                err(&format!(
                    "TUNSETIFF failed: {}\n",
                    strerror(&io::Error::from_raw_os_error(libc::EINVAL))
                ));
                return None;
            }
        };
        if let Err(e) = set_nonblocking(file.as_fd()) {
            err(&format!("Setting O_NONBLOCK on tap fd: {}\n", strerror(&e)));
            return None;
        }
        out("New connection\n");
        Some(Tap { file, port: None })
    }
}

impl Endpoint for Tap {
    fn removable(&self) -> bool {
        true
    }

    fn port_info(&self, _port: PortId) -> (&'static str, Option<String>) {
        ("tap", None)
    }

    fn register(&mut self, ctx: &mut Ctx<'_>) -> io::Result<()> {
        ctx.watch(&self.file, 0)?;
        self.port = Some(ctx.add_port(self.file.as_raw_fd()));
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
        let slots = inbox.rx.capacity();
        let mut slot = 0;
        while slot < slots {
            match self.file.read(inbox.rx.buffer_mut(slot)) {
                Ok(0) => return Ready::Done,
                Ok(len) => {
                    ctx.stats.frames_in += 1;
                    inbox.frames.push(Received { port, slot, len });
                    slot += 1;
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ready::Done,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => {
                    err(&format!("Reading tap data: {}\n", strerror(&e)));
                    return Ready::Done;
                }
            }
        }
        Ready::More
    }

    fn queue(&mut self, _port: PortId, frame: &[u8], stats: &mut Stats) {
        match self.file.write(frame) {
            Ok(_) => stats.frames_out += 1,
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => stats.queue_full += 1,
            Err(e) => {
                stats.send_errors += 1;
                err(&format!("send_tap: {}\n", strerror(&e)));
            }
        }
    }

    fn flush(&mut self, _epoll: &Epoll, _stats: &mut Stats) {}
}
