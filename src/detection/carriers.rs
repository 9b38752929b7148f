//! Which protocols named a machine at an address, for the signal "the same
//! name at the same address on several independent carriers". The output
//! stage keeps it: it sees every host sighting whichever worker made it.
//!
//! A carrier is the protocol of a sighting (`nbns`, `dhcp`, `ntlm`, ...).
//! It corroborates an alert when it is not the alert's own protocol, came
//! from another connection (the NTLM inside an RDP connection is that
//! connection again) and was seen no later in packet time than the alert.
//! Only sightings in exchanges the other side answered weigh: a packet
//! nobody answered may carry a forged source address, and must not make an
//! innocent host's alerts look surer; those are named, unweighed.
//! Per (machine, address, protocol) the earliest sighting is kept, and the
//! earliest from another connection than that one: enough to answer for
//! any alert. Bounded like the inventory: past [`MAX_PAIRS`] pairs, new
//! ones are counted, not kept.

use std::collections::hash_map::Entry;
use std::collections::HashMap;
use std::net::IpAddr;

use super::confidence;
use super::inventory::{MAX_BYTES, MAX_PAIRS, PAIR_COST};
use super::watchlist::machine_key as machine;
use crate::events::{Body, Event, HostSighting};

/// Packet time and flow of a sighting.
type Seen = (i64, u64);

/// One protocol's sightings of a (name, address) pair.
struct Sightings {
    name: &'static str,
    /// Whether these sightings came in exchanges the other side answered
    /// (a one-way packet may carry a forged source address).
    answered: bool,
    /// The earliest sighting.
    first: Seen,
    /// The earliest on another flow than `first`'s.
    other: Option<Seen>,
}

impl Sightings {
    fn add(&mut self, new: Seen) {
        let mut all = [Some(self.first), self.other, Some(new)];
        all.sort_unstable_by_key(|s| s.map_or((i64::MAX, u64::MAX), |s| s));
        let Some(first) = all[0] else { return };
        self.first = first;
        self.other = all.iter().flatten().find(|s| s.1 != first.1).copied();
    }

    /// The earliest sighting not on `flow`.
    fn apart_from(&self, flow: u64) -> Option<Seen> {
        if self.first.1 != flow {
            Some(self.first)
        } else {
            self.other
        }
    }
}

#[derive(Default)]
pub struct Carriers {
    /// Keyed per process (names and addresses are the sender's choice).
    seen: HashMap<(String, IpAddr), Vec<Sightings>, foldhash::quality::RandomState>,
    /// What `seen` holds: its names' bytes and a fixed cost per pair.
    bytes: usize,
    /// Sightings not kept because the table was full.
    pub overflow: u64,
}

impl Carriers {
    /// Records a host sighting made at `ts_us` on flow `flow`, in an
    /// exchange the other side had `answered` or not.
    pub fn saw(&mut self, ts_us: i64, flow: u64, answered: bool, h: &HostSighting) {
        let key = (machine(&h.name), h.ip);
        if key.0.is_empty() {
            return;
        }
        let name = protocol_of(h.evidence);
        let cost = key.0.len() + PAIR_COST;
        let full = self.seen.len() >= MAX_PAIRS || self.bytes + cost > MAX_BYTES;
        let protocols = match self.seen.entry(key) {
            Entry::Occupied(e) => e.into_mut(),
            Entry::Vacant(_) if full => {
                self.overflow += 1;
                return;
            }
            Entry::Vacant(e) => {
                self.bytes += cost;
                e.insert(Vec::new())
            }
        };
        match protocols
            .iter_mut()
            .find(|p| p.name == name && p.answered == answered)
        {
            Some(p) => p.add((ts_us, flow)),
            None => protocols.push(Sightings {
                name,
                answered,
                first: (ts_us, flow),
                other: None,
            }),
        }
    }

    /// The other carriers that named the machine of an alert event at its
    /// address, added to its corroboration.
    pub fn corroborate(&self, ev: &mut Event) {
        let flow = ev.flow.as_ref().map_or(u64::MAX, |f| f.flow_id);
        let ts = ev.ts_us;
        let Body::Alert(a) = &mut ev.body else { return };
        let Some(ip) = a.ip else { return };
        let own = protocol_of(a.evidence);
        let Some(protocols) = self.seen.get(&(machine(&a.hostname), ip)) else {
            return;
        };
        let before: Vec<&Sightings> = protocols
            .iter()
            .filter(|p| p.name != own)
            .filter(|p| p.apart_from(flow).is_some_and(|(t, _)| t <= ts))
            .collect();
        let mut answered: Vec<&str> = before
            .iter()
            .filter(|p| p.answered)
            .map(|p| p.name)
            .collect();
        answered.sort_unstable();
        let mut unanswered: Vec<&str> = before
            .iter()
            .filter(|p| !p.answered && !answered.contains(&p.name))
            .map(|p| p.name)
            .collect();
        unanswered.sort_unstable();
        unanswered.dedup();
        confidence::corroborate(a, ip, &answered, &unanswered);
    }
}

/// The protocol of an evidence path (`dhcp.hostname` is `dhcp`'s).
fn protocol_of(path: &'static str) -> &'static str {
    path.split('.').next().unwrap_or(path)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::analyzers::Record;
    use crate::decode::Transport;
    use crate::events::Confidence;
    use crate::events::{Alert, FlowInfo, Role};

    const AT: [u8; 4] = [10, 20, 0, 77];

    fn flow(id: u64) -> FlowInfo {
        FlowInfo {
            flow_id: id,
            transport: Transport::Tcp,
            src_ip: AT.into(),
            src_port: 49_812,
            dest_ip: [10, 20, 0, 5].into(),
            dest_port: 445,
            vlans: Default::default(),
            iface: None,
            two_way: true,
            handshake: true,
            overlap: None,
        }
    }

    fn host(name: &str, evidence: &'static str) -> HostSighting {
        HostSighting {
            name: name.into(),
            ip: AT.into(),
            role: Role::Client,
            evidence,
        }
    }

    /// An NTLM alert on WIN-J9D866ESIJ2 at 10.20.0.77 on `flow` at `ts`,
    /// weighed 1 (medium) before corroboration.
    fn alert(ts: i64, flow_id: u64) -> Event {
        Event {
            ts_us: ts,
            flow: Some(flow(flow_id)),
            body: Body::Alert(Box::new(Alert {
                corroboration: vec!["its logon succeeded".into()],
                score: 1,
                ip: Some(AT.into()),
                ..Alert::on_default_name(Record::Ntlm(Box::default()))
            })),
        }
    }

    fn weighed(c: &Carriers, ts: i64, flow_id: u64) -> (Confidence, i32, Vec<String>) {
        let mut ev = alert(ts, flow_id);
        c.corroborate(&mut ev);
        match ev.body {
            Body::Alert(a) => (a.confidence(), a.score, a.corroboration),
            _ => (Confidence::Low, 0, Vec::new()),
        }
    }

    #[test]
    fn other_protocols_on_other_connections_before_the_alert_agree() {
        let mut c = Carriers::default();
        // The alert's own protocol elsewhere, and another protocol on the
        // alert's own connection (flow 7): neither is independent.
        c.saw(
            100,
            3,
            true,
            &host("WIN-J9D866ESIJ2", "ntlm.client.workstation"),
        );
        c.saw(100, 7, true, &host("WIN-J9D866ESIJ2", "smb.tree.server"));
        // Another address, another name: not this machine.
        let mut elsewhere = host("WIN-J9D866ESIJ2", "nbns.query.name");
        elsewhere.ip = [10, 20, 0, 78].into();
        c.saw(100, 4, true, &elsewhere);
        c.saw(100, 5, true, &host("WIN-LIVFRVQFMKO", "nbns.query.name"));
        assert_eq!(
            weighed(&c, 500, 7),
            (
                Confidence::Medium,
                1,
                vec!["its logon succeeded".to_string()]
            )
        );
        // A DHCP lease in its name (another form of it) before the alert.
        c.saw(
            200,
            9,
            true,
            &host("win-j9d866esij2.local", "dhcp.hostname"),
        );
        // A browser announcement after the alert does not count for it.
        c.saw(
            900,
            11,
            true,
            &host("WIN-J9D866ESIJ2", "browser.server_name"),
        );
        assert_eq!(
            weighed(&c, 500, 7),
            (
                Confidence::High,
                2,
                vec![
                    "its logon succeeded".to_string(),
                    "also named at 10.20.0.77 by dhcp".to_string()
                ]
            )
        );
        // Later, both count; two carriers weigh 2, no more.
        c.saw(950, 12, true, &host("WIN-J9D866ESIJ2$", "krb5.cname"));
        let (confidence, score, lines) = weighed(&c, 1000, 7);
        assert_eq!((confidence, score), (Confidence::High, 3));
        assert_eq!(
            lines.last().map(String::as_str),
            Some("also named at 10.20.0.77 by browser, dhcp, krb5")
        );
        // The SMB sighting of flow 7 counts for an alert on another flow.
        let (_, _, lines) = weighed(&c, 1000, 8);
        assert_eq!(
            lines.last().map(String::as_str),
            Some("also named at 10.20.0.77 by browser, dhcp, krb5, smb")
        );
    }

    #[test]
    fn keeps_the_earliest_sighting_and_the_earliest_on_another_flow() {
        let mut p = Sightings {
            name: "nbns",
            answered: true,
            first: (50, 1),
            other: None,
        };
        p.add((60, 1));
        assert_eq!((p.first, p.other), ((50, 1), None));
        p.add((70, 2));
        assert_eq!((p.first, p.other), ((50, 1), Some((70, 2))));
        p.add((40, 2));
        assert_eq!((p.first, p.other), ((40, 2), Some((50, 1))));
        p.add((45, 3));
        assert_eq!((p.first, p.other), ((40, 2), Some((45, 3))));
        assert_eq!(p.apart_from(2), Some((45, 3)));
        assert_eq!(p.apart_from(3), Some((40, 2)));
    }

    /// A full table counts each new machine it cannot hold, and still
    /// adds carriers to the machines it holds.
    #[test]
    fn a_full_table_counts_new_machines_and_keeps_its_own() {
        let mut c = Carriers::default();
        let at = |i: u32| HostSighting {
            name: "HOST-1".into(),
            ip: IpAddr::from(i.to_be_bytes()),
            role: Role::Client,
            evidence: "nbns.names.name",
        };
        let fits = MAX_BYTES / ("HOST-1".len() + PAIR_COST);
        for i in 0..(fits as u32 + 3) {
            c.saw(i64::from(i), 1, true, &at(i));
        }
        assert_eq!((c.seen.len(), c.overflow), (fits, 3));
        let mut dhcp = at(7);
        dhcp.evidence = "dhcp.hostname";
        c.saw(500, 2, true, &dhcp);
        let held = c.seen.get(&("HOST-1".to_string(), dhcp.ip));
        let names: Vec<&str> = held.into_iter().flatten().map(|p| p.name).collect();
        assert_eq!(names, ["nbns", "dhcp"]);
        assert_eq!((c.seen.len(), c.overflow), (fits, 3));
    }

    #[test]
    fn a_packet_nobody_answered_is_named_not_weighed() {
        let mut c = Carriers::default();
        // A registration broadcast (or forged) from the alert's address,
        // then the same name in a DHCP exchange its server answered.
        c.saw(100, 3, false, &host("WIN-J9D866ESIJ2", "nbns.names.name"));
        assert_eq!(
            weighed(&c, 500, 7),
            (
                Confidence::Medium,
                1,
                vec![
                    "its logon succeeded".to_string(),
                    "also named at 10.20.0.77 by nbns in packets nobody answered (not weighed)"
                        .to_string()
                ]
            )
        );
        c.saw(200, 9, true, &host("WIN-J9D866ESIJ2", "dhcp.hostname"));
        c.saw(300, 11, true, &host("WIN-J9D866ESIJ2", "nbns.names.name"));
        // Once NetBIOS also named it in an answered exchange, it weighs.
        assert_eq!(
            weighed(&c, 500, 7),
            (
                Confidence::High,
                3,
                vec![
                    "its logon succeeded".to_string(),
                    "also named at 10.20.0.77 by dhcp, nbns".to_string()
                ]
            )
        );
    }
}
