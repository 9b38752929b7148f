#![no_main]
//! The DNS message parser, and the mDNS and LLMNR analyzers behind the
//! datagram table (UDP 5353 and 5355), fed datagrams split at 0xfe.
use hostwatch::decode::{UdpDatagram, Vlans};
use hostwatch::flow::{DatagramConfig, DatagramTable};
use hostwatch::parsers::dns;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = dns::looks_like(data);
    if let Ok(m) = dns::parse(data) {
        let _ = (m.questions.len(), m.addresses.len());
    }
    let mut table = DatagramTable::new(DatagramConfig::default());
    let mut n = 0usize;
    for (i, d) in data.split(|&b| b == 0xfe).enumerate() {
        table.datagram(
            &UdpDatagram {
                ts_us: i as i64 * 1_000_000,
                src: [10, 0, 0, 5].into(),
                dst: [10, 0, 0, 255].into(),
                sport: if i % 2 == 0 { 5353 } else { 5355 },
                dport: if i % 2 == 0 { 5353 } else { 5355 },
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
