//! What this crate does about two faults of the webrtc-rs `rtc` 0.21 stack
//! that packet loss exposes (docs/decisions/webrtc-loss.md has the evidence
//! and the stack's code they come from).
//!
//! 1. **DTLS.** In rtc-dtls, a handshake record that brings nothing new (the
//!    peer retransmitting its flight) cancels the retransmit timer, and
//!    nothing answers a retransmitted flight, though RFC 6347 4.2.4 says to
//!    send one's last flight again. One lost flight then stalls both sides
//!    for good. [`FlightGuard`] keeps the last handshake flight we sent and
//!    sends it again when a handshake datagram comes in that the stack does
//!    not answer, and on its own backoff timer (RFC 6347 4.2.4.1) while the
//!    handshake lasts.
//! 2. **ICE-lite.** rtc-ice's controlled agent answers a USE-CANDIDATE check
//!    only once its own triggered check on that pair has succeeded; one that
//!    arrives earlier gets no response. [`Nomination`] keeps such a request
//!    and hands it to the stack again when a success response from the same
//!    address has come in (the pair has succeeded by then).

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use bytes::BytesMut;

use crate::demux::StunView;
use crate::peer::Transmit;

/// First wait before the guard resends on its own.
const FIRST_BACKOFF: Duration = Duration::from_millis(400);
/// Longest wait between resends (doubling from [`FIRST_BACKOFF`]).
const MAX_BACKOFF: Duration = Duration::from_secs(3);
/// Resends an unanswered handshake datagram can cause are this far apart
/// at least (a flight of several datagrams must not cause several resends).
const MIN_GAP: Duration = Duration::from_millis(150);
/// Most resends for one handshake.
const MAX_RESENDS: u32 = 24;

/// Whether a datagram is DTLS and its first record belongs to the
/// handshake (content type 22, or 20 ChangeCipherSpec; RFC 6347 4.1).
pub(crate) fn is_handshake(datagram: &[u8]) -> bool {
    matches!(datagram.first(), Some(20 | 22))
}

/// Resends our last DTLS handshake flight while the handshake lasts.
#[derive(Debug)]
pub(crate) struct FlightGuard {
    flight: Vec<Transmit>,
    /// Last DTLS datagram in either direction.
    last_activity: Instant,
    backoff: Duration,
    last_resend: Option<Instant>,
    resends: u32,
    done: bool,
}

impl FlightGuard {
    pub(crate) fn new(now: Instant) -> Self {
        FlightGuard {
            flight: Vec::new(),
            last_activity: now,
            backoff: FIRST_BACKOFF,
            last_resend: None,
            resends: 0,
            done: false,
        }
    }

    /// The stack sent `out` (the datagrams of one call): its DTLS handshake
    /// datagrams are the current flight.
    pub(crate) fn sent<'a>(&mut self, now: Instant, out: impl Iterator<Item = &'a Transmit>) {
        if self.done {
            return;
        }
        let flight: Vec<Transmit> = out.filter(|t| is_handshake(&t.contents)).cloned().collect();
        if !flight.is_empty() {
            self.flight = flight;
            self.last_activity = now;
            self.backoff = FIRST_BACKOFF;
        }
    }

    /// A DTLS datagram came in.
    pub(crate) fn received(&mut self, now: Instant) {
        self.last_activity = now;
    }

    /// A handshake datagram came in and the stack sent nothing of the
    /// handshake in answer: the peer is retransmitting. Returns the flight
    /// to send again (empty when it is too soon, or over).
    pub(crate) fn unanswered(&mut self, now: Instant) -> Vec<Transmit> {
        if self
            .last_resend
            .is_some_and(|t| now.saturating_duration_since(t) < MIN_GAP)
        {
            return Vec::new();
        }
        self.resend(now)
    }

    fn resend(&mut self, now: Instant) -> Vec<Transmit> {
        if self.done || self.flight.is_empty() || self.resends >= MAX_RESENDS {
            return Vec::new();
        }
        self.resends = self.resends.saturating_add(1);
        self.last_resend = Some(now);
        self.last_activity = now;
        self.flight.clone()
    }

    /// The peer sent SRTP or SRTCP: it has the keys, the handshake is over.
    pub(crate) fn finish(&mut self) {
        self.done = true;
        self.flight.clear();
    }

    /// When to resend if nothing moves.
    pub(crate) fn poll_timeout(&self) -> Option<Instant> {
        if self.done || self.flight.is_empty() || self.resends >= MAX_RESENDS {
            return None;
        }
        self.last_activity.checked_add(self.backoff)
    }

    /// Resends when nothing of the handshake moved for the backoff.
    pub(crate) fn handle_timeout(&mut self, now: Instant) -> Vec<Transmit> {
        match self.poll_timeout() {
            Some(t) if t <= now => {
                self.backoff = self.backoff.saturating_mul(2).min(MAX_BACKOFF);
                self.resend(now)
            }
            _ => Vec::new(),
        }
    }
}

/// A USE-CANDIDATE check the stack did not answer, kept for another try.
#[derive(Debug, Default)]
pub(crate) struct Nomination {
    pending: Option<(SocketAddr, [u8; 12], BytesMut)>,
    tries: u8,
}

/// Tries per kept request.
const NOMINATION_TRIES: u8 = 4;

impl Nomination {
    /// After the stack handled a binding request from `from`: keep it when
    /// it nominates (USE-CANDIDATE) and was not answered; forget a kept one
    /// once its transaction was answered.
    pub(crate) fn after_request(
        &mut self,
        from: SocketAddr,
        view: &StunView<'_>,
        datagram: &[u8],
        answered: bool,
    ) {
        let same = self
            .pending
            .as_ref()
            .is_some_and(|(_, tx, _)| *tx == view.transaction_id);
        if answered {
            if same {
                self.pending = None;
            }
            return;
        }
        if !view.use_candidate {
            return;
        }
        if !same {
            self.tries = 0;
        }
        self.pending = Some((from, view.transaction_id, BytesMut::from(datagram)));
    }

    /// A binding success response came in from `from`: the kept request
    /// from that address, to hand to the stack again.
    pub(crate) fn retry(&mut self, from: SocketAddr) -> Option<BytesMut> {
        let (addr, _, bytes) = self.pending.as_ref()?;
        if *addr != from || self.tries >= NOMINATION_TRIES {
            return None;
        }
        self.tries = self.tries.saturating_add(1);
        Some(bytes.clone())
    }
}

/// Whether `out` holds a STUN success response to transaction `tx` for `to`.
pub(crate) fn answers<'a>(
    mut out: impl Iterator<Item = &'a Transmit>,
    to: SocketAddr,
    tx: &[u8; 12],
) -> bool {
    out.any(|t| {
        t.destination == to
            && StunView::parse(&t.contents)
                .is_some_and(|v| v.is_binding_success() && v.transaction_id == *tx)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(first: u8) -> Transmit {
        Transmit {
            transport: crate::peer::Transport::Udp,
            destination: "127.0.0.1:9".parse().unwrap(),
            contents: BytesMut::from(&[first, 0xfe, 0xfd][..]),
        }
    }

    #[test]
    fn resends_the_last_flight_when_a_retransmission_goes_unanswered() {
        let t0 = Instant::now();
        let mut g = FlightGuard::new(t0);
        assert!(g.unanswered(t0).is_empty(), "nothing sent yet");
        // Flight 4 of two datagrams, and an SRTP packet that is no part of it.
        g.sent(t0, [t(22), t(22), t(0x80)].iter());
        let again = g.unanswered(t0 + Duration::from_millis(300));
        assert_eq!(again.len(), 2);
        // A second datagram of the same retransmitted flight: not again.
        assert!(g.unanswered(t0 + Duration::from_millis(310)).is_empty());
        assert_eq!(g.unanswered(t0 + Duration::from_millis(500)).len(), 2);
        g.finish();
        assert!(g.unanswered(t0 + Duration::from_secs(2)).is_empty());
        assert_eq!(g.poll_timeout(), None);
    }

    #[test]
    fn backs_off_on_its_own_timer_and_stops() {
        let t0 = Instant::now();
        let mut g = FlightGuard::new(t0);
        g.sent(t0, [t(22)].iter());
        let mut now = t0;
        let mut waits = Vec::new();
        while let Some(at) = g.poll_timeout() {
            waits.push(at.saturating_duration_since(now).as_millis());
            now = at;
            assert_eq!(g.handle_timeout(now).len(), 1);
        }
        assert_eq!(&waits[..4], [400, 800, 1600, 3000]);
        assert_eq!(waits.len(), MAX_RESENDS as usize);
        // Activity puts the timer off.
        let mut g = FlightGuard::new(t0);
        g.sent(t0, [t(22)].iter());
        g.received(t0 + Duration::from_millis(300));
        assert_eq!(g.poll_timeout(), Some(t0 + Duration::from_millis(700)));
    }
}
