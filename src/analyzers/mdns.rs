//! Multicast DNS (UDP 5353) and LLMNR (UDP 5355): the two ways a machine
//! answers for its own name on the local link. Each message is an event
//! (`mdns`, `llmnr`): its questions are names looked up (`named`), its
//! address records names tied to addresses, a name being its sender's own
//! only when the address is the sender's (detection checks it, as for the
//! NetBIOS name service).

use serde::Serialize;
use serde_with::skip_serializing_none;

use super::protocol::{Carrier, EventRecord, Name, Protocol, Role, Scope};
use super::{Ctx, DatagramAnalyzer, Dir};
use crate::parsers::dns;

pub const MDNS: Protocol = Protocol {
    name: "mdns",
    carrier: Carrier::Datagram {
        ports: &[5353],
        probe: dns::looks_like,
        anywhere: None,
        new: || Box::new(NameAnalyzer { llmnr: false }),
        scope: Scope::Endpoints,
    },
};

pub const LLMNR: Protocol = Protocol {
    name: "llmnr",
    carrier: Carrier::Datagram {
        ports: &[5355],
        probe: dns::looks_like,
        anywhere: None,
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
        if msg.is_empty() {
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

/// One mDNS or LLMNR message, in the layout of EVE's `mdns` (Suricata
/// 8): `type`, `id`, `flags`, `opcode`, `rcode`, `queries` (`rrname`,
/// `rrtype`), and the address records of each section (`answers`,
/// `authorities`, `additionals`: `rrname` and `a` or `aaaa`, with the
/// record's `ttl` added).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct LinkNames {
    /// `request` or `response`.
    #[serde(rename = "type")]
    pub kind: &'static str,
    pub id: u16,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub flags: Vec<&'static str>,
    pub opcode: u8,
    pub rcode: u8,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub queries: Vec<Query>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub answers: Vec<Answer>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub authorities: Vec<Answer>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub additionals: Vec<Answer>,
    #[serde(skip)]
    sender: Dir,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Query {
    pub rrname: String,
    pub rrtype: String,
}

/// An address record: its name, and its address under `a` or `aaaa`.
#[skip_serializing_none]
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Answer {
    pub rrname: String,
    pub a: Option<std::net::IpAddr>,
    pub aaaa: Option<std::net::IpAddr>,
    pub ttl: u32,
}

impl Answer {
    fn address(&self) -> Option<std::net::IpAddr> {
        self.a.or(self.aaaa)
    }
}

/// A record type as EVE writes it (lower-case name, else the number).
fn type_name(t: u16) -> String {
    match t {
        dns::TYPE_A => "a".into(),
        dns::TYPE_AAAA => "aaaa".into(),
        dns::TYPE_ANY => "any".into(),
        5 => "cname".into(),
        12 => "ptr".into(),
        16 => "txt".into(),
        33 => "srv".into(),
        47 => "nsec".into(),
        t => t.to_string(),
    }
}

/// The header flags EVE lists (`aa`, `tc`, `rd`, `ra`, `z`, `ad`, `cd`).
fn flag_names(flags: u16) -> Vec<&'static str> {
    [
        (0x0400, "aa"),
        (0x0200, "tc"),
        (0x0100, "rd"),
        (0x0080, "ra"),
        (0x0040, "z"),
        (0x0020, "ad"),
        (0x0010, "cd"),
    ]
    .iter()
    .filter(|(bit, _)| flags & bit != 0)
    .map(|(_, name)| *name)
    .collect()
}

impl LinkNames {
    fn of(m: &dns::Message, sender: Dir) -> Self {
        let section = |s: dns::Section| -> Vec<Answer> {
            m.addresses
                .iter()
                .filter(|a| a.section == s)
                .map(|a| Answer {
                    rrname: a.name.clone(),
                    a: a.address.is_ipv4().then_some(a.address),
                    aaaa: a.address.is_ipv6().then_some(a.address),
                    ttl: a.ttl,
                })
                .collect()
        };
        LinkNames {
            kind: if m.response { "response" } else { "request" },
            id: m.id,
            flags: flag_names(m.flags),
            opcode: ((m.flags >> 11) & 0x0f) as u8,
            rcode: m.rcode,
            queries: m
                .questions
                .iter()
                .map(|q| Query {
                    rrname: q.name.clone(),
                    rrtype: type_name(q.qtype),
                })
                .collect(),
            answers: section(dns::Section::Answer),
            authorities: section(dns::Section::Authority),
            additionals: section(dns::Section::Additional),
            sender,
        }
    }

    fn is_empty(&self) -> bool {
        self.queries.is_empty()
            && self.answers.is_empty()
            && self.authorities.is_empty()
            && self.additionals.is_empty()
    }

    /// The names, with their paths under `event` (`mdns`, `llmnr`).
    fn names<'a>(&'a self, v: &mut Vec<Name<'a>>, paths: &Paths) {
        // A host-name lookup names a machine someone looks for; service
        // browsing (PTR, SRV) names services.
        for q in &self.queries {
            if matches!(q.rrtype.as_str(), "a" | "aaaa" | "any") {
                v.push(Name::of(paths.query, Role::Named, &q.rrname, false));
            }
        }
        let role = match self.sender {
            Dir::ToServer => Role::Client,
            Dir::ToClient => Role::Server,
        };
        for (path, records) in [
            (paths.answer, &self.answers),
            (paths.authority, &self.authorities),
            (paths.additional, &self.additionals),
        ] {
            for a in records {
                v.push(Name::at(path, role, &a.rrname, a.address()));
            }
        }
    }
}

/// The dotted paths of a message's names in one event type.
struct Paths {
    query: &'static str,
    answer: &'static str,
    authority: &'static str,
    additional: &'static str,
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
        let paths = Paths {
            query: "mdns.queries.rrname",
            answer: "mdns.answers.rrname",
            authority: "mdns.authorities.rrname",
            additional: "mdns.additionals.rrname",
        };
        self.0.names(v, &paths);
    }
}

impl EventRecord for LlmnrRecord {
    const EVENT_TYPE: &'static str = "llmnr";

    fn names<'a>(&'a self, v: &mut Vec<Name<'a>>) {
        let paths = Paths {
            query: "llmnr.queries.rrname",
            answer: "llmnr.answers.rrname",
            authority: "llmnr.authorities.rrname",
            additional: "llmnr.additionals.rrname",
        };
        self.0.names(v, &paths);
    }
}
