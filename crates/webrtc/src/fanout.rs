//! Fan-out of one packetized stream to many viewers.
//!
//! A stream is packetized once (rts-rtp); every viewer gets clones of the
//! same packets (the payload is a shared [`bytes::Bytes`]) and its peer only
//! rewrites payload type and SSRC and encrypts ([`crate::Peer::send_rtp`]).
//! Between the two sits one bounded [`ViewerQueue`] per viewer: a viewer
//! whose socket or peer cannot keep up overflows its own queue, loses the
//! queued video and waits for the stream's next keyframe, without
//! slowing anyone else.

use std::collections::VecDeque;

use crate::sdp::MediaKind;

/// One packet waiting for a viewer.
#[derive(Debug, Clone)]
pub struct Queued {
    /// Audio or video.
    pub kind: MediaKind,
    /// The packet (shared payload).
    pub packet: rts_rtp::Packet,
    /// First packet of a keyframe (IDR access unit): a viewer that lost
    /// video can resume here.
    pub keyframe_start: bool,
}

/// What [`ViewerQueue::push`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Push {
    /// Queued.
    Queued,
    /// Dropped: the viewer waits for a keyframe.
    WaitingForKeyframe,
    /// The queue was full: its video was dropped and the viewer now waits
    /// for the next keyframe (the pushed packet was dropped too unless it
    /// starts one).
    Overflowed,
}

/// Counters of one viewer queue.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct QueueStats {
    /// Packets queued.
    pub queued: u64,
    /// Video packets dropped (overflow or waiting for a keyframe).
    pub dropped: u64,
    /// Times the queue overflowed.
    pub overflows: u64,
}

/// A bounded per-viewer send queue that drops to the next keyframe.
#[derive(Debug)]
pub struct ViewerQueue {
    queue: VecDeque<Queued>,
    capacity: usize,
    waiting: bool,
    stats: QueueStats,
}

impl ViewerQueue {
    /// A queue of at most `capacity` packets. A new viewer starts waiting
    /// for a keyframe (video before it cannot be decoded).
    pub fn new(capacity: usize) -> Self {
        Self {
            // Grows as needed: most of the time a viewer's queue is empty
            // between one access unit and the next.
            queue: VecDeque::new(),
            capacity: capacity.max(1),
            waiting: true,
            stats: QueueStats::default(),
        }
    }

    /// Whether video is being dropped until the next keyframe.
    pub fn waiting_for_keyframe(&self) -> bool {
        self.waiting
    }

    /// Packets waiting.
    pub fn len(&self) -> usize {
        self.queue.len()
    }

    /// Whether nothing waits.
    pub fn is_empty(&self) -> bool {
        self.queue.is_empty()
    }

    /// Counters so far.
    pub fn stats(&self) -> QueueStats {
        self.stats
    }

    /// Offers a packet of the stream to this viewer.
    pub fn push(&mut self, item: Queued) -> Push {
        let mut result = Push::Queued;
        if self.queue.len() >= self.capacity {
            // Drop the queued video; audio stays (it is small and decodable
            // on its own), unless audio alone fills the queue.
            let before = self.queue.len();
            self.queue.retain(|q| q.kind == MediaKind::Audio);
            if self.queue.len() >= self.capacity {
                self.queue.clear();
            }
            let dropped = before.saturating_sub(self.queue.len());
            self.stats.dropped = self.stats.dropped.saturating_add(dropped as u64);
            self.stats.overflows = self.stats.overflows.saturating_add(1);
            self.waiting = true;
            result = Push::Overflowed;
        }
        if item.kind == MediaKind::Video && self.waiting {
            if item.keyframe_start {
                self.waiting = false;
            } else {
                self.stats.dropped = self.stats.dropped.saturating_add(1);
                return if result == Push::Overflowed {
                    result
                } else {
                    Push::WaitingForKeyframe
                };
            }
        }
        self.queue.push_back(item);
        self.stats.queued = self.stats.queued.saturating_add(1);
        result
    }

    /// The next packet to send.
    pub fn pop(&mut self) -> Option<Queued> {
        self.queue.pop_front()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::Bytes;

    fn video(seq: u16, key: bool) -> Queued {
        let packet = rts_rtp::Packet {
            sequence_number: seq,
            payload: rts_rtp::Payload::from_bytes(Bytes::from_static(b"x")),
            ..Default::default()
        };
        Queued {
            kind: MediaKind::Video,
            packet,
            keyframe_start: key,
        }
    }

    fn audio(seq: u16) -> Queued {
        Queued {
            kind: MediaKind::Audio,
            ..video(seq, false)
        }
    }

    #[test]
    fn new_viewer_starts_at_a_keyframe() {
        let mut q = ViewerQueue::new(8);
        assert_eq!(q.push(video(1, false)), Push::WaitingForKeyframe);
        assert_eq!(q.push(audio(1)), Push::Queued);
        assert_eq!(q.push(video(2, true)), Push::Queued);
        assert_eq!(q.push(video(3, false)), Push::Queued);
        let seqs: Vec<u16> = std::iter::from_fn(|| q.pop())
            .map(|p| p.packet.sequence_number)
            .collect();
        assert_eq!(seqs, vec![1, 2, 3]);
    }

    #[test]
    fn slow_viewer_drops_to_next_keyframe_alone() {
        let mut fast = ViewerQueue::new(4);
        let mut slow = ViewerQueue::new(4);
        let mut stream = vec![video(0, true)];
        stream.extend((1..10).map(|s| video(s, false)));
        stream.push(video(10, true));
        stream.push(video(11, false));
        let mut fast_got = Vec::new();
        for p in stream {
            fast.push(p.clone());
            // The fast viewer drains every packet; the slow one never does
            // until the end.
            while let Some(x) = fast.pop() {
                fast_got.push(x.packet.sequence_number);
            }
            slow.push(p);
        }
        assert_eq!(fast_got, (0..12).collect::<Vec<u16>>());
        assert_eq!(fast.stats().dropped, 0);
        let slow_got: Vec<u16> = std::iter::from_fn(|| slow.pop())
            .map(|p| p.packet.sequence_number)
            .collect();
        // It overflowed at packet 4, dropped to the keyframe at 10.
        assert_eq!(slow_got, vec![10, 11]);
        assert!(slow.stats().overflows >= 1);
        assert!(!slow.waiting_for_keyframe());
        assert!(slow.len() <= 4);
    }

    #[test]
    fn audio_survives_a_video_overflow() {
        let mut q = ViewerQueue::new(3);
        q.push(video(0, true));
        q.push(audio(100));
        q.push(video(1, false));
        assert_eq!(q.push(video(2, false)), Push::Overflowed);
        let got: Vec<(MediaKind, u16)> = std::iter::from_fn(|| q.pop())
            .map(|p| (p.kind, p.packet.sequence_number))
            .collect();
        assert_eq!(got, vec![(MediaKind::Audio, 100)]);
    }
}
