//! `uml_switch_nat`: the NAT port of `uml_switch` (`docs/nat.md`).
//!
//! `uml_switch --nat[=OPTIONS]` starts this program with one end of a
//! `SOCK_SEQPACKET` socket pair as its standard input, a second pair as
//! its standard output (the control channel: `add RULE` / `remove HOST`
//! requests for host forwards, answered `ok` or `error: MESSAGE`) and the
//! options as its only argument. It runs one libslirp instance — the user-mode
//! TCP/IP stack of QEMU's `-netdev user`, slirp4netns and podman — that is
//! the gateway, DHCP server and DNS forwarder of the virtual network
//! (10.0.2.0/24 by default) and makes the guests' TCP and UDP connections
//! with ordinary sockets of the host, so that no root and no `CAP_NET_*`
//! is needed. One Ethernet frame per message, both ways, as on a bess
//! port; the first message it sends is [`uml_common::nat::READY`], once
//! every host forward listens. It exits at the socket's end of file (the
//! switch ended).
//!
//! Why a program of its own: libslirp is C, has no static archive and
//! needs glib, while the switch is a static-pie program; and a process of
//! its own keeps libslirp's C code (parsing every guest's packets) out of
//! the switch's address space. The `unsafe` code is in `sys.rs` alone.
#![deny(unsafe_code)]

mod error;
#[allow(unsafe_code)]
mod sys;

use std::ffi::OsString;
use std::io;
use std::os::fd::{AsFd, BorrowedFd};
use std::time::Duration;

use nix::errno::Errno;
use nix::sys::signal::{SigSet, SigmaskHow};
use nix::sys::socket::{getsockopt, recv, send, sockopt, MsgFlags, SockType};
use uml_common::nat::{self, NatConfig};

pub use error::Error;

/// The largest frame taken from the switch (its largest `--mtu` plus the
/// Ethernet header, and then some).
const MAX_FRAME: usize = 65_536 + 64;
/// Frames handed to the stack per wake-up before it polls its sockets
/// again.
const BURST: usize = 256;
/// The longest sleep without looking at the clock.
const MAX_WAIT: Duration = Duration::from_secs(1);

/// Runs the helper; the exit status.
pub fn uumain(args: impl IntoIterator<Item = OsString>) -> i32 {
    match run(args) {
        Ok(()) => 0,
        Err(e) => {
            eprintln!("uml_switch_nat: {e}");
            1
        }
    }
}

fn run(args: impl IntoIterator<Item = OsString>) -> Result<(), Error> {
    let args: Vec<OsString> = args.into_iter().skip(1).collect();
    let text = match args.as_slice() {
        [] => String::new(),
        [one] => one.to_str().ok_or(Error::Usage)?.to_string(),
        _ => return Err(Error::Usage),
    };
    let config = nat::parse(&text)?;
    // The switch blocks the signals it handles; its child must not keep
    // them blocked (a SIGTERM for the helper would wait for ever).
    let _ = nix::sys::signal::sigprocmask(SigmaskHow::SIG_SETMASK, Some(&SigSet::empty()), None);
    // A terminal's ^C or hang-up is for the switch, which then closes
    // the socket: the helper ends at that end of file, after the switch
    // has cleaned up (SIGTERM still ends it at once).
    for sig in [libc::SIGINT, libc::SIGHUP] {
        let _ = uml_common::sys::process::set_disposition(
            sig,
            uml_common::sys::process::Disposition::Ignore,
        );
    }
    let _ = uml_common::sys::process::close_fds_from(3, &[]);
    let stdin = io::stdin();
    let sock = stdin.as_fd();
    match getsockopt(&sock, sockopt::SockType) {
        Ok(SockType::SeqPacket) => {}
        _ => return Err(Error::NotASocket),
    }
    // The control channel, when the switch gave one (run by hand: none).
    let stdout = io::stdout();
    let control = Some(stdout.as_fd())
        .filter(|c| matches!(getsockopt(c, sockopt::SockType), Ok(SockType::SeqPacket)));
    serve(config, sock, control)
}

/// Starts the stack on `sock`, says so, and relays frames until the end
/// of file.
fn serve(
    mut config: NatConfig,
    sock: BorrowedFd<'_>,
    control: Option<BorrowedFd<'_>>,
) -> Result<(), Error> {
    let mut stack = sys::Stack::new(&config, sock).map_err(Error::Stack)?;
    for fwd in &config.hostfwd {
        stack
            .add_hostfwd(fwd)
            .map_err(|source| Error::HostFwd { fwd: *fwd, source })?;
    }
    send(sock.as_fd().as_raw(), nat::READY, MsgFlags::empty())
        .map_err(|e| Error::Socket(e.into()))?;
    let mut buf = vec![0u8; MAX_FRAME];
    loop {
        let mut fds = vec![sock];
        fds.extend(control);
        let ready = stack.poll(&fds, MAX_WAIT).map_err(Error::Socket)?;
        if ready & 2 != 0 {
            if let Some(c) = control {
                if !answer_control(&mut stack, &mut config, c) {
                    // The switch closed it: it is ending.
                    return Ok(());
                }
            }
        }
        let readable = ready & 1 != 0;
        if let (_, Some(e)) = stack.take_send_trouble() {
            if matches!(e.raw_os_error(), Some(libc::EPIPE | libc::ECONNRESET)) {
                return Ok(());
            }
            eprintln!(
                "uml_switch_nat: sending to the switch: {}",
                uml_common::cli::strerror(&e)
            );
        }
        if !readable {
            continue;
        }
        for _ in 0..BURST {
            match recv(sock.as_fd().as_raw(), &mut buf, MsgFlags::MSG_DONTWAIT) {
                // The switch never sends an empty frame (runts are
                // dropped): this is its end of file.
                Ok(0) => return Ok(()),
                Ok(n) => stack.input(&buf[..n]),
                Err(Errno::EAGAIN | Errno::EINTR) => break,
                Err(Errno::ECONNRESET) => return Ok(()),
                Err(e) => return Err(Error::Socket(e.into())),
            }
        }
    }
}

/// Answers one control request (`add RULE`, `remove HOST`); false at the
/// channel's end of file.
fn answer_control(stack: &mut sys::Stack, config: &mut NatConfig, c: BorrowedFd<'_>) -> bool {
    let mut buf = [0u8; 1024];
    let n = match recv(c.as_raw(), &mut buf, MsgFlags::MSG_DONTWAIT) {
        Ok(0) => return false,
        Ok(n) => n,
        Err(Errno::EAGAIN | Errno::EINTR) => return true,
        Err(_) => return false,
    };
    let request = String::from_utf8_lossy(&buf[..n]).into_owned();
    let reply = match control(stack, config, &request) {
        Ok(()) => "ok".to_string(),
        Err(e) => format!("error: {e}"),
    };
    let _ = send(c.as_raw(), reply.as_bytes(), MsgFlags::MSG_DONTWAIT);
    true
}

/// Carries out a control request.
fn control(stack: &mut sys::Stack, config: &mut NatConfig, request: &str) -> Result<(), String> {
    match request.split_once(' ') {
        Some(("add", rule)) => {
            let f = nat::parse_hostfwd(rule, config.dhcp_start).map_err(|e| e.to_string())?;
            config.check_forward(&f).map_err(|e| e.to_string())?;
            stack.add_hostfwd(&f).map_err(|e| {
                format!(
                    "hostfwd={f}: cannot listen on the host: {}",
                    uml_common::cli::strerror(&e)
                )
            })?;
            config.hostfwd.push(f);
            Ok(())
        }
        Some(("remove", host)) => {
            let (proto, addr, port) = nat::parse_host_side(host).map_err(|e| e.to_string())?;
            let i = config
                .hostfwd
                .iter()
                .position(|f| f.proto == proto && f.host_addr == addr && f.host_port == port)
                .ok_or_else(|| format!("no forward of host {proto} {addr}:{port}"))?;
            if !stack.remove_hostfwd(proto, addr, port) {
                return Err(format!(
                    "libslirp has no forward of host {proto} {addr}:{port}"
                ));
            }
            config.hostfwd.remove(i);
            Ok(())
        }
        _ => Err(format!("unknown request '{request}'")),
    }
}

/// `as_raw_fd` for nix's raw-descriptor socket calls.
trait AsRaw {
    fn as_raw(&self) -> std::os::fd::RawFd;
}

impl AsRaw for BorrowedFd<'_> {
    fn as_raw(&self) -> std::os::fd::RawFd {
        std::os::fd::AsRawFd::as_raw_fd(self)
    }
}
