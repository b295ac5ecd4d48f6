//! The CSV formats' line parsers (Twitter's and fraglab's), and the column and value checks
//! every reader shares.

use crate::gen::VALUE_MAX;
use crate::rng::fnv1a64_bytes;
use crate::{Key, Op, OpKind};

/// Parses a Twitter cache-trace line: `timestamp,anonymized key,key size,value size,client
/// id,operation,TTL`.
pub(super) fn parse_twitter(line: &[u8], origin: &mut Option<u64>) -> Result<Op, String> {
    let mut cols = [&[][..]; 7];
    let n = split_columns(line, &mut cols);
    if n != 7 {
        return Err(format!("expected 7 columns, found {n}"));
    }
    let timestamp = parse_num(cols[0], "timestamp", u64::MAX)?;
    let key = cols[1].trim_ascii();
    let key_len = parse_num(cols[2], "key size", u64::from(u16::MAX))?;
    if key_len == 0 {
        return Err("key size 0".to_string());
    }
    let value_len = value_len_checked(parse_num(cols[3], "value size", u64::MAX)?, "value size")?;
    let kind = match cols[5].trim_ascii() {
        b"get" => OpKind::Get,
        b"gets" => OpKind::Gets,
        b"set" => OpKind::Set,
        b"add" => OpKind::Add,
        b"replace" => OpKind::Replace,
        b"cas" => OpKind::Cas,
        b"append" => OpKind::Append,
        b"prepend" => OpKind::Prepend,
        b"delete" => OpKind::Delete,
        b"incr" => OpKind::Incr,
        b"decr" => OpKind::Decr,
        other => {
            return Err(format!(
                "unknown op `{}` (expected one of get, gets, set, add, replace, cas, \
                 append, prepend, delete, incr, decr)",
                shown(other)
            ))
        }
    };
    let ttl = parse_num(cols[6], "TTL", u64::from(u32::MAX))?;
    // Only now that the record is known good may it fix the time origin.
    Ok(Op {
        time_us: relative_us(origin, timestamp),
        kind,
        key: Key {
            id: fnv1a64_bytes(key),
            len: key_len as u16,
        },
        value_len,
        ttl: ttl as u32,
        fill: matches!(kind, OpKind::Get | OpKind::Gets),
        phase: 0,
        member: Key::NONE,
    })
}

/// Microseconds from the first record's timestamp (in seconds), which this sets if it is
/// unset, to `time`.
pub(super) fn relative_us(origin: &mut Option<u64>, time: u64) -> u64 {
    let origin = *origin.get_or_insert(time);
    time.saturating_sub(origin).saturating_mul(1_000_000)
}

/// Parses a fraglab CSV line: `time_us,op,key_id,key_len,value_len,ttl,fill,phase`.
pub(super) fn parse_fraglab(line: &[u8]) -> Result<Op, String> {
    let mut cols = [&[][..]; 10];
    let n = split_columns(line, &mut cols);
    if n != 8 && n != 10 {
        return Err(format!(
            "expected 8 columns (10 for an op that names an element), found {n}"
        ));
    }
    let time_us = parse_num(cols[0], "time_us", u64::MAX)?;
    let op = cols[1].trim_ascii();
    let kind = std::str::from_utf8(op)
        .ok()
        .and_then(|s| s.parse::<OpKind>().ok())
        .ok_or_else(|| crate::UnknownOp(shown(op)).to_string())?;
    let id = if kind == OpKind::SlabsReassign && cols[2].trim_ascii() == b"-1" {
        // memcached's `slabs reassign -1 DST`: any class with a page to spare.
        Op::ANY_CLASS
    } else {
        parse_num(cols[2], "key_id", u64::MAX)?
    };
    let key_len = parse_num(cols[3], "key_len", u64::from(u16::MAX))?;
    if key_len == 0 {
        return Err("key_len 0: keys need at least one byte".to_string());
    }
    let value_len = value_len_checked(parse_num(cols[4], "value_len", u64::MAX)?, "value_len")?;
    let ttl = parse_num(cols[5], "ttl", u64::from(u32::MAX))?;
    let fill = match cols[6].trim_ascii() {
        b"0" => false,
        b"1" => true,
        other => return Err(format!("fill `{}` is not 0 or 1", shown(other))),
    };
    let phase = parse_num(cols[7], "phase", u64::from(u16::MAX))?;
    let member = match (n, kind.has_member()) {
        (10, true) => Key {
            id: parse_num(cols[8], "member_id", u64::MAX)?,
            len: parse_num(cols[9], "member_len", u64::from(crate::KEY_MAX))? as u16,
        },
        (8, false) => Key::NONE,
        (_, true) => {
            return Err(format!(
                "op `{}` names an element: expected member_id and member_len columns",
                kind.name()
            ))
        }
        (_, false) => {
            return Err(format!(
                "op `{}` names no element: expected 8 columns, found 10",
                kind.name()
            ))
        }
    };
    Ok(Op {
        time_us,
        kind,
        key: Key {
            id,
            len: key_len as u16,
        },
        value_len,
        ttl: ttl as u32,
        fill,
        phase: phase as u16,
        member,
    })
}

/// Splits `line` at commas into `cols`, returning how many columns it has (which may exceed
/// `cols.len()`; the extra ones are only counted).
fn split_columns<'a>(line: &'a [u8], cols: &mut [&'a [u8]]) -> usize {
    let mut n = 0;
    for col in line.split(|&b| b == b',') {
        if let Some(slot) = cols.get_mut(n) {
            *slot = col;
        }
        n += 1;
    }
    n
}

/// Parses a decimal column no greater than `max`. Surrounding spaces are allowed, signs and
/// anything else are not.
fn parse_num(text: &[u8], column: &str, max: u64) -> Result<u64, String> {
    let digits = text.trim_ascii();
    if digits.is_empty() {
        return Err(format!("{column} is empty"));
    }
    let mut v: u64 = 0;
    let mut overflow = false;
    for &b in digits {
        if !b.is_ascii_digit() {
            return Err(format!("{column} `{}` is not a number", shown(digits)));
        }
        match v
            .checked_mul(10)
            .and_then(|v| v.checked_add(u64::from(b - b'0')))
        {
            Some(next) => v = next,
            None => overflow = true,
        }
    }
    if overflow || v > max {
        return Err(format!(
            "{column} `{}` is out of range (max {max})",
            shown(digits)
        ));
    }
    Ok(v)
}

/// Bytes from a trace as they appear in an error message: lossy UTF-8, cut at 40 characters
/// so a garbage line does not make a garbage-sized message.
pub(super) fn shown(bytes: &[u8]) -> String {
    let s = String::from_utf8_lossy(bytes);
    match s.char_indices().nth(40) {
        Some((i, _)) => format!("{}...", &s[..i]),
        None => s.into_owned(),
    }
}

/// Checks a value length read from a trace against [`VALUE_MAX`] (1 GiB less one byte, the
/// largest value a generator writes) before anything is allocated for it: the replay builds
/// a value of that many bytes, so a record declaring 4 GiB would otherwise cost 4 GiB.
pub(super) fn value_len_checked(len: u64, column: &str) -> Result<u32, String> {
    match u32::try_from(len) {
        Ok(v) if v <= VALUE_MAX => Ok(v),
        _ => Err(format!(
            "{column} {len} is larger than the largest value fraglab replays, \
             {VALUE_MAX} bytes (1 GiB less one byte)"
        )),
    }
}
