//! UDP conversations: datagrams in, records out, through the same
//! [`FlowRecord`] envelope as TCP streams.
//!
//! A datagram that no datagram protocol of the registry claims costs a
//! lookup and a counter: no conversation, no allocation. A claimed one
//! opens a conversation (keyed like a TCP flow) whose analyzer lives until
//! the conversation has been idle for [`DatagramConfig::idle_timeout_us`],
//! so it can pair requests with answers. At most
//! [`DatagramConfig::max_conversations`] are held; the idle-most are evicted
//! beyond. Timeouts run on packet time, like the TCP table's.

use std::collections::HashMap;
use std::net::IpAddr;

use super::{flow_id, oldest, FlowKey, FlowRecord};
use crate::analyzers::protocol::{Carrier, Scope};
use crate::analyzers::registry;
use crate::analyzers::{
    Anomalies, Between, Counters, Ctx, DatagramAnalyzer, Dir, Emitted, Endpoint, Trust,
};
use crate::decode::{Checksum, Datagram, Transport, UdpDatagram, Vlans};
use crate::events::FlowInfo;

/// Default bounds of the conversation table.
pub mod defaults {
    /// Conversations held at once.
    pub const MAX_CONVERSATIONS: usize = 65_536;
    /// Seconds (packet time) after which a conversation without datagrams
    /// ends (Zeek's `udp_inactivity_timeout`).
    pub const IDLE_TIMEOUT_SECS: u64 = 60;
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DatagramConfig {
    pub max_conversations: usize,
    pub idle_timeout_us: i64,
}

impl Default for DatagramConfig {
    fn default() -> Self {
        DatagramConfig {
            max_conversations: defaults::MAX_CONVERSATIONS,
            idle_timeout_us: defaults::IDLE_TIMEOUT_SECS as i64 * 1_000_000,
        }
    }
}

#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct DatagramStats {
    /// Datagrams a protocol took.
    pub datagrams: u64,
    /// Datagrams no protocol claimed (nothing was kept for them).
    pub ignored: u64,
    pub conversations: u64,
    pub timed_out: u64,
    pub evicted: u64,
    /// Datagrams dropped for a checksum their receiver would reject.
    pub bad_checksum: u64,
    /// Datagrams taken with a checksum left for the sender's card to fill.
    pub unfilled_checksum: u64,
}

impl DatagramStats {
    pub fn add(&mut self, o: &DatagramStats) {
        self.datagrams += o.datagrams;
        self.ignored += o.ignored;
        self.conversations += o.conversations;
        self.timed_out += o.timed_out;
        self.evicted += o.evicted;
        self.bad_checksum += o.bad_checksum;
        self.unfilled_checksum += o.unfilled_checksum;
    }

    pub fn to_json(&self, active: usize) -> serde_json::Value {
        serde_json::json!({
            "datagrams": self.datagrams, "ignored": self.ignored,
            "conversations": self.conversations, "active": active,
            "timed_out": self.timed_out, "evicted": self.evicted,
            "bad_checksum": self.bad_checksum, "unfilled_checksum": self.unfilled_checksum,
        })
    }
}

/// The endpoints that key a datagram's conversation (and shard it over
/// workers): its own, or for a link-scoped protocol
/// ([`crate::analyzers::protocol::Scope::Link`]) the protocol alone, so
/// that every exchange of the protocol on the link (client to server,
/// server to client, relay to server) meets one analyzer.
pub fn conversation_endpoints<P>(d: &Datagram<P>) -> (Endpoint, Endpoint) {
    endpoints_between((d.src, d.sport), (d.dst, d.dport))
}

/// [`conversation_endpoints`] of a datagram from `src` to `dst` (or of an
/// event's flow).
pub fn endpoints_between(src: Endpoint, dst: Endpoint) -> (Endpoint, Endpoint) {
    match registry::link_scope(src.1).or(registry::link_scope(dst.1)) {
        Some(port) => {
            let any = match src.0 {
                IpAddr::V4(_) => IpAddr::V4(std::net::Ipv4Addr::UNSPECIFIED),
                IpAddr::V6(_) => IpAddr::V6(std::net::Ipv6Addr::UNSPECIFIED),
            };
            ((any, port), (any, port))
        }
        None => (src, dst),
    }
}

struct Conversation {
    id: u64,
    client: (IpAddr, u16),
    server: (IpAddr, u16),
    vlans: Vlans,
    /// The live interface of its first datagram.
    iface: Option<u8>,
    last_us: i64,
    /// No datagram has been analysed yet.
    fresh: bool,
    /// Directions that sent datagrams, one bit each (client 1, server 2).
    dirs_seen: u8,
    /// Directions that sent a correct checksum, one bit each.
    checked: u8,
    /// Link-scoped: many senders share the conversation.
    link: bool,
    analyzer: Box<dyn DatagramAnalyzer>,
}

impl Conversation {
    /// Whether the datagram goes to the analyzer. A sender that filled in
    /// its checksums does not stop doing so (as for TCP): an unfilled one
    /// after a correct one is a decoy. A link-scoped conversation has many
    /// senders; its analyzer judges per exchange. A datagram its receiver
    /// dropped goes only to an analyzer that pairs it with an answer, and
    /// tells nothing of the conversation.
    fn takes(
        &mut self,
        d: &UdpDatagram<'_>,
        dir: Dir,
        trust: Trust,
        stats: &mut DatagramStats,
    ) -> bool {
        let side = 1 << dir.index();
        match d.checksum {
            Checksum::Unfilled(_) if !self.link && self.checked & side != 0 => {
                stats.bad_checksum += 1;
                return false;
            }
            Checksum::Unfilled(_) => stats.unfilled_checksum += 1,
            Checksum::Pending(_) if trust == Trust::Taken => self.checked |= side,
            _ => {}
        }
        trust != Trust::Wrong || self.analyzer.answer_vouches()
    }

    fn info(&self) -> FlowInfo {
        FlowInfo {
            overlap: None,
            flow_id: self.id,
            transport: Transport::Udp,
            src_ip: self.client.0,
            src_port: self.client.1,
            dest_ip: self.server.0,
            dest_port: self.server.1,
            vlans: self.vlans,
            iface: self.iface,
            two_way: self.dirs_seen == 3,
            handshake: self.dirs_seen == 3,
        }
    }

    /// The envelope of one exchange of a link-scoped conversation.
    fn info_between(&self, b: &Between) -> FlowInfo {
        FlowInfo {
            flow_id: flow_id(b.client, b.server, self.vlans, b.first_us),
            src_ip: b.client.0,
            src_port: b.client.1,
            dest_ip: b.server.0,
            dest_port: b.server.1,
            two_way: b.two_way,
            handshake: b.two_way,
            ..self.info()
        }
    }
}

pub struct DatagramTable {
    cfg: DatagramConfig,
    conversations: HashMap<FlowKey, Box<Conversation>>,
    records: Vec<Emitted>,
    pub stats: DatagramStats,
    pub anomalies: Anomalies,
    /// Pairing outcomes of the analyzers (`Ctx::tally`).
    pub transactions: Counters,
}

impl DatagramTable {
    pub fn new(cfg: DatagramConfig) -> Self {
        DatagramTable {
            cfg,
            conversations: HashMap::new(),
            records: Vec::new(),
            stats: DatagramStats::default(),
            anomalies: Anomalies::default(),
            transactions: Counters::default(),
        }
    }

    pub fn len(&self) -> usize {
        self.conversations.len()
    }

    pub fn is_empty(&self) -> bool {
        self.conversations.is_empty()
    }

    /// Processes one datagram; records found are passed to `out`.
    pub fn datagram<O: FnMut(FlowRecord)>(&mut self, d: &UdpDatagram<'_>, out: &mut O) {
        let trust = match d.checksum {
            // Offloaded by the sender (a capture on the sending host):
            // taken below unless its sender showed correct checksums.
            Checksum::Unfilled(_) => Trust::Unfilled,
            c if !c.accepts(d.payload) => {
                self.stats.bad_checksum += 1;
                Trust::Wrong
            }
            _ => Trust::Taken,
        };
        let (src, dst) = conversation_endpoints(d);
        let key = FlowKey::new(src, dst, d.vlans);
        if !self.conversations.contains_key(&key) && !self.open(key, (src, dst), d, trust, out) {
            return;
        }
        let Some(c) = self.conversations.get_mut(&key) else {
            return;
        };
        let dir = if src == c.client {
            Dir::ToServer
        } else {
            Dir::ToClient
        };
        if !c.takes(d, dir, trust, &mut self.stats) {
            return;
        }
        let taken = trust != Trust::Wrong;
        let first = c.fresh && taken;
        if taken {
            c.fresh = false;
            self.stats.datagrams += 1;
            c.last_us = d.ts_us;
            c.dirs_seen |= 1 << dir.index();
        }
        let mut cx = Ctx::new(d.ts_us, false, &mut self.records)
            .counting(&mut self.anomalies)
            .tallying(&mut self.transactions);
        cx.datagram = Some(((d.src, d.sport), (d.dst, d.dport)));
        cx.trust = trust;
        c.analyzer.datagram(dir, d.payload, &mut cx);
        // The analyzer found the first datagram to be an answer: its
        // sender is the server.
        if first && cx.roles_reversed {
            std::mem::swap(&mut c.client, &mut c.server);
            c.dirs_seen = ((c.dirs_seen & 1) << 1) | (c.dirs_seen >> 1);
        }
        Self::hand_out(&mut self.records, c, d.ts_us, out);
    }

    /// A new conversation for a datagram of an analysed protocol; false
    /// (and nothing kept) for the others, and for a datagram its receiver
    /// dropped unless the protocol's answer may vouch for it.
    fn open<O: FnMut(FlowRecord)>(
        &mut self,
        key: FlowKey,
        (src, dst): (Endpoint, Endpoint),
        d: &UdpDatagram<'_>,
        trust: Trust,
        out: &mut O,
    ) -> bool {
        let Some((ports, new, scope)) = registry::datagram_protocol(d.sport, d.dport, d.payload)
            .and_then(|p| match p.carrier {
                Carrier::Datagram {
                    ports, new, scope, ..
                } => Some((ports, new, scope)),
                Carrier::Stream { .. } => None,
            })
        else {
            if trust != Trust::Wrong {
                self.stats.ignored += 1;
            }
            return false;
        };
        let analyzer = new();
        if trust == Trust::Wrong && !analyzer.answer_vouches() {
            return false;
        }
        if self.conversations.len() >= self.cfg.max_conversations {
            self.make_room(d.ts_us, out);
        }
        // (A link-scoped conversation's endpoints are its ports alone;
        // each record states its own, `Ctx::emit_between`.)
        // The client sent the first datagram, unless it came from the
        // protocol's port to another (an answer whose question was missed).
        let answer_first = ports.contains(&d.sport) && !ports.contains(&d.dport);
        let (client, server) = if answer_first { (dst, src) } else { (src, dst) };
        self.stats.conversations += 1;
        self.conversations.insert(
            key,
            Box::new(Conversation {
                id: flow_id(client, server, d.vlans, d.ts_us),
                client,
                server,
                vlans: d.vlans,
                iface: d.iface,
                last_us: d.ts_us,
                fresh: true,
                dirs_seen: 0,
                checked: 0,
                link: scope == Scope::Link,
                analyzer,
            }),
        );
        true
    }

    /// Passes the records on in the conversation's envelope (or their
    /// exchange's), at `ts_us` unless the analyzer gave an earlier time.
    fn hand_out<O: FnMut(FlowRecord)>(
        records: &mut Vec<Emitted>,
        c: &Conversation,
        ts_us: i64,
        out: &mut O,
    ) {
        if records.is_empty() {
            return;
        }
        let info = c.info();
        for e in records.drain(..) {
            let mut flow = match &e.between {
                Some(b) => c.info_between(b),
                None => info.clone(),
            };
            if e.lone {
                // Answered is judged per exchange, not per conversation.
                flow.two_way = false;
                flow.handshake = false;
            }
            out(FlowRecord {
                ts_us: e.ts_us.unwrap_or(ts_us),
                flow,
                record: e.record,
            });
        }
    }

    /// Packet time is `now_us`: analyzers emit what waited too long, and
    /// conversations idle for longer than the timeout end.
    pub fn expire<O: FnMut(FlowRecord)>(&mut self, now_us: i64, out: &mut O) {
        self.end_idle(now_us, out);
        let all = self
            .conversations
            .iter()
            .map(|(k, c)| (c.last_us, c.id, *k));
        for (_, _, k) in oldest(all, None) {
            if let Some(c) = self.conversations.get_mut(&k) {
                let mut cx =
                    Ctx::new(now_us, false, &mut self.records).tallying(&mut self.transactions);
                c.analyzer.expire(now_us, &mut cx);
                Self::hand_out(&mut self.records, c, now_us, out);
            }
        }
    }

    /// Conversations idle for longer than the timeout end, oldest first.
    fn end_idle<O: FnMut(FlowRecord)>(&mut self, now_us: i64, out: &mut O) {
        let timeout = self.cfg.idle_timeout_us;
        let idle = self
            .conversations
            .iter()
            .filter(|(_, c)| {
                now_us - c.last_us > timeout && c.analyzer.held_until().is_none_or(|t| now_us > t)
            })
            .map(|(k, c)| (c.last_us, c.id, *k));
        for (_, _, k) in oldest(idle, None) {
            if let Some(c) = self.conversations.remove(&k) {
                self.stats.timed_out += 1;
                self.end(c, now_us, out);
            }
        }
    }

    fn end<O: FnMut(FlowRecord)>(&mut self, mut c: Box<Conversation>, ts_us: i64, out: &mut O) {
        let mut cx = Ctx::new(ts_us, false, &mut self.records).tallying(&mut self.transactions);
        c.analyzer.end(&mut cx);
        Self::hand_out(&mut self.records, &c, ts_us, out);
    }

    /// The table is full: end what timed out, then evict the idle-most
    /// sixteenth. (The analyzers' own timeouts wait for the next tick.)
    fn make_room<O: FnMut(FlowRecord)>(&mut self, now_us: i64, out: &mut O) {
        self.end_idle(now_us, out);
        if self.conversations.len() < self.cfg.max_conversations {
            return;
        }
        let n = (self.cfg.max_conversations / 16).max(1);
        let ages = self
            .conversations
            .iter()
            .map(|(k, c)| (c.last_us, c.id, *k));
        for (_, _, k) in oldest(ages, Some(n)) {
            if let Some(c) = self.conversations.remove(&k) {
                self.stats.evicted += 1;
                let last = c.last_us;
                self.end(c, last, out);
            }
        }
    }

    /// End of input: every conversation ends, in a stable order.
    pub fn finish<O: FnMut(FlowRecord)>(&mut self, out: &mut O) {
        let all = self
            .conversations
            .iter()
            .map(|(k, c)| (c.last_us, c.id, *k));
        for (last, _, k) in oldest(all, None) {
            if let Some(c) = self.conversations.remove(&k) {
                self.end(c, last, out);
            }
        }
    }
}

#[cfg(test)]
#[path = "datagram_tests.rs"]
mod tests;
