//! Kerberos 5 messages (RFC 4120 5.4.1, 5.4.2, 5.9.1): the clear parts of
//! AS-REQ, TGS-REQ, AS-REP, TGS-REP and KRB-ERROR: client and service
//! principals, realms, the addresses a request names and error codes.
//! Encrypted parts are not touched. Over TCP each message follows a
//! four-byte length (RFC 4120 7.2.2).

use super::der::{children, tlv, uint, Tlv};

pub const AS_REQ: u8 = 10;
pub const AS_REP: u8 = 11;
pub const TGS_REQ: u8 = 12;
pub const TGS_REP: u8 = 13;
pub const KRB_ERROR: u8 = 30;

/// Components kept of one principal name.
const MAX_COMPONENTS: usize = 8;
/// Addresses kept of one request.
const MAX_ADDRESSES: usize = 8;
/// Largest message taken over TCP (Windows tickets with a PAC stay well
/// below; the length prefix is attacker-controlled).
pub const MAX_TCP_MESSAGE: usize = 64 << 10;

/// NetBIOS address type (RFC 4120 7.5.3).
pub const ADDR_NETBIOS: u64 = 20;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum KrbError {
    /// Not one of the five messages.
    NotKerberos,
    /// A field missing, mistagged or running past its container.
    Malformed { field: &'static str },
}

impl std::fmt::Display for KrbError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            KrbError::NotKerberos => f.write_str("not a Kerberos message"),
            KrbError::Malformed { field } => write!(f, "Kerberos {field} is malformed"),
        }
    }
}

impl std::error::Error for KrbError {}

fn malformed(field: &'static str) -> KrbError {
    KrbError::Malformed { field }
}

/// A PrincipalName (RFC 4120 5.2.2): its type and components.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Principal<'a> {
    pub name_type: u64,
    pub components: Vec<&'a [u8]>,
}

/// A HostAddress (RFC 4120 5.2.5).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HostAddress<'a> {
    pub addr_type: u64,
    pub address: &'a [u8],
}

/// The clear fields of one message.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Message<'a> {
    /// The APPLICATION tag: [`AS_REQ`], [`AS_REP`], ...
    pub msg_type: u8,
    pub cname: Option<Principal<'a>>,
    /// The request's realm, the reply's crealm, the error's crealm.
    pub realm: Option<&'a [u8]>,
    /// The error's realm (the server's).
    pub error_realm: Option<&'a [u8]>,
    /// The request's sname, the reply's ticket's sname, the error's sname.
    pub sname: Option<Principal<'a>>,
    /// The encryption types a request offers, in its order (at most 16).
    pub etypes: Vec<i64>,
    pub addresses: Vec<HostAddress<'a>>,
    /// A reply's ticket's encryption type.
    pub ticket_etype: Option<i64>,
    /// A reply's enc-part's encryption type.
    pub enc_etype: Option<i64>,
    pub error_code: Option<u64>,
}

/// Whether `b` starts like a Kerberos message in a datagram.
pub fn looks_like(b: &[u8]) -> bool {
    matches!(b.first().map(|t| t & 0x1f), Some(10..=13 | 30))
        && b.first().is_some_and(|t| t & 0xe0 == 0x60)
        && b.get(1).is_some()
}

/// Whether a datagram on any port is a whole Kerberos message: a KDC
/// request, reply or error whose outer length is the datagram's and which
/// parses. Strict, since it is asked of datagrams on every port; the
/// first byte rejects most at once.
pub fn is_message(b: &[u8]) -> bool {
    matches!(b.first(), Some(0x6a..=0x6d | 0x7e))
        && super::der::tlv_extent(b) == Some(Ok(b.len()))
        && parse(b).is_ok()
}

/// Whether `b` starts like a Kerberos message over TCP: a length below the
/// cap, then a request's tag.
pub fn looks_like_tcp(b: &[u8]) -> bool {
    let Some(len) = tcp_length(b) else {
        return false;
    };
    (1..=MAX_TCP_MESSAGE).contains(&len) && matches!(b.get(4), Some(&(0x6a | 0x6c)))
}

/// The length a TCP record's four-byte prefix announces.
pub fn tcp_length(b: &[u8]) -> Option<usize> {
    let p = <[u8; 4]>::try_from(b.get(..4)?).ok()?;
    usize::try_from(u32::from_be_bytes(p) & 0x7fff_ffff).ok()
}

/// After lost bytes: the first TCP record (RFC 4120 7.2.2) whose length
/// is within the cap and is exactly that of the message it prefixes, a
/// KDC request, reply or error.
pub fn resync_tcp(b: &[u8]) -> super::Resync {
    super::find_start(b, 0, |c| {
        let len = u32::from_be_bytes(<[u8; 4]>::try_from(c.get(..4)?).ok()?);
        let len = usize::try_from(len).ok()?;
        if len == 0 || len > MAX_TCP_MESSAGE {
            return Some(false);
        }
        let tag = *c.get(4)?;
        if !matches!(tag, 0x6a..=0x6d | 0x7e) {
            return Some(false);
        }
        Some(super::der::tlv_extent(c.get(4..)?)? == Ok(len))
    })
}

/// Which context tags of a SEQUENCE are present, one bit each; a receiver's
/// ASN.1 decoder refuses a message that lacks a field RFC 4120 requires.
fn present(seq: &[u8]) -> u32 {
    fields(seq).fold(0, |acc, (n, _)| {
        acc | 1u32.checked_shl(u32::from(n)).unwrap_or(0)
    })
}

fn require(seq: &[u8], tags: &[u8], field: &'static str) -> Result<(), KrbError> {
    let have = present(seq);
    match tags.iter().all(|&t| have & (1 << t) != 0) {
        true => Ok(()),
        false => Err(malformed(field)),
    }
}

/// The tagged fields of a SEQUENCE as (context tag number, inner TLV).
fn fields(seq: &[u8]) -> impl Iterator<Item = (u8, Tlv<'_>)> {
    children(seq).filter_map(|t| {
        // Context-specific, constructed: [n] EXPLICIT.
        if t.tag & 0xe0 != 0xa0 {
            return None;
        }
        let (_, inner) = tlv(t.value).ok()?;
        Some((t.tag & 0x1f, inner))
    })
}

fn integer(t: Tlv<'_>, field: &'static str) -> Result<i64, KrbError> {
    if t.tag != 0x02 || t.value.is_empty() || t.value.len() > 8 {
        return Err(malformed(field));
    }
    // Two's complement, sign-extended.
    let neg = t.value.first().is_some_and(|b| b & 0x80 != 0);
    let init: i64 = if neg { -1 } else { 0 };
    Ok(t.value
        .iter()
        .fold(init, |acc, &b| (acc << 8) | i64::from(b)))
}

fn string<'a>(t: Tlv<'a>, field: &'static str) -> Result<&'a [u8], KrbError> {
    // GeneralString (0x1b); some encoders use other string types.
    match t.tag {
        0x1b | 0x0c | 0x13 | 0x16 => Ok(t.value),
        _ => Err(malformed(field)),
    }
}

fn principal<'a>(t: Tlv<'a>, field: &'static str) -> Result<Principal<'a>, KrbError> {
    if t.tag != 0x30 {
        return Err(malformed(field));
    }
    let mut p = Principal::default();
    let mut seen = false;
    for (n, v) in fields(t.value) {
        match n {
            0 => p.name_type = u64::try_from(integer(v, field)?).unwrap_or(0),
            1 => {
                if v.tag != 0x30 {
                    return Err(malformed(field));
                }
                for c in children(v.value).take(MAX_COMPONENTS) {
                    p.components.push(string(c, field)?);
                }
                seen = true;
            }
            _ => {}
        }
    }
    if !seen {
        return Err(malformed(field));
    }
    Ok(p)
}

/// Parses one message (a datagram, or a TCP record without its prefix).
pub fn parse(b: &[u8]) -> Result<Message<'_>, KrbError> {
    let (_, app) = tlv(b).map_err(|_| KrbError::NotKerberos)?;
    let msg_type = app.tag & 0x1f;
    if app.tag & 0xe0 != 0x60 || !matches!(msg_type, AS_REQ..=TGS_REP | KRB_ERROR) {
        return Err(KrbError::NotKerberos);
    }
    let (_, seq) = tlv(app.value).map_err(|_| malformed("message"))?;
    if seq.tag != 0x30 {
        return Err(malformed("message"));
    }
    // The msg-type field must agree with the APPLICATION tag.
    let type_tag = if matches!(msg_type, AS_REQ | TGS_REQ) {
        2
    } else {
        1
    };
    let stated = fields(seq.value)
        .find(|(n, _)| *n == type_tag)
        .and_then(|(_, t)| integer(t, "msg-type").ok());
    if stated != Some(i64::from(msg_type)) {
        return Err(malformed("msg-type"));
    }
    let mut m = Message {
        msg_type,
        ..Message::default()
    };
    match msg_type {
        AS_REQ | TGS_REQ => request(seq.value, &mut m)?,
        AS_REP | TGS_REP => reply(seq.value, &mut m)?,
        _ => error(seq.value, &mut m)?,
    }
    Ok(m)
}

/// KDC-REQ: the body's fields (RFC 4120 5.4.1).
fn request<'a>(seq: &'a [u8], m: &mut Message<'a>) -> Result<(), KrbError> {
    // pvno, msg-type, req-body.
    require(seq, &[1, 2, 4], "req-body")?;
    let body = fields(seq)
        .find(|(n, _)| *n == 4)
        .map(|(_, b)| b)
        .ok_or(malformed("req-body"))?;
    if body.tag != 0x30 {
        return Err(malformed("req-body"));
    }
    // kdc-options, realm, till, nonce, etype.
    require(body.value, &[0, 2, 5, 7, 8], "req-body")?;
    for (n, v) in fields(body.value) {
        match n {
            1 => m.cname = Some(principal(v, "cname")?),
            2 => m.realm = Some(string(v, "realm")?),
            3 => m.sname = Some(principal(v, "sname")?),
            8 => {
                for e in children(v.value).take(16) {
                    m.etypes.push(integer(e, "etype")?);
                }
            }
            9 => {
                for a in children(v.value).take(MAX_ADDRESSES) {
                    let mut addr_type = None;
                    let mut address = None;
                    for (k, x) in fields(a.value) {
                        match k {
                            0 => addr_type = u64::try_from(integer(x, "addresses")?).ok(),
                            1 if x.tag == 0x04 => address = Some(x.value),
                            _ => {}
                        }
                    }
                    if let (Some(addr_type), Some(address)) = (addr_type, address) {
                        m.addresses.push(HostAddress { addr_type, address });
                    }
                }
            }
            _ => {}
        }
    }
    if m.realm.is_none() {
        return Err(malformed("realm"));
    }
    Ok(())
}

/// KDC-REP (RFC 4120 5.4.2) and its ticket's clear part (5.3).
fn reply<'a>(seq: &'a [u8], m: &mut Message<'a>) -> Result<(), KrbError> {
    // pvno, msg-type, crealm, cname, ticket, enc-part.
    require(seq, &[0, 1, 3, 4, 5, 6], "reply")?;
    for (n, v) in fields(seq) {
        match n {
            3 => m.realm = Some(string(v, "crealm")?),
            4 => m.cname = Some(principal(v, "cname")?),
            5 => {
                // Ticket ::= [APPLICATION 1] SEQUENCE
                if v.tag != 0x61 {
                    return Err(malformed("ticket"));
                }
                let (_, t) = tlv(v.value).map_err(|_| malformed("ticket"))?;
                for (k, x) in fields(t.value) {
                    match k {
                        2 => m.sname = Some(principal(x, "sname")?),
                        3 => {
                            m.ticket_etype = fields(x.value)
                                .find(|(e, _)| *e == 0)
                                .and_then(|(_, e)| integer(e, "etype").ok());
                        }
                        _ => {}
                    }
                }
            }
            6 => {
                // EncryptedData ::= SEQUENCE { etype [0] Int32, ... }
                m.enc_etype = fields(v.value)
                    .find(|(e, _)| *e == 0)
                    .and_then(|(_, e)| integer(e, "etype").ok());
            }
            _ => {}
        }
    }
    if m.cname.is_none() || m.realm.is_none() {
        return Err(malformed("cname"));
    }
    Ok(())
}

/// KRB-ERROR (RFC 4120 5.9.1).
fn error<'a>(seq: &'a [u8], m: &mut Message<'a>) -> Result<(), KrbError> {
    // pvno, msg-type, stime, susec, error-code, realm, sname.
    require(seq, &[0, 1, 4, 5, 6, 9, 10], "error")?;
    for (n, v) in fields(seq) {
        match n {
            6 => m.error_code = Some(uint(v.value).ok_or(malformed("error-code"))?),
            7 => m.realm = Some(string(v, "crealm")?),
            8 => m.cname = Some(principal(v, "cname")?),
            9 => m.error_realm = Some(string(v, "realm")?),
            10 => m.sname = Some(principal(v, "sname")?),
            _ => {}
        }
    }
    if m.error_code.is_none() {
        return Err(malformed("error-code"));
    }
    Ok(())
}

/// The name of an error code (RFC 4120 7.5.9), as Suricata logs it.
pub fn error_name(code: u64) -> Option<&'static str> {
    Some(match code {
        0 => "KDC_ERR_NONE",
        1 => "KDC_ERR_NAME_EXP",
        2 => "KDC_ERR_SERVICE_EXP",
        3 => "KDC_ERR_BAD_PVNO",
        6 => "KDC_ERR_C_PRINCIPAL_UNKNOWN",
        7 => "KDC_ERR_S_PRINCIPAL_UNKNOWN",
        8 => "KDC_ERR_PRINCIPAL_NOT_UNIQUE",
        12 => "KDC_ERR_POLICY",
        14 => "KDC_ERR_ETYPE_NOSUPP",
        18 => "KDC_ERR_CLIENT_REVOKED",
        23 => "KDC_ERR_KEY_EXPIRED",
        24 => "KDC_ERR_PREAUTH_FAILED",
        25 => "KDC_ERR_PREAUTH_REQUIRED",
        31 => "KRB_AP_ERR_BAD_INTEGRITY",
        32 => "KRB_AP_ERR_TKT_EXPIRED",
        37 => "KRB_AP_ERR_SKEW",
        41 => "KRB_AP_ERR_MODIFIED",
        52 => "KRB_ERR_RESPONSE_TOO_BIG",
        60 => "KRB_ERR_GENERIC",
        68 => "KDC_ERR_WRONG_REALM",
        _ => return None,
    })
}

#[cfg(test)]
#[path = "krb5_tests.rs"]
mod tests;
