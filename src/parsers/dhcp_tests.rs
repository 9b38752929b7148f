use super::*;

/// A BOOTP header (RFC 2131 2) for an Ethernet client, then the magic
/// cookie and `options`.
fn v4(op: u8, xid: u32, ciaddr: [u8; 4], yiaddr: [u8; 4], options: &[u8]) -> Vec<u8> {
    let mut m = vec![op, 1, 6, 0];
    m.extend_from_slice(&xid.to_be_bytes());
    m.extend_from_slice(&[0, 0, 0x80, 0]); // secs, flags (broadcast)
    m.extend_from_slice(&ciaddr);
    m.extend_from_slice(&yiaddr);
    m.extend_from_slice(&[0; 8]); // siaddr, giaddr
    let mut chaddr = [0u8; 16];
    chaddr[..6].copy_from_slice(&[0xfa, 0x12, 0x85, 0x1a, 0x10, 0xd3]);
    m.extend_from_slice(&chaddr);
    m.extend_from_slice(&[0; 192]); // sname, file
    m.extend_from_slice(&MAGIC_COOKIE);
    m.extend_from_slice(options);
    m
}

#[test]
fn a_request_names_its_host_with_option_12_and_an_encoded_option_81(
) -> Result<(), Box<dyn std::error::Error>> {
    let mut opts = vec![53, 1, REQUEST, 50, 4, 10, 77, 0, 94, 12, 15];
    opts.extend_from_slice(b"WIN-J9D866ESIJ2");
    opts.extend_from_slice(&[60, 8]);
    opts.extend_from_slice(b"MSFT 5.0");
    // Option 81, flags S|E, RCODE1/2, then WIN-J9D866ESIJ2.corp.example.
    opts.extend_from_slice(&[81, 33, 0x05, 0, 0, 15]);
    opts.extend_from_slice(b"WIN-J9D866ESIJ2");
    opts.extend_from_slice(b"\x04corp\x07example\x00");
    opts.push(255);
    let b = v4(BOOTREQUEST, 0xfb1b_582a, [0; 4], [0; 4], &opts);
    assert!(looks_like_v4(&b));
    assert!(!looks_like_v6(&[0x40, 0, 0, 0]));
    let m = parse_v4(&b)?;
    assert_eq!(m.op, BOOTREQUEST);
    assert_eq!(m.xid, 0xfb1b_582a);
    assert_eq!(m.msg_type, Some(REQUEST));
    assert_eq!(m.chaddr, [0xfa, 0x12, 0x85, 0x1a, 0x10, 0xd3]);
    assert_eq!(m.ciaddr, None);
    assert_eq!(m.requested_ip, Some(Ipv4Addr::new(10, 77, 0, 94)));
    assert_eq!(m.hostname.as_deref(), Some(&b"WIN-J9D866ESIJ2"[..]));
    assert_eq!(m.vendor_class, Some(&b"MSFT 5.0"[..]));
    let fqdn = m.fqdn.ok_or("no FQDN")?;
    assert!(fqdn.wire);
    assert_eq!(fqdn.flags, 0x05);
    assert_eq!(fqdn.text().as_deref(), Some("WIN-J9D866ESIJ2.corp.example"));
    Ok(())
}

#[test]
fn an_ack_gives_the_lease_and_an_ascii_option_81_is_read_as_text(
) -> Result<(), Box<dyn std::error::Error>> {
    let mut opts = vec![
        53, 1, ACK, 54, 4, 10, 77, 0, 1, 51, 4, 0, 0, 0, 120, 81, 31, 0, 255, 255,
    ];
    opts.extend_from_slice(b"WIN-LIVFRVQFMKO.corp.example.");
    // Padding between options is skipped; everything after END ignored.
    opts.extend_from_slice(&[0, 0, 255, 12, 200]);
    let b = v4(BOOTREPLY, 7, [0; 4], [10, 77, 0, 50], &opts);
    let m = parse_v4(&b)?;
    assert_eq!(m.msg_type, Some(ACK));
    assert_eq!(m.yiaddr, Some(Ipv4Addr::new(10, 77, 0, 50)));
    assert_eq!(m.server_id, Some(Ipv4Addr::new(10, 77, 0, 1)));
    assert_eq!(m.lease_time, Some(120));
    assert_eq!(m.hostname, None);
    let fqdn = m.fqdn.ok_or("no FQDN")?;
    assert!(!fqdn.wire);
    assert_eq!(fqdn.text().as_deref(), Some("WIN-LIVFRVQFMKO.corp.example"));
    Ok(())
}

#[test]
fn overloaded_file_and_sname_fields_hold_options_too() -> Result<(), Box<dyn std::error::Error>> {
    let mut b = v4(
        BOOTREQUEST,
        9,
        [10, 0, 0, 7],
        [0; 4],
        &[53, 1, INFORM, 52, 1, 1, 255],
    );
    // The file field (offset 108) carries option 12.
    let file = 108;
    b[file..file + 7].copy_from_slice(&[12, 4, b'W', b'S', b'0', b'1', 255]);
    let m = parse_v4(&b)?;
    assert_eq!(m.ciaddr, Some(Ipv4Addr::new(10, 0, 0, 7)));
    assert_eq!(m.hostname.as_deref(), Some(&b"WS01"[..]));
    Ok(())
}

#[test]
fn malformed_v4_messages_are_errors() -> Result<(), DhcpError> {
    let good = v4(BOOTREQUEST, 1, [0; 4], [0; 4], &[53, 1, DISCOVER, 255]);
    for cut in [0, 10, 235, 239] {
        assert!(parse_v4(&good[..cut]).is_err(), "cut at {cut}");
    }
    // An option whose length runs past the message.
    let b = v4(BOOTREQUEST, 1, [0; 4], [0; 4], &[12, 40, b'A']);
    assert_eq!(
        parse_v4(&b),
        Err(DhcpError::Truncated { section: "options" })
    );
    // A requested address of three bytes, a lease time of two: skipped and
    // counted, the rest read (a server leases in the name all the same).
    let mut opts = vec![53, 1, DISCOVER, 50, 3, 1, 2, 3, 51, 2, 0, 1, 12, 4];
    opts.extend_from_slice(b"WS01");
    opts.push(255);
    let b = v4(BOOTREQUEST, 1, [0; 4], [0; 4], &opts);
    let m = parse_v4(&b)?;
    assert_eq!(m.bad_options, 2);
    assert_eq!(m.requested_ip, None);
    assert_eq!(m.lease_time, None);
    assert_eq!(m.msg_type, Some(DISCOVER));
    assert_eq!(m.hostname.as_deref(), Some(&b"WS01"[..]));
    let mut b = good.clone();
    b[236] = 0;
    assert_eq!(parse_v4(&b), Err(DhcpError::NotDhcp));
    // A wire-format name with a compression pointer is refused.
    let f = Fqdn {
        flags: FQDN_E,
        wire: true,
        name: b"\x03WIN\xc0\x00",
    };
    assert_eq!(f.text(), None);
    // A label longer than what is left.
    let f = Fqdn {
        flags: FQDN_E,
        wire: true,
        name: b"\x09WIN",
    };
    assert_eq!(f.text(), None);
    Ok(())
}

/// RFC 8415 21: code and length, then the value.
fn opt6(code: u16, v: &[u8]) -> Vec<u8> {
    let mut o = code.to_be_bytes().to_vec();
    o.extend_from_slice(&(v.len() as u16).to_be_bytes());
    o.extend_from_slice(v);
    o
}

fn duid_llt() -> Vec<u8> {
    let mut d = vec![0, 1, 0, 1, 0x32, 0x9e, 0x9d, 0x68];
    d.extend_from_slice(&[0xfa, 0x12, 0x85, 0x1a, 0x10, 0xd3]);
    d
}

#[test]
fn a_v6_reply_carries_the_fqdn_and_the_leased_address() -> Result<(), Box<dyn std::error::Error>> {
    let mut fqdn = vec![0x01];
    fqdn.extend_from_slice(b"\x0fWIN-J9D866ESIJ2\x04corp\x07example\x00");
    let mut iaaddr = "fd77::94".parse::<Ipv6Addr>()?.octets().to_vec();
    iaaddr.extend_from_slice(&[0, 0, 0, 120, 0, 0, 0, 120]);
    let mut ia_na = vec![0x85, 0x1a, 0x10, 0xd3, 0, 0, 0, 60, 0, 0, 0, 105];
    ia_na.extend(opt6(5, &iaaddr));
    let mut b = vec![v6::REPLY, 0xb0, 0xd9, 0x3f];
    b.extend(opt6(1, &duid_llt()));
    b.extend(opt6(3, &ia_na));
    b.extend(opt6(39, &fqdn));
    assert!(looks_like_v6(&b));
    assert!(!looks_like_v4(&b));
    let m = parse_v6(&b)?;
    assert_eq!(m.msg_type, v6::REPLY);
    assert_eq!(m.xid, 0xb0d93f);
    assert_eq!(m.addresses, [Ipv6Addr::new(0xfd77, 0, 0, 0, 0, 0, 0, 0x94)]);
    assert_eq!(
        m.fqdn.and_then(|f| f.text()).as_deref(),
        Some("WIN-J9D866ESIJ2.corp.example")
    );
    assert_eq!(
        m.client_duid.and_then(duid_mac),
        Some(&[0xfa, 0x12, 0x85, 0x1a, 0x10, 0xd3][..])
    );

    // The same message relayed: RELAY-FORW with the peer's address.
    let mut relay = vec![v6::RELAY_FORW, 0];
    relay.extend_from_slice(&"2001:db8::1".parse::<Ipv6Addr>()?.octets());
    relay.extend_from_slice(&"fe80::f812:85ff:fe1a:10d3".parse::<Ipv6Addr>()?.octets());
    relay.extend(opt6(9, &b));
    let r = parse_v6(&relay)?;
    assert_eq!(r.msg_type, v6::REPLY);
    assert_eq!(
        r.relayed_for,
        Some(Ipv6Addr::new(
            0xfe80, 0, 0, 0, 0xf812, 0x85ff, 0xfe1a, 0x10d3
        ))
    );
    assert_eq!(r.addresses, m.addresses);
    Ok(())
}

#[test]
fn malformed_v6_messages_are_errors() {
    assert_eq!(
        parse_v6(&[v6::SOLICIT, 0]),
        Err(DhcpError::Truncated { section: "header" })
    );
    assert_eq!(parse_v6(&[0x40, 0, 0, 0]), Err(DhcpError::NotDhcp));
    let mut b = vec![v6::SOLICIT, 1, 2, 3];
    b.extend_from_slice(&[0, 39, 0, 40, 1]);
    assert_eq!(
        parse_v6(&b),
        Err(DhcpError::Truncated { section: "options" })
    );
    // Relay envelopes nested deeper than the limit.
    let mut m = vec![v6::SOLICIT, 1, 2, 3];
    for _ in 0..=MAX_RELAY_DEPTH {
        let mut r = vec![v6::RELAY_FORW, 0];
        r.extend_from_slice(&[0; 32]);
        r.extend(opt6(9, &m));
        m = r;
    }
    assert_eq!(
        parse_v6(&m),
        Err(DhcpError::Truncated {
            section: "relay nesting"
        })
    );
    // A relay without its relayed message.
    let mut r = vec![v6::RELAY_FORW, 0];
    r.extend_from_slice(&[0; 32]);
    assert_eq!(
        parse_v6(&r),
        Err(DhcpError::Truncated {
            section: "relay message"
        })
    );
}

/// RFC 3396: an option given in several instances is one value, their
/// concatenation, in order (the file and sname fields after the options).
#[test]
fn a_host_name_split_over_instances_is_joined() -> Result<(), Box<dyn std::error::Error>> {
    let mut opts = vec![53, 1, DISCOVER, 12, 8];
    opts.extend_from_slice(b"WIN-J9D8");
    opts.extend_from_slice(&[60, 8]);
    opts.extend_from_slice(b"MSFT 5.0");
    opts.extend_from_slice(&[12, 7]);
    opts.extend_from_slice(b"66ESIJ2");
    opts.push(255);
    let b = v4(BOOTREQUEST, 1, [0; 4], [0; 4], &opts);
    let m = parse_v4(&b)?;
    assert_eq!(m.hostname.as_deref(), Some(&b"WIN-J9D866ESIJ2"[..]));
    assert_eq!(m.bad_options, 0);
    // One instance stays borrowed from the datagram.
    let b = v4(BOOTREQUEST, 1, [0; 4], [0; 4], &[12, 2, b'P', b'C', 255]);
    let m = parse_v4(&b)?;
    assert!(matches!(
        m.hostname,
        Some(std::borrow::Cow::Borrowed(b"PC"))
    ));
    Ok(())
}
