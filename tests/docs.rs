//! Every `hostwatch` command shown in README.md and docs/ still runs: its
//! options parse and, for the sensor itself, pass `--test-config` (lists
//! load, output URLs parse, the filter compiles, the capture files named
//! can be read, the interface exists, outputs can be written); a
//! subcommand's options parse (`--help` after them). The commands run in a
//! directory set up as the docs assume: the captures they name exist
//! there, the example interface is `lo`, the package's log directory is
//! that directory.

use std::path::{Path, PathBuf};
use std::process::Command;

mod common;

/// Example files the docs name, and a fixture of the same kind.
const PLACEHOLDERS: &[(&str, &str)] = &[
    ("intel.json", "fixtures/intel/misp-event.json"),
    ("ours.list", "src/detection/vmmanager-defaults.list"),
    ("/etc/hostwatch/hostwatch.toml", "dist/hostwatch.toml"),
];

fn docs() -> Vec<PathBuf> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut v = vec![root.join("README.md")];
    let mut d: Vec<PathBuf> = std::fs::read_dir(root.join("docs"))
        .expect("docs/")
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "md"))
        .collect();
    d.sort();
    v.extend(d);
    v
}

/// Shell words, as far as the docs use them: single and double quotes.
fn words(line: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut cur = String::new();
    let mut quote = None;
    let mut any = false;
    for c in line.chars() {
        match (quote, c) {
            (None, '\'' | '"') => {
                quote = Some(c);
                any = true;
            }
            (Some(q), c) if c == q => quote = None,
            (None, c) if c.is_whitespace() => {
                if any {
                    out.push(std::mem::take(&mut cur));
                    any = false;
                }
            }
            (_, c) => {
                cur.push(c);
                any = true;
            }
        }
    }
    if any {
        out.push(cur);
    }
    out
}

/// The `hostwatch` commands in a document's code blocks: (line, words
/// after `hostwatch`, up to a comment, a pipe or a redirection).
fn commands(text: &str) -> Vec<(usize, Vec<String>)> {
    let mut out = Vec::new();
    let mut in_code = false;
    let mut lines = text.lines().enumerate();
    while let Some((n, line)) = lines.next() {
        if line.trim_start().starts_with("```") {
            in_code = !in_code;
            continue;
        }
        if !in_code {
            continue;
        }
        let mut full = line.trim().to_string();
        while full.ends_with('\\') {
            full.pop();
            match lines.next() {
                Some((_, more)) => full.push_str(more.trim()),
                None => break,
            }
        }
        let full = full.strip_prefix("$ ").unwrap_or(&full);
        let full = full.strip_prefix("sudo ").unwrap_or(full);
        let w = words(full);
        if w.first().map(String::as_str) != Some("hostwatch")
            || w.get(1).is_some_and(|s| s.ends_with(':'))
        {
            continue;
        }
        let args: Vec<String> = w[1..]
            .iter()
            .take_while(|a| !matches!(a.as_str(), "#" | "|" | ">" | ">>" | "&&"))
            .cloned()
            .collect();
        out.push((n + 1, args));
    }
    out
}

/// Makes the place an argument of a documented command names exist in
/// `dir`: a capture read (an empty file, or a directory for `name/`), the
/// example interface (`lo`), the package's log directory, the package's
/// configuration (copied with that directory).
fn place(arg: &mut String, after_read: bool, dir: &Path) {
    const LOGS: &str = "/var/log/hostwatch/";
    if arg == "eth1" {
        *arg = "lo".into();
    } else if let Some(rest) = arg.strip_prefix(LOGS) {
        *arg = dir.join(rest).display().to_string();
    } else if arg.ends_with("dist/hostwatch.toml") {
        let text = std::fs::read_to_string(&*arg).expect("dist/hostwatch.toml");
        let copy = dir.join("hostwatch.toml");
        let logs = format!("{}/", dir.display());
        std::fs::write(&copy, text.replace(LOGS, &logs)).expect("write configuration");
        *arg = copy.display().to_string();
    } else if after_read && arg != "-" && !Path::new(arg.as_str()).is_absolute() {
        let at = dir.join(arg.as_str());
        if arg.ends_with('/') {
            std::fs::create_dir_all(&at).expect("capture directory");
        } else if !at.exists() {
            std::fs::write(&at, b"").expect("capture file");
        }
    }
}

#[test]
fn every_command_in_the_docs_runs() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let dir = common::tmp("docs-commands");
    std::fs::create_dir_all(&dir).expect("temp dir");
    let mut checked = 0;
    let mut failures = Vec::new();
    for doc in docs() {
        let text = std::fs::read_to_string(&doc).expect("read doc");
        for (line, mut args) in commands(&text) {
            let mut after_read = false;
            for a in &mut args {
                if let Some((_, f)) = PLACEHOLDERS.iter().find(|(p, _)| a == p) {
                    *a = root.join(f).display().to_string();
                }
                place(a, after_read, &dir);
                after_read = matches!(a.as_str(), "-r" | "--read");
            }
            let sub = args.first().is_some_and(|a| !a.starts_with('-'));
            if sub {
                args.push("--help".into());
            } else if !args
                .iter()
                .any(|a| matches!(a.as_str(), "--version" | "-T" | "--test-config"))
            {
                args.insert(0, "--test-config".into());
            }
            let o = Command::new(env!("CARGO_BIN_EXE_hostwatch"))
                .args(&args)
                .current_dir(&dir)
                .output()
                .expect("run hostwatch");
            checked += 1;
            if !o.status.success() {
                failures.push(format!(
                    "{}:{line}: hostwatch {}: {}",
                    doc.display(),
                    args.join(" "),
                    String::from_utf8_lossy(&o.stderr).trim()
                ));
            }
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
    // README's and usage.md's command lists, the deployment examples.
    assert!(checked >= 20, "only {checked} commands found");
}
