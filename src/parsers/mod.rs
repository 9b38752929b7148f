//! Pure parsers over `&[u8]`: no state, no I/O, borrowed records out. The
//! per-flow state machines that feed them live in [`crate::analyzers`].

pub mod dcerpc;
pub mod der;
pub mod http;
pub mod ldap;
pub mod nbns;
pub mod ntlm;
pub mod proxy;
pub mod rdp;
pub mod smb;
pub mod spnego;
pub mod text;
pub mod tls;
