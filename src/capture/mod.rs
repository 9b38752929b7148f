//! Capture stage: packets from pcap/pcapng files (plain or gzip-compressed,
//! or standard input) and from live interfaces, through libpcap; a pcapng
//! file whose interfaces differ in link type, which libpcap refuses, is read
//! again by [`pcapng::MixedReader`] from where libpcap stopped; a classic
//! pcap file libpcap opened is read on by [`classic::ClassicPcap`]. Every
//! failure becomes one [`CaptureError`] whose message names the source and
//! what to do about it.

use std::fs::File;
use std::io::{self, BufReader, Read, Seek, SeekFrom, Write};
use std::os::fd::{IntoRawFd, RawFd};
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;

use pcap::{Active, Capture, Offline};

use crate::decode::linktype;

pub mod classic;
pub mod pcapng;

pub use classic::Chunk;

/// Snapshot length of a live capture by default (tcpdump's).
pub const DEFAULT_SNAPLEN: i32 = 262_144;

/// Kernel ring of a capture socket by default, in MiB. libpcap's own
/// default (2 MiB) holds about 32 packets on an interface with segmentation
/// offload (each slot sized for a 64 KiB packet): a burst that arrives
/// while the reader waits for a core overflows it.
pub const DEFAULT_BUFFER_MIB: i32 = 32;

/// Options of a live capture.
#[derive(Debug, Clone)]
pub struct LiveOptions {
    pub snaplen: i32,
    pub promisc: bool,
    /// Kernel buffer size in bytes, per socket (0: libpcap's default).
    pub buffer_size: i32,
    pub immediate: bool,
    /// How long [`wait_any`] waits for packets (and libpcap's buffer
    /// timeout) before the caller sees the network idle.
    pub timeout_ms: i32,
}

impl Default for LiveOptions {
    fn default() -> Self {
        LiveOptions {
            snaplen: DEFAULT_SNAPLEN,
            promisc: true,
            buffer_size: DEFAULT_BUFFER_MIB << 20,
            immediate: false,
            timeout_ms: 250,
        }
    }
}

/// One clear line per failure.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CaptureError {
    Open {
        source: String,
        reason: String,
    },
    NotACapture {
        source: String,
        detail: String,
    },
    UnsupportedLinktype {
        source: String,
        linktype: i32,
        name: String,
    },
    Truncated {
        source: String,
        offset: Option<u64>,
        packets: u64,
        detail: String,
    },
    Read {
        source: String,
        detail: String,
    },
    Filter {
        expr: String,
        detail: String,
    },
    NoSuchInterface {
        iface: String,
        available: Vec<String>,
    },
    Permission {
        iface: String,
        detail: String,
    },
    /// Anything else that stops the run before reading (e.g. `--user`).
    Setup {
        detail: String,
    },
    /// Several captures were read and some could not be read whole (each
    /// named when it happened).
    Batch {
        damaged: usize,
        total: usize,
    },
}

impl std::fmt::Display for CaptureError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            CaptureError::Open { source, reason } => write!(f, "{source}: cannot open: {reason}"),
            CaptureError::NotACapture { source, detail } => {
                write!(f, "{source}: not a pcap or pcapng capture ({detail})")
            }
            CaptureError::Batch { damaged, total } => write!(
                f,
                "{damaged} of {total} files could not be read whole (named above); the events of everything readable were written"
            ),
            CaptureError::UnsupportedLinktype { source, linktype, name } => write!(
                f,
                "{source}: unsupported link type {linktype} ({name}); hostwatch reads Ethernet, Linux cooked (SLL, SLL2), raw IP and BSD loopback"
            ),
            CaptureError::Truncated { source, offset, packets, detail } => match offset {
                Some(o) => write!(
                    f,
                    "{source}: capture is truncated at byte offset {o} after {packets} packets ({detail}); events up to the cut were written"
                ),
                None => write!(
                    f,
                    "{source}: capture is truncated after {packets} packets ({detail}); events up to the cut were written"
                ),
            },
            CaptureError::Read { source, detail } => write!(f, "{source}: read error: {detail}"),
            CaptureError::Filter { expr, detail } => write!(f, "invalid capture filter '{expr}': {detail}"),
            CaptureError::NoSuchInterface { iface, available } => {
                write!(f, "{iface}: no such network interface")?;
                if !available.is_empty() {
                    write!(f, " (available: {})", available.join(", "))?;
                }
                Ok(())
            }
            CaptureError::Setup { detail } => write!(f, "{detail}"),
            CaptureError::Permission { iface, detail } => write!(
                f,
                "{iface}: no permission to capture ({detail}); run as root or grant the binary CAP_NET_RAW and CAP_NET_ADMIN (setcap cap_net_raw,cap_net_admin=eip $(command -v hostwatch))"
            ),
        }
    }
}

impl std::error::Error for CaptureError {}

/// What a read returned.
#[derive(Debug)]
pub enum Next<'a> {
    Packet {
        ts_us: i64,
        data: &'a [u8],
        wire_len: u32,
        /// The packet's own link type, when the file mixes several.
        linktype: Option<i32>,
        /// The buffer `data` lies in, when it may be shared rather than
        /// copied (a classic file's): see [`classic::Chunk`].
        chunk: Option<&'a classic::Chunk>,
    },
    /// Nothing to hand now: a live capture saw nothing within its
    /// timeout, or a file is being reopened by another reader.
    Idle,
    /// The file ended.
    End,
}

/// Why a file is read again by another reader.
#[derive(Debug, Clone, Copy)]
enum Reopen {
    /// libpcap refused a second link type: the mixed reader takes it.
    Mixed,
    /// The classic reader met a record libpcap reads differently.
    Libpcap,
}

enum Handle {
    /// A classic pcap file read without libpcap ([`classic`]).
    Classic(classic::ClassicPcap),
    Offline(OfflineFile),
    Live(Capture<Active>),
    Mixed(Box<pcapng::MixedReader>),
}

/// Kernel counters of a live capture.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct KernelStats {
    pub received: u64,
    pub dropped: u64,
    pub if_dropped: u64,
}

impl KernelStats {
    pub fn add(&mut self, o: &KernelStats) {
        self.received += o.received;
        self.dropped += o.dropped;
        self.if_dropped += o.if_dropped;
    }

    pub fn to_json(&self) -> serde_json::Value {
        serde_json::json!({
            "kernel_packets": self.received, "kernel_drops": self.dropped,
            "kernel_ifdrops": self.if_dropped,
        })
    }
}

/// An open capture source.
pub struct Source {
    name: String,
    handle: Handle,
    linktype: i32,
    /// Bytes of the file consumed so far, when it can be known
    /// (classic pcap: 24-byte header, then 16 bytes + data per record).
    offset: Option<u64>,
    packets: u64,
    /// The thread that feeds libpcap through a pipe (gzip, stdin). Dropped
    /// after `handle`: closing the pipe ends it.
    feeder: Option<JoinHandle<io::Result<u64>>>,
    /// Size of the file being read, for progress (0 when unknown).
    pub size: u64,
    /// The file's path when it can be read again (a regular file).
    path: Option<std::path::PathBuf>,
    filter: Option<String>,
    /// The file is to be read again by another reader from the next
    /// packet on.
    reopen: Option<Reopen>,
    /// Packets the reader it was reopened with passes over (the one before
    /// delivered them).
    skip: u64,
    /// A compressed file: its bytes the feeder has read, which is what the
    /// progress bar compares with the file's size.
    compressed_read: Option<Arc<AtomicU64>>,
}

/// A reader that counts the bytes read through it.
struct Counting<R> {
    inner: R,
    count: Arc<AtomicU64>,
}

impl<R: Read> Read for Counting<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.count.fetch_add(n as u64, Ordering::Relaxed);
        Ok(n)
    }
}

extern "C" {
    fn pcap_file(p: *mut libc::c_void) -> *mut libc::FILE;
    fn pcap_fopen_offline(fp: *mut libc::FILE, errbuf: *mut libc::c_char) -> *mut libc::c_void;
    fn pcap_snapshot(p: *mut libc::c_void) -> libc::c_int;
}

/// libpcap reads a file through stdio, whose buffer is one disk block
/// (4 KiB): half a million read(2) calls per 2 GB. Reading through a larger
/// buffer makes that a few thousand.
pub const READ_BUFFER: usize = 1 << 20;

/// A capture file opened by libpcap through a stdio stream with a
/// [`READ_BUFFER`]-byte buffer. The buffer is declared after the handle so
/// that it outlives it (pcap_close closes the stream); neither can be moved
/// out alone.
pub struct OfflineFile {
    cap: Capture<Offline>,
    _buffer: Option<Box<[u8]>>,
}

impl OfflineFile {
    pub fn capture(&mut self) -> &mut Capture<Offline> {
        &mut self.cap
    }

    fn capture_ref(&self) -> &Capture<Offline> {
        &self.cap
    }
}

/// A pipe's read end, which libpcap reads through its own stdio stream.
fn piped(cap: Capture<Offline>) -> OfflineFile {
    OfflineFile { cap, _buffer: None }
}

/// Opens `path` as [`OfflineFile`]; the error is libpcap's own text.
pub fn open_offline(path: &Path) -> Result<OfflineFile, String> {
    let c_path = std::ffi::CString::new(path.as_os_str().as_encoded_bytes())
        .map_err(|_| "the path contains a NUL byte".to_string())?;
    let mut buffer = vec![0u8; READ_BUFFER].into_boxed_slice();
    // SAFETY: fopen gets a NUL-terminated path and mode; setvbuf is called
    // before any I/O on the stream, with a buffer that lives in the returned
    // OfflineFile for as long as libpcap holds the stream.
    unsafe {
        let fp = libc::fopen(c_path.as_ptr(), c"rb".as_ptr());
        if fp.is_null() {
            return Err(io_reason(&io::Error::last_os_error()));
        }
        libc::setvbuf(fp, buffer.as_mut_ptr().cast(), libc::_IOFBF, buffer.len());
        let mut errbuf = [0 as libc::c_char; 257];
        let p = pcap_fopen_offline(fp, errbuf.as_mut_ptr());
        match std::ptr::NonNull::new(p.cast()) {
            Some(handle) => Ok(OfflineFile {
                cap: Capture::from(handle),
                _buffer: Some(buffer),
            }),
            None => {
                libc::fclose(fp);
                Err(std::ffi::CStr::from_ptr(errbuf.as_ptr())
                    .to_string_lossy()
                    .into_owned())
            }
        }
    }
}

const GZIP_MAGIC: [u8; 2] = [0x1f, 0x8b];

/// The first four bytes of a capture file libpcap reads: pcap in either
/// byte order, in microseconds or nanoseconds, Kuznetzov's modified pcap,
/// and a pcapng section header block.
const CAPTURE_MAGICS: [[u8; 4]; 7] = [
    [0xd4, 0xc3, 0xb2, 0xa1],
    [0xa1, 0xb2, 0xc3, 0xd4],
    [0x4d, 0x3c, 0xb2, 0xa1],
    [0xa1, 0xb2, 0x3c, 0x4d],
    [0x34, 0xcd, 0xb2, 0xa1],
    [0xa1, 0xb2, 0xcd, 0x34],
    [0x0a, 0x0d, 0x0d, 0x0a],
];

/// Copies `input` (gunzipped when it starts with the gzip magic) into a new
/// pipe on a thread; returns the pipe's read end.
fn feed_through_pipe(
    mut input: Box<dyn Read + Send>,
) -> io::Result<(i32, JoinHandle<io::Result<u64>>)> {
    let (read, write) = nix::unistd::pipe().map_err(io::Error::from)?;
    let mut writer = File::from(write);
    let handle = std::thread::Builder::new()
        .name("hostwatch-feeder".into())
        .spawn(move || {
            let mut magic = [0u8; 2];
            let mut got = 0;
            while got < 2 {
                let n = input.read(&mut magic[got..])?;
                if n == 0 {
                    break;
                }
                got += n;
            }
            let head = io::Cursor::new(magic[..got].to_vec());
            let mut chained: Box<dyn Read> = Box::new(head.chain(input));
            let gzip = got == 2 && magic == GZIP_MAGIC;
            if gzip {
                chained = Box::new(flate2::read::MultiGzDecoder::new(chained));
            }
            // What is not a capture is said now, before libpcap waits on a
            // pipe that /dev/zero or a tarball would fill forever.
            let mut start = [0u8; 4];
            let mut have = 0;
            while have < start.len() {
                match chained.read(&mut start[have..]) {
                    Ok(0) => break,
                    Ok(n) => have += n,
                    Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                    Err(e) => return Err(e),
                }
            }
            let start = &start[..have];
            if have == 4 && !CAPTURE_MAGICS.iter().any(|m| m[..] == *start) {
                let hex: Vec<String> = start.iter().map(|b| format!("{b:02x}")).collect();
                return Err(io::Error::new(
                    io::ErrorKind::InvalidData,
                    format!(
                        "{}starts with {}",
                        if gzip { "gzip-compressed, " } else { "" },
                        hex.join(" ")
                    ),
                ));
            }
            writer.write_all(start)?;
            let n = match io::copy(&mut chained, &mut writer) {
                Ok(n) => n,
                // The reader stopped (e.g. an unsupported link type): not an error.
                Err(e) if e.kind() == io::ErrorKind::BrokenPipe => 0,
                Err(e) => return Err(e),
            };
            writer.flush()?;
            Ok(n)
        })?;
    Ok((read.into_raw_fd(), handle))
}

fn linktype_name(lt: i32) -> String {
    pcap::Linktype(lt)
        .get_name()
        .unwrap_or_else(|_| "unknown".into())
}

/// Whether libpcap compiles the capture filter `expr` (for Ethernet, the
/// link type of nearly every capture), as a capture would before its
/// first packet.
pub fn check_filter(expr: &str) -> Result<(), CaptureError> {
    let error = |e: pcap::Error| CaptureError::Filter {
        expr: expr.into(),
        detail: clean(&e.to_string()),
    };
    let dead = Capture::dead(pcap::Linktype::ETHERNET).map_err(error)?;
    dead.compile(expr, true).map(|_| ()).map_err(error)
}

/// Whether libpcap lists the interface `iface` (an empty list, where
/// listing fails, says nothing); the devices listed. Needs no privilege:
/// `-T` asks it without opening anything.
pub fn interface_listed(iface: &str) -> Result<Vec<pcap::Device>, CaptureError> {
    let devices = pcap::Device::list().unwrap_or_default();
    if !devices.is_empty() && !devices.iter().any(|d| d.name == iface) {
        return Err(CaptureError::NoSuchInterface {
            iface: iface.into(),
            available: devices
                .iter()
                .map(|d| d.name.clone())
                .filter(|n| !n.contains("any"))
                .take(12)
                .collect(),
        });
    }
    Ok(devices)
}

/// A capture file opened by libpcap, directly or through a pipe that a
/// feeder thread fills (standard input, a FIFO, gzip).
struct Opened {
    cap: Result<OfflineFile, String>,
    /// The pipe's read end and the feeder.
    feeder: Option<(i32, JoinHandle<io::Result<u64>>)>,
    /// The file's size (0: not a regular file).
    size: u64,
    /// Compressed bytes read so far, for progress.
    compressed_read: Option<Arc<AtomicU64>>,
}

impl Opened {
    fn through_pipe(input: Box<dyn Read + Send>) -> io::Result<Opened> {
        let (fd, feeder) = feed_through_pipe(input)?;
        // SAFETY: `fd` is the read end of a pipe owned by no one else.
        let cap = unsafe { Capture::from_raw_fd(fd) }
            .map(piped)
            .map_err(|e| e.to_string());
        Ok(Opened {
            cap,
            feeder: Some((fd, feeder)),
            size: 0,
            compressed_read: None,
        })
    }

    /// A path: a regular file libpcap reads itself; gzip, a FIFO,
    /// /dev/stdin or /dev/fd/N (which cannot be read twice: sniffed, then
    /// reopened) through the feeder, opened once, which sniffs gzip itself.
    /// Errors are the reason to give.
    fn path(path: &str) -> Result<Opened, String> {
        let mut f = File::open(Path::new(path)).map_err(|e| io_reason(&e))?;
        let meta = f.metadata().map_err(|e| io_reason(&e))?;
        if meta.is_dir() {
            return Err("is a directory".into());
        }
        let mut magic = [0u8; 2];
        let regular = meta.is_file();
        let gz = regular && f.read_exact(&mut magic).is_ok() && magic == GZIP_MAGIC;
        if !gz && regular {
            drop(f);
            return Ok(Opened {
                cap: open_offline(Path::new(path)),
                feeder: None,
                size: meta.len(),
                compressed_read: None,
            });
        }
        if regular {
            f.seek(SeekFrom::Start(0)).map_err(|e| io_reason(&e))?;
        }
        let count = Arc::new(AtomicU64::new(0));
        let counted = Counting {
            inner: BufReader::new(f),
            count: count.clone(),
        };
        let mut opened = Opened::through_pipe(Box::new(counted)).map_err(|e| e.to_string())?;
        opened.size = meta.len();
        opened.compressed_read = gz.then_some(count);
        Ok(opened)
    }
}

/// The error for a stream libpcap refused: what the feeder saw (not
/// gzip after all), not a capture, or another cause.
fn refused(
    source: String,
    detail: &str,
    feeder: Option<(i32, JoinHandle<io::Result<u64>>)>,
) -> CaptureError {
    if let Some((fd, handle)) = feeder {
        // libpcap leaves a stream it refused open: close the pipe's read
        // end, so that the feeder cannot block on a full pipe, then let the
        // feeder say what it saw.
        // SAFETY: `fd` is the pipe's read end, which the failed open did
        // not close and nothing else uses.
        unsafe { libc::close(fd) };
        if let Ok(Err(e)) = handle.join() {
            if e.kind() == io::ErrorKind::InvalidData {
                return CaptureError::NotACapture {
                    source,
                    detail: e.to_string(),
                };
            }
        }
    }
    if detail.contains("unknown file format")
        || detail.contains("truncated")
        || detail.contains("bad dump file format")
    {
        CaptureError::NotACapture {
            source,
            detail: clean(detail),
        }
    } else {
        CaptureError::Open {
            source,
            reason: clean(detail),
        }
    }
}

impl Source {
    /// Opens a capture file (`-` for standard input).
    pub fn open_file(path: &str, filter: Option<&str>) -> Result<Source, CaptureError> {
        let source = if path == "-" {
            "<stdin>".to_string()
        } else {
            path.to_string()
        };
        let open_error = |reason: String| CaptureError::Open {
            source: source.clone(),
            reason,
        };
        let opened = if path == "-" {
            Opened::through_pipe(Box::new(io::stdin())).map_err(|e| open_error(e.to_string()))?
        } else {
            Opened::path(path).map_err(open_error)?
        };
        let Opened {
            cap,
            feeder,
            size,
            compressed_read,
        } = opened;
        let cap = match cap {
            Ok(c) => c,
            Err(detail) => return Err(refused(source, &detail, feeder)),
        };
        let lt = cap.capture_ref().get_datalink().0;
        let offset = (cap.capture_ref().major_version() == 2).then_some(24);
        let reopenable = path != "-" && std::fs::metadata(path).is_ok_and(|m| m.is_file());
        let mut s = Source {
            name: source,
            handle: Handle::Offline(cap),
            linktype: lt,
            offset,
            packets: 0,
            feeder: feeder.map(|(_, handle)| handle),
            size,
            compressed_read,
            path: reopenable.then(|| path.into()),
            filter: filter.map(str::to_owned),
            reopen: None,
            skip: 0,
        };
        s.check_linktype()?;
        if let Some(expr) = filter {
            s.set_filter(expr)?;
        } else if s.feeder.is_none() && s.offset.is_some() {
            s.read_classic();
        }
        Ok(s)
    }

    /// Reads a classic pcap file without libpcap from here on when it can
    /// be ([`classic`]); libpcap, which checked its header, stays the
    /// reader otherwise.
    fn read_classic(&mut self) {
        let (Some(path), Handle::Offline(c)) = (&self.path, &self.handle) else {
            return;
        };
        // SAFETY: the handle is an open offline pcap_t.
        let snapshot = unsafe { pcap_snapshot(c.capture_ref().as_ptr().cast()) };
        let classic = File::open(path)
            .ok()
            .and_then(|f| classic::ClassicPcap::open(&f, snapshot));
        if let Some(m) = classic {
            self.handle = Handle::Classic(m);
        }
    }

    /// libpcap reads on from the packet the classic reader stopped at (a
    /// record it reads differently): the file is opened again and the
    /// packets already read are passed over.
    fn hand_to_libpcap(&mut self) -> Result<(), CaptureError> {
        // Only a regular file, which has a path, is read without libpcap.
        let Some(path) = self.path.clone() else {
            return Err(CaptureError::Read {
                source: self.name.clone(),
                detail: format!(
                    "packet {} is one to read again through libpcap, and the file has no path",
                    self.packets + 1
                ),
            });
        };
        let cap = open_offline(&path).map_err(|reason| CaptureError::Open {
            source: self.name.clone(),
            reason: clean(&reason),
        })?;
        self.handle = Handle::Offline(cap);
        self.skip = self.packets;
        self.offset = Some(24);
        Ok(())
    }

    /// Opens a live interface.
    pub fn open_live(
        iface: &str,
        opts: &LiveOptions,
        filter: Option<&str>,
    ) -> Result<Source, CaptureError> {
        let devices = interface_listed(iface)?;
        let inactive =
            Capture::from_device(iface).map_err(|e| live_error(iface, &e.to_string(), &devices))?;
        let mut inactive = inactive
            .snaplen(opts.snaplen)
            .promisc(opts.promisc)
            .timeout(opts.timeout_ms)
            .immediate_mode(opts.immediate);
        if opts.buffer_size > 0 {
            inactive = inactive.buffer_size(opts.buffer_size);
        }
        let cap = inactive
            .open()
            .map_err(|e| live_error(iface, &e.to_string(), &devices))?;
        // Non-blocking reads, with our own poll(2): libpcap's read timeout
        // does not fire on every kernel path while nothing arrives, and a
        // signal must be able to stop an idle sensor.
        let cap = cap.setnonblock().map_err(|e| CaptureError::Open {
            source: iface.into(),
            reason: clean(&e.to_string()),
        })?;
        let lt = cap.get_datalink().0;
        let mut s = Source {
            name: iface.into(),
            handle: Handle::Live(cap),
            linktype: lt,
            offset: None,
            packets: 0,
            feeder: None,
            size: 0,
            path: None,
            filter: filter.map(str::to_owned),
            reopen: None,
            skip: 0,
            compressed_read: None,
        };
        s.check_linktype()?;
        if let Some(expr) = filter {
            s.set_filter(expr)?;
        }
        Ok(s)
    }

    fn check_linktype(&self) -> Result<(), CaptureError> {
        if linktype::supported(self.linktype) {
            Ok(())
        } else {
            Err(CaptureError::UnsupportedLinktype {
                source: self.name.clone(),
                linktype: self.linktype,
                name: linktype_name(self.linktype),
            })
        }
    }

    fn set_filter(&mut self, expr: &str) -> Result<(), CaptureError> {
        let r = match &mut self.handle {
            Handle::Offline(c) => c.capture().filter(expr, true),
            Handle::Live(c) => c.filter(expr, true),
            Handle::Mixed(_) | Handle::Classic(_) => Ok(()),
        };
        r.map_err(|e| CaptureError::Filter {
            expr: expr.into(),
            detail: clean(&e.to_string()),
        })
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    pub fn linktype(&self) -> i32 {
        self.linktype
    }

    pub fn is_live(&self) -> bool {
        matches!(self.handle, Handle::Live(_))
    }

    /// Bytes of the file read so far (for progress), when known.
    pub fn position(&self) -> Option<u64> {
        if let Some(c) = &self.compressed_read {
            return Some(c.load(Ordering::Relaxed));
        }
        match &self.handle {
            Handle::Mixed(m) => Some(m.position()),
            Handle::Classic(m) => Some(m.position()),
            _ => self.offset,
        }
    }

    /// Reads the file again with the reader that takes several link types,
    /// passing over the packets libpcap delivered.
    fn reopen_mixed(&mut self) -> Result<(), CaptureError> {
        let Some(path) = self.path.clone() else {
            return Err(CaptureError::Read {
                source: self.name.clone(),
                detail: format!(
                    "its interfaces have different link types, which a pipe cannot be read again for; read it from a file ({} packets were read)",
                    self.packets
                ),
            });
        };
        let open_error = |e: String| CaptureError::Open {
            source: self.name.clone(),
            reason: e,
        };
        let mut f = File::open(&path).map_err(|e| open_error(io_reason(&e)))?;
        let mut magic = [0u8; 2];
        let gz = f.read_exact(&mut magic).is_ok() && magic == GZIP_MAGIC;
        f.seek(SeekFrom::Start(0))
            .map_err(|e| open_error(io_reason(&e)))?;
        let input: Box<dyn Read + Send> = if gz {
            Box::new(flate2::read::MultiGzDecoder::new(BufReader::new(f)))
        } else {
            Box::new(f)
        };
        let reader = pcapng::MixedReader::new(input, self.filter.as_deref()).map_err(open_error)?;
        // libpcap's handle goes (closing a feeder's pipe), then its feeder.
        self.handle = Handle::Mixed(Box::new(reader));
        if let Some(f) = self.feeder.take() {
            let _ = f.join();
        }
        self.skip = self.packets;
        self.offset = None;
        Ok(())
    }

    /// Reads up to `max` packets of a live capture straight from the
    /// kernel's ring, each handed to `f` (time, captured bytes, length on
    /// the wire) while its frame is still in the ring: no copy, and one
    /// call per burst instead of one per packet. Never waits; returns how
    /// many were read (0: nothing buffered). `None` for a file.
    pub fn read_live<F: FnMut(i64, &[u8], u32)>(
        &mut self,
        max: usize,
        mut f: F,
    ) -> Option<Result<usize, CaptureError>> {
        let Handle::Live(c) = &mut self.handle else {
            return None;
        };
        let r = c.dispatch(Some(max.clamp(1, i32::MAX as usize)), |p| {
            let ts_us = timeval_us(p.header.ts.tv_sec, p.header.ts.tv_usec);
            f(ts_us, p.data, p.header.len);
        });
        Some(match r {
            Ok(n) => {
                self.packets += n as u64;
                Ok(n)
            }
            Err(pcap::Error::TimeoutExpired) => Ok(0),
            Err(e) => Err(CaptureError::Read {
                source: self.name.clone(),
                detail: clean(&e.to_string()),
            }),
        })
    }

    /// Reads the next packet. A live handle never waits: it reports
    /// [`Next::Idle`] when nothing is buffered; wait with [`wait_any`].
    #[allow(clippy::should_implement_trait)] // lends from the handle: not an Iterator
    pub fn next(&mut self) -> Result<Next<'_>, CaptureError> {
        match self.reopen.take() {
            Some(Reopen::Mixed) => self.reopen_mixed()?,
            Some(Reopen::Libpcap) => self.hand_to_libpcap()?,
            None => {}
        }
        match self.handle {
            Handle::Mixed(_) => return self.next_mixed(),
            Handle::Classic(_) => return self.next_classic(),
            Handle::Offline(_) | Handle::Live(_) => {}
        }
        // pcapng: the file position before the read is the last good offset.
        let before = if self.offset.is_none() {
            self.file_position()
        } else {
            None
        };
        let Source {
            handle,
            name,
            offset,
            packets,
            feeder,
            reopen,
            skip,
            ..
        } = self;
        let r = match handle {
            Handle::Offline(c) => {
                let c = c.capture();
                // Packets the classic reader delivered before handing over
                // (counted already; their bytes give the offset again).
                while *skip > 0 {
                    let Ok(p) = c.next_packet() else { break };
                    *skip -= 1;
                    if let Some(o) = offset.as_mut() {
                        *o += 16 + u64::from(p.header.caplen);
                    }
                }
                c.next_packet()
            }
            Handle::Live(c) => c.next_packet(),
            Handle::Mixed(_) | Handle::Classic(_) => return Ok(Next::End),
        };
        match r {
            Ok(p) => {
                *packets += 1;
                if let Some(o) = offset.as_mut() {
                    *o += 16 + u64::from(p.header.caplen);
                }
                let ts_us = timeval_us(p.header.ts.tv_sec, p.header.ts.tv_usec);
                Ok(Next::Packet {
                    ts_us,
                    data: p.data,
                    wire_len: p.header.len,
                    linktype: None,
                    chunk: None,
                })
            }
            Err(pcap::Error::NoMorePackets) => finish_feeder(feeder, name).map(|_| Next::End),
            Err(pcap::Error::TimeoutExpired) => Ok(Next::Idle),
            Err(e) if e.to_string().contains(pcapng::LIBPCAP_REFUSAL) => {
                // Read again, by the reader that takes every link type.
                *reopen = Some(Reopen::Mixed);
                Ok(Next::Idle)
            }
            Err(e) => {
                let detail = clean(&e.to_string());
                // A broken gzip stream explains the truncation better.
                finish_feeder(feeder, name)?;
                if detail.contains("truncated") {
                    Err(CaptureError::Truncated {
                        source: name.clone(),
                        offset: offset.or(before),
                        packets: *packets,
                        detail,
                    })
                } else {
                    Err(CaptureError::Read {
                        source: name.clone(),
                        detail,
                    })
                }
            }
        }
    }

    /// [`Source::next`] for a classic pcap file read in place.
    fn next_classic(&mut self) -> Result<Next<'_>, CaptureError> {
        let Source {
            handle,
            name,
            packets,
            reopen,
            ..
        } = self;
        let Handle::Classic(m) = handle else {
            return Ok(Next::End);
        };
        let at = m.position();
        let (record, chunk) = m.read();
        match record {
            classic::Record::Packet {
                ts_us,
                data,
                wire_len,
            } => {
                *packets += 1;
                Ok(Next::Packet {
                    ts_us,
                    data,
                    wire_len,
                    linktype: None,
                    chunk: Some(chunk),
                })
            }
            classic::Record::End => Ok(Next::End),
            classic::Record::HandOver => {
                *reopen = Some(Reopen::Libpcap);
                Ok(Next::Idle)
            }
            classic::Record::Failed(reason) => Err(CaptureError::Read {
                source: name.clone(),
                detail: format!("at byte offset {at}: {reason}"),
            }),
            classic::Record::Truncated(detail) => Err(CaptureError::Truncated {
                source: name.clone(),
                offset: Some(at),
                packets: *packets,
                detail,
            }),
        }
    }

    /// [`Source::next`] for a file read by the mixed-link-type reader.
    fn next_mixed(&mut self) -> Result<Next<'_>, CaptureError> {
        let Source {
            handle,
            name,
            packets,
            skip,
            ..
        } = self;
        let Handle::Mixed(m) = handle else {
            return Ok(Next::End);
        };
        loop {
            match m.next_packet() {
                Ok(Some(_)) if *skip > 0 => *skip -= 1,
                Ok(Some(p)) => {
                    *packets += 1;
                    return Ok(Next::Packet {
                        ts_us: p.ts_us,
                        data: m.frame(),
                        wire_len: p.wire_len,
                        linktype: Some(p.linktype),
                        chunk: None,
                    });
                }
                Ok(None) => return Ok(Next::End),
                Err(pcapng::ReadError::Truncated(at)) => {
                    return Err(CaptureError::Truncated {
                        source: name.clone(),
                        offset: Some(at),
                        packets: *packets,
                        detail: "the last block is cut short".into(),
                    })
                }
                Err(pcapng::ReadError::Malformed(at, detail)) => {
                    return Err(CaptureError::Read {
                        source: name.clone(),
                        detail: format!("at byte offset {at}: {detail}"),
                    })
                }
            }
        }
    }

    /// Joins this live socket to the AF_PACKET fanout group `group` of its
    /// interface, in flow-hash mode with IPv4 defragmentation before the
    /// hash (`PACKET_FANOUT_HASH | PACKET_FANOUT_FLAG_DEFRAG`): the kernel
    /// then hands each flow, both directions, to one socket of the group.
    pub fn join_fanout(&self, group: u16) -> io::Result<()> {
        const PACKET_FANOUT: libc::c_int = 18;
        const PACKET_FANOUT_HASH: u32 = 0;
        const PACKET_FANOUT_FLAG_DEFRAG: u32 = 0x8000;
        let Some(fd) = self.raw_fd() else {
            return Err(io::Error::new(
                io::ErrorKind::Unsupported,
                "not a live capture",
            ));
        };
        let arg: u32 = u32::from(group) | ((PACKET_FANOUT_HASH | PACKET_FANOUT_FLAG_DEFRAG) << 16);
        // SAFETY: `fd` is the open socket of this handle; the option value
        // is a u32 of the size given.
        let rc = unsafe {
            libc::setsockopt(
                fd,
                libc::SOL_PACKET,
                PACKET_FANOUT,
                (&arg as *const u32).cast(),
                std::mem::size_of::<u32>() as libc::socklen_t,
            )
        };
        if rc == 0 {
            Ok(())
        } else {
            Err(io::Error::last_os_error())
        }
    }

    fn raw_fd(&self) -> Option<i32> {
        use std::os::fd::AsRawFd;
        match &self.handle {
            Handle::Live(c) => Some(c.as_raw_fd()),
            Handle::Offline(_) | Handle::Mixed(_) | Handle::Classic(_) => None,
        }
    }

    fn file_position(&self) -> Option<u64> {
        let Handle::Offline(c) = &self.handle else {
            return None;
        };
        if self.feeder.is_some() {
            return None;
        }
        // SAFETY: the handle is a live offline pcap_t; pcap_file returns its
        // FILE (or NULL), which ftell only reads.
        let pos = unsafe {
            let f = pcap_file(c.capture_ref().as_ptr().cast());
            if f.is_null() {
                return None;
            }
            libc::ftell(f)
        };
        u64::try_from(pos).ok()
    }

    /// Kernel counters (live captures only).
    pub fn kernel_stats(&mut self) -> Option<KernelStats> {
        let Handle::Live(c) = &mut self.handle else {
            return None;
        };
        c.stats().ok().map(|s| KernelStats {
            received: u64::from(s.received),
            dropped: u64::from(s.dropped),
            if_dropped: u64::from(s.if_dropped),
        })
    }
}

/// Microseconds from a `timeval` (whose field types vary by platform).
#[allow(clippy::useless_conversion)]
fn timeval_us(sec: libc::time_t, usec: libc::suseconds_t) -> i64 {
    i64::from(sec) * 1_000_000 + i64::from(usec)
}

/// Waits up to `timeout_ms` until any of the live `sources` has packets,
/// or `also` is readable, in one poll(2): with several interfaces, none
/// waits behind another's timeout. Returns whether `also` is readable
/// (false on timeout or a signal). Called once per read round, so the
/// descriptors sit on the stack unless there are many interfaces.
pub fn wait_any(sources: &[Source], also: Option<RawFd>, timeout_ms: i32) -> bool {
    const ON_STACK: usize = 8;
    let idle = libc::pollfd {
        fd: -1,
        events: 0,
        revents: 0,
    };
    let wanted = sources
        .iter()
        .filter_map(Source::raw_fd)
        .chain(also)
        .map(|fd| libc::pollfd {
            fd,
            events: libc::POLLIN,
            revents: 0,
        });
    let mut stack = [idle; ON_STACK];
    let mut heap = Vec::new();
    let n = sources.len() + usize::from(also.is_some());
    let fds: &mut [libc::pollfd] = if n <= ON_STACK {
        let mut k = 0;
        for (slot, fd) in stack.iter_mut().zip(wanted) {
            *slot = fd;
            k += 1;
        }
        &mut stack[..k]
    } else {
        heap.extend(wanted);
        &mut heap
    };
    if fds.is_empty() {
        return false;
    }
    // SAFETY: `fds` is a valid array of pollfd of the given length for the
    // duration of the call.
    let ready = unsafe { libc::poll(fds.as_mut_ptr(), fds.len() as libc::nfds_t, timeout_ms) };
    ready > 0 && also.is_some() && fds.last().is_some_and(|p| p.revents & libc::POLLIN != 0)
}

/// Waits for the feeder thread; a decompression error is the real cause
/// of an early end.
fn finish_feeder(
    feeder: &mut Option<JoinHandle<io::Result<u64>>>,
    name: &str,
) -> Result<(), CaptureError> {
    if let Some(f) = feeder.take() {
        match f.join() {
            Ok(Ok(_)) => {}
            Ok(Err(e)) => {
                return Err(CaptureError::Read {
                    source: name.to_string(),
                    detail: format!("decompression: {e}"),
                })
            }
            Err(_) => {
                return Err(CaptureError::Read {
                    source: name.to_string(),
                    detail: "reader thread failed".into(),
                })
            }
        }
    }
    Ok(())
}

fn io_reason(e: &io::Error) -> String {
    match e.kind() {
        io::ErrorKind::NotFound => "no such file".into(),
        io::ErrorKind::PermissionDenied => "permission denied".into(),
        _ => e.to_string(),
    }
}

/// libpcap messages sometimes end with a newline or carry the errbuf prefix.
fn clean(s: &str) -> String {
    s.trim().trim_start_matches("libpcap error: ").to_string()
}

fn live_error(iface: &str, detail: &str, devices: &[pcap::Device]) -> CaptureError {
    let d = clean(detail);
    let lower = d.to_lowercase();
    if lower.contains("permission") || lower.contains("not permitted") {
        CaptureError::Permission {
            iface: iface.into(),
            detail: d,
        }
    } else if lower.contains("no such device") || lower.contains("doesn't exist") {
        CaptureError::NoSuchInterface {
            iface: iface.into(),
            available: devices.iter().map(|d| d.name.clone()).take(12).collect(),
        }
    } else {
        CaptureError::Open {
            source: iface.into(),
            reason: d,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every packet, as (time, bytes, wire length), and the end.
    fn read_all(src: &mut Source) -> (Vec<(i64, Vec<u8>, u32)>, String) {
        let mut out = Vec::new();
        loop {
            match src.next() {
                Ok(Next::Packet {
                    ts_us,
                    data,
                    wire_len,
                    ..
                }) => out.push((ts_us, data.to_vec(), wire_len)),
                Ok(Next::Idle) => {}
                Ok(Next::End) => return (out, "end".into()),
                Err(e) => return (out, e.to_string()),
            }
        }
    }

    /// A classic pcap file is read without libpcap until a record libpcap
    /// cuts to the snapshot length, then by libpcap from that packet: the
    /// packets, their order and the end are libpcap's own.
    #[test]
    fn classic_reader_hands_over_to_libpcap_where_it_reads_differently() {
        use super::classic::tests::{header, record};
        let mut v = header([0xd4, 0xc3, 0xb2, 0xa1], 64, 1);
        for (i, len) in [60u32, 100, 60, 64].into_iter().enumerate() {
            let data: Vec<u8> = (0..len).map(|b| (b as u8) ^ i as u8).collect();
            record(&mut v, i as u32 + 1, 5, &data, len + 10);
        }
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        let path = dir.path().join("handover.pcap");
        std::fs::write(&path, &v).unwrap_or_default();
        let name = path.display().to_string();
        let mut src = match Source::open_file(&name, None) {
            Ok(s) => s,
            Err(e) => panic!("{e}"),
        };
        assert!(matches!(src.handle, Handle::Classic(_)));
        // Progress and truncation offsets: after the first record.
        assert!(matches!(src.next(), Ok(Next::Packet { .. })));
        assert_eq!(src.position(), Some(24 + 16 + 60));
        let mut src = match Source::open_file(&name, None) {
            Ok(s) => s,
            Err(e) => panic!("{e}"),
        };
        let (ours, end) = read_all(&mut src);
        assert!(matches!(src.handle, Handle::Offline(_)));
        assert_eq!(end, "end");
        // Each packet counted once, those read again included.
        assert_eq!(src.packets, 4);
        // libpcap alone.
        let mut lib = match open_offline(&path) {
            Ok(c) => c,
            Err(e) => panic!("{e}"),
        };
        let mut theirs = Vec::new();
        while let Ok(p) = lib.capture().next_packet() {
            let ts = timeval_us(p.header.ts.tv_sec, p.header.ts.tv_usec);
            theirs.push((ts, p.data.to_vec(), p.header.len));
        }
        assert_eq!(ours, theirs);
        let lens: Vec<usize> = ours.iter().map(|p| p.1.len()).collect();
        assert_eq!(lens, [60, 64, 60, 64]);
        assert_eq!(ours[1].0, 2_000_005);
        // With a filter, libpcap reads.
        let src = match Source::open_file(&name, Some("tcp")) {
            Ok(s) => s,
            Err(e) => panic!("{e}"),
        };
        assert!(matches!(src.handle, Handle::Offline(_)));
    }

    /// A gzip-compressed capture's progress counts compressed bytes, so
    /// that it ends at the file's size, not past it.
    #[test]
    fn compressed_progress_ends_at_the_file_size() {
        let demo = std::fs::read(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/fixtures/demo/demo.pcap"
        ))
        .unwrap_or_default();
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
        let _ = gz.write_all(&demo);
        let bytes = gz.finish().unwrap_or_default();
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        let path = dir.path().join("progress.pcap.gz");
        std::fs::write(&path, &bytes).unwrap_or_default();
        let mut src = match Source::open_file(&path.display().to_string(), None) {
            Ok(s) => s,
            Err(e) => panic!("{e}"),
        };
        assert_eq!(src.size, bytes.len() as u64);
        let mut packets = 0;
        while let Ok(Next::Packet { .. }) = src.next() {
            packets += 1;
        }
        assert_eq!(packets, 72);
        assert_eq!(src.position(), Some(bytes.len() as u64));
        assert!(bytes.len() < demo.len());
    }
}
