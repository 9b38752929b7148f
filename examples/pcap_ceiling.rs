//! The benchmark's ceiling: read every packet of a capture with libpcap and
//! touch it (sum of lengths, xor of first bytes), nothing else.
//!
//!   pcap_ceiling FILE             libpcap over a stdio stream with a 1 MiB
//!                                 buffer, as hostwatch opens files: nothing
//!                                 that reads the file through libpcap can
//!                                 be faster
//!   pcap_ceiling --default FILE   pcap_open_offline as is (stdio's 4 KiB
//!                                 buffer): what a plain libpcap program does

use std::process::ExitCode;

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let (default, path) = match args.as_slice() {
        [p] => (false, p.clone()),
        [flag, p] if flag == "--default" => (true, p.clone()),
        _ => {
            eprintln!("usage: pcap_ceiling [--default] FILE");
            return ExitCode::from(2);
        }
    };
    let (mut plain, mut buffered) = (None, None);
    let cap = if default {
        match pcap::Capture::from_file(&path) {
            Ok(c) => plain.insert(c),
            Err(e) => {
                eprintln!("{path}: {e}");
                return ExitCode::from(1);
            }
        }
    } else {
        match hostwatch::capture::open_offline(std::path::Path::new(&path)) {
            Ok(c) => buffered.insert(c).capture(),
            Err(e) => {
                eprintln!("{path}: {e}");
                return ExitCode::from(1);
            }
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
