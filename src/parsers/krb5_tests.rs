use super::*;

use crate::synth::msg::{ctx, der, gstr, int, principal};

fn as_req() -> Vec<u8> {
    crate::synth::msg::krb5_as_req("WIN-J9D866ESIJ2")
}

#[test]
fn an_as_req_names_its_machine_account_and_netbios_address() -> Result<(), KrbError> {
    let b = as_req();
    assert!(looks_like(&b));
    let mut tcp = (b.len() as u32).to_be_bytes().to_vec();
    tcp.extend_from_slice(&b);
    assert!(looks_like_tcp(&tcp));
    assert_eq!(tcp_length(&tcp), Some(b.len()));
    let m = parse(&b)?;
    assert_eq!(m.msg_type, AS_REQ);
    assert_eq!(
        m.cname,
        Some(Principal {
            name_type: 1,
            components: vec![&b"WIN-J9D866ESIJ2$"[..]],
        })
    );
    assert_eq!(m.realm, Some(&b"CORP.EXAMPLE"[..]));
    assert_eq!(
        m.sname.map(|s| s.components),
        Some(vec![&b"krbtgt"[..], &b"CORP.EXAMPLE"[..]])
    );
    assert_eq!(m.etypes, [18, 17, 23]);
    assert_eq!(
        m.addresses,
        [HostAddress {
            addr_type: ADDR_NETBIOS,
            address: b"WIN-J9D866ESIJ2 ",
        }]
    );
    Ok(())
}

#[test]
fn a_tgs_rep_gives_its_client_and_its_tickets_service() -> Result<(), KrbError> {
    let enc = der(
        0x30,
        &[ctx(0, &int(18)), ctx(2, &der(0x04, &[0xee; 8]))].concat(),
    );
    let ticket = der(
        0x61,
        &der(
            0x30,
            &[
                ctx(0, &int(5)),
                ctx(1, &gstr("CORP.EXAMPLE")),
                ctx(2, &principal(3, &["cifs", "WIN-LIVFRVQFMKO.corp.example"])),
                ctx(3, &enc),
            ]
            .concat(),
        ),
    );
    let rep = der(
        0x30,
        &[
            ctx(0, &int(5)),
            ctx(1, &int(13)),
            ctx(3, &gstr("CORP.EXAMPLE")),
            ctx(4, &principal(1, &["alice"])),
            ctx(5, &ticket),
            ctx(6, &enc),
        ]
        .concat(),
    );
    let b = der(0x6d, &rep);
    let m = parse(&b)?;
    assert_eq!(m.msg_type, TGS_REP);
    assert_eq!(m.cname.map(|c| c.components), Some(vec![&b"alice"[..]]));
    assert_eq!(
        m.sname.map(|s| (s.name_type, s.components)),
        Some((3, vec![&b"cifs"[..], &b"WIN-LIVFRVQFMKO.corp.example"[..]]))
    );
    assert_eq!(m.ticket_etype, Some(18));
    Ok(())
}

#[test]
fn a_krb_error_gives_its_code_and_principals() -> Result<(), KrbError> {
    let b = crate::synth::msg::krb5_preauth_required("WIN-J9D866ESIJ2");
    let m = parse(&b)?;
    assert_eq!(m.msg_type, KRB_ERROR);
    assert_eq!(m.error_code, Some(25));
    assert_eq!(error_name(25), Some("KDC_ERR_PREAUTH_REQUIRED"));
    assert_eq!(error_name(9999), None);
    assert_eq!(
        m.cname.map(|c| c.components),
        Some(vec![&b"WIN-J9D866ESIJ2$"[..]])
    );
    Ok(())
}

#[test]
fn malformed_messages_are_errors() {
    let good = as_req();
    // Every truncation fails cleanly.
    for cut in 0..good.len() {
        assert!(parse(&good[..cut]).is_err(), "cut at {cut}");
    }
    // An AP-REQ (APPLICATION 14) is not one of the five.
    assert_eq!(
        parse(&der(0x6e, &der(0x30, &[]))),
        Err(KrbError::NotKerberos)
    );
    assert_eq!(parse(b"\x30\x00"), Err(KrbError::NotKerberos));
    // A request without a body.
    let no_body = der(
        0x6a,
        &der(0x30, &[ctx(1, &int(5)), ctx(2, &int(10))].concat()),
    );
    assert_eq!(
        parse(&no_body),
        Err(KrbError::Malformed { field: "req-body" })
    );
    // A cname whose components are integers, in an otherwise whole body.
    let bad = der(
        0x30,
        &[ctx(0, &int(1)), ctx(1, &der(0x30, &int(7)))].concat(),
    );
    let body = der(
        0x30,
        &[
            ctx(0, &der(0x03, &[0, 0, 0, 0, 0])),
            ctx(1, &bad),
            ctx(2, &gstr("R")),
            ctx(5, &der(0x18, b"20370913024805Z")),
            ctx(7, &int(1)),
            ctx(8, &der(0x30, &int(18))),
        ]
        .concat(),
    );
    let req = der(
        0x6a,
        &der(
            0x30,
            &[ctx(1, &int(5)), ctx(2, &int(10)), ctx(4, &body)].concat(),
        ),
    );
    assert_eq!(parse(&req), Err(KrbError::Malformed { field: "cname" }));
    // The same body without its nonce.
    let body = der(
        0x30,
        &[
            ctx(0, &der(0x03, &[0; 5])),
            ctx(2, &gstr("R")),
            ctx(5, &der(0x18, b"x")),
            ctx(8, &der(0x30, &int(18))),
        ]
        .concat(),
    );
    let req = der(
        0x6a,
        &der(
            0x30,
            &[ctx(1, &int(5)), ctx(2, &int(10)), ctx(4, &body)].concat(),
        ),
    );
    assert_eq!(parse(&req), Err(KrbError::Malformed { field: "req-body" }));
    // An error without the time fields its receiver requires.
    let err = der(
        0x7e,
        &der(
            0x30,
            &[
                ctx(0, &int(5)),
                ctx(1, &int(30)),
                ctx(6, &int(6)),
                ctx(9, &gstr("R")),
            ]
            .concat(),
        ),
    );
    assert_eq!(parse(&err), Err(KrbError::Malformed { field: "error" }));
    // A msg-type that contradicts the APPLICATION tag.
    let mut b = as_req();
    if let Some(at) = b.windows(5).position(|w| w == [0xa2, 0x03, 0x02, 0x01, 10]) {
        b[at + 4] = 12;
    }
    assert_eq!(parse(&b), Err(KrbError::Malformed { field: "msg-type" }));
    // Over TCP a length beyond the cap is not Kerberos.
    let mut tcp = 0x0100_0000u32.to_be_bytes().to_vec();
    tcp.push(0x6a);
    assert!(!looks_like_tcp(&tcp));
    assert!(!looks_like_tcp(&[0, 0]));
}

#[test]
fn resync_finds_a_record_whose_length_is_its_message() {
    use crate::parsers::Resync;
    // RFC 4120 7.2.2: a four-byte length, then the message: here an
    // AS-REQ ([APPLICATION 10], 0x6a) of eight bytes.
    let record = [
        0, 0, 0, 10, 0x6a, 0x08, 0x30, 0x06, 0xa1, 0x04, 0x02, 0x02, 0x00, 0x05,
    ];
    let mut b = vec![0x41, 0x00, 0x00];
    // Decoys: a length the message does not have, a tag that is not a
    // KDC message, a zero length.
    b.extend_from_slice(&[0, 0, 0, 10, 0x6a, 0x07]);
    b.extend_from_slice(&[0, 0, 0, 10, 0x30, 0x08]);
    b.extend_from_slice(&[0, 0, 0, 0, 0x6a, 0x00]);
    let at = b.len();
    b.extend_from_slice(&record);
    assert_eq!(resync_tcp(&b), Resync::At(at));
    assert_eq!(resync_tcp(&record[..5]), Resync::Keep(5));
    assert_eq!(resync_tcp(&[0x41; 8]), Resync::Keep(0));
}
