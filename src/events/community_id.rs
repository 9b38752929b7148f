//! Community ID v1 (seed 0) for TCP flows, so that a hostwatch event can be
//! joined with Zeek, Suricata or Arkime records of the same connection.

use std::net::IpAddr;

use base64::Engine;
use sha1::{Digest, Sha1};

const SEED: u16 = 0;
const PROTO_TCP: u8 = 6;

/// `1:` followed by the base64 of the SHA-1 over the ordered endpoint pair.
pub fn community_id(src: IpAddr, sport: u16, dst: IpAddr, dport: u16) -> String {
    let a = (octets(src), sport);
    let b = (octets(dst), dport);
    let (lo, hi) = if a <= b { (a, b) } else { (b, a) };
    let mut h = Sha1::new();
    h.update(SEED.to_be_bytes());
    h.update(&lo.0);
    h.update(&hi.0);
    h.update([PROTO_TCP, 0]);
    h.update(lo.1.to_be_bytes());
    h.update(hi.1.to_be_bytes());
    format!(
        "1:{}",
        base64::engine::general_purpose::STANDARD.encode(h.finalize())
    )
}

fn octets(ip: IpAddr) -> Vec<u8> {
    match ip {
        IpAddr::V4(v) => v.octets().to_vec(),
        IpAddr::V6(v) => v.octets().to_vec(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn matches_the_reference_implementation() {
        // Values from the `communityid` Python reference package.
        let id = community_id(
            "128.232.110.120".parse().unwrap_or(IpAddr::from([0; 4])),
            34855,
            "66.35.250.204".parse().unwrap_or(IpAddr::from([0; 4])),
            80,
        );
        assert_eq!(id, "1:LQU9qZlK+B5F3KDmev6m5PMibrg=");
        // Direction does not matter.
        let back = community_id(
            "66.35.250.204".parse().unwrap_or(IpAddr::from([0; 4])),
            80,
            "128.232.110.120".parse().unwrap_or(IpAddr::from([0; 4])),
            34855,
        );
        assert_eq!(back, id);
    }
}
