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
            // Two observations joined by OR: either name.
            ("WIN-A".to_string(), 2, s("Either name")),
            ("WIN-B".to_string(), 2, s("Either name")),
        ]
    );
    // The revoked and expired indicators are not there at all.
    assert!(left.is_empty(), "{left:?}");
    // Each entry keeps the indicator's STIX id and name.
    let text = fixture("stix-bundle.json");
    let l = load(&text, "stix-bundle.json", 1, Format::Stix, NOW).unwrap_or_default();
    let refs: Vec<(&str, &str)> = l.entries[0]
        .refs
        .iter()
        .flatten()
        .map(|(k, v)| (*k, &**v))
        .collect();
    assert_eq!(refs.len(), 2);
    assert_eq!(refs[1], ("stix_name", "Qilin operator VM"));
    assert!(refs[0].0 == "stix_id" && refs[0].1.starts_with("indicator--"));
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
    // A value that cannot be read is left out and named; the rest loads.
    let l = load(
        "10.0.0.0/99 ; SBL1\n192.0.2.0/24 ; SBL2\n",
        "d.txt",
        1,
        Format::Drop,
        NOW,
    );
    let l = l.unwrap_or_default();
    assert_eq!(l.entries.len(), 1);
    assert_eq!(
        l.skipped,
        ["line 1: '10.0.0.0/99': the prefix length must be 0 to 32"]
    );
    // Nothing readable at all is an error.
    let e = load("10.0.0.0/99 ; SBL1\n", "d.txt", 1, Format::Drop, NOW).map(|_| ());
    assert!(e.is_err_and(|e| e.to_string().starts_with("d.txt:0:")));
    assert_eq!(
        crate::render::parse_rfc3339("2026-11-02T00:00:00.000Z"),
        Some(1_793_577_600)
    );
    assert_eq!(
        crate::render::parse_rfc3339("1970-01-01T00:00:00Z"),
        Some(0)
    );
    assert_eq!(crate::render::parse_rfc3339("garbage"), None);
}

/// STIX 2.1 9.5 comparison operators on names and addresses, each as the
/// indicator means it; the others refused by name (a `!=` read as `=`
/// made the one name it excludes alert).
#[test]
fn stix_comparison_operators() {
    let v = |s: &str| Term::Value(s.to_string());
    let p = |p: Pattern| Term::Pattern(p);
    let un = |s: &str| Unsupported(s.to_string());
    assert_eq!(
        stix_pattern("[domain-name:value = 'a.example']"),
        Ok(vec![v("a.example")])
    );
    assert_eq!(
        stix_pattern("[autonomous-system:number = 64500]"),
        Ok(vec![Term::Asn("64500".into())])
    );
    assert_eq!(
        stix_pattern("[domain-name:value != 'FILESRV01']"),
        Ok(vec![p(Pattern::NotExact("FILESRV01".into()))])
    );
    assert_eq!(
        stix_pattern("[domain-name:value NOT = 'x']"),
        Ok(vec![p(Pattern::NotExact("X".into()))])
    );
    assert_eq!(
        stix_pattern("[domain-name:value IN ('WIN-A', 'WIN-B')]"),
        Ok(vec![v("WIN-A"), v("WIN-B")])
    );
    assert_eq!(
        stix_pattern("[domain-name:value LIKE 'WIN-%VM_']"),
        Ok(vec![p(Pattern::Glob("WIN-*VM?".into()))])
    );
    assert_eq!(
        stix_pattern("[domain-name:value MATCHES '^WIN-[A-Z0-9]{11}$']"),
        Ok(vec![p(Pattern::Regex("^WIN-[A-Z0-9]{11}$".into()))])
    );
    assert_eq!(
        stix_pattern("[ipv4-addr:value ISSUBSET '198.51.100.0/24']"),
        Ok(vec![v("198.51.100.0/24")])
    );
    assert_eq!(
        stix_pattern("[domain-name:value = 'a' OR domain-name:value = 'b\\'c']"),
        Ok(vec![v("a"), v("b'c")])
    );
    assert_eq!(stix_pattern("[a:b = 'x'] AND [c:d = 'y']"), Err(un("a")));
    assert_eq!(
        stix_pattern("[domain-name:value = 'x'] AND [domain-name:value = 'y']"),
        Err(un("compound pattern (AND)"))
    );
    assert_eq!(
        stix_pattern("[domain-name:value = 'x' AND domain-name:value = 'y']"),
        Err(un("compound pattern (AND)"))
    );
    assert_eq!(
        stix_pattern("[domain-name:value >= 'x']"),
        Err(un("STIX operator >= on domain-name"))
    );
    assert_eq!(
        stix_pattern("[ipv4-addr:value NOT ISSUBSET '10.0.0.0/8']"),
        Err(un("STIX operator NOT ISSUBSET on ipv4-addr"))
    );
    assert_eq!(
        stix_pattern("[email-addr:value = 'a@b']"),
        Err(un("email-addr"))
    );
    assert_eq!(
        stix_pattern("[domain-name:value = 'x"),
        Err(un("malformed pattern"))
    );
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

/// RFC 4180: a quoted field may hold commas (a note, or a value).
#[test]
fn csv_quoted_fields_hold_commas() {
    let text = "value,type,note\n\"WIN-CSV0000VM2\",hostname,\"seen twice, then gone\"\n\"a,b\",hostname,\n198.51.100.0/33,cidr,bad\n";
    let l = load(text, "q.csv", 1, Format::Csv, NOW).unwrap_or_default();
    let got: Vec<(String, Option<String>)> = l
        .entries
        .iter()
        .map(|e| (e.pattern.to_string(), e.note.clone()))
        .collect();
    assert_eq!(
        got,
        [
            ("WIN-CSV0000VM2".to_string(), s("seen twice, then gone")),
            ("A,B".to_string(), None),
        ]
    );
    assert_eq!(
        l.skipped,
        ["line 4: '198.51.100.0/33': the prefix length must be 0 to 32"]
    );
}

/// A MISP feed keeps most indicators in objects (`domain-ip`, `hostname`);
/// their attributes are read with the object named, and one bad value is
/// left out and named without refusing the rest.
#[test]
fn misp_objects_and_a_bad_value() {
    let event = r#"{"Event": {"uuid": "5f0c0d2e-1111-4c4c-9999-0123456789ab", "info": "Rented VMs",
      "Attribute": [{"type": "ip-dst", "value": "198.51.100.0/33", "to_ids": true, "uuid": "a1"}],
      "Object": [{"name": "domain-ip", "Attribute": [
         {"type": "domain", "value": "win-obj.example", "to_ids": true, "uuid": "5f0c0d2e-2222-4c4c-9999-0123456789ab"},
         {"type": "ip-dst", "value": "203.0.113.66", "to_ids": true, "uuid": "b2"},
         {"type": "text", "value": "x", "to_ids": false}]}]}}"#;
    let l = load(event, "e.json", 1, Format::Misp, NOW).unwrap_or_default();
    let got: Vec<String> = l.entries.iter().map(|e| e.pattern.to_string()).collect();
    assert_eq!(got, ["WIN-OBJ.EXAMPLE", "203.0.113.66/32"]);
    let refs: Vec<(&str, &str)> = l.entries[0]
        .refs
        .iter()
        .flatten()
        .map(|(k, v)| (*k, &**v))
        .collect();
    assert_eq!(
        refs,
        [
            ("misp_event_uuid", "5f0c0d2e-1111-4c4c-9999-0123456789ab"),
            (
                "misp_attribute_uuid",
                "5f0c0d2e-2222-4c4c-9999-0123456789ab"
            ),
            ("misp_object", "domain-ip"),
        ]
    );
    assert_eq!(
        l.skipped,
        ["attribute 1: '198.51.100.0/33': the prefix length must be 0 to 32"]
    );
}

/// A Latin-1 byte in a Zeek Intel description does not refuse the file:
/// it is read lossily, the indicator is what matters.
#[test]
fn a_latin1_description_is_read() {
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let path = dir.path().join("latin1.intel");
    let mut bytes = b"#fields\tindicator\tindicator_type\tmeta.source\tmeta.desc\n".to_vec();
    bytes.extend_from_slice(b"WIN-ZEEKLAT0001\tIntel::DOMAIN\tpartner\tcaf\xe9 VM\n");
    let _ = std::fs::write(&path, &bytes);
    let text = super::read_text(&path).unwrap_or_default();
    let l = load(&text, "latin1.intel", 1, detect(&text), NOW).unwrap_or_default();
    assert_eq!(l.entries.len(), 1);
    assert_eq!(
        l.entries[0].note.as_deref(),
        Some("partner: caf\u{fffd} VM")
    );
}
