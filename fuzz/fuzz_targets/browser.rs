#![no_main]
//! The browser announcement parser, and its analyzer behind the datagram
//! table (UDP 138), fed datagrams split at 0xfe.
use hostwatch::decode::{UdpDatagram, Vlans};
use hostwatch::flow::{DatagramConfig, DatagramTable};
use hostwatch::parsers::browser;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = browser::looks_like(data);
    if let Ok(d) = browser::parse(data) {
        let _ = d.source_name.name();
        if let Some(a) = d.announcement {
            let _ = (a.server_name.len(), a.comment.len());
        }
    }
    let mut table = DatagramTable::new(DatagramConfig::default());
    let mut n = 0usize;
    for (i, d) in data.split(|&b| b == 0xfe).enumerate() {
        table.datagram(
            &UdpDatagram {
                ts_us: i as i64 * 1_000_000,
                src: [10, 0, 0, 5].into(),
                dst: [10, 0, 0, 255].into(),
                sport: 138,
                dport: 138,
                vlans: Vlans::default(),
                iface: None,
                checksum: Default::default(),
                payload: d,
            },
            &mut |r| n += r.record.names().len(),
        );
    }
    table.finish(&mut |_| n += 1);
});
