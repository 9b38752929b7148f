//! Classic pcap files read without libpcap: a regular, uncompressed file
//! is read through one buffer that stays in a core's cache, and each
//! record is handed out where it lies. libpcap copies every record twice
//! (from its stdio buffer into its packet buffer, through `fread`): that
//! was a quarter of the capture thread's time on bulk traffic.
//!
//! The buffer is shared, not copied from: packets go to the workers as
//! places in it ([`Chunk`]), and while any of them is still held there,
//! the reader moves on to another buffer (one that came back, or a new
//! one) instead of reading over it.
//!
//! libpcap still opens the file (it checks the header and gives the link
//! type and snapshot length), and takes over from the packet where a
//! record is anything but plain (a captured length above the snapshot
//! length): this reader only reads what libpcap would read the same way,
//! and says what libpcap says of a file cut short.

use std::fs::File;
use std::io::{Read, Seek, SeekFrom};
use std::sync::Arc;

/// The buffer records are read through: room for the largest record
/// libpcap reads, and small enough that the few in flight stay in the
/// cores' caches.
const BUFFER: usize = 512 << 10;

/// Buffers kept for reuse once the packets in them are handed back: the
/// ones in flight are bounded by the workers' queues, this by a few.
const SPARE: usize = 8;

/// A buffer of the file, shared with the batches whose packets lie in it.
pub type Chunk = Arc<[u8]>;

/// libpcap's largest captured length of a record (`MAXIMUM_SNAPLEN`).
const MAXIMUM_SNAPLEN: u32 = 262_144;

/// A new buffer (collected straight into its shared allocation).
fn fresh() -> Chunk {
    std::iter::repeat_n(0u8, BUFFER).collect()
}

/// One record read: its time, captured bytes and length on the wire.
#[derive(Debug, PartialEq, Eq)]
pub enum Record<'a> {
    Packet {
        ts_us: i64,
        data: &'a [u8],
        wire_len: u32,
    },
    /// The file ended after a whole record.
    End,
    /// A record libpcap reads differently (its captured length is above
    /// the snapshot length): libpcap takes over from this packet.
    HandOver,
    /// The file ends inside the record at the current offset (libpcap's
    /// words).
    Truncated(String),
    /// The file could not be read on (the system's reason).
    Failed(String),
}

/// A classic pcap file read through one buffer, records handed out in
/// place.
pub struct ClassicPcap {
    file: File,
    buf: Chunk,
    /// Buffers given up while shared, to be reused once they are not.
    spare: Vec<Chunk>,
    /// The unread bytes are `buf[start..end]`.
    start: usize,
    end: usize,
    /// The file offset of `buf[start]`.
    at: u64,
    eof: bool,
    /// Why the file could not be read on, when it could not.
    error: Option<std::io::Error>,
    little: bool,
    nanos: bool,
    snapshot: u32,
}

impl ClassicPcap {
    /// Reads `file` when it is a classic pcap file in microseconds or
    /// nanoseconds in either byte order, with libpcap's `snapshot` length;
    /// `None` when it is anything else (the caller then lets libpcap read
    /// it).
    pub fn open(file: &File, snapshot: i32) -> Option<ClassicPcap> {
        let snapshot = u32::try_from(snapshot).ok().filter(|s| *s > 0)?;
        let mut m = ClassicPcap {
            file: file.try_clone().ok()?,
            buf: fresh(),
            spare: Vec::new(),
            start: 0,
            end: 0,
            at: 0,
            eof: false,
            error: None,
            little: true,
            nanos: false,
            snapshot,
        };
        m.file.seek(SeekFrom::Start(0)).ok()?;
        if !m.fill(24) {
            return None;
        }
        let b = m.buf.get(..4)?;
        (m.little, m.nanos) = match [b[0], b[1], b[2], b[3]] {
            [0xd4, 0xc3, 0xb2, 0xa1] => (true, false),
            [0xa1, 0xb2, 0xc3, 0xd4] => (false, false),
            [0x4d, 0x3c, 0xb2, 0xa1] => (true, true),
            [0xa1, 0xb2, 0x3c, 0x4d] => (false, true),
            _ => return None,
        };
        m.start = 24;
        m.at = 24;
        Some(m)
    }

    /// Bytes of the file consumed so far.
    pub fn position(&self) -> u64 {
        self.at
    }

    /// Makes `n` unread bytes available when the file holds them (reading
    /// on, the unread ones moved to the front); whether it does.
    #[inline]
    fn fill(&mut self, n: usize) -> bool {
        self.end - self.start >= n || self.refill(n)
    }

    /// [`ClassicPcap::fill`] when the buffer holds less than `n` bytes.
    #[cold]
    fn refill(&mut self, n: usize) -> bool {
        while self.end - self.start < n && !self.eof {
            self.writable();
            let end = self.end;
            let Some(room) = Arc::get_mut(&mut self.buf).and_then(|b| b.get_mut(end..)) else {
                return false;
            };
            if room.is_empty() {
                return false;
            }
            match self.file.read(room) {
                Ok(0) => self.eof = true,
                Ok(k) => self.end += k,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                Err(e) => {
                    self.error = Some(e);
                    self.eof = true;
                }
            }
        }
        self.end - self.start >= n
    }

    /// Makes the buffer one to read on into, the unread bytes at its
    /// front: this one when no packet in it is held elsewhere, another
    /// otherwise (the unread bytes copied over, the held one kept for
    /// reuse).
    fn writable(&mut self) {
        let unread = self.start..self.end;
        if let Some(buf) = Arc::get_mut(&mut self.buf) {
            if unread.start > 0 {
                buf.copy_within(unread, 0);
            }
        } else {
            let mut next = match self.spare.iter().position(|c| Arc::strong_count(c) == 1) {
                Some(i) => self.spare.swap_remove(i),
                None => fresh(),
            };
            let len = unread.len();
            let from = self.buf.get(unread);
            let to = Arc::get_mut(&mut next).and_then(|b| b.get_mut(..len));
            let (Some(from), Some(to)) = (from, to) else {
                return;
            };
            to.copy_from_slice(from);
            let held = std::mem::replace(&mut self.buf, next);
            if self.spare.len() < SPARE {
                self.spare.push(held);
            }
        }
        self.end -= self.start;
        self.start = 0;
    }

    /// A record header's four fields (seconds, fraction, captured and
    /// original lengths), in the file's byte order.
    fn header_at_start(&self) -> Option<[u32; 4]> {
        let h: &[u8; 16] = self.buf.get(self.start..self.start + 16)?.try_into().ok()?;
        let field = |i: usize| {
            let b = [h[i], h[i + 1], h[i + 2], h[i + 3]];
            if self.little {
                u32::from_le_bytes(b)
            } else {
                u32::from_be_bytes(b)
            }
        };
        Some([field(0), field(4), field(8), field(12)])
    }

    fn reads_differently(&self, caplen: u32) -> bool {
        caplen > self.snapshot || caplen > MAXIMUM_SNAPLEN
    }

    /// The next record.
    pub fn read_record(&mut self) -> Record<'_> {
        self.read().0
    }

    /// The next record, and the buffer its packet lies in.
    pub fn read(&mut self) -> (Record<'_>, &Chunk) {
        if !self.fill(16) {
            if let Some(e) = &self.error {
                return (Record::Failed(e.to_string()), &self.buf);
            }
            let left = self.end - self.start;
            if left == 0 {
                return (Record::End, &self.buf);
            }
            let reason =
                format!("truncated dump file; tried to read 16 header bytes, only got {left}");
            return (Record::Truncated(reason), &self.buf);
        }
        // The 16 header bytes are there (filled above).
        let [sec, frac, caplen, wire_len] = self.header_at_start().unwrap_or_default();
        if self.reads_differently(caplen) {
            return (Record::HandOver, &self.buf);
        }
        let total = 16 + caplen as usize;
        if !self.fill(total) {
            if let Some(e) = &self.error {
                return (Record::Failed(e.to_string()), &self.buf);
            }
            let reason = format!(
                "truncated dump file; tried to read {caplen} captured bytes, only got {}",
                self.end - self.start - 16
            );
            return (Record::Truncated(reason), &self.buf);
        }
        let usec = if self.nanos { frac / 1000 } else { frac };
        let ts_us = i64::from(sec) * 1_000_000 + i64::from(usec);
        let from = self.start + 16;
        self.start += total;
        self.at += total as u64;
        let data = self
            .buf
            .get(from..from + caplen as usize)
            .unwrap_or_default();
        let packet = Record::Packet {
            ts_us,
            data,
            wire_len,
        };
        (packet, &self.buf)
    }
}

#[cfg(test)]
pub(super) mod tests {
    use super::*;
    use std::io::Write;

    /// A classic pcap file's header (version 2.4), in the byte order its
    /// `magic` gives.
    pub(in crate::capture) fn header(magic: [u8; 4], snaplen: u32, linktype: u32) -> Vec<u8> {
        let mut h = magic.to_vec();
        for n in [2u16, 4] {
            h.extend_from_slice(&if little(magic.first().copied()) {
                n.to_le_bytes()
            } else {
                n.to_be_bytes()
            });
        }
        put(&mut h, &[0, 0, snaplen, linktype]);
        h
    }

    /// Whether a file starting with byte `first` is little-endian.
    fn little(first: Option<u8>) -> bool {
        matches!(first, Some(0xd4 | 0x4d))
    }

    /// 32-bit numbers appended in the byte order of the file `v` begins.
    fn put(v: &mut Vec<u8>, numbers: &[u32]) {
        let le = little(v.first().copied());
        for n in numbers {
            v.extend_from_slice(&if le { n.to_le_bytes() } else { n.to_be_bytes() });
        }
    }

    /// A record appended to the file `v`, in its byte order.
    pub(in crate::capture) fn record(v: &mut Vec<u8>, sec: u32, frac: u32, data: &[u8], wire: u32) {
        put(v, &[sec, frac, data.len() as u32, wire]);
        v.extend_from_slice(data);
    }

    fn file(name: &str, bytes: &[u8]) -> File {
        // Unlinked: nothing is left behind.
        let written = tempfile::tempfile().and_then(|mut f| {
            f.write_all(bytes)?;
            f.rewind()?;
            Ok(f)
        });
        match written {
            Ok(f) => f,
            Err(e) => panic!("{name}: {e}"),
        }
    }

    /// `bytes` written to a file and opened by the classic reader.
    fn classic(name: &str, bytes: &[u8], snapshot: i32) -> ClassicPcap {
        match ClassicPcap::open(&file(name, bytes), snapshot) {
            Some(m) => m,
            None => panic!("{name}: not read as a classic pcap file"),
        }
    }

    /// Records in microseconds and nanoseconds, then the end; a record
    /// above the snapshot length is handed to libpcap.
    #[test]
    fn records_times_and_hand_over() {
        let mut v = header([0xd4, 0xc3, 0xb2, 0xa1], 65_535, 1);
        record(&mut v, 10, 7, b"abc", 60);
        record(&mut v, 11, 0, b"", 0);
        let mut m = classic("us.pcap", &v, 65_535);
        assert_eq!(
            m.read_record(),
            Record::Packet {
                ts_us: 10_000_007,
                data: b"abc",
                wire_len: 60
            }
        );
        assert_eq!(m.position(), 24 + 16 + 3);
        assert!(matches!(
            m.read_record(),
            Record::Packet {
                ts_us: 11_000_000,
                data: b"",
                wire_len: 0
            }
        ));
        assert_eq!(m.read_record(), Record::End);

        let mut v = header([0x4d, 0x3c, 0xb2, 0xa1], 65_535, 1);
        record(&mut v, 1, 999_999_999, b"x", 1);
        record(&mut v, 2, 0, &[0u8; 100], 100);
        let mut m = classic("ns.pcap", &v, 64);
        assert!(matches!(
            m.read_record(),
            Record::Packet {
                ts_us: 1_999_999,
                ..
            }
        ));
        assert_eq!(m.read_record(), Record::HandOver);
        assert_eq!(m.position(), 24 + 17);
    }

    /// A file ending inside a record says what libpcap says.
    #[test]
    fn truncation_in_libpcaps_words() {
        let mut v = header([0xd4, 0xc3, 0xb2, 0xa1], 65_535, 1);
        record(&mut v, 1, 0, b"abcd", 4);
        let whole = v.len();
        record(&mut v, 2, 0, &[7u8; 449], 449);
        let mut m = classic("cut-data.pcap", &v[..whole + 16 + 356], 65_535);
        assert!(matches!(m.read_record(), Record::Packet { .. }));
        assert_eq!(
            m.read_record(),
            Record::Truncated(
                "truncated dump file; tried to read 449 captured bytes, only got 356".into()
            )
        );
        assert_eq!(m.position(), whole as u64);
        let mut m = classic("cut-head.pcap", &v[..whole + 6], 65_535);
        assert!(matches!(m.read_record(), Record::Packet { .. }));
        assert_eq!(
            m.read_record(),
            Record::Truncated(
                "truncated dump file; tried to read 16 header bytes, only got 6".into()
            )
        );
    }

    /// pcapng and the modified pcap format are left to libpcap.
    #[test]
    fn other_formats_are_left_to_libpcap() {
        let f = file(
            "ng.pcapng",
            &[
                0x0a, 0x0d, 0x0d, 0x0a, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
                0, 0, 0, 0,
            ],
        );
        assert!(ClassicPcap::open(&f, 65_535).is_none());
        let f = file(
            "kuznetzov.pcap",
            &header([0x34, 0xcd, 0xb2, 0xa1], 65_535, 1),
        );
        assert!(ClassicPcap::open(&f, 65_535).is_none());
        let f = file("short.pcap", &[0xd4, 0xc3, 0xb2, 0xa1]);
        assert!(ClassicPcap::open(&f, 65_535).is_none());
    }

    /// Big-endian records, and a file several buffers long: records cut
    /// by the buffer's end are read whole, in order.
    #[test]
    fn big_endian_records_across_buffer_refills() {
        let mut v = header([0xa1, 0xb2, 0xc3, 0xd4], 65_535, 1);
        let sizes = |i: u32| 40 + (i * 7919) % 1500;
        let count = 3_000u32;
        for i in 0..count {
            let len = sizes(i);
            let data: Vec<u8> = (0..len).map(|b| (b ^ i) as u8).collect();
            record(&mut v, i, 3, &data, len + 1);
        }
        assert!(v.len() > 4 * BUFFER);
        let mut m = classic("refills.pcap", &v, 65_535);
        for i in 0..count {
            let len = sizes(i);
            match m.read_record() {
                Record::Packet {
                    ts_us,
                    data,
                    wire_len,
                } => {
                    assert_eq!(
                        (ts_us, data.len() as u32, wire_len),
                        (i64::from(i) * 1_000_000 + 3, len, len + 1)
                    );
                    assert!(
                        data.iter()
                            .enumerate()
                            .all(|(b, x)| *x == (b as u32 ^ i) as u8),
                        "record {i}"
                    );
                }
                other => panic!("record {i}: {other:?}"),
            }
        }
        assert_eq!(m.read_record(), Record::End);
        assert_eq!(m.position(), v.len() as u64);
    }

    /// Records whose buffer is held elsewhere (a batch on its way to a
    /// worker) stay as they were while the reader reads on: it goes on in
    /// another buffer, and takes a held one back once it is let go.
    #[test]
    fn held_buffers_are_not_read_over_and_come_back_when_let_go() {
        let mut v = header([0xd4, 0xc3, 0xb2, 0xa1], 65_535, 1);
        let count = 2_000u32;
        for i in 0..count {
            let data: Vec<u8> = (0..1000u32).map(|b| (b ^ i) as u8).collect();
            record(&mut v, i, 0, &data, 1000);
        }
        assert!(v.len() > 3 * BUFFER);
        let mut m = classic("held.pcap", &v, 65_535);
        // Every record's bytes, kept as a place in a held buffer.
        let mut held: Vec<(Chunk, usize)> = Vec::new();
        for _ in 0..count {
            let (record, chunk) = m.read();
            let Record::Packet { data, .. } = record else {
                panic!("{record:?}");
            };
            let at = data.as_ptr() as usize - chunk.as_ptr() as usize;
            held.push((chunk.clone(), at));
        }
        for (i, (chunk, at)) in held.iter().enumerate() {
            let data = chunk.get(*at..at + 1000).unwrap_or_default();
            let want = (0..1000u32).map(|b| (b ^ i as u32) as u8);
            assert!(data.iter().copied().eq(want), "record {i}");
        }
        let buffers = |h: &[(Chunk, usize)]| {
            let mut b: Vec<usize> = h.iter().map(|(c, _)| c.as_ptr() as usize).collect();
            b.dedup();
            b.len()
        };
        // Four buffers: each given up for a new one while held.
        assert_eq!(buffers(&held), 4);
        let had: Vec<usize> = (m.spare.iter().chain([&m.buf]))
            .map(|c| c.as_ptr() as usize)
            .collect();
        assert_eq!(had.len(), 4);
        // Let go: the file read again, held the same way, in those buffers.
        drop(held);
        m.file.seek(SeekFrom::Start(24)).unwrap_or_default();
        (m.start, m.end, m.at, m.eof) = (0, 0, 24, false);
        let mut again = Vec::new();
        for _ in 0..count {
            let (_, chunk) = m.read();
            again.push((chunk.clone(), 0));
        }
        assert_eq!(buffers(&again), 4);
        assert!(again
            .iter()
            .all(|(c, _)| had.contains(&(c.as_ptr() as usize))));
    }

    /// A read that fails is said, not taken for the end of the file.
    #[test]
    fn a_failed_read_is_not_the_end() {
        let mut v = header([0xd4, 0xc3, 0xb2, 0xa1], 65_535, 1);
        record(&mut v, 1, 0, b"abcd", 4);
        let mut m = classic("fails.pcap", &v, 65_535);
        // Reading on from here fails (a directory: EISDIR).
        m.file = match File::open(std::env::temp_dir()) {
            Ok(d) => d,
            Err(e) => panic!("{e}"),
        };
        assert!(matches!(
            m.read_record(),
            Record::Packet { data: b"abcd", .. }
        ));
        assert!(
            matches!(m.read_record(), Record::Failed(ref e) if e.contains("directory")),
            "{:?}",
            m.read_record()
        );
    }
}
