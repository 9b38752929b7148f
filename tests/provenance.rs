//! Every list format a SOC keeps says, in the alert, where its entry came
//! from: the file and line, the entry's note, and the identifiers the
//! source gave it. Each test replays an SMB logon whose client the list
//! names (by host name or by address) with the fixture list as published.

mod common;

use serde_json::{json, Value};
use std::path::Path;

/// An SMB logon from `client` (workstation `name`) to 10.20.0.5, as a file.
fn logon(client: &str, name: &str, tag: &str) -> common::Tmp {
    let t = common::smb_logon(client, "10.20.0.5", name, 19045, 0);
    let p = common::tmp(&format!("{tag}.pcap"));
    std::fs::write(&p, t.to_bytes()).expect("write");
    p
}

/// The alerts of `capture` with `list` as the only extra watch list.
fn alerts(list: &str, capture: &Path) -> Vec<Value> {
    let list = common::fixture(list);
    let o = std::process::Command::new(env!("CARGO_BIN_EXE_hostwatch"))
        .args(["-q", "--alerts-only", "--watchlist"])
        .arg(&list)
        .arg("-r")
        .arg(capture)
        .output()
        .expect("run");
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let _ = std::fs::remove_file(capture);
    String::from_utf8_lossy(&o.stdout)
        .lines()
        .filter_map(|l| serde_json::from_str(l).ok())
        .collect()
}

/// The one alert's `list`, `indicator` and `provenance`, the file name
/// reduced to its last component.
fn origin(alerts: &[Value]) -> (Value, Value, Value) {
    assert_eq!(alerts.len(), 1, "{alerts:?}");
    let a = &alerts[0]["alert"];
    let mut p = a["provenance"].clone();
    if let Some(f) = p["file"].as_str() {
        let base = f.rsplit('/').next().unwrap_or(f).to_string();
        p["file"] = Value::String(base);
    }
    (a["list"].clone(), a["indicator"].clone(), p)
}

#[test]
fn a_zeek_intel_domain_keeps_its_source_and_description() {
    let got = alerts(
        "intel/zeek.intel",
        &logon("10.20.0.61", "WIN-ZEEK000VM1", "zeek-name"),
    );
    assert_eq!(
        origin(&got),
        (
            json!("zeek"),
            json!({"value": "WIN-ZEEK000VM1", "kind": "name"}),
            json!({"file": "zeek.intel", "line": 2, "note": "lab-feed: operator VM",
                   "zeek_source": "lab-feed", "zeek_desc": "operator VM"}),
        )
    );
}

#[test]
fn a_zeek_intel_subnet_names_the_address_that_matched() {
    let got = alerts(
        "intel/zeek.intel",
        &logon("198.51.100.20", "DESKTOP-7Q2K9XZ", "zeek-net"),
    );
    assert_eq!(
        origin(&got),
        (
            json!("zeek"),
            json!({"value": "198.51.100.0/25", "kind": "network",
                   "address": "198.51.100.20", "end": "src"}),
            json!({"file": "zeek.intel", "line": 4, "note": "lab-feed: relay range",
                   "zeek_source": "lab-feed", "zeek_desc": "relay range"}),
        )
    );
    assert_eq!(got[0]["alert"]["hostname"], "DESKTOP-7Q2K9XZ");
}

#[test]
fn spamhaus_drop_text_and_json_carry_the_sbl_id() {
    for (list, name, line) in [
        ("intel/drop.txt", "drop", 3),
        ("intel/drop_v4.json", "drop_v4", 1),
    ] {
        let got = alerts(list, &logon("203.0.113.200", "DESKTOP-7Q2K9XZ", name));
        let file = list.rsplit('/').next().unwrap_or(list);
        assert_eq!(
            origin(&got),
            (
                json!(name),
                json!({"value": "203.0.113.128/25", "kind": "network",
                       "address": "203.0.113.200", "end": "src"}),
                json!({"file": file, "line": line, "note": "SBL000001", "sbl": "SBL000001"}),
            ),
            "{list}"
        );
    }
}

#[test]
fn a_csv_row_keeps_its_note() {
    let got = alerts(
        "intel/intel.csv",
        &logon("10.20.0.62", "WIN-CSV0000VM1", "csv"),
    );
    assert_eq!(
        origin(&got),
        (
            json!("intel"),
            json!({"value": "WIN-CSV0000VM1", "kind": "name"}),
            json!({"file": "intel.csv", "line": 2, "note": "from a partner feed"}),
        )
    );
}

/// A feed is given as its folder, as MISP publishes it; each alert names
/// the event file its attribute came from.
#[test]
fn a_misp_feed_directory_names_the_event_of_each_attribute() {
    for (name, info, event, attribute) in [
        (
            "WIN-FEED00VM001",
            "Qilin affiliate VMs",
            "5f0e1b2c-0000-4000-8000-000000000100",
            "5f0e1b2c-0000-4000-8000-000000000200",
        ),
        (
            "WIN-FEED00VM002",
            "LockBit affiliate VMs",
            "5f0e1b2c-0000-4000-8000-000000000101",
            "5f0e1b2c-0000-4000-8000-000000000201",
        ),
    ] {
        let got = alerts("intel/misp-feed", &logon("10.20.0.63", name, name));
        assert_eq!(got.len(), 1, "{got:?}");
        let a = &got[0]["alert"];
        assert_eq!(a["signature"], format!("{info} ({name})"));
        assert_eq!(a["list"], "misp-feed");
        assert_eq!(a["indicator"], json!({"value": name, "kind": "name"}));
        let p = &a["provenance"];
        assert_eq!(p["misp_event_uuid"], event, "{p}");
        assert_eq!(p["misp_attribute_uuid"], attribute, "{p}");
        assert!(
            p["file"]
                .as_str()
                .is_some_and(|f| f.ends_with(&format!("{event}.json"))),
            "{p}"
        );
    }
}
