//! Pure parsers over `&[u8]`: no state, no I/O, borrowed records out. The
//! per-flow state machines that feed them live in [`crate::analyzers`].

pub mod browser;
pub mod cldap;
pub mod dcerpc;
pub mod der;
pub mod dhcp;
pub mod dns;
pub mod http;
pub mod krb5;
pub mod labels;
pub mod ldap;
pub mod nbns;
pub mod ntlm;
pub mod proxy;
pub mod rdp;
pub mod smb;
pub mod spnego;
pub mod text;
pub mod tls;

/// Where a message may start in bytes that follow a loss, as a protocol's
/// resync finder (`smb::resync`, `dcerpc::resync`, ...) judges them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Resync {
    /// A plausible message starts this many bytes in.
    At(usize),
    /// None starts before the last this-many bytes, which may begin one
    /// and are to be searched again with the bytes that follow.
    Keep(usize),
}

/// The first offset of `b` where `first` occurs and `fits` accepts the
/// bytes from there (`Some(false)`: not a message start, `None`: not
/// enough bytes to tell).
pub fn find_start(b: &[u8], first: u8, fits: impl Fn(&[u8]) -> Option<bool>) -> Resync {
    let mut at = 0;
    while let Some(i) = b.get(at..).and_then(|rest| memchr::memchr(first, rest)) {
        let p = at + i;
        match b.get(p..).and_then(&fits) {
            Some(true) => return Resync::At(p),
            Some(false) => at = p + 1,
            None => return Resync::Keep(b.len() - p),
        }
    }
    Resync::Keep(0)
}

#[cfg(test)]
mod tests {
    /// Every parser's error type is a `std::error::Error` with a message
    /// that names the protocol and what was wrong.
    #[test]
    fn every_parser_error_is_a_std_error_naming_its_protocol() {
        let errors: Vec<(Box<dyn std::error::Error>, &str)> = vec![
            (
                Box::new(super::browser::BrowserError::Truncated {
                    section: "announcement",
                }),
                "browser datagram announcement truncated",
            ),
            (
                Box::new(super::dcerpc::RpcError::InvalidField { field: "frag_len" }),
                "DCE/RPC frag_len is invalid",
            ),
            (
                Box::new(super::ldap::LdapError::Malformed { field: "bind" }),
                "LDAP bind is malformed",
            ),
            (
                Box::new(super::nbns::NbnsError::Truncated { section: "name" }),
                "NBNS name truncated",
            ),
            (
                Box::new(super::ntlm::NtlmError::UnknownType(9)),
                "unknown NTLMSSP message type 9",
            ),
            (
                Box::new(super::rdp::RdpError::InvalidField {
                    pdu: "X.224 CR",
                    field: "length",
                }),
                "X.224 CR: invalid length",
            ),
            (
                Box::new(super::smb::SmbError::Truncated {
                    structure: "SESSION_SETUP",
                }),
                "SMB SESSION_SETUP truncated",
            ),
            (
                Box::new(super::tls::TlsError::Malformed {
                    message: "Certificate",
                }),
                "TLS Certificate message is malformed",
            ),
        ];
        for (e, want) in errors {
            assert_eq!(e.to_string(), want);
        }
    }
}
