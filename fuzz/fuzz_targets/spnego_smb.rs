#![no_main]
//! SMB1/SMB2 session setups and the SPNEGO blobs inside them; tree
//! connects; the message finder used after lost bytes.
use hostwatch::parsers::{smb, spnego, Resync};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = spnego::ntlm_token(data);
    let _ = smb::nbss_header(data);
    let _ = smb::is_wanted(data);
    match smb::resync(data) {
        Resync::At(p) => assert!(p < data.len()),
        Resync::Keep(n) => assert!(n <= data.len()),
    }
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
