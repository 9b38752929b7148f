//! Browser announcements (MS-BRWS 2.2): a NetBIOS datagram (RFC 1002
//! 4.4.1) carrying an SMB1 mailslot write (MS-CIFS 2.2.4.33.1,
//! SMB_COM_TRANSACTION) to `\MAILSLOT\BROWSE`. A Windows machine, or Samba,
//! broadcasts its name, OS version and comment this way every few minutes.

use std::net::Ipv4Addr;

use nom::bytes::complete::{tag, take};
use nom::number::complete::{be_u16, be_u32, le_u16, le_u32, u8 as byte};
use nom::{IResult, Parser};

use super::nbns::{self, NbName};

/// Direct unique, direct group and broadcast datagrams.
const DIRECT_UNIQUE: u8 = 0x10;
const BROADCAST: u8 = 0x12;
const SMB_COM_TRANSACTION: u8 = 0x25;
const MAILSLOT_BROWSE: &[u8] = b"\\MAILSLOT\\BROWSE";

/// Announcement opcodes (MS-BRWS 2.2.1).
pub const HOST_ANNOUNCEMENT: u8 = 0x01;
pub const DOMAIN_ANNOUNCEMENT: u8 = 0x0c;
pub const LOCAL_MASTER_ANNOUNCEMENT: u8 = 0x0f;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum BrowserError {
    /// Not a NetBIOS datagram carrying a mailslot write.
    NotBrowser,
    Truncated {
        section: &'static str,
    },
    BadName,
}

impl std::fmt::Display for BrowserError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            BrowserError::NotBrowser => f.write_str("not a browser mailslot datagram"),
            BrowserError::Truncated { section } => {
                write!(f, "browser datagram {section} truncated")
            }
            BrowserError::BadName => {
                f.write_str("NetBIOS datagram name is not first-level encoded")
            }
        }
    }
}

impl std::error::Error for BrowserError {}

/// A datagram's header and, when it holds one, its announcement.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NetbiosDatagram<'a> {
    pub msg_type: u8,
    /// The sender's address as the datagram states it.
    pub source_ip: Ipv4Addr,
    pub source_name: NbName<'a>,
    pub destination_name: NbName<'a>,
    pub announcement: Option<Announcement<'a>>,
}

/// A host, local master or domain announcement (MS-BRWS 2.2.2, 2.2.6,
/// 2.2.7: one layout).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Announcement<'a> {
    pub opcode: u8,
    pub periodicity_ms: u32,
    /// The announcing server's name, or the workgroup in a domain
    /// announcement; NUL padding removed.
    pub server_name: &'a [u8],
    pub os_major: u8,
    pub os_minor: u8,
    pub server_type: u32,
    /// The server's comment, or the master browser's name in a domain
    /// announcement.
    pub comment: &'a [u8],
}

/// Whether a datagram on port 138 may be a NetBIOS datagram with user data.
pub fn looks_like(b: &[u8]) -> bool {
    b.first()
        .is_some_and(|&t| (DIRECT_UNIQUE..=BROADCAST).contains(&t))
        && b.len() >= 14
}

fn truncated(section: &'static str) -> impl Fn(nom::Err<nom::error::Error<&[u8]>>) -> BrowserError {
    move |_| BrowserError::Truncated { section }
}

/// Parses a NetBIOS datagram; the announcement is `None` when the user data
/// is a mailslot write to another mailslot or another browser message.
pub fn parse(b: &[u8]) -> Result<NetbiosDatagram<'_>, BrowserError> {
    type R<'a, T> = IResult<&'a [u8], T>;
    let header: R<_> = (byte, byte, be_u16, be_u32, be_u16, be_u16, be_u16).parse(b);
    let (rest, (msg_type, _flags, _id, source_ip, _port, _len, _offset)) =
        header.map_err(truncated("header"))?;
    if !(DIRECT_UNIQUE..=BROADCAST).contains(&msg_type) {
        return Err(BrowserError::NotBrowser);
    }
    let (rest, source_name) = nbns::encoded_name(rest).map_err(|_| BrowserError::BadName)?;
    let (smb, destination_name) = nbns::encoded_name(rest).map_err(|_| BrowserError::BadName)?;
    Ok(NetbiosDatagram {
        msg_type,
        source_ip: Ipv4Addr::from(source_ip),
        source_name,
        destination_name,
        announcement: mailslot_data(smb)?.map(announcement).transpose()?.flatten(),
    })
}

/// The data of an SMB1 TRANSACTION write to `\MAILSLOT\BROWSE`.
fn mailslot_data(smb: &[u8]) -> Result<Option<&[u8]>, BrowserError> {
    type R<'a, T> = IResult<&'a [u8], T>;
    let header: R<_> = (tag(&b"\xffSMB"[..]), byte, take(27usize), byte).parse(smb);
    let (words, (_, command, _, word_count)) = header.map_err(|_| BrowserError::NotBrowser)?;
    if command != SMB_COM_TRANSACTION || word_count < 14 {
        return Err(BrowserError::NotBrowser);
    }
    let (rest, w) = take::<_, _, nom::error::Error<&[u8]>>(usize::from(word_count) * 2)(words)
        .map_err(truncated("transaction words"))?;
    // DataCount and DataOffset (from the SMB header) are words 11 and 12.
    let word = |i: usize| {
        w.get(2 * i..2 * i + 2)
            .map_or(0, |b| usize::from(u16::from_le_bytes([b[0], b[1]])))
    };
    let (data_count, data_offset) = (word(11), word(12));
    let (bytes, byte_count) =
        le_u16::<_, nom::error::Error<&[u8]>>(rest).map_err(truncated("transaction bytes"))?;
    let bytes = bytes.get(..usize::from(byte_count)).unwrap_or(bytes);
    let slot_end = bytes.iter().position(|&c| c == 0).unwrap_or(bytes.len());
    if !bytes
        .get(..slot_end)
        .is_some_and(|slot| slot.eq_ignore_ascii_case(MAILSLOT_BROWSE))
    {
        return Ok(None);
    }
    smb.get(data_offset..data_offset + data_count)
        .map(Some)
        .ok_or(BrowserError::Truncated {
            section: "mailslot data",
        })
}

fn announcement(d: &[u8]) -> Result<Option<Announcement<'_>>, BrowserError> {
    type R<'a, T> = IResult<&'a [u8], T>;
    let Some(&opcode) = d.first() else {
        return Err(BrowserError::Truncated {
            section: "browser frame",
        });
    };
    if !matches!(
        opcode,
        HOST_ANNOUNCEMENT | DOMAIN_ANNOUNCEMENT | LOCAL_MASTER_ANNOUNCEMENT
    ) {
        return Ok(None);
    }
    let fields: R<_> = (
        byte,
        byte,
        le_u32,
        take(16usize),
        byte,
        byte,
        le_u32,
        take(4usize),
    )
        .parse(d);
    let (rest, (_, _update_count, periodicity_ms, name, os_major, os_minor, server_type, _)) =
        fields.map_err(truncated("announcement"))?;
    let name_end = name.iter().position(|&c| c == 0).unwrap_or(name.len());
    // The comment is NUL-terminated, at most 43 bytes (MS-BRWS 2.2.2).
    let rest = rest.get(..rest.len().min(44)).unwrap_or(rest);
    let comment_end = rest.iter().position(|&c| c == 0).unwrap_or(rest.len());
    Ok(Some(Announcement {
        opcode,
        periodicity_ms,
        server_name: name.get(..name_end.min(15)).unwrap_or_default(),
        os_major,
        os_minor,
        server_type,
        comment: rest.get(..comment_end).unwrap_or_default(),
    }))
}

#[cfg(test)]
#[path = "browser_tests.rs"]
mod tests;
