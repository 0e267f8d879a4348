//! The pcap input port (`--pcap-port IFNAME[,filter=EXPR]`, `port add
//! pcap IFNAME [filter=EXPR]`; `docs/pcap-port.md`): one read-only port
//! fed with the frames that libpcap captures on a host interface and that
//! pass a BPF filter.
//!
//! The switch is static-pie and libpcap has no usable static archive, so
//! the capture runs in a helper program, `uml_switch_pcap` (dynamically
//! linked, [`uml_common::pcap_port::DEFAULT_HELPER`] or the program named
//! by `$UML_SWITCH_PCAP`), spawned here with one end of a
//! `SOCK_SEQPACKET` socketpair. Its first message says whether the
//! capture runs (a bad interface or filter is an error at start, or the
//! management socket's `error:` answer); then every message is a frame,
//! received here in batches like a bess connection's. The switch shuts its
//! sending side down: frames the core forwards to this port are counted
//! and discarded, never sent. The helper drops root and its capabilities
//! once the capture is open, and exits when the switch closes the socket
//! (the port is removed, or the switch ends).

use std::io;
use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use nix::fcntl::{fcntl, FcntlArg, FdFlag};
use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
use nix::sys::epoll::{Epoll, EpollFlags};
use nix::sys::socket::{
    recv, shutdown, socketpair, AddressFamily, MsgFlags, Shutdown, SockFlag, SockType,
};
use uml_common::cli::strerror;
use uml_common::pcap_port::{parse_status, PcapSpec, DEFAULT_HELPER, HELPER_ENV};
use uml_common::sys::fd::move_high;

use super::{Ctx, Endpoint, Inbox, Ready, Received, Stats, HIGH_FD};
use crate::core::PortId;
use crate::output::out;
use crate::Error;

/// The command-line option of this kind.
pub const OPTION: &str = "--pcap-port";
/// How long the helper may take to open the capture.
const START_TIMEOUT: Duration = Duration::from_secs(10);
/// How long a helper whose socket was closed may take to exit before it
/// is killed.
const EXIT_TIMEOUT: Duration = Duration::from_secs(1);

/// The helper program: `$UML_SWITCH_PCAP`, else the packaged path.
pub fn helper_path() -> PathBuf {
    match std::env::var_os(HELPER_ENV) {
        Some(p) if !p.is_empty() => PathBuf::from(p),
        _ => PathBuf::from(DEFAULT_HELPER),
    }
}

#[derive(Debug, Default, Clone, Copy)]
struct Counts {
    received: u64,
    discarded: u64,
}

/// A pcap port.
#[derive(Debug)]
pub struct Pcap {
    spec: PcapSpec,
    sock: Option<OwnedFd>,
    child: Option<Child>,
    label: i32,
    port: Option<PortId>,
    counts: Counts,
}

/// Waits (bounded) for the helper to exit, killing it when it does not.
fn reap(child: &mut Child) {
    let deadline = Instant::now() + EXIT_TIMEOUT;
    loop {
        match child.try_wait() {
            Ok(Some(_)) | Err(_) => return,
            Ok(None) if Instant::now() >= deadline => {
                let _ = child.kill();
                let _ = child.wait();
                return;
            }
            Ok(None) => std::thread::sleep(Duration::from_millis(5)),
        }
    }
}

/// Waits for the helper's status message on `sock`.
fn status(sock: &OwnedFd) -> Result<(), String> {
    let deadline = Instant::now() + START_TIMEOUT;
    let mut buf = vec![0u8; 4096];
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Err(format!(
                "the capture helper did not answer in {} s",
                START_TIMEOUT.as_secs()
            ));
        }
        let ms = u16::try_from(left.as_millis().max(1)).unwrap_or(u16::MAX);
        let mut fds = [PollFd::new(sock.as_fd(), PollFlags::POLLIN)];
        match poll(&mut fds, PollTimeout::from(ms)) {
            Ok(0) => continue,
            Ok(_) => {}
            Err(nix::errno::Errno::EINTR) => continue,
            Err(e) => return Err(format!("poll: {}", e.desc())),
        }
        return match recv(sock.as_raw_fd(), &mut buf, MsgFlags::MSG_DONTWAIT) {
            Ok(0) => Err("the capture helper ended without starting".to_string()),
            Ok(n) => parse_status(&buf[..n]),
            Err(nix::errno::Errno::EAGAIN | nix::errno::Errno::EINTR) => continue,
            Err(e) => Err(format!("capture helper: {}", e.desc())),
        };
    }
}

impl Pcap {
    /// Starts the helper on `spec`'s interface and filter and waits for
    /// it to say that the capture runs.
    pub fn open(prog: &str, spec: &PcapSpec) -> Result<Pcap, Error> {
        let refuse = |why: String| Error::PcapPort {
            prog: prog.to_string(),
            ifname: spec.ifname.clone(),
            why,
        };
        let (ours, theirs) = socketpair(
            AddressFamily::Unix,
            SockType::SeqPacket,
            None,
            SockFlag::SOCK_CLOEXEC,
        )
        .map_err(|e| refuse(format!("socketpair: {}", e.desc())))?;
        // Inherited by the helper only (the switch is single-threaded: no
        // other program is started meanwhile).
        fcntl(theirs.as_raw_fd(), FcntlArg::F_SETFD(FdFlag::empty()))
            .map_err(|e| refuse(format!("fcntl: {}", e.desc())))?;
        let helper = helper_path();
        let mut cmd = Command::new(&helper);
        cmd.arg("--fd")
            .arg(theirs.as_raw_fd().to_string())
            .arg(&spec.ifname)
            .arg(spec.filter.as_deref().unwrap_or(""))
            .stdin(Stdio::null());
        let spawned = cmd.spawn();
        drop(theirs);
        let mut child = spawned.map_err(|e| {
            refuse(format!(
                "cannot run the capture helper '{}': {}",
                helper.display(),
                strerror(&e)
            ))
        })?;
        let fail = |child: &mut Child, why: String| {
            reap(child);
            refuse(why)
        };
        let ours = match move_high(ours, HIGH_FD) {
            Ok(fd) => fd,
            Err(e) => return Err(fail(&mut child, strerror(&e))),
        };
        if let Err(why) = status(&ours) {
            // Closing our end makes a helper that still runs exit.
            drop(ours);
            return Err(fail(&mut child, why));
        }
        // Read-only: nothing is ever sent to the helper.
        let _ = shutdown(ours.as_raw_fd(), Shutdown::Write);
        if let Err(e) = super::set_nonblocking(&ours) {
            drop(ours);
            return Err(fail(&mut child, strerror(&e)));
        }
        Ok(Pcap {
            spec: spec.clone(),
            label: ours.as_raw_fd(),
            sock: Some(ours),
            child: Some(child),
            port: None,
            counts: Counts::default(),
        })
    }

    fn describe(&self) -> String {
        format!("pcap port {} on '{}'", self.label, self.spec.ifname)
    }

    /// Closes the socket (the helper then exits) and reaps the helper.
    fn stop(&mut self) {
        self.sock = None;
        if let Some(mut child) = self.child.take() {
            reap(&mut child);
        }
    }
}

impl Endpoint for Pcap {
    fn register(&mut self, ctx: &mut Ctx<'_>) -> io::Result<()> {
        if let Some(sock) = &self.sock {
            ctx.watch(sock, 0)?;
        }
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
        let (Some(port), Some(sock)) = (self.port, &self.sock) else {
            return Ready::Done;
        };
        let (n, failed) = match inbox.rx.recv(sock.as_fd()) {
            Ok(n) => (n, false),
            Err(e) => {
                out(&format!(
                    "{}: capture helper: {}\n",
                    self.describe(),
                    strerror(&e)
                ));
                (0, true)
            }
        };
        // The helper never sends an empty message: one is its end.
        let frames = (0..n)
            .take_while(|&i| !inbox.rx.frame(i).is_empty())
            .count();
        for i in 0..frames {
            ctx.stats.frames_in += 1;
            self.counts.received += 1;
            if inbox.rx.truncated(i) {
                ctx.drop_oversized(port);
                continue;
            }
            let len = inbox.rx.frame(i).len();
            inbox.frames.push(Received { port, slot: i, len });
        }
        if frames > 0 && frames == inbox.rx.capacity() {
            return Ready::More;
        }
        let ended = failed
            || frames < n
            || (n == 0 && events.intersects(EpollFlags::EPOLLHUP | EpollFlags::EPOLLERR));
        if ended && frames == 0 {
            // Nothing of it waits in the inbox: the port goes now.
            out(&format!(
                "{}: the capture helper ended; port removed\n",
                self.describe()
            ));
            if let Some(sock) = &self.sock {
                ctx.unwatch(sock);
            }
            ctx.remove_port(port);
            self.port = None;
            self.stop();
        } else if ended {
            return Ready::More;
        }
        Ready::Done
    }

    fn queue(&mut self, _port: PortId, _frame: &[u8], _stats: &mut Stats) {
        // Read-only: what the segment sends to the interface is dropped.
        self.counts.discarded += 1;
    }

    fn flush(&mut self, _epoll: &Epoll, _stats: &mut Stats) {}

    fn cleanup(&mut self) {
        self.stop();
    }

    fn discard(&mut self) {
        self.stop();
    }

    fn announce(&self) -> Option<String> {
        Some(format!(
            "{} (read-only, {}): frames captured there enter the segment\n",
            self.describe(),
            match &self.spec.filter {
                Some(f) => format!("filter '{f}'"),
                None => "no filter".to_string(),
            }
        ))
    }

    fn print_stats(&self, prog: &str) {
        crate::output::err(&format!(
            "{prog}: {}: frames in {}, discarded out {}\n",
            self.describe(),
            self.counts.received,
            self.counts.discarded
        ));
    }

    fn port_info(&self, _port: PortId) -> (&'static str, Option<String>) {
        (
            "pcap",
            Some(match &self.spec.filter {
                Some(f) => format!("{} filter={f}", self.spec.ifname),
                None => self.spec.ifname.clone(),
            }),
        )
    }

    fn removable(&self) -> bool {
        true
    }
}

impl Drop for Pcap {
    fn drop(&mut self) {
        self.stop();
    }
}
