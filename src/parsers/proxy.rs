//! Proxy handshakes that may precede the real protocol on a connection:
//! SOCKS4/4a (de facto), SOCKS5 (RFC 1928, with RFC 1929 user/password)
//! and HTTP CONNECT (RFC 9110 9.3.6). Each function tells how many bytes
//! the handshake takes in one direction, so that what follows can be
//! analysed as if the connection had started there.

use memchr::memmem;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Socks4,
    Socks5,
    HttpConnect,
}

impl Kind {
    pub fn name(self) -> &'static str {
        match self {
            Kind::Socks4 => "socks4",
            Kind::Socks5 => "socks5",
            Kind::HttpConnect => "http_connect",
        }
    }
}

/// Largest handshake accepted (HTTP CONNECT headers included).
pub const MAX_HANDSHAKE: usize = 8192;

/// Outcome of measuring one direction's handshake.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Measure {
    /// More bytes are needed.
    Incomplete,
    /// The handshake takes this many bytes.
    Done(usize),
    /// Not this handshake (or a refused one).
    Invalid,
}

/// Which proxy handshake the client's first bytes start, if any.
pub fn detect(client: &[u8]) -> Option<Kind> {
    match client {
        [4, 1, ..] => Some(Kind::Socks4),
        [5, n, rest @ ..]
            if *n >= 1
                && usize::from(*n) <= 8
                && rest
                    .iter()
                    .take(usize::from(*n))
                    .all(|&m| m <= 0x09 || m >= 0x80) =>
        {
            Some(Kind::Socks5)
        }
        _ if client.starts_with(b"CONNECT ") => Some(Kind::HttpConnect),
        _ => None,
    }
}

fn nul_after(buf: &[u8], from: usize) -> Option<usize> {
    buf.get(from..)?
        .iter()
        .position(|&b| b == 0)
        .map(|p| from + p + 1)
}

/// The client's side of the handshake.
pub fn client_len(kind: Kind, b: &[u8]) -> Measure {
    let m = match kind {
        Kind::Socks4 => socks4_request(b),
        Kind::Socks5 => socks5_client(b),
        Kind::HttpConnect => http_head(b),
    };
    cap(m, b)
}

/// The proxy's side of the handshake.
pub fn server_len(kind: Kind, b: &[u8]) -> Measure {
    let m = match kind {
        Kind::Socks4 => match b {
            [0, 90, ..] if b.len() >= 8 => Measure::Done(8),
            [0, _, ..] if b.len() >= 8 => Measure::Invalid,
            _ if b.len() < 8 => Measure::Incomplete,
            _ => Measure::Invalid,
        },
        Kind::Socks5 => socks5_server(b),
        Kind::HttpConnect => match http_head(b) {
            Measure::Done(n)
                if b.starts_with(b"HTTP/1.")
                    && b.get(9..12).is_some_and(|c| c.starts_with(b"2")) =>
            {
                Measure::Done(n)
            }
            Measure::Done(_) => Measure::Invalid,
            m => m,
        },
    };
    cap(m, b)
}

fn cap(m: Measure, b: &[u8]) -> Measure {
    match m {
        Measure::Incomplete if b.len() > MAX_HANDSHAKE => Measure::Invalid,
        Measure::Done(n) if n > MAX_HANDSHAKE => Measure::Invalid,
        m => m,
    }
}

fn http_head(b: &[u8]) -> Measure {
    match memmem::find(b, b"\r\n\r\n") {
        Some(p) => Measure::Done(p + 4),
        None => Measure::Incomplete,
    }
}

/// VN CD DSTPORT DSTIP USERID NUL [HOST NUL for SOCKS4a].
fn socks4_request(b: &[u8]) -> Measure {
    let Some(ip) = b.get(4..8) else {
        return Measure::Incomplete;
    };
    let Some(user_end) = nul_after(b, 8) else {
        return Measure::Incomplete;
    };
    if ip[..3] == [0, 0, 0] && ip[3] != 0 {
        return match nul_after(b, user_end) {
            Some(n) => Measure::Done(n),
            None => Measure::Incomplete,
        };
    }
    Measure::Done(user_end)
}

/// Length of a SOCKS5 address (ATYP at `b[at]`) with the port.
fn socks5_addr(b: &[u8], at: usize) -> Option<Option<usize>> {
    let Some(&atyp) = b.get(at) else {
        return Some(None);
    };
    let len = match atyp {
        1 => 4,
        4 => 16,
        3 => match b.get(at + 1) {
            Some(&n) => 1 + usize::from(n),
            None => return Some(None),
        },
        _ => return None,
    };
    Some(Some(at + 1 + len + 2))
}

/// Greeting, optional user/password subnegotiation, CONNECT request.
fn socks5_client(b: &[u8]) -> Measure {
    let Some(&n) = b.get(1) else {
        return Measure::Incomplete;
    };
    let mut at = 2 + usize::from(n);
    match b.get(at) {
        None => return Measure::Incomplete,
        Some(1) => {
            // RFC 1929: VER ULEN UNAME PLEN PASSWD.
            let Some(&ulen) = b.get(at + 1) else {
                return Measure::Incomplete;
            };
            let Some(&plen) = b.get(at + 2 + usize::from(ulen)) else {
                return Measure::Incomplete;
            };
            at += 3 + usize::from(ulen) + usize::from(plen);
        }
        Some(5) => {}
        Some(_) => return Measure::Invalid,
    }
    let Some(req) = b.get(at..at + 3) else {
        return Measure::Incomplete;
    };
    if req[0] != 5 || req[1] != 1 {
        return Measure::Invalid;
    }
    match socks5_addr(b, at + 3) {
        None => Measure::Invalid,
        Some(None) => Measure::Incomplete,
        Some(Some(end)) if end <= b.len() => Measure::Done(end),
        Some(Some(_)) => Measure::Incomplete,
    }
}

/// Method choice, optional subnegotiation status, CONNECT reply.
fn socks5_server(b: &[u8]) -> Measure {
    let Some(choice) = b.get(..2) else {
        return Measure::Incomplete;
    };
    if choice[0] != 5 || choice[1] == 0xff {
        return Measure::Invalid;
    }
    let mut at = 2;
    if choice[1] == 2 {
        match b.get(at..at + 2) {
            None => return Measure::Incomplete,
            Some([1, 0]) => at += 2,
            Some(_) => return Measure::Invalid,
        }
    }
    let Some(rep) = b.get(at..at + 3) else {
        return Measure::Incomplete;
    };
    if rep[0] != 5 || rep[1] != 0 {
        return Measure::Invalid;
    }
    match socks5_addr(b, at + 3) {
        None => Measure::Invalid,
        Some(None) => Measure::Incomplete,
        Some(Some(end)) if end <= b.len() => Measure::Done(end),
        Some(Some(_)) => Measure::Incomplete,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn socks5_with_and_without_auth() {
        let client = [5, 1, 0, 5, 1, 0, 1, 10, 0, 0, 2, 0x0d, 0x3d, 0x03, 0x00];
        assert_eq!(detect(&client), Some(Kind::Socks5));
        assert_eq!(client_len(Kind::Socks5, &client), Measure::Done(13));
        assert_eq!(client_len(Kind::Socks5, &client[..12]), Measure::Incomplete);
        let server = [5, 0, 5, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0x03];
        assert_eq!(server_len(Kind::Socks5, &server), Measure::Done(12));

        let mut client = vec![5, 1, 2, 1, 3, b'b', b'o', b'b', 2, b'p', b'w'];
        client.extend_from_slice(&[5, 1, 0, 3, 4, b'h', b'o', b's', b't', 0x0d, 0x3d]);
        assert_eq!(
            client_len(Kind::Socks5, &client),
            Measure::Done(client.len())
        );
        let server = [5, 2, 1, 0, 5, 0, 0, 1, 0, 0, 0, 0, 0, 0];
        assert_eq!(server_len(Kind::Socks5, &server), Measure::Done(14));
        assert_eq!(
            server_len(Kind::Socks5, &[5, 0, 5, 1, 0, 1]),
            Measure::Invalid
        );
    }

    #[test]
    fn socks4_and_4a() {
        let req = [4, 1, 0x0d, 0x3d, 10, 0, 0, 2, b'u', 0, 0x03];
        assert_eq!(detect(&req), Some(Kind::Socks4));
        assert_eq!(client_len(Kind::Socks4, &req), Measure::Done(10));
        let req4a = [4, 1, 0x0d, 0x3d, 0, 0, 0, 1, 0, b'h', b'o', 0];
        assert_eq!(client_len(Kind::Socks4, &req4a), Measure::Done(12));
        assert_eq!(
            server_len(Kind::Socks4, &[0, 90, 0, 0, 0, 0, 0, 0, 3]),
            Measure::Done(8)
        );
        assert_eq!(
            server_len(Kind::Socks4, &[0, 91, 0, 0, 0, 0, 0, 0]),
            Measure::Invalid
        );
    }

    #[test]
    fn http_connect() {
        let req = b"CONNECT 10.0.0.2:3389 HTTP/1.1\r\nHost: 10.0.0.2:3389\r\n\r\n\x03\x00";
        assert_eq!(detect(req), Some(Kind::HttpConnect));
        assert_eq!(
            client_len(Kind::HttpConnect, req),
            Measure::Done(req.len() - 2)
        );
        let ok = b"HTTP/1.1 200 Connection established\r\n\r\n";
        assert_eq!(server_len(Kind::HttpConnect, ok), Measure::Done(ok.len()));
        assert_eq!(
            server_len(Kind::HttpConnect, b"HTTP/1.1 407 Auth\r\n\r\n"),
            Measure::Invalid
        );
        assert_eq!(
            client_len(Kind::HttpConnect, &[b'C'; MAX_HANDSHAKE + 1]),
            Measure::Invalid
        );
        assert_eq!(detect(b"\x03\x00\x00\x13"), None);
    }
}
