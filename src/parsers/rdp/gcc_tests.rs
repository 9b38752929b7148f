use super::*;

fn block(typ: u16, body: &[u8]) -> Vec<u8> {
    let mut b = typ.to_le_bytes().to_vec();
    b.extend_from_slice(&((body.len() + 4) as u16).to_le_bytes());
    b.extend_from_slice(body);
    b
}

fn utf16_fixed(s: &str, n: usize) -> Vec<u8> {
    let mut v: Vec<u8> = s.encode_utf16().flat_map(u16::to_le_bytes).collect();
    v.resize(n, 0);
    v
}

/// TS_UD_CS_CORE as mstsc sends it (every optional field present).
pub(crate) fn core_block(name: &str) -> Vec<u8> {
    let mut b = Vec::new();
    b.extend_from_slice(&0x0008_0004u32.to_le_bytes());
    b.extend_from_slice(&1920u16.to_le_bytes());
    b.extend_from_slice(&1080u16.to_le_bytes());
    b.extend_from_slice(&0xca01u16.to_le_bytes());
    b.extend_from_slice(&0xaa03u16.to_le_bytes());
    b.extend_from_slice(&0x0409u32.to_le_bytes());
    b.extend_from_slice(&9600u32.to_le_bytes());
    b.extend(utf16_fixed(name, 32));
    b.extend_from_slice(&4u32.to_le_bytes());
    b.extend_from_slice(&0u32.to_le_bytes());
    b.extend_from_slice(&12u32.to_le_bytes());
    b.extend_from_slice(&[0; 64]);
    b.extend_from_slice(&0xca01u16.to_le_bytes());
    b.extend_from_slice(&1u16.to_le_bytes());
    b.extend_from_slice(&0u32.to_le_bytes());
    b.extend_from_slice(&24u16.to_le_bytes());
    b.extend_from_slice(&0x000fu16.to_le_bytes());
    b.extend_from_slice(&0x0001u16.to_le_bytes());
    b.extend(utf16_fixed("00330-80000-00000-AA123", 64));
    b.extend_from_slice(&[6, 0]);
    b.extend_from_slice(&1u32.to_le_bytes());
    block(CS_CORE, &b)
}

#[test]
fn client_blocks() {
    let mut data = core_block("WIN-J9D866ESIJ2");
    data.extend(block(CS_SECURITY, &[0x1b, 0, 0, 0, 0, 0, 0, 0]));
    let mut net = 3u32.to_le_bytes().to_vec();
    for name in [&b"rdpdr\0\0\0"[..], b"rdpsnd\0\0", b"cliprdr\0"] {
        net.extend_from_slice(name);
        net.extend_from_slice(&0x8080_0000u32.to_le_bytes());
    }
    data.extend(block(CS_NET, &net));
    data.extend(block(CS_CLUSTER, &[0x0d, 0, 0, 0, 0, 0, 0, 0]));
    data.extend(block(0xc0ff, &[1, 2, 3]));
    let cd = client_data(&data);
    let core = cd.core.unwrap_or_default();
    assert_eq!(
        crate::parsers::text::utf16le_lossy(core.client_name).0,
        "WIN-J9D866ESIJ2"
    );
    assert_eq!(
        (core.version, core.desktop_width, core.desktop_height),
        (0x0008_0004, 1920, 1080)
    );
    assert_eq!(
        (core.keyboard_layout, core.client_build, core.keyboard_type),
        (0x409, 9600, 4)
    );
    assert_eq!(
        (
            core.client_product_id,
            core.high_color_depth,
            core.early_capability_flags
        ),
        (Some(1), Some(24), Some(1))
    );
    assert_eq!(
        core.dig_product_id
            .map(|d| crate::parsers::text::utf16le_lossy(d).0),
        Some("00330-80000-00000-AA123".into())
    );
    assert_eq!(
        (core.connection_type, core.server_selected_protocol),
        (Some(6), Some(1))
    );
    assert_eq!(cd.encryption_methods, Some(0x1b));
    assert_eq!(cd.channels, vec![&b"rdpdr"[..], b"rdpsnd", b"cliprdr"]);
    assert_eq!(cd.cluster_flags, Some(0x0d));
}

#[test]
fn short_core_block_keeps_required_fields() {
    // An old client: the block ends after imeFileName.
    let full = core_block("SEPTU");
    let mut short = full[..4 + 128].to_vec();
    short[2..4].copy_from_slice(&132u16.to_le_bytes());
    let core = client_data(&short).core.unwrap_or_default();
    assert_eq!(
        crate::parsers::text::utf16le_lossy(core.client_name).0,
        "SEPTU"
    );
    assert_eq!((core.client_product_id, core.dig_product_id), (None, None));
}

#[test]
fn hostile_blocks() {
    // Length shorter than the header, length past the end, huge channel count.
    assert!(client_data(&[0x01, 0xc0, 0x02, 0x00]).core.is_none());
    assert!(client_data(&[0x01, 0xc0, 0xff, 0x7f, 0, 0]).core.is_none());
    let net = block(
        CS_NET,
        &[
            0xff, 0xff, 0xff, 0xff, b'a', 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
        ],
    );
    assert_eq!(client_data(&net).channels, vec![&b"a"[..]]);
    let full = core_block("X");
    for n in 0..full.len() {
        let _ = client_data(&full[..n]);
    }
}

#[test]
fn server_blocks() {
    let mut data = block(SC_CORE, &[0x04, 0, 0x08, 0, 0, 0, 0, 0]);
    let mut sec = vec![2, 0, 0, 0, 3, 0, 0, 0, 32, 0, 0, 0];
    let mut cert = 0x8000_0002u32.to_le_bytes().to_vec();
    cert.extend_from_slice(&2u32.to_le_bytes());
    for der in [&b"\x30\x01\x00"[..], b"\x30\x02\x00\x00"] {
        cert.extend_from_slice(&(der.len() as u32).to_le_bytes());
        cert.extend_from_slice(der);
    }
    sec.extend_from_slice(&(cert.len() as u32).to_le_bytes());
    sec.extend_from_slice(&[0x11; 32]);
    sec.extend(cert);
    data.extend(block(SC_SECURITY, &sec));
    let sd = server_data(&data);
    assert_eq!(
        (sd.version, sd.client_requested_protocols),
        (Some(0x0008_0004), Some(0))
    );
    assert_eq!(
        (sd.encryption_method, sd.encryption_level),
        (Some(2), Some(3))
    );
    assert_eq!(
        sd.certificate,
        Some(ServerCertificate::X509 {
            permanent: false,
            chain: vec![&b"\x30\x01\x00"[..], b"\x30\x02\x00\x00"]
        })
    );
    let prop = block(
        SC_SECURITY,
        &[1, 0, 0, 0, 2, 0, 0, 0, 0, 0, 0, 0, 4, 0, 0, 0, 1, 0, 0, 0],
    );
    assert_eq!(
        server_data(&prop).certificate,
        Some(ServerCertificate::Proprietary { permanent: true })
    );
}
