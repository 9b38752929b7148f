//! The run-wide view the output stage keeps: first sightings of (host name,
//! address) pairs, and alerts grouped by host name for the human summary.
//! Bounded: past [`MAX_PAIRS`] pairs or [`MAX_BYTES`] of them (names are
//! up to 255 bytes, and a sender chooses them), new sightings are counted,
//! not kept.

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::net::IpAddr;

use crate::events::{Body, Event, Role};
use crate::render::{escape_control, rfc3339_micros};

pub const MAX_PAIRS: usize = 1_000_000;
/// What the pairs may hold, counted as their names' bytes (each is kept
/// twice: the key, and the name as shown) and a fixed cost per pair.
pub const MAX_BYTES: usize = 32 << 20;
/// Bookkeeping per pair beyond its name's bytes (hash slots, tree nodes,
/// the address).
pub const PAIR_COST: usize = 96;
/// Host names listed in the summary's inventory part.
const MAX_SUMMARY_HOSTS: usize = 50;
const MAX_PEERS: usize = 8;

#[derive(Debug, Default)]
struct AlertGroup {
    shown: String,
    list: String,
    severity: u8,
    candidate: bool,
    count: u64,
    /// Alerts held back by `--suppress`.
    suppressed: u64,
    first_us: i64,
    last_us: i64,
    evidence: BTreeSet<&'static str>,
    peers: BTreeSet<String>,
}

#[derive(Debug, Default)]
pub struct Inventory {
    /// Keyed per process (names and addresses are the sender's choice).
    seen: HashSet<(String, IpAddr), foldhash::quality::RandomState>,
    /// What `seen` and `hosts` hold, as [`MAX_BYTES`] counts it.
    bytes: usize,
    /// Sightings not kept because the inventory was full.
    pub overflow: u64,
    /// Names and their addresses; sorted only for the summary (a sighting
    /// of a new name is a hash lookup, not a walk down a tree of names).
    hosts: HashMap<String, BTreeSet<(IpAddr, Role)>, foldhash::quality::RandomState>,
    alerts: BTreeMap<String, AlertGroup>,
    pub alert_count: u64,
}

impl Inventory {
    /// Records an event; returns whether it should be written (a host
    /// sighting only the first time).
    pub fn admit(&mut self, ev: &Event) -> bool {
        match &ev.body {
            Body::Inventory(h) => {
                let upper = if h.name.is_ascii() {
                    h.name.to_ascii_uppercase()
                } else {
                    h.name.to_uppercase()
                };
                let key = (upper, h.ip);
                let cost = 2 * h.name.len() + PAIR_COST;
                if self.seen.len() >= MAX_PAIRS || self.bytes + cost > MAX_BYTES {
                    if !self.seen.contains(&key) {
                        self.overflow += 1;
                    }
                    return false;
                }
                if !self.seen.insert(key) {
                    return false;
                }
                self.bytes += cost;
                self.hosts
                    .entry(h.name.clone())
                    .or_default()
                    .insert((h.ip, h.role));
                true
            }
            Body::Alert(a) => {
                self.alert_count += 1;
                let g = self
                    .alerts
                    .entry(a.hostname.to_uppercase())
                    .or_insert_with(|| AlertGroup {
                        shown: a.hostname.clone(),
                        list: a.list.clone(),
                        severity: a.severity,
                        candidate: a.candidate,
                        first_us: ev.ts_us,
                        ..AlertGroup::default()
                    });
                g.count += 1;
                g.first_us = g.first_us.min(ev.ts_us);
                g.last_us = g.last_us.max(ev.ts_us);
                g.evidence.insert(a.evidence);
                if let Some(f) = &ev.flow {
                    if g.peers.len() < MAX_PEERS {
                        g.peers
                            .insert(format!("{} -> {}:{}", f.src_ip, f.dest_ip, f.dest_port));
                    }
                }
                true
            }
            _ => true,
        }
    }

    /// An alert `--suppress` held back, counted under its host name.
    pub fn suppressed(&mut self, ev: &Event) {
        if let Body::Alert(a) = &ev.body {
            if let Some(g) = self.alerts.get_mut(&a.hostname.to_uppercase()) {
                g.suppressed += 1;
            }
        }
    }

    pub fn alerts(&self) -> u64 {
        self.alert_count
    }

    /// The end-of-run summary for a terminal; names are escaped.
    pub fn summary(&self, color: bool) -> String {
        let (red, yellow, bold, dim, off) = if color {
            ("\x1b[31;1m", "\x1b[33m", "\x1b[1m", "\x1b[2m", "\x1b[0m")
        } else {
            ("", "", "", "", "")
        };
        let mut s = String::new();
        if self.alerts.is_empty() {
            s.push_str(&format!("{bold}No watched host names seen.{off}\n"));
        } else {
            s.push_str(&format!("{bold}Alerts by host name:{off}\n"));
            let mut groups: Vec<&AlertGroup> = self.alerts.values().collect();
            groups.sort_by_key(|g| (g.severity, g.first_us));
            for g in groups {
                let sev = if g.severity == 1 { red } else { yellow };
                s.push_str(&format!(
                    "  {sev}[sev {}]{off} {bold}{}{off}{} on {}: {} alert{}, first {}, last {}\n",
                    g.severity,
                    escape_control(&g.shown),
                    if g.candidate { " (candidate)" } else { "" },
                    escape_control(&g.list),
                    g.count,
                    if g.count == 1 { "" } else { "s" },
                    rfc3339_micros(g.first_us),
                    rfc3339_micros(g.last_us),
                ));
                if g.suppressed > 0 {
                    s.push_str(&format!(
                        "      {dim}{} more held back by --suppress{off}\n",
                        g.suppressed
                    ));
                }
                s.push_str(&format!(
                    "      {dim}seen in: {}{off}\n",
                    g.evidence.iter().copied().collect::<Vec<_>>().join(", ")
                ));
                for p in &g.peers {
                    s.push_str(&format!("      {dim}{p}{off}\n"));
                }
            }
        }
        if !self.hosts.is_empty() {
            s.push_str(&format!(
                "{bold}Host inventory ({} names):{off}\n",
                self.hosts.len()
            ));
            // The first names in order, without sorting them all.
            let mut names: Vec<_> = self.hosts.iter().collect();
            if names.len() > MAX_SUMMARY_HOSTS {
                names.select_nth_unstable_by(MAX_SUMMARY_HOSTS, |a, b| a.0.cmp(b.0));
                names.truncate(MAX_SUMMARY_HOSTS);
            }
            names.sort_unstable_by(|a, b| a.0.cmp(b.0));
            for (name, addrs) in names {
                let list: Vec<String> = addrs
                    .iter()
                    .map(|(ip, role)| format!("{ip} ({})", role.as_str()))
                    .collect();
                s.push_str(&format!(
                    "  {:<24} {}\n",
                    escape_control(name),
                    list.join(", ")
                ));
            }
            if self.hosts.len() > MAX_SUMMARY_HOSTS {
                s.push_str(&format!(
                    "  ... and {} more\n",
                    self.hosts.len() - MAX_SUMMARY_HOSTS
                ));
            }
        }
        s
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::events::HostSighting;

    /// The summary lists the first 50 names in byte order, whatever the
    /// order they were seen in, and counts the rest.
    #[test]
    fn the_summary_lists_the_first_names_in_order() {
        let mut inv = Inventory::default();
        // 60 names, seen in an order that is not theirs.
        for i in (0..60u32).map(|i| (i * 37) % 60) {
            let ev = Event {
                ts_us: 0,
                flow: None,
                body: Body::Inventory(HostSighting {
                    name: format!("HOST-{i:02}"),
                    ip: IpAddr::from([10, 0, 0, i as u8]),
                    role: Role::Client,
                    evidence: "nbns.name",
                }),
            };
            assert!(inv.admit(&ev));
        }
        let summary = inv.summary(false);
        let listed: Vec<&str> = summary
            .lines()
            .filter_map(|l| l.trim_start().strip_prefix("HOST-"))
            .collect();
        let want: Vec<String> = (0..50).map(|i| format!("{i:02}")).collect();
        let got: Vec<String> = listed
            .iter()
            .map(|l| l.split_whitespace().next().unwrap_or_default().to_string())
            .collect();
        assert_eq!(got, want);
        assert!(summary.contains("Host inventory (60 names):"), "{summary}");
        assert!(summary.contains("  ... and 10 more\n"), "{summary}");
        assert!(
            summary.contains("  HOST-07                  10.0.0.7 (client)\n"),
            "{summary}"
        );
    }

    /// Names as long as DNS allows fill the inventory by bytes, long
    /// before they reach the count of pairs: the rest is counted.
    #[test]
    fn long_names_are_bounded_by_bytes() {
        let mut inv = Inventory::default();
        let long = "x".repeat(250);
        let fits = MAX_BYTES / (2 * 250 + PAIR_COST);
        let mut kept = 0;
        for i in 0..(fits as u32 + 10) {
            let ev = Event {
                ts_us: 0,
                flow: None,
                body: Body::Inventory(HostSighting {
                    name: long.clone(),
                    ip: IpAddr::from(i.to_be_bytes()),
                    role: Role::Client,
                    evidence: "mdns.answers.rrname",
                }),
            };
            kept += usize::from(inv.admit(&ev));
        }
        assert_eq!((kept, inv.overflow), (fits, 10));
        // A pair it holds is not written again, nor counted as lost.
        let again = Event {
            ts_us: 1,
            flow: None,
            body: Body::Inventory(HostSighting {
                name: long.to_uppercase(),
                ip: IpAddr::from(0u32.to_be_bytes()),
                role: Role::Server,
                evidence: "mdns.answers.rrname",
            }),
        };
        assert!(!inv.admit(&again));
        assert_eq!(inv.overflow, 10);
    }
}
