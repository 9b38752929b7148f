//! IPv4 and IPv6 fragment reassembly in bounded memory.
//!
//! Fragmentation must not hide a handshake, and it must not become a way to
//! exhaust the sensor's memory either. Datagrams under reassembly are capped
//! in number and in total bytes; a datagram that does not complete within
//! [`DefragConfig::timeout_us`] of packet time is dropped. Every drop is
//! counted. Overlapping fragments keep the bytes that arrived first, the same
//! policy as the TCP reassembler.

use std::collections::HashMap;
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
    /// Overlapping fragments whose bytes differed from those already held.
    pub conflicting_overlaps: u64,
}

impl DefragStats {
    pub fn add(&mut self, o: &DefragStats) {
        self.fragments += o.fragments;
        self.reassembled += o.reassembled;
        self.timed_out += o.timed_out;
        self.dropped_capacity += o.dropped_capacity;
        self.invalid += o.invalid;
        self.conflicting_overlaps += o.conflicting_overlaps;
    }

    pub fn to_json(&self) -> serde_json::Value {
        serde_json::json!({
            "fragments": self.fragments, "reassembled": self.reassembled,
            "timed_out": self.timed_out, "dropped_capacity": self.dropped_capacity,
            "invalid": self.invalid, "conflicting_overlaps": self.conflicting_overlaps,
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

struct Datagram {
    data: Vec<u8>,
    /// Received byte ranges, sorted and merged.
    have: Vec<(usize, usize)>,
    /// Total length, known once the last fragment arrived.
    total: Option<usize>,
    first_seen_us: i64,
}

impl Datagram {
    fn covered(&self) -> bool {
        match self.total {
            Some(t) => self.have.len() == 1 && self.have[0] == (0, t),
            None => false,
        }
    }

    /// Copies the bytes of `[start, start + frag.len())` that are not held yet.
    /// Returns true when a held byte differs from the fragment's.
    fn insert(&mut self, start: usize, frag: &[u8]) -> bool {
        let end = start + frag.len();
        if self.data.len() < end {
            self.data.resize(end, 0);
        }
        let mut conflict = false;
        let mut pos = start;
        for &(s, e) in &self.have {
            if e <= pos || s >= end {
                continue;
            }
            if s > pos {
                self.data[pos..s].copy_from_slice(&frag[pos - start..s - start]);
            }
            let os = s.max(pos);
            let oe = e.min(end);
            if self.data[os..oe] != frag[os - start..oe - start] {
                conflict = true;
            }
            pos = oe;
        }
        if pos < end {
            self.data[pos..end].copy_from_slice(&frag[pos - start..]);
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
        conflict
    }
}

/// Reassembles fragmented IP payloads.
pub struct Defragmenter {
    cfg: DefragConfig,
    pending: HashMap<FragKey, Datagram>,
    bytes: usize,
    pub stats: DefragStats,
    last_sweep_us: i64,
}

impl Defragmenter {
    pub fn new(cfg: DefragConfig) -> Self {
        Defragmenter {
            cfg,
            pending: HashMap::new(),
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
        if !self.pending.contains_key(&key) {
            if self.pending.len() >= self.cfg.max_datagrams {
                self.stats.dropped_capacity += 1;
                return None;
            }
            self.pending.insert(
                key,
                Datagram {
                    data: Vec::new(),
                    have: Vec::new(),
                    total: None,
                    first_seen_us: now_us,
                },
            );
        }
        let dg = self.pending.get_mut(&key)?;
        let grow = end.saturating_sub(dg.data.len());
        if self.bytes + grow > self.cfg.max_bytes {
            self.stats.dropped_capacity += 1;
            self.drop_datagram(&key);
            return None;
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
        if dg.insert(offset, frag) {
            self.stats.conflicting_overlaps += 1;
        }
        self.bytes += grow;
        if dg.covered() {
            let dg = self.pending.remove(&key)?;
            self.bytes -= dg.data.len();
            self.stats.reassembled += 1;
            return Some(dg.data);
        }
        None
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
    fn overlap_keeps_first_bytes_and_counts_conflict() {
        let mut d = Defragmenter::new(DefragConfig::default());
        assert_eq!(d.add(key(), 0, 0, true, &[1u8; 16]), None);
        assert_eq!(d.add(key(), 0, 8, true, &[2u8; 16]), None);
        let out = d.add(key(), 0, 24, false, &[3u8; 4]).unwrap_or_default();
        assert_eq!(&out[..16], &[1u8; 16]);
        assert_eq!(&out[16..24], &[2u8; 8]);
        assert_eq!(&out[24..], &[3u8; 4]);
        assert_eq!(d.stats.conflicting_overlaps, 1);
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
    fn caps_and_timeout_bound_memory() {
        let cfg = DefragConfig {
            max_datagrams: 2,
            max_bytes: 64,
            timeout_us: 5_000_000,
        };
        let mut d = Defragmenter::new(cfg);
        d.add(FragKey { id: 0, ..key() }, 0, 0, true, &[0u8; 8]);
        d.add(FragKey { id: 1, ..key() }, 1_000_000, 0, true, &[0u8; 8]);
        d.add(FragKey { id: 2, ..key() }, 1_000_000, 0, true, &[0u8; 8]);
        assert_eq!((d.pending(), d.stats.dropped_capacity), (2, 1));
        // Growing past 64 bytes in all drops the datagram.
        d.add(FragKey { id: 0, ..key() }, 1_000_000, 8, true, &[0u8; 64]);
        assert_eq!(
            (d.pending(), d.stats.dropped_capacity, d.buffered_bytes()),
            (1, 2, 8)
        );
        // 7 s later the remaining one has timed out.
        d.add(FragKey { id: 9, ..key() }, 7_000_000, 0, true, &[0u8; 8]);
        assert_eq!(
            (d.stats.timed_out, d.pending(), d.buffered_bytes()),
            (1, 1, 8)
        );
    }
}
