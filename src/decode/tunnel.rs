//! Tunnels that carry mirrored traffic to a sensor: GRE (RFC 2784/2890),
//! ERSPAN types I, II and III (over GRE), and VXLAN (RFC 7348).

/// What a tunnel carries.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Inner<'a> {
    Ethernet(&'a [u8]),
    Ip(&'a [u8]),
}

const GRE_CHECKSUM: u16 = 0x8000;
const GRE_KEY: u16 = 0x2000;
const GRE_SEQUENCE: u16 = 0x1000;
const GRE_VERSION_MASK: u16 = 0x0007;

const PROTO_TEB: u16 = 0x6558; // transparent Ethernet bridging
const PROTO_IPV4: u16 = 0x0800;
const PROTO_IPV6: u16 = 0x86dd;
const PROTO_ERSPAN_I_II: u16 = 0x88be;
const PROTO_ERSPAN_III: u16 = 0x22eb;

/// The IANA port of VXLAN.
pub const VXLAN_PORT: u16 = 4789;

/// Takes a GRE header apart (`payload` starts at the GRE header).
pub fn gre(payload: &[u8]) -> Option<Inner<'_>> {
    let flags = u16::from_be_bytes([*payload.first()?, *payload.get(1)?]);
    let proto = u16::from_be_bytes([*payload.get(2)?, *payload.get(3)?]);
    if flags & GRE_VERSION_MASK != 0 {
        // Version 1 is PPTP's enhanced GRE: PPP inside, not a mirror.
        return None;
    }
    let mut off = 4;
    for bit in [GRE_CHECKSUM, GRE_KEY, GRE_SEQUENCE] {
        if flags & bit != 0 {
            off += 4;
        }
    }
    let body = payload.get(off..)?;
    match proto {
        PROTO_TEB => Some(Inner::Ethernet(body)),
        PROTO_IPV4 | PROTO_IPV6 => Some(Inner::Ip(body)),
        // ERSPAN type I has no header of its own and no GRE sequence number;
        // type II has both (8-byte header).
        PROTO_ERSPAN_I_II if flags & GRE_SEQUENCE == 0 => Some(Inner::Ethernet(body)),
        PROTO_ERSPAN_I_II => Some(Inner::Ethernet(body.get(8..)?)),
        PROTO_ERSPAN_III => {
            // 12-byte header; the O flag (lowest bit of the third word) adds
            // an 8-byte platform-specific subheader.
            let o_flag = body.get(11)? & 0x01 != 0;
            let len = if o_flag { 20 } else { 12 };
            Some(Inner::Ethernet(body.get(len..)?))
        }
        _ => None,
    }
}

/// Takes a VXLAN header apart (`udp` starts at the UDP header).
pub fn vxlan(udp: &[u8]) -> Option<Inner<'_>> {
    let dport = u16::from_be_bytes([*udp.get(2)?, *udp.get(3)?]);
    if dport != VXLAN_PORT {
        return None;
    }
    let hdr = udp.get(8..16)?;
    // The I flag says the VNI is valid; every VXLAN frame sets it.
    if hdr[0] & 0x08 == 0 {
        return None;
    }
    Some(Inner::Ethernet(udp.get(16..)?))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gre_variants() {
        let eth = [0xaa; 14];
        let mut teb = vec![0x00, 0x00, 0x65, 0x58];
        teb.extend_from_slice(&eth);
        assert_eq!(gre(&teb), Some(Inner::Ethernet(&eth[..])));

        // Key and sequence present: 8 more bytes.
        let mut keyed = vec![0x30, 0x00, 0x08, 0x00, 0, 0, 0, 1, 0, 0, 0, 2];
        keyed.extend_from_slice(&[0x45; 20]);
        assert_eq!(gre(&keyed), Some(Inner::Ip(&[0x45; 20][..])));

        // ERSPAN type I: no sequence bit, no ERSPAN header.
        let mut e1 = vec![0x00, 0x00, 0x88, 0xbe];
        e1.extend_from_slice(&eth);
        assert_eq!(gre(&e1), Some(Inner::Ethernet(&eth[..])));

        // ERSPAN type II: sequence number, then an 8-byte header.
        let mut e2 = vec![0x10, 0x00, 0x88, 0xbe, 0, 0, 0, 9];
        e2.extend_from_slice(&[0x10, 0x01, 0x00, 0x05, 0, 0, 0, 0]);
        e2.extend_from_slice(&eth);
        assert_eq!(gre(&e2), Some(Inner::Ethernet(&eth[..])));

        // ERSPAN type III with and without the platform subheader.
        let mut e3 = vec![0x10, 0x00, 0x22, 0xeb, 0, 0, 0, 9];
        e3.extend_from_slice(&[0x20, 0, 0, 5, 0, 0, 0, 0, 0, 0, 0, 0]);
        e3.extend_from_slice(&eth);
        assert_eq!(gre(&e3), Some(Inner::Ethernet(&eth[..])));
        let mut e3o = vec![0x10, 0x00, 0x22, 0xeb, 0, 0, 0, 9];
        e3o.extend_from_slice(&[0x20, 0, 0, 5, 0, 0, 0, 0, 0, 0, 0, 1]);
        e3o.extend_from_slice(&[0xff; 8]);
        e3o.extend_from_slice(&eth);
        assert_eq!(gre(&e3o), Some(Inner::Ethernet(&eth[..])));
    }

    #[test]
    fn gre_rejects_short_and_pptp() {
        assert_eq!(gre(&[0x00, 0x00, 0x65]), None);
        assert_eq!(gre(&[0x30, 0x00, 0x08, 0x00, 0, 0]), None);
        assert_eq!(gre(&[0x30, 0x01, 0x88, 0x0b, 0, 0, 0, 0]), None);
        assert_eq!(gre(&[0x10, 0x00, 0x22, 0xeb, 0, 0, 0, 9, 0x20]), None);
    }

    #[test]
    fn vxlan_on_its_port_only() {
        let mut p = vec![0x12, 0x34, 0x12, 0xb5, 0, 30, 0, 0];
        p.extend_from_slice(&[0x08, 0, 0, 0, 0, 0, 0x2a, 0]);
        p.extend_from_slice(&[0xbb; 14]);
        assert_eq!(vxlan(&p), Some(Inner::Ethernet(&[0xbb; 14][..])));
        p[3] = 0xb6;
        assert_eq!(vxlan(&p), None);
        assert_eq!(vxlan(&p[..10]), None);
    }
}
