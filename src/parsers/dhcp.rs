//! DHCPv4 (RFC 2131, options RFC 2132, client FQDN RFC 4702, option
//! overload RFC 2132 9.3) and DHCPv6 (RFC 8415, client FQDN RFC 4704,
//! relay messages 9): the fields by which a client names itself and the
//! address it is given. Options are read as type-length-value runs; a
//! length running past the message ends the run with an error, never a
//! read beyond it.

use std::borrow::Cow;
use std::net::{Ipv4Addr, Ipv6Addr};

use nom::bytes::complete::take;
use nom::number::complete::{be_u16, be_u32, be_u8};
use nom::{IResult, Parser};

/// The BOOTP header before the options' magic cookie (RFC 2131 2).
const BOOTP_FIXED: usize = 236;
const MAGIC_COOKIE: [u8; 4] = [99, 130, 83, 99];
pub const BOOTREQUEST: u8 = 1;
pub const BOOTREPLY: u8 = 2;

/// DHCPv4 message types (option 53).
pub const DISCOVER: u8 = 1;
pub const OFFER: u8 = 2;
pub const REQUEST: u8 = 3;
pub const DECLINE: u8 = 4;
pub const ACK: u8 = 5;
pub const NAK: u8 = 6;
pub const RELEASE: u8 = 7;
pub const INFORM: u8 = 8;

/// DHCPv6 message types (RFC 8415 7.3).
pub mod v6 {
    pub const SOLICIT: u8 = 1;
    pub const ADVERTISE: u8 = 2;
    pub const REQUEST: u8 = 3;
    pub const CONFIRM: u8 = 4;
    pub const RENEW: u8 = 5;
    pub const REBIND: u8 = 6;
    pub const REPLY: u8 = 7;
    pub const RELEASE: u8 = 8;
    pub const DECLINE: u8 = 9;
    pub const RECONFIGURE: u8 = 10;
    pub const INFORMATION_REQUEST: u8 = 11;
    pub const RELAY_FORW: u8 = 12;
    pub const RELAY_REPL: u8 = 13;
}

/// Relay envelopes followed inside one another (RFC 8415 allows 32 hops;
/// real relays add one or two).
const MAX_RELAY_DEPTH: usize = 8;
/// Leased addresses kept from one DHCPv6 message.
pub const MAX_ADDRESSES: usize = 8;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum DhcpError {
    /// Not a DHCP message (no magic cookie, an unknown op or type).
    NotDhcp,
    Truncated {
        section: &'static str,
    },
    /// An option whose value has the wrong size for its type.
    BadOption {
        code: u16,
    },
}

impl std::fmt::Display for DhcpError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            DhcpError::NotDhcp => f.write_str("not a DHCP message"),
            DhcpError::Truncated { section } => write!(f, "DHCP {section} truncated"),
            DhcpError::BadOption { code } => write!(f, "DHCP option {code} has a bad length"),
        }
    }
}

impl std::error::Error for DhcpError {}

type R<'a, T> = IResult<&'a [u8], T>;

fn truncated(section: &'static str) -> impl Fn(nom::Err<nom::error::Error<&[u8]>>) -> DhcpError {
    move |_| DhcpError::Truncated { section }
}

/// A client FQDN option (v4 option 81, v6 option 39).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Fqdn<'a> {
    pub flags: u8,
    /// The name in DNS wire format (v6 always; v4 with the E flag), else
    /// as ASCII.
    pub wire: bool,
    pub name: &'a [u8],
}

/// The E flag of the v4 option: the name is in DNS wire format.
const FQDN_E: u8 = 0x04;

impl Fqdn<'_> {
    /// The name as dotted text, without the root's trailing dot; `None`
    /// when a wire-format name is malformed. Compression is not allowed in
    /// this option (RFC 4702 2.3.1), and a partial name ends without the
    /// root label.
    pub fn text(&self) -> Option<String> {
        if !self.wire {
            let s = super::text::oem(self.name);
            return Some(s.trim_end_matches('.').to_owned());
        }
        let mut out = String::new();
        let mut rest = self.name;
        while let Some((&len, tail)) = rest.split_first() {
            if len == 0 {
                break;
            }
            if len & 0xc0 != 0 {
                return None;
            }
            let label = tail.get(..usize::from(len))?;
            if !out.is_empty() {
                out.push('.');
            }
            out.push_str(&super::text::oem(label));
            rest = tail.get(usize::from(len)..)?;
        }
        Some(out)
    }
}

/// A DHCPv4 message: the header fields and the options hostwatch reads.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct V4<'a> {
    pub op: u8,
    pub xid: u32,
    pub ciaddr: Option<Ipv4Addr>,
    pub yiaddr: Option<Ipv4Addr>,
    pub giaddr: Option<Ipv4Addr>,
    pub htype: u8,
    /// The client hardware address, `hlen` bytes (at most 16).
    pub chaddr: &'a [u8],
    pub msg_type: Option<u8>,
    /// Option 12, its instances concatenated (RFC 3396: a value longer
    /// than 255 bytes, or split on purpose, comes in several).
    pub hostname: Option<Cow<'a, [u8]>>,
    /// Option 81.
    pub fqdn: Option<Fqdn<'a>>,
    /// Option 60.
    pub vendor_class: Option<&'a [u8]>,
    /// Option 50.
    pub requested_ip: Option<Ipv4Addr>,
    /// Option 54.
    pub server_id: Option<Ipv4Addr>,
    /// Option 51, seconds.
    pub lease_time: Option<u32>,
    /// Option 61.
    pub client_id: Option<&'a [u8]>,
    /// Options of a known code whose value had the wrong size: skipped, as
    /// a server skips them (one bad option does not void the message).
    pub bad_options: u32,
}

fn nonzero(a: u32) -> Option<Ipv4Addr> {
    (a != 0).then(|| Ipv4Addr::from(a))
}

/// Whether a datagram may be DHCPv4: a BOOTP message with the cookie.
pub fn looks_like_v4(b: &[u8]) -> bool {
    matches!(b.first(), Some(&(BOOTREQUEST | BOOTREPLY)))
        && b.get(BOOTP_FIXED..BOOTP_FIXED + 4) == Some(&MAGIC_COOKIE[..])
}

/// Whether a datagram may be DHCPv6: a known message type and a
/// transaction id.
pub fn looks_like_v6(b: &[u8]) -> bool {
    b.first()
        .is_some_and(|t| (v6::SOLICIT..=v6::RELAY_REPL).contains(t))
        && b.len() >= 4
}

/// Parses a DHCPv4 message (a BOOTP message with the magic cookie).
pub fn parse_v4(b: &[u8]) -> Result<V4<'_>, DhcpError> {
    let fixed: R<_> = (
        (be_u8, be_u8, be_u8, be_u8, be_u32, be_u16, be_u16),
        (be_u32, be_u32, be_u32, be_u32),
        take(16usize),
        take(64usize),
        take(128usize),
        take(4usize),
    )
        .parse(b);
    let (options, (head, addrs, chaddr, sname, file, cookie)) =
        fixed.map_err(truncated("header"))?;
    let (op, htype, hlen, _hops, xid, _secs, _flags) = head;
    let (ciaddr, yiaddr, _siaddr, giaddr) = addrs;
    if !(op == BOOTREQUEST || op == BOOTREPLY) || cookie != MAGIC_COOKIE {
        return Err(DhcpError::NotDhcp);
    }
    let mut m = V4 {
        op,
        xid,
        ciaddr: nonzero(ciaddr),
        yiaddr: nonzero(yiaddr),
        giaddr: nonzero(giaddr),
        htype,
        chaddr: chaddr.get(..usize::from(hlen).min(16)).unwrap_or(chaddr),
        ..V4::default()
    };
    let overload = options_v4(options, &mut m)?;
    // Option 52: the file and sname fields hold options too, in that order.
    if overload & 1 != 0 {
        options_v4(file, &mut m)?;
    }
    if overload & 2 != 0 {
        options_v4(sname, &mut m)?;
    }
    Ok(m)
}

fn addr4(code: u8, v: &[u8]) -> Result<Ipv4Addr, DhcpError> {
    <[u8; 4]>::try_from(v)
        .map(Ipv4Addr::from)
        .map_err(|_| DhcpError::BadOption { code: code.into() })
}

/// Reads one run of options into `m`; returns the overload option's value.
/// The first instance of an option is kept, but for the host name, whose
/// instances are concatenated (RFC 3396). An option whose value has the
/// wrong size is skipped and counted; a length past the end is an error.
fn options_v4<'a>(mut b: &'a [u8], m: &mut V4<'a>) -> Result<u8, DhcpError> {
    let mut overload = 0;
    while let Some((&code, rest)) = b.split_first() {
        match code {
            0 => {
                b = rest;
                continue;
            }
            255 => break,
            _ => {}
        }
        let opt: R<_> = nom::multi::length_data(be_u8).parse(rest);
        let (rest, v) = opt.map_err(truncated("options"))?;
        b = rest;
        if option_v4(code, v, m).is_err() {
            m.bad_options += 1;
        }
        if code == 52 {
            overload = v.first().copied().unwrap_or(0);
        }
    }
    Ok(overload)
}

/// The longest host name assembled from option 12's instances.
const MAX_HOSTNAME: usize = 1024;

/// Takes one option's value into `m`.
fn option_v4<'a>(code: u8, v: &'a [u8], m: &mut V4<'a>) -> Result<(), DhcpError> {
    match code {
        53 => {
            let t = *v.first().ok_or(DhcpError::BadOption { code: 53 })?;
            m.msg_type.get_or_insert(t);
        }
        12 if !v.is_empty() => match &mut m.hostname {
            None => m.hostname = Some(Cow::Borrowed(v)),
            Some(h) if h.len() < MAX_HOSTNAME => h.to_mut().extend_from_slice(v),
            Some(_) => {}
        },
        60 if !v.is_empty() => {
            m.vendor_class.get_or_insert(v);
        }
        61 if !v.is_empty() => {
            m.client_id.get_or_insert(v);
        }
        50 => {
            let a = addr4(code, v)?;
            m.requested_ip.get_or_insert(a);
        }
        54 => {
            let a = addr4(code, v)?;
            m.server_id.get_or_insert(a);
        }
        51 => {
            let t = <[u8; 4]>::try_from(v).map_err(|_| DhcpError::BadOption { code: 51 })?;
            m.lease_time.get_or_insert(u32::from_be_bytes(t));
        }
        81 => {
            // Flags, two obsolete RCODE bytes, then the name.
            let (&flags, rest) = v.split_first().ok_or(DhcpError::BadOption { code: 81 })?;
            let name = rest.get(2..).ok_or(DhcpError::BadOption { code: 81 })?;
            m.fqdn.get_or_insert(Fqdn {
                flags,
                wire: flags & FQDN_E != 0,
                name,
            });
        }
        _ => {}
    }
    Ok(())
}

/// A DHCPv6 message, relay envelopes opened.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct V6<'a> {
    pub msg_type: u8,
    /// 24-bit transaction id.
    pub xid: u32,
    /// The client's address as the innermost relay saw it (peer-address).
    pub relayed_for: Option<Ipv6Addr>,
    /// Option 1, the client's DUID.
    pub client_duid: Option<&'a [u8]>,
    /// Option 39.
    pub fqdn: Option<Fqdn<'a>>,
    /// Option 16: the enterprise number's data, first class.
    pub vendor_class: Option<&'a [u8]>,
    /// IAADDR addresses inside IA_NA and IA_TA options, at most
    /// [`MAX_ADDRESSES`].
    pub addresses: Vec<Ipv6Addr>,
}

/// Parses a DHCPv6 message.
pub fn parse_v6(b: &[u8]) -> Result<V6<'_>, DhcpError> {
    let mut m = V6::default();
    let mut b = b;
    for _ in 0..=MAX_RELAY_DEPTH {
        let (&t, rest) = b
            .split_first()
            .ok_or(DhcpError::Truncated { section: "header" })?;
        match t {
            v6::RELAY_FORW | v6::RELAY_REPL => {
                let relay: R<_> = (be_u8, take(16usize), take(16usize)).parse(rest);
                let (options, (_hops, _link, peer)) = relay.map_err(truncated("relay header"))?;
                m.relayed_for = <[u8; 16]>::try_from(peer).ok().map(Ipv6Addr::from);
                let mut inner = None;
                each_option_v6(options, |code, v| {
                    if code == 9 {
                        inner.get_or_insert(v);
                    }
                    Ok(())
                })?;
                b = inner.ok_or(DhcpError::Truncated {
                    section: "relay message",
                })?;
            }
            v6::SOLICIT..=v6::INFORMATION_REQUEST => {
                let xid = rest.get(..3).and_then(|x| <[u8; 3]>::try_from(x).ok());
                let [x0, x1, x2] = xid.ok_or(DhcpError::Truncated { section: "header" })?;
                m.msg_type = t;
                m.xid = u32::from_be_bytes([0, x0, x1, x2]);
                let options = rest.get(3..).unwrap_or_default();
                options_v6(options, &mut m)?;
                return Ok(m);
            }
            _ => return Err(DhcpError::NotDhcp),
        }
    }
    Err(DhcpError::Truncated {
        section: "relay nesting",
    })
}

fn each_option_v6<'a>(
    mut b: &'a [u8],
    mut f: impl FnMut(u16, &'a [u8]) -> Result<(), DhcpError>,
) -> Result<(), DhcpError> {
    while !b.is_empty() {
        let opt: R<_> = (be_u16, nom::multi::length_data(be_u16)).parse(b);
        let (rest, (code, v)) = opt.map_err(truncated("options"))?;
        f(code, v)?;
        b = rest;
    }
    Ok(())
}

fn options_v6<'a>(b: &'a [u8], m: &mut V6<'a>) -> Result<(), DhcpError> {
    each_option_v6(b, |code, v| {
        match code {
            1 if !v.is_empty() => {
                m.client_duid.get_or_insert(v);
            }
            39 => {
                let (&flags, name) = v.split_first().ok_or(DhcpError::BadOption { code })?;
                m.fqdn.get_or_insert(Fqdn {
                    flags,
                    wire: true,
                    name,
                });
            }
            16 => {
                // Enterprise number, then (length, data) classes.
                let class: R<_> = (be_u32, nom::multi::length_data(be_u16)).parse(v);
                let (_, (_, data)) = class.map_err(|_| DhcpError::BadOption { code })?;
                m.vendor_class.get_or_insert(data);
            }
            // IA_NA: IAID, T1, T2, options; IA_TA: IAID, options.
            3 | 4 => {
                let skip = if code == 3 { 12 } else { 4 };
                let inner = v.get(skip..).ok_or(DhcpError::BadOption { code })?;
                each_option_v6(inner, |c, a| {
                    if c == 5 {
                        let addr = a.get(..16).ok_or(DhcpError::BadOption { code: 5 })?;
                        let addr = <[u8; 16]>::try_from(addr)
                            .map_err(|_| DhcpError::BadOption { code: 5 })?;
                        if m.addresses.len() < MAX_ADDRESSES {
                            m.addresses.push(Ipv6Addr::from(addr));
                        }
                    }
                    Ok(())
                })?;
            }
            _ => {}
        }
        Ok(())
    })
}

/// The link-layer address in a DUID-LLT (type 1) or DUID-LL (type 3) of
/// Ethernet (hardware type 1).
pub fn duid_mac(duid: &[u8]) -> Option<&[u8]> {
    let (kind, rest) = (duid.get(..2)?, duid.get(2..)?);
    let hw = rest.get(..2)?;
    let addr = match kind {
        [0, 1] => rest.get(6..)?,
        [0, 3] => rest.get(2..)?,
        _ => return None,
    };
    (hw == [0, 1] && addr.len() == 6).then_some(addr)
}

#[cfg(test)]
#[path = "dhcp_tests.rs"]
mod tests;
