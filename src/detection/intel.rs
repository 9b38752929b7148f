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
//! database). Each keeps the identifiers its source gave it (a MISP event
//! and attribute uuid, a STIX id and name, a Zeek source, an SBL id) for
//! the alert's provenance. An indicator of a kind hostwatch cannot match
//! (an e-mail address, a STIX `AND`) is left out and counted by kind; a
//! value that cannot be read (`198.51.100.0/33`) is left out with its
//! place and reason; the rest of the file loads. Only a file that cannot be
//! read at all (not JSON, no indicator) is an error.

use std::collections::BTreeMap;
use std::sync::Arc;

use serde_json::Value;

use super::watchlist::{self, Entry, Pattern, WatchlistError};

/// A list file's text; bytes that are not UTF-8 (a Latin-1 description in
/// a Zeek Intel file) are replaced, the indicators read all the same.
pub fn read_text(path: &std::path::Path) -> std::io::Result<String> {
    Ok(String::from_utf8_lossy(&std::fs::read(path)?).into_owned())
}

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

/// The entries of one file, what was left out by kind, and the values
/// that could not be read (their place and why).
#[derive(Debug, Default)]
pub struct Loaded {
    pub entries: Vec<Entry>,
    pub unsupported: BTreeMap<String, u64>,
    pub skipped: Vec<String>,
}

/// Values skipped and named, at most (the rest are counted).
const MAX_NAMED_SKIPS: usize = 20;

/// What an indicator carries besides its value.
#[derive(Default)]
struct About {
    note: Option<String>,
    refs: Vec<(&'static str, Box<str>)>,
}

impl About {
    fn note(note: Option<String>) -> About {
        About {
            note,
            refs: Vec::new(),
        }
    }

    /// Adds the source's identifier `key` when it is there.
    fn with(mut self, key: &'static str, value: Option<&str>) -> About {
        if let Some(v) = value.map(str::trim).filter(|v| !v.is_empty() && *v != "-") {
            self.refs.push((key, v.into()));
        }
        self
    }
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
    /// What an indicator's number counts (`line`, `attribute`, `object`).
    place: &'static str,
    next_id: u32,
    out: Loaded,
}

impl Builder<'_> {
    fn push(&mut self, pattern: Pattern, about: About, line: usize) {
        let refs = (!about.refs.is_empty()).then(|| about.refs.into_boxed_slice());
        self.out.entries.push(Entry {
            list: self.meta.list.clone(),
            category: self.meta.category.clone(),
            signature: self.meta.signature.clone(),
            pattern,
            severity: self.meta.severity,
            candidate: false,
            allow: false,
            builds: Vec::new(),
            note: about.note,
            refs,
            id: self.next_id,
            source: self.shared_source.clone(),
            line: u32::try_from(line).unwrap_or(u32::MAX),
        });
        self.next_id = self.next_id.saturating_add(1);
    }

    /// A name or an address/network, by its look; a value that cannot be
    /// read is left out and named.
    fn value(&mut self, v: &str, about: About, line: usize) {
        let v = v.trim();
        if v.is_empty() {
            return;
        }
        if v.parse::<std::net::IpAddr>().is_ok() || v.contains('/') {
            match v.parse() {
                Ok(net) => self.push(Pattern::Net(net), about, line),
                Err(e) => self.skip_value(line, e),
            }
        } else {
            self.push(Pattern::Exact(v.to_uppercase()), about, line);
        }
    }

    /// An autonomous system (`64500` or `AS64500`).
    fn asn(&mut self, v: &str, about: About, line: usize) {
        let n = v
            .trim()
            .trim_start_matches(['A', 'S', 'a', 's'])
            .parse::<u32>();
        match n {
            Ok(n) => self.push(Pattern::Asn(n), about, line),
            Err(_) => self.skip_value(line, format!("'{v}' is not an AS number")),
        }
    }

    /// An indicator of a kind hostwatch cannot match.
    fn skip(&mut self, kind: &str) {
        *self.out.unsupported.entry(kind.to_string()).or_default() += 1;
    }

    /// A value that cannot be read: named (the first few), counted.
    fn skip_value(&mut self, line: usize, why: impl std::fmt::Display) {
        if self.out.skipped.len() < MAX_NAMED_SKIPS {
            self.out
                .skipped
                .push(format!("{} {line}: {why}", self.place));
        } else {
            *self
                .out
                .unsupported
                .entry("unreadable value".into())
                .or_default() += 1;
        }
    }

    fn error(&self, line: usize, message: impl Into<String>) -> WatchlistError {
        WatchlistError {
            source: self.source.to_string(),
            line,
            message: message.into(),
        }
    }
}

/// A list's name: its file's, or for a MISP feed's `manifest.json` its
/// folder's (the feed's name).
fn list_name(source: &str) -> String {
    let path = std::path::Path::new(source);
    let named = match path.file_name().and_then(|s| s.to_str()) {
        Some("manifest.json") => path.parent().and_then(|d| d.file_name()),
        _ => path.file_stem(),
    };
    named
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
        place: "line",
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
        let field = |c: &str| at(c).and_then(|i| f.get(i)).copied();
        let note = [field("meta.source"), field("meta.desc")]
            .into_iter()
            .flatten()
            .filter(|v| !v.is_empty() && *v != "-")
            .collect::<Vec<_>>()
            .join(": ");
        let about = About::note(Some(note).filter(|n| !n.is_empty()))
            .with("zeek_source", field("meta.source"))
            .with("zeek_desc", field("meta.desc"))
            .with("zeek_url", field("meta.url"));
        match *kind {
            "Intel::DOMAIN" | "Intel::ADDR" | "Intel::SUBNET" => b.value(value, about, n),
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
                let sbl = v["sblid"].as_str();
                let about = About::note(sbl.map(str::to_owned)).with("sbl", sbl);
                b.value(cidr, about, n);
            } else if let Some(asn) = v["asn"].as_u64() {
                let about = About::note(v["asname"].as_str().map(str::to_owned))
                    .with("as_name", v["asname"].as_str());
                b.asn(&asn.to_string(), about, n);
            }
            // The closing metadata line has neither.
            continue;
        }
        let (cidr, sbl) = line.split_once(';').unwrap_or((line, ""));
        let sbl = Some(sbl.trim()).filter(|s| !s.is_empty());
        b.value(
            cidr,
            About::note(sbl.map(str::to_owned)).with("sbl", sbl),
            n,
        );
    }
    Ok(())
}

/// `value[,kind[,note]]` as RFC 4180 has it (quoted fields may hold
/// commas), `#` comments, an optional header naming `value`.
fn csv(text: &str, b: &mut Builder<'_>) -> Result<(), WatchlistError> {
    let mut reader = csv::ReaderBuilder::new()
        .has_headers(false)
        .flexible(true)
        .comment(Some(b'#'))
        .trim(csv::Trim::All)
        .from_reader(text.as_bytes());
    for record in reader.records() {
        let record = match record {
            Ok(r) => r,
            Err(e) => {
                let line = e.position().map_or(0, |p| p.line() as usize);
                b.skip_value(line, e);
                continue;
            }
        };
        let n = record.position().map_or(0, |p| p.line() as usize);
        let value = record.get(0).unwrap_or_default();
        let kind = record.get(1).unwrap_or_default().to_ascii_lowercase();
        let note = record.get(2).map(str::to_owned).filter(|s| !s.is_empty());
        if n == 1 && value.eq_ignore_ascii_case("value") {
            continue;
        }
        match kind.as_str() {
            "" | "hostname" | "domain" | "ip" | "cidr" | "net" => {
                b.value(value, About::note(note), n)
            }
            other => b.skip(other),
        }
    }
    Ok(())
}

fn json(text: &str, b: &Builder<'_>) -> Result<Value, WatchlistError> {
    serde_json::from_str(text).map_err(|e| b.error(e.line(), e.to_string()))
}

/// A MISP event: its attributes that are for detection (`to_ids`), those
/// of its objects too (a `domain-ip` or `hostname` object holds most of a
/// feed's indicators); its tags become the category, its info the
/// signature text, its threat level the severity.
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
    b.place = "attribute";
    for e in events {
        if !e["Attribute"].is_array() && !e["Object"].is_array() {
            return Err(b.error(0, "a MISP event needs an Attribute or Object list"));
        }
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
        let event = e["uuid"].as_str();
        // Attributes are numbered in the order they stand, the event's own
        // first, then each object's.
        let objects = e["Object"].as_array().into_iter().flatten();
        let attrs = e["Attribute"]
            .as_array()
            .into_iter()
            .flatten()
            .map(|a| (a, None))
            .chain(objects.flat_map(|o| {
                o["Attribute"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .map(move |a| (a, Some(o)))
            }));
        for (i, (a, object)) in attrs.enumerate() {
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
            let about = About::note(note)
                .with("misp_event_uuid", event)
                .with("misp_attribute_uuid", a["uuid"].as_str())
                .with("misp_object", object.and_then(|o| o["name"].as_str()));
            match kind {
                "hostname" | "domain" | "ip-src" | "ip-dst" => b.value(value, about, n),
                // A composite value: its first part is the name or address.
                "domain|ip" | "hostname|port" | "ip-src|port" | "ip-dst|port" => {
                    b.value(value.split('|').next().unwrap_or_default(), about, n)
                }
                "AS" => b.asn(value, about, n),
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
    b.place = "value";
    for (i, value) in values.iter().filter_map(Value::as_str).enumerate() {
        let n = i + 1;
        match kind.as_str() {
            "cidr" | "string" | "hostname" => b.value(value, About::default(), n),
            "substring" => {
                let glob = format!("*{}*", value.replace(['*', '?', '[', ']'], ""));
                b.push(Pattern::Glob(glob), About::default(), n);
            }
            "regex" => match regex::Regex::new(&format!("(?i){value}")) {
                Ok(_) => b.push(Pattern::Regex(value.to_string()), About::default(), n),
                Err(e) => b.skip_value(n, format!("invalid regular expression: {e}")),
            },
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
        let text = read_text(&path)
            .map_err(|e| b.error(0, format!("feed event {}: {e}", path.display())))?;
        let v: Value = serde_json::from_str(&text)
            .map_err(|e| b.error(0, format!("feed event {}: {e}", path.display())))?;
        if is_manifest(&v) {
            return Err(b.error(0, format!("feed event {} is a manifest", path.display())));
        }
        // Each entry names the event file it came from, not the manifest.
        let manifest_source = std::mem::replace(
            &mut b.shared_source,
            crate::render::escape_control(&path.display().to_string()).into(),
        );
        let read = misp(&text, b);
        b.shared_source = manifest_source;
        read?;
    }
    Ok(())
}

/// A STIX 2.1 bundle: its indicators whose pattern compares domain names,
/// addresses or autonomous systems ([`stix_pattern`]); revoked and expired
/// ones left out.
fn stix(text: &str, b: &mut Builder<'_>, now: i64) -> Result<(), WatchlistError> {
    let v = json(text, b)?;
    let Some(objects) = v["objects"].as_array() else {
        return Err(b.error(0, "a STIX bundle needs an objects list"));
    };
    b.place = "object";
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
        let about = || {
            About::note(o["name"].as_str().map(str::to_owned))
                .with("stix_id", o["id"].as_str())
                .with("stix_name", o["name"].as_str())
        };
        match stix_pattern(pattern) {
            Ok(terms) => {
                for t in terms {
                    match t {
                        Term::Value(v) => b.value(&v, about(), n),
                        Term::Asn(v) => b.asn(&v, about(), n),
                        Term::Pattern(p) => b.push(p, about(), n),
                    }
                }
            }
            Err(Unsupported(what)) => b.skip(&what),
        }
    }
    Ok(())
}

/// What one comparison of a STIX pattern watches.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Term {
    /// A name, address or network, by its look.
    Value(String),
    Asn(String),
    /// A glob (`LIKE`), a regular expression (`MATCHES`), a negation (`!=`).
    Pattern(Pattern),
}

/// Why a STIX pattern is not read, as counted.
#[derive(Debug, PartialEq, Eq)]
struct Unsupported(String);

/// A STIX pattern (STIX 2.1 9): one observation or several joined by `OR`,
/// each one comparison or several joined by `OR`, of `domain-name:value`,
/// `ipv4-addr:value`, `ipv6-addr:value` or `autonomous-system:number`,
/// with `=`, `!=` (`NOT =`), `IN (...)`, `LIKE`, `MATCHES` or `ISSUBSET`.
/// `AND`, the other operators and other objects are refused by name.
fn stix_pattern(p: &str) -> Result<Vec<Term>, Unsupported> {
    let tokens = stix_tokens(p).ok_or_else(|| Unsupported("malformed pattern".into()))?;
    let mut terms = Vec::new();
    let mut rest: &[Tok] = &tokens;
    loop {
        let [Tok::Open, tail @ ..] = rest else {
            return Err(Unsupported("malformed pattern".into()));
        };
        rest = tail;
        loop {
            let (t, tail) = stix_comparison(rest)?;
            terms.extend(t);
            rest = tail;
            match rest {
                [Tok::Word(w), tail @ ..] if w.eq_ignore_ascii_case("OR") => rest = tail,
                [Tok::Word(w), ..] if w.eq_ignore_ascii_case("AND") => {
                    return Err(Unsupported("compound pattern (AND)".into()))
                }
                _ => break,
            }
        }
        let [Tok::Close, tail @ ..] = rest else {
            return Err(Unsupported("malformed pattern".into()));
        };
        rest = tail;
        match rest {
            [] => return Ok(terms),
            [Tok::Word(w), tail @ ..] if w.eq_ignore_ascii_case("OR") => rest = tail,
            [Tok::Word(w), ..] => {
                return Err(Unsupported(format!(
                    "compound pattern ({})",
                    w.to_uppercase()
                )))
            }
            _ => return Err(Unsupported("malformed pattern".into())),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Tok {
    Open,
    Close,
    LParen,
    RParen,
    Comma,
    Str(String),
    Word(String),
}

/// Brackets, parentheses, commas, quoted strings (`\'` and `\\` escaped)
/// and words (everything else between blanks).
fn stix_tokens(p: &str) -> Option<Vec<Tok>> {
    let mut out = Vec::new();
    let mut chars = p.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            c if c.is_whitespace() => {}
            '[' => out.push(Tok::Open),
            ']' => out.push(Tok::Close),
            '(' => out.push(Tok::LParen),
            ')' => out.push(Tok::RParen),
            ',' => out.push(Tok::Comma),
            '\'' => {
                let mut v = String::new();
                loop {
                    match chars.next()? {
                        '\\' => v.push(chars.next()?),
                        '\'' => break,
                        c => v.push(c),
                    }
                }
                out.push(Tok::Str(v));
            }
            c => {
                let mut w = String::from(c);
                while let Some(&n) = chars.peek() {
                    if n.is_whitespace() || "[]()',".contains(n) {
                        break;
                    }
                    w.push(n);
                    chars.next();
                }
                out.push(Tok::Word(w));
            }
        }
    }
    Some(out)
}

/// One comparison: `OBJECT:PROPERTY [NOT] OP VALUE`.
fn stix_comparison(t: &[Tok]) -> Result<(Vec<Term>, &[Tok]), Unsupported> {
    let malformed = || Unsupported("malformed pattern".into());
    let [Tok::Word(path), rest @ ..] = t else {
        return Err(malformed());
    };
    let (object, property) = path.split_once(':').ok_or_else(malformed)?;
    let (negated, rest) = match rest {
        [Tok::Word(w), tail @ ..] if w.eq_ignore_ascii_case("NOT") => (true, tail),
        _ => (false, rest),
    };
    let [Tok::Word(op), rest @ ..] = rest else {
        return Err(malformed());
    };
    let op = op.to_uppercase();
    let kind = match (object, property) {
        ("domain-name", "value") => "name",
        ("ipv4-addr" | "ipv6-addr", "value") => "address",
        ("autonomous-system", "number") => "asn",
        _ => return Err(Unsupported(object.to_string())),
    };
    let one = |rest: &[Tok]| -> Result<(String, usize), Unsupported> {
        match rest {
            [Tok::Str(v), ..] => Ok((v.clone(), 1)),
            [Tok::Word(v), ..] if kind == "asn" => Ok((v.clone(), 1)),
            _ => Err(malformed()),
        }
    };
    let term = |v: String| {
        if kind == "asn" {
            Term::Asn(v)
        } else {
            Term::Value(v)
        }
    };
    let (terms, used) = match (op.as_str(), negated) {
        ("=", false) => {
            let (v, n) = one(rest)?;
            (vec![term(v)], n)
        }
        ("!=", false) | ("=", true) if kind == "name" => {
            let (v, n) = one(rest)?;
            (vec![Term::Pattern(Pattern::NotExact(v.to_uppercase()))], n)
        }
        ("IN", false) => {
            let [Tok::LParen, list @ ..] = rest else {
                return Err(malformed());
            };
            let end = list
                .iter()
                .position(|t| *t == Tok::RParen)
                .ok_or_else(malformed)?;
            let mut values = Vec::new();
            for item in &list[..end] {
                match item {
                    Tok::Str(v) | Tok::Word(v) => values.push(term(v.clone())),
                    Tok::Comma => {}
                    _ => return Err(malformed()),
                }
            }
            (values, end + 2)
        }
        ("LIKE", false) if kind == "name" => {
            let (v, n) = one(rest)?;
            let glob: String = v
                .chars()
                .map(|c| match c {
                    '%' => '*',
                    '_' => '?',
                    c => c,
                })
                .collect();
            (vec![Term::Pattern(Pattern::Glob(glob))], n)
        }
        ("MATCHES", false) if kind == "name" => {
            let (v, n) = one(rest)?;
            if regex::Regex::new(&format!("(?i){v}")).is_err() {
                return Err(Unsupported("invalid MATCHES expression".into()));
            }
            (vec![Term::Pattern(Pattern::Regex(v))], n)
        }
        ("ISSUBSET", false) if kind == "address" => {
            let (v, n) = one(rest)?;
            (vec![Term::Value(v)], n)
        }
        (op, not) => {
            let op = if not {
                format!("NOT {op}")
            } else {
                op.to_string()
            };
            return Err(Unsupported(format!("STIX operator {op} on {object}")));
        }
    };
    Ok((terms, rest.get(used..).unwrap_or_default()))
}

#[cfg(test)]
#[path = "intel_tests.rs"]
mod tests;
