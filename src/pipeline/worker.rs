//! A worker: owns the flow tables (TCP streams and UDP conversations) of
//! its share of the traffic and a detector, turns batches into events and
//! sends them to the output stage.

use std::sync::{Arc, Mutex};

use crossbeam_channel::{Receiver, Sender};

use super::dispatch::{Batch, BypassHint, WorkMsg};
use super::report::OutMsg;
use crate::analyzers::{Analyzers, Anomalies, Counters};
use crate::decode::Packet;
use crate::decode::Transport;
use crate::detection::Detector;
use crate::flow::{DatagramConfig, DatagramStats, DatagramTable, FlowConfig, FlowStats, FlowTable};
use crate::output::packets::{PacketStats, Recorder};

/// Counters a worker publishes for periodic stats.
#[derive(Debug, Default, Clone)]
pub(super) struct WorkerSnapshot {
    pub flows: FlowStats,
    pub active: usize,
    pub held_bytes: usize,
    pub datagrams: DatagramStats,
    pub conversations: usize,
    pub anomalies: Anomalies,
    pub transactions: Counters,
    /// `-w`: what the recorder wrote.
    pub packets: Option<PacketStats>,
}

impl WorkerSnapshot {
    fn of(table: &FlowTable<Analyzers>, udp: &DatagramTable, recorder: Option<&Recorder>) -> Self {
        WorkerSnapshot {
            flows: table.stats,
            active: table.len(),
            held_bytes: table.held_bytes(),
            datagrams: udp.stats,
            conversations: udp.len(),
            anomalies: {
                let mut e = table.anomalies.clone();
                e.add(&udp.anomalies);
                e
            },
            transactions: udp.transactions.clone(),
            packets: recorder.map(Recorder::stats),
        }
    }
}

/// What a worker is given.
pub(super) struct WorkerSetup {
    pub index: usize,
    pub flow: FlowConfig,
    pub datagram: DatagramConfig,
    pub lists: Arc<crate::detection::lists::Lists>,
    pub home_net: crate::detection::network::HomeNet,
    pub asn_db: Option<Arc<crate::detection::asn::AsnDb>>,
    pub mentions: crate::detection::Mentions,
    pub rx: Receiver<WorkMsg>,
    pub free: Sender<Batch>,
    pub out: Sender<OutMsg>,
    pub snapshot: Arc<Mutex<WorkerSnapshot>>,
    pub hint: Arc<BypassHint>,
    /// `-w`: the packets of alerted connections.
    pub recorder: Option<Recorder>,
}

/// A worker's analysis: the flow tables of its share of the traffic, its
/// detector, and the events waiting for the output stage. Run by a worker
/// thread fed by the capture thread, or inline by a capture lane
/// (`lanes`).
pub(super) struct Analysis {
    /// Its place among the workers (or lanes), for the output stage.
    index: usize,
    table: FlowTable<Analyzers>,
    udp: DatagramTable,
    detector: Detector,
    events: Vec<crate::events::Event>,
    out: Sender<OutMsg>,
    snapshot: Arc<Mutex<WorkerSnapshot>>,
    /// `-w`: keeps each connection's first packets until its verdict.
    recorder: Option<Recorder>,
    /// How many of the table's bypassed connections the recorder was told of.
    bypass_seen: usize,
    /// Packets received in batches, numbered as the capture thread
    /// numbered them (see [`BypassHint`]).
    received: u32,
    /// For each of the table's bypassed connections, `received` just after
    /// the packet that ended its analysis.
    ended_at: Vec<u32>,
}

impl Analysis {
    pub(super) fn new(
        index: usize,
        flow: FlowConfig,
        datagram: DatagramConfig,
        detector: Detector,
        out: Sender<OutMsg>,
        snapshot: Arc<Mutex<WorkerSnapshot>>,
    ) -> Self {
        Analysis {
            index,
            table: FlowTable::new(flow, Analyzers),
            udp: DatagramTable::new(datagram),
            detector,
            events: Vec::new(),
            out,
            snapshot,
            recorder: None,
            bypass_seen: 0,
            received: 0,
            ended_at: Vec::new(),
        }
    }

    /// Writes the packets of the connections that alert (`-w`).
    pub(super) fn with_recorder(mut self, recorder: Option<Recorder>) -> Self {
        if recorder.is_some() {
            self.detector.keep_verdicts();
        }
        self.recorder = recorder;
        self
    }

    pub(super) fn packet(&mut self, p: &Packet<'_>) {
        if let Some(r) = self.recorder.as_mut() {
            r.packet(p);
        }
        let detector = &mut self.detector;
        let events = &mut self.events;
        let mut found = |fr| detector.process(fr, events);
        match p {
            Packet::Tcp(seg) => self.table.packet(seg, &mut found),
            Packet::Udp(d) => self.udp.datagram(d, &mut found),
        }
        self.record_verdicts();
    }

    /// Hands the recorder the connections found to alert, and those whose
    /// analysis ended (at the packet that ended it, so that what is
    /// written does not depend on where batches end).
    fn record_verdicts(&mut self) {
        let Some(r) = self.recorder.as_mut() else {
            return;
        };
        if self.detector.has_verdicts() {
            for flow in self.detector.take_verdicts() {
                r.alerted(&flow);
            }
        }
        let ended = self.table.bypassed();
        if let Some(new) = ended.get(self.bypass_seen..) {
            for key in new {
                r.ended(Transport::Tcp, *key);
            }
        }
        self.bypass_seen = ended.len();
    }

    /// The packets of a batch; connections whose payload no longer matters
    /// are marked in `hint`.
    pub(super) fn batch(&mut self, b: &Batch, hint: &BypassHint) {
        // Any ended between batches ended before this one's packets.
        self.stamp_ended();
        for p in b.packets() {
            self.packet(&p);
            self.received = self.received.wrapping_add(1);
            self.stamp_ended();
        }
        self.mark_bypassed(Some(hint));
    }

    /// Notes `received` for the connections whose analysis ended since the
    /// last call.
    fn stamp_ended(&mut self) {
        let ended = self.table.bypassed().len();
        if ended > self.ended_at.len() {
            self.ended_at.resize(ended, self.received);
        }
    }

    /// Marks in `hint` the connections whose payload no longer matters,
    /// and releases the marks of those that left the table (a lane has no
    /// hint: see `Dispatch::hint`); forgets both.
    pub(super) fn mark_bypassed(&mut self, hint: Option<&BypassHint>) {
        // Releases first: a connection that left the table must not take
        // away the mark of a new one on the same ports made in this batch.
        for key in self.table.take_released() {
            if let Some(hint) = hint {
                hint.release(key.shard_hash());
            }
        }
        let now = self.received;
        for (i, key) in self.table.take_bypassed().enumerate() {
            if let Some(hint) = hint {
                hint.mark(
                    key.shard_hash(),
                    self.ended_at.get(i).copied().unwrap_or(now),
                );
            }
        }
        self.ended_at.clear();
        self.bypass_seen = 0;
    }

    /// Time passed: idle flows expire, alerts whose hold is over are
    /// written; the counters are published.
    pub(super) fn tick(&mut self, now: i64) {
        let detector = &mut self.detector;
        let events = &mut self.events;
        self.table
            .expire(now, &mut |fr| detector.process(fr, events));
        self.udp.expire(now, &mut |fr| detector.process(fr, events));
        detector.tick(now, events);
        self.record_verdicts();
        if let Some(r) = self.recorder.as_mut() {
            r.tick();
        }
        self.publish();
    }

    fn publish(&self) {
        if let Ok(mut s) = self.snapshot.lock() {
            *s = WorkerSnapshot::of(&self.table, &self.udp, self.recorder.as_ref());
        }
    }

    /// Events made and not yet handed to the output stage.
    pub(super) fn pending(&self) -> usize {
        self.events.len()
    }

    /// Hands the events made so far to the output stage; false once it is
    /// gone.
    pub(super) fn flush(&mut self) -> bool {
        if self.events.is_empty() {
            return true;
        }
        // The next hand-over is sized like this one: the vector goes to the
        // output thread, and one grown from empty is copied at each
        // doubling.
        let next = Vec::with_capacity(self.events.len());
        self.out
            .send(OutMsg::Events {
                worker: self.index,
                events: std::mem::replace(&mut self.events, next),
            })
            .is_ok()
    }

    /// Tells the output stage every event of the packets before tick `seq`
    /// is out; false once it is gone.
    pub(super) fn progress(&self, seq: u64) -> bool {
        self.out
            .send(OutMsg::Progress {
                worker: self.index,
                seq,
            })
            .is_ok()
    }

    /// Ends every flow and returns the final counters.
    pub(super) fn finish(mut self) -> WorkerSnapshot {
        let detector = &mut self.detector;
        let events = &mut self.events;
        self.table.finish(&mut |fr| detector.process(fr, events));
        self.udp.finish(&mut |fr| detector.process(fr, events));
        detector.finish(events);
        self.record_verdicts();
        if let Some(r) = self.recorder.as_ref() {
            // A failure is said by the file, once for all workers.
            r.flush();
        }
        self.flush();
        self.publish();
        WorkerSnapshot {
            active: 0,
            conversations: 0,
            ..WorkerSnapshot::of(&self.table, &self.udp, self.recorder.as_ref())
        }
    }
}

/// The most events a worker keeps back while its queue holds more work.
const FLUSH_AT: usize = 256;

pub(super) fn run(setup: WorkerSetup) -> WorkerSnapshot {
    let WorkerSetup {
        index,
        flow,
        datagram,
        lists,
        home_net,
        asn_db,
        mentions,
        rx,
        free,
        out,
        snapshot,
        hint,
        recorder,
    } = setup;
    let detector = Detector::with_lists(lists, home_net)
        .with_asn_db(asn_db)
        .with_mentions(mentions);
    let mut a =
        Analysis::new(index, flow, datagram, detector, out, snapshot).with_recorder(recorder);
    for msg in rx.iter() {
        match msg {
            WorkMsg::Batch(mut b) => {
                a.batch(&b, &hint);
                b.clear();
                let _ = free.try_send(b);
            }
            WorkMsg::Tick { now, seq } => {
                a.tick(now);
                // Every event of the packets before the tick goes out; on
                // a replay, then the news that they all are.
                if !(a.flush() && (seq == 0 || a.progress(seq))) {
                    break;
                }
            }
        }
        // Events wait while more packets are queued, up to a bound and
        // never past a tick: a send that finds the output thread asleep
        // wakes it, and one wake-up per batch cost the worker about a
        // twentieth of its time on handshake-heavy traffic. An idle queue
        // hands them over at once.
        if (rx.is_empty() || a.pending() >= FLUSH_AT) && !a.flush() {
            break;
        }
    }
    a.finish()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::detection::watchlist::Matcher;
    use crate::pipeline::dispatch::Dispatch;
    use crate::synth::msg::{nbns_answer, nbns_query};
    use crossbeam_channel::{bounded, unbounded};

    /// An NBNS datagram between 10.0.0.1 (the client) and 10.0.0.2.
    fn datagram(ts_us: i64, to_server: bool, payload: &[u8]) -> Packet<'_> {
        let mut d = crate::pipeline::lanes::tests::datagram(ts_us, payload);
        if !to_server {
            std::mem::swap(&mut d.src, &mut d.dst);
        }
        Packet::Udp(d)
    }

    /// The transaction ids of the NBNS records of each hand-over.
    fn handed_over(out: &Receiver<OutMsg>) -> Vec<Vec<u16>> {
        out.try_iter()
            .filter_map(|m| match m {
                OutMsg::Events { events, .. } => Some(
                    events
                        .iter()
                        .filter_map(|e| match &e.body {
                            crate::events::Body::Record(r) => match r.as_ref() {
                                crate::events::Record::Nbns(n) => Some(n.transaction_id),
                                _ => None,
                            },
                            _ => None,
                        })
                        .collect(),
                ),
                _ => None,
            })
            .collect()
    }

    /// Events wait while more packets are queued, but a tick hands over
    /// every event made before it: on a saturated link (a queue never
    /// empty) an alert is late by a tick at most.
    #[test]
    fn a_tick_hands_events_over_while_more_packets_wait() {
        let (work_tx, rx) = bounded(8);
        let (free_tx, free_rx) = bounded(8);
        let (out_tx, out_rx) = unbounded();
        let hint = Arc::new(BypassHint::new());
        let mut d = Dispatch::new(vec![work_tx], free_rx, Some(hint.clone()));
        let t = 1_700_000_000_000_000;
        let (q7, a7) = (
            nbns_query(7, "FILESRV01"),
            nbns_answer(7, "FILESRV01", [10, 0, 0, 9]),
        );
        let (q8, a8) = (
            nbns_query(8, "PRINTSRV"),
            nbns_answer(8, "PRINTSRV", [10, 0, 0, 8]),
        );
        d.push(&datagram(t, true, &q7), None);
        d.push(&datagram(t + 1_000, false, &a7), None);
        d.tick(t + 2_000, false);
        d.push(&datagram(t + 3_000, true, &q8), None);
        d.push(&datagram(t + 4_000, false, &a8), None);
        d.send_all();
        // Everything is queued before the worker starts: its queue is not
        // empty until the last batch.
        drop(d);
        let matcher = Matcher::with_builtins(true, Vec::new()).unwrap_or_else(|e| panic!("{e}"));
        run(WorkerSetup {
            index: 0,
            flow: FlowConfig::default(),
            datagram: DatagramConfig::default(),
            lists: crate::detection::lists::Lists::fixed(Arc::new(matcher)),
            home_net: crate::detection::network::HomeNet::default(),
            asn_db: None,
            mentions: crate::detection::Mentions::default(),
            rx,
            free: free_tx,
            out: out_tx,
            snapshot: Arc::new(Mutex::new(WorkerSnapshot::default())),
            hint,
            recorder: None,
        });
        assert_eq!(handed_over(&out_rx), vec![vec![7], vec![8]]);
    }

    /// An RDP client on 10.0.0.1:50000 to 10.0.0.2:3389 (the same port
    /// pair each time), naming itself `name`: handshake, standard-security
    /// logon, and (`close`) the FINs.
    fn rdp_session(seed: u32, name: &str, close: bool) -> Vec<Vec<u8>> {
        use crate::synth::{msg, Conn};
        let ip = |last| std::net::IpAddr::V4(std::net::Ipv4Addr::new(10, 0, 0, last));
        let mut c = Conn::new((ip(1), 50000), (ip(2), 3389), seed);
        let mut segs = c.open();
        for (ask, answer) in msg::rdp_standard_logon("user", name) {
            segs.extend(c.send(true, &ask));
            segs.extend(c.send(false, &answer));
        }
        if close {
            segs.extend(c.close());
        }
        segs.iter().map(|s| c.frame(s)).collect()
    }

    /// The capture thread's side: frames decoded and dispatched, one
    /// millisecond apart from `t`; the batch sent.
    fn dispatch(d: &mut Dispatch, t: i64, frames: &[Vec<u8>]) {
        let mut decoder = crate::decode::Decoder::new(1);
        for (i, f) in frames.iter().enumerate() {
            decoder.decode(t + i as i64 * 1_000, f, &mut |p| d.push(p, None));
        }
        d.send_all();
    }

    fn analysis() -> (Analysis, Receiver<OutMsg>) {
        let matcher = Matcher::with_builtins(true, Vec::new()).unwrap_or_else(|e| panic!("{e}"));
        let lists = crate::detection::lists::Lists::fixed(Arc::new(matcher));
        let detector = Detector::with_lists(lists, crate::detection::network::HomeNet::default());
        let (out_tx, out_rx) = unbounded();
        let snapshot = Arc::new(Mutex::new(WorkerSnapshot::default()));
        let a = Analysis::new(
            0,
            FlowConfig::default(),
            DatagramConfig::default(),
            detector,
            out_tx,
            snapshot,
        );
        (a, out_rx)
    }

    /// The RDP client names of the records handed over.
    fn client_names(out: &Receiver<OutMsg>) -> Vec<String> {
        out.try_iter()
            .filter_map(|m| match m {
                OutMsg::Events { events, .. } => Some(events),
                _ => None,
            })
            .flatten()
            .filter_map(|e| match &e.body {
                crate::events::Body::Record(r) => match r.as_ref() {
                    crate::analyzers::Record::Rdp(r) => {
                        r.client.as_ref().and_then(|c| c.client_name.clone())
                    }
                    _ => None,
                },
                _ => None,
            })
            .collect()
    }

    /// A capture thread's dispatch to one worker's analysis, sharing a
    /// bypass hint: (dispatch, the worker's queue, hint, analysis, its
    /// events).
    fn one_worker() -> (
        Dispatch,
        Receiver<WorkMsg>,
        Arc<BypassHint>,
        Analysis,
        Receiver<OutMsg>,
    ) {
        let (tx, rx) = bounded(8);
        let (_free_tx, free_rx) = bounded(8);
        let hint = Arc::new(BypassHint::new());
        let d = Dispatch::new(vec![tx], free_rx, Some(hint.clone()));
        let (a, out) = analysis();
        (d, rx, hint, a, out)
    }

    fn next_batch(rx: &Receiver<WorkMsg>) -> Batch {
        match rx.try_recv() {
            Ok(WorkMsg::Batch(b)) => b,
            _ => panic!("no batch"),
        }
    }

    /// The payloads of the next batch's packets.
    fn payloads(rx: &Receiver<WorkMsg>) -> Vec<usize> {
        match rx.try_recv() {
            Ok(WorkMsg::Batch(b)) => b.packets().map(|p| p.payload().len()).collect(),
            _ => Vec::new(),
        }
    }

    /// A connection whose analysis ended is marked after its batch, and
    /// from then on the capture thread hands over its headers only.
    #[test]
    fn a_finished_connection_crosses_without_its_payload() {
        let (mut d, rx, hint, mut a, _out) = one_worker();
        let t = 1_700_000_000_000_000;
        let frames = rdp_session(1, "DESKTOP-4QK2M1L", true);
        let (logon, close) = frames.split_at(frames.len() - 3);
        dispatch(&mut d, t, logon);
        a.batch(&next_batch(&rx), &hint);
        assert_eq!(a.table.stats.bypassed, 1);
        // The client's last data segment again (its MCS Connect Initial,
        // retransmitted), then the FINs: headers only.
        let mut late = close.to_vec();
        late.insert(0, logon[logon.len() - 2].clone());
        dispatch(&mut d, t + 60_000, &late);
        let b = next_batch(&rx);
        assert_eq!(
            b.packets().map(|p| p.payload().len()).collect::<Vec<_>>(),
            vec![0, 0, 0, 0]
        );
        // Once the connection has left the table, its mark goes: the same
        // segment crosses whole again.
        a.batch(&b, &hint);
        a.tick(t + 3_600_000_000);
        a.mark_bypassed(Some(&hint));
        dispatch(&mut d, t + 3_601_000_000, &late[..1]);
        let again = payloads(&rx);
        assert!(matches!(again.as_slice(), [n] if *n > 0), "{again:?}");
    }

    /// The same port pair reused at once: the new connection's SYN reaches
    /// the capture thread before the worker has marked the old connection
    /// (whose analysis ended in the same batch). The late mark must not
    /// strip the new connection's logon, or a client could hide its name
    /// by reconnecting quickly.
    #[test]
    fn a_late_mark_does_not_strip_a_new_connection_on_the_same_ports() {
        let (mut d, rx, hint, mut a, out) = one_worker();
        let t = 1_700_000_000_000_000;
        let mut first = rdp_session(1, "DESKTOP-4QK2M1L", true);
        let second = rdp_session(2, "WIN-LIVFRVQFMKO", true);
        // The old connection and the new one's SYN, in one batch.
        first.push(second[0].clone());
        dispatch(&mut d, t, &first);
        a.batch(&next_batch(&rx), &hint);
        assert_eq!(a.table.stats.bypassed, 1);
        // The rest of the new connection, after the mark.
        dispatch(&mut d, t + 60_000, &second[1..]);
        let b = next_batch(&rx);
        assert!(b.packets().any(|p| !p.payload().is_empty()));
        a.batch(&b, &hint);
        a.finish();
        assert_eq!(
            client_names(&out),
            vec!["DESKTOP-4QK2M1L".to_string(), "WIN-LIVFRVQFMKO".to_string()]
        );
    }

    /// The old connection closes, and a new one on the same ports opens,
    /// logs on and is done, all in one batch: the old one's release must
    /// not undo the new one's mark.
    #[test]
    fn a_release_leaves_the_mark_of_a_new_connection_on_the_same_ports() {
        let (mut d, rx, hint, mut a, _out) = one_worker();
        let t = 1_700_000_000_000_000;
        let mut frames = rdp_session(1, "DESKTOP-4QK2M1L", true);
        let second = rdp_session(2, "WIN-LIVFRVQFMKO", false);
        frames.extend(second.iter().cloned());
        dispatch(&mut d, t, &frames);
        a.batch(&next_batch(&rx), &hint);
        assert_eq!(a.table.stats.bypassed, 2);
        // The new connection's last client segment again: headers only.
        dispatch(
            &mut d,
            t + 60_000,
            &second[second.len() - 2..second.len() - 1],
        );
        assert_eq!(payloads(&rx), vec![0]);
    }
}
