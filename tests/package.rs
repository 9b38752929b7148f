//! The Debian package (`make deb`), installed for real: `dpkg -i`, the
//! files where Debian puts them, the system user, the unit verified by
//! systemd and its command run as that user, then `dpkg -r` and `dpkg -P`
//! leaving nothing behind.
//!
//! It installs a package system-wide, so it runs only as root and when
//! asked: under `CI=true` (where it must run) or with
//! `HOSTWATCH_TEST_PACKAGE=1`; otherwise it says why it skipped.

use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn run(program: &str, args: &[&str]) -> Output {
    Command::new(program)
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("{program}: {e}"))
}

fn ok(program: &str, args: &[&str]) -> String {
    let o = run(program, args);
    assert!(
        o.status.success(),
        "{program} {args:?}: {}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    );
    String::from_utf8_lossy(&o.stdout).into_owned()
}

/// Why the test cannot run here, if it cannot.
fn skip_reason() -> Option<String> {
    let asked = std::env::var("CI").as_deref() == Ok("true")
        || std::env::var("HOSTWATCH_TEST_PACKAGE").as_deref() == Ok("1");
    if !asked {
        return Some(
            "it installs a package system-wide: set HOSTWATCH_TEST_PACKAGE=1 (CI runs it)".into(),
        );
    }
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } != 0 {
        return Some("dpkg -i needs root".into());
    }
    if !env!("CARGO_BIN_EXE_hostwatch").ends_with("release/hostwatch") {
        return Some("the package holds the release binary: run `cargo test --release`".into());
    }
    if run("dpkg", &["-s", "hostwatch"]).status.success() {
        return Some("a hostwatch package is installed on this machine: left alone".into());
    }
    None
}

/// Purges the package even when an assertion fails half-way.
struct Installed;

impl Drop for Installed {
    fn drop(&mut self) {
        let _ = run("dpkg", &["-P", "hostwatch"]);
    }
}

fn same_text(installed: &str, shipped: &str) {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    assert_eq!(
        std::fs::read_to_string(installed).unwrap_or_else(|e| panic!("{installed}: {e}")),
        std::fs::read_to_string(root.join(shipped)).expect("dist/ file"),
        "{installed} is not {shipped}"
    );
}

fn id_of(what: &str, name: &str) -> u32 {
    let line = ok("getent", &[what, name]);
    line.split(':')
        .nth(2)
        .and_then(|n| n.trim().parse().ok())
        .unwrap_or_else(|| panic!("getent {what} {name}: {line}"))
}

#[test]
fn the_debian_package_installs_runs_and_purges_cleanly() {
    if let Some(reason) = skip_reason() {
        assert!(
            std::env::var("CI").as_deref() != Ok("true"),
            "the package test cannot run under CI: {reason}"
        );
        eprintln!("SKIPPED package test: {reason}");
        return;
    }
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let built = ok(
        root.join("scripts/deb.sh").to_str().expect("path"),
        &["--no-build"],
    );
    let deb = PathBuf::from(built.lines().last().unwrap_or_default().trim());
    assert!(
        deb.extension().is_some_and(|e| e == "deb") && deb.is_file(),
        "{built}"
    );
    let guard = Installed;
    ok("dpkg", &["-i", deb.to_str().expect("path")]);

    // The files, where Debian looks for them.
    let version = ok("/usr/bin/hostwatch", &["--version"]);
    assert!(
        version.starts_with(&format!("hostwatch {} (commit ", env!("CARGO_PKG_VERSION"))),
        "{version}"
    );
    assert!(version.contains("libpcap version 1."), "{version}");
    for f in [
        "/usr/share/man/man1/hostwatch.1.gz",
        "/usr/share/bash-completion/completions/hostwatch",
        "/usr/share/zsh/vendor-completions/_hostwatch",
        "/usr/share/fish/vendor_completions.d/hostwatch.fish",
        "/usr/share/doc/hostwatch/README.md",
        "/usr/share/doc/hostwatch/docs/deployment.md",
    ] {
        assert!(
            std::fs::metadata(f).is_ok_and(|m| m.len() > 0),
            "{f} missing or empty"
        );
    }
    let unit = "/usr/lib/systemd/system/hostwatch.service";
    same_text(unit, "dist/hostwatch.service");
    same_text("/etc/hostwatch/hostwatch.toml", "dist/hostwatch.toml");
    same_text("/etc/logrotate.d/hostwatch", "dist/hostwatch.logrotate");
    let conffiles = ok("dpkg-query", &["-W", "-f=${Conffiles}", "hostwatch"]);
    assert!(
        conffiles.contains("/etc/hostwatch/hostwatch.toml")
            && conffiles.contains("/etc/logrotate.d/hostwatch"),
        "{conffiles}"
    );

    // The system user; the configuration readable by it and root alone;
    // the log directory its own.
    let uid = id_of("passwd", "hostwatch");
    let gid = id_of("group", "hostwatch");
    let cfg = std::fs::metadata("/etc/hostwatch/hostwatch.toml").expect("config");
    assert_eq!(
        (cfg.uid(), cfg.gid(), cfg.permissions().mode() & 0o777),
        (0, gid, 0o640)
    );
    let logs = std::fs::metadata("/var/log/hostwatch").expect("log directory");
    assert_eq!(
        (logs.uid(), logs.permissions().mode() & 0o777),
        (uid, 0o750)
    );

    // systemd accepts the unit.
    let o = run("systemd-analyze", &["verify", unit]);
    assert!(
        o.status.success() && o.stderr.is_empty(),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );

    // The unit's command, as its user: refused until an interface is set
    // (status 2, which the unit does not restart on), then with a capture
    // it writes the log the logrotate config rotates.
    let text = std::fs::read_to_string(unit).expect("unit");
    let exec: Vec<&str> = text
        .lines()
        .find_map(|l| l.strip_prefix("ExecStart="))
        .expect("ExecStart")
        .split_whitespace()
        .collect();
    assert!(text.contains("\nUser=hostwatch\n") && text.contains("\nRestartPreventExitStatus=2\n"));
    let as_user = |more: &[&str]| {
        let mut args = vec!["-u", "hostwatch", "--"];
        args.extend(&exec);
        args.extend(more);
        run("runuser", &args)
    };
    let o = as_user(&[]);
    assert_eq!(o.status.code(), Some(2));
    assert_eq!(
        String::from_utf8_lossy(&o.stderr),
        "hostwatch: nothing to read: set `interface` (or `read`) in /etc/hostwatch/hostwatch.toml, or give -i IFACE or -r FILE\n"
    );
    let dir = tempfile::Builder::new()
        .prefix("hostwatch-package-")
        .tempdir()
        .expect("temp dir");
    let dir = dir.path();
    std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o755)).expect("chmod");
    let demo = dir.join("demo.pcap");
    std::fs::copy(root.join("fixtures/demo/demo.pcap"), &demo).expect("copy demo");
    let o = as_user(&["-r", demo.to_str().expect("path")]);
    assert_eq!(
        o.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
    let eve = std::fs::read_to_string("/var/log/hostwatch/eve.json").expect("the unit's log");
    let alerts = eve
        .lines()
        .filter(|l| l.contains("\"event_type\":\"alert\""))
        .count();
    assert_eq!(alerts, 4);

    // Removed: the program goes, the configuration stays; purged: nothing.
    ok("dpkg", &["-r", "hostwatch"]);
    assert!(!Path::new("/usr/bin/hostwatch").exists());
    assert!(!Path::new(unit).exists());
    assert!(Path::new("/etc/hostwatch/hostwatch.toml").exists());
    ok("dpkg", &["-P", "hostwatch"]);
    drop(guard);
    for gone in [
        "/etc/hostwatch",
        "/etc/logrotate.d/hostwatch",
        "/var/log/hostwatch",
    ] {
        assert!(!Path::new(gone).exists(), "{gone} left after purge");
    }
    assert!(!run("getent", &["passwd", "hostwatch"]).status.success());
    assert!(!run("getent", &["group", "hostwatch"]).status.success());
    assert!(!run("dpkg", &["-s", "hostwatch"]).status.success());
}
