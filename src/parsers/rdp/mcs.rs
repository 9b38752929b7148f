//! T.125 MCS Connect-Initial and Connect-Response (BER, MS-RDPBCGR
//! 2.2.1.3, 2.2.1.4) and the T.124 GCC Conference Create Request/Response
//! around the RDP data blocks (PER, MS-RDPBCGR 2.2.1.3.1, 2.2.1.4.1).

use memchr::memmem;

use super::{invalid, short, RdpError};
use crate::parsers::der;

/// BER tags of the two MCS connect PDUs ([APPLICATION 101] and [102], in
/// the two-byte high-tag-number form).
const CONNECT_INITIAL: [u8; 2] = [0x7f, 0x65];
const CONNECT_RESPONSE: [u8; 2] = [0x7f, 0x66];
const OCTET_STRING: u8 = 0x04;
const BOOLEAN: u8 = 0x01;
const SEQUENCE: u8 = 0x30;
const ENUMERATED: u8 = 0x0a;
const INTEGER: u8 = 0x02;

/// H.221 non-standard keys that introduce the client and server user data.
const CLIENT_KEY: &[u8] = b"Duca";
const SERVER_KEY: &[u8] = b"McDn";

/// The value of the two-byte-tag TLV at the start of `i`.
fn application<'a>(i: &'a [u8], tag: [u8; 2], pdu: &'static str) -> Result<&'a [u8], RdpError> {
    if i.get(..2) != Some(&tag[..]) {
        return Err(invalid(pdu, "BER tag"));
    }
    let (rest, len) = der::length(&i[2..]).map_err(|_| invalid(pdu, "BER length"))?;
    // A truncated PDU still yields what it holds.
    Ok(rest.get(..len).unwrap_or(rest))
}

fn field<'a>(
    i: &'a [u8],
    tag: u8,
    pdu: &'static str,
    name: &'static str,
) -> Result<(&'a [u8], &'a [u8]), RdpError> {
    der::expect(tag)(i).map_err(|_| invalid(pdu, name))
}

/// The client data blocks of an MCS Connect-Initial (the MCS PDU inside an
/// X.224 Data TPDU).
pub fn connect_initial_user_data(mcs: &[u8]) -> Result<&[u8], RdpError> {
    const PDU: &str = "MCS Connect-Initial";
    let body = application(mcs, CONNECT_INITIAL, PDU)?;
    let (i, _calling) = field(body, OCTET_STRING, PDU, "callingDomainSelector")?;
    let (i, _called) = field(i, OCTET_STRING, PDU, "calledDomainSelector")?;
    let (i, _upward) = field(i, BOOLEAN, PDU, "upwardFlag")?;
    let (i, _target) = field(i, SEQUENCE, PDU, "targetParameters")?;
    let (i, _min) = field(i, SEQUENCE, PDU, "minimumParameters")?;
    let (i, _max) = field(i, SEQUENCE, PDU, "maximumParameters")?;
    let (_, user_data) = field(i, OCTET_STRING, PDU, "userData")?;
    gcc_blocks(user_data, CLIENT_KEY, "GCC Conference Create Request")
}

/// The MCS Connect-Response result and the server data blocks.
pub fn connect_response_user_data(mcs: &[u8]) -> Result<(u64, &[u8]), RdpError> {
    const PDU: &str = "MCS Connect-Response";
    let body = application(mcs, CONNECT_RESPONSE, PDU)?;
    let (i, result) = field(body, ENUMERATED, PDU, "result")?;
    let (i, _id) = field(i, INTEGER, PDU, "calledConnectId")?;
    let (i, _params) = field(i, SEQUENCE, PDU, "domainParameters")?;
    let (_, user_data) = field(i, OCTET_STRING, PDU, "userData")?;
    let result = der::uint(result).ok_or(invalid(PDU, "result"))?;
    Ok((
        result,
        gcc_blocks(user_data, SERVER_KEY, "GCC Conference Create Response")?,
    ))
}

/// Skips the T.124 ConnectData/ConnectGCCPDU preamble: the H.221 key, then
/// a PER length, then the data blocks. The preamble's fixed fields are
/// not interpreted; the key is searched within its first bytes.
fn gcc_blocks<'a>(
    user_data: &'a [u8],
    key: &[u8],
    pdu: &'static str,
) -> Result<&'a [u8], RdpError> {
    let window = &user_data[..user_data.len().min(64)];
    let at = memmem::find(window, key).ok_or(invalid(pdu, "H.221 key"))?;
    let rest = &user_data[at + key.len()..];
    let (&first, rest) =
        rest.split_first()
            .ok_or(short(pdu, user_data.len(), at + key.len() + 1))?;
    let (len, rest) = if first & 0x80 == 0 {
        (usize::from(first), rest)
    } else {
        let (&second, rest) =
            rest.split_first()
                .ok_or(short(pdu, user_data.len(), at + key.len() + 2))?;
        ((usize::from(first & 0x7f) << 8) | usize::from(second), rest)
    };
    Ok(rest.get(..len).unwrap_or(rest))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tlv(tag: &[u8], v: &[u8]) -> Vec<u8> {
        let mut o = tag.to_vec();
        if v.len() < 128 {
            o.push(v.len() as u8);
        } else {
            o.push(0x82);
            o.extend_from_slice(&(v.len() as u16).to_be_bytes());
        }
        o.extend_from_slice(v);
        o
    }

    /// A Connect-Initial around `blocks`, as mstsc lays it out.
    pub(crate) fn connect_initial(blocks: &[u8]) -> Vec<u8> {
        let params = tlv(&[0x30], &[0x02, 0x01, 0x22, 0x02, 0x01, 0x02]);
        let mut gcc = vec![0x00, 0x05, 0x00, 0x14, 0x7c, 0x00, 0x01];
        let mut create = vec![0x00, 0x08, 0x00, 0x10, 0x00, 0x01, 0xc0, 0x00];
        create.extend_from_slice(b"Duca");
        create.push(0x80 | (blocks.len() >> 8) as u8);
        create.push(blocks.len() as u8);
        create.extend_from_slice(blocks);
        gcc.push(0x80 | (create.len() >> 8) as u8);
        gcc.push(create.len() as u8);
        gcc.extend(create);
        let mut body = tlv(&[0x04], &[1]);
        body.extend(tlv(&[0x04], &[1]));
        body.extend(tlv(&[0x01], &[0xff]));
        body.extend(params.clone());
        body.extend(params.clone());
        body.extend(params);
        body.extend(tlv(&[0x04], &gcc));
        tlv(&[0x7f, 0x65], &body)
    }

    #[test]
    fn finds_client_blocks() {
        let blocks = [0x01, 0xc0, 0x08, 0x00, 0x04, 0x00, 0x08, 0x00];
        assert_eq!(
            connect_initial_user_data(&connect_initial(&blocks)),
            Ok(&blocks[..])
        );
    }

    #[test]
    fn finds_server_blocks_and_result() {
        let blocks = [0x01, 0x0c, 0x08, 0x00, 0x04, 0x00, 0x08, 0x00];
        let mut gcc = vec![
            0x00, 0x05, 0x00, 0x14, 0x7c, 0x00, 0x01, 0x2a, 0x14, 0x76, 0x0a, 0x01, 0x01, 0x00,
            0x01, 0xc0, 0x00,
        ];
        gcc.extend_from_slice(b"McDn");
        gcc.push(blocks.len() as u8);
        gcc.extend_from_slice(&blocks);
        let mut body = tlv(&[0x0a], &[0]);
        body.extend(tlv(&[0x02], &[0]));
        body.extend(tlv(&[0x30], &[0x02, 0x01, 0x22]));
        body.extend(tlv(&[0x04], &gcc));
        let pdu = tlv(&[0x7f, 0x66], &body);
        assert_eq!(connect_response_user_data(&pdu), Ok((0, &blocks[..])));
    }

    #[test]
    fn malformed() {
        assert_eq!(
            connect_initial_user_data(&[0x7f, 0x65, 0x84, 0xff]),
            Err(invalid("MCS Connect-Initial", "BER length"))
        );
        assert_eq!(
            connect_initial_user_data(&[0x30, 0x00]),
            Err(invalid("MCS Connect-Initial", "BER tag"))
        );
        let no_key = tlv(
            &[0x7f, 0x65],
            &[
                0x04, 0, 0x04, 0, 0x01, 1, 0xff, 0x30, 0, 0x30, 0, 0x30, 0, 0x04, 2, 0, 0,
            ],
        );
        assert_eq!(
            connect_initial_user_data(&no_key),
            Err(invalid("GCC Conference Create Request", "H.221 key"))
        );
        let blocks = [0u8; 4];
        let full = connect_initial(&blocks);
        for n in 0..full.len() {
            let _ = connect_initial_user_data(&full[..n]);
        }
    }
}
