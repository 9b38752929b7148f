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
                session_id: 100,
                tree_id: 0,
                share_type: None,
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

/// MS-CIFS 2.2.3.4: a null session's SESSION_SETUP_ANDX request carries a
/// TREE_CONNECT_ANDX behind it (AndXCommand 0x75, AndXOffset from the SMB
/// header); both are read. A chain that points backwards ends.
#[test]
fn smb1_andx_chain_carries_a_tree_connect() -> Result<(), SmbError> {
    let blob = b"NTLMSSP\0\x01\0\0\0";
    // SESSION_SETUP_ANDX (WordCount 12) whose AndX points past its bytes.
    let setup_words_len = 24;
    let setup_bytes = blob.to_vec();
    // Header 32 + WordCount 1 + words + ByteCount 2 + bytes.
    let tree_at = 32 + 1 + setup_words_len + 2 + setup_bytes.len();
    let mut words = vec![0x75, 0];
    words.extend_from_slice(&(tree_at as u16).to_le_bytes());
    words.extend_from_slice(&[0x04, 0x11, 0x32, 0, 0, 0, 0, 0, 0, 0]);
    words.extend_from_slice(&(blob.len() as u16).to_le_bytes());
    words.extend_from_slice(&[0; 8]);
    let mut msg = smb1(0x73, 0x18, 0, 0, &words, &setup_bytes);
    assert_eq!(msg.len(), tree_at);
    // TREE_CONNECT_ANDX: no further command; empty password; the Unicode
    // path starts at offset 82 from the header, even: no pad byte.
    msg.push(4);
    msg.extend_from_slice(&[0xff, 0, 0, 0, 0, 0, 0, 0]);
    let mut bytes = Vec::new();
    bytes.extend(utf16("\\\\WIN-J9D866ESIJ2\\IPC$"));
    bytes.extend_from_slice(&[0, 0]);
    bytes.extend_from_slice(b"?????\0");
    msg.extend_from_slice(&(bytes.len() as u16).to_le_bytes());
    msg.extend_from_slice(&bytes);
    let got = commands(&msg)?;
    let [Command::SessionSetup(s), Command::TreeConnect(t)] = &got[..] else {
        panic!("{got:?}");
    };
    assert_eq!(s.security_blob, &blob[..]);
    assert_eq!(t.path, &utf16("\\\\WIN-J9D866ESIJ2\\IPC$")[..]);
    // An AndXOffset that points back at the setup itself ends the walk.
    let mut looped = msg.clone();
    looped[32 + 3..32 + 5].copy_from_slice(&32u16.to_le_bytes());
    assert_eq!(commands(&looped)?.len(), 1);
    Ok(())
}

/// MS-CIFS 2.2.4.52: the request lists dialect strings, the response
/// picks one by index; MS-SMB2 2.2.4: the response's DialectRevision.
#[test]
fn negotiate_offers_and_choices() -> Result<(), SmbError> {
    let req = smb1(
        0x72,
        0x18,
        0,
        0,
        &[],
        b"\x02NT LANMAN 1.0\0\x02NT LM 0.12\0",
    );
    let [Command::Negotiate(n)] = &commands(&req)?[..] else {
        panic!();
    };
    assert_eq!(n.offered, [&b"NT LANMAN 1.0"[..], &b"NT LM 0.12"[..]]);
    let resp = smb1(0x72, 0x98, 0, 0, &[1, 0], &[]);
    let [Command::Negotiate(n)] = &commands(&resp)?[..] else {
        panic!();
    };
    assert_eq!((n.response, n.selected), (true, Some(1)));
    let mut resp2 = smb2_header(0, 1, 0, 0, 0);
    resp2.extend_from_slice(&[65, 0, 1, 0, 0x11, 0x03]);
    let [Command::Negotiate(n)] = &commands(&resp2)?[..] else {
        panic!();
    };
    assert_eq!((n.dialect, n.selected), (Dialect::Smb2, Some(0x0311)));
    assert_eq!(dialect_name(0x0311), "3.11");
    assert_eq!(dialect_name(0x02ff), "2.??");
    assert_eq!(dialect_name(0x0999), "2457");
    Ok(())
}

/// A tree connect's answer says what was opened: MS-SMB2 2.2.10 ShareType,
/// MS-CIFS 2.2.4.55.2 Service.
#[test]
fn tree_connect_answers_tell_the_share_type() -> Result<(), SmbError> {
    let mut r2 = smb2_header(3, 1, 0, 0, 5);
    r2[36..40].copy_from_slice(&9u32.to_le_bytes());
    r2.extend_from_slice(&[16, 0, 2, 0]);
    r2.extend_from_slice(&[0; 12]);
    let t = tree_connects(&r2)?;
    assert_eq!(
        (t[0].share_type, t[0].tree_id, t[0].session_id),
        (Some(ShareType::Pipe), 9, 5)
    );
    let r1 = smb1(0x75, 0x98, 0, 100, &[0xff, 0, 0, 0, 1, 0], b"IPC\0\0\0");
    assert_eq!(tree_connects(&r1)?[0].share_type, Some(ShareType::Pipe));
    let r1 = smb1(0x75, 0x98, 0, 100, &[0xff, 0, 0, 0, 1, 0], b"A:\0NTFS\0");
    assert_eq!(tree_connects(&r1)?[0].share_type, Some(ShareType::File));
    assert_eq!(status_name(0xc000_00cc), Some("STATUS_BAD_NETWORK_NAME"));
    assert_eq!(status_name(0xc000_9999), None);
    Ok(())
}

/// An SMB2 message as MS-SMB2 2.2.1.2 lays it out: the NetBIOS header
/// (type 0, 24-bit length), `FE 'S' 'M' 'B'`, StructureSize 64.
fn smb2_message(command: u8) -> Vec<u8> {
    let mut m = vec![0x00, 0x00, 0x00, 0x48, 0xfe, b'S', b'M', b'B', 0x40, 0x00];
    m.extend_from_slice(&[0; 2]);
    m.extend_from_slice(&[0; 4]);
    m.extend_from_slice(&[command, 0]);
    m.resize(4 + 72, 0);
    m
}

#[test]
fn resync_finds_the_next_smb_header_after_file_data() {
    use crate::parsers::Resync;
    let mut b = vec![0x41u8; 300];
    // Decoys: "SMB" too early for a NetBIOS header, a StructureSize that
    // is not 64, an SMB1 header in a message too short to hold it.
    b.splice(1..4, *b"SMB");
    b.extend_from_slice(b"\x00\x00\x00\x48\xfeSMB\x41\x00");
    b.extend_from_slice(b"\x00\x00\x00\x10\xffSMB\x73\x00");
    let at = b.len();
    b.extend_from_slice(&smb2_message(3));
    assert_eq!(resync(&b), Resync::At(at));
    let mut smb1 = vec![0x41, 0x00, 0x00, 0x00, 0x23, 0xff, b'S', b'M', b'B', 0x73];
    smb1.resize(4 + 0x23 + 1, 0);
    assert_eq!(resync(&smb1), Resync::At(1));
}

#[test]
fn resync_keeps_a_header_cut_at_the_end() {
    use crate::parsers::Resync;
    let m = smb2_message(1);
    let mut b = vec![0x41u8; 50];
    b.extend_from_slice(&m[..7]);
    // "SMB" is not whole yet: the last nine bytes may begin the header.
    assert_eq!(resync(&b), Resync::Keep(9));
    b.truncate(50);
    b.extend_from_slice(&m[..9]);
    // "SMB" is there, StructureSize is not: kept from the header's start.
    assert_eq!(resync(&b), Resync::Keep(9));
    assert_eq!(resync(b"SM"), Resync::Keep(2));
}
