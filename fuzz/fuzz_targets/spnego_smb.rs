#![no_main]
//! SMB1/SMB2 session setups and the SPNEGO blobs inside them; tree connects.
use hostwatch::parsers::{smb, spnego};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = spnego::ntlm_token(data);
    let _ = smb::nbss_header(data);
    let _ = smb::is_wanted(data);
    if let Ok(trees) = smb::tree_connects(data) {
        for t in trees {
            let _ = hostwatch::parsers::text::utf16le_lossy(t.path);
        }
    }
    if let Ok(setups) = smb::session_setups(data) {
        for s in setups {
            let _ = spnego::ntlm_token(s.security_blob);
        }
    }
});
