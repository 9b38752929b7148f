//! One direction of a TCP connection put back in order.
//!
//! Sequence numbers are turned into offsets from the direction's first byte
//! (the ISN + 1 when the SYN was seen, else the first sequence number seen),
//! with wrapping arithmetic, so sequence wrap-around needs no special case.
//! Bytes are delivered in order, at most [`StreamLimits::depth`] of them:
//! handshakes live at the start of a connection, and what lies past the depth
//! is bypassed without being looked at.
//!
//! **Overlap policy: first arrival wins, the other version is handed on.**
//! Bytes already delivered or held out of order are never replaced; a
//! segment only fills holes. Delivered bytes are kept until the peer
//! acknowledges them (bounded per stream and over all streams), as Zeek
//! keeps them, so that a retransmission can be compared with what was
//! delivered. A segment that overlaps delivered or held bytes with different
//! content is a conflicting overlap: one of the two copies never reached the
//! receiver (a TTL-limited decoy, or a broken stack), and the sensor cannot
//! tell which. It is counted, and the later copy is handed to the consumer as
//! a [`Chunk::Conflict`] so that its bytes are searched too.
//!
//! Out-of-order bytes are held in a sorted list of runs (adjacent segments
//! merge, so the cap on runs counts holes, not segments), capped per stream
//! and over all streams (a [`Budget`] shared by the flow table). When a cap
//! would be exceeded the stream gives up on the hole: it reports a gap to the
//! analyzer and goes on with the bytes it holds. A gap is also declared when
//! the peer acknowledges bytes past a hole (the capture lost them) and when
//! the flow ends with a hole.

use std::collections::VecDeque;

/// Limits of one stream.
#[derive(Debug, Clone, Copy)]
pub struct StreamLimits {
    /// Bytes delivered per direction before the rest is bypassed.
    pub depth: u32,
    /// Out-of-order bytes one stream may hold.
    pub max_ooo_bytes: usize,
    /// Out-of-order segments one stream may hold.
    pub max_ooo_segments: usize,
    /// Delivered bytes kept per stream until the peer acknowledges them.
    pub retain: usize,
}

/// Bytes reassembled per direction of a connection by default.
pub const DEFAULT_DEPTH: u32 = 1 << 20;

impl Default for StreamLimits {
    fn default() -> Self {
        StreamLimits {
            depth: DEFAULT_DEPTH,
            max_ooo_bytes: 256 << 10,
            max_ooo_segments: 256,
            retain: 32 << 10,
        }
    }
}

/// Out-of-order bytes held, and delivered bytes kept for comparison, over
/// all streams, with the caps on each.
#[derive(Debug)]
pub struct Budget {
    pub used: usize,
    pub cap: usize,
    pub retained: usize,
    pub retain_cap: usize,
    /// What the connections' analyzers buffer plus the memory their kept
    /// bytes occupy (see the flow table's memory cap).
    pub flows: usize,
}

impl Budget {
    /// Memory held for connections: out-of-order bytes, kept bytes and
    /// analyzer buffers.
    pub fn in_use(&self) -> usize {
        self.used + self.flows
    }
}

impl Budget {
    pub fn new(cap: usize) -> Self {
        Budget {
            used: 0,
            cap,
            retained: 0,
            retain_cap: cap,
            flows: 0,
        }
    }
}

/// Per-stream counters, summed into the run's `stats`.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct StreamStats {
    pub segments: u64,
    pub delivered_bytes: u64,
    pub retransmitted: u64,
    pub out_of_order: u64,
    pub conflicting_overlaps: u64,
    pub gaps: u64,
    pub gap_bytes: u64,
    /// Holes given up because a cap on held bytes was reached.
    pub ooo_overflows: u64,
    /// Bytes past the depth limit, not delivered.
    pub beyond_depth: u64,
    /// Delivered bytes not kept for comparison because a cap was reached.
    pub unretained_bytes: u64,
}

impl StreamStats {
    pub fn add(&mut self, o: &StreamStats) {
        self.segments += o.segments;
        self.delivered_bytes += o.delivered_bytes;
        self.retransmitted += o.retransmitted;
        self.out_of_order += o.out_of_order;
        self.conflicting_overlaps += o.conflicting_overlaps;
        self.gaps += o.gaps;
        self.gap_bytes += o.gap_bytes;
        self.ooo_overflows += o.ooo_overflows;
        self.beyond_depth += o.beyond_depth;
        self.unretained_bytes += o.unretained_bytes;
    }

    /// The `reassembly` object of `stats` (`held` bytes out of order now).
    pub fn to_json(&self, held: usize) -> serde_json::Value {
        serde_json::json!({
            "segments": self.segments, "bytes": self.delivered_bytes,
            "retransmitted": self.retransmitted, "out_of_order": self.out_of_order,
            "conflicting_overlaps": self.conflicting_overlaps, "gaps": self.gaps,
            "gap_bytes": self.gap_bytes, "ooo_overflows": self.ooo_overflows,
            "beyond_depth_bytes": self.beyond_depth, "held_bytes": held,
            "unretained_bytes": self.unretained_bytes,
        })
    }
}

/// What the stream hands to its consumer, in order.
#[derive(Debug, PartialEq, Eq)]
pub enum Chunk<'a> {
    Data(&'a [u8]),
    /// This many bytes were never seen.
    Gap(u32),
    /// A segment at this offset whose bytes differ from those delivered or
    /// held there: the other version of the stream at that place.
    Conflict(u32, &'a [u8]),
}

/// A run of contiguous held bytes: adjacent segments are merged, so the
/// cap on runs counts holes, not segments (a message sent as hundreds of
/// one-byte segments behind one missing byte is one run).
struct Held {
    start: u32,
    /// A deque: a run grows at its front when segments come in reverse.
    data: VecDeque<u8>,
}

impl Held {
    fn end(&self) -> u64 {
        u64::from(self.start) + self.data.len() as u64
    }
}

#[derive(Default)]
pub struct Stream {
    /// Sequence number of offset 0.
    base: Option<u32>,
    /// Offset of the next byte to deliver.
    next: u32,
    held: Vec<Held>,
    held_bytes: usize,
    /// The last delivered bytes the peer has not acknowledged, ending at
    /// `next`.
    retained: VecDeque<u8>,
    /// Offset of the FIN, once seen.
    fin_at: Option<u32>,
}

/// Offsets at or above this are taken as "before the start" (old data).
const NEGATIVE: u32 = 0x8000_0000;

impl Stream {
    /// Sets the first offset from a SYN's sequence number.
    pub fn syn(&mut self, isn: u32) {
        if self.base.is_none() {
            self.base = Some(isn.wrapping_add(1));
        }
    }

    /// The sequence number of the next byte this stream expects (the
    /// receiver's RCV.NXT, past a FIN once every byte before it came),
    /// once known.
    pub fn expected_seq(&self) -> Option<u32> {
        self.base.map(|b| {
            b.wrapping_add(self.next)
                .wrapping_add(u32::from(self.finished()))
        })
    }

    pub fn has_base(&self) -> bool {
        self.base.is_some()
    }

    /// Whether every byte up to the FIN has been delivered.
    pub fn finished(&self) -> bool {
        self.fin_at.is_some_and(|f| self.next >= f)
    }

    /// Whether the depth limit was reached: nothing more will be delivered.
    pub fn exhausted(&self, limits: &StreamLimits) -> bool {
        self.next >= limits.depth
    }

    pub fn delivered(&self) -> u32 {
        self.next
    }

    pub fn held_bytes(&self) -> usize {
        self.held_bytes
    }

    /// Records a FIN at `seq` (the FIN's own sequence number).
    pub fn fin(&mut self, seq: u32) {
        let base = *self.base.get_or_insert(seq);
        let off = seq.wrapping_sub(base);
        if off < NEGATIVE {
            self.fin_at.get_or_insert(off);
        }
    }

    /// Adds a segment's payload and delivers whatever became contiguous.
    pub fn segment<F: FnMut(Chunk<'_>)>(
        &mut self,
        seq: u32,
        payload: &[u8],
        limits: &StreamLimits,
        budget: &mut Budget,
        stats: &mut StreamStats,
        out: &mut F,
    ) {
        if payload.is_empty() {
            return;
        }
        stats.segments += 1;
        let base = *self.base.get_or_insert(seq);
        let mut off = seq.wrapping_sub(base);
        let mut data = payload;
        if off >= NEGATIVE {
            // Starts before offset 0: keep only what lies after it.
            let before = off.wrapping_neg() as usize;
            if before >= data.len() {
                stats.retransmitted += 1;
                return;
            }
            data = &data[before..];
            off = 0;
        }
        // Never deliver or hold past the depth limit.
        let room = limits.depth.saturating_sub(off) as usize;
        if room < data.len() {
            stats.beyond_depth += (data.len() - room) as u64;
            data = &data[..room];
            if data.is_empty() {
                return;
            }
        }
        let end = u64::from(off) + data.len() as u64;
        if off < self.next && !self.same_as_delivered(off, data) {
            stats.conflicting_overlaps += 1;
            out(Chunk::Conflict(off, data));
        }
        if end <= u64::from(self.next) {
            stats.retransmitted += 1;
            return;
        }
        if off <= self.next {
            let fresh = &data[(self.next - off) as usize..];
            self.deliver(fresh, limits, budget, stats, out);
            self.drain(limits, budget, stats, out);
            return;
        }
        stats.out_of_order += 1;
        self.hold(off, data, limits, budget, stats, out);
    }

    /// Whether the delivered bytes still kept agree with `data` at `off`
    /// (bytes no longer kept cannot be compared and count as agreeing).
    fn same_as_delivered(&self, off: u32, data: &[u8]) -> bool {
        let kept_from = self.next - self.retained.len() as u32;
        let from = off.max(kept_from);
        let to = (u64::from(off) + data.len() as u64).min(u64::from(self.next)) as u32;
        if from >= to {
            return true;
        }
        let kept = (from - kept_from) as usize..(to - kept_from) as usize;
        let new = (from - off) as usize..(to - off) as usize;
        match data.get(new) {
            Some(new) => self.retained.range(kept).eq(new.iter()),
            None => true,
        }
    }

    /// The peer acknowledged up to `ack`: delivered bytes before it need no
    /// longer be kept, and bytes before it that were never seen are lost to
    /// the capture (a gap, when bytes are held past a hole).
    pub fn peer_ack<F: FnMut(Chunk<'_>)>(
        &mut self,
        ack: u32,
        limits: &StreamLimits,
        budget: &mut Budget,
        stats: &mut StreamStats,
        out: &mut F,
    ) {
        let Some(base) = self.base else {
            return;
        };
        let acked = ack.wrapping_sub(base);
        if acked >= NEGATIVE {
            return;
        }
        let kept_from = self.next - self.retained.len() as u32;
        if acked > kept_from {
            let n = ((acked - kept_from) as usize).min(self.retained.len());
            self.retained.drain(..n);
            budget.retained -= n;
        }
        let Some(first) = self.held.first() else {
            return;
        };
        if acked < first.start {
            return;
        }
        let gap = first.start - self.next;
        self.gap(gap, stats, out);
        self.drain(limits, budget, stats, out);
    }

    /// The flow ends: delivers what is held, with gaps for the holes.
    pub fn flush<F: FnMut(Chunk<'_>)>(
        &mut self,
        limits: &StreamLimits,
        budget: &mut Budget,
        stats: &mut StreamStats,
        out: &mut F,
    ) {
        while let Some(first) = self.held.first() {
            let gap = first.start.saturating_sub(self.next);
            if gap > 0 {
                self.gap(gap, stats, out);
            }
            self.drain(limits, budget, stats, out);
        }
    }

    /// Frees what is held and kept without delivering it (the flow is
    /// bypassed or ends).
    pub fn discard(&mut self, budget: &mut Budget) {
        budget.used -= self.held_bytes;
        self.held_bytes = 0;
        self.held = Vec::new();
        budget.retained -= self.retained.len();
        self.retained = VecDeque::new();
    }

    /// Bytes kept for comparison.
    pub fn retained_bytes(&self) -> usize {
        self.retained.len()
    }

    /// Memory the kept bytes occupy.
    pub fn retained_capacity(&self) -> usize {
        self.retained.capacity()
    }

    fn deliver<F: FnMut(Chunk<'_>)>(
        &mut self,
        data: &[u8],
        limits: &StreamLimits,
        budget: &mut Budget,
        stats: &mut StreamStats,
        out: &mut F,
    ) {
        self.next += data.len() as u32;
        stats.delivered_bytes += data.len() as u64;
        self.retain(data, limits, budget, stats);
        out(Chunk::Data(data));
    }

    /// Keeps the last delivered bytes for comparison, within the stream's
    /// cap and what the budget leaves; the oldest go first, so the kept
    /// bytes always end at `next`. Bytes that go before the peer
    /// acknowledged them are counted.
    fn retain(
        &mut self,
        data: &[u8],
        limits: &StreamLimits,
        budget: &mut Budget,
        stats: &mut StreamStats,
    ) {
        let free = budget.retain_cap.saturating_sub(budget.retained);
        let room = limits.retain.min(free + self.retained.len());
        let keep = data.len().min(room);
        let drop = (self.retained.len() + keep).saturating_sub(room);
        self.retained.drain(..drop);
        budget.retained -= drop;
        stats.unretained_bytes += (drop + data.len() - keep) as u64;
        self.retained
            .extend(data.get(data.len() - keep..).unwrap_or_default());
        budget.retained += keep;
    }

    fn gap<F: FnMut(Chunk<'_>)>(&mut self, len: u32, stats: &mut StreamStats, out: &mut F) {
        self.next += len;
        stats.gaps += 1;
        stats.gap_bytes += u64::from(len);
        // Kept bytes must end at `next`.
        self.retained.clear();
        out(Chunk::Gap(len));
    }

    /// Delivers held segments that are now contiguous.
    fn drain<F: FnMut(Chunk<'_>)>(
        &mut self,
        limits: &StreamLimits,
        budget: &mut Budget,
        stats: &mut StreamStats,
        out: &mut F,
    ) {
        while let Some(first) = self.held.first() {
            if first.start > self.next {
                return;
            }
            let mut seg = self.held.remove(0);
            self.held_bytes -= seg.data.len();
            budget.used -= seg.data.len();
            if seg.end() > u64::from(self.next) {
                let skip = (self.next - seg.start) as usize;
                let data = seg.data.make_contiguous();
                self.deliver(&data[skip..], limits, budget, stats, out);
            }
        }
    }

    /// Holds an out-of-order segment, keeping bytes already held (first
    /// arrival wins); only the parts that fill holes are stored.
    fn hold<F: FnMut(Chunk<'_>)>(
        &mut self,
        off: u32,
        data: &[u8],
        limits: &StreamLimits,
        budget: &mut Budget,
        stats: &mut StreamStats,
        out: &mut F,
    ) {
        let (pieces, conflict) = self.uncovered(off, data);
        if conflict {
            stats.conflicting_overlaps += 1;
            out(Chunk::Conflict(off, data));
        }
        for (s, e) in pieces {
            let len = (e - s) as usize;
            // Make room: give up the oldest hole until the piece fits.
            while !self.held.is_empty()
                && (self.held_bytes + len > limits.max_ooo_bytes
                    || self.held.len() >= limits.max_ooo_segments
                    || budget.used + len > budget.cap)
            {
                stats.ooo_overflows += 1;
                let first_start = self.held[0].start;
                if first_start > self.next {
                    self.gap(first_start - self.next, stats, out);
                }
                self.drain(limits, budget, stats, out);
            }
            if s < self.next {
                // Draining moved past part of this piece: deliver the rest.
                if e > self.next {
                    let from = (self.next - off) as usize;
                    let to = (e - off) as usize;
                    self.deliver(&data[from..to], limits, budget, stats, out);
                }
                continue;
            }
            if len > limits.max_ooo_bytes || budget.used + len > budget.cap {
                // Too large to hold at all: skip to it.
                stats.ooo_overflows += 1;
                self.gap(s - self.next, stats, out);
                let piece = &data[(s - off) as usize..(e - off) as usize];
                self.deliver(piece, limits, budget, stats, out);
                self.drain(limits, budget, stats, out);
                continue;
            }
            self.store(s, &data[(s - off) as usize..(e - off) as usize]);
            budget.used += len;
        }
        self.drain(limits, budget, stats, out);
    }

    /// The pieces of `[off, off + data.len())` that no held segment covers,
    /// and whether a held segment holds other bytes where they overlap.
    fn uncovered(&self, off: u32, data: &[u8]) -> (Vec<(u32, u32)>, bool) {
        let end = off + data.len() as u32;
        let mut pieces: Vec<(u32, u32)> = Vec::new();
        let mut conflict = false;
        let mut pos = off;
        for h in &self.held {
            let (hs, he) = (h.start, h.end() as u32);
            if he <= pos || hs >= end {
                continue;
            }
            if hs > pos {
                pieces.push((pos, hs));
            }
            let (os, oe) = (hs.max(pos), he.min(end));
            if !h
                .data
                .range((os - hs) as usize..(oe - hs) as usize)
                .eq(data[(os - off) as usize..(oe - off) as usize].iter())
            {
                conflict = true;
            }
            pos = oe;
        }
        if pos < end {
            pieces.push((pos, end));
        }
        (pieces, conflict)
    }

    /// Keeps `piece` (at `start`, in a hole), merged with the held runs it
    /// touches.
    fn store(&mut self, start: u32, piece: &[u8]) {
        let end = start + piece.len() as u32;
        let idx = self.held.partition_point(|h| h.start < start);
        let joins_prev = idx > 0 && self.held[idx - 1].end() == u64::from(start);
        let joins_next = self.held.get(idx).is_some_and(|h| h.start == end);
        match (joins_prev, joins_next) {
            (true, true) => {
                let next = self.held.remove(idx);
                let prev = &mut self.held[idx - 1];
                prev.data.extend(piece);
                prev.data.extend(next.data);
            }
            (true, false) => self.held[idx - 1].data.extend(piece),
            (false, true) => {
                let next = &mut self.held[idx];
                for &b in piece.iter().rev() {
                    next.data.push_front(b);
                }
                next.start = start;
            }
            (false, false) => self.held.insert(
                idx,
                Held {
                    start,
                    data: piece.iter().copied().collect(),
                },
            ),
        }
        self.held_bytes += piece.len();
    }
}

#[cfg(test)]
#[path = "reassembly_tests.rs"]
mod tests;
