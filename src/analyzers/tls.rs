//! Following a TLS handshake until it shows the server certificate or hides
//! it: records are reassembled into handshake messages (a Certificate
//! message often spans several records and many TCP segments).

use super::framing::{Frame, Framer};
use std::sync::Arc;

use serde::Serialize;

use super::protocol::{Carrier, Facts, Fallback, Protocol};
use super::{Analyzer, Ctx, Dir, EventRecord, Name, Role, Status};
use crate::parsers::tls::{self, CertSummary};
use crate::render::{hex, x509_time};
use serde_with::skip_serializing_none;

/// TLS on any port but RDP's (which the RDP analyzer follows itself).
pub const PROTOCOL: Protocol = Protocol {
    name: "tls",
    carrier: Carrier::Stream {
        client: Some(|c| tls::looks_like_client_hello(c) == Some(true)),
        server: None,
        fallback: Fallback::No,
        new: |_| Box::<TlsAnalyzer>::default(),
    },
};

/// Handshake bytes buffered per direction: a long certificate chain fits.
const MAX_HANDSHAKE: usize = 256 << 10;

/// The state of one connection's TLS handshake.
#[derive(Debug)]
pub struct Handshake {
    records: [Framer; 2],
    /// Handshake-layer bytes per direction, not yet cut into messages.
    messages: [Vec<u8>; 2],
    pub sni: Option<String>,
    pub version: Option<u16>,
    pub certificate: Option<Certificate>,
    /// The certificates after the server's own in its chain.
    pub chain: Vec<Certificate>,
    /// The client's certificate (mutual TLS).
    pub client_certificate: Option<Certificate>,
    /// The server asked for a client certificate: the client's flight is
    /// read too.
    client_cert_requested: bool,
    /// Whether the handshake can tell no more (the server's flight and, when
    /// requested, the client's certificate seen; TLS 1.3; or encrypted
    /// traffic started).
    pub done: bool,
    /// True once the server's flight became encrypted before any
    /// certificate was seen (TLS 1.3).
    pub hidden: bool,
    /// Certificate messages that could not be read, not yet reported.
    pub parse_errors: u32,
}

impl Default for Handshake {
    fn default() -> Self {
        Handshake {
            records: [
                Framer::new(tls::MAX_RECORD + tls::RECORD_HEADER_SIZE),
                Framer::new(tls::MAX_RECORD + tls::RECORD_HEADER_SIZE),
            ],
            messages: [Vec::new(), Vec::new()],
            sni: None,
            version: None,
            certificate: None,
            chain: Vec::new(),
            client_certificate: None,
            client_cert_requested: false,
            done: false,
            hidden: false,
            parse_errors: 0,
        }
    }
}

impl Handshake {
    /// Bytes held in the record and message buffers.
    pub fn buffered(&self) -> usize {
        let records: usize = self.records.iter().map(Framer::buffered).sum();
        records + self.messages.iter().map(Vec::capacity).sum::<usize>()
    }

    /// Feeds bytes of one direction. Returns false when they are not TLS.
    pub fn data(&mut self, dir: Dir, data: &[u8]) -> bool {
        let d = dir.index();
        // The framer is taken out while it hands records to `record`.
        let mut framer = std::mem::take(&mut self.records[d]);
        let mut not_tls = false;
        framer.feed(data, &mut |b: &[u8]| self.record(dir, b, &mut not_tls));
        self.records[d] = framer;
        !not_tls
    }

    /// One record at the start of `b`.
    fn record(&mut self, dir: Dir, b: &[u8], not_tls: &mut bool) -> Frame {
        if self.done {
            return Frame::Stop;
        }
        let h = match tls::record_header(b) {
            None => return Frame::Need(tls::RECORD_HEADER_SIZE),
            Some(Err(_)) => {
                *not_tls = true;
                return Frame::Stop;
            }
            Some(Ok(h)) => h,
        };
        let total = tls::RECORD_HEADER_SIZE + h.length;
        match h.content_type {
            tls::CONTENT_HANDSHAKE => {
                let Some(body) = b.get(tls::RECORD_HEADER_SIZE..total) else {
                    return Frame::Need(total);
                };
                let d = dir.index();
                if self.messages[d].len() + body.len() > MAX_HANDSHAKE {
                    return Frame::Stop;
                }
                let mut buf = std::mem::take(&mut self.messages[d]);
                buf.extend_from_slice(body);
                let mut used = 0;
                while let Some((typ, msg, n)) = tls::handshake_message(&buf[used..]) {
                    used += n;
                    self.message(dir, typ, msg);
                    if self.done {
                        break;
                    }
                }
                buf.drain(..used);
                self.messages[d] = buf;
                Frame::Consumed(total)
            }
            tls::CONTENT_CHANGE_CIPHER_SPEC | tls::CONTENT_APPLICATION_DATA
                if dir == Dir::ToClient =>
            {
                // The server's flight is encrypted from here on.
                if self.certificate.is_none() {
                    self.hidden = true;
                }
                self.done = true;
                Frame::Stop
            }
            _ => Frame::Skip(total),
        }
    }

    /// One handshake message of type `typ`.
    fn message(&mut self, dir: Dir, typ: u8, msg: &[u8]) {
        match (dir, typ) {
            (Dir::ToServer, tls::HS_CLIENT_HELLO) => {
                self.sni = tls::client_hello_sni(msg).map(crate::parsers::text::oem);
            }
            (Dir::ToClient, tls::HS_SERVER_HELLO) => {
                self.version = tls::server_hello_version(msg);
                if self.version == Some(0x0304) {
                    // Everything after the ServerHello is encrypted.
                    self.hidden = true;
                    self.done = true;
                }
            }
            (_, tls::HS_CERTIFICATE) => match tls::certificate_chain(msg) {
                Ok(ders) => {
                    let mut certs = ders.iter().map(|der| Certificate::of(der, true));
                    if let Some(mut leaf) = certs.next() {
                        leaf.chain_length = Some(ders.len());
                        if dir == Dir::ToClient {
                            self.certificate = Some(leaf);
                            self.chain.extend(certs);
                        } else {
                            self.client_certificate = Some(leaf);
                        }
                    }
                    if dir == Dir::ToServer {
                        self.done = true;
                    }
                }
                Err(_) => self.parse_errors += 1,
            },
            (Dir::ToClient, tls::HS_CERTIFICATE_REQUEST) => {
                self.client_cert_requested = true;
            }
            (Dir::ToClient, tls::HS_SERVER_HELLO_DONE) => {
                // Done, unless the client's certificate is to come.
                self.done = !self.client_cert_requested;
            }
            // The client's key exchange follows its certificate.
            (Dir::ToServer, tls::HS_CLIENT_KEY_EXCHANGE) => self.done = true,
            _ => {}
        }
    }

    /// Reports the certificate messages that could not be read.
    pub fn report_errors(&mut self, cx: &mut Ctx<'_>) {
        for _ in 0..std::mem::take(&mut self.parse_errors) {
            cx.parse_error(PROTOCOL.name);
        }
    }

    pub fn version_name(&self) -> Option<String> {
        self.version.map(tls::version_name)
    }
}

/// A TLS connection that is not RDP: reports the server certificate (the
/// detection stage keeps it only when a watched name is in it).
#[derive(Debug, Default)]
pub struct TlsAnalyzer {
    hs: Handshake,
    emitted: bool,
}

impl TlsAnalyzer {
    fn emit(&mut self, cx: &mut Ctx<'_>) {
        if self.emitted {
            return;
        }
        self.emitted = true;
        if let Some(certificate) = self.hs.certificate.take() {
            let mut certificate_chain = std::mem::take(&mut self.hs.chain);
            let chain = certificate_chain
                .iter_mut()
                .filter_map(|c| c.der.take())
                .collect();
            cx.emit(TlsRecord {
                sni: self.hs.sni.take(),
                version: self.hs.version_name(),
                certificate,
                chain,
                certificate_chain,
                client_certificate: self.hs.client_certificate.take(),
            });
        }
    }
}

impl Analyzer for TlsAnalyzer {
    fn buffered(&self) -> usize {
        self.hs.buffered()
    }

    fn data(&mut self, dir: Dir, data: &[u8], cx: &mut Ctx<'_>) -> Status {
        let tls = self.hs.data(dir, data);
        self.hs.report_errors(cx);
        if !tls || self.hs.done {
            self.emit(cx);
            return Status::Done;
        }
        Status::Continue
    }

    fn gap(&mut self, _dir: Dir, _len: u32, cx: &mut Ctx<'_>) -> Status {
        self.emit(cx);
        Status::Done
    }

    fn end(&mut self, cx: &mut Ctx<'_>) {
        self.emit(cx);
    }
}

// ---- The event ----

/// A certificate as a clear-text handshake shows it, with EVE's names:
/// `subject`, `issuerdn`, `serial` (upper-case hex pairs), `fingerprint`
/// (SHA-1, lower-case hex pairs), `notbefore`, `notafter`,
/// `subjectaltname`, and `certificate` (the DER, base64) where it is kept;
/// `subject_cn`, `issuer_cn` and `chain_length` are hostwatch's.
#[skip_serializing_none]
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Certificate {
    /// What the certificate says, described once per DER and shared by
    /// every record that carries it (a server sends the same certificate
    /// on every connection).
    #[serde(flatten)]
    pub described: Arc<Description>,
    /// Certificates in the chain the sender sent, this one included.
    pub chain_length: Option<usize>,
    /// The certificate itself (DER), written as base64.
    #[serde(rename = "certificate", serialize_with = "base64_der")]
    pub der: Option<Vec<u8>>,
}

impl std::ops::Deref for Certificate {
    type Target = Description;

    fn deref(&self) -> &Description {
        &self.described
    }
}

/// A certificate's description, EVE's fields in EVE's order.
#[skip_serializing_none]
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Description {
    pub subject: Option<String>,
    pub issuerdn: Option<String>,
    pub serial: Option<String>,
    pub fingerprint: Option<String>,
    pub notbefore: Option<String>,
    pub notafter: Option<String>,
    /// The DNS names of its subject alternative names.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub subjectaltname: Vec<String>,
    pub subject_cn: Option<String>,
    pub issuer_cn: Option<String>,
}

fn base64_der<S: serde::Serializer>(der: &Option<Vec<u8>>, s: S) -> Result<S::Ok, S::Error> {
    use base64::Engine;
    match der {
        Some(d) => s.serialize_str(&base64::engine::general_purpose::STANDARD.encode(d)),
        None => s.serialize_none(),
    }
}

/// A certificate on a TLS connection that is not RDP: EVE's `tls` with the
/// server's certificate flattened into it (`tls.subject`, ...,
/// `tls.certificate`), EVE's `tls.chain` (base64) and `tls.client`, and
/// hostwatch's `tls.certificate_chain`, the chain's certificates described.
#[skip_serializing_none]
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct TlsRecord {
    pub sni: Option<String>,
    pub version: Option<String>,
    #[serde(flatten)]
    pub certificate: Certificate,
    /// The chain after the server's own certificate, as DER in base64.
    #[serde(skip_serializing_if = "Vec::is_empty", serialize_with = "base64_chain")]
    pub chain: Vec<Vec<u8>>,
    /// The certificates after the server's own in the chain it sent.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub certificate_chain: Vec<Certificate>,
    /// The client's certificate, when the server asked for one.
    #[serde(rename = "client")]
    pub client_certificate: Option<Certificate>,
}

fn base64_chain<S: serde::Serializer>(chain: &[Vec<u8>], s: S) -> Result<S::Ok, S::Error> {
    use base64::Engine;
    s.collect_seq(
        chain
            .iter()
            .map(|d| base64::engine::general_purpose::STANDARD.encode(d)),
    )
}

impl Certificate {
    /// Whether the certificate names `name` as its subject and is issued by
    /// itself (subject and issuer equal), as RDP's and a template's are.
    pub fn self_signed_for(&self, name: &str) -> bool {
        let same = |a: &Option<String>, b: &Option<String>| a.is_some() && a == b;
        self.subject_cn
            .as_deref()
            .is_some_and(|cn| cn.eq_ignore_ascii_case(name))
            && (same(&self.subject, &self.issuerdn) || same(&self.subject_cn, &self.issuer_cn))
    }
}

/// The names a certificate carries: its subject CN (a machine's name when
/// `machine`) and its DNS SANs.
pub fn certificate_names<'a>(
    v: &mut Vec<Name<'a>>,
    c: &'a Certificate,
    (cn_path, san_path): (&'static str, &'static str),
    role: Role,
    machine: bool,
) {
    Name::push(v, cn_path, role, c.subject_cn.as_ref(), machine);
    for san in &c.subjectaltname {
        v.push(Name::of(san_path, role, san, false));
    }
}

impl EventRecord for TlsRecord {
    const EVENT_TYPE: &'static str = "tls";

    fn facts(&self, name: &Name<'_>) -> Facts {
        let own = match name.role {
            Role::Client => self.client_certificate.as_ref(),
            _ => Some(&self.certificate),
        };
        Facts {
            self_signed: own.is_some_and(|c| c.self_signed_for(name.value)),
            ..Facts::default()
        }
    }

    fn names<'a>(&'a self, v: &mut Vec<Name<'a>>) {
        let leaf = ("tls.subject_cn", "tls.subjectaltname");
        certificate_names(v, &self.certificate, leaf, Role::Server, false);
        let chain = (
            "tls.certificate_chain.subject_cn",
            "tls.certificate_chain.subjectaltname",
        );
        for c in &self.certificate_chain {
            certificate_names(v, c, chain, Role::Server, false);
        }
        if let Some(c) = &self.client_certificate {
            let client = ("tls.client.subject_cn", "tls.client.subjectaltname");
            certificate_names(v, c, client, Role::Client, false);
        }
    }

    /// Only a certificate with a watched name is written.
    fn logged_alone(&self) -> bool {
        false
    }
}

impl Certificate {
    /// Describes one DER certificate, keeping the DER itself when `keep`.
    /// A server sends the same certificate on every connection: the
    /// description of one seen lately on this thread is reused (the DER
    /// compared whole, so a collision only costs a parse).
    pub fn of(der: &[u8], keep: bool) -> Self {
        let mut c = DESCRIBED.with(|cache| cache.borrow_mut().describe(der));
        if keep {
            c.der = Some(der.to_vec());
        }
        c
    }

    /// Parses and describes one DER certificate (without the DER).
    fn describe(der: &[u8]) -> Self {
        let c: CertSummary = tls::describe_certificate(der);
        let described = Description {
            subject: c.subject,
            issuerdn: c.issuer,
            serial: c.serial.map(|s| s.to_ascii_uppercase()),
            fingerprint: Some(hex_pairs(&c.sha1)),
            notbefore: c.not_before.map(x509_time),
            notafter: c.not_after.map(x509_time),
            subjectaltname: c.san_dns,
            subject_cn: c.subject_cn,
            issuer_cn: c.issuer_cn,
        };
        Certificate {
            described: Arc::new(described),
            chain_length: None,
            der: None,
        }
    }
}

/// Certificates described lately, per thread.
const DESCRIBED_SLOTS: usize = 64;
/// Certificates larger than this are described every time (a cache slot
/// holds a copy of the DER).
const DESCRIBED_MAX_DER: usize = 8 << 10;

thread_local! {
    static DESCRIBED: std::cell::RefCell<Described> = std::cell::RefCell::new(Described::default());
}

/// A direct-mapped memo of [`Certificate::describe`]: at most
/// `DESCRIBED_SLOTS` certificates of up to `DESCRIBED_MAX_DER` bytes
/// (half a MiB per thread at most), slots chosen by a hash keyed per
/// thread.
struct Described {
    hasher: foldhash::quality::RandomState,
    slots: Vec<Option<(Box<[u8]>, Certificate)>>,
}

impl Default for Described {
    fn default() -> Self {
        Described::with_slots(DESCRIBED_SLOTS)
    }
}

impl Described {
    fn with_slots(n: usize) -> Self {
        let mut slots = Vec::new();
        slots.resize_with(n.max(1), || None);
        Described {
            hasher: Default::default(),
            slots,
        }
    }

    fn describe(&mut self, der: &[u8]) -> Certificate {
        use std::hash::BuildHasher;
        if der.len() > DESCRIBED_MAX_DER {
            return Certificate::describe(der);
        }
        let i = (self.hasher.hash_one(der) as usize) % self.slots.len().max(1);
        let Some(slot) = self.slots.get_mut(i) else {
            return Certificate::describe(der);
        };
        match slot {
            Some((seen, c)) if **seen == *der => c.clone(),
            _ => {
                let c = Certificate::describe(der);
                *slot = Some((der.into(), c.clone()));
                c
            }
        }
    }
}

/// Lower-case hex pairs joined by colons, as EVE writes fingerprints.
fn hex_pairs(bytes: &[u8]) -> String {
    let h = hex(bytes);
    let pairs: Vec<&str> = h
        .as_bytes()
        .chunks(2)
        .filter_map(|p| std::str::from_utf8(p).ok())
        .collect();
    pairs.join(":")
}

#[cfg(test)]
mod tests {
    use super::*;

    const FILESRV01: &[u8] = include_bytes!("../../fixtures/unit/filesrv01.der");

    /// Two certificates taking turns in one slot are each described as
    /// without the memo, and the slot keeps the last one.
    #[test]
    fn described_certificates_are_reused_only_for_the_same_der() {
        let mut memo = Described::with_slots(1);
        for der in [FILESRV01, crate::synth::msg::CERT, FILESRV01, FILESRV01] {
            let c = memo.describe(der);
            assert_eq!(c, Certificate::describe(der));
            assert_eq!(c.der, None);
            assert_eq!(memo.slots[0].as_ref().map(|(d, _)| &**d), Some(der));
        }
        assert_eq!(
            memo.describe(FILESRV01).subject_cn.as_deref(),
            Some("FILESRV01")
        );
        let kept = Certificate::of(FILESRV01, true);
        assert_eq!(kept.der.as_deref(), Some(FILESRV01));
        assert_eq!(Certificate::of(FILESRV01, false).der, None);
        // Larger than a slot holds: described, not kept.
        let mut big = FILESRV01.to_vec();
        big.resize(DESCRIBED_MAX_DER + 1, 0);
        assert_eq!(memo.describe(&big), Certificate::describe(&big));
        assert_eq!(memo.slots[0].as_ref().map(|(d, _)| &**d), Some(FILESRV01));
    }
}
