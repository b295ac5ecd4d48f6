//! Key lengths: a fixed function of the key id, so every request for a key agrees on it.

use super::{clamp_size, SizeSampler};

/// Key lengths as a function of the key id. A key's length is drawn once, from its own hashed
/// id (as mutilate's `KeyGenerator` does), so every request for a key agrees on its length.
/// The quantile function is tabulated at 4,096 evenly spaced draws (the midpoints), which is
/// exact for integer lengths to within 1/4096 of probability mass.
#[derive(Clone, Debug)]
pub struct KeyLengths {
    table: Box<[u16; KEY_TABLE]>,
    decimal: Option<u16>,
    salt: u64,
}

const KEY_TABLE: usize = 4096;

impl KeyLengths {
    /// Tabulates `sampler`; `salt` (from the seed) decides which keys get which lengths.
    pub fn new(sampler: &SizeSampler, salt: u64) -> KeyLengths {
        let mut table = Box::new([0u16; KEY_TABLE]);
        for (i, t) in table.iter_mut().enumerate() {
            let u = (i as f64 + 0.5) / KEY_TABLE as f64;
            // Rounded, as mutilate rounds its GEV key sizes.
            let len = sampler.quantile(u).round();
            *t = clamp_size(len, u32::from(crate::KEY_MAX)) as u16;
        }
        KeyLengths {
            table,
            decimal: sampler.is_decimal(),
            salt,
        }
    }

    /// The key's length: its draw, at least the digits that keep it unique, at most 250.
    #[inline]
    pub fn len(&self, id: u64) -> u16 {
        let len = match self.decimal {
            Some(prefix) => prefix.saturating_add(decimal_digits(id)),
            None => {
                let h = crate::rng::mix64(id ^ self.salt);
                self.table[(h >> 52) as usize]
            }
        };
        len.max(crate::Key::digits(id)).min(crate::KEY_MAX)
    }
}

/// Decimal digits of `id` (1 for 0).
pub fn decimal_digits(id: u64) -> u16 {
    if id == 0 {
        1
    } else {
        id.ilog10() as u16 + 1
    }
}
