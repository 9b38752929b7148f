//! IPv4 header, TCP and UDP checksums (RFC 1071).
//!
//! An endpoint drops a segment whose checksum is wrong, so a decoy sent with
//! a bad checksum must not reach the analyzers. Decode sums the
//! pseudo-header and the transport header of every segment (a few dozen
//! bytes) into a [`Checksum::Pending`]; the worker that takes the segment
//! adds the payload's share, and only while the payload still matters, so
//! the capture thread never reads payload bytes to check them.
//!
//! **Offload.** A capture taken on a host whose network card computes
//! checksums (or on loopback, or a veth) holds that host's own packets with
//! the checksum not filled in: the field holds just the pseudo-header's sum
//! (what Linux and NDIS leave for the card), or zero. Such a segment is
//! [`Checksum::Unfilled`]. In `auto` mode the flow table takes it, unless
//! the same direction of the same connection already sent a correct
//! checksum: a real stack does not switch between the two within a
//! connection, so a decoy shaped like an unfilled checksum after the
//! sender's own SYN is still dropped. A checksum that is wrong in any other
//! way is always dropped.

use std::net::IpAddr;

/// Adds `data` to a one's-complement accumulator, as big-endian 16-bit
/// words (an odd last byte is padded with zero). `data` must start at an
/// even offset of the checksummed region.
pub fn add(acc: u64, data: &[u8]) -> u64 {
    // 2^16 is 1 modulo 0xffff, so folding a sum of wider native words
    // gives the sum of their 16-bit parts, and a one's-complement sum in
    // the other byte order is the same sum byte-swapped (RFC 1071 2(B)).
    // The result is congruent to the big-endian sum, and zero only when
    // it is. A payload is summed as 64-bit words into a 128-bit
    // accumulator (an add and an add-with-carry per eight bytes; it
    // cannot overflow); headers and the rest as 32-bit words, which costs
    // less on a few bytes.
    let mut sum = 0u64;
    let mut rest = data;
    if data.len() >= 64 {
        let mut wide = 0u128;
        let mut words = data.chunks_exact(8);
        for w in &mut words {
            let mut word = [0u8; 8];
            word.copy_from_slice(w);
            wide += u128::from(u64::from_ne_bytes(word));
        }
        sum = u64::from(fold_wide(wide));
        rest = words.remainder();
    }
    let mut words = rest.chunks_exact(4);
    for w in &mut words {
        sum += u64::from(u32::from_ne_bytes([w[0], w[1], w[2], w[3]]));
    }
    let rest = words.remainder();
    let mut pairs = rest.chunks_exact(2);
    for p in &mut pairs {
        sum += u64::from(u16::from_ne_bytes([p[0], p[1]]));
    }
    if let [last] = pairs.remainder() {
        sum += u64::from(u16::from_ne_bytes([*last, 0]));
    }
    acc + u64::from(u16::from_be(fold(sum)))
}

/// Folds a 128-bit accumulator to 16 bits with end-around carry (2^64 is
/// 1 modulo 0xffff too).
fn fold_wide(sum: u128) -> u16 {
    let mut s = sum;
    while s >> 64 != 0 {
        s = (s & u128::from(u64::MAX)) + (s >> 64);
    }
    fold(s as u64)
}

/// Folds an accumulator to 16 bits with end-around carry.
pub fn fold(mut acc: u64) -> u16 {
    while acc >> 16 != 0 {
        acc = (acc & 0xffff) + (acc >> 16);
    }
    acc as u16
}

/// Whether an IPv4 header (options included) sums to all ones.
pub fn ipv4_header_ok(header: &[u8]) -> bool {
    fold(add(0, header)) == 0xffff
}

/// The pseudo-header of RFC 793 / RFC 8200 8.1 for a transport segment of
/// `len` bytes.
pub fn pseudo_header(src: IpAddr, dst: IpAddr, proto: u8, len: usize) -> u64 {
    let mut acc = 0;
    for a in [src, dst] {
        acc = match a {
            IpAddr::V4(v) => add(acc, &v.octets()),
            IpAddr::V6(v) => add(acc, &v.octets()),
        };
    }
    acc + u64::from(proto) + len as u64
}

/// What the worker must do about a segment's checksum.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub enum Checksum {
    /// Taken as it is: not verifiable (UDP without a checksum) or
    /// verification is off.
    #[default]
    Unchecked,
    /// The folded sum of the pseudo-header and the transport header: with
    /// the payload's sum added it must fold to all ones.
    Pending(u16),
    /// Not filled in by the sender (offloaded to its card); the sum as for
    /// `Pending`, should it have to be checked after all.
    Unfilled(u16),
    /// Wrong already (a bad IPv4 header checksum).
    Bad,
}

impl Checksum {
    /// What decode makes of a transport checksum: `head` sums the
    /// pseudo-header and the transport header, `field` is the checksum
    /// field, `pseudo` the pseudo-header's own sum.
    pub fn of(head: u16, field: u16, pseudo: u64) -> Checksum {
        if field == 0 || field == fold(pseudo) {
            Checksum::Unfilled(head)
        } else {
            Checksum::Pending(head)
        }
    }

    /// Whether the payload makes the checksum correct (`Unfilled` is
    /// checked as written).
    pub fn accepts(self, payload: &[u8]) -> bool {
        match self {
            Checksum::Unchecked => true,
            Checksum::Bad => false,
            Checksum::Pending(head) | Checksum::Unfilled(head) => {
                fold(add(u64::from(head), payload)) == 0xffff
            }
        }
    }

    /// The checksum as `mode` has it checked.
    pub fn under(self, mode: Mode) -> Checksum {
        match (mode, self) {
            (Mode::Ignore, _) => Checksum::Unchecked,
            (Mode::Verify, Checksum::Unfilled(head)) => Checksum::Pending(head),
            _ => self,
        }
    }
}

/// How checksums are treated (`--checksums`).
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// Checked; an unfilled one is taken unless its connection showed
    /// correct ones from the same side.
    #[default]
    Auto,
    /// Always checked (a span port or a tap: nothing there is offloaded).
    Verify,
    /// Never checked.
    Ignore,
}

impl std::str::FromStr for Mode {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "auto" => Ok(Mode::Auto),
            "verify" => Ok(Mode::Verify),
            "ignore" => Ok(Mode::Ignore),
            _ => Err(format!(
                "'{s}' is not a checksum mode (auto, verify, ignore)"
            )),
        }
    }
}

impl Mode {
    pub fn name(self) -> &'static str {
        match self {
            Mode::Auto => "auto",
            Mode::Verify => "verify",
            Mode::Ignore => "ignore",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The plain big-endian sum `add` must agree with.
    fn reference(mut acc: u64, data: &[u8]) -> u64 {
        for p in data.chunks(2) {
            acc += u64::from(p[0]) << 8 | p.get(1).map_or(0, |b| u64::from(*b));
        }
        acc
    }

    proptest::proptest! {
        #[test]
        fn the_vectorized_sum_folds_as_the_big_endian_one(
            acc in 0u64..1 << 40,
            data in proptest::collection::vec(proptest::num::u8::ANY, 0..3000),
        ) {
            proptest::prop_assert_eq!(fold(add(acc, &data)), fold(reference(acc, &data)));
        }
    }

    #[test]
    fn sums_that_fold_to_zero_or_all_ones_agree() {
        for data in [
            &[][..],
            &[0, 0, 0],
            &[0xff, 0xff],
            &[0xff, 0xff, 0xff, 0xff, 0xff],
        ] {
            for acc in [0, 0xffff, 0x1_fffe] {
                assert_eq!(
                    fold(add(acc, data)),
                    fold(reference(acc, data)),
                    "{data:?} {acc}"
                );
            }
        }
    }

    #[test]
    fn rfc1071_example_sums_to_the_documented_value() {
        // RFC 1071 section 3: 00 01 f2 03 f4 f5 f6 f7 sums to ddf2.
        let d = [0x00, 0x01, 0xf2, 0x03, 0xf4, 0xf5, 0xf6, 0xf7];
        assert_eq!(fold(add(0, &d)), 0xddf2);
        // Odd length: the last byte is the high half of a padded word.
        assert_eq!(fold(add(0, &[0x12, 0x34, 0x56])), 0x1234 + 0x5600);
    }

    #[test]
    fn ipv4_header_of_the_wikipedia_example_is_valid_and_a_flip_is_not() {
        let mut h = [
            0x45, 0x00, 0x00, 0x73, 0x00, 0x00, 0x40, 0x00, 0x40, 0x11, 0xb8, 0x61, 0xc0, 0xa8,
            0x00, 0x01, 0xc0, 0xa8, 0x00, 0xc7,
        ];
        assert!(ipv4_header_ok(&h));
        h[8] = 0x3f;
        assert!(!ipv4_header_ok(&h));
    }

    #[test]
    fn pending_sum_completes_with_the_payload() {
        // A UDP datagram 1234 -> 5678 from 10.0.0.1 to 10.0.0.2: its
        // checksum is set from the definition, then the split sum (head in
        // decode, payload in the worker) must accept it and reject a
        // flipped payload byte.
        let src = IpAddr::from([10, 0, 0, 1]);
        let dst = IpAddr::from([10, 0, 0, 2]);
        let payload = b"hi!";
        let len = 8 + payload.len();
        let mut hdr = [0x04, 0xd2, 0x16, 0x2e, 0x00, len as u8, 0x00, 0x00];
        let sum = fold(add(add(pseudo_header(src, dst, 17, len), &hdr), payload));
        let ck = !sum;
        hdr[6..8].copy_from_slice(&ck.to_be_bytes());
        let head = fold(add(pseudo_header(src, dst, 17, len), &hdr));
        assert!(Checksum::Pending(head).accepts(payload));
        assert!(!Checksum::Pending(head).accepts(b"hi?"));
        assert!(Checksum::Unchecked.accepts(b"x"));
        assert!(!Checksum::Bad.accepts(b"x"));
    }

    #[test]
    fn an_unfilled_checksum_is_told_apart_and_modes_apply() {
        let src = IpAddr::from([10, 0, 0, 1]);
        let dst = IpAddr::from([10, 0, 0, 2]);
        let pseudo = pseudo_header(src, dst, 6, 20);
        assert_eq!(Checksum::of(7, 0, pseudo), Checksum::Unfilled(7));
        assert_eq!(Checksum::of(7, fold(pseudo), pseudo), Checksum::Unfilled(7));
        assert_eq!(Checksum::of(7, 0x1234, pseudo), Checksum::Pending(7));
        let u = Checksum::Unfilled(7);
        assert_eq!(u.under(Mode::Auto), u);
        assert_eq!(u.under(Mode::Verify), Checksum::Pending(7));
        assert_eq!(Checksum::Bad.under(Mode::Ignore), Checksum::Unchecked);
        assert_eq!("verify".parse::<Mode>(), Ok(Mode::Verify));
        assert!("strict".parse::<Mode>().is_err());
    }
}
