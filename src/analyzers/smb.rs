//! SMB: NetBIOS session messages are framed, everything but SESSION_SETUP
//! and TREE_CONNECT is skipped without being buffered. The security blobs
//! (SPNEGO or raw NTLMSSP) go to the NTLM exchange tracker, whose verdict is
//! the final SESSION_SETUP response status. A tree connect's path names the
//! server as the client addresses it (`\\NAME\share`): paired with its
//! answer by message id, it is an `smb` event.

use std::collections::VecDeque;

use serde::Serialize;
use serde_with::skip_serializing_none;

use super::framing::{Frame, Framed, Framer, Seeker};
use super::ntlm::{Logon, Status, Tracker};
use super::protocol::{Carrier, EventRecord, Fallback, Name, Protocol, Role};
use super::{Ctx, Dir};
use crate::parsers::smb::{
    self, Command, Dialect, Negotiate, SessionSetup, ShareType, TreeConnect,
};
use crate::parsers::{spnego, text};

/// Tree connects awaiting their answer (the oldest is written unanswered
/// when more come).
const MAX_PENDING_TREES: usize = 16;

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
    /// Tree connect requests by message id, awaiting their answer.
    trees: VecDeque<(u64, SmbRecord)>,
    /// The dialect the server chose, as EVE names it (`3.11`, `NT LM 0.12`).
    dialect: Option<String>,
    /// The dialects an SMB1 client offered, by index.
    offered: Vec<String>,
}

impl Default for SmbAnalyzer {
    fn default() -> Self {
        SmbAnalyzer {
            framers: [
                Framer::new(smb::MAX_BUFFERED),
                Framer::new(smb::MAX_BUFFERED),
            ],
            tracker: None,
            trees: VecDeque::new(),
            dialect: None,
            offered: Vec::new(),
        }
    }
}

impl SmbAnalyzer {
    fn message(&mut self, dir: Dir, msg: &[u8], cx: &mut Ctx<'_>) {
        let Ok(commands) = smb::commands(msg) else {
            cx.parse_error(PROTOCOL.name);
            return;
        };
        for c in commands {
            match c {
                Command::Negotiate(n) => self.negotiate(dir, n),
                Command::SessionSetup(s) => self.session_setup(dir, s, cx),
                Command::TreeConnect(t) => self.tree_connect(dir, t, cx),
            }
        }
    }

    /// The dialect: offered by an SMB1 client, chosen by the server.
    fn negotiate(&mut self, dir: Dir, n: Negotiate<'_>) {
        match (n.response, dir, n.dialect) {
            (false, Dir::ToServer, Dialect::Smb1) => {
                self.offered = n.offered.iter().map(|d| text::oem(d)).collect();
            }
            (true, Dir::ToClient, Dialect::Smb1) => {
                let chosen = n.selected.and_then(|i| self.offered.get(usize::from(i)));
                self.dialect = chosen.cloned();
            }
            (true, Dir::ToClient, Dialect::Smb2) => {
                self.dialect = n.selected.map(smb::dialect_name);
            }
            _ => {}
        }
    }

    /// The security blobs go to the NTLM tracker; the final response is its
    /// verdict. Each exchange that reached its AUTHENTICATE is an `smb`
    /// event too, with EVE's `ntlmssp`.
    fn session_setup(&mut self, dir: Dir, s: SessionSetup<'_>, cx: &mut Ctx<'_>) {
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
        let mut answer = None;
        if s.response {
            tracker.session_id(s.session_id);
            // Written only where a record says it (not for the first leg's
            // "more processing required").
            let status = || Status::Hex(s.status);
            match s.status {
                smb::STATUS_MORE_PROCESSING_REQUIRED => {}
                smb::STATUS_SUCCESS if tracker.awaiting_verdict() => {
                    answer = Some(s.status);
                    tracker.verdict(true, status(), cx)
                }
                _ if tracker.awaiting_verdict() => {
                    answer = Some(s.status);
                    tracker.verdict(false, status(), cx)
                }
                smb::STATUS_SUCCESS => {}
                _ => tracker.abort(status(), cx),
            }
        }
        self.logged_on(s.dialect, answer, cx);
    }

    /// Writes the `smb` event of an exchange the tracker has just emitted.
    fn logged_on(&mut self, dialect: Dialect, status: Option<u32>, cx: &mut Ctx<'_>) {
        let Some(logon) = self.tracker.as_mut().and_then(Tracker::take_logon) else {
            return;
        };
        let mut r = SmbRecord::new(self.dialect.as_deref());
        r.command = match dialect {
            Dialect::Smb1 => "SMB1_COMMAND_SESSION_SETUP_ANDX",
            Dialect::Smb2 => "SMB2_COMMAND_SESSION_SETUP",
        };
        if let Some(st) = status {
            r.set_status(st);
        }
        r.session_id = logon.session_id;
        r.result = logon.result;
        r.ntlmssp = Some(logon);
        cx.emit(r);
    }

    /// A request (only from the client: the server does not ask) waits for
    /// its answer; the answer completes it.
    fn tree_connect(&mut self, dir: Dir, t: TreeConnect<'_>, cx: &mut Ctx<'_>) {
        match (t.response, dir) {
            (false, Dir::ToServer) => {
                let path = if t.unicode {
                    text::utf16le_lossy(t.path).0
                } else {
                    text::oem(t.path)
                };
                if self.trees.len() >= MAX_PENDING_TREES {
                    if let Some((_, r)) = self.trees.pop_front() {
                        cx.emit(r.unanswered());
                    }
                }
                let mut rec = SmbRecord::new(self.dialect.as_deref());
                rec.tree_connect(t.dialect, t.session_id, path);
                self.trees.push_back((t.message_id, rec));
            }
            (true, Dir::ToClient) => {
                let Some(i) = self.trees.iter().position(|(id, _)| *id == t.message_id) else {
                    return;
                };
                if let Some((_, mut r)) = self.trees.remove(i) {
                    r.set_status(t.status);
                    r.result = if t.status == smb::STATUS_SUCCESS {
                        "success"
                    } else {
                        "failure"
                    };
                    if t.status == smb::STATUS_SUCCESS {
                        r.tree_id = Some(t.tree_id);
                    }
                    r.share_type = t.share_type.map(|k| match k {
                        ShareType::File => "FILE",
                        ShareType::Pipe => "PIPE",
                        ShareType::Print => "PRINT",
                        ShareType::Other(_) => "UNKNOWN",
                    });
                    cx.emit(r.answered(t.share_type));
                }
            }
            _ => {}
        }
    }

    /// Writes the tree connects never answered.
    fn flush_trees(&mut self, cx: &mut Ctx<'_>) {
        for (_, r) in self.trees.drain(..) {
            cx.emit(r.unanswered());
        }
    }
}

impl Framed for SmbAnalyzer {
    fn framers(&self) -> &[Framer; 2] {
        &self.framers
    }

    fn framers_mut(&mut self) -> &mut [Framer; 2] {
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
        match smb::is_wanted(b) {
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
        self.flush_trees(cx);
    }

    fn seeker(&self) -> Option<Seeker> {
        Some(Seeker {
            protocol: PROTOCOL.name,
            find: |_, b, _| smb::resync(b),
        })
    }

    /// Windows re-authenticates deep into file transfers; payload is
    /// skipped by length, so a long connection stays cheap.
    fn depth(&self) -> Option<u32> {
        Some(super::MAX_DEPTH)
    }
}

// ---- The event ----

/// One SMB tree connect or logon (a session setup that carried NTLM), in
/// EVE's `smb` layout: `command` and `status` by their names (with
/// `status_code` in hex), the negotiated `dialect`, the path as sent in
/// `share` (or `named_pipe`), the logon's `ntlmssp`. hostwatch adds the
/// path's parts (`tree.server`, `tree.share`) and the `result`.
#[skip_serializing_none]
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct SmbRecord {
    pub command: &'static str,
    pub dialect: String,
    /// The NTSTATUS by its name (its number when it has none).
    #[serde(serialize_with = "status_name")]
    pub status: Option<u32>,
    /// The NTSTATUS in hex (`0xc000006d`).
    #[serde(serialize_with = "status_hex")]
    pub status_code: Option<u32>,
    pub session_id: Option<u64>,
    pub tree_id: Option<u32>,
    pub share: Option<String>,
    pub named_pipe: Option<String>,
    pub share_type: Option<&'static str>,
    pub ntlmssp: Option<Logon>,
    pub tree: Option<SmbTree>,
    /// `success`, `failure`, or `unknown` (no answer seen).
    pub result: &'static str,
    /// The path, until the answer says whether it is a pipe.
    #[serde(skip)]
    path: Option<String>,
}

// The status is kept as a number; its name and hex are written only into
// the event, on the output thread.

fn status_name<S: serde::Serializer>(status: &Option<u32>, s: S) -> Result<S::Ok, S::Error> {
    match (*status, status.and_then(smb::status_name)) {
        (_, Some(name)) => s.serialize_str(name),
        (Some(n), None) => s.serialize_str(itoa::Buffer::new().format(n)),
        (None, None) => s.serialize_none(),
    }
}

fn status_hex<S: serde::Serializer>(status: &Option<u32>, s: S) -> Result<S::Ok, S::Error> {
    match status {
        Some(n) => {
            // `0x` and the digits without leading zeros, as `{:#x}`.
            let mut text = crate::render::hex32_text(*n);
            let zeros = text
                .iter()
                .skip(2)
                .take(7)
                .take_while(|&&d| d == b'0')
                .count();
            text.copy_within(2 + zeros.., 2);
            let len = text.len() - zeros;
            s.serialize_str(
                std::str::from_utf8(text.get(..len).unwrap_or_default()).unwrap_or_default(),
            )
        }
        None => s.serialize_none(),
    }
}

/// The parts of a tree connect's path, `\\server\share`.
#[skip_serializing_none]
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct SmbTree {
    pub server: Option<String>,
    pub share: Option<String>,
}

impl SmbRecord {
    /// A record on a connection whose negotiated dialect is `negotiated`,
    /// when the negotiation was seen.
    fn new(negotiated: Option<&str>) -> SmbRecord {
        SmbRecord {
            dialect: negotiated.unwrap_or("unknown").to_owned(),
            result: "unknown",
            ..SmbRecord::default()
        }
    }

    fn tree_connect(&mut self, dialect: Dialect, session_id: u64, path: String) {
        // `\\server\share`: the server is what the client addressed.
        let (server, share) = match path.strip_prefix("\\\\") {
            Some(rest) => match rest.split_once('\\') {
                Some((server, share)) => (Some(server.to_owned()), Some(share.to_owned())),
                None => (Some(rest.to_owned()), None),
            },
            None => (None, None),
        };
        self.command = match dialect {
            Dialect::Smb1 => "SMB1_COMMAND_TREE_CONNECT_ANDX",
            Dialect::Smb2 => "SMB2_COMMAND_TREE_CONNECT",
        };
        self.session_id = (session_id != 0).then_some(session_id);
        self.tree = Some(SmbTree {
            server: server.filter(|s| !s.is_empty()),
            share: share.filter(|s| !s.is_empty()),
        });
        self.path = Some(path);
    }

    fn set_status(&mut self, status: u32) {
        self.status = Some(status);
        self.status_code = Some(status);
    }

    /// The path goes to `named_pipe` when the server opened a pipe, else
    /// to `share`.
    fn answered(mut self, kind: Option<ShareType>) -> SmbRecord {
        let pipe = kind == Some(ShareType::Pipe);
        let path = self.path.take();
        if pipe {
            self.named_pipe = path;
        } else {
            self.share = path;
        }
        self
    }

    /// Without an answer, IPC$ is taken for the pipe share it always is.
    fn unanswered(self) -> SmbRecord {
        let ipc = self
            .tree
            .as_ref()
            .and_then(|t| t.share.as_deref())
            .is_some_and(|s| s.eq_ignore_ascii_case("IPC$"));
        self.answered(ipc.then_some(ShareType::Pipe))
    }
}

impl EventRecord for SmbRecord {
    const EVENT_TYPE: &'static str = "smb";

    fn names<'a>(&'a self, v: &mut Vec<Name<'a>>) {
        let Some(server) = self.tree.as_ref().and_then(|t| t.server.as_deref()) else {
            return;
        };
        // An address is not a name.
        if server.parse::<std::net::IpAddr>().is_ok() || server.ends_with(".ipv6-literal.net") {
            return;
        }
        // The client may address the server by any name, and a server
        // accepts a tree connect under any name (Windows and Samba do): the
        // name in a path is what the client typed, a mention; the server's
        // own CHALLENGE says who it is.
        v.push(Name::of("smb.tree.server", Role::Named, server, true));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::analyzers::{Analyzer, Record, Status};
    use crate::synth::msg;

    /// Both directions lose bytes after NEGOTIATE and CHALLENGE: each
    /// searches for its next message, none comes, and what the exchange
    /// showed is reported when the connection ends.
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
        assert_eq!(a.gap(Dir::ToClient, 100, &mut cx), Status::Continue);
        assert!(a.framers.iter().all(Framer::seeking));
        assert_eq!(
            a.data(Dir::ToServer, &[0x41; 300], &mut cx),
            Status::Continue
        );
        a.end(&mut cx);
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

    /// A status is kept as a number and written as EVE has it: by name
    /// (the number in decimal when it has none) and in hex without
    /// leading zeros.
    #[test]
    fn status_written_by_name_and_in_hex() {
        let written = |status: u32| {
            let mut r = SmbRecord::new(Some("2.1"));
            r.set_status(status);
            let v = serde_json::to_value(&r).unwrap_or_default();
            (v["status"].clone(), v["status_code"].clone())
        };
        assert_eq!(written(0), ("STATUS_SUCCESS".into(), "0x0".into()));
        assert_eq!(
            written(0xc000_006d),
            ("STATUS_LOGON_FAILURE".into(), "0xc000006d".into())
        );
        assert_eq!(written(0x1234), ("4660".into(), "0x1234".into()));
        assert_eq!(
            written(0xffff_ffff),
            ("4294967295".into(), "0xffffffff".into())
        );
        let v = serde_json::to_value(SmbRecord::new(None)).unwrap_or_default();
        assert!(v.get("status").is_none() && v.get("status_code").is_none());
    }

    /// An SMB2 TREE_CONNECT request for `path` (message id 9), or its
    /// answer with `status`, in a NetBIOS message.
    fn tree(path: Option<&str>, status: u32) -> Vec<u8> {
        let mut h = b"\xfeSMB".to_vec();
        h.extend_from_slice(&64u16.to_le_bytes());
        h.extend_from_slice(&0u16.to_le_bytes());
        h.extend_from_slice(&status.to_le_bytes());
        h.extend_from_slice(&3u16.to_le_bytes());
        h.extend_from_slice(&1u16.to_le_bytes());
        h.extend_from_slice(&u32::from(path.is_none()).to_le_bytes());
        h.extend_from_slice(&0u32.to_le_bytes());
        h.extend_from_slice(&9u64.to_le_bytes());
        h.extend_from_slice(&[0; 32]);
        match path {
            Some(p) => {
                let utf16: Vec<u8> = p.encode_utf16().flat_map(u16::to_le_bytes).collect();
                h.extend_from_slice(&9u16.to_le_bytes());
                h.extend_from_slice(&0u16.to_le_bytes());
                h.extend_from_slice(&72u16.to_le_bytes());
                h.extend_from_slice(&(utf16.len() as u16).to_le_bytes());
                h.extend_from_slice(&utf16);
            }
            None => {
                h.extend_from_slice(&16u16.to_le_bytes());
                h.extend_from_slice(&[1, 0]);
                h.extend_from_slice(&[0; 12]);
            }
        }
        let mut m = vec![0, 0];
        m.extend_from_slice(&(h.len() as u16).to_be_bytes());
        m.extend_from_slice(&h);
        m
    }

    fn names_of(path: &str, status: Option<u32>, from: Dir) -> Vec<(String, Role)> {
        let mut a = SmbAnalyzer::default();
        let mut out: Vec<Record> = Vec::new();
        let mut cx = Ctx::new(0, false, &mut out);
        a.data(from, &tree(Some(path), 0), &mut cx);
        if let Some(st) = status {
            a.data(from.other(), &tree(None, st), &mut cx);
        }
        a.end(&mut cx);
        out.iter()
            .flat_map(|r| r.names())
            .map(|n| (n.value.to_string(), n.role))
            .collect()
    }

    /// The server name in a path is a mention whatever the answer (a
    /// server accepts any name); an address is no name; a "request" from
    /// the server's side names nobody.
    #[test]
    fn tree_connect_names_and_roles() {
        let named = |r| vec![("WIN-J9D866ESIJ2".to_string(), r)];
        let p = "\\\\WIN-J9D866ESIJ2\\IPC$";
        assert_eq!(names_of(p, Some(0), Dir::ToServer), named(Role::Named));
        assert_eq!(
            names_of(p, Some(0xc000_00cc), Dir::ToServer),
            named(Role::Named)
        );
        assert_eq!(names_of(p, None, Dir::ToServer), named(Role::Named));
        assert_eq!(
            names_of("\\\\10.0.0.1\\IPC$", Some(0), Dir::ToServer),
            vec![]
        );
        assert_eq!(names_of(p, Some(0), Dir::ToClient), vec![]);
    }
}
