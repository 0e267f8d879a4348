//! IEEE 802.1Q VLANs for the switch: the tag, the VLANs of a port, and
//! the per-frame decisions (which VLAN a received frame belongs to, how it
//! leaves each port). Pure: no I/O. The model is vde_switch's, made
//! transparent by default:
//!
//! * every port has an *access* VLAN (its untagged frames belong to it)
//!   and a set of *trunk* VLANs (frames tagged with one of those belong to
//!   that VLAN; the tag is its business on the wire only);
//! * VLAN 0 is the default access VLAN and is never tagged: a switch with
//!   no VLAN configured forwards every frame untouched, tagged or not, so
//!   guests may run their own VLANs, STP or LLDP through it;
//! * a tagged frame whose VLAN is not one of the port's trunk VLANs is an
//!   ordinary frame of the port's access VLAN (it keeps its tag: layer 2
//!   stays transparent);
//! * a frame of VLAN V leaves a port untagged if V is the port's access
//!   VLAN, tagged with V if V is one of its trunk VLANs, and not at all
//!   otherwise. A frame that arrived tagged and leaves tagged is forwarded
//!   byte for byte (its priority bits kept).
//!
//! The forwarding table is keyed by (VLAN, MAC), so one MAC may sit on
//! different ports in different VLANs.

use std::fmt;
use std::str::FromStr;

/// The 802.1Q tag protocol identifier (C-VLAN).
pub const TPID_8021Q: u16 = 0x8100;
/// Offset of the EtherType (or TPID) in an Ethernet frame.
const TYPE_AT: usize = 12;
/// Length of an 802.1Q tag.
pub const TAG_LEN: usize = 4;
/// The largest VLAN id (4095 is reserved).
pub const MAX_VID: u16 = 4094;

/// The tag of a frame.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Tag {
    /// Priority code point (0-7).
    pub pcp: u8,
    /// Drop eligible indicator.
    pub dei: bool,
    /// VLAN id (0: priority tag only).
    pub vid: u16,
}

impl Tag {
    /// The tag's TCI field.
    pub fn tci(self) -> u16 {
        (u16::from(self.pcp & 7) << 13) | (u16::from(self.dei) << 12) | (self.vid & 0x0fff)
    }

    /// The four bytes inserted after the source MAC.
    pub fn bytes(self) -> [u8; TAG_LEN] {
        let [t0, t1] = TPID_8021Q.to_be_bytes();
        let [c0, c1] = self.tci().to_be_bytes();
        [t0, t1, c0, c1]
    }
}

/// The 802.1Q tag of `frame`, if it has one (after the two MACs).
pub fn tag_of(frame: &[u8]) -> Option<Tag> {
    let tpid = frame.get(TYPE_AT..TYPE_AT + 2)?;
    if u16::from_be_bytes([tpid[0], tpid[1]]) != TPID_8021Q {
        return None;
    }
    let tci = frame.get(TYPE_AT + 2..TYPE_AT + 4)?;
    let tci = u16::from_be_bytes([tci[0], tci[1]]);
    Some(Tag {
        pcp: (tci >> 13) as u8,
        dei: tci & 0x1000 != 0,
        vid: tci & 0x0fff,
    })
}

/// Why a VLAN id or list was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum VlanError {
    /// Not a number from 1 to 4094.
    #[error("'{0}' is not a VLAN id (1-4094)")]
    BadId(String),
    /// A range whose end is before its start.
    #[error("'{0}' is not a VLAN range (FIRST-LAST, FIRST <= LAST)")]
    BadRange(String),
    /// The access VLAN is also a trunk VLAN of the port.
    #[error("VLAN {0} is both the port's access VLAN and one of its trunk VLANs")]
    AccessInTrunk(u16),
}

/// A VLAN id from 1 to 4094.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Vid(u16);

impl Vid {
    /// `vid` if it is from 1 to 4094.
    pub fn new(vid: u16) -> Option<Vid> {
        (1..=MAX_VID).contains(&vid).then_some(Vid(vid))
    }

    /// Its number.
    pub fn get(self) -> u16 {
        self.0
    }
}

impl FromStr for Vid {
    type Err = VlanError;
    fn from_str(s: &str) -> Result<Vid, VlanError> {
        s.parse::<u16>()
            .ok()
            .filter(|_| s.bytes().all(|b| b.is_ascii_digit()))
            .and_then(Vid::new)
            .ok_or_else(|| VlanError::BadId(s.to_string()))
    }
}

impl fmt::Display for Vid {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

/// A set of VLAN ids (a bitmap of 4096 bits).
#[derive(Clone, PartialEq, Eq)]
pub struct VidSet([u64; 64]);

impl Default for VidSet {
    fn default() -> VidSet {
        VidSet([0; 64])
    }
}

impl fmt::Debug for VidSet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "VidSet({self})")
    }
}

impl VidSet {
    /// Adds `vid`.
    pub fn insert(&mut self, vid: Vid) {
        self.0[usize::from(vid.0 / 64)] |= 1 << (vid.0 % 64);
    }

    /// Whether `vid` (any 12-bit number) is in the set.
    #[inline]
    pub fn contains(&self, vid: u16) -> bool {
        let vid = vid & 0x0fff;
        self.0[usize::from(vid / 64)] & (1 << (vid % 64)) != 0
    }

    /// Whether the set is empty.
    pub fn is_empty(&self) -> bool {
        self.0.iter().all(|w| *w == 0)
    }

    /// The ids in the set, in order.
    pub fn iter(&self) -> impl Iterator<Item = u16> + '_ {
        (1..=MAX_VID).filter(|&v| self.contains(v))
    }
}

/// `10,20-29,4094`: ids and inclusive ranges separated by commas.
impl FromStr for VidSet {
    type Err = VlanError;
    fn from_str(s: &str) -> Result<VidSet, VlanError> {
        let mut set = VidSet::default();
        for item in s.split(',') {
            match item.split_once('-') {
                None => set.insert(item.parse()?),
                Some((a, b)) => {
                    let (a, b): (Vid, Vid) = (a.parse()?, b.parse()?);
                    if a > b {
                        return Err(VlanError::BadRange(item.to_string()));
                    }
                    for v in a.0..=b.0 {
                        set.insert(Vid(v));
                    }
                }
            }
        }
        Ok(set)
    }
}

/// Ranges collapsed: `10,20-29,4094` (empty set: `-`).
impl fmt::Display for VidSet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut first = true;
        let mut ids = self.iter().peekable();
        while let Some(start) = ids.next() {
            let mut end = start;
            while ids.peek() == Some(&(end + 1)) {
                end = ids.next().unwrap_or(end);
            }
            if !first {
                f.write_str(",")?;
            }
            first = false;
            if end == start {
                write!(f, "{start}")?;
            } else {
                write!(f, "{start}-{end}")?;
            }
        }
        if first {
            f.write_str("-")?;
        }
        Ok(())
    }
}

/// The VLANs of one port.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PortVlans {
    /// The VLAN of its untagged frames (0: the default, untagged VLAN).
    access: u16,
    /// The VLANs it carries tagged.
    trunk: VidSet,
}

/// Which VLAN a received frame belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Classified {
    /// The VLAN (0: the default VLAN).
    pub vlan: u16,
    /// Whether the frame carries that VLAN's tag (it came in on a trunk).
    pub tagged: bool,
}

/// How a frame of some VLAN leaves a port.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Egress {
    /// Without the VLAN's tag.
    Untagged,
    /// With the VLAN's tag.
    Tagged,
    /// The port is not in that VLAN.
    NotMember,
}

impl PortVlans {
    /// A port of access VLAN `access` (`None`: the default VLAN) that
    /// also carries `trunk` tagged.
    pub fn new(access: Option<Vid>, trunk: VidSet) -> Result<PortVlans, VlanError> {
        let access = access.map_or(0, Vid::get);
        if access != 0 && trunk.contains(access) {
            return Err(VlanError::AccessInTrunk(access));
        }
        Ok(PortVlans { access, trunk })
    }

    /// Its access VLAN (0: the default VLAN).
    pub fn access(&self) -> u16 {
        self.access
    }

    /// Its trunk VLANs.
    pub fn trunk(&self) -> &VidSet {
        &self.trunk
    }

    /// Whether the port is as every port is without VLANs configured.
    pub fn is_default(&self) -> bool {
        self.access == 0 && self.trunk.is_empty()
    }

    /// The VLAN of `frame`, received on this port.
    #[inline]
    pub fn classify(&self, frame: &[u8]) -> Classified {
        if !self.trunk.is_empty() {
            if let Some(tag) = tag_of(frame) {
                if tag.vid != 0 && self.trunk.contains(tag.vid) {
                    return Classified {
                        vlan: tag.vid,
                        tagged: true,
                    };
                }
            }
        }
        Classified {
            vlan: self.access,
            tagged: false,
        }
    }

    /// How a frame of `vlan` leaves this port.
    #[inline]
    pub fn egress(&self, vlan: u16) -> Egress {
        if vlan == self.access {
            Egress::Untagged
        } else if vlan != 0 && self.trunk.contains(vlan) {
            Egress::Tagged
        } else {
            Egress::NotMember
        }
    }
}

/// The bytes of `frame` (classified as `class` where it came in) as they
/// leave a port with `egress` (not [`Egress::NotMember`]): unchanged when
/// its tagging does not change (borrowed), else rewritten into `buf`. A
/// frame too short to hold its tag is returned unchanged.
pub fn rewrite<'a>(
    frame: &'a [u8],
    class: Classified,
    egress: Egress,
    buf: &'a mut Vec<u8>,
) -> &'a [u8] {
    match (class.tagged, egress) {
        (true, Egress::Untagged) if frame.len() >= TYPE_AT + TAG_LEN => {
            buf.clear();
            buf.extend_from_slice(&frame[..TYPE_AT]);
            buf.extend_from_slice(&frame[TYPE_AT + TAG_LEN..]);
            buf
        }
        (false, Egress::Tagged) if frame.len() >= TYPE_AT => {
            let tag = Tag {
                pcp: 0,
                dei: false,
                vid: class.vlan,
            };
            buf.clear();
            buf.extend_from_slice(&frame[..TYPE_AT]);
            buf.extend_from_slice(&tag.bytes());
            buf.extend_from_slice(&frame[TYPE_AT..]);
            buf
        }
        _ => frame,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// dst 02:..:01, src 02:..:02, then `rest` (EtherType or tag onward).
    fn frame(rest: &[u8]) -> Vec<u8> {
        let mut f = vec![2, 0, 0, 0, 0, 1, 2, 0, 0, 0, 0, 2];
        f.extend_from_slice(rest);
        f
    }

    fn port(access: u16, trunk: &str) -> PortVlans {
        let trunk = if trunk.is_empty() {
            VidSet::default()
        } else {
            trunk.parse().unwrap()
        };
        PortVlans::new(Vid::new(access), trunk).unwrap()
    }

    #[test]
    fn tags_are_read_and_written_as_on_the_wire() {
        // TPID 0x8100, PCP 5, DEI 1, VID 0x123: TCI = 101 1 0001 0010 0011.
        let f = frame(&[0x81, 0x00, 0xb1, 0x23, 0x08, 0x00, 0x45]);
        let tag = tag_of(&f).unwrap();
        assert_eq!(
            tag,
            Tag {
                pcp: 5,
                dei: true,
                vid: 0x123
            }
        );
        assert_eq!(tag.bytes(), [0x81, 0x00, 0xb1, 0x23]);
        assert_eq!(tag_of(&frame(&[0x08, 0x00])), None);
        assert_eq!(tag_of(&frame(&[0x81, 0x00, 0x00])), None, "cut short");
        assert_eq!(tag_of(&[0u8; 5]), None);
        // 802.1ad (0x88a8) outer tags are not C-VLAN tags.
        assert_eq!(tag_of(&frame(&[0x88, 0xa8, 0x00, 0x0a])), None);
    }

    #[test]
    fn ids_and_lists_parse_strictly_and_print_collapsed() {
        assert_eq!("1".parse::<Vid>().unwrap().get(), 1);
        assert_eq!("4094".parse::<Vid>().unwrap().get(), 4094);
        for bad in ["0", "4095", "", "+5", "-1", "1 ", "x", "65536"] {
            assert_eq!(
                bad.parse::<Vid>(),
                Err(VlanError::BadId(bad.to_string())),
                "{bad:?}"
            );
        }
        let set: VidSet = "10,20-23,4094,11".parse().unwrap();
        assert_eq!(set.to_string(), "10-11,20-23,4094");
        assert_eq!(
            set.iter().collect::<Vec<_>>(),
            [10, 11, 20, 21, 22, 23, 4094]
        );
        assert!(!set.contains(0) && !set.contains(12) && set.contains(22));
        assert_eq!(VidSet::default().to_string(), "-");
        assert_eq!(
            "5-3".parse::<VidSet>(),
            Err(VlanError::BadRange("5-3".into()))
        );
        assert_eq!("1,,2".parse::<VidSet>(), Err(VlanError::BadId("".into())));
        assert_eq!(
            PortVlans::new(Vid::new(10), "5-15".parse().unwrap()),
            Err(VlanError::AccessInTrunk(10))
        );
    }

    #[test]
    fn without_vlans_every_frame_passes_untouched() {
        let p = PortVlans::default();
        assert!(p.is_default());
        let tagged = frame(&[0x81, 0x00, 0x00, 0x0a, 0x08, 0x00]);
        let stp = [
            0x01, 0x80, 0xc2, 0, 0, 0, 2, 0, 0, 0, 0, 2, 0x00, 0x26, 0x42, 0x42, 0x03,
        ];
        for f in [&tagged[..], &stp[..], &frame(&[0x08, 0x00])[..]] {
            let c = p.classify(f);
            assert_eq!(
                c,
                Classified {
                    vlan: 0,
                    tagged: false
                }
            );
            assert_eq!(p.egress(c.vlan), Egress::Untagged);
            let mut buf = Vec::new();
            assert_eq!(rewrite(f, c, Egress::Untagged, &mut buf), f);
        }
    }

    #[test]
    fn access_ports_keep_their_vlan_apart() {
        let a10 = port(10, "");
        let b10 = port(10, "");
        let c20 = port(20, "");
        let untagged = frame(&[0x08, 0x00, 1, 2, 3]);
        let c = a10.classify(&untagged);
        assert_eq!(c.vlan, 10);
        assert_eq!(b10.egress(c.vlan), Egress::Untagged);
        assert_eq!(c20.egress(c.vlan), Egress::NotMember);
        assert_eq!(PortVlans::default().egress(c.vlan), Egress::NotMember);
        // A tagged frame on an access port is an ordinary frame of the
        // access VLAN and keeps its tag.
        let guest_tagged = frame(&[0x81, 0x00, 0x00, 0x14, 0x08, 0x00]);
        let c = a10.classify(&guest_tagged);
        assert_eq!(
            c,
            Classified {
                vlan: 10,
                tagged: false
            }
        );
        let mut buf = Vec::new();
        assert_eq!(
            rewrite(&guest_tagged, c, b10.egress(c.vlan), &mut buf),
            &guest_tagged[..]
        );
    }

    #[test]
    fn trunks_tag_and_untag_at_the_edges() {
        let trunk = port(0, "10,20");
        let a10 = port(10, "");
        let untagged = frame(&[0x08, 0x00, 0xaa]);
        let tagged10 = frame(&[0x81, 0x00, 0x00, 0x0a, 0x08, 0x00, 0xaa]);
        let mut buf = Vec::new();
        // Access port → trunk: the tag is added (PCP 0).
        let c = a10.classify(&untagged);
        assert_eq!(trunk.egress(c.vlan), Egress::Tagged);
        assert_eq!(
            rewrite(&untagged, c, Egress::Tagged, &mut buf),
            &tagged10[..]
        );
        // Trunk → access port: the tag is removed.
        let c = trunk.classify(&tagged10);
        assert_eq!(
            c,
            Classified {
                vlan: 10,
                tagged: true
            }
        );
        assert_eq!(a10.egress(c.vlan), Egress::Untagged);
        assert_eq!(
            rewrite(&tagged10, c, Egress::Untagged, &mut buf),
            &untagged[..]
        );
        // Trunk → trunk: byte for byte, priority bits kept.
        let prio = frame(&[0x81, 0x00, 0xe0, 0x14, 0x08, 0x00]);
        let c = trunk.classify(&prio);
        assert_eq!(c.vlan, 20);
        let other = port(0, "20");
        assert_eq!(rewrite(&prio, c, other.egress(c.vlan), &mut buf), &prio[..]);
        // A VLAN the trunk does not carry, and priority tags (VID 0), are
        // frames of the trunk's own access (native) VLAN.
        assert_eq!(
            trunk.classify(&frame(&[0x81, 0x00, 0x00, 0x1e, 0x08, 0x00])),
            Classified {
                vlan: 0,
                tagged: false
            }
        );
        assert_eq!(
            trunk.classify(&frame(&[0x81, 0x00, 0x60, 0x00, 0x08, 0x00])),
            Classified {
                vlan: 0,
                tagged: false
            }
        );
        assert_eq!(trunk.egress(30), Egress::NotMember);
        assert_eq!(trunk.egress(0), Egress::Untagged);
        // A native VLAN on a trunk: its frames leave untagged.
        let native = port(5, "10");
        assert_eq!(native.classify(&untagged).vlan, 5);
        assert_eq!(native.egress(5), Egress::Untagged);
        assert_eq!(native.egress(10), Egress::Tagged);
    }

    #[test]
    fn short_frames_are_never_cut_or_read_past_their_end() {
        let trunk = port(0, "10");
        let mut buf = Vec::new();
        for len in 0..20 {
            let f = vec![0x81; len];
            let c = trunk.classify(&f);
            for e in [Egress::Untagged, Egress::Tagged] {
                let c2 = Classified {
                    vlan: 10,
                    tagged: !c.tagged,
                };
                let out = rewrite(&f, c2, e, &mut buf).to_vec();
                assert!(
                    out.len() == f.len() || out.len() == f.len() + 4 || out.len() + 4 == f.len()
                );
            }
        }
    }
}
