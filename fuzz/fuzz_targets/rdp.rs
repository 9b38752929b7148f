#![no_main]
//! TPKT/X.224, MCS and GCC data blocks.
use hostwatch::parsers::rdp::{gcc, mcs, x224};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = x224::tpkt_len(data);
    let _ = x224::looks_like_request(data);
    let _ = x224::connection_request(data);
    let _ = x224::connection_confirm(data);
    if let Ok(pdu) = x224::data(data) {
        if let Ok(b) = mcs::connect_initial_user_data(pdu) {
            let _ = gcc::client_data(b);
        }
        if let Ok((_, b)) = mcs::connect_response_user_data(pdu) {
            let _ = gcc::server_data(b);
        }
    }
    let _ = gcc::client_data(data);
    let _ = gcc::server_data(data);
});
