//! Micro-benchmarks of the stages a packet crosses: decode, flow table and
//! reassembly, and each parser on real messages. `cargo bench` (or
//! `cargo bench -- ntlm` for one group). The whole-process figures come from
//! bench/run.sh; these find which function moved.

use std::hint::black_box;

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use hostwatch::analyzers::Analyzers;
use hostwatch::decode::{linktype, Decoder, Packet};
use hostwatch::flow::{FlowConfig, FlowTable};
use hostwatch::parsers::{ntlm, rdp, smb, spnego, tls};
use hostwatch::synth::msg::{self, ServerNames};
use hostwatch::synth::{Conn, Segment};

const NAMES: ServerNames<'static> = msg::FILESRV01;

/// Frames of a connection: an SMB2 logon then `reads` 64 KiB reads.
fn smb_frames(reads: u64) -> Vec<Vec<u8>> {
    let mut c = Conn::new(
        ([10, 0, 0, 1].into(), 40000),
        ([10, 0, 0, 2].into(), 445),
        1,
    );
    let mut segs: Vec<Segment> = c.open();
    let mut trips = msg::smb2_logon(5, &NAMES, "CORP", "alice", "PC-1", 0);
    let block = vec![0x5a; 65_536];
    for id in 0..reads {
        trips.push(msg::smb2_read(10 + id, 5, &block));
    }
    for (a, b) in trips {
        segs.extend(c.send(true, &a));
        segs.extend(c.send(false, &b));
    }
    segs.extend(c.close());
    segs.iter().map(|s| c.frame(s)).collect()
}

fn decode_and_flows(cr: &mut Criterion) {
    let frames = smb_frames(64);
    let bytes: usize = frames.iter().map(Vec::len).sum();
    let mut g = cr.benchmark_group("pipeline");
    g.throughput(Throughput::Bytes(bytes as u64));
    g.bench_function("decode", |b| {
        let mut d = Decoder::new(linktype::ETHERNET);
        b.iter(|| {
            for (i, f) in frames.iter().enumerate() {
                d.decode(i as i64, f, &mut |s| {
                    black_box(s.payload().len());
                });
            }
        })
    });
    g.bench_function("decode+flow+analyzers", |b| {
        b.iter(|| {
            let mut d = Decoder::new(linktype::ETHERNET);
            let mut t = FlowTable::new(FlowConfig::default(), Analyzers);
            let mut n = 0;
            for (i, f) in frames.iter().enumerate() {
                d.decode(i as i64, f, &mut |p| {
                    if let Packet::Tcp(s) = p {
                        t.packet(s, &mut |_r| n += 1)
                    }
                });
            }
            t.finish(&mut |_r| n += 1);
            black_box(n)
        })
    });
    g.finish();
}

fn parsers(cr: &mut Criterion) {
    let auth = msg::ntlm_authenticate("CORP", "alice", "WIN-J9D866ESIJ2", "cifs/filesrv01");
    let chal = msg::ntlm_challenge(&NAMES, [1; 8]);
    let setup = msg::smb2_session_setup_request(2, 5, &msg::spnego_resp(1, Some(&auth)));
    let ci = msg::rdp_connect_initial("WIN-J9D866ESIJ2", 19041);
    let cr_pdu = msg::rdp_connection_request("alice", 3);
    let mut cert_msg = vec![11u8];
    let der = msg::CERT;
    let list_len = der.len() + 3;
    let body_len = list_len + 3;
    cert_msg.extend_from_slice(&[
        (body_len >> 16) as u8,
        (body_len >> 8) as u8,
        body_len as u8,
    ]);
    cert_msg.extend_from_slice(&[
        (list_len >> 16) as u8,
        (list_len >> 8) as u8,
        list_len as u8,
    ]);
    cert_msg.extend_from_slice(&[
        (der.len() >> 16) as u8,
        (der.len() >> 8) as u8,
        der.len() as u8,
    ]);
    cert_msg.extend_from_slice(der);

    let mut g = cr.benchmark_group("parsers");
    g.bench_function("ntlm/authenticate", |b| {
        b.iter(|| black_box(ntlm::parse(black_box(&auth)).is_ok()))
    });
    g.bench_function("ntlm/challenge+av_pairs", |b| {
        b.iter(|| match ntlm::parse(black_box(&chal)) {
            Ok(ntlm::Message::Challenge(c)) => {
                ntlm::av_pairs(c.target_info.unwrap_or_default()).count()
            }
            _ => 0,
        })
    });
    g.bench_function("smb2/session_setup+spnego", |b| {
        b.iter(|| {
            smb::session_setups(black_box(&setup[4..])).map(|v| {
                v.iter()
                    .filter(|s| spnego::ntlm_token(s.security_blob).ntlm.is_some())
                    .count()
            })
        })
    });
    g.bench_function("rdp/connection_request", |b| {
        b.iter(|| black_box(rdp::x224::connection_request(black_box(&cr_pdu)).is_ok()))
    });
    g.bench_function("rdp/connect_initial+client_data", |b| {
        b.iter(|| {
            let pdu = rdp::x224::data(black_box(&ci)).unwrap_or_default();
            rdp::mcs::connect_initial_user_data(pdu)
                .map(|blocks| rdp::gcc::client_data(blocks).channels.len())
        })
    });
    g.bench_function("tls/certificate+x509", |b| {
        b.iter(|| {
            let Some((_, body, _)) = tls::handshake_message(black_box(&cert_msg)) else {
                return 0;
            };
            tls::certificate_chain(body)
                .map(|c| {
                    c.iter()
                        .map(|d| tls::describe_certificate(d).san_dns.len())
                        .sum()
                })
                .unwrap_or(0)
        })
    });
    // A Redis pipeline's worth of replies, as the Redis output reads them.
    let mut replies = Vec::new();
    for i in 0..256 {
        replies.extend_from_slice(format!(":{i}\r\n$17\r\n1764205560000-{i:03}\r\n").as_bytes());
    }
    let count = |mut rest: &[u8]| {
        let mut n = 0;
        while let Ok((_, used)) = hostwatch::output::resp::reply(rest) {
            rest = rest.get(used..).unwrap_or_default();
            n += 1;
        }
        n
    };
    assert_eq!(count(&replies), 512, "the bench input parses whole");
    g.bench_function("resp/512_replies", |b| {
        b.iter(|| count(black_box(&replies)))
    });
    g.finish();
}

criterion_group!(benches, decode_and_flows, parsers);
criterion_main!(benches);
