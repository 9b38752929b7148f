//! Suricata's EVE schema is the contract for every key Suricata also
//! writes: every event hostwatch writes for every capture in `fixtures/`
//! is validated against the schemas of Suricata 7.0.10 and 8.0.6
//! (`fixtures/eve-schema/`), with `additionalProperties` relaxed so that
//! hostwatch's own keys are allowed (and counted); a type or pattern
//! conflict fails with its path and value. And across all events, one
//! dotted path has one JSON type, as an Elasticsearch index requires.

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use common::{fixture, run_with};
use hostwatch::detection::{watchlist, Matcher};
use hostwatch::pipeline::{Config, Input};
use serde_json::Value;

/// Every capture under `fixtures/`.
fn captures() -> Vec<PathBuf> {
    fn walk(dir: &Path, out: &mut Vec<PathBuf>) {
        let Ok(entries) = std::fs::read_dir(dir) else {
            return;
        };
        for e in entries.flatten() {
            let p = e.path();
            let name = p.to_string_lossy().to_string();
            if p.is_dir() {
                walk(&p, out);
            } else if [".pcap", ".pcapng", ".pcap.gz", ".pcapng.gz"]
                .iter()
                .any(|x| name.ends_with(x))
            {
                out.push(p);
            }
        }
    }
    let mut out = Vec::new();
    walk(&fixture(""), &mut out);
    out.sort();
    out
}

/// The events of every capture, as the sensor writes them (with its name),
/// each with the capture it came from: once with the built-in lists, once
/// with every name watched, so that every record type (a `tls` certificate
/// is written only when a name in it is watched) and every name field
/// stands in an alert too.
fn all_events() -> Vec<(String, Value)> {
    let everything =
        watchlist::parse("@list everything\nre:.\n", "everything.list", 7000).expect("list");
    let matchers = [
        std::sync::Arc::new(Matcher::with_builtins(true, Vec::new()).expect("built-ins")),
        std::sync::Arc::new(Matcher::with_builtins(true, everything).expect("matcher")),
    ];
    let mut events = Vec::new();
    for (cap, matcher) in captures()
        .iter()
        .flat_map(|c| matchers.iter().map(move |m| (c, m)))
    {
        let cfg = Config {
            inputs: vec![Input::File(cap.display().to_string())],
            sensor_name: Some("sensor-01".into()),
            ..Config::default()
        };
        let (ev, _, _) = run_with(cfg, matcher.clone());
        let name = cap
            .strip_prefix(fixture(""))
            .map_or_else(|_| cap.display().to_string(), |p| p.display().to_string());
        events.extend(ev.into_iter().map(|e| (name.clone(), e)));
    }
    events
}

/// The schema with every `additionalProperties: false` made `true`.
fn relaxed(file: &str) -> Value {
    fn relax(v: &mut Value) {
        match v {
            Value::Object(m) => {
                if m.get("additionalProperties") == Some(&Value::Bool(false)) {
                    m.insert("additionalProperties".into(), Value::Bool(true));
                }
                m.values_mut().for_each(relax);
            }
            Value::Array(a) => a.iter_mut().for_each(relax),
            _ => {}
        }
    }
    let text = std::fs::read_to_string(fixture("eve-schema").join(file)).expect("schema file");
    let mut v: Value = serde_json::from_str(&text).expect("schema JSON");
    relax(&mut v);
    v
}

/// The keys of `event` the schema does not define, as dotted paths.
fn unknown_keys(schema: &Value, node: &Value, event: &Value, path: &str, out: &mut Vec<String>) {
    let node = match node.get("$ref").and_then(Value::as_str) {
        Some(r) => r
            .strip_prefix("#/$defs/")
            .and_then(|d| schema["$defs"].get(d))
            .unwrap_or(node),
        None => node,
    };
    match event {
        Value::Object(m) => {
            for (k, v) in m {
                let p = if path.is_empty() {
                    k.clone()
                } else {
                    format!("{path}.{k}")
                };
                match node.get("properties").and_then(|ps| ps.get(k)) {
                    Some(sub) => unknown_keys(schema, sub, v, &p, out),
                    None => out.push(p),
                }
            }
        }
        Value::Array(a) => {
            if let Some(items) = node.get("items") {
                for v in a {
                    unknown_keys(schema, items, v, path, out);
                }
            }
        }
        _ => {}
    }
}

#[test]
fn every_event_is_valid_against_suricatas_schemas() {
    let events = all_events();
    assert!(events.len() > 1_900, "{} events", events.len());
    let types: BTreeSet<&str> = events
        .iter()
        .filter_map(|(_, e)| e["event_type"].as_str())
        .collect();
    // Every event type is among those checked.
    assert_eq!(
        types.into_iter().collect::<Vec<_>>(),
        [
            "alert",
            "browser",
            "cldap",
            "dhcp",
            "inventory",
            "krb5",
            "llmnr",
            "mdns",
            "nbns",
            "ntlm",
            "rdp",
            "smb",
            "smtp",
            "stats",
            "tls"
        ]
    );
    for file in ["suricata-7.0.10.json", "suricata-8.0.6.json"] {
        let schema = relaxed(file);
        let validator = jsonschema::validator_for(&schema).expect("the schema compiles");
        let mut conflicts = Vec::new();
        let mut unknown: BTreeMap<String, usize> = BTreeMap::new();
        for (cap, e) in &events {
            for err in validator.iter_errors(e) {
                conflicts.push(format!(
                    "{cap}: {} at /{}: {}",
                    e["event_type"],
                    err.instance_path(),
                    err
                ));
            }
            let mut keys = Vec::new();
            unknown_keys(&schema, &schema, e, "", &mut keys);
            for k in keys {
                *unknown.entry(k).or_default() += 1;
            }
        }
        eprintln!(
            "{file}: {} events valid; {} keys of hostwatch's own (not in the schema), e.g. {:?}",
            events.len(),
            unknown.len(),
            unknown.keys().take(5).collect::<Vec<_>>()
        );
        assert!(
            conflicts.is_empty(),
            "{file}: {} conflicts:\n{}",
            conflicts.len(),
            conflicts[..conflicts.len().min(20)].join("\n")
        );
        // The keys EVE's consumers rely on are Suricata's, not additions.
        for k in [
            "timestamp",
            "host",
            "app_proto",
            "alert.action",
            "alert.gid",
            "alert.rev",
        ] {
            assert!(!unknown.contains_key(k), "{k} is not EVE's");
        }
    }
}

/// A JSON value's type as an index maps it.
fn kind(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "boolean",
        Value::Number(_) => "number",
        Value::String(_) => "string",
        Value::Array(_) => "array",
        Value::Object(_) => "object",
    }
}

fn paths(v: &Value, path: &str, out: &mut BTreeMap<String, BTreeSet<&'static str>>) {
    match v {
        Value::Object(m) => {
            out.entry(path.to_string()).or_default().insert("object");
            for (k, x) in m {
                let p = if path.is_empty() {
                    k.clone()
                } else {
                    format!("{path}.{k}")
                };
                paths(x, &p, out);
            }
        }
        // An array maps as its elements do.
        Value::Array(a) => a.iter().for_each(|x| paths(x, path, out)),
        other => {
            out.entry(path.to_string()).or_default().insert(kind(other));
        }
    }
}

#[test]
fn one_dotted_path_has_one_json_type_across_all_events() {
    let mut types: BTreeMap<String, BTreeSet<&'static str>> = BTreeMap::new();
    for (_, e) in all_events() {
        paths(&e, "", &mut types);
    }
    types.remove("");
    let mixed: Vec<String> = types
        .iter()
        .filter(|(_, t)| t.len() > 1)
        .map(|(p, t)| format!("{p}: {t:?}"))
        .collect();
    assert!(mixed.is_empty(), "{mixed:#?}");
    // A fair share of the layout was seen.
    assert!(types.len() > 300, "{} paths", types.len());
    // The top-level `host` is EVE's sensor name, a string everywhere.
    assert_eq!(types.get("host").map(|t| t.len()), Some(1));
    assert!(types["host"].contains("string"));
}
