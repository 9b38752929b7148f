//! Placeholder, replaced below.
pub struct Manifest {
    pub packets: u64,
}
pub fn write(_p: &std::path::Path, _size: u64, _seed: u64) -> std::io::Result<Manifest> {
    Ok(Manifest { packets: 0 })
}
