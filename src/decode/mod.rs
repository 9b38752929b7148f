//! Decode stage: a captured frame in, TCP segments and UDP datagrams out.
//!
//! Link layers (Ethernet with 802.1Q/802.1ad tags, MPLS label stacks and
//! Ethernet pseudowires, PPPoE sessions, Linux cooked SLL and SLL2, raw IP,
//! BSD null/loopback), tunnels used to carry mirrored traffic (GRE,
//! ERSPAN types I–III, VXLAN), IPv4/IPv6 with extension headers (through
//! `etherparse`) and IP fragment reassembly. Anything that is neither TCP nor UDP is
//! counted and dropped here: later stages only ever see [`Packet`]s.

pub mod checksum;
pub mod defrag;
mod tunnel;

use std::net::IpAddr;

use etherparse::{IpNumber, IpSlice, Ipv6ExtensionSlice, TcpSlice, UdpSlice};

pub use checksum::Checksum;
use defrag::{DefragConfig, Defragmenter, FragKey};

/// Link types, as numbered in pcap files (LINKTYPE_*).
pub mod linktype {
    pub const NULL: i32 = 0;
    pub const ETHERNET: i32 = 1;
    /// DLT_RAW as some BSDs number it in live captures.
    pub const RAW_BSD: i32 = 12;
    pub const RAW_BSD_ALT: i32 = 14;
    pub const RAW: i32 = 101;
    pub const LOOP: i32 = 108;
    pub const LINUX_SLL: i32 = 113;
    pub const IPV4: i32 = 228;
    pub const IPV6: i32 = 229;
    pub const LINUX_SLL2: i32 = 276;

    /// Whether the decoder understands this link type.
    pub fn supported(lt: i32) -> bool {
        matches!(
            lt,
            NULL | ETHERNET
                | RAW_BSD
                | RAW_BSD_ALT
                | RAW
                | LOOP
                | LINUX_SLL
                | IPV4
                | IPV6
                | LINUX_SLL2
        )
    }
}

const ETHERTYPE_MPLS: u16 = 0x8847;
const ETHERTYPE_MPLS_MULTICAST: u16 = 0x8848;
const ETHERTYPE_PPPOE_SESSION: u16 = 0x8864;
/// MPLS labels read before a frame is given up.
const MAX_MPLS_LABELS: usize = 8;

/// How many tunnel layers are taken apart before a frame is given up.
const MAX_ENCAPSULATION: u8 = 4;
/// VLAN tags kept for the flow key (outermost first); deeper tags are skipped.
pub const MAX_VLANS: usize = 2;

/// 802.1Q/802.1ad ids, outermost first.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Vlans {
    ids: [u16; MAX_VLANS],
    len: u8,
}

impl Vlans {
    pub fn push(&mut self, id: u16) {
        if (self.len as usize) < MAX_VLANS {
            self.ids[self.len as usize] = id;
            self.len += 1;
        }
    }
    pub fn as_slice(&self) -> &[u16] {
        &self.ids[..self.len as usize]
    }
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }
    fn key(&self) -> [u16; MAX_VLANS] {
        self.ids
    }
}

/// TCP header flags, as on the wire.
pub mod tcp_flags {
    pub const FIN: u8 = 0x01;
    pub const SYN: u8 = 0x02;
    pub const RST: u8 = 0x04;
    pub const PSH: u8 = 0x08;
    pub const ACK: u8 = 0x10;
}

/// The transport protocols that get past decode.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Transport {
    Tcp,
    Udp,
}

impl Transport {
    /// The IP protocol number.
    pub fn number(self) -> u8 {
        match self {
            Transport::Tcp => 6,
            Transport::Udp => 17,
        }
    }

    /// As the envelope's `proto` writes it.
    pub fn name(self) -> &'static str {
        match self {
            Transport::Tcp => "TCP",
            Transport::Udp => "UDP",
        }
    }
}

/// One decoded TCP segment. `P` is the payload: borrowed from the frame or
/// the defragmenter's datagram ([`TcpSegment`]), or its place in a batch
/// while the segment travels to a worker.
#[derive(Debug, Clone, Copy)]
pub struct Segment<P> {
    /// Packet time, microseconds since the Unix epoch.
    pub ts_us: i64,
    pub src: IpAddr,
    pub dst: IpAddr,
    pub sport: u16,
    pub dport: u16,
    pub seq: u32,
    pub ack: u32,
    pub flags: u8,
    pub window: u16,
    /// A SYN that carries a TCP Fast Open cookie (RFC 7413): only then may
    /// its payload be delivered.
    pub fast_open: bool,
    pub vlans: Vlans,
    /// The live interface it came in on (its place among the interfaces
    /// captured), when live.
    pub iface: Option<u8>,
    /// What the receiver would make of the checksums.
    pub checksum: Checksum,
    pub payload: P,
}

/// A TCP segment with its payload.
pub type TcpSegment<'a> = Segment<&'a [u8]>;

/// One decoded UDP datagram; `P` as for [`Segment`].
#[derive(Debug, Clone, Copy)]
pub struct Datagram<P> {
    pub ts_us: i64,
    pub src: IpAddr,
    pub dst: IpAddr,
    pub sport: u16,
    pub dport: u16,
    pub vlans: Vlans,
    pub iface: Option<u8>,
    pub checksum: Checksum,
    pub payload: P,
}

/// A UDP datagram with its payload.
pub type UdpDatagram<'a> = Datagram<&'a [u8]>;

/// `with_payload` for a header generic over its payload: the same fields
/// with another payload (its bytes, or their place in a batch). Each field
/// is named once; one left out does not compile (stable Rust has no
/// type-changing struct update).
macro_rules! with_payload {
    ($ty:ident { $($field:ident),* $(,)? }) => {
        impl<P> $ty<P> {
            /// The same header with another payload.
            pub fn with_payload<Q>(self, payload: Q) -> $ty<Q> {
                $ty {
                    $($field: self.$field,)*
                    payload,
                }
            }
        }
    };
}

with_payload!(Segment {
    ts_us,
    src,
    dst,
    sport,
    dport,
    seq,
    ack,
    flags,
    window,
    fast_open,
    vlans,
    iface,
    checksum
});
with_payload!(Datagram {
    ts_us,
    src,
    dst,
    sport,
    dport,
    vlans,
    iface,
    checksum
});

/// What decode hands on.
#[derive(Debug, Clone, Copy)]
pub enum Packet<'a> {
    Tcp(TcpSegment<'a>),
    Udp(UdpDatagram<'a>),
}

impl<'a> Packet<'a> {
    pub fn payload(&self) -> &'a [u8] {
        match self {
            Packet::Tcp(s) => s.payload,
            Packet::Udp(d) => d.payload,
        }
    }
}

#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct DecodeStats {
    pub frames: u64,
    pub bytes: u64,
    /// Frames the capture cut short of their length on the wire (snaplen).
    pub truncated: u64,
    pub tcp: u64,
    pub udp: u64,
    pub non_ip: u64,
    /// IP packets of other transports (ICMP, ESP, ...).
    pub other_transport: u64,
    pub malformed: u64,
    /// IPv4 fragments dropped for a bad header checksum.
    pub bad_fragment_checksum: u64,
    pub tunnels: u64,
    pub tunnel_too_deep: u64,
}

impl DecodeStats {
    pub fn add(&mut self, o: &DecodeStats) {
        self.frames += o.frames;
        self.bytes += o.bytes;
        self.truncated += o.truncated;
        self.tcp += o.tcp;
        self.udp += o.udp;
        self.non_ip += o.non_ip;
        self.other_transport += o.other_transport;
        self.malformed += o.malformed;
        self.bad_fragment_checksum += o.bad_fragment_checksum;
        self.tunnels += o.tunnels;
        self.tunnel_too_deep += o.tunnel_too_deep;
    }

    pub fn to_json(&self) -> serde_json::Value {
        serde_json::json!({
            "pkts": self.frames, "bytes": self.bytes,
            "tcp": self.tcp, "udp": self.udp, "non_ip": self.non_ip, "truncated": self.truncated,
            "other_transport": self.other_transport, "malformed": self.malformed,
            "bad_fragment_checksum": self.bad_fragment_checksum,
            "tunnelled": self.tunnels, "tunnel_too_deep": self.tunnel_too_deep,
        })
    }
}

/// Decodes frames of one link type; holds the fragment reassembly state.
pub struct Decoder {
    linktype: i32,
    defrag: Defragmenter,
    /// How checksums are checked: fragments are judged here, before
    /// defragmentation.
    checksums: checksum::Mode,
    /// The live interface its frames come from (see [`Segment::iface`]).
    iface: Option<u8>,
    pub stats: DecodeStats,
}

impl Decoder {
    pub fn new(linktype: i32) -> Self {
        Self::with_defrag(linktype, DefragConfig::default())
    }

    pub fn with_defrag(linktype: i32, cfg: DefragConfig) -> Self {
        Decoder {
            linktype,
            defrag: Defragmenter::new(cfg),
            checksums: checksum::Mode::Auto,
            iface: None,
            stats: DecodeStats::default(),
        }
    }

    /// Marks what it decodes as come in on live interface `iface`.
    pub fn set_iface(&mut self, iface: Option<u8>) {
        self.iface = iface;
    }

    /// Takes checksums as `mode` says: a fragment whose IPv4 header
    /// checksum is wrong is dropped before defragmentation (one left at
    /// zero, unfilled, only when verifying), and every segment and datagram
    /// carries its verdict.
    pub fn set_checksum_mode(&mut self, mode: checksum::Mode) {
        self.checksums = mode;
    }

    pub fn linktype(&self) -> i32 {
        self.linktype
    }

    pub fn set_linktype(&mut self, linktype: i32) {
        self.linktype = linktype;
    }

    pub fn defrag_stats(&self) -> defrag::DefragStats {
        self.defrag.stats
    }

    /// Decodes one frame and calls `out` for the TCP segment or UDP datagram
    /// it carries, if any (a fragment completes a datagram at most once, so
    /// `out` runs at most once per frame).
    pub fn decode<F: FnMut(&Packet<'_>)>(&mut self, ts_us: i64, frame: &[u8], out: &mut F) {
        self.decode_placed(ts_us, frame, &mut |p, _| out(p));
    }

    /// As [`Decoder::decode`], telling `out` also whether the packet is
    /// *plain*: IPv4 whose addresses and ports are the frame's outermost
    /// (no tunnel, no MPLS, not reassembled from fragments), so that an
    /// AF_PACKET fanout hash over the frame, taken after the kernel's IPv4
    /// defragmentation, placed it with every other packet of its flow.
    pub fn decode_placed<F: FnMut(&Packet<'_>, bool)>(
        &mut self,
        ts_us: i64,
        frame: &[u8],
        out: &mut F,
    ) {
        self.stats.frames += 1;
        self.stats.bytes += frame.len() as u64;
        let mut ctx = Ctx {
            ts_us,
            vlans: Vlans::default(),
            depth: 0,
            plain: true,
        };
        match self.linktype {
            linktype::ETHERNET => self.ethernet(&mut ctx, frame, out),
            linktype::NULL | linktype::LOOP => {
                // The address family: host byte order for NULL, network order
                // for LOOP; both orders are tried since captures move between
                // machines.
                let Some((fam, rest)) = frame.split_at_checked(4) else {
                    self.stats.malformed += 1;
                    return;
                };
                let le = u32::from_le_bytes([fam[0], fam[1], fam[2], fam[3]]);
                let be = u32::from_be_bytes([fam[0], fam[1], fam[2], fam[3]]);
                let is_ip = |f: u32| matches!(f, 2 | 24 | 28 | 30);
                if is_ip(le) || is_ip(be) {
                    self.ip(&mut ctx, rest, out);
                } else {
                    self.stats.non_ip += 1;
                }
            }
            linktype::RAW
            | linktype::RAW_BSD
            | linktype::RAW_BSD_ALT
            | linktype::IPV4
            | linktype::IPV6 => self.ip(&mut ctx, frame, out),
            linktype::LINUX_SLL => {
                // 16-byte header, protocol type in the last two bytes.
                match frame.get(14..16).zip(frame.get(16..)) {
                    Some((p, rest)) => {
                        self.ethertype(&mut ctx, u16::from_be_bytes([p[0], p[1]]), rest, out)
                    }
                    None => self.stats.malformed += 1,
                }
            }
            linktype::LINUX_SLL2 => {
                // 20-byte header, protocol type first.
                match frame.get(0..2).zip(frame.get(20..)) {
                    Some((p, rest)) => {
                        self.ethertype(&mut ctx, u16::from_be_bytes([p[0], p[1]]), rest, out)
                    }
                    None => self.stats.malformed += 1,
                }
            }
            _ => self.stats.non_ip += 1,
        }
    }

    fn ethernet<F: FnMut(&Packet<'_>, bool)>(&mut self, ctx: &mut Ctx, frame: &[u8], out: &mut F) {
        match frame.get(12..14).zip(frame.get(14..)) {
            Some((t, rest)) => self.ethertype(ctx, u16::from_be_bytes([t[0], t[1]]), rest, out),
            None => self.stats.malformed += 1,
        }
    }

    fn ethertype<F: FnMut(&Packet<'_>, bool)>(
        &mut self,
        ctx: &mut Ctx,
        mut ethertype: u16,
        mut rest: &[u8],
        out: &mut F,
    ) {
        // VLAN tags: 802.1Q, 802.1ad and the pre-standard 0x9100 QinQ.
        while matches!(ethertype, 0x8100 | 0x88a8 | 0x9100) {
            let Some((tag, next)) = rest.split_at_checked(4) else {
                self.stats.malformed += 1;
                return;
            };
            ctx.vlans
                .push(u16::from_be_bytes([tag[0], tag[1]]) & 0x0fff);
            ethertype = u16::from_be_bytes([tag[2], tag[3]]);
            rest = next;
        }
        match ethertype {
            0x0800 | 0x86dd => self.ip(ctx, rest, out),
            // A kernel's flow hash may stop at a label or a PPPoE header.
            ETHERTYPE_MPLS | ETHERTYPE_MPLS_MULTICAST => {
                ctx.plain = false;
                self.mpls(ctx, rest, out)
            }
            ETHERTYPE_PPPOE_SESSION => {
                ctx.plain = false;
                self.pppoe(ctx, rest, out)
            }
            _ => self.stats.non_ip += 1,
        }
    }

    /// An MPLS label stack (RFC 3032), then IPv4 or IPv6 (told by the first
    /// nibble), or an Ethernet pseudowire behind its control word
    /// (RFC 4385: first nibble 0).
    fn mpls<F: FnMut(&Packet<'_>, bool)>(&mut self, ctx: &mut Ctx, mut rest: &[u8], out: &mut F) {
        for _ in 0..MAX_MPLS_LABELS {
            let Some((entry, next)) = rest.split_at_checked(4) else {
                self.stats.malformed += 1;
                return;
            };
            rest = next;
            if entry[2] & 0x01 == 0 {
                continue;
            }
            // Bottom of the stack: what follows is not labelled.
            return match rest.first().map(|b| b >> 4) {
                Some(4) | Some(6) => self.ip(ctx, rest, out),
                Some(0) => match rest.get(4..) {
                    // Ethernet inside: bounded like any other encapsulation.
                    Some(_) if ctx.depth >= MAX_ENCAPSULATION => self.stats.tunnel_too_deep += 1,
                    Some(frame) => {
                        ctx.depth += 1;
                        self.ethernet(ctx, frame, out)
                    }
                    None => self.stats.malformed += 1,
                },
                _ => self.stats.non_ip += 1,
            };
        }
        self.stats.malformed += 1;
    }

    /// A PPPoE session packet (RFC 2516): version/type, code, session id,
    /// length, then the PPP protocol (RFC 1661; one byte when compressed).
    fn pppoe<F: FnMut(&Packet<'_>, bool)>(&mut self, ctx: &mut Ctx, rest: &[u8], out: &mut F) {
        let Some((head, body)) = rest.split_at_checked(6) else {
            self.stats.malformed += 1;
            return;
        };
        if head[0] != 0x11 || head[1] != 0 {
            self.stats.non_ip += 1;
            return;
        }
        let len = usize::from(u16::from_be_bytes([head[4], head[5]]));
        let body = body.get(..len).unwrap_or(body);
        let (proto, payload) = match body.first() {
            Some(&b) if b & 1 == 1 => (u16::from(b), body.get(1..)),
            _ => (
                body.get(..2)
                    .map_or(0, |p| u16::from_be_bytes([p[0], p[1]])),
                body.get(2..),
            ),
        };
        match (proto, payload) {
            (0x0021 | 0x0057, Some(p)) => self.ip(ctx, p, out),
            (_, None) => self.stats.malformed += 1,
            _ => self.stats.non_ip += 1,
        }
    }

    fn ip<F: FnMut(&Packet<'_>, bool)>(&mut self, ctx: &mut Ctx, packet: &[u8], out: &mut F) {
        let ip = match IpSlice::from_slice(packet) {
            Ok(ip) => ip,
            Err(_) => {
                self.stats.malformed += 1;
                return;
            }
        };
        let src = ip.source_addr();
        let dst = ip.destination_addr();
        let payload = ip.payload();
        let proto = payload.ip_number;
        let header = match &ip {
            IpSlice::Ipv4(v4) => {
                let h = v4.header();
                if self.checksums == checksum::Mode::Ignore || checksum::ipv4_header_ok(h.slice()) {
                    Header::Ok
                } else if h.header_checksum() == 0 {
                    Header::Unfilled
                } else {
                    Header::Bad
                }
            }
            IpSlice::Ipv6(_) => {
                // The kernel defragments IPv4 before its fanout hash, not
                // IPv6: any segment of an IPv6 connection may come as
                // fragments, which it hashes by their addresses alone, so
                // no IPv6 packet is surely where the rest of its
                // connection went.
                ctx.plain = false;
                Header::Ok
            }
        };
        if !payload.fragmented {
            self.transport(ctx, (src, dst, header), proto, payload.payload, out);
            return;
        }
        let unfilled_rejected = self.checksums == checksum::Mode::Verify;
        if header == Header::Bad || (header == Header::Unfilled && unfilled_rejected) {
            self.stats.bad_fragment_checksum += 1;
            return;
        }
        // A fragment: find its id, offset and more-fragments flag.
        let frag = match &ip {
            IpSlice::Ipv4(v4) => {
                let h = v4.header();
                Some((
                    u32::from(h.identification()),
                    usize::from(h.fragments_offset().value()) * 8,
                    h.more_fragments(),
                ))
            }
            IpSlice::Ipv6(v6) => v6.extensions().clone().into_iter().find_map(|e| match e {
                Ipv6ExtensionSlice::Fragment(f) => Some((
                    f.identification(),
                    usize::from(f.fragment_offset().value()) * 8,
                    f.more_fragments(),
                )),
                _ => None,
            }),
        };
        let Some((id, offset, more)) = frag else {
            self.stats.malformed += 1;
            return;
        };
        let key = FragKey {
            src,
            dst,
            id,
            proto: proto.0,
            vlan: ctx.vlans.key(),
        };
        if let Some(whole) = self
            .defrag
            .add(key, ctx.ts_us, offset, more, payload.payload)
        {
            // A fragment's hash saw no ports.
            ctx.plain = false;
            self.transport(ctx, (src, dst, Header::Ok), proto, &whole, out);
        }
    }

    fn transport<F: FnMut(&Packet<'_>, bool)>(
        &mut self,
        ctx: &mut Ctx,
        (src, dst, ip_header): (IpAddr, IpAddr, Header),
        proto: IpNumber,
        payload: &[u8],
        out: &mut F,
    ) {
        // The transport checksum, all but the payload's share.
        let head_sum = |header: &[u8], field: u16, len: usize| {
            let pseudo = checksum::pseudo_header(src, dst, proto.0, len);
            let head = checksum::fold(checksum::add(pseudo, header));
            let c = match ip_header {
                Header::Ok => Checksum::of(head, field, pseudo),
                Header::Unfilled => Checksum::Unfilled(head),
                Header::Bad => Checksum::Bad,
            };
            c.under(self.checksums)
        };
        match proto {
            IpNumber::TCP => match TcpSlice::from_slice(payload) {
                Ok(tcp) => {
                    self.stats.tcp += 1;
                    let b = tcp.header_slice();
                    let flags = b.get(13).copied().unwrap_or(0);
                    out(
                        &Packet::Tcp(TcpSegment {
                            ts_us: ctx.ts_us,
                            src,
                            dst,
                            sport: tcp.source_port(),
                            dport: tcp.destination_port(),
                            seq: tcp.sequence_number(),
                            ack: tcp.acknowledgment_number(),
                            flags,
                            window: tcp.window_size(),
                            fast_open: flags & tcp_flags::SYN != 0
                                && !tcp.payload().is_empty()
                                && has_fast_open_cookie(tcp.options()),
                            vlans: ctx.vlans,
                            iface: self.iface,
                            checksum: head_sum(b, tcp.checksum(), payload.len()),
                            payload: tcp.payload(),
                        }),
                        ctx.plain,
                    );
                }
                Err(_) => self.stats.malformed += 1,
            },
            IpNumber::GRE => self.tunnelled(ctx, tunnel::gre(payload), out),
            IpNumber::UDP => {
                // VXLAN on its IANA port is taken apart; other UDP goes on.
                if let Some(inner) = tunnel::vxlan(payload) {
                    self.tunnelled(ctx, Some(inner), out);
                    return;
                }
                match UdpSlice::from_slice(payload) {
                    Ok(udp) => {
                        self.stats.udp += 1;
                        let h = udp.header_slice();
                        // Zero: the sender computed no checksum (RFC 768).
                        let checksum = match (udp.checksum(), ip_header) {
                            (_, Header::Bad) => Checksum::Bad,
                            (0, _) => Checksum::Unchecked.under(self.checksums),
                            (field, _) => head_sum(h, field, usize::from(udp.length())),
                        };
                        out(
                            &Packet::Udp(UdpDatagram {
                                ts_us: ctx.ts_us,
                                src,
                                dst,
                                sport: udp.source_port(),
                                dport: udp.destination_port(),
                                vlans: ctx.vlans,
                                iface: self.iface,
                                checksum,
                                payload: udp.payload(),
                            }),
                            ctx.plain,
                        );
                    }
                    Err(_) => self.stats.malformed += 1,
                }
            }
            _ => self.stats.other_transport += 1,
        }
    }

    fn tunnelled<F: FnMut(&Packet<'_>, bool)>(
        &mut self,
        ctx: &mut Ctx,
        inner: Option<tunnel::Inner<'_>>,
        out: &mut F,
    ) {
        let Some(inner) = inner else {
            self.stats.other_transport += 1;
            return;
        };
        if ctx.depth >= MAX_ENCAPSULATION {
            self.stats.tunnel_too_deep += 1;
            return;
        }
        self.stats.tunnels += 1;
        // Flows are attributed to the inner frame: its tags, its addresses.
        let mut inner_ctx = Ctx {
            ts_us: ctx.ts_us,
            vlans: Vlans::default(),
            depth: ctx.depth + 1,
            plain: false,
        };
        match inner {
            tunnel::Inner::Ethernet(f) => self.ethernet(&mut inner_ctx, f, out),
            tunnel::Inner::Ip(p) => self.ip(&mut inner_ctx, p, out),
        }
    }
}

/// Whether TCP options hold a Fast Open cookie: option 34 (RFC 7413) or
/// the experimental 254 with magic F989 (RFC 6994), longer than a bare
/// cookie request.
fn has_fast_open_cookie(mut opts: &[u8]) -> bool {
    while let Some((&kind, rest)) = opts.split_first() {
        match kind {
            0 => return false,
            1 => opts = rest,
            _ => {
                let Some(&len) = rest.first() else {
                    return false;
                };
                let len = usize::from(len);
                let Some(opt) = opts.get(..len).filter(|_| len >= 2) else {
                    return false;
                };
                match kind {
                    34 if len > 2 => return true,
                    254 if len > 4 && opt.get(2..4) == Some(&[0xf9, 0x89][..]) => return true,
                    _ => {}
                }
                opts = opts.get(len..).unwrap_or_default();
            }
        }
    }
    false
}

/// What an IPv4 header's checksum says (IPv6 has none).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Header {
    Ok,
    /// Zero: left for the card to fill in.
    Unfilled,
    Bad,
}

struct Ctx {
    ts_us: i64,
    vlans: Vlans,
    depth: u8,
    /// The packet's addresses and ports are the frame's outermost ones
    /// (see [`Decoder::decode_placed`]).
    plain: bool,
}

#[cfg(test)]
mod tests;
