//! `uml_common`: every wire format and shared rule of the UML host utilities.
//!
//! Everything here is pure (byte slices in, values out) so that each format
//! is unit-tested against the byte vectors of `docs/` without a socket or a
//! kernel. I/O and policy live in the binary crates.
#![deny(unsafe_code)]

pub mod activation;
pub mod cli;
pub mod cow;
pub mod inuse;
pub mod mconsole;
pub mod mgmt;
pub mod nat;
pub mod pcap_port;
pub mod qemu_stream;
pub mod switch;
#[allow(unsafe_code)]
pub mod sys;
#[cfg(any(test, feature = "test-support"))]
pub mod testrng;
pub mod tunnel;
pub mod tunnel_opts;
pub mod umid;
pub mod umlnet;
pub mod vlan;
pub mod vxlan;
