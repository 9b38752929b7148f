//! The threads that run the stages. The capture thread (the caller's)
//! reads packets and decodes them ([`drive`]), and hands TCP segments and
//! UDP datagrams in batches over `crossbeam-channel` to N workers
//! ([`dispatch`]), sharded by a symmetric flow hash so a connection always
//! lands on the same worker. Each worker owns the flow tables and a
//! detector ([`worker`]). One output thread keeps the host inventory and
//! writes the events ([`report`]); [`stats`] builds the counters, and
//! [`affinity`] keeps threads off the capture thread's core when replaying.

/// Defaults of the pipeline (the CLI's defaults).
pub mod defaults {
    /// Seconds between `stats` events while capturing live.
    pub const STATS_INTERVAL_SECS: u64 = 60;
}

mod affinity;
mod dispatch;
mod drive;
mod lanes;
mod report;
mod stats;
mod worker;

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::Duration;

use crossbeam_channel::bounded;

/// Messages of events waiting for the output thread.
const OUTPUT_QUEUE: usize = 16;

use crate::capture::{CaptureError, LiveOptions, Source};
use crate::detection::inventory::Inventory;
use crate::detection::lists::Lists;
use crate::detection::Matcher;
use crate::flow::{DatagramConfig, FlowConfig};
use crate::output::Outputs;
use dispatch::{Batch, BypassHint, Dispatch, WorkMsg, QUEUE_DEPTH};
use drive::{Drive, Periodic};
use report::{OutMsg, OutputOptions, OutputResult};
use worker::{WorkerSetup, WorkerSnapshot};

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
    /// Capture sockets per interface, live (`--capture-threads`): above
    /// one, each is a lane of an AF_PACKET fanout group that does a
    /// worker's work in place ([`lanes`]). `None`: as many as workers.
    pub capture_threads: Option<usize>,
    pub flow: FlowConfig,
    pub datagram: DatagramConfig,
    pub alerts_only: bool,
    pub sensor_name: Option<String>,
    /// Periodic `stats` events (live captures).
    pub stats_interval: Option<Duration>,
    /// Progress bar on stderr while replaying.
    pub progress: bool,
    /// How long the end of a run waits for network sinks to send what they hold.
    pub drain_timeout: Duration,
    /// Which TCP, UDP and IPv4 header checksums are checked.
    pub checksums: crate::decode::checksum::Mode,
    /// The home networks alerts are weighed against (`--home-net`).
    pub home_net: crate::detection::confidence::HomeNet,
    /// An ASN database (`--asn-db`).
    pub asn_db: Option<Arc<crate::detection::asn::AsnDb>>,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            inputs: Vec::new(),
            filter: None,
            live: LiveOptions::default(),
            workers: 1,
            capture_threads: None,
            flow: FlowConfig::default(),
            datagram: DatagramConfig::default(),
            alerts_only: false,
            sensor_name: None,
            stats_interval: None,
            progress: false,
            drain_timeout: Duration::from_secs(crate::output::defaults::DRAIN_TIMEOUT_SECS),
            checksums: Default::default(),
            home_net: Default::default(),
            asn_db: None,
        }
    }
}

/// Flags set by signal handlers.
#[derive(Debug, Default)]
pub struct Control {
    /// Stop capturing, flush, write the final stats (SIGINT, SIGTERM; a
    /// second signal while it is set ends the process at once).
    pub stop: Arc<AtomicBool>,
    /// Reopen the output file (SIGHUP).
    pub reopen: AtomicBool,
    /// Read the watch lists again (SIGHUP).
    pub reload: AtomicBool,
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

/// Runs the whole pipeline over the configured inputs.
pub fn run(
    cfg: &Config,
    matcher: Arc<Matcher>,
    outputs: Outputs,
    control: Arc<Control>,
) -> Outcome {
    run_with_hook(cfg, Lists::fixed(matcher), outputs, control, || Ok(()))
}

/// As [`run`], calling `after_open` once the live interfaces are open and
/// before any packet is read (to drop privileges).
pub fn run_with_hook<H: FnOnce() -> Result<(), String>>(
    cfg: &Config,
    lists: Arc<Lists>,
    outputs: Outputs,
    control: Arc<Control>,
    after_open: H,
) -> Outcome {
    let any_live = cfg.inputs.iter().any(|i| matches!(i, Input::Interface(_)));
    let all_live = cfg.inputs.iter().all(|i| matches!(i, Input::Interface(_)));
    let lanes = cfg.capture_threads.unwrap_or(cfg.workers).max(1);
    let fanout = all_live && !cfg.inputs.is_empty() && lanes > 1;
    let workers = if fanout { lanes } else { cfg.workers.max(1) };
    // Each message carries the events of one batch (up to a few thousand):
    // a short queue bounds the events waiting for the writer (a flood of
    // records backs up to the capture instead of into memory).
    let (out_tx, out_rx) = bounded::<OutMsg>(OUTPUT_QUEUE);
    let opts = OutputOptions {
        alerts_only: cfg.alerts_only,
        sensor: cfg.sensor_name.clone(),
        live: any_live,
        drain: cfg.drain_timeout,
        enrich: cfg
            .asn_db
            .clone()
            .map(|db| crate::detection::asn::Enrichment {
                db,
                home: cfg.home_net.clone(),
            }),
    };
    // Replaying files, the capture thread (reading and decoding) is the one
    // serial stage: when the threads outnumber the cores, the others keep
    // off one core and leave it to it. Not when capturing live: the kernel
    // then does the reading, in softirq time on any core, and the capture
    // thread mostly waits, so the workers may need every core.
    let others_cpus = affinity::cpus_for_others(workers).filter(|_| !any_live);
    let output_thread = thread::Builder::new()
        .name("hostwatch-output".into())
        .spawn({
            let cpus = others_cpus.clone();
            let control = control.clone();
            let lists = lists.clone();
            move || {
                affinity::restrict_to(cpus.as_deref());
                report::run(outputs, out_rx, opts, control, lists)
            }
        });
    let end = if fanout {
        run_lanes(cfg, lanes, &lists, &control, &out_tx, after_open)
    } else {
        run_workers(
            cfg,
            workers,
            others_cpus,
            &lists,
            &control,
            &out_tx,
            after_open,
        )
    };
    let _ = out_tx.send(OutMsg::Stats {
        ts_us: end.ts_us,
        stats: end.stats,
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
        error: end.error,
        output_error: out.error,
        output_losses: out.losses,
        interrupted: control.stop.load(Ordering::SeqCst),
        summary: inv.summary(false),
        summary_color: inv.summary(true),
    }
}

/// How the capture side ended: the final stats body, its time, the error
/// that ended it early.
struct CaptureEnd {
    ts_us: i64,
    stats: serde_json::Value,
    error: Option<CaptureError>,
}

/// A worker's share of the sensor-wide caps.
fn shares(cfg: &Config, workers: usize) -> (FlowConfig, DatagramConfig) {
    let mut flow = cfg.flow;
    flow.max_flows = (cfg.flow.max_flows / workers).max(1);
    flow.max_ooo_total = (cfg.flow.max_ooo_total / workers).max(1);
    flow.memcap = (cfg.flow.memcap / workers).max(1);
    let mut datagram = cfg.datagram;
    datagram.max_conversations = (cfg.datagram.max_conversations / workers).max(1);
    (flow, datagram)
}

/// One capture thread (this one) decoding for `workers` worker threads.
fn run_workers<H: FnOnce() -> Result<(), String>>(
    cfg: &Config,
    workers: usize,
    others_cpus: Option<Vec<usize>>,
    lists: &Arc<Lists>,
    control: &Arc<Control>,
    out_tx: &crossbeam_channel::Sender<OutMsg>,
    after_open: H,
) -> CaptureEnd {
    let any_live = cfg.inputs.iter().any(|i| matches!(i, Input::Interface(_)));
    let (free_tx, free_rx) = bounded::<Batch>(workers * (QUEUE_DEPTH + 2));
    let hint = Arc::new(BypassHint::new());
    let mut txs = Vec::new();
    let mut handles = Vec::new();
    let mut snapshots = Vec::new();
    for i in 0..workers {
        let (tx, rx) = bounded::<WorkMsg>(QUEUE_DEPTH);
        let snapshot = Arc::new(Mutex::new(WorkerSnapshot::default()));
        // The caps hold for the whole sensor: each worker gets its share.
        let (mut flow, datagram) = shares(cfg, workers);
        // Timeouts run on the capture thread's ticks, at the same packets
        // for every worker count.
        flow.self_expire = false;
        let setup = WorkerSetup {
            flow,
            datagram,
            lists: lists.clone(),
            home_net: cfg.home_net.clone(),
            asn_db: cfg.asn_db.clone(),
            rx,
            free: free_tx.clone(),
            out: out_tx.clone(),
            snapshot: snapshot.clone(),
            hint: hint.clone(),
        };
        let h = thread::Builder::new()
            .name(format!("hostwatch-worker-{i}"))
            .spawn({
                let cpus = others_cpus.clone();
                move || {
                    affinity::restrict_to(cpus.as_deref());
                    worker::run(setup)
                }
            });
        txs.push(tx);
        handles.push(h);
        snapshots.push(snapshot);
    }
    let mut drive = Drive {
        dispatch: Dispatch::new(txs, free_rx, hint),
        control,
        totals: stats::CaptureTotals {
            checksums: cfg.checksums,
            ..Default::default()
        },
        last_ts: 0,
        periodic: cfg.stats_interval.map(|interval| Periodic {
            interval,
            out: out_tx,
            snapshots: &snapshots,
        }),
        progress: cfg.progress,
        timeout_ms: cfg.live.timeout_ms,
        sockets: Vec::new(),
    };
    let error = read_inputs(cfg, &mut drive, after_open).err();

    // Drain: partial batches out, workers finish their flows.
    let Drive {
        dispatch,
        totals,
        last_ts,
        sockets,
        ..
    } = drive;
    dispatch.close();
    let finals: Vec<WorkerSnapshot> = handles
        .into_iter()
        .filter_map(|h| h.ok())
        .map(|h| h.join().unwrap_or_default())
        .collect();
    let capture = any_live.then(|| stats::capture_json(&totals.kernel, &sockets, None));
    CaptureEnd {
        // A run that read no packet (an input that could not be opened or
        // was empty) has no packet time: its stats are stamped with the
        // wall clock.
        ts_us: if totals.decode.frames == 0 {
            drive::now_us()
        } else {
            last_ts
        },
        stats: stats::to_json(&totals, &finals, capture),
        error,
    }
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

/// Fanout capture: `lanes` threads, each reading its socket of every
/// interface and analysing in place ([`lanes`]); this thread writes the
/// periodic stats.
fn run_lanes<H: FnOnce() -> Result<(), String>>(
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
        ts_us: drive::now_us(),
        stats: stats::to_json(
            &totals,
            &[],
            Some(stats::capture_json(
                &totals.kernel,
                &[],
                Some((lanes, lanes::Handoff::default())),
            )),
        ),
        error: Some(error),
    };
    let per_lane = match open_fanout(cfg, lanes) {
        Ok(p) => p,
        Err(e) => return failed(e),
    };
    if let Err(detail) = after_open() {
        return failed(CaptureError::Setup { detail });
    }
    let (free_tx, free_rx) = bounded::<Batch>(lanes * (QUEUE_DEPTH + 2));
    let (txs, rxs): (Vec<_>, Vec<_>) = (0..lanes)
        .map(|_| bounded::<WorkMsg>(QUEUE_DEPTH * 4))
        .unzip();
    let hint = Arc::new(BypassHint::new());
    let mut handles = Vec::new();
    let mut reports = Vec::new();
    let mut snapshots = Vec::new();
    for (index, (sources, inbox)) in per_lane.into_iter().zip(rxs).enumerate() {
        let (flow, datagram) = shares(cfg, lanes);
        let snapshot = Arc::new(Mutex::new(WorkerSnapshot::default()));
        let report = Arc::new(Mutex::new(lanes::LaneReport::default()));
        let detector = crate::detection::Detector::with_lists(lists.clone(), cfg.home_net.clone())
            .with_asn_db(cfg.asn_db.clone());
        let setup = lanes::LaneSetup {
            index,
            sources,
            analysis: worker::Analysis::new(
                flow,
                datagram,
                detector,
                out_tx.clone(),
                snapshot.clone(),
            ),
            reshard: Dispatch::new(txs.clone(), free_rx.clone(), hint.clone()).nonblocking(),
            inbox,
            free: free_tx.clone(),
            hint: hint.clone(),
            control: control.clone(),
            totals,
            timeout_ms: cfg.live.timeout_ms,
            report: report.clone(),
        };
        let h = thread::Builder::new()
            .name(format!("hostwatch-lane-{index}"))
            .spawn(move || lanes::run(setup));
        handles.push(h);
        reports.push(report);
        snapshots.push(snapshot);
    }
    // The lanes' inboxes close when the last lane stops sending.
    drop(txs);
    let gather = |reports: &[Arc<Mutex<lanes::LaneReport>>]| {
        let mut t = totals;
        let mut sockets = Vec::new();
        let mut handoff = lanes::Handoff::default();
        for r in reports
            .iter()
            .filter_map(|r| r.lock().ok().map(|g| g.clone()))
        {
            t.add(&r.totals);
            sockets.extend(r.sockets);
            handoff.add(&r.handoff);
        }
        (t, sockets, handoff)
    };
    let mut last_stats = std::time::Instant::now();
    while !handles
        .iter()
        .all(|h| h.as_ref().map_or(true, |h| h.is_finished()))
    {
        thread::sleep(Duration::from_millis(100));
        if let Some(interval) = cfg.stats_interval {
            if last_stats.elapsed() >= interval {
                last_stats = std::time::Instant::now();
                let (t, sockets, handoff) = gather(&reports);
                let snaps: Vec<WorkerSnapshot> = snapshots
                    .iter()
                    .filter_map(|s| s.lock().ok().map(|g| g.clone()))
                    .collect();
                let capture = stats::capture_json(&t.kernel, &sockets, Some((lanes, handoff)));
                let _ = out_tx.send(OutMsg::Stats {
                    ts_us: drive::now_us(),
                    stats: stats::to_json(&t, &snaps, Some(capture)),
                    last: false,
                });
            }
        }
    }
    let mut finals = Vec::new();
    let mut error = None;
    for h in handles.into_iter().filter_map(|h| h.ok()) {
        if let Ok((_, snapshot, e)) = h.join() {
            finals.push(snapshot);
            error = error.or(e);
        }
    }
    let (t, sockets, handoff) = gather(&reports);
    let capture = stats::capture_json(&t.kernel, &sockets, Some((lanes, handoff)));
    CaptureEnd {
        ts_us: drive::now_us(),
        stats: stats::to_json(&t, &finals, Some(capture)),
        error,
    }
}

/// Opens the live interfaces (then calls `after_open`), replays the files
/// one after the other, then reads the interfaces together.
fn read_inputs<H: FnOnce() -> Result<(), String>>(
    cfg: &Config,
    drive: &mut Drive<'_>,
    after_open: H,
) -> Result<(), CaptureError> {
    let mut live = Vec::new();
    for input in &cfg.inputs {
        if let Input::Interface(i) = input {
            live.push(Source::open_live(i, &cfg.live, cfg.filter.as_deref())?);
        }
    }
    after_open().map_err(|detail| CaptureError::Setup { detail })?;
    for input in &cfg.inputs {
        if let Input::File(path) = input {
            let src = Source::open_file(path, cfg.filter.as_deref())?;
            drive.run(&mut [src])?;
            if drive.control.stop.load(Ordering::Relaxed) {
                return Ok(());
            }
        }
    }
    if !live.is_empty() {
        drive.run(&mut live)?;
    }
    Ok(())
}
