#![no_main]
//! The Kerberos parser, its UDP analyzer behind the datagram table (port
//! 88, datagrams split at 0xfe, alternating directions), and its TCP
//! analyzer fed the same bytes as one stream in chunks.
use hostwatch::analyzers::krb5::KrbStream;
use hostwatch::analyzers::{Analyzer, Ctx, Dir, Record};
use hostwatch::decode::{UdpDatagram, Vlans};
use hostwatch::flow::{DatagramConfig, DatagramTable};
use hostwatch::parsers::krb5;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = (krb5::looks_like(data), krb5::looks_like_tcp(data), krb5::tcp_length(data));
    if let hostwatch::parsers::Resync::At(p) = krb5::resync_tcp(data) {
        assert!(p < data.len());
    }
    if let Ok(m) = krb5::parse(data) {
        let _ = (m.cname, m.sname, m.addresses.len(), m.error_code.and_then(krb5::error_name));
    }
    let mut table = DatagramTable::new(DatagramConfig::default());
    let mut n = 0usize;
    for (i, d) in data.split(|&b| b == 0xfe).enumerate() {
        let (sport, dport) = if i % 2 == 0 { (50000, 88) } else { (88, 50000) };
        let (src, dst): ([u8; 4], [u8; 4]) = if i % 2 == 0 {
            ([10, 0, 0, 2], [10, 0, 0, 1])
        } else {
            ([10, 0, 0, 1], [10, 0, 0, 2])
        };
        table.datagram(
            &UdpDatagram {
                ts_us: i as i64,
                src: src.into(),
                dst: dst.into(),
                sport,
                dport,
                vlans: Vlans::default(),
                iface: None,
                checksum: Default::default(),
                payload: d,
            },
            &mut |r| n += r.record.names().len(),
        );
    }
    table.finish(&mut |_| n += 1);
    let mut stream = KrbStream::default();
    let mut records: Vec<Record> = Vec::new();
    let mut cx = Ctx::new(0, false, &mut records);
    for (i, chunk) in data.chunks(13).enumerate() {
        let dir = if i % 5 == 4 { Dir::ToClient } else { Dir::ToServer };
        let _ = stream.data(dir, chunk, &mut cx);
    }
    stream.end(&mut cx);
});
