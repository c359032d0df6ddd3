//! rts-probe's audio: real AAC frames looped from a fixture on the publish
//! side; on the play side the fixture's tone bursts found again in the
//! decoded Opus, and each track's RTP time mapped through its sender
//! reports, which gives the A/V offset a receiver sees after lip-sync
//! mapping and the audio latency (see `data/README.md` for the fixture).

use std::collections::HashMap;

use anyhow::{Context, bail};
use bytes::{Bytes, BytesMut};
use rts_audio::adts;

/// The fixture's sample rate, and Opus's RTP clock.
pub(crate) const RATE: u64 = 48_000;
/// Samples per AAC frame.
pub(crate) const FRAME: u64 = 1024;
/// Decoded sample of the first burst: FFmpeg's 1024 samples of encoder
/// priming, then 0.5 s.
const FIRST_BURST: u64 = 1024 + 24_000;
/// One burst a second, eight per loop.
const BURST_EVERY: u64 = RATE;
const BURSTS_PER_LOOP: u64 = 8;
/// A burst starts where the decoded signal (amplitude 0.5) first passes
/// this after at least [`QUIET`] samples below it (the noise is ±0.004).
const THRESHOLD: f32 = 0.25;
const QUIET: u32 = 2_400;

const FIXTURE: &[u8] = include_bytes!("../data/probe-bursts-48k-stereo.aac");

/// The fixture's frames, sent in a loop.
pub(crate) struct AacLoop {
    /// The AudioSpecificConfig (the FLV AAC sequence header body).
    pub(crate) asc: Bytes,
    frames: Vec<Bytes>,
}

impl AacLoop {
    pub(crate) fn load() -> anyhow::Result<AacLoop> {
        let mut input = BytesMut::from(FIXTURE);
        let mut decoder = adts::Decoder::new();
        let mut frames = Vec::new();
        let mut asc = None;
        while let Some(frame) = decoder.decode(&mut input).context("probe AAC fixture")? {
            let config = frame.header.to_asc();
            if config.sample_rate() != RATE as u32 {
                bail!("probe AAC fixture: {} Hz, not 48 kHz", config.sample_rate());
            }
            asc.get_or_insert_with(|| Bytes::from(config.to_bytes()));
            frames.push(frame.payload);
        }
        let Some(asc) = asc else {
            bail!("probe AAC fixture: no frames");
        };
        Ok(AacLoop { asc, frames })
    }

    /// Frame `i` of the endless loop.
    pub(crate) fn frame(&self, i: u64) -> Bytes {
        let n = self.frames.len().max(1) as u64;
        self.frames
            .get((i % n) as usize)
            .cloned()
            .unwrap_or_default()
    }

    /// The FLV timestamp of frame `i`, in milliseconds.
    pub(crate) fn ts_ms(i: u64) -> u32 {
        (i * FRAME * 1000 / RATE) as u32
    }

    /// Decoded sample positions of the bursts in the first `frames` frames.
    fn bursts(&self, frames: u64) -> impl Iterator<Item = u64> + use<> {
        let loop_samples = self.frames.len() as u64 * FRAME;
        let end = frames * FRAME;
        (0..)
            .map(move |n| {
                let (l, k) = (n / BURSTS_PER_LOOP, n % BURSTS_PER_LOOP);
                l * loop_samples + FIRST_BURST + k * BURST_EVERY
            })
            .take_while(move |&p| p < end)
    }
}

/// A burst found in the received audio.
struct Onset {
    rtp: u32,
    arrival_us: u64,
}

/// Decodes the received Opus and finds the bursts.
pub(crate) struct AudioReceiver {
    decoder: rts_opus_sys::Decoder,
    pcm: Vec<f32>,
    quiet: u32,
    onsets: Vec<Onset>,
    /// (RTP time, samples, arrival) of every packet decoded.
    received: Vec<(u32, u32, u64)>,
    pub(crate) packets: u64,
    pub(crate) decode_errors: u64,
}

impl AudioReceiver {
    pub(crate) fn new() -> anyhow::Result<AudioReceiver> {
        Ok(AudioReceiver {
            decoder: rts_opus_sys::Decoder::new(RATE as u32, 2)
                .map_err(|e| anyhow::anyhow!("opus decoder: {e}"))?,
            // 120 ms, the longest Opus packet, stereo.
            pcm: vec![0.0; 5_760 * 2],
            quiet: 0,
            onsets: Vec::new(),
            received: Vec::new(),
            packets: 0,
            decode_errors: 0,
        })
    }

    /// One received Opus packet (in order; loopback does not reorder).
    pub(crate) fn packet(&mut self, rtp: u32, payload: &[u8], arrival_us: u64) {
        self.packets += 1;
        let Ok(n) = self.decoder.decode_float(payload, &mut self.pcm) else {
            self.decode_errors += 1;
            return;
        };
        self.received.push((rtp, n as u32, arrival_us));
        for (j, frame) in self.pcm.chunks_exact(2).take(n).enumerate() {
            let loud = frame[0].abs() >= THRESHOLD;
            if loud && self.quiet >= QUIET {
                self.onsets.push(Onset {
                    rtp: rtp.wrapping_add(j as u32),
                    arrival_us,
                });
            }
            self.quiet = if loud {
                0
            } else {
                self.quiet.saturating_add(1)
            };
        }
    }
}

/// A track's latest sender report: RTP time `rtp` is NTP `ntp` (32.32).
#[derive(Clone, Copy)]
pub(crate) struct Report {
    pub(crate) ntp: u64,
    pub(crate) rtp: u32,
}

impl Report {
    /// The NTP time, in seconds, of RTP time `rtp` on a `clock` Hz track.
    fn ntp_secs(self, rtp: u32, clock: f64) -> f64 {
        let d = rtp.wrapping_sub(self.rtp) as i32;
        self.ntp as f64 / 4_294_967_296.0 + f64::from(d) / clock
    }
}

/// What the play side saw of both tracks' timing.
#[derive(Default)]
pub(crate) struct SyncTally {
    /// ssrc of each track, from its packets.
    pub(crate) video_ssrc: Option<u32>,
    pub(crate) audio_ssrc: Option<u32>,
    reports: HashMap<u32, Report>,
    /// (RTP time, media time in ms, arrival) of video frames with a stamp.
    video: Vec<(u32, u32, u64)>,
}

/// The audio figures, all in milliseconds.
pub(crate) struct AudioFigures {
    pub(crate) bursts: usize,
    /// Per Opus packet: its arrival minus the send time of the AAC frames
    /// its samples came from (averaged over its samples, so every phase of
    /// the AAC and Opus framing counts alike). `None` without a burst to
    /// tie the RTP time to the fixture's samples.
    pub(crate) latency: Option<Vec<f64>>,
    /// Per burst: its NTP time (audio sender reports) minus the NTP time
    /// of video at the same media time (video sender reports). `None`
    /// without reports of both tracks.
    pub(crate) av_offset: Option<Vec<f64>>,
    /// Median over bursts of (arrival - media time) minus the same over
    /// video frames: how much later audio arrives than video of the same
    /// media time (what a receiver's jitter buffer holds video back for).
    pub(crate) audio_behind_video: Option<f64>,
}

impl SyncTally {
    pub(crate) fn report(&mut self, ssrc: u32, ntp: u64, rtp: u32) {
        // Bounded: only the tracks' own ssrcs are kept.
        if Some(ssrc) == self.video_ssrc || Some(ssrc) == self.audio_ssrc {
            self.reports.insert(ssrc, Report { ntp, rtp });
        }
    }

    /// A received video frame whose stamp the publisher sent at media time
    /// `media_ms`.
    pub(crate) fn video_frame(&mut self, rtp: u32, media_ms: u32, arrival_us: u64) {
        self.video.push((rtp, media_ms, arrival_us));
    }

    /// Pairs each burst found with the one sent (the latest sent before it
    /// arrived: bursts are 1 s apart), `sent_us[i]` being the send time of
    /// AAC frame `i`.
    pub(crate) fn audio(&self, aac: &AacLoop, rx: &AudioReceiver, sent_us: &[u64]) -> AudioFigures {
        let bursts: Vec<(u64, u64)> = aac
            .bursts(sent_us.len() as u64)
            .filter_map(|p| sent_us.get((p / FRAME) as usize).map(|&s| (p, s)))
            .collect();
        let video_report = self.video_ssrc.and_then(|s| self.reports.get(&s)).copied();
        let audio_report = self.audio_ssrc.and_then(|s| self.reports.get(&s)).copied();
        // The video track's media-time -> NTP epoch, median over frames.
        let video_epoch = video_report.and_then(|r| {
            median(
                self.video
                    .iter()
                    .map(|&(rtp, ms, _)| r.ntp_secs(rtp, 90_000.0) - f64::from(ms) / 1000.0)
                    .collect(),
            )
        });
        let video_lag = median(
            self.video
                .iter()
                .map(|&(_, ms, at)| at as f64 / 1e6 - f64::from(ms) / 1000.0)
                .collect(),
        );
        let mut offsets = Vec::new();
        let mut audio_lag = Vec::new();
        // RTP time minus decoded sample position, per burst.
        let mut rtp_base = Vec::new();
        for o in &rx.onsets {
            let Some(&(p, _)) = bursts.iter().rev().find(|(_, s)| *s <= o.arrival_us) else {
                continue;
            };
            let media = p as f64 / RATE as f64;
            rtp_base.push(o.rtp.wrapping_sub(p as u32));
            audio_lag.push(o.arrival_us as f64 / 1e6 - media);
            if let (Some(r), Some(epoch)) = (audio_report, video_epoch) {
                offsets.push((r.ntp_secs(o.rtp, RATE as f64) - media - epoch) * 1000.0);
            }
        }
        // The bursts agree on the base unless the stream broke; take the
        // most common one.
        rtp_base.sort_unstable();
        let base = rtp_base.get(rtp_base.len() / 2).copied();
        let latency = base.map(|base| {
            rx.received
                .iter()
                .filter_map(|&(rtp, n, arrival)| {
                    let first = u64::from(rtp.wrapping_sub(base));
                    mean_send_us(sent_us, first, u64::from(n))
                        .map(|sent| (arrival as f64 - sent) / 1000.0)
                })
                .collect()
        });
        AudioFigures {
            bursts: rx.onsets.len(),
            latency,
            av_offset: (audio_report.is_some() && video_epoch.is_some()).then_some(offsets),
            audio_behind_video: median(audio_lag)
                .zip(video_lag)
                .map(|(a, v)| (a - v) * 1000.0),
        }
    }
}

/// The mean send time of decoded samples `first..first + n`, from the send
/// times of the AAC frames they are in; `None` past what was sent.
fn mean_send_us(sent_us: &[u64], first: u64, n: u64) -> Option<f64> {
    if n == 0 {
        return None;
    }
    let (mut sum, mut s) = (0.0, first);
    let end = first + n;
    while s < end {
        let frame = s / FRAME;
        let next = ((frame + 1) * FRAME).min(end);
        sum += *sent_us.get(frame as usize)? as f64 * (next - s) as f64;
        s = next;
    }
    Some(sum / n as f64)
}

fn median(mut v: Vec<f64>) -> Option<f64> {
    v.sort_by(f64::total_cmp);
    v.get(v.len() / 2).copied()
}
