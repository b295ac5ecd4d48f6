//! What the churn tests of the moving layouts share: a small deterministic generator and the
//! value a key holds at a version.

/// xorshift64: the same stream for every run and every configuration under test.
pub struct Xs(pub u64);

impl Xs {
    pub fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
}

/// The bytes key `k` holds after write `version`: `len` bytes that differ by key and version.
pub fn value(k: u64, version: u64, len: usize) -> Vec<u8> {
    (0..len)
        .map(|i| (k.wrapping_mul(7) ^ version.wrapping_mul(13)).wrapping_add(i as u64) as u8)
        .collect()
}
