//! What a protocol brings to the registry: how it is recognised
//! ([`Protocol`], [`Carrier`]) and what its records carry ([`EventRecord`],
//! [`Name`], [`Role`]). Each protocol's analyzer module implements these;
//! [`super::registry`] lists the protocols.

use std::net::IpAddr;

use serde::Serialize;

use super::{Analyzer, DatagramAnalyzer};

/// Whose name a field is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    /// The connection's initiator (or the sender of a request).
    Client,
    /// The responder.
    Server,
    /// A name the traffic mentions (asks for, looks up) without saying it
    /// is an endpoint's own.
    Named,
}

impl Role {
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Client => "client",
            Role::Server => "server",
            Role::Named => "named",
        }
    }
}

/// One host-name field of a record.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Name<'a> {
    /// Dotted path of the field in the event, e.g. `ntlm.client.workstation`.
    pub path: &'static str,
    pub role: Role,
    pub value: &'a str,
    /// Whether the value names a machine (for the host inventory); a cookie
    /// or a target name may be something else.
    pub machine: bool,
    /// The address the record itself ties the name to (a NetBIOS
    /// registration or answer, a DHCP lease). The name is the sender's
    /// (`role`) only when this is the sender's address; otherwise detection
    /// takes it as merely mentioned.
    pub ip: Option<IpAddr>,
    /// `ip` is an address the record shows was given to the endpoint of
    /// `role` (a DHCP lease its server acknowledged): the name belongs
    /// there, whatever address the message itself came from.
    pub leased: bool,
}

impl<'a> Name<'a> {
    /// A field whose name belongs to the endpoint of `role`.
    pub fn of(path: &'static str, role: Role, value: &'a str, machine: bool) -> Self {
        Name {
            path,
            role,
            value,
            machine,
            ip: None,
            leased: false,
        }
    }

    /// A machine's name that the record ties to `ip`: the sender's own
    /// only if `ip` is the sender's address.
    pub fn at(path: &'static str, role: Role, value: &'a str, ip: Option<IpAddr>) -> Self {
        Name {
            ip,
            ..Name::of(path, role, value, true)
        }
    }

    /// The name of the endpoint of `role`, at the address it was leased.
    pub fn leased(path: &'static str, role: Role, value: &'a str, ip: IpAddr) -> Self {
        Name {
            leased: true,
            ..Name::at(path, role, value, Some(ip))
        }
    }

    /// Adds the field when the record carried it.
    pub fn push(
        out: &mut Vec<Name<'a>>,
        path: &'static str,
        role: Role,
        value: Option<&'a String>,
        machine: bool,
    ) {
        if let Some(v) = value {
            out.push(Name::of(path, role, v, machine));
        }
    }
}

/// What a record says about the machine behind one of its names, for
/// weighing an alert on that name ([`crate::detection::confidence`]).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Facts {
    /// The Windows build the machine reported (an NTLM VERSION, an RDP
    /// client build).
    pub build: Option<u32>,
    /// Whether its exchange succeeded: a logon, a ticket, a tree connect.
    pub outcome: Option<bool>,
    /// The name is the subject CN of a self-signed certificate.
    pub self_signed: bool,
    /// The Windows NT version (major, minor) the machine announced without
    /// a build (a browser host announcement).
    pub os_version: Option<(u8, u8)>,
}

impl Facts {
    /// Keeps what an earlier record said and this one does not (a build
    /// reported in one exchange, the outcome in the next).
    pub fn keep(&mut self, earlier: Facts) {
        self.build = self.build.or(earlier.build);
        self.outcome = self.outcome.or(earlier.outcome);
        self.os_version = self.os_version.or(earlier.os_version);
        self.self_signed |= earlier.self_signed;
    }
}

/// What every record type brings: its event type and its host names.
pub trait EventRecord: Serialize {
    /// The `event_type` of its events, and the key of its object in them.
    const EVENT_TYPE: &'static str;

    /// The host-name fields the record carries, in a fixed order.
    fn names<'a>(&'a self, out: &mut Vec<Name<'a>>);

    /// EVE's `app_proto` of its events: by default the event type.
    fn app_proto(&self) -> Option<&'static str> {
        Some(Self::EVENT_TYPE)
    }

    /// Whether the record is written when none of its names is watched
    /// (a certificate on an ordinary TLS flow is not: it would flood the log).
    fn logged_alone(&self) -> bool {
        true
    }

    /// What the record says about the machine behind `name`, one of its
    /// own names.
    fn facts(&self, _name: &Name<'_>) -> Facts {
        Facts::default()
    }
}

/// A content probe: whether the first bytes of a direction are the protocol's.
pub type Probe = fn(&[u8]) -> bool;

/// How a protocol is recognised and analysed.
#[derive(Clone, Copy)]
pub enum Carrier {
    /// A TCP stream, recognised from the first bytes of either direction.
    Stream {
        /// Recognises the client's first bytes.
        client: Option<Probe>,
        /// Recognises the server's first bytes.
        server: Option<Probe>,
        /// Whether it takes a stream that nothing recognised.
        fallback: Fallback,
        /// The analyzer; the argument names a proxy handshake stepped over.
        new: fn(Option<&'static str>) -> Box<dyn Analyzer>,
    },
    /// UDP datagrams, recognised by port and content.
    Datagram {
        /// Either endpoint on one of these ports...
        ports: &'static [u16],
        /// ...and a payload this accepts.
        probe: Probe,
        /// A strict probe by which the protocol is also taken on any other
        /// port (asked of every such datagram: it must reject at its
        /// first byte what is plainly not the protocol).
        anywhere: Option<Probe>,
        new: fn() -> Box<dyn DatagramAnalyzer>,
        scope: Scope,
    },
}

/// What one analyzer of a datagram protocol sees.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scope {
    /// The datagrams between two endpoints (address and port), both ways.
    Endpoints,
    /// Every datagram between the protocol's ports on one link (VLAN),
    /// whatever the addresses: for protocols whose answer goes to another
    /// address than the question came from (a DHCP client asks from
    /// 0.0.0.0 and is answered at the address it is given). The analyzer
    /// says whose exchange each record is ([`super::Ctx::emit_between`]).
    Link,
}

/// Whether a stream protocol takes the streams no probe recognised.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fallback {
    No,
    /// On these server ports.
    OnPorts(&'static [u16]),
    /// On any port: the last resort.
    Any,
}

/// One protocol's entry in the registry.
#[derive(Clone, Copy)]
pub struct Protocol {
    /// Its name in `stats` (e.g. parse failures) and in the docs.
    pub name: &'static str,
    pub carrier: Carrier,
}

impl Protocol {
    /// A stream protocol's probes of the client's and the server's first
    /// bytes, and its fallback; `None` for a datagram protocol.
    pub fn stream_probes(&self) -> Option<(Option<Probe>, Option<Probe>, Fallback)> {
        match self.carrier {
            Carrier::Stream {
                client,
                server,
                fallback,
                ..
            } => Some((client, server, fallback)),
            Carrier::Datagram { .. } => None,
        }
    }
}
