use super::*;

/// 2026-11-29T00:00:00Z.
const NOW: i64 = 1_795_910_400;

fn fixture(name: &str) -> String {
    let p = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("fixtures/intel")
        .join(name);
    std::fs::read_to_string(p).unwrap_or_default()
}

/// (pattern as written, severity, note) of one entry.
type Row = (String, u8, Option<String>);

/// Each entry of a fixture, what was left out, and the format recognised.
fn read(name: &str) -> (Vec<Row>, Vec<(String, u64)>, Format) {
    let text = fixture(name);
    let format = detect(&text);
    let loaded = load(&text, name, 7000, format, NOW).unwrap_or_default();
    let entries = loaded
        .entries
        .iter()
        .map(|e| {
            let p = match &e.pattern {
                Pattern::Exact(n) => n.clone(),
                Pattern::Net(c) => format!("net:{c}"),
                Pattern::Asn(a) => format!("asn:{a}"),
                other => format!("{other:?}"),
            };
            (p, e.severity, e.note.clone())
        })
        .collect();
    (entries, loaded.unsupported.into_iter().collect(), format)
}

fn s(v: &str) -> Option<String> {
    Some(v.to_string())
}

#[test]
fn a_stix_bundle_written_by_stix2() {
    let (entries, left, format) = read("stix-bundle.json");
    assert_eq!(format, Format::Stix);
    assert_eq!(
        entries,
        [
            ("WIN-QILIN0VM01".to_string(), 2, s("Qilin operator VM")),
            ("net:203.0.113.0/24".to_string(), 2, s("Bulletproof range")),
            ("net:2001:db8:66::/48".to_string(), 2, s("Operator host v6")),
            ("net:198.51.100.77/32".to_string(), 2, s("Operator relay")),
            ("asn:64500".to_string(), 2, s("Hoster AS")),
        ]
    );
    // The OR of two names is a compound pattern; the revoked and expired
    // indicators are not there at all.
    assert_eq!(left, [("compound or unsupported pattern".to_string(), 1)]);
}

#[test]
fn a_misp_event_written_by_pymisp() {
    let (entries, left, format) = read("misp-event.json");
    assert_eq!(format, Format::Misp);
    // to_ids attributes only: the ip-dst and the comment are not for detection.
    assert_eq!(
        entries,
        [
            ("WIN-WTC0000VM01".to_string(), 2, None),
            ("VMRENT.BULLETPROOF.EXAMPLE".to_string(), 2, None),
            ("net:198.51.100.23/32".to_string(), 2, None),
            ("asn:64501".to_string(), 2, None),
        ]
    );
    assert!(left.is_empty(), "{left:?}");
    let text = fixture("misp-event.json");
    let l = load(&text, "misp-event.json", 1, Format::Misp, NOW).unwrap_or_default();
    assert_eq!(
        &*l.entries[0].signature,
        "WantToCry operators on rented VMmanager VMs"
    );
    assert_eq!(
        &*l.entries[0].category,
        "tlp:amber, misp-galaxy:ransomware=\"WantToCry\""
    );
    // The API's wrapping in "Event" reads the same.
    let wrapped = format!("{{\"Event\": {text}}}");
    assert_eq!(detect(&wrapped), Format::Misp);
    assert_eq!(
        load(&wrapped, "w.json", 1, Format::Misp, NOW)
            .map(|l| l.entries.len())
            .ok(),
        Some(4)
    );
}

#[test]
fn zeek_intel_drop_asn_drop_and_csv() {
    let (entries, left, format) = read("zeek.intel");
    assert_eq!(format, Format::Zeek);
    assert_eq!(
        entries,
        [
            ("WIN-ZEEK000VM1".to_string(), 2, s("lab-feed: operator VM")),
            ("VMRENT.BULLETPROOF.EXAMPLE".to_string(), 2, s("lab-feed")),
            (
                "net:198.51.100.0/25".to_string(),
                2,
                s("lab-feed: relay range")
            ),
            ("net:192.0.2.99/32".to_string(), 2, s("lab-feed: relay")),
        ]
    );
    assert_eq!(left, [("Intel::EMAIL".to_string(), 1)]);

    let (entries, left, format) = read("drop.txt");
    assert_eq!(format, Format::Drop);
    assert_eq!(
        entries,
        [
            ("net:203.0.113.128/25".to_string(), 2, s("SBL000001")),
            ("net:2001:db8:bad::/48".to_string(), 2, s("SBL000002")),
        ]
    );
    assert!(left.is_empty());
    let (entries, _, format) = read("drop_v4.json");
    assert_eq!(format, Format::Drop);
    assert_eq!(
        entries,
        [("net:203.0.113.128/25".to_string(), 2, s("SBL000001"))]
    );
    let (entries, _, format) = read("asndrop.json");
    assert_eq!(format, Format::Drop);
    assert_eq!(entries, [("asn:64500".to_string(), 2, s("BULLETPROOF-AS"))]);

    let (entries, left, format) = read("intel.csv");
    assert_eq!(format, Format::Csv);
    assert_eq!(
        entries,
        [
            ("WIN-CSV0000VM1".to_string(), 2, s("from a partner feed")),
            ("net:203.0.113.9/32".to_string(), 2, None),
        ]
    );
    assert_eq!(left, [("email".to_string(), 1)]);
}

#[test]
fn formats_are_recognised_and_broken_files_name_their_place() {
    assert_eq!(detect("@list x\nWIN-A note=a, b\n"), Format::List);
    assert_eq!(detect("# comment\nWIN-A\n"), Format::List);
    assert_eq!(detect("WIN-A,hostname\n"), Format::Csv);
    assert_eq!("stix".parse::<Format>(), Ok(Format::Stix));
    assert!("yaml".parse::<Format>().is_err());
    let e = load("{\"objects\": [}", "b.json", 1, Format::Stix, NOW).map(|_| ());
    assert!(e.is_err_and(|e| e.to_string().starts_with("b.json:1:")));
    let e = load(
        "#fields\tindicator\tindicator_type\nx\n",
        "z.intel",
        1,
        Format::Zeek,
        NOW,
    )
    .map(|_| ());
    assert!(e.is_err_and(|e| e.to_string().starts_with("z.intel:2:")));
    let e = load("10.0.0.0/99 ; SBL1\n", "d.txt", 1, Format::Drop, NOW).map(|_| ());
    assert!(e.is_err_and(|e| e.to_string().starts_with("d.txt:1:")));
    assert_eq!(
        crate::render::parse_rfc3339("2026-11-02T00:00:00.000Z"),
        Some(1_793_577_600)
    );
    assert_eq!(
        crate::render::parse_rfc3339("1970-01-01T00:00:00Z"),
        Some(0)
    );
    assert_eq!(crate::render::parse_rfc3339("garbage"), None);
    assert_eq!(
        simple_pattern("[domain-name:value = 'a.example']"),
        Some(("domain-name", "a.example"))
    );
    assert_eq!(
        simple_pattern("[autonomous-system:number = 64500]"),
        Some(("autonomous-system", "64500"))
    );
    assert_eq!(simple_pattern("[a:b = 'x'] AND [c:d = 'y']"), None);
}

#[test]
fn misp_warninglists_are_allow_lists() {
    let (entries, left, format) = read("warninglist-rfc1918.json");
    assert_eq!(format, Format::Warninglist);
    assert_eq!(
        entries.iter().map(|e| e.0.as_str()).collect::<Vec<_>>(),
        ["net:10.0.0.0/8", "net:172.16.0.0/12", "net:192.168.0.0/16"]
    );
    assert!(left.is_empty());
    let text = fixture("warninglist-microsoft.json");
    let l = load(&text, "warninglist-microsoft.json", 1, detect(&text), NOW).unwrap_or_default();
    assert_eq!(l.entries.len(), 191);
    assert!(l.entries.iter().all(|e| e.allow));
    assert_eq!(&*l.entries[0].signature, "List of known microsoft domains");
}

#[test]
fn a_misp_feed_is_read_through_its_manifest() {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("fixtures/intel/misp-feed/manifest.json");
    let text = std::fs::read_to_string(&path).unwrap_or_default();
    assert_eq!(detect(&text), Format::Misp);
    let l = load(&text, &path.display().to_string(), 1, Format::Misp, NOW).unwrap_or_default();
    let got: Vec<(String, u8, String)> = l
        .entries
        .iter()
        .map(|e| match &e.pattern {
            Pattern::Exact(n) => (n.clone(), e.severity, e.signature.to_string()),
            other => (format!("{other:?}"), 0, String::new()),
        })
        .collect();
    assert_eq!(
        got,
        [
            (
                "WIN-FEED00VM001".to_string(),
                1,
                "Qilin affiliate VMs".to_string()
            ),
            (
                "WIN-FEED00VM002".to_string(),
                1,
                "LockBit affiliate VMs".to_string()
            ),
        ]
    );
    // A manifest naming something other than a UUID is not a manifest.
    assert!(!is_manifest(
        &serde_json::json!({"../../etc/passwd": {"info": "x"}})
    ));
}
