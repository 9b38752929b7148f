//! Alerts a SOC can act on: one per machine per connection, `--suppress`
//! and `--min-confidence` with exact counts, and alerts written during a
//! replay, not only at its end.

mod common;

use std::io::{BufRead, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::{fixture, of_type, s, tmp};
use hostwatch::synth::msg::{self, FILESRV01};
use hostwatch::synth::{Conn, Trace};
use serde_json::Value;

fn ip(s: &str) -> std::net::IpAddr {
    s.parse().expect("address")
}

/// An SMB2 logon of WIN-J9D866ESIJ2 from 10.20.0.77 (port `port`) to the
/// file server, appended to `t`.
fn logon(t: &mut Trace, port: u16) {
    let mut c = Conn::new(
        (ip("10.20.0.77"), port),
        (ip("10.20.0.5"), 445),
        u32::from(port),
    );
    let open = c.open();
    t.add(&c, &open);
    let trips = msg::smb2_logon_from(
        u64::from(port),
        &FILESRV01,
        "CORP",
        "svc",
        "WIN-J9D866ESIJ2",
        0,
        14393,
    );
    for (q, a) in &trips {
        let segs = c.send(true, q);
        t.add(&c, &segs);
        let segs = c.send(false, a);
        t.add(&c, &segs);
    }
    let close = c.close();
    t.add(&c, &close);
}

fn lines(text: &str) -> Vec<Value> {
    text.lines()
        .filter_map(|l| serde_json::from_str(l).ok())
        .collect()
}

fn hostwatch(args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_hostwatch"))
        .args(args)
        .output()
        .expect("run hostwatch")
}

/// Three logons of one machine at 0 s, 10 s and 100 s with `--suppress
/// 60s`: the first is written, the second held back, the third written
/// saying one was held back; the stats and the summary count it.
#[test]
fn suppress_holds_back_repeats_and_counts_them() {
    let mut t = Trace::starting_at(1_790_000_000_000_000);
    logon(&mut t, 49_700);
    t.advance(10_000_000);
    logon(&mut t, 49_701);
    t.advance(90_000_000);
    logon(&mut t, 49_702);
    let p = tmp("repeats.pcap");
    std::fs::write(&p, t.to_bytes()).expect("write");
    let path = p.display().to_string();
    let o = hostwatch(&["-q", "-r", &path]);
    assert_eq!(
        of_type(&lines(&String::from_utf8_lossy(&o.stdout)), "alert").len(),
        3
    );
    let o = hostwatch(&["-q", "--summary", "--suppress", "60s", "-r", &path]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let ev = lines(&String::from_utf8_lossy(&o.stdout));
    let alerts = of_type(&ev, "alert");
    let got: Vec<(Option<u64>, Option<u64>)> = alerts
        .iter()
        .map(|a| (a["src_port"].as_u64(), a["alert"]["suppressed"].as_u64()))
        .collect();
    assert_eq!(got, [(Some(49_700), None), (Some(49_702), Some(1))]);
    let stats = &ev.last().expect("stats")["stats"];
    assert_eq!(
        (
            stats["alerts"].as_u64(),
            stats["alerts_suppressed"].as_u64()
        ),
        (Some(2), Some(1))
    );
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(err.contains("1 more held back by --suppress"), "{err}");
    let _ = std::fs::remove_file(p);
}

/// `--min-confidence high` on the demo: the rented VM's lease (medium:
/// nothing else agrees yet) is not written; its logon, its RDP and the
/// rogue server (high) are; the one held back is counted.
#[test]
fn min_confidence_writes_only_the_surer_alerts() {
    let demo = fixture("demo/demo.pcap").display().to_string();
    let o = hostwatch(&["-q", "--min-confidence", "high", "-r", &demo]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let ev = lines(&String::from_utf8_lossy(&o.stdout));
    let got: Vec<(String, String)> = of_type(&ev, "alert")
        .iter()
        .map(|a| {
            (
                s(a, "alert.evidence").unwrap_or_default(),
                s(a, "alert.confidence").unwrap_or_default(),
            )
        })
        .collect();
    let want: Vec<(String, String)> = [
        "ntlm.client.workstation",
        "rdp.client.client_name",
        "ntlm.server.nb_computer_name",
    ]
    .iter()
    .map(|e| (e.to_string(), "high".to_string()))
    .collect();
    assert_eq!(got, want);
    let stats = &ev.last().expect("stats")["stats"];
    assert_eq!(stats["alerts_below_confidence"], 1);
    let o = hostwatch(&["-q", "--min-confidence", "certain", "-r", &demo]);
    assert_eq!(o.status.code(), Some(2));
}

/// Every capture of `fixtures/`, every name watched: no machine alerts
/// twice on one connection with the same strength of claim (a mention
/// may be followed by the machine's own claim).
#[test]
fn one_alert_per_machine_per_connection_on_every_fixture() {
    let list = tmp("everything.list");
    std::fs::write(&list, "@list everything\nre:.\n").expect("list");
    let mut caps: Vec<PathBuf> = Vec::new();
    fn walk(d: &Path, out: &mut Vec<PathBuf>) {
        for e in std::fs::read_dir(d).into_iter().flatten().flatten() {
            let p = e.path();
            if p.is_dir() {
                walk(&p, out);
            } else if p.to_string_lossy().contains(".pcap") {
                out.push(p);
            }
        }
    }
    walk(&fixture(""), &mut caps);
    caps.sort();
    let mut total = 0;
    for cap in &caps {
        let o = hostwatch(&[
            "-q",
            "--watchlist",
            &list.display().to_string(),
            "-r",
            &cap.display().to_string(),
        ]);
        let ev = lines(&String::from_utf8_lossy(&o.stdout));
        let mut seen = std::collections::BTreeSet::new();
        for a in of_type(&ev, "alert") {
            let host = s(a, "alert.hostname").unwrap_or_default();
            let machine = hostwatch::detection::watchlist::machine_key(&host);
            let named = a["alert"]["role"] == "named";
            let key = (a["flow_id"].as_u64(), machine, named);
            assert!(seen.insert(key.clone()), "{}: {key:?} twice", cap.display());
            total += 1;
        }
    }
    assert!(total > 300, "{total} alerts");
    let _ = std::fs::remove_file(list);
}

/// A replay writes its alerts as it goes: with a capture fed through a
/// pipe, the first alert is in the output file while the rest of the
/// capture is still to come.
#[test]
fn a_replay_writes_its_first_alert_before_the_end() {
    let mut head = Trace::starting_at(1_790_000_000_000_000);
    logon(&mut head, 49_700);
    // Half a minute of other traffic after it: the alert's horizon passes.
    let mut quiet = Conn::new((ip("10.20.0.15"), 50_000), (ip("10.20.0.80"), 80), 3);
    let open = quiet.open();
    head.add(&quiet, &open);
    for _ in 0..60 {
        head.advance(500_000);
        let segs = quiet.send(true, b"GET / HTTP/1.1\r\nHost: x\r\n\r\n");
        head.add(&quiet, &segs);
    }
    let mut tail = Trace::starting_at(head.now_us + 1_000_000);
    logon(&mut tail, 49_800);
    let out = tmp("growing.json");
    let _ = std::fs::remove_file(&out);
    let mut child = Command::new(env!("CARGO_BIN_EXE_hostwatch"))
        .args(["-q", "--alerts-only", "-r", "-", "-o"])
        .arg(&out)
        .stdin(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start");
    let mut stdin = child.stdin.take().expect("stdin");
    let bytes = head.to_bytes();
    stdin.write_all(&bytes).expect("head");
    stdin.flush().expect("flush");
    // The first alert arrives while the capture is still open.
    let t0 = Instant::now();
    let mut first = None;
    while first.is_none() && t0.elapsed() < Duration::from_secs(20) {
        std::thread::sleep(Duration::from_millis(100));
        let text = std::fs::read_to_string(&out).unwrap_or_default();
        first = lines(&text)
            .into_iter()
            .find(|e| e["event_type"] == "alert");
    }
    assert!(
        child.try_wait().ok().flatten().is_none(),
        "hostwatch ended early"
    );
    let first = first.expect("an alert before the end of the capture");
    assert_eq!(first["src_port"], 49_700);
    // The rest (its pcap records without a second file header).
    let rest = tail.to_bytes();
    stdin.write_all(&rest[24..]).expect("tail");
    drop(stdin);
    let status = child.wait().expect("wait");
    assert!(status.success());
    let text = std::fs::read_to_string(&out).unwrap_or_default();
    let ports: Vec<Option<u64>> = lines(&text)
        .iter()
        .filter(|e| e["event_type"] == "alert")
        .map(|e| e["src_port"].as_u64())
        .collect();
    assert_eq!(ports, [Some(49_700), Some(49_800)]);
    let _ = std::fs::remove_file(out);
    if let Some(mut e) = child.stderr.take() {
        let mut buf = String::new();
        let _ = std::io::BufReader::new(&mut e).read_line(&mut buf);
        assert!(buf.is_empty(), "{buf}");
    }
}

/// The benchmark's handshake profile (`generate --kind handshakes`):
/// every connection set up and analysed, and every planted handshake
/// found, one and two workers alike.
#[test]
fn the_handshake_profile_is_found_whole() {
    let path = common::tmp("handshakes.pcap");
    let m = hostwatch::synth::bench::write_handshakes(&path, 2_000_000, 5).expect("generate");
    assert_eq!(
        (m.rdp_handshakes, m.ntlm_exchanges),
        (m.flows / 4, m.flows / 4)
    );
    assert!(m.flows > 1_000, "{} connections", m.flows);
    for workers in [1, 2] {
        let (events, outcome, _) = common::run_files(std::slice::from_ref(&path), workers);
        let count = |t: &str| common::of_type(&events, t).len() as u64;
        assert_eq!(
            (count("rdp"), count("ntlm")),
            (m.rdp_handshakes, m.ntlm_exchanges)
        );
        let vmmanager = common::of_type(&events, "alert")
            .iter()
            .filter(|a| common::s(a, "alert.list").as_deref() == Some("vmmanager-defaults"))
            .count() as u64;
        assert_eq!(vmmanager, m.vmmanager_alerts);
        assert_eq!(outcome.error, None);
    }
    let _ = std::fs::remove_file(path);
}
