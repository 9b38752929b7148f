//! Threat-intel files in the formats SOCs already keep, read into watch-list
//! entries: MISP events (PyMISP's JSON, alone or wrapped in `Event`) and
//! feeds (a `manifest.json` and its event files beside it), STIX
//! 2.1 bundles, Zeek Intel files, Spamhaus DROP (text or JSON lines) and
//! ASN-DROP, and plain CSV; anything else is the list format of
//! [`super::watchlist`]. The format is recognised by content, or named
//! (`--watchlist FORMAT:FILE`).
//!
//! Host names and domains become exact names, addresses and networks
//! `net:` entries, autonomous systems `asn:` entries (matched with an ASN
//! database). An indicator of a kind hostwatch cannot match (an e-mail
//! address, a compound STIX pattern) is left out and counted by kind, so that the
//! caller names each kind once; a malformed file is an error naming its
//! line (or, for JSON, what was wrong).

use std::collections::BTreeMap;
use std::sync::Arc;

use serde_json::Value;

use super::watchlist::{self, Entry, Pattern, WatchlistError};

/// The formats read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    List,
    Misp,
    Stix,
    Zeek,
    Drop,
    Csv,
    /// A MISP warning list: names and networks known benign, read as an
    /// allow list.
    Warninglist,
}

impl std::str::FromStr for Format {
    type Err = String;

    fn from_str(s: &str) -> Result<Format, String> {
        Ok(match s {
            "list" => Format::List,
            "misp" => Format::Misp,
            "stix" => Format::Stix,
            "zeek" => Format::Zeek,
            "drop" => Format::Drop,
            "csv" => Format::Csv,
            "warninglist" => Format::Warninglist,
            _ => {
                return Err(format!(
                    "unknown list format '{s}' (list, misp, stix, zeek, drop, csv, warninglist)"
                ))
            }
        })
    }
}

/// Recognises a file's format from its first meaningful line.
pub fn detect(text: &str) -> Format {
    let t = text.trim_start();
    if t.starts_with('{') {
        if t.contains("\"type\"") && t.contains("\"bundle\"") && t.contains("\"objects\"") {
            return Format::Stix;
        }
        if t.contains("\"Attribute\"") || t.contains("\"Event\"") || t.contains("\"Orgc\"") {
            return Format::Misp;
        }
        if t.contains("\"matching_attributes\"") && t.contains("\"list\"") {
            return Format::Warninglist;
        }
        // JSON lines: DROP (`cidr`) and ASN-DROP (`asn`).
        return Format::Drop;
    }
    if t.lines().take(8).any(|l| l.starts_with("#fields")) {
        return Format::Zeek;
    }
    let first = t.lines().find(|l| !l.trim().is_empty()).unwrap_or("");
    let csv_like = first
        .split_once(',')
        .is_some_and(|(v, _)| !v.contains(char::is_whitespace) && !first.contains('='));
    if first.starts_with(';') || first.contains(" ; SBL") {
        Format::Drop
    } else if csv_like && !first.starts_with(['@', '#']) {
        Format::Csv
    } else {
        Format::List
    }
}

/// The entries of one file, and what was left out by kind.
#[derive(Debug, Default)]
pub struct Loaded {
    pub entries: Vec<Entry>,
    pub unsupported: BTreeMap<String, u64>,
}

/// How a file's entries read in alerts.
struct Meta {
    list: Arc<str>,
    category: Arc<str>,
    signature: Arc<str>,
    severity: u8,
}

struct Builder<'a> {
    meta: Meta,
    source: &'a str,
    /// `source`, shared by the entries.
    shared_source: Arc<str>,
    next_id: u32,
    out: Loaded,
}

impl Builder<'_> {
    fn push(&mut self, pattern: Pattern, note: Option<String>, line: usize) {
        self.out.entries.push(Entry {
            list: self.meta.list.clone(),
            category: self.meta.category.clone(),
            signature: self.meta.signature.clone(),
            pattern,
            severity: self.meta.severity,
            candidate: false,
            allow: false,
            builds: Vec::new(),
            note,
            id: self.next_id,
            source: self.shared_source.clone(),
            line: u32::try_from(line).unwrap_or(u32::MAX),
        });
        self.next_id = self.next_id.saturating_add(1);
    }

    /// A name or an address/network, by its look.
    fn value(&mut self, v: &str, note: Option<String>, line: usize) -> Result<(), WatchlistError> {
        let v = v.trim();
        if v.is_empty() {
            return Ok(());
        }
        if v.parse::<std::net::IpAddr>().is_ok() || v.contains('/') {
            let net = v.parse().map_err(|e: String| self.error(line, e))?;
            self.push(Pattern::Net(net), note, line);
        } else {
            self.push(Pattern::Exact(v.to_uppercase()), note, line);
        }
        Ok(())
    }

    /// An autonomous system (`64500` or `AS64500`).
    fn asn(&mut self, v: &str, note: Option<String>, line: usize) -> Result<(), WatchlistError> {
        let n = v
            .trim()
            .trim_start_matches(['A', 'S', 'a', 's'])
            .parse::<u32>();
        let n = n.map_err(|_| self.error(line, format!("'{v}' is not an AS number")))?;
        self.push(Pattern::Asn(n), note, line);
        Ok(())
    }

    fn skip(&mut self, kind: &str) {
        *self.out.unsupported.entry(kind.to_string()).or_default() += 1;
    }

    fn error(&self, line: usize, message: impl Into<String>) -> WatchlistError {
        WatchlistError {
            source: self.source.to_string(),
            line,
            message: message.into(),
        }
    }
}

fn list_name(source: &str) -> String {
    std::path::Path::new(source)
        .file_stem()
        .and_then(|s| s.to_str())
        .unwrap_or("intel")
        .to_string()
}

/// Reads `text` (from `source`, a path for messages) in `format`; entries
/// without their own ids are numbered from `base_id`. `now` (Unix seconds)
/// decides which STIX indicators have expired.
pub fn load(
    text: &str,
    source: &str,
    base_id: u32,
    format: Format,
    now: i64,
) -> Result<Loaded, WatchlistError> {
    let name = list_name(source);
    let meta = |category: &str, signature: String| Meta {
        list: Arc::from(name.as_str()),
        category: Arc::from(category),
        signature: Arc::from(signature),
        severity: 2,
    };
    let mut b = Builder {
        meta: meta(
            "Threat intel indicator",
            format!("Threat intel indicator on list {name}"),
        ),
        source,
        shared_source: Arc::from(source),
        next_id: base_id,
        out: Loaded::default(),
    };
    match format {
        Format::List => {
            b.out.entries = watchlist::parse(text, source, base_id)?;
        }
        Format::Zeek => zeek(text, &mut b)?,
        Format::Drop => {
            b.meta = meta(
                "Spamhaus DROP network",
                format!("Network on Spamhaus DROP ({name})"),
            );
            drop_list(text, &mut b)?;
        }
        Format::Csv => csv(text, &mut b)?,
        Format::Misp => misp(text, &mut b)?,
        Format::Stix => stix(text, &mut b, now)?,
        Format::Warninglist => warninglist(text, &mut b)?,
    }
    if b.out.entries.is_empty() {
        return Err(b.error(0, "the file has no indicator hostwatch can match"));
    }
    Ok(b.out)
}

/// `#fields indicator indicator_type meta.source ...`, tab-separated.
fn zeek(text: &str, b: &mut Builder<'_>) -> Result<(), WatchlistError> {
    let mut cols: Vec<&str> = Vec::new();
    for (i, line) in text.lines().enumerate() {
        let n = i + 1;
        if let Some(f) = line.strip_prefix("#fields") {
            cols = f.split('\t').filter(|c| !c.is_empty()).collect();
            continue;
        }
        if line.starts_with('#') || line.trim().is_empty() {
            continue;
        }
        let at = |name: &str| cols.iter().position(|c| *c == name);
        let (Some(vi), Some(ti)) = (at("indicator"), at("indicator_type")) else {
            return Err(b.error(
                n,
                "a Zeek Intel file needs #fields with indicator and indicator_type",
            ));
        };
        let f: Vec<&str> = line.split('\t').collect();
        let (Some(value), Some(kind)) = (f.get(vi), f.get(ti)) else {
            return Err(b.error(n, "fewer fields than #fields names"));
        };
        let note = ["meta.source", "meta.desc"]
            .iter()
            .filter_map(|c| at(c).and_then(|i| f.get(i)))
            .filter(|v| !v.is_empty() && **v != "-")
            .copied()
            .collect::<Vec<_>>()
            .join(": ");
        let note = Some(note).filter(|n| !n.is_empty());
        match *kind {
            "Intel::DOMAIN" | "Intel::ADDR" | "Intel::SUBNET" => b.value(value, note, n)?,
            other => b.skip(other),
        }
    }
    Ok(())
}

/// DROP as text (`CIDR ; SBLnnn`) or JSON lines (`{"cidr": ..., "sblid": ...}`),
/// and ASN-DROP (`{"asn": ...}`).
fn drop_list(text: &str, b: &mut Builder<'_>) -> Result<(), WatchlistError> {
    for (i, line) in text.lines().enumerate() {
        let n = i + 1;
        let line = line.trim();
        if line.is_empty() || line.starts_with(';') {
            continue;
        }
        if line.starts_with('{') {
            let v: Value = serde_json::from_str(line).map_err(|e| b.error(n, e.to_string()))?;
            if let Some(cidr) = v["cidr"].as_str() {
                let note = v["sblid"].as_str().map(str::to_owned);
                b.value(cidr, note, n)?;
            } else if let Some(asn) = v["asn"].as_u64() {
                let note = v["asname"].as_str().map(str::to_owned);
                b.asn(&asn.to_string(), note, n)?;
            }
            // The closing metadata line has neither.
            continue;
        }
        let (cidr, sbl) = line.split_once(';').unwrap_or((line, ""));
        let note = Some(sbl.trim().to_string()).filter(|s| !s.is_empty());
        b.value(cidr, note, n)?;
    }
    Ok(())
}

/// `value[,kind[,note]]`, `#` comments, an optional header naming `value`.
fn csv(text: &str, b: &mut Builder<'_>) -> Result<(), WatchlistError> {
    for (i, line) in text.lines().enumerate() {
        let n = i + 1;
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let mut f = line.splitn(3, ',').map(|c| c.trim().trim_matches('"'));
        let value = f.next().unwrap_or_default();
        let kind = f.next().unwrap_or_default().to_ascii_lowercase();
        let note = f.next().map(str::to_owned).filter(|s| !s.is_empty());
        if n == 1 && value.eq_ignore_ascii_case("value") {
            continue;
        }
        match kind.as_str() {
            "" | "hostname" | "domain" | "ip" | "cidr" | "net" => b.value(value, note, n)?,
            other => b.skip(other),
        }
    }
    Ok(())
}

fn json(text: &str, b: &Builder<'_>) -> Result<Value, WatchlistError> {
    serde_json::from_str(text).map_err(|e| b.error(e.line(), e.to_string()))
}

/// A MISP event: its attributes that are for detection (`to_ids`); its
/// tags become the category, its info the signature text, its threat level
/// the severity.
fn misp(text: &str, b: &mut Builder<'_>) -> Result<(), WatchlistError> {
    let v = json(text, b)?;
    if is_manifest(&v) {
        return misp_feed(&v, b);
    }
    let events: Vec<&Value> = match (&v["Event"], &v["response"]) {
        (Value::Object(_), _) => vec![&v["Event"]],
        (_, Value::Array(r)) => r.iter().map(|e| &e["Event"]).collect(),
        _ => vec![&v],
    };
    for e in events {
        let Some(attrs) = e["Attribute"].as_array() else {
            return Err(b.error(0, "a MISP event needs an Attribute list"));
        };
        let tags: Vec<&str> = e["Tag"]
            .as_array()
            .map(|t| t.iter().filter_map(|t| t["name"].as_str()).collect())
            .unwrap_or_default();
        if let Some(info) = e["info"].as_str() {
            b.meta.signature = Arc::from(info);
        }
        if !tags.is_empty() {
            b.meta.category = Arc::from(tags.join(", "));
        }
        let level = match &e["threat_level_id"] {
            Value::String(s) => s.clone(),
            Value::Number(n) => n.to_string(),
            _ => String::new(),
        };
        b.meta.severity = match level.as_str() {
            "1" => 1,
            "3" => 3,
            _ => 2,
        };
        for (i, a) in attrs.iter().enumerate() {
            let n = i + 1;
            if a["to_ids"] == Value::Bool(false) {
                continue;
            }
            let (Some(kind), Some(value)) = (a["type"].as_str(), a["value"].as_str()) else {
                continue;
            };
            let note = a["comment"]
                .as_str()
                .filter(|c| !c.is_empty())
                .map(str::to_owned);
            match kind {
                "hostname" | "domain" | "ip-src" | "ip-dst" => b.value(value, note, n)?,
                "AS" => b.asn(value, note, n)?,
                other => b.skip(other),
            }
        }
    }
    Ok(())
}

/// A MISP warning list (`name`, `type`, `list`): every value allowed.
fn warninglist(text: &str, b: &mut Builder<'_>) -> Result<(), WatchlistError> {
    let v = json(text, b)?;
    let Some(values) = v["list"].as_array() else {
        return Err(b.error(0, "a MISP warning list needs a list"));
    };
    if let Some(name) = v["name"].as_str() {
        b.meta.signature = Arc::from(name);
        b.meta.category = Arc::from("MISP warning list");
    }
    let kind = v["type"].as_str().unwrap_or("string").to_string();
    let first = b.out.entries.len();
    for (i, value) in values.iter().filter_map(Value::as_str).enumerate() {
        let n = i + 1;
        match kind.as_str() {
            "cidr" | "string" | "hostname" => b.value(value, None, n)?,
            "substring" => {
                let glob = format!("*{}*", value.replace(['*', '?', '[', ']'], ""));
                b.push(Pattern::Glob(glob), None, n);
            }
            "regex" => {
                if regex::Regex::new(&format!("(?i){value}")).is_ok() {
                    b.push(Pattern::Regex(value.to_string()), None, n);
                } else {
                    b.skip("invalid regular expression");
                }
            }
            other => b.skip(other),
        }
    }
    for e in b.out.entries.iter_mut().skip(first) {
        e.allow = true;
    }
    Ok(())
}

/// A MISP feed's `manifest.json`: event UUIDs to their summaries.
fn is_manifest(v: &Value) -> bool {
    v.as_object().is_some_and(|m| {
        !m.is_empty() && m.iter().all(|(k, e)| is_uuid(k) && e.get("info").is_some())
    })
}

fn is_uuid(s: &str) -> bool {
    s.len() == 36 && s.chars().all(|c| c.is_ascii_hexdigit() || c == '-')
}

/// Events a manifest lists, feed events can be many.
const MAX_FEED_EVENTS: usize = 100_000;

/// A MISP feed: the manifest lists the events, each in `UUID.json` beside
/// it (as MISP's feed generator writes them). The manifest's keys are
/// checked to be UUIDs before they become file names.
fn misp_feed(manifest: &Value, b: &mut Builder<'_>) -> Result<(), WatchlistError> {
    let dir = std::path::Path::new(b.source)
        .parent()
        .map(std::path::Path::to_path_buf)
        .unwrap_or_default();
    let uuids: Vec<String> = manifest
        .as_object()
        .map(|m| m.keys().take(MAX_FEED_EVENTS).cloned().collect())
        .unwrap_or_default();
    for uuid in uuids {
        let path = dir.join(format!("{uuid}.json"));
        let text = std::fs::read_to_string(&path)
            .map_err(|e| b.error(0, format!("feed event {}: {e}", path.display())))?;
        let v: Value = serde_json::from_str(&text)
            .map_err(|e| b.error(0, format!("feed event {}: {e}", path.display())))?;
        if is_manifest(&v) {
            return Err(b.error(0, format!("feed event {} is a manifest", path.display())));
        }
        misp(&text, b)?;
    }
    Ok(())
}

/// A STIX 2.1 bundle: its indicators whose pattern is one comparison of a
/// domain name, an address or a network; revoked and expired ones left out.
fn stix(text: &str, b: &mut Builder<'_>, now: i64) -> Result<(), WatchlistError> {
    let v = json(text, b)?;
    let Some(objects) = v["objects"].as_array() else {
        return Err(b.error(0, "a STIX bundle needs an objects list"));
    };
    for (i, o) in objects.iter().enumerate() {
        let n = i + 1;
        if o["type"] != "indicator" {
            continue;
        }
        if o["revoked"] == Value::Bool(true) {
            continue;
        }
        if o["valid_until"]
            .as_str()
            .and_then(crate::render::parse_rfc3339)
            .is_some_and(|t| t <= now)
        {
            continue;
        }
        let pattern = o["pattern"].as_str().unwrap_or_default();
        let note = o["name"].as_str().map(str::to_owned);
        match simple_pattern(pattern) {
            Some(("domain-name" | "ipv4-addr" | "ipv6-addr", value)) => b.value(value, note, n)?,
            Some(("autonomous-system", value)) => b.asn(value, note, n)?,
            Some((object, _)) => b.skip(object),
            None => b.skip("compound or unsupported pattern"),
        }
    }
    Ok(())
}

/// `[OBJECT:PROPERTY = 'VALUE']` (or a number): the object type and value.
fn simple_pattern(p: &str) -> Option<(&str, &str)> {
    let inner = p.trim().strip_prefix('[')?.strip_suffix(']')?;
    if inner.contains(['[', ']']) {
        return None;
    }
    let (lhs, rhs) = inner.split_once('=')?;
    let (object, _property) = lhs.trim().split_once(':')?;
    let value = rhs.trim();
    let value = value
        .strip_prefix('\'')
        .and_then(|v| v.strip_suffix('\''))
        .unwrap_or(value);
    (!value.contains(['\'', ' '])).then_some((object, value))
}

#[cfg(test)]
#[path = "intel_tests.rs"]
mod tests;
