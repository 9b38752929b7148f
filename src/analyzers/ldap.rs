//! NTLM over LDAP binds: SASL (GSS-SPNEGO, or NTLM raw in the credentials)
//! and Microsoft's sicily binds, whose CHALLENGE travels in the bind
//! response's matchedDN. The final bind response's result code is the
//! verdict.

use super::framing::{Frame, Framed, Framer, Seeker};
use super::ntlm::{Status, Tracker};
use super::protocol::{Carrier, Fallback, Protocol};
use super::{Ctx, Dir};
use crate::parsers::ldap::{self, BindAuth, Op};
use crate::parsers::{der, ntlm, spnego};

/// Largest LDAP message buffered; larger ones (search results) are skipped.
const MAX_MESSAGE: usize = 64 << 10;

/// LDAP, from its first request (any operation).
pub const PROTOCOL: Protocol = Protocol {
    name: "ldap",
    carrier: Carrier::Stream {
        client: Some(|c| ldap::looks_like_request(c) == Some(true)),
        server: None,
        fallback: Fallback::No,
        new: |_| Box::<LdapAnalyzer>::default(),
    },
};

#[derive(Debug)]
pub struct LdapAnalyzer {
    framers: [Framer; 2],
    tracker: Tracker,
}

impl Default for LdapAnalyzer {
    fn default() -> Self {
        LdapAnalyzer {
            framers: [Framer::new(MAX_MESSAGE), Framer::new(MAX_MESSAGE)],
            tracker: Tracker::new("ldap", true),
        }
    }
}

/// The NTLMSSP message in SASL credentials or a sicily value.
fn ntlm_in(v: &[u8]) -> Option<&[u8]> {
    if v.starts_with(ntlm::SIGNATURE) {
        return Some(v);
    }
    spnego::ntlm_token(v).ntlm
}

impl LdapAnalyzer {
    fn message(&mut self, dir: Dir, m: &[u8], cx: &mut Ctx<'_>) {
        let Ok(msg) = ldap::message(m) else {
            cx.parse_error(PROTOCOL.name);
            return;
        };
        match msg.op {
            Op::BindRequest { auth, .. } => {
                let token = match auth {
                    BindAuth::Sasl {
                        credentials: Some(c),
                        ..
                    } => ntlm_in(c),
                    BindAuth::SicilyNegotiate(v) | BindAuth::SicilyResponse(v) => ntlm_in(v),
                    _ => None,
                };
                if let Some(t) = token {
                    self.tracker.message(dir, t, cx);
                }
            }
            Op::BindResponse {
                result_code,
                matched_dn,
                server_sasl_creds,
            } => {
                let token = server_sasl_creds
                    .and_then(ntlm_in)
                    .or_else(|| ntlm_in(matched_dn));
                if let Some(t) = token {
                    self.tracker.message(dir, t, cx);
                }
                let status = Status::Code(result_code);
                match result_code {
                    ldap::RESULT_SASL_BIND_IN_PROGRESS => {}
                    ldap::RESULT_SUCCESS if self.tracker.awaiting_verdict() => {
                        self.tracker.verdict(true, status, cx)
                    }
                    _ if self.tracker.awaiting_verdict() => self.tracker.verdict(false, status, cx),
                    ldap::RESULT_SUCCESS => {}
                    _ => self.tracker.abort(status, cx),
                }
            }
            Op::Other(_) => {}
        }
    }
}

impl Framed for LdapAnalyzer {
    fn framers(&self) -> &[Framer; 2] {
        &self.framers
    }

    fn framers_mut(&mut self) -> &mut [Framer; 2] {
        &mut self.framers
    }

    fn step(&mut self, dir: Dir, b: &[u8], cx: &mut Ctx<'_>) -> Frame {
        match der::tlv_extent(b) {
            None => Frame::Need(b.len() + 1),
            // Not a plain LDAPMessage (SASL-wrapped after a signing bind).
            Some(Err(())) => {
                cx.parse_error(PROTOCOL.name);
                Frame::Stop
            }
            Some(Ok(_)) if b[0] != 0x30 => Frame::Stop,
            Some(Ok(total)) => match b.get(..total) {
                Some(m) => {
                    self.message(dir, m, cx);
                    Frame::Consumed(total)
                }
                None => Frame::Need(total),
            },
        }
    }

    fn stopped(&mut self, cx: &mut Ctx<'_>) {
        self.tracker.flush(cx);
    }

    fn seeker(&self) -> Option<Seeker> {
        Some(Seeker {
            protocol: PROTOCOL.name,
            find: |_, b, _| ldap::resync(b),
        })
    }
}
