//! The watch lists in force, and their live reload. A sensor on a span port
//! runs for months while threat intel changes weekly: on SIGHUP, or when a
//! list file changes on disk, every list is read and compiled again, and the
//! new matcher replaces the old one in one step (workers pick it up at their
//! next record; connections in progress go on). A file that does not parse
//! keeps the previous lists and is reported in one line naming the file and
//! the line. Reloads and failures are counted in `stats.lists`.

use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::SystemTime;

use super::{intel, watchlist, Matcher};

/// The lists read and compiled, and how many values they left out (a
/// value that could not be read, a pattern that would not compile).
pub struct Loaded {
    pub matcher: Matcher,
    pub skipped: u64,
}

/// Reads and compiles every list again.
pub type Loader = Box<dyn Fn() -> Result<Loaded, String> + Send + Sync>;

/// A `--watchlist` argument: `FORMAT:FILE`, or a file whose format is
/// recognised by its content. A directory is a MISP feed as MISP publishes
/// it: its `manifest.json` (with the event files beside it) is the list.
pub fn list_arg(arg: &std::path::Path) -> (Option<intel::Format>, PathBuf) {
    let s = arg.to_string_lossy();
    let (format, path) = match s.split_once(':') {
        Some((f, rest)) if !arg.exists() => match f.parse() {
            Ok(format) => (Some(format), PathBuf::from(rest)),
            Err(_) => (None, arg.to_path_buf()),
        },
        _ => (None, arg.to_path_buf()),
    };
    if path.is_dir() {
        return (format, path.join("manifest.json"));
    }
    (format, path)
}

/// Reads and compiles the built-in lists and the `--watchlist` files
/// `args`. What a file leaves out is said on stderr, one line per file (and
/// per kind of indicator that cannot be matched); a file that cannot be
/// read at all is an error naming it.
pub fn load(args: &[PathBuf], default_names: bool) -> Result<Loaded, String> {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX));
    let mut user = Vec::new();
    let mut skipped = 0u64;
    for (i, arg) in args.iter().enumerate() {
        let (format, path) = list_arg(arg);
        if arg.is_dir() && !path.exists() {
            return Err(format!(
                "{}: a directory is read as a MISP feed, and this one has no manifest.json",
                crate::render::escape_control(&arg.display().to_string())
            ));
        }
        let text = intel::read_text(&path)
            .map_err(|e| format!("{}: cannot read watch list: {e}", path.display()))?;
        let base = watchlist::user_list_base_id(i);
        let format = format.unwrap_or_else(|| intel::detect(&text));
        let shown = crate::render::escape_control(&path.display().to_string());
        let loaded = intel::load(&text, &shown, base, format, now).map_err(|e| e.to_string())?;
        if !loaded.unsupported.is_empty() {
            let kinds: Vec<String> = loaded
                .unsupported
                .iter()
                .map(|(k, n)| format!("{} ({n})", crate::render::escape_control(k)))
                .collect();
            crate::diag::warn(format_args!(
                "{shown}: left out indicators hostwatch cannot match: {}",
                kinds.join(", ")
            ));
        }
        if !loaded.skipped.is_empty() {
            let why: Vec<String> = loaded
                .skipped
                .iter()
                .map(|s| crate::render::escape_control(s))
                .collect();
            crate::diag::warn(format_args!(
                "{shown}: left out values that cannot be read: {}",
                why.join("; ")
            ));
        }
        skipped += loaded.skipped.len() as u64
            + loaded
                .unsupported
                .get("unreadable value")
                .copied()
                .unwrap_or(0);
        user.extend(loaded.entries);
    }
    let matcher = Matcher::with_builtins(default_names, user).map_err(|e| e.to_string())?;
    for e in matcher.left_out() {
        skipped += 1;
        crate::diag::warn(format_args!(
            "{}: left out a pattern too large to compile: {}",
            crate::render::escape_control(&e.origin()),
            crate::render::escape_control(&e.pattern.to_string())
        ));
    }
    Ok(Loaded { matcher, skipped })
}

/// What identifies a file's version: modification time and length.
type Stamp = Option<(SystemTime, u64)>;

fn stamp(p: &PathBuf) -> Stamp {
    let m = std::fs::metadata(p).ok()?;
    Some((m.modified().ok()?, m.len()))
}

pub struct Lists {
    current: RwLock<Arc<Matcher>>,
    generation: AtomicU64,
    loader: Option<Loader>,
    files: Vec<PathBuf>,
    stamps: Mutex<Vec<Stamp>>,
    reloads: AtomicU64,
    failures: AtomicU64,
    /// Alerts an allow list suppressed.
    allowed: AtomicU64,
    /// Values the lists in force left out.
    skipped: AtomicU64,
}

impl Lists {
    /// Lists that never change (tests, replays of files).
    pub fn fixed(m: Arc<Matcher>) -> Arc<Lists> {
        Arc::new(Lists {
            current: RwLock::new(m),
            generation: AtomicU64::new(0),
            loader: None,
            files: Vec::new(),
            stamps: Mutex::new(Vec::new()),
            reloads: AtomicU64::new(0),
            failures: AtomicU64::new(0),
            allowed: AtomicU64::new(0),
            skipped: AtomicU64::new(0),
        })
    }

    /// The built-in lists and the `--watchlist` files `args`, read again on
    /// SIGHUP and when a file changes.
    pub fn from_files(args: &[PathBuf], default_names: bool) -> Result<Arc<Lists>, String> {
        let first = load(args, default_names)?;
        let files = args.iter().map(|a| list_arg(a).1).collect();
        let args = args.to_vec();
        Ok(Lists::reloadable(
            first,
            files,
            Box::new(move || load(&args, default_names)),
        ))
    }

    /// Lists read from `files` by `loader`, which reloads them.
    pub fn reloadable(first: Loaded, files: Vec<PathBuf>, loader: Loader) -> Arc<Lists> {
        let stamps = files.iter().map(stamp).collect();
        Arc::new(Lists {
            current: RwLock::new(Arc::new(first.matcher)),
            generation: AtomicU64::new(0),
            loader: Some(loader),
            files,
            stamps: Mutex::new(stamps),
            reloads: AtomicU64::new(0),
            failures: AtomicU64::new(0),
            allowed: AtomicU64::new(0),
            skipped: AtomicU64::new(first.skipped),
        })
    }

    /// Bumped at every successful reload.
    pub fn generation(&self) -> u64 {
        self.generation.load(Ordering::Acquire)
    }

    /// The matcher in force and its generation.
    pub fn current(&self) -> (u64, Arc<Matcher>) {
        // The generation is read first: a reload between the two reads
        // hands out the newer matcher under the older number, and the next
        // check takes it again; never the reverse.
        let g = self.generation();
        let m = match self.current.read() {
            Ok(m) => m.clone(),
            Err(poisoned) => poisoned.into_inner().clone(),
        };
        (g, m)
    }

    /// Whether a list file changed on disk since it was last read (its
    /// modification time or length); records the new state.
    pub fn changed_on_disk(&self) -> bool {
        let now: Vec<Stamp> = self.files.iter().map(stamp).collect();
        let mut seen = match self.stamps.lock() {
            Ok(s) => s,
            Err(poisoned) => poisoned.into_inner(),
        };
        if *seen == now {
            return false;
        }
        *seen = now;
        true
    }

    /// Reads every list again; the new matcher takes over only when all of
    /// them parse. Returns the number of entries in force.
    pub fn reload(&self) -> Result<usize, String> {
        let Some(loader) = &self.loader else {
            return Err("the watch lists are fixed in this run".into());
        };
        // What is about to be read is the version seen: a reload asked for
        // by a signal is not repeated when the poll notices the same change.
        self.changed_on_disk();
        match loader() {
            Ok(Loaded {
                matcher: m,
                skipped,
            }) => {
                let n = m.entries().len();
                match self.current.write() {
                    Ok(mut c) => *c = Arc::new(m),
                    Err(poisoned) => *poisoned.into_inner() = Arc::new(m),
                }
                self.skipped.store(skipped, Ordering::Relaxed);
                self.generation.fetch_add(1, Ordering::AcqRel);
                self.reloads.fetch_add(1, Ordering::Relaxed);
                Ok(n)
            }
            Err(e) => {
                self.failures.fetch_add(1, Ordering::Relaxed);
                Err(e)
            }
        }
    }

    /// An allow list kept a name or an address from alerting.
    pub fn count_allowed(&self) {
        self.allowed.fetch_add(1, Ordering::Relaxed);
    }

    /// `stats.lists`.
    pub fn to_json(&self) -> serde_json::Value {
        serde_json::json!({
            "entries": self.current().1.entries().len(),
            "reloads": self.reloads.load(Ordering::Relaxed),
            "reload_failures": self.failures.load(Ordering::Relaxed),
            "allowed": self.allowed.load(Ordering::Relaxed),
            "skipped": self.skipped.load(Ordering::Relaxed),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::detection::watchlist;

    fn load(path: PathBuf) -> Loader {
        Box::new(move || {
            let text = std::fs::read_to_string(&path).map_err(|e| e.to_string())?;
            let entries = watchlist::parse(&text, &path.display().to_string(), 5000)
                .map_err(|e| e.to_string())?;
            Ok(Loaded {
                matcher: Matcher::new(entries),
                skipped: 0,
            })
        })
    }

    #[test]
    fn a_reload_swaps_the_lists_and_a_broken_file_keeps_the_old_ones() -> Result<(), String> {
        let dir = tempfile::tempdir().map_err(|e| e.to_string())?;
        let path = dir.path().join("intel.list");
        std::fs::write(&path, "WIN-AAAAAAAAAAA\n").map_err(|e| e.to_string())?;
        let first = load(path.clone())()?;
        let lists = Lists::reloadable(first, vec![path.clone()], load(path.clone()));
        assert!(!lists.changed_on_disk());
        let (g0, m) = lists.current();
        assert!(m.lookup("WIN-AAAAAAAAAAA").is_some());
        assert!(m.lookup("WIN-BBBBBBBBBBB").is_none());

        std::fs::write(&path, "WIN-AAAAAAAAAAA\nWIN-BBBBBBBBBBB\n").map_err(|e| e.to_string())?;
        assert!(lists.changed_on_disk());
        assert!(!lists.changed_on_disk());
        assert_eq!(lists.reload(), Ok(2));
        let (g1, m) = lists.current();
        assert_eq!(g1, g0 + 1);
        assert!(m.lookup("win-bbbbbbbbbbb").is_some());

        // A broken line: the previous lists stay, the error names the line.
        std::fs::write(&path, "WIN-CCCCCCCCCCC\nX severity=9\n").map_err(|e| e.to_string())?;
        let e = lists.reload().err().unwrap_or_default();
        assert!(e.contains("intel.list:2"), "{e}");
        let (g2, m) = lists.current();
        assert_eq!(g2, g1);
        assert!(m.lookup("WIN-BBBBBBBBBBB").is_some());
        assert!(m.lookup("WIN-CCCCCCCCCCC").is_none());
        assert_eq!(
            lists.to_json(),
            serde_json::json!({"entries": 2, "reloads": 1, "reload_failures": 1, "allowed": 0, "skipped": 0})
        );
        // Fixed lists do not reload.
        assert!(Lists::fixed(m).reload().is_err());
        Ok(())
    }
}
