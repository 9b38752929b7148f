//! Cutting one direction of a stream into PDUs without copying when the
//! PDUs arrive whole, and with a bounded buffer when they do not; and the
//! two-direction driver ([`Framed`], [`data`], [`gap`]) that the analyzers
//! of PDU-framed protocols share.
//!
//! Lost bytes inside a PDU being skipped change nothing. Elsewhere the
//! place of the next PDU is unknown: a protocol with a [`Seeker`] searches
//! for the next plausible PDU start and frames on from there (counted in
//! `stats.resyncs`), as Suricata's SMB and DCE/RPC parsers do; without
//! one, that direction stops.

use super::{Analyzer, Ctx, Dir, Status};
use crate::parsers::Resync;

/// The most bytes kept between searches for a PDU start (a finder keeps
/// at most a header or an unfinished first line).
const MAX_KEPT: usize = 4096;

/// What the PDU handler says about the bytes at the start of the buffer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Frame {
    /// A PDU of this many bytes (header included) starts here but is not
    /// complete: call again when more bytes have arrived.
    Need(usize),
    /// A PDU of this many bytes was handled.
    Consumed(usize),
    /// Skip this many bytes, which may reach past what is there.
    Skip(usize),
    /// Nothing more to do in this direction.
    Stop,
}

/// One direction's framing state.
#[derive(Debug, Default)]
pub struct Framer {
    /// Bytes of an unfinished PDU; while seeking, the bytes kept for the
    /// next search.
    buf: Vec<u8>,
    skip: usize,
    stopped: bool,
    max: usize,
    /// Bytes were lost: searching for the next PDU start.
    seeking: bool,
    /// While seeking: the kept bytes begin right where the loss ended.
    at_loss: bool,
}

impl Framer {
    /// `max` bounds the bytes buffered for one PDU; a longer PDU is skipped.
    pub fn new(max: usize) -> Self {
        Framer {
            max,
            ..Framer::default()
        }
    }

    pub fn stopped(&self) -> bool {
        self.stopped
    }

    /// Memory the buffer holds (its capacity, not just the bytes in it).
    pub fn buffered(&self) -> usize {
        self.buf.capacity()
    }

    /// Bytes were lost: what is buffered can no longer complete, and the
    /// next byte's place in the framing is unknown.
    pub fn gap(&mut self) {
        // Stopped for good: the buffer's memory goes too.
        self.buf = Vec::new();
        self.skip = 0;
        self.stopped = true;
    }

    /// `len` bytes were lost. Inside a PDU being skipped the framing holds;
    /// otherwise, when the protocol can `seek`, the next bytes are searched
    /// for a PDU start ([`Framer::seek`]), and without it framing stops.
    /// Returns whether the place of the next PDU was lost.
    pub fn lose(&mut self, len: u32, seek: bool) -> bool {
        if self.stopped {
            return false;
        }
        let len = usize::try_from(len).unwrap_or(usize::MAX);
        if !self.seeking && self.buf.is_empty() && self.skip >= len {
            self.skip -= len;
            return false;
        }
        if !seek {
            self.gap();
            return false;
        }
        self.buf = Vec::new();
        self.skip = 0;
        self.seeking = true;
        self.at_loss = true;
        true
    }

    pub fn seeking(&self) -> bool {
        self.seeking
    }

    /// While seeking: `find` searches the kept bytes and `data` (told
    /// whether they begin right at the loss). Where it finds a PDU start,
    /// framing resumes with `f` from there and this returns true; otherwise
    /// the bytes it asks for are kept for the next search.
    pub fn seek<S, F>(&mut self, data: &[u8], find: S, f: &mut F) -> bool
    where
        S: FnOnce(&[u8], bool) -> Resync,
        F: FnMut(&[u8]) -> Frame,
    {
        let mut buf = std::mem::take(&mut self.buf);
        buf.extend_from_slice(data);
        match find(&buf, self.at_loss) {
            Resync::At(off) => {
                buf.drain(..off.min(buf.len()));
                self.seeking = false;
                self.buf = buf;
                self.resume(f);
                true
            }
            Resync::Keep(n) => {
                let n = n.min(buf.len()).min(MAX_KEPT);
                if n < buf.len() {
                    self.at_loss = false;
                }
                buf.drain(..buf.len() - n);
                self.buf = buf;
                false
            }
        }
    }

    /// Feeds bytes; `f` is called with the bytes available at a PDU
    /// boundary. Returns false once `f` said [`Frame::Stop`].
    pub fn feed<F: FnMut(&[u8]) -> Frame>(&mut self, mut data: &[u8], f: &mut F) -> bool {
        if self.stopped {
            return false;
        }
        if self.skip > 0 {
            let n = self.skip.min(data.len());
            self.skip -= n;
            data = &data[n..];
        }
        if data.is_empty() {
            return true;
        }
        if self.buf.is_empty() {
            let used = self.run(data, f);
            if !self.stopped && used < data.len() {
                self.buf.extend_from_slice(&data[used..]);
            }
        } else {
            let mut buf = std::mem::take(&mut self.buf);
            buf.extend_from_slice(data);
            let used = self.run(&buf, f);
            buf.drain(..used.min(buf.len()));
            if !self.stopped {
                self.buf = buf;
            }
        }
        !self.stopped
    }

    /// Runs `f` again over what is buffered: the handler waited for the
    /// other direction (it returned [`Frame::Need`] for more than it had),
    /// which has now decided.
    pub fn resume<F: FnMut(&[u8]) -> Frame>(&mut self, f: &mut F) {
        if self.stopped || self.buf.is_empty() {
            return;
        }
        let mut buf = std::mem::take(&mut self.buf);
        let used = self.run(&buf, f);
        buf.drain(..used.min(buf.len()));
        if !self.stopped {
            self.buf = buf;
        }
    }

    /// Drops the next `n` bytes, buffered or still to come.
    pub fn discard(&mut self, n: usize) {
        let now = n.min(self.buf.len());
        self.buf.drain(..now);
        self.skip = self.skip.saturating_add(n - now);
    }

    /// Runs `f` over whole PDUs of `data`; returns how many bytes were used
    /// (the rest waits for more).
    fn run<F: FnMut(&[u8]) -> Frame>(&mut self, data: &[u8], f: &mut F) -> usize {
        let mut off = 0;
        while off < data.len() {
            let avail = &data[off..];
            match f(avail) {
                Frame::Consumed(0) | Frame::Skip(0) | Frame::Stop => {
                    self.stopped = true;
                    return data.len();
                }
                Frame::Consumed(n) => off += n.min(avail.len()),
                Frame::Skip(n) => {
                    if n <= avail.len() {
                        off += n;
                    } else {
                        self.skip = n - avail.len();
                        return data.len();
                    }
                }
                Frame::Need(total) if total > self.max => {
                    // Too large to buffer: skip the whole PDU.
                    if total <= avail.len() {
                        off += total;
                    } else {
                        self.skip = total - avail.len();
                        return data.len();
                    }
                }
                Frame::Need(_) => return off,
            }
        }
        off
    }
}

/// How a framed protocol finds its next PDU after lost bytes.
#[derive(Debug, Clone, Copy)]
pub struct Seeker {
    /// Resyncs are counted under this name (`stats.resyncs`).
    pub protocol: &'static str,
    /// Where a PDU of `dir` may start in bytes after a loss (told whether
    /// they begin right where the loss ended): a pure parser function.
    pub find: fn(Dir, &[u8], bool) -> Resync,
}

/// An analyzer whose stream is a sequence of PDUs in each direction: it
/// says how to frame and handle them, and is an [`Analyzer`] by that.
pub trait Framed: Send {
    /// The framing state of each direction, indexed by [`Dir::index`].
    fn framers(&self) -> &[Framer; 2];
    fn framers_mut(&mut self) -> &mut [Framer; 2];
    /// Handles the bytes at a PDU boundary of `dir`.
    fn step(&mut self, dir: Dir, bytes: &[u8], cx: &mut Ctx<'_>) -> Frame;
    /// Both directions stopped, or the connection ended: emit what an
    /// unfinished exchange showed.
    fn stopped(&mut self, cx: &mut Ctx<'_>);
    /// See [`Analyzer::depth`].
    fn depth(&self) -> Option<u32> {
        None
    }
    /// How PDUs are found again after a loss; `None` (the default): they
    /// cannot be, and a loss ends that direction.
    fn seeker(&self) -> Option<Seeker> {
        None
    }
    /// `dir` lost its place: forget what depended on it (a body's framing).
    fn lost(&mut self, _dir: Dir) {}
}

impl<A: Framed> Analyzer for A {
    fn data(&mut self, dir: Dir, bytes: &[u8], cx: &mut Ctx<'_>) -> Status {
        data(self, dir, bytes, cx)
    }

    fn gap(&mut self, dir: Dir, len: u32, cx: &mut Ctx<'_>) -> Status {
        gap(self, dir, len, cx)
    }

    fn end(&mut self, cx: &mut Ctx<'_>) {
        self.stopped(cx);
    }

    fn depth(&self) -> Option<u32> {
        Framed::depth(self)
    }

    fn buffered(&self) -> usize {
        self.framers().iter().map(Framer::buffered).sum()
    }
}

/// Feeds in-order bytes of `dir` to a framed analyzer; `Done` once neither
/// direction can be framed any further.
pub fn data<A: Framed>(a: &mut A, dir: Dir, bytes: &[u8], cx: &mut Ctx<'_>) -> Status {
    // The framer leaves the analyzer while it calls back into it.
    let mut framer = std::mem::take(&mut a.framers_mut()[dir.index()]);
    match a.seeker() {
        Some(s) if framer.seeking() => {
            let find = |b: &[u8], at_loss: bool| (s.find)(dir, b, at_loss);
            if framer.seek(bytes, find, &mut |b: &[u8]| a.step(dir, b, cx)) {
                cx.resynced(s.protocol);
            }
        }
        _ => {
            framer.feed(bytes, &mut |b: &[u8]| a.step(dir, b, cx));
        }
    }
    a.framers_mut()[dir.index()] = framer;
    finish_if_stopped(a, cx)
}

/// Frames again what `dir` has buffered (see [`Framer::resume`]); called
/// from the other direction's handler.
pub fn resume<A: Framed>(a: &mut A, dir: Dir, cx: &mut Ctx<'_>) {
    let mut framer = std::mem::take(&mut a.framers_mut()[dir.index()]);
    framer.resume(&mut |b: &[u8]| a.step(dir, b, cx));
    a.framers_mut()[dir.index()] = framer;
}

/// `len` bytes of `dir` were lost: framing goes on past them if they
/// fell inside a skipped PDU, searches for the next PDU if the protocol
/// can, and otherwise stops in that direction.
pub fn gap<A: Framed>(a: &mut A, dir: Dir, len: u32, cx: &mut Ctx<'_>) -> Status {
    let seek = a.seeker().is_some();
    if a.framers_mut()[dir.index()].lose(len, seek) {
        a.lost(dir);
    }
    finish_if_stopped(a, cx)
}

fn finish_if_stopped<A: Framed>(a: &mut A, cx: &mut Ctx<'_>) -> Status {
    if a.framers().iter().all(Framer::stopped) {
        a.stopped(cx);
        Status::Done
    } else {
        Status::Continue
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Length-prefixed PDUs: one length byte, then the body.
    fn pdus(input: &[&[u8]], max: usize) -> (Vec<Vec<u8>>, bool) {
        let mut fr = Framer::new(max);
        let mut got = Vec::new();
        let mut alive = true;
        for chunk in input {
            alive = fr.feed(chunk, &mut |b: &[u8]| {
                let Some(&len) = b.first() else {
                    return Frame::Need(1);
                };
                if len == 0xff {
                    return Frame::Stop;
                }
                let total = 1 + usize::from(len);
                match b.get(1..total) {
                    Some(body) => {
                        got.push(body.to_vec());
                        Frame::Consumed(total)
                    }
                    None => Frame::Need(total),
                }
            });
        }
        (got, alive)
    }

    #[test]
    fn whole_split_and_coalesced_pdus() {
        let (got, _) = pdus(&[b"\x02ab\x01c"], 64);
        assert_eq!(got, vec![b"ab".to_vec(), b"c".to_vec()]);
        let (got, _) = pdus(&[b"\x03a", b"b", b"c\x01", b"d"], 64);
        assert_eq!(got, vec![b"abc".to_vec(), b"d".to_vec()]);
        let one_byte: Vec<&[u8]> = b"\x02xy\x01z".chunks(1).collect();
        assert_eq!(pdus(&one_byte, 64).0, vec![b"xy".to_vec(), b"z".to_vec()]);
    }

    #[test]
    fn oversized_pdu_is_skipped() {
        let mut big = vec![10u8];
        big.extend_from_slice(&[b'x'; 10]);
        big.extend_from_slice(b"\x01k");
        let (got, _) = pdus(&[&big[..4], &big[4..]], 4);
        assert_eq!(got, vec![b"k".to_vec()]);
    }

    /// PDUs of the test protocol with a start mark: 0xaa, a length byte,
    /// the body; the finder looks for the mark.
    fn marked(fr: &mut Framer, chunk: &[u8], got: &mut Vec<Vec<u8>>) -> bool {
        let mut step = |b: &[u8]| {
            let (Some(&0xaa), Some(&len)) = (b.first(), b.get(1)) else {
                return if b.len() < 2 {
                    Frame::Need(2)
                } else {
                    Frame::Stop
                };
            };
            let total = 2 + usize::from(len);
            match b.get(2..total) {
                Some(body) => {
                    got.push(body.to_vec());
                    Frame::Consumed(total)
                }
                None if len > 8 => Frame::Skip(total),
                None => Frame::Need(total),
            }
        };
        if fr.seeking() {
            let find = |b: &[u8], _: bool| match memchr::memchr(0xaa, b) {
                Some(p) => Resync::At(p),
                None => Resync::Keep(0),
            };
            fr.seek(chunk, find, &mut step)
        } else {
            fr.feed(chunk, &mut step);
            false
        }
    }

    #[test]
    fn a_loss_inside_a_skipped_pdu_keeps_the_framing() {
        let mut fr = Framer::new(64);
        let mut got = Vec::new();
        // A 20-byte body is skipped; 10 of its bytes are lost.
        marked(&mut fr, b"\xaa\x14abcde", &mut got);
        assert!(!fr.lose(10, false));
        assert!(!fr.seeking() && !fr.stopped());
        marked(&mut fr, b"fghij\xaa\x01k", &mut got);
        assert_eq!(got, vec![b"k".to_vec()]);
        // Past the skipped bytes, a loss without a seeker stops.
        assert!(!fr.lose(10, false));
        assert!(fr.stopped());
    }

    #[test]
    fn a_loss_elsewhere_is_searched_past() {
        let mut fr = Framer::new(64);
        let mut got = Vec::new();
        marked(&mut fr, b"\xaa\x03ab", &mut got);
        // The PDU's last byte and the next PDU's start are lost.
        assert!(fr.lose(3, true));
        assert!(fr.seeking() && fr.buffered() == 0);
        assert!(!marked(&mut fr, b"xyz", &mut got));
        assert!(marked(&mut fr, b"zz\xaa\x02pq\xaa\x01", &mut got));
        assert!(!fr.seeking());
        marked(&mut fr, b"r", &mut got);
        assert_eq!(got, vec![b"pq".to_vec(), b"r".to_vec()]);
    }

    #[test]
    fn stop_and_gap() {
        let (got, alive) = pdus(&[b"\x01a\xff\x01b"], 64);
        assert_eq!((got, alive), (vec![b"a".to_vec()], false));
        let mut fr = Framer::new(8);
        fr.feed(b"\x05ab", &mut |b: &[u8]| {
            Frame::Need(1 + usize::from(b[0]))
        });
        assert!(fr.buffered() >= 3);
        fr.gap();
        assert_eq!(fr.buffered(), 0);
        assert!(!fr.feed(b"x", &mut |_b: &[u8]| Frame::Consumed(1)));
    }
}
