//! IPv4 and IPv6 fragment reassembly in bounded memory.
//!
//! Fragmentation must not hide a handshake, and it must not become a way to
//! exhaust the sensor's memory either. Datagrams under reassembly are capped
//! in number and in total bytes: when either cap is reached the oldest
//! datagram is evicted to make room, so that a flood of fragments cannot
//! keep a real datagram out. A datagram that does not complete within
//! [`DefragConfig::timeout_us`] of packet time is dropped.
//!
//! Overlaps are handled as current Linux (since 4.19; RFC 5722 for IPv6)
//! and Windows hosts handle them: a fragment that repeats another's exact
//! range is a duplicate and is ignored, and any other overlap discards the
//! whole datagram, which the endpoint never delivers either (so a decoy
//! fragment cannot put its bytes in place of the real ones). Every drop is
//! counted.

use std::collections::{HashMap, VecDeque};
use std::net::IpAddr;

/// Largest IP payload a datagram can carry (IPv4 total length is 16 bits;
/// IPv6 jumbograms are never fragmented).
const MAX_DATAGRAM: usize = 65_535;

#[derive(Debug, Clone, Copy)]
pub struct DefragConfig {
    /// Datagrams under reassembly at once.
    pub max_datagrams: usize,
    /// Bytes buffered over all datagrams under reassembly.
    pub max_bytes: usize,
    /// Packet-time microseconds after which an incomplete datagram is dropped.
    pub timeout_us: i64,
}

impl Default for DefragConfig {
    fn default() -> Self {
        DefragConfig {
            max_datagrams: 4096,
            max_bytes: 32 << 20,
            timeout_us: 30_000_000,
        }
    }
}

#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct DefragStats {
    pub fragments: u64,
    pub reassembled: u64,
    pub timed_out: u64,
    /// Datagrams refused or dropped because a cap was reached.
    pub dropped_capacity: u64,
    /// Fragments whose offset and length do not fit in a datagram.
    pub invalid: u64,
    /// Duplicate fragments whose bytes differed from those already held.
    pub conflicting_overlaps: u64,
    /// Datagrams discarded because two fragments overlapped.
    pub overlap_discards: u64,
    /// Datagrams evicted (the oldest) to make room for new ones.
    pub evicted: u64,
}

impl DefragStats {
    pub fn add(&mut self, o: &DefragStats) {
        self.fragments += o.fragments;
        self.reassembled += o.reassembled;
        self.timed_out += o.timed_out;
        self.dropped_capacity += o.dropped_capacity;
        self.invalid += o.invalid;
        self.conflicting_overlaps += o.conflicting_overlaps;
        self.overlap_discards += o.overlap_discards;
        self.evicted += o.evicted;
    }

    pub fn to_json(&self) -> serde_json::Value {
        serde_json::json!({
            "fragments": self.fragments, "reassembled": self.reassembled,
            "timed_out": self.timed_out, "dropped_capacity": self.dropped_capacity,
            "invalid": self.invalid, "conflicting_overlaps": self.conflicting_overlaps,
            "overlap_discards": self.overlap_discards, "evicted": self.evicted,
        })
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct FragKey {
    pub src: IpAddr,
    pub dst: IpAddr,
    pub id: u32,
    pub proto: u8,
    pub vlan: [u16; 2],
}

/// A datagram being reassembled from its fragments.
struct Partial {
    data: Vec<u8>,
    /// Received byte ranges, sorted and merged.
    have: Vec<(usize, usize)>,
    /// The ranges of the fragments received, as they came.
    frags: Vec<(usize, usize)>,
    /// Total length, known once the last fragment arrived.
    total: Option<usize>,
    first_seen_us: i64,
}

impl Partial {
    fn covered(&self) -> bool {
        match self.total {
            Some(t) => self.have.len() == 1 && self.have[0] == (0, t),
            None => false,
        }
    }

    /// How a fragment of `[start, end)` relates to those held.
    fn relation(&self, start: usize, end: usize) -> Relation {
        if self.frags.contains(&(start, end)) {
            return Relation::Duplicate;
        }
        if self.have.iter().any(|&(s, e)| s < end && start < e) {
            return Relation::Overlap;
        }
        Relation::New
    }

    /// Copies a fragment that overlaps nothing held.
    fn insert(&mut self, start: usize, frag: &[u8]) {
        let end = start + frag.len();
        if self.data.len() < end {
            self.data.resize(end, 0);
        }
        self.data[start..end].copy_from_slice(frag);
        if self.frags.len() < MAX_FRAGMENTS_REMEMBERED {
            self.frags.push((start, end));
        }
        self.have.push((start, end));
        self.have.sort_unstable();
        let mut merged: Vec<(usize, usize)> = Vec::with_capacity(self.have.len());
        for &(s, e) in &self.have {
            match merged.last_mut() {
                Some(last) if s <= last.1 => last.1 = last.1.max(e),
                _ => merged.push((s, e)),
            }
        }
        self.have = merged;
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Relation {
    New,
    /// The exact range of a fragment already held.
    Duplicate,
    Overlap,
}

/// Fragment ranges remembered per datagram to recognise duplicates (a
/// datagram of 64 KiB in 8-byte fragments has 8,192; past this many a
/// repeated range counts as an overlap).
const MAX_FRAGMENTS_REMEMBERED: usize = 8192;

/// Reassembles fragmented IP payloads.
pub struct Defragmenter {
    cfg: DefragConfig,
    pending: HashMap<FragKey, Partial>,
    /// Datagrams in the order they started (first-seen time, key); entries
    /// of datagrams already gone are skipped, and pruned when they pile up.
    age: VecDeque<(i64, FragKey)>,
    bytes: usize,
    pub stats: DefragStats,
    last_sweep_us: i64,
}

impl Defragmenter {
    pub fn new(cfg: DefragConfig) -> Self {
        Defragmenter {
            cfg,
            pending: HashMap::new(),
            age: VecDeque::new(),
            bytes: 0,
            stats: DefragStats::default(),
            last_sweep_us: 0,
        }
    }

    /// Adds one fragment (`offset` in bytes from the start of the IP payload).
    /// Returns the whole payload once every fragment has arrived.
    pub fn add(
        &mut self,
        key: FragKey,
        now_us: i64,
        offset: usize,
        more: bool,
        frag: &[u8],
    ) -> Option<Vec<u8>> {
        self.stats.fragments += 1;
        self.sweep(now_us);
        let end = offset.saturating_add(frag.len());
        if end > MAX_DATAGRAM || (more && frag.len() % 8 != 0) {
            self.stats.invalid += 1;
            return None;
        }
        if end > self.cfg.max_bytes {
            self.stats.dropped_capacity += 1;
            self.drop_datagram(&key);
            return None;
        }
        if !self.pending.contains_key(&key) {
            while self.pending.len() >= self.cfg.max_datagrams.max(1) {
                if !self.evict_oldest(&key) {
                    break;
                }
            }
            self.pending.insert(
                key,
                Partial {
                    data: Vec::new(),
                    have: Vec::new(),
                    frags: Vec::new(),
                    total: None,
                    first_seen_us: now_us,
                },
            );
            self.age.push_back((now_us, key));
            if self.age.len() > 2 * self.cfg.max_datagrams.max(16) {
                let pending = &self.pending;
                self.age
                    .retain(|(t, k)| pending.get(k).is_some_and(|d| d.first_seen_us == *t));
            }
        }
        let grow = end.saturating_sub(self.pending.get(&key)?.data.len());
        while self.bytes + grow > self.cfg.max_bytes {
            if !self.evict_oldest(&key) {
                break;
            }
        }
        if self.bytes + grow > self.cfg.max_bytes {
            self.stats.dropped_capacity += 1;
            self.drop_datagram(&key);
            return None;
        }
        let dg = self.pending.get_mut(&key)?;
        match dg.relation(offset, end) {
            Relation::Duplicate => {
                if dg.data.get(offset..end) != Some(frag) {
                    self.stats.conflicting_overlaps += 1;
                }
                return None;
            }
            Relation::Overlap => {
                self.stats.overlap_discards += 1;
                self.drop_datagram(&key);
                return None;
            }
            Relation::New => {}
        }
        if !more {
            match dg.total {
                Some(t) if t != end => {
                    self.stats.invalid += 1;
                    self.drop_datagram(&key);
                    return None;
                }
                _ => dg.total = Some(end),
            }
        }
        if dg.total.is_some_and(|t| end > t) {
            self.stats.invalid += 1;
            self.drop_datagram(&key);
            return None;
        }
        dg.insert(offset, frag);
        self.bytes += grow;
        if dg.covered() {
            let dg = self.pending.remove(&key)?;
            self.bytes -= dg.data.len();
            self.stats.reassembled += 1;
            return Some(dg.data);
        }
        None
    }

    /// Evicts the datagram that started first, unless it is `keep`'s;
    /// false when there is none to evict.
    fn evict_oldest(&mut self, keep: &FragKey) -> bool {
        while let Some((t, k)) = self.age.pop_front() {
            let live = self.pending.get(&k).is_some_and(|d| d.first_seen_us == t);
            if !live {
                continue;
            }
            if k == *keep {
                // The datagram being added is the oldest: keep it in line.
                self.age.push_front((t, k));
                return false;
            }
            self.stats.evicted += 1;
            self.drop_datagram(&k);
            return true;
        }
        false
    }

    fn drop_datagram(&mut self, key: &FragKey) {
        if let Some(dg) = self.pending.remove(key) {
            self.bytes -= dg.data.len();
        }
    }

    /// Drops datagrams older than the timeout; runs at most once a second of
    /// packet time.
    pub fn sweep(&mut self, now_us: i64) {
        if now_us - self.last_sweep_us < 1_000_000 {
            return;
        }
        self.last_sweep_us = now_us;
        let timeout = self.cfg.timeout_us;
        let before = self.pending.len();
        let mut freed = 0;
        self.pending.retain(|_, dg| {
            let keep = now_us - dg.first_seen_us <= timeout;
            if !keep {
                freed += dg.data.len();
            }
            keep
        });
        self.bytes -= freed;
        self.stats.timed_out += (before - self.pending.len()) as u64;
    }

    pub fn pending(&self) -> usize {
        self.pending.len()
    }

    pub fn buffered_bytes(&self) -> usize {
        self.bytes
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key() -> FragKey {
        FragKey {
            src: [10, 0, 0, 1].into(),
            dst: [10, 0, 0, 2].into(),
            id: 7,
            proto: 6,
            vlan: [0; 2],
        }
    }

    #[test]
    fn in_order_and_reverse_order_give_the_same_payload() {
        let payload: Vec<u8> = (0..100u8).collect();
        let mut d = Defragmenter::new(DefragConfig::default());
        assert_eq!(d.add(key(), 0, 0, true, &payload[..48]), None);
        assert_eq!(
            d.add(key(), 0, 48, false, &payload[48..]),
            Some(payload.clone())
        );
        assert_eq!(d.pending(), 0);
        assert_eq!(d.buffered_bytes(), 0);

        let mut d = Defragmenter::new(DefragConfig::default());
        assert_eq!(d.add(key(), 0, 48, false, &payload[48..]), None);
        assert_eq!(d.add(key(), 0, 24, true, &payload[24..48]), None);
        assert_eq!(d.add(key(), 0, 0, true, &payload[..24]), Some(payload));
        assert_eq!(d.stats.reassembled, 1);
    }

    #[test]
    fn an_overlap_discards_the_datagram_and_a_duplicate_is_ignored() {
        let mut d = Defragmenter::new(DefragConfig::default());
        assert_eq!(d.add(key(), 0, 0, true, &[1u8; 16]), None);
        // A decoy over part of the held bytes: the whole datagram goes, as
        // on the endpoint.
        assert_eq!(d.add(key(), 0, 8, true, &[2u8; 16]), None);
        assert_eq!((d.pending(), d.buffered_bytes()), (0, 0));
        assert_eq!(d.stats.overlap_discards, 1);
        // The real train sent again is reassembled.
        assert_eq!(d.add(key(), 1, 0, true, &[1u8; 16]), None);
        let out = d.add(key(), 1, 16, false, &[3u8; 4]);
        assert_eq!(out, Some([[1u8; 16].as_slice(), &[3u8; 4]].concat()));

        // An exact repeat of a fragment's range is a duplicate: ignored,
        // counted when its bytes differ, the first bytes kept.
        let mut d = Defragmenter::new(DefragConfig::default());
        assert_eq!(d.add(key(), 0, 0, true, &[1u8; 16]), None);
        assert_eq!(d.add(key(), 0, 0, true, &[1u8; 16]), None);
        assert_eq!(d.add(key(), 0, 0, true, &[9u8; 16]), None);
        let out = d.add(key(), 0, 16, false, &[3u8; 4]).unwrap_or_default();
        assert_eq!(&out[..16], &[1u8; 16]);
        assert_eq!(
            (d.stats.conflicting_overlaps, d.stats.overlap_discards),
            (1, 0)
        );
    }

    #[test]
    fn oversized_and_misaligned_fragments_are_invalid() {
        let mut d = Defragmenter::new(DefragConfig::default());
        assert_eq!(d.add(key(), 0, 65_530, false, &[0u8; 16]), None);
        assert_eq!(d.add(key(), 0, 0, true, &[0u8; 7]), None);
        assert_eq!(d.stats.invalid, 2);
        assert_eq!(d.pending(), 0);
    }

    #[test]
    fn caps_evict_the_oldest_and_timeout_bound_memory() {
        let cfg = DefragConfig {
            max_datagrams: 2,
            max_bytes: 64,
            timeout_us: 5_000_000,
        };
        let mut d = Defragmenter::new(cfg);
        d.add(FragKey { id: 0, ..key() }, 0, 0, true, &[0u8; 8]);
        d.add(FragKey { id: 1, ..key() }, 1_000_000, 0, true, &[0u8; 8]);
        // A third datagram evicts the oldest, not itself.
        d.add(FragKey { id: 2, ..key() }, 1_000_000, 0, true, &[0u8; 8]);
        assert_eq!(
            (d.pending(), d.stats.evicted, d.stats.dropped_capacity),
            (2, 1, 0)
        );
        // Growing past 64 bytes in all evicts the older one (id 1).
        d.add(FragKey { id: 2, ..key() }, 1_000_000, 8, true, &[0u8; 56]);
        assert_eq!(
            (d.pending(), d.stats.evicted, d.buffered_bytes()),
            (1, 2, 64)
        );
        // One datagram larger than every byte allowed is dropped alone.
        d.add(FragKey { id: 3, ..key() }, 1_000_000, 64, true, &[0u8; 8]);
        assert_eq!((d.pending(), d.stats.dropped_capacity), (1, 1));
        // 7 s later the remaining one has timed out.
        d.add(FragKey { id: 9, ..key() }, 7_000_000, 0, true, &[0u8; 8]);
        assert_eq!(
            (d.stats.timed_out, d.pending(), d.buffered_bytes()),
            (1, 1, 8)
        );
    }

    /// 4,100 lone fragments, then a datagram in two fragments: the flood
    /// evicts its own oldest trains, the real datagram is reassembled.
    #[test]
    fn a_flood_of_trains_cannot_keep_a_datagram_out() {
        let mut d = Defragmenter::new(DefragConfig::default());
        for id in 0..4100u32 {
            d.add(FragKey { id, ..key() }, 0, 0, true, &[0u8; 8]);
        }
        assert_eq!(d.pending(), 4096);
        let real = FragKey {
            id: 99_999,
            ..key()
        };
        assert_eq!(d.add(real, 1, 0, true, &[5u8; 8]), None);
        assert_eq!(
            d.add(real, 1, 8, false, &[6u8; 2]),
            Some(vec![5, 5, 5, 5, 5, 5, 5, 5, 6, 6])
        );
        assert_eq!(d.stats.evicted, 5);
        assert!(d.age.len() <= 2 * 4096 + 1);
    }
}
