//! The switch daemon: sockets, the epoll event loop, control connections,
//! ports and signals. Frames flow data socket → `recvmmsg` batch → sender
//! lookup (hash of the 110-byte address) → [`Forwarder`] → `sendmmsg`
//! batch; nothing allocates or prints per frame.

use std::collections::HashMap;
use std::fs::File;
use std::io::{self, Read, Write};
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd, RawFd};
use std::os::linux::net::SocketAddrExt;
use std::os::unix::net::{SocketAddr, UnixDatagram, UnixListener, UnixStream};
use std::path::Path;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use nix::sys::epoll::{Epoll, EpollCreateFlags, EpollEvent, EpollFlags, EpollTimeout};
use nix::sys::signal::{SigSet, Signal};
#[allow(deprecated)]
use nix::sys::signalfd::{signalfd, SfdFlags};

use uml_common::cli::strerror;
use uml_common::switch::{
    data_socket_name, parse_request, AddrKey, Parsed, SockAddrUn, Version, MAX_FRAME_LEN,
    SOCKADDR_UN_LEN, V3_DESCRIPTION_MAX, V3_LEN,
};
use uml_common::sys::fd::move_high;
use uml_common::sys::mmsg::{RecvBatch, SendBatch};
use uml_common::sys::tun;

use crate::cli::Options;
use crate::core::{Event, Forwarder, MacHasher, PortId, Verdict, DEFAULT_TABLE_CAP};
use std::hash::BuildHasherDefault;

/// Frames per `recvmmsg`/`sendmmsg` call.
const BATCH: usize = 64;
/// Room in the send batch: a flood of a full receive batch to many ports
/// is split over several `sendmmsg` calls.
const SEND_BATCH: usize = 256;
/// How long a frame whose receiver queue is full is retried (yielding in
/// between) before it is dropped and counted; a port whose queue stays
/// full that long is then congested for EAGAIN_COOLDOWN (one attempt per
/// frame, no waiting). A receiver that is briefly behind loses nothing; a
/// stopped or slow one costs the switch at most 0.5 ms per 50 ms (1 %).
const EAGAIN_PATIENCE: Duration = Duration::from_micros(500);
/// See EAGAIN_PATIENCE.
const EAGAIN_COOLDOWN: Duration = Duration::from_millis(50);
/// A new control connection must deliver its whole request within this.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(5);
/// Bytes after a v3 request (padding, vde description) ignored this soon
/// after registration.
const TRAILER_GRACE: Duration = Duration::from_secs(1);
/// How often connection deadlines (request timeout, v3 trailer grace)
/// are checked.
const CONN_SCAN_PERIOD: Duration = Duration::from_millis(100);
/// MAC aging period (C: 2 s).
const AGING_PERIOD: Duration = Duration::from_secs(2);

/// Lowest descriptor number of the event loop's own descriptors.
const HIGH_FD: i32 = 1000;

const TOKEN_LISTENER: u64 = 1;
const TOKEN_DATA: u64 = 2;
const TOKEN_TAP: u64 = 3;
const TOKEN_STDIN: u64 = 4;
const TOKEN_SIGNAL: u64 = 5;
const TOKEN_CONN_BASE: u64 = 1 << 32;

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
}

enum PortKind {
    /// A daemon-protocol client: frames go to its data socket address, on
    /// a socket connected to it (`tx`) or, when none could be made, with
    /// `sendto` on the shared data socket.
    Socket {
        addr: SockAddrUn,
        tx: Option<OwnedFd>,
    },
    /// The host tap device.
    Tap,
}

struct Port {
    kind: PortKind,
    /// The id printed in messages: the control connection's fd, or the
    /// tap fd (as the C switch prints).
    label: RawFd,
    send_error_reported: bool,
}

enum ConnState {
    Pending {
        buf: Vec<u8>,
        deadline: Instant,
    },
    Active {
        port: PortId,
        grace_until: Instant,
        grace_left: usize,
    },
}

struct Conn {
    stream: UnixStream,
    state: ConnState,
}

/// Why set-up failed; the message has been printed.
#[derive(Debug)]
pub struct SetupFailed;

enum BindOutcome {
    Bound,
    InUse,
    CantRemove,
}

/// `bind_socket` of the C switch: bind, and on `EADDRINUSE` test the old
/// socket; remove it and bind again when nobody answers.
fn bind_with_stale_check<T>(
    path: &Path,
    bind: impl Fn(&Path) -> io::Result<T>,
    probe_alive: impl Fn(&Path) -> io::Result<()>,
) -> (BindOutcome, Option<T>) {
    match bind(path) {
        Ok(s) => return (BindOutcome::Bound, Some(s)),
        Err(e) if e.kind() == io::ErrorKind::AddrInUse => {}
        Err(e) => {
            eprintln!("bind: {}", strerror_path(&e));
            return (BindOutcome::CantRemove, None);
        }
    }
    match probe_alive(path) {
        Ok(()) => (BindOutcome::InUse, None),
        Err(e) if e.raw_os_error() == Some(libc::ECONNREFUSED) => {
            if let Err(e) = std::fs::remove_file(path) {
                eprintln!(
                    "Failed to removed unused socket '{}': {}",
                    path.display(),
                    strerror(&e)
                );
            }
            match bind(path) {
                Ok(s) => (BindOutcome::Bound, Some(s)),
                Err(e) => {
                    eprintln!("bind: {}", strerror_path(&e));
                    (BindOutcome::CantRemove, None)
                }
            }
        }
        Err(e) => {
            eprintln!("connect: {}", strerror(&e));
            (BindOutcome::InUse, None)
        }
    }
}

fn strerror_path(e: &io::Error) -> String {
    if e.raw_os_error().is_none() && e.kind() == io::ErrorKind::InvalidInput {
        "File name too long".to_string()
    } else {
        strerror(e)
    }
}

fn probe_stream(path: &Path) -> io::Result<()> {
    UnixStream::connect(path).map(|_| ())
}

fn probe_dgram(path: &Path) -> io::Result<()> {
    UnixDatagram::unbound()?.connect(path)
}

fn out(line: &str) {
    let stdout = io::stdout();
    let mut o = stdout.lock();
    let _ = o.write_all(line.as_bytes());
    let _ = o.flush();
}

fn err(line: &str) {
    let _ = io::stderr().write_all(line.as_bytes());
}

/// The running switch.
pub struct Switch {
    prog: String,
    opts: Options,
    epoll: Epoll,
    listener: UnixListener,
    listener_paused: bool,
    data: UnixDatagram,
    data_addr: SockAddrUn,
    tap: Option<File>,
    tap_port: Option<PortId>,
    signals: File,
    stdin_watched: bool,
    conns: HashMap<RawFd, Conn>,
    ports: Vec<Option<Port>>,
    free_ports: Vec<PortId>,
    by_addr: HashMap<AddrKey, PortId, BuildHasherDefault<MacHasher>>,
    forwarder: Forwarder,
    rx: RecvBatch,
    tx: SendBatch,
    stats: Stats,
    start: Instant,
    now_secs: u32,
    last_unknown_notice: Option<(Instant, [u8; 6])>,
    unknown_sender_reported: bool,
    next_aging: Instant,
    next_conn_scan: Instant,
    pending_present: bool,
    grace_pending: bool,
}

impl std::fmt::Debug for Switch {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Switch({} ports)", self.ports.iter().flatten().count())
    }
}

/// What ended the main loop.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Exit {
    /// Exit with this status.
    Status(i32),
    /// Die by this signal after cleanup.
    Signal(i32),
}

impl Switch {
    /// Creates and binds the sockets and prints the start-up lines.
    pub fn setup(prog: &str, mut opts: Options) -> Result<Switch, SetupFailed> {
        // Checked first: a terminal hung up right after start-up still
        // counts as one (the C switch checks after its first message).
        let stdin_is_tty = nix::unistd::isatty(0).unwrap_or(false);
        // Block the signals we handle before the control socket exists (and
        // before -daemon forks): one arriving during set-up then waits for
        // the event loop and still gets the socket removed.
        let mut mask = SigSet::empty();
        for s in [
            Signal::SIGINT,
            Signal::SIGTERM,
            Signal::SIGHUP,
            Signal::SIGUSR1,
        ] {
            mask.add(s);
        }
        if let Err(e) = mask.thread_block() {
            err(&format!("sigprocmask: {e}\n"));
            return Err(SetupFailed);
        }
        // Fix of C pitfall 9: a relative path could not be removed after
        // -daemon's chdir("/").
        if opts.daemon {
            if let Ok(cwd) = std::env::current_dir() {
                opts.ctl = cwd.join(&opts.ctl);
                opts.data = opts.data.map(|d| cwd.join(d));
            }
        }
        // Allow as many ports as the hard limit permits.
        if let Ok((_, hard)) =
            nix::sys::resource::getrlimit(nix::sys::resource::Resource::RLIMIT_NOFILE)
        {
            let _ = nix::sys::resource::setrlimit(
                nix::sys::resource::Resource::RLIMIT_NOFILE,
                hard.min(65_536),
                hard,
            );
        }
        let ctl = opts.ctl.clone();
        let (ctl_outcome, listener) =
            bind_with_stale_check(&ctl, |p| UnixListener::bind(p), probe_stream);
        let (data, data_addr) = if let Some(data_path) = opts.data.clone() {
            // Both sockets are tried, as in C, so the message covers both.
            let (data_outcome, data) =
                bind_with_stale_check(&data_path, |p| UnixDatagram::bind(p), probe_dgram);
            match (listener.is_some(), data) {
                (true, Some(d)) => {
                    let addr = SockAddrUn::path(data_path.as_os_str().as_encoded_bytes());
                    (d, addr)
                }
                _ => {
                    if matches!(ctl_outcome, BindOutcome::Bound) {
                        let _ = std::fs::remove_file(&ctl);
                    }
                    if matches!(data_outcome, BindOutcome::Bound) {
                        let _ = std::fs::remove_file(&data_path);
                    }
                    compat_bind_failure(prog, &ctl, &data_path, &ctl_outcome, &data_outcome);
                    return Err(SetupFailed);
                }
            }
        } else {
            match ctl_outcome {
                BindOutcome::Bound => {}
                BindOutcome::InUse => {
                    err(&format!(
                        "The control socket '{c}' has another server attached to it\n\
                         You can either\n\tremove '{c}'\n\tor rerun with a different, unused filename for a socket\n",
                        c = ctl.display()
                    ));
                    return Err(SetupFailed);
                }
                BindOutcome::CantRemove => {
                    err(&format!(
                        "The control socket '{}' exists, isn't used, but couldn't be removed\n",
                        ctl.display()
                    ));
                    return Err(SetupFailed);
                }
            }
            let usecs = SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .map(|d| d.subsec_micros())
                .unwrap_or(0);
            let name = data_socket_name(std::process::id(), usecs);
            let bound =
                SocketAddr::from_abstract_name(name).and_then(|a| UnixDatagram::bind_addr(&a));
            match bound {
                Ok(d) => (d, SockAddrUn::abstract_name(&name)),
                Err(e) => {
                    err(&format!("Binding to data socket: {}\n", strerror(&e)));
                    let _ = std::fs::remove_file(&ctl);
                    return Err(SetupFailed);
                }
            }
        };
        let Some(listener) = listener else {
            return Err(SetupFailed);
        };
        let fail = |what: &str, e: &dyn std::fmt::Display| {
            err(&format!("{what}: {e}\n"));
            let _ = std::fs::remove_file(&ctl);
            SetupFailed
        };
        listener
            .set_nonblocking(true)
            .map_err(|e| fail("Setting O_NONBLOCK on connection fd", &strerror(&e)))?;
        data.set_nonblocking(true)
            .map_err(|e| fail("Setting O_NONBLOCK on data fd", &strerror(&e)))?;
        let mut line = match &opts.data {
            Some(d) => format!(
                "{prog} attached to unix sockets '{}' and '{}'",
                ctl.display(),
                d.display()
            ),
            None => format!("{prog} attached to unix socket '{}'", ctl.display()),
        };
        if let Some(t) = &opts.tap {
            line.push_str(&format!(" tap device '{t}'"));
        }
        line.push('\n');
        out(&line);
        let tap = opts.tap.as_deref().and_then(open_tap_file);
        if opts.daemon {
            if let Err(e) = nix::unistd::daemon(false, true) {
                err(&format!("daemon: {}\n", e.desc()));
                let _ = std::fs::remove_file(&ctl);
                if let Some(d) = &opts.data {
                    let _ = std::fs::remove_file(d);
                }
                return Err(SetupFailed);
            }
        }

        // After daemon(): an epoll instance watching a signalfd does not
        // follow fork. The event loop's own descriptors live above the ones
        // users see, so that ports get the same numbers as with the C switch.
        let epoll = Epoll::new(EpollCreateFlags::EPOLL_CLOEXEC)
            .map_err(io::Error::from)
            .and_then(|e| move_high(e.0, HIGH_FD))
            .map(Epoll)
            .map_err(|e| fail("epoll", &strerror(&e)))?;
        // nix's SignalFd cannot be rebuilt from a moved descriptor, hence the
        // plain (deprecated) constructor.
        #[allow(deprecated)]
        let signals = signalfd(
            None::<BorrowedFd<'_>>,
            &mask,
            SfdFlags::SFD_NONBLOCK | SfdFlags::SFD_CLOEXEC,
        )
        .map_err(io::Error::from)
        .and_then(|fd| move_high(fd, HIGH_FD))
        .map(File::from)
        .map_err(|e| fail("signalfd", &strerror(&e)))?;
        let ev = |t| EpollEvent::new(EpollFlags::EPOLLIN, t);
        epoll
            .add(&listener, ev(TOKEN_LISTENER))
            .map_err(|e| fail("epoll", &e))?;
        epoll
            .add(&data, ev(TOKEN_DATA))
            .map_err(|e| fail("epoll", &e))?;
        epoll
            .add(&signals, ev(TOKEN_SIGNAL))
            .map_err(|e| fail("epoll", &e))?;

        let now = Instant::now();
        let mut sw = Switch {
            prog: prog.to_string(),
            forwarder: Forwarder::new(opts.hub, DEFAULT_TABLE_CAP),
            opts,
            epoll,
            listener,
            listener_paused: false,
            data,
            data_addr,
            tap: None,
            tap_port: None,
            signals,
            stdin_watched: false,
            conns: HashMap::new(),
            ports: Vec::new(),
            free_ports: Vec::new(),
            by_addr: HashMap::default(),
            rx: RecvBatch::new(BATCH, MAX_FRAME_LEN),
            tx: {
                let mut tx = SendBatch::new(SEND_BATCH, MAX_FRAME_LEN);
                tx.set_eagain_patience(EAGAIN_PATIENCE, EAGAIN_COOLDOWN);
                tx
            },
            stats: Stats::default(),
            start: now,
            now_secs: 0,
            last_unknown_notice: None,
            unknown_sender_reported: false,
            next_aging: now + AGING_PERIOD,
            next_conn_scan: now + CONN_SCAN_PERIOD,
            pending_present: false,
            grace_pending: false,
        };
        if stdin_is_tty {
            let stdin = io::stdin();
            if sw.epoll.add(stdin.as_fd(), ev(TOKEN_STDIN)).is_ok() {
                sw.stdin_watched = true;
            }
        }
        if let Some(file) = tap {
            sw.attach_tap(file);
        }
        Ok(sw)
    }

    fn attach_tap(&mut self, file: File) {
        if self
            .epoll
            .add(&file, EpollEvent::new(EpollFlags::EPOLLIN, TOKEN_TAP))
            .is_err()
        {
            return;
        }
        let label = file.as_raw_fd();
        self.tap = Some(file);
        let id = self.add_port(Port {
            kind: PortKind::Tap,
            label,
            send_error_reported: false,
        });
        self.tap_port = Some(id);
    }

    fn add_port(&mut self, port: Port) -> PortId {
        if let PortKind::Socket { addr, .. } = &port.kind {
            let key = addr.key();
            match self.free_ports.pop() {
                Some(id) => {
                    self.by_addr.insert(key, id);
                    self.ports[id as usize] = Some(port);
                    id
                }
                None => {
                    let id = self.ports.len() as PortId;
                    self.by_addr.insert(key, id);
                    self.ports.push(Some(port));
                    id
                }
            }
        } else {
            let id = self.ports.len() as PortId;
            self.ports.push(Some(port));
            id
        }
    }

    fn remove_port(&mut self, id: PortId) {
        let Some(port) = self.ports.get_mut(id as usize).and_then(Option::take) else {
            return;
        };
        if let PortKind::Socket { addr, .. } = port.kind {
            let key = addr.key();
            if self.by_addr.get(&key) == Some(&id) {
                self.by_addr.remove(&key);
            }
        }
        self.forwarder.table.purge_port(id);
        self.tx.forget_tag(id);
        self.free_ports.push(id);
    }

    /// Runs until a signal or stdin EOF.
    pub fn run(&mut self) -> Exit {
        let mut events = vec![EpollEvent::empty(); 64];
        loop {
            let timeout = self.next_timeout();
            let n = match self.epoll.wait(&mut events, timeout) {
                Ok(n) => n,
                Err(nix::errno::Errno::EINTR) => continue,
                Err(e) => {
                    err(&format!("poll: {}\n", e.desc()));
                    self.cleanup();
                    return Exit::Status(0);
                }
            };
            self.now_secs = self.start.elapsed().as_secs() as u32;
            for ev in &events[..n] {
                let token = ev.data();
                let flags = ev.events();
                match token {
                    TOKEN_DATA => self.handle_data(),
                    TOKEN_TAP => self.handle_tap(),
                    TOKEN_LISTENER => self.handle_accept(),
                    TOKEN_SIGNAL => {
                        if let Some(exit) = self.handle_signal() {
                            return exit;
                        }
                    }
                    TOKEN_STDIN => {
                        if let Some(exit) = self.handle_stdin(flags) {
                            return exit;
                        }
                    }
                    t if t >= TOKEN_CONN_BASE => self.handle_conn((t - TOKEN_CONN_BASE) as RawFd),
                    _ => {}
                }
            }
            self.housekeeping();
        }
    }

    fn next_timeout(&self) -> EpollTimeout {
        let now = Instant::now();
        let mut next = self.next_aging;
        // Connection deadlines are checked on a coarse tick instead of
        // scanning every connection on every wake-up (which would cost
        // O(ports) per batch of frames).
        if self.pending_present || self.grace_pending {
            next = next.min(self.next_conn_scan);
        }
        if self.listener_paused {
            next = next.min(now + Duration::from_millis(100));
        }
        let ms = next.saturating_duration_since(now).as_millis().min(2000) as u16;
        EpollTimeout::from(ms.saturating_add(1))
    }

    fn housekeeping(&mut self) {
        let now = Instant::now();
        if now >= self.next_aging {
            self.forwarder.table.expire(self.now_secs);
            self.next_aging = now + AGING_PERIOD;
        }
        if now < self.next_conn_scan {
            return;
        }
        self.next_conn_scan = now + CONN_SCAN_PERIOD;
        let expired: Vec<RawFd> = self
            .conns
            .iter()
            .filter_map(|(&fd, c)| match c.state {
                ConnState::Pending { deadline, ref buf } if deadline <= now => {
                    err(&format!(
                        "{}: closing control connection {fd}: incomplete request ({} bytes) after {} s\n",
                        self.prog,
                        buf.len(),
                        REQUEST_TIMEOUT.as_secs()
                    ));
                    Some(fd)
                }
                _ => None,
            })
            .collect();
        for fd in expired {
            self.close_conn(fd);
        }
        let mut grace_pending = false;
        for c in self.conns.values_mut() {
            if let ConnState::Active {
                grace_until,
                ref mut grace_left,
                ..
            } = c.state
            {
                if grace_until <= now {
                    *grace_left = 0;
                }
                grace_pending |= *grace_left > 0;
            }
        }
        self.grace_pending = grace_pending;
        self.pending_present = self
            .conns
            .values()
            .any(|c| matches!(c.state, ConnState::Pending { .. }));
        if self.listener_paused {
            let ev = EpollEvent::new(EpollFlags::EPOLLIN, TOKEN_LISTENER);
            if self.epoll.add(&self.listener, ev).is_ok() {
                self.listener_paused = false;
            }
        }
    }

    fn handle_accept(&mut self) {
        loop {
            match self.listener.accept() {
                Ok((stream, _)) => {
                    if let Err(e) = stream.set_nonblocking(true) {
                        err(&format!("fcntl - setting O_NONBLOCK: {}\n", strerror(&e)));
                        continue;
                    }
                    let fd = stream.as_raw_fd();
                    let ev = EpollEvent::new(EpollFlags::EPOLLIN, TOKEN_CONN_BASE + fd as u64);
                    if self.epoll.add(&stream, ev).is_err() {
                        continue;
                    }
                    self.pending_present = true;
                    self.conns.insert(
                        fd,
                        Conn {
                            stream,
                            state: ConnState::Pending {
                                buf: Vec::with_capacity(V3_LEN),
                                deadline: Instant::now() + REQUEST_TIMEOUT,
                            },
                        },
                    );
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => {
                    err(&format!("accept: {}\n", strerror(&e)));
                    // Out of descriptors: stop accepting for a moment
                    // instead of spinning on a level-triggered listener.
                    if self.epoll.delete(&self.listener).is_ok() {
                        self.listener_paused = true;
                    }
                    return;
                }
            }
        }
    }

    fn close_conn(&mut self, fd: RawFd) {
        if let Some(conn) = self.conns.remove(&fd) {
            let _ = self.epoll.delete(&conn.stream);
            if let ConnState::Active { port, .. } = conn.state {
                self.remove_port(port);
            }
        }
    }

    fn handle_conn(&mut self, fd: RawFd) {
        let Some(conn) = self.conns.get_mut(&fd) else {
            return;
        };
        match &mut conn.state {
            ConnState::Pending { buf, .. } => {
                let mut chunk = [0u8; V3_LEN + V3_DESCRIPTION_MAX];
                let room = chunk.len() - buf.len();
                match conn.stream.read(&mut chunk[..room]) {
                    Ok(0) => {
                        out("EOF from new port\n");
                        self.close_conn(fd);
                    }
                    Ok(n) => {
                        buf.extend_from_slice(&chunk[..n]);
                        let parsed = parse_request(buf);
                        let received = buf.len();
                        self.on_request(fd, parsed, received);
                    }
                    Err(e)
                        if matches!(
                            e.kind(),
                            io::ErrorKind::WouldBlock | io::ErrorKind::Interrupted
                        ) => {}
                    Err(e) => {
                        err(&format!("Reading request: {}\n", strerror(&e)));
                        self.close_conn(fd);
                    }
                }
            }
            ConnState::Active { grace_left, .. } => {
                let mut b = [0u8; 256];
                let allowed = *grace_left;
                match conn.stream.read(&mut b) {
                    Ok(0) => {
                        out("Disconnect\n");
                        self.close_conn(fd);
                    }
                    Ok(n) if n <= allowed => *grace_left -= n,
                    Ok(_) => {
                        out("Bad request\n");
                        self.close_conn(fd);
                    }
                    Err(e)
                        if matches!(
                            e.kind(),
                            io::ErrorKind::WouldBlock | io::ErrorKind::Interrupted
                        ) => {}
                    Err(e) => {
                        err(&format!("Reading request: {}\n", strerror(&e)));
                        self.close_conn(fd);
                    }
                }
            }
        }
    }

    fn on_request(&mut self, fd: RawFd, parsed: Parsed, received: usize) {
        match parsed {
            Parsed::NeedMore => {}
            Parsed::Reject { message } => {
                if message.starts_with("Bad request type") {
                    out(&format!("{message}\n"));
                } else {
                    err(&format!("{message}\n"));
                }
                self.close_conn(fd);
            }
            Parsed::Port {
                version,
                addr,
                consumed,
            } => {
                let tx = connected_socket(&addr);
                let id = self.add_port(Port {
                    kind: PortKind::Socket { addr, tx },
                    label: fd,
                    send_error_reported: false,
                });
                out("New connection\n");
                let grace_left = match version {
                    Version::V3 => {
                        (V3_LEN + V3_DESCRIPTION_MAX).saturating_sub(received.max(consumed))
                    }
                    _ => 0,
                };
                let extra = received.saturating_sub(consumed);
                let Some(conn) = self.conns.get_mut(&fd) else {
                    return;
                };
                conn.state = ConnState::Active {
                    port: id,
                    grace_until: Instant::now() + TRAILER_GRACE,
                    grace_left,
                };
                self.grace_pending |= grace_left > 0;
                if version != Version::V3 && extra > 0 {
                    out("Bad request\n");
                    self.close_conn(fd);
                    return;
                }
                if version != Version::V0 {
                    match conn.stream.write(&self.data_addr.0) {
                        Ok(SOCKADDR_UN_LEN) => {}
                        Ok(_) => {
                            err("Sending data socket name: short write\n");
                            self.close_conn(fd);
                        }
                        Err(e) => {
                            err(&format!("Sending data socket name: {}\n", strerror(&e)));
                            self.close_conn(fd);
                        }
                    }
                }
            }
        }
    }

    fn handle_signal(&mut self) -> Option<Exit> {
        // struct signalfd_siginfo is 128 bytes; ssi_signo is its first u32.
        let mut info = [0u8; 128];
        while let Ok(128) = self.signals.read(&mut info) {
            let sig = u32::from_ne_bytes([info[0], info[1], info[2], info[3]]) as i32;
            if sig == libc::SIGUSR1 {
                self.print_stats();
                continue;
            }
            out(&format!("Caught signal {sig}, cleaning up and exiting\n"));
            self.cleanup();
            return Some(Exit::Signal(sig));
        }
        None
    }

    fn handle_stdin(&mut self, flags: EpollFlags) -> Option<Exit> {
        let mut b = [0u8; 128];
        let n = match io::stdin().lock().read(&mut b) {
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => return None,
            Err(e) => {
                err(&format!("Reading from stdin: {}\n", strerror(&e)));
                if flags.contains(EpollFlags::EPOLLHUP) {
                    0
                } else {
                    return None;
                }
            }
        };
        if n == 0 {
            out("EOF on stdin, cleaning up and exiting\n");
            self.cleanup();
            return Some(Exit::Status(0));
        }
        None
    }

    /// Prints the counters (SIGUSR1) on stderr.
    pub fn print_stats(&self) {
        let s = self.stats;
        err(&format!(
            "{}: ports {}, MAC entries {}, frames in {}, out {}, truncated {}, dropped: short {}, unknown sender {}, queue full {}, send errors {}; MACs not learned (table full) {}\n",
            self.prog,
            self.ports.iter().flatten().count(),
            self.forwarder.table.len(),
            s.frames_in,
            s.frames_out,
            s.truncated,
            s.short,
            s.unknown_sender,
            s.queue_full,
            s.send_errors,
            s.table_full,
        ));
    }

    /// Removes the socket files (as the C switch does before exiting).
    pub fn cleanup(&mut self) {
        if let Err(e) = std::fs::remove_file(&self.opts.ctl) {
            out(&format!(
                "Couldn't remove control socket '{}' : ",
                self.opts.ctl.display()
            ));
            err(&format!("{}\n", strerror(&e)));
        }
        if let Some(d) = &self.opts.data {
            if let Err(e) = std::fs::remove_file(d) {
                out(&format!("Couldn't remove data socket '{}' : ", d.display()));
                err(&format!("{}\n", strerror(&e)));
            }
        }
    }

    fn handle_data(&mut self) {
        // Bounded work per wake-up so control connections are not starved.
        for _ in 0..16 {
            let n = match self.rx.recv(self.data.as_fd()) {
                Ok(0) => return,
                Ok(n) => n,
                Err(e) => {
                    err(&format!("handle_sock_data: {}\n", strerror(&e)));
                    return;
                }
            };
            for i in 0..n {
                self.stats.frames_in += 1;
                let key = AddrKey::from_sockaddr(self.rx.sender(i));
                let Some(&from) = self.by_addr.get(&key) else {
                    self.stats.unknown_sender += 1;
                    if !self.unknown_sender_reported {
                        self.unknown_sender_reported = true;
                        out("Unknown connection for packet, shouldn't happen.\n");
                    }
                    continue;
                };
                if self.rx.truncated(i) {
                    self.stats.truncated += 1;
                }
                self.switch_frame(from, FrameSrc::Rx(i));
            }
            self.flush_tx();
            // Keep reading while frames keep coming (the next recvmmsg is
            // cheaper than a round through epoll_wait); stop at the first
            // empty read or after the bounded number of rounds.
        }
    }

    fn handle_tap(&mut self) {
        let Some(from) = self.tap_port else {
            return;
        };
        for _ in 0..BATCH {
            let Some(tap) = self.tap.as_mut() else {
                return;
            };
            let buf = self.rx.buffer_mut(0);
            match tap.read(buf) {
                Ok(0) => return,
                Ok(len) => {
                    self.stats.frames_in += 1;
                    self.switch_frame(from, FrameSrc::Tap(len));
                    self.flush_tx();
                }
                Err(e) if matches!(e.kind(), io::ErrorKind::WouldBlock) => return,
                Err(e) if matches!(e.kind(), io::ErrorKind::Interrupted) => {}
                Err(e) => {
                    err(&format!("Reading tap data: {}\n", strerror(&e)));
                    return;
                }
            }
        }
    }

    fn switch_frame(&mut self, from: PortId, src: FrameSrc) {
        let frame = match src {
            FrameSrc::Rx(i) => self.rx.frame(i),
            FrameSrc::Tap(len) => self.rx.buffer(0, len),
        };
        let ports = &self.ports;
        let label = |id: PortId| {
            ports
                .get(id as usize)
                .and_then(Option::as_ref)
                .map(|p| p.label)
        };
        let mut table_full = 0u64;
        let mut unknown: Option<[u8; 6]> = None;
        let verdict = self
            .forwarder
            .forward(from, frame, self.now_secs, |ev| match ev {
                Event::Learned { mac, port, old } => {
                    let mut line = format!(" Addr: {mac} New port {}", label(port).unwrap_or(-1));
                    if let Some(o) = old.and_then(label) {
                        line.push_str(&format!(" old port {o}"));
                    }
                    line.push('\n');
                    out(&line);
                }
                Event::Unknown { src } => unknown = Some(src.0),
                Event::TableFull => table_full += 1,
            });
        self.stats.table_full += table_full;
        if let Some(src) = unknown {
            self.unknown_notice(src, from);
        }
        let frame = match src {
            FrameSrc::Rx(i) => self.rx.frame(i),
            FrameSrc::Tap(len) => self.rx.buffer(0, len),
        };
        match verdict {
            Verdict::Drop => {
                if frame.len() < uml_common::switch::ETH_HEADER_LEN {
                    self.stats.short += 1;
                }
            }
            Verdict::To(to) => {
                Self::send_to_port(
                    &mut self.tx,
                    &self.ports,
                    self.tap.as_mut(),
                    &mut self.stats,
                    self.data.as_fd(),
                    to,
                    frame,
                );
            }
            Verdict::Flood => {
                for id in 0..self.ports.len() as PortId {
                    if id != from && self.ports[id as usize].is_some() {
                        Self::send_to_port(
                            &mut self.tx,
                            &self.ports,
                            self.tap.as_mut(),
                            &mut self.stats,
                            self.data.as_fd(),
                            id,
                            frame,
                        );
                    }
                }
            }
        }
    }

    /// The C switch prints `unknown Addr` for every such frame; ours prints
    /// it when the source changes or at most once a second.
    fn unknown_notice(&mut self, src: [u8; 6], from: PortId) {
        let now = Instant::now();
        let show = match self.last_unknown_notice {
            Some((t, mac)) => mac != src || now.duration_since(t) >= Duration::from_secs(1),
            None => true,
        };
        if show {
            self.last_unknown_notice = Some((now, src));
            let label = self
                .ports
                .get(from as usize)
                .and_then(Option::as_ref)
                .map_or("UNKNOWN".to_string(), |p| p.label.to_string());
            out(&format!(
                "unknown Addr: {} from port {label}\n",
                uml_common::switch::Mac(src)
            ));
        }
    }

    #[allow(clippy::too_many_arguments)]
    fn send_to_port(
        tx: &mut SendBatch,
        ports: &[Option<Port>],
        tap: Option<&mut File>,
        stats: &mut Stats,
        data: BorrowedFd<'_>,
        to: PortId,
        frame: &[u8],
    ) {
        let Some(port) = ports.get(to as usize).and_then(Option::as_ref) else {
            return;
        };
        match &port.kind {
            PortKind::Socket { addr, tx: sock } => {
                if tx.is_full() {
                    let f = tx.flush(data, |_| {});
                    stats.frames_out += f.sent as u64;
                    stats.queue_full += f.would_block as u64;
                }
                match sock {
                    Some(sock) => tx.push_connected(frame, sock.as_fd(), to),
                    None => tx.push(frame, addr, to),
                };
            }
            PortKind::Tap => {
                if let Some(tap) = tap {
                    match tap.write(frame) {
                        Ok(_) => stats.frames_out += 1,
                        Err(e) if e.kind() == io::ErrorKind::WouldBlock => stats.queue_full += 1,
                        Err(e) => {
                            stats.send_errors += 1;
                            err(&format!("send_tap: {}\n", strerror(&e)));
                        }
                    }
                }
            }
        }
    }

    fn flush_tx(&mut self) {
        if self.tx.is_empty() {
            return;
        }
        let data_fd = self.data.as_raw_fd();
        let mut failed: Vec<(u32, io::Error)> = Vec::new();
        let f = self.tx.flush(self.data.as_fd(), |fail| {
            failed.push((fail.tag, fail.error))
        });
        self.stats.frames_out += f.sent as u64;
        self.stats.queue_full += f.would_block as u64;
        self.stats.send_errors += failed.len() as u64;
        for (tag, e) in failed {
            if let Some(Some(port)) = self.ports.get_mut(tag as usize) {
                if !port.send_error_reported {
                    port.send_error_reported = true;
                    err(&format!(
                        "send_sock sending to fd {data_fd} {}\n",
                        strerror(&e)
                    ));
                }
            }
        }
    }
}

#[derive(Clone, Copy)]
enum FrameSrc {
    Rx(usize),
    Tap(usize),
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

/// Opens the tap as the C switch does; on failure prints why and the
/// switch runs without it. Prints `New connection` on success.
fn open_tap_file(name: &str) -> Option<File> {
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
    Some(file)
}

fn set_nonblocking(fd: BorrowedFd<'_>) -> io::Result<()> {
    use nix::fcntl::{fcntl, FcntlArg, OFlag};
    let flags = fcntl(fd.as_raw_fd(), FcntlArg::F_GETFL).map_err(io::Error::from)?;
    let flags = OFlag::from_bits_truncate(flags) | OFlag::O_NONBLOCK;
    fcntl(fd.as_raw_fd(), FcntlArg::F_SETFL(flags)).map_err(io::Error::from)?;
    Ok(())
}

fn compat_bind_failure(
    prog: &str,
    ctl: &Path,
    data: &Path,
    ctl_outcome: &BindOutcome,
    data_outcome: &BindOutcome,
) {
    let (c, d) = (ctl.display(), data.display());
    let mut msg = String::new();
    let mut removable = Vec::new();
    for (kind, path, outcome) in [("control", &c, ctl_outcome), ("data", &d, data_outcome)] {
        match outcome {
            BindOutcome::InUse => msg.push_str(&format!(
                "The {kind} socket '{path}' has another server attached to it\n"
            )),
            // A socket nobody uses that could not be removed automatically
            // is one the user can remove; one in use is not (the C switch
            // then only suggests other names).
            BindOutcome::CantRemove => {
                msg.push_str(&format!(
                    "The {kind} socket '{path}' exists, isn't used, but couldn't be removed\n"
                ));
                removable.push(format!("'{path}'"));
            }
            BindOutcome::Bound => {}
        }
    }
    if removable.is_empty() {
        msg.push_str(&format!(
            "You should rerun with different, unused filenames for sockets:\n\t{prog} -unix <control> <data>\n\tand run the UMLs with 'eth0=daemon,,unix,<control>,<data>'\n"
        ));
    } else {
        msg.push_str(&format!(
            "You can either\n\tremove {}\n\tor rerun with different, unused filenames for sockets:\n\t\t{prog} -unix <control> <data>\n\t\tand run the UMLs with 'eth0=daemon,,unix,<control>,<data>\n",
            removable.join(" and ")
        ));
    }
    err(&msg);
}

/// Entry point: returns the process exit (status or signal to die by).
pub fn run(prog: &str, opts: Options) -> Exit {
    let mut sw = match Switch::setup(prog, opts) {
        Ok(sw) => sw,
        Err(SetupFailed) => return Exit::Status(1),
    };
    sw.run()
}
