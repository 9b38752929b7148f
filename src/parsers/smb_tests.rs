use super::*;

fn smb2_header(command: u16, flags: u32, status: u32, next: u32, session: u64) -> Vec<u8> {
    let mut h = b"\xfeSMB".to_vec();
    h.extend_from_slice(&64u16.to_le_bytes());
    h.extend_from_slice(&1u16.to_le_bytes());
    h.extend_from_slice(&status.to_le_bytes());
    h.extend_from_slice(&command.to_le_bytes());
    h.extend_from_slice(&1u16.to_le_bytes());
    h.extend_from_slice(&flags.to_le_bytes());
    h.extend_from_slice(&next.to_le_bytes());
    h.extend_from_slice(&7u64.to_le_bytes());
    h.extend_from_slice(&[0; 8]);
    h.extend_from_slice(&session.to_le_bytes());
    h.extend_from_slice(&[0; 16]);
    h
}

#[test]
fn smb2_request_and_response() {
    let blob = b"NTLMSSP\0\x01\0\0\0";
    let mut req = smb2_header(1, 0, 0, 0, 0);
    req.extend_from_slice(&25u16.to_le_bytes());
    req.extend_from_slice(&[0, 1]);
    req.extend_from_slice(&[0; 8]);
    req.extend_from_slice(&88u16.to_le_bytes());
    req.extend_from_slice(&(blob.len() as u16).to_le_bytes());
    req.extend_from_slice(&[0; 8]);
    req.extend_from_slice(blob);
    let got = session_setups(&req);
    assert_eq!(
        got,
        Ok(vec![SessionSetup {
            dialect: Dialect::Smb2,
            response: false,
            status: 0,
            session_id: 0,
            security_blob: blob
        }])
    );

    let mut resp = smb2_header(1, 1, STATUS_LOGON_FAILURE, 0, 0x1234);
    resp.extend_from_slice(&9u16.to_le_bytes());
    resp.extend_from_slice(&[0, 0, 0, 0, 0, 0]);
    let got = session_setups(&resp).unwrap_or_default();
    assert_eq!(got.len(), 1);
    assert_eq!(
        (got[0].response, got[0].status, got[0].session_id),
        (true, STATUS_LOGON_FAILURE, 0x1234)
    );
    assert!(got[0].security_blob.is_empty());
}

#[test]
fn smb2_compound_and_lying_offsets() {
    let mut first = smb2_header(5, 0, 0, 72, 1);
    first.extend_from_slice(&[0; 8]);
    let mut second = smb2_header(1, 0, 0, 0, 1);
    second.extend_from_slice(&25u16.to_le_bytes());
    second.extend_from_slice(&[0; 10]);
    second.extend_from_slice(&0xfff0u16.to_le_bytes());
    second.extend_from_slice(&0x0100u16.to_le_bytes());
    second.extend_from_slice(&[0; 8]);
    first.extend(second);
    let got = session_setups(&first).unwrap_or_default();
    assert_eq!(got.len(), 1);
    assert!(got[0].security_blob.is_empty());
    // A NextCommand pointing back to itself cannot loop forever.
    let lone = smb2_header(1, 0, 0, 0, 1);
    assert!(matches!(
        session_setups(&lone),
        Err(SmbError::Truncated { .. })
    ));
    assert_eq!(session_setups(b"\xfdSMB...."), Err(SmbError::NotSmb));
}

fn smb1(command: u8, flags: u8, status: u32, uid: u16, words: &[u8], bytes: &[u8]) -> Vec<u8> {
    let mut m = b"\xffSMB".to_vec();
    m.push(command);
    m.extend_from_slice(&status.to_le_bytes());
    m.push(flags);
    m.extend_from_slice(&0xc807u16.to_le_bytes());
    m.extend_from_slice(&[0; 12]);
    m.extend_from_slice(&[0, 0, 0xff, 0xfe]);
    m.extend_from_slice(&uid.to_le_bytes());
    m.extend_from_slice(&[0, 0]);
    m.push((words.len() / 2) as u8);
    m.extend_from_slice(words);
    m.extend_from_slice(&(bytes.len() as u16).to_le_bytes());
    m.extend_from_slice(bytes);
    m
}

#[test]
fn smb1_extended_security_session_setup() {
    let blob = b"NTLMSSP\0\x03\0\0\0";
    let mut words = vec![0xff, 0, 0, 0, 0x04, 0x11, 0x32, 0, 0, 0, 0, 0, 0, 0];
    words.extend_from_slice(&(blob.len() as u16).to_le_bytes());
    words.extend_from_slice(&[0; 8]);
    let mut bytes = blob.to_vec();
    bytes.extend_from_slice(b"Unix\0Samba\0");
    let req = smb1(0x73, 0x18, 0, 0, &words, &bytes);
    let got = session_setups(&req).unwrap_or_default();
    assert_eq!(got.len(), 1);
    assert_eq!(
        (got[0].dialect, got[0].response, got[0].security_blob),
        (Dialect::Smb1, false, &blob[..])
    );

    let fail = smb1(0x73, 0x98, STATUS_LOGON_FAILURE, 100, &[], &[]);
    let got = session_setups(&fail).unwrap_or_default();
    assert_eq!(
        (got[0].response, got[0].status, got[0].session_id),
        (true, STATUS_LOGON_FAILURE, 100)
    );
    // Other commands yield nothing; a cut header is an error.
    assert_eq!(
        session_setups(&smb1(0x72, 0x18, 0, 0, &[], &[])),
        Ok(vec![])
    );
    assert!(session_setups(&req[..20]).is_err());
}

#[test]
fn nbss() {
    assert_eq!(nbss_header(&[0, 0x01, 0x00, 0x10]), Some((0, 0x10010)));
    assert_eq!(nbss_header(&[0x85, 0, 0]), None);
}

#[test]
fn session_setup_and_session_recognition() {
    let nbss = |m: &[u8]| {
        let mut v = vec![0, 0, 0, m.len() as u8];
        v.extend_from_slice(m);
        v
    };
    let setup2 = nbss(&smb2_header(0x0001, 0, 0, 0, 0));
    let read2 = nbss(&smb2_header(0x0008, 0, 0, 0, 0));
    assert_eq!(is_session_setup(&setup2), Some(true));
    assert_eq!(is_session_setup(&read2), Some(false));
    // A compound (NextCommand set) may hold one further down the chain.
    let echo_first = nbss(&smb2_header(0x000d, 0, 0, 72, 0));
    assert_eq!(is_session_setup(&echo_first), Some(true));
    assert_eq!(is_session_setup(&setup2[..17]), None);
    let setup1 = nbss(&smb1(0x73, 0, 0, 0, &[], &[]));
    let echo1 = nbss(&smb1(0x2b, 0, 0, 0, &[], &[]));
    assert_eq!(is_session_setup(&setup1), Some(true));
    assert_eq!(is_session_setup(&echo1), Some(false));
    assert_eq!(is_session_setup(b"\x00\x00\x00\x10HTTP"), Some(false));
    assert!(looks_like_session(&setup2) && looks_like_session(&setup1));
    assert!(looks_like_session(b"\x81\x00\x00\x44"));
    assert!(!looks_like_session(b"\x81\x02\x00\x44"));
    assert!(!looks_like_session(b"\x00\x00\x00\x10HTTP"));
}

fn utf16(s: &str) -> Vec<u8> {
    s.encode_utf16().flat_map(u16::to_le_bytes).collect()
}

/// MS-CIFS 2.2.4.55.1: the path follows the password, aligned on two
/// bytes from the SMB header when Unicode (flags2 0x8000 here), and ends
/// with a NUL; the service string after it is not the path.
#[test]
fn smb1_tree_connect_andx_path_with_and_without_padding() {
    for (password, pad) in [(&b""[..], true), (&b"\0"[..], false)] {
        let words = [0xff, 0, 0, 0, 0x08, 0, password.len() as u8, 0];
        let mut bytes = password.to_vec();
        if pad {
            bytes.push(0);
        }
        bytes.extend(utf16("\\\\FS01\\DATA"));
        bytes.extend_from_slice(&[0, 0]);
        bytes.extend_from_slice(b"?????\0");
        let req = smb1(0x75, 0x18, 0, 100, &words, &bytes);
        let got = tree_connects(&req);
        assert_eq!(
            got,
            Ok(vec![TreeConnect {
                dialect: Dialect::Smb1,
                response: false,
                status: 0,
                message_id: 0,
                path: &utf16("\\\\FS01\\DATA")[..],
                unicode: true,
            }]),
            "padding {pad}"
        );
    }
    let resp = smb1(0x75, 0x98, 0xc000_00cc, 100, &[], &[]);
    let got = tree_connects(&resp).unwrap_or_default();
    assert_eq!(
        (got[0].response, got[0].status, got[0].path),
        (true, 0xc000_00cc, &b""[..])
    );
    assert_eq!(is_wanted(&[&[0, 0, 0, 40][..], &resp].concat()), Some(true));
}

/// MS-SMB2 2.2.9: PathOffset counts from the SMB2 header; a TREE_CONNECT
/// second in a compound is found; a path past the message is an error.
#[test]
fn smb2_tree_connect_in_a_compound_and_a_lying_offset() {
    let path = utf16("\\\\WIN-LIVFRVQFMKO\\IPC$");
    let mut tree = smb2_header(3, 0, 0, 0, 5);
    tree.extend_from_slice(&9u16.to_le_bytes());
    tree.extend_from_slice(&0u16.to_le_bytes());
    tree.extend_from_slice(&72u16.to_le_bytes());
    tree.extend_from_slice(&(path.len() as u16).to_le_bytes());
    tree.extend_from_slice(&path);
    let mut echo = smb2_header(13, 0, 0, 72, 5);
    echo.extend_from_slice(&[4, 0, 0, 0]);
    echo.resize(72, 0);
    let msg = [echo, tree.clone()].concat();
    let got = tree_connects(&msg).unwrap_or_default();
    assert_eq!(got.len(), 1);
    assert_eq!(
        (got[0].path, got[0].message_id, got[0].unicode),
        (&path[..], 7, true)
    );
    let mut lying = tree;
    lying[64 + 4] = 0xf0;
    assert_eq!(
        tree_connects(&lying),
        Err(SmbError::Truncated {
            structure: "TREE_CONNECT path"
        })
    );
    assert_eq!(tree_connects(b"junk"), Err(SmbError::NotSmb));
}
