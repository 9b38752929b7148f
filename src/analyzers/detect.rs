//! Protocol detection by content, on any port. The first bytes of each
//! direction decide which analyzer gets the flow; a proxy handshake
//! (SOCKS4/5, HTTP CONNECT) in front of the real protocol is stepped over
//! first. Flows that nothing claims are searched for NTLMSSP messages
//! (carrier `raw`) within the reassembly depth.

use super::protocol::{Carrier, Fallback, Probe, Protocol};
use super::registry::PROTOCOLS;
use super::{Analyzer, Ctx, Dir, Status};
use crate::parsers::proxy::{self, Measure};

/// Bytes of each direction looked at before deciding at the latest.
const MAX_PEEK: usize = 2048;

/// The protocol whose probes recognise these first client and server
/// bytes: every client probe in registry order, then every server probe.
fn probe(client: &[u8], server: &[u8]) -> Option<&'static Protocol> {
    let streams = || {
        PROTOCOLS
            .iter()
            .filter_map(|p| Some((p, p.stream_probes()?)))
    };
    let matches =
        |probe: Option<Probe>, bytes: &[u8]| !bytes.is_empty() && probe.is_some_and(|f| f(bytes));
    streams()
        .find(|(_, (c, _, _))| matches(*c, client))
        .or_else(|| streams().find(|(_, (_, s, _))| matches(*s, server)))
        .map(|(p, _)| p)
}

/// Classifies a connection from its first client and server bytes: the
/// probes, then (on a connection picked up midstream, whose client was
/// guessed) the probes with the roles swapped, then the fallbacks. `None`
/// while more bytes are needed; `true` with a protocol when the side taken
/// for the client turned out to be the server.
pub fn classify(
    client: &[u8],
    server: &[u8],
    server_port: u16,
    enough: bool,
    midstream: bool,
) -> Option<(&'static Protocol, bool)> {
    if let Some(p) = probe(client, server) {
        return Some((p, false));
    }
    if midstream {
        if let Some(p) = probe(server, client) {
            return Some((p, true));
        }
    }
    // Unrecognised client bytes: the server's answer may still tell (an
    // RDP server confirming a malformed request, a mail banner); a server
    // that spoke first without a known banner: wait for the client.
    if (server.is_empty() || client.is_empty()) && !enough {
        return None;
    }
    let streams = || {
        PROTOCOLS
            .iter()
            .filter_map(|p| Some((p, p.stream_probes()?)))
    };
    streams()
        .find(
            |(_, (_, _, f))| matches!(f, Fallback::OnPorts(ports) if ports.contains(&server_port)),
        )
        .or_else(|| streams().find(|(_, (_, _, f))| *f == Fallback::Any))
        .map(|(p, _)| (p, false))
}

/// Creates the analyzer for a stream protocol.
fn analyzer_for(p: &Protocol, proxy: Option<&'static str>) -> Option<Box<dyn Analyzer>> {
    match p.carrier {
        Carrier::Stream { new, .. } => Some(new(proxy)),
        Carrier::Datagram { .. } => None,
    }
}

/// A proxy handshake being stepped over.
#[derive(Debug, Clone, Copy)]
struct Proxy {
    kind: proxy::Kind,
    /// Bytes of each direction the handshake takes, once known.
    len: [Option<usize>; 2],
}

/// The analyzer of a new flow until detection settles: it classifies the
/// flow by its first bytes and hands them to the protocol's analyzer.
pub struct Classifier {
    server_port: u16,
    peek: [Vec<u8>; 2],
    /// Which direction sent bytes first (replayed first).
    first: Option<Dir>,
    proxy: Option<Proxy>,
    proxy_checked: bool,
    inner: Option<Box<dyn Analyzer>>,
    /// The side taken for the client is the server (midstream).
    swap: bool,
}

impl Classifier {
    pub fn new(server_port: u16) -> Self {
        Classifier {
            server_port,
            peek: [Vec::new(), Vec::new()],
            first: None,
            proxy: None,
            proxy_checked: false,
            inner: None,
            swap: false,
        }
    }

    /// A direction as the flow table names it, as it really is.
    fn real(&self, dir: Dir) -> Dir {
        if self.swap {
            dir.other()
        } else {
            dir
        }
    }

    /// Tries to decide on the peeked bytes; on success replays them to the
    /// analyzer.
    fn decide(&mut self, enough: bool, cx: &mut Ctx<'_>) -> Option<Status> {
        let peek = std::mem::take(&mut self.peek);
        let status = self.decide_on([&peek[0], &peek[1]], enough, cx);
        if status.is_none() {
            self.peek = peek;
        }
        status
    }

    /// Tries to decide on each direction's first bytes, `peek`; on success
    /// replays them to the analyzer.
    fn decide_on(&mut self, peek: [&[u8]; 2], enough: bool, cx: &mut Ctx<'_>) -> Option<Status> {
        if !self.proxy_checked && !peek[0].is_empty() {
            self.proxy_checked = true;
            self.proxy = proxy::detect(peek[0]).map(|kind| Proxy {
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
                        proxy::client_len(p.kind, peek[0])
                    } else {
                        proxy::server_len(p.kind, peek[1])
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
        let client = peek[0].get(skip[0]..).unwrap_or(&[]);
        let server = peek[1].get(skip[1]..).unwrap_or(&[]);
        let (proto, swap) = classify(client, server, self.server_port, enough, cx.midstream)?;
        let mut inner = analyzer_for(proto, proxy_name)?;
        if swap {
            // The analyzer sees the directions as they really are; the
            // flow's envelope is corrected.
            self.swap = true;
            cx.roles_reversed = true;
        }
        let first = self.first.unwrap_or(Dir::ToServer);
        let mut status = Status::Continue;
        for dir in [first, first.other()] {
            let bytes = peek[dir.index()].get(skip[dir.index()]..).unwrap_or(&[]);
            if !bytes.is_empty() && status == Status::Continue {
                status = inner.data(self.real(dir), bytes, cx);
            }
        }
        self.inner = Some(inner);
        Some(status)
    }
}

impl Analyzer for Classifier {
    fn buffered(&self) -> usize {
        let peek: usize = self.peek.iter().map(Vec::capacity).sum();
        peek + self.inner.as_ref().map_or(0, |a| a.buffered())
    }

    fn data(&mut self, dir: Dir, data: &[u8], cx: &mut Ctx<'_>) -> Status {
        let real = self.real(dir);
        if let Some(inner) = self.inner.as_mut() {
            return inner.data(real, data, cx);
        }
        self.first.get_or_insert(dir);
        if self.peek.iter().all(Vec::is_empty) && data.len() < MAX_PEEK {
            // The connection's first bytes, decided on where they lie (most
            // handshakes say what they are in their first segment): copied
            // only when they are not enough.
            let mut first: [&[u8]; 2] = [&[], &[]];
            first[dir.index()] = data;
            if let Some(status) = self.decide_on(first, false, cx) {
                return status;
            }
            self.peek[dir.index()].extend_from_slice(data);
            return Status::Continue;
        }
        let peek = &mut self.peek[dir.index()];
        let room = MAX_PEEK.saturating_sub(peek.len());
        peek.extend_from_slice(&data[..data.len().min(room)]);
        let full = self.peek.iter().any(|p| p.len() >= MAX_PEEK);
        let status = self.decide(full, cx);
        if room < data.len() {
            // The detector stopped peeking at MAX_PEEK: hand the rest on.
            let real = self.real(dir);
            if let (Some(Status::Continue), Some(inner)) = (status, self.inner.as_mut()) {
                return inner.data(real, &data[room..], cx);
            }
        }
        status.unwrap_or(Status::Continue)
    }

    fn gap(&mut self, dir: Dir, len: u32, cx: &mut Ctx<'_>) -> Status {
        if self.inner.is_none() && self.decide(true, cx).is_none() {
            return Status::Done;
        }
        let real = self.real(dir);
        match self.inner.as_mut() {
            Some(inner) => inner.gap(real, len, cx),
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
    fn classify(c: &[u8], s: &[u8], port: u16, enough: bool) -> Option<&'static str> {
        super::classify(c, s, port, enough, false).map(|(p, _)| p.name)
    }

    /// A first segment that says what the connection is goes to its
    /// analyzer where it lies; one too short to tell is kept, and decided
    /// on with the bytes after it: the same analyzer, given the same bytes
    /// (its record names the client).
    #[test]
    fn a_first_segment_that_suffices_is_not_copied() {
        use crate::analyzers::{Analyzer, Ctx, Dir, Record, Status};
        // An X.224 Connection Request with a cookie.
        let cr =
            b"\x03\x00\x00\x2d\x28\xe0\x00\x00\x00\x00\x00Cookie: mstshash=WIN-J9D866ESIJ2\r\n";
        let cookie = |records: &[Record]| match records.first() {
            Some(Record::Rdp(r)) => r.cookie.clone(),
            _ => None,
        };
        let mut whole_records: Vec<Record> = Vec::new();
        let mut whole = super::Classifier::new(3389);
        let mut cx = Ctx::new(0, false, &mut whole_records);
        assert_eq!(whole.data(Dir::ToServer, cr, &mut cx), Status::Continue);
        assert!(whole.inner.is_some());
        assert_eq!(whole.peek.iter().map(Vec::capacity).sum::<usize>(), 0);
        whole.end(&mut cx);
        let mut piece_records: Vec<Record> = Vec::new();
        let mut pieces = super::Classifier::new(3389);
        let mut cx = Ctx::new(0, false, &mut piece_records);
        assert_eq!(
            pieces.data(Dir::ToServer, &cr[..3], &mut cx),
            Status::Continue
        );
        assert!(pieces.inner.is_none());
        assert_eq!(pieces.peek[0], &cr[..3]);
        assert_eq!(
            pieces.data(Dir::ToServer, &cr[3..], &mut cx),
            Status::Continue
        );
        assert!(pieces.inner.is_some());
        assert!(pieces.peek.iter().all(Vec::is_empty));
        pieces.end(&mut cx);
        assert_eq!(cookie(&whole_records).as_deref(), Some("WIN-J9D866ESIJ2"));
        assert_eq!(cookie(&piece_records), cookie(&whole_records));
    }

    #[test]
    fn classifies_by_content_on_any_port() {
        let cr = b"\x03\x00\x00\x13\x0e\xe0\x00\x00\x00\x00\x00\x01\x00\x08\x00\x03\x00\x00\x00";
        assert_eq!(classify(cr, b"", 8080, false), Some("rdp"));
        assert_eq!(
            classify(b"\x16\x03\x01\x02\x00\x01\x00\x01", b"", 3389, false),
            Some("tls")
        );
        assert_eq!(
            classify(b"\x00\x00\x00\x54\xfeSMB@\x00", b"", 9999, false),
            Some("smb")
        );
        assert_eq!(
            classify(b"PROPFIND /dav HTTP/1.1\r\n", b"", 1, false),
            Some("http")
        );
        assert_eq!(
            classify(
                b"RDG_OUT_DATA /remoteDesktopGateway/ HTTP/1.1\r\n",
                b"",
                443,
                false
            ),
            Some("http")
        );
        assert_eq!(
            classify(b"", b"220 mail ESMTP\r\n", 25, false),
            Some("smtp")
        );
        assert_eq!(
            classify(b"", b"* OK IMAP4rev1\r\n", 143, false),
            Some("imap")
        );
        assert_eq!(classify(b"", b"+OK POP3\r\n", 110, false), Some("pop3"));
        assert_eq!(
            classify(
                b"\x05\x00\x0b\x03\x10\x00\x00\x00\x74\x00\x00\x00\x02\x00\x00\x00",
                b"",
                49152,
                false
            ),
            Some("dcerpc")
        );
        assert_eq!(
            classify(b"\x30\x84\x00\x00\x00\x10\x02\x01\x01\x60", b"", 389, false),
            Some("ldap")
        );
        // Unknown client bytes: wait for the server, then decide.
        let ssh = b"SSH-2.0-OpenSSH_9.2p1\r\n";
        assert_eq!(classify(ssh, b"", 22, false), None);
        assert_eq!(classify(ssh, ssh, 22, false), Some("raw"));
        assert_eq!(classify(ssh, b"", 22, true), Some("raw"));
        let cc = b"\x03\x00\x00\x13\x0e\xd0\x00\x00\x12\x34\x00\x02\x00\x08\x00\x00\x00\x00\x00";
        assert_eq!(
            classify(b"ECODH\r\n\x01\x00\x08\x00", cc, 3389, false),
            Some("rdp")
        );
        // TDS: its pre-login packet on any port, or any stream on 1433.
        assert_eq!(
            classify(b"\x12\x01\x00\x2f", b"", 50000, false),
            Some("tds")
        );
        assert_eq!(classify(ssh, ssh, 1433, false), Some("tds"));
        // Picked up midstream with the server's answer first: the probes
        // with the roles swapped find it, and say so.
        let answer = b"HTTP/1.1 401 Unauthorized\r\n";
        let got = super::classify(answer, b"", 49152, false, true).map(|(p, s)| (p.name, s));
        assert_eq!(got, Some(("http", true)));
        assert_eq!(classify(answer, b"", 49152, false), None);
    }
}
