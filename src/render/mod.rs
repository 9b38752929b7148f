//! How values are written for logs and people: timestamps, hex, and
//! control characters escaped for a terminal (names are attacker-controlled).

pub mod alert;
pub mod json;
mod time;

pub use time::{eve_timestamp, parse_rfc3339, rfc3339_micros, x509_time, EveTimestamp};

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
    fn control_characters_are_escaped() {
        assert_eq!(
            escape_control("a\x1b[31mb\n\u{7}\u{202e}"),
            "a\\e[31mb\\n\\u{7}\\u{202e}"
        );
        assert_eq!(escape_control("x\\y"), "x\\\\y");
        assert_eq!(hex(&[0, 0xab]), "00ab");
    }
}
