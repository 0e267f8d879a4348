//! The requests: checks first (policy, ownership), then the host changes,
//! each logged as one readable line for the kernel's console. A request
//! that fails returns its [`Error`]; [`perform`] adds its line to the log
//! and replies.

use std::fs::File;
use std::io;
use std::net::Ipv4Addr;
use std::path::Path;

use uml_common::umlnet::{IfName, Request, Transport};

use crate::nl::{Link, Netlink};
use crate::policy;
use crate::privs::real_uid;
use crate::reply::{self, delivered, Output};
use crate::Error;

/// Performs a validated request and writes the reply (with the failure's
/// line, if any); returns the exit status: 0 on success, the error's
/// status on failure — except that a `tuntap up` request answers its
/// failures in the reply datagram and exits 0 (1 when the reply cannot be
/// sent). `policy` is the policy file's text, read while the helper was
/// still root ([`policy::read`]).
pub fn perform(
    _transport: Transport,
    request: Request,
    clone: Option<io::Result<File>>,
    policy: PolicyText,
) -> i32 {
    let mut out = Output::default();
    match request {
        Request::TuntapUp { gate, reply_fd } => match tuntap_up(&mut out, gate, clone, policy) {
            Ok((tap, name)) => {
                let sent = reply::send_tuntap(reply_fd, Some((&name, &tap)), out.text());
                if delivered(sent) {
                    0
                } else {
                    1
                }
            }
            Err(e) => {
                out.error(&e);
                delivered(reply::send_tuntap(reply_fd, None, out.text()));
                0
            }
        },
        Request::Address {
            add,
            dev,
            addr,
            mask,
        } => {
            let result = change_address(&mut out, add, &dev, addr, mask.0, policy);
            if let Err(e) = &result {
                out.error(e);
            }
            if !delivered(reply::write_length_prefixed(out.text())) {
                return 1;
            }
            status(&result)
        }
        Request::Ethertap { dev, gate, .. } => {
            let e = match gate.map(|g| check_policy(policy, g)) {
                Some(Err(e)) => e,
                _ => Error::EthertapUnavailable(dev),
            };
            out.error(&e);
            delivered(reply::write_status_then_text(false, out.text()));
            e.exit_code()
        }
        Request::SlipUp { gate } => {
            let result = check_policy(policy, gate).and_then(|()| slip_up(&mut out, gate));
            if let Err(e) = &result {
                out.error(e);
            }
            delivered(reply::write_length_prefixed(out.text()));
            status(&result)
        }
        Request::SlipDown => {
            let result = slip_down(&mut out);
            if let Err(e) = &result {
                out.error(e);
            }
            delivered(reply::write_length_prefixed(out.text()));
            status(&result)
        }
    }
}

/// 0, or the error's exit status.
fn status(result: &Result<(), Error>) -> i32 {
    result.as_ref().map_or_else(Error::exit_code, |()| 0)
}

/// The policy file's text (`None`: no policy file), or why it could not
/// be read.
pub type PolicyText = Result<Option<String>, Error>;

fn check_policy(policy: PolicyText, addr: Ipv4Addr) -> Result<(), Error> {
    match policy? {
        None => Ok(()),
        Some(text) => {
            let rules = policy::rules(&text)?;
            let caller = policy::caller();
            if policy::allows(&rules, &caller, addr) {
                Ok(())
            } else {
                Err(Error::PolicyRefused {
                    uid: caller.uid,
                    addr,
                })
            }
        }
    }
}

/// Opens rtnetlink and looks up `name`.
fn open_link(name: &str) -> Result<(Netlink, Link), Error> {
    let mut nl = Netlink::open().map_err(Error::NetlinkSocket)?;
    match nl.link(name).map_err(Error::Netlink)? {
        Some(link) => Ok((nl, link)),
        None => Err(Error::NoSuchInterface(name.to_string())),
    }
}

/// Sets `key` in `/proc/sys`, logging the action.
fn write_sysctl(out: &mut Output, key: &str, value: &str) -> Result<(), Error> {
    out.action(&format!("sysctl -w {key}={value}"));
    let path = format!("/proc/sys/{}", key.replace('.', "/"));
    std::fs::write(&path, value).map_err(|source| Error::Sysctl { path, source })
}

/// Logs `result`'s error, if any, and goes on: for steps whose failure
/// does not stop the request.
fn log_failure(out: &mut Output, result: Result<(), Error>) -> bool {
    match result {
        Ok(()) => true,
        Err(e) => {
            out.error(&e);
            false
        }
    }
}

fn tuntap_up(
    out: &mut Output,
    gate: Option<Ipv4Addr>,
    clone: Option<io::Result<File>>,
    policy: PolicyText,
) -> Result<(File, IfName), Error> {
    if let Some(g) = gate {
        check_policy(policy, g)?;
    }
    let owner = real_uid();
    let (tap, name) = create_tap(out, owner, clone)?;
    if let Some(g) = gate {
        // Until the reply is sent, only we hold the tap: dropping `tap` on
        // any failure below removes it and everything configured on it.
        let configured = (|| {
            let (mut nl, link) = open_link(name.as_str())?;
            out.action(&format!("ip address add {g}/32 dev {name}"));
            nl.add_address(link.index, g, 32).map_err(Error::Netlink)?;
            out.action(&format!("ip link set {name} up"));
            nl.set_up(link.index).map_err(Error::Netlink)
        })();
        if let Err(cause) = configured {
            drop(tap);
            return Err(Error::TapRemoved {
                name,
                cause: Box::new(cause),
            });
        }
        // Forwarding that cannot be switched on is reported, not fatal.
        let forwarding = write_sysctl(out, "net.ipv4.ip_forward", "1");
        log_failure(out, forwarding);
    }
    Ok((tap, name))
}

/// Creates a non-persistent tap owned by `owner`; it disappears when the
/// last descriptor (the kernel's, after the reply) is closed.
fn create_tap(
    out: &mut Output,
    owner: u32,
    clone: Option<io::Result<File>>,
) -> Result<(File, IfName), Error> {
    use uml_common::sys::tun::{Mode, TunDevice, DEFAULT_CLONE_DEVICE};
    let attached = match clone {
        Some(Ok(file)) => TunDevice::attach_file(file, b"", Mode::Tap),
        Some(Err(e)) => return Err(Error::CloneDevice(e)),
        None => TunDevice::attach(Path::new(DEFAULT_CLONE_DEVICE), b"", Mode::Tap),
    };
    let dev = attached.map_err(Error::Attach)?;
    let raw_name = dev.name().to_string_lossy().into_owned();
    let name = IfName::parse(&raw_name).map_err(|_| Error::UnexpectedName(raw_name))?;
    out.action(&format!("ip tuntap add dev {name} mode tap user {owner}"));
    dev.set_owner(owner).map_err(Error::SetOwner)?;
    Ok((dev.into_file(), name))
}

/// Whether the caller may change `link` (named `dev`).
fn owned_by_caller(dev: &IfName, link: &Link, uid: u32) -> Result<(), Error> {
    if !link.is_tun {
        return Err(Error::NotTun(dev.clone()));
    }
    match link.owner {
        Some(o) if o == uid => Ok(()),
        None if uid == 0 => Ok(()),
        Some(owner) => Err(Error::NotOwner {
            dev: dev.clone(),
            owner,
            uid,
        }),
        None => Err(Error::NoOwner(dev.clone())),
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
    policy: PolicyText,
) -> Result<(), Error> {
    // Every check before the first change.
    check_policy(policy, addr)?;
    let (mut nl, link) = open_link(dev.as_str())?;
    owned_by_caller(dev, &link, real_uid())?;
    let routes = std::fs::read_to_string("/proc/net/route").unwrap_or_default();
    let mut proxies = Vec::new();
    for iface in matching_interfaces(&routes, dev.as_str(), addr, mask) {
        if let Ok(Some(l)) = nl.link(&iface) {
            proxies.push((iface, l.index));
        }
    }

    // From here on every step is tried; a failed one is logged and the
    // request ends incomplete.
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
            out.error(&Error::Netlink(e));
        }
        Err(e) => ok &= log_failure(out, Err(Error::Netlink(e))),
    }
    let proxy_arp = write_sysctl(
        out,
        &format!("net.ipv4.conf.{dev}.proxy_arp"),
        if add { "1" } else { "0" },
    );
    ok &= log_failure(out, proxy_arp);
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
                out.error(&Error::Netlink(e));
            }
            Err(e) => ok &= log_failure(out, Err(Error::Netlink(e))),
        }
    }
    if ok {
        Ok(())
    } else {
        Err(Error::Incomplete)
    }
}

fn slip_up(out: &mut Output, gate: Ipv4Addr) -> Result<(), Error> {
    use uml_common::sys::slip;
    let stdin = std::io::stdin();
    slip::set_line_discipline(&stdin)
        .map_err(|e| Error::Slip("Setting slip line discipline", e))?;
    let name =
        slip::interface_name(&stdin).map_err(|e| Error::Slip("Getting slip interface name", e))?;
    let name = IfName::parse(&name).map_err(|_| Error::UnexpectedName(name))?;
    let (mut nl, link) = open_link(name.as_str())?;
    out.action(&format!("ip address add {gate}/32 dev {name}"));
    nl.add_address(link.index, gate, 32)
        .map_err(Error::Netlink)?;
    out.action(&format!("ip link set {name} mtu 1500 up"));
    nl.set_up(link.index).map_err(Error::Netlink)?;
    // Forwarding that cannot be switched on is reported, not fatal.
    let forwarding = write_sysctl(out, "net.ipv4.ip_forward", "1");
    log_failure(out, forwarding);
    Ok(())
}

fn slip_down(out: &mut Output) -> Result<(), Error> {
    use uml_common::sys::slip;
    // The name argument is ignored: the pty on stdin proves ownership.
    let stdin = std::io::stdin();
    // (The C helper's words for a failure to get the name.)
    let name =
        slip::interface_name(&stdin).map_err(|e| Error::Slip("Getting slip line discipline", e))?;
    let (mut nl, link) = open_link(&name)?;
    out.action(&format!("ip link set {name} down"));
    nl.set_down(link.index).map_err(Error::Netlink)
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
