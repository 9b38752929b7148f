//! DHCPv4 (UDP 67/68) and DHCPv6 (UDP 546/547): a client names itself
//! (option 12, the client FQDN of option 81 or 39) while it asks for an
//! address, usually from 0.0.0.0 or a link-local address. The name belongs
//! to the address its server then acknowledges, so the messages of one
//! transaction (transaction id and client hardware address or DUID) are
//! gathered into one `dhcp` record, Zeek's dhcp.log way, with Suricata's
//! field names: written when the server acknowledges (ACK, NAK, Reply), at
//! once for a release or decline, else when no retransmission of the
//! client's can come any more ([`Txn::deadline`]): [`ANSWER_TIMEOUT_US`]
//! after the last message, or longer for a client whose back-off has grown
//! past it.
//!
//! The conversation spans the link ([`Scope::Link`]): a client asks from
//! 0.0.0.0 to the broadcast address and is answered at the address it is
//! given, so the two halves of a transaction share no endpoint.

use std::collections::VecDeque;
use std::net::IpAddr;

use serde::Serialize;

use super::protocol::{Carrier, EventRecord, Name, Protocol, Role, Scope};
use super::{Between, Ctx, DatagramAnalyzer, Dir, Endpoint, Trust};
use crate::parsers::dhcp::{self, v6};
use crate::parsers::text;

pub const V4: Protocol = Protocol {
    name: "dhcp",
    carrier: Carrier::Datagram {
        ports: &[67, 68],
        probe: dhcp::looks_like_v4,
        anywhere: None,
        new: || Box::new(DhcpAnalyzer::new(false)),
        scope: Scope::Link,
    },
};

pub const V6: Protocol = Protocol {
    name: "dhcpv6",
    carrier: Carrier::Datagram {
        ports: &[546, 547],
        probe: dhcp::looks_like_v6,
        anywhere: None,
        new: || Box::new(DhcpAnalyzer::new(true)),
        scope: Scope::Link,
    },
};

/// How long a transaction waits for its server's answer after its last
/// message (Zeek's `DHCP::max_txid_watch_time` is 30 s).
pub const ANSWER_TIMEOUT_US: i64 = 30_000_000;
/// The longest a client waits between two retransmissions of a message,
/// from its type: RFC 2131 §4.1 (64 s) and RFC 8415 §7.6 (SOL_MAX_RT and
/// INF_MAX_RT 3600 s, REN_MAX_RT and REB_MAX_RT 600 s, REQ_MAX_RT 30 s,
/// CNF_MAX_RT 4 s; Release and Decline are retried every 1 s doubling, 4
/// or 5 times).
fn max_retransmission_us(msg: &Message<'_>) -> i64 {
    const S: i64 = 1_000_000;
    match msg {
        Message::V4(_) => 64 * S,
        Message::V6(m) => match m.msg_type {
            v6::SOLICIT | v6::INFORMATION_REQUEST => 3600 * S,
            v6::RENEW | v6::REBIND => 600 * S,
            v6::REQUEST => 30 * S,
            v6::CONFIRM => 4 * S,
            _ => 16 * S,
        },
    }
}

/// Transactions held per link; the oldest is written beyond.
pub const MAX_PENDING: usize = 1024;
/// Client messages with a wrong checksum held per transaction until the
/// server answers, the largest held, and all held per link.
const MAX_HELD: usize = 4;
const MAX_HELD_MESSAGE: usize = 1500;
const MAX_HELD_BYTES: usize = 256 << 10;
/// Message types listed per transaction (a client retrying keeps adding).
const MAX_MSG_TYPES: usize = 16;

struct Txn {
    /// Transaction id and a hash of the client's hardware address or DUID.
    key: (u32, u64),
    first_us: i64,
    last_us: i64,
    /// The client's endpoint: the source of its first message, else the
    /// destination of the server's.
    client: Endpoint,
    /// The server's endpoint: the source of its first message, else where
    /// the client first sent (the server, or a broadcast address).
    server: Endpoint,
    /// Sides heard from: client 1, server 2.
    sides: u8,
    /// The client's latest message, and the time between it and the one
    /// before (0 until it has sent twice).
    client_sent: bool,
    client_last_us: i64,
    client_gap_us: i64,
    /// The longest back-off of the client's latest message type.
    max_rt_us: i64,
    /// The client sent with correct checksums: its messages with unfilled
    /// ones are decoys.
    client_checked: bool,
    /// The client's fields came from messages with unfilled checksums.
    client_unfilled: bool,
    /// Client messages with a wrong checksum, taken if the server answers.
    held: Vec<Held>,
    record: DhcpRecord,
}

/// A client message its receiver may have dropped (a wrong checksum).
struct Held {
    from: (Endpoint, Endpoint),
    bytes: Vec<u8>,
}

impl Txn {
    fn between(&self) -> Between {
        Between {
            client: self.client,
            server: self.server,
            two_way: self.sides == 3,
            first_us: self.first_us,
        }
    }

    /// When the transaction is over without an answer: 30 s after its
    /// last message, or, while only the client has spoken, after the
    /// longest its next retransmission may take: its back-off doubles the
    /// time between tries (RFC 8415 §15: RT = 2 RTprev, randomised by
    /// ±10%; RFC 2131 §4.1 alike) up to its message type's maximum. A
    /// client backing off past 30 s stays one transaction.
    fn deadline(&self) -> i64 {
        let wait = if self.sides & 2 == 0 && self.client_gap_us > 0 {
            let next = self.client_gap_us.saturating_mul(22) / 10;
            let most = self.max_rt_us.saturating_mul(11) / 10;
            next.min(most).max(ANSWER_TIMEOUT_US)
        } else {
            ANSWER_TIMEOUT_US
        };
        self.last_us.saturating_add(wait)
    }

    fn outcome(&self) -> &'static str {
        if self.sides & 2 != 0 {
            "dhcp_answered"
        } else {
            "dhcp_unanswered"
        }
    }
}

pub struct DhcpAnalyzer {
    /// DHCPv6 (UDP 546/547) rather than DHCPv4.
    v6: bool,
    pending: VecDeque<Txn>,
}

/// One parsed message.
enum Message<'a> {
    V4(dhcp::V4<'a>),
    V6(dhcp::V6<'a>),
}

impl Message<'_> {
    fn sent_by_server(&self) -> bool {
        match self {
            Message::V4(m) => m.op == dhcp::BOOTREPLY,
            Message::V6(m) => matches!(m.msg_type, v6::ADVERTISE | v6::REPLY | v6::RECONFIGURE),
        }
    }

    /// Transaction id and the client's identity.
    fn key(&self) -> (u32, u64) {
        match self {
            Message::V4(m) => (m.xid, super::wire_digest(m.chaddr)),
            Message::V6(m) => (m.xid, super::wire_digest(m.client_duid.unwrap_or_default())),
        }
    }

    /// Whether the transaction is over with this message.
    fn last(&self) -> bool {
        match self {
            Message::V4(m) => matches!(
                m.msg_type,
                Some(dhcp::ACK | dhcp::NAK | dhcp::RELEASE | dhcp::DECLINE)
            ),
            Message::V6(m) => matches!(m.msg_type, v6::REPLY | v6::RECONFIGURE),
        }
    }

    /// `dhcp_type` as Suricata names it.
    fn kind(&self) -> &'static str {
        match self {
            Message::V4(m) => match m.msg_type {
                Some(dhcp::DISCOVER) => "discover",
                Some(dhcp::OFFER) => "offer",
                Some(dhcp::REQUEST) => "request",
                Some(dhcp::DECLINE) => "decline",
                Some(dhcp::ACK) => "ack",
                Some(dhcp::NAK) => "nak",
                Some(dhcp::RELEASE) => "release",
                Some(dhcp::INFORM) => "inform",
                None => "bootp",
                Some(_) => "other",
            },
            Message::V6(m) => match m.msg_type {
                v6::SOLICIT => "solicit",
                v6::ADVERTISE => "advertise",
                v6::REQUEST => "request",
                v6::CONFIRM => "confirm",
                v6::RENEW => "renew",
                v6::REBIND => "rebind",
                v6::REPLY => "reply",
                v6::RELEASE => "release",
                v6::DECLINE => "decline",
                v6::RECONFIGURE => "reconfigure",
                _ => "information_request",
            },
        }
    }

    /// Adds what the message says to its transaction's record: the first
    /// value of each field stays. Names come from the client's own
    /// messages only: a server's answer (a lone one may be forged) cannot
    /// name the host it addresses.
    fn fill(&self, r: &mut DhcpRecord) {
        let from_server = self.sent_by_server();
        match self {
            Message::V4(m) => {
                r.version = 4;
                r.id = m.xid;
                if m.htype == 1 && m.chaddr.len() == 6 {
                    r.client_mac.get_or_insert_with(|| hex(m.chaddr, ":"));
                }
                if !from_server {
                    if let Some(h) = m.hostname.as_deref().and_then(hostname) {
                        r.hostname.get_or_insert(h);
                    }
                    if let Some(f) = m.fqdn.and_then(|f| f.text()).filter(|f| !f.is_empty()) {
                        r.client_fqdn.get_or_insert(f);
                    }
                }
                if let Some(v) = m.vendor_class.and_then(name) {
                    r.vendor_class_identifier.get_or_insert(v);
                }
                if let Some(a) = m.giaddr {
                    r.relay_ip.get_or_insert(a.into());
                }
                if from_server {
                    if let Some(a) = m.server_id {
                        r.server_id.get_or_insert(a.into());
                    }
                } else {
                    if let Some(a) = m.ciaddr {
                        r.client_ip.get_or_insert(a.into());
                    }
                    if let Some(a) = m.requested_ip {
                        r.requested_ip.get_or_insert(a.into());
                    }
                }
                match m.msg_type {
                    Some(dhcp::OFFER) => r.offered_ip = m.yiaddr.map(Into::into),
                    Some(dhcp::ACK) => {
                        r.assigned_ip = m.yiaddr.map(Into::into);
                        r.lease_time = m.lease_time;
                    }
                    _ => {}
                }
            }
            Message::V6(m) => {
                r.version = 6;
                r.id = m.xid;
                if let Some(d) = m.client_duid {
                    r.client_duid.get_or_insert_with(|| hex(d, ""));
                    if let Some(a) = dhcp::duid_mac(d) {
                        r.client_mac.get_or_insert_with(|| hex(a, ":"));
                    }
                }
                let fqdn = m.fqdn.filter(|_| !from_server).and_then(|f| f.text());
                if let Some(f) = fqdn.filter(|f| !f.is_empty()) {
                    r.client_fqdn.get_or_insert(f);
                }
                if let Some(v) = m.vendor_class.and_then(name) {
                    r.vendor_class_identifier.get_or_insert(v);
                }
                let first = m.addresses.first().copied().map(IpAddr::from);
                match m.msg_type {
                    v6::ADVERTISE => r.offered_ip = first,
                    v6::REPLY if first.is_some() => r.assigned_ip = first,
                    _ if !from_server => {
                        if let Some(a) = first {
                            r.requested_ip.get_or_insert(a);
                        }
                    }
                    _ => {}
                }
            }
        }
    }
}

fn hex(b: &[u8], sep: &str) -> String {
    let mut s = String::with_capacity(b.len() * 3);
    for (i, x) in b.iter().enumerate() {
        if i > 0 {
            s.push_str(sep);
        }
        s.push_str(&format!("{x:02x}"));
    }
    s
}

/// Option 12 as a DHCP server records it: up to the first NUL (dnsmasq
/// and ISC dhcpd stop there, so the lease carries what comes before).
fn hostname(b: &[u8]) -> Option<String> {
    let end = memchr::memchr(0, b).unwrap_or(b.len());
    name(b.get(..end).unwrap_or(b))
}

fn name(b: &[u8]) -> Option<String> {
    let s = text::oem(b);
    let t = s.trim_matches(|c: char| c == '\0' || c.is_whitespace());
    (!t.is_empty()).then(|| t.to_owned())
}

impl DhcpAnalyzer {
    pub fn new(v6: bool) -> Self {
        DhcpAnalyzer {
            v6,
            pending: VecDeque::new(),
        }
    }

    fn protocol(&self) -> &'static str {
        if self.v6 {
            V6.name
        } else {
            V4.name
        }
    }

    /// One message, as its receiver took it ([`Ctx::trust`]): a server's
    /// answer with a wrong checksum never reached its client; a client's
    /// waits for the server's answer; one with an unfilled checksum is a
    /// decoy once the client showed correct ones.
    fn take(&mut self, msg: &Message<'_>, payload: &[u8], cx: &mut Ctx<'_>) {
        let from_server = msg.sent_by_server();
        let Some(from) = cx.datagram else {
            return;
        };
        if from_server && cx.trust == Trust::Wrong {
            return;
        }
        let now = cx.ts_us;
        // Summed only for a message that may be held (rare): the common
        // path stays one transaction lookup.
        let held_bytes: usize = if cx.trust == Trust::Wrong {
            let held = self.pending.iter().flat_map(|t| &t.held);
            held.map(|h| h.bytes.len()).sum()
        } else {
            0
        };
        let (protocol, i) = (self.protocol(), self.open(msg, from, cx));
        let Some(t) = self.pending.get_mut(i) else {
            return;
        };
        t.heard(msg, now);
        if from_server {
            // The server answers what it took.
            for h in std::mem::take(&mut t.held) {
                if let Ok(m) = parse(matches!(msg, Message::V6(_)), &h.bytes) {
                    cx.vouched(protocol);
                    t.apply(&m, h.from);
                }
            }
        } else {
            match cx.trust {
                Trust::Taken => {
                    if t.client_unfilled {
                        // Decoys came first: what they said goes.
                        t.record.forget_client();
                        t.sides &= !1;
                        t.client_unfilled = false;
                    }
                    t.client_checked = true;
                    t.held.clear();
                }
                Trust::Unfilled if t.client_checked => return,
                Trust::Unfilled => t.client_unfilled = true,
                Trust::Wrong => {
                    let room = t.held.len() < MAX_HELD
                        && payload.len() <= MAX_HELD_MESSAGE
                        && held_bytes + payload.len() <= MAX_HELD_BYTES;
                    if room && !t.client_checked {
                        t.held.push(Held {
                            from,
                            bytes: payload.to_vec(),
                        });
                    }
                    return;
                }
            }
        }
        t.apply(msg, from);
        if msg.last() {
            if let Some(t) = self.pending.remove(i) {
                finish(t, now, cx);
            }
        }
    }

    /// The index of the message's transaction, begun if new (the oldest
    /// is written out beyond [`MAX_PENDING`]).
    fn open(
        &mut self,
        msg: &Message<'_>,
        (src, dst): (Endpoint, Endpoint),
        cx: &mut Ctx<'_>,
    ) -> usize {
        let key = msg.key();
        if let Some(i) = self.pending.iter().position(|t| t.key == key) {
            return i;
        }
        if self.pending.len() >= MAX_PENDING {
            if let Some(t) = self.pending.pop_front() {
                cx.tally("dhcp_evicted");
                let last = t.last_us;
                finish_quietly(t, last, cx);
            }
        }
        let now = cx.ts_us;
        let (client, server) = if msg.sent_by_server() {
            (dst, src)
        } else {
            (src, dst)
        };
        self.pending.push_back(Txn {
            key,
            first_us: now,
            last_us: now,
            client,
            server,
            sides: 0,
            client_sent: false,
            client_last_us: now,
            client_gap_us: 0,
            max_rt_us: max_retransmission_us(msg),
            client_checked: false,
            client_unfilled: false,
            held: Vec::new(),
            record: DhcpRecord::default(),
        });
        self.pending.len() - 1
    }
}

impl Txn {
    /// A message of the transaction was sent at `now` (taken or not): the
    /// client's back-off is timed by every try.
    fn heard(&mut self, msg: &Message<'_>, now: i64) {
        self.last_us = now;
        if !msg.sent_by_server() {
            if self.client_sent {
                self.client_gap_us = now.saturating_sub(self.client_last_us);
            }
            self.client_sent = true;
            self.client_last_us = now;
            self.max_rt_us = max_retransmission_us(msg);
        }
    }

    /// Adds a message its receiver took to the record.
    fn apply(&mut self, msg: &Message<'_>, (src, _): (Endpoint, Endpoint)) {
        let from_server = msg.sent_by_server();
        let side = if from_server { 2 } else { 1 };
        if self.sides & side == 0 {
            // The first message of each side states its endpoint.
            if from_server {
                self.server = src;
            } else {
                self.client = src;
            }
            self.sides |= side;
        }
        if self.record.msg_types.len() < MAX_MSG_TYPES {
            self.record.msg_types.push(msg.kind());
        }
        // EVE's per-message keys describe the message that came last.
        self.record.dhcp_type = msg.kind();
        self.record.kind = if from_server { "reply" } else { "request" };
        msg.fill(&mut self.record);
    }
}

fn parse(v6: bool, payload: &[u8]) -> Result<Message<'_>, dhcp::DhcpError> {
    if v6 {
        dhcp::parse_v6(payload).map(Message::V6)
    } else {
        dhcp::parse_v4(payload).map(Message::V4)
    }
}

/// Writes a finished transaction, unless nothing of it was taken (only
/// client messages with wrong checksums that no answer vouched for).
fn finish(t: Txn, ts_us: i64, cx: &mut Ctx<'_>) {
    if t.sides == 0 {
        return;
    }
    cx.tally(t.outcome());
    cx.emit_between(ts_us, t.between(), t.record);
}

/// [`finish`] for a transaction written out early (evicted): its outcome
/// was tallied by the caller.
fn finish_quietly(t: Txn, ts_us: i64, cx: &mut Ctx<'_>) {
    if t.sides != 0 {
        cx.emit_between(ts_us, t.between(), t.record);
    }
}

impl DatagramAnalyzer for DhcpAnalyzer {
    fn datagram(&mut self, _dir: Dir, payload: &[u8], cx: &mut Ctx<'_>) {
        // Direction comes from the message (BOOTREPLY, a server's type),
        // not from the conversation, which spans every host on the link.
        self.expire(cx.ts_us, cx);
        let name = self.protocol();
        let msg = match parse(self.v6, payload) {
            Ok(m) => m,
            // Another message type on the port (a DHCPv6 leasequery, a
            // BOOTP message without the cookie): nothing to read.
            Err(dhcp::DhcpError::NotDhcp) => return,
            // Garbage its receiver dropped anyway is not counted.
            Err(_) if cx.trust == Trust::Wrong => return,
            Err(_) => return cx.parse_error(name),
        };
        if matches!(&msg, Message::V4(m) if m.bad_options > 0) && cx.trust != Trust::Wrong {
            // Read all the same, as a server would; counted.
            cx.parse_error(name);
        }
        self.take(&msg, payload, cx);
    }

    fn expire(&mut self, now_us: i64, cx: &mut Ctx<'_>) {
        // Deadlines differ per transaction: every one is looked at, in
        // the order they began.
        if !self.pending.iter().any(|t| now_us > t.deadline()) {
            return;
        }
        let (over, waiting): (VecDeque<Txn>, VecDeque<Txn>) = std::mem::take(&mut self.pending)
            .into_iter()
            .partition(|t| now_us > t.deadline());
        self.pending = waiting;
        for t in over {
            let last = t.last_us;
            finish(t, last, cx);
        }
    }

    fn answer_vouches(&self) -> bool {
        true
    }

    fn held_until(&self) -> Option<i64> {
        self.pending.iter().map(Txn::deadline).max()
    }

    fn end(&mut self, cx: &mut Ctx<'_>) {
        for t in self.pending.drain(..) {
            let last = t.last_us;
            finish(t, last, cx);
        }
    }
}

/// One DHCP transaction: what the client said of itself and what its
/// server gave it.
#[serde_with::skip_serializing_none]
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize)]
pub struct DhcpRecord {
    /// 4 or 6.
    pub version: u8,
    /// The transaction id.
    pub id: u32,
    /// EVE's `type`: whether the last message came from the client
    /// (`request`) or the server (`reply`).
    #[serde(rename = "type")]
    pub kind: &'static str,
    /// EVE's `dhcp_type`: the last message's type (`ack`, `reply`, ...).
    pub dhcp_type: &'static str,
    /// The message types seen, in order (`discover`, `offer`, ...).
    pub msg_types: Vec<&'static str>,
    pub client_mac: Option<String>,
    /// DHCPv6 client DUID, hexadecimal.
    pub client_duid: Option<String>,
    /// Option 12.
    pub hostname: Option<String>,
    /// Option 81 (v4) or 39 (v6), without the root's trailing dot.
    pub client_fqdn: Option<String>,
    pub vendor_class_identifier: Option<String>,
    /// The client's own address (ciaddr: renewing, informing).
    pub client_ip: Option<IpAddr>,
    /// Option 50, or a DHCPv6 client's IAADDR hint.
    pub requested_ip: Option<IpAddr>,
    /// yiaddr of the OFFER, or the Advertise's IAADDR.
    pub offered_ip: Option<IpAddr>,
    /// yiaddr of the ACK, or the Reply's IAADDR: the lease.
    pub assigned_ip: Option<IpAddr>,
    pub lease_time: Option<u32>,
    /// Option 54.
    pub server_id: Option<IpAddr>,
    /// giaddr.
    pub relay_ip: Option<IpAddr>,
}

impl DhcpRecord {
    /// Forgets what the client's messages said (decoys that came first).
    fn forget_client(&mut self) {
        self.hostname = None;
        self.client_fqdn = None;
        self.vendor_class_identifier = None;
        self.client_ip = None;
        self.requested_ip = None;
        self.relay_ip = None;
    }
}

impl EventRecord for DhcpRecord {
    const EVENT_TYPE: &'static str = "dhcp";

    fn names<'a>(&'a self, v: &mut Vec<Name<'a>>) {
        for (path, value) in [
            ("dhcp.hostname", &self.hostname),
            ("dhcp.client_fqdn", &self.client_fqdn),
        ] {
            let Some(n) = value else {
                continue;
            };
            match self.assigned_ip {
                // The server acknowledged the lease: the name lives there.
                Some(lease) => v.push(Name::leased(path, Role::Client, n, lease)),
                // Not acknowledged: the client's own address if it said
                // one and sent from it (renewing, informing); a DHCPv6
                // client's link-local address it sent from; else (asking
                // from 0.0.0.0) the name is only mentioned.
                None => match (self.version, self.client_ip) {
                    (6, _) => v.push(Name::of(path, Role::Client, n, true)),
                    (_, Some(ip)) => v.push(Name::at(path, Role::Client, n, Some(ip))),
                    _ => v.push(Name::of(path, Role::Named, n, true)),
                },
            }
            // A DHCPv6 client sends from its link-local address: the name
            // is that address's too.
            if self.version == 6 && self.assigned_ip.is_some() {
                v.push(Name::of(path, Role::Client, n, true));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// dnsmasq leases `WIN-J9D866ESIJ2\0x86` as WIN-J9D866ESIJ2: the name
    /// is what comes before the NUL, as the server records it.
    #[test]
    fn a_host_name_ends_at_its_first_nul() {
        assert_eq!(
            hostname(b"WIN-J9D866ESIJ2\0x86").as_deref(),
            Some("WIN-J9D866ESIJ2")
        );
        assert_eq!(hostname(b"WS01\0").as_deref(), Some("WS01"));
        assert_eq!(hostname(b" WS01 ").as_deref(), Some("WS01"));
        assert_eq!(hostname(b"\0WIN-J9D866ESIJ2"), None);
        assert_eq!(hostname(b""), None);
    }
}
