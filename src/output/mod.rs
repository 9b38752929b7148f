//! Output stage: JSON Lines to standard output or a file (appended, and
//! reopened on request so logrotate can move it away).

use std::fs::{File, OpenOptions};
use std::io::{self, BufWriter, Write};
use std::path::PathBuf;

/// Where events go.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Target {
    Stdout,
    File(PathBuf),
}

/// A buffered line sink. Callers flush at batch boundaries, so a crash
/// loses at most the lines of the batch being written.
pub struct Sink {
    target: Target,
    out: BufWriter<Box<dyn Write + Send>>,
}

fn open(target: &Target) -> io::Result<Box<dyn Write + Send>> {
    Ok(match target {
        Target::Stdout => Box::new(io::stdout()),
        Target::File(p) => Box::new(OpenOptions::new().create(true).append(true).open(p)?),
    })
}

impl Sink {
    pub fn open(target: Target) -> io::Result<Sink> {
        let out = BufWriter::with_capacity(64 << 10, open(&target)?);
        Ok(Sink { target, out })
    }

    /// A sink writing into any writer (tests, the demo).
    pub fn from_writer(w: Box<dyn Write + Send>) -> Sink {
        Sink {
            target: Target::Stdout,
            out: BufWriter::new(w),
        }
    }

    pub fn write_all(&mut self, bytes: &[u8]) -> io::Result<()> {
        self.out.write_all(bytes)
    }

    pub fn flush(&mut self) -> io::Result<()> {
        self.out.flush()
    }

    /// Flushes, then reopens a file target (SIGHUP).
    pub fn reopen(&mut self) -> io::Result<()> {
        self.out.flush()?;
        if let Target::File(_) = self.target {
            self.out = BufWriter::with_capacity(64 << 10, open(&self.target)?);
        }
        Ok(())
    }

    pub fn target(&self) -> &Target {
        &self.target
    }
}

/// Opens a file target early, so a bad path fails before capture starts.
pub fn check_writable(p: &PathBuf) -> io::Result<()> {
    File::options().create(true).append(true).open(p).map(drop)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reopen_follows_a_rotated_file() {
        let dir = std::env::temp_dir().join(format!("hostwatch-sink-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap_or_default();
        let path = dir.join("eve.json");
        let rotated = dir.join("eve.json.1");
        let _ = std::fs::remove_file(&path);
        let mut s = Sink::open(Target::File(path.clone())).unwrap_or_else(|e| panic!("{e}"));
        s.write_all(b"one\n").unwrap_or_default();
        s.flush().unwrap_or_default();
        std::fs::rename(&path, &rotated).unwrap_or_default();
        s.write_all(b"two\n").unwrap_or_default();
        s.reopen().unwrap_or_default();
        s.write_all(b"three\n").unwrap_or_default();
        s.flush().unwrap_or_default();
        assert_eq!(
            std::fs::read_to_string(&rotated).unwrap_or_default(),
            "one\ntwo\n"
        );
        assert_eq!(
            std::fs::read_to_string(&path).unwrap_or_default(),
            "three\n"
        );
    }
}
