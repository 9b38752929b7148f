//! Files and standard output: JSON Lines, appended, buffered, and reopened
//! on request so logrotate can move a file away.

use std::fs::OpenOptions;
use std::io::{self, BufWriter, Write};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

pub struct FileSink {
    /// `None`: standard output (or a writer given by a test).
    path: Option<PathBuf>,
    out: BufWriter<Box<dyn Write + Send>>,
}

fn open(path: &Path) -> io::Result<Box<dyn Write + Send>> {
    Ok(Box::new(
        OpenOptions::new().create(true).append(true).open(path)?,
    ))
}

impl FileSink {
    /// Standard output, unless it was closed when the process started.
    pub fn stdout() -> io::Result<FileSink> {
        if stdout_was_closed() {
            return Err(io::Error::new(
                io::ErrorKind::BrokenPipe,
                "standard output is closed: events would be lost (name an output with -o)",
            ));
        }
        Ok(Self::stdout_unchecked())
    }

    fn stdout_unchecked() -> FileSink {
        FileSink::from_writer(Box::new(io::stdout()))
    }

    pub fn open(path: &Path) -> io::Result<FileSink> {
        Ok(FileSink {
            path: Some(path.to_path_buf()),
            out: BufWriter::with_capacity(64 << 10, open(path)?),
        })
    }

    pub fn from_writer(w: Box<dyn Write + Send>) -> FileSink {
        FileSink {
            path: None,
            out: BufWriter::with_capacity(64 << 10, w),
        }
    }

    pub fn write_all(&mut self, bytes: &[u8]) -> io::Result<()> {
        self.out.write_all(bytes)
    }

    pub fn flush(&mut self) -> io::Result<()> {
        self.out.flush()
    }

    /// Flushes, then reopens a file by its path (SIGHUP).
    pub fn reopen(&mut self) -> io::Result<()> {
        self.out.flush()?;
        if let Some(p) = &self.path {
            self.out = BufWriter::with_capacity(64 << 10, open(p)?);
        }
        Ok(())
    }
}

/// An in-memory output: every clone appends to the same buffer (the demo,
/// tests, benchmarks).
#[derive(Clone, Default)]
pub struct MemoryOutput(Arc<Mutex<Vec<u8>>>);

impl MemoryOutput {
    /// What has been written so far.
    pub fn contents(&self) -> Vec<u8> {
        self.0.lock().map(|b| b.clone()).unwrap_or_default()
    }
}

impl Write for MemoryOutput {
    fn write(&mut self, b: &[u8]) -> io::Result<usize> {
        self.0
            .lock()
            .map_err(|_| io::Error::other("poisoned"))?
            .extend_from_slice(b);
        Ok(b.len())
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// Whether file descriptor 1 was closed when the process started. Rust's
/// runtime reopens a closed standard descriptor on /dev/null before `main`,
/// after which writing events would succeed into nothing; this constructor
/// runs before the runtime (from `.init_array`) and records the truth.
static STDOUT_CLOSED: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

#[cfg(target_os = "linux")]
#[used]
#[link_section = ".init_array"]
static RECORD_STDOUT: extern "C" fn() = {
    extern "C" fn record() {
        // SAFETY: F_GETFD on a descriptor number reads no memory.
        let closed = unsafe { libc::fcntl(1, libc::F_GETFD) } == -1;
        STDOUT_CLOSED.store(closed, std::sync::atomic::Ordering::Relaxed);
    }
    record
};

fn stdout_was_closed() -> bool {
    STDOUT_CLOSED.load(std::sync::atomic::Ordering::Relaxed)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reopen_follows_a_rotated_file() {
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        let path = dir.path().join("eve.json");
        let rotated = dir.path().join("eve.json.1");
        let mut s = FileSink::open(&path).unwrap_or_else(|e| panic!("{e}"));
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
