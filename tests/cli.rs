//! The command as a user runs it: the event envelope, worker-count
//! invariance, output options, exit codes, and one clear line for every
//! kind of bad input.

mod common;

use std::path::PathBuf;
use std::process::{Command, Output};

use common::{fixture, of_type, run_files, s, tmp};

fn hostwatch(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_hostwatch"))
        .args(args)
        .output()
        .expect("run hostwatch")
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

fn lines(o: &Output) -> Vec<serde_json::Value> {
    String::from_utf8_lossy(&o.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).expect("JSON line"))
        .collect()
}

#[test]
fn envelope_follows_the_contract() {
    let o = hostwatch(&[
        "-q",
        "-r",
        &fixture("lab/http-ntlm-curl-good.pcap")
            .display()
            .to_string(),
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    let ev = lines(&o);
    let n = of_type(&ev, "ntlm");
    assert_eq!(n.len(), 1);
    let e = n[0];
    assert_eq!(
        s(e, "timestamp").as_deref(),
        Some("2026-11-26T21:12:14.229582+0000")
    );
    // Values from the Community ID reference implementation.
    assert_eq!(
        s(e, "community_id").as_deref(),
        Some("1:2QqOyWJvAbdKWD8yUqALVTTJufw=")
    );
    assert_eq!(
        (s(e, "src_ip").as_deref(), e["src_port"].as_u64()),
        (Some("10.99.0.2"), Some(57158))
    );
    assert_eq!(
        (s(e, "dest_ip").as_deref(), e["dest_port"].as_u64()),
        (Some("10.99.0.1"), Some(80))
    );
    assert_eq!(s(e, "proto").as_deref(), Some("TCP"));
    assert!(e["flow_id"]
        .as_u64()
        .is_some_and(|id| id > 0 && id < 1 << 53));
    assert!(e.get("vlan").is_none());
    assert_eq!(s(e, "ntlm.result").as_deref(), Some("success"));
    assert_eq!(s(e, "ntlm.status").as_deref(), Some("200"));
    assert_eq!(s(e, "ntlm.client.response").as_deref(), Some("ntlmv2"));
    // Host events share the flow's envelope; the run ends with stats.
    assert!(of_type(&ev, "inventory")
        .iter()
        .all(|h| h["flow_id"] == e["flow_id"]));
    let last = ev.last().expect("events");
    assert_eq!(last["event_type"], "stats");
    assert_eq!(last["stats"]["events"]["ntlm"], 1);
    assert_eq!(last["stats"]["flows"]["total"], 1);
    assert_eq!(last["stats"]["decoder"]["pkts"], 17);

    // VLAN ids travel in the envelope.
    let o = hostwatch(&[
        "-q",
        "-r",
        &fixture("real/pcaps/ndpi__rdp_over_tls.pcap")
            .display()
            .to_string(),
    ]);
    let ev = lines(&o);
    let r = of_type(&ev, "rdp");
    assert_eq!(r[0]["vlan"], serde_json::json!([77]));
    assert_eq!(
        s(r[0], "community_id").as_deref(),
        Some("1:L/nOhm5O19TWfqh4ieH6cJ7O8to=")
    );
}

fn all_captures() -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = ["lab", "real/pcaps"]
        .iter()
        .flat_map(|d| {
            std::fs::read_dir(fixture(d))
                .expect("dir")
                .filter_map(|e| e.ok().map(|e| e.path()))
        })
        .filter(|p| p.to_string_lossy().contains(".pcap"))
        .collect();
    v.sort();
    v
}

/// The output with the stats' `uptime` (wall-clock seconds, the one value
/// that may differ between runs of the same input: a run on a loaded
/// machine can take over a second) written as 0.
fn without_uptime(out: &str) -> String {
    const KEY: &str = "\"uptime\":";
    let mut lines = Vec::new();
    for line in out.lines() {
        let Some(at) = line.find(KEY) else {
            lines.push(line.to_string());
            continue;
        };
        let (head, rest) = line.split_at(at + KEY.len());
        let digits = rest.bytes().take_while(u8::is_ascii_digit).count();
        lines.push(format!("{head}0{}", rest.get(digits..).unwrap_or_default()));
    }
    lines.join("\n")
}

#[test]
fn same_events_for_any_worker_count_and_identical_with_one() {
    const HOSTS: i32 = 83;
    let files = all_captures();
    let run = |workers| without_uptime(&run_files(&files, workers).2);
    let (one_a, one_b) = (run(1), run(1));
    assert_eq!(one_a, one_b, "one worker must be byte-identical run to run");
    let (two, four) = (run(2), run(4));
    let differ = |a: &str, b: &str| -> Vec<String> {
        let sa: std::collections::BTreeSet<&str> = a.lines().collect();
        let sb: std::collections::BTreeSet<&str> = b.lines().collect();
        sa.symmetric_difference(&sb)
            .take(4)
            .map(|l| l.chars().take(600).collect())
            .collect()
    };
    assert_eq!(differ(&one_a, &two), Vec::<String>::new());
    assert_eq!(differ(&one_a, &four), Vec::<String>::new());
    assert_eq!(one_a.lines().count(), two.lines().count());
    let mut by_type = std::collections::BTreeMap::new();
    for l in one_a.lines() {
        let v: serde_json::Value = serde_json::from_str(l).expect("json");
        *by_type
            .entry(v["event_type"].as_str().unwrap_or("?").to_string())
            .or_insert(0) += 1;
    }
    let want: std::collections::BTreeMap<String, i32> = [
        // One per machine per connection: the unrenamed servers of
        // PetitPotam's two connections, of Suricata's SMB capture and of
        // Zeek's LDAP capture.
        ("alert", 4),
        // Host, local master and domain announcements of the Windows
        // machines and Samba servers in third-party captures.
        ("browser", 14),
        // Every DHCP transaction of the Windows clients in third-party
        // captures (conformance test; a client's Solicits through its
        // back-off are one); their leased names are sightings, the names
        // of clients still asking from 0.0.0.0 are not.
        ("dhcp", 18),
        // Every Kerberos message tshark decodes whole (conformance test).
        ("krb5", 15),
        // NBNS answers naming an address other than the responder's own
        // are mentions, not sightings; the Connect-Initial of Zeek's
        // rdp-unknown-keyboard trace has a stale checksum (edited by hand)
        // and is dropped, so JOHN-PC-LAPTOP is not a sighting.
        // SMTP HELO/EHLO names of Arkime's synthetic mail sessions are
        // sightings too.
        ("inventory", HOSTS),
        // Windows machines asking for and answering names on the link.
        ("llmnr", 160),
        ("mdns", 26),
        ("nbns", 29),
        ("ntlm", 105),
        ("rdp", 16),
        // Every tree connect tshark decodes (conformance test), and each
        // of the 52 NTLM logons over SMB that reached its AUTHENTICATE
        // (EVE's smb.ntlmssp).
        ("smb", 32 + 52),
        ("smtp", 3),
        ("stats", 1),
    ]
    .iter()
    .map(|(k, v)| (k.to_string(), *v))
    .collect();
    assert_eq!(by_type, want);
}

#[test]
fn alerts_only_exit_code_and_output_file() {
    let demo = fixture("demo/demo.pcap").display().to_string();
    let o = hostwatch(&["-q", "--alerts-only", "--exit-code", "-r", &demo]);
    assert_eq!(o.status.code(), Some(3));
    let ev = lines(&o);
    assert_eq!(ev.len(), 4);
    assert!(ev.iter().all(|e| e["event_type"] == "alert"));
    // No alert: exit 0 even with --exit-code.
    let o = hostwatch(&[
        "-q",
        "--exit-code",
        "-r",
        &fixture("lab/smb3-ok-good.pcap").display().to_string(),
    ]);
    assert_eq!(o.status.code(), Some(0));
    // -o appends.
    let out = tmp("events.json");
    let _ = std::fs::remove_file(&out);
    for _ in 0..2 {
        let o = hostwatch(&[
            "-q",
            "--alerts-only",
            "-o",
            &out.display().to_string(),
            "-r",
            &demo,
        ]);
        assert!(o.status.success());
        assert!(o.stdout.is_empty());
    }
    let text = std::fs::read_to_string(&out).expect("output file");
    assert_eq!(text.lines().count(), 8);
}

#[test]
fn gzip_stdin_and_bpf_filter() {
    let gz = fixture("real/pcaps/zeek__smb__smb_many_open_files_500.pcap.gz")
        .display()
        .to_string();
    let o = hostwatch(&["-q", "-r", &gz]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(of_type(&lines(&o), "ntlm").len(), 1);

    let bytes = std::fs::read(fixture("demo/demo.pcap")).expect("demo");
    let mut child = Command::new(env!("CARGO_BIN_EXE_hostwatch"))
        .args(["-q", "--alerts-only", "-r", "-"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .expect("spawn");
    {
        use std::io::Write;
        let mut stdin = child.stdin.take().expect("stdin");
        stdin.write_all(&bytes).expect("write");
    }
    let o = child.wait_with_output().expect("wait");
    assert!(o.status.success());
    assert_eq!(lines(&o).len(), 4);

    // A BPF filter as trailing words, like tcpdump.
    let demo = fixture("demo/demo.pcap").display().to_string();
    let o = hostwatch(&["-q", "--alerts-only", "-r", &demo, "tcp", "port", "3389"]);
    assert_eq!(lines(&o).len(), 1);
    let o = hostwatch(&["-q", "-r", &demo, "-f", "tcp port ((("]);
    assert_eq!(o.status.code(), Some(2));
    assert!(
        stderr(&o).contains("invalid capture filter 'tcp port ((('"),
        "{}",
        stderr(&o)
    );
}

fn one_clear_line(o: &Output, code: i32, needle: &str) {
    let e = stderr(o);
    assert_eq!(o.status.code(), Some(code), "{e}");
    assert_eq!(e.lines().count(), 1, "not one line: {e}");
    assert!(e.starts_with("hostwatch: "), "{e}");
    assert!(e.contains(needle), "{e:?} lacks {needle:?}");
    assert!(
        !e.contains("panicked") && !e.contains("RUST_BACKTRACE"),
        "{e}"
    );
}

#[test]
fn missing_unreadable_and_garbage_files() {
    one_clear_line(
        &hostwatch(&["-r", "/nonexistent/x.pcap"]),
        1,
        "/nonexistent/x.pcap: cannot open: no such file",
    );
    let garbage = tmp("garbage.pcap");
    std::fs::write(&garbage, b"this is not a capture at all, just text\n").expect("write");
    one_clear_line(
        &hostwatch(&["-r", &garbage.display().to_string()]),
        1,
        "not a pcap or pcapng capture",
    );
    let dir = tmp("empty-dir");
    std::fs::create_dir_all(&dir).expect("dir");
    one_clear_line(
        &hostwatch(&["-r", &dir.display().to_string()]),
        1,
        "empty-dir: cannot open: an empty directory",
    );
    one_clear_line(&hostwatch(&[]), 2, "nothing to read");
}

/// What is not a capture (random bytes, a tarball, /dev/zero, compressed
/// or not, from a file or a pipe) is one line and exit 1 at once: never a
/// wait on a pipe nobody reads, and no `stats` event for a run that never
/// started.
#[test]
fn input_that_is_not_a_capture_fails_at_once() {
    use std::io::Write;
    let noise: Vec<u8> = (0..300_000u32)
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8)
        .collect();
    let gz = tmp("evidence.bin.gz");
    {
        let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        e.write_all(&noise).expect("gzip");
        std::fs::write(&gz, e.finish().expect("gzip")).expect("write");
    }
    let out = tmp("never-started.json");
    let _ = std::fs::remove_file(&out);
    let out_arg = out.display().to_string();
    for (input, needle) in [
        (
            gz.display().to_string(),
            "not a pcap or pcapng capture (gzip-compressed, starts with ",
        ),
        (
            "/dev/zero".to_string(),
            "/dev/zero: not a pcap or pcapng capture (starts with 00 00 00 00)",
        ),
    ] {
        let t = std::time::Instant::now();
        let o = hostwatch(&["-q", "-o", &out_arg, "-r", &input]);
        one_clear_line(&o, 1, needle);
        assert!(
            t.elapsed() < std::time::Duration::from_secs(5),
            "{input}: {:?}",
            t.elapsed()
        );
    }
    // Random bytes on standard input.
    let mut child = Command::new(env!("CARGO_BIN_EXE_hostwatch"))
        .args(["-q", "-o", &out_arg, "-r", "-"])
        .stdin(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("run");
    if let Some(mut stdin) = child.stdin.take() {
        // The sensor stops reading after the first bytes: the rest may not go.
        let _ = stdin.write_all(&noise);
    }
    let o = child.wait_with_output().expect("wait");
    one_clear_line(&o, 1, "<stdin>: not a pcap or pcapng capture (starts with ");
    // Nothing was written: the output holds no all-zero stats event.
    assert_eq!(std::fs::read_to_string(&out).unwrap_or_default(), "");
}

/// An evidence folder is read whole: every capture under it, in name
/// order, what is not a capture named and skipped, a damaged capture named,
/// its events before the damage kept, and exit 1 saying how many.
#[test]
fn a_directory_of_evidence_is_read_whole() {
    let dir = tmp("evidence");
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(dir.join("day2")).expect("dir");
    let demo = std::fs::read(fixture("demo/demo.pcap")).expect("demo");
    let logon = common::smb_logon("10.20.0.61", "10.20.0.5", "WIN-LIVFRVQFMKO", 17763, 0);
    std::fs::write(dir.join("day2/logon.pcap"), logon.to_bytes()).expect("write");
    std::fs::copy(
        fixture("lab/http-ntlm-curl-good.pcap"),
        dir.join("a-http.pcap"),
    )
    .expect("copy");
    std::fs::write(dir.join("notes.txt"), "seized 2026-11-30\n").expect("write");
    // Cut after the DHCP lease, inside the first SMB logon: the lease's
    // alert is kept, the file is damaged, the rest goes on.
    std::fs::write(dir.join("b-cut.pcap"), &demo[..demo.len() * 3 / 4]).expect("write");
    let d = dir.display().to_string();
    let o = hostwatch(&["-q", "-r", &d]);
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
    let e = stderr(&o);
    let lines_err: Vec<&str> = e.lines().collect();
    assert_eq!(lines_err.len(), 3, "{e}");
    assert!(
        lines_err[0].starts_with(&format!(
            "hostwatch: {d}/b-cut.pcap: capture is truncated at byte offset "
        )),
        "{e}"
    );
    assert!(lines_err[0].ends_with("; going on with the next"), "{e}");
    assert!(
        lines_err[1].starts_with(&format!(
            "hostwatch: skipped {d}/notes.txt: not a pcap or pcapng capture"
        )),
        "{e}"
    );
    assert_eq!(lines_err[2], "hostwatch: 1 of 4 files could not be read whole (named above); the events of everything readable were written");
    let ev = lines(&o);
    // The HTTP logon of curl's capture, first in name order.
    let ntlm: Vec<String> = of_type(&ev, "ntlm")
        .iter()
        .filter_map(|n| s(n, "ntlm.client.user"))
        .collect();
    assert_eq!(ntlm[0], "labuser");
    let alerts: Vec<String> = of_type(&ev, "alert")
        .iter()
        .filter_map(|a| s(a, "alert.evidence"))
        .collect();
    assert_eq!(
        alerts,
        [
            // b-cut.pcap, before the cut.
            "dhcp.hostname",
            // day2/logon.pcap, read after it.
            "ntlm.client.workstation",
        ]
    );
    assert_eq!(of_type(&ev, "stats").len(), 1);
    let _ = std::fs::remove_dir_all(&dir);
}

/// A pcap header for `linktype` followed by `records`.
fn pcap_with(linktype: u32, frames: &[&[u8]]) -> Vec<u8> {
    let mut f = vec![
        0xd4, 0xc3, 0xb2, 0xa1, 2, 0, 4, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff, 0, 0,
    ];
    f.extend_from_slice(&linktype.to_le_bytes());
    for (i, fr) in frames.iter().enumerate() {
        f.extend_from_slice(&(1_700_000_000u32 + i as u32).to_le_bytes());
        f.extend_from_slice(&0u32.to_le_bytes());
        f.extend_from_slice(&(fr.len() as u32).to_le_bytes());
        f.extend_from_slice(&(fr.len() as u32).to_le_bytes());
        f.extend_from_slice(fr);
    }
    f
}

#[test]
fn unknown_link_type_is_named() {
    let p = tmp("wifi.pcap");
    std::fs::write(&p, pcap_with(105, &[&[0u8; 30]])).expect("write");
    one_clear_line(
        &hostwatch(&["-r", &p.display().to_string()]),
        1,
        "unsupported link type 105 (IEEE802_11)",
    );
}

#[test]
fn truncated_capture_keeps_events_before_the_cut() {
    let demo = std::fs::read(fixture("demo/demo.pcap")).expect("demo");
    // Cut inside the last packet record.
    let cut = demo.len() - 20;
    let p = tmp("cut.pcap");
    std::fs::write(&p, &demo[..cut]).expect("write");
    let o = hostwatch(&["-q", "--alerts-only", "-r", &p.display().to_string()]);
    one_clear_line(&o, 1, "capture is truncated at byte offset");
    let e = stderr(&o);
    assert!(e.contains(&p.display().to_string()));
    // The offset named is where the last complete record ends.
    let mut off = 24usize;
    while off + 16 <= cut {
        let len = u32::from_le_bytes([demo[off + 8], demo[off + 9], demo[off + 10], demo[off + 11]])
            as usize;
        if off + 16 + len > cut {
            break;
        }
        off += 16 + len;
    }
    assert!(
        e.contains(&format!("offset {off} ")),
        "{e} (expected offset {off})"
    );
    // Every alert before the cut was written: all six are in earlier packets.
    assert_eq!(lines(&o).len(), 4);
}

#[test]
fn bad_watch_list_names_file_and_line() {
    let p = tmp("bad.list");
    std::fs::write(&p, "# mine\nGOOD-NAME\nre:([\n").expect("write");
    let o = hostwatch(&[
        "--watchlist",
        &p.display().to_string(),
        "-r",
        &fixture("demo/demo.pcap").display().to_string(),
    ]);
    one_clear_line(
        &o,
        2,
        &format!("{}:3: invalid regular expression", p.display()),
    );
}

#[test]
fn user_watch_list_alerts() {
    let p = tmp("mine.list");
    std::fs::write(&p, "@list lab-servers\n@severity 2\nfilesrv*\n").expect("write");
    let o = hostwatch(&[
        "-q",
        "--alerts-only",
        "--watchlist",
        &p.display().to_string(),
        "-r",
        &fixture("lab/smb3-ok-good.pcap").display().to_string(),
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    let ev = lines(&o);
    let got: Vec<(String, String)> = ev
        .iter()
        .map(|a| {
            (
                s(a, "alert.hostname").unwrap_or_default(),
                s(a, "alert.evidence").unwrap_or_default(),
            )
        })
        .collect();
    // The server's three names in its CHALLENGE: one alert, every field
    // listed, the indicator and where it was defined.
    assert_eq!(
        got,
        vec![(
            "FILESRV01".to_string(),
            "ntlm.server.nb_computer_name".to_string()
        )]
    );
    assert_eq!(
        ev[0]["alert"]["fields"],
        serde_json::json!([
            "ntlm.server.nb_computer_name",
            "ntlm.server.dns_computer_name",
            "ntlm.server.target_name"
        ])
    );
    assert_eq!(
        ev[0]["alert"]["indicator"],
        serde_json::json!({"value": "filesrv*", "kind": "glob"})
    );
    assert_eq!(ev[0]["alert"]["provenance"]["line"], 3);
    assert!(ev
        .iter()
        .all(|a| a["alert"]["list"] == "lab-servers" && a["alert"]["severity"] == 2));
}

#[test]
fn missing_interface_is_named() {
    let o = hostwatch(&["-i", "hw-no-such0"]);
    one_clear_line(&o, 1, "hw-no-such0: no such network interface");
}

#[test]
fn summary_escapes_control_characters() {
    // A client name with an escape sequence, written into a capture.
    use hostwatch::synth::{msg, Conn, Trace};
    let mut t = Trace::starting_at(1_700_000_000_000_000);
    let mut c = Conn::new(
        ([10, 0, 0, 1].into(), 40000),
        ([10, 0, 0, 2].into(), 3389),
        9,
    );
    let open = c.open();
    t.add(&c, &open);
    for (a, b) in msg::rdp_standard_logon("x", "EVIL\u{1b}[2J\nPC") {
        let s1 = c.send(true, &a);
        t.add(&c, &s1);
        let s2 = c.send(false, &b);
        t.add(&c, &s2);
    }
    let p = tmp("evil.pcap");
    std::fs::write(&p, t.to_bytes()).expect("write");
    let o = hostwatch(&["--summary", "-r", &p.display().to_string()]);
    let e = stderr(&o);
    assert!(e.contains("EVIL\\e[2J\\nPC"), "{e}");
    assert!(!e.contains('\x1b'));
    // The JSON log escapes it too.
    let out = String::from_utf8_lossy(&o.stdout);
    assert!(out.contains(r#""name":"EVIL\u001b[2J\nPC""#), "{out}");
}

#[test]
fn a_name_in_ordinary_payload_is_not_a_finding() {
    use hostwatch::synth::{msg, Conn, Trace};
    let mut t = Trace::starting_at(1_700_000_000_000_000);
    // A web page and an SMB file read that mention watched names.
    let mut web = Conn::new(([10, 0, 0, 1].into(), 40000), ([10, 0, 0, 2].into(), 80), 1);
    let open = web.open();
    t.add(&web, &open);
    let page = "WIN-J9D866ESIJ2 and WIN-LIVFRVQFMKO are on the VMmanager list";
    let resp = format!(
        "HTTP/1.1 200 OK\r\nContent-Length: {}\r\n\r\n{page}",
        page.len()
    );
    let a = web.send(true, b"GET /iocs HTTP/1.1\r\nHost: x\r\n\r\n");
    t.add(&web, &a);
    let b = web.send(false, resp.as_bytes());
    t.add(&web, &b);
    let mut smb = Conn::new(
        ([10, 0, 0, 1].into(), 40001),
        ([10, 0, 0, 3].into(), 445),
        2,
    );
    let open = smb.open();
    t.add(&smb, &open);
    let names = msg::ServerNames {
        target: "CORP",
        nb_computer: "FS",
        nb_domain: "CORP",
        dns_computer: "fs.corp",
        dns_domain: "corp",
        build: 20348,
    };
    let mut trips = msg::smb2_logon(5, &names, "CORP", "alice", "DESKTOP-1", 0);
    let file: Vec<u8> = "WIN-344VU98D3RU"
        .encode_utf16()
        .flat_map(u16::to_le_bytes)
        .chain(b"WIN-344VU98D3RU".iter().copied())
        .collect();
    trips.push(msg::smb2_read(3, 5, &file));
    for (c, s) in trips {
        let a = smb.send(true, &c);
        t.add(&smb, &a);
        let b = smb.send(false, &s);
        t.add(&smb, &b);
    }
    let p = tmp("payload.pcap");
    std::fs::write(&p, t.to_bytes()).expect("write");
    let o = hostwatch(&["-q", "-r", &p.display().to_string()]);
    let ev = lines(&o);
    assert_eq!(of_type(&ev, "ntlm").len(), 1);
    assert!(
        of_type(&ev, "alert").is_empty(),
        "{:?}",
        of_type(&ev, "alert")
    );
    let hosts: Vec<String> = of_type(&ev, "inventory")
        .iter()
        .filter_map(|h| s(h, "inventory.name"))
        .collect();
    assert_eq!(
        hosts,
        vec![
            "DESKTOP-1".to_string(),
            "FS".to_string(),
            "fs.corp".to_string()
        ]
    );
}

#[test]
fn hostile_capture_headers() {
    // A classic pcap claiming an absurd snapshot length, with real records.
    let mut demo = std::fs::read(fixture("demo/demo.pcap")).expect("demo");
    demo[16..20].copy_from_slice(&u32::MAX.to_le_bytes());
    let p = tmp("snaplen.pcap");
    std::fs::write(&p, &demo).expect("write");
    // libpcap reads the records regardless: every alert is there.
    let o = hostwatch(&["-q", "--alerts-only", "-r", &p.display().to_string()]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(lines(&o).len(), 4);

    // A pcapng with a block type nobody knows between the packets.
    let demo = std::fs::read(fixture("demo/demo.pcap")).expect("demo");
    let block = |typ: u32, body: &[u8]| {
        let mut b = typ.to_le_bytes().to_vec();
        let pad = (4 - body.len() % 4) % 4;
        let len = (12 + body.len() + pad) as u32;
        b.extend_from_slice(&len.to_le_bytes());
        b.extend_from_slice(body);
        b.extend(std::iter::repeat_n(0u8, pad));
        b.extend_from_slice(&len.to_le_bytes());
        b
    };
    let mut ng = block(
        0x0a0d_0d0a,
        &[
            0x4d, 0x3c, 0x2b, 0x1a, 1, 0, 0, 0, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
        ],
    );
    ng.extend(block(1, &[1, 0, 0, 0, 0, 0, 4, 0]));
    let mut off = 24;
    let mut n = 0;
    while off + 16 <= demo.len() {
        let sec =
            u32::from_le_bytes([demo[off], demo[off + 1], demo[off + 2], demo[off + 3]]) as u64;
        let usec =
            u32::from_le_bytes([demo[off + 4], demo[off + 5], demo[off + 6], demo[off + 7]]) as u64;
        let len = u32::from_le_bytes([demo[off + 8], demo[off + 9], demo[off + 10], demo[off + 11]])
            as usize;
        let ts = sec * 1_000_000 + usec;
        let mut epb = 0u32.to_le_bytes().to_vec();
        epb.extend_from_slice(&((ts >> 32) as u32).to_le_bytes());
        epb.extend_from_slice(&(ts as u32).to_le_bytes());
        epb.extend_from_slice(&(len as u32).to_le_bytes());
        epb.extend_from_slice(&(len as u32).to_le_bytes());
        epb.extend_from_slice(&demo[off + 16..off + 16 + len]);
        ng.extend(block(6, &epb));
        if n % 10 == 0 {
            ng.extend(block(0x0bad_0b0b, b"something unknown"));
        }
        off += 16 + len;
        n += 1;
    }
    let p = tmp("unknown-blocks.pcapng");
    std::fs::write(&p, &ng).expect("write");
    let o = hostwatch(&["-q", "--alerts-only", "-r", &p.display().to_string()]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(lines(&o).len(), 4);
}

/// `Cpus_allowed_list` of each thread of `pid`, by thread name.
fn thread_cpus(pid: u32) -> Vec<(String, String)> {
    let mut v = Vec::new();
    let Ok(tasks) = std::fs::read_dir(format!("/proc/{pid}/task")) else {
        return v;
    };
    for t in tasks.flatten() {
        let status = std::fs::read_to_string(t.path().join("status")).unwrap_or_default();
        let field = |k: &str| {
            status
                .lines()
                .find_map(|l| l.strip_prefix(k))
                .map(|x| x.trim().to_string())
                .unwrap_or_default()
        };
        v.push((field("Name:"), field("Cpus_allowed_list:")));
    }
    v.sort();
    v
}

#[test]
fn replaying_with_more_threads_than_cores_leaves_the_capture_thread_a_core() {
    use std::io::Write;
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    if cores < 2 {
        eprintln!("SKIPPED: one CPU, nothing to leave");
        return;
    }
    let mine = thread_cpus(std::process::id());
    let allowed = mine.first().map(|(_, c)| c.clone()).unwrap_or_default();
    // hostwatch reading a capture from stdin that has not ended yet.
    let mut child = Command::new(env!("CARGO_BIN_EXE_hostwatch"))
        .args(["-q", "-j", &cores.to_string(), "-r", "-", "-o", "/dev/null"])
        .stdin(std::process::Stdio::piped())
        .spawn()
        .expect("start hostwatch");
    let mut stdin = child.stdin.take().expect("stdin");
    let header = hostwatch::synth::PcapWriter::new(Vec::new())
        .expect("header")
        .into_inner();
    stdin.write_all(&header).expect("header written");
    let t = std::time::Instant::now();
    let started = |th: &[(String, String)]| {
        th.iter()
            .filter(|(n, _)| n.starts_with("hostwatch-worke"))
            .count()
            == cores
            && th.iter().any(|(n, _)| n == "hostwatch-outpu")
    };
    while !started(&thread_cpus(child.id())) && t.elapsed() < std::time::Duration::from_secs(10) {
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    // Each thread restricts itself first thing; give them that moment.
    std::thread::sleep(std::time::Duration::from_millis(200));
    let threads = thread_cpus(child.id());
    drop(stdin);
    let status = child.wait().expect("hostwatch ends");
    assert!(status.success());
    // "0-3,6" -> [0, 1, 2, 3, 6]
    let parse = |l: &str| -> Vec<usize> {
        l.split(',')
            .filter(|p| !p.is_empty())
            .flat_map(|p| {
                let (a, b) = p.split_once('-').unwrap_or((p, p));
                let (a, b) = (a.parse().unwrap_or(0), b.parse().unwrap_or(0));
                a..=b
            })
            .collect()
    };
    let allowed = parse(&allowed);
    let mut others = allowed.clone();
    others.pop();
    let mut seen = 0;
    for (name, list) in &threads {
        let set = parse(list);
        if name == "hostwatch" {
            assert_eq!(set, allowed, "the capture thread keeps every CPU");
        } else if name.starts_with("hostwatch-worke") || name == "hostwatch-outpu" {
            assert_eq!(set, others, "{name} leaves the last CPU to capture");
            seen += 1;
        }
    }
    assert_eq!(seen, cores + 1, "{threads:?}");
}

/// The first SIGINT asks for a clean stop; when that cannot finish (here
/// the capture read blocks on a pipe that stays open and silent), a second
/// one ends the process at once with 128 + SIGINT.
#[test]
fn a_second_interrupt_ends_the_process_at_once() {
    use std::io::Write;
    use std::time::{Duration, Instant};
    let mut child = Command::new(env!("CARGO_BIN_EXE_hostwatch"))
        .args(["-q", "-r", "-", "-o", "/dev/null"])
        .stdin(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("start hostwatch");
    let mut stdin = child.stdin.take().expect("stdin");
    let header = hostwatch::synth::PcapWriter::new(Vec::new())
        .expect("header")
        .into_inner();
    stdin.write_all(&header).expect("header written");
    // Wait until the capture thread blocks reading the pipe (its system
    // call, in /proc, is read(2): number 0 on x86-64, 63 on arm64).
    let read_nr = if cfg!(target_arch = "aarch64") {
        "63"
    } else {
        "0"
    };
    let blocked = || {
        std::fs::read_to_string(format!("/proc/{}/syscall", child.id()))
            .is_ok_and(|s| s.split_whitespace().next() == Some(read_nr))
    };
    let t = Instant::now();
    while !(blocked()
        && thread_cpus(child.id())
            .iter()
            .any(|(n, _)| n == "hostwatch-outpu"))
        && t.elapsed() < Duration::from_secs(10)
    {
        std::thread::sleep(Duration::from_millis(20));
    }
    // Still there a moment later: past the header, waiting for packets.
    std::thread::sleep(Duration::from_millis(200));
    assert!(blocked(), "the capture thread never blocked in read");
    let pid = child.id() as libc::pid_t;
    // SAFETY: sends a signal to the child started above.
    assert_eq!(unsafe { libc::kill(pid, libc::SIGINT) }, 0);
    std::thread::sleep(Duration::from_millis(500));
    assert!(
        child.try_wait().expect("try_wait").is_none(),
        "the first interrupt cannot finish while the read blocks"
    );
    // SAFETY: as above.
    assert_eq!(unsafe { libc::kill(pid, libc::SIGINT) }, 0);
    let t = Instant::now();
    let status = loop {
        if let Some(s) = child.try_wait().expect("try_wait") {
            break s;
        }
        assert!(
            t.elapsed() < Duration::from_secs(5),
            "still running after a second interrupt"
        );
        std::thread::sleep(Duration::from_millis(20));
    };
    assert_eq!(status.code(), Some(128 + libc::SIGINT));
    drop(stdin);
}

/// Messages that do not parse are counted per protocol in `stats`
/// (`parse_errors`), like Suricata's per-protocol anomaly counters.
#[test]
fn parse_failures_are_counted_per_protocol() {
    let stats = |o: &Output| -> serde_json::Value {
        lines(o)
            .into_iter()
            .rev()
            .find(|e| e["event_type"] == "stats")
            .map(|e| e["stats"]["parse_errors"].clone())
            .unwrap_or_default()
    };
    // Zeek's trace: a connection request whose lengths lie, then its answer.
    let rdp = fixture("real/pcaps/zeek__rdp-invalid-length.pcap");
    let o = hostwatch(&["-q", "-r", &rdp.display().to_string()]);
    assert_eq!(stats(&o), serde_json::json!({ "rdp": 2 }));

    // Name service messages cut after their question name, on port 137.
    let mut name = vec![0x12, 0x34, 0x29, 0x10, 0, 1, 0, 0, 0, 0, 0, 1, 32];
    name.extend_from_slice(b"FHEJEOCNEKDJEEDIDGDGEFFDEJEKDCAA");
    let mut w = hostwatch::synth::PcapWriter::new(Vec::new()).expect("header");
    for i in 0..3u16 {
        let b = etherparse::PacketBuilder::ethernet2([2, 0, 0, 0, 0, 1], [2, 0, 0, 0, 0, 2])
            .ipv4([10, 0, 0, 5], [10, 0, 0, 255], 64)
            .udp(137, 137);
        let mut frame = Vec::new();
        b.write(&mut frame, &name).expect("frame");
        w.packet(1_700_000_000_000_000 + i64::from(i), &frame)
            .expect("packet");
    }
    let path = tmp("broken-nbns.pcap");
    std::fs::write(&path, w.into_inner()).expect("write");
    let o = hostwatch(&["-q", "-r", &path.display().to_string()]);
    assert_eq!(stats(&o), serde_json::json!({ "nbns": 3 }));
    assert_eq!(of_type(&lines(&o), "nbns").len(), 0);
}

/// A run that read no packet stamps its stats with the wall clock, not
/// 1970, and one that never started writes none; a failing output is named; a capture cut by a small snapshot
/// length is said once and counted.
#[test]
fn no_1970_stats_named_output_errors_and_snaplen_warning() {
    let year = |o: &Output| -> String {
        lines(o)
            .into_iter()
            .find(|e| e["event_type"] == "stats")
            .and_then(|e| e["timestamp"].as_str().map(|t| t[..4].to_string()))
            .unwrap_or_default()
    };
    // A capture with no packet: stats stamped now.
    let empty = tmp("no-packets.pcap");
    std::fs::write(&empty, pcap_with(1, &[])).expect("write");
    let o = hostwatch(&["-q", "-r", &empty.display().to_string()]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert!(year(&o).as_str() >= "2026", "{}", year(&o));
    // A run that never started (an empty file, an empty folder): no
    // stats at all.
    let nothing = tmp("zero-bytes.pcap");
    std::fs::write(&nothing, b"").expect("write");
    let folder = tmp("empty-folder");
    std::fs::create_dir_all(&folder).expect("dir");
    for input in [folder, nothing] {
        let o = hostwatch(&["-q", "-r", &input.display().to_string()]);
        assert_eq!(o.status.code(), Some(1));
        assert_eq!(lines(&o).len(), 0, "{}", stderr(&o));
    }

    let demo = fixture("demo/demo.pcap").display().to_string();
    one_clear_line(
        &hostwatch(&["-q", "-r", &demo, "-o", "/dev/full"]),
        4,
        "cannot write events: file:/dev/full: No space left on device",
    );

    // The lab's SMB capture with every frame cut to 96 bytes.
    let full = std::fs::read(fixture("lab/smb3-ok-good.pcap")).expect("capture");
    let mut cut = full[..24].to_vec();
    cut[16..20].copy_from_slice(&96u32.to_le_bytes());
    let (mut at, mut frames, mut shortened) = (24, 0, 0);
    while at + 16 <= full.len() {
        let rec = &full[at..at + 16];
        let incl = u32::from_le_bytes([rec[8], rec[9], rec[10], rec[11]]) as usize;
        let keep = incl.min(96);
        let mut hdr = rec.to_vec();
        hdr[8..12].copy_from_slice(&(keep as u32).to_le_bytes());
        cut.extend_from_slice(&hdr);
        cut.extend_from_slice(&full[at + 16..at + 16 + keep]);
        frames += 1;
        shortened += usize::from(incl > 96);
        at += 16 + incl;
    }
    let path = tmp("snap96.pcap");
    std::fs::write(&path, &cut).expect("write");
    let o = hostwatch(&["-q", "-r", &path.display().to_string()]);
    assert_eq!(o.status.code(), Some(0));
    let e = stderr(&o);
    assert_eq!(e.lines().count(), 1, "{e}");
    assert!(
        e.contains("snap96.pcap: packets are cut short by the capture's snapshot length"),
        "{e}"
    );
    let stats = lines(&o)
        .into_iter()
        .find(|e| e["event_type"] == "stats")
        .expect("stats");
    assert_eq!(stats["stats"]["decoder"]["pkts"], frames);
    assert_eq!(stats["stats"]["decoder"]["truncated"], shortened);
    assert!(shortened > 0);
}

/// A FIFO, `/dev/stdin` fed by a pipe, or a gzip stream behind `<(...)` is
/// opened once: nothing is lost to a format sniff, and a writer that has
/// already closed does not leave hostwatch waiting in a second open.
#[test]
fn fifos_and_dev_stdin_are_read_once() {
    use std::io::Write;
    let capture = std::fs::read(fixture("lab/smb3-ok-good.pcap")).expect("capture");
    assert!(capture.len() > 1 << 20, "larger than a pipe's buffer");
    let fifo = tmp("capture.fifo");
    let _ = std::fs::remove_file(&fifo);
    let c = std::ffi::CString::new(fifo.display().to_string()).expect("path");
    // SAFETY: mkfifo reads a NUL-terminated path.
    assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o600) }, 0);
    let writer = {
        let (fifo, capture) = (fifo.to_path_buf(), capture.clone());
        std::thread::spawn(move || {
            let mut f = std::fs::OpenOptions::new()
                .write(true)
                .open(&fifo)
                .expect("open the fifo");
            f.write_all(&capture).expect("write");
        })
    };
    let o = hostwatch(&["-q", "-r", &fifo.display().to_string()]);
    writer.join().expect("writer");
    assert!(o.status.success(), "{}", stderr(&o));
    let ntlm = of_type(&lines(&o), "ntlm")
        .iter()
        .map(|n| s(n, "ntlm.client.workstation").unwrap_or_default())
        .collect::<Vec<_>>();
    assert_eq!(ntlm, ["DESKTOP-4QK2M1L"]);

    let demo = std::fs::read(fixture("demo/demo.pcap")).expect("demo");
    let mut child = Command::new(env!("CARGO_BIN_EXE_hostwatch"))
        .args(["-q", "--alerts-only", "-r", "/dev/stdin"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("spawn");
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(&demo)
        .expect("write");
    let o = child.wait_with_output().expect("wait");
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(lines(&o).len(), 4);
}

/// Started with standard output closed, hostwatch says so and fails, rather
/// than writing every event into the /dev/null the Rust runtime puts there.
#[test]
fn a_closed_stdout_is_an_error_not_silence() {
    use std::os::unix::process::CommandExt;
    let mut cmd = std::process::Command::new(env!("CARGO_BIN_EXE_hostwatch"));
    cmd.args(["-q", "-r"])
        .arg(fixture("demo/demo.pcap"))
        .stderr(std::process::Stdio::piped());
    // SAFETY: close(2) is async-signal-safe; it runs in the child only.
    unsafe {
        cmd.pre_exec(|| {
            libc::close(1);
            Ok(())
        });
    }
    let out = cmd.output().expect("run");
    assert_eq!(out.status.code(), Some(2));
    assert_eq!(
        String::from_utf8_lossy(&out.stderr).trim(),
        "hostwatch: standard output is closed: events would be lost (name an output with -o)"
    );
}

/// Event lines but the final stats, sorted.
fn event_lines(o: &Output) -> Vec<String> {
    let mut v: Vec<String> = String::from_utf8_lossy(&o.stdout)
        .lines()
        .filter(|l| !l.contains(r#""event_type":"stats""#))
        .map(str::to_owned)
        .collect();
    v.sort();
    v
}

/// A pcapng file whose interfaces differ in link type (Ethernet and Linux
/// cooked, merged by mergecap; scripts/make-mixed-linktypes.sh): libpcap
/// refuses it, hostwatch reads each packet with its interface's link type
/// and reports exactly what the two captures give alone. Gzipped too; the
/// capture filter applies per link type; a pipe, which cannot be read
/// again, gets one clear line.
#[test]
fn pcapng_mixing_link_types_is_decoded_per_interface() {
    let mixed = fixture("unit/mixed-linktypes.pcapng");
    let got = hostwatch(&["-q", "-r", &mixed.display().to_string()]);
    assert!(got.status.success(), "{}", stderr(&got));
    let mut want = event_lines(&hostwatch(&[
        "-q",
        "-r",
        &fixture("lab/http-ntlm-curl-good.pcap")
            .display()
            .to_string(),
    ]));
    // The demo capture is the cooked side, its Ethernet headers rewritten.
    want.extend(event_lines(&hostwatch(&[
        "-q",
        "-r",
        &fixture("demo/demo.pcap").display().to_string(),
    ])));
    want.sort();
    assert_eq!(event_lines(&got), want);
    let ev = lines(&got);
    assert_eq!(of_type(&ev, "alert").len(), 4);
    assert_eq!(of_type(&ev, "ntlm").len(), 5);
    let stats = &ev.last().expect("stats")["stats"];
    assert_eq!(stats["decoder"]["pkts"], 89); // 17 + 72, as capinfos counts them
    assert_eq!(stats["decoder"]["non_ip"], 0);

    let gz = tmp("mixed-linktypes.pcapng.gz");
    let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    std::io::Write::write_all(&mut enc, &std::fs::read(&mixed).expect("read")).expect("gzip");
    std::fs::write(&gz, enc.finish().expect("gzip")).expect("write");
    let zipped = hostwatch(&["-q", "-r", &gz.display().to_string()]);
    assert_eq!(event_lines(&zipped), want);

    let filtered = hostwatch(&[
        "-q",
        "-f",
        "tcp port 3389",
        "-r",
        &mixed.display().to_string(),
    ]);
    let ev = lines(&filtered);
    assert_eq!(of_type(&ev, "rdp").len(), 2);
    assert_eq!(of_type(&ev, "ntlm").len(), 0);

    let piped = Command::new(env!("CARGO_BIN_EXE_hostwatch"))
        .args(["-q", "-r", "-"])
        .stdin(std::fs::File::open(&mixed).expect("open"))
        .output()
        .expect("run");
    assert_eq!(piped.status.code(), Some(1));
    assert_eq!(
        stderr(&piped).trim(),
        "hostwatch: <stdin>: read error: its interfaces have different link types, which a pipe cannot be read again for; read it from a file (0 packets were read)"
    );
}

/// `--format pretty`: the alerts readable, nothing else, to standard output
/// or a file; JSON stays the default off a terminal, and the pretty view is
/// the default on one (under `script`, a terminal).
#[test]
fn pretty_format_for_people_json_for_pipes() {
    let demo = fixture("demo/demo.pcap").display().to_string();
    let heads = |text: &str| -> Vec<String> {
        text.lines()
            .filter_map(|l| l.split_once("  ALERT ").map(|(t, h)| format!("{t} {h}")))
            .collect()
    };
    let want = [
        "2026-02-10 09:03:12 sev 1  WIN-J9D866ESIJ2 (client) in dhcp.hostname",
        "2026-02-10 09:03:14 sev 1  WIN-J9D866ESIJ2 (client) in ntlm.client.workstation",
        "2026-02-10 09:03:42 sev 1  WIN-J9D866ESIJ2 (client) in rdp.client.client_name",
        "2026-02-10 09:05:04 sev 1  WIN-LIVFRVQFMKO (server) in ntlm.server.nb_computer_name, ntlm.server.dns_computer_name, ntlm.server.target_name",
    ];
    let o = hostwatch(&["-q", "--format", "pretty", "-r", &demo]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let text = String::from_utf8_lossy(&o.stdout).into_owned();
    assert_eq!(heads(&text), want);
    assert!(!text.contains('{'), "{text}");
    assert!(text.contains(
        "    10.20.0.15:50230 -> 10.20.0.99:8080  http success user alice (domain CORP)\n"
    ));
    assert!(text.contains(
        "    list vmmanager-defaults: WIN-LIVFRVQFMKO (builtin:vmmanager-defaults line 22): Sophos CTU 2026"
    ));
    // To a file, counted as written.
    let out = tmp("pretty.txt");
    let _ = std::fs::remove_file(&out);
    let o = hostwatch(&[
        "-q",
        "--format",
        "pretty",
        "-o",
        &out.display().to_string(),
        "-r",
        &demo,
    ]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert_eq!(
        heads(&std::fs::read_to_string(&out).unwrap_or_default()),
        want
    );
    // Piped: JSON Lines by default.
    let o = hostwatch(&["-q", "-r", &demo]);
    assert_eq!(of_type(&lines(&o), "alert").len(), 4);
    // On a terminal: the pretty view by default.
    let cmd = format!("{} -q -r {demo}", env!("CARGO_BIN_EXE_hostwatch"));
    let tty = Command::new("script")
        .args(["-qec", &cmd, "/dev/null"])
        .output();
    match tty {
        Ok(t) if t.status.success() => {
            let text = String::from_utf8_lossy(&t.stdout).replace('\r', "");
            // Colour on a terminal: strip it to compare.
            let plain = strip_ansi(&text);
            assert_eq!(heads(&plain), want, "{plain}");
        }
        other => panic!("script(1) from util-linux is needed: {other:?}"),
    }
    let _ = std::fs::remove_file(&out);
}

fn strip_ansi(s: &str) -> String {
    let mut out = String::new();
    let mut chars = s.chars();
    while let Some(c) = chars.next() {
        if c == '\x1b' {
            for d in chars.by_ref() {
                if d.is_ascii_alphabetic() {
                    break;
                }
            }
        } else {
            out.push(c);
        }
    }
    out
}

/// The exit statuses a script reads (README's table): what happened, and
/// every combination of damaged input, alerts and lost events.
#[test]
fn exit_status_says_what_happened() {
    let demo = fixture("demo/demo.pcap").display().to_string();
    let bytes = std::fs::read(fixture("demo/demo.pcap")).expect("demo");
    let cut = tmp("exit-cut.pcap");
    std::fs::write(&cut, &bytes[..bytes.len() - 20]).expect("write");
    let cut = cut.display().to_string();
    let code = |args: &[&str]| hostwatch(args).status.code();
    assert_eq!(code(&["-q", "-r", &demo]), Some(0));
    assert_eq!(code(&["-q", "-r", &cut]), Some(1));
    assert_eq!(code(&["-q", "--exit-code", "-r", &demo]), Some(3));
    assert_eq!(code(&["-q", "-r", &demo, "-o", "/dev/full"]), Some(4));
    // Damaged and alerts: 8 + 1 + 2; alerts and lost: 8 + 2 + 4; all: 15.
    assert_eq!(code(&["-q", "--exit-code", "-r", &cut]), Some(11));
    assert_eq!(
        code(&["-q", "--exit-code", "-r", &demo, "-o", "/dev/full"]),
        Some(14)
    );
    assert_eq!(
        code(&["-q", "--exit-code", "-r", &cut, "-o", "/dev/full"]),
        Some(15)
    );
    assert_eq!(code(&["-q", "-r", &cut, "-o", "/dev/full"]), Some(13));
    // Usage: checked before anything is read or written.
    let out = tmp("exit-usage.json");
    let _ = std::fs::remove_file(&out);
    let o = &out.display().to_string();
    one_clear_line(
        &hostwatch(&["-q", "-r", &demo, "-o", o, "--user", "no-such-user-hw"]),
        2,
        "--user: no such user 'no-such-user-hw'",
    );
    one_clear_line(
        &hostwatch(&["-q", "-r", &demo, "-o", o, "-f", "tcp port ((("]),
        2,
        "invalid capture filter",
    );
    assert_eq!(std::fs::read_to_string(&out).unwrap_or_default(), "");
}

/// Shell habits: `-r *.pcap` reads every file the glob named, options may
/// follow the filter words, a query on a bare path and an unknown scheme
/// are refused with a hint, and one file named twice is refused.
#[test]
fn shell_habits_do_what_was_meant() {
    let dir = tmp("glob");
    std::fs::create_dir_all(&dir).expect("dir");
    let a = dir.join("a.pcap");
    let b = dir.join("b.pcap");
    std::fs::copy(fixture("demo/demo.pcap"), &a).expect("copy");
    std::fs::copy(fixture("lab/rdp-std-good.pcap"), &b).expect("copy");
    let out = dir.join("out.json");
    let _ = std::fs::remove_file(&out);
    let (a, b, o) = (
        a.display().to_string(),
        b.display().to_string(),
        out.display().to_string(),
    );
    // As the shell expands `-r dir/*.pcap tcp port 3389 -o out.json`.
    let run = hostwatch(&["-q", "-r", &a, &b, "tcp", "port", "3389", "-o", &o]);
    assert_eq!(run.status.code(), Some(0), "{}", stderr(&run));
    let text = std::fs::read_to_string(&out).unwrap_or_default();
    let ev: Vec<serde_json::Value> = text
        .lines()
        .filter_map(|l| serde_json::from_str(l).ok())
        .collect();
    // Both files' RDP handshakes (the demo's two, the lab's one), nothing
    // off port 3389.
    assert_eq!(of_type(&ev, "rdp").len(), 3);
    assert_eq!(of_type(&ev, "ntlm").len(), 0);
    assert_eq!(of_type(&ev, "dhcp").len(), 0);
    one_clear_line(
        &hostwatch(&["-q", "-r", &a, "-o", "eve.json?types=alert"]),
        2,
        "a plain path takes no options; for a file with options write file:eve.json?types=alert",
    );
    one_clear_line(
        &hostwatch(&["-q", "-r", &a, "-o", "kafka://broker:9092/eve"]),
        2,
        "unknown output scheme 'kafka' (known: file, syslog, syslog+udp, syslog+tcp, unix, unix+dgram, redis)",
    );
    one_clear_line(
        &hostwatch(&["-q", "-r", &a, "-o", &o, "-o", &format!("file:{o}")]),
        2,
        "is given twice: every event would be written twice",
    );
    // The same file by another spelling, or through a link.
    let name = |p: &std::path::Path| {
        p.file_name()
            .and_then(|n| n.to_str())
            .expect("name")
            .to_string()
    };
    let dotted = format!(
        "{}/../{}/{}",
        dir.display(),
        name(&dir),
        name(std::path::Path::new(&o))
    );
    let link = dir.join("link.json");
    std::fs::write(&o, "").expect("make the file");
    std::os::unix::fs::symlink(&o, &link).expect("symlink");
    for other in [dotted, link.display().to_string()] {
        one_clear_line(
            &hostwatch(&["-q", "-r", &a, "-o", &o, "-o", &other]),
            2,
            "is given twice: every event would be written twice",
        );
    }
    let _ = std::fs::remove_dir_all(&dir);
}

/// What a packager and an operator ask of the binary: the version with its
/// commit and libpcap, a manual page, shell completions.
#[test]
fn version_manual_page_and_completions() {
    let o = hostwatch(&["--version"]);
    assert_eq!(o.status.code(), Some(0));
    let v = String::from_utf8_lossy(&o.stdout).into_owned();
    let mut l = v.lines();
    let first = l.next().unwrap_or_default();
    assert!(
        first.starts_with(&format!("hostwatch {} (commit ", env!("CARGO_PKG_VERSION"))),
        "{v}"
    );
    assert!(
        l.next().unwrap_or_default().starts_with("libpcap version "),
        "{v}"
    );
    let o = hostwatch(&["man"]);
    assert_eq!(o.status.code(), Some(0));
    let page = String::from_utf8_lossy(&o.stdout).into_owned();
    assert!(
        page.contains(&format!(
            ".TH hostwatch 1  \"hostwatch {}\"",
            env!("CARGO_PKG_VERSION")
        )),
        "{page}"
    );
    for option in [
        "\\-\\-watchlist",
        "\\-\\-format",
        "\\-\\-exit\\-code",
        "\\-\\-min\\-confidence",
    ] {
        assert!(page.contains(option), "{option} not in the manual page");
    }
    for (shell, marker) in [
        ("bash", "complete -F _hostwatch"),
        ("zsh", "#compdef hostwatch"),
        ("fish", "complete -c hostwatch"),
    ] {
        let o = hostwatch(&["completions", shell]);
        assert_eq!(o.status.code(), Some(0));
        let script = String::from_utf8_lossy(&o.stdout).into_owned();
        assert!(script.contains(marker), "{shell}: {marker} missing");
        assert!(script.contains("watchlist"), "{shell}");
    }
}

#[test]
fn a_config_file_sets_options_and_the_command_line_replaces_them() {
    let demo = fixture("demo/demo.pcap").display().to_string();
    let cfg = tmp("sensor.toml");
    std::fs::write(
        &cfg,
        "# a sensor\ninterface = [\"hwnosuch0\"]\nalerts-only = true\nexit_code = true\nquiet = true\nfilter = \"udp\"\nformat = \"json\"\n",
    )
    .expect("write config");
    let cfg = cfg.display().to_string();
    let fields = |o: &Output| -> Vec<String> {
        lines(o)
            .iter()
            .flat_map(|a| a["alert"]["fields"].as_array().cloned().unwrap_or_default())
            .map(|f| f.as_str().unwrap_or_default().to_string())
            .collect()
    };
    // The file's filter (udp) and flags; -r replaces the file's interface.
    let o = hostwatch(&["-c", &cfg, "-r", &demo]);
    assert_eq!(o.status.code(), Some(3), "{}", stderr(&o));
    assert_eq!(fields(&o), ["dhcp.hostname"]);
    assert!(o.stderr.is_empty(), "{}", stderr(&o));
    // Trailing filter words replace the file's filter.
    let o = hostwatch(&["-c", &cfg, "-r", &demo, "tcp"]);
    assert_eq!(o.status.code(), Some(3), "{}", stderr(&o));
    assert_eq!(
        fields(&o),
        [
            "ntlm.client.workstation",
            "rdp.client.client_name",
            "ntlm.server.nb_computer_name",
            "ntlm.server.dns_computer_name",
            "ntlm.server.target_name"
        ]
    );
    // The file alone captures on the interface it names.
    one_clear_line(&hostwatch(&["-c", &cfg]), 1, "hwnosuch0");
}

#[test]
fn config_file_errors_name_the_file() {
    let cfg = tmp("bad.toml");
    let name = cfg.display().to_string();
    let cases = [
        ("interfce = [\"eth0\"]\n", "unknown key 'interfce'"),
        (
            "depth = \"deep\"\n",
            "invalid value 'deep' for '--depth <BYTES>'",
        ),
        ("quiet = 1\n", "quiet: a flag: true or false"),
        (
            "interface = eth0\n",
            "TOML parse error at line 1, column 13",
        ),
        (
            "quiet = true\n",
            "nothing to read: set `interface` (or `read`) in",
        ),
    ];
    for (text, needle) in cases {
        std::fs::write(&cfg, text).expect("write config");
        let o = hostwatch(&["--config", &name]);
        one_clear_line(&o, 2, needle);
        assert!(stderr(&o).contains(&name), "{}", stderr(&o));
    }
    one_clear_line(
        &hostwatch(&["--config", "/nonexistent/hostwatch.toml"]),
        2,
        "/nonexistent/hostwatch.toml: No such file or directory",
    );
}

#[test]
fn shipped_config_file_is_valid_and_asks_for_an_interface() {
    let shipped = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("dist/hostwatch.toml");
    let shipped = shipped.display().to_string();
    one_clear_line(
        &hostwatch(&["-c", &shipped]),
        2,
        &format!("nothing to read: set `interface` (or `read`) in {shipped}"),
    );
    // With a capture and an output of its own, the rest of it applies.
    let out = tmp("shipped.json");
    let _ = std::fs::remove_file(&out);
    let demo = fixture("demo/demo.pcap").display().to_string();
    let o = hostwatch(&[
        "-c",
        &shipped,
        "-r",
        &demo,
        "-o",
        &out.display().to_string(),
    ]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert!(o.stderr.is_empty(), "{}", stderr(&o));
    let text = std::fs::read_to_string(&out).expect("output file");
    let alerts = text
        .lines()
        .filter(|l| l.contains("\"event_type\":\"alert\""))
        .count();
    assert_eq!(alerts, 4);
}

/// Under systemd, stderr is the journal's stream: each line carries its
/// priority for journald (`<3>` error, `<6>` info); anywhere else the
/// same lines are plain.
#[test]
fn messages_carry_their_priority_to_the_journal() {
    use std::os::unix::fs::MetadataExt;
    let run = |args: &[&str], journal: bool| -> String {
        let err = tmp(&format!("stderr-{journal}-{}", args.len()));
        let f = std::fs::File::create(&err).expect("stderr file");
        let m = f.metadata().expect("metadata");
        let stream = format!("{}:{}", m.dev(), m.ino() + u64::from(!journal));
        let st = Command::new(env!("CARGO_BIN_EXE_hostwatch"))
            .args(args)
            .env("JOURNAL_STREAM", stream)
            .stderr(f)
            .stdout(std::process::Stdio::null())
            .status()
            .expect("run hostwatch");
        assert!(st.code().is_some());
        std::fs::read_to_string(&err).expect("stderr")
    };
    let missing = ["-r", "/nonexistent/x.pcap"];
    assert_eq!(
        run(&missing, true),
        "<3>hostwatch: /nonexistent/x.pcap: cannot open: no such file\n"
    );
    assert_eq!(
        run(&missing, false),
        "hostwatch: /nonexistent/x.pcap: cannot open: no such file\n"
    );
    let capture = tmp("journal-demo.pcap");
    let out = capture.display().to_string();
    let generate = ["generate", "--kind", "demo", "-o", &out];
    let said = run(&generate, true);
    assert!(said.starts_with("<6>hostwatch: wrote "), "{said}");
    assert_eq!(said.lines().count(), 1, "{said}");
}

/// A capture whose checksums were broken after the fact loses segments in
/// the default mode: the run says so, and how to read them anyway.
#[test]
fn segments_dropped_for_checksums_are_said() {
    let f = fixture("real/pcaps/zeek__rdp-unknown-keyboard.pcap")
        .display()
        .to_string();
    let o = hostwatch(&["-q", "--format", "json", "-r", &f]);
    assert_eq!(o.status.code(), Some(0));
    assert_eq!(
        stderr(&o),
        "hostwatch: 1 TCP segment of 1 connection dropped for a wrong checksum, as their receivers would drop them; a capture edited or re-addressed after the fact breaks checksums: --checksums ignore reads them anyway\n"
    );
    // Segments, the connections they belong to, datagrams.
    let mixed = fixture("real/pcaps/arkime__arkime_synthetic.pcap")
        .display()
        .to_string();
    let o = hostwatch(&["-q", "--format", "json", "-r", &mixed]);
    assert!(
        stderr(&o).starts_with("hostwatch: 1 TCP segment of 1 connection, 2 UDP datagrams dropped for a wrong checksum"),
        "{}",
        stderr(&o)
    );
    let stats = lines(&o).pop().expect("stats");
    assert_eq!(
        (
            &stats["stats"]["checksums"]["bad_tcp"],
            &stats["stats"]["checksums"]["bad_tcp_connections"],
            &stats["stats"]["checksums"]["bad_udp"]
        ),
        (
            &serde_json::json!(1),
            &serde_json::json!(1),
            &serde_json::json!(2)
        )
    );
    let o = hostwatch(&["-q", "--format", "json", "--checksums", "ignore", "-r", &f]);
    assert_eq!(o.status.code(), Some(0));
    assert!(o.stderr.is_empty(), "{}", stderr(&o));
    let names: Vec<String> = lines(&o)
        .iter()
        .filter_map(|e| s(e, "rdp.client.client_name"))
        .collect();
    assert_eq!(names, ["JOHN-PC-LAPTOP"]);
}

/// `-T` checks the options, lists, output URLs and filter, and the places
/// a run would open, and exits, as Suricata's: nothing is captured, read
/// or written.
#[test]
fn test_config_checks_and_exits() {
    let out = tmp("test-config.json");
    let out_s = out.display().to_string();
    let demo = fixture("demo/demo.pcap");
    let demo_s = demo.display().to_string();
    let ok = hostwatch(&["-T", "-r", &demo_s, "-o", &out_s, "tcp", "or", "udp"]);
    assert_eq!(ok.status.code(), Some(0), "{}", stderr(&ok));
    assert_eq!(stderr(&ok).trim(), "hostwatch: configuration is valid");
    assert!(ok.stdout.is_empty());
    assert!(!out.exists(), "an output was opened");
    let filter = hostwatch(&["-T", "-i", "eth9", "tcp", "or", "bogus"]);
    assert_eq!(filter.status.code(), Some(2));
    assert_eq!(
        stderr(&filter).trim(),
        "hostwatch: invalid capture filter 'tcp or bogus': syntax error in filter expression"
    );
    let list = hostwatch(&["-T", "-i", "eth9", "--watchlist", "/nonexistent.list"]);
    assert_eq!(list.status.code(), Some(2));
    assert!(stderr(&list).contains("/nonexistent.list: cannot read watch list"));
    let url = hostwatch(&["-T", "-i", "eth9", "-o", "gopher://x"]);
    assert_eq!(url.status.code(), Some(2), "{}", stderr(&url));
    // The places a run would open are checked, none is created.
    let said = |args: &[&str]| {
        let o = hostwatch(args);
        assert_eq!(o.status.code(), Some(2), "{args:?}: {}", stderr(&o));
        stderr(&o).trim().to_string()
    };
    assert_eq!(
        said(&["-T", "-r", &demo_s, "-o", "/nonexistent-dir/eve.json"]),
        "hostwatch: --output /nonexistent-dir/eve.json: directory /nonexistent-dir does not exist"
    );
    let dir = std::env::temp_dir().display().to_string();
    assert_eq!(
        said(&["-T", "-r", &demo_s, "-o", &dir]),
        format!("hostwatch: --output {dir}: is a directory")
    );
    assert_eq!(
        said(&["-T", "-r", &demo_s, "-w", "/nonexistent-dir/p.pcap"]),
        "hostwatch: -w /nonexistent-dir/p.pcap: directory /nonexistent-dir does not exist"
    );
    assert_eq!(
        said(&["-T", "-r", "/nonexistent.pcap"]),
        "hostwatch: -r /nonexistent.pcap: no such file"
    );
    let iface = said(&["-T", "-i", "eth9"]);
    assert!(
        iface.starts_with("hostwatch: eth9: no such network interface"),
        "{iface}"
    );
}
