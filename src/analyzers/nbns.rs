//! The NetBIOS name service of one UDP conversation: registrations,
//! refreshes and releases (a host announcing its own names), queries (a
//! name looked up) and their answers (name to address), and node status
//! answers (every name a host holds, with its MAC address).
//!
//! Requests and answers are paired by transaction id (Zeek's dns.log
//! style): one `nbns` record per transaction, written when the answer
//! arrives or, unanswered, [`ANSWER_TIMEOUT_US`] after the request (then
//! stamped with the time of the request's last copy). The
//! retransmissions of a request (a broadcast registration goes out three
//! times) are counted on it instead of making records of their own, and a
//! byte-identical copy of an answer within the same window (nmbd answers a
//! broadcast query from two sockets) is not written twice.

use std::collections::VecDeque;
use std::net::{IpAddr, Ipv4Addr};

use serde::Serialize;

use super::protocol::{Carrier, Protocol, Scope};
use super::{Ctx, DatagramAnalyzer, Dir, EventRecord, Name, Role, Trust};
use crate::parsers::nbns::{self, Message, NbName, Rdata};
use crate::parsers::text::oem;

/// UDP 137, from either side.
pub const PROTOCOL: Protocol = Protocol {
    name: "nbns",
    carrier: Carrier::Datagram {
        ports: &[137],
        probe: nbns::looks_like,
        anywhere: None,
        new: || Box::<NbnsAnalyzer>::default(),
        scope: Scope::Endpoints,
    },
};

/// How long a request waits for its answer (RFC 1002's UCAST_REQ_RETRY
/// timeout is 5 s, broadcasts retry three times within it).
pub const ANSWER_TIMEOUT_US: i64 = 5_000_000;
/// Requests held per conversation; the oldest is written beyond.
const MAX_PENDING: usize = 32;
/// Answers remembered per conversation to recognise their copies.
const MAX_RECENT_ANSWERS: usize = 16;
/// Names kept per request (a registration names one name at one address
/// or a few) and per answer (a node status lists a host's names, a WINS
/// answer a group's members): a message may carry 1,024, and requests
/// wait in every conversation, so the rest is counted, not kept.
const MAX_REQUEST_NAMES: usize = 16;
const MAX_ANSWER_NAMES: usize = 64;

struct Pending {
    since_us: i64,
    /// The last copy of the request.
    last_us: i64,
    /// Its checksum was left unfilled: a copy with a correct one shows
    /// that its sender fills them, and this one was a decoy.
    unfilled: bool,
    record: NbnsRecord,
}

#[derive(Default)]
pub struct NbnsAnalyzer {
    pending: VecDeque<Pending>,
    /// (time, transaction id, hash of the bytes) of recent answers.
    recent_answers: VecDeque<(i64, u16, u64)>,
    /// A message was seen (the first one may set the roles).
    started: bool,
}

impl DatagramAnalyzer for NbnsAnalyzer {
    fn datagram(&mut self, dir: Dir, payload: &[u8], cx: &mut Ctx<'_>) {
        let Ok(msg) = nbns::parse(payload) else {
            cx.parse_error(PROTOCOL.name);
            return;
        };
        let mut dir = dir;
        if !std::mem::replace(&mut self.started, true) && msg.response && dir == Dir::ToServer {
            // The conversation starts with an answer (its question went
            // to a broadcast address): the answering side is the server.
            cx.roles_reversed = true;
            dir = Dir::ToClient;
        }
        self.expire(cx.ts_us, cx);
        if msg.response {
            let hash = super::wire_digest(payload);
            let now = cx.ts_us;
            self.recent_answers
                .retain(|&(ts, _, _)| now - ts <= ANSWER_TIMEOUT_US);
            if self
                .recent_answers
                .iter()
                .any(|&(_, id, h)| id == msg.transaction_id && h == hash)
            {
                return;
            }
            if self.recent_answers.len() >= MAX_RECENT_ANSWERS {
                self.recent_answers.pop_front();
            }
            self.recent_answers
                .push_back((now, msg.transaction_id, hash));
            let answer = describe(&msg, dir);
            match self
                .pending
                .iter()
                .position(|p| p.record.transaction_id == msg.transaction_id)
            {
                Some(i) => {
                    if let Some(mut p) = self.pending.remove(i) {
                        p.record.merge_answer(answer);
                        cx.emit(p.record);
                    }
                }
                // An answer to no request this conversation holds: the
                // responder alone sent it.
                None => cx.emit_lone_at(cx.ts_us, answer),
            }
            return;
        }
        if let Some(p) = self
            .pending
            .iter_mut()
            .find(|p| p.record.transaction_id == msg.transaction_id)
        {
            match (p.unfilled, cx.trust) {
                // A stack does not switch between filled and unfilled
                // checksums: the copy with the unfilled one was a decoy.
                // (An unfilled copy after a correct one never comes here:
                // the conversation table drops it.)
                (true, Trust::Taken) => {
                    *p = Pending {
                        since_us: cx.ts_us,
                        last_us: cx.ts_us,
                        unfilled: false,
                        record: describe(&msg, dir),
                    };
                }
                _ => {
                    p.record.retransmissions += 1;
                    p.last_us = cx.ts_us;
                }
            }
            return;
        }
        if self.pending.len() >= MAX_PENDING {
            if let Some(p) = self.pending.pop_front() {
                cx.emit_lone_at(p.last_us, p.record);
            }
        }
        self.pending.push_back(Pending {
            since_us: cx.ts_us,
            last_us: cx.ts_us,
            unfilled: cx.trust == Trust::Unfilled,
            record: describe(&msg, dir),
        });
    }

    fn expire(&mut self, now_us: i64, cx: &mut Ctx<'_>) {
        while self
            .pending
            .front()
            .is_some_and(|p| now_us - p.since_us > ANSWER_TIMEOUT_US)
        {
            if let Some(p) = self.pending.pop_front() {
                cx.emit_lone_at(p.last_us, p.record);
            }
        }
    }

    fn end(&mut self, cx: &mut Ctx<'_>) {
        for p in self.pending.drain(..) {
            cx.emit_lone_at(p.last_us, p.record);
        }
    }
}

/// The record of one message (a request, or an answer alone).
fn describe(msg: &Message<'_>, dir: Dir) -> NbnsRecord {
    let mut r = NbnsRecord {
        transaction_id: msg.transaction_id,
        opcode: nbns::opcode_name(msg.opcode),
        ..NbnsRecord::default()
    };
    if let Some(q) = msg.questions.first() {
        r.query = Some(NbnsQuery {
            name: text(&q.name),
            suffix: suffix(q.name.suffix()),
            qtype: if q.qtype == nbns::TYPE_NBSTAT {
                "NBSTAT"
            } else {
                "NB"
            },
        });
    }
    if msg.response {
        r.answered = true;
        r.rcode = Some(nbns::rcode_name(msg.rcode));
        r.authoritative = msg.authoritative;
    } else {
        r.broadcast = msg.broadcast;
    }
    // Who says it: a request's records are the sender's own names (a
    // registration names its owner's address); an answer's are the
    // responder's knowledge (its own names, or those a WINS server holds).
    let source = if msg.response { "answer" } else { "request" };
    let most = if msg.response {
        MAX_ANSWER_NAMES
    } else {
        MAX_REQUEST_NAMES
    };
    let total: usize = msg
        .records
        .iter()
        .map(|rec| match &rec.data {
            Rdata::Nb(a) => a.len(),
            Rdata::NodeStatus { names, .. } => names.len(),
            Rdata::Other(_) => 0,
        })
        .sum();
    r.names_omitted = u32::try_from(total.saturating_sub(most)).unwrap_or(u32::MAX);
    r.names.reserve(total.min(most));
    for rec in &msg.records {
        match &rec.data {
            Rdata::Nb(addresses) => {
                for a in addresses.iter().take(most.saturating_sub(r.names.len())) {
                    r.names.push(NbnsName {
                        name: text(&rec.name),
                        suffix: suffix(rec.name.suffix()),
                        suffix_type: nbns::suffix_type(rec.name.suffix(), a.group),
                        group: a.group,
                        address: Some(IpAddr::V4(Ipv4Addr::from(a.address))),
                        ttl: Some(rec.ttl),
                        source,
                        sender: dir,
                    });
                }
            }
            Rdata::NodeStatus { names, unit_id } => {
                for n in names.iter().take(most.saturating_sub(r.names.len())) {
                    r.names.push(NbnsName {
                        name: oem(n.name()),
                        suffix: suffix(n.suffix()),
                        suffix_type: nbns::suffix_type(n.suffix(), n.group),
                        group: n.group,
                        address: None,
                        ttl: None,
                        source: "node_status",
                        sender: dir,
                    });
                }
                r.mac = unit_id.filter(|u| u.iter().any(|&b| b != 0)).map(mac);
            }
            Rdata::Other(_) => {}
        }
    }
    r
}

fn text(n: &NbName<'_>) -> String {
    let mut s = oem(n.name());
    for label in n.scope_labels() {
        s.push('.');
        s.push_str(&oem(label));
    }
    s
}

fn suffix(b: u8) -> String {
    format!("<{b:02X}>")
}

fn mac(u: [u8; 6]) -> String {
    u.iter()
        .map(|b| format!("{b:02x}"))
        .collect::<Vec<_>>()
        .join(":")
}

// ---- The event ----

/// One name service transaction.
#[serde_with::skip_serializing_none]
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct NbnsRecord {
    pub transaction_id: u16,
    pub opcode: &'static str,
    /// The request was broadcast (B flag).
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub broadcast: bool,
    /// The name asked about, registered or released.
    pub query: Option<NbnsQuery>,
    /// Names the messages tie to addresses or to the responder.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub names: Vec<NbnsName>,
    /// The node status answer's unit id (the responder's MAC address).
    pub mac: Option<String>,
    pub answered: bool,
    pub rcode: Option<&'static str>,
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub authoritative: bool,
    /// Copies of the request seen after the first.
    #[serde(skip_serializing_if = "is_zero")]
    pub retransmissions: u32,
    /// Names the messages carried beyond those kept (16 for a request, 64
    /// for an answer).
    #[serde(skip_serializing_if = "is_zero")]
    pub names_omitted: u32,
}

fn is_zero(n: &u32) -> bool {
    *n == 0
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct NbnsQuery {
    pub name: String,
    pub suffix: String,
    #[serde(rename = "type")]
    pub qtype: &'static str,
}

#[serde_with::skip_serializing_none]
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct NbnsName {
    pub name: String,
    /// The suffix byte, as `<20>`.
    pub suffix: String,
    pub suffix_type: &'static str,
    pub group: bool,
    pub address: Option<IpAddr>,
    pub ttl: Option<u32>,
    /// `request` (a registration's own record), `answer`, `node_status`.
    pub source: &'static str,
    /// Which side sent the message that carried it.
    #[serde(skip)]
    pub sender: Dir,
}

impl NbnsRecord {
    /// Adds what the answer to this request said.
    fn merge_answer(&mut self, answer: NbnsRecord) {
        self.answered = true;
        self.rcode = answer.rcode;
        self.authoritative = answer.authoritative;
        self.names.extend(answer.names);
        self.names_omitted = self.names_omitted.saturating_add(answer.names_omitted);
        self.mac = answer.mac.or(self.mac.take());
        if self.query.is_none() {
            self.query = answer.query;
        }
    }
}

impl EventRecord for NbnsRecord {
    const EVENT_TYPE: &'static str = "nbns";

    fn names<'a>(&'a self, v: &mut Vec<Name<'a>>) {
        // Only a question is a mere mention; a registration's question is
        // the sender's own name, tied to its address by the record after it.
        if let Some(q) = &self.query {
            // `*` asks a node for its names (node status): no name at all.
            if self.opcode == "query" && q.name != "*" {
                v.push(Name::of("nbns.query.name", Role::Named, &q.name, false));
            }
        }
        for n in &self.names {
            // Group names are domains and workgroups, not machines.
            if n.group || n.name == "*" || n.name.is_empty() {
                continue;
            }
            // Said by the message's sender: its own name when the address
            // given with it (registration, answer) is its own, or when none
            // is (node status); detection checks the address.
            let role = match n.sender {
                Dir::ToServer => Role::Client,
                Dir::ToClient => Role::Server,
            };
            let machine = matches!(n.suffix_type, "workstation" | "file_server");
            v.push(Name {
                machine,
                ..Name::at("nbns.names.name", role, &n.name, n.address)
            });
        }
    }
}

#[cfg(test)]
#[path = "nbns_tests.rs"]
mod tests;
