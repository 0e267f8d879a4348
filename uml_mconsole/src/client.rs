//! The client session: target selection, sending requests, collecting
//! replies with bounded waits, and the local commands
//! (`docs/mconsole.md` §5.2–§5.6).

use std::ffi::{OsStr, OsString};
use std::io::{self, Read, Write};
use std::os::fd::AsRawFd;
use std::os::linux::net::SocketAddrExt;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::MetadataExt;
use std::os::unix::net::{SocketAddr, UnixDatagram};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use uml_common::cli::{perror_text, strerror};
use uml_common::mconsole::{self, Reply, MAX_REPLY_SIZE};
use uml_common::umid;

use crate::absolutize::absolutize_config;

/// Exit status for a reply that did not arrive in full within the timeout.
pub const STATUS_INCOMPLETE: i32 = 2;

/// Local help text (printed after the kernel's help).
pub const LOCAL_HELP: &str = "\
Additional local mconsole commands:
    quit - Quit mconsole
    switch <socket-name> - Switch control to the given machine
    log -f <filename> - use contents of <filename> as UML log messages
    mconsole-version - version of this mconsole program
    int  - Interrupt UML session
";

/// Largest piece of text sent with one `log` request.
const LOG_PIECE: usize = 506;

/// The result of one command line.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Outcome {
    /// Exit status in one-shot mode.
    pub status: i32,
    /// `quit`: leave immediately.
    pub quit: bool,
    /// Exit even in interactive mode (the C client's `log -f` failures).
    pub fatal: bool,
}

impl Outcome {
    fn status(status: i32) -> Self {
        Outcome {
            status,
            quit: false,
            fatal: false,
        }
    }
}

/// Where output goes; both are written unbuffered-in-order by the caller.
pub struct Io<'a> {
    /// stdout.
    pub out: &'a mut dyn Write,
    /// stderr.
    pub err: &'a mut dyn Write,
}

impl std::fmt::Debug for Io<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Io")
    }
}

/// One mconsole client: its bound socket and the selected UML.
#[derive(Debug)]
pub struct Session {
    sock: UnixDatagram,
    target: Option<PathBuf>,
    prompt_name: Vec<u8>,
    uml_pid: Option<i32>,
    timeout: Duration,
    used: bool,
}

/// Creates the client socket bound to the C client's abstract name.
pub fn bind_client_socket() -> io::Result<UnixDatagram> {
    let name = mconsole::client_abstract_name(std::process::id());
    let addr = SocketAddr::from_abstract_name(name)?;
    UnixDatagram::bind_addr(&addr)
}

fn w(out: &mut dyn Write, bytes: &[u8]) {
    // Output errors (a closed pipe) must not abort the protocol exchange.
    let _ = out.write_all(bytes);
}

impl Session {
    /// A session with no UML selected (prompt `[None]`).
    pub fn new(sock: UnixDatagram, timeout: Duration) -> Self {
        Session {
            sock,
            target: None,
            prompt_name: b"[None]".to_vec(),
            uml_pid: None,
            timeout,
            used: false,
        }
    }

    /// The prompt: `(NAME) ` with NAME cut to 11 bytes.
    pub fn prompt(&self) -> String {
        format!("({}) ", String::from_utf8_lossy(&self.prompt_name))
    }

    /// The selected socket path, if any.
    pub fn target(&self) -> Option<&Path> {
        self.target.as_deref()
    }

    /// Resolves NAME and selects it; warnings go to stderr. Returns whether
    /// a socket was found.
    pub fn switch(&mut self, name: &OsStr, io: &mut Io<'_>) -> bool {
        let home = std::env::var_os("HOME");
        let res = umid::resolve(name, home.as_deref(), |p| std::fs::metadata(p).map(|_| ()));
        for warning in &res.warnings {
            w(io.err, warning);
        }
        let Some(found) = res.found else {
            return false;
        };
        self.target = Some(found.socket);
        let n = name.as_bytes();
        self.prompt_name = n[..n.len().min(11)].to_vec();
        self.uml_pid = found
            .pid_file
            .and_then(|p| std::fs::read(p).ok())
            .and_then(|c| umid::parse_pid(&c));
        true
    }

    /// Runs one command line (local or sent to the kernel).
    pub fn run_line(&mut self, raw: &[u8], io: &mut Io<'_>) -> Outcome {
        let end = raw
            .iter()
            .rposition(|b| !b.is_ascii_whitespace())
            .map_or(0, |i| i + 1);
        let line = &raw[..end];
        if line.starts_with(b"quit") {
            return Outcome {
                status: 0,
                quit: true,
                fatal: false,
            };
        }
        if line.starts_with(b"help") {
            self.kernel_command(line, io);
            w(io.out, LOCAL_HELP.as_bytes());
            return Outcome::status(0);
        }
        if let Some(arg) = line.strip_prefix(b"switch") {
            let arg = skip_space(arg);
            let name = OsString::from(OsStr::from_bytes(arg));
            if self.switch(&name, io) {
                let mut msg = b"Switched to '".to_vec();
                msg.extend_from_slice(arg);
                msg.extend_from_slice(b"'\n");
                w(io.out, &msg);
                return Outcome::status(0);
            }
            return Outcome::status(1);
        }
        if let Some(arg) = line.strip_prefix(b"log") {
            return self.log(skip_space(arg), io);
        }
        if let Some(arg) = line.strip_prefix(b"umlfs") {
            return self.umlfs(line, skip_space(arg), io);
        }
        if line.starts_with(b"mconsole-version") {
            w(io.out, b"uml_mconsole client version 2\n");
            return Outcome::status(0);
        }
        if line.starts_with(b"int") {
            return self.interrupt(io);
        }
        let cwd = std::env::current_dir().ok();
        let (line, warnings) = absolutize_config(line, cwd.as_deref());
        for warning in &warnings {
            w(io.err, warning);
        }
        Outcome::status(self.kernel_command(&line, io))
    }

    fn interrupt(&self, io: &mut Io<'_>) -> Outcome {
        use nix::sys::signal::{kill, Signal};
        use nix::unistd::Pid;
        // Deliberate fix: never kill(0, ...) (the C client signalled its own
        // process group when it knew no pid).
        let Some(pid) = self.uml_pid.filter(|&p| p > 0) else {
            w(
                io.out,
                b"Cannot determine the PID of your UML session, not sending signal.\n",
            );
            return Outcome::status(0);
        };
        match kill(Pid::from_raw(pid), Signal::SIGINT) {
            Ok(()) => Outcome::status(0),
            Err(e) => {
                let msg = format!(
                    "Couldn't send SIGINT to UML pid {pid}: {}\n",
                    strerror(&io::Error::from(e))
                );
                w(io.err, msg.as_bytes());
                Outcome::status(1)
            }
        }
    }

    fn log(&mut self, arg: &[u8], io: &mut Io<'_>) -> Outcome {
        let mut last_newline = false;
        if let Some(file) = arg.strip_prefix(b"-f") {
            let path = OsStr::from_bytes(skip_space(file));
            let mut f = match std::fs::File::open(path) {
                Ok(f) => f,
                Err(e) => {
                    w(
                        io.err,
                        format!("{}\n", perror_text("opening file", &e)).as_bytes(),
                    );
                    return Outcome {
                        status: 1,
                        quit: false,
                        fatal: true,
                    };
                }
            };
            let mut block = [0u8; LOG_PIECE];
            loop {
                let n = match read_full(&mut f, &mut block) {
                    Ok(0) => break,
                    Ok(n) => n,
                    Err(e) => {
                        w(
                            io.err,
                            format!("{}\n", perror_text("reading file", &e)).as_bytes(),
                        );
                        return Outcome {
                            status: 1,
                            quit: false,
                            fatal: true,
                        };
                    }
                };
                self.log_piece(&block[..n], io);
                last_newline = block[n - 1] == b'\n';
            }
        } else {
            for piece in arg.chunks(LOG_PIECE) {
                self.log_piece(piece, io);
                last_newline = piece.last() == Some(&b'\n');
            }
        }
        if !last_newline {
            self.log_piece(b"\n", io);
        }
        Outcome::status(0)
    }

    fn log_piece(&mut self, piece: &[u8], io: &mut Io<'_>) {
        let mut cmd = b"log ".to_vec();
        cmd.extend_from_slice(piece);
        self.kernel_command(&cmd, io);
    }

    fn umlfs(&mut self, line: &[u8], arg: &[u8], io: &mut Io<'_>) -> Outcome {
        let einval = nix::errno::Errno::EINVAL as i32;
        let Some(fd) = parse_strtoul(arg) else {
            w(io.out, b"ERR Failed to parse file descriptor\n");
            return Outcome::status(256 - einval);
        };
        let sent = match self.target.clone() {
            None => Err(nix::errno::Errno::EINVAL),
            Some(target) => self.prepare().and_then(|()| {
                let req = mconsole::encode_request(line);
                let addr = nix::sys::socket::UnixAddr::new(&target)?;
                let fds = [fd as i32];
                let cmsg = [nix::sys::socket::ControlMessage::ScmRights(&fds)];
                let iov = [io::IoSlice::new(&req)];
                nix::sys::socket::sendmsg(
                    self.sock.as_raw_fd(),
                    &iov,
                    &cmsg,
                    nix::sys::socket::MsgFlags::empty(),
                    Some(&addr),
                )
                .map(|_| ())
            }),
        };
        if let Err(e) = sent {
            w(io.out, b"ERR Failed to send FUSE file descriptor\n");
            return Outcome::status((256 - e as i32) & 0xff);
        }
        Outcome::status(self.receive_and_print(io))
    }

    /// Discards datagrams left over from an earlier, timed-out reply.
    fn prepare(&mut self) -> nix::Result<()> {
        if self.used {
            let mut buf = [0u8; MAX_REPLY_SIZE];
            if self.sock.set_nonblocking(true).is_ok() {
                while self.sock.recv(&mut buf).is_ok() {}
                let _ = self.sock.set_nonblocking(false);
            }
        }
        self.used = true;
        Ok(())
    }

    /// Sends `cmd` to the kernel and prints the reply. Returns the status.
    pub fn kernel_command(&mut self, cmd: &[u8], io: &mut Io<'_>) -> i32 {
        let Some(target) = self.target.clone() else {
            w(io.err, b"Sending command to '' : Invalid argument\n");
            return 1;
        };
        let _ = self.prepare();
        let req = mconsole::encode_request(cmd);
        if let Err(e) = self.sock.send_to(&req, &target) {
            let text = if e.kind() == io::ErrorKind::InvalidInput && e.raw_os_error().is_none() {
                "File name too long".to_string()
            } else {
                strerror(&e)
            };
            let mut msg = b"Sending command to '".to_vec();
            msg.extend_from_slice(target.as_os_str().as_bytes());
            msg.extend_from_slice(b"' : ");
            msg.extend_from_slice(text.as_bytes());
            msg.push(b'\n');
            w(io.err, &msg);
            return 1;
        }
        self.receive_and_print(io)
    }

    fn receive_and_print(&mut self, io: &mut Io<'_>) -> i32 {
        let target = self.target.clone().unwrap_or_default();
        match receive(&self.sock, &target, self.timeout) {
            Received::Reply(reply) if reply.complete => {
                w(io.out, &reply.render());
                reply.status()
            }
            Received::Reply(reply) => {
                w(io.out, &reply.render());
                let msg = format!(
                    "uml_mconsole: incomplete reply from '{}': {} packet(s) arrived but not the final one within {} s; \
                     packets were probably dropped because the receive queue was full \
                     (net.unix.max_dgram_qlen, default 10), or the UML stopped answering\n",
                    target.display(),
                    reply.packets,
                    secs(self.timeout)
                );
                w(io.err, msg.as_bytes());
                STATUS_INCOMPLETE
            }
            Received::Nothing => {
                let msg = format!(
                    "no reply from '{}' within {} s\n",
                    target.display(),
                    secs(self.timeout)
                );
                w(io.err, msg.as_bytes());
                STATUS_INCOMPLETE
            }
            Received::NotAReply(text) => {
                let mut line = mconsole::until_nul(&text).to_vec();
                line.push(b'\n');
                w(io.out, &line);
                w(
                    io.err,
                    b"uml_mconsole: the UML answered with a datagram that is not a version 2 reply\n",
                );
                1
            }
            Received::Error(e) => {
                w(
                    io.err,
                    format!("{}\n", perror_text("recvmsg", &e)).as_bytes(),
                );
                1
            }
        }
    }
}

fn secs(d: Duration) -> String {
    let s = d.as_secs_f64();
    if s.fract() == 0.0 {
        format!("{}", s as u64)
    } else {
        format!("{s}")
    }
}

fn skip_space(s: &[u8]) -> &[u8] {
    let start = s
        .iter()
        .position(|b| !b.is_ascii_whitespace())
        .unwrap_or(s.len());
    &s[start..]
}

fn read_full(f: &mut impl Read, buf: &mut [u8]) -> io::Result<usize> {
    let mut n = 0;
    while n < buf.len() {
        match f.read(&mut buf[n..]) {
            Ok(0) => break,
            Ok(k) => n += k,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(n)
}

/// `strtoul(s, &end, 0)` requiring the whole string to be consumed: leading
/// blanks, optional sign, `0x` hex, leading-`0` octal or decimal. An empty
/// string parses as 0, as in C. Values wrap like C's conversion to `int`.
pub fn parse_strtoul(s: &[u8]) -> Option<u64> {
    let s = skip_space(s);
    let (neg, s) = match s.first() {
        Some(b'-') => (true, &s[1..]),
        Some(b'+') => (false, &s[1..]),
        _ => (false, s),
    };
    let (radix, digits) = if (s.starts_with(b"0x") || s.starts_with(b"0X"))
        && s.get(2).is_some_and(|b| b.is_ascii_hexdigit())
    {
        (16, &s[2..])
    } else if s.starts_with(b"0") {
        (8, s)
    } else {
        (10, s)
    };
    let mut value: u64 = 0;
    for &b in digits {
        let d = (b as char).to_digit(radix)?;
        value = value
            .wrapping_mul(u64::from(radix))
            .wrapping_add(u64::from(d));
    }
    Some(if neg { value.wrapping_neg() } else { value })
}

/// What came back for one request.
#[derive(Debug)]
pub enum Received {
    /// Reply packets (complete or not).
    Reply(Reply),
    /// Nothing within the timeout.
    Nothing,
    /// A datagram from the UML that is not a v2 reply packet (e.g. the
    /// header-less version-0 error text).
    NotAReply(Vec<u8>),
    /// A socket error.
    Error(io::Error),
}

/// Whether a datagram from `sender` comes from the socket at `target`.
fn from_target(sender: &SocketAddr, target: &Path) -> bool {
    let Some(path) = sender.as_pathname() else {
        return false;
    };
    if path == target || path.is_relative() {
        return true;
    }
    match (std::fs::metadata(path), std::fs::metadata(target)) {
        (Ok(a), Ok(b)) => a.dev() == b.dev() && a.ino() == b.ino(),
        _ => false,
    }
}

/// Collects the packets of one reply, waiting at most `timeout` for each.
/// Datagrams from other senders are discarded.
pub fn receive(sock: &UnixDatagram, target: &Path, timeout: Duration) -> Received {
    let mut reply = Reply::default();
    let mut buf = [0u8; MAX_REPLY_SIZE + 1];
    let mut deadline = Instant::now() + timeout;
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() || sock.set_read_timeout(Some(left)).is_err() {
            break;
        }
        let (n, sender) = match sock.recv_from(&mut buf) {
            Ok(x) => x,
            Err(e)
                if matches!(
                    e.kind(),
                    io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
                ) =>
            {
                break
            }
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Received::Error(e),
        };
        if !from_target(&sender, target) {
            continue;
        }
        match mconsole::decode_reply(&buf[..n]) {
            Ok(packet) => {
                if reply.push(&packet) {
                    return Received::Reply(reply);
                }
                deadline = Instant::now() + timeout;
            }
            Err(_) if reply.packets == 0 => return Received::NotAReply(buf[..n].to_vec()),
            Err(_) => break,
        }
    }
    if reply.packets == 0 {
        Received::Nothing
    } else {
        Received::Reply(reply)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn strtoul_like_c() {
        assert_eq!(parse_strtoul(b"0x1"), Some(1));
        assert_eq!(parse_strtoul(b"010"), Some(8));
        assert_eq!(parse_strtoul(b"99"), Some(99));
        assert_eq!(parse_strtoul(b""), Some(0));
        assert_eq!(parse_strtoul(b"abc"), None);
        assert_eq!(parse_strtoul(b"1x"), None);
        assert_eq!(parse_strtoul(b"08"), None);
        assert_eq!(parse_strtoul(b"-1"), Some(u64::MAX));
    }

    #[test]
    fn secs_formatting() {
        assert_eq!(secs(Duration::from_secs(5)), "5");
        assert_eq!(secs(Duration::from_millis(500)), "0.5");
    }

    fn pair() -> (tempfile::TempDir, UnixDatagram, PathBuf, UnixDatagram) {
        let dir = tempfile::tempdir().unwrap();
        let server_path = dir.path().join("mconsole");
        let server = UnixDatagram::bind(&server_path).unwrap();
        let client = UnixDatagram::bind(dir.path().join("client")).unwrap();
        (dir, server, server_path, client)
    }

    fn client_addr(dir: &tempfile::TempDir) -> PathBuf {
        dir.path().join("client")
    }

    #[test]
    fn receive_collects_until_more_is_zero() {
        let (dir, server, path, client) = pair();
        for p in mconsole::encode_reply(0, false, &vec![b'a'; 1200]) {
            server.send_to(&p, client_addr(&dir)).unwrap();
        }
        match receive(&client, &path, Duration::from_secs(2)) {
            Received::Reply(r) => {
                assert!(r.complete);
                assert_eq!(r.packets, 3);
                assert_eq!(r.text.len(), 1200);
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn receive_times_out_on_an_unfinished_reply() {
        let (dir, server, path, client) = pair();
        server
            .send_to(
                &mconsole::encode_reply_packet(0, true, b"part"),
                client_addr(&dir),
            )
            .unwrap();
        let start = Instant::now();
        match receive(&client, &path, Duration::from_millis(300)) {
            Received::Reply(r) => {
                assert!(!r.complete);
                assert_eq!(r.text, b"part");
            }
            other => panic!("{other:?}"),
        }
        assert!(start.elapsed() < Duration::from_secs(5));
        assert!(matches!(
            receive(&client, &path, Duration::from_millis(100)),
            Received::Nothing
        ));
    }

    #[test]
    fn receive_ignores_strangers_and_flags_non_replies() {
        let (dir, server, path, client) = pair();
        let stranger = UnixDatagram::bind(dir.path().join("stranger")).unwrap();
        stranger
            .send_to(
                &mconsole::encode_reply_packet(1, false, b"forged"),
                client_addr(&dir),
            )
            .unwrap();
        let unbound = UnixDatagram::unbound().unwrap();
        unbound
            .send_to(
                &mconsole::encode_reply_packet(1, false, b"forged"),
                client_addr(&dir),
            )
            .unwrap();
        server
            .send_to(mconsole::UNVERSIONED_ANSWER, client_addr(&dir))
            .unwrap();
        match receive(&client, &path, Duration::from_secs(2)) {
            Received::NotAReply(t) => assert_eq!(t, mconsole::UNVERSIONED_ANSWER),
            other => panic!("{other:?}"),
        }
    }
}
