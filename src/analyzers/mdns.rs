//! Multicast DNS (UDP 5353) and LLMNR (UDP 5355): the two ways a machine
//! answers for its own name on the local link. Each message is an event
//! (`mdns`, `llmnr`): its questions are names looked up (`named`), its
//! address records names tied to addresses, a name being its sender's own
//! only when the address is the sender's (detection checks it, as for the
//! NetBIOS name service).

use serde::Serialize;

use super::protocol::{Carrier, EventRecord, Name, Protocol, Role, Scope};
use super::{Ctx, DatagramAnalyzer, Dir};
use crate::parsers::dns;

pub const MDNS: Protocol = Protocol {
    name: "mdns",
    carrier: Carrier::Datagram {
        ports: &[5353],
        probe: dns::looks_like,
        new: || Box::new(NameAnalyzer { llmnr: false }),
        scope: Scope::Endpoints,
    },
};

pub const LLMNR: Protocol = Protocol {
    name: "llmnr",
    carrier: Carrier::Datagram {
        ports: &[5355],
        probe: dns::looks_like,
        new: || Box::new(NameAnalyzer { llmnr: true }),
        scope: Scope::Endpoints,
    },
};

#[derive(Debug)]
pub struct NameAnalyzer {
    llmnr: bool,
}

impl DatagramAnalyzer for NameAnalyzer {
    fn datagram(&mut self, dir: Dir, payload: &[u8], cx: &mut Ctx<'_>) {
        let m = match dns::parse(payload) {
            Ok(m) => m,
            Err(_) => {
                cx.parse_error(if self.llmnr { LLMNR.name } else { MDNS.name });
                return;
            }
        };
        let msg = LinkNames::of(&m, dir);
        if msg.queries.is_empty() && msg.answers.is_empty() {
            return;
        }
        if self.llmnr {
            cx.emit(LlmnrRecord(msg));
        } else {
            cx.emit(MdnsRecord(msg));
        }
    }

    fn end(&mut self, _cx: &mut Ctx<'_>) {}
}

/// One mDNS or LLMNR message.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct LinkNames {
    pub transaction_id: u16,
    pub response: bool,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub queries: Vec<Query>,
    /// Address records (A, AAAA) of every section.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub answers: Vec<Answer>,
    #[serde(skip)]
    sender: Dir,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Query {
    pub name: String,
    #[serde(rename = "type")]
    pub qtype: &'static str,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Answer {
    pub name: String,
    pub address: std::net::IpAddr,
    pub ttl: u32,
}

fn type_name(t: u16) -> &'static str {
    match t {
        dns::TYPE_A => "A",
        dns::TYPE_AAAA => "AAAA",
        dns::TYPE_ANY => "ANY",
        12 => "PTR",
        16 => "TXT",
        33 => "SRV",
        _ => "other",
    }
}

impl LinkNames {
    fn of(m: &dns::Message, sender: Dir) -> Self {
        LinkNames {
            transaction_id: m.id,
            response: m.response,
            queries: m
                .questions
                .iter()
                .map(|q| Query {
                    name: q.name.clone(),
                    qtype: type_name(q.qtype),
                })
                .collect(),
            answers: m
                .addresses
                .iter()
                .map(|a| Answer {
                    name: a.name.clone(),
                    address: a.address,
                    ttl: a.ttl,
                })
                .collect(),
            sender,
        }
    }

    fn names<'a>(&'a self, v: &mut Vec<Name<'a>>, query: &'static str, answer: &'static str) {
        // A host-name lookup names a machine someone looks for; service
        // browsing (PTR, SRV) names services.
        for q in &self.queries {
            if matches!(q.qtype, "A" | "AAAA" | "ANY") {
                v.push(Name::of(query, Role::Named, &q.name, false));
            }
        }
        let role = match self.sender {
            Dir::ToServer => Role::Client,
            Dir::ToClient => Role::Server,
        };
        for a in &self.answers {
            v.push(Name::at(answer, role, &a.name, Some(a.address)));
        }
    }
}

/// An mDNS message (`mdns` event).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(transparent)]
pub struct MdnsRecord(pub LinkNames);

/// An LLMNR message (`llmnr` event).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(transparent)]
pub struct LlmnrRecord(pub LinkNames);

impl EventRecord for MdnsRecord {
    const EVENT_TYPE: &'static str = "mdns";

    fn names<'a>(&'a self, v: &mut Vec<Name<'a>>) {
        self.0.names(v, "mdns.queries.name", "mdns.answers.name");
    }
}

impl EventRecord for LlmnrRecord {
    const EVENT_TYPE: &'static str = "llmnr";

    fn names<'a>(&'a self, v: &mut Vec<Name<'a>>) {
        self.0.names(v, "llmnr.queries.name", "llmnr.answers.name");
    }
}
