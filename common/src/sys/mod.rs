//! The only `unsafe` code of the workspace: thin, safe wrappers around the
//! system calls that std and nix do not offer in the form the tools need.
//! Each wrapper is small, documents its invariants with `// SAFETY:`
//! comments and has a unit test.

pub mod caps;
pub mod extents;
pub mod fd;
pub mod ipsock;
pub mod lock;
pub mod mcast;
pub mod mmsg;
pub mod nss;
pub mod packet;
pub mod process;
pub mod reflink;
pub mod seqpacket;
pub mod signal;
pub mod slip;
pub mod tun;
pub mod writeback;
