//! `uml_net`: the helper the UML kernel runs (setuid root, mode 4754
//! root:uml-net) to create a tap for `eth0=tuntap,,,GATEWAY`, to add and
//! remove a host route and proxy ARP when the guest sets an address, and
//! for the `ethertap` and `slip` transports (`docs/uml_net.md`).
//!
//! A straight line, no shell, no PATH: sanitise the process → parse and
//! validate argv completely → check ownership and policy → change the host
//! through netlink and `/proc/sys` → report to the kernel in the exact
//! framing. A refused request changes nothing.
#![forbid(unsafe_code)]

pub mod actions;
#[cfg(feature = "clap-command")]
pub mod command;
mod error;
pub mod nl;
pub mod policy;
pub mod privs;
pub mod reply;

use std::ffi::OsString;
use std::io::{self, Write};

use uml_common::umlnet::{parse_argv, Parsed, Request};

pub use crate::error::Error;
use crate::reply::delivered;

/// The helper: `args` is argv (program name first). Returns the exit
/// status. Argument errors go to stderr or stdout, as the C helper prints
/// them, or into the reply in the transport's framing; everything after
/// validation is answered in the reply ([`actions::perform`]).
pub fn uumain(args: impl IntoIterator<Item = OsString>) -> i32 {
    // 1. Process hygiene before anything else; a step that fails stops
    // the helper here.
    privs::clear_environment();
    if let Err(e) = privs::harden_process() {
        let _ = writeln!(io::stderr(), "{e}");
        return e.exit_code();
    }
    // Arguments that are not UTF-8 cannot be valid; they are replaced and
    // then refused by the validation.
    let argv: Vec<String> = args
        .into_iter()
        .map(|a| a.to_string_lossy().into_owned())
        .collect();
    let parsed = parse_argv(&argv);
    let mut keep = Vec::new();
    if let Parsed::Run { request, .. } = &parsed {
        match request {
            Request::Ethertap { data_fd, .. } => keep.push(*data_fd),
            Request::TuntapUp { reply_fd, .. } => keep.push(*reply_fd),
            _ => {}
        }
    }
    privs::close_other_fds(&keep);

    // 2. Complete validation (in uml_common::umlnet).
    let (transport, request) = match parsed {
        Parsed::Stderr(e) => {
            let _ = writeln!(io::stderr(), "{e}");
            return Error::from(e).exit_code();
        }
        Parsed::Stdout(e) => {
            let mut stdout = io::stdout();
            let _ = writeln!(stdout, "{e}").and_then(|()| stdout.flush());
            return Error::from(e).exit_code();
        }
        Parsed::Refuse {
            transport,
            reply_fd,
            error,
        } => {
            let error = Error::from(error);
            delivered(reply::refuse(transport, reply_fd, &format!("{error}\n")));
            return error.exit_code();
        }
        Parsed::Run {
            transport, request, ..
        } => (transport, request),
    };

    // The clone device may be readable by root only (mode 0600): open it
    // while still root, attach later with CAP_NET_ADMIN alone.
    let clone = match request {
        Request::TuntapUp { .. } => Some(
            std::fs::OpenOptions::new()
                .read(true)
                .write(true)
                .open(uml_common::sys::tun::DEFAULT_CLONE_DEVICE),
        ),
        _ => None,
    };
    // Names in the policy file resolve through the system's NSS
    // configuration (uml_net is linked dynamically; glibc's secure mode
    // keeps the loader's environment out, and the environment was cleared
    // above). A static build would use /etc files only, since a static
    // binary cannot load other NSS modules safely.
    let _ = uml_common::sys::nss::prepare();
    // The policy file may be root's alone (mode 0600): read it while still
    // root, through root-owned directories only (policy::read); it is
    // parsed, and its names looked up, after the drop.
    let policy = policy::read(std::path::Path::new(policy::POLICY_PATH));

    // 3. Only CAP_NET_ADMIN from here on. A failed step stops the helper
    // before any change: on stderr, and in the reply for the kernel.
    if let Err(error) = privs::drop_to_net_admin() {
        let _ = writeln!(io::stderr(), "{error}");
        let reply_fd = match request {
            Request::TuntapUp { reply_fd, .. } => reply_fd,
            _ => 1,
        };
        delivered(reply::refuse(transport, reply_fd, &format!("{error}\n")));
        return error.exit_code();
    }

    // 4. Policy, ownership, then the changes; 5. the reply.
    actions::perform(transport, request, clone, policy)
}
