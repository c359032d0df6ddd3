//! NACK/RTX recovery across a simulated lossy link, on virtual time: a
//! two-endpoint harness (sender with packetizer + send history, receiver
//! with reorder buffer + NACK generator + depacketizer) in the style of
//! str0m's tests/common.rs and quinn-proto's tests/util.rs.

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use bytes::{BufMut, Bytes, BytesMut};
use rts_rtp::ext::Extensions;
use rts_rtp::h264::{self, Event, Format};
use rts_rtp::history::{self, Rtx, SendHistory, rtx_unwrap};
use rts_rtp::jitter::{Output, ReorderBuffer};
use rts_rtp::nack;
use rts_rtp::rtc_rtp::packet::Packet as RtpPacket;
use rts_rtp::rtcp::{self, Feedback};

const MEDIA_SSRC: u32 = 0x1111;
const RTX_SSRC: u32 = 0x2222;
const RECEIVER_SSRC: u32 = 0x3333;

/// A one-way link with fixed delay and random loss.
struct Link {
    delay: Duration,
    loss_percent: u64,
    rng: u64,
    queue: VecDeque<(Instant, Bytes)>,
    dropped: u64,
}

impl Link {
    fn new(delay_ms: u64, loss_percent: u64, seed: u64) -> Self {
        Self {
            delay: Duration::from_millis(delay_ms),
            loss_percent,
            rng: seed | 1,
            queue: VecDeque::new(),
            dropped: 0,
        }
    }
    fn send(&mut self, now: Instant, d: Bytes) {
        self.rng ^= self.rng << 13;
        self.rng ^= self.rng >> 7;
        self.rng ^= self.rng << 17;
        if self.rng % 100 < self.loss_percent {
            self.dropped += 1;
            return;
        }
        self.queue.push_back((now + self.delay, d));
    }
    fn recv(&mut self, now: Instant) -> Option<Bytes> {
        if self.queue.front().is_some_and(|(t, _)| *t <= now) {
            return self.queue.pop_front().map(|(_, d)| d);
        }
        None
    }
}

fn access_unit(i: u32) -> Bytes {
    // IDR every 30 frames (~60 KB), P frames ~6 KB.
    let (kind, size) = if i.is_multiple_of(30) {
        (0x65u8, 60_000usize)
    } else {
        (0x41, 6_000)
    };
    let mut b = BytesMut::new();
    b.put_u32(size as u32);
    b.put_u8(kind);
    b.put_bytes(i as u8, size - 1);
    b.freeze()
}

struct Result {
    delivered: Vec<u32>,
    keyframe_requests: u64,
    stats: history::Stats,
    dropped: u64,
}

fn simulate(rtx: bool, loss_percent: u64, seed: u64) -> Result {
    let t0 = Instant::now();
    let mut pk = h264::Packetizer::new(h264::Config {
        ssrc: MEDIA_SSRC,
        initial_sequence: 65_000,
        ..Default::default()
    })
    .unwrap();
    pk.set_parameter_sets(
        vec![Bytes::from_static(&[0x67, 0x42, 0xc0, 0x1e])],
        vec![Bytes::from_static(&[0x68, 0xce, 0x3c, 0x80])],
    );
    let mut hist = SendHistory::new(history::Config {
        ssrc: MEDIA_SSRC,
        max_packets: 4096,
        max_age: Duration::from_secs(2),
        max_retransmissions: 10,
        min_resend_interval: Duration::from_millis(10),
        rtx: rtx.then_some(Rtx {
            ssrc: RTX_SSRC,
            payload_type: 97,
            initial_sequence: 7,
        }),
    });
    let mut forward = Link::new(25, loss_percent, seed);
    let mut backward = Link::new(25, loss_percent, seed.wrapping_mul(31));
    let mut jb: ReorderBuffer<RtpPacket> = ReorderBuffer::new(8192, Duration::from_millis(600));
    let mut nackgen = nack::Generator::new(nack::Config {
        retry_interval: Duration::from_millis(60),
        max_requests: 10,
        ..Default::default()
    });
    let mut dp = h264::Depacketizer::new(h264::Depacketizer::DEFAULT_MAX_ACCESS_UNIT);
    let mut delivered = Vec::new();
    let mut keyframe_requests = 0;
    let mut packets = Vec::new();
    let encode = |p: &rts_rtp::Packet| {
        let mut b = BytesMut::new();
        p.encode(&Extensions::new(), &mut b);
        b.freeze()
    };
    let frames = 90u32;
    let end = t0 + Duration::from_millis(u64::from(frames) * 33 + 2000);
    let mut now = t0;
    while now < end {
        // Sender: one access unit every 33 ms.
        let ms = now.duration_since(t0).as_millis() as u32;
        if ms.is_multiple_of(33) && ms / 33 < frames {
            let i = ms / 33;
            packets.clear();
            pk.packetize(
                &access_unit(i),
                Format::Avcc { length_size: 4 },
                i * 3000,
                &mut packets,
            )
            .unwrap();
            for p in &packets {
                hist.record(now, p);
                forward.send(now, encode(p));
            }
        }
        while let Some(d) = backward.recv(now) {
            for fb in rtcp::parse(&d, 0).unwrap() {
                if let Feedback::Nack(n) = fb {
                    hist.on_nack(now, &n);
                }
            }
        }
        while let Some(p) = hist.poll_transmit() {
            forward.send(now, encode(&p));
        }
        // Receiver.
        while let Some(d) = forward.recv(now) {
            let mut p = rts_rtp::packet::parse(&d).unwrap();
            if p.header.ssrc == RTX_SSRC {
                assert!(rtx, "RTX without negotiation");
                assert_eq!(p.header.payload_type, 97);
                let (osn, payload) = rtx_unwrap(&p.payload).unwrap();
                p.header.ssrc = MEDIA_SSRC;
                p.header.sequence_number = osn;
                p.payload = payload;
            }
            assert_eq!(p.header.ssrc, MEDIA_SSRC);
            nackgen.on_packet(p.header.sequence_number);
            jb.push(now, p.header.sequence_number, p);
        }
        while let Some(o) = jb.pop(now) {
            match o {
                Output::Packet(p) => dp.push(p.header.marker, p.header.timestamp, &p.payload),
                Output::Lost(_) => dp.lost(),
            }
        }
        while let Some(e) = dp.poll_event() {
            match e {
                Event::AccessUnit(au) => {
                    assert_eq!(
                        au.to_avcc().len(),
                        access_unit(au.timestamp / 3000).len() + if au.keyframe { 16 } else { 0 }
                    );
                    delivered.push(au.timestamp / 3000);
                }
                Event::KeyframeNeeded => keyframe_requests += 1,
            }
        }
        let seqs = nackgen.poll(now);
        if !seqs.is_empty() {
            let d = rtcp::build(&[rtcp::nack(RECEIVER_SSRC, MEDIA_SSRC, &seqs)]).unwrap();
            backward.send(now, d);
        }
        now += Duration::from_millis(1);
    }
    dp.flush();
    while let Some(e) = dp.poll_event() {
        if let Event::AccessUnit(au) = e {
            delivered.push(au.timestamp / 3000);
        }
    }
    Result {
        delivered,
        keyframe_requests,
        stats: hist.stats(),
        dropped: forward.dropped + backward.dropped,
    }
}

#[test]
fn rtx_recovers_every_frame_at_10_percent_loss() {
    let r = simulate(true, 10, 0xfeed);
    assert!(r.dropped > 40, "the link lost {} packets", r.dropped);
    assert_eq!(r.delivered, (0..90).collect::<Vec<_>>());
    assert_eq!(r.keyframe_requests, 0);
    assert!(r.stats.retransmitted > 50, "{:?}", r.stats);
    assert!(r.stats.nacks > 0);
}

#[test]
fn plain_resend_recovers_without_rtx() {
    let r = simulate(false, 5, 0xbeef);
    assert_eq!(r.delivered, (0..90).collect::<Vec<_>>());
    assert!(r.stats.retransmitted > 10, "{:?}", r.stats);
}

#[test]
fn without_recovery_loss_asks_for_keyframes() {
    // Same link, but the sender's history keeps nothing: frames are lost,
    // the receiver asks for keyframes and never delivers a damaged frame.
    let r = simulate_no_history();
    assert!(r.0 < 90 && r.1 > 0, "{r:?}");
}

fn simulate_no_history() -> (usize, u64) {
    let t0 = Instant::now();
    let mut pk = h264::Packetizer::new(h264::Config {
        ssrc: MEDIA_SSRC,
        ..Default::default()
    })
    .unwrap();
    let mut link = Link::new(10, 5, 99);
    let mut jb: ReorderBuffer<RtpPacket> = ReorderBuffer::new(1024, Duration::from_millis(50));
    let mut dp = h264::Depacketizer::new(1 << 24);
    let mut packets = Vec::new();
    let (mut n, mut k) = (0usize, 0u64);
    for ms in 0..4000u32 {
        let now = t0 + Duration::from_millis(u64::from(ms));
        if ms.is_multiple_of(33) && ms / 33 < 90 {
            packets.clear();
            pk.packetize(
                &access_unit(ms / 33),
                Format::Avcc { length_size: 4 },
                ms / 33 * 3000,
                &mut packets,
            )
            .unwrap();
            for p in &packets {
                let mut b = BytesMut::new();
                p.encode(&Extensions::new(), &mut b);
                link.send(now, b.freeze());
            }
        }
        while let Some(d) = link.recv(now) {
            let p = rts_rtp::packet::parse(&d).unwrap();
            jb.push(now, p.header.sequence_number, p);
        }
        while let Some(o) = jb.pop(now) {
            match o {
                Output::Packet(p) => dp.push(p.header.marker, p.header.timestamp, &p.payload),
                Output::Lost(_) => dp.lost(),
            }
        }
        while let Some(e) = dp.poll_event() {
            match e {
                Event::AccessUnit(_) => n += 1,
                Event::KeyframeNeeded => k += 1,
            }
        }
    }
    (n, k)
}
