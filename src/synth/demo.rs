//! The lab demo: a capture that tells the story end to end (a benign RDP
//! logon and SMB session, then a VMmanager-named machine leasing an
//! address over DHCP in its own name and logging on over SMB and RDP, and
//! a rogue server presenting a VMmanager name over HTTP NTLM), and
//! `hostwatch demo`, which replays it and prints its alerts.

use std::io::IsTerminal;
use std::net::IpAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

use super::msg::{self, ServerNames};
use super::{Conn, Trace};
use crate::detection::Matcher;
use crate::output::{MemoryOutput, Outputs};
use crate::pipeline::{self, Config, Control, Input};

/// The demo capture, as committed in fixtures/demo/ (and rebuilt by
/// `hostwatch generate --kind demo`; a test checks they are equal).
pub const CAPTURE: &[u8] = include_bytes!("../../fixtures/demo/demo.pcap");

/// 2026-02-10T09:00:00Z.
const START_US: i64 = 1_770_714_000_000_000;
/// The RDP handshakes and NTLM exchanges the story holds (`tests/demo.rs`
/// checks them against its events).
pub const RDP_HANDSHAKES: u64 = 2;
pub const NTLM_EXCHANGES: u64 = 4;

fn ip(s: [u8; 4]) -> IpAddr {
    IpAddr::from(s)
}

fn play(t: &mut Trace, conn: &mut Conn, trips: &[(Vec<u8>, Vec<u8>)]) {
    for (c, s) in trips {
        let segs = conn.send(true, c);
        t.add(conn, &segs);
        t.advance(800);
        let segs = conn.send(false, s);
        t.add(conn, &segs);
        t.advance(1_500);
    }
}

/// One connection: open, the round trips, close, then `pause` µs.
fn session(
    t: &mut Trace,
    client: (IpAddr, u16),
    server: (IpAddr, u16),
    seed: u32,
    trips: &[(Vec<u8>, Vec<u8>)],
    pause: i64,
) {
    let mut c = Conn::new(client, server, seed);
    let open = c.open();
    t.add(&c, &open);
    play(t, &mut c, trips);
    let fin = c.close();
    t.add(&c, &fin);
    t.advance(pause);
}

/// The hosts of the story.
const WORKSTATION: [u8; 4] = [10, 20, 0, 15];
const JUMPHOST: [u8; 4] = [10, 20, 0, 8];
const FILESRV: [u8; 4] = [10, 20, 0, 5];
/// The rented VM that kept its VMmanager name.
const RENTED: [u8; 4] = [10, 20, 0, 77];
const ROGUE: [u8; 4] = [10, 20, 0, 99];
/// The template's Windows Server 2016 says its build in every NTLM
/// message and in its RDP client data.
const TEMPLATE_BUILD: u16 = 14393;

/// Builds the demo capture, scene by scene.
pub fn trace() -> Trace {
    let mut t = Trace::starting_at(START_US);
    alice_at_work(&mut t);
    vm_leases_an_address(&mut t);
    vm_logs_on(&mut t);
    rogue_web_server(&mut t);
    t
}

/// Scenes 1 and 2, benign: alice's workstation opens RDP to the jump host, then
/// maps a share on the file server.
fn alice_at_work(t: &mut Trace) {
    let rdp = msg::rdp_standard_logon("alice", "DESKTOP-4QK2M1L");
    session(
        t,
        (ip(WORKSTATION), 50_112),
        (ip(JUMPHOST), 3389),
        1,
        &rdp,
        5_000_000,
    );
    let session_id = 0x0000_1c00_1000_0041;
    let mut smb = msg::smb2_logon(
        session_id,
        &msg::FILESRV01,
        "CORP",
        "alice",
        "DESKTOP-4QK2M1L",
        0,
    );
    smb.push(msg::smb2_read(3, session_id, &[0x41; 12_000]));
    session(
        t,
        (ip(WORKSTATION), 50_118),
        (ip(FILESRV), 445),
        2,
        &smb,
        187_000_000,
    );
}

/// Scene 3: a rented VM that kept its VMmanager name joins the network (over a
/// VPN bridged to the LAN) and asks the DHCP server for an address in its
/// own name: the lease ties the name to 10.20.0.77.
fn vm_leases_an_address(t: &mut Trace) {
    let vm_mac = [0x52, 0x54, 0x00, 0x3a, 0x9d, 0x77];
    let router = ([0x52, 0x54, 0x00, 0x00, 0x00, 0x01], [10, 20, 0, 1], 67);
    let broadcast = [0xff; 6];
    let asked = |msg_type: u8, requested: Option<[u8; 4]>| {
        msg::dhcp_v4(&msg::Dhcp {
            msg_type,
            xid: 0x5eed_0077,
            mac: vm_mac,
            requested,
            server_id: requested.map(|_| router.1),
            hostname: "WIN-J9D866ESIJ2",
            vendor_class: "MSFT 5.0",
            ..msg::Dhcp::default()
        })
    };
    let answered = |msg_type: u8| {
        msg::dhcp_v4(&msg::Dhcp {
            msg_type,
            xid: 0x5eed_0077,
            mac: vm_mac,
            yiaddr: RENTED,
            server_id: Some(router.1),
            ..msg::Dhcp::default()
        })
    };
    let from_vm = (vm_mac, [0; 4], 68);
    let to_all = (broadcast, [255; 4], 67);
    let to_vm = (vm_mac, RENTED, 68);
    for frame in [
        super::udp_frame(from_vm, to_all, &asked(1, None)),
        super::udp_frame(router, to_vm, &answered(2)),
        super::udp_frame(from_vm, to_all, &asked(3, Some(RENTED))),
        super::udp_frame(router, to_vm, &answered(5)),
    ] {
        t.advance(1_200);
        t.frames.push((t.now_us, frame));
    }
    t.advance(2_000_000);
}

/// Scenes 4 and 5: the VM logs on to the file server (a wrong password first, then
/// a service account), then opens RDP to the jump host.
fn vm_logs_on(t: &mut Trace) {
    let session_id = 0x0000_1c00_1000_0077;
    let mut smb = msg::smb2_logon_from(
        session_id,
        &msg::FILESRV01,
        "CORP",
        "administrator",
        "WIN-J9D866ESIJ2",
        0xc000_006d,
        TEMPLATE_BUILD,
    );
    let retry = msg::smb2_logon_from(
        session_id + 1,
        &msg::FILESRV01,
        "CORP",
        "svc_backup",
        "WIN-J9D866ESIJ2",
        0,
        TEMPLATE_BUILD,
    );
    smb.extend(retry.into_iter().skip(1));
    session(
        t,
        (ip(RENTED), 49_812),
        (ip(FILESRV), 445),
        3,
        &smb,
        28_000_000,
    );
    let rdp =
        msg::rdp_standard_logon_from("svc_backu", "WIN-J9D866ESIJ2", u32::from(TEMPLATE_BUILD));
    session(
        t,
        (ip(RENTED), 49_820),
        (ip(JUMPHOST), 3389),
        4,
        &rdp,
        82_000_000,
    );
}

/// Scene 6: a rogue web server on the LAN answers NTLM with a VMmanager name.
fn rogue_web_server(t: &mut Trace) {
    let rogue_names = ServerNames {
        target: "WIN-LIVFRVQFMKO",
        nb_computer: "WIN-LIVFRVQFMKO",
        nb_domain: "WIN-LIVFRVQFMKO",
        dns_computer: "WIN-LIVFRVQFMKO",
        dns_domain: "WIN-LIVFRVQFMKO",
        build: 17763,
    };
    let http = msg::http_ntlm_logon(
        "/wsman",
        &rogue_names,
        "CORP",
        "alice",
        "DESKTOP-4QK2M1L",
        200,
    );
    session(t, (ip(WORKSTATION), 50_230), (ip(ROGUE), 8080), 5, &http, 0);
}

/// The capture as an anonymous in-memory file and a path that opens it
/// (`/proc/self/fd/N`): no file in a shared temporary directory, whose
/// name another user could take first (a link there would have the demo,
/// often run as root, write over its target), and nothing left behind when
/// the demo is stopped. The path is valid while the file lives.
fn in_memory(bytes: &[u8]) -> std::io::Result<(std::fs::File, String)> {
    use nix::sys::memfd::{memfd_create, MFdFlags};
    use std::io::Write;
    use std::os::fd::AsRawFd;
    let fd = memfd_create(c"hostwatch-demo.pcap", MFdFlags::MFD_CLOEXEC)?;
    let mut file = std::fs::File::from(fd);
    file.write_all(bytes)?;
    let path = format!("/proc/self/fd/{}", file.as_raw_fd());
    Ok((file, path))
}

/// `hostwatch demo`.
pub fn run(json_out: Option<PathBuf>) -> ExitCode {
    let (_capture, path) = match in_memory(CAPTURE) {
        Ok(c) => c,
        Err(e) => {
            crate::diag::error(format_args!("cannot hold the demo capture in memory: {e}"));
            return ExitCode::from(1);
        }
    };
    let matcher = match Matcher::with_builtins(true, Vec::new()) {
        Ok(m) => Arc::new(m),
        Err(e) => {
            crate::diag::error(format_args!("{e}"));
            return ExitCode::from(2);
        }
    };
    let buf = MemoryOutput::default();
    let cfg = Config {
        inputs: vec![Input::File(path)],
        workers: 2,
        ..Config::default()
    };
    let outcome = pipeline::run(
        &cfg,
        matcher,
        Outputs::from_writer(Box::new(buf.clone())),
        Arc::new(Control::default()),
    );
    let text = String::from_utf8_lossy(&buf.contents()).into_owned();
    if let Some(p) = json_out {
        if let Err(e) = std::fs::write(&p, &text) {
            crate::diag::error(format_args!("{}: {e}", p.display()));
            return ExitCode::from(1);
        }
    }
    let mut events: Vec<serde_json::Value> = text
        .lines()
        .filter_map(|l| serde_json::from_str(l).ok())
        .collect();
    events.sort_by(|a, b| a["timestamp"].as_str().cmp(&b["timestamp"].as_str()));
    let color = std::io::stdout().is_terminal() && std::env::var_os("NO_COLOR").is_none();
    let count = |t: &str| events.iter().filter(|e| e["event_type"] == t).count();
    // Written as one text: a reader that goes away early (`| head`) ends
    // the write, not the program.
    let mut text = format!(
        "hostwatch demo: a lab capture of 5 connections and a DHCP lease ({} RDP handshakes, {} NTLM exchanges, {} DHCP transaction seen)\n\n",
        count("rdp"),
        count("ntlm"),
        count("dhcp")
    );
    for line in events
        .iter()
        .filter_map(|e| crate::render::alert::alert(e, color))
    {
        text.push_str(&line);
        text.push_str("\n\n");
    }
    text.push_str(if color {
        &outcome.summary_color
    } else {
        &outcome.summary
    });
    text.push_str("\nThe JSON events behind this: hostwatch -r <capture> (or `hostwatch demo -o events.json`).\n");
    {
        use std::io::Write;
        let mut out = std::io::stdout().lock();
        let _ = out.write_all(text.as_bytes()).and_then(|()| out.flush());
    }
    match outcome.error {
        Some(e) => {
            crate::diag::error(format_args!("{e}"));
            ExitCode::from(1)
        }
        None => ExitCode::SUCCESS,
    }
}

#[cfg(test)]
mod tests {
    /// The demo capture is read through a path that names no file on disk.
    #[test]
    fn the_capture_is_held_in_memory_and_read_through_its_path() {
        let (file, path) = match super::in_memory(b"a capture") {
            Ok(c) => c,
            Err(e) => panic!("{e}"),
        };
        assert!(path.starts_with("/proc/self/fd/"), "{path}");
        assert_eq!(
            std::fs::read(&path).ok().as_deref(),
            Some(&b"a capture"[..])
        );
        let target = std::fs::read_link(&path).map(|t| t.display().to_string());
        assert_eq!(
            target.ok().as_deref(),
            Some("/memfd:hostwatch-demo.pcap (deleted)")
        );
        drop(file);
    }
}
