//! Live capture: one *lane* per worker, a thread that reads its own
//! AF_PACKET socket of every interface, decodes and analyses in place, as
//! Suricata's `workers` runmode does. One lane is the whole of it: every
//! packet is analysed where it is read, in read order. With several, the
//! sockets of an interface form one `PACKET_FANOUT` group in flow-hash
//! mode, so the kernel hands both directions of a connection to one
//! socket (symmetric: `tests/live.rs` checks it) and nothing serial is left
//! between the kernel and the analysis.
//!
//! What the kernel's hash cannot place by the packet's own flow goes to the
//! lane hostwatch's own hash names, as the single capture thread would
//! send it (`dispatch`): packets taken out of a tunnel (GRE, ERSPAN, VXLAN,
//! MPLS, PPPoE: the kernel hashed the outer header), all IPv6 (the kernel
//! defragments IPv4 before hashing, but hashes IPv6 fragments by their
//! addresses alone, and a sender chooses which of its segments to
//! fragment: a connection must not be split between lanes), and UDP
//! datagrams of the analysed protocols (a conversation is keyed by its
//! protocol's rules, e.g. DHCP by its link, not by the 5-tuple). Those
//! hand-offs are counted (`stats.capture.resharded`).
//!
//! Such packets of one conversation reach several sockets, which the lanes
//! read at their own pace: the owner puts them back in packet-time order
//! ([`Reorder`]). Each lane publishes how far it has read its sockets
//! ([`Progress`]), after handing over what it read; a held packet is
//! analysed once every lane has read past its time, so a lane that falls
//! behind (a flood on its socket) holds the others' hand-offs back instead
//! of letting an answer be analysed before its request. A lane more than
//! [`MAX_WAIT_US`] behind, or [`REORDER_BYTES`] held, lets the oldest go on
//! (counted, `released_early`); one that comes after a later packet went on
//! is still analysed, out of order, and counted (`reordered_late`).

use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::os::fd::AsRawFd;
use std::sync::atomic::{fence, AtomicBool, AtomicI64, Ordering};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::Duration;

use crossbeam_channel::{bounded, Receiver, Sender};
use nix::sys::eventfd::{EfdFlags, EventFd};

use super::dispatch::{Batch, Dispatch, WorkMsg, LANE_QUEUE_DEPTH};
use super::reader::{self, now_us, ReadTo, Reader, Sink};
use super::report::OutMsg;
use super::stats::{self, CaptureTotals, Handoff, SocketStats};
use super::worker::{self, Analysis, WorkerSnapshot};
use super::{shares, CaptureEnd, Config, Control, Input};
use crate::capture::{self, CaptureError, Chunk, Source};
use crate::decode::{Datagram, Packet, Segment};
use crate::detection::lists::Lists;

/// Packets read from one socket before the next is looked at.
const BURST: usize = 256;

/// How long a packet off the kernel's placement waits, at most, for a lane
/// behind to read past its time.
const MAX_WAIT_US: i64 = 1_000_000;
/// Between a lane finding its sockets empty and another lane trusting that
/// (the first one's wake-up, its hand-off).
const WAKE_SLACK_US: i64 = 50_000;
/// Bytes waiting in a lane's reorder buffer (payloads and their headers),
/// at most (beyond, the oldest go on early, counted).
const REORDER_BYTES: usize = 32 << 20;

/// The longest a lane lets its ring fill while packets flow, before it
/// waits for the next block: each wake-up then reads several blocks
/// instead of one (a wake-up costs tens of µs in a VM). An alert waits at
/// most this much longer.
const NAP_MAX: Duration = Duration::from_millis(50);
/// The rate a nap must leave room for: at most half the ring fills at it.
const NAP_LINE_RATE: u64 = 10_000_000_000 / 8;

/// How long a lane naps while packets flow (see [`NAP_MAX`]): none with
/// `--immediate`, and no longer than a 10 Gbit/s burst takes to fill half
/// of a ring of `ring_bytes`.
fn nap_for(ring_bytes: usize, immediate: bool) -> Duration {
    if immediate {
        return Duration::ZERO;
    }
    let half = ring_bytes as u64 / 2;
    NAP_MAX.min(Duration::from_micros(half * 1_000_000 / NAP_LINE_RATE))
}

/// What a lane has counted, published every second and at its end.
#[derive(Debug, Default, Clone)]
pub(super) struct LaneReport {
    /// Its decoders' counters and its sockets' kernel counters.
    pub totals: CaptureTotals,
    pub sockets: Vec<SocketStats>,
    pub handoff: Handoff,
}

/// A packet's header without its payload.
#[derive(Clone, Copy)]
enum Head {
    Tcp(Segment<()>),
    Udp(Datagram<()>),
}

struct Held {
    ts_us: i64,
    seq: u64,
    head: Head,
    payload: Vec<u8>,
}

impl PartialEq for Held {
    fn eq(&self, o: &Held) -> bool {
        (self.ts_us, self.seq) == (o.ts_us, o.seq)
    }
}
impl Eq for Held {}
impl PartialOrd for Held {
    fn partial_cmp(&self, o: &Held) -> Option<std::cmp::Ordering> {
        Some(self.cmp(o))
    }
}
impl Ord for Held {
    fn cmp(&self, o: &Held) -> std::cmp::Ordering {
        (self.ts_us, self.seq).cmp(&(o.ts_us, o.seq))
    }
}

/// What a held packet of `payload` bytes takes: empty packets count too.
fn held_size(payload: usize) -> usize {
    payload + std::mem::size_of::<Held>()
}

/// How far each lane has read its sockets, published after it handed over
/// what it read: an owner that sees a lane past a time holds every packet
/// that lane read before it.
pub(super) struct Progress {
    lanes: Box<[AtomicI64]>,
    /// How long after its arrival a packet may still be out of a reader's
    /// sight: libpcap's TPACKET_V3 ring hands a block over when it is full
    /// or its timeout (`--timeout`) passes; `--immediate` hands each packet.
    unseen_us: i64,
}

/// A lane that read its sockets to their end (`ReadTo::CaughtUp`).
const CAUGHT_UP: i64 = i64::MAX - 1;
/// A lane that reads no more.
const DONE: i64 = i64::MAX;

impl Progress {
    pub(super) fn new(lanes: usize, unseen_us: i64) -> Self {
        Progress {
            lanes: (0..lanes).map(|_| AtomicI64::new(i64::MIN)).collect(),
            unseen_us,
        }
    }

    fn publish(&self, lane: usize, read: ReadTo) {
        let v = match read {
            ReadTo::Behind(ts) => ts.min(CAUGHT_UP - 1),
            ReadTo::CaughtUp => CAUGHT_UP,
        };
        if let Some(a) = self.lanes.get(lane) {
            a.store(v, Ordering::SeqCst);
        }
    }

    fn done(&self, lane: usize) {
        if let Some(a) = self.lanes.get(lane) {
            a.store(DONE, Ordering::SeqCst);
        }
    }

    /// The time every lane has read past at `now_us`: what a lane caught up
    /// reads later arrived after `now_us` less what it could not yet see.
    fn horizon(&self, now_us: i64) -> i64 {
        let caught_up = now_us.saturating_sub(self.unseen_us + WAKE_SLACK_US);
        self.lanes
            .iter()
            .map(|a| match a.load(Ordering::SeqCst) {
                CAUGHT_UP => caught_up,
                v => v,
            })
            .min()
            .unwrap_or(DONE)
    }
}

/// Wakes a lane asleep on its sockets when another lane hands it packets:
/// a lane whose own sockets are quiet would otherwise take its inbox only
/// at its poll timeout, and the lane handing it a flood would stall on the
/// full queue while its own ring overflows.
pub(super) struct Doorbell {
    fd: EventFd,
    asleep: AtomicBool,
}

impl Doorbell {
    pub(super) fn new() -> std::io::Result<Self> {
        let flags = EfdFlags::EFD_NONBLOCK | EfdFlags::EFD_CLOEXEC;
        Ok(Doorbell {
            fd: EventFd::from_flags(flags)?,
            asleep: AtomicBool::new(false),
        })
    }

    /// After a send to the lane (the fence pairs with `sleep`'s: either
    /// the sleeper sees the batch, or this sees the sleeper).
    fn ring(&self) {
        fence(Ordering::SeqCst);
        if self.asleep.load(Ordering::SeqCst) {
            let _ = self.fd.write(1);
        }
    }

    /// Waits on `sources` and this bell, unless `inbox` holds something.
    fn sleep(&self, sources: &[Source], inbox: &Receiver<WorkMsg>, timeout_ms: i32) {
        self.asleep.store(true, Ordering::SeqCst);
        fence(Ordering::SeqCst);
        if inbox.is_empty() && capture::wait_any(sources, Some(self.fd.as_raw_fd()), timeout_ms) {
            // Rung: reset the counter for the next sleep.
            let _ = self.fd.read();
        }
        self.asleep.store(false, Ordering::SeqCst);
    }
}

/// The packets a lane owns that came off the kernel's placement, in
/// packet-time order (arrival order among equal times).
#[derive(Default)]
struct Reorder {
    heap: BinaryHeap<Reverse<Held>>,
    bytes: usize,
    seq: u64,
    /// Packet time of the last packet analysed.
    released: i64,
}

impl Reorder {
    fn push(&mut self, p: &Packet<'_>, counts: &mut Handoff) {
        let (ts_us, head, payload) = match p {
            Packet::Tcp(s) => (s.ts_us, Head::Tcp(s.with_payload(())), s.payload),
            Packet::Udp(d) => (d.ts_us, Head::Udp(d.with_payload(())), d.payload),
        };
        if ts_us < self.released {
            counts.reordered_late += 1;
        }
        self.seq += 1;
        self.bytes += held_size(payload.len());
        self.heap.push(Reverse(Held {
            ts_us,
            seq: self.seq,
            head,
            payload: payload.to_vec(),
        }));
    }

    /// Analyses what every lane has read past (`horizon`), what has waited
    /// [`MAX_WAIT_US`] by `now_us`, and the oldest beyond the buffer's size;
    /// all with `i64::MAX` for both.
    fn release(
        &mut self,
        now_us: i64,
        horizon: i64,
        counts: &mut Handoff,
        mut out: impl FnMut(&Packet<'_>),
    ) {
        let waited = now_us.saturating_sub(MAX_WAIT_US);
        while let Some(Reverse(top)) = self.heap.peek() {
            let full = self.bytes > REORDER_BYTES;
            if top.ts_us > horizon && top.ts_us > waited && !full {
                break;
            }
            let Some(Reverse(h)) = self.heap.pop() else {
                break;
            };
            if h.ts_us > horizon {
                counts.released_early += 1;
            }
            self.bytes = self.bytes.saturating_sub(held_size(h.payload.len()));
            self.released = self.released.max(h.ts_us);
            match h.head {
                Head::Tcp(s) => out(&Packet::Tcp(s.with_payload(&h.payload[..]))),
                Head::Udp(d) => out(&Packet::Udp(d.with_payload(&h.payload[..]))),
            }
        }
    }
}

/// What a lane is given.
pub(super) struct LaneSetup {
    pub index: usize,
    /// Its socket of each interface.
    pub sources: Vec<Source>,
    pub analysis: Analysis,
    /// Batches for the other lanes (non-blocking).
    pub reshard: Dispatch,
    /// Batches from the other lanes.
    pub inbox: Receiver<WorkMsg>,
    pub free: Sender<Batch>,
    pub progress: Arc<Progress>,
    /// Every lane's, by index.
    pub bells: Arc<[Doorbell]>,
    pub control: Arc<Control>,
    pub totals: CaptureTotals,
    pub timeout_ms: i32,
    /// How long to nap while packets flow ([`nap_for`]).
    pub nap: Duration,
    pub report: Arc<Mutex<LaneReport>>,
}

/// A lane as the reader's [`Sink`]: plain TCP is analysed in place, the
/// rest goes to the lane that owns it (all of it in place when alone).
struct Lane {
    index: usize,
    /// The only lane: it owns every packet.
    alone: bool,
    analysis: Analysis,
    reshard: Dispatch,
    inbox: Receiver<WorkMsg>,
    free: Sender<Batch>,
    progress: Arc<Progress>,
    bells: Arc<[Doorbell]>,
    reorder: Reorder,
    counts: Handoff,
    base: CaptureTotals,
    report: Arc<Mutex<LaneReport>>,
    nap: Duration,
    /// When the last wait ended, and whether packets came since.
    woke: std::time::Instant,
    busy: bool,
}

impl Lane {
    /// Takes what other lanes sent into the reorder buffer.
    fn take_inbox(&mut self) {
        while let Ok(msg) = self.inbox.try_recv() {
            self.take(msg);
        }
    }

    fn take(&mut self, msg: WorkMsg) {
        if let WorkMsg::Batch(mut b) = msg {
            for p in b.packets() {
                self.reorder.push(&p, &mut self.counts);
            }
            b.clear();
            let _ = self.free.try_send(b);
        }
    }

    /// Sends what waits for the other lanes; while a lane's queue is full,
    /// takes what the others send meanwhile, so that two lanes never wait
    /// on each other.
    fn send_all(&mut self) {
        self.reshard.send_all();
        self.ring();
        self.take_inbox();
        while !self.reshard.retry() {
            self.ring();
            self.take_inbox();
            std::thread::yield_now();
        }
    }

    /// Wakes the lanes that have batches waiting.
    fn ring(&self) {
        for (w, bell) in self.bells.iter().enumerate() {
            if w != self.index && self.reshard.queued(w) > 0 {
                bell.ring();
            }
        }
    }

    fn publish(&mut self, reader: &mut Reader) -> LaneReport {
        let (totals, sockets) = reader.counters(self.base);
        let r = LaneReport {
            totals,
            sockets,
            handoff: self.counts,
        };
        if let Ok(mut g) = self.report.lock() {
            *g = r.clone();
        }
        r
    }

    /// The end: what is pending goes out; then this lane sends nothing
    /// more, and takes what the others send until they have all stopped
    /// sending. Returns its worker's final counters.
    fn finish(mut self, reader: &mut Reader) -> (LaneReport, WorkerSnapshot) {
        self.send_all();
        self.progress.done(self.index);
        self.reshard.disconnect();
        while let Ok(msg) = self.inbox.recv() {
            self.take(msg);
        }
        let analysis = &mut self.analysis;
        self.reorder
            .release(i64::MAX, i64::MAX, &mut self.counts, |p| analysis.packet(p));
        let last = self.publish(reader);
        (last, self.analysis.finish())
    }
}

impl Sink for Lane {
    /// Live packets lie in the capture ring: never kept.
    fn packet(&mut self, p: &Packet<'_>, plain: bool, _chunk: Option<&Chunk>) {
        self.busy = true;
        // The kernel placed a plain TCP segment with its connection; the
        // rest goes where our hash says.
        if self.alone || plain && matches!(p, Packet::Tcp(_)) {
            self.analysis.packet(p);
            return;
        }
        match self.reshard.owner(p) {
            Some((w, _)) if w == self.index => self.reorder.push(p, &mut self.counts),
            Some((w, h)) => {
                self.counts.resharded += 1;
                self.reshard.push_to(w, h, p, None);
            }
            None => {}
        }
    }

    fn round(&mut self, read: ReadTo) -> bool {
        // Handed-off packets go at once (their owner waits for them), and
        // only then does this lane say how far it has read.
        self.send_all();
        self.progress.publish(self.index, read);
        // Another lane's packets before its published time are in the
        // inbox once its progress is read.
        let now = reader::now_us();
        let horizon = self.progress.horizon(now);
        self.take_inbox();
        let analysis = &mut self.analysis;
        self.reorder
            .release(now, horizon, &mut self.counts, |p| analysis.packet(p));
        self.analysis.mark_bypassed(None);
        self.analysis.flush()
    }

    fn tick(&mut self, now_us: i64, reader: &mut Reader) {
        self.analysis.tick(now_us);
        self.publish(reader);
    }

    fn wait(&mut self, sources: &[Source], timeout_ms: i32) {
        // Short waits while packets are held for reordering.
        let timeout_ms = if self.reorder.heap.is_empty() {
            timeout_ms
        } else {
            timeout_ms.min(20)
        };
        let Some(bell) = self.bells.get(self.index) else {
            return;
        };
        let since = self.woke.elapsed();
        if std::mem::take(&mut self.busy) && since < self.nap {
            // Packets flow: the ring takes a few blocks more first (another
            // lane's hand-off still wakes this one).
            let nap = (self.nap - since).as_millis().max(1);
            bell.sleep(&[], &self.inbox, i32::try_from(nap).unwrap_or(1));
        }
        bell.sleep(sources, &self.inbox, timeout_ms);
        self.woke = std::time::Instant::now();
    }
}

/// A lane's loop, until a stop or a capture error; returns its last
/// report, its worker's final counters and the error.
pub(super) fn run(setup: LaneSetup) -> (LaneReport, WorkerSnapshot, Option<CaptureError>) {
    let LaneSetup {
        index,
        sources,
        analysis,
        reshard,
        inbox,
        free,
        progress,
        bells,
        control,
        totals,
        timeout_ms,
        nap,
        report,
    } = setup;
    let mut reader = Reader::new(sources, totals.checksums, index, BURST);
    let mut lane = Lane {
        index,
        alone: bells.len() == 1,
        analysis,
        reshard,
        inbox,
        free,
        progress,
        bells,
        reorder: Reorder::default(),
        counts: Handoff::default(),
        base: totals,
        report,
        nap,
        woke: std::time::Instant::now(),
        busy: false,
    };
    let error = reader.run(&mut lane, &control, timeout_ms, false).err();
    if error.is_some() {
        // The other lanes stop too: one capture error ends the run.
        control.stop.store(true, Ordering::SeqCst);
    }
    let (last, snapshot) = lane.finish(&mut reader);
    (last, snapshot, error)
}

/// The fanout group of the `k`th interface: unique to this process, so two
/// sensors on one interface each see all of it.
fn fanout_group(k: usize) -> u16 {
    (std::process::id() as u16).wrapping_add((k as u16).wrapping_mul(0x101))
}

/// Opens `lanes` sockets on each interface, each interface's joined in one
/// fanout group; `lanes` vectors of sources, one of each interface.
fn open_fanout(cfg: &Config, lanes: usize) -> Result<Vec<Vec<Source>>, CaptureError> {
    let mut per_lane: Vec<Vec<Source>> = (0..lanes).map(|_| Vec::new()).collect();
    let ifaces = cfg.inputs.iter().filter_map(|i| match i {
        Input::Interface(name) => Some(name),
        Input::File(_) => None,
    });
    for (k, iface) in ifaces.enumerate() {
        let mut group = fanout_group(k);
        for (lane, sources) in per_lane.iter_mut().enumerate() {
            let src = Source::open_live(iface, &cfg.live, cfg.filter.as_deref())?;
            if lanes == 1 {
                sources.push(src);
                continue;
            }
            let mut joined = src.join_fanout(group);
            // Another process may hold the group id: the first socket looks
            // for a free one.
            let mut tries = 0;
            while lane == 0 && joined.is_err() && tries < 16 {
                group = group.wrapping_add(1);
                joined = src.join_fanout(group);
                tries += 1;
            }
            joined.map_err(|e| CaptureError::Setup {
                detail: format!(
                    "{}: cannot join AF_PACKET fanout group {group} ({e}); --capture-threads 1 captures with one socket",
                    crate::render::escape_control(iface)
                ),
            })?;
            sources.push(src);
        }
    }
    Ok(per_lane)
}

/// Live capture in lanes: `lanes` threads, each reading its socket of
/// every interface and analysing in place; this thread writes the
/// periodic stats.
pub(super) fn run_all<H: FnOnce() -> Result<(), String>>(
    cfg: &Config,
    lanes: usize,
    lists: &Arc<Lists>,
    control: &Arc<Control>,
    out_tx: &crossbeam_channel::Sender<OutMsg>,
    after_open: H,
) -> CaptureEnd {
    let totals = stats::CaptureTotals {
        checksums: cfg.checksums,
        ..Default::default()
    };
    let failed = |error: CaptureError| CaptureEnd {
        ts_us: now_us(),
        stats: stats::to_json(
            &totals,
            &[],
            Some(stats::capture_json(
                &totals.kernel,
                &[],
                Some((lanes, Handoff::default())).filter(|_| lanes > 1),
            )),
        ),
        error: Some(error),
        opened: false,
    };
    let per_lane = match open_fanout(cfg, lanes) {
        Ok(p) => p,
        Err(e) => return failed(e),
    };
    if let Err(detail) = after_open() {
        return failed(CaptureError::Setup { detail });
    }
    let bells: Result<Vec<Doorbell>, _> = (0..lanes).map(|_| Doorbell::new()).collect();
    let bells: Arc<[Doorbell]> = match bells {
        Ok(b) => b.into(),
        Err(e) => {
            return failed(CaptureError::Setup {
                detail: format!("cannot create an eventfd for the fanout lanes: {e}"),
            })
        }
    };
    let running = spawn(cfg, per_lane, bells, lists, control, out_tx, totals);
    running.wait(cfg, out_tx)
}

/// Starts one lane per vector of sources, with what they share: the
/// hand-off channels, their progress and doorbells.
fn spawn(
    cfg: &Config,
    per_lane: Vec<Vec<Source>>,
    bells: Arc<[Doorbell]>,
    lists: &Arc<Lists>,
    control: &Arc<Control>,
    out_tx: &crossbeam_channel::Sender<OutMsg>,
    totals: CaptureTotals,
) -> Running {
    let lanes = per_lane.len();
    let (free_tx, free_rx) = bounded::<Batch>(lanes * (LANE_QUEUE_DEPTH + 2));
    let (txs, rxs): (Vec<_>, Vec<_>) = (0..lanes)
        .map(|_| bounded::<WorkMsg>(LANE_QUEUE_DEPTH * 4))
        .unzip();
    let unseen_ms = if cfg.live.immediate {
        0
    } else {
        cfg.live.timeout_ms.max(0)
    };
    let progress = Arc::new(Progress::new(lanes, i64::from(unseen_ms) * 1_000));
    let mut running = Running {
        handles: Vec::new(),
        reports: Vec::new(),
        snapshots: Vec::new(),
        totals,
    };
    for (index, (sources, inbox)) in per_lane.into_iter().zip(rxs).enumerate() {
        let (flow, datagram) = shares(cfg, lanes);
        let snapshot = Arc::new(Mutex::new(WorkerSnapshot::default()));
        let report = Arc::new(Mutex::new(LaneReport::default()));
        let detector = crate::detection::Detector::with_lists(lists.clone(), cfg.home_net.clone())
            .with_asn_db(cfg.asn_db.clone())
            .with_mentions(cfg.mentions);
        let analysis = worker::Analysis::new(
            index,
            flow,
            datagram,
            detector,
            out_tx.clone(),
            snapshot.clone(),
        )
        .with_recorder(super::recorder(cfg, lanes));
        let setup = LaneSetup {
            index,
            sources,
            analysis,
            reshard: Dispatch::new(txs.clone(), free_rx.clone(), None).nonblocking(),
            inbox,
            free: free_tx.clone(),
            progress: progress.clone(),
            bells: bells.clone(),
            control: control.clone(),
            totals,
            timeout_ms: cfg.live.timeout_ms,
            nap: nap_for(
                usize::try_from(cfg.live.buffer_size).unwrap_or(0),
                cfg.live.immediate,
            ),
            report: report.clone(),
        };
        let h = thread::Builder::new()
            .name(format!("hostwatch-lane-{index}"))
            .spawn(move || run(setup));
        running.handles.push(h);
        running.reports.push(report);
        running.snapshots.push(snapshot);
    }
    // The lanes' inboxes close when the last lane stops sending: `txs`
    // is dropped here.
    running
}

type LaneEnd = (LaneReport, WorkerSnapshot, Option<CaptureError>);

/// The lanes while they run, and what they publish.
struct Running {
    handles: Vec<std::io::Result<thread::JoinHandle<LaneEnd>>>,
    reports: Vec<Arc<Mutex<LaneReport>>>,
    snapshots: Vec<Arc<Mutex<WorkerSnapshot>>>,
    /// The capture side's totals before any lane counted.
    totals: CaptureTotals,
}

impl Running {
    /// Writes the periodic stats until every lane has ended, then their
    /// final counters and the first capture error.
    fn wait(self, cfg: &Config, out_tx: &crossbeam_channel::Sender<OutMsg>) -> CaptureEnd {
        let mut last_stats = std::time::Instant::now();
        while !self
            .handles
            .iter()
            .all(|h| h.as_ref().map_or(true, |h| h.is_finished()))
        {
            thread::sleep(Duration::from_millis(100));
            match cfg.stats_interval {
                Some(interval) if last_stats.elapsed() >= interval => {
                    last_stats = std::time::Instant::now();
                    let snaps: Vec<WorkerSnapshot> = self
                        .snapshots
                        .iter()
                        .filter_map(|s| s.lock().ok().map(|g| g.clone()))
                        .collect();
                    let _ = out_tx.send(OutMsg::Stats {
                        ts_us: now_us(),
                        stats: self.stats(&snaps),
                        last: false,
                    });
                }
                _ => {}
            }
        }
        let mut finals = Vec::new();
        let mut error = None;
        for h in self.handles.into_iter().filter_map(|h| h.ok()) {
            if let Ok((_, snapshot, e)) = h.join() {
                finals.push(snapshot);
                error = error.or(e);
            }
        }
        let running = Running {
            handles: Vec::new(),
            ..self
        };
        CaptureEnd {
            ts_us: now_us(),
            stats: running.stats(&finals),
            error,
            opened: true,
        }
    }

    /// The `stats` body from the lanes' last reports and `snaps`.
    fn stats(&self, snaps: &[WorkerSnapshot]) -> serde_json::Value {
        let mut t = self.totals;
        let mut sockets = Vec::new();
        let mut handoff = Handoff::default();
        for r in self
            .reports
            .iter()
            .filter_map(|r| r.lock().ok().map(|g| g.clone()))
        {
            t.add(&r.totals);
            sockets.extend(r.sockets);
            handoff.add(&r.handoff);
        }
        let lanes = self.reports.len();
        let fanout = Some((lanes, handoff)).filter(|_| lanes > 1);
        let capture = stats::capture_json(&t.kernel, &sockets, fanout);
        stats::to_json(&t, snaps, Some(capture))
    }
}

#[cfg(test)]
pub(super) mod tests {
    use super::*;
    use crate::decode::{Checksum, Vlans};

    /// An NBNS datagram from 10.0.0.1 to 10.0.0.2 at `ts_us`.
    pub(in crate::pipeline) fn datagram(ts_us: i64, payload: &[u8]) -> Datagram<&[u8]> {
        Datagram {
            ts_us,
            src: [10, 0, 0, 1].into(),
            dst: [10, 0, 0, 2].into(),
            sport: 137,
            dport: 137,
            vlans: Vlans::default(),
            iface: None,
            checksum: Checksum::Unchecked,
            payload,
        }
    }

    /// (time, payload) of what `release` hands on.
    fn released(
        r: &mut Reorder,
        now: i64,
        horizon: i64,
        counts: &mut Handoff,
    ) -> Vec<(i64, Vec<u8>)> {
        let mut out = Vec::new();
        r.release(now, horizon, counts, |p| {
            if let Packet::Udp(d) = p {
                out.push((d.ts_us, d.payload.to_vec()));
            }
        });
        out
    }

    #[test]
    fn packets_from_several_sockets_go_on_in_packet_time_order() {
        let mut r = Reorder::default();
        let mut c = Handoff::default();
        // Arrived out of order (two sockets read at their own pace).
        for (ts, p) in [(3_000, b"c"), (1_000, b"a"), (2_000, b"b"), (1_000, b"d")] {
            r.push(&Packet::Udp(datagram(ts, p)), &mut c);
        }
        // No lane has read past them yet.
        assert_eq!(released(&mut r, 3_000, 999, &mut c), vec![]);
        // Every lane has read to 2,000: equal times keep their arrival order.
        assert_eq!(
            released(&mut r, 3_000, 2_000, &mut c),
            vec![
                (1_000, b"a".to_vec()),
                (1_000, b"d".to_vec()),
                (2_000, b"b".to_vec())
            ]
        );
        // One older than what went on already: still analysed, counted.
        r.push(&Packet::Udp(datagram(1_500, b"late")), &mut c);
        assert_eq!(c.reordered_late, 1);
        assert_eq!(
            released(&mut r, i64::MAX, i64::MAX, &mut c),
            vec![(1_500, b"late".to_vec()), (3_000, b"c".to_vec())]
        );
        assert_eq!((c.released_early, r.bytes, r.heap.len()), (0, 0, 0));
    }

    /// A lane behind (its socket flooded) is waited for however long the
    /// wall clock says the owner's packet has waited, up to `MAX_WAIT_US`:
    /// a DHCP answer read at once must not go before its request, which a
    /// lane behind reads 400 ms later.
    #[test]
    fn a_lane_behind_is_waited_for() {
        let mut r = Reorder::default();
        let mut c = Handoff::default();
        let t = 1_000_000_000;
        r.push(&Packet::Udp(datagram(t + 1_000, b"answer")), &mut c);
        // 400 ms later the other lane has read to 300 ms before the answer.
        assert_eq!(released(&mut r, t + 400_000, t - 300_000, &mut c), vec![]);
        r.push(&Packet::Udp(datagram(t, b"request")), &mut c);
        assert_eq!(
            released(&mut r, t + 450_000, t + 2_000, &mut c),
            vec![(t, b"request".to_vec()), (t + 1_000, b"answer".to_vec())]
        );
        assert_eq!((c.reordered_late, c.released_early), (0, 0));
        // A lane stuck for longer than MAX_WAIT_US is not waited for.
        r.push(&Packet::Udp(datagram(t + 5_000, b"next")), &mut c);
        assert_eq!(
            released(&mut r, t + 5_000 + MAX_WAIT_US - 1, t, &mut c),
            vec![]
        );
        assert_eq!(
            released(&mut r, t + 5_000 + MAX_WAIT_US, t, &mut c),
            vec![(t + 5_000, b"next".to_vec())]
        );
        assert_eq!(c.released_early, 1);
    }

    #[test]
    fn the_horizon_is_the_lane_furthest_behind() {
        let p = Progress::new(3, 250_000);
        let now = 10_000_000;
        // A lane that has not read yet holds everything.
        assert_eq!(p.horizon(now), i64::MIN);
        p.publish(0, ReadTo::Behind(9_000_000));
        p.publish(1, ReadTo::CaughtUp);
        p.publish(2, ReadTo::Behind(9_500_000));
        assert_eq!(p.horizon(now), 9_000_000);
        // A lane caught up may still get what its ring's open block holds.
        p.publish(0, ReadTo::CaughtUp);
        assert_eq!(p.horizon(now), 9_500_000);
        p.publish(2, ReadTo::CaughtUp);
        assert_eq!(p.horizon(now), now - 250_000 - WAKE_SLACK_US);
        p.publish(2, ReadTo::Behind(1_000));
        assert_eq!(p.horizon(now), 1_000);
        // A lane that stopped reading holds nothing back.
        p.done(2);
        p.done(1);
        assert_eq!(p.horizon(now), now - 250_000 - WAKE_SLACK_US);
        p.done(0);
        assert_eq!(p.horizon(now), DONE);
    }

    #[test]
    fn a_nap_leaves_half_the_ring_for_a_10_gbit_burst() {
        // 64 MiB: half of it takes 26.8 ms at 10 Gbit/s.
        assert_eq!(nap_for(64 << 20, false), Duration::from_micros(26_843));
        assert_eq!(nap_for(1 << 30, false), NAP_MAX);
        assert_eq!(nap_for(2 << 20, false), Duration::from_micros(838));
        assert_eq!(nap_for(64 << 20, true), Duration::ZERO);
        assert_eq!(nap_for(0, false), Duration::ZERO);
    }

    #[test]
    fn a_full_buffer_lets_the_oldest_go_early() {
        let mut r = Reorder::default();
        let mut c = Handoff::default();
        let big = vec![0u8; REORDER_BYTES / 2 + 1];
        for ts in [1, 2, 3] {
            r.push(&Packet::Udp(datagram(ts, &big)), &mut c);
        }
        // Over the cap: the oldest go on until it holds again.
        let out = released(&mut r, 0, i64::MIN, &mut c);
        assert_eq!(out.iter().map(|o| o.0).collect::<Vec<_>>(), [1, 2]);
        assert_eq!(c.released_early, 2);
        assert_eq!(r.heap.len(), 1);
    }
}
