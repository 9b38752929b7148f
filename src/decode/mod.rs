//! Decode stage: a captured frame in, TCP segments out.
//!
//! Link layers (Ethernet with 802.1Q/802.1ad tags, Linux cooked SLL and SLL2,
//! raw IP, BSD null/loopback), tunnels used to carry mirrored traffic (GRE,
//! ERSPAN types I–III, VXLAN), IPv4/IPv6 with extension headers (through
//! `etherparse`) and IP fragment reassembly. Anything that is not TCP is
//! counted and dropped here: later stages only ever see [`TcpSegment`]s.

pub mod defrag;
mod tunnel;

use std::net::IpAddr;

use etherparse::{IpNumber, IpSlice, Ipv6ExtensionSlice, TcpSlice};

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

/// One decoded TCP segment; the payload borrows from the frame or from the
/// defragmenter's reassembled datagram.
#[derive(Debug, Clone, Copy)]
pub struct TcpSegment<'a> {
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
    pub vlans: Vlans,
    pub payload: &'a [u8],
}

#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct DecodeStats {
    pub frames: u64,
    pub bytes: u64,
    pub tcp: u64,
    pub non_ip: u64,
    pub non_tcp: u64,
    pub malformed: u64,
    pub tunnels: u64,
    pub tunnel_too_deep: u64,
}

/// Decodes frames of one link type; holds the fragment reassembly state.
pub struct Decoder {
    linktype: i32,
    defrag: Defragmenter,
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
            stats: DecodeStats::default(),
        }
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

    /// Decodes one frame and calls `out` for the TCP segment it carries, if
    /// any (a fragment completes a datagram at most once, so `out` runs at
    /// most once per frame).
    pub fn decode<F: FnMut(&TcpSegment<'_>)>(&mut self, ts_us: i64, frame: &[u8], out: &mut F) {
        self.stats.frames += 1;
        self.stats.bytes += frame.len() as u64;
        let mut ctx = Ctx {
            ts_us,
            vlans: Vlans::default(),
            depth: 0,
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

    fn ethernet<F: FnMut(&TcpSegment<'_>)>(&mut self, ctx: &mut Ctx, frame: &[u8], out: &mut F) {
        match frame.get(12..14).zip(frame.get(14..)) {
            Some((t, rest)) => self.ethertype(ctx, u16::from_be_bytes([t[0], t[1]]), rest, out),
            None => self.stats.malformed += 1,
        }
    }

    fn ethertype<F: FnMut(&TcpSegment<'_>)>(
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
            _ => self.stats.non_ip += 1,
        }
    }

    fn ip<F: FnMut(&TcpSegment<'_>)>(&mut self, ctx: &mut Ctx, packet: &[u8], out: &mut F) {
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
        if !payload.fragmented {
            self.transport(ctx, src, dst, proto, payload.payload, out);
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
            self.transport(ctx, src, dst, proto, &whole, out);
        }
    }

    fn transport<F: FnMut(&TcpSegment<'_>)>(
        &mut self,
        ctx: &mut Ctx,
        src: IpAddr,
        dst: IpAddr,
        proto: IpNumber,
        payload: &[u8],
        out: &mut F,
    ) {
        match proto {
            IpNumber::TCP => match TcpSlice::from_slice(payload) {
                Ok(tcp) => {
                    self.stats.tcp += 1;
                    let b = tcp.header_slice();
                    let flags = b.get(13).copied().unwrap_or(0);
                    out(&TcpSegment {
                        ts_us: ctx.ts_us,
                        src,
                        dst,
                        sport: tcp.source_port(),
                        dport: tcp.destination_port(),
                        seq: tcp.sequence_number(),
                        ack: tcp.acknowledgment_number(),
                        flags,
                        window: tcp.window_size(),
                        vlans: ctx.vlans,
                        payload: tcp.payload(),
                    });
                }
                Err(_) => self.stats.malformed += 1,
            },
            IpNumber::GRE => self.tunnelled(ctx, tunnel::gre(payload), out),
            IpNumber::UDP => {
                // VXLAN on its IANA port; other UDP is of no interest.
                match tunnel::vxlan(payload) {
                    Some(inner) => self.tunnelled(ctx, Some(inner), out),
                    None => self.stats.non_tcp += 1,
                }
            }
            _ => self.stats.non_tcp += 1,
        }
    }

    fn tunnelled<F: FnMut(&TcpSegment<'_>)>(
        &mut self,
        ctx: &mut Ctx,
        inner: Option<tunnel::Inner<'_>>,
        out: &mut F,
    ) {
        let Some(inner) = inner else {
            self.stats.non_tcp += 1;
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
        };
        match inner {
            tunnel::Inner::Ethernet(f) => self.ethernet(&mut inner_ctx, f, out),
            tunnel::Inner::Ip(p) => self.ip(&mut inner_ctx, p, out),
        }
    }
}

struct Ctx {
    ts_us: i64,
    vlans: Vlans,
    depth: u8,
}

#[cfg(test)]
mod tests;
