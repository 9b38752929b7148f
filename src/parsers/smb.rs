//! SMB as far as authentication goes: the NetBIOS session service framing
//! (RFC 1002 4.3.1; direct TCP per MS-SMB2 2.1), SMB1 SESSION_SETUP_ANDX with
//! extended security (MS-SMB 2.2.4.6) and SMB2/3 SESSION_SETUP
//! (MS-SMB2 2.2.5, 2.2.6), with compound SMB2 messages followed.

use nom::bytes::complete::{tag, take};
use nom::number::complete::{le_u16, le_u32, le_u64, u8 as byte};
use nom::{IResult, Parser};

/// A NetBIOS session message larger than this is not buffered (SMB2's
/// largest negotiated transaction is 8 MiB; session setups are small).
pub const MAX_BUFFERED: usize = 1 << 20;

/// NetBIOS session packet types.
pub const NBSS_MESSAGE: u8 = 0x00;

/// Whether the first bytes of a direction are a NetBIOS session message
/// carrying SMB1/2/3, or a NetBIOS session request.
pub fn looks_like_session(b: &[u8]) -> bool {
    match b.first() {
        Some(0x00) => matches!(
            b.get(4..8),
            Some(b"\xffSMB") | Some(b"\xfeSMB") | Some(b"\xfdSMB")
        ),
        Some(0x81) => b.get(1).is_some_and(|&flags| flags <= 1) && b.len() >= 4,
        _ => false,
    }
}

/// SMB1 and SMB2 command offsets from the start of the NetBIOS message.
const SMB1_COMMAND_AT: usize = 4 + 4;
const SMB2_COMMAND_AT: usize = 4 + 12;
const SMB2_NEXT_COMMAND_AT: usize = 4 + 20;

/// Bytes of a NetBIOS message enough to tell its command (the NetBIOS
/// header and an SMB2 header with room to spare).
pub const SESSION_SETUP_PEEK: usize = 4 + 68;

/// Whether the NetBIOS message at the start of `b` may hold a session
/// setup (SMB1 SESSION_SETUP_ANDX, or SMB2 SESSION_SETUP first or anywhere
/// in a compound chain, which [`session_setups`] walks); `None` until
/// enough of its header is there. Another protocol in the message holds
/// none.
pub fn is_session_setup(b: &[u8]) -> Option<bool> {
    match b.get(4..8)? {
        b"\xffSMB" => Some(*b.get(SMB1_COMMAND_AT)? == SMB1_COM_SESSION_SETUP_ANDX),
        b"\xfeSMB" => {
            let c = b.get(SMB2_COMMAND_AT..SMB2_COMMAND_AT + 2)?;
            let next = b.get(SMB2_NEXT_COMMAND_AT..SMB2_NEXT_COMMAND_AT + 4)?;
            let compound = next.iter().any(|&x| x != 0);
            Some(u16::from_le_bytes([c[0], c[1]]) == SMB2_SESSION_SETUP || compound)
        }
        _ => Some(false),
    }
}

/// Whether the NetBIOS message at the start of `b` may hold a session setup
/// or a tree connect (the messages whose bytes are read; every other is
/// skipped without being buffered); `None` until its header is there.
pub fn is_wanted(b: &[u8]) -> Option<bool> {
    if is_session_setup(b)? {
        return Some(true);
    }
    Some(match b.get(4..8)? {
        b"\xffSMB" => *b.get(SMB1_COMMAND_AT)? == SMB1_COM_TREE_CONNECT_ANDX,
        b"\xfeSMB" => {
            let c = b.get(SMB2_COMMAND_AT..SMB2_COMMAND_AT + 2)?;
            u16::from_le_bytes([c[0], c[1]]) == SMB2_TREE_CONNECT
        }
        _ => false,
    })
}

/// Header of a NetBIOS session packet: type and length of what follows.
pub fn nbss_header(i: &[u8]) -> Option<(u8, usize)> {
    let h = i.get(..4)?;
    // Direct TCP (445) uses a 24-bit length; NBSS keeps the top 7 bits zero.
    let len = (usize::from(h[1]) << 16) | (usize::from(h[2]) << 8) | usize::from(h[3]);
    Some((h[0], len))
}

/// What a session setup message carries.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SessionSetup<'a> {
    pub dialect: Dialect,
    pub response: bool,
    /// NTSTATUS of a response.
    pub status: u32,
    /// SMB1 UID or SMB2 SessionId.
    pub session_id: u64,
    pub security_blob: &'a [u8],
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Dialect {
    Smb1,
    Smb2,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum SmbError {
    /// Not an SMB1 or SMB2 message (or an encrypted/compressed one).
    NotSmb,
    Truncated {
        structure: &'static str,
    },
}

impl std::fmt::Display for SmbError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            SmbError::NotSmb => f.write_str("not an SMB1 or SMB2 message"),
            SmbError::Truncated { structure } => write!(f, "SMB {structure} truncated"),
        }
    }
}

impl std::error::Error for SmbError {}

pub const STATUS_SUCCESS: u32 = 0;
pub const STATUS_MORE_PROCESSING_REQUIRED: u32 = 0xc000_0016;
pub const STATUS_LOGON_FAILURE: u32 = 0xc000_006d;

const SMB1_COM_SESSION_SETUP_ANDX: u8 = 0x73;
const SMB1_COM_TREE_CONNECT_ANDX: u8 = 0x75;
const SMB1_FLAGS2_UNICODE: u16 = 0x8000;
const SMB2_TREE_CONNECT: u16 = 0x0003;
/// A tree connect path is a UNC name: a few hundred bytes at most.
pub const MAX_TREE_PATH: usize = 1024;
const SMB1_FLAGS_REPLY: u8 = 0x80;
const SMB2_SESSION_SETUP: u16 = 0x0001;
const SMB2_FLAGS_SERVER_TO_REDIR: u32 = 0x0000_0001;
const SMB2_HEADER_LEN: usize = 64;
/// Compound messages followed in one NetBIOS message.
const MAX_COMPOUND: usize = 32;

/// Finds the session setups in one SMB message (the NetBIOS payload).
/// Other commands yield nothing.
pub fn session_setups(msg: &[u8]) -> Result<Vec<SessionSetup<'_>>, SmbError> {
    match msg.get(..4) {
        Some(b"\xffSMB") => Ok(smb1_session_setup(msg)?.into_iter().collect()),
        Some(b"\xfeSMB") => smb2_session_setups(msg),
        _ => Err(SmbError::NotSmb),
    }
}

fn truncated(structure: &'static str) -> impl Fn(nom::Err<nom::error::Error<&[u8]>>) -> SmbError {
    move |_| SmbError::Truncated { structure }
}

/// SMB1 header (MS-CIFS 2.2.3.1) and SESSION_SETUP_ANDX with extended
/// security: request WordCount 12, response WordCount 4.
/// The fields of an SMB1 header (MS-CIFS 2.2.3.1) that matter here.
struct Smb1Header {
    command: u8,
    status: u32,
    response: bool,
    unicode: bool,
    uid: u16,
    mid: u16,
}

fn smb1_header(msg: &[u8]) -> Result<(&[u8], Smb1Header), SmbError> {
    let header: IResult<&[u8], _> = (
        tag(&b"\xffSMB"[..]),
        byte,
        le_u32,
        byte,
        le_u16,
        take(12usize),
        le_u16,
        le_u16,
        le_u16,
        le_u16,
    )
        .parse(msg);
    let (body, (_, command, status, flags, flags2, _, _tid, _pid, uid, mid)) =
        header.map_err(truncated("SMB1 header"))?;
    Ok((
        body,
        Smb1Header {
            command,
            status,
            response: flags & SMB1_FLAGS_REPLY != 0,
            unicode: flags2 & SMB1_FLAGS2_UNICODE != 0,
            uid,
            mid,
        },
    ))
}

/// The fields of an SMB2 header (MS-SMB2 2.2.1) that matter here.
struct Smb2Header {
    status: u32,
    command: u16,
    response: bool,
    next: usize,
    message_id: u64,
    session_id: u64,
}

fn smb2_header(m: &[u8]) -> Result<(&[u8], Smb2Header), SmbError> {
    let header: IResult<&[u8], _> = (
        tag(&b"\xfeSMB"[..]),
        le_u16,
        le_u16,
        le_u32,
        le_u16,
        le_u16,
        le_u32,
        le_u32,
        le_u64,
        take(8usize),
        le_u64,
        take(16usize),
    )
        .parse(m);
    let (
        body,
        (
            _,
            _size,
            _charge,
            status,
            command,
            _credits,
            flags,
            next,
            message_id,
            _,
            session_id,
            _sig,
        ),
    ) = header.map_err(truncated("SMB2 header"))?;
    Ok((
        body,
        Smb2Header {
            status,
            command,
            response: flags & SMB2_FLAGS_SERVER_TO_REDIR != 0,
            next: next as usize,
            message_id,
            session_id,
        },
    ))
}

fn smb1_session_setup(msg: &[u8]) -> Result<Option<SessionSetup<'_>>, SmbError> {
    let (body, h) = smb1_header(msg)?;
    let (status, response, uid) = (h.status, h.response, h.uid);
    if h.command != SMB1_COM_SESSION_SETUP_ANDX {
        return Ok(None);
    }
    let (rest, word_count) =
        byte::<_, nom::error::Error<&[u8]>>(body).map_err(truncated("SESSION_SETUP_ANDX"))?;
    let (rest, words) = take::<_, _, nom::error::Error<&[u8]>>(usize::from(word_count) * 2)(rest)
        .map_err(truncated("SESSION_SETUP_ANDX words"))?;
    // The security blob length sits at a word offset that depends on the form.
    let blob_len_at = match (response, word_count) {
        (false, 12) => 14,
        (true, 4) => 6,
        // An error response has no words: its status is the verdict.
        (true, _) => {
            return Ok(Some(SessionSetup {
                dialect: Dialect::Smb1,
                response,
                status,
                session_id: u64::from(uid),
                security_blob: &[],
            }))
        }
        // The old (non-extended) request form carries passwords, not NTLMSSP.
        _ => return Ok(None),
    };
    let blob_len = words
        .get(blob_len_at..blob_len_at + 2)
        .map(|b| usize::from(u16::from_le_bytes([b[0], b[1]])))
        .ok_or(SmbError::Truncated {
            structure: "SESSION_SETUP_ANDX words",
        })?;
    let (bytes, byte_count) =
        le_u16::<_, nom::error::Error<&[u8]>>(rest).map_err(truncated("SESSION_SETUP_ANDX"))?;
    let bytes = bytes.get(..usize::from(byte_count)).unwrap_or(bytes);
    let security_blob = bytes.get(..blob_len).unwrap_or(bytes);
    Ok(Some(SessionSetup {
        dialect: Dialect::Smb1,
        response,
        status,
        session_id: u64::from(uid),
        security_blob,
    }))
}

/// SMB2 headers (MS-SMB2 2.2.1), following NextCommand through compounds.
fn smb2_session_setups(msg: &[u8]) -> Result<Vec<SessionSetup<'_>>, SmbError> {
    compound(msg, smb2_one)
}

/// Applies `one` to each SMB2 message of a compound chain (NextCommand),
/// at most [`MAX_COMPOUND`] of them, keeping what it finds.
fn compound<'a, T>(
    msg: &'a [u8],
    one: impl Fn(&'a [u8]) -> Result<(usize, Option<T>), SmbError>,
) -> Result<Vec<T>, SmbError> {
    let mut out = Vec::new();
    let mut at = 0usize;
    for _ in 0..MAX_COMPOUND {
        let Some(m) = msg.get(at..) else { break };
        let (next, found) = one(m)?;
        out.extend(found);
        if next < SMB2_HEADER_LEN {
            break;
        }
        at += next;
    }
    Ok(out)
}

fn smb2_one(m: &[u8]) -> Result<(usize, Option<SessionSetup<'_>>), SmbError> {
    type R<'a, T> = IResult<&'a [u8], T>;
    let (body, h) = smb2_header(m)?;
    let (status, next, session_id) = (h.status, h.next, h.session_id);
    if h.command != SMB2_SESSION_SETUP {
        return Ok((next, None));
    }
    let response = h.response;
    // The security buffer offset counts from the start of this header.
    let (off, len) = if response {
        let r: R<_> = (le_u16, le_u16, le_u16, le_u16).parse(body);
        let (_, (_size, _session_flags, off, len)) =
            r.map_err(truncated("SESSION_SETUP response"))?;
        (off, len)
    } else {
        let r: R<_> = (le_u16, byte, byte, le_u32, le_u32, le_u16, le_u16).parse(body);
        let (_, (_size, _flags, _mode, _caps, _channel, off, len)) =
            r.map_err(truncated("SESSION_SETUP request"))?;
        (off, len)
    };
    // Bound the buffer by this message when it is part of a compound.
    let this = if next >= SMB2_HEADER_LEN {
        m.get(..next).unwrap_or(m)
    } else {
        m
    };
    let start = usize::from(off);
    let security_blob = this.get(start..start + usize::from(len)).unwrap_or(&[]);
    Ok((
        next,
        Some(SessionSetup {
            dialect: Dialect::Smb2,
            response,
            status,
            session_id,
            security_blob,
        }),
    ))
}

/// A tree connect (MS-SMB2 2.2.9 and 2.2.10, MS-CIFS 2.2.4.55): the
/// request's path names the server as the client addresses it,
/// `\\server\share`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TreeConnect<'a> {
    pub dialect: Dialect,
    pub response: bool,
    /// NTSTATUS of a response.
    pub status: u32,
    /// SMB2 MessageId or SMB1 MID: pairs a request with its answer.
    pub message_id: u64,
    /// The request's path (empty in a response), at most
    /// [`MAX_TREE_PATH`] bytes: UTF-16LE when `unicode`, else OEM.
    pub path: &'a [u8],
    pub unicode: bool,
}

/// Finds the tree connects in one SMB message (the NetBIOS payload),
/// through SMB2 compound chains.
pub fn tree_connects(msg: &[u8]) -> Result<Vec<TreeConnect<'_>>, SmbError> {
    match msg.get(..4) {
        Some(b"\xffSMB") => Ok(smb1_tree_connect(msg)?.into_iter().collect()),
        Some(b"\xfeSMB") => compound(msg, smb2_tree_connect),
        _ => Err(SmbError::NotSmb),
    }
}

fn smb2_tree_connect(m: &[u8]) -> Result<(usize, Option<TreeConnect<'_>>), SmbError> {
    type R<'a, T> = IResult<&'a [u8], T>;
    let (body, h) = smb2_header(m)?;
    let (status, next, message_id) = (h.status, h.next, h.message_id);
    if h.command != SMB2_TREE_CONNECT {
        return Ok((next, None));
    }
    let response = h.response;
    let mut path: &[u8] = &[];
    if !response {
        let r: R<_> = (le_u16, le_u16, le_u16, le_u16).parse(body);
        let (_, (_size, _flags, off, len)) = r.map_err(truncated("TREE_CONNECT request"))?;
        let this = if next >= SMB2_HEADER_LEN {
            m.get(..next).unwrap_or(m)
        } else {
            m
        };
        let start = usize::from(off);
        let len = usize::from(len).min(MAX_TREE_PATH);
        path = this.get(start..start + len).ok_or(SmbError::Truncated {
            structure: "TREE_CONNECT path",
        })?;
    }
    Ok((
        next,
        Some(TreeConnect {
            dialect: Dialect::Smb2,
            response,
            status,
            message_id,
            path,
            unicode: true,
        }),
    ))
}

/// SMB1 TREE_CONNECT_ANDX: request WordCount 4 (AndX, Flags,
/// PasswordLength), then Password, padding to an even offset when the path
/// is Unicode, and the path.
fn smb1_tree_connect(msg: &[u8]) -> Result<Option<TreeConnect<'_>>, SmbError> {
    type R<'a, T> = IResult<&'a [u8], T>;
    let (body, h) = smb1_header(msg)?;
    let (status, response, unicode, mid) = (h.status, h.response, h.unicode, h.mid);
    if h.command != SMB1_COM_TREE_CONNECT_ANDX {
        return Ok(None);
    }
    let mut path: &[u8] = &[];
    if !response {
        let r: R<_> = (byte, take(4usize), le_u16, le_u16, le_u16).parse(body);
        let (bytes, (word_count, _andx, _flags, password_len, byte_count)) =
            r.map_err(truncated("TREE_CONNECT_ANDX"))?;
        if word_count != 4 {
            return Err(SmbError::Truncated {
                structure: "TREE_CONNECT_ANDX words",
            });
        }
        // Unicode strings are aligned on 2 bytes from the SMB header.
        let header_len = msg.len() - bytes.len();
        let bytes = bytes.get(..usize::from(byte_count)).unwrap_or(bytes);
        let mut at = usize::from(password_len);
        if unicode && (header_len + at) % 2 == 1 {
            at += 1;
        }
        let rest = bytes.get(at..).unwrap_or_default();
        let end = if unicode {
            rest.chunks_exact(2)
                .position(|c| c == [0, 0])
                .map_or(rest.len() & !1, |i| i * 2)
        } else {
            rest.iter().position(|&b| b == 0).unwrap_or(rest.len())
        };
        path = rest.get(..end.min(MAX_TREE_PATH)).unwrap_or_default();
    }
    Ok(Some(TreeConnect {
        dialect: Dialect::Smb1,
        response,
        status,
        message_id: u64::from(mid),
        path,
        unicode,
    }))
}

#[cfg(test)]
#[path = "smb_tests.rs"]
mod tests;
