//! NetBIOS name service conformance: every message tshark decodes in the
//! captures of fixtures/nbns (Samba's nmbd and nmblookup recorded by
//! scripts/capture-nbns.sh; real Windows 10 traffic from Suricata's test
//! suite; Arkime's synthetic capture) is checked against hostwatch's `nbns`
//! events: transaction ids, opcodes, questions, every registered and
//! answered name with its address, node status names and retransmission
//! counts, on the right endpoints; and nothing hostwatch reports is
//! missing from tshark's view.

mod common;

use std::collections::BTreeMap;

use common::{fixture, of_type, run_file};
use serde_json::Value;

/// One message as tshark decoded it.
#[derive(Debug)]
struct Msg {
    frame: u64,
    src: String,
    sport: u16,
    dst: String,
    dport: u16,
    id: u16,
    response: bool,
    opcode: u8,
    broadcast: bool,
    /// `NAME<xx>` of the question or of each record, lower-cased suffix.
    names: Vec<String>,
    addrs: Vec<String>,
    node_names: Vec<(String, bool)>,
    unit_id: Option<String>,
    questions: usize,
}

fn field<'a>(l: &'a Value, k: &str) -> Vec<&'a str> {
    l[k].as_array()
        .map(|a| a.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default()
}

fn first(l: &Value, k: &str) -> String {
    field(l, k)
        .first()
        .map(|s| s.to_string())
        .unwrap_or_default()
}

/// tshark's `NAME<20> (Server service)` as `NAME<20>`; the node status
/// wildcard, which tshark prints with its 14 NUL pads, as `*<00>`.
fn bare(name: &str) -> String {
    let n = name.split(" (").next().unwrap_or(name);
    if let (Some(rest), Some(i)) = (n.strip_prefix('*'), n.rfind('<')) {
        if rest.len() == 15 * 4 {
            return format!("*{}", n[i..].to_ascii_lowercase());
        }
    }
    match n.rfind('<') {
        Some(i) => format!("{}{}", &n[..i], n[i..].to_ascii_lowercase()),
        None => n.to_string(),
    }
}

fn tshark(file: &str) -> Vec<Msg> {
    let text = std::fs::read_to_string(fixture(&format!("nbns/{file}"))).expect("oracle");
    let all: Vec<Value> = serde_json::from_str(&text).expect("tshark json");
    all.iter()
        .map(|p| {
            let l = &p["_source"]["layers"];
            let num = |k: &str| first(l, k).parse::<u64>().unwrap_or(0);
            let id = u16::from_str_radix(first(l, "nbns.id").trim_start_matches("0x"), 16)
                .expect("transaction id");
            let groups = field(l, "nbns.name_flags.group");
            Msg {
                frame: num("frame.number"),
                src: first(l, "ip.src"),
                sport: num("udp.srcport") as u16,
                dst: first(l, "ip.dst"),
                dport: num("udp.dstport") as u16,
                id,
                response: first(l, "nbns.flags.response") == "1",
                opcode: num("nbns.flags.opcode") as u8,
                broadcast: first(l, "nbns.flags.broadcast") == "1",
                names: field(l, "nbns.name").into_iter().map(bare).collect(),
                addrs: field(l, "nbns.addr")
                    .into_iter()
                    .map(str::to_owned)
                    .collect(),
                node_names: field(l, "nbns.netbios_name")
                    .into_iter()
                    .zip(groups.iter().chain(std::iter::repeat(&"0")))
                    .map(|(n, g)| (n.to_string(), *g == "1"))
                    .collect(),
                unit_id: field(l, "nbns.unit_id").first().map(|s| s.to_string()),
                questions: num("nbns.count.queries") as usize,
            }
        })
        .collect()
}

fn opcode_name(op: u8) -> &'static str {
    match op {
        0 => "query",
        5 => "registration",
        6 => "release",
        7 => "wack",
        8 | 9 => "refresh",
        15 => "multihomed_registration",
        _ => "unknown",
    }
}

/// `name<xx>` of an event's entry.
fn label(v: &Value) -> String {
    format!(
        "{}{}",
        v["name"].as_str().unwrap_or(""),
        v["suffix"].as_str().unwrap_or("").to_ascii_lowercase()
    )
}

/// Whether the event's endpoints are the message's, in either direction.
fn same_endpoints(e: &Value, m: &Msg) -> bool {
    let a = (
        e["src_ip"].as_str().unwrap_or(""),
        e["src_port"].as_u64().unwrap_or(0),
    );
    let b = (
        e["dest_ip"].as_str().unwrap_or(""),
        e["dest_port"].as_u64().unwrap_or(0),
    );
    let s = (m.src.as_str(), u64::from(m.sport));
    let d = (m.dst.as_str(), u64::from(m.dport));
    (a, b) == (s, d) || (a, b) == (d, s)
}

fn check(capture: &str, oracle: &str) -> usize {
    let events = run_file(&fixture(capture));
    let nbns: Vec<&Value> = of_type(&events, "nbns");
    let msgs = tshark(oracle);
    assert!(!msgs.is_empty(), "{oracle}: no messages");
    let mut failures = Vec::new();
    let mut checked = 0;
    // Copies of each request (same endpoints, same id).
    let mut copies: BTreeMap<(String, u16, String, u16, u16), usize> = BTreeMap::new();
    for m in msgs.iter().filter(|m| !m.response) {
        *copies
            .entry((m.src.clone(), m.sport, m.dst.clone(), m.dport, m.id))
            .or_default() += 1;
    }
    for m in &msgs {
        let ctx = format!("{capture} frame {}", m.frame);
        let candidates: Vec<&&Value> = nbns
            .iter()
            .filter(|e| e["nbns"]["transaction_id"].as_u64() == Some(u64::from(m.id)))
            .filter(|e| same_endpoints(e, m))
            .collect();
        let Some(e) = candidates
            .iter()
            .find(|e| !m.response || e["nbns"]["answered"] == true)
            .map(|e| &e["nbns"])
        else {
            failures.push(format!("{ctx}: no nbns event for transaction {}", m.id));
            continue;
        };
        let mut expect = |what: &str, want: String, got: String| {
            checked += 1;
            if want != got {
                failures.push(format!("{ctx}: {what}: tshark {want:?}, hostwatch {got:?}"));
            }
        };
        expect(
            "opcode",
            opcode_name(m.opcode).into(),
            e["opcode"].as_str().unwrap_or("").into(),
        );
        if m.response {
            let names: Vec<&Value> = e["names"]
                .as_array()
                .map(|a| a.iter().filter(|n| n["source"] != "request").collect())
                .unwrap_or_default();
            if m.node_names.is_empty() {
                // Positive answers: each address with the record's name.
                let got: Vec<String> = names
                    .iter()
                    .map(|n| format!("{}={}", label(n), n["address"].as_str().unwrap_or("")))
                    .collect();
                let want: Vec<String> = m
                    .addrs
                    .iter()
                    .map(|a| format!("{}={a}", m.names.first().cloned().unwrap_or_default()))
                    .collect();
                expect("answers", want.join(","), got.join(","));
            } else {
                let got: Vec<(String, bool)> = names
                    .iter()
                    .map(|n| {
                        (
                            n["name"].as_str().unwrap_or("").to_string(),
                            n["group"] == true,
                        )
                    })
                    .collect();
                expect(
                    "node status names",
                    format!("{:?}", m.node_names),
                    format!("{got:?}"),
                );
                let zero = Some("00:00:00:00:00:00".to_string());
                let want = m.unit_id.clone().filter(|u| Some(u) != zero.as_ref());
                expect(
                    "unit id",
                    format!("{want:?}"),
                    format!("{:?}", e["mac"].as_str().map(str::to_owned)),
                );
            }
        } else {
            expect(
                "broadcast",
                m.broadcast.to_string(),
                (e["broadcast"] == true).to_string(),
            );
            if m.questions > 0 {
                let q = &e["query"];
                expect(
                    "question",
                    m.names.first().cloned().unwrap_or_default(),
                    label(q),
                );
            }
            if let Some(addr) = m.addrs.first() {
                let own: Vec<String> = e["names"]
                    .as_array()
                    .map(|a| {
                        a.iter()
                            .filter(|n| n["source"] == "request")
                            .map(|n| {
                                format!("{}={}", label(n), n["address"].as_str().unwrap_or(""))
                            })
                            .collect()
                    })
                    .unwrap_or_default();
                let name = m
                    .names
                    .get(1)
                    .or(m.names.first())
                    .cloned()
                    .unwrap_or_default();
                expect("registered", format!("{name}={addr}"), own.join(","));
            }
            let n = copies[&(m.src.clone(), m.sport, m.dst.clone(), m.dport, m.id)];
            expect(
                "retransmissions",
                (n - 1).to_string(),
                e["retransmissions"].as_u64().unwrap_or(0).to_string(),
            );
        }
    }
    // Nothing hostwatch reports is unknown to tshark.
    for e in &nbns {
        let id = e["nbns"]["transaction_id"].as_u64().unwrap_or(0);
        if !msgs
            .iter()
            .any(|m| u64::from(m.id) == id && same_endpoints(e, m))
        {
            failures.push(format!("{capture}: spurious nbns event {e}"));
        }
    }
    assert!(
        failures.is_empty(),
        "{} mismatches:\n{}",
        failures.len(),
        failures.join("\n")
    );
    checked
}

#[test]
fn samba_nmbd_and_nmblookup_match_tshark() {
    let n = check("nbns/nmbd-nmblookup.pcap", "nmbd-nmblookup.tshark.json");
    assert!(n >= 60, "{n} values");
    // The watched name alerts from the registration (the client's own
    // name), the answers (the server's) and the questions (named).
    let events = run_file(&fixture("nbns/nmbd-nmblookup.pcap"));
    let mut alerts: Vec<(String, String, String)> = of_type(&events, "alert")
        .iter()
        .map(|a| {
            (
                a["alert"]["role"].as_str().unwrap_or("").to_string(),
                a["alert"]["evidence"].as_str().unwrap_or("").to_string(),
                a["src_ip"].as_str().unwrap_or("").to_string(),
            )
        })
        .collect();
    alerts.sort();
    let want: Vec<(String, String, String)> = [
        ("client", "nbns.names.name", "192.168.77.2"),
        // The broadcast query (answered from another address, so another
        // conversation); the unicast query's answer, on its own
        // conversation, is the stronger claim of the same machine.
        ("named", "nbns.query.name", "192.168.77.1"),
        ("server", "nbns.names.name", "192.168.77.1"),
        ("server", "nbns.names.name", "192.168.77.1"),
        ("server", "nbns.names.name", "192.168.77.1"),
    ]
    .iter()
    .map(|(a, b, c)| (a.to_string(), b.to_string(), c.to_string()))
    .collect();
    assert_eq!(alerts, want);
    let hosts: Vec<(String, String, String)> = of_type(&events, "inventory")
        .iter()
        .map(|h| {
            (
                h["inventory"]["name"].as_str().unwrap_or("").to_string(),
                h["inventory"]["ip"].as_str().unwrap_or("").to_string(),
                h["inventory"]["role"].as_str().unwrap_or("").to_string(),
            )
        })
        .collect();
    assert_eq!(
        hosts,
        [(
            "WIN-LIVFRVQFMKO".to_string(),
            "192.168.77.2".to_string(),
            "client".to_string()
        )]
    );
}

#[test]
fn windows_name_service_traffic_matches_tshark() {
    let n = check(
        "real/pcaps/suricata-verify__smb2-ntlmssp-negotiateflags.pcap",
        "suricata-verify__smb2-ntlmssp-negotiateflags.tshark.json",
    );
    assert!(n >= 84, "{n} values");
}

#[test]
fn arkime_synthetic_name_service_matches_tshark() {
    let n = check(
        "real/pcaps/arkime__arkime_synthetic.pcap",
        "arkime__arkime_synthetic.tshark.json",
    );
    assert!(n >= 4, "{n} values");
}

/// "Answered" is judged per exchange (#24.14): on a 137/137 conversation
/// that once had a real query and answer, a later answer to no pending
/// query (forged, or a request the sensor never saw) is the responder's
/// word alone: its alert says no handshake and weighs nothing it says.
#[test]
fn an_answer_to_no_question_is_not_answered() {
    use hostwatch::synth::msg::{nbns_answer as answer, nbns_query as query};
    use hostwatch::synth::udp_frame;
    let (a, b) = (
        ([2, 0, 0, 0, 0, 1], [10, 1, 0, 7]),
        ([2, 0, 0, 0, 0, 2], [10, 1, 0, 9]),
    );
    let frame = |from_a: bool, payload: &[u8]| {
        if from_a {
            udp_frame((a.0, a.1, 137), (b.0, b.1, 137), payload)
        } else {
            udp_frame((b.0, b.1, 137), (a.0, a.1, 137), payload)
        }
    };
    let t0 = 1_790_000_000_000_000i64;
    let frames = vec![
        (t0, frame(true, &query(1, "WIN-LIVFRVQFMKO"))),
        (t0 + 1_000, frame(false, &answer(1, "WIN-LIVFRVQFMKO", b.1))),
        (
            t0 + 9_000_000,
            frame(false, &answer(2, "WIN-J9D866ESIJ2", b.1)),
        ),
    ];
    let p = common::tmp("lone-answer.pcap");
    let t = hostwatch::synth::Trace { frames, now_us: 0 };
    std::fs::write(&p, t.to_bytes()).expect("write capture");
    let events = run_file(&p);
    let mut alerts: Vec<(String, bool)> = of_type(&events, "alert")
        .iter()
        .map(|e| {
            (
                e["alert"]["hostname"].as_str().unwrap_or("").to_string(),
                e["alert"]["handshake_seen"].as_bool().unwrap_or(true),
            )
        })
        .collect();
    alerts.sort();
    assert_eq!(
        alerts,
        [
            ("WIN-J9D866ESIJ2".to_string(), false),
            ("WIN-LIVFRVQFMKO".to_string(), true)
        ]
    );
}

/// Each `nbns` event's names and retransmissions, the alerts' host names,
/// and the datagrams dropped for their checksum.
type Registered = (Vec<(Vec<String>, u64)>, Vec<String>, u64);

/// Registrations from 10.1.0.7 to its broadcast address: (time offset in
/// µs, transaction id, name, checksum left unfilled). Returns the names and
/// retransmission count of each `nbns` event, the alerts' host names and
/// `stats.datagrams.bad_checksum`.
fn registrations(file: &str, sent: &[(i64, u16, &str, bool)]) -> Registered {
    use hostwatch::decode::checksum::{fold, pseudo_header};
    use hostwatch::synth::msg::nbns_registration as registration;
    use hostwatch::synth::udp_frame;
    let (host, bcast) = (
        ([2, 0, 0, 0, 0, 7], [10, 1, 0, 7]),
        ([0xff; 6], [10, 1, 0, 255]),
    );
    let t0 = 1_790_000_000_000_000i64;
    let frames = sent
        .iter()
        .map(|&(at, id, name, unfilled)| {
            let payload = registration(id, name, host.1);
            let mut f = udp_frame((host.0, host.1, 137), (bcast.0, bcast.1, 137), &payload);
            if unfilled {
                let len = 8 + payload.len();
                let sum = fold(pseudo_header(host.1.into(), bcast.1.into(), 17, len));
                f[40..42].copy_from_slice(&sum.to_be_bytes());
            }
            (t0 + at, f)
        })
        .collect();
    let p = common::tmp(file);
    let t = hostwatch::synth::Trace { frames, now_us: 0 };
    std::fs::write(&p, t.to_bytes()).expect("write capture");
    let events = run_file(&p);
    let nbns = of_type(&events, "nbns")
        .iter()
        .map(|e| {
            let names = e["nbns"]["names"]
                .as_array()
                .map(|a| {
                    a.iter()
                        .filter_map(|n| n["name"].as_str().map(str::to_owned))
                        .collect()
                })
                .unwrap_or_default();
            (names, e["nbns"]["retransmissions"].as_u64().unwrap_or(0))
        })
        .collect();
    let alerts = of_type(&events, "alert")
        .iter()
        .filter_map(|e| e["alert"]["hostname"].as_str().map(str::to_owned))
        .collect();
    let stats = &events.last().expect("stats")["stats"];
    let bad = stats["datagrams"]["bad_checksum"].as_u64().unwrap_or(0);
    (nbns, alerts, bad)
}

/// A decoy registration sent first with the real one's transaction id and
/// a checksum shaped as an offloading card leaves it: the host's own
/// registrations carry correct checksums (a stack does not switch), so
/// every receiver dropped the decoy. The real registration is read, its
/// copies counted as its retransmissions; the decoy's name is nowhere. A
/// decoy after the real one, whatever its id, is dropped by the
/// conversation table, as a TCP segment would be.
#[test]
fn a_decoy_registration_with_an_unfilled_checksum_loses_to_the_real_one() {
    let real = "WIN-J9D866ESIJ2";
    let (nbns, alerts, bad) = registrations(
        "decoy-first.pcap",
        &[
            (0, 0x77, "FILESRV01", true),
            (1_000, 0x77, real, false),
            (500_000, 0x77, real, false),
            (600_000, 0x77, "FILESRV01", true),
            (1_000_000, 0x77, real, false),
        ],
    );
    assert_eq!(nbns, [(vec![real.to_string()], 2)]);
    assert_eq!(alerts, [real]);
    assert_eq!(bad, 1);
    let (nbns, alerts, bad) = registrations(
        "decoy-after.pcap",
        &[(0, 0x77, real, false), (2_000, 0x78, "FILESRV01", true)],
    );
    assert_eq!(nbns, [(vec![real.to_string()], 0)]);
    assert_eq!(alerts, [real]);
    assert_eq!(bad, 1);
}
