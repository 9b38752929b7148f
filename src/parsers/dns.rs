//! DNS message format (RFC 1035 4.1) as multicast DNS (RFC 6762) and LLMNR
//! (RFC 4795) use it: questions and the address records of the answer,
//! authority and additional sections. Names may be compressed; pointers go
//! backwards only and a bounded number of times; every count and length is
//! capped.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use nom::bytes::complete::take;
use nom::number::complete::{be_u16, be_u32};
use nom::{IResult, Parser};

use super::labels::{self, LabelError};

/// Questions and records read per section.
pub const MAX_ENTRIES: usize = 64;
/// A name's text, at most (RFC 1035 2.3.4).
const MAX_NAME: usize = 255;
/// Compression pointers followed in one name.
const MAX_POINTERS: usize = 16;

pub const TYPE_A: u16 = 1;
pub const TYPE_AAAA: u16 = 28;
pub const TYPE_ANY: u16 = 255;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum DnsError {
    Truncated { section: &'static str },
    BadName,
}

impl std::fmt::Display for DnsError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            DnsError::Truncated { section } => write!(f, "DNS {section} truncated"),
            DnsError::BadName => f.write_str("DNS name is malformed"),
        }
    }
}

impl std::error::Error for DnsError {}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Question {
    pub name: String,
    pub qtype: u16,
}

/// An address record: a name and the address it maps to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Address {
    pub name: String,
    pub address: IpAddr,
    pub ttl: u32,
    pub section: Section,
}

/// The section a record stands in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Section {
    Answer,
    Authority,
    Additional,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Message {
    pub id: u16,
    /// The header's flags word (QR, opcode, AA, TC, RD, RA, Z, AD, CD, rcode).
    pub flags: u16,
    pub response: bool,
    pub rcode: u8,
    pub questions: Vec<Question>,
    /// A and AAAA records of every section, in order.
    pub addresses: Vec<Address>,
}

/// Whether a datagram may be a DNS message (a header, sane counts).
pub fn looks_like(b: &[u8]) -> bool {
    let Some(h) = b.get(..12) else {
        return false;
    };
    let count = |i: usize| u16::from_be_bytes([h[i], h[i + 1]]);
    let opcode = (h[2] >> 3) & 0x0f;
    opcode == 0 && (count(4) > 0 || count(6) > 0 || count(10) > 0) && count(4) < 256
}

fn trunc(section: &'static str) -> impl Fn(nom::Err<nom::error::Error<&[u8]>>) -> DnsError {
    move |_| DnsError::Truncated { section }
}

pub fn parse(msg: &[u8]) -> Result<Message, DnsError> {
    type R<'a, T> = IResult<&'a [u8], T>;
    let header: R<_> = (be_u16, be_u16, be_u16, be_u16, be_u16, be_u16).parse(msg);
    let (mut rest, (id, flags, qd, an, ns, ar)) = header.map_err(trunc("header"))?;
    let mut questions = Vec::new();
    for _ in 0..usize::from(qd).min(MAX_ENTRIES) {
        let (r, name) = name(msg, rest)?;
        let fixed: R<_> = (be_u16, be_u16).parse(r);
        let (r, (qtype, _class)) = fixed.map_err(trunc("question"))?;
        questions.push(Question { name, qtype });
        rest = r;
    }
    let mut addresses = Vec::new();
    let records = usize::from(an) + usize::from(ns) + usize::from(ar);
    for i in 0..records.min(3 * MAX_ENTRIES) {
        let section = if i < usize::from(an) {
            Section::Answer
        } else if i < usize::from(an) + usize::from(ns) {
            Section::Authority
        } else {
            Section::Additional
        };
        let (r, name) = name(msg, rest)?;
        let fixed: R<_> = (be_u16, be_u16, be_u32, be_u16).parse(r);
        let (r, (rtype, _class, ttl, len)) = fixed.map_err(trunc("record"))?;
        let (r, rdata) = take::<_, _, nom::error::Error<&[u8]>>(usize::from(len))(r)
            .map_err(trunc("record data"))?;
        let address = match (rtype, rdata.len()) {
            (TYPE_A, 4) => <[u8; 4]>::try_from(rdata)
                .ok()
                .map(|a| IpAddr::V4(Ipv4Addr::from(a))),
            (TYPE_AAAA, 16) => <[u8; 16]>::try_from(rdata)
                .ok()
                .map(|a| IpAddr::V6(Ipv6Addr::from(a))),
            _ => None,
        };
        if let Some(address) = address {
            addresses.push(Address {
                name,
                address,
                ttl,
                section,
            });
        }
        rest = r;
    }
    Ok(Message {
        id,
        flags,
        response: flags & 0x8000 != 0,
        rcode: (flags & 0x000f) as u8,
        questions,
        addresses,
    })
}

/// Reads a (possibly compressed) name at `i`, a suffix of `msg`; returns
/// what follows it in place and the name as dotted text (bytes that are not
/// UTF-8 are replaced).
fn name<'a>(msg: &'a [u8], i: &'a [u8]) -> Result<(&'a [u8], String), DnsError> {
    let mut text: Vec<u8> = Vec::new();
    let end = labels::walk(msg, msg.len() - i.len(), MAX_POINTERS, |label| {
        if text.len() + label.len() + 1 > MAX_NAME {
            return Err(LabelError::Bad);
        }
        if !text.is_empty() {
            text.push(b'.');
        }
        text.extend_from_slice(label);
        Ok(())
    })
    .map_err(|e| match e {
        LabelError::Truncated => DnsError::Truncated { section: "name" },
        LabelError::Bad => DnsError::BadName,
    })?;
    let rest = msg
        .get(end..)
        .ok_or(DnsError::Truncated { section: "name" })?;
    Ok((rest, String::from_utf8_lossy(&text).into_owned()))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// RFC 1035 4.1: a response with one question and an A record whose
    /// name is a pointer to the question's (offset 12).
    fn answer() -> Vec<u8> {
        let mut m = vec![0, 0, 0x84, 0x00, 0, 1, 0, 1, 0, 0, 0, 0];
        m.extend_from_slice(b"\x0fWIN-J9D866ESIJ2\x05local\x00");
        m.extend_from_slice(&[0, 1, 0x80, 1]);
        m.extend_from_slice(&[0xc0, 12, 0, 1, 0x80, 1, 0, 0, 0, 120, 0, 4, 10, 0, 0, 7]);
        m
    }

    #[test]
    fn question_and_compressed_address_record() -> Result<(), DnsError> {
        let m = parse(&answer())?;
        assert!(m.response);
        assert_eq!(
            m.questions,
            [Question {
                name: "WIN-J9D866ESIJ2.local".into(),
                qtype: TYPE_A
            }]
        );
        assert_eq!(
            m.addresses,
            [Address {
                name: "WIN-J9D866ESIJ2.local".into(),
                address: IpAddr::V4(Ipv4Addr::new(10, 0, 0, 7)),
                ttl: 120,
                section: Section::Answer,
            }]
        );
        assert!(looks_like(&answer()));
        Ok(())
    }

    #[test]
    fn loops_forward_pointers_and_cut_records_are_errors() {
        let mut fwd = answer();
        let at = fwd.len() - 16;
        fwd[at + 1] = 200;
        assert_eq!(parse(&fwd), Err(DnsError::BadName));
        let mut selfref = answer();
        selfref[at + 1] = at as u8;
        assert_eq!(parse(&selfref), Err(DnsError::BadName));
        let cut = answer();
        assert_eq!(
            parse(&cut[..cut.len() - 2]),
            Err(DnsError::Truncated {
                section: "record data"
            })
        );
        let mut long = vec![0, 0, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0];
        for _ in 0..5 {
            long.push(63);
            long.extend_from_slice(&[b'a'; 63]);
        }
        long.extend_from_slice(&[0, 0, 1, 0, 1]);
        assert_eq!(parse(&long), Err(DnsError::BadName));
        assert!(!looks_like(&[0; 11]));
    }
}
