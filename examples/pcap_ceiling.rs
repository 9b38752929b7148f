//! The benchmark's ceiling: read every packet of a capture with libpcap and
//! touch it (sum of lengths, xor of first bytes), nothing else. Nothing
//! that reads the file through libpcap can be faster.

use std::process::ExitCode;

fn main() -> ExitCode {
    let Some(path) = std::env::args().nth(1) else {
        eprintln!("usage: pcap_ceiling FILE");
        return ExitCode::from(2);
    };
    let mut cap = match pcap::Capture::from_file(&path) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("{path}: {e}");
            return ExitCode::from(1);
        }
    };
    let (mut packets, mut bytes, mut x) = (0u64, 0u64, 0u8);
    while let Ok(p) = cap.next_packet() {
        packets += 1;
        bytes += p.data.len() as u64;
        x ^= p.data.first().copied().unwrap_or(0) ^ p.data.last().copied().unwrap_or(0);
    }
    println!("{packets} packets {bytes} bytes {x}");
    ExitCode::SUCCESS
}
