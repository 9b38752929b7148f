//! HTTP/1.x message heads (RFC 9112): request detection, header fields,
//! body framing facts, chunk-size lines and NTLM/Negotiate authorization
//! tokens. Pure functions over a header block; the analyzer frames.

use base64::Engine;
use memchr::memmem;

/// `METHOD SP target SP HTTP/1.x` on the first line (looked at within the
/// first `MAX_LINE` bytes).
pub fn looks_like_request(b: &[u8]) -> bool {
    const MAX_LINE: usize = 2048;
    let window = &b[..b.len().min(MAX_LINE)];
    let line = match memchr::memchr(b'\n', window) {
        Some(end) => &b[..end],
        None => b,
    };
    let Some(sp) = memchr::memchr(b' ', line) else {
        return false;
    };
    let method = &line[..sp];
    !method.is_empty()
        && method.len() <= 24
        && method
            .iter()
            .all(|c| c.is_ascii_uppercase() || *c == b'_' || *c == b'-')
        && memmem::find(line, b" HTTP/1.").is_some()
}

/// `HTTP/1.x NNN` at the start of a response.
pub fn looks_like_response(b: &[u8]) -> bool {
    b.starts_with(b"HTTP/1.")
        && b.get(8) == Some(&b' ')
        && b.get(9..12)
            .is_some_and(|c| c.iter().all(u8::is_ascii_digit))
}

/// Longest first line looked at when searching for a message after a loss.
const MAX_START_LINE: usize = 2048;

/// After lost bytes: the first line that starts a request (or, for the
/// server's side, a response). A line starts after a line feed, or at the
/// first byte when `at_loss` says the bytes begin where the loss ended; an
/// unfinished line at the end is kept with the line feed before it.
pub fn resync(b: &[u8], response: bool, at_loss: bool) -> super::Resync {
    use super::Resync;
    let mut start = if at_loss { Some(0) } else { None };
    let mut at = 0;
    loop {
        if let Some(p) = start {
            let rest = &b[p..];
            let window = &rest[..rest.len().min(MAX_START_LINE)];
            match memchr::memchr(b'\n', window) {
                Some(end) => {
                    let line = &rest[..end + 1];
                    let starts = if response {
                        looks_like_response(line)
                    } else {
                        looks_like_request(line)
                    };
                    if starts {
                        return Resync::At(p);
                    }
                }
                None if rest.len() < MAX_START_LINE => {
                    // Unfinished: keep it and the line feed that began it.
                    return Resync::Keep(b.len() - p.saturating_sub(1));
                }
                None => {}
            }
        }
        match b.get(at..).and_then(|r| memchr::memchr(b'\n', r)) {
            Some(i) => {
                at += i + 1;
                start = Some(at);
            }
            None => return Resync::Keep(0),
        }
    }
}

/// The length of a header block ending with an empty line, if `b` holds
/// one. Lines may end with CRLF or, as servers accept too, a bare LF.
pub fn head_len(b: &[u8]) -> Option<usize> {
    let mut at = 0;
    while let Some(i) = memchr::memchr(b'\n', &b[at..]) {
        let next = at + i + 1;
        match b.get(next) {
            Some(b'\n') => return Some(next + 1),
            Some(b'\r') if b.get(next + 1) == Some(&b'\n') => return Some(next + 2),
            Some(_) => at = next,
            None => return None,
        }
    }
    None
}

/// A message head: its first line and its header fields, borrowed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Head<'a> {
    pub first_line: &'a [u8],
    pub headers: Vec<(&'a [u8], &'a [u8])>,
}

/// Splits a header block into its first line and `name: value` fields
/// (lines without a colon are skipped).
pub fn parse_head(block: &[u8]) -> Head<'_> {
    let mut lines = block
        .split(|&b| b == b'\n')
        .map(|l| l.strip_suffix(b"\r").unwrap_or(l));
    let first_line = lines.next().unwrap_or_default();
    let headers = lines
        .filter_map(|l| {
            let colon = memchr::memchr(b':', l)?;
            let (name, rest) = l.split_at(colon);
            Some((
                name.trim_ascii(),
                rest.get(1..).unwrap_or_default().trim_ascii(),
            ))
        })
        .collect();
    Head {
        first_line,
        headers,
    }
}

impl<'a> Head<'a> {
    /// The values of every field called `name` (case-insensitive).
    pub fn header<'s>(&'s self, name: &'s str) -> impl Iterator<Item = &'a [u8]> + 's {
        self.headers
            .iter()
            .filter(move |(n, _)| n.eq_ignore_ascii_case(name.as_bytes()))
            .map(|(_, v)| *v)
    }

    /// A request's method (the first word).
    pub fn method(&self) -> &'a [u8] {
        self.first_line
            .split(|&b| b == b' ')
            .next()
            .unwrap_or_default()
    }

    /// A response's status code (`HTTP/1.x CODE reason`), 0 when unreadable.
    pub fn status_code(&self) -> u16 {
        self.first_line
            .split(|&b| b == b' ')
            .nth(1)
            .and_then(|c| std::str::from_utf8(c).ok()?.parse().ok())
            .unwrap_or(0)
    }

    pub fn content_length(&self) -> Option<usize> {
        self.header("content-length")
            .next()
            .and_then(|v| std::str::from_utf8(v).ok()?.trim().parse().ok())
    }

    pub fn chunked(&self) -> bool {
        self.header("transfer-encoding")
            .any(|v| memmem::find(&v.to_ascii_lowercase(), b"chunked").is_some())
    }
}

/// The decoded token of an `NTLM` / `Negotiate` authorization value.
pub fn auth_token(value: &[u8]) -> Option<Vec<u8>> {
    let value = value.trim_ascii();
    let sp = memchr::memchr(b' ', value)?;
    let (scheme, token) = value.split_at(sp);
    let token = token.trim_ascii();
    if !(scheme.eq_ignore_ascii_case(b"NTLM") || scheme.eq_ignore_ascii_case(b"Negotiate"))
        || token.is_empty()
    {
        return None;
    }
    // Padding is optional in practice (and some clients leave it out).
    const LENIENT: base64::engine::GeneralPurpose = base64::engine::GeneralPurpose::new(
        &base64::alphabet::STANDARD,
        base64::engine::GeneralPurposeConfig::new()
            .with_decode_padding_mode(base64::engine::DecodePaddingMode::Indifferent),
    );
    LENIENT.decode(token).ok()
}

/// A chunk-size line (`size [; ext] CRLF`) at the start of `b`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ChunkLine {
    /// The line is not complete yet.
    Incomplete,
    /// Not a chunk-size line (or longer than any real one).
    Invalid,
    /// The chunk's size and the length of its line (with the line end).
    Size { size: usize, line_len: usize },
}

/// Longest chunk-size line accepted.
pub const MAX_CHUNK_LINE: usize = 1024;

pub fn chunk_line(b: &[u8]) -> ChunkLine {
    let Some(eol) = memchr::memchr(b'\n', &b[..b.len().min(MAX_CHUNK_LINE)]) else {
        return if b.len() >= MAX_CHUNK_LINE {
            ChunkLine::Invalid
        } else {
            ChunkLine::Incomplete
        };
    };
    let size_text = b[..eol]
        .split(|&c| c == b';')
        .next()
        .unwrap_or_default()
        .trim_ascii();
    match std::str::from_utf8(size_text)
        .ok()
        .and_then(|s| usize::from_str_radix(s, 16).ok())
    {
        Some(size) => ChunkLine::Size {
            size,
            line_len: eol + 1,
        },
        None => ChunkLine::Invalid,
    }
}

/// The end of a chunked body's trailer section (after the last chunk's
/// line): the length up to and with the empty line, if `b` holds it.
pub fn trailer_len(b: &[u8]) -> Option<usize> {
    let end = memmem::find(b, b"\r\n\r\n").or_else(|| memmem::find(b, b"\n\n"))?;
    Some(end + if b.get(end) == Some(&b'\r') { 4 } else { 2 })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn resync_finds_a_request_or_response_at_a_line_start() {
        use crate::parsers::Resync;
        let b = b"ab\r\nxyz / HTTP/1.1\r\nGET /x HTTP/1.1\r\nHost: a\r\n\r\n";
        let at = b.len() - b"GET /x HTTP/1.1\r\nHost: a\r\n\r\n".len();
        assert_eq!(resync(b, false, false), Resync::At(at));
        // The first byte is a line start only right after the loss.
        let get = b"GET / HTTP/1.1\r\n";
        assert_eq!(resync(get, false, true), Resync::At(0));
        assert_eq!(resync(get, false, false), Resync::Keep(1));
        // An unfinished line is kept with the line feed before it, and
        // found once the rest comes.
        let cut = b"body\r\nGET /x HT";
        assert_eq!(resync(cut, false, false), Resync::Keep(10));
        assert_eq!(
            resync(b"\nGET /x HTTP/1.1\r\n", false, false),
            Resync::At(1)
        );
        let resp = b"0123\nHTTP/1.1 401 Unauthorized\r\n";
        assert_eq!(resync(resp, true, false), Resync::At(5));
        // Not a request: only the last line feed may begin one.
        assert_eq!(resync(resp, false, false), Resync::Keep(1));
    }

    #[test]
    fn request_lines() {
        assert!(looks_like_request(b"PROPFIND /dav HTTP/1.1\r\n"));
        assert!(looks_like_request(
            b"RDG_OUT_DATA /remoteDesktopGateway/ HTTP/1.1\r\n"
        ));
        assert!(!looks_like_request(b"get / HTTP/1.1\r\n"));
        assert!(!looks_like_request(b"SSH-2.0-OpenSSH_9.2p1\r\n"));
        assert!(!looks_like_request(b" / HTTP/1.1\r\n"));
    }

    #[test]
    fn head_fields_and_framing() {
        let block = b"HTTP/1.1 401 Unauthorized\r\nWWW-Authenticate: NTLM TlRMTVNTUAACAAAA\r\nContent-Length: 12\r\nTransfer-Encoding: Chunked\r\nbroken line\r\n\r\n";
        assert_eq!(head_len(block), Some(block.len()));
        assert_eq!(head_len(b"GET / HTTP/1.1\r\n"), None);
        let h = parse_head(block);
        assert_eq!(h.status_code(), 401);
        assert_eq!(h.content_length(), Some(12));
        assert!(h.chunked());
        assert_eq!(h.headers.len(), 3);
        let v: Vec<&[u8]> = h.header("www-authenticate").collect();
        assert_eq!(v, [&b"NTLM TlRMTVNTUAACAAAA"[..]]);
        assert_eq!(
            auth_token(v[0]).as_deref(),
            Some(&b"NTLMSSP\0\x02\0\0\0"[..])
        );
        assert_eq!(auth_token(b"Basic dXNlcjpwYXNz"), None);
        assert_eq!(auth_token(b"NTLM "), None);
        assert_eq!(parse_head(b"POST /x HTTP/1.1\r\n\r\n").method(), b"POST");
    }

    #[test]
    fn bare_lf_heads_unpadded_tokens_and_responses() {
        assert_eq!(head_len(b"GET / HTTP/1.1\nHost: a\n\nbody"), Some(24));
        assert_eq!(head_len(b"GET / HTTP/1.1\r\nHost: a\n\r\nbody"), Some(26));
        assert_eq!(head_len(b"GET / HTTP/1.1\r\nHost: a\r\n"), None);
        assert_eq!(head_len(b"\n"), None);
        let h = parse_head(b"GET / HTTP/1.1\nAuthorization: NTLM TlRMTVNTUAABAAAAB4IIog\n\n");
        let v: Vec<&[u8]> = h.header("authorization").collect();
        assert_eq!(
            auth_token(v[0]).as_deref(),
            Some(&b"NTLMSSP\0\x01\0\0\0\x07\x82\x08\xa2"[..])
        );
        assert_eq!(
            auth_token(b"NTLM TlRMTVNTUAABAAAAB4IIog=="),
            auth_token(v[0])
        );
        assert!(looks_like_response(b"HTTP/1.1 401 Unauthorized\r\n"));
        assert!(!looks_like_response(b"HTTP/1.1 4xx\r\n"));
        assert!(!looks_like_response(b"GET / HTTP/1.1\r\n"));
    }

    #[test]
    fn chunk_lines() {
        assert_eq!(
            chunk_line(b"1a;ext=1\r\nabc"),
            ChunkLine::Size {
                size: 26,
                line_len: 10
            }
        );
        assert_eq!(chunk_line(b"1a"), ChunkLine::Incomplete);
        assert_eq!(chunk_line(b"zz\r\n"), ChunkLine::Invalid);
        assert_eq!(chunk_line(&[b'1'; MAX_CHUNK_LINE]), ChunkLine::Invalid);
        assert_eq!(trailer_len(b"\r\n\r\nGET"), Some(4));
        assert_eq!(trailer_len(b"X: y\n\nGET"), Some(6));
        assert_eq!(trailer_len(b"X: y\r\n"), None);
    }
}
