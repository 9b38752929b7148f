//! Client and server data blocks of the GCC conference create PDUs
//! (MS-RDPBCGR 2.2.1.3 and 2.2.1.4): each block is `type u16, length u16`
//! (length including the header), little-endian. Unknown blocks are skipped;
//! optional trailing fields of the core blocks are read only when the
//! block's length includes them.

use nom::number::complete::{le_u16, le_u32, u8 as byte};
use nom::{IResult, Parser};

pub const CS_CORE: u16 = 0xc001;
pub const CS_SECURITY: u16 = 0xc002;
pub const CS_NET: u16 = 0xc003;
pub const CS_CLUSTER: u16 = 0xc004;
pub const CS_MONITOR: u16 = 0xc005;
pub const SC_CORE: u16 = 0x0c01;
pub const SC_SECURITY: u16 = 0x0c02;

/// Blocks read from one PDU, at most (a real client sends fewer than ten).
const MAX_BLOCKS: usize = 32;
/// CHANNEL_DEF entries read, at most (the protocol allows 31).
const MAX_CHANNELS: usize = 31;

/// Iterates `(type, body)` of the data blocks; stops at a block whose
/// length is shorter than its header or runs past the data.
pub fn blocks(mut data: &[u8]) -> impl Iterator<Item = (u16, &[u8])> {
    let mut n = 0;
    std::iter::from_fn(move || {
        if n >= MAX_BLOCKS {
            return None;
        }
        n += 1;
        let r: IResult<&[u8], _> = (le_u16, le_u16).parse(data);
        let (_, (typ, len)) = r.ok()?;
        let len = usize::from(len);
        if len < 4 {
            return None;
        }
        let block = data.get(4..len)?;
        data = &data[len..];
        Some((typ, block))
    })
}

/// TS_UD_CS_CORE (MS-RDPBCGR 2.2.1.3.2).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ClientCore<'a> {
    pub version: u32,
    pub desktop_width: u16,
    pub desktop_height: u16,
    pub color_depth: u16,
    pub keyboard_layout: u32,
    pub client_build: u32,
    /// 32 bytes of UTF-16LE, NUL-terminated.
    pub client_name: &'a [u8],
    pub keyboard_type: u32,
    pub keyboard_subtype: u32,
    pub client_product_id: Option<u16>,
    pub high_color_depth: Option<u16>,
    pub early_capability_flags: Option<u16>,
    /// 64 bytes of UTF-16LE, NUL-terminated.
    pub dig_product_id: Option<&'a [u8]>,
    pub connection_type: Option<u8>,
    pub server_selected_protocol: Option<u32>,
}

/// Client data blocks of interest.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ClientData<'a> {
    pub core: Option<ClientCore<'a>>,
    pub encryption_methods: Option<u32>,
    /// Channel names (8 bytes each, NUL-padded ANSI).
    pub channels: Vec<&'a [u8]>,
    pub cluster_flags: Option<u32>,
    pub monitor_count: Option<u32>,
}

/// Server data blocks of interest.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ServerData<'a> {
    pub version: Option<u32>,
    pub client_requested_protocols: Option<u32>,
    pub encryption_method: Option<u32>,
    pub encryption_level: Option<u32>,
    pub certificate: Option<ServerCertificate<'a>>,
}

/// The server certificate of standard RDP security (MS-RDPBCGR 2.2.1.4.3.1).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ServerCertificate<'a> {
    Proprietary {
        permanent: bool,
    },
    /// The X.509 chain, DER certificates in the order sent (leaf last).
    X509 {
        permanent: bool,
        chain: Vec<&'a [u8]>,
    },
    Unknown {
        version: u32,
    },
}

/// Largest X.509 chain read (the protocol's own limit is small, too).
const MAX_CHAIN: usize = 8;

/// TS_UD_CS_CORE field sizes (MS-RDPBCGR 2.2.1.3.2): clientName is 16
/// UTF-16 code units, imeFileName 32, clientDigProductId 32.
const CLIENT_NAME_SIZE: usize = 32;
const IME_FILE_NAME_SIZE: usize = 64;
const DIG_PRODUCT_ID_SIZE: usize = 64;

fn client_core(b: &[u8]) -> Option<ClientCore<'_>> {
    type R<'a, T> = IResult<&'a [u8], T>;
    let fixed: R<_> = (le_u32, le_u16, le_u16, le_u16, le_u16, le_u32, le_u32).parse(b);
    let (
        rest,
        (version, desktop_width, desktop_height, color_depth, _sas, keyboard_layout, client_build),
    ) = fixed.ok()?;
    let client_name = rest.get(..CLIENT_NAME_SIZE)?;
    let rest = rest.get(CLIENT_NAME_SIZE..)?;
    let r: R<_> = (le_u32, le_u32, le_u32).parse(rest);
    let (rest, (keyboard_type, keyboard_subtype, _fkeys)) = r.ok()?;
    let mut core = ClientCore {
        version,
        desktop_width,
        desktop_height,
        color_depth,
        keyboard_layout,
        client_build,
        client_name,
        keyboard_type,
        keyboard_subtype,
        ..ClientCore::default()
    };
    // imeFileName, then optional fields, each present only if the block
    // is long enough.
    let Some(mut opt) = rest.get(IME_FILE_NAME_SIZE..) else {
        return Some(core);
    };
    let u16_field = |opt: &mut &[u8]| -> Option<u16> {
        let (r, v) = le_u16::<_, nom::error::Error<&[u8]>>(*opt).ok()?;
        *opt = r;
        Some(v)
    };
    let _post_beta2_color_depth = u16_field(&mut opt);
    core.client_product_id = u16_field(&mut opt);
    let serial: R<u32> = le_u32(opt);
    if let Ok((r, _)) = serial {
        opt = r;
    } else {
        return Some(core);
    }
    core.high_color_depth = u16_field(&mut opt);
    let _supported_color_depths = u16_field(&mut opt);
    core.early_capability_flags = u16_field(&mut opt);
    let Some((dig, after)) = opt.split_at_checked(DIG_PRODUCT_ID_SIZE) else {
        return Some(core);
    };
    core.dig_product_id = Some(dig);
    opt = after;
    let r: R<_> = (byte, byte).parse(opt);
    let Ok((r, (connection_type, _pad))) = r else {
        return Some(core);
    };
    core.connection_type = Some(connection_type);
    core.server_selected_protocol = le_u32::<_, nom::error::Error<&[u8]>>(r)
        .ok()
        .map(|(_, v)| v);
    Some(core)
}

/// Reads the client data blocks.
pub fn client_data(data: &[u8]) -> ClientData<'_> {
    let mut cd = ClientData::default();
    for (typ, b) in blocks(data) {
        match typ {
            CS_CORE => cd.core = client_core(b),
            CS_SECURITY => {
                cd.encryption_methods = le_u32::<_, nom::error::Error<&[u8]>>(b)
                    .ok()
                    .map(|(_, v)| v)
            }
            CS_NET => {
                if let Ok((defs, count)) = le_u32::<_, nom::error::Error<&[u8]>>(b) {
                    let n = (count as usize).min(MAX_CHANNELS);
                    cd.channels = defs
                        .chunks_exact(12)
                        .take(n)
                        .map(|def| {
                            let name = &def[..8];
                            let end = name.iter().position(|&c| c == 0).unwrap_or(8);
                            &name[..end]
                        })
                        .collect();
                }
            }
            CS_CLUSTER => {
                cd.cluster_flags = le_u32::<_, nom::error::Error<&[u8]>>(b)
                    .ok()
                    .map(|(_, v)| v)
            }
            CS_MONITOR => {
                let r: IResult<&[u8], _> = (le_u32, le_u32).parse(b);
                cd.monitor_count = r.ok().map(|(_, (_, n))| n);
            }
            _ => {}
        }
    }
    cd
}

/// Reads the server data blocks.
pub fn server_data(data: &[u8]) -> ServerData<'_> {
    let mut sd = ServerData::default();
    for (typ, b) in blocks(data) {
        match typ {
            SC_CORE => {
                let r: IResult<&[u8], u32> = le_u32(b);
                if let Ok((rest, v)) = r {
                    sd.version = Some(v);
                    sd.client_requested_protocols = le_u32::<_, nom::error::Error<&[u8]>>(rest)
                        .ok()
                        .map(|(_, v)| v);
                }
            }
            SC_SECURITY => server_security(b, &mut sd),
            _ => {}
        }
    }
    sd
}

/// TS_UD_SC_SEC1: method, level, then (when encrypting) the server random
/// and certificate.
fn server_security<'a>(b: &'a [u8], sd: &mut ServerData<'a>) {
    let r: IResult<&[u8], _> = (le_u32, le_u32).parse(b);
    let Ok((rest, (method, level))) = r else {
        return;
    };
    sd.encryption_method = Some(method);
    sd.encryption_level = Some(level);
    let r: IResult<&[u8], _> = (le_u32, le_u32).parse(rest);
    let Ok((rest, (random_len, cert_len))) = r else {
        return;
    };
    let Some(cert) = rest
        .get(random_len as usize..)
        .and_then(|c| c.get(..cert_len as usize))
    else {
        return;
    };
    let Ok((body, version)) = le_u32::<_, nom::error::Error<&[u8]>>(cert) else {
        return;
    };
    let permanent = version & 0x8000_0000 == 0;
    sd.certificate = Some(match version & 0x7fff_ffff {
        1 => ServerCertificate::Proprietary { permanent },
        2 => {
            // X.509 chain: count, then (length, DER) pairs.
            let mut chain = Vec::new();
            if let Ok((mut rest, count)) = le_u32::<_, nom::error::Error<&[u8]>>(body) {
                for _ in 0..(count as usize).min(MAX_CHAIN) {
                    let Ok((r, len)) = le_u32::<_, nom::error::Error<&[u8]>>(rest) else {
                        break;
                    };
                    let Some(der) = r.get(..len as usize) else {
                        break;
                    };
                    chain.push(der);
                    rest = &r[len as usize..];
                }
            }
            ServerCertificate::X509 { permanent, chain }
        }
        v => ServerCertificate::Unknown { version: v },
    });
}

#[cfg(test)]
#[path = "gcc_tests.rs"]
mod tests;
