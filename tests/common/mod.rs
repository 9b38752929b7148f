//! Helpers shared by the integration tests: run the real pipeline over a
//! capture and read back its JSON lines.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::sync::Arc;

use hostwatch::detection::Matcher;
use hostwatch::output::{MemoryOutput, Outputs};
use hostwatch::pipeline::{self, Config, Control, Input, Outcome};
use serde_json::Value;

/// A path for `name` in a directory of its own, removed with everything
/// in it when the value goes (a failing test's included): tests leave
/// nothing in the system's temporary directory.
pub struct Tmp {
    path: PathBuf,
    _dir: tempfile::TempDir,
}

pub fn tmp(name: &str) -> Tmp {
    let dir = tempfile::Builder::new()
        .prefix(concat!("hostwatch-", env!("CARGO_CRATE_NAME"), "-"))
        .tempdir()
        .expect("temp dir");
    Tmp {
        path: dir.path().join(name),
        _dir: dir,
    }
}

impl std::ops::Deref for Tmp {
    type Target = Path;
    fn deref(&self) -> &Path {
        &self.path
    }
}

impl AsRef<Path> for Tmp {
    fn as_ref(&self) -> &Path {
        &self.path
    }
}

impl AsRef<std::ffi::OsStr> for Tmp {
    fn as_ref(&self) -> &std::ffi::OsStr {
        self.path.as_os_str()
    }
}

pub fn fixture(rel: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("fixtures")
        .join(rel)
}

/// Runs the pipeline as `cfg` says with the built-in lists; returns the
/// events, the outcome and the output's text.
pub fn run_config(cfg: Config) -> (Vec<Value>, Outcome, String) {
    let matcher = Arc::new(Matcher::with_builtins(true, Vec::new()).expect("built-in lists"));
    run_with(cfg, matcher)
}

/// As [`run_config`], with `matcher`'s lists.
pub fn run_with(cfg: Config, matcher: Arc<Matcher>) -> (Vec<Value>, Outcome, String) {
    let buf = MemoryOutput::default();
    let outcome = pipeline::run(
        &cfg,
        matcher,
        Outputs::from_writer(Box::new(buf.clone())),
        Arc::new(Control::default()),
    );
    let text = String::from_utf8(buf.contents()).expect("utf-8 output");
    let events = text
        .lines()
        .map(|l| serde_json::from_str(l).expect("each line is JSON"))
        .collect();
    (events, outcome, text)
}

pub fn run_files<P: AsRef<Path>>(paths: &[P], workers: usize) -> (Vec<Value>, Outcome, String) {
    let cfg = Config {
        inputs: paths
            .iter()
            .map(|p| Input::File(p.as_ref().display().to_string()))
            .collect(),
        workers,
        ..Config::default()
    };
    run_config(cfg)
}

pub fn run_file(path: &Path) -> Vec<Value> {
    let (events, outcome, _) = run_files(&[path.to_path_buf()], 1);
    assert!(
        outcome.error.is_none(),
        "{}: {:?}",
        path.display(),
        outcome.error
    );
    events
}

pub fn of_type<'a>(events: &'a [Value], t: &str) -> Vec<&'a Value> {
    events.iter().filter(|e| e["event_type"] == t).collect()
}

/// A string field by dotted path, `None` when absent.
pub fn get<'a>(v: &'a Value, path: &str) -> Option<&'a Value> {
    let mut cur = v;
    for p in path.split('.') {
        cur = cur.get(p)?;
    }
    Some(cur)
}

pub fn s(v: &Value, path: &str) -> Option<String> {
    get(v, path).and_then(|x| x.as_str().map(str::to_owned))
}

/// Every Ethernet frame of `frames` carrying IPv4 or IPv6 whose IP payload
/// is longer than `min_body`, cut into IP fragments of 48 bytes sent in
/// reverse order, as a router (or an attacker) may; other frames as they
/// are. IPv4 fragments get a header checksum of their own.
pub fn fragment_frames(frames: &[(i64, Vec<u8>)], min_body: usize) -> Vec<(i64, Vec<u8>)> {
    use hostwatch::decode::checksum::{add, fold};
    let mut out = Vec::new();
    let mut id = 1u32;
    for (ts, frame) in frames {
        let v6 = frame.get(12..14) == Some(&[0x86, 0xdd][..]);
        let v4 = frame.get(12..14) == Some(&[0x08, 0x00][..]);
        let ip = &frame[14..];
        let hlen = if v6 {
            40
        } else {
            usize::from(ip[0] & 0x0f) * 4
        };
        if !(v4 || v6) || ip.len() - hlen <= min_body {
            out.push((*ts, frame.clone()));
            continue;
        }
        id += 1;
        let body = &ip[hlen..];
        let mut frags = Vec::new();
        for (i, chunk) in body.chunks(48).enumerate() {
            let off = i * 48;
            let more = off + chunk.len() < body.len();
            let mut f = frame[..14].to_vec();
            if v6 {
                let mut h = ip[..40].to_vec();
                let next = h[6];
                h[6] = 44;
                h[4..6].copy_from_slice(&((8 + chunk.len()) as u16).to_be_bytes());
                f.extend_from_slice(&h);
                f.extend_from_slice(&[next, 0]);
                f.extend_from_slice(&((((off / 8) as u16) << 3) | u16::from(more)).to_be_bytes());
                f.extend_from_slice(&id.to_be_bytes());
            } else {
                let mut h = ip[..hlen].to_vec();
                h[2..4].copy_from_slice(&((hlen + chunk.len()) as u16).to_be_bytes());
                h[4..6].copy_from_slice(&(id as u16).to_be_bytes());
                h[6..8].copy_from_slice(
                    &((off / 8) as u16 | if more { 0x2000 } else { 0 }).to_be_bytes(),
                );
                // As a router does: the header checksum over the new header.
                h[10..12].copy_from_slice(&[0, 0]);
                let sum = !fold(add(0, &h));
                h[10..12].copy_from_slice(&sum.to_be_bytes());
                f.extend_from_slice(&h);
            }
            f.extend_from_slice(chunk);
            frags.push((*ts, f));
        }
        frags.reverse();
        out.extend(frags);
    }
    out
}

/// The frames of a capture (pcap or pcapng), with their times in µs.
pub fn frames_of(path: &Path) -> Vec<(i64, Vec<u8>)> {
    let mut cap = pcap::Capture::from_file(path).expect("capture opens");
    let mut frames = Vec::new();
    while let Ok(p) = cap.next_packet() {
        let ts = p.header.ts.tv_sec * 1_000_000 + p.header.ts.tv_usec;
        frames.push((ts, p.data.to_vec()));
    }
    frames
}

/// Every frame of `frames` as a mirror port sends it over ERSPAN II:
/// Ethernet / IPv4 192.0.2.1 -> 192.0.2.2 / GRE with a sequence number /
/// ERSPAN / the mirrored frame.
pub fn erspan_frames(frames: &[(i64, Vec<u8>)]) -> Vec<(i64, Vec<u8>)> {
    let mut out = Vec::new();
    for (seq, (ts, frame)) in frames.iter().enumerate() {
        let mut gre = vec![0x10, 0x00, 0x88, 0xbe];
        gre.extend_from_slice(&(seq as u32).to_be_bytes());
        gre.extend_from_slice(&[0x10, 0x05, 0x00, 0x01, 0, 0, 0, 0]);
        gre.extend_from_slice(frame);
        let mut outer = vec![2, 0, 0, 0, 0, 9, 2, 0, 0, 0, 0, 8, 0x08, 0x00];
        let mut ipb = Vec::new();
        let _ = etherparse::PacketBuilder::ipv4([192, 0, 2, 1], [192, 0, 2, 2], 64).write(
            &mut ipb,
            etherparse::IpNumber::GRE,
            &gre,
        );
        outer.extend(ipb);
        out.push((*ts, outer));
    }
    out
}

/// One SMB2 logon from `client` (port 49700) to `server` as
/// `workstation`, reporting Windows `build`, answered with `status`.
pub fn smb_logon(
    client: &str,
    server: &str,
    workstation: &str,
    build: u16,
    status: u32,
) -> hostwatch::synth::Trace {
    use hostwatch::synth::msg::{self, FILESRV01};
    use hostwatch::synth::{Conn, Trace};
    let ip = |s: &str| s.parse::<std::net::IpAddr>().expect("address");
    let mut t = Trace::starting_at(1_790_000_000_000_000);
    let mut c = Conn::new((ip(client), 49_700), (ip(server), 445), 9);
    let open = c.open();
    t.add(&c, &open);
    let trips = msg::smb2_logon_from(0x77, &FILESRV01, "CORP", "svc", workstation, status, build);
    for (q, a) in &trips {
        let segs = c.send(true, q);
        t.add(&c, &segs);
        let segs = c.send(false, a);
        t.add(&c, &segs);
    }
    let close = c.close();
    t.add(&c, &close);
    t
}

/// `alert.corroboration` of an alert event, as strings.
pub fn corroboration(a: &Value) -> Vec<String> {
    a["alert"]["corroboration"]
        .as_array()
        .map(|v| {
            v.iter()
                .filter_map(Value::as_str)
                .map(str::to_owned)
                .collect()
        })
        .unwrap_or_default()
}
