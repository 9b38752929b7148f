//! Kerberos over UDP and TCP (port 88, and TCP on any port by content):
//! each AS-REQ, TGS-REQ, AS-REP, TGS-REP and KRB-ERROR is a `krb5` event
//! with Suricata's field names. A machine account (`NAME$`) in `cname` is
//! the client's host name; a host-based service name (`host/NAME.domain`,
//! `cifs/NAME`) names a server someone asked for; NetBIOS addresses in a
//! request are the client's own name.

use serde::Serialize;
use serde_with::skip_serializing_none;

use super::exchange::Awaiting;
use super::framing::{Frame, Framed, Framer, Seeker};
use super::protocol::{Carrier, EventRecord, Facts, Fallback, Name, Protocol, Role, Scope};
use super::{Ctx, DatagramAnalyzer, Dir};
use crate::parsers::krb5::{self, KrbError, Principal};
use crate::parsers::text;

/// Kerberos over TCP, recognised by its first request on any port.
pub const TCP: Protocol = Protocol {
    name: "krb5",
    carrier: Carrier::Stream {
        client: Some(krb5::looks_like_tcp),
        server: None,
        fallback: Fallback::No,
        new: |_| Box::<KrbStream>::default(),
    },
};

/// Kerberos over UDP 88.
pub const UDP: Protocol = Protocol {
    name: "krb5_udp",
    carrier: Carrier::Datagram {
        ports: &[88],
        probe: krb5::looks_like,
        anywhere: Some(krb5::is_message),
        new: || Box::<KrbDatagrams>::default(),
        scope: Scope::Endpoints,
    },
};

/// Turns one message into its record, and whether it is a request; a
/// reply first in a conversation (its request missed) makes its sender
/// the server.
fn message(
    dir: Dir,
    b: &[u8],
    first: bool,
    cx: &mut Ctx<'_>,
    name: &'static str,
) -> Option<(KrbRecord, bool)> {
    let m = match krb5::parse(b) {
        Ok(m) => m,
        Err(KrbError::NotKerberos) => return None,
        Err(_) => {
            cx.parse_error(name);
            return None;
        }
    };
    let request = matches!(m.msg_type, krb5::AS_REQ | krb5::TGS_REQ);
    let mut dir = dir;
    if first && !request && dir == Dir::ToServer {
        cx.roles_reversed = true;
        dir = Dir::ToClient;
    }
    Some((KrbRecord::of(&m, dir), request))
}

/// The datagrams of one UDP conversation: a request is written when its
/// reply (or error) comes, so that it reads as answered, or unanswered
/// after the timeout.
#[derive(Debug, Default)]
pub struct KrbDatagrams {
    started: bool,
    awaiting: Awaiting<KrbRecord>,
}

impl DatagramAnalyzer for KrbDatagrams {
    fn datagram(&mut self, dir: Dir, payload: &[u8], cx: &mut Ctx<'_>) {
        self.awaiting.expire(cx.ts_us, cx);
        let first = !std::mem::replace(&mut self.started, true);
        match message(dir, payload, first, cx, UDP.name) {
            // Kerberos has no message id: replies come in order.
            Some((r, true)) => self.awaiting.request(None, r, cx),
            Some((r, false)) => self.awaiting.answer(None, r, cx),
            None => {}
        }
    }

    fn expire(&mut self, now_us: i64, cx: &mut Ctx<'_>) {
        self.awaiting.expire(now_us, cx);
    }

    fn held_until(&self) -> Option<i64> {
        self.awaiting.held_until()
    }

    fn end(&mut self, cx: &mut Ctx<'_>) {
        self.awaiting.end(cx);
    }
}

/// One TCP connection: records behind a four-byte length (RFC 4120 7.2.2).
#[derive(Debug)]
pub struct KrbStream {
    framers: [Framer; 2],
    started: bool,
}

impl Default for KrbStream {
    fn default() -> Self {
        KrbStream {
            framers: [
                Framer::new(krb5::MAX_TCP_MESSAGE + 4),
                Framer::new(krb5::MAX_TCP_MESSAGE + 4),
            ],
            started: false,
        }
    }
}

impl Framed for KrbStream {
    fn framers(&self) -> &[Framer; 2] {
        &self.framers
    }

    fn framers_mut(&mut self) -> &mut [Framer; 2] {
        &mut self.framers
    }

    fn step(&mut self, dir: Dir, b: &[u8], cx: &mut Ctx<'_>) -> Frame {
        let Some(len) = krb5::tcp_length(b) else {
            return Frame::Need(4);
        };
        if len == 0 || len > krb5::MAX_TCP_MESSAGE {
            cx.parse_error(TCP.name);
            return Frame::Stop;
        }
        let total = 4 + len;
        match b.get(4..total) {
            Some(m) => {
                let first = !std::mem::replace(&mut self.started, true);
                if let Some((r, _)) = message(dir, m, first, cx, TCP.name) {
                    cx.emit(r);
                }
                Frame::Consumed(total)
            }
            None => Frame::Need(total),
        }
    }

    fn stopped(&mut self, _cx: &mut Ctx<'_>) {}

    fn seeker(&self) -> Option<Seeker> {
        Some(Seeker {
            protocol: TCP.name,
            find: |_, b, _| krb5::resync_tcp(b),
        })
    }
}

/// One address of a request's `addresses`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Address {
    /// `netbios`, `ipv4`, `ipv6`, or the number of another type.
    #[serde(rename = "type")]
    pub kind: String,
    pub address: String,
}

/// One Kerberos message, in EVE's `krb5` layout and vocabulary
/// (`KRB_AS_REQ`, `KDC_ERR_PREAUTH_REQUIRED`, `AES256_CTS_HMAC_SHA1_96`).
#[skip_serializing_none]
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct KrbRecord {
    /// `KRB_AS_REQ`, `KRB_AS_REP`, `KRB_TGS_REQ`, `KRB_TGS_REP`, `KRB_ERROR`.
    pub msg_type: &'static str,
    /// The client principal, components joined by `/`.
    pub cname: Option<String>,
    /// A request's realm, a reply's or an error's client realm.
    pub realm: Option<String>,
    /// The service principal (a reply's: its ticket's).
    pub sname: Option<String>,
    /// A KRB-ERROR's code, by name where RFC 4120 names it.
    pub error_code: Option<String>,
    /// A KRB-ERROR's own realm (the server's).
    pub error_realm: Option<String>,
    /// A reply's enc-part encryption type.
    pub encryption: Option<String>,
    /// The enc-part is encrypted with DES or RC4.
    pub weak_encryption: Option<bool>,
    /// A reply's ticket encryption type.
    pub ticket_encryption: Option<String>,
    pub ticket_weak_encryption: Option<bool>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub addresses: Vec<Address>,
    #[serde(skip)]
    sender: Dir,
}

fn join(p: &Principal<'_>) -> String {
    let parts: Vec<String> = p.components.iter().map(|c| text::oem(c)).collect();
    parts.join("/")
}

/// An encryption type (RFC 3961 8, RFC 8009) as EVE names it.
fn etype_name(e: i64) -> String {
    match e {
        1 => "DES_CBC_CRC".into(),
        2 => "DES_CBC_MD4".into(),
        3 => "DES_CBC_MD5".into(),
        5 => "DES3_CBC_MD5".into(),
        16 => "DES3_CBC_SHA1".into(),
        17 => "AES128_CTS_HMAC_SHA1_96".into(),
        18 => "AES256_CTS_HMAC_SHA1_96".into(),
        19 => "AES128_CTS_HMAC_SHA256_128".into(),
        20 => "AES256_CTS_HMAC_SHA384_192".into(),
        23 => "RC4_HMAC".into(),
        24 => "RC4_HMAC_EXP".into(),
        25 => "CAMELLIA128_CTS_CMAC".into(),
        26 => "CAMELLIA256_CTS_CMAC".into(),
        n => n.to_string(),
    }
}

/// DES and RC4, as EVE judges them.
fn weak(e: i64) -> bool {
    matches!(e, 1..=3 | 23 | 24)
}

fn address(a: &krb5::HostAddress<'_>) -> Address {
    let (kind, address) = match (a.addr_type, a.address.len()) {
        (krb5::ADDR_NETBIOS, _) => ("netbios".into(), text::oem(a.address).trim_end().into()),
        (2, 4) => (
            "ipv4".into(),
            a.address
                .iter()
                .map(u8::to_string)
                .collect::<Vec<_>>()
                .join("."),
        ),
        (24, 16) => (
            "ipv6".into(),
            <[u8; 16]>::try_from(a.address)
                .map(|o| std::net::Ipv6Addr::from(o).to_string())
                .unwrap_or_default(),
        ),
        (t, _) => (t.to_string(), crate::render::hex(a.address)),
    };
    Address { kind, address }
}

impl KrbRecord {
    pub(crate) fn of(m: &krb5::Message<'_>, sender: Dir) -> Self {
        KrbRecord {
            msg_type: match m.msg_type {
                krb5::AS_REQ => "KRB_AS_REQ",
                krb5::AS_REP => "KRB_AS_REP",
                krb5::TGS_REQ => "KRB_TGS_REQ",
                krb5::TGS_REP => "KRB_TGS_REP",
                _ => "KRB_ERROR",
            },
            cname: m.cname.as_ref().map(join),
            realm: m.realm.map(text::oem),
            sname: m.sname.as_ref().map(join),
            error_code: m
                .error_code
                .map(|c| krb5::error_name(c).map_or_else(|| c.to_string(), str::to_owned)),
            error_realm: m.error_realm.map(text::oem),
            encryption: m.enc_etype.map(etype_name),
            weak_encryption: m.enc_etype.map(weak),
            ticket_encryption: m.ticket_etype.map(etype_name),
            ticket_weak_encryption: m.ticket_etype.map(weak),
            addresses: m.addresses.iter().map(address).collect(),
            sender,
        }
    }

    /// The host a machine account names: `NAME` of `NAME$`, also as an
    /// enterprise principal (`NAME$@domain`).
    pub fn machine_account(&self) -> Option<&str> {
        let c = self.cname.as_deref().filter(|c| !c.contains('/'))?;
        let account = c.split_once('@').map_or(c, |(a, _)| a);
        account.strip_suffix('$').filter(|a| !a.is_empty())
    }

    /// The host a host-based service name names: `NAME.domain` of
    /// `host/NAME.domain` or `cifs/NAME.domain:445`; not the KDC's own
    /// services.
    pub fn service_host(&self) -> Option<&str> {
        let (service, host) = self.sname.as_deref()?.split_once('/')?;
        if host.contains('/')
            || ["krbtgt", "kadmin", "changepw"].contains(&service.to_ascii_lowercase().as_str())
        {
            return None;
        }
        let host = host.split_once(':').map_or(host, |(h, _)| h);
        (!host.is_empty()).then_some(host)
    }
}

impl EventRecord for KrbRecord {
    const EVENT_TYPE: &'static str = "krb5";

    fn facts(&self, _name: &Name<'_>) -> Facts {
        // A ticket granted is a logon that worked; an error other than the
        // request for pre-authentication (the first step of every logon)
        // is one that did not.
        let outcome = match (self.msg_type, self.error_code.as_deref()) {
            ("KRB_AS_REP" | "KRB_TGS_REP", _) => Some(true),
            ("KRB_ERROR", Some("KDC_ERR_PREAUTH_REQUIRED")) => None,
            ("KRB_ERROR", _) => Some(false),
            _ => None,
        };
        Facts {
            outcome,
            ..Facts::default()
        }
    }

    fn names<'a>(&'a self, v: &mut Vec<Name<'a>>) {
        // The requester's own account, when the requester sent it; a reply
        // or an error repeats it (a lone forged reply must not name the
        // host it is sent to), so there it is only mentioned.
        if let Some(host) = self.machine_account() {
            let role = match self.sender {
                Dir::ToServer => Role::Client,
                Dir::ToClient => Role::Named,
            };
            v.push(Name::of("krb5.cname", role, host, true));
        }
        if let Some(host) = self.service_host() {
            v.push(Name::of("krb5.sname", Role::Named, host, true));
        }
        // A request's NetBIOS addresses are its sender's own names.
        if self.sender == Dir::ToServer {
            for a in self.addresses.iter().filter(|a| a.kind == "netbios") {
                v.push(Name::of(
                    "krb5.addresses.address",
                    Role::Client,
                    &a.address,
                    true,
                ));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(msg_type: &'static str, cname: &str, sender: Dir) -> KrbRecord {
        KrbRecord {
            msg_type,
            cname: Some(cname.to_string()),
            realm: Some("CORP.EXAMPLE".into()),
            sname: Some("krbtgt/CORP.EXAMPLE".into()),
            error_code: None,
            error_realm: None,
            encryption: None,
            weak_encryption: None,
            ticket_encryption: None,
            ticket_weak_encryption: None,
            addresses: Vec::new(),
            sender,
        }
    }

    fn names(r: &KrbRecord) -> Vec<(&'static str, Role, String)> {
        let mut v = Vec::new();
        r.names(&mut v);
        v.into_iter()
            .map(|n| (n.path, n.role, n.value.to_string()))
            .collect()
    }

    #[test]
    fn a_machine_account_is_its_senders_own_name_only_in_a_request() {
        let own = ("krb5.cname", Role::Client, "WIN-J9D866ESIJ2".to_string());
        assert_eq!(
            names(&record("KRB_AS_REQ", "WIN-J9D866ESIJ2$", Dir::ToServer)),
            [own]
        );
        // An enterprise principal (name type 10) says the same.
        let r = record("KRB_AS_REQ", "WIN-J9D866ESIJ2$@corp.example", Dir::ToServer);
        assert_eq!(names(&r)[0].2, "WIN-J9D866ESIJ2");
        // A reply repeats the account: a mention, whoever it is sent to.
        let reply = record("KRB_AS_REP", "WIN-J9D866ESIJ2$", Dir::ToClient);
        assert_eq!(
            names(&reply),
            [("krb5.cname", Role::Named, "WIN-J9D866ESIJ2".to_string())]
        );
        // A user is not a host; a service principal is not a machine account.
        assert!(names(&record("KRB_AS_REQ", "alice", Dir::ToServer)).is_empty());
        assert!(names(&record("KRB_AS_REQ", "host/WIN-X$", Dir::ToServer)).is_empty());
    }
}
