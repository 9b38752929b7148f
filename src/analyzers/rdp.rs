//! The RDP connection sequence of one connection: X.224 Connection Request
//! and Confirm, then either standard RDP security (MCS Connect-Initial and
//! Connect-Response in clear) or a TLS handshake (server certificate). One
//! `rdp` record per connection, emitted as soon as the handshake can tell
//! no more, or when the flow ends.

use super::framing::{Frame, Framer};
use super::tls::Handshake;
use serde::Serialize;
use serde_with::skip_serializing_none;

use super::protocol::{Carrier, Facts, Fallback, Protocol};
use super::tls::{certificate_names, Certificate};
use super::{Analyzer, Ctx, Dir, EventRecord, Name, Role, Status};
use crate::parsers::rdp::gcc::{self, ServerCertificate};
use crate::parsers::rdp::{codes, mcs, x224};
use crate::parsers::text::{oem, utf16le_lossy};
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
            // The rdp event describes certificates without their DER: one is
            // written for every connection.
            let described = |c: Certificate| Certificate { der: None, ..c };
            let server = self.rec.server.get_or_insert_with(RdpServer::default);
            server.certificate = Some(described(cert));
            server.certificate_chain = std::mem::take(&mut self.tls.chain)
                .into_iter()
                .map(described)
                .collect();
            self.rec.client_certificate = self.tls.client_certificate.take().map(described);
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
            c.client_name = (!name.is_empty()).then_some(name);
            if lossy {
                c.client_name_hex = Some(hex(core.client_name));
            }
            c.version = Some(codes::version_name(core.version).unwrap_or("unknown"));
            c.version_code = Some(core.version);
            c.build = Some(codes::os_name(core.client_build).unwrap_or("unknown"));
            c.build_number = Some(core.client_build);
            c.desktop_width = Some(core.desktop_width);
            c.desktop_height = Some(core.desktop_height);
            c.keyboard_layout =
                Some(codes::keyboard_layout_name(core.keyboard_layout).unwrap_or("unknown"));
            c.keyboard_layout_id = Some(core.keyboard_layout);
            c.keyboard_type = Some(
                codes::keyboard_type_name(core.keyboard_type)
                    .map_or_else(|| core.keyboard_type.to_string(), str::to_owned),
            );
            c.keyboard_subtype = Some(core.keyboard_subtype);
            c.product_id = core.client_product_id;
            c.id = core
                .dig_product_id
                .map(|d| utf16le_lossy(d).0)
                .filter(|s| !s.is_empty());
            c.color_depth = core.high_color_depth;
            c.capabilities = core
                .early_capability_flags
                .map(codes::capabilities)
                .unwrap_or_default();
            c.early_capability_flags = core.early_capability_flags;
            c.connection_type = core.connection_type;
            c.server_selected_protocol = core.server_selected_protocol;
        }
        c.encryption_methods = cd.encryption_methods;
        if !cd.channels.is_empty() {
            self.rec.channels = Some(cd.channels.iter().map(|n| oem(n)).collect());
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
        s.version = sd
            .version
            .map(|v| codes::version_name(v).unwrap_or("unknown"));
        s.version_code = sd.version;
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
                    ..Certificate::of(der, false)
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

/// One RDP connection, in EVE's `rdp` layout where EVE has the field
/// (`cookie`, `channels`, `client.client_name`, `client.build` as the OS
/// name, ...), hostwatch's additions beside.
#[skip_serializing_none]
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct RdpRecord {
    pub cookie: Option<String>,
    /// The cookie's bytes in hex, when they were not clean ASCII.
    pub cookie_hex: Option<String>,
    pub routing_token: Option<String>,
    pub requested_protocols: Option<Vec<&'static str>>,
    pub request_flags: Option<u8>,
    pub correlation_id: Option<String>,
    pub selected_protocol: Option<String>,
    pub negotiation_failure: Option<String>,
    /// How the connection reached the server when it went through a proxy
    /// handshake first (`socks4`, `socks5`, `http_connect`).
    pub proxy: Option<&'static str>,
    pub client: Option<RdpClient>,
    /// The static virtual channels the client asked for.
    pub channels: Option<Vec<String>>,
    pub server: Option<RdpServer>,
    pub tls_version: Option<String>,
    /// False when TLS 1.3 hid the server certificate.
    pub certificate_visible: Option<bool>,
    /// The client's TLS certificate, when the server asked for one.
    pub client_certificate: Option<Certificate>,
}

/// The client core data, with EVE's names and value vocabulary: `version`
/// (`v10.7`), `build` (the OS: `Windows 10`), `keyboard_layout` (`en-US`),
/// `keyboard_type` (`enhanced`), `id`; the numbers behind them are
/// hostwatch's (`build_number`, `keyboard_layout_id`, ...).
#[skip_serializing_none]
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct RdpClient {
    pub client_name: Option<String>,
    /// The name's raw UTF-16LE bytes in hex, when decoding was lossy.
    pub client_name_hex: Option<String>,
    pub version: Option<&'static str>,
    /// The version field as sent, written `0x0008000c`.
    #[serde(serialize_with = "crate::render::hex32")]
    pub version_code: Option<u32>,
    pub build: Option<&'static str>,
    pub build_number: Option<u32>,
    pub desktop_width: Option<u16>,
    pub desktop_height: Option<u16>,
    pub keyboard_layout: Option<&'static str>,
    pub keyboard_layout_id: Option<u32>,
    pub keyboard_type: Option<String>,
    pub keyboard_subtype: Option<u32>,
    pub product_id: Option<u16>,
    /// clientDigProductId.
    pub id: Option<String>,
    pub color_depth: Option<u16>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub capabilities: Vec<&'static str>,
    pub early_capability_flags: Option<u16>,
    pub connection_type: Option<u8>,
    pub server_selected_protocol: Option<u32>,
    pub encryption_methods: Option<u32>,
    pub cluster_flags: Option<u32>,
    pub monitor_count: Option<u32>,
}

#[skip_serializing_none]
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct RdpServer {
    pub version: Option<&'static str>,
    #[serde(serialize_with = "crate::render::hex32")]
    pub version_code: Option<u32>,
    pub client_requested_protocols: Option<u32>,
    pub encryption_method: Option<u32>,
    pub encryption_level: Option<u32>,
    /// `proprietary` or `x509` (standard RDP security).
    pub certificate_type: Option<&'static str>,
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
                build: self.client.as_ref().and_then(|c| c.build_number),
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
            Name::push(
                v,
                "rdp.client.client_name",
                Role::Client,
                c.client_name.as_ref(),
                true,
            );
        }
        Name::push(v, "rdp.cookie", Role::Client, self.cookie.as_ref(), false);
        if let Some(server) = &self.server {
            if let Some(cert) = &server.certificate {
                let leaf = (
                    "rdp.server.certificate.subject_cn",
                    "rdp.server.certificate.subjectaltname",
                );
                certificate_names(v, cert, leaf, Role::Server, true);
            }
            let chain = (
                "rdp.server.certificate_chain.subject_cn",
                "rdp.server.certificate_chain.subjectaltname",
            );
            for c in &server.certificate_chain {
                certificate_names(v, c, chain, Role::Server, false);
            }
        }
        if let Some(c) = &self.client_certificate {
            let client = (
                "rdp.client_certificate.subject_cn",
                "rdp.client_certificate.subjectaltname",
            );
            certificate_names(v, c, client, Role::Client, false);
        }
    }
}

#[cfg(test)]
#[path = "rdp_tests.rs"]
mod tests;
