//! Any other stream: NTLMSSP messages found by signature (`memchr`'s
//! memmem) in the reassembled bytes, within the reassembly depth. A message
//! split over segments is found all the same, since the search runs on the
//! reassembled stream and keeps the last bytes of each chunk.

use memchr::memmem;

use super::framing::{Frame, Framer};
use super::ntlm::Tracker;
use super::protocol::{Carrier, Fallback, Protocol};
use super::{Analyzer, Ctx, Dir, Status};
use crate::parsers::ntlm;

/// TDS (SQL Server), whose login carries NTLMSSP raw: from the pre-login
/// packet, or any stream nothing else took on its port.
pub const TDS: Protocol = Protocol {
    name: "tds",
    carrier: Carrier::Stream {
        client: Some(|c| c.starts_with(&[0x12, 0x01])),
        server: None,
        fallback: Fallback::OnPorts(&[1433]),
        new: |_| Box::new(RawAnalyzer::new("tds")),
    },
};

/// The last resort: NTLMSSP found by signature in any other stream.
pub const PROTOCOL: Protocol = Protocol {
    name: "raw",
    carrier: Carrier::Stream {
        client: None,
        server: None,
        fallback: Fallback::Any,
        new: |_| Box::new(RawAnalyzer::new("raw")),
    },
};

#[derive(Debug)]
pub struct RawAnalyzer {
    framers: [Framer; 2],
    tracker: Tracker,
    finder: memmem::Finder<'static>,
}

impl RawAnalyzer {
    pub fn new(carrier: &'static str) -> Self {
        RawAnalyzer {
            framers: [
                Framer::new(ntlm::MAX_MESSAGE),
                Framer::new(ntlm::MAX_MESSAGE),
            ],
            // No carrier verdict: a record is emitted at the AUTHENTICATE.
            tracker: Tracker::new(carrier, false),
            finder: memmem::Finder::new(ntlm::SIGNATURE),
        }
    }
}

impl Analyzer for RawAnalyzer {
    fn buffered(&self) -> usize {
        self.framers.iter().map(Framer::buffered).sum()
    }

    fn data(&mut self, dir: Dir, data: &[u8], cx: &mut Ctx<'_>) -> Status {
        let sig = ntlm::SIGNATURE.len();
        let mut framer = std::mem::take(&mut self.framers[dir.index()]);
        let finder = &self.finder;
        let tracker = &mut self.tracker;
        framer.feed(data, &mut |b: &[u8]| match finder.find(b) {
            // Keep the tail: a signature may straddle two chunks.
            None if b.len() > sig => Frame::Consumed(b.len() - (sig - 1)),
            None => Frame::Need(sig + 1),
            Some(p) if p > 0 => Frame::Consumed(p),
            Some(_) => match ntlm::extent(b) {
                None => Frame::Need(b.len() + 1),
                Some(n) if b.len() < n => Frame::Need(n),
                Some(n) => {
                    let consumed = if tracker.message(dir, &b[..n], cx).is_some() {
                        n
                    } else {
                        sig
                    };
                    Frame::Consumed(consumed.max(sig))
                }
            },
        });
        self.framers[dir.index()] = framer;
        Status::Continue
    }

    fn gap(&mut self, dir: Dir, _len: u32, _cx: &mut Ctx<'_>) -> Status {
        // The search resynchronises by itself: only the partial message is lost.
        self.framers[dir.index()] = Framer::new(ntlm::MAX_MESSAGE);
        Status::Continue
    }

    fn end(&mut self, cx: &mut Ctx<'_>) {
        self.tracker.flush(cx);
    }
}
