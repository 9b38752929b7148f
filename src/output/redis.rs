//! The Redis transport: one command per event (LPUSH, RPUSH, PUBLISH or
//! XADD), a batch written as one pipeline, then its replies read back one by
//! one so that a connection lost midway resends only what Redis did not
//! answer.

use std::io::{self, Read, Write};
use std::net::TcpStream;

use super::net::tcp_connect;
use super::queue::{Delivery, Transport};
use super::resp::{self, Reply, RespError};
use super::spec::{RedisMode, RedisSpec};

/// Replies are small; a server that sends more than this without completing
/// one is not speaking RESP.
const MAX_PENDING_REPLY: usize = 1 << 20;

pub struct RedisTransport {
    spec: RedisSpec,
    conn: Option<TcpStream>,
    wbuf: Vec<u8>,
    replies: ReplyReader,
    maxlen: String,
    /// The first refusal is reported; the rest only counted.
    reported_refusal: bool,
}

impl RedisTransport {
    pub fn new(spec: RedisSpec) -> RedisTransport {
        RedisTransport {
            maxlen: spec.maxlen.to_string(),
            spec,
            conn: None,
            wbuf: Vec::new(),
            replies: ReplyReader::new(MAX_PENDING_REPLY),
            reported_refusal: false,
        }
    }

    fn encode(&mut self, event: &[u8]) {
        let key = self.spec.key.as_bytes();
        match self.spec.mode {
            RedisMode::Lpush => resp::command(&mut self.wbuf, &[b"LPUSH", key, event]),
            RedisMode::Rpush => resp::command(&mut self.wbuf, &[b"RPUSH", key, event]),
            RedisMode::Publish => resp::command(&mut self.wbuf, &[b"PUBLISH", key, event]),
            RedisMode::Xadd => {
                let trim: &[u8] = if self.spec.exact_trim { b"=" } else { b"~" };
                resp::command(
                    &mut self.wbuf,
                    &[
                        b"XADD",
                        key,
                        b"MAXLEN",
                        trim,
                        self.maxlen.as_bytes(),
                        b"*",
                        self.spec.field.as_bytes(),
                        event,
                    ],
                )
            }
        }
    }
}

/// Reads replies off a connection, buffering what arrives ahead.
pub struct ReplyReader {
    buf: Vec<u8>,
    start: usize,
    limit: usize,
}

impl ReplyReader {
    /// `limit`: the most bytes buffered while waiting for one reply.
    pub fn new(limit: usize) -> ReplyReader {
        ReplyReader {
            buf: Vec::new(),
            start: 0,
            limit,
        }
    }

    pub fn clear(&mut self) {
        self.buf.clear();
        self.start = 0;
    }

    /// Reads the next reply; `f` sees it while it borrows the buffer.
    pub fn next<T>(
        &mut self,
        conn: &mut impl Read,
        f: impl FnOnce(&Reply<'_>) -> T,
    ) -> io::Result<T> {
        let mut chunk = [0u8; 16 << 10];
        let mut f = Some(f);
        loop {
            let pending = self.buf.get(self.start..).unwrap_or_default();
            match resp::reply(pending) {
                Ok((r, used)) => {
                    let out = f.take().map(|f| f(&r));
                    self.start += used;
                    if self.start >= self.buf.len() {
                        self.clear();
                    }
                    return out.ok_or_else(|| io::Error::other("reply consumed twice"));
                }
                Err(RespError::Invalid) => {
                    return Err(io::Error::new(
                        io::ErrorKind::InvalidData,
                        "malformed reply from Redis",
                    ))
                }
                Err(RespError::Incomplete) if pending.len() > self.limit => {
                    return Err(io::Error::new(
                        io::ErrorKind::InvalidData,
                        "oversized reply from Redis",
                    ))
                }
                Err(RespError::Incomplete) => {}
            }
            if self.start > 0 {
                self.buf.drain(..self.start);
                self.start = 0;
            }
            let n = conn.read(&mut chunk)?;
            if n == 0 {
                return Err(io::Error::new(
                    io::ErrorKind::UnexpectedEof,
                    "Redis closed the connection",
                ));
            }
            self.buf
                .extend_from_slice(chunk.get(..n).unwrap_or_default());
        }
    }
}

fn refusal(r: &Reply<'_>) -> Option<String> {
    match r {
        Reply::Error(e) => Some(String::from_utf8_lossy(e).into_owned()),
        _ => None,
    }
}

impl Transport for RedisTransport {
    fn connect(&mut self) -> io::Result<()> {
        let mut c = tcp_connect(&self.spec.addr).map_err(|e| {
            io::Error::new(
                e.kind(),
                format!("cannot connect to {}: {e}", self.spec.addr),
            )
        })?;
        self.replies.clear();
        let mut hello = Vec::new();
        let mut expect = Vec::new();
        if let Some(pw) = &self.spec.password {
            match &self.spec.user {
                Some(u) => resp::command(&mut hello, &[b"AUTH", u.as_bytes(), pw.as_bytes()]),
                None => resp::command(&mut hello, &[b"AUTH", pw.as_bytes()]),
            }
            expect.push("AUTH");
        }
        if self.spec.db != 0 {
            resp::command(
                &mut hello,
                &[b"SELECT", self.spec.db.to_string().as_bytes()],
            );
            expect.push("SELECT");
        }
        if !hello.is_empty() {
            c.write_all(&hello)?;
            for what in expect {
                if let Some(e) = self.replies.next(&mut c, refusal)? {
                    return Err(io::Error::new(
                        io::ErrorKind::PermissionDenied,
                        format!("Redis refused {what}: {e}"),
                    ));
                }
            }
        }
        self.conn = Some(c);
        Ok(())
    }

    fn send(&mut self, batch: &[Vec<u8>]) -> Delivery {
        self.wbuf.clear();
        for ev in batch {
            self.encode(ev);
        }
        let Some(conn) = self.conn.as_mut() else {
            return Delivery::not_connected();
        };
        let mut d = Delivery::default();
        if let Err(e) = conn.write_all(&self.wbuf) {
            // Some commands may have arrived; their replies are lost with
            // the connection, so the whole batch is sent again.
            d.error = Some(e);
            return d;
        }
        for _ in batch {
            match self.replies.next(conn, refusal) {
                Ok(None) => d.done += 1,
                Ok(Some(e)) => {
                    d.done += 1;
                    d.rejected += 1;
                    if !self.reported_refusal {
                        self.reported_refusal = true;
                        crate::diag::error(format_args!(
                            "output redis://{}: Redis refused an event: {e}",
                            self.spec.addr
                        ));
                    }
                }
                Err(e) => {
                    d.error = Some(e);
                    break;
                }
            }
        }
        d
    }

    fn disconnect(&mut self) {
        self.conn = None;
        self.replies.clear();
    }
}
