//! The lab demo: the committed capture is what the generator writes, and
//! replaying it gives exactly the story's alerts.

mod common;

use common::{fixture, of_type, run_file, s};

#[test]
fn committed_demo_capture_is_what_the_generator_writes() {
    let committed = std::fs::read(fixture("demo/demo.pcap")).expect("demo capture");
    assert_eq!(
        hostwatch::synth::demo::trace().to_bytes(),
        committed,
        "regenerate with: hostwatch generate --kind demo -o fixtures/demo/demo.pcap"
    );
    assert_eq!(hostwatch::synth::demo::CAPTURE, &committed[..]);
}

#[test]
fn demo_alerts_are_exactly_the_story() {
    let events = run_file(&fixture("demo/demo.pcap"));
    let alerts: Vec<(String, String, String, u64, String, u64)> = of_type(&events, "alert")
        .iter()
        .map(|a| {
            (
                s(a, "alert.hostname").unwrap_or_default(),
                s(a, "alert.role").unwrap_or_default(),
                s(a, "alert.evidence").unwrap_or_default(),
                a["alert"]["severity"].as_u64().unwrap_or(0),
                s(a, "src_ip").unwrap_or_default(),
                a["dest_port"].as_u64().unwrap_or(0),
            )
        })
        .collect();
    let want = |h: &str, r: &str, e: &str, src: &str, port: u64| {
        (
            h.to_string(),
            r.to_string(),
            e.to_string(),
            1,
            src.to_string(),
            port,
        )
    };
    assert_eq!(
        alerts,
        vec![
            // Asking from 0.0.0.0 for the address its server then gives.
            want("WIN-J9D866ESIJ2", "client", "dhcp.hostname", "0.0.0.0", 67),
            want(
                "WIN-J9D866ESIJ2",
                "client",
                "ntlm.client.workstation",
                "10.20.0.77",
                445
            ),
            want(
                "WIN-J9D866ESIJ2",
                "client",
                "rdp.client.client_name",
                "10.20.0.77",
                3389
            ),
            // One CHALLENGE names the rogue server three times: one alert.
            want(
                "WIN-LIVFRVQFMKO",
                "server",
                "ntlm.server.nb_computer_name",
                "10.20.0.15",
                8080
            ),
        ]
    );
    assert_eq!(
        of_type(&events, "alert")[3]["alert"]["fields"],
        serde_json::json!([
            "ntlm.server.nb_computer_name",
            "ntlm.server.dns_computer_name",
            "ntlm.server.target_name"
        ])
    );
    // The DHCP alert carries the whole transaction and its lease.
    let lease = of_type(&events, "alert")[0];
    assert_eq!(s(lease, "dhcp.assigned_ip").as_deref(), Some("10.20.0.77"));
    assert_eq!(
        s(lease, "dhcp.client_mac").as_deref(),
        Some("52:54:00:3a:9d:77")
    );
    assert_eq!(
        lease["dhcp"]["msg_types"],
        serde_json::json!(["discover", "offer", "request", "ack"])
    );
    // The VM's logon failed, then succeeded on the same connection: one
    // alert, carrying the record of the last exchange, whose outcome
    // counts.
    let first = of_type(&events, "alert")[1];
    assert_eq!(s(first, "ntlm.client.user").as_deref(), Some("svc_backup"));
    assert_eq!(s(first, "ntlm.result").as_deref(), Some("success"));
    assert_eq!(s(first, "ntlm.status").as_deref(), Some("0x00000000"));
    assert!(first["alert"]["corroboration"]
        .as_array()
        .is_some_and(|c| c.iter().any(|l| l == "its logon succeeded")));
    assert_eq!(
        s(first, "alert.signature").as_deref(),
        Some("VMmanager default Windows host name (WIN-J9D866ESIJ2)")
    );
    assert_eq!(first["alert"]["signature_id"], 9_100_001);
    assert_eq!(
        s(first, "alert.list").as_deref(),
        Some("vmmanager-defaults")
    );

    // Every record of the story, in order of the connections.
    let ntlm: Vec<(Option<String>, Option<String>, Option<String>)> = of_type(&events, "ntlm")
        .iter()
        .map(|n| {
            (
                s(n, "ntlm.client.workstation"),
                s(n, "ntlm.client.user"),
                s(n, "ntlm.result"),
            )
        })
        .collect();
    let t = |w: &str, u: &str, r: &str| {
        (
            Some(w.to_string()),
            Some(u.to_string()),
            Some(r.to_string()),
        )
    };
    assert_eq!(
        ntlm,
        vec![
            t("DESKTOP-4QK2M1L", "alice", "success"),
            t("WIN-J9D866ESIJ2", "administrator", "failure"),
            t("WIN-J9D866ESIJ2", "svc_backup", "success"),
            t("DESKTOP-4QK2M1L", "alice", "success"),
        ]
    );
    assert_eq!(ntlm.len() as u64, hostwatch::synth::demo::NTLM_EXCHANGES);
    let rdp: Vec<(Option<String>, Option<String>)> = of_type(&events, "rdp")
        .iter()
        .map(|r| (s(r, "rdp.client.client_name"), s(r, "rdp.cookie")))
        .collect();
    assert_eq!(
        rdp,
        vec![
            (Some("DESKTOP-4QK2M1L".into()), Some("alice".into())),
            (Some("WIN-J9D866ESIJ2".into()), Some("svc_backu".into()))
        ]
    );
    assert_eq!(rdp.len() as u64, hostwatch::synth::demo::RDP_HANDSHAKES);
    // Five names in the inventory, each once; the VM's first from its lease.
    let hosts: Vec<String> = of_type(&events, "inventory")
        .iter()
        .filter_map(|h| s(h, "inventory.name"))
        .collect();
    assert_eq!(hosts.len(), 5, "{hosts:?}");
    let vm = of_type(&events, "inventory")
        .into_iter()
        .find(|h| s(h, "inventory.name").as_deref() == Some("WIN-J9D866ESIJ2"))
        .map(|h| (s(h, "inventory.ip"), s(h, "inventory.evidence")));
    assert_eq!(
        vm,
        Some((Some("10.20.0.77".into()), Some("dhcp.hostname".into())))
    );
}

#[test]
fn demo_command_prints_the_alerts() {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_hostwatch"))
        .arg("demo")
        .env("NO_COLOR", "1")
        .output()
        .expect("run");
    assert!(out.status.success());
    let text = String::from_utf8_lossy(&out.stdout);
    assert_eq!(text.matches("ALERT sev 1").count(), 4, "{text}");
    assert!(
        text.contains("0.0.0.0:68 -> 10.20.0.1:67  dhcp lease 10.20.0.77"),
        "{text}"
    );
    assert!(
        text.contains("WIN-J9D866ESIJ2 (client) in rdp.client.client_name"),
        "{text}"
    );
    assert!(
        text.contains("smb2 success user svc_backup (domain CORP)"),
        "{text}"
    );
    assert!(!text.contains('\x1b'), "colour despite NO_COLOR");
}
