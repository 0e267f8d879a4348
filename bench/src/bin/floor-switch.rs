//! `floor-switch -unix CTL`: the least work a switch process can do per
//! frame on this machine, to measure what any `uml_switch` could reach in
//! `bench-switch` (run it as `scripts/bench-switch --ours
//! target/x86_64-unknown-linux-gnu/release/floor-switch`).
//!
//! It is NOT a switch to use: it takes well-formed v1/v3 requests only
//! (each read with a 1 s timeout, blocking everything else), never removes
//! a port, never ages a MAC, prints nothing per event, ignores signals'
//! clean-up (SIGTERM just ends it). What it keeps is the per-frame path
//! every switch needs: one `recvmmsg` batch from the shared data socket,
//! the sender found by its address, the destination by a MAC table (learn
//! source, flood broadcast and unknown), one `sendmmsg` per destination on
//! sockets connected to the ports, and `uml_switch`'s retry of full queues
//! (so that loss compares). Nothing else: no epoll while frames flow, no
//! counters, no bounds.

use std::collections::HashMap;
use std::hash::BuildHasherDefault;
use std::io::{Read, Write};
use std::os::fd::{AsFd, OwnedFd};
use std::os::linux::net::SocketAddrExt;
use std::os::unix::net::{SocketAddr, UnixDatagram, UnixListener, UnixStream};
use std::process::ExitCode;
use std::time::Duration;

use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
use uml_common::switch::{data_socket_name, parse_request, AddrKey, Parsed, SockAddrUn};
use uml_common::sys::mmsg::{RecvBatch, SendBatch};
use uml_switch::core::MacHasher;

type Fast = BuildHasherDefault<MacHasher>;

struct Port {
    sock: OwnedFd,
    /// Kept open: closing it would end the port for the client.
    _control: UnixStream,
}

fn mac(b: &[u8]) -> u64 {
    let mut w = [0u8; 8];
    w[..6].copy_from_slice(&b[..6]);
    u64::from_le_bytes(w)
}

/// Reads one request (1 s bound) and returns the client's data address.
fn read_request(conn: &mut UnixStream) -> Option<SockAddrUn> {
    conn.set_nonblocking(false).ok()?;
    conn.set_read_timeout(Some(Duration::from_secs(1))).ok()?;
    let mut buf = Vec::new();
    let mut chunk = [0u8; 256];
    loop {
        let n = conn.read(&mut chunk).ok()?;
        if n == 0 {
            return None;
        }
        buf.extend_from_slice(&chunk[..n]);
        match parse_request(&buf) {
            Parsed::NeedMore => {}
            Parsed::Reject { .. } | Parsed::Dump { .. } => return None,
            Parsed::Port { addr, .. } => return Some(addr),
        }
    }
}

fn connect_to(addr: &SockAddrUn) -> Option<OwnedFd> {
    let sock = UnixDatagram::unbound().ok()?;
    sock.connect_addr(&addr.socket_addr()?).ok()?;
    sock.set_nonblocking(true).ok()?;
    Some(OwnedFd::from(sock))
}

fn run(ctl: &str) -> Result<(), String> {
    let _ = std::fs::remove_file(ctl);
    let listener = UnixListener::bind(ctl).map_err(|e| format!("{ctl}: {e}"))?;
    listener
        .set_nonblocking(true)
        .map_err(|e| format!("{ctl}: {e}"))?;
    let name = data_socket_name(std::process::id(), 1);
    let data = SocketAddr::from_abstract_name(name)
        .and_then(|a| UnixDatagram::bind_addr(&a))
        .map_err(|e| format!("data socket: {e}"))?;
    data.set_nonblocking(true)
        .map_err(|e| format!("data socket: {e}"))?;
    let reply = SockAddrUn::abstract_name(&name);
    println!("floor-switch attached to unix socket '{ctl}'");

    let mut ports: Vec<Port> = Vec::new();
    let mut by_addr: HashMap<AddrKey, u32, Fast> = HashMap::default();
    let mut macs: HashMap<u64, u32, Fast> = HashMap::default();
    let mut rx = RecvBatch::new(64, 1514);
    let mut tx = SendBatch::new(256, 1514);
    tx.set_eagain_patience(Duration::from_micros(500), Duration::from_millis(50));
    loop {
        let n = rx
            .recv(data.as_fd())
            .map_err(|e| format!("recvmmsg: {e}"))?;
        if n == 0 {
            // Idle: wait for frames or a new port (1 ms bound).
            let mut fds = [
                PollFd::new(listener.as_fd(), PollFlags::POLLIN),
                PollFd::new(data.as_fd(), PollFlags::POLLIN),
            ];
            let _ = poll(&mut fds, PollTimeout::from(1u8));
            while let Ok((mut conn, _)) = listener.accept() {
                let Some(addr) = read_request(&mut conn) else {
                    continue;
                };
                let Some(sock) = connect_to(&addr) else {
                    continue;
                };
                if conn.write_all(&reply.0).is_err() {
                    continue;
                }
                by_addr.insert(addr.key(), ports.len() as u32);
                ports.push(Port {
                    sock,
                    _control: conn,
                });
            }
            continue;
        }
        for i in 0..n {
            let Some(&from) = by_addr.get(&AddrKey::from_sockaddr(rx.sender(i))) else {
                continue;
            };
            let f = rx.frame(i);
            if f.len() < 14 {
                continue;
            }
            let (dst, src) = (mac(&f[0..6]), mac(&f[6..12]));
            if src & 1 == 0 {
                macs.insert(src, from);
            }
            let known = if dst & 1 == 0 { macs.get(&dst) } else { None };
            match known {
                Some(&to) => {
                    if to != from {
                        if tx.is_full() {
                            tx.flush(data.as_fd(), |_| {});
                        }
                        tx.push_connected(f, ports[to as usize].sock.as_fd(), to);
                    }
                }
                None => {
                    for (to, p) in ports.iter().enumerate() {
                        if to as u32 != from {
                            if tx.is_full() {
                                tx.flush(data.as_fd(), |_| {});
                            }
                            tx.push_connected(f, p.sock.as_fd(), to as u32);
                        }
                    }
                }
            }
        }
        tx.flush(data.as_fd(), |_| {});
    }
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().collect();
    let ctl = match args.iter().position(|a| a == "-unix") {
        Some(i) if i + 1 < args.len() => args[i + 1].clone(),
        _ => {
            eprintln!("usage: floor-switch -unix CTL   (a benchmark floor, not a switch)");
            return ExitCode::from(2);
        }
    };
    match run(&ctl) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("floor-switch: {e}");
            ExitCode::FAILURE
        }
    }
}
