//! Synthetic traffic: deterministic captures for the demo, the evasion
//! tests and the benchmark. Builds real protocol bytes (NTLM, SPNEGO, SMB2,
//! RDP, HTTP, TLS) inside Ethernet/IP/TCP frames with correct sequence
//! numbers and checksums, and writes classic pcap files.

pub mod bench;
pub mod demo;
pub mod msg;

use std::io::{self, Write};
use std::net::IpAddr;
use std::path::Path;

use etherparse::PacketBuilder;

use crate::decode::tcp_flags;

/// Writes a classic pcap (microsecond timestamps, Ethernet).
pub struct PcapWriter<W: Write> {
    out: W,
    pub packets: u64,
    pub bytes: u64,
}

impl<W: Write> PcapWriter<W> {
    pub fn new(mut out: W) -> io::Result<Self> {
        let mut h = Vec::with_capacity(24);
        h.extend_from_slice(&0xa1b2_c3d4u32.to_le_bytes());
        h.extend_from_slice(&2u16.to_le_bytes());
        h.extend_from_slice(&4u16.to_le_bytes());
        h.extend_from_slice(&0i32.to_le_bytes());
        h.extend_from_slice(&0u32.to_le_bytes());
        h.extend_from_slice(&262_144u32.to_le_bytes());
        h.extend_from_slice(&1u32.to_le_bytes());
        out.write_all(&h)?;
        Ok(PcapWriter {
            out,
            packets: 0,
            bytes: 24,
        })
    }

    pub fn packet(&mut self, ts_us: i64, frame: &[u8]) -> io::Result<()> {
        let mut h = [0u8; 16];
        h[0..4].copy_from_slice(&((ts_us / 1_000_000) as u32).to_le_bytes());
        h[4..8].copy_from_slice(&((ts_us % 1_000_000) as u32).to_le_bytes());
        h[8..12].copy_from_slice(&(frame.len() as u32).to_le_bytes());
        h[12..16].copy_from_slice(&(frame.len() as u32).to_le_bytes());
        self.out.write_all(&h)?;
        self.out.write_all(frame)?;
        self.packets += 1;
        self.bytes += 16 + frame.len() as u64;
        Ok(())
    }

    pub fn into_inner(self) -> W {
        self.out
    }
}

/// One TCP segment of a synthetic connection, before framing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Segment {
    pub from_client: bool,
    pub seq: u32,
    pub ack: u32,
    pub flags: u8,
    pub payload: Vec<u8>,
}

/// A TCP connection being written: tracks both sequence numbers.
#[derive(Debug, Clone)]
pub struct Conn {
    pub client: (IpAddr, u16),
    pub server: (IpAddr, u16),
    /// 802.1Q ids, outermost first (two make QinQ).
    pub vlans: Vec<u16>,
    cseq: u32,
    sseq: u32,
    pub mss: usize,
}

impl Conn {
    pub fn new(client: (IpAddr, u16), server: (IpAddr, u16), isn_seed: u32) -> Conn {
        Conn {
            client,
            server,
            vlans: Vec::new(),
            cseq: isn_seed.wrapping_mul(2_654_435_761),
            sseq: isn_seed.wrapping_mul(40_503).wrapping_add(0x5eed),
            mss: 1460,
        }
    }

    /// SYN, SYN-ACK, ACK.
    pub fn open(&mut self) -> Vec<Segment> {
        let c = self.cseq;
        let s = self.sseq;
        self.cseq = c.wrapping_add(1);
        self.sseq = s.wrapping_add(1);
        vec![
            Segment {
                from_client: true,
                seq: c,
                ack: 0,
                flags: tcp_flags::SYN,
                payload: Vec::new(),
            },
            Segment {
                from_client: false,
                seq: s,
                ack: self.cseq,
                flags: tcp_flags::SYN | tcp_flags::ACK,
                payload: Vec::new(),
            },
            Segment {
                from_client: true,
                seq: self.cseq,
                ack: self.sseq,
                flags: tcp_flags::ACK,
                payload: Vec::new(),
            },
        ]
    }

    /// `data` from one side, cut at the MSS, each segment acknowledging the
    /// other side.
    pub fn send(&mut self, from_client: bool, data: &[u8]) -> Vec<Segment> {
        let mss = self.mss.max(1);
        data.chunks(mss)
            .map(|chunk| {
                let (seq, ack) = if from_client {
                    (&mut self.cseq, self.sseq)
                } else {
                    (&mut self.sseq, self.cseq)
                };
                let s = Segment {
                    from_client,
                    seq: *seq,
                    ack,
                    flags: tcp_flags::ACK | tcp_flags::PSH,
                    payload: chunk.to_vec(),
                };
                *seq = seq.wrapping_add(chunk.len() as u32);
                s
            })
            .collect()
    }

    /// FIN from both sides, then the last ACK.
    pub fn close(&mut self) -> Vec<Segment> {
        let fin = tcp_flags::FIN | tcp_flags::ACK;
        let a = Segment {
            from_client: true,
            seq: self.cseq,
            ack: self.sseq,
            flags: fin,
            payload: Vec::new(),
        };
        self.cseq = self.cseq.wrapping_add(1);
        let b = Segment {
            from_client: false,
            seq: self.sseq,
            ack: self.cseq,
            flags: fin,
            payload: Vec::new(),
        };
        self.sseq = self.sseq.wrapping_add(1);
        let c = Segment {
            from_client: true,
            seq: self.cseq,
            ack: self.sseq,
            flags: tcp_flags::ACK,
            payload: Vec::new(),
        };
        vec![a, b, c]
    }

    /// The Ethernet frame of a segment.
    pub fn frame(&self, seg: &Segment) -> Vec<u8> {
        let (src, dst) = if seg.from_client {
            (self.client, self.server)
        } else {
            (self.server, self.client)
        };
        let mut f = Vec::with_capacity(seg.payload.len() + 80);
        f.extend_from_slice(&[0x02, 0, 0, 0, 0, if seg.from_client { 2 } else { 1 }]);
        f.extend_from_slice(&[0x02, 0, 0, 0, 0, if seg.from_client { 1 } else { 2 }]);
        for (i, id) in self.vlans.iter().enumerate() {
            let tpid: u16 = if i + 1 < self.vlans.len() {
                0x88a8
            } else {
                0x8100
            };
            f.extend_from_slice(&tpid.to_be_bytes());
            f.extend_from_slice(&(id & 0x0fff).to_be_bytes());
        }
        let ip = ip_tcp(src, dst, seg);
        f.extend_from_slice(
            &(if matches!(src.0, IpAddr::V4(_)) {
                0x0800u16
            } else {
                0x86dd
            })
            .to_be_bytes(),
        );
        f.extend_from_slice(&ip);
        f
    }
}

/// An Ethernet frame with an IPv4 UDP datagram, checksums computed:
/// (MAC, address, port) of each side.
pub fn udp_frame(
    src: ([u8; 6], [u8; 4], u16),
    dst: ([u8; 6], [u8; 4], u16),
    payload: &[u8],
) -> Vec<u8> {
    let b = PacketBuilder::ethernet2(src.0, dst.0)
        .ipv4(src.1, dst.1, 64)
        .udp(src.2, dst.2);
    let mut out = Vec::with_capacity(payload.len() + 42);
    // Writing into a Vec only fails for payloads over the IP limit.
    let _ = b.write(&mut out, payload);
    out
}

/// IP and TCP headers and payload, checksums computed.
pub fn ip_tcp(src: (IpAddr, u16), dst: (IpAddr, u16), seg: &Segment) -> Vec<u8> {
    let ip = match (src.0, dst.0) {
        (IpAddr::V4(a), IpAddr::V4(b)) => PacketBuilder::ipv4(a.octets(), b.octets(), 64),
        (IpAddr::V6(a), IpAddr::V6(b)) => PacketBuilder::ipv6(a.octets(), b.octets(), 64),
        _ => PacketBuilder::ipv4([0; 4], [0; 4], 64),
    };
    let mut b = ip.tcp(src.1, dst.1, seg.seq, 64_240);
    if seg.flags & tcp_flags::SYN != 0 {
        b = b.syn();
    }
    if seg.flags & tcp_flags::ACK != 0 {
        b = b.ack(seg.ack);
    }
    if seg.flags & tcp_flags::FIN != 0 {
        b = b.fin();
    }
    if seg.flags & tcp_flags::PSH != 0 {
        b = b.psh();
    }
    if seg.flags & tcp_flags::RST != 0 {
        b = b.rst();
    }
    let mut out = Vec::with_capacity(seg.payload.len() + 60);
    // Writing into a Vec only fails for payloads over the IP limit.
    let _ = b.write(&mut out, &seg.payload);
    out
}

/// A capture being composed: frames with a clock.
#[derive(Debug, Default)]
pub struct Trace {
    pub frames: Vec<(i64, Vec<u8>)>,
    pub now_us: i64,
}

impl Trace {
    pub fn starting_at(ts_us: i64) -> Trace {
        Trace {
            frames: Vec::new(),
            now_us: ts_us,
        }
    }

    /// Appends the segments as frames, 150 µs apart.
    pub fn add(&mut self, conn: &Conn, segs: &[Segment]) {
        for s in segs {
            self.now_us += 150;
            self.frames.push((self.now_us, conn.frame(s)));
        }
    }

    pub fn advance(&mut self, us: i64) {
        self.now_us += us;
    }

    pub fn write<W: Write>(&self, out: W) -> io::Result<W> {
        let mut w = PcapWriter::new(out)?;
        for (ts, f) in &self.frames {
            w.packet(*ts, f)?;
        }
        Ok(w.into_inner())
    }

    pub fn to_bytes(&self) -> Vec<u8> {
        self.write(Vec::new()).unwrap_or_default()
    }
}

/// `hostwatch generate`: writes the demo capture or a benchmark mix.
pub fn write_capture(path: &Path, kind: &str, size_mb: u64, seed: u64) -> io::Result<u64> {
    match kind {
        "demo" => {
            let t = demo::trace();
            std::fs::write(path, t.to_bytes())?;
            Ok(t.frames.len() as u64)
        }
        "bench" => bench::write(path, size_mb.saturating_mul(1_000_000), seed).map(|m| m.packets),
        "bench-udp" => {
            bench::write_with_udp(path, size_mb.saturating_mul(1_000_000), seed).map(|m| m.packets)
        }
        "handshakes" => bench::write_handshakes(path, size_mb.saturating_mul(1_000_000), seed)
            .map(|m| m.packets),
        "synflood" => bench::write_synflood(path, 1_000_000),
        "gaps" => bench::write_gaps(path, 2_000),
        "buffers" => bench::write_buffers(path, 600),
        "queries" => bench::write_queries(path, 500_000),
        "registrations" => bench::write_registrations(path, 8_000),
        other => Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("unknown kind '{other}' (demo, bench, bench-udp, handshakes, synflood, gaps, buffers, queries or registrations)"),
        )),
    }
}
