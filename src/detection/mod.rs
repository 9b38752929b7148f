//! Detection stage: analyzer records in, events out. Every host name field
//! of a record is checked against the watch lists; a match becomes an
//! `alert` carrying the whole record, at most once per (flow, name,
//! evidence). Computer names also feed the passive host inventory (`host`
//! events). A `tls` record on a non-RDP flow is kept only when it matched.

pub mod asn;
pub mod carriers;
pub mod confidence;
pub mod intel;
pub mod inventory;
pub mod lists;
pub mod network;
pub mod watchlist;

use std::collections::HashSet;
use std::net::IpAddr;
use std::sync::Arc;

use crate::analyzers::protocol::Facts;
use crate::analyzers::Name;
use crate::events::{Alert, Body, Event, HostSighting, Role};
use crate::flow::FlowRecord;

pub use watchlist::{Matcher, WatchlistError};

/// Per-worker detection state.
pub struct Detector {
    lists: Arc<lists::Lists>,
    /// The matcher in force, and the lists' generation it came from.
    matcher: Arc<Matcher>,
    generation: u64,
    home: network::HomeNet,
    /// The ASN database, for `asn:` entries.
    asn: Option<Arc<asn::AsnDb>>,
    /// (flow, upper-cased name, evidence) already alerted; bounded.
    alerted: HashSet<(u64, String, &'static str)>,
}

/// An alert about to be written.
struct Found {
    entry: watchlist::Entry,
    /// The name shown (an address when the flow showed none).
    hostname: String,
    role: Role,
    evidence: &'static str,
    /// What the record says of that machine.
    facts: Facts,
    /// The list holding its address, if one does.
    listed: Option<String>,
    /// The address the machine was seen at.
    ip: Option<IpAddr>,
}

/// Alerts remembered for de-duplication before the memory is reset.
const MAX_REMEMBERED: usize = 100_000;

impl Detector {
    pub fn new(matcher: Arc<Matcher>) -> Self {
        Self::with_lists(lists::Lists::fixed(matcher), network::HomeNet::default())
    }

    /// A detector on the lists in force (reloaded live), weighing alerts
    /// against `home` (`--home-net`).
    pub fn with_lists(lists: Arc<lists::Lists>, home: network::HomeNet) -> Self {
        let (generation, matcher) = lists.current();
        Detector {
            lists,
            matcher,
            generation,
            asn: None,
            home,
            alerted: HashSet::new(),
        }
    }

    /// Turns one record into its events, appended to `out`.
    /// Looks endpoints up in `db` for the lists' `asn:` entries.
    pub fn with_asn_db(mut self, db: Option<Arc<asn::AsnDb>>) -> Self {
        self.asn = db;
        self
    }

    /// Remembers an alert's (flow, name, evidence); false when it was
    /// already written.
    fn remember(&mut self, key: (u64, String, &'static str)) -> bool {
        if self.alerted.contains(&key) {
            return false;
        }
        if self.alerted.len() >= MAX_REMEMBERED {
            self.alerted.clear();
        }
        self.alerted.insert(key);
        true
    }

    pub fn process(&mut self, fr: FlowRecord, out: &mut Vec<Event>) {
        if self.lists.generation() != self.generation {
            (self.generation, self.matcher) = self.lists.current();
        }
        let matcher = self.matcher.clone();
        let FlowRecord {
            ts_us,
            flow,
            record,
        } = fr;
        // (entry, name, the list holding the name's address if any).
        let mut alerts: Vec<(watchlist::Entry, Name<'_>, Option<String>, Option<IpAddr>)> =
            Vec::new();
        let mut network_alerts: Vec<(watchlist::Entry, Role, &'static str, String, IpAddr)> =
            Vec::new();
        let mut hosts = Vec::new();
        let names = record.names();
        for f in names.iter().copied() {
            // The address of the endpoint that said the name. A name the
            // record ties to another address (a registration or an answer
            // naming someone else's) is only mentioned: the packet's sender
            // cannot pin a name on a host that never said it. A lease its
            // server acknowledged (DHCP) puts the name at the leased address.
            let sender = match f.role {
                Role::Client => Some(flow.src_ip),
                Role::Server => Some(flow.dest_ip),
                Role::Named => None,
            };
            let ip = match (f.leased, f.ip) {
                (true, Some(lease)) if f.role != Role::Named => Some(lease),
                _ => sender.filter(|s| f.ip.is_none_or(|claimed| claimed == *s)),
            };
            // Nobody lives at 0.0.0.0 or ::, whatever a datagram says.
            let ip = ip.filter(|a| !a.is_unspecified());
            let role = if ip.is_none() { Role::Named } else { f.role };
            let f = Name { role, ..f };
            if let (true, Some(ip)) = (f.machine, ip) {
                hosts.push(HostSighting {
                    name: f.value.to_string(),
                    ip,
                    role: f.role,
                    evidence: f.path,
                });
            }
            let Some(entry) = matcher.lookup(f.value) else {
                continue;
            };
            if !self.remember((flow.flow_id, f.value.to_uppercase(), f.path)) {
                continue;
            }
            // An allow list (a lab's own VMs, benign names) has the last
            // word; each alert it keeps back is counted once.
            if matcher.allows(f.value) || ip.is_some_and(|a| matcher.allows_ip(a)) {
                self.lists.count_allowed();
                continue;
            }
            // Its address on a network or system list corroborates it.
            let listed = ip.and_then(|a| {
                let by_net = matcher.lookup_ip(a).map(|e| e.list.to_string());
                let by_asn = || {
                    let db = self.asn.as_ref().filter(|_| matcher.has_asns())?;
                    let (n, _) = db.lookup(a).filter(|_| !self.home.contains(a))?;
                    matcher.lookup_asn(n).map(|e| e.list.to_string())
                };
                by_net.or_else(by_asn)
            });
            alerts.push((entry.clone(), f, listed, ip));
        }
        // A listed network alerts on any handshake from or to it, names or
        // not (NLA hides the RDP client name): with the best name the
        // record shows for that side, else the address.
        for (ip, role, path, as_path) in [
            (flow.src_ip, Role::Client, "src_ip", "src_asn"),
            (flow.dest_ip, Role::Server, "dest_ip", "dest_asn"),
        ] {
            let shown = || {
                names
                    .iter()
                    .find(|n| n.role == role && n.machine)
                    .map_or_else(|| ip.to_string(), |n| n.value.to_string())
            };
            // Its autonomous system, outside home-net, with a database.
            let system = match &self.asn {
                Some(db) if matcher.has_asns() && !self.home.contains(ip) => db.lookup(ip),
                _ => None,
            };
            if let Some((number, _)) = system {
                if let Some(entry) = matcher.lookup_asn(number) {
                    if self.remember((flow.flow_id, format!("AS{number}"), as_path)) {
                        if matcher.allows_asn(number) {
                            self.lists.count_allowed();
                        } else {
                            network_alerts.push((entry.clone(), role, as_path, shown(), ip));
                        }
                    }
                }
            }
            let Some(entry) = matcher.lookup_ip(ip) else {
                continue;
            };
            if !self.remember((flow.flow_id, ip.to_string(), path)) {
                continue;
            }
            if matcher.allows_ip(ip) {
                self.lists.count_allowed();
                continue;
            }
            network_alerts.push((entry.clone(), role, path, shown(), ip));
        }
        let keep_record = record.logged_alone() || !alerts.is_empty() || !network_alerts.is_empty();
        // Every alert: (entry, name shown, role, evidence, what the record
        // says of that machine).
        let mut found: Vec<Found> = alerts
            .into_iter()
            .map(|(entry, f, listed, ip)| Found {
                entry,
                hostname: f.value.to_string(),
                role: f.role,
                evidence: f.path,
                facts: record.facts(&f),
                listed,
                ip,
            })
            .collect();
        for (entry, role, path, shown, ip) in network_alerts {
            let facts = record.facts(&Name::of(path, role, &shown, true));
            found.push(Found {
                entry,
                hostname: shown,
                role,
                evidence: path,
                facts,
                listed: None,
                ip: Some(ip),
            });
        }
        drop(names);
        let alert_events: Vec<Event> = found
            .into_iter()
            .map(|found| {
                let Found {
                    entry: e,
                    hostname,
                    role,
                    evidence,
                    facts,
                    listed,
                    ip,
                } = found;
                let (score, corroboration) =
                    confidence::weigh(&e, role, facts, &flow, &self.home, listed.as_deref());
                Event {
                    ts_us,
                    flow: Some(flow.clone()),
                    body: Body::Alert(Box::new(Alert {
                        action: "allowed",
                        gid: 1,
                        rev: 1,
                        score,
                        corroboration,
                        ip,
                        signature: e.signature_for(&hostname),
                        signature_id: e.id,
                        category: e.category.to_string(),
                        severity: e.severity,
                        list: e.list.to_string(),
                        hostname,
                        role,
                        evidence,
                        candidate: e.candidate,
                        handshake_seen: flow.two_way,
                        record: record.clone(),
                    })),
                }
            })
            .collect();
        if keep_record {
            out.push(Event {
                ts_us,
                flow: Some(flow.clone()),
                body: Body::Record(record),
            });
        }
        out.extend(alert_events);
        out.extend(hosts.into_iter().map(|h| Event {
            ts_us,
            flow: Some(flow.clone()),
            body: Body::Inventory(h),
        }));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::analyzers::ntlm::{NtlmClient, NtlmRecord};
    use crate::analyzers::rdp::{RdpClient, RdpRecord};
    use crate::analyzers::tls::TlsRecord;
    use crate::analyzers::Record;
    use crate::decode::Transport;
    use crate::events::FlowInfo;

    fn flow(id: u64) -> FlowInfo {
        FlowInfo {
            flow_id: id,
            transport: Transport::Tcp,
            src_ip: [10, 0, 0, 1].into(),
            src_port: 50000,
            dest_ip: [10, 0, 0, 2].into(),
            dest_port: 445,
            vlans: Default::default(),
            iface: None,
            two_way: true,
            overlap: None,
        }
    }

    fn detector() -> Detector {
        Detector::new(Arc::new(
            Matcher::with_builtins(true, Vec::new()).unwrap_or_else(|e| panic!("{e}")),
        ))
    }

    fn ntlm(ws: &str) -> Record {
        Record::Ntlm(Box::new(NtlmRecord {
            carrier: "smb2",
            result: "success",
            client: Some(NtlmClient {
                workstation: Some(ws.into()),
                response: "ntlmv2",
                ..NtlmClient::default()
            }),
            ..NtlmRecord::default()
        }))
    }

    fn kinds(events: &[Event]) -> Vec<&'static str> {
        events.iter().map(|e| e.body.event_type()).collect()
    }

    #[test]
    fn alert_carries_record_and_is_deduplicated_per_flow() {
        let mut d = detector();
        let mut out = Vec::new();
        d.process(
            FlowRecord {
                ts_us: 5,
                flow: flow(1),
                record: ntlm("win-livfrvqfmko"),
            },
            &mut out,
        );
        assert_eq!(kinds(&out), vec!["ntlm", "alert", "inventory"]);
        let Body::Alert(a) = &out[1].body else {
            panic!()
        };
        assert_eq!(
            (a.hostname.as_str(), a.role, a.evidence, a.severity),
            (
                "win-livfrvqfmko",
                Role::Client,
                "ntlm.client.workstation",
                1
            )
        );
        assert_eq!(
            (a.list.as_str(), a.signature_id),
            ("vmmanager-defaults", 9_100_002)
        );
        assert_eq!(
            a.signature,
            "VMmanager default Windows host name (win-livfrvqfmko)"
        );
        assert!(matches!(&a.record, Record::Ntlm(n) if n.carrier == "smb2"));
        let Body::Inventory(h) = &out[2].body else {
            panic!()
        };
        assert_eq!(h.ip.to_string(), "10.0.0.1");
        // Same flow, same name, same field: no second alert.
        out.clear();
        d.process(
            FlowRecord {
                ts_us: 6,
                flow: flow(1),
                record: ntlm("WIN-LIVFRVQFMKO"),
            },
            &mut out,
        );
        assert_eq!(kinds(&out), vec!["ntlm", "inventory"]);
        // Another flow alerts again.
        out.clear();
        d.process(
            FlowRecord {
                ts_us: 7,
                flow: flow(2),
                record: ntlm("WIN-LIVFRVQFMKO"),
            },
            &mut out,
        );
        assert_eq!(kinds(&out), vec!["ntlm", "alert", "inventory"]);
    }

    /// A name the record ties to an address is its sender's only at the
    /// sender's own address: a forged registration or an answer naming the
    /// asker's address pins nothing on another host.
    #[test]
    fn a_name_tied_to_another_address_is_only_mentioned() {
        use crate::analyzers::nbns::{NbnsName, NbnsRecord};
        use crate::analyzers::Dir;
        let record = |sender: Dir, source, address: [u8; 4]| {
            Record::from(NbnsRecord {
                opcode: "registration",
                names: vec![NbnsName {
                    name: "WIN-J9D866ESIJ2".into(),
                    suffix: "<00>".into(),
                    suffix_type: "workstation",
                    group: false,
                    address: Some(address.into()),
                    ttl: None,
                    source,
                    sender,
                }],
                ..NbnsRecord::default()
            })
        };
        let mut d = detector();
        let cases = [
            // Registration of its own address: the client's name.
            (
                Dir::ToServer,
                "request",
                [10, 0, 0, 1],
                Role::Client,
                Some("10.0.0.1"),
            ),
            // Registration claiming another host's address.
            (Dir::ToServer, "request", [10, 0, 0, 9], Role::Named, None),
            // An answer for itself: the server's name.
            (
                Dir::ToClient,
                "answer",
                [10, 0, 0, 2],
                Role::Server,
                Some("10.0.0.2"),
            ),
            // An answer naming the asker's own address.
            (Dir::ToClient, "answer", [10, 0, 0, 1], Role::Named, None),
        ];
        for (i, (sender, source, addr, role, host)) in cases.into_iter().enumerate() {
            let mut out = Vec::new();
            d.process(
                FlowRecord {
                    ts_us: 1,
                    flow: flow(100 + i as u64),
                    record: record(sender, source, addr),
                },
                &mut out,
            );
            let alert_role = out.iter().find_map(|e| match &e.body {
                Body::Alert(a) => Some(a.role),
                _ => None,
            });
            let sighting = out.iter().find_map(|e| match &e.body {
                Body::Inventory(h) => Some(h.ip.to_string()),
                _ => None,
            });
            assert_eq!(
                (alert_role, sighting.as_deref()),
                (Some(role), host),
                "case {i}"
            );
        }
    }

    #[test]
    fn cookie_alerts_but_is_not_a_machine_and_tls_needs_a_match() {
        let mut d = detector();
        let mut out = Vec::new();
        let rdp = RdpRecord {
            cookie: Some("WIN-J9D866ESIJ2".into()),
            client: Some(RdpClient {
                client_name: Some("DESKTOP-1".into()),
                ..RdpClient::default()
            }),
            ..RdpRecord::default()
        };
        d.process(
            FlowRecord {
                ts_us: 1,
                flow: flow(3),
                record: Record::Rdp(Box::new(rdp)),
            },
            &mut out,
        );
        assert_eq!(kinds(&out), vec!["rdp", "alert", "inventory"]);
        out.clear();
        let tls = TlsRecord {
            certificate: crate::analyzers::tls::Certificate {
                subject_cn: Some("www.example.com".into()),
                ..Default::default()
            },
            ..Default::default()
        };
        d.process(
            FlowRecord {
                ts_us: 1,
                flow: flow(4),
                record: Record::Tls(Box::new(tls.clone())),
            },
            &mut out,
        );
        assert!(out.is_empty());
        let mut hit = tls;
        hit.certificate.subjectaltname = vec!["WIN-344VU98D3RU.example.net".into()];
        d.process(
            FlowRecord {
                ts_us: 1,
                flow: flow(4),
                record: Record::Tls(Box::new(hit)),
            },
            &mut out,
        );
        assert_eq!(kinds(&out), vec!["tls", "alert"]);
    }
}
