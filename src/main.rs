//! The `hostwatch` command.

use std::io::IsTerminal;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use clap::{Args, Parser, Subcommand};

use hostwatch::capture::{LiveOptions, DEFAULT_BUFFER_MIB, DEFAULT_SNAPLEN};
use hostwatch::detection::lists::Lists;
use hostwatch::flow::{self, DatagramConfig, FlowConfig, StreamLimits};
use hostwatch::output::packets::{LogOptions, PacketLog};
use hostwatch::output::spec::{Kind, OutputSpec};
use hostwatch::output::{self, system_hostname, Outputs};
use hostwatch::pipeline::{self, Config, Control, Input};
use hostwatch::synth;

/// mimalloc instead of the system allocator: events and connection state
/// are made on a worker and freed on the output thread, which glibc's
/// arenas serialise with a lock (a third of a worker's time on the
/// handshake profile went to malloc and its lock, `docs/performance.md`).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// mimalloc's `mi_option_purge_delay` (its index in version 2's options).
const MI_OPTION_PURGE_DELAY: libmimalloc_sys::mi_option_t = 15;
/// How long pages stay free before mimalloc hands them back to the
/// kernel. Its default, 10 ms, is shorter than a lane's nap between bursts
/// at low rates (up to 26 ms), so each burst could fault its pages in
/// again; after a second they still go back, after a flood say.
const PURGE_DELAY_MS: libc::c_long = 1000;

fn tune_allocator() {
    // SAFETY: sets one of mimalloc's option values (an integer it reads
    // when deciding to purge), before any other thread runs.
    unsafe { libmimalloc_sys::mi_option_set(MI_OPTION_PURGE_DELAY, PURGE_DELAY_MS) };
}

/// Exit statuses, one per outcome a script tells apart (README's table).
mod exit {
    /// An input could not be read whole (missing, not a capture, damaged,
    /// no such interface, no permission).
    pub const DAMAGED: u8 = 1;
    /// Bad arguments, watch list or filter: nothing was read.
    pub const USAGE: u8 = 2;
    /// Alerts fired, with `--exit-code`.
    pub const ALERTS: u8 = 3;
    /// Events were lost to an output (a file that cannot be written, a
    /// network output that refused, dropped or could not deliver them).
    pub const LOST: u8 = 4;
    /// More than one of damaged, alerts, lost: 8 plus 1, 2 and 4 for each.
    pub const SEVERAL: u8 = 8;

    /// The status of a run that read what it could.
    pub fn of(damaged: bool, alerts: bool, lost: bool) -> u8 {
        match (damaged, alerts, lost) {
            (false, false, false) => 0,
            (true, false, false) => DAMAGED,
            (false, true, false) => ALERTS,
            (false, false, true) => LOST,
            _ => SEVERAL + u8::from(damaged) + 2 * u8::from(alerts) + 4 * u8::from(lost),
        }
    }
}

#[derive(Parser, Debug)]
#[command(
    name = "hostwatch",
    version,
    about = "Watches RDP and NTLM handshakes for the host names machines reveal, and flags watched ones (VMmanager defaults built in).",
    args_conflicts_with_subcommands = true
)]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
    #[command(flatten)]
    run: RunArgs,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Replays the bundled lab capture and prints its alerts, readably.
    Demo {
        /// Also write the JSON events to this file.
        #[arg(short = 'o', long)]
        output: Option<PathBuf>,
    },
    /// Writes the manual page (roff) to standard output: `hostwatch man > hostwatch.1`.
    Man,
    /// Writes shell completions to standard output (bash, zsh, fish, elvish, powershell).
    Completions {
        /// The shell.
        shell: clap_complete::Shell,
    },
    /// Writes a generated capture (the demo's, or a large benchmark mix).
    Generate {
        /// Where to write the pcap.
        #[arg(short = 'o', long)]
        output: PathBuf,
        /// `demo` (the bundled lab story), `bench` (a realistic mix),
        /// `bench-udp` (the mix with UDP noise), `handshakes` (the mix
        /// without bulk: every connection a handshake), `synflood` (a
        /// million lone SYNs), `gaps` (connections full of holes) or
        /// `buffers` (connections that fill their TLS handshake buffers).
        #[arg(long, default_value = "demo")]
        kind: String,
        /// Approximate size of a `bench`, `bench-udp` or `handshakes`
        /// capture, in megabytes.
        #[arg(long, default_value_t = 2000)]
        size_mb: u64,
        /// Seed of the `bench` generator.
        #[arg(long, default_value_t = 1)]
        seed: u64,
    },
}

/// `--format`.
#[derive(clap::ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
enum Format {
    Json,
    Pretty,
}

#[derive(Args, Debug)]
struct RunArgs {
    /// Read options from this TOML file: each key a long option
    /// (`interface = ["eth1"]`, `buffer-size = 128`); options given here
    /// replace the file's.
    #[arg(short = 'c', long, value_name = "FILE")]
    config: Option<PathBuf>,
    /// Read packets from a pcap or pcapng file (gzip allowed; `-` for stdin). Repeatable.
    #[arg(
        short = 'r',
        long = "read",
        value_name = "FILE",
        help_heading = "Input"
    )]
    read: Vec<String>,
    /// Capture live on an interface. Repeatable.
    #[arg(
        short = 'i',
        long = "interface",
        value_name = "IFACE",
        help_heading = "Input"
    )]
    interface: Vec<String>,
    /// BPF capture filter (tcpdump syntax); trailing words are joined into one.
    #[arg(
        short = 'f',
        long = "filter",
        value_name = "EXPR",
        help_heading = "Input"
    )]
    filter: Option<String>,
    /// Where events go (default: standard output). Repeatable. A path appends
    /// to a file (SIGHUP reopens it); URLs: file:PATH, syslog:[PATH],
    /// syslog+udp://HOST[:PORT], syslog+tcp://HOST[:PORT], unix:PATH,
    /// unix+dgram:PATH, redis://[[USER]:PASS@]HOST[:PORT][/DB]?mode=list|rpush|channel|stream&key=K,
    /// each with ?types=alert,inventory,... (see README).
    #[arg(
        short = 'o',
        long = "output",
        value_name = "URL",
        help_heading = "Output"
    )]
    output: Vec<String>,
    /// Seconds the end of a run waits for network outputs to send what they hold.
    #[arg(long, default_value_t = output::defaults::DRAIN_TIMEOUT_SECS, value_name = "SECS", help_heading = "Output")]
    drain_timeout: u64,
    /// Worker threads (default: one less than the cores, at least one: the
    /// capture thread needs a core of its own).
    #[arg(short = 'j', long, help_heading = "Limits")]
    workers: Option<usize>,
    /// Capture sockets per interface when live (default: as many as
    /// workers). Each socket's thread does a worker's work itself; above
    /// one, they form an AF_PACKET fanout group (see README). 1 with
    /// several workers: one capture thread that feeds them.
    #[arg(long, value_name = "N", help_heading = "Live capture")]
    capture_threads: Option<usize>,
    /// Add a watch list file. Repeatable.
    #[arg(long = "watchlist", value_name = "FILE", help_heading = "Detection")]
    watchlist: Vec<PathBuf>,
    /// Do not flag Windows setup default names (WIN- + 11 characters, informational).
    #[arg(long, help_heading = "Detection")]
    no_default_names: bool,
    /// What a watched name that is only mentioned (looked up, asked for,
    /// tied to another address) does: alert (at severity 3), event (kept
    /// in its record's event, no alert) or off.
    #[arg(
        long,
        default_value = "alert",
        value_name = "WHAT",
        help_heading = "Detection"
    )]
    mentions: hostwatch::detection::Mentions,
    /// Hold back an alert of the same machine, address and list within
    /// this much (packet) time of the last one written (e.g. 10m, 1h); the
    /// next alert written says how many were held back.
    #[arg(long, value_name = "DURATION", value_parser = humantime::parse_duration, help_heading = "Detection")]
    suppress: Option<Duration>,
    /// Write only alerts of at least this confidence: low, medium or high.
    #[arg(
        long,
        default_value = "low",
        value_name = "LEVEL",
        help_heading = "Detection"
    )]
    min_confidence: hostwatch::events::Confidence,
    /// How files and standard output are written: json (EVE JSON Lines) or
    /// pretty (alerts only, readable). Default: pretty on a terminal when no
    /// -o is given, else json. Network outputs always get JSON.
    #[arg(long, value_name = "FORMAT", help_heading = "Output")]
    format: Option<Format>,
    /// Write the packets of every connection and datagram exchange that
    /// alerted, from its first packet, to this pcap file (for Wireshark).
    #[arg(
        short = 'w',
        long = "write",
        value_name = "FILE",
        help_heading = "Output"
    )]
    write: Option<PathBuf>,
    /// With -w: start a new file (FILE.1, FILE.2, ...) once one holds this
    /// many megabytes, as tcpdump's -C.
    #[arg(short = 'C', long = "write-size", value_name = "MB", requires = "write", value_parser = clap::value_parser!(u64).range(1..), help_heading = "Output")]
    write_size: Option<u64>,
    /// With -w and -C: keep only the newest N files, as tcpdump's -W.
    #[arg(short = 'W', long = "write-files", value_name = "N", requires = "write_size", value_parser = clap::value_parser!(u32).range(1..), help_heading = "Output")]
    write_files: Option<u32>,
    /// Write only alert events.
    #[arg(long, help_heading = "Output")]
    alerts_only: bool,
    /// Exit with status 3 when any alert fired.
    #[arg(long, help_heading = "Output")]
    exit_code: bool,
    /// No progress bar and no summary on stderr.
    #[arg(short = 'q', long, help_heading = "Output")]
    quiet: bool,
    /// Print the human summary on stderr at the end even when it is not a terminal.
    #[arg(long, help_heading = "Output")]
    summary: bool,
    /// Check the options, filter, watch lists and output URLs, that capture
    /// files can be read, interfaces exist and file outputs can be
    /// written, say whether all is valid and exit (0: valid, 2: not), as
    /// Suricata's -T: nothing is captured, opened or written.
    #[arg(short = 'T', long, help_heading = "Output")]
    test_config: bool,
    /// Which checksums are checked: auto (all, except those of a sender whose
    /// every checksum is wrong: the capturing host offloading them), verify,
    /// or ignore.
    #[arg(
        long,
        default_value = "auto",
        value_name = "MODE",
        help_heading = "Input"
    )]
    checksums: hostwatch::decode::checksum::Mode,
    /// The home networks, CIDRs separated by commas (Suricata's HOME_NET):
    /// a watched machine outside them talking to a host inside weighs more.
    /// Default: the private, shared, link-local and loopback ranges.
    #[arg(long, value_name = "CIDRS", help_heading = "Detection")]
    home_net: Option<hostwatch::detection::network::HomeNet>,
    /// A MaxMind-format ASN database (GeoLite2-ASN or compatible): events
    /// name the autonomous systems of endpoints outside home-net, and list
    /// entries asn:N alert on them.
    #[arg(long, value_name = "FILE", help_heading = "Detection")]
    asn_db: Option<PathBuf>,
    /// Bytes reassembled per direction of a connection.
    #[arg(long, default_value_t = flow::defaults::DEPTH, value_name = "BYTES", help_heading = "Limits")]
    depth: u32,
    /// Memory all connections may hold in buffers, in MiB (out-of-order and
    /// unacknowledged bytes, analyzer buffers); past it the connections
    /// holding the most stop being analysed.
    #[arg(long, default_value_t = flow::defaults::MEMCAP_MIB, value_name = "MIB", help_heading = "Limits")]
    memcap: usize,
    /// Most connections tracked at once (the idle-most are evicted beyond).
    #[arg(long, default_value_t = flow::defaults::MAX_FLOWS, help_heading = "Limits")]
    max_flows: usize,
    /// Seconds without packets after which a connection ends.
    #[arg(long, default_value_t = flow::defaults::IDLE_TIMEOUT_SECS, help_heading = "Limits")]
    idle_timeout: u64,
    /// Most UDP conversations of analysed protocols held at once.
    #[arg(long, default_value_t = flow::datagram::defaults::MAX_CONVERSATIONS, help_heading = "Limits")]
    max_conversations: usize,
    /// Seconds without datagrams after which a UDP conversation ends.
    #[arg(long, default_value_t = flow::datagram::defaults::IDLE_TIMEOUT_SECS, value_name = "SECS", help_heading = "Limits")]
    udp_timeout: u64,
    /// Snapshot length of a live capture.
    #[arg(long, default_value_t = DEFAULT_SNAPLEN, help_heading = "Live capture")]
    snaplen: i32,
    /// Do not put interfaces into promiscuous mode.
    #[arg(long, help_heading = "Live capture")]
    no_promisc: bool,
    /// Kernel capture buffer in MiB, per socket (each lane has its own).
    #[arg(long, default_value_t = DEFAULT_BUFFER_MIB, value_name = "MIB", help_heading = "Live capture")]
    buffer_size: i32,
    /// Deliver packets as they arrive (lower latency, more wake-ups).
    #[arg(long, help_heading = "Live capture")]
    immediate: bool,
    /// Seconds between `stats` events while capturing live (0: only at the end).
    #[arg(long, default_value_t = pipeline::defaults::STATS_INTERVAL_SECS, help_heading = "Live capture")]
    stats_interval: u64,
    /// This sensor's name, EVE's top-level `host` in every event (default:
    /// the machine's host name; `--sensor-name ''` omits it).
    #[arg(long, help_heading = "Output")]
    sensor_name: Option<String>,
    /// Drop root privileges to this user once the capture is open.
    #[arg(long, value_name = "USER", help_heading = "Live capture")]
    user: Option<String>,
    /// Trailing words: a BPF filter, as tcpdump takes it (options may
    /// still follow). Captures named right after -r's (a shell glob,
    /// `-r *.pcap`) are read too.
    #[arg(value_name = "FILTER", help_heading = "Input")]
    filter_words: Vec<String>,
}

fn fail(msg: impl std::fmt::Display) -> ExitCode {
    hostwatch::diag::error(format_args!("{msg}"));
    ExitCode::from(exit::USAGE)
}

fn install_signals(control: &Arc<Control>) -> std::io::Result<()> {
    use signal_hook::consts::{SIGHUP, SIGINT, SIGTERM, SIGUSR1};
    for sig in [SIGINT, SIGTERM] {
        // The first signal asks for a clean stop (flush, final stats); a
        // second one, once the stop flag is set, ends the process at once
        // with 128 + the signal's number. Registered before the setter,
        // so the first signal finds the flag still clear.
        signal_hook::flag::register_conditional_shutdown(sig, 128 + sig, control.stop.clone())?;
        signal_hook::flag::register(sig, control.stop.clone())?;
    }
    let c = control.clone();
    // SAFETY: as above.
    unsafe {
        signal_hook::low_level::register(SIGHUP, move || {
            c.reopen.store(true, Ordering::SeqCst);
            c.reload.store(true, Ordering::SeqCst);
        })?
    };
    let c = control.clone();
    // SAFETY: as above.
    unsafe {
        signal_hook::low_level::register(SIGUSR1, move || c.summary.store(true, Ordering::SeqCst))?
    };
    Ok(())
}

/// The passwd record of `user`.
fn lookup_user(user: &str) -> Result<nix::unistd::User, String> {
    match nix::unistd::User::from_name(user) {
        Ok(Some(u)) => Ok(u),
        Ok(None) => Err(format!("--user: no such user '{user}'")),
        Err(e) => Err(format!("--user {user}: cannot look it up: {e}")),
    }
}

/// Checks that `user` exists, before anything is opened.
fn user_exists(user: &str) -> Result<(), String> {
    lookup_user(user).map(|_| ())
}

/// Switches to `user` (like `tcpdump -Z`): no supplementary groups, its
/// group, then its uid.
fn drop_privileges(user: &str) -> Result<(), String> {
    use nix::unistd::{setgid, setgroups, setuid};
    let u = lookup_user(user)?;
    setgroups(&[])
        .and_then(|()| setgid(u.gid))
        .and_then(|()| setuid(u.uid))
        .map_err(|e| format!("--user {user}: cannot drop privileges: {e}"))
}

/// What a live sensor says once its interfaces are open, as tcpdump does:
/// the interfaces, the filter, the lists and where events go.
fn listening_line(cfg: &Config, lists: &Lists, specs: &[OutputSpec]) -> String {
    let ifaces: Vec<&str> = cfg.interfaces().collect();
    let filter = cfg
        .filter
        .as_deref()
        .map_or_else(String::new, |f| format!(", filter '{f}'"));
    let (_, matcher) = lists.current();
    let mut names: Vec<&str> = Vec::new();
    for e in matcher.entries() {
        if !names.contains(&&*e.list) {
            names.push(&e.list);
        }
    }
    let outputs: Vec<String> = specs.iter().map(OutputSpec::label).collect();
    hostwatch::render::escape_control(&format!(
        "listening on {}{filter}; {} list entries ({}); events to {}",
        ifaces.join(", "),
        matcher.entries().len(),
        names.join(", "),
        outputs.join(", ")
    ))
}

/// The pcap file of `-w`, created (emptied) now, as tcpdump does.
fn open_packet_log(
    path: &std::path::Path,
    specs: &[OutputSpec],
    args: &RunArgs,
) -> Result<PacketLog, String> {
    if path.as_os_str() == "-" {
        return Err("-w takes a file name (events go to standard output with -o -)".into());
    }
    if specs
        .iter()
        .any(|s| s.kind.same_place(&Kind::File(path.to_path_buf())))
    {
        return Err(format!(
            "-w {}: that file is also an --output",
            path.display()
        ));
    }
    let target = Kind::File(path.to_path_buf());
    if args
        .read
        .iter()
        .any(|r| target.same_place(&Kind::File(PathBuf::from(r))))
    {
        return Err(format!(
            "-w {}: that file is a capture being read",
            path.display()
        ));
    }
    PacketLog::create(LogOptions {
        path: path.to_path_buf(),
        rotate_bytes: args.write_size.map(|mb| mb.saturating_mul(1_000_000)),
        files: args.write_files,
    })
    .map_err(|e| format!("-w {}: cannot create it: {e}", path.display()))
}

fn run(args: RunArgs) -> ExitCode {
    run_checked(args).unwrap_or_else(|code| code)
}

/// The run: its inputs, lists and outputs opened (each failure one line
/// and its exit code), the pipeline run, what happened said.
fn run_checked(mut args: RunArgs) -> Result<ExitCode, ExitCode> {
    let (inputs, filter) = inputs_of(&mut args)?;
    if !(1..=flow::defaults::MAX_DEPTH).contains(&args.depth) {
        return Err(fail(format!(
            "--depth must be between 1 and {}",
            flow::defaults::MAX_DEPTH
        )));
    }
    if let Some(u) = &args.user {
        user_exists(u).map_err(fail)?;
    }
    let asn_db = match &args.asn_db {
        Some(p) => Some(Arc::new(
            hostwatch::detection::asn::AsnDb::open(p).map_err(fail)?,
        )),
        None => None,
    };
    // Read again on SIGHUP and when a file changes.
    let lists = Lists::from_files(&args.watchlist, !args.no_default_names).map_err(fail)?;
    let live = !args.interface.is_empty();
    let sensor_name = match &args.sensor_name {
        Some(n) if n.is_empty() => None,
        Some(n) => Some(n.clone()),
        None => Some(system_hostname()).filter(|h| !h.is_empty()),
    };
    let (specs, pretty_on_terminal) = output_specs(&args)?;
    if args.test_config {
        if let Some(f) = &filter {
            hostwatch::capture::check_filter(f).map_err(fail)?;
        }
        preflight(&args, &specs).map_err(fail)?;
        hostwatch::diag::info("configuration is valid");
        return Ok(ExitCode::SUCCESS);
    }
    let syslog_host = sensor_name.clone().unwrap_or_else(system_hostname);
    let outputs = Outputs::open(&specs, &syslog_host).map_err(fail)?;
    let packet_log = match &args.write {
        Some(path) => Some(Arc::new(
            open_packet_log(path, &specs, &args).map_err(fail)?,
        )),
        None => None,
    };
    let control = Arc::new(Control::default());
    install_signals(&control).map_err(|e| fail(format!("cannot install signal handlers: {e}")))?;
    let cfg = config_of(
        &args,
        (inputs, filter),
        Opened {
            sensor_name,
            asn_db,
            packet_log: packet_log.clone(),
            pretty_on_terminal,
        },
    );
    let listening = (live && !args.quiet).then(|| listening_line(&cfg, &lists, &specs));
    let outcome = pipeline::run_with_hook(&cfg, lists, outputs, control, || {
        if let Some(l) = &listening {
            hostwatch::diag::info(l);
        }
        match &args.user {
            Some(u) => drop_privileges(u),
            None => Ok(()),
        }
    });
    let lost = packet_log.is_some_and(|l| l.failed());
    Ok(conclude(&args, live, &outcome, lost))
}

/// What `-T` checks of the places a run would open, without opening them
/// (as `suricata -T` checks its log directory): capture files exist and
/// can be read, interfaces are listed, and every file output and the
/// packet log can be written where they would be created. A service
/// checked this way before a restart does not fail on its first packet.
fn preflight(args: &RunArgs, specs: &[OutputSpec]) -> Result<(), String> {
    use nix::unistd::{access, AccessFlags};
    for r in args.read.iter().filter(|r| r.as_str() != "-") {
        let p = std::path::Path::new(r);
        if !p.exists() {
            return Err(format!("-r {r}: no such file"));
        }
        access(p, AccessFlags::R_OK)
            .map_err(|e| format!("-r {r}: cannot be read: {}", e.desc()))?;
    }
    for i in &args.interface {
        hostwatch::capture::interface_listed(i).map_err(|e| e.to_string())?;
    }
    let files = specs.iter().filter_map(|s| match &s.kind {
        Kind::File(p) => Some(("--output", p.as_path())),
        _ => None,
    });
    let packet_log = args.write.as_deref().map(|p| ("-w", p));
    for (option, path) in files.chain(packet_log) {
        let shown = path.display();
        if path.is_dir() {
            return Err(format!("{option} {shown}: is a directory"));
        }
        if path.exists() {
            access(path, AccessFlags::W_OK)
                .map_err(|e| format!("{option} {shown}: cannot be written: {}", e.desc()))?;
            continue;
        }
        let dir = match path.parent() {
            Some(d) if !d.as_os_str().is_empty() => d,
            _ => std::path::Path::new("."),
        };
        if !dir.is_dir() {
            return Err(format!(
                "{option} {shown}: directory {} does not exist",
                dir.display()
            ));
        }
        access(dir, AccessFlags::W_OK | AccessFlags::X_OK).map_err(|e| {
            format!(
                "{option} {shown}: cannot create it in {}: {}",
                dir.display(),
                e.desc()
            )
        })?;
    }
    Ok(())
}

/// The captures to read and interfaces to open, and the BPF filter.
fn inputs_of(args: &mut RunArgs) -> Result<(Vec<Input>, Option<String>), ExitCode> {
    // `-r *.pcap` hands the shell's second and later files to the filter:
    // leading words that are existing files are captures to read.
    if !args.read.is_empty() {
        let files = args
            .filter_words
            .iter()
            .take_while(|w| std::path::Path::new(w.as_str()).is_file())
            .count();
        let more: Vec<String> = args.filter_words.drain(..files).collect();
        args.read.extend(more);
    }
    let mut inputs: Vec<Input> = args.read.iter().map(|f| Input::File(f.clone())).collect();
    inputs.extend(args.interface.iter().map(|i| Input::Interface(i.clone())));
    if inputs.is_empty() && !args.test_config {
        return Err(fail(match &args.config {
            Some(c) => format!(
                "nothing to read: set `interface` (or `read`) in {}, or give -i IFACE or -r FILE",
                c.display()
            ),
            None => {
                "nothing to read: give -r FILE or -i IFACE (see --help), or run `hostwatch demo`"
                    .into()
            }
        }));
    }
    let filter = match (&args.filter, args.filter_words.is_empty()) {
        (Some(_), false) => {
            return Err(fail(
                "give the filter either with -f or as trailing words, not both",
            ))
        }
        (Some(f), true) => Some(f.clone()),
        (None, false) => Some(args.filter_words.join(" ")),
        (None, true) => None,
    };
    for f in args.read.iter().filter(|_| !args.test_config) {
        if f != "-" && !std::path::Path::new(f).exists() {
            hostwatch::diag::error(format_args!("{f}: cannot open: no such file"));
            return Err(ExitCode::from(exit::DAMAGED));
        }
    }
    Ok((inputs, filter))
}

/// The outputs to open, each place once, and whether alerts are printed
/// readably to a terminal.
fn output_specs(args: &RunArgs) -> Result<(Vec<OutputSpec>, bool), ExitCode> {
    let mut specs = Vec::new();
    for o in &args.output {
        specs.push(OutputSpec::parse(o).map_err(|e| fail(format!("--output {o}: {e}")))?);
    }
    let pretty = match args.format {
        Some(f) => f == Format::Pretty,
        None => specs.is_empty() && std::io::stdout().is_terminal(),
    };
    let pretty_on_terminal =
        pretty && specs.iter().all(|s| s.kind == Kind::Stdout) && std::io::stdout().is_terminal();
    for (i, a) in specs.iter().enumerate() {
        if specs[..i].iter().any(|b| b.kind.same_place(&a.kind)) {
            return Err(fail(format!(
                "--output {} is given twice: every event would be written twice",
                a.label()
            )));
        }
    }
    if specs.is_empty() {
        specs.push(OutputSpec::new(Kind::Stdout));
    }
    for s in &mut specs {
        s.pretty = pretty && matches!(s.kind, Kind::Stdout | Kind::File(_));
    }
    Ok((specs, pretty_on_terminal))
}

/// What the run opened or decided before its configuration.
struct Opened {
    sensor_name: Option<String>,
    asn_db: Option<Arc<hostwatch::detection::asn::AsnDb>>,
    packet_log: Option<Arc<PacketLog>>,
    /// Alerts are printed readably to a terminal.
    pretty_on_terminal: bool,
}

/// The pipeline's configuration from the command line, its inputs and
/// filter, and what was opened.
fn config_of(args: &RunArgs, (inputs, filter): (Vec<Input>, Option<String>), o: Opened) -> Config {
    let cores = std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(1);
    let live = !args.interface.is_empty();
    let secs = |s: u64| {
        i64::try_from(s)
            .unwrap_or(i64::MAX / 2)
            .saturating_mul(1_000_000)
    };
    Config {
        inputs,
        filter,
        live: LiveOptions {
            snaplen: args.snaplen,
            promisc: !args.no_promisc,
            buffer_size: args.buffer_size.max(1).saturating_mul(1 << 20),
            immediate: args.immediate,
            ..LiveOptions::default()
        },
        workers: args.workers.unwrap_or(cores.saturating_sub(1)).max(1),
        capture_threads: args.capture_threads.map(|n| n.max(1)),
        flow: FlowConfig {
            limits: StreamLimits {
                depth: args.depth,
                ..StreamLimits::default()
            },
            max_flows: args.max_flows.max(1),
            memcap: args.memcap.max(1).saturating_mul(1 << 20),
            idle_timeout_us: secs(args.idle_timeout),
            ..FlowConfig::default()
        },
        datagram: DatagramConfig {
            max_conversations: args.max_conversations.max(1),
            idle_timeout_us: secs(args.udp_timeout),
        },
        alerts_only: args.alerts_only,
        sensor_name: o.sensor_name,
        stats_interval: (live && args.stats_interval > 0)
            .then(|| Duration::from_secs(args.stats_interval)),
        // A bar redrawn on the terminal the alerts are printed to would
        // tear them.
        progress: !(args.quiet || live || o.pretty_on_terminal),
        drain_timeout: Duration::from_secs(args.drain_timeout),
        checksums: args.checksums,
        home_net: args.home_net.clone().unwrap_or_default(),
        asn_db: o.asn_db,
        mentions: args.mentions,
        suppress: args.suppress,
        min_confidence: args.min_confidence,
        packet_log: o.packet_log,
    }
}

/// Says how the run ended (the summary, lost events, a capture error) and
/// the exit code that tells a script; `lost`: the packet log failed.
fn conclude(args: &RunArgs, live: bool, outcome: &pipeline::Outcome, lost: bool) -> ExitCode {
    let tty = std::io::stderr().is_terminal();
    if (!args.quiet && tty && !live) || args.summary {
        let color = tty && std::env::var_os("NO_COLOR").is_none();
        eprint!(
            "{}",
            if color {
                &outcome.summary_color
            } else {
                &outcome.summary
            }
        );
    }
    if let Some(l) = &outcome.checksum_drops {
        hostwatch::diag::warn(l);
    }
    for l in &outcome.output_losses {
        hostwatch::diag::error(format_args!("{l}"));
    }
    let mut lost = lost || !outcome.output_losses.is_empty();
    if let Some(e) = &outcome.output_error {
        // A reader that went away (`| head`) asked for no more.
        if !e.contains("Broken pipe") {
            hostwatch::diag::error(format_args!("cannot write events: {e}"));
            lost = true;
        }
    }
    if let Some(e) = &outcome.error {
        hostwatch::diag::error(format_args!("{e}"));
        if matches!(e, hostwatch::capture::CaptureError::Filter { .. }) {
            return ExitCode::from(exit::USAGE);
        }
    }
    let alerts = args.exit_code && outcome.alerts > 0;
    ExitCode::from(exit::of(outcome.error.is_some(), alerts, lost))
}

/// Writes generated text to standard output; a reader that went away is
/// not an error.
fn write_stdout(bytes: &[u8]) -> ExitCode {
    use std::io::Write;
    let mut out = std::io::stdout().lock();
    match out.write_all(bytes).and_then(|()| out.flush()) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => ExitCode::SUCCESS,
        Err(e) => {
            hostwatch::diag::error(format_args!("cannot write: {e}"));
            ExitCode::from(exit::LOST)
        }
    }
}

/// The command line, with the options of `--config FILE` that it does not
/// replace put before it.
fn matches_with_config(cmd: clap::Command) -> Result<clap::ArgMatches, ExitCode> {
    use clap::parser::ValueSource;
    let argv: Vec<std::ffi::OsString> = std::env::args_os().collect();
    let matches = cmd.clone().get_matches_from(&argv);
    let Some(path) = matches.get_one::<PathBuf>("config") else {
        return Ok(matches);
    };
    let settings = hostwatch::config::load(path, &cmd).map_err(fail)?;
    let program = argv.first().cloned().unwrap_or_else(|| "hostwatch".into());
    // The file's values alone first, so that an error names the file.
    let alone =
        std::iter::once(program.clone()).chain(settings.iter().flat_map(|s| s.words.clone()));
    if let Err(e) = cmd.clone().try_get_matches_from(alone) {
        let e = e.to_string();
        let first = e.lines().next().unwrap_or_default();
        return Err(fail(format!(
            "{}: {}",
            path.display(),
            first.strip_prefix("error: ").unwrap_or(first)
        )));
    }
    let given = |id: &str| matches.value_source(id) == Some(ValueSource::CommandLine);
    let mut words = vec![program];
    for s in settings.iter().filter(|s| !s.overridden(given)) {
        words.extend(s.words.iter().cloned());
    }
    words.extend(argv.into_iter().skip(1));
    Ok(cmd.get_matches_from(words))
}

/// The libpcap the binary runs with, as it names itself.
fn libpcap_version() -> String {
    extern "C" {
        fn pcap_lib_version() -> *const std::ffi::c_char;
    }
    // SAFETY: pcap_lib_version takes nothing and returns a pointer to a
    // static NUL-terminated string (or NULL, checked).
    let p = unsafe { pcap_lib_version() };
    if p.is_null() {
        return "libpcap (unknown version)".into();
    }
    // SAFETY: non-null, NUL-terminated, static.
    unsafe { std::ffi::CStr::from_ptr(p) }
        .to_string_lossy()
        .into_owned()
}

fn main() -> ExitCode {
    use clap::{CommandFactory, FromArgMatches};
    tune_allocator();
    // `--version`: the release, the commit and the libpcap it runs with.
    let long: &'static str = Box::leak(
        format!(
            "{} (commit {})\n{}",
            env!("CARGO_PKG_VERSION"),
            env!("HOSTWATCH_COMMIT"),
            libpcap_version()
        )
        .into_boxed_str(),
    );
    let matches = match matches_with_config(Cli::command().version(long)) {
        Ok(m) => m,
        Err(code) => return code,
    };
    let cli = match Cli::from_arg_matches(&matches) {
        Ok(c) => c,
        Err(e) => e.exit(),
    };
    match cli.command {
        Some(Command::Demo { output }) => synth::demo::run(output),
        Some(Command::Man) => {
            let mut page = Vec::new();
            let cmd = Cli::command().version(env!("CARGO_PKG_VERSION"));
            match clap_mangen::Man::new(cmd).render(&mut page) {
                Ok(()) => write_stdout(&page),
                Err(e) => fail(e),
            }
        }
        Some(Command::Completions { shell }) => {
            let mut cmd = Cli::command();
            let mut script = Vec::new();
            clap_complete::generate(shell, &mut cmd, "hostwatch", &mut script);
            write_stdout(&script)
        }
        Some(Command::Generate {
            output,
            kind,
            size_mb,
            seed,
        }) => match synth::write_capture(&output, &kind, size_mb, seed) {
            Ok(n) => {
                hostwatch::diag::info(format_args!("wrote {} ({n} packets)", output.display()));
                ExitCode::SUCCESS
            }
            Err(e) => fail(format!("{}: {e}", output.display())),
        },
        None => run(cli.run),
    }
}

#[cfg(test)]
mod allocator_tests {
    /// Index 15 is the purge delay, whose default is 10 ms (the other
    /// options near it default to 0 or 1): a mimalloc whose options moved
    /// fails here rather than setting another option.
    #[test]
    fn the_purge_delay_option_is_the_one_set() {
        // SAFETY: reads an option value.
        let delay = unsafe { libmimalloc_sys::mi_option_get(super::MI_OPTION_PURGE_DELAY) };
        assert_eq!(delay, 10);
        super::tune_allocator();
        // SAFETY: as above.
        let delay = unsafe { libmimalloc_sys::mi_option_get(super::MI_OPTION_PURGE_DELAY) };
        assert_eq!(delay, super::PURGE_DELAY_MS);
    }
}
