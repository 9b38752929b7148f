//! CLDAP netlogon pings on UDP 389: a machine looking for its domain
//! controller names itself (`Host`) and its account (`User`, `NAME$`);
//! the DC answers with its own DNS and NetBIOS names. Each ping and each
//! answer is a `cldap` event.

use serde::Serialize;

use super::exchange::Awaiting;
use super::protocol::{Carrier, EventRecord, Name, Protocol, Role, Scope};
use super::{Ctx, DatagramAnalyzer, Dir};
use crate::parsers::cldap::{self, CldapError, Message};
use crate::parsers::text;

pub const PROTOCOL: Protocol = Protocol {
    name: "cldap",
    carrier: Carrier::Datagram {
        ports: &[389],
        probe: cldap::looks_like,
        anywhere: Some(cldap::is_ping),
        new: || Box::<CldapAnalyzer>::default(),
        scope: Scope::Endpoints,
    },
};

/// One conversation: a ping is written when the DC's answer with its
/// message id comes, so that it reads as answered, or unanswered after the
/// timeout.
#[derive(Debug, Default)]
pub struct CldapAnalyzer {
    started: bool,
    awaiting: Awaiting<CldapRecord>,
}

impl DatagramAnalyzer for CldapAnalyzer {
    fn datagram(&mut self, dir: Dir, payload: &[u8], cx: &mut Ctx<'_>) {
        self.awaiting.expire(cx.ts_us, cx);
        let first = !std::mem::replace(&mut self.started, true);
        let record = match cldap::message(payload) {
            Ok(Message::Request { message_id, terms }) => {
                let value = |a: &str| cldap::term(&terms, a).map(text::oem);
                CldapRecord {
                    message_id,
                    domain: value("DnsDomain"),
                    host: value("Host"),
                    user: value("User"),
                    nt_version: cldap::term(&terms, "NtVer")
                        .and_then(|v| <[u8; 4]>::try_from(v).ok())
                        .map(|v| format!("0x{:08x}", u32::from_le_bytes(v))),
                    response: None,
                    sender: dir,
                }
            }
            Ok(Message::Entry {
                message_id,
                netlogon: Some(v),
            }) => match cldap::netlogon_response(v) {
                Ok(r) => {
                    let mut dir = dir;
                    if first && dir == Dir::ToServer {
                        // An answer whose ping was missed: its sender is the DC.
                        cx.roles_reversed = true;
                        dir = Dir::ToClient;
                    }
                    CldapRecord {
                        message_id,
                        domain: None,
                        host: None,
                        user: None,
                        nt_version: None,
                        response: Some(Response::of(r)),
                        sender: dir,
                    }
                }
                Err(CldapError::NotPing) => return,
                Err(_) => return cx.parse_error(PROTOCOL.name),
            },
            Ok(Message::Entry { netlogon: None, .. }) | Err(CldapError::NotPing) => return,
            Err(_) => return cx.parse_error(PROTOCOL.name),
        };
        let id = Some(record.message_id);
        if record.response.is_some() {
            self.awaiting.answer(id, record, cx);
        } else {
            self.awaiting.request(id, record, cx);
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

/// A domain controller's NETLOGON_SAM_LOGON_RESPONSE_EX.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Response {
    /// `LOGON_SAM_LOGON_RESPONSE_EX`, `LOGON_SAM_PAUSE_RESPONSE_EX` or
    /// `LOGON_SAM_USER_UNKNOWN_EX` (the account asked about is unknown).
    pub opcode: &'static str,
    /// DS_FLAG bits (MS-ADTS 6.3.1.2), hexadecimal.
    pub flags: String,
    pub dns_forest_name: String,
    pub dns_domain_name: String,
    pub dns_host_name: String,
    pub netbios_domain_name: String,
    pub netbios_computer_name: String,
    /// The account the ping asked about, as the DC repeats it.
    #[serde(skip_serializing_if = "String::is_empty")]
    pub user_name: String,
    pub dc_site_name: String,
    pub client_site_name: String,
}

impl Response {
    fn of(r: cldap::NetlogonResponse) -> Self {
        Response {
            opcode: match r.opcode {
                cldap::LOGON_SAM_LOGON_RESPONSE_EX => "LOGON_SAM_LOGON_RESPONSE_EX",
                cldap::LOGON_SAM_PAUSE_RESPONSE_EX => "LOGON_SAM_PAUSE_RESPONSE_EX",
                _ => "LOGON_SAM_USER_UNKNOWN_EX",
            },
            flags: format!("0x{:08x}", r.flags),
            dns_forest_name: r.dns_forest_name,
            dns_domain_name: r.dns_domain_name,
            dns_host_name: r.dns_host_name,
            netbios_domain_name: r.netbios_domain_name,
            netbios_computer_name: r.netbios_computer_name,
            user_name: r.user_name,
            dc_site_name: r.dc_site_name,
            client_site_name: r.client_site_name,
        }
    }
}

/// One ping or answer.
#[serde_with::skip_serializing_none]
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct CldapRecord {
    pub message_id: u64,
    /// The ping's `DnsDomain`.
    pub domain: Option<String>,
    /// The ping's `Host`: the pinging machine's name.
    pub host: Option<String>,
    /// The ping's `User`: its account, `NAME$` for a machine.
    pub user: Option<String>,
    /// The ping's `NtVer` flags, hexadecimal.
    pub nt_version: Option<String>,
    pub response: Option<Response>,
    #[serde(skip)]
    sender: Dir,
}

fn machine_account(user: &str) -> Option<&str> {
    user.strip_suffix('$').filter(|u| !u.is_empty())
}

impl EventRecord for CldapRecord {
    const EVENT_TYPE: &'static str = "cldap";

    /// EVE calls LDAP over UDP `ldap` too.
    fn app_proto(&self) -> Option<&'static str> {
        Some("ldap")
    }

    fn names<'a>(&'a self, v: &mut Vec<Name<'a>>) {
        let own = match self.sender {
            Dir::ToServer => Role::Client,
            Dir::ToClient => Role::Server,
        };
        Name::push(v, "cldap.host", own, self.host.as_ref(), true);
        if let Some(host) = self.user.as_deref().and_then(machine_account) {
            v.push(Name::of("cldap.user", own, host, true));
        }
        if let Some(r) = &self.response {
            for (path, n) in [
                ("cldap.response.dns_host_name", &r.dns_host_name),
                (
                    "cldap.response.netbios_computer_name",
                    &r.netbios_computer_name,
                ),
            ] {
                if !n.is_empty() {
                    v.push(Name::of(path, own, n, true));
                }
            }
            // The account the client asked about, repeated by the DC.
            if let Some(host) = machine_account(&r.user_name) {
                v.push(Name::of(
                    "cldap.response.user_name",
                    Role::Named,
                    host,
                    true,
                ));
            }
        }
    }
}
