//! Following a TLS handshake until it shows the server certificate or hides
//! it: records are reassembled into handshake messages (a Certificate
//! message often spans several records and many TCP segments).

use super::framing::{Frame, Framer};
use super::{Analyzer, Ctx, Dir, Record, Status};
use crate::events::{Certificate, TlsRecord};
use crate::parsers::tls;

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
    /// Whether the handshake can tell no more (certificate seen, TLS 1.3,
    /// or encrypted traffic started).
    pub done: bool,
    /// True once the server's flight became encrypted before any
    /// certificate was seen (TLS 1.3).
    pub hidden: bool,
}

impl Default for Handshake {
    fn default() -> Self {
        Handshake {
            records: [
                Framer::new(tls::MAX_RECORD + 5),
                Framer::new(tls::MAX_RECORD + 5),
            ],
            messages: [Vec::new(), Vec::new()],
            sni: None,
            version: None,
            certificate: None,
            done: false,
            hidden: false,
        }
    }
}

impl Handshake {
    /// Feeds bytes of one direction. Returns false when they are not TLS.
    pub fn data(&mut self, dir: Dir, data: &[u8]) -> bool {
        let d = dir.index();
        let Handshake {
            records,
            messages,
            sni,
            version,
            certificate,
            done,
            hidden,
        } = self;
        let mut not_tls = false;
        records[d].feed(data, &mut |b: &[u8]| {
            if *done {
                return Frame::Stop;
            }
            let h = match tls::record_header(b) {
                None => return Frame::Need(5),
                Some(Err(_)) => {
                    not_tls = true;
                    return Frame::Stop;
                }
                Some(Ok(h)) => h,
            };
            let total = 5 + h.length;
            match h.content_type {
                tls::CONTENT_HANDSHAKE => {
                    let Some(body) = b.get(5..total) else {
                        return Frame::Need(total);
                    };
                    let buf = &mut messages[d];
                    if buf.len() + body.len() > MAX_HANDSHAKE {
                        return Frame::Stop;
                    }
                    buf.extend_from_slice(body);
                    let mut used = 0;
                    while let Some((typ, msg, n)) = tls::handshake_message(&buf[used..]) {
                        used += n;
                        match (dir, typ) {
                            (Dir::ToServer, tls::HS_CLIENT_HELLO) => {
                                *sni = tls::client_hello_sni(msg).map(crate::parsers::text::oem);
                            }
                            (Dir::ToClient, tls::HS_SERVER_HELLO) => {
                                *version = tls::server_hello_version(msg);
                                if *version == Some(0x0304) {
                                    // Everything after the ServerHello is encrypted.
                                    *hidden = true;
                                    *done = true;
                                }
                            }
                            (Dir::ToClient, tls::HS_CERTIFICATE) => {
                                if let Ok(chain) = tls::certificate_chain(msg) {
                                    if let Some(leaf) = chain.first() {
                                        let mut c = tls::describe_certificate(leaf);
                                        c.chain_length = Some(chain.len());
                                        *certificate = Some(c);
                                    }
                                }
                                *done = true;
                            }
                            (Dir::ToClient, tls::HS_SERVER_HELLO_DONE) => *done = true,
                            _ => {}
                        }
                        if *done {
                            break;
                        }
                    }
                    buf.drain(..used);
                    Frame::Consumed(total)
                }
                tls::CONTENT_CHANGE_CIPHER_SPEC | tls::CONTENT_APPLICATION_DATA
                    if dir == Dir::ToClient =>
                {
                    // The server's flight is encrypted from here on.
                    if certificate.is_none() {
                        *hidden = true;
                    }
                    *done = true;
                    Frame::Stop
                }
                _ => Frame::Skip(total),
            }
        });
        !not_tls
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
            cx.emit(Record::Tls(Box::new(TlsRecord {
                sni: self.hs.sni.take(),
                version: self.hs.version_name(),
                certificate,
            })));
        }
    }
}

impl Analyzer for TlsAnalyzer {
    fn data(&mut self, dir: Dir, data: &[u8], cx: &mut Ctx<'_>) -> Status {
        if !self.hs.data(dir, data) || self.hs.done {
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
