//! Weighing alerts: the same template name from the template's own build
//! logging on from outside home-net, and from a renamed Windows 11 desktop
//! whose logon fails, both alert; the first ranks high and the second low,
//! each with the readable lines of what agreed and what did not.

mod common;

use common::{of_type, run_config, s};
use hostwatch::pipeline::{Config, Input};
use serde_json::Value;

/// One SMB2 logon from `client` as WIN-J9D866ESIJ2 on Windows `build`.
fn logon(client: &str, build: u16, status: u32, name: &str) -> common::Tmp {
    logon_as(client, "WIN-J9D866ESIJ2", build, status, name)
}

/// One SMB2 logon from `client` as `workstation`.
fn logon_as(client: &str, workstation: &str, build: u16, status: u32, name: &str) -> common::Tmp {
    let t = common::smb_logon(client, "10.20.0.5", workstation, build, status);
    let p = common::tmp(&format!("{name}.pcap"));
    std::fs::write(&p, t.to_bytes()).expect("write");
    p
}

fn alert(path: &std::path::Path, home_net: Option<&str>) -> (String, Vec<String>) {
    let mut cfg = Config {
        inputs: vec![Input::File(path.display().to_string())],
        ..Config::default()
    };
    if let Some(h) = home_net {
        cfg.home_net = h.parse().expect("networks");
    }
    let (events, outcome, _) = run_config(cfg);
    assert!(outcome.error.is_none());
    let alerts = of_type(&events, "alert");
    assert_eq!(alerts.len(), 1, "{alerts:?}");
    let a = alerts[0];
    assert_eq!(s(a, "alert.hostname").as_deref(), Some("WIN-J9D866ESIJ2"));
    (
        s(a, "alert.confidence").unwrap_or_default(),
        common::corroboration(a),
    )
}

#[test]
fn the_templates_build_logging_on_from_outside_ranks_above_a_renamed_desktop() {
    let template = logon("203.0.113.7", 14393, 0, "template");
    let desktop = logon("10.20.0.50", 22631, 0xc000_006d, "desktop");
    assert_eq!(
        alert(&template, None),
        (
            "high".to_string(),
            vec![
                "reports Windows build 14393 (Windows Server 2016 / Windows 10 1607), the template's".to_string(),
                "its logon succeeded".to_string(),
                "from 203.0.113.7, outside home-net, to 10.20.0.5".to_string(),
            ]
        )
    );
    assert_eq!(
        alert(&desktop, None),
        (
            "low".to_string(),
            vec![
                "reports Windows build 22631 (Windows 11 23H2), not the template's 14393 (Windows Server 2016 / Windows 10 1607)".to_string(),
                "its logon failed".to_string(),
            ]
        )
    );
    // With every network home, coming from outside is no longer a signal.
    let (confidence, lines) = alert(&template, Some("0.0.0.0/0"));
    assert_eq!(confidence, "high");
    assert_eq!(lines.len(), 2, "{lines:?}");
    // Any build other than the template's counts against it.
    let other = logon("10.20.0.51", 9600, 0xc000_006d, "other");
    let (confidence, lines) = alert(&other, None);
    assert_eq!(confidence, "low", "{lines:?}");
    assert_eq!(lines[0], "reports Windows build 9600 (Windows 8.1 / Server 2012 R2), not the template's 14393 (Windows Server 2016 / Windows 10 1607)");
    for p in [template, desktop, other] {
        let _ = std::fs::remove_file(p);
    }
}

/// The demo's events with these lists besides the built-in ones.
fn demo_with(list: &str) -> Vec<Value> {
    use hostwatch::detection::{watchlist, Matcher};
    let entries = watchlist::parse(list, "test.list", 5000).expect("list");
    let matcher = std::sync::Arc::new(Matcher::with_builtins(true, entries).expect("matcher"));
    let cfg = Config {
        inputs: vec![Input::File(
            common::fixture("demo/demo.pcap").display().to_string(),
        )],
        ..Config::default()
    };
    let (events, outcome, _) = common::run_with(cfg, matcher);
    assert!(outcome.error.is_none());
    events
}

fn alert_lines(events: &[Value]) -> Vec<String> {
    of_type(events, "alert")
        .iter()
        .map(|a| {
            format!(
                "{} {} {} {}",
                s(a, "alert.hostname").unwrap_or_default(),
                s(a, "alert.evidence").unwrap_or_default(),
                s(a, "alert.list").unwrap_or_default(),
                s(a, "src_ip").unwrap_or_default()
            )
        })
        .collect()
}

#[test]
fn allow_lists_have_the_last_word_and_are_counted() {
    // The lab's own VM is known and allowed: its alerts go (three
    // connections named it: its lease, its SMB logons, its RDP), the rogue
    // server's stays.
    let events = demo_with("@list lab-vms\n@allow yes\nWIN-J9D866ESIJ2\n");
    let alerts = alert_lines(&events);
    assert_eq!(alerts.len(), 1, "{alerts:?}");
    assert!(
        alerts.iter().all(|a| a.starts_with("WIN-LIVFRVQFMKO ")),
        "{alerts:?}"
    );
    let stats = &events.last().expect("stats")["stats"];
    // Counted once per machine per record: the lease, the two NTLM
    // exchanges, the RDP client data.
    assert_eq!(stats["lists"]["allowed"], 4, "{}", stats["lists"]);
    // A whole network allowed: nothing in it alerts, whatever its names
    // (the DHCP name counts at its leased address).
    let events = demo_with("@allow yes\nnet:10.20.0.0/24\n");
    assert_eq!(alert_lines(&events), Vec::<String>::new());
    assert_eq!(
        events.last().expect("stats")["stats"]["lists"]["allowed"],
        5
    );
}

#[test]
fn a_listed_network_alerts_on_every_handshake_names_or_not() {
    let events = demo_with(
        "@list bad-nets\n@severity 1\nnet:10.20.0.77/32\nnet:10.20.0.5/32 note=rented range\n",
    );
    let mut alerts = alert_lines(&events);
    alerts.sort();
    assert_eq!(
        alerts,
        [
            // The file server's listed address, in both SMB connections to
            // it, with the name it showed.
            "FILESRV01 dest_ip bad-nets 10.20.0.15",
            "FILESRV01 dest_ip bad-nets 10.20.0.77",
            // The DHCP lease: the built-in name; the request came from 0.0.0.0.
            "WIN-J9D866ESIJ2 dhcp.hostname vmmanager-defaults 0.0.0.0",
            // The listed host's SMB and RDP connections: its watched name
            // and its listed address are one machine, one alert each.
            "WIN-J9D866ESIJ2 ntlm.client.workstation vmmanager-defaults 10.20.0.77",
            "WIN-J9D866ESIJ2 rdp.client.client_name vmmanager-defaults 10.20.0.77",
            "WIN-LIVFRVQFMKO ntlm.server.nb_computer_name vmmanager-defaults 10.20.0.15",
        ]
    );
    let fields: Vec<Value> = of_type(&events, "alert")
        .iter()
        .filter(|a| s(a, "src_ip").as_deref() == Some("10.20.0.77"))
        .map(|a| a["alert"]["fields"].clone())
        .collect();
    assert_eq!(
        fields,
        [
            serde_json::json!(["ntlm.client.workstation", "src_ip"]),
            serde_json::json!(["dest_ip"]),
            serde_json::json!(["rdp.client.client_name", "src_ip"]),
        ]
    );
    // A network's alert names the address that matched and which end, and
    // the entry's note.
    let net = of_type(&events, "alert")
        .into_iter()
        .find(|a| s(a, "alert.evidence").as_deref() == Some("dest_ip"))
        .map(|a| a["alert"].clone())
        .unwrap_or_default();
    assert_eq!(
        net["indicator"],
        serde_json::json!({"value": "10.20.0.5/32", "kind": "network", "address": "10.20.0.5", "end": "dest"})
    );
    assert_eq!(
        net["signature"],
        "Watched host name on list bad-nets (10.20.0.5)"
    );
    assert_eq!(net["role"], "server");
    assert_eq!(net["provenance"]["note"], "rented range");
    assert_eq!(net["provenance"]["line"], 4);
    // The name alerts from that host count the listed network as agreeing.
    let why: Vec<String> = of_type(&events, "alert")
        .iter()
        .filter(|a| s(a, "alert.evidence").as_deref() == Some("rdp.client.client_name"))
        .flat_map(|a| common::corroboration(a))
        .collect();
    assert_eq!(
        why,
        [
            "reports Windows build 14393 (Windows Server 2016 / Windows 10 1607), the template's",
            "its address is on list bad-nets",
            "also named at 10.20.0.77 by dhcp, ntlm"
        ]
    );
    // A network entry is not a name: a bad one is refused with its line.
    let e = hostwatch::detection::watchlist::parse("net:10.0.0.0/40\n", "x.list", 1)
        .map_err(|e| e.to_string());
    assert!(e.is_err_and(|m| m.contains("x.list:1") && m.contains("prefix length")));
}

/// Threat intel written by the reference libraries (scripts/make-intel-fixtures.py)
/// alerts through the binary's `--watchlist`: a MISP event's host name, with
/// the event's info and tags as signature and category, and a STIX
/// network; what cannot be matched is named once on stderr.
#[test]
fn misp_and_stix_indicators_alert() {
    let misp_name = logon_as("10.20.0.60", "WIN-WTC0000VM01", 17763, 0, "misp");
    let stix_net = logon_as("203.0.113.7", "DESKTOP-7Q2K9XZ", 19045, 0, "stix");
    let run = |capture: &std::path::Path| {
        let o = std::process::Command::new(env!("CARGO_BIN_EXE_hostwatch"))
            .args(["-q", "--alerts-only", "--watchlist"])
            .arg(common::fixture("intel/misp-event.json"))
            .arg("--watchlist")
            .arg(common::fixture("intel/stix-bundle.json"))
            .arg("-r")
            .arg(capture)
            .output()
            .expect("run");
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
        let alerts: Vec<Value> = String::from_utf8_lossy(&o.stdout)
            .lines()
            .filter_map(|l| serde_json::from_str(l).ok())
            .collect();
        (alerts, String::from_utf8_lossy(&o.stderr).into_owned())
    };
    let (alerts, err) = run(&misp_name);
    assert_eq!(alerts.len(), 1, "{alerts:?}");
    let a = &alerts[0]["alert"];
    assert_eq!(a["hostname"], "WIN-WTC0000VM01");
    assert_eq!(a["list"], "misp-event");
    assert_eq!(
        a["signature"],
        "WantToCry operators on rented VMmanager VMs (WIN-WTC0000VM01)"
    );
    assert_eq!(
        a["category"],
        "tlp:amber, misp-galaxy:ransomware=\"WantToCry\""
    );
    // The alert says which indicator matched and the MISP event's and
    // attribute's uuids.
    assert_eq!(
        a["indicator"],
        serde_json::json!({"value": "WIN-WTC0000VM01", "kind": "name"})
    );
    let p = &a["provenance"];
    assert!(p["file"]
        .as_str()
        .is_some_and(|f| f.ends_with("misp-event.json")));
    for key in ["misp_event_uuid", "misp_attribute_uuid"] {
        assert_eq!(p[key].as_str().map(str::len), Some(36), "{p}");
    }
    assert!(!err.contains("misp-event.json"), "{err}");
    assert!(!err.contains("stix-bundle.json"), "{err}");
    let (alerts, _) = run(&stix_net);
    assert_eq!(alerts.len(), 1, "{alerts:?}");
    let a = &alerts[0]["alert"];
    assert_eq!(
        (
            a["hostname"].as_str(),
            a["evidence"].as_str(),
            a["list"].as_str()
        ),
        (Some("DESKTOP-7Q2K9XZ"), Some("src_ip"), Some("stix-bundle"))
    );
    // The STIX indicator's id and name, and the address that matched.
    assert_eq!(a["provenance"]["stix_name"], "Bulletproof range");
    assert!(a["provenance"]["stix_id"]
        .as_str()
        .is_some_and(|i| i.starts_with("indicator--")));
    assert_eq!(a["indicator"]["address"], "203.0.113.7");
    assert_eq!(a["indicator"]["end"], "src");
    assert_eq!(
        a["signature"],
        "Threat intel indicator on list stix-bundle (203.0.113.7)"
    );
    for p in [misp_name, stix_net] {
        let _ = std::fs::remove_file(p);
    }
}

/// A MISP warning list as published (here RFC 1918's) is an allow list:
/// with it, nothing in the demo's private network alerts, and every alert
/// kept back is counted.
#[test]
fn a_misp_warninglist_keeps_its_networks_from_alerting() {
    let o = std::process::Command::new(env!("CARGO_BIN_EXE_hostwatch"))
        .args(["-q", "--watchlist"])
        .arg(common::fixture("intel/warninglist-rfc1918.json"))
        .arg("-r")
        .arg(common::fixture("demo/demo.pcap"))
        .output()
        .expect("run");
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let events: Vec<Value> = String::from_utf8_lossy(&o.stdout)
        .lines()
        .filter_map(|l| serde_json::from_str(l).ok())
        .collect();
    assert_eq!(of_type(&events, "alert").len(), 0);
    // Once per machine per record: the VM's lease, its two NTLM exchanges
    // and its RDP client data, the rogue server's CHALLENGE.
    let stats = &events.last().expect("stats")["stats"];
    assert_eq!(stats["lists"]["allowed"], 5, "{}", stats["lists"]);
}

/// Each alert of the demo with its confidence and lines, run with `workers`.
fn demo_weights(workers: usize) -> Vec<String> {
    let cfg = Config {
        inputs: vec![Input::File(
            common::fixture("demo/demo.pcap").display().to_string(),
        )],
        workers,
        ..Config::default()
    };
    let (events, outcome, _) = run_config(cfg);
    assert!(outcome.error.is_none());
    of_type(&events, "alert")
        .iter()
        .map(|a| {
            let lines = common::corroboration(a);
            format!(
                "{} {} {}: {}",
                s(a, "alert.hostname").unwrap_or_default(),
                s(a, "alert.evidence").unwrap_or_default(),
                s(a, "alert.confidence").unwrap_or_default(),
                lines.join("; ")
            )
        })
        .collect()
}

/// The rented VM leases its address over DHCP in its own name, then logs
/// on over SMB and connects over RDP: each alert counts the other carriers
/// that named it at 10.20.0.77 earlier in packet time, on other
/// connections; the DHCP alert, first, has none. The alerts and their
/// weights are the same whatever the number of workers.
#[test]
fn other_carriers_that_named_the_machine_earlier_agree() {
    let built =
        "reports Windows build 14393 (Windows Server 2016 / Windows 10 1607), the template's";
    let server = "reports Windows build 17763 (Windows Server 2019 / Windows 10 1809), the template's; its logon succeeded";
    let want = vec![
        "WIN-J9D866ESIJ2 dhcp.hostname medium: ".to_string(),
        // Its logon failed, then succeeded on the same connection: the
        // last outcome counts.
        format!("WIN-J9D866ESIJ2 ntlm.client.workstation high: {built}; its logon succeeded; also named at 10.20.0.77 by dhcp"),
        format!("WIN-J9D866ESIJ2 rdp.client.client_name high: {built}; also named at 10.20.0.77 by dhcp, ntlm"),
        format!("WIN-LIVFRVQFMKO ntlm.server.nb_computer_name high: {server}"),
    ];
    for workers in [1, 2, 3] {
        assert_eq!(demo_weights(workers), want, "{workers} workers");
    }
}

/// Samba's nmbd announces OS version 6.1 for a server it calls
/// WIN-LIVFRVQFMKO: the template (build 17763) would say 10.0. A browser
/// announcement is a broadcast nobody answers (anyone could send it from
/// any address), so the mismatch is shown, not weighed.
#[test]
fn an_announced_windows_version_the_template_cannot_have_counts_against_it() {
    let (events, outcome, _) =
        common::run_files(&[common::fixture("browser/nmbd-announcements.pcap")], 1);
    assert!(outcome.error.is_none());
    let alerts = of_type(&events, "alert");
    let weights: Vec<(String, String, Vec<String>)> = alerts
        .iter()
        .map(|a| {
            (
                s(a, "alert.evidence").unwrap_or_default(),
                s(a, "alert.confidence").unwrap_or_default(),
                common::corroboration(a),
            )
        })
        .collect();
    let against = "announces Windows 6.1 (Windows 7 / Server 2008 R2, or Samba), not the template's 10.0 (Windows 10, 11, Server 2016 and later) (not weighed: nobody answered)".to_string();
    // Its later domain announcement (naming it master browser) is the same
    // machine on the same conversation: no second alert.
    assert_eq!(
        weights,
        vec![(
            "browser.server_name".to_string(),
            "medium".to_string(),
            vec![against]
        )]
    );
}
