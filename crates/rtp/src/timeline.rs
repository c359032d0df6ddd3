//! Continuity of sequence numbers and timestamps across source restarts.
//!
//! When a publisher reconnects or a transcoder restarts, its timestamps
//! start again near zero (and a forwarded stream gets a new SSRC and
//! sequence space). Players stall or reset when the outgoing RTP timeline
//! jumps backwards, so the outgoing values continue forward instead: the
//! first timestamp after a restart is the last one sent plus one frame
//! duration (the last observed spacing), and sequence numbers simply go on.

/// Maps source timestamps (in the RTP clock) to outgoing ones that never go
/// backwards across restarts.
#[derive(Debug, Clone)]
pub struct Timeline {
    offset: u32,
    last_src: Option<u32>,
    last_out: Option<u32>,
    last_step: u32,
    default_step: u32,
    max_jump: u32,
    restart_pending: bool,
    restarts: u64,
    start_at: Option<u32>,
}

impl Timeline {
    /// `initial_offset` is added to source timestamps until the first
    /// restart (RFC 3550 5.1 recommends a random start; pass randomness in).
    /// `default_step` is the gap used after a restart before any spacing
    /// was observed (3000 for 30 fps at 90 kHz, 960 for 20 ms Opus).
    /// A forward jump larger than `max_jump` or any backward step is
    /// treated as a restart too.
    pub fn new(initial_offset: u32, default_step: u32, max_jump: u32) -> Self {
        Self {
            offset: initial_offset,
            last_src: None,
            last_out: None,
            last_step: default_step,
            default_step,
            max_jump,
            restart_pending: false,
            restarts: 0,
            start_at: None,
        }
    }

    /// Like [`Timeline::new`], but the first timestamp returned is
    /// `first_out` whatever the first source timestamp is.
    pub fn starting_at(first_out: u32, default_step: u32, max_jump: u32) -> Self {
        Self {
            start_at: Some(first_out),
            ..Self::new(0, default_step, max_jump)
        }
    }

    /// The source restarted: the next timestamp continues from the last one sent.
    pub fn restart(&mut self) {
        self.restart_pending = true;
    }

    /// How many restarts (explicit or detected) were bridged.
    pub fn restarts(&self) -> u64 {
        self.restarts
    }

    /// The last timestamp returned.
    pub fn last(&self) -> Option<u32> {
        self.last_out
    }

    /// The outgoing timestamp for source timestamp `src`.
    pub fn map(&mut self, src: u32) -> u32 {
        if let (Some(ls), Some(lo)) = (self.last_src, self.last_out) {
            let d = src.wrapping_sub(ls);
            let backwards = d >= 0x8000_0000;
            if self.restart_pending || backwards || d > self.max_jump {
                let step = if self.last_step == 0 {
                    self.default_step
                } else {
                    self.last_step
                };
                self.offset = lo.wrapping_add(step).wrapping_sub(src);
                self.restarts = self.restarts.saturating_add(1);
            } else if d > 0 {
                self.last_step = d;
            }
        }
        if let Some(first) = self.start_at.take() {
            self.offset = first.wrapping_sub(src);
        }
        self.restart_pending = false;
        let out = src.wrapping_add(self.offset);
        self.last_src = Some(src);
        self.last_out = Some(out);
        out
    }
}

/// Rewrites forwarded packets' sequence numbers and timestamps so that a
/// change of source (new SSRC, or [`Continuity::restart`]) continues the
/// outgoing numbering (SFU-style forwarding of WHIP ingest).
#[derive(Debug, Clone)]
pub struct Continuity {
    src_ssrc: Option<u32>,
    seq_offset: u16,
    last_src_seq: Option<u16>,
    last_out_seq: Option<u16>,
    timeline: Timeline,
    restart_pending: bool,
}

impl Continuity {
    /// `initial_seq`/`initial_ts` are the first outgoing values (random, passed in).
    pub fn new(initial_seq: u16, initial_ts: u32, default_step: u32, max_jump: u32) -> Self {
        Self {
            src_ssrc: None,
            seq_offset: initial_seq,
            last_src_seq: None,
            last_out_seq: None,
            timeline: Timeline::starting_at(initial_ts, default_step, max_jump),
            restart_pending: true,
        }
    }

    /// Forces the next packet to start a new source.
    pub fn restart(&mut self) {
        self.restart_pending = true;
        self.timeline.restart();
    }

    /// Number of source changes bridged.
    pub fn restarts(&self) -> u64 {
        self.timeline.restarts()
    }

    /// Outgoing `(sequence_number, timestamp)` for a source packet.
    pub fn rewrite(&mut self, src_ssrc: u32, src_seq: u16, src_ts: u32) -> (u16, u32) {
        if self.src_ssrc != Some(src_ssrc) && self.src_ssrc.is_some() {
            self.restart();
        }
        self.src_ssrc = Some(src_ssrc);
        if self.restart_pending {
            let next = self
                .last_out_seq
                .map_or(self.seq_offset, |s| s.wrapping_add(1));
            self.seq_offset = next.wrapping_sub(src_seq);
            self.restart_pending = false;
        }
        let seq = src_seq.wrapping_add(self.seq_offset);
        match self.last_out_seq {
            Some(l) if !crate::packet::seq_newer(seq, l) => {}
            _ => {
                self.last_out_seq = Some(seq);
                self.last_src_seq = Some(src_seq);
            }
        }
        // Retransmitted or reordered packets map with the current offset.
        let ts = if self.last_src_seq == Some(src_seq) {
            self.timeline.map(src_ts)
        } else {
            src_ts.wrapping_add(self.timeline.offset)
        };
        (seq, ts)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timeline_continues_after_restart() {
        let mut t = Timeline::new(1000, 3000, 90_000 * 10);
        assert_eq!(t.map(0), 1000);
        assert_eq!(t.map(3000), 4000);
        assert_eq!(t.map(6000), 7000);
        // The publisher reconnects: its timestamps start again at 0.
        t.restart();
        assert_eq!(t.map(0), 10_000);
        assert_eq!(t.map(3000), 13_000);
        // Undeclared restart: a backwards jump is detected.
        assert_eq!(t.map(90), 16_000);
        assert_eq!(t.restarts(), 2);
        // Wrap-around of the source clock is not a restart.
        let mut w = Timeline::new(0, 3000, 90_000);
        w.map(u32::MAX - 1000);
        assert_eq!(w.map(1999), 1999);
        assert_eq!(w.restarts(), 0);
    }

    #[test]
    fn continuity_bridges_ssrc_change() {
        let mut c = Continuity::new(100, 5000, 3000, 900_000);
        assert_eq!(c.rewrite(1, 40_000, 77), (100, 5000));
        assert_eq!(c.rewrite(1, 40_001, 3077), (101, 8000));
        // New publisher: different SSRC, unrelated numbering.
        assert_eq!(c.rewrite(2, 7, 123_456), (102, 11_000));
        assert_eq!(c.rewrite(2, 8, 126_456), (103, 14_000));
        assert_eq!(c.restarts(), 1);
    }
}
