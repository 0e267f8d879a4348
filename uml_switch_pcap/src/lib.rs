//! `uml_switch_pcap --fd N IFNAME [FILTER]`: uml_switch's capture helper
//! for its pcap input port (`--pcap-port`, `port add pcap`;
//! `docs/pcap-port.md`). uml_switch runs it with one end of a
//! `SOCK_SEQPACKET` socketpair on descriptor N; it
//!
//! 1. opens IFNAME with libpcap (promiscuous, immediate mode; this needs
//!    `CAP_NET_RAW`), checks that its frames are Ethernet frames and sets
//!    the BPF filter FILTER (pcap-filter(7); none: every frame);
//! 2. drops what it no longer needs: as root it becomes `nobody` (no
//!    supplementary groups), then it empties its capability sets and sets
//!    no-new-privileges — the open capture keeps working;
//! 3. sends its status (`ok`, or `error: MESSAGE` and exits 1), then every
//!    frame it captures, one message each (frames that libpcap cut
//!    short are not sent);
//! 4. exits 0 when the switch closes its end.
//!
//! It never reads from the socket and never writes to the interface: the
//! port is read-only. It is linked dynamically (libpcap has no usable
//! static archive), which is why it is a program of its own.

// Unsafe code only in `sys` (one system call).
#![deny(unsafe_code)]

mod error;
mod sys;

pub use error::Error;

use std::ffi::OsString;
use std::os::fd::{AsFd, OwnedFd, RawFd};

use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
use nix::sys::socket::{send, MsgFlags};
use pcap::{Active, Capture, Linktype};
use uml_common::pcap_port::{status_error, STATUS_OK};

/// The helper's name in messages.
pub const PROG: &str = "uml_switch_pcap";
/// Largest frame captured (longer ones are cut by libpcap, then skipped).
const SNAPLEN: i32 = 65_535;
/// Frames read per wake-up before looking at the socket again.
const BURST: usize = 256;

/// The parsed command line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Args {
    /// The switch's socket.
    pub fd: RawFd,
    /// The interface.
    pub ifname: String,
    /// The filter expression, if any.
    pub filter: Option<String>,
}

/// Parses `--fd N IFNAME [FILTER]` (without `argv[0]`).
pub fn parse_args(args: &[OsString]) -> Result<Args, Error> {
    let text: Vec<&str> = args
        .iter()
        .map(|a| {
            a.to_str()
                .ok_or_else(|| Error::Usage("arguments must be UTF-8".into()))
        })
        .collect::<Result<_, _>>()?;
    match text.as_slice() {
        ["--fd", n, ifname, rest @ ..] if rest.len() <= 1 => {
            let fd = n
                .parse::<RawFd>()
                .ok()
                .filter(|&n| n > 2)
                .ok_or_else(|| Error::Usage(format!("bad descriptor '{n}'")))?;
            if ifname.is_empty() {
                return Err(Error::Usage("empty interface name".into()));
            }
            Ok(Args {
                fd,
                ifname: (*ifname).to_string(),
                filter: rest
                    .first()
                    .filter(|f| !f.is_empty())
                    .map(|f| (*f).to_string()),
            })
        }
        _ => Err(Error::Usage("wrong arguments".into())),
    }
}

/// Opens the capture and sets its filter.
fn open(args: &Args) -> Result<Capture<Active>, Error> {
    let fail = |e: pcap::Error| Error::Open {
        ifname: args.ifname.clone(),
        why: e.to_string(),
    };
    let mut cap = Capture::from_device(args.ifname.as_str())
        .map_err(fail)?
        .promisc(true)
        .immediate_mode(true)
        .snaplen(SNAPLEN)
        .open()
        .map_err(fail)?;
    let linktype = cap.get_datalink();
    if linktype != Linktype::ETHERNET {
        return Err(Error::NotEthernet {
            ifname: args.ifname.clone(),
            linktype: linktype.0,
        });
    }
    if let Some(filter) = &args.filter {
        cap.filter(filter, true).map_err(|e| Error::Filter {
            filter: filter.clone(),
            why: e.to_string(),
        })?;
    }
    cap.setnonblock().map_err(fail)
}

/// Gives up root (for `nobody`) and every capability.
fn drop_privileges() -> Result<(), Error> {
    use nix::unistd::{getuid, setgroups, setresgid, setresuid, Gid, Uid, User};
    let fail = |what: &str, e: &dyn std::fmt::Display| Error::Drop(format!("{what}: {e}"));
    if getuid().is_root() || nix::unistd::geteuid().is_root() {
        let (uid, gid) = match User::from_name("nobody") {
            Ok(Some(u)) => (u.uid, u.gid),
            _ => (Uid::from_raw(65_534), Gid::from_raw(65_534)),
        };
        setgroups(&[]).map_err(|e| fail("setgroups", &e))?;
        setresgid(gid, gid, gid).map_err(|e| fail("setresgid", &e))?;
        setresuid(uid, uid, uid).map_err(|e| fail("setresuid", &e))?;
    }
    sys::clear_capabilities().map_err(|e| fail("capset", &e))?;
    nix::sys::prctl::set_no_new_privs().map_err(|e| fail("no_new_privs", &e))?;
    Ok(())
}

/// Sends `message` to the switch (blocking: a busy switch slows the
/// helper down, and libpcap's buffer takes the slack). `Ok(false)`: the
/// switch is gone.
fn deliver(sock: &OwnedFd, message: &[u8]) -> Result<bool, Error> {
    loop {
        match send(
            std::os::fd::AsRawFd::as_raw_fd(sock),
            message,
            MsgFlags::MSG_NOSIGNAL,
        ) {
            Ok(_) => return Ok(true),
            Err(nix::errno::Errno::EINTR) => continue,
            Err(
                nix::errno::Errno::EPIPE
                | nix::errno::Errno::ECONNRESET
                | nix::errno::Errno::ENOTCONN,
            ) => return Ok(false),
            // Longer than the socket takes: not a frame the switch takes.
            Err(nix::errno::Errno::EMSGSIZE) => return Ok(true),
            Err(e) => return Err(Error::Socket(e)),
        }
    }
}

/// Captures and forwards until the switch closes the socket.
fn forward(args: &Args, mut cap: Capture<Active>, sock: &OwnedFd) -> Result<(), Error> {
    let fail = |e: pcap::Error| Error::Capture {
        ifname: args.ifname.clone(),
        why: e.to_string(),
    };
    loop {
        let (cap_ready, sock_gone) = {
            let mut fds = [
                PollFd::new(cap.as_fd(), PollFlags::POLLIN),
                // Never written to: only its hang-up (or an error) shows.
                PollFd::new(sock.as_fd(), PollFlags::empty()),
            ];
            match poll(&mut fds, PollTimeout::NONE) {
                Ok(_) => {}
                Err(nix::errno::Errno::EINTR) => continue,
                Err(e) => return Err(Error::Socket(e)),
            }
            let revents = |i: usize| fds[i].revents().unwrap_or(PollFlags::empty());
            (
                revents(0).intersects(PollFlags::POLLIN | PollFlags::POLLERR),
                !revents(1).is_empty(),
            )
        };
        if sock_gone {
            return Ok(());
        }
        if !cap_ready {
            continue;
        }
        for _ in 0..BURST {
            let packet = match cap.next_packet() {
                Ok(p) => p,
                Err(pcap::Error::TimeoutExpired) => break,
                Err(e) => return Err(fail(e)),
            };
            if packet.header.caplen < packet.header.len {
                continue;
            }
            if !deliver(sock, packet.data)? {
                return Ok(());
            }
        }
    }
}

/// The program: returns its exit status.
pub fn uumain(argv: &[OsString]) -> i32 {
    let args = match parse_args(argv.get(1..).unwrap_or(&[])) {
        Ok(a) => a,
        Err(e) => {
            eprintln!("{PROG}: {e}");
            return 2;
        }
    };
    let sock = match uml_common::sys::fd::adopt_passed(args.fd) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("{PROG}: descriptor {}: {e}", args.fd);
            return 2;
        }
    };
    let started = open(&args).and_then(|cap| drop_privileges().map(|()| cap));
    let cap = match started {
        Ok(cap) => cap,
        Err(e) => {
            // The switch prints it.
            let _ = deliver(&sock, &status_error(&e.to_string()));
            return 1;
        }
    };
    match deliver(&sock, STATUS_OK) {
        Ok(true) => {}
        _ => return 0,
    }
    match forward(&args, cap, &sock) {
        Ok(()) => 0,
        Err(e) => {
            eprintln!("{PROG}: {e}");
            1
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(args: &[&str]) -> Result<Args, Error> {
        parse_args(&args.iter().map(OsString::from).collect::<Vec<_>>())
    }

    #[test]
    fn arguments() {
        assert_eq!(
            p(&["--fd", "5", "vb", "udp port 9"]).unwrap(),
            Args {
                fd: 5,
                ifname: "vb".into(),
                filter: Some("udp port 9".into())
            }
        );
        assert_eq!(p(&["--fd", "5", "vb"]).unwrap().filter, None);
        assert_eq!(p(&["--fd", "5", "vb", ""]).unwrap().filter, None);
        for bad in [
            &[][..],
            &["--fd", "2", "vb"],
            &["--fd", "x", "vb"],
            &["--fd", "5"],
            &["--fd", "5", ""],
            &["--fd", "5", "vb", "f", "extra"],
            &["-fd", "5", "vb"],
        ] {
            assert!(p(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn a_missing_interface_is_an_open_error() {
        let args = p(&["--fd", "5", "no-such-if0"]).unwrap();
        let Err(e) = open(&args) else {
            panic!("opened a capture on a missing interface");
        };
        assert!(matches!(e, Error::Open { .. }), "{e}");
        assert!(e.to_string().contains("no-such-if0"), "{e}");
    }
}
