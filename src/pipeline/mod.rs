//! The threads that run the stages. The capture thread (the caller's)
//! reads packets and decodes them ([`drive`]), and hands TCP segments and
//! UDP datagrams in batches over `crossbeam-channel` to N workers
//! ([`dispatch`]), sharded by a symmetric flow hash so a connection always
//! lands on the same worker. Each worker owns the flow tables and a
//! detector ([`worker`]). One output thread keeps the host inventory and
//! writes the events ([`report`]); [`stats`] builds the counters, and
//! [`affinity`] keeps threads off the capture thread's core when replaying.
//! Live there is no capture thread unless asked for (`--capture-threads 1`
//! with several workers): each worker is a lane that reads its own socket
//! (of an AF_PACKET fanout group, with several) and analyses in place
//! ([`lanes`]).

/// Defaults of the pipeline (the CLI's defaults).
pub mod defaults {
    /// Seconds between `stats` events while capturing live.
    pub const STATS_INTERVAL_SECS: u64 = 60;
}

mod affinity;
mod dispatch;
mod drive;
mod lanes;
mod reader;
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
use crate::output::packets::{PacketLog, Recorder};
use crate::output::Outputs;
use dispatch::{Batch, BypassHint, Dispatch, WorkMsg, QUEUE_DEPTH};
use drive::{Drive, Periodic};
use reader::Reader;
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
    pub home_net: crate::detection::network::HomeNet,
    /// An ASN database (`--asn-db`).
    pub asn_db: Option<Arc<crate::detection::asn::AsnDb>>,
    /// What mentioned names do (`--mentions`).
    pub mentions: crate::detection::Mentions,
    /// `--suppress`: alerts of one machine, address and list within this
    /// much packet time of the last one written are held back.
    pub suppress: Option<Duration>,
    /// `--min-confidence`: alerts below are not written.
    pub min_confidence: crate::events::Confidence,
    /// `-w`: where the packets of alerted connections are written.
    pub packet_log: Option<Arc<PacketLog>>,
}

impl Config {
    /// The live interfaces among the inputs, in order.
    pub fn interfaces(&self) -> impl Iterator<Item = &str> {
        self.inputs.iter().filter_map(|i| match i {
            Input::Interface(name) => Some(name.as_str()),
            Input::File(_) => None,
        })
    }
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
            mentions: Default::default(),
            suppress: None,
            min_confidence: crate::events::Confidence::Low,
            packet_log: None,
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
    /// What was dropped for wrong checksums, if anything: a capture edited
    /// after the fact loses data that way, and must not lose it silently.
    pub checksum_drops: Option<String>,
}

/// The line saying what the run dropped for wrong checksums, from the
/// final stats.
/// Segments, datagrams and fragments dropped for a wrong checksum.
fn checksum_drop_count(stats: &serde_json::Value) -> u64 {
    let c = &stats["checksums"];
    let n = |k: &str| c[k].as_u64().unwrap_or(0);
    n("bad_tcp").saturating_sub(n("vouched_tcp"))
        + n("bad_udp").saturating_sub(n("vouched_udp"))
        + n("bad_fragment")
}

/// The line that says what was dropped for wrong checksums, if anything was.
fn checksum_drops(stats: &serde_json::Value) -> Option<String> {
    let c = &stats["checksums"];
    let n = |k: &str| c[k].as_u64().unwrap_or(0);
    let plural = |k: u64, what: &str| format!("{k} {what}{}", if k == 1 { "" } else { "s" });
    let tcp = n("bad_tcp").saturating_sub(n("vouched_tcp"));
    let mut parts: Vec<String> = Vec::new();
    if tcp > 0 {
        let conns = n("bad_tcp_connections");
        parts.push(if conns > 0 {
            format!(
                "{} of {}",
                plural(tcp, "TCP segment"),
                plural(conns, "connection")
            )
        } else {
            plural(tcp, "TCP segment")
        });
    }
    parts.extend(
        [
            (
                n("bad_udp").saturating_sub(n("vouched_udp")),
                "UDP datagram",
            ),
            (n("bad_fragment"), "IP fragment"),
        ]
        .iter()
        .filter(|(k, _)| *k > 0)
        .map(|(k, what)| plural(*k, what)),
    );
    if parts.is_empty() {
        return None;
    }
    Some(format!(
        "{} dropped for a wrong checksum, as their receivers would drop them; a capture edited or re-addressed after the fact breaks checksums: --checksums ignore reads them anyway",
        parts.join(", ")
    ))
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
    // Live, each lane reads its socket and analyses in place: with one
    // worker, one lane (no hop between threads per packet); with several,
    // a fanout group. `--capture-threads 1` with several workers keeps one
    // capture thread feeding them.
    let in_place = all_live && !cfg.inputs.is_empty() && (lanes > 1 || cfg.workers.max(1) == 1);
    let workers = if in_place { lanes } else { cfg.workers.max(1) };
    // Each message carries the events of one batch (up to a few thousand):
    // a short queue bounds the events waiting for the writer (a flood of
    // records backs up to the capture instead of into memory).
    let (out_tx, out_rx) = bounded::<OutMsg>(OUTPUT_QUEUE);
    let opts = OutputOptions {
        alerts_only: cfg.alerts_only,
        sensor: cfg.sensor_name.clone(),
        interfaces: cfg.interfaces().map(str::to_owned).collect(),
        live: any_live,
        drain: cfg.drain_timeout,
        enrich: cfg
            .asn_db
            .clone()
            .map(|db| crate::detection::asn::Enrichment {
                db,
                home: cfg.home_net.clone(),
            }),
        workers,
        suppress_us: cfg
            .suppress
            .map(|d| i64::try_from(d.as_micros()).unwrap_or(i64::MAX)),
        min_confidence: cfg.min_confidence,
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
    let end = if in_place {
        lanes::run_all(cfg, lanes, &lists, &control, &out_tx, after_open)
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
    let checksum_drops = checksum_drops(&end.stats);
    if end.opened {
        let _ = out_tx.send(OutMsg::Stats {
            ts_us: end.ts_us,
            stats: end.stats,
            last: true,
        });
    }
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
        checksum_drops,
    }
}

/// How the capture side ended: the final stats body, its time, the error
/// that ended it early.
pub(super) struct CaptureEnd {
    pub ts_us: i64,
    pub stats: serde_json::Value,
    pub error: Option<CaptureError>,
    /// Whether any input opened: a run that never started writes no
    /// `stats` event (under `Restart=on-failure` it would repeat an
    /// all-zero one every few seconds).
    pub opened: bool,
}

/// A worker's share of the sensor-wide caps.
pub(super) fn shares(cfg: &Config, workers: usize) -> (FlowConfig, DatagramConfig) {
    let mut flow = cfg.flow;
    flow.max_flows = (cfg.flow.max_flows / workers).max(1);
    flow.max_ooo_total = (cfg.flow.max_ooo_total / workers).max(1);
    flow.memcap = (cfg.flow.memcap / workers).max(1);
    flow.syn_slots = (cfg.flow.syn_slots / workers).max(1);
    if cfg.packet_log.is_some() {
        // The packets held for `-w` take a quarter of the memory cap.
        flow.memcap -= flow.memcap / RECORDER_SHARE;
    }
    // Verifying every checksum (a tap), a wrong one is never vouched for.
    flow.vouch_checksums = cfg.checksums == crate::decode::checksum::Mode::Auto;
    let mut datagram = cfg.datagram;
    datagram.max_conversations = (cfg.datagram.max_conversations / workers).max(1);
    (flow, datagram)
}

/// `-w` holds packets in one `RECORDER_SHARE`th of `--memcap`.
const RECORDER_SHARE: usize = 4;

/// A worker's recorder for `-w`, with its share of the caps.
pub(super) fn recorder(cfg: &Config, workers: usize) -> Option<Recorder> {
    let log = cfg.packet_log.clone()?;
    let budget = (cfg.flow.memcap / workers / RECORDER_SHARE).max(1);
    // The newest quarter of the connections tracked: a verdict comes in
    // a connection's first seconds.
    let rings = cfg.flow.max_flows / workers / RECORDER_SHARE;
    Some(Recorder::new(log, budget, rings))
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
            index: i,
            flow,
            datagram,
            lists: lists.clone(),
            home_net: cfg.home_net.clone(),
            asn_db: cfg.asn_db.clone(),
            mentions: cfg.mentions,
            rx,
            free: free_tx.clone(),
            out: out_tx.clone(),
            snapshot: snapshot.clone(),
            hint: hint.clone(),
            recorder: recorder(cfg, workers),
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
    let periodic = cfg.stats_interval.map(|interval| Periodic {
        interval,
        out: out_tx,
        snapshots: &snapshots,
        last: std::time::Instant::now(),
    });
    let totals = stats::CaptureTotals {
        checksums: cfg.checksums,
        ..Default::default()
    };
    let mut drive = Drive::new(Dispatch::new(txs, free_rx, Some(hint)), totals, periodic);
    let read = read_inputs(cfg, &mut drive, control, after_open);

    // Drain: partial batches out, workers finish their flows.
    let Drive {
        dispatch,
        totals,
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
            reader::now_us()
        } else {
            read.last_ts
        },
        stats: stats::to_json(&totals, &finals, capture),
        error: read.error,
        opened: read.opened,
    }
}

/// How the inputs were read: the time of the last packet, the error that
/// ended the reading early (or said that some captures were damaged), and
/// whether any input opened at all.
struct Read {
    last_ts: i64,
    error: Option<CaptureError>,
    opened: bool,
}

/// Most files a directory given to `-r` is searched for.
const MAX_DIR_FILES: usize = 100_000;

/// The regular files under `dir`, recursively, in name order (symbolic
/// links to directories are not followed, so a loop cannot hold the walk).
fn files_under(dir: &std::path::Path) -> Result<Vec<std::path::PathBuf>, CaptureError> {
    let mut out = Vec::new();
    let mut pending = vec![dir.to_path_buf()];
    while let Some(d) = pending.pop() {
        let entries = std::fs::read_dir(&d).map_err(|e| CaptureError::Open {
            source: d.display().to_string(),
            reason: e.to_string(),
        })?;
        for entry in entries.flatten() {
            let path = entry.path();
            // Regular files only (a link to one too): a FIFO or a device
            // in the folder would block the walk.
            match entry.file_type() {
                Ok(t) if t.is_dir() => pending.push(path),
                Ok(t)
                    if (t.is_file() || (t.is_symlink() && path.is_file()))
                        && out.len() < MAX_DIR_FILES =>
                {
                    out.push(path)
                }
                _ => {}
            }
        }
    }
    out.sort();
    Ok(out)
}

/// A capture to replay: a path given to `-r`, or a file found in a
/// directory given to it (where what is not a capture is skipped, not
/// damaged).
struct Replay {
    path: String,
    found: bool,
}

fn replays(cfg: &Config) -> Result<Vec<Replay>, CaptureError> {
    let mut out = Vec::new();
    for input in &cfg.inputs {
        let Input::File(path) = input else { continue };
        let p = std::path::Path::new(path);
        if path != "-" && p.is_dir() {
            let files = files_under(p)?;
            if files.is_empty() {
                return Err(CaptureError::Open {
                    source: path.clone(),
                    reason: "an empty directory".into(),
                });
            }
            for f in files {
                out.push(Replay {
                    path: f.display().to_string(),
                    found: true,
                });
            }
        } else {
            out.push(Replay {
                path: path.clone(),
                found: false,
            });
        }
    }
    Ok(out)
}

/// Opens the live interfaces (then calls `after_open`), replays the files
/// one after the other, then reads the interfaces together. A capture that
/// cannot be read whole is named and the next one is read: an evidence
/// folder is read whole, and the run's error says how many were damaged.
fn read_inputs<H: FnOnce() -> Result<(), String>>(
    cfg: &Config,
    drive: &mut Drive<'_>,
    control: &Control,
    after_open: H,
) -> Read {
    let mut read = Read {
        last_ts: 0,
        error: None,
        opened: false,
    };
    let run = |sources: Vec<Source>, drive: &mut Drive<'_>, read: &mut Read| {
        read.opened = true;
        // Several interfaces take turns in short bursts, so that none waits
        // long behind another.
        let burst = if sources.len() > 1 { 64 } else { 1024 };
        let mut reader = Reader::new(sources, cfg.checksums, 0, burst);
        drive.start(&reader);
        let r = reader.run(drive, control, cfg.live.timeout_ms, cfg.progress);
        drive.fold(&mut reader);
        read.last_ts = read.last_ts.max(reader.last_ts);
        r
    };
    let result = (|| {
        let mut live = Vec::new();
        for input in &cfg.inputs {
            if let Input::Interface(i) = input {
                live.push(Source::open_live(i, &cfg.live, cfg.filter.as_deref())?);
            }
        }
        let files = replays(cfg)?;
        after_open().map_err(|detail| CaptureError::Setup { detail })?;
        let (mut damaged, mut skipped) = (0, 0);
        let many = files.len() > 1;
        for (i, file) in files.iter().enumerate() {
            let outcome = Source::open_file(&file.path, cfg.filter.as_deref())
                .and_then(|src| run(vec![src], drive, &mut read));
            match outcome {
                Ok(()) => {}
                // A bad filter or the like is the same for every file.
                Err(e @ (CaptureError::Filter { .. } | CaptureError::Setup { .. })) => {
                    return Err(e)
                }
                Err(e @ CaptureError::NotACapture { .. }) if file.found => {
                    crate::diag::warn(format_args!("skipped {e}"));
                    skipped += 1;
                }
                Err(e) if many => {
                    damaged += 1;
                    let next = if i + 1 < files.len() {
                        "; going on with the next"
                    } else {
                        ""
                    };
                    crate::diag::error(format_args!("{e}{next}"));
                }
                Err(e) => return Err(e),
            }
            if control.stop.load(Ordering::Relaxed) {
                return Ok(());
            }
        }
        if skipped > 0 && skipped == files.len() {
            return Err(CaptureError::Open {
                source: cfg
                    .inputs
                    .iter()
                    .filter_map(|i| match i {
                        Input::File(f) => Some(f.as_str()),
                        Input::Interface(_) => None,
                    })
                    .collect::<Vec<_>>()
                    .join(", "),
                reason: "no pcap or pcapng capture found".into(),
            });
        }
        if damaged > 0 {
            return Err(CaptureError::Batch {
                damaged,
                total: files.len(),
            });
        }
        if !live.is_empty() {
            run(live, drive, &mut read)?;
        }
        Ok(())
    })();
    read.error = result.err();
    read
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    /// What a receiver's answer vouched for was not dropped.
    #[test]
    fn the_checksum_line_leaves_out_what_was_vouched() {
        let stats = |bad_tcp: u64, vouched_tcp: u64, bad_udp: u64, vouched_udp: u64| {
            json!({"checksums": {
                "bad_tcp": bad_tcp, "vouched_tcp": vouched_tcp, "bad_tcp_connections": 1,
                "bad_udp": bad_udp, "vouched_udp": vouched_udp, "bad_fragment": 0,
            }})
        };
        assert_eq!(super::checksum_drops(&stats(2, 2, 1, 1)), None);
        assert_eq!(super::checksum_drop_count(&stats(2, 2, 1, 1)), 0);
        let line = super::checksum_drops(&stats(3, 1, 3, 1)).unwrap_or_default();
        assert!(
            line.starts_with("2 TCP segments of 1 connection, 2 UDP datagrams dropped"),
            "{line}"
        );
        assert_eq!(super::checksum_drop_count(&stats(3, 1, 3, 1)), 4);
    }
}
