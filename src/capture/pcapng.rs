//! pcapng files whose interfaces have different link types (an Ethernet
//! span port and a Linux cooked capture merged, say), which libpcap refuses
//! whole. Read with `pcap-parser`, each packet carries its own interface's
//! link type and timestamp resolution; the capture filter is compiled once
//! per link type.

use std::io::Read;

use pcap::{BpfProgram, Capture, Linktype};
use pcap_parser::pcapng::Block;
use pcap_parser::traits::PcapReaderIterator;
use pcap_parser::{PcapBlockOwned, PcapError, PcapNGReader};

/// What libpcap says when it meets a second link type.
pub const LIBPCAP_REFUSAL: &str = "different from the type of the first interface";

/// Interfaces remembered per section (a crafted file could declare
/// millions; their packets are counted as not IP beyond this).
const MAX_INTERFACES: usize = 1024;
/// The reader's buffer, and the most it grows to for one block.
const BUFFER: usize = 1 << 20;
const MAX_BUFFER: usize = 16 << 20;

#[derive(Debug, Clone, Copy)]
struct Interface {
    linktype: i32,
    /// Timestamp units per second.
    resolution: u64,
    /// Seconds added to every timestamp.
    offset: i64,
}

/// A packet read: its time, link type and length on the wire; the bytes
/// are in [`MixedReader::frame`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Packet {
    pub ts_us: i64,
    pub linktype: i32,
    pub wire_len: u32,
}

/// Why reading stopped.
#[derive(Debug, PartialEq, Eq)]
pub enum ReadError {
    /// The file ends inside a block: the offset of the last whole block.
    Truncated(u64),
    /// A block that cannot be parsed, at this offset.
    Malformed(u64, String),
}

pub struct MixedReader {
    reader: PcapNGReader<Box<dyn Read + Send>>,
    interfaces: Vec<Interface>,
    frame: Vec<u8>,
    filter: Option<String>,
    programs: Vec<(i32, Option<BpfProgram>)>,
    last_ts_us: i64,
}

impl MixedReader {
    /// Reads pcapng from `input` (already decompressed), keeping only the
    /// packets `filter` (tcpdump syntax) matches.
    pub fn new(input: Box<dyn Read + Send>, filter: Option<&str>) -> Result<Self, String> {
        let reader = PcapNGReader::new(BUFFER, input).map_err(|e| format!("{e}"))?;
        Ok(MixedReader {
            reader,
            interfaces: Vec::new(),
            frame: Vec::new(),
            filter: filter.map(str::to_owned),
            programs: Vec::new(),
            last_ts_us: 0,
        })
    }

    /// The bytes of the last packet returned.
    pub fn frame(&self) -> &[u8] {
        &self.frame
    }

    /// Bytes of the file consumed so far.
    pub fn position(&self) -> u64 {
        self.reader.consumed() as u64
    }

    /// The next packet the filter keeps, or `None` at the end of the file.
    pub fn next_packet(&mut self) -> Result<Option<Packet>, ReadError> {
        loop {
            let Some(p) = self.next_any()? else {
                return Ok(None);
            };
            if self.keeps(p.linktype) {
                return Ok(Some(p));
            }
        }
    }

    /// Whether the filter, compiled for `linktype`, keeps the frame. A
    /// filter that does not compile for a link type keeps nothing of it.
    fn keeps(&mut self, linktype: i32) -> bool {
        let Some(expr) = &self.filter else {
            return true;
        };
        let i = match self.programs.iter().position(|(lt, _)| *lt == linktype) {
            Some(i) => i,
            None => {
                let prog = Capture::dead(Linktype(linktype))
                    .ok()
                    .and_then(|c| c.compile(expr, true).ok());
                self.programs.push((linktype, prog));
                self.programs.len() - 1
            }
        };
        self.programs[i]
            .1
            .as_ref()
            .is_some_and(|p| p.filter(&self.frame))
    }

    fn next_any(&mut self) -> Result<Option<Packet>, ReadError> {
        loop {
            let at = self.position();
            match self.reader.next() {
                Ok((len, block)) => {
                    let mut packet = None;
                    if let PcapBlockOwned::NG(b) = block {
                        match b {
                            Block::SectionHeader(_) => self.interfaces.clear(),
                            Block::InterfaceDescription(idb)
                                if self.interfaces.len() < MAX_INTERFACES =>
                            {
                                self.interfaces.push(Interface {
                                    linktype: idb.linktype.0,
                                    resolution: idb.ts_resolution().unwrap_or(1_000_000),
                                    offset: idb.ts_offset(),
                                });
                            }
                            Block::EnhancedPacket(epb) => {
                                let iface = self.interfaces.get(epb.if_id as usize).copied();
                                let caplen = (epb.caplen as usize).min(epb.data.len());
                                self.frame.clear();
                                self.frame
                                    .extend_from_slice(epb.data.get(..caplen).unwrap_or_default());
                                let ts = (u64::from(epb.ts_high) << 32) | u64::from(epb.ts_low);
                                let (linktype, ts_us) = match iface {
                                    Some(i) => (i.linktype, micros(ts, i)),
                                    // An undeclared interface: counted, not decoded.
                                    None => (-1, self.last_ts_us),
                                };
                                self.last_ts_us = ts_us;
                                packet = Some(Packet {
                                    ts_us,
                                    linktype,
                                    wire_len: epb.origlen,
                                });
                            }
                            Block::SimplePacket(spb) => {
                                // First interface, no timestamp of its own.
                                let lt = self.interfaces.first().map_or(-1, |i| i.linktype);
                                let caplen = (spb.origlen as usize).min(spb.data.len());
                                self.frame.clear();
                                self.frame
                                    .extend_from_slice(spb.data.get(..caplen).unwrap_or_default());
                                packet = Some(Packet {
                                    ts_us: self.last_ts_us,
                                    linktype: lt,
                                    wire_len: spb.origlen,
                                });
                            }
                            _ => {}
                        }
                    }
                    self.reader.consume(len);
                    if packet.is_some() {
                        return Ok(packet);
                    }
                }
                Err(PcapError::Eof) => return Ok(None),
                Err(PcapError::Incomplete(_)) => {
                    if self.reader.refill().is_err() {
                        return Err(ReadError::Truncated(at));
                    }
                }
                Err(PcapError::BufferTooSmall) => {
                    let size = self.reader.data().len().saturating_mul(2).max(BUFFER * 2);
                    if size > MAX_BUFFER || !self.reader.grow(size) {
                        return Err(ReadError::Malformed(
                            at,
                            "a block larger than 16 MiB".into(),
                        ));
                    }
                    if self.reader.refill().is_err() {
                        return Err(ReadError::Truncated(at));
                    }
                }
                Err(PcapError::UnexpectedEof) => return Err(ReadError::Truncated(at)),
                Err(e) => return Err(ReadError::Malformed(at, e.to_string())),
            }
        }
    }
}

/// The latest time a packet may carry: the end of year 9999, as libpcap's
/// own times stay far below `i64` microseconds.
const MAX_US: i64 = 253_402_300_799_999_999;

/// A pcapng timestamp in microseconds since the epoch, within
/// `0..=MAX_US` whatever the resolution and offset say.
fn micros(ts: u64, i: Interface) -> i64 {
    let resolution = u128::from(i.resolution.max(1));
    let us = u128::from(ts) * 1_000_000 / resolution;
    i64::try_from(us)
        .unwrap_or(i64::MAX)
        .saturating_add(i.offset.saturating_mul(1_000_000))
        .clamp(0, MAX_US)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A little-endian pcapng block.
    fn block(kind: u32, body: &[u8]) -> Vec<u8> {
        let len = 12 + body.len().div_ceil(4) * 4;
        let mut b = kind.to_le_bytes().to_vec();
        b.extend_from_slice(&(len as u32).to_le_bytes());
        b.extend_from_slice(body);
        b.resize(len - 4, 0);
        b.extend_from_slice(&(len as u32).to_le_bytes());
        b
    }

    fn file(packets: &[(u32, u64, &[u8])], tsresol_ns_on_second: bool) -> Vec<u8> {
        let mut f = block(
            0x0A0D_0D0A,
            &[
                0x4d, 0x3c, 0x2b, 0x1a, 1, 0, 0, 0, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
            ],
        );
        // Ethernet, then Linux cooked (113), the second in nanoseconds.
        f.extend(block(1, &[1, 0, 0, 0, 0, 0, 4, 0]));
        let mut idb = vec![113, 0, 0, 0, 0, 0, 4, 0];
        if tsresol_ns_on_second {
            idb.extend_from_slice(&[9, 0, 1, 0, 9, 0, 0, 0, 0, 0, 0, 0]);
        }
        f.extend(block(1, &idb));
        for (iface, ts, data) in packets {
            let mut body = iface.to_le_bytes().to_vec();
            body.extend_from_slice(&((ts >> 32) as u32).to_le_bytes());
            body.extend_from_slice(&(*ts as u32).to_le_bytes());
            body.extend_from_slice(&(data.len() as u32).to_le_bytes());
            body.extend_from_slice(&(data.len() as u32 + 10).to_le_bytes());
            body.extend_from_slice(data);
            f.extend(block(6, &body));
        }
        f
    }

    fn read_all(bytes: Vec<u8>) -> (Vec<(Packet, Vec<u8>)>, Option<ReadError>) {
        let mut r = match MixedReader::new(Box::new(std::io::Cursor::new(bytes)), None) {
            Ok(r) => r,
            Err(e) => return (Vec::new(), Some(ReadError::Malformed(0, e))),
        };
        let mut out = Vec::new();
        loop {
            match r.next_packet() {
                Ok(Some(p)) => out.push((p, r.frame().to_vec())),
                Ok(None) => return (out, None),
                Err(e) => return (out, Some(e)),
            }
        }
    }

    #[test]
    fn each_packet_carries_its_interfaces_link_type_and_time() {
        let bytes = file(
            &[
                (0, 1_700_000_000_000_001, b"eth frame"),
                (1, 1_700_000_000_000_000_002, b"sll"),
                (7, 5, b"undeclared"),
            ],
            true,
        );
        let (got, err) = read_all(bytes);
        assert_eq!(err, None);
        let summary: Vec<(i64, i32, u32, &[u8])> = got
            .iter()
            .map(|(p, d)| (p.ts_us, p.linktype, p.wire_len, d.as_slice()))
            .collect();
        assert_eq!(
            summary,
            [
                (1_700_000_000_000_001, 1, 19, &b"eth frame"[..]),
                (1_700_000_000_000_000, 113, 13, &b"sll"[..]),
                (1_700_000_000_000_000, -1, 20, &b"undeclared"[..]),
            ]
        );
    }

    /// Found by fuzzing: a timestamp and resolution that overflow the
    /// packet clock are clamped to a date libpcap could give.
    #[test]
    fn absurd_timestamps_are_clamped() {
        let i = Interface {
            linktype: 1,
            resolution: 1,
            offset: i64::MAX,
        };
        assert_eq!(micros(u64::MAX, i), MAX_US);
        let back = Interface {
            offset: i64::MIN,
            ..i
        };
        assert_eq!(micros(5, back), 0);
    }

    #[test]
    fn a_cut_file_gives_the_packets_before_the_cut_and_its_offset() {
        let whole = file(&[(0, 1, b"first"), (1, 2, b"second")], false);
        let cut = whole.len() - 7;
        let (got, err) = read_all(whole[..cut].to_vec());
        assert_eq!(got.len(), 1);
        // Section header (28 bytes), two interface blocks (20 each) and the
        // first packet block (40) are whole.
        assert_eq!(err, Some(ReadError::Truncated(28 + 20 + 20 + 40)));
    }
}
