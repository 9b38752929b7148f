//! `-w FILE`: the packets behind the alerts, as Wireshark's tshark reads
//! them, the same for any worker count, and read back by hostwatch itself
//! to the same alerts.

mod common;

use std::path::Path;
use std::process::{Command, Output};

use common::{fixture, tmp};

fn hostwatch(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_hostwatch"))
        .args(args)
        .output()
        .expect("run hostwatch")
}

fn events(o: &Output) -> Vec<serde_json::Value> {
    String::from_utf8_lossy(&o.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).expect("JSON line"))
        .collect()
}

fn pcap_stats(o: &Output) -> serde_json::Value {
    let ev = events(o);
    let stats = ev
        .iter()
        .rfind(|e| e["event_type"] == "stats")
        .expect("a stats event");
    stats["stats"]["pcap"].clone()
}

/// tshark's fields of every packet of `file`, or `None` (said) where
/// tshark is missing outside CI.
fn tshark(file: &Path, fields: &[&str]) -> Option<Vec<Vec<String>>> {
    let mut cmd = Command::new("tshark");
    cmd.args(["-n", "-r"]).arg(file).args(["-T", "fields"]);
    for f in fields {
        cmd.args(["-e", f]);
    }
    match cmd.output() {
        Ok(o) => {
            assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
            let text = String::from_utf8_lossy(&o.stdout).into_owned();
            Some(
                text.lines()
                    .map(|l| l.split('\t').map(str::to_owned).collect())
                    .collect(),
            )
        }
        Err(e) => {
            assert!(
                std::env::var_os("CI").is_none(),
                "tshark is needed in CI: {e}"
            );
            eprintln!("skipped: tshark cannot be run ({e}); scripts/deps.sh test installs it");
            None
        }
    }
}

/// The records of a pcap file (header, frame), as written.
fn records(path: &Path) -> Vec<Vec<u8>> {
    let bytes = std::fs::read(path).expect("read pcap");
    assert_eq!(bytes.get(..4), Some(&0xa1b2_c3d4u32.to_le_bytes()[..]));
    let mut rest = bytes.get(24..).expect("a pcap header");
    let mut out = Vec::new();
    while !rest.is_empty() {
        let len = u32::from_le_bytes(rest[8..12].try_into().expect("4 bytes")) as usize;
        out.push(rest[..16 + len].to_vec());
        rest = &rest[16 + len..];
    }
    out
}

#[test]
fn the_handshakes_behind_the_demo_alerts_open_in_tshark() {
    let pcap = tmp("demo-alerts.pcap");
    let o = hostwatch(&[
        "-q",
        "-j",
        "1",
        "-r",
        fixture("demo/demo.pcap").to_str().expect("path"),
        "-w",
        pcap.to_str().expect("path"),
    ]);
    assert_eq!(
        o.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
    // Three connections (SMB and HTTP with NTLM, RDP) and one DHCP
    // exchange alerted; their packets are written while they are
    // analysed: SMB and HTTP to their last ACK, RDP to the server's
    // GCC data (then its analysis is done, and its teardown not written).
    assert_eq!(
        pcap_stats(&o),
        serde_json::json!({"packets": 37, "flows": 4, "flows_cut": 0,
                           "evicted": 0, "lost": 0, "files": 1})
    );
    assert_eq!(records(&pcap).len(), 37);
    let Some(rows) = tshark(
        &pcap,
        &[
            "ip.src",
            "ntlmssp.messagetype",
            "ntlmssp.auth.hostname",
            "ntlmssp.auth.username",
            "rdp.client.name",
            "dhcp.option.hostname",
        ],
    ) else {
        return;
    };
    assert_eq!(rows.len(), 37);
    let named: Vec<String> = rows
        .iter()
        .filter(|r| r[2..].iter().any(|f| !f.is_empty()))
        .map(|r| r.join(" ").split_whitespace().collect::<Vec<_>>().join(" "))
        .collect();
    assert_eq!(
        named,
        vec![
            "0.0.0.0 WIN-J9D866ESIJ2",
            "0.0.0.0 WIN-J9D866ESIJ2",
            "10.20.0.77 0x00000003 WIN-J9D866ESIJ2 administrator",
            "10.20.0.77 0x00000003 WIN-J9D866ESIJ2 svc_backup",
            "10.20.0.77 WIN-J9D866ESIJ2",
            "10.20.0.15 0x00000003 DESKTOP-4QK2M1L alice",
        ]
    );
    // Every NTLM message of the three logons, in order.
    let ntlm: Vec<&str> = rows
        .iter()
        .filter(|r| !r[1].is_empty())
        .map(|r| r[1].as_str())
        .collect();
    assert_eq!(ntlm, ["0x00000001", "0x00000002", "0x00000003"].repeat(3));
}

#[test]
fn the_written_packets_give_back_the_same_alerts() {
    let pcap = tmp("roundtrip.pcap");
    let demo = fixture("demo/demo.pcap");
    let first = hostwatch(&[
        "-q",
        "-j",
        "1",
        "-r",
        demo.to_str().expect("path"),
        "-w",
        pcap.to_str().expect("path"),
    ]);
    let again = hostwatch(&["-q", "-j", "1", "-r", pcap.to_str().expect("path")]);
    let alerts = |o: &Output| {
        let mut a: Vec<String> = events(o)
            .iter()
            .filter(|e| e["event_type"] == "alert")
            .map(|e| {
                format!(
                    "{} {}:{} {}:{} {}",
                    e["alert"]["signature_id"],
                    e["src_ip"].as_str().unwrap_or(""),
                    e["src_port"],
                    e["dest_ip"].as_str().unwrap_or(""),
                    e["dest_port"],
                    e["alert"]["signature"].as_str().unwrap_or("")
                )
            })
            .collect();
        a.sort();
        a
    };
    let before = alerts(&first);
    assert_eq!(before.len(), 4);
    assert_eq!(alerts(&again), before);
}

#[test]
fn the_written_packets_are_the_same_for_any_worker_count() {
    // Every name in fourteen NTLM connections alerts.
    let capture = fixture("real/pcaps/arkime__ntlm_synthetic.pcap");
    let list = tmp("every-name.list");
    std::fs::write(&list, "re:.\n").expect("write list");
    let mut seen = Vec::new();
    for j in ["1", "2", "3"] {
        let pcap = tmp(&format!("workers-{j}.pcap"));
        let o = hostwatch(&[
            "-q",
            "-j",
            j,
            "--watchlist",
            list.to_str().expect("path"),
            "-r",
            capture.to_str().expect("path"),
            "-w",
            pcap.to_str().expect("path"),
        ]);
        assert_eq!(o.status.code(), Some(0));
        assert_eq!(pcap_stats(&o)["flows"], 14);
        let mut r = records(&pcap);
        r.sort();
        seen.push(r);
    }
    assert_eq!(seen[0].len(), 218);
    assert_eq!(seen[0], seen[1]);
    assert_eq!(seen[0], seen[2]);
}

#[test]
fn every_datagram_of_an_alerted_exchange_is_written() {
    // DHCP: the broadcast DISCOVER and REQUEST that carry the name, and
    // the server's unicast answers; DHCPv6 SOLICIT to the multicast group
    // and the ADVERTISE and REPLY that follow.
    let pcap = tmp("dhcp.pcap");
    let o = hostwatch(&[
        "-q",
        "-r",
        fixture("dhcp/dnsmasq-dhclient.pcapng")
            .to_str()
            .expect("path"),
        "-w",
        pcap.to_str().expect("path"),
    ]);
    assert_eq!(o.status.code(), Some(0));
    let stats = pcap_stats(&o);
    assert_eq!(
        (stats["packets"].as_u64(), stats["lost"].as_u64()),
        (Some(21), Some(0))
    );
    let Some(rows) = tshark(&pcap, &["dhcp.option.hostname", "dhcpv6.client_domain"]) else {
        return;
    };
    let mut names: Vec<String> = rows
        .iter()
        .flat_map(|r| r.iter().filter(|f| !f.is_empty()).cloned())
        .collect();
    names.sort();
    names.dedup();
    assert_eq!(
        names,
        vec![
            "WIN-J9D866ESIJ2",
            "WIN-J9D866ESIJ2.corp.example.",
            "WIN-LIVFRVQFMKO"
        ]
    );
}

#[test]
fn bad_write_targets_get_one_clear_line() {
    let demo = fixture("demo/demo.pcap");
    let demo = demo.to_str().expect("path");
    let one_line = |o: &Output, needle: &str| {
        let e = String::from_utf8_lossy(&o.stderr).into_owned();
        assert_eq!(o.status.code(), Some(2), "{e}");
        assert_eq!(e.lines().count(), 1, "{e}");
        assert!(e.starts_with("hostwatch: ") && e.contains(needle), "{e}");
    };
    one_line(
        &hostwatch(&["-r", demo, "-w", "/nonexistent-dir/a.pcap"]),
        "-w /nonexistent-dir/a.pcap: cannot create it: No such file or directory",
    );
    let events = tmp("events.json");
    let ev = events.to_str().expect("path");
    one_line(
        &hostwatch(&["-r", demo, "-o", ev, "-w", ev]),
        "that file is also an --output",
    );
    // The capture being read is not emptied.
    let copy = tmp("copy.pcap");
    std::fs::copy(fixture("demo/demo.pcap"), &copy).expect("copy");
    let before = std::fs::metadata(&copy).expect("meta").len();
    one_line(
        &hostwatch(&[
            "-r",
            copy.to_str().expect("path"),
            "-w",
            copy.to_str().expect("path"),
        ]),
        "that file is a capture being read",
    );
    assert_eq!(std::fs::metadata(&copy).expect("meta").len(), before);
    // -W without -C, -C without -w: clap's usage error.
    let o = hostwatch(&["-r", demo, "-w", "x.pcap", "-W", "3"]);
    assert_eq!(o.status.code(), Some(2));
    let o = hostwatch(&["-r", demo, "-C", "3"]);
    assert_eq!(o.status.code(), Some(2));
}

#[test]
fn the_config_file_takes_the_write_options() {
    let pcap = tmp("from-config.pcap");
    let config = tmp("sensor.toml");
    std::fs::write(
        &config,
        format!(
            "write = \"{}\"\nwrite-size = 1\nwrite-files = 2\nworkers = 1\n",
            pcap.display()
        ),
    )
    .expect("write config");
    let o = hostwatch(&[
        "-q",
        "-c",
        config.to_str().expect("path"),
        "-r",
        fixture("demo/demo.pcap").to_str().expect("path"),
    ]);
    assert_eq!(
        o.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
    assert_eq!(records(&pcap).len(), 37);
    assert_eq!(pcap_stats(&o)["files"], 1);
}

/// A file that cannot take the packets (a full disk): one line naming it,
/// the events all written, exit status 4 (something was lost), whatever
/// the worker count.
#[test]
fn a_full_disk_is_one_line_and_status_4() {
    if !Path::new("/dev/full").exists() {
        eprintln!("skipped: no /dev/full here");
        return;
    }
    for j in ["1", "2"] {
        let o = hostwatch(&[
            "-q",
            "-j",
            j,
            "-r",
            fixture("demo/demo.pcap").to_str().expect("path"),
            "-w",
            "/dev/full",
        ]);
        let e = String::from_utf8_lossy(&o.stderr).into_owned();
        assert_eq!(o.status.code(), Some(4), "{e}");
        assert_eq!(
            e,
            "hostwatch: -w /dev/full: No space left on device (os error 28); no more packets are written\n"
        );
        let alerts = events(&o)
            .iter()
            .filter(|e| e["event_type"] == "alert")
            .count();
        assert_eq!(alerts, 4);
    }
}
