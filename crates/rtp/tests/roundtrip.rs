//! Packetize -> (lossy, duplicating, reordering network) -> reorder buffer
//! -> depacketize, over random access units.

use std::time::{Duration, Instant};

use bytes::{BufMut, Bytes, BytesMut};
use proptest::prelude::*;
use rts_rtp::ext::Extensions;
use rts_rtp::h264::{self, Event, Format};
use rts_rtp::jitter::{Output, ReorderBuffer};

const SPS: &[u8] = &[0x67, 0x42, 0xc0, 0x1e, 0xd9, 0x00, 0xa0, 0x47, 0xfe, 0xc8];
const PPS: &[u8] = &[0x68, 0xce, 0x3c, 0x80];

/// An access unit: NAL units (type, size, fill byte).
fn nal(kind: u8, size: usize, fill: u8) -> Bytes {
    let mut b = BytesMut::with_capacity(size.max(1));
    b.put_u8(0x60 | kind);
    b.put_bytes(fill, size.saturating_sub(1));
    b.freeze()
}

fn avcc(nals: &[Bytes]) -> Bytes {
    let mut b = BytesMut::new();
    for n in nals {
        b.put_u32(n.len() as u32);
        b.put_slice(n);
    }
    b.freeze()
}

/// What the receiver should get for an input AU: AUD/filler removed, and
/// for IDRs the SPS/PPS first.
fn expected(nals: &[Bytes]) -> Vec<Bytes> {
    let keep: Vec<Bytes> = nals
        .iter()
        .filter(|n| !matches!(n[0] & 0x1f, 9 | 12))
        .cloned()
        .collect();
    if keep.iter().any(|n| n[0] & 0x1f == 5) {
        let mut v = vec![Bytes::from_static(SPS), Bytes::from_static(PPS)];
        v.extend(keep);
        v
    } else {
        keep
    }
}

fn au_strategy(max_nal: usize) -> impl Strategy<Value = Vec<Bytes>> {
    prop::collection::vec(
        (
            prop::sample::select(vec![1u8, 1, 1, 5, 6, 9, 12]),
            1..max_nal,
            any::<u8>(),
        ),
        1..5,
    )
    .prop_map(|v| v.into_iter().map(|(k, s, f)| nal(k, s, f)).collect())
}

struct Net {
    rng: u64,
}

impl Net {
    fn next(&mut self) -> u64 {
        self.rng ^= self.rng << 13;
        self.rng ^= self.rng >> 7;
        self.rng ^= self.rng << 17;
        self.rng
    }
    fn chance(&mut self, percent: u64) -> bool {
        self.next() % 100 < percent
    }
}

struct Outcome {
    delivered: Vec<(u32, Vec<Bytes>)>,
    keyframe_requests: usize,
    lost_any: bool,
}

fn run(
    aus: &[Vec<Bytes>],
    mtu: usize,
    loss: u64,
    dup: u64,
    reorder: u64,
    seed: u64,
) -> (Outcome, Vec<(u32, Vec<Bytes>)>) {
    let mut pk = h264::Packetizer::new(h264::Config {
        mtu,
        ssrc: 42,
        initial_sequence: (seed as u16).wrapping_mul(7919),
        ..Default::default()
    })
    .unwrap();
    pk.set_parameter_sets(vec![Bytes::from_static(SPS)], vec![Bytes::from_static(PPS)]);
    let mut wire = Vec::new();
    let mut packets = Vec::new();
    let mut want = Vec::new();
    for (i, au) in aus.iter().enumerate() {
        let ts = (i as u32) * 3000;
        packets.clear();
        pk.packetize(&avcc(au), Format::Avcc { length_size: 4 }, ts, &mut packets)
            .unwrap();
        for p in &packets {
            assert!(p.encoded_len(&Extensions::new()) <= mtu);
            let mut b = BytesMut::new();
            p.encode(&Extensions::new(), &mut b);
            wire.push(b.freeze());
        }
        let e = expected(au);
        if !e.is_empty() {
            want.push((ts, e));
        }
    }
    // The network: loss, duplication, local reordering.
    let mut net = Net { rng: seed | 1 };
    let mut sent = Vec::new();
    let mut lost_any = false;
    for d in wire {
        if net.chance(loss) {
            lost_any = true;
            continue;
        }
        if net.chance(dup) {
            sent.push(d.clone());
        }
        sent.push(d);
    }
    // The first packet defines where the stream starts: keep it first.
    for i in 9..sent.len() {
        if net.chance(reorder) {
            let j = i - 1 - (net.next() as usize % i.min(8));
            sent.swap(i, j);
        }
    }
    let t0 = Instant::now();
    let mut jb = ReorderBuffer::new(4096, Duration::from_millis(100));
    let mut dp = h264::Depacketizer::new(64 << 20);
    let mut now = t0;
    let feed = |jb: &mut ReorderBuffer<rts_rtp::rtc_rtp::packet::Packet>,
                dp: &mut h264::Depacketizer,
                now: Instant| {
        while let Some(o) = jb.pop(now) {
            match o {
                Output::Packet(p) => dp.push(p.header.marker, p.header.timestamp, &p.payload),
                Output::Lost(_) => dp.lost(),
            }
        }
    };
    for d in &sent {
        now += Duration::from_micros(100);
        let p = rts_rtp::packet::parse(d).unwrap();
        jb.push(now, p.header.sequence_number, p);
        feed(&mut jb, &mut dp, now);
    }
    feed(&mut jb, &mut dp, now + Duration::from_secs(1));
    dp.flush();
    let mut delivered = Vec::new();
    let mut keyframe_requests = 0;
    while let Some(e) = dp.poll_event() {
        match e {
            Event::AccessUnit(au) => delivered.push((au.timestamp, au.nals)),
            Event::KeyframeNeeded => keyframe_requests += 1,
        }
    }
    (
        Outcome {
            delivered,
            keyframe_requests,
            lost_any,
        },
        want,
    )
}

fn check(
    aus: Vec<Vec<Bytes>>,
    mtu: usize,
    loss: u64,
    dup: u64,
    reorder: u64,
    seed: u64,
) -> Result<(), TestCaseError> {
    // Start with an IDR so the receiver can decode from the beginning.
    let mut aus = aus;
    aus.insert(0, vec![nal(5, 3000, 1)]);
    let (out, want) = run(&aus, mtu, loss, dup, reorder, seed);
    if loss == 0 {
        prop_assert_eq!(&out.delivered, &want);
        prop_assert_eq!(out.keyframe_requests, 0);
    } else {
        // Never a damaged access unit: everything delivered is exact.
        let mut it2 = want.iter();
        let bad = out.delivered.iter().any(|d| !it2.any(|w| w == d));
        if bad && std::env::var("RTP_DEBUG").is_ok() {
            let show = |v: &Vec<(u32, Vec<Bytes>)>| {
                v.iter()
                    .map(|(t, n)| {
                        format!(
                            "{t}:{:?}",
                            n.iter().map(|x| (x[0], x.len())).collect::<Vec<_>>()
                        )
                    })
                    .collect::<Vec<_>>()
            };
            eprintln!(
                "mtu {mtu} seed {seed}\nwant {:?}\ngot  {:?}",
                show(&want),
                show(&out.delivered)
            );
        }
        let mut it = want.iter();
        for d in &out.delivered {
            prop_assert!(
                it.any(|w| w == d),
                "delivered AU at {} is not an input AU (or out of order)",
                d.0
            );
        }
        if out.delivered.len() < want.len() {
            prop_assert!(out.lost_any);
            // A lost access unit followed by a non-IDR one (which cannot be
            // decoded then) must ask for a keyframe; one followed by an IDR
            // need not.
            let is_key = |w: &(u32, Vec<Bytes>)| w.1.iter().any(|n| n[0] & 0x1f == 5);
            let needs_key = want
                .windows(2)
                .any(|p| !out.delivered.contains(&p[0]) && !is_key(&p[1]));
            prop_assert!(out.keyframe_requests > 0 || !needs_key);
        }
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(48))]

    #[test]
    fn clean_network_round_trip(aus in prop::collection::vec(au_strategy(5000), 1..20), mtu in 20usize..1500, seed: u64) {
        check(aus, mtu, 0, 0, 0, seed)?;
    }

    #[test]
    fn duplicates_and_reordering_lose_nothing(aus in prop::collection::vec(au_strategy(5000), 1..20), mtu in 100usize..1500, seed: u64) {
        check(aus, mtu, 0, 10, 20, seed)?;
    }

    #[test]
    fn loss_never_yields_a_damaged_access_unit(aus in prop::collection::vec(au_strategy(5000), 1..20), mtu in 100usize..1500, loss in 1u64..20, seed: u64) {
        check(aus, mtu, loss, 5, 10, seed)?;
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(4))]

    #[test]
    fn multi_megabyte_idrs(size in (2usize << 20)..(5usize << 20), seed: u64) {
        let aus = vec![vec![nal(6, 40, 3), nal(5, size, 9)], vec![nal(1, 20_000, 4)], vec![nal(5, size / 2, 7)]];
        check(aus.clone(), 1200, 0, 2, 5, seed)?;
        check(aus, 1200, 1, 0, 0, seed)?;
    }
}

#[test]
fn annexb_and_avcc_give_the_same_packets() {
    let au = [nal(9, 2, 0), nal(6, 30, 1), nal(5, 5000, 2)];
    let mut annexb = BytesMut::new();
    for n in &au {
        annexb.put_slice(&[0, 0, 0, 1]);
        annexb.put_slice(n);
    }
    let mk = || {
        let mut p = h264::Packetizer::new(h264::Config::default()).unwrap();
        p.set_parameter_sets(vec![Bytes::from_static(SPS)], vec![Bytes::from_static(PPS)]);
        p
    };
    let (mut a, mut b) = (Vec::new(), Vec::new());
    mk().packetize(&avcc(&au), Format::Avcc { length_size: 4 }, 0, &mut a)
        .unwrap();
    mk().packetize(&annexb.freeze(), Format::AnnexB, 0, &mut b)
        .unwrap();
    assert_eq!(a, b);
    assert_eq!(a.len(), 2 + 5);
}
