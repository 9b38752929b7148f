//! The `stats` event: the capture side's totals and the workers' counters,
//! each counter struct adding and serialising itself where it is defined.

use serde_json::json;

use super::worker::WorkerSnapshot;
use crate::analyzers::Counters;
use crate::capture::KernelStats;
use crate::decode::defrag::DefragStats;
use crate::decode::{checksum, DecodeStats, Decoder};
use crate::flow::{DatagramStats, FlowStats, StreamStats};

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
    /// Adds what a decoder counted.
    pub fn add_decoder(&mut self, d: &Decoder) {
        self.decode.add(&d.stats);
        self.defrag.add(&d.defrag_stats());
    }
}

/// The body of a `stats` event (the output stage adds event counts).
pub(super) fn to_json(c: &CaptureTotals, w: &[WorkerSnapshot], live: bool) -> serde_json::Value {
    let mut flows = FlowStats::default();
    let mut udp = DatagramStats::default();
    let mut parse_errors = Counters::default();
    let mut transactions = Counters::default();
    let (mut active, mut held, mut conversations) = (0, 0, 0);
    for s in w {
        flows.add(&s.flows);
        udp.add(&s.datagrams);
        active += s.active;
        held += s.held_bytes;
        conversations += s.conversations;
        parse_errors.add(&s.parse_errors);
        transactions.add(&s.transactions);
    }
    let streams: &StreamStats = &flows.streams;
    let mut v = json!({
        "packets": c.decode.frames,
        "bytes": c.decode.bytes,
        "decoder": c.decode.to_json(),
        "defrag": c.defrag.to_json(),
        "flows": flows.to_json(active),
        "reassembly": streams.to_json(held),
        "datagrams": udp.to_json(conversations),
        "parse_errors": parse_errors.to_json(),
        "transactions": transactions.to_json(),
        "checksums": {
            "mode": c.checksums.name(),
            "bad_tcp": flows.bad_checksum,
            "unfilled_tcp_taken": flows.unfilled_checksum,
            "bad_udp": udp.bad_checksum,
            "unfilled_udp_taken": udp.unfilled_checksum,
            "bad_fragment": c.decode.bad_fragment_checksum,
        },
    });
    if live {
        if let Some(o) = v.as_object_mut() {
            o.insert("capture".into(), c.kernel.to_json());
        }
    }
    v
}
