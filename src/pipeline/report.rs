//! The output stage (one thread): the host inventory, the carriers that
//! named each machine (a signal weighed into alerts), the filters
//! (`--alerts-only`, `--min-confidence`, `--suppress`), serialisation once
//! per event, and the outputs.
//!
//! Records go out as they come. Alerts and host sightings depend on what
//! every worker reported, so they wait. In a replay, each worker reports
//! its progress through the capture's ticks (the same packets for any
//! number of workers): a sighting is applied once every worker has passed
//! the tick it was made after, and an alert is written [`HORIZON_TICKS`]
//! ticks later, weighed with every carrier seen before it, so the same
//! capture gives the same alerts whatever the number of workers, in time
//! order, without waiting for the end. Live, sightings count as they come
//! and alerts wait [`LIVE_ALERT_DELAY`] for the other workers' reports of
//! the same moments.

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
use crate::detection::watchlist::machine_key;
use crate::events::{AsnLookup, Body, Confidence, Event, Sensor};
use crate::output::Outputs;

/// How long the final stats event, queued once the end's wait for network
/// outputs is over, is still given (at most --drain-timeout).
const FINAL_GRACE: Duration = Duration::from_millis(500);

pub(super) enum OutMsg {
    /// Events a worker (or lane) made.
    Events { worker: usize, events: Vec<Event> },
    /// A worker has handled every packet before the replay's tick `seq`.
    Progress { worker: usize, seq: u64 },
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
    /// Workers reporting progress (replay).
    pub workers: usize,
    /// `--suppress`: an alert of the same machine, address and list within
    /// this much packet time of the last one written is held back.
    pub suppress_us: Option<i64>,
    /// `--min-confidence`.
    pub min_confidence: Confidence,
}

/// Ticks (of about a second of packet time each) an alert waits after the
/// one it was made after: time for the sightings of other carriers made
/// before it (some records are written seconds after their packets) to be
/// counted.
pub const HORIZON_TICKS: u64 = 10;
/// Alerts and sightings held, at most (beyond, the oldest go on at once).
const MAX_HELD: usize = 50_000;
/// How long a live alert waits before it is written.
pub const LIVE_ALERT_DELAY: Duration = Duration::from_secs(1);
/// Machines `--suppress` remembers, at most (beyond, it starts again).
const MAX_SUPPRESSED_KEYS: usize = 1_000_000;
/// List files are looked at for changes this often.
const LIST_POLL: Duration = Duration::from_secs(2);

/// An alert or a sighting waiting, with the tick its worker had passed
/// when it was made and the order it came in.
struct Held {
    after_tick: u64,
    seq: u64,
    ev: Event,
}

/// The canonical order of held events: packet time, connection, arrival
/// (one worker makes all the events of a connection, in order).
fn order(h: &Held) -> (i64, u64, u64) {
    (
        h.ev.ts_us,
        h.ev.flow.as_ref().map_or(0, |f| f.flow_id),
        h.seq,
    )
}

/// The held events that are due, taken out of `held` (the rest keep their
/// order). Those that came first are due first, so they are split off the
/// front and `held` keeps its room (rebuilding it from nothing at every
/// tick made it grow again, a copy of everything held at each doubling);
/// later ones due before earlier ones (another worker's) are picked out.
fn take_due(held: &mut Vec<Held>, due: impl Fn(&Held) -> bool) -> Vec<Held> {
    let lead = held.iter().take_while(|h| due(h)).count();
    let mut ready: Vec<Held> = held.drain(..lead).collect();
    if held.iter().any(&due) {
        let (more, rest): (Vec<Held>, Vec<Held>) = std::mem::take(held).into_iter().partition(&due);
        ready.extend(more);
        *held = rest;
    }
    ready
}

/// `--suppress`: per (machine, address, list), the packet time of the last
/// alert written and the ones held back since.
#[derive(Default)]
struct Suppression {
    last: HashMap<(String, Option<IpAddr>, String), (i64, u64)>,
    held: u64,
}

impl Suppression {
    /// Whether `ev` is written; a written alert carries the count held back
    /// since the last one of its key.
    fn pass(&mut self, window: i64, ev: &mut Event) -> bool {
        let Body::Alert(a) = &mut ev.body else {
            return true;
        };
        let key = (machine_key(&a.hostname), a.ip, a.list.clone());
        match self.last.get_mut(&key) {
            Some((at, held)) if ev.ts_us.saturating_sub(*at) < window => {
                *held += 1;
                self.held += 1;
                false
            }
            Some((at, held)) => {
                a.suppressed = (*held > 0).then_some(*held);
                *at = ev.ts_us;
                *held = 0;
                true
            }
            None => {
                if self.last.len() >= MAX_SUPPRESSED_KEYS {
                    self.last.clear();
                }
                self.last.insert(key, (ev.ts_us, 0));
                true
            }
        }
    }
}

/// The output thread's state.
struct Stage {
    outputs: Outputs,
    opts: OutputOptions,
    control: Arc<Control>,
    lists: Arc<Lists>,
    inv: Inventory,
    carriers: Carriers,
    counts: BTreeMap<&'static str, u64>,
    line: Vec<u8>,
    error: Option<String>,
    started: Instant,
    polled: Instant,
    /// When the end of the run stops waiting for network outputs (set by
    /// the last stats).
    drain_deadline: Option<Instant>,
    /// Replay: the last tick each worker reported, and what waits for the
    /// ticks.
    ticks: Vec<u64>,
    sightings: Vec<Held>,
    alerts: Vec<Held>,
    seq: u64,
    /// Live: alerts waiting for their time.
    live_alerts: VecDeque<(Instant, Event)>,
    suppression: Suppression,
    below_confidence: u64,
    /// Live: the checksum drops the last periodic warning counted.
    checksum_warned: u64,
}

impl Stage {
    /// Serialises once, hands the line to every sink that takes its type.
    fn emit(&mut self, ev: &Event) {
        let ty = ev.body.event_type();
        *self.counts.entry(ty).or_default() += 1;
        if self.error.is_some() {
            return;
        }
        self.line.clear();
        let sensor = Sensor {
            name: self.opts.sensor.as_deref(),
            interfaces: &self.opts.interfaces,
            asn: self.opts.enrich.as_ref().map(|e| e as &dyn AsnLookup),
        };
        ev.write_json(&sensor, &mut self.line);
        if let Err(e) = self.outputs.event(ty, &self.line) {
            self.error = Some(e.to_string());
            self.control.stop.store(true, Ordering::SeqCst);
        }
    }

    fn flush(&mut self) {
        if self.error.is_none() {
            if let Err(e) = self.outputs.flush() {
                self.error = Some(e.to_string());
                self.control.stop.store(true, Ordering::SeqCst);
            }
        }
    }

    /// A worker's events: records out at once; sightings and alerts wait.
    fn events(&mut self, worker: usize, evs: Vec<Event>) {
        let after_tick = self.ticks.get(worker).copied().unwrap_or(0);
        for ev in evs {
            match &ev.body {
                Body::Inventory(_) | Body::Alert(_) if !self.opts.live => {
                    self.seq += 1;
                    let held = Held {
                        after_tick,
                        seq: self.seq,
                        ev,
                    };
                    if matches!(held.ev.body, Body::Alert(_)) {
                        self.alerts.push(held);
                    } else {
                        self.sightings.push(held);
                    }
                }
                Body::Inventory(_) => self.sighting(ev),
                Body::Alert(_) => {
                    if self.live_alerts.len() >= MAX_HELD {
                        if let Some((_, old)) = self.live_alerts.pop_front() {
                            self.alert(old);
                        }
                    }
                    self.live_alerts
                        .push_back((Instant::now() + LIVE_ALERT_DELAY, ev));
                }
                _ if self.opts.alerts_only => {}
                _ => self.emit(&ev),
            }
        }
        // Bounded: past the cap, the oldest go on (weighed with what is
        // known so far).
        if self.sightings.len() + self.alerts.len() > MAX_HELD {
            self.release(u64::MAX, true);
        }
    }

    /// A host sighting: counted as a carrier, written when its pair is new.
    fn sighting(&mut self, ev: Event) {
        if let (Body::Inventory(h), Some(f)) = (&ev.body, &ev.flow) {
            self.carriers.saw(ev.ts_us, f.flow_id, f.two_way, h);
        }
        if self.inv.admit(&ev) && !self.opts.alerts_only {
            self.emit(&ev);
        }
    }

    /// An alert whose time has come: weighed with the carriers seen before
    /// it, filtered, written.
    fn alert(&mut self, mut ev: Event) {
        self.carriers.corroborate(&mut ev);
        if let Body::Alert(a) = &ev.body {
            if a.confidence() < self.opts.min_confidence {
                self.below_confidence += 1;
                return;
            }
        }
        if let Some(window) = self.opts.suppress_us {
            if !self.suppression.pass(window, &mut ev) {
                self.inv.suppressed(&ev);
                return;
            }
        }
        self.inv.admit(&ev);
        self.emit(&ev);
    }

    /// A worker reached tick `seq`: what every worker has passed goes on.
    fn progress(&mut self, worker: usize, seq: u64) {
        if let Some(t) = self.ticks.get_mut(worker) {
            *t = (*t).max(seq);
        }
        let passed = self.ticks.iter().copied().min().unwrap_or(0);
        self.release(passed, false);
    }

    /// Applies the sightings made before tick `passed` and writes the
    /// alerts [`HORIZON_TICKS`] older, each in canonical order; `all`
    /// takes everything held (the end, or the cap).
    fn release(&mut self, passed: u64, all: bool) {
        let due = |h: &Held, wait: u64| all || h.after_tick.saturating_add(wait) < passed;
        let mut ready = take_due(&mut self.sightings, |h| due(h, 0));
        ready.sort_by_key(order);
        for h in ready {
            self.sighting(h.ev);
        }
        let mut ready = take_due(&mut self.alerts, |h| due(h, HORIZON_TICKS));
        ready.sort_by_key(order);
        for h in ready {
            self.alert(h.ev);
        }
    }

    /// Live alerts whose delay is over, in packet order.
    fn live_due(&mut self, now: Instant) {
        let mut due: Vec<Event> = Vec::new();
        while self.live_alerts.front().is_some_and(|(t, _)| *t <= now) {
            if let Some((_, ev)) = self.live_alerts.pop_front() {
                due.push(ev);
            }
        }
        due.sort_by_key(|e| (e.ts_us, e.flow.as_ref().map_or(0, |f| f.flow_id)));
        for ev in due {
            self.alert(ev);
        }
    }

    /// SIGHUP or a changed file: the lists are read again.
    fn reload_lists(&mut self) {
        let due = self.polled.elapsed() >= LIST_POLL;
        if due {
            self.polled = Instant::now();
        }
        if self.control.reload.swap(false, Ordering::SeqCst)
            || (due && self.lists.changed_on_disk())
        {
            match self.lists.reload() {
                Ok(n) => crate::diag::info(format_args!("watch lists reloaded: {n} entries")),
                Err(e) => crate::diag::warn(format_args!(
                    "watch lists not reloaded, the previous ones stay: {e}"
                )),
            }
        }
    }

    /// Live, at a periodic `stats`: one line when more was dropped for
    /// wrong checksums since the last one said (the end of the run says
    /// the total).
    fn warn_checksums(&mut self, stats: &serde_json::Value) {
        let dropped = super::checksum_drop_count(stats);
        if dropped > self.checksum_warned {
            self.checksum_warned = dropped;
            if let Some(line) = super::checksum_drops(stats) {
                crate::diag::warn(format_args!("so far, {line}"));
            }
        }
    }

    /// The `stats` event (the last one after everything held is out).
    fn stats(&mut self, ts_us: i64, mut stats: serde_json::Value, last: bool) {
        if last {
            self.release(u64::MAX, true);
            let rest: Vec<Event> = self.live_alerts.drain(..).map(|(_, e)| e).collect();
            for ev in rest {
                self.alert(ev);
            }
            // The final counters should show what reached the network
            // sinks. One wait for the whole end of the run: closing the
            // sinks later keeps the same deadline.
            let deadline = Instant::now() + self.opts.drain;
            self.drain_deadline = Some(deadline);
            self.outputs.drain(deadline);
        }
        if !last {
            self.warn_checksums(&stats);
        }
        if let Some(obj) = stats.as_object_mut() {
            obj.insert("uptime".into(), json!(self.started.elapsed().as_secs()));
            obj.insert("events".into(), json!(self.counts));
            obj.insert("alerts".into(), json!(self.inv.alerts()));
            obj.insert("alerts_suppressed".into(), json!(self.suppression.held));
            obj.insert(
                "alerts_below_confidence".into(),
                json!(self.below_confidence),
            );
            obj.insert(
                "hosts".into(),
                json!({ "inventory_full": self.inv.overflow, "carriers_full": self.carriers.overflow }),
            );
            obj.insert("outputs".into(), self.outputs.stats());
            obj.insert("lists".into(), self.lists.to_json());
        }
        if !self.opts.alerts_only {
            let ev = Event {
                ts_us,
                flow: None,
                body: Body::Stats(stats),
            };
            self.emit(&ev);
        }
        self.flush();
    }

    /// Nothing came for a while: reopen the file if asked, print the
    /// summary if asked, flush.
    fn idle(&mut self) {
        if self.control.reopen.swap(false, Ordering::SeqCst) {
            if let Err(e) = self.outputs.reopen() {
                crate::diag::error(format_args!("cannot reopen the output file {e}"));
            }
        }
        if self.control.summary.swap(false, Ordering::SeqCst) {
            eprint!("{}", self.inv.summary(false));
        }
        self.flush();
    }
}

/// The output thread: inventory, weighing, filtering, serialisation,
/// writing.
pub(super) fn run(
    outputs: Outputs,
    rx: Receiver<OutMsg>,
    opts: OutputOptions,
    control: Arc<Control>,
    lists: Arc<Lists>,
) -> OutputResult {
    let workers = opts.workers.max(1);
    let mut st = Stage {
        outputs,
        opts,
        control,
        lists,
        inv: Inventory::default(),
        carriers: Carriers::default(),
        counts: BTreeMap::new(),
        line: Vec::with_capacity(4 << 10),
        error: None,
        started: Instant::now(),
        polled: Instant::now(),
        drain_deadline: None,
        ticks: vec![0; workers],
        sightings: Vec::new(),
        alerts: Vec::new(),
        seq: 0,
        live_alerts: VecDeque::new(),
        suppression: Suppression::default(),
        below_confidence: 0,
        checksum_warned: 0,
    };
    loop {
        // The lists are looked at whether or not events are flowing: a busy
        // span port never leaves the queue empty for long.
        st.reload_lists();
        st.live_due(Instant::now());
        match rx.recv_timeout(Duration::from_millis(200)) {
            Ok(OutMsg::Events { worker, events }) => {
                st.events(worker, events);
                if rx.is_empty() {
                    st.flush();
                }
            }
            Ok(OutMsg::Progress { worker, seq }) => st.progress(worker, seq),
            Ok(OutMsg::Stats { ts_us, stats, last }) => {
                st.stats(ts_us, stats, last);
                if last {
                    break;
                }
            }
            Err(RecvTimeoutError::Timeout) => st.idle(),
            Err(RecvTimeoutError::Disconnected) => {
                // The pipeline ended without its last report (a worker
                // failed): what is held is still written.
                st.release(u64::MAX, true);
                st.live_due(Instant::now() + LIVE_ALERT_DELAY);
                break;
            }
        }
    }
    st.flush();
    // The final stats event, queued after the wait, still gets a moment.
    let deadline = match st.drain_deadline {
        Some(d) => d.max(Instant::now() + FINAL_GRACE.min(st.opts.drain)),
        None => Instant::now() + st.opts.drain,
    };
    let losses = st.outputs.close(deadline);
    OutputResult {
        inventory: st.inv,
        counts: st.counts,
        error: st.error,
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

#[cfg(test)]
mod tests {
    use super::*;

    /// Due events leave in the order they came, those that lead first;
    /// the rest stay in theirs, and the list keeps its room.
    #[test]
    fn due_events_are_taken_and_the_rest_keep_their_order() {
        let held = |after_tick: u64, seq: u64| Held {
            after_tick,
            seq,
            ev: Event {
                ts_us: 0,
                flow: None,
                body: Body::Stats(serde_json::Value::Null),
            },
        };
        let mut list: Vec<Held> = [(1, 1), (1, 2), (3, 3), (2, 4), (5, 5), (0, 6)]
            .into_iter()
            .map(|(t, s)| held(t, s))
            .collect();
        let ready = take_due(&mut list, |h| h.after_tick < 3);
        let seqs = |l: &[Held]| l.iter().map(|h| h.seq).collect::<Vec<_>>();
        assert_eq!(seqs(&ready), [1, 2, 4, 6]);
        assert_eq!(seqs(&list), [3, 5]);
        let ready = take_due(&mut list, |h| h.after_tick < 4);
        assert_eq!(seqs(&ready), [3]);
        assert_eq!(seqs(&list), [5]);
        assert!(take_due(&mut list, |_| false).is_empty());
        assert_eq!(seqs(&take_due(&mut list, |_| true)), [5]);
        assert!(list.is_empty());
        // Only the leading ones due: split off, the room kept.
        let mut list: Vec<Held> = (1..=4).map(|t| held(t, t)).collect();
        let room = list.capacity();
        assert_eq!(seqs(&take_due(&mut list, |h| h.after_tick < 3)), [1, 2]);
        assert_eq!((seqs(&list), list.capacity()), (vec![3, 4], room));
    }
}
