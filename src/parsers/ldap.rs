//! LDAP bind operations (RFC 4511 4.2, and Microsoft's "sicily" NTLM binds,
//! MS-ADTS 5.1.1.1.3): the messages that carry NTLM on an LDAP connection.

use super::der::{self, children, tlv, Tlv};

const SEQUENCE: u8 = 0x30;
const BIND_REQUEST: u8 = 0x60;
const BIND_RESPONSE: u8 = 0x61;

/// After lost bytes: the first LDAPMessage (RFC 4511 4.1.1): a SEQUENCE
/// whose first element is a messageID INTEGER of one to four bytes and
/// whose second is an APPLICATION-class protocolOp with a defined number.
pub fn resync(b: &[u8]) -> super::Resync {
    super::find_start(b, SEQUENCE, |c| {
        let total = match super::der::tlv_extent(c)? {
            Ok(n) => n,
            Err(()) => return Some(false),
        };
        let id_at = match *c.get(1)? {
            n if n < 0x80 => 2,
            n => 2 + usize::from(n & 0x7f),
        };
        let id = c.get(id_at..id_at + 2)?;
        let id_len = usize::from(id[1]);
        if id[0] != 0x02 || !(1..=4).contains(&id_len) {
            return Some(false);
        }
        let op = *c.get(id_at + 2 + id_len)?;
        Some(op & 0xc0 == 0x40 && op & 0x1f <= 25 && total > id_at + 2 + id_len)
    })
}

/// How a bind request authenticates.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BindAuth<'a> {
    Simple,
    Sasl {
        mechanism: &'a [u8],
        credentials: Option<&'a [u8]>,
    },
    SicilyPackageDiscovery,
    /// Carries an NTLM NEGOTIATE.
    SicilyNegotiate(&'a [u8]),
    /// Carries an NTLM AUTHENTICATE.
    SicilyResponse(&'a [u8]),
    Other(u8),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Op<'a> {
    BindRequest {
        name: &'a [u8],
        auth: BindAuth<'a>,
    },
    /// `matched_dn` carries the NTLM CHALLENGE in a sicily negotiate answer.
    BindResponse {
        result_code: u64,
        matched_dn: &'a [u8],
        server_sasl_creds: Option<&'a [u8]>,
    },
    Other(u8),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Message<'a> {
    pub message_id: u64,
    pub op: Op<'a>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum LdapError {
    Malformed { field: &'static str },
}

impl std::fmt::Display for LdapError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            LdapError::Malformed { field } => write!(f, "LDAP {field} is malformed"),
        }
    }
}

impl std::error::Error for LdapError {}

fn malformed(field: &'static str) -> LdapError {
    LdapError::Malformed { field }
}

/// Result codes (RFC 4511 4.1.9).
pub const RESULT_SUCCESS: u64 = 0;
pub const RESULT_SASL_BIND_IN_PROGRESS: u64 = 14;

/// Parses one LDAPMessage (a whole SEQUENCE TLV).
pub fn message(buf: &[u8]) -> Result<Message<'_>, LdapError> {
    let (_, outer) = tlv(buf).map_err(|_| malformed("LDAPMessage"))?;
    if outer.tag != SEQUENCE {
        return Err(malformed("LDAPMessage"));
    }
    let mut kids = children(outer.value);
    let id = kids.next().ok_or(malformed("messageID"))?;
    let message_id = der::uint(id.value).ok_or(malformed("messageID"))?;
    let op = kids.next().ok_or(malformed("protocolOp"))?;
    let op = match op.tag {
        BIND_REQUEST => bind_request(op)?,
        BIND_RESPONSE => bind_response(op)?,
        t => Op::Other(t),
    };
    Ok(Message { message_id, op })
}

fn bind_request(op: Tlv<'_>) -> Result<Op<'_>, LdapError> {
    let mut f = children(op.value);
    let _version = f.next().ok_or(malformed("version"))?;
    let name = f.next().ok_or(malformed("name"))?.value;
    let auth = f.next().ok_or(malformed("authentication"))?;
    let auth = match auth.tag {
        0x80 => BindAuth::Simple,
        0xa3 => {
            let mut s = children(auth.value);
            let mechanism = s.next().ok_or(malformed("mechanism"))?.value;
            BindAuth::Sasl {
                mechanism,
                credentials: s.next().map(|c| c.value),
            }
        }
        0x89 => BindAuth::SicilyPackageDiscovery,
        0x8a => BindAuth::SicilyNegotiate(auth.value),
        0x8b => BindAuth::SicilyResponse(auth.value),
        t => BindAuth::Other(t),
    };
    Ok(Op::BindRequest { name, auth })
}

fn bind_response(op: Tlv<'_>) -> Result<Op<'_>, LdapError> {
    let mut f = children(op.value);
    let result_code = f
        .next()
        .and_then(|t| der::uint(t.value))
        .ok_or(malformed("resultCode"))?;
    let matched_dn = f.next().ok_or(malformed("matchedDN"))?.value;
    let _diagnostic = f.next();
    let server_sasl_creds = f.find(|t| t.tag == 0x87).map(|t| t.value);
    Ok(Op::BindResponse {
        result_code,
        matched_dn,
        server_sasl_creds,
    })
}

/// The protocolOp tags of the requests a client sends (RFC 4511 4.2-4.14):
/// bind, unbind, search, modify, add, delete, modify DN, compare, abandon,
/// extended.
const REQUESTS: [u8; 10] = [0x60, 0x42, 0x63, 0x66, 0x68, 0x4a, 0x6c, 0x6e, 0x50, 0x77];

/// Whether `buf` starts like an LDAP request, whatever its operation (a
/// connection that starts with a search is LDAP too, and its filter values
/// must not be searched for NTLMSSP as raw bytes); for detection.
pub fn looks_like_request(buf: &[u8]) -> Option<bool> {
    let op = first_op(buf)?;
    Some(op.is_some_and(|op| REQUESTS.contains(&op)))
}

/// Whether `buf` starts like an LDAP bind request.
pub fn looks_like_bind(buf: &[u8]) -> Option<bool> {
    Some(first_op(buf)? == Some(BIND_REQUEST))
}

/// The protocolOp tag of the LDAPMessage at the start of `buf`: `None`
/// while more bytes are needed, `Some(None)` when it is not one.
fn first_op(buf: &[u8]) -> Option<Option<u8>> {
    let (&tag, _) = buf.split_first()?;
    if tag != SEQUENCE {
        return Some(None);
    }
    let len_len = match buf.get(1)? {
        b if b & 0x80 == 0 => 1,
        b => 1 + usize::from(b & 0x7f),
    };
    let id = buf.get(1 + len_len..)?;
    // messageID INTEGER (02 len value), then [APPLICATION 0].
    let (&t, rest) = id.split_first()?;
    let (&l, rest) = rest.split_first()?;
    let op = rest.get(usize::from(l))?;
    Some((t == 0x02 && (1..=4).contains(&l)).then_some(*op))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn resync_finds_an_ldap_message() {
        use crate::parsers::Resync;
        // RFC 4511 4.2: an anonymous simple bind, messageID 1.
        let bind = [
            0x30, 0x0c, 0x02, 0x01, 0x01, 0x60, 0x07, 0x02, 0x01, 0x03, 0x04, 0x00, 0x80, 0x00,
        ];
        let mut b = vec![0x41];
        // Decoys: a SEQUENCE whose first element is no INTEGER, a
        // messageID of five bytes, a universal-class operation.
        b.extend_from_slice(&[0x30, 0x05, 0x04, 0x01, 0x01, 0x60, 0x00]);
        b.extend_from_slice(&[0x30, 0x09, 0x02, 0x05, 1, 2, 3, 4, 5, 0x60, 0x00]);
        b.extend_from_slice(&[0x30, 0x05, 0x02, 0x01, 0x01, 0x04, 0x00]);
        let at = b.len();
        b.extend_from_slice(&bind);
        assert_eq!(resync(&b), Resync::At(at));
        assert_eq!(resync(&bind[..5]), Resync::Keep(5));
        // A long-form length (0x81) moves the messageID.
        let long = [0x30, 0x81, 0x05, 0x02, 0x01, 0x07, 0x42, 0x00];
        assert_eq!(resync(&long), Resync::At(0));
    }

    fn w(tag: u8, v: &[u8]) -> Vec<u8> {
        let mut o = vec![tag, v.len() as u8];
        o.extend_from_slice(v);
        o
    }

    #[test]
    fn sasl_bind_and_response() {
        let mut sasl = w(0x04, b"GSS-SPNEGO");
        sasl.extend(w(0x04, b"NTLMSSP\0\x01\0\0\0"));
        let mut req = w(0x02, &[3]);
        req.extend(w(0x04, b""));
        req.extend(w(0xa3, &sasl));
        let mut m = w(0x02, &[1]);
        m.extend(w(0x60, &req));
        let msg = w(0x30, &m);
        assert_eq!(looks_like_bind(&msg), Some(true));
        assert_eq!(
            message(&msg),
            Ok(Message {
                message_id: 1,
                op: Op::BindRequest {
                    name: b"",
                    auth: BindAuth::Sasl {
                        mechanism: b"GSS-SPNEGO",
                        credentials: Some(b"NTLMSSP\0\x01\0\0\0")
                    }
                }
            })
        );
        let mut resp = w(0x0a, &[14]);
        resp.extend(w(0x04, b""));
        resp.extend(w(0x04, b""));
        resp.extend(w(0x87, b"NTLMSSP\0\x02\0\0\0"));
        let mut m = w(0x02, &[1]);
        m.extend(w(0x61, &resp));
        let whole = w(0x30, &m);
        assert_eq!(
            message(&whole).map(|m| m.op),
            Ok(Op::BindResponse {
                result_code: 14,
                matched_dn: b"",
                server_sasl_creds: Some(b"NTLMSSP\0\x02\0\0\0")
            })
        );
    }

    #[test]
    fn sicily_and_garbage() {
        let mut req = w(0x02, &[3]);
        req.extend(w(0x04, b""));
        req.extend(w(0x8a, b"NTLMSSP\0\x01\0\0\0"));
        let mut m = w(0x02, &[2]);
        m.extend(w(0x60, &req));
        let whole = w(0x30, &m);
        let op = message(&whole).map(|m| m.op);
        assert_eq!(
            op,
            Ok(Op::BindRequest {
                name: b"",
                auth: BindAuth::SicilyNegotiate(b"NTLMSSP\0\x01\0\0\0")
            })
        );
        assert!(message(&[0x30, 0x03, 0x02, 0x05]).is_err());
        assert!(message(&[0x31, 0x00]).is_err());
        assert_eq!(looks_like_bind(b"GET /"), Some(false));
        // Any request starts an LDAP connection; a response or another
        // BER sequence does not.
        let search = w(0x30, &[w(0x02, &[7]), w(0x63, &w(0x04, b"dc=x"))].concat());
        assert_eq!(looks_like_request(&search), Some(true));
        assert_eq!(looks_like_bind(&search), Some(false));
        let entry = w(0x30, &[w(0x02, &[7]), w(0x64, &w(0x04, b"cn=x"))].concat());
        assert_eq!(looks_like_request(&entry), Some(false));
        assert_eq!(looks_like_request(&search[..3]), None);
        assert_eq!(
            looks_like_request(&w(0x30, &[w(0x02, &[]), w(0x63, b"")].concat())),
            Some(false)
        );
    }
}
