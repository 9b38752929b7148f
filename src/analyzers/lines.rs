//! NTLM in line-oriented mail protocols: SMTP `AUTH NTLM` (RFC 4954), IMAP
//! `AUTHENTICATE NTLM` (RFC 3501) and POP3 `AUTH NTLM` (RFC 5034). The
//! NTLMSSP messages travel as base64: the client's on their own lines (or
//! after the command), the server's after `334 ` or `+ `; the first other
//! server line ends the exchange and is its verdict. Tokens are read only
//! inside an exchange the client's command opened: mail (SMTP DATA and
//! BDAT bodies, IMAP literals, POP3 RETR answers) is never taken for one,
//! so that mailing someone a token cannot get them flagged.
//!
//! SMTP also names both ends: the client its own host in HELO/EHLO, the
//! server itself in its 220 greeting and its EHLO reply. They make one
//! `smtp` event per session, written when the HELO/EHLO is answered.

use base64::Engine;
use serde::Serialize;

use super::framing::{self, Frame, Framed, Framer};
use super::ntlm::Tracker;
use super::protocol::{Carrier, EventRecord, Fallback, Name, Protocol, Role};
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
    /// SMTP: the names the session showed, until written.
    smtp: SmtpRecord,
    /// SMTP: a HELO/EHLO awaits its reply; the record was written.
    helo_pending: bool,
    smtp_written: bool,
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
            smtp: SmtpRecord::default(),
            helo_pending: false,
            smtp_written: false,
        }
    }

    /// Writes the session's names once, if it is SMTP.
    fn write_smtp(&mut self, cx: &mut Ctx<'_>) {
        if self.proto != LineProtocol::Smtp || self.smtp_written {
            return;
        }
        // Only a session the client opened with HELO/EHLO is SMTP: FTP and
        // others greet with 220 too.
        if self.smtp.helo_command.is_some() {
            self.smtp_written = true;
            cx.emit(std::mem::take(&mut self.smtp));
        }
    }

    /// SMTP names in a command line (outside mail and AUTH exchanges).
    fn smtp_command(&mut self, command: &[u8], argument: Option<&[u8]>) {
        let helo = command.eq_ignore_ascii_case(b"HELO");
        if (helo || command.eq_ignore_ascii_case(b"EHLO")) && self.smtp.helo.is_none() {
            self.smtp.helo = argument.map(name_word);
            self.smtp.helo_command = Some(if helo { "HELO" } else { "EHLO" });
            self.helo_pending = true;
        }
    }

    /// SMTP names in a server line: the greeting's, and the HELO/EHLO
    /// reply's first line (its verdict too: the record is written then).
    fn smtp_reply(&mut self, text: &[u8], cx: &mut Ctx<'_>) {
        let (code, rest) = (text.get(..3), text.get(4..).unwrap_or_default());
        let first_word = rest.split(|&c| c == b' ').find(|w| !w.is_empty());
        match code {
            Some(b"220") if self.smtp.greeting_seen.is_none() => {
                self.smtp.greeting_seen = Some(());
                self.smtp.server_name = first_word.map(name_word);
            }
            Some(c) if self.helo_pending => {
                self.helo_pending = false;
                if c == b"250" && self.smtp.server_name.is_none() {
                    self.smtp.server_name = first_word.map(name_word);
                }
                self.write_smtp(cx);
            }
            _ => {}
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
                // Only a line of a lone dot ends the body (RFC 5321
                // 4.1.1.4): " ." and ". " are mail, whatever follows them.
                self.in_data = line.strip_suffix(b"\r").unwrap_or(line) != b".";
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
            if self.proto == LineProtocol::Smtp {
                self.smtp_command(command, rest.clone().next());
            }
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
            if self.proto == LineProtocol::Smtp {
                self.smtp_reply(text, cx);
            }
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

/// A name word from a mail line, as text, at most 255 characters.
fn name_word(w: &[u8]) -> String {
    String::from_utf8_lossy(w.get(..255).unwrap_or(w)).into_owned()
}

// ---- The event ----

/// The names an SMTP session showed (Suricata's `smtp.helo`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct SmtpRecord {
    /// The client's argument to HELO/EHLO: its own name, or an address
    /// literal.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub helo: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub helo_command: Option<&'static str>,
    /// The server's name from its 220 greeting, else from its EHLO reply.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub server_name: Option<String>,
    #[serde(skip)]
    greeting_seen: Option<()>,
}

/// Whether a HELO argument or greeting word is an address, not a name
/// (`[192.0.2.1]`, `[IPv6:...]`, a bare address).
fn is_address(w: &str) -> bool {
    w.starts_with('[') || w.parse::<std::net::IpAddr>().is_ok()
}

impl EventRecord for SmtpRecord {
    const EVENT_TYPE: &'static str = "smtp";

    fn names<'a>(&'a self, v: &mut Vec<Name<'a>>) {
        // Each side says its own name: nobody else's can be pinned on it.
        for (path, role, value) in [
            ("smtp.helo", Role::Client, &self.helo),
            ("smtp.server_name", Role::Server, &self.server_name),
        ] {
            if let Some(n) = value.as_deref().filter(|n| !is_address(n)) {
                v.push(Name::of(path, role, n, true));
            }
        }
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
        self.write_smtp(cx);
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
        self.write_smtp(cx);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::analyzers::Record;

    fn session(steps: &[(Dir, &str)]) -> Vec<Record> {
        let mut a = LineAnalyzer::new(LineProtocol::Smtp);
        let mut out = Vec::new();
        let mut cx = Ctx::new(0, false, &mut out);
        for (dir, text) in steps {
            a.data(*dir, text.as_bytes(), &mut cx);
        }
        a.end(&mut cx);
        out
    }

    fn smtp(r: &[Record]) -> Vec<SmtpRecord> {
        r.iter()
            .filter_map(|r| match r {
                Record::Smtp(s) => Some(s.as_ref().clone()),
                _ => None,
            })
            .collect()
    }

    fn rec(helo: Option<&str>, cmd: Option<&'static str>, server: Option<&str>) -> SmtpRecord {
        SmtpRecord {
            helo: helo.map(str::to_owned),
            helo_command: cmd,
            server_name: server.map(str::to_owned),
            greeting_seen: None,
        }
    }

    /// A multi-line greeting (`220-`), then EHLO: written at the reply, once
    /// (the HELO inside the mail body is mail, a second EHLO is ignored).
    #[test]
    fn greeting_and_ehlo_make_one_record() {
        let got = session(&[
            (
                Dir::ToClient,
                "220-mx.corp.example ESMTP\r\n220 welcome\r\n",
            ),
            (Dir::ToServer, "EHLO WIN-J9D866ESIJ2\r\n"),
            (
                Dir::ToClient,
                "250-mx.corp.example Hello\r\n250 SIZE 1000\r\n",
            ),
            (Dir::ToServer, "DATA\r\n"),
            (Dir::ToServer, "HELO FORGED-IN-BODY\r\n.\r\n"),
            (Dir::ToServer, "EHLO AGAIN\r\n"),
            (Dir::ToClient, "250 again\r\n"),
        ]);
        let mut r = smtp(&got);
        for x in &mut r {
            x.greeting_seen = None;
        }
        assert_eq!(
            r,
            [rec(
                Some("WIN-J9D866ESIJ2"),
                Some("EHLO"),
                Some("mx.corp.example")
            )]
        );
    }

    /// A body line " ." is mail, not the end of DATA: a HELO after it,
    /// still in the body, names nobody (#24.8).
    #[test]
    fn only_a_lone_dot_ends_the_body() {
        let got = session(&[
            (Dir::ToClient, "220 mx.corp.example ESMTP\r\n"),
            (Dir::ToServer, "DATA\r\n"),
            (
                Dir::ToServer,
                "Subject: x\r\n .\r\n. \r\nHELO FORGED-IN-BODY\r\n",
            ),
            (Dir::ToClient, "250 queued\r\n"),
        ]);
        let helos: Vec<Option<String>> = smtp(&got).into_iter().map(|r| r.helo).collect();
        assert!(helos.iter().all(Option::is_none), "{helos:?}");
        // The lone dot ends it: the next HELO is a command.
        let got = session(&[
            (Dir::ToServer, "DATA\r\n"),
            (Dir::ToServer, "body\r\n.\r\nHELO WS01\r\n"),
            (Dir::ToClient, "250 ok\r\n"),
        ]);
        let helos: Vec<Option<String>> = smtp(&got).into_iter().map(|r| r.helo).collect();
        assert_eq!(helos, [Some("WS01".to_string())]);
    }

    /// Picked up after the greeting: the EHLO reply names the server; a
    /// refused HELO still writes the client's name; an address literal
    /// names nobody; a 220 greeting without HELO/EHLO (FTP) is no SMTP.
    #[test]
    fn without_greeting_and_refused() {
        let got = session(&[
            (Dir::ToServer, "EHLO [10.0.0.5]\r\n"),
            (Dir::ToClient, "250-WIN-LIVFRVQFMKO greets\r\n250 OK\r\n"),
        ]);
        let r = smtp(&got);
        assert_eq!(r.len(), 1);
        assert_eq!(r[0].server_name.as_deref(), Some("WIN-LIVFRVQFMKO"));
        let names: Vec<(&str, &str)> = got
            .iter()
            .flat_map(|r| r.names())
            .map(|n| (n.path, n.value))
            .collect();
        assert_eq!(names, [("smtp.server_name", "WIN-LIVFRVQFMKO")]);
        let refused = session(&[
            (Dir::ToClient, "220 [192.0.2.1] ready\r\n"),
            (Dir::ToServer, "HELO PC-7\r\n"),
            (Dir::ToClient, "550 go away\r\n"),
        ]);
        let r = smtp(&refused);
        assert_eq!(r.len(), 1);
        assert_eq!(
            (r[0].helo.as_deref(), r[0].server_name.as_deref()),
            (Some("PC-7"), Some("[192.0.2.1]"))
        );
        let names: Vec<&str> = refused
            .iter()
            .flat_map(|r| r.names())
            .map(|n| n.path)
            .collect();
        assert_eq!(names, ["smtp.helo"]);
        let ftp = session(&[
            (Dir::ToClient, "220 Welcome to Example FTP Server\r\n"),
            (Dir::ToServer, "USER ftpuser\r\n"),
            (Dir::ToClient, "331 Password required\r\n"),
        ]);
        assert!(smtp(&ftp).is_empty());
    }
}
