use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::path::PathBuf;

use super::*;
use crate::decode::{linktype, Checksum, Datagram, Decoder, Segment, Vlans};

const A: IpAddr = IpAddr::V4(Ipv4Addr::new(10, 0, 0, 1));
const B: IpAddr = IpAddr::V4(Ipv4Addr::new(10, 0, 0, 2));

fn seg(ts_us: i64, from_a: bool, flags: u8, seq: u32, payload: &[u8]) -> Segment<&[u8]> {
    let (src, dst, sport, dport) = if from_a {
        (A, B, 49_000, 3389)
    } else {
        (B, A, 3389, 49_000)
    };
    Segment {
        ts_us,
        src,
        dst,
        sport,
        dport,
        seq,
        ack: 7,
        flags,
        window: 8192,
        fast_open: false,
        vlans: Vlans::default(),
        iface: None,
        checksum: Checksum::Unchecked,
        payload,
    }
}

type Outcome = Result<(), Box<dyn std::error::Error>>;

/// A little-endian u32 at `at` (0 past the end: the caller's length checks
/// then fail).
fn le32(b: &[u8], at: usize) -> u32 {
    b.get(at..at + 4)
        .and_then(|w| w.try_into().ok())
        .map_or(0, u32::from_le_bytes)
}

/// A packet read back: time, headers as text, payload, checksum right.
type Decoded = (i64, String, Vec<u8>, bool);

/// The packets a decoder finds in the records `bytes` holds.
fn decoded(bytes: &[u8]) -> Vec<Decoded> {
    let mut out = Vec::new();
    let mut rest = bytes;
    let mut d = Decoder::new(linktype::ETHERNET);
    while rest.len() >= 16 {
        let (secs, usecs) = (le32(rest, 0), le32(rest, 4));
        let len = le32(rest, 8) as usize;
        let frame = rest.get(16..16 + len).unwrap_or_default();
        let ts = i64::from(secs) * 1_000_000 + i64::from(usecs);
        d.decode(ts, frame, &mut |p| {
            let (what, ok) = match p {
                Packet::Tcp(s) => (
                    format!(
                        "tcp {}:{}>{}:{} seq={} ack={} flags={:#04x} win={} vlans={:?}",
                        s.src,
                        s.sport,
                        s.dst,
                        s.dport,
                        s.seq,
                        s.ack,
                        s.flags,
                        s.window,
                        s.vlans.as_slice()
                    ),
                    s.checksum.accepts(s.payload),
                ),
                Packet::Udp(u) => (
                    format!("udp {}:{}>{}:{}", u.src, u.sport, u.dst, u.dport),
                    u.checksum.accepts(u.payload),
                ),
            };
            out.push((ts, what, p.payload().to_vec(), ok));
        });
        rest = rest.get(16 + len..).unwrap_or_default();
    }
    assert!(rest.is_empty(), "records end where the bytes do");
    out
}

#[test]
fn a_segment_is_written_as_it_was_decoded() {
    let mut s = seg(1_700_000_000_123_456, true, 0x18, 1000, b"hello");
    s.vlans.push(100);
    s.vlans.push(7);
    let mut out = Vec::new();
    assert!(record(&Packet::Tcp(s), &mut out));
    // 16 (record) + 14 (Ethernet) + 2 * 4 (tags) + 20 (IPv4) + 20 (TCP) + 5.
    assert_eq!(out.len(), 16 + 14 + 8 + 20 + 20 + 5);
    let got = decoded(&out);
    assert_eq!(
        got,
        vec![(
            1_700_000_000_123_456,
            "tcp 10.0.0.1:49000>10.0.0.2:3389 seq=1000 ack=7 flags=0x18 win=8192 vlans=[100, 7]"
                .to_string(),
            b"hello".to_vec(),
            true
        )]
    );
}

#[test]
fn a_wrong_checksum_stays_wrong_and_a_right_one_right() {
    // A checksum sum that the payload does not complete: decode judged it
    // wrong, and so does the reader of the file.
    let mut bad = seg(1, true, 0x18, 1, b"data");
    bad.checksum = Checksum::Pending(0x1234);
    assert!(!bad.checksum.accepts(bad.payload));
    let mut good = seg(2, false, 0x18, 1, b"data");
    good.checksum = Checksum::Unchecked;
    let mut out = Vec::new();
    assert!(record(&Packet::Tcp(bad), &mut out));
    assert!(record(&Packet::Tcp(good), &mut out));
    let oks: Vec<bool> = decoded(&out).into_iter().map(|p| p.3).collect();
    assert_eq!(oks, vec![false, true]);
}

#[test]
fn ipv6_datagrams_are_written_with_their_checksum() {
    let d = Datagram {
        ts_us: 5,
        src: IpAddr::V6(Ipv6Addr::new(0xfe80, 0, 0, 0, 0, 0, 0, 1)),
        dst: IpAddr::V6(Ipv6Addr::new(0xff02, 0, 0, 0, 0, 0, 0, 0xfb)),
        sport: 5353,
        dport: 5353,
        vlans: Vlans::default(),
        iface: None,
        checksum: Checksum::Unchecked,
        payload: &b"\x00\x00\x84\x00"[..],
    };
    let mut out = Vec::new();
    assert!(record(&Packet::Udp(d), &mut out));
    assert_eq!(out.len(), 16 + 14 + 40 + 8 + 4);
    assert_eq!(
        decoded(&out),
        vec![(
            5,
            "udp fe80::1:5353>ff02::fb:5353".to_string(),
            b"\x00\x00\x84\x00".to_vec(),
            true
        )]
    );
}

#[test]
fn a_datagram_too_large_for_one_packet_is_refused() {
    let big = vec![0u8; 70_000];
    let d = Datagram {
        ts_us: 5,
        src: A,
        dst: B,
        sport: 88,
        dport: 50_000,
        vlans: Vlans::default(),
        iface: None,
        checksum: Checksum::Unchecked,
        payload: &big[..],
    };
    let mut out = vec![1, 2, 3];
    assert!(!record(&Packet::Udp(d), &mut out));
    assert_eq!(out, vec![1, 2, 3]);
}

/// A path for `name` in a directory of its own, removed with the
/// directory (to be kept as long as the path is used).
fn tmp(name: &str) -> std::io::Result<(PathBuf, tempfile::TempDir)> {
    let dir = tempfile::tempdir()?;
    Ok((dir.path().join(name), dir))
}

fn log(name: &str) -> std::io::Result<(Arc<PacketLog>, PathBuf, tempfile::TempDir)> {
    let (path, dir) = tmp(name)?;
    let l = PacketLog::create(LogOptions {
        path: path.clone(),
        rotate_bytes: None,
        files: None,
    })?;
    Ok((Arc::new(l), path, dir))
}

fn flow_of(s: &Segment<&[u8]>) -> FlowInfo {
    FlowInfo {
        flow_id: 1,
        transport: Transport::Tcp,
        src_ip: s.src,
        src_port: s.sport,
        dest_ip: s.dst,
        dest_port: s.dport,
        vlans: s.vlans,
        iface: None,
        two_way: true,
        handshake: true,
        overlap: None,
    }
}

/// The packets of a pcap file (after its 24-byte header).
fn file_packets(path: &Path) -> std::io::Result<Vec<Decoded>> {
    let bytes = std::fs::read(path)?;
    assert_eq!(le32(&bytes, 0), 0xa1b2_c3d4);
    assert_eq!(le32(&bytes, 20), 1, "Ethernet");
    Ok(decoded(bytes.get(24..).unwrap_or_default()))
}

#[test]
fn only_a_connection_that_alerts_is_written_from_its_first_packet() -> Outcome {
    let (l, path, _dir) = log("alerting.pcap")?;
    let mut r = Recorder::new(l, 1 << 20, 100);
    let syn = seg(10, true, 0x02, 100, b"");
    // Another connection, which never alerts.
    let mut other = seg(11, true, 0x02, 5, b"");
    other.sport = 50_000;
    r.packet(&Packet::Tcp(syn));
    r.packet(&Packet::Tcp(other));
    r.packet(&Packet::Tcp(seg(12, false, 0x12, 900, b"")));
    r.packet(&Packet::Tcp(seg(13, true, 0x18, 101, b"NEGOTIATE")));
    assert_eq!(r.held_bytes(), 4 * (16 + 54) + 9);
    r.alerted(&flow_of(&syn));
    assert_eq!(
        r.held_bytes(),
        16 + 54,
        "the other connection is still held"
    );
    // Later packets follow.
    r.packet(&Packet::Tcp(seg(14, false, 0x18, 901, b"CHALLENGE")));
    assert!(r.flush());
    let times: Vec<i64> = file_packets(&path)?.iter().map(|p| p.0).collect();
    assert_eq!(times, vec![10, 12, 13, 14]);
    assert_eq!(
        r.stats(),
        PacketStats {
            packets: 4,
            flows: 1,
            files: 1,
            ..PacketStats::default()
        }
    );
    Ok(())
}

#[test]
fn a_retransmitted_syn_keeps_the_connection_and_a_new_one_starts_afresh() -> Outcome {
    let (l, path, _dir) = log("reuse.pcap")?;
    let mut r = Recorder::new(l, 1 << 20, 100);
    r.packet(&Packet::Tcp(seg(1, true, 0x02, 100, b"")));
    r.packet(&Packet::Tcp(seg(2, true, 0x02, 100, b"")));
    r.packet(&Packet::Tcp(seg(3, true, 0x18, 101, b"x")));
    // The same ports, another initial sequence number: a new connection.
    r.packet(&Packet::Tcp(seg(60, true, 0x02, 7000, b"")));
    r.packet(&Packet::Tcp(seg(61, true, 0x18, 7001, b"y")));
    r.alerted(&flow_of(&seg(61, true, 0x18, 7001, b"y")));
    assert!(r.flush());
    let times: Vec<i64> = file_packets(&path)?.iter().map(|p| p.0).collect();
    assert_eq!(times, vec![60, 61]);
    Ok(())
}

#[test]
fn held_packets_stay_within_the_budget_and_the_oldest_go_first() -> Outcome {
    let (l, path, _dir) = log("budget.pcap")?;
    let per = 16 + 54 + 100;
    let mut r = Recorder::new(l, 10 * per, 1000);
    for i in 0..50u16 {
        let mut s = seg(i64::from(i), true, 0x18, 1, &[0u8; 100]);
        s.sport = 40_000 + i;
        r.packet(&Packet::Tcp(s));
        assert!(r.held_bytes() <= 10 * per);
    }
    assert_eq!(r.held_bytes(), 10 * per);
    assert_eq!(r.stats().evicted, 40);
    // An evicted connection has nothing to write; a kept one has.
    let mut first = seg(0, true, 0x18, 1, b"");
    first.sport = 40_000;
    r.alerted(&flow_of(&first));
    let mut last = seg(49, true, 0x18, 1, b"");
    last.sport = 40_049;
    r.alerted(&flow_of(&last));
    assert!(r.flush());
    let times: Vec<i64> = file_packets(&path)?.iter().map(|p| p.0).collect();
    assert_eq!(times, vec![49]);
    Ok(())
}

#[test]
fn connections_beyond_the_cap_are_forgotten_oldest_first() -> Outcome {
    let (l, _, _dir) = log("rings.pcap")?;
    let mut r = Recorder::new(l, 1 << 30, 3);
    for i in 0..5u16 {
        let mut s = seg(1, true, 0x02, 1, b"");
        s.sport = 40_000 + i;
        r.packet(&Packet::Tcp(s));
    }
    assert_eq!(r.rings.len(), 3);
    assert_eq!(r.stats().evicted, 2);
    Ok(())
}

#[test]
fn a_connection_is_cut_at_its_bound_and_said_so() -> Outcome {
    let (l, path, _dir) = log("cut.pcap")?;
    let mut r = Recorder::new(l, 1 << 30, 10);
    let s = seg(1, true, 0x18, 1, b"z");
    for _ in 0..FLOW_PACKETS + 10 {
        r.packet(&Packet::Tcp(s));
    }
    r.alerted(&flow_of(&s));
    r.packet(&Packet::Tcp(s));
    assert!(r.flush());
    assert_eq!(file_packets(&path)?.len(), FLOW_PACKETS as usize);
    let st = r.stats();
    assert_eq!((st.packets, st.flows_cut, st.flows), (4096, 1, 1));
    Ok(())
}

#[test]
fn an_ended_connection_is_not_kept() -> Outcome {
    let (l, path, _dir) = log("ended.pcap")?;
    let mut r = Recorder::new(l, 1 << 20, 10);
    let s = seg(1, true, 0x18, 1, b"abc");
    r.packet(&Packet::Tcp(s));
    r.ended(Transport::Tcp, FlowKey::of(&s));
    assert_eq!(r.held_bytes(), 0);
    r.packet(&Packet::Tcp(s));
    r.alerted(&flow_of(&s));
    assert_eq!(r.held_bytes(), 0);
    r.tick();
    assert!(r.flush());
    assert!(file_packets(&path)?.is_empty());
    Ok(())
}

#[test]
fn files_rotate_by_size_and_only_the_newest_are_kept() -> Outcome {
    let (path, _dir) = tmp("rot.pcap")?;
    let l = Arc::new(PacketLog::create(LogOptions {
        path: path.clone(),
        rotate_bytes: Some(24 + 2 * (16 + 54 + 100)),
        files: Some(2),
    })?);
    let mut r = Recorder::new(l.clone(), 1 << 20, 10);
    let s = seg(0, true, 0x18, 1, &[7u8; 100]);
    r.packet(&Packet::Tcp(s));
    r.alerted(&flow_of(&s));
    for i in 1..7 {
        r.packet(&Packet::Tcp(seg(i, true, 0x18, 1, &[7u8; 100])));
    }
    assert!(r.flush());
    // Seven packets, two a file: FILE, .1, .2, .3; the newest two kept.
    assert_eq!(l.files(), 4);
    assert!(!path.exists());
    assert!(!numbered(&path, 1).exists());
    let times = |n| -> std::io::Result<Vec<i64>> {
        Ok(file_packets(&numbered(&path, n))?
            .iter()
            .map(|p| p.0)
            .collect())
    };
    assert_eq!(times(2)?, vec![4, 5]);
    assert_eq!(times(3)?, vec![6]);
    Ok(())
}
