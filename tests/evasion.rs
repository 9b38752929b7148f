//! Evasion: a handshake yields the same events however its bytes travel.
//! Each case rewrites the same two connections (an SMB2 NTLM logon from
//! WIN-J9D866ESIJ2 and a standard-security RDP logon with that client
//! name) and compares what hostwatch reports with the plain delivery.

mod common;

use std::net::IpAddr;

use common::{of_type, run_config, run_files, s, tmp};
use hostwatch::decode::checksum::{add, fold};
use hostwatch::synth::msg::{self, ServerNames};
use hostwatch::synth::{ip_tcp, Conn, Segment, Trace};

const NAMES: ServerNames<'static> = msg::FILESRV01;

/// A tiny deterministic generator (SplitMix64).
struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
    fn shuffle<T>(&mut self, v: &mut [T]) {
        for i in (1..v.len()).rev() {
            let j = self.below(i + 1);
            v.swap(i, j);
        }
    }
}

/// How the data segments of each flight are delivered.
#[derive(Clone, Copy)]
enum Delivery {
    Plain,
    OneByte,
    Reverse,
    Shuffle(u64),
    Retransmit,
}

/// The flights of a connection: handshake, then (direction, segments) per
/// message, then the close.
fn flights(conn: &mut Conn, trips: &[(Vec<u8>, Vec<u8>)], how: Delivery) -> Vec<Vec<Segment>> {
    let mut out = vec![conn.open()];
    let mut rng = Rng(match how {
        Delivery::Shuffle(seed) => seed,
        _ => 7,
    });
    for (c, s) in trips {
        for (from_client, bytes) in [(true, c), (false, s)] {
            let saved = conn.mss;
            if matches!(how, Delivery::OneByte) {
                conn.mss = 1;
            } else if !matches!(how, Delivery::Plain) {
                conn.mss = 97;
            }
            let mut segs = conn.send(from_client, bytes);
            conn.mss = saved;
            match how {
                Delivery::Reverse => segs.reverse(),
                Delivery::Shuffle(_) => rng.shuffle(&mut segs),
                Delivery::Retransmit => {
                    let dups: Vec<Segment> = segs.iter().step_by(3).cloned().collect();
                    let at = segs.len() / 2;
                    segs.splice(at..at, dups);
                }
                _ => {}
            }
            out.push(segs);
        }
    }
    out.push(conn.close());
    out
}

fn smb_trips() -> Vec<(Vec<u8>, Vec<u8>)> {
    msg::smb2_logon(0x77, &NAMES, "CORP", "svc_backup", "WIN-J9D866ESIJ2", 0)
}

fn rdp_trips() -> Vec<(Vec<u8>, Vec<u8>)> {
    msg::rdp_standard_logon("svc_backu", "WIN-J9D866ESIJ2")
}

fn ip(s: &str) -> IpAddr {
    s.parse().expect("address")
}

/// Workstation, user, server name and result of an NTLM record.
type NtlmSeen = (
    Option<String>,
    Option<String>,
    Option<String>,
    Option<String>,
);

/// What a run reports, in a comparable form.
#[derive(Debug, PartialEq, Eq)]
struct Seen {
    ntlm: Vec<NtlmSeen>,
    rdp: Vec<(Option<String>, Option<String>)>,
    alerts: Vec<(String, String)>,
}

fn seen(events: &[serde_json::Value]) -> Seen {
    let mut ntlm: Vec<_> = of_type(events, "ntlm")
        .iter()
        .map(|n| {
            (
                s(n, "ntlm.client.workstation"),
                s(n, "ntlm.client.user"),
                s(n, "ntlm.server.nb_computer_name"),
                s(n, "ntlm.result"),
            )
        })
        .collect();
    ntlm.sort();
    let mut rdp: Vec<_> = of_type(events, "rdp")
        .iter()
        .map(|r| (s(r, "rdp.client.client_name"), s(r, "rdp.cookie")))
        .collect();
    rdp.sort();
    let mut alerts: Vec<_> = of_type(events, "alert")
        .iter()
        .filter(|a| a["alert"]["list"] == "vmmanager-defaults")
        .map(|a| {
            (
                s(a, "alert.evidence").unwrap_or_default(),
                s(a, "src_ip").unwrap_or_default(),
            )
        })
        .collect();
    alerts.sort();
    Seen { ntlm, rdp, alerts }
}

fn expected(client: &str) -> Seen {
    let c = Some;
    Seen {
        ntlm: vec![(
            c("WIN-J9D866ESIJ2".into()),
            c("svc_backup".into()),
            c("FILESRV01".into()),
            c("success".into()),
        )],
        rdp: vec![(c("WIN-J9D866ESIJ2".into()), c("svc_backu".into()))],
        alerts: vec![
            ("ntlm.client.workstation".into(), client.into()),
            ("rdp.client.client_name".into(), client.into()),
        ],
    }
}

fn run(name: &str, t: &Trace) -> Seen {
    let p = tmp(name);
    std::fs::write(&p, t.to_bytes()).expect("write");
    let (events, outcome, _) = run_files(&[p], 2);
    assert!(outcome.error.is_none(), "{name}: {:?}", outcome.error);
    seen(&events)
}

/// Both connections, delivered `how`, in a trace.
fn standard(how: Delivery, setup: impl Fn(&mut Conn)) -> Trace {
    let mut t = Trace::starting_at(1_700_000_000_000_000);
    let mut smb = Conn::new((ip("10.1.0.77"), 49812), (ip("10.1.0.5"), 445), 11);
    setup(&mut smb);
    for f in flights(&mut smb, &smb_trips(), how) {
        t.add(&smb, &f);
    }
    let mut rdp = Conn::new((ip("10.1.0.77"), 49820), (ip("10.1.0.8"), 3389), 12);
    setup(&mut rdp);
    for f in flights(&mut rdp, &rdp_trips(), how) {
        t.add(&rdp, &f);
    }
    t
}

#[test]
fn plain_delivery_is_the_baseline() {
    assert_eq!(
        run("plain.pcap", &standard(Delivery::Plain, |_| {})),
        expected("10.1.0.77")
    );
}

#[test]
fn one_byte_segments() {
    assert_eq!(
        run("onebyte.pcap", &standard(Delivery::OneByte, |_| {})),
        expected("10.1.0.77")
    );
}

#[test]
fn reversed_and_shuffled_segments() {
    assert_eq!(
        run("reverse.pcap", &standard(Delivery::Reverse, |_| {})),
        expected("10.1.0.77")
    );
    for seed in [1, 2, 3] {
        assert_eq!(
            run(
                &format!("shuffle{seed}.pcap"),
                &standard(Delivery::Shuffle(seed), |_| {})
            ),
            expected("10.1.0.77")
        );
    }
}

#[test]
fn retransmitted_segments() {
    assert_eq!(
        run("retrans.pcap", &standard(Delivery::Retransmit, |_| {})),
        expected("10.1.0.77")
    );
}

/// An SMB logon whose AUTHENTICATE segment comes twice with different
/// bytes: the real one and a copy naming DESKTOP-AAAAAAA, in that order or
/// (a TTL-limited decoy that never reaches the server) the decoy first.
fn twice(decoy_first: bool) -> (Vec<serde_json::Value>, usize) {
    let mut t = Trace::starting_at(1_700_000_000_000_000);
    let mut c = Conn::new((ip("10.1.0.77"), 49812), (ip("10.1.0.5"), 445), 11);
    c.mss = 4000;
    let mut fl = flights(&mut c, &smb_trips(), Delivery::Plain);
    let (real, decoy) = auth_and_decoy(&fl);
    // The AUTHENTICATE's offset in the client's stream.
    let offset: usize = [1, 3]
        .iter()
        .flat_map(|&i| &fl[i])
        .map(|s| s.payload.len())
        .sum();
    fl[5] = if decoy_first {
        vec![decoy, real]
    } else {
        vec![real, decoy]
    };
    for f in &fl {
        t.add(&c, f);
    }
    let p = tmp(&format!("conflict-{decoy_first}.pcap"));
    std::fs::write(&p, t.to_bytes()).expect("write");
    (run_files(&[p], 1).0, offset)
}

/// Workstation, result and the overlap marker of each ntlm event.
fn ntlm_copies(events: &[serde_json::Value]) -> Vec<(String, String, serde_json::Value)> {
    of_type(events, "ntlm")
        .iter()
        .map(|n| {
            (
                s(n, "ntlm.client.workstation").unwrap_or_default(),
                s(n, "ntlm.result").unwrap_or_default(),
                n["conflicting_overlap"].clone(),
            )
        })
        .collect()
}

/// Two copies of the same bytes that differ: the first goes to the
/// analysis, the other is analysed on its own and its events carry
/// `conflicting_overlap`, so a decoy that only the sensor saw cannot hide
/// the real name, and the conflict is counted.
#[test]
fn both_copies_of_a_conflicting_retransmission_are_searched() {
    let none = serde_json::Value::Null;
    for decoy_first in [false, true] {
        let (events, offset) = twice(decoy_first);
        assert_eq!(offset, 272);
        let marker = serde_json::json!({"direction": "to_server", "offset": offset});
        let (first, other) = if decoy_first {
            ("DESKTOP-AAAAAAA", "WIN-J9D866ESIJ2")
        } else {
            ("WIN-J9D866ESIJ2", "DESKTOP-AAAAAAA")
        };
        assert_eq!(
            ntlm_copies(&events),
            [
                (other.to_string(), "unknown".to_string(), marker.clone()),
                (first.to_string(), "success".to_string(), none.clone()),
            ],
            "decoy first: {decoy_first}"
        );
        let alerts: Vec<_> = of_type(&events, "alert")
            .iter()
            .map(|a| {
                (
                    s(a, "alert.evidence").unwrap_or_default(),
                    s(a, "src_ip").unwrap_or_default(),
                    a["conflicting_overlap"].clone(),
                )
            })
            .collect();
        let alert_marker = if decoy_first { &marker } else { &none };
        assert_eq!(
            alerts,
            [(
                "ntlm.client.workstation".to_string(),
                "10.1.0.77".to_string(),
                alert_marker.clone()
            )],
            "decoy first: {decoy_first}"
        );
        let stats = &events.last().expect("stats")["stats"];
        assert_eq!(stats["reassembly"]["conflicting_overlaps"], 1);
        assert_eq!(stats["reassembly"]["retransmitted"], 1);
        assert_eq!(stats["flows"]["overlap_copies_analysed"], 1);
    }
}

#[test]
fn vlan_and_qinq() {
    let got = run(
        "vlan.pcap",
        &standard(Delivery::Plain, |c| c.vlans = vec![100]),
    );
    assert_eq!(got, expected("10.1.0.77"));
    let got = run(
        "qinq.pcap",
        &standard(Delivery::Plain, |c| c.vlans = vec![10, 20]),
    );
    assert_eq!(got, expected("10.1.0.77"));
}

#[test]
fn ipv6() {
    let t = {
        let mut t = Trace::starting_at(1_700_000_000_000_000);
        let mut smb = Conn::new((ip("2001:db8::77"), 49812), (ip("2001:db8::5"), 445), 11);
        for f in flights(&mut smb, &smb_trips(), Delivery::Shuffle(9)) {
            t.add(&smb, &f);
        }
        let mut rdp = Conn::new((ip("2001:db8::77"), 49820), (ip("2001:db8::8"), 3389), 12);
        for f in flights(&mut rdp, &rdp_trips(), Delivery::OneByte) {
            t.add(&rdp, &f);
        }
        t
    };
    assert_eq!(run("v6.pcap", &t), expected("2001:db8::77"));
}

#[test]
fn non_standard_ports() {
    let mut t = Trace::starting_at(1_700_000_000_000_000);
    let mut smb = Conn::new((ip("10.1.0.77"), 49812), (ip("10.1.0.5"), 8445), 11);
    for f in flights(&mut smb, &smb_trips(), Delivery::Plain) {
        t.add(&smb, &f);
    }
    let mut rdp = Conn::new((ip("10.1.0.77"), 49820), (ip("10.1.0.8"), 443), 12);
    for f in flights(&mut rdp, &rdp_trips(), Delivery::Plain) {
        t.add(&rdp, &f);
    }
    assert_eq!(run("ports.pcap", &t), expected("10.1.0.77"));
}

#[test]
fn picked_up_midstream_without_the_syn() {
    let mut t = Trace::starting_at(1_700_000_000_000_000);
    for (i, (trips, port)) in [(smb_trips(), 445), (rdp_trips(), 3389)]
        .into_iter()
        .enumerate()
    {
        let mut c = Conn::new(
            (ip("10.1.0.77"), 49812 + i as u16),
            (ip("10.1.0.5"), port),
            11 + i as u32,
        );
        let fl = flights(&mut c, &trips, Delivery::Plain);
        for f in &fl[1..] {
            t.add(&c, f);
        }
    }
    assert_eq!(run("midstream.pcap", &t), expected("10.1.0.77"));
}

/// IP fragments of every data frame of `t`, 48 bytes each, in reverse.
fn fragmented(t: &Trace, _v6: bool) -> Trace {
    let mut out = Trace::starting_at(t.now_us);
    out.frames = common::fragment_frames(&t.frames, 64);
    out
}

#[test]
fn ipv4_fragments_out_of_order() {
    let t = standard(Delivery::Plain, |_| {});
    assert_eq!(
        run("frag4.pcap", &fragmented(&t, false)),
        expected("10.1.0.77")
    );
}

#[test]
fn ipv6_fragments_out_of_order() {
    let mut t = Trace::starting_at(1_700_000_000_000_000);
    for (i, (trips, port)) in [(smb_trips(), 445), (rdp_trips(), 3389)]
        .into_iter()
        .enumerate()
    {
        let mut c = Conn::new(
            (ip("2001:db8::77"), 49812 + i as u16),
            (ip("2001:db8::5"), port),
            11 + i as u32,
        );
        for f in flights(&mut c, &trips, Delivery::Plain) {
            t.add(&c, &f);
        }
    }
    assert_eq!(
        run("frag6.pcap", &fragmented(&t, true)),
        expected("2001:db8::77")
    );
}

#[test]
fn mirrored_through_erspan() {
    let t = standard(Delivery::Plain, |_| {});
    let mut out = Trace::starting_at(t.now_us);
    out.frames = common::erspan_frames(&t.frames);
    assert_eq!(run("erspan.pcap", &out), expected("10.1.0.77"));
}

#[test]
fn behind_socks5_and_http_connect_proxies() {
    let mut t = Trace::starting_at(1_700_000_000_000_000);
    let proxies: [(Vec<u8>, Vec<u8>); 2] = [
        (
            [&[5u8, 1, 0][..], &[5, 1, 0, 1, 10, 1, 0, 8, 0x0d, 0x3d]].concat(),
            [&[5u8, 0][..], &[5, 0, 0, 1, 0, 0, 0, 0, 0, 0]].concat(),
        ),
        (
            b"CONNECT 10.1.0.8:3389 HTTP/1.1\r\nHost: 10.1.0.8:3389\r\n\r\n".to_vec(),
            b"HTTP/1.1 200 Connection established\r\n\r\n".to_vec(),
        ),
    ];
    for (i, (hello, answer)) in proxies.into_iter().enumerate() {
        let mut c = Conn::new(
            (ip("10.1.0.77"), 49900 + i as u16),
            (ip("10.1.0.3"), 1080),
            20 + i as u32,
        );
        let open = c.open();
        t.add(&c, &open);
        let a = c.send(true, &hello);
        t.add(&c, &a);
        let b = c.send(false, &answer);
        t.add(&c, &b);
        for (cl, sv) in rdp_trips() {
            let a = c.send(true, &cl);
            t.add(&c, &a);
            let b = c.send(false, &sv);
            t.add(&c, &b);
        }
        let fin = c.close();
        t.add(&c, &fin);
    }
    let p = tmp("proxy.pcap");
    std::fs::write(&p, t.to_bytes()).expect("write");
    let (events, _, _) = run_files(&[p], 1);
    let rdp: Vec<(Option<String>, Option<String>)> = of_type(&events, "rdp")
        .iter()
        .map(|r| (s(r, "rdp.client.client_name"), s(r, "rdp.proxy")))
        .collect();
    assert_eq!(
        rdp,
        vec![
            (Some("WIN-J9D866ESIJ2".into()), Some("socks5".into())),
            (Some("WIN-J9D866ESIJ2".into()), Some("http_connect".into()))
        ]
    );
}

#[test]
fn interleaved_with_thousands_of_other_flows() {
    let mut conns: Vec<(Conn, Vec<Vec<Segment>>)> = Vec::new();
    for i in 0..3000u32 {
        let mut c = Conn::new(
            (ip("10.2.0.1"), 10_000 + (i % 50_000) as u16),
            (IpAddr::from([10, 3, (i >> 8) as u8, i as u8]), 80),
            100 + i,
        );
        let req = format!("GET /item/{i} HTTP/1.1\r\nHost: shop\r\n\r\n").into_bytes();
        let resp = format!(
            "HTTP/1.1 200 OK\r\nContent-Length: 300\r\n\r\n{}",
            "x".repeat(300)
        )
        .into_bytes();
        let f = flights(&mut c, &[(req, resp)], Delivery::Plain);
        conns.push((c, f));
    }
    let mut smb = Conn::new((ip("10.1.0.77"), 49812), (ip("10.1.0.5"), 445), 11);
    let f = flights(&mut smb, &smb_trips(), Delivery::OneByte);
    conns.push((smb, f));
    let mut rdp = Conn::new((ip("10.1.0.77"), 49820), (ip("10.1.0.8"), 3389), 12);
    let f = flights(&mut rdp, &rdp_trips(), Delivery::Shuffle(4));
    conns.push((rdp, f));
    // Round robin: one segment of each connection in turn.
    let mut queues: Vec<(Conn, std::collections::VecDeque<Segment>)> = conns
        .into_iter()
        .map(|(c, f)| (c, f.into_iter().flatten().collect()))
        .collect();
    let mut t = Trace::starting_at(1_700_000_000_000_000);
    loop {
        let mut any = false;
        for (c, q) in queues.iter_mut() {
            if let Some(s) = q.pop_front() {
                t.now_us += 3;
                t.frames.push((t.now_us, c.frame(&s)));
                any = true;
            }
        }
        if !any {
            break;
        }
    }
    let p = tmp("crowd.pcap");
    std::fs::write(&p, t.to_bytes()).expect("write");
    let (events, _, _) = run_files(&[p], 2);
    assert_eq!(seen(&events), expected("10.1.0.77"));
    assert_eq!(
        events.last().expect("stats")["stats"]["flows"]["total"],
        3002
    );
}

#[test]
fn segment_helper_is_consistent() {
    // The trace builder's frames decode back to the segments given.
    let c = Conn::new((ip("10.0.0.1"), 1), (ip("10.0.0.2"), 2), 1);
    let s = Segment {
        from_client: true,
        seq: 5,
        ack: 6,
        flags: 0x18,
        payload: b"abc".to_vec(),
    };
    let ip = ip_tcp(c.client, c.server, &s);
    assert_eq!(&ip[ip.len() - 3..], b"abc");
}

/// Noise around the workstation name (a trailing space, NULs, the
/// replacement character an unpaired surrogate decodes to, a zero-width
/// space, a machine account's `$`) does not hide it; the events keep the
/// value as the wire carried it.
#[test]
fn noise_around_a_name_does_not_hide_it() {
    for ws in [
        "WIN-J9D866ESIJ2 ",
        "WIN-J9D866ESIJ2\0\0",
        "WIN-J9D866ESIJ2\u{fffd}",
        "\u{200b}WIN-J9D866ESIJ2",
        "WIN-J9D866ESIJ2$",
    ] {
        let mut t = Trace::starting_at(1_700_000_000_000_000);
        let mut smb = Conn::new((ip("10.1.0.77"), 49812), (ip("10.1.0.5"), 445), 11);
        let trips = msg::smb2_logon(0x77, &NAMES, "CORP", "svc_backup", ws, 0);
        for f in flights(&mut smb, &trips, Delivery::Plain) {
            t.add(&smb, &f);
        }
        let p = tmp("noisy-name.pcap");
        std::fs::write(&p, t.to_bytes()).expect("write");
        let (events, _, _) = run_files(&[p], 1);
        let ntlm = of_type(&events, "ntlm");
        let wire = s(ntlm[0], "ntlm.client.workstation").unwrap_or_default();
        // NTLM strings end at a NUL; everything else is kept as sent.
        assert_eq!(wire, ws.trim_end_matches('\0'), "{ws:?}");
        let alerts: Vec<(String, String, String)> = of_type(&events, "alert")
            .iter()
            .map(|a| {
                (
                    s(a, "alert.hostname").unwrap_or_default(),
                    s(a, "alert.evidence").unwrap_or_default(),
                    s(a, "alert.list").unwrap_or_default(),
                )
            })
            .collect();
        assert_eq!(
            alerts,
            [(
                wire.clone(),
                "ntlm.client.workstation".to_string(),
                "vmmanager-defaults".to_string()
            )],
            "{ws:?}"
        );
    }
}

/// A server that sends an AUTHENTICATE naming a watched machine (in an SMB2
/// response, an HTTP `WWW-Authenticate`, or a plain download) must not get
/// that name pinned on its client: no alert, no host sighting at the
/// client's address.
#[test]
fn a_server_cannot_pin_a_name_on_its_client() {
    use base64::Engine;
    let auth = msg::ntlm_authenticate("CORP", "svc_backup", "WIN-J9D866ESIJ2", "cifs/x");
    let b64 = base64::engine::general_purpose::STANDARD.encode(&auth);
    let client = ip("10.1.0.66");
    let mut t = Trace::starting_at(1_700_000_000_000_000);
    // SMB2: a normal negotiate, then a session setup response carrying it.
    let (nreq, nresp) = msg::smb2_negotiate();
    let setup = msg::smb2_session_setup_request(1, 0, &msg::spnego_init(&msg::ntlm_negotiate()));
    let evil = msg::smb2_session_setup_response(1, 9, 0, &msg::spnego_resp(1, Some(&auth)));
    let http_req = b"GET /x HTTP/1.1\r\nHost: s\r\n\r\n".to_vec();
    let http_resp = format!(
        "HTTP/1.1 401 Unauthorized\r\nWWW-Authenticate: NTLM {b64}\r\nContent-Length: 0\r\n\r\n"
    )
    .into_bytes();
    let mut download = b"payload follows\n".to_vec();
    download.extend_from_slice(&auth);
    type Trips = Vec<(Vec<u8>, Vec<u8>)>;
    let cases: [(u16, Trips); 3] = [
        (445, vec![(nreq, nresp), (setup, evil)]),
        (80, vec![(http_req, http_resp)]),
        (5000, vec![(b"GET file\n".to_vec(), download)]),
    ];
    for (i, (port, trips)) in cases.into_iter().enumerate() {
        let mut c = Conn::new(
            (client, 50000 + i as u16),
            (ip("10.1.0.5"), port),
            20 + i as u32,
        );
        for f in flights(&mut c, &trips, Delivery::Plain) {
            t.add(&c, &f);
        }
    }
    let p = tmp("pinning.pcap");
    std::fs::write(&p, t.to_bytes()).expect("write");
    let (events, _, _) = run_files(&[p], 1);
    let alerts = of_type(&events, "alert");
    assert!(alerts.is_empty(), "{alerts:?}");
    let pinned: Vec<_> = of_type(&events, "inventory")
        .into_iter()
        .filter(|h| s(h, "inventory.name").as_deref() == Some("WIN-J9D866ESIJ2"))
        .collect();
    assert!(pinned.is_empty(), "{pinned:?}");
    // The SMB exchange is still reported, with the client's NEGOTIATE only.
    let ntlm = of_type(&events, "ntlm");
    assert_eq!(ntlm.len(), 1, "{ntlm:?}");
    assert_eq!(s(ntlm[0], "ntlm.carrier").as_deref(), Some("smb2"));
    assert!(ntlm[0]["ntlm"].get("client").is_none());
}

/// SMB2 compound chains: the AUTHENTICATE's SESSION_SETUP chained after an
/// ECHO in one NetBIOS message is still read (the server processes every
/// command of a chain).
#[test]
fn smb2_session_setup_inside_a_compound_chain() {
    // [ECHO][SESSION_SETUP] in one message: the ECHO takes the setup's
    // header with another command, NextCommand 72, and its 4-byte body.
    let chain = |nbss_setup: &[u8]| -> Vec<u8> {
        let setup = &nbss_setup[4..];
        let mut echo = setup[..64].to_vec();
        echo[12..14].copy_from_slice(&0x000du16.to_le_bytes());
        echo[20..24].copy_from_slice(&72u32.to_le_bytes());
        echo.extend_from_slice(&[4, 0, 0, 0, 0, 0, 0, 0]);
        let body = [echo, setup.to_vec()].concat();
        let mut out = (body.len() as u32).to_be_bytes().to_vec();
        out.extend(body);
        out
    };
    let mut trips = smb_trips();
    trips[2].0 = chain(&trips[2].0);
    let mut t = Trace::starting_at(1_700_000_000_000_000);
    let mut smb = Conn::new((ip("10.1.0.77"), 49812), (ip("10.1.0.5"), 445), 11);
    for f in flights(&mut smb, &trips, Delivery::Plain) {
        t.add(&smb, &f);
    }
    let got = run("compound.pcap", &t);
    let want = expected("10.1.0.77");
    assert_eq!(got.ntlm, want.ntlm);
    assert_eq!(
        got.alerts,
        [(
            "ntlm.client.workstation".to_string(),
            "10.1.0.77".to_string()
        )]
    );
}

/// HTTP as servers accept it: requests with bare LF line ends, tokens
/// without base64 padding, a 60 KB AUTHENTICATE, and a connection picked up
/// midstream on two high ports whose first packet is the server's 401.
#[test]
fn http_bare_lf_unpadded_large_tokens_and_a_midstream_401() {
    use base64::Engine;
    let std_b64 = |b: &[u8]| base64::engine::general_purpose::STANDARD.encode(b);
    let logon =
        || msg::http_ntlm_logon("/ews", &NAMES, "CORP", "svc_backup", "WIN-J9D866ESIJ2", 200);
    let requests_only = |f: &dyn Fn(&str) -> String| -> Vec<(Vec<u8>, Vec<u8>)> {
        logon()
            .into_iter()
            .map(|(c, s)| (f(&String::from_utf8_lossy(&c)).into_bytes(), s))
            .collect()
    };
    let bare_lf = requests_only(&|r| r.replace("\r\n", "\n"));
    let unpadded = requests_only(&|r| {
        r.lines()
            .map(|l| l.trim_end_matches('='))
            .collect::<Vec<_>>()
            .join("\r\n")
            + "\r\n"
    });
    assert!(logon()
        .iter()
        .any(|(c, _)| String::from_utf8_lossy(c).contains("=\r\n")));
    let mut big = logon();
    let mut auth = msg::ntlm_authenticate("CORP", "svc_backup", "WIN-J9D866ESIJ2", "HTTP/x");
    auth.resize(60_000, 0);
    big[1].0 = format!(
        "GET /ews HTTP/1.1\r\nHost: x\r\nAuthorization: NTLM {}\r\n\r\n",
        std_b64(&auth)
    )
    .into_bytes();
    let mut t = Trace::starting_at(1_700_000_000_000_000);
    for (i, trips) in [bare_lf, unpadded, big].into_iter().enumerate() {
        let mut c = Conn::new(
            (ip("10.1.0.77"), 49900 + i as u16),
            (ip("10.1.0.9"), 80),
            40 + i as u32,
        );
        for f in flights(&mut c, &trips, Delivery::Plain) {
            t.add(&c, &f);
        }
    }
    // Midstream, both ports high: the capture starts at the server's 401.
    let mut c = Conn::new((ip("10.1.0.78"), 50123), (ip("10.1.0.9"), 50180), 50);
    let fl = flights(&mut c, &logon(), Delivery::Plain);
    for f in &fl[2..] {
        t.add(&c, f);
    }
    let p = tmp("http-forms.pcap");
    std::fs::write(&p, t.to_bytes()).expect("write");
    let (events, _, _) = run_files(&[p], 1);
    let mut ntlm: Vec<(String, u64, String, String)> = of_type(&events, "ntlm")
        .iter()
        .map(|n| {
            (
                s(n, "src_ip").unwrap_or_default(),
                n["src_port"].as_u64().unwrap_or(0),
                s(n, "ntlm.client.workstation").unwrap_or_default(),
                s(n, "ntlm.result").unwrap_or_default(),
            )
        })
        .collect();
    ntlm.sort();
    let want: Vec<(String, u64, String, String)> = [
        ("10.1.0.77", 49900),
        ("10.1.0.77", 49901),
        ("10.1.0.77", 49902),
        ("10.1.0.78", 50123),
    ]
    .iter()
    .map(|(a, p)| {
        (
            a.to_string(),
            *p,
            "WIN-J9D866ESIJ2".to_string(),
            "success".to_string(),
        )
    })
    .collect();
    assert_eq!(ntlm, want);
    let alerts = of_type(&events, "alert")
        .iter()
        .filter(|a| a["alert"]["list"] == "vmmanager-defaults")
        .count();
    assert_eq!(alerts, 4);
}

/// A decoy fragment overlapping the real fragments of the AUTHENTICATE's
/// segment, then the segment retransmitted whole (the endpoint discarded
/// the overlapping datagram, so its sender sent again): the real name is
/// seen, not the decoy's bytes.
#[test]
fn an_overlapping_decoy_fragment_does_not_hide_the_retransmitted_segment() {
    let t = standard(Delivery::Plain, |_| {});
    let mut out = Trace::starting_at(t.now_us);
    let mut decoyed = false;
    for (ts, frame) in &t.frames {
        let is_auth = frame.windows(9).any(|w| w == b"NTLMSSP\0\x03");
        if !is_auth || decoyed {
            out.frames.push((*ts, frame.clone()));
            continue;
        }
        decoyed = true;
        let mut one = Trace::starting_at(*ts);
        one.frames.push((*ts, frame.clone()));
        let mut frags: Vec<Vec<u8>> = fragmented(&one, false)
            .frames
            .into_iter()
            .map(|(_, f)| f)
            .collect();
        frags.reverse(); // in offset order
        assert!(frags.len() > 3);
        // The decoy: everything from offset 24 to the end, other bytes, the
        // last fragment (it would complete the datagram with its bytes).
        let ihl = usize::from(frame[14] & 0x0f) * 4;
        let body_len = frame.len() - 14 - ihl;
        let mut decoy = frags[0][..14 + ihl].to_vec();
        decoy[14 + 2..14 + 4].copy_from_slice(&((ihl + body_len - 24) as u16).to_be_bytes());
        decoy[14 + 6..14 + 8].copy_from_slice(&3u16.to_be_bytes());
        decoy.extend(std::iter::repeat_n(b'A', body_len - 24));
        out.frames.push((*ts, frags[0].clone()));
        out.frames.push((*ts, decoy));
        for f in &frags[1..] {
            out.frames.push((*ts, f.clone()));
        }
        // The retransmission, whole.
        out.frames.push((*ts + 200_000, frame.clone()));
    }
    assert!(decoyed);
    let got = run("overlap-decoy.pcap", &out);
    assert_eq!(got, expected("10.1.0.77"));
}

/// One packet from an address that never completed a handshake (it may be
/// spoofed) still alerts, a sensor must not go blind midstream, but the
/// alert says that nothing answered; a real logon's alert says it did.
#[test]
fn an_unanswered_packet_alerts_but_says_so() {
    let trips = smb_trips();
    let mut t = Trace::starting_at(1_700_000_000_000_000);
    let mut c = Conn::new((ip("10.9.9.9"), 40001), (ip("10.1.0.5"), 445), 60);
    let fl = flights(&mut c, &trips, Delivery::Plain);
    // Only the client's AUTHENTICATE, alone: no SYN, nothing back.
    let auth_at = 1 + 2 * 2; // handshake, then (request, response) per trip
    t.add(&c, &fl[auth_at]);
    let mut real = Conn::new((ip("10.1.0.77"), 49812), (ip("10.1.0.5"), 445), 11);
    for f in flights(&mut real, &trips, Delivery::Plain) {
        t.add(&real, &f);
    }
    let p = tmp("lone-packet.pcap");
    std::fs::write(&p, t.to_bytes()).expect("write");
    let (events, _, _) = run_files(&[p], 1);
    let mut alerts: Vec<(String, bool)> = of_type(&events, "alert")
        .iter()
        .filter(|a| a["alert"]["list"] == "vmmanager-defaults")
        .map(|a| {
            (
                s(a, "src_ip").unwrap_or_default(),
                a["alert"]["handshake_seen"].as_bool().unwrap_or(true),
            )
        })
        .collect();
    alerts.sort();
    assert_eq!(
        alerts,
        [
            ("10.1.0.77".to_string(), true),
            ("10.9.9.9".to_string(), false)
        ]
    );
}

/// NTLM tokens inside mail (an SMTP DATA body and BDAT chunk, a POP3 RETR
/// answer, IMAP literals both ways) flag nobody: anyone can mail a victim.
/// A real `AUTH NTLM` after a body is still read.
#[test]
fn tokens_inside_mail_flag_nobody() {
    use base64::Engine;
    let b64 = |b: &[u8]| base64::engine::general_purpose::STANDARD.encode(b);
    let auth = b64(&msg::ntlm_authenticate(
        "CORP",
        "eve",
        "WIN-J9D866ESIJ2",
        "smtp/x",
    ));
    let chal = b64(&msg::ntlm_challenge(&NAMES, [1; 8]));
    let neg = b64(&msg::ntlm_negotiate());
    let body = format!("Subject: hi\r\n\r\nAUTH NTLM {auth}\r\n{auth}\r\n334 {chal}\r\n+ {chal}\r\na1 AUTHENTICATE NTLM\r\n");
    let lines = |v: &[&str]| v.concat().into_bytes();
    let smtp = vec![
        (Vec::new(), b"220 mx ESMTP\r\n".to_vec()),
        (
            b"EHLO a\r\n".to_vec(),
            b"250-mx\r\n250 AUTH NTLM\r\n".to_vec(),
        ),
        (lines(&["MAIL FROM:<a@b>\r\n"]), b"250 ok\r\n".to_vec()),
        (lines(&["RCPT TO:<v@c>\r\n"]), b"250 ok\r\n".to_vec()),
        (lines(&["DATA\r\n"]), b"354 go\r\n".to_vec()),
        (lines(&[&body, ".\r\n"]), b"250 queued\r\n".to_vec()),
        (
            format!("BDAT {} LAST\r\n{body}", body.len()).into_bytes(),
            b"250 ok\r\n".to_vec(),
        ),
    ];
    let pop3 = vec![
        (Vec::new(), b"+OK ready\r\n".to_vec()),
        (b"USER v\r\n".to_vec(), b"+OK\r\n".to_vec()),
        (b"PASS p\r\n".to_vec(), b"+OK\r\n".to_vec()),
        (
            b"RETR 1\r\n".to_vec(),
            format!("+OK 300 octets\r\n{body}.\r\n").into_bytes(),
        ),
    ];
    let imap = vec![
        (Vec::new(), b"* OK ready\r\n".to_vec()),
        (b"a1 LOGIN v p\r\n".to_vec(), b"a1 OK\r\n".to_vec()),
        (
            b"a2 FETCH 1 BODY[]\r\n".to_vec(),
            format!(
                "* 1 FETCH (BODY[] {{{}}}\r\n{body})\r\na2 OK\r\n",
                body.len()
            )
            .into_bytes(),
        ),
        (
            format!("a3 APPEND INBOX {{{}+}}\r\n{body}\r\n", body.len()).into_bytes(),
            b"a3 OK\r\n".to_vec(),
        ),
    ];
    // After a body, a real exchange from another workstation is read.
    let mut real = smtp.clone();
    real.push((
        format!("AUTH NTLM {neg}\r\n").into_bytes(),
        format!("334 {chal}\r\n").into_bytes(),
    ));
    let real_auth = b64(&msg::ntlm_authenticate(
        "CORP",
        "ann",
        "DESKTOP-REAL001",
        "smtp/x",
    ));
    real.push((
        format!("{real_auth}\r\n").into_bytes(),
        b"235 ok\r\n".to_vec(),
    ));
    let mut t = Trace::starting_at(1_700_000_000_000_000);
    for (i, (port, trips)) in [(25, smtp), (110, pop3), (143, imap), (587, real)]
        .into_iter()
        .enumerate()
    {
        let mut c = Conn::new(
            (ip("10.1.0.50"), 41000 + i as u16),
            (ip("10.1.0.2"), port),
            70 + i as u32,
        );
        for f in flights(&mut c, &trips, Delivery::Plain) {
            t.add(&c, &f);
        }
    }
    let p = tmp("mail-bodies.pcap");
    std::fs::write(&p, t.to_bytes()).expect("write");
    let (events, _, _) = run_files(&[p], 1);
    let ntlm: Vec<(String, String, String)> = of_type(&events, "ntlm")
        .iter()
        .map(|n| {
            (
                s(n, "ntlm.carrier").unwrap_or_default(),
                s(n, "ntlm.client.workstation").unwrap_or_default(),
                s(n, "ntlm.result").unwrap_or_default(),
            )
        })
        .collect();
    assert_eq!(
        ntlm,
        [(
            "smtp".to_string(),
            "DESKTOP-REAL001".to_string(),
            "success".to_string()
        )]
    );
    let alerts: Vec<String> = of_type(&events, "alert")
        .iter()
        .map(|a| s(a, "alert.hostname").unwrap_or_default())
        .collect();
    assert!(alerts.iter().all(|h| h != "WIN-J9D866ESIJ2"), "{alerts:?}");
}

/// An LDAP connection that starts with a search whose filter value holds
/// NTLMSSP bytes is LDAP: the value is not searched as raw bytes.
#[test]
fn an_ldap_search_filter_value_flags_nobody() {
    let tlv = |tag: u8, v: &[u8]| {
        let mut o = vec![tag, 0x82];
        o.extend_from_slice(&(v.len() as u16).to_be_bytes());
        o.extend_from_slice(v);
        o
    };
    let auth = msg::ntlm_authenticate("CORP", "eve", "WIN-J9D866ESIJ2", "ldap/x");
    // searchRequest: base, scope, deref, limits, typesOnly, an equality
    // filter (description = <the message bytes>), no attributes.
    let filter = tlv(
        0xa3,
        &[tlv(0x04, b"description"), tlv(0x04, &auth)].concat(),
    );
    let search = tlv(
        0x63,
        &[
            tlv(0x04, b"dc=corp,dc=example"),
            vec![0x0a, 1, 2, 0x0a, 1, 0, 0x02, 1, 0, 0x02, 1, 0, 0x01, 1, 0],
            filter,
            tlv(0x30, b""),
        ]
        .concat(),
    );
    let request = tlv(0x30, &[vec![0x02, 1, 5], search].concat());
    let done = vec![
        0x30, 0x0c, 0x02, 0x01, 0x05, 0x65, 0x07, 0x0a, 0x01, 0x00, 0x04, 0x00, 0x04, 0x00,
    ];
    let mut t = Trace::starting_at(1_700_000_000_000_000);
    let mut c = Conn::new((ip("10.1.0.51"), 42000), (ip("10.1.0.3"), 389), 80);
    for f in flights(&mut c, &[(request, done)], Delivery::Plain) {
        t.add(&c, &f);
    }
    let p = tmp("ldap-search.pcap");
    std::fs::write(&p, t.to_bytes()).expect("write");
    let (events, _, _) = run_files(&[p], 1);
    assert!(of_type(&events, "ntlm").is_empty(), "{events:?}");
    assert!(of_type(&events, "alert").is_empty());
}

/// A watched name in a certificate further up the server's chain, or in
/// the client's certificate of a mutual TLS handshake, alerts (the client's
/// with role client).
#[test]
fn watched_names_in_the_chain_and_the_client_certificate() {
    let der = |f: &str| std::fs::read(common::fixture(&format!("unit/{f}"))).expect("certificate");
    let (leaf, ca, client) = (
        der("leaf-mail-example-org.der"),
        der("ca-win-j9d866esij2.der"),
        der("client-win-livfrvqfmko.der"),
    );
    let u24 = |n: usize| [(n >> 16) as u8, (n >> 8) as u8, n as u8];
    let hs = |typ: u8, body: &[u8]| [&[typ][..], &u24(body.len()), body].concat();
    let record =
        |body: &[u8]| [&[22u8, 3, 3][..], &(body.len() as u16).to_be_bytes(), body].concat();
    let certificate = |chain: &[&[u8]]| {
        let list: Vec<u8> = chain
            .iter()
            .flat_map(|c| [&u24(c.len())[..], c].concat())
            .collect();
        hs(11, &[&u24(list.len())[..], &list].concat())
    };
    let mut hello = vec![3, 3];
    hello.extend_from_slice(&[0x42; 32]);
    hello.extend_from_slice(&[0, 0, 2, 0xc0, 0x2f, 1, 0, 0, 0]);
    let mut server_hello = vec![3, 3];
    server_hello.extend_from_slice(&[0x24; 32]);
    server_hello.extend_from_slice(&[0, 0xc0, 0x2f, 0, 0, 0]);
    let server_flight = record(
        &[
            hs(2, &server_hello),
            certificate(&[&leaf, &ca]),
            hs(13, &[1, 1, 0, 0, 0, 0]),
            hs(14, &[]),
        ]
        .concat(),
    );
    let client_flight = record(&[certificate(&[&client]), hs(16, &[0, 2, 9, 9])].concat());
    let trips = vec![
        (record(&hs(1, &hello)), server_flight),
        (client_flight, b"\x14\x03\x03\x00\x01\x01".to_vec()),
    ];
    let mut t = Trace::starting_at(1_700_000_000_000_000);
    let mut c = Conn::new((ip("10.1.0.52"), 43000), (ip("10.1.0.4"), 443), 90);
    for f in flights(&mut c, &trips, Delivery::Plain) {
        t.add(&c, &f);
    }
    let p = tmp("tls-chain.pcap");
    std::fs::write(&p, t.to_bytes()).expect("write");
    let (events, _, _) = run_files(&[p], 1);
    let mut alerts: Vec<(String, String, String)> = of_type(&events, "alert")
        .iter()
        .filter(|a| a["alert"]["list"] == "vmmanager-defaults")
        .map(|a| {
            (
                s(a, "alert.hostname").unwrap_or_default(),
                s(a, "alert.role").unwrap_or_default(),
                s(a, "alert.evidence").unwrap_or_default(),
            )
        })
        .collect();
    alerts.sort();
    let want: Vec<(String, String, String)> = [
        (
            "WIN-J9D866ESIJ2",
            "server",
            "tls.certificate_chain.subject_cn",
        ),
        ("WIN-LIVFRVQFMKO", "client", "tls.client.subject_cn"),
    ]
    .iter()
    .map(|(a, b, c)| (a.to_string(), b.to_string(), c.to_string()))
    .collect();
    assert_eq!(alerts, want);
    let tls = of_type(&events, "tls");
    assert_eq!(tls.len(), 1);
    assert_eq!(
        s(tls[0], "tls.subject_cn").as_deref(),
        Some("mail.example.org")
    );
    assert_eq!(tls[0]["tls"]["chain_length"], 2);
    // EVE's forms: the subject and issuer DNs, upper-case serial, SHA-1
    // fingerprint in lower-case pairs, the DER in base64, the chain too.
    assert_eq!(
        s(tls[0], "tls.subject").as_deref(),
        Some("CN=mail.example.org")
    );
    let fingerprint = s(tls[0], "tls.fingerprint").unwrap_or_default();
    assert_eq!(
        (fingerprint.len(), fingerprint.matches(':').count()),
        (59, 19)
    );
    assert_eq!(fingerprint, fingerprint.to_lowercase());
    let der = s(tls[0], "tls.certificate").unwrap_or_default();
    assert!(der.starts_with("MII"), "{der}");
    assert_eq!(tls[0]["tls"]["chain"].as_array().map(Vec::len), Some(1));
    assert_eq!(
        s(tls[0], "tls.client.subject_cn").as_deref(),
        Some("WIN-LIVFRVQFMKO")
    );
}

/// RSTs an endpoint would ignore (in the window but off the next sequence
/// number, or spoofed from the server's side) do not end the analysis
/// before the AUTHENTICATE.
#[test]
fn blind_rsts_do_not_end_the_analysis() {
    let mut t = Trace::starting_at(1_700_000_000_000_000);
    let mut smb = Conn::new((ip("10.1.0.77"), 49812), (ip("10.1.0.5"), 445), 11);
    let fl = flights(&mut smb, &smb_trips(), Delivery::Plain);
    let auth_at = 1 + 2 * 2;
    for (i, f) in fl.iter().enumerate() {
        if i == auth_at {
            let first = &f[0];
            for (from_client, seq) in [(true, first.seq.wrapping_add(1000)), (false, 12345)] {
                let rst = Segment {
                    from_client,
                    seq,
                    ack: 0,
                    flags: 0x04,
                    payload: Vec::new(),
                };
                t.add(&smb, &[rst]);
            }
        }
        t.add(&smb, f);
    }
    let got = run("blind-rst.pcap", &t);
    assert_eq!(got.ntlm, expected("10.1.0.77").ntlm);
    assert_eq!(
        got.alerts,
        [(
            "ntlm.client.workstation".to_string(),
            "10.1.0.77".to_string()
        )]
    );
}

/// The AUTHENTICATE segment of `smb_trips` delivered plainly, and a copy
/// naming DESKTOP-AAAAAAA instead.
fn auth_and_decoy(fl: &[Vec<Segment>]) -> (Segment, Segment) {
    let auth = fl[5][0].clone();
    let mut decoy = auth.clone();
    let utf16 = |n: &str| -> Vec<u8> { n.encode_utf16().flat_map(u16::to_le_bytes).collect() };
    let pos = decoy
        .payload
        .windows(30)
        .position(|w| w == utf16("WIN-J9D866ESIJ2"))
        .expect("name in AUTHENTICATE");
    decoy.payload[pos..pos + 30].copy_from_slice(&utf16("DESKTOP-AAAAAAA"));
    (auth, decoy)
}

/// An SMB logon whose AUTHENTICATE is preceded by a decoy frame made by
/// `decoy` (which gets the connection and the forged segment).
fn smb_with_decoy(decoy: impl Fn(&Conn, &Segment) -> Vec<u8>) -> Trace {
    let mut t = Trace::starting_at(1_700_000_000_000_000);
    let mut c = Conn::new((ip("10.1.0.77"), 49812), (ip("10.1.0.5"), 445), 11);
    c.mss = 4000;
    let fl = flights(&mut c, &smb_trips(), Delivery::Plain);
    let (_, forged) = auth_and_decoy(&fl);
    for (i, f) in fl.iter().enumerate() {
        if i == 5 {
            t.advance(150);
            t.frames.push((t.now_us, decoy(&c, &forged)));
        }
        t.add(&c, f);
    }
    t
}

/// Offsets in a synthetic IPv4 frame (Ethernet, no tags).
const IP_CHECKSUM: usize = 14 + 10;
const TCP_CHECKSUM: usize = 14 + 20 + 16;
const TCP_FLAGS: usize = 14 + 20 + 13;

/// Rewrites the TCP checksum of a synthetic IPv4 frame after an edit.
fn fix_tcp_checksum(f: &mut [u8]) {
    use hostwatch::decode::checksum::pseudo_header;
    f[TCP_CHECKSUM..TCP_CHECKSUM + 2].copy_from_slice(&[0, 0]);
    let tcp = &f[34..];
    let pseudo = pseudo_header(ip("10.1.0.77"), ip("10.1.0.5"), 6, tcp.len());
    let sum = !fold(add(pseudo, tcp));
    f[TCP_CHECKSUM..TCP_CHECKSUM + 2].copy_from_slice(&sum.to_be_bytes());
}

fn smb_seen(events: &[serde_json::Value]) -> (Vec<NtlmSeen>, Vec<(String, String)>) {
    let got = seen(events);
    (got.ntlm, got.alerts)
}

fn smb_expected() -> (Vec<NtlmSeen>, Vec<(String, String)>) {
    (
        expected("10.1.0.77").ntlm,
        vec![("ntlm.client.workstation".into(), "10.1.0.77".into())],
    )
}

/// Decoys an endpoint drops before they reach its TCP stream: a bad TCP
/// checksum, a bad IPv4 header checksum, no ACK flag. Each comes before the
/// real AUTHENTICATE at its sequence number; the real one must win, and the
/// drop is counted.
#[test]
fn decoys_an_endpoint_drops_do_not_hide_the_real_authenticate() {
    type Make = fn(&Conn, &Segment) -> Vec<u8>;
    let cases: [(&str, Make, &str); 3] = [
        (
            "bad-tcp-checksum",
            |c, s| {
                let mut f = c.frame(s);
                f[TCP_CHECKSUM] ^= 0x5a;
                f
            },
            "flows.bad_checksum",
        ),
        (
            "bad-ip-checksum",
            |c, s| {
                let mut f = c.frame(s);
                f[IP_CHECKSUM] ^= 0x5a;
                f
            },
            "flows.bad_checksum",
        ),
        (
            "no-ack",
            |c, s| {
                let mut f = c.frame(s);
                f[TCP_FLAGS] = 0x08; // PSH alone
                fix_tcp_checksum(&mut f);
                f
            },
            "flows.not_accepted",
        ),
    ];
    for (name, make, counter) in cases {
        let p = tmp(&format!("decoy-{name}.pcap"));
        std::fs::write(&p, smb_with_decoy(make).to_bytes()).expect("write");
        let (events, _, _) = run_files(&[p], 1);
        assert_eq!(smb_seen(&events), smb_expected(), "{name}");
        let stats = &events.last().expect("stats")["stats"];
        let (obj, field) = counter.split_once('.').expect("path");
        assert_eq!(stats[obj][field], 1, "{name}: {counter}");
        assert_eq!(stats["reassembly"]["conflicting_overlaps"], 0, "{name}");
    }
}

/// Data on a SYN without a Fast Open cookie is not delivered by the
/// receiver: a forged client stream riding on the SYN must not win over
/// the real one sent after the handshake.
#[test]
fn data_riding_on_the_syn_is_not_delivered() {
    let mut t = Trace::starting_at(1_700_000_000_000_000);
    let mut c = Conn::new((ip("10.1.0.77"), 49812), (ip("10.1.0.5"), 445), 11);
    c.mss = 4000;
    let mut fl = flights(&mut c, &smb_trips(), Delivery::Plain);
    let (_, forged) = auth_and_decoy(&fl);
    // The whole client stream, its AUTHENTICATE forged, on the SYN.
    let mut stream = Vec::new();
    for (i, f) in fl.iter().enumerate().skip(1).step_by(2) {
        for s in f.iter().filter(|s| s.from_client) {
            if i == 5 {
                stream.extend_from_slice(&forged.payload);
            } else {
                stream.extend_from_slice(&s.payload);
            }
        }
    }
    fl[0][0].payload = stream;
    for f in &fl {
        t.add(&c, f);
    }
    let p = tmp("syn-data.pcap");
    std::fs::write(&p, t.to_bytes()).expect("write");
    let (events, _, _) = run_files(&[p], 1);
    assert_eq!(smb_seen(&events), smb_expected());
    assert_eq!(
        events.last().expect("stats")["stats"]["flows"]["not_accepted"],
        1
    );
}

/// A capture taken on the client itself: its card fills in the checksums,
/// so every segment it sends carries only the pseudo-header's sum (or
/// zero). Everything is still seen in auto mode; verify mode drops those
/// segments; and an unfilled decoy after the client's correct SYN is a
/// decoy all the same.
#[test]
fn checksums_left_to_the_card_are_taken_but_not_from_a_stack_that_filled_them() {
    use hostwatch::decode::checksum::{pseudo_header, Mode};
    let unfill = |f: &mut Vec<u8>, zero: bool| {
        let tcp_len = f.len() - 34;
        let pseudo = pseudo_header(ip("10.1.0.77"), ip("10.1.0.5"), 6, tcp_len);
        let v = if zero { 0 } else { fold(pseudo) };
        f[TCP_CHECKSUM..TCP_CHECKSUM + 2].copy_from_slice(&v.to_be_bytes());
    };
    // Every client frame unfilled (the odd ones zero).
    let mut t = Trace::starting_at(1_700_000_000_000_000);
    let mut c = Conn::new((ip("10.1.0.77"), 49812), (ip("10.1.0.5"), 445), 11);
    let fl = flights(&mut c, &smb_trips(), Delivery::Plain);
    let mut n = 0;
    for f in &fl {
        for s in f {
            t.advance(150);
            let mut frame = c.frame(s);
            if s.from_client {
                unfill(&mut frame, n % 2 == 1);
                n += 1;
            }
            t.frames.push((t.now_us, frame));
        }
    }
    let p = tmp("offloaded.pcap");
    std::fs::write(&p, t.to_bytes()).expect("write");
    let run_mode = |mode: Mode| {
        run_config(hostwatch::pipeline::Config {
            inputs: vec![hostwatch::pipeline::Input::File(p.display().to_string())],
            checksums: mode,
            ..Default::default()
        })
        .0
    };
    let auto = run_mode(Mode::Auto);
    assert_eq!(smb_seen(&auto), smb_expected());
    let stats = &auto.last().expect("stats")["stats"];
    // All but the client's FIN, which comes after the analysis ended (a
    // bypassed connection's checksums are not judged).
    assert_eq!(stats["flows"]["unfilled_checksum"], n - 1);
    assert_eq!(stats["flows"]["bad_checksum"], 0);
    assert_eq!(stats["checksums"]["mode"], "auto");
    // Verifying, the client's segments are dropped: only the server's
    // CHALLENGE is left.
    let verify = run_mode(Mode::Verify);
    let server_only = (
        None,
        None,
        Some("FILESRV01".to_string()),
        Some("unknown".to_string()),
    );
    assert_eq!(smb_seen(&verify), (vec![server_only], vec![]));
    assert_eq!(
        verify.last().expect("stats")["stats"]["flows"]["bad_checksum"],
        n
    );
    assert_eq!(smb_seen(&run_mode(Mode::Ignore)), smb_expected());

    // The client's stack filled in its SYN's checksum: an unfilled decoy
    // later in the connection is dropped.
    let decoyed = smb_with_decoy(|c, s| {
        let mut f = c.frame(s);
        unfill(&mut f, false);
        f
    });
    let p = tmp("unfilled-decoy.pcap");
    std::fs::write(&p, decoyed.to_bytes()).expect("write");
    let (events, _, _) = run_files(&[p], 1);
    assert_eq!(smb_seen(&events), smb_expected());
    assert_eq!(
        events.last().expect("stats")["stats"]["flows"]["bad_checksum"],
        1
    );
}

/// A blind sender spoofs an innocent host: a SYN "from" it, the server's
/// SYN-ACK goes to the real host (the attacker never sees its sequence
/// number), then the SMB logon's requests with a guessed acknowledgment,
/// each answered by the server's RST at that number. The server drops
/// every one of them (RFC 5961 5.2), and so does hostwatch: no alert, no
/// sighting, no NTLM record; `flows.bad_ack` counts them. The same
/// requests with the right acknowledgment (the host's real logon) alert.
#[test]
fn a_blind_spoofer_cannot_pin_a_name_on_an_innocent_host() {
    let build = |guessed: bool| -> Trace {
        let mut t = Trace::starting_at(1_700_000_000_000_000);
        let mut c = Conn::new((ip("10.1.0.50"), 50000), (ip("10.1.0.5"), 445), 61);
        let open = c.open();
        t.add(&c, &open[..2]);
        for (req, _) in smb_trips() {
            let mut segs = c.send(true, &req);
            for s in &mut segs {
                if guessed {
                    s.ack = s.ack.wrapping_add(0x4000_0000);
                }
            }
            t.add(&c, &segs);
            if guessed {
                let rst = Segment {
                    from_client: false,
                    seq: segs[0].ack,
                    ack: 0,
                    flags: hostwatch::decode::tcp_flags::RST,
                    payload: Vec::new(),
                };
                t.add(&c, &[rst]);
            }
        }
        t
    };
    let p = tmp("blind-spoof.pcap");
    std::fs::write(&p, build(true).to_bytes()).expect("write");
    let (events, _, _) = run_files(std::slice::from_ref(&p), 1);
    assert!(of_type(&events, "alert").is_empty(), "{events:?}");
    assert!(of_type(&events, "ntlm").is_empty());
    assert!(of_type(&events, "inventory").is_empty());
    let stats = of_type(&events, "stats");
    let flows = &stats[0]["stats"]["flows"];
    let requests: usize = smb_trips()
        .iter()
        .map(|(req, _)| req.len().div_ceil(1460))
        .sum();
    assert_eq!(flows["bad_ack"].as_u64(), Some(requests as u64));
    assert_eq!(flows["rst_ignored"].as_u64(), Some(3));

    // The acknowledgment the real host would send: its logon is seen
    // (the server's answers are left out; the requests alone name it).
    std::fs::write(&p, build(false).to_bytes()).expect("write");
    let (events, _, _) = run_files(&[p], 1);
    let alerts: Vec<String> = of_type(&events, "alert")
        .iter()
        .map(|a| {
            format!(
                "{} {}",
                s(a, "src_ip").unwrap_or_default(),
                s(a, "alert.hostname").unwrap_or_default()
            )
        })
        .collect();
    assert_eq!(alerts, ["10.1.0.50 WIN-J9D866ESIJ2"]);
    let stats = of_type(&events, "stats");
    assert_eq!(stats[0]["stats"]["flows"]["bad_ack"].as_u64(), Some(0));
}

/// The same spoofer without the SYN: segments "from" an innocent host
/// with any ACK, picked up midstream, are read (a capture started late
/// looks the same), but the server's RSTs are no answer: the alert says
/// no handshake was seen, weighs nothing the packets say (the name alone:
/// medium), and no host sighting puts the name on the innocent address.
/// The real client's logon, after a three-way handshake whose numbers
/// agree, says so, and its build (not the template's) weighs: low.
#[test]
fn a_midstream_spoofer_answered_by_rsts_gets_no_handshake_nor_sighting() {
    let mut t = Trace::starting_at(1_700_000_000_000_000);
    let mut c = Conn::new((ip("10.1.0.50"), 50000), (ip("10.1.0.5"), 445), 61);
    let _ = c.open();
    // The requests in one burst, each answered by a RST (a host without
    // such a connection resets with the segment's ACK as its sequence
    // number, RFC 9293 3.10.7.1) that arrives after the burst.
    let mut rsts = Vec::new();
    for (req, _) in smb_trips() {
        let segs = c.send(true, &req);
        t.add(&c, &segs);
        rsts.push(Segment {
            from_client: false,
            seq: segs[0].ack,
            ack: 0,
            flags: hostwatch::decode::tcp_flags::RST,
            payload: Vec::new(),
        });
    }
    t.add(&c, &rsts);
    let mut real = Conn::new((ip("10.1.0.77"), 49812), (ip("10.1.0.5"), 445), 11);
    for f in flights(&mut real, &smb_trips(), Delivery::Plain) {
        t.add(&real, &f);
    }
    let p = tmp("midstream-spoof.pcap");
    std::fs::write(&p, t.to_bytes()).expect("write");
    let (events, _, _) = run_files(&[p], 1);
    let mut alerts: Vec<(String, bool, String)> = of_type(&events, "alert")
        .iter()
        .map(|a| {
            (
                s(a, "src_ip").unwrap_or_default(),
                a["alert"]["handshake_seen"].as_bool().unwrap_or(true),
                s(a, "alert.confidence").unwrap_or_default(),
            )
        })
        .collect();
    alerts.sort();
    assert_eq!(
        alerts,
        [
            ("10.1.0.50".to_string(), false, "medium".to_string()),
            ("10.1.0.77".to_string(), true, "low".to_string()),
        ]
    );
    let sightings: Vec<String> = of_type(&events, "inventory")
        .iter()
        .map(|h| s(h, "inventory.ip").unwrap_or_default())
        .collect();
    assert_eq!(sightings, ["10.1.0.77", "10.1.0.5", "10.1.0.5"]);
    let spoofed = of_type(&events, "alert")
        .into_iter()
        .find(|a| a["src_ip"] == "10.1.0.50")
        .expect("the spoofed alert");
    assert!(spoofed["alert"]["corroboration"]
        .as_array()
        .expect("lines")
        .iter()
        .all(|l| l
            .as_str()
            .unwrap_or("")
            .ends_with("(not weighed: nobody answered)")));
}

/// A capture whose AUTHENTICATE segment had its checksum broken after the
/// fact (edited, re-addressed): the server's answer acknowledges it, so
/// the server took it, and so does hostwatch (`checksums.vouched_tcp`).
/// Cut the capture before that answer and nothing vouches for it: dropped,
/// as before. A decoy with a broken checksum followed by the real segment
/// is never delivered (`decoys_an_endpoint_drops_...`).
#[test]
fn a_broken_checksum_the_receiver_acknowledged_is_taken() {
    let build = |answered: bool| -> Trace {
        let mut t = Trace::starting_at(1_700_000_000_000_000);
        let mut c = Conn::new((ip("10.1.0.77"), 49812), (ip("10.1.0.5"), 445), 11);
        c.mss = 4000;
        let fl = flights(&mut c, &smb_trips(), Delivery::Plain);
        let auth_at = 1 + 2 * 2;
        for (i, f) in fl.iter().enumerate() {
            if i > auth_at && !answered {
                break;
            }
            let first = t.frames.len();
            t.add(&c, f);
            if i == auth_at {
                assert_eq!(t.frames.len(), first + 1, "one AUTHENTICATE segment");
                t.frames[first].1[TCP_CHECKSUM] ^= 0x5a;
            }
        }
        t
    };
    let p = tmp("vouched.pcap");
    std::fs::write(&p, build(true).to_bytes()).expect("write");
    let (events, _, _) = run_files(std::slice::from_ref(&p), 1);
    assert_eq!(smb_seen(&events), smb_expected());
    let stats = &events.last().expect("stats")["stats"];
    assert_eq!(stats["checksums"]["bad_tcp"], 1);
    assert_eq!(stats["checksums"]["vouched_tcp"], 1);
    // Vouched for: the connection lost nothing.
    assert_eq!(stats["checksums"]["bad_tcp_connections"], 0);

    std::fs::write(&p, build(false).to_bytes()).expect("write");
    let (events, _, _) = run_files(&[p], 1);
    let users: Vec<String> = of_type(&events, "ntlm")
        .iter()
        .filter_map(|e| s(e, "ntlm.client.user"))
        .collect();
    assert!(users.is_empty(), "{users:?}");
    assert!(of_type(&events, "alert").is_empty());
    let stats = &events.last().expect("stats")["stats"];
    assert_eq!(stats["checksums"]["bad_tcp"], 1);
    assert_eq!(stats["checksums"]["vouched_tcp"], 0);
    assert_eq!(stats["checksums"]["bad_tcp_connections"], 1);
}
