//! Protocol messages as real implementations lay them out: NTLMSSP
//! (Windows layout: payload after VERSION and MIC), SPNEGO, SMB2 over
//! NetBIOS, RDP connection PDUs, HTTP with NTLM headers, TLS records.

use base64::Engine;

fn u16le(s: &str) -> Vec<u8> {
    s.encode_utf16().flat_map(u16::to_le_bytes).collect()
}

fn field(len: usize, off: usize) -> [u8; 8] {
    let mut f = [0u8; 8];
    f[0..2].copy_from_slice(&(len as u16).to_le_bytes());
    f[2..4].copy_from_slice(&(len as u16).to_le_bytes());
    f[4..8].copy_from_slice(&(off as u32).to_le_bytes());
    f
}

/// The Windows build clients report unless told otherwise (10.0.19041).
pub const CLIENT_BUILD: u16 = 19041;

/// An NTLM VERSION (MS-NLMP 2.2.2.10): Windows 10.0 of `build`, revision 15.
fn version(build: u16) -> [u8; 8] {
    let [lo, hi] = build.to_le_bytes();
    [10, 0, lo, hi, 0, 0, 0, 15]
}

/// NEGOTIATE as Windows sends it (no names supplied).
pub fn ntlm_negotiate() -> Vec<u8> {
    ntlm_negotiate_from(CLIENT_BUILD)
}

/// NEGOTIATE from a machine running Windows `build`.
pub fn ntlm_negotiate_from(build: u16) -> Vec<u8> {
    let mut m = b"NTLMSSP\0\x01\0\0\0".to_vec();
    m.extend_from_slice(&0xe208_8297u32.to_le_bytes());
    m.extend_from_slice(&field(0, 40));
    m.extend_from_slice(&field(0, 40));
    m.extend_from_slice(&version(build));
    m
}

fn av(id: u16, value: &[u8]) -> Vec<u8> {
    let mut v = id.to_le_bytes().to_vec();
    v.extend_from_slice(&(value.len() as u16).to_le_bytes());
    v.extend_from_slice(value);
    v
}

/// The server's names in a CHALLENGE.
#[derive(Debug, Clone)]
pub struct ServerNames<'a> {
    pub target: &'a str,
    pub nb_computer: &'a str,
    pub nb_domain: &'a str,
    pub dns_computer: &'a str,
    pub dns_domain: &'a str,
    /// The Windows build its CHALLENGE reports.
    pub build: u16,
}

/// The lab's file server, as its CHALLENGE names it (demo, tests, benches).
pub const FILESRV01: ServerNames<'static> = ServerNames {
    target: "CORP",
    nb_computer: "FILESRV01",
    nb_domain: "CORP",
    dns_computer: "filesrv01.corp.example",
    dns_domain: "corp.example",
    build: 20348,
};

/// CHALLENGE with target info (Unicode).
pub fn ntlm_challenge(n: &ServerNames<'_>, challenge: [u8; 8]) -> Vec<u8> {
    let target = u16le(n.target);
    let mut info = Vec::new();
    info.extend(av(2, &u16le(n.nb_domain)));
    info.extend(av(1, &u16le(n.nb_computer)));
    info.extend(av(4, &u16le(n.dns_domain)));
    info.extend(av(3, &u16le(n.dns_computer)));
    info.extend(av(7, &0x01dc_9a00_0000_0000u64.to_le_bytes()));
    info.extend(av(0, &[]));
    let mut m = b"NTLMSSP\0\x02\0\0\0".to_vec();
    m.extend_from_slice(&field(target.len(), 56));
    m.extend_from_slice(&0xe28a_8215u32.to_le_bytes());
    m.extend_from_slice(&challenge);
    m.extend_from_slice(&[0; 8]);
    m.extend_from_slice(&field(info.len(), 56 + target.len()));
    m.extend_from_slice(&version(n.build));
    m.extend(target);
    m.extend(info);
    m
}

/// AUTHENTICATE with an NTLMv2 response whose blob names `spn`, a MIC and
/// VERSION; payload order as Windows writes it.
pub fn ntlm_authenticate(domain: &str, user: &str, workstation: &str, spn: &str) -> Vec<u8> {
    ntlm_authenticate_from(domain, user, workstation, spn, CLIENT_BUILD)
}

/// AUTHENTICATE from a machine running Windows `build`.
pub fn ntlm_authenticate_from(
    domain: &str,
    user: &str,
    workstation: &str,
    spn: &str,
    build: u16,
) -> Vec<u8> {
    let (d, u, w) = (u16le(domain), u16le(user), u16le(workstation));
    let mut nt = vec![0x5a; 16];
    nt.extend_from_slice(&[1, 1, 0, 0, 0, 0, 0, 0]);
    nt.extend_from_slice(&0x01dc_9a00_0000_0000u64.to_le_bytes());
    nt.extend_from_slice(&[0x11; 8]);
    nt.extend_from_slice(&[0; 4]);
    nt.extend(av(6, &2u32.to_le_bytes()));
    nt.extend(av(9, &u16le(spn)));
    nt.extend(av(0, &[]));
    nt.extend_from_slice(&[0; 4]);
    let lm = [0u8; 24];
    let key = [0x77u8; 16];
    let mut payload = Vec::new();
    let mut at = |b: &[u8]| {
        let off = 88 + payload.len();
        payload.extend_from_slice(b);
        off
    };
    let (d_off, u_off, w_off, lm_off, nt_off, k_off) =
        (at(&d), at(&u), at(&w), at(&lm), at(&nt), at(&key));
    let mut m = b"NTLMSSP\0\x03\0\0\0".to_vec();
    m.extend_from_slice(&field(lm.len(), lm_off));
    m.extend_from_slice(&field(nt.len(), nt_off));
    m.extend_from_slice(&field(d.len(), d_off));
    m.extend_from_slice(&field(u.len(), u_off));
    m.extend_from_slice(&field(w.len(), w_off));
    m.extend_from_slice(&field(key.len(), k_off));
    m.extend_from_slice(&0xe288_8215u32.to_le_bytes());
    m.extend_from_slice(&version(build));
    m.extend_from_slice(&[0x3c; 16]);
    m.extend(payload);
    m
}

pub(crate) fn der(tag: u8, v: &[u8]) -> Vec<u8> {
    let mut o = vec![tag];
    match v.len() {
        n if n < 0x80 => o.push(n as u8),
        n if n < 0x100 => o.extend_from_slice(&[0x81, n as u8]),
        n => o.extend_from_slice(&[0x82, (n >> 8) as u8, n as u8]),
    }
    o.extend_from_slice(v);
    o
}

/// `[n] EXPLICIT`.
pub(crate) fn ctx(n: u8, v: &[u8]) -> Vec<u8> {
    der(0xa0 | n, v)
}

pub(crate) fn int(n: u8) -> Vec<u8> {
    der(0x02, &[n])
}

/// KerberosString.
pub(crate) fn gstr(s: &str) -> Vec<u8> {
    der(0x1b, s.as_bytes())
}

/// PrincipalName (RFC 4120 5.2.2).
pub(crate) fn principal(name_type: u8, parts: &[&str]) -> Vec<u8> {
    let names: Vec<u8> = parts.iter().flat_map(|p| gstr(p)).collect();
    der(
        0x30,
        &[ctx(0, &int(name_type)), ctx(1, &der(0x30, &names))].concat(),
    )
}

/// An AS-REQ (RFC 4120 5.4.1) of machine `host` (account `host$`, its
/// NetBIOS address `host`), as Windows sends it, in realm CORP.EXAMPLE.
pub fn krb5_as_req(host: &str) -> Vec<u8> {
    let mut netbios = host.as_bytes().to_vec();
    netbios.push(b' ');
    let address = der(
        0x30,
        &[ctx(0, &int(20)), ctx(1, &der(0x04, &netbios))].concat(),
    );
    let account = format!("{host}$");
    let body = der(
        0x30,
        &[
            ctx(0, &der(0x03, &[0, 0x40, 0x81, 0, 0x10])),
            ctx(1, &principal(1, &[&account])),
            ctx(2, &gstr("CORP.EXAMPLE")),
            ctx(3, &principal(2, &["krbtgt", "CORP.EXAMPLE"])),
            ctx(5, &der(0x18, b"20370913024805Z")),
            ctx(7, &der(0x02, &[0x12, 0x34, 0x56, 0x78])),
            ctx(8, &der(0x30, &[int(18), int(17), int(23)].concat())),
            ctx(9, &der(0x30, &address)),
        ]
        .concat(),
    );
    let req = der(
        0x30,
        &[ctx(1, &int(5)), ctx(2, &int(10)), ctx(4, &body)].concat(),
    );
    der(0x6a, &req)
}

/// The KDC's KRB-ERROR (RFC 4120 5.9.1) KDC_ERR_PREAUTH_REQUIRED to
/// [`krb5_as_req`] of `host`.
pub fn krb5_preauth_required(host: &str) -> Vec<u8> {
    let account = format!("{host}$");
    let err = der(
        0x30,
        &[
            ctx(0, &int(5)),
            ctx(1, &int(30)),
            ctx(4, &der(0x18, b"20261129084000Z")),
            ctx(5, &int(1)),
            ctx(6, &int(25)),
            ctx(7, &gstr("CORP.EXAMPLE")),
            ctx(8, &principal(1, &[&account])),
            ctx(9, &gstr("CORP.EXAMPLE")),
            ctx(10, &principal(2, &["krbtgt", "CORP.EXAMPLE"])),
        ]
        .concat(),
    );
    der(0x7e, &err)
}

const OID_SPNEGO: &[u8] = &[0x2b, 0x06, 0x01, 0x05, 0x05, 0x02];
const OID_NTLM: &[u8] = &[0x2b, 0x06, 0x01, 0x04, 0x01, 0x82, 0x37, 0x02, 0x02, 0x0a];

/// GSS-API wrapped negTokenInit carrying the NEGOTIATE.
pub fn spnego_init(ntlm: &[u8]) -> Vec<u8> {
    let mut seq = der(0xa0, &der(0x30, &der(0x06, OID_NTLM)));
    seq.extend(der(0xa2, &der(0x04, ntlm)));
    let mut inner = der(0x06, OID_SPNEGO);
    inner.extend(der(0xa0, &der(0x30, &seq)));
    der(0x60, &inner)
}

/// negTokenResp with a state and an optional token.
pub fn spnego_resp(state: u8, ntlm: Option<&[u8]>) -> Vec<u8> {
    let mut seq = der(0xa0, &der(0x0a, &[state]));
    if state == 1 {
        seq.extend(der(0xa1, &der(0x06, OID_NTLM)));
    }
    if let Some(t) = ntlm {
        seq.extend(der(0xa2, &der(0x04, t)));
    }
    der(0xa1, &der(0x30, &seq))
}

fn nbss(msg: &[u8]) -> Vec<u8> {
    let mut o = vec![
        0,
        (msg.len() >> 16) as u8,
        (msg.len() >> 8) as u8,
        msg.len() as u8,
    ];
    o.extend_from_slice(msg);
    o
}

fn smb2_header(
    command: u16,
    response: bool,
    status: u32,
    message_id: u64,
    session: u64,
) -> Vec<u8> {
    let mut h = b"\xfeSMB".to_vec();
    h.extend_from_slice(&64u16.to_le_bytes());
    h.extend_from_slice(&1u16.to_le_bytes());
    h.extend_from_slice(&status.to_le_bytes());
    h.extend_from_slice(&command.to_le_bytes());
    h.extend_from_slice(&1u16.to_le_bytes());
    h.extend_from_slice(&u32::from(response).to_le_bytes());
    h.extend_from_slice(&0u32.to_le_bytes());
    h.extend_from_slice(&message_id.to_le_bytes());
    h.extend_from_slice(&[0, 0, 0, 0, 1, 0, 0, 0]);
    h.extend_from_slice(&session.to_le_bytes());
    h.extend_from_slice(&[0; 16]);
    h
}

/// SMB2 NEGOTIATE request and response (SMB 3.1.1), NetBIOS framed.
pub fn smb2_negotiate() -> (Vec<u8>, Vec<u8>) {
    let mut req = smb2_header(0, false, 0, 0, 0);
    req.extend_from_slice(&36u16.to_le_bytes());
    req.extend_from_slice(&1u16.to_le_bytes());
    req.extend_from_slice(&[1, 0, 0, 0, 0x7f, 0, 0, 0]);
    req.extend_from_slice(&[0x42; 16]);
    req.extend_from_slice(&[0; 8]);
    req.extend_from_slice(&0x0311u16.to_le_bytes());
    let mut resp = smb2_header(0, true, 0, 0, 0);
    resp.extend_from_slice(&65u16.to_le_bytes());
    resp.extend_from_slice(&[1, 0, 0x11, 0x03, 0, 0]);
    resp.extend_from_slice(&[0x24; 16]);
    resp.extend_from_slice(&[0x2f, 0, 0, 0, 0, 0, 0x80, 0, 0, 0, 0x80, 0, 0, 0, 0x80, 0]);
    resp.extend_from_slice(&[0; 16]);
    resp.extend_from_slice(&[0x80, 0, 0, 0, 0, 0, 0, 0]);
    (nbss(&req), nbss(&resp))
}

/// SMB2 SESSION_SETUP request carrying `blob`.
pub fn smb2_session_setup_request(message_id: u64, session: u64, blob: &[u8]) -> Vec<u8> {
    let mut m = smb2_header(1, false, 0, message_id, session);
    m.extend_from_slice(&25u16.to_le_bytes());
    m.extend_from_slice(&[0, 1]);
    m.extend_from_slice(&1u32.to_le_bytes());
    m.extend_from_slice(&0u32.to_le_bytes());
    m.extend_from_slice(&88u16.to_le_bytes());
    m.extend_from_slice(&(blob.len() as u16).to_le_bytes());
    m.extend_from_slice(&0u64.to_le_bytes());
    m.extend_from_slice(blob);
    nbss(&m)
}

/// SMB2 SESSION_SETUP response with `status` and `blob`.
pub fn smb2_session_setup_response(
    message_id: u64,
    session: u64,
    status: u32,
    blob: &[u8],
) -> Vec<u8> {
    let mut m = smb2_header(1, true, status, message_id, session);
    m.extend_from_slice(&9u16.to_le_bytes());
    m.extend_from_slice(&0u16.to_le_bytes());
    m.extend_from_slice(&(if blob.is_empty() { 0u16 } else { 72 }).to_le_bytes());
    m.extend_from_slice(&(blob.len() as u16).to_le_bytes());
    m.extend_from_slice(blob);
    nbss(&m)
}

/// SMB2 READ request and a response carrying `data` (a file copy).
pub fn smb2_read(message_id: u64, session: u64, data: &[u8]) -> (Vec<u8>, Vec<u8>) {
    let mut req = smb2_header(8, false, 0, message_id, session);
    req.extend_from_slice(&49u16.to_le_bytes());
    req.extend_from_slice(&[0x50, 0]);
    req.extend_from_slice(&(data.len() as u32).to_le_bytes());
    req.extend_from_slice(&(message_id * 65_536).to_le_bytes());
    req.extend_from_slice(&[0x33; 16]);
    req.extend_from_slice(&[0; 17]);
    let mut resp = smb2_header(8, true, 0, message_id, session);
    resp.extend_from_slice(&17u16.to_le_bytes());
    resp.extend_from_slice(&[80, 0]);
    resp.extend_from_slice(&(data.len() as u32).to_le_bytes());
    resp.extend_from_slice(&[0; 8]);
    resp.extend_from_slice(data);
    (nbss(&req), nbss(&resp))
}

/// SMB2 TREE_CONNECT request for `path` (`\\\\SERVER\\share`) and its
/// successful answer, a disk share.
pub fn smb2_tree_connect(message_id: u64, session: u64, path: &str) -> (Vec<u8>, Vec<u8>) {
    let unicode: Vec<u8> = path.encode_utf16().flat_map(u16::to_le_bytes).collect();
    let mut req = smb2_header(3, false, 0, message_id, session);
    req.extend_from_slice(&9u16.to_le_bytes());
    req.extend_from_slice(&0u16.to_le_bytes());
    req.extend_from_slice(&72u16.to_le_bytes());
    req.extend_from_slice(&(unicode.len() as u16).to_le_bytes());
    req.extend_from_slice(&unicode);
    let mut resp = smb2_header(3, true, 0, message_id, session);
    resp.extend_from_slice(&16u16.to_le_bytes());
    resp.extend_from_slice(&[1, 0]);
    resp.extend_from_slice(&[0; 4]);
    resp.extend_from_slice(&[0; 4]);
    resp.extend_from_slice(&0x001f_01ffu32.to_le_bytes());
    (nbss(&req), nbss(&resp))
}

/// One SMB2 logon: negotiate, then the three-message session setup.
/// Returns (client bytes, server bytes) per round trip, in order.
pub fn smb2_logon(
    session: u64,
    names: &ServerNames<'_>,
    domain: &str,
    user: &str,
    ws: &str,
    status: u32,
) -> Vec<(Vec<u8>, Vec<u8>)> {
    smb2_logon_from(session, names, domain, user, ws, status, CLIENT_BUILD)
}

/// [`smb2_logon`] from a client running Windows `build`.
pub fn smb2_logon_from(
    session: u64,
    names: &ServerNames<'_>,
    domain: &str,
    user: &str,
    ws: &str,
    status: u32,
    build: u16,
) -> Vec<(Vec<u8>, Vec<u8>)> {
    let (nreq, nresp) = smb2_negotiate();
    let chal = ntlm_challenge(names, [1, 2, 3, 4, 5, 6, 7, 8]);
    let spn = format!("cifs/{}", names.nb_computer);
    let auth = ntlm_authenticate_from(domain, user, ws, &spn, build);
    let final_blob = if status == 0 {
        spnego_resp(0, None)
    } else {
        Vec::new()
    };
    vec![
        (nreq, nresp),
        (
            smb2_session_setup_request(1, 0, &spnego_init(&ntlm_negotiate_from(build))),
            smb2_session_setup_response(1, session, 0xc000_0016, &spnego_resp(1, Some(&chal))),
        ),
        (
            smb2_session_setup_request(2, session, &spnego_resp(1, Some(&auth))),
            smb2_session_setup_response(2, session, status, &final_blob),
        ),
    ]
}

fn tpkt(x224: &[u8]) -> Vec<u8> {
    let mut o = vec![3, 0];
    o.extend_from_slice(&((x224.len() + 4) as u16).to_be_bytes());
    o.extend_from_slice(x224);
    o
}

/// X.224 Connection Request with a cookie and RDP_NEG_REQ.
pub fn rdp_connection_request(cookie: &str, requested: u32) -> Vec<u8> {
    let mut v = format!("Cookie: mstshash={cookie}\r\n").into_bytes();
    v.extend_from_slice(&[1, 0, 8, 0]);
    v.extend_from_slice(&requested.to_le_bytes());
    let mut x = vec![(6 + v.len()) as u8, 0xe0, 0, 0, 0, 0, 0];
    x.extend(v);
    tpkt(&x)
}

/// X.224 Connection Confirm with RDP_NEG_RSP.
pub fn rdp_connection_confirm(selected: u32) -> Vec<u8> {
    let mut x = vec![14, 0xd0, 0, 0, 0x12, 0x34, 0, 2, 0x1f, 8, 0];
    x.extend_from_slice(&selected.to_le_bytes());
    tpkt(&x)
}

fn ber(tag: &[u8], v: &[u8]) -> Vec<u8> {
    let mut o = tag.to_vec();
    match v.len() {
        n if n < 0x80 => o.push(n as u8),
        n => o.extend_from_slice(&[0x82, (n >> 8) as u8, n as u8]),
    }
    o.extend_from_slice(v);
    o
}

fn data_block(typ: u16, body: &[u8]) -> Vec<u8> {
    let mut b = typ.to_le_bytes().to_vec();
    b.extend_from_slice(&((body.len() + 4) as u16).to_le_bytes());
    b.extend_from_slice(body);
    b
}

fn utf16_fixed(s: &str, n: usize) -> Vec<u8> {
    let mut v = u16le(s);
    v.truncate(n - 2);
    v.resize(n, 0);
    v
}

/// MCS Connect-Initial with client core (name, build), security and
/// network blocks, in an X.224 Data TPDU.
pub fn rdp_connect_initial(client_name: &str, build: u32) -> Vec<u8> {
    let mut core = Vec::new();
    core.extend_from_slice(&0x0008_000cu32.to_le_bytes());
    core.extend_from_slice(&1920u16.to_le_bytes());
    core.extend_from_slice(&1080u16.to_le_bytes());
    core.extend_from_slice(&0xca01u16.to_le_bytes());
    core.extend_from_slice(&0xaa03u16.to_le_bytes());
    core.extend_from_slice(&0x409u32.to_le_bytes());
    core.extend_from_slice(&build.to_le_bytes());
    core.extend(utf16_fixed(client_name, 32));
    core.extend_from_slice(&4u32.to_le_bytes());
    core.extend_from_slice(&0u32.to_le_bytes());
    core.extend_from_slice(&12u32.to_le_bytes());
    core.extend_from_slice(&[0; 64]);
    core.extend_from_slice(&0xca01u16.to_le_bytes());
    core.extend_from_slice(&1u16.to_le_bytes());
    core.extend_from_slice(&0u32.to_le_bytes());
    core.extend_from_slice(&24u16.to_le_bytes());
    core.extend_from_slice(&0x000fu16.to_le_bytes());
    core.extend_from_slice(&0x0001u16.to_le_bytes());
    core.extend(utf16_fixed("", 64));
    core.extend_from_slice(&[6, 0]);
    core.extend_from_slice(&0u32.to_le_bytes());
    let mut blocks = data_block(0xc001, &core);
    blocks.extend(data_block(0xc002, &[0x1b, 0, 0, 0, 0, 0, 0, 0]));
    let mut net = 2u32.to_le_bytes().to_vec();
    for name in [&b"rdpdr\0\0\0"[..], b"cliprdr\0"] {
        net.extend_from_slice(name);
        net.extend_from_slice(&0x8080_0000u32.to_le_bytes());
    }
    blocks.extend(data_block(0xc003, &net));
    let mut create = vec![0x00, 0x08, 0x00, 0x10, 0x00, 0x01, 0xc0, 0x00];
    create.extend_from_slice(b"Duca");
    create.extend_from_slice(&[0x80 | (blocks.len() >> 8) as u8, blocks.len() as u8]);
    create.extend(blocks);
    let mut gcc = vec![0x00, 0x05, 0x00, 0x14, 0x7c, 0x00, 0x01];
    gcc.extend_from_slice(&[0x80 | (create.len() >> 8) as u8, create.len() as u8]);
    gcc.extend(create);
    let params = ber(
        &[0x30],
        &[
            0x02, 0x01, 0x22, 0x02, 0x01, 0x02, 0x02, 0x01, 0x00, 0x02, 0x01, 0x01,
        ],
    );
    let mut body = ber(&[0x04], &[1]);
    body.extend(ber(&[0x04], &[1]));
    body.extend(ber(&[0x01], &[0xff]));
    body.extend(params.clone());
    body.extend(params.clone());
    body.extend(params);
    body.extend(ber(&[0x04], &gcc));
    let mut x = vec![2, 0xf0, 0x80];
    x.extend(ber(&[0x7f, 0x65], &body));
    tpkt(&x)
}

/// MCS Connect-Response with server core and security blocks (RC4 128,
/// client-compatible level, proprietary certificate).
pub fn rdp_connect_response() -> Vec<u8> {
    let mut blocks = data_block(0x0c01, &[0x04, 0, 0x08, 0, 0, 0, 0, 0]);
    let mut sec = vec![2, 0, 0, 0, 2, 0, 0, 0, 32, 0, 0, 0];
    let mut cert = 1u32.to_le_bytes().to_vec();
    cert.extend_from_slice(&[0x55; 180]);
    sec.extend_from_slice(&(cert.len() as u32).to_le_bytes());
    sec.extend_from_slice(&[0x66; 32]);
    sec.extend(cert);
    blocks.extend(data_block(0x0c02, &sec));
    let mut gcc = vec![
        0x00, 0x05, 0x00, 0x14, 0x7c, 0x00, 0x01, 0x2a, 0x14, 0x76, 0x0a, 0x01, 0x01, 0x00, 0x01,
        0xc0, 0x00,
    ];
    gcc.extend_from_slice(b"McDn");
    gcc.extend_from_slice(&[0x80 | (blocks.len() >> 8) as u8, blocks.len() as u8]);
    gcc.extend(blocks);
    let mut body = ber(&[0x0a], &[0]);
    body.extend(ber(&[0x02], &[0]));
    body.extend(ber(&[0x30], &[0x02, 0x01, 0x22, 0x02, 0x01, 0x03]));
    body.extend(ber(&[0x04], &gcc));
    let mut x = vec![2, 0xf0, 0x80];
    x.extend(ber(&[0x7f, 0x66], &body));
    tpkt(&x)
}

/// A standard-security RDP handshake: (client, server) round trips.
pub fn rdp_standard_logon(cookie: &str, client_name: &str) -> Vec<(Vec<u8>, Vec<u8>)> {
    rdp_standard_logon_from(cookie, client_name, u32::from(CLIENT_BUILD))
}

/// [`rdp_standard_logon`] from a client of Windows `build`.
pub fn rdp_standard_logon_from(
    cookie: &str,
    client_name: &str,
    build: u32,
) -> Vec<(Vec<u8>, Vec<u8>)> {
    vec![
        (rdp_connection_request(cookie, 0), rdp_connection_confirm(0)),
        (
            rdp_connect_initial(client_name, build),
            rdp_connect_response(),
        ),
    ]
}

/// An HTTP NTLM logon: 401 with the challenge, then the final status.
pub fn http_ntlm_logon(
    path: &str,
    names: &ServerNames<'_>,
    domain: &str,
    user: &str,
    ws: &str,
    status: u16,
) -> Vec<(Vec<u8>, Vec<u8>)> {
    let b64 = |b: &[u8]| base64::engine::general_purpose::STANDARD.encode(b);
    let neg = format!(
        "GET {path} HTTP/1.1\r\nHost: {}\r\nAuthorization: NTLM {}\r\n\r\n",
        names.dns_computer,
        b64(&ntlm_negotiate())
    );
    let chal = format!(
        "HTTP/1.1 401 Unauthorized\r\nWWW-Authenticate: NTLM {}\r\nContent-Length: 0\r\n\r\n",
        b64(&ntlm_challenge(names, [9, 8, 7, 6, 5, 4, 3, 2]))
    );
    let auth = format!(
        "GET {path} HTTP/1.1\r\nHost: {}\r\nAuthorization: NTLM {}\r\n\r\n",
        names.dns_computer,
        b64(&ntlm_authenticate(
            domain,
            user,
            ws,
            &format!("HTTP/{}", names.dns_computer)
        ))
    );
    let body = "<html>ok</html>";
    let done = format!(
        "HTTP/1.1 {status} X\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    );
    vec![
        (neg.into_bytes(), chal.into_bytes()),
        (auth.into_bytes(), done.into_bytes()),
    ]
}

/// A TLS 1.2 handshake's first flights with a certificate, then
/// application data records of `app_bytes` in each direction.
pub fn tls_session(sni: &str, cert: &[u8], app_bytes: usize) -> Vec<(Vec<u8>, Vec<u8>)> {
    let record = |typ: u8, body: &[u8]| {
        let mut r = vec![typ, 3, 3];
        r.extend_from_slice(&(body.len() as u16).to_be_bytes());
        r.extend_from_slice(body);
        r
    };
    let hs = |typ: u8, body: &[u8]| {
        let mut h = vec![
            typ,
            (body.len() >> 16) as u8,
            (body.len() >> 8) as u8,
            body.len() as u8,
        ];
        h.extend_from_slice(body);
        h
    };
    let mut ch = vec![3, 3];
    ch.extend_from_slice(&[0x42; 32]);
    ch.extend_from_slice(&[0, 0, 2, 0xc0, 0x2f, 1, 0]);
    let mut sni_ext = ((sni.len() + 3) as u16).to_be_bytes().to_vec();
    sni_ext.push(0);
    sni_ext.extend_from_slice(&(sni.len() as u16).to_be_bytes());
    sni_ext.extend_from_slice(sni.as_bytes());
    let mut exts = 0u16.to_be_bytes().to_vec();
    exts.extend_from_slice(&(sni_ext.len() as u16).to_be_bytes());
    exts.extend(sni_ext);
    ch.extend_from_slice(&(exts.len() as u16).to_be_bytes());
    ch.extend(exts);
    let mut sh = vec![3, 3];
    sh.extend_from_slice(&[0x24; 32]);
    sh.extend_from_slice(&[0, 0xc0, 0x2f, 0, 0, 0]);
    let mut list = vec![
        (cert.len() >> 16) as u8,
        (cert.len() >> 8) as u8,
        cert.len() as u8,
    ];
    list.extend_from_slice(cert);
    let mut certs = vec![
        (list.len() >> 16) as u8,
        (list.len() >> 8) as u8,
        list.len() as u8,
    ];
    certs.extend(list);
    let mut flight = hs(2, &sh);
    flight.extend(hs(11, &certs));
    flight.extend(hs(14, &[]));
    let mut server = record(22, &flight);
    server.extend(record(20, &[1]));
    let mut trips = vec![(record(22, &hs(1, &ch)), server)];
    let chunk = vec![0x17u8; 16_000];
    let mut left = app_bytes;
    while left > 0 {
        let n = left.min(chunk.len());
        trips.push((record(23, &chunk[..n.min(400)]), record(23, &chunk[..n])));
        left -= n;
    }
    trips
}

/// The self-signed certificate used on synthetic TLS servers.
pub const CERT: &[u8] = include_bytes!("cert.der");

/// A DHCPv4 message to write ([`dhcp_v4`]).
#[derive(Debug, Clone, Copy)]
pub struct Dhcp<'a> {
    /// Option 53: 1 DISCOVER, 2 OFFER, 3 REQUEST, 5 ACK.
    pub msg_type: u8,
    pub xid: u32,
    pub mac: [u8; 6],
    /// yiaddr (an OFFER's or ACK's).
    pub yiaddr: [u8; 4],
    /// Option 50 (a REQUEST's).
    pub requested: Option<[u8; 4]>,
    /// Option 54 (an answer's, and a REQUEST's choice).
    pub server_id: Option<[u8; 4]>,
    /// Option 12, when not empty.
    pub hostname: &'a str,
    /// Option 60, when not empty.
    pub vendor_class: &'a str,
}

impl Default for Dhcp<'_> {
    fn default() -> Self {
        Dhcp {
            msg_type: 1,
            xid: 0,
            mac: [0; 6],
            yiaddr: [0; 4],
            requested: None,
            server_id: None,
            hostname: "",
            vendor_class: "",
        }
    }
}

/// A DHCPv4 message (RFC 2131 2, options RFC 2132): BOOTREPLY for an
/// OFFER or ACK, else BOOTREQUEST.
pub fn dhcp_v4(d: &Dhcp<'_>) -> Vec<u8> {
    let op = if matches!(d.msg_type, 2 | 5 | 6) {
        2
    } else {
        1
    };
    let mut m = vec![op, 1, 6, 0];
    m.extend_from_slice(&d.xid.to_be_bytes());
    m.extend_from_slice(&[0, 0, 0x80, 0]);
    m.extend_from_slice(&[0; 4]);
    m.extend_from_slice(&d.yiaddr);
    m.extend_from_slice(&[0; 8]);
    m.extend_from_slice(&d.mac);
    m.extend_from_slice(&[0; 10 + 192]);
    m.extend_from_slice(&[99, 130, 83, 99, 53, 1, d.msg_type]);
    for (code, v) in [(50u8, d.requested), (54, d.server_id)] {
        if let Some(a) = v {
            m.extend_from_slice(&[code, 4]);
            m.extend_from_slice(&a);
        }
    }
    if d.msg_type == 5 {
        m.extend_from_slice(&[51, 4, 0, 0, 0x0e, 0x10]);
    }
    for (code, v) in [(12u8, d.hostname), (60, d.vendor_class)] {
        if !v.is_empty() {
            m.extend_from_slice(&[code, v.len() as u8]);
            m.extend_from_slice(v.as_bytes());
        }
    }
    m.push(255);
    m
}

/// NetBIOS first-level encoding of `name` padded to 15 characters, with
/// its `suffix` (RFC 1001 14.1).
fn netbios_name(name: &str, suffix: u8) -> Vec<u8> {
    let mut raw = name.as_bytes().to_vec();
    raw.resize(15, b' ');
    raw.push(suffix);
    let mut v = vec![32];
    for b in raw {
        v.push(b'A' + (b >> 4));
        v.push(b'A' + (b & 0xf));
    }
    v.push(0);
    v
}

/// An NBNS registration request (opcode 5, RD, B) for `name<00>` at `addr`.
pub fn nbns_registration(txid: u16, name: &str, addr: [u8; 4]) -> Vec<u8> {
    let mut m = txid.to_be_bytes().to_vec();
    m.extend_from_slice(&[0x29, 0x10, 0, 1, 0, 0, 0, 0, 0, 1]);
    m.extend(netbios_name(name, 0));
    m.extend_from_slice(&[
        0, 0x20, 0, 1, 0xc0, 0x0c, 0, 0x20, 0, 1, 0, 4, 0x93, 0xe0, 0, 6, 0, 0,
    ]);
    m.extend_from_slice(&addr);
    m
}

/// An NBNS registration request as large as a parser takes: `records`
/// NB records for `name<00>`, each with `per_record` addresses.
pub fn nbns_registration_wide(txid: u16, name: &str, records: u16, per_record: u16) -> Vec<u8> {
    let mut m = txid.to_be_bytes().to_vec();
    m.extend_from_slice(&[0x29, 0x10, 0, 1, 0, 0, 0, 0]);
    m.extend_from_slice(&records.to_be_bytes());
    m.extend(netbios_name(name, 0));
    m.extend_from_slice(&[0, 0x20, 0, 1]);
    for _ in 0..records {
        m.extend_from_slice(&[0xc0, 0x0c, 0, 0x20, 0, 1, 0, 4, 0x93, 0xe0]);
        m.extend_from_slice(&(per_record * 6).to_be_bytes());
        for i in 0..per_record {
            let [a, b] = i.to_be_bytes();
            m.extend_from_slice(&[0, 0, 10, 99, a, b]);
        }
    }
    m
}

/// An NBNS query (opcode 0, RD) for `name<20>`.
pub fn nbns_query(txid: u16, name: &str) -> Vec<u8> {
    let mut m = txid.to_be_bytes().to_vec();
    m.extend_from_slice(&[0x01, 0x00, 0, 1, 0, 0, 0, 0, 0, 0]);
    m.extend(netbios_name(name, 0x20));
    m.extend_from_slice(&[0, 0x20, 0, 1]);
    m
}

/// A positive NBNS answer (R, AA, RD) naming `name<20>` at `addr`.
pub fn nbns_answer(txid: u16, name: &str, addr: [u8; 4]) -> Vec<u8> {
    let mut m = txid.to_be_bytes().to_vec();
    m.extend_from_slice(&[0x85, 0x00, 0, 0, 0, 1, 0, 0, 0, 0]);
    m.extend(netbios_name(name, 0x20));
    m.extend_from_slice(&[0, 0x20, 0, 1, 0, 0, 0, 60, 0, 6, 0x60, 0]);
    m.extend_from_slice(&addr);
    m
}
