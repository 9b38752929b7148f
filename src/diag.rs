//! What hostwatch says on stderr: one line per message, `hostwatch: ` and
//! the message, the form scripts match (`hostwatch: FILE: ...`).
//!
//! Under systemd, when stderr is the journal's stream (`JOURNAL_STREAM`
//! names its device and inode), each line starts with its syslog priority
//! (`<3>` error, `<4>` warning, `<6>` info), which journald takes as the
//! entry's level and strips: `journalctl -u hostwatch -p warning` shows
//! what needs a look. Lines carry no timestamp of their own: the journal
//! and syslog stamp them, and on a terminal or in a script the time is
//! now; the events themselves carry packet times.

use std::fmt::Display;
use std::sync::OnceLock;

/// A message's syslog priority (RFC 5424 severities).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Level {
    /// Something was not done: an input not read, events not written.
    Error = 3,
    /// Something is degraded or was left out.
    Warning = 4,
    /// What the sensor is doing.
    Info = 6,
}

/// Whether stderr is the journal's stream.
fn to_journal() -> bool {
    static JOURNAL: OnceLock<bool> = OnceLock::new();
    *JOURNAL.get_or_init(|| {
        std::env::var("JOURNAL_STREAM").is_ok_and(|v| is_stream(&v, &std::io::stderr()))
    })
}

/// Whether `stream` (`DEVICE:INODE`, as systemd sets `JOURNAL_STREAM`)
/// names the file behind `fd`.
fn is_stream(stream: &str, fd: &impl std::os::fd::AsFd) -> bool {
    use std::os::unix::fs::MetadataExt;
    let Some((dev, ino)) = stream.split_once(':') else {
        return false;
    };
    let (Ok(dev), Ok(ino)) = (dev.parse::<u64>(), ino.parse::<u64>()) else {
        return false;
    };
    fd.as_fd()
        .try_clone_to_owned()
        .map(std::fs::File::from)
        .and_then(|f| f.metadata())
        .is_ok_and(|m| m.dev() == dev && m.ino() == ino)
}

/// The line for `msg` at `level`.
pub fn line(level: Level, msg: impl Display, journal: bool) -> String {
    if journal {
        format!("<{}>hostwatch: {msg}", level as u8)
    } else {
        format!("hostwatch: {msg}")
    }
}

/// Writes `msg` on stderr at `level`.
pub fn say(level: Level, msg: impl Display) {
    eprintln!("{}", line(level, msg, to_journal()));
}

pub fn error(msg: impl Display) {
    say(Level::Error, msg);
}

pub fn warn(msg: impl Display) {
    say(Level::Warning, msg);
}

pub fn info(msg: impl Display) {
    say(Level::Info, msg);
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::MetadataExt;

    #[test]
    fn a_journal_line_starts_with_its_priority() {
        assert_eq!(
            line(Level::Error, "x.pcap: gone", false),
            "hostwatch: x.pcap: gone"
        );
        assert_eq!(
            line(Level::Error, "x.pcap: gone", true),
            "<3>hostwatch: x.pcap: gone"
        );
        assert_eq!(line(Level::Warning, "w", true), "<4>hostwatch: w");
        assert_eq!(line(Level::Info, "i", true), "<6>hostwatch: i");
    }

    #[test]
    fn the_journal_is_known_by_device_and_inode() -> std::io::Result<()> {
        let f = tempfile::tempfile()?;
        let m = f.metadata()?;
        assert!(is_stream(&format!("{}:{}", m.dev(), m.ino()), &f));
        assert!(!is_stream(&format!("{}:{}", m.dev(), m.ino() + 1), &f));
        assert!(!is_stream("", &f));
        assert!(!is_stream("1:x", &f));
        Ok(())
    }
}
