//! The NAT port kind (`--nat[=OPTIONS]`; `docs/nat.md`): one port that is
//! the gateway of the segment — DHCP, DNS forwarding, outbound TCP and UDP
//! and host port forwards for every guest — served by libslirp in a
//! helper process, `uml_switch_nat`, which the switch starts with one end
//! of a `SOCK_SEQPACKET` socket pair as its standard input.
//!
//! The switch never links libslirp (C, glib, no static archive); the
//! helper confines it to a process of its own. Frames cross the socket
//! pair one per message, as on a bess connection, so this module is a
//! bess connection without a listener: `recvmmsg` in, `sendmmsg` out,
//! a backlog when the helper is behind. The helper's first message is
//! [`uml_common::nat::READY`]: the switch waits for it at start-up, so
//! that a forward whose host port is taken fails the start (the helper
//! prints why) instead of a later surprise. The helper ends when the
//! socket closes (the switch ended); if the helper ends, its port goes.

use std::io;
use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
use nix::sys::epoll::{Epoll, EpollFlags};
use nix::sys::socket::{recv, socketpair, AddressFamily, MsgFlags, SockFlag, SockType};
use uml_common::cli::strerror;
use uml_common::nat::{self, NatConfig, READY};
use uml_common::switch::MAX_FRAME_LEN;
use uml_common::sys::fd::move_high;
use uml_common::sys::mmsg::SendBatch;

use super::backlog::{watch_writable, Backlogs};
use super::{
    Ctx, Endpoint, EndpointId, HostFwdRequest, Inbox, Ready, Received, Stats, HIGH_FD, SEND_BATCH,
};
use crate::core::PortId;
use crate::output::{err, out};
use crate::Error;

/// Where packaging installs the helper.
pub const DEFAULT_HELPER: &str = "/usr/lib/uml/uml_switch_nat";
/// The environment variable that names another helper (tests, builds).
pub const HELPER_ENV: &str = "UML_SWITCH_NAT";
/// How long the helper may take to start (libslirp and the forwards).
const START_TIMEOUT: Duration = Duration::from_secs(20);
/// How long the switch waits for the helper to end at exit.
const EXIT_WAIT: Duration = Duration::from_secs(2);
/// Sub-token of the socket.
const SUB_SOCK: u32 = 0;
/// Events the socket is watched for (and `EPOLLOUT` while frames wait).
const EVENTS: EpollFlags = EpollFlags::EPOLLIN.union(EpollFlags::EPOLLRDHUP);
/// libslirp's interface MTU is 1500: the largest frame it takes.
const NAT_FRAME: usize = 1514;

/// The helper to run: `$UML_SWITCH_NAT`, else `uml_switch_nat` next to
/// the running switch (a build directory), else [`DEFAULT_HELPER`].
pub fn helper_path() -> PathBuf {
    if let Some(p) = std::env::var_os(HELPER_ENV).filter(|p| !p.is_empty()) {
        return PathBuf::from(p);
    }
    if let Some(dir) = std::env::current_exe()
        .ok()
        .and_then(|e| e.parent().map(Path::to_path_buf))
    {
        let sibling = dir.join("uml_switch_nat");
        if sibling.is_file() {
            return sibling;
        }
    }
    PathBuf::from(DEFAULT_HELPER)
}

/// The NAT port: the socket to the helper and the helper.
pub struct Nat {
    sock: OwnedFd,
    /// The control channel (`add`/`remove` of host forwards).
    control: OwnedFd,
    label: i32,
    child: Option<Child>,
    helper: PathBuf,
    config: NatConfig,
    port: Option<PortId>,
    tx: SendBatch,
    backlogs: Backlogs,
    me: EndpointId,
    send_error_reported: bool,
}

impl std::fmt::Debug for Nat {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Nat(port {}, {})", self.label, self.helper.display())
    }
}

impl Nat {
    /// Starts the helper with `text` (the checked options, `config`) and
    /// waits until it is ready. `run_as` (`--user`): the uid and gid it
    /// runs as from its start (std drops root's supplementary groups), so
    /// that libslirp never runs as root when the switch gives root up.
    pub fn open(
        prog: &str,
        text: &str,
        config: &NatConfig,
        run_as: Option<(u32, u32)>,
    ) -> Result<Nat, Error> {
        let helper = helper_path();
        let fail = |why: String| Error::NatStart {
            prog: prog.to_string(),
            helper: helper.clone(),
            why,
        };
        // Close-on-exec on both ends; std clears it on the helper's end
        // when it becomes the helper's standard input.
        let pair = || {
            socketpair(
                AddressFamily::Unix,
                SockType::SeqPacket,
                None,
                SockFlag::SOCK_CLOEXEC,
            )
            .map_err(|e| fail(format!("socketpair: {}", strerror(&e.into()))))
        };
        let (ours, theirs) = pair()?;
        // The control channel (host forwards at run time): the helper's
        // standard output; it writes its messages on standard error.
        let (control, their_control) = pair()?;
        let mut command = Command::new(&helper);
        command
            .arg(text)
            .stdin(Stdio::from(theirs))
            .stdout(Stdio::from(their_control));
        if let Some((uid, gid)) = run_as {
            use std::os::unix::process::CommandExt;
            command.uid(uid).gid(gid);
        }
        let spawned = command.spawn();
        // The Command holds the helper's ends of both pairs: closed now,
        // or the helper's exit would never be an end of file here.
        drop(command);
        let mut child = spawned.map_err(|e| fail(format!("cannot be run: {}", strerror(&e))))?;
        let nat_err = |why: String, child: &mut Child| {
            let _ = child.kill();
            let _ = child.wait();
            fail(why)
        };
        let sock = match move_high(ours, HIGH_FD) {
            Ok(s) => s,
            Err(e) => return Err(nat_err(format!("descriptor: {}", strerror(&e)), &mut child)),
        };
        let control = match move_high(control, HIGH_FD) {
            Ok(s) => s,
            Err(e) => return Err(nat_err(format!("descriptor: {}", strerror(&e)), &mut child)),
        };
        if let Err(why) = wait_ready(sock.as_fd()) {
            // The helper printed why it failed; say how it ended.
            let why = match wait_bounded(&mut child, EXIT_WAIT) {
                Some(status) => format!("{why} ({status})"),
                None => why,
            };
            return Err(nat_err(why, &mut child));
        }
        if let Err(e) = super::set_nonblocking(&sock) {
            return Err(nat_err(format!("O_NONBLOCK: {}", strerror(&e)), &mut child));
        }
        Ok(Nat {
            label: sock.as_raw_fd(),
            sock,
            control,
            child: Some(child),
            helper,
            config: config.clone(),
            port: None,
            tx: SendBatch::new(SEND_BATCH, MAX_FRAME_LEN),
            backlogs: Backlogs::default(),
            me: 0,
            send_error_reported: false,
        })
    }

    fn close(&mut self, ctx: &mut Ctx<'_>) {
        let Some(port) = self.port.take() else {
            return;
        };
        ctx.unwatch(&self.sock);
        ctx.remove_port(port);
        self.tx.forget_tag(port);
        self.backlogs.forget(port);
        let status = self.child.as_mut().and_then(|c| wait_bounded(c, EXIT_WAIT));
        err(&format!(
            "{}: the NAT port's helper ended{}; the port is gone\n",
            ctx.prog,
            status.map_or_else(String::new, |s| format!(" ({s})"))
        ));
    }

    fn report_send_error(&mut self, e: &io::Error) {
        if matches!(e.raw_os_error(), Some(libc::EPIPE | libc::ECONNRESET))
            || self.send_error_reported
        {
            return;
        }
        self.send_error_reported = true;
        err(&format!("Sending to the NAT port: {}\n", strerror(e)));
    }

    fn send_batch(&mut self, stats: &mut Stats) {
        let failed = self
            .backlogs
            .send_batch(&mut self.tx, self.sock.as_fd(), stats);
        for (_, e) in failed {
            self.report_send_error(&e);
        }
    }

    /// Ends the helper: closing our end is its end of file; then it is
    /// waited for (killed if it lingers).
    fn stop_helper(&mut self) {
        let _ = nix::sys::socket::shutdown(self.sock.as_raw_fd(), nix::sys::socket::Shutdown::Both);
        if let Some(mut child) = self.child.take() {
            if wait_bounded(&mut child, EXIT_WAIT).is_none() {
                let _ = child.kill();
                let _ = child.wait();
            }
        }
    }
}

/// How long a control request may take (the helper answers at once).
const CONTROL_TIMEOUT: Duration = Duration::from_secs(2);

impl Nat {
    /// Sends `request` on the control channel and waits for the answer.
    fn ask(&self, request: &str) -> Result<(), String> {
        let fd = self.control.as_raw_fd();
        // An answer left over from a request that timed out.
        let mut buf = [0u8; 1024];
        while recv(fd, &mut buf, MsgFlags::MSG_DONTWAIT).is_ok_and(|n| n > 0) {}
        nix::sys::socket::send(fd, request.as_bytes(), MsgFlags::MSG_DONTWAIT)
            .map_err(|e| format!("the NAT helper: {}", strerror(&e.into())))?;
        let mut fds = [PollFd::new(self.control.as_fd(), PollFlags::POLLIN)];
        let ms = u16::try_from(CONTROL_TIMEOUT.as_millis()).unwrap_or(u16::MAX);
        match poll(&mut fds, PollTimeout::from(ms)) {
            Ok(1) => {}
            _ => return Err("the NAT helper did not answer".to_string()),
        }
        let n = recv(fd, &mut buf, MsgFlags::MSG_DONTWAIT)
            .map_err(|e| format!("the NAT helper: {}", strerror(&e.into())))?;
        let answer = String::from_utf8_lossy(&buf[..n]);
        match answer.strip_prefix("error: ") {
            _ if answer == "ok" => Ok(()),
            Some(e) => Err(e.to_string()),
            None if n == 0 => Err("the NAT helper has ended".to_string()),
            None => Err(format!("the NAT helper answered '{answer}'")),
        }
    }

    fn forward_line(&self, f: &uml_common::nat::HostFwd) -> String {
        format!(
            "NAT port {}: host {} {}:{} is forwarded to {}:{}",
            self.label, f.proto, f.host_addr, f.host_port, f.guest_addr, f.guest_port
        )
    }
}

/// Waits for the helper's [`READY`] message.
fn wait_ready(sock: std::os::fd::BorrowedFd<'_>) -> Result<(), String> {
    let deadline = Instant::now() + START_TIMEOUT;
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Err(format!(
                "did not start within {} s",
                START_TIMEOUT.as_secs()
            ));
        }
        let ms = u16::try_from(left.as_millis()).unwrap_or(u16::MAX);
        let mut fds = [PollFd::new(sock, PollFlags::POLLIN)];
        match poll(&mut fds, PollTimeout::from(ms)) {
            Ok(0) => continue,
            Ok(_) => break,
            Err(nix::errno::Errno::EINTR) => continue,
            Err(e) => return Err(format!("poll: {}", strerror(&e.into()))),
        }
    }
    let mut buf = [0u8; 64];
    match recv(sock.as_raw_fd(), &mut buf, MsgFlags::MSG_DONTWAIT) {
        Ok(n) if &buf[..n] == READY => Ok(()),
        Ok(0) => Err("failed to start".to_string()),
        Ok(_) => Err("is not the NAT helper (unexpected first message)".to_string()),
        Err(e) => Err(format!("failed to start: {}", strerror(&e.into()))),
    }
}

/// The child's exit status, if it ends within `limit`.
fn wait_bounded(child: &mut Child, limit: Duration) -> Option<std::process::ExitStatus> {
    let deadline = Instant::now() + limit;
    loop {
        match child.try_wait() {
            Ok(Some(s)) => return Some(s),
            Ok(None) if Instant::now() < deadline => {
                std::thread::sleep(Duration::from_millis(5));
            }
            _ => return None,
        }
    }
}

impl Endpoint for Nat {
    fn register(&mut self, ctx: &mut Ctx<'_>) -> io::Result<()> {
        self.me = ctx.endpoint;
        self.tx = SendBatch::new(SEND_BATCH, NAT_FRAME.max(ctx.max_frame));
        ctx.watch_with(&self.sock, SUB_SOCK, EVENTS)?;
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
        let Some(port) = self.port else {
            return Ready::Done;
        };
        if events.contains(EpollFlags::EPOLLOUT) {
            let (empty, error) = self.backlogs.send(port, self.sock.as_fd(), ctx.stats);
            if let Some(e) = error {
                self.report_send_error(&e);
            }
            if empty {
                watch_writable(
                    ctx.epoll,
                    self.sock.as_fd(),
                    self.me,
                    SUB_SOCK,
                    EVENTS,
                    false,
                );
            }
        }
        if !events.intersects(
            EpollFlags::EPOLLIN
                | EpollFlags::EPOLLRDHUP
                | EpollFlags::EPOLLHUP
                | EpollFlags::EPOLLERR,
        ) {
            return Ready::Done;
        }
        let n = match inbox.rx.recv(self.sock.as_fd()) {
            Ok(n) => n,
            Err(_) => {
                self.close(ctx);
                return Ready::Done;
            }
        };
        // The helper never sends an empty message: an empty entry is its
        // end of file (the frames before it are forwarded first).
        let frames = (0..n)
            .take_while(|&i| !inbox.rx.frame(i).is_empty())
            .count();
        let hangup = events.intersects(EpollFlags::EPOLLRDHUP | EpollFlags::EPOLLHUP);
        if frames == 0 && (n > 0 || hangup) {
            self.close(ctx);
            return Ready::Done;
        }
        for i in 0..frames {
            ctx.stats.frames_in += 1;
            if inbox.rx.truncated(i) {
                ctx.drop_oversized(port);
                continue;
            }
            let len = inbox.rx.frame(i).len();
            inbox.frames.push(Received { port, slot: i, len });
        }
        if frames == inbox.rx.capacity() || frames < n {
            Ready::More
        } else {
            Ready::Done
        }
    }

    fn queue(&mut self, port: PortId, frame: &[u8], stats: &mut Stats) {
        if self.port != Some(port) {
            return;
        }
        if self.backlogs.is_waiting(port) {
            self.backlogs.keep(port, frame, stats);
            return;
        }
        if self.tx.is_full() {
            self.send_batch(stats);
        }
        self.tx.push_connected(frame, self.sock.as_fd(), port);
    }

    fn flush(&mut self, epoll: &Epoll, stats: &mut Stats) {
        if !self.tx.is_empty() {
            self.send_batch(stats);
        }
        if !self.backlogs.take_started().is_empty() {
            watch_writable(epoll, self.sock.as_fd(), self.me, SUB_SOCK, EVENTS, true);
        }
    }

    fn announce(&self) -> Option<String> {
        let c = &self.config;
        let mut text = format!(
            "NAT port {}: network {}/{}, gateway {}, DNS {}{}, DHCP from {}{}: guests get an \
             address by DHCP\n",
            self.label,
            c.net,
            c.prefix,
            c.host,
            c.dns,
            if c.dns_forwarding { "" } else { " (off)" },
            c.dhcp_start,
            if c.restricted { ", restricted" } else { "" },
        );
        if c.ipv6 {
            text.push_str(&format!(
                "NAT port {}: IPv6 {}/64, gateway {}, DNS {}: guests configure themselves \
                 (router advertisements)\n",
                self.label,
                nat::IPV6_PREFIX,
                nat::IPV6_HOST,
                nat::IPV6_DNS
            ));
        }
        for f in &c.hostfwd {
            text.push_str(&self.forward_line(f));
            text.push('\n');
        }
        Some(text)
    }

    fn port_info(&self, _port: PortId) -> (&'static str, Option<String>) {
        let pid = self.child.as_ref().map(Child::id);
        (
            "nat",
            Some(format!(
                "{}/{}{}",
                self.config.net,
                self.config.prefix,
                pid.map_or_else(String::new, |p| format!(", helper pid {p}"))
            )),
        )
    }

    fn frame_limit(&self, _max_frame: usize) -> usize {
        NAT_FRAME
    }

    fn hostfwd(&mut self, request: &HostFwdRequest) -> Option<Result<String, String>> {
        Some(match request {
            HostFwdRequest::List => Ok(self
                .config
                .hostfwd
                .iter()
                .map(|f| format!("{f}\n"))
                .collect()),
            HostFwdRequest::Add(rule) => (|| {
                let f =
                    nat::parse_hostfwd(rule, self.config.dhcp_start).map_err(|e| e.to_string())?;
                self.config.check_forward(&f).map_err(|e| e.to_string())?;
                self.ask(&format!("add {f}"))?;
                self.config.hostfwd.push(f);
                let line = self.forward_line(&f);
                out(&format!("{line}\n"));
                Ok(line)
            })(),
            HostFwdRequest::Remove(host) => (|| {
                let (proto, addr, port) = nat::parse_host_side(host).map_err(|e| e.to_string())?;
                self.ask(&format!("remove {proto}:{addr}:{port}"))?;
                self.config
                    .hostfwd
                    .retain(|f| !(f.proto == proto && f.host_addr == addr && f.host_port == port));
                let line = format!(
                    "NAT port {}: host {proto} {addr}:{port} is no longer forwarded",
                    self.label
                );
                out(&format!("{line}\n"));
                Ok(line)
            })(),
        })
    }

    fn cleanup(&mut self) {
        self.stop_helper();
    }

    fn discard(&mut self) {
        self.stop_helper();
    }
}

impl Drop for Nat {
    fn drop(&mut self) {
        self.stop_helper();
    }
}

/// Checks `--nat`'s options against the host: the virtual network must
/// not overlap a network of the host's interfaces (guests could not reach
/// it), and forwards of privileged host ports need
/// `CAP_NET_BIND_SERVICE`. `text` is the value as given.
pub fn check_host(prog: &str, text: &str, config: &NatConfig) -> Result<(), Error> {
    if let Ok(addrs) = nix::ifaddrs::getifaddrs() {
        for a in addrs {
            let (Some(addr), Some(mask)) = (a.address, a.netmask) else {
                continue;
            };
            let (Some(addr), Some(mask)) = (addr.as_sockaddr_in(), mask.as_sockaddr_in()) else {
                continue;
            };
            let ip = addr.ip();
            if ip.is_loopback() {
                continue;
            }
            let prefix = u32::from(mask.ip()).leading_ones() as u8;
            if config.overlaps(ip, prefix) {
                return Err(Error::NatOverlap {
                    prog: prog.to_string(),
                    value: text.to_string(),
                    net: format!("{}/{}", config.net, config.prefix),
                    host: format!("{ip}/{prefix}"),
                    ifname: a.interface_name,
                });
            }
        }
    }
    let start = std::fs::read_to_string("/proc/sys/net/ipv4/ip_unprivileged_port_start")
        .ok()
        .and_then(|s| s.trim().parse::<u16>().ok())
        .unwrap_or(1024);
    if let Some(f) = config.privileged_forwards(start).first() {
        if !has_net_bind_service() {
            return Err(Error::NatPrivileged {
                prog: prog.to_string(),
                fwd: f.to_string(),
                start,
            });
        }
    }
    Ok(())
}

/// The capability's number (linux/capability.h).
const CAP_NET_BIND_SERVICE: u32 = 10;

/// Whether the switch may bind ports below the unprivileged start
/// (`CAP_NET_BIND_SERVICE`, bit 10, in the effective set).
fn has_net_bind_service() -> bool {
    let Ok(status) = std::fs::read_to_string("/proc/self/status") else {
        return false;
    };
    status
        .lines()
        .find_map(|l| l.strip_prefix("CapEff:"))
        .and_then(|v| u64::from_str_radix(v.trim(), 16).ok())
        .is_some_and(|caps| caps & (1 << CAP_NET_BIND_SERVICE) != 0)
}
