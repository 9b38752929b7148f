//! The output stage (one thread): the host inventory, the carriers that
//! named each machine (a signal weighed into alerts), filtering
//! (`--alerts-only`), serialisation once per event, and the outputs.
//!
//! Workers report in their own time, so in a replay whatever depends on
//! the order of reports waits for the end: host sightings (the earliest of
//! each pair is written) and alerts (weighed with every other carrier seen
//! earlier in packet time). The same capture then gives the same events
//! whatever the number of workers. Live, alerts and host sightings wait
//! [`LIVE_ALERT_DELAY`], time for the other workers' reports of the same
//! moments to arrive, then go out in packet order: the earliest sighting of
//! a pair is written, and alerts are weighed with what came before them.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::net::IpAddr;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

use crossbeam_channel::{Receiver, RecvTimeoutError};
use serde_json::json;

use super::Control;
use crate::detection::carriers::Carriers;
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
    /// The live interfaces, in the order `Segment::iface` counts them.
    pub interfaces: Vec<String>,
    pub live: bool,
    pub drain: Duration,
    /// ASN enrichment of the envelope (`--asn-db`).
    pub enrich: Option<crate::detection::asn::Enrichment>,
}

/// Host sightings held in a replay, at most (beyond, later pairs are
/// written at once, as live).
const MAX_HELD_HOSTS: usize = 200_000;
/// Alerts (and, live, host sightings) held, at most (beyond, they are
/// written at once, alerts weighed with what has been seen so far).
const MAX_HELD_ALERTS: usize = 50_000;
/// How long a live alert or host sighting waits before it is written.
pub const LIVE_ALERT_DELAY: Duration = Duration::from_secs(1);

/// Alerts in packet order; those of one flow (one worker made them) keep
/// the order they were made in (the sort is stable).
fn alert_order(e: &Event) -> (i64, u64) {
    (e.ts_us, e.flow.as_ref().map_or(0, |f| f.flow_id))
}

fn host_order(e: &Event) -> (i64, u64, String) {
    let name = match &e.body {
        Body::Inventory(h) => format!("{}|{}|{}", h.name, h.ip, h.evidence),
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

/// What a replay held, in packet order: the alerts weighed with every
/// carrier seen before them, then the earliest sighting of each pair.
fn release(
    alerts: &mut VecDeque<(Instant, Event)>,
    hosts: &mut HashMap<(String, IpAddr), Event>,
    carriers: &Carriers,
) -> Vec<Event> {
    let mut out: Vec<Event> = alerts.drain(..).map(|(_, e)| e).collect();
    out.sort_by_key(alert_order);
    for ev in &mut out {
        carriers.corroborate(ev);
    }
    let mut held: Vec<Event> = hosts.drain().map(|(_, e)| e).collect();
    held.sort_by_key(host_order);
    out.extend(held);
    out
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
        interfaces,
        live,
        drain,
        enrich,
    } = opts;
    let started = Instant::now();
    let mut inv = Inventory::default();
    let mut carriers = Carriers::default();
    // Alerts waiting to be weighed (and, live, host sightings): until the
    // end of a replay, until their time (live).
    let mut held: VecDeque<(Instant, Event)> = VecDeque::new();
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
        let sensor = crate::events::Sensor {
            name: sensor.as_deref(),
            interfaces: &interfaces,
            asn: enrich.as_ref().map(|e| e as &dyn crate::events::AsnLookup),
        };
        ev.write_json(&sensor, &mut line);
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
        if live && held.front().is_some_and(|(due, _)| *due <= Instant::now()) {
            let now = Instant::now();
            let mut due: Vec<Event> = Vec::new();
            while held.front().is_some_and(|(t, _)| *t <= now) {
                if let Some((_, ev)) = held.pop_front() {
                    due.push(ev);
                }
            }
            due.sort_by_key(alert_order);
            for mut ev in due {
                carriers.corroborate(&mut ev);
                if inv.admit(&ev) && (!alerts_only || matches!(ev.body, Body::Alert(_))) {
                    emit(&mut outputs, &mut counts, &ev, &mut error);
                }
            }
        }
        match rx.recv_timeout(Duration::from_millis(200)) {
            Ok(OutMsg::Events(evs)) => {
                for ev in &evs {
                    if let (Body::Inventory(h), Some(f)) = (&ev.body, &ev.flow) {
                        carriers.saw(ev.ts_us, f.flow_id, f.two_way, h);
                    }
                }
                for mut ev in evs {
                    match &ev.body {
                        Body::Inventory(h) if !live => {
                            let key = h.name.to_uppercase();
                            let ip = h.ip;
                            hold_host(&mut held_hosts, ev, key, ip);
                            continue;
                        }
                        Body::Alert(_) | Body::Inventory(_) if held.len() < MAX_HELD_ALERTS => {
                            held.push_back((Instant::now() + LIVE_ALERT_DELAY, ev));
                            continue;
                        }
                        _ => {}
                    }
                    carriers.corroborate(&mut ev);
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
                    for ev in release(&mut held, &mut held_hosts, &carriers) {
                        if inv.admit(&ev) && (!alerts_only || matches!(ev.body, Body::Alert(_))) {
                            emit(&mut outputs, &mut counts, &ev, &mut error);
                        }
                    }
                    // The final counters should show what reached the
                    // network sinks.
                    outputs.drain(Instant::now() + drain);
                }
                if let Some(obj) = stats.as_object_mut() {
                    obj.insert("uptime".into(), json!(started.elapsed().as_secs()));
                    obj.insert("events".into(), json!(counts));
                    obj.insert("alerts".into(), json!(inv.alerts()));
                    obj.insert("hosts".into(), json!({ "inventory_full": inv.overflow, "carriers_full": carriers.overflow }));
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
            Err(RecvTimeoutError::Disconnected) => {
                // The pipeline ended without its last report (a worker
                // failed): what is held is still written.
                for ev in release(&mut held, &mut held_hosts, &carriers) {
                    if inv.admit(&ev) && (!alerts_only || matches!(ev.body, Body::Alert(_))) {
                        emit(&mut outputs, &mut counts, &ev, &mut error);
                    }
                }
                break;
            }
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
