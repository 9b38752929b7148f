//! The benchmark's ceiling: read every packet of a capture with libpcap and
//! touch it (sum of lengths, xor of first bytes), nothing else.
//!
//!   pcap_ceiling FILE             libpcap over a stdio stream with a 1 MiB
//!                                 buffer, as hostwatch opens files: nothing
//!                                 that reads the file through libpcap can
//!                                 be faster
//!   pcap_ceiling --default FILE   pcap_open_offline as is (stdio's 4 KiB
//!                                 buffer): what a plain libpcap program does
//!   pcap_ceiling --raw FILE       no libpcap: the classic pcap records
//!                                 walked through a 1 MiB buffer, each one's
//!                                 bytes read (the floor of any reader)

use std::process::ExitCode;

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let (default, path) = match args.as_slice() {
        [p] => (false, p.clone()),
        [flag, p] if flag == "--default" => (true, p.clone()),
        [flag, p] if flag == "--raw" => return raw(p),
        _ => {
            eprintln!("usage: pcap_ceiling [--default | --raw] FILE");
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

/// The raw loop: a classic pcap file's records, through a 1 MiB buffer.
fn raw(path: &str) -> ExitCode {
    use std::io::Read;
    let file = match std::fs::File::open(path) {
        Ok(f) => f,
        Err(e) => {
            eprintln!("{path}: {e}");
            return ExitCode::from(1);
        }
    };
    let mut r = std::io::BufReader::with_capacity(1 << 20, file);
    let mut global = [0u8; 24];
    if r.read_exact(&mut global).is_err() {
        eprintln!("{path}: shorter than a pcap header");
        return ExitCode::from(1);
    }
    let little = match global[..4] {
        [0xd4, 0xc3, 0xb2, 0xa1] | [0x4d, 0x3c, 0xb2, 0xa1] => true,
        [0xa1, 0xb2, 0xc3, 0xd4] | [0xa1, 0xb2, 0x3c, 0x4d] => false,
        _ => {
            eprintln!("{path}: not a classic pcap file");
            return ExitCode::from(1);
        }
    };
    let (mut packets, mut bytes, mut x) = (0u64, 0u64, 0u8);
    let mut head = [0u8; 16];
    let mut data = vec![0u8; 262_144];
    while r.read_exact(&mut head).is_ok() {
        let field = [head[8], head[9], head[10], head[11]];
        let caplen = if little {
            u32::from_le_bytes(field)
        } else {
            u32::from_be_bytes(field)
        } as usize;
        let Some(buf) = data.get_mut(..caplen) else {
            eprintln!("{path}: a record of {caplen} bytes");
            return ExitCode::from(1);
        };
        if r.read_exact(buf).is_err() {
            break;
        }
        packets += 1;
        bytes += caplen as u64;
        x ^= buf.first().copied().unwrap_or(0) ^ buf.last().copied().unwrap_or(0);
    }
    println!("{packets} packets {bytes} bytes {x}");
    ExitCode::SUCCESS
}
