//! Synthetic traffic (placeholder while the generator is written).
pub mod demo {
    pub fn run(_o: Option<std::path::PathBuf>) -> std::process::ExitCode {
        std::process::ExitCode::from(1)
    }
}
pub fn write_capture(_p: &std::path::Path, _k: &str, _s: u64, _seed: u64) -> std::io::Result<u64> {
    Ok(0)
}
