//! The benchmark capture: a realistic mix (bulk HTTP downloads, web pages,
//! TLS sessions, SMB2 file copies with their NTLM logons, many short
//! connections) with RDP and NTLM handshakes planted at known counts, some
//! from VMmanager-named machines. Streamed to disk: memory stays small
//! whatever the size. Deterministic for a given size and seed.

use std::collections::VecDeque;
use std::fs::File;
use std::io::{self, BufWriter, Write};
use std::net::IpAddr;
use std::path::Path;

use super::msg::{self, ServerNames};
use super::{Conn, PcapWriter, Segment};

/// A small deterministic generator (SplitMix64).
#[derive(Debug, Clone)]
pub struct Rng(pub u64);

impl Rng {
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    pub fn below(&mut self, n: u64) -> u64 {
        self.next_u64() % n.max(1)
    }

    pub fn range(&mut self, lo: u64, hi: u64) -> u64 {
        lo + self.below(hi - lo + 1)
    }
}

/// What was planted, for the benchmark's correctness check.
#[derive(Debug, Default, Clone, serde::Serialize)]
pub struct Manifest {
    pub packets: u64,
    pub bytes: u64,
    pub flows: u64,
    pub rdp_handshakes: u64,
    pub ntlm_exchanges: u64,
    /// Alerts hostwatch must raise on the VMmanager list.
    pub vmmanager_alerts: u64,
    pub mix: std::collections::BTreeMap<&'static str, u64>,
}

/// One message of a flow, materialised when it is reached.
enum Msg {
    Bytes(bool, Vec<u8>),
    /// `len` bytes of filler (an HTTP body).
    Fill(bool, usize),
    /// An SMB2 READ of `len` bytes: request and response.
    SmbRead(u64, usize),
    /// TLS application data: a 16 KB record at a time.
    TlsData(bool, usize),
}

struct Active {
    conn: Conn,
    msgs: VecDeque<Msg>,
    /// Segments of the current message not yet written.
    queue: VecDeque<Segment>,
    closed: bool,
}

impl Active {
    fn new(mut conn: Conn, msgs: Vec<Msg>) -> Active {
        let queue = conn.open().into();
        Active {
            conn,
            msgs: msgs.into(),
            queue,
            closed: false,
        }
    }

    fn next_segment(&mut self) -> Option<Segment> {
        loop {
            if let Some(s) = self.queue.pop_front() {
                return Some(s);
            }
            match self.msgs.pop_front() {
                Some(Msg::Bytes(c, b)) => self.queue = self.conn.send(c, &b).into(),
                Some(Msg::Fill(c, n)) => {
                    let chunk = n.min(64 << 10);
                    self.queue = self.conn.send(c, &FILL[..chunk]).into();
                    if n > chunk {
                        self.msgs.push_front(Msg::Fill(c, n - chunk));
                    }
                }
                Some(Msg::SmbRead(id, n)) => {
                    let (rq, rs) = msg::smb2_read(id, 0x11, &FILL[..n.min(FILL.len())]);
                    let mut q: VecDeque<Segment> = self.conn.send(true, &rq).into();
                    q.extend(self.conn.send(false, &rs));
                    self.queue = q;
                }
                Some(Msg::TlsData(c, n)) => {
                    let chunk = n.min(16_000);
                    let mut rec = vec![23, 3, 3];
                    rec.extend_from_slice(&(chunk as u16).to_be_bytes());
                    rec.extend_from_slice(&FILL[..chunk]);
                    self.queue = self.conn.send(c, &rec).into();
                    if n > chunk {
                        self.msgs.push_front(Msg::TlsData(c, n - chunk));
                    }
                }
                None if !self.closed => {
                    self.closed = true;
                    self.queue = self.conn.close().into();
                }
                None => return None,
            }
        }
    }
}

static FILL: [u8; 64 << 10] = [0x5a; 64 << 10];

const SERVER_NAMES: ServerNames<'static> = ServerNames {
    target: "CORP",
    nb_computer: "FILESRV02",
    nb_domain: "CORP",
    dns_computer: "filesrv02.corp.example",
    dns_domain: "corp.example",
    build: 20348,
};

const VMMANAGER: [&str; 3] = ["WIN-J9D866ESIJ2", "WIN-LIVFRVQFMKO", "WIN-344VU98D3RU"];

fn trips(v: Vec<(Vec<u8>, Vec<u8>)>) -> Vec<Msg> {
    v.into_iter()
        .flat_map(|(c, s)| [Msg::Bytes(true, c), Msg::Bytes(false, s)])
        .collect()
}

/// Writes a benchmark capture of about `size` bytes.
pub fn write(path: &Path, size: u64, seed: u64) -> io::Result<Manifest> {
    write_mix(path, size, seed, Profile::Mix)
}

/// The mix without bulk: every connection is a handshake (RDP and NTLM
/// planted, TLS up to its certificate, short exchanges), the traffic
/// where setting a connection up is the work.
pub fn write_handshakes(path: &Path, size: u64, seed: u64) -> io::Result<Manifest> {
    write_mix(path, size, seed, Profile::Handshakes)
}

/// What `write_mix` writes.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Profile {
    Mix,
    /// The mix with UDP noise between the bursts.
    Udp,
    Handshakes,
}

/// The same mix with UDP of no interest between the bursts: DNS questions
/// and answers (port 53) and QUIC-like datagrams (port 443), about a
/// fifth of the packets.
pub fn write_with_udp(path: &Path, size: u64, seed: u64) -> io::Result<Manifest> {
    write_mix(path, size, seed, Profile::Udp)
}

/// A DNS datagram (RFC 1035 4.1): a question for an A record, or its answer.
fn dns_message(rng: &mut Rng, answer: bool) -> Vec<u8> {
    let id = rng.below(1 << 16) as u16;
    let mut m = id.to_be_bytes().to_vec();
    m.extend_from_slice(if answer {
        &[0x81, 0x80, 0, 1, 0, 1, 0, 0, 0, 0]
    } else {
        &[1, 0, 0, 1, 0, 0, 0, 0, 0, 0]
    });
    let label = format!("host-{:06x}", rng.below(1 << 24));
    m.push(label.len() as u8);
    m.extend_from_slice(label.as_bytes());
    m.extend_from_slice(b"\x07example\x03com\x00\x00\x01\x00\x01");
    if answer {
        m.extend_from_slice(&[0xc0, 0x0c, 0, 1, 0, 1, 0, 0, 0x0e, 0x10, 0, 4, 192, 0, 2]);
        m.push(rng.below(256) as u8);
    }
    m
}

/// One datagram of UDP noise: a DNS question or answer, or a QUIC-like
/// short-header datagram of 1,200 bytes.
fn udp_noise(rng: &mut Rng, m: &mut Manifest) -> Vec<u8> {
    let host = [10, 30, (rng.below(4)) as u8, 1 + rng.below(250) as u8];
    let port = 30_000 + rng.below(30_000) as u16;
    let (src, dst, payload) = match rng.below(3) {
        0 => {
            *m.mix.entry("udp-dns").or_default() += 1;
            (
                (host, port),
                ([10, 30, 255, 53], 53),
                dns_message(rng, false),
            )
        }
        1 => {
            *m.mix.entry("udp-dns").or_default() += 1;
            (
                ([10, 30, 255, 53], 53),
                (host, port),
                dns_message(rng, true),
            )
        }
        _ => {
            *m.mix.entry("udp-quic").or_default() += 1;
            let mut d = vec![0x40 | rng.below(0x3f) as u8];
            d.extend_from_slice(&FILL[..1_199]);
            ((host, port), ([10, 30, 254, 1], 443), d)
        }
    };
    let b = etherparse::PacketBuilder::ethernet2([2, 0, 0, 0, 0, 3], [2, 0, 0, 0, 0, 4])
        .ipv4(src.0, dst.0, 64)
        .udp(src.1, dst.1);
    let mut out = Vec::with_capacity(payload.len() + 42);
    // Writing into a Vec only fails for payloads over the IP limit.
    let _ = b.write(&mut out, &payload);
    out
}

fn write_mix(path: &Path, size: u64, seed: u64, profile: Profile) -> io::Result<Manifest> {
    let mut w = PcapWriter::new(BufWriter::with_capacity(1 << 20, File::create(path)?))?;
    let mut m = Manifest::default();
    let mut rng = Rng(seed);
    let mut ts: i64 = 1_767_225_600_000_000; // 2026-01-01
    let mut active: Vec<Active> = Vec::new();
    let mut n_flow: u64 = 0;
    let concurrency = 48;
    while w.bytes < size || !active.is_empty() {
        while w.bytes < size && active.len() < concurrency {
            n_flow += 1;
            active.push(if profile == Profile::Handshakes {
                new_handshake(n_flow, &mut rng, &mut m)
            } else {
                new_flow(n_flow, &mut rng, &mut m)
            });
        }
        // Each active flow sends a few segments in turn.
        let mut i = 0;
        while i < active.len() {
            let burst = 1 + rng.below(6);
            let mut done = false;
            for _ in 0..burst {
                match active[i].next_segment() {
                    Some(s) => {
                        ts += 1 + rng.below(20) as i64;
                        let f = active[i].conn.frame(&s);
                        w.packet(ts, &f)?;
                    }
                    None => {
                        done = true;
                        break;
                    }
                }
            }
            if done {
                active.swap_remove(i);
            } else {
                i += 1;
            }
            if profile == Profile::Udp {
                ts += 1 + rng.below(20) as i64;
                let f = udp_noise(&mut rng, &mut m);
                w.packet(ts, &f)?;
            }
        }
    }
    m.packets = w.packets;
    m.bytes = w.bytes;
    m.flows = n_flow;
    let mut out = w.into_inner();
    out.flush()?;
    let manifest = serde_json::to_string_pretty(&m).unwrap_or_default();
    std::fs::write(path.with_extension("manifest.json"), manifest)?;
    Ok(m)
}

/// The client name of a planted handshake: a VMmanager default one time in
/// four (counted as an expected alert), else `PREFIX-` and 7 hex digits.
fn planted_name(rng: &mut Rng, m: &mut Manifest, prefix: &str) -> String {
    if rng.below(4) == 0 {
        m.vmmanager_alerts += 1;
        VMMANAGER[rng.below(3) as usize].to_string()
    } else {
        format!("{prefix}-{:07X}", rng.below(1 << 28))
    }
}

/// An HTTP GET: the request, the response head, then `len` body bytes.
fn http_get(conn: Conn, req: Vec<u8>, head: Vec<u8>, len: usize) -> Active {
    Active::new(
        conn,
        vec![
            Msg::Bytes(true, req),
            Msg::Bytes(false, head),
            Msg::Fill(false, len),
        ],
    )
}

fn new_flow(n: u64, rng: &mut Rng, m: &mut Manifest) -> Active {
    let client: IpAddr = IpAddr::from([10, 64 + (n % 32) as u8, (n >> 8) as u8, n as u8]);
    let cport = 20_000 + (n % 40_000) as u16;
    let server = |last: u8| IpAddr::from([10, 0, (n % 7) as u8, last]);
    let kind = rng.below(100);
    let mut count = |k: &'static str| *m.mix.entry(k).or_default() += 1;
    // One flow in 40 carries a planted RDP handshake, one in 40 an NTLM
    // logon over SMB; a quarter of each comes from a VMmanager-named VM.
    if n % 40 == 7 {
        count("rdp_planted");
        m.rdp_handshakes += 1;
        let name = planted_name(rng, m, "DESKTOP");
        let conn = Conn::new((client, cport), (server(8), 3389), n as u32);
        return Active::new(conn, trips(msg::rdp_standard_logon("user", &name)));
    }
    if n % 40 == 27 {
        count("ntlm_planted");
        m.ntlm_exchanges += 1;
        let name = planted_name(rng, m, "LAPTOP");
        let conn = Conn::new((client, cport), (server(5), 445), n as u32);
        return Active::new(
            conn,
            trips(msg::smb2_logon(
                0x11,
                &SERVER_NAMES,
                "CORP",
                "alice",
                &name,
                0,
            )),
        );
    }
    match kind {
        // Bulk HTTP download.
        0..=5 => {
            count("http_bulk");
            let len = rng.range(256 << 10, 4 << 20) as usize;
            let req = format!("GET /iso/{n}.img HTTP/1.1\r\nHost: mirror\r\n\r\n").into_bytes();
            let head = format!("HTTP/1.1 200 OK\r\nContent-Length: {len}\r\n\r\n").into_bytes();
            let conn = Conn::new((client, cport), (server(80), 80), n as u32);
            http_get(conn, req, head, len)
        }
        // TLS session.
        6..=20 => {
            count("tls");
            let conn = Conn::new((client, cport), (server(43), 443), n as u32);
            let hs = msg::tls_session("www.example.com", msg::CERT, 0);
            let mut v = trips(hs);
            v.push(Msg::TlsData(true, rng.range(500, 4000) as usize));
            v.push(Msg::TlsData(false, rng.range(20_000, 1_000_000) as usize));
            Active::new(conn, v)
        }
        // SMB2 file copy: a logon, then 64 KB reads.
        21..=26 => {
            count("smb_copy");
            m.ntlm_exchanges += 1;
            let conn = Conn::new((client, cport), (server(5), 445), n as u32);
            let ws = format!("PC-{:05}", n % 100_000);
            let mut v = trips(msg::smb2_logon(0x11, &SERVER_NAMES, "CORP", "bob", &ws, 0));
            for id in 0..rng.range(4, 48) {
                v.push(Msg::SmbRead(3 + id, 65_536));
            }
            Active::new(conn, v)
        }
        // A web page.
        27..=59 => {
            count("http_small");
            let len = rng.range(2_000, 40_000) as usize;
            let req = format!("GET /page/{n} HTTP/1.1\r\nHost: intranet\r\nAccept: */*\r\n\r\n")
                .into_bytes();
            let head = format!(
                "HTTP/1.1 200 OK\r\nContent-Type: text/html\r\nContent-Length: {len}\r\n\r\n"
            )
            .into_bytes();
            let conn = Conn::new((client, cport), (server(81), 8080), n as u32);
            http_get(conn, req, head, len)
        }
        // A short connection (DNS over TCP, health checks, ...).
        _ => {
            count("short");
            let conn = Conn::new((client, cport), (server(53), 53), n as u32);
            Active::new(
                conn,
                vec![
                    Msg::Bytes(true, vec![0, 30, 1, 2]),
                    Msg::Fill(true, 30),
                    Msg::Fill(false, 120),
                ],
            )
        }
    }
}

/// A connection of the handshake profile: one in four an RDP handshake,
/// one in four an NTLM logon over SMB (both planted), one in four a TLS
/// handshake with its certificate, one in four a short exchange.
fn new_handshake(n: u64, rng: &mut Rng, m: &mut Manifest) -> Active {
    let client: IpAddr = IpAddr::from([10, 64 + (n % 32) as u8, (n >> 8) as u8, n as u8]);
    let cport = 20_000 + (n % 40_000) as u16;
    let server = |last: u8| IpAddr::from([10, 0, (n % 7) as u8, last]);
    let mut count = |k: &'static str| *m.mix.entry(k).or_default() += 1;
    match n % 4 {
        0 => {
            count("rdp_planted");
            m.rdp_handshakes += 1;
            let name = planted_name(rng, m, "DESKTOP");
            let conn = Conn::new((client, cport), (server(8), 3389), n as u32);
            Active::new(conn, trips(msg::rdp_standard_logon("user", &name)))
        }
        1 => {
            count("ntlm_planted");
            m.ntlm_exchanges += 1;
            let name = planted_name(rng, m, "LAPTOP");
            let conn = Conn::new((client, cport), (server(5), 445), n as u32);
            let logon = msg::smb2_logon(0x11, &SERVER_NAMES, "CORP", "alice", &name, 0);
            Active::new(conn, trips(logon))
        }
        2 => {
            count("tls");
            let conn = Conn::new((client, cport), (server(43), 443), n as u32);
            Active::new(
                conn,
                trips(msg::tls_session("www.example.com", msg::CERT, 0)),
            )
        }
        _ => {
            count("short");
            let conn = Conn::new((client, cport), (server(53), 53), n as u32);
            Active::new(
                conn,
                vec![
                    Msg::Bytes(true, vec![0, 30, 1, 2]),
                    Msg::Fill(true, 30),
                    Msg::Fill(false, 120),
                ],
            )
        }
    }
}

/// Writes the frames `flood` produces, then the demo's story (which must
/// still be found after it).
fn flood_then_demo(
    path: &Path,
    flood: impl FnOnce(&mut PcapWriter<BufWriter<File>>, i64) -> io::Result<()>,
) -> io::Result<u64> {
    let mut w = PcapWriter::new(BufWriter::with_capacity(1 << 20, File::create(path)?))?;
    flood(&mut w, 1_770_714_000_000_000 - 60_000_000)?;
    for (t, f) in &super::demo::trace().frames {
        w.packet(*t, f)?;
    }
    let packets = w.packets;
    w.into_inner().flush()?;
    // What a sensor must still find after the flood: the demo's exchanges.
    let manifest = serde_json::json!({
        "packets": packets,
        "rdp_handshakes": super::demo::RDP_HANDSHAKES,
        "ntlm_exchanges": super::demo::NTLM_EXCHANGES,
    });
    std::fs::write(path.with_extension("manifest.json"), manifest.to_string())?;
    Ok(packets)
}

/// A NetBIOS name query (RFC 1002 4.2.12) for `name` (at most 15 bytes).
pub fn nbns_query(id: u16, name: &str) -> Vec<u8> {
    let mut q = id.to_be_bytes().to_vec();
    q.extend_from_slice(&[0x01, 0x10, 0, 1, 0, 0, 0, 0, 0, 0, 0x20]);
    let mut padded = [b' '; 16];
    for (p, b) in padded.iter_mut().zip(name.bytes().take(15)) {
        *p = b;
    }
    padded[15] = 0;
    for b in padded {
        q.push(b'A' + (b >> 4));
        q.push(b'A' + (b & 0x0f));
    }
    q.extend_from_slice(&[0, 0, 0x20, 0, 1]);
    q
}

/// Questions nobody answers: `n` DHCPDISCOVERs, each from a client of its
/// own (hardware address, transaction id), and `n` NetBIOS name queries,
/// each from a port of its own, so that the DHCP analyzer's transactions
/// and the datagram table's conversations fill up; then the demo.
pub fn write_queries(path: &Path, n: u32) -> io::Result<u64> {
    flood_then_demo(path, |w, mut ts| {
        const BROADCAST: [u8; 6] = [0xff; 6];
        for i in 0..n {
            let [a, b, c, d] = i.to_be_bytes();
            let mac = [0x02, 0x42, a, b, c, d];
            ts += 20;
            let discover = msg::dhcp_v4(&msg::Dhcp {
                xid: i.wrapping_mul(2_654_435_761),
                mac,
                hostname: &format!("VM-{i}"),
                ..msg::Dhcp::default()
            });
            w.packet(
                ts,
                &super::udp_frame((mac, [0; 4], 68), (BROADCAST, [255; 4], 67), &discover),
            )?;
            ts += 20;
            let query = nbns_query(i as u16, &format!("HOST{i}"));
            let port = 1024 + (i % 60_000) as u16;
            let src = (
                [0x02, 0x43, a, b, c, d],
                [10, 66, (i >> 16) as u8 & 0x3f, c],
                port,
            );
            w.packet(
                ts,
                &super::udp_frame(src, (BROADCAST, [10, 66, 255, 255], 137), &query),
            )?;
        }
        Ok(())
    })
}

/// Registrations nobody answers, each as large as the parser takes (16
/// records of 64 addresses, 6.3 KB), two from each of `n / 2` ports, so
/// that every conversation holds pending requests full of names; then
/// the demo.
pub fn write_registrations(path: &Path, n: u32) -> io::Result<u64> {
    flood_then_demo(path, |w, mut ts| {
        const BROADCAST: [u8; 6] = [0xff; 6];
        for i in 0..n {
            let [_, _, c, d] = (i / 2).to_be_bytes();
            ts += 50;
            let m = msg::nbns_registration_wide(i as u16, &format!("HOST{i}"), 16, 64);
            let src = (
                [0x02, 0x44, 0, 0, c, d],
                [10, 67, c, d],
                1024 + (i / 2) as u16,
            );
            w.packet(
                ts,
                &super::udp_frame(src, (BROADCAST, [10, 67, 255, 255], 137), &m),
            )?;
        }
        Ok(())
    })
}

/// Connections that fill analyzer buffers: after a real ClientHello, each
/// server sends a Certificate message announcing 16 MiB and then 240 KiB of
/// it, never finished, so that every connection holds its handshake buffer
/// at once.
pub fn write_buffers(path: &Path, flows: u32) -> io::Result<u64> {
    let hello = msg::tls_session("buffers.example", msg::CERT, 0)
        .into_iter()
        .next()
        .map(|(c, _)| c)
        .unwrap_or_default();
    let mut server = Vec::with_capacity(15 * (5 + 16_384));
    for r in 0..15 {
        server.extend_from_slice(&[0x16, 0x03, 0x03, 0x40, 0x00]);
        if r == 0 {
            // Certificate, 16 MiB long.
            server.extend_from_slice(&[11, 0xff, 0xff, 0xff]);
            server.extend_from_slice(&FILL[..16_380]);
        } else {
            server.extend_from_slice(&FILL[..16_384]);
        }
    }
    flood_then_demo(path, |w, mut ts| {
        for i in 0..flows {
            let src = IpAddr::from([100, 66, (i >> 8) as u8, i as u8]);
            let mut conn = Conn::new((src, 40_000), (IpAddr::from([10, 20, 0, 7]), 443), i);
            let mut segs = conn.open();
            segs.extend(conn.send(true, &hello));
            segs.extend(conn.send(false, &server));
            for s in &segs {
                ts += 5;
                w.packet(ts, &conn.frame(s))?;
            }
        }
        Ok(())
    })
}

/// A SYN flood: `flows` half-open connections from distinct sources, one
/// SYN each.
pub fn write_synflood(path: &Path, flows: u32) -> io::Result<u64> {
    flood_then_demo(path, |w, mut ts| {
        for i in 0..flows {
            let src = IpAddr::from([
                100,
                64 | (i >> 22) as u8 & 0x3f,
                (i >> 14) as u8,
                (i >> 6) as u8,
            ]);
            let conn = Conn::new(
                (src, 1024 + (i & 0x3f) as u16 * 1000),
                (IpAddr::from([10, 20, 0, 5]), 445),
                i,
            );
            let syn = Segment {
                from_client: true,
                seq: i.wrapping_mul(7919),
                ack: 0,
                flags: crate::decode::tcp_flags::SYN,
                payload: Vec::new(),
            };
            ts += 50;
            w.packet(ts, &conn.frame(&syn))?;
        }
        Ok(())
    })
}

/// Connections whose first data segment is missing and whose data arrives
/// backwards: the out-of-order buffers fill up everywhere.
pub fn write_gaps(path: &Path, flows: u32) -> io::Result<u64> {
    flood_then_demo(path, |w, mut ts| {
        for i in 0..flows {
            let src = IpAddr::from([100, 65, (i >> 8) as u8, i as u8]);
            let mut conn = Conn::new(
                (src, 40_000),
                (IpAddr::from([10, 20, 0, 6]), 8000 + (i % 100) as u16),
                i,
            );
            let mut segs = conn.open();
            let data = conn.send(true, &FILL[..64 << 10]);
            segs.extend(data.into_iter().skip(1).rev());
            for s in &segs {
                ts += 5;
                w.packet(ts, &conn.frame(s))?;
            }
        }
        Ok(())
    })
}
