use super::*;
use etherparse::PacketBuilder;

/// An IPv4 TCP packet (no link header) with `payload`.
fn ipv4_tcp(payload: &[u8]) -> Vec<u8> {
    let b = PacketBuilder::ipv4([10, 0, 0, 1], [10, 0, 0, 2], 64)
        .tcp(40000, 3389, 1000, 8192)
        .ack(5)
        .psh();
    let mut out = Vec::new();
    b.write(&mut out, payload).unwrap_or_default();
    out
}

fn ipv6_tcp(payload: &[u8]) -> Vec<u8> {
    let src = [0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1];
    let dst = [0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 2];
    let b = PacketBuilder::ipv6(src, dst, 64)
        .tcp(40000, 445, 77, 8192)
        .syn();
    let mut out = Vec::new();
    b.write(&mut out, payload).unwrap_or_default();
    out
}

fn eth(ethertype: u16, tags: &[(u16, u16)], body: &[u8]) -> Vec<u8> {
    let mut f = vec![0x02, 0, 0, 0, 0, 2, 0x02, 0, 0, 0, 0, 1];
    for &(tpid, id) in tags {
        f.extend_from_slice(&tpid.to_be_bytes());
        f.extend_from_slice(&id.to_be_bytes());
    }
    f.extend_from_slice(&ethertype.to_be_bytes());
    f.extend_from_slice(body);
    f
}

type Seen = (String, u16, String, u16, Vec<u16>, Vec<u8>);

/// The TCP segments decoded from `frames` (UDP datagrams in `udp`).
fn decode_both(lt: i32, frames: &[Vec<u8>]) -> (Vec<Seen>, Vec<Seen>, DecodeStats) {
    let mut d = Decoder::new(lt);
    let (mut tcp, mut udp) = (Vec::new(), Vec::new());
    for (i, f) in frames.iter().enumerate() {
        d.decode(i as i64, f, &mut |p| {
            let (list, seen) = match p {
                Packet::Tcp(s) => (
                    &mut tcp,
                    (s.src, s.sport, s.dst, s.dport, s.vlans, s.payload),
                ),
                Packet::Udp(u) => (
                    &mut udp,
                    (u.src, u.sport, u.dst, u.dport, u.vlans, u.payload),
                ),
            };
            list.push((
                seen.0.to_string(),
                seen.1,
                seen.2.to_string(),
                seen.3,
                seen.4.as_slice().to_vec(),
                seen.5.to_vec(),
            ))
        });
    }
    (tcp, udp, d.stats)
}

fn decode_all(lt: i32, frames: &[Vec<u8>]) -> (Vec<Seen>, DecodeStats) {
    let (tcp, _, stats) = decode_both(lt, frames);
    (tcp, stats)
}

fn one(lt: i32, frame: Vec<u8>) -> Seen {
    let (mut got, stats) = decode_all(lt, &[frame]);
    assert_eq!(got.len(), 1, "{stats:?}");
    got.remove(0)
}

#[test]
fn ethernet_ipv4_tcp() {
    let s = one(linktype::ETHERNET, eth(0x0800, &[], &ipv4_tcp(b"hello")));
    assert_eq!(
        s,
        (
            "10.0.0.1".into(),
            40000,
            "10.0.0.2".into(),
            3389,
            vec![],
            b"hello".to_vec()
        )
    );
}

#[test]
fn ethernet_padding_is_not_payload() {
    let mut f = eth(0x0800, &[], &ipv4_tcp(b""));
    f.extend_from_slice(&[0u8; 6]);
    assert_eq!(one(linktype::ETHERNET, f).5, Vec::<u8>::new());
}

#[test]
fn vlan_and_qinq_tags_outermost_first() {
    assert_eq!(
        one(
            linktype::ETHERNET,
            eth(0x0800, &[(0x8100, 0x2064)], &ipv4_tcp(b"x"))
        )
        .4,
        vec![100]
    );
    let q = eth(0x0800, &[(0x88a8, 10), (0x8100, 20)], &ipv4_tcp(b"x"));
    assert_eq!(one(linktype::ETHERNET, q).4, vec![10, 20]);
}

#[test]
fn ipv6_tcp_with_extension_header() {
    let mut p = ipv6_tcp(b"abc");
    // Insert an 8-byte destination options header (next header 6 = TCP).
    p[6] = 60;
    let plen = u16::from_be_bytes([p[4], p[5]]) + 8;
    p[4..6].copy_from_slice(&plen.to_be_bytes());
    let tail = p.split_off(40);
    p.extend_from_slice(&[6, 0, 1, 4, 0, 0, 0, 0]);
    p.extend_from_slice(&tail);
    let s = one(linktype::ETHERNET, eth(0x86dd, &[], &p));
    assert_eq!(
        (s.0.as_str(), s.3, s.5.as_slice()),
        ("2001:db8::1", 445, &b"abc"[..])
    );
}

#[test]
fn linux_cooked_v1_and_v2() {
    let mut sll = vec![0, 0, 0, 1, 0, 6, 2, 0, 0, 0, 0, 1, 0, 0];
    sll.extend_from_slice(&0x0800u16.to_be_bytes());
    sll.extend_from_slice(&ipv4_tcp(b"sll"));
    assert_eq!(one(linktype::LINUX_SLL, sll).5, b"sll");

    let mut sll2 = vec![
        0x86, 0xdd, 0, 0, 0, 0, 0, 2, 0, 1, 0, 6, 2, 0, 0, 0, 0, 1, 0, 0,
    ];
    sll2.extend_from_slice(&ipv6_tcp(b"sll2"));
    assert_eq!(one(linktype::LINUX_SLL2, sll2).5, b"sll2");
}

#[test]
fn raw_ip_and_bsd_loopback() {
    assert_eq!(one(linktype::RAW, ipv4_tcp(b"raw")).5, b"raw");
    assert_eq!(one(linktype::IPV6, ipv6_tcp(b"v6")).5, b"v6");
    let mut null = 2u32.to_le_bytes().to_vec();
    null.extend_from_slice(&ipv4_tcp(b"null"));
    assert_eq!(one(linktype::NULL, null).5, b"null");
    let mut lo = 30u32.to_be_bytes().to_vec();
    lo.extend_from_slice(&ipv6_tcp(b"loop"));
    assert_eq!(one(linktype::LOOP, lo).5, b"loop");
}

#[test]
fn gre_erspan_and_vxlan_are_attributed_to_the_inner_flow() {
    let inner = eth(0x0800, &[(0x8100, 7)], &ipv4_tcp(b"inner"));
    let mut gre = vec![
        0x10, 0x00, 0x88, 0xbe, 0, 0, 0, 1, 0x10, 0, 0, 1, 0, 0, 0, 0,
    ];
    gre.extend_from_slice(&inner);
    let outer = PacketBuilder::ipv4([192, 0, 2, 1], [192, 0, 2, 2], 64);
    let mut ip = Vec::new();
    outer
        .write(&mut ip, IpNumber::GRE, &gre)
        .unwrap_or_default();
    let s = one(linktype::ETHERNET, eth(0x0800, &[(0x8100, 999)], &ip));
    assert_eq!(
        (s.0.as_str(), s.4.clone(), s.5.as_slice()),
        ("10.0.0.1", vec![7], &b"inner"[..])
    );

    let mut vx = vec![0x08, 0, 0, 0, 0, 0, 1, 0];
    vx.extend_from_slice(&inner);
    let udp = PacketBuilder::ipv4([192, 0, 2, 1], [192, 0, 2, 2], 64).udp(5555, 4789);
    let mut ip = Vec::new();
    udp.write(&mut ip, &vx).unwrap_or_default();
    assert_eq!(one(linktype::ETHERNET, eth(0x0800, &[], &ip)).5, b"inner");
}

#[test]
fn udp_over_ipv4_ipv6_tags_fragments_and_tunnels() {
    let v4 = PacketBuilder::ipv4([10, 0, 0, 5], [10, 0, 0, 255], 64).udp(137, 137);
    let mut ip = Vec::new();
    v4.write(&mut ip, b"nbns").unwrap_or_default();
    let src6 = [0xfe, 0x80, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1];
    let dst6 = [0xff, 0x02, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 0, 3];
    let v6 = PacketBuilder::ipv6(src6, dst6, 1).udp(50000, 5355);
    let mut ip6 = Vec::new();
    v6.write(&mut ip6, b"llmnr").unwrap_or_default();
    // A 300-byte datagram in 64-byte fragments, last first.
    let big: Vec<u8> = (0..300u16).map(|i| i as u8).collect();
    let mut ipbig = Vec::new();
    PacketBuilder::ipv4([10, 0, 0, 6], [10, 0, 0, 7], 64)
        .udp(40000, 137)
        .write(&mut ipbig, &big)
        .unwrap_or_default();
    let mut frags = fragment_v4(&ipbig, 64);
    frags.reverse();
    // The same v4 datagram inside VXLAN.
    let mut vx = vec![0x08, 0, 0, 0, 0, 0, 1, 0];
    vx.extend_from_slice(&eth(0x0800, &[], &ip));
    let mut outer = Vec::new();
    PacketBuilder::ipv4([192, 0, 2, 1], [192, 0, 2, 2], 64)
        .udp(5555, 4789)
        .write(&mut outer, &vx)
        .unwrap_or_default();
    let mut frames = vec![
        eth(0x0800, &[(0x8100, 42)], &ip),
        eth(0x86dd, &[], &ip6),
        eth(0x0800, &[], &outer),
    ];
    frames.extend(frags);
    let (tcp, udp, stats) = decode_both(linktype::ETHERNET, &frames);
    assert!(tcp.is_empty());
    type Row<'a> = (&'a str, u16, &'a str, u16, Vec<u16>, usize);
    let got: Vec<Row<'_>> = udp
        .iter()
        .map(|s| (s.0.as_str(), s.1, s.2.as_str(), s.3, s.4.clone(), s.5.len()))
        .collect();
    assert_eq!(
        got,
        [
            ("10.0.0.5", 137, "10.0.0.255", 137, vec![42], 4),
            ("fe80::1", 50000, "ff02::1:3", 5355, vec![], 5),
            ("10.0.0.5", 137, "10.0.0.255", 137, vec![], 4),
            ("10.0.0.6", 40000, "10.0.0.7", 137, vec![], 300),
        ]
    );
    assert_eq!(udp[3].5, big);
    assert_eq!((stats.udp, stats.tcp, stats.tunnels), (4, 0, 1));
}

/// Splits an IPv4 TCP packet into fragments of `size` payload bytes.
fn fragment_v4(packet: &[u8], size: usize) -> Vec<Vec<u8>> {
    let ihl = usize::from(packet[0] & 0x0f) * 4;
    let body = &packet[ihl..];
    let mut out = Vec::new();
    for (i, chunk) in body.chunks(size).enumerate() {
        let off = i * size;
        let more = off + chunk.len() < body.len();
        let mut h = packet[..ihl].to_vec();
        h[2..4].copy_from_slice(&((ihl + chunk.len()) as u16).to_be_bytes());
        h[4..6].copy_from_slice(&0x1234u16.to_be_bytes());
        let fo = (off / 8) as u16 | if more { 0x2000 } else { 0 };
        h[6..8].copy_from_slice(&fo.to_be_bytes());
        h[10..12].copy_from_slice(&[0, 0]);
        let sum = !checksum::fold(checksum::add(0, &h));
        h[10..12].copy_from_slice(&sum.to_be_bytes());
        h.extend_from_slice(chunk);
        out.push(eth(0x0800, &[], &h));
    }
    out
}

#[test]
fn ipv4_fragments_in_and_out_of_order() {
    let payload: Vec<u8> = (0..200u8).collect();
    let frags = fragment_v4(&ipv4_tcp(&payload), 64);
    assert_eq!(frags.len(), 4);
    let (got, stats) = decode_all(linktype::ETHERNET, &frags);
    assert_eq!(got.len(), 1);
    assert_eq!(got[0].5, payload);
    assert_eq!(stats.tcp, 1);
    let mut rev = frags.clone();
    rev.reverse();
    let (got, _) = decode_all(linktype::ETHERNET, &rev);
    assert_eq!(got.len(), 1);
    assert_eq!(got[0].5, payload);
}

#[test]
fn ipv6_fragments() {
    let payload: Vec<u8> = (0..150u8).collect();
    let full = ipv6_tcp(&payload);
    let body = &full[40..];
    let mut frames = Vec::new();
    for (i, chunk) in body.chunks(80).enumerate() {
        let off = i * 80;
        let more = off + chunk.len() < body.len();
        let mut h = full[..40].to_vec();
        h[6] = 44;
        h[4..6].copy_from_slice(&((8 + chunk.len()) as u16).to_be_bytes());
        let fo = ((off / 8) as u16) << 3 | u16::from(more);
        h.extend_from_slice(&[6, 0]);
        h.extend_from_slice(&fo.to_be_bytes());
        h.extend_from_slice(&0xabcdu32.to_be_bytes());
        h.extend_from_slice(chunk);
        frames.push(eth(0x86dd, &[], &h));
    }
    frames.reverse();
    let (got, _) = decode_all(linktype::ETHERNET, &frames);
    assert_eq!(got.len(), 1);
    assert_eq!(got[0].5, payload);
}

#[test]
fn garbage_is_counted_not_fatal() {
    let frames = vec![
        vec![],
        vec![0xff; 3],
        eth(0x0800, &[], &[0x45, 0, 0]),
        eth(0x0806, &[], &[0; 28]),
    ];
    let (got, stats) = decode_all(linktype::ETHERNET, &frames);
    assert!(got.is_empty());
    assert_eq!(stats.malformed, 3);
    assert_eq!(stats.non_ip, 1);
}

#[test]
fn mpls_label_stacks_and_pseudowires() {
    // Two labels (the second at the bottom of the stack), then IPv4.
    let mut two = vec![0x00, 0x01, 0x00, 0x40, 0x00, 0x02, 0x01, 0x40];
    two.extend(ipv4_tcp(b"mpls"));
    let s = one(linktype::ETHERNET, eth(0x8847, &[(0x8100, 5)], &two));
    assert_eq!(
        (s.0.as_str(), s.4.clone(), s.5.as_slice()),
        ("10.0.0.1", vec![5], &b"mpls"[..])
    );
    // One label, IPv6 behind it.
    let mut v6 = vec![0x00, 0x01, 0x01, 0x40];
    v6.extend(ipv6_tcp(b"six"));
    assert_eq!(one(linktype::ETHERNET, eth(0x8847, &[], &v6)).5, b"six");
    // An Ethernet pseudowire: label, control word, a tagged inner frame.
    let mut pw = vec![0x00, 0x01, 0x01, 0x40, 0, 0, 0, 0];
    pw.extend(eth(0x0800, &[(0x8100, 9)], &ipv4_tcp(b"pw")));
    let s = one(linktype::ETHERNET, eth(0x8848, &[], &pw));
    assert_eq!((s.4.clone(), s.5.as_slice()), (vec![9], &b"pw"[..]));
    // A stack that never ends, and one cut short.
    let (got, stats) = decode_all(
        linktype::ETHERNET,
        &[eth(0x8847, &[], &[0, 1, 0, 64].repeat(9))],
    );
    assert!(got.is_empty());
    assert_eq!(stats.malformed, 1);
    let (_, stats) = decode_all(linktype::ETHERNET, &[eth(0x8847, &[], &[0, 1])]);
    assert_eq!(stats.malformed, 1);
    // Pseudowires inside pseudowires stop at the encapsulation limit.
    let mut nested = eth(0x0800, &[], &ipv4_tcp(b"deep"));
    for _ in 0..6 {
        let mut inner = vec![0x00, 0x01, 0x01, 0x40, 0, 0, 0, 0];
        inner.extend(nested);
        nested = eth(0x8847, &[], &inner);
    }
    let (got, stats) = decode_all(linktype::ETHERNET, &[nested]);
    assert!(got.is_empty());
    assert_eq!(stats.tunnel_too_deep, 1);
}

#[test]
fn pppoe_sessions() {
    let pppoe = |proto: &[u8], ip: &[u8]| {
        let mut v = vec![0x11, 0x00, 0x12, 0x34];
        v.extend_from_slice(&((proto.len() + ip.len()) as u16).to_be_bytes());
        v.extend_from_slice(proto);
        v.extend_from_slice(ip);
        v
    };
    let s = one(
        linktype::ETHERNET,
        eth(0x8864, &[], &pppoe(&[0x00, 0x21], &ipv4_tcp(b"ppp4"))),
    );
    assert_eq!((s.0.as_str(), s.5.as_slice()), ("10.0.0.1", &b"ppp4"[..]));
    assert_eq!(
        one(
            linktype::ETHERNET,
            eth(0x8864, &[], &pppoe(&[0x00, 0x57], &ipv6_tcp(b"ppp6")))
        )
        .5,
        b"ppp6"
    );
    // A compressed (one-byte) protocol field.
    assert_eq!(
        one(
            linktype::ETHERNET,
            eth(0x8864, &[], &pppoe(&[0x21], &ipv4_tcp(b"pfc")))
        )
        .5,
        b"pfc"
    );
    // LCP, discovery and a truncated header carry no IP.
    let (got, stats) = decode_all(
        linktype::ETHERNET,
        &[
            eth(0x8864, &[], &pppoe(&[0xc0, 0x21], &[1, 1, 0, 4])),
            eth(0x8863, &[], &[0x11, 0x09, 0, 0, 0, 0]),
            eth(0x8864, &[], &[0x11, 0x00, 0x12]),
        ],
    );
    assert!(got.is_empty());
    assert_eq!((stats.non_ip, stats.malformed), (2, 1));
}

/// The checksum verdict decode hands on, and whether it accepts the payload.
fn verdict(frame: &[u8]) -> Option<(Checksum, bool)> {
    let mut d = Decoder::new(linktype::ETHERNET);
    let mut got = None;
    d.decode(0, frame, &mut |p| {
        got = Some(match p {
            Packet::Tcp(s) => (s.checksum, s.checksum.accepts(s.payload)),
            Packet::Udp(u) => (u.checksum, u.checksum.accepts(u.payload)),
        })
    });
    got
}

#[test]
fn checksums_are_summed_in_decode_and_completed_with_the_payload() {
    let ip = ipv4_tcp(b"NTLMSSP\0 decoy");
    let good = eth(0x0800, &[], &ip);
    assert!(matches!(verdict(&good), Some((Checksum::Pending(_), true))));
    let ip6 = ipv6_tcp(b"SYN data");
    assert!(matches!(
        verdict(&eth(0x86dd, &[], &ip6)),
        Some((Checksum::Pending(_), true))
    ));
    // One payload byte changed on the way: the TCP checksum no longer holds.
    let mut bad_payload = good.clone();
    let last = bad_payload.len() - 1;
    bad_payload[last] ^= 0x20;
    assert!(matches!(
        verdict(&bad_payload),
        Some((Checksum::Pending(_), false))
    ));
    // The TCP checksum field itself wrong.
    let mut bad_tcp = good.clone();
    bad_tcp[14 + 20 + 16] ^= 0xff;
    assert_eq!(verdict(&bad_tcp).map(|v| v.1), Some(false));
    // A bad IPv4 header checksum condemns the segment whatever its own.
    let mut bad_ip = good.clone();
    bad_ip[14 + 10] ^= 0x01;
    assert_eq!(verdict(&bad_ip), Some((Checksum::Bad, false)));
    // UDP: zero means no checksum over IPv4.
    let mut udp = Vec::new();
    PacketBuilder::ipv4([10, 0, 0, 5], [10, 0, 0, 255], 64)
        .udp(137, 137)
        .write(&mut udp, b"nbns")
        .unwrap_or_default();
    let udp_frame = eth(0x0800, &[], &udp);
    assert!(matches!(
        verdict(&udp_frame),
        Some((Checksum::Pending(_), true))
    ));
    let mut no_sum = udp_frame.clone();
    no_sum[14 + 20 + 6..14 + 20 + 8].copy_from_slice(&[0, 0]);
    assert_eq!(verdict(&no_sum), Some((Checksum::Unchecked, true)));
    let mut wrong = udp_frame;
    wrong[14 + 20 + 6] ^= 0x10;
    assert_eq!(verdict(&wrong).map(|v| v.1), Some(false));
}

#[test]
fn a_fragment_with_a_bad_header_checksum_is_dropped_unless_checksums_are_ignored() {
    let packet = ipv4_tcp(&[b'x'; 64]);
    let mut frags = fragment_v4(&packet, 32);
    frags[1][14 + 10] ^= 0x01;
    let run = |mode: checksum::Mode| {
        let mut d = Decoder::new(linktype::ETHERNET);
        d.set_checksum_mode(mode);
        let mut n = 0;
        for f in &frags {
            d.decode(0, f, &mut |_| n += 1);
        }
        (n, d.stats.bad_fragment_checksum)
    };
    assert_eq!(run(checksum::Mode::Auto), (0, 1));
    assert_eq!(run(checksum::Mode::Verify), (0, 1));
    assert_eq!(run(checksum::Mode::Ignore), (1, 0));
}

/// Whether each frame's packet was *plain* (see `Decoder::decode_placed`).
fn placed(frames: &[Vec<u8>]) -> Vec<bool> {
    let mut d = Decoder::new(linktype::ETHERNET);
    let mut out = Vec::new();
    for (i, f) in frames.iter().enumerate() {
        d.decode_placed(i as i64, f, &mut |_, plain| out.push(plain));
    }
    out
}

#[test]
fn a_packet_is_plain_only_where_a_kernels_flow_hash_saw_its_flow() {
    // Plain IPv4, tagged or not.
    let plain = [
        eth(0x0800, &[], &ipv4_tcp(b"a")),
        eth(0x0800, &[(0x8100, 7)], &ipv4_tcp(b"b")),
    ];
    assert_eq!(placed(&plain), [true, true]);
    // IPv6 never: another segment of its connection may come as fragments,
    // which the kernel hashes without their ports.
    assert_eq!(placed(&[eth(0x86dd, &[], &ipv6_tcp(b""))]), [false]);
    // Out of a GRE tunnel, behind an MPLS label, reassembled from fragments.
    let mut gre = vec![0x00, 0x00, 0x08, 0x00];
    gre.extend(ipv4_tcp(b"inner"));
    let mut ip = Vec::new();
    PacketBuilder::ipv4([192, 0, 2, 1], [192, 0, 2, 2], 64)
        .write(&mut ip, IpNumber::GRE, &gre)
        .unwrap_or_default();
    let mut mpls = vec![0x00, 0x01, 0x01, 0x40];
    mpls.extend(ipv4_tcp(b"mpls"));
    let payload: Vec<u8> = (0..200u8).collect();
    let mut carried = vec![eth(0x0800, &[], &ip), eth(0x8847, &[], &mpls)];
    carried.extend(fragment_v4(&ipv4_tcp(&payload), 64));
    assert_eq!(placed(&carried), [false, false, false]);
}
