#![no_main]
//! LDAP binds, DCE/RPC headers and verifiers, proxy handshakes, DER; the
//! LDAP, DCE/RPC and HTTP message finders used after lost bytes.
use hostwatch::parsers::{dcerpc, der, http, ldap, proxy, Resync};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = ldap::message(data);
    let _ = ldap::looks_like_bind(data);
    let _ = ldap::looks_like_request(data);
    let _ = der::tlv_extent(data);
    for found in [
        ldap::resync(data),
        dcerpc::resync(data),
        http::resync(data, false, true),
        http::resync(data, true, false),
    ] {
        match found {
            Resync::At(p) => assert!(p < data.len()),
            Resync::Keep(n) => assert!(n <= data.len()),
        }
    }
    let _ = der::children(data).count();
    if let Some(Ok(h)) = dcerpc::header(data) {
        let _ = dcerpc::auth_verifier(data, &h);
        let _ = dcerpc::fault_status(data, &h);
    }
    if let Some(kind) = proxy::detect(data) {
        let _ = proxy::client_len(kind, data);
        let _ = proxy::server_len(kind, data);
    }
});
