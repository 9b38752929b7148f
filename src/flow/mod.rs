//! Flow table and TCP reassembly: TCP segments in, in-order bytes to each
//! flow's analyzer, records out (wrapped in their flow's envelope).
//!
//! Flows are keyed by the canonical endpoint pair plus VLAN ids. The client
//! is the sender of the SYN; for a flow picked up midstream it is the sender
//! of the first packet seen, unless that packet came *from* a well-known
//! server port and went to one that is not (then the roles are swapped).
//! Analyzers may correct the guess from content for midstream flows.
//!
//! Memory is bounded: at most [`FlowConfig::max_flows`] flows (the idle-most
//! are evicted when full), a depth per direction after which a flow's bytes
//! are no longer reassembled, caps on out-of-order and kept bytes per stream
//! and over the table, and one cap ([`FlowConfig::memcap`]) on everything
//! connections hold: out-of-order bytes, kept bytes and analyzer buffers.
//! Past it, the connections holding the most have their analysis ended
//! (they report what they saw) until a quarter of the cap is free. Timeouts run on packet time, so a replay behaves as a
//! live capture does.

pub mod datagram;
pub mod reassembly;
pub mod syn_cache;

use std::collections::HashMap;
use std::hash::{BuildHasher, Hash, Hasher};
use std::net::IpAddr;

use crate::analyzers::{Analyzer, AnalyzerFactory, Anomalies, Ctx, Dir, Record, Status};
use crate::decode::{tcp_flags, Checksum, TcpSegment, Transport, Vlans};
use crate::events::{FlowInfo, Overlap};

pub use datagram::{DatagramConfig, DatagramStats, DatagramTable};
pub use reassembly::{Budget, Chunk, Stream, StreamLimits, StreamStats};
pub use syn_cache::SynStats;
use syn_cache::{HeldSyn, Offer, SynCache};

/// Default bounds and timeouts of the TCP flow table (the CLI's defaults).
pub mod defaults {
    /// Connections tracked at once.
    pub const MAX_FLOWS: usize = 262_144;
    /// Out-of-order bytes held over all connections.
    pub const MAX_OOO_TOTAL: usize = 64 << 20;
    /// Seconds without packets after which an established connection ends.
    pub const IDLE_TIMEOUT_SECS: u64 = 300;
    /// The same for a connection that saw only a SYN.
    pub const HALF_OPEN_TIMEOUT_SECS: u64 = 30;
    /// How long a closed connection is kept to absorb late packets.
    pub const CLOSED_TIMEOUT_SECS: u64 = 10;
    /// Bytes reassembled per direction of a connection.
    pub const DEPTH: u32 = super::reassembly::DEFAULT_DEPTH;
    /// The deepest `--depth` accepted.
    pub const MAX_DEPTH: u32 = crate::analyzers::MAX_DEPTH;
    /// Memory all connections may hold in buffers (`--memcap`, MiB).
    pub const MEMCAP_MIB: usize = 512;
}

#[derive(Debug, Clone, Copy)]
pub struct FlowConfig {
    pub limits: StreamLimits,
    pub max_flows: usize,
    /// Out-of-order bytes held over all flows (and, apart, bytes kept
    /// until acknowledged).
    pub max_ooo_total: usize,
    /// Bytes all connections may hold in buffers (out of order, kept,
    /// analyzers').
    pub memcap: usize,
    /// Packet-time µs after which an established flow without packets ends.
    pub idle_timeout_us: i64,
    /// The same for flows that saw only a SYN (half-open).
    pub half_open_timeout_us: i64,
    /// How long a closed flow (FIN both ways or RST) is kept to absorb
    /// late packets.
    pub closed_timeout_us: i64,
    /// Whether the table looks for timed-out flows by itself as packet time
    /// passes. The pipeline turns this off and calls [`FlowTable::expire`]
    /// at the same packet times for every worker, so that the output does
    /// not depend on how flows are spread over workers.
    pub self_expire: bool,
    /// Whether a data segment with a wrong checksum is taken once its
    /// receiver acknowledges it (`--checksums auto`).
    pub vouch_checksums: bool,
    /// Slots of the cache that holds lone SYNs until their connection goes
    /// on ([`syn_cache`]).
    pub syn_slots: usize,
}

impl Default for FlowConfig {
    fn default() -> Self {
        FlowConfig {
            limits: StreamLimits::default(),
            max_flows: defaults::MAX_FLOWS,
            max_ooo_total: defaults::MAX_OOO_TOTAL,
            memcap: defaults::MEMCAP_MIB << 20,
            idle_timeout_us: defaults::IDLE_TIMEOUT_SECS as i64 * 1_000_000,
            half_open_timeout_us: defaults::HALF_OPEN_TIMEOUT_SECS as i64 * 1_000_000,
            closed_timeout_us: defaults::CLOSED_TIMEOUT_SECS as i64 * 1_000_000,
            vouch_checksums: true,
            self_expire: true,
            syn_slots: syn_cache::DEFAULT_SLOTS,
        }
    }
}

#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct FlowStats {
    pub flows: u64,
    pub midstream: u64,
    pub bypassed: u64,
    pub timed_out: u64,
    pub evicted: u64,
    pub closed: u64,
    /// RSTs an endpoint would ignore (not at the exact next sequence
    /// number, RFC 5961), so they did not end the analysis.
    pub rst_ignored: u64,
    /// Segments dropped for an acknowledgment of bytes the peer never
    /// sent (RFC 5961 5.2: the receiver drops them): a blind sender's.
    pub bad_ack: u64,
    /// Segments dropped for a checksum their receiver would reject.
    pub bad_checksum: u64,
    /// Connections that lost segments so, counted as they end (one whose
    /// every such segment was vouched for lost none); a segment for no
    /// connection in the table counts as one.
    pub bad_checksum_flows: u64,
    /// Of those, segments taken after all: the receiver acknowledged their
    /// bytes and no segment with a correct checksum had brought them (the
    /// checksum broke after the receiver took it, in the capture).
    pub vouched_checksum: u64,
    /// Segments taken with a checksum left for the sender's card to fill.
    pub unfilled_checksum: u64,
    /// Segments without ACK after the SYN (an endpoint drops them), and SYN
    /// payload without a Fast Open cookie (not delivered).
    pub not_accepted: u64,
    /// Other copies of conflicting overlaps analysed, and those left out
    /// past [`MAX_SHADOWS`] per connection.
    pub overlap_copies_analysed: u64,
    pub overlap_copies_skipped: u64,
    /// Connections whose analysis was ended to stay under the memory cap.
    pub memcap_ended: u64,
    pub streams: StreamStats,
    /// Lone SYNs, held apart from the connections ([`syn_cache`]).
    pub syns: SynStats,
}

impl FlowStats {
    pub fn add(&mut self, o: &FlowStats) {
        self.flows += o.flows;
        self.midstream += o.midstream;
        self.bypassed += o.bypassed;
        self.timed_out += o.timed_out;
        self.evicted += o.evicted;
        self.closed += o.closed;
        self.rst_ignored += o.rst_ignored;
        self.bad_ack += o.bad_ack;
        self.bad_checksum += o.bad_checksum;
        self.bad_checksum_flows += o.bad_checksum_flows;
        self.vouched_checksum += o.vouched_checksum;
        self.unfilled_checksum += o.unfilled_checksum;
        self.not_accepted += o.not_accepted;
        self.overlap_copies_analysed += o.overlap_copies_analysed;
        self.overlap_copies_skipped += o.overlap_copies_skipped;
        self.memcap_ended += o.memcap_ended;
        self.streams.add(&o.streams);
        self.syns.add(&o.syns);
    }

    /// The `flows` object of `stats` (`active` connections now).
    pub fn to_json(&self, active: usize) -> serde_json::Value {
        serde_json::json!({
            "total": self.flows, "active": active, "midstream": self.midstream,
            "bypassed": self.bypassed, "timed_out": self.timed_out,
            "evicted": self.evicted, "closed": self.closed, "rst_ignored": self.rst_ignored, "bad_ack": self.bad_ack,
            "bad_checksum": self.bad_checksum, "unfilled_checksum": self.unfilled_checksum,
            "not_accepted": self.not_accepted,
            "overlap_copies_analysed": self.overlap_copies_analysed,
            "overlap_copies_skipped": self.overlap_copies_skipped,
            "memcap_ended": self.memcap_ended,
            "syn_cache": self.syns.to_json(),
        })
    }
}

/// A hasher with fixed keys: the same flow gets the same shard and id in
/// every run.
const FIXED_HASHER: std::hash::BuildHasherDefault<std::collections::hash_map::DefaultHasher> =
    std::hash::BuildHasherDefault::new();

/// What a key's `Hash` writes, gathered and handed to SipHash in one
/// call: the same hash (SipHash reads a stream of bytes however it is
/// cut), without its cost per call (a flow id took about 700
/// instructions in fifteen calls).
struct Gathered {
    sip: std::collections::hash_map::DefaultHasher,
    buf: [u8; 96],
    len: usize,
}

impl Gathered {
    fn new() -> Gathered {
        Gathered {
            sip: FIXED_HASHER.build_hasher(),
            buf: [0; 96],
            len: 0,
        }
    }

    fn gathered(&self) -> &[u8] {
        self.buf.get(..self.len).unwrap_or_default()
    }
}

impl std::hash::Hasher for Gathered {
    #[inline]
    fn write(&mut self, bytes: &[u8]) {
        match self.buf.get_mut(self.len..self.len + bytes.len()) {
            Some(room) => {
                room.copy_from_slice(bytes);
                self.len += bytes.len();
            }
            None => {
                self.sip.write(self.buf.get(..self.len).unwrap_or_default());
                self.sip.write(bytes);
                self.len = 0;
            }
        }
    }

    fn finish(&self) -> u64 {
        let mut sip = self.sip.clone();
        sip.write(self.gathered());
        sip.finish()
    }
}

/// Canonical key: the lower endpoint first, so both directions meet.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct FlowKey {
    lo: (IpAddr, u16),
    hi: (IpAddr, u16),
    vlans: Vlans,
}

impl FlowKey {
    /// The key of the endpoints `a` and `b`, in either order.
    pub fn new(a: (IpAddr, u16), b: (IpAddr, u16), vlans: Vlans) -> FlowKey {
        let (lo, hi) = if a <= b { (a, b) } else { (b, a) };
        FlowKey { lo, hi, vlans }
    }

    pub fn of(seg: &TcpSegment<'_>) -> FlowKey {
        FlowKey::new((seg.src, seg.sport), (seg.dst, seg.dport), seg.vlans)
    }

    /// A hash that is the same for both directions, keyed per process; the
    /// pipeline shards flows over workers with it.
    pub fn shard_hash(&self) -> u64 {
        shard_hash(self.lo, self.hi, &self.vlans)
    }
}

/// Follows the three-way handshake: the server's SYN-ACK must acknowledge
/// exactly the client's SYN, and the client's next ACK exactly the
/// server's (RFC 9293 3.5): numbers a blind spoofer cannot produce.
fn note_handshake(flow: &mut Flow, side: u8, syn: bool, ack: u32) {
    let next = |s: &Sent| s.isn.map(|isn| isn.wrapping_add(1));
    match (side, syn) {
        (2, true) if next(&flow.sent[0]) == Some(ack) => flow.handshake |= HANDSHAKE_SYN_ACK,
        (1, false)
            if flow.handshake & HANDSHAKE_SYN_ACK != 0 && next(&flow.sent[1]) == Some(ack) =>
        {
            flow.handshake |= HANDSHAKE_ACK
        }
        _ => {}
    }
}

/// A flow for a segment of a connection not in the table.
fn new_flow(stats: &mut FlowStats, seg: &TcpSegment<'_>, syn: bool, ack: bool) -> Flow {
    let src = (seg.src, seg.sport);
    let dst = (seg.dst, seg.dport);
    let midstream = !syn;
    // The SYN's sender is the client; a SYN-ACK's receiver is; without
    // either, a packet from a server port to another port comes from
    // the server.
    let server_sent = if syn {
        ack
    } else {
        is_server_port(seg.sport) && !is_server_port(seg.dport)
    };
    let (client, server) = if server_sent { (dst, src) } else { (src, dst) };
    stats.flows += 1;
    if midstream {
        stats.midstream += 1;
    }
    Flow {
        id: flow_id(client, server, seg.vlans, seg.ts_us),
        client,
        server,
        vlans: seg.vlans,
        iface: seg.iface,
        last_us: seg.ts_us,
        midstream,
        reversed: false,
        established: !syn || ack,
        state: State::Open,
        fins: 0,
        dirs_seen: 0,
        handshake: 0,
        checked_sides: 0,
        checksum_drops: 0,
        shadows: 0,
        footprint: 0,
        streams: [Stream::default(), Stream::default()],
        sent: [Sent::default(); 2],
        unverified: Vec::new(),
        app: App::NotYet,
    }
}

/// A flow's id: the same in every run, kept below 2^53 so that every JSON
/// reader holds it exactly.
fn flow_id(client: (IpAddr, u16), server: (IpAddr, u16), vlans: Vlans, first_us: i64) -> u64 {
    let mut h = Gathered::new();
    (client, server, vlans, first_us).hash(&mut h);
    h.finish() & ((1 << 53) - 1)
}

/// murmur3's 64-bit finaliser: every input bit moves every output bit.
fn fmix64(mut k: u64) -> u64 {
    k ^= k >> 33;
    k = k.wrapping_mul(0xff51_afd7_ed55_8ccd);
    k ^= k >> 33;
    k = k.wrapping_mul(0xc4ce_b9fe_1a85_ec53);
    k ^ (k >> 33)
}

/// The shard hash's secret, drawn once per process (as the kernel keys
/// its flow hash). fmix64 can be inverted: unkeyed, an attacker who picks
/// an IPv6 interface identifier can give a connection of theirs the hash
/// of someone else's connection to the same server, and so share its
/// bypass mark (the capture thread then stops copying the victim's
/// payload: a name hidden) or pile connections on one worker.
static SHARD_KEY: std::sync::LazyLock<[u64; 2]> = std::sync::LazyLock::new(|| {
    let random = std::hash::RandomState::new();
    [random.hash_one(1u8), random.hash_one(2u8)]
});

fn endpoint_hash(key: &[u64; 2], ip: IpAddr, port: u16) -> u64 {
    match ip {
        IpAddr::V4(a) => fmix64(((u64::from(u32::from(a)) << 16) | u64::from(port)) ^ key[0]),
        IpAddr::V6(a) => {
            let v = u128::from(a);
            let high = fmix64(((v >> 64) as u64) ^ (u64::from(port) << 48) ^ key[1]);
            fmix64((v as u64) ^ key[0] ^ high)
        }
    }
}

/// [`FlowKey::shard_hash`] straight from a segment's endpoints, in either
/// order: the capture thread computes it for every packet, so it costs a
/// few multiplications (no key to build, no SipHash). The endpoints are
/// combined by addition, which makes it symmetric without comparing them.
pub fn shard_hash(a: (IpAddr, u16), b: (IpAddr, u16), vlans: &Vlans) -> u64 {
    keyed_shard_hash(&SHARD_KEY, a, b, vlans)
}

fn keyed_shard_hash(key: &[u64; 2], a: (IpAddr, u16), b: (IpAddr, u16), vlans: &Vlans) -> u64 {
    let mut v = vlans.as_slice().len() as u64;
    for id in vlans.as_slice() {
        v = (v << 16) | u64::from(*id);
    }
    fmix64(endpoint_hash(key, a.0, a.1).wrapping_add(endpoint_hash(key, b.0, b.1)) ^ v)
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    Open,
    /// FIN both ways or RST: kept a little to absorb late packets.
    Closed,
}

struct Flow {
    id: u64,
    client: (IpAddr, u16),
    server: (IpAddr, u16),
    vlans: Vlans,
    /// The live interface of its first packet.
    iface: Option<u8>,
    last_us: i64,
    midstream: bool,
    /// Roles swapped by an analyzer after the fact (midstream flows).
    reversed: bool,
    /// Whether anything but a lone SYN was seen.
    established: bool,
    state: State,
    /// FINs seen, one bit per direction (for bypassed connections, whose
    /// streams no longer advance).
    fins: u8,
    /// Directions that sent packets, one bit each (client 1, server 2).
    dirs_seen: u8,
    /// The three-way handshake so far: [`HANDSHAKE_SYN_ACK`] once the
    /// server's SYN-ACK acknowledged the client's SYN, and
    /// [`HANDSHAKE_ACK`] once the client acknowledged the server's.
    handshake: u8,
    /// Directions that sent a segment with a correct checksum.
    checked_sides: u8,
    /// Its segments dropped for a wrong checksum, less those vouched for.
    checksum_drops: u32,
    /// Other copies of conflicting overlaps analysed so far.
    shadows: u8,
    /// Memory its analyzer buffers and its kept bytes occupied after its
    /// last packet (counted in [`Budget::flows`]).
    footprint: usize,
    streams: [Stream; 2],
    /// What each side sent (client, server), to judge the other's ACKs.
    sent: [Sent; 2],
    /// Segments with a wrong checksum, held until the receiver's ACK says
    /// whether it took them (at most [`MAX_UNVERIFIED`]).
    unverified: Vec<Unverified>,
    app: App,
}

/// A data segment with a wrong checksum, from `side` (client 0, server 1).
struct Unverified {
    side: usize,
    seq: u32,
    payload: Vec<u8>,
}

/// Segments with wrong checksums held per connection, and their bytes.
const MAX_UNVERIFIED: usize = 4;
const MAX_UNVERIFIED_BYTES: usize = 16 << 10;

/// How far past the highest sequence number seen from a side its peer may
/// acknowledge: bytes the capture missed (RFC 5961 5.2 bounds it by the
/// sender's window; the capture does not always see that).
const ACK_SLACK: u32 = 1 << 20;
/// How far back an acknowledgment may lag (a window's worth of old ACKs).
const ACK_HISTORY: u32 = 1 << 30;

/// [`Flow::handshake`]: the server's SYN-ACK acknowledged the client's SYN.
const HANDSHAKE_SYN_ACK: u8 = 1;
/// [`Flow::handshake`]: then the client acknowledged the server's SYN.
const HANDSHAKE_ACK: u8 = 2;
const HANDSHAKE_DONE: u8 = HANDSHAKE_SYN_ACK | HANDSHAKE_ACK;

/// What one side of a connection has sent, in sequence space, once its SYN
/// was seen: the receiver's SND.NXT, as the capture knows it.
#[derive(Debug, Default, Clone, Copy)]
struct Sent {
    isn: Option<u32>,
    /// One past the highest sequence number sent (its SYN and FIN count).
    nxt: u32,
}

impl Sent {
    /// A segment this side sent and its receiver took: `len` counts its
    /// payload, SYN and FIN.
    fn record(&mut self, seq: u32, len: u32, syn: bool) {
        if syn && self.isn.is_none() {
            self.isn = Some(seq);
            self.nxt = seq;
        }
        if self.isn.is_some() {
            let end = seq.wrapping_add(len);
            if (end.wrapping_sub(self.nxt) as i32) > 0 {
                self.nxt = end;
            }
        }
    }

    /// Whether an ACK of `ack` acknowledges only what this side sent
    /// (RFC 5961 5.2: between SND.UNA - MAX.SND.WND and SND.NXT). Without
    /// its SYN nothing is known, and every ACK passes (midstream rules).
    fn acknowledged(&self, ack: u32) -> bool {
        let Some(isn) = self.isn else {
            return true;
        };
        let first = isn.wrapping_add(1);
        let lo = if self.nxt.wrapping_sub(first) < ACK_HISTORY {
            first
        } else {
            self.nxt.wrapping_sub(ACK_HISTORY)
        };
        let hi = self.nxt.wrapping_add(ACK_SLACK);
        ack.wrapping_sub(lo) <= hi.wrapping_sub(lo)
    }
}

/// A flow's analyzer: created when the first payload arrives (a half-open
/// flow costs no analyzer), dropped when it has learned all it can.
enum App {
    NotYet,
    Running(Box<dyn Analyzer>),
    /// Bypassed: only the end of the connection is still tracked.
    Done,
}

impl Flow {
    fn info(&self) -> FlowInfo {
        let (c, s) = if self.reversed {
            (self.server, self.client)
        } else {
            (self.client, self.server)
        };
        FlowInfo {
            flow_id: self.id,
            transport: Transport::Tcp,
            src_ip: c.0,
            src_port: c.1,
            dest_ip: s.0,
            dest_port: s.1,
            vlans: self.vlans,
            iface: self.iface,
            two_way: self.dirs_seen == 3,
            handshake: self.handshake == HANDSHAKE_DONE,
            overlap: None,
        }
    }
}

/// Records handed out by the table, with the envelope of their flow.
#[derive(Debug, Clone, PartialEq)]
pub struct FlowRecord {
    pub ts_us: i64,
    pub flow: FlowInfo,
    pub record: Record,
}

/// Server ports that tell the roles apart when the SYN was not seen.
fn is_server_port(p: u16) -> bool {
    p < 1024
        || matches!(
            p,
            1433 | 3268 | 3269 | 3389 | 5985 | 5986 | 8080 | 8443 | 9389
        )
}

type FlowMap = HashMap<FlowKey, Box<Flow>, foldhash::quality::RandomState>;

pub struct FlowTable<F: AnalyzerFactory> {
    cfg: FlowConfig,
    factory: F,
    flows: FlowMap,
    budget: Budget,
    pub stats: FlowStats,
    /// Messages the analyzers could not parse, per protocol.
    pub anomalies: Anomalies,
    last_sweep_us: i64,
    records: Vec<Record>,
    /// Open connections bypassed since the last [`FlowTable::take_bypassed`].
    bypassed: Vec<FlowKey>,
    /// Bypassed connections that left the table since the last
    /// [`FlowTable::take_released`].
    released: Vec<FlowKey>,
    /// Lone SYNs of connections not (yet) in the table.
    syns: SynCache,
}

/// Other copies of conflicting overlaps analysed per connection: enough for
/// a decoy per message of a handshake, bounded against a flood of them.
pub const MAX_SHADOWS: u8 = 8;

/// How often (packet time) the table looks for timed-out flows.
const SWEEP_EVERY_US: i64 = 1_000_000;

impl<F: AnalyzerFactory> FlowTable<F> {
    pub fn new(cfg: FlowConfig, factory: F) -> Self {
        FlowTable {
            budget: Budget::new(cfg.max_ooo_total),
            cfg,
            factory,
            flows: HashMap::default(),
            stats: FlowStats::default(),
            anomalies: Anomalies::default(),
            last_sweep_us: i64::MIN,
            records: Vec::new(),
            bypassed: Vec::new(),
            released: Vec::new(),
            syns: SynCache::new(cfg.syn_slots),
        }
    }

    pub fn len(&self) -> usize {
        self.flows.len()
    }

    pub fn is_empty(&self) -> bool {
        self.flows.is_empty()
    }

    /// Out-of-order bytes held over all flows.
    pub fn held_bytes(&self) -> usize {
        self.budget.used
    }

    /// Processes one segment; records found are passed to `out`. The
    /// receiver's rules in their order: what it drops before it looks for
    /// the connection, the connection found or made, what it drops within
    /// the connection, the bytes it delivers, what the connection holds
    /// after.
    pub fn packet<O: FnMut(FlowRecord)>(&mut self, seg: &TcpSegment<'_>, out: &mut O) {
        self.maybe_sweep(seg.ts_us, out);
        let key = FlowKey::of(seg);
        if self.known(&key, seg, out) {
            return;
        }
        // Not in the table, or a new connection on the ports of a closed
        // one.
        let bypassed = self.flows.get(&key).map(|f| matches!(f.app, App::Done));
        let known = bypassed.is_some();
        let lone_syn = syn_cache::is_lone_syn(seg.flags);
        if !known && !lone_syn && !self.syns.is_empty() {
            // The connection went on: its SYN goes in first.
            if let Some(held) = self.syns.take(&key, &mut self.stats.syns) {
                self.enter_held(&key, held, out);
            }
        }
        let Some(taken) = self.admit(&key, seg, bypassed == Some(true)) else {
            return;
        };
        if !known && lone_syn && taken.payload.is_empty() {
            match self
                .syns
                .offer(&key, seg, taken.checked, &mut self.stats.syns)
            {
                Offer::Held => {
                    // Taken, as the table would count it.
                    if taken.checked.is_none() {
                        self.stats.unfilled_checksum += 1;
                    }
                    return;
                }
                Offer::Conflict(first) => self.enter_held(&key, first, out),
            }
        }
        self.enter(&key, seg, taken, out);
    }

    /// A segment of a connection in the table, with the one lookup that
    /// finds it; false (nothing done) when the connection is not there, or
    /// when the segment opens a new connection on a closed one's ports
    /// ([`FlowTable::make_way`]).
    fn known<O: FnMut(FlowRecord)>(
        &mut self,
        key: &FlowKey,
        seg: &TcpSegment<'_>,
        out: &mut O,
    ) -> bool {
        let (flows, mut work) = self.split();
        let Some(flow) = flows.get_mut(key) else {
            return false;
        };
        let opening = seg.flags & (tcp_flags::SYN | tcp_flags::ACK) == tcp_flags::SYN;
        if opening && flow.state == State::Closed {
            return false;
        }
        let checked = checksum_verdict(seg, matches!(flow.app, App::Done));
        let env = &mut work.env;
        if checked == Some(false) {
            drop_bad_checksum(env.stats, work.cfg, env.budget, Some(flow), seg);
            return true;
        }
        let Some(taken) = accepted(env.stats, seg, checked) else {
            return true;
        };
        if segment_into(flow, key, seg, taken, &mut work, out) {
            self.shed_if_over(seg.ts_us, out);
        }
        true
    }

    /// The table as its connections and what a segment's analysis uses
    /// besides its own connection.
    fn split(&mut self) -> (&mut FlowMap, Work<'_, F>) {
        let FlowTable {
            cfg,
            factory,
            flows,
            budget,
            stats,
            records,
            bypassed,
            anomalies,
            ..
        } = self;
        let env = Env {
            factory: &*factory,
            budget,
            stats,
            records,
            anomalies,
        };
        (flows, Work { cfg, env, bypassed })
    }

    fn shed_if_over<O: FnMut(FlowRecord)>(&mut self, now_us: i64, out: &mut O) {
        if self.budget.in_use() > self.cfg.memcap {
            self.shed(now_us, out);
        }
    }

    /// A held SYN goes into the table, as it would have when it came.
    fn enter_held<O: FnMut(FlowRecord)>(&mut self, key: &FlowKey, held: HeldSyn, out: &mut O) {
        let seg = held.segment();
        let taken = Taken {
            checked: held.checked,
            payload: &[],
            syn: true,
            ack: false,
            fin: false,
            rst: false,
        };
        self.enter(key, &seg, taken, out);
        if held.checked.is_none() {
            // Counted when it was held.
            self.stats.unfilled_checksum = self.stats.unfilled_checksum.saturating_sub(1);
        }
        if let Some(f) = self.flows.get_mut(key) {
            // Its retransmissions renewed it.
            f.last_us = f.last_us.max(held.last_us);
        }
    }

    /// A taken segment in its connection, found or made.
    fn enter<O: FnMut(FlowRecord)>(
        &mut self,
        key: &FlowKey,
        seg: &TcpSegment<'_>,
        taken: Taken<'_>,
        out: &mut O,
    ) {
        self.make_way(key, seg, taken.syn && !taken.ack, out);
        let (flows, mut work) = self.split();
        let flow = flows
            .entry(*key)
            .or_insert_with(|| Box::new(new_flow(work.env.stats, seg, taken.syn, taken.ack)));
        if segment_into(flow, key, seg, taken, &mut work, out) {
            self.shed_if_over(seg.ts_us, out);
        }
    }

    /// What the receiver takes of a segment before it looks for the
    /// connection; `None` when it drops it.
    fn admit<'p>(
        &mut self,
        key: &FlowKey,
        seg: &TcpSegment<'p>,
        bypassed: bool,
    ) -> Option<Taken<'p>> {
        let checked = checksum_verdict(seg, bypassed);
        if checked == Some(false) {
            let flow = self.flows.get_mut(key).map(|f| &mut **f);
            drop_bad_checksum(&mut self.stats, &self.cfg, &mut self.budget, flow, seg);
            return None;
        }
        accepted(&mut self.stats, seg, checked)
    }

    /// Room for the segment's connection: a new SYN (`opening`) on a
    /// closed flow is a new connection on reused ports; a full table makes
    /// room before a new flow goes in (the second lookup happens only
    /// then).
    fn make_way<O: FnMut(FlowRecord)>(
        &mut self,
        key: &FlowKey,
        seg: &TcpSegment<'_>,
        opening: bool,
        out: &mut O,
    ) {
        if opening
            && self
                .flows
                .get(key)
                .is_some_and(|f| f.state == State::Closed)
        {
            if let Some(f) = self.flows.remove(key) {
                self.end_flow(f, out);
            }
        }
        if self.flows.len() >= self.cfg.max_flows && !self.flows.contains_key(key) {
            self.make_room(seg.ts_us, out);
        }
    }

    /// Over the memory cap: the analysis of the connections holding the
    /// most ends (each reports what it saw, and is bypassed from then on)
    /// until a quarter of the cap is free. A handshake holds a few KiB, so
    /// connections that fill buffers go first, not the ones being watched.
    fn shed<O: FnMut(FlowRecord)>(&mut self, now_us: i64, out: &mut O) {
        let target = self.cfg.memcap / 4 * 3;
        let mut heavy: Vec<(usize, u64, FlowKey)> = self
            .flows
            .iter()
            .filter(|(_, f)| matches!(f.app, App::Running(_)))
            .map(|(k, f)| {
                let held: usize = f.streams.iter().map(Stream::held_bytes).sum();
                (f.footprint + held, f.id, *k)
            })
            .filter(|(bytes, ..)| *bytes > 0)
            .collect();
        // Largest first; the id breaks ties so runs agree.
        heavy.sort_unstable_by(|a, b| b.0.cmp(&a.0).then(a.1.cmp(&b.1)));
        let FlowTable {
            cfg,
            flows,
            budget,
            stats,
            records,
            anomalies,
            bypassed,
            ..
        } = self;
        for (_, _, key) in heavy {
            if budget.in_use() <= target {
                break;
            }
            let Some(flow) = flows.get_mut(&key) else {
                continue;
            };
            stats.memcap_ended += 1;
            let sinks = (&mut *records, &mut *anomalies);
            finish_analysis(flow, (now_us, &cfg.limits), false, budget, stats, sinks);
            bypassed.push(key);
            hand_out(records, flow, now_us, out);
        }
    }

    /// The connections [`FlowTable::take_bypassed`] will hand out, in the
    /// order their analysis ended.
    pub fn bypassed(&self) -> &[FlowKey] {
        &self.bypassed
    }

    /// Open connections whose analysis ended since the last call: their
    /// payload no longer matters (the pipeline stops copying it).
    pub fn take_bypassed(&mut self) -> std::vec::Drain<'_, FlowKey> {
        self.bypassed.drain(..)
    }

    /// Bypassed connections that left the table (closed, expired,
    /// evicted) since the last call: their marks can go.
    pub fn take_released(&mut self) -> std::vec::Drain<'_, FlowKey> {
        self.released.drain(..)
    }

    /// Ends a flow that leaves the table: holes become gaps, the analyzer
    /// emits what it saw.
    fn end_flow<O: FnMut(FlowRecord)>(&mut self, mut flow: Box<Flow>, out: &mut O) {
        if matches!(flow.app, App::Done) {
            self.released
                .push(FlowKey::new(flow.client, flow.server, flow.vlans));
        }
        let FlowTable {
            budget,
            stats,
            records,
            anomalies,
            ..
        } = self;
        let last = flow.last_us;
        if flow.checksum_drops > 0 {
            stats.bad_checksum_flows += 1;
        }
        let sinks = (&mut *records, &mut *anomalies);
        let limits = self.cfg.limits;
        finish_analysis(&mut flow, (last, &limits), false, budget, stats, sinks);
        hand_out(records, &flow, last, out);
    }

    fn maybe_sweep<O: FnMut(FlowRecord)>(&mut self, now_us: i64, out: &mut O) {
        if !self.cfg.self_expire {
            return;
        }
        if self.last_sweep_us == i64::MIN {
            self.last_sweep_us = now_us;
            return;
        }
        if now_us - self.last_sweep_us >= SWEEP_EVERY_US {
            self.last_sweep_us = now_us;
            self.expire(now_us, out);
        }
    }

    /// Ends every flow whose timeout passed at `now_us` (packet time, or
    /// wall-clock time when a live capture is idle).
    pub fn expire<O: FnMut(FlowRecord)>(&mut self, now_us: i64, out: &mut O) {
        let cfg = self.cfg;
        self.syns
            .expire(now_us, cfg.half_open_timeout_us, &mut self.stats.syns);
        let mut expired: Vec<FlowKey> = self
            .flows
            .iter()
            .filter(|(_, f)| {
                let timeout = match (f.state, f.established) {
                    (State::Closed, _) => cfg.closed_timeout_us,
                    (State::Open, false) => cfg.half_open_timeout_us,
                    (State::Open, true) => cfg.idle_timeout_us,
                };
                now_us - f.last_us > timeout
            })
            .map(|(k, _)| *k)
            .collect();
        // A stable order keeps the output the same from run to run.
        expired.sort_unstable_by_key(|k| self.flows.get(k).map(|f| (f.last_us, f.id)));
        for k in expired {
            if let Some(f) = self.flows.remove(&k) {
                if f.state == State::Open {
                    self.stats.timed_out += 1;
                }
                self.end_flow(f, out);
            }
        }
    }

    /// The table is full: expire what timed out, then evict the idle-most
    /// sixteenth of the flows.
    fn make_room<O: FnMut(FlowRecord)>(&mut self, now_us: i64, out: &mut O) {
        self.expire(now_us, out);
        if self.flows.len() < self.cfg.max_flows {
            return;
        }
        let n = (self.cfg.max_flows / 16).max(1);
        let ages = self.flows.iter().map(|(k, f)| (f.last_us, f.id, *k));
        for (_, _, k) in oldest(ages, Some(n)) {
            if let Some(f) = self.flows.remove(&k) {
                self.stats.evicted += 1;
                self.end_flow(f, out);
            }
        }
    }

    /// End of input: every flow ends, in a stable order.
    pub fn finish<O: FnMut(FlowRecord)>(&mut self, out: &mut O) {
        // Taken out whole (a lookup per connection, in time order, missed
        // the cache for each: a percent of a handshake-heavy replay).
        let mut all: Vec<(i64, u64, FlowKey, Box<Flow>)> = self
            .flows
            .drain()
            .map(|(k, f)| (f.last_us, f.id, k, f))
            .collect();
        // The key compared only on a tie of time and id (copying it into
        // every comparison was most of the sort).
        all.sort_unstable_by(|a, b| (a.0, a.1).cmp(&(b.0, b.1)).then_with(|| a.2.cmp(&b.2)));
        for (.., f) in all {
            self.end_flow(f, out);
        }
    }
}

/// A segment as far as its receiver takes it before it looks for the
/// connection: its checksum's verdict (`None`: unfilled, judged by its
/// sender's habit), the payload it delivers, its flags.
struct Taken<'p> {
    checked: Option<bool>,
    payload: &'p [u8],
    syn: bool,
    ack: bool,
    fin: bool,
    rst: bool,
}

/// What delivering a segment touches in the table besides its flow.
struct Env<'a, F> {
    factory: &'a F,
    budget: &'a mut Budget,
    stats: &'a mut FlowStats,
    records: &'a mut Vec<Record>,
    anomalies: &'a mut Anomalies,
}

/// What a segment's analysis uses besides its connection: the table's
/// configuration, the shared state ([`Env`]) and the list of connections
/// bypassed.
struct Work<'a, F> {
    cfg: &'a FlowConfig,
    env: Env<'a, F>,
    bypassed: &'a mut Vec<FlowKey>,
}

/// After a segment's bytes went to the analyzer.
struct Delivered {
    status: Status,
    limits: StreamLimits,
    /// A RST the receiver took.
    rst: bool,
}

impl Flow {
    /// 1 for the client's segments, 2 for the server's.
    fn side_of(&self, seg: &TcpSegment<'_>) -> u8 {
        if (seg.src, seg.sport) == self.client {
            1
        } else {
            2
        }
    }

    /// Whether the receiver on `side`'s other end takes the segment within
    /// this connection, noting what it tells of the connection (what its
    /// sender sent, the handshake, FINs); false for a closed connection.
    #[inline]
    fn takes(
        &mut self,
        seg: &TcpSegment<'_>,
        side: u8,
        t: &Taken<'_>,
        stats: &mut FlowStats,
    ) -> bool {
        if !self.checksum_fits(seg, side, t.checked, stats) {
            return false;
        }
        // The receiver drops a segment that acknowledges bytes its peer
        // (the receiver itself) never sent: a blind sender cannot put data
        // or a FIN into a connection it cannot see.
        let me = usize::from(side) - 1;
        let carries = t.syn || t.fin || !t.payload.is_empty();
        if t.ack
            && carries
            && !t.rst
            && !matches!(self.app, App::Done)
            && !self.sent[1 - me].acknowledged(seg.ack)
        {
            stats.bad_ack += 1;
            return false;
        }
        if !t.rst {
            let len = t.payload.len() as u32 + u32::from(t.syn) + u32::from(t.fin);
            self.sent[me].record(seg.seq, len, t.syn);
            // A RST answers anything, a segment for no connection too: it
            // is no sign that its sender took what came before.
            self.dirs_seen |= side;
            if t.ack {
                note_handshake(self, side, t.syn, seg.ack);
            }
        }
        self.last_us = seg.ts_us;
        if self.state == State::Closed {
            return false;
        }
        if !t.syn || t.ack {
            self.established = true;
        }
        if t.fin {
            self.fins |= side;
        }
        true
    }

    /// A stack that filled in its checksums in this connection does not
    /// stop doing so: an unfilled one from that side now is a decoy.
    fn checksum_fits(
        &mut self,
        seg: &TcpSegment<'_>,
        side: u8,
        checked: Option<bool>,
        stats: &mut FlowStats,
    ) -> bool {
        match checked {
            _ if matches!(self.app, App::Done) => {}
            Some(true) if seg.checksum != Checksum::Unchecked => self.checked_sides |= side,
            None if self.checked_sides & side != 0 && !seg.checksum.accepts(seg.payload) => {
                stats.bad_checksum += 1;
                self.checksum_drops = self.checksum_drops.saturating_add(1);
                return false;
            }
            None => stats.unfilled_checksum += 1,
            _ => {}
        }
        true
    }

    /// A bypassed connection closes at a RST or FINs both ways.
    fn close_if_ended(&mut self, rst: bool, stats: &mut FlowStats) {
        if rst || self.fins == 3 {
            self.state = State::Closed;
            stats.closed += 1;
        }
    }

    /// The stream limits of its analyzer (some read deeper).
    fn limits(&self, base: &StreamLimits) -> StreamLimits {
        match &self.app {
            App::Running(a) => match a.depth() {
                Some(depth) => StreamLimits { depth, ..*base },
                None => *base,
            },
            _ => *base,
        }
    }

    /// What the connection holds now, for the memory cap.
    fn holds(&self) -> usize {
        match &self.app {
            App::Running(a) => {
                a.buffered()
                    + self
                        .streams
                        .iter()
                        .map(Stream::retained_capacity)
                        .sum::<usize>()
                    + unverified_bytes(&self.unverified)
            }
            _ => 0,
        }
    }
}

/// Delivers a taken segment: held segments its ACK vouches for and the
/// peer's bytes it acknowledges first, then its own bytes, each to the
/// analyzer as the stream releases them; the other copy of a conflicting
/// overlap is analysed aside.
fn deliver<F: AnalyzerFactory, O: FnMut(FlowRecord)>(
    flow: &mut Flow,
    (seg, side): (&TcpSegment<'_>, u8),
    t: &Taken<'_>,
    base: &StreamLimits,
    env: &mut Env<'_, F>,
    out: &mut O,
) -> Delivered {
    let Env {
        factory,
        budget,
        stats,
        records,
        anomalies,
    } = env;
    if matches!(flow.app, App::NotYet) && !t.payload.is_empty() {
        flow.app = App::Running(factory.new_flow(flow.server.1));
    }
    let me = usize::from(side) - 1;
    let dir = if me == 0 {
        Dir::ToServer
    } else {
        Dir::ToClient
    };
    let limits = flow.limits(base);
    let (ours, theirs) = split_streams(&mut flow.streams, dir);
    if t.syn {
        ours.syn(seg.seq);
    }
    // An endpoint takes a RST only at exactly the next sequence number
    // it expects from the sender (RFC 5961 3.2); a blind or misplaced
    // one must not end the analysis.
    let rst = t.rst && ours.expected_seq().is_none_or(|next| next == seg.seq);
    if t.rst && !rst {
        stats.rst_ignored += 1;
    }
    let data_seq = if t.syn {
        seg.seq.wrapping_add(1)
    } else {
        seg.seq
    };
    let mut cx = Ctx::new(seg.ts_us, flow.midstream, *records).counting(anomalies);
    let mut status = Status::Continue;
    let mut conflicts: Vec<(Dir, u32, Vec<u8>)> = Vec::new();
    let vouched = if t.ack && !flow.unverified.is_empty() {
        take_vouched(&mut flow.unverified, 1 - me, seg.ack, theirs.expected_seq())
    } else {
        Vec::new()
    };
    let app = &mut flow.app;
    for (seq, bytes) in &vouched {
        stats.vouched_checksum += 1;
        flow.checksum_drops = flow.checksum_drops.saturating_sub(1);
        flow.sent[1 - me].record(*seq, bytes.len() as u32, false);
        theirs.segment(*seq, bytes, &limits, budget, &mut stats.streams, &mut |c| {
            if let (App::Running(a), false) = (&mut *app, matches!(c, Chunk::Conflict(..))) {
                feed(a.as_mut(), dir.other(), c, &mut cx, &mut status);
            }
        });
    }
    if t.ack {
        theirs.peer_ack(seg.ack, &limits, budget, &mut stats.streams, &mut |c| {
            if let App::Running(a) = app {
                feed(a.as_mut(), dir.other(), c, &mut cx, &mut status);
            }
        });
    }
    let streams = &mut stats.streams;
    ours.segment(
        data_seq,
        t.payload,
        &limits,
        budget,
        streams,
        &mut |c| match c {
            Chunk::Conflict(off, other) => conflicts.push((dir, off, other.to_vec())),
            c => {
                if let App::Running(a) = app {
                    feed(a.as_mut(), dir, c, &mut cx, &mut status);
                }
            }
        },
    );
    if t.fin {
        ours.fin(data_seq.wrapping_add(t.payload.len() as u32));
    }
    if cx.roles_reversed && flow.midstream {
        flow.reversed = true;
    }
    analyse_conflicts(*factory, flow, conflicts, stats, seg.ts_us, out);
    Delivered {
        status,
        limits,
        rst,
    }
}

/// The other copies of conflicting overlaps, each analysed aside, at most
/// [`MAX_SHADOWS`] per connection.
fn analyse_conflicts<F: AnalyzerFactory, O: FnMut(FlowRecord)>(
    factory: &F,
    flow: &mut Flow,
    conflicts: Vec<(Dir, u32, Vec<u8>)>,
    stats: &mut FlowStats,
    ts_us: i64,
    out: &mut O,
) {
    for (d, off, other) in conflicts {
        if flow.shadows >= MAX_SHADOWS {
            stats.overlap_copies_skipped += 1;
            continue;
        }
        flow.shadows += 1;
        stats.overlap_copies_analysed += 1;
        analyse_other_copy(factory, flow, (d, off, &other), ts_us, out);
    }
}

/// After a delivery: the connection's memory is counted again, and its
/// analysis ends when the analyzer is done, both streams are finished or
/// exhausted, or the connection closes. True when it goes on bypassed.
fn settle<F>(flow: &mut Flow, ts_us: i64, d: &Delivered, env: &mut Env<'_, F>) -> bool {
    let footprint = flow.holds();
    env.budget.flows = env.budget.flows + footprint - flow.footprint;
    flow.footprint = footprint;
    let both_done = flow
        .streams
        .iter()
        .all(|s| s.finished() || s.exhausted(&d.limits));
    let closing = d.rst || flow.streams.iter().all(Stream::finished);
    if d.status != Status::Done && !both_done && !closing {
        return false;
    }
    // Finish the analyzer now: it learned all it can.
    let bypass = d.status == Status::Done;
    let sinks = (&mut *env.records, &mut *env.anomalies);
    finish_analysis(
        flow,
        (ts_us, &d.limits),
        bypass,
        env.budget,
        env.stats,
        sinks,
    );
    if closing {
        flow.state = State::Closed;
        env.stats.closed += 1;
    }
    !closing
}

/// Ends a flow's analysis. Unless the analyzer finished by itself
/// (`bypass`), the bytes still held go to it (holes as gaps) and it emits
/// what it saw; the streams free what they hold either way.
fn finish_analysis(
    flow: &mut Flow,
    (ts_us, limits): (i64, &StreamLimits),
    bypass: bool,
    budget: &mut Budget,
    stats: &mut FlowStats,
    (records, errors): (&mut Vec<Record>, &mut Anomalies),
) {
    let mut cx = Ctx::new(ts_us, flow.midstream, records).counting(errors);
    if let App::Running(mut app) = std::mem::replace(&mut flow.app, App::Done) {
        if bypass {
            stats.bypassed += 1;
        } else {
            for (i, s) in flow.streams.iter_mut().enumerate() {
                let d = if i == 0 { Dir::ToServer } else { Dir::ToClient };
                let mut st = Status::Continue;
                s.flush(limits, budget, &mut stats.streams, &mut |c| {
                    feed(app.as_mut(), d, c, &mut cx, &mut st)
                });
            }
            app.end(&mut cx);
        }
    }
    if cx.roles_reversed && flow.midstream {
        flow.reversed = true;
    }
    for s in flow.streams.iter_mut() {
        s.discard(budget);
    }
    flow.unverified = Vec::new();
    budget.flows -= flow.footprint;
    flow.footprint = 0;
}

fn unverified_bytes(held: &[Unverified]) -> usize {
    held.iter().map(|u| u.payload.len()).sum()
}

/// Keeps a data segment with a wrong checksum aside: if its receiver
/// acknowledges its bytes and no correct segment brought them, the
/// receiver took it (the checksum broke in the capture, after the fact).
/// Only plain data whose own ACK is acceptable; within the per-connection
/// caps and counted in its memory.
/// The checksum's verdict on a segment: the receiver drops a segment with
/// a wrong one, so a decoy cannot be seen as data, a RST or a SYN. An
/// unfilled one (`None`) is judged later, by what its sender did earlier in
/// the connection. Checksums of a bypassed connection are not judged (the
/// capture thread may have stopped copying its payload already), so not
/// summed either.
fn checksum_verdict(seg: &TcpSegment<'_>, bypassed: bool) -> Option<bool> {
    match seg.checksum {
        Checksum::Unfilled(_) => None,
        _ if bypassed => Some(true),
        c => Some(c.accepts(seg.payload)),
    }
}

/// A segment dropped for its checksum: counted on its connection, and
/// held there until the receiver's acknowledgment may vouch for it.
fn drop_bad_checksum(
    stats: &mut FlowStats,
    cfg: &FlowConfig,
    budget: &mut Budget,
    flow: Option<&mut Flow>,
    seg: &TcpSegment<'_>,
) {
    stats.bad_checksum += 1;
    match flow {
        Some(f) => {
            f.checksum_drops = f.checksum_drops.saturating_add(1);
            if cfg.vouch_checksums {
                hold_unverified(f, seg, budget);
            }
        }
        None => stats.bad_checksum_flows += 1,
    }
}

/// What the receiver takes of a segment whose checksum passed (`checked`).
fn accepted<'p>(
    stats: &mut FlowStats,
    seg: &TcpSegment<'p>,
    checked: Option<bool>,
) -> Option<Taken<'p>> {
    let flag = |f: u8| seg.flags & f != 0;
    let (syn, ack, fin, rst) = (
        flag(tcp_flags::SYN),
        flag(tcp_flags::ACK),
        flag(tcp_flags::FIN),
        flag(tcp_flags::RST),
    );
    // An endpoint drops a segment without ACK unless it is a SYN or a RST
    // (RFC 9293 3.10.7.4), and delivers data on a SYN only when the SYN
    // carries a Fast Open cookie (RFC 7413; a SYN-ACK's data is taken).
    // Such a segment must not become a decoy.
    if !syn && !ack && !rst {
        stats.not_accepted += 1;
        return None;
    }
    let payload = if syn && !ack && !seg.fast_open && !seg.payload.is_empty() {
        stats.not_accepted += 1;
        &[][..]
    } else {
        seg.payload
    };
    Some(Taken {
        checked,
        payload,
        syn,
        ack,
        fin,
        rst,
    })
}

/// A segment of a connection in the table (just made, or found): what
/// the connection takes of it goes to its analysis. True when the
/// analysis ran (the memory cap is then looked at).
fn segment_into<F: AnalyzerFactory, O: FnMut(FlowRecord)>(
    flow: &mut Flow,
    key: &FlowKey,
    seg: &TcpSegment<'_>,
    taken: Taken<'_>,
    work: &mut Work<'_, F>,
    out: &mut O,
) -> bool {
    let env = &mut work.env;
    let side = flow.side_of(seg);
    if !flow.takes(seg, side, &taken, env.stats) {
        return false;
    }
    if matches!(flow.app, App::Done) {
        // Bypassed: only the end of the connection matters.
        flow.close_if_ended(taken.rst, env.stats);
        return false;
    }
    let delivered = deliver(flow, (seg, side), &taken, &work.cfg.limits, env, out);
    if settle(flow, seg.ts_us, &delivered, env) {
        work.bypassed.push(*key);
    }
    hand_out(env.records, flow, seg.ts_us, out);
    true
}

fn hold_unverified(flow: &mut Flow, seg: &TcpSegment<'_>, budget: &mut Budget) {
    let plain =
        seg.flags & (tcp_flags::SYN | tcp_flags::RST) == 0 && seg.flags & tcp_flags::ACK != 0;
    let held = unverified_bytes(&flow.unverified);
    if !plain
        || seg.payload.is_empty()
        || !matches!(flow.app, App::Running(_) | App::NotYet)
        || flow.unverified.len() >= MAX_UNVERIFIED
        || held + seg.payload.len() > MAX_UNVERIFIED_BYTES
    {
        return;
    }
    let side = usize::from((seg.src, seg.sport) != flow.client);
    if !flow.sent[1 - side].acknowledged(seg.ack) {
        return;
    }
    flow.unverified.push(Unverified {
        side,
        seq: seg.seq,
        payload: seg.payload.to_vec(),
    });
    budget.flows += seg.payload.len();
    flow.footprint += seg.payload.len();
}

/// The held segments from `side` that `ack` acknowledges whole, as the
/// bytes still to deliver (those before `expected`, which a correct
/// segment already brought, are cut; a segment wholly before it goes).
fn take_vouched(
    held: &mut Vec<Unverified>,
    side: usize,
    ack: u32,
    expected: Option<u32>,
) -> Vec<(u32, Vec<u8>)> {
    let mut out = Vec::new();
    held.retain_mut(|u| {
        let end = u.seq.wrapping_add(u.payload.len() as u32);
        if u.side != side || (ack.wrapping_sub(end) as i32) < 0 {
            return true;
        }
        let skip = expected.map_or(0, |x| (x.wrapping_sub(u.seq) as i32).max(0) as usize);
        if skip < u.payload.len() {
            let bytes = u.payload.split_off(skip);
            out.push((u.seq.wrapping_add(skip as u32), bytes));
        }
        false
    });
    out
}

/// Looks at the other copy of a conflicting overlap as the receiver may have
/// taken it: a fresh analyzer (content detection, as for a new connection)
/// gets the copy's bytes from their sender's side, and what it reports goes
/// out marked with the overlap. The analyzer knows the connection's roles
/// (not midstream), so a copy from the server cannot name the client.
fn analyse_other_copy<F: AnalyzerFactory, O: FnMut(FlowRecord)>(
    factory: &F,
    flow: &Flow,
    (dir, offset, bytes): (Dir, u32, &[u8]),
    ts_us: i64,
    out: &mut O,
) {
    let mut records = Vec::new();
    let mut errors = Anomalies::default();
    {
        let mut cx = Ctx::new(ts_us, false, &mut records).counting(&mut errors);
        let mut app = factory.new_flow(flow.server.1);
        // Roles the analysis corrected on a midstream connection hold here too.
        let d = if flow.reversed { dir.other() } else { dir };
        let _ = app.data(d, bytes, &mut cx);
        app.end(&mut cx);
    }
    let mut info = flow.info();
    info.overlap = Some(Overlap {
        to_server: (dir == Dir::ToServer) != flow.reversed,
        offset,
    });
    for record in records {
        out(FlowRecord {
            ts_us,
            flow: info.clone(),
            record,
        });
    }
}

/// Passes the records a flow produced on, in its envelope.
fn hand_out<O: FnMut(FlowRecord)>(records: &mut Vec<Record>, flow: &Flow, ts_us: i64, out: &mut O) {
    if records.is_empty() {
        return;
    }
    let info = flow.info();
    for record in records.drain(..) {
        out(FlowRecord {
            ts_us,
            flow: info.clone(),
            record,
        });
    }
}

/// The `n` idle-most of `entries` (last packet time, id, key), or all of
/// them, oldest first: a stable order, so that the output is the same from
/// run to run.
fn oldest<K: Ord>(
    entries: impl Iterator<Item = (i64, u64, K)>,
    n: Option<usize>,
) -> Vec<(i64, u64, K)> {
    let mut v: Vec<(i64, u64, K)> = entries.collect();
    if let Some(n) = n.filter(|&n| n < v.len()) {
        v.select_nth_unstable(n);
        v.truncate(n);
    }
    v.sort_unstable();
    v
}

fn split_streams(streams: &mut [Stream; 2], dir: Dir) -> (&mut Stream, &mut Stream) {
    let [a, b] = streams;
    match dir {
        Dir::ToServer => (a, b),
        Dir::ToClient => (b, a),
    }
}

/// Hands one chunk to the analyzer unless it is done already.
fn feed(app: &mut dyn Analyzer, dir: Dir, c: Chunk<'_>, cx: &mut Ctx<'_>, status: &mut Status) {
    if *status == Status::Done {
        return;
    }
    *status = match c {
        Chunk::Data(d) => app.data(dir, d, cx),
        Chunk::Gap(n) => app.gap(dir, n, cx),
        // Handled by the flow table, which sees the flow's roles.
        Chunk::Conflict(..) => *status,
    };
}

#[cfg(test)]
#[path = "table_tests.rs"]
mod table_tests;
