#![no_main]
//! The NetBIOS name service parser, and its analyzer and conversation
//! table fed a sequence of datagrams (split at 0xfe) in both directions.
use hostwatch::decode::{UdpDatagram, Vlans};
use hostwatch::flow::{DatagramConfig, DatagramTable};
use hostwatch::parsers::nbns;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = nbns::looks_like(data);
    if let Ok(m) = nbns::parse(data) {
        for q in &m.questions {
            let _ = (q.name.name(), q.name.scope_labels().count());
        }
    }
    let mut table = DatagramTable::new(DatagramConfig {
        max_conversations: 4,
        idle_timeout_us: 2_000_000,
    });
    let mut n = 0usize;
    for (i, d) in data.split(|&b| b == 0xfe).enumerate() {
        let from_server = i % 3 == 1;
        let (a, b) = (([10, 0, 0, 1], 137), ([10, 0, 0, (i % 5) as u8 + 2], 137));
        let (src, dst) = if from_server { (b, a) } else { (a, b) };
        table.datagram(
            &UdpDatagram {
                ts_us: i as i64 * 700_000,
                src: src.0.into(),
                dst: dst.0.into(),
                sport: src.1,
                dport: dst.1,
                vlans: Vlans::default(),
                iface: None,
                checksum: Default::default(),
                payload: d,
            },
            &mut |r| n += r.record.names().len(),
        );
        if i % 4 == 3 {
            table.expire(i as i64 * 700_000, &mut |_| n += 1);
        }
    }
    table.finish(&mut |_| n += 1);
});
