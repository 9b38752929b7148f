//! NTLM exchange correlation, shared by every carrier: NEGOTIATE, then
//! CHALLENGE, then AUTHENTICATE, then the carrier's verdict make one
//! `ntlm` record. A message that cannot belong to the exchange under way
//! (a second NEGOTIATE, a CHALLENGE after the AUTHENTICATE) closes it and
//! starts the next, so several exchanges on one connection are several
//! records; an unfinished exchange is emitted when the flow ends.

use serde::Serialize;

use super::protocol::Facts;
use super::{Ctx, Dir, EventRecord, Name, Role};
use crate::parsers::ntlm::{self, av, Flags, Message, Version};
use crate::render;

/// Keeps a value only when the traffic carried a non-empty one.
fn non_empty(s: String) -> Option<String> {
    (!s.is_empty()).then_some(s)
}

fn name(bytes: Option<&[u8]>, unicode: bool) -> Option<String> {
    bytes
        .map(|b| ntlm::decode_name(b, unicode))
        .and_then(non_empty)
}

/// FILETIME (100 ns since 1601) to microseconds since the Unix epoch.
fn filetime(v: &[u8]) -> Option<i64> {
    let b: [u8; 8] = v.try_into().ok()?;
    let ft = u64::from_le_bytes(b);
    Some((ft / 10) as i64 - 11_644_473_600_000_000)
}

// A record keeps flags, versions, times and the challenge as numbers; their text
// is written only into the event, on the output thread (the worker is the
// busier stage), and without a `String` in between.

fn flag_names<S: serde::Serializer>(flags: &Flags, s: S) -> Result<S::Ok, S::Error> {
    flags.with_names(|names| s.serialize_str(names))
}

fn version_text<S: serde::Serializer>(v: &Option<Version>, s: S) -> Result<S::Ok, S::Error> {
    match v {
        Some(v) => v.with_text(|text| s.serialize_str(text)),
        None => s.serialize_none(),
    }
}

fn build_text<S: serde::Serializer>(v: &Option<Version>, s: S) -> Result<S::Ok, S::Error> {
    match v {
        Some(v) => v.with_build_text(|text| s.serialize_str(text)),
        None => s.serialize_none(),
    }
}

fn rfc3339<S: serde::Serializer>(us: &Option<i64>, s: S) -> Result<S::Ok, S::Error> {
    match us {
        Some(us) => render::Stamp::rfc3339(*us).serialize(s),
        None => s.serialize_none(),
    }
}

fn challenge_hex<S: serde::Serializer>(c: &Option<[u8; 8]>, s: S) -> Result<S::Ok, S::Error> {
    match c {
        Some(c) => {
            let mut hex = [0u8; 16];
            render::hex_into(c, &mut hex);
            s.serialize_str(std::str::from_utf8(&hex).unwrap_or_default())
        }
        None => s.serialize_none(),
    }
}

/// Which message an exchange has seen last.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Stage {
    Empty,
    Negotiate,
    Challenge,
    Authenticate,
}

/// The kind of message handed to [`Tracker::message`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Negotiate,
    Challenge,
    Authenticate,
}

/// One connection's NTLM exchanges on one carrier.
#[derive(Debug)]
pub struct Tracker {
    carrier: &'static str,
    /// Whether the carrier shows a verdict after AUTHENTICATE; when not, the
    /// record is emitted at the AUTHENTICATE.
    has_verdict: bool,
    stage: Stage,
    rec: NtlmRecord,
    challenge_unicode: bool,
    /// The direction the NTLM client sends in, once known.
    client_sends: Option<Dir>,
    /// The last exchange emitted with an AUTHENTICATE, for a carrier that
    /// logs the logon in its own event too ([`Tracker::take_logon`]).
    logon: Option<Logon>,
}

/// What an exchange's AUTHENTICATE said, as EVE's `smb.ntlmssp` has it,
/// with the exchange's outcome.
#[serde_with::skip_serializing_none]
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Logon {
    pub domain: Option<String>,
    pub user: Option<String>,
    pub host: Option<String>,
    /// Written `10.0 build 14393 rev 15`.
    #[serde(serialize_with = "build_text")]
    pub version: Option<Version>,
    #[serde(skip)]
    pub result: &'static str,
    #[serde(skip)]
    pub session_id: Option<u64>,
}

impl Tracker {
    pub fn new(carrier: &'static str, has_verdict: bool) -> Self {
        Tracker {
            carrier,
            has_verdict,
            stage: Stage::Empty,
            rec: NtlmRecord {
                carrier,
                result: "unknown",
                ..NtlmRecord::default()
            },
            challenge_unicode: true,
            client_sends: None,
            logon: None,
        }
    }

    /// The logon of the last exchange emitted with an AUTHENTICATE, once.
    pub fn take_logon(&mut self) -> Option<Logon> {
        self.logon.take()
    }

    pub fn carrier(&self) -> &'static str {
        self.carrier
    }

    /// Whether an AUTHENTICATE is waiting for its verdict.
    pub fn awaiting_verdict(&self) -> bool {
        self.stage == Stage::Authenticate
    }

    pub fn in_progress(&self) -> bool {
        self.stage != Stage::Empty
    }

    /// Parses and records one NTLMSSP message seen in direction `dir`.
    /// Returns its kind, or `None` when it is not a valid message or was
    /// sent by the wrong side.
    ///
    /// The client sends NEGOTIATE and AUTHENTICATE, the server CHALLENGE.
    /// Which side is the client is settled once per connection: the SYN's
    /// sender when the handshake was seen; on a connection picked up
    /// midstream, by the first message (its sender, or a CHALLENGE's
    /// receiver). A message from the other side is ignored, so that a
    /// server cannot pin a name on its client by sending an AUTHENTICATE.
    pub fn message(&mut self, dir: Dir, msg: &[u8], cx: &mut Ctx<'_>) -> Option<Kind> {
        let Ok(parsed) = ntlm::parse(msg) else {
            cx.parse_error("ntlm");
            return None;
        };
        let kind = match parsed {
            Message::Negotiate(_) => Kind::Negotiate,
            Message::Challenge(_) => Kind::Challenge,
            Message::Authenticate(_) => Kind::Authenticate,
        };
        let client_sends = if kind == Kind::Challenge {
            dir.other()
        } else {
            dir
        };
        let settled = *self.client_sends.get_or_insert(if cx.midstream {
            client_sends
        } else {
            Dir::ToServer
        });
        if settled != client_sends {
            return None;
        }
        if client_sends == Dir::ToClient {
            // Midstream: the side taken for the client is the server.
            cx.roles_reversed = true;
        }
        let stage = match kind {
            Kind::Negotiate => Stage::Negotiate,
            Kind::Challenge => Stage::Challenge,
            Kind::Authenticate => Stage::Authenticate,
        };
        if stage <= self.stage && self.stage != Stage::Empty {
            self.flush(cx);
        }
        self.stage = stage;
        match parsed {
            Message::Negotiate(n) => {
                self.rec.negotiate = Some(NtlmNegotiate {
                    workstation: name(n.workstation, false),
                    domain: name(n.domain, false),
                    version: n.version,
                    flags: n.flags,
                });
            }
            Message::Challenge(c) => {
                self.challenge_unicode = c.flags.has(Flags::UNICODE) || !c.flags.has(Flags::OEM);
                self.rec.server = Some(server_of(&c, self.challenge_unicode));
            }
            Message::Authenticate(a) => {
                // Without flags, the encoding the CHALLENGE chose.
                let unicode = if a.flags.0 == 0 {
                    self.challenge_unicode
                } else {
                    a.flags.has(Flags::UNICODE)
                };
                self.rec.client = Some(client_of(&a, unicode));
                if !self.has_verdict {
                    self.flush(cx);
                }
            }
        }
        Some(kind)
    }

    /// Notes the carrier's session id (SMB).
    pub fn session_id(&mut self, id: u64) {
        if id != 0 && self.stage != Stage::Empty {
            self.rec.session_id = Some(id);
        }
    }

    /// The carrier's verdict on the exchange under way. Ignored until an
    /// AUTHENTICATE was seen.
    pub fn verdict(&mut self, success: bool, status: Status, cx: &mut Ctx<'_>) {
        if self.stage != Stage::Authenticate {
            return;
        }
        self.rec.result = if success { "success" } else { "failure" };
        self.rec.status = Some(status);
        self.flush(cx);
    }

    /// A failure before the AUTHENTICATE (e.g. the server refused the
    /// NEGOTIATE) also ends the exchange.
    pub fn abort(&mut self, status: Status, cx: &mut Ctx<'_>) {
        if self.stage == Stage::Empty || self.stage == Stage::Authenticate {
            return;
        }
        self.rec.result = "failure";
        self.rec.status = Some(status);
        self.flush(cx);
    }

    /// Emits whatever the exchange under way has seen.
    pub fn flush(&mut self, cx: &mut Ctx<'_>) {
        if self.stage == Stage::Empty {
            return;
        }
        let rec = std::mem::replace(
            &mut self.rec,
            NtlmRecord {
                carrier: self.carrier,
                result: "unknown",
                ..NtlmRecord::default()
            },
        );
        self.stage = Stage::Empty;
        if let Some(c) = &rec.client {
            self.logon = Some(Logon {
                domain: c.domain.clone(),
                user: c.user.clone(),
                host: c.workstation.clone(),
                version: c.version,
                result: rec.result,
                session_id: rec.session_id,
            });
        }
        cx.emit(rec);
    }
}

// ---- The event ----

#[serde_with::skip_serializing_none]
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct NtlmRecord {
    pub carrier: &'static str,
    pub negotiate: Option<NtlmNegotiate>,
    pub server: Option<NtlmServer>,
    pub client: Option<NtlmClient>,
    pub result: &'static str,
    /// SMB session id, for carriers that have one.
    pub session_id: Option<u64>,
    /// The carrier's status that gave the verdict (e.g. NTSTATUS, HTTP code).
    pub status: Option<Status>,
}

/// A carrier's status, as the carrier writes it; kept as a number where it
/// is one and written as text (always a JSON string) by the output thread.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Status {
    /// An NTSTATUS or RPC status: `0x` and eight hex digits.
    Hex(u32),
    /// An HTTP or LDAP result code, in decimal.
    Code(u64),
    /// A named outcome (`bind_nak`).
    Named(&'static str),
    /// A reply's own word (SMTP, IMAP, POP3), as the peer sent it.
    Text(String),
}

impl Serialize for Status {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self {
            Status::Hex(v) => {
                let text = render::hex32_text(*v);
                s.serialize_str(std::str::from_utf8(&text).unwrap_or_default())
            }
            Status::Code(v) => s.serialize_str(itoa::Buffer::new().format(*v)),
            Status::Named(t) => s.serialize_str(t),
            Status::Text(t) => s.serialize_str(t),
        }
    }
}

#[serde_with::skip_serializing_none]
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct NtlmNegotiate {
    pub workstation: Option<String>,
    pub domain: Option<String>,
    #[serde(serialize_with = "version_text")]
    pub version: Option<Version>,
    #[serde(serialize_with = "flag_names")]
    pub flags: Flags,
}

#[serde_with::skip_serializing_none]
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct NtlmServer {
    pub target_name: Option<String>,
    pub nb_computer_name: Option<String>,
    pub nb_domain_name: Option<String>,
    pub dns_computer_name: Option<String>,
    pub dns_domain_name: Option<String>,
    pub dns_tree_name: Option<String>,
    pub target_spn: Option<String>,
    /// Microseconds since the Unix epoch, written in RFC 3339.
    #[serde(serialize_with = "rfc3339")]
    pub timestamp: Option<i64>,
    #[serde(serialize_with = "version_text")]
    pub version: Option<Version>,
    /// The server challenge, written in hex.
    #[serde(serialize_with = "challenge_hex")]
    pub challenge: Option<[u8; 8]>,
    #[serde(serialize_with = "flag_names")]
    pub flags: Flags,
}

#[serde_with::skip_serializing_none]
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct NtlmClient {
    pub workstation: Option<String>,
    pub user: Option<String>,
    pub domain: Option<String>,
    #[serde(serialize_with = "version_text")]
    pub version: Option<Version>,
    pub response: &'static str,
    pub target_spn: Option<String>,
    /// Server names the client echoed back in its NTLMv2 blob.
    pub echoed_nb_computer_name: Option<String>,
    pub echoed_dns_computer_name: Option<String>,
    pub mic: bool,
    #[serde(serialize_with = "flag_names")]
    pub flags: Flags,
}

impl EventRecord for NtlmRecord {
    const EVENT_TYPE: &'static str = "ntlm";

    /// The carrier's application protocol, by EVE's names; none for NTLM
    /// found by its signature alone.
    fn app_proto(&self) -> Option<&'static str> {
        match self.carrier {
            "smb1" | "smb2" => Some("smb"),
            "http" | "rdp_gateway" => Some("http"),
            "raw" => None,
            other => Some(other),
        }
    }

    fn facts(&self, name: &Name<'_>) -> Facts {
        // The VERSION of the side whose name it is; the verdict is the
        // exchange's.
        let version = match name.role {
            Role::Server => self.server.as_ref().and_then(|s| s.version),
            _ => self
                .client
                .as_ref()
                .and_then(|c| c.version)
                .or(self.negotiate.as_ref().and_then(|n| n.version)),
        };
        Facts {
            build: version.map(|v| u32::from(v.build)),
            outcome: match self.result {
                "success" => Some(true),
                "failure" => Some(false),
                _ => None,
            },
            ..Facts::default()
        }
    }

    fn names<'a>(&'a self, v: &mut Vec<Name<'a>>) {
        if let Some(c) = &self.client {
            let ws = c.workstation.as_ref();
            Name::push(v, "ntlm.client.workstation", Role::Client, ws, true);
        }
        if let Some(ng) = &self.negotiate {
            let ws = ng.workstation.as_ref();
            Name::push(v, "ntlm.negotiate.workstation", Role::Client, ws, true);
        }
        if let Some(s) = &self.server {
            let path = "ntlm.server.nb_computer_name";
            Name::push(v, path, Role::Server, s.nb_computer_name.as_ref(), true);
            let path = "ntlm.server.dns_computer_name";
            Name::push(v, path, Role::Server, s.dns_computer_name.as_ref(), true);
            let path = "ntlm.server.target_name";
            Name::push(v, path, Role::Server, s.target_name.as_ref(), false);
        }
    }
}

/// What a CHALLENGE says of its server.
fn server_of(c: &ntlm::Challenge<'_>, unicode: bool) -> NtlmServer {
    let mut s = NtlmServer {
        target_name: name(c.target_name, unicode),
        version: c.version,
        challenge: Some(c.server_challenge),
        flags: c.flags,
        ..NtlmServer::default()
    };
    for (id, v) in ntlm::av_pairs(c.target_info.unwrap_or_default()) {
        let text = || non_empty(ntlm::decode_name(v, true));
        match id {
            av::NB_COMPUTER_NAME => s.nb_computer_name = text(),
            av::NB_DOMAIN_NAME => s.nb_domain_name = text(),
            av::DNS_COMPUTER_NAME => s.dns_computer_name = text(),
            av::DNS_DOMAIN_NAME => s.dns_domain_name = text(),
            av::DNS_TREE_NAME => s.dns_tree_name = text(),
            av::TARGET_NAME => s.target_spn = text(),
            av::TIMESTAMP => s.timestamp = filetime(v),
            _ => {}
        }
    }
    s
}

/// What an AUTHENTICATE says of its client, and the server names its
/// NTLMv2 response echoes.
fn client_of(a: &ntlm::Authenticate<'_>, unicode: bool) -> NtlmClient {
    let mut c = NtlmClient {
        workstation: name(a.workstation, unicode),
        user: name(a.user, unicode),
        domain: name(a.domain, unicode),
        version: a.version,
        response: ntlm::response_kind(a),
        mic: a.mic.is_some(),
        flags: a.flags,
        ..NtlmClient::default()
    };
    if let Some(pairs) = a.nt_response.and_then(ntlm::ntlmv2_av_pairs) {
        for (id, v) in ntlm::av_pairs(pairs) {
            let text = || non_empty(ntlm::decode_name(v, true));
            match id {
                av::TARGET_NAME => c.target_spn = text(),
                av::NB_COMPUTER_NAME => c.echoed_nb_computer_name = text(),
                av::DNS_COMPUTER_NAME => c.echoed_dns_computer_name = text(),
                _ => {}
            }
        }
    }
    c
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::analyzers::Record;

    const NEG: &[u8] = b"NTLMSSP\0\x01\0\0\0\x07\x82\x08\xa2";
    const CHAL: &[u8] = b"NTLMSSP\0\x02\0\0\0\0\0\0\0\x30\0\0\0\x05\x82\x8a\xa2\x01\x02\x03\x04\x05\x06\x07\x08\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0";

    fn auth() -> Vec<u8> {
        let ws: Vec<u8> = "WIN-LIVFRVQFMKO"
            .encode_utf16()
            .flat_map(u16::to_le_bytes)
            .collect();
        let mut m = b"NTLMSSP\0\x03\0\0\0".to_vec();
        for (len, off) in [
            (0u16, 0u32),
            (0, 0),
            (0, 0),
            (0, 0),
            (ws.len() as u16, 64),
            (0, 0),
        ] {
            m.extend_from_slice(&len.to_le_bytes());
            m.extend_from_slice(&len.to_le_bytes());
            m.extend_from_slice(&off.to_le_bytes());
        }
        m.extend_from_slice(&0x0000_0001u32.to_le_bytes());
        m.extend(ws);
        m
    }

    #[test]
    fn one_exchange_with_verdict() {
        let mut out = Vec::new();
        let mut cx = Ctx::new(0, false, &mut out);
        let mut t = Tracker::new("smb2", true);
        assert_eq!(
            t.message(Dir::ToServer, NEG, &mut cx),
            Some(Kind::Negotiate)
        );
        assert_eq!(
            t.message(Dir::ToClient, CHAL, &mut cx),
            Some(Kind::Challenge)
        );
        assert_eq!(
            t.message(Dir::ToServer, &auth(), &mut cx),
            Some(Kind::Authenticate)
        );
        assert!(t.awaiting_verdict());
        t.verdict(true, Status::Hex(0), &mut cx);
        assert!(!cx.roles_reversed);
        let _ = cx;
        assert_eq!(out.len(), 1);
        let Record::Ntlm(r) = &out[0] else {
            panic!("not ntlm")
        };
        assert_eq!(r.result, "success");
        assert_eq!(
            r.client.as_ref().and_then(|c| c.workstation.clone()),
            Some("WIN-LIVFRVQFMKO".into())
        );
        assert_eq!(
            r.server.as_ref().and_then(|s| s.challenge),
            Some([1, 2, 3, 4, 5, 6, 7, 8])
        );
        // Kept as bytes, written in hex.
        let written = serde_json::to_value(r.server.as_ref()).unwrap_or_default();
        assert_eq!(written["challenge"], "0102030405060708");
        assert_eq!(r.client.as_ref().map(|c| c.response), Some("anonymous"));
    }

    /// Times and logon versions are kept as numbers and written as text.
    #[test]
    fn times_and_logon_versions_are_written_as_text() {
        // 2026-02-09T20:09:30.494976Z and 7 × 100 ns, as a FILETIME.
        let us = filetime(&134_151_413_704_949_767_u64.to_le_bytes());
        assert_eq!(us, Some(1_770_667_770_494_976));
        let server = NtlmServer {
            timestamp: us,
            ..NtlmServer::default()
        };
        let written = serde_json::to_value(&server).unwrap_or_default();
        assert_eq!(written["timestamp"], "2026-02-09T20:09:30.494976Z");
        assert_eq!(filetime(&[0; 7]), None);
        // The largest FILETIME is past year 9999: clamped, never a panic.
        let last = NtlmServer {
            timestamp: filetime(&[0xff; 8]),
            ..NtlmServer::default()
        };
        let written = serde_json::to_value(&last).unwrap_or_default();
        assert_eq!(written["timestamp"], "9999-12-31T23:59:59.999999Z");
        for (v, text) in [
            ((10, 0, 19041, 15), "10.0 build 19041 rev 15"),
            ((0, 0, 0, 0), "0.0 build 0 rev 0"),
            ((255, 255, 65535, 255), "255.255 build 65535 rev 255"),
        ] {
            let logon = Logon {
                version: Some(Version {
                    major: v.0,
                    minor: v.1,
                    build: v.2,
                    revision: v.3,
                }),
                ..Logon::default()
            };
            let written = serde_json::to_value(&logon).unwrap_or_default();
            assert_eq!(written["version"], text);
        }
    }

    #[test]
    fn new_negotiate_closes_the_previous_exchange_and_reversed_roles_are_noticed() {
        let mut out = Vec::new();
        let mut cx = Ctx::new(0, true, &mut out);
        let mut t = Tracker::new("raw", false);
        t.message(Dir::ToClient, NEG, &mut cx);
        assert!(cx.roles_reversed);
        t.message(Dir::ToClient, NEG, &mut cx);
        t.message(Dir::ToClient, &auth(), &mut cx);
        t.flush(&mut cx);
        let _ = cx;
        assert_eq!(out.len(), 2);
        assert!(
            matches!(&out[1], Record::Ntlm(r) if r.negotiate.is_some() && r.client.is_some() && r.result == "unknown")
        );
    }

    #[test]
    fn messages_from_the_wrong_side_are_ignored() {
        // The SYN was seen: the client sends toward the server.
        let mut out = Vec::new();
        let mut cx = Ctx::new(0, false, &mut out);
        let mut t = Tracker::new("smb2", true);
        assert_eq!(t.message(Dir::ToClient, &auth(), &mut cx), None);
        assert_eq!(t.message(Dir::ToServer, CHAL, &mut cx), None);
        assert_eq!(
            t.message(Dir::ToServer, NEG, &mut cx),
            Some(Kind::Negotiate)
        );
        assert_eq!(t.message(Dir::ToClient, NEG, &mut cx), None);
        assert_eq!(
            t.message(Dir::ToClient, CHAL, &mut cx),
            Some(Kind::Challenge)
        );
        assert_eq!(t.message(Dir::ToClient, &auth(), &mut cx), None);
        assert!(!cx.roles_reversed);
        t.flush(&mut cx);
        let _ = cx;
        let [Record::Ntlm(r)] = &out[..] else {
            panic!("{out:?}")
        };
        assert!(r.negotiate.is_some() && r.server.is_some() && r.client.is_none());

        // Midstream, a CHALLENGE first: its receiver is the client, and an
        // AUTHENTICATE from the challenger's side does not count.
        let mut out: Vec<Record> = Vec::new();
        let mut cx = Ctx::new(0, true, &mut out);
        let mut t = Tracker::new("raw", false);
        assert_eq!(
            t.message(Dir::ToServer, CHAL, &mut cx),
            Some(Kind::Challenge)
        );
        assert!(cx.roles_reversed);
        assert_eq!(t.message(Dir::ToServer, &auth(), &mut cx), None);
        assert_eq!(
            t.message(Dir::ToClient, &auth(), &mut cx),
            Some(Kind::Authenticate)
        );
        let _ = cx;
        assert_eq!(out.len(), 1);
    }

    #[test]
    fn invalid_messages_are_ignored() {
        let mut out: Vec<Record> = Vec::new();
        let mut cx = Ctx::new(0, false, &mut out);
        let mut t = Tracker::new("http", true);
        assert_eq!(t.message(Dir::ToServer, b"NTLMSSP\0\x03", &mut cx), None);
        t.verdict(false, Status::Code(401), &mut cx);
        t.flush(&mut cx);
        let _ = cx;
        assert!(out.is_empty());
    }
}
