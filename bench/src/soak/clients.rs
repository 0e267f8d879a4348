//! The clients of `soak-switch`: a steady pair moving tagged frames
//! ([`crate::switchload::Port`], the load generator's ports), and churning
//! ones built from the tests' fake clients
//! ([`uml_integration_tests::switch_client`]): daemon ports (v1, v3 and
//! short v3 requests), bess connections, vde clients (vdeplug4's request
//! with a description tail), MAC floods, stalled receivers, and hostile
//! requests on the control, bess, management and data sockets.
//!
//! Every worker runs until [`Shared::stop`] is set, counts what it did in
//! [`Shared`] and records the first errors; each wait is bounded (the fake
//! clients' sockets carry timeouts).

use std::io::{self, Read, Write};
use std::os::unix::net::{UnixDatagram, UnixStream};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use uml_common::testrng::SplitMix64;
use uml_integration_tests::switch_client::{
    abstract_sockaddr, connect_control, frame, read_control_until_closed, request_versioned,
    BessClient, FakePort, FakeVde, VdeRequest, Version, BROADCAST, WAIT,
};

use crate::switchload::{build_frame, parse_frame, Phase, Port};

/// Counters and the stop flag shared by the workers.
#[derive(Debug, Default)]
pub struct Shared {
    /// Set to end every worker.
    pub stop: AtomicBool,
    /// Frames the steady pair sent.
    pub steady_sent: AtomicU64,
    /// Frames of the steady pair received where they should be.
    pub steady_received: AtomicU64,
    /// Churning clients connected so far.
    pub clients: AtomicU64,
    /// Hostile requests made.
    pub hostile: AtomicU64,
    /// Frames with random source MACs sent.
    pub flood_frames: AtomicU64,
    /// Errors seen.
    pub errors: AtomicU64,
    /// The first errors (at most 20).
    pub first_errors: Mutex<Vec<String>>,
}

impl Shared {
    /// Whether the workers should end.
    pub fn stopping(&self) -> bool {
        self.stop.load(Ordering::Relaxed)
    }

    /// Records an error of `who`.
    pub fn error(&self, who: &str, e: impl std::fmt::Display) {
        self.errors.fetch_add(1, Ordering::Relaxed);
        if let Ok(mut v) = self.first_errors.lock() {
            if v.len() < 20 {
                v.push(format!("{who}: {e}"));
            }
        }
    }

    /// Sleeps `d` in short steps, returning early when stopping.
    pub fn nap(&self, d: Duration) {
        let end = Instant::now() + d;
        while !self.stopping() {
            let left = end.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return;
            }
            std::thread::sleep(left.min(Duration::from_millis(50)));
        }
    }
}

/// Where the switch listens.
#[derive(Debug, Clone)]
pub struct Sockets {
    /// The daemon (and vde) control socket.
    pub ctl: PathBuf,
    /// The `--bess` socket.
    pub bess: PathBuf,
    /// The `--mgmt` socket.
    pub mgmt: PathBuf,
}

/// How much churn.
#[derive(Debug, Clone, Copy)]
pub struct Load {
    /// Daemon clients connected at once per round.
    pub daemon: usize,
    /// Bess clients per round.
    pub bess: usize,
    /// vde clients per round.
    pub vde: usize,
    /// Random source MACs per flood.
    pub flood_macs: usize,
    /// Stalled receivers per round.
    pub stalled: usize,
    /// Frames/s of the steady pair (both directions together).
    pub rate: u64,
}

/// A locally administered unicast MAC from `rng`.
fn random_mac(rng: &mut SplitMix64) -> [u8; 6] {
    let b = rng.next_u64().to_le_bytes();
    [(b[0] & 0xfc) | 0x02, b[1], b[2], b[3], b[4], b[5]]
}

// ---------------------------------------------------------------------------
// The steady pair
// ---------------------------------------------------------------------------

/// Connects the steady pair (ports 0 and 1 of the load generator's naming).
///
/// # Errors
///
/// When a port cannot register.
pub fn steady_pair(ctl: &Path, tag: &str) -> Result<[Port; 2], String> {
    Ok([
        Port::connect(ctl, tag, 0, WAIT)?,
        Port::connect(ctl, tag, 1, WAIT)?,
    ])
}

/// Moves tagged unicast frames both ways between the pair at `rate`
/// frames/s until stopped; returns the pair (still registered).
pub fn steady(shared: &Shared, pair: [Port; 2], rate: u64) -> [Port; 2] {
    let step = Duration::from_millis(10);
    let per_step = (rate / 100).max(2);
    let mut seq = 0u64;
    let mut buf = vec![0u8; 2048];
    let mut next = Instant::now();
    while !shared.stopping() {
        for i in 0..per_step {
            let (from, to) = if i % 2 == 0 { (0, 1) } else { (1, 0) };
            let f = build_frame(64, pair[to].mac, pair[from].mac, Phase::Unicast, seq);
            match pair[from].send(&f) {
                Ok(_) => {
                    seq += 1;
                    shared.steady_sent.fetch_add(1, Ordering::Relaxed);
                }
                // A full switch input queue: not sent, not an error.
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
                Err(e) => shared.error("steady pair send", e),
            }
        }
        receive(shared, &pair, &mut buf);
        next += step;
        let now = Instant::now();
        if next > now {
            std::thread::sleep(next - now);
        } else {
            next = now;
        }
    }
    // Drain what is still on its way.
    let end = Instant::now() + Duration::from_millis(500);
    while Instant::now() < end {
        receive(shared, &pair, &mut buf);
        std::thread::sleep(Duration::from_millis(20));
    }
    pair
}

/// Counts the pair's frames that arrived at the right port.
fn receive(shared: &Shared, pair: &[Port; 2], buf: &mut [u8]) {
    for p in pair {
        loop {
            match p.sock.recv(buf) {
                Ok(n) => {
                    if let Some(info) = parse_frame(&buf[..n]) {
                        if info.dst == p.mac && info.phase == Phase::Unicast as u8 {
                            shared.steady_received.fetch_add(1, Ordering::Relaxed);
                        }
                    }
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => {
                    shared.error("steady pair recv", e);
                    break;
                }
            }
        }
    }
}

// ---------------------------------------------------------------------------
// Churn
// ---------------------------------------------------------------------------

/// Daemon clients: rounds of `n` ports (v3, short v3 and v1 requests in
/// turn) that each send a broadcast from a fresh MAC, read what came for a
/// moment (half of them) and leave.
pub fn daemon_churn(shared: &Shared, ctl: &Path, n: usize, seed: u64) {
    let mut rng = SplitMix64::new(seed);
    let versions = [Version::V3, Version::V3Short, Version::V1];
    while !shared.stopping() {
        let mut ports = Vec::with_capacity(n);
        for i in 0..n {
            if shared.stopping() {
                break;
            }
            match FakePort::register(ctl, versions[i % versions.len()]) {
                Ok(p) => {
                    shared.clients.fetch_add(1, Ordering::Relaxed);
                    let f = frame(BROADCAST, random_mac(&mut rng), b"soak daemon client");
                    if let Err(e) = p.try_send(&f) {
                        shared.error("daemon client send", e);
                    }
                    ports.push(p);
                }
                Err(e) => shared.error("daemon client register", e),
            }
        }
        shared.nap(Duration::from_millis(200 + rng.below(800)));
        for p in ports.iter().step_by(2) {
            let _ = p.drain(Duration::from_millis(1));
        }
        drop(ports);
        shared.nap(Duration::from_millis(100));
    }
}

/// Bess clients: rounds of `n` connections that send a frame each and
/// leave.
pub fn bess_churn(shared: &Shared, bess: &Path, n: usize, seed: u64) {
    let mut rng = SplitMix64::new(seed);
    while !shared.stopping() {
        let mut clients = Vec::with_capacity(n);
        for _ in 0..n {
            if shared.stopping() {
                break;
            }
            match BessClient::connect(bess) {
                Ok(c) => {
                    shared.clients.fetch_add(1, Ordering::Relaxed);
                    let f = frame(BROADCAST, random_mac(&mut rng), b"soak bess client");
                    if let Err(e) = c.try_send(&f) {
                        shared.error("bess client send", e);
                    }
                    clients.push(c);
                }
                Err(e) => shared.error("bess client connect", e),
            }
        }
        shared.nap(Duration::from_millis(200 + rng.below(800)));
        for c in clients.iter().step_by(2) {
            let _ = c.drain(Duration::from_millis(1));
        }
        drop(clients);
        shared.nap(Duration::from_millis(100));
    }
}

/// vde clients: rounds of `n` vdeplug4-style registrations (a description
/// tail after the request), a frame each, then leave.
pub fn vde_churn(shared: &Shared, ctl: &Path, n: usize, seed: u64) {
    let mut rng = SplitMix64::new(seed);
    let descr = format!("soak-switch user=root pid={}", std::process::id());
    let req = VdeRequest {
        description: descr.as_bytes(),
        splits: &[],
        kind: 0,
    };
    while !shared.stopping() {
        let mut clients = Vec::with_capacity(n);
        for _ in 0..n {
            if shared.stopping() {
                break;
            }
            match FakeVde::register(ctl, &req) {
                Ok(c) => {
                    shared.clients.fetch_add(1, Ordering::Relaxed);
                    let f = frame(BROADCAST, random_mac(&mut rng), b"soak vde client");
                    if let Err(e) = c.try_send(&f) {
                        shared.error("vde client send", e);
                    }
                    clients.push(c);
                }
                Err(e) => shared.error("vde client register", e),
            }
        }
        shared.nap(Duration::from_millis(200 + rng.below(800)));
        for c in clients.iter().step_by(2) {
            let _ = c.drain(Duration::from_millis(1));
        }
        drop(clients);
        shared.nap(Duration::from_millis(100));
    }
}

/// MAC floods: a daemon port sends `macs` frames from random source MACs
/// to random unknown unicast MACs (flooded to every port) over about a
/// second, stays a moment and leaves (its MACs are purged).
pub fn flood(shared: &Shared, ctl: &Path, macs: usize, seed: u64) {
    let mut rng = SplitMix64::new(seed);
    while !shared.stopping() {
        let port = match FakePort::register(ctl, Version::V3) {
            Ok(p) => p,
            Err(e) => {
                shared.error("flood client register", e);
                shared.nap(Duration::from_secs(1));
                continue;
            }
        };
        shared.clients.fetch_add(1, Ordering::Relaxed);
        let start = Instant::now();
        for i in 0..macs {
            if shared.stopping() {
                break;
            }
            let f = frame(random_mac(&mut rng), random_mac(&mut rng), b"soak flood");
            match port.try_send(&f) {
                Ok(()) => {
                    shared.flood_frames.fetch_add(1, Ordering::Relaxed);
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
                Err(e) => {
                    shared.error("flood send", e);
                    break;
                }
            }
            // About `macs` frames per second.
            if i % 50 == 49 {
                let due = start + Duration::from_secs_f64((i + 1) as f64 / macs.max(1) as f64);
                let now = Instant::now();
                if due > now {
                    std::thread::sleep(due - now);
                }
            }
        }
        shared.nap(Duration::from_millis(500));
        drop(port);
        shared.nap(Duration::from_millis(500));
    }
}

/// Receivers that never read: held by the caller for the whole run.
#[derive(Debug)]
pub struct Stalled {
    _daemon: Vec<FakePort>,
    _bess: Vec<BessClient>,
    _vde: Vec<FakeVde>,
}

/// `n` daemon, bess and vde clients each that register and never read
/// (frames flooded to them fill their queues and the switch's backlog).
///
/// # Errors
///
/// When one cannot register.
pub fn stalled(s: &Sockets, n: usize) -> Result<Stalled, String> {
    let vde_req = VdeRequest {
        description: b"soak-switch stalled",
        splits: &[],
        kind: 0,
    };
    Ok(Stalled {
        _daemon: (0..n)
            .map(|_| FakePort::register(&s.ctl, Version::V3))
            .collect::<Result<_, _>>()?,
        _bess: (0..n)
            .map(|_| BessClient::connect(&s.bess))
            .collect::<Result<_, _>>()?,
        _vde: (0..n)
            .map(|_| FakeVde::register(&s.ctl, &vde_req))
            .collect::<Result<_, _>>()?,
    })
}

/// Stalled receivers that come and go: rounds of `n` daemon and bess
/// clients that announce a MAC, never read for 5 s (their queues fill)
/// and leave (the switch frees their backlog).
pub fn stalled_churn(shared: &Shared, s: &Sockets, n: usize, seed: u64) {
    let mut rng = SplitMix64::new(seed);
    while !shared.stopping() {
        let mut daemon = Vec::new();
        let mut bess = Vec::new();
        for _ in 0..n {
            match FakePort::register(&s.ctl, Version::V3) {
                Ok(p) => {
                    let _ = p.try_send(&frame(BROADCAST, random_mac(&mut rng), b"stalled"));
                    daemon.push(p);
                }
                Err(e) => shared.error("stalled daemon register", e),
            }
            match BessClient::connect(&s.bess) {
                Ok(c) => {
                    let _ = c.try_send(&frame(BROADCAST, random_mac(&mut rng), b"stalled"));
                    bess.push(c);
                }
                Err(e) => shared.error("stalled bess connect", e),
            }
        }
        shared
            .clients
            .fetch_add((daemon.len() + bess.len()) as u64, Ordering::Relaxed);
        shared.nap(Duration::from_secs(5));
        drop(daemon);
        drop(bess);
        shared.nap(Duration::from_millis(200));
    }
}

// ---------------------------------------------------------------------------
// Hostile clients
// ---------------------------------------------------------------------------

/// Writes `bytes` on a new control connection and checks that the switch
/// closes it (a malformed request ends only its connection).
fn hostile_control(shared: &Shared, ctl: &Path, what: &str, bytes: &[u8]) {
    shared.hostile.fetch_add(1, Ordering::Relaxed);
    let mut c = match connect_control(ctl, WAIT) {
        Ok(c) => c,
        Err(e) => return shared.error(what, e),
    };
    // The switch may close before everything is written (EPIPE, reset).
    let _ = c.write_all(bytes);
    let (_, how) = read_control_until_closed(&mut c, WAIT);
    if !how.closed() {
        shared.error(
            what,
            format!("the switch did not close the connection ({how:?})"),
        );
    }
}

/// One round of hostile requests.
fn hostile_round(
    shared: &Shared,
    s: &Sockets,
    data_to: Option<&std::os::unix::net::SocketAddr>,
    rng: &mut SplitMix64,
) {
    let addr = abstract_sockaddr(format!("soak-hostile-{}", rng.next_u64()).as_bytes());
    // Bad magic and random bytes.
    let n = 1 + rng.below(300) as usize;
    let mut bad = rng.bytes(n);
    bad.splice(0..0, [0xde, 0xad, 0xbe, 0xef]);
    hostile_control(shared, &s.ctl, "hostile: bad magic", &bad);
    // Version 2, and versions above 3.
    hostile_control(
        shared,
        &s.ctl,
        "hostile: v2",
        &request_versioned(2, 0, &addr),
    );
    hostile_control(
        shared,
        &s.ctl,
        "hostile: v9",
        &request_versioned(9, 0, &addr),
    );
    // An unknown request type.
    hostile_control(
        shared,
        &s.ctl,
        "hostile: type 7",
        &request_versioned(3, 7, &addr),
    );
    // A vde description longer than vdeplug4's 128 bytes.
    let mut long = request_versioned(3, 0, &addr);
    long.truncate(122);
    long.extend(std::iter::repeat(b'd').take(300));
    hostile_control(shared, &s.ctl, "hostile: long description", &long);
    // Half a request, then gone.
    shared.hostile.fetch_add(1, Ordering::Relaxed);
    if let Ok(mut c) = connect_control(&s.ctl, WAIT) {
        let _ = c.write_all(&request_versioned(3, 0, &addr)[..40]);
    }
    // Bytes on a registered control connection end that port (a v1 one:
    // after a v3 request the switch ignores a description tail for a
    // second, as vdeplug4 sends one).
    shared.hostile.fetch_add(1, Ordering::Relaxed);
    match FakePort::register(&s.ctl, Version::V1) {
        Ok(mut p) => {
            let _ = p.control().write_all(b"garbage after registration");
            let (_, how) = read_control_until_closed(p.control(), WAIT);
            if !how.closed() {
                shared.error(
                    "hostile: bytes after registration",
                    format!("not closed ({how:?})"),
                );
            }
        }
        Err(e) => shared.error("hostile: register", e),
    }
    // Garbage on a bess connection: empty, runt, oversized, random.
    shared.hostile.fetch_add(1, Ordering::Relaxed);
    match BessClient::connect(&s.bess) {
        Ok(c) => {
            let n = 14 + rng.below(100) as usize;
            let random = rng.bytes(n);
            for m in [
                &[][..],
                &[1, 2, 3, 4, 5][..],
                &vec![0x55; 9000][..],
                &random[..],
            ] {
                // EMSGSIZE for the largest is fine: what counts is that the
                // switch stays up.
                let _ = c.try_send(m);
            }
        }
        Err(e) => shared.error("hostile: bess connect", e),
    }
    // Garbage on the management socket: not UTF-8, an unknown command, a
    // line longer than 4096 bytes.
    shared.hostile.fetch_add(1, Ordering::Relaxed);
    hostile_mgmt(shared, &s.mgmt, rng);
    // Datagrams to the data socket from a socket that is no port.
    if let Some(to) = data_to {
        shared.hostile.fetch_add(1, Ordering::Relaxed);
        if let Ok(u) = UnixDatagram::unbound() {
            let _ = u.set_nonblocking(true);
            let _ = u.send_to_addr(&rng.bytes(60), to);
            let _ = u.send_to_addr(&[], to);
        }
    }
}

/// Garbage on the management socket: every bad line gets `error: …`; the
/// over-long one also closes the connection.
fn hostile_mgmt(shared: &Shared, mgmt: &Path, rng: &mut SplitMix64) {
    let mut c = match UnixStream::connect(mgmt) {
        Ok(c) => c,
        Err(e) => return shared.error("hostile: mgmt connect", e),
    };
    let _ = c.set_read_timeout(Some(WAIT));
    let _ = c.set_write_timeout(Some(WAIT));
    let mut junk = rng.bytes(40);
    junk.retain(|&b| b != b'\n');
    junk.extend_from_slice(b"\xff\xfe\n");
    let _ = c.write_all(&junk);
    let _ = c.write_all(b"json no-such-command\n");
    let _ = c.write_all(&[b'x'; 5000]);
    let _ = c.write_all(b"\n");
    // Read until the switch closes (after the over-long line).
    let mut got = Vec::new();
    let mut buf = [0u8; 4096];
    let end = Instant::now() + WAIT;
    loop {
        match c.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => got.extend_from_slice(&buf[..n]),
            Err(e) if e.kind() == io::ErrorKind::ConnectionReset => break,
            Err(e) => {
                shared.error("hostile: mgmt read", e);
                return;
            }
        }
        if Instant::now() > end {
            shared.error(
                "hostile: mgmt",
                "the switch did not close an over-long line",
            );
            return;
        }
    }
    let text = String::from_utf8_lossy(&got);
    if text.matches("error").count() < 3 {
        shared.error("hostile: mgmt", format!("expected 3 errors, got {text:?}"));
    }
}

/// Hostile requests, a round every second.
pub fn hostile(
    shared: &Shared,
    s: &Sockets,
    data_to: Option<std::os::unix::net::SocketAddr>,
    seed: u64,
) {
    let mut rng = SplitMix64::new(seed);
    while !shared.stopping() {
        hostile_round(shared, s, data_to.as_ref(), &mut rng);
        shared.nap(Duration::from_secs(1));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn random_macs_are_local_unicast() {
        let mut rng = SplitMix64::new(1);
        for _ in 0..100 {
            let m = random_mac(&mut rng);
            assert_eq!(m[0] & 0x03, 0x02, "{m:02x?}");
        }
    }

    #[test]
    fn errors_are_counted_and_the_first_kept() {
        let s = Shared::default();
        for i in 0..25 {
            s.error("w", i);
        }
        assert_eq!(s.errors.load(Ordering::Relaxed), 25);
        let v = s.first_errors.lock().map(|v| v.clone()).unwrap_or_default();
        assert_eq!(v.len(), 20);
        assert_eq!(v[0], "w: 0");
        s.stop.store(true, Ordering::Relaxed);
        let t = Instant::now();
        s.nap(Duration::from_secs(5));
        assert!(t.elapsed() < Duration::from_secs(1));
    }
}
