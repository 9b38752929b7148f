//! The RDP connection sequence of one connection: X.224 Connection Request
//! and Confirm, then either standard RDP security (MCS Connect-Initial and
//! Connect-Response in clear) or a TLS handshake (server certificate). One
//! `rdp` record per connection, emitted as soon as the handshake can tell
//! no more, or when the flow ends.

use super::framing::{Frame, Framer};
use super::tls::Handshake;
use serde::Serialize;

use super::protocol::{Carrier, Facts, Fallback, Protocol};
use super::tls::{certificate_names, Certificate};
use super::{Analyzer, Ctx, Dir, EventRecord, Name, Role, Status};
use crate::parsers::rdp::gcc::{self, ServerCertificate};
use crate::parsers::rdp::{mcs, x224};
use crate::parsers::text::{oem, utf16le_lossy};
use crate::parsers::tls::describe_certificate;
use crate::render::hex;

/// Largest TPKT packet buffered (a Connect-Initial is well under this).
const MAX_TPKT: usize = 65_535;

/// RDP: an X.224 Connection Request, or the server's Connection Confirm
/// (a malformed request still gets its answer).
pub const PROTOCOL: Protocol = Protocol {
    name: "rdp",
    carrier: Carrier::Stream {
        client: Some(|c| x224::looks_like_request(c) == Some(true)),
        server: Some(|s| x224::looks_like_confirm(s) == Some(true)),
        fallback: Fallback::No,
        new: |proxy| Box::new(RdpAnalyzer::new(proxy)),
    },
};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    /// Waiting for the Connection Request / Confirm.
    Negotiation,
    /// Standard RDP security: MCS Connect-Initial / Response in clear.
    Mcs,
    /// TLS (or CredSSP, RDSTLS) follows the confirm.
    Tls,
    Done,
}

#[derive(Debug)]
pub struct RdpAnalyzer {
    tpkt: [Framer; 2],
    phase: Phase,
    rec: RdpRecord,
    tls: Handshake,
    seen_request: bool,
    seen_confirm: bool,
    emitted: bool,
}

impl RdpAnalyzer {
    /// `proxy` names the proxy handshake the connection went through first.
    pub fn new(proxy: Option<&'static str>) -> Self {
        RdpAnalyzer {
            tpkt: [Framer::new(MAX_TPKT), Framer::new(MAX_TPKT)],
            phase: Phase::Negotiation,
            rec: RdpRecord {
                proxy,
                ..RdpRecord::default()
            },
            tls: Handshake::default(),
            seen_request: false,
            seen_confirm: false,
            emitted: false,
        }
    }

    fn emit(&mut self, cx: &mut Ctx<'_>) {
        if self.emitted || !(self.seen_request || self.seen_confirm) {
            return;
        }
        self.emitted = true;
        self.phase = Phase::Done;
        if self.tls.version.is_some() {
            self.rec.tls_version = self.tls.version_name();
        }
        if let Some(cert) = self.tls.certificate.take() {
            let server = self.rec.server.get_or_insert_with(RdpServer::default);
            server.certificate = Some(cert);
            server.certificate_chain = std::mem::take(&mut self.tls.chain);
            self.rec.client_certificate = self.tls.client_certificate.take();
            self.rec.certificate_visible = Some(true);
        } else if self.tls.hidden {
            self.rec.certificate_visible = Some(false);
        }
        cx.emit(std::mem::take(&mut self.rec));
    }

    fn request(&mut self, pkt: &[u8], cx: &mut Ctx<'_>) {
        self.seen_request = true;
        let Ok(cr) = x224::connection_request(pkt) else {
            cx.parse_error(PROTOCOL.name);
            return;
        };
        match cr.cookie {
            Some(x224::Cookie::MstsHash(c)) => {
                self.rec.cookie = Some(oem(c));
                if !c.iter().all(|b| b.is_ascii_graphic() || *b == b' ') {
                    self.rec.cookie_hex = Some(hex(c));
                }
            }
            Some(x224::Cookie::RoutingToken(t)) => self.rec.routing_token = Some(oem(t)),
            None => {}
        }
        if let Some(n) = cr.neg_req {
            self.rec.requested_protocols = Some(x224::protocol::names(n.requested_protocols));
            self.rec.request_flags = Some(n.flags);
        }
        self.rec.correlation_id = cr.correlation_id.map(hex);
    }

    /// Returns the phase that follows the confirm.
    fn confirm(&mut self, pkt: &[u8], cx: &mut Ctx<'_>) -> Phase {
        self.seen_confirm = true;
        let Ok(cc) = x224::connection_confirm(pkt) else {
            cx.parse_error(PROTOCOL.name);
            return Phase::Done;
        };
        match cc.result {
            Some(x224::NegResult::Response {
                selected_protocol, ..
            }) => {
                self.rec.selected_protocol = Some(x224::protocol::selected_name(selected_protocol));
                if selected_protocol == x224::protocol::RDP {
                    Phase::Mcs
                } else {
                    Phase::Tls
                }
            }
            Some(x224::NegResult::Failure { code }) => {
                self.rec.negotiation_failure = Some(x224::failure_name(code));
                Phase::Done
            }
            // An old server that does not negotiate: standard security.
            None => Phase::Mcs,
        }
    }

    fn connect_initial(&mut self, pkt: &[u8], cx: &mut Ctx<'_>) {
        let Ok(blocks) = x224::data(pkt).and_then(mcs::connect_initial_user_data) else {
            cx.parse_error(PROTOCOL.name);
            return;
        };
        let cd = gcc::client_data(blocks);
        let mut c = RdpClient::default();
        if let Some(core) = cd.core {
            let (name, lossy) = utf16le_lossy(core.client_name);
            c.name = (!name.is_empty()).then_some(name);
            if lossy {
                c.name_hex = Some(hex(core.client_name));
            }
            c.version = Some(format!("{}.{}", core.version & 0xffff, core.version >> 16));
            c.build = Some(core.client_build);
            c.desktop_width = Some(core.desktop_width);
            c.desktop_height = Some(core.desktop_height);
            c.keyboard_layout = Some(core.keyboard_layout);
            c.keyboard_type = Some(core.keyboard_type);
            c.keyboard_subtype = Some(core.keyboard_subtype);
            c.product_id = core.client_product_id;
            c.dig_product_id = core
                .dig_product_id
                .map(|d| utf16le_lossy(d).0)
                .filter(|s| !s.is_empty());
            c.color_depth = core.high_color_depth;
            c.early_capability_flags = core.early_capability_flags;
            c.connection_type = core.connection_type;
            c.server_selected_protocol = core.server_selected_protocol;
        }
        c.encryption_methods = cd.encryption_methods;
        if !cd.channels.is_empty() {
            c.channels = Some(cd.channels.iter().map(|n| oem(n)).collect());
        }
        c.cluster_flags = cd.cluster_flags;
        c.monitor_count = cd.monitor_count;
        self.rec.client = Some(c);
    }

    fn connect_response(&mut self, pkt: &[u8], cx: &mut Ctx<'_>) {
        let Ok((_result, blocks)) = x224::data(pkt).and_then(mcs::connect_response_user_data)
        else {
            cx.parse_error(PROTOCOL.name);
            return;
        };
        let sd = gcc::server_data(blocks);
        let s = self.rec.server.get_or_insert_with(RdpServer::default);
        s.version = sd.version.map(|v| format!("{}.{}", v & 0xffff, v >> 16));
        s.client_requested_protocols = sd.client_requested_protocols;
        s.encryption_method = sd.encryption_method;
        s.encryption_level = sd.encryption_level;
        match sd.certificate {
            Some(ServerCertificate::Proprietary { .. }) => s.certificate_type = Some("proprietary"),
            Some(ServerCertificate::X509 { chain, .. }) => {
                s.certificate_type = Some("x509");
                // The server's own certificate is the last of the chain.
                s.certificate = chain.last().map(|der| Certificate {
                    chain_length: Some(chain.len()),
                    ..describe_certificate(der).into()
                });
            }
            Some(ServerCertificate::Unknown { .. }) | None => {}
        }
    }
}

impl Analyzer for RdpAnalyzer {
    fn buffered(&self) -> usize {
        self.tpkt.iter().map(Framer::buffered).sum::<usize>() + self.tls.buffered()
    }

    fn data(&mut self, dir: Dir, data: &[u8], cx: &mut Ctx<'_>) -> Status {
        let mut framer = std::mem::take(&mut self.tpkt[dir.index()]);
        framer.feed(data, &mut |b: &[u8]| {
            match self.phase {
                Phase::Done => return Frame::Stop,
                Phase::Tls => {
                    // Everything after the confirm is TLS in both directions.
                    let tls = self.tls.data(dir, b);
                    self.tls.report_errors(cx);
                    if !tls || self.tls.done {
                        self.emit(cx);
                        return Frame::Stop;
                    }
                    return Frame::Consumed(b.len());
                }
                Phase::Negotiation | Phase::Mcs => {}
            }
            let len = match x224::tpkt_len(b) {
                None => return Frame::Need(x224::TPKT_HEADER_LEN),
                Some(Err(_)) => {
                    cx.parse_error(PROTOCOL.name);
                    return Frame::Stop;
                }
                Some(Ok(n)) => n,
            };
            let Some(pkt) = b.get(..len) else {
                return Frame::Need(len);
            };
            match (self.phase, dir) {
                (Phase::Negotiation, Dir::ToServer) if !self.seen_request => self.request(pkt, cx),
                (Phase::Negotiation, Dir::ToClient) => {
                    self.phase = self.confirm(pkt, cx);
                    if self.phase == Phase::Done {
                        self.emit(cx);
                        return Frame::Stop;
                    }
                }
                (Phase::Mcs, Dir::ToServer) if self.rec.client.is_none() => {
                    self.connect_initial(pkt, cx)
                }
                (Phase::Mcs, Dir::ToClient) => {
                    self.connect_response(pkt, cx);
                    self.emit(cx);
                    return Frame::Stop;
                }
                _ => {}
            }
            Frame::Consumed(len)
        });
        self.tpkt[dir.index()] = framer;
        if self.phase == Phase::Done {
            self.emit(cx);
            return Status::Done;
        }
        Status::Continue
    }

    fn gap(&mut self, dir: Dir, _len: u32, cx: &mut Ctx<'_>) -> Status {
        self.tpkt[dir.index()].gap();
        if self.tpkt.iter().all(Framer::stopped) {
            self.emit(cx);
            return Status::Done;
        }
        Status::Continue
    }

    fn end(&mut self, cx: &mut Ctx<'_>) {
        self.emit(cx);
    }
}

// ---- The event ----

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct RdpRecord {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cookie: Option<String>,
    /// The cookie's bytes in hex, when they were not clean ASCII.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cookie_hex: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub routing_token: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub requested_protocols: Option<Vec<&'static str>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub request_flags: Option<u8>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub correlation_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub selected_protocol: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub negotiation_failure: Option<String>,
    /// How the connection reached the server when it went through a proxy
    /// handshake first (`socks4`, `socks5`, `http_connect`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub proxy: Option<&'static str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub client: Option<RdpClient>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub server: Option<RdpServer>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tls_version: Option<String>,
    /// False when TLS 1.3 hid the server certificate.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub certificate_visible: Option<bool>,
    /// The client's TLS certificate, when the server asked for one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub client_certificate: Option<Certificate>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct RdpClient {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// The name's raw UTF-16LE bytes in hex, when decoding was lossy.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub name_hex: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub version: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub build: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub desktop_width: Option<u16>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub desktop_height: Option<u16>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub keyboard_layout: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub keyboard_type: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub keyboard_subtype: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub product_id: Option<u16>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub dig_product_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub color_depth: Option<u16>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub early_capability_flags: Option<u16>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub connection_type: Option<u8>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub server_selected_protocol: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub encryption_methods: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub channels: Option<Vec<String>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cluster_flags: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub monitor_count: Option<u32>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct RdpServer {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub version: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub client_requested_protocols: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub encryption_method: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub encryption_level: Option<u32>,
    /// `proprietary` or `x509` (standard RDP security).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub certificate_type: Option<&'static str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub certificate: Option<Certificate>,
    /// The certificates after the server's own in the chain it sent.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub certificate_chain: Vec<Certificate>,
}

impl EventRecord for RdpRecord {
    const EVENT_TYPE: &'static str = "rdp";

    fn facts(&self, name: &Name<'_>) -> Facts {
        match name.role {
            Role::Client => Facts {
                build: self.client.as_ref().and_then(|c| c.build),
                ..Facts::default()
            },
            _ => Facts {
                self_signed: self
                    .server
                    .as_ref()
                    .and_then(|s| s.certificate.as_ref())
                    .is_some_and(|c| c.self_signed_for(name.value)),
                ..Facts::default()
            },
        }
    }

    fn names<'a>(&'a self, v: &mut Vec<Name<'a>>) {
        if let Some(c) = &self.client {
            Name::push(v, "rdp.client.name", Role::Client, c.name.as_ref(), true);
        }
        Name::push(v, "rdp.cookie", Role::Client, self.cookie.as_ref(), false);
        if let Some(server) = &self.server {
            if let Some(cert) = &server.certificate {
                let leaf = (
                    "rdp.server.certificate.subject_cn",
                    "rdp.server.certificate.san_dns",
                );
                certificate_names(v, cert, leaf, Role::Server, true);
            }
            let chain = (
                "rdp.server.certificate_chain.subject_cn",
                "rdp.server.certificate_chain.san_dns",
            );
            for c in &server.certificate_chain {
                certificate_names(v, c, chain, Role::Server, false);
            }
        }
        if let Some(c) = &self.client_certificate {
            let client = (
                "rdp.client_certificate.subject_cn",
                "rdp.client_certificate.san_dns",
            );
            certificate_names(v, c, client, Role::Client, false);
        }
    }
}

#[cfg(test)]
#[path = "rdp_tests.rs"]
mod tests;
