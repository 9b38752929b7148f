//! How values are written for logs and people: timestamps, hex, and
//! control characters escaped for a terminal (names are attacker-controlled).

pub mod alert;
pub mod json;
mod time;

pub use time::{eve_timestamp, parse_rfc3339, rfc3339_micros, x509_time, EveTimestamp};

/// Lower-case hex of `bytes`.
pub fn hex(bytes: &[u8]) -> String {
    let mut out = vec![0u8; bytes.len() * 2];
    hex_into(bytes, &mut out);
    String::from_utf8(out).unwrap_or_default()
}

/// Lower-case hex of `bytes` into `out`, two digits a byte, as far as
/// `out` has room.
pub fn hex_into(bytes: &[u8], out: &mut [u8]) {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    for (pair, &b) in out.chunks_exact_mut(2).zip(bytes) {
        pair.copy_from_slice(&[DIGITS[usize::from(b >> 4)], DIGITS[usize::from(b & 15)]]);
    }
}

/// `0x` and the eight lower-case hex digits of `n` (ASCII).
pub fn hex32_text(n: u32) -> [u8; 10] {
    let mut text = *b"0x00000000";
    if let Some(digits) = text.get_mut(2..) {
        hex_into(&n.to_be_bytes(), digits);
    }
    text
}

/// Serializes an optional 32-bit code as `0x` and eight hex digits (a
/// record keeps the number; the text is made only where it is written).
pub fn hex32<S: serde::Serializer>(v: &Option<u32>, s: S) -> Result<S::Ok, S::Error> {
    match v {
        Some(v) => s.serialize_str(std::str::from_utf8(&hex32_text(*v)).unwrap_or_default()),
        None => s.serialize_none(),
    }
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
    fn control_characters_are_escaped() {
        assert_eq!(
            escape_control("a\x1b[31mb\n\u{7}\u{202e}"),
            "a\\e[31mb\\n\\u{7}\\u{202e}"
        );
        assert_eq!(escape_control("x\\y"), "x\\\\y");
        assert_eq!(hex(&[0, 0xab]), "00ab");
        assert_eq!(hex(&[]), "");
        assert_eq!(
            hex(&[0x01, 0x23, 0x45, 0x67, 0x89, 0xab, 0xcd, 0xef]),
            "0123456789abcdef"
        );
    }

    #[test]
    fn codes_written_in_hex_with_eight_digits() {
        #[derive(serde::Serialize)]
        struct Code(#[serde(serialize_with = "hex32")] Option<u32>);
        let text = |v| serde_json::to_string(&Code(v)).unwrap_or_default();
        assert_eq!(text(Some(0x0008_000c)), "\"0x0008000c\"");
        assert_eq!(text(Some(0)), "\"0x00000000\"");
        assert_eq!(text(Some(u32::MAX)), "\"0xffffffff\"");
        assert_eq!(text(None), "null");
        // `hex_into` fills only what it has room for.
        let mut two = [b'-'; 3];
        hex_into(&[0xab, 0xcd], &mut two);
        assert_eq!(&two, b"ab-");
    }
}
