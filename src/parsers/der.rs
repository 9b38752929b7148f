//! A minimal BER/DER reader: definite-length TLVs with single-byte tags,
//! enough for SPNEGO, LDAP and MCS. Lengths are checked against the input;
//! nothing is allocated.

use nom::bytes::complete::take;
use nom::number::complete::u8 as byte;
use nom::IResult;

/// One TLV: its tag byte and value.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Tlv<'a> {
    pub tag: u8,
    pub value: &'a [u8],
}

/// Definite length: short form, or long form of at most four bytes.
pub fn length(i: &[u8]) -> IResult<&[u8], usize> {
    let (i, first) = byte(i)?;
    if first < 0x80 {
        return Ok((i, usize::from(first)));
    }
    let n = usize::from(first & 0x7f);
    if n == 0 || n > 4 {
        // Indefinite length (0x80) or absurd length-of-length.
        return Err(nom::Err::Error(nom::error::Error::new(
            i,
            nom::error::ErrorKind::LengthValue,
        )));
    }
    let (i, bytes) = take(n)(i)?;
    Ok((
        i,
        bytes
            .iter()
            .fold(0usize, |acc, &b| (acc << 8) | usize::from(b)),
    ))
}

/// A TLV whose value lies entirely in `i`.
pub fn tlv(i: &[u8]) -> IResult<&[u8], Tlv<'_>> {
    let (i, tag) = byte(i)?;
    if tag & 0x1f == 0x1f {
        // Multi-byte tags are not used by any protocol read here.
        return Err(nom::Err::Error(nom::error::Error::new(
            i,
            nom::error::ErrorKind::Tag,
        )));
    }
    let (i, len) = length(i)?;
    let (i, value) = take(len)(i)?;
    Ok((i, Tlv { tag, value }))
}

/// A TLV with the given tag.
pub fn expect(tag: u8) -> impl Fn(&[u8]) -> IResult<&[u8], &[u8]> {
    move |i| {
        let (rest, t) = tlv(i)?;
        if t.tag != tag {
            return Err(nom::Err::Error(nom::error::Error::new(
                i,
                nom::error::ErrorKind::Tag,
            )));
        }
        Ok((rest, t.value))
    }
}

/// How many bytes the TLV at the start of `i` spans (header and value), when
/// its header is complete; for framing a stream of TLVs.
pub fn tlv_extent(i: &[u8]) -> Option<Result<usize, ()>> {
    let (&tag, rest) = i.split_first()?;
    if tag & 0x1f == 0x1f {
        return Some(Err(()));
    }
    let &first = rest.first()?;
    if first < 0x80 {
        return Some(Ok(2 + usize::from(first)));
    }
    let n = usize::from(first & 0x7f);
    if n == 0 || n > 4 {
        return Some(Err(()));
    }
    let bytes = rest.get(1..1 + n)?;
    let len = bytes
        .iter()
        .fold(0usize, |acc, &b| (acc << 8) | usize::from(b));
    Some(Ok(2 + n + len))
}

/// Iterates the TLVs of a constructed value, stopping at the first malformed one.
pub fn children(mut value: &[u8]) -> impl Iterator<Item = Tlv<'_>> {
    std::iter::from_fn(move || {
        let (rest, t) = tlv(value).ok()?;
        value = rest;
        Some(t)
    })
}

/// A BER INTEGER or ENUMERATED value of up to eight bytes.
pub fn uint(value: &[u8]) -> Option<u64> {
    if value.is_empty() || value.len() > 8 {
        return None;
    }
    Some(value.iter().fold(0u64, |acc, &b| (acc << 8) | u64::from(b)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lengths() {
        assert_eq!(length(&[0x05]).map(|r| r.1), Ok(5));
        assert_eq!(length(&[0x82, 0x01, 0x00]).map(|r| r.1), Ok(256));
        assert!(length(&[0x80]).is_err());
        assert!(length(&[0x85, 1, 2, 3, 4, 5]).is_err());
        assert!(length(&[0x82, 0x01]).is_err());
    }

    #[test]
    fn tlvs_and_extent() {
        let b = [0x30, 0x06, 0x02, 0x01, 0x07, 0x04, 0x01, b'x', 0xff];
        let (rest, t) = tlv(&b).unwrap_or((&[], Tlv { tag: 0, value: &[] }));
        assert_eq!((t.tag, rest), (0x30, &[0xff][..]));
        let kids: Vec<u8> = children(t.value).map(|c| c.tag).collect();
        assert_eq!(kids, vec![0x02, 0x04]);
        assert_eq!(tlv_extent(&b), Some(Ok(8)));
        assert_eq!(tlv_extent(&[0x30, 0x82, 0x01]), None);
        assert_eq!(tlv_extent(&[0x30, 0x82, 0x01, 0x00]), Some(Ok(260)));
        assert!(tlv(&[0x30, 0x05, 0x01]).is_err());
        assert_eq!(uint(&[0x01, 0x00]), Some(256));
    }
}
