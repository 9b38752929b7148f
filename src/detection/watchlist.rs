//! Watch lists: a small text format, parsed once, compiled into one
//! matcher (a hash map for exact names, a `RegexSet` for globs and regular
//! expressions) that every worker shares.
//!
//! Format, one item a line:
//! - blank lines and lines starting with `#` are ignored;
//! - `@list NAME`, `@severity 1..3`, `@category TEXT`, `@signature TEXT`,
//!   `@id N` set the list's name, default severity, alert category,
//!   signature text and first signature id;
//! - `@allow yes` makes the list an allow list: its names and networks
//!   never alert (a lab's own VMs, a warning list of benign names);
//! - anything else is an entry: `PATTERN [severity=N] [candidate]
//!   [build=N[,N...]] [note=TEXT...]`, where PATTERN is an exact host name,
//!   a shell glob (`*`, `?`, `[...]`), `re:REGEX` or `net:CIDR` (a network:
//!   any handshake from or to it alerts, names or not), and `build=` the
//!   Windows builds the listed machines run (an alert weighs the build the
//!   traffic shows against them).
//!
//! Matching is case-insensitive and is tried on the whole value, on its
//! first DNS label, and, for 15-character values (NetBIOS names are cut at
//! 15), on the first 15 characters of longer exact entries. The value is
//! matched as the endpoint would read it: without the noise an attacker can
//! wrap around a name to slip past a sensor ([`normalise`]: surrounding
//! spaces, NULs, control and replacement characters, invisible formatting
//! characters anywhere, a machine account's trailing `$`); the event keeps
//! the raw value. Patterns see at most [`MAX_MATCHED`] bytes, so matching
//! stays linear in a name however long the wire made it.

use std::collections::HashMap;

/// The index maps: keyed by the watch list, looked up with names and
/// addresses from the wire (foldhash, seeded per run).
type Map<K, V> = HashMap<K, V, foldhash::quality::RandomState>;
use std::sync::Arc;

use regex::RegexSet;

/// Windows builds one entry may name.
const MAX_BUILDS: usize = 16;

/// NetBIOS names are at most 15 characters.
pub const NETBIOS_LEN: usize = 15;

/// Bytes of a name that globs and regular expressions are run on (a DNS
/// name is at most 253).
pub const MAX_MATCHED: usize = 255;

/// Invisible formatting characters: soft hyphen, zero-width space and
/// joiners, direction marks and embeddings, word joiner and invisible
/// operators, byte-order mark.
fn invisible(c: char) -> bool {
    matches!(
        c,
        '\u{ad}' | '\u{200b}'..='\u{200f}' | '\u{202a}'..='\u{202e}' | '\u{2060}'..='\u{2064}' | '\u{feff}'
    )
}

/// A name as it is matched: upper-cased, without invisible formatting
/// characters, without whitespace, NULs, control and replacement characters
/// (an unpaired UTF-16 surrogate decodes to one) or dots at either end, and
/// without a machine account's trailing `$`.
pub fn normalise(value: &str) -> String {
    with_normalised(value, str::to_owned)
}

/// Calls `f` with [`normalise`]'s result, without allocating for an ASCII
/// name of up to 64 bytes (nearly every name): a name already in upper
/// case is passed as it lies, another is upper-cased on the stack.
pub fn with_normalised<R>(value: &str, f: impl FnOnce(&str) -> R) -> R {
    if !value.is_ascii() {
        return f(&normalise_unicode(value));
    }
    // No invisible character (none is ASCII), whitespace and control
    // characters are the bytes up to the space and DEL, and upper case
    // is without Unicode's tables.
    let trimmed = trim_ascii_noise(value).trim_end_matches('.');
    let trimmed = trimmed.strip_suffix('$').unwrap_or(trimmed);
    let trimmed = trim_ascii_noise(trimmed);
    if !trimmed.bytes().any(|b| b.is_ascii_lowercase()) {
        return f(trimmed);
    }
    let mut buf = [0u8; 64];
    match buf.get_mut(..trimmed.len()) {
        Some(upper) => {
            upper.copy_from_slice(trimmed.as_bytes());
            upper.make_ascii_uppercase();
            // ASCII in, ASCII out.
            f(std::str::from_utf8(upper).unwrap_or_default())
        }
        None => f(&trimmed.to_ascii_uppercase()),
    }
}

/// `value` (ASCII) without whitespace and control characters at either
/// end: a byte at a time, not a character through Unicode's tables.
fn trim_ascii_noise(value: &str) -> &str {
    let noise = |b: &u8| *b <= b' ' || *b == 0x7f;
    let b = value.as_bytes();
    let start = b.iter().position(|c| !noise(c)).unwrap_or(b.len());
    let end = b.iter().rposition(|c| !noise(c)).map_or(start, |i| i + 1);
    value.get(start..end).unwrap_or_default()
}

/// [`normalise`] for any text.
fn normalise_unicode(value: &str) -> String {
    let noise = |c: char| c.is_whitespace() || c.is_control() || c == char::REPLACEMENT_CHARACTER;
    let visible: std::borrow::Cow<'_, str> = if value.chars().any(invisible) {
        value
            .chars()
            .filter(|&c| !invisible(c))
            .collect::<String>()
            .into()
    } else {
        value.into()
    };
    let trimmed = visible.trim_matches(noise).trim_end_matches('.');
    let trimmed = trimmed.strip_suffix('$').unwrap_or(trimmed);
    trimmed.trim_matches(noise).to_uppercase()
}

/// The key of a machine's name: its host label, upper-cased, as NetBIOS
/// keeps it (15 characters), so that `WIN-X`, `win-x.local` and the
/// machine account `WIN-X$` meet.
pub fn machine_key(name: &str) -> String {
    with_normalised(name, |n| {
        let label = n.split('.').next().unwrap_or(n);
        let end = label
            .char_indices()
            .nth(NETBIOS_LEN)
            .map_or(label.len(), |(end, _)| end);
        label.get(..end).unwrap_or(label).to_owned()
    })
}

/// The longest prefix of `s` of at most `max` bytes, on a character boundary.
fn prefix(s: &str, max: usize) -> &str {
    if s.len() <= max {
        return s;
    }
    let mut end = max;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    &s[..end]
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WatchlistError {
    pub source: String,
    pub line: usize,
    pub message: String,
}

impl std::fmt::Display for WatchlistError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}:{}: {}", self.source, self.line, self.message)
    }
}

impl std::error::Error for WatchlistError {}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Pattern {
    /// Upper-cased.
    Exact(String),
    /// Every name but this one, upper-cased (a STIX `!=`).
    NotExact(String),
    Glob(String),
    Regex(String),
    /// A network, not a name.
    Net(super::network::Cidr),
    /// An autonomous system (with `--asn-db`).
    Asn(u32),
}

impl Pattern {
    /// What kind of indicator it is, for an alert's `indicator.kind`.
    pub fn kind(&self) -> &'static str {
        match self {
            Pattern::Exact(_) => "name",
            Pattern::NotExact(_) => "not_name",
            Pattern::Glob(_) => "glob",
            Pattern::Regex(_) => "regex",
            Pattern::Net(_) => "network",
            Pattern::Asn(_) => "asn",
        }
    }
}

impl std::fmt::Display for Pattern {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Pattern::Exact(v) | Pattern::NotExact(v) | Pattern::Glob(v) | Pattern::Regex(v) => {
                f.write_str(v)
            }
            Pattern::Net(c) => write!(f, "{c}"),
            Pattern::Asn(a) => write!(f, "AS{a}"),
        }
    }
}

/// The identifiers a threat-intel source gives an indicator (a MISP event
/// and attribute uuid, a STIX id and name, a Zeek source, a Spamhaus SBL
/// id), as (key, value) pairs written into an alert's provenance.
pub type Refs = Option<Box<[(&'static str, Box<str>)]>>;

/// One watched name or pattern.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    /// Shared by the entries of one list (a million-entry list holds each
    /// once).
    pub list: Arc<str>,
    pub category: Arc<str>,
    pub signature: Arc<str>,
    pub pattern: Pattern,
    pub severity: u8,
    pub candidate: bool,
    /// From an allow list: a match suppresses alerts.
    pub allow: bool,
    /// The Windows builds the listed machines are known to run.
    pub builds: Vec<u32>,
    pub note: Option<String>,
    /// The source's own identifiers for it.
    pub refs: Refs,
    pub id: u32,
    /// The file it came from, shared by its entries, and its line (or the
    /// indicator's place in a JSON file).
    pub source: Arc<str>,
    pub line: u32,
}

impl Entry {
    /// Where it was defined (`file:line`).
    pub fn origin(&self) -> String {
        format!("{}:{}", self.source, self.line)
    }

    /// The alert text for a matched value.
    pub fn signature_for(&self, value: &str) -> String {
        let shown = crate::render::escape_control(value);
        if self.candidate {
            format!("{} ({shown}, unconfirmed candidate)", self.signature)
        } else {
            format!("{} ({shown})", self.signature)
        }
    }
}

/// Signature ids: the built-in lists number their entries themselves (their
/// `@id` lines, below 2,000,000); the `index`-th user list file
/// (0-based) numbers entries without `@id` from here, 10,000 ids a file.
pub fn user_list_base_id(index: usize) -> u32 {
    let index = u32::try_from(index).unwrap_or(u32::MAX);
    2_000_000u32.saturating_add(index.saturating_mul(10_000))
}

/// What a list's `@` directives set for the entries after them.
struct Directives {
    list: String,
    severity: u8,
    category: String,
    /// Set by `@signature`; otherwise it follows `@list`.
    signature: Option<String>,
    next_id: u32,
    allow: bool,
}

impl Directives {
    /// `@key value`.
    fn apply(&mut self, key: &str, value: &str) -> Result<(), String> {
        match key {
            "list" => self.list = value.to_string(),
            "severity" => {
                self.severity = parse_severity(value)
                    .ok_or_else(|| format!("severity must be 1, 2 or 3, not '{value}'"))?
            }
            "category" => self.category = value.to_string(),
            "signature" => self.signature = Some(value.to_string()),
            "id" => {
                self.next_id = value
                    .parse()
                    .map_err(|_| format!("@id needs a number, not '{value}'"))?
            }
            "allow" => {
                self.allow = match value {
                    "yes" => true,
                    "no" => false,
                    _ => return Err(format!("@allow takes yes or no, not '{value}'")),
                }
            }
            _ => return Err(format!("unknown directive @{key}")),
        }
        Ok(())
    }

    /// The (list, category, signature) texts its entries share.
    fn texts(&self) -> (Arc<str>, Arc<str>, Arc<str>) {
        let signature = match &self.signature {
            Some(s) => Arc::from(s.as_str()),
            None => Arc::from(format!("Watched host name on list {}", self.list)),
        };
        (
            Arc::from(self.list.as_str()),
            Arc::from(self.category.as_str()),
            signature,
        )
    }
}

/// An entry's options after its pattern.
struct Options {
    severity: u8,
    candidate: bool,
    builds: Vec<u32>,
}

fn parse_options<'a>(
    words: impl Iterator<Item = &'a str>,
    severity: u8,
) -> Result<Options, String> {
    let mut o = Options {
        severity,
        candidate: false,
        builds: Vec::new(),
    };
    for w in words {
        if let Some(v) = w.strip_prefix("severity=") {
            o.severity = parse_severity(v)
                .ok_or_else(|| format!("severity must be 1, 2 or 3, not '{v}'"))?;
        } else if w == "candidate" {
            o.candidate = true;
        } else if let Some(v) = w.strip_prefix("build=") {
            o.builds = v
                .split(',')
                .take(MAX_BUILDS + 1)
                .map(|b| b.trim().parse::<u32>().ok().filter(|b| *b > 0))
                .collect::<Option<Vec<u32>>>()
                .filter(|b| b.len() <= MAX_BUILDS)
                .ok_or_else(|| {
                    format!("build= takes up to {MAX_BUILDS} Windows build numbers separated by commas, not '{v}'")
                })?;
        } else {
            return Err(format!("unexpected '{w}' after the pattern (options: severity=N, candidate, build=N[,N], note=TEXT)"));
        }
    }
    Ok(o)
}

/// An entry's pattern: `net:`, `asn:`, `re:`, a glob or an exact name.
fn parse_pattern(pat: &str) -> Result<Pattern, String> {
    Ok(if let Some(net) = pat.strip_prefix("net:") {
        Pattern::Net(net.parse()?)
    } else if let Some(asn) = pat.strip_prefix("asn:") {
        let number = asn.trim_start_matches(['A', 'S', 'a', 's']).parse::<u32>();
        Pattern::Asn(number.map_err(|_| format!("asn: needs an AS number, not '{asn}'"))?)
    } else if let Some(re) = pat.strip_prefix("re:") {
        regex::Regex::new(&format!("(?i){re}"))
            .map_err(|e| format!("invalid regular expression: {}", first_line(&e.to_string())))?;
        Pattern::Regex(re.to_string())
    } else if pat.contains(['*', '?', '[']) {
        let re = glob_to_regex(pat).ok_or_else(|| format!("invalid glob '{pat}'"))?;
        // Globs of the indexed shapes never become a regex: nothing to check.
        if simple_glob(pat).is_none() {
            regex::Regex::new(&re).map_err(|_| format!("invalid glob '{pat}'"))?;
        }
        Pattern::Glob(pat.to_string())
    } else {
        Pattern::Exact(pat.to_uppercase())
    })
}

/// Parses one list. `base_id` numbers entries of a list without `@id`.
pub fn parse(text: &str, source: &str, base_id: u32) -> Result<Vec<Entry>, WatchlistError> {
    let err = |line: usize, message: String| WatchlistError {
        source: source.to_string(),
        line,
        message,
    };
    let mut d = Directives {
        list: std::path::Path::new(source)
            .file_stem()
            .and_then(|s| s.to_str())
            .unwrap_or("watchlist")
            .to_string(),
        severity: 2,
        category: "Watched host name".to_string(),
        signature: None,
        next_id: base_id,
        allow: false,
    };
    let mut entries = Vec::new();
    let shared_source: Arc<str> = Arc::from(source);
    // A file saved with a byte-order mark keeps its first entry.
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    // The list's texts, shared by its entries until a directive changes them.
    let mut shared: Option<(Arc<str>, Arc<str>, Arc<str>)> = None;
    for (i, raw) in text.lines().enumerate() {
        let n = i + 1;
        let line = raw.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        if let Some(directive) = line.strip_prefix('@') {
            let (key, value) = directive
                .split_once(char::is_whitespace)
                .map(|(k, v)| (k, v.trim()))
                .unwrap_or((directive, ""));
            if value.is_empty() {
                return Err(err(n, format!("directive @{key} needs a value")));
            }
            d.apply(key, value).map_err(|e| err(n, e))?;
            shared = None;
            continue;
        }
        let (head, note) = match line.find("note=") {
            Some(p) => (
                &line[..p],
                Some(line[p + 5..].trim().to_string()).filter(|s| !s.is_empty()),
            ),
            None => (line, None),
        };
        let mut words = head.split_whitespace();
        let Some(pat) = words.next() else {
            return Err(err(n, "an entry needs a pattern".into()));
        };
        let o = parse_options(words, d.severity).map_err(|e| err(n, e))?;
        let pattern = parse_pattern(pat).map_err(|e| err(n, e))?;
        let (list, category, signature) = shared.get_or_insert_with(|| d.texts()).clone();
        entries.push(Entry {
            list,
            category,
            signature,
            pattern,
            severity: o.severity,
            candidate: o.candidate,
            allow: d.allow,
            builds: o.builds,
            note,
            refs: None,
            id: d.next_id,
            source: shared_source.clone(),
            line: u32::try_from(n).unwrap_or(u32::MAX),
        });
        d.next_id += 1;
    }
    if entries.is_empty() {
        return Err(err(0, "the list has no entries".into()));
    }
    Ok(entries)
}

fn first_line(s: &str) -> &str {
    s.lines().last().unwrap_or(s).trim()
}

fn parse_severity(v: &str) -> Option<u8> {
    v.parse::<u8>().ok().filter(|s| (1..=3).contains(s))
}

/// A shell glob as an anchored, case-insensitive regular expression.
fn glob_to_regex(glob: &str) -> Option<String> {
    let mut re = String::from("(?i)^");
    let mut chars = glob.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '*' => re.push_str(".*"),
            '?' => re.push('.'),
            '[' => {
                re.push('[');
                if chars.peek() == Some(&'!') {
                    chars.next();
                    re.push('^');
                }
                let mut closed = false;
                for c in chars.by_ref() {
                    if c == ']' {
                        closed = true;
                        break;
                    }
                    if c == '\\' || c == '[' {
                        re.push('\\');
                    }
                    re.push(c);
                }
                if !closed {
                    return None;
                }
                re.push(']');
            }
            c => re.push_str(&regex::escape(&c.to_string())),
        }
    }
    re.push('$');
    Some(re)
}

/// The built-in lists, shipped in the binary.
pub const VMMANAGER_DEFAULTS: &str = include_str!("vmmanager-defaults.list");
pub const WINDOWS_DEFAULT_NAMES: &str = include_str!("windows-default-names.list");

/// What the lists say of one name ([`Matcher::verdict`]).
#[derive(Debug, Clone, Copy)]
pub struct Verdict<'a> {
    /// The most severe watch-list entry matching it.
    pub watched: Option<&'a Entry>,
    /// Whether an allow list names it.
    pub allowed: bool,
}

/// All entries compiled for matching.
#[derive(Debug)]
pub struct Matcher {
    entries: Vec<Entry>,
    /// Exact names: the first entry of each; `exact_more` the others with
    /// the same name (rare), by that first entry.
    exact: Map<Box<str>, u32>,
    exact_more: Map<u32, Vec<u32>>,
    /// First 15 characters of exact entries longer than that.
    truncated: Map<String, Vec<usize>>,
    /// Globs of the form `PREFIX*` and `*SUFFIX` (upper-cased), by the
    /// length of their fixed part: a lookup costs one hash probe per
    /// distinct length, whatever the number of globs.
    prefixes: Map<usize, Map<String, Vec<usize>>>,
    suffixes: Map<usize, Map<String, Vec<usize>>>,
    /// The other globs and the regular expressions, in sets of at most
    /// [`SET_SIZE`] (one set of thousands exceeds the regex size limit), each
    /// with the entry index of its patterns.
    sets: Vec<(RegexSet, Vec<usize>)>,
    /// Network entries.
    /// By prefix length (IPv6 flagged), the entries of each network: a
    /// lookup probes once per distinct length, whatever the number of
    /// networks.
    nets: Map<(bool, u8), Map<u128, Vec<u32>>>,
    /// Autonomous-system entries.
    asns: Map<u32, Vec<usize>>,
    /// Entries matching every name but one (rare: a STIX `!=`).
    negated: Vec<usize>,
    /// Entries left out: their pattern would not compile.
    left_out: Vec<usize>,
}

/// Patterns compiled into one `RegexSet`.
const SET_SIZE: usize = 256;
/// The compiled size one set may take; a chunk of patterns that needs more
/// is split in halves, down to one pattern, which compiles alone (each was
/// checked alone when read).
const SET_SIZE_LIMIT: usize = 32 << 20;

/// `patterns` (with their entry indexes) compiled into sets, each chunk
/// split until it fits the size limit; a pattern that does not compile
/// even alone is left out and returned.
fn compile_sets(
    patterns: &[String],
    ids: &[usize],
    out: &mut Vec<(RegexSet, Vec<usize>)>,
) -> Vec<usize> {
    let built = regex::RegexSetBuilder::new(patterns)
        .size_limit(SET_SIZE_LIMIT)
        .build();
    match built {
        Ok(set) => {
            out.push((set, ids.to_vec()));
            Vec::new()
        }
        Err(_) if patterns.len() > 1 => {
            let mid = patterns.len() / 2;
            let mut left = compile_sets(&patterns[..mid], &ids[..mid], out);
            left.extend(compile_sets(&patterns[mid..], &ids[mid..], out));
            left
        }
        Err(_) => ids.to_vec(),
    }
}

/// The fixed part of a glob of the form `PREFIX*` (`true`) or `*SUFFIX`
/// (`false`), upper-cased, when it is of one of those forms.
fn simple_glob(g: &str) -> Option<(String, bool)> {
    let meta = |s: &str| s.contains(['*', '?', '[', ']']);
    if let Some(p) = g.strip_suffix('*') {
        if !p.is_empty() && !meta(p) {
            return Some((p.to_uppercase(), true));
        }
    }
    if let Some(sfx) = g.strip_prefix('*') {
        if !sfx.is_empty() && !meta(sfx) {
            return Some((sfx.to_uppercase(), false));
        }
    }
    None
}

impl Matcher {
    /// Compiles `entries`. A pattern that cannot be compiled (a regular
    /// expression too large even alone) is left out and named in
    /// [`Matcher::left_out`]; the others are in force.
    pub fn new(entries: Vec<Entry>) -> Matcher {
        let mut exact: Map<Box<str>, u32> =
            Map::with_capacity_and_hasher(entries.len(), Default::default());
        let mut exact_more: Map<u32, Vec<u32>> = Map::default();
        let mut truncated: Map<String, Vec<usize>> = Map::default();
        let mut res = Vec::new();
        let mut set_entries = Vec::new();
        let mut prefixes: Map<usize, Map<String, Vec<usize>>> = Map::default();
        let mut suffixes: Map<usize, Map<String, Vec<usize>>> = Map::default();
        let mut nets: Map<(bool, u8), Map<u128, Vec<u32>>> = Map::default();
        let mut asns: Map<u32, Vec<usize>> = Map::default();
        let mut negated = Vec::new();
        for (i, e) in entries.iter().enumerate() {
            match &e.pattern {
                Pattern::NotExact(_) => negated.push(i),
                Pattern::Exact(name) => {
                    let i32_ = u32::try_from(i).unwrap_or(u32::MAX);
                    match exact.get(name.as_str()) {
                        Some(&first) => exact_more.entry(first).or_default().push(i32_),
                        None => {
                            exact.insert(name.as_str().into(), i32_);
                        }
                    }
                    if name.chars().count() > NETBIOS_LEN {
                        truncated
                            .entry(name.chars().take(NETBIOS_LEN).collect())
                            .or_default()
                            .push(i);
                    }
                }
                Pattern::Glob(g) => match simple_glob(g) {
                    Some((fixed, is_prefix)) => {
                        let index = if is_prefix {
                            &mut prefixes
                        } else {
                            &mut suffixes
                        };
                        index
                            .entry(fixed.len())
                            .or_default()
                            .entry(fixed)
                            .or_default()
                            .push(i);
                    }
                    None => {
                        res.push(glob_to_regex(g).unwrap_or_else(|| "$^".into()));
                        set_entries.push(i);
                    }
                },
                Pattern::Regex(r) => {
                    res.push(format!("(?i){r}"));
                    set_entries.push(i);
                }
                Pattern::Net(c) => {
                    let (v6, key) = c.own_key();
                    nets.entry((v6, c.prefix()))
                        .or_default()
                        .entry(key)
                        .or_default()
                        .push(u32::try_from(i).unwrap_or(u32::MAX));
                }
                Pattern::Asn(a) => asns.entry(*a).or_default().push(i),
            }
        }
        let mut sets = Vec::new();
        let mut left_out = Vec::new();
        for (patterns, ids) in res.chunks(SET_SIZE).zip(set_entries.chunks(SET_SIZE)) {
            left_out.extend(compile_sets(patterns, ids, &mut sets));
        }
        Matcher {
            entries,
            exact,
            exact_more,
            truncated,
            prefixes,
            suffixes,
            sets,
            nets,
            asns,
            negated,
            left_out,
        }
    }

    /// The entries whose pattern could not be compiled, left out.
    pub fn left_out(&self) -> impl Iterator<Item = &Entry> {
        self.left_out.iter().filter_map(|&i| self.entries.get(i))
    }

    /// Whether any entry names autonomous systems (so addresses are worth
    /// looking up).
    pub fn has_asns(&self) -> bool {
        !self.asns.is_empty()
    }

    /// Whether an allow list holds autonomous system `asn`.
    pub fn allows_asn(&self, asn: u32) -> bool {
        self.asns
            .get(&asn)
            .is_some_and(|v| v.iter().any(|&i| self.entries[i].allow))
    }

    /// The most severe watch-list entry for autonomous system `asn`.
    pub fn lookup_asn(&self, asn: u32) -> Option<&Entry> {
        self.asns
            .get(&asn)?
            .iter()
            .map(|&i| &self.entries[i])
            .filter(|e| !e.allow)
            .min_by_key(|e| e.severity)
    }

    /// Whether an allow list names `value`.
    pub fn allows(&self, value: &str) -> bool {
        self.verdict(value).allowed
    }

    /// Every network entry holding `ip`.
    fn nets_holding(&self, ip: std::net::IpAddr) -> impl Iterator<Item = &Entry> {
        let v6 = ip.is_ipv6();
        self.nets
            .iter()
            .filter(move |((is_v6, _), _)| *is_v6 == v6)
            .filter_map(move |((_, prefix), index)| {
                index.get(&super::network::Cidr::key(ip, *prefix).1)
            })
            .flatten()
            .filter_map(|&i| self.entries.get(i as usize))
    }

    /// Whether an allow list holds `ip`.
    pub fn allows_ip(&self, ip: std::net::IpAddr) -> bool {
        self.nets_holding(ip).any(|e| e.allow)
    }

    /// The most severe watch-list network holding `ip`, if any.
    pub fn lookup_ip(&self, ip: std::net::IpAddr) -> Option<&Entry> {
        self.nets_holding(ip)
            .filter(|e| !e.allow)
            .min_by_key(|e| e.severity)
    }

    /// The built-in lists (the informational one optional) plus user lists.
    pub fn with_builtins(default_names: bool, user: Vec<Entry>) -> Result<Matcher, WatchlistError> {
        let mut all = parse(VMMANAGER_DEFAULTS, "builtin:vmmanager-defaults", 0)?;
        if default_names {
            all.extend(parse(
                WINDOWS_DEFAULT_NAMES,
                "builtin:windows-default-names",
                0,
            )?);
        }
        all.extend(user);
        Ok(Matcher::new(all))
    }

    pub fn entries(&self) -> &[Entry] {
        &self.entries
    }

    /// The most severe watch-list entry matching `value`, if any (allow
    /// lists are asked with [`Matcher::allows`]).
    pub fn lookup(&self, value: &str) -> Option<&Entry> {
        self.verdict(value).watched
    }

    /// Both answers for `value` in one pass over the lists: the most
    /// severe watch-list entry matching it (the first found among them:
    /// exact names are looked at first) and whether an allow list names
    /// it.
    pub fn verdict(&self, value: &str) -> Verdict<'_> {
        let mut verdict = Verdict {
            watched: None,
            allowed: false,
        };
        with_normalised(value, |upper| {
            self.matches_normalised(upper, &mut |i| {
                let Some(e) = self.entries.get(i) else {
                    return;
                };
                if e.allow {
                    verdict.allowed = true;
                } else if verdict.watched.is_none_or(|b| e.severity < b.severity) {
                    verdict.watched = Some(e);
                }
            })
        });
        verdict
    }

    /// Hands `consider` the index of every entry matching the normalised
    /// `upper` (an entry may come more than once).
    fn matches_normalised(&self, upper: &str, consider: &mut impl FnMut(usize)) {
        if upper.is_empty() {
            return;
        }
        // The name, and its first label when it has more.
        let label = upper
            .split_once('.')
            .map(|(label, _)| label)
            .filter(|l| !l.is_empty());
        let forms = [Some(upper), label];
        let forms = forms.iter().flatten();
        for form in forms.clone() {
            if let Some(&first) = self.exact.get(*form) {
                consider(first as usize);
                for &i in self.exact_more.get(&first).into_iter().flatten() {
                    consider(i as usize);
                }
            }
            if form.chars().count() == NETBIOS_LEN {
                for &i in self.truncated.get(*form).into_iter().flatten() {
                    consider(i);
                }
            }
            let bounded = prefix(form, MAX_MATCHED);
            for (&len, index) in &self.prefixes {
                if let Some(head) = bounded.get(..len) {
                    for &i in index.get(head).into_iter().flatten() {
                        consider(i);
                    }
                }
            }
            for (&len, index) in &self.suffixes {
                let tail = bounded
                    .len()
                    .checked_sub(len)
                    .and_then(|at| bounded.get(at..));
                for &i in tail.and_then(|t| index.get(t)).into_iter().flatten() {
                    consider(i);
                }
            }
            for (set, ids) in &self.sets {
                // Which patterns matched costs an allocation: asked only
                // of a set that matched and holds more than one.
                if !set.is_match(bounded) {
                    continue;
                }
                if let [i] = ids.as_slice() {
                    consider(*i);
                    continue;
                }
                for m in set.matches(bounded).iter() {
                    if let Some(&i) = ids.get(m) {
                        consider(i);
                    }
                }
            }
        }
        for &i in &self.negated {
            if let Some(Pattern::NotExact(not)) = self.entries.get(i).map(|e| &e.pattern) {
                if !forms.clone().any(|f| *f == not.as_str()) {
                    consider(i);
                }
            }
        }
    }
}

#[cfg(test)]
#[path = "watchlist_tests.rs"]
mod tests;
