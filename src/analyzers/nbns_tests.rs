use super::*;
use crate::analyzers::{Anomalies, Record};

use crate::synth::msg::{
    nbns_answer as answer, nbns_query as query, nbns_registration as registration,
};

fn nbns(r: &Record) -> &NbnsRecord {
    match r {
        Record::Nbns(n) => n,
        other => panic!("not nbns: {other:?}"),
    }
}

#[test]
fn request_and_answer_make_one_record() {
    let mut a = NbnsAnalyzer::default();
    let mut out = Vec::new();
    let mut cx = Ctx::new(1_000_000, false, &mut out);
    a.datagram(Dir::ToServer, &query(7, "FILESRV01"), &mut cx);
    a.datagram(Dir::ToServer, &query(7, "FILESRV01"), &mut cx);
    let mut cx = Ctx::new(1_200_000, false, &mut out);
    a.datagram(
        Dir::ToClient,
        &answer(7, "FILESRV01", [10, 0, 0, 9]),
        &mut cx,
    );
    // The same answer again (from a second socket): not a second record;
    // a different one with the same id is.
    let again = answer(7, "FILESRV01", [10, 0, 0, 9]);
    a.datagram(Dir::ToClient, &again, &mut cx);
    assert_eq!(out.len(), 1);
    let other = answer(7, "FILESRV01", [10, 0, 0, 10]);
    let mut cx = Ctx::new(1_300_000, false, &mut out);
    a.datagram(Dir::ToClient, &other, &mut cx);
    assert_eq!(out.len(), 2);
    out.truncate(1);
    let r = nbns(&out[0]);
    assert_eq!(r.transaction_id, 7);
    assert_eq!(r.opcode, "query");
    assert!(r.answered && r.authoritative && !r.broadcast);
    assert_eq!(r.retransmissions, 1);
    assert_eq!(r.rcode, Some("ok"));
    let q = r
        .query
        .as_ref()
        .map(|q| (q.name.as_str(), q.suffix.as_str(), q.qtype));
    assert_eq!(q, Some(("FILESRV01", "<20>", "NB")));
    assert_eq!(r.names.len(), 1);
    let n = &r.names[0];
    assert_eq!(
        (
            n.name.as_str(),
            n.suffix_type,
            n.address,
            n.source,
            n.sender
        ),
        (
            "FILESRV01",
            "file_server",
            Some([10, 0, 0, 9].into()),
            "answer",
            Dir::ToClient
        )
    );
    // The question is a mention; the answer is the responder's word, tying
    // the name to an address (detection decides whose it is).
    let names = out[0].names();
    assert_eq!(names.len(), 2);
    assert_eq!(
        (names[0].path, names[0].role, names[0].machine),
        ("nbns.query.name", Role::Named, false)
    );
    assert_eq!(
        (names[1].path, names[1].role, names[1].machine, names[1].ip),
        (
            "nbns.names.name",
            Role::Server,
            true,
            Some([10, 0, 0, 9].into())
        )
    );
}

#[test]
fn unanswered_registration_waits_then_is_written_once() {
    let mut a = NbnsAnalyzer::default();
    let mut out = Vec::new();
    for (i, ts) in [0i64, 750_000, 1_500_000, 2_250_000]
        .into_iter()
        .enumerate()
    {
        let mut cx = Ctx::new(ts, false, &mut out);
        a.datagram(
            Dir::ToServer,
            &registration(0x8188, "WIN-J9D866ESIJ2", [10, 0, 0, 5]),
            &mut cx,
        );
        assert!(out.is_empty(), "copy {i} written early");
    }
    // The wait counts from the first copy.
    let mut cx = Ctx::new(ANSWER_TIMEOUT_US, false, &mut out);
    a.expire(ANSWER_TIMEOUT_US, &mut cx);
    assert!(out.is_empty(), "written before its timeout passed");
    let mut cx = Ctx::new(ANSWER_TIMEOUT_US + 1, false, &mut out);
    a.expire(ANSWER_TIMEOUT_US + 1, &mut cx);
    assert_eq!(out.len(), 1);
    let r = nbns(&out[0]);
    assert_eq!(
        (r.opcode, r.broadcast, r.answered, r.retransmissions),
        ("registration", true, false, 3)
    );
    let names = out[0].names();
    // A registration's question is the sender's own name: not a mention.
    assert_eq!(names.len(), 1);
    assert_eq!(
        (names[0].value, names[0].role, names[0].machine, names[0].ip),
        (
            "WIN-J9D866ESIJ2",
            Role::Client,
            true,
            Some([10, 0, 0, 5].into())
        )
    );
}

#[test]
fn pending_requests_are_bounded_and_flushed_at_the_end() {
    let mut a = NbnsAnalyzer::default();
    let mut out = Vec::new();
    let mut cx = Ctx::new(0, false, &mut out);
    for txid in 0..(MAX_PENDING as u16 + 3) {
        a.datagram(Dir::ToServer, &query(txid, "HOST"), &mut cx);
    }
    // The three oldest made room.
    let ids: Vec<u16> = out.iter().map(|r| nbns(r).transaction_id).collect();
    assert_eq!(ids, [0, 1, 2]);
    let mut cx = Ctx::new(0, false, &mut out);
    a.end(&mut cx);
    assert_eq!(out.len(), MAX_PENDING + 3);
    assert_eq!(a.pending.len(), 0);
}

#[test]
fn an_answer_first_makes_its_sender_the_server_and_garbage_is_counted() {
    let mut a = NbnsAnalyzer::default();
    let mut out = Vec::new();
    let mut errors = Anomalies::default();
    let mut cx = Ctx::new(0, false, &mut out).counting(&mut errors);
    a.datagram(
        Dir::ToServer,
        &answer(9, "SCV", [192, 168, 199, 1]),
        &mut cx,
    );
    assert!(cx.roles_reversed);
    a.datagram(Dir::ToServer, b"\x00\x01\x02", &mut cx);
    assert_eq!(errors.parse_errors.get("nbns"), 1);
    let r = nbns(&out[0]);
    assert_eq!(r.names[0].sender, Dir::ToClient);
    assert!(r.query.is_none());
}
