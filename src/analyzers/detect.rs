//! Protocol detection by content, on any port. The first bytes of each
//! direction decide which analyzer gets the flow; a proxy handshake
//! (SOCKS4/5, HTTP CONNECT) in front of the real protocol is stepped over
//! first. Flows that nothing claims are searched for NTLMSSP messages
//! (carrier `raw`) within the reassembly depth.

use memchr::memmem;

use super::http::HttpAnalyzer;
use super::ldap::LdapAnalyzer;
use super::lines::{LineAnalyzer, LineProtocol};
use super::raw::RawAnalyzer;
use super::rdp::RdpAnalyzer;
use super::rpc::RpcAnalyzer;
use super::smb::SmbAnalyzer;
use super::tls::TlsAnalyzer;
use super::{Analyzer, Ctx, Dir, Status};
use crate::parsers::proxy::{self, Measure};
use crate::parsers::{dcerpc, ldap, rdp::x224, tls};

/// Bytes of each direction looked at before deciding at the latest.
const MAX_PEEK: usize = 2048;

/// What the detector settled on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Protocol {
    Rdp,
    Tls,
    Smb,
    Http,
    DceRpc,
    Ldap,
    Smtp,
    Imap,
    Pop3,
    Tds,
    Raw,
}

/// Classifies a connection from its first client and server bytes;
/// `None` while more bytes are needed.
pub fn classify(client: &[u8], server: &[u8], server_port: u16, enough: bool) -> Option<Protocol> {
    if let Some(p) = classify_client(client) {
        return Some(p);
    }
    if let Some(p) = classify_server(server) {
        return Some(p);
    }
    // Unrecognised client bytes: the server's answer may still tell (an
    // RDP server confirming a malformed request, a mail banner).
    if server.is_empty() && !enough {
        return None;
    }
    if client.is_empty() && !enough {
        // A server that spoke first without a known banner: wait for the client.
        return None;
    }
    if server_port == 1433 || client.first() == Some(&0x12) && client.get(1) == Some(&0x01) {
        return Some(Protocol::Tds);
    }
    Some(Protocol::Raw)
}

fn classify_client(c: &[u8]) -> Option<Protocol> {
    if x224::looks_like_request(c) == Some(true) {
        return Some(Protocol::Rdp);
    }
    if tls::looks_like_client_hello(c) == Some(true) {
        return Some(Protocol::Tls);
    }
    if is_smb(c) {
        return Some(Protocol::Smb);
    }
    if is_http_request(c) {
        return Some(Protocol::Http);
    }
    if dcerpc::looks_like_bind(c) == Some(true) {
        return Some(Protocol::DceRpc);
    }
    if ldap::looks_like_bind(c) == Some(true) {
        return Some(Protocol::Ldap);
    }
    let upper = |n: usize| c.get(..n).map(|p| p.to_ascii_uppercase());
    match upper(5).as_deref() {
        Some(b"EHLO ") | Some(b"HELO ") => return Some(Protocol::Smtp),
        _ => {}
    }
    None
}

fn classify_server(s: &[u8]) -> Option<Protocol> {
    if x224::looks_like_confirm(s) == Some(true) {
        return Some(Protocol::Rdp);
    }
    if is_smb(s) {
        return Some(Protocol::Smb);
    }
    if s.starts_with(b"220 ") || s.starts_with(b"220-") {
        return Some(Protocol::Smtp);
    }
    if s.starts_with(b"* OK") || s.starts_with(b"* PREAUTH") {
        return Some(Protocol::Imap);
    }
    if s.starts_with(b"+OK") {
        return Some(Protocol::Pop3);
    }
    None
}

/// NetBIOS session message carrying SMB1/2/3, or a NetBIOS session request.
fn is_smb(b: &[u8]) -> bool {
    match b.first() {
        Some(0x00) => matches!(
            b.get(4..8),
            Some(b"\xffSMB") | Some(b"\xfeSMB") | Some(b"\xfdSMB")
        ),
        Some(0x81) => b.len() >= 4 && b[1] <= 1,
        _ => false,
    }
}

/// `METHOD SP target SP HTTP/1.x` on the first line.
fn is_http_request(b: &[u8]) -> bool {
    let line_end = memchr::memchr(b'\n', &b[..b.len().min(MAX_PEEK)]).unwrap_or(b.len());
    let line = &b[..line_end];
    let Some(sp) = memchr::memchr(b' ', line) else {
        return false;
    };
    let method = &line[..sp];
    !method.is_empty()
        && method.len() <= 24
        && method
            .iter()
            .all(|c| c.is_ascii_uppercase() || *c == b'_' || *c == b'-')
        && memmem::find(line, b" HTTP/1.").is_some()
}

/// Creates the analyzer for a protocol.
pub fn analyzer_for(p: Protocol, proxy: Option<&'static str>) -> Box<dyn Analyzer> {
    match p {
        Protocol::Rdp => Box::new(RdpAnalyzer::new(proxy)),
        Protocol::Tls => Box::<TlsAnalyzer>::default(),
        Protocol::Smb => Box::<SmbAnalyzer>::default(),
        Protocol::Http => Box::<HttpAnalyzer>::default(),
        Protocol::DceRpc => Box::<RpcAnalyzer>::default(),
        Protocol::Ldap => Box::<LdapAnalyzer>::default(),
        Protocol::Smtp => Box::new(LineAnalyzer::new(LineProtocol::Smtp)),
        Protocol::Imap => Box::new(LineAnalyzer::new(LineProtocol::Imap)),
        Protocol::Pop3 => Box::new(LineAnalyzer::new(LineProtocol::Pop3)),
        Protocol::Tds => Box::new(RawAnalyzer::new("tds")),
        Protocol::Raw => Box::new(RawAnalyzer::new("raw")),
    }
}

/// A proxy handshake being stepped over.
#[derive(Debug, Clone, Copy)]
struct Proxy {
    kind: proxy::Kind,
    /// Bytes of each direction the handshake takes, once known.
    len: [Option<usize>; 2],
}

/// The analyzer of a new flow until detection settles.
pub struct Detector {
    server_port: u16,
    peek: [Vec<u8>; 2],
    /// Which direction sent bytes first (replayed first).
    first: Option<Dir>,
    proxy: Option<Proxy>,
    proxy_checked: bool,
    inner: Option<Box<dyn Analyzer>>,
}

impl Detector {
    pub fn new(server_port: u16) -> Self {
        Detector {
            server_port,
            peek: [Vec::new(), Vec::new()],
            first: None,
            proxy: None,
            proxy_checked: false,
            inner: None,
        }
    }

    /// Tries to decide; on success replays the peeked bytes to the analyzer.
    fn decide(&mut self, enough: bool, cx: &mut Ctx<'_>) -> Option<Status> {
        if !self.proxy_checked && !self.peek[0].is_empty() {
            self.proxy_checked = true;
            self.proxy = proxy::detect(&self.peek[0]).map(|kind| Proxy {
                kind,
                len: [None, None],
            });
        }
        let mut skip = [0usize; 2];
        let mut proxy_name = None;
        if let Some(p) = self.proxy.as_mut() {
            for d in 0..2 {
                if p.len[d].is_none() {
                    let m = if d == 0 {
                        proxy::client_len(p.kind, &self.peek[0])
                    } else {
                        proxy::server_len(p.kind, &self.peek[1])
                    };
                    match m {
                        Measure::Done(n) => p.len[d] = Some(n),
                        Measure::Incomplete if !enough => return None,
                        // A failed or unfinished handshake: not a proxied flow.
                        Measure::Incomplete | Measure::Invalid => {
                            self.proxy = None;
                            break;
                        }
                    }
                }
            }
            if let Some(p) = self.proxy {
                skip = [p.len[0].unwrap_or(0), p.len[1].unwrap_or(0)];
                proxy_name = Some(p.kind.name());
            }
        }
        let client = self.peek[0].get(skip[0]..).unwrap_or(&[]);
        let server = self.peek[1].get(skip[1]..).unwrap_or(&[]);
        let proto = classify(client, server, self.server_port, enough)?;
        let mut inner = analyzer_for(proto, proxy_name);
        let first = self.first.unwrap_or(Dir::ToServer);
        let mut status = Status::Continue;
        for dir in [first, first.other()] {
            let bytes = self.peek[dir.index()]
                .get(skip[dir.index()]..)
                .unwrap_or(&[]);
            if !bytes.is_empty() && status == Status::Continue {
                status = inner.data(dir, bytes, cx);
            }
        }
        self.peek = [Vec::new(), Vec::new()];
        self.inner = Some(inner);
        Some(status)
    }
}

impl Analyzer for Detector {
    fn data(&mut self, dir: Dir, data: &[u8], cx: &mut Ctx<'_>) -> Status {
        if let Some(inner) = self.inner.as_mut() {
            return inner.data(dir, data, cx);
        }
        self.first.get_or_insert(dir);
        let peek = &mut self.peek[dir.index()];
        let room = MAX_PEEK.saturating_sub(peek.len());
        peek.extend_from_slice(&data[..data.len().min(room)]);
        let full = self.peek.iter().any(|p| p.len() >= MAX_PEEK);
        let status = self.decide(full, cx);
        if room < data.len() {
            // The detector stopped peeking at MAX_PEEK: hand the rest on.
            if let (Some(Status::Continue), Some(inner)) = (status, self.inner.as_mut()) {
                return inner.data(dir, &data[room..], cx);
            }
        }
        status.unwrap_or(Status::Continue)
    }

    fn gap(&mut self, dir: Dir, len: u32, cx: &mut Ctx<'_>) -> Status {
        if self.inner.is_none() && self.decide(true, cx).is_none() {
            return Status::Done;
        }
        match self.inner.as_mut() {
            Some(inner) => inner.gap(dir, len, cx),
            None => Status::Done,
        }
    }

    fn depth(&self) -> Option<u32> {
        self.inner.as_ref().and_then(|i| i.depth())
    }

    fn end(&mut self, cx: &mut Ctx<'_>) {
        if self.inner.is_none() && (!self.peek[0].is_empty() || !self.peek[1].is_empty()) {
            let _ = self.decide(true, cx);
        }
        if let Some(inner) = self.inner.as_mut() {
            inner.end(cx);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn classifies_by_content_on_any_port() {
        let cr = b"\x03\x00\x00\x13\x0e\xe0\x00\x00\x00\x00\x00\x01\x00\x08\x00\x03\x00\x00\x00";
        assert_eq!(classify(cr, b"", 8080, false), Some(Protocol::Rdp));
        assert_eq!(
            classify(b"\x16\x03\x01\x02\x00\x01\x00\x01", b"", 3389, false),
            Some(Protocol::Tls)
        );
        assert_eq!(
            classify(b"\x00\x00\x00\x54\xfeSMB@\x00", b"", 9999, false),
            Some(Protocol::Smb)
        );
        assert_eq!(
            classify(b"PROPFIND /dav HTTP/1.1\r\n", b"", 1, false),
            Some(Protocol::Http)
        );
        assert_eq!(
            classify(
                b"RDG_OUT_DATA /remoteDesktopGateway/ HTTP/1.1\r\n",
                b"",
                443,
                false
            ),
            Some(Protocol::Http)
        );
        assert_eq!(
            classify(b"", b"220 mail ESMTP\r\n", 25, false),
            Some(Protocol::Smtp)
        );
        assert_eq!(
            classify(b"", b"* OK IMAP4rev1\r\n", 143, false),
            Some(Protocol::Imap)
        );
        assert_eq!(
            classify(b"", b"+OK POP3\r\n", 110, false),
            Some(Protocol::Pop3)
        );
        assert_eq!(
            classify(
                b"\x05\x00\x0b\x03\x10\x00\x00\x00\x74\x00\x00\x00\x02\x00\x00\x00",
                b"",
                49152,
                false
            ),
            Some(Protocol::DceRpc)
        );
        assert_eq!(
            classify(b"\x30\x84\x00\x00\x00\x10\x02\x01\x01\x60", b"", 389, false),
            Some(Protocol::Ldap)
        );
        // Unknown client bytes: wait for the server, then decide.
        let ssh = b"SSH-2.0-OpenSSH_9.2p1\r\n";
        assert_eq!(classify(ssh, b"", 22, false), None);
        assert_eq!(classify(ssh, ssh, 22, false), Some(Protocol::Raw));
        assert_eq!(classify(ssh, b"", 22, true), Some(Protocol::Raw));
        let cc = b"\x03\x00\x00\x13\x0e\xd0\x00\x00\x12\x34\x00\x02\x00\x08\x00\x00\x00\x00\x00";
        assert_eq!(
            classify(b"ECODH\r\n\x01\x00\x08\x00", cc, 3389, false),
            Some(Protocol::Rdp)
        );
    }
}
