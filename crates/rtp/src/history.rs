//! Send history and retransmission: answers generic NACK (RFC 4585 6.2.1)
//! with RTX (RFC 4588 4: original sequence number prefix, its own SSRC,
//! payload type and sequence space) when negotiated, or a plain resend of
//! the original packet otherwise.
//!
//! The history is bounded by packet count and age; each packet is resent at
//! most `max_retransmissions` times, and not again within
//! `min_resend_interval` (a receiver repeats a NACK until the packet
//! arrives; repeats that cross a retransmission in flight are not answered
//! twice). Retransmissions share the original's
//! payload bytes (the OSN is a prefix, not a copy).

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use rtc_rtcp::transport_feedbacks::transport_layer_nack::TransportLayerNack;

use crate::packet::{Packet, Payload, SeqUnwrapper};

/// RTX parameters (RFC 4588 8: `a=rtpmap:PT rtx/90000`, `apt=`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Rtx {
    /// SSRC of the retransmission stream.
    pub ssrc: u32,
    /// Payload type of the retransmission stream.
    pub payload_type: u8,
    /// First RTX sequence number (random, passed in).
    pub initial_sequence: u16,
}

/// History settings.
#[derive(Debug, Clone)]
pub struct Config {
    /// SSRC of the media stream this history answers for.
    pub ssrc: u32,
    /// Most packets kept.
    pub max_packets: usize,
    /// Oldest packet kept.
    pub max_age: Duration,
    /// Retransmissions per packet.
    pub max_retransmissions: u8,
    /// A packet is not resent again sooner than this.
    pub min_resend_interval: Duration,
    /// RTX when negotiated; `None` resends the original packet.
    pub rtx: Option<Rtx>,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            ssrc: 0,
            max_packets: 1024,
            max_age: Duration::from_secs(1),
            // Each retransmission can be lost too: at 10 % loss each way,
            // ten tries leave one lost packet in 10^10 unrecovered.
            max_retransmissions: 10,
            min_resend_interval: Duration::from_millis(10),
            rtx: None,
        }
    }
}

/// Counters.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Stats {
    /// NACK packets handled for this SSRC.
    pub nacks: u64,
    /// Sequence numbers requested.
    pub requested: u64,
    /// Retransmissions queued.
    pub retransmitted: u64,
    /// Requests for packets no longer (or never) in the history.
    pub missing: u64,
    /// Requests refused because the packet reached its retransmission cap.
    pub capped: u64,
    /// Requests not answered because the packet was resent just before.
    pub too_soon: u64,
    /// Bytes of retransmitted payload.
    pub retransmitted_bytes: u64,
}

#[derive(Debug)]
struct Entry {
    ext: u64,
    sent: Instant,
    packet: Packet,
    resent: u8,
    last_resent: Option<Instant>,
}

/// The send history of one media stream.
#[derive(Debug)]
pub struct SendHistory {
    config: Config,
    entries: VecDeque<Entry>,
    unwrapper: SeqUnwrapper,
    rtx_seq: u16,
    queue: VecDeque<Packet>,
    stats: Stats,
}

impl SendHistory {
    /// An empty history.
    pub fn new(config: Config) -> Self {
        Self {
            rtx_seq: config.rtx.map_or(0, |r| r.initial_sequence),
            config,
            entries: VecDeque::new(),
            unwrapper: SeqUnwrapper::default(),
            queue: VecDeque::new(),
            stats: Stats::default(),
        }
    }

    /// Counters so far.
    pub fn stats(&self) -> Stats {
        self.stats
    }

    /// Packets held.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Whether nothing is held.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    fn evict(&mut self, now: Instant) {
        while self.entries.len() > self.config.max_packets
            || self
                .entries
                .front()
                .is_some_and(|e| now.saturating_duration_since(e.sent) > self.config.max_age)
        {
            self.entries.pop_front();
        }
    }

    /// Records a packet sent at `now` (cheap: the payload is shared).
    pub fn record(&mut self, now: Instant, packet: &Packet) {
        let ext = self.unwrapper.unwrap(packet.sequence_number);
        if self.entries.back().is_some_and(|b| b.ext >= ext) {
            // Out-of-order record (should not happen for a packetizer's
            // output): keep the history sorted by dropping it.
            return;
        }
        self.entries.push_back(Entry {
            ext,
            sent: now,
            packet: packet.clone(),
            resent: 0,
            last_resent: None,
        });
        self.evict(now);
    }

    /// Handles a generic NACK received at `now`; returns how many
    /// retransmissions were queued (drain them with
    /// [`SendHistory::poll_transmit`]).
    pub fn on_nack(&mut self, now: Instant, nack: &TransportLayerNack) -> usize {
        if nack.media_ssrc != self.config.ssrc {
            return 0;
        }
        self.evict(now);
        self.stats.nacks = self.stats.nacks.saturating_add(1);
        let mut queued = 0usize;
        for pair in &nack.nacks {
            for seq in pair.packet_list() {
                if self.resend(now, seq) {
                    queued = queued.saturating_add(1);
                }
            }
        }
        queued
    }

    /// Queues a retransmission of `seq` at `now` if allowed; whether it was
    /// queued.
    pub fn resend(&mut self, now: Instant, seq: u16) -> bool {
        self.stats.requested = self.stats.requested.saturating_add(1);
        let Some(back) = self.entries.back() else {
            self.stats.missing = self.stats.missing.saturating_add(1);
            return false;
        };
        // Extend `seq` relative to the newest packet without touching the
        // unwrapper (requests may be arbitrary).
        let diff = back.packet.sequence_number.wrapping_sub(seq);
        let Some(ext) = back.ext.checked_sub(u64::from(diff)) else {
            self.stats.missing = self.stats.missing.saturating_add(1);
            return false;
        };
        let Ok(i) = self.entries.binary_search_by_key(&ext, |e| e.ext) else {
            self.stats.missing = self.stats.missing.saturating_add(1);
            return false;
        };
        let Some(entry) = self.entries.get_mut(i) else {
            return false;
        };
        if entry.resent >= self.config.max_retransmissions {
            self.stats.capped = self.stats.capped.saturating_add(1);
            return false;
        }
        if entry
            .last_resent
            .is_some_and(|t| now.saturating_duration_since(t) < self.config.min_resend_interval)
        {
            self.stats.too_soon = self.stats.too_soon.saturating_add(1);
            return false;
        }
        entry.resent = entry.resent.saturating_add(1);
        entry.last_resent = Some(now);
        let orig = &entry.packet;
        let pkt = match self.config.rtx {
            Some(rtx) => {
                let osn = orig.sequence_number.to_be_bytes();
                let payload = orig
                    .payload
                    .prepend(&osn)
                    .unwrap_or_else(|| Payload::with_prefix(&osn, orig.payload.to_bytes()));
                let seq = self.rtx_seq;
                self.rtx_seq = self.rtx_seq.wrapping_add(1);
                Packet {
                    marker: orig.marker,
                    payload_type: rtx.payload_type,
                    sequence_number: seq,
                    timestamp: orig.timestamp,
                    ssrc: rtx.ssrc,
                    payload,
                }
            }
            None => orig.clone(),
        };
        self.stats.retransmitted = self.stats.retransmitted.saturating_add(1);
        self.stats.retransmitted_bytes = self
            .stats
            .retransmitted_bytes
            .saturating_add(pkt.payload.len() as u64);
        self.queue.push_back(pkt);
        true
    }

    /// The next retransmission to send.
    pub fn poll_transmit(&mut self) -> Option<Packet> {
        self.queue.pop_front()
    }
}

/// Recovers the original packet from an RTX packet (RFC 4588 4): returns
/// the original sequence number and payload.
pub fn rtx_unwrap(payload: &bytes::Bytes) -> Option<(u16, bytes::Bytes)> {
    let osn = payload.get(..2)?;
    let seq = u16::from_be_bytes([*osn.first()?, *osn.get(1)?]);
    Some((seq, payload.slice(2..)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::Bytes;
    use rtc_rtcp::transport_feedbacks::transport_layer_nack::nack_pairs_from_sequence_numbers;

    fn pkt(seq: u16) -> Packet {
        Packet {
            sequence_number: seq,
            ssrc: 5,
            timestamp: u32::from(seq) * 10,
            payload: Payload::with_prefix(&[0x7c, 0x05], Bytes::from(vec![seq as u8; 20])),
            ..Default::default()
        }
    }

    fn nack(seqs: &[u16]) -> TransportLayerNack {
        TransportLayerNack {
            sender_ssrc: 1,
            media_ssrc: 5,
            nacks: nack_pairs_from_sequence_numbers(seqs),
        }
    }

    #[test]
    fn rtx_osn_and_caps() {
        let t0 = Instant::now();
        let mut h = SendHistory::new(Config {
            ssrc: 5,
            max_packets: 4,
            max_retransmissions: 2,
            rtx: Some(Rtx {
                ssrc: 6,
                payload_type: 97,
                initial_sequence: 100,
            }),
            ..Default::default()
        });
        for s in 65533..=65535u16 {
            h.record(t0, &pkt(s));
        }
        for s in 0..3u16 {
            h.record(t0, &pkt(s));
        }
        assert_eq!(h.len(), 4);
        // 65533 and 65534 were evicted by count.
        assert_eq!(h.on_nack(t0, &nack(&[65534, 65535, 1])), 2);
        let a = h.poll_transmit().unwrap();
        assert_eq!((a.ssrc, a.payload_type, a.sequence_number), (6, 97, 100));
        // RFC 4588 4: OSN, then the original payload (here an FU-A).
        assert_eq!(&a.payload.to_bytes()[..4], &[0xff, 0xff, 0x7c, 0x05]);
        let (osn, orig) = rtx_unwrap(&a.payload.to_bytes()).unwrap();
        assert_eq!(osn, 65535);
        assert_eq!(orig, pkt(65535).payload.to_bytes());
        assert_eq!(h.poll_transmit().unwrap().sequence_number, 101);
        h.on_nack(t0 + Duration::from_millis(20), &nack(&[1]));
        h.on_nack(t0 + Duration::from_millis(40), &nack(&[1]));
        let s = h.stats();
        assert_eq!(
            (s.requested, s.retransmitted, s.missing, s.capped),
            (5, 3, 1, 1)
        );
        // A repeat that crosses the retransmission in flight: not again.
        assert_eq!(h.on_nack(t0, &nack(&[0])), 1);
        assert_eq!(h.on_nack(t0 + Duration::from_millis(5), &nack(&[0])), 0);
        assert_eq!(h.stats().too_soon, 1);
        assert_eq!(h.on_nack(t0 + Duration::from_millis(15), &nack(&[0])), 1);
        // Another SSRC's NACK is ignored; age eviction.
        let mut other = nack(&[2]);
        other.media_ssrc = 9;
        assert_eq!(h.on_nack(t0, &other), 0);
        assert_eq!(h.on_nack(t0 + Duration::from_secs(2), &nack(&[2])), 0);
        assert!(h.is_empty());
    }

    #[test]
    fn plain_resend_without_rtx() {
        let t0 = Instant::now();
        let mut h = SendHistory::new(Config {
            ssrc: 5,
            ..Default::default()
        });
        h.record(t0, &pkt(7));
        assert_eq!(h.on_nack(t0, &nack(&[7])), 1);
        assert_eq!(h.poll_transmit().unwrap(), pkt(7));
    }
}
