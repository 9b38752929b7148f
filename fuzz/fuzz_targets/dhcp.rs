#![no_main]
//! The DHCPv4 and DHCPv6 parsers, and their analyzer behind the datagram
//! table (a link-scoped conversation), fed datagrams split at 0xfe
//! alternately as client requests and server answers of both versions.
use hostwatch::decode::{UdpDatagram, Vlans};
use hostwatch::flow::{DatagramConfig, DatagramTable};
use hostwatch::parsers::dhcp;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = (dhcp::looks_like_v4(data), dhcp::looks_like_v6(data));
    if let Ok(m) = dhcp::parse_v4(data) {
        let _ = m.fqdn.and_then(|f| f.text());
    }
    if let Ok(m) = dhcp::parse_v6(data) {
        let _ = (
            m.fqdn.and_then(|f| f.text()),
            m.client_duid.and_then(dhcp::duid_mac),
        );
    }
    let mut table = DatagramTable::new(DatagramConfig::default());
    let mut n = 0usize;
    for (i, d) in data.split(|&b| b == 0xfe).enumerate() {
        let v4 = i % 4 < 2;
        let (sport, dport) = match (v4, i % 2 == 0) {
            (true, true) => (68, 67),
            (true, false) => (67, 68),
            (false, true) => (546, 547),
            (false, false) => (547, 546),
        };
        let (src, dst): (std::net::IpAddr, std::net::IpAddr) = if v4 {
            (
                [10, 0, 0, (i % 7) as u8].into(),
                [255, 255, 255, 255].into(),
            )
        } else {
            (
                "fe80::1"
                    .parse()
                    .unwrap_or(std::net::Ipv6Addr::LOCALHOST)
                    .into(),
                "ff02::1:2"
                    .parse()
                    .unwrap_or(std::net::Ipv6Addr::LOCALHOST)
                    .into(),
            )
        };
        table.datagram(
            &UdpDatagram {
                ts_us: i as i64 * 7_000_000,
                src,
                dst,
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
});
