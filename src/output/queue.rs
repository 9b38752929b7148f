//! The bounded queue in front of every network sink, and the thread that
//! empties it into a [`Transport`].
//!
//! The output thread only ever *offers* an event: when the queue is full
//! (the peer is down or slower than the sensor) the event is dropped and
//! counted, so a dead collector never stalls capture. The sender thread
//! takes batches from the front, hands them to the transport, and puts back
//! whatever the peer did not take, so a reconnect resends it. Delivery is
//! at least once: an event whose acknowledgement was lost with the
//! connection is sent again.

use std::collections::VecDeque;
use std::io;
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

/// What a transport did with a batch.
#[derive(Debug, Default)]
pub struct Delivery {
    /// Events from the front of the batch the peer took (accepted or
    /// refused); the rest is sent again after a reconnect.
    pub done: usize,
    /// Of those, events the peer refused (an error reply, a datagram too
    /// large): counted, not retried.
    pub rejected: usize,
    /// The connection failed after `done` events.
    pub error: Option<io::Error>,
}

impl Delivery {
    /// Nothing sent: there is no connection.
    pub fn not_connected() -> Delivery {
        Delivery {
            error: Some(io::Error::from(io::ErrorKind::NotConnected)),
            ..Delivery::default()
        }
    }
}

/// A connection to a collector.
pub trait Transport: Send + 'static {
    fn connect(&mut self) -> io::Result<()>;
    fn send(&mut self, batch: &[Vec<u8>]) -> Delivery;
    fn disconnect(&mut self);
}

/// Counters of one network sink, as the `stats` event reports them.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct QueueCounters {
    /// Events the peer took.
    pub sent: u64,
    /// Events dropped because the queue was full.
    pub dropped: u64,
    /// Events the peer refused.
    pub rejected: u64,
    /// Events still queued when the run ended and the peer was unreachable.
    pub undelivered: u64,
    /// Connections lost or refused.
    pub connect_failures: u64,
    /// Events waiting now.
    pub queued: u64,
    /// Most events ever waiting at once.
    pub peak: u64,
}

#[derive(Default)]
struct State {
    items: VecDeque<Vec<u8>>,
    /// Events taken by the sender and not yet settled.
    in_flight: usize,
    /// Bytes of queued and in-flight events.
    bytes: usize,
    /// No more events will come: send what is left, then stop.
    closing: bool,
    /// Stop now, whatever is left.
    abandon: bool,
    counters: QueueCounters,
}

struct Shared {
    state: Mutex<State>,
    /// Something to send, or closing.
    wake: Condvar,
    /// A batch settled.
    settled: Condvar,
    cap_events: usize,
    cap_bytes: usize,
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, State> {
        // A poisoned lock only means the sender panicked; the counters are
        // still the best account there is.
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// A network sink: the queue, and the thread sending from it.
pub struct Queued {
    shared: Arc<Shared>,
    sender: Option<JoinHandle<()>>,
}

const BACKOFF_MIN: Duration = Duration::from_millis(100);
const BACKOFF_MAX: Duration = Duration::from_secs(5);

impl Queued {
    /// Starts the sender thread. `label` names the sink in messages.
    pub fn start(
        label: String,
        transport: Box<dyn Transport>,
        cap_events: usize,
        cap_bytes: usize,
        batch: usize,
    ) -> io::Result<Queued> {
        let shared = Arc::new(Shared {
            state: Mutex::new(State::default()),
            wake: Condvar::new(),
            settled: Condvar::new(),
            cap_events: cap_events.max(1),
            cap_bytes,
        });
        let s = shared.clone();
        let sender = thread::Builder::new()
            .name("hostwatch-sink".into())
            .spawn(move || send_loop(&s, transport, &label, batch.max(1)))?;
        Ok(Queued {
            shared,
            sender: Some(sender),
        })
    }

    /// Queues a copy of `msg`, or counts it dropped when the queue is full.
    pub fn offer(&self, msg: &[u8]) -> bool {
        let mut st = self.shared.lock();
        let held = st.items.len() + st.in_flight;
        if held >= self.shared.cap_events || st.bytes + msg.len() > self.shared.cap_bytes {
            st.counters.dropped += 1;
            return false;
        }
        st.items.push_back(msg.to_vec());
        st.bytes += msg.len();
        let held = (held + 1) as u64;
        st.counters.peak = st.counters.peak.max(held);
        drop(st);
        self.shared.wake.notify_one();
        true
    }

    pub fn counters(&self) -> QueueCounters {
        let st = self.shared.lock();
        let mut c = st.counters;
        c.queued = (st.items.len() + st.in_flight) as u64;
        c
    }

    /// Waits until every queued event is settled or `deadline` passes.
    /// Returns whether the queue is empty.
    pub fn drain(&self, deadline: Instant) -> bool {
        let mut st = self.shared.lock();
        loop {
            if st.items.is_empty() && st.in_flight == 0 {
                return true;
            }
            let now = Instant::now();
            if now >= deadline {
                return false;
            }
            st = match self.shared.settled.wait_timeout(st, deadline - now) {
                Ok((g, _)) => g,
                Err(p) => p.into_inner().0,
            };
        }
    }

    /// Sends what is left until `deadline`, then stops the sender; events
    /// still queued are counted undelivered.
    pub fn close(&mut self, deadline: Instant) -> QueueCounters {
        {
            let mut st = self.shared.lock();
            st.closing = true;
        }
        self.shared.wake.notify_all();
        self.drain(deadline);
        {
            let mut st = self.shared.lock();
            st.abandon = true;
            let left = (st.items.len() + st.in_flight) as u64;
            st.counters.undelivered += left;
            st.items.clear();
        }
        self.shared.wake.notify_all();
        if let Some(h) = self.sender.take() {
            // The sender notices within one socket timeout; do not wait
            // longer than that for a peer that hangs.
            let until = Instant::now() + Duration::from_secs(6);
            while !h.is_finished() && Instant::now() < until {
                thread::sleep(Duration::from_millis(5));
            }
            if h.is_finished() {
                let _ = h.join();
            }
        }
        let mut c = self.shared.lock().counters;
        c.queued = 0;
        c
    }
}

impl Drop for Queued {
    fn drop(&mut self) {
        if self.sender.is_some() {
            self.close(Instant::now());
        }
    }
}

/// Waits `d` before the next attempt. New events do not cut it short (a
/// refused peer would otherwise be asked again for every event); only the
/// end of the run does.
fn pause(shared: &Shared, mut st: MutexGuard<'_, State>, d: Duration) {
    let until = Instant::now() + d;
    while !st.abandon {
        let now = Instant::now();
        if now >= until {
            break;
        }
        st = match shared.wake.wait_timeout(st, until - now) {
            Ok((g, _)) => g,
            Err(p) => p.into_inner().0,
        };
    }
}

fn send_loop(shared: &Shared, mut transport: Box<dyn Transport>, label: &str, batch_max: usize) {
    let mut connected = false;
    let mut backoff = BACKOFF_MIN;
    // Report an outage once, and its end.
    let mut outage = false;
    let mut batch: Vec<Vec<u8>> = Vec::with_capacity(batch_max);
    loop {
        if !connected {
            if shared.lock().abandon {
                break;
            }
            match transport.connect() {
                Ok(()) => {
                    connected = true;
                    backoff = BACKOFF_MIN;
                    if outage {
                        crate::diag::info(format_args!("output {label}: connected again"));
                        outage = false;
                    }
                }
                Err(e) => {
                    let mut st = shared.lock();
                    st.counters.connect_failures += 1;
                    if !outage {
                        crate::diag::warn(format_args!(
                            "output {label}: {e}; retrying, holding up to {} events",
                            shared.cap_events
                        ));
                        outage = true;
                    }
                    if st.abandon {
                        break;
                    }
                    pause(shared, st, backoff);
                    backoff = (backoff * 2).min(BACKOFF_MAX);
                    continue;
                }
            }
        }
        {
            let mut st = shared.lock();
            while st.items.is_empty() && !st.closing && !st.abandon {
                st = match shared.wake.wait(st) {
                    Ok(g) => g,
                    Err(p) => p.into_inner(),
                };
            }
            if st.abandon || st.items.is_empty() {
                break;
            }
            let n = st.items.len().min(batch_max);
            batch.extend(st.items.drain(..n));
            st.in_flight = n;
        }
        let d = transport.send(&batch);
        let done = d.done.min(batch.len());
        {
            let mut st = shared.lock();
            let sent_bytes: usize = batch.iter().take(done).map(Vec::len).sum();
            st.bytes -= sent_bytes.min(st.bytes);
            st.counters.rejected += d.rejected.min(done) as u64;
            st.counters.sent += (done - d.rejected.min(done)) as u64;
            // Whatever the peer did not take goes back to the front.
            for m in batch.drain(done..).rev() {
                st.items.push_front(m);
            }
            st.in_flight = 0;
        }
        batch.clear();
        shared.settled.notify_all();
        if let Some(e) = d.error {
            transport.disconnect();
            connected = false;
            let mut st = shared.lock();
            st.counters.connect_failures += 1;
            if !outage {
                crate::diag::warn(format_args!("output {label}: {e}; reconnecting"));
                outage = true;
            }
            if st.abandon {
                break;
            }
            pause(shared, st, backoff);
            backoff = (backoff * 2).min(BACKOFF_MAX);
        }
    }
    transport.disconnect();
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicBool, Ordering};

    type Got = Arc<Mutex<Vec<Vec<u8>>>>;

    /// A peer that is up or down at the test's command and records what it got.
    struct Peer {
        attempts: Arc<std::sync::atomic::AtomicUsize>,
        up: Arc<AtomicBool>,
        got: Got,
        /// Take at most this many per batch, then fail.
        fail_after: Option<usize>,
        connected: bool,
    }

    impl Transport for Peer {
        fn connect(&mut self) -> io::Result<()> {
            self.attempts.fetch_add(1, Ordering::SeqCst);
            if self.up.load(Ordering::SeqCst) {
                self.connected = true;
                Ok(())
            } else {
                Err(io::Error::new(io::ErrorKind::ConnectionRefused, "refused"))
            }
        }
        fn send(&mut self, batch: &[Vec<u8>]) -> Delivery {
            let mut got = self.got.lock().unwrap_or_else(|p| p.into_inner());
            let take = self
                .fail_after
                .take()
                .unwrap_or(batch.len())
                .min(batch.len());
            got.extend(batch[..take].iter().cloned());
            let rejected = batch[..take]
                .iter()
                .filter(|m| m.as_slice() == b"bad")
                .count();
            Delivery {
                done: take,
                rejected,
                error: (take < batch.len()).then(|| io::Error::other("reset")),
            }
        }
        fn disconnect(&mut self) {
            self.connected = false;
        }
    }

    fn peer(up: bool, fail_after: Option<usize>) -> (Peer, Arc<AtomicBool>, Got) {
        let up = Arc::new(AtomicBool::new(up));
        let got = Arc::new(Mutex::new(Vec::new()));
        (
            Peer {
                attempts: Arc::default(),
                up: up.clone(),
                got: got.clone(),
                fail_after,
                connected: false,
            },
            up,
            got,
        )
    }

    fn msgs(got: &Got) -> Vec<String> {
        got.lock()
            .unwrap_or_else(|p| p.into_inner())
            .iter()
            .map(|m| String::from_utf8_lossy(m).into_owned())
            .collect()
    }

    #[test]
    fn everything_arrives_in_order_and_rejections_are_counted() {
        let (p, _, got) = peer(true, None);
        let mut q = Queued::start("test".into(), Box::new(p), 100, 1 << 20, 7)
            .unwrap_or_else(|e| panic!("{e}"));
        for i in 0..50 {
            let m = if i == 10 {
                "bad".to_string()
            } else {
                i.to_string()
            };
            assert!(q.offer(m.as_bytes()));
        }
        let c = q.close(Instant::now() + Duration::from_secs(10));
        let want: Vec<String> = (0..50)
            .map(|i| if i == 10 { "bad".into() } else { i.to_string() })
            .collect();
        assert_eq!(msgs(&got), want);
        assert_eq!(
            (c.sent, c.rejected, c.dropped, c.undelivered, c.queued),
            (49, 1, 0, 0, 0)
        );
    }

    #[test]
    fn a_broken_batch_is_resent_from_where_it_broke() {
        let (p, _, got) = peer(true, Some(3));
        let mut q = Queued::start("test".into(), Box::new(p), 100, 1 << 20, 10)
            .unwrap_or_else(|e| panic!("{e}"));
        for i in 0..10 {
            q.offer(format!("{i}").as_bytes());
        }
        let c = q.close(Instant::now() + Duration::from_secs(10));
        assert_eq!(
            msgs(&got),
            (0..10).map(|i| i.to_string()).collect::<Vec<_>>()
        );
        assert_eq!((c.sent, c.connect_failures), (10, 1));
    }

    #[test]
    fn the_bound_holds_while_the_peer_is_down_and_the_rest_arrives_later() {
        let (p, up, got) = peer(false, None);
        let mut q = Queued::start("test".into(), Box::new(p), 5, 1 << 20, 2)
            .unwrap_or_else(|e| panic!("{e}"));
        let accepted: Vec<bool> = (0..8).map(|i| q.offer(format!("{i}").as_bytes())).collect();
        assert_eq!(
            accepted,
            [true, true, true, true, true, false, false, false]
        );
        assert_eq!(q.counters().queued, 5);
        // The sender has found the peer down at least once.
        let until = Instant::now() + Duration::from_secs(10);
        while q.counters().connect_failures == 0 && Instant::now() < until {
            thread::sleep(Duration::from_millis(5));
        }
        up.store(true, Ordering::SeqCst);
        assert!(q.drain(Instant::now() + Duration::from_secs(10)));
        q.offer(b"8");
        let c = q.close(Instant::now() + Duration::from_secs(10));
        assert_eq!(msgs(&got), ["0", "1", "2", "3", "4", "8"]);
        assert_eq!((c.sent, c.dropped, c.peak, c.undelivered), (6, 3, 5, 0));
        assert!(c.connect_failures >= 1);
    }

    #[test]
    fn a_refusing_peer_is_asked_again_only_after_the_backoff() {
        let (p, _, _) = peer(false, None);
        let attempts = p.attempts.clone();
        let mut q = Queued::start("test".into(), Box::new(p), 1_000_000, 1 << 30, 2)
            .unwrap_or_else(|e| panic!("{e}"));
        // Events keep coming for 650 ms: 100 + 200 + 400 ms of backoff fit
        // three or four attempts, not one per event.
        let until = Instant::now() + Duration::from_millis(650);
        let mut offered = 0;
        while Instant::now() < until {
            q.offer(b"x");
            offered += 1;
            thread::sleep(Duration::from_micros(200));
        }
        let n = attempts.load(Ordering::SeqCst);
        assert!((3..=4).contains(&n), "{n} attempts for {offered} events");
        q.close(Instant::now());
    }

    #[test]
    fn the_byte_bound_holds_too() {
        let (p, _, _) = peer(false, None);
        let q = Queued::start("test".into(), Box::new(p), 1000, 10, 2)
            .unwrap_or_else(|e| panic!("{e}"));
        assert!(q.offer(b"12345"));
        assert!(q.offer(b"12345"));
        assert!(!q.offer(b"1"));
        assert_eq!(q.counters().dropped, 1);
    }

    #[test]
    fn closing_with_the_peer_down_counts_the_rest_undelivered() {
        let (p, _, got) = peer(false, None);
        let mut q = Queued::start("test".into(), Box::new(p), 100, 1 << 20, 2)
            .unwrap_or_else(|e| panic!("{e}"));
        for i in 0..4 {
            q.offer(format!("{i}").as_bytes());
        }
        let c = q.close(Instant::now() + Duration::from_millis(300));
        assert!(msgs(&got).is_empty());
        assert_eq!((c.sent, c.undelivered, c.dropped), (0, 4, 0));
    }
}
