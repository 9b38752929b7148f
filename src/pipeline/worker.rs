//! A worker: owns the flow tables (TCP streams and UDP conversations) of
//! its share of the traffic and a detector, turns batches into events and
//! sends them to the output stage.

use std::sync::{Arc, Mutex};

use crossbeam_channel::{Receiver, Sender};

use super::dispatch::{Batch, BypassHint, WorkMsg};
use super::report::OutMsg;
use crate::analyzers::{Analyzers, Counters};
use crate::decode::Packet;
use crate::detection::Detector;
use crate::flow::{DatagramConfig, DatagramStats, DatagramTable, FlowConfig, FlowStats, FlowTable};

/// Counters a worker publishes for periodic stats.
#[derive(Debug, Default, Clone)]
pub(super) struct WorkerSnapshot {
    pub flows: FlowStats,
    pub active: usize,
    pub held_bytes: usize,
    pub datagrams: DatagramStats,
    pub conversations: usize,
    pub parse_errors: Counters,
    pub transactions: Counters,
}

impl WorkerSnapshot {
    fn of(table: &FlowTable<Analyzers>, udp: &DatagramTable) -> Self {
        WorkerSnapshot {
            flows: table.stats,
            active: table.len(),
            held_bytes: table.held_bytes(),
            datagrams: udp.stats,
            conversations: udp.len(),
            parse_errors: {
                let mut e = table.parse_errors.clone();
                e.add(&udp.parse_errors);
                e
            },
            transactions: udp.transactions.clone(),
        }
    }
}

/// What a worker is given.
pub(super) struct WorkerSetup {
    pub flow: FlowConfig,
    pub datagram: DatagramConfig,
    pub lists: Arc<crate::detection::lists::Lists>,
    pub home_net: crate::detection::confidence::HomeNet,
    pub asn_db: Option<Arc<crate::detection::asn::AsnDb>>,
    pub rx: Receiver<WorkMsg>,
    pub free: Sender<Batch>,
    pub out: Sender<OutMsg>,
    pub snapshot: Arc<Mutex<WorkerSnapshot>>,
    pub hint: Arc<BypassHint>,
}

pub(super) fn run(setup: WorkerSetup) -> WorkerSnapshot {
    let WorkerSetup {
        flow,
        datagram,
        lists,
        home_net,
        asn_db,
        rx,
        free,
        out,
        snapshot,
        hint,
    } = setup;
    let mut table = FlowTable::new(flow, Analyzers);
    let mut udp = DatagramTable::new(datagram);
    let mut detector = Detector::with_lists(lists, home_net).with_asn_db(asn_db);
    let mut events = Vec::new();
    let publish = |table: &FlowTable<Analyzers>, udp: &DatagramTable| {
        if let Ok(mut s) = snapshot.lock() {
            *s = WorkerSnapshot::of(table, udp);
        }
    };
    for msg in rx {
        match msg {
            WorkMsg::Batch(mut b) => {
                for p in b.packets() {
                    let mut found = |fr| detector.process(fr, &mut events);
                    match p {
                        Packet::Tcp(seg) => table.packet(&seg, &mut found),
                        Packet::Udp(d) => udp.datagram(&d, &mut found),
                    }
                }
                b.clear();
                let _ = free.try_send(b);
                for key in table.take_bypassed() {
                    hint.mark(key.shard_hash());
                }
            }
            WorkMsg::Tick(now) => {
                table.expire(now, &mut |fr| detector.process(fr, &mut events));
                udp.expire(now, &mut |fr| detector.process(fr, &mut events));
                publish(&table, &udp);
            }
        }
        if !events.is_empty()
            && out
                .send(OutMsg::Events(std::mem::take(&mut events)))
                .is_err()
        {
            break;
        }
    }
    table.finish(&mut |fr| detector.process(fr, &mut events));
    udp.finish(&mut |fr| detector.process(fr, &mut events));
    if !events.is_empty() {
        let _ = out.send(OutMsg::Events(events));
    }
    publish(&table, &udp);
    WorkerSnapshot {
        active: 0,
        conversations: 0,
        ..WorkerSnapshot::of(&table, &udp)
    }
}
