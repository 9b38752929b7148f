//! NTLM over connection-oriented DCE/RPC: the auth verifiers of bind,
//! alter_context and auth3 (and the server's bind_ack / alter_context_resp)
//! carry the NTLMSSP messages, raw (auth type 10) or in SPNEGO (9). The
//! server's next PDU after the AUTHENTICATE gives the verdict.

use super::framing::{Frame, Framed, Framer, Seeker};
use super::ntlm::{Status, Tracker};
use super::protocol::{Carrier, Fallback, Protocol};
use super::{Ctx, Dir};
use crate::parsers::dcerpc::{self, ptype};
use crate::parsers::spnego;

/// Largest PDU buffered; bind-type PDUs are small, requests are skipped.
const MAX_PDU: usize = 64 << 10;

/// Connection-oriented DCE/RPC, from its bind.
pub const PROTOCOL: Protocol = Protocol {
    name: "dcerpc",
    carrier: Carrier::Stream {
        client: Some(|c| dcerpc::looks_like_bind(c) == Some(true)),
        server: None,
        fallback: Fallback::No,
        new: |_| Box::<RpcAnalyzer>::default(),
    },
};

#[derive(Debug)]
pub struct RpcAnalyzer {
    framers: [Framer; 2],
    tracker: Tracker,
}

impl Default for RpcAnalyzer {
    fn default() -> Self {
        RpcAnalyzer {
            framers: [Framer::new(MAX_PDU), Framer::new(MAX_PDU)],
            tracker: Tracker::new("dcerpc", true),
        }
    }
}

/// PDU types whose verifier can carry an NTLMSSP message.
fn carries_auth(t: u8) -> bool {
    matches!(
        t,
        ptype::BIND
            | ptype::BIND_ACK
            | ptype::ALTER_CONTEXT
            | ptype::ALTER_CONTEXT_RESP
            | ptype::AUTH3
    )
}

impl RpcAnalyzer {
    fn pdu(&mut self, dir: Dir, pdu: &[u8], h: &dcerpc::Header, cx: &mut Ctx<'_>) {
        // The verdict: the server's first PDU after the AUTHENTICATE.
        if dir == Dir::ToClient && self.tracker.awaiting_verdict() {
            match h.ptype {
                ptype::FAULT => {
                    let status = dcerpc::fault_status(pdu, h).unwrap_or(0);
                    self.tracker.verdict(false, Status::Hex(status), cx);
                }
                ptype::BIND_NAK => self.tracker.verdict(false, Status::Named("bind_nak"), cx),
                ptype::RESPONSE | ptype::BIND_ACK | ptype::ALTER_CONTEXT_RESP => {
                    self.tracker.verdict(true, Status::Hex(0), cx)
                }
                _ => {}
            }
        }
        if !carries_auth(h.ptype) {
            return;
        }
        let Some(v) = dcerpc::auth_verifier(pdu, h) else {
            return;
        };
        let ntlm = match v.auth_type {
            dcerpc::AUTH_NTLMSSP => Some(v.value),
            dcerpc::AUTH_SPNEGO => spnego::ntlm_token(v.value).ntlm,
            _ => None,
        };
        if let Some(m) = ntlm {
            self.tracker.message(dir, m, cx);
        }
    }
}

impl Framed for RpcAnalyzer {
    fn framers(&self) -> &[Framer; 2] {
        &self.framers
    }

    fn framers_mut(&mut self) -> &mut [Framer; 2] {
        &mut self.framers
    }

    fn step(&mut self, dir: Dir, b: &[u8], cx: &mut Ctx<'_>) -> Frame {
        let h = match dcerpc::header(b) {
            None => return Frame::Need(dcerpc::HEADER_LEN),
            Some(Err(_)) => {
                cx.parse_error(PROTOCOL.name);
                return Frame::Stop;
            }
            Some(Ok(h)) => h,
        };
        let total = usize::from(h.frag_len);
        let wanted =
            carries_auth(h.ptype) || (dir == Dir::ToClient && self.tracker.awaiting_verdict());
        if !wanted {
            return Frame::Skip(total);
        }
        match b.get(..total) {
            Some(pdu) => {
                self.pdu(dir, pdu, &h, cx);
                Frame::Consumed(total)
            }
            None => Frame::Need(total),
        }
    }

    fn stopped(&mut self, cx: &mut Ctx<'_>) {
        self.tracker.flush(cx);
    }

    fn seeker(&self) -> Option<Seeker> {
        Some(Seeker {
            protocol: PROTOCOL.name,
            find: |_, b, _| dcerpc::resync(b),
        })
    }
}
