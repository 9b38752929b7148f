#![no_main]
//! Flow table, reassembly, detection and every analyzer, in process: the
//! input is a list of TCP segments of one connection (direction, sequence
//! offset, flags, payload), delivered in the order given.
use hostwatch::analyzers::Analyzers;
use hostwatch::decode::{TcpSegment, Vlans};
use hostwatch::detection::{Detector, Matcher};
use hostwatch::flow::{FlowConfig, FlowTable, StreamLimits};
use libfuzzer_sys::fuzz_target;
use std::sync::Arc;

fuzz_target!(|data: &[u8]| {
    let cfg = FlowConfig {
        limits: StreamLimits { depth: 1 << 16, max_ooo_bytes: 4096, max_ooo_segments: 16, retain: 2048 },
        max_flows: 8,
        ..FlowConfig::default()
    };
    let mut table = FlowTable::new(cfg, Analyzers);
    let Ok(m) = Matcher::with_builtins(true, Vec::new()) else { return };
    let mut det = Detector::new(Arc::new(m));
    let mut events = Vec::new();
    let mut rest = data;
    let mut ts = 0i64;
    // Each segment: dir|flags (1), seq offset (2), length (2), payload.
    while rest.len() >= 5 {
        let head = rest[0];
        let off = u32::from(u16::from_le_bytes([rest[1], rest[2]]));
        let len = usize::from(u16::from_le_bytes([rest[3], rest[4]])).min(rest.len() - 5);
        let payload = &rest[5..5 + len];
        rest = &rest[5 + len..];
        let from_client = head & 0x80 == 0;
        let (src, dst, sport, dport) = if from_client {
            ([10, 0, 0, 1].into(), [10, 0, 0, 2].into(), 40000, 445)
        } else {
            ([10, 0, 0, 2].into(), [10, 0, 0, 1].into(), 445, 40000)
        };
        ts += 100;
        let seg = TcpSegment {
            ts_us: ts,
            src,
            dst,
            sport,
            dport,
            seq: if from_client { 1000 + off } else { 9000 + off },
            ack: 0,
            flags: head & 0x1f,
            window: 1000,
            fast_open: head & 0x20 != 0,
            vlans: Vlans::default(),
            iface: None,
            checksum: Default::default(),
            payload,
        };
        table.packet(&seg, &mut |r| det.process(r, &mut events));
    }
    table.finish(&mut |r| det.process(r, &mut events));
    for e in &events {
        let mut out = Vec::new();
        e.write_json(&Default::default(), &mut out);
    }
});
