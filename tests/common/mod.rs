//! Helpers shared by the integration tests: run the real pipeline over a
//! capture and read back its JSON lines.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::sync::Arc;

use hostwatch::detection::Matcher;
use hostwatch::output::{MemoryOutput, Outputs};
use hostwatch::pipeline::{self, Config, Control, Input, Outcome};
use serde_json::Value;

pub fn fixture(rel: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("fixtures")
        .join(rel)
}

/// Runs the pipeline on `inputs` with `workers`; returns the events and the outcome.
pub fn run_config(cfg: Config) -> (Vec<Value>, Outcome, String) {
    let matcher = Arc::new(Matcher::with_builtins(true, Vec::new()).expect("built-in lists"));
    let buf = MemoryOutput::default();
    let outcome = pipeline::run(
        &cfg,
        matcher,
        Outputs::from_writer(Box::new(buf.clone())),
        Arc::new(Control::default()),
    );
    let text = String::from_utf8(buf.contents()).expect("utf-8 output");
    let events = text
        .lines()
        .map(|l| serde_json::from_str(l).expect("each line is JSON"))
        .collect();
    (events, outcome, text)
}

pub fn run_files(paths: &[PathBuf], workers: usize) -> (Vec<Value>, Outcome, String) {
    let cfg = Config {
        inputs: paths
            .iter()
            .map(|p| Input::File(p.display().to_string()))
            .collect(),
        workers,
        ..Config::default()
    };
    run_config(cfg)
}

pub fn run_file(path: &Path) -> Vec<Value> {
    let (events, outcome, _) = run_files(&[path.to_path_buf()], 1);
    assert!(
        outcome.error.is_none(),
        "{}: {:?}",
        path.display(),
        outcome.error
    );
    events
}

pub fn of_type<'a>(events: &'a [Value], t: &str) -> Vec<&'a Value> {
    events.iter().filter(|e| e["event_type"] == t).collect()
}

/// A string field by dotted path, `None` when absent.
pub fn get<'a>(v: &'a Value, path: &str) -> Option<&'a Value> {
    let mut cur = v;
    for p in path.split('.') {
        cur = cur.get(p)?;
    }
    Some(cur)
}

pub fn s(v: &Value, path: &str) -> Option<String> {
    get(v, path).and_then(|x| x.as_str().map(str::to_owned))
}
