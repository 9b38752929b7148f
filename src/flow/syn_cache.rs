//! Lone SYNs before their connection exists: a bounded cache of 4-slot
//! buckets, as a kernel keeps its half-open connections, so that a flood
//! of SYNs costs a hash and a slot write each and the flow table holds only
//! connections that went on. A held SYN goes into the flow table just
//! before the next segment of its connection (the SYN-ACK, as a rule), so
//! the table sees the same segments in the same order as without the
//! cache. When a bucket is full the oldest SYN in it is forgotten
//! (counted): if its connection goes on, the table picks it up at its
//! SYN-ACK, which names the client as surely, but without the handshake's
//! numbers checked. A flood forgets a SYN only once four newer ones hash
//! to its bucket: at a million SYNs a second into 65,536 slots, a SYN is
//! still held 10 ms later with a probability of 0.997 (a direct-mapped
//! cache: 0.86), so an answer within a round trip finds it.
//!
//! Buckets are chosen by a hash keyed per run: a sender cannot aim its
//! SYNs at the bucket of a connection it wants forgotten.

use std::hash::BuildHasher;

use super::FlowKey;
use crate::decode::{tcp_flags, Segment, TcpSegment};

/// Slots over the whole sensor (each flow table gets its share).
pub const DEFAULT_SLOTS: usize = 65_536;
/// The fewest slots a table gets.
const MIN_SLOTS: usize = 1_024;
/// Slots per bucket: a SYN goes to one bucket of its hash and takes the
/// place of the oldest there when all are taken.
const WAYS: usize = 4;

/// What the cache counted.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct SynStats {
    /// Lone SYNs held (retransmissions of a held one not counted again).
    pub held: u64,
    /// Of those, SYNs whose connection went on: they went into the table.
    pub answered: u64,
    /// Forgotten for another SYN hashed to their slot.
    pub overwritten: u64,
    /// Forgotten after the half-open timeout without an answer.
    pub timed_out: u64,
    /// Held now (`held` is the sum of the four).
    pub waiting: u64,
}

impl SynStats {
    pub fn add(&mut self, o: &SynStats) {
        self.held += o.held;
        self.answered += o.answered;
        self.overwritten += o.overwritten;
        self.timed_out += o.timed_out;
        self.waiting += o.waiting;
    }

    pub fn to_json(&self) -> serde_json::Value {
        serde_json::json!({
            "held": self.held, "answered": self.answered,
            "overwritten": self.overwritten, "timed_out": self.timed_out,
            "waiting": self.waiting,
        })
    }
}

/// A held SYN: the segment without its payload (a lone SYN delivers none),
/// the receiver's verdict on its checksum, the time of its last copy.
#[derive(Debug, Clone, Copy)]
pub struct HeldSyn {
    pub syn: Segment<()>,
    pub checked: Option<bool>,
    pub last_us: i64,
}

impl HeldSyn {
    /// The SYN as the flow table takes a segment.
    pub fn segment(&self) -> TcpSegment<'static> {
        self.syn.with_payload(&[][..])
    }
}

/// What became of a SYN offered to the cache.
#[derive(Debug)]
pub enum Offer {
    /// Held (or a retransmission of the one held, whose time it renews).
    Held,
    /// The slot held another SYN of the same connection (another initial
    /// sequence number, or another checksum verdict): that one goes into
    /// the table first, and the new one after it, as without the cache.
    Conflict(HeldSyn),
}

/// Whether a segment is a lone SYN: no ACK, RST or FIN with it.
pub fn is_lone_syn(flags: u8) -> bool {
    flags & (tcp_flags::SYN | tcp_flags::ACK | tcp_flags::RST | tcp_flags::FIN) == tcp_flags::SYN
}

pub struct SynCache {
    /// A power of two: [`MIN_SLOTS`] at the first SYN (a table that never
    /// sees one costs nothing), doubled while more than half are taken, up
    /// to `size`: ordinary traffic holds a few SYNs at a time and keeps a
    /// small cache; a flood grows it to its size.
    slots: Vec<Option<HeldSyn>>,
    size: usize,
    hasher: foldhash::fast::RandomState,
    /// SYNs held now.
    live: usize,
}

impl SynCache {
    /// A cache of at most about `slots` slots (a power of two, at least
    /// [`MIN_SLOTS`]).
    pub fn new(slots: usize) -> Self {
        SynCache {
            slots: Vec::new(),
            size: slots.clamp(MIN_SLOTS, 1 << 24).next_power_of_two(),
            hasher: foldhash::fast::RandomState::default(),
            live: 0,
        }
    }

    pub fn is_empty(&self) -> bool {
        self.live == 0
    }

    /// SYNs held now.
    pub fn len(&self) -> usize {
        self.live
    }

    /// Bytes the slots take.
    pub fn footprint(&self) -> usize {
        self.slots.capacity() * std::mem::size_of::<Option<HeldSyn>>()
    }

    /// The slots of `key`'s bucket.
    fn bucket(&self, key: &FlowKey) -> std::ops::Range<usize> {
        // The number of buckets is a power of two.
        let buckets = (self.slots.len() / WAYS).max(1);
        let b = (self.hasher.hash_one(key) as usize) & (buckets - 1);
        b * WAYS..b * WAYS + WAYS
    }

    /// Where the SYN of `key` is held.
    fn find(&self, key: &FlowKey) -> Option<usize> {
        self.bucket(key).find(|&i| {
            self.slots
                .get(i)
                .is_some_and(|s| s.is_some_and(|h| FlowKey::of(&h.segment()) == *key))
        })
    }

    /// Puts `h` in its bucket: a free slot, else in place of the oldest
    /// SYN there (counted), unless `h` is older still (then `h` is the one
    /// forgotten). The newest SYNs are the likeliest to be answered yet, and
    /// a flood must push four newer SYNs into one bucket to forget one.
    fn place(&mut self, key: &FlowKey, h: HeldSyn, stats: &mut SynStats) {
        let range = self.bucket(key);
        let Some(slots) = self.slots.get_mut(range) else {
            return;
        };
        if let Some(free) = slots.iter_mut().find(|s| s.is_none()) {
            *free = Some(h);
            self.live += 1;
            return;
        }
        stats.overwritten += 1;
        if let Some(oldest) = slots.iter_mut().flatten().min_by_key(|o| o.last_us) {
            if oldest.last_us <= h.last_us {
                *oldest = h;
            }
        }
    }

    /// Twice the slots, the SYNs held moved to their buckets.
    fn grow(&mut self, stats: &mut SynStats) {
        let doubled = vec![None; self.slots.len() * 2];
        let old = std::mem::replace(&mut self.slots, doubled);
        self.live = 0;
        for h in old.into_iter().flatten() {
            self.place(&FlowKey::of(&h.segment()), h, stats);
        }
    }

    /// Holds a lone SYN of a connection not in the table, its checksum
    /// judged `checked`.
    pub fn offer(
        &mut self,
        key: &FlowKey,
        seg: &TcpSegment<'_>,
        checked: Option<bool>,
        stats: &mut SynStats,
    ) -> Offer {
        if self.slots.is_empty() {
            self.slots = vec![None; MIN_SLOTS.min(self.size)];
        } else if self.live * 2 > self.slots.len() && self.slots.len() < self.size {
            self.grow(stats);
        }
        let new = HeldSyn {
            syn: seg.with_payload(()),
            checked,
            last_us: seg.ts_us,
        };
        let held = self.find(key).and_then(|i| self.slots.get_mut(i));
        if let Some(Some(h)) = held {
            if h.syn.seq == seg.seq && h.checked == checked && h.syn.src == seg.src {
                // A retransmission: the connection is as it was.
                h.last_us = seg.ts_us;
                return Offer::Held;
            }
            stats.held += 1;
            return Offer::Conflict(std::mem::replace(h, new));
        }
        stats.held += 1;
        self.place(key, new, stats);
        stats.waiting = self.live as u64;
        Offer::Held
    }

    /// The SYN held for `key`, taken out (its connection went on).
    pub fn take(&mut self, key: &FlowKey, stats: &mut SynStats) -> Option<HeldSyn> {
        if self.live == 0 {
            return None;
        }
        let h = self.find(key).and_then(|i| self.slots.get_mut(i))?.take()?;
        self.live -= 1;
        stats.waiting = self.live as u64;
        stats.answered += 1;
        Some(h)
    }

    /// Forgets the SYNs whose last copy came more than `timeout_us` before
    /// `now_us`, as the table ends a half-open connection.
    pub fn expire(&mut self, now_us: i64, timeout_us: i64, stats: &mut SynStats) {
        if self.live == 0 {
            return;
        }
        for slot in self.slots.iter_mut() {
            if slot.is_some_and(|h| now_us - h.last_us > timeout_us) {
                *slot = None;
                self.live -= 1;
                stats.timed_out += 1;
            }
        }
        stats.waiting = self.live as u64;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::decode::{Checksum, Vlans};

    fn syn(ts_us: i64, src: [u8; 4], sport: u16, seq: u32) -> TcpSegment<'static> {
        Segment {
            ts_us,
            src: src.into(),
            dst: [10, 0, 0, 9].into(),
            sport,
            dport: 3389,
            seq,
            ack: 0,
            flags: tcp_flags::SYN,
            window: 64_240,
            fast_open: false,
            vlans: Vlans::default(),
            iface: None,
            checksum: Checksum::Unchecked,
            payload: &[],
        }
    }

    #[test]
    fn a_held_syn_comes_out_once_for_its_connection() {
        let mut c = SynCache::new(0);
        let mut st = SynStats::default();
        let s = syn(1_000, [10, 0, 0, 1], 40_000, 7);
        let key = FlowKey::of(&s);
        assert!(matches!(
            c.offer(&key, &s, Some(true), &mut st),
            Offer::Held
        ));
        // A retransmission renews its time, nothing else.
        let again = syn(2_000, [10, 0, 0, 1], 40_000, 7);
        assert!(matches!(
            c.offer(&key, &again, Some(true), &mut st),
            Offer::Held
        ));
        assert_eq!((c.len(), st.held), (1, 1));
        // Another connection's key finds nothing.
        let other = FlowKey::of(&syn(1_000, [10, 0, 0, 2], 40_000, 7));
        assert!(c.take(&other, &mut st).is_none());
        let h = c.take(&key, &mut st);
        let got = h.map(|h| (h.syn.ts_us, h.syn.seq, h.last_us, h.checked));
        assert_eq!(got, Some((1_000, 7, 2_000, Some(true))));
        assert!(c.take(&key, &mut st).is_none());
        assert_eq!(
            st,
            SynStats {
                held: 1,
                answered: 1,
                ..SynStats::default()
            }
        );
        assert!(c.is_empty());
    }

    #[test]
    fn another_isn_for_a_held_connection_hands_back_the_first() {
        let mut c = SynCache::new(0);
        let mut st = SynStats::default();
        let first = syn(1_000, [10, 0, 0, 1], 40_000, 7);
        let key = FlowKey::of(&first);
        c.offer(&key, &first, Some(true), &mut st);
        let second = syn(1_500, [10, 0, 0, 1], 40_000, 99);
        match c.offer(&key, &second, Some(true), &mut st) {
            Offer::Conflict(h) => assert_eq!((h.syn.seq, h.syn.ts_us), (7, 1_000)),
            Offer::Held => panic!("the first SYN was not handed back"),
        }
        // The same ISN with another checksum verdict is not a plain
        // retransmission either.
        let unfilled = syn(1_600, [10, 0, 0, 1], 40_000, 99);
        assert!(matches!(
            c.offer(&key, &unfilled, None, &mut st),
            Offer::Conflict(_)
        ));
        assert_eq!(
            c.take(&key, &mut st).map(|h| (h.syn.seq, h.checked)),
            Some((99, None))
        );
    }

    /// Five SYNs of one bucket: the oldest is forgotten, whatever order
    /// they come in, and a retransmission keeps its SYN young.
    #[test]
    fn a_full_bucket_forgets_its_oldest_syn() {
        let mut c = SynCache::new(0);
        let mut st = SynStats::default();
        let first = syn(0, [10, 1, 0, 0], 1_024, 0);
        c.offer(&FlowKey::of(&first), &first, Some(true), &mut st);
        let bucket = c.bucket(&FlowKey::of(&first));
        // Four more connections whose SYNs share the first one's bucket.
        let mut same: Vec<TcpSegment<'static>> = (1..u32::MAX)
            .map(|i| {
                syn(
                    0,
                    [10, 1, (i >> 8) as u8, i as u8],
                    1_024 + (i >> 16) as u16,
                    i,
                )
            })
            .filter(|s| c.bucket(&FlowKey::of(s)) == bucket)
            .take(4)
            .collect();
        assert_eq!(same.len(), 4);
        for (t, s) in same.iter_mut().enumerate() {
            s.ts_us = 10 + t as i64;
        }
        // The second one is retransmitted last: it is younger than the rest.
        let (a, b, rest) = (same[0], same[1], &same[2..]);
        for s in [a, b].iter().chain(rest) {
            c.offer(&FlowKey::of(s), s, Some(true), &mut st);
        }
        // The bucket was full at the fifth: the first SYN (time 0) went.
        assert_eq!((st.held, st.overwritten, st.waiting), (5, 1, 4));
        assert!(c.take(&FlowKey::of(&first), &mut st).is_none());
        let again = TcpSegment { ts_us: 100, ..a };
        c.offer(&FlowKey::of(&again), &again, Some(true), &mut st);
        let sixth = (1..u32::MAX)
            .map(|i| syn(200, [10, 2, (i >> 8) as u8, i as u8], 1_024, i))
            .find(|s| c.bucket(&FlowKey::of(s)) == bucket)
            .unwrap_or(first);
        c.offer(&FlowKey::of(&sixth), &sixth, Some(true), &mut st);
        // `b` (time 11) was the oldest now; `a`, renewed at 100, stays.
        assert!(c.take(&FlowKey::of(&b), &mut st).is_none());
        assert!(c.take(&FlowKey::of(&a), &mut st).is_some());
        assert_eq!((st.held, st.overwritten, st.answered), (6, 2, 1));
    }

    #[test]
    fn a_flood_grows_the_cache_to_its_size_and_no_further() {
        let mut c = SynCache::new(4 * MIN_SLOTS);
        let mut st = SynStats::default();
        // A few SYNs at a time: the smallest cache.
        for i in 0..100u32 {
            let s = syn(i64::from(i), [100, 64, 0, i as u8], 1_024, i);
            c.offer(&FlowKey::of(&s), &s, Some(true), &mut st);
            c.take(&FlowKey::of(&s), &mut st);
        }
        assert_eq!(c.slots.len(), MIN_SLOTS);
        for i in 0..100_000u32 {
            let s = syn(
                i64::from(i),
                [100, 65, (i >> 8) as u8, i as u8],
                1_024 + (i >> 16) as u16,
                i,
            );
            c.offer(&FlowKey::of(&s), &s, Some(true), &mut st);
        }
        assert_eq!(c.slots.len(), 4 * MIN_SLOTS);
        assert_eq!(st.held, 100_100);
        assert_eq!(st.answered + st.overwritten + st.waiting, 100_100);
        assert_eq!(st.waiting, c.slots.iter().flatten().count() as u64);
    }

    #[test]
    fn a_flood_keeps_the_cache_at_its_size_and_counts_what_it_forgot() {
        let mut c = SynCache::new(0);
        let mut st = SynStats::default();
        assert_eq!(c.size, MIN_SLOTS);
        let n = 10_000u32;
        for i in 0..n {
            let s = syn(i64::from(i), [100, 64, (i >> 8) as u8, i as u8], 1_024, i);
            c.offer(&FlowKey::of(&s), &s, Some(true), &mut st);
        }
        assert_eq!(st.held, u64::from(n));
        assert!(c.len() <= MIN_SLOTS);
        assert_eq!(st.waiting + st.overwritten, u64::from(n));
        assert_eq!(st.waiting, c.len() as u64);
        assert_eq!(c.slots.len(), MIN_SLOTS);
        // Half-open timeout: those older than 5,000 µs at 9,999 + 5,000 go.
        let before = c.len() as u64;
        c.expire(9_999 + 5_000, 5_000, &mut st);
        let left = c.len() as u64;
        assert_eq!(st.timed_out, before - left);
        assert!(c.slots.iter().flatten().all(|h| h.last_us >= 9_999));
        c.expire(i64::MAX / 2, 5_000, &mut st);
        assert_eq!((c.len(), st.timed_out, st.waiting), (0, before, 0));
    }
}
