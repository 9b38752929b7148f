//! Wire strings decoded into text. Names are attacker-controlled; nothing
//! here fails. (Escaping for terminals is in [`crate::render`].)

/// Decodes UTF-16LE, stopping at the first NUL. Returns the text and whether
/// decoding was lossy (unpaired surrogate, odd byte count).
pub fn utf16le_lossy(bytes: &[u8]) -> (String, bool) {
    let mut units = bytes
        .chunks_exact(2)
        .map(|c| u16::from_le_bytes([c[0], c[1]]))
        .take_while(|&u| u != 0)
        .peekable();
    let mut lossy = false;
    // One byte per unit for the usual ASCII name (no growing on the way);
    // never more than the bytes given.
    let mut s = String::with_capacity(bytes.len() / 2);
    // Its ASCII start a unit at a time; the decoder from the first other
    // unit on.
    while let Some(b) = units.peek().and_then(|&u| u8::try_from(u).ok()) {
        if !b.is_ascii() {
            break;
        }
        s.push(char::from(b));
        units.next();
    }
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

    proptest::proptest! {
        /// The ASCII start taken a unit at a time decodes as the UTF-16
        /// decoder alone does, whatever follows it.
        #[test]
        fn ascii_start_decodes_as_the_decoder_does(
            ascii in "[\\x01-\\x7f]{0,12}",
            rest in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..24),
        ) {
            let bytes: Vec<u8> = ascii.encode_utf16().flat_map(u16::to_le_bytes).chain(rest).collect();
            let units = bytes
                .chunks_exact(2)
                .map(|c| u16::from_le_bytes([c[0], c[1]]))
                .take_while(|&u| u != 0);
            let text: String = char::decode_utf16(units)
                .map(|r| r.unwrap_or(char::REPLACEMENT_CHARACTER))
                .collect();
            proptest::prop_assert_eq!(utf16le_lossy(&bytes).0, text);
        }
    }

    #[test]
    fn oem_keeps_every_byte() {
        assert_eq!(oem(b"WORKSTATION"), "WORKSTATION");
        assert_eq!(oem(&[0x41, 0xe9]), "A\u{e9}");
    }
}
