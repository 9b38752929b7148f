//! NTLMSSP messages (MS-NLMP 2.2.1): NEGOTIATE, CHALLENGE, AUTHENTICATE.
//!
//! Pure and zero-copy: every string borrows from the message. Each payload
//! field is a `(len u16, maxlen u16, offset u32)` triple; every one is checked
//! against the message on its own, whatever order the payload has, and a
//! field that points outside the message is reported as absent rather than
//! failing the whole message (Suricata learned that from real captures).

use nom::number::complete::{le_u16, le_u32, le_u64, le_u8};
use nom::{IResult, Parser};

pub const SIGNATURE: &[u8; 8] = b"NTLMSSP\0";

/// Largest message accepted when a carrier leaves the length to the message
/// itself (raw search): a real AUTHENTICATE is a few kilobytes.
pub const MAX_MESSAGE: usize = 64 << 10;

/// NegotiateFlags (MS-NLMP 2.2.2.5), kept as an open set: unknown bits stay.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Flags(pub u32);

impl Flags {
    pub const UNICODE: u32 = 0x0000_0001;
    pub const OEM: u32 = 0x0000_0002;
    pub const OEM_DOMAIN_SUPPLIED: u32 = 0x0000_1000;
    pub const OEM_WORKSTATION_SUPPLIED: u32 = 0x0000_2000;
    pub const ANONYMOUS: u32 = 0x0000_0800;
    pub const VERSION: u32 = 0x0200_0000;

    const NAMES: [(u32, &'static str); 26] = [
        (0x0000_0001, "unicode"),
        (0x0000_0002, "oem"),
        (0x0000_0004, "request_target"),
        (0x0000_0010, "sign"),
        (0x0000_0020, "seal"),
        (0x0000_0040, "datagram"),
        (0x0000_0080, "lm_key"),
        (0x0000_0200, "ntlm"),
        (0x0000_0800, "anonymous"),
        (0x0000_1000, "oem_domain_supplied"),
        (0x0000_2000, "oem_workstation_supplied"),
        (0x0000_8000, "always_sign"),
        (0x0001_0000, "target_type_domain"),
        (0x0002_0000, "target_type_server"),
        (0x0008_0000, "extended_session_security"),
        (0x0010_0000, "identify"),
        (0x0040_0000, "request_non_nt_session_key"),
        (0x0080_0000, "target_info"),
        (0x0200_0000, "version"),
        (0x2000_0000, "128"),
        (0x4000_0000, "key_exchange"),
        (0x8000_0000, "56"),
        (0x0000_0008, "r10"),
        (0x0000_0100, "r9"),
        (0x0000_0400, "r8"),
        (0x0000_4000, "r7"),
    ];

    pub fn has(self, bit: u32) -> bool {
        self.0 & bit != 0
    }

    /// The set bits by name (`unicode|ntlm|...`), unknown ones in hex.
    #[cfg(test)]
    pub fn names(self) -> String {
        self.with_names(str::to_owned)
    }

    /// Calls `f` with the set bits by name, `|` between them, unknown ones
    /// together in hex (`unicode|r10|0x00040000`), put together on the
    /// stack.
    pub fn with_names<R>(self, f: impl FnOnce(&str) -> R) -> R {
        // Every name, a `|` after each and the hex of unknown bits fit.
        const ROOM: usize = 512;
        const _: () = {
            let mut total = 11;
            let mut i = 0;
            while i < Flags::NAMES.len() {
                total += Flags::NAMES[i].1.len() + 1;
                i += 1;
            }
            assert!(total <= ROOM);
        };
        let mut buf = [0u8; ROOM];
        let mut len = 0;
        let mut put = |s: &[u8]| {
            if let Some(to) = buf.get_mut(len..len + s.len()) {
                to.copy_from_slice(s);
                len += s.len();
            }
        };
        let mut rest = self.0;
        for (bit, name) in Self::NAMES {
            if self.0 & bit != 0 {
                if rest != self.0 {
                    put(b"|");
                }
                put(name.as_bytes());
                rest &= !bit;
            }
        }
        if rest != 0 {
            if rest != self.0 {
                put(b"|");
            }
            put(&crate::render::hex32_text(rest));
        }
        // Names and hex digits are ASCII.
        f(std::str::from_utf8(buf.get(..len).unwrap_or_default()).unwrap_or_default())
    }
}

/// The VERSION structure (MS-NLMP 2.2.2.10).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Version {
    pub major: u8,
    pub minor: u8,
    pub build: u16,
    pub revision: u8,
}

impl Version {
    /// Calls `f` with `major.minor.build`, put together on the stack.
    pub fn with_text<R>(self, f: impl FnOnce(&str) -> R) -> R {
        let parts = [
            ("", self.major.into()),
            (".", self.minor.into()),
            (".", self.build),
        ];
        joined(&parts, f)
    }

    /// Calls `f` with `major.minor build B rev R` (Suricata's form in its
    /// `smb` events), put together on the stack.
    pub fn with_build_text<R>(self, f: impl FnOnce(&str) -> R) -> R {
        let parts = [
            ("", self.major.into()),
            (".", self.minor.into()),
            (" build ", self.build),
            (" rev ", self.revision.into()),
        ];
        joined(&parts, f)
    }
}

/// Each number after its separator, on the stack; at most 32 bytes
/// (`255.255 build 65535 rev 255` is 27).
fn joined<R>(parts: &[(&str, u16)], f: impl FnOnce(&str) -> R) -> R {
    let mut buf = [0u8; 32];
    let mut len = 0;
    let mut n = itoa::Buffer::new();
    for (sep, part) in parts {
        for piece in [sep.as_bytes(), n.format(*part).as_bytes()] {
            if let Some(to) = buf.get_mut(len..len + piece.len()) {
                to.copy_from_slice(piece);
                len += piece.len();
            }
        }
    }
    // Digits, spaces, dots and the separators' letters are ASCII.
    f(std::str::from_utf8(buf.get(..len).unwrap_or_default()).unwrap_or_default())
}

impl std::fmt::Display for Version {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.with_text(|t| f.write_str(t))
    }
}

/// NEGOTIATE_MESSAGE (MS-NLMP 2.2.1.1).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Negotiate<'a> {
    pub flags: Flags,
    /// OEM domain, when the message carries one.
    pub domain: Option<&'a [u8]>,
    pub workstation: Option<&'a [u8]>,
    pub version: Option<Version>,
}

/// CHALLENGE_MESSAGE (MS-NLMP 2.2.1.2).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Challenge<'a> {
    pub flags: Flags,
    pub target_name: Option<&'a [u8]>,
    pub server_challenge: [u8; 8],
    /// The raw AV_PAIR list; iterate it with [`av_pairs`].
    pub target_info: Option<&'a [u8]>,
    pub version: Option<Version>,
}

/// AUTHENTICATE_MESSAGE (MS-NLMP 2.2.1.3).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Authenticate<'a> {
    pub flags: Flags,
    pub lm_response: Option<&'a [u8]>,
    pub nt_response: Option<&'a [u8]>,
    pub domain: Option<&'a [u8]>,
    pub user: Option<&'a [u8]>,
    pub workstation: Option<&'a [u8]>,
    pub session_key: Option<&'a [u8]>,
    pub version: Option<Version>,
    pub mic: Option<&'a [u8]>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Message<'a> {
    Negotiate(Negotiate<'a>),
    Challenge(Challenge<'a>),
    Authenticate(Authenticate<'a>),
}

/// Errors of the NTLM layer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum NtlmError {
    /// The bytes do not start with `NTLMSSP\0`.
    NoSignature,
    /// The fixed header of this message type is cut short.
    Truncated {
        message: &'static str,
        needed: usize,
        received: usize,
    },
    UnknownType(u32),
}

impl std::fmt::Display for NtlmError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            NtlmError::NoSignature => write!(f, "no NTLMSSP signature"),
            NtlmError::Truncated {
                message,
                needed,
                received,
            } => {
                write!(f, "{message}: needs {needed} bytes, got {received}")
            }
            NtlmError::UnknownType(t) => write!(f, "unknown NTLMSSP message type {t}"),
        }
    }
}

impl std::error::Error for NtlmError {}

/// A payload field descriptor (`len`, `maxlen`, `offset`).
#[derive(Debug, Clone, Copy)]
struct Field {
    len: u16,
    offset: u32,
}

fn field(i: &[u8]) -> IResult<&[u8], Field> {
    let (i, (len, _maxlen, offset)) = (le_u16, le_u16, le_u32).parse(i)?;
    Ok((i, Field { len, offset }))
}

fn version(i: &[u8]) -> IResult<&[u8], Version> {
    let (i, (major, minor, build, _reserved, revision)) = (
        le_u8,
        le_u8,
        le_u16,
        nom::bytes::complete::take(3usize),
        le_u8,
    )
        .parse(i)?;
    Ok((
        i,
        Version {
            major,
            minor,
            build,
            revision,
        },
    ))
}

impl Field {
    /// The field's bytes, if they lie within `msg`; `None` when the field is
    /// empty or points outside the message.
    fn get(self, msg: &[u8]) -> Option<&[u8]> {
        if self.len == 0 {
            return None;
        }
        let start = self.offset as usize;
        let end = start.checked_add(usize::from(self.len))?;
        msg.get(start..end)
    }

    /// The field's bytes that lie within `msg`: for a list whose length
    /// runs past the message (an AV-pair list without its terminator), the
    /// part that is there; `None` when it starts outside the message.
    fn get_within(self, msg: &[u8]) -> Option<&[u8]> {
        if self.len == 0 {
            return None;
        }
        let start = self.offset as usize;
        let end = start.saturating_add(usize::from(self.len)).min(msg.len());
        msg.get(start..end).filter(|b| !b.is_empty())
    }

    /// Offset of the payload, when the field has one (for locating the end
    /// of the fixed header).
    fn payload_start(self) -> Option<u32> {
        (self.len > 0).then_some(self.offset)
    }

    fn end(self) -> usize {
        if self.len == 0 {
            0
        } else {
            self.offset as usize + usize::from(self.len)
        }
    }
}

fn truncated(message: &'static str, needed: usize, received: usize) -> NtlmError {
    NtlmError::Truncated {
        message,
        needed,
        received,
    }
}

/// The message type of `msg`, checking the signature.
pub fn message_type(msg: &[u8]) -> Result<u32, NtlmError> {
    if msg.len() < 12 {
        if msg.len() >= 8 && &msg[..8] != SIGNATURE {
            return Err(NtlmError::NoSignature);
        }
        return Err(truncated("NTLMSSP header", 12, msg.len()));
    }
    if &msg[..8] != SIGNATURE {
        return Err(NtlmError::NoSignature);
    }
    Ok(u32::from_le_bytes([msg[8], msg[9], msg[10], msg[11]]))
}

/// Parses one message. `msg` must start at the signature; bytes after the
/// message are ignored.
pub fn parse(msg: &[u8]) -> Result<Message<'_>, NtlmError> {
    match message_type(msg)? {
        1 => negotiate(msg).map(Message::Negotiate),
        2 => challenge(msg).map(Message::Challenge),
        3 => authenticate(msg).map(Message::Authenticate),
        t => Err(NtlmError::UnknownType(t)),
    }
}

/// How many bytes the message starting at `msg` spans, as far as its header
/// tells (the largest field end), for carriers that do not frame it. `None`
/// when the header itself is not complete yet.
pub fn extent(msg: &[u8]) -> Option<usize> {
    // The fixed part as current implementations send it (older, shorter
    // forms are only read when a carrier frames them).
    let (fields, header): (&[usize], usize) = match message_type(msg).ok()? {
        1 => {
            let flags = Flags(u32::from_le_bytes(msg.get(12..16)?.try_into().ok()?));
            (&[16, 24], if flags.has(Flags::VERSION) { 40 } else { 32 })
        }
        2 => (&[12, 40], 48),
        3 => (&[12, 20, 28, 36, 44, 52], 64),
        _ => return Some(12),
    };
    if msg.len() < header {
        return None;
    }
    let mut end = header;
    for &at in fields {
        if let Ok((_, f)) = field(&msg[at..at + 8]) {
            end = end.max(f.end());
        }
    }
    Some(end.min(MAX_MESSAGE))
}

/// NEGOTIATE: flags; domain and workstation when supplied; VERSION when the
/// flag says so and the header has room for it.
pub fn negotiate(msg: &[u8]) -> Result<Negotiate<'_>, NtlmError> {
    // Old clients send just signature, type and flags.
    let body = msg.get(12..).ok_or(truncated("NEGOTIATE", 16, msg.len()))?;
    let (rest, flags) = le_u32::<_, nom::error::Error<&[u8]>>(body)
        .map_err(|_| truncated("NEGOTIATE", 16, msg.len()))?;
    let flags = Flags(flags);
    let mut n = Negotiate {
        flags,
        domain: None,
        workstation: None,
        version: None,
    };
    let Ok((rest, (dom, ws))) = (field, field).parse(rest) else {
        return Ok(n);
    };
    // The payload starts where the first field points: the VERSION is only
    // there if the fixed part reaches past it.
    let payload_start = [dom.payload_start(), ws.payload_start()]
        .into_iter()
        .flatten()
        .min()
        .unwrap_or(u32::MAX);
    if flags.has(Flags::VERSION) && payload_start >= 40 {
        if let Ok((_, v)) = version(rest) {
            n.version = Some(v);
        }
    }
    // The SUPPLIED flags should announce the names, but some clients
    // (Samba's smbtorture among them) send names without them: a field that
    // is non-empty and within the message is taken either way.
    n.domain = dom.get(msg);
    n.workstation = ws.get(msg);
    Ok(n)
}

/// CHALLENGE: target name, flags, server challenge, target info, VERSION.
pub fn challenge(msg: &[u8]) -> Result<Challenge<'_>, NtlmError> {
    let body = msg.get(12..).ok_or(truncated("CHALLENGE", 32, msg.len()))?;
    let parsed: IResult<&[u8], _> = (field, le_u32, le_u64).parse(body);
    let (rest, (target, flags, chal)) =
        parsed.map_err(|_| truncated("CHALLENGE", 32, msg.len()))?;
    let flags = Flags(flags);
    let mut c = Challenge {
        flags,
        target_name: target.get(msg),
        server_challenge: chal.to_le_bytes(),
        target_info: None,
        version: None,
    };
    // Reserved (8), then target info (8) and VERSION (8) on newer servers.
    let Ok((rest, (_reserved, info))) = (le_u64, field).parse(rest) else {
        return Ok(c);
    };
    // A target-info list that runs past the message keeps the pairs that
    // are there (the list iterator stops at the first one cut short).
    c.target_info = info.get_within(msg);
    let payload_start = [target.payload_start(), info.payload_start()]
        .into_iter()
        .flatten()
        .min()
        .unwrap_or(u32::MAX);
    if payload_start >= 56 {
        if let Ok((_, v)) = version(rest) {
            c.version = Some(v);
        }
    }
    Ok(c)
}

/// AUTHENTICATE: responses, domain, user, workstation, session key, flags,
/// VERSION and MIC (located by where the payload starts, not by a fixed
/// header size).
pub fn authenticate(msg: &[u8]) -> Result<Authenticate<'_>, NtlmError> {
    let body = msg
        .get(12..)
        .ok_or(truncated("AUTHENTICATE", 52, msg.len()))?;
    let parsed: IResult<&[u8], _> = (field, field, field, field, field).parse(body);
    let (rest, (lm, nt, dom, user, ws)) =
        parsed.map_err(|_| truncated("AUTHENTICATE", 52, msg.len()))?;
    let mut a = Authenticate {
        flags: Flags(0),
        lm_response: lm.get(msg),
        nt_response: nt.get(msg),
        domain: dom.get(msg),
        user: user.get(msg),
        workstation: ws.get(msg),
        session_key: None,
        version: None,
        mic: None,
    };
    let mut payload_start = [lm, nt, dom, user, ws]
        .iter()
        .filter_map(|f| f.payload_start())
        .min()
        .unwrap_or(u32::MAX);
    // Session key and flags: absent from the oldest, 52-byte form.
    let Ok((rest, (key, flags))) = (field, le_u32).parse(rest) else {
        return Ok(a);
    };
    if let Some(s) = key.payload_start() {
        payload_start = payload_start.min(s);
    }
    if payload_start < 64 {
        return Ok(a);
    }
    a.flags = Flags(flags);
    a.session_key = key.get(msg);
    if payload_start >= 72 && a.flags.has(Flags::VERSION) {
        a.version = version(rest).ok().map(|(_, v)| v);
    }
    if payload_start >= 88 {
        a.mic = msg.get(72..88);
    }
    Ok(a)
}

/// AV_PAIR ids (MS-NLMP 2.2.2.1).
pub mod av {
    pub const EOL: u16 = 0;
    pub const NB_COMPUTER_NAME: u16 = 1;
    pub const NB_DOMAIN_NAME: u16 = 2;
    pub const DNS_COMPUTER_NAME: u16 = 3;
    pub const DNS_DOMAIN_NAME: u16 = 4;
    pub const DNS_TREE_NAME: u16 = 5;
    pub const FLAGS: u16 = 6;
    pub const TIMESTAMP: u16 = 7;
    pub const TARGET_NAME: u16 = 9;
}

/// Iterates an AV_PAIR list; stops at MsvAvEOL, at the end of the data, or
/// at a pair whose length runs past the data (a list without EOL is read to
/// its end).
pub fn av_pairs(mut data: &[u8]) -> impl Iterator<Item = (u16, &[u8])> {
    std::iter::from_fn(move || {
        let (rest, (id, len)) = (le_u16::<_, nom::error::Error<&[u8]>>, le_u16)
            .parse(data)
            .ok()?;
        if id == av::EOL {
            return None;
        }
        let value = rest.get(..usize::from(len))?;
        data = &rest[usize::from(len)..];
        Some((id, value))
    })
}

/// The AV pairs inside an NTLMv2 response: after the 16-byte NTProofStr and
/// the blob's 28-byte fixed part (MS-NLMP 2.2.2.7).
pub fn ntlmv2_av_pairs(nt_response: &[u8]) -> Option<&[u8]> {
    if nt_response.len() <= 24 || nt_response.get(16) != Some(&1) {
        return None;
    }
    nt_response.get(44..)
}

/// How the client answered the challenge.
pub fn response_kind(a: &Authenticate<'_>) -> &'static str {
    let nt = a.nt_response.map_or(0, <[u8]>::len);
    let lm = a.lm_response.map_or(0, <[u8]>::len);
    let lm_empty = lm == 0
        || a.lm_response
            .is_some_and(|l| l.iter().all(|&b| b == 0) && lm <= 1);
    if nt == 0 && lm_empty && a.user.is_none() || a.flags.has(Flags::ANONYMOUS) && nt == 0 {
        "anonymous"
    } else if nt > 24 {
        "ntlmv2"
    } else if nt == 24 {
        "ntlmv1"
    } else if lm > 0 {
        "lm"
    } else {
        "anonymous"
    }
}

/// Decodes a name: UTF-16LE when the UNICODE flag is set, OEM otherwise
/// (taken as UTF-8 when valid, else Latin-1, so no byte is lost).
pub fn decode_name(bytes: &[u8], unicode: bool) -> String {
    if unicode {
        crate::parsers::text::utf16le_lossy(bytes).0
    } else {
        crate::parsers::text::oem(bytes)
    }
}

#[cfg(test)]
#[path = "ntlm_tests.rs"]
mod tests;
