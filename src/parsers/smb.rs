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

/// The NetBIOS session service header (RFC 1002 4.3.1).
const NBSS_HEADER_SIZE: usize = 4;
/// The SMB2 header (MS-SMB2 2.2.1).
const SMB2_HEADER_SIZE: usize = 64;
/// SMB1 and SMB2 command offsets from the start of the NetBIOS message.
const SMB1_COMMAND_AT: usize = NBSS_HEADER_SIZE + 4;
const SMB2_COMMAND_AT: usize = NBSS_HEADER_SIZE + 12;
const SMB2_NEXT_COMMAND_AT: usize = NBSS_HEADER_SIZE + 20;

/// Bytes of a NetBIOS message enough to tell its command (the NetBIOS
/// header and an SMB2 header with room to spare).
pub const SESSION_SETUP_PEEK: usize = NBSS_HEADER_SIZE + SMB2_HEADER_SIZE + 4;

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

/// Whether the NetBIOS message at the start of `b` may hold a command
/// that is read (negotiate, session setup, tree connect, first or in an
/// SMB2 compound; an SMB1 AndX chain behind a session setup is read too);
/// every other message is skipped without being buffered. `None` until
/// its header is there.
pub fn is_wanted(b: &[u8]) -> Option<bool> {
    if is_session_setup(b)? {
        return Some(true);
    }
    Some(match b.get(4..8)? {
        b"\xffSMB" => matches!(
            *b.get(SMB1_COMMAND_AT)?,
            SMB1_COM_NEGOTIATE | SMB1_COM_TREE_CONNECT_ANDX
        ),
        b"\xfeSMB" => {
            let c = b.get(SMB2_COMMAND_AT..SMB2_COMMAND_AT + 2)?;
            matches!(
                u16::from_le_bytes([c[0], c[1]]),
                SMB2_NEGOTIATE | SMB2_TREE_CONNECT
            )
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

/// After lost bytes: the first NetBIOS session message that carries an
/// SMB header (MS-SMB2 2.2.1: protocol id, then StructureSize 64; SMB1's
/// 32-byte header; the 52-byte transform header) and whose length holds
/// it. Suricata's SMB parser resynchronises on the same marks. Searched by
/// the protocol id, so a long run of file data costs one `memmem` pass.
pub fn resync(b: &[u8]) -> super::Resync {
    use super::Resync;
    // NetBIOS header (4), protocol id (4), SMB2 StructureSize (2).
    const MARK: usize = 4 + 4 + 2;
    for i in memchr::memmem::find_iter(b, b"SMB") {
        // The id's first byte and the NetBIOS header come before "SMB".
        let Some(p) = i.checked_sub(5) else {
            continue;
        };
        let Some(h) = b.get(p..p + MARK) else {
            return Resync::Keep(b.len() - p);
        };
        let Some((NBSS_MESSAGE, len)) = nbss_header(h) else {
            continue;
        };
        let fits = match &h[4..8] {
            b"\xfeSMB" => h[8..10] == [64, 0] && len >= SMB2_HEADER_LEN,
            b"\xffSMB" => len > 32,
            b"\xfdSMB" => len > 52,
            _ => false,
        };
        if fits {
            return Resync::At(p);
        }
    }
    Resync::Keep((MARK - 1).min(b.len()))
}

/// One command of an SMB message that hostwatch reads.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Command<'a> {
    Negotiate(Negotiate<'a>),
    SessionSetup(SessionSetup<'a>),
    TreeConnect(TreeConnect<'a>),
}

/// A NEGOTIATE (MS-SMB2 2.2.3, 2.2.4; MS-CIFS 2.2.4.52): the dialects a
/// client offers (SMB1) and the one its server picks.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Negotiate<'a> {
    pub dialect: Dialect,
    pub response: bool,
    /// An SMB1 request's dialect strings (`NT LM 0.12`), at most
    /// [`MAX_DIALECTS`].
    pub offered: Vec<&'a [u8]>,
    /// A response's choice: an SMB1 dialect index into the request's
    /// list, or an SMB2 DialectRevision (`0x0311`).
    pub selected: Option<u16>,
}

/// Dialect strings of an SMB1 NEGOTIATE request kept, at most.
pub const MAX_DIALECTS: usize = 32;

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

/// An SMB2 DialectRevision as EVE writes it (`2.02` ... `3.11`, `2.??`
/// for the wildcard answer to an SMB1 negotiate), else its number.
pub fn dialect_name(revision: u16) -> String {
    match revision {
        0x0202 => "2.02".into(),
        0x0210 => "2.10".into(),
        0x0222 => "2.22".into(),
        0x0224 => "2.24".into(),
        0x02ff => "2.??".into(),
        0x0300 => "3.00".into(),
        0x0302 => "3.02".into(),
        0x0310 => "3.10".into(),
        0x0311 => "3.11".into(),
        r => r.to_string(),
    }
}

/// The name of an NTSTATUS (MS-ERREF 2.3.1) seen in logons and tree
/// connects.
pub fn status_name(status: u32) -> Option<&'static str> {
    Some(match status {
        0x0000_0000 => "STATUS_SUCCESS",
        0x0000_0103 => "STATUS_PENDING",
        0x8000_0005 => "STATUS_BUFFER_OVERFLOW",
        0x8000_0006 => "STATUS_NO_MORE_FILES",
        0xc000_0001 => "STATUS_UNSUCCESSFUL",
        0xc000_0002 => "STATUS_NOT_IMPLEMENTED",
        0xc000_000d => "STATUS_INVALID_PARAMETER",
        0xc000_000f => "STATUS_NO_SUCH_FILE",
        0xc000_0010 => "STATUS_INVALID_DEVICE_REQUEST",
        0xc000_0016 => "STATUS_MORE_PROCESSING_REQUIRED",
        0xc000_0022 => "STATUS_ACCESS_DENIED",
        0xc000_0034 => "STATUS_OBJECT_NAME_NOT_FOUND",
        0xc000_003a => "STATUS_OBJECT_PATH_NOT_FOUND",
        0xc000_005e => "STATUS_NO_LOGON_SERVERS",
        0xc000_0064 => "STATUS_NO_SUCH_USER",
        0xc000_006a => "STATUS_WRONG_PASSWORD",
        0xc000_006d => "STATUS_LOGON_FAILURE",
        0xc000_006e => "STATUS_ACCOUNT_RESTRICTION",
        0xc000_006f => "STATUS_INVALID_LOGON_HOURS",
        0xc000_0070 => "STATUS_INVALID_WORKSTATION",
        0xc000_0071 => "STATUS_PASSWORD_EXPIRED",
        0xc000_0072 => "STATUS_ACCOUNT_DISABLED",
        0xc000_009a => "STATUS_INSUFFICIENT_RESOURCES",
        0xc000_00bb => "STATUS_NOT_SUPPORTED",
        0xc000_00be => "STATUS_BAD_NETWORK_PATH",
        0xc000_00c9 => "STATUS_NETWORK_NAME_DELETED",
        0xc000_00ca => "STATUS_NETWORK_ACCESS_DENIED",
        0xc000_00cc => "STATUS_BAD_NETWORK_NAME",
        0xc000_00d0 => "STATUS_REQUEST_NOT_ACCEPTED",
        0xc000_015b => "STATUS_LOGON_TYPE_NOT_GRANTED",
        0xc000_018d => "STATUS_TRUSTED_RELATIONSHIP_FAILURE",
        0xc000_0190 => "STATUS_TRUST_FAILURE",
        0xc000_0193 => "STATUS_ACCOUNT_EXPIRED",
        0xc000_0199 => "STATUS_NOLOGON_WORKSTATION_TRUST_ACCOUNT",
        0xc000_0203 => "STATUS_USER_SESSION_DELETED",
        0xc000_0205 => "STATUS_INSUFF_SERVER_RESOURCES",
        0xc000_0224 => "STATUS_PASSWORD_MUST_CHANGE",
        0xc000_0225 => "STATUS_NOT_FOUND",
        0xc000_0234 => "STATUS_ACCOUNT_LOCKED_OUT",
        0xc000_035c => "STATUS_NETWORK_SESSION_EXPIRED",
        0xc000_0388 => "STATUS_DOWNGRADE_DETECTED",
        0xc000_0413 => "STATUS_AUTHENTICATION_FIREWALL_FAILED",
        _ => return None,
    })
}

const SMB1_COM_NEGOTIATE: u8 = 0x72;
const SMB1_COM_SESSION_SETUP_ANDX: u8 = 0x73;
const SMB1_COM_TREE_CONNECT_ANDX: u8 = 0x75;
const SMB1_FLAGS2_UNICODE: u16 = 0x8000;
const SMB2_NEGOTIATE: u16 = 0x0000;
const SMB2_TREE_CONNECT: u16 = 0x0003;
/// A tree connect path is a UNC name: a few hundred bytes at most.
pub const MAX_TREE_PATH: usize = 1024;
const SMB1_FLAGS_REPLY: u8 = 0x80;
const SMB2_SESSION_SETUP: u16 = 0x0001;
const SMB2_FLAGS_SERVER_TO_REDIR: u32 = 0x0000_0001;
const SMB2_HEADER_LEN: usize = 64;
/// Compound messages followed in one NetBIOS message.
const MAX_COMPOUND: usize = 32;

/// The commands hostwatch reads in one SMB message (the NetBIOS payload):
/// through SMB2 compound chains and SMB1 AndX chains, at most
/// [`MAX_COMPOUND`] commands. Others yield nothing.
pub fn commands(msg: &[u8]) -> Result<Vec<Command<'_>>, SmbError> {
    match msg.get(..4) {
        Some(b"\xffSMB") => smb1_commands(msg),
        Some(b"\xfeSMB") => compound(msg, smb2_one),
        _ => Err(SmbError::NotSmb),
    }
}

/// The session setups of one SMB message.
pub fn session_setups(msg: &[u8]) -> Result<Vec<SessionSetup<'_>>, SmbError> {
    Ok(commands(msg)?
        .into_iter()
        .filter_map(|c| match c {
            Command::SessionSetup(s) => Some(s),
            _ => None,
        })
        .collect())
}

/// The tree connects of one SMB message.
pub fn tree_connects(msg: &[u8]) -> Result<Vec<TreeConnect<'_>>, SmbError> {
    Ok(commands(msg)?
        .into_iter()
        .filter_map(|c| match c {
            Command::TreeConnect(t) => Some(t),
            _ => None,
        })
        .collect())
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
    tid: u16,
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
    let (body, (_, command, status, flags, flags2, _, tid, _pid, uid, mid)) =
        header.map_err(truncated("SMB1 header"))?;
    Ok((
        body,
        Smb1Header {
            command,
            status,
            response: flags & SMB1_FLAGS_REPLY != 0,
            unicode: flags2 & SMB1_FLAGS2_UNICODE != 0,
            tid,
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
    tree_id: u32,
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
        le_u32,
        le_u32,
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
            _reserved,
            tree_id,
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
            tree_id,
            session_id,
        },
    ))
}

/// SMB1 commands that carry an AndX block (MS-CIFS 2.2.3.4): the next
/// command of the chain and its offset from the SMB header.
fn is_andx(command: u8) -> bool {
    matches!(
        command,
        SMB1_COM_SESSION_SETUP_ANDX | SMB1_COM_TREE_CONNECT_ANDX
    ) || matches!(command, 0x2d | 0x2e | 0x2f | 0x74 | 0xa2)
}

/// An SMB1 message: its first command and the commands its AndX chain
/// carries (a null session's SESSION_SETUP_ANDX with a TREE_CONNECT_ANDX
/// behind it). Each link must lie further on than the one before.
fn smb1_commands(msg: &[u8]) -> Result<Vec<Command<'_>>, SmbError> {
    let (body, h) = smb1_header(msg)?;
    let mut out = Vec::new();
    let mut command = h.command;
    let mut at = msg.len() - body.len();
    for _ in 0..MAX_COMPOUND {
        let Some(block) = msg.get(at..) else { break };
        match command {
            SMB1_COM_NEGOTIATE => out.extend(smb1_negotiate(block, &h)?.map(Command::Negotiate)),
            SMB1_COM_SESSION_SETUP_ANDX => {
                out.extend(smb1_session_setup(block, &h)?.map(Command::SessionSetup))
            }
            SMB1_COM_TREE_CONNECT_ANDX => {
                out.extend(smb1_tree_connect(msg, block, &h)?.map(Command::TreeConnect))
            }
            _ => {}
        }
        if !is_andx(command) {
            break;
        }
        // WordCount, then AndXCommand, AndXReserved, AndXOffset.
        let andx: IResult<&[u8], _> = (byte, byte, byte, le_u16).parse(block);
        let Ok((_, (word_count, next, _, offset))) = andx else {
            break;
        };
        let offset = usize::from(offset);
        if word_count < 2 || next == 0xff || offset <= at || offset >= msg.len() {
            break;
        }
        command = next;
        at = offset;
    }
    Ok(out)
}

/// SMB1 NEGOTIATE: a request's dialect strings (each `0x02 name NUL`), a
/// response's dialect index.
fn smb1_negotiate<'a>(block: &'a [u8], h: &Smb1Header) -> Result<Option<Negotiate<'a>>, SmbError> {
    let (rest, word_count) =
        byte::<_, nom::error::Error<&[u8]>>(block).map_err(truncated("NEGOTIATE"))?;
    let (rest, words) = take::<_, _, nom::error::Error<&[u8]>>(usize::from(word_count) * 2)(rest)
        .map_err(truncated("NEGOTIATE words"))?;
    if h.response {
        let selected = words.get(..2).map(|w| u16::from_le_bytes([w[0], w[1]]));
        return Ok(Some(Negotiate {
            dialect: Dialect::Smb1,
            response: true,
            offered: Vec::new(),
            selected,
        }));
    }
    let (bytes, byte_count) =
        le_u16::<_, nom::error::Error<&[u8]>>(rest).map_err(truncated("NEGOTIATE"))?;
    let bytes = bytes.get(..usize::from(byte_count)).unwrap_or(bytes);
    let offered = bytes
        .split(|&b| b == 0)
        .filter_map(|d| d.strip_prefix(&[0x02]))
        .take(MAX_DIALECTS)
        .collect();
    Ok(Some(Negotiate {
        dialect: Dialect::Smb1,
        response: false,
        offered,
        selected: None,
    }))
}

/// SESSION_SETUP_ANDX with extended security: request WordCount 12,
/// response WordCount 4; `block` starts at its WordCount.
fn smb1_session_setup<'a>(
    block: &'a [u8],
    h: &Smb1Header,
) -> Result<Option<SessionSetup<'a>>, SmbError> {
    let (status, response, uid) = (h.status, h.response, h.uid);
    let (rest, word_count) =
        byte::<_, nom::error::Error<&[u8]>>(block).map_err(truncated("SESSION_SETUP_ANDX"))?;
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

/// One SMB2 message of a compound: its header (MS-SMB2 2.2.1), then the
/// command's body when it is one that is read.
fn smb2_one(m: &[u8]) -> Result<(usize, Option<Command<'_>>), SmbError> {
    let (body, h) = smb2_header(m)?;
    // A body's offsets count from the start of this header, and end where
    // the next message of a compound begins.
    let this = if h.next >= SMB2_HEADER_LEN {
        m.get(..h.next).unwrap_or(m)
    } else {
        m
    };
    let command = match h.command {
        SMB2_NEGOTIATE => smb2_negotiate(body, &h).map(Command::Negotiate),
        SMB2_SESSION_SETUP => Some(Command::SessionSetup(smb2_session_setup(this, body, &h)?)),
        SMB2_TREE_CONNECT => Some(Command::TreeConnect(smb2_tree_connect(this, body, &h)?)),
        _ => None,
    };
    Ok((h.next, command))
}

/// NEGOTIATE response (MS-SMB2 2.2.4): StructureSize, SecurityMode,
/// DialectRevision. A request offers a list the response settles.
fn smb2_negotiate<'a>(body: &'a [u8], h: &Smb2Header) -> Option<Negotiate<'a>> {
    let selected = if h.response {
        let r: IResult<&[u8], _> = (le_u16, le_u16, le_u16).parse(body);
        Some(r.ok()?.1 .2)
    } else {
        None
    };
    Some(Negotiate {
        dialect: Dialect::Smb2,
        response: h.response,
        offered: Vec::new(),
        selected,
    })
}

/// SESSION_SETUP request and response (MS-SMB2 2.2.5, 2.2.6).
fn smb2_session_setup<'a>(
    this: &'a [u8],
    body: &'a [u8],
    h: &Smb2Header,
) -> Result<SessionSetup<'a>, SmbError> {
    type R<'a, T> = IResult<&'a [u8], T>;
    let (off, len) = if h.response {
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
    let start = usize::from(off);
    let security_blob = this.get(start..start + usize::from(len)).unwrap_or(&[]);
    Ok(SessionSetup {
        dialect: Dialect::Smb2,
        response: h.response,
        status: h.status,
        session_id: h.session_id,
        security_blob,
    })
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
    /// SMB1 UID or SMB2 SessionId.
    pub session_id: u64,
    /// SMB1 TID or SMB2 TreeId (a response's: the tree it opened).
    pub tree_id: u32,
    /// What a response says was opened: `file`, `pipe`, `print` (SMB2
    /// ShareType; SMB1 Service `A:`, `IPC`, `LPT1:`).
    pub share_type: Option<ShareType>,
}

/// The kind of share a tree connect opened.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ShareType {
    File,
    Pipe,
    Print,
    Other(u8),
}

/// TREE_CONNECT request (MS-SMB2 2.2.9: its path) and response
/// (2.2.10: the share type).
fn smb2_tree_connect<'a>(
    this: &'a [u8],
    body: &'a [u8],
    h: &Smb2Header,
) -> Result<TreeConnect<'a>, SmbError> {
    type R<'a, T> = IResult<&'a [u8], T>;
    let mut path: &[u8] = &[];
    let mut share_type = None;
    if h.response {
        let r: R<_> = (le_u16, byte).parse(body);
        if let Ok((_, (_size, kind))) = r {
            share_type = Some(match kind {
                1 => ShareType::File,
                2 => ShareType::Pipe,
                3 => ShareType::Print,
                k => ShareType::Other(k),
            });
        }
    } else {
        let r: R<_> = (le_u16, le_u16, le_u16, le_u16).parse(body);
        let (_, (_size, _flags, off, len)) = r.map_err(truncated("TREE_CONNECT request"))?;
        let start = usize::from(off);
        let len = usize::from(len).min(MAX_TREE_PATH);
        path = this.get(start..start + len).ok_or(SmbError::Truncated {
            structure: "TREE_CONNECT path",
        })?;
    }
    Ok(TreeConnect {
        dialect: Dialect::Smb2,
        response: h.response,
        status: h.status,
        message_id: h.message_id,
        path,
        unicode: true,
        session_id: h.session_id,
        tree_id: h.tree_id,
        share_type,
    })
}

/// SMB1 TREE_CONNECT_ANDX: request WordCount 4 (AndX, Flags,
/// PasswordLength), then Password, padding to an even offset from the SMB
/// header when the path is Unicode, and the path; a response's Service
/// string (`A:`, `IPC`, `LPT1:`). `block` starts at its WordCount, within
/// `msg`.
fn smb1_tree_connect<'a>(
    msg: &'a [u8],
    block: &'a [u8],
    h: &Smb1Header,
) -> Result<Option<TreeConnect<'a>>, SmbError> {
    type R<'a, T> = IResult<&'a [u8], T>;
    let (status, response, unicode, mid) = (h.status, h.response, h.unicode, h.mid);
    let mut path: &[u8] = &[];
    let mut share_type = None;
    if !response {
        let r: R<_> = (byte, take(4usize), le_u16, le_u16, le_u16).parse(block);
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
    } else {
        // WordCount, words, ByteCount, then the Service (OEM, NUL-ended).
        let r: R<_> = byte.parse(block);
        if let Ok((rest, word_count)) = r {
            let service = rest
                .get(usize::from(word_count) * 2 + 2..)
                .and_then(|b| b.split(|&c| c == 0).next())
                .unwrap_or_default();
            share_type = match service {
                b"" => None,
                b"IPC" => Some(ShareType::Pipe),
                b"A:" => Some(ShareType::File),
                s if s.starts_with(b"LPT") => Some(ShareType::Print),
                _ => Some(ShareType::Other(0)),
            };
        }
    }
    Ok(Some(TreeConnect {
        dialect: Dialect::Smb1,
        response,
        status,
        message_id: u64::from(mid),
        path,
        unicode,
        session_id: u64::from(h.uid),
        tree_id: u32::from(h.tid),
        share_type,
    }))
}

#[cfg(test)]
#[path = "smb_tests.rs"]
mod tests;
