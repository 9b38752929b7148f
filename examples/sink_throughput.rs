//! Throughput of the Redis output: how many events per second one sink
//! delivers to a Redis server, in each mode, with and without pipelining.
//!
//!   cargo run --release --example sink_throughput -- HOST:PORT [EVENTS]
//!
//! The events are the demo capture's own (alerts, NTLM, RDP, host, stats),
//! cycled. The producer offers them as fast as the queue takes them, so the
//! figure is the sink's delivery rate; bench/sinks.sh starts a redis-server
//! for it.

use std::io::Write;
use std::sync::Arc;
use std::time::{Duration, Instant};

use hostwatch::detection::Matcher;
use hostwatch::output::queue::Queued;
use hostwatch::output::redis::RedisTransport;
use hostwatch::output::spec::{Kind, OutputSpec, QUEUE_BYTES};
use hostwatch::output::{MemoryOutput, Outputs};
use hostwatch::pipeline::{self, Config, Control, Input};

fn demo_events() -> Result<Vec<Vec<u8>>, String> {
    let demo = concat!(env!("CARGO_MANIFEST_DIR"), "/fixtures/demo/demo.pcap");
    let cfg = Config {
        inputs: vec![Input::File(demo.into())],
        ..Config::default()
    };
    let matcher = Arc::new(Matcher::with_builtins(true, Vec::new()).map_err(|e| e.to_string())?);
    let buf = MemoryOutput::default();
    pipeline::run(
        &cfg,
        matcher,
        Outputs::from_writer(Box::new(buf.clone())),
        Arc::new(Control::default()),
    );
    let text = buf.contents();
    Ok(text
        .split(|&b| b == b'\n')
        .filter(|l| !l.is_empty())
        .map(<[u8]>::to_vec)
        .collect())
}

/// Frees the server's memory between runs.
fn delete(addr: &str, key: &str) {
    let Ok(mut c) = std::net::TcpStream::connect(addr) else {
        return;
    };
    let mut cmd = Vec::new();
    hostwatch::output::resp::command(&mut cmd, &[b"DEL", key.as_bytes()]);
    let _ = c.write_all(&cmd);
    let mut r = hostwatch::output::redis::ReplyReader::new(1 << 16);
    let _ = r.next(&mut c, |_| ());
}

fn main() {
    let mut args = std::env::args().skip(1);
    let Some(addr) = args.next() else {
        eprintln!("usage: sink_throughput HOST:PORT [EVENTS]");
        std::process::exit(2);
    };
    let n: usize = args.next().and_then(|s| s.parse().ok()).unwrap_or(200_000);
    let events = match demo_events() {
        Ok(e) if !e.is_empty() => e,
        Ok(_) => {
            eprintln!("the demo capture gave no events");
            std::process::exit(1);
        }
        Err(e) => {
            eprintln!("{e}");
            std::process::exit(1);
        }
    };
    let avg = events.iter().map(Vec::len).sum::<usize>() / events.len();
    println!(
        "{n} events per run, cycling the demo's {} (average {avg} bytes)",
        events.len()
    );
    println!(
        "{:<8} {:>6} {:>12} {:>9}",
        "mode", "batch", "events/s", "MB/s"
    );
    for mode in ["list", "rpush", "channel", "stream"] {
        for batch in [1usize, 256] {
            let url =
                format!("redis://{addr}/0?mode={mode}&key=bench-{mode}-{batch}&batch={batch}");
            let spec = match OutputSpec::parse(&url) {
                Ok(s) => s,
                Err(e) => {
                    eprintln!("{url}: {e}");
                    std::process::exit(2);
                }
            };
            let Kind::Redis(r) = spec.kind else {
                std::process::exit(2)
            };
            let t = Box::new(RedisTransport::new(r));
            let mut q = match Queued::start(url.clone(), t, 100_000, QUEUE_BYTES, batch) {
                Ok(q) => q,
                Err(e) => {
                    eprintln!("{e}");
                    std::process::exit(1);
                }
            };
            let started = Instant::now();
            let mut bytes = 0usize;
            for i in 0..n {
                let ev = &events[i % events.len()];
                // Offer again until there is room: this measures delivery,
                // not the drop counter.
                while !q.offer(ev) {
                    std::thread::sleep(Duration::from_micros(50));
                }
                bytes += ev.len();
            }
            let c = q.close(Instant::now() + Duration::from_secs(120));
            let secs = started.elapsed().as_secs_f64();
            if c.sent != n as u64 {
                eprintln!("{url}: sent {} of {n} ({c:?})", c.sent);
                std::process::exit(1);
            }
            delete(&addr, &format!("bench-{mode}-{batch}"));
            println!(
                "{mode:<8} {batch:>6} {:>12.0} {:>9.1}",
                n as f64 / secs,
                bytes as f64 / secs / 1e6
            );
        }
    }
}
