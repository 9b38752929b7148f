//! Weighing alerts: the same template name from the template's own build
//! logging on from outside home-net, and from a renamed Windows 11 desktop
//! whose logon fails, both alert; the first ranks high and the second low,
//! each with the readable lines of what agreed and what did not.

mod common;

use std::net::IpAddr;

use common::{of_type, run_config, s};
use hostwatch::pipeline::{Config, Input};
use hostwatch::synth::msg::{self, FILESRV01};
use hostwatch::synth::{Conn, Trace};
use serde_json::Value;

fn ip(s: &str) -> IpAddr {
    s.parse().unwrap_or(IpAddr::from([0, 0, 0, 0]))
}

/// One SMB2 logon from `client` as WIN-J9D866ESIJ2 on Windows `build`.
fn logon(client: &str, build: u16, status: u32, name: &str) -> std::path::PathBuf {
    let mut t = Trace::starting_at(1_790_000_000_000_000);
    let mut c = Conn::new((ip(client), 49_700), (ip("10.20.0.5"), 445), 9);
    let open = c.open();
    t.add(&c, &open);
    let trips = msg::smb2_logon_from(
        0x77,
        &FILESRV01,
        "CORP",
        "svc",
        "WIN-J9D866ESIJ2",
        status,
        build,
    );
    for (q, a) in &trips {
        let segs = c.send(true, q);
        t.add(&c, &segs);
        let segs = c.send(false, a);
        t.add(&c, &segs);
    }
    let close = c.close();
    t.add(&c, &close);
    let p = std::env::temp_dir().join(format!(
        "hostwatch-confidence-{}-{name}.pcap",
        std::process::id()
    ));
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
    let lines = a["alert"]["corroboration"]
        .as_array()
        .map(|v| {
            v.iter()
                .filter_map(Value::as_str)
                .map(str::to_owned)
                .collect()
        })
        .unwrap_or_default();
    (s(a, "alert.confidence").unwrap_or_default(), lines)
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
