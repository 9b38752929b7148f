//! Application layer: per-flow state machines that receive a connection's
//! reassembled bytes and produce records.
//!
//! A new flow starts with the [`detect::Classifier`], which looks at the first
//! bytes of each direction and hands the flow to the analyzer of the protocol
//! it recognises (on any port), or gives it up: a flow given up costs one
//! hash lookup per packet from then on. Analyzers hold no parsing logic of
//! their own: they frame the stream and call the pure parsers in
//! [`crate::parsers`].

pub mod browser;
pub mod cldap;
pub mod detect;
pub mod dhcp;
pub mod exchange;
pub mod framing;
pub mod http;
pub mod krb5;
pub mod ldap;
pub mod mail;
pub mod mdns;
pub mod nbns;
pub mod ntlm;
pub mod protocol;
pub mod raw;
pub mod rdp;
pub mod registry;
pub mod rpc;
pub mod smb;
pub mod tls;

pub use protocol::{EventRecord, Name, Role};
pub use registry::{Record, PROTOCOLS};

/// Direction of bytes within a connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Dir {
    /// From the client (the connection's initiator) to the server.
    ToServer = 0,
    /// From the server to the client.
    ToClient = 1,
}

impl Dir {
    pub fn index(self) -> usize {
        self as usize
    }
    pub fn other(self) -> Dir {
        match self {
            Dir::ToServer => Dir::ToClient,
            Dir::ToClient => Dir::ToServer,
        }
    }
}

/// An address and port.
pub type Endpoint = (std::net::IpAddr, u16);

/// A digest of wire bytes that analyzers compare instead of the bytes (a
/// repeated answer, a client's identity), keyed once per process: SipHash
/// resists forgery only under a secret key, and with a fixed one only its
/// 64-bit width would stand between an attacker and other bytes with the
/// digest of a message they expect (the real one then taken for a repeat,
/// or joined to their transaction).
pub fn wire_digest(bytes: &[u8]) -> u64 {
    use std::hash::BuildHasher;
    static KEY: std::sync::LazyLock<std::hash::RandomState> =
        std::sync::LazyLock::new(std::hash::RandomState::new);
    KEY.hash_one(bytes)
}

/// A record as an analyzer emitted it, with when and whose it is where
/// that is not the packet being processed and its flow.
#[derive(Debug, Clone, PartialEq)]
pub struct Emitted {
    pub record: Record,
    /// The time of an earlier packet that completed it ([`Ctx::emit_at`]).
    pub ts_us: Option<i64>,
    /// Nobody answered its exchange ([`Ctx::emit_lone_at`]): its envelope
    /// says one side alone sent it, whatever else the conversation held.
    pub lone: bool,
    /// Its exchange within a link-scoped conversation
    /// ([`Ctx::emit_between`]).
    pub between: Option<Between>,
}

/// Where a [`Ctx`] puts what its analyzer emits.
pub trait Emit {
    fn put(&mut self, e: Emitted);
}

/// Records with their time and exchange (UDP conversations).
impl Emit for Vec<Emitted> {
    fn put(&mut self, e: Emitted) {
        self.push(e);
    }
}

/// Records alone, in their flow's envelope at the current packet (TCP
/// connections, whose analyzers emit as the bytes complete a record).
impl Emit for Vec<Record> {
    fn put(&mut self, e: Emitted) {
        self.push(e.record);
    }
}

/// The two sides of one exchange within a link-scoped conversation
/// ([`protocol::Scope::Link`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Between {
    pub client: Endpoint,
    pub server: Endpoint,
    /// Both sides sent.
    pub two_way: bool,
    /// When the exchange began (part of its flow id).
    pub first_us: i64,
}

/// What an analyzer can see of its flow and hand back to it.
pub struct Ctx<'a> {
    /// Packet time of the packet being processed (µs since the epoch).
    pub ts_us: i64,
    /// The flow was picked up without its SYN, so the client was guessed.
    pub midstream: bool,
    records: &'a mut dyn Emit,
    anomalies: Option<&'a mut Anomalies>,
    /// How request/answer pairing went, per protocol (see [`Ctx::tally`]).
    tallies: Option<&'a mut Counters>,
    /// The source and destination of the datagram being processed.
    pub datagram: Option<(Endpoint, Endpoint)>,
    /// Whether the datagram being processed was taken by its receiver, as
    /// its checksum tells (always [`Trust::Taken`] for stream bytes).
    pub trust: Trust,
    /// Set by an analyzer that learned from the content that the side taken
    /// for the client is the server (only honoured for midstream flows and
    /// a conversation's first datagram).
    pub roles_reversed: bool,
}

impl<'a> Ctx<'a> {
    pub fn new(ts_us: i64, midstream: bool, records: &'a mut dyn Emit) -> Self {
        Ctx {
            ts_us,
            midstream,
            records,
            anomalies: None,
            tallies: None,
            datagram: None,
            trust: Trust::Taken,
            roles_reversed: false,
        }
    }

    /// Emits a record of a link-scoped conversation: the exchange between
    /// `b`'s endpoints that packets up to `ts_us` completed.
    pub fn emit_between(&mut self, ts_us: i64, b: Between, r: impl Into<Record>) {
        self.put(r.into(), Some(ts_us), false, Some(b));
    }

    /// Emits a record that an earlier packet, at `ts_us`, completed (a
    /// request whose answer never came is stamped with its own time).
    pub fn emit_at(&mut self, ts_us: i64, r: impl Into<Record>) {
        self.put(r.into(), Some(ts_us), false, None);
    }

    /// As [`Ctx::emit_at`], for a record whose exchange nobody answered
    /// (a request that timed out, an answer to no request): its envelope
    /// says one side alone sent it, whatever else the conversation held.
    pub fn emit_lone_at(&mut self, ts_us: i64, r: impl Into<Record>) {
        self.put(r.into(), Some(ts_us), true, None);
    }

    fn put(&mut self, record: Record, ts_us: Option<i64>, lone: bool, between: Option<Between>) {
        self.records.put(Emitted {
            record,
            ts_us,
            lone,
            between,
        });
    }

    /// Counts parse failures and resyncs in `anomalies` (the flow
    /// tables' counters).
    pub fn counting(mut self, anomalies: &'a mut Anomalies) -> Self {
        self.anomalies = Some(anomalies);
        self
    }

    /// Counts pairing outcomes in `tallies` (see [`Ctx::tally`]).
    pub fn tallying(mut self, tallies: &'a mut Counters) -> Self {
        self.tallies = Some(tallies);
        self
    }

    /// Counts one outcome of an analyzer's bounded state, such as
    /// `dhcp_unanswered` (a request whose answer never came) or
    /// `dhcp_evicted` (one given up to make room): `stats.transactions`.
    pub fn tally(&mut self, what: &'static str) {
        if let Some(t) = self.tallies.as_deref_mut() {
            t.count(what);
        }
    }

    pub fn emit(&mut self, r: impl Into<Record>) {
        self.put(r.into(), None, false, None);
    }

    /// A message of `protocol` could not be parsed (counted in `stats`,
    /// like Suricata's per-protocol anomaly counters).
    pub fn parse_error(&mut self, protocol: &'static str) {
        if let Some(a) = self.anomalies.as_deref_mut() {
            a.parse_errors.count(protocol);
        }
    }

    /// A datagram of `protocol` whose checksum was wrong was taken after
    /// all: its receiver answered it (`stats.checksums.vouched_udp`).
    pub fn vouched(&mut self, protocol: &'static str) {
        if let Some(a) = self.anomalies.as_deref_mut() {
            a.vouched.count(protocol);
        }
    }

    /// Framing of `protocol` found a message again after lost bytes.
    pub fn resynced(&mut self, protocol: &'static str) {
        if let Some(a) = self.anomalies.as_deref_mut() {
            a.resyncs.count(protocol);
        }
    }
}

/// What the analyzers count per protocol besides pairing outcomes:
/// messages that did not parse, and messages found again after a loss
/// (`stats.parse_errors`, `stats.resyncs`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Anomalies {
    pub parse_errors: Counters,
    pub resyncs: Counters,
    /// Datagrams with a wrong checksum that their answer showed were taken.
    pub vouched: Counters,
}

impl Anomalies {
    pub fn add(&mut self, o: &Anomalies) {
        self.parse_errors.add(&o.parse_errors);
        self.resyncs.add(&o.resyncs);
        self.vouched.add(&o.vouched);
    }
}

/// What a datagram's checksum says about whether its receiver took it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Trust {
    /// Correct, or not judged (`--checksums ignore`): taken.
    #[default]
    Taken,
    /// Left for the sender's card to fill, or absent: taken, unless the
    /// same sender shows correct checksums in the same exchange (a stack
    /// does not switch), which makes it a decoy.
    Unfilled,
    /// Wrong: its receiver dropped it, unless an answer shows it was taken
    /// ([`DatagramAnalyzer::answer_vouches`]).
    Wrong,
}

/// Counters by name: parse failures per protocol, pairing outcomes.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Counters(std::collections::BTreeMap<&'static str, u64>);

impl Counters {
    pub fn count(&mut self, protocol: &'static str) {
        *self.0.entry(protocol).or_default() += 1;
    }

    pub fn add(&mut self, o: &Counters) {
        for (p, n) in &o.0 {
            *self.0.entry(p).or_default() += n;
        }
    }

    pub fn get(&self, protocol: &str) -> u64 {
        self.0.get(protocol).copied().unwrap_or(0)
    }

    pub fn total(&self) -> u64 {
        self.0.values().sum()
    }

    pub fn to_json(&self) -> serde_json::Value {
        serde_json::json!(self.0)
    }
}

/// Whether an analyzer wants more of its flow.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Status {
    Continue,
    /// Nothing more to learn: the flow is bypassed from now on.
    Done,
}

/// A per-flow state machine fed in-order bytes.
pub trait Analyzer: Send {
    /// In-order bytes of one direction.
    fn data(&mut self, dir: Dir, data: &[u8], cx: &mut Ctx<'_>) -> Status;
    /// `len` bytes of one direction were lost to the capture.
    fn gap(&mut self, dir: Dir, len: u32, cx: &mut Ctx<'_>) -> Status;
    /// The flow ended (FIN, RST, timeout, eviction or end of input): emit
    /// what was seen of an unfinished exchange.
    fn end(&mut self, cx: &mut Ctx<'_>);
    /// A reassembly depth other than the configured one, for protocols
    /// whose analyzer skips payload by length and so stays cheap on long
    /// connections (SMB re-authenticates deep into a file transfer).
    fn depth(&self) -> Option<u32> {
        None
    }
    /// Bytes the analyzer holds in its buffers: the flow table keeps the sum
    /// over all connections under the memory cap.
    fn buffered(&self) -> usize {
        0
    }
}

/// A per-conversation state machine fed UDP datagrams. It lives as long
/// as its conversation (bounded in number and time by the flow table), so
/// it may pair requests with answers; whatever it holds must be bounded
/// by the analyzer itself.
pub trait DatagramAnalyzer: Send {
    /// One datagram's payload, from the client (`ToServer`) or the server.
    fn datagram(&mut self, dir: Dir, payload: &[u8], cx: &mut Ctx<'_>);
    /// Packet time passed `now` (µs): emit what waited too long for an answer.
    fn expire(&mut self, _now_us: i64, _cx: &mut Ctx<'_>) {}
    /// Until when (µs) something held may still be answered or retried:
    /// the conversation is not ended as idle before (it may still be
    /// evicted when the table is full).
    fn held_until(&self) -> Option<i64> {
        None
    }
    /// The conversation ended: emit whatever is still held.
    fn end(&mut self, cx: &mut Ctx<'_>);
    /// Whether datagrams with a wrong checksum are given to the analyzer
    /// too (with [`Trust::Wrong`]): one that pairs requests with answers
    /// takes such a request only once it is answered, since its receiver
    /// evidently took it. Others never see them.
    fn answer_vouches(&self) -> bool {
        false
    }
}

/// The deepest a stream is ever reassembled: offsets stay far from the
/// 2^31 wrap of relative sequence numbers.
pub const MAX_DEPTH: u32 = 1 << 30;

/// Creates the analyzer of each new flow.
pub trait AnalyzerFactory: Send + Sync {
    fn new_flow(&self, server_port: u16) -> Box<dyn Analyzer>;
}

/// The factory of the real analyzers: every flow starts with detection.
#[derive(Debug, Clone, Default)]
pub struct Analyzers;

impl AnalyzerFactory for Analyzers {
    fn new_flow(&self, server_port: u16) -> Box<dyn Analyzer> {
        Box::new(detect::Classifier::new(server_port))
    }
}

#[cfg(test)]
mod tests {
    /// The digest is SipHash under this process's key: the same bytes give
    /// the same digest, and not the one a fixed key (which an attacker
    /// knows) gives.
    #[test]
    fn wire_digest_is_keyed_per_process() {
        use std::hash::{BuildHasher, BuildHasherDefault, DefaultHasher};
        let bytes = b"\x80\x07\x85\x00\x00\x00\x00\x01 FILESRV01";
        assert_eq!(super::wire_digest(bytes), super::wire_digest(bytes));
        let fixed = BuildHasherDefault::<DefaultHasher>::default().hash_one(&bytes[..]);
        assert_ne!(super::wire_digest(bytes), fixed);
        assert_ne!(super::wire_digest(bytes), super::wire_digest(&bytes[1..]));
    }
}
