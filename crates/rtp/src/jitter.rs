//! A bounded reorder (jitter) buffer with a maximum wait, sans-IO.
//!
//! Packets go in by sequence number in any order, with duplicates; they
//! come out in order. A missing packet is waited for at most `max_wait`
//! (measured from the arrival of the oldest packet held behind it) or until
//! `capacity` packets are held, then reported as [`Output::Lost`] so the
//! depacketizer can drop the damaged frame. Time is passed in.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use crate::packet::SeqUnwrapper;

/// What comes out.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Output<T> {
    /// The next packet in sequence order.
    Packet(T),
    /// This many packets were given up on before the next one.
    Lost(u64),
}

/// Counters.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Stats {
    /// Packets accepted.
    pub received: u64,
    /// Packets dropped because they were already held or delivered.
    pub duplicates: u64,
    /// Packets dropped because their turn had passed.
    pub late: u64,
    /// Packets given up on.
    pub lost: u64,
}

/// The reorder buffer.
#[derive(Debug)]
pub struct ReorderBuffer<T> {
    capacity: usize,
    max_wait: Duration,
    next: Option<u64>,
    unwrapper: SeqUnwrapper,
    held: BTreeMap<u64, (Instant, T)>,
    started: bool,
    waiting_since: Option<Instant>,
    stats: Stats,
}

impl<T> ReorderBuffer<T> {
    /// Holds at most `capacity` packets (at least 1) and waits at most
    /// `max_wait` for a missing one.
    pub fn new(capacity: usize, max_wait: Duration) -> Self {
        Self {
            capacity: capacity.max(1),
            max_wait,
            next: None,
            unwrapper: SeqUnwrapper::default(),
            held: BTreeMap::new(),
            started: false,
            waiting_since: None,
            stats: Stats::default(),
        }
    }

    /// Counters so far.
    pub fn stats(&self) -> Stats {
        self.stats
    }

    /// Packets held.
    pub fn len(&self) -> usize {
        self.held.len()
    }

    /// Whether nothing is held.
    pub fn is_empty(&self) -> bool {
        self.held.is_empty()
    }

    /// A packet arrived at `now`.
    pub fn push(&mut self, now: Instant, seq: u16, item: T) {
        let ext = self.unwrapper.unwrap(seq);
        let next = *self.next.get_or_insert(ext);
        if ext < next && !self.started {
            // Nothing delivered yet: an earlier packet may still start the stream.
            self.next = Some(ext);
        } else if ext < next {
            self.stats.late = self.stats.late.saturating_add(1);
            return;
        }
        if self.held.contains_key(&ext) {
            self.stats.duplicates = self.stats.duplicates.saturating_add(1);
            return;
        }
        self.stats.received = self.stats.received.saturating_add(1);
        self.held.insert(ext, (now, item));
    }

    /// The next output, if one is due at `now`.
    pub fn pop(&mut self, now: Instant) -> Option<Output<T>> {
        let next = self.next?;
        self.started = true;
        if let Some((_, item)) = self.held.remove(&next) {
            self.next = Some(next.saturating_add(1));
            self.waiting_since = None;
            return Some(Output::Packet(item));
        }
        let (&first, _) = self.held.iter().next()?;
        // The wait starts when the first packet behind the gap arrived
        // (scanned once per gap, not per call).
        let since = match self.waiting_since {
            Some(t) => t,
            None => {
                let t = self.held.values().map(|(t, _)| *t).min().unwrap_or(now);
                *self.waiting_since.insert(t)
            }
        };
        let expired = now.saturating_duration_since(since) >= self.max_wait;
        if expired || self.held.len() >= self.capacity {
            let gap = first.saturating_sub(next);
            self.stats.lost = self.stats.lost.saturating_add(gap);
            self.next = Some(first);
            self.waiting_since = None;
            return Some(Output::Lost(gap));
        }
        None
    }

    /// When [`ReorderBuffer::pop`] will next have something because a wait
    /// expired (`None` when nothing is waiting).
    pub fn poll_timeout(&self) -> Option<Instant> {
        if self.held.is_empty() {
            return None;
        }
        let since = match self.waiting_since {
            Some(t) => t,
            None => self.held.values().map(|(t, _)| *t).min()?,
        };
        since.checked_add(self.max_wait)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn drain(b: &mut ReorderBuffer<u16>, now: Instant) -> Vec<Output<u16>> {
        std::iter::from_fn(|| b.pop(now)).collect()
    }

    #[test]
    fn reorders_dedups_and_gives_up() {
        let t0 = Instant::now();
        let mut b = ReorderBuffer::new(100, Duration::from_millis(50));
        b.push(t0, 65534, 65534);
        b.push(t0, 0, 0);
        b.push(t0, 65535, 65535);
        b.push(t0, 0, 0);
        assert_eq!(
            drain(&mut b, t0),
            vec![
                Output::Packet(65534),
                Output::Packet(65535),
                Output::Packet(0)
            ]
        );
        b.push(t0, 65535, 65535);
        assert_eq!(b.stats().late, 1);
        assert_eq!(b.stats().duplicates, 1);
        // 1 is missing: 2 waits until max_wait.
        let t1 = t0 + Duration::from_millis(10);
        b.push(t1, 2, 2);
        assert_eq!(drain(&mut b, t1), vec![]);
        assert_eq!(b.poll_timeout(), Some(t1 + Duration::from_millis(50)));
        let t2 = t1 + Duration::from_millis(50);
        assert_eq!(drain(&mut b, t2), vec![Output::Lost(1), Output::Packet(2)]);
        assert_eq!(b.stats().lost, 1);
    }

    #[test]
    fn capacity_forces_progress() {
        let t0 = Instant::now();
        let mut b = ReorderBuffer::new(3, Duration::from_secs(10));
        b.push(t0, 10, 10);
        assert_eq!(drain(&mut b, t0), vec![Output::Packet(10)]);
        for s in 12..15 {
            b.push(t0, s, s);
        }
        assert_eq!(
            drain(&mut b, t0),
            vec![
                Output::Lost(1),
                Output::Packet(12),
                Output::Packet(13),
                Output::Packet(14)
            ]
        );
    }
}
