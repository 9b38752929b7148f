//! How values are written for logs and people: timestamps, hex, and
//! control characters escaped for a terminal (names are attacker-controlled).

pub mod alert;
pub mod json;
mod time;

pub use time::{eve_timestamp, parse_rfc3339, rfc3339_micros, x509_time, Stamp};

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

/// An address as `Display` writes it, IPv4 without `core::fmt` (two per
/// event: a dotted quad is put together on the stack).
pub struct Addr<'a>(pub &'a std::net::IpAddr);

impl serde::Serialize for Addr<'_> {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self.0 {
            std::net::IpAddr::V4(v4) => {
                let (text, len) = dotted_quad(v4.octets());
                let text = text.get(1..len).unwrap_or_default();
                s.serialize_str(std::str::from_utf8(text).unwrap_or_default())
            }
            v6 => v6.serialize(s),
        }
    }
}

/// Each octet as a dot and its decimal digits (four bytes, padded), and
/// how many of them count.
const OCTETS: [([u8; 4], usize); 256] = {
    let mut t = [([0u8; 4], 0usize); 256];
    let mut o = 0;
    while o < 256 {
        let (h, d, u) = ((o / 100) as u8, (o / 10 % 10) as u8, (o % 10) as u8);
        t[o] = if o >= 100 {
            ([b'.', b'0' + h, b'0' + d, b'0' + u], 4)
        } else if o >= 10 {
            ([b'.', b'0' + d, b'0' + u, 0], 3)
        } else {
            ([b'.', b'0' + u, 0, 0], 2)
        };
        o += 1;
    }
    t
};

/// `.a.b.c.d` and its length (ASCII; the address is from byte 1).
fn dotted_quad(octets: [u8; 4]) -> ([u8; 16], usize) {
    let mut text = [0u8; 16];
    let mut len = 0;
    for o in octets {
        let (piece, n) = OCTETS[usize::from(o)];
        if let Some(to) = text.get_mut(len..len + 4) {
            to.copy_from_slice(&piece);
        }
        len += n;
    }
    (text, len)
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

    /// Every octet value at every place, as `Display` writes it.
    #[test]
    fn addresses_are_written_as_display_writes_them() {
        for o in 0..=255u8 {
            for ip in [[o, 0, 0, 0], [10, o, 1, 2], [255, 255, o, 9], [1, 2, 3, o]] {
                let ip = std::net::IpAddr::from(ip);
                let want = serde_json::to_string(&ip.to_string()).unwrap_or_default();
                assert_eq!(serde_json::to_string(&Addr(&ip)).unwrap_or_default(), want);
            }
        }
        let v6 = std::net::IpAddr::from([0x2001, 0xdb8, 0, 0, 0, 0, 0, 1]);
        assert_eq!(
            serde_json::to_string(&Addr(&v6)).unwrap_or_default(),
            "\"2001:db8::1\""
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
