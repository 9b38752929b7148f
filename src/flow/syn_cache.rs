//! Lone SYNs before their connection exists: a fixed-size, direct-mapped
//! cache, as a kernel keeps its half-open connections, so that a flood of
//! SYNs costs a hash and a slot write each and the flow table holds only
//! connections that went on. A held SYN goes into the flow table just
//! before the next segment of its connection (the SYN-ACK, as a rule), so
//! the table sees the same segments in the same order as without the
//! cache. A SYN whose slot another SYN takes is forgotten (counted): if its
//! connection goes on, the table picks it up at its SYN-ACK, which names
//! the client as surely.
//!
//! Slots are chosen by a hash keyed per run: a sender cannot aim its SYNs
//! at the slot of a connection it wants forgotten.

use std::hash::BuildHasher;

use super::FlowKey;
use crate::decode::{tcp_flags, Segment, TcpSegment};

/// Slots over the whole sensor (each flow table gets its share).
pub const DEFAULT_SLOTS: usize = 65_536;
/// The fewest slots a table gets.
const MIN_SLOTS: usize = 1_024;

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

    fn index(&self, key: &FlowKey) -> usize {
        // The length is a power of two.
        (self.hasher.hash_one(key) as usize) & (self.slots.len().max(1) - 1)
    }

    /// Twice the slots, the SYNs held moved to theirs (two that meet in
    /// one slot: the later one stays, as when a SYN comes).
    fn grow(&mut self, stats: &mut SynStats) {
        let doubled = vec![None; self.slots.len() * 2];
        let old = std::mem::replace(&mut self.slots, doubled);
        self.live = 0;
        for h in old.into_iter().flatten() {
            let i = self.index(&FlowKey::of(&h.segment()));
            if let Some(slot) = self.slots.get_mut(i) {
                match slot {
                    Some(prev) if prev.last_us > h.last_us => {
                        stats.overwritten += 1;
                        continue;
                    }
                    Some(_) => stats.overwritten += 1,
                    None => self.live += 1,
                }
                *slot = Some(h);
            }
        }
        stats.waiting = self.live as u64;
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
        let i = self.index(key);
        let Some(slot) = self.slots.get_mut(i) else {
            return Offer::Held;
        };
        let new = HeldSyn {
            syn: seg.with_payload(()),
            checked,
            last_us: seg.ts_us,
        };
        match slot {
            Some(h) if FlowKey::of(&h.segment()) == *key => {
                if h.syn.seq == seg.seq && h.checked == checked && h.syn.src == seg.src {
                    // A retransmission: the connection is as it was.
                    h.last_us = seg.ts_us;
                    return Offer::Held;
                }
                let old = *h;
                *h = new;
                stats.held += 1;
                Offer::Conflict(old)
            }
            Some(h) => {
                *h = new;
                stats.held += 1;
                stats.overwritten += 1;
                Offer::Held
            }
            None => {
                *slot = Some(new);
                self.live += 1;
                stats.waiting = self.live as u64;
                stats.held += 1;
                Offer::Held
            }
        }
    }

    /// The SYN held for `key`, taken out (its connection went on).
    pub fn take(&mut self, key: &FlowKey, stats: &mut SynStats) -> Option<HeldSyn> {
        if self.live == 0 {
            return None;
        }
        let i = self.index(key);
        let slot = self.slots.get_mut(i)?;
        if !slot.is_some_and(|h| FlowKey::of(&h.segment()) == *key) {
            return None;
        }
        let h = slot.take()?;
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
        let h = c.take(&key, &mut st).expect("held");
        assert_eq!((h.syn.ts_us, h.syn.seq, h.last_us), (1_000, 7, 2_000));
        assert_eq!(h.checked, Some(true));
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
