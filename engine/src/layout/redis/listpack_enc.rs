//! The listpack's element encodings (Redis 7.0's `src/listpack.c`: `lpEncodeGetType`,
//! `lpEncodeIntegerGetType`, `lpEncodeString`'s header sizes, `lpEncodeBacklen`).

use super::super::object::parse_i64;

/// One element's value: integers come back as integers, whatever the client sent.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(in super::super) enum LpValue<'a> {
    /// An integer-encoded element.
    Int(i64),
    /// A string element.
    Str(&'a [u8]),
}

impl LpValue<'_> {
    /// Appends the element's text (an integer in decimal, as Redis replies with it).
    pub(in super::super) fn write_text(&self, out: &mut Vec<u8>) {
        match *self {
            LpValue::Int(v) => out.extend_from_slice(v.to_string().as_bytes()),
            LpValue::Str(s) => out.extend_from_slice(s),
        }
    }

    /// The element's text as an owned vector.
    pub(in super::super) fn to_vec(self) -> Vec<u8> {
        let mut v = Vec::new();
        self.write_text(&mut v);
        v
    }

    /// The length of the element's text.
    pub(in super::super) fn text_len(&self) -> usize {
        match *self {
            LpValue::Int(v) => {
                v.unsigned_abs()
                    .checked_ilog10()
                    .map_or(1, |d| d as usize + 1)
                    + usize::from(v < 0)
            }
            LpValue::Str(s) => s.len(),
        }
    }

    /// Whether the element equals the string `s` (`lpCompare` / `lpFind`): a string element
    /// byte for byte, an integer element when `s` reads as the same integer.
    pub(in super::super) fn eq_bytes(&self, s: &[u8]) -> bool {
        match *self {
            LpValue::Str(v) => v == s,
            LpValue::Int(v) => s.len() < 32 && parse_i64(s) == Some(v),
        }
    }
}

/// An element encoded for storage: its encoding + data bytes (integers only; strings are
/// copied from the caller) and length.
pub(super) enum Encoded<'a> {
    Int([u8; 9], usize),
    Str(&'a [u8], usize),
}

impl Encoded<'_> {
    pub(super) fn len(&self) -> usize {
        match *self {
            Encoded::Int(_, n) | Encoded::Str(_, n) => n,
        }
    }
}

/// `lpEncodeIntegerGetType`.
pub(super) fn encode_int(v: i64) -> ([u8; 9], usize) {
    let mut b = [0u8; 9];
    let n = if (0..=127).contains(&v) {
        b[0] = v as u8;
        1
    } else if (-4096..=4095).contains(&v) {
        let u = if v < 0 { (1 << 13) + v } else { v } as u64;
        b[0] = (u >> 8) as u8 | 0xC0;
        b[1] = u as u8;
        2
    } else if (-32768..=32767).contains(&v) {
        b[0] = 0xF1;
        b[1..3].copy_from_slice(&(v as i16).to_le_bytes());
        3
    } else if (-8_388_608..=8_388_607).contains(&v) {
        b[0] = 0xF2;
        b[1..4].copy_from_slice(&(v as i32).to_le_bytes()[..3]);
        4
    } else if (i64::from(i32::MIN)..=i64::from(i32::MAX)).contains(&v) {
        b[0] = 0xF3;
        b[1..5].copy_from_slice(&(v as i32).to_le_bytes());
        5
    } else {
        b[0] = 0xF4;
        b[1..9].copy_from_slice(&v.to_le_bytes());
        9
    };
    (b, n)
}

/// `lpEncodeGetType`: an integer when the string reads as one, else a string.
pub(super) fn encode(v: LpValue<'_>) -> Encoded<'_> {
    let int = match v {
        LpValue::Int(i) => Some(i),
        LpValue::Str(s) => parse_i64(s),
    };
    match (int, v) {
        (Some(i), _) => {
            let (b, n) = encode_int(i);
            Encoded::Int(b, n)
        }
        (None, LpValue::Str(s)) => {
            let n = match s.len() {
                0..64 => 1,
                64..4096 => 2,
                _ => 5,
            } + s.len();
            Encoded::Str(s, n)
        }
        (None, LpValue::Int(_)) => unreachable!("an integer always encodes as one"),
    }
}

/// `lpEncodeBacklen(NULL, l)`: how many bytes the backlen of an `l`-byte entry takes.
pub(in super::super) fn backlen_size(l: usize) -> usize {
    match l {
        0..=127 => 1,
        128..16383 => 2,
        16383..2_097_151 => 3,
        2_097_151..268_435_455 => 4,
        _ => 5,
    }
}

/// `lpEncodeBacklen(buf, l)`.
pub(super) fn encode_backlen(l: usize) -> ([u8; 5], usize) {
    let n = backlen_size(l);
    let mut b = [0u8; 5];
    for (i, byte) in b[..n].iter_mut().enumerate() {
        // The first byte holds the highest group; every byte but the first has bit 7 set.
        let shift = 7 * (n - 1 - i);
        *byte = ((l >> shift) & 127) as u8 | if i == 0 { 0 } else { 128 };
    }
    (b, n)
}

/// The bytes one element takes in a listpack: encoding + data + backlen.
pub(in super::super) fn entry_size(v: LpValue<'_>) -> usize {
    let n = encode(v).len();
    n + backlen_size(n)
}
