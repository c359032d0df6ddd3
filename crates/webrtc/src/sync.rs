//! RTCP sender reports on one media clock (RFC 3550 6.4.1): audio and video
//! of a peer map their RTP time to NTP through the same fixed epoch, so a
//! receiver aligns the tracks however long each took to reach the sender
//! (a transcoder's reorder delay, an audio encoder's frame). Nothing is
//! held back for sync at the sender.
//!
//! Both tracks' RTP timestamps count the same media time (video at 90 kHz,
//! Opus at 48 kHz, from one origin, as the rts pipeline makes them). The
//! first packet sent fixes the epoch: media time `m` is reported as
//! wall-clock `epoch + m`. A report sent at `now` carries the NTP time of
//! `now` and the RTP time the media clock shows at `now`, so its NTP field
//! is the real send time (receivers' round-trip estimates stay right) and
//! the RTP-to-NTP mapping is the fixed one.
//!
//! Sans-IO: time comes in as `Instant`s; the wall clock is read once, when
//! the peer is made ([`WallClock`]).

use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use crate::sdp::MediaKind;

/// Seconds from 1900 (NTP) to 1970 (Unix).
const NTP_UNIX_OFFSET: u64 = 2_208_988_800;
/// How often each sending track reports.
pub(crate) const INTERVAL: Duration = Duration::from_secs(1);

/// An `Instant` paired with the wall-clock time it was, to turn instants
/// into NTP timestamps.
#[derive(Debug, Clone, Copy)]
pub(crate) struct WallClock {
    at: Instant,
    since_unix: Duration,
}

impl WallClock {
    /// Reads the system clock once, for `now`.
    pub(crate) fn new(now: Instant) -> WallClock {
        let since_unix = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap_or_default();
        WallClock {
            at: now,
            since_unix,
        }
    }

    /// The 64-bit NTP timestamp (32.32 fixed point) of `t`.
    pub(crate) fn ntp(&self, t: Instant) -> u64 {
        let d = if t >= self.at {
            self.since_unix
                .saturating_add(t.saturating_duration_since(self.at))
        } else {
            self.since_unix
                .saturating_sub(self.at.saturating_duration_since(t))
        };
        let secs = d.as_secs().saturating_add(NTP_UNIX_OFFSET);
        let frac = (u64::from(d.subsec_nanos()) << 32) / 1_000_000_000;
        (secs << 32) | frac
    }
}

fn rate(kind: MediaKind) -> i64 {
    match kind {
        MediaKind::Video => 90_000,
        MediaKind::Audio => 48_000,
    }
}

#[derive(Debug, Clone, Copy)]
struct Track {
    /// The first RTP timestamp sent, and its media time (µs, unwrapped).
    ts0: u32,
    media0_us: i64,
    packets: u32,
    octets: u32,
}

/// What goes into one sender report.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Report {
    pub(crate) ntp_time: u64,
    pub(crate) rtp_time: u32,
    pub(crate) packet_count: u32,
    pub(crate) octet_count: u32,
}

/// The media clock of one peer's sending tracks.
#[derive(Debug, Default)]
pub(crate) struct SenderClock {
    /// When the first packet went out, and its media time (µs).
    origin: Option<(Instant, i64)>,
    video: Option<Track>,
    audio: Option<Track>,
}

impl SenderClock {
    fn track(&mut self, kind: MediaKind) -> &mut Option<Track> {
        match kind {
            MediaKind::Video => &mut self.video,
            MediaKind::Audio => &mut self.audio,
        }
    }

    /// The media clock at `now` (µs), once anything was sent.
    fn media_now(&self, now: Instant) -> Option<i64> {
        let (at, m) = self.origin?;
        let elapsed = i64::try_from(now.saturating_duration_since(at).as_micros()).ok()?;
        Some(m.saturating_add(elapsed))
    }

    /// A packet of `kind` with RTP timestamp `ts` and `payload` bytes went
    /// out at `now`.
    pub(crate) fn on_send(&mut self, now: Instant, kind: MediaKind, ts: u32, payload: usize) {
        let r = rate(kind);
        let as_us = |ts: u32| {
            i64::from(ts)
                .saturating_mul(1_000_000)
                .checked_div(r)
                .unwrap_or(0)
        };
        if self.origin.is_none() {
            self.origin = Some((now, as_us(ts)));
        }
        let media_now = self.media_now(now).unwrap_or(0);
        let slot = self.track(kind);
        let t = slot.get_or_insert_with(|| {
            // The timestamp wraps every 2^32 / rate seconds (13 h at
            // 90 kHz): of its candidates, the media time closest to the
            // clock's (tracks start within seconds of each other).
            let wrap = (1i64 << 32)
                .saturating_mul(1_000_000)
                .checked_div(r)
                .unwrap_or(1);
            let mut m = as_us(ts);
            let k = media_now
                .saturating_sub(m)
                .saturating_add(wrap / 2)
                .checked_div_euclid(wrap)
                .unwrap_or(0);
            m = m.saturating_add(k.saturating_mul(wrap));
            Track {
                ts0: ts,
                media0_us: m,
                packets: 0,
                octets: 0,
            }
        });
        t.packets = t.packets.wrapping_add(1);
        t.octets = t.octets.wrapping_add(payload as u32);
    }

    /// The sender report of `kind` at `now`; `None` before its first packet.
    pub(crate) fn report(&self, now: Instant, kind: MediaKind, wall: &WallClock) -> Option<Report> {
        let t = match kind {
            MediaKind::Video => self.video?,
            MediaKind::Audio => self.audio?,
        };
        let media_now = self.media_now(now)?;
        let ticks = media_now
            .saturating_sub(t.media0_us)
            .saturating_mul(rate(kind))
            / 1_000_000;
        Some(Report {
            ntp_time: wall.ntp(now),
            // RTP time wraps (RFC 3550 5.1): the low 32 bits.
            rtp_time: t.ts0.wrapping_add(ticks as u32),
            packet_count: t.packets,
            octet_count: t.octets,
        })
    }
}

/// The wall-clock time (NTP, as seconds) a receiver maps `rtp` to, given a
/// report of that track: what RFC 3550 6.4.1 receivers do.
#[cfg(test)]
pub(crate) fn receiver_map(report: &Report, rtp: u32, kind: MediaKind) -> f64 {
    let ntp = report.ntp_time as f64 / 4_294_967_296.0;
    let diff = f64::from(rtp.wrapping_sub(report.rtp_time) as i32);
    ntp + diff / rate(kind) as f64
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Media time in ms to each track's RTP time.
    fn ts(ms: i64, kind: MediaKind) -> u32 {
        ms.wrapping_mul(rate(kind) / 1000) as u32
    }

    #[test]
    fn both_tracks_map_to_one_epoch_whatever_their_send_delay() {
        let t0 = Instant::now();
        let wall = WallClock::new(t0);
        let mut c = SenderClock::default();
        // Video leaves 5 ms after its media time; audio (through an
        // encoder) 80 ms after. Nothing waits for the other.
        for ms in (0..3000i64).step_by(20) {
            let at = |d: i64| t0 + Duration::from_millis((ms + d) as u64);
            c.on_send(
                at(5),
                MediaKind::Video,
                ts(1_000 + ms, MediaKind::Video),
                1000,
            );
            c.on_send(
                at(80),
                MediaKind::Audio,
                ts(1_000 + ms, MediaKind::Audio),
                100,
            );
        }
        let now = t0 + Duration::from_millis(3100);
        let v = c.report(now, MediaKind::Video, &wall).unwrap();
        let a = c.report(now, MediaKind::Audio, &wall).unwrap();
        assert_eq!(v.packet_count, 150);
        assert_eq!(a.octet_count, 15_000);
        assert_eq!(v.ntp_time, a.ntp_time, "both report the send time");
        // The same media time maps to the same wall-clock time (< 1 ms).
        for ms in [1_000i64, 2_000, 3_500] {
            let tv = receiver_map(&v, ts(ms, MediaKind::Video), MediaKind::Video);
            let ta = receiver_map(&a, ts(ms, MediaKind::Audio), MediaKind::Audio);
            assert!((tv - ta).abs() < 0.001, "{ms}: video {tv} audio {ta}");
        }
    }

    #[test]
    fn a_wrapped_timestamp_keeps_its_media_time() {
        let t0 = Instant::now();
        let wall = WallClock::new(t0);
        let mut c = SenderClock::default();
        // 14 h into a stream: video's 90 kHz clock wrapped once, audio's
        // 48 kHz one has not.
        let ms = 14 * 3_600_000i64;
        c.on_send(t0, MediaKind::Audio, ts(ms, MediaKind::Audio), 10);
        c.on_send(
            t0 + Duration::from_millis(30),
            MediaKind::Video,
            ts(ms, MediaKind::Video),
            10,
        );
        let now = t0 + Duration::from_secs(1);
        let v = c.report(now, MediaKind::Video, &wall).unwrap();
        let a = c.report(now, MediaKind::Audio, &wall).unwrap();
        let tv = receiver_map(&v, ts(ms + 500, MediaKind::Video), MediaKind::Video);
        let ta = receiver_map(&a, ts(ms + 500, MediaKind::Audio), MediaKind::Audio);
        assert!((tv - ta).abs() < 0.001, "video {tv} audio {ta}");
    }

    #[test]
    fn ntp_is_the_wall_clock() {
        let t0 = Instant::now();
        let wall = WallClock::new(t0);
        let ntp = wall.ntp(t0 + Duration::from_millis(1500));
        let unix = SystemTime::now().duration_since(UNIX_EPOCH).unwrap();
        let secs = (ntp >> 32) - NTP_UNIX_OFFSET;
        assert!(
            secs.abs_diff(unix.as_secs()) <= 3,
            "{secs} vs {}",
            unix.as_secs()
        );
        assert!(wall.ntp(t0 + Duration::from_millis(1)) > wall.ntp(t0));
    }
}
