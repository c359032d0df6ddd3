//! Receiver side of generic NACK (RFC 4585 6.2.1): notices gaps in the
//! sequence numbers and says which packets to request, and when, with a
//! bounded number of retries. Time is passed in.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use rtc_rtcp::transport_feedbacks::transport_layer_nack::{
    TransportLayerNack, nack_pairs_from_sequence_numbers,
};

use crate::packet::SeqUnwrapper;

/// Generator settings.
#[derive(Debug, Clone)]
pub struct Config {
    /// Most missing packets tracked (older ones are given up).
    pub max_missing: usize,
    /// Requests per missing packet.
    pub max_requests: u8,
    /// Wait between requests for the same packet (about one RTT).
    pub retry_interval: Duration,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            max_missing: 512,
            max_requests: 10,
            retry_interval: Duration::from_millis(20),
        }
    }
}

#[derive(Debug, Clone, Copy)]
struct Missing {
    requests: u8,
    last: Option<Instant>,
}

/// Tracks missing packets of one SSRC.
#[derive(Debug)]
pub struct Generator {
    config: Config,
    unwrapper: SeqUnwrapper,
    highest: Option<u64>,
    missing: BTreeMap<u64, Missing>,
    given_up: u64,
}

impl Generator {
    /// A generator.
    pub fn new(config: Config) -> Self {
        Self {
            config,
            unwrapper: SeqUnwrapper::default(),
            highest: None,
            missing: BTreeMap::new(),
            given_up: 0,
        }
    }

    /// Packets given up on (too many requests, or too many missing).
    pub fn given_up(&self) -> u64 {
        self.given_up
    }

    /// Packets currently missing.
    pub fn missing(&self) -> usize {
        self.missing.len()
    }

    /// A packet (original or recovered) arrived.
    pub fn on_packet(&mut self, seq: u16) {
        let ext = self.unwrapper.unwrap(seq);
        match self.highest {
            None => self.highest = Some(ext),
            Some(h) if ext > h => {
                let gap_start = h.saturating_add(1);
                // Never track more than max_missing: skip the oldest of a huge gap.
                let max = self.config.max_missing as u64;
                let first = gap_start.max(ext.saturating_sub(max));
                self.given_up = self
                    .given_up
                    .saturating_add(first.saturating_sub(gap_start));
                for s in first..ext {
                    self.missing.insert(
                        s,
                        Missing {
                            requests: 0,
                            last: None,
                        },
                    );
                }
                self.highest = Some(ext);
            }
            Some(_) => {
                self.missing.remove(&ext);
            }
        }
        while self.missing.len() > self.config.max_missing {
            self.missing.pop_first();
            self.given_up = self.given_up.saturating_add(1);
        }
    }

    /// Sequence numbers to request now (each request is counted).
    pub fn poll(&mut self, now: Instant) -> Vec<u16> {
        let mut out = Vec::new();
        let mut dead = Vec::new();
        for (ext, m) in self.missing.iter_mut() {
            if m.last
                .is_some_and(|l| now.saturating_duration_since(l) < self.config.retry_interval)
            {
                continue;
            }
            if m.requests >= self.config.max_requests {
                dead.push(*ext);
                continue;
            }
            m.requests = m.requests.saturating_add(1);
            m.last = Some(now);
            out.push(*ext as u16);
        }
        for d in dead {
            self.missing.remove(&d);
            self.given_up = self.given_up.saturating_add(1);
        }
        out
    }

    /// When [`Generator::poll`] may next return something.
    pub fn poll_timeout(&self) -> Option<Instant> {
        self.missing
            .values()
            .filter_map(|m| {
                m.last
                    .and_then(|l| l.checked_add(self.config.retry_interval))
            })
            .min()
    }

    /// A NACK packet for `seqs` (empty list gives `None`).
    pub fn build(sender_ssrc: u32, media_ssrc: u32, seqs: &[u16]) -> Option<TransportLayerNack> {
        if seqs.is_empty() {
            return None;
        }
        Some(TransportLayerNack {
            sender_ssrc,
            media_ssrc,
            nacks: nack_pairs_from_sequence_numbers(seqs),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn detects_gaps_and_retries() {
        let t0 = Instant::now();
        let mut g = Generator::new(Config {
            max_requests: 2,
            ..Default::default()
        });
        g.on_packet(65534);
        g.on_packet(1);
        assert_eq!(g.poll(t0), vec![65535, 0]);
        assert_eq!(g.poll(t0), Vec::<u16>::new());
        g.on_packet(0);
        let t1 = t0 + Duration::from_millis(20);
        assert_eq!(g.poll_timeout(), Some(t1));
        assert_eq!(g.poll(t1), vec![65535]);
        assert_eq!(g.poll(t1 + Duration::from_millis(20)), Vec::<u16>::new());
        assert_eq!(g.given_up(), 1);
        let n = Generator::build(1, 2, &[10, 12, 30]).unwrap();
        assert_eq!(n.nacks.len(), 2);
    }
}
