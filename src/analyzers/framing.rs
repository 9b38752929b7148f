//! Cutting one direction of a stream into PDUs without copying when the
//! PDUs arrive whole, and with a bounded buffer when they do not; and the
//! two-direction driver ([`Framed`], [`data`], [`gap`]) that the analyzers
//! of PDU-framed protocols share.

use super::{Ctx, Dir, Status};

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
    buf: Vec<u8>,
    skip: usize,
    stopped: bool,
    max: usize,
}

impl Framer {
    /// `max` bounds the bytes buffered for one PDU; a longer PDU is skipped.
    pub fn new(max: usize) -> Self {
        Framer {
            buf: Vec::new(),
            skip: 0,
            stopped: false,
            max,
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

/// An analyzer whose stream is a sequence of PDUs in each direction.
pub trait Framed {
    /// The framing state of each direction, indexed by [`Dir::index`].
    fn framers(&mut self) -> &mut [Framer; 2];
    /// Handles the bytes at a PDU boundary of `dir`.
    fn step(&mut self, dir: Dir, bytes: &[u8], cx: &mut Ctx<'_>) -> Frame;
    /// Both directions stopped: emit what an unfinished exchange showed.
    fn stopped(&mut self, cx: &mut Ctx<'_>);
}

/// Feeds in-order bytes of `dir` to a framed analyzer; `Done` once neither
/// direction can be framed any further.
pub fn data<A: Framed>(a: &mut A, dir: Dir, bytes: &[u8], cx: &mut Ctx<'_>) -> Status {
    // The framer leaves the analyzer while it calls back into it.
    let mut framer = std::mem::take(&mut a.framers()[dir.index()]);
    framer.feed(bytes, &mut |b: &[u8]| a.step(dir, b, cx));
    a.framers()[dir.index()] = framer;
    finish_if_stopped(a, cx)
}

/// Frames again what `dir` has buffered (see [`Framer::resume`]); called
/// from the other direction's handler.
pub fn resume<A: Framed>(a: &mut A, dir: Dir, cx: &mut Ctx<'_>) {
    let mut framer = std::mem::take(&mut a.framers()[dir.index()]);
    framer.resume(&mut |b: &[u8]| a.step(dir, b, cx));
    a.framers()[dir.index()] = framer;
}

/// Bytes of `dir` were lost: that direction can no longer be framed.
pub fn gap<A: Framed>(a: &mut A, dir: Dir, cx: &mut Ctx<'_>) -> Status {
    a.framers()[dir.index()].gap();
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
