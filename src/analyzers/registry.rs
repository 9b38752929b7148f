//! The protocols hostwatch understands, in one table.
//!
//! A protocol is one unit: its parser module (in [`crate::parsers`]), its
//! analyzer module here, which holds the analyzer, the record it emits (the
//! event's layout, with the host-name fields it carries through
//! [`EventRecord`]) and a [`Protocol`] spec (how a flow is recognised and
//! the analyzer made; both types in [`super::protocol`]), and one line in
//! [`registry!`] below. The macro derives everything else: the [`Record`] enum every stage passes on, the
//! list of event types, and the detection table. A record type that is not
//! registered cannot be emitted (it has no `Into<Record>`), and a spec that
//! is not registered is dead code, which the lints refuse.

use serde::ser::SerializeMap;

use super::protocol::{Carrier, EventRecord, Facts, Name, Probe, Protocol, Scope};
use super::{
    browser, cldap, dhcp, http, krb5, ldap, mail, mdns, nbns, ntlm, raw, rdp, rpc, smb, tls,
};

/// The registry: one line per protocol, in the order detection tries them.
/// `=> Variant(Type)` introduces a record type (the first protocol that
/// emits it declares it).
macro_rules! registry {
    ($($proto:path $(=> $variant:ident($record:ty))?),* $(,)?) => {
        /// Every protocol, in detection order.
        pub static PROTOCOLS: &[Protocol] = &[$($proto),*];

        /// What an analyzer found: one variant per record type.
        #[derive(Debug, Clone, PartialEq)]
        pub enum Record {
            $($($variant(Box<$record>),)?)*
        }

        $($(
            impl From<$record> for Record {
                fn from(r: $record) -> Record {
                    Record::$variant(Box::new(r))
                }
            }
        )?)*

        impl Record {
            /// The event types of the records, in registry order.
            pub const EVENT_TYPES: &'static [&'static str] =
                &[$($(<$record as EventRecord>::EVENT_TYPE,)?)*];

            pub fn event_type(&self) -> &'static str {
                match self {
                    $($(Record::$variant(_) => <$record as EventRecord>::EVENT_TYPE,)?)*
                }
            }

            /// The host-name fields of the record.
            pub fn names(&self) -> Vec<Name<'_>> {
                let mut v = Vec::new();
                match self {
                    $($(Record::$variant(r) => EventRecord::names(r.as_ref(), &mut v),)?)*
                }
                v
            }

            /// What the record says about the machine behind `name`.
            pub fn facts(&self, name: &Name<'_>) -> Facts {
                match self {
                    $($(Record::$variant(r) => EventRecord::facts(r.as_ref(), name),)?)*
                }
            }

            /// EVE's `app_proto` of the record.
            pub fn app_proto(&self) -> Option<&'static str> {
                match self {
                    $($(Record::$variant(r) => EventRecord::app_proto(r.as_ref()),)?)*
                }
            }

            pub fn logged_alone(&self) -> bool {
                match self {
                    $($(Record::$variant(r) => EventRecord::logged_alone(r.as_ref()),)?)*
                }
            }

            /// Writes the record's object alone.
            pub fn serialize_body<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                match self {
                    $($(Record::$variant(r) => serde::Serialize::serialize(r.as_ref(), s),)?)*
                }
            }

            /// Writes the record as one entry (`"rdp": {...}`) of an event.
            pub fn serialize_entry<M: SerializeMap>(&self, map: &mut M) -> Result<(), M::Error> {
                match self {
                    $($(Record::$variant(r) => {
                        map.serialize_entry(<$record as EventRecord>::EVENT_TYPE, r.as_ref())
                    })?)*
                }
            }
        }
    };
}

registry! {
    rdp::PROTOCOL => Rdp(rdp::RdpRecord),
    tls::PROTOCOL => Tls(tls::TlsRecord),
    smb::PROTOCOL => Smb(smb::SmbRecord),
    http::PROTOCOL,
    rpc::PROTOCOL,
    ldap::PROTOCOL,
    mail::SMTP => Smtp(mail::SmtpRecord),
    mail::IMAP,
    mail::POP3,
    raw::TDS,
    raw::PROTOCOL => Ntlm(ntlm::NtlmRecord),
    nbns::PROTOCOL => Nbns(nbns::NbnsRecord),
    browser::PROTOCOL => Browser(browser::BrowserRecord),
    mdns::MDNS => Mdns(mdns::MdnsRecord),
    mdns::LLMNR => Llmnr(mdns::LlmnrRecord),
    dhcp::V4 => Dhcp(dhcp::DhcpRecord),
    dhcp::V6,
    krb5::TCP => Krb5(krb5::KrbRecord),
    krb5::UDP,
    cldap::PROTOCOL => Cldap(cldap::CldapRecord),
}

/// One bit per UDP port.
type PortSet = Box<[u64; 1024]>;

fn port_set(wanted: impl Fn(Scope) -> bool) -> PortSet {
    let mut set = Box::new([0u64; 1024]);
    for p in PROTOCOLS {
        if let Carrier::Datagram { ports, scope, .. } = p.carrier {
            for &port in ports.iter().filter(|_| wanted(scope)) {
                if let Some(word) = set.get_mut(usize::from(port >> 6)) {
                    *word |= 1 << (port & 63);
                }
            }
        }
    }
    set
}

fn contains(set: &PortSet, port: u16) -> bool {
    set.get(usize::from(port >> 6))
        .is_some_and(|word| word & (1 << (port & 63)) != 0)
}

/// Whether a datagram protocol listens on `port`: the capture thread's
/// test before a datagram is handed on at all, for every UDP packet, so one
/// bit per port, built from the registry on first use.
pub fn is_datagram_port(port: u16) -> bool {
    static PORTS: std::sync::OnceLock<PortSet> = std::sync::OnceLock::new();
    contains(PORTS.get_or_init(|| port_set(|_| true)), port)
}

/// The link-scoped protocol ([`Scope::Link`]) listening on `port`, named
/// by its first port: its datagrams are sharded and kept by it alone.
pub fn link_scope(port: u16) -> Option<u16> {
    static PORTS: std::sync::OnceLock<PortSet> = std::sync::OnceLock::new();
    if !contains(PORTS.get_or_init(|| port_set(|s| s == Scope::Link)), port) {
        return None;
    }
    PROTOCOLS.iter().find_map(|p| match p.carrier {
        Carrier::Datagram {
            ports,
            scope: Scope::Link,
            ..
        } if ports.contains(&port) => ports.first().copied(),
        _ => None,
    })
}

/// The datagram protocol that takes a datagram between these ports, if
/// any: by its ports and probe, or on other ports by its strict probe.
pub fn datagram_protocol(sport: u16, dport: u16, payload: &[u8]) -> Option<&'static Protocol> {
    let by_port = PROTOCOLS.iter().find(|p| match p.carrier {
        Carrier::Datagram { ports, probe, .. } => {
            (ports.contains(&sport) || ports.contains(&dport)) && probe(payload)
        }
        Carrier::Stream { .. } => false,
    });
    by_port.or_else(|| found_anywhere(payload))
}

/// The protocol whose strict probe takes a datagram on a port no protocol
/// listens on (Kerberos to a KDC on another port, a CLDAP ping relayed).
/// Asked by the capture thread of every such datagram: the probes are
/// gathered once, and each rejects at the first byte what is plainly not
/// its protocol.
pub fn found_anywhere(payload: &[u8]) -> Option<&'static Protocol> {
    static ANYWHERE: std::sync::OnceLock<Vec<(Probe, &'static Protocol)>> =
        std::sync::OnceLock::new();
    let probes = ANYWHERE.get_or_init(|| {
        PROTOCOLS
            .iter()
            .filter_map(|p| match p.carrier {
                Carrier::Datagram {
                    anywhere: Some(probe),
                    ..
                } => Some((probe, p)),
                _ => None,
            })
            .collect()
    });
    probes
        .iter()
        .find(|(probe, _)| probe(payload))
        .map(|(_, p)| *p)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_record_type_has_one_event_type_and_names_are_unique() {
        let mut types: Vec<&str> = Record::EVENT_TYPES.to_vec();
        assert_eq!(
            types,
            [
                "rdp", "tls", "smb", "smtp", "ntlm", "nbns", "browser", "mdns", "llmnr", "dhcp",
                "krb5", "cldap"
            ]
        );
        types.sort_unstable();
        types.dedup();
        assert_eq!(types.len(), Record::EVENT_TYPES.len());
        let mut names: Vec<&str> = PROTOCOLS.iter().map(|p| p.name).collect();
        names.sort_unstable();
        names.dedup();
        assert_eq!(names.len(), PROTOCOLS.len());
    }

    #[test]
    fn datagrams_are_claimed_by_port_and_content() {
        // A NetBIOS name query for "*" (node status), RFC 1002 4.2.12.
        let nbstat = b"\x12\x34\x00\x00\x00\x01\x00\x00\x00\x00\x00\x00\x20CKAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA\x00\x00\x21\x00\x01";
        assert_eq!(
            datagram_protocol(50000, 137, nbstat).map(|p| p.name),
            Some("nbns")
        );
        assert!(datagram_protocol(50000, 53, nbstat).is_none());
        assert!(datagram_protocol(50000, 137, b"\x00").is_none());
        let listened: Vec<u16> = (0..=u16::MAX).filter(|&p| is_datagram_port(p)).collect();
        assert_eq!(listened, [67, 68, 88, 137, 138, 389, 546, 547, 5353, 5355]);
        let link: Vec<(u16, u16)> = (0..=u16::MAX)
            .filter_map(|p| Some((p, link_scope(p)?)))
            .collect();
        assert_eq!(link, [(67, 67), (68, 67), (546, 546), (547, 546)]);
    }

    /// Kerberos and CLDAP are taken on any port by their strict probes;
    /// a datagram that only starts like them is not.
    #[test]
    fn kerberos_and_cldap_are_found_on_other_ports() {
        use crate::synth::msg::{krb5_as_req, krb5_preauth_required};
        let name = |b: &[u8]| datagram_protocol(50_000, 8_888, b).map(|p| p.name);
        assert_eq!(name(&krb5_as_req("PC1")), Some("krb5_udp"));
        assert_eq!(name(&krb5_preauth_required("PC1")), Some("krb5_udp"));
        // A DNS query whose id starts with 0x6a, and a message cut short.
        let dns = b"\x6a\x01\x01\x00\x00\x01\x00\x00\x00\x00\x00\x00\x01a\x00\x00\x01\x00\x01";
        assert_eq!(name(dns), None);
        let req = krb5_as_req("PC1");
        assert_eq!(name(&req[..req.len() - 1]), None);
        // An LDAP search that is not a netlogon ping (no NtVer).
        let search = b"\x30\x0c\x02\x01\x01\x63\x07\x04\x00\x0a\x01\x00\x87\x00";
        assert_eq!(name(search), None);
        assert!(found_anywhere(b"").is_none());
    }
}
