//! The threads that run the stages. The capture thread (the caller's) reads
//! packets, decodes them, and hands TCP segments in batches over
//! `crossbeam-channel` to N workers, sharded by a symmetric flow hash so a
//! connection always lands on the same worker. Each worker owns a flow
//! table and a detector. One output thread keeps the host inventory and
//! writes JSON Lines. Batches are recycled, so the capture path does not
//! allocate per packet.

use std::collections::{BTreeMap, HashMap};
use std::io::IsTerminal;
use std::net::IpAddr;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use crossbeam_channel::{bounded, Receiver, RecvTimeoutError, Sender};
use serde_json::json;

use crate::analyzers::Analyzers;
use crate::capture::{self, CaptureError, KernelStats, LiveOptions, Next, Source};
use crate::decode::{defrag::DefragStats, tcp_flags, DecodeStats, Decoder, TcpSegment, Vlans};
use crate::detection::inventory::Inventory;
use crate::detection::{Detector, Matcher};
use crate::events::{Body, Event};
use crate::flow::{self, FlowConfig, FlowStats, FlowTable};
use crate::output::Outputs;

/// Where packets come from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Input {
    File(String),
    Interface(String),
}

#[derive(Debug, Clone)]
pub struct Config {
    pub inputs: Vec<Input>,
    pub filter: Option<String>,
    pub live: LiveOptions,
    pub workers: usize,
    pub flow: FlowConfig,
    pub alerts_only: bool,
    pub sensor_name: Option<String>,
    /// Periodic `stats` events (live captures).
    pub stats_interval: Option<Duration>,
    /// Progress bar on stderr while replaying.
    pub progress: bool,
    /// How long the end of a run waits for network sinks to send what they hold.
    pub drain_timeout: Duration,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            inputs: Vec::new(),
            filter: None,
            live: LiveOptions::default(),
            workers: 1,
            flow: FlowConfig::default(),
            alerts_only: false,
            sensor_name: None,
            stats_interval: None,
            progress: false,
            drain_timeout: Duration::from_secs(10),
        }
    }
}

/// Flags set by signal handlers.
#[derive(Debug, Default)]
pub struct Control {
    /// Stop capturing, flush, write the final stats (SIGINT, SIGTERM).
    pub stop: AtomicBool,
    /// Reopen the output file (SIGHUP).
    pub reopen: AtomicBool,
    /// Print the human summary to stderr (SIGUSR1).
    pub summary: AtomicBool,
}

/// How a run ended.
#[derive(Debug)]
pub struct Outcome {
    pub alerts: u64,
    pub events: u64,
    /// The capture error that ended the run early, if any (events before it
    /// were written).
    pub error: Option<CaptureError>,
    /// The output could not be written.
    pub output_error: Option<String>,
    /// One line per network sink that lost events.
    pub output_losses: Vec<String>,
    pub interrupted: bool,
    /// The end-of-run summary (plain text, names escaped).
    pub summary: String,
    pub summary_color: String,
}

/// A TCP segment's header fields, with its payload's place in the batch.
#[derive(Debug, Clone, Copy)]
struct SegMeta {
    ts_us: i64,
    src: IpAddr,
    dst: IpAddr,
    sport: u16,
    dport: u16,
    seq: u32,
    ack: u32,
    flags: u8,
    window: u16,
    vlans: Vlans,
    off: u32,
    len: u32,
}

/// Segments for one worker, payloads packed into one buffer.
#[derive(Debug, Default)]
struct Batch {
    data: Vec<u8>,
    segs: Vec<SegMeta>,
}

/// Packets read from each interface after a stop signal: what the kernel
/// already holds is not lost, and a busy link cannot delay the exit.
const DRAIN_ON_STOP: usize = 100_000;

/// How often, in packet time, workers look for timed-out flows.
const EXPIRE_EVERY_US: i64 = 1_000_000;

const BATCH_SEGMENTS: usize = 512;
/// With more workers, each batch holds more segments (up to this many), so
/// that a worker is woken no more often than a single one would be: on a
/// machine with fewer cores than threads every wake-up costs the capture
/// thread a system call.
const MAX_BATCH_SEGMENTS: usize = 4096;
const BATCH_BYTES: usize = 512 << 10;
/// Batches in flight per worker (back-pressure on the capture thread).
const QUEUE_DEPTH: usize = 8;

enum WorkMsg {
    Batch(Batch),
    /// Wall-clock time while a live capture is idle: expire flows.
    Tick(i64),
}

enum OutMsg {
    Events(Vec<Event>),
    Stats {
        ts_us: i64,
        stats: serde_json::Value,
        last: bool,
    },
}

/// Connections whose payload no longer matters, shared by the workers (who
/// mark them) and the capture thread (who then stops copying their
/// payload into batches; headers still go, for FIN, RST and timeouts). A
/// fixed table of flow hashes: a collision only costs a copy, and a SYN
/// clears its slot so a reused port pair is analysed again.
struct BypassHint {
    slots: Box<[AtomicU64]>,
}

const BYPASS_SLOTS: usize = 1 << 18;

impl BypassHint {
    fn new() -> Self {
        BypassHint {
            slots: (0..BYPASS_SLOTS).map(|_| AtomicU64::new(0)).collect(),
        }
    }

    fn slot(&self, h: u64) -> &AtomicU64 {
        &self.slots[(h as usize) & (BYPASS_SLOTS - 1)]
    }

    fn mark(&self, h: u64) {
        self.slot(h).store(h | 1, Ordering::Relaxed);
    }

    fn contains(&self, h: u64) -> bool {
        self.slot(h).load(Ordering::Relaxed) == h | 1
    }

    fn clear(&self, h: u64) {
        let _ = self
            .slot(h)
            .compare_exchange(h | 1, 0, Ordering::Relaxed, Ordering::Relaxed);
    }
}

/// Counters a worker publishes for periodic stats.
#[derive(Debug, Default, Clone, Copy)]
struct WorkerSnapshot {
    flows: FlowStats,
    active: usize,
    held_bytes: usize,
}

fn now_us() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_micros() as i64)
        .unwrap_or(0)
}

fn worker(
    cfg: FlowConfig,
    matcher: Arc<Matcher>,
    rx: Receiver<WorkMsg>,
    free: Sender<Batch>,
    out: Sender<OutMsg>,
    snapshot: Arc<Mutex<WorkerSnapshot>>,
    hint: Arc<BypassHint>,
) -> WorkerSnapshot {
    let mut table = FlowTable::new(cfg, Analyzers);
    let mut detector = Detector::new(matcher);
    let mut events = Vec::new();
    let publish = |table: &FlowTable<Analyzers>| {
        if let Ok(mut s) = snapshot.lock() {
            *s = WorkerSnapshot {
                flows: table.stats,
                active: table.len(),
                held_bytes: table.held_bytes(),
            };
        }
    };
    for msg in rx {
        match msg {
            WorkMsg::Batch(mut b) => {
                for m in &b.segs {
                    let payload = b
                        .data
                        .get(m.off as usize..(m.off + m.len) as usize)
                        .unwrap_or(&[]);
                    let seg = TcpSegment {
                        ts_us: m.ts_us,
                        src: m.src,
                        dst: m.dst,
                        sport: m.sport,
                        dport: m.dport,
                        seq: m.seq,
                        ack: m.ack,
                        flags: m.flags,
                        window: m.window,
                        vlans: m.vlans,
                        payload,
                    };
                    table.packet(&seg, &mut |fr| detector.process(fr, &mut events));
                }
                b.data.clear();
                b.segs.clear();
                let _ = free.try_send(b);
                for key in table.take_bypassed() {
                    hint.mark(key.shard_hash());
                }
            }
            WorkMsg::Tick(now) => {
                table.expire(now, &mut |fr| detector.process(fr, &mut events));
                publish(&table);
            }
        }
        if !events.is_empty()
            && out
                .send(OutMsg::Events(std::mem::take(&mut events)))
                .is_err()
        {
            break;
        }
    }
    table.finish(&mut |fr| detector.process(fr, &mut events));
    if !events.is_empty() {
        let _ = out.send(OutMsg::Events(events));
    }
    publish(&table);
    WorkerSnapshot {
        flows: table.stats,
        active: 0,
        held_bytes: table.held_bytes(),
    }
}

struct OutputOptions {
    alerts_only: bool,
    sensor: Option<String>,
    live: bool,
    drain: Duration,
}

/// Host sightings held in a replay, at most (beyond, later pairs are
/// written at once, as live).
const MAX_HELD_HOSTS: usize = 200_000;

fn host_order(e: &Event) -> (i64, u64, String) {
    let name = match &e.body {
        Body::Host(h) => format!("{}|{}|{}", h.name, h.ip, h.evidence),
        _ => String::new(),
    };
    (e.ts_us, e.flow.as_ref().map_or(0, |f| f.flow_id), name)
}

/// Keeps the earliest sighting of a pair.
fn hold_host(held: &mut HashMap<(String, IpAddr), Event>, ev: Event, name: String, ip: IpAddr) {
    let key = (name, ip);
    match held.get(&key) {
        Some(old) if host_order(old) <= host_order(&ev) => {}
        _ if held.len() >= MAX_HELD_HOSTS && !held.contains_key(&key) => {}
        _ => {
            held.insert(key, ev);
        }
    }
}

/// The output thread: inventory, filtering, serialisation, writing.
fn output(
    mut outputs: Outputs,
    rx: Receiver<OutMsg>,
    opts: OutputOptions,
    control: Arc<Control>,
) -> OutputResult {
    let OutputOptions {
        alerts_only,
        sensor,
        live,
        drain,
    } = opts;
    let mut inv = Inventory::default();
    // In a replay, host sightings wait for the end: the earliest sighting
    // of each pair is then known whatever worker reported it first.
    let mut held_hosts: HashMap<(String, IpAddr), Event> = HashMap::new();
    let mut counts: BTreeMap<&'static str, u64> = BTreeMap::new();
    let mut line = Vec::with_capacity(4 << 10);
    let mut error: Option<String> = None;
    // Serialises once, hands the line to every sink that takes its type.
    let mut emit = |outputs: &mut Outputs,
                    counts: &mut BTreeMap<&'static str, u64>,
                    ev: &Event,
                    error: &mut Option<String>| {
        let ty = ev.body.event_type();
        *counts.entry(ty).or_default() += 1;
        if error.is_some() {
            return;
        }
        line.clear();
        ev.write_json(sensor.as_deref(), &mut line);
        if let Err(e) = outputs.event(ty, &line) {
            *error = Some(e.to_string());
            control.stop.store(true, Ordering::SeqCst);
        }
    };
    let flush = |outputs: &mut Outputs, error: &mut Option<String>| {
        if error.is_none() {
            if let Err(e) = outputs.flush() {
                *error = Some(e.to_string());
                control.stop.store(true, Ordering::SeqCst);
            }
        }
    };
    loop {
        match rx.recv_timeout(Duration::from_millis(200)) {
            Ok(OutMsg::Events(evs)) => {
                for ev in evs {
                    if !live {
                        if let Body::Host(h) = &ev.body {
                            hold_host(&mut held_hosts, ev.clone(), h.name.to_uppercase(), h.ip);
                            continue;
                        }
                    }
                    if !inv.admit(&ev) {
                        continue;
                    }
                    if alerts_only && !matches!(ev.body, Body::Alert(_)) {
                        continue;
                    }
                    emit(&mut outputs, &mut counts, &ev, &mut error);
                }
                if rx.is_empty() {
                    flush(&mut outputs, &mut error);
                }
            }
            Ok(OutMsg::Stats {
                ts_us,
                mut stats,
                last,
            }) => {
                if last {
                    let mut hosts: Vec<Event> = held_hosts.drain().map(|(_, e)| e).collect();
                    hosts.sort_by_key(host_order);
                    for ev in hosts {
                        if inv.admit(&ev) && !alerts_only {
                            emit(&mut outputs, &mut counts, &ev, &mut error);
                        }
                    }
                    // The final counters should show what reached the
                    // network sinks.
                    outputs.drain(Instant::now() + drain);
                }
                if let Some(obj) = stats.as_object_mut() {
                    obj.insert("events".into(), json!(counts));
                    obj.insert("alerts".into(), json!(inv.alerts()));
                    obj.insert("hosts".into(), json!({ "inventory_full": inv.overflow }));
                    obj.insert("outputs".into(), outputs.stats());
                }
                if !alerts_only {
                    let ev = Event {
                        ts_us,
                        flow: None,
                        body: Body::Stats(stats),
                    };
                    emit(&mut outputs, &mut counts, &ev, &mut error);
                }
                flush(&mut outputs, &mut error);
                if last {
                    break;
                }
            }
            Err(RecvTimeoutError::Timeout) => {
                if control.reopen.swap(false, Ordering::SeqCst) {
                    if let Err(e) = outputs.reopen() {
                        eprintln!("hostwatch: cannot reopen the output file {e}");
                    }
                }
                if control.summary.swap(false, Ordering::SeqCst) {
                    eprint!("{}", inv.summary(false));
                }
                flush(&mut outputs, &mut error);
            }
            Err(RecvTimeoutError::Disconnected) => break,
        }
    }
    flush(&mut outputs, &mut error);
    let losses = outputs.close(Instant::now() + drain);
    OutputResult {
        inventory: inv,
        counts,
        error,
        losses,
    }
}

/// What the output thread reports at the end.
struct OutputResult {
    inventory: Inventory,
    counts: BTreeMap<&'static str, u64>,
    error: Option<String>,
    losses: Vec<String>,
}

/// Totals of the capture side.
#[derive(Debug, Default, Clone, Copy)]
struct CaptureTotals {
    packets: u64,
    bytes: u64,
    decode: DecodeStats,
    defrag: DefragStats,
    kernel: KernelStats,
}

fn add_decode(a: &mut DecodeStats, b: &DecodeStats) {
    a.frames += b.frames;
    a.bytes += b.bytes;
    a.tcp += b.tcp;
    a.non_ip += b.non_ip;
    a.non_tcp += b.non_tcp;
    a.malformed += b.malformed;
    a.tunnels += b.tunnels;
    a.tunnel_too_deep += b.tunnel_too_deep;
}

fn add_defrag(a: &mut DefragStats, b: &DefragStats) {
    a.fragments += b.fragments;
    a.reassembled += b.reassembled;
    a.timed_out += b.timed_out;
    a.dropped_capacity += b.dropped_capacity;
    a.invalid += b.invalid;
    a.conflicting_overlaps += b.conflicting_overlaps;
}

fn stats_json(c: &CaptureTotals, w: &[WorkerSnapshot], live: bool) -> serde_json::Value {
    let mut f = FlowStats::default();
    let (mut active, mut held) = (0, 0);
    for s in w {
        let s2 = &s.flows;
        f.flows += s2.flows;
        f.midstream += s2.midstream;
        f.bypassed += s2.bypassed;
        f.timed_out += s2.timed_out;
        f.evicted += s2.evicted;
        f.closed += s2.closed;
        let (t, u) = (&mut f.streams, &s2.streams);
        t.segments += u.segments;
        t.delivered_bytes += u.delivered_bytes;
        t.retransmitted += u.retransmitted;
        t.out_of_order += u.out_of_order;
        t.conflicting_overlaps += u.conflicting_overlaps;
        t.gaps += u.gaps;
        t.gap_bytes += u.gap_bytes;
        t.ooo_overflows += u.ooo_overflows;
        t.beyond_depth += u.beyond_depth;
        active += s.active;
        held += s.held_bytes;
    }
    let d = &c.decode;
    let mut v = json!({
        "packets": c.packets,
        "bytes": c.bytes,
        "decoder": {
            "tcp": d.tcp, "non_ip": d.non_ip, "non_tcp": d.non_tcp, "malformed": d.malformed,
            "tunnelled": d.tunnels, "tunnel_too_deep": d.tunnel_too_deep,
        },
        "defrag": {
            "fragments": c.defrag.fragments, "reassembled": c.defrag.reassembled, "timed_out": c.defrag.timed_out,
            "dropped_capacity": c.defrag.dropped_capacity, "invalid": c.defrag.invalid,
            "conflicting_overlaps": c.defrag.conflicting_overlaps,
        },
        "flows": {
            "total": f.flows, "active": active, "midstream": f.midstream, "bypassed": f.bypassed,
            "timed_out": f.timed_out, "evicted": f.evicted, "closed": f.closed,
        },
        "reassembly": {
            "segments": f.streams.segments, "bytes": f.streams.delivered_bytes,
            "retransmitted": f.streams.retransmitted, "out_of_order": f.streams.out_of_order,
            "conflicting_overlaps": f.streams.conflicting_overlaps, "gaps": f.streams.gaps,
            "gap_bytes": f.streams.gap_bytes, "ooo_overflows": f.streams.ooo_overflows,
            "beyond_depth_bytes": f.streams.beyond_depth, "held_bytes": held,
        },
    });
    if live {
        if let Some(o) = v.as_object_mut() {
            o.insert(
                "capture".into(),
                json!({ "kernel_received": c.kernel.received, "kernel_drops": c.kernel.dropped, "interface_drops": c.kernel.if_dropped }),
            );
        }
    }
    v
}

/// The CPUs this process may run on.
fn allowed_cpus() -> Vec<usize> {
    // SAFETY: cpu_set_t is plain data; sched_getaffinity fills it for the
    // calling thread and CPU_ISSET only reads it.
    unsafe {
        let mut set: libc::cpu_set_t = std::mem::zeroed();
        if libc::sched_getaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), &mut set) != 0 {
            return Vec::new();
        }
        (0..libc::CPU_SETSIZE as usize)
            .filter(|&c| libc::CPU_ISSET(c, &set))
            .collect()
    }
}

/// The CPUs for the workers and the output thread when the capture thread
/// would otherwise share its core with them: every allowed CPU but the
/// last (the first usually takes more interrupts). `None`: no restriction
/// (a core each, or a single CPU).
fn cpus_for_others(workers: usize) -> Option<Vec<usize>> {
    leave_one_to_capture(allowed_cpus(), workers)
}

fn leave_one_to_capture(mut cpus: Vec<usize>, workers: usize) -> Option<Vec<usize>> {
    (cpus.len() >= 2 && workers + 1 > cpus.len()).then(|| {
        cpus.pop();
        cpus
    })
}

/// Restricts the calling thread to `cpus`; a failure leaves it as it was.
fn restrict_to(cpus: Option<&[usize]>) {
    let Some(cpus) = cpus else { return };
    // SAFETY: as in allowed_cpus; sched_setaffinity(0) acts on this thread.
    unsafe {
        let mut set: libc::cpu_set_t = std::mem::zeroed();
        for &c in cpus {
            libc::CPU_SET(c, &mut set);
        }
        libc::sched_setaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), &set);
    }
}

/// Per-worker batches being filled by the capture thread.
struct Dispatch {
    /// Segments per batch.
    batch_segments: usize,
    pending: Vec<Batch>,
    txs: Vec<Sender<WorkMsg>>,
    free: Receiver<Batch>,
    hint: Arc<BypassHint>,
}

impl Dispatch {
    fn push(&mut self, seg: &TcpSegment<'_>) {
        let n = self.txs.len();
        let h = flow::shard_hash((seg.src, seg.sport), (seg.dst, seg.dport), &seg.vlans);
        let w = (h % n as u64) as usize;
        // The payload of a bypassed connection is not copied.
        let payload = if seg.flags & (tcp_flags::SYN | tcp_flags::ACK) == tcp_flags::SYN {
            self.hint.clear(h);
            seg.payload
        } else if !seg.payload.is_empty() && self.hint.contains(h) {
            &[]
        } else {
            seg.payload
        };
        let b = &mut self.pending[w];
        let off = b.data.len() as u32;
        b.data.extend_from_slice(payload);
        b.segs.push(SegMeta {
            ts_us: seg.ts_us,
            src: seg.src,
            dst: seg.dst,
            sport: seg.sport,
            dport: seg.dport,
            seq: seg.seq,
            ack: seg.ack,
            flags: seg.flags,
            window: seg.window,
            vlans: seg.vlans,
            off,
            len: payload.len() as u32,
        });
        if b.segs.len() >= self.batch_segments || b.data.len() >= BATCH_BYTES {
            self.send(w);
        }
    }

    fn send(&mut self, w: usize) {
        if self.pending[w].segs.is_empty() {
            return;
        }
        let fresh = self.free.try_recv().unwrap_or_else(|_| Batch {
            data: Vec::with_capacity(BATCH_BYTES + 65_536),
            segs: Vec::with_capacity(self.batch_segments),
        });
        let full = std::mem::replace(&mut self.pending[w], fresh);
        let _ = self.txs[w].send(WorkMsg::Batch(full));
    }

    fn send_all(&mut self) {
        for w in 0..self.txs.len() {
            self.send(w);
        }
    }

    fn tick(&mut self, now: i64) {
        self.send_all();
        for tx in &self.txs {
            let _ = tx.send(WorkMsg::Tick(now));
        }
    }
}

fn progress_bar(source: &Source) -> Option<indicatif::ProgressBar> {
    if !std::io::stderr().is_terminal() {
        return None;
    }
    let pb = if source.size > 0 && source.position().is_some() {
        let pb = indicatif::ProgressBar::new(source.size);
        pb.set_style(
            indicatif::ProgressStyle::with_template(
                "{prefix} [{bar:30}] {bytes}/{total_bytes} {msg}",
            )
            .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
        );
        pb
    } else {
        let pb = indicatif::ProgressBar::new_spinner();
        pb.set_style(
            indicatif::ProgressStyle::with_template("{prefix} {spinner} {msg}")
                .unwrap_or_else(|_| indicatif::ProgressStyle::default_spinner()),
        );
        pb
    };
    pb.set_prefix(crate::parsers::text::escape_control(source.name()));
    Some(pb)
}

/// Runs the whole pipeline over the configured inputs.
pub fn run(
    cfg: &Config,
    matcher: Arc<Matcher>,
    outputs: Outputs,
    control: Arc<Control>,
) -> Outcome {
    run_with_hook(cfg, matcher, outputs, control, || Ok(()))
}

/// As [`run`], calling `after_open` once the live interfaces are open and
/// before any packet is read (to drop privileges).
pub fn run_with_hook<H: FnOnce() -> Result<(), String>>(
    cfg: &Config,
    matcher: Arc<Matcher>,
    outputs: Outputs,
    control: Arc<Control>,
    after_open: H,
) -> Outcome {
    let workers = cfg.workers.max(1);
    let (out_tx, out_rx) = bounded::<OutMsg>(256);
    let (free_tx, free_rx) = bounded::<Batch>(workers * (QUEUE_DEPTH + 2));
    let out_control = control.clone();
    let opts = OutputOptions {
        alerts_only: cfg.alerts_only,
        sensor: cfg.sensor_name.clone(),
        live: cfg.inputs.iter().any(|i| matches!(i, Input::Interface(_))),
        drain: cfg.drain_timeout,
    };
    // Replaying files, the capture thread (reading and decoding) is the one
    // serial stage: when the threads outnumber the cores, the others keep
    // off one core and leave it to it. Not when capturing live: the kernel
    // then does the reading, in softirq time on any core, and the capture
    // thread mostly waits, so the workers may need every core.
    let reading_files = cfg.inputs.iter().all(|i| matches!(i, Input::File(_)));
    let others_cpus = cpus_for_others(workers).filter(|_| reading_files);
    let out_cpus = others_cpus.clone();
    let output_thread = thread::Builder::new()
        .name("hostwatch-output".into())
        .spawn(move || {
            restrict_to(out_cpus.as_deref());
            output(outputs, out_rx, opts, out_control)
        });

    let bypass = Arc::new(BypassHint::new());
    let mut txs = Vec::new();
    let mut handles = Vec::new();
    let mut snapshots = Vec::new();
    for i in 0..workers {
        let (tx, rx) = bounded::<WorkMsg>(QUEUE_DEPTH);
        let snap = Arc::new(Mutex::new(WorkerSnapshot::default()));
        let mut fc = cfg.flow;
        // The caps hold for the whole sensor: each worker gets its share.
        fc.max_flows = (cfg.flow.max_flows / workers).max(1);
        fc.max_ooo_total = (cfg.flow.max_ooo_total / workers).max(1);
        // Timeouts run on the capture thread's ticks, at the same packets
        // for every worker count.
        fc.self_expire = false;
        let hint = bypass.clone();
        let (m, f, o, s) = (
            matcher.clone(),
            free_tx.clone(),
            out_tx.clone(),
            snap.clone(),
        );
        let h = thread::Builder::new()
            .name(format!("hostwatch-worker-{i}"))
            .spawn({
                let cpus = others_cpus.clone();
                move || {
                    restrict_to(cpus.as_deref());
                    worker(fc, m, rx, f, o, s, hint)
                }
            });
        txs.push(tx);
        handles.push(h);
        snapshots.push(snap);
    }
    let mut dispatch = Dispatch {
        batch_segments: (BATCH_SEGMENTS * workers).min(MAX_BATCH_SEGMENTS),
        hint: bypass.clone(),
        pending: (0..workers).map(|_| Batch::default()).collect(),
        txs,
        free: free_rx,
    };

    let mut totals = CaptureTotals::default();
    let mut error = None;
    let mut last_ts = 0i64;
    let any_live = cfg.inputs.iter().any(|i| matches!(i, Input::Interface(_)));
    let mut last_stats = Instant::now();
    let mut last_tick = Instant::now();

    // Live interfaces are read together; files one after the other.
    let mut live = Vec::new();
    for input in &cfg.inputs {
        match input {
            Input::Interface(i) => match Source::open_live(i, &cfg.live, cfg.filter.as_deref()) {
                Ok(s) => live.push(s),
                Err(e) => {
                    error = Some(e);
                    break;
                }
            },
            Input::File(_) => {}
        }
    }
    if error.is_none() {
        if let Err(detail) = after_open() {
            error = Some(CaptureError::Setup { detail });
        }
    }
    let files: Vec<&String> = cfg
        .inputs
        .iter()
        .filter_map(|i| {
            if let Input::File(f) = i {
                Some(f)
            } else {
                None
            }
        })
        .collect();

    if error.is_none() {
        'files: for path in files {
            let mut src = match Source::open_file(path, cfg.filter.as_deref()) {
                Ok(s) => s,
                Err(e) => {
                    error = Some(e);
                    break;
                }
            };
            let mut decoder = Decoder::new(src.linktype());
            let mut next_tick = i64::MIN;
            let pb = if cfg.progress {
                progress_bar(&src)
            } else {
                None
            };
            let started = Instant::now();
            let mut n = 0u64;
            loop {
                if control.stop.load(Ordering::Relaxed) {
                    break;
                }
                match src.next() {
                    Ok(Next::Packet { ts_us, data, .. }) => {
                        n += 1;
                        last_ts = ts_us;
                        if ts_us >= next_tick {
                            // Flow timeouts run on packet time, at the same
                            // packets for every worker count.
                            if next_tick != i64::MIN {
                                dispatch.tick(ts_us);
                            }
                            next_tick = ts_us + EXPIRE_EVERY_US;
                        }
                        decoder.decode(ts_us, data, &mut |seg| dispatch.push(seg));
                        if n % 8192 == 0 {
                            if let Some(pb) = &pb {
                                if let Some(p) = src.position() {
                                    pb.set_position(p);
                                }
                                let rate = n as f64 / started.elapsed().as_secs_f64().max(1e-6);
                                pb.set_message(format!("{n} packets, {rate:.0} packets/s"));
                            }
                        }
                    }
                    Ok(Next::Idle) => {}
                    Ok(Next::End) => break,
                    Err(e) => {
                        error = Some(e);
                        add_decode(&mut totals.decode, &decoder.stats);
                        add_defrag(&mut totals.defrag, &decoder.defrag_stats());
                        if let Some(pb) = pb {
                            pb.finish_and_clear();
                        }
                        break 'files;
                    }
                }
            }
            if let Some(pb) = pb {
                pb.finish_and_clear();
            }
            add_decode(&mut totals.decode, &decoder.stats);
            add_defrag(&mut totals.defrag, &decoder.defrag_stats());
            if control.stop.load(Ordering::Relaxed) {
                break;
            }
        }
    }

    if error.is_none() && !live.is_empty() {
        let mut decoders: Vec<Decoder> = live.iter().map(|s| Decoder::new(s.linktype())).collect();
        // With several interfaces, a bounded number from each in turn.
        let burst = if live.len() > 1 { 64 } else { 1024 };
        'live: loop {
            let stopping = control.stop.load(Ordering::Relaxed);
            if !stopping {
                capture::wait_any(&live, cfg.live.timeout_ms);
            }
            let mut idle = true;
            for (src, decoder) in live.iter_mut().zip(decoders.iter_mut()) {
                // Stopping, what the kernel already holds is read first
                // (bounded: a busy link would never run dry).
                let n = if stopping { DRAIN_ON_STOP } else { burst };
                for _ in 0..n {
                    match src.next() {
                        Ok(Next::Packet { ts_us, data, .. }) => {
                            idle = false;
                            last_ts = ts_us;
                            decoder.decode(ts_us, data, &mut |seg| dispatch.push(seg));
                        }
                        Ok(Next::Idle) | Ok(Next::End) => break,
                        Err(e) => {
                            error = Some(e);
                            break 'live;
                        }
                    }
                }
            }
            if stopping {
                break 'live;
            }
            if idle || last_tick.elapsed() >= Duration::from_secs(1) {
                // Flush partial batches so a quiet network still sees events,
                // and let idle flows time out on the wall clock.
                dispatch.tick(now_us());
                last_tick = Instant::now();
            }
            if let Some(iv) = cfg.stats_interval {
                if last_stats.elapsed() >= iv {
                    last_stats = Instant::now();
                    let mut t = totals;
                    for (s, d) in live.iter_mut().zip(decoders.iter()) {
                        add_decode(&mut t.decode, &d.stats);
                        add_defrag(&mut t.defrag, &d.defrag_stats());
                        if let Some(k) = s.kernel_stats() {
                            t.kernel.received += k.received;
                            t.kernel.dropped += k.dropped;
                            t.kernel.if_dropped += k.if_dropped;
                        }
                    }
                    t.packets = t.decode.frames;
                    t.bytes = t.decode.bytes;
                    let snaps: Vec<WorkerSnapshot> = snapshots
                        .iter()
                        .filter_map(|s| s.lock().ok().map(|g| *g))
                        .collect();
                    let _ = out_tx.send(OutMsg::Stats {
                        ts_us: now_us(),
                        stats: stats_json(&t, &snaps, true),
                        last: false,
                    });
                }
            }
        }
        for (s, d) in live.iter_mut().zip(decoders.iter()) {
            add_decode(&mut totals.decode, &d.stats);
            add_defrag(&mut totals.defrag, &d.defrag_stats());
            if let Some(k) = s.kernel_stats() {
                totals.kernel.received += k.received;
                totals.kernel.dropped += k.dropped;
                totals.kernel.if_dropped += k.if_dropped;
            }
        }
        last_ts = last_ts.max(now_us());
    }

    // Drain: partial batches out, workers finish their flows.
    dispatch.send_all();
    let Dispatch { txs, .. } = dispatch;
    drop(txs);
    let finals: Vec<WorkerSnapshot> = handles
        .into_iter()
        .filter_map(|h| h.ok())
        .map(|h| h.join().unwrap_or_default())
        .collect();
    totals.packets = totals.decode.frames;
    totals.bytes = totals.decode.bytes;
    let _ = out_tx.send(OutMsg::Stats {
        ts_us: last_ts,
        stats: stats_json(&totals, &finals, any_live),
        last: true,
    });
    drop(out_tx);
    let out = match output_thread.ok().map(|h| h.join()) {
        Some(Ok(r)) => r,
        _ => OutputResult {
            inventory: Inventory::default(),
            counts: BTreeMap::new(),
            error: Some("output thread failed".into()),
            losses: Vec::new(),
        },
    };
    let inv = out.inventory;
    Outcome {
        alerts: inv.alerts(),
        events: out.counts.values().sum(),
        error,
        output_error: out.error,
        output_losses: out.losses,
        interrupted: control.stop.load(Ordering::SeqCst),
        summary: inv.summary(false),
        summary_color: inv.summary(true),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn workers_leave_a_core_to_the_capture_thread_only_when_oversubscribed() {
        // 2 cores: one worker has its own core, two leave the last to capture.
        assert_eq!(leave_one_to_capture(vec![0, 1], 1), None);
        assert_eq!(leave_one_to_capture(vec![0, 1], 2), Some(vec![0]));
        assert_eq!(leave_one_to_capture(vec![0, 1], 5), Some(vec![0]));
        // 16 cores, 15 workers: enough for all.
        assert_eq!(leave_one_to_capture((0..16).collect(), 15), None);
        // A restricted set (taskset 2,5,7) is respected.
        assert_eq!(leave_one_to_capture(vec![2, 5, 7], 3), Some(vec![2, 5]));
        // One CPU: nothing to leave.
        assert_eq!(leave_one_to_capture(vec![3], 4), None);
        assert!(!allowed_cpus().is_empty());
    }
}
