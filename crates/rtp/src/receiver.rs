//! Receive sessions: a [`ReorderBuffer`] in front of a depacketizer, in
//! the sans-IO session shape (`handle_packet(now, ..)`,
//! `handle_timeout(now)`, then drain `poll_event()`; `poll_timeout()` says
//! when to call back). Used for WHIP ingest.

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use bytes::Bytes;
use rtc_rtp::packet::Packet as RtpPacket;

use crate::h264;
use crate::jitter::{Output, ReorderBuffer, Stats};
use crate::opus;

/// H.264 receive session.
#[derive(Debug)]
pub struct H264Receiver {
    jb: ReorderBuffer<RtpPacket>,
    dp: h264::Depacketizer,
}

impl H264Receiver {
    /// Holds at most `capacity` packets, waits at most `max_wait` for a
    /// missing one, drops access units above `max_access_unit` bytes.
    pub fn new(capacity: usize, max_wait: Duration, max_access_unit: usize) -> Self {
        Self {
            jb: ReorderBuffer::new(capacity, max_wait),
            dp: h264::Depacketizer::new(max_access_unit),
        }
    }

    /// A packet of this stream arrived at `now`.
    pub fn handle_packet(&mut self, now: Instant, packet: RtpPacket) {
        self.jb.push(now, packet.header.sequence_number, packet);
        self.drain(now);
    }

    /// Time passed: gives up on packets waited for too long.
    pub fn handle_timeout(&mut self, now: Instant) {
        self.drain(now);
    }

    fn drain(&mut self, now: Instant) {
        while let Some(o) = self.jb.pop(now) {
            match o {
                // Padding only (a sender probing bandwidth): it keeps the
                // sequence whole and carries nothing.
                Output::Packet(p) if p.payload.is_empty() => {}
                Output::Packet(p) => self
                    .dp
                    .push(p.header.marker, p.header.timestamp, &p.payload),
                Output::Lost(_) => self.dp.lost(),
            }
        }
    }

    /// The next access unit or keyframe request.
    pub fn poll_event(&mut self) -> Option<h264::Event> {
        self.dp.poll_event()
    }

    /// When to call [`H264Receiver::handle_timeout`].
    pub fn poll_timeout(&self) -> Option<Instant> {
        self.jb.poll_timeout()
    }

    /// Reorder-buffer counters.
    pub fn reorder_stats(&self) -> Stats {
        self.jb.stats()
    }

    /// Depacketizer counters.
    pub fn depacketizer_stats(&self) -> h264::DepacketizerStats {
        self.dp.stats()
    }
}

/// What the Opus receive session reports.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum OpusEvent {
    /// One Opus packet, with its RTP timestamp (48 kHz).
    Frame {
        /// RTP timestamp.
        timestamp: u32,
        /// The Opus packet.
        data: Bytes,
    },
    /// Packets were lost here (conceal them: Opus PLC or FEC).
    Lost(u64),
}

/// Opus receive session.
#[derive(Debug)]
pub struct OpusReceiver {
    jb: ReorderBuffer<RtpPacket>,
    dp: opus::Depacketizer,
    events: VecDeque<OpusEvent>,
    max_events: usize,
}

impl OpusReceiver {
    /// See [`H264Receiver::new`]; at most `capacity` events are queued.
    pub fn new(capacity: usize, max_wait: Duration) -> Self {
        Self {
            jb: ReorderBuffer::new(capacity, max_wait),
            dp: opus::Depacketizer::new(),
            events: VecDeque::new(),
            max_events: capacity.max(1),
        }
    }

    /// A packet of this stream arrived at `now`.
    pub fn handle_packet(&mut self, now: Instant, packet: RtpPacket) {
        self.jb.push(now, packet.header.sequence_number, packet);
        self.drain(now);
    }

    /// Time passed.
    pub fn handle_timeout(&mut self, now: Instant) {
        self.drain(now);
    }

    fn drain(&mut self, now: Instant) {
        while let Some(o) = self.jb.pop(now) {
            let ev = match o {
                Output::Packet(p) => match self.dp.push(&p.payload) {
                    Some(data) => OpusEvent::Frame {
                        timestamp: p.header.timestamp,
                        data,
                    },
                    None => OpusEvent::Lost(1),
                },
                Output::Lost(n) => OpusEvent::Lost(n),
            };
            if self.events.len() >= self.max_events {
                self.events.pop_front();
            }
            self.events.push_back(ev);
        }
    }

    /// The next frame or loss.
    pub fn poll_event(&mut self) -> Option<OpusEvent> {
        self.events.pop_front()
    }

    /// When to call [`OpusReceiver::handle_timeout`].
    pub fn poll_timeout(&self) -> Option<Instant> {
        self.jb.poll_timeout()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ext::Extensions;
    use crate::packet::parse;
    use bytes::BytesMut;

    fn wire(p: &crate::Packet) -> RtpPacket {
        let mut b = BytesMut::new();
        p.encode(&Extensions::new(), &mut b);
        parse(&b.freeze()).unwrap()
    }

    #[test]
    fn opus_reorders_and_reports_loss() {
        let t0 = Instant::now();
        let mut pk = opus::Packetizer::new(opus::Config::default());
        let pkts: Vec<RtpPacket> = (0..4u32)
            .map(|i| wire(&pk.packetize(Bytes::from(vec![0xfc, i as u8]), i * 960)))
            .collect();
        let mut r = OpusReceiver::new(64, Duration::from_millis(40));
        r.handle_packet(t0, pkts[0].clone());
        r.handle_packet(t0, pkts[3].clone());
        r.handle_packet(t0, pkts[1].clone());
        assert_eq!(r.poll_timeout(), Some(t0 + Duration::from_millis(40)));
        r.handle_timeout(t0 + Duration::from_millis(40));
        let ev: Vec<OpusEvent> = std::iter::from_fn(|| r.poll_event()).collect();
        let ts: Vec<String> = ev
            .iter()
            .map(|e| match e {
                OpusEvent::Frame { timestamp, .. } => format!("f{timestamp}"),
                OpusEvent::Lost(n) => format!("lost{n}"),
            })
            .collect();
        assert_eq!(ts, ["f0", "f960", "lost1", "f2880"]);
    }

    #[test]
    fn h264_session_waits_then_gives_up() {
        let t0 = Instant::now();
        let mut pk = h264::Packetizer::new(h264::Config {
            mtu: 100,
            ..Default::default()
        })
        .unwrap();
        pk.set_parameter_sets(
            vec![Bytes::from_static(&[0x67, 1])],
            vec![Bytes::from_static(&[0x68, 2])],
        );
        let mut out = Vec::new();
        pk.packetize_nals(&[Bytes::from(vec![0x65; 300])], 0, &mut out);
        pk.packetize_nals(&[Bytes::from(vec![0x41; 300])], 3000, &mut out);
        pk.packetize_nals(&[Bytes::from(vec![0x65; 300])], 6000, &mut out);
        let mut r = H264Receiver::new(256, Duration::from_millis(50), 1 << 20);
        for (i, p) in out.iter().enumerate() {
            if i != 6 {
                r.handle_packet(t0, wire(p));
            }
        }
        // The keyframe is out; the P frame waits for its missing fragment.
        assert!(matches!(r.poll_event(), Some(h264::Event::AccessUnit(a)) if a.keyframe));
        assert_eq!(r.poll_event(), None);
        r.handle_timeout(r.poll_timeout().unwrap());
        assert_eq!(r.poll_event(), Some(h264::Event::KeyframeNeeded));
        assert!(matches!(r.poll_event(), Some(h264::Event::AccessUnit(a)) if a.timestamp == 6000));
        assert_eq!(r.reorder_stats().lost, 1);
    }

    #[test]
    fn h264_padding_only_packets_keep_the_access_unit_whole() {
        // Chromium probes bandwidth with padding-only packets in the media
        // sequence; the access unit around them is not damaged.
        let t0 = Instant::now();
        let mut pk = h264::Packetizer::new(h264::Config {
            mtu: 100,
            ..Default::default()
        })
        .unwrap();
        pk.set_parameter_sets(
            vec![Bytes::from_static(&[0x67, 1])],
            vec![Bytes::from_static(&[0x68, 2])],
        );
        let mut out = Vec::new();
        pk.packetize_nals(&[Bytes::from(vec![0x65; 300])], 0, &mut out);
        let mut r = H264Receiver::new(256, Duration::from_millis(50), 1 << 20);
        let last = out.len() - 1;
        for p in &out[..last] {
            r.handle_packet(t0, wire(p));
        }
        let mut pad = wire(&out[last]);
        pad.payload = Bytes::new();
        pad.header.marker = false;
        let mut tail = wire(&out[last]);
        tail.header.sequence_number = pad.header.sequence_number.wrapping_add(1);
        r.handle_packet(t0, pad);
        r.handle_packet(t0, tail);
        assert!(matches!(r.poll_event(), Some(h264::Event::AccessUnit(a)) if a.keyframe));
        assert_eq!(r.depacketizer_stats().malformed, 0);
    }
}
