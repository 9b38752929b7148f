//! NTLM in line-oriented mail protocols: SMTP `AUTH NTLM` (RFC 4954), IMAP
//! `AUTHENTICATE NTLM` (RFC 3501) and POP3 `AUTH NTLM` (RFC 5034). The
//! NTLMSSP messages travel as base64 words on their own lines or after the
//! command; the first server line after the AUTHENTICATE that carries no
//! token is the verdict.

use base64::Engine;
use memchr::memmem;

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
        }
    }

    fn line(&mut self, dir: Dir, line: &[u8], cx: &mut Ctx<'_>) {
        if let Some(at) = memmem::find(line, B64_SIGNATURE) {
            let end = line[at..]
                .iter()
                .position(|c| !(c.is_ascii_alphanumeric() || matches!(c, b'+' | b'/' | b'=')))
                .map_or(line.len(), |p| at + p);
            if let Ok(msg) = base64::engine::general_purpose::STANDARD.decode(&line[at..end]) {
                self.tracker.message(dir, &msg, cx);
            }
            return;
        }
        if dir != Dir::ToClient || !self.tracker.awaiting_verdict() {
            return;
        }
        let text = line.trim_ascii();
        let success = match self.proto {
            LineProtocol::Smtp => text.starts_with(b"235"),
            LineProtocol::Pop3 => text.starts_with(b"+OK"),
            // `TAG OK ...`; untagged `*` lines are not the answer.
            LineProtocol::Imap => {
                if text.starts_with(b"*") || text.starts_with(b"+") {
                    return;
                }
                text.split(|&c| c == b' ')
                    .nth(1)
                    .is_some_and(|w| w.eq_ignore_ascii_case(b"OK"))
            }
        };
        let status = String::from_utf8_lossy(text.split(|&c| c == b' ').next().unwrap_or_default())
            .into_owned();
        let status = if self.proto == LineProtocol::Imap {
            String::from_utf8_lossy(text.split(|&c| c == b' ').nth(1).unwrap_or_default())
                .into_owned()
        } else {
            status
        };
        self.tracker.verdict(success, status, cx);
    }
}

impl Framed for LineAnalyzer {
    fn framers(&mut self) -> &mut [Framer; 2] {
        &mut self.framers
    }

    fn step(&mut self, dir: Dir, b: &[u8], cx: &mut Ctx<'_>) -> Frame {
        match memchr::memchr(b'\n', b) {
            Some(eol) => {
                self.line(dir, &b[..eol], cx);
                Frame::Consumed(eol + 1)
            }
            None if b.len() >= MAX_LINE => Frame::Stop,
            None => Frame::Need(b.len() + 1),
        }
    }

    fn stopped(&mut self, cx: &mut Ctx<'_>) {
        self.tracker.flush(cx);
    }
}

impl Analyzer for LineAnalyzer {
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
