//! Redis 7.0's listpack (`src/listpack.c`, `src/listpack.h`), byte for byte in one allocator
//! block.
//!
//! Layout: a 6-byte header (total bytes as a `u32` and the element count as a `u16`, both
//! little-endian; a count of 65535 means "unknown, scan to count", `LP_HDR_NUMELE_UNKNOWN`),
//! the entries, and the end byte `0xFF`. An empty listpack is 7 bytes (`lpNew(0)`).
//!
//! An entry is its encoding and data, then a backlen: the length of encoding + data written
//! backwards in 7-bit groups, 1/2/3/4/5 bytes for a length of at most 127 / below 16383 /
//! 2097151 / 268435455 / above (`lpEncodeBacklen`). A string that reads as an `i64` by
//! `string2ll`'s strict rule (`lpStringToInt64`) is stored as an integer: 0..=127 in one byte,
//! -4096..=4095 in two, then 16-, 24-, 32- and 64-bit integers in 3, 4, 5 and 9 bytes
//! (`lpEncodeIntegerGetType`). Other strings take 1 + len bytes below 64, 2 + len below 4096,
//! 5 + len above (`lpEncodeGetType`, `lpEncodeString`).
//!
//! Every insert, delete and replace resizes the block to the exact new total through
//! [`Allocator::realloc`], before moving the bytes when it grows and after when it shrinks, as
//! `lpInsert` does. (`lpInsert` skips the `realloc` when the block's usable size already holds
//! the growth; here every size change is a `realloc`, so the requested size is always the
//! listpack's total, and an allocator resizes in place where the usable size allows.)
//!
//! A failed operation leaves the listpack as it was: a growing `realloc` is made before any
//! byte moves, and a shrinking one that is refused has its move undone.

use std::ptr::NonNull;

use fraglab_allocators::{AllocError, Allocator};

use crate::util::{read_at, write_at};

/// `LP_HDR_SIZE`: total bytes (u32) and element count (u16).
pub(super) const LP_HDR_SIZE: usize = 6;
/// `LISTPACK_MAX_SAFETY_SIZE` (`listpack.c`): `lpSafeToAdd` refuses to grow past 1 GiB.
pub(super) const LISTPACK_MAX_SAFETY_SIZE: usize = 1 << 30;
/// `LP_EOF`.
const LP_EOF: u8 = 0xFF;
/// `LP_HDR_NUMELE_UNKNOWN`.
const NUMELE_UNKNOWN: u16 = u16::MAX;

#[path = "listpack_enc.rs"]
mod enc;
#[allow(unused_imports)] // `entry_size`: for the list and sorted-set types and the tests.
pub(super) use enc::{backlen_size, entry_size, LpValue};
use enc::{encode, encode_backlen, Encoded};

/// A listpack in an allocator block: a handle to its first byte.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Listpack(NonNull<u8>);

impl Listpack {
    /// `lpNew(0)`: an empty listpack of 7 bytes.
    pub(super) fn new<A: Allocator>(a: &mut A) -> Result<Listpack, AllocError> {
        let p = a.alloc(LP_HDR_SIZE + 1)?.ptr;
        // SAFETY: the block holds 7 bytes.
        unsafe {
            write_at::<u32>(p, 0, (LP_HDR_SIZE + 1) as u32);
            write_at::<u16>(p, 4, 0);
            write_at::<u8>(p, LP_HDR_SIZE, LP_EOF);
        }
        Ok(Listpack(p))
    }

    /// A handle to a listpack made by [`Listpack::new`] and its operations.
    ///
    /// # Safety
    /// `p` is a live listpack block, and stays live while the handle is used.
    pub(super) unsafe fn from_ptr(p: NonNull<u8>) -> Listpack {
        Listpack(p)
    }

    /// The block's address (it moves on every resize).
    pub(super) fn ptr(self) -> NonNull<u8> {
        self.0
    }

    fn byte(self, off: usize) -> u8 {
        // SAFETY: callers pass offsets inside the listpack (`off < bytes()`).
        unsafe { read_at::<u8>(self.0, off) }
    }

    /// `lpBytes`: the total size, which is also the block's requested size.
    pub(super) fn bytes(self) -> usize {
        // SAFETY: the header is the block's first 6 bytes.
        unsafe { read_at::<u32>(self.0, 0) as usize }
    }

    fn set_bytes(self, n: usize) {
        // SAFETY: as for `bytes`.
        unsafe { write_at::<u32>(self.0, 0, n as u32) }
    }

    fn numele(self) -> u16 {
        // SAFETY: as for `bytes`.
        unsafe { read_at::<u16>(self.0, 4) }
    }

    fn set_numele(self, n: u16) {
        // SAFETY: as for `bytes`.
        unsafe { write_at::<u16>(self.0, 4, n) }
    }

    /// `lpLength`: the element count from the header, or counted when the header says
    /// unknown (and then cached in the header if it fits, as Redis does).
    pub(super) fn len(self) -> usize {
        let n = self.numele();
        if n != NUMELE_UNKNOWN {
            return n as usize;
        }
        let count = self.iter().count();
        if count < NUMELE_UNKNOWN as usize {
            self.set_numele(count as u16);
        }
        count
    }

    /// `lpCurrentEncodedSizeUnsafe`: encoding + data bytes of the entry at `off`.
    fn encoded_size(self, off: usize) -> usize {
        let b = self.byte(off);
        match b {
            _ if b & 0x80 == 0 => 1,
            _ if b & 0xC0 == 0x80 => 1 + (b & 0x3F) as usize,
            _ if b & 0xE0 == 0xC0 => 2,
            _ if b & 0xF0 == 0xE0 => 2 + (((b & 0xF) as usize) << 8 | self.byte(off + 1) as usize),
            0xF0 => {
                // SAFETY: a 32-bit string's length follows its encoding byte.
                5 + unsafe { read_at::<u32>(self.0, off + 1) } as usize
            }
            0xF1 => 3,
            0xF2 => 4,
            0xF3 => 5,
            0xF4 => 9,
            _ => panic!("listpack: bad encoding byte {b:#x} at {off}"),
        }
    }

    /// `lpSkip`: the whole entry's size, backlen included.
    fn entry_len(self, off: usize) -> usize {
        let n = self.encoded_size(off);
        n + backlen_size(n)
    }

    /// `lpFirst`: the first entry's offset, `None` when empty.
    pub(super) fn first(self) -> Option<usize> {
        (self.byte(LP_HDR_SIZE) != LP_EOF).then_some(LP_HDR_SIZE)
    }

    /// `lpNext`: the entry after the one at `off`.
    pub(super) fn next(self, off: usize) -> Option<usize> {
        let n = off + self.entry_len(off);
        (self.byte(n) != LP_EOF).then_some(n)
    }

    /// `lpPrev`: the entry before the one at `off` (`off` may be the end byte's offset), read
    /// through the backlen (`lpDecodeBacklen`).
    #[cfg(test)]
    pub(super) fn prev(self, off: usize) -> Option<usize> {
        if off <= LP_HDR_SIZE {
            return None;
        }
        let mut p = off - 1;
        let (mut val, mut shift) = (0usize, 0);
        loop {
            let b = self.byte(p);
            val |= ((b & 127) as usize) << shift;
            if b & 128 == 0 {
                break;
            }
            shift += 7;
            p -= 1;
        }
        Some(off - val - backlen_size(val))
    }

    /// The offset of the end byte.
    fn eof(self) -> usize {
        self.bytes() - 1
    }

    /// `lpGet`: the element at `off`.
    pub(super) fn get(&self, off: usize) -> LpValue<'_> {
        let b = self.byte(off);
        let le = |n: usize| {
            let mut v = 0u64;
            for i in 0..n {
                v |= (self.byte(off + 1 + i) as u64) << (8 * i);
            }
            v
        };
        // Sign-extends the low `bits` bits.
        let signed = |u: u64, bits: u32| ((u << (64 - bits)) as i64) >> (64 - bits);
        let str_at = |start: usize, len: usize| {
            // SAFETY: the string's bytes lie inside the listpack, which outlives `&self`'s
            // borrow (mutation needs `&mut self`).
            LpValue::Str(unsafe { std::slice::from_raw_parts(self.0.as_ptr().add(start), len) })
        };
        match b {
            _ if b & 0x80 == 0 => LpValue::Int(i64::from(b)),
            _ if b & 0xC0 == 0x80 => str_at(off + 1, (b & 0x3F) as usize),
            _ if b & 0xE0 == 0xC0 => {
                let u = ((b & 0x1F) as u64) << 8 | self.byte(off + 1) as u64;
                LpValue::Int(signed(u, 13))
            }
            _ if b & 0xF0 == 0xE0 => str_at(off + 2, self.encoded_size(off) - 2),
            0xF0 => str_at(off + 5, self.encoded_size(off) - 5),
            0xF1 => LpValue::Int(signed(le(2), 16)),
            0xF2 => LpValue::Int(signed(le(3), 24)),
            0xF3 => LpValue::Int(signed(le(4), 32)),
            0xF4 => LpValue::Int(le(8) as i64),
            _ => panic!("listpack: bad encoding byte {b:#x} at {off}"),
        }
    }

    /// `lpSeek`: the offset of element `index` (negative counts from the end).
    pub(super) fn seek(self, index: i64) -> Option<usize> {
        let len = self.len() as i64;
        let i = if index < 0 { len + index } else { index };
        if i < 0 || i >= len {
            return None;
        }
        let mut off = self.first()?;
        for _ in 0..i {
            off = self.next(off)?;
        }
        Some(off)
    }

    /// The elements in order.
    pub(super) fn iter(&self) -> Iter<'_> {
        Iter {
            lp: self,
            off: self.first(),
        }
    }

    /// `lpFind(lp, p, s, slen, skip)`: from the entry at `start`, compares every
    /// `skip + 1`-th entry with `s` (an integer entry matches a string that reads as it) and
    /// returns the first match.
    pub(super) fn find(self, start: usize, s: &[u8], skip: usize) -> Option<usize> {
        let mut off = Some(start);
        let mut skipcnt = 0;
        while let Some(p) = off {
            if skipcnt == 0 {
                if self.get(p).eq_bytes(s) {
                    return Some(p);
                }
                skipcnt = skip;
            } else {
                skipcnt -= 1;
            }
            off = self.next(p);
        }
        None
    }

    /// Resizes the block to `new` bytes.
    fn resize<A: Allocator>(
        &mut self,
        a: &mut A,
        old: usize,
        new: usize,
    ) -> Result<(), AllocError> {
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

    /// `lpInsert`: puts `new` before the entry at `off` (`replace == false`; `off` may be the
    /// end byte's) or in place of it (`replace == true`; `new == None` deletes it).
    fn splice<A: Allocator>(
        &mut self,
        a: &mut A,
        off: usize,
        replace: bool,
        new: Option<LpValue<'_>>,
    ) -> Result<(), AllocError> {
        let enc = new.map(encode);
        let enclen = enc.as_ref().map_or(0, Encoded::len);
        let backlen = enc.as_ref().map(|_| encode_backlen(enclen));
        let blen = backlen.map_or(0, |(_, n)| n);
        let old = self.bytes();
        let replaced = if replace { self.entry_len(off) } else { 0 };
        let new_total = old + enclen + blen - replaced;
        if new_total > u32::MAX as usize {
            return Err(AllocError::TooLarge {
                size: new_total,
                max: u32::MAX as usize,
            });
        }
        // Realloc before: more room is needed.
        if new_total > old {
            self.resize(a, old, new_total)?;
        }
        let tail = old - off - replaced;
        let mut saved = Vec::new();
        // SAFETY: the block holds `max(old, new_total)` bytes: the tail moves inside it.
        unsafe {
            let base = self.0.as_ptr().add(off);
            if new_total < old {
                saved.extend_from_slice(std::slice::from_raw_parts(base, replaced));
            }
            std::ptr::copy(base.add(replaced), base.add(enclen + blen), tail);
        }
        // Realloc after: space to give back.
        if new_total < old {
            if let Err(e) = self.resize(a, old, new_total) {
                // SAFETY: the old block is untouched and live: move the tail back and restore
                // the replaced entry.
                unsafe {
                    let base = self.0.as_ptr().add(off);
                    std::ptr::copy(base.add(enclen + blen), base.add(replaced), tail);
                    std::ptr::copy_nonoverlapping(saved.as_ptr(), base, replaced);
                }
                return Err(e);
            }
        }
        if let (Some(enc), Some((bl, _))) = (enc, backlen) {
            // SAFETY: the block holds `new_total` bytes and `off + enclen + blen` of them
            // precede the moved tail.
            unsafe {
                let dst = self.0.as_ptr().add(off);
                match enc {
                    Encoded::Int(b, n) => std::ptr::copy_nonoverlapping(b.as_ptr(), dst, n),
                    Encoded::Str(s, _) => {
                        let h = enclen - s.len();
                        let l = s.len();
                        match h {
                            1 => *dst = 0x80 | l as u8,
                            2 => {
                                *dst = 0xE0 | (l >> 8) as u8;
                                *dst.add(1) = l as u8;
                            }
                            _ => {
                                *dst = 0xF0;
                                dst.add(1).cast::<[u8; 4]>().write((l as u32).to_le_bytes());
                            }
                        }
                        std::ptr::copy_nonoverlapping(s.as_ptr(), dst.add(h), l);
                    }
                }
                std::ptr::copy_nonoverlapping(bl.as_ptr(), dst.add(enclen), blen);
            }
        }
        let delete = new.is_none();
        if !replace || delete {
            let n = self.numele();
            if n != NUMELE_UNKNOWN {
                self.set_numele(if delete { n - 1 } else { n + 1 });
            }
        }
        self.set_bytes(new_total);
        Ok(())
    }

    /// `lpInsertString`/`lpInsertInteger` before the entry at `off` (the end byte's offset
    /// appends).
    pub(super) fn insert_before<A: Allocator>(
        &mut self,
        a: &mut A,
        off: usize,
        v: LpValue<'_>,
    ) -> Result<(), AllocError> {
        self.splice(a, off, false, Some(v))
    }

    /// `lpAppend`.
    pub(super) fn append<A: Allocator>(
        &mut self,
        a: &mut A,
        v: LpValue<'_>,
    ) -> Result<(), AllocError> {
        let eof = self.eof();
        self.splice(a, eof, false, Some(v))
    }

    /// `lpPrepend`.
    pub(super) fn prepend<A: Allocator>(
        &mut self,
        a: &mut A,
        v: LpValue<'_>,
    ) -> Result<(), AllocError> {
        self.splice(a, LP_HDR_SIZE, false, Some(v))
    }

    /// Inserts before element `index` (`index == len()` appends).
    #[cfg(test)]
    pub(super) fn insert<A: Allocator>(
        &mut self,
        a: &mut A,
        index: usize,
        v: LpValue<'_>,
    ) -> Result<(), AllocError> {
        let off = match self.seek(index as i64) {
            Some(off) => off,
            None if index == self.len() => self.eof(),
            None => panic!("listpack insert at {index} past the end ({})", self.len()),
        };
        self.splice(a, off, false, Some(v))
    }

    /// `lpReplace`: replaces the entry at `off`.
    pub(super) fn replace<A: Allocator>(
        &mut self,
        a: &mut A,
        off: usize,
        v: LpValue<'_>,
    ) -> Result<(), AllocError> {
        self.splice(a, off, true, Some(v))
    }

    /// Replaces element `index` (negative counts from the end): `lpSeek` + `lpReplace`.
    #[cfg(test)]
    pub(super) fn replace_at<A: Allocator>(
        &mut self,
        a: &mut A,
        index: i64,
        v: LpValue<'_>,
    ) -> Result<(), AllocError> {
        let off = self.seek(index).expect("a listpack index in range");
        self.splice(a, off, true, Some(v))
    }

    /// Removes element `index` (negative counts from the end): `lpSeek` + `lpDelete`.
    #[cfg(test)]
    pub(super) fn delete_at<A: Allocator>(
        &mut self,
        a: &mut A,
        index: i64,
    ) -> Result<(), AllocError> {
        let off = self.seek(index).expect("a listpack index in range");
        self.splice(a, off, true, None)
    }

    /// `lpDelete`: removes the entry at `off`; returns the next entry's offset.
    pub(super) fn delete<A: Allocator>(
        &mut self,
        a: &mut A,
        off: usize,
    ) -> Result<Option<usize>, AllocError> {
        self.splice(a, off, true, None)?;
        Ok((self.byte(off) != LP_EOF).then_some(off))
    }

    /// `lpDeleteRangeWithEntry`: removes up to `num` entries from the one at `off`, moving the
    /// tail down, then shrinks the block to fit (`lpShrinkToFit`).
    pub(super) fn delete_range<A: Allocator>(
        &mut self,
        a: &mut A,
        off: usize,
        num: usize,
    ) -> Result<(), AllocError> {
        if num == 0 {
            return Ok(());
        }
        let old = self.bytes();
        let (mut tail, mut deleted) = (off, 0);
        while deleted < num && self.byte(tail) != LP_EOF {
            tail += self.entry_len(tail);
            deleted += 1;
        }
        let gone = tail - off;
        let mut saved = Vec::with_capacity(gone);
        // SAFETY: `off..old` lies in the block; the tail (end byte included) moves down.
        unsafe {
            let base = self.0.as_ptr().add(off);
            saved.extend_from_slice(std::slice::from_raw_parts(base, gone));
            std::ptr::copy(base.add(gone), base, old - tail);
        }
        if let Err(e) = self.resize(a, old, old - gone) {
            // SAFETY: the old block is untouched and live: undo the move.
            unsafe {
                let base = self.0.as_ptr().add(off);
                std::ptr::copy(base, base.add(gone), old - tail);
                std::ptr::copy_nonoverlapping(saved.as_ptr(), base, gone);
            }
            return Err(e);
        }
        self.set_bytes(old - gone);
        let n = self.numele();
        if n != NUMELE_UNKNOWN {
            self.set_numele(n - deleted as u16);
        }
        Ok(())
    }

    /// `lpDeleteRange`: removes up to `num` elements from element `index` (negative counts
    /// from the end).
    pub(super) fn delete_range_index<A: Allocator>(
        &mut self,
        a: &mut A,
        index: i64,
        num: usize,
    ) -> Result<(), AllocError> {
        match self.seek(index) {
            Some(off) if num > 0 => self.delete_range(a, off, num),
            _ => Ok(()),
        }
    }

    /// `lpFree`.
    ///
    /// # Safety
    /// The listpack is live and not used afterwards.
    pub(super) unsafe fn free<A: Allocator>(self, a: &mut A) {
        // SAFETY: the caller's contract; the requested size is the total.
        unsafe { a.free(self.0, self.bytes()) }
    }

    /// Checks the structure: every entry's backlen, the count, the end byte (tests).
    #[cfg(test)]
    pub(super) fn check(self) {
        let mut offs = Vec::new();
        let mut off = self.first();
        while let Some(p) = off {
            offs.push(p);
            off = self.next(p);
        }
        let end = offs.last().map_or(LP_HDR_SIZE, |&p| p + self.entry_len(p));
        assert_eq!(end, self.eof(), "entries end at the end byte");
        assert_eq!(self.byte(self.eof()), LP_EOF);
        if self.numele() != NUMELE_UNKNOWN {
            assert_eq!(self.numele() as usize, offs.len());
        }
        let mut back = Vec::new();
        let mut p = self.eof();
        while let Some(q) = self.prev(p) {
            back.push(q);
            p = q;
        }
        back.reverse();
        assert_eq!(back, offs, "backlens walk the same entries backwards");
    }
}

/// The elements of a listpack, in order.
pub(super) struct Iter<'a> {
    lp: &'a Listpack,
    off: Option<usize>,
}

impl<'a> Iterator for Iter<'a> {
    type Item = LpValue<'a>;

    fn next(&mut self) -> Option<LpValue<'a>> {
        let off = self.off?;
        self.off = self.lp.next(off);
        Some(self.lp.get(off))
    }
}

#[cfg(test)]
#[path = "listpack_tests.rs"]
mod tests;
