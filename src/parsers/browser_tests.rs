use super::*;

/// RFC 1001 14.1 first-level encoding of a NetBIOS name with its suffix.
fn encode(name: &str, suffix: u8) -> Vec<u8> {
    let mut b = [b' '; 16];
    b[..name.len()].copy_from_slice(name.as_bytes());
    b[15] = suffix;
    let mut out = vec![0x20];
    for x in b {
        out.push(b'A' + (x >> 4));
        out.push(b'A' + (x & 0x0f));
    }
    out.push(0);
    out
}

/// A broadcast datagram from 10.0.0.5 carrying a mailslot write of `data`
/// to `slot` (MS-CIFS 2.2.4.33.1 with three setup words, as Windows sends).
fn datagram(slot: &[u8], data: &[u8]) -> Vec<u8> {
    let mut smb = b"\xffSMB\x25".to_vec();
    smb.extend_from_slice(&[0; 27]);
    smb.push(17);
    let mut bytes = slot.to_vec();
    bytes.push(0);
    let data_offset = 32 + 1 + 34 + 2 + bytes.len();
    let words: [u16; 17] = [
        0,
        data.len() as u16,
        0,
        0,
        0,
        0,
        0,
        0,
        0,
        0,
        0,
        data.len() as u16,
        data_offset as u16,
        3,
        1,
        1,
        2,
    ];
    for w in words {
        smb.extend_from_slice(&w.to_le_bytes());
    }
    smb.extend_from_slice(&((bytes.len() + data.len()) as u16).to_le_bytes());
    smb.extend_from_slice(&bytes);
    smb.extend_from_slice(data);
    let mut d = vec![0x12, 0x02, 0x81, 0x23, 10, 0, 0, 5, 0, 138];
    let body_len = 68 + smb.len();
    d.extend_from_slice(&(body_len as u16).to_be_bytes());
    d.extend_from_slice(&[0, 0]);
    d.extend(encode("WIN-J9D866ESIJ2", 0x00));
    d.extend(encode("WORKGROUP", 0x1d));
    d.extend(smb);
    d
}

/// MS-BRWS 2.2.2: opcode, update count, periodicity, 16-byte name, OS
/// version, server type, browser version, signature, comment.
fn host_announcement(name: &str, comment: &str) -> Vec<u8> {
    let mut a = vec![HOST_ANNOUNCEMENT, 3];
    a.extend_from_slice(&720_000u32.to_le_bytes());
    let mut n = [0u8; 16];
    n[..name.len()].copy_from_slice(name.as_bytes());
    a.extend_from_slice(&n);
    a.extend_from_slice(&[10, 0]);
    a.extend_from_slice(&0x0001_1003u32.to_le_bytes());
    a.extend_from_slice(&[15, 1, 0x55, 0xaa]);
    a.extend_from_slice(comment.as_bytes());
    a.push(0);
    a
}

#[test]
fn a_host_announcement_is_read_whole() -> Result<(), BrowserError> {
    let d = datagram(
        b"\\MAILSLOT\\BROWSE",
        &host_announcement("WIN-J9D866ESIJ2", "x"),
    );
    assert!(looks_like(&d));
    let got = parse(&d)?;
    assert_eq!(got.source_ip, Ipv4Addr::new(10, 0, 0, 5));
    assert_eq!(got.source_name.name(), b"WIN-J9D866ESIJ2");
    assert_eq!(got.destination_name.name(), b"WORKGROUP");
    assert_eq!(got.destination_name.suffix(), 0x1d);
    assert_eq!(
        got.announcement,
        Some(Announcement {
            opcode: HOST_ANNOUNCEMENT,
            periodicity_ms: 720_000,
            server_name: b"WIN-J9D866ESIJ2",
            os_major: 10,
            os_minor: 0,
            server_type: 0x0001_1003,
            comment: b"x",
        })
    );
    Ok(())
}

#[test]
fn other_mailslots_and_messages_are_no_announcement() {
    let lanman = datagram(b"\\MAILSLOT\\LANMAN", &host_announcement("A", ""));
    assert_eq!(parse(&lanman).map(|d| d.announcement), Ok(None));
    // An election request (opcode 8) is not an announcement.
    let election = datagram(b"\\MAILSLOT\\BROWSE", &[8, 1, 0, 0, 0, 0]);
    assert_eq!(parse(&election).map(|d| d.announcement), Ok(None));
}

#[test]
fn lying_lengths_and_names_are_errors() {
    let mut d = datagram(b"\\MAILSLOT\\BROWSE", &host_announcement("A", ""));
    // DataOffset past the end.
    let at = 14 + 68 + 33 + 24;
    d[at] = 0xff;
    d[at + 1] = 0x7f;
    assert_eq!(
        parse(&d),
        Err(BrowserError::Truncated {
            section: "mailslot data"
        })
    );
    let short = datagram(b"\\MAILSLOT\\BROWSE", &[HOST_ANNOUNCEMENT, 0, 1]);
    assert_eq!(
        parse(&short),
        Err(BrowserError::Truncated {
            section: "announcement"
        })
    );
    let mut bad_name = datagram(b"\\MAILSLOT\\BROWSE", &host_announcement("A", ""));
    bad_name[15] = b'z';
    assert_eq!(parse(&bad_name), Err(BrowserError::BadName));
    assert_eq!(
        parse(&[0x13, 0, 0]),
        Err(BrowserError::Truncated { section: "header" })
    );
    assert!(!looks_like(&[0x20; 20]));
}
