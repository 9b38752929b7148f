//! hostwatch: a network sensor that finds the host names Windows machines
//! reveal in RDP and NTLM handshakes, and flags the ones on watch lists
//! (the default names of ransomware-linked VMmanager templates built in).
//!
//! The modules follow the pipeline a packet takes:
//! [`capture`] → [`decode`] → [`flow`] (table and TCP reassembly) →
//! [`analyzers`] (protocol detection and per-flow state machines, which
//! call the pure [`parsers`]) → [`events`] → [`detection`] (watch lists,
//! alerts, host inventory) → [`output`]. [`pipeline`] runs those stages on
//! threads; [`config`] reads the configuration file into the command
//! line's options.

pub mod analyzers;
pub mod capture;
pub mod config;
pub mod decode;
pub mod detection;
pub mod diag;
pub mod events;
pub mod flow;
pub mod output;
pub mod parsers;
pub mod pipeline;
pub mod render;
pub mod synth;
