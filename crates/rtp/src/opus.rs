//! Opus payload format, RFC 7587: one Opus packet (frame) per RTP packet
//! (RFC 7587 4.2), 48 kHz RTP clock whatever the coded bandwidth (4.1).

use bytes::Bytes;

use crate::packet::{Packet, Payload};
use crate::timeline::Timeline;

/// RTP clock rate for Opus (RFC 7587 4.1).
pub const CLOCK_RATE: u32 = 48_000;

/// Largest Opus packet (RFC 6716 3.4 R5: 120 ms at 510 kbit/s is under 7.7 KB;
/// 1275 bytes per frame times 48 frames bounds it).
pub const MAX_PACKET: usize = 1275 * 48;

/// Packetizer settings.
#[derive(Debug, Clone, Default)]
pub struct Config {
    /// RTP payload type (dynamic; 111 in browsers).
    pub payload_type: u8,
    /// SSRC of the stream.
    pub ssrc: u32,
    /// First sequence number (random, passed in).
    pub initial_sequence: u16,
    /// Offset added to source timestamps (random, passed in).
    pub initial_timestamp: u32,
}

/// RFC 7587 packetizer.
#[derive(Debug)]
pub struct Packetizer {
    config: Config,
    seq: u16,
    timeline: Timeline,
    first: bool,
}

impl Packetizer {
    /// A packetizer.
    pub fn new(config: Config) -> Self {
        Self {
            seq: config.initial_sequence,
            timeline: Timeline::new(config.initial_timestamp, 960, CLOCK_RATE * 10),
            config,
            first: true,
        }
    }

    /// The source restarted: numbering continues (see [`crate::timeline`]).
    pub fn restart(&mut self) {
        self.timeline.restart();
        self.first = true;
    }

    /// One packet for one Opus packet with source timestamp `timestamp`
    /// (48 kHz). The marker bit is set on the first packet after a start or
    /// restart (RFC 7587 4.2: beginning of a talkspurt).
    pub fn packetize(&mut self, frame: Bytes, timestamp: u32) -> Packet {
        let marker = std::mem::replace(&mut self.first, false);
        let sequence_number = self.seq;
        self.seq = self.seq.wrapping_add(1);
        Packet {
            marker,
            payload_type: self.config.payload_type,
            sequence_number,
            timestamp: self.timeline.map(timestamp),
            ssrc: self.config.ssrc,
            payload: Payload::from_bytes(frame),
        }
    }
}

/// Number of 48 kHz samples in an Opus packet, from its TOC byte and frame
/// count (RFC 6716 3.1 and 3.2); `None` if malformed.
pub fn packet_samples(packet: &[u8]) -> Option<u32> {
    let toc = *packet.first()?;
    let config = toc >> 3;
    // Frame size in 2.5 ms units (120 samples), RFC 6716 3.1 table 2.
    let units: u32 = match (config, config % 4) {
        (0..=11, 0) => 4,
        (0..=11, 1) => 8,
        (0..=11, 2) => 16,
        (0..=11, _) => 24,
        (12..=15, 0 | 2) => 4,
        (12..=15, _) => 8,
        (_, 0) => 1,
        (_, 1) => 2,
        (_, 2) => 4,
        (_, _) => 8,
    };
    let frames: u32 = match toc & 0x03 {
        0 => 1,
        1 | 2 => 2,
        _ => u32::from(*packet.get(1)? & 0x3f),
    };
    let samples = units.checked_mul(120)?.checked_mul(frames)?;
    if frames == 0 || samples > 5760 {
        return None;
    }
    Some(samples)
}

/// RFC 7587 depacketizer: the payload is the Opus packet.
#[derive(Debug, Default)]
pub struct Depacketizer {
    malformed: u64,
}

impl Depacketizer {
    /// A depacketizer.
    pub fn new() -> Self {
        Self::default()
    }

    /// Payloads that were empty or too large.
    pub fn malformed(&self) -> u64 {
        self.malformed
    }

    /// The Opus packet in `payload` (shares its allocation), or `None` when
    /// it is empty (RFC 7587 4.2 allows none) or larger than [`MAX_PACKET`].
    pub fn push(&mut self, payload: &Bytes) -> Option<Bytes> {
        if payload.is_empty() || payload.len() > MAX_PACKET {
            self.malformed = self.malformed.saturating_add(1);
            return None;
        }
        Some(payload.clone())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc7587_4_2_one_frame_per_packet() {
        // RFC 7587 4.2: the payload is exactly one Opus packet; 20 ms frames
        // advance the 48 kHz timestamp by 960 (4.1).
        let mut p = Packetizer::new(Config {
            payload_type: 111,
            ssrc: 7,
            initial_sequence: 65535,
            initial_timestamp: 0,
        });
        // TOC 0xfc: config 31 (CELT FB 20 ms), stereo, code 0 (one frame).
        let f1 = Bytes::from(hex::decode("fcfffe").unwrap());
        let a = p.packetize(f1.clone(), 0);
        let b = p.packetize(Bytes::from_static(&[0xfc, 1]), 960);
        assert!(a.marker && !b.marker);
        assert_eq!((a.sequence_number, b.sequence_number), (65535, 0));
        assert_eq!(b.timestamp - a.timestamp, 960);
        assert_eq!(a.payload.to_bytes(), f1);
        assert_eq!(packet_samples(&f1), Some(960));
        let mut d = Depacketizer::new();
        assert_eq!(d.push(&a.payload.to_bytes()), Some(f1));
        assert_eq!(d.push(&Bytes::new()), None);
    }

    #[test]
    fn rfc6716_3_1_toc_durations() {
        // config 0: SILK NB 10 ms; config 3: SILK 60 ms; config 16: CELT 2.5 ms;
        // code 3 with M=3 frames.
        assert_eq!(packet_samples(&[0x00]), Some(480));
        assert_eq!(packet_samples(&[0x18]), Some(2880));
        assert_eq!(packet_samples(&[0x80]), Some(120));
        assert_eq!(packet_samples(&[0x0b, 0x03]), Some(2880));
        assert_eq!(packet_samples(&[0x03, 0x00]), None);
        assert_eq!(packet_samples(&[]), None);
    }
}
