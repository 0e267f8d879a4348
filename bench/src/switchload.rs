//! A load generator that speaks the `uml_switch` daemon protocol
//! (`docs/switch.md` §4, §5): N ports, each a datagram socket bound to a
//! full-length abstract address (107-byte name, addrlen 110, like the
//! kernel's) plus a control connection that stays open for the port's
//! lifetime.
//!
//! What it measures (driven by `bench-switch`):
//! * [`Generator::learn`]: every port sends one broadcast from its MAC, in
//!   turn, and the next one starts only when every other port has received
//!   it, so the switch knows all MACs before anything is timed;
//! * [`Generator::blast`]: flows of frames sent as fast as the switch takes
//!   them — non-blocking `sendto`s; a full switch input queue (`EAGAIN` at
//!   the sender) is counted apart from frames lost inside the switch
//!   (sent × receivers − received after a drain);
//! * [`Generator::direct`]: the same ports without a switch (port 2i sends
//!   straight to 2i+1), to see what the generator itself can move;
//! * [`Generator::ping_pong`]: round trips between two ports with one frame
//!   in flight.
//!
//! Everything is single-threaded and bounded in time: on a 2-core machine
//! the switch keeps the other core. Frames carry a tag (EtherType 0x88b5,
//! `UMLB`, a phase byte and a sequence number) so that a frame from another
//! phase, a misdelivered frame or a duplicate broadcast is never counted as
//! delivered.

use std::io::{self, Read, Write};
use std::os::fd::AsFd;
use std::os::linux::net::SocketAddrExt;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::net::{SocketAddr, UnixDatagram, UnixStream};
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use nix::errno::Errno;
use nix::sys::epoll::{Epoll, EpollCreateFlags, EpollEvent, EpollFlags, EpollTimeout};
use uml_common::switch::{encode_v3, Mac, SockAddrUn, AF_UNIX, SOCKADDR_UN_LEN, SUN_PATH_LEN};
use uml_common::sys::mmsg::{RecvBatch, SendBatch};

/// IEEE 802 local experimental EtherType.
pub const ETHERTYPE: u16 = 0x88b5;
/// Tag after the EtherType.
const TAG: &[u8; 4] = b"UMLB";
/// Shortest frame that carries the tag, phase and sequence number.
pub const MIN_FRAME_LEN: usize = 28;
/// Largest frame the switch forwards unchanged.
pub const MAX_FRAME_LEN: usize = 1514;
/// The broadcast MAC.
pub const BROADCAST: Mac = Mac([0xff; 6]);
/// Length of an abstract name that fills the whole `sun_path`.
pub const NAME_LEN: usize = SUN_PATH_LEN - 1;

/// What a frame belongs to; receivers count only frames of the current
/// phase.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub enum Phase {
    /// The learning broadcasts.
    Learn = 1,
    /// Untimed unicast before the measurements.
    Warmup = 2,
    /// Timed unicast pairs.
    Unicast = 3,
    /// Timed broadcast.
    Broadcast = 4,
    /// Round trips.
    PingPong = 5,
}

/// The tagged fields of a generator frame.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FrameInfo {
    /// Destination MAC.
    pub dst: Mac,
    /// Source MAC.
    pub src: Mac,
    /// Phase byte.
    pub phase: u8,
    /// Sequence number.
    pub seq: u64,
}

/// A frame of `len` bytes (at least [`MIN_FRAME_LEN`], at most
/// [`MAX_FRAME_LEN`]): Ethernet header, `UMLB`, phase, a zero byte, the
/// sequence number (LE), zero padding.
pub fn build_frame(len: usize, dst: Mac, src: Mac, phase: Phase, seq: u64) -> Vec<u8> {
    let mut f = vec![0u8; len.clamp(MIN_FRAME_LEN, MAX_FRAME_LEN)];
    f[0..6].copy_from_slice(&dst.0);
    f[6..12].copy_from_slice(&src.0);
    f[12..14].copy_from_slice(&ETHERTYPE.to_be_bytes());
    f[14..18].copy_from_slice(TAG);
    f[18] = phase as u8;
    f[20..28].copy_from_slice(&seq.to_le_bytes());
    f
}

/// Overwrites the sequence number of a frame made by [`build_frame`].
pub fn set_seq(frame: &mut [u8], seq: u64) {
    if let Some(s) = frame.get_mut(20..28) {
        s.copy_from_slice(&seq.to_le_bytes());
    }
}

/// The tagged fields, or `None` for a frame the generator did not make.
pub fn parse_frame(f: &[u8]) -> Option<FrameInfo> {
    if f.len() < MIN_FRAME_LEN || f[12..14] != ETHERTYPE.to_be_bytes() || &f[14..18] != TAG {
        return None;
    }
    let mut dst = [0u8; 6];
    let mut src = [0u8; 6];
    let mut seq = [0u8; 8];
    dst.copy_from_slice(&f[0..6]);
    src.copy_from_slice(&f[6..12]);
    seq.copy_from_slice(&f[20..28]);
    Some(FrameInfo {
        dst: Mac(dst),
        src: Mac(src),
        phase: f[18],
        seq: u64::from_le_bytes(seq),
    })
}

/// MAC of port `i`: locally administered unicast `02:42:00:00:hi:lo`
/// (`i + 1`).
pub fn port_mac(i: usize) -> Mac {
    let v = (i + 1) as u16;
    Mac([0x02, 0x42, 0x00, 0x00, (v >> 8) as u8, v as u8])
}

/// The 107-byte abstract name of port `i`: `uml-bench-switch/<tag>/<i>`,
/// zeros, and a non-zero last byte — every byte of the 108-byte path is
/// part of the name, as with the kernel's data sockets, whose trailing
/// bytes are uninitialised heap.
pub fn port_name(tag: &str, i: usize) -> [u8; NAME_LEN] {
    let mut name = [0u8; NAME_LEN];
    let text = format!("uml-bench-switch/{tag}/{i}");
    let n = text.len().min(NAME_LEN - 1);
    name[..n].copy_from_slice(&text.as_bytes()[..n]);
    name[NAME_LEN - 1] = b'~';
    name
}

/// The switch's data address from its 110-byte reply (opaque: an abstract
/// name is all 107 bytes after `sun_path[0]`; a filesystem path ends at its
/// NUL).
pub fn reply_address(reply: &[u8; SOCKADDR_UN_LEN]) -> Result<SocketAddr, String> {
    let family = u16::from_le_bytes([reply[0], reply[1]]);
    if family != AF_UNIX {
        return Err(format!(
            "the reply is not an AF_UNIX address (family {family}): {:02x?}",
            &reply[..16]
        ));
    }
    let path = &reply[2..];
    let addr = if path[0] == 0 {
        SocketAddr::from_abstract_name(&path[1..])
    } else {
        let end = path.iter().position(|&b| b == 0).unwrap_or(path.len());
        SocketAddr::from_pathname(Path::new(std::ffi::OsStr::from_bytes(&path[..end])))
    };
    addr.map_err(|e| format!("unusable data socket address in the reply: {e}"))
}

/// One switch port.
#[derive(Debug)]
pub struct Port {
    /// The port's MAC.
    pub mac: Mac,
    /// The data socket (non-blocking).
    pub sock: UnixDatagram,
    /// Its 110-byte address as registered.
    pub addr: SockAddrUn,
    /// Where frames go: the switch's reply (or, without a switch, the
    /// partner port).
    pub switch: SocketAddr,
    /// The same as 110 raw bytes, sent with addrlen 110 like the kernel.
    pub switch_raw: SockAddrUn,
    /// The control connection; closing it would remove the port. `None`
    /// for a port of [`Generator::direct`].
    ctl: Option<UnixStream>,
}

impl Port {
    /// Binds port `i`'s data socket (non-blocking) to its full-length
    /// abstract name.
    fn bind(tag: &str, i: usize) -> Result<(UnixDatagram, [u8; NAME_LEN]), String> {
        let name = port_name(tag, i);
        let sa = SocketAddr::from_abstract_name(name)
            .map_err(|e| format!("port {i}: abstract name: {e}"))?;
        let sock = UnixDatagram::bind_addr(&sa)
            .map_err(|e| format!("port {i}: binding the data socket: {e}"))?;
        sock.set_nonblocking(true)
            .map_err(|e| format!("port {i}: O_NONBLOCK: {e}"))?;
        // Full length: the kernel saw addrlen 110.
        let bound = sock
            .local_addr()
            .map_err(|e| format!("port {i}: getsockname: {e}"))?;
        if bound.as_abstract_name().map(<[u8]>::len) != Some(NAME_LEN) {
            return Err(format!(
                "port {i}: the data socket is not bound to a 107-byte abstract name"
            ));
        }
        Ok((sock, name))
    }

    /// Binds port `i`'s data socket, connects to the control socket `ctl`,
    /// sends a v3 request and reads the 110-byte reply (bounded by
    /// `timeout`).
    pub fn connect(ctl: &Path, tag: &str, i: usize, timeout: Duration) -> Result<Port, String> {
        let (sock, name) = Port::bind(tag, i)?;
        let addr = SockAddrUn::abstract_name(&name);
        // The socket file exists from bind() on, but connect() works only
        // after listen(): retry "refused" briefly.
        let connect_deadline = Instant::now() + timeout;
        let mut stream = loop {
            match UnixStream::connect(ctl) {
                Ok(s) => break s,
                Err(e)
                    if matches!(
                        e.kind(),
                        io::ErrorKind::ConnectionRefused | io::ErrorKind::NotFound
                    ) && Instant::now() < connect_deadline =>
                {
                    std::thread::sleep(Duration::from_millis(2));
                }
                Err(e) => return Err(format!("port {i}: connecting to {}: {e}", ctl.display())),
            }
        };
        stream
            .set_read_timeout(Some(timeout))
            .and_then(|()| stream.set_write_timeout(Some(timeout)))
            .map_err(|e| format!("port {i}: socket timeouts: {e}"))?;
        stream
            .write_all(&encode_v3(&addr))
            .map_err(|e| format!("port {i}: writing the v3 request: {e}"))?;
        let mut reply = [0u8; SOCKADDR_UN_LEN];
        stream.read_exact(&mut reply).map_err(|e| match e.kind() {
            io::ErrorKind::UnexpectedEof => {
                format!("port {i}: the switch closed the control connection without a full 110-byte reply")
            }
            io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut => {
                format!("port {i}: no 110-byte reply within {timeout:?}")
            }
            _ => format!("port {i}: reading the reply: {e}"),
        })?;
        let switch = reply_address(&reply).map_err(|e| format!("port {i}: {e}"))?;
        Ok(Port {
            mac: port_mac(i),
            sock,
            addr,
            switch,
            switch_raw: SockAddrUn(reply),
            ctl: Some(stream),
        })
    }

    /// Sends one frame to the switch without blocking.
    pub fn send(&self, frame: &[u8]) -> io::Result<usize> {
        self.sock.send_to_addr(frame, &self.switch)
    }

    /// Whether the switch has closed (or written to) the control
    /// connection — either means the port is gone.
    pub fn control_closed(&self) -> bool {
        let Some(ctl) = &self.ctl else {
            return false;
        };
        let mut b = [0u8; 1];
        if ctl.set_nonblocking(true).is_err() {
            return true;
        }
        let closed =
            !matches!((&*ctl).read(&mut b), Err(e) if e.kind() == io::ErrorKind::WouldBlock);
        let _ = ctl.set_nonblocking(false);
        closed
    }
}

/// Outcome of [`Generator::blast`].
#[derive(Debug, Default, Clone, Copy, PartialEq)]
pub struct BlastResult {
    /// Frames the switch's data socket accepted.
    pub sent: u64,
    /// Sends refused with `EAGAIN` (the switch's input queue was full);
    /// those frames were not sent and are not loss.
    pub eagain: u64,
    /// Sends that failed otherwise.
    pub send_errors: u64,
    /// Deliveries expected: `sent` × receivers per frame.
    pub expected: u64,
    /// Good deliveries (right port, right phase, each broadcast once per
    /// receiver), in the timed window.
    pub delivered_in_window: u64,
    /// Good deliveries, window and drain.
    pub delivered: u64,
    /// Frames that arrived where they should not (wrong port, old phase,
    /// foreign).
    pub stray: u64,
    /// Length of the timed window.
    pub window: Duration,
}

impl BlastResult {
    /// Good deliveries per second of the window.
    pub fn rate(&self) -> f64 {
        let s = self.window.as_secs_f64();
        if s > 0.0 {
            self.delivered_in_window as f64 / s
        } else {
            0.0
        }
    }

    /// Expected deliveries that never arrived.
    pub fn lost(&self) -> u64 {
        self.expected.saturating_sub(self.delivered)
    }

    /// Loss in % of the expected deliveries.
    pub fn loss_pct(&self) -> f64 {
        if self.expected == 0 {
            0.0
        } else {
            self.lost() as f64 * 100.0 / self.expected as f64
        }
    }

    /// Refused send attempts in % of all attempts.
    pub fn eagain_pct(&self) -> f64 {
        let attempts = self.sent + self.eagain + self.send_errors;
        if attempts == 0 {
            0.0
        } else {
            self.eagain as f64 * 100.0 / attempts as f64
        }
    }
}

/// A stream of frames from one port.
#[derive(Debug, Clone)]
pub struct Flow {
    /// Sending port.
    pub from: usize,
    /// The frame (its sequence number is rewritten per send).
    pub frame: Vec<u8>,
}

/// Parameters of [`Generator::blast`].
#[derive(Debug, Clone, Copy)]
pub struct BlastParams {
    /// The phase tag of the frames.
    pub phase: Phase,
    /// Timed window.
    pub duration: Duration,
    /// Total offered frames/s (`None`: as fast as the switch takes them).
    pub rate: Option<f64>,
    /// Receivers per frame (1 for unicast, N − 1 for broadcast).
    pub fanout: u64,
    /// Consecutive sends from one flow before moving to the next.
    pub burst: usize,
    /// Send only into room the switch's input queue is known to have
    /// (see [`Generator::blast`]); false: retry as soon as anything
    /// arrived.
    pub credit: bool,
    /// Frames sent beyond the room known (0: never into a full queue).
    pub slack: u64,
    /// Most frames sent before the receivers are looked at again.
    pub round_max: u64,
    /// Length of the receivers' queues (`net.unix.max_dgram_qlen`): a
    /// receiver is sent at most half of it between two drains.
    pub recv_queue: usize,
    /// Send with `sendmmsg` (one call per burst) instead of one `sendto`
    /// per frame.
    pub sendmmsg: bool,
    /// How long to poll without sleeping when nothing moved.
    pub spin: Duration,
    /// Quiet time that ends the drain.
    pub quiet: Duration,
    /// Longest drain.
    pub max_drain: Duration,
}

/// Round-trip samples of [`Generator::ping_pong`].
#[derive(Debug, Default, Clone)]
pub struct PingPongResult {
    /// Round trips in ns (after the warm-up).
    pub rtt_ns: Vec<u64>,
    /// Frames that never came (each costs one receive timeout).
    pub lost: u64,
    /// Unexpected frames seen while waiting.
    pub stray: u64,
}

/// Counts deliveries during a blast.
struct Tally {
    macs: Vec<Mac>,
    phase: u8,
    /// Per receiver, the next broadcast sequence number expected: frames
    /// from one sender keep their order through a switch, so a repeat
    /// shows up as a smaller number.
    next_bcast: Vec<u64>,
    delivered: u64,
    stray: u64,
}

impl Tally {
    fn new(ports: &[Port], phase: Phase) -> Tally {
        Tally {
            macs: ports.iter().map(|p| p.mac).collect(),
            phase: phase as u8,
            next_bcast: vec![0; ports.len()],
            delivered: 0,
            stray: 0,
        }
    }

    /// Every frame received (delivered or not).
    fn seen(&self) -> u64 {
        self.delivered + self.stray
    }

    fn count(&mut self, j: usize, f: &[u8]) {
        match parse_frame(f) {
            Some(info) if info.phase == self.phase && info.dst == self.macs[j] => {
                self.delivered += 1
            }
            Some(info)
                if info.phase == self.phase
                    && info.dst.is_multicast()
                    && info.src != self.macs[j]
                    && info.seq >= self.next_bcast[j] =>
            {
                self.next_bcast[j] = info.seq + 1;
                self.delivered += 1;
            }
            _ => self.stray += 1,
        }
    }
}

/// The ports plus the event machinery.
#[derive(Debug)]
pub struct Generator {
    /// Ports in order.
    pub ports: Vec<Port>,
    epoll: Epoll,
    events: Vec<EpollEvent>,
    rx: RecvBatch,
    tx: SendBatch,
}

fn interrupted(stop: &AtomicBool) -> Result<(), String> {
    if stop.load(Ordering::Relaxed) {
        Err("interrupted".into())
    } else {
        Ok(())
    }
}

impl Generator {
    /// Connects `n` ports to the switch at `ctl`.
    pub fn connect(
        ctl: &Path,
        tag: &str,
        n: usize,
        timeout: Duration,
    ) -> Result<Generator, String> {
        let ports = (0..n)
            .map(|i| Port::connect(ctl, tag, i, timeout))
            .collect::<Result<Vec<_>, _>>()?;
        Generator::new(ports)
    }

    /// `n` ports without a switch: port 2i sends straight to port 2i+1
    /// and back (an odd last port to itself). [`Generator::blast`] of the
    /// unicast pairs then shows what the generator itself can move: the
    /// ceiling of any switch's figure on this machine.
    pub fn direct(tag: &str, n: usize) -> Result<Generator, String> {
        let bound = (0..n)
            .map(|i| Port::bind(tag, i))
            .collect::<Result<Vec<_>, _>>()?;
        let mut ports = Vec::with_capacity(n);
        for (i, (sock, name)) in bound.into_iter().enumerate() {
            let partner = if i ^ 1 < n { i ^ 1 } else { i };
            let switch = SocketAddr::from_abstract_name(port_name(tag, partner))
                .map_err(|e| format!("port {partner}: abstract name: {e}"))?;
            ports.push(Port {
                mac: port_mac(i),
                sock,
                addr: SockAddrUn::abstract_name(&name),
                switch,
                switch_raw: SockAddrUn::abstract_name(&port_name(tag, partner)),
                ctl: None,
            });
        }
        Generator::new(ports)
    }

    fn new(ports: Vec<Port>) -> Result<Generator, String> {
        let epoll = Epoll::new(EpollCreateFlags::EPOLL_CLOEXEC)
            .map_err(|e| format!("epoll_create: {e}"))?;
        for (i, p) in ports.iter().enumerate() {
            epoll
                .add(
                    p.sock.as_fd(),
                    EpollEvent::new(EpollFlags::EPOLLIN, i as u64),
                )
                .map_err(|e| format!("epoll_ctl: {e}"))?;
        }
        let n = ports.len();
        Ok(Generator {
            ports,
            epoll,
            events: vec![EpollEvent::empty(); n.max(1)],
            rx: RecvBatch::new(64, MAX_FRAME_LEN),
            tx: SendBatch::new(64, MAX_FRAME_LEN),
        })
    }

    /// Waits up to `timeout` for readable ports and drains them; calls
    /// `on_frame(port, frame)` for each frame. Returns the number of
    /// frames.
    fn receive(
        &mut self,
        timeout: EpollTimeout,
        mut on_frame: impl FnMut(usize, &[u8]),
    ) -> Result<u64, String> {
        let n = match self.epoll.wait(&mut self.events, timeout) {
            Ok(n) => n,
            Err(Errno::EINTR) => 0,
            Err(e) => return Err(format!("epoll_wait: {e}")),
        };
        let mut total = 0u64;
        for ev in &self.events[..n] {
            let idx = ev.data() as usize;
            let Some(port) = self.ports.get(idx) else {
                continue;
            };
            loop {
                let k = self
                    .rx
                    .recv(port.sock.as_fd())
                    .map_err(|e| format!("port {idx}: recvmmsg: {e}"))?;
                for i in 0..k {
                    on_frame(idx, self.rx.frame(i));
                }
                total += k as u64;
                if k < self.rx.capacity() {
                    break;
                }
            }
        }
        Ok(total)
    }

    /// Learning: port after port sends one broadcast from its MAC; the
    /// next starts when all other ports have received it. A port whose
    /// broadcast is not everywhere within `timeout` is sent once more;
    /// if it is still missing somewhere, learning fails.
    pub fn learn(
        &mut self,
        frame_len: usize,
        timeout: Duration,
        stop: &AtomicBool,
    ) -> Result<(), String> {
        let n = self.ports.len();
        let macs: Vec<Mac> = self.ports.iter().map(|p| p.mac).collect();
        for i in 0..n {
            let frame = build_frame(frame_len, BROADCAST, macs[i], Phase::Learn, i as u64);
            let mut got = vec![false; n];
            got[i] = true;
            let mut missing = n - 1;
            let mut attempts = 0;
            while missing > 0 {
                interrupted(stop)?;
                if attempts == 2 {
                    let who: Vec<usize> = (0..n).filter(|&j| !got[j]).collect();
                    return Err(format!(
                        "learning: the broadcast of port {i} (MAC {}) reached only {} of {} other ports within 2 × {timeout:?}; missing at ports {}",
                        macs[i],
                        n - 1 - missing,
                        n - 1,
                        list(&who)
                    ));
                }
                attempts += 1;
                send_blocking(&self.ports[i], &frame, timeout)
                    .map_err(|e| format!("learning: port {i}: sendto: {e}"))?;
                let deadline = Instant::now() + timeout;
                while missing > 0 && Instant::now() < deadline {
                    interrupted(stop)?;
                    self.receive(EpollTimeout::from(10u16), |j, f| {
                        if let Some(info) = parse_frame(f) {
                            if info.phase == Phase::Learn as u8 && info.src == macs[i] && !got[j] {
                                got[j] = true;
                                missing -= 1;
                            }
                        }
                    })?;
                }
            }
        }
        Ok(())
    }

    /// Sends `flows` round-robin for `p.duration`, as fast as the switch
    /// accepts (or paced to `p.rate`), receiving everything that arrives;
    /// then drains until `p.quiet` passes without a frame (at most
    /// `p.max_drain`). A frame counts as delivered at port j when it is of
    /// this phase and addressed to j's MAC, or a broadcast not sent by j
    /// and not yet seen at j.
    pub fn blast(
        &mut self,
        flows: &mut [Flow],
        p: &BlastParams,
        stop: &AtomicBool,
    ) -> Result<BlastResult, String> {
        let mut r = BlastResult::default();
        let mut first_error: Option<String> = None;
        let mut seq = 0u64;
        let mut tally = Tally::new(&self.ports, p.phase);
        let start = Instant::now();
        let end = start + p.duration;
        let mut cursor = 0usize;
        // Between two looks at the receivers, no receiver may be sent more
        // than half its queue: the generator drains every receiver in
        // turn, and frames it could not drain in time would be counted
        // as loss of the switch.
        let half_queue = (p.recv_queue / 2).max(1);
        let burst = p.burst.clamp(1, half_queue);
        let fanout = p.fanout.max(1);
        let round_max = if fanout > 1 {
            p.round_max.min(half_queue as u64)
        } else {
            p.round_max
        };
        // (frames seen, frames sent) at the last EAGAIN.
        let mut anchor: Option<(u64, u64)> = None;
        if !flows.is_empty() {
            loop {
                let now = Instant::now();
                if now >= end {
                    break;
                }
                interrupted(stop)?;
                // How many frames the switch's input queue can take: after
                // an EAGAIN it was full, and since then it has taken at
                // least one frame per `fanout` deliveries seen (frames lost
                // in the switch make this an underestimate, never more).
                // Sending into a full queue costs the sender almost a whole
                // send (the kernel allocates and copies the frame before it
                // looks at the queue), so the generator avoids it.
                let room = match anchor {
                    Some((seen0, sent0)) if p.credit => {
                        ((tally.seen() - seen0) / fanout + p.slack).saturating_sub(r.sent - sent0)
                    }
                    _ => u64::MAX,
                };
                let paced = match p.rate {
                    Some(rate) => {
                        let due = (rate * now.duration_since(start).as_secs_f64()) as u64;
                        due.saturating_sub(r.sent + r.eagain + r.send_errors)
                            .min(4 * burst as u64)
                    }
                    None => u64::MAX,
                };
                let budget = room.min(paced).min(round_max.max(1));
                let mut sent_now = 0u64;
                if p.sendmmsg {
                    for _ in 0..flows.len() {
                        let k = budget.saturating_sub(sent_now).min(burst as u64);
                        if k == 0 {
                            break;
                        }
                        let flow = &mut flows[cursor];
                        let port = &self.ports[flow.from];
                        for i in 0..k {
                            set_seq(&mut flow.frame, seq + i);
                            self.tx.push(&flow.frame, &port.switch_raw, 0);
                        }
                        // A refused frame leaves a gap in the numbers.
                        seq += k;
                        let from = flow.from;
                        let f = self.tx.flush(port.sock.as_fd(), |fail| {
                            r.send_errors += 1;
                            first_error.get_or_insert_with(|| {
                                format!("port {from}: sendmmsg: {}", fail.error)
                            });
                        });
                        r.sent += f.sent as u64;
                        sent_now += f.sent as u64;
                        cursor = (cursor + 1) % flows.len();
                        if f.would_block > 0 {
                            r.eagain += f.would_block as u64;
                            anchor = Some((tally.seen(), r.sent));
                            break;
                        }
                    }
                } else {
                    'send: for _ in 0..flows.len() {
                        let flow = &mut flows[cursor];
                        let port = &self.ports[flow.from];
                        for _ in 0..burst {
                            if sent_now >= budget {
                                break 'send;
                            }
                            set_seq(&mut flow.frame, seq);
                            match port.send(&flow.frame) {
                                Ok(_) => {
                                    seq += 1;
                                    r.sent += 1;
                                    sent_now += 1;
                                }
                                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                                    r.eagain += 1;
                                    anchor = Some((tally.seen(), r.sent));
                                    break 'send;
                                }
                                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                                Err(e) => {
                                    r.send_errors += 1;
                                    first_error.get_or_insert_with(|| {
                                        format!("port {}: sendto: {e}", flow.from)
                                    });
                                    break;
                                }
                            }
                        }
                        cursor = (cursor + 1) % flows.len();
                    }
                }
                let mut got = self.receive(EpollTimeout::ZERO, |j, f| tally.count(j, f))?;
                if got == 0 && sent_now == 0 && !p.spin.is_zero() {
                    // Poll a little before sleeping: a sleeping receiver
                    // makes every send of the switch pay for a wake-up.
                    let spin_end = Instant::now() + p.spin;
                    while got == 0 && Instant::now() < spin_end {
                        got = self.receive(EpollTimeout::ZERO, |j, f| tally.count(j, f))?;
                    }
                }
                if got == 0 && sent_now == 0 {
                    // Nothing moved: sleep until a frame arrives (or 1 ms).
                    // Still nothing: the frames in flight were lost, so the
                    // room estimate is stale; the next send probes.
                    if self.receive(EpollTimeout::from(1u16), |j, f| tally.count(j, f))? == 0 {
                        anchor = None;
                    }
                }
                if r.send_errors > 1000 && r.sent == 0 {
                    break;
                }
            }
        }
        r.window = start.elapsed();
        let window_delivered = tally.delivered;
        let drain_end = Instant::now() + p.max_drain;
        let mut last = Instant::now();
        while Instant::now() < drain_end && last.elapsed() < p.quiet {
            interrupted(stop)?;
            let ms = p.quiet.as_millis().clamp(1, 100) as u16;
            if self.receive(EpollTimeout::from(ms), |j, f| tally.count(j, f))? > 0 {
                last = Instant::now();
            }
        }
        r.delivered_in_window = window_delivered;
        r.delivered = tally.delivered;
        r.stray = tally.stray;
        r.expected = r.sent * p.fanout;
        if let Some(e) = first_error {
            if r.sent == 0 {
                return Err(format!("every send failed: {e}"));
            }
        }
        Ok(r)
    }

    /// Round trips between ports `a` and `b`: a sends to b's MAC, b
    /// answers to a's MAC as soon as the frame arrives, one frame in
    /// flight. Runs for `duration` or `max` samples (after `warmup`
    /// discarded ones), whichever comes first. Receives block with
    /// `timeout`; a missing frame is counted as lost and the next round
    /// trip starts; `max_lost` losses end it with an error.
    #[allow(clippy::too_many_arguments)]
    pub fn ping_pong(
        &mut self,
        a: usize,
        b: usize,
        frame_len: usize,
        duration: Duration,
        max: usize,
        warmup: usize,
        timeout: Duration,
        max_lost: u64,
        stop: &AtomicBool,
    ) -> Result<PingPongResult, String> {
        let (ma, mb) = (self.ports[a].mac, self.ports[b].mac);
        for i in [a, b] {
            let s = &self.ports[i].sock;
            s.set_nonblocking(false)
                .and_then(|()| s.set_read_timeout(Some(timeout)))
                .and_then(|()| s.set_write_timeout(Some(timeout)))
                .map_err(|e| format!("port {i}: blocking mode: {e}"))?;
        }
        let mut to_b = build_frame(frame_len, mb, ma, Phase::PingPong, 0);
        let mut to_a = build_frame(frame_len, ma, mb, Phase::PingPong, 0);
        let mut buf = vec![0u8; MAX_FRAME_LEN];
        let mut res = PingPongResult::default();
        let start = Instant::now();
        let mut seq = 0u64;
        let result = loop {
            if res.rtt_ns.len() >= max || (start.elapsed() >= duration && seq as usize >= warmup) {
                break Ok(());
            }
            if let Err(e) = interrupted(stop) {
                break Err(e);
            }
            seq += 1;
            set_seq(&mut to_b, seq);
            set_seq(&mut to_a, seq);
            let t0 = Instant::now();
            let leg = |from: usize,
                       to: usize,
                       frame: &[u8],
                       want: Mac,
                       buf: &mut [u8],
                       stray: &mut u64| {
                self.ports[from]
                    .sock
                    .send_to_addr(frame, &self.ports[from].switch)
                    .map_err(|e| format!("ping-pong: port {from}: sendto: {e}"))?;
                wait_for(&self.ports[to].sock, buf, want, seq, stray)
                    .map_err(|e| format!("ping-pong: port {to}: recv: {e}"))
            };
            match leg(a, b, &to_b, mb, &mut buf, &mut res.stray) {
                Ok(true) => {}
                Ok(false) => {
                    res.lost += 1;
                    if res.lost >= max_lost {
                        break Err(format!(
                            "ping-pong: {} frames a→b lost (no frame within {timeout:?})",
                            res.lost
                        ));
                    }
                    continue;
                }
                Err(e) => break Err(e),
            }
            match leg(b, a, &to_a, ma, &mut buf, &mut res.stray) {
                Ok(true) => {}
                Ok(false) => {
                    res.lost += 1;
                    if res.lost >= max_lost {
                        break Err(format!(
                            "ping-pong: {} frames b→a lost (no frame within {timeout:?})",
                            res.lost
                        ));
                    }
                    continue;
                }
                Err(e) => break Err(e),
            }
            let ns = u64::try_from(t0.elapsed().as_nanos()).unwrap_or(u64::MAX);
            if seq as usize > warmup {
                res.rtt_ns.push(ns);
            }
        };
        for i in [a, b] {
            let _ = self.ports[i].sock.set_nonblocking(true);
        }
        result.map(|()| res)
    }

    /// Index of the first port whose control connection the switch closed.
    pub fn closed_port(&self) -> Option<usize> {
        self.ports.iter().position(Port::control_closed)
    }
}

/// Waits (blocking, with the socket's read timeout) for the ping-pong frame
/// `seq` addressed to `want`. `Ok(false)` on timeout.
fn wait_for(
    sock: &UnixDatagram,
    buf: &mut [u8],
    want: Mac,
    seq: u64,
    stray: &mut u64,
) -> io::Result<bool> {
    loop {
        match sock.recv(buf) {
            Ok(len) => match parse_frame(&buf[..len]) {
                Some(info)
                    if info.phase == Phase::PingPong as u8
                        && info.dst == want
                        && info.seq == seq =>
                {
                    return Ok(true)
                }
                _ => *stray += 1,
            },
            Err(e)
                if matches!(
                    e.kind(),
                    io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
                ) =>
            {
                return Ok(false)
            }
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
}

/// A send that retries a full queue for up to `timeout`.
fn send_blocking(port: &Port, frame: &[u8], timeout: Duration) -> io::Result<()> {
    let deadline = Instant::now() + timeout;
    loop {
        match port.send(frame) {
            Ok(_) => return Ok(()),
            Err(e) if e.kind() == io::ErrorKind::WouldBlock && Instant::now() < deadline => {
                std::thread::sleep(Duration::from_micros(200));
            }
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
}

fn list(v: &[usize]) -> String {
    let mut s: Vec<String> = v.iter().take(10).map(usize::to_string).collect();
    if v.len() > 10 {
        s.push(format!("… ({} in all)", v.len()));
    }
    s.join(", ")
}

/// CPU time (user + system) of process `pid` (`None`: this process) in
/// clock ticks, from `/proc/<pid>/stat`.
pub fn cpu_ticks(pid: Option<u32>) -> Option<u64> {
    let path = match pid {
        Some(p) => format!("/proc/{p}/stat"),
        None => "/proc/self/stat".to_string(),
    };
    let text = std::fs::read_to_string(path).ok()?;
    // Fields after the command name (which may contain spaces): state is
    // field 3, utime 14, stime 15.
    let rest = &text[text.rfind(')')? + 1..];
    let f: Vec<&str> = rest.split_whitespace().collect();
    let utime: u64 = f.get(11)?.parse().ok()?;
    let stime: u64 = f.get(12)?.parse().ok()?;
    Some(utime + stime)
}

/// Busy CPU time of the whole machine (all CPUs, everything but idle and
/// iowait) in clock ticks, from `/proc/stat`.
pub fn system_busy_ticks() -> Option<u64> {
    let text = std::fs::read_to_string("/proc/stat").ok()?;
    let line = text.lines().find(|l| l.starts_with("cpu "))?;
    let v: Vec<u64> = line
        .split_whitespace()
        .skip(1)
        .map(|x| x.parse().ok())
        .collect::<Option<Vec<u64>>>()?;
    // user nice system idle iowait irq softirq steal (guest is in user).
    let get = |i: usize| v.get(i).copied().unwrap_or(0);
    Some(get(0) + get(1) + get(2) + get(5) + get(6) + get(7))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frames_round_trip() {
        let f = build_frame(64, port_mac(1), port_mac(0), Phase::Unicast, 7);
        assert_eq!(f.len(), 64);
        let info = parse_frame(&f).unwrap();
        assert_eq!(info.dst, port_mac(1));
        assert_eq!(info.src, port_mac(0));
        assert_eq!(info.phase, Phase::Unicast as u8);
        assert_eq!(info.seq, 7);
        let mut g = f.clone();
        set_seq(&mut g, 1 << 40);
        assert_eq!(parse_frame(&g).unwrap().seq, 1 << 40);
        assert_eq!(
            build_frame(3, BROADCAST, port_mac(0), Phase::Learn, 0).len(),
            MIN_FRAME_LEN
        );
        assert_eq!(parse_frame(&f[..20]), None);
        let mut foreign = f.clone();
        foreign[12] = 0x08;
        assert_eq!(parse_frame(&foreign), None);
    }

    #[test]
    fn macs_and_names() {
        assert_eq!(port_mac(0).to_string(), "02:42:00:00:00:01");
        assert_eq!(port_mac(299).to_string(), "02:42:00:00:01:2c");
        assert!(!port_mac(63).is_multicast());
        let name = port_name("1234-5", 63);
        assert_eq!(name.len(), 107);
        assert!(name.starts_with(b"uml-bench-switch/1234-5/63\0"));
        assert_eq!(name[106], b'~');
        let addr = SockAddrUn::abstract_name(&name);
        assert_eq!(&addr.0[3..], &name[..]);
    }

    #[test]
    fn reply_addresses() {
        let mut reply = [0u8; SOCKADDR_UN_LEN];
        reply[0] = 1;
        reply[3] = 0x7f;
        reply[6..10].copy_from_slice(&968u32.to_le_bytes());
        let a = reply_address(&reply).unwrap();
        assert_eq!(a.as_abstract_name().unwrap(), &reply[3..]);
        let mut path = [0u8; SOCKADDR_UN_LEN];
        path[0] = 1;
        path[2..15].copy_from_slice(b"/tmp/uml.data");
        let p = reply_address(&path).unwrap();
        assert_eq!(p.as_pathname(), Some(Path::new("/tmp/uml.data")));
        path[0] = 2;
        assert!(reply_address(&path).is_err());
    }

    #[test]
    fn blast_result_figures() {
        let r = BlastResult {
            sent: 1000,
            eagain: 1000,
            expected: 3000,
            delivered: 2970,
            delivered_in_window: 2000,
            window: Duration::from_secs(2),
            ..BlastResult::default()
        };
        assert_eq!(r.lost(), 30);
        assert!((r.loss_pct() - 1.0).abs() < 1e-9);
        assert!((r.eagain_pct() - 50.0).abs() < 1e-9);
        assert!((r.rate() - 1000.0).abs() < 1e-9);
    }
}
