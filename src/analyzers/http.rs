//! NTLM over HTTP (and WinRM, Exchange, RD Gateway, proxies): the
//! `Authorization` / `Proxy-Authorization` request headers and the
//! `WWW-Authenticate` / `Proxy-Authenticate` response headers with scheme
//! `NTLM` or `Negotiate`. Message bodies are skipped by their length; the
//! status of the response to the AUTHENTICATE is the verdict. Keep-alive
//! connections with several exchanges give several records.

use super::framing::{Frame, Framed, Framer, Seeker};
use super::ntlm::{Status, Tracker};
use super::protocol::{Carrier, Fallback, Protocol};
use super::{Ctx, Dir};
use crate::parsers::{http, spnego};

/// Largest header block read: the largest NTLM message read (64 KiB),
/// base64-encoded, with the rest of a head.
const MAX_HEAD: usize = 128 << 10;
/// Requests whose methods are remembered for their responses.
const MAX_PIPELINE: usize = 16;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Body {
    /// At a message boundary.
    None,
    /// Inside a chunked body, at a chunk-size line.
    Chunked,
}

/// HTTP/1.x (also WinRM, RD Gateway, proxies), from the request line.
pub const PROTOCOL: Protocol = Protocol {
    name: "http",
    carrier: Carrier::Stream {
        client: Some(http::looks_like_request),
        server: Some(http::looks_like_response),
        fallback: Fallback::No,
        new: |_| Box::<HttpAnalyzer>::default(),
    },
};

#[derive(Debug)]
pub struct HttpAnalyzer {
    framers: [Framer; 2],
    body: [Body; 2],
    /// Whether each pending request was a HEAD (its response has no body).
    head_requests: std::collections::VecDeque<bool>,
    tracker: Option<Tracker>,
}

impl Default for HttpAnalyzer {
    fn default() -> Self {
        HttpAnalyzer {
            framers: [Framer::new(MAX_HEAD), Framer::new(MAX_HEAD)],
            body: [Body::None, Body::None],
            head_requests: Default::default(),
            tracker: None,
        }
    }
}

impl HttpAnalyzer {
    /// Handles a complete header block; returns how the body is framed:
    /// `Some(n)` bytes of body, `None` when the body runs to the close.
    fn head(&mut self, dir: Dir, block: &[u8], cx: &mut Ctx<'_>) -> Option<usize> {
        let head = http::parse_head(block);
        if dir == Dir::ToServer {
            let method = head.method();
            if self.head_requests.len() < MAX_PIPELINE {
                self.head_requests.push_back(method == b"HEAD");
            }
            let carrier = if method.starts_with(b"RDG_") {
                "rdp_gateway"
            } else {
                "http"
            };
            for name in ["authorization", "proxy-authorization"] {
                for v in head.header(name) {
                    if let Some(tok) = http::auth_token(v) {
                        if let Some(m) = spnego::ntlm_token(&tok).ntlm {
                            self.tracker
                                .get_or_insert_with(|| Tracker::new(carrier, true))
                                .message(dir, m, cx);
                        }
                    }
                }
            }
            if head.chunked() {
                self.body[dir.index()] = Body::Chunked;
                return Some(0);
            }
            return Some(head.content_length().unwrap_or(0));
        }
        // A response: `HTTP/1.x CODE reason`.
        let code = head.status_code();
        let was_head = if (100..200).contains(&code) {
            false
        } else {
            self.head_requests.pop_front().unwrap_or(false)
        };
        for name in ["www-authenticate", "proxy-authenticate"] {
            for v in head.header(name) {
                if let Some(tok) = http::auth_token(v) {
                    if let Some(m) = spnego::ntlm_token(&tok).ntlm {
                        self.tracker
                            .get_or_insert_with(|| Tracker::new("http", true))
                            .message(dir, m, cx);
                    }
                }
            }
        }
        if let Some(t) = self.tracker.as_mut() {
            if t.awaiting_verdict() && code >= 200 {
                t.verdict(code < 400, Status::Code(code.into()), cx);
            }
        }
        if was_head || (100..200).contains(&code) || code == 204 || code == 304 {
            return Some(0);
        }
        if head.chunked() {
            self.body[dir.index()] = Body::Chunked;
            return Some(0);
        }
        head.content_length()
    }

    /// One step of HTTP framing at a boundary.
    fn step(&mut self, dir: Dir, b: &[u8], cx: &mut Ctx<'_>) -> Frame {
        if self.body[dir.index()] == Body::Chunked {
            // chunk-size [; ext] CRLF, data, CRLF; a zero size ends it.
            return match http::chunk_line(b) {
                http::ChunkLine::Incomplete => Frame::Need(b.len() + 1),
                http::ChunkLine::Invalid => Frame::Stop,
                http::ChunkLine::Size { size: 0, .. } => {
                    // The last chunk; trailers end with an empty line.
                    match http::trailer_len(b) {
                        Some(n) => {
                            self.body[dir.index()] = Body::None;
                            Frame::Consumed(n)
                        }
                        None if b.len() >= MAX_HEAD => Frame::Stop,
                        None => Frame::Need(b.len() + 1),
                    }
                }
                http::ChunkLine::Size { size, line_len } => {
                    Frame::Skip(line_len.saturating_add(size).saturating_add(2))
                }
            };
        }
        let Some(head_len) = http::head_len(b) else {
            return if b.len() >= MAX_HEAD {
                Frame::Stop
            } else {
                Frame::Need(b.len() + 1)
            };
        };
        match self.head(dir, &b[..head_len], cx) {
            Some(0) => Frame::Consumed(head_len),
            Some(n) => Frame::Skip(head_len + n),
            // The body runs to the close: nothing more to frame.
            None => Frame::Stop,
        }
    }
}

impl Framed for HttpAnalyzer {
    fn framers(&self) -> &[Framer; 2] {
        &self.framers
    }

    fn framers_mut(&mut self) -> &mut [Framer; 2] {
        &mut self.framers
    }

    fn step(&mut self, dir: Dir, b: &[u8], cx: &mut Ctx<'_>) -> Frame {
        HttpAnalyzer::step(self, dir, b, cx)
    }

    fn stopped(&mut self, cx: &mut Ctx<'_>) {
        if let Some(t) = self.tracker.as_mut() {
            t.flush(cx);
        }
    }

    fn seeker(&self) -> Option<Seeker> {
        Some(Seeker {
            protocol: PROTOCOL.name,
            find: |dir, b, at_loss| http::resync(b, dir == Dir::ToClient, at_loss),
        })
    }

    /// A chunked body's place is lost with the rest.
    fn lost(&mut self, dir: Dir) {
        self.body[dir.index()] = Body::None;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::analyzers::{Analyzer, Record};

    fn run(exchanges: &[(Dir, &[u8])]) -> Vec<Record> {
        let mut out = Vec::new();
        let mut a = HttpAnalyzer::default();
        for (dir, bytes) in exchanges {
            let mut cx = Ctx::new(0, false, &mut out);
            a.data(*dir, bytes, &mut cx);
        }
        let mut cx = Ctx::new(0, false, &mut out);
        a.end(&mut cx);
        out
    }

    const NEG: &str = "TlRMTVNTUAABAAAABoIIAAAAAAAAAAAAAAAAAAAAAAA=";
    const AUTH: &str = "TlRMTVNTUAADAAAAGAAYAEAAAACuAK4AWAAAAAYABgAGAQAABwAHAAwBAAALAAsAEwEAAAAAAAAAAAAABoKKAt8oJO4QiyGJZm4KODcqCZO3j+bRSVov5jQBv6b96lr5X+XdZQPOT6wBAQAAAAAAAADLBM/qfd0Bt4/m0UlaL+YAAAAAAQASAEYASQBMAEUAUwBSAFYAMAAxAAIADABMAEEAQgBHAFIAUAADACoAZgBpAGwAZQBzAHIAdgAwADEALgBsAGEAYgAuAGUAeABhAG0AcABsAGUABAAWAGwAYQBiAC4AZQB4AGEAbQBwAGwAZQAHAAgAAMsEz+p93QEAAAAAAAAAAExBQkdSUGxhYnVzZXJXT1JLU1RBVElPTg==";

    #[test]
    fn keep_alive_with_bodies_and_two_exchanges() {
        let req1 = format!("GET /a HTTP/1.1\r\nAuthorization: NTLM {NEG}\r\n\r\n");
        let resp1 = b"HTTP/1.1 401 Unauthorized\r\nContent-Length: 5\r\nWWW-Authenticate: NTLM\r\n\r\nnope!".to_vec();
        let req2 = format!(
            "POST /a HTTP/1.1\r\nContent-Length: 3\r\nauthorization: ntlm {AUTH}\r\n\r\nabc"
        );
        let resp2 =
            b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n4\r\nbody\r\n0\r\n\r\n".to_vec();
        let req3 = format!("GET /b HTTP/1.1\r\nAuthorization: Negotiate {AUTH}\r\n\r\n");
        let resp3 = b"HTTP/1.1 403 Forbidden\r\nContent-Length: 0\r\n\r\n".to_vec();
        let out = run(&[
            (Dir::ToServer, req1.as_bytes()),
            (Dir::ToClient, &resp1),
            (Dir::ToServer, req2.as_bytes()),
            (Dir::ToClient, &resp2),
            (Dir::ToServer, req3.as_bytes()),
            (Dir::ToClient, &resp3),
        ]);
        let results: Vec<(&str, Option<String>)> = out
            .iter()
            .map(|r| match r {
                Record::Ntlm(n) => (
                    n.result,
                    n.client.as_ref().and_then(|c| c.workstation.clone()),
                ),
                _ => ("?", None),
            })
            .collect();
        assert_eq!(
            results,
            vec![
                ("success", Some("WORKSTATION".to_string())),
                ("failure", Some("WORKSTATION".to_string()))
            ]
        );
    }

    #[test]
    fn rd_gateway_carrier_and_garbage_tokens() {
        let req = format!(
            "RDG_OUT_DATA /remoteDesktopGateway/ HTTP/1.1\r\nAuthorization: NTLM {AUTH}\r\n\r\n"
        );
        let out = run(&[
            (Dir::ToServer, req.as_bytes()),
            (
                Dir::ToServer,
                b"GET / HTTP/1.1\r\nAuthorization: NTLM !!!\r\n\r\n",
            ),
        ]);
        assert!(
            matches!(&out[..], [Record::Ntlm(n)] if n.carrier == "rdp_gateway" && n.result == "unknown")
        );
    }
}
