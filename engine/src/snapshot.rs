//! The snapshot file: an RDB-like dump of every key a store holds, and its reader.
//!
//! [`Store::dump`](crate::Store::dump) writes one; [`Store::restore`](crate::Store::restore)
//! puts a record back. The format is the lab's own, shaped like Redis's RDB (`rdb.c`: a magic
//! string and version, one record per key with its type, expiry and value, an end opcode and
//! a checksum), with fixed-width little-endian lengths instead of RDB's variable ones:
//!
//! ```text
//! file    = "FRAGSNAP" version:u16 record* end
//! record  = type:u8 key:bytes flags:u32 exptime:u32 value
//!           type: 0 string, 1 hash, 2 set, 3 list, 4 sorted set
//!           exptime: absolute, in the store's seconds; 0: none
//! value   = string: bytes
//!         | hash:   count:u32 (field:bytes value:bytes)*
//!         | set:    count:u32 member:bytes*
//!         | list:   count:u32 element:bytes*          (head first)
//!         | zset:   count:u32 (member:bytes score:f64)* (lowest score first)
//! bytes   = len:u32 byte*
//! end     = 0xff keys:u64 checksum:u64
//!           checksum: FNV-1a 64 of every byte before it
//! ```
//!
//! The reader checks every length against what is left of its limits before it allocates
//! anything for it, and names the byte offset of whatever it refuses.

use std::io::{self, Read, Write};

use crate::agg::model::AggData;
use crate::agg::AggType;

/// The file's first bytes.
pub const MAGIC: &[u8; 8] = b"FRAGSNAP";
/// The format's version.
pub const VERSION: u16 = 1;
/// The end opcode.
const END: u8 = 0xff;
/// The longest key the reader takes (Redis's keys are at most 512 MiB; the lab's never near).
pub const KEY_MAX: u32 = 64 << 20;
/// The longest value or element the reader takes (Redis's `proto-max-bulk-len`, 512 MiB).
pub const VALUE_MAX: u32 = 512 << 20;

/// One key of a snapshot.
#[derive(Clone, Debug, PartialEq)]
pub struct Record {
    /// The key.
    pub key: Vec<u8>,
    /// Client flags (memcached's; 0 under Redis semantics).
    pub flags: u32,
    /// Absolute expiry in the store's seconds; 0: none.
    pub exptime: u32,
    /// The value.
    pub value: Value,
}

/// A key's value.
#[derive(Clone, Debug, PartialEq)]
pub enum Value {
    /// A string.
    Str(Vec<u8>),
    /// A hash, set, list or sorted set.
    Agg(AggData),
}

fn type_byte(v: &Value) -> u8 {
    match v {
        Value::Str(_) => 0,
        Value::Agg(a) => match a.agg_type() {
            AggType::Hash => 1,
            AggType::Set => 2,
            AggType::List => 3,
            AggType::Zset => 4,
        },
    }
}

/// FNV-1a 64, fed as the file is written or read.
#[derive(Clone, Copy, Debug)]
struct Fnv(u64);

impl Fnv {
    fn new() -> Self {
        Fnv(0xcbf2_9ce4_8422_2325)
    }
    fn feed(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.0 = (self.0 ^ u64::from(b)).wrapping_mul(0x0000_0100_0000_01b3);
        }
    }
}

/// Writes a snapshot: the header at once, then [`record`](Writer::record) per key, then
/// [`finish`](Writer::finish).
#[derive(Debug)]
pub struct Writer<W: Write> {
    out: W,
    sum: Fnv,
    keys: u64,
    bytes: u64,
}

impl<W: Write> Writer<W> {
    /// Starts a snapshot on `out` (give it a buffered writer).
    pub fn new(out: W) -> io::Result<Self> {
        let mut w = Writer {
            out,
            sum: Fnv::new(),
            keys: 0,
            bytes: 0,
        };
        w.put(MAGIC)?;
        w.put(&VERSION.to_le_bytes())?;
        Ok(w)
    }

    fn put(&mut self, b: &[u8]) -> io::Result<()> {
        self.sum.feed(b);
        self.bytes += b.len() as u64;
        self.out.write_all(b)
    }

    fn put_u32(&mut self, n: u32) -> io::Result<()> {
        self.put(&n.to_le_bytes())
    }

    fn put_bytes(&mut self, b: &[u8]) -> io::Result<()> {
        let n = u32::try_from(b.len())
            .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "a value over 4 GiB"))?;
        self.put_u32(n)?;
        self.put(b)
    }

    fn put_count(&mut self, n: usize) -> io::Result<()> {
        let n = u32::try_from(n)
            .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "over 2^32 elements"))?;
        self.put_u32(n)
    }

    /// Writes one key: its header, then the value from [`Value`]'s parts.
    pub fn record(
        &mut self,
        key: &[u8],
        flags: u32,
        exptime: u32,
        value: &Value,
    ) -> io::Result<()> {
        self.put(&[type_byte(value)])?;
        self.put_bytes(key)?;
        self.put_u32(flags)?;
        self.put_u32(exptime)?;
        match value {
            Value::Str(s) => self.put_bytes(s)?,
            Value::Agg(AggData::Hash(h)) => {
                self.put_count(h.len())?;
                for (f, v) in h {
                    self.put_bytes(f)?;
                    self.put_bytes(v)?;
                }
            }
            Value::Agg(AggData::Set(s)) => {
                self.put_count(s.len())?;
                for m in s {
                    self.put_bytes(m)?;
                }
            }
            Value::Agg(AggData::List(l)) => {
                self.put_count(l.len())?;
                for e in l {
                    self.put_bytes(e)?;
                }
            }
            Value::Agg(AggData::Zset(z)) => {
                self.put_count(z.len())?;
                for (score, m) in z {
                    self.put_bytes(m)?;
                    self.put(&score.to_le_bytes())?;
                }
            }
        }
        self.keys += 1;
        Ok(())
    }

    /// Keys written so far.
    pub fn keys(&self) -> u64 {
        self.keys
    }

    /// Writes the end and the checksum; returns the writer, the keys and the file's bytes.
    pub fn finish(mut self) -> io::Result<(W, u64, u64)> {
        self.put(&[END])?;
        let keys = self.keys;
        self.put(&keys.to_le_bytes())?;
        let sum = self.sum.0;
        self.out.write_all(&sum.to_le_bytes())?;
        self.out.flush()?;
        Ok((self.out, keys, self.bytes + 8))
    }
}

/// Why a snapshot could not be read.
#[derive(Debug, thiserror::Error)]
pub enum ReadError {
    /// The file could not be read.
    #[error("reading the snapshot: {0}")]
    Io(#[from] io::Error),
    /// The bytes are not a snapshot, or not a whole one.
    #[error("snapshot byte {at}: {why}")]
    Bad {
        /// The offset of the refused bytes.
        at: u64,
        /// What is wrong.
        why: String,
    },
}

/// Reads a snapshot, a record at a time.
#[derive(Debug)]
pub struct Reader<R: Read> {
    input: R,
    sum: Fnv,
    at: u64,
    done: bool,
    records: u64,
}

impl<R: Read> Reader<R> {
    /// Reads and checks the header.
    pub fn new(input: R) -> Result<Self, ReadError> {
        let mut r = Reader {
            input,
            sum: Fnv::new(),
            at: 0,
            done: false,
            records: 0,
        };
        let mut magic = [0; 8];
        r.take(&mut magic)?;
        if &magic != MAGIC {
            return Err(r.bad(0, "not a fraglab snapshot (no FRAGSNAP header)".into()));
        }
        let mut v = [0; 2];
        r.take(&mut v)?;
        let v = u16::from_le_bytes(v);
        if v != VERSION {
            return Err(r.bad(
                8,
                format!("version {v}; this build reads version {VERSION}"),
            ));
        }
        Ok(r)
    }

    fn bad(&self, at: u64, why: String) -> ReadError {
        ReadError::Bad { at, why }
    }

    fn take(&mut self, buf: &mut [u8]) -> Result<(), ReadError> {
        self.input.read_exact(buf).map_err(|e| {
            if e.kind() == io::ErrorKind::UnexpectedEof {
                self.bad(
                    self.at,
                    "the file ends inside a record (a partial snapshot)".into(),
                )
            } else {
                ReadError::Io(e)
            }
        })?;
        self.sum.feed(buf);
        self.at += buf.len() as u64;
        Ok(())
    }

    fn u32(&mut self) -> Result<u32, ReadError> {
        let mut b = [0; 4];
        self.take(&mut b)?;
        Ok(u32::from_le_bytes(b))
    }

    fn u64(&mut self) -> Result<u64, ReadError> {
        let mut b = [0; 8];
        self.take(&mut b)?;
        Ok(u64::from_le_bytes(b))
    }

    /// A length-prefixed string of at most `max` bytes, checked before it is allocated.
    fn bytes(&mut self, max: u32, what: &str) -> Result<Vec<u8>, ReadError> {
        let at = self.at;
        let n = self.u32()?;
        if n > max {
            return Err(self.bad(at, format!("{what} of {n} bytes, over the limit of {max}")));
        }
        // Read through `take` so that a length past the end fails before a large buffer is
        // filled: the buffer grows only as bytes arrive.
        let mut out = Vec::new();
        let mut left = n as usize;
        let mut chunk = [0u8; 8192];
        while left > 0 {
            let k = left.min(chunk.len());
            self.take(&mut chunk[..k])?;
            out.extend_from_slice(&chunk[..k]);
            left -= k;
        }
        Ok(out)
    }

    /// The next record, or `None` after the end (whose key count and checksum are checked).
    pub fn next_record(&mut self) -> Result<Option<Record>, ReadError> {
        if self.done {
            return Ok(None);
        }
        let at = self.at;
        let mut t = [0; 1];
        self.take(&mut t)?;
        if t[0] == END {
            let keys = self.u64()?;
            let want = self.sum.0;
            let mut b = [0; 8];
            self.input
                .read_exact(&mut b)
                .map_err(|_| self.bad(self.at, "the file ends before its checksum".into()))?;
            let got = u64::from_le_bytes(b);
            if got != want {
                return Err(self.bad(
                    self.at,
                    format!("checksum {got:#018x}, but the bytes sum to {want:#018x}"),
                ));
            }
            if keys != self.records {
                return Err(self.bad(
                    self.at,
                    format!("the end says {keys} keys, but {} were read", self.records),
                ));
            }
            self.done = true;
            return Ok(None);
        }
        let key = self.bytes(KEY_MAX, "a key")?;
        let flags = self.u32()?;
        let exptime = self.u32()?;
        let value = match t[0] {
            0 => Value::Str(self.bytes(VALUE_MAX, "a value")?),
            1..=4 => {
                let n = self.u32()?;
                let mut data = AggData::new(match t[0] {
                    1 => AggType::Hash,
                    2 => AggType::Set,
                    3 => AggType::List,
                    _ => AggType::Zset,
                });
                for _ in 0..n {
                    match &mut data {
                        AggData::Hash(h) => {
                            let f = self.bytes(VALUE_MAX, "a field")?;
                            h.push((f, self.bytes(VALUE_MAX, "a field's value")?));
                        }
                        AggData::Set(s) => s.push(self.bytes(VALUE_MAX, "a member")?),
                        AggData::List(l) => l.push_back(self.bytes(VALUE_MAX, "an element")?),
                        AggData::Zset(z) => {
                            let m = self.bytes(VALUE_MAX, "a member")?;
                            let score = f64::from_bits(self.u64()?);
                            z.push((score, m));
                        }
                    }
                }
                Value::Agg(data)
            }
            other => return Err(self.bad(at, format!("unknown record type {other}"))),
        };
        self.records += 1;
        Ok(Some(Record {
            key,
            flags,
            exptime,
            value,
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> Vec<u8> {
        let mut w = Writer::new(Vec::new()).unwrap();
        w.record(b"k", 7, 0, &Value::Str(b"value".to_vec()))
            .unwrap();
        let z = AggData::Zset(vec![(1.5, b"a".to_vec()), (2.0, b"b".to_vec())]);
        w.record(b"z", 0, 99, &Value::Agg(z)).unwrap();
        let (out, keys, bytes) = w.finish().unwrap();
        assert_eq!(keys, 2);
        assert_eq!(bytes, out.len() as u64);
        out
    }

    #[test]
    fn records_read_back() {
        let file = sample();
        let mut r = Reader::new(&file[..]).unwrap();
        let a = r.next_record().unwrap().unwrap();
        assert_eq!((a.key.as_slice(), a.flags), (&b"k"[..], 7));
        assert_eq!(a.value, Value::Str(b"value".to_vec()));
        let b = r.next_record().unwrap().unwrap();
        assert_eq!(b.exptime, 99);
        assert!(
            matches!(b.value, Value::Agg(AggData::Zset(ref z)) if z[0] == (1.5, b"a".to_vec()))
        );
        assert!(r.next_record().unwrap().is_none());
    }

    #[test]
    fn damage_is_named_by_offset() {
        let mut file = sample();
        let n = file.len();
        file[20] ^= 1;
        let mut r = Reader::new(&file[..]).unwrap();
        let err = loop {
            match r.next_record() {
                Ok(Some(_)) => continue,
                Ok(None) => panic!("a damaged file read back"),
                Err(e) => break e.to_string(),
            }
        };
        assert!(err.starts_with("snapshot byte"), "{err}");
        let cut = &sample()[..n - 12];
        let mut r = Reader::new(cut).unwrap();
        let err = loop {
            match r.next_record() {
                Ok(Some(_)) => continue,
                Ok(None) => panic!("a cut file read back"),
                Err(e) => break e.to_string(),
            }
        };
        assert!(err.contains("ends"), "{err}");
        let mut huge = sample()[..10].to_vec();
        huge.push(0);
        huge.extend_from_slice(&u32::MAX.to_le_bytes());
        let err = Reader::new(&huge[..]).unwrap().next_record().unwrap_err();
        assert!(err.to_string().contains("over the limit"), "{err}");
        assert!(Reader::new(&b"RDB0009xx"[..]).is_err());
    }
}
