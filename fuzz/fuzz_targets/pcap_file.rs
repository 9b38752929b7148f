#![no_main]
//! The whole pipeline (libpcap, decode, threads, output) fed a raw
//! capture file.
use hostwatch::detection::Matcher;
use hostwatch::output::Outputs;
use hostwatch::pipeline::{self, Config, Control, Input};
use libfuzzer_sys::fuzz_target;
use std::sync::Arc;

fuzz_target!(|data: &[u8]| {
    let path = std::env::temp_dir().join(format!("hostwatch-fuzz-{}.pcap", std::process::id()));
    if std::fs::write(&path, data).is_err() {
        return;
    }
    let Ok(m) = Matcher::with_builtins(true, Vec::new()) else { return };
    let cfg = Config { inputs: vec![Input::File(path.display().to_string())], workers: 2, ..Config::default() };
    let _ = pipeline::run(&cfg, Arc::new(m), Outputs::from_writer(Box::new(std::io::sink())), Arc::new(Control::default()));
});
