//! The listpack encoding of a sorted set (`zset.rs`): Redis 7.0's `zzl*` functions
//! (`src/t_zset.c`) and the score text of `d2string` (`src/util.c`).

use fraglab_allocators::{AllocError, Allocator};

use super::{entry_size, Listpack, LpValue};

/// `double2ll`: the integer a double is exactly, within +-`LLONG_MAX / 2`.
pub(super) fn double2ll(d: f64) -> Option<i64> {
    let lim = (i64::MAX / 2) as f64;
    if !(-lim..=lim).contains(&d) {
        return None;
    }
    let ll = d as i64;
    (ll as f64 == d).then_some(ll)
}

/// `d2string` for a double `double2ll` refuses: `inf`, `-inf`, or `%.17g`.
pub(super) fn g17(d: f64, out: &mut Vec<u8>) {
    if d.is_infinite() {
        out.extend_from_slice(if d > 0.0 { b"inf" } else { b"-inf" });
        return;
    }
    // 17 significant digits, rounded as printf rounds, and the exponent after rounding.
    let e = format!("{d:.16e}");
    let (mant, exp) = e.split_once('e').expect("an exponent");
    let exp: i32 = exp.parse().expect("a decimal exponent");
    if mant.starts_with('-') {
        out.push(b'-');
    }
    let digits: Vec<u8> = mant.bytes().filter(u8::is_ascii_digit).collect();
    let sig = {
        let n = digits.iter().rposition(|&c| c != b'0').map_or(1, |i| i + 1);
        &digits[..n]
    };
    if !(-4..17).contains(&exp) {
        out.push(sig[0]);
        if sig.len() > 1 {
            out.push(b'.');
            out.extend_from_slice(&sig[1..]);
        }
        out.extend_from_slice(
            format!("e{}{:02}", if exp < 0 { '-' } else { '+' }, exp.abs()).as_bytes(),
        );
    } else if exp >= 0 {
        let int = exp as usize + 1;
        out.extend_from_slice(&digits[..int]);
        if sig.len() > int {
            out.push(b'.');
            out.extend_from_slice(&sig[int..]);
        }
    } else {
        out.extend_from_slice(b"0.");
        out.extend(std::iter::repeat_n(b'0', (-exp - 1) as usize));
        out.extend_from_slice(sig);
    }
}

/// `zzlGetScore`: an integer entry, or `strtod` of the text.
pub(super) fn lp_score(v: LpValue<'_>) -> f64 {
    match v {
        LpValue::Int(i) => i as f64,
        LpValue::Str(s) => std::str::from_utf8(s)
            .ok()
            .and_then(|t| t.parse().ok())
            .unwrap_or(0.0),
    }
}

/// A copy of a listpack's bytes, to put it back after a refusal midway.
pub(super) fn snapshot(lp: Listpack) -> Vec<u8> {
    // SAFETY: the listpack's block holds `bytes()` bytes.
    unsafe { std::slice::from_raw_parts(lp.ptr().as_ptr(), lp.bytes()) }.to_vec()
}

/// Puts a listpack back as `saved`, in one `realloc` to the size it had a moment ago.
pub(super) fn restore<A: Allocator>(a: &mut A, lp: &mut Listpack, saved: &[u8]) {
    // SAFETY: the listpack's live block, requested with `bytes()` bytes.
    let b = unsafe { a.realloc(lp.ptr(), lp.bytes(), saved.len()) }
        .expect("an allocator gives back a block of the size it held a moment ago");
    // SAFETY: the block holds `saved.len()` bytes; it is a listpack again.
    unsafe {
        std::ptr::copy_nonoverlapping(saved.as_ptr(), b.ptr.as_ptr(), saved.len());
        *lp = Listpack::from_ptr(b.ptr);
    }
}

/// `zzlFind`: the member's entry offset and its score.
pub(super) fn zzl_find(lp: Listpack, member: &[u8]) -> Option<(usize, f64)> {
    let e = lp.find(lp.first()?, member, 1)?;
    let s = lp.next(e).expect("a score follows its member");
    Some((e, lp_score(lp.get(s))))
}

/// `zzlInsert`: the pair before the first with a greater score, or an equal score and a
/// greater member (`zzlCompareElements`); else at the end. Two inserts (`zzlInsertAt`), put
/// back as one if the second is refused.
pub(super) fn zzl_insert<A: Allocator>(
    a: &mut A,
    lp: &mut Listpack,
    member: &[u8],
    score: f64,
) -> Result<(), AllocError> {
    let mut at = lp.first();
    while let Some(e) = at {
        let s = lp.next(e).expect("a score follows its member");
        let sc = lp_score(lp.get(s));
        if sc > score || (sc == score && lp.get(e).to_vec().as_slice() > member) {
            break;
        }
        at = lp.next(s);
    }
    let mut text = Vec::new();
    let sv = match double2ll(score) {
        Some(i) => LpValue::Int(i),
        None => {
            g17(score, &mut text);
            LpValue::Str(&text)
        }
    };
    let saved = snapshot(*lp);
    let e = at.unwrap_or(lp.bytes() - 1);
    lp.insert_before(a, e, LpValue::Str(member))?;
    if let Err(err) = lp.insert_before(a, e + entry_size(LpValue::Str(member)), sv) {
        restore(a, lp, &saved);
        return Err(err);
    }
    Ok(())
}
