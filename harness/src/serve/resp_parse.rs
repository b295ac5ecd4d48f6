//! RESP request framing, as Redis 7.0 reads a query buffer (`processInputBuffer`,
//! `processMultibulkBuffer` and `processInlineBuffer` in `networking.c`; the format is the
//! RESP spec's, <https://redis.io/docs/reference/protocol-spec/>).
//!
//! A request starting with `*` is a multibulk: `*<n>\r\n` then `n` bulk strings
//! `$<len>\r\n<bytes>\r\n`. Anything else is an inline command: one line split on spaces,
//! with `"..."` and `'...'` quoting as `sdssplitargs` does it (what `redis-benchmark`'s
//! `PING_INLINE` and a `telnet` session send).
//!
//! Limits, checked on the declared lengths before anything is read or allocated for them:
//! an array of more than [`RESP_ARRAY_MAX`] (2^20) elements is `invalid multibulk length`
//! (Redis 7.0 itself accepts up to `INT_MAX` and grows its argument vector as they arrive;
//! 2^20 is the bound the lab's RESP command-file reader keeps, and the one older Redis kept);
//! a bulk string longer than [`RESP_BULK_MAX`] (`proto-max-bulk-len`, 512 MiB) is
//! `invalid bulk length`; a length line or an inline line longer than 64 KiB
//! (`PROTO_INLINE_MAX_SIZE`) without its end is `too big ...`. Each is a protocol error: the
//! client gets the error and is closed.
//!
//! The parser keeps its place in a multibulk that has not all arrived, so a request that
//! comes in many reads is not read again from its start each time (the connection hands the
//! same unconsumed bytes back, longer).

use fraglab_workloads::trace::{RESP_ARRAY_MAX, RESP_BULK_MAX};

/// Redis's `PROTO_INLINE_MAX_SIZE`: the longest inline request or length line.
pub const INLINE_MAX: usize = 64 * 1024;

/// What the start of the input holds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Parsed {
    /// Not a whole request yet.
    Incomplete,
    /// A request with no arguments (`*0\r\n`, `*-1\r\n`, an empty line) of this many bytes:
    /// Redis skips it without a reply.
    Empty(usize),
    /// A whole request of this many bytes; its arguments are [`Parser::args`].
    Request(usize),
    /// Broken framing: the error text (without `-ERR `).
    Error(String),
}

/// The framing state of one connection.
#[derive(Debug, Default)]
pub struct Parser {
    /// Argument ranges of the multibulk being read, in the request's bytes.
    ranges: Vec<(usize, usize)>,
    /// The arguments of an inline request (unquoted, so owned).
    inline: Vec<Vec<u8>>,
    /// Whether the last request was inline.
    is_inline: bool,
    /// Elements the multibulk being read declared (0: none being read).
    want: usize,
    /// Bytes of that multibulk read so far.
    pos: usize,
    /// The declared length of the bulk string at `pos`, once its header is read.
    bulk: Option<usize>,
}

impl Parser {
    /// Frames the request at the start of `buf`.
    pub fn parse(&mut self, buf: &[u8]) -> Parsed {
        if self.want > 0 && self.pos > buf.len() {
            // Not the bytes the last call saw: start over.
            self.reset();
        }
        if self.want == 0 {
            let Some(&first) = buf.first() else {
                return Parsed::Incomplete;
            };
            if first != b'*' {
                return self.inline(buf);
            }
            let Some(r) = memchr(b'\r', buf) else {
                return too_big(buf.len(), "too big mbulk count string");
            };
            if r + 1 >= buf.len() {
                return Parsed::Incomplete;
            }
            let n = match string2ll(&buf[1..r]) {
                Some(n) if n <= RESP_ARRAY_MAX as i64 => n,
                _ => return Parsed::Error("Protocol error: invalid multibulk length".into()),
            };
            if n <= 0 {
                return Parsed::Empty(r + 2);
            }
            self.is_inline = false;
            self.ranges.clear();
            self.want = n as usize;
            self.pos = r + 2;
            self.bulk = None;
        }
        while self.ranges.len() < self.want {
            let len = match self.bulk {
                Some(len) => len,
                None => {
                    let rest = &buf[self.pos..];
                    let Some(r) = memchr(b'\r', rest) else {
                        return too_big(rest.len(), "too big bulk count string");
                    };
                    if r + 1 >= rest.len() {
                        return Parsed::Incomplete;
                    }
                    if rest[0] != b'$' {
                        let got = rest[0];
                        self.reset();
                        let mut m = b"Protocol error: expected '$', got '".to_vec();
                        m.push(got);
                        m.push(b'\'');
                        return Parsed::Error(String::from_utf8_lossy(&m).into_owned());
                    }
                    let len = match string2ll(&rest[1..r]) {
                        Some(l) if l >= 0 && l as u64 <= RESP_BULK_MAX => l as usize,
                        _ => {
                            self.reset();
                            return Parsed::Error("Protocol error: invalid bulk length".into());
                        }
                    };
                    self.pos += r + 2;
                    self.bulk = Some(len);
                    len
                }
            };
            if buf.len() - self.pos < len + 2 {
                return Parsed::Incomplete;
            }
            self.ranges.push((self.pos, self.pos + len));
            self.pos += len + 2;
            self.bulk = None;
        }
        let end = self.pos;
        self.want = 0;
        self.pos = 0;
        Parsed::Request(end)
    }

    /// The arguments of the request [`parse`](Self::parse) just framed, `buf` being the bytes
    /// it was given.
    pub fn args<'a>(&'a self, buf: &'a [u8], out: &mut Vec<&'a [u8]>) {
        out.clear();
        if self.is_inline {
            out.extend(self.inline.iter().map(Vec::as_slice));
        } else {
            out.extend(
                self.ranges
                    .iter()
                    .map(|&(a, b)| buf.get(a..b).unwrap_or(&[])),
            );
        }
    }

    fn reset(&mut self) {
        self.want = 0;
        self.pos = 0;
        self.bulk = None;
        self.ranges.clear();
    }

    fn inline(&mut self, buf: &[u8]) -> Parsed {
        let Some(nl) = memchr(b'\n', buf) else {
            return too_big(buf.len(), "too big inline request");
        };
        let line = &buf[..nl];
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        self.is_inline = true;
        self.inline.clear();
        if !split_args(line, &mut self.inline) {
            return Parsed::Error("Protocol error: unbalanced quotes in request".into());
        }
        if self.inline.is_empty() {
            return Parsed::Empty(nl + 1);
        }
        Parsed::Request(nl + 1)
    }
}

/// More than [`INLINE_MAX`] bytes without the line's end is an error; fewer may yet end.
fn too_big(len: usize, what: &str) -> Parsed {
    if len > INLINE_MAX {
        Parsed::Error(format!("Protocol error: {what}"))
    } else {
        Parsed::Incomplete
    }
}

fn memchr(b: u8, buf: &[u8]) -> Option<usize> {
    buf.iter().position(|&c| c == b)
}

/// Redis's `string2ll`: an optional `-`, then digits with no leading zero (`0` alone is
/// fine), no sign `+`, no spaces, within `i64`.
pub fn string2ll(s: &[u8]) -> Option<i64> {
    let (neg, digits) = match s.split_first() {
        Some((b'-', rest)) => (true, rest),
        _ => (false, s),
    };
    if digits.is_empty() || digits.len() > 20 || !digits.iter().all(u8::is_ascii_digit) {
        return None;
    }
    if digits.len() > 1 && digits[0] == b'0' {
        return None;
    }
    if neg && digits == b"0" {
        return None;
    }
    let mut v: i128 = 0;
    for &d in digits {
        v = v * 10 + i128::from(d - b'0');
    }
    if neg {
        v = -v;
    }
    i64::try_from(v).ok()
}

/// `sdssplitargs`: splits an inline line into arguments. `"..."` takes `\n \r \t \b \a \\
/// \"` and `\xHH` escapes, `'...'` only `\'`; a closing quote must be followed by a space or
/// the end. Returns false for unbalanced quotes.
pub fn split_args(line: &[u8], out: &mut Vec<Vec<u8>>) -> bool {
    let mut p = 0;
    let sp = |c: u8| matches!(c, b' ' | b'\n' | b'\r' | b'\t' | 0x0b | 0x0c);
    loop {
        while p < line.len() && sp(line[p]) {
            p += 1;
        }
        if p >= line.len() {
            return true;
        }
        let mut cur = Vec::new();
        let mut inq = false;
        let mut insq = false;
        loop {
            if inq {
                let Some(&c) = line.get(p) else { return false };
                if c == b'\\'
                    && line.get(p + 1) == Some(&b'x')
                    && line.get(p + 2).is_some_and(u8::is_ascii_hexdigit)
                    && line.get(p + 3).is_some_and(u8::is_ascii_hexdigit)
                {
                    let h = |c: u8| (c as char).to_digit(16).unwrap_or(0) as u8;
                    cur.push(h(line[p + 2]) * 16 + h(line[p + 3]));
                    p += 3;
                } else if c == b'\\' && p + 1 < line.len() {
                    p += 1;
                    cur.push(match line[p] {
                        b'n' => b'\n',
                        b'r' => b'\r',
                        b't' => b'\t',
                        b'b' => 8,
                        b'a' => 7,
                        o => o,
                    });
                } else if c == b'"' {
                    if line.get(p + 1).is_some_and(|&n| !sp(n)) {
                        return false;
                    }
                    p += 1;
                    break;
                } else {
                    cur.push(c);
                }
            } else if insq {
                let Some(&c) = line.get(p) else { return false };
                if c == b'\\' && line.get(p + 1) == Some(&b'\'') {
                    p += 1;
                    cur.push(b'\'');
                } else if c == b'\'' {
                    if line.get(p + 1).is_some_and(|&n| !sp(n)) {
                        return false;
                    }
                    p += 1;
                    break;
                } else {
                    cur.push(c);
                }
            } else {
                match line.get(p) {
                    None => break,
                    Some(&c) if sp(c) => break,
                    Some(b'"') => inq = true,
                    Some(b'\'') => insq = true,
                    Some(&c) => cur.push(c),
                }
            }
            p += 1;
        }
        out.push(cur);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn all(input: &[u8]) -> Vec<Vec<Vec<u8>>> {
        let mut p = Parser::default();
        let mut at = 0;
        let mut reqs = Vec::new();
        loop {
            match p.parse(&input[at..]) {
                Parsed::Request(n) => {
                    let mut a = Vec::new();
                    p.args(&input[at..], &mut a);
                    reqs.push(a.iter().map(|s| s.to_vec()).collect());
                    at += n;
                }
                Parsed::Empty(n) => at += n,
                Parsed::Incomplete => return reqs,
                Parsed::Error(e) => panic!("{e}"),
            }
        }
    }

    #[test]
    fn frames_multibulk_and_inline() {
        let r = all(b"*2\r\n$3\r\nGET\r\n$1\r\nk\r\nPING\r\nset a \"b c\\x41\" 'd\\'e'\r\n*0\r\n");
        assert_eq!(r[0], vec![b"GET".to_vec(), b"k".to_vec()]);
        assert_eq!(r[1], vec![b"PING".to_vec()]);
        assert_eq!(
            r[2],
            vec![
                b"set".to_vec(),
                b"a".to_vec(),
                b"b cA".to_vec(),
                b"d'e".to_vec()
            ]
        );
        assert_eq!(r.len(), 3);
    }

    #[test]
    fn resumes_a_split_request() {
        let whole = b"*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$5\r\nhello\r\n";
        let mut p = Parser::default();
        for n in 0..whole.len() {
            assert_eq!(p.parse(&whole[..n]), Parsed::Incomplete, "{n}");
        }
        assert_eq!(p.parse(whole), Parsed::Request(whole.len()));
        let mut a = Vec::new();
        p.args(whole, &mut a);
        assert_eq!(a, vec![&b"SET"[..], b"k", b"hello"]);
    }

    #[test]
    fn refuses_as_redis() {
        let err = |b: &[u8]| match Parser::default().parse(b) {
            Parsed::Error(e) => e,
            o => panic!("{o:?}"),
        };
        assert_eq!(
            err(b"*1048577\r\n"),
            "Protocol error: invalid multibulk length"
        );
        assert_eq!(err(b"*x\r\n"), "Protocol error: invalid multibulk length");
        assert_eq!(
            err(b"*1\r\n$536870913\r\n"),
            "Protocol error: invalid bulk length"
        );
        assert_eq!(err(b"*1\r\n$-1\r\n"), "Protocol error: invalid bulk length");
        assert_eq!(
            err(b"*1\r\n:1\r\n"),
            "Protocol error: expected '$', got ':'"
        );
        assert_eq!(
            err(b"set \"a\r\n"),
            "Protocol error: unbalanced quotes in request"
        );
        assert_eq!(
            err(&[b'a'; INLINE_MAX + 1]),
            "Protocol error: too big inline request"
        );
        assert_eq!(
            Parser::default().parse(b"*1\r\n$536870912\r\n"),
            Parsed::Incomplete
        );
        assert_eq!(string2ll(b"-0"), None);
        assert_eq!(string2ll(b"007"), None);
        assert_eq!(string2ll(b"-9223372036854775808"), Some(i64::MIN));
    }
}
