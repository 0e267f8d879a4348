//! The QEMU-stream client port (`--qemu-connect PATH`; `docs/vector.md`
//! §12): the switch connects to a unix `SOCK_STREAM` socket where a
//! user-mode network stack or a hypervisor listens — passt (`-s PATH`, or
//! its default `/tmp/passt_N.socket`), gvproxy `-listen-qemu`, QEMU
//! `-netdev stream,server=on` — and exchanges Ethernet frames each preceded
//! by a 4-byte big-endian length (`uml_common::qemu_stream`). One port,
//! numbered by its descriptor.
//!
//! Receiving: bytes are read into a buffer of the endpoint's own and put
//! back together into frames, whatever the pieces the stream delivers. A
//! frame longer than the switch's largest is read past, dropped and
//! counted for the port; a length longer than any Ethernet frame means the
//! peer does not speak this framing: the port is closed, logged and
//! counted (`protocol errors` on SIGUSR1), never a large allocation.
//!
//! Sending never blocks: frames are encoded into the port's queue, which
//! is written as far as the socket takes it; what is left, including a
//! frame written in part, is written when the socket has room
//! (`EPOLLOUT`). The queue holds at most `backlog::BUDGET` bytes; whole
//! frames beyond it are dropped and counted as `queue_full`, as the other
//! connected ports' backlogs are.
//!
//! When the peer closes the connection (or it fails), the port is removed
//! and that is logged once; the switch does not reconnect (passt and
//! QEMU's listeners serve one client and a restarted peer is a new
//! `port add qemu-connect`).

use std::io::{self, Read, Write};
use std::os::fd::{AsFd, AsRawFd};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};

use nix::sys::epoll::{Epoll, EpollFlags};
use uml_common::cli::strerror;
use uml_common::qemu_stream::{Decoded, Decoder, OutQueue};

use super::backlog::{watch_writable, BUDGET};
use super::{Ctx, Endpoint, EndpointId, Inbox, Ready, Received, Stats};
use crate::core::PortId;
use crate::output::{err, out};
use crate::Error;

/// Bytes read from the socket at a time.
const READ_BUF: usize = 64 * 1024;
/// The one descriptor's sub-token.
const SUB: u32 = 0;
/// Events the connection is watched for (and `EPOLLOUT` while bytes wait
/// to be written, or input waits in the buffer).
const EVENTS: EpollFlags = EpollFlags::EPOLLIN.union(EpollFlags::EPOLLRDHUP);

/// A connection to a QEMU-stream peer.
pub struct QemuClient {
    path: PathBuf,
    /// `None` once the port is closed. Non-blocking; writing to a peer
    /// that is gone fails with `EPIPE` (the Rust runtime ignores
    /// `SIGPIPE`).
    fd: Option<UnixStream>,
    label: i32,
    port: Option<PortId>,
    decoder: Decoder,
    rbuf: Vec<u8>,
    /// `rbuf[rpos..rend]` is read but not decoded yet.
    rpos: usize,
    rend: usize,
    out: OutQueue,
    /// Why the port closes, once the frames read before it are forwarded.
    closing: Option<String>,
    /// Whether `EPOLLOUT` is watched.
    waking: bool,
    me: EndpointId,
    send_error_reported: bool,
    /// Lengths no Ethernet frame has (the port was closed for it).
    protocol_errors: u64,
}

impl std::fmt::Debug for QemuClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "QemuClient({}, port {})",
            self.path.display(),
            self.label
        )
    }
}

impl QemuClient {
    /// Connects to the stream socket at `path`.
    pub fn connect(prog: &str, path: &Path) -> Result<QemuClient, Error> {
        let refuse = |source: io::Error| Error::Connect {
            prog: prog.to_string(),
            option: "--qemu-connect",
            path: path.to_path_buf(),
            source,
        };
        let stream = UnixStream::connect(path).map_err(refuse)?;
        stream.set_nonblocking(true).map_err(refuse)?;
        let fd = stream;
        Ok(QemuClient {
            path: path.to_path_buf(),
            label: fd.as_raw_fd(),
            fd: Some(fd),
            port: None,
            decoder: Decoder::new(uml_common::switch::MAX_FRAME_LEN),
            rbuf: vec![0; READ_BUF],
            rpos: 0,
            rend: 0,
            out: OutQueue::new(BUDGET),
            closing: None,
            waking: false,
            me: 0,
            send_error_reported: false,
            protocol_errors: 0,
        })
    }

    /// Writes what waits, as far as the socket takes it.
    fn write_out(&mut self, stats: &mut Stats) {
        let Some(fd) = &self.fd else {
            self.out.clear();
            return;
        };
        let mut fd = fd;
        while !self.out.is_empty() {
            match fd.write(self.out.pending()) {
                Ok(n) => self.out.consume(n),
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return,
                Err(e) => {
                    // The peer is gone (its end of file closes the port)
                    // or the socket failed: what waits is lost.
                    stats.send_errors += 1;
                    self.out.clear();
                    if !self.send_error_reported
                        && !matches!(e.raw_os_error(), Some(libc::EPIPE | libc::ECONNRESET))
                    {
                        self.send_error_reported = true;
                        err(&format!(
                            "Sending to qemu-connect peer '{}' (port {}): {}\n",
                            self.path.display(),
                            self.label,
                            strerror(&e)
                        ));
                    }
                    return;
                }
            }
        }
    }

    /// Watches for `EPOLLOUT` while bytes wait to be written, or input
    /// waits to be decoded or a close to be done (a stream socket is
    /// writable at once, so the loop comes back without new input).
    fn update_wake(&mut self, epoll: &Epoll) {
        let Some(fd) = &self.fd else {
            return;
        };
        let want = !self.out.is_empty() || self.rpos < self.rend || self.closing.is_some();
        if want != self.waking {
            watch_writable(epoll, fd.as_fd(), self.me, SUB, EVENTS, want);
            self.waking = want;
        }
    }

    fn close(&mut self, ctx: &mut Ctx<'_>) {
        let (Some(fd), Some(port)) = (self.fd.take(), self.port.take()) else {
            return;
        };
        ctx.unwatch(&fd);
        ctx.remove_port(port);
        self.out.clear();
        self.rpos = 0;
        self.rend = 0;
        let why = self.closing.take().unwrap_or_default();
        out(&format!(
            "qemu-connect peer '{}' (port {}) {why}: port removed\n",
            self.path.display(),
            self.label
        ));
    }
}

impl Endpoint for QemuClient {
    fn register(&mut self, ctx: &mut Ctx<'_>) -> io::Result<()> {
        self.me = ctx.endpoint;
        self.decoder = Decoder::new(ctx.max_frame);
        let Some(fd) = &self.fd else {
            return Ok(());
        };
        ctx.watch_with(fd, SUB, EVENTS)?;
        self.port = Some(ctx.add_port(self.label));
        Ok(())
    }

    fn ready(
        &mut self,
        _sub: u32,
        events: EpollFlags,
        ctx: &mut Ctx<'_>,
        inbox: &mut Inbox,
    ) -> Ready {
        let (Some(port), true) = (self.port, self.fd.is_some()) else {
            return Ready::Done;
        };
        if self.closing.is_some() {
            // The frames read before were forwarded in the last call.
            self.close(ctx);
            return Ready::Done;
        }
        if events.contains(EpollFlags::EPOLLOUT) {
            self.write_out(ctx.stats);
        }
        let slots = inbox.rx.capacity();
        let mut slot = 0;
        'fill: while slot < slots {
            // Decode what was read.
            let mut input = &self.rbuf[self.rpos..self.rend];
            while slot < slots {
                match self.decoder.next(&mut input) {
                    Ok(Decoded::Frame(frame)) => {
                        let len = frame.len();
                        inbox.rx.buffer_mut(slot)[..len].copy_from_slice(frame);
                        ctx.stats.frames_in += 1;
                        inbox.frames.push(Received { port, slot, len });
                        slot += 1;
                    }
                    Ok(Decoded::Skipped(_)) => {
                        ctx.stats.frames_in += 1;
                        ctx.drop_oversized(port);
                    }
                    Ok(Decoded::NeedMore) => break,
                    Err(e) => {
                        self.protocol_errors += 1;
                        self.closing = Some(format!("sent a bad frame: {e}"));
                        break 'fill;
                    }
                }
            }
            self.rpos = self.rend - input.len();
            if self.rpos < self.rend {
                // The inbox is full: the rest is decoded next time.
                break;
            }
            // Everything read is decoded: read more.
            let Some(mut stream) = self.fd.as_ref() else {
                break;
            };
            match stream.read(&mut self.rbuf) {
                Ok(0) => {
                    self.closing = Some(if self.decoder.at_boundary() {
                        "closed the connection".to_string()
                    } else {
                        "closed the connection in the middle of a frame".to_string()
                    });
                    break;
                }
                Ok(n) => {
                    self.rpos = 0;
                    self.rend = n;
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                Err(e) => {
                    self.closing = Some(format!("failed: {}", strerror(&e)));
                    break;
                }
            }
        }
        if self.closing.is_some() && slot == 0 {
            self.close(ctx);
            return Ready::Done;
        }
        self.update_wake(ctx.epoll);
        if slot == slots || self.closing.is_some() {
            Ready::More
        } else {
            Ready::Done
        }
    }

    fn queue(&mut self, _port: PortId, frame: &[u8], stats: &mut Stats) {
        if self.fd.is_none() {
            return;
        }
        if !self.out.push(frame) {
            stats.queue_full += 1;
            return;
        }
        stats.frames_out += 1;
    }

    fn flush(&mut self, epoll: &Epoll, stats: &mut Stats) {
        self.write_out(stats);
        self.update_wake(epoll);
    }

    fn port_info(&self, _port: PortId) -> (&'static str, Option<String>) {
        ("qemu-connect", Some(self.path.display().to_string()))
    }

    fn removable(&self) -> bool {
        true
    }

    fn announce(&self) -> Option<String> {
        Some(format!(
            "connected to qemu-stream peer '{}': port {}\n",
            self.path.display(),
            self.label
        ))
    }

    fn print_stats(&self, prog: &str) {
        if self.protocol_errors > 0 {
            err(&format!(
                "{prog}: qemu-connect '{}': {} protocol errors\n",
                self.path.display(),
                self.protocol_errors
            ));
        }
    }
}
