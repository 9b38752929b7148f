//! Detection stage: analyzer records in, events out. Every host name field
//! of a record is checked against the watch lists. The fields that name one
//! machine (its NetBIOS name, its DNS name, the target name of one NTLM
//! CHALLENGE) make one alert, with the strongest claim among them; a
//! listed network or autonomous system alerts on either end of any
//! connection. One alert per machine per connection: an alert waits
//! [`ALERT_HOLD_US`] of packet time for the connection's later records
//! naming the same machine (a logon retried: the last outcome counts),
//! and after that only a stronger claim alerts again. Computer names also
//! feed the passive host inventory (`inventory` events). A `tls` record on
//! a non-RDP flow is kept only when it matched.

pub mod asn;
pub mod carriers;
pub mod confidence;
pub mod intel;
pub mod inventory;
pub mod lists;
pub mod network;
pub mod watchlist;

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Arc;

use crate::analyzers::protocol::Facts;
use crate::analyzers::{Name, Record};
use crate::events::{Alert, Body, Event, FlowInfo, HostSighting, Indicator, Provenance, Role};
use crate::flow::FlowRecord;

pub use watchlist::{Matcher, WatchlistError};

/// What a name that is only mentioned does (`--mentions`): it alerts at
/// the lowest severity (the default: a machine looked up by a ransomware
/// VM's name is worth a look), it stays in its record's event only, or it
/// is not matched at all.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Mentions {
    #[default]
    Alert,
    Event,
    Off,
}

impl std::str::FromStr for Mentions {
    type Err = String;

    fn from_str(s: &str) -> Result<Mentions, String> {
        match s {
            "alert" => Ok(Mentions::Alert),
            "event" => Ok(Mentions::Event),
            "off" => Ok(Mentions::Off),
            _ => Err(format!("--mentions takes alert, event or off, not '{s}'")),
        }
    }
}

/// How long, in packet time, an alert waits for later records of its
/// connection that name the same machine.
pub const ALERT_HOLD_US: i64 = 5_000_000;

/// (connection, machine) pairs remembered as alerted, at most; past it the
/// memory starts again.
const MAX_REMEMBERED: usize = 100_000;

/// How much a claim says: a machine's own name at its address outranks a
/// mention.
fn strength(role: Role) -> u8 {
    match role {
        Role::Named => 1,
        Role::Client | Role::Server => 2,
    }
}

/// Per-worker detection state.
pub struct Detector {
    lists: Arc<lists::Lists>,
    /// The matcher in force, and the lists' generation it came from.
    matcher: Arc<Matcher>,
    generation: u64,
    home: network::HomeNet,
    /// The ASN database, for `asn:` entries.
    asn: Option<Arc<asn::AsnDb>>,
    mentions: Mentions,
    /// (connection, machine) alerted, with the strength of that claim.
    alerted: HashMap<(u64, String), u8>,
    /// Alerts waiting out their hold, in the order they were made.
    pending: Vec<Pending>,
    /// How many of `pending` wait on each connection (most records come
    /// from connections with none, which then need no search).
    pending_flows: HashMap<u64, u32, foldhash::fast::RandomState>,
    /// The earliest `since` in `pending` (`i64::MAX` with none).
    earliest: i64,
    /// The connections found to alert since last taken, when asked for
    /// (`-w`: their packets are written).
    verdicts: Option<Vec<FlowInfo>>,
}

/// What one record says of one watched machine (or listed address).
struct Found {
    /// The machine's key (its NetBIOS-length host label), or the address.
    key: String,
    entry: watchlist::Entry,
    /// The name shown (an address when the record showed none).
    hostname: String,
    role: Role,
    evidence: &'static str,
    fields: Vec<&'static str>,
    /// What the record says of that machine.
    facts: Facts,
    /// The list holding its address, if one does.
    listed: Option<String>,
    /// The address the machine was seen at.
    ip: Option<IpAddr>,
    indicator: Indicator,
}

impl Found {
    /// Matched by its address or system rather than by its name.
    fn by_address(&self) -> bool {
        self.indicator.address.is_some()
    }

    /// Adds another field of the same record naming the same machine: its
    /// entry if more severe, its claim if stronger.
    fn merge(&mut self, other: Found) {
        if self.by_address() != other.by_address() {
            self.pair(other);
            return;
        }
        add_fields(&mut self.fields, &other.fields);
        if other.entry.severity < self.entry.severity {
            self.entry = other.entry;
            self.indicator = other.indicator;
        }
        if strength(other.role) > strength(self.role) {
            self.role = other.role;
            self.hostname = other.hostname;
            self.evidence = other.evidence;
            self.facts = other.facts;
            self.listed = other.listed;
            self.ip = other.ip;
        }
    }

    /// Takes in what a later record says of the same machine: its claim
    /// when at least as strong (true then), the more severe entry, every
    /// field.
    fn absorb(&mut self, later: Found) -> bool {
        if self.by_address() != later.by_address() {
            return self.pair(later);
        }
        let mut fields = std::mem::take(&mut self.fields);
        add_fields(&mut fields, &later.fields);
        let takes_over = strength(later.role) >= strength(self.role);
        let keep_entry = self.entry.severity < later.entry.severity;
        // A listed address's alert keeps the name a record showed for it
        // over a later record that showed none.
        let is_address = |h: &str| h.parse::<IpAddr>().is_ok();
        let name = (is_address(&later.hostname) && !is_address(&self.hostname))
            .then(|| (self.hostname.clone(), self.key.clone()));
        let (entry, indicator) = if keep_entry {
            (self.entry.clone(), self.indicator.clone())
        } else {
            (later.entry.clone(), later.indicator.clone())
        };
        if takes_over {
            // What the earlier record said and the later does not still
            // counts (a build reported in one exchange, the outcome in
            // the next).
            let earlier = self.facts;
            *self = later;
            self.facts.keep(earlier);
        }
        if let Some((hostname, key)) = name {
            self.hostname = hostname;
            self.key = key;
        }
        self.fields = fields;
        self.entry = entry;
        self.indicator = indicator;
        takes_over
    }

    /// A machine matched by its name and by its address: the name's entry
    /// is the alert's (its builds weigh the claim), as severe as the more
    /// severe of the two; the address's list corroborates. True when
    /// `other` (the name) became the base.
    fn pair(&mut self, other: Found) -> bool {
        let severity = self.entry.severity.min(other.entry.severity);
        let took = self.by_address();
        let mut fields = std::mem::take(&mut self.fields);
        add_fields(&mut fields, &other.fields);
        // The stronger claim stays the alert's role: a mention of the name
        // does not demote the listed endpoint's own alert.
        let stronger = if strength(other.role) > strength(self.role) {
            (other.role, other.evidence, other.ip)
        } else {
            (self.role, self.evidence, self.ip)
        };
        let address_list = if took {
            let earlier = std::mem::replace(self, other);
            self.facts.keep(earlier.facts);
            earlier.entry.list.to_string()
        } else {
            other.entry.list.to_string()
        };
        (self.role, self.evidence, self.ip) = stronger;
        self.listed.get_or_insert(address_list);
        self.entry.severity = severity;
        self.fields = fields;
        took
    }
}

/// Appends the fields of `more` not yet in `fields`.
fn add_fields(fields: &mut Vec<&'static str>, more: &[&'static str]) {
    for f in more {
        if !fields.contains(f) {
            fields.push(f);
        }
    }
}

/// An alert waiting for its connection's later records.
struct Pending {
    key: (u64, String),
    /// Packet time it was first found.
    since: i64,
    found: Found,
    ts_us: i64,
    flow: FlowInfo,
    record: Arc<Record>,
}

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
            mentions: Mentions::default(),
            alerted: HashMap::new(),
            pending: Vec::new(),
            pending_flows: HashMap::default(),
            earliest: i64::MAX,
            verdicts: None,
        }
    }

    /// Looks endpoints up in `db` for the lists' `asn:` entries.
    pub fn with_asn_db(mut self, db: Option<Arc<asn::AsnDb>>) -> Self {
        self.asn = db;
        self
    }

    /// What mentions do (`--mentions`).
    pub fn with_mentions(mut self, mentions: Mentions) -> Self {
        self.mentions = mentions;
        self
    }

    /// Keeps the connections found to alert for [`Detector::take_verdicts`].
    pub fn keep_verdicts(&mut self) {
        self.verdicts.get_or_insert_with(Vec::new);
    }

    /// The connections found to alert since the last call (when made
    /// [`Detector::keep_verdicts`]): their alert may still be waiting out
    /// its hold, but it will be made.
    pub fn take_verdicts(&mut self) -> Vec<FlowInfo> {
        self.verdicts
            .as_mut()
            .map(std::mem::take)
            .unwrap_or_default()
    }

    /// Whether anything is waiting in [`Detector::take_verdicts`].
    pub fn has_verdicts(&self) -> bool {
        self.verdicts.as_ref().is_some_and(|v| !v.is_empty())
    }

    /// Turns one record into its events, appended to `out`; its alerts
    /// wait for [`Detector::tick`].
    pub fn process(&mut self, fr: FlowRecord, out: &mut Vec<Event>) {
        if self.lists.generation() != self.generation {
            (self.generation, self.matcher) = self.lists.current();
        }
        let FlowRecord {
            ts_us,
            flow,
            record,
        } = fr;
        let names: Vec<Name<'_>> = record
            .names()
            .into_iter()
            .map(|n| resolve(n, &flow))
            .collect();
        // A TCP connection nobody answered (a RST is no answer) may come
        // from a forged address: its names tie to no address. A datagram
        // needs no answer (a broadcast registration is the machine's own
        // claim), and the inventory's corroboration tells the two apart.
        let sightings = if flow.transport == crate::decode::Transport::Tcp && !flow.two_way {
            Vec::new()
        } else {
            sightings(&names)
        };
        // A machine whose name is watched and whose address is listed is
        // one machine: one alert, with every field that named it.
        let mut found = self.watched_names(&names, &record);
        for net in self.watched_networks(&names, &flow, &record) {
            match found.iter_mut().find(|g| g.key == net.key) {
                Some(g) => g.merge(net),
                None => found.push(net),
            }
        }
        if self.mentions == Mentions::Off {
            found.retain(|f| f.role != Role::Named);
        }
        let keep_record = record.logged_alone() || !found.is_empty();
        if self.mentions == Mentions::Event {
            found.retain(|f| f.role != Role::Named);
        }
        drop(names);
        let record = Arc::new(record);
        if keep_record {
            out.push(Event {
                ts_us,
                flow: Some(flow.clone()),
                body: Body::Record(record.clone()),
            });
        }
        out.extend(sightings.into_iter().map(|h| Event {
            ts_us,
            flow: Some(flow.clone()),
            body: Body::Inventory(h),
        }));
        for f in found {
            self.hold(f, ts_us, &flow, &record);
        }
    }

    /// Packet time passed: the alerts whose hold is over are written.
    pub fn tick(&mut self, now_us: i64, out: &mut Vec<Event>) {
        let due = now_us.saturating_sub(ALERT_HOLD_US);
        if self.earliest > due {
            return;
        }
        let (ready, waiting): (Vec<Pending>, Vec<Pending>) = std::mem::take(&mut self.pending)
            .into_iter()
            .partition(|p| p.since <= due);
        self.pending = waiting;
        self.earliest = self
            .pending
            .iter()
            .map(|p| p.since)
            .min()
            .unwrap_or(i64::MAX);
        for p in ready {
            if let Some(n) = self.pending_flows.get_mut(&p.key.0) {
                *n = n.saturating_sub(1);
                if *n == 0 {
                    self.pending_flows.remove(&p.key.0);
                }
            }
            out.push(self.alert(p));
        }
    }

    /// The end: every alert still waiting is written.
    pub fn finish(&mut self, out: &mut Vec<Event>) {
        self.tick(i64::MAX, out);
    }

    /// A found machine joins the alert waiting for its connection, or
    /// starts one unless an alert as strong was written already.
    fn hold(&mut self, f: Found, ts_us: i64, flow: &FlowInfo, record: &Arc<Record>) {
        if let Some(v) = self.verdicts.as_mut() {
            v.push(flow.clone());
        }
        let key = (flow.flow_id, f.key.clone());
        // The same machine: by its key, or the end whose address is listed,
        // whether or not a record showed its name.
        let same = |p: &Pending| {
            p.key.0 == key.0
                && (p.key.1 == key.1
                    || ((p.found.by_address() || f.by_address())
                        && p.found.role == f.role
                        && f.ip.is_some()
                        && p.found.ip == f.ip))
        };
        let waiting = self.pending_flows.contains_key(&key.0);
        if let Some(p) = waiting
            .then(|| self.pending.iter_mut().find(|p| same(p)))
            .flatten()
        {
            // A later record as strong takes over (a logon's last outcome
            // counts); every field either named stays listed.
            if p.found.absorb(f) {
                p.ts_us = ts_us;
                p.record = record.clone();
            }
            if p.key.1 != p.found.key {
                p.key.1 = p.found.key.clone();
                let s = strength(p.found.role);
                self.alerted.insert(p.key.clone(), s);
            }
            p.flow = flow.clone();
            return;
        }
        let s = strength(f.role);
        if self.alerted.get(&key).is_some_and(|&done| done >= s) {
            return;
        }
        if self.alerted.len() >= MAX_REMEMBERED {
            self.alerted.clear();
        }
        self.alerted.insert(key.clone(), s);
        *self.pending_flows.entry(key.0).or_default() += 1;
        self.earliest = self.earliest.min(ts_us);
        self.pending.push(Pending {
            key,
            since: ts_us,
            found: f,
            ts_us,
            flow: flow.clone(),
            record: record.clone(),
        });
    }

    /// The watched names of a record, one [`Found`] per machine.
    fn watched_names(&self, names: &[Name<'_>], record: &Record) -> Vec<Found> {
        let matcher = &self.matcher;
        let mut found: Vec<Found> = Vec::new();
        let mut allowed: Vec<String> = Vec::new();
        for f in names {
            let verdict = matcher.verdict(f.value);
            let Some(entry) = verdict.watched else {
                continue;
            };
            let key = watchlist::machine_key(f.value);
            if key.is_empty() {
                continue;
            }
            // An allow list (a lab's own VMs, benign names) has the last
            // word; each machine it keeps back is counted once.
            if verdict.allowed || f.ip.is_some_and(|a| matcher.allows_ip(a)) {
                if !allowed.contains(&key) {
                    self.lists.count_allowed();
                    allowed.push(key);
                }
                continue;
            }
            // Its address on a network or system list corroborates it.
            let listed = f.ip.and_then(|a| self.listing(a));
            let new = Found {
                key,
                indicator: Indicator {
                    value: entry.pattern.to_string(),
                    kind: entry.pattern.kind(),
                    address: None,
                    end: None,
                },
                entry: entry.clone(),
                hostname: f.value.to_string(),
                role: f.role,
                evidence: f.path,
                fields: vec![f.path],
                facts: record.facts(f),
                listed,
                ip: f.ip,
            };
            match found.iter_mut().find(|g| g.key == new.key) {
                Some(g) => g.merge(new),
                None => found.push(new),
            }
        }
        found
    }

    /// The list holding `ip` (a network, or its autonomous system outside
    /// home-net), if one does.
    fn listing(&self, ip: IpAddr) -> Option<String> {
        let matcher = &self.matcher;
        let by_net = matcher.lookup_ip(ip).map(|e| e.list.to_string());
        let by_asn = || {
            let db = self.asn.as_ref().filter(|_| matcher.has_asns())?;
            let (n, _) = db.lookup(ip).filter(|_| !self.home.contains(ip))?;
            matcher.lookup_asn(n).map(|e| e.list.to_string())
        };
        by_net.or_else(by_asn)
    }

    /// A listed network or autonomous system alerts on any handshake from
    /// or to it, names or not (NLA hides the RDP client name): with the best
    /// name the record shows for that side, else the address.
    fn watched_networks(&self, names: &[Name<'_>], flow: &FlowInfo, record: &Record) -> Vec<Found> {
        let matcher = &self.matcher;
        let mut found = Vec::new();
        for (ip, role, end, path, as_path) in [
            (flow.src_ip, Role::Client, "src", "src_ip", "src_asn"),
            (flow.dest_ip, Role::Server, "dest", "dest_ip", "dest_asn"),
        ] {
            // Its autonomous system, outside home-net, with a database.
            let system = match &self.asn {
                Some(db) if matcher.has_asns() && !self.home.contains(ip) => db.lookup(ip),
                _ => None,
            };
            let mut hits = Vec::new();
            if let Some((number, _)) = system {
                match matcher.lookup_asn(number) {
                    Some(_) if matcher.allows_asn(number) => self.lists.count_allowed(),
                    Some(e) => hits.push((e.clone(), as_path)),
                    None => {}
                }
            }
            match matcher.lookup_ip(ip) {
                Some(_) if matcher.allows_ip(ip) => self.lists.count_allowed(),
                Some(e) => hits.push((e.clone(), path)),
                None => {}
            }
            if hits.is_empty() {
                continue;
            }
            let shown = names
                .iter()
                .find(|n| n.role == role && n.machine)
                .map_or_else(|| ip.to_string(), |n| n.value.to_string());
            // The machine is its name's key when it showed one, else its
            // address: its network and its system are one endpoint.
            let key = match watchlist::machine_key(&shown) {
                k if k.is_empty() || shown.parse::<IpAddr>().is_ok() => ip.to_string(),
                k => k,
            };
            for (entry, evidence) in hits {
                let facts = record.facts(&Name::of(evidence, role, &shown, true));
                let new = Found {
                    key: key.clone(),
                    indicator: Indicator {
                        value: entry.pattern.to_string(),
                        kind: entry.pattern.kind(),
                        address: Some(ip),
                        end: Some(end),
                    },
                    entry,
                    hostname: shown.clone(),
                    role,
                    evidence,
                    fields: vec![evidence],
                    facts,
                    listed: None,
                    ip: Some(ip),
                };
                match found.iter_mut().find(|g: &&mut Found| g.key == new.key) {
                    Some(g) => g.merge(new),
                    None => found.push(new),
                }
            }
        }
        found
    }

    /// The alert event of a pending alert whose hold is over.
    fn alert(&self, p: Pending) -> Event {
        let Pending {
            found,
            ts_us,
            flow,
            record,
            ..
        } = p;
        let Found {
            entry: e,
            hostname,
            role,
            evidence,
            fields,
            facts,
            listed,
            ip,
            indicator,
            ..
        } = found;
        let (score, corroboration) =
            confidence::weigh(&e, role, facts, &flow, &self.home, listed.as_deref());
        // A network's or a system's alert names the indicator that
        // matched; a name's, the name.
        let shown = match indicator.kind {
            "network" | "asn" if evidence.ends_with("_asn") => indicator.value.clone(),
            "network" => indicator
                .address
                .map_or_else(|| indicator.value.clone(), |a| a.to_string()),
            _ => hostname.clone(),
        };
        // A mention alerts at the lowest severity.
        let severity = if role == Role::Named { 3 } else { e.severity };
        Event {
            ts_us,
            flow: Some(flow.clone()),
            body: Body::Alert(Box::new(Alert {
                action: "allowed",
                gid: 1,
                rev: 1,
                signature: e.signature_for(&shown),
                signature_id: e.id,
                category: e.category.to_string(),
                severity,
                list: e.list.to_string(),
                hostname,
                role,
                evidence,
                fields,
                candidate: e.candidate,
                handshake_seen: flow.handshake,
                score,
                corroboration,
                indicator,
                provenance: Provenance {
                    file: e.source.to_string(),
                    line: e.line,
                    note: e.note.clone(),
                    refs: e
                        .refs
                        .iter()
                        .flatten()
                        .map(|(k, v)| (*k, v.to_string()))
                        .collect(),
                },
                suppressed: None,
                record_omitted: None,
                ip,
                record,
            })),
        }
    }
}

/// A name's role and address as the record's endpoints make them. The
/// address is that of the endpoint that said the name; a name the record
/// ties to another address (a registration or an answer naming someone
/// else's) is only mentioned: the packet's sender cannot pin a name on a
/// host that never said it. A lease its server acknowledged (DHCP) puts the
/// name at the leased address. Nobody lives at 0.0.0.0 or ::.
fn resolve<'a>(f: Name<'a>, flow: &FlowInfo) -> Name<'a> {
    let sender = match f.role {
        Role::Client => Some(flow.src_ip),
        Role::Server => Some(flow.dest_ip),
        Role::Named => None,
    };
    let ip = match (f.leased, f.ip) {
        (true, Some(lease)) if f.role != Role::Named => Some(lease),
        _ => sender.filter(|s| f.ip.is_none_or(|claimed| claimed == *s)),
    };
    let ip = ip.filter(|a| !a.is_unspecified());
    let role = if ip.is_none() { Role::Named } else { f.role };
    Name { role, ip, ..f }
}

/// The machines' names tied to their addresses: the inventory's sightings.
fn sightings(names: &[Name<'_>]) -> Vec<HostSighting> {
    names
        .iter()
        .filter(|f| f.machine)
        .filter_map(|f| {
            Some(HostSighting {
                name: f.value.to_string(),
                ip: f.ip?,
                role: f.role,
                evidence: f.path,
            })
        })
        .collect()
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
            handshake: true,
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

    fn alerts(events: &[Event]) -> Vec<&Alert> {
        events
            .iter()
            .filter_map(|e| match &e.body {
                Body::Alert(a) => Some(a.as_ref()),
                _ => None,
            })
            .collect()
    }

    /// `record` on `flow` at `ts`, then the hold's end: every event.
    fn run(d: &mut Detector, ts: i64, flow_id: u64, record: Record) -> Vec<Event> {
        let mut out = Vec::new();
        d.process(
            FlowRecord {
                ts_us: ts,
                flow: flow(flow_id),
                record,
            },
            &mut out,
        );
        d.tick(ts + ALERT_HOLD_US, &mut out);
        out
    }

    #[test]
    fn alert_carries_record_and_provenance_once_per_machine_and_connection() {
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
        // The alert waits out its hold; the record and the sighting do not.
        assert_eq!(kinds(&out), vec!["ntlm", "inventory"]);
        d.tick(5 + ALERT_HOLD_US - 1, &mut out);
        assert_eq!(kinds(&out), vec!["ntlm", "inventory"]);
        d.tick(5 + ALERT_HOLD_US, &mut out);
        assert_eq!(kinds(&out), vec!["ntlm", "inventory", "alert"]);
        let a = alerts(&out)[0];
        assert_eq!(
            (a.hostname.as_str(), a.role, a.evidence, a.severity),
            (
                "win-livfrvqfmko",
                Role::Client,
                "ntlm.client.workstation",
                1
            )
        );
        assert_eq!(a.fields, ["ntlm.client.workstation"]);
        assert_eq!(
            (a.list.as_str(), a.signature_id),
            ("vmmanager-defaults", 9_100_002)
        );
        assert_eq!(
            a.signature,
            "VMmanager default Windows host name (win-livfrvqfmko)"
        );
        assert_eq!(
            (a.indicator.value.as_str(), a.indicator.kind),
            ("WIN-LIVFRVQFMKO", "name")
        );
        assert_eq!(a.provenance.file, "builtin:vmmanager-defaults");
        assert!(a.provenance.note.is_some());
        assert!(matches!(a.record.as_ref(), Record::Ntlm(n) if n.carrier == "smb2"));
        let Body::Inventory(h) = &out[1].body else {
            panic!()
        };
        assert_eq!(h.ip.to_string(), "10.0.0.1");
        // The same machine again on the same connection, later: no second
        // alert.
        assert_eq!(
            kinds(&run(&mut d, 10_000_000, 1, ntlm("WIN-LIVFRVQFMKO"))),
            vec!["ntlm", "inventory"]
        );
        // Another connection alerts again.
        assert_eq!(
            kinds(&run(&mut d, 20_000_000, 2, ntlm("WIN-LIVFRVQFMKO"))),
            vec!["ntlm", "inventory", "alert"]
        );
    }

    /// One NTLM CHALLENGE names its server three times (target, NetBIOS and
    /// DNS names): one alert with the three fields.
    #[test]
    fn the_fields_naming_one_machine_make_one_alert() {
        let mut d = detector();
        let rec = Record::Ntlm(Box::new(NtlmRecord {
            carrier: "http",
            result: "success",
            server: Some(crate::analyzers::ntlm::NtlmServer {
                target_name: Some("WIN-LIVFRVQFMKO".into()),
                nb_computer_name: Some("WIN-LIVFRVQFMKO".into()),
                dns_computer_name: Some("win-livfrvqfmko.corp.example".into()),
                ..Default::default()
            }),
            ..NtlmRecord::default()
        }));
        let out = run(&mut d, 1, 7, rec);
        let a = alerts(&out);
        assert_eq!(a.len(), 1);
        assert_eq!(
            a[0].fields,
            [
                "ntlm.server.nb_computer_name",
                "ntlm.server.dns_computer_name",
                "ntlm.server.target_name"
            ]
        );
        // The first field of the strongest claim is the alert's evidence.
        assert_eq!(
            (a[0].role, a[0].evidence),
            (Role::Server, "ntlm.server.nb_computer_name")
        );
    }

    /// An NTLMv2 logon of WIN-J9D866ESIJ2 over SMB with its outcome.
    fn logon(result: &'static str) -> Record {
        Record::Ntlm(Box::new(NtlmRecord {
            carrier: "smb2",
            result,
            client: Some(NtlmClient {
                workstation: Some("WIN-J9D866ESIJ2".into()),
                response: "ntlmv2",
                ..NtlmClient::default()
            }),
            ..NtlmRecord::default()
        }))
    }

    /// A logon that fails and then succeeds on one connection is one alert,
    /// weighed with the last outcome.
    #[test]
    fn the_last_outcome_of_a_connection_counts() {
        let mut d = detector();
        let mut out = Vec::new();
        for (ts, r) in [(1, "failure"), (2_000_000, "success")] {
            d.process(
                FlowRecord {
                    ts_us: ts,
                    flow: flow(9),
                    record: logon(r),
                },
                &mut out,
            );
        }
        d.finish(&mut out);
        let a = alerts(&out);
        assert_eq!(a.len(), 1);
        assert!(
            a[0].corroboration
                .iter()
                .any(|c| c == "its logon succeeded"),
            "{:?}",
            a[0].corroboration
        );
        assert!(matches!(a[0].record.as_ref(), Record::Ntlm(n) if n.result == "success"));
    }

    /// Held alerts of two connections, their records interleaved: each
    /// connection's records join its own alert, and once both are out
    /// nothing is left held.
    #[test]
    fn interleaved_connections_keep_their_own_held_alerts() {
        let mut d = detector();
        let mut out = Vec::new();
        for (ts, id, r) in [
            (1, 9, "failure"),
            (2, 10, "failure"),
            (3, 9, "success"),
            (ALERT_HOLD_US + 2, 11, "failure"),
        ] {
            d.process(
                FlowRecord {
                    ts_us: ts,
                    flow: flow(id),
                    record: logon(r),
                },
                &mut out,
            );
        }
        // The hold of the first two is over; 11's is not.
        d.tick(ALERT_HOLD_US + 2, &mut out);
        assert_eq!(alerts(&out).len(), 2);
        assert_eq!(d.pending.len(), 1);
        assert_eq!(d.pending_flows.len(), 1);
        assert_eq!(d.earliest, ALERT_HOLD_US + 2);
        d.finish(&mut out);
        let a = alerts(&out);
        let outcome = |i: usize| match a[i].record.as_ref() {
            Record::Ntlm(n) => n.result,
            _ => "",
        };
        assert_eq!(a.len(), 3);
        assert_eq!(
            (outcome(0), outcome(1), outcome(2)),
            ("success", "failure", "failure")
        );
        assert!(d.pending.is_empty() && d.pending_flows.is_empty());
        assert_eq!(d.earliest, i64::MAX);
    }

    /// A mention first, the machine's own claim later on the same
    /// connection: the stronger claim is not lost behind the weaker one,
    /// even once the mention's alert is out.
    #[test]
    fn a_stronger_claim_alerts_after_a_mention() {
        let mut d = detector();
        let rec = |ws: &str, src: [u8; 4]| {
            Record::from(crate::analyzers::nbns::NbnsRecord {
                opcode: "registration",
                names: vec![crate::analyzers::nbns::NbnsName {
                    name: ws.into(),
                    suffix: "<00>".into(),
                    suffix_type: "workstation",
                    group: false,
                    address: Some(src.into()),
                    ttl: None,
                    source: "request",
                    sender: crate::analyzers::Dir::ToServer,
                }],
                ..Default::default()
            })
        };
        // Tied to another address: a mention, at the lowest severity.
        let out = run(&mut d, 1, 11, rec("WIN-J9D866ESIJ2", [10, 0, 0, 9]));
        let a = alerts(&out);
        assert_eq!((a[0].role, a[0].severity), (Role::Named, 3));
        // Its own address now: the client's claim alerts.
        let out = run(
            &mut d,
            20_000_000,
            11,
            rec("WIN-J9D866ESIJ2", [10, 0, 0, 1]),
        );
        let a = alerts(&out);
        assert_eq!((a.len(), a[0].role, a[0].severity), (1, Role::Client, 1));
        // Mentions can be kept out of alerts.
        let mut quiet = detector().with_mentions(Mentions::Event);
        let out = run(&mut quiet, 1, 12, rec("WIN-J9D866ESIJ2", [10, 0, 0, 9]));
        assert_eq!(kinds(&out), vec!["nbns"]);
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
            let out = run(&mut d, 1, 100 + i as u64, record(sender, source, addr));
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
        let rdp = RdpRecord {
            cookie: Some("WIN-J9D866ESIJ2".into()),
            client: Some(RdpClient {
                client_name: Some("DESKTOP-1".into()),
                ..RdpClient::default()
            }),
            ..RdpRecord::default()
        };
        let out = run(&mut d, 1, 3, Record::Rdp(Box::new(rdp)));
        assert_eq!(kinds(&out), vec!["rdp", "inventory", "alert"]);
        let tls = TlsRecord {
            certificate: crate::analyzers::tls::Certificate {
                described: Arc::new(crate::analyzers::tls::Description {
                    subject_cn: Some("www.example.com".into()),
                    ..Default::default()
                }),
                ..Default::default()
            },
            ..Default::default()
        };
        assert!(run(&mut d, 1, 4, Record::Tls(Box::new(tls.clone()))).is_empty());
        let mut hit = tls;
        Arc::make_mut(&mut hit.certificate.described).subjectaltname =
            vec!["WIN-344VU98D3RU.example.net".into()];
        let out = run(&mut d, 1, 4, Record::Tls(Box::new(hit)));
        assert_eq!(kinds(&out), vec!["tls", "alert"]);
    }
}
