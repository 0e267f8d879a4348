//! Start-up, in the C switch's order: check `--mtu` and the tunnel and
//! mcast options (before anything is opened), check stdin, open the ports
//! (binding the sockets, with the C switch's messages), print the
//! `attached` line (then, for the control socket, each `--bess` socket,
//! tunnel, raw and mcast port, the guest argument that joins it), open the
//! tap, detach with `-daemon`, then build the event loop.

use std::io::{self, IsTerminal};

use nix::sys::epoll::{Epoll, EpollCreateFlags};
use uml_common::sys::fd::move_high;

use crate::activation::Passed;
use crate::capture::{Capture, Filter};
use crate::cli::Options;
use crate::mgmt::{self, Mgmt};
use crate::output::out;
use crate::port::{self, bess, mcast, tunnel, Endpoint, PortSpec, HIGH_FD};
use crate::server::{Forwarding, Switch};
use crate::signals;
use crate::user;
use crate::Error;

/// The largest `--mtu`: a frame of 65535 + 14 bytes still fits a bess
/// message and a guest's 64 KiB `gro=1` buffers hold 65536.
pub const MAX_MTU: u32 = 65_535;
/// The smallest (and default) `--mtu`: the daemon ports' frames.
pub const MIN_MTU: u32 = 1_500;

/// Checks `--mtu` (default 1500).
fn check_mtu(prog: &str, value: Option<&str>) -> Result<u32, Error> {
    let Some(v) = value else {
        return Ok(MIN_MTU);
    };
    match v.parse::<u32>() {
        Ok(n) if (MIN_MTU..=MAX_MTU).contains(&n) => Ok(n),
        _ => Err(Error::Mtu {
            prog: prog.to_string(),
            value: v.to_string(),
        }),
    }
}

/// Checks `--mgmt-mode` (octal permissions; default 0600).
fn check_mgmt_mode(prog: &str, opts: &Options) -> Result<u32, Error> {
    let Some(v) = opts.mgmt_mode.as_deref() else {
        return Ok(mgmt::DEFAULT_MODE);
    };
    if opts.mgmt.is_none() {
        return Err(Error::MgmtModeAlone {
            prog: prog.to_string(),
        });
    }
    match u32::from_str_radix(v, 8) {
        Ok(m) if m <= 0o777 && !v.is_empty() && !v.starts_with('+') => Ok(m),
        _ => Err(Error::MgmtMode {
            prog: prog.to_string(),
            value: v.to_string(),
        }),
    }
}

/// Checks `--mgmt-group` (a group name in `/etc/group` or a numeric gid)
/// and resolves it. A static program cannot load the NSS modules other
/// than `files` (`uml_common::sys::nss`), so a name is looked up there
/// only; a number is taken as it is.
fn check_mgmt_group(prog: &str, opts: &Options) -> Result<Option<u32>, Error> {
    let Some(v) = opts.mgmt_group.as_deref() else {
        return Ok(None);
    };
    let refuse = |why: &str| Error::MgmtGroup {
        prog: prog.to_string(),
        value: v.to_string(),
        why: why.to_string(),
    };
    if opts.mgmt.is_none() {
        return Err(refuse("needs --mgmt PATH"));
    }
    if !v.is_empty() && v.bytes().all(|b| b.is_ascii_digit()) {
        return match v.parse::<u32>() {
            // (gid_t)-1 means "unchanged" to chown.
            Ok(gid) if gid != u32::MAX => Ok(Some(gid)),
            _ => Err(refuse("not a group id")),
        };
    }
    if v.is_empty() {
        return Err(refuse("no such group"));
    }
    uml_common::sys::nss::prepare().map_err(|e| refuse(&format!("cannot look groups up: {e}")))?;
    uml_common::sys::nss::group_by_name(v.as_bytes())
        .map(Some)
        .ok_or_else(|| {
            refuse(
                "no such group in /etc/group (give a group of another name service by its number)",
            )
        })
}

/// Checks `--nat` (at most one; options parsed and checked against the
/// host, `port/nat.rs`).
fn check_nat(
    prog: &str,
    values: &[String],
) -> Result<Option<(String, uml_common::nat::NatConfig)>, Error> {
    let text = match values {
        [] => return Ok(None),
        [one] => one,
        _ => {
            return Err(Error::NatTwice {
                prog: prog.to_string(),
            })
        }
    };
    let config = uml_common::nat::parse(text).map_err(|why| Error::NatOption {
        prog: prog.to_string(),
        value: text.clone(),
        why,
    })?;
    port::nat::check_host(prog, text, &config)?;
    Ok(Some((text.clone(), config)))
}

/// Removes the socket files of what was opened so far and passes `e` on.
fn abandon(endpoints: &mut [Box<dyn Endpoint>], e: Error) -> Error {
    for endpoint in endpoints {
        endpoint.discard();
    }
    e
}

/// Creates and binds the sockets, prints the start-up lines and returns the
/// switch ready to run; on failure, what was opened is removed again and
/// the error is for the caller to print.
pub fn setup(prog: &str, mut opts: Options) -> Result<Switch, Error> {
    let mtu = check_mtu(prog, opts.mtu.as_deref())?;
    let tunnels = tunnel::check_options(prog, &opts.tunnels, mtu)?;
    let groups = mcast::check_options(prog, &opts.mcast)?;
    let mgmt_mode = check_mgmt_mode(prog, &opts)?;
    let mgmt_group = check_mgmt_group(prog, &opts)?;
    let nat = check_nat(prog, &opts.nat)?;
    let mut vxlans = Vec::new();
    for value in &opts.vxlan {
        let config = port::vxlan::parse_options(value).map_err(|why| Error::VxlanOptions {
            prog: prog.to_string(),
            value: value.clone(),
            why,
        })?;
        vxlans.push(config);
    }
    let mut pcap_ports = Vec::new();
    for value in &opts.pcap_ports {
        let spec =
            uml_common::pcap_port::parse_spec(value).map_err(|why| Error::PcapPortOptions {
                prog: prog.to_string(),
                value: value.clone(),
                why,
            })?;
        pcap_ports.push(PortSpec::Pcap(spec));
    }
    let pcap_format = match opts.pcap_format.as_deref() {
        None => crate::capture::Format::default(),
        Some(v) => crate::capture::Format::parse(v)
            .filter(|_| opts.pcap.is_some())
            .ok_or_else(|| Error::PcapFormat {
                prog: prog.to_string(),
                value: v.to_string(),
            })?,
    };
    let pcap_limit = match opts.pcap_limit.as_deref() {
        None => crate::capture::DEFAULT_LIMIT,
        Some(v) => uml_common::mgmt::parse_size(v)
            .filter(|&n| n >= crate::capture::MIN_LIMIT && opts.pcap.is_some())
            .ok_or_else(|| Error::PcapLimit {
                prog: prog.to_string(),
                value: v.to_string(),
            })?,
    };
    // `--user`: the user is looked up before anything is opened.
    let target = opts
        .user
        .as_deref()
        .map(|spec| user::Target::resolve(prog, spec))
        .transpose()?;
    // Checked first: a terminal hung up right after start-up still counts
    // as one (the C switch checks after its first message).
    let stdin_is_tty = io::stdin().is_terminal();
    // Block the signals we handle before the control socket exists (and
    // before -daemon forks): one arriving during set-up then waits for the
    // event loop and still gets the socket removed.
    let mask = signals::block_handled().map_err(Error::Sigprocmask)?;
    // Fix of C pitfall 37: a relative path could not be removed after
    // -daemon's chdir("/").
    if opts.daemon {
        if let Ok(cwd) = std::env::current_dir() {
            opts.ctl = cwd.join(&opts.ctl);
            opts.data = opts.data.map(|d| cwd.join(d));
            opts.bess = opts.bess.iter().map(|b| cwd.join(b)).collect();
            opts.mgmt = opts.mgmt.map(|m| cwd.join(m));
            opts.pcap = opts.pcap.map(|p| cwd.join(p));
            opts.bess_connect = opts.bess_connect.iter().map(|b| cwd.join(b)).collect();
            opts.qemu_connect = opts.qemu_connect.iter().map(|b| cwd.join(b)).collect();
        }
    }
    // Allow as many ports as the hard limit permits.
    if let Ok((_, hard)) =
        nix::sys::resource::getrlimit(nix::sys::resource::Resource::RLIMIT_NOFILE)
    {
        let _ = nix::sys::resource::setrlimit(
            nix::sys::resource::Resource::RLIMIT_NOFILE,
            hard.min(65_536),
            hard,
        );
    }

    // Socket activation: sockets a service manager bound for us.
    let mut passed = Passed::from_env(prog)?;
    let daemon_spec = PortSpec::Daemon {
        ctl: opts.ctl.clone(),
        data: opts.data.clone(),
    };
    // Only a tap is optional (Ok(None)); it is opened below.
    let mut endpoints: Vec<Box<dyn Endpoint>> = Vec::new();
    let ctl_passed = if opts.data.is_none() {
        passed.take(libc::SOCK_STREAM, &opts.ctl)
    } else {
        None
    };
    let bess_passed: Vec<_> = opts
        .bess
        .iter()
        .map(|path| passed.take(libc::SOCK_SEQPACKET, path))
        .collect();
    let mgmt_passed = opts
        .mgmt
        .as_ref()
        .and_then(|path| passed.take(libc::SOCK_STREAM, path));
    // The files the switch makes (and removes at exit, or rotates): with
    // --user, given to the user at the drop, their directories checked now.
    let mut files = Vec::new();
    if ctl_passed.is_none() {
        files.push(opts.ctl.clone());
    }
    files.extend(opts.data.clone());
    for (path, fd) in opts.bess.iter().zip(&bess_passed) {
        if fd.is_none() {
            files.push(path.clone());
        }
    }
    if let (Some(path), None) = (&opts.mgmt, &mgmt_passed) {
        files.push(path.clone());
    }
    files.extend(opts.pcap.clone());
    let keep = user::needed(
        &opts
            .raw
            .iter()
            .map(|ifname| PortSpec::Raw {
                ifname: ifname.clone(),
            })
            .chain(tunnels.iter().cloned().map(PortSpec::Tunnel))
            .collect::<Vec<_>>(),
    );
    if let Some(t) = &target {
        user::check_dirs(prog, t, &files)?;
    }
    endpoints.extend(port::open_passed(prog, &daemon_spec, ctl_passed)?);
    for (path, fd) in opts.bess.iter().zip(bess_passed) {
        match port::open_passed(prog, &PortSpec::Bess { path: path.clone() }, fd) {
            Ok(e) => endpoints.extend(e),
            Err(e) => return Err(abandon(&mut endpoints, e)),
        }
    }
    let mut announcements = Vec::new();
    for config in tunnels {
        match port::open(prog, &PortSpec::Tunnel(config)) {
            Ok(Some(e)) => {
                announcements.extend(e.announce());
                endpoints.push(e);
            }
            Ok(None) => {}
            Err(e) => return Err(abandon(&mut endpoints, e)),
        }
    }
    let others = opts
        .raw
        .iter()
        .map(|ifname| PortSpec::Raw {
            ifname: ifname.clone(),
        })
        .chain(groups.into_iter().map(PortSpec::Mcast))
        .chain(vxlans.into_iter().map(PortSpec::Vxlan))
        .chain(pcap_ports)
        .chain(
            opts.bess_connect
                .iter()
                .map(|path| PortSpec::BessConnect { path: path.clone() }),
        )
        .chain(
            opts.qemu_connect
                .iter()
                .map(|path| PortSpec::QemuConnect { path: path.clone() }),
        )
        .chain(nat.map(|(text, config)| PortSpec::Nat {
            text,
            config,
            run_as: target.as_ref().map(|t| (t.uid, t.gid)),
        }));
    for spec in others {
        match port::open(prog, &spec) {
            Ok(Some(e)) => {
                announcements.extend(e.announce());
                endpoints.push(e);
            }
            Ok(None) => {}
            Err(e) => return Err(abandon(&mut endpoints, e)),
        }
    }

    let mut mgmt = match &opts.mgmt {
        None => None,
        Some(path) => match Mgmt::open(path, mgmt_mode, mgmt_passed).and_then(|mut m| {
            match mgmt_group.map(|gid| m.set_group(gid)) {
                Some(Err(e)) => {
                    m.cleanup();
                    Err(e)
                }
                _ => Ok(m),
            }
        }) {
            Ok(m) => Some(m),
            Err(source) => {
                let e = Error::Mgmt {
                    prog: prog.to_string(),
                    path: path.clone(),
                    source,
                };
                return Err(abandon(&mut endpoints, e));
            }
        },
    };

    passed.close_rest(prog);
    let capture = match &opts.pcap {
        None => None,
        Some(path) => match Capture::start_as(path, Filter::All, pcap_limit, pcap_format) {
            Ok(c) => Some(c),
            Err(source) => {
                if let Some(m) = &mut mgmt {
                    m.cleanup();
                }
                let e = Error::Pcap {
                    prog: prog.to_string(),
                    source,
                };
                return Err(abandon(&mut endpoints, e));
            }
        },
    };

    let mut line = match &opts.data {
        Some(d) => format!(
            "{prog} attached to unix sockets '{}' and '{}'",
            opts.ctl.display(),
            d.display()
        ),
        None => format!("{prog} attached to unix socket '{}'", opts.ctl.display()),
    };
    if let Some(t) = &opts.tap {
        line.push_str(&format!(" tap device '{t}'"));
    }
    line.push('\n');
    // Then how guests join each listener: the control socket (daemon
    // transport, vde_plug), each bess socket, the tunnel, raw and mcast
    // ports. Written at once with the `attached` line, so that whoever
    // waits for that line finds the others too.
    if let Some(text) = endpoints.first().and_then(|e| e.announce()) {
        line.push_str(&text);
    }
    for path in &opts.bess {
        line.push_str(&format!(
            "bess socket '{}': guests join with {}\n",
            path.display(),
            bess::guest_argument(path)
        ));
    }
    for a in &announcements {
        line.push_str(a);
    }
    if let Some(path) = &opts.pcap {
        line.push_str(&format!("capturing every frame to '{}'\n", path.display()));
    }
    if let Some(m) = &mgmt {
        line.push_str(&format!(
            "management socket '{}': {prog} --mgmt {} help\n",
            m.path().display(),
            m.path().display()
        ));
    }
    // A tap that cannot be opened is reported (a warning, printed by
    // Tap::open); the switch runs without. After the `attached` line, as
    // in C; with --user before it, so that the line is printed by a switch
    // that has given up root.
    let open_tap = |endpoints: &mut Vec<Box<dyn Endpoint>>| {
        if let Some(name) = &opts.tap {
            if let Ok(Some(e)) = port::open(prog, &PortSpec::Tap { name: name.clone() }) {
                endpoints.push(e);
            }
        }
    };
    if let Some(t) = &target {
        open_tap(&mut endpoints);
        if let Err(e) = user::drop_to(prog, t, keep, &files) {
            if let Some(m) = &mut mgmt {
                m.cleanup();
            }
            return Err(abandon(&mut endpoints, e));
        }
    }
    out(&line);
    if target.is_none() {
        open_tap(&mut endpoints);
    }

    let mut abandon = |endpoints: &mut Vec<Box<dyn Endpoint>>, e: Error| {
        if let Some(m) = &mut mgmt {
            m.cleanup();
        }
        abandon(endpoints, e)
    };
    if opts.daemon {
        if let Err(e) = nix::unistd::daemon(false, true) {
            return Err(abandon(&mut endpoints, Error::Daemon(e)));
        }
    }

    // After daemon(): an epoll instance watching a signalfd does not follow
    // fork. The event loop's own descriptors live above the ones users
    // see, so that ports get the same numbers as with the C switch.
    let epoll = Epoll::new(EpollCreateFlags::EPOLL_CLOEXEC)
        .map_err(io::Error::from)
        .and_then(|e| move_high(e.0, HIGH_FD))
        .map(Epoll);
    let epoll = match epoll {
        Ok(e) => e,
        Err(e) => return Err(abandon(&mut endpoints, Error::Epoll(e))),
    };
    let signals = match signals::open_signalfd(&mask, HIGH_FD) {
        Ok(s) => s,
        Err(e) => return Err(abandon(&mut endpoints, Error::Signalfd(e))),
    };
    let forwarding = Forwarding {
        hub: opts.hub,
        max_frame: mtu as usize + uml_common::switch::ETH_HEADER_LEN,
        watch_stdin: stdin_is_tty,
    };
    let mut sw = Switch::new(prog, forwarding, epoll, signals, endpoints, mgmt)?;
    if let Some(c) = capture {
        sw.set_capture(c);
    }
    Ok(sw)
}
