//! NTLM over SMB: NetBIOS session messages are framed, everything but
//! SESSION_SETUP is skipped without being buffered, and the security blobs
//! (SPNEGO or raw NTLMSSP) go to the exchange tracker. The verdict is the
//! final SESSION_SETUP response status.

use super::framing::{self, Frame, Framed, Framer};
use super::ntlm::Tracker;
use super::protocol::{Carrier, Fallback, Protocol};
use super::{Analyzer, Ctx, Dir, Status};
use crate::parsers::smb::{self, Dialect};
use crate::parsers::spnego;

/// SMB1/2/3 in NetBIOS session messages, from either side.
pub const PROTOCOL: Protocol = Protocol {
    name: "smb",
    carrier: Carrier::Stream {
        client: Some(smb::looks_like_session),
        server: Some(smb::looks_like_session),
        fallback: Fallback::No,
        new: |_| Box::<SmbAnalyzer>::default(),
    },
};

#[derive(Debug)]
pub struct SmbAnalyzer {
    framers: [Framer; 2],
    tracker: Option<Tracker>,
}

impl Default for SmbAnalyzer {
    fn default() -> Self {
        SmbAnalyzer {
            framers: [
                Framer::new(smb::MAX_BUFFERED),
                Framer::new(smb::MAX_BUFFERED),
            ],
            tracker: None,
        }
    }
}

impl SmbAnalyzer {
    fn message(&mut self, dir: Dir, msg: &[u8], cx: &mut Ctx<'_>) {
        let Ok(setups) = smb::session_setups(msg) else {
            cx.parse_error(PROTOCOL.name);
            return;
        };
        for s in setups {
            let tracker = self.tracker.get_or_insert_with(|| {
                Tracker::new(
                    if s.dialect == Dialect::Smb1 {
                        "smb1"
                    } else {
                        "smb2"
                    },
                    true,
                )
            });
            let token = spnego::ntlm_token(s.security_blob);
            if let Some(ntlm) = token.ntlm {
                tracker.message(dir, ntlm, cx);
            }
            if !s.response {
                continue;
            }
            tracker.session_id(s.session_id);
            let status = format!("0x{:08x}", s.status);
            match s.status {
                smb::STATUS_MORE_PROCESSING_REQUIRED => {}
                smb::STATUS_SUCCESS if tracker.awaiting_verdict() => {
                    tracker.verdict(true, status, cx)
                }
                _ if tracker.awaiting_verdict() => tracker.verdict(false, status, cx),
                smb::STATUS_SUCCESS => {}
                _ => tracker.abort(status, cx),
            }
        }
    }
}

impl Framed for SmbAnalyzer {
    fn framers(&mut self) -> &mut [Framer; 2] {
        &mut self.framers
    }

    fn step(&mut self, dir: Dir, b: &[u8], cx: &mut Ctx<'_>) -> Frame {
        let Some((typ, len)) = smb::nbss_header(b) else {
            return Frame::Need(4);
        };
        let total = 4 + len;
        if typ != smb::NBSS_MESSAGE {
            return Frame::Skip(total);
        }
        match smb::is_session_setup(b) {
            None => Frame::Need(total.min(smb::SESSION_SETUP_PEEK)),
            Some(false) => Frame::Skip(total),
            Some(true) => match b.get(4..total) {
                Some(msg) => {
                    self.message(dir, msg, cx);
                    Frame::Consumed(total)
                }
                None => Frame::Need(total),
            },
        }
    }

    fn stopped(&mut self, cx: &mut Ctx<'_>) {
        if let Some(t) = self.tracker.as_mut() {
            t.flush(cx);
        }
    }
}

impl Analyzer for SmbAnalyzer {
    fn buffered(&self) -> usize {
        self.framers.iter().map(Framer::buffered).sum()
    }

    fn data(&mut self, dir: Dir, data: &[u8], cx: &mut Ctx<'_>) -> Status {
        framing::data(self, dir, data, cx)
    }

    fn gap(&mut self, dir: Dir, _len: u32, cx: &mut Ctx<'_>) -> Status {
        framing::gap(self, dir, cx)
    }

    fn end(&mut self, cx: &mut Ctx<'_>) {
        if let Some(t) = self.tracker.as_mut() {
            t.flush(cx);
        }
    }

    fn depth(&self) -> Option<u32> {
        Some(super::MAX_DEPTH)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::analyzers::Record;
    use crate::synth::msg;

    /// Both directions lose bytes after NEGOTIATE and CHALLENGE: the
    /// framing stops, and what the exchange showed is still reported.
    #[test]
    fn an_exchange_cut_by_gaps_both_ways_is_reported() {
        let logon = msg::smb2_logon(5, &msg::FILESRV01, "CORP", "alice", "PC-1", 0);
        let mut a = SmbAnalyzer::default();
        let mut out = Vec::new();
        let mut cx = Ctx::new(0, false, &mut out);
        for (c, s) in &logon[..2] {
            assert_eq!(a.data(Dir::ToServer, c, &mut cx), Status::Continue);
            assert_eq!(a.data(Dir::ToClient, s, &mut cx), Status::Continue);
        }
        assert_eq!(a.gap(Dir::ToServer, 100, &mut cx), Status::Continue);
        assert_eq!(a.gap(Dir::ToClient, 100, &mut cx), Status::Done);
        let [Record::Ntlm(n)] = &out[..] else {
            panic!("{out:?}")
        };
        assert_eq!((n.carrier, n.result), ("smb2", "unknown"));
        assert!(n.negotiate.is_some() && n.client.is_none());
        let server = n
            .server
            .as_ref()
            .and_then(|s| s.nb_computer_name.as_deref());
        assert_eq!(server, Some(msg::FILESRV01.nb_computer));
    }
}
