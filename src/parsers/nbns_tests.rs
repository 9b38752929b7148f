use super::*;

/// `WIN-J9D866ESIJ2<00>` in first-level encoding (RFC 1001 14.1).
const WIN_00: &[u8] = b"FHEJEOCNEKDJEEDIDGDGEFFDEJEKDCAA";
/// `*` padded with NULs: the node status wildcard.
const STAR: &[u8] = b"CKAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA";

fn name_field(encoded: &[u8]) -> Vec<u8> {
    let mut v = vec![32];
    v.extend_from_slice(encoded);
    v.push(0);
    v
}

/// RFC 1002 4.2.2: a broadcast NAME REGISTRATION REQUEST, the question
/// name again in the additional record through a pointer to offset 12.
fn registration() -> Vec<u8> {
    let mut m = vec![0x81, 0x88, 0x29, 0x10, 0, 1, 0, 0, 0, 0, 0, 1];
    m.extend(name_field(WIN_00));
    m.extend_from_slice(&[0x00, 0x20, 0x00, 0x01]);
    m.extend_from_slice(&[0xc0, 0x0c, 0x00, 0x20, 0x00, 0x01]);
    m.extend_from_slice(&[0x00, 0x04, 0x93, 0xe0, 0x00, 0x06]);
    m.extend_from_slice(&[0x00, 0x00, 10, 0, 0, 5]);
    m
}

#[test]
fn registration_request() {
    let m = registration();
    assert!(looks_like(&m));
    let msg = parse(&m).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(msg.transaction_id, 0x8188);
    assert!(!msg.response);
    assert_eq!(opcode_name(msg.opcode), "registration");
    assert!(msg.broadcast);
    assert_eq!(msg.questions.len(), 1);
    let q = &msg.questions[0];
    assert_eq!(q.name.name(), b"WIN-J9D866ESIJ2");
    assert_eq!(q.name.suffix(), 0x00);
    assert_eq!(q.qtype, TYPE_NB);
    assert_eq!(msg.records.len(), 1);
    let r = &msg.records[0];
    assert_eq!(r.name.name(), b"WIN-J9D866ESIJ2");
    assert_eq!(r.ttl, 300_000);
    assert_eq!(
        r.data,
        Rdata::Nb(vec![NbAddress {
            group: false,
            node_type: 0,
            address: [10, 0, 0, 5]
        }])
    );
}

#[test]
fn positive_query_response_with_two_addresses() {
    // RFC 1002 4.2.13: R, opcode 0, AA, RD; the answer names itself in full.
    let mut m = vec![0x12, 0x34, 0x85, 0x00, 0, 0, 0, 1, 0, 0, 0, 0];
    m.extend(name_field(WIN_00));
    m.extend_from_slice(&[0x00, 0x20, 0x00, 0x01, 0x00, 0x00, 0x00, 0x3c, 0x00, 0x0c]);
    m.extend_from_slice(&[0x60, 0x00, 192, 168, 56, 7]);
    m.extend_from_slice(&[0xe0, 0x00, 10, 9, 8, 7]);
    let msg = parse(&m).unwrap_or_else(|e| panic!("{e}"));
    assert!(msg.response && msg.authoritative && !msg.broadcast);
    assert_eq!(rcode_name(msg.rcode), "ok");
    assert!(msg.questions.is_empty());
    assert_eq!(
        msg.records[0].data,
        Rdata::Nb(vec![
            NbAddress {
                group: false,
                node_type: 3,
                address: [192, 168, 56, 7]
            },
            NbAddress {
                group: true,
                node_type: 3,
                address: [10, 9, 8, 7]
            },
        ])
    );
}

#[test]
fn node_status_request_and_response() {
    let mut q = vec![0x00, 0x07, 0x00, 0x00, 0, 1, 0, 0, 0, 0, 0, 0];
    q.extend(name_field(STAR));
    q.extend_from_slice(&[0x00, 0x21, 0x00, 0x01]);
    assert!(looks_like(&q));
    let msg = parse(&q).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(msg.questions[0].qtype, TYPE_NBSTAT);
    assert_eq!(msg.questions[0].name.name(), b"*");

    // RFC 1002 4.2.18: NUM_NAMES, 18-byte NODE_NAME entries, STATISTICS.
    let mut r = vec![0x00, 0x07, 0x84, 0x00, 0, 0, 0, 1, 0, 0, 0, 0];
    r.extend(name_field(STAR));
    let mut rdata = vec![3];
    for (name, suffix, flags) in [
        (&b"WIN-J9D866ESIJ2"[..], 0x00u8, 0x0400u16),
        (b"WIN-J9D866ESIJ2", 0x20, 0x0400),
        (b"WORKGROUP", 0x00, 0x8400),
    ] {
        let mut n = name.to_vec();
        n.resize(15, b' ');
        n.push(suffix);
        n.extend_from_slice(&flags.to_be_bytes());
        rdata.extend(n);
    }
    rdata.extend_from_slice(&[0x08, 0x00, 0x27, 0xaa, 0xbb, 0xcc]);
    rdata.extend_from_slice(&[0; 40]);
    r.extend_from_slice(&[0x00, 0x21, 0x00, 0x01, 0, 0, 0, 0]);
    r.extend_from_slice(&(rdata.len() as u16).to_be_bytes());
    r.extend(rdata);
    let msg = parse(&r).unwrap_or_else(|e| panic!("{e}"));
    let Rdata::NodeStatus { names, unit_id } = &msg.records[0].data else {
        panic!("not a node status: {:?}", msg.records[0].data)
    };
    assert_eq!(*unit_id, Some([0x08, 0x00, 0x27, 0xaa, 0xbb, 0xcc]));
    let got: Vec<(&[u8], u8, bool, bool)> = names
        .iter()
        .map(|n| (n.name(), n.suffix(), n.group, n.active))
        .collect();
    assert_eq!(
        got,
        [
            (&b"WIN-J9D866ESIJ2"[..], 0x00, false, true),
            (&b"WIN-J9D866ESIJ2"[..], 0x20, false, true),
            (&b"WORKGROUP"[..], 0x00, true, true),
        ]
    );
    assert_eq!(suffix_type(0x20, false), "file_server");
    assert_eq!(suffix_type(0x00, true), "domain");
}

#[test]
fn lying_counts_lengths_and_names_are_errors() {
    let m = registration();
    // Every truncation is an error, never a panic.
    for cut in 0..m.len() {
        assert!(parse(&m[..cut]).is_err(), "cut at {cut}");
    }
    // A record count past the cap.
    let mut many = m.clone();
    many[10] = 0xff;
    assert_eq!(parse(&many), Err(NbnsError::NotNbns));
    assert!(!looks_like(&many));
    // A pointer to itself, and one forwards.
    let mut looped = m.clone();
    looped[50] = 0xc0;
    looped[51] = 50;
    assert_eq!(parse(&looped), Err(NbnsError::BadName));
    // A letter outside A-P.
    let mut bad = m.clone();
    bad[13] = b'Z';
    assert_eq!(parse(&bad), Err(NbnsError::BadName));
    assert!(!looks_like(&bad));
    // An RDLENGTH past the end.
    let mut long = m;
    let at = long.len() - 8;
    long[at] = 0xff;
    assert_eq!(
        parse(&long),
        Err(NbnsError::Truncated {
            section: "resource record"
        })
    );
    // A node status claiming more names than it holds keeps what is there.
    assert_eq!(
        node_status(&[200, b'A']),
        Rdata::NodeStatus {
            names: Vec::new(),
            unit_id: None
        }
    );
}

#[test]
fn scope_labels_are_kept() {
    let mut m = vec![0, 1, 0x01, 0x10, 0, 1, 0, 0, 0, 0, 0, 0];
    m.push(32);
    m.extend_from_slice(WIN_00);
    m.extend_from_slice(b"\x04corp\x03lan\x00");
    m.extend_from_slice(&[0x00, 0x20, 0x00, 0x01]);
    let msg = parse(&m).unwrap_or_else(|e| panic!("{e}"));
    let scope: Vec<&[u8]> = msg.questions[0].name.scope_labels().collect();
    assert_eq!(scope, [&b"corp"[..], b"lan"]);
}
