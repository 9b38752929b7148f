//! The client core data's codes (MS-RDPBCGR 2.2.1.3.2) as EVE writes them:
//! the RDP version (`v10.7`), the operating system of a build number
//! (`Windows 10`), the keyboard type (`enhanced`), the keyboard layout's
//! language tag (`en-US`, MS-LCID) and the early capability flags.

/// The RDP version of a client or server core data `version` field
/// (`v4`, `v5` for 5.0 to 8.1, `v10.0` ... `v10.12`).
pub fn version_name(code: u32) -> Option<&'static str> {
    const TEN: [&str; 13] = [
        "v10.0", "v10.1", "v10.2", "v10.3", "v10.4", "v10.5", "v10.6", "v10.7", "v10.8", "v10.9",
        "v10.10", "v10.11", "v10.12",
    ];
    match code {
        0x0008_0001 => Some("v4"),
        0x0008_0004 => Some("v5"),
        c @ 0x0008_0005..=0x0008_0011 => TEN.get((c - 0x0008_0005) as usize).copied(),
        _ => None,
    }
}

/// The Windows release a client build number belongs to, named as EVE
/// names it (`Windows XP`, `Windows 10`); `None` for a build no release
/// has.
pub fn os_name(build: u32) -> Option<&'static str> {
    Some(match build {
        528 => "Windows NT 3.1",
        807 => "Windows NT 3.5",
        1057 => "Windows NT 3.51",
        1381 => "Windows NT 4.0",
        2195 => "Windows 2000",
        2600 => "Windows XP",
        3790 => "Windows Server 2003",
        6000..=6002 => "Windows Vista",
        7600 | 7601 => "Windows 7",
        9200 => "Windows 8",
        9600 => "Windows 8.1",
        10240..=21999 => "Windows 10",
        22000..=29999 => "Windows 11",
        _ => return None,
    })
}

/// The keyboard type (`xt`, `ico`, `at`, `enhanced`, `1050`, `9140`, `jp`).
pub fn keyboard_type_name(code: u32) -> Option<&'static str> {
    Some(match code {
        1 => "xt",
        2 => "ico",
        3 => "at",
        4 => "enhanced",
        5 => "1050",
        6 => "9140",
        7 => "jp",
        _ => return None,
    })
}

/// The language tag of a keyboard layout's LCID (`1033` is `en-US`).
pub fn keyboard_layout_name(lcid: u32) -> Option<&'static str> {
    let lang: Result<&lcid::LanguageId, _> = lcid.try_into();
    lang.ok().map(|l| l.name)
}

/// The early capability flags' names, as EVE lists them (its spelling,
/// `support_errinfo_pdf`, kept), plus `support_skip_channeljoin`.
pub fn capabilities(flags: u16) -> Vec<&'static str> {
    const NAMES: [(u16, &str); 11] = [
        (0x0001, "support_errinfo_pdf"),
        (0x0002, "want_32bpp_session"),
        (0x0004, "support_statusinfo_pdu"),
        (0x0008, "strong_asymmetric_keys"),
        (0x0020, "valid_connection_type"),
        (0x0040, "support_monitor_layout_pdu"),
        (0x0080, "support_netchar_autodetect"),
        (0x0100, "support_dynvc_gfx_protocol"),
        (0x0200, "support_dynamic_time_zone"),
        (0x0400, "support_heartbeat_pdu"),
        (0x0800, "support_skip_channeljoin"),
    ];
    NAMES
        .iter()
        .filter(|(bit, _)| flags & bit != 0)
        .map(|(_, name)| *name)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_have_eves_names() {
        // MS-RDPBCGR 2.2.1.3.2: 0x0008000C is RDP 10.7.
        assert_eq!(version_name(0x0008_000c), Some("v10.7"));
        assert_eq!(version_name(0x0008_0004), Some("v5"));
        assert_eq!(version_name(0x0008_0011), Some("v10.12"));
        assert_eq!(version_name(0x0008_0012), None);
        assert_eq!(os_name(14393), Some("Windows 10"));
        assert_eq!(os_name(2600), Some("Windows XP"));
        assert_eq!(os_name(22631), Some("Windows 11"));
        assert_eq!(os_name(12345), Some("Windows 10"));
        assert_eq!(os_name(4), None);
        assert_eq!(keyboard_type_name(4), Some("enhanced"));
        assert_eq!(keyboard_type_name(9), None);
        assert_eq!(keyboard_layout_name(1033), Some("en-US"));
        assert_eq!(keyboard_layout_name(0x0407), Some("de-DE"));
        assert_eq!(keyboard_layout_name(0xdead_beef), None);
        assert_eq!(
            capabilities(0x0001 | 0x0010 | 0x0400),
            ["support_errinfo_pdf", "support_heartbeat_pdu"]
        );
    }
}
