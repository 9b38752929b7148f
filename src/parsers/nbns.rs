//! NetBIOS name service messages (RFC 1002 section 4.2, UDP 137): the
//! header, questions and resource records of registrations, refreshes,
//! releases, queries and their answers, with first-level name decoding
//! (RFC 1001 14.1) and node status answers (RFC 1002 4.2.18).
//!
//! Names may be compressed (a pointer to an earlier name, RFC 883 style);
//! pointers are followed a bounded number of times and only backwards.
//! Every list is capped before anything is allocated for it.

use nom::bytes::complete::take;
use nom::number::complete::{be_u16, be_u32};
use nom::Parser;

use super::labels::{self, LabelError};

/// Opcodes (RFC 1002 4.2.1.1; 9 is the refresh code Windows sends).
pub mod opcode {
    pub const QUERY: u8 = 0;
    pub const REGISTRATION: u8 = 5;
    pub const RELEASE: u8 = 6;
    pub const WACK: u8 = 7;
    pub const REFRESH: u8 = 8;
    pub const REFRESH_ALT: u8 = 9;
    pub const MULTIHOMED_REGISTRATION: u8 = 15;
}

/// Resource record and question types.
pub const TYPE_NB: u16 = 0x0020;
pub const TYPE_NBSTAT: u16 = 0x0021;

/// NM_FLAGS bits (in the 16-bit flags word).
const FLAG_RESPONSE: u16 = 0x8000;
const FLAG_AUTHORITATIVE: u16 = 0x0400;
const FLAG_BROADCAST: u16 = 0x0010;

/// Questions read from one message, at most.
pub const MAX_QUESTIONS: usize = 4;
/// Resource records read from one message (all sections), at most.
pub const MAX_RECORDS: usize = 16;
/// Addresses read from one NB record, and names from a node status, at most.
pub const MAX_ENTRIES: usize = 64;
/// Compression pointers followed for one name.
const MAX_POINTERS: usize = 4;
/// Scope labels kept for one name.
const MAX_SCOPE: usize = 8;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum NbnsError {
    /// Shorter than the header, or a section runs past the end.
    Truncated { section: &'static str },
    /// A name that is not a 32-letter first-level encoding.
    BadName,
    /// Counts no name service message has (e.g. a question in a WACK).
    NotNbns,
}

impl std::fmt::Display for NbnsError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            NbnsError::Truncated { section } => write!(f, "NBNS {section} truncated"),
            NbnsError::BadName => f.write_str("NBNS name is not first-level encoded"),
            NbnsError::NotNbns => f.write_str("not a NetBIOS name service message"),
        }
    }
}

impl std::error::Error for NbnsError {}

/// A decoded NetBIOS name: 15 bytes padded with spaces, then the suffix
/// byte (the name's service type), and the scope labels after it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NbName<'a> {
    pub bytes: [u8; 16],
    /// Scope labels (rare: NetBIOS scopes are almost never set), in order.
    pub scope: [Option<&'a [u8]>; MAX_SCOPE],
}

/// A NetBIOS name's 15 bytes without their padding (spaces, or NULs
/// after `*`).
fn unpadded(bytes: &[u8; 16]) -> &[u8] {
    let n = &bytes[..15];
    let end = n
        .iter()
        .rposition(|&b| b != b' ' && b != 0)
        .map_or(0, |i| i + 1);
    &n[..end]
}

impl NbName<'_> {
    /// The name without its padding.
    pub fn name(&self) -> &[u8] {
        unpadded(&self.bytes)
    }

    pub fn suffix(&self) -> u8 {
        self.bytes[15]
    }

    pub fn scope_labels(&self) -> impl Iterator<Item = &[u8]> {
        self.scope.iter().map_while(|l| *l)
    }
}

/// One name-to-address entry of an NB record (RFC 1002 4.2.1.3).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NbAddress {
    pub group: bool,
    /// Owner node type: 0 B, 1 P, 2 M, 3 H (Microsoft).
    pub node_type: u8,
    pub address: [u8; 4],
}

/// One name of a node status answer (RFC 1002 4.2.18).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NodeName {
    /// 15 bytes padded with spaces, then the suffix.
    pub bytes: [u8; 16],
    pub group: bool,
    pub active: bool,
    pub conflict: bool,
}

impl NodeName {
    /// The name without its padding.
    pub fn name(&self) -> &[u8] {
        unpadded(&self.bytes)
    }

    pub fn suffix(&self) -> u8 {
        self.bytes[15]
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Rdata<'a> {
    Nb(Vec<NbAddress>),
    NodeStatus {
        names: Vec<NodeName>,
        /// The UNIT_ID of the statistics (usually the MAC address).
        unit_id: Option<[u8; 6]>,
    },
    Other(&'a [u8]),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Question<'a> {
    pub name: NbName<'a>,
    pub qtype: u16,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Resource<'a> {
    pub name: NbName<'a>,
    pub rtype: u16,
    pub ttl: u32,
    pub data: Rdata<'a>,
}

/// One name service message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Message<'a> {
    pub transaction_id: u16,
    pub response: bool,
    pub opcode: u8,
    pub authoritative: bool,
    pub broadcast: bool,
    pub rcode: u8,
    pub questions: Vec<Question<'a>>,
    /// Answer, authority and additional records, in that order.
    pub records: Vec<Resource<'a>>,
}

/// Whether a datagram looks like a name service message: a known opcode
/// and counts a name service message can have, and a first-level encoded
/// name where the first name starts.
pub fn looks_like(b: &[u8]) -> bool {
    let Some(h) = b.get(..12) else {
        return false;
    };
    let flags = u16::from_be_bytes([h[2], h[3]]);
    let op = ((flags >> 11) & 0xf) as u8;
    let counts = [4, 6, 8, 10].map(|i| u16::from_be_bytes([h[i], h[i + 1]]));
    let known = matches!(
        op,
        opcode::QUERY
            | opcode::REGISTRATION
            | opcode::RELEASE
            | opcode::WACK
            | opcode::REFRESH
            | opcode::REFRESH_ALT
            | opcode::MULTIHOMED_REGISTRATION
    );
    known
        && counts.iter().all(|&c| c <= MAX_RECORDS as u16)
        && counts.iter().any(|&c| c > 0)
        && b.get(12) == Some(&32)
        && b.get(13..45)
            .is_some_and(|n| n.iter().all(|c| (b'A'..=b'P').contains(c)))
}

/// Parses one message.
pub fn parse(msg: &[u8]) -> Result<Message<'_>, NbnsError> {
    type NomErr<'e> = nom::Err<nom::error::Error<&'e [u8]>>;
    let trunc = |section| move |_: NomErr<'_>| NbnsError::Truncated { section };
    let (mut i, (transaction_id, flags, qd, an, ns, ar)) =
        (be_u16, be_u16, be_u16, be_u16, be_u16, be_u16)
            .parse(msg)
            .map_err(trunc("header"))?;
    let records_total = usize::from(an) + usize::from(ns) + usize::from(ar);
    if usize::from(qd) > MAX_QUESTIONS || records_total > MAX_RECORDS {
        return Err(NbnsError::NotNbns);
    }
    let mut questions = Vec::with_capacity(usize::from(qd));
    for _ in 0..qd {
        let (rest, name) = name(msg, i)?;
        let (rest, (qtype, _class)) = (be_u16, be_u16).parse(rest).map_err(trunc("question"))?;
        questions.push(Question { name, qtype });
        i = rest;
    }
    let mut records = Vec::with_capacity(records_total);
    for _ in 0..records_total {
        let (rest, r) = resource(msg, i)?;
        records.push(r);
        i = rest;
    }
    Ok(Message {
        transaction_id,
        response: flags & FLAG_RESPONSE != 0,
        opcode: ((flags >> 11) & 0xf) as u8,
        authoritative: flags & FLAG_AUTHORITATIVE != 0,
        broadcast: flags & FLAG_BROADCAST != 0,
        rcode: (flags & 0xf) as u8,
        questions,
        records,
    })
}

fn resource<'a>(msg: &'a [u8], i: &'a [u8]) -> Result<(&'a [u8], Resource<'a>), NbnsError> {
    let trunc = |_: nom::Err<nom::error::Error<&[u8]>>| NbnsError::Truncated {
        section: "resource record",
    };
    let (i, name) = name(msg, i)?;
    let (i, (rtype, _class, ttl, len)) =
        (be_u16, be_u16, be_u32, be_u16).parse(i).map_err(trunc)?;
    let (i, rdata) = take::<_, _, nom::error::Error<&[u8]>>(len)
        .parse(i)
        .map_err(trunc)?;
    let data = match rtype {
        TYPE_NB => Rdata::Nb(
            rdata
                .chunks_exact(6)
                .take(MAX_ENTRIES)
                .map(|e| NbAddress {
                    group: e[0] & 0x80 != 0,
                    node_type: (e[0] >> 5) & 0x3,
                    address: [e[2], e[3], e[4], e[5]],
                })
                .collect(),
        ),
        TYPE_NBSTAT => node_status(rdata),
        _ => Rdata::Other(rdata),
    };
    Ok((
        i,
        Resource {
            name,
            rtype,
            ttl,
            data,
        },
    ))
}

fn node_status(rdata: &[u8]) -> Rdata<'_> {
    let Some((&count, rest)) = rdata.split_first() else {
        return Rdata::Other(rdata);
    };
    let mut names = Vec::with_capacity(usize::from(count).min(MAX_ENTRIES));
    let mut entries = rest.chunks_exact(18);
    for e in entries.by_ref().take(usize::from(count).min(MAX_ENTRIES)) {
        let mut bytes = [0u8; 16];
        bytes.copy_from_slice(&e[..16]);
        let flags = u16::from_be_bytes([e[16], e[17]]);
        names.push(NodeName {
            bytes,
            group: flags & 0x8000 != 0,
            conflict: flags & 0x0800 != 0,
            active: flags & 0x0400 != 0,
        });
    }
    let stats = rest.get(18 * usize::from(count)..);
    let unit_id = stats
        .and_then(|s| s.get(..6))
        .and_then(|u| <[u8; 6]>::try_from(u).ok());
    Rdata::NodeStatus { names, unit_id }
}

/// Reads an uncompressed encoded name at the start of `i` (the NetBIOS
/// datagram service's source and destination names, RFC 1002 4.4.1);
/// returns what follows it.
pub fn encoded_name(i: &[u8]) -> Result<(&[u8], NbName<'_>), NbnsError> {
    name(i, i)
}

/// Reads a (possibly compressed) name at `i`; returns what follows it in
/// place (after the pointer, if the name was one).
fn name<'a>(msg: &'a [u8], i: &'a [u8]) -> Result<(&'a [u8], NbName<'a>), NbnsError> {
    let trunc = NbnsError::Truncated { section: "name" };
    let mut first: Option<[u8; 16]> = None;
    let mut scope: [Option<&'a [u8]>; MAX_SCOPE] = [None; MAX_SCOPE];
    let mut labels = 0;
    let end = labels::walk(msg, msg.len() - i.len(), MAX_POINTERS, |label| {
        if first.is_none() {
            first = Some(decode_first_level(label).map_err(|_| LabelError::Bad)?);
        } else if labels < MAX_SCOPE {
            scope[labels] = Some(label);
            labels += 1;
        }
        Ok(())
    })
    .map_err(|e| match e {
        LabelError::Truncated => trunc,
        LabelError::Bad => NbnsError::BadName,
    })?;
    let bytes = first.ok_or(NbnsError::BadName)?;
    let rest = msg.get(end..).ok_or(trunc)?;
    Ok((rest, NbName { bytes, scope }))
}

/// RFC 1001 14.1: each byte as two letters `A` + nibble.
fn decode_first_level(label: &[u8]) -> Result<[u8; 16], NbnsError> {
    if label.len() != 32 {
        return Err(NbnsError::BadName);
    }
    let mut out = [0u8; 16];
    for (o, pair) in out.iter_mut().zip(label.chunks_exact(2)) {
        let hi = pair[0].wrapping_sub(b'A');
        let lo = pair[1].wrapping_sub(b'A');
        if hi > 15 || lo > 15 {
            return Err(NbnsError::BadName);
        }
        *o = (hi << 4) | lo;
    }
    Ok(out)
}

/// What a name's suffix says it is (the well-known Microsoft types).
pub fn suffix_type(suffix: u8, group: bool) -> &'static str {
    match (suffix, group) {
        (0x00, false) => "workstation",
        (0x00, true) => "domain",
        (0x01, true) => "master_browser_group",
        (0x03, _) => "messenger",
        (0x06, _) => "ras_server",
        (0x1b, _) => "domain_master_browser",
        (0x1c, _) => "domain_controllers",
        (0x1d, _) => "master_browser",
        (0x1e, _) => "browser_election",
        (0x1f, _) => "netdde",
        (0x20, _) => "file_server",
        (0x21, _) => "ras_client",
        _ => "other",
    }
}

/// The opcode's name.
pub fn opcode_name(op: u8) -> &'static str {
    match op {
        opcode::QUERY => "query",
        opcode::REGISTRATION => "registration",
        opcode::RELEASE => "release",
        opcode::WACK => "wack",
        opcode::REFRESH | opcode::REFRESH_ALT => "refresh",
        opcode::MULTIHOMED_REGISTRATION => "multihomed_registration",
        _ => "unknown",
    }
}

/// The RCODE's name (RFC 1002 4.2.6 and 4.2.14).
pub fn rcode_name(rcode: u8) -> &'static str {
    match rcode {
        0 => "ok",
        1 => "format_error",
        2 => "server_failure",
        3 => "name_error",
        4 => "unsupported",
        5 => "refused",
        6 => "active_error",
        7 => "conflict",
        _ => "unknown",
    }
}

#[cfg(test)]
#[path = "nbns_tests.rs"]
mod tests;
