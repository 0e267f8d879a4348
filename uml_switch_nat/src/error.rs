//! The helper's errors: each is printed once by `uumain`, which exits 1
//! (the switch then reports that its NAT port failed to start).

use std::io;

use uml_common::cli::strerror;
use uml_common::nat::{HostFwd, NatOptionError};

/// Why the helper stops.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// Wrong arguments.
    #[error("usage: uml_switch_nat [OPTIONS] (started by uml_switch --nat, the frame socket on standard input)")]
    Usage,
    /// Bad options (the switch checks them first, so only when run by
    /// hand).
    #[error("--nat: {0}")]
    Options(#[from] NatOptionError),
    /// Standard input is not the switch's `SOCK_SEQPACKET` socket.
    #[error(
        "standard input is not a SOCK_SEQPACKET socket (the helper is started by uml_switch --nat)"
    )]
    NotASocket,
    /// libslirp refused to start.
    #[error("cannot start libslirp: {}", strerror(.0))]
    Stack(io::Error),
    /// A forward's host socket could not be made.
    #[error("hostfwd={fwd}: cannot listen on the host: {}", strerror(.source))]
    HostFwd {
        /// The forward.
        fwd: HostFwd,
        /// Why.
        source: io::Error,
    },
    /// The socket to the switch failed.
    #[error("the switch's socket: {}", strerror(.0))]
    Socket(io::Error),
}
