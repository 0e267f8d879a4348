//! VXLAN (RFC 7348) framing, for trunks between switches on different
//! hosts over the overlay that Linux `vxlan` devices and Open vSwitch
//! speak: an Ethernet frame behind an 8-byte header in a UDP datagram
//! (IANA port 4789). Pure: no I/O. Also the table of which remote
//! endpoint each MAC address is behind ([`RemoteTable`]).
//!
//! Header: flags (one byte, the I bit 0x08 set: the VNI is valid), 24
//! reserved bits, the 24-bit VXLAN network identifier, 8 reserved bits.
//! Receivers ignore the reserved bits (RFC 7348 §5) but require the I bit.

/// The IANA-assigned UDP port.
pub const PORT: u16 = 4789;
/// Length of the VXLAN header.
pub const HEADER_LEN: usize = 8;
/// The I flag: the VNI is valid.
const FLAG_I: u8 = 0x08;
/// The largest VNI (24 bits).
pub const MAX_VNI: u32 = 0x00ff_ffff;

/// Why a datagram is not a VXLAN frame of ours.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum VxlanError {
    /// Shorter than the header and an Ethernet header.
    #[error("datagram of {0} bytes is too short for VXLAN")]
    Short(usize),
    /// The I flag is not set.
    #[error("VXLAN header without the I flag (flags {0:#04x})")]
    NoVni(u8),
    /// Another network's frame.
    #[error("VXLAN network {got}, not {want}")]
    OtherVni {
        /// The datagram's VNI.
        got: u32,
        /// Ours.
        want: u32,
    },
}

/// The header of a frame of network `vni` (only its low 24 bits count).
pub fn header(vni: u32) -> [u8; HEADER_LEN] {
    let v = (vni & MAX_VNI).to_be_bytes();
    [FLAG_I, 0, 0, 0, v[1], v[2], v[3], 0]
}

/// The VNI of a VXLAN datagram.
pub fn vni_of(datagram: &[u8]) -> Result<u32, VxlanError> {
    if datagram.len() < HEADER_LEN + 14 {
        return Err(VxlanError::Short(datagram.len()));
    }
    if datagram[0] & FLAG_I == 0 {
        return Err(VxlanError::NoVni(datagram[0]));
    }
    Ok(u32::from_be_bytes([
        0,
        datagram[4],
        datagram[5],
        datagram[6],
    ]))
}

/// The Ethernet frame of a datagram of network `vni`.
pub fn decode(datagram: &[u8], vni: u32) -> Result<&[u8], VxlanError> {
    let got = vni_of(datagram)?;
    if got != vni & MAX_VNI {
        return Err(VxlanError::OtherVni {
            got,
            want: vni & MAX_VNI,
        });
    }
    Ok(&datagram[HEADER_LEN..])
}

/// Where the MAC addresses behind a trunk's remote endpoints are, as a
/// Linux vxlan device's forwarding database learns them (RFC 7348 §4.1):
/// a frame received from remote `r` teaches that its source MAC is behind
/// `r`; a unicast frame to a known MAC is then sent to that remote only,
/// and everything else (unknown, broadcast and multicast destinations) is
/// flooded to every remote of the static list (§4.2, head-end
/// replication). Entries not refreshed for `max_age` seconds are
/// forgotten, as in the switch's MAC table; at most `cap` are kept (a
/// full table learns nothing more, which only means more flooding).
/// Remotes are indices into the caller's list; times are seconds of the
/// caller's monotonic clock.
#[derive(Debug, Clone)]
pub struct RemoteTable {
    map: std::collections::HashMap<[u8; 6], (usize, u32)>,
    max_age: u32,
    cap: usize,
}

impl RemoteTable {
    /// An empty table.
    pub fn new(max_age: u32, cap: usize) -> RemoteTable {
        RemoteTable {
            map: std::collections::HashMap::new(),
            max_age,
            cap,
        }
    }

    /// Learns from `frame` (an Ethernet frame) received from remote
    /// `remote` at time `now`: its source MAC, unless that is a group
    /// address (never a station) or the frame is too short.
    pub fn learn(&mut self, frame: &[u8], remote: usize, now: u32) {
        let Some(src) = frame.get(6..12) else {
            return;
        };
        let mut mac = [0u8; 6];
        mac.copy_from_slice(src);
        if mac[0] & 1 != 0 {
            return;
        }
        if self.map.len() >= self.cap && !self.map.contains_key(&mac) {
            self.expire(now);
            if self.map.len() >= self.cap {
                return;
            }
        }
        self.map.insert(mac, (remote, now));
    }

    /// The one remote to send `frame` to at time `now`, or `None` to flood
    /// it to all: its destination is a group address, unknown, or was
    /// last seen more than `max_age` seconds ago.
    pub fn remote_for(&self, frame: &[u8], now: u32) -> Option<usize> {
        let dst = frame.get(..6)?;
        if dst[0] & 1 != 0 {
            return None;
        }
        let mut mac = [0u8; 6];
        mac.copy_from_slice(dst);
        let &(remote, seen) = self.map.get(&mac)?;
        (now.saturating_sub(seen) <= self.max_age).then_some(remote)
    }

    /// Forgets the entries not seen for more than `max_age` seconds;
    /// returns how many.
    pub fn expire(&mut self, now: u32) -> usize {
        let before = self.map.len();
        let max_age = self.max_age;
        self.map
            .retain(|_, (_, seen)| now.saturating_sub(*seen) <= max_age);
        before - self.map.len()
    }

    /// Entries held.
    pub fn len(&self) -> usize {
        self.map.len()
    }

    /// Whether it holds no entry.
    pub fn is_empty(&self) -> bool {
        self.map.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A frame from `src` to `dst` (MACs, EtherType IPv4, no payload).
    fn eth(dst: [u8; 6], src: [u8; 6]) -> Vec<u8> {
        let mut f = dst.to_vec();
        f.extend_from_slice(&src);
        f.extend_from_slice(&[0x08, 0x00]);
        f
    }

    const A: [u8; 6] = [0x02, 0, 0, 0, 0, 0x0a];
    const B: [u8; 6] = [0x02, 0, 0, 0, 0, 0x0b];
    const LOCAL: [u8; 6] = [0x02, 0, 0, 0, 0, 0x01];
    const BCAST: [u8; 6] = [0xff; 6];
    const MCAST: [u8; 6] = [0x01, 0x00, 0x5e, 0, 0, 1];

    #[test]
    fn a_learned_unicast_goes_to_its_remote_and_the_rest_floods() {
        let mut t = RemoteTable::new(100, 16);
        // Nothing known: flood.
        assert_eq!(t.remote_for(&eth(A, LOCAL), 0), None);
        t.learn(&eth(BCAST, A), 0, 5);
        t.learn(&eth(LOCAL, B), 1, 5);
        assert_eq!(t.remote_for(&eth(A, LOCAL), 5), Some(0));
        assert_eq!(t.remote_for(&eth(B, LOCAL), 5), Some(1));
        // Broadcast, multicast and unknown unicast flood.
        assert_eq!(t.remote_for(&eth(BCAST, LOCAL), 5), None);
        assert_eq!(t.remote_for(&eth(MCAST, LOCAL), 5), None);
        assert_eq!(t.remote_for(&eth(LOCAL, A), 5), None);
        // A moves to remote 1.
        t.learn(&eth(LOCAL, A), 1, 6);
        assert_eq!(t.remote_for(&eth(A, LOCAL), 6), Some(1));
        assert_eq!(t.len(), 2);
    }

    #[test]
    fn group_sources_and_runts_teach_nothing() {
        let mut t = RemoteTable::new(100, 16);
        t.learn(&eth(LOCAL, MCAST), 0, 0);
        t.learn(&eth(LOCAL, BCAST), 0, 0);
        t.learn(&[0x02; 11], 0, 0);
        assert!(t.is_empty());
        assert_eq!(t.remote_for(&[0x02; 5], 0), None);
        assert_eq!(t.remote_for(&[], 0), None);
    }

    #[test]
    fn entries_age_out_after_max_age_seconds() {
        let mut t = RemoteTable::new(100, 16);
        t.learn(&eth(LOCAL, A), 0, 10);
        t.learn(&eth(LOCAL, B), 1, 60);
        assert_eq!(t.remote_for(&eth(A, LOCAL), 110), Some(0));
        // Stale: flooded again, even before expire() sweeps it.
        assert_eq!(t.remote_for(&eth(A, LOCAL), 111), None);
        assert_eq!(t.expire(111), 1);
        assert_eq!(t.remote_for(&eth(B, LOCAL), 111), Some(1));
        // Refreshed by a later frame.
        t.learn(&eth(LOCAL, B), 1, 150);
        assert_eq!(t.remote_for(&eth(B, LOCAL), 250), Some(1));
        assert_eq!(t.expire(251), 1);
        assert!(t.is_empty());
    }

    #[test]
    fn a_full_table_sweeps_then_stops_learning() {
        let mut t = RemoteTable::new(100, 2);
        t.learn(&eth(LOCAL, A), 0, 0);
        t.learn(&eth(LOCAL, B), 0, 50);
        // Full: the new MAC is not learned (flooded instead)...
        let c = [0x02, 0, 0, 0, 0, 0x0c];
        t.learn(&eth(LOCAL, c), 1, 60);
        assert_eq!(t.remote_for(&eth(c, LOCAL), 60), None);
        // ...but a known one is refreshed, and a stale one makes room.
        t.learn(&eth(LOCAL, B), 1, 60);
        assert_eq!(t.remote_for(&eth(B, LOCAL), 60), Some(1));
        t.learn(&eth(LOCAL, c), 1, 101);
        assert_eq!(t.remote_for(&eth(c, LOCAL), 101), Some(1));
        assert_eq!(t.remote_for(&eth(A, LOCAL), 101), None);
        assert_eq!(t.len(), 2);
    }

    #[test]
    fn header_bytes_as_rfc_7348_lays_them_out() {
        assert_eq!(header(42), [0x08, 0, 0, 0, 0, 0, 0x2a, 0]);
        assert_eq!(header(0x123456), [0x08, 0, 0, 0, 0x12, 0x34, 0x56, 0]);
        // Only 24 bits.
        assert_eq!(header(0xff00_0001), header(1));
    }

    #[test]
    fn datagrams_are_checked_before_their_frame_is_used() {
        let frame = [0xaau8; 14];
        let mut d = header(7).to_vec();
        d.extend_from_slice(&frame);
        assert_eq!(decode(&d, 7), Ok(&frame[..]));
        assert_eq!(vni_of(&d), Ok(7));
        assert_eq!(decode(&d, 8), Err(VxlanError::OtherVni { got: 7, want: 8 }));
        // Reserved bits set by a peer are ignored.
        let mut r = d.clone();
        r[1] = 0xff;
        r[7] = 0xff;
        r[0] |= 0x80;
        assert_eq!(decode(&r, 7), Ok(&frame[..]));
        let mut no_i = d.clone();
        no_i[0] = 0;
        assert_eq!(decode(&no_i, 7), Err(VxlanError::NoVni(0)));
        assert_eq!(decode(&d[..21], 7), Err(VxlanError::Short(21)));
        assert_eq!(decode(&[], 7), Err(VxlanError::Short(0)));
    }
}
