//! Arbitrary RTP payloads into the H.264 depacketizer: never panics, every
//! access unit is within the size limit and correctly flagged. Then the
//! same bytes as an AVCC access unit: packetize -> depacketize gives the
//! access unit back (AUD/filler removed). And arbitrary sequence numbers
//! and arrival times through the reorder buffer: packets come out in
//! strictly increasing order, each at most once, and the counters add up.
#![no_main]

use bytes::Bytes;
use libfuzzer_sys::fuzz_target;
use rts_rtp::h264::{self, Event, Format};

const MAX: usize = 1 << 16;

fuzz_target!(|data: &[u8]| {
    // 1. Arbitrary packets: [len, flags, payload...]*
    let mut d = h264::Depacketizer::new(MAX);
    let mut rest = data;
    let mut ts = 0u32;
    let mut emitted = 0u64;
    while let [len, flags, tail @ ..] = rest {
        let n = usize::from(*len).min(tail.len());
        let (payload, next) = tail.split_at(n);
        rest = next;
        if flags & 0x01 != 0 {
            d.lost();
        }
        if flags & 0x02 != 0 {
            ts = ts.wrapping_add(3000);
        }
        d.push(flags & 0x04 != 0, ts, &Bytes::copy_from_slice(payload));
        while let Some(e) = d.poll_event() {
            if let Event::AccessUnit(au) = e {
                emitted += 1;
                let total: usize = au.nals.iter().map(|n| n.len()).sum();
                assert!(total <= MAX);
                assert!(au.nals.iter().all(|n| !n.is_empty()));
                assert_eq!(au.keyframe, au.nals.iter().any(|n| n[0] & 0x1f == 5));
            }
        }
    }
    assert_eq!(d.stats().access_units, emitted);

    // 3. The reorder buffer: [seq_hi, seq_lo, advance_ms]*
    {
        use rts_rtp::jitter::{Output, ReorderBuffer};
        use std::time::{Duration, Instant};
        let t0 = Instant::now();
        let mut now = t0;
        let mut jb = ReorderBuffer::new(16, Duration::from_millis(30));
        let mut last: Option<u16> = None;
        let (mut out, mut lost, mut pushed) = (0u64, 0u64, 0u64);
        let mut check = |o: Output<u16>, last: &mut Option<u16>| match o {
            Output::Packet(s) => {
                if let Some(l) = *last {
                    assert!(rts_rtp::packet::seq_newer(s, l), "{s} after {l}");
                }
                *last = Some(s);
                out += 1;
            }
            Output::Lost(n) => {
                assert!(n > 0);
                lost += n;
            }
        };
        for c in data.chunks_exact(3) {
            let seq = u16::from_be_bytes([c[0] & 0x01, c[1]]);
            now += Duration::from_millis(u64::from(c[2] % 20));
            jb.push(now, seq, seq);
            pushed += 1;
            while let Some(o) = jb.pop(now) {
                check(o, &mut last);
            }
            assert!(jb.len() <= 16);
        }
        while let Some(o) = jb.pop(now + Duration::from_secs(1)) {
            check(o, &mut last);
        }
        let st = jb.stats();
        assert!(jb.is_empty());
        assert_eq!(st.received, out);
        assert_eq!(st.received + st.duplicates + st.late, pushed);
        assert_eq!(st.lost, lost);
    }

    // 2. Round trip of a well-formed access unit built from the input.
    let Some((&mtu, body)) = data.split_first() else {
        return;
    };
    let mut au = Vec::new();
    for chunk in body.chunks(97) {
        let mut nal = chunk.to_vec();
        if nal.is_empty() {
            continue;
        }
        // Keep only types a mode-1 stream carries as NAL units (1..=23).
        nal[0] = (nal[0] & 0x60) | (nal[0] % 23 + 1);
        au.extend_from_slice(&(nal.len() as u32).to_be_bytes());
        au.extend_from_slice(&nal);
    }
    let mtu = 15 + usize::from(mtu) * 4;
    let mut pk = h264::Packetizer::new(h264::Config {
        mtu,
        ..Default::default()
    })
    .unwrap();
    let mut packets = Vec::new();
    let au = Bytes::from(au);
    pk.packetize(&au, Format::Avcc { length_size: 4 }, 0, &mut packets)
        .unwrap();
    let mut want = Vec::new();
    for n in rts_h264::nal::split(&au, Format::Avcc { length_size: 4 }).unwrap() {
        let n = n.unwrap().bytes().clone();
        if !matches!(n[0] & 0x1f, 9 | 12) {
            want.push(n)
        }
    }
    // An IDR with in-band SPS and PPS goes out with them first (STAP-A).
    let t = |n: &Bytes| n[0] & 0x1f;
    if want.iter().any(|n| t(n) == 5)
        && want.iter().any(|n| t(n) == 7)
        && want.iter().any(|n| t(n) == 8)
    {
        let mut v: Vec<Bytes> = want.iter().filter(|n| t(n) == 7).cloned().collect();
        v.extend(want.iter().filter(|n| t(n) == 8).cloned());
        v.extend(want.iter().filter(|n| t(n) != 7 && t(n) != 8).cloned());
        want = v;
    }
    let mut d = h264::Depacketizer::new(1 << 20);
    // Prime it with a keyframe so the AU under test is not dropped.
    d.push(
        true,
        1,
        &Bytes::from_static(&[0x78, 0, 2, 0x67, 1, 0, 2, 0x68, 1, 0, 2, 0x65, 1]),
    );
    for p in &packets {
        assert!(p.encoded_len(&rts_rtp::ext::Extensions::new()) <= mtu);
        d.push(p.marker, 2, &p.payload.to_bytes());
    }
    d.flush();
    let _ = d.poll_event();
    if want.is_empty() {
        assert!(packets.is_empty());
        return;
    }
    match d.poll_event() {
        Some(Event::AccessUnit(got)) => assert_eq!(got.nals, want),
        other => panic!("round trip failed: {other:?}"),
    }
});
