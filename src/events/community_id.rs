//! Community ID v1 (seed 0) for TCP and UDP flows, so that a hostwatch event can be
//! joined with Zeek, Suricata or Arkime records of the same connection.

use std::net::IpAddr;

use base64::Engine;
use sha1::{Digest, Sha1};

const SEED: u16 = 0;

/// `1:` followed by the base64 of the SHA-1 over the ordered endpoint pair.
pub fn community_id(proto: u8, src: IpAddr, sport: u16, dst: IpAddr, dport: u16) -> CommunityId {
    let a = (octets(src), sport);
    let b = (octets(dst), dport);
    let (lo, hi) = if a <= b { (a, b) } else { (b, a) };
    let mut h = Sha1::new();
    h.update(SEED.to_be_bytes());
    h.update(lo.0.as_slice());
    h.update(hi.0.as_slice());
    h.update([proto, 0]);
    h.update(lo.1.to_be_bytes());
    h.update(hi.1.to_be_bytes());
    let mut text = [0u8; ID_LEN];
    text[..2].copy_from_slice(b"1:");
    // 20 bytes of digest are 28 of base64, which the buffer holds.
    let len = base64::engine::general_purpose::STANDARD
        .encode_slice(h.finalize(), &mut text[2..])
        .map_or(0, |n| n + 2);
    CommunityId { text, len }
}

/// `1:` and 28 characters of base64.
const ID_LEN: usize = 30;

/// A Community ID, written without an allocation (one per event).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CommunityId {
    text: [u8; ID_LEN],
    len: usize,
}

impl CommunityId {
    pub fn as_str(&self) -> &str {
        // `1:` and base64 are ASCII.
        std::str::from_utf8(self.text.get(..self.len).unwrap_or_default()).unwrap_or_default()
    }
}

/// An address's bytes, without allocating (ordered as the reference
/// implementation orders them: by bytes, then by port).
#[derive(PartialEq, Eq, PartialOrd, Ord)]
enum Octets {
    V4([u8; 4]),
    V6([u8; 16]),
}

impl Octets {
    fn as_slice(&self) -> &[u8] {
        match self {
            Octets::V4(b) => b,
            Octets::V6(b) => b,
        }
    }
}

fn octets(ip: IpAddr) -> Octets {
    match ip {
        IpAddr::V4(v) => Octets::V4(v.octets()),
        IpAddr::V6(v) => Octets::V6(v.octets()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn matches_the_reference_implementation() {
        // Values from the `communityid` Python reference package.
        let id = community_id(
            6,
            "128.232.110.120".parse().unwrap_or(IpAddr::from([0; 4])),
            34855,
            "66.35.250.204".parse().unwrap_or(IpAddr::from([0; 4])),
            80,
        );
        assert_eq!(id.as_str(), "1:LQU9qZlK+B5F3KDmev6m5PMibrg=");
        // Direction does not matter.
        let back = community_id(
            6,
            "66.35.250.204".parse().unwrap_or(IpAddr::from([0; 4])),
            80,
            "128.232.110.120".parse().unwrap_or(IpAddr::from([0; 4])),
            34855,
        );
        assert_eq!(back, id);
        let udp = |a: &str, sp, b: &str, dp| {
            let ip = |s: &str| s.parse().unwrap_or(IpAddr::from([0; 4]));
            community_id(17, ip(a), sp, ip(b), dp).as_str().to_string()
        };
        assert_eq!(
            udp("192.168.1.10", 137, "192.168.1.255", 137),
            "1:9SYzLp8r22wQFWznmh7Qnwzh7zI="
        );
        assert_eq!(
            udp("10.0.0.2", 137, "10.0.0.1", 50000),
            "1:MNfRNzXidk9eXLOHIP+SX32OkRc="
        );
        // IPv6, either direction (the reference package, 1.5).
        let ip = |s: &str| s.parse().unwrap_or(IpAddr::from([0u8; 16]));
        for (a, ap, b, bp) in [
            ("fe80::200:86ff:fe05:80da", 1, "fe80::260:97ff:fe07:69ea", 2),
            ("fe80::260:97ff:fe07:69ea", 2, "fe80::200:86ff:fe05:80da", 1),
        ] {
            assert_eq!(
                community_id(6, ip(a), ap, ip(b), bp).as_str(),
                "1:JETlgBm4LXP5CwobPGu4IYZF5Hs="
            );
        }
    }
}
