//! CLDAP netlogon pings (MS-ADTS 6.3.3): an LDAP searchRequest (RFC 4511
//! 4.5.1) over UDP 389 whose filter is an AND of equality matches
//! (`DnsDomain`, `Host`, `User`, `NtVer`, ...), and the domain controller's
//! searchResEntry whose `Netlogon` attribute holds a
//! NETLOGON_SAM_LOGON_RESPONSE_EX (MS-ADTS 6.3.1.9): the DC's DNS and
//! NetBIOS names, compressed as DNS names are (RFC 1035 4.1.4).

use super::der::{children, tlv, uint, Tlv};
use super::labels::{self, LabelError};
use super::text;

const SEQUENCE: u8 = 0x30;
const SEARCH_REQUEST: u8 = 0x63;
const SEARCH_RESULT_ENTRY: u8 = 0x64;
const FILTER_AND: u8 = 0xa0;
const FILTER_EQUALITY: u8 = 0xa3;

/// Equality matches kept of one filter.
const MAX_TERMS: usize = 16;
/// Compression pointers followed per name.
const MAX_POINTERS: usize = 16;

/// The extended responses (MS-ADTS 6.3.1.9): one layout.
pub const LOGON_SAM_LOGON_RESPONSE_EX: u16 = 23;
pub const LOGON_SAM_PAUSE_RESPONSE_EX: u16 = 24;
pub const LOGON_SAM_USER_UNKNOWN_EX: u16 = 25;
/// NtVer flag asking for the DC's socket address (MS-ADTS 6.3.1.1).
const NETLOGON_NT_VERSION_5EP: u32 = 0x08;
/// NtVer flag asking for the next closest site.
const NETLOGON_NT_VERSION_WITH_CLOSEST_SITE: u32 = 0x10;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum CldapError {
    /// An LDAP message, but not a search request or entry.
    NotPing,
    Malformed {
        field: &'static str,
    },
}

impl std::fmt::Display for CldapError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            CldapError::NotPing => f.write_str("CLDAP message is not a netlogon ping"),
            CldapError::Malformed { field } => write!(f, "CLDAP {field} is malformed"),
        }
    }
}

impl std::error::Error for CldapError {}

fn malformed(field: &'static str) -> CldapError {
    CldapError::Malformed { field }
}

/// An equality match of a filter: attribute and value.
pub type Term<'a> = (&'a [u8], &'a [u8]);

/// One datagram's message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Message<'a> {
    /// A search: the equality matches of its filter, in order.
    Request {
        message_id: u64,
        terms: Vec<Term<'a>>,
    },
    /// A search result entry: its `Netlogon` value, when it has one.
    Entry {
        message_id: u64,
        netlogon: Option<&'a [u8]>,
    },
}

/// Whether a datagram on port 389 may be an LDAP search or its entry.
pub fn looks_like(b: &[u8]) -> bool {
    let Ok((_, outer)) = tlv(b) else {
        return false;
    };
    let mut kids = children(outer.value);
    outer.tag == SEQUENCE
        && kids.next().is_some_and(|id| id.tag == 0x02)
        && kids
            .next()
            .is_some_and(|op| matches!(op.tag, SEARCH_REQUEST | SEARCH_RESULT_ENTRY))
}

/// Whether a datagram on any port is a netlogon ping or its answer: an
/// LDAPMessage that parses whole, a search whose filter asks for `NtVer`
/// or an entry that carries a `Netlogon` value. Strict, since it is
/// asked of datagrams on every port; the first byte rejects most at once.
pub fn is_ping(b: &[u8]) -> bool {
    if b.first() != Some(&SEQUENCE) {
        return false;
    }
    match message(b) {
        Ok(Message::Request { terms, .. }) => term(&terms, "NtVer").is_some(),
        Ok(Message::Entry { netlogon, .. }) => netlogon.is_some(),
        Err(_) => false,
    }
}

/// Parses the LDAPMessage of one datagram (the first, when a DC packs the
/// entry and the done message together).
pub fn message(b: &[u8]) -> Result<Message<'_>, CldapError> {
    let (_, outer) = tlv(b).map_err(|_| malformed("LDAPMessage"))?;
    if outer.tag != SEQUENCE {
        return Err(malformed("LDAPMessage"));
    }
    let mut kids = children(outer.value);
    let id = kids.next().ok_or(malformed("messageID"))?;
    let message_id = uint(id.value).ok_or(malformed("messageID"))?;
    let op = kids.next().ok_or(malformed("protocolOp"))?;
    match op.tag {
        SEARCH_REQUEST => Ok(Message::Request {
            message_id,
            terms: search_terms(op)?,
        }),
        SEARCH_RESULT_ENTRY => Ok(Message::Entry {
            message_id,
            netlogon: netlogon_value(op)?,
        }),
        _ => Err(CldapError::NotPing),
    }
}

/// baseObject, scope, derefAliases, sizeLimit, timeLimit, typesOnly, then
/// the filter: an AND of equality matches, or a single one.
fn search_terms(op: Tlv<'_>) -> Result<Vec<Term<'_>>, CldapError> {
    let filter = children(op.value).nth(6).ok_or(malformed("filter"))?;
    let items: Vec<Tlv<'_>> = match filter.tag {
        FILTER_AND => children(filter.value).take(MAX_TERMS).collect(),
        _ => vec![filter],
    };
    let mut terms = Vec::with_capacity(items.len());
    for item in items.into_iter().filter(|t| t.tag == FILTER_EQUALITY) {
        let mut ava = children(item.value);
        match (ava.next(), ava.next()) {
            (Some(a), Some(v)) if a.tag == 0x04 && v.tag == 0x04 => terms.push((a.value, v.value)),
            _ => return Err(malformed("filter")),
        }
    }
    Ok(terms)
}

/// objectName, then attributes: SEQUENCE OF { type, SET OF value }.
fn netlogon_value(op: Tlv<'_>) -> Result<Option<&[u8]>, CldapError> {
    let attrs = children(op.value).nth(1).ok_or(malformed("attributes"))?;
    for attr in children(attrs.value) {
        let mut parts = children(attr.value);
        let (Some(kind), Some(vals)) = (parts.next(), parts.next()) else {
            return Err(malformed("attributes"));
        };
        if kind.value.eq_ignore_ascii_case(b"netlogon") {
            return Ok(children(vals.value).next().map(|v| v.value));
        }
    }
    Ok(None)
}

/// The equality value of `attribute` in a filter's terms.
pub fn term<'a>(terms: &[Term<'a>], attribute: &str) -> Option<&'a [u8]> {
    terms
        .iter()
        .find(|(a, _)| a.eq_ignore_ascii_case(attribute.as_bytes()))
        .map(|(_, v)| *v)
}

/// A NETLOGON_SAM_LOGON_RESPONSE_EX.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct NetlogonResponse {
    pub opcode: u16,
    pub flags: u32,
    pub dns_forest_name: String,
    pub dns_domain_name: String,
    pub dns_host_name: String,
    pub netbios_domain_name: String,
    pub netbios_computer_name: String,
    pub user_name: String,
    pub dc_site_name: String,
    pub client_site_name: String,
    pub nt_version: u32,
}

/// Parses the value of the `Netlogon` attribute; the names are relative to
/// the value (compression pointers count from its first byte).
pub fn netlogon_response(v: &[u8]) -> Result<NetlogonResponse, CldapError> {
    let u16_at = |at: usize| -> Option<u16> {
        Some(u16::from_le_bytes(v.get(at..at + 2)?.try_into().ok()?))
    };
    let u32_at = |at: usize| -> Option<u32> {
        Some(u32::from_le_bytes(v.get(at..at + 4)?.try_into().ok()?))
    };
    let opcode = u16_at(0).ok_or(malformed("netlogon opcode"))?;
    if !matches!(
        opcode,
        LOGON_SAM_LOGON_RESPONSE_EX | LOGON_SAM_PAUSE_RESPONSE_EX | LOGON_SAM_USER_UNKNOWN_EX
    ) {
        return Err(CldapError::NotPing);
    }
    let flags = u32_at(4).ok_or(malformed("netlogon flags"))?;
    // Opcode, Sbz, Flags, DomainGuid, then eight names.
    let mut at = 24;
    let mut names: [String; 8] = Default::default();
    for n in names.iter_mut() {
        let (name, next) = name_at(v, at)?;
        *n = name;
        at = next;
    }
    // NtVersion follows, after the DC's address (V5EP) and the next
    // closest site (VCS) when the answer has them; it is the last three
    // fields' first: NtVersion, LmNtToken, Lm20Token.
    let nt_version = v
        .len()
        .checked_sub(8)
        .and_then(u32_at)
        .ok_or(malformed("netlogon version"))?;
    let mut min_end = at + 8;
    if nt_version & NETLOGON_NT_VERSION_5EP != 0 {
        let size = v.get(at).copied().ok_or(malformed("netlogon address"))?;
        min_end += 1 + usize::from(size);
    }
    if nt_version & NETLOGON_NT_VERSION_WITH_CLOSEST_SITE != 0 {
        min_end += 1;
    }
    if v.len() < min_end {
        return Err(malformed("netlogon response"));
    }
    let [forest, domain, host, nb_domain, nb_host, user, dc_site, client_site] = names;
    Ok(NetlogonResponse {
        opcode,
        flags,
        dns_forest_name: forest,
        dns_domain_name: domain,
        dns_host_name: host,
        netbios_domain_name: nb_domain,
        netbios_computer_name: nb_host,
        user_name: user,
        dc_site_name: dc_site,
        client_site_name: client_site,
        nt_version,
    })
}

/// The compressed name at `at` of `v`, dotted, and where the next field starts.
fn name_at(v: &[u8], at: usize) -> Result<(String, usize), CldapError> {
    let mut out = String::new();
    let next = labels::walk(v, at, MAX_POINTERS, |label| {
        if !out.is_empty() {
            out.push('.');
        }
        out.push_str(&text::oem(label));
        if out.len() > 1024 {
            return Err(LabelError::Bad);
        }
        Ok(())
    })
    .map_err(|_| malformed("netlogon name"))?;
    Ok((out, next))
}

#[cfg(test)]
#[path = "cldap_tests.rs"]
mod tests;
