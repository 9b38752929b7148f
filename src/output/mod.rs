//! Output stage: every event, serialised once, goes to each sink that takes
//! its type.
//!
//! - [`file`]: files and standard output (blocking, reopened on SIGHUP);
//! - network sinks, each a bounded [`queue`] emptied by its own thread into
//!   a transport: [`net`] (TCP, UDP, Unix stream and datagram sockets, for
//!   [`syslog`] and `unix:`), [`redis`] (over [`resp`]).
//!
//! [`spec`] parses the `--output` values.

/// Defaults of the output stage (the CLI's defaults).
pub mod defaults {
    /// Seconds the end of a run waits for network outputs to send what they hold.
    pub const DRAIN_TIMEOUT_SECS: u64 = 10;
}

pub mod file;
pub mod net;
pub mod packets;
pub mod queue;
pub mod redis;
pub mod resp;
pub mod spec;
pub mod syslog;

use std::io::{self, IsTerminal, Write};
use std::time::{Instant, SystemTime, UNIX_EPOCH};

use serde_json::{json, Value};

use file::FileSink;
pub use file::MemoryOutput;
use net::{DatagramTransport, DgramEndpoint, Endpoint, Framing, StreamTransport};
use queue::{QueueCounters, Queued, Transport};
use spec::{Kind, OutputSpec, SyslogTransport, QUEUE_BYTES};
use syslog::SyslogFormat;

enum Sink {
    File(FileSink),
    /// The readable view of alerts; other events are not written.
    Pretty {
        file: FileSink,
        color: bool,
    },
    Net {
        queue: Queued,
        /// Syslog sinks wrap each event in a header.
        syslog: Option<SyslogFormat>,
    },
}

struct Output {
    label: String,
    types: Option<Vec<&'static str>>,
    sink: Sink,
    /// Events handed to this sink.
    events: u64,
}

/// The set of sinks of one run.
pub struct Outputs {
    outputs: Vec<Output>,
    scratch: Vec<u8>,
}

/// This machine's host name.
pub fn system_hostname() -> String {
    nix::unistd::gethostname()
        .map(|h| h.to_string_lossy().into_owned())
        .unwrap_or_default()
}

/// An output's error, naming the output.
fn named(label: &str, e: io::Error) -> io::Error {
    io::Error::new(e.kind(), format!("{label}: {e}"))
}

fn now_us() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_micros()).unwrap_or(i64::MAX))
        .unwrap_or(0)
}

impl Outputs {
    /// Opens every sink. Files must open now (before capture starts, so a
    /// bad path is one line and no packet is read); network sinks connect in
    /// their own threads and hold events until their peer is there.
    /// `hostname` is the syslog HOSTNAME.
    pub fn open(specs: &[OutputSpec], hostname: &str) -> io::Result<Outputs> {
        let mut outputs = Vec::with_capacity(specs.len());
        for spec in specs {
            let label = spec.label();
            let start = |t: Box<dyn Transport>| {
                Queued::start(label.clone(), t, spec.queue, QUEUE_BYTES, spec.batch)
            };
            let sink = match &spec.kind {
                Kind::Stdout | Kind::File(_) => {
                    let file = match &spec.kind {
                        Kind::File(p) => FileSink::open(p).map_err(|e| {
                            io::Error::new(e.kind(), format!("{}: cannot write: {e}", p.display()))
                        })?,
                        _ => FileSink::stdout()?,
                    };
                    if spec.pretty {
                        let color = matches!(spec.kind, Kind::Stdout)
                            && io::stdout().is_terminal()
                            && std::env::var_os("NO_COLOR").is_none();
                        Sink::Pretty { file, color }
                    } else {
                        Sink::File(file)
                    }
                }
                Kind::Unix { path, datagram } => {
                    let t: Box<dyn Transport> = if *datagram {
                        Box::new(DatagramTransport::new(DgramEndpoint::Unix(path.clone())))
                    } else {
                        Box::new(StreamTransport::new(
                            Endpoint::Unix(path.clone()),
                            Framing::Newline,
                        ))
                    };
                    Sink::Net {
                        queue: start(t)?,
                        syslog: None,
                    }
                }
                Kind::Syslog(s) => {
                    let t: Box<dyn Transport> = match &s.transport {
                        SyslogTransport::Local(p) => {
                            Box::new(DatagramTransport::new(DgramEndpoint::Unix(p.clone())))
                        }
                        SyslogTransport::Udp(a) => {
                            Box::new(DatagramTransport::new(DgramEndpoint::Udp(a.clone())))
                        }
                        SyslogTransport::Tcp(a) => Box::new(StreamTransport::new(
                            Endpoint::Tcp(a.clone()),
                            if s.octet_counting {
                                Framing::OctetCount
                            } else {
                                Framing::Newline
                            },
                        )),
                    };
                    Sink::Net {
                        queue: start(t)?,
                        syslog: Some(SyslogFormat::new(s, hostname, std::process::id())),
                    }
                }
                Kind::Redis(r) => Sink::Net {
                    queue: start(Box::new(redis::RedisTransport::new(r.clone())))?,
                    syslog: None,
                },
            };
            outputs.push(Output {
                label,
                types: spec.types.clone(),
                sink,
                events: 0,
            });
        }
        Ok(Outputs {
            outputs,
            scratch: Vec::new(),
        })
    }

    /// One sink writing into any writer (tests, the demo).
    pub fn from_writer(w: Box<dyn Write + Send>) -> Outputs {
        Outputs {
            outputs: vec![Output {
                label: "stdout".into(),
                types: None,
                sink: Sink::File(FileSink::from_writer(w)),
                events: 0,
            }],
            scratch: Vec::new(),
        }
    }

    /// Hands one event (a JSON line, newline included) to every sink that
    /// takes `event_type`. Only a file that cannot be written is an error;
    /// a network sink that cannot keep up drops and counts.
    pub fn event(&mut self, event_type: &str, line: &[u8]) -> io::Result<()> {
        let json = line.strip_suffix(b"\n").unwrap_or(line);
        let mut now = None;
        for o in &mut self.outputs {
            if o.types.as_ref().is_some_and(|t| !t.contains(&event_type)) {
                continue;
            }
            match &mut o.sink {
                Sink::Pretty { file, color } => {
                    // Alerts only, rendered from the line every sink gets.
                    if event_type != "alert" {
                        continue;
                    }
                    let text = serde_json::from_slice(json)
                        .ok()
                        .and_then(|e| crate::render::alert::alert(&e, *color));
                    if let Some(t) = text {
                        o.events += 1;
                        file.write_all(format!("{t}\n\n").as_bytes())
                            .map_err(|e| named(&o.label, e))?;
                    }
                }
                Sink::File(f) => {
                    o.events += 1;
                    f.write_all(line).map_err(|e| named(&o.label, e))?;
                }
                Sink::Net {
                    queue,
                    syslog: None,
                } => {
                    o.events += 1;
                    queue.offer(json);
                }
                Sink::Net {
                    queue,
                    syslog: Some(fmt),
                } => {
                    o.events += 1;
                    self.scratch.clear();
                    let t = *now.get_or_insert_with(now_us);
                    fmt.message(event_type, json, t, &mut self.scratch);
                    queue.offer(&self.scratch);
                }
            }
        }
        Ok(())
    }

    pub fn flush(&mut self) -> io::Result<()> {
        for o in &mut self.outputs {
            if let Sink::File(f) | Sink::Pretty { file: f, .. } = &mut o.sink {
                f.flush().map_err(|e| named(&o.label, e))?;
            }
        }
        Ok(())
    }

    /// Reopens the files (SIGHUP); the first failure is returned, the other
    /// files are still reopened.
    pub fn reopen(&mut self) -> io::Result<()> {
        let mut first = Ok(());
        for o in &mut self.outputs {
            if let Sink::File(f) | Sink::Pretty { file: f, .. } = &mut o.sink {
                if let Err(e) = f.reopen() {
                    if first.is_ok() {
                        first = Err(io::Error::new(e.kind(), format!("{}: {e}", o.label)));
                    }
                }
            }
        }
        first
    }

    /// Waits until the network sinks have sent what they hold, or `deadline`.
    pub fn drain(&self, deadline: Instant) {
        for o in &self.outputs {
            if let Sink::Net { queue, .. } = &o.sink {
                queue.drain(deadline);
            }
        }
    }

    /// Per-sink counters, for the `stats` event.
    pub fn stats(&self) -> Value {
        Value::Array(
            self.outputs
                .iter()
                .map(|o| match &o.sink {
                    Sink::File(_) | Sink::Pretty { .. } => {
                        json!({ "output": o.label, "events": o.events })
                    }
                    Sink::Net { queue, .. } => counters_json(&o.label, o.events, &queue.counters()),
                })
                .collect(),
        )
    }

    /// Flushes the files and gives the network sinks until `deadline` to
    /// send what they hold. Returns a line for each sink that lost events.
    pub fn close(&mut self, deadline: Instant) -> Vec<String> {
        let _ = self.flush();
        let mut losses = Vec::new();
        for o in &mut self.outputs {
            if let Sink::Net { queue, .. } = &mut o.sink {
                let c = queue.close(deadline);
                let lost = c.dropped + c.undelivered + c.rejected;
                if lost > 0 {
                    losses.push(format!(
                        "output {}: {} of {} events not delivered ({} dropped with the queue full, {} refused, {} still queued at exit)",
                        o.label, lost, o.events, c.dropped, c.rejected, c.undelivered
                    ));
                }
            }
        }
        losses
    }
}

fn counters_json(label: &str, events: u64, c: &QueueCounters) -> Value {
    json!({
        "output": label,
        "events": events,
        "sent": c.sent,
        "dropped": c.dropped,
        "rejected": c.rejected,
        "queued": c.queued,
        "queue_peak": c.peak,
        "connect_failures": c.connect_failures,
    })
}
