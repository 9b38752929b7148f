//! RDP connection sequence (MS-RDPBCGR 1.3.1.1), one module per layer:
//! [`x224`] (TPKT, X.224 and the RDP_NEG structures), [`mcs`] (T.125 MCS
//! Connect-Initial/Response, BER, with the T.124 GCC wrapper, PER) and
//! [`gcc`] (the client and server data blocks inside); [`codes`] names
//! their codes as EVE writes them.

pub mod codes;
pub mod gcc;
pub mod mcs;
pub mod x224;

/// Errors of the RDP layers. Incomplete input is not an error: framing
/// functions return `None` until a whole PDU is there.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum RdpError {
    NotEnoughBytes {
        pdu: &'static str,
        received: usize,
        expected: usize,
    },
    InvalidField {
        pdu: &'static str,
        field: &'static str,
    },
}

impl std::fmt::Display for RdpError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            RdpError::NotEnoughBytes {
                pdu,
                received,
                expected,
            } => {
                write!(f, "{pdu}: {received} bytes, expected {expected}")
            }
            RdpError::InvalidField { pdu, field } => write!(f, "{pdu}: invalid {field}"),
        }
    }
}

impl std::error::Error for RdpError {}

pub(crate) fn invalid(pdu: &'static str, field: &'static str) -> RdpError {
    RdpError::InvalidField { pdu, field }
}

pub(crate) fn short(pdu: &'static str, received: usize, expected: usize) -> RdpError {
    RdpError::NotEnoughBytes {
        pdu,
        received,
        expected,
    }
}
