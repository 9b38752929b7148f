use super::*;
use proptest::prelude::*;

fn limits() -> StreamLimits {
    StreamLimits::default()
}

/// Feeds segments `(seq, bytes)` and returns the delivered stream, with gaps
/// written as `len` `?` bytes, after a final flush.
fn run(
    base_seq: u32,
    syn: bool,
    segs: &[(u32, Vec<u8>)],
    limits: StreamLimits,
) -> (Vec<u8>, StreamStats) {
    let mut s = Stream::default();
    let mut budget = Budget::new(64 << 20);
    let mut stats = StreamStats::default();
    let mut out = Vec::new();
    let mut sink = |c: Chunk<'_>| match c {
        Chunk::Data(d) => out.extend_from_slice(d),
        Chunk::Gap(n) => out.extend(std::iter::repeat_n(b'?', n as usize)),
        Chunk::Conflict(..) => {}
    };
    if syn {
        s.syn(base_seq.wrapping_sub(1));
    }
    for (seq, data) in segs {
        s.segment(*seq, data, &limits, &mut budget, &mut stats, &mut sink);
    }
    s.flush(&limits, &mut budget, &mut stats, &mut sink);
    assert_eq!(budget.used, 0);
    assert_eq!(s.held_bytes(), 0);
    (out, stats)
}

fn split(base: u32, data: &[u8], cuts: &[usize]) -> Vec<(u32, Vec<u8>)> {
    let mut pts: Vec<usize> = cuts.iter().map(|c| c % (data.len() + 1)).collect();
    pts.push(0);
    pts.push(data.len());
    pts.sort_unstable();
    pts.dedup();
    pts.windows(2)
        .map(|w| (base.wrapping_add(w[0] as u32), data[w[0]..w[1]].to_vec()))
        .collect()
}

proptest! {
    #[test]
    fn any_segmentation_order_and_duplication_gives_the_same_stream(
        data in proptest::collection::vec(any::<u8>(), 1..2000),
        cuts in proptest::collection::vec(any::<usize>(), 0..40),
        order in proptest::collection::vec(any::<u32>(), 40),
        dups in proptest::collection::vec(any::<usize>(), 0..10),
        base in any::<u32>(),
    ) {
        let mut segs = split(base, &data, &cuts);
        for d in dups {
            let s = segs[d % segs.len()].clone();
            segs.push(s);
        }
        // A permutation driven by `order`.
        let mut keyed: Vec<(u32, (u32, Vec<u8>))> =
            segs.into_iter().enumerate().map(|(i, s)| (order[i % order.len()].wrapping_mul(i as u32 + 1), s)).collect();
        keyed.sort_by_key(|k| k.0);
        let segs: Vec<(u32, Vec<u8>)> = keyed.into_iter().map(|k| k.1).collect();
        let (out, stats) = run(base, true, &segs, limits());
        prop_assert_eq!(out, data);
        prop_assert_eq!(stats.gaps, 0);
        prop_assert_eq!(stats.conflicting_overlaps, 0);
    }
}

#[test]
fn sequence_wraps_around() {
    let data: Vec<u8> = (0..=255u8).cycle().take(1000).collect();
    let base = u32::MAX - 300;
    let segs = split(base, &data, &[100, 299, 301, 302, 700]);
    let (out, _) = run(base, true, &segs, limits());
    assert_eq!(out, data);
    let mut rev = segs.clone();
    rev.reverse();
    assert_eq!(run(base, true, &rev, limits()).0, data);
}

#[test]
fn first_arrival_wins_and_conflicts_are_counted() {
    // Held out of order first, then an overlapping segment with other bytes.
    let segs = vec![
        (1010, b"KLMNO".to_vec()),
        (1005, b"fghijXYZ".to_vec()),
        (1000, b"abcde".to_vec()),
    ];
    let (out, stats) = run(1000, true, &segs, limits());
    assert_eq!(out, b"abcdefghijKLMNO");
    assert_eq!(stats.conflicting_overlaps, 1);
    // A retransmission of delivered bytes is dropped.
    let segs = vec![
        (1000, b"abc".to_vec()),
        (1000, b"XYZ".to_vec()),
        (1003, b"d".to_vec()),
    ];
    let (out, stats) = run(1000, true, &segs, limits());
    assert_eq!(out, b"abcd");
    assert_eq!(stats.retransmitted, 1);
}

#[test]
fn hole_is_reported_as_gap_at_flush() {
    let segs = vec![(1000, b"abc".to_vec()), (1006, b"ghi".to_vec())];
    let (out, stats) = run(1000, true, &segs, limits());
    assert_eq!(out, b"abc???ghi");
    assert_eq!((stats.gaps, stats.gap_bytes), (1, 3));
}

#[test]
fn peer_ack_past_a_hole_declares_the_gap() {
    let mut st = StreamStats::default();
    let mut s = Stream::default();
    let mut budget = Budget::new(1 << 20);
    let mut out = Vec::new();
    let mut sink = |c: Chunk<'_>| match c {
        Chunk::Data(d) => out.extend_from_slice(d),
        Chunk::Gap(n) => out.extend(std::iter::repeat_n(b'?', n as usize)),
        Chunk::Conflict(..) => {}
    };
    s.syn(999);
    s.segment(1000, b"ab", &limits(), &mut budget, &mut st, &mut sink);
    s.segment(1004, b"ef", &limits(), &mut budget, &mut st, &mut sink);
    // An ack inside the hole proves nothing.
    s.peer_ack(1003, &limits(), &mut budget, &mut st, &mut sink);
    assert_eq!(s.delivered(), 2);
    s.peer_ack(1006, &limits(), &mut budget, &mut st, &mut sink);
    assert_eq!(s.delivered(), 6);
    let _ = sink;
    assert_eq!(out, b"ab??ef");
}

#[test]
fn overflow_gives_up_the_hole_and_goes_on() {
    let lim = StreamLimits {
        depth: 1 << 20,
        max_ooo_bytes: 10,
        max_ooo_segments: 4,
        ..limits()
    };
    let segs = vec![
        (1000, b"ab".to_vec()),
        (1004, b"efghijkl".to_vec()),
        (1012, b"mnopqr".to_vec()),
    ];
    let (out, stats) = run(1000, true, &segs, lim);
    assert_eq!(out, b"ab??efghijklmnopqr");
    assert_eq!(stats.ooo_overflows, 1);
    assert_eq!(stats.gaps, 1);
}

#[test]
fn global_budget_caps_all_streams() {
    let mut st = StreamStats::default();
    let mut budget = Budget::new(8);
    let mut a = Stream::default();
    let mut b = Stream::default();
    let mut sink = |_c: Chunk<'_>| {};
    a.syn(0);
    b.syn(0);
    a.segment(10, &[1; 6], &limits(), &mut budget, &mut st, &mut sink);
    assert_eq!(budget.used, 6);
    b.segment(10, &[2; 6], &limits(), &mut budget, &mut st, &mut sink);
    assert!(budget.used <= 8);
    assert_eq!(st.ooo_overflows, 1);
    a.discard(&mut budget);
    assert_eq!(budget.used, 0);
}

#[test]
fn depth_limit_stops_delivery() {
    let lim = StreamLimits {
        depth: 5,
        ..limits()
    };
    let segs = vec![
        (1000, b"abc".to_vec()),
        (1003, b"defgh".to_vec()),
        (1008, b"ij".to_vec()),
    ];
    let (out, stats) = run(1000, true, &segs, lim);
    assert_eq!(out, b"abcde");
    assert_eq!(stats.beyond_depth, 5);
}

#[test]
fn midstream_pickup_starts_at_first_seen_byte() {
    let segs = vec![
        (5000, b"xyz".to_vec()),
        (4990, b"old".to_vec()),
        (5003, b"!".to_vec()),
    ];
    let (out, stats) = run(5000, false, &segs, limits());
    assert_eq!(out, b"xyz!");
    assert_eq!(stats.retransmitted, 1);
}

#[test]
fn fin_marks_the_end() {
    let mut st = StreamStats::default();
    let mut s = Stream::default();
    let mut budget = Budget::new(1 << 20);
    let mut sink = |_c: Chunk<'_>| {};
    s.syn(99);
    s.segment(100, b"abc", &limits(), &mut budget, &mut st, &mut sink);
    s.fin(104);
    assert!(!s.finished());
    s.segment(103, b"d", &limits(), &mut budget, &mut st, &mut sink);
    assert!(s.finished());
}

/// A message whose first byte is held back while the rest comes as
/// hundreds of one-byte segments, or one sent in reversed one-byte
/// segments: adjacent held bytes form one run, so the cap on held runs
/// (256) is never reached and the whole message is delivered.
#[test]
fn adjacent_held_bytes_merge_into_runs() {
    let msg: Vec<u8> = (0..2000u32).map(|i| (i % 251) as u8).collect();
    let base = 7_000;
    let mut first_last: Vec<(u32, Vec<u8>)> = (1..msg.len())
        .map(|i| (base + i as u32, vec![msg[i]]))
        .collect();
    first_last.push((base, vec![msg[0]]));
    let (out, stats) = run(base, true, &first_last, limits());
    assert_eq!(out, msg);
    assert_eq!((stats.ooo_overflows, stats.gaps), (0, 0));

    let reversed: Vec<(u32, Vec<u8>)> = (0..msg.len())
        .rev()
        .map(|i| (base + i as u32, vec![msg[i]]))
        .collect();
    let (out, stats) = run(base, true, &reversed, limits());
    assert_eq!(out, msg);
    assert_eq!((stats.ooo_overflows, stats.gaps), (0, 0));

    // 300 separate holes still meet the cap on runs.
    let holes: Vec<(u32, Vec<u8>)> = (1..=300u32).map(|i| (base + 2 * i, vec![1])).collect();
    let (_, stats) = run(base, true, &holes, limits());
    assert!(stats.ooo_overflows > 0);
}

/// What [`with_acks`] returns: delivered bytes, conflicts, counters, bytes
/// kept at the end.
type Fed = (Vec<u8>, Vec<(u32, Vec<u8>)>, StreamStats, usize);

/// Feeds `(seq, bytes)` segments and peer acks (`bytes` empty: an ack of
/// `seq`) to a stream; returns the delivered bytes, the conflicts (offset,
/// other copy) and the counters.
fn with_acks(segs: &[(u32, &[u8])], lim: StreamLimits, budget: &mut Budget) -> Fed {
    let mut s = Stream::default();
    let mut st = StreamStats::default();
    let mut out = Vec::new();
    let mut conflicts = Vec::new();
    let mut sink = |c: Chunk<'_>| match c {
        Chunk::Data(d) => out.extend_from_slice(d),
        Chunk::Gap(n) => out.extend(std::iter::repeat_n(b'?', n as usize)),
        Chunk::Conflict(off, d) => conflicts.push((off, d.to_vec())),
    };
    s.syn(999);
    for (seq, data) in segs {
        if data.is_empty() {
            s.peer_ack(*seq, &lim, budget, &mut st, &mut sink);
        } else {
            s.segment(*seq, data, &lim, budget, &mut st, &mut sink);
        }
    }
    let kept = s.retained_bytes();
    s.discard(budget);
    assert_eq!((budget.used, budget.retained), (0, 0));
    (out, conflicts, st, kept)
}

#[test]
fn a_retransmission_that_differs_from_delivered_bytes_is_handed_on() {
    let mut budget = Budget::new(1 << 20);
    let segs: [(u32, &[u8]); 4] = [
        (1000, b"abcdef"),
        (1002, b"cd"),   // the same bytes again: a plain retransmission
        (1004, b"XYgh"), // differs in "ef", adds "gh"
        (1000, b"ab"),
    ];
    let (out, conflicts, st, kept) = with_acks(&segs, limits(), &mut budget);
    assert_eq!(out, b"abcdefgh");
    assert_eq!(conflicts, [(4, b"XYgh".to_vec())]);
    assert_eq!((st.conflicting_overlaps, st.retransmitted), (1, 2));
    assert_eq!(kept, 8);
}

#[test]
fn acknowledged_bytes_are_no_longer_kept_or_compared() {
    let mut budget = Budget::new(1 << 20);
    let segs: [(u32, &[u8]); 3] = [(1000, b"abcdef"), (1004, b""), (1000, b"XXXX")];
    let (out, conflicts, st, kept) = with_acks(&segs, limits(), &mut budget);
    assert_eq!(out, b"abcdef");
    assert!(conflicts.is_empty());
    assert_eq!((st.conflicting_overlaps, st.retransmitted), (0, 1));
    assert_eq!(kept, 2);
}

#[test]
fn kept_bytes_are_capped_per_stream_and_over_all_streams() {
    let lim = StreamLimits {
        retain: 4,
        ..limits()
    };
    let mut budget = Budget::new(1 << 20);
    let segs: [(u32, &[u8]); 3] = [(1000, b"abcdef"), (1006, b"gh"), (1000, b"Xb")];
    // Only "efgh" is kept: the differing copy of "ab" cannot be compared.
    let (out, conflicts, st, kept) = with_acks(&segs, lim, &mut budget);
    assert_eq!(out, b"abcdefgh");
    assert!(conflicts.is_empty());
    assert_eq!((kept, st.unretained_bytes), (4, 4));
    // The budget over all streams leaves room for 3 bytes.
    let mut small = Budget::new(1 << 20);
    small.retain_cap = 3;
    let segs: [(u32, &[u8]); 2] = [(1000, b"abcdef"), (1004, b"eX")];
    let (_, conflicts, st, kept) = with_acks(&segs, limits(), &mut small);
    assert_eq!(conflicts, [(4, b"eX".to_vec())]);
    assert_eq!((kept, st.unretained_bytes), (3, 3));
}

#[test]
fn a_conflict_with_held_bytes_is_handed_on_too() {
    let mut budget = Budget::new(1 << 20);
    let segs: [(u32, &[u8]); 3] = [(1004, b"efgh"), (1004, b"eXgh"), (1000, b"abcd")];
    let (out, conflicts, st, _) = with_acks(&segs, limits(), &mut budget);
    assert_eq!(out, b"abcdefgh");
    assert_eq!(conflicts, [(4, b"eXgh".to_vec())]);
    assert_eq!(st.conflicting_overlaps, 1);
}

proptest! {
    /// Against a bitmap model (as smoltcp tests its assembler): segments
    /// covering any subset of a stream, overlapping with the same bytes,
    /// in any order, come out as the stream's bytes where some segment
    /// brought them and as gaps where none did, up to the last byte
    /// received; nothing is held after the flush.
    #[test]
    fn holes_are_gaps_and_everything_else_is_delivered_once(
        data in proptest::collection::vec(any::<u8>(), 1..1500),
        spans in proptest::collection::vec((any::<usize>(), 1usize..200), 1..30),
        order in proptest::collection::vec(any::<u32>(), 30),
        base in any::<u32>(),
    ) {
        let n = data.len();
        let mut covered = vec![false; n];
        let mut segs: Vec<(u32, Vec<u8>)> = spans
            .iter()
            .map(|&(start, len)| {
                let s = start % n;
                let e = (s + len).min(n);
                covered[s..e].iter_mut().for_each(|c| *c = true);
                (base.wrapping_add(s as u32), data[s..e].to_vec())
            })
            .collect();
        for (i, k) in order.iter().enumerate().take(segs.len()) {
            let j = *k as usize % segs.len();
            segs.swap(i, j);
        }
        let last = covered.iter().rposition(|c| *c).map_or(0, |p| p + 1);
        let expected: Vec<u8> = (0..last)
            .map(|i| if covered[i] { data[i] } else { b'?' })
            .collect();
        let roomy = StreamLimits {
            max_ooo_bytes: 1 << 20,
            max_ooo_segments: 1 << 10,
            ..limits()
        };
        let (out, stats) = run(base, true, &segs, roomy);
        // A byte of the stream that is '?' itself is told apart by the model.
        prop_assert_eq!(out.len(), expected.len());
        for (i, (o, e)) in out.iter().zip(&expected).enumerate() {
            if covered[i] {
                prop_assert_eq!(o, e, "byte {}", i);
            } else {
                prop_assert_eq!(*o, b'?', "hole at byte {}", i);
            }
        }
        prop_assert_eq!(stats.conflicting_overlaps, 0);
        prop_assert_eq!(stats.ooo_overflows, 0);
    }
}
