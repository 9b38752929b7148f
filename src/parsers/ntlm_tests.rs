use super::*;
use base64::Engine;

fn b64(s: &str) -> Vec<u8> {
    base64::engine::general_purpose::STANDARD
        .decode(s)
        .unwrap_or_default()
}

// curl 7.88 → impacket HTTP server, from fixtures/lab/http-ntlm-curl-good.pcap.
const CURL_NEGOTIATE: &str = "TlRMTVNTUAABAAAABoIIAAAAAAAAAAAAAAAAAAAAAAA=";
const CURL_CHALLENGE: &str = "TlRMTVNTUAACAAAACQAJADgAAAAGgooCC3swDsHZwj0AAAAAAAAAAH4AfgBBAAAACgBjRQAAAA9GSUxFU1JWMDEBABIARgBJAEwARQBTAFIAVgAwADEAAgAMAEwAQQBCAEcAUgBQAAMAKgBmAGkAbABlAHMAcgB2ADAAMQAuAGwAYQBiAC4AZQB4AGEAbQBwAGwAZQAEABYAbABhAGIALgBlAHgAYQBtAHAAbABlAAcACAAAywTP6n3dAQAAAAA=";
const CURL_AUTHENTICATE: &str = "TlRMTVNTUAADAAAAGAAYAEAAAACuAK4AWAAAAAYABgAGAQAABwAHAAwBAAALAAsAEwEAAAAAAAAAAAAABoKKAt8oJO4QiyGJZm4KODcqCZO3j+bRSVov5jQBv6b96lr5X+XdZQPOT6wBAQAAAAAAAADLBM/qfd0Bt4/m0UlaL+YAAAAAAQASAEYASQBMAEUAUwBSAFYAMAAxAAIADABMAEEAQgBHAFIAUAADACoAZgBpAGwAZQBzAHIAdgAwADEALgBsAGEAYgAuAGUAeABhAG0AcABsAGUABAAWAGwAYQBiAC4AZQB4AGEAbQBwAGwAZQAHAAgAAMsEz+p93QEAAAAAAAAAAExBQkdSUGxhYnVzZXJXT1JLU1RBVElPTg==";

fn u16s(s: &str) -> Vec<u8> {
    s.encode_utf16().flat_map(u16::to_le_bytes).collect()
}

#[test]
fn curl_negotiate() {
    let m = b64(CURL_NEGOTIATE);
    let Ok(Message::Negotiate(n)) = parse(&m) else {
        panic!("not a NEGOTIATE")
    };
    assert_eq!(n.flags.0, 0x0008_8206);
    assert_eq!(
        n.flags.names(),
        "oem|request_target|ntlm|always_sign|extended_session_security"
    );
    assert_eq!((n.domain, n.workstation, n.version), (None, None, None));
    assert_eq!(extent(&m), Some(32));
}

#[test]
fn curl_challenge_names_and_version() {
    let m = b64(CURL_CHALLENGE);
    let Ok(Message::Challenge(c)) = parse(&m) else {
        panic!("not a CHALLENGE")
    };
    assert_eq!(c.target_name, Some(&b"FILESRV01"[..]));
    assert!(!c.flags.has(Flags::UNICODE));
    assert_eq!(
        c.version.map(|v| v.to_string()),
        Some("10.0.17763".to_string())
    );
    assert_eq!(
        c.server_challenge,
        [0x0b, 0x7b, 0x30, 0x0e, 0xc1, 0xd9, 0xc2, 0x3d]
    );
    let pairs: Vec<(u16, String)> = av_pairs(c.target_info.unwrap_or_default())
        .filter(|(id, _)| *id <= av::DNS_TREE_NAME)
        .map(|(id, v)| (id, decode_name(v, true)))
        .collect();
    assert_eq!(
        pairs,
        vec![
            (1, "FILESRV01".into()),
            (2, "LABGRP".into()),
            (3, "filesrv01.lab.example".into()),
            (4, "lab.example".into()),
        ]
    );
    assert_eq!(extent(&m), Some(m.len()));
}

#[test]
fn curl_authenticate_oem_strings() {
    let m = b64(CURL_AUTHENTICATE);
    let Ok(Message::Authenticate(a)) = parse(&m) else {
        panic!("not an AUTHENTICATE")
    };
    assert!(!a.flags.has(Flags::UNICODE));
    assert_eq!(a.domain, Some(&b"LABGRP"[..]));
    assert_eq!(a.user, Some(&b"labuser"[..]));
    assert_eq!(a.workstation, Some(&b"WORKSTATION"[..]));
    assert_eq!(a.nt_response.map(<[u8]>::len), Some(174));
    assert_eq!(response_kind(&a), "ntlmv2");
    // The payload starts at 64: no VERSION, no MIC.
    assert_eq!((a.version, a.mic), (None, None));
    let echoed: Vec<u16> =
        av_pairs(ntlmv2_av_pairs(a.nt_response.unwrap_or_default()).unwrap_or_default())
            .map(|(id, _)| id)
            .collect();
    assert_eq!(echoed, vec![1, 2, 3, 4, 7]);
}

/// An AUTHENTICATE with VERSION and MIC, laid out as Windows does (payload
/// at 88), fields in an unusual order.
fn windows_authenticate(workstation: &str) -> Vec<u8> {
    let dom = u16s("CONTOSO");
    let user = u16s("alice");
    let ws = u16s(workstation);
    let mut nt = vec![0xaa; 16];
    nt.extend_from_slice(&[1, 1, 0, 0, 0, 0, 0, 0]);
    nt.extend_from_slice(&[0; 8 + 8 + 4]);
    let spn = u16s("cifs/fs01");
    nt.extend_from_slice(&av::TARGET_NAME.to_le_bytes());
    nt.extend_from_slice(&(spn.len() as u16).to_le_bytes());
    nt.extend_from_slice(&spn);
    nt.extend_from_slice(&[0, 0, 0, 0]);
    let lm = vec![0u8; 24];
    let mut payload = Vec::new();
    let mut fields = Vec::new();
    // Workstation first in the payload, then user, domain, NT, LM.
    for part in [&ws, &user, &dom, &nt, &lm] {
        fields.push((88 + payload.len()) as u32);
        payload.extend_from_slice(part);
    }
    let desc = |len: usize, off: u32| {
        let mut d = Vec::new();
        d.extend_from_slice(&(len as u16).to_le_bytes());
        d.extend_from_slice(&(len as u16).to_le_bytes());
        d.extend_from_slice(&off.to_le_bytes());
        d
    };
    let mut m = b"NTLMSSP\0\x03\0\0\0".to_vec();
    m.extend(desc(lm.len(), fields[4]));
    m.extend(desc(nt.len(), fields[3]));
    m.extend(desc(dom.len(), fields[2]));
    m.extend(desc(user.len(), fields[1]));
    m.extend(desc(ws.len(), fields[0]));
    m.extend(desc(0, 0));
    m.extend_from_slice(&0xe288_8215u32.to_le_bytes());
    m.extend_from_slice(&[10, 0, 0x7c, 0x4f, 0, 0, 0, 15]);
    m.extend_from_slice(&[0x11; 16]);
    m.extend_from_slice(&payload);
    m
}

#[test]
fn windows_authenticate_with_version_and_mic() {
    let m = windows_authenticate("WIN-J9D866ESIJ2");
    let Ok(Message::Authenticate(a)) = parse(&m) else {
        panic!("not an AUTHENTICATE")
    };
    assert_eq!(
        a.workstation.map(|w| decode_name(w, true)),
        Some("WIN-J9D866ESIJ2".into())
    );
    assert_eq!(a.user.map(|w| decode_name(w, true)), Some("alice".into()));
    assert_eq!(
        a.domain.map(|w| decode_name(w, true)),
        Some("CONTOSO".into())
    );
    assert_eq!(a.version.map(|v| v.to_string()), Some("10.0.20348".into()));
    assert_eq!(a.mic, Some(&[0x11u8; 16][..]));
    let spn = av_pairs(ntlmv2_av_pairs(a.nt_response.unwrap_or_default()).unwrap_or_default())
        .find(|(id, _)| *id == av::TARGET_NAME)
        .map(|(_, v)| decode_name(v, true));
    assert_eq!(spn, Some("cifs/fs01".into()));
    assert_eq!(extent(&m), Some(m.len()));
}

#[test]
fn negotiate_with_supplied_names_and_version() {
    let mut m = b"NTLMSSP\0\x01\0\0\0".to_vec();
    m.extend_from_slice(&(0x0200_3000u32 | 0x0000_0207).to_le_bytes());
    m.extend_from_slice(&[7, 0, 7, 0, 40, 0, 0, 0]); // domain at 40
    m.extend_from_slice(&[8, 0, 8, 0, 47, 0, 0, 0]); // workstation at 47
    m.extend_from_slice(&[10, 0, 0x61, 0x4a, 0, 0, 0, 15]);
    m.extend_from_slice(b"ARKDOM1ARKHOST1");
    m.extend_from_slice(b"1");
    let Ok(Message::Negotiate(n)) = parse(&m) else {
        panic!("not a NEGOTIATE")
    };
    assert_eq!(n.domain, Some(&b"ARKDOM1"[..]));
    assert_eq!(n.workstation, Some(&b"ARKHOST1"[..]));
    assert_eq!(n.version.map(|v| v.to_string()), Some("10.0.19041".into()));
}

#[test]
fn hostile_fields_are_absent_not_fatal() {
    let mut m = windows_authenticate("HOST");
    // Workstation offset far past the end, user length past the end.
    m[48..52].copy_from_slice(&0xffff_fff0u32.to_le_bytes());
    m[36..38].copy_from_slice(&0xfff0u16.to_le_bytes());
    let Ok(Message::Authenticate(a)) = parse(&m) else {
        panic!("not an AUTHENTICATE")
    };
    assert_eq!(a.workstation, None);
    assert_eq!(a.user, None);
    assert_eq!(
        a.domain.map(|w| decode_name(w, true)),
        Some("CONTOSO".into())
    );
    // extent() is capped.
    assert!(extent(&m).unwrap_or(usize::MAX) <= MAX_MESSAGE);
}

#[test]
fn truncated_and_foreign_input() {
    assert_eq!(
        parse(b"NTLMSSP\0\x03\0\0"),
        Err(NtlmError::Truncated {
            message: "NTLMSSP header",
            needed: 12,
            received: 11
        })
    );
    assert_eq!(parse(b"NTLMSSQ\0\x01\0\0\0"), Err(NtlmError::NoSignature));
    assert_eq!(
        parse(b"NTLMSSP\0\x09\0\0\0"),
        Err(NtlmError::UnknownType(9))
    );
    assert!(matches!(
        parse(b"NTLMSSP\0\x02\0\0\0\0\0"),
        Err(NtlmError::Truncated {
            message: "CHALLENGE",
            ..
        })
    ));
    assert!(matches!(
        parse(b"NTLMSSP\0\x03\0\0\0\0\0\0\0"),
        Err(NtlmError::Truncated {
            message: "AUTHENTICATE",
            ..
        })
    ));
    // A 16-byte NEGOTIATE (flags only) is valid.
    let Ok(Message::Negotiate(n)) = parse(b"NTLMSSP\0\x01\0\0\0\x07\x82\0\0") else {
        panic!()
    };
    assert_eq!(n.flags.0, 0x8207);
    for n in 0..CURL_AUTHENTICATE.len() {
        let m = b64(CURL_AUTHENTICATE);
        let _ = parse(&m[..n.min(m.len())]);
    }
}

#[test]
fn av_list_without_eol_and_with_lying_length() {
    let list = [1u8, 0, 2, 0, b'A', 0, 3, 0, 0xff, 0x7f, b'x'];
    let pairs: Vec<(u16, &[u8])> = av_pairs(&list).collect();
    assert_eq!(pairs, vec![(1u16, &[b'A', 0][..])]);
    assert_eq!(av_pairs(&[]).count(), 0);
    assert_eq!(av_pairs(&[0, 0, 0, 0, 1, 0, 0, 0]).count(), 0);
}

#[test]
fn response_kinds() {
    let base = Authenticate {
        flags: Flags(0),
        lm_response: None,
        nt_response: None,
        domain: None,
        user: None,
        workstation: None,
        session_key: None,
        version: None,
        mic: None,
    };
    assert_eq!(response_kind(&base), "anonymous");
    let z = [0u8; 1];
    assert_eq!(
        response_kind(&Authenticate {
            lm_response: Some(&z),
            ..base.clone()
        }),
        "anonymous"
    );
    let r24 = [1u8; 24];
    assert_eq!(
        response_kind(&Authenticate {
            nt_response: Some(&r24),
            user: Some(b"u"),
            ..base.clone()
        }),
        "ntlmv1"
    );
    assert_eq!(
        response_kind(&Authenticate {
            lm_response: Some(&r24),
            user: Some(b"u"),
            ..base.clone()
        }),
        "lm"
    );
}

/// A CHALLENGE whose target-info list has no MsvAvEOL and whose length runs
/// past the message (Zeek's ntlm-unterminated-av-sequence case): the pairs
/// that are there still give the server's names.
#[test]
fn challenge_with_unterminated_target_info_keeps_its_names() {
    let mut info = Vec::new();
    for (id, name) in [(1u16, "WIN-LIVFRVQFMKO"), (3, "win-livfrvqfmko.corp")] {
        let v = u16s(name);
        info.extend_from_slice(&id.to_le_bytes());
        info.extend_from_slice(&(v.len() as u16).to_le_bytes());
        info.extend(v);
    }
    // A third pair cut short by the end of the message, and no EOL.
    info.extend_from_slice(&[4, 0, 40, 0, b'c', 0]);
    let mut m = b"NTLMSSP\0\x02\0\0\0".to_vec();
    m.extend_from_slice(&[0, 0, 0, 0, 48, 0, 0, 0]); // empty target name
    m.extend_from_slice(&0x0081_8201u32.to_le_bytes()); // UNICODE | TARGET_INFO ...
    m.extend_from_slice(&[1, 2, 3, 4, 5, 6, 7, 8]);
    m.extend_from_slice(&[0; 8]);
    let claimed = info.len() as u16 + 200;
    m.extend_from_slice(&claimed.to_le_bytes());
    m.extend_from_slice(&claimed.to_le_bytes());
    m.extend_from_slice(&48u32.to_le_bytes());
    m.extend(info);
    let Ok(Message::Challenge(c)) = parse(&m) else {
        panic!("not a CHALLENGE")
    };
    let pairs: Vec<(u16, String)> = av_pairs(c.target_info.unwrap_or_default())
        .map(|(id, v)| (id, decode_name(v, true)))
        .collect();
    assert_eq!(
        pairs,
        [
            (1, "WIN-LIVFRVQFMKO".to_string()),
            (3, "win-livfrvqfmko.corp".to_string())
        ]
    );
    // A list that starts outside the message is still absent.
    let mut outside = m.clone();
    outside[44..48].copy_from_slice(&4000u32.to_le_bytes());
    let Ok(Message::Challenge(c)) = parse(&outside) else {
        panic!("not a CHALLENGE")
    };
    assert_eq!(c.target_info, None);
}

/// Unknown bits are written in hex after the named ones.
#[test]
fn flag_names_with_unknown_bits() {
    assert_eq!(Flags(0).names(), "");
    assert_eq!(Flags(0x0004_0000).names(), "0x00040000");
    assert_eq!(Flags(0x0004_0009).names(), "unicode|r10|0x00040000");
    assert_eq!(Flags(0x0000_0003).names(), "unicode|oem");
    // Every bit: the 26 names once each, in the table's order, then the
    // six bits MS-NLMP leaves unnamed.
    let all = Flags(u32::MAX).names();
    let names: Vec<&str> = all.split('|').collect();
    assert_eq!(names.len(), 27);
    assert_eq!(names.first(), Some(&"unicode"));
    assert_eq!(names.get(25), Some(&"r7"));
    assert_eq!(names.last(), Some(&"0x1d240000"));
    assert_eq!(
        Flags(0x0004_0000 | 0x0000_0004).names(),
        "request_target|0x00040000"
    );
    assert_eq!(Flags(0x8000_0000).names(), "56");
}

/// A VERSION is written `major.minor.build`, whatever its numbers.
#[test]
fn version_text() {
    let text = |major, minor, build| {
        Version {
            major,
            minor,
            build,
            revision: 15,
        }
        .with_text(str::to_owned)
    };
    assert_eq!(text(10, 0, 17763), "10.0.17763");
    assert_eq!(text(0, 0, 0), "0.0.0");
    assert_eq!(text(255, 255, 65535), "255.255.65535");
    assert_eq!(
        Version {
            major: 6,
            minor: 1,
            build: 7601,
            revision: 15
        }
        .to_string(),
        "6.1.7601"
    );
}
