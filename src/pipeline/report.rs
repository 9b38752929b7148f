//! The output stage (one thread): the host inventory, filtering
//! (`--alerts-only`), serialisation once per event, and the outputs. In a
//! replay, host sightings wait for the end so that the earliest sighting of
//! each pair is written whatever worker reported it first.

use std::collections::{BTreeMap, HashMap};
use std::net::IpAddr;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

use crossbeam_channel::{Receiver, RecvTimeoutError};
use serde_json::json;

use super::Control;
use crate::detection::inventory::Inventory;
use crate::detection::lists::Lists;
use crate::events::{Body, Event};
use crate::output::Outputs;

pub(super) enum OutMsg {
    Events(Vec<Event>),
    Stats {
        ts_us: i64,
        stats: serde_json::Value,
        last: bool,
    },
}

pub(super) struct OutputOptions {
    pub alerts_only: bool,
    pub sensor: Option<String>,
    pub live: bool,
    pub drain: Duration,
    /// ASN enrichment of the envelope (`--asn-db`).
    pub enrich: Option<crate::detection::asn::Enrichment>,
}

/// Host sightings held in a replay, at most (beyond, later pairs are
/// written at once, as live).
const MAX_HELD_HOSTS: usize = 200_000;

fn host_order(e: &Event) -> (i64, u64, String) {
    let name = match &e.body {
        Body::Host(h) => format!("{}|{}|{}", h.name, h.ip, h.evidence),
        _ => String::new(),
    };
    (e.ts_us, e.flow.as_ref().map_or(0, |f| f.flow_id), name)
}

/// Keeps the earliest sighting of a pair.
fn hold_host(held: &mut HashMap<(String, IpAddr), Event>, ev: Event, name: String, ip: IpAddr) {
    let key = (name, ip);
    match held.get(&key) {
        Some(old) if host_order(old) <= host_order(&ev) => {}
        _ if held.len() >= MAX_HELD_HOSTS && !held.contains_key(&key) => {}
        _ => {
            held.insert(key, ev);
        }
    }
}

/// The output thread: inventory, filtering, serialisation, writing.
pub(super) fn run(
    mut outputs: Outputs,
    rx: Receiver<OutMsg>,
    opts: OutputOptions,
    control: Arc<Control>,
    lists: Arc<Lists>,
) -> OutputResult {
    // List files are looked at for changes this often.
    const LIST_POLL: Duration = Duration::from_secs(2);
    let mut polled = Instant::now();
    let OutputOptions {
        alerts_only,
        sensor,
        live,
        drain,
        enrich,
    } = opts;
    let mut inv = Inventory::default();
    // In a replay, host sightings wait for the end: the earliest sighting
    // of each pair is then known whatever worker reported it first.
    let mut held_hosts: HashMap<(String, IpAddr), Event> = HashMap::new();
    let mut counts: BTreeMap<&'static str, u64> = BTreeMap::new();
    let mut line = Vec::with_capacity(4 << 10);
    let mut error: Option<String> = None;
    // Serialises once, hands the line to every sink that takes its type.
    let mut emit = |outputs: &mut Outputs,
                    counts: &mut BTreeMap<&'static str, u64>,
                    ev: &Event,
                    error: &mut Option<String>| {
        let ty = ev.body.event_type();
        *counts.entry(ty).or_default() += 1;
        if error.is_some() {
            return;
        }
        line.clear();
        ev.write_json_enriched(sensor.as_deref(), enrich.as_ref(), &mut line);
        if let Err(e) = outputs.event(ty, &line) {
            *error = Some(e.to_string());
            control.stop.store(true, Ordering::SeqCst);
        }
    };
    let flush = |outputs: &mut Outputs, error: &mut Option<String>| {
        if error.is_none() {
            if let Err(e) = outputs.flush() {
                *error = Some(e.to_string());
                control.stop.store(true, Ordering::SeqCst);
            }
        }
    };
    loop {
        // The lists are looked at whether or not events are flowing: a busy
        // span port never leaves the queue empty for long.
        let due = polled.elapsed() >= LIST_POLL;
        if due {
            polled = Instant::now();
        }
        if control.reload.swap(false, Ordering::SeqCst) || (due && lists.changed_on_disk()) {
            match lists.reload() {
                Ok(n) => eprintln!("hostwatch: watch lists reloaded: {n} entries"),
                Err(e) => {
                    eprintln!("hostwatch: watch lists not reloaded, the previous ones stay: {e}")
                }
            }
        }
        match rx.recv_timeout(Duration::from_millis(200)) {
            Ok(OutMsg::Events(evs)) => {
                for ev in evs {
                    if !live {
                        if let Body::Host(h) = &ev.body {
                            hold_host(&mut held_hosts, ev.clone(), h.name.to_uppercase(), h.ip);
                            continue;
                        }
                    }
                    if !inv.admit(&ev) {
                        continue;
                    }
                    if alerts_only && !matches!(ev.body, Body::Alert(_)) {
                        continue;
                    }
                    emit(&mut outputs, &mut counts, &ev, &mut error);
                }
                if rx.is_empty() {
                    flush(&mut outputs, &mut error);
                }
            }
            Ok(OutMsg::Stats {
                ts_us,
                mut stats,
                last,
            }) => {
                if last {
                    let mut hosts: Vec<Event> = held_hosts.drain().map(|(_, e)| e).collect();
                    hosts.sort_by_key(host_order);
                    for ev in hosts {
                        if inv.admit(&ev) && !alerts_only {
                            emit(&mut outputs, &mut counts, &ev, &mut error);
                        }
                    }
                    // The final counters should show what reached the
                    // network sinks.
                    outputs.drain(Instant::now() + drain);
                }
                if let Some(obj) = stats.as_object_mut() {
                    obj.insert("events".into(), json!(counts));
                    obj.insert("alerts".into(), json!(inv.alerts()));
                    obj.insert("hosts".into(), json!({ "inventory_full": inv.overflow }));
                    obj.insert("outputs".into(), outputs.stats());
                    obj.insert("lists".into(), lists.to_json());
                }
                if !alerts_only {
                    let ev = Event {
                        ts_us,
                        flow: None,
                        body: Body::Stats(stats),
                    };
                    emit(&mut outputs, &mut counts, &ev, &mut error);
                }
                flush(&mut outputs, &mut error);
                if last {
                    break;
                }
            }
            Err(RecvTimeoutError::Timeout) => {
                if control.reopen.swap(false, Ordering::SeqCst) {
                    if let Err(e) = outputs.reopen() {
                        eprintln!("hostwatch: cannot reopen the output file {e}");
                    }
                }
                if control.summary.swap(false, Ordering::SeqCst) {
                    eprint!("{}", inv.summary(false));
                }
                flush(&mut outputs, &mut error);
            }
            Err(RecvTimeoutError::Disconnected) => break,
        }
    }
    flush(&mut outputs, &mut error);
    let losses = outputs.close(Instant::now() + drain);
    OutputResult {
        inventory: inv,
        counts,
        error,
        losses,
    }
}

/// What the output thread reports at the end.
pub(super) struct OutputResult {
    pub inventory: Inventory,
    pub counts: BTreeMap<&'static str, u64>,
    pub error: Option<String>,
    pub losses: Vec<String>,
}
