//! Wire strings decoded into text. Names are attacker-controlled; nothing
//! here fails. (Escaping for terminals is in [`crate::render`].)

/// Decodes UTF-16LE, stopping at the first NUL. Returns the text and whether
/// decoding was lossy (unpaired surrogate, odd byte count).
pub fn utf16le_lossy(bytes: &[u8]) -> (String, bool) {
    let units = bytes
        .chunks_exact(2)
        .map(|c| u16::from_le_bytes([c[0], c[1]]))
        .take_while(|&u| u != 0);
    let mut lossy = false;
    // One byte per unit for the usual ASCII name (no growing on the way);
    // never more than the bytes given.
    let mut s = String::with_capacity(bytes.len() / 2);
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

    #[test]
    fn oem_keeps_every_byte() {
        assert_eq!(oem(b"WORKSTATION"), "WORKSTATION");
        assert_eq!(oem(&[0x41, 0xe9]), "A\u{e9}");
    }
}
