//! The requests: checks first (policy, ownership), then the host changes,
//! each logged as one readable line for the kernel's console.

use std::fs::File;
use std::io;
use std::net::Ipv4Addr;
use std::path::Path;

use uml_common::umlnet::{IfName, Request, Transport};

use crate::nl::{Link, Netlink};
use crate::policy::{self, POLICY_PATH};
use crate::privs::{errtext, real_uid};
use crate::reply::{self, Output};

/// Performs a validated request and writes the reply; returns the exit
/// status.
pub fn perform(_transport: Transport, request: Request, clone: Option<io::Result<File>>) -> i32 {
    match request {
        Request::TuntapUp { gate, reply_fd } => tuntap_up(gate, reply_fd, clone),
        Request::Address {
            add,
            dev,
            addr,
            mask,
        } => {
            let mut out = Output::default();
            let status = change_address(&mut out, add, &dev, addr, mask.0);
            if !reply::write_length_prefixed(out.text()) {
                return 1;
            }
            status
        }
        Request::Ethertap { dev, gate, .. } => {
            let mut out = Output::default();
            if let Some(g) = gate {
                if let Err(t) = check_policy(g) {
                    out.line(&t);
                    reply::write_status_then_text(false, out.text());
                    return 1;
                }
            }
            out.line(&format!(
                "uml_net : ethertap device '{dev}' is not available: the host kernel has no ethertap driver (removed in Linux 2.6); use eth0=tuntap,,,GATEWAY instead"
            ));
            reply::write_status_then_text(false, out.text());
            1
        }
        Request::SlipUp { gate } => {
            let mut out = Output::default();
            let status = match check_policy(gate) {
                Err(t) => {
                    out.line(&t);
                    1
                }
                Ok(()) => slip_up(&mut out, gate),
            };
            reply::write_length_prefixed(out.text());
            status
        }
        Request::SlipDown => {
            let mut out = Output::default();
            let status = slip_down(&mut out);
            reply::write_length_prefixed(out.text());
            status
        }
    }
}

fn check_policy(addr: Ipv4Addr) -> Result<(), String> {
    match policy::load(Path::new(POLICY_PATH))? {
        None => Ok(()),
        Some(rules) => {
            let caller = policy::caller();
            if policy::allows(&rules, &caller, addr) {
                Ok(())
            } else {
                Err(format!(
                    "uml_net : refused by {POLICY_PATH}: uid {} may not use {addr}\n",
                    caller.uid
                ))
            }
        }
    }
}

fn nl_err(e: &io::Error) -> String {
    format!("RTNETLINK answers: {}", errtext(e))
}

/// Opens rtnetlink and looks up `name`; on failure logs why.
fn open_link(out: &mut Output, name: &str) -> Option<(Netlink, Link)> {
    let mut nl = match Netlink::open() {
        Ok(n) => n,
        Err(e) => {
            out.line(&format!("netlink socket: {}", errtext(&e)));
            return None;
        }
    };
    match nl.link(name) {
        Ok(Some(link)) => Some((nl, link)),
        Ok(None) => {
            out.line(&format!("uml_net : no such interface '{name}'"));
            None
        }
        Err(e) => {
            out.line(&nl_err(&e));
            None
        }
    }
}

fn write_sysctl(out: &mut Output, key: &str, value: &str) -> bool {
    out.action(&format!("sysctl -w {key}={value}"));
    let path = format!("/proc/sys/{}", key.replace('.', "/"));
    match std::fs::write(&path, value) {
        Ok(()) => true,
        Err(e) => {
            out.line(&format!("{path}: {}", errtext(&e)));
            false
        }
    }
}

fn tuntap_up(gate: Option<Ipv4Addr>, reply_fd: i32, clone: Option<io::Result<File>>) -> i32 {
    let mut out = Output::default();
    if let Some(g) = gate {
        if let Err(t) = check_policy(g) {
            out.line(&t);
            reply::send_tuntap(reply_fd, None, out.text());
            return 0;
        }
    }
    let owner = real_uid();
    let (tap, name) = match create_tap(&mut out, owner, clone) {
        Some(t) => t,
        None => {
            reply::send_tuntap(reply_fd, None, out.text());
            return 0;
        }
    };
    if let Some(g) = gate {
        // Until the reply is sent, only we hold the tap: dropping `tap` on
        // any failure below removes it and everything configured on it.
        let ok = (|| {
            let Some((mut nl, link)) = open_link(&mut out, name.as_str()) else {
                return false;
            };
            out.action(&format!("ip address add {g}/32 dev {name}"));
            if let Err(e) = nl.add_address(link.index, g, 32) {
                out.line(&nl_err(&e));
                return false;
            }
            out.action(&format!("ip link set {name} up"));
            if let Err(e) = nl.set_up(link.index) {
                out.line(&nl_err(&e));
                return false;
            }
            true
        })();
        if !ok {
            out.line(&format!(
                "'{name}' could not be configured; it has been removed"
            ));
            drop(tap);
            reply::send_tuntap(reply_fd, None, out.text());
            return 0;
        }
        write_sysctl(&mut out, "net.ipv4.ip_forward", "1");
    }
    if reply::send_tuntap(reply_fd, Some((&name, &tap)), out.text()) {
        0
    } else {
        1
    }
}

/// Creates a non-persistent tap owned by `owner`; it disappears when the
/// last descriptor (the kernel's, after the reply) is closed.
fn create_tap(
    out: &mut Output,
    owner: u32,
    clone: Option<io::Result<File>>,
) -> Option<(File, IfName)> {
    use uml_common::sys::tun::{Mode, TunDevice, DEFAULT_CLONE_DEVICE};
    let attached = match clone {
        Some(Ok(file)) => TunDevice::attach_file(file, b"", Mode::Tap),
        Some(Err(e)) => {
            out.line(&format!("{DEFAULT_CLONE_DEVICE}: {}", errtext(&e)));
            return None;
        }
        None => TunDevice::attach(Path::new(DEFAULT_CLONE_DEVICE), b"", Mode::Tap),
    };
    let dev = match attached {
        Ok(d) => d,
        Err(e) => {
            out.line(&format!("{DEFAULT_CLONE_DEVICE}: {e}"));
            return None;
        }
    };
    let raw_name = dev.name().to_string_lossy().into_owned();
    let Ok(name) = IfName::parse(&raw_name) else {
        out.line(&format!("unexpected interface name '{raw_name}'"));
        return None;
    };
    out.action(&format!("ip tuntap add dev {name} mode tap user {owner}"));
    if let Err(e) = dev.set_owner(owner) {
        out.line(&format!("TUNSETOWNER: {}", errtext(&e)));
        return None;
    }
    Some((dev.into_file(), name))
}

/// Whether the caller may change `link` (named `dev`).
fn owned_by_caller(dev: &IfName, link: &Link, uid: u32) -> Result<(), String> {
    if !link.is_tun {
        return Err(format!(
            "uml_net : refusing to change '{dev}': it is not a TUN/TAP device\n"
        ));
    }
    match link.owner {
        Some(o) if o == uid => Ok(()),
        None if uid == 0 => Ok(()),
        Some(o) => Err(format!(
            "uml_net : refusing to change '{dev}': it belongs to uid {o}, not to uid {uid}\n"
        )),
        None => Err(format!(
            "uml_net : refusing to change '{dev}': it has no owner, so only root may change it\n"
        )),
    }
}

/// The interfaces (other than `dev`) with a route whose network contains
/// `addr` under `mask`, from `/proc/net/route` as the C helper reads it.
pub fn matching_interfaces(
    route_table: &str,
    dev: &str,
    addr: Ipv4Addr,
    mask: Ipv4Addr,
) -> Vec<String> {
    let m = u32::from(mask);
    let a = u32::from(addr) & m;
    let mut out: Vec<String> = Vec::new();
    for line in route_table.lines().skip(1) {
        let mut f = line.split_whitespace();
        let (Some(iface), Some(dest)) = (f.next(), f.next()) else {
            continue;
        };
        let Ok(raw) = u32::from_str_radix(dest, 16) else {
            continue;
        };
        // The column is the address as stored (network order) printed as a
        // host-order integer.
        let dest = u32::from(Ipv4Addr::from(raw.to_le_bytes()));
        if iface != dev && dest & m == a && !out.iter().any(|i| i == iface) {
            out.push(iface.to_string());
        }
    }
    out
}

fn change_address(
    out: &mut Output,
    add: bool,
    dev: &IfName,
    addr: Ipv4Addr,
    mask: Ipv4Addr,
) -> i32 {
    // Every check before the first change.
    if let Err(t) = check_policy(addr) {
        out.line(&t);
        return 1;
    }
    let Some((mut nl, link)) = open_link(out, dev.as_str()) else {
        return 1;
    };
    if let Err(t) = owned_by_caller(dev, &link, real_uid()) {
        out.line(&t);
        return 1;
    }
    let routes = std::fs::read_to_string("/proc/net/route").unwrap_or_default();
    let mut proxies = Vec::new();
    for iface in matching_interfaces(&routes, dev.as_str(), addr, mask) {
        if let Ok(Some(l)) = nl.link(&iface) {
            proxies.push((iface, l.index));
        }
    }

    let mut ok = true;
    let verb = if add { "add" } else { "del" };
    out.action(&format!("ip route {verb} {addr}/32 dev {dev} scope link"));
    let r = if add {
        nl.add_host_route(link.index, addr)
    } else {
        nl.del_host_route(link.index, addr)
    };
    match r {
        Ok(()) => {}
        // Already there (add) or already gone (del): the goal is reached.
        Err(e) if matches!(e.raw_os_error(), Some(libc::EEXIST) | Some(libc::ESRCH)) => {
            out.line(&nl_err(&e));
        }
        Err(e) => {
            out.line(&nl_err(&e));
            ok = false;
        }
    }
    ok &= write_sysctl(
        out,
        &format!("net.ipv4.conf.{dev}.proxy_arp"),
        if add { "1" } else { "0" },
    );
    for (iface, index) in proxies {
        out.action(&format!("ip neigh {verb} proxy {addr} dev {iface}"));
        let r = if add {
            nl.add_proxy(index, addr)
        } else {
            nl.del_proxy(index, addr)
        };
        match r {
            Ok(()) => {}
            Err(e) if matches!(e.raw_os_error(), Some(libc::EEXIST) | Some(libc::ENOENT)) => {
                out.line(&nl_err(&e));
            }
            Err(e) => {
                out.line(&nl_err(&e));
                ok = false;
            }
        }
    }
    if ok {
        0
    } else {
        1
    }
}

fn slip_up(out: &mut Output, gate: Ipv4Addr) -> i32 {
    use uml_common::sys::slip;
    let stdin = std::io::stdin();
    if let Err(e) = slip::set_line_discipline(&stdin) {
        out.line(&format!("Setting slip line discipline: {}", errtext(&e)));
        return 1;
    }
    let name = match slip::interface_name(&stdin) {
        Ok(n) => n,
        Err(e) => {
            out.line(&format!("Getting slip interface name: {}", errtext(&e)));
            return 1;
        }
    };
    let Ok(name) = IfName::parse(&name) else {
        out.line(&format!("unexpected interface name '{name}'"));
        return 1;
    };
    let Some((mut nl, link)) = open_link(out, name.as_str()) else {
        return 1;
    };
    out.action(&format!("ip address add {gate}/32 dev {name}"));
    if let Err(e) = nl.add_address(link.index, gate, 32) {
        out.line(&nl_err(&e));
        return 1;
    }
    out.action(&format!("ip link set {name} mtu 1500 up"));
    if let Err(e) = nl.set_up(link.index) {
        out.line(&nl_err(&e));
        return 1;
    }
    write_sysctl(out, "net.ipv4.ip_forward", "1");
    0
}

fn slip_down(out: &mut Output) -> i32 {
    use uml_common::sys::slip;
    // The name argument is ignored: the pty on stdin proves ownership.
    let stdin = std::io::stdin();
    let name = match slip::interface_name(&stdin) {
        Ok(n) => n,
        Err(e) => {
            out.line(&format!("Getting slip line discipline: {}", errtext(&e)));
            return 1;
        }
    };
    let Some((mut nl, link)) = open_link(out, &name) else {
        return 1;
    };
    out.action(&format!("ip link set {name} down"));
    match nl.set_down(link.index) {
        Ok(()) => 0,
        Err(e) => {
            out.line(&nl_err(&e));
            1
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const ROUTES: &str =
        "Iface\tDestination\tGateway \tFlags\tRefCnt\tUse\tMetric\tMask\t\tMTU\tWindow\tIRTT\n\
veth0\t0000000A\t00000000\t0001\t0\t0\t0\t00FFFFFF\t0\t0\t0\n\
tap0\t0100000A\t00000000\t0005\t0\t0\t0\tFFFFFFFF\t0\t0\t0\n\
eth1\t0000A8C0\t00000000\t0001\t0\t0\t0\t00FFFFFF\t0\t0\t0\n\
veth0\t0000000A\t00000000\t0001\t0\t0\t100\t0000FFFF\t0\t0\t0\n";

    #[test]
    fn proxy_interfaces_from_the_route_table() {
        let a: Ipv4Addr = "10.0.0.1".parse().unwrap();
        let m: Ipv4Addr = "255.255.255.0".parse().unwrap();
        assert_eq!(matching_interfaces(ROUTES, "tap0", a, m), ["veth0"]);
        let b: Ipv4Addr = "192.168.0.7".parse().unwrap();
        assert_eq!(matching_interfaces(ROUTES, "tap0", b, m), ["eth1"]);
        let c: Ipv4Addr = "172.16.0.7".parse().unwrap();
        assert!(matching_interfaces(ROUTES, "tap0", c, m).is_empty());
        assert!(matching_interfaces("", "tap0", a, m).is_empty());
        assert!(matching_interfaces("header\ngarbage line\n", "tap0", a, m).is_empty());
    }

    #[test]
    fn ownership_rules() {
        let dev = IfName::parse("tap0").unwrap();
        let tap = |owner| Link {
            index: 5,
            is_tun: true,
            is_tap: true,
            owner,
        };
        assert!(owned_by_caller(&dev, &tap(Some(1000)), 1000).is_ok());
        assert!(owned_by_caller(&dev, &tap(Some(1000)), 1001).is_err());
        assert!(owned_by_caller(&dev, &tap(None), 1000).is_err());
        assert!(owned_by_caller(&dev, &tap(None), 0).is_ok());
        let veth = Link {
            index: 2,
            is_tun: false,
            is_tap: false,
            owner: None,
        };
        assert!(owned_by_caller(&dev, &veth, 0).is_err());
    }
}
