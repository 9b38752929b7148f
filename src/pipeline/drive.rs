//! The capture thread's [`Sink`]: decoded packets go to the workers in
//! batches ([`Dispatch`]); replaying, flow timeouts run on packet time;
//! live, on the wall clock, with periodic stats.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crossbeam_channel::Sender;

use super::dispatch::Dispatch;
use super::reader::{Reader, Sink};
use super::report::OutMsg;
use super::stats::{self, CaptureTotals, SocketStats};
use super::worker::WorkerSnapshot;
use crate::capture::Chunk;
use crate::decode::Packet;

/// How often, in packet time, workers look for timed-out flows.
const EXPIRE_EVERY_US: i64 = 1_000_000;

/// Periodic `stats` while live.
pub(super) struct Periodic<'a> {
    pub interval: Duration,
    pub out: &'a Sender<OutMsg>,
    pub snapshots: &'a [Arc<Mutex<WorkerSnapshot>>],
    pub last: Instant,
}

/// The capture thread's state across readers (each file, then the live
/// interfaces).
pub(super) struct Drive<'a> {
    pub dispatch: Dispatch,
    /// The counters of the readers that are done.
    pub totals: CaptureTotals,
    /// The live sockets' final kernel counters.
    pub sockets: Vec<SocketStats>,
    pub periodic: Option<Periodic<'a>>,
    /// Replaying files: flow timeouts run on packet time.
    replaying: bool,
    /// Packet time of the next replay tick.
    next_tick: i64,
}

impl<'a> Drive<'a> {
    pub fn new(dispatch: Dispatch, totals: CaptureTotals, periodic: Option<Periodic<'a>>) -> Self {
        Drive {
            dispatch,
            totals,
            sockets: Vec::new(),
            periodic,
            replaying: false,
            next_tick: i64::MIN,
        }
    }

    /// A reader starts: a file's packet clock starts with its first
    /// packet.
    pub fn start(&mut self, reader: &Reader) {
        self.replaying = !reader.is_live();
        self.next_tick = i64::MIN;
    }

    /// Adds a finished reader's counters.
    pub fn fold(&mut self, reader: &mut Reader) {
        let (totals, sockets) = reader.counters(self.totals);
        self.totals = totals;
        self.sockets.extend(sockets);
    }
}

impl Sink for Drive<'_> {
    fn frame(&mut self, ts_us: i64) {
        // Replaying, flow timeouts run on packet time, at the same packets
        // for every worker count (live, on the wall clock: `tick`).
        if self.replaying && ts_us >= self.next_tick {
            if self.next_tick != i64::MIN {
                self.dispatch.tick(ts_us, true);
            }
            self.next_tick = ts_us.saturating_add(EXPIRE_EVERY_US);
        }
    }

    fn packet(&mut self, p: &Packet<'_>, _plain: bool, chunk: Option<&Chunk>) {
        self.dispatch.push(p, chunk);
    }

    fn tick(&mut self, now_us: i64, reader: &mut Reader) {
        // Partial batches go out so a quiet network still sees events, and
        // idle flows time out on the wall clock.
        self.dispatch.tick(now_us, false);
        let Some(p) = &mut self.periodic else {
            return;
        };
        if p.last.elapsed() < p.interval {
            return;
        }
        p.last = Instant::now();
        let (totals, sockets) = reader.counters(self.totals);
        let snaps: Vec<WorkerSnapshot> = p
            .snapshots
            .iter()
            .filter_map(|s| s.lock().ok().map(|g| g.clone()))
            .collect();
        let capture = stats::capture_json(&totals.kernel, &sockets, None);
        let _ = p.out.send(OutMsg::Stats {
            ts_us: now_us,
            stats: stats::to_json(&totals, &snaps, Some(capture)),
            last: false,
        });
    }
}
