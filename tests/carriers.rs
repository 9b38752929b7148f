//! Name carriers whatever way their bytes travel: DHCP, DHCPv6 and
//! Kerberos datagrams cut into IP fragments sent in reverse, Kerberos over
//! TCP in one-byte segments, SMTP with its EHLO split across segments. Each
//! gives the records of the capture delivered whole.

mod common;

use std::net::IpAddr;
use std::path::Path;

use common::{fixture, fragment_frames, frames_of, run_file, tmp, Tmp};
use hostwatch::synth::{msg, Conn, Trace};
use serde_json::Value;

fn write(name: &str, frames: Vec<(i64, Vec<u8>)>) -> Tmp {
    let p = tmp(name);
    let t = Trace { frames, now_us: 0 };
    std::fs::write(&p, t.to_bytes()).expect("write capture");
    p
}

/// Every event but `stats`, as written.
fn lines(events: &[Value]) -> Vec<String> {
    events
        .iter()
        .filter(|e| e["event_type"] != "stats")
        .map(Value::to_string)
        .collect()
}

fn stats(events: &[Value]) -> &Value {
    &events.last().expect("stats event")["stats"]
}

#[test]
fn fragmented_dhcp_and_kerberos_datagrams_give_the_same_events() {
    for (capture, datagrams) in [
        ("dhcp/dnsmasq-dhclient.pcapng", 21),
        ("krb5/mit-kdc.pcapng", 14),
    ] {
        let path = fixture(capture);
        let whole = run_file(&path);
        // The UDP datagrams are cut; TCP segments go whole.
        let mut cut_frames = Vec::new();
        let mut cut_datagrams = 0;
        for frame in frames_of(&path) {
            if is_udp(&frame.1) {
                cut_datagrams += 1;
                cut_frames.extend(fragment_frames(&[frame], 0));
            } else {
                cut_frames.push(frame);
            }
        }
        assert_eq!(cut_datagrams, datagrams, "{capture}");
        let cut = write(&format!("frag-{}", capture.replace('/', "-")), cut_frames);
        let events = run_file(&cut);
        let (got, want) = (lines(&events), lines(&whole));
        assert_eq!(got.len(), want.len(), "{capture}");
        for (g, w) in got.iter().zip(&want) {
            assert_eq!(g, w, "{capture}");
        }
        assert!(!lines(&whole).is_empty());
        // Every datagram was reassembled from fragments.
        assert_eq!(
            stats(&events)["defrag"]["reassembled"],
            datagrams,
            "{capture}: {}",
            stats(&events)["defrag"]
        );
    }
}

fn is_udp(f: &[u8]) -> bool {
    let proto = match f.get(12..14) {
        Some([0x08, 0x00]) => f.get(23),
        Some([0x86, 0xdd]) => f.get(20),
        _ => None,
    };
    proto == Some(&17)
}

/// A TCP connection's client, server and flights (direction, bytes).
type Flights = ((IpAddr, u16), (IpAddr, u16), Vec<(bool, Vec<u8>)>);

/// The payload of each TCP connection of a capture, as flights (direction,
/// bytes) in capture order; connections keyed from their SYN.
fn tcp_flights(path: &Path) -> Vec<Flights> {
    use etherparse::{NetSlice, SlicedPacket, TransportSlice};
    let mut conns: Vec<Flights> = Vec::new();
    for (_, f) in frames_of(path) {
        let Ok(p) = SlicedPacket::from_ethernet(&f) else {
            continue;
        };
        let (src, dst): (IpAddr, IpAddr) = match &p.net {
            Some(NetSlice::Ipv4(i)) => (
                i.header().source_addr().into(),
                i.header().destination_addr().into(),
            ),
            Some(NetSlice::Ipv6(i)) => (
                i.header().source_addr().into(),
                i.header().destination_addr().into(),
            ),
            _ => continue,
        };
        let Some(TransportSlice::Tcp(t)) = &p.transport else {
            continue;
        };
        let a = (src, t.source_port());
        let b = (dst, t.destination_port());
        if t.syn() && !t.ack() {
            conns.push((a, b, Vec::new()));
            continue;
        }
        let payload = t.payload();
        if payload.is_empty() {
            continue;
        }
        let Some(c) = conns
            .iter_mut()
            .rev()
            .find(|c| (c.0, c.1) == (a, b) || (c.0, c.1) == (b, a))
        else {
            continue;
        };
        let from_client = c.0 == a;
        match c.2.last_mut() {
            Some((dir, bytes)) if *dir == from_client => bytes.extend_from_slice(payload),
            _ => c.2.push((from_client, payload.to_vec())),
        }
    }
    conns
}

/// The capture's TCP connections written again with `mss`-byte segments.
fn resegmented(path: &Path, mss: usize) -> Trace {
    let mut t = Trace::starting_at(1_800_000_000_000_000);
    for (i, (client, server, flights)) in tcp_flights(path).into_iter().enumerate() {
        let mut c = Conn::new(client, server, 100 + i as u32);
        let open = c.open();
        t.add(&c, &open);
        c.mss = mss;
        for (from_client, bytes) in flights {
            let segs = c.send(from_client, &bytes);
            t.add(&c, &segs);
        }
        let close = c.close();
        t.add(&c, &close);
    }
    t
}

/// The records and alerts of TCP flows, without their envelopes (times,
/// flow ids): what each said, in order.
fn tcp_bodies(events: &[Value], kind: &str) -> Vec<String> {
    events
        .iter()
        .filter(|e| e["proto"] == "TCP")
        .filter_map(|e| match e["event_type"].as_str() {
            Some(t) if t == kind => Some(format!("{kind} {}", e[kind])),
            Some("alert") => Some(format!(
                "alert {} {} {}",
                e["alert"]["hostname"], e["alert"]["role"], e["alert"]["evidence"]
            )),
            _ => None,
        })
        .collect()
}

#[test]
fn kerberos_over_tcp_in_one_byte_segments_gives_the_same_events() {
    let path = fixture("krb5/mit-kdc.pcapng");
    let whole = tcp_bodies(&run_file(&path), "krb5");
    // Five connections of the TCP session, fourteen messages, two alerts.
    assert_eq!(whole.iter().filter(|l| l.starts_with("krb5")).count(), 14);
    assert_eq!(whole.iter().filter(|l| l.starts_with("alert")).count(), 4);
    let t = resegmented(&path, 1);
    assert!(t.frames.len() > 5_000, "{} frames", t.frames.len());
    let p = tmp("krb5-one-byte.pcap");
    std::fs::write(&p, t.to_bytes()).expect("write");
    assert_eq!(tcp_bodies(&run_file(&p), "krb5"), whole);
}

#[test]
fn smtp_with_its_ehlo_split_across_segments_gives_the_same_events() {
    let path = fixture("smtp/swaks-aiosmtpd.pcap");
    let whole = tcp_bodies(&run_file(&path), "smtp");
    assert_eq!(whole.iter().filter(|l| l.starts_with("smtp")).count(), 3);
    for mss in [1, 3, 7] {
        let p = tmp(&format!("smtp-{mss}.pcap"));
        std::fs::write(&p, resegmented(&path, mss).to_bytes()).expect("write");
        assert_eq!(tcp_bodies(&run_file(&p), "smtp"), whole, "mss {mss}");
    }
}

/// Answers sent alone cannot pin a name on the host they are sent to: a
/// forged DHCPACK naming WIN-J9D866ESIJ2 to 10.9.9.9, and the KDC's AS-REP
/// for the machine account WIN-J9D866ESIJ2$ without its request, give no
/// sighting; the Kerberos name still alerts, as a mention.
#[test]
fn a_lone_answer_names_nobody() {
    use hostwatch::synth::{msg, udp_frame};
    let ack = msg::dhcp_v4(&msg::Dhcp {
        msg_type: 5,
        xid: 77,
        mac: [2, 0, 0, 0, 0, 9],
        yiaddr: [10, 9, 9, 9],
        server_id: Some([10, 9, 9, 1]),
        hostname: "WIN-J9D866ESIJ2",
        ..msg::Dhcp::default()
    });
    let frame = udp_frame(
        ([2, 0, 0, 0, 0, 1], [10, 9, 9, 1], 67),
        ([2, 0, 0, 0, 0, 9], [10, 9, 9, 9], 68),
        &ack,
    );
    let events = run_file(&write(
        "forged-ack.pcap",
        vec![(1_790_000_000_000_000, frame)],
    ));
    let dhcp: Vec<&Value> = events
        .iter()
        .filter(|e| e["event_type"] == "dhcp")
        .collect();
    assert_eq!(dhcp.len(), 1);
    assert_eq!(dhcp[0]["dhcp"]["assigned_ip"], "10.9.9.9");
    assert!(dhcp[0]["dhcp"].get("hostname").is_none(), "{}", dhcp[0]);
    assert!(events
        .iter()
        .all(|e| e["event_type"] != "inventory" && e["event_type"] != "alert"));

    // The AS-REP of the machine account (the 12th frame of the capture).
    let frames = frames_of(&fixture("krb5/mit-kdc.pcapng"));
    let rep = frames.get(11).cloned().expect("the AS-REP frame");
    let events = run_file(&write("lone-as-rep.pcap", vec![rep]));
    let krb: Vec<&Value> = events
        .iter()
        .filter(|e| e["event_type"] == "krb5")
        .collect();
    assert_eq!(krb.len(), 1);
    assert_eq!(krb[0]["krb5"]["msg_type"], "KRB_AS_REP");
    assert_eq!(krb[0]["krb5"]["cname"], "WIN-J9D866ESIJ2$");
    let roles: Vec<&str> = events
        .iter()
        .filter(|e| e["event_type"] == "alert")
        .filter_map(|e| e["alert"]["role"].as_str())
        .collect();
    assert_eq!(roles, ["named"]);
    assert!(events.iter().all(|e| e["event_type"] != "inventory"));
}

/// A DHCPv6 client nobody answers backs off (RFC 8415 §15: 1, 2, 4, ...
/// 64 s between Solicits): its retries are one transaction, however long
/// the back-off grows, and the Advertise that finally comes joins it.
/// Thirty seconds of silence do not split it (Zeek's fixed watch time
/// would), nor does the conversation's idle timeout (60 s).
#[test]
fn a_dhcpv6_client_backing_off_is_one_transaction() {
    let frames = frames_of(&fixture("dhcp/dnsmasq-dhclient.pcapng"));
    // Frame 6 is dhclient's first Solicit (xid 0x599a60), frame 10 the
    // Advertise that answers it.
    let solicit = frames.get(5).cloned().expect("solicit").1;
    let advertise = frames.get(9).cloned().expect("advertise").1;
    let t0 = 1_790_000_000_000_000i64;
    let mut trace = Vec::new();
    let mut t = t0;
    for gap_s in [0, 1, 2, 4, 8, 16, 32, 64] {
        t += gap_s * 1_000_000;
        trace.push((t, solicit.clone()));
    }
    trace.push((t + 500_000, advertise));
    let events = run_file(&write("dhcpv6-backoff.pcap", trace));
    let dhcp: Vec<&Value> = events
        .iter()
        .filter(|e| e["event_type"] == "dhcp")
        .collect();
    assert_eq!(dhcp.len(), 1, "{dhcp:?}");
    let d = &dhcp[0]["dhcp"];
    assert_eq!(d["id"], 0x599a60);
    let mut types = vec!["solicit"; 8];
    types.push("advertise");
    assert_eq!(d["msg_types"], serde_json::json!(types));
    assert_eq!(d["client_fqdn"], "WIN-J9D866ESIJ2.corp.example");
    // Answered: the client, at its link-local address, is the machine.
    let alerts: Vec<&Value> = events
        .iter()
        .filter(|e| e["event_type"] == "alert")
        .collect();
    assert_eq!(alerts.len(), 1);
    assert_eq!(alerts[0]["src_ip"], "fe80::a0d2:49ff:fedc:72ab");
}

/// A DHCP exchange on one link: `(client?, message, checksum)` per
/// datagram, the client 0.0.0.0:68 broadcasting, the server 10.9.9.1:67
/// answering at the address it gives.
#[derive(Clone, Copy)]
enum Sum {
    Correct,
    /// What an offloading card would fill in: the pseudo-header's sum.
    Unfilled,
    Wrong,
}

fn dhcp_exchange(name: &str, messages: &[(bool, msg::Dhcp<'_>, Sum)]) -> Tmp {
    use hostwatch::decode::checksum::{fold, pseudo_header};
    use hostwatch::synth::udp_frame;
    let mut t = 1_790_000_000_000_000i64;
    let mut frames = Vec::new();
    for (from_client, m, sum) in messages {
        let body = msg::dhcp_v4(m);
        let (src, dst) = if *from_client {
            (
                ([2, 0, 0, 0, 0, 9], [0, 0, 0, 0], 68),
                ([0xff; 6], [255, 255, 255, 255], 67),
            )
        } else {
            (
                ([2, 0, 0, 0, 0, 1], [10, 9, 9, 1], 67),
                ([2, 0, 0, 0, 0, 9], [10, 9, 9, 9], 68),
            )
        };
        let mut f = udp_frame(src, dst, &body);
        // Ethernet 14, IPv4 20, then the UDP checksum at 6.
        let at = 14 + 20 + 6;
        let field = match sum {
            Sum::Correct => None,
            Sum::Unfilled => Some(fold(pseudo_header(
                IpAddr::from(src.1),
                IpAddr::from(dst.1),
                17,
                8 + body.len(),
            ))),
            Sum::Wrong => Some(u16::from_be_bytes([f[at], f[at + 1]]) ^ 0x0101),
        };
        if let Some(v) = field {
            f[at..at + 2].copy_from_slice(&v.to_be_bytes());
        }
        frames.push((t, f));
        t += 200_000;
    }
    write(name, frames)
}

fn client(msg_type: u8, hostname: &str) -> msg::Dhcp<'_> {
    msg::Dhcp {
        msg_type,
        xid: 0x5151,
        mac: [2, 0, 0, 0, 0, 9],
        requested: (msg_type == 3).then_some([10, 9, 9, 9]),
        server_id: (msg_type == 3).then_some([10, 9, 9, 1]),
        hostname,
        ..msg::Dhcp::default()
    }
}

fn server(msg_type: u8) -> msg::Dhcp<'static> {
    msg::Dhcp {
        msg_type,
        xid: 0x5151,
        mac: [2, 0, 0, 0, 0, 9],
        yiaddr: [10, 9, 9, 9],
        server_id: Some([10, 9, 9, 1]),
        ..msg::Dhcp::default()
    }
}

/// (hostname, message types) of each `dhcp` event.
fn dhcp_events(events: &[Value]) -> Vec<(Option<String>, String)> {
    common::of_type(events, "dhcp")
        .iter()
        .map(|e| {
            let types: Vec<&str> = e["dhcp"]["msg_types"]
                .as_array()
                .map(|a| a.iter().filter_map(Value::as_str).collect())
                .unwrap_or_default();
            (common::s(e, "dhcp.hostname"), types.join(","))
        })
        .collect()
}

/// The receiver decides: a REQUEST whose checksum is wrong was taken if
/// the server acknowledges it, and dropped if nobody answers.
#[test]
fn a_dhcp_request_with_a_wrong_checksum_counts_once_answered() {
    let answered = dhcp_exchange(
        "dhcp-wrong-answered.pcap",
        &[
            (true, client(3, "WIN-J9D866ESIJ2"), Sum::Wrong),
            (false, server(5), Sum::Correct),
        ],
    );
    let events = run_file(&answered);
    assert_eq!(
        dhcp_events(&events),
        [(Some("WIN-J9D866ESIJ2".into()), "request,ack".into())]
    );
    let c = &stats(&events)["checksums"];
    assert_eq!(
        (c["bad_udp"].as_u64(), c["vouched_udp"].as_u64()),
        (Some(1), Some(1))
    );
    let alerts = common::of_type(&events, "alert");
    assert_eq!(alerts.len(), 1);
    assert_eq!(
        common::s(alerts[0], "alert.hostname").as_deref(),
        Some("WIN-J9D866ESIJ2")
    );

    let unanswered = dhcp_exchange(
        "dhcp-wrong-alone.pcap",
        &[(true, client(3, "WIN-J9D866ESIJ2"), Sum::Wrong)],
    );
    let events = run_file(&unanswered);
    assert_eq!(dhcp_events(&events), []);
    assert!(common::of_type(&events, "alert").is_empty());
    let c = &stats(&events)["checksums"];
    assert_eq!(
        (c["bad_udp"].as_u64(), c["vouched_udp"].as_u64()),
        (Some(1), Some(0))
    );
    // An answer with a wrong checksum never reached its client.
    let wrong_answer = dhcp_exchange(
        "dhcp-wrong-answer.pcap",
        &[
            (true, client(3, "WIN-J9D866ESIJ2"), Sum::Wrong),
            (false, server(5), Sum::Wrong),
        ],
    );
    assert_eq!(dhcp_events(&run_file(&wrong_answer)), []);
}

/// A decoy DISCOVER with the real one's transaction id and address and a
/// checksum shaped as an offloading card leaves it, sent first: the
/// client's own messages carry correct checksums, so every receiver
/// dropped the decoy, and its name must not be the one reported. A capture
/// on the client itself (every client message unfilled) keeps its name.
#[test]
fn a_dhcp_decoy_with_an_unfilled_checksum_loses_to_the_real_client() {
    let decoyed = dhcp_exchange(
        "dhcp-decoy.pcap",
        &[
            (true, client(1, "FILESRV01"), Sum::Unfilled),
            (true, client(1, "WIN-LIVFRVQFMKO"), Sum::Correct),
            (false, server(2), Sum::Correct),
            (true, client(3, "FILESRV01"), Sum::Unfilled),
            (true, client(3, "WIN-LIVFRVQFMKO"), Sum::Correct),
            (false, server(5), Sum::Correct),
        ],
    );
    let events = run_file(&decoyed);
    assert_eq!(
        dhcp_events(&events),
        [(
            Some("WIN-LIVFRVQFMKO".into()),
            "discover,discover,offer,request,ack".into()
        )]
    );
    let on_the_client = dhcp_exchange(
        "dhcp-offloaded.pcap",
        &[
            (true, client(1, "WIN-LIVFRVQFMKO"), Sum::Unfilled),
            (false, server(2), Sum::Correct),
            (true, client(3, "WIN-LIVFRVQFMKO"), Sum::Unfilled),
            (false, server(5), Sum::Correct),
        ],
    );
    assert_eq!(
        dhcp_events(&run_file(&on_the_client)),
        [(
            Some("WIN-LIVFRVQFMKO".into()),
            "discover,offer,request,ack".into()
        )]
    );
}

/// A Kerberos request is written when the KDC answers it, so that the
/// machine it names counts as named in an answered exchange: a later NTLM
/// logon of the same machine weighs it (before, the request went out
/// before its answer and read as "nobody answered"). Unanswered, it is
/// shown and not weighed.
#[test]
fn a_kerberos_request_reads_as_answered_once_the_kdc_answers() {
    use hostwatch::synth::udp_frame;
    let client = ([2, 0, 0, 0, 0, 5], [10, 3, 0, 5], 50_123);
    let kdc = ([2, 0, 0, 0, 0, 1], [10, 3, 0, 1], 88);
    let t0 = 1_790_000_000_000_000i64 - 1_000_000;
    let request = (
        t0,
        udp_frame(client, kdc, &msg::krb5_as_req("WIN-J9D866ESIJ2")),
    );
    let answer = (
        t0 + 2_000,
        udp_frame(kdc, client, &msg::krb5_preauth_required("WIN-J9D866ESIJ2")),
    );
    let logon = common::smb_logon("10.3.0.5", "10.3.0.1", "WIN-J9D866ESIJ2", 14393, 0).frames;
    let why = |frames: Vec<(i64, Vec<u8>)>, name: &str| -> Vec<String> {
        let events = run_file(&write(name, frames));
        common::of_type(&events, "alert")
            .iter()
            .filter(|a| {
                common::s(a, "alert.evidence").as_deref() == Some("ntlm.client.workstation")
            })
            .flat_map(|a| common::corroboration(a))
            .filter(|l| l.starts_with("also named"))
            .collect()
    };
    let answered = [vec![request.clone(), answer], logon.clone()].concat();
    assert_eq!(
        why(answered, "krb5-answered.pcap"),
        ["also named at 10.3.0.5 by krb5"]
    );
    let alone = [vec![request], logon].concat();
    assert_eq!(
        why(alone, "krb5-alone.pcap"),
        ["also named at 10.3.0.5 by krb5 in packets nobody answered (not weighed)"]
    );
}

/// The capture with the protocol's port moved to another: the same UDP
/// payloads between the same hosts.
fn moved_port(frames: &[(i64, Vec<u8>)], from: u16, to: u16) -> Vec<(i64, Vec<u8>)> {
    use etherparse::{NetSlice, SlicedPacket, TransportSlice};
    let port = |p: u16| if p == from { to } else { p };
    frames
        .iter()
        .filter_map(|(ts, f)| {
            let p = SlicedPacket::from_ethernet(f).ok()?;
            let (Some(NetSlice::Ipv4(ip)), Some(TransportSlice::Udp(udp))) = (p.net, p.transport)
            else {
                return None;
            };
            let (mac_dst, mac_src) = (f.get(0..6)?, f.get(6..12)?);
            let src = (
                <[u8; 6]>::try_from(mac_src).ok()?,
                ip.header().source(),
                port(udp.source_port()),
            );
            let dst = (
                <[u8; 6]>::try_from(mac_dst).ok()?,
                ip.header().destination(),
                port(udp.destination_port()),
            );
            Some((*ts, hostwatch::synth::udp_frame(src, dst, udp.payload())))
        })
        .collect()
}

/// Kerberos to a KDC on another port and CLDAP pings on another port are
/// read as on their own (the TCP side probes content on any port too):
/// the same records from real MIT krb5 and Samba DC datagrams moved to
/// ports 8088 and 3390.
#[test]
fn kerberos_and_cldap_are_read_on_other_ports() {
    for (file, port, to, kind, expected) in [
        ("krb5/mit-kdc.pcapng", 88, 8088, "krb5", 14),
        ("cldap/samba-dc.pcapng", 389, 3390, "cldap", 8),
    ] {
        let frames = common::frames_of(&fixture(file));
        let records = |events: &[Value]| -> Vec<Value> {
            common::of_type(events, kind)
                .iter()
                .filter(|e| e["proto"] == "UDP")
                .map(|e| e[kind].clone())
                .collect()
        };
        let here = records(&run_file(&fixture(file)));
        let moved = run_file(&write(
            &format!("{kind}-moved.pcap"),
            moved_port(&frames, port, to),
        ));
        let there = records(&moved);
        assert_eq!(here.len(), expected, "{file}");
        assert_eq!(there, here, "{file}");
        assert!(common::of_type(&moved, kind)
            .iter()
            .all(|e| e["src_port"] == to || e["dest_port"] == to));
    }
}
