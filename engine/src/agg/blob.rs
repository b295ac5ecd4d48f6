//! The blob: how the memcached and compact layouts hold an aggregate in one item's value.
//!
//! memcached has no types; a client that keeps a hash in it serializes the hash into one value
//! and rewrites the whole value on every change. The format here is the plainest such
//! serialization, length-prefixed:
//!
//! ```text
//! tag      1 byte   'H' hash, 'S' set, 'L' list, 'Z' sorted set
//! count    varint   number of elements (LEB128, 7 bits per byte, low first)
//! elements count times:
//!   hash   varint field length, field, varint value length, value
//!   set    varint member length, member
//!   list   varint element length, element          (head first)
//!   zset   varint member length, member, score as 8 bytes little-endian f64
//!                                                  (sorted by score, then member)
//! ```
//!
//! A string of `n` bytes costs `n` plus 1 byte of length below 128 bytes, 2 below 16 KiB; a
//! score 8. Decoding checks every count and length against the bytes that remain before it
//! allocates anything.

use std::collections::VecDeque;

use super::model::AggData;
use super::AggType;

/// A blob that does not decode (a string value, or corrupt bytes), and where.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("not an aggregate blob: {what} at byte {at}")]
pub struct BlobError {
    /// What was wrong.
    pub what: &'static str,
    /// The offset.
    pub at: usize,
}

/// The tag byte of a type.
pub fn tag(t: AggType) -> u8 {
    match t {
        AggType::Hash => b'H',
        AggType::Set => b'S',
        AggType::List => b'L',
        AggType::Zset => b'Z',
    }
}

fn put_varint(out: &mut Vec<u8>, mut n: u64) {
    while n >= 0x80 {
        out.push((n as u8) | 0x80);
        n >>= 7;
    }
    out.push(n as u8);
}

fn put_bytes(out: &mut Vec<u8>, b: &[u8]) {
    put_varint(out, b.len() as u64);
    out.extend_from_slice(b);
}

/// Serializes `data` into `out` (appending).
pub fn encode(data: &AggData, out: &mut Vec<u8>) {
    out.push(tag(data.agg_type()));
    put_varint(out, data.len() as u64);
    match data {
        AggData::Hash(h) => {
            for (f, v) in h {
                put_bytes(out, f);
                put_bytes(out, v);
            }
        }
        AggData::Set(s) => s.iter().for_each(|m| put_bytes(out, m)),
        AggData::List(l) => l.iter().for_each(|e| put_bytes(out, e)),
        AggData::Zset(z) => {
            for (s, m) in z {
                put_bytes(out, m);
                out.extend_from_slice(&s.to_le_bytes());
            }
        }
    }
}

/// The blob's size for `data`, without encoding it.
pub fn encoded_len(data: &AggData) -> usize {
    let v = |n: usize| (64 - (n as u64 | 1).leading_zeros()).div_ceil(7) as usize;
    let b = |x: &[u8]| v(x.len()) + x.len();
    1 + v(data.len())
        + match data {
            AggData::Hash(h) => h.iter().map(|(f, x)| b(f) + b(x)).sum::<usize>(),
            AggData::Set(s) => s.iter().map(|m| b(m)).sum(),
            AggData::List(l) => l.iter().map(|e| b(e)).sum(),
            AggData::Zset(z) => z.iter().map(|(_, m)| b(m) + 8).sum(),
        }
}

struct Reader<'a> {
    buf: &'a [u8],
    at: usize,
}

impl<'a> Reader<'a> {
    fn err(&self, what: &'static str) -> BlobError {
        BlobError { what, at: self.at }
    }

    fn varint(&mut self) -> Result<u64, BlobError> {
        let mut n = 0u64;
        for shift in (0..64).step_by(7) {
            let Some(&b) = self.buf.get(self.at) else {
                return Err(self.err("truncated length"));
            };
            self.at += 1;
            n |= u64::from(b & 0x7f) << shift;
            if b & 0x80 == 0 {
                return Ok(n);
            }
        }
        Err(self.err("length longer than 64 bits"))
    }

    fn bytes(&mut self) -> Result<&'a [u8], BlobError> {
        let n = self.varint()?;
        let rest = (self.buf.len() - self.at) as u64;
        if n > rest {
            return Err(self.err("length past the end"));
        }
        let s = &self.buf[self.at..self.at + n as usize];
        self.at += n as usize;
        Ok(s)
    }

    fn score(&mut self) -> Result<f64, BlobError> {
        let Some(b) = self.buf.get(self.at..self.at + 8) else {
            return Err(self.err("truncated score"));
        };
        self.at += 8;
        Ok(f64::from_le_bytes(b.try_into().expect("8 bytes")))
    }
}

/// The type a blob holds, from its tag, if it is one.
pub fn blob_type(buf: &[u8]) -> Option<AggType> {
    AggType::ALL
        .into_iter()
        .find(|&t| buf.first() == Some(&tag(t)))
}

/// Decodes a blob.
pub fn decode(buf: &[u8]) -> Result<AggData, BlobError> {
    let mut r = Reader { buf, at: 0 };
    let t = blob_type(buf).ok_or_else(|| r.err("unknown tag"))?;
    r.at = 1;
    let count = r.varint()?;
    // Every element takes at least one byte: a count past the rest is corrupt, and checking
    // it first bounds what is reserved below.
    if count > (buf.len() - r.at) as u64 {
        return Err(r.err("count larger than the blob"));
    }
    let n = count as usize;
    let data = match t {
        AggType::Hash => {
            let mut h = Vec::with_capacity(n);
            for _ in 0..n {
                let f = r.bytes()?.to_vec();
                h.push((f, r.bytes()?.to_vec()));
            }
            AggData::Hash(h)
        }
        AggType::Set => {
            let mut s = Vec::with_capacity(n);
            for _ in 0..n {
                s.push(r.bytes()?.to_vec());
            }
            AggData::Set(s)
        }
        AggType::List => {
            let mut l = VecDeque::with_capacity(n);
            for _ in 0..n {
                l.push_back(r.bytes()?.to_vec());
            }
            AggData::List(l)
        }
        AggType::Zset => {
            let mut z = Vec::with_capacity(n);
            for _ in 0..n {
                let m = r.bytes()?.to_vec();
                z.push((r.score()?, m));
            }
            AggData::Zset(z)
        }
    };
    if r.at != buf.len() {
        return Err(r.err("bytes after the last element"));
    }
    Ok(data)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn a_small_hash_costs_its_bytes_plus_lengths() {
        let h = AggData::Hash(vec![(b"name".to_vec(), b"ann".to_vec())]);
        let mut out = Vec::new();
        encode(&h, &mut out);
        assert_eq!(out, b"H\x01\x04name\x03ann");
        assert_eq!(encoded_len(&h), out.len());
        assert_eq!(decode(&out).unwrap(), h);
    }

    #[test]
    fn corrupt_blobs_say_where() {
        assert_eq!(decode(b"").unwrap_err().what, "unknown tag");
        assert_eq!(decode(b"hello").unwrap_err().what, "unknown tag");
        let e = decode(b"S\xff\xff\xff\xff\x0f").unwrap_err();
        assert_eq!((e.what, e.at), ("count larger than the blob", 6));
        let e = decode(b"S\x01\x05ab").unwrap_err();
        assert_eq!((e.what, e.at), ("length past the end", 3));
        assert_eq!(
            decode(b"Z\x01\x01a\0\0").unwrap_err().what,
            "truncated score"
        );
        assert_eq!(
            decode(b"L\x00x").unwrap_err().what,
            "bytes after the last element"
        );
    }

    fn data() -> impl Strategy<Value = AggData> {
        let bytes = || proptest::collection::vec(any::<u8>(), 0..200);
        prop_oneof![
            proptest::collection::vec((bytes(), bytes()), 0..20).prop_map(AggData::Hash),
            proptest::collection::vec(bytes(), 0..20).prop_map(AggData::Set),
            proptest::collection::vec(bytes(), 0..20)
                .prop_map(|v| AggData::List(v.into_iter().collect())),
            proptest::collection::vec((-1e9f64..1e9, bytes()), 0..20).prop_map(|mut v| {
                v.sort_by(|a, b| a.partial_cmp(b).unwrap());
                AggData::Zset(v)
            }),
        ]
    }

    proptest! {
        #[test]
        fn blobs_round_trip(d in data()) {
            let mut out = Vec::new();
            encode(&d, &mut out);
            prop_assert_eq!(encoded_len(&d), out.len());
            prop_assert_eq!(decode(&out).unwrap(), d);
        }

        #[test]
        fn any_bytes_decode_or_fail_cleanly(b in proptest::collection::vec(any::<u8>(), 0..64)) {
            let _ = decode(&b);
        }
    }
}
