//! The options of the switch's NAT port (`uml_switch --nat[=OPTIONS]`,
//! `docs/nat.md`): QEMU's `-netdev user` names, comma-separated, checked
//! as a whole. The switch checks them before it starts anything; its
//! helper `uml_switch_nat`, which runs libslirp, reads the same text.
//!
//! ```text
//! net=10.0.2.0/24,host=10.0.2.2,dns=10.0.2.3,dhcpstart=10.0.2.15,
//! hostfwd=tcp::8080-:80,hostfwd=udp:127.0.0.1:5353-10.0.2.16:53,
//! restrict=on,dns=off,host-loopback=off,ipv6=on
//! ```

use std::fmt;
use std::net::Ipv4Addr;

/// The first message the helper sends the switch on their socket, once
/// its stack runs and every forward listens (`docs/nat.md` §2); frames
/// follow. A helper that fails to start prints why and exits instead.
pub const READY: &[u8] = b"uml_switch_nat ready 1";

/// libslirp's DHCP pool: this many leases from `dhcpstart` on
/// (`NB_BOOTP_CLIENTS`).
pub const DHCP_LEASES: u32 = 16;

/// A transport of a host port forward.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Proto {
    /// TCP.
    Tcp,
    /// UDP.
    Udp,
}

impl fmt::Display for Proto {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Proto::Tcp => "tcp",
            Proto::Udp => "udp",
        })
    }
}

/// A host port forward: connections to `host_addr:host_port` on the host
/// reach `guest_addr:guest_port` on the virtual network.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HostFwd {
    /// TCP or UDP.
    pub proto: Proto,
    /// The host address listened on (0.0.0.0: every address).
    pub host_addr: Ipv4Addr,
    /// The host port.
    pub host_port: u16,
    /// The guest's address.
    pub guest_addr: Ipv4Addr,
    /// The guest's port.
    pub guest_port: u16,
}

impl fmt::Display for HostFwd {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}:{}:{}-{}:{}",
            self.proto, self.host_addr, self.host_port, self.guest_addr, self.guest_port
        )
    }
}

/// The checked options of a NAT port.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NatConfig {
    /// The virtual network's address (host bits zero).
    pub net: Ipv4Addr,
    /// Its prefix length (8 to 30).
    pub prefix: u8,
    /// The gateway: the host as guests see it.
    pub host: Ipv4Addr,
    /// The DNS forwarder's address.
    pub dns: Ipv4Addr,
    /// The first address DHCP hands out ([`DHCP_LEASES`] from here).
    pub dhcp_start: Ipv4Addr,
    /// Whether DNS queries to `dns` are forwarded (`dns=off`: not).
    pub dns_forwarding: bool,
    /// Whether guests may reach the host's 127.0.0.1 through `host`
    /// (`host-loopback=off`: not).
    pub host_loopback: bool,
    /// `restrict=on`: guests reach only the virtual network (and the
    /// forwards), nothing outside.
    pub restricted: bool,
    /// Host port forwards, in order.
    pub hostfwd: Vec<HostFwd>,
    /// `ipv6=on`: IPv6 too, with QEMU's addresses ([`IPV6_PREFIX`]/64,
    /// gateway `::2`, DNS `::3`, router advertisements for SLAAC).
    pub ipv6: bool,
}

/// The IPv6 prefix of `ipv6=on` (QEMU's), a /64.
pub const IPV6_PREFIX: std::net::Ipv6Addr = std::net::Ipv6Addr::new(0xfec0, 0, 0, 0, 0, 0, 0, 0);
/// The gateway's IPv6 address.
pub const IPV6_HOST: std::net::Ipv6Addr = std::net::Ipv6Addr::new(0xfec0, 0, 0, 0, 0, 0, 0, 2);
/// The DNS forwarder's IPv6 address.
pub const IPV6_DNS: std::net::Ipv6Addr = std::net::Ipv6Addr::new(0xfec0, 0, 0, 0, 0, 0, 0, 3);

/// Why options are refused (the message names the offending word).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum NatOptionError {
    /// An option that does not exist.
    #[error("unknown option '{0}' (known: net=, host=, dns=, dhcpstart=, hostfwd=, restrict=, host-loopback=, ipv6=)")]
    Unknown(String),
    /// An option given twice that can be given once.
    #[error("'{0}=' given twice")]
    Twice(&'static str),
    /// Not an IPv4 address.
    #[error("{what}: '{value}' is not an IPv4 address")]
    Address {
        /// The option.
        what: &'static str,
        /// Its value.
        value: String,
    },
    /// `net=` that is no `ADDRESS/PREFIX` with a prefix from 8 to 30, or
    /// whose address has host bits set.
    #[error("net: '{0}' is not a network ADDRESS/PREFIX (prefix 8 to 30, host bits zero)")]
    Net(String),
    /// A network that cannot be one: loopback, multicast, 0.0.0.0/8.
    #[error("net: {0} is a reserved network (loopback, multicast or 0.0.0.0/8)")]
    Reserved(String),
    /// An address that must be in the virtual network and is not, or is
    /// its network or broadcast address.
    #[error("{what}: {addr} is not a host address of the virtual network {net}")]
    Outside {
        /// The option.
        what: &'static str,
        /// The address.
        addr: Ipv4Addr,
        /// The network, as ADDRESS/PREFIX.
        net: String,
    },
    /// Two of the virtual host's addresses are the same, or the DHCP pool
    /// holds the gateway or the DNS address.
    #[error("{0}")]
    Clash(String),
    /// The DHCP pool does not fit in the network.
    #[error("dhcpstart: {start} leaves no room for {DHCP_LEASES} leases in {net}")]
    Pool {
        /// The first address.
        start: Ipv4Addr,
        /// The network.
        net: String,
    },
    /// `on`/`off` expected.
    #[error("{what}: '{value}' is neither on nor off")]
    Switch {
        /// The option.
        what: &'static str,
        /// Its value.
        value: String,
    },
    /// A malformed `hostfwd=`.
    #[error("hostfwd: '{0}' is not [tcp|udp]:[HOSTADDR]:HOSTPORT-[GUESTADDR]:GUESTPORT (ports 1 to 65535)")]
    HostFwd(String),
    /// Two forwards of the same host port.
    #[error("hostfwd: host port {0} is forwarded twice")]
    HostFwdTwice(String),
}

/// The options after `--nat=` (empty for every default).
pub fn parse(text: &str) -> Result<NatConfig, NatOptionError> {
    let mut net: Option<(Ipv4Addr, u8)> = None;
    let mut host = None;
    let mut dns = None;
    let mut dns_forwarding = None;
    let mut dhcp_start = None;
    let mut host_loopback = None;
    let mut restricted = None;
    let mut ipv6 = None;
    let mut fwd_text = Vec::new();
    for word in text.split(',').filter(|w| !w.is_empty()) {
        let (key, value) = word
            .split_once('=')
            .ok_or_else(|| NatOptionError::Unknown(word.to_string()))?;
        match key {
            "net" => {
                if net.is_some() {
                    return Err(NatOptionError::Twice("net"));
                }
                net = Some(parse_net(value)?);
            }
            "host" => set_once(&mut host, "host", addr("host", value)?)?,
            "dns" if value == "off" || value == "on" => {
                set_once(&mut dns_forwarding, "dns", value == "on")?;
            }
            "dns" => set_once(&mut dns, "dns", addr("dns", value)?)?,
            "dhcpstart" => set_once(&mut dhcp_start, "dhcpstart", addr("dhcpstart", value)?)?,
            "restrict" => set_once(&mut restricted, "restrict", on_off("restrict", value)?)?,
            "host-loopback" => set_once(
                &mut host_loopback,
                "host-loopback",
                on_off("host-loopback", value)?,
            )?,
            "ipv6" => set_once(&mut ipv6, "ipv6", on_off("ipv6", value)?)?,
            "hostfwd" => fwd_text.push(value),
            _ => return Err(NatOptionError::Unknown(word.to_string())),
        }
    }
    let (net, prefix) = net.unwrap_or((Ipv4Addr::new(10, 0, 2, 0), 24));
    let base = u32::from(net);
    let host = host.unwrap_or(Ipv4Addr::from(base + 2));
    let dns = dns.unwrap_or(Ipv4Addr::from(base + 3));
    let dhcp_start = dhcp_start.unwrap_or(Ipv4Addr::from(base + 15));
    let shown = format!("{net}/{prefix}");
    for (what, a) in [("host", host), ("dns", dns), ("dhcpstart", dhcp_start)] {
        if !is_host_of(a, net, prefix) {
            return Err(NatOptionError::Outside {
                what,
                addr: a,
                net: shown,
            });
        }
    }
    if host == dns {
        return Err(NatOptionError::Clash(format!(
            "host and dns are the same address {host}"
        )));
    }
    let first = u32::from(dhcp_start);
    let last = first + DHCP_LEASES - 1;
    if !is_host_of(Ipv4Addr::from(last), net, prefix) || last < first {
        return Err(NatOptionError::Pool {
            start: dhcp_start,
            net: shown,
        });
    }
    for (what, a) in [("host", host), ("dns", dns)] {
        if (first..=last).contains(&u32::from(a)) {
            return Err(NatOptionError::Clash(format!(
                "{what} {a} is in the DHCP pool {dhcp_start}-{}",
                Ipv4Addr::from(last)
            )));
        }
    }
    let mut config = NatConfig {
        net,
        prefix,
        host,
        dns,
        dhcp_start,
        dns_forwarding: dns_forwarding.unwrap_or(true),
        host_loopback: host_loopback.unwrap_or(true),
        restricted: restricted.unwrap_or(false),
        hostfwd: Vec::new(),
        ipv6: ipv6.unwrap_or(false),
    };
    for t in fwd_text {
        let f = parse_hostfwd(t, dhcp_start)?;
        config.check_forward(&f)?;
        config.hostfwd.push(f);
    }
    Ok(config)
}

impl NatConfig {
    /// The network mask.
    pub fn mask(&self) -> Ipv4Addr {
        Ipv4Addr::from(mask_of(self.prefix))
    }

    /// Whether the virtual network overlaps the network `addr/prefix`
    /// (one of the host's): guests could then not reach that network.
    pub fn overlaps(&self, addr: Ipv4Addr, prefix: u8) -> bool {
        let shorter = self.prefix.min(prefix);
        let m = mask_of(shorter);
        u32::from(self.net) & m == u32::from(addr) & m
    }

    /// The forwards whose host port is below `first_unprivileged` (the
    /// namespace's `net.ipv4.ip_unprivileged_port_start`): binding them
    /// needs `CAP_NET_BIND_SERVICE`.
    pub fn privileged_forwards(&self, first_unprivileged: u16) -> Vec<HostFwd> {
        self.hostfwd
            .iter()
            .filter(|f| f.host_port < first_unprivileged)
            .copied()
            .collect()
    }
}

/// The mask of a prefix length (0 to 32).
fn mask_of(prefix: u8) -> u32 {
    if prefix == 0 {
        0
    } else {
        u32::MAX << (32 - u32::from(prefix.min(32)))
    }
}

/// Whether `a` is in `net/prefix` and is neither its network nor its
/// broadcast address.
fn is_host_of(a: Ipv4Addr, net: Ipv4Addr, prefix: u8) -> bool {
    let m = mask_of(prefix);
    let a = u32::from(a);
    a & m == u32::from(net) && a & !m != 0 && a & !m != !m
}

fn set_once<T>(slot: &mut Option<T>, what: &'static str, value: T) -> Result<(), NatOptionError> {
    if slot.is_some() {
        return Err(NatOptionError::Twice(what));
    }
    *slot = Some(value);
    Ok(())
}

fn addr(what: &'static str, value: &str) -> Result<Ipv4Addr, NatOptionError> {
    value.parse().map_err(|_| NatOptionError::Address {
        what,
        value: value.to_string(),
    })
}

fn on_off(what: &'static str, value: &str) -> Result<bool, NatOptionError> {
    match value {
        "on" | "yes" | "1" => Ok(true),
        "off" | "no" | "0" => Ok(false),
        _ => Err(NatOptionError::Switch {
            what,
            value: value.to_string(),
        }),
    }
}

fn parse_net(value: &str) -> Result<(Ipv4Addr, u8), NatOptionError> {
    let bad = || NatOptionError::Net(value.to_string());
    let (a, p) = value.split_once('/').ok_or_else(bad)?;
    let a: Ipv4Addr = a.parse().map_err(|_| bad())?;
    if p.is_empty() || !p.bytes().all(|b| b.is_ascii_digit()) {
        return Err(bad());
    }
    let p: u8 = p.parse().map_err(|_| bad())?;
    if !(8..=30).contains(&p) || u32::from(a) & !mask_of(p) != 0 {
        return Err(bad());
    }
    if a.is_loopback() || a.is_multicast() || a.octets()[0] == 0 || a.octets()[0] >= 224 {
        return Err(NatOptionError::Reserved(value.to_string()));
    }
    Ok((a, p))
}

/// `[tcp|udp]:[HOSTADDR]:HOSTPORT` (the host side of a forward, which
/// names it for removal).
pub fn parse_host_side(value: &str) -> Result<(Proto, Ipv4Addr, u16), NatOptionError> {
    let f = parse_hostfwd(&format!("{value}-:1"), Ipv4Addr::UNSPECIFIED)
        .map_err(|_| NatOptionError::HostFwd(value.to_string()))?;
    Ok((f.proto, f.host_addr, f.host_port))
}

impl NatConfig {
    /// Checks a forward to add against the network and the forwards
    /// there are, as [`parse`] does.
    pub fn check_forward(&self, f: &HostFwd) -> Result<(), NatOptionError> {
        if !is_host_of(f.guest_addr, self.net, self.prefix) {
            return Err(NatOptionError::Outside {
                what: "hostfwd",
                addr: f.guest_addr,
                net: format!("{}/{}", self.net, self.prefix),
            });
        }
        if self.hostfwd.iter().any(|g| {
            g.proto == f.proto
                && g.host_port == f.host_port
                && (g.host_addr == f.host_addr
                    || g.host_addr.is_unspecified()
                    || f.host_addr.is_unspecified())
        }) {
            return Err(NatOptionError::HostFwdTwice(format!(
                "{}/{}",
                f.proto, f.host_port
            )));
        }
        Ok(())
    }
}

/// `[tcp|udp]:[HOSTADDR]:HOSTPORT-[GUESTADDR]:GUESTPORT`, as QEMU's
/// `hostfwd=`; an empty guest address is `default_guest` (QEMU: the first
/// DHCP address), an empty host address every address.
pub fn parse_hostfwd(value: &str, default_guest: Ipv4Addr) -> Result<HostFwd, NatOptionError> {
    let bad = || NatOptionError::HostFwd(value.to_string());
    let (host, guest) = value.split_once('-').ok_or_else(bad)?;
    let mut h = host.split(':');
    let (proto, haddr, hport) = match (h.next(), h.next(), h.next(), h.next()) {
        (Some(p), Some(a), Some(port), None) => (p, a, port),
        (Some(a), Some(port), None, None) => ("", a, port),
        _ => return Err(bad()),
    };
    let proto = match proto {
        "" | "tcp" => Proto::Tcp,
        "udp" => Proto::Udp,
        _ => return Err(bad()),
    };
    let (gaddr, gport) = guest.split_once(':').ok_or_else(bad)?;
    let port = |p: &str| -> Result<u16, NatOptionError> {
        if p.is_empty() || !p.bytes().all(|b| b.is_ascii_digit()) {
            return Err(bad());
        }
        match p.parse::<u16>() {
            Ok(n) if n > 0 => Ok(n),
            _ => Err(bad()),
        }
    };
    let ip = |a: &str, default: Ipv4Addr| -> Result<Ipv4Addr, NatOptionError> {
        if a.is_empty() {
            Ok(default)
        } else {
            a.parse().map_err(|_| bad())
        }
    };
    Ok(HostFwd {
        proto,
        host_addr: ip(haddr, Ipv4Addr::UNSPECIFIED)?,
        host_port: port(hport)?,
        guest_addr: ip(gaddr, default_guest)?,
        guest_port: port(gport)?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> Ipv4Addr {
        s.parse().unwrap()
    }

    #[test]
    fn defaults_are_qemus() {
        let c = parse("").unwrap();
        assert_eq!((c.net, c.prefix), (ip("10.0.2.0"), 24));
        assert_eq!(c.host, ip("10.0.2.2"));
        assert_eq!(c.dns, ip("10.0.2.3"));
        assert_eq!(c.dhcp_start, ip("10.0.2.15"));
        assert_eq!(c.mask(), ip("255.255.255.0"));
        assert!(c.dns_forwarding && c.host_loopback && !c.restricted && !c.ipv6);
        assert!(c.hostfwd.is_empty());
    }

    #[test]
    fn every_option() {
        let c = parse(
            "net=192.168.76.0/22,host=192.168.77.1,dns=192.168.77.2,dhcpstart=192.168.78.0,\
             hostfwd=tcp::8080-:80,hostfwd=udp:127.0.0.1:5353-192.168.76.9:53,\
             hostfwd=:10.1.1.1:2222-192.168.79.254:22,restrict=on,host-loopback=off,dns=off,\
             ipv6=on",
        )
        .unwrap();
        assert!(c.ipv6);
        assert_eq!((c.net, c.prefix), (ip("192.168.76.0"), 22));
        assert_eq!(c.mask(), ip("255.255.252.0"));
        assert_eq!(c.host, ip("192.168.77.1"));
        assert_eq!(c.dns, ip("192.168.77.2"));
        assert!(!c.dns_forwarding && !c.host_loopback && c.restricted);
        assert_eq!(
            c.hostfwd,
            [
                HostFwd {
                    proto: Proto::Tcp,
                    host_addr: Ipv4Addr::UNSPECIFIED,
                    host_port: 8080,
                    guest_addr: ip("192.168.78.0"),
                    guest_port: 80
                },
                HostFwd {
                    proto: Proto::Udp,
                    host_addr: ip("127.0.0.1"),
                    host_port: 5353,
                    guest_addr: ip("192.168.76.9"),
                    guest_port: 53
                },
                HostFwd {
                    proto: Proto::Tcp,
                    host_addr: ip("10.1.1.1"),
                    host_port: 2222,
                    guest_addr: ip("192.168.79.254"),
                    guest_port: 22
                },
            ]
        );
        assert_eq!(
            c.hostfwd[1].to_string(),
            "udp:127.0.0.1:5353-192.168.76.9:53"
        );
        // The defaults follow net=.
        let c = parse("net=172.20.0.0/16").unwrap();
        assert_eq!(
            (c.host, c.dns, c.dhcp_start),
            (ip("172.20.0.2"), ip("172.20.0.3"), ip("172.20.0.15"))
        );
    }

    #[test]
    fn malformed_options_are_refused() {
        for bad in [
            "bogus",
            "bogus=1",
            "net=10.0.2.0",
            "net=10.0.2.0/",
            "net=10.0.2.0/+24",
            "net=10.0.2.0/31",
            "net=10.0.2.0/7",
            "net=10.0.2.1/24",
            "net=10.0.2/24",
            "net=127.0.0.0/8",
            "net=224.1.0.0/16",
            "net=0.0.0.0/8",
            "net=10.0.2.0/24,net=10.0.3.0/24",
            "host=10.0.2.300",
            "host=10.0.3.2",
            "host=10.0.2.0",
            "host=10.0.2.255",
            "dns=10.0.2.2",
            "dns=::1",
            "dns=maybe",
            "dhcpstart=10.0.2.250",
            "dhcpstart=10.0.2.1",
            "host=10.0.2.20",
            "restrict=perhaps",
            "ipv6=maybe",
            "ipv6=on,ipv6=off",
            "host-loopback=",
            "hostfwd=tcp::8080",
            "hostfwd=tcp::8080-:0",
            "hostfwd=tcp::0-:80",
            "hostfwd=tcp::70000-:80",
            "hostfwd=sctp::80-:80",
            "hostfwd=tcp:1.2.3:80-:80",
            "hostfwd=tcp::80-10.0.3.1:80",
            "hostfwd=tcp::+80-:80",
            "hostfwd=tcp::8080-:80,hostfwd=tcp:127.0.0.1:8080-:81",
            "host=10.0.2.2,host=10.0.2.2",
        ] {
            assert!(parse(bad).is_err(), "{bad}");
        }
        // Same host port, other protocol: fine.
        assert!(parse("hostfwd=tcp::8080-:80,hostfwd=udp::8080-:80").is_ok());
        let e = parse("net=10.0.2.1/24").unwrap_err().to_string();
        assert!(e.contains("10.0.2.1/24"), "{e}");
        let e = parse("hostfwd=tcp::x-:80").unwrap_err().to_string();
        assert!(e.contains("tcp::x-:80"), "{e}");
    }

    #[test]
    fn forwards_added_later_are_checked_and_host_sides_parsed() {
        let c = parse("hostfwd=tcp::8080-:80").unwrap();
        let f = |t: &str| parse_hostfwd(t, c.dhcp_start).unwrap();
        assert!(c.check_forward(&f("tcp::8081-:80")).is_ok());
        assert!(c.check_forward(&f("udp::8080-:80")).is_ok());
        assert!(c.check_forward(&f("tcp:127.0.0.1:8080-:80")).is_err());
        assert!(c.check_forward(&f("tcp::8082-10.0.3.1:80")).is_err());
        assert_eq!(
            parse_host_side("udp:127.0.0.1:53").unwrap(),
            (Proto::Udp, ip("127.0.0.1"), 53)
        );
        assert_eq!(
            parse_host_side("::8080").unwrap(),
            (Proto::Tcp, Ipv4Addr::UNSPECIFIED, 8080)
        );
        for bad in ["tcp::0", "tcp::8080-:80", "8080", "tcp:x:1"] {
            assert!(parse_host_side(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn overlaps_and_privileged_ports() {
        let c = parse("hostfwd=tcp::80-:80,hostfwd=tcp::8080-:80").unwrap();
        assert!(c.overlaps(ip("10.0.0.0"), 16));
        assert!(c.overlaps(ip("10.0.2.77"), 30));
        assert!(c.overlaps(ip("10.0.2.1"), 24));
        assert!(!c.overlaps(ip("10.0.3.1"), 24));
        assert!(!c.overlaps(ip("192.168.1.1"), 24));
        assert_eq!(c.privileged_forwards(1024).len(), 1);
        assert_eq!(c.privileged_forwards(1024)[0].host_port, 80);
        assert!(c.privileged_forwards(0).is_empty());
    }
}
