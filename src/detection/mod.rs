//! Detection stage: analyzer records in, events out. Every host name field
//! of a record is checked against the watch lists; a match becomes an
//! `alert` carrying the whole record, at most once per (flow, name,
//! evidence). Computer names also feed the passive host inventory (`host`
//! events). A `tls` record on a non-RDP flow is kept only when it matched.

pub mod inventory;
pub mod watchlist;

use std::collections::HashSet;
use std::sync::Arc;

use crate::analyzers::Record;
use crate::events::{Alert, Body, Event, Evidence, HostSighting, Role};
use crate::flow::FlowRecord;

pub use watchlist::{Matcher, WatchlistError};

/// One host name field of a record.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Field<'a> {
    /// Dotted path of the field in the event, e.g. `ntlm.client.workstation`.
    pub path: &'static str,
    pub role: Role,
    pub value: &'a str,
    /// Whether the value names a machine (for the inventory); a cookie or a
    /// target name may be something else.
    pub machine: bool,
}

/// The host name fields of a record, in a fixed order.
pub fn fields(record: &Record) -> Vec<Field<'_>> {
    let mut v = Vec::new();
    fn add<'a>(
        v: &mut Vec<Field<'a>>,
        path: &'static str,
        role: Role,
        value: Option<&'a String>,
        machine: bool,
    ) {
        if let Some(value) = value {
            v.push(Field {
                path,
                role,
                value,
                machine,
            });
        }
    }
    let mut push = |path, role, value, machine| add(&mut v, path, role, value, machine);
    match record {
        Record::Ntlm(n) => {
            if let Some(c) = &n.client {
                push(
                    "ntlm.client.workstation",
                    Role::Client,
                    c.workstation.as_ref(),
                    true,
                );
            }
            if let Some(ng) = &n.negotiate {
                push(
                    "ntlm.negotiate.workstation",
                    Role::Client,
                    ng.workstation.as_ref(),
                    true,
                );
            }
            if let Some(s) = &n.server {
                push(
                    "ntlm.server.nb_computer_name",
                    Role::Server,
                    s.nb_computer_name.as_ref(),
                    true,
                );
                push(
                    "ntlm.server.dns_computer_name",
                    Role::Server,
                    s.dns_computer_name.as_ref(),
                    true,
                );
                push(
                    "ntlm.server.target_name",
                    Role::Server,
                    s.target_name.as_ref(),
                    false,
                );
            }
        }
        Record::Rdp(r) => {
            if let Some(c) = &r.client {
                push("rdp.client.name", Role::Client, c.name.as_ref(), true);
            }
            push("rdp.cookie", Role::Client, r.cookie.as_ref(), false);
            if let Some(cert) = r.server.as_ref().and_then(|s| s.certificate.as_ref()) {
                push(
                    "rdp.server.certificate.subject_cn",
                    Role::Server,
                    cert.subject_cn.as_ref(),
                    true,
                );
                for san in &cert.san_dns {
                    push(
                        "rdp.server.certificate.san_dns",
                        Role::Server,
                        Some(san),
                        false,
                    );
                }
            }
        }
        Record::Tls(t) => {
            push(
                "tls.certificate.subject_cn",
                Role::Server,
                t.certificate.subject_cn.as_ref(),
                false,
            );
            for san in &t.certificate.san_dns {
                push("tls.certificate.san_dns", Role::Server, Some(san), false);
            }
        }
    }
    v
}

/// Per-worker detection state.
pub struct Detector {
    matcher: Arc<Matcher>,
    /// (flow, upper-cased name, evidence) already alerted; bounded.
    alerted: HashSet<(u64, String, &'static str)>,
}

/// Alerts remembered for de-duplication before the memory is reset.
const MAX_REMEMBERED: usize = 100_000;

impl Detector {
    pub fn new(matcher: Arc<Matcher>) -> Self {
        Detector {
            matcher,
            alerted: HashSet::new(),
        }
    }

    /// Turns one record into its events, appended to `out`.
    pub fn process(&mut self, fr: FlowRecord, out: &mut Vec<Event>) {
        let FlowRecord {
            ts_us,
            flow,
            record,
        } = fr;
        let mut alerts = Vec::new();
        let mut hosts = Vec::new();
        for f in fields(&record) {
            if f.machine {
                let ip = match f.role {
                    Role::Client => flow.src_ip,
                    Role::Server => flow.dest_ip,
                };
                hosts.push(HostSighting {
                    name: f.value.to_string(),
                    ip,
                    role: f.role,
                    evidence: f.path,
                });
            }
            let Some(entry) = self.matcher.lookup(f.value) else {
                continue;
            };
            let key = (flow.flow_id, f.value.to_uppercase(), f.path);
            if self.alerted.contains(&key) {
                continue;
            }
            if self.alerted.len() >= MAX_REMEMBERED {
                self.alerted.clear();
            }
            self.alerted.insert(key);
            alerts.push((entry.clone(), f));
        }
        let evidence = match &record {
            Record::Rdp(r) => Evidence::Rdp(r.clone()),
            Record::Ntlm(n) => Evidence::Ntlm(n.clone()),
            Record::Tls(t) => Evidence::Tls(t.clone()),
        };
        let keep_record = !matches!(record, Record::Tls(_)) || !alerts.is_empty();
        let alert_events: Vec<Event> = alerts
            .into_iter()
            .map(|(e, f)| Event {
                ts_us,
                flow: Some(flow.clone()),
                body: Body::Alert(Box::new(Alert {
                    signature: e.signature_for(f.value),
                    signature_id: e.id,
                    category: e.category.clone(),
                    severity: e.severity,
                    list: e.list.clone(),
                    hostname: f.value.to_string(),
                    role: f.role,
                    evidence: f.path,
                    candidate: e.candidate,
                    record: evidence.clone(),
                })),
            })
            .collect();
        if keep_record {
            let body = match record {
                Record::Rdp(r) => Body::Rdp(r),
                Record::Ntlm(n) => Body::Ntlm(n),
                Record::Tls(t) => Body::Tls(t),
            };
            out.push(Event {
                ts_us,
                flow: Some(flow.clone()),
                body,
            });
        }
        out.extend(alert_events);
        out.extend(hosts.into_iter().map(|h| Event {
            ts_us,
            flow: Some(flow.clone()),
            body: Body::Host(h),
        }));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::events::{FlowInfo, NtlmClient, NtlmRecord, RdpClient, RdpRecord, TlsRecord};

    fn flow(id: u64) -> FlowInfo {
        FlowInfo {
            flow_id: id,
            src_ip: [10, 0, 0, 1].into(),
            src_port: 50000,
            dest_ip: [10, 0, 0, 2].into(),
            dest_port: 445,
            vlans: Default::default(),
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
        assert_eq!(kinds(&out), vec!["ntlm", "alert", "host"]);
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
        assert!(matches!(&a.record, Evidence::Ntlm(n) if n.carrier == "smb2"));
        let Body::Host(h) = &out[2].body else {
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
        assert_eq!(kinds(&out), vec!["ntlm", "host"]);
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
        assert_eq!(kinds(&out), vec!["ntlm", "alert", "host"]);
    }

    #[test]
    fn cookie_alerts_but_is_not_a_machine_and_tls_needs_a_match() {
        let mut d = detector();
        let mut out = Vec::new();
        let rdp = RdpRecord {
            cookie: Some("WIN-J9D866ESIJ2".into()),
            client: Some(RdpClient {
                name: Some("DESKTOP-1".into()),
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
        assert_eq!(kinds(&out), vec!["rdp", "alert", "host"]);
        out.clear();
        let tls = TlsRecord {
            certificate: crate::events::Certificate {
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
        hit.certificate.san_dns = vec!["WIN-344VU98D3RU.example.net".into()];
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
