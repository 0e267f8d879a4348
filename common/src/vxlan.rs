//! VXLAN (RFC 7348) framing, for trunks between switches on different
//! hosts over the overlay that Linux `vxlan` devices and Open vSwitch
//! speak: an Ethernet frame behind an 8-byte header in a UDP datagram
//! (IANA port 4789). Pure: no I/O.
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

#[cfg(test)]
mod tests {
    use super::*;

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
