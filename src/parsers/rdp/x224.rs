//! TPKT (RFC 1006), X.224 (ISO 8073) TPDUs and the RDP negotiation
//! structures they carry (MS-RDPBCGR 2.2.1.1, 2.2.1.2).

use memchr::memmem;
use nom::number::complete::{le_u16, le_u32, u8 as byte};
use nom::{IResult, Parser};

use super::{invalid, short, RdpError};

pub const TPKT_VERSION: u8 = 3;
pub const TPKT_HEADER_LEN: usize = 4;

/// X.224 TPDU codes (upper nibble of the code byte).
pub const X224_CONNECTION_REQUEST: u8 = 0xe0;
pub const X224_CONNECTION_CONFIRM: u8 = 0xd0;
pub const X224_DATA: u8 = 0xf0;

/// The length of the TPKT packet at the start of `buf` (header included),
/// `None` until four bytes are there. Errors when it is not a TPKT.
pub fn tpkt_len(buf: &[u8]) -> Option<Result<usize, RdpError>> {
    let h = buf.get(..TPKT_HEADER_LEN)?;
    if h[0] != TPKT_VERSION {
        return Some(Err(invalid("TPKT", "version")));
    }
    let len = usize::from(u16::from_be_bytes([h[2], h[3]]));
    if len < TPKT_HEADER_LEN + 3 {
        return Some(Err(invalid("TPKT", "length")));
    }
    Some(Ok(len))
}

/// RDP_NEG_REQ.requestedProtocols / RDP_NEG_RSP.selectedProtocol bits.
pub mod protocol {
    pub const RDP: u32 = 0x0;
    pub const SSL: u32 = 0x1;
    pub const HYBRID: u32 = 0x2;
    pub const RDSTLS: u32 = 0x4;
    pub const HYBRID_EX: u32 = 0x8;
    pub const RDSAAD: u32 = 0x10;

    /// Names of the requested protocols; `rdp` (standard security) is
    /// listed when no bit is set.
    pub fn names(bits: u32) -> Vec<&'static str> {
        let mut v = Vec::new();
        if bits == 0 {
            v.push("rdp");
        }
        for (bit, name) in [
            (SSL, "tls"),
            (HYBRID, "hybrid"),
            (RDSTLS, "rdstls"),
            (HYBRID_EX, "hybrid_ex"),
            (RDSAAD, "rdsaad"),
        ] {
            if bits & bit != 0 {
                v.push(name);
            }
        }
        v
    }

    /// The selected protocol's name (a single value, not a set).
    pub fn selected_name(value: u32) -> String {
        match value {
            RDP => "rdp".into(),
            SSL => "tls".into(),
            HYBRID => "hybrid".into(),
            RDSTLS => "rdstls".into(),
            HYBRID_EX => "hybrid_ex".into(),
            RDSAAD => "rdsaad".into(),
            n => format!("0x{n:08x}"),
        }
    }
}

/// RDP_NEG_FAILURE codes (MS-RDPBCGR 2.2.1.2.2).
pub fn failure_name(code: u32) -> String {
    match code {
        1 => "ssl_required_by_server".into(),
        2 => "ssl_not_allowed_by_server".into(),
        3 => "ssl_cert_not_on_server".into(),
        4 => "inconsistent_flags".into(),
        5 => "hybrid_required_by_server".into(),
        6 => "ssl_with_user_auth_required_by_server".into(),
        n => format!("0x{n:08x}"),
    }
}

/// What precedes the negotiation request in a Connection Request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Cookie<'a> {
    /// `Cookie: mstshash=NAME` (NAME as sent, up to the CR LF).
    MstsHash(&'a [u8]),
    /// Any other CR LF-terminated token (a load balancer's routing token).
    RoutingToken(&'a [u8]),
}

/// RDP_NEG_REQ (MS-RDPBCGR 2.2.1.1.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NegReq {
    pub flags: u8,
    pub requested_protocols: u32,
}

/// X.224 Connection Request with its RDP payload (MS-RDPBCGR 2.2.1.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ConnectionRequest<'a> {
    pub cookie: Option<Cookie<'a>>,
    pub neg_req: Option<NegReq>,
    /// RDP_CORRELATION_INFO.correlationId.
    pub correlation_id: Option<&'a [u8]>,
}

/// The answer carried by an X.224 Connection Confirm.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NegResult {
    /// RDP_NEG_RSP: flags and the selected protocol.
    Response { flags: u8, selected_protocol: u32 },
    /// RDP_NEG_FAILURE: the failure code.
    Failure { code: u32 },
}

/// X.224 Connection Confirm (MS-RDPBCGR 2.2.1.2).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ConnectionConfirm {
    pub result: Option<NegResult>,
}

const NEG_REQ: u8 = 0x01;
const NEG_RSP: u8 = 0x02;
const NEG_FAILURE: u8 = 0x03;
const CORRELATION_INFO: u8 = 0x06;

/// The X.224 TPDU inside one TPKT packet: its code and the bytes after the
/// fixed part. `pkt` is the whole TPKT packet.
fn tpdu<'a>(pkt: &'a [u8], pdu: &'static str) -> Result<(u8, &'a [u8]), RdpError> {
    let body = pkt
        .get(TPKT_HEADER_LEN..)
        .ok_or(short(pdu, pkt.len(), TPKT_HEADER_LEN))?;
    let (&li, rest) = body
        .split_first()
        .ok_or(short(pdu, pkt.len(), TPKT_HEADER_LEN + 1))?;
    let &code = rest
        .first()
        .ok_or(short(pdu, pkt.len(), TPKT_HEADER_LEN + 2))?;
    // LI counts the TPDU header after itself; it must fit the packet.
    let header = rest
        .get(..usize::from(li))
        .ok_or(invalid(pdu, "length indicator"))?;
    Ok((
        code & 0xf0,
        if code & 0xf0 == X224_DATA {
            &rest[usize::from(li).min(rest.len())..]
        } else {
            header
        },
    ))
}

/// Parses a Connection Request TPKT packet.
pub fn connection_request(pkt: &[u8]) -> Result<ConnectionRequest<'_>, RdpError> {
    const PDU: &str = "X.224 Connection Request";
    let (code, header) = tpdu(pkt, PDU)?;
    if code != X224_CONNECTION_REQUEST {
        return Err(invalid(PDU, "TPDU code"));
    }
    // Code (1), DST-REF (2), SRC-REF (2), class (1), then the variable part.
    let mut var = header.get(6..).ok_or(short(PDU, header.len(), 6))?;
    let mut cr = ConnectionRequest {
        cookie: None,
        neg_req: None,
        correlation_id: None,
    };
    if var.starts_with(b"Cookie:") {
        let end = memmem::find(var, b"\r\n").ok_or(invalid(PDU, "cookie terminator"))?;
        let line = &var[..end];
        cr.cookie = Some(match line.strip_prefix(b"Cookie: mstshash=") {
            Some(name) => Cookie::MstsHash(name),
            None => Cookie::RoutingToken(line.strip_prefix(b"Cookie: ").unwrap_or(line)),
        });
        var = &var[end + 2..];
    }
    if var.len() >= 8 && var[0] == NEG_REQ {
        let r: IResult<&[u8], _> = (byte, byte, le_u16, le_u32).parse(var);
        if let Ok((rest, (_t, flags, 8, requested_protocols))) = r {
            cr.neg_req = Some(NegReq {
                flags,
                requested_protocols,
            });
            var = rest;
        }
    }
    // RDP_CORRELATION_INFO: type, flags, length 36, 16-byte id, 16 reserved.
    if var.len() >= 36 && var[0] == CORRELATION_INFO {
        cr.correlation_id = var.get(4..20);
    }
    Ok(cr)
}

/// Parses a Connection Confirm TPKT packet.
pub fn connection_confirm(pkt: &[u8]) -> Result<ConnectionConfirm, RdpError> {
    const PDU: &str = "X.224 Connection Confirm";
    let (code, header) = tpdu(pkt, PDU)?;
    if code != X224_CONNECTION_CONFIRM {
        return Err(invalid(PDU, "TPDU code"));
    }
    let var = header.get(6..).ok_or(short(PDU, header.len(), 6))?;
    let r: IResult<&[u8], _> = (byte, byte, le_u16, le_u32).parse(var);
    // Both structures are exactly 8 bytes long; another length is not one.
    let result = match r {
        Ok((_, (NEG_RSP, flags, 8, selected_protocol))) => Some(NegResult::Response {
            flags,
            selected_protocol,
        }),
        Ok((_, (NEG_FAILURE, _, 8, code))) => Some(NegResult::Failure { code }),
        _ => None,
    };
    Ok(ConnectionConfirm { result })
}

/// The user data of an X.224 Data TPDU (the MCS PDU), if `pkt` is one.
pub fn data(pkt: &[u8]) -> Result<&[u8], RdpError> {
    let (code, rest) = tpdu(pkt, "X.224 Data")?;
    if code != X224_DATA {
        return Err(invalid("X.224 Data", "TPDU code"));
    }
    Ok(rest)
}

/// Whether `buf` starts with a TPKT header of a plausible length around
/// an X.224 TPDU with `code` (for detection on any port).
fn looks_like_tpdu(buf: &[u8], code: u8) -> Option<bool> {
    let h = buf.get(..6)?;
    let len = usize::from(u16::from_be_bytes([h[2], h[3]]));
    Some(h[0] == TPKT_VERSION && h[1] == 0 && (11..=4096).contains(&len) && h[5] & 0xf0 == code)
}

/// Whether `buf` can be the start of an RDP connection: a Connection
/// Request.
pub fn looks_like_request(buf: &[u8]) -> Option<bool> {
    looks_like_tpdu(buf, X224_CONNECTION_REQUEST)
}

/// Whether `buf` starts with a Connection Confirm: how a server answers
/// RDP, for detection when the request was not recognised.
pub fn looks_like_confirm(buf: &[u8]) -> Option<bool> {
    looks_like_tpdu(buf, X224_CONNECTION_CONFIRM)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// mstsc's request: cookie, then RDP_NEG_REQ for TLS|HYBRID.
    const CR: &[u8] = b"\x03\x00\x00\x2b\x26\xe0\x00\x00\x00\x00\x00Cookie: mstshash=alice\r\n\x01\x00\x08\x00\x03\x00\x00\x00";

    #[test]
    fn request_with_cookie_and_neg_req() {
        assert_eq!(tpkt_len(CR), Some(Ok(0x2b)));
        assert_eq!(looks_like_request(CR), Some(true));
        let cr = connection_request(CR);
        assert_eq!(
            cr,
            Ok(ConnectionRequest {
                cookie: Some(Cookie::MstsHash(b"alice")),
                neg_req: Some(NegReq {
                    flags: 0,
                    requested_protocols: 3
                }),
                correlation_id: None,
            })
        );
        assert_eq!(protocol::names(3), vec!["tls", "hybrid"]);
        assert_eq!(protocol::names(0), vec!["rdp"]);
    }

    #[test]
    fn request_with_routing_token_and_correlation_info() {
        let mut p =
            b"\x03\x00\x00\x00\x00\xe0\x00\x00\x00\x00\x00Cookie: msts=3640205228.15629.0000\r\n"
                .to_vec();
        p.extend_from_slice(&[1, 8, 8, 0, 0x0b, 0, 0, 0]);
        p.extend_from_slice(&[6, 0, 36, 0]);
        p.extend_from_slice(&[0xab; 16]);
        p.extend_from_slice(&[0; 16]);
        let len = p.len() as u16;
        p[2..4].copy_from_slice(&len.to_be_bytes());
        p[4] = (len - 5) as u8;
        let cr = connection_request(&p).unwrap_or(ConnectionRequest {
            cookie: None,
            neg_req: None,
            correlation_id: None,
        });
        assert_eq!(
            cr.cookie,
            Some(Cookie::RoutingToken(b"msts=3640205228.15629.0000"))
        );
        assert_eq!(
            cr.neg_req,
            Some(NegReq {
                flags: 8,
                requested_protocols: 0x0b
            })
        );
        assert_eq!(cr.correlation_id, Some(&[0xab; 16][..]));
    }

    #[test]
    fn old_client_without_neg_req() {
        let p = b"\x03\x00\x00\x27\x22\xe0\x00\x00\x00\x00\x00Cookie: mstshash=Administr\r\n";
        let cr = connection_request(p);
        assert_eq!(
            cr.map(|c| (c.cookie, c.neg_req)),
            Ok((Some(Cookie::MstsHash(b"Administr")), None))
        );
    }

    #[test]
    fn malformed_requests() {
        // Cookie without CR LF.
        let p = b"\x03\x00\x00\x1a\x15\xe0\x00\x00\x00\x00\x00Cookie: mstshash=bob";
        assert_eq!(
            connection_request(p),
            Err(invalid("X.224 Connection Request", "cookie terminator"))
        );
        // Length indicator past the packet.
        let p = b"\x03\x00\x00\x0b\x7f\xe0\x00\x00\x00\x00\x00";
        assert_eq!(
            connection_request(p),
            Err(invalid("X.224 Connection Request", "length indicator"))
        );
        assert!(connection_request(b"\x03\x00").is_err());
        assert_eq!(
            tpkt_len(b"\x04\x00\x00\x10"),
            Some(Err(invalid("TPKT", "version")))
        );
        assert_eq!(
            tpkt_len(b"\x03\x00\x00\x02"),
            Some(Err(invalid("TPKT", "length")))
        );
        assert_eq!(tpkt_len(b"\x03\x00"), None);
    }

    #[test]
    fn confirms() {
        let rsp = b"\x03\x00\x00\x13\x0e\xd0\x00\x00\x12\x34\x00\x02\x1f\x08\x00\x02\x00\x00\x00";
        assert_eq!(
            connection_confirm(rsp),
            Ok(ConnectionConfirm {
                result: Some(NegResult::Response {
                    flags: 0x1f,
                    selected_protocol: 2
                })
            })
        );
        let fail = b"\x03\x00\x00\x13\x0e\xd0\x00\x00\x12\x34\x00\x03\x00\x08\x00\x02\x00\x00\x00";
        assert_eq!(
            connection_confirm(fail),
            Ok(ConnectionConfirm {
                result: Some(NegResult::Failure { code: 2 })
            })
        );
        assert_eq!(failure_name(2), "ssl_not_allowed_by_server");
        let bare = b"\x03\x00\x00\x0b\x06\xd0\x00\x00\x12\x34\x00";
        assert_eq!(
            connection_confirm(bare),
            Ok(ConnectionConfirm { result: None })
        );
    }

    #[test]
    fn data_tpdu() {
        assert_eq!(
            data(b"\x03\x00\x00\x0a\x02\xf0\x80\x7f\x65\x00"),
            Ok(&b"\x7f\x65\x00"[..])
        );
        assert!(data(b"\x03\x00\x00\x0b\x06\xd0\x00\x00\x12\x34\x00").is_err());
    }
}
