//! For the tests of the switch's pcap input port (`--pcap-port`,
//! `docs/pcap-port.md`): the helper program the switch runs, a namespace
//! with a veth pair, a sender of hand-made frames on the far end of the
//! pair, and UDP-in-IPv4 frames.

use std::ffi::OsString;
use std::os::fd::{AsRawFd, OwnedFd};
use std::path::PathBuf;
use std::time::{Duration, Instant};

use nix::sys::socket::{recv, send, MsgFlags};

use crate::NetNs;

/// The variable that tells the switch where its capture helper is.
pub const HELPER_ENV: &str = uml_common::pcap_port::HELPER_ENV;

/// This build's capture helper, `uml_switch_pcap`.
///
/// # Panics
///
/// When it has not been built.
pub fn helper() -> PathBuf {
    crate::workspace_bin("uml_switch_pcap")
}

/// `(HELPER_ENV, helper())`, for [`crate::switch_client::NsSwitch::start_with_env`].
pub fn helper_env() -> (&'static str, OsString) {
    (HELPER_ENV, helper().into_os_string())
}

/// A namespace with the veth pair `va` (the far end, where frames are
/// sent) – `vb` (the switch's pcap port), both up, IPv6 off (no host
/// chatter).
///
/// # Panics
///
/// When `ip` fails.
pub fn veth_namespace(tag: &str) -> NetNs {
    let ns = NetNs::new(tag);
    for key in [
        "net.ipv6.conf.all.disable_ipv6",
        "net.ipv6.conf.default.disable_ipv6",
    ] {
        ns.sysctl(key, "1")
            .unwrap_or_else(|e| panic!("sysctl {key}: {e}"));
    }
    for args in [
        &["link", "add", "va", "type", "veth", "peer", "name", "vb"][..],
        &["link", "set", "va", "up"],
        &["link", "set", "vb", "up"],
    ] {
        let out = ns.ip(args);
        assert!(out.success(), "ip {args:?}: {out}");
    }
    ns
}

/// An `AF_PACKET` socket on one end of the veth pair: what it sends
/// crosses to the other end, as frames from a host on that wire.
#[derive(Debug)]
pub struct Wire {
    fd: OwnedFd,
}

/// The virtio-net header `uml_common::sys::packet` sockets carry: all
/// zero for a complete frame.
const VNET_HDR: [u8; 10] = [0; 10];

impl Wire {
    /// Opens it on `ifname` in `ns`.
    ///
    /// # Panics
    ///
    /// When it cannot be opened.
    pub fn open(ns: &NetNs, ifname: &str) -> Wire {
        let s = ns
            .run_in(|| uml_common::sys::packet::open(ifname))
            .unwrap_or_else(|e| panic!("packet socket on {ifname}: {e}"));
        Wire { fd: s.fd }
    }

    /// Sends `frame`.
    ///
    /// # Panics
    ///
    /// When it cannot be sent.
    pub fn send(&self, frame: &[u8]) {
        let mut b = VNET_HDR.to_vec();
        b.extend_from_slice(frame);
        let n = send(self.fd.as_raw_fd(), &b, MsgFlags::empty())
            .unwrap_or_else(|e| panic!("sending {} bytes on the wire: {e}", frame.len()));
        assert_eq!(n, b.len());
    }

    /// The frames that arrive within `quiet` (bounded wait), without the
    /// frames it sent itself.
    ///
    /// # Panics
    ///
    /// When receiving fails.
    pub fn drain(&self, quiet: Duration) -> Vec<Vec<u8>> {
        let deadline = Instant::now() + quiet;
        let mut buf = vec![0u8; 70_000];
        let mut got = Vec::new();
        while Instant::now() < deadline {
            match recv(self.fd.as_raw_fd(), &mut buf, MsgFlags::MSG_DONTWAIT) {
                Ok(n) if n >= VNET_HDR.len() => got.push(buf[VNET_HDR.len()..n].to_vec()),
                Ok(_) => {}
                Err(nix::errno::Errno::EAGAIN) => std::thread::sleep(Duration::from_millis(5)),
                Err(e) => panic!("receiving on the wire: {e}"),
            }
        }
        got
    }
}

fn fold(mut acc: u32) -> u16 {
    while acc >> 16 != 0 {
        acc = (acc & 0xffff) + (acc >> 16);
    }
    acc as u16
}

/// A UDP datagram in IPv4 in an Ethernet frame from `src` (`src_ip`,
/// port 40000) to `dst` (`dst_ip`, `port`), with a valid IP header
/// checksum and no UDP checksum (0, allowed for IPv4), so that a real
/// kernel takes it.
pub fn udp_frame(
    dst: [u8; 6],
    src: [u8; 6],
    src_ip: [u8; 4],
    dst_ip: [u8; 4],
    port: u16,
    payload: &[u8],
) -> Vec<u8> {
    let mut f = dst.to_vec();
    f.extend_from_slice(&src);
    f.extend_from_slice(&[0x08, 0x00, 0x45, 0]);
    f.extend_from_slice(&((28 + payload.len()) as u16).to_be_bytes());
    f.extend_from_slice(&[0, 1, 0x40, 0, 64, 17, 0, 0]);
    f.extend_from_slice(&src_ip);
    f.extend_from_slice(&dst_ip);
    let sum: u32 = f[14..34]
        .chunks(2)
        .map(|c| u32::from(u16::from_be_bytes([c[0], c[1]])))
        .sum();
    let c = !fold(sum);
    f[24..26].copy_from_slice(&c.to_be_bytes());
    f.extend_from_slice(&40000u16.to_be_bytes());
    f.extend_from_slice(&port.to_be_bytes());
    f.extend_from_slice(&((8 + payload.len()) as u16).to_be_bytes());
    f.extend_from_slice(&[0, 0]);
    f.extend_from_slice(payload);
    f
}

/// An ICMP echo request in IPv4 in an Ethernet frame from `src`
/// (`src_ip`) to `dst` (`dst_ip`), with valid checksums.
pub fn icmp_echo_frame(
    dst: [u8; 6],
    src: [u8; 6],
    src_ip: [u8; 4],
    dst_ip: [u8; 4],
    seq: u16,
) -> Vec<u8> {
    let mut f = udp_frame(dst, src, src_ip, dst_ip, 0, b"pcap port test");
    // Protocol 1; the datagram is 8 bytes of ICMP header + payload, as
    // the UDP header + payload was.
    f[23] = 1;
    f[24..26].copy_from_slice(&[0, 0]);
    let sum: u32 = f[14..34]
        .chunks(2)
        .map(|c| u32::from(u16::from_be_bytes([c[0], c[1]])))
        .sum();
    let c = !fold(sum);
    f[24..26].copy_from_slice(&c.to_be_bytes());
    f[34..42].copy_from_slice(&[8, 0, 0, 0, 0x12, 0x34, 0, 0]);
    f[40..42].copy_from_slice(&seq.to_be_bytes());
    let mut icmp = f[34..].to_vec();
    if icmp.len() % 2 == 1 {
        icmp.push(0);
    }
    let sum: u32 = icmp
        .chunks(2)
        .map(|c| u32::from(u16::from_be_bytes([c[0], c[1]])))
        .sum();
    let c = !fold(sum);
    f[36..38].copy_from_slice(&c.to_be_bytes());
    f
}

/// The pid of a running capture helper in `ns` whose command line
/// contains `needle`, if any.
pub fn helper_pid(ns: &NetNs, needle: &str) -> Option<u32> {
    ns.pids().into_iter().find(|p| {
        std::fs::read(format!("/proc/{p}/cmdline")).is_ok_and(|c| {
            let c = String::from_utf8_lossy(&c).replace('\0', " ");
            c.contains("uml_switch_pcap --fd ") && c.contains(needle)
        })
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn udp_frames_have_a_valid_ip_checksum() {
        let f = udp_frame([1; 6], [2; 6], [10, 0, 0, 99], [10, 0, 0, 1], 5001, b"hi");
        assert_eq!(f.len(), 14 + 20 + 8 + 2);
        let sum: u32 = f[14..34]
            .chunks(2)
            .map(|c| u32::from(u16::from_be_bytes([c[0], c[1]])))
            .sum();
        assert_eq!(fold(sum), 0xffff);
        assert_eq!(&f[36..38], &5001u16.to_be_bytes());
        assert_eq!(&f[f.len() - 2..], b"hi");
    }

    #[test]
    fn echo_requests_have_valid_checksums() {
        let f = icmp_echo_frame([1; 6], [2; 6], [10, 0, 0, 99], [10, 0, 0, 1], 3);
        assert_eq!((f[23], f[34], &f[40..42]), (1, 8, &[0u8, 3][..]));
        for range in [14..34, 34..f.len()] {
            let mut b = f[range].to_vec();
            if b.len() % 2 == 1 {
                b.push(0);
            }
            let sum: u32 = b
                .chunks(2)
                .map(|c| u32::from(u16::from_be_bytes([c[0], c[1]])))
                .sum();
            assert_eq!(fold(sum), 0xffff);
        }
    }
}
