#![no_main]
//! TLS records, handshake messages and certificates.
use hostwatch::parsers::tls;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = tls::record_header(data);
    let _ = tls::handshake_len(data);
    if let Some((_, body, _)) = tls::handshake_message(data) {
        let _ = tls::client_hello_sni(body);
        let _ = tls::server_hello_version(body);
        if let Ok(chain) = tls::certificate_chain(body) {
            for c in chain {
                let _ = tls::describe_certificate(c);
            }
        }
    }
    let _ = tls::describe_certificate(data);
});
