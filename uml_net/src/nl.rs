//! The host changes, through rtnetlink (netlink-packet-route +
//! netlink-sys): link lookup with TUN/TAP owner, address, link up, host
//! route, proxy neighbour entries. No program is ever executed.

use std::io;
use std::net::{IpAddr, Ipv4Addr};

use netlink_packet_core::{
    NetlinkHeader, NetlinkMessage, NetlinkPayload, NLM_F_ACK, NLM_F_CREATE, NLM_F_EXCL,
    NLM_F_REQUEST,
};
use netlink_packet_route::address::{AddressAttribute, AddressMessage, AddressScope};
use netlink_packet_route::link::{
    InfoData, InfoKind, InfoTun, LinkAttribute, LinkFlags, LinkInfo, LinkMessage,
};
use netlink_packet_route::neighbour::{
    NeighbourAddress, NeighbourAttribute, NeighbourFlags, NeighbourMessage, NeighbourState,
};
use netlink_packet_route::route::{
    RouteAddress, RouteAttribute, RouteHeader, RouteMessage, RouteProtocol, RouteScope, RouteType,
};
use netlink_packet_route::{AddressFamily, RouteNetlinkMessage};
use netlink_packet_utils::nla::Nla;
use netlink_sys::{protocols::NETLINK_ROUTE, Socket, SocketAddr};

/// `IFLA_TUN_OWNER`.
const IFLA_TUN_OWNER: u16 = 1;
/// `IFLA_TUN_TYPE`.
const IFLA_TUN_TYPE: u16 = 3;
/// `IFF_TAP` as reported in `IFLA_TUN_TYPE`.
const IFF_TAP: u8 = 2;

/// What the kernel says about an interface.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Link {
    /// Interface index.
    pub index: u32,
    /// Whether it is a TUN/TAP device.
    pub is_tun: bool,
    /// Whether it is in TAP (Ethernet) mode.
    pub is_tap: bool,
    /// Its owner uid, if one was set.
    pub owner: Option<u32>,
}

/// An rtnetlink socket.
pub struct Netlink {
    sock: Socket,
    seq: u32,
}

impl std::fmt::Debug for Netlink {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Netlink(seq {})", self.seq)
    }
}

fn errno_error(code: i32) -> io::Error {
    io::Error::from_raw_os_error(code.abs())
}

impl Netlink {
    /// Opens and binds the socket.
    pub fn open() -> io::Result<Netlink> {
        let mut sock = Socket::new(NETLINK_ROUTE)?;
        sock.bind_auto()?;
        sock.connect(&SocketAddr::new(0, 0))?;
        Ok(Netlink { sock, seq: 1 })
    }

    fn send(&mut self, msg: RouteNetlinkMessage, flags: u16) -> io::Result<u32> {
        let mut header = NetlinkHeader::default();
        header.flags = flags;
        self.seq = self.seq.wrapping_add(1);
        header.sequence_number = self.seq;
        let mut packet = NetlinkMessage::new(header, NetlinkPayload::from(msg));
        packet.finalize();
        let mut buf = vec![0u8; packet.buffer_len()];
        packet.serialize(&mut buf);
        self.sock.send(&buf, 0)?;
        Ok(self.seq)
    }

    /// Receives messages until the answer to `seq` is complete: an ack or
    /// error for a plain request, `Done` for a dump. Returns the inner
    /// messages.
    fn receive(&mut self, seq: u32, dump: bool) -> io::Result<Vec<RouteNetlinkMessage>> {
        let mut out = Vec::new();
        let mut buf = vec![0u8; 64 * 1024];
        loop {
            buf.clear();
            let n = self.sock.recv(&mut buf, 0)?;
            let mut off = 0;
            while off < n {
                let msg = NetlinkMessage::<RouteNetlinkMessage>::deserialize(&buf[off..n])
                    .map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e.to_string()))?;
                let len = msg.header.length as usize;
                if len == 0 {
                    return Err(io::Error::new(
                        io::ErrorKind::InvalidData,
                        "empty netlink message",
                    ));
                }
                off += (len + 3) & !3;
                if msg.header.sequence_number != seq {
                    continue;
                }
                match msg.payload {
                    NetlinkPayload::Error(e) => {
                        return match e.code {
                            Some(code) => Err(errno_error(code.get())),
                            None => Ok(out),
                        }
                    }
                    NetlinkPayload::Done(_) => return Ok(out),
                    NetlinkPayload::InnerMessage(m) => {
                        out.push(m);
                        if !dump {
                            // A reply to a GET without NLM_F_DUMP; the ack
                            // (if requested) follows.
                        }
                    }
                    _ => {}
                }
            }
        }
    }

    fn request(&mut self, msg: RouteNetlinkMessage, extra: u16) -> io::Result<()> {
        let seq = self.send(msg, NLM_F_REQUEST | NLM_F_ACK | extra)?;
        self.receive(seq, false).map(|_| ())
    }

    /// Looks up interface `name`.
    pub fn link(&mut self, name: &str) -> io::Result<Option<Link>> {
        let mut m = LinkMessage::default();
        m.attributes.push(LinkAttribute::IfName(name.to_string()));
        let seq = self.send(RouteNetlinkMessage::GetLink(m), NLM_F_REQUEST | NLM_F_ACK)?;
        let msgs = match self.receive(seq, false) {
            Ok(m) => m,
            Err(e) if e.raw_os_error() == Some(libc::ENODEV) => return Ok(None),
            Err(e) => return Err(e),
        };
        for msg in msgs {
            let RouteNetlinkMessage::NewLink(link) = msg else {
                continue;
            };
            let mut info = Link {
                index: link.header.index,
                is_tun: false,
                is_tap: false,
                owner: None,
            };
            for attr in &link.attributes {
                let LinkAttribute::LinkInfo(infos) = attr else {
                    continue;
                };
                for i in infos {
                    match i {
                        LinkInfo::Kind(InfoKind::Tun) => info.is_tun = true,
                        LinkInfo::Data(InfoData::Tun(tun)) => {
                            for t in tun {
                                let InfoTun::Other(nla) = t else {
                                    continue;
                                };
                                let mut v = vec![0u8; nla.value_len()];
                                nla.emit_value(&mut v);
                                match nla.kind() {
                                    IFLA_TUN_OWNER if v.len() >= 4 => {
                                        info.owner =
                                            Some(u32::from_ne_bytes([v[0], v[1], v[2], v[3]]));
                                    }
                                    IFLA_TUN_TYPE if !v.is_empty() => info.is_tap = v[0] == IFF_TAP,
                                    _ => {}
                                }
                            }
                        }
                        _ => {}
                    }
                }
            }
            return Ok(Some(info));
        }
        Ok(None)
    }

    /// `ip address add ADDR/PREFIX dev INDEX`.
    pub fn add_address(&mut self, index: u32, addr: Ipv4Addr, prefix: u8) -> io::Result<()> {
        let mut m = AddressMessage::default();
        m.header.family = AddressFamily::Inet;
        m.header.prefix_len = prefix;
        m.header.scope = AddressScope::Universe;
        m.header.index = index;
        m.attributes.push(AddressAttribute::Local(IpAddr::V4(addr)));
        m.attributes
            .push(AddressAttribute::Address(IpAddr::V4(addr)));
        self.request(
            RouteNetlinkMessage::NewAddress(m),
            NLM_F_CREATE | NLM_F_EXCL,
        )
    }

    /// `ip link set INDEX up`.
    pub fn set_up(&mut self, index: u32) -> io::Result<()> {
        let mut m = LinkMessage::default();
        m.header.index = index;
        m.header.flags = LinkFlags::Up;
        m.header.change_mask = LinkFlags::Up;
        self.request(RouteNetlinkMessage::SetLink(m), 0)
    }

    /// `ip link set INDEX down`.
    pub fn set_down(&mut self, index: u32) -> io::Result<()> {
        let mut m = LinkMessage::default();
        m.header.index = index;
        m.header.change_mask = LinkFlags::Up;
        self.request(RouteNetlinkMessage::SetLink(m), 0)
    }

    fn host_route(index: u32, addr: Ipv4Addr) -> RouteMessage {
        let mut m = RouteMessage::default();
        m.header.address_family = AddressFamily::Inet;
        m.header.destination_prefix_length = 32;
        m.header.table = RouteHeader::RT_TABLE_MAIN;
        m.header.protocol = RouteProtocol::Boot;
        m.header.scope = RouteScope::Link;
        m.header.kind = RouteType::Unicast;
        m.attributes
            .push(RouteAttribute::Destination(RouteAddress::Inet(addr)));
        m.attributes.push(RouteAttribute::Oif(index));
        m
    }

    /// `ip route add ADDR/32 dev INDEX scope link`.
    pub fn add_host_route(&mut self, index: u32, addr: Ipv4Addr) -> io::Result<()> {
        self.request(
            RouteNetlinkMessage::NewRoute(Self::host_route(index, addr)),
            NLM_F_CREATE | NLM_F_EXCL,
        )
    }

    /// `ip route del ADDR/32 dev INDEX scope link`.
    pub fn del_host_route(&mut self, index: u32, addr: Ipv4Addr) -> io::Result<()> {
        self.request(
            RouteNetlinkMessage::DelRoute(Self::host_route(index, addr)),
            0,
        )
    }

    fn proxy_neigh(index: u32, addr: Ipv4Addr) -> NeighbourMessage {
        let mut m = NeighbourMessage::default();
        m.header.family = AddressFamily::Inet;
        m.header.ifindex = index;
        m.header.flags = NeighbourFlags::Proxy;
        m.header.state = NeighbourState::Permanent;
        m.attributes
            .push(NeighbourAttribute::Destination(NeighbourAddress::Inet(
                addr,
            )));
        m
    }

    /// `ip neigh add proxy ADDR dev INDEX` (what `arp -Ds ADDR IF pub` did).
    pub fn add_proxy(&mut self, index: u32, addr: Ipv4Addr) -> io::Result<()> {
        self.request(
            RouteNetlinkMessage::NewNeighbour(Self::proxy_neigh(index, addr)),
            NLM_F_CREATE | NLM_F_EXCL,
        )
    }

    /// `ip neigh del proxy ADDR dev INDEX`.
    pub fn del_proxy(&mut self, index: u32, addr: Ipv4Addr) -> io::Result<()> {
        self.request(
            RouteNetlinkMessage::DelNeighbour(Self::proxy_neigh(index, addr)),
            0,
        )
    }
}
