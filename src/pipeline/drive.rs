//! The capture thread's loop, for any set of packet sources read together
//! (the live interfaces, or one file): read, decode, dispatch; tick the
//! flow timeouts; write periodic stats while live.

use std::io::IsTerminal;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use crossbeam_channel::Sender;

use super::dispatch::Dispatch;
use super::report::OutMsg;
use super::stats::{self, CaptureTotals};
use super::worker::WorkerSnapshot;
use super::Control;
use crate::capture::{self, CaptureError, Next, Source};
use crate::decode::Decoder;

/// Packets read from each interface after a stop signal: what the kernel
/// already holds is not lost, and a busy link cannot delay the exit.
const DRAIN_ON_STOP: usize = 100_000;

/// How often, in packet time, workers look for timed-out flows.
const EXPIRE_EVERY_US: i64 = 1_000_000;

/// Packets read from one source before the next is looked at.
const BURST_ONE: usize = 1024;
const BURST_SEVERAL: usize = 64;

pub(super) fn now_us() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_micros() as i64)
        .unwrap_or(0)
}

/// Periodic `stats` while live.
pub(super) struct Periodic<'a> {
    pub interval: Duration,
    pub out: &'a Sender<OutMsg>,
    pub snapshots: &'a [Arc<Mutex<WorkerSnapshot>>],
}

/// The capture thread's state across sources.
pub(super) struct Drive<'a> {
    pub dispatch: Dispatch,
    pub control: &'a Control,
    pub totals: CaptureTotals,
    /// Time of the last packet read (or of the end of a live capture).
    pub last_ts: i64,
    pub periodic: Option<Periodic<'a>>,
    /// A progress bar on stderr while replaying.
    pub progress: bool,
    /// How long a live capture waits for packets before it ticks.
    pub timeout_ms: i32,
    /// The live sockets' final kernel counters.
    pub sockets: Vec<stats::SocketStats>,
}

impl Drive<'_> {
    /// Reads `sources` together until they end, a stop, or an error (events
    /// from the packets before it go on as usual).
    pub fn run(&mut self, sources: &mut [Source]) -> Result<(), CaptureError> {
        let live = sources.iter().any(Source::is_live);
        let checksums = self.totals.checksums;
        let mut decoders: Vec<Decoder> = sources
            .iter()
            .map(|s| {
                let mut d = Decoder::new(s.linktype());
                d.set_checksum_mode(checksums);
                d
            })
            .collect();
        let pb = match sources {
            [one] if self.progress && !live => progress_bar(one),
            _ => None,
        };
        let burst = if sources.len() > 1 {
            BURST_SEVERAL
        } else {
            BURST_ONE
        };
        let mut ended = vec![false; sources.len()];
        let mut warned = vec![false; sources.len()];
        let names: Vec<String> = sources
            .iter()
            .map(|s| crate::render::escape_control(s.name()))
            .collect();
        let mut next_tick = i64::MIN;
        let mut last_tick = Instant::now();
        let mut last_stats = Instant::now();
        let started = Instant::now();
        let mut count = 0u64;
        let result = 'read: loop {
            let stopping = self.control.stop.load(Ordering::Relaxed);
            if stopping && !live {
                break Ok(());
            }
            if live && !stopping {
                capture::wait_any(sources, self.timeout_ms);
            }
            let mut idle = true;
            for (i, (src, decoder)) in sources.iter_mut().zip(decoders.iter_mut()).enumerate() {
                if ended[i] {
                    continue;
                }
                // Stopping, what the kernel already holds is read first
                // (bounded: a busy link would never run dry).
                let n = if stopping { DRAIN_ON_STOP } else { burst };
                for _ in 0..n {
                    match src.next() {
                        Ok(Next::Packet {
                            ts_us,
                            data,
                            wire_len,
                            linktype,
                        }) => {
                            if let Some(lt) = linktype.filter(|lt| *lt != decoder.linktype()) {
                                decoder.set_linktype(lt);
                            }
                            idle = false;
                            count += 1;
                            note_truncated(
                                decoder,
                                &mut warned[i],
                                &names[i],
                                data.len(),
                                wire_len,
                            );
                            self.last_ts = ts_us;
                            if !live && ts_us >= next_tick {
                                // Replaying, flow timeouts run on packet time,
                                // at the same packets for every worker count.
                                if next_tick != i64::MIN {
                                    self.dispatch.tick(ts_us);
                                }
                                next_tick = ts_us.saturating_add(EXPIRE_EVERY_US);
                            }
                            let dispatch = &mut self.dispatch;
                            decoder.decode(ts_us, data, &mut |p| dispatch.push(p));
                        }
                        Ok(Next::Idle) => break,
                        Ok(Next::End) => {
                            ended[i] = true;
                            break;
                        }
                        Err(e) => break 'read Err(e),
                    }
                }
                if let Some(pb) = &pb {
                    if let Some(p) = src.position() {
                        pb.set_position(p);
                    }
                    let rate = count as f64 / started.elapsed().as_secs_f64().max(1e-6);
                    pb.set_message(format!("{count} packets, {rate:.0} packets/s"));
                }
            }
            if stopping || ended.iter().all(|e| *e) {
                break Ok(());
            }
            if live {
                if idle || last_tick.elapsed() >= Duration::from_secs(1) {
                    // Flush partial batches so a quiet network still sees
                    // events, and let idle flows time out on the wall clock.
                    self.dispatch.tick(now_us());
                    last_tick = Instant::now();
                }
                if let Some(p) = &self.periodic {
                    if last_stats.elapsed() >= p.interval {
                        last_stats = Instant::now();
                        let mut t = self.totals;
                        let mut sockets = Vec::new();
                        for (s, d) in sources.iter_mut().zip(decoders.iter()) {
                            t.add_decoder(d);
                            if let Some(k) = s.kernel_stats() {
                                t.kernel.add(&k);
                                sockets.push(socket(s, k));
                            }
                        }
                        let snaps: Vec<WorkerSnapshot> = p
                            .snapshots
                            .iter()
                            .filter_map(|s| s.lock().ok().map(|g| g.clone()))
                            .collect();
                        let _ = p.out.send(OutMsg::Stats {
                            ts_us: now_us(),
                            stats: stats::to_json(
                                &t,
                                &snaps,
                                Some(stats::capture_json(&t.kernel, &sockets, None)),
                            ),
                            last: false,
                        });
                    }
                }
            }
        };
        if let Some(pb) = pb {
            pb.finish_and_clear();
        }
        for (s, d) in sources.iter_mut().zip(decoders.iter()) {
            self.totals.add_decoder(d);
            if let Some(k) = s.kernel_stats() {
                self.totals.kernel.add(&k);
                self.sockets.push(socket(s, k));
            }
        }
        if live {
            self.last_ts = self.last_ts.max(now_us());
        }
        result
    }
}

/// Counts a packet cut short by the snapshot length, and says so once per
/// source (`warned`).
pub(super) fn note_truncated(
    decoder: &mut Decoder,
    warned: &mut bool,
    name: &str,
    captured: usize,
    wire_len: u32,
) {
    if (captured as u64) >= u64::from(wire_len) {
        return;
    }
    decoder.stats.truncated += 1;
    if !std::mem::replace(warned, true) {
        eprintln!(
            "hostwatch: {name}: packets are cut short by the capture's snapshot length (the first to {captured} of its {wire_len} bytes); what lies past the cut is not seen"
        );
    }
}

fn socket(s: &Source, kernel: crate::capture::KernelStats) -> stats::SocketStats {
    stats::SocketStats {
        interface: s.name().to_string(),
        lane: 0,
        kernel,
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
    pb.set_prefix(crate::render::escape_control(source.name()));
    Some(pb)
}
