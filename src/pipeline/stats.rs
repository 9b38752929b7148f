//! The `stats` event: the capture side's totals and the workers' counters,
//! each counter struct adding and serialising itself where it is defined.

use serde_json::json;

use super::worker::WorkerSnapshot;
use crate::analyzers::{Anomalies, Counters};
use crate::capture::KernelStats;
use crate::decode::defrag::DefragStats;
use crate::decode::{checksum, DecodeStats, Decoder};
use crate::flow::{DatagramStats, FlowStats, StreamStats};
use crate::output::packets::PacketStats;

/// Totals of the capture side.
#[derive(Debug, Default, Clone, Copy)]
pub(super) struct CaptureTotals {
    pub decode: DecodeStats,
    pub defrag: DefragStats,
    pub kernel: KernelStats,
    /// How checksums were checked.
    pub checksums: checksum::Mode,
}

impl CaptureTotals {
    /// Adds another part's totals (a lane's).
    pub fn add(&mut self, o: &CaptureTotals) {
        self.decode.add(&o.decode);
        self.defrag.add(&o.defrag);
        self.kernel.add(&o.kernel);
    }

    /// Adds what a decoder counted.
    pub fn add_decoder(&mut self, d: &Decoder) {
        self.decode.add(&d.stats);
        self.defrag.add(&d.defrag_stats());
    }
}

/// Packets handed between fanout lanes.
#[derive(Debug, Default, Clone, Copy)]
pub(super) struct Handoff {
    /// Sent to the lane that owns them.
    pub resharded: u64,
    /// Came to their owner after a later packet had been analysed.
    pub reordered_late: u64,
    /// Analysed before their time because the reorder buffer was full.
    pub released_early: u64,
}

impl Handoff {
    pub fn add(&mut self, o: &Handoff) {
        self.resharded += o.resharded;
        self.reordered_late += o.reordered_late;
        self.released_early += o.released_early;
    }
}

/// One capture socket's kernel counters.
#[derive(Debug, Clone, Default)]
pub(super) struct SocketStats {
    pub interface: String,
    /// The lane (fanout) or 0 (one socket per interface).
    pub lane: usize,
    pub kernel: KernelStats,
}

/// `stats.capture`: the kernel's counters summed, then per socket; with
/// fanout, the lanes and the packets handed between them.
pub(super) fn capture_json(
    total: &KernelStats,
    sockets: &[SocketStats],
    fanout: Option<(usize, Handoff)>,
) -> serde_json::Value {
    let mut v = total.to_json();
    if let Some(o) = v.as_object_mut() {
        let per: Vec<serde_json::Value> = sockets
            .iter()
            .map(|s| {
                let mut e = s.kernel.to_json();
                if let Some(m) = e.as_object_mut() {
                    m.insert("interface".into(), json!(s.interface));
                    m.insert("lane".into(), json!(s.lane));
                }
                e
            })
            .collect();
        o.insert("sockets".into(), json!(per));
        match fanout {
            Some((lanes, h)) => {
                o.insert("mode".into(), json!("fanout"));
                o.insert("lanes".into(), json!(lanes));
                o.insert("resharded".into(), json!(h.resharded));
                o.insert("reordered_late".into(), json!(h.reordered_late));
                o.insert("released_early".into(), json!(h.released_early));
            }
            None => {
                o.insert("mode".into(), json!("single"));
            }
        }
    }
    v
}

/// The body of a `stats` event (the output stage adds event counts).
pub(super) fn to_json(
    c: &CaptureTotals,
    w: &[WorkerSnapshot],
    capture: Option<serde_json::Value>,
) -> serde_json::Value {
    let mut flows = FlowStats::default();
    let mut udp = DatagramStats::default();
    let mut anomalies = Anomalies::default();
    let mut transactions = Counters::default();
    let (mut active, mut held, mut conversations) = (0, 0, 0);
    let mut packets: Option<PacketStats> = None;
    for s in w {
        if let Some(p) = &s.packets {
            packets.get_or_insert_with(PacketStats::default).add(p);
        }
        flows.add(&s.flows);
        udp.add(&s.datagrams);
        active += s.active;
        held += s.held_bytes;
        conversations += s.conversations;
        anomalies.add(&s.anomalies);
        transactions.add(&s.transactions);
    }
    let streams: &StreamStats = &flows.streams;
    let mut v = json!({
        "decoder": c.decode.to_json(),
        "defrag": c.defrag.to_json(),
        "flows": flows.to_json(active),
        "reassembly": streams.to_json(held),
        "datagrams": udp.to_json(conversations),
        "parse_errors": anomalies.parse_errors.to_json(),
        "resyncs": anomalies.resyncs.to_json(),
        "transactions": transactions.to_json(),
        "tcp": { "invalid_checksum": flows.bad_checksum },
        "checksums": {
            "mode": c.checksums.name(),
            "bad_tcp": flows.bad_checksum,
            "bad_tcp_connections": flows.bad_checksum_flows,
            "vouched_tcp": flows.vouched_checksum,
            "vouched_udp": anomalies.vouched.total(),
            "unfilled_tcp_taken": flows.unfilled_checksum,
            "bad_udp": udp.bad_checksum,
            "unfilled_udp_taken": udp.unfilled_checksum,
            "bad_fragment": c.decode.bad_fragment_checksum,
        },
    });
    if let (Some(capture), Some(o)) = (capture, v.as_object_mut()) {
        o.insert("capture".into(), capture);
    }
    if let (Some(p), Some(o)) = (packets, v.as_object_mut()) {
        o.insert("pcap".into(), p.to_json());
    }
    v
}
