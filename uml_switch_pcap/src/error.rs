//! Errors of the capture helper.

/// Why the helper stops.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A bad command line (it is run by uml_switch, not by hand).
    #[error("usage: uml_switch_pcap --fd N IFNAME [FILTER] ({0})")]
    Usage(String),
    /// libpcap could not open the interface.
    #[error("cannot capture on '{ifname}': {why}")]
    Open {
        /// The interface.
        ifname: String,
        /// libpcap's message.
        why: String,
    },
    /// The interface's frames are not Ethernet frames.
    #[error("'{ifname}' is not an Ethernet interface (libpcap link type {linktype})")]
    NotEthernet {
        /// The interface.
        ifname: String,
        /// Its link type.
        linktype: i32,
    },
    /// The filter does not compile, or cannot be set.
    #[error("bad filter '{filter}': {why}")]
    Filter {
        /// The expression.
        filter: String,
        /// libpcap's message.
        why: String,
    },
    /// Dropping privileges failed.
    #[error("cannot drop privileges: {0}")]
    Drop(String),
    /// Capturing failed after the start (the interface went away, ...).
    #[error("capture on '{ifname}' failed: {why}")]
    Capture {
        /// The interface.
        ifname: String,
        /// libpcap's message.
        why: String,
    },
    /// The switch's socket failed.
    #[error("switch socket: {0}")]
    Socket(nix::errno::Errno),
}
