//! Browser announcements on the NetBIOS datagram service (UDP 138): each
//! host, local master and domain announcement is a `browser` event. The
//! announcing server's name is its own when the address the datagram
//! states is the sender's (checked by detection, as for the name service);
//! a domain announcement names a workgroup, and its comment the master
//! browser that sent it.

use serde::Serialize;

use super::protocol::{Carrier, EventRecord, Facts, Name, Protocol, Role, Scope};
use super::{Ctx, DatagramAnalyzer, Dir};
use crate::parsers::browser::{self, Announcement};
use crate::parsers::text;

pub const PROTOCOL: Protocol = Protocol {
    name: "browser",
    carrier: Carrier::Datagram {
        ports: &[138],
        probe: browser::looks_like,
        anywhere: None,
        new: || Box::new(BrowserAnalyzer),
        scope: Scope::Endpoints,
    },
};

/// Announcements stand alone: nothing is held between datagrams.
#[derive(Debug, Default)]
pub struct BrowserAnalyzer;

impl DatagramAnalyzer for BrowserAnalyzer {
    fn datagram(&mut self, dir: Dir, payload: &[u8], cx: &mut Ctx<'_>) {
        let d = match browser::parse(payload) {
            Ok(d) => d,
            Err(browser::BrowserError::NotBrowser) => return,
            Err(_) => {
                cx.parse_error(PROTOCOL.name);
                return;
            }
        };
        let Some(a) = d.announcement else {
            return;
        };
        cx.emit(BrowserRecord::of(&a, &d, dir));
    }

    fn end(&mut self, _cx: &mut Ctx<'_>) {}
}

/// One announcement.
#[serde_with::skip_serializing_none]
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct BrowserRecord {
    /// `host`, `local_master` or `domain`.
    pub announcement: &'static str,
    /// The announcing server (host, local master announcements).
    pub server_name: Option<String>,
    /// The workgroup: a domain announcement's subject, else the name the
    /// datagram went to.
    pub workgroup: Option<String>,
    /// The master browser a domain announcement names.
    pub master_browser: Option<String>,
    /// `major.minor` as announced (Windows 10 and Samba say 6.1 or 10.0).
    pub os_version: String,
    /// The SV_TYPE bits (MS-RAP 5.1.1), hexadecimal.
    pub server_type: String,
    pub comment: Option<String>,
    /// The sender's NetBIOS name and address as the datagram states them.
    pub source_name: String,
    pub source_ip: std::net::IpAddr,
    pub periodicity_ms: u32,
    #[serde(skip)]
    sender: Dir,
    /// The announced OS version, for weighing (a domain announcement's
    /// version fields hold the browser protocol's version instead).
    #[serde(skip)]
    os: Option<(u8, u8)>,
}

fn non_empty(b: &[u8]) -> Option<String> {
    let s = text::oem(b);
    let t = s.trim();
    (!t.is_empty()).then(|| t.to_owned())
}

impl BrowserRecord {
    fn of(a: &Announcement<'_>, d: &browser::NetbiosDatagram<'_>, sender: Dir) -> Self {
        let domain = a.opcode == browser::DOMAIN_ANNOUNCEMENT;
        let (server_name, workgroup, master_browser, comment) = if domain {
            (None, non_empty(a.server_name), non_empty(a.comment), None)
        } else {
            (
                non_empty(a.server_name),
                non_empty(d.destination_name.name()),
                None,
                non_empty(a.comment),
            )
        };
        BrowserRecord {
            announcement: match a.opcode {
                browser::HOST_ANNOUNCEMENT => "host",
                browser::LOCAL_MASTER_ANNOUNCEMENT => "local_master",
                _ => "domain",
            },
            server_name,
            workgroup,
            master_browser,
            os_version: format!("{}.{}", a.os_major, a.os_minor),
            server_type: format!("0x{:08x}", a.server_type),
            comment,
            source_name: text::oem(d.source_name.name()),
            source_ip: d.source_ip.into(),
            periodicity_ms: a.periodicity_ms,
            sender,
            os: (!domain).then_some((a.os_major, a.os_minor)),
        }
    }
}

impl EventRecord for BrowserRecord {
    const EVENT_TYPE: &'static str = "browser";

    fn facts(&self, _name: &Name<'_>) -> Facts {
        Facts {
            os_version: self.os,
            ..Facts::default()
        }
    }

    fn names<'a>(&'a self, v: &mut Vec<Name<'a>>) {
        // The sender announces itself; the address the datagram states
        // must be the sender's for detection to take it so.
        let role = match self.sender {
            Dir::ToServer => Role::Client,
            Dir::ToClient => Role::Server,
        };
        for (path, value) in [
            ("browser.server_name", &self.server_name),
            ("browser.master_browser", &self.master_browser),
        ] {
            if let Some(n) = value {
                v.push(Name::at(path, role, n, Some(self.source_ip)));
            }
        }
    }
}
