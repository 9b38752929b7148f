//! Lost bytes in the middle of a framed protocol: the analysis finds the
//! next message and goes on, so a gap never hides the rest of a session.

mod common;

use common::{of_type, run_file, s};
use hostwatch::synth::msg::{self, FILESRV01};
use hostwatch::synth::{Conn, Segment, Trace};
use serde_json::Value;

fn capture(name: &str, t: &Trace) -> common::Tmp {
    let p = common::tmp(name);
    std::fs::write(&p, t.to_bytes()).expect("write capture");
    p
}

/// One round trip; `lose` drops segments of the request (client) and the
/// answer (server) by their index.
fn trip(t: &mut Trace, c: &mut Conn, (q, a): &(Vec<u8>, Vec<u8>), lose: (&[usize], &[usize])) {
    let keep = |segs: Vec<Segment>, lost: &[usize]| -> Vec<Segment> {
        segs.into_iter()
            .enumerate()
            .filter(|(i, _)| !lost.contains(i))
            .map(|(_, s)| s)
            .collect()
    };
    let segs = c.send(true, q);
    t.add(c, &keep(segs, lose.0));
    let segs = c.send(false, a);
    t.add(c, &keep(segs, lose.1));
}

/// An SMB2 session: a logon, a tree connect, file reads, a second tree
/// connect and a second logon. `lost` says whether a read request, the
/// first segment of a read answer (its header and the first file bytes)
/// and a segment of file bytes in another answer are missing from the
/// capture.
fn session(lost: bool) -> Trace {
    let ip = |s: &str| s.parse::<std::net::IpAddr>().expect("address");
    let mut t = Trace::starting_at(1_790_000_000_000_000);
    let mut c = Conn::new((ip("10.1.2.3"), 49_800), (ip("10.1.2.9"), 445), 4);
    let open = c.open();
    t.add(&c, &open);
    let first = msg::smb2_logon(0x77, &FILESRV01, "CORP", "svc", "WIN-LIVFRVQFMKO", 0);
    for x in &first {
        trip(&mut t, &mut c, x, (&[], &[]));
    }
    trip(
        &mut t,
        &mut c,
        &msg::smb2_tree_connect(3, 0x77, "\\\\FILESRV01\\IPC$"),
        (&[], &[]),
    );
    let file = vec![0x41u8; 6000];
    for id in 4..=8u64 {
        let lose: (&[usize], &[usize]) = match (lost, id) {
            (true, 5) => (&[0], &[]),
            (true, 6) => (&[], &[0]),
            (true, 7) => (&[], &[2]),
            _ => (&[], &[]),
        };
        trip(&mut t, &mut c, &msg::smb2_read(id, 0x77, &file), lose);
    }
    trip(
        &mut t,
        &mut c,
        &msg::smb2_tree_connect(9, 0x77, "\\\\FILESRV01\\data"),
        (&[], &[]),
    );
    let second = msg::smb2_logon(0x78, &FILESRV01, "CORP", "admin", "WIN-J9D866ESIJ2", 0);
    for x in &second[1..] {
        trip(&mut t, &mut c, x, (&[], &[]));
    }
    let close = c.close();
    t.add(&c, &close);
    t
}

/// What the `smb` events say: the command, the workstation or tree, the user.
fn smb_lines(events: &[Value]) -> Vec<String> {
    of_type(events, "smb")
        .iter()
        .map(|e| {
            format!(
                "{} {} {} {}",
                s(e, "smb.command").unwrap_or_default(),
                s(e, "smb.ntlmssp.host").unwrap_or_default(),
                s(e, "smb.ntlmssp.user").unwrap_or_default(),
                s(e, "smb.tree.share").unwrap_or_default(),
            )
        })
        .collect()
}

#[test]
fn an_smb2_session_with_lost_segments_is_read_to_its_end() {
    let whole = run_file(&capture("whole.pcap", &session(false)));
    let cut = run_file(&capture("cut.pcap", &session(true)));
    let expected = vec![
        "SMB2_COMMAND_SESSION_SETUP WIN-LIVFRVQFMKO svc ".to_string(),
        "SMB2_COMMAND_TREE_CONNECT   IPC$".to_string(),
        "SMB2_COMMAND_TREE_CONNECT   data".to_string(),
        "SMB2_COMMAND_SESSION_SETUP WIN-J9D866ESIJ2 admin ".to_string(),
    ];
    assert_eq!(smb_lines(&whole), expected);
    assert_eq!(smb_lines(&cut), expected);
    let stats = |events: &[Value]| events.last().expect("stats")["stats"].clone();
    let (w, c) = (stats(&whole), stats(&cut));
    assert_eq!(w["reassembly"]["gaps"], 0);
    assert_eq!(c["reassembly"]["gaps"], 3);
    assert_eq!(w["resyncs"], serde_json::json!({}));
    // The lost request began at a message; the first lost answer segment
    // took the message's header, found again at the next one after its
    // file bytes. File bytes alone lost keep the framing: no resync.
    assert_eq!(c["resyncs"], serde_json::json!({"smb": 2}));
    assert_eq!(c["flows"]["bypassed"], w["flows"]["bypassed"]);
    // Both alerts, the second name's after the gaps.
    let alerts: Vec<String> = of_type(&cut, "alert")
        .iter()
        .filter_map(|a| s(a, "alert.hostname"))
        .collect();
    assert_eq!(alerts, ["WIN-LIVFRVQFMKO", "WIN-J9D866ESIJ2"]);
}
