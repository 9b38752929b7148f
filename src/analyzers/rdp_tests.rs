use super::*;
use crate::analyzers::Record;

fn feed(a: &mut RdpAnalyzer, steps: &[(Dir, Vec<u8>)]) -> Vec<Record> {
    let mut out = Vec::new();
    for (dir, bytes) in steps {
        let mut cx = Ctx::new(0, false, &mut out);
        if a.data(*dir, bytes, &mut cx) == Status::Done {
            break;
        }
    }
    let mut cx = Ctx::new(0, false, &mut out);
    a.end(&mut cx);
    out
}

const CR: &[u8] = b"\x03\x00\x00\x2b\x26\xe0\x00\x00\x00\x00\x00Cookie: mstshash=alice\r\n\x01\x00\x08\x00\x03\x00\x00\x00";

#[test]
fn negotiation_failure_ends_the_handshake() {
    let cc =
        b"\x03\x00\x00\x13\x0e\xd0\x00\x00\x12\x34\x00\x03\x00\x08\x00\x01\x00\x00\x00".to_vec();
    let out = feed(
        &mut RdpAnalyzer::new(None),
        &[(Dir::ToServer, CR.to_vec()), (Dir::ToClient, cc)],
    );
    let [Record::Rdp(r)] = &out[..] else {
        panic!("{out:?}")
    };
    assert_eq!(r.cookie.as_deref(), Some("alice"));
    assert_eq!(r.requested_protocols, Some(vec!["tls", "hybrid"]));
    assert_eq!(
        r.negotiation_failure.as_deref(),
        Some("ssl_required_by_server")
    );
}

#[test]
fn request_alone_is_emitted_at_the_end_and_one_byte_segments_work() {
    let mut a = RdpAnalyzer::new(Some("socks5"));
    let steps: Vec<(Dir, Vec<u8>)> = CR.iter().map(|b| (Dir::ToServer, vec![*b])).collect();
    let out = feed(&mut a, &steps);
    let [Record::Rdp(r)] = &out[..] else {
        panic!("{out:?}")
    };
    assert_eq!(
        (r.cookie.as_deref(), r.proxy),
        (Some("alice"), Some("socks5"))
    );
    assert_eq!(r.selected_protocol, None);
}

#[test]
fn cookie_with_control_bytes_keeps_hex() {
    let cr = b"\x03\x00\x00\x21\x1c\xe0\x00\x00\x00\x00\x00Cookie: mstshash=a\x1bb\r\n";
    let out = feed(&mut RdpAnalyzer::new(None), &[(Dir::ToServer, cr.to_vec())]);
    let [Record::Rdp(r)] = &out[..] else {
        panic!("{out:?}")
    };
    assert_eq!(
        (r.cookie.as_deref(), r.cookie_hex.as_deref()),
        (Some("a\x1bb"), Some("611b62"))
    );
}
