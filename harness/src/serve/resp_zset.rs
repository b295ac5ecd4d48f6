//! RESP sorted-set commands: ZADD, ZREM, ZSCORE, ZINCRBY, ZRANGE, ZCARD, ZPOPMIN, as Redis
//! 7.0's `t_zset.c` answers them (scores as `addReplyDouble` writes them: `%.17g`, a RESP3
//! double after `HELLO 3`).

use fraglab_allocators::Allocator;
use fraglab_engine::agg::{split_elems, AggCmd, AggType, Reply};
use fraglab_engine::{CmdError, Layout};

use super::resp::{Conn, Flow, Out};
use super::resp_agg::{agg, agg_error, card, count_arg, many, one, range_args};
use super::Ctx;

/// A score as Redis reads one (`strtod` whole, `inf`/`+inf`/`-inf`, no NaN), or `-ERR
/// value is not a valid float`.
pub fn score_arg(b: &[u8], out: &mut Out<'_>) -> Option<f64> {
    let v = std::str::from_utf8(b)
        .ok()
        .filter(|s| !s.is_empty() && !s.starts_with(char::is_whitespace))
        .and_then(|s| match s.to_ascii_lowercase().as_str() {
            "inf" | "+inf" | "infinity" | "+infinity" => Some(f64::INFINITY),
            "-inf" | "-infinity" => Some(f64::NEG_INFINITY),
            l if l.contains("inf") || l.contains("nan") => None,
            _ => s.parse::<f64>().ok(),
        });
    if v.is_none() {
        out.error("value is not a valid float");
    }
    v
}

/// The score of a member, if it is in the sorted set.
fn score_of<A: Allocator, L: Layout>(
    ctx: &mut Ctx<A, L>,
    key: &[u8],
    member: &[u8],
) -> Result<Option<f64>, CmdError> {
    let mut buf = Vec::new();
    match agg(ctx, key, &AggCmd::ZScore { member }, &mut buf)? {
        Reply::Score(s) => Ok(Some(s)),
        _ => Ok(None),
    }
}

/// ZADD key [NX|XX] [CH] [INCR] score member [score member ...].
pub fn zadd<A: Allocator, L: Layout>(
    _: &mut Conn,
    ctx: &mut Ctx<A, L>,
    args: &[&[u8]],
    out: &mut Out<'_>,
) -> Flow {
    let (mut nx, mut xx, mut ch, mut incr) = (false, false, false, false);
    let mut i = 2;
    while i < args.len() {
        let a = args[i];
        match () {
            () if a.eq_ignore_ascii_case(b"nx") => nx = true,
            () if a.eq_ignore_ascii_case(b"xx") => xx = true,
            () if a.eq_ignore_ascii_case(b"ch") => ch = true,
            () if a.eq_ignore_ascii_case(b"incr") => incr = true,
            () => break,
        }
        i += 1;
    }
    let rest = &args[i..];
    if rest.is_empty() || rest.len() % 2 != 0 {
        out.error("syntax error");
        return Flow::Next;
    }
    if nx && xx {
        out.error("XX and NX options at the same time are not compatible");
        return Flow::Next;
    }
    if incr && rest.len() > 2 {
        out.error("INCR option supports a single increment-element pair");
        return Flow::Next;
    }
    let mut scores = Vec::with_capacity(rest.len() / 2);
    for p in rest.chunks(2) {
        let Some(s) = score_arg(p[0], out) else {
            return Flow::Next;
        };
        scores.push((s, p[1]));
    }
    let key = args[1];
    let mut count = 0;
    for (score, member) in scores {
        let old = if nx || xx || ch || incr {
            match score_of(ctx, key, member) {
                Ok(o) => o,
                Err(e) => {
                    agg_error(&e, "zadd", out);
                    return Flow::Next;
                }
            }
        } else {
            None
        };
        if (nx && old.is_some()) || (xx && old.is_none()) {
            if incr {
                out.null();
                return Flow::Next;
            }
            continue;
        }
        let cmd = if incr {
            AggCmd::ZIncrBy {
                member,
                delta: score,
            }
        } else {
            AggCmd::ZAdd { member, score }
        };
        let mut buf = Vec::new();
        match agg(ctx, key, &cmd, &mut buf) {
            Ok(Reply::Score(s)) => {
                out.double(s);
                return Flow::Next;
            }
            Ok(Reply::Int(n)) => {
                count += if ch {
                    i64::from(n == 1 || old != Some(score))
                } else {
                    n
                }
            }
            Ok(_) => {}
            Err(e) => {
                agg_error(&e, "zadd", out);
                return Flow::Next;
            }
        }
    }
    out.int(count);
    Flow::Next
}

pub fn zrem<A: Allocator, L: Layout>(
    _: &mut Conn,
    ctx: &mut Ctx<A, L>,
    args: &[&[u8]],
    out: &mut Out<'_>,
) -> Flow {
    let cmds = args[2..].iter().map(|m| AggCmd::ZRem { member: m });
    if let Some(n) = many(ctx, args[1], cmds, "zrem", false, out) {
        out.int(n);
    }
    Flow::Next
}

pub fn zscore<A: Allocator, L: Layout>(
    _: &mut Conn,
    ctx: &mut Ctx<A, L>,
    args: &[&[u8]],
    out: &mut Out<'_>,
) -> Flow {
    one(
        ctx,
        args[1],
        AggCmd::ZScore { member: args[2] },
        "zscore",
        out,
    )
}

pub fn zincrby<A: Allocator, L: Layout>(
    _: &mut Conn,
    ctx: &mut Ctx<A, L>,
    args: &[&[u8]],
    out: &mut Out<'_>,
) -> Flow {
    let Some(delta) = score_arg(args[2], out) else {
        return Flow::Next;
    };
    one(
        ctx,
        args[1],
        AggCmd::ZIncrBy {
            member: args[3],
            delta,
        },
        "zincrby",
        out,
    )
}

pub fn zcard<A: Allocator, L: Layout>(
    _: &mut Conn,
    ctx: &mut Ctx<A, L>,
    args: &[&[u8]],
    out: &mut Out<'_>,
) -> Flow {
    card(ctx, args[1], AggType::Zset, out)
}

/// Members with their scores: RESP2 alternating (scores as `%.17g` bulk strings), RESP3 an
/// array of `[member, double]` pairs (`flat`: alternating in RESP3 too, as ZPOPMIN without a
/// count replies).
fn with_scores(pairs: &[(Vec<u8>, f64)], flat: bool, out: &mut Out<'_>) {
    let nested = out.resp3 && !flat;
    out.array(if nested { pairs.len() } else { 2 * pairs.len() });
    for (m, s) in pairs {
        if nested {
            out.array(2);
        }
        out.bulk(m);
        out.double(*s);
    }
}

/// ZRANGE key start stop [WITHSCORES] (ranks only: BYSCORE, BYLEX, REV and LIMIT are not
/// served).
pub fn zrange<A: Allocator, L: Layout>(
    _: &mut Conn,
    ctx: &mut Ctx<A, L>,
    args: &[&[u8]],
    out: &mut Out<'_>,
) -> Flow {
    let mut scores = false;
    for a in &args[4..] {
        if a.eq_ignore_ascii_case(b"withscores") {
            scores = true;
        } else {
            out.error("syntax error");
            return Flow::Next;
        }
    }
    let Some((start, stop)) = range_args(args, out) else {
        return Flow::Next;
    };
    if !scores {
        return one(ctx, args[1], AggCmd::ZRange { start, stop }, "zrange", out);
    }
    let mut buf = Vec::new();
    if let Err(e) = agg(ctx, args[1], &AggCmd::ZRange { start, stop }, &mut buf) {
        agg_error(&e, "zrange", out);
        return Flow::Next;
    }
    let members: Vec<Vec<u8>> = split_elems(&buf).into_iter().map(<[u8]>::to_vec).collect();
    let mut pairs = Vec::with_capacity(members.len());
    for m in members {
        let s = score_of(ctx, args[1], &m).ok().flatten().unwrap_or(0.0);
        pairs.push((m, s));
    }
    with_scores(&pairs, false, out);
    Flow::Next
}

/// ZPOPMIN key [count].
pub fn zpopmin<A: Allocator, L: Layout>(
    _: &mut Conn,
    ctx: &mut Ctx<A, L>,
    args: &[&[u8]],
    out: &mut Out<'_>,
) -> Flow {
    if args.len() > 3 {
        out.error("syntax error");
        return Flow::Next;
    }
    let n = match args.get(2) {
        None => 1,
        Some(c) => match count_arg(c, out) {
            Some(n) => n,
            None => return Flow::Next,
        },
    };
    let mut pairs = Vec::new();
    let mut buf = Vec::new();
    while pairs.len() < n {
        match agg(ctx, args[1], &AggCmd::ZPopMin, &mut buf) {
            Ok(Reply::Array(2)) => {
                let e = split_elems(&buf);
                let s = std::str::from_utf8(e[1])
                    .ok()
                    .and_then(|t| match t {
                        "inf" => Some(f64::INFINITY),
                        "-inf" => Some(f64::NEG_INFINITY),
                        t => t.parse().ok(),
                    })
                    .unwrap_or(0.0);
                pairs.push((e[0].to_vec(), s));
            }
            Ok(_) => break,
            Err(e) => {
                agg_error(&e, "zpopmin", out);
                return Flow::Next;
            }
        }
    }
    with_scores(&pairs, args.len() == 2, out);
    Flow::Next
}
