//! One control connection of the daemon protocol, as a state machine
//! without sockets: bytes, end of file, read errors and clock ticks go in,
//! [`Action`]s come out (lines to print, register a port, send the reply,
//! close). The daemon port kind (`port/daemon.rs`) does the I/O.
//!
//! Rules (`docs/switch.md` §4, README deviations 1–3): a request is
//! accumulated until [`parse_request`] can decide it — never acting on
//! bytes not received — and must be complete within [`REQUEST_TIMEOUT`];
//! a rejected connection is closed once with the C switch's first
//! message; after a v3 request up to [`V3_DESCRIPTION_MAX`] bytes of
//! padding or vde-style description arriving within [`TRAILER_GRACE`] are
//! ignored; any other byte, or end of file, on a registered connection
//! ends its port.
//!
//! Which data socket a new port gets is decided here, per request: a v3
//! request naming a file-system path (vdeplug4's `vde_plug`, vde-2's
//! libvdeplug: `DIR/.PPPPP-NNNNN`) becomes [`Action::RegisterVde`] — a data
//! socket of its own, connected to the client before the reply names it
//! (the client connects to the reply's address and unlinks its own path,
//! `docs/kernel7.md` §1.3); every other request (the abstract addresses of
//! the kernel's daemon transport, v0, v1) becomes [`Action::Register`] on
//! the shared data socket, as before.

use std::io;
use std::time::{Duration, Instant};

use uml_common::cli::strerror;
use uml_common::switch::{
    parse_request, v3_requested_port, Parsed, SockAddrUn, Version, V3_DESCRIPTION_MAX, V3_LEN,
    V3_MIN_LEN,
};

/// A new control connection must deliver its whole request within this.
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(5);
/// Bytes after a v3 request (padding, vde description) are ignored this
/// soon after registration.
pub const TRAILER_GRACE: Duration = Duration::from_secs(1);
/// Most bytes buffered for a request (a v3 request with the longest
/// description tail).
const REQUEST_ROOM: usize = V3_LEN + V3_DESCRIPTION_MAX;
/// Bytes read at a time from a registered connection.
const ACTIVE_READ: usize = 256;

/// What the connection's owner must do, in order. Nothing follows
/// [`Action::Close`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    /// Print this line (with its `\n`) on stdout.
    Out(String),
    /// Print this line (with its `\n`) on stderr.
    Err(String),
    /// The connection becomes a port whose frames go to this address
    /// through the shared data socket.
    Register(SockAddrUn),
    /// The connection becomes a port with a data socket of its own,
    /// connected to the client's address; the reply names that socket.
    RegisterVde(VdeRequest),
    /// The connection becomes a mirror port (netkit's `uml_dump`): a copy
    /// of every frame goes to this address; what it sends is ignored.
    RegisterDump(SockAddrUn),
    /// Write the switch's 110-byte data socket address on the connection.
    Reply,
    /// Close the connection (and remove its port, if it has one).
    Close,
}

/// A request from a client whose data socket is a file-system path.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VdeRequest {
    /// The client's data socket.
    pub addr: SockAddrUn,
    /// The description received with the request (vde: `DESCR user=NAME
    /// pid=N`), NULs removed and control characters replaced; may be
    /// empty.
    pub description: String,
    /// The switch port it asked for (vde's `type >> 8`): tolerated, not
    /// honoured.
    pub requested_port: Option<u32>,
}

/// The printable form of a description tail: NULs dropped, control
/// characters (a log line must stay one line) replaced by `?`.
fn description_text(tail: &[u8]) -> String {
    let tail: Vec<u8> = tail.iter().copied().filter(|&b| b != 0).collect();
    String::from_utf8_lossy(&tail)
        .chars()
        .map(|c| if c.is_control() { '?' } else { c })
        .collect()
}

#[derive(Debug)]
enum State {
    /// Waiting for a whole request.
    Pending { buf: Vec<u8>, deadline: Instant },
    /// Registered: a port.
    Active {
        grace_until: Instant,
        grace_left: usize,
    },
    /// Closed; further input is ignored.
    Closed,
}

/// The state of one control connection.
#[derive(Debug)]
pub struct ControlConn {
    state: State,
}

impl ControlConn {
    /// A connection accepted at `now`.
    pub fn new(now: Instant) -> ControlConn {
        ControlConn {
            state: State::Pending {
                buf: Vec::with_capacity(V3_LEN),
                deadline: now + REQUEST_TIMEOUT,
            },
        }
    }

    /// Whether the request has not been completed yet.
    pub fn is_pending(&self) -> bool {
        matches!(self.state, State::Pending { .. })
    }

    /// How many bytes to read next.
    pub fn read_size(&self) -> usize {
        match &self.state {
            State::Pending { buf, .. } => REQUEST_ROOM.saturating_sub(buf.len()),
            State::Active { .. } => ACTIVE_READ,
            State::Closed => 0,
        }
    }

    fn close(&mut self, mut actions: Vec<Action>) -> Vec<Action> {
        self.state = State::Closed;
        actions.push(Action::Close);
        actions
    }

    /// `bytes` (not empty) were read at `now`.
    pub fn on_bytes(&mut self, bytes: &[u8], now: Instant) -> Vec<Action> {
        match &mut self.state {
            State::Pending { buf, .. } => {
                buf.extend_from_slice(bytes);
                let received = buf.len();
                let parsed = parse_request(buf);
                let vde = match &parsed {
                    Parsed::Port {
                        version: Version::V3,
                        addr,
                        ..
                    } if !addr.is_abstract() => Some(VdeRequest {
                        addr: *addr,
                        description: description_text(buf.get(V3_MIN_LEN..).unwrap_or(&[])),
                        requested_port: v3_requested_port(buf),
                    }),
                    _ => None,
                };
                self.on_request(parsed, received, vde, now)
            }
            State::Active {
                grace_until,
                grace_left,
            } => {
                if now < *grace_until && bytes.len() <= *grace_left {
                    *grace_left -= bytes.len();
                    Vec::new()
                } else {
                    self.close(vec![Action::Out("Bad request\n".into())])
                }
            }
            State::Closed => Vec::new(),
        }
    }

    fn on_request(
        &mut self,
        parsed: Parsed,
        received: usize,
        vde: Option<VdeRequest>,
        now: Instant,
    ) -> Vec<Action> {
        match parsed {
            Parsed::NeedMore => Vec::new(),
            // vde clients mean their management port by type 1: refused as
            // before; a daemon-style client (netkit's uml_dump) gets a
            // mirror port.
            Parsed::Dump { addr, .. } if !addr.is_abstract() => self.close(vec![Action::Out(
                format!("Bad request type : {}\n", uml_common::switch::REQ_NEW_DUMP),
            )]),
            Parsed::Dump { addr, consumed } => {
                self.state = State::Active {
                    grace_until: now + TRAILER_GRACE,
                    grace_left: REQUEST_ROOM.saturating_sub(received.max(consumed)),
                };
                vec![
                    Action::RegisterDump(addr),
                    Action::Out("New dump connection\n".into()),
                    Action::Reply,
                ]
            }
            Parsed::Reject { message } => {
                let line = format!("{message}\n");
                // The C switch prints the bad type on stdout, the version
                // complaints on stderr.
                let print = if message.starts_with("Bad request type") {
                    Action::Out(line)
                } else {
                    Action::Err(line)
                };
                self.close(vec![print])
            }
            Parsed::Port {
                version,
                addr,
                consumed,
            } => {
                let grace_left = match version {
                    Version::V3 => REQUEST_ROOM.saturating_sub(received.max(consumed)),
                    _ => 0,
                };
                self.state = State::Active {
                    grace_until: now + TRAILER_GRACE,
                    grace_left,
                };
                let register = match vde {
                    Some(request) => Action::RegisterVde(request),
                    None => Action::Register(addr),
                };
                let mut actions = vec![register, Action::Out("New connection\n".into())];
                let extra = received.saturating_sub(consumed);
                if version != Version::V3 && extra > 0 {
                    actions.push(Action::Out("Bad request\n".into()));
                    return self.close(actions);
                }
                if version != Version::V0 {
                    actions.push(Action::Reply);
                }
                actions
            }
        }
    }

    /// The peer closed the connection.
    pub fn on_eof(&mut self) -> Vec<Action> {
        let line = match self.state {
            State::Pending { .. } => "EOF from new port\n",
            State::Active { .. } => "Disconnect\n",
            State::Closed => return Vec::new(),
        };
        self.close(vec![Action::Out(line.into())])
    }

    /// Reading failed (other than "would block" or "interrupted").
    pub fn on_read_error(&mut self, e: &io::Error) -> Vec<Action> {
        if matches!(self.state, State::Closed) {
            return Vec::new();
        }
        self.close(vec![Action::Err(format!(
            "Reading request: {}\n",
            strerror(e)
        ))])
    }

    /// Writing the reply failed: `None` for a short write.
    pub fn on_reply_failed(&mut self, e: Option<&io::Error>) -> Vec<Action> {
        let why = e.map_or_else(|| "short write".to_string(), strerror);
        self.close(vec![Action::Err(format!(
            "Sending data socket name: {why}\n"
        ))])
    }

    /// The port could not be set up (a vde client's data socket could not
    /// be made or connected): `why` is printed on stderr.
    pub fn on_register_failed(&mut self, why: &str) -> Vec<Action> {
        self.close(vec![Action::Err(format!("{why}\n"))])
    }

    /// Checks the request deadline at `now`; `prog` and `label` (the
    /// connection's descriptor) go into the message.
    pub fn on_tick(&mut self, now: Instant, prog: &str, label: i32) -> Vec<Action> {
        match &self.state {
            State::Pending { buf, deadline } if *deadline <= now => {
                let line = format!(
                    "{prog}: closing control connection {label}: incomplete request ({} bytes) after {} s\n",
                    buf.len(),
                    REQUEST_TIMEOUT.as_secs()
                );
                self.close(vec![Action::Err(line)])
            }
            _ => Vec::new(),
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use uml_common::switch::{encode_v0, encode_v1, encode_v3, Mac};

    fn addr() -> SockAddrUn {
        SockAddrUn::abstract_name(b"client")
    }

    fn out(s: &str) -> Action {
        Action::Out(format!("{s}\n"))
    }

    fn err(s: &str) -> Action {
        Action::Err(format!("{s}\n"))
    }

    fn registered(reply: bool) -> Vec<Action> {
        let mut v = vec![Action::Register(addr()), out("New connection")];
        if reply {
            v.push(Action::Reply);
        }
        v
    }

    #[test]
    fn v3_whole_or_without_padding_registers_and_replies() {
        let t = Instant::now();
        let req = encode_v3(&addr());
        for len in [124, 122] {
            let mut c = ControlConn::new(t);
            assert_eq!(c.on_bytes(&req[..len], t), registered(true));
            assert!(!c.is_pending());
            assert_eq!(c.read_size(), ACTIVE_READ);
        }
    }

    #[test]
    fn v1_replies_and_v0_does_not() {
        let t = Instant::now();
        let mac = Mac([2, 0, 0, 0, 0, 1]);
        let mut c = ControlConn::new(t);
        assert_eq!(c.on_bytes(&encode_v1(mac, &addr()), t), registered(true));
        let mut c = ControlConn::new(t);
        assert_eq!(c.on_bytes(&encode_v0(mac, &addr()), t), registered(false));
    }

    #[test]
    fn requests_are_reassembled_from_any_split() {
        let t = Instant::now();
        let req = encode_v3(&addr());
        for split in [1, 4, 8, 12, 20, 121] {
            let mut c = ControlConn::new(t);
            assert_eq!(c.on_bytes(&req[..split], t), vec![], "split {split}");
            assert!(c.is_pending());
            assert_eq!(c.read_size(), REQUEST_ROOM - split);
            assert_eq!(c.on_bytes(&req[split..], t), registered(true));
        }
    }

    #[test]
    fn rejections_print_the_first_c_message_and_close_once() {
        let t = Instant::now();
        let cases: [(Vec<u8>, Action); 4] = [
            (
                0xdead_beef_u32.to_le_bytes().to_vec(),
                out("Bad request type : -559038737"),
            ),
            (
                {
                    let mut r = encode_v3(&addr()).to_vec();
                    r[8] = 7;
                    r
                },
                out("Bad request type : 7"),
            ),
            (
                [0xce, 0xfa, 0xed, 0xfe, 2, 0, 0, 0].to_vec(),
                err("Version 2 is not supported"),
            ),
            (
                [0xce, 0xfa, 0xed, 0xfe, 4, 0, 0, 0].to_vec(),
                err("Request for a version 4 port, which this uml_switch doesn't support"),
            ),
        ];
        for (bytes, message) in cases {
            let mut c = ControlConn::new(t);
            assert_eq!(c.on_bytes(&bytes, t), vec![message, Action::Close]);
            // Closed: nothing more happens.
            assert_eq!(c.on_bytes(b"x", t), vec![]);
            assert_eq!(c.on_eof(), vec![]);
            assert_eq!(c.read_size(), 0);
        }
        let mut c = ControlConn::new(t);
        assert_eq!(
            c.on_bytes(&[0xff; 200], t),
            vec![out("Bad request type : -1"), Action::Close]
        );
    }

    #[test]
    fn eof_before_and_after_registration() {
        let t = Instant::now();
        let mut c = ControlConn::new(t);
        assert_eq!(c.on_eof(), vec![out("EOF from new port"), Action::Close]);
        let mut c = ControlConn::new(t);
        c.on_bytes(&[0xce, 0xfa], t);
        assert_eq!(c.on_eof(), vec![out("EOF from new port"), Action::Close]);
        let mut c = ControlConn::new(t);
        c.on_bytes(&encode_v3(&addr()), t);
        assert_eq!(c.on_eof(), vec![out("Disconnect"), Action::Close]);
    }

    #[test]
    fn read_and_reply_errors() {
        let t = Instant::now();
        let e = io::Error::from_raw_os_error(libc::ECONNRESET);
        let mut c = ControlConn::new(t);
        assert_eq!(
            c.on_read_error(&e),
            vec![
                err("Reading request: Connection reset by peer"),
                Action::Close
            ]
        );
        let mut c = ControlConn::new(t);
        c.on_bytes(&encode_v3(&addr()), t);
        assert_eq!(
            c.on_reply_failed(None),
            vec![err("Sending data socket name: short write"), Action::Close]
        );
        let mut c = ControlConn::new(t);
        c.on_bytes(&encode_v3(&addr()), t);
        let e = io::Error::from_raw_os_error(libc::EPIPE);
        assert_eq!(
            c.on_reply_failed(Some(&e)),
            vec![err("Sending data socket name: Broken pipe"), Action::Close]
        );
    }

    #[test]
    fn v3_trailer_within_grace_is_ignored() {
        let t = Instant::now();
        let req = encode_v3(&addr());
        // 122 bytes, then the 2 padding bytes and a 128-byte description.
        let mut c = ControlConn::new(t);
        c.on_bytes(&req[..122], t);
        assert_eq!(c.on_bytes(&[0, 0], t), vec![]);
        assert_eq!(c.on_bytes(&[b'd'; 128], t), vec![]);
        // One byte more is a bad request.
        assert_eq!(c.on_bytes(b"x", t), vec![out("Bad request"), Action::Close]);
        // Request and tail in one read.
        let mut c = ControlConn::new(t);
        let mut all = req.to_vec();
        all.extend_from_slice(&[b'd'; 128]);
        assert_eq!(c.on_bytes(&all, t), registered(true));
        assert_eq!(c.on_bytes(b"x", t), vec![out("Bad request"), Action::Close]);
        // After the grace period even one byte ends the port.
        let mut c = ControlConn::new(t);
        c.on_bytes(&req, t);
        assert_eq!(
            c.on_bytes(&[0], t + TRAILER_GRACE),
            vec![out("Bad request"), Action::Close]
        );
    }

    #[test]
    fn extra_bytes_after_v0_or_v1_end_the_new_port() {
        let t = Instant::now();
        let mac = Mac([2, 0, 0, 0, 0, 1]);
        let mut v1 = encode_v1(mac, &addr()).to_vec();
        v1.push(0);
        let mut c = ControlConn::new(t);
        let mut want = registered(false);
        want.push(out("Bad request"));
        want.push(Action::Close);
        assert_eq!(c.on_bytes(&v1, t), want);
        // Registered first: a later byte is a bad request too.
        let mut c = ControlConn::new(t);
        c.on_bytes(&encode_v1(mac, &addr()), t);
        assert_eq!(c.on_bytes(&[0], t), vec![out("Bad request"), Action::Close]);
    }

    fn vde_addr() -> SockAddrUn {
        SockAddrUn::path(b"/tmp/sw/.01234-00000")
    }

    fn vde_request(description: &[u8], port: u32) -> Vec<u8> {
        let mut r = encode_v3(&vde_addr())[..V3_MIN_LEN].to_vec();
        r[8..12].copy_from_slice(&(port << 8).to_le_bytes());
        r.extend_from_slice(description);
        r
    }

    fn registered_vde(description: &str, requested_port: Option<u32>) -> Vec<Action> {
        vec![
            Action::RegisterVde(VdeRequest {
                addr: vde_addr(),
                description: description.into(),
                requested_port,
            }),
            out("New connection"),
            Action::Reply,
        ]
    }

    #[test]
    fn a_path_client_gets_its_own_data_socket_and_its_description_kept() {
        let t = Instant::now();
        // What vdeplug4 sends: 122 bytes and the description, no NUL.
        let mut c = ControlConn::new(t);
        let req = vde_request(b"UML user=root pid=14935", 0);
        assert_eq!(req.len(), 145);
        assert_eq!(
            c.on_bytes(&req, t),
            registered_vde("UML user=root pid=14935", None)
        );
        assert!(!c.is_pending());
        // It may also end its port like any other.
        assert_eq!(c.on_eof(), vec![out("Disconnect"), Action::Close]);
        // Port bits in the type are tolerated and reported.
        let mut c = ControlConn::new(t);
        assert_eq!(
            c.on_bytes(&vde_request(b"x", 3), t),
            registered_vde("x", Some(3))
        );
        // NULs are dropped, control characters replaced.
        let mut c = ControlConn::new(t);
        assert_eq!(
            c.on_bytes(&vde_request(b"\0\0a\nb\x1b", 0), t),
            registered_vde("a?b?", None)
        );
        // The kernel's 124-byte form with a path: no description.
        let mut c = ControlConn::new(t);
        assert_eq!(
            c.on_bytes(&encode_v3(&vde_addr()), t),
            registered_vde("", None)
        );
    }

    #[test]
    fn a_split_vde_request_is_one_port_and_its_late_tail_is_ignored() {
        let t = Instant::now();
        let req = vde_request(&[b'd'; 128], 0);
        let mut c = ControlConn::new(t);
        assert_eq!(c.on_bytes(&req[..12], t), vec![]);
        assert_eq!(c.on_bytes(&req[12..122], t), registered_vde("", None));
        assert_eq!(c.on_bytes(&req[122..], t), vec![]);
        // Room for 2 padding bytes and 128 of description (README
        // deviation 3); more ends the port.
        assert_eq!(c.on_bytes(b"xx", t), vec![]);
        assert_eq!(c.on_bytes(b"x", t), vec![out("Bad request"), Action::Close]);
        // An oversized tail in the same read: registered, then closed.
        let mut c = ControlConn::new(t);
        let big = vde_request(&[b'd'; 300], 0);
        let first = c.read_size();
        let mut actions = c.on_bytes(&big[..first], t);
        actions.extend(c.on_bytes(&big[first..first + 1], t));
        let mut want = registered_vde(&"d".repeat(first - V3_MIN_LEN), None);
        want.push(out("Bad request"));
        want.push(Action::Close);
        assert_eq!(actions, want);
    }

    #[test]
    fn abstract_and_older_requests_stay_on_the_shared_socket() {
        let t = Instant::now();
        let mut req = encode_v3(&addr()).to_vec();
        req[8..12].copy_from_slice(&(7u32 << 8).to_le_bytes());
        let mut c = ControlConn::new(t);
        assert_eq!(c.on_bytes(&req, t), registered(true));
        let mut c = ControlConn::new(t);
        let v1 = encode_v1(Mac([2, 0, 0, 0, 0, 1]), &vde_addr());
        assert_eq!(
            c.on_bytes(&v1, t),
            vec![
                Action::Register(vde_addr()),
                out("New connection"),
                Action::Reply
            ]
        );
    }

    #[test]
    fn a_failed_registration_closes_once() {
        let t = Instant::now();
        let mut c = ControlConn::new(t);
        c.on_bytes(&vde_request(b"UML", 0), t);
        assert_eq!(c.on_register_failed("why"), vec![err("why"), Action::Close]);
        assert_eq!(c.on_bytes(b"x", t), vec![]);
        assert_eq!(c.on_eof(), vec![]);
    }

    #[test]
    fn incomplete_requests_time_out() {
        let t = Instant::now();
        let mut c = ControlConn::new(t);
        c.on_bytes(&[0xce, 0xfa, 0xed, 0xfe], t);
        assert_eq!(c.on_tick(t + Duration::from_secs(4), "sw", 7), vec![]);
        assert_eq!(
            c.on_tick(t + REQUEST_TIMEOUT, "sw", 7),
            vec![
                err("sw: closing control connection 7: incomplete request (4 bytes) after 5 s"),
                Action::Close
            ]
        );
        // A registered connection has no deadline.
        let mut c = ControlConn::new(t);
        c.on_bytes(&encode_v3(&addr()), t);
        assert_eq!(c.on_tick(t + Duration::from_secs(60), "sw", 7), vec![]);
    }
}
