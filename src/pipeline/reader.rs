//! The one packet reader: a set of sources read together (one capture
//! file; the live interfaces; a fanout lane's sockets), each through its own
//! decoder. The capture thread ([`super::drive`]) and the fanout lanes
//! ([`super::lanes`]) share it and differ only in their [`Sink`]: what
//! follows a decoded packet (dispatch to workers, or analysis in place)
//! and what happens between rounds.

use std::io::IsTerminal;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use super::stats::{CaptureTotals, SocketStats};
use super::Control;
use crate::capture::{self, CaptureError, Chunk, Next, Source};
use crate::decode::{checksum, Decoder, Packet};

/// Packets read from each source after a stop signal: what the kernel
/// already holds is not lost, and a busy link cannot delay the exit.
const DRAIN_ON_STOP: usize = 100_000;

/// How often, in wall-clock time, a live sink ticks while packets flow.
const LIVE_TICK: Duration = Duration::from_secs(1);

/// The wall clock, in microseconds since the epoch.
pub(super) fn now_us() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_micros() as i64)
        .unwrap_or(0)
}

/// How far a round has read its sources.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum ReadTo {
    /// Some source holds more packets; the earliest of the last times read
    /// from such sources (a source's packets come in time order).
    Behind(i64),
    /// Every source was read to its end for now: what comes later is newer
    /// than this round.
    CaughtUp,
}

/// What the reader hands packets to.
pub(super) trait Sink {
    /// A frame read at `ts_us`, before it is decoded.
    fn frame(&mut self, _ts_us: i64) {}
    /// A decoded packet; `plain` as [`Decoder::decode_placed`] says. Its
    /// payload may lie in `chunk`, which may then be kept instead of the
    /// bytes copied.
    fn packet(&mut self, p: &Packet<'_>, plain: bool, chunk: Option<&Chunk>);
    /// After each round over the sources, with how far it read them;
    /// false ends the run (the output stage is gone).
    fn round(&mut self, _read: ReadTo) -> bool {
        true
    }
    /// Live, at least once a second and whenever the network is idle:
    /// flush, expire idle flows on the wall clock, publish counters.
    fn tick(&mut self, now_us: i64, reader: &mut Reader);
    /// Live, waits up to `timeout_ms` for packets (a sink may wait less,
    /// or for more than the sources).
    fn wait(&mut self, sources: &[Source], timeout_ms: i32) {
        capture::wait_any(sources, None, timeout_ms);
    }
}

/// Sources read together, each with its decoder.
pub(super) struct Reader {
    sources: Vec<Source>,
    decoders: Vec<Decoder>,
    /// Printable names of the sources, for messages.
    names: Vec<String>,
    /// The source has said that its packets are cut by the snapshot length.
    warned: Vec<bool>,
    ended: Vec<bool>,
    /// Per source, the time of the last packet of a round that left
    /// packets unread (`None`: read to its end).
    behind: Vec<Option<i64>>,
    /// The lane these sources belong to (0 without fanout).
    lane: usize,
    /// Packets read from one source before the next is looked at.
    burst: usize,
    /// Time of the last packet read.
    pub last_ts: i64,
}

impl Reader {
    pub fn new(sources: Vec<Source>, checksums: checksum::Mode, lane: usize, burst: usize) -> Self {
        // Live sources are the interfaces in the order given, which is how
        // events name them (`in_iface`).
        let mut live = 0u8;
        let decoders = sources
            .iter()
            .map(|s| {
                let mut d = Decoder::new(s.linktype());
                d.set_checksum_mode(checksums);
                if s.is_live() {
                    d.set_iface(Some(live));
                    live = live.saturating_add(1);
                }
                d
            })
            .collect();
        let names = sources
            .iter()
            .map(|s| crate::render::escape_control(s.name()))
            .collect();
        let n = sources.len();
        Reader {
            sources,
            decoders,
            names,
            warned: vec![false; n],
            ended: vec![false; n],
            behind: vec![None; n],
            lane,
            burst,
            last_ts: 0,
        }
    }

    pub fn is_live(&self) -> bool {
        self.sources.iter().any(Source::is_live)
    }

    /// Reads until every source ends, a stop (live: after draining what
    /// the kernel holds), the sink gives up, or a capture error (the
    /// packets before it went to the sink as usual).
    pub fn run<S: Sink>(
        &mut self,
        sink: &mut S,
        control: &Control,
        timeout_ms: i32,
        progress: bool,
    ) -> Result<(), CaptureError> {
        let live = self.is_live();
        let pb = match self.sources.as_slice() {
            [one] if progress && !live => progress_bar(one),
            _ => None,
        };
        let started = Instant::now();
        let mut last_tick = Instant::now();
        let mut count = 0u64;
        // The last round left packets unread: the next reads on without
        // waiting (no poll while the ring holds a backlog).
        let mut backlog = false;
        let result = loop {
            let stopping = control.stop.load(Ordering::Relaxed);
            if stopping && !live {
                break Ok(());
            }
            if live && !stopping && !backlog {
                sink.wait(&self.sources, timeout_ms);
            }
            let n = if stopping { DRAIN_ON_STOP } else { self.burst };
            let read = match self.round(n, sink) {
                Ok(read) => read,
                Err(e) => break Err(e),
            };
            count += read;
            if let Some(pb) = &pb {
                if let Some(p) = self.sources.first().and_then(Source::position) {
                    pb.set_position(p);
                }
                let rate = count as f64 / started.elapsed().as_secs_f64().max(1e-6);
                pb.set_message(format!("{count} packets, {rate:.0} packets/s"));
            }
            let read_to = self.read_to();
            backlog = matches!(read_to, ReadTo::Behind(_));
            let more = sink.round(read_to);
            if !more || stopping || self.ended.iter().all(|e| *e) {
                break Ok(());
            }
            if live && (read == 0 || last_tick.elapsed() >= LIVE_TICK) {
                sink.tick(now_us(), self);
                last_tick = Instant::now();
            }
        };
        if let Some(pb) = pb {
            pb.finish_and_clear();
        }
        if live {
            self.last_ts = self.last_ts.max(now_us());
        }
        result
    }

    /// Up to `n` packets from each source that has not ended; how many
    /// were read.
    fn round<S: Sink>(&mut self, n: usize, sink: &mut S) -> Result<u64, CaptureError> {
        let mut read = 0;
        for i in 0..self.sources.len() {
            if self.ended[i] {
                continue;
            }
            let (src, decoder) = (&mut self.sources[i], &mut self.decoders[i]);
            // Still `Some` after `n` packets: the source holds more.
            self.behind[i] = Some(i64::MIN);
            let (warned, name) = (&mut self.warned[i], &self.names[i]);
            let mut last = None;
            let live = src.read_live(n, |ts_us, data, wire_len| {
                take(decoder, (warned, name), (ts_us, data, wire_len), None, sink);
                last = Some(ts_us);
            });
            if let Some(got) = live {
                let got = got?;
                read += got as u64;
                if let Some(ts) = last {
                    self.last_ts = ts;
                }
                // Fewer than asked for: the ring is read to its end.
                self.behind[i] = if got < n { None } else { last };
                continue;
            }
            for _ in 0..n {
                match src.next()? {
                    Next::Packet {
                        ts_us,
                        data,
                        wire_len,
                        linktype,
                        chunk,
                    } => {
                        if let Some(lt) = linktype.filter(|lt| *lt != decoder.linktype()) {
                            decoder.set_linktype(lt);
                        }
                        read += 1;
                        take(
                            decoder,
                            (warned, name),
                            (ts_us, data, wire_len),
                            chunk,
                            sink,
                        );
                        self.last_ts = ts_us;
                        self.behind[i] = Some(ts_us);
                    }
                    Next::Idle => {
                        self.behind[i] = None;
                        break;
                    }
                    Next::End => {
                        self.ended[i] = true;
                        self.behind[i] = None;
                        break;
                    }
                }
            }
        }
        Ok(read)
    }

    /// How far the last round read: the earliest last time among sources
    /// that hold more.
    pub fn read_to(&self) -> ReadTo {
        match self.behind.iter().flatten().min() {
            Some(&ts) => ReadTo::Behind(ts),
            None => ReadTo::CaughtUp,
        }
    }

    /// `base` plus what the decoders counted, and each live socket's
    /// kernel counters (added to the totals too).
    pub fn counters(&mut self, base: CaptureTotals) -> (CaptureTotals, Vec<SocketStats>) {
        let mut totals = base;
        let mut sockets = Vec::new();
        for (s, d) in self.sources.iter_mut().zip(&self.decoders) {
            totals.add_decoder(d);
            if let Some(k) = s.kernel_stats() {
                totals.kernel.add(&k);
                sockets.push(SocketStats {
                    interface: s.name().to_string(),
                    lane: self.lane,
                    kernel: k,
                });
            }
        }
        (totals, sockets)
    }
}

/// A frame read from a source (its time, bytes and length on the wire):
/// decoded, and its packets handed to the sink.
#[inline]
fn take<S: Sink>(
    decoder: &mut Decoder,
    (warned, name): (&mut bool, &str),
    (ts_us, data, wire_len): (i64, &[u8], u32),
    chunk: Option<&Chunk>,
    sink: &mut S,
) {
    if (data.len() as u64) < u64::from(wire_len) {
        note_truncated(decoder, warned, name, data.len(), wire_len);
    }
    sink.frame(ts_us);
    decoder.decode_placed(ts_us, data, &mut |p, plain| sink.packet(p, plain, chunk));
}

/// Counts a packet cut short by the snapshot length, and says so once per
/// source (`warned`).
fn note_truncated(
    decoder: &mut Decoder,
    warned: &mut bool,
    name: &str,
    captured: usize,
    wire_len: u32,
) {
    decoder.stats.truncated += 1;
    if !std::mem::replace(warned, true) {
        crate::diag::warn(format_args!(
            "{name}: packets are cut short by the capture's snapshot length (the first to {captured} of its {wire_len} bytes); what lies past the cut is not seen"
        ));
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

#[cfg(test)]
mod tests {
    use super::*;

    /// Counts what it is handed.
    #[derive(Default)]
    struct Count {
        frames: Vec<i64>,
    }

    impl Sink for Count {
        fn frame(&mut self, ts_us: i64) {
            self.frames.push(ts_us);
        }
        fn packet(&mut self, _p: &Packet<'_>, _plain: bool, _chunk: Option<&Chunk>) {}
        fn tick(&mut self, _now_us: i64, _reader: &mut Reader) {}
    }

    /// A round that leaves packets unread says how far it read (the last
    /// packet's time); one that reads a source to its end, that it caught
    /// up. Fanout lanes order hand-offs by it.
    #[test]
    fn a_round_says_how_far_it_read() {
        let path = concat!(env!("CARGO_MANIFEST_DIR"), "/fixtures/demo/demo.pcap");
        let src = match Source::open_file(path, None) {
            Ok(s) => s,
            Err(e) => panic!("the demo capture, which ships in fixtures/: {e}"),
        };
        let mut r = Reader::new(vec![src], checksum::Mode::default(), 0, 5);
        let mut sink = Count::default();
        assert_eq!(r.round(5, &mut sink).ok(), Some(5));
        assert_eq!(r.read_to(), ReadTo::Behind(sink.frames[4]));
        assert_eq!(r.round(5, &mut sink).ok(), Some(5));
        assert_eq!(r.read_to(), ReadTo::Behind(sink.frames[9]));
        // The demo's 72 frames: the rest, then the end.
        assert_eq!(r.round(1_000, &mut sink).ok(), Some(62));
        assert_eq!(r.read_to(), ReadTo::CaughtUp);
        assert_eq!(sink.frames.len(), 72);
    }
}
