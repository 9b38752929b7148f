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
//! `smtp` event per session, written when a HELO/EHLO is accepted.
//!
//! What the client's SMTP lines are depends on the server's replies, which
//! pair with the commands in order (RFC 5321 4.1, pipelining RFC 2920): a
//! HELO/EHLO names the client once accepted (a refused one is a claim
//! only, kept until one is accepted); after DATA the client's lines are
//! mail only once the server said 354; the n bytes after BDAT are a chunk
//! only if the server knew the command (a 500/502 server reads them as
//! commands). Until DATA or BDAT is answered, the client's lines wait
//! (bounded like any line).

use base64::Engine;
use serde::Serialize;

use super::framing::{self, Frame, Framed, Framer};
use super::ntlm::{Status, Tracker};
use super::protocol::{Carrier, EventRecord, Fallback, Name, Protocol, Role};
use super::{Ctx, Dir};

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
    smtp_written: bool,
    /// SMTP: the client's commands awaiting their replies, in order.
    awaiting: std::collections::VecDeque<Command>,
    /// SMTP: a DATA or BDAT awaits its reply; the client's lines wait.
    hold_client: bool,
    /// SMTP: the first word of the reply being read (a reply's first line
    /// names the server).
    reply_first: Option<String>,
    /// SMTP: the latest HELO/EHLO the server refused (or never answered):
    /// the client's claim, written at the end if none is accepted.
    helo_claim: Option<(String, &'static str)>,
    /// SMTP: the server's EHLO reply announced CHUNKING (RFC 3030).
    chunking: bool,
}

/// An SMTP command whose reply decides something.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Command {
    Helo(Option<String>, &'static str),
    Data,
    /// BDAT of n bytes to a server that did not announce CHUNKING (or
    /// whose EHLO reply was not seen): whether they are a chunk waits for
    /// the reply.
    Bdat(usize),
    /// Any other command (BDAT to a server whose CHUNKING is known), the
    /// end of a message, an AUTH exchange.
    Other,
}

/// Commands awaiting replies, at most (a pipelining client sends a few;
/// past this, the oldest are taken as answered).
const MAX_AWAITING: usize = 64;

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
            smtp_written: false,
            awaiting: std::collections::VecDeque::new(),
            hold_client: false,
            reply_first: None,
            helo_claim: None,
            chunking: false,
        }
    }

    /// A client command that the server will answer.
    fn expect_reply(&mut self, c: Command) {
        if self.awaiting.len() >= MAX_AWAITING {
            self.awaiting.pop_front();
        }
        if matches!(c, Command::Data | Command::Bdat(_)) {
            self.hold_client = true;
        }
        self.awaiting.push_back(c);
    }

    /// Writes the session's names once, if it is SMTP.
    fn write_smtp(&mut self, cx: &mut Ctx<'_>) {
        if self.proto != LineProtocol::Smtp || self.smtp_written {
            return;
        }
        if self.smtp.helo_command.is_none() {
            // No HELO/EHLO accepted (refused, or its reply never seen):
            // the client's latest claim.
            let unanswered = self.awaiting.iter().rev().find_map(|c| match c {
                Command::Helo(Some(n), verb) => Some((n.clone(), *verb)),
                _ => None,
            });
            if let Some((name, verb)) = unanswered.or(self.helo_claim.take()) {
                self.smtp.helo = Some(name);
                self.smtp.helo_command = Some(verb);
            }
        }
        // Only a session the client opened with HELO/EHLO is SMTP: FTP and
        // others greet with 220 too.
        if self.smtp.helo_command.is_some() {
            self.smtp_written = true;
            cx.emit(std::mem::take(&mut self.smtp));
        }
    }

    /// An SMTP command line (outside mail and AUTH exchanges): its reply
    /// is awaited, to decide what it says.
    fn smtp_command(&mut self, command: &[u8], argument: Option<&[u8]>) {
        let helo = command.eq_ignore_ascii_case(b"HELO");
        let c = if helo || command.eq_ignore_ascii_case(b"EHLO") {
            Command::Helo(argument.map(name_word), if helo { "HELO" } else { "EHLO" })
        } else if command.eq_ignore_ascii_case(b"DATA") {
            Command::Data
        } else {
            Command::Other
        };
        self.expect_reply(c);
    }

    /// An SMTP server line: the greeting names the server; a reply's last
    /// line settles the oldest command awaiting one.
    fn smtp_reply(&mut self, text: &[u8], cx: &mut Ctx<'_>) {
        let (code, rest) = (text.get(..3), text.get(4..).unwrap_or_default());
        let first_word = rest.split(|&c| c == b' ').find(|w| !w.is_empty());
        // `250-` continues a reply; `250 ` (or a bare code) ends it.
        let last = text.get(3) != Some(&b'-');
        if code == Some(b"220") && self.smtp.greeting_seen.is_none() && self.awaiting.is_empty() {
            if self.smtp.server_name.is_none() {
                self.smtp.server_name = first_word.map(name_word);
            }
            if last {
                self.smtp.greeting_seen = Some(());
            }
            return;
        }
        if self.reply_first.is_none() {
            self.reply_first = Some(first_word.map(name_word).unwrap_or_default());
        } else if matches!(self.awaiting.front(), Some(Command::Helo(_, "EHLO")))
            && code == Some(b"250")
            && first_word.is_some_and(|w| w.eq_ignore_ascii_case(b"CHUNKING"))
        {
            self.chunking = true;
        }
        if !last {
            return;
        }
        let first = self.reply_first.take().filter(|w| !w.is_empty());
        let Some(command) = self.awaiting.pop_front() else {
            return;
        };
        let code = code.unwrap_or_default();
        match command {
            Command::Helo(name, verb) => {
                if code.starts_with(b"2") && !self.smtp_written {
                    self.smtp.helo = name;
                    self.smtp.helo_command = Some(verb);
                    self.helo_claim = None;
                    if code == b"250" && self.smtp.server_name.is_none() {
                        self.smtp.server_name = first;
                    }
                    self.write_smtp(cx);
                } else if !self.smtp_written {
                    if let Some(n) = name {
                        self.helo_claim = Some((n, verb));
                    }
                }
            }
            Command::Data => {
                // RFC 5321 4.1.1.4: the body follows a 354 only.
                self.in_data = code == b"354";
                self.release_client(cx);
            }
            Command::Bdat(n) => {
                // A server that knew BDAT took its n bytes as the chunk,
                // whatever it answered (RFC 3030 2); one that did not
                // (500, 502) read them as commands.
                if !matches!(code, b"500" | b"502") {
                    self.framers[Dir::ToServer.index()].discard(n);
                }
                self.release_client(cx);
            }
            Command::Other => {}
        }
    }

    /// The reply the client's lines waited for came: they are read now.
    fn release_client(&mut self, cx: &mut Ctx<'_>) {
        if self.hold_client
            && !self
                .awaiting
                .iter()
                .any(|c| matches!(c, Command::Data | Command::Bdat(_)))
        {
            self.hold_client = false;
            framing::resume(self, Dir::ToServer, cx);
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
        match dir {
            Dir::ToServer => self.client_line(line, cx),
            Dir::ToClient => self.server_line(line.trim_ascii(), cx),
        }
    }

    /// A client line: mail, an authentication token, or a command.
    fn client_line(&mut self, line: &[u8], cx: &mut Ctx<'_>) -> usize {
        let dir = Dir::ToServer;
        let text = line.trim_ascii();
        let mut words = text.split(|&c| c == b' ').filter(|w| !w.is_empty());
        if self.in_data {
            // Only a line of a lone dot ends the body (RFC 5321
            // 4.1.1.4): " ." and ". " are mail, whatever follows them.
            self.in_data = line.strip_suffix(b"\r").unwrap_or(line) != b".";
            if !self.in_data {
                // The server answers the message.
                self.expect_reply(Command::Other);
            }
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
        if self.proto == LineProtocol::Smtp && command.eq_ignore_ascii_case(b"BDAT") {
            // The chunk follows at once (RFC 3030 2): a server that
            // announced CHUNKING takes it as data; otherwise its reply
            // tells (500/502: it read the bytes as commands).
            let n = rest
                .next()
                .and_then(|n| std::str::from_utf8(n).ok()?.parse().ok())
                .unwrap_or(0);
            if self.chunking {
                return n;
            }
            // Held until the reply says (see `smtp_reply`).
            if let Some(last) = self.awaiting.back_mut() {
                *last = Command::Bdat(n);
            }
            self.hold_client = true;
        }
        literal_len(self.proto, text)
    }

    /// A server line: a reply, or within an authentication exchange a
    /// challenge or its verdict.
    fn server_line(&mut self, text: &[u8], cx: &mut Ctx<'_>) -> usize {
        let dir = Dir::ToClient;
        let mut words = text.split(|&c| c == b' ').filter(|w| !w.is_empty());
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
        if self.proto == LineProtocol::Smtp {
            // The AUTH command's reply.
            self.awaiting.pop_front();
        }
        let status = Status::Text(String::from_utf8_lossy(status).into_owned());
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
#[serde_with::skip_serializing_none]
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct SmtpRecord {
    /// The client's argument to HELO/EHLO: its own name, or an address
    /// literal.
    pub helo: Option<String>,
    pub helo_command: Option<&'static str>,
    /// The server's name from its 220 greeting, else from its EHLO reply.
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
    fn framers(&self) -> &[Framer; 2] {
        &self.framers
    }

    fn framers_mut(&mut self) -> &mut [Framer; 2] {
        &mut self.framers
    }

    fn step(&mut self, dir: Dir, b: &[u8], cx: &mut Ctx<'_>) -> Frame {
        if dir == Dir::ToServer && self.hold_client {
            if b.len() < MAX_LINE {
                // What these lines are depends on the reply to DATA.
                return Frame::Need(b.len() + 1);
            }
            // More than a line before the reply: a BDAT's bytes are taken
            // as its chunk, as the server that knows BDAT takes them; a
            // client that sends this much before the reply to its DATA is
            // no mail client (the body waits for 354): its lines are read
            // as commands. The reply changes nothing then.
            self.hold_client = false;
            let mut chunk = None;
            for c in self.awaiting.iter_mut() {
                match c {
                    Command::Bdat(n) => {
                        chunk.get_or_insert(*n);
                        *c = Command::Other;
                    }
                    Command::Data => *c = Command::Other,
                    _ => {}
                }
            }
            if let Some(n) = chunk.filter(|n| *n > 0) {
                return Frame::Skip(n);
            }
        }
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::analyzers::{Analyzer, Record};

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
            (Dir::ToClient, "354 go ahead\r\n"),
            (Dir::ToServer, "HELO FORGED-IN-BODY\r\n.\r\n"),
            (Dir::ToClient, "250 queued\r\n"),
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
            (Dir::ToClient, "354 go ahead\r\n"),
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
            (Dir::ToClient, "354 go ahead\r\n"),
            (Dir::ToServer, "body\r\n.\r\nHELO WS01\r\n"),
            (Dir::ToClient, "250 queued\r\n250 ok\r\n"),
        ]);
        let helos: Vec<Option<String>> = smtp(&got).into_iter().map(|r| r.helo).collect();
        assert_eq!(helos, [Some("WS01".to_string())]);
    }

    fn helos(steps: &[(Dir, &str)]) -> Vec<Option<String>> {
        smtp(&session(steps)).into_iter().map(|r| r.helo).collect()
    }

    /// DATA refused (503: no MAIL FROM) leaves the client in command mode,
    /// as the server is: the EHLO it pipelined after is read and, once
    /// accepted, names it. Before the reply, its lines wait (#24.5).
    #[test]
    fn a_refused_data_starts_no_body() {
        let steps = [
            (Dir::ToClient, "220 mx.corp.example ESMTP\r\n"),
            (Dir::ToServer, "DATA\r\nEHLO WIN-J9D866ESIJ2\r\n"),
            (Dir::ToClient, "503 5.5.1 Error: need MAIL command\r\n"),
            (Dir::ToClient, "250-mx.corp.example\r\n250 8BITMIME\r\n"),
        ];
        assert_eq!(helos(&steps), [Some("WIN-J9D866ESIJ2".to_string())]);
        // Accepted (354): the same line is mail.
        let mut accepted = steps;
        accepted[2] = (Dir::ToClient, "354 End data with <CR><LF>.<CR><LF>\r\n");
        assert_eq!(helos(&accepted), Vec::<Option<String>>::new());
    }

    /// The name that counts is the one the server accepted: a first EHLO
    /// refused (501), a second accepted (#24.6). Refused alone, the claim
    /// is still written at the end.
    #[test]
    fn the_accepted_helo_is_the_one_written() {
        let got = helos(&[
            (Dir::ToClient, "220 mx.corp.example ESMTP\r\n"),
            (Dir::ToServer, "EHLO bad_name!\r\n"),
            (Dir::ToClient, "501 5.5.2 Syntax error\r\n"),
            (Dir::ToServer, "EHLO WIN-J9D866ESIJ2\r\n"),
            (Dir::ToClient, "250-mx.corp.example\r\n250 OK\r\n"),
        ]);
        assert_eq!(got, [Some("WIN-J9D866ESIJ2".to_string())]);
        // Pipelined: both sent before either reply; replies pair in order.
        let got = helos(&[
            (Dir::ToServer, "EHLO FIRST\r\nEHLO WIN-LIVFRVQFMKO\r\n"),
            (Dir::ToClient, "501 no\r\n250 mx.corp.example\r\n"),
        ]);
        assert_eq!(got, [Some("WIN-LIVFRVQFMKO".to_string())]);
    }

    /// BDAT to a server that did not announce CHUNKING is refused (502)
    /// and its "chunk" read as commands: an EHLO there counts (#24.7); a
    /// server that answers otherwise took the chunk, as one that announced
    /// CHUNKING does at once: mail.
    #[test]
    fn a_bdat_chunk_is_mail_only_where_the_server_takes_chunks() {
        let body = "EHLO WIN-J9D866ESIJ2\r\n";
        let bdat = format!("BDAT {}\r\n{body}", body.len());
        // The EHLO reply was not seen (picked up after it): the chunk
        // waits for the BDAT's reply.
        let got = helos(&[
            (Dir::ToServer, bdat.as_str()),
            (Dir::ToClient, "502 5.5.1 command not implemented\r\n"),
            (Dir::ToClient, "250 mx.corp.example\r\n"),
        ]);
        assert_eq!(got, [Some("WIN-J9D866ESIJ2".to_string())]);
        let got = helos(&[
            (Dir::ToServer, bdat.as_str()),
            (Dir::ToClient, "250 2.0.0 message accepted\r\n"),
        ]);
        assert_eq!(got, Vec::<Option<String>>::new());
        // After an EHLO reply: announced CHUNKING takes the chunk as mail
        // at once; without it the chunk is commands: an AUTH NTLM there is
        // an exchange.
        let auth = "AUTH NTLM TlRMTVNTUAABAAAABoIIAAAAAAAAAAAAAAAAAAAAAAA=\r\n";
        let bdat = format!("BDAT {}\r\n{auth}", auth.len());
        for (ext, exchanges) in [("CHUNKING", 0), ("PIPELINING", 1)] {
            let reply = format!("250-mx.corp.example\r\n250 {ext}\r\n");
            let refusal = if exchanges == 0 {
                "250 2.0.0 chunk taken\r\n"
            } else {
                "502 5.5.1 no\r\n535 5.7.8 failed\r\n"
            };
            let got = session(&[
                (Dir::ToServer, "EHLO WS01\r\n"),
                (Dir::ToClient, reply.as_str()),
                (Dir::ToServer, bdat.as_str()),
                (Dir::ToClient, refusal),
            ]);
            let ntlm = got.iter().filter(|r| matches!(r, Record::Ntlm(_))).count();
            assert_eq!(ntlm, exchanges, "{ext}");
            assert_eq!(smtp(&got)[0].helo.as_deref(), Some("WS01"));
        }
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
