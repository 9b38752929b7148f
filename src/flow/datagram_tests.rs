use super::*;
use crate::analyzers::Role;

fn dg<'a>(
    ts_us: i64,
    src: [u8; 4],
    sport: u16,
    dst: [u8; 4],
    dport: u16,
    payload: &'a [u8],
) -> UdpDatagram<'a> {
    UdpDatagram {
        ts_us,
        src: src.into(),
        dst: dst.into(),
        sport,
        dport,
        vlans: Vlans::default(),
        iface: None,
        checksum: Default::default(),
        payload,
    }
}

/// A node status query for `*` and its answer for `HOST<00>` (RFC 1002
/// 4.2.17 and 4.2.18).
fn status_query(txid: u16) -> Vec<u8> {
    let mut m = txid.to_be_bytes().to_vec();
    m.extend_from_slice(&[0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 32]);
    m.extend_from_slice(b"CKAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA\x00\x00\x21\x00\x01");
    m
}

fn status_answer(txid: u16) -> Vec<u8> {
    let mut m = txid.to_be_bytes().to_vec();
    m.extend_from_slice(&[0x84, 0, 0, 0, 0, 1, 0, 0, 0, 0, 32]);
    m.extend_from_slice(b"CKAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA\x00\x00\x21\x00\x01\x00\x00\x00\x00");
    let mut rdata = vec![1];
    rdata.extend_from_slice(b"HOST           \x00\x04\x00");
    rdata.extend_from_slice(&[0x52, 0x54, 0, 0x12, 0x34, 0x56]);
    m.extend_from_slice(&(rdata.len() as u16).to_be_bytes());
    m.extend(rdata);
    m
}

#[test]
fn datagrams_of_no_protocol_keep_nothing() {
    let mut t = DatagramTable::new(DatagramConfig::default());
    let mut n = 0;
    t.datagram(
        &dg(
            0,
            [10, 0, 0, 1],
            5000,
            [10, 0, 0, 2],
            53,
            b"\x12\x34\x01\x00",
        ),
        &mut |_| n += 1,
    );
    // On 137 but not a name service message.
    t.datagram(
        &dg(0, [10, 0, 0, 1], 5000, [10, 0, 0, 2], 137, b"hello"),
        &mut |_| n += 1,
    );
    assert_eq!(
        (t.len(), t.stats.ignored, t.stats.conversations, n),
        (0, 2, 0, 0)
    );
}

#[test]
fn request_and_answer_pair_in_one_conversation() {
    let mut t = DatagramTable::new(DatagramConfig::default());
    let mut out = Vec::new();
    let q = status_query(0x4242);
    let a = status_answer(0x4242);
    t.datagram(
        &dg(10, [10, 0, 0, 1], 50000, [10, 0, 0, 2], 137, &q),
        &mut |r| out.push(r),
    );
    t.datagram(
        &dg(20, [10, 0, 0, 2], 137, [10, 0, 0, 1], 50000, &a),
        &mut |r| out.push(r),
    );
    assert_eq!(out.len(), 1);
    let f = &out[0].flow;
    assert_eq!(f.transport, Transport::Udp);
    assert_eq!(
        (f.src_ip, f.src_port, f.dest_ip, f.dest_port),
        ([10, 0, 0, 1].into(), 50000, [10, 0, 0, 2].into(), 137)
    );
    assert_eq!(out[0].ts_us, 20);
    let names = out[0].record.names();
    assert_eq!(names.len(), 1);
    assert_eq!((names[0].value, names[0].role), ("HOST", Role::Server));
    assert_eq!((t.stats.datagrams, t.stats.conversations), (2, 1));
}

#[test]
fn an_answer_seen_first_is_from_the_server() {
    let mut t = DatagramTable::new(DatagramConfig::default());
    let mut out = Vec::new();
    // Both on 137: only the content says who answered.
    let a = status_answer(1);
    t.datagram(
        &dg(5, [10, 0, 0, 7], 137, [10, 0, 0, 5], 137, &a),
        &mut |r| out.push(r),
    );
    t.finish(&mut |r| out.push(r));
    let f = &out[0].flow;
    assert_eq!(
        (f.src_ip, f.dest_ip),
        ([10, 0, 0, 5].into(), [10, 0, 0, 7].into())
    );
}

#[test]
fn conversations_are_capped_and_time_out_on_packet_time() {
    let cfg = DatagramConfig {
        max_conversations: 16,
        idle_timeout_us: 1_000_000,
    };
    let mut t = DatagramTable::new(cfg);
    let mut out = Vec::new();
    for i in 0..20u16 {
        let q = status_query(i);
        t.datagram(
            &dg(
                i64::from(i),
                [10, 0, 0, 1],
                40000 + i,
                [10, 0, 0, 2],
                137,
                &q,
            ),
            &mut |r| out.push(r),
        );
    }
    assert!(t.len() <= 16);
    assert_eq!(t.stats.evicted, 4, "one sixteenth of 16, four times");
    // Evicted conversations still wrote their unanswered queries.
    assert_eq!(out.len(), 4);
    t.expire(2_000_000, &mut |r| out.push(r));
    assert_eq!((t.len(), t.stats.timed_out, out.len()), (0, 16, 20));
}
