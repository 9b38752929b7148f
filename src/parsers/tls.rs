//! TLS handshake as far as a passive observer can read it (RFC 5246,
//! RFC 8446): record headers, handshake messages (which may span records),
//! ClientHello SNI, ServerHello version, and the Certificate message of
//! TLS 1.2 and older. Certificates are decoded with `x509-parser`.

use nom::bytes::complete::take;
use nom::number::complete::{be_u16, be_u24, u8 as byte};
use nom::{IResult, Parser};
use sha1::{Digest, Sha1};

pub const CONTENT_CHANGE_CIPHER_SPEC: u8 = 20;
pub const CONTENT_ALERT: u8 = 21;
pub const CONTENT_HANDSHAKE: u8 = 22;
pub const CONTENT_APPLICATION_DATA: u8 = 23;

pub const HS_CLIENT_HELLO: u8 = 1;
pub const HS_SERVER_HELLO: u8 = 2;
pub const HS_CERTIFICATE: u8 = 11;
pub const HS_CERTIFICATE_REQUEST: u8 = 13;
pub const HS_SERVER_HELLO_DONE: u8 = 14;
pub const HS_CLIENT_KEY_EXCHANGE: u8 = 16;

const EXT_SERVER_NAME: u16 = 0;
const EXT_SUPPORTED_VERSIONS: u16 = 43;

/// TLSPlaintext.length may not exceed 2^14 + 2048 (RFC 5246 6.2.3).
pub const MAX_RECORD: usize = (1 << 14) + 2048;
/// Certificates decoded from one Certificate message, at most.
const MAX_CHAIN: usize = 10;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RecordHeader {
    pub content_type: u8,
    pub version: u16,
    pub length: usize,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum TlsError {
    NotTls,
    RecordTooLong(usize),
    Malformed { message: &'static str },
}

impl std::fmt::Display for TlsError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            TlsError::NotTls => f.write_str("not a TLS record"),
            TlsError::RecordTooLong(n) => write!(f, "TLS record of {n} bytes is too long"),
            TlsError::Malformed { message } => write!(f, "TLS {message} message is malformed"),
        }
    }
}

impl std::error::Error for TlsError {}

/// A record header: type, version, length (RFC 8446 5.1).
pub const RECORD_HEADER_SIZE: usize = 5;
/// A handshake message header: type, 24-bit length (RFC 8446 4).
pub const HANDSHAKE_HEADER_SIZE: usize = 4;

/// The record header at the start of `buf`; `None` until its five bytes
/// are there.
pub fn record_header(buf: &[u8]) -> Option<Result<RecordHeader, TlsError>> {
    let h = buf.get(..RECORD_HEADER_SIZE)?;
    let content_type = h[0];
    let version = u16::from_be_bytes([h[1], h[2]]);
    let length = usize::from(u16::from_be_bytes([h[3], h[4]]));
    if !(20..=24).contains(&content_type) || h[1] != 3 {
        return Some(Err(TlsError::NotTls));
    }
    if length > MAX_RECORD {
        return Some(Err(TlsError::RecordTooLong(length)));
    }
    Some(Ok(RecordHeader {
        content_type,
        version,
        length,
    }))
}

/// Whether `buf` starts like a TLS ClientHello record (for detection).
pub fn looks_like_client_hello(buf: &[u8]) -> Option<bool> {
    let h = buf.get(..6)?;
    Some(h[0] == CONTENT_HANDSHAKE && h[1] == 3 && h[2] <= 4 && h[5] == HS_CLIENT_HELLO)
}

/// A complete handshake message at the start of `buf`: its type, body and
/// total size; `None` when more bytes are needed.
pub fn handshake_message(buf: &[u8]) -> Option<(u8, &[u8], usize)> {
    let r: IResult<&[u8], _> = (byte, be_u24).parse(buf);
    let (rest, (typ, len)) = r.ok()?;
    let body = rest.get(..len as usize)?;
    Some((typ, body, HANDSHAKE_HEADER_SIZE + len as usize))
}

/// The length a handshake message at the start of `buf` announces (header
/// included), once its header is there.
pub fn handshake_len(buf: &[u8]) -> Option<usize> {
    let h = buf.get(..HANDSHAKE_HEADER_SIZE)?;
    Some(
        HANDSHAKE_HEADER_SIZE
            + ((usize::from(h[1]) << 16) | (usize::from(h[2]) << 8) | usize::from(h[3])),
    )
}

fn extensions(i: &[u8]) -> impl Iterator<Item = (u16, &[u8])> {
    let mut data = be_u16::<_, nom::error::Error<&[u8]>>(i)
        .ok()
        .and_then(|(r, len)| r.get(..usize::from(len)))
        .unwrap_or(&[]);
    std::iter::from_fn(move || {
        let r: IResult<&[u8], _> = (be_u16, be_u16).parse(data);
        let (rest, (typ, len)) = r.ok()?;
        let v = rest.get(..usize::from(len))?;
        data = &rest[usize::from(len)..];
        Some((typ, v))
    })
}

/// The server name a ClientHello asks for (SNI host_name).
pub fn client_hello_sni(body: &[u8]) -> Option<&[u8]> {
    let r: IResult<&[u8], _> = (take(2usize), take(32usize)).parse(body);
    let (i, _) = r.ok()?;
    let (i, sid_len) = byte::<_, nom::error::Error<&[u8]>>(i).ok()?;
    let i = i.get(usize::from(sid_len)..)?;
    let (i, cs_len) = be_u16::<_, nom::error::Error<&[u8]>>(i).ok()?;
    let i = i.get(usize::from(cs_len)..)?;
    let (i, cm_len) = byte::<_, nom::error::Error<&[u8]>>(i).ok()?;
    let i = i.get(usize::from(cm_len)..)?;
    let (_, sni) = extensions(i).find(|(t, _)| *t == EXT_SERVER_NAME)?;
    // server_name_list: length, then (type 0 = host_name, length, name).
    let r: IResult<&[u8], _> = (be_u16, byte, be_u16).parse(sni);
    let (rest, (_, typ, len)) = r.ok()?;
    (typ == 0).then(|| rest.get(..usize::from(len))).flatten()
}

/// The version a ServerHello settles on: `supported_versions` when present
/// (TLS 1.3), else the legacy field.
pub fn server_hello_version(body: &[u8]) -> Option<u16> {
    let r: IResult<&[u8], _> = (be_u16, take(32usize), byte).parse(body);
    let (i, (legacy, _random, sid_len)) = r.ok()?;
    let i = i.get(usize::from(sid_len)..)?;
    // cipher_suite (2), compression_method (1), then extensions.
    let exts = i.get(3..).unwrap_or(&[]);
    let selected = extensions(exts)
        .find(|(t, _)| *t == EXT_SUPPORTED_VERSIONS)
        .and_then(|(_, v)| v.get(..2).map(|b| u16::from_be_bytes([b[0], b[1]])));
    Some(selected.unwrap_or(legacy))
}

pub fn version_name(v: u16) -> String {
    match v {
        0x0002 => "SSLv2".into(),
        0x0300 => "SSLv3".into(),
        0x0301 => "TLSv1".into(),
        0x0302 => "TLS 1.1".into(),
        0x0303 => "TLS 1.2".into(),
        0x0304 => "TLS 1.3".into(),
        v if v >> 8 == 0x7f => format!("TLS 1.3 draft-{}", v & 0xff),
        v => format!("0x{v:04x}"),
    }
}

/// The DER certificates of a (TLS 1.2 and older) Certificate message body.
pub fn certificate_chain(body: &[u8]) -> Result<Vec<&[u8]>, TlsError> {
    let malformed = TlsError::Malformed {
        message: "Certificate",
    };
    let (i, total) = be_u24::<_, nom::error::Error<&[u8]>>(body).map_err(|_| malformed)?;
    let mut list = i.get(..total as usize).ok_or(malformed)?;
    let mut chain = Vec::new();
    while !list.is_empty() && chain.len() < MAX_CHAIN {
        let (rest, len) = be_u24::<_, nom::error::Error<&[u8]>>(list).map_err(|_| malformed)?;
        let der = rest.get(..len as usize).ok_or(malformed)?;
        chain.push(der);
        list = &rest[len as usize..];
    }
    Ok(chain)
}

/// The facts of one DER certificate that matter for host names, as the
/// certificate states them (times in seconds since the epoch).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CertSummary {
    pub sha1: [u8; 20],
    pub subject_cn: Option<String>,
    pub issuer_cn: Option<String>,
    pub subject: Option<String>,
    pub issuer: Option<String>,
    pub serial: Option<String>,
    pub not_before: Option<i64>,
    pub not_after: Option<i64>,
    pub san_dns: Vec<String>,
}

/// Reads one DER certificate. A certificate x509-parser cannot read still
/// gets its fingerprint.
pub fn describe_certificate(der: &[u8]) -> CertSummary {
    let mut c = CertSummary {
        sha1: Sha1::digest(der).into(),
        ..CertSummary::default()
    };
    let Ok((_, cert)) = x509_parser::parse_x509_certificate(der) else {
        return c;
    };
    let cn = |name: &x509_parser::x509::X509Name<'_>| {
        name.iter_common_name()
            .next()
            .and_then(|a| a.as_str().ok().map(str::to_owned))
    };
    c.subject_cn = cn(cert.subject());
    c.issuer_cn = cn(cert.issuer());
    c.subject = Some(cert.subject().to_string());
    c.issuer = Some(cert.issuer().to_string());
    c.serial = Some(cert.raw_serial_as_string());
    c.not_before = Some(cert.validity().not_before.timestamp());
    c.not_after = Some(cert.validity().not_after.timestamp());
    if let Ok(Some(san)) = cert.subject_alternative_name() {
        for name in &san.value.general_names {
            if let x509_parser::extensions::GeneralName::DNSName(d) = name {
                c.san_dns.push((*d).to_owned());
            }
        }
    }
    c
}

#[cfg(test)]
#[path = "tls_tests.rs"]
mod tests;
