//! The common path allocates nothing per packet: a counting global
//! allocator watches the decoder and the flow tables while a connection
//! that is no longer analysed (a TLS session past its certificate), one
//! whose analyzer skips payload by length (an SMB2 file copy) and UDP
//! datagrams no protocol takes (QUIC, NTP, syslog, and junk on the NetBIOS
//! port) carry thousands of packets, and a SYN flood (lone SYNs wait in the
//! SYN cache's fixed slots). Buffers that grow to a cap once per
//! connection (the bytes kept until acknowledged) reach it in the warm-up.
//! One test in this binary, so no other
//! test's allocations count.

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicUsize, Ordering};

use hostwatch::analyzers::Analyzers;
use hostwatch::decode::{linktype, Decoder, Packet};
use hostwatch::flow::{DatagramConfig, DatagramTable, FlowConfig, FlowTable};
use hostwatch::synth::{msg, Conn, Segment};

struct Counting;

static ALLOCATIONS: AtomicUsize = AtomicUsize::new(0);

// SAFETY: forwards every call to the system allocator unchanged.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        ALLOCATIONS.fetch_add(1, Ordering::Relaxed);
        // SAFETY: same layout contract as the caller's.
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: `ptr` came from `System.alloc` with this layout.
        unsafe { System.dealloc(ptr, layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        ALLOCATIONS.fetch_add(1, Ordering::Relaxed);
        // SAFETY: as for `dealloc`, and `new_size` is the caller's.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

/// An Ethernet/IPv4/UDP frame.
fn udp_frame(src: [u8; 4], sport: u16, dst: [u8; 4], dport: u16, payload: &[u8]) -> Vec<u8> {
    let b = etherparse::PacketBuilder::ethernet2([2, 0, 0, 0, 0, 1], [2, 0, 0, 0, 0, 2])
        .ipv4(src, dst, 64)
        .udp(sport, dport);
    let mut out = Vec::with_capacity(b.size(payload.len()));
    b.write(&mut out, payload)
        .unwrap_or_else(|e| panic!("building a UDP frame: {e}"));
    out
}

fn frames(conn: &Conn, segs: &[Segment]) -> Vec<Vec<u8>> {
    segs.iter().map(|s| conn.frame(s)).collect()
}

#[test]
fn no_allocation_per_packet_on_the_common_path() {
    // A TLS session: handshake with the certificate, then bulk data.
    let mut tls = Conn::new(
        ([10, 0, 0, 1].into(), 40000),
        ([10, 0, 0, 2].into(), 443),
        1,
    );
    let open = tls.open();
    let mut warm = frames(&tls, &open);
    for (c, s) in msg::tls_session("www.example.com", msg::CERT, 0) {
        let a = tls.send(true, &c);
        warm.extend(frames(&tls, &a));
        let b = tls.send(false, &s);
        warm.extend(frames(&tls, &b));
    }
    let mut bulk = Vec::new();
    for (c, s) in msg::tls_session("www.example.com", msg::CERT, 3_000_000)
        .into_iter()
        .skip(1)
    {
        let a = tls.send(true, &c);
        bulk.extend(frames(&tls, &a));
        let b = tls.send(false, &s);
        bulk.extend(frames(&tls, &b));
    }

    // An SMB2 logon, then 64 KiB reads: analysed, but skipped by length.
    let mut smb = Conn::new(
        ([10, 0, 0, 1].into(), 40001),
        ([10, 0, 0, 3].into(), 445),
        2,
    );
    let open = smb.open();
    warm.extend(frames(&smb, &open));
    let names = msg::ServerNames {
        target: "CORP",
        nb_computer: "FS",
        nb_domain: "CORP",
        dns_computer: "fs",
        dns_domain: "corp",
        build: 20348,
    };
    for (c, s) in msg::smb2_logon(5, &names, "CORP", "alice", "PC-1", 0) {
        let a = smb.send(true, &c);
        warm.extend(frames(&smb, &a));
        let b = smb.send(false, &s);
        warm.extend(frames(&smb, &b));
    }
    let block = vec![0x5a; 65_536];
    // A few reads in the warm-up: the bytes kept until acknowledged grow
    // to their cap once per connection, not per packet.
    for id in 0..4 {
        let (rq, rs) = msg::smb2_read(60 + id, 5, &block);
        let a = smb.send(true, &rq);
        warm.extend(frames(&smb, &a));
        let b = smb.send(false, &rs);
        warm.extend(frames(&smb, &b));
    }
    for id in 0..40 {
        let (rq, rs) = msg::smb2_read(10 + id, 5, &block);
        let a = smb.send(true, &rq);
        bulk.extend(frames(&smb, &a));
        let b = smb.send(false, &rs);
        bulk.extend(frames(&smb, &b));
    }

    // One ignored datagram in the warm-up: the registry's port sets are
    // built on first use, once.
    warm.push(udp_frame(
        [10, 0, 0, 6],
        40000,
        [10, 0, 0, 7],
        514,
        b"<13>warm",
    ));

    // UDP of no interest: QUIC, NTP, syslog, and junk on port 137.
    let quic = vec![0xc3; 1200];
    for i in 0..500u16 {
        bulk.push(udp_frame(
            [10, 0, 0, 1],
            50000 + i % 7,
            [10, 0, 0, 4],
            443,
            &quic,
        ));
        bulk.push(udp_frame(
            [10, 0, 0, 1],
            123,
            [10, 0, 0, 5],
            123,
            &[0x23; 48],
        ));
        bulk.push(udp_frame(
            [10, 0, 0, 6],
            40000,
            [10, 0, 0, 7],
            514,
            b"<13>Nov 29 hello",
        ));
        bulk.push(udp_frame(
            [10, 0, 0, 8],
            137,
            [10, 0, 0, 255],
            137,
            b"not a name service message",
        ));
    }

    // A SYN flood: lone SYNs from 5,000 sources wait in the SYN cache,
    // whose slots grow (by doubling) to their full number in the warm-up's
    // flood of 40,000.
    let lone_syn = |i: u32| {
        let conn = Conn::new(
            (
                [100, 64 + (i >> 16) as u8, (i >> 8) as u8, i as u8].into(),
                1024,
            ),
            ([10, 0, 0, 9].into(), 3389),
            i,
        );
        let syn = Segment {
            from_client: true,
            seq: i.wrapping_mul(7919),
            ack: 0,
            flags: hostwatch::decode::tcp_flags::SYN,
            payload: Vec::new(),
        };
        conn.frame(&syn)
    };
    warm.extend((100_000..140_000).map(lone_syn));
    bulk.extend((0..5_000).map(lone_syn));

    let mut decoder = Decoder::new(linktype::ETHERNET);
    let mut table = FlowTable::new(FlowConfig::default(), Analyzers);
    let mut udp = DatagramTable::new(DatagramConfig::default());
    let mut records = 0usize;
    let mut ts = 1_700_000_000_000_000i64;
    let mut run = |frames: &[Vec<u8>],
                   decoder: &mut Decoder,
                   table: &mut FlowTable<Analyzers>,
                   udp: &mut DatagramTable| {
        for f in frames {
            ts += 10;
            decoder.decode(ts, f, &mut |p| match p {
                Packet::Tcp(seg) => table.packet(seg, &mut |_r| records += 1),
                Packet::Udp(d) => udp.datagram(d, &mut |_r| records += 1),
            });
        }
    };
    run(&warm, &mut decoder, &mut table, &mut udp);
    let before = ALLOCATIONS.load(Ordering::Relaxed);
    run(&bulk, &mut decoder, &mut table, &mut udp);
    let during = ALLOCATIONS.load(Ordering::Relaxed) - before;
    assert!(bulk.len() > 9_000, "{} packets", bulk.len());
    assert_eq!((udp.stats.ignored, udp.len()), (2_001, 0));
    // The flood left the flow table alone.
    assert_eq!((table.len(), table.stats.flows), (2, 2));
    // The two connections' SYNs waited too, until their SYN-ACK.
    assert_eq!(
        (table.stats.syns.held, table.stats.syns.answered),
        (45_002, 2)
    );
    assert_eq!(
        during,
        0,
        "{during} allocations over {} packets",
        bulk.len()
    );
    // Both connections were analysed: the TLS certificate and the NTLM
    // logon (with its verdict: an ntlm and an smb record) were reported
    // during the warm-up.
    let mut at_end = 0;
    table.finish(&mut |_r| at_end += 1);
    assert_eq!((records, at_end), (3, 0));
}
