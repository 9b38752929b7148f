use super::*;

/// The self-signed certificate xrdp presented in fixtures/lab/rdp-tls12-client-good.pcap.
const FILESRV01: &[u8] = include_bytes!("../../fixtures/unit/filesrv01.der");

#[test]
fn certificate_facts() {
    let c = describe_certificate(FILESRV01);
    assert_eq!(c.subject_cn.as_deref(), Some("FILESRV01"));
    assert_eq!(c.issuer_cn.as_deref(), Some("FILESRV01"));
    assert_eq!(
        crate::render::hex(&c.sha1),
        "8ab3fe7d80698e3f61433de92547563a47bfaa60"
    );
    // 2026-11-26T21:11:05Z and 2036-11-23T21:11:05Z.
    assert_eq!(c.not_before, Some(1_795_727_465));
    assert_eq!(c.not_after, Some(2_111_087_465));
    assert!(c.san_dns.is_empty());
    let garbage = describe_certificate(b"\x30\x03\x02\x01\x00");
    assert_eq!(garbage.subject_cn, None);
    assert_eq!(
        crate::render::hex(&garbage.sha1),
        crate::render::hex(&Sha1::digest(b"\x30\x03\x02\x01\x00"))
    );
}

fn u24(n: usize) -> [u8; 3] {
    [(n >> 16) as u8, (n >> 8) as u8, n as u8]
}

#[test]
fn certificate_message_and_handshake_framing() {
    let mut list = Vec::new();
    list.extend_from_slice(&u24(FILESRV01.len()));
    list.extend_from_slice(FILESRV01);
    let mut body = u24(list.len()).to_vec();
    body.extend(list);
    let mut msg = vec![HS_CERTIFICATE];
    msg.extend_from_slice(&u24(body.len()));
    msg.extend_from_slice(&body);
    assert_eq!(handshake_len(&msg), Some(msg.len()));
    let Some((typ, b, n)) = handshake_message(&msg) else {
        panic!("incomplete")
    };
    assert_eq!((typ, n), (HS_CERTIFICATE, msg.len()));
    assert_eq!(certificate_chain(b), Ok(vec![FILESRV01]));
    assert_eq!(handshake_message(&msg[..msg.len() - 1]), None);
    // A certificate length past the list.
    let mut bad = body.clone();
    bad[3..6].copy_from_slice(&u24(0xffffff));
    assert_eq!(
        certificate_chain(&bad),
        Err(TlsError::Malformed {
            message: "Certificate"
        })
    );
}

#[test]
fn hello_messages() {
    // ClientHello with SNI "10.99.0.1".
    let mut ch = vec![3, 3];
    ch.extend_from_slice(&[0; 32]);
    ch.push(0);
    ch.extend_from_slice(&[0, 2, 0xc0, 0x2f, 1, 0]);
    let name = b"10.99.0.1";
    let mut sni = ((name.len() + 3) as u16).to_be_bytes().to_vec();
    sni.push(0);
    sni.extend_from_slice(&(name.len() as u16).to_be_bytes());
    sni.extend_from_slice(name);
    let mut exts = EXT_SERVER_NAME.to_be_bytes().to_vec();
    exts.extend_from_slice(&(sni.len() as u16).to_be_bytes());
    exts.extend(sni);
    ch.extend_from_slice(&(exts.len() as u16).to_be_bytes());
    ch.extend(exts);
    assert_eq!(client_hello_sni(&ch), Some(&name[..]));

    // ServerHello choosing TLS 1.3 through supported_versions.
    let mut sh = vec![3, 3];
    sh.extend_from_slice(&[0; 32]);
    sh.push(0);
    sh.extend_from_slice(&[0x13, 0x01, 0]);
    sh.extend_from_slice(&[0, 6, 0, 43, 0, 2, 3, 4]);
    assert_eq!(server_hello_version(&sh), Some(0x0304));
    assert_eq!(server_hello_version(&sh[..36]), Some(0x0303));
    assert_eq!(version_name(0x0304), "TLS 1.3");
    assert_eq!(server_hello_version(&[3]), None);
}

#[test]
fn record_headers() {
    assert_eq!(
        record_header(&[22, 3, 3, 0, 5]),
        Some(Ok(RecordHeader {
            content_type: 22,
            version: 0x0303,
            length: 5
        }))
    );
    assert_eq!(
        record_header(&[22, 3, 3, 0xff, 0xff]),
        Some(Err(TlsError::RecordTooLong(0xffff)))
    );
    assert_eq!(
        record_header(&[0x47, 0x45, 0x54, 0x20, 0x2f]),
        Some(Err(TlsError::NotTls))
    );
    assert_eq!(record_header(&[22, 3]), None);
    assert_eq!(looks_like_client_hello(&[22, 3, 1, 0, 200, 1]), Some(true));
}
