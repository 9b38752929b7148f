//! Requests of a datagram protocol held until their answer, so that a
//! request is written with what its exchange showed: answered (both sides
//! spoke), or, when its answer never came within [`ANSWER_TIMEOUT_US`],
//! one side's word ([`Ctx::emit_lone_at`]). Kerberos and CLDAP pair this
//! way; NBNS and DHCP keep richer transactions of their own.

use std::collections::VecDeque;

use super::{Ctx, Record};

/// How long a request waits for its answer (a Kerberos client retries
/// after 1 s, the DC locator's CLDAP pings after less).
pub const ANSWER_TIMEOUT_US: i64 = 5_000_000;
/// Requests held per conversation; the oldest is written beyond.
const MAX_AWAITING: usize = 16;

/// One conversation's requests awaiting their answers.
#[derive(Debug)]
pub struct Awaiting<R> {
    /// (time of the request, its id if the protocol has one, its record).
    pending: VecDeque<(i64, Option<u64>, R)>,
}

impl<R> Default for Awaiting<R> {
    fn default() -> Self {
        Awaiting {
            pending: VecDeque::new(),
        }
    }
}

impl<R: Into<Record>> Awaiting<R> {
    /// A request, with its id where the protocol has one (else answers
    /// pair with the oldest request in order).
    pub fn request(&mut self, id: Option<u64>, record: R, cx: &mut Ctx<'_>) {
        if self.pending.len() >= MAX_AWAITING {
            if let Some((ts, _, r)) = self.pending.pop_front() {
                cx.emit_lone_at(ts, r);
            }
        }
        self.pending.push_back((cx.ts_us, id, record));
    }

    /// An answer: its request is written as answered, at its own time;
    /// then the answer, as one side's word if it answers no request held.
    pub fn answer(&mut self, id: Option<u64>, answer: R, cx: &mut Ctx<'_>) {
        let at = match id {
            Some(id) => self.pending.iter().position(|(_, i, _)| *i == Some(id)),
            None => (!self.pending.is_empty()).then_some(0),
        };
        match at.and_then(|i| self.pending.remove(i)) {
            Some((ts, _, r)) => {
                cx.emit_at(ts, r);
                cx.emit(answer);
            }
            None => cx.emit_lone_at(cx.ts_us, answer),
        }
    }

    /// Packet time is `now_us`: requests that waited too long are written
    /// unanswered.
    pub fn expire(&mut self, now_us: i64, cx: &mut Ctx<'_>) {
        while self
            .pending
            .front()
            .is_some_and(|(ts, _, _)| now_us - ts > ANSWER_TIMEOUT_US)
        {
            if let Some((ts, _, r)) = self.pending.pop_front() {
                cx.emit_lone_at(ts, r);
            }
        }
    }

    /// Until when a held request may still be answered.
    pub fn held_until(&self) -> Option<i64> {
        self.pending
            .back()
            .map(|(ts, _, _)| ts.saturating_add(ANSWER_TIMEOUT_US))
    }

    /// The conversation ended: what is held was never answered.
    pub fn end(&mut self, cx: &mut Ctx<'_>) {
        for (ts, _, r) in self.pending.drain(..) {
            cx.emit_lone_at(ts, r);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::analyzers::krb5::KrbRecord;
    use crate::analyzers::{Dir, Emitted};

    fn record(m: &[u8]) -> KrbRecord {
        match crate::parsers::krb5::parse(m) {
            Ok(p) => KrbRecord::of(&p, Dir::ToServer),
            Err(e) => panic!("{e}"),
        }
    }

    /// Requests are written at their answer with their own time,
    /// unanswered after the timeout or beyond the cap, and an answer to no
    /// request as one side's word.
    #[test]
    fn requests_wait_for_their_answers() {
        use crate::synth::msg::{krb5_as_req, krb5_preauth_required};
        let (req, err) = (
            record(&krb5_as_req("PC1")),
            record(&krb5_preauth_required("PC1")),
        );
        let mut out: Vec<Emitted> = Vec::new();
        let mut a = Awaiting::default();
        {
            let mut cx = Ctx::new(10, false, &mut out);
            a.request(Some(1), req.clone(), &mut cx);
            a.request(Some(2), req.clone(), &mut cx);
            cx.ts_us = 20;
            a.answer(Some(2), err.clone(), &mut cx);
            a.answer(Some(9), err.clone(), &mut cx);
            assert_eq!(a.held_until(), Some(10 + ANSWER_TIMEOUT_US));
            a.expire(10 + ANSWER_TIMEOUT_US + 1, &mut cx);
        }
        assert_eq!(out.len(), 4);
        let at = |i: usize| (out[i].ts_us, out[i].lone);
        // Request 2 at its time, answered; its answer now; the answer to
        // no request alone; request 1 alone after the timeout.
        assert_eq!(
            [at(0), at(1), at(2), at(3)],
            [
                (Some(10), false),
                (None, false),
                (Some(20), true),
                (Some(10), true)
            ]
        );
        assert_eq!(a.held_until(), None);
        let mut cx = Ctx::new(30, false, &mut out);
        for _ in 0..=MAX_AWAITING {
            a.request(None, req.clone(), &mut cx);
        }
        assert_eq!(a.pending.len(), MAX_AWAITING);
        a.end(&mut cx);
        assert!(a.pending.is_empty());
    }
}
