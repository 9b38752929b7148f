use super::*;
use crate::analyzers::ntlm::NtlmRecord;
use crate::analyzers::rdp::RdpRecord;
use std::sync::{Arc, Mutex};

/// Records every call it gets; emits one record at the end of the flow
/// naming the bytes it saw per direction.
struct Recorder {
    log: Arc<Mutex<Vec<String>>>,
    bytes: [Vec<u8>; 2],
    done_after: Option<usize>,
}

impl Analyzer for Recorder {
    fn data(&mut self, dir: Dir, data: &[u8], _cx: &mut Ctx<'_>) -> Status {
        self.bytes[dir.index()].extend_from_slice(data);
        match self.done_after {
            Some(n) if self.bytes[0].len() >= n => Status::Done,
            _ => Status::Continue,
        }
    }
    fn gap(&mut self, dir: Dir, len: u32, _cx: &mut Ctx<'_>) -> Status {
        self.bytes[dir.index()].extend(std::iter::repeat_n(b'?', len as usize));
        Status::Continue
    }
    fn end(&mut self, cx: &mut Ctx<'_>) {
        let c = String::from_utf8_lossy(&self.bytes[0]).into_owned();
        let s = String::from_utf8_lossy(&self.bytes[1]).into_owned();
        if let Ok(mut l) = self.log.lock() {
            l.push(format!("{c}|{s}"));
        }
        cx.emit(Record::Rdp(Box::new(RdpRecord {
            cookie: Some(c),
            routing_token: Some(s),
            ..RdpRecord::default()
        })));
    }
}

struct Factory {
    log: Arc<Mutex<Vec<String>>>,
    done_after: Option<usize>,
}

impl AnalyzerFactory for Factory {
    fn new_flow(&self, _server_port: u16) -> Box<dyn Analyzer> {
        Box::new(Recorder {
            log: self.log.clone(),
            bytes: [Vec::new(), Vec::new()],
            done_after: self.done_after,
        })
    }
}

fn table(
    cfg: FlowConfig,
    done_after: Option<usize>,
) -> (FlowTable<Factory>, Arc<Mutex<Vec<String>>>) {
    let log = Arc::new(Mutex::new(Vec::new()));
    (
        FlowTable::new(
            cfg,
            Factory {
                log: log.clone(),
                done_after,
            },
        ),
        log,
    )
}

fn seg(
    ts: i64,
    from_client: bool,
    seq: u32,
    ack: u32,
    flags: u8,
    payload: &'static [u8],
) -> TcpSegment<'static> {
    let c: IpAddr = [10, 0, 0, 1].into();
    let s: IpAddr = [10, 0, 0, 2].into();
    let (src, dst, sport, dport) = if from_client {
        (c, s, 50000, 445)
    } else {
        (s, c, 445, 50000)
    };
    TcpSegment {
        ts_us: ts,
        src,
        dst,
        sport,
        dport,
        seq,
        ack,
        flags,
        window: 100,
        fast_open: false,
        vlans: Vlans::default(),
        iface: None,
        checksum: Default::default(),
        payload,
    }
}

const S: u8 = tcp_flags::SYN;
const A: u8 = tcp_flags::ACK;
const F: u8 = tcp_flags::FIN;
const P: u8 = tcp_flags::PSH | tcp_flags::ACK;

fn run(t: &mut FlowTable<Factory>, segs: &[TcpSegment<'_>]) -> Vec<FlowRecord> {
    let mut out = Vec::new();
    for s in segs {
        t.packet(s, &mut |r| out.push(r));
    }
    out
}

fn cookie(r: &FlowRecord) -> (String, String) {
    match &r.record {
        Record::Rdp(x) => (
            x.cookie.clone().unwrap_or_default(),
            x.routing_token.clone().unwrap_or_default(),
        ),
        _ => Default::default(),
    }
}

#[test]
fn full_connection_both_directions_and_close() {
    let (mut t, _) = table(FlowConfig::default(), None);
    let out = run(
        &mut t,
        &[
            seg(1, true, 100, 0, S, b""),
            seg(2, false, 900, 101, S | A, b""),
            seg(3, true, 101, 901, A, b""),
            seg(4, true, 101, 901, P, b"hello"),
            seg(5, false, 901, 106, P, b"world"),
            seg(6, true, 106, 906, F | A, b""),
            seg(7, false, 906, 107, F | A, b""),
        ],
    );
    assert_eq!(out.len(), 1);
    assert_eq!(cookie(&out[0]), ("hello".into(), "world".into()));
    let f = &out[0].flow;
    assert_eq!(
        (f.src_ip.to_string(), f.src_port, f.dest_port),
        ("10.0.0.1".into(), 50000, 445)
    );
    assert_eq!(out[0].ts_us, 7);
    assert_eq!(t.stats.closed, 1);
    // A late ACK does not open a new flow's analyzer output.
    let late = run(&mut t, &[seg(8, true, 107, 907, A, b"")]);
    assert!(late.is_empty());
    assert_eq!(t.stats.flows, 1);
}

#[test]
fn roles_without_syn_follow_server_ports_and_syn_ack() {
    // First packet from the server port: the other side is the client.
    let (mut t, _) = table(FlowConfig::default(), None);
    run(
        &mut t,
        &[
            seg(1, false, 900, 101, P, b"srv"),
            seg(2, true, 101, 903, P, b"cli"),
        ],
    );
    let mut out = Vec::new();
    t.finish(&mut |r| out.push(r));
    assert_eq!(out[0].flow.src_port, 50000);
    assert_eq!(cookie(&out[0]), ("cli".into(), "srv".into()));
    assert_eq!(t.stats.midstream, 1);

    let (mut t, _) = table(FlowConfig::default(), None);
    run(
        &mut t,
        &[
            seg(1, false, 900, 101, S | A, b""),
            seg(2, true, 101, 901, P, b"x"),
        ],
    );
    let mut out = Vec::new();
    t.finish(&mut |r| out.push(r));
    assert_eq!(out[0].flow.src_port, 50000);
}

#[test]
fn idle_flows_time_out_in_packet_time() {
    let cfg = FlowConfig {
        idle_timeout_us: 10_000_000,
        ..FlowConfig::default()
    };
    let (mut t, _) = table(cfg, None);
    run(
        &mut t,
        &[
            seg(0, true, 100, 0, S, b""),
            seg(1, true, 101, 0, P, b"abc"),
        ],
    );
    // Another flow's packet 11 s later expires the first one.
    let mut other = seg(11_000_001, true, 5, 0, S, b"");
    other.sport = 50001;
    let out = run(&mut t, &[other]);
    assert_eq!(out.len(), 1);
    assert_eq!(cookie(&out[0]).0, "abc");
    assert_eq!(out[0].ts_us, 1);
    assert_eq!(t.stats.timed_out, 1);
    // The other's lone SYN waits apart, in the SYN cache.
    assert_eq!(t.len(), 0);
    assert_eq!((t.stats.syns.held, t.stats.syns.answered), (2, 1));
}

#[test]
fn a_full_table_evicts_the_idle_most_and_counts() {
    let cfg = FlowConfig {
        max_flows: 16,
        ..FlowConfig::default()
    };
    let (mut t, log) = table(cfg, None);
    for i in 0..40u16 {
        let mut s = seg(i64::from(i), true, 1, 0, S, b"");
        s.sport = 1000 + i;
        let mut d = seg(i64::from(i), true, 2, 0, P, b"x");
        d.sport = 1000 + i;
        run(&mut t, &[s, d]);
    }
    assert!(t.len() <= 16);
    assert_eq!(t.stats.evicted, 24);
    assert_eq!(log.lock().map(|l| l.len()).unwrap_or(0), 24);
}

#[test]
fn done_analyzer_bypasses_the_flow_and_frees_held_bytes() {
    let (mut t, log) = table(FlowConfig::default(), Some(3));
    run(
        &mut t,
        &[
            seg(1, true, 100, 0, S, b""),
            seg(2, true, 110, 0, P, b"later"),
            seg(3, true, 101, 0, P, b"abc"),
            seg(4, true, 200, 0, P, b"ignored"),
        ],
    );
    assert_eq!(t.held_bytes(), 0);
    assert_eq!(t.stats.bypassed, 1);
    let mut out = Vec::new();
    t.finish(&mut |r| out.push(r));
    // The analyzer said it was done: it is not called again.
    assert!(out.is_empty());
    assert!(log.lock().map(|l| l.is_empty()).unwrap_or(false));
}

#[test]
fn half_open_flows_get_no_analyzer() {
    let (mut t, log) = table(FlowConfig::default(), None);
    run(
        &mut t,
        &[
            seg(1, true, 100, 0, S, b""),
            seg(2, false, 900, 101, S | A, b""),
        ],
    );
    let mut out = Vec::new();
    t.finish(&mut |r| out.push(r));
    assert!(out.is_empty());
    assert!(log.lock().map(|l| l.is_empty()).unwrap_or(false));
}

#[test]
fn syn_on_closed_flow_starts_a_new_connection() {
    let (mut t, _) = table(FlowConfig::default(), None);
    let out = run(
        &mut t,
        &[
            seg(1, true, 100, 0, S, b""),
            seg(2, true, 101, 0, P, b"one"),
            seg(3, true, 104, 0, tcp_flags::RST, b""),
            seg(4, true, 5000, 0, S, b""),
            seg(5, true, 5001, 0, P, b"two"),
        ],
    );
    assert_eq!(out.len(), 1);
    let mut rest = Vec::new();
    t.finish(&mut |r| rest.push(r));
    assert_eq!(cookie(&rest[0]).0, "two");
    assert_ne!(out[0].flow.flow_id, rest[0].flow.flow_id);
    assert_eq!(t.stats.flows, 2);
    let _ = NtlmRecord::default();
}

#[test]
fn shard_hash_is_symmetric_matches_the_key_and_spreads_flows() {
    let v4 = |s: &str| -> IpAddr {
        s.parse()
            .unwrap_or(IpAddr::V4(std::net::Ipv4Addr::UNSPECIFIED))
    };
    let mut vlans = Vlans::default();
    vlans.push(100);
    let mut shards = [0u32; 4];
    for i in 0..10_000u32 {
        let c = (
            v4(&format!("10.0.{}.{}", i / 250, i % 250)),
            40_000 + (i % 1000) as u16,
        );
        let s = (v4("192.0.2.7"), 445);
        let h = shard_hash(c, s, &Vlans::default());
        assert_eq!(h, shard_hash(s, c, &Vlans::default()));
        let seg = TcpSegment {
            ts_us: 0,
            src: c.0,
            dst: s.0,
            sport: c.1,
            dport: s.1,
            seq: 0,
            ack: 0,
            flags: 0,
            window: 0,
            fast_open: false,
            vlans: Vlans::default(),
            iface: None,
            checksum: Default::default(),
            payload: &[],
        };
        assert_eq!(h, FlowKey::of(&seg).shard_hash());
        assert_ne!(h, shard_hash(c, s, &vlans), "VLANs take part");
        shards[(h % 4) as usize] += 1;
    }
    // 2,500 each when even; a few percent either way.
    assert!(
        shards.iter().all(|&n| (2_300..=2_700).contains(&n)),
        "{shards:?}"
    );
    let v6 = |s: &str| -> IpAddr {
        s.parse()
            .unwrap_or(IpAddr::V6(std::net::Ipv6Addr::UNSPECIFIED))
    };
    let a = (v6("2001:db8::1"), 50_000);
    let b = (v6("2001:db8::2"), 3389);
    assert_eq!(shard_hash(a, b, &vlans), shard_hash(b, a, &vlans));
    assert_ne!(
        shard_hash(a, b, &vlans),
        shard_hash((v6("2001:db8::1"), 50_001), b, &vlans)
    );
}

/// murmur3's finaliser undone: multiplications by the inverses of its
/// odd constants (mod 2^64); `x ^= x >> 33` undoes itself.
fn unmix64(mut k: u64) -> u64 {
    k ^= k >> 33;
    k = k.wrapping_mul(0x9cb4_b2f8_1293_37db);
    k ^= k >> 33;
    k = k.wrapping_mul(0x4f74_430c_22a5_4005);
    k ^ (k >> 33)
}

/// Unkeyed, an attacker who picks the low 64 bits of an IPv6 address can
/// give a connection of theirs the shard hash of someone else's to the
/// same server (sharing its bypass mark: the capture thread would stop
/// copying the victim's payload). The process's key leaves them no way.
#[test]
fn an_attacker_cannot_take_another_connections_shard_hash() {
    for x in [0, 1, 0xdead_beef, u64::MAX] {
        assert_eq!(unmix64(fmix64(x)), x);
    }
    let v6 =
        |s: &str| -> std::net::Ipv6Addr { s.parse().unwrap_or(std::net::Ipv6Addr::UNSPECIFIED) };
    let victim = (IpAddr::V6(v6("2001:db8:1::10")), 50_000);
    let server = (IpAddr::V6(v6("2001:db8:2::5")), 445);
    let vlans = Vlans::default();
    // The attacker's /64 and port; the interface identifier is solved for.
    let (prefix, port) = (u128::from(v6("2001:db8:666::")), 40_000u16);
    let forge = |key: &[u64; 2]| {
        let target = endpoint_hash(key, victim.0, victim.1);
        let high = fmix64(((prefix >> 64) as u64) ^ (u64::from(port) << 48) ^ key[1]);
        let low = unmix64(target) ^ key[0] ^ high;
        let ip = std::net::Ipv6Addr::from(prefix | u128::from(low));
        (IpAddr::V6(ip), port)
    };
    // Knowing the key (here: none), the forgery works...
    let none = [0u64; 2];
    let forged = forge(&none);
    assert_ne!(forged, victim);
    assert_eq!(
        keyed_shard_hash(&none, forged, server, &vlans),
        keyed_shard_hash(&none, victim, server, &vlans)
    );
    // ...and against the process's key, whatever the attacker assumes of
    // it, it does not.
    for guess in [none, [1, 2], [u64::MAX, 0]] {
        assert_ne!(
            shard_hash(forge(&guess), server, &vlans),
            shard_hash(victim, server, &vlans)
        );
    }
}

#[test]
fn only_an_rst_at_the_exact_next_sequence_number_ends_the_analysis() {
    let (mut t, _) = table(FlowConfig::default(), None);
    let out = run(
        &mut t,
        &[
            seg(1, true, 100, 0, S, b""),
            seg(2, false, 900, 101, S | A, b""),
            seg(3, true, 101, 901, P | A, b"one"),
            // Blind RSTs: in the window but not at 104, far off, and one
            // from the server side that is not at its next number either.
            seg(4, true, 110, 0, tcp_flags::RST, b""),
            seg(5, true, 4_000_000, 0, tcp_flags::RST, b""),
            seg(6, false, 950, 0, tcp_flags::RST, b""),
            seg(7, true, 104, 901, P | A, b"two"),
        ],
    );
    assert!(out.is_empty());
    assert_eq!(t.stats.rst_ignored, 3);
    // The RST an endpoint takes: the flow ends, the analyzer has seen all.
    let out = run(&mut t, &[seg(8, true, 107, 0, tcp_flags::RST, b"")]);
    assert_eq!(out.len(), 1);
    assert_eq!(cookie(&out[0]).0, "onetwo");
    assert_eq!((t.stats.rst_ignored, t.stats.closed), (3, 1));
}

#[test]
fn an_ack_is_judged_by_what_its_peer_sent() {
    let mut s = Sent::default();
    // Nothing known before the SYN: every ACK passes (midstream).
    assert!(s.acknowledged(12345));
    s.record(1000, 1, true);
    assert!(s.acknowledged(1001), "the SYN's own ACK");
    assert!(!s.acknowledged(1000), "before the first byte");
    assert!(!s.acknowledged(1000 + 0x4000_0000), "a guess");
    assert!(s.acknowledged(1001 + ACK_SLACK), "what the capture missed");
    assert!(!s.acknowledged(1002 + ACK_SLACK));
    s.record(1001, 500, false);
    assert!(s.acknowledged(1501));
    // A retransmission does not move it back; a later SYN does not reset it.
    s.record(1001, 100, false);
    s.record(7, 1, true);
    assert_eq!((s.isn, s.nxt), (Some(1000), 1501));
    // Across the wrap of sequence space.
    let mut w = Sent::default();
    w.record(u32::MAX - 10, 1, true);
    w.record(u32::MAX - 9, 100, false);
    assert_eq!(w.nxt, 90);
    assert!(w.acknowledged(90) && w.acknowledged(u32::MAX - 9) && w.acknowledged(3));
    assert!(!w.acknowledged(u32::MAX - 10));
    // Long connections: an ACK may lag by up to ACK_HISTORY.
    let mut l = Sent::default();
    l.record(0, 1, true);
    l.record(1, 0x7000_0000, false);
    assert!(l.acknowledged(0x7000_0001 - ACK_HISTORY));
    assert!(!l.acknowledged(0x7000_0000 - ACK_HISTORY));
}

/// The endpoints of `seg`'s connection, client first.
fn ends() -> ((IpAddr, u16), (IpAddr, u16)) {
    (([10, 0, 0, 1].into(), 50000), ([10, 0, 0, 2].into(), 445))
}

#[test]
fn a_held_syn_opens_its_connection_when_answered() {
    let (mut t, _) = table(FlowConfig::default(), None);
    // The SYN and its retransmission wait apart from the table.
    run(
        &mut t,
        &[seg(1, true, 100, 0, S, b""), seg(7, true, 100, 0, S, b"")],
    );
    assert_eq!((t.len(), t.stats.flows), (0, 0));
    let out = run(
        &mut t,
        &[
            seg(9, false, 900, 101, S | A, b""),
            seg(10, true, 101, 901, A, b""),
            seg(11, true, 101, 901, P, b"abc"),
            seg(12, false, 901, 104, P, b"xyz"),
            seg(13, true, 104, 904, F | A, b""),
            seg(14, false, 904, 105, F | A, b""),
        ],
    );
    assert_eq!(out.len(), 1);
    assert_eq!(cookie(&out[0]), ("abc".into(), "xyz".into()));
    let f = &out[0].flow;
    // As if the table had held the SYN: the client is its sender, the
    // flow is named from its time, the handshake's numbers were checked.
    let (client, server) = ends();
    assert_eq!((f.src_ip, f.src_port), client);
    assert_eq!(f.flow_id, flow_id(client, server, Vlans::default(), 1));
    assert!(f.handshake);
    assert_eq!((t.stats.flows, t.stats.midstream), (1, 0));
    assert_eq!(
        t.stats.syns,
        SynStats {
            held: 1,
            answered: 1,
            overwritten: 0,
            timed_out: 0,
            waiting: 0
        }
    );
}

#[test]
fn a_syn_flood_stays_out_of_the_table_and_a_forgotten_syn_is_picked_up_at_its_answer() {
    let cfg = FlowConfig {
        max_flows: 64,
        syn_slots: 1,
        ..FlowConfig::default()
    };
    let (mut t, _) = table(cfg, None);
    run(&mut t, &[seg(1, true, 100, 0, S, b"")]);
    // 20,000 SYNs of other connections into 1,024 slots: the first SYN's
    // slot is taken (but for a chance of e^-19.5).
    for i in 0..20_000u32 {
        let mut s = seg(2 + i64::from(i), true, i, 0, S, b"");
        s.src = IpAddr::from([100, 64, (i >> 8) as u8, i as u8]);
        run(&mut t, &[s]);
    }
    assert_eq!((t.len(), t.stats.flows, t.stats.evicted), (0, 0, 0));
    assert_eq!(t.stats.syns.held, 20_001);
    let syns = t.stats.syns;
    assert_eq!(syns.overwritten + syns.waiting, 20_001);
    assert_eq!(syns.waiting, t.syns.len() as u64);
    assert!(t.syns.footprint() < 1 << 20);
    let out = run(
        &mut t,
        &[
            seg(30_000, false, 900, 101, S | A, b""),
            seg(30_001, true, 101, 901, P, b"abc"),
            seg(30_002, false, 901, 104, P, b"xyz"),
            seg(30_003, true, 104, 904, tcp_flags::RST, b""),
        ],
    );
    // Picked up at its SYN-ACK: the roles right, the bytes whole, the
    // handshake not vouched for.
    assert_eq!(out.len(), 1);
    assert_eq!(cookie(&out[0]), ("abc".into(), "xyz".into()));
    assert_eq!(out[0].flow.src_port, 50000);
    assert!(!out[0].flow.handshake);
    assert_eq!((t.stats.flows, t.stats.syns.answered), (1, 0));
}

#[test]
fn an_unanswered_syn_times_out_as_a_half_open_connection_did() {
    let cfg = FlowConfig {
        half_open_timeout_us: 5_000_000,
        ..FlowConfig::default()
    };
    let (mut t, _) = table(cfg, None);
    run(&mut t, &[seg(0, true, 100, 0, S, b"")]);
    let mut out = Vec::new();
    t.expire(5_000_000, &mut |r| out.push(r));
    assert_eq!(t.stats.syns.timed_out, 0);
    t.expire(5_000_001, &mut |r| out.push(r));
    assert_eq!(t.stats.syns.timed_out, 1);
    // Its answer now opens a connection picked up at the SYN-ACK.
    run(
        &mut t,
        &[
            seg(5_000_002, false, 900, 101, S | A, b""),
            seg(5_000_003, true, 101, 901, P, b"abc"),
        ],
    );
    assert_eq!((t.stats.flows, t.stats.syns.answered), (1, 0));
    assert!(out.is_empty());
}

/// A flow id is SipHash of the connection's ends, VLANs and first time,
/// gathered into one call: the same number as hashing them field by field
/// (the ids stay what they were), for both address families, tagged or
/// not, and past the gathering buffer.
#[test]
fn flow_ids_are_the_field_by_field_hash() {
    let v4 = |a: u8, port| (IpAddr::from([10, 0, 0, a]), port);
    let v6 = |a: u16, port| (IpAddr::from([0xfe80, 0, 0, 0, 0, 0, 0, a]), port);
    let mut tagged = Vlans::default();
    tagged.push(100);
    tagged.push(4094);
    let cases = [
        (v4(1, 50000), v4(2, 3389), Vlans::default(), 1),
        (v4(9, 1), v4(1, 445), tagged, -7),
        (
            v6(1, 49152),
            v6(2, 3389),
            Vlans::default(),
            1_767_225_600_000_000,
        ),
        (v6(3, 1), v4(4, 88), tagged, i64::MAX),
    ];
    for (client, server, vlans, first_us) in cases {
        let field_by_field = FIXED_HASHER.hash_one((client, server, vlans, first_us));
        assert_eq!(
            flow_id(client, server, vlans, first_us),
            field_by_field & ((1 << 53) - 1)
        );
    }
    let long: Vec<u16> = (0..200).collect();
    let mut gathered = Gathered::new();
    long.hash(&mut gathered);
    "and a name".hash(&mut gathered);
    assert_eq!(
        gathered.finish(),
        FIXED_HASHER.hash_one((&long, "and a name"))
    );
}
