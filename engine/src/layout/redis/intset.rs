//! Redis 7.0's intset (`src/intset.c`, `src/intset.h`) in one allocator block: an 8-byte
//! header (`encoding`, the width of every value, 2, 4 or 8 bytes, and `length`, both `u32`
//! little-endian) and the values, sorted ascending, little-endian, all of the same width.
//!
//! A value wider than the encoding upgrades the whole set (`intsetUpgradeAndAdd`: resize,
//! rewrite every value back to front at the new width, the new value first or last). Every
//! insert and remove resizes the block to exactly `8 + length * encoding` bytes through
//! [`Allocator::realloc`] (`intsetResize`); the block never shrinks its encoding back.
//!
//! A refused resize leaves the intset as it was (a remove that moved the tail moves it back).

use std::ptr::NonNull;

use fraglab_allocators::{AllocError, Allocator};

use crate::util::{read_at, write_at, Rng};

/// `sizeof(intset)`: the header.
pub(super) const INTSET_HDR: usize = 8;

/// `_intsetValueEncoding`: the width a value needs.
pub(super) fn value_encoding(v: i64) -> usize {
    if v < i64::from(i32::MIN) || v > i64::from(i32::MAX) {
        8
    } else if v < i64::from(i16::MIN) || v > i64::from(i16::MAX) {
        4
    } else {
        2
    }
}

/// An intset in an allocator block: a handle to its first byte.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Intset(NonNull<u8>);

impl Intset {
    /// `intsetNew`: an empty set of 16-bit values, 8 bytes.
    pub(super) fn new<A: Allocator>(a: &mut A) -> Result<Intset, AllocError> {
        let p = a.alloc(INTSET_HDR)?.ptr;
        // SAFETY: a fresh block of 8 bytes.
        unsafe {
            write_at::<u32>(p, 0, 2);
            write_at::<u32>(p, 4, 0);
        }
        Ok(Intset(p))
    }

    /// A handle to an intset made by [`Intset::new`] and its operations.
    ///
    /// # Safety
    /// `p` is a live intset block, and stays live while the handle is used.
    pub(super) unsafe fn from_ptr(p: NonNull<u8>) -> Intset {
        Intset(p)
    }

    /// The block's address (it moves on every resize).
    pub(super) fn ptr(self) -> NonNull<u8> {
        self.0
    }

    /// The width of every value: 2, 4 or 8.
    pub(super) fn encoding(self) -> usize {
        // SAFETY: the header is the block's first 8 bytes.
        unsafe { read_at::<u32>(self.0, 0) as usize }
    }

    fn set_encoding(self, enc: usize) {
        // SAFETY: as above.
        unsafe { write_at::<u32>(self.0, 0, enc as u32) }
    }

    /// `intsetLen`.
    pub(super) fn len(self) -> usize {
        // SAFETY: as above.
        unsafe { read_at::<u32>(self.0, 4) as usize }
    }

    fn set_len(self, n: usize) {
        // SAFETY: as above.
        unsafe { write_at::<u32>(self.0, 4, n as u32) }
    }

    /// `intsetBlobLen`: the block's requested size.
    pub(super) fn blob_len(self) -> usize {
        INTSET_HDR + self.len() * self.encoding()
    }

    /// `_intsetGetEncoded`.
    fn get_enc(self, pos: usize, enc: usize) -> i64 {
        let off = INTSET_HDR + pos * enc;
        // SAFETY: callers pass `pos` inside the block at width `enc`.
        unsafe {
            match enc {
                8 => read_at::<i64>(self.0, off),
                4 => i64::from(read_at::<i32>(self.0, off)),
                _ => i64::from(read_at::<i16>(self.0, off)),
            }
        }
    }

    /// `_intsetSet`.
    fn set(self, pos: usize, v: i64) {
        let enc = self.encoding();
        let off = INTSET_HDR + pos * enc;
        // SAFETY: callers pass `pos` inside the block, and `v` fits the encoding.
        unsafe {
            match enc {
                8 => write_at::<i64>(self.0, off, v),
                4 => write_at::<i32>(self.0, off, v as i32),
                _ => write_at::<i16>(self.0, off, v as i16),
            }
        }
    }

    /// `intsetGet`: the value at `pos`.
    pub(super) fn get(self, pos: usize) -> i64 {
        assert!(
            pos < self.len(),
            "intset position {pos} past {}",
            self.len()
        );
        self.get_enc(pos, self.encoding())
    }

    /// The values, ascending.
    pub(super) fn iter(self) -> impl Iterator<Item = i64> {
        (0..self.len()).map(move |i| self.get(i))
    }

    /// `intsetSearch`: `Ok(pos)` when found, `Err(pos)` where it would go.
    pub(super) fn search(self, v: i64) -> Result<usize, usize> {
        let len = self.len();
        if len == 0 {
            return Err(0);
        }
        if v > self.get(len - 1) {
            return Err(len);
        }
        if v < self.get(0) {
            return Err(0);
        }
        let (mut min, mut max) = (0i64, len as i64 - 1);
        while max >= min {
            let mid = ((min + max) >> 1) as usize;
            let cur = self.get(mid);
            match v.cmp(&cur) {
                std::cmp::Ordering::Greater => min = mid as i64 + 1,
                std::cmp::Ordering::Less => max = mid as i64 - 1,
                std::cmp::Ordering::Equal => return Ok(mid),
            }
        }
        Err(min as usize)
    }

    /// `intsetFind`.
    pub(super) fn find(self, v: i64) -> bool {
        value_encoding(v) <= self.encoding() && self.search(v).is_ok()
    }

    /// `intsetRandom`: a value at a random position.
    pub(super) fn random(self, rng: &mut Rng) -> i64 {
        self.get(rng.below(self.len()))
    }

    /// `intsetResize`: the block to `8 + len * enc` bytes.
    fn resize<A: Allocator>(
        &mut self,
        a: &mut A,
        old: usize,
        len: usize,
        enc: usize,
    ) -> Result<(), AllocError> {
        let new = INTSET_HDR + len * enc;
        if new > a.max_contiguous() {
            return Err(AllocError::TooLarge {
                size: new,
                max: a.max_contiguous(),
            });
        }
        // SAFETY: the block is live with `old` requested bytes; on success the old pointer is
        // replaced.
        self.0 = unsafe { a.realloc(self.0, old, new)? }.ptr;
        Ok(())
    }

    /// `intsetMoveTail`: moves the values from `from` on to start at `to`.
    fn move_tail(self, from: usize, to: usize, len: usize) {
        let enc = self.encoding();
        // SAFETY: both ranges lie inside the block (the caller has sized it for the larger).
        unsafe {
            let base = self.0.as_ptr().add(INTSET_HDR);
            std::ptr::copy(base.add(from * enc), base.add(to * enc), (len - from) * enc);
        }
    }

    /// `intsetAdd`: `Ok(false)` when the value is there already.
    pub(super) fn add<A: Allocator>(&mut self, a: &mut A, v: i64) -> Result<bool, AllocError> {
        let (enc, len, old) = (self.encoding(), self.len(), self.blob_len());
        let valenc = value_encoding(v);
        if valenc > enc {
            // `intsetUpgradeAndAdd`: the value lies outside every present one.
            self.resize(a, old, len + 1, valenc)?;
            let prepend = usize::from(v < 0);
            self.set_encoding(valenc);
            for i in (0..len).rev() {
                let x = self.get_enc(i, enc);
                self.set(i + prepend, x);
            }
            self.set(if prepend == 1 { 0 } else { len }, v);
            self.set_len(len + 1);
            return Ok(true);
        }
        let pos = match self.search(v) {
            Ok(_) => return Ok(false),
            Err(pos) => pos,
        };
        self.resize(a, old, len + 1, enc)?;
        if pos < len {
            self.move_tail(pos, pos + 1, len);
        }
        self.set(pos, v);
        self.set_len(len + 1);
        Ok(true)
    }

    /// `intsetRemove`: `Ok(false)` when the value is not there.
    pub(super) fn remove<A: Allocator>(&mut self, a: &mut A, v: i64) -> Result<bool, AllocError> {
        if value_encoding(v) > self.encoding() {
            return Ok(false);
        }
        let Ok(pos) = self.search(v) else {
            return Ok(false);
        };
        let (enc, len, old) = (self.encoding(), self.len(), self.blob_len());
        if pos < len - 1 {
            self.move_tail(pos + 1, pos, len);
        }
        if let Err(e) = self.resize(a, old, len - 1, enc) {
            // The old block is untouched: move the tail back and put the value again.
            if pos < len - 1 {
                self.move_tail(pos, pos + 1, len - 1);
            }
            self.set(pos, v);
            return Err(e);
        }
        self.set_len(len - 1);
        Ok(true)
    }

    /// Takes back an [`add`](Self::add) of `v` made at encoding `enc`: removes it and, if it
    /// upgraded the set, writes the rest back at `enc` (one resize, made before any byte
    /// changes: a refusal leaves the set as it is).
    pub(super) fn undo_add<A: Allocator>(
        &mut self,
        a: &mut A,
        v: i64,
        enc: usize,
    ) -> Result<(), AllocError> {
        if self.encoding() == enc {
            return self.remove(a, v).map(|_| ());
        }
        let rest: Vec<i64> = self.iter().filter(|&x| x != v).collect();
        self.resize(a, self.blob_len(), rest.len(), enc)?;
        self.set_encoding(enc);
        self.set_len(rest.len());
        for (i, x) in rest.into_iter().enumerate() {
            self.set(i, x);
        }
        Ok(())
    }

    /// Frees the block.
    ///
    /// # Safety
    /// The intset is live and not used afterwards.
    pub(super) unsafe fn free<A: Allocator>(self, a: &mut A) {
        // SAFETY: the caller's contract; the requested size is the blob length.
        unsafe { a.free(self.0, self.blob_len()) }
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::super::testkit::Faulty;
    use super::*;

    #[test]
    fn upgrades_two_four_eight() {
        let mut a = Faulty::new();
        let mut is = Intset::new(&mut a).unwrap();
        assert_eq!((is.encoding(), is.len(), a.requested()), (2, 0, 8));
        for v in [5, -3, 100] {
            assert!(is.add(&mut a, v).unwrap());
        }
        assert!(!is.add(&mut a, 5).unwrap());
        assert_eq!((is.encoding(), a.requested()), (2, 8 + 3 * 2));
        assert!(is.add(&mut a, 40_000).unwrap());
        assert_eq!((is.encoding(), a.requested()), (4, 8 + 4 * 4));
        assert!(is.add(&mut a, -(1 << 40)).unwrap());
        assert_eq!((is.encoding(), a.requested()), (8, 8 + 5 * 8));
        assert_eq!(
            is.iter().collect::<Vec<_>>(),
            [-(1 << 40), -3, 5, 100, 40_000]
        );
        // Removing the wide values keeps the encoding.
        assert!(is.remove(&mut a, -(1 << 40)).unwrap());
        assert!(is.remove(&mut a, 40_000).unwrap());
        assert!(!is.remove(&mut a, 7).unwrap());
        assert_eq!((is.encoding(), a.requested()), (8, 8 + 3 * 8));
        assert!(is.find(-3) && !is.find(4) && !is.find(i64::MAX));
        // SAFETY: header bytes: encoding 8, length 3, then -3 as 8 bytes.
        unsafe {
            assert_eq!(read_at::<u32>(is.ptr(), 0), 8);
            assert_eq!(read_at::<u32>(is.ptr(), 4), 3);
            assert_eq!(read_at::<i64>(is.ptr(), 8), -3);
        }
        // SAFETY: live, freed once.
        unsafe { is.free(&mut a) };
        assert_eq!(a.requested(), 0);
    }

    #[test]
    fn refused_resizes_leave_the_intset_unchanged() {
        let mut a = Faulty::new();
        let mut is = Intset::new(&mut a).unwrap();
        for v in [1, 2, 3, 4] {
            is.add(&mut a, v).unwrap();
        }
        for (add, v) in [
            (true, 0),
            (true, 5),
            (true, 70_000),
            (false, 2),
            (false, 4),
            (false, 1),
        ] {
            a.fail_in(0);
            let before: Vec<i64> = is.iter().collect();
            let r = if add {
                is.add(&mut a, v).map(|_| ())
            } else {
                is.remove(&mut a, v).map(|_| ())
            };
            a.heal();
            assert!(r.is_err(), "{v}");
            assert_eq!(is.iter().collect::<Vec<_>>(), before);
            assert_eq!((is.encoding(), a.requested()), (2, 16));
        }
        // SAFETY: live, freed once.
        unsafe { is.free(&mut a) };
    }

    #[test]
    fn an_undone_upgrade_returns_to_the_old_width() {
        let mut a = Faulty::new();
        let mut is = Intset::new(&mut a).unwrap();
        for v in [1, 2, 3] {
            is.add(&mut a, v).unwrap();
        }
        is.add(&mut a, 1 << 40).unwrap();
        assert_eq!(a.requested(), 8 + 4 * 8);
        a.fail_in(0);
        assert!(is.undo_add(&mut a, 1 << 40, 2).is_err());
        a.heal();
        assert_eq!(a.requested(), 8 + 4 * 8);
        is.undo_add(&mut a, 1 << 40, 2).unwrap();
        assert_eq!((is.encoding(), a.requested()), (2, 8 + 3 * 2));
        assert_eq!(is.iter().collect::<Vec<_>>(), [1, 2, 3]);
        is.add(&mut a, 9).unwrap();
        is.undo_add(&mut a, 9, 2).unwrap();
        assert_eq!(is.iter().collect::<Vec<_>>(), [1, 2, 3]);
        // SAFETY: live, freed once.
        unsafe { is.free(&mut a) };
    }

    proptest! {
        #[test]
        fn intset_matches_a_btreeset(
            ops in prop::collection::vec((any::<bool>(), prop_oneof![
                -300i64..300,
                any::<i16>().prop_map(i64::from),
                any::<i32>().prop_map(i64::from),
                any::<i64>(),
            ]), 1..200),
            fail in 0u64..300,
        ) {
            let mut a = Faulty::new();
            let mut is = Intset::new(&mut a).unwrap();
            let mut model = std::collections::BTreeSet::new();
            let mut width = 2;
            a.fail_in(fail);
            for (add, v) in ops {
                let r = if add { is.add(&mut a, v) } else { is.remove(&mut a, v) };
                if let Ok(changed) = r {
                    let m = if add { model.insert(v) } else { model.remove(&v) };
                    prop_assert_eq!(changed, m);
                    if add {
                        width = width.max(value_encoding(v));
                    }
                }
                prop_assert_eq!(is.encoding(), width);
                prop_assert_eq!(is.iter().collect::<Vec<_>>(), model.iter().copied().collect::<Vec<_>>());
                prop_assert_eq!(a.requested(), (8 + model.len() * width) as u64);
                for &m in &model {
                    prop_assert!(is.find(m));
                }
            }
            // SAFETY: live, freed once.
            unsafe { is.free(&mut a) };
        }
    }
}
