//! SPNEGO (RFC 4178, MS-SPNG) as far as NTLM needs it: the mechToken of a
//! negTokenInit and the responseToken and negState of a negTokenResp, with
//! or without the GSS-API framing (RFC 2743 3.1).

use super::der::{children, expect, tlv, uint};
use super::ntlm::SIGNATURE;

/// negState of a negTokenResp.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NegState {
    AcceptCompleted,
    AcceptIncomplete,
    Reject,
    RequestMic,
    Other(u64),
}

/// What a security blob carries for NTLM.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Token<'a> {
    /// The NTLMSSP message, when there is one.
    pub ntlm: Option<&'a [u8]>,
    pub neg_state: Option<NegState>,
}

const GSS_APPLICATION_0: u8 = 0x60;
const NEG_TOKEN_INIT: u8 = 0xa0;
const NEG_TOKEN_RESP: u8 = 0xa1;
const SEQUENCE: u8 = 0x30;
const OID: u8 = 0x06;
const OCTET_STRING: u8 = 0x04;
const ENUMERATED: u8 = 0x0a;

/// Finds the NTLMSSP message in a security blob: raw NTLMSSP, GSS-API
/// wrapped negTokenInit, or a bare negTokenInit/negTokenResp.
pub fn ntlm_token(blob: &[u8]) -> Token<'_> {
    if blob.starts_with(SIGNATURE) {
        return Token {
            ntlm: Some(blob),
            neg_state: None,
        };
    }
    let Ok((_, outer)) = tlv(blob) else {
        return Token::default();
    };
    match outer.tag {
        GSS_APPLICATION_0 => {
            // thisMech OID, then the inner token.
            let Ok((inner, _oid)) = expect(OID)(outer.value) else {
                return Token::default();
            };
            if inner.starts_with(SIGNATURE) {
                return Token {
                    ntlm: Some(inner),
                    neg_state: None,
                };
            }
            match tlv(inner) {
                Ok((_, t)) if t.tag == NEG_TOKEN_INIT => neg_token(t.value, false),
                _ => Token::default(),
            }
        }
        NEG_TOKEN_INIT => neg_token(outer.value, false),
        NEG_TOKEN_RESP => neg_token(outer.value, true),
        _ => Token::default(),
    }
}

/// The SEQUENCE inside negTokenInit ([2] mechToken) or negTokenResp
/// ([0] negState, [2] responseToken).
fn neg_token(value: &[u8], resp: bool) -> Token<'_> {
    let Ok((_, seq)) = expect(SEQUENCE)(value) else {
        return Token::default();
    };
    let mut tok = Token::default();
    for field in children(seq) {
        match field.tag {
            0xa0 if resp => {
                if let Ok((_, e)) = expect(ENUMERATED)(field.value) {
                    tok.neg_state = uint(e).map(|v| match v {
                        0 => NegState::AcceptCompleted,
                        1 => NegState::AcceptIncomplete,
                        2 => NegState::Reject,
                        3 => NegState::RequestMic,
                        n => NegState::Other(n),
                    });
                }
            }
            0xa2 => {
                if let Ok((_, s)) = expect(OCTET_STRING)(field.value) {
                    if s.starts_with(SIGNATURE) {
                        tok.ntlm = Some(s);
                    }
                }
            }
            _ => {}
        }
    }
    tok
}

#[cfg(test)]
mod tests {
    use super::*;

    fn wrap(tag: u8, v: &[u8]) -> Vec<u8> {
        let mut o = vec![tag];
        if v.len() < 128 {
            o.push(v.len() as u8);
        } else {
            o.push(0x82);
            o.extend_from_slice(&(v.len() as u16).to_be_bytes());
        }
        o.extend_from_slice(v);
        o
    }

    const NTLM: &[u8] = b"NTLMSSP\0\x01\0\0\0\x07\x82\x08\xa2";

    #[test]
    fn gss_wrapped_neg_token_init() {
        let mech_types = wrap(
            0xa0,
            &wrap(
                0x30,
                &wrap(
                    0x06,
                    &[0x2b, 0x06, 0x01, 0x04, 0x01, 0x82, 0x37, 0x02, 0x02, 0x0a],
                ),
            ),
        );
        let mech_token = wrap(0xa2, &wrap(0x04, NTLM));
        let mut seq = mech_types;
        seq.extend(mech_token);
        let init = wrap(0xa0, &wrap(0x30, &seq));
        let mut gss = wrap(0x06, &[0x2b, 0x06, 0x01, 0x05, 0x05, 0x02]);
        gss.extend(init);
        let blob = wrap(0x60, &gss);
        assert_eq!(
            ntlm_token(&blob),
            Token {
                ntlm: Some(NTLM),
                neg_state: None
            }
        );
    }

    #[test]
    fn neg_token_resp_with_state() {
        let mut seq = wrap(0xa0, &wrap(0x0a, &[1]));
        seq.extend(wrap(
            0xa1,
            &wrap(
                0x06,
                &[0x2b, 0x06, 0x01, 0x04, 0x01, 0x82, 0x37, 0x02, 0x02, 0x0a],
            ),
        ));
        seq.extend(wrap(0xa2, &wrap(0x04, NTLM)));
        let blob = wrap(0xa1, &wrap(0x30, &seq));
        assert_eq!(
            ntlm_token(&blob),
            Token {
                ntlm: Some(NTLM),
                neg_state: Some(NegState::AcceptIncomplete)
            }
        );
        let done = wrap(0xa1, &wrap(0x30, &wrap(0xa0, &wrap(0x0a, &[0]))));
        assert_eq!(
            ntlm_token(&done),
            Token {
                ntlm: None,
                neg_state: Some(NegState::AcceptCompleted)
            }
        );
    }

    #[test]
    fn raw_and_garbage() {
        assert_eq!(ntlm_token(NTLM).ntlm, Some(NTLM));
        assert_eq!(
            ntlm_token(&[0x60, 0x84, 0xff, 0xff, 0xff, 0xff]),
            Token::default()
        );
        assert_eq!(ntlm_token(&[0xa1, 0x03, 0x30, 0x05]), Token::default());
        assert_eq!(ntlm_token(&[]), Token::default());
    }
}
