//! Text at the edge: wire strings decoded for events, and escaped for
//! terminals. Names are attacker-controlled; nothing here fails.

/// Decodes UTF-16LE, stopping at the first NUL. Returns the text and whether
/// decoding was lossy (unpaired surrogate, odd byte count).
pub fn utf16le_lossy(bytes: &[u8]) -> (String, bool) {
    let units = bytes
        .chunks_exact(2)
        .map(|c| u16::from_le_bytes([c[0], c[1]]))
        .take_while(|&u| u != 0);
    let mut lossy = false;
    let mut s = String::new();
    for r in char::decode_utf16(units) {
        match r {
            Ok(c) => s.push(c),
            Err(_) => {
                lossy = true;
                s.push(char::REPLACEMENT_CHARACTER);
            }
        }
    }
    let terminated = bytes.chunks_exact(2).any(|c| c == [0, 0]);
    if bytes.len() % 2 == 1 && !terminated {
        lossy = true;
    }
    (s, lossy)
}

/// Decodes an 8-bit (OEM) string: UTF-8 when valid, else Latin-1.
pub fn oem(bytes: &[u8]) -> String {
    match std::str::from_utf8(bytes) {
        Ok(s) => s.to_owned(),
        Err(_) => bytes.iter().map(|&b| char::from(b)).collect(),
    }
}

/// Lower-case hex of `bytes`.
pub fn hex(bytes: &[u8]) -> String {
    use std::fmt::Write;
    let mut s = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        let _ = write!(s, "{b:02x}");
    }
    s
}

/// Escapes control characters (and backslashes) for a human-readable line:
/// `\n`, `\t`, `\r`, `\\`, `\e`, others as `\u{..}`.
pub fn escape_control(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '\x1b' => out.push_str("\\e"),
            c if c.is_control()
                || matches!(c, '\u{200e}' | '\u{200f}' | '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}') =>
            {
                out.push_str(&format!("\\u{{{:x}}}", c as u32))
            }
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn utf16_stops_at_nul_and_flags_lossy() {
        let name: Vec<u8> = "WIN-J9D866ESIJ2"
            .encode_utf16()
            .flat_map(u16::to_le_bytes)
            .chain([0, 0, 0x41, 0])
            .collect();
        assert_eq!(utf16le_lossy(&name), ("WIN-J9D866ESIJ2".to_string(), false));
        assert_eq!(
            utf16le_lossy(&[0x41, 0, 0x00, 0xd8, 0x42, 0]),
            ("A\u{fffd}B".to_string(), true)
        );
        assert_eq!(utf16le_lossy(&[0x41, 0, 0x42]), ("A".to_string(), true));
    }

    #[test]
    fn oem_keeps_every_byte() {
        assert_eq!(oem(b"WORKSTATION"), "WORKSTATION");
        assert_eq!(oem(&[0x41, 0xe9]), "A\u{e9}");
    }

    #[test]
    fn control_characters_are_escaped() {
        assert_eq!(
            escape_control("a\x1b[31mb\n\u{7}\u{202e}"),
            "a\\e[31mb\\n\\u{7}\\u{202e}"
        );
        assert_eq!(escape_control("x\\y"), "x\\\\y");
        assert_eq!(hex(&[0, 0xab]), "00ab");
    }
}
