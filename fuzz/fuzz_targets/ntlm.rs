#![no_main]
//! NTLMSSP messages: parse, extent, AV pairs, names.
use hostwatch::parsers::ntlm;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = ntlm::extent(data);
    if let Ok(m) = ntlm::parse(data) {
        match m {
            ntlm::Message::Challenge(c) => {
                for (_, v) in ntlm::av_pairs(c.target_info.unwrap_or_default()) {
                    let _ = ntlm::decode_name(v, true);
                }
                let _ = c.target_name.map(|t| ntlm::decode_name(t, false));
            }
            ntlm::Message::Authenticate(a) => {
                let _ = ntlm::response_kind(&a);
                if let Some(p) = a.nt_response.and_then(ntlm::ntlmv2_av_pairs) {
                    let _ = ntlm::av_pairs(p).count();
                }
                let _ = a.workstation.map(|w| ntlm::decode_name(w, true));
            }
            ntlm::Message::Negotiate(n) => {
                let _ = n.flags.names();
            }
        }
    }
});
