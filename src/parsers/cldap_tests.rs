use super::*;

fn unhex(s: &str) -> Vec<u8> {
    (0..s.len())
        .step_by(2)
        .filter_map(|i| s.get(i..i + 2).and_then(|h| u8::from_str_radix(h, 16).ok()))
        .collect()
}

/// A Windows-style ping (MS-ADTS 6.3.3.2): DnsDomain, Host, User, NtVer
/// V5|V5EX (scripts/capture-cldap.sh, frame 5).
const PING: &str = "308181020101637c04000a01000a0100020100020100010100a05da3190409446e73446f6d61696e040c636f72702e6578616d706c65a3170404486f7374040f57494e2d4a39443836364553494a32a318040455736572041057494e2d4a39443836364553494a3224a30d04054e74566572040416000000300a04084e65746c6f676f6e";

/// Samba's answer: LOGON_SAM_USER_UNKNOWN_EX with compressed names (frame 6).
const ANSWER: &str = "30818b0201016481850400308180307e04086e65746c6f676f6e3172047019000000bd1100002faec6a11b030a40b63aa67cfb758c7b04636f7270076578616d706c6500c0180464633031c01804434f5250000444433031001057494e2d4a39443836364553494a3224001744656661756c742d46697273742d536974652d4e616d6500c04d05000000ffffffff300c02010165070a010004000400";

/// The answer to NtVer V5EX|V5EP: the DC's sockaddr before NtVersion (frame 8).
const ANSWER_5EP: &str = "30819f020102648199040030819430819104086e65746c6f676f6e31818404818119000000bd1100002faec6a11b030a40b63aa67cfb758c7b04636f7270076578616d706c6500c0180464633031c01804434f5250000444433031001057494e2d4a39443836364553494a3224001744656661756c742d46697273742d536974652d4e616d6500c04d10020000000a4f000100000000000000000d000000ffffffff300c02010265070a010004000400";

#[test]
fn a_ping_gives_the_domain_host_user_and_version() -> Result<(), CldapError> {
    let b = unhex(PING);
    assert!(looks_like(&b));
    let Message::Request { message_id, terms } = message(&b)? else {
        return Err(CldapError::NotPing);
    };
    assert_eq!(message_id, 1);
    assert_eq!(term(&terms, "dnsdomain"), Some(&b"corp.example"[..]));
    assert_eq!(term(&terms, "Host"), Some(&b"WIN-J9D866ESIJ2"[..]));
    assert_eq!(term(&terms, "User"), Some(&b"WIN-J9D866ESIJ2$"[..]));
    assert_eq!(term(&terms, "NtVer"), Some(&[0x16, 0, 0, 0][..]));
    assert_eq!(term(&terms, "AAC"), None);
    Ok(())
}

#[test]
fn an_answer_gives_the_dcs_names() -> Result<(), CldapError> {
    let b = unhex(ANSWER);
    assert!(looks_like(&b));
    let Message::Entry {
        message_id,
        netlogon: Some(v),
    } = message(&b)?
    else {
        return Err(CldapError::NotPing);
    };
    assert_eq!(message_id, 1);
    let r = netlogon_response(v)?;
    assert_eq!(
        r,
        NetlogonResponse {
            opcode: LOGON_SAM_USER_UNKNOWN_EX,
            flags: 0x11bd,
            dns_forest_name: "corp.example".into(),
            dns_domain_name: "corp.example".into(),
            dns_host_name: "dc01.corp.example".into(),
            netbios_domain_name: "CORP".into(),
            netbios_computer_name: "DC01".into(),
            user_name: "WIN-J9D866ESIJ2$".into(),
            dc_site_name: "Default-First-Site-Name".into(),
            client_site_name: "Default-First-Site-Name".into(),
            nt_version: 5,
        }
    );
    let b = unhex(ANSWER_5EP);
    let Message::Entry {
        netlogon: Some(v), ..
    } = message(&b)?
    else {
        return Err(CldapError::NotPing);
    };
    let r = netlogon_response(v)?;
    assert_eq!(
        (r.nt_version, r.dns_host_name.as_str()),
        (0x0d, "dc01.corp.example")
    );
    Ok(())
}

#[test]
fn malformed_pings_and_answers_are_errors() {
    // Every cut inside the entry's LDAPMessage (142 bytes; the done
    // message follows it in the datagram) fails.
    let b = unhex(ANSWER);
    for cut in 0..142 {
        assert!(message(&b[..cut]).is_err(), "cut at {cut}");
    }
    assert!(message(&b[..142]).is_ok());
    // A forward compression pointer in the netlogon value.
    let mut v = unhex("17000000bd1100002faec6a11b030a40b63aa67cfb758c7b");
    v.extend_from_slice(&[0xc0, 0x40]);
    assert_eq!(
        netlogon_response(&v),
        Err(CldapError::Malformed {
            field: "netlogon name"
        })
    );
    // An older response layout is not read.
    assert_eq!(netlogon_response(&[19, 0, 0, 0]), Err(CldapError::NotPing));
    // Truncated after the names: no NtVersion.
    let mut v = unhex("17000000bd1100002faec6a11b030a40b63aa67cfb758c7b");
    v.extend_from_slice(&[0; 8]);
    v.extend_from_slice(&[5, 0]);
    assert_eq!(
        netlogon_response(&v),
        Err(CldapError::Malformed {
            field: "netlogon response"
        })
    );
    // A modify request is LDAP but not a ping.
    assert_eq!(
        message(&unhex("3005020101660000")),
        Err(CldapError::NotPing)
    );
    assert!(!looks_like(&unhex("3005020101660000")));
}
