#![no_main]
//! SMB1/SMB2 session setups and the SPNEGO blobs inside them.
use hostwatch::parsers::{smb, spnego};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = spnego::ntlm_token(data);
    let _ = smb::nbss_header(data);
    if let Ok(setups) = smb::session_setups(data) {
        for s in setups {
            let _ = spnego::ntlm_token(s.security_blob);
        }
    }
});
