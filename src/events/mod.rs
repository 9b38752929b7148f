//! Events: the envelope that ties an analyzer's record (or an alert, a host
//! sighting, counters) to its flow, serialised as JSON Lines in the layout
//! of the event contract (Suricata EVE conventions). A value the traffic did
//! not carry is an `Option::None` and is left out of the JSON. The records
//! themselves are defined by their protocols (see
//! [`crate::analyzers::registry`]).

mod community_id;

use std::net::IpAddr;
use std::sync::Arc;

use serde::ser::{SerializeMap, Serializer};
use serde::Serialize;

pub use community_id::community_id;

pub use crate::analyzers::{Record, Role};
use crate::decode::{Transport, Vlans};
use crate::render::{Addr, Stamp};

/// The flow part of an event's envelope: the client is `src`, whatever the
/// direction of the packet that completed the event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FlowInfo {
    pub flow_id: u64,
    pub transport: Transport,
    pub src_ip: IpAddr,
    pub src_port: u16,
    pub dest_ip: IpAddr,
    pub dest_port: u16,
    pub vlans: Vlans,
    /// The live interface of the flow's first packet (its place among the
    /// interfaces captured), written as EVE's `in_iface`.
    pub iface: Option<u8>,
    /// Both sides had sent packets when the event was made (a TCP
    /// handshake, a request and its answer); false for what one side sent
    /// alone, which may be spoofed.
    pub two_way: bool,
    /// TCP: a three-way handshake whose numbers agree was seen (the
    /// client's SYN, the server's SYN-ACK acknowledging it, the client's
    /// ACK of that); a datagram exchange: as `two_way`.
    pub handshake: bool,
    /// The event was found in the other copy of bytes a retransmission
    /// carried differently (the first copy went to the analysis).
    pub overlap: Option<Overlap>,
}

/// Where two copies of a stream's bytes disagreed: one of them never
/// reached the receiver, and the sensor cannot tell which, so both are
/// searched. Written as `conflicting_overlap` in the envelope.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Overlap {
    /// Sent by the client (`to_server`) or the server.
    pub to_server: bool,
    /// Offset of the other copy in its direction's stream.
    pub offset: u32,
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
    /// What an analyzer found (`rdp`, `ntlm`, ...), shared with the alerts
    /// it gave rise to.
    Record(Arc<Record>),
    Alert(Box<Alert>),
    /// A (name, address) pair of the passive host inventory.
    Inventory(HostSighting),
    Stats(serde_json::Value),
}

/// The largest record an alert carries, serialised: a larger one (a
/// multicast answer listing hundreds of names) is named by the alert and
/// written once, in its own event (same flow_id and timestamp), so that
/// what is written stays proportional to what was read.
pub const MAX_ALERT_RECORD: usize = 8 << 10;

/// The event types that are not records.
const OTHER_EVENT_TYPES: [&str; 3] = ["alert", "inventory", "stats"];

/// Every `event_type` hostwatch writes.
pub fn event_types() -> impl Iterator<Item = &'static str> {
    Record::EVENT_TYPES.iter().copied().chain(OTHER_EVENT_TYPES)
}

impl Body {
    pub fn event_type(&self) -> &'static str {
        match self {
            Body::Record(r) => r.event_type(),
            Body::Alert(_) => "alert",
            Body::Inventory(_) => "inventory",
            Body::Stats(_) => "stats",
        }
    }

    /// EVE's `app_proto`: the application protocol of the record, or of
    /// the record an alert is about.
    pub fn app_proto(&self) -> Option<&'static str> {
        match self {
            Body::Record(r) => r.app_proto(),
            Body::Alert(a) => a.record.app_proto(),
            Body::Inventory(_) | Body::Stats(_) => None,
        }
    }
}

/// An alert, with EVE's keys (`action`, `gid`, `signature_id`, `rev`,
/// `signature`, `category`, `severity`) and hostwatch's after them: one per
/// machine per connection, with every field of the record that named it.
#[serde_with::skip_serializing_none]
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Alert {
    /// EVE's `alert.action`: `allowed` (a passive sensor blocks nothing).
    pub action: &'static str,
    /// EVE's generator id: 1, as for rules.
    pub gid: u32,
    pub rev: u32,
    pub signature: String,
    pub signature_id: u32,
    pub category: String,
    pub severity: u8,
    pub list: String,
    pub hostname: String,
    /// The strongest claim of the fields that named it.
    pub role: Role,
    /// The field of that claim.
    pub evidence: &'static str,
    /// Every field of the record that named the machine.
    pub fields: Vec<&'static str>,
    /// Set for list entries whose source is not confirmed.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub candidate: bool,
    /// Whether the other side had answered (a handshake, a reply) when the
    /// name was seen: a lone packet may come from a spoofed address.
    pub handshake_seen: bool,
    /// The sum of the weights of what else agrees, written as the
    /// `confidence` it gives (see `detection::confidence`).
    #[serde(rename = "confidence", serialize_with = "confidence_of")]
    pub score: i32,
    /// One readable line per signal weighed.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub corroboration: Vec<String>,
    /// What matched.
    pub indicator: Indicator,
    /// Where the matching entry came from.
    pub provenance: Provenance,
    /// Alerts of the same machine, address and list held back by
    /// `--suppress` since the last one written.
    pub suppressed: Option<u64>,
    /// The event type of the record, when it is too large to come with the
    /// alert ([`MAX_ALERT_RECORD`]): set as the alert is written.
    pub record_omitted: Option<&'static str>,
    /// The address the named machine was seen at, when the record ties the
    /// name to one.
    #[serde(skip)]
    pub ip: Option<IpAddr>,
    #[serde(skip)]
    pub record: Arc<Record>,
}

/// The indicator an alert matched: its value as the list has it, its kind
/// (`name`, `glob`, `regex`, `network`, `asn`), and for a network or an
/// autonomous system the address that matched and which end it was.
#[serde_with::skip_serializing_none]
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Indicator {
    pub value: String,
    pub kind: &'static str,
    pub address: Option<IpAddr>,
    /// `src` or `dest`.
    pub end: Option<&'static str>,
}

/// Where a list entry came from: its file and line, its note, and the
/// identifiers its threat-intel source gave it (`misp_event_uuid`,
/// `misp_attribute_uuid`, `stix_id`, `stix_name`, `zeek_source`, `sbl`, ...).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Provenance {
    pub file: String,
    pub line: u32,
    pub note: Option<String>,
    pub refs: Vec<(&'static str, String)>,
}

impl Serialize for Provenance {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut map = s.serialize_map(None)?;
        map.serialize_entry("file", &self.file)?;
        map.serialize_entry("line", &self.line)?;
        if let Some(n) = &self.note {
            map.serialize_entry("note", n)?;
        }
        for (k, v) in &self.refs {
            map.serialize_entry(k, v)?;
        }
        map.end()
    }
}

impl Alert {
    /// `alert.confidence`.
    pub fn confidence(&self) -> Confidence {
        Confidence::of(self.score)
    }

    /// For tests: the built-in list's alert on WIN-J9D866ESIJ2 as an NTLM
    /// client, weighed 0, carrying `record`.
    #[cfg(test)]
    pub fn on_default_name(record: Record) -> Alert {
        Alert {
            action: "allowed",
            gid: 1,
            rev: 1,
            signature: "VMmanager default Windows host name (WIN-J9D866ESIJ2)".into(),
            signature_id: 9_100_001,
            category: "Ransomware-linked VMmanager default host name".into(),
            severity: 1,
            list: "vmmanager-defaults".into(),
            hostname: "WIN-J9D866ESIJ2".into(),
            role: Role::Client,
            evidence: "ntlm.client.workstation",
            fields: vec!["ntlm.client.workstation"],
            candidate: false,
            handshake_seen: true,
            score: 0,
            corroboration: Vec::new(),
            indicator: Indicator {
                value: "WIN-J9D866ESIJ2".into(),
                kind: "name",
                address: None,
                end: None,
            },
            provenance: Provenance {
                file: "builtin:vmmanager-defaults".into(),
                line: 6,
                note: None,
                refs: Vec::new(),
            },
            suppressed: None,
            record_omitted: None,
            ip: None,
            record: Arc::new(record),
        }
    }
}

/// `alert.confidence`: how much else agrees with an alert (the weights
/// are `detection::confidence`'s).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Confidence {
    Low,
    Medium,
    High,
}

impl std::str::FromStr for Confidence {
    type Err = String;

    fn from_str(s: &str) -> Result<Confidence, String> {
        match s {
            "low" => Ok(Confidence::Low),
            "medium" => Ok(Confidence::Medium),
            "high" => Ok(Confidence::High),
            _ => Err(format!("takes low, medium or high, not '{s}'")),
        }
    }
}

impl Confidence {
    /// The confidence of a weighed sum.
    pub fn of(score: i32) -> Confidence {
        match score {
            s if s >= 2 => Confidence::High,
            s if s >= 0 => Confidence::Medium,
            _ => Confidence::Low,
        }
    }
}

fn confidence_of<S: serde::Serializer>(score: &i32, s: S) -> Result<S::Ok, S::Error> {
    serde::Serialize::serialize(&Confidence::of(*score), s)
}

/// What serialisation asks of an ASN database: the autonomous system
/// (number, organisation) of an address, when one is to be named.
pub trait AsnLookup {
    fn asn_of(&self, ip: IpAddr) -> Option<(u32, String)>;
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct HostSighting {
    pub name: String,
    pub ip: IpAddr,
    pub role: Role,
    pub evidence: &'static str,
}

/// What the sensor adds to every event it writes: its name (EVE's
/// top-level `host`), the names of the interfaces it captures on (for
/// `in_iface`), and the autonomous systems of endpoints outside home-net.
#[derive(Default, Clone, Copy)]
pub struct Sensor<'a> {
    pub name: Option<&'a str>,
    pub interfaces: &'a [String],
    pub asn: Option<&'a dyn AsnLookup>,
}

impl Event {
    /// Appends the event as one JSON line (with its newline) to `out`.
    ///
    /// An alert carries its record when the record's object is at most
    /// [`MAX_ALERT_RECORD`] bytes; its size is known once it is written,
    /// so a larger one (rare) is taken back and the alert written again,
    /// naming it in `record_omitted`.
    pub fn write_json(&self, sensor: &Sensor<'_>, out: &mut Vec<u8>) {
        let start = out.len();
        let mut ser = crate::render::json::Json::new(out);
        // Serialising plain structs into a Vec cannot fail.
        let Ok(carried) = self.serialize_json(sensor, &mut ser) else {
            return;
        };
        if let (Body::Alert(a), Some(entry)) = (&self.body, carried) {
            // The entry is `,"type":{...}`.
            let event_type = a.record.event_type();
            if entry.saturating_sub(event_type.len() + 4) > MAX_ALERT_RECORD {
                out.truncate(start);
                let mut without = a.clone();
                without.record_omitted = Some(event_type);
                let ev = Event {
                    ts_us: self.ts_us,
                    flow: self.flow.clone(),
                    body: Body::Alert(without),
                };
                ev.write_json(sensor, out);
                return;
            }
        }
        out.push(b'\n');
    }

    /// The envelope's fields in the contract's order, then the body;
    /// for an alert that carries its record, the bytes of the record's
    /// entry.
    fn serialize_json(
        &self,
        sensor: &Sensor<'_>,
        ser: &mut crate::render::json::Json<'_>,
    ) -> Result<Option<usize>, crate::render::json::Error> {
        let mut carried = None;
        let mut map = ser.serialize_map(None)?;
        map.serialize_entry("timestamp", &Stamp::eve(self.ts_us))?;
        map.serialize_entry("event_type", self.body.event_type())?;
        if let Some(f) = &self.flow {
            map.serialize_entry("flow_id", &f.flow_id)?;
            let id = community_id(
                f.transport.number(),
                f.src_ip,
                f.src_port,
                f.dest_ip,
                f.dest_port,
            );
            map.serialize_entry("community_id", id.as_str())?;
            map.serialize_entry("src_ip", &Addr(&f.src_ip))?;
            map.serialize_entry("src_port", &f.src_port)?;
            map.serialize_entry("dest_ip", &Addr(&f.dest_ip))?;
            map.serialize_entry("dest_port", &f.dest_port)?;
            map.serialize_entry("proto", f.transport.name())?;
            for (ip, number, org) in [
                (f.src_ip, "src_asn", "src_as_org"),
                (f.dest_ip, "dest_asn", "dest_as_org"),
            ] {
                if let Some((n, o)) = sensor.asn.and_then(|e| e.asn_of(ip)) {
                    map.serialize_entry(number, &n)?;
                    if !o.is_empty() {
                        map.serialize_entry(org, &o)?;
                    }
                }
            }
            if !f.vlans.is_empty() {
                map.serialize_entry("vlan", f.vlans.as_slice())?;
            }
            let iface = f.iface.and_then(|i| sensor.interfaces.get(usize::from(i)));
            if let Some(name) = iface {
                map.serialize_entry("in_iface", name)?;
            }
            if let Some(o) = &f.overlap {
                let direction = if o.to_server {
                    "to_server"
                } else {
                    "to_client"
                };
                map.serialize_entry(
                    "conflicting_overlap",
                    &serde_json::json!({ "direction": direction, "offset": o.offset }),
                )?;
            }
        }
        if let Some(app) = self.body.app_proto() {
            map.serialize_entry("app_proto", app)?;
        }
        if let Some(name) = sensor.name {
            map.serialize_entry("host", name)?;
        }
        match &self.body {
            Body::Record(r) => r.serialize_entry(&mut map)?,
            Body::Alert(a) => {
                map.serialize_entry("alert", a.as_ref())?;
                if a.record_omitted.is_none() {
                    let before = map.written();
                    a.record.serialize_entry(&mut map)?;
                    carried = Some(map.written() - before);
                }
            }
            Body::Inventory(h) => map.serialize_entry("inventory", h)?,
            Body::Stats(s) => map.serialize_entry("stats", s)?,
        }
        map.end()?;
        Ok(carried)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::analyzers::ntlm::{NtlmClient, NtlmRecord, NtlmServer};
    use crate::parsers::ntlm::{Flags, Version};

    /// An NTLM record whose object, as written, is `len` bytes (escapes
    /// and written-only fields included: the flags, versions, the
    /// challenge), and an alert carrying it.
    fn alert_with_record_of(len: usize) -> (Event, usize) {
        let version = Version {
            major: 10,
            minor: 0,
            build: 17763,
            revision: 15,
        };
        let record = |user: String| {
            Record::Ntlm(Box::new(NtlmRecord {
                carrier: "smb2",
                result: "success",
                client: Some(NtlmClient {
                    workstation: Some("WIN-J9D866ESIJ2\n\u{7}\"é".into()),
                    user: Some(user),
                    response: "ntlmv2",
                    version: Some(version),
                    flags: Flags(0xe2_88_82_15),
                    ..NtlmClient::default()
                }),
                server: Some(NtlmServer {
                    challenge: Some([0xab; 8]),
                    version: Some(version),
                    flags: Flags(u32::MAX),
                    ..NtlmServer::default()
                }),
                ..NtlmRecord::default()
            }))
        };
        struct Object<'a>(&'a Record);
        impl Serialize for Object<'_> {
            fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                self.0.serialize_body(s)
            }
        }
        let size = |r: &Record| serde_json::to_vec(&Object(r)).map_or(0, |v| v.len());
        let base = size(&record(String::new()));
        let record = record("x".repeat(len.saturating_sub(base)));
        let written = size(&record);
        let alert = Alert::on_default_name(record);
        let ev = Event {
            ts_us: 0,
            flow: None,
            body: Body::Alert(Box::new(alert)),
        };
        (ev, written)
    }

    /// The size that decides whether an alert carries its record is the
    /// size of the record's object as written (`serde_json`'s bytes, which
    /// the event writer reproduces): one at the limit comes with the
    /// alert, one a byte over is named in `record_omitted` and left out,
    /// in a line of its own after what the buffer held.
    #[test]
    fn an_alert_carries_a_record_up_to_the_limit() {
        let line = |ev: &Event| {
            let mut out = b"before\n".to_vec();
            ev.write_json(&Sensor::default(), &mut out);
            let text = String::from_utf8_lossy(&out).into_owned();
            let json = text
                .strip_prefix("before\n")
                .unwrap_or_default()
                .to_string();
            let v: serde_json::Value = serde_json::from_str(&json).unwrap_or_default();
            (json, v)
        };
        let (at_limit, written) = alert_with_record_of(MAX_ALERT_RECORD);
        assert_eq!(written, MAX_ALERT_RECORD);
        let (text, v) = line(&at_limit);
        assert_eq!(text.matches('\n').count(), 1, "{text}");
        assert!(text.ends_with("}\n"));
        assert_eq!(v["alert"]["record_omitted"], serde_json::Value::Null);
        assert_eq!(
            v["ntlm"]["client"]["workstation"],
            "WIN-J9D866ESIJ2\n\u{7}\"é"
        );
        for part in [
            r#""challenge":"abababababababab""#,
            r#""workstation":"WIN-J9D866ESIJ2\n\u0007\"é""#,
            r#""version":"10.0.17763","response""#,
            r#"|r7|0x1d240000""#,
        ] {
            assert!(text.contains(part), "{part} not in {text}");
        }
        let (over, written) = alert_with_record_of(MAX_ALERT_RECORD + 1);
        assert_eq!(written, MAX_ALERT_RECORD + 1);
        let (text, v) = line(&over);
        assert_eq!(text.matches('\n').count(), 1, "{text}");
        assert_eq!(v["event_type"], "alert");
        assert_eq!(v["alert"]["record_omitted"], "ntlm");
        assert_eq!(v["alert"]["hostname"], "WIN-J9D866ESIJ2");
        assert_eq!(v.get("ntlm"), None);
    }
}
