//! The `hostwatch` command.

use std::io::IsTerminal;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use clap::{Args, Parser, Subcommand};

use hostwatch::capture::LiveOptions;
use hostwatch::detection::watchlist;
use hostwatch::detection::Matcher;
use hostwatch::flow::{FlowConfig, StreamLimits};
use hostwatch::output::{Sink, Target};
use hostwatch::pipeline::{self, Config, Control, Input};
use hostwatch::synth;

/// Exit status when `--exit-code` is given and an alert fired.
const EXIT_ALERT: u8 = 3;

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
    /// Writes a generated capture (the demo's, or a large benchmark mix).
    Generate {
        /// Where to write the pcap.
        #[arg(short = 'o', long)]
        output: PathBuf,
        /// `demo` (the bundled lab story), `bench` (a realistic mix), `synflood`
        /// (a million half-open flows) or `gaps` (connections full of holes).
        #[arg(long, default_value = "demo")]
        kind: String,
        /// Approximate size of a `bench` capture, in megabytes.
        #[arg(long, default_value_t = 2000)]
        size_mb: u64,
        /// Seed of the `bench` generator.
        #[arg(long, default_value_t = 1)]
        seed: u64,
    },
}

#[derive(Args, Debug)]
struct RunArgs {
    /// Read packets from a pcap or pcapng file (gzip allowed; `-` for stdin). Repeatable.
    #[arg(short = 'r', long = "read", value_name = "FILE")]
    read: Vec<String>,
    /// Capture live on an interface. Repeatable.
    #[arg(short = 'i', long = "interface", value_name = "IFACE")]
    interface: Vec<String>,
    /// BPF capture filter (tcpdump syntax); trailing words are joined into one.
    #[arg(short = 'f', long = "filter", value_name = "EXPR")]
    filter: Option<String>,
    /// Append JSON events to this file instead of standard output (SIGHUP reopens it).
    #[arg(short = 'o', long = "output", value_name = "FILE")]
    output: Option<PathBuf>,
    /// Worker threads (default: one less than the cores, at least one: the
    /// capture thread needs a core of its own).
    #[arg(short = 'w', long)]
    workers: Option<usize>,
    /// Add a watch list file. Repeatable.
    #[arg(long = "watchlist", value_name = "FILE")]
    watchlist: Vec<PathBuf>,
    /// Do not flag Windows setup default names (WIN- + 11 characters, informational).
    #[arg(long)]
    no_default_names: bool,
    /// Write only alert events.
    #[arg(long)]
    alerts_only: bool,
    /// Exit with status 3 when any alert fired.
    #[arg(long)]
    exit_code: bool,
    /// No progress bar and no summary on stderr.
    #[arg(short = 'q', long)]
    quiet: bool,
    /// Print the human summary on stderr at the end even when it is not a terminal.
    #[arg(long)]
    summary: bool,
    /// Bytes reassembled per direction of a connection.
    #[arg(long, default_value_t = 1 << 20, value_name = "BYTES")]
    depth: u32,
    /// Most connections tracked at once (the idle-most are evicted beyond).
    #[arg(long, default_value_t = 262_144)]
    max_flows: usize,
    /// Seconds without packets after which a connection ends.
    #[arg(long, default_value_t = 300)]
    idle_timeout: u64,
    /// Snapshot length of a live capture.
    #[arg(long, default_value_t = 262_144)]
    snaplen: i32,
    /// Do not put interfaces into promiscuous mode.
    #[arg(long)]
    no_promisc: bool,
    /// Kernel capture buffer in MiB.
    #[arg(long, value_name = "MIB")]
    buffer_size: Option<i32>,
    /// Deliver packets as they arrive (lower latency, more wake-ups).
    #[arg(long)]
    immediate: bool,
    /// Seconds between `stats` events while capturing live (0: only at the end).
    #[arg(long, default_value_t = 60)]
    stats_interval: u64,
    /// A name for this sensor, added to every event.
    #[arg(long)]
    sensor_name: Option<String>,
    /// Drop root privileges to this user once the capture is open.
    #[arg(long, value_name = "USER")]
    user: Option<String>,
    /// Trailing words: a BPF filter, as tcpdump takes it.
    #[arg(trailing_var_arg = true, value_name = "FILTER")]
    filter_words: Vec<String>,
}

fn fail(msg: impl std::fmt::Display) -> ExitCode {
    eprintln!("hostwatch: {msg}");
    ExitCode::from(2)
}

fn load_matcher(args: &RunArgs) -> Result<Matcher, String> {
    let mut user = Vec::new();
    for (i, path) in args.watchlist.iter().enumerate() {
        let text = std::fs::read_to_string(path)
            .map_err(|e| format!("{}: cannot read watch list: {e}", path.display()))?;
        let base = 2_000_000 + 10_000 * u32::try_from(i).unwrap_or(0);
        user.extend(
            watchlist::parse(&text, &path.display().to_string(), base)
                .map_err(|e| e.to_string())?,
        );
    }
    Matcher::with_builtins(!args.no_default_names, user).map_err(|e| e.to_string())
}

fn install_signals(control: &Arc<Control>) -> std::io::Result<()> {
    use signal_hook::consts::{SIGHUP, SIGINT, SIGTERM, SIGUSR1};
    for sig in [SIGINT, SIGTERM] {
        // A second signal while shutting down ends the process at once.
        signal_hook::flag::register_conditional_shutdown(
            sig,
            130,
            Arc::new(std::sync::atomic::AtomicBool::new(false)),
        )
        .ok();
        let c = control.clone();
        // SAFETY: the handler only stores to an atomic, which is async-signal-safe.
        unsafe {
            signal_hook::low_level::register(sig, move || c.stop.store(true, Ordering::SeqCst))?
        };
    }
    signal_hook::flag::register(SIGHUP, Arc::new(std::sync::atomic::AtomicBool::new(false)))?;
    let c = control.clone();
    // SAFETY: as above.
    unsafe {
        signal_hook::low_level::register(SIGHUP, move || c.reopen.store(true, Ordering::SeqCst))?
    };
    let c = control.clone();
    // SAFETY: as above.
    unsafe {
        signal_hook::low_level::register(SIGUSR1, move || c.summary.store(true, Ordering::SeqCst))?
    };
    Ok(())
}

/// Switches to `user` (like `tcpdump -Z`).
fn drop_privileges(user: &str) -> Result<(), String> {
    let name = std::ffi::CString::new(user).map_err(|_| format!("invalid user name '{user}'"))?;
    // SAFETY: getpwnam reads a NUL-terminated name and returns a pointer to
    // static storage (or NULL), read at once below.
    let pw = unsafe { libc::getpwnam(name.as_ptr()) };
    if pw.is_null() {
        return Err(format!("--user: no such user '{user}'"));
    }
    // SAFETY: `pw` is non-null and points to a valid passwd record.
    let (uid, gid) = unsafe { ((*pw).pw_uid, (*pw).pw_gid) };
    // SAFETY: plain system calls with values from the passwd record.
    let ok = unsafe {
        libc::setgroups(0, std::ptr::null()) == 0
            && libc::setgid(gid) == 0
            && libc::setuid(uid) == 0
    };
    if !ok {
        return Err(format!(
            "--user {user}: cannot drop privileges: {}",
            std::io::Error::last_os_error()
        ));
    }
    Ok(())
}

fn run(args: RunArgs) -> ExitCode {
    let mut inputs: Vec<Input> = args.read.iter().map(|f| Input::File(f.clone())).collect();
    inputs.extend(args.interface.iter().map(|i| Input::Interface(i.clone())));
    if inputs.is_empty() {
        return fail(
            "nothing to read: give -r FILE or -i IFACE (see --help), or run `hostwatch demo`",
        );
    }
    let filter = match (&args.filter, args.filter_words.is_empty()) {
        (Some(_), false) => {
            return fail("give the filter either with -f or as trailing words, not both")
        }
        (Some(f), true) => Some(f.clone()),
        (None, false) => Some(args.filter_words.join(" ")),
        (None, true) => None,
    };
    for f in &args.read {
        if f != "-" && !std::path::Path::new(f).exists() {
            eprintln!("hostwatch: {f}: cannot open: no such file");
            return ExitCode::from(1);
        }
    }
    if !(1..=1 << 30).contains(&args.depth) {
        return fail("--depth must be between 1 and 1073741824");
    }
    let matcher = match load_matcher(&args) {
        Ok(m) => Arc::new(m),
        Err(e) => return fail(e),
    };
    let target = match &args.output {
        Some(p) => {
            if let Err(e) = hostwatch::output::check_writable(p) {
                return fail(format!("{}: cannot write: {e}", p.display()));
            }
            Target::File(p.clone())
        }
        None => Target::Stdout,
    };
    let sink = match Sink::open(target) {
        Ok(s) => s,
        Err(e) => return fail(format!("cannot open the output: {e}")),
    };
    let control = Arc::new(Control::default());
    if let Err(e) = install_signals(&control) {
        return fail(format!("cannot install signal handlers: {e}"));
    }
    let cores = std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(1);
    let workers = args.workers.unwrap_or(cores.saturating_sub(1)).max(1);
    let live = !args.interface.is_empty();
    let cfg = Config {
        inputs,
        filter,
        live: LiveOptions {
            snaplen: args.snaplen,
            promisc: !args.no_promisc,
            buffer_size: args
                .buffer_size
                .map(|m| m.saturating_mul(1 << 20))
                .unwrap_or(0),
            immediate: args.immediate,
            ..LiveOptions::default()
        },
        workers,
        flow: FlowConfig {
            limits: StreamLimits {
                depth: args.depth,
                ..StreamLimits::default()
            },
            max_flows: args.max_flows.max(1),
            idle_timeout_us: i64::try_from(args.idle_timeout)
                .unwrap_or(i64::MAX / 2)
                .saturating_mul(1_000_000),
            ..FlowConfig::default()
        },
        alerts_only: args.alerts_only,
        sensor_name: args.sensor_name.clone(),
        stats_interval: (live && args.stats_interval > 0)
            .then(|| Duration::from_secs(args.stats_interval)),
        progress: !args.quiet && !live,
    };
    let outcome = pipeline::run_with_hook(&cfg, matcher, sink, control, || match &args.user {
        Some(u) => drop_privileges(u),
        None => Ok(()),
    });
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
    if let Some(e) = &outcome.output_error {
        if !e.contains("Broken pipe") {
            eprintln!("hostwatch: cannot write events: {e}");
            return ExitCode::from(1);
        }
    }
    if let Some(e) = &outcome.error {
        eprintln!("hostwatch: {e}");
        return ExitCode::from(1);
    }
    if args.exit_code && outcome.alerts > 0 {
        return ExitCode::from(EXIT_ALERT);
    }
    ExitCode::SUCCESS
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.command {
        Some(Command::Demo { output }) => synth::demo::run(output),
        Some(Command::Generate {
            output,
            kind,
            size_mb,
            seed,
        }) => match synth::write_capture(&output, &kind, size_mb, seed) {
            Ok(n) => {
                eprintln!("hostwatch: wrote {} ({n} packets)", output.display());
                ExitCode::SUCCESS
            }
            Err(e) => fail(format!("{}: {e}", output.display())),
        },
        None => run(cli.run),
    }
}
