//! `--output` values: a path, or a URL naming a sink and its options.
//!
//! ```text
//! eve.json                      file (appended; SIGHUP reopens it)
//! -  |  file:-                  standard output
//! file:/var/log/hostwatch/eve.json?types=alert,inventory
//! syslog:                       RFC 5424 to the local socket /dev/log
//! syslog:/run/systemd/journal/dev-log
//! syslog+udp://collector:514?facility=local5
//! syslog+tcp://collector:601?framing=octet-counting
//! unix:/run/vector/hostwatch.sock          stream, one JSON line per event
//! unix+dgram:/run/hostwatch/events.sock    one event per datagram
//! redis://[[user]:password@]host[:port][/db]?mode=list&key=hostwatch
//! ```
//!
//! Options every sink takes: `types` (comma-separated event types to send;
//! default all). Network sinks also take `queue` (events held while the
//! peer is slow or away) and `batch` (events per write, or commands per
//! Redis pipeline).

use std::fmt;
use std::path::{Path, PathBuf};

use crate::events::event_types;

/// Events a network sink holds by default while its peer is away.
pub const DEFAULT_QUEUE: usize = 10_000;
/// Events sent in one write (or one Redis pipeline) by default.
pub const DEFAULT_BATCH: usize = 256;
/// Most bytes a network sink's queue holds, whatever its event count.
pub const QUEUE_BYTES: usize = 64 << 20;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OutputSpec {
    pub kind: Kind,
    /// Event types this sink takes; `None` is all.
    pub types: Option<Vec<&'static str>>,
    pub queue: usize,
    pub batch: usize,
    /// Files and standard output: the readable view of alerts
    /// (`--format pretty`) instead of JSON Lines.
    pub pretty: bool,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Kind {
    Stdout,
    File(PathBuf),
    Syslog(SyslogSpec),
    Unix { path: PathBuf, datagram: bool },
    Redis(RedisSpec),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SyslogTransport {
    /// A local datagram socket (`/dev/log`).
    Local(PathBuf),
    Udp(String),
    Tcp(String),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SyslogSpec {
    pub transport: SyslogTransport,
    /// 0..=23 (RFC 5424 section 6.2.1).
    pub facility: u8,
    /// Severity of every event but alerts.
    pub severity: u8,
    /// Severity of alerts.
    pub alert_severity: u8,
    pub app_name: String,
    /// TCP only: RFC 6587 octet counting (default) or newline-terminated frames.
    pub octet_counting: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RedisMode {
    /// LPUSH onto a list (Suricata's `list`).
    Lpush,
    Rpush,
    /// PUBLISH on a channel.
    Publish,
    /// XADD to a stream, trimmed to `maxlen`.
    Xadd,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RedisSpec {
    /// `host:port`
    pub addr: String,
    pub db: u32,
    pub user: Option<String>,
    pub password: Option<String>,
    pub mode: RedisMode,
    pub key: String,
    /// XADD: the stream's length bound.
    pub maxlen: u64,
    /// XADD: trim exactly (`=`) rather than approximately (`~`).
    pub exact_trim: bool,
    /// XADD: the entry's field name.
    pub field: String,
}

/// A malformed `--output` value, with what is wrong with it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SpecError(pub String);

impl fmt::Display for SpecError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for SpecError {}

fn err<T>(msg: impl Into<String>) -> Result<T, SpecError> {
    Err(SpecError(msg.into()))
}

/// The URL schemes of outputs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Scheme {
    File,
    Syslog,
    Unix,
    Redis,
}

const SCHEMES: &[(&str, Scheme)] = &[
    ("file:", Scheme::File),
    ("syslog:", Scheme::Syslog),
    ("syslog+udp:", Scheme::Syslog),
    ("syslog+tcp:", Scheme::Syslog),
    ("unix:", Scheme::Unix),
    ("unix+dgram:", Scheme::Unix),
    ("redis:", Scheme::Redis),
];

impl Kind {
    /// Whether two outputs write to the same place: `eve.json`,
    /// `./eve.json` and a symbolic link to it are one file.
    pub fn same_place(&self, other: &Kind) -> bool {
        match (self, other) {
            (Kind::File(a), Kind::File(b))
            | (Kind::Unix { path: a, .. }, Kind::Unix { path: b, .. }) => {
                resolved(a) == resolved(b)
            }
            _ => self == other,
        }
    }
}

/// `path` made absolute with its links resolved, as far as it exists (a
/// file not made yet: its directory resolved, its name kept).
fn resolved(path: &Path) -> PathBuf {
    if let Ok(p) = path.canonicalize() {
        return p;
    }
    let name = path.file_name().map(PathBuf::from).unwrap_or_default();
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d.to_path_buf(),
        _ => PathBuf::from("."),
    };
    match dir.canonicalize() {
        Ok(d) => d.join(name),
        Err(_) => path.to_path_buf(),
    }
}

impl OutputSpec {
    pub fn parse(value: &str) -> Result<OutputSpec, SpecError> {
        let scheme = SCHEMES.iter().find(|(s, _)| value.starts_with(*s));
        let Some(&(scheme, which)) = scheme else {
            // A plain path, taken as it is (no options).
            if value.is_empty() {
                return err("an empty output");
            }
            if let Some((name, _)) = value.split_once("://") {
                let plain = name
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || "+-.".contains(c));
                if plain && !name.is_empty() {
                    return err(format!(
                        "unknown output scheme '{name}' (known: file, syslog, syslog+udp, syslog+tcp, unix, unix+dgram, redis)"
                    ));
                }
            }
            if let Some((path, query)) = value.split_once('?') {
                if query.contains('=') {
                    return err(format!(
                        "a plain path takes no options; for a file with options write file:{path}?{query}"
                    ));
                }
            }
            return Ok(OutputSpec::new(if value == "-" {
                Kind::Stdout
            } else {
                Kind::File(PathBuf::from(value))
            }));
        };
        let rest = &value[scheme.len()..];
        let (body, query) = match rest.split_once('?') {
            Some((b, q)) => (b, q),
            None => (rest, ""),
        };
        let mut opts = Options::parse(query)?;
        let mut spec = OutputSpec::new(Kind::Stdout);
        if let Some(t) = opts.take("types") {
            spec.types = Some(parse_types(&t)?);
        }
        let network = which != Scheme::File;
        if network {
            if let Some(q) = opts.take("queue") {
                spec.queue = parse_number(&q, "queue", 1, 10_000_000)? as usize;
            }
            if let Some(b) = opts.take("batch") {
                spec.batch = parse_number(&b, "batch", 1, 100_000)? as usize;
            }
        }
        spec.kind = match which {
            Scheme::File => match body {
                "" => return err("file: needs a path (or - for standard output)"),
                "-" => Kind::Stdout,
                p => Kind::File(PathBuf::from(percent_decode(p)?)),
            },
            Scheme::Syslog => Kind::Syslog(syslog(scheme, body, &mut opts)?),
            Scheme::Unix => {
                if body.is_empty() {
                    return err(format!("{scheme} needs a socket path"));
                }
                Kind::Unix {
                    path: PathBuf::from(percent_decode(body)?),
                    datagram: scheme == "unix+dgram:",
                }
            }
            Scheme::Redis => Kind::Redis(redis(body, &mut opts)?),
        };
        opts.finish(scheme)?;
        Ok(spec)
    }

    /// A sink with the default options.
    pub fn new(kind: Kind) -> OutputSpec {
        OutputSpec {
            kind,
            types: None,
            queue: DEFAULT_QUEUE,
            batch: DEFAULT_BATCH,
            pretty: false,
        }
    }

    /// Whether this sink takes events of type `t`.
    pub fn takes(&self, t: &str) -> bool {
        self.types.as_ref().is_none_or(|ts| ts.contains(&t))
    }

    /// The output as messages name it, without a password.
    pub fn label(&self) -> String {
        match &self.kind {
            Kind::Stdout => "stdout".into(),
            Kind::File(p) => format!("file:{}", p.display()),
            Kind::Syslog(s) => match &s.transport {
                SyslogTransport::Local(p) => format!("syslog:{}", p.display()),
                SyslogTransport::Udp(a) => format!("syslog+udp://{a}"),
                SyslogTransport::Tcp(a) => format!("syslog+tcp://{a}"),
            },
            Kind::Unix { path, datagram } => format!(
                "{}:{}",
                if *datagram { "unix+dgram" } else { "unix" },
                path.display()
            ),
            Kind::Redis(r) => format!("redis://{}/{}", r.addr, r.db),
        }
    }
}

fn syslog(scheme: &str, body: &str, opts: &mut Options) -> Result<SyslogSpec, SpecError> {
    let transport = match scheme {
        "syslog:" => {
            let p = body.strip_prefix("//").unwrap_or(body);
            SyslogTransport::Local(PathBuf::from(if p.is_empty() {
                "/dev/log".to_string()
            } else {
                percent_decode(p)?
            }))
        }
        s => {
            let Some(hp) = body.strip_prefix("//") else {
                return err(format!("{s}//HOST[:PORT] expected"));
            };
            let default = if s == "syslog+udp:" { 514 } else { 601 };
            let addr = host_port(hp.trim_end_matches('/'), default)?;
            if s == "syslog+udp:" {
                SyslogTransport::Udp(addr)
            } else {
                SyslogTransport::Tcp(addr)
            }
        }
    };
    let facility = match opts.take("facility") {
        Some(f) => parse_facility(&f)?,
        None => 21, // local5, as Suricata's EVE syslog output
    };
    let severity = match opts.take("severity") {
        Some(s) => parse_severity(&s)?,
        None => 6, // info
    };
    let alert_severity = match opts.take("alert_severity") {
        Some(s) => parse_severity(&s)?,
        None => 4, // warning
    };
    let app_name = opts.take("app").unwrap_or_else(|| "hostwatch".into());
    if app_name.is_empty()
        || app_name.len() > 48
        || !app_name.bytes().all(|b| (33..=126).contains(&b))
    {
        return err("app must be 1 to 48 printable characters without spaces (RFC 5424)");
    }
    let octet_counting = match opts.take("framing").as_deref() {
        None | Some("octet-counting") => true,
        Some("lf") => false,
        Some(o) => return err(format!("framing must be octet-counting or lf, not {o:?}")),
    };
    if !matches!(transport, SyslogTransport::Tcp(_)) && !octet_counting {
        return err("framing applies to syslog+tcp only");
    }
    Ok(SyslogSpec {
        transport,
        facility,
        severity,
        alert_severity,
        app_name,
        octet_counting,
    })
}

fn redis(body: &str, opts: &mut Options) -> Result<RedisSpec, SpecError> {
    let Some(rest) = body.strip_prefix("//") else {
        return err("redis://[[USER]:PASSWORD@]HOST[:PORT][/DB] expected");
    };
    let (authority, path) = match rest.split_once('/') {
        Some((a, p)) => (a, p),
        None => (rest, ""),
    };
    let (userinfo, hostport) = match authority.rsplit_once('@') {
        Some((u, h)) => (Some(u), h),
        None => (None, authority),
    };
    let (user, password) = match userinfo {
        None => (None, None),
        Some(u) => match u.split_once(':') {
            Some((user, pass)) => (
                Some(percent_decode(user)?).filter(|u| !u.is_empty()),
                Some(percent_decode(pass)?),
            ),
            None => (None, Some(percent_decode(u)?)),
        },
    };
    let addr = host_port(hostport, 6379)?;
    let db = match path {
        "" => 0,
        d => parse_number(d, "the database number", 0, 1 << 20)? as u32,
    };
    let mode = match opts.take("mode").as_deref() {
        None | Some("list") | Some("lpush") => RedisMode::Lpush,
        Some("rpush") => RedisMode::Rpush,
        Some("channel") | Some("publish") => RedisMode::Publish,
        Some("stream") | Some("xadd") => RedisMode::Xadd,
        Some(m) => {
            return err(format!(
                "redis mode must be list, lpush, rpush, channel, publish, stream or xadd, not {m:?}"
            ))
        }
    };
    let key = opts.take("key").unwrap_or_else(|| "hostwatch".into());
    if key.is_empty() {
        return err("the redis key must not be empty");
    }
    let stream_opt = |o: &mut Options, name: &str| -> Result<Option<String>, SpecError> {
        match o.take(name) {
            Some(_) if mode != RedisMode::Xadd => {
                err(format!("{name} applies to mode=stream only"))
            }
            v => Ok(v),
        }
    };
    let maxlen = match stream_opt(opts, "maxlen")? {
        Some(m) => parse_number(&m, "maxlen", 1, u64::MAX / 2)?,
        None => 100_000,
    };
    let exact_trim = match stream_opt(opts, "trim")?.as_deref() {
        None | Some("approx") => false,
        Some("exact") => true,
        Some(t) => return err(format!("trim must be approx or exact, not {t:?}")),
    };
    let field = stream_opt(opts, "field")?.unwrap_or_else(|| "eve".into());
    Ok(RedisSpec {
        addr,
        db,
        user,
        password,
        mode,
        key,
        maxlen,
        exact_trim,
        field,
    })
}

/// `HOST[:PORT]` or `[V6]:PORT`, with the default port filled in.
fn host_port(s: &str, default: u16) -> Result<String, SpecError> {
    if s.is_empty() {
        return err("a host is missing");
    }
    let (host, port) = if let Some(v6) = s.strip_prefix('[') {
        match v6.split_once(']') {
            Some((h, "")) => (format!("[{h}]"), None),
            Some((h, p)) => match p.strip_prefix(':') {
                Some(p) => (format!("[{h}]"), Some(p)),
                None => return err(format!("{s:?} is not HOST:PORT")),
            },
            None => return err(format!("{s:?} is not HOST:PORT")),
        }
    } else {
        match s.rsplit_once(':') {
            Some((h, p)) => (h.to_string(), Some(p)),
            None => (s.to_string(), None),
        }
    };
    let port = match port {
        Some(p) => parse_number(p, "the port", 1, 65535)? as u16,
        None => default,
    };
    if host.is_empty() {
        return err("a host is missing");
    }
    Ok(format!("{host}:{port}"))
}

fn parse_number(s: &str, what: &str, min: u64, max: u64) -> Result<u64, SpecError> {
    match s.parse::<u64>() {
        Ok(n) if (min..=max).contains(&n) => Ok(n),
        _ => err(format!(
            "{what} must be a number from {min} to {max}, not {s:?}"
        )),
    }
}

fn parse_types(s: &str) -> Result<Vec<&'static str>, SpecError> {
    let mut out = Vec::new();
    for t in s.split(',').filter(|t| !t.is_empty()) {
        match event_types().find(|k| *k == t) {
            Some(k) => out.push(k),
            None => {
                return err(format!(
                    "unknown event type {t:?} (known: {})",
                    event_types().collect::<Vec<_>>().join(", ")
                ))
            }
        }
    }
    if out.is_empty() {
        return err("types lists no event type");
    }
    Ok(out)
}

const FACILITIES: &[&str] = &[
    "kern", "user", "mail", "daemon", "auth", "syslog", "lpr", "news", "uucp", "cron", "authpriv",
    "ftp", "ntp", "audit", "alert", "clock", "local0", "local1", "local2", "local3", "local4",
    "local5", "local6", "local7",
];

const SEVERITIES: &[&str] = &[
    "emerg", "alert", "crit", "err", "warning", "notice", "info", "debug",
];

/// The code of a syslog name: its place in `names`.
fn syslog_code(s: &str, names: &[&str], what: &str) -> Result<u8, SpecError> {
    let s = s.to_ascii_lowercase();
    match names.iter().position(|f| *f == s) {
        Some(i) => Ok(i as u8),
        None => err(format!(
            "unknown syslog {what} {s:?} (known: {})",
            names.join(", ")
        )),
    }
}

fn parse_facility(s: &str) -> Result<u8, SpecError> {
    syslog_code(s, FACILITIES, "facility")
}

fn parse_severity(s: &str) -> Result<u8, SpecError> {
    let s = s.to_ascii_lowercase();
    let s = match s.as_str() {
        "error" => "err",
        "warn" => "warning",
        "informational" => "info",
        "emergency" => "emerg",
        "critical" => "crit",
        o => o,
    };
    syslog_code(s, SEVERITIES, "severity")
}

/// `%XX` escapes, for passwords, keys and paths with reserved characters
/// (a `%` not followed by two hex digits stands for itself, as in URLs).
fn percent_decode(s: &str) -> Result<String, SpecError> {
    percent_encoding::percent_decode_str(s)
        .decode_utf8()
        .map(|d| d.into_owned())
        .map_err(|_| SpecError(format!("{s:?} does not decode to UTF-8")))
}

/// `key=value&...` with each option given at most once.
struct Options(Vec<(String, String)>);

impl Options {
    fn parse(q: &str) -> Result<Options, SpecError> {
        let mut v: Vec<(String, String)> = Vec::new();
        for pair in q.split('&').filter(|p| !p.is_empty()) {
            let (k, val) = pair.split_once('=').unwrap_or((pair, ""));
            let k = percent_decode(k)?;
            if v.iter().any(|(o, _)| *o == k) {
                return err(format!("option {k} given twice"));
            }
            v.push((k, percent_decode(val)?));
        }
        Ok(Options(v))
    }

    fn take(&mut self, k: &str) -> Option<String> {
        let i = self.0.iter().position(|(o, _)| o == k)?;
        Some(self.0.remove(i).1)
    }

    fn finish(self, scheme: &str) -> Result<(), SpecError> {
        match self.0.first() {
            Some((k, _)) => err(format!("{scheme} does not take the option {k:?}")),
            None => Ok(()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(s: &str) -> OutputSpec {
        OutputSpec::parse(s).unwrap_or_else(|e| panic!("{s}: {e}"))
    }

    fn error(s: &str) -> String {
        match OutputSpec::parse(s) {
            Ok(o) => panic!("{s} parsed as {o:?}"),
            Err(e) => e.0,
        }
    }

    #[test]
    fn paths_and_files() {
        assert_eq!(parse("-").kind, Kind::Stdout);
        assert_eq!(parse("eve.json").kind, Kind::File("eve.json".into()));
        assert_eq!(
            parse("/var/log/a?b").kind,
            Kind::File("/var/log/a?b".into())
        );
        assert_eq!(parse("file:-").kind, Kind::Stdout);
        let f = parse("file:/var/log/hostwatch/alerts.json?types=alert,inventory");
        assert_eq!(f.kind, Kind::File("/var/log/hostwatch/alerts.json".into()));
        assert_eq!(f.types, Some(vec!["alert", "inventory"]));
        assert!(f.takes("alert") && !f.takes("ntlm"));
        assert!(parse("eve.json").takes("ntlm"));
        assert_eq!(
            error("file:"),
            "file: needs a path (or - for standard output)"
        );
        assert!(error("file:x?queue=5").contains("does not take the option \"queue\""));
        assert!(error("file:x?types=alert,dns").starts_with("unknown event type \"dns\""));
    }

    #[test]
    fn syslog_urls() {
        let s = parse("syslog:");
        let Kind::Syslog(sys) = s.kind else {
            panic!("not syslog")
        };
        assert_eq!(sys.transport, SyslogTransport::Local("/dev/log".into()));
        assert_eq!((sys.facility, sys.severity, sys.alert_severity), (21, 6, 4));
        assert_eq!(sys.app_name, "hostwatch");
        let Kind::Syslog(sys) =
            parse("syslog+udp://10.0.0.5?facility=LOCAL0&severity=notice&alert_severity=crit").kind
        else {
            panic!("not syslog")
        };
        assert_eq!(sys.transport, SyslogTransport::Udp("10.0.0.5:514".into()));
        assert_eq!((sys.facility, sys.severity, sys.alert_severity), (16, 5, 2));
        let Kind::Syslog(sys) = parse("syslog+tcp://[::1]:6514?framing=lf&app=sensor-7").kind
        else {
            panic!("not syslog")
        };
        assert_eq!(sys.transport, SyslogTransport::Tcp("[::1]:6514".into()));
        assert!(!sys.octet_counting);
        assert_eq!(sys.app_name, "sensor-7");
        let Kind::Syslog(sys) = parse("syslog:/run/systemd/journal/dev-log").kind else {
            panic!("not syslog")
        };
        assert_eq!(
            sys.transport,
            SyslogTransport::Local("/run/systemd/journal/dev-log".into())
        );
        assert!(error("syslog+udp://h?facility=local9").starts_with("unknown syslog facility"));
        assert_eq!(
            error("syslog+udp://h?framing=lf"),
            "framing applies to syslog+tcp only"
        );
        assert!(error("syslog+udp://h:0").starts_with("the port must be"));
        assert!(error("syslog+tcp:host").contains("HOST[:PORT] expected"));
        assert!(error("syslog:?app=a%20b").starts_with("app must be"));
    }

    #[test]
    fn unix_urls() {
        assert_eq!(
            parse("unix:/run/vector/hw.sock").kind,
            Kind::Unix {
                path: "/run/vector/hw.sock".into(),
                datagram: false
            }
        );
        let d = parse("unix+dgram:/tmp/a%20b.sock?queue=50&batch=8&types=alert");
        assert_eq!(
            d.kind,
            Kind::Unix {
                path: "/tmp/a b.sock".into(),
                datagram: true
            }
        );
        assert_eq!((d.queue, d.batch), (50, 8));
        assert_eq!(error("unix:"), "unix: needs a socket path");
        assert!(error("unix:/x?queue=0").starts_with("queue must be a number from 1"));
    }

    #[test]
    fn redis_urls() {
        let r = parse("redis://127.0.0.1");
        let Kind::Redis(r) = r.kind else {
            panic!("not redis")
        };
        assert_eq!(
            r,
            RedisSpec {
                addr: "127.0.0.1:6379".into(),
                db: 0,
                user: None,
                password: None,
                mode: RedisMode::Lpush,
                key: "hostwatch".into(),
                maxlen: 100_000,
                exact_trim: false,
                field: "eve".into(),
            }
        );
        let Kind::Redis(r) = parse(
            "redis://sensor:p%40ss@redis.soc:6380/3?mode=stream&key=eve&maxlen=5000&trim=exact",
        )
        .kind
        else {
            panic!("not redis")
        };
        assert_eq!(r.addr, "redis.soc:6380");
        assert_eq!(
            (r.user.as_deref(), r.password.as_deref()),
            (Some("sensor"), Some("p@ss"))
        );
        assert_eq!(
            (r.db, r.mode, r.key.as_str(), r.maxlen, r.exact_trim),
            (3, RedisMode::Xadd, "eve", 5000, true)
        );
        // A % that escapes nothing stands for itself; an escape that is
        // not UTF-8 is refused.
        let Kind::Redis(r) = parse("redis://:100%25%zz@h").kind else {
            panic!("not redis")
        };
        assert_eq!(r.password.as_deref(), Some("100%%zz"));
        assert_eq!(error("redis://:%ff@h"), "\"%ff\" does not decode to UTF-8");
        let Kind::Redis(r) = parse("redis://:secret@h/?mode=channel").kind else {
            panic!("not redis")
        };
        assert_eq!(
            (r.user, r.password.as_deref(), r.mode),
            (None, Some("secret"), RedisMode::Publish)
        );
        assert_eq!(parse("redis://h?mode=rpush").label(), "redis://h:6379/0");
        assert!(error("redis://h?mode=set").starts_with("redis mode must be"));
        assert_eq!(
            error("redis://h?maxlen=5"),
            "maxlen applies to mode=stream only"
        );
        assert!(error("redis://h/x").starts_with("the database number must be"));
        assert!(error("redis:h").contains("expected"));
        assert_eq!(error("redis://h?key=a&key=b"), "option key given twice");
        assert!(error("redis://h?colour=red").contains("does not take the option \"colour\""));
        assert_eq!(error("redis://:pw@/0"), "a host is missing");
    }
}
