//! Events: the records analyzers produce, and the envelope that ties each to
//! its flow. Serialised as JSON Lines in the layout of `docs/events.md`
//! (Suricata EVE conventions). A value the traffic did not carry is an
//! `Option::None` and is left out of the JSON.

mod community_id;
mod time;

use std::net::IpAddr;

use serde::Serialize;

pub use community_id::community_id;
pub use time::{rfc3339_micros, rfc3339_seconds};

use crate::decode::Vlans;

/// The flow part of an event's envelope: the client is `src`, whatever the
/// direction of the packet that completed the event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FlowInfo {
    pub flow_id: u64,
    pub src_ip: IpAddr,
    pub src_port: u16,
    pub dest_ip: IpAddr,
    pub dest_port: u16,
    pub vlans: Vlans,
}

/// One event, before serialisation.
#[derive(Debug, Clone, PartialEq)]
pub struct Event {
    /// Packet time of the packet that completed the event (µs since epoch).
    pub ts_us: i64,
    pub flow: Option<FlowInfo>,
    pub body: Body,
}

#[derive(Debug, Clone, PartialEq)]
pub enum Body {
    Rdp(Box<RdpRecord>),
    Ntlm(Box<NtlmRecord>),
    Tls(Box<TlsRecord>),
    Alert(Box<Alert>),
    Host(HostSighting),
    Stats(serde_json::Value),
}

/// Every `event_type` hostwatch writes.
pub const EVENT_TYPES: &[&str] = &["rdp", "ntlm", "tls", "alert", "host", "stats"];

impl Body {
    pub fn event_type(&self) -> &'static str {
        match self {
            Body::Rdp(_) => "rdp",
            Body::Ntlm(_) => "ntlm",
            Body::Tls(_) => "tls",
            Body::Alert(_) => "alert",
            Body::Host(_) => "host",
            Body::Stats(_) => "stats",
        }
    }
}

/// A server certificate, as far as a clear-text handshake shows it.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Certificate {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub subject_cn: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub issuer_cn: Option<String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub san_dns: Vec<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub subject: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub issuer: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub serial: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub not_before: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub not_after: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sha1: Option<String>,
    /// Certificates in the chain the server sent.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub chain_length: Option<usize>,
}

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
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct NtlmRecord {
    pub carrier: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub negotiate: Option<NtlmNegotiate>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub server: Option<NtlmServer>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub client: Option<NtlmClient>,
    pub result: &'static str,
    /// SMB session id, for carriers that have one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub session_id: Option<u64>,
    /// The carrier's status that gave the verdict (e.g. NTSTATUS, HTTP code).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub status: Option<String>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct NtlmNegotiate {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub workstation: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub domain: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub version: Option<String>,
    pub flags: String,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct NtlmServer {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub target_name: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub nb_computer_name: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub nb_domain_name: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub dns_computer_name: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub dns_domain_name: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub dns_tree_name: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub target_spn: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub timestamp: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub version: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub challenge: Option<String>,
    pub flags: String,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct NtlmClient {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub workstation: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub user: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub domain: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub version: Option<String>,
    pub response: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub target_spn: Option<String>,
    /// Server names the client echoed back in its NTLMv2 blob.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub echoed_nb_computer_name: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub echoed_dns_computer_name: Option<String>,
    pub mic: bool,
    pub flags: String,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct TlsRecord {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sni: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub version: Option<String>,
    pub certificate: Certificate,
}

/// The record an alert or sighting was found in.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Evidence {
    Rdp(Box<RdpRecord>),
    Ntlm(Box<NtlmRecord>),
    Tls(Box<TlsRecord>),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    Client,
    Server,
}

impl Role {
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Client => "client",
            Role::Server => "server",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Alert {
    pub signature: String,
    pub signature_id: u32,
    pub category: String,
    pub severity: u8,
    pub list: String,
    pub hostname: String,
    pub role: Role,
    pub evidence: &'static str,
    /// Set for list entries whose source is not confirmed.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub candidate: bool,
    #[serde(skip)]
    pub record: Evidence,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct HostSighting {
    pub name: String,
    pub ip: IpAddr,
    pub role: Role,
    pub evidence: &'static str,
}

/// The JSON layout of one event.
#[derive(Serialize)]
struct Json<'a> {
    timestamp: String,
    event_type: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    flow_id: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    community_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    src_ip: Option<IpAddr>,
    #[serde(skip_serializing_if = "Option::is_none")]
    src_port: Option<u16>,
    #[serde(skip_serializing_if = "Option::is_none")]
    dest_ip: Option<IpAddr>,
    #[serde(skip_serializing_if = "Option::is_none")]
    dest_port: Option<u16>,
    #[serde(skip_serializing_if = "Option::is_none")]
    proto: Option<&'static str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    vlan: Option<&'a [u16]>,
    #[serde(skip_serializing_if = "Option::is_none")]
    sensor_name: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    alert: Option<&'a Alert>,
    #[serde(skip_serializing_if = "Option::is_none")]
    rdp: Option<&'a RdpRecord>,
    #[serde(skip_serializing_if = "Option::is_none")]
    ntlm: Option<&'a NtlmRecord>,
    #[serde(skip_serializing_if = "Option::is_none")]
    tls: Option<&'a TlsRecord>,
    #[serde(skip_serializing_if = "Option::is_none")]
    host: Option<&'a HostSighting>,
    #[serde(skip_serializing_if = "Option::is_none")]
    stats: Option<&'a serde_json::Value>,
}

impl Event {
    /// Appends the event as one JSON line (with its newline) to `out`.
    pub fn write_json(&self, sensor_name: Option<&str>, out: &mut Vec<u8>) {
        let f = self.flow.as_ref();
        let mut j = Json {
            timestamp: rfc3339_micros(self.ts_us),
            event_type: self.body.event_type(),
            flow_id: f.map(|f| f.flow_id),
            community_id: f.map(|f| community_id(f.src_ip, f.src_port, f.dest_ip, f.dest_port)),
            src_ip: f.map(|f| f.src_ip),
            src_port: f.map(|f| f.src_port),
            dest_ip: f.map(|f| f.dest_ip),
            dest_port: f.map(|f| f.dest_port),
            proto: f.map(|_| "TCP"),
            vlan: f.map(|f| f.vlans.as_slice()).filter(|v| !v.is_empty()),
            sensor_name,
            alert: None,
            rdp: None,
            ntlm: None,
            tls: None,
            host: None,
            stats: None,
        };
        match &self.body {
            Body::Rdp(r) => j.rdp = Some(r),
            Body::Ntlm(r) => j.ntlm = Some(r),
            Body::Tls(r) => j.tls = Some(r),
            Body::Alert(a) => {
                j.alert = Some(a);
                match &a.record {
                    Evidence::Rdp(r) => j.rdp = Some(r),
                    Evidence::Ntlm(r) => j.ntlm = Some(r),
                    Evidence::Tls(r) => j.tls = Some(r),
                }
            }
            Body::Host(h) => j.host = Some(h),
            Body::Stats(s) => j.stats = Some(s),
        }
        // Serialising plain structs into a Vec cannot fail.
        if serde_json::to_writer(&mut *out, &j).is_ok() {
            out.push(b'\n');
        }
    }
}
