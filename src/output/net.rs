//! Socket transports: byte streams (TCP, Unix stream) and datagrams (UDP,
//! Unix datagram), each with timeouts so a hung peer cannot hold the sender
//! thread for long.

use std::io::{self, Write};
use std::net::{TcpStream, ToSocketAddrs, UdpSocket};
use std::os::unix::net::{UnixDatagram, UnixStream};
use std::path::PathBuf;
use std::time::Duration;

use super::queue::{Delivery, Transport};

pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(3);
pub const IO_TIMEOUT: Duration = Duration::from_secs(5);

#[derive(Debug, Clone)]
pub enum Endpoint {
    Tcp(String),
    Unix(PathBuf),
}

/// How events are delimited on a byte stream.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Framing {
    /// Each event followed by a newline (JSON Lines).
    Newline,
    /// RFC 6587 octet counting: `LENGTH SP MESSAGE`.
    OctetCount,
}

/// Opens a TCP connection to `addr` (`host:port`), trying each address.
pub fn tcp_connect(addr: &str) -> io::Result<TcpStream> {
    let mut last = io::Error::new(io::ErrorKind::NotFound, format!("{addr}: no address"));
    for a in addr.to_socket_addrs()? {
        match TcpStream::connect_timeout(&a, CONNECT_TIMEOUT) {
            Ok(s) => {
                s.set_nodelay(true)?;
                s.set_write_timeout(Some(IO_TIMEOUT))?;
                s.set_read_timeout(Some(IO_TIMEOUT))?;
                return Ok(s);
            }
            Err(e) => last = e,
        }
    }
    Err(last)
}

enum Conn {
    Tcp(TcpStream),
    Unix(UnixStream),
}

impl Conn {
    fn write(&mut self, b: &[u8]) -> io::Result<usize> {
        match self {
            Conn::Tcp(s) => s.write(b),
            Conn::Unix(s) => s.write(b),
        }
    }
}

pub struct StreamTransport {
    endpoint: Endpoint,
    framing: Framing,
    conn: Option<Conn>,
    buf: Vec<u8>,
    /// End offset of each event in `buf`.
    ends: Vec<usize>,
}

impl StreamTransport {
    pub fn new(endpoint: Endpoint, framing: Framing) -> StreamTransport {
        StreamTransport {
            endpoint,
            framing,
            conn: None,
            buf: Vec::new(),
            ends: Vec::new(),
        }
    }
}

impl Transport for StreamTransport {
    fn connect(&mut self) -> io::Result<()> {
        self.conn = Some(match &self.endpoint {
            Endpoint::Tcp(a) => Conn::Tcp(
                tcp_connect(a)
                    .map_err(|e| io::Error::new(e.kind(), format!("cannot connect to {a}: {e}")))?,
            ),
            Endpoint::Unix(p) => {
                let s = UnixStream::connect(p)
                    .map_err(|e| io::Error::new(e.kind(), format!("{}: {e}", p.display())))?;
                s.set_write_timeout(Some(IO_TIMEOUT))?;
                Conn::Unix(s)
            }
        });
        Ok(())
    }

    fn send(&mut self, batch: &[Vec<u8>]) -> Delivery {
        let Some(conn) = self.conn.as_mut() else {
            return Delivery::not_connected();
        };
        self.buf.clear();
        self.ends.clear();
        for m in batch {
            if self.framing == Framing::OctetCount {
                // Writing into a Vec cannot fail.
                let _ = write!(self.buf, "{} ", m.len());
            }
            self.buf.extend_from_slice(m);
            if self.framing == Framing::Newline {
                self.buf.push(b'\n');
            }
            self.ends.push(self.buf.len());
        }
        let mut written = 0;
        let mut error = None;
        while written < self.buf.len() {
            match conn.write(self.buf.get(written..).unwrap_or_default()) {
                Ok(0) => {
                    error = Some(io::Error::from(io::ErrorKind::WriteZero));
                    break;
                }
                Ok(n) => written += n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => {
                    error = Some(e);
                    break;
                }
            }
        }
        // Events wholly handed to the kernel count as taken; a torn one is
        // sent again whole.
        let done = self.ends.iter().take_while(|&&end| end <= written).count();
        Delivery {
            done,
            rejected: 0,
            error,
        }
    }

    fn disconnect(&mut self) {
        self.conn = None;
    }
}

enum Dgram {
    Udp(UdpSocket),
    Unix(UnixDatagram),
}

pub enum DgramEndpoint {
    Udp(String),
    Unix(PathBuf),
}

pub struct DatagramTransport {
    endpoint: DgramEndpoint,
    sock: Option<Dgram>,
}

impl DatagramTransport {
    pub fn new(endpoint: DgramEndpoint) -> DatagramTransport {
        DatagramTransport {
            endpoint,
            sock: None,
        }
    }
}

impl Transport for DatagramTransport {
    fn connect(&mut self) -> io::Result<()> {
        self.sock = Some(match &self.endpoint {
            DgramEndpoint::Udp(addr) => {
                let to = addr.to_socket_addrs()?.next().ok_or_else(|| {
                    io::Error::new(io::ErrorKind::NotFound, format!("{addr}: no address"))
                })?;
                let local = if to.is_ipv4() { "0.0.0.0:0" } else { "[::]:0" };
                let s = UdpSocket::bind(local)?;
                s.connect(to)?;
                s.set_write_timeout(Some(IO_TIMEOUT))?;
                Dgram::Udp(s)
            }
            DgramEndpoint::Unix(p) => {
                let s = UnixDatagram::unbound()?;
                s.connect(p)
                    .map_err(|e| io::Error::new(e.kind(), format!("{}: {e}", p.display())))?;
                s.set_write_timeout(Some(IO_TIMEOUT))?;
                Dgram::Unix(s)
            }
        });
        Ok(())
    }

    fn send(&mut self, batch: &[Vec<u8>]) -> Delivery {
        let Some(sock) = self.sock.as_ref() else {
            return Delivery::not_connected();
        };
        let mut d = Delivery::default();
        for m in batch {
            let r = match sock {
                Dgram::Udp(s) => s.send(m),
                Dgram::Unix(s) => s.send(m),
            };
            match r {
                Ok(_) => d.done += 1,
                // Too large for one datagram: it will never fit.
                Err(e) if e.raw_os_error() == Some(libc::EMSGSIZE) => {
                    d.done += 1;
                    d.rejected += 1;
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
        self.sock = None;
    }
}
