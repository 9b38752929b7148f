//! RESP2, the Redis wire protocol: commands out, replies in.
//!
//! Replies come from a server across the network, so they get the same
//! treatment as packets: a pure parser over `&[u8]` that returns borrowed
//! values, never trusts a length, caps what a length may make it allocate,
//! and says `Incomplete` rather than guessing when bytes are missing.

use nom::bytes::streaming::{tag, take, take_until};
use nom::number::streaming::be_u8;
use nom::sequence::terminated;
use nom::{IResult, Parser};

/// One reply value, borrowing from the receive buffer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reply<'a> {
    /// `+OK`
    Status(&'a [u8]),
    /// `-ERR message`
    Error(&'a [u8]),
    /// `:42`
    Integer(i64),
    /// `$3 abc`, or the null bulk string `$-1`.
    Bulk(Option<&'a [u8]>),
    /// `*2 ...`, or the null array `*-1`.
    Array(Option<Vec<Reply<'a>>>),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RespError {
    /// More bytes are needed.
    Incomplete,
    /// The bytes are not a RESP2 reply (or exceed a limit).
    Invalid,
}

impl std::fmt::Display for RespError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            RespError::Incomplete => "incomplete reply",
            RespError::Invalid => "malformed reply",
        })
    }
}

/// The largest bulk string accepted (Redis' own `proto-max-bulk-len`).
pub const MAX_BULK: i64 = 512 << 20;
/// The longest status, error or length line.
const MAX_LINE: usize = 64 << 10;
/// Arrays nest at most this deep.
const MAX_DEPTH: usize = 8;
/// Elements of one array.
const MAX_ELEMENTS: i64 = 1 << 24;
/// Elements reserved up front, whatever the header claims.
const RESERVE: usize = 64;

/// Parses the reply at the start of `input`; returns it with the number of
/// bytes it took.
pub fn reply(input: &[u8]) -> Result<(Reply<'_>, usize), RespError> {
    match value(input, 0) {
        Ok((rest, r)) => Ok((r, input.len() - rest.len())),
        Err(nom::Err::Incomplete(_)) => {
            // A line that never ends is not a reply in the making.
            let line_end = memchr::memmem::find(input, b"\r\n");
            if line_end.is_none() && input.len() > MAX_LINE {
                Err(RespError::Invalid)
            } else {
                Err(RespError::Incomplete)
            }
        }
        Err(_) => Err(RespError::Invalid),
    }
}

fn line(i: &[u8]) -> IResult<&[u8], &[u8]> {
    let (rest, l) = terminated(take_until(&b"\r\n"[..]), tag(&b"\r\n"[..])).parse(i)?;
    if l.len() > MAX_LINE {
        return Err(fail(i));
    }
    Ok((rest, l))
}

fn fail(i: &[u8]) -> nom::Err<nom::error::Error<&[u8]>> {
    nom::Err::Failure(nom::error::Error::new(i, nom::error::ErrorKind::Verify))
}

/// A signed decimal line, as `:`, `$` and `*` carry.
fn integer(i: &[u8]) -> IResult<&[u8], i64> {
    let (rest, l) = line(i)?;
    let n = std::str::from_utf8(l)
        .ok()
        .and_then(|s| s.parse::<i64>().ok())
        .ok_or_else(|| fail(i))?;
    Ok((rest, n))
}

fn value(i: &[u8], depth: usize) -> IResult<&[u8], Reply<'_>> {
    let (i, kind) = be_u8(i)?;
    match kind {
        b'+' => line(i).map(|(r, l)| (r, Reply::Status(l))),
        b'-' => line(i).map(|(r, l)| (r, Reply::Error(l))),
        b':' => integer(i).map(|(r, n)| (r, Reply::Integer(n))),
        b'$' => {
            let (i, n) = integer(i)?;
            match n {
                -1 => Ok((i, Reply::Bulk(None))),
                0..=MAX_BULK => {
                    let len = usize::try_from(n).map_err(|_| fail(i))?;
                    let (i, data) = terminated(take(len), tag(&b"\r\n"[..])).parse(i)?;
                    Ok((i, Reply::Bulk(Some(data))))
                }
                _ => Err(fail(i)),
            }
        }
        b'*' => {
            let (mut i, n) = integer(i)?;
            if n == -1 {
                return Ok((i, Reply::Array(None)));
            }
            if !(0..=MAX_ELEMENTS).contains(&n) || depth >= MAX_DEPTH {
                return Err(fail(i));
            }
            let count = usize::try_from(n).map_err(|_| fail(i))?;
            let mut items = Vec::with_capacity(count.min(RESERVE));
            for _ in 0..count {
                let (rest, v) = value(i, depth + 1)?;
                items.push(v);
                i = rest;
            }
            Ok((i, Reply::Array(Some(items))))
        }
        _ => Err(fail(i)),
    }
}

/// Appends one command (an array of bulk strings) to `out`.
pub fn command(out: &mut Vec<u8>, args: &[&[u8]]) {
    push_header(out, b'*', args.len());
    for a in args {
        push_header(out, b'$', a.len());
        out.extend_from_slice(a);
        out.extend_from_slice(b"\r\n");
    }
}

fn push_header(out: &mut Vec<u8>, kind: u8, n: usize) {
    use std::io::Write;
    // Writing into a Vec cannot fail.
    let _ = write!(out, "{}{n}\r\n", kind as char);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn simple_values() {
        assert_eq!(reply(b"+OK\r\n"), Ok((Reply::Status(b"OK"), 5)));
        assert_eq!(
            reply(b"-WRONGTYPE Operation against a key\r\n+OK\r\n"),
            Ok((Reply::Error(b"WRONGTYPE Operation against a key"), 36))
        );
        assert_eq!(reply(b":1000\r\n"), Ok((Reply::Integer(1000), 7)));
        assert_eq!(reply(b":-3\r\n"), Ok((Reply::Integer(-3), 5)));
        assert_eq!(
            reply(b"$15\r\n1764205560000-0\r\n"),
            Ok((Reply::Bulk(Some(b"1764205560000-0")), 22))
        );
        assert_eq!(reply(b"$-1\r\n"), Ok((Reply::Bulk(None), 5)));
        assert_eq!(reply(b"$0\r\n\r\n"), Ok((Reply::Bulk(Some(b"")), 6)));
        assert_eq!(reply(b"*-1\r\n"), Ok((Reply::Array(None), 5)));
    }

    #[test]
    fn nested_array_as_xrange_returns_it() {
        let r = b"*1\r\n*2\r\n$3\r\n1-0\r\n*2\r\n$3\r\neve\r\n$2\r\n{}\r\n";
        assert_eq!(
            reply(r),
            Ok((
                Reply::Array(Some(vec![Reply::Array(Some(vec![
                    Reply::Bulk(Some(b"1-0")),
                    Reply::Array(Some(vec![
                        Reply::Bulk(Some(b"eve")),
                        Reply::Bulk(Some(b"{}"))
                    ])),
                ]))])),
                r.len()
            ))
        );
    }

    #[test]
    fn every_proper_prefix_is_incomplete() {
        let r = b"*2\r\n$3\r\nabc\r\n:7\r\n";
        for cut in 0..r.len() {
            assert_eq!(reply(&r[..cut]), Err(RespError::Incomplete), "cut {cut}");
        }
        assert_eq!(reply(r).map(|(_, n)| n), Ok(r.len()));
    }

    #[test]
    fn lying_lengths_and_garbage_are_rejected() {
        assert_eq!(reply(b"$-2\r\n"), Err(RespError::Invalid));
        assert_eq!(reply(b"$536870913\r\n"), Err(RespError::Invalid));
        assert_eq!(reply(b"*99999999999\r\n"), Err(RespError::Invalid));
        assert_eq!(reply(b"$3\r\nabcd\r\n"), Err(RespError::Invalid));
        assert_eq!(reply(b":12a\r\n"), Err(RespError::Invalid));
        assert_eq!(reply(b"!3\r\n"), Err(RespError::Invalid));
        // A huge claimed bulk is only incomplete, and reserves nothing.
        assert_eq!(reply(b"$536870912\r\nab"), Err(RespError::Incomplete));
        // A claimed million elements reserve RESERVE, and wait for bytes.
        assert_eq!(reply(b"*1000000\r\n:1\r\n"), Err(RespError::Incomplete));
        // Nesting is bounded.
        let deep = b"*1\r\n".repeat(MAX_DEPTH + 1);
        assert_eq!(reply(&deep), Err(RespError::Invalid));
        // A line without an end, beyond the line limit.
        let long = [b'+'; MAX_LINE + 2];
        assert_eq!(reply(&long), Err(RespError::Invalid));
    }

    #[test]
    fn commands_are_arrays_of_bulk_strings() {
        let mut out = Vec::new();
        command(&mut out, &[b"LPUSH", b"hostwatch", b"{\"a\":1}"]);
        assert_eq!(
            out,
            b"*3\r\n$5\r\nLPUSH\r\n$9\r\nhostwatch\r\n$7\r\n{\"a\":1}\r\n".to_vec()
        );
        let mut out = Vec::new();
        command(&mut out, &[b"PING", b""]);
        assert_eq!(out, b"*2\r\n$4\r\nPING\r\n$0\r\n\r\n".to_vec());
    }
}
