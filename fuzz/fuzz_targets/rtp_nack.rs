//! The NACK -> RTX/resend path with arbitrary feedback: never panics, only
//! packets in the history are retransmitted, each at most the cap, RTX
//! carries the original sequence number and payload, and the counters add up.
#![no_main]

use std::collections::HashMap;
use std::time::{Duration, Instant};

use bytes::Bytes;
use libfuzzer_sys::fuzz_target;
use rts_rtp::history::{Config, Rtx, SendHistory, rtx_unwrap};
use rts_rtp::rtcp::{self, Feedback};
use rts_rtp::{Packet, Payload};

fuzz_target!(|data: &[u8]| {
    let Some((&ctl, rest)) = data.split_first() else {
        return;
    };
    let use_rtx = ctl & 1 != 0;
    let cap = ctl >> 5;
    let t0 = Instant::now();
    let mut h = SendHistory::new(Config {
        ssrc: 7,
        max_packets: 64,
        max_age: Duration::from_millis(500),
        max_retransmissions: cap,
        // Every NACK comes at the same instant: count against the cap only.
        min_resend_interval: Duration::ZERO,
        rtx: use_rtx.then_some(Rtx {
            ssrc: 8,
            payload_type: 97,
            initial_sequence: 65530,
        }),
    });
    let first = u16::from(ctl).wrapping_mul(257);
    let mut sent = HashMap::new();
    for i in 0..100u16 {
        let seq = first.wrapping_add(i);
        let p = Packet {
            sequence_number: seq,
            ssrc: 7,
            timestamp: u32::from(i),
            payload: Payload::with_prefix(&[0x7c, 0x05], Bytes::from(vec![i as u8; 10])),
            ..Default::default()
        };
        h.record(t0 + Duration::from_millis(u64::from(i) * 10), &p);
        sent.insert(seq, p);
    }
    let now = t0 + Duration::from_millis(1000);
    // Arbitrary RTCP, and the same bytes read as a list of sequence numbers.
    let mut nacks = Vec::new();
    if let Ok(fb) = rtcp::parse(&Bytes::copy_from_slice(rest), 0) {
        nacks.extend(fb.into_iter().filter_map(|f| match f {
            Feedback::Nack(n) => Some(n),
            _ => None,
        }));
    }
    let seqs: Vec<u16> = rest
        .chunks_exact(2)
        .map(|c| first.wrapping_add(u16::from_be_bytes([c[0], c[1]]) % 128))
        .collect();
    if let Some(n) = rts_rtp::nack::Generator::build(1, 7, &seqs) {
        nacks.push(n);
    }
    let mut count: HashMap<u16, u8> = HashMap::new();
    let mut polled = 0u64;
    for n in &nacks {
        h.on_nack(now, n);
        while let Some(p) = h.poll_transmit() {
            polled += 1;
            let (seq, payload) = if use_rtx {
                assert_eq!((p.ssrc, p.payload_type), (8, 97));
                rtx_unwrap(&p.payload.to_bytes()).unwrap()
            } else {
                (p.sequence_number, p.payload.to_bytes())
            };
            let orig = sent.get(&seq).expect("only recorded packets are resent");
            assert_eq!(payload, orig.payload.to_bytes());
            assert_eq!(p.timestamp, orig.timestamp);
            let c = count.entry(seq).or_default();
            *c += 1;
            assert!(*c <= cap);
        }
    }
    let s = h.stats();
    assert_eq!(s.retransmitted, polled);
    assert_eq!(s.requested, s.retransmitted + s.missing + s.capped);
});
