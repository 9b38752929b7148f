//! NTLM in line-oriented mail protocols: SMTP `AUTH NTLM` (RFC 4954), IMAP
//! `AUTHENTICATE NTLM` (RFC 3501) and POP3 `AUTH NTLM` (RFC 5034). The
//! NTLMSSP messages travel as base64: the client's on their own lines (or
//! after the command), the server's after `334 ` or `+ `; the first other
//! server line ends the exchange and is its verdict. Tokens are read only
//! inside an exchange the client's command opened: mail (SMTP DATA and
//! BDAT bodies, IMAP literals, POP3 RETR answers) is never taken for one,
//! so that mailing someone a token cannot get them flagged.

use base64::Engine;

use super::framing::{self, Frame, Framed, Framer};
use super::ntlm::Tracker;
use super::protocol::{Carrier, Fallback, Protocol};
use super::{Analyzer, Ctx, Dir, Status};

/// Longest line read; a longer one is skipped.
const MAX_LINE: usize = 16 << 10;
/// base64 of `NTLMSSP\0` starts with this.
const B64_SIGNATURE: &[u8] = b"TlRMTVNTUA";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LineProtocol {
    Smtp,
    Imap,
    Pop3,
}

/// SMTP: the client's HELO/EHLO, or the server's 220 greeting.
pub const SMTP: Protocol = Protocol {
    name: "smtp",
    carrier: Carrier::Stream {
        client: Some(|c| {
            c.get(..5).is_some_and(|w| {
                w.eq_ignore_ascii_case(b"EHLO ") || w.eq_ignore_ascii_case(b"HELO ")
            })
        }),
        server: Some(|s| s.starts_with(b"220 ") || s.starts_with(b"220-")),
        fallback: Fallback::No,
        new: |_| Box::new(LineAnalyzer::new(LineProtocol::Smtp)),
    },
};

/// IMAP, from the server's greeting.
pub const IMAP: Protocol = Protocol {
    name: "imap",
    carrier: Carrier::Stream {
        client: None,
        server: Some(|s| s.starts_with(b"* OK") || s.starts_with(b"* PREAUTH")),
        fallback: Fallback::No,
        new: |_| Box::new(LineAnalyzer::new(LineProtocol::Imap)),
    },
};

/// POP3, from the server's greeting.
pub const POP3: Protocol = Protocol {
    name: "pop3",
    carrier: Carrier::Stream {
        client: None,
        server: Some(|s| s.starts_with(b"+OK")),
        fallback: Fallback::No,
        new: |_| Box::new(LineAnalyzer::new(LineProtocol::Pop3)),
    },
};

#[derive(Debug)]
pub struct LineAnalyzer {
    proto: LineProtocol,
    framers: [Framer; 2],
    tracker: Tracker,
    /// Inside an `AUTH NTLM` exchange the client started: the only place
    /// where tokens are read.
    auth: bool,
    /// The client is sending a message body (after SMTP `DATA`, until the
    /// line with a single dot): its lines are mail, not commands.
    in_data: bool,
}

impl LineAnalyzer {
    pub fn new(proto: LineProtocol) -> Self {
        let carrier = match proto {
            LineProtocol::Smtp => "smtp",
            LineProtocol::Imap => "imap",
            LineProtocol::Pop3 => "pop3",
        };
        LineAnalyzer {
            proto,
            framers: [Framer::new(MAX_LINE), Framer::new(MAX_LINE)],
            tracker: Tracker::new(carrier, true),
            auth: false,
            in_data: false,
        }
    }

    /// Hands a base64 word to the tracker when it decodes to an NTLMSSP
    /// message.
    fn token(&mut self, dir: Dir, word: &[u8], cx: &mut Ctx<'_>) {
        if !word.starts_with(B64_SIGNATURE) {
            return;
        }
        if let Ok(msg) = BASE64.decode(word) {
            self.tracker.message(dir, &msg, cx);
        }
    }

    /// One line; returns how many bytes after it are not lines (an SMTP
    /// BDAT chunk, an IMAP literal) and must be skipped.
    fn line(&mut self, dir: Dir, line: &[u8], cx: &mut Ctx<'_>) -> usize {
        let text = line.trim_ascii();
        let mut words = text.split(|&c| c == b' ').filter(|w| !w.is_empty());
        if dir == Dir::ToServer {
            if self.in_data {
                self.in_data = text != b".";
                return 0;
            }
            if self.auth {
                // A client line inside the exchange is a token, or `*` to cancel.
                if text == b"*" {
                    self.auth = false;
                } else {
                    self.token(dir, text, cx);
                }
                return 0;
            }
            let first = words.next().unwrap_or_default();
            let (command, rest) = match self.proto {
                // IMAP commands follow a tag.
                LineProtocol::Imap => (words.next().unwrap_or_default(), words),
                _ => (first, words),
            };
            let mut rest = rest;
            let auth_command = match self.proto {
                LineProtocol::Imap => b"AUTHENTICATE".as_slice(),
                _ => b"AUTH".as_slice(),
            };
            if command.eq_ignore_ascii_case(auth_command) {
                if rest.next().is_some_and(|m| m.eq_ignore_ascii_case(b"NTLM")) {
                    self.auth = true;
                    // An initial response on the command line (RFC 4954 4, RFC 4959).
                    if let Some(initial) = rest.next() {
                        self.token(dir, initial, cx);
                    }
                }
                return 0;
            }
            if self.proto == LineProtocol::Smtp {
                if command.eq_ignore_ascii_case(b"DATA") {
                    self.in_data = true;
                } else if command.eq_ignore_ascii_case(b"BDAT") {
                    return rest
                        .next()
                        .and_then(|n| std::str::from_utf8(n).ok()?.parse().ok())
                        .unwrap_or(0);
                }
            }
            return literal_len(self.proto, text);
        }
        // The server.
        if !self.auth {
            return literal_len(self.proto, text);
        }
        let first = words.next().unwrap_or_default();
        let continuation = match self.proto {
            LineProtocol::Smtp => first == b"334",
            LineProtocol::Imap | LineProtocol::Pop3 => first == b"+",
        };
        if continuation {
            if let Some(tok) = words.next() {
                self.token(dir, tok, cx);
            }
            return 0;
        }
        // Anything else ends the exchange: its verdict.
        let (success, status) = match self.proto {
            LineProtocol::Smtp => (first.starts_with(b"2"), first),
            LineProtocol::Pop3 => (first == b"+OK", first),
            // `TAG OK ...`; untagged `*` lines are not the answer.
            LineProtocol::Imap => {
                if first == b"*" {
                    return 0;
                }
                let word = words.next().unwrap_or_default();
                (word.eq_ignore_ascii_case(b"OK"), word)
            }
        };
        self.auth = false;
        let status = String::from_utf8_lossy(status).into_owned();
        if self.tracker.awaiting_verdict() {
            self.tracker.verdict(success, status, cx);
        } else {
            self.tracker.abort(status, cx);
        }
        0
    }
}

/// The bytes of an IMAP literal announced at the end of a line (`{n}` or
/// `{n+}`), which are data, not lines.
fn literal_len(proto: LineProtocol, text: &[u8]) -> usize {
    if proto != LineProtocol::Imap {
        return 0;
    }
    let Some(body) = text.strip_suffix(b"}") else {
        return 0;
    };
    let Some(open) = memchr::memrchr(b'{', body) else {
        return 0;
    };
    let digits = body[open + 1..]
        .strip_suffix(b"+")
        .unwrap_or(&body[open + 1..]);
    std::str::from_utf8(digits)
        .ok()
        .and_then(|d| d.parse().ok())
        .unwrap_or(0)
}

/// Base64 as mail clients send it (padding optional).
const BASE64: base64::engine::GeneralPurpose = base64::engine::GeneralPurpose::new(
    &base64::alphabet::STANDARD,
    base64::engine::GeneralPurposeConfig::new()
        .with_decode_padding_mode(base64::engine::DecodePaddingMode::Indifferent),
);

impl Framed for LineAnalyzer {
    fn framers(&mut self) -> &mut [Framer; 2] {
        &mut self.framers
    }

    fn step(&mut self, dir: Dir, b: &[u8], cx: &mut Ctx<'_>) -> Frame {
        match memchr::memchr(b'\n', b) {
            Some(eol) => match self.line(dir, &b[..eol], cx) {
                0 => Frame::Consumed(eol + 1),
                skip => Frame::Skip(eol + 1 + skip),
            },
            None if b.len() >= MAX_LINE => Frame::Stop,
            None => Frame::Need(b.len() + 1),
        }
    }

    fn stopped(&mut self, cx: &mut Ctx<'_>) {
        self.tracker.flush(cx);
    }
}

impl Analyzer for LineAnalyzer {
    fn buffered(&self) -> usize {
        self.framers.iter().map(Framer::buffered).sum()
    }

    fn data(&mut self, dir: Dir, data: &[u8], cx: &mut Ctx<'_>) -> Status {
        framing::data(self, dir, data, cx)
    }

    fn gap(&mut self, dir: Dir, _len: u32, cx: &mut Ctx<'_>) -> Status {
        framing::gap(self, dir, cx)
    }

    fn end(&mut self, cx: &mut Ctx<'_>) {
        self.tracker.flush(cx);
    }
}
