//! The capture thread's side of the hand-off: decoded packets are packed
//! into per-worker batches (headers and one payload buffer), sharded by a
//! symmetric flow hash so that both directions of a connection reach the
//! same worker. Batches are recycled, so dispatching does not allocate per
//! packet. A payload that lies in a buffer the file reader shares (a
//! [`Chunk`]) is not copied: the batch keeps the buffer, and its place.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use crossbeam_channel::{Receiver, Sender, TrySendError};

use crate::analyzers::registry;
use crate::capture::Chunk;
use crate::decode::{tcp_flags, Checksum, Datagram, Packet, Segment};
use crate::flow;

/// Where a packet's payload lies: in its batch's buffer, or in one of the
/// chunks the batch keeps.
#[derive(Debug, Clone, Copy)]
pub(super) struct Span {
    off: u32,
    len: u32,
    /// The index of the chunk in [`Batch::chunks`]; [`OWN`] for the
    /// batch's own buffer.
    chunk: u32,
}

const OWN: u32 = u32::MAX;

/// A packet header in a batch.
#[derive(Debug, Clone, Copy)]
pub(super) enum Item {
    Tcp(Segment<Span>),
    Udp(Datagram<Span>),
}

/// Packets for one worker, payloads packed into one buffer or left in the
/// reader's chunks.
#[derive(Debug, Default)]
pub(super) struct Batch {
    data: Vec<u8>,
    items: Vec<Item>,
    /// The reader's buffers the payloads left in place lie in; dropped
    /// (handed back to the reader) when the batch is cleared.
    chunks: Vec<Chunk>,
    /// Payload bytes left in chunks.
    shared: usize,
}

impl Batch {
    /// The batch's packets, with their payloads.
    pub(super) fn packets(&self) -> impl Iterator<Item = Packet<'_>> {
        let payload = |s: Span| {
            let within = match s.chunk {
                OWN => &self.data[..],
                i => self.chunks.get(i as usize).map_or(&[][..], |c| &c[..]),
            };
            within
                .get(s.off as usize..(s.off as usize).saturating_add(s.len as usize))
                .unwrap_or(&[])
        };
        self.items.iter().map(move |it| match *it {
            Item::Tcp(seg) => Packet::Tcp(seg.with_payload(payload(seg.payload))),
            Item::Udp(d) => Packet::Udp(d.with_payload(payload(d.payload))),
        })
    }

    pub(super) fn clear(&mut self) {
        self.data.clear();
        self.items.clear();
        self.chunks.clear();
        self.shared = 0;
    }

    /// Where `payload` lies: in `chunk` when it does (the chunk kept, once
    /// per run of packets from it), else copied into the batch's buffer.
    fn place(&mut self, payload: &[u8], chunk: Option<&Chunk>) -> Span {
        let len = payload.len() as u32;
        if let Some(off) = chunk.and_then(|c| offset_in(c, payload)) {
            let same = |last: &Chunk| chunk.is_some_and(|c| Arc::ptr_eq(last, c));
            if !self.chunks.last().is_some_and(same) {
                self.chunks.extend(chunk.cloned());
            }
            self.shared += payload.len();
            return Span {
                off,
                len,
                chunk: self.chunks.len().saturating_sub(1) as u32,
            };
        }
        let off = self.data.len() as u32;
        self.data.extend_from_slice(payload);
        Span {
            off,
            len,
            chunk: OWN,
        }
    }

    /// Whether placing `payload` would keep one buffer more than
    /// [`BATCH_CHUNKS`].
    fn keeps_another(&self, payload: &[u8], chunk: Option<&Chunk>) -> bool {
        let Some(c) = chunk.filter(|c| offset_in(c, payload).is_some()) else {
            return false;
        };
        self.chunks.len() >= BATCH_CHUNKS && !self.chunks.last().is_some_and(|l| Arc::ptr_eq(l, c))
    }

    /// Payload bytes held, copied or left in place.
    fn bytes(&self) -> usize {
        self.data.len() + self.shared
    }
}

/// Where `part` begins in `whole`, when it lies within it (found by
/// address: a payload decoded from a chunk's bytes is a slice of them).
fn offset_in(whole: &[u8], part: &[u8]) -> Option<u32> {
    let start = (part.as_ptr() as usize).checked_sub(whole.as_ptr() as usize)?;
    let end = start.checked_add(part.len())?;
    (end <= whole.len() && !part.is_empty()).then_some(start as u32)
}

pub(super) enum WorkMsg {
    Batch(Batch),
    /// Time passed (packet time, or the wall clock while a live capture is
    /// idle): expire flows. `seq` counts a replay's ticks (0 live).
    Tick {
        now: i64,
        seq: u64,
    },
}

/// Packets per batch. Each batch sent may wake its worker, and a wake-up
/// costs the capture thread a system call (and, in a virtual machine, an
/// interrupt to the other core): 2,048 handshake-sized packets make a
/// quarter of the wake-ups of 512 (on the handshake-heavy capture, 1,832
/// context switches fall to 720). With several workers each batch fills
/// more slowly, but the wake-ups of all of them together are as many as
/// one worker's. Bulk traffic fills a batch by its bytes first, as
/// before; two batches queued per worker instead of eight (1 MiB of
/// payload, 4,096 packets ahead) pay for the larger item lists.
const BATCH_ITEMS: usize = 2048;
const BATCH_BYTES: usize = 512 << 10;
/// Reader buffers a batch may keep: a worker whose packets are few would
/// keep a whole buffer for each of them, and what the batches in flight
/// keep must stay bounded. A batch goes out before it would keep a third
/// (a dense one, filled within two buffers, never meets the bound).
const BATCH_CHUNKS: usize = 2;
/// Batches in flight per worker (back-pressure on the capture thread).
pub(super) const QUEUE_DEPTH: usize = 2;
/// A lane's hand-offs to another lane are few (tunnels, IPv6, analysed
/// UDP) and sent at the end of each read round: small batches, more of
/// them queued (see `lanes`).
const LANE_BATCH_ITEMS: usize = 512;
pub(super) const LANE_QUEUE_DEPTH: usize = 8;

/// Connections whose payload no longer matters, shared by the workers (who
/// mark them) and the capture thread (who then stops copying their
/// payload into batches; headers still go, for FIN, RST and timeouts). A
/// fixed table of flow hashes: a collision only costs a copy.
///
/// A mark must not outlive its connection. The worker marks a connection
/// only after the batch in which its analysis ended, while the capture
/// thread runs ahead; if a new connection on the same port pair opens in
/// between, a plain mark would land after the new SYN and strip the new
/// connection's handshake (a name hidden by reusing one's own ports). So
/// the capture thread numbers the packets it hands each worker and writes
/// in the slot where each opening SYN went; the worker numbers what it
/// receives the same way, and marks a connection only when the last SYN
/// written for it came before the packet that ended its analysis (a SYN
/// the worker had already seen). The slot is one word, written whole:
/// the hash's high bits as its tag, a marked bit, and a position.
pub(super) struct BypassHint {
    slots: Box<[AtomicU64]>,
}

const BYPASS_SLOTS: usize = 1 << 18;
/// The tag: the hash's 31 high bits (the slot is chosen by its low bits).
const TAG: u64 = !0 << 33;
const MARKED: u64 = 1 << 32;
/// A position: the packet's place among those handed to its worker.
const POSITION: u64 = u32::MAX as u64;

impl BypassHint {
    pub(super) fn new() -> Self {
        BypassHint {
            slots: (0..BYPASS_SLOTS).map(|_| AtomicU64::new(0)).collect(),
        }
    }

    fn slot(&self, h: u64) -> &AtomicU64 {
        &self.slots[(h as usize) & (BYPASS_SLOTS - 1)]
    }

    /// The capture thread: a SYN of connection `h` is its worker's packet
    /// number `at`. A mark of `h` is gone. Another connection's mark stays
    /// (a SYN flood would otherwise erase the marks of the connections
    /// alive across it), and this SYN goes unrecorded: a late mark for `h`
    /// then meets another tag and is skipped, and `h`'s new connection is
    /// not bypassed (copies, never a strip).
    fn opened(&self, h: u64, at: u32) {
        let slot = self.slot(h);
        let now = slot.load(Ordering::Relaxed);
        if now & MARKED != 0 && now & TAG != h & TAG {
            return;
        }
        slot.store((h & TAG) | u64::from(at), Ordering::Relaxed);
    }

    /// The capture thread: whether `h`'s payload may be left out.
    fn contains(&self, h: u64) -> bool {
        self.slot(h).load(Ordering::Relaxed) & !POSITION == (h & TAG) | MARKED
    }

    /// A worker: the analysis of connection `h` ended at the packet before
    /// its number `at`. Marked when the slot's last SYN of `h` came before
    /// (or the slot has none of anyone's); a slot another connection holds
    /// is left to it (a collision costs copies, never a strip).
    pub(super) fn mark(&self, h: u64, at: u32) {
        let slot = self.slot(h);
        let now = slot.load(Ordering::Relaxed);
        let earlier = |opened: u64| (at.wrapping_sub(opened as u32) as i32) > 0;
        if now == 0 || (now & !POSITION == h & TAG && earlier(now)) {
            let marked = (h & TAG) | MARKED | u64::from(at);
            // A SYN written meanwhile wins.
            let _ = slot.compare_exchange(now, marked, Ordering::Relaxed, Ordering::Relaxed);
        }
    }

    /// A worker: connection `h` left its table (closed, expired, evicted).
    /// Its mark becomes a record of `h` at the mark's position, not an
    /// empty slot: another hash's late mark must still meet a tag that is
    /// not its own. (No SYN of `h` came since the mark, or the slot would
    /// hold its record.)
    pub(super) fn release(&self, h: u64) {
        let slot = self.slot(h);
        let now = slot.load(Ordering::Relaxed);
        if now & !POSITION == (h & TAG) | MARKED {
            let _ = slot.compare_exchange(now, now & !MARKED, Ordering::Relaxed, Ordering::Relaxed);
        }
    }
}

/// Per-worker batches being filled by the capture thread (or, between
/// capture lanes, by a lane for the others: see `lanes`).
pub(super) struct Dispatch {
    batch_items: usize,
    pending: Vec<Batch>,
    txs: Vec<Sender<WorkMsg>>,
    free: Receiver<Batch>,
    /// `None` between lanes: a lane's packets come from every lane, which
    /// cannot number them alike, so nothing is left out.
    hint: Option<Arc<BypassHint>>,
    /// Packets handed to each worker so far (wrapping): see [`BypassHint`].
    pushed: Vec<u32>,
    /// Lanes send to each other: a full queue must not block (two lanes
    /// could wait on each other), so its batch waits here until
    /// [`Dispatch::retry`].
    nonblocking: bool,
    stalled: Vec<(usize, Batch)>,
    /// Replay ticks sent so far.
    ticks: u64,
}

impl Dispatch {
    pub(super) fn new(
        txs: Vec<Sender<WorkMsg>>,
        free: Receiver<Batch>,
        hint: Option<Arc<BypassHint>>,
    ) -> Self {
        let workers = txs.len().max(1);
        Dispatch {
            batch_items: BATCH_ITEMS,
            pending: (0..workers).map(|_| Batch::default()).collect(),
            txs,
            free,
            hint,
            pushed: vec![0; workers],
            nonblocking: false,
            stalled: Vec::new(),
            ticks: 0,
        }
    }

    /// A dispatch whose sends never block (see [`Dispatch::retry`]).
    pub(super) fn nonblocking(mut self) -> Self {
        self.nonblocking = true;
        self.batch_items = LANE_BATCH_ITEMS;
        self
    }

    /// The worker a packet belongs to, and its flow hash; `None` for a
    /// datagram on no registered protocol's port (it stops here).
    pub(super) fn owner(&self, p: &Packet<'_>) -> Option<(usize, u64)> {
        let n = self.txs.len().max(1) as u64;
        let h = match p {
            Packet::Tcp(seg) => {
                flow::shard_hash((seg.src, seg.sport), (seg.dst, seg.dport), &seg.vlans)
            }
            Packet::Udp(d) => {
                if !registry::is_datagram_port(d.sport)
                    && !registry::is_datagram_port(d.dport)
                    && registry::found_anywhere(d.payload).is_none()
                {
                    return None;
                }
                let (a, b) = flow::datagram::conversation_endpoints(d);
                flow::shard_hash(a, b, &d.vlans)
            }
        };
        Some(((h % n) as usize, h))
    }

    /// Adds a packet to its worker's batch; its payload may lie in `chunk`.
    pub(super) fn push(&mut self, p: &Packet<'_>, chunk: Option<&Chunk>) {
        if let Some((w, h)) = self.owner(p) {
            self.push_to(w, h, p, chunk);
        }
    }

    /// Adds a packet to worker `w`'s batch; `h` is its flow hash.
    pub(super) fn push_to(&mut self, w: usize, h: u64, p: &Packet<'_>, chunk: Option<&Chunk>) {
        let Some(at) = self.pushed.get_mut(w).filter(|_| w < self.pending.len()) else {
            return;
        };
        let position = *at;
        *at = position.wrapping_add(1);
        match p {
            Packet::Tcp(seg) => {
                // The payload of a bypassed connection is not copied.
                let payload = match &self.hint {
                    Some(hint)
                        if seg.flags & (tcp_flags::SYN | tcp_flags::ACK) == tcp_flags::SYN =>
                    {
                        hint.opened(h, position);
                        seg.payload
                    }
                    Some(hint) if !seg.payload.is_empty() && hint.contains(h) => &[],
                    _ => seg.payload,
                };
                let mut head = seg.with_payload(());
                if payload.len() != seg.payload.len() {
                    // Without its payload the checksum cannot be checked; the
                    // connection's analysis is over anyway.
                    head.checksum = Checksum::Unchecked;
                }
                let span = self.place(w, payload, chunk);
                self.pending[w]
                    .items
                    .push(Item::Tcp(head.with_payload(span)));
            }
            Packet::Udp(d) => {
                let span = self.place(w, d.payload, chunk);
                self.pending[w].items.push(Item::Udp(d.with_payload(span)));
            }
        }
        self.maybe_send(w);
    }

    /// Sends the batches a full queue held back; true when none is left.
    pub(super) fn retry(&mut self) -> bool {
        let stalled = std::mem::take(&mut self.stalled);
        for (w, b) in stalled {
            self.offer(w, b);
        }
        self.stalled.is_empty()
    }

    fn offer(&mut self, w: usize, b: Batch) {
        // A lane that has gone takes nothing more.
        if let Err(TrySendError::Full(WorkMsg::Batch(b))) = self.txs[w].try_send(WorkMsg::Batch(b))
        {
            self.stalled.push((w, b));
        }
    }

    /// `payload` placed in worker `w`'s batch; a batch that would keep
    /// one reader buffer more than it may goes out first.
    fn place(&mut self, w: usize, payload: &[u8], chunk: Option<&Chunk>) -> Span {
        if self.pending[w].keeps_another(payload, chunk) {
            self.send(w);
        }
        self.pending[w].place(payload, chunk)
    }

    fn maybe_send(&mut self, w: usize) {
        let b = &self.pending[w];
        if b.items.len() >= self.batch_items || b.bytes() >= BATCH_BYTES {
            self.send(w);
        }
    }

    fn send(&mut self, w: usize) {
        if self.pending[w].items.is_empty() {
            return;
        }
        let fresh = self.free.try_recv().unwrap_or_else(|_| Batch {
            data: Vec::with_capacity(BATCH_BYTES + 65_536),
            items: Vec::with_capacity(self.batch_items),
            ..Batch::default()
        });
        let full = std::mem::replace(&mut self.pending[w], fresh);
        if self.nonblocking {
            self.offer(w, full);
        } else {
            let _ = self.txs[w].send(WorkMsg::Batch(full));
        }
    }

    /// Batches waiting in worker `w`'s queue.
    pub(super) fn queued(&self, w: usize) -> usize {
        self.txs.get(w).map_or(0, Sender::len)
    }

    pub(super) fn send_all(&mut self) {
        for w in 0..self.txs.len() {
            self.send(w);
        }
    }

    /// Time passed: every worker is told, after the packets before it.
    /// A replay's ticks are numbered (`counted`): the output stage follows
    /// the workers' progress through them.
    pub(super) fn tick(&mut self, now: i64, counted: bool) {
        self.send_all();
        let seq = if counted {
            self.ticks += 1;
            self.ticks
        } else {
            0
        };
        for tx in &self.txs {
            let _ = tx.send(WorkMsg::Tick { now, seq });
        }
    }

    /// Drops the senders (after [`Dispatch::send_all`]): a receiver's
    /// channel closes once every dispatch feeding it has let go.
    pub(super) fn disconnect(&mut self) {
        self.txs.clear();
        self.pending.clear();
    }

    /// Sends what is pending and lets the workers finish.
    pub(super) fn close(mut self) {
        self.send_all();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The slot's arithmetic: a mark needs the connection's last SYN
    /// before the packet that ended its analysis; a SYN written after the
    /// mark clears it; another connection's slot is left alone.
    #[test]
    fn a_mark_applies_only_after_the_connections_last_syn() {
        let hint = BypassHint::new();
        let h = 0xdead_beef_0000_0007_u64;
        hint.opened(h, 10);
        hint.mark(h, 10);
        assert!(!hint.contains(h), "the SYN is the packet after the end");
        hint.mark(h, 11);
        assert!(hint.contains(h));
        hint.opened(h, 12);
        assert!(!hint.contains(h), "a new SYN clears the mark");
        // Positions wrap.
        hint.opened(h, u32::MAX);
        hint.mark(h, 2);
        assert!(hint.contains(h));
        // Another hash in the same slot (same low bits, another tag).
        let other = h ^ (1 << 40);
        assert!(!hint.contains(other));
        hint.mark(other, 100);
        assert!(!hint.contains(other), "the slot is another's");
        assert!(hint.contains(h));
        // A flood of SYNs on other connections leaves the mark; the SYN of
        // one of them goes unrecorded, so its own mark is skipped.
        let flooder = h ^ (1 << 50);
        hint.opened(flooder, 200);
        assert!(hint.contains(h));
        hint.mark(flooder, 300);
        assert!(!hint.contains(flooder));
        // Released when its connection left the table: a record of `h` at
        // the mark's position (2), on which a late mark from before it is
        // skipped, and which another connection's SYN and mark may take.
        hint.release(h);
        assert!(!hint.contains(h));
        hint.mark(h, 1);
        assert!(!hint.contains(h));
        hint.opened(flooder, 401);
        hint.mark(flooder, 402);
        assert!(hint.contains(flooder));
        // A connection whose SYN was never seen, in an empty slot.
        let midstream = 0x1234_5678_0000_0009_u64;
        hint.mark(midstream, 5);
        assert!(hint.contains(midstream));
    }

    /// A payload that lies in the reader's chunk travels as its place
    /// there (nothing copied, the chunk kept once); one that does not (a
    /// reassembled fragment's) is copied; the worker reads both alike.
    #[test]
    fn payloads_in_a_chunk_are_kept_in_place_and_others_copied() {
        let chunk: Chunk = Arc::from(&b"....frame one....frame two...."[..]);
        let elsewhere = b"reassembled".to_vec();
        let seg = |payload| {
            Packet::Tcp(Segment {
                ts_us: 1,
                src: [10, 0, 0, 1].into(),
                dst: [10, 0, 0, 2].into(),
                sport: 50_000,
                dport: 445,
                seq: 1,
                ack: 1,
                flags: tcp_flags::ACK,
                window: 512,
                fast_open: false,
                vlans: Default::default(),
                iface: None,
                checksum: Checksum::Unchecked,
                payload,
            })
        };
        let (tx, rx) = crossbeam_channel::bounded(4);
        let (_free_tx, free_rx) = crossbeam_channel::bounded(4);
        let mut d = Dispatch::new(vec![tx], free_rx, None);
        d.push(&seg(&chunk[4..13]), Some(&chunk));
        d.push(&seg(&elsewhere[..]), Some(&chunk));
        d.push(&seg(&chunk[17..26]), Some(&chunk));
        d.push(&seg(&elsewhere[2..4]), None);
        d.send_all();
        let Ok(WorkMsg::Batch(b)) = rx.try_recv() else {
            panic!("no batch");
        };
        assert_eq!(b.chunks.len(), 1);
        assert!(Arc::ptr_eq(&b.chunks[0], &chunk));
        assert_eq!(b.data, b"reassembledas");
        assert_eq!(b.bytes(), 9 + 11 + 9 + 2);
        let payloads: Vec<&[u8]> = b
            .packets()
            .map(|p| match p {
                Packet::Tcp(s) => s.payload,
                Packet::Udp(d) => d.payload,
            })
            .collect();
        assert_eq!(
            payloads,
            [&b"frame one"[..], b"reassembled", b"frame two", b"as"]
        );
        // Cleared, the batch lets the chunk go.
        let mut b = b;
        b.clear();
        assert_eq!(Arc::strong_count(&chunk), 1);
    }

    /// A worker whose packets are few must not keep a reader buffer for
    /// each: its batch goes out before it would keep a third. A dense
    /// batch, filled within two buffers, is not sent early.
    #[test]
    fn a_batch_goes_out_before_it_keeps_a_third_buffer() {
        let (tx, rx) = crossbeam_channel::bounded(8);
        let (_free_tx, free_rx) = crossbeam_channel::bounded(8);
        let mut d = Dispatch::new(vec![tx], free_rx, None);
        let chunks: Vec<Chunk> = (0..5u8).map(|i| Arc::from(&[i; 64][..])).collect();
        let mut push = |c: &Chunk, at: usize| {
            let p = Packet::Udp(Datagram {
                ts_us: 1,
                src: [10, 0, 0, 1].into(),
                dst: [10, 0, 0, 2].into(),
                sport: 50_000,
                dport: 137,
                vlans: Default::default(),
                iface: None,
                checksum: Checksum::Unchecked,
                payload: &c[at..at + 8],
            });
            d.push(&p, Some(c));
        };
        // Dense: six packets from the first two buffers, one batch.
        for c in &chunks[..2] {
            for at in [0, 8, 16] {
                push(c, at);
            }
        }
        // Sparse: one packet from each of the next three.
        for c in &chunks[2..] {
            push(c, 8);
        }
        let sent: Vec<(usize, usize)> = rx
            .try_iter()
            .filter_map(|m| match m {
                WorkMsg::Batch(b) => Some((b.items.len(), b.chunks.len())),
                WorkMsg::Tick { .. } => None,
            })
            .collect();
        assert_eq!(sent, [(6, 2), (2, 2)]);
        // The last waits in its batch, which keeps its one buffer.
        assert_eq!(Arc::strong_count(&chunks[4]), 2);
        assert!(chunks[..4].iter().all(|c| Arc::strong_count(c) == 1));
    }

    #[test]
    fn a_place_is_found_only_within_the_whole() {
        let whole = [0u8; 16];
        assert_eq!(offset_in(&whole, &whole[3..7]), Some(3));
        assert_eq!(offset_in(&whole, &whole[..]), Some(0));
        assert_eq!(offset_in(&whole, &whole[16..]), None, "empty");
        assert_eq!(offset_in(&whole[4..], &whole[..4]), None, "before");
        assert_eq!(
            offset_in(&whole[..8], &whole[6..10]),
            None,
            "across the end"
        );
    }
}
