//! The packets behind alerts (`-w FILE`): every connection and datagram
//! exchange keeps its first packets in a bounded buffer until its verdict;
//! one that alerts has them written to a pcap file, and its later packets
//! follow while its analysis lasts. Suricata's conditional `pcap-log`,
//! with tcpdump's `-w`, `-C` and `-W`.
//!
//! Packets are written as hostwatch decoded them, each in an Ethernet
//! frame (VLAN tags kept): addresses, ports, sequence and acknowledgment
//! numbers, flags, window, payload and time as captured; IP fragments
//! reassembled, tunnels unwrapped, TCP options, TTL and MAC addresses not
//! kept. A segment whose checksum was wrong is written with a wrong one,
//! so that Wireshark's checksum validation still flags it.

use std::collections::{HashMap, VecDeque};
use std::fs::File;
use std::io::{self, BufWriter, Write};
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use etherparse::{
    EtherType, Ethernet2Header, IpNumber, Ipv4Header, Ipv6FlowLabel, Ipv6Header, SingleVlanHeader,
    TcpHeader, UdpHeader, VlanId, VlanPcp,
};

use crate::decode::{tcp_flags, Packet, Transport};
use crate::events::FlowInfo;
use crate::flow::FlowKey;

/// Packets a connection may have written (or held before its verdict).
pub const FLOW_PACKETS: u32 = 4096;
/// Bytes (pcap records) a connection may have written or held.
pub const FLOW_BYTES: usize = 4 << 20;
/// The latest datagrams a UDP conversation holds before a verdict: an
/// exchange's request and answers, and the retransmissions before them.
pub const WINDOW: usize = 64;
/// After a datagram alerts, the conversation's datagrams of this much
/// packet time follow (the answers).
const FOLLOW_US: i64 = 5_000_000;

/// A record's bytes before the payload, at most: pcap record header,
/// Ethernet, two VLAN tags, IPv6, TCP.
const RECORD_HEADERS: usize = 16 + 14 + 8 + 40 + 20;

/// The pcap file header: microsecond timestamps, Ethernet.
const SNAPLEN: u32 = 262_144;
const LINKTYPE_ETHERNET: u32 = 1;

/// `-w FILE` with `-C` and `-W`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogOptions {
    pub path: PathBuf,
    /// Start a new file once this many bytes are written (`-C`, in MB).
    pub rotate_bytes: Option<u64>,
    /// Keep at most this many files (`-W`): the oldest is removed.
    pub files: Option<u32>,
}

/// What was written, for the `stats` event.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct PacketStats {
    /// Packets written.
    pub packets: u64,
    /// Connections and exchanges whose packets were written.
    pub flows: u64,
    /// Connections that reached [`FLOW_PACKETS`] or [`FLOW_BYTES`].
    pub flows_cut: u64,
    /// Connections whose held packets were dropped to stay within the
    /// budget before any verdict.
    pub evicted: u64,
    /// Packets that could not be written (the file failed; a datagram
    /// too large for one IP packet).
    pub lost: u64,
    /// Files opened (shared by the workers: added as the largest).
    pub files: u64,
}

impl PacketStats {
    pub fn add(&mut self, o: &PacketStats) {
        self.packets += o.packets;
        self.flows += o.flows;
        self.flows_cut += o.flows_cut;
        self.evicted += o.evicted;
        self.lost += o.lost;
        self.files = self.files.max(o.files);
    }

    pub fn to_json(&self) -> serde_json::Value {
        serde_json::json!({
            "packets": self.packets,
            "flows": self.flows,
            "flows_cut": self.flows_cut,
            "evicted": self.evicted,
            "lost": self.lost,
            "files": self.files,
        })
    }
}

/// The pcap files, shared by the workers.
#[derive(Debug)]
pub struct PacketLog {
    opts: LogOptions,
    file: Mutex<LogFile>,
}

#[derive(Debug)]
struct LogFile {
    out: Option<BufWriter<File>>,
    /// Bytes in the current file.
    written: u64,
    /// Files opened so far (the current one is `files - 1`).
    files: u64,
    failed: bool,
}

impl PacketLog {
    /// Creates (truncates) the file, as `tcpdump -w` does.
    pub fn create(opts: LogOptions) -> io::Result<PacketLog> {
        let out = open(&opts.path)?;
        Ok(PacketLog {
            opts,
            file: Mutex::new(LogFile {
                out: Some(out),
                written: 24,
                files: 1,
                failed: false,
            }),
        })
    }

    /// Whether writing failed (said on stderr when it did).
    pub fn failed(&self) -> bool {
        self.file.lock().map_or(true, |f| f.failed)
    }

    /// Files opened so far.
    pub fn files(&self) -> u64 {
        self.file.lock().map(|f| f.files).unwrap_or(0)
    }

    /// Writes whole pcap records; false once the file has failed (said
    /// once, on stderr).
    fn write(&self, records: &[u8]) -> bool {
        let Ok(mut f) = self.file.lock() else {
            return false;
        };
        if f.failed {
            return false;
        }
        let done = self.write_locked(&mut f, records);
        self.settle(&mut f, done)
    }

    /// A write or flush that failed ends the file: said once, on stderr.
    fn settle(&self, f: &mut LogFile, done: io::Result<()>) -> bool {
        match done {
            Ok(()) => true,
            Err(e) => {
                f.failed = true;
                f.out = None;
                crate::diag::warn(format_args!(
                    "-w {}: {e}; no more packets are written",
                    self.opts.path.display()
                ));
                false
            }
        }
    }

    fn write_locked(&self, f: &mut LogFile, records: &[u8]) -> io::Result<()> {
        if let Some(limit) = self.opts.rotate_bytes {
            if f.written > 24 && f.written.saturating_add(records.len() as u64) > limit {
                self.rotate(f)?;
            }
        }
        match f.out.as_mut() {
            Some(out) => out.write_all(records)?,
            None => return Err(io::Error::other("not open")),
        }
        f.written += records.len() as u64;
        Ok(())
    }

    /// Closes the current file and opens the next (`FILE.1`, `FILE.2`,
    /// ...), removing the oldest beyond `-W`.
    fn rotate(&self, f: &mut LogFile) -> io::Result<()> {
        if let Some(mut out) = f.out.take() {
            out.flush()?;
        }
        let next = f.files;
        f.out = Some(open(&numbered(&self.opts.path, next))?);
        f.files += 1;
        f.written = 24;
        if let Some(keep) = self.opts.files {
            if let Some(old) = next.checked_sub(u64::from(keep.max(1))) {
                match std::fs::remove_file(numbered(&self.opts.path, old)) {
                    Err(e) if e.kind() != io::ErrorKind::NotFound => return Err(e),
                    _ => {}
                }
            }
        }
        Ok(())
    }

    /// Writes out what is buffered; false once the file has failed
    /// (said once, on stderr).
    pub fn flush(&self) -> bool {
        let Ok(mut f) = self.file.lock() else {
            return false;
        };
        let done = match f.out.as_mut() {
            Some(out) => out.flush(),
            None => Ok(()),
        };
        !f.failed && self.settle(&mut f, done)
    }
}

/// The `n`th file of a rotation: `FILE`, then `FILE.1`, `FILE.2`, ...
pub fn numbered(path: &Path, n: u64) -> PathBuf {
    if n == 0 {
        return path.to_path_buf();
    }
    let mut s = path.as_os_str().to_os_string();
    s.push(format!(".{n}"));
    PathBuf::from(s)
}

fn open(path: &Path) -> io::Result<BufWriter<File>> {
    let mut out = BufWriter::with_capacity(64 << 10, File::create(path)?);
    let mut head = Vec::with_capacity(24);
    head.extend_from_slice(&0xa1b2_c3d4u32.to_le_bytes());
    head.extend_from_slice(&2u16.to_le_bytes());
    head.extend_from_slice(&4u16.to_le_bytes());
    head.extend_from_slice(&0i32.to_le_bytes());
    head.extend_from_slice(&0u32.to_le_bytes());
    head.extend_from_slice(&SNAPLEN.to_le_bytes());
    head.extend_from_slice(&LINKTYPE_ETHERNET.to_le_bytes());
    out.write_all(&head)?;
    Ok(out)
}

/// Appends `p` as a pcap record (header and Ethernet frame) to `out`;
/// false (and nothing appended) when it does not fit in one IP packet.
pub fn record(p: &Packet<'_>, out: &mut Vec<u8>) -> bool {
    let start = out.len();
    out.extend_from_slice(&[0; 16]);
    let (ts_us, vlans, payload) = match p {
        Packet::Tcp(s) => (s.ts_us, s.vlans, s.payload),
        Packet::Udp(d) => (d.ts_us, d.vlans, d.payload),
    };
    let tags = vlans.as_slice();
    let (src, dst) = match p {
        Packet::Tcp(s) => (s.src, s.dst),
        Packet::Udp(d) => (d.src, d.dst),
    };
    let ip_type = match src {
        IpAddr::V4(_) => EtherType::IPV4,
        IpAddr::V6(_) => EtherType::IPV6,
    };
    let eth = Ethernet2Header {
        source: [0x02, 0, 0, 0, 0, 1],
        destination: [0x02, 0, 0, 0, 0, 2],
        ether_type: if tags.is_empty() {
            ip_type
        } else {
            EtherType::VLAN_TAGGED_FRAME
        },
    };
    out.extend_from_slice(&eth.to_bytes());
    for (i, &id) in tags.iter().enumerate() {
        let tag = SingleVlanHeader {
            pcp: VlanPcp::ZERO,
            drop_eligible_indicator: false,
            vlan_id: VlanId::try_new(id & 0x0fff).unwrap_or(VlanId::ZERO),
            ether_type: if i + 1 < tags.len() {
                EtherType::VLAN_TAGGED_FRAME
            } else {
                ip_type
            },
        };
        out.extend_from_slice(&tag.to_bytes());
    }
    if !ip_and_transport(p, src, dst, out) {
        out.truncate(start);
        return false;
    }
    out.extend_from_slice(payload);
    let len = (out.len() - start - 16) as u32;
    let secs = ts_us.div_euclid(1_000_000) as u32;
    let usecs = ts_us.rem_euclid(1_000_000) as u32;
    let mut head = [0u8; 16];
    head[0..4].copy_from_slice(&secs.to_le_bytes());
    head[4..8].copy_from_slice(&usecs.to_le_bytes());
    head[8..12].copy_from_slice(&len.to_le_bytes());
    head[12..16].copy_from_slice(&len.to_le_bytes());
    if let Some(h) = out.get_mut(start..start + 16) {
        h.copy_from_slice(&head);
    }
    true
}

/// The IP and transport headers of `p`.
fn ip_and_transport(p: &Packet<'_>, src: IpAddr, dst: IpAddr, out: &mut Vec<u8>) -> bool {
    let (number, transport_len, payload) = match p {
        Packet::Tcp(s) => (IpNumber::TCP, TcpHeader::MIN_LEN, s.payload),
        Packet::Udp(d) => (IpNumber::UDP, UdpHeader::LEN, d.payload),
    };
    let Ok(ip_payload) = u16::try_from(transport_len + payload.len()) else {
        return false;
    };
    let (v4, v6) = match (src, dst) {
        (IpAddr::V4(s), IpAddr::V4(d)) => {
            let Ok(mut h) = Ipv4Header::new(ip_payload, 64, number, s.octets(), d.octets()) else {
                return false;
            };
            h.header_checksum = h.calc_header_checksum();
            (Some(h), None)
        }
        (IpAddr::V6(s), IpAddr::V6(d)) => {
            let h = Ipv6Header {
                traffic_class: 0,
                flow_label: Ipv6FlowLabel::ZERO,
                payload_length: ip_payload,
                next_header: number,
                hop_limit: 64,
                source: s.octets(),
                destination: d.octets(),
            };
            (None, Some(h))
        }
        _ => return false,
    };
    let sum = |tcp: Option<&TcpHeader>, udp: Option<&UdpHeader>| -> Option<u16> {
        match (&v4, &v6, tcp, udp) {
            (Some(ip), _, Some(t), _) => t.calc_checksum_ipv4(ip, payload).ok(),
            (_, Some(ip), Some(t), _) => t.calc_checksum_ipv6(ip, payload).ok(),
            (Some(ip), _, _, Some(u)) => u.calc_checksum_ipv4(ip, payload).ok(),
            (_, Some(ip), _, Some(u)) => u.calc_checksum_ipv6(ip, payload).ok(),
            _ => None,
        }
    };
    // A changed low bit: ones' complement has two zeros, so flipping
    // every bit could still verify.
    let mark = |c: u16, wrong: bool| if wrong { c ^ 1 } else { c };
    // The transport header, at most TCP's 20 bytes without options.
    let mut transport = [0u8; TcpHeader::MIN_LEN];
    let transport_len = match p {
        Packet::Tcp(s) => {
            let mut t = TcpHeader::new(s.sport, s.dport, s.seq, s.window);
            t.fin = s.flags & tcp_flags::FIN != 0;
            t.syn = s.flags & tcp_flags::SYN != 0;
            t.rst = s.flags & tcp_flags::RST != 0;
            t.psh = s.flags & tcp_flags::PSH != 0;
            t.ack = s.flags & tcp_flags::ACK != 0;
            t.acknowledgment_number = s.ack;
            let Some(c) = sum(Some(&t), None) else {
                return false;
            };
            t.checksum = mark(c, !s.checksum.accepts(payload));
            transport.copy_from_slice(&t.to_bytes());
            TcpHeader::MIN_LEN
        }
        Packet::Udp(d) => {
            let mut u = UdpHeader {
                source_port: d.sport,
                destination_port: d.dport,
                length: ip_payload,
                checksum: 0,
            };
            let Some(c) = sum(None, Some(&u)) else {
                return false;
            };
            u.checksum = mark(c, !d.checksum.accepts(payload));
            if let Some(t) = transport.get_mut(..UdpHeader::LEN) {
                t.copy_from_slice(&u.to_bytes());
            }
            UdpHeader::LEN
        }
    };
    if let Some(h) = v4 {
        out.extend_from_slice(&h.to_bytes());
    }
    if let Some(h) = v6 {
        out.extend_from_slice(&h.to_bytes());
    }
    out.extend_from_slice(transport.get(..transport_len).unwrap_or_default());
    true
}

/// Where a connection's packets stand.
#[derive(Debug)]
enum State {
    /// No verdict yet: its first packets, as pcap records.
    Held(Vec<u8>),
    /// It alerted: its packets are written as they come.
    Written,
    /// Its analysis ended without an alert: nothing more is kept.
    Closed,
    /// A UDP conversation: its latest datagrams, each a pcap record; a
    /// verdict writes them, and those that follow until `follow_until`.
    Window {
        records: VecDeque<Vec<u8>>,
        follow_until: i64,
    },
}

#[derive(Debug)]
struct Ring {
    state: State,
    packets: u32,
    bytes: usize,
    /// It reached [`FLOW_PACKETS`] or [`FLOW_BYTES`]: no more are kept.
    full: bool,
    /// The sequence number of its opening SYN: a SYN with another one
    /// opens a new connection on the same ports, a retransmission does not.
    isn: Option<u32>,
    /// Its latest packet's time.
    last_us: i64,
    /// Its place in the eviction order (a connection started again gets
    /// a new one).
    generation: u64,
}

impl Ring {
    fn new(transport: Transport, generation: u64, ts_us: i64) -> Ring {
        Ring {
            state: match transport {
                Transport::Tcp => State::Held(Vec::new()),
                Transport::Udp => State::Window {
                    records: VecDeque::new(),
                    follow_until: i64::MIN,
                },
            },
            packets: 0,
            bytes: 0,
            full: false,
            isn: None,
            last_us: ts_us,
            generation,
        }
    }

    /// Bytes held before a verdict.
    fn held(&self) -> usize {
        match &self.state {
            State::Held(b) => b.len(),
            State::Window { records, .. } => records.iter().map(Vec::len).sum(),
            State::Written | State::Closed => 0,
        }
    }
}

type Key = (Transport, FlowKey);

fn key_of(p: &Packet<'_>) -> Key {
    match p {
        Packet::Tcp(s) => (Transport::Tcp, FlowKey::of(s)),
        Packet::Udp(d) => udp_key((d.src, d.sport), (d.dst, d.dport), d.vlans),
    }
}

/// A datagram's conversation, as the datagram table keys it: a
/// link-scoped protocol's datagrams (a broadcast request and its unicast
/// answer) meet in one.
fn udp_key(src: (IpAddr, u16), dst: (IpAddr, u16), vlans: crate::decode::Vlans) -> Key {
    let (a, b) = crate::flow::datagram::endpoints_between(src, dst);
    (Transport::Udp, FlowKey::new(a, b, vlans))
}

/// One worker's share: the packets of its connections until their
/// verdict, within a budget of bytes and of connections.
pub struct Recorder {
    log: Arc<PacketLog>,
    rings: HashMap<Key, Ring>,
    /// Connections by age, for eviction (stale entries skipped).
    order: VecDeque<(Key, u64)>,
    generation: u64,
    held: usize,
    budget: usize,
    max_rings: usize,
    scratch: Vec<u8>,
    stats: PacketStats,
}

impl Recorder {
    /// `budget`: the bytes this worker may hold before verdicts;
    /// `max_rings`: the connections it follows at once.
    pub fn new(log: Arc<PacketLog>, budget: usize, max_rings: usize) -> Self {
        Recorder {
            log,
            rings: HashMap::new(),
            order: VecDeque::new(),
            generation: 0,
            held: 0,
            budget,
            max_rings: max_rings.max(1),
            scratch: Vec::new(),
            stats: PacketStats::default(),
        }
    }

    /// Bytes held before verdicts.
    pub fn held_bytes(&self) -> usize {
        self.held
    }

    /// Its counters, with the files written so far.
    pub fn stats(&self) -> PacketStats {
        PacketStats {
            files: self.log.files(),
            ..self.stats
        }
    }

    /// A packet on its way to analysis.
    pub fn packet(&mut self, p: &Packet<'_>) {
        let key = key_of(p);
        let ts_us = match p {
            Packet::Tcp(s) => s.ts_us,
            Packet::Udp(d) => d.ts_us,
        };
        let opening = match p {
            Packet::Tcp(s) if s.flags & (tcp_flags::SYN | tcp_flags::ACK) == tcp_flags::SYN => {
                Some(s.seq)
            }
            _ => None,
        };
        let fresh = match self.rings.get(&key) {
            None => true,
            // A new connection on the same ports starts afresh.
            Some(r) => opening.is_some() && r.packets > 0 && r.isn != opening,
        };
        if fresh {
            self.generation += 1;
            let old = self
                .rings
                .insert(key, Ring::new(key.0, self.generation, ts_us));
            self.held -= old.map_or(0, |r| r.held());
            self.order.push_back((key, self.generation));
            if self.rings.len() > self.max_rings {
                self.evict_one();
            }
        }
        let Some(ring) = self.rings.get_mut(&key) else {
            return;
        };
        ring.last_us = ts_us;
        if ring.isn.is_none() {
            ring.isn = opening;
        }
        if ring.full || matches!(ring.state, State::Closed) {
            return;
        }
        if ring.packets >= FLOW_PACKETS || ring.bytes >= FLOW_BYTES {
            ring.full = true;
            self.stats.flows_cut += 1;
            return;
        }
        match &mut ring.state {
            State::Held(b) => {
                let before = b.len();
                if before == 0 {
                    // Most connections never get past their first packet.
                    b.reserve_exact(RECORD_HEADERS + p.payload().len());
                }
                if record(p, b) {
                    ring.packets += 1;
                    ring.bytes += b.len() - before;
                    self.held += b.len() - before;
                } else {
                    self.stats.lost += 1;
                }
            }
            State::Written => {
                self.scratch.clear();
                if record(p, &mut self.scratch) && self.log.write(&self.scratch) {
                    ring.packets += 1;
                    ring.bytes += self.scratch.len();
                    self.stats.packets += 1;
                } else {
                    self.stats.lost += 1;
                }
            }
            State::Window {
                records,
                follow_until,
            } => {
                let mut rec = Vec::new();
                if !record(p, &mut rec) {
                    self.stats.lost += 1;
                } else if ts_us <= *follow_until {
                    if self.log.write(&rec) {
                        ring.packets += 1;
                        ring.bytes += rec.len();
                        self.stats.packets += 1;
                    } else {
                        self.stats.lost += 1;
                    }
                } else {
                    self.held += rec.len();
                    records.push_back(rec);
                    if records.len() > WINDOW {
                        self.held -= records.pop_front().map_or(0, |r| r.len());
                    }
                }
            }
            State::Closed => {}
        }
        while self.held > self.budget {
            if !self.evict_one() {
                break;
            }
        }
    }

    /// A connection alerted: what it holds is written, and what follows.
    pub fn alerted(&mut self, flow: &FlowInfo) {
        let (src, dst) = ((flow.src_ip, flow.src_port), (flow.dest_ip, flow.dest_port));
        let key = match flow.transport {
            Transport::Tcp => (Transport::Tcp, FlowKey::new(src, dst, flow.vlans)),
            Transport::Udp => udp_key(src, dst, flow.vlans),
        };
        let Some(ring) = self.rings.get_mut(&key) else {
            return;
        };
        if let State::Window {
            records,
            follow_until,
        } = &mut ring.state
        {
            // The window is written, and the answers that follow; the
            // bound counts from this verdict.
            *follow_until = ring.last_us.saturating_add(FOLLOW_US);
            ring.full = false;
            ring.packets = 0;
            ring.bytes = 0;
            if records.is_empty() {
                return;
            }
            self.stats.flows += 1;
            let n = records.len() as u64;
            let all: Vec<u8> = records.drain(..).flatten().collect();
            self.held -= all.len();
            if self.log.write(&all) {
                self.stats.packets += n;
            } else {
                self.stats.lost += n;
            }
            return;
        }
        let State::Held(held) = &mut ring.state else {
            // Written already, or nothing kept.
            return;
        };
        let held = std::mem::take(held);
        ring.state = State::Written;
        self.held -= held.len();
        self.stats.flows += 1;
        if self.log.write(&held) {
            self.stats.packets += u64::from(ring.packets);
        } else {
            self.stats.lost += u64::from(ring.packets);
        }
    }

    /// A connection's analysis is over: nothing more of it is kept (an
    /// alerted one has had everything that mattered written).
    pub fn ended(&mut self, transport: Transport, key: FlowKey) {
        if let Some(r) = self.rings.get_mut(&(transport, key)) {
            self.held -= r.held();
            r.state = State::Closed;
        }
    }

    /// Packet time passed: what the file holds is written out, and the
    /// eviction order is compacted when stale entries outnumber the
    /// connections (connections are forgotten oldest first, by the bounds
    /// on connections and bytes).
    pub fn tick(&mut self) {
        if self.order.len() > self.rings.len() + self.rings.len() / 2 + 1024 {
            let rings = &self.rings;
            self.order
                .retain(|(k, g)| rings.get(k).is_some_and(|r| r.generation == *g));
        }
        self.log.flush();
    }

    /// Forgets the oldest connection that has not alerted; false when
    /// there is none.
    fn evict_one(&mut self) -> bool {
        while let Some((key, generation)) = self.order.pop_front() {
            match self.rings.get(&key) {
                Some(r) if r.generation == generation => {
                    if matches!(r.state, State::Written) {
                        // Still written as it goes; it is forgotten only
                        // when idle.
                        continue;
                    }
                    if r.held() > 0 {
                        self.stats.evicted += 1;
                    }
                    self.held -= r.held();
                    self.rings.remove(&key);
                    return true;
                }
                _ => continue,
            }
        }
        false
    }

    /// Writes out what is buffered; false once the file has failed.
    pub fn flush(&self) -> bool {
        self.log.flush()
    }
}

#[cfg(test)]
#[path = "packets_tests.rs"]
mod tests;
