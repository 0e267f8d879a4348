//! The one deterministic pseudo-random generator of the tests and
//! benchmarks (splitmix64): reproducible data, garbage and choices from a
//! seed. Not for anything that must be unpredictable.
//!
//! Compiled only for this crate's own tests and with the `test-support`
//! feature, which the test and benchmark crates (and the tool crates'
//! dev-dependencies) turn on. No tool calls it, so no tool's binary
//! contains it (a tool built alone is compiled without it; in a workspace
//! build, where cargo unifies features, the linker drops it).

/// splitmix64 (Steele, Lea, Flood 2014; the seeding generator of
/// xoshiro): every seed, 0 included, gives a full-period sequence.
#[derive(Debug, Clone)]
pub struct SplitMix64(u64);

impl SplitMix64 {
    /// The generator with state `seed`.
    pub const fn new(seed: u64) -> Self {
        SplitMix64(seed)
    }

    /// The next 64 bits.
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// A number below `n` (0 for `n` = 0; modulo bias, which tests do
    /// not mind).
    pub fn below(&mut self, n: u64) -> u64 {
        self.next_u64() % n.max(1)
    }

    /// `n` bytes, one draw each (its low byte).
    pub fn bytes(&mut self, n: usize) -> Vec<u8> {
        (0..n).map(|_| self.next_u64() as u8).collect()
    }

    /// Fills `buf` eight bytes a draw (little-endian): the fast way to
    /// make large data.
    pub fn fill(&mut self, buf: &mut [u8]) {
        for chunk in buf.chunks_mut(8) {
            let v = self.next_u64().to_le_bytes();
            chunk.copy_from_slice(&v[..chunk.len()]);
        }
    }

    /// Fills `buf` with bytes that are never zero (one draw each, low bit
    /// set): data that cannot be mistaken for a hole.
    pub fn fill_nonzero(&mut self, buf: &mut [u8]) {
        for b in buf {
            *b = (self.next_u64() as u8) | 1;
        }
    }
}

/// How many rounds a randomized test runs: `n`, or under Miri (which
/// interprets every instruction, some 1000x slower) `n / 100`, at least
/// 20 — the same code paths, fewer random inputs (`scripts/miri`).
pub const fn rounds(n: usize) -> usize {
    if cfg!(miri) {
        let r = n / 100;
        if r < 20 {
            20
        } else {
            r
        }
    } else {
        n
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn known_sequence_and_helpers() {
        // splitmix64's reference output for seed 0.
        let mut r = SplitMix64::new(0);
        assert_eq!(r.next_u64(), 0xe220_a839_7b1d_cdaf);
        assert_eq!(r.next_u64(), 0x6e78_9e6a_a1b9_65f4);
        assert_eq!(rounds(3000), if cfg!(miri) { 30 } else { 3000 });
        assert_eq!(rounds(10), if cfg!(miri) { 20 } else { 10 });
        let mut a = SplitMix64::new(7);
        let mut b = a.clone();
        let mut buf = [0u8; 13];
        a.fill(&mut buf);
        let (x, y) = (b.next_u64().to_le_bytes(), b.next_u64().to_le_bytes());
        assert_eq!(buf[..8], x);
        assert_eq!(buf[8..], y[..5]);
        let mut nz = [0u8; 64];
        SplitMix64::new(1).fill_nonzero(&mut nz);
        assert!(nz.iter().all(|&b| b != 0));
        assert_eq!(SplitMix64::new(3).bytes(5).len(), 5);
        let mut r = SplitMix64::new(9);
        assert!((0..100).all(|_| r.below(10) < 10));
        assert_eq!(r.below(0), 0);
    }
}
