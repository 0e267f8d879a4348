//! The daemon port kind (`docs/switch.md`): the control socket, its
//! connections — one port each, numbered by the connection's descriptor
//! as in C — and the one data socket all these ports share.
//!
//! A kernel connects to the control socket and sends a request naming its
//! own datagram socket; the connection's bytes go through the state
//! machine of `control.rs`. Frames arrive on the data socket in
//! `recvmmsg` batches and are assigned to ports by sender address (a hash
//! of the 110-byte `sockaddr_un`); frames from an address no port
//! registered are dropped. Frames leave in `sendmmsg` batches, each port's
//! on a socket connected to its address (README deviation 15), or with
//! `sendto` on the data socket when that socket could not be made. When a
//! port's connected socket is full, its frames wait in the port's backlog
//! and are sent when it has room (`backlog.rs`); frames for the shared
//! socket get the brief wait of [`EAGAIN_PATIENCE`] instead.
//!
//! vde clients (vdeplug4's `vde_plug vde://DIR`, which 7.x kernels run for
//! `vecN:transport=vde`) use the same control socket; their ports get a
//! data socket of their own instead of the shared one (`vde.rs`).

use std::collections::HashMap;
use std::hash::BuildHasherDefault;
use std::io::{self, Read, Write};
use std::os::fd::{AsFd, AsRawFd, OwnedFd, RawFd};
use std::os::linux::net::SocketAddrExt;
use std::os::unix::net::{SocketAddr, UnixDatagram, UnixListener, UnixStream};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use nix::sys::epoll::{Epoll, EpollFlags};
use uml_common::cli::strerror;
use uml_common::switch::{data_socket_name, AddrKey, SockAddrUn, MAX_FRAME_LEN, SOCKADDR_UN_LEN};
use uml_common::sys::fd::move_high;
use uml_common::sys::mmsg::SendBatch;
use uml_common::sys::seqpacket::peer_cred;

use super::backlog::{watch_writable, Backlogs};
use super::unix::{bind_with_stale_check, probe_dgram, probe_stream};
use super::vde;
use super::{
    Ctx, Endpoint, EndpointId, Inbox, Ready, Received, Stats, EAGAIN_COOLDOWN, EAGAIN_PATIENCE,
    HIGH_FD, SEND_BATCH,
};
use crate::control::{Action, ControlConn, VdeRequest};
use crate::core::{MacHasher, PortId};
use crate::output::{err, out};
use crate::Error;

/// How often request deadlines are checked (and a paused listener is
/// tried again) while there is something to check.
const CONN_SCAN_PERIOD: Duration = Duration::from_millis(100);

const SUB_LISTENER: u32 = 0;
const SUB_DATA: u32 = 1;
/// Control connections: this plus the descriptor.
const SUB_CONN_BASE: u32 = 2;
/// Sockets connected to a port's client (vde ports' data sockets, and
/// the daemon clients' sending sockets while they are full): this plus
/// the port id.
const SUB_PORT_BASE: u32 = 1 << 31;

struct Conn {
    stream: UnixStream,
    machine: ControlConn,
    port: Option<PortId>,
    /// A vde port's own data socket address, replied instead of the
    /// shared one, and the line printed once the reply is sent.
    vde_reply: Option<(SockAddrUn, String)>,
}

/// A registered client: where its frames go.
struct Client {
    addr: SockAddrUn,
    /// A socket connected to `addr` (see [`connected_socket`]); for a vde
    /// port, its own data socket (frames are received on it too).
    tx: Option<OwnedFd>,
    send_error_reported: bool,
    /// Set for a vde port.
    vde: Option<vde::PortFile>,
    /// Who is on the port (management socket): the control connection's
    /// pid and uid, or a vde client's description line.
    peer: Option<String>,
}

/// What the connected socket of a port is watched for besides room: a
/// vde port's data socket for input; a daemon client's sending socket for
/// nothing (it is watched only while full).
fn vde_events(vde: bool) -> EpollFlags {
    if vde {
        EpollFlags::EPOLLIN
    } else {
        EpollFlags::empty()
    }
}

/// The daemon protocol endpoint.
pub struct Daemon {
    ctl: PathBuf,
    data_path: Option<PathBuf>,
    listener: UnixListener,
    listener_paused: bool,
    data: UnixDatagram,
    data_addr: SockAddrUn,
    conns: HashMap<RawFd, Conn>,
    /// Connections whose request is not complete yet.
    pending: usize,
    next_conn_scan: Instant,
    /// Indexed by port id.
    clients: Vec<Option<Client>>,
    by_addr: HashMap<AddrKey, PortId, BuildHasherDefault<MacHasher>>,
    tx: SendBatch,
    /// Frames waiting for full connected sockets.
    backlogs: Backlogs,
    /// This endpoint's id in the event loop (for epoll tokens).
    me: EndpointId,
    unknown_sender_reported: bool,
    /// The control socket was passed by a service manager: its file is
    /// not removed at exit.
    activated: bool,
}

impl std::fmt::Debug for Daemon {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "Daemon({}, {} connections)",
            self.ctl.display(),
            self.conns.len()
        )
    }
}

impl Daemon {
    /// Binds the control socket `ctl` and the data socket (the file
    /// `data_path` with `-compat-v0`, else an abstract address), with the
    /// C switch's stale-socket handling; on failure, removes what it bound.
    pub fn open(
        prog: &str,
        ctl: &Path,
        data_path: Option<&Path>,
        passed: Option<OwnedFd>,
    ) -> Result<Daemon, Error> {
        // Socket activation: the control socket is bound already (and its
        // file is the service manager's).
        let activated = passed.is_some();
        let listener = match passed {
            Some(fd) => Ok(UnixListener::from(fd)),
            None => bind_with_stale_check(ctl, |p| UnixListener::bind(p), probe_stream),
        };
        let (listener, data, data_addr) = if let Some(data_path) = data_path {
            // Both sockets are tried, as in C, so the message covers both.
            let data = bind_with_stale_check(data_path, |p| UnixDatagram::bind(p), probe_dgram);
            match (listener, data) {
                (Ok(l), Ok(d)) => {
                    let addr = SockAddrUn::path(data_path.as_os_str().as_encoded_bytes());
                    (l, d, addr)
                }
                (listener, data) => {
                    let ctl_failure = listener.err().map(Box::new);
                    let data_failure = data.err().map(Box::new);
                    if ctl_failure.is_none() {
                        let _ = std::fs::remove_file(ctl);
                    }
                    if data_failure.is_none() {
                        let _ = std::fs::remove_file(data_path);
                    }
                    return Err(Error::CompatSockets {
                        prog: prog.to_string(),
                        ctl: ctl.to_path_buf(),
                        data: data_path.to_path_buf(),
                        ctl_failure,
                        data_failure,
                    });
                }
            }
        } else {
            let listener = listener.map_err(|failure| Error::ControlSocket {
                path: ctl.to_path_buf(),
                failure,
            })?;
            let usecs = SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .map(|d| d.subsec_micros())
                .unwrap_or(0);
            let name = data_socket_name(std::process::id(), usecs);
            let bound =
                SocketAddr::from_abstract_name(name).and_then(|a| UnixDatagram::bind_addr(&a));
            match bound {
                Ok(d) => (listener, d, SockAddrUn::abstract_name(&name)),
                Err(e) => {
                    let _ = std::fs::remove_file(ctl);
                    return Err(Error::DataSocket(e));
                }
            }
        };
        let fail = |what: &'static str, source: io::Error| {
            let _ = std::fs::remove_file(ctl);
            Error::Nonblocking { what, source }
        };
        listener
            .set_nonblocking(true)
            .map_err(|e| fail("Setting O_NONBLOCK on connection fd", e))?;
        data.set_nonblocking(true)
            .map_err(|e| fail("Setting O_NONBLOCK on data fd", e))?;
        let mut tx = SendBatch::new(SEND_BATCH, MAX_FRAME_LEN);
        tx.set_eagain_patience(EAGAIN_PATIENCE, EAGAIN_COOLDOWN);
        Ok(Daemon {
            ctl: ctl.to_path_buf(),
            data_path: data_path.map(Path::to_path_buf),
            listener,
            listener_paused: false,
            data,
            data_addr,
            conns: HashMap::new(),
            pending: 0,
            next_conn_scan: Instant::now() + CONN_SCAN_PERIOD,
            clients: Vec::new(),
            by_addr: HashMap::default(),
            tx,
            backlogs: Backlogs::default(),
            me: 0,
            unknown_sender_reported: false,
            activated,
        })
    }

    /// Receives one batch from the data socket.
    fn recv_data(&mut self, inbox: &mut Inbox, stats: &mut Stats) -> Ready {
        let n = match inbox.rx.recv(self.data.as_fd()) {
            Ok(0) => return Ready::Done,
            Ok(n) => n,
            Err(e) => {
                err(&format!("handle_sock_data: {}\n", strerror(&e)));
                return Ready::Done;
            }
        };
        for i in 0..n {
            stats.frames_in += 1;
            let key = AddrKey::from_sockaddr(inbox.rx.sender(i));
            let Some(&port) = self.by_addr.get(&key) else {
                stats.unknown_sender += 1;
                if !self.unknown_sender_reported {
                    self.unknown_sender_reported = true;
                    out("Unknown connection for packet, shouldn't happen.\n");
                }
                continue;
            };
            // Longer frames are cut to 1514 bytes, as the C switch does,
            // however long the switch's own frames may be (--mtu).
            let len = inbox.rx.frame(i).len();
            if inbox.rx.truncated(i) || len > MAX_FRAME_LEN {
                stats.truncated += 1;
            }
            let len = len.min(MAX_FRAME_LEN);
            inbox.frames.push(Received { port, slot: i, len });
        }
        // Keep reading while frames keep coming (the next recvmmsg is
        // cheaper than a round through epoll_wait).
        Ready::More
    }

    fn accept(&mut self, ctx: &mut Ctx<'_>) {
        loop {
            match self.listener.accept() {
                Ok((stream, _)) => {
                    if let Err(e) = stream.set_nonblocking(true) {
                        err(&format!("fcntl - setting O_NONBLOCK: {}\n", strerror(&e)));
                        continue;
                    }
                    let fd = stream.as_raw_fd();
                    if ctx.watch(&stream, SUB_CONN_BASE + fd as u32).is_err() {
                        continue;
                    }
                    self.pending += 1;
                    self.conns.insert(
                        fd,
                        Conn {
                            stream,
                            machine: ControlConn::new(Instant::now()),
                            port: None,
                            vde_reply: None,
                        },
                    );
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => {
                    err(&format!("accept: {}\n", strerror(&e)));
                    // Out of descriptors: stop accepting for a moment
                    // instead of spinning on a level-triggered listener.
                    if ctx.epoll.delete(&self.listener).is_ok() {
                        self.listener_paused = true;
                    }
                    return;
                }
            }
        }
    }

    fn handle_conn(&mut self, fd: RawFd, ctx: &mut Ctx<'_>) {
        let Some(conn) = self.conns.get_mut(&fd) else {
            return;
        };
        let was_pending = conn.machine.is_pending();
        let mut chunk = [0u8; 256];
        let size = conn.machine.read_size().min(chunk.len());
        let actions = match conn.stream.read(&mut chunk[..size]) {
            Ok(0) => conn.machine.on_eof(),
            Ok(n) => conn.machine.on_bytes(&chunk[..n], Instant::now()),
            Err(e)
                if matches!(
                    e.kind(),
                    io::ErrorKind::WouldBlock | io::ErrorKind::Interrupted
                ) =>
            {
                return
            }
            Err(e) => conn.machine.on_read_error(&e),
        };
        self.apply(fd, actions, ctx);
        self.settle(fd, was_pending);
    }

    /// Counts a connection that stopped being pending.
    fn settle(&mut self, fd: RawFd, was_pending: bool) {
        let pending = self.conns.get(&fd).is_some_and(|c| c.machine.is_pending());
        if was_pending && !pending {
            self.pending = self.pending.saturating_sub(1);
        }
    }

    /// Carries out what the state machine of connection `fd` decided.
    fn apply(&mut self, fd: RawFd, actions: Vec<Action>, ctx: &mut Ctx<'_>) {
        for action in actions {
            match action {
                Action::Out(line) => out(&line),
                Action::Err(line) => err(&line),
                Action::Register(addr) => {
                    let id = ctx.add_port(fd);
                    let peer = self
                        .conns
                        .get(&fd)
                        .and_then(|c| peer_cred(c.stream.as_fd()).ok())
                        .map(|c| format!("pid {}, uid {}", c.pid, c.uid));
                    self.add_client(id, addr, peer);
                    if let Some(conn) = self.conns.get_mut(&fd) {
                        conn.port = Some(id);
                    }
                }
                Action::RegisterDump(addr) => {
                    let id = ctx.add_port(fd);
                    ctx.ports.set_mirror(id);
                    self.add_client(id, addr, Some("uml_dump mirror".to_string()));
                    if let Some(conn) = self.conns.get_mut(&fd) {
                        conn.port = Some(id);
                    }
                }
                Action::RegisterVde(request) => {
                    if let Err(why) = self.add_vde_client(fd, &request, ctx) {
                        let Some(conn) = self.conns.get_mut(&fd) else {
                            return;
                        };
                        let more = conn.machine.on_register_failed(&why);
                        return self.apply(fd, more, ctx);
                    }
                }
                Action::Reply => {
                    let Some(conn) = self.conns.get_mut(&fd) else {
                        return;
                    };
                    let (reply, line) = match conn.vde_reply.take() {
                        Some((addr, line)) => (addr, Some(line)),
                        None => (self.data_addr, None),
                    };
                    if let Some(line) = line {
                        out(&line);
                    }
                    let failed = match conn.stream.write(&reply.0) {
                        Ok(SOCKADDR_UN_LEN) => None,
                        Ok(_) => Some(conn.machine.on_reply_failed(None)),
                        Err(e) => Some(conn.machine.on_reply_failed(Some(&e))),
                    };
                    if let Some(more) = failed {
                        return self.apply(fd, more, ctx);
                    }
                }
                Action::Close => {
                    self.close_conn(fd, ctx);
                    return;
                }
            }
        }
    }

    fn close_conn(&mut self, fd: RawFd, ctx: &mut Ctx<'_>) {
        if let Some(conn) = self.conns.remove(&fd) {
            ctx.unwatch(&conn.stream);
            if let Some(port) = conn.port {
                self.remove_client(port);
                ctx.remove_port(port);
            }
        }
    }

    fn add_client(&mut self, port: PortId, addr: SockAddrUn, peer: Option<String>) {
        let tx = connected_socket(&addr);
        self.by_addr.insert(addr.key(), port);
        let i = port as usize;
        if self.clients.len() <= i {
            self.clients.resize_with(i + 1, || None);
        }
        self.clients[i] = Some(Client {
            addr,
            tx,
            send_error_reported: false,
            vde: None,
            peer,
        });
    }

    /// Makes the port of control connection `fd` for a vde client: its
    /// own data socket, connected to the client's (before the reply names
    /// it). The error is the line to print.
    fn add_vde_client(
        &mut self,
        fd: RawFd,
        request: &VdeRequest,
        ctx: &mut Ctx<'_>,
    ) -> Result<(), String> {
        let Some(conn) = self.conns.get_mut(&fd) else {
            return Ok(());
        };
        let sock = vde::open_port(&self.ctl, fd, request)?;
        let port = ctx.add_port(fd);
        if let Err(e) = ctx.watch(&sock.fd, SUB_PORT_BASE + port) {
            ctx.remove_port(port);
            let mut file = sock.file;
            file.unlink();
            return Err(format!("vde port {fd}: epoll: {}", strerror(&e)));
        }
        let cred = peer_cred(conn.stream.as_fd()).ok().map(|c| (c.pid, c.uid));
        conn.port = Some(port);
        let line = vde::describe(fd, cred, request);
        let peer = line.trim_end().to_string();
        conn.vde_reply = Some((sock.reply, line));
        let i = port as usize;
        if self.clients.len() <= i {
            self.clients.resize_with(i + 1, || None);
        }
        self.clients[i] = Some(Client {
            addr: request.addr,
            tx: Some(sock.fd),
            send_error_reported: false,
            vde: Some(sock.file),
            peer: Some(peer),
        });
        Ok(())
    }

    /// Receives one batch on the data socket of vde port `port`.
    fn recv_vde(&mut self, port: PortId, ctx: &mut Ctx<'_>, inbox: &mut Inbox) -> Ready {
        let Some(Some(Client { tx: Some(sock), .. })) = self.clients.get(port as usize) else {
            return Ready::Done;
        };
        match vde::recv(sock.as_fd(), port, inbox, ctx.stats) {
            Ok(ready) => ready,
            Err(e) => {
                // Broken for good: end the port (the client sees its
                // control connection close).
                inbox.frames.clear();
                if let Some(label) = ctx.ports.label(port) {
                    err(&format!("vde port {label}: receiving: {}\n", strerror(&e)));
                    self.close_conn(label, ctx);
                }
                Ready::Done
            }
        }
    }

    fn remove_client(&mut self, port: PortId) {
        let Some(mut client) = self.clients.get_mut(port as usize).and_then(Option::take) else {
            return;
        };
        self.tx.forget_tag(port);
        self.backlogs.forget(port);
        if let Some(file) = &mut client.vde {
            // Its data socket closes with `client` (and so leaves epoll).
            file.unlink();
            return;
        }
        let key = client.addr.key();
        if self.by_addr.get(&key) == Some(&port) {
            self.by_addr.remove(&key);
        }
    }

    /// Sends the batch; frames for a full connected socket go to its
    /// port's backlog.
    fn send_batch(&mut self, stats: &mut Stats) {
        let failed = self
            .backlogs
            .send_batch(&mut self.tx, self.data.as_fd(), stats);
        for (tag, e) in failed {
            self.report_send_error(tag, &e);
        }
    }

    /// The connected socket of `port` has room: sends its backlog.
    fn drain(&mut self, port: PortId, ctx: &mut Ctx<'_>) {
        let Some(Some(Client {
            tx: Some(sock),
            vde,
            ..
        })) = self.clients.get(port as usize)
        else {
            return;
        };
        let (empty, error) = self.backlogs.send(port, sock.as_fd(), ctx.stats);
        if empty {
            let base = vde_events(vde.is_some());
            watch_writable(
                ctx.epoll,
                sock.as_fd(),
                self.me,
                SUB_PORT_BASE + port,
                base,
                false,
            );
        }
        if let Some(e) = error {
            self.report_send_error(port, &e);
        }
    }

    /// Reports a failure to send to `port`'s client, once per port.
    fn report_send_error(&mut self, port: PortId, e: &io::Error) {
        let data_fd = self.data.as_raw_fd();
        let Some(Some(client)) = self.clients.get_mut(port as usize) else {
            return;
        };
        if client.send_error_reported {
            return;
        }
        client.send_error_reported = true;
        match &client.vde {
            Some(file) => err(&format!(
                "vde port {}: sending: {}\n",
                file.label,
                strerror(e)
            )),
            None => err(&format!(
                "send_sock sending to fd {data_fd} {}\n",
                strerror(e)
            )),
        }
    }

    /// Removes the socket files of the vde ports.
    fn unlink_vde_files(&mut self) {
        for client in self.clients.iter_mut().flatten() {
            if let Some(file) = &mut client.vde {
                file.unlink();
            }
        }
    }
}

impl Endpoint for Daemon {
    fn listen_path(&self) -> Option<&Path> {
        Some(&self.ctl)
    }

    fn port_info(&self, port: PortId) -> (&'static str, Option<String>) {
        match self.clients.get(port as usize) {
            Some(Some(c)) => (
                if c.vde.is_some() { "vde" } else { "daemon" },
                c.peer.clone(),
            ),
            _ => ("daemon", None),
        }
    }

    fn register(&mut self, ctx: &mut Ctx<'_>) -> io::Result<()> {
        self.me = ctx.endpoint;
        ctx.watch(&self.listener, SUB_LISTENER)?;
        ctx.watch(&self.data, SUB_DATA)
    }

    fn ready(
        &mut self,
        sub: u32,
        events: EpollFlags,
        ctx: &mut Ctx<'_>,
        inbox: &mut Inbox,
    ) -> Ready {
        match sub {
            SUB_DATA => return self.recv_data(inbox, ctx.stats),
            SUB_LISTENER => self.accept(ctx),
            s if s >= SUB_PORT_BASE => {
                let port = s - SUB_PORT_BASE;
                if events.contains(EpollFlags::EPOLLOUT) {
                    self.drain(port, ctx);
                }
                if events.intersects(EpollFlags::EPOLLIN | EpollFlags::EPOLLERR) {
                    return self.recv_vde(port, ctx, inbox);
                }
            }
            s => self.handle_conn((s - SUB_CONN_BASE) as RawFd, ctx),
        }
        Ready::Done
    }

    fn queue(&mut self, port: PortId, frame: &[u8], stats: &mut Stats) {
        let Some(Some(client)) = self.clients.get(port as usize) else {
            return;
        };
        if client.tx.is_some() && self.backlogs.is_waiting(port) {
            // After the frames that already wait.
            self.backlogs.keep(port, frame, stats);
            return;
        }
        if self.tx.is_full() {
            self.send_batch(stats);
        }
        let Some(Some(client)) = self.clients.get(port as usize) else {
            return;
        };
        match &client.tx {
            Some(sock) => self.tx.push_connected(frame, sock.as_fd(), port),
            None => self.tx.push(frame, &client.addr, port),
        };
    }

    fn flush(&mut self, epoll: &Epoll, stats: &mut Stats) {
        if !self.tx.is_empty() {
            self.send_batch(stats);
        }
        // Connected sockets that filled up: watch them for room.
        for port in self.backlogs.take_started() {
            if let Some(Some(Client {
                tx: Some(sock),
                vde,
                ..
            })) = self.clients.get(port as usize)
            {
                let base = vde_events(vde.is_some());
                watch_writable(
                    epoll,
                    sock.as_fd(),
                    self.me,
                    SUB_PORT_BASE + port,
                    base,
                    true,
                );
            }
        }
    }

    fn announce(&self) -> Option<String> {
        Some(vde::announce(&self.ctl))
    }

    fn next_deadline(&self) -> Option<Instant> {
        // Deadlines are checked on a coarse tick instead of scanning every
        // connection on every wake-up (which would cost O(ports) per batch
        // of frames).
        (self.pending > 0 || self.listener_paused).then_some(self.next_conn_scan)
    }

    fn on_deadline(&mut self, now: Instant, ctx: &mut Ctx<'_>) {
        if now < self.next_conn_scan {
            return;
        }
        self.next_conn_scan = now + CONN_SCAN_PERIOD;
        let pending: Vec<RawFd> = self
            .conns
            .iter()
            .filter(|(_, c)| c.machine.is_pending())
            .map(|(&fd, _)| fd)
            .collect();
        for fd in pending {
            let Some(conn) = self.conns.get_mut(&fd) else {
                continue;
            };
            let actions = conn.machine.on_tick(now, ctx.prog, fd);
            if !actions.is_empty() {
                self.apply(fd, actions, ctx);
                self.settle(fd, true);
            }
        }
        if self.listener_paused && ctx.watch(&self.listener, SUB_LISTENER).is_ok() {
            self.listener_paused = false;
        }
    }

    fn cleanup(&mut self) {
        self.unlink_vde_files();
        if self.activated {
        } else if let Err(e) = std::fs::remove_file(&self.ctl) {
            out(&format!(
                "Couldn't remove control socket '{}' : ",
                self.ctl.display()
            ));
            err(&format!("{}\n", strerror(&e)));
        }
        if let Some(d) = &self.data_path {
            if let Err(e) = std::fs::remove_file(d) {
                out(&format!("Couldn't remove data socket '{}' : ", d.display()));
                err(&format!("{}\n", strerror(&e)));
            }
        }
    }

    fn discard(&mut self) {
        self.unlink_vde_files();
        if !self.activated {
            let _ = std::fs::remove_file(&self.ctl);
        }
        if let Some(d) = &self.data_path {
            let _ = std::fs::remove_file(d);
        }
    }

    /// The legacy daemon transport carries frames of at most 1514 bytes
    /// (its devices' MTU cannot exceed 1500), whatever `--mtu` says.
    fn frame_limit(&self, _max_frame: usize) -> usize {
        MAX_FRAME_LEN
    }
}

/// A socket connected to a port's data address, so that the frames
/// waiting in that port's receive queue are charged to a send buffer of its
/// own: with one shared sending socket, ports that stop reading use up its
/// send buffer and every port goes silent (the C switch's behaviour; with
/// systemd's net.unix.max_dgram_qlen of 512 one stalled port is enough).
/// The descriptor is moved high so that control connections keep the
/// numbers the C switch gives them (they are printed as port numbers).
/// `None` when it cannot be made: that port then uses the shared socket.
fn connected_socket(addr: &SockAddrUn) -> Option<OwnedFd> {
    let target = addr.socket_addr()?;
    let sock = UnixDatagram::unbound().ok()?;
    sock.connect_addr(&target).ok()?;
    sock.set_nonblocking(true).ok()?;
    move_high(OwnedFd::from(sock), HIGH_FD).ok()
}
