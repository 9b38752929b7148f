use super::*;

fn matcher(text: &str) -> Matcher {
    Matcher::new(parse(text, "test.list", 5000).unwrap_or_default())
}

#[test]
fn builtin_lists_parse_and_document_their_entries() {
    let m = Matcher::with_builtins(true, Vec::new()).unwrap_or_else(|e| panic!("{e}"));
    let names: Vec<(String, u8, bool, u32)> = m
        .entries()
        .iter()
        .filter(|e| &*e.list == "vmmanager-defaults")
        .map(|e| match &e.pattern {
            Pattern::Exact(n) => (n.clone(), e.severity, e.candidate, e.id),
            _ => (String::new(), 0, false, 0),
        })
        .collect();
    assert_eq!(
        names,
        vec![
            ("WIN-J9D866ESIJ2".to_string(), 1, false, 9_100_001),
            ("WIN-LIVFRVQFMKO".to_string(), 1, false, 9_100_002),
            ("WIN-344VU98D3RU".to_string(), 1, false, 9_100_003),
            ("WIN-8OA3CCQAE4D".to_string(), 2, true, 9_100_004),
        ]
    );
    assert!(m
        .entries()
        .iter()
        .filter(|e| &*e.list == "vmmanager-defaults")
        .all(|e| e.note.is_some()));
    // The most severe list wins over the informational pattern.
    let e = m.lookup("win-j9d866esij2").map(|e| (&*e.list, e.severity));
    assert_eq!(e, Some(("vmmanager-defaults", 1)));
    assert_eq!(
        m.lookup("WIN-ABCDEFGHIJK").map(|e| (&*e.list, e.severity)),
        Some(("windows-default-names", 3))
    );
    assert_eq!(m.lookup("WIN-ABCDEFGHIJ"), None);
    let without = Matcher::with_builtins(false, Vec::new()).unwrap_or_else(|e| panic!("{e}"));
    assert!(without.lookup("WIN-ABCDEFGHIJK").is_none());
}

#[test]
fn exact_case_fqdn_and_netbios_truncation() {
    let m = matcher("@list lab\n@severity 2\nfileserver-primary-01\nDC01\n");
    assert_eq!(m.lookup("dc01").map(|e| e.id), Some(5001));
    assert_eq!(m.lookup("DC01.corp.example.com").map(|e| e.id), Some(5001));
    assert_eq!(m.lookup("dc01.").map(|e| e.id), Some(5001));
    // A NetBIOS name is the first 15 characters.
    assert_eq!(m.lookup("FILESERVER-PRIM").map(|e| e.id), Some(5000));
    assert_eq!(m.lookup("FILESERVER-PRI"), None);
    assert_eq!(m.lookup("DC012"), None);
    assert_eq!(m.lookup(""), None);
}

#[test]
fn globs_and_regexes() {
    let m = matcher(
        "DESKTOP-??????? severity=3\nkali*\nre:^(ATTACK|PWN)-\\d+$ severity=1\nsrv[0-9][!x]\n",
    );
    assert_eq!(m.lookup("desktop-4qk2m1l").map(|e| e.severity), Some(3));
    assert_eq!(m.lookup("DESKTOP-4QK2M1"), None);
    assert_eq!(m.lookup("Kali-Box").map(|e| e.id), Some(5001));
    assert_eq!(m.lookup("pwn-42").map(|e| e.severity), Some(1));
    assert_eq!(m.lookup("pwn-42x"), None);
    assert_eq!(m.lookup("SRV1A").map(|e| e.id), Some(5003));
    assert_eq!(m.lookup("SRV1X"), None);
}

#[test]
fn bad_lines_name_file_and_line() {
    let cases = [
        ("ok\n@severity 7\n", 2, "severity must be 1, 2 or 3"),
        ("re:([a-z\n", 1, "invalid regular expression"),
        ("host extra\n", 1, "unexpected 'extra'"),
        ("@bogus x\n", 1, "unknown directive @bogus"),
        ("srv[0-9\n", 1, "invalid glob"),
        ("# nothing\n", 0, "no entries"),
    ];
    for (text, line, msg) in cases {
        let e = parse(text, "lists/mine.list", 1)
            .err()
            .unwrap_or_else(|| panic!("{text:?} parsed"));
        assert_eq!(
            (e.source.as_str(), e.line),
            ("lists/mine.list", line),
            "{text:?}"
        );
        assert!(e.message.contains(msg), "{}", e.message);
        assert!(e
            .to_string()
            .starts_with(&format!("lists/mine.list:{line}: ")));
    }
}

#[test]
fn options_and_notes() {
    let e = parse(
        "@list mine\n@signature Mine\nBAD-HOST severity=1 candidate note=from ticket #42\n",
        "x",
        7,
    )
    .unwrap_or_default();
    assert_eq!(e.len(), 1);
    assert_eq!(
        (&*e[0].list, e[0].severity, e[0].candidate),
        ("mine", 1, true)
    );
    assert_eq!(e[0].note.as_deref(), Some("from ticket #42"));
    assert_eq!(
        e[0].signature_for("bad-host\u{1b}"),
        "Mine (bad-host\\e, unconfirmed candidate)"
    );
    assert_eq!(e[0].origin(), "x:3");
}

#[test]
fn noise_around_a_name_does_not_hide_it() {
    let m = Matcher::with_builtins(false, Vec::new()).unwrap_or_else(|e| panic!("{e}"));
    for raw in [
        "WIN-J9D866ESIJ2 ",
        " WIN-J9D866ESIJ2\t",
        "WIN-J9D866ESIJ2\0\0\0",
        "WIN-J9D866ESIJ2\u{fffd}",
        "\u{fffd}WIN-J9D866ESIJ2",
        "WIN-J9D866ESIJ2\u{200b}",
        "WIN-\u{200d}J9D866ESIJ2",
        "\u{feff}win-j9d866esij2",
        "WIN-J9D866ESIJ2$",
        "WIN-J9D866ESIJ2$\0",
        "WIN-J9D866ESIJ2.corp.example.",
        "WIN-J9D866ESIJ2\u{1b}[0m",
    ] {
        let hit = m.lookup(raw).map(|e| e.id);
        if raw.ends_with("[0m") {
            // Visible characters after the name make another name.
            assert_eq!(hit, None, "{raw:?}");
        } else {
            assert_eq!(hit, Some(9_100_001), "{raw:?}");
        }
    }
    assert_eq!(normalise(" win-j9d866esij2$\0"), "WIN-J9D866ESIJ2");
    // Noise alone is no name.
    assert!(m.lookup("\0\u{fffd} $").is_none());
    // Characters that change the name are not stripped.
    assert!(m.lookup("WIN-J9D866ESIJ3").is_none());
    assert!(m.lookup("XWIN-J9D866ESIJ2").is_none());
}

#[test]
fn patterns_see_a_bounded_prefix_of_long_names() {
    let m = matcher("*a*b*c*d1\n*ZZZ\nre:^WIN-[A-Z0-9]{11}$\n");
    // Past MAX_MATCHED bytes nothing is looked at (no DNS name is that
    // long): a pattern that only the tail would satisfy does not match.
    let long = format!("{}ZZZ", "ab".repeat(10_000));
    assert!(m.lookup(&long).is_none());
    let short = format!("{}ZZZ", "ab".repeat(100));
    assert!(m.lookup(&short).is_some());
    assert_eq!(prefix("é".repeat(200).as_str(), 255).len(), 254);
    assert_eq!(prefix("abc", 255), "abc");
    assert_eq!(
        m.lookup("WIN-LIVFRVQFMKO").map(|e| e.pattern.clone()),
        Some(Pattern::Regex("^WIN-[A-Z0-9]{11}$".into()))
    );
}

#[test]
fn thousands_of_globs_load_and_match() {
    // Shapes that are indexed (PREFIX*, *SUFFIX) and shapes that are not.
    let mut text = String::from("@list many\n");
    for i in 0..5_000 {
        text.push_str(&format!(
            "LAB{i:05}-*\n*-DEV{i:05}\nV[0-9]{i:05}?X\n*a*b*c*d{i}\n"
        ));
    }
    let m = matcher(&text);
    assert_eq!(m.entries().len(), 20_000);
    let id = |name: &str| m.lookup(name).map(|e| e.id);
    assert_eq!(id("lab04999-pc"), Some(5000 + 4 * 4999));
    assert_eq!(id("web-dev00007"), Some(5000 + 4 * 7 + 1));
    assert_eq!(id("V300123zX"), Some(5000 + 4 * 123 + 2));
    assert_eq!(id("xaxbxcxd42"), Some(5000 + 4 * 42 + 3));
    assert_eq!(id("LAB0500-x"), None);
    assert_eq!(id("nothing-here"), None);
}

#[test]
fn entries_name_the_builds_their_machines_run() {
    let builds = |text: &str| {
        parse(text, "t.list", 1).map(|e| e.iter().map(|e| e.builds.clone()).collect::<Vec<_>>())
    };
    assert_eq!(
        builds("A build=14393\nB build=17763,20348 note=two\nC"),
        Ok(vec![vec![14393], vec![17763, 20348], vec![]])
    );
    for bad in ["A build=", "A build=x", "A build=0", "A build=1,,2"] {
        let e = builds(bad).map_err(|e| e.to_string());
        assert!(
            e.as_ref()
                .is_err_and(|m| m.contains("build= takes up to 16 Windows build numbers")),
            "{bad}: {e:?}"
        );
    }
    let many = format!("A build={}", vec!["1"; 17].join(","));
    assert!(builds(&many).is_err());
    // The built-in entries carry the builds public reporting gives.
    let m = Matcher::with_builtins(true, Vec::new()).unwrap_or_else(|e| panic!("{e}"));
    let b = |n: &str| m.lookup(n).map(|e| e.builds.clone());
    assert_eq!(b("WIN-J9D866ESIJ2"), Some(vec![14393]));
    assert_eq!(b("WIN-LIVFRVQFMKO"), Some(vec![17763]));
    assert_eq!(b("WIN-344VU98D3RU"), Some(vec![]));
}

#[test]
fn allow_lists_and_networks() -> Result<(), regex::Error> {
    let entries =
        parse("@allow yes\nLAB-VM-01\nnet:192.0.2.0/24\n", "allow.list", 1).unwrap_or_default();
    assert!(entries.iter().all(|e| e.allow));
    let mut all = entries;
    all.extend(
        parse(
            "LAB-VM-01\nnet:198.51.100.0/24 severity=1\n",
            "watch.list",
            100,
        )
        .unwrap_or_default(),
    );
    let m = Matcher::new(all);
    // The watch entry matches; the allow entry says it must not alert.
    assert_eq!(m.lookup("lab-vm-01").map(|e| &*e.list), Some("watch"));
    assert!(m.allows("LAB-VM-01"));
    assert!(!m.allows("LAB-VM-02"));
    let ip = |s: &str| {
        s.parse::<std::net::IpAddr>()
            .unwrap_or(std::net::IpAddr::from([0, 0, 0, 0]))
    };
    assert!(m.allows_ip(ip("192.0.2.9")));
    assert!(m.lookup_ip(ip("192.0.2.9")).is_none());
    assert_eq!(m.lookup_ip(ip("198.51.100.7")).map(|e| e.severity), Some(1));
    assert!(m.lookup_ip(ip("203.0.113.1")).is_none());
    // A network is never matched as a name.
    assert!(m.lookup("198.51.100.7").is_none());
    let e = parse("@allow maybe\nX\n", "a.list", 1).map_err(|e| e.to_string());
    assert!(e.is_err_and(|m| m.contains("a.list:1") && m.contains("@allow takes yes or no")));
    let e = parse("net:not-a-net\n", "a.list", 1).map_err(|e| e.to_string());
    assert!(e.is_err_and(|m| m.contains("a.list:1")));
    Ok(())
}

/// One pass answers both questions, through every kind of pattern: the
/// most severe watch entry (the first of equals) and whether an allow
/// entry names it; a set of regexes with more than one pattern says which
/// matched.
#[test]
fn a_verdict_weighs_every_match_in_one_pass() {
    let mut all =
        parse("@allow yes\nre:^LAB-\\d+$\nre:^STAGING-\n", "allow.list", 1).unwrap_or_default();
    all.extend(
        parse(
            "re:^LAB- severity=3\nre:^LAB-7 severity=2\nLAB-7* severity=2\nre:-7$ severity=1\n",
            "watch.list",
            100,
        )
        .unwrap_or_default(),
    );
    let m = Matcher::new(all);
    let v = m.verdict("lab-77");
    assert_eq!(v.watched.map(|e| (e.id, e.severity)), Some((102, 2)));
    assert!(v.allowed);
    let v = m.verdict("LAB-7");
    assert_eq!(v.watched.map(|e| (e.id, e.severity)), Some((103, 1)));
    assert!(v.allowed);
    let v = m.verdict("LAB-X7");
    assert_eq!(v.watched.map(|e| (e.id, e.severity)), Some((100, 3)));
    assert!(!v.allowed);
    let v = m.verdict("staging-1");
    assert_eq!(v.watched.map(|e| e.id), None);
    assert!(v.allowed);
    let v = m.verdict("prod-1");
    assert!(v.watched.is_none() && !v.allowed);
}

/// Four regular expressions, each valid alone, too large together for one
/// compiled set (as four published MISP warning-list regexes were): every
/// one is in force, none takes the others or the built-ins down.
#[test]
fn regexes_too_large_together_are_compiled_apart() {
    let text: String = (0..4).map(|i| format!("re:\\w{{100}}{i}\n")).collect();
    let patterns: Vec<String> = (0..4).map(|i| format!("(?i)\\w{{100}}{i}")).collect();
    assert!(regex::RegexSet::new(&patterns).is_err());
    let user = parse(&text, "big.list", 100).unwrap_or_default();
    assert_eq!(user.len(), 4);
    let m = Matcher::with_builtins(true, user).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(m.left_out().count(), 0);
    for i in 0..4 {
        let name = format!("{}{i}", "A".repeat(100));
        assert_eq!(m.lookup(&name).map(|e| e.line), Some(i + 1), "{i}");
    }
    assert!(m.lookup("WIN-J9D866ESIJ2").is_some());
}

/// A list saved with a byte-order mark keeps its first entry.
#[test]
fn a_byte_order_mark_does_not_hide_the_first_entry() {
    let m = matcher("\u{feff}WIN-BOM00000001\nWIN-BOM00000002\n");
    assert!(m.lookup("WIN-BOM00000001").is_some());
    assert!(m.lookup("WIN-BOM00000002").is_some());
}

/// A machine's key: its first label, normalised, cut to NetBIOS length
/// on a character boundary, so that the forms of one name meet (the
/// carriers and the detector key machines by it).
#[test]
fn machine_keys() {
    assert_eq!(machine_key("win-j9d866esij2.corp.local"), "WIN-J9D866ESIJ2");
    assert_eq!(machine_key(" WIN-J9D866ESIJ2$ "), "WIN-J9D866ESIJ2");
    assert_eq!(machine_key("win-j9d866esij2.local."), "WIN-J9D866ESIJ2");
    assert_eq!(machine_key("DESKTOP-ABCDEFGHIJK"), "DESKTOP-ABCDEFG");
    assert_eq!(machine_key(" . "), "");
    assert_eq!(machine_key("win-\u{200b}abc"), "WIN-ABC");
    assert_eq!(machine_key("ABCDEFGHIJKLMNOPQRS"), "ABCDEFGHIJKLMNO");
    assert_eq!(machine_key("äbcdefghijklmnopq.x"), "ÄBCDEFGHIJKLMNO");
    assert_eq!(machine_key(".hidden"), "");
    assert_eq!(machine_key(""), "");
}

proptest::proptest! {
    /// ASCII names take the short way (no Unicode tables): it must give
    /// what the general one gives, NULs, controls, dots and `$` included.
    #[test]
    fn ascii_names_normalise_as_any_text_does(name in "[\\x00-\\x7f]{0,80}", tail in "[ .$\\x00\\t]{0,3}") {
        let s = format!("{tail}{name}{tail}");
        proptest::prop_assert_eq!(normalise(&s), normalise_unicode(&s));
    }
}

#[test]
fn ascii_names_normalised() {
    assert_eq!(normalise(" win-j9d866esij2$\t"), "WIN-J9D866ESIJ2");
    assert_eq!(
        normalise("\0desktop-1.corp.local.\0"),
        "DESKTOP-1.CORP.LOCAL"
    );
    assert_eq!(normalise("..."), "");
    assert_eq!(normalise("win-\u{200b}x"), "WIN-X");
    // Upper-cased on the stack up to 64 bytes, beyond in a new string.
    for len in [63, 64, 65, 200] {
        let name = "w".repeat(len);
        assert_eq!(normalise(&format!(" {name}$")), "W".repeat(len));
    }
    assert_eq!(normalise("WIN-J9D866ESIJ2."), "WIN-J9D866ESIJ2");
    // Byte by byte, the ASCII path trims what the general one trims.
    for b in 0..=0x7fu8 {
        let c = char::from(b);
        for name in [format!("{c}a{c}"), format!("{c}{c}b.{c}$"), format!("x{c}")] {
            assert_eq!(normalise(&name), normalise_unicode(&name), "{name:?}");
        }
    }
}
