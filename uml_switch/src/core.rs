//! The forwarding core: a bounded, aged MAC table and the per-frame
//! decision. It knows ports only as ids; it never touches a socket, so new
//! port kinds (tap, seqpacket, UDP tunnels, ...) need no change here.
//!
//! The table is keyed by (VLAN, MAC) (`uml_common::vlan`): the caller
//! says which VLAN a frame belongs to (0, the default VLAN, when no VLAN
//! is configured: the keys are then the MACs alone) and floods only to
//! the ports of that VLAN.

use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hasher};

use uml_common::switch::{frame_macs, Mac};

/// A port's id in the switch (an index into the port table).
pub type PortId = u32;

/// Entries not refreshed for this long are removed (C: 100 s).
pub const MAX_AGE_SECS: u32 = 100;
/// Default bound on the MAC table size.
pub const DEFAULT_TABLE_CAP: usize = 65_536;

/// A multiplicative hasher for 6-byte MACs (std's SipHash is needlessly
/// slow for a per-frame lookup of a non-adversarial-length key; the table
/// is bounded, so collisions cannot grow memory).
#[derive(Debug, Default)]
pub struct MacHasher(u64);

impl MacHasher {
    fn mix(&mut self, w: u64) {
        self.0 = (self.0.rotate_left(23) ^ w).wrapping_mul(0x9e37_79b9_7f4a_7c15);
    }
}

impl Hasher for MacHasher {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, bytes: &[u8]) {
        // A word at a time: sender addresses are up to 108 bytes and are
        // hashed for every frame. The length first: zero words must not
        // make "", "\0" x 8 and "\0" x 16 the same.
        self.mix(bytes.len() as u64 | 1 << 63);
        let mut chunks = bytes.chunks_exact(8);
        for c in &mut chunks {
            let mut w = [0u8; 8];
            w.copy_from_slice(c);
            self.mix(u64::from_le_bytes(w));
        }
        let rest = chunks.remainder();
        if !rest.is_empty() {
            let mut w = [0u8; 8];
            w[..rest.len()].copy_from_slice(rest);
            self.mix(u64::from_le_bytes(w));
        }
    }
    fn write_u64(&mut self, v: u64) {
        self.0 = (v ^ (v >> 29)).wrapping_mul(0x9e37_79b9_7f4a_7c15);
        self.0 ^= self.0 >> 32;
    }
}

/// A (VLAN, MAC) pair as the table's key, hashed as one u64: the MAC in
/// the low 48 bits, the VLAN above (so VLAN 0 keys are the MACs alone).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct MacKeyHash(u64);

impl MacKeyHash {
    #[inline]
    fn new(vlan: u16, mac: Mac) -> MacKeyHash {
        MacKeyHash(mac.to_u64() | u64::from(vlan) << 48)
    }

    fn vlan(self) -> u16 {
        (self.0 >> 48) as u16
    }

    fn mac(self) -> Mac {
        // The inverse of Mac::to_u64 (little-endian, low 48 bits).
        let b = self.0.to_le_bytes();
        Mac([b[0], b[1], b[2], b[3], b[4], b[5]])
    }
}

impl std::hash::Hash for MacKeyHash {
    fn hash<H: Hasher>(&self, state: &mut H) {
        state.write_u64(self.0);
    }
}

#[derive(Debug, Clone, Copy)]
struct Entry {
    port: PortId,
    seen: u32,
}

/// What learning a source address did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Learned {
    /// Known on this port already (refreshed).
    Same,
    /// New address on this port.
    New,
    /// The address moved here from another port.
    Moved(PortId),
    /// Not learned: the table is full (the frame is still forwarded).
    Full,
}

/// The MAC → port table: bounded, aged, purged per port.
#[derive(Debug)]
pub struct MacTable {
    map: HashMap<MacKeyHash, Entry, BuildHasherDefault<MacHasher>>,
    cap: usize,
    last_full_sweep: Option<u32>,
}

impl MacTable {
    /// A table holding at most `cap` entries.
    pub fn new(cap: usize) -> MacTable {
        MacTable {
            map: HashMap::with_capacity_and_hasher(cap.min(4096), BuildHasherDefault::default()),
            cap,
            last_full_sweep: None,
        }
    }

    /// The port `mac` was last seen on in `vlan`.
    pub fn lookup(&self, vlan: u16, mac: Mac) -> Option<PortId> {
        self.map.get(&MacKeyHash::new(vlan, mac)).map(|e| e.port)
    }

    /// Records that `mac` was seen on `port` in `vlan` at time `now`
    /// (seconds).
    pub fn learn(&mut self, vlan: u16, mac: Mac, port: PortId, now: u32) -> Learned {
        let key = MacKeyHash::new(vlan, mac);
        if let Some(e) = self.map.get_mut(&key) {
            e.seen = now;
            if e.port == port {
                return Learned::Same;
            }
            let old = e.port;
            e.port = port;
            return Learned::Moved(old);
        }
        if self.map.len() >= self.cap {
            // A full table is swept at most once per second of `now`, so a
            // flood of new source addresses costs O(1) per frame.
            if self.last_full_sweep != Some(now) {
                self.last_full_sweep = Some(now);
                self.expire(now);
            }
            if self.map.len() >= self.cap {
                return Learned::Full;
            }
        }
        self.map.insert(key, Entry { port, seen: now });
        Learned::New
    }

    /// Removes every entry of `port`. Returns how many.
    pub fn purge_port(&mut self, port: PortId) -> usize {
        let before = self.map.len();
        self.map.retain(|_, e| e.port != port);
        before - self.map.len()
    }

    /// Removes entries not seen for more than [`MAX_AGE_SECS`].
    pub fn expire(&mut self, now: u32) -> usize {
        let before = self.map.len();
        self.map
            .retain(|_, e| now.saturating_sub(e.seen) <= MAX_AGE_SECS);
        before - self.map.len()
    }

    /// Every entry: VLAN, MAC, port and seconds since it was last seen at
    /// `now`, ordered by VLAN, then MAC.
    pub fn entries(&self, now: u32) -> Vec<(u16, Mac, PortId, u32)> {
        let mut all: Vec<_> = self
            .map
            .iter()
            .map(|(k, e)| (k.vlan(), k.mac(), e.port, now.saturating_sub(e.seen)))
            .collect();
        all.sort_unstable_by_key(|&(vlan, mac, _, _)| (vlan, mac.0));
        all
    }

    /// Number of entries.
    pub fn len(&self) -> usize {
        self.map.len()
    }

    /// Whether the table is empty.
    pub fn is_empty(&self) -> bool {
        self.map.is_empty()
    }
}

/// Where a frame goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// Nowhere (too short, or addressed back to its sender).
    Drop,
    /// To one port.
    To(PortId),
    /// To every port except the sender.
    Flood,
}

/// Something worth telling the operator (not per frame, except the C
/// switch's "unknown Addr" notice, which the caller rate-limits).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Event {
    /// `src` learned on `port` in `vlan`, possibly moved from `old`.
    Learned {
        /// The address.
        mac: Mac,
        /// Its VLAN (0: the default VLAN).
        vlan: u16,
        /// Its new port.
        port: PortId,
        /// Its previous port.
        old: Option<PortId>,
    },
    /// A unicast to an unknown destination is flooded; `src` is the
    /// frame's source (the C switch prints the source).
    Unknown {
        /// Source address of the frame.
        src: Mac,
    },
    /// The table is full; `src` was not learned.
    TableFull,
}

/// The switching logic.
#[derive(Debug)]
pub struct Forwarder {
    /// The MAC table.
    pub table: MacTable,
    hub: bool,
}

impl Forwarder {
    /// A switch (or a hub) with a table of at most `cap` entries.
    pub fn new(hub: bool, cap: usize) -> Forwarder {
        Forwarder {
            table: MacTable::new(cap),
            hub,
        }
    }

    /// Hub (every frame to every other port) or learning switch.
    pub fn set_hub(&mut self, hub: bool) {
        self.hub = hub;
    }

    /// Whether it is a hub.
    pub fn is_hub(&self) -> bool {
        self.hub
    }

    /// Learns from and decides the destination of one frame of `vlan`
    /// from `from` ([`Verdict::Flood`]: to the other ports of `vlan`).
    pub fn forward(
        &mut self,
        from: PortId,
        vlan: u16,
        frame: &[u8],
        now: u32,
        mut event: impl FnMut(Event),
    ) -> Verdict {
        let Some((dst, src)) = frame_macs(frame) else {
            return Verdict::Drop;
        };
        if !src.is_multicast() {
            match self.table.learn(vlan, src, from, now) {
                Learned::Same => {}
                Learned::New => event(Event::Learned {
                    mac: src,
                    vlan,
                    port: from,
                    old: None,
                }),
                Learned::Moved(old) => event(Event::Learned {
                    mac: src,
                    vlan,
                    port: from,
                    old: Some(old),
                }),
                Learned::Full => event(Event::TableFull),
            }
        }
        let target = if dst.is_multicast() {
            None
        } else {
            self.table.lookup(vlan, dst)
        };
        match target {
            None => {
                if !dst.is_multicast() {
                    event(Event::Unknown { src });
                }
                Verdict::Flood
            }
            Some(_) if self.hub => Verdict::Flood,
            Some(t) if t == from => Verdict::Drop,
            Some(t) => Verdict::To(t),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hash_of(bytes: &[u8]) -> u64 {
        let mut h = MacHasher::default();
        h.write(bytes);
        h.finish()
    }

    #[test]
    fn hasher_tells_every_byte_position_and_length_apart() {
        let mut seen = std::collections::HashSet::new();
        // Full-length abstract addresses differing in one byte anywhere,
        // including the tail that does not fill a word.
        for pos in 0..108 {
            for v in [1u8, 0x80] {
                let mut a = [0u8; 108];
                a[pos] = v;
                assert!(seen.insert(hash_of(&a)), "collision at byte {pos}");
            }
        }
        for len in 0..=108 {
            assert!(seen.insert(hash_of(&vec![0u8; len])), "length {len}");
        }
    }

    #[test]
    fn equal_sender_keys_hash_equally() {
        use std::hash::{BuildHasher, BuildHasherDefault};
        let b = BuildHasherDefault::<MacHasher>::default();
        let mut raw = vec![1u8, 0, 0];
        raw.extend_from_slice(&[7u8; 107]);
        let k1 = uml_common::switch::AddrKey::from_sockaddr(&raw);
        let k2 = uml_common::switch::AddrKey::from_sockaddr(&raw.clone());
        assert_eq!(b.hash_one(k1), b.hash_one(k2));
        let mut other = raw.clone();
        other[109] = 8;
        let k3 = uml_common::switch::AddrKey::from_sockaddr(&other);
        assert_ne!(k1, k3);
        assert_ne!(b.hash_one(k1), b.hash_one(k3));
    }

    const A: Mac = Mac([2, 0, 0, 0, 0, 1]);
    const B: Mac = Mac([2, 0, 0, 0, 0, 2]);
    const BCAST: Mac = Mac([0xff; 6]);

    fn frame(dst: Mac, src: Mac) -> Vec<u8> {
        let mut f = dst.0.to_vec();
        f.extend_from_slice(&src.0);
        f.extend_from_slice(&[8, 0, 0x45, 0]);
        f
    }

    fn run(fw: &mut Forwarder, from: PortId, f: &[u8]) -> (Verdict, Vec<Event>) {
        let mut ev = Vec::new();
        let v = fw.forward(from, 0, f, 10, |e| ev.push(e));
        (v, ev)
    }

    #[test]
    fn s5_learning_trace() {
        let mut fw = Forwarder::new(false, 16);
        let (v, ev) = run(&mut fw, 5, &frame(BCAST, A));
        assert_eq!(v, Verdict::Flood);
        assert_eq!(
            ev,
            [Event::Learned {
                mac: A,
                vlan: 0,
                port: 5,
                old: None
            }]
        );
        let (v, ev) = run(&mut fw, 6, &frame(A, B));
        assert_eq!(v, Verdict::To(5));
        assert_eq!(
            ev,
            [Event::Learned {
                mac: B,
                vlan: 0,
                port: 6,
                old: None
            }]
        );
        let (v, ev) = run(&mut fw, 5, &frame(Mac([2, 0, 0, 0, 0, 9]), A));
        assert_eq!(v, Verdict::Flood);
        assert_eq!(ev, [Event::Unknown { src: A }]);
    }

    #[test]
    fn moves_hub_echo_and_short_frames() {
        let mut fw = Forwarder::new(false, 16);
        run(&mut fw, 1, &frame(BCAST, A));
        let (_, ev) = run(&mut fw, 2, &frame(BCAST, A));
        assert_eq!(
            ev,
            [Event::Learned {
                mac: A,
                vlan: 0,
                port: 2,
                old: Some(1)
            }]
        );
        // A frame addressed to its own port is not echoed.
        run(&mut fw, 2, &frame(BCAST, B));
        assert_eq!(run(&mut fw, 2, &frame(B, A)).0, Verdict::Drop);
        // Multicast sources are never learned.
        let (_, ev) = run(&mut fw, 3, &frame(BCAST, Mac([1, 0, 0x5e, 0, 0, 1])));
        assert!(ev.is_empty());
        assert_eq!(run(&mut fw, 3, &[0u8; 13]).0, Verdict::Drop);
        let mut hub = Forwarder::new(true, 16);
        run(&mut hub, 1, &frame(BCAST, A));
        assert_eq!(run(&mut hub, 2, &frame(A, B)).0, Verdict::Flood);
    }

    #[test]
    fn purge_removes_every_entry_of_a_port() {
        let mut t = MacTable::new(16);
        t.learn(0, A, 1, 0);
        t.learn(0, B, 1, 0);
        t.learn(0, Mac([2, 0, 0, 0, 0, 3]), 2, 0);
        assert_eq!(t.purge_port(1), 2);
        assert_eq!(t.lookup(0, A), None);
        assert_eq!(t.lookup(0, B), None);
        assert_eq!(t.len(), 1);
    }

    #[test]
    fn aging_and_bound() {
        let mut t = MacTable::new(2);
        assert_eq!(t.learn(0, A, 1, 0), Learned::New);
        assert_eq!(t.learn(0, B, 1, 50), Learned::New);
        assert_eq!(t.learn(0, Mac([2, 0, 0, 0, 0, 3]), 1, 60), Learned::Full);
        assert_eq!(t.len(), 2);
        // At 101 s, A (seen at 0) is too old: it makes room.
        assert_eq!(t.learn(0, Mac([2, 0, 0, 0, 0, 3]), 1, 101), Learned::New);
        assert_eq!(t.lookup(0, A), None);
        assert_eq!(t.expire(300), 2);
        assert!(t.is_empty());
    }

    #[test]
    fn one_mac_in_two_vlans_is_two_entries() {
        let mut fw = Forwarder::new(false, 16);
        let mut ev = Vec::new();
        fw.forward(1, 10, &frame(BCAST, A), 3, |e| ev.push(e));
        fw.forward(2, 20, &frame(BCAST, A), 4, |e| ev.push(e));
        // Learned twice, neither a move.
        assert_eq!(
            ev,
            [
                Event::Learned {
                    mac: A,
                    vlan: 10,
                    port: 1,
                    old: None
                },
                Event::Learned {
                    mac: A,
                    vlan: 20,
                    port: 2,
                    old: None
                }
            ]
        );
        let mut ignore = |_| {};
        assert_eq!(
            fw.forward(3, 10, &frame(A, B), 5, &mut ignore),
            Verdict::To(1)
        );
        assert_eq!(
            fw.forward(3, 20, &frame(A, B), 5, &mut ignore),
            Verdict::To(2)
        );
        // Unknown in VLAN 30 (and in the default VLAN): flooded.
        assert_eq!(
            fw.forward(3, 30, &frame(A, B), 5, &mut ignore),
            Verdict::Flood
        );
        assert_eq!(
            fw.forward(3, 0, &frame(A, B), 5, &mut ignore),
            Verdict::Flood
        );
        assert_eq!(
            fw.table.entries(10),
            vec![
                (0, B, 3, 5),
                (10, A, 1, 7),
                (10, B, 3, 5),
                (20, A, 2, 6),
                (20, B, 3, 5),
                (30, B, 3, 5)
            ]
        );
        // The largest VLAN id and MAC do not spill into each other.
        let top = Mac([0xfe, 0xff, 0xff, 0xff, 0xff, 0xff]);
        fw.table.learn(4094, top, 9, 0);
        assert_eq!(fw.table.lookup(4094, top), Some(9));
        assert_eq!(fw.table.lookup(4093, top), None);
        assert_eq!(fw.table.entries(0).last(), Some(&(4094, top, 9, 0)));
    }

    #[test]
    fn a_flood_of_sources_stays_bounded() {
        let mut fw = Forwarder::new(false, 1000);
        let mut full = 0;
        for i in 0..100_000u32 {
            let b = i.to_be_bytes();
            let src = Mac([2, 0, b[0], b[1], b[2], b[3]]);
            fw.forward(1, 0, &frame(BCAST, src), 5, |e| {
                if e == Event::TableFull {
                    full += 1;
                }
            });
        }
        assert_eq!(fw.table.len(), 1000);
        assert_eq!(full, 99_000);
    }
}
