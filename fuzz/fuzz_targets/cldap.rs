#![no_main]
//! The CLDAP ping parser and netlogon answer reader, and their analyzer
//! behind the datagram table (UDP 389), fed datagrams split at 0xfe.
use hostwatch::decode::{UdpDatagram, Vlans};
use hostwatch::flow::{DatagramConfig, DatagramTable};
use hostwatch::parsers::cldap;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = cldap::looks_like(data);
    if let Ok(cldap::Message::Entry {
        netlogon: Some(v), ..
    }) = cldap::message(data)
    {
        let _ = cldap::netlogon_response(v);
    }
    // The netlogon reader on raw bytes too (its pointers are relative).
    let _ = cldap::netlogon_response(data);
    let mut table = DatagramTable::new(DatagramConfig::default());
    let mut n = 0usize;
    for (i, d) in data.split(|&b| b == 0xfe).enumerate() {
        table.datagram(
            &UdpDatagram {
                ts_us: i as i64 * 1_000_000,
                src: [10, 0, 0, 5].into(),
                dst: [10, 0, 0, 255].into(),
                sport: if i % 2 == 0 { 50000 } else { 389 },
                dport: if i % 2 == 0 { 389 } else { 50000 },
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
