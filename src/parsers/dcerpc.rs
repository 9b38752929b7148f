//! Connection-oriented DCE/RPC PDUs (C706 chapter 12, MS-RPCE 2.2.2): the
//! common header and the authentication verifier (sec_trailer) of bind,
//! alter_context, auth3 and their answers.

/// PDU types (C706 12.6.4).
pub mod ptype {
    pub const REQUEST: u8 = 0;
    pub const RESPONSE: u8 = 2;
    pub const FAULT: u8 = 3;
    pub const BIND: u8 = 11;
    pub const BIND_ACK: u8 = 12;
    pub const BIND_NAK: u8 = 13;
    pub const ALTER_CONTEXT: u8 = 14;
    pub const ALTER_CONTEXT_RESP: u8 = 15;
    pub const AUTH3: u8 = 16;
    /// The highest type defined: RTS (MS-RPCH 2.2.3.1), after C706's 19.
    pub const MAX: u8 = 20;
}

/// auth_type values (MS-RPCE 2.2.1.1.7).
pub const AUTH_SPNEGO: u8 = 9;
pub const AUTH_NTLMSSP: u8 = 10;

pub const HEADER_LEN: usize = 16;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Header {
    pub ptype: u8,
    pub flags: u8,
    pub little_endian: bool,
    pub frag_len: u16,
    pub auth_len: u16,
    pub call_id: u32,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum RpcError {
    NotRpc,
    InvalidField { field: &'static str },
}

impl std::fmt::Display for RpcError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            RpcError::NotRpc => f.write_str("not a connection-oriented DCE/RPC PDU"),
            RpcError::InvalidField { field } => write!(f, "DCE/RPC {field} is invalid"),
        }
    }
}

impl std::error::Error for RpcError {}

/// The common header at the start of `buf`; `None` until 16 bytes are there.
pub fn header(buf: &[u8]) -> Option<Result<Header, RpcError>> {
    let h = buf.get(..HEADER_LEN)?;
    if h[0] != 5 || h[1] > 1 {
        return Some(Err(RpcError::NotRpc));
    }
    let little_endian = h[4] & 0x10 != 0;
    let u16_at = |i: usize| {
        if little_endian {
            u16::from_le_bytes([h[i], h[i + 1]])
        } else {
            u16::from_be_bytes([h[i], h[i + 1]])
        }
    };
    let call_id = if little_endian {
        u32::from_le_bytes([h[12], h[13], h[14], h[15]])
    } else {
        u32::from_be_bytes([h[12], h[13], h[14], h[15]])
    };
    let hdr = Header {
        ptype: h[2],
        flags: h[3],
        little_endian,
        frag_len: u16_at(8),
        auth_len: u16_at(10),
        call_id,
    };
    if usize::from(hdr.frag_len) < HEADER_LEN {
        return Some(Err(RpcError::InvalidField {
            field: "frag_length",
        }));
    }
    Some(Ok(hdr))
}

/// Whether `buf` starts like a client's first PDU (bind or alter_context).
pub fn looks_like_bind(buf: &[u8]) -> Option<bool> {
    let h = buf.get(..HEADER_LEN)?;
    Some(
        h[0] == 5
            && h[1] == 0
            && matches!(h[2], ptype::BIND | ptype::ALTER_CONTEXT)
            && h[4] & 0xe0 == 0,
    )
}

/// After lost bytes: the first connection-oriented PDU header (C706 12.6.3):
/// version 5.0 or 5.1, a known PDU type, a data representation whose
/// integer and character formats are defined, zero padding, and a
/// fragment length that holds the header and the auth verifier.
pub fn resync(b: &[u8]) -> super::Resync {
    super::find_start(b, 5, |c| {
        let h = c.get(..HEADER_LEN)?;
        let le = h[4] & 0x10 != 0;
        let u16_at = |i: usize| {
            let v = [h[i], h[i + 1]];
            usize::from(if le {
                u16::from_le_bytes(v)
            } else {
                u16::from_be_bytes(v)
            })
        };
        let (frag, auth) = (u16_at(8), u16_at(10));
        Some(
            h[1] <= 1
                && h[2] <= ptype::MAX
                && h[4] & 0xee == 0
                && h[5] <= 3
                && h[6..8] == [0, 0]
                && frag >= HEADER_LEN
                && (auth == 0 || HEADER_LEN + 8 + auth <= frag),
        )
    })
}

/// The authentication verifier (sec_trailer and auth value).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AuthVerifier<'a> {
    pub auth_type: u8,
    pub auth_level: u8,
    pub context_id: u32,
    pub value: &'a [u8],
}

/// The verifier at the end of a whole PDU (`pdu` is `frag_len` bytes).
pub fn auth_verifier<'a>(pdu: &'a [u8], h: &Header) -> Option<AuthVerifier<'a>> {
    if h.auth_len == 0 {
        return None;
    }
    let end = usize::from(h.frag_len).min(pdu.len());
    let start = end.checked_sub(usize::from(h.auth_len) + 8)?;
    if start < HEADER_LEN {
        return None;
    }
    let t = &pdu[start..end];
    let context_id = if h.little_endian {
        u32::from_le_bytes([t[4], t[5], t[6], t[7]])
    } else {
        u32::from_be_bytes([t[4], t[5], t[6], t[7]])
    };
    Some(AuthVerifier {
        auth_type: t[0],
        auth_level: t[1],
        context_id,
        value: &t[8..],
    })
}

/// The status of a fault PDU.
pub fn fault_status(pdu: &[u8], h: &Header) -> Option<u32> {
    let b = pdu.get(24..28)?;
    Some(if h.little_endian {
        u32::from_le_bytes([b[0], b[1], b[2], b[3]])
    } else {
        u32::from_be_bytes([b[0], b[1], b[2], b[3]])
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pdu(ptype: u8, body: &[u8], auth: &[u8]) -> Vec<u8> {
        let frag = HEADER_LEN + body.len() + if auth.is_empty() { 0 } else { 8 + auth.len() };
        let mut p = vec![5, 0, ptype, 3, 0x10, 0, 0, 0];
        p.extend_from_slice(&(frag as u16).to_le_bytes());
        p.extend_from_slice(&(auth.len() as u16).to_le_bytes());
        p.extend_from_slice(&7u32.to_le_bytes());
        p.extend_from_slice(body);
        if !auth.is_empty() {
            p.extend_from_slice(&[AUTH_NTLMSSP, 2, 0, 0, 0, 0, 0, 0]);
            p.extend_from_slice(auth);
        }
        p
    }

    #[test]
    fn resync_finds_a_pdu_header_whose_fields_are_defined() {
        use crate::parsers::Resync;
        // C706 12.6.3.1: 05 00 0b 03, drep 10 00 00 00, frag 0x48, auth 0.
        let bind = [5, 0, 0x0b, 3, 0x10, 0, 0, 0, 0x48, 0, 0, 0, 1, 0, 0, 0];
        let mut b = vec![0x41, 5, 7, 0x0b];
        // Decoys: minor version 7 above, then an undefined type, a drep
        // with reserved bits, a fragment too short for its header and one
        // too short for its verifier.
        b.extend_from_slice(&[5, 0, 0x30, 3, 0x10, 0, 0, 0, 0x48, 0, 0, 0, 1, 0, 0, 0]);
        b.extend_from_slice(&[5, 0, 0x0b, 3, 0x12, 0, 0, 0, 0x48, 0, 0, 0, 1, 0, 0, 0]);
        b.extend_from_slice(&[5, 0, 0x0b, 3, 0x10, 0, 0, 0, 0x0f, 0, 0, 0, 1, 0, 0, 0]);
        b.extend_from_slice(&[5, 0, 0x0b, 3, 0x10, 0, 0, 0, 0x48, 0, 0x40, 0, 1, 0, 0, 0]);
        let at = b.len();
        b.extend_from_slice(&bind);
        assert_eq!(resync(&b), Resync::At(at));
        assert_eq!(resync(&bind[..15]), Resync::Keep(15));
        let big_endian = [5, 0, 0, 3, 0, 0, 0, 0, 0, 0x18, 0, 0, 0, 0, 0, 1];
        assert_eq!(resync(&big_endian), Resync::At(0));
    }

    #[test]
    fn bind_with_ntlm_verifier() {
        let p = pdu(ptype::BIND, &[0; 12], b"NTLMSSP\0\x01\0\0\0");
        assert_eq!(looks_like_bind(&p), Some(true));
        let Some(Ok(h)) = header(&p) else {
            panic!("header")
        };
        assert_eq!(
            (h.ptype, h.frag_len as usize, h.auth_len, h.call_id),
            (ptype::BIND, p.len(), 12, 7)
        );
        let v = auth_verifier(&p, &h);
        assert_eq!(
            v,
            Some(AuthVerifier {
                auth_type: AUTH_NTLMSSP,
                auth_level: 2,
                context_id: 0,
                value: b"NTLMSSP\0\x01\0\0\0"
            })
        );
    }

    #[test]
    fn lying_lengths() {
        let mut p = pdu(ptype::AUTH3, &[0; 4], b"abcd");
        // auth_len larger than the PDU.
        p[10] = 0xff;
        let Some(Ok(h)) = header(&p) else {
            panic!("header")
        };
        assert_eq!(auth_verifier(&p, &h), None);
        p[8] = 3;
        p[9] = 0;
        assert_eq!(
            header(&p),
            Some(Err(RpcError::InvalidField {
                field: "frag_length"
            }))
        );
        assert_eq!(header(b"GET / HTTP/1.1\r\n"), Some(Err(RpcError::NotRpc)));
        assert_eq!(header(&[5, 0, 11]), None);
    }

    #[test]
    fn fault() {
        let mut body = vec![0u8; 8];
        body.extend_from_slice(&5u32.to_le_bytes());
        let p = pdu(ptype::FAULT, &body, &[]);
        let Some(Ok(h)) = header(&p) else {
            panic!("header")
        };
        assert_eq!(fault_status(&p, &h), Some(5));
    }
}
