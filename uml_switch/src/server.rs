//! The event loop. Every descriptor belongs to a port kind
//! (`port/`), except the signalfd, stdin and the management socket
//! (`mgmt.rs`, answered from the tables here). A readiness event goes to
//! its endpoint, which receives a batch of frames into the shared inbox;
//! each frame then goes through the forwarding core ([`Forwarder`]) to the
//! endpoints of its destination ports, which send their batches once per
//! received batch. Nothing allocates or prints per frame.

use std::fs::File;
use std::io::{self, Read};
use std::os::fd::AsFd;
use std::rc::Rc;
use std::time::{Duration, Instant};

use nix::sys::epoll::{Epoll, EpollEvent, EpollFlags, EpollTimeout};
use uml_common::cli::strerror;
use uml_common::switch::{Mac, ETH_HEADER_LEN, MAX_FRAME_LEN};

use crate::capture::{Capture, Filter};
use crate::cli::Options;
use crate::core::{Event, Forwarder, PortId, Verdict, DEFAULT_TABLE_CAP};
use crate::mgmt::Mgmt;
use crate::output::{err, out};
use crate::port::{self, tunnel, HostFwdRequest, PortSpec};
use crate::port::{split_token, Ctx, Endpoint, EndpointId, Inbox, PortTable, Ready, Stats, BATCH};
use crate::setup::setup;
use crate::signals;
use crate::Error;
use uml_common::mgmt as mgmt_proto;
use uml_common::tunnel_opts::TunnelKind;
use uml_common::vlan;

/// MAC aging period (C: 2 s).
const AGING_PERIOD: Duration = Duration::from_secs(2);
/// Most batches taken from one endpoint per event, so that the others are
/// not starved.
const ROUNDS: usize = 16;

const TOKEN_STDIN: u64 = 1;
const TOKEN_SIGNAL: u64 = 2;

/// What ended the main loop.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Exit {
    /// Exit with this status.
    Status(i32),
    /// Die by this signal after cleanup.
    Signal(i32),
}

/// The running switch.
pub struct Switch {
    prog: String,
    epoll: Rc<Epoll>,
    signals: File,
    endpoints: Vec<Box<dyn Endpoint>>,
    /// Endpoints with frames queued since the last flush.
    dirty: Vec<EndpointId>,
    is_dirty: Vec<bool>,
    ports: PortTable,
    forwarder: Forwarder,
    inbox: Inbox,
    /// The longest frame forwarded (the inbox's buffer length).
    max_frame: usize,
    /// Per endpoint: the longest frame its ports take.
    limits: Vec<usize>,
    stats: Stats,
    start: Instant,
    now_secs: u32,
    last_unknown_notice: Option<(Instant, [u8; 6])>,
    next_aging: Instant,
    /// The management socket (`--mgmt`).
    mgmt: Option<Mgmt>,
    /// Room for a frame whose VLAN tag is added or removed on its way out.
    vlan_buf: Vec<u8>,
    /// The capture in progress (`--pcap`, `capture start`).
    capture: Option<Capture>,
    /// Running under the seccomp allow-list (`seccomp.rs`): no program
    /// can be started, so `port add pcap` (a helper program) is refused.
    confined: bool,
}

impl std::fmt::Debug for Switch {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Switch({} ports)", self.ports.count())
    }
}

/// How the event loop forwards, besides its descriptors.
#[derive(Debug, Clone, Copy)]
pub struct Forwarding {
    /// A hub (`-hub`) instead of a learning switch.
    pub hub: bool,
    /// The longest frame forwarded (at least 1514).
    pub max_frame: usize,
    /// Stdin is a terminal: end at its end of file (as C).
    pub watch_stdin: bool,
}

impl Switch {
    /// The event loop over `endpoints` (registered here), the signalfd
    /// `signals`, the management socket and stdin when `forwarding` says
    /// so.
    pub fn new(
        prog: &str,
        forwarding: Forwarding,
        epoll: Epoll,
        signals: File,
        endpoints: Vec<Box<dyn Endpoint>>,
        mgmt: Option<Mgmt>,
    ) -> Result<Switch, Error> {
        let Forwarding {
            hub,
            max_frame,
            watch_stdin,
        } = forwarding;
        let now = Instant::now();
        let n = endpoints.len();
        let max_frame = max_frame.max(MAX_FRAME_LEN);
        let limits = endpoints
            .iter()
            .map(|e| e.frame_limit(max_frame).min(max_frame))
            .collect();
        let mut sw = Switch {
            prog: prog.to_string(),
            epoll: Rc::new(epoll),
            signals,
            endpoints,
            dirty: Vec::with_capacity(n),
            is_dirty: vec![false; n],
            ports: PortTable::default(),
            forwarder: Forwarder::new(hub, DEFAULT_TABLE_CAP),
            inbox: Inbox::new(BATCH, max_frame),
            max_frame,
            limits,
            stats: Stats::default(),
            start: now,
            now_secs: 0,
            last_unknown_notice: None,
            next_aging: now + AGING_PERIOD,
            mgmt,
            vlan_buf: Vec::with_capacity(max_frame + vlan::TAG_LEN),
            capture: None,
            confined: false,
        };
        let ev = |t| EpollEvent::new(EpollFlags::EPOLLIN, t);
        let mut failure = sw
            .epoll
            .add(&sw.signals, ev(TOKEN_SIGNAL))
            .err()
            .map(io::Error::from);
        for id in 0..n {
            if failure.is_some() {
                break;
            }
            let Switch {
                prog,
                epoll,
                endpoints,
                ports,
                forwarder,
                stats,
                max_frame,
                ..
            } = &mut sw;
            let mut ctx = Ctx {
                prog,
                epoll,
                endpoint: id as EndpointId,
                ports,
                macs: &mut forwarder.table,
                stats,
                max_frame: *max_frame,
            };
            failure = endpoints[id].register(&mut ctx).err();
        }
        if failure.is_none() {
            if let Some(m) = &sw.mgmt {
                failure = m.register(&sw.epoll).err();
            }
        }
        if let Some(e) = failure {
            for endpoint in &mut sw.endpoints {
                endpoint.discard();
            }
            if let Some(m) = &mut sw.mgmt {
                m.cleanup();
            }
            return Err(Error::Epoll(e));
        }
        if watch_stdin {
            let stdin = io::stdin();
            let _ = sw.epoll.add(stdin.as_fd(), ev(TOKEN_STDIN));
        }
        Ok(sw)
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
                let flags = ev.events();
                match ev.data() {
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
                    token if Mgmt::owns(token) => self.handle_mgmt(token, flags),
                    token => {
                        if let Some((ep, sub)) = split_token(token) {
                            self.dispatch(ep, sub, flags);
                        }
                    }
                }
            }
            self.housekeeping();
        }
    }

    /// An endpoint's descriptor is ready: let it work, and forward and
    /// flush each batch it receives.
    fn dispatch(&mut self, ep: EndpointId, sub: u32, flags: EpollFlags) {
        for _ in 0..ROUNDS {
            self.inbox.frames.clear();
            let Switch {
                prog,
                epoll,
                endpoints,
                ports,
                forwarder,
                stats,
                inbox,
                max_frame,
                ..
            } = self;
            let Some(endpoint) = endpoints.get_mut(ep as usize) else {
                return;
            };
            let mut ctx = Ctx {
                prog,
                epoll,
                endpoint: ep,
                ports,
                macs: &mut forwarder.table,
                stats,
                max_frame: *max_frame,
            };
            let ready = endpoint.ready(sub, flags, &mut ctx, inbox);
            if !self.inbox.frames.is_empty() {
                self.forward_batch();
                self.flush();
            }
            if ready == Ready::Done {
                return;
            }
        }
    }

    /// Forwards every frame of the inbox.
    fn forward_batch(&mut self) {
        let Switch {
            endpoints,
            dirty,
            is_dirty,
            ports,
            forwarder,
            inbox,
            stats,
            now_secs,
            last_unknown_notice,
            limits,
            vlan_buf,
            capture,
            prog,
            ..
        } = self;
        for &received in &inbox.frames {
            let from = received.port;
            if ports.endpoint(from).is_none() {
                // Never learn on a port that is gone (endpoints do not
                // remove a port with frames in the batch; a safeguard).
                continue;
            }
            let frame = inbox.bytes(received);
            ports.count_in(from, frame.len());
            if ports.is_mirror(from) {
                // A mirror port listens only.
                continue;
            }
            // With VLANs: the frame's VLAN on its port (else the default
            // VLAN, tags untouched).
            let class = if ports.vlans_in_use() {
                ports.vlans(from).classify(frame)
            } else {
                vlan::Classified {
                    vlan: 0,
                    tagged: false,
                }
            };
            let mut table_full = 0u64;
            let mut unknown: Option<[u8; 6]> = None;
            let verdict = forwarder.forward(from, class.vlan, frame, *now_secs, |ev| match ev {
                Event::Learned { mac, port, old, .. } => {
                    let mut line =
                        format!(" Addr: {mac} New port {}", ports.label(port).unwrap_or(-1));
                    if let Some(o) = old.and_then(|o| ports.label(o)) {
                        line.push_str(&format!(" old port {o}"));
                    }
                    line.push('\n');
                    out(&line);
                }
                Event::Unknown { src } => unknown = Some(src.0),
                Event::TableFull => table_full += 1,
            });
            stats.table_full += table_full;
            if let Some(src) = unknown {
                unknown_notice(last_unknown_notice, ports, src, from);
            }
            if let Some(c) = capture {
                let wanted = match c.filter() {
                    Filter::All => true,
                    Filter::Vlan(v) => class.vlan == v,
                    Filter::Port(p, _) => {
                        from == p
                            || match verdict {
                                Verdict::To(t) => t == p,
                                Verdict::Flood => {
                                    ports.endpoint(p).is_some()
                                        && ports.vlans(p).egress(class.vlan)
                                            != vlan::Egress::NotMember
                                }
                                Verdict::Drop => false,
                            }
                    }
                };
                if wanted {
                    if let Some(why) = c.write(frame) {
                        err(&format!("{prog}: capture ended: {why}\n"));
                        *capture = None;
                    }
                }
            }
            let id_limit = ports.id_limit();
            if matches!(verdict, Verdict::Drop) && frame.len() < ETH_HEADER_LEN {
                stats.short += 1;
            }
            let mut deliver = |ports: &mut PortTable, to: PortId, mirrored: bool| {
                let Some(ep) = ports.endpoint(to) else {
                    return;
                };
                if !mirrored && ports.is_mirror(to) {
                    return;
                }
                let frame = if ports.vlans_in_use() && !mirrored {
                    match ports.vlans(to).egress(class.vlan) {
                        vlan::Egress::NotMember => return,
                        egress => vlan::rewrite(frame, class, egress, vlan_buf),
                    }
                } else {
                    frame
                };
                if frame.len() > limits[ep as usize] {
                    // Not truncated: a cut frame is of no use to anyone.
                    stats.oversized += 1;
                    ports.count_oversized(to);
                    return;
                }
                ports.count_out(to, frame.len());
                endpoints[ep as usize].queue(to, frame, stats);
                if !is_dirty[ep as usize] {
                    is_dirty[ep as usize] = true;
                    dirty.push(ep);
                }
            };
            match verdict {
                Verdict::Drop => {}
                Verdict::To(to) => deliver(ports, to, false),
                Verdict::Flood => {
                    for id in 0..id_limit {
                        if id != from {
                            deliver(ports, id, false);
                        }
                    }
                }
            }
            // Mirror ports (uml_dump) get every frame, as received.
            for i in 0..ports.mirrors().len() {
                let m = ports.mirrors()[i];
                deliver(ports, m, true);
            }
        }
    }

    /// Sends what the endpoints queued.
    fn flush(&mut self) {
        for ep in self.dirty.drain(..) {
            self.is_dirty[ep as usize] = false;
            if let Some(e) = self.endpoints.get_mut(ep as usize) {
                e.flush(&self.epoll, &mut self.stats);
            }
        }
    }

    fn next_timeout(&self) -> EpollTimeout {
        let now = Instant::now();
        let next = self
            .endpoints
            .iter()
            .filter_map(|e| e.next_deadline())
            .fold(self.next_aging, Instant::min);
        let ms = next.saturating_duration_since(now).as_millis().min(2000) as u16;
        EpollTimeout::from(ms.saturating_add(1))
    }

    fn housekeeping(&mut self) {
        let now = Instant::now();
        if now >= self.next_aging {
            self.forwarder.table.expire(self.now_secs);
            self.next_aging = now + AGING_PERIOD;
            // Readers of a capture see it at most this late.
            if let Some(c) = &mut self.capture {
                c.flush();
            }
        }
        let Switch {
            prog,
            epoll,
            endpoints,
            ports,
            forwarder,
            stats,
            max_frame,
            ..
        } = self;
        for (id, endpoint) in endpoints.iter_mut().enumerate() {
            if endpoint.next_deadline().is_some_and(|d| d <= now) {
                let mut ctx = Ctx {
                    prog,
                    epoll,
                    endpoint: id as EndpointId,
                    ports,
                    macs: &mut forwarder.table,
                    stats,
                    max_frame: *max_frame,
                };
                endpoint.on_deadline(now, &mut ctx);
            }
        }
    }

    fn handle_signal(&mut self) -> Option<Exit> {
        while let Some(sig) = signals::next(&mut self.signals) {
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
            "{}: ports {}, MAC entries {}, frames in {}, out {}, truncated {}, dropped: short {}, too long {}, unknown sender {}, queue full {}, send errors {}; MACs not learned (table full) {}\n",
            self.prog,
            self.ports.count(),
            self.forwarder.table.len(),
            s.frames_in,
            s.frames_out,
            s.truncated,
            s.short,
            s.oversized,
            s.unknown_sender,
            s.queue_full,
            s.send_errors,
            s.table_full,
        ));
        for id in 0..self.ports.id_limit() {
            let n = self.ports.oversized(id);
            if n == 0 {
                continue;
            }
            let (Some(label), Some(ep)) = (self.ports.label(id), self.ports.endpoint(id)) else {
                continue;
            };
            err(&format!(
                "{}: port {label}: {n} frames dropped as longer than {} bytes (this port's \
                 limit; the switch's is {})\n",
                self.prog, self.limits[ep as usize], self.max_frame
            ));
        }
        for e in &self.endpoints {
            e.print_stats(&self.prog);
        }
    }

    /// Removes the socket files (as the C switch does before exiting).
    pub fn cleanup(&mut self) {
        for e in &mut self.endpoints {
            e.cleanup();
        }
        if let Some(m) = &mut self.mgmt {
            m.cleanup();
        }
        // Written out (its file stays).
        self.capture = None;
    }

    /// Starts capturing (`--pcap`): from now on, frames go to `capture`.
    pub fn set_capture(&mut self, capture: Capture) {
        self.capture = Some(capture);
    }

    /// A management socket event: its answers come from [`Switch::answer`].
    fn handle_mgmt(&mut self, token: u64, flags: EpollFlags) {
        let Some(mut m) = self.mgmt.take() else {
            return;
        };
        // The socket's own descriptors are (un)registered through a second
        // handle of the loop's epoll, so that answering may change the
        // switch (add a port, which registers descriptors too).
        let epoll = Rc::clone(&self.epoll);
        m.ready(token, flags, &epoll, &mut |req| self.answer(req));
        self.mgmt = Some(m);
    }

    /// The answer to a management request that changes something (else
    /// [`Switch::report`]).
    fn answer(&mut self, req: mgmt_proto::Request) -> String {
        use mgmt_proto::Command;
        let json = req.json;
        let result = match req.command {
            Command::CaptureStart {
                path,
                port,
                vlan,
                limit,
                pcapng,
            } => self
                .start_capture(&path, port, vlan, limit, pcapng)
                .map(|c| {
                    let status = c.status();
                    self.capture = Some(c);
                    mgmt_proto::capture_status(Some(&status), json)
                }),
            Command::CaptureStop => match self.capture.take() {
                // Dropped: written out.
                Some(c) => Ok(mgmt_proto::capture_status(Some(&c.status()), json)),
                None => Err("no capture runs".to_string()),
            },
            Command::Vlan {
                listener: Some(path),
                access,
                trunk,
                ..
            } => self
                .default_vlan_change(&path, access, &trunk)
                .map(|()| mgmt_proto::done(json)),
            Command::Vlan {
                label,
                access,
                trunk,
                ..
            } => self
                .vlan_change(label, access, &trunk)
                .map(|(port, vlans)| {
                    if self.ports.set_vlans(port, vlans) {
                        // Its addresses were learned in its old VLANs.
                        self.forwarder.table.purge_port(port);
                    }
                    mgmt_proto::done(json)
                }),
            Command::Mode { hub } => {
                if hub != self.forwarder.is_hub() {
                    self.forwarder.set_hub(hub);
                    out(&format!(
                        "{} is now a {}\n",
                        self.prog,
                        if hub { "hub" } else { "switch" }
                    ));
                }
                Ok(mgmt_proto::done(json))
            }
            Command::PortAdd { kind, spec } => self
                .add_port(&kind, &spec)
                .map(|line| mgmt_proto::lines(&line, json)),
            Command::PortRemove { label } => {
                self.remove_port(label).map(|()| mgmt_proto::done(json))
            }
            Command::HostFwdList => self
                .hostfwd(&HostFwdRequest::List)
                .map(|t| mgmt_proto::lines(&t, json)),
            Command::HostFwdAdd { rule } => self
                .hostfwd(&HostFwdRequest::Add(rule))
                .map(|t| mgmt_proto::lines(&t, json)),
            Command::HostFwdRemove { host } => self
                .hostfwd(&HostFwdRequest::Remove(host))
                .map(|t| mgmt_proto::lines(&t, json)),
            other => {
                return self.report(mgmt_proto::Request {
                    command: other,
                    json,
                })
            }
        };
        result.unwrap_or_else(|e| mgmt_proto::error(&e, json))
    }

    /// `hostfwd ...`: asks the NAT port.
    fn hostfwd(&mut self, request: &HostFwdRequest) -> Result<String, String> {
        for e in &mut self.endpoints {
            if let Some(answer) = e.hostfwd(request) {
                return answer;
            }
        }
        Err("no NAT port (start the switch with --nat)".to_string())
    }

    /// `port add KIND SPEC`: opens the port as the command line would and
    /// adds it to the loop. Returns the line that says how a guest joins.
    fn add_port(&mut self, kind: &str, spec: &str) -> Result<String, String> {
        // The command line's errors start with the program's name; the
        // management client puts it in front of an answer already.
        let prefix = format!("{}: ", self.prog);
        self.add_port_inner(kind, spec)
            .map_err(|e| match e.strip_prefix(&prefix) {
                Some(rest) => rest.to_string(),
                None => e,
            })
    }

    fn add_port_inner(&mut self, kind: &str, spec: &str) -> Result<String, String> {
        let max_mtu = (self.max_frame - ETH_HEADER_LEN) as u32;
        let port_spec = match kind {
            "raw" => PortSpec::Raw {
                ifname: spec.to_string(),
            },
            "tap" => PortSpec::Tap {
                name: spec.to_string(),
            },
            "vxlan" => PortSpec::Vxlan(crate::port::vxlan::parse_options(spec)?),
            "pcap" => PortSpec::Pcap(uml_common::pcap_port::parse_spec(spec)?),
            "bess-connect" => PortSpec::BessConnect { path: spec.into() },
            "qemu-connect" => PortSpec::QemuConnect { path: spec.into() },
            _ => {
                let tunnel_kind = if kind == "gre" {
                    TunnelKind::Gre
                } else {
                    TunnelKind::L2tpv3
                };
                let mut configs =
                    tunnel::check_options(&self.prog, &[(tunnel_kind, spec.to_string())], max_mtu)
                        .map_err(|e| e.to_string())?;
                PortSpec::Tunnel(configs.pop().ok_or("no tunnel options")?)
            }
        };
        if let Some(why) = crate::user::missing_for(&port_spec) {
            return Err(why);
        }
        if self.confined && matches!(port_spec, PortSpec::Pcap(_)) {
            return Err(PCAP_CONFINED.to_string());
        }
        let mut endpoint = match port::open(&self.prog, &port_spec) {
            Ok(Some(e)) => e,
            Ok(None) => return Err(format!("cannot open tap '{spec}'")),
            Err(e) => return Err(e.to_string()),
        };
        let id = self.endpoints.len() as EndpointId;
        let Switch {
            prog,
            epoll,
            ports,
            forwarder,
            stats,
            max_frame,
            ..
        } = self;
        let mut ctx = Ctx {
            prog,
            epoll,
            endpoint: id,
            ports,
            macs: &mut forwarder.table,
            stats,
            max_frame: *max_frame,
        };
        if let Err(e) = endpoint.register(&mut ctx) {
            endpoint.discard();
            return Err(format!("epoll: {}", strerror(&e)));
        }
        let line = endpoint
            .announce()
            .unwrap_or_else(|| format!("{kind} port added\n"));
        self.limits
            .push(endpoint.frame_limit(self.max_frame).min(self.max_frame));
        self.is_dirty.push(false);
        self.endpoints.push(endpoint);
        out(&line);
        Ok(line)
    }

    /// `port remove LABEL`: ends a statically configured port.
    fn remove_port(&mut self, label: i32) -> Result<(), String> {
        let port = self
            .ports
            .by_label(label)
            .ok_or_else(|| format!("no port {label}"))?;
        let ep = self.ports.endpoint(port).ok_or("no such port")? as usize;
        if !self.endpoints[ep].removable() {
            let (kind, _) = self.endpoints[ep].port_info(port);
            return Err(format!(
                "port {label} is a {kind} port: it ends when its guest disconnects"
            ));
        }
        // Frames queued for it are sent first.
        self.flush();
        let mut gone: Box<dyn Endpoint> = Box::new(port::Removed);
        std::mem::swap(&mut self.endpoints[ep], &mut gone);
        gone.cleanup();
        for p in self.ports.of_endpoint(ep as EndpointId) {
            if self.ports.drop_port(p) {
                self.forwarder.table.purge_port(p);
            }
        }
        if let Some(c) = &self.capture {
            if c.filter() == Filter::Port(port, label) {
                // Its port is gone: a later port may get its id.
                self.capture = None;
            }
        }
        // Dropping it closes its descriptors (they leave epoll).
        drop(gone);
        out(&format!("Port {label} removed\n"));
        Ok(())
    }

    /// A capture for `capture start` (not yet in place), or why not.
    fn start_capture(
        &self,
        path: &str,
        port: Option<i32>,
        vlan: Option<u16>,
        limit: Option<u64>,
        pcapng: bool,
    ) -> Result<Capture, String> {
        if self.capture.is_some() {
            return Err("a capture runs already (capture stop first)".to_string());
        }
        let filter = match (port, vlan) {
            (Some(label), _) => Filter::Port(
                self.ports
                    .by_label(label)
                    .ok_or_else(|| format!("no port {label}"))?,
                label,
            ),
            (None, Some(v)) => Filter::Vlan(v),
            (None, None) => Filter::All,
        };
        let limit = limit.unwrap_or(crate::capture::DEFAULT_LIMIT);
        let format = if pcapng {
            crate::capture::Format::PcapNg
        } else {
            crate::capture::Format::Pcap
        };
        Capture::start_as(std::path::Path::new(path), filter, limit, format)
            .map_err(|e| e.to_string())
    }

    /// `vlan default SOCKET …`: the VLANs of the ports that connect to
    /// SOCKET from now on.
    fn default_vlan_change(
        &mut self,
        path: &str,
        access: Option<Option<vlan::Vid>>,
        trunk: &Option<Box<vlan::VidSet>>,
    ) -> Result<(), String> {
        let ep = self
            .endpoints
            .iter()
            .position(|e| e.listen_path() == Some(std::path::Path::new(path)))
            .ok_or_else(|| format!("'{path}' is not the control socket or a bess socket"))?
            as EndpointId;
        let now = self.ports.default_vlans(ep);
        let access = access.unwrap_or_else(|| vlan::Vid::new(now.access()));
        let trunk = trunk
            .as_deref()
            .cloned()
            .unwrap_or_else(|| now.trunk().clone());
        let vlans = vlan::PortVlans::new(access, trunk).map_err(|e| e.to_string())?;
        self.ports.set_default_vlans(ep, vlans);
        Ok(())
    }

    /// What `vlan LABEL [access=V] [trunk=LIST]` would set, or why not.
    fn vlan_change(
        &self,
        label: i32,
        access: Option<Option<vlan::Vid>>,
        trunk: &Option<Box<vlan::VidSet>>,
    ) -> Result<(PortId, vlan::PortVlans), String> {
        let port = self
            .ports
            .by_label(label)
            .ok_or_else(|| format!("no port {label}"))?;
        let now = self.ports.vlans(port);
        let access = access.unwrap_or_else(|| vlan::Vid::new(now.access()));
        let trunk = trunk
            .as_deref()
            .cloned()
            .unwrap_or_else(|| now.trunk().clone());
        vlan::PortVlans::new(access, trunk)
            .map(|v| (port, v))
            .map_err(|e| e.to_string())
    }

    /// The answer to a management request that only reads.
    fn report(&self, req: mgmt_proto::Request) -> String {
        use mgmt_proto::Command;
        let json = req.json;
        match req.command {
            Command::Vlan { .. }
            | Command::CaptureStart { .. }
            | Command::CaptureStop
            | Command::Mode { .. }
            | Command::PortAdd { .. }
            | Command::PortRemove { .. }
            | Command::HostFwdList
            | Command::HostFwdAdd { .. }
            | Command::HostFwdRemove { .. } => mgmt_proto::error("internal: handled apart", json),
            Command::CaptureStatus => mgmt_proto::capture_status(
                self.capture.as_ref().map(Capture::status).as_deref(),
                json,
            ),
            Command::Help => mgmt_proto::help(json),
            Command::Ports => {
                let entries = self.forwarder.table.entries(self.now_secs);
                let rows: Vec<mgmt_proto::PortRow> = (0..self.ports.id_limit())
                    .filter_map(|id| {
                        let label = self.ports.label(id)?;
                        let ep = self.ports.endpoint(id)?;
                        let (kind, peer) = self.endpoints[ep as usize].port_info(id);
                        let t = self.ports.traffic(id);
                        Some(mgmt_proto::PortRow {
                            id: label,
                            kind,
                            peer,
                            vlan: self.ports.vlans(id).access(),
                            trunk: self.ports.vlans(id).trunk().to_string(),
                            macs: entries.iter().filter(|e| e.2 == id).count(),
                            frames_in: t.frames_in,
                            bytes_in: t.bytes_in,
                            frames_out: t.frames_out,
                            bytes_out: t.bytes_out,
                            drops_oversized: self.ports.oversized(id),
                        })
                    })
                    .collect();
                mgmt_proto::ports(&rows, json)
            }
            Command::Macs => {
                let rows: Vec<mgmt_proto::MacRow> = self
                    .forwarder
                    .table
                    .entries(self.now_secs)
                    .into_iter()
                    .map(|(vlan, mac, port, age)| mgmt_proto::MacRow {
                        vlan,
                        mac: mac.to_string(),
                        port: self.ports.label(port).unwrap_or(-1),
                        age,
                    })
                    .collect();
                mgmt_proto::macs(&rows, json)
            }
            Command::Counters => {
                let s = self.stats;
                let pairs = [
                    ("ports", self.ports.count() as u64),
                    ("mac_entries", self.forwarder.table.len() as u64),
                    ("frames_in", s.frames_in),
                    ("frames_out", s.frames_out),
                    ("dropped_short", s.short),
                    ("dropped_oversized", s.oversized),
                    ("dropped_unknown_sender", s.unknown_sender),
                    ("dropped_queue_full", s.queue_full),
                    ("send_errors", s.send_errors),
                    ("macs_not_learned_table_full", s.table_full),
                    ("truncated", s.truncated),
                ];
                mgmt_proto::counters(&pairs, json)
            }
        }
    }
}

/// The C switch prints `unknown Addr` for every such frame; ours prints it
/// when the source changes or at most once a second.
fn unknown_notice(
    last: &mut Option<(Instant, [u8; 6])>,
    ports: &PortTable,
    src: [u8; 6],
    from: PortId,
) {
    let now = Instant::now();
    let show = match *last {
        Some((t, mac)) => mac != src || now.duration_since(t) >= Duration::from_secs(1),
        None => true,
    };
    if show {
        *last = Some((now, src));
        let label = ports
            .label(from)
            .map_or("UNKNOWN".to_string(), |l| l.to_string());
        out(&format!("unknown Addr: {} from port {label}\n", Mac(src)));
    }
}

/// The answer to `port add pcap` once the switch is confined.
const PCAP_CONFINED: &str =
    "a pcap port runs a helper program, which the switch cannot start once \
     seccomp confines it (docs/switch.md §12): give the port at start with --pcap-port, \
     or run the switch with UML_UTILITIES_NO_SECCOMP=1";

/// Sets the switch up and runs it: how the process must end (status or
/// signal to die by), or why set-up failed (not printed; what was opened
/// has been removed).
pub fn run(prog: &str, opts: Options) -> Result<Exit, Error> {
    let mut sw = setup(prog, opts)?;
    // Set up: from here on, only the allow-list of seccomp.rs.
    match crate::seccomp::confine() {
        Ok(None) => {
            sw.confined = !uml_common::sys::seccomp::disabled_by_environment();
        }
        Ok(Some(status)) => {
            sw.cleanup();
            return Ok(Exit::Status(status));
        }
        Err(e) => {
            sw.cleanup();
            return Err(e);
        }
    }
    notify_ready(&sw);
    Ok(sw.run())
}

/// Under a service manager (`NOTIFY_SOCKET`, sd_notify(3)): says that
/// every socket listens (`READY=1`), with the switch's pid (after
/// `-daemon`'s fork) and a status line. Best effort: a manager that cannot
/// be told times the start out itself.
fn notify_ready(sw: &Switch) {
    use std::os::linux::net::SocketAddrExt;
    use std::os::unix::net::{SocketAddr, UnixDatagram};
    use uml_common::activation::{notify_target, ready_message, NotifyTarget};
    let Some(target) = notify_target(|k| std::env::var(k).ok()) else {
        return;
    };
    let addr = match target {
        NotifyTarget::Path(p) => SocketAddr::from_pathname(p),
        NotifyTarget::Abstract(name) => SocketAddr::from_abstract_name(name),
    };
    let status = format!("{} ports, switching", sw.ports.count());
    let message = ready_message(&status, Some(std::process::id()));
    if let (Ok(addr), Ok(sock)) = (addr, UnixDatagram::unbound()) {
        if let Err(e) = sock.send_to_addr(message.as_bytes(), &addr) {
            err(&format!("{}: NOTIFY_SOCKET: {}\n", sw.prog, strerror(&e)));
        }
    }
}
