//! Opus to AAC-LC: decode (libopus, RFC 6716), encode (syom's AAC-LC
//! encoder, ISO/IEC 14496-3 4), for players that know AAC only (RTMP and
//! FLV players of a WHIP stream). Both run at 48 kHz, so nothing is
//! resampled.
//!
//! Timing model (the mirror of [`crate::transcode`]'s):
//! - The first Opus packet after a (re)start anchors the timeline: its
//!   timestamp, in 48 kHz ticks, is sample 0 of the AAC encoder's input.
//! - AAC frame `k` after the anchor decodes to the input's samples
//!   `[(k - 1) * 1024, k * 1024)`: the encoder's 1024 samples of priming
//!   ([`OpusToAac::delay`]). Its timestamp is `anchor + (k - 1) * 1024`, the
//!   time of its audio, so a player needs no edit list: frame 0 is the
//!   decoder's pre-roll, stamped one frame before the anchor.
//! - Each packet's timestamp is compared with the time the sample count
//!   predicts. Within one Opus frame: jitter, ignored. Later by up to
//!   [`AacConfig::max_gap_fill`]: the gap is concealed (libopus packet-loss
//!   concealment, which fades to silence). Later than that, or earlier by
//!   more than a frame: the encoder is flushed and the timeline restarts at
//!   the packet.
//!
//! ```
//! use rts_audio::opus_to_aac::{AacConfig, OpusToAac};
//! use rts_opus_sys::{Application, Encoder};
//!
//! let mut opus = Encoder::new(48_000, 2, Application::Audio)?;
//! let mut to_aac = OpusToAac::new(AacConfig::default())?;
//! let pcm = vec![0.25f32; 960 * 2]; // 20 ms of stereo
//! let mut packet = [0u8; 1275];
//! let mut frames = Vec::new();
//! for k in 0..10u64 {
//!     let n = opus.encode_float(&pcm, &mut packet)?;
//!     to_aac.push(&packet[..n], 1_000 + k * 960);
//!     frames.extend(std::iter::from_fn(|| to_aac.pop()));
//! }
//! // 200 ms in, 9 frames of 1024 out; the first is the pre-roll.
//! assert_eq!(frames.len(), 9);
//! assert_eq!(frames[0].timestamp, 1_000 - 1024);
//! assert_eq!(frames[1].timestamp, 1_000);
//! // The FLV / MP4 decoder configuration: AAC-LC, 48 kHz, stereo.
//! assert_eq!(&to_aac.audio_specific_config()[..], [0x11, 0x90]);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

use std::collections::VecDeque;

use bytes::Bytes;
use rts_opus_sys::Decoder;

use crate::Error;

/// Samples per AAC-LC frame.
pub const AAC_FRAME: u32 = 1024;
/// Opus's and this module's clock: 48 kHz.
pub const RATE: u32 = 48_000;
/// The longest Opus packet: 120 ms (RFC 6716 3.2.5).
const MAX_OPUS_SAMPLES: usize = 5760;
const CHANNELS: usize = 2;
/// Events kept for [`OpusToAac::poll_event`]; later ones are dropped.
const MAX_EVENTS: usize = 64;

/// Encoder settings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AacConfig {
    /// AAC bit rate in bit/s, 16 000 to 320 000 (default 128 000, stereo).
    pub bitrate: u32,
    /// Gaps up to this many 48 kHz samples are concealed; longer ones
    /// restart the timeline (default 48 000, 1 s).
    pub max_gap_fill: u64,
    /// AAC frames kept for [`OpusToAac::pop`] before the oldest is dropped
    /// (default 470, 10 s).
    pub max_queued_frames: usize,
}

impl Default for AacConfig {
    fn default() -> Self {
        Self {
            bitrate: 128_000,
            max_gap_fill: u64::from(RATE),
            max_queued_frames: 470,
        }
    }
}

/// One AAC-LC access unit (a raw `raw_data_block`, as FLV and MP4 carry it).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AacFrame {
    /// The access unit.
    pub data: Bytes,
    /// The time of its audio in 48 kHz ticks, on the input's clock (may be
    /// negative for the pre-roll frame of a stream that starts at 0).
    pub timestamp: i64,
}

/// Something the caller may want to log or count.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Event {
    /// A packet did not decode; it was concealed.
    DecodeError {
        /// Its timestamp.
        timestamp: u64,
        /// What libopus said.
        error: String,
    },
    /// A gap in the input was concealed.
    GapFilled {
        /// 48 kHz samples concealed.
        samples: u64,
    },
    /// The timeline restarted at this timestamp (a jump in the input).
    Restart {
        /// The packet's timestamp.
        timestamp: u64,
    },
    /// The frame queue was full; this many old frames were dropped.
    Overflow {
        /// Frames dropped.
        dropped: u64,
    },
}

/// Counters for metrics.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Stats {
    /// Opus packets pushed.
    pub packets: u64,
    /// Packets that did not decode.
    pub decode_errors: u64,
    /// AAC frames produced.
    pub frames: u64,
    /// Timeline restarts.
    pub restarts: u64,
    /// Samples concealed for gaps.
    pub gap_samples: u64,
}

/// The Opus to AAC transcoder. See the module docs.
pub struct OpusToAac {
    config: AacConfig,
    decoder: Decoder,
    encoder: syom::Encoder,
    asc: Bytes,
    /// Interleaved decoder output, one packet.
    pcm: Vec<f32>,
    /// The same, planar and clamped to [-1, 1] (the encoder refuses more).
    planes: [Vec<f32>; CHANNELS],
    /// 48 kHz time of the encoder's sample 0, and samples fed since.
    anchor: Option<u64>,
    fed: u64,
    /// AAC frames emitted since the anchor.
    emitted: u64,
    /// Duration of the last packet (for concealment), in samples.
    last_duration: usize,
    out: VecDeque<AacFrame>,
    events: VecDeque<Event>,
    stats: Stats,
}

impl std::fmt::Debug for OpusToAac {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OpusToAac")
            .field("config", &self.config)
            .field("anchor", &self.anchor)
            .field("fed", &self.fed)
            .field("stats", &self.stats)
            .finish_non_exhaustive()
    }
}

fn encoder(bitrate: u32) -> Result<syom::Encoder, Error> {
    let opts = syom::EncodeOptions::raw().with_bitrate_bps(bitrate);
    syom::Encoder::new(RATE, CHANNELS, &opts).map_err(|e| Error::Encode(e.to_string()))
}

impl OpusToAac {
    /// A transcoder, stereo at 48 kHz.
    pub fn new(config: AacConfig) -> Result<Self, Error> {
        if !(16_000..=320_000).contains(&config.bitrate) {
            return Err(Error::InvalidSetting(
                "AAC bit rate must be 16000 to 320000 bit/s",
            ));
        }
        if config.max_queued_frames == 0 {
            return Err(Error::InvalidSetting(
                "max_queued_frames must be at least 1",
            ));
        }
        let decoder =
            Decoder::new(RATE, CHANNELS as u8).map_err(|e| Error::Decode(e.to_string()))?;
        let encoder = encoder(config.bitrate)?;
        let asc = Bytes::copy_from_slice(encoder.asc());
        Ok(Self {
            config,
            decoder,
            encoder,
            asc,
            pcm: vec![0.0; MAX_OPUS_SAMPLES * CHANNELS],
            planes: [Vec::new(), Vec::new()],
            anchor: None,
            fed: 0,
            emitted: 0,
            last_duration: 960,
            out: VecDeque::new(),
            events: VecDeque::new(),
            stats: Stats::default(),
        })
    }

    /// The AudioSpecificConfig of the output (ISO/IEC 14496-3 1.6.2.1): the
    /// body of an FLV AAC sequence header, or an MP4 `esds`.
    pub fn audio_specific_config(&self) -> Bytes {
        self.asc.clone()
    }

    /// The encoder's priming in 48 kHz samples (already taken out of the
    /// output timestamps; for an MP4 edit list).
    pub fn delay(&self) -> u32 {
        AAC_FRAME
    }

    /// Counters.
    pub fn stats(&self) -> Stats {
        self.stats
    }

    /// The next AAC frame, in order.
    pub fn pop(&mut self) -> Option<AacFrame> {
        self.out.pop_front()
    }

    /// The next event.
    pub fn poll_event(&mut self) -> Option<Event> {
        self.events.pop_front()
    }

    /// Decodes one Opus packet with its timestamp in 48 kHz ticks and
    /// encodes what it holds. A packet that does not decode is concealed
    /// and reported as an [`Event`]; nothing here fails on input.
    pub fn push(&mut self, packet: &[u8], timestamp: u64) {
        self.stats.packets = self.stats.packets.saturating_add(1);
        let frame = self.last_duration as u64;
        match self.anchor.map(|a| a.saturating_add(self.fed)) {
            None => self.restart(timestamp),
            Some(expected) if timestamp.saturating_add(frame) < expected => {
                self.event(Event::Restart { timestamp });
                self.flush();
                self.restart(timestamp);
            }
            Some(expected) if timestamp > expected.saturating_add(frame) => {
                let gap = timestamp.saturating_sub(expected);
                if gap > self.config.max_gap_fill {
                    self.event(Event::Restart { timestamp });
                    self.flush();
                    self.restart(timestamp);
                } else {
                    self.conceal(gap);
                }
            }
            Some(_) => {}
        }
        match self.decoder.decode_float(packet, &mut self.pcm) {
            Ok(n) => {
                self.last_duration = n.max(1);
                self.encode(n);
            }
            Err(e) => {
                self.stats.decode_errors = self.stats.decode_errors.saturating_add(1);
                self.event(Event::DecodeError {
                    timestamp,
                    error: e.to_string(),
                });
                self.conceal(self.last_duration as u64);
            }
        }
    }

    /// Encodes what is buffered (the last frame padded with silence) and
    /// starts a new timeline at the next packet.
    pub fn flush(&mut self) {
        if self.fed > 0 {
            let mut done = Vec::new();
            let r = self.encoder.finish(|f| {
                done.push(Bytes::copy_from_slice(f.payload));
                Ok(())
            });
            for data in done {
                self.emit(data);
            }
            if let Err(e) = r {
                self.event(Event::DecodeError {
                    timestamp: self.anchor.unwrap_or(0).saturating_add(self.fed),
                    error: format!("aac encoder: {e}"),
                });
            }
        }
        self.anchor = None;
    }

    fn restart(&mut self, timestamp: u64) {
        if self.fed > 0 || self.emitted > 0 {
            self.stats.restarts = self.stats.restarts.saturating_add(1);
        }
        if let Err(e) = self.encoder.reset() {
            // A reset cannot fail on a valid encoder; rebuild it if it does.
            self.event(Event::DecodeError {
                timestamp,
                error: format!("aac encoder reset: {e}"),
            });
            if let Ok(fresh) = encoder(self.config.bitrate) {
                self.encoder = fresh;
            }
        }
        self.anchor = Some(timestamp);
        self.fed = 0;
        self.emitted = 0;
    }

    /// Conceals `samples` of missing audio with libopus's loss concealment,
    /// at most one Opus frame per call to the decoder.
    fn conceal(&mut self, samples: u64) {
        self.stats.gap_samples = self.stats.gap_samples.saturating_add(samples);
        self.event(Event::GapFilled { samples });
        let mut left = samples;
        while left > 0 {
            // libopus conceals in multiples of 2.5 ms (120 samples).
            let want = (left.min(self.last_duration as u64) as usize).max(120) / 120;
            let want = want.saturating_mul(120);
            let end = want.saturating_mul(CHANNELS).min(self.pcm.len());
            let n = self
                .pcm
                .get_mut(..end)
                .and_then(|buf| self.decoder.decode_float(&[], buf).ok())
                .unwrap_or(0);
            if n == 0 {
                // Concealment refused: silence instead.
                let n = (left.min(MAX_OPUS_SAMPLES as u64)) as usize;
                self.pcm
                    .iter_mut()
                    .take(n.saturating_mul(CHANNELS))
                    .for_each(|s| *s = 0.0);
                self.encode(n);
                left = left.saturating_sub(n as u64);
            } else {
                self.encode(n);
                left = left.saturating_sub(n as u64);
            }
        }
    }

    /// Feeds the first `n` decoded samples per channel to the encoder.
    fn encode(&mut self, n: usize) {
        for (c, plane) in self.planes.iter_mut().enumerate() {
            plane.clear();
            plane.extend(self.pcm.iter().skip(c).step_by(CHANNELS).take(n).map(|s| {
                if s.is_finite() {
                    s.clamp(-1.0, 1.0)
                } else {
                    0.0
                }
            }));
        }
        let [l, r] = &self.planes;
        let mut done = Vec::new();
        let fed = self.encoder.feed(&[l, r], |f| {
            done.push(Bytes::copy_from_slice(f.payload));
            Ok(())
        });
        for data in done {
            self.emit(data);
        }
        match fed {
            Ok(_) => self.fed = self.fed.saturating_add(n as u64),
            Err(e) => {
                // The encoder is in its failed state: start it again here.
                let timestamp = self.anchor.unwrap_or(0).saturating_add(self.fed);
                self.event(Event::DecodeError {
                    timestamp,
                    error: format!("aac encoder: {e}"),
                });
                self.restart(timestamp);
            }
        }
    }

    fn event(&mut self, e: Event) {
        if self.events.len() < MAX_EVENTS {
            self.events.push_back(e);
        }
    }

    fn emit(&mut self, data: Bytes) {
        let anchor = i64::try_from(self.anchor.unwrap_or(0)).unwrap_or(i64::MAX);
        let k = i64::try_from(self.emitted).unwrap_or(i64::MAX);
        let timestamp =
            anchor.saturating_add(k.saturating_sub(1).saturating_mul(i64::from(AAC_FRAME)));
        self.emitted = self.emitted.saturating_add(1);
        self.stats.frames = self.stats.frames.saturating_add(1);
        if self.out.len() >= self.config.max_queued_frames {
            let dropped = self
                .out
                .len()
                .saturating_add(1)
                .saturating_sub(self.config.max_queued_frames);
            self.out.drain(..dropped);
            self.event(Event::Overflow {
                dropped: dropped as u64,
            });
        }
        self.out.push_back(AacFrame { data, timestamp });
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rts_opus_sys::{Application, Encoder};
    use symphonia_codec_aac::AacDecoder;
    use symphonia_core::codecs::audio::well_known::CODEC_ID_AAC;
    use symphonia_core::codecs::audio::{AudioCodecParameters, AudioDecoder, AudioDecoderOptions};
    use symphonia_core::packet::PacketRef;
    use symphonia_core::units::{Duration as SymDuration, Timestamp as SymTimestamp};

    /// 20 ms Opus packets of a stereo tone (left `freq`, right `freq * 2`),
    /// and the audio a libopus decoder makes of them (the reference).
    fn opus_tone(freq: f32, packets: usize) -> (Vec<Vec<u8>>, Vec<f32>) {
        let mut enc = Encoder::new(RATE, 2, Application::Audio).unwrap();
        enc.set_bitrate(128_000).unwrap();
        let mut dec = Decoder::new(RATE, 2).unwrap();
        let mut out = Vec::new();
        let mut reference = Vec::new();
        let mut pcm = vec![0f32; 960 * 2];
        for k in 0..packets {
            let frame: Vec<f32> = (0..960)
                .flat_map(|i| {
                    let t = (k * 960 + i) as f32 / RATE as f32;
                    let w = std::f32::consts::TAU * freq * t;
                    [w.sin() * 0.4, (2.0 * w).sin() * 0.3]
                })
                .collect();
            let mut buf = [0u8; 1275];
            let n = enc.encode_float(&frame, &mut buf).unwrap();
            let got = dec.decode_float(&buf[..n], &mut pcm).unwrap();
            reference.extend_from_slice(&pcm[..got * 2]);
            out.push(buf[..n].to_vec());
        }
        (out, reference)
    }

    fn decode_aac(asc: &[u8], frames: &[AacFrame]) -> Vec<f32> {
        let mut params = AudioCodecParameters::new();
        params
            .for_codec(CODEC_ID_AAC)
            .with_extra_data(asc.to_vec().into_boxed_slice());
        let mut dec = AacDecoder::try_new(&params, &AudioDecoderOptions::default()).unwrap();
        let mut pcm = Vec::new();
        let mut buf = Vec::new();
        for f in frames {
            let p = PacketRef::new(0, SymTimestamp::new(0), SymDuration::new(1024), &f.data);
            let b = dec.decode_ref(&p).unwrap();
            assert_eq!(b.frames(), 1024);
            b.copy_to_vec_interleaved::<f32>(&mut buf);
            pcm.extend_from_slice(&buf);
        }
        pcm
    }

    fn snr_db(reference: &[f32], got: &[f32]) -> f64 {
        let (mut s, mut e) = (0f64, 0f64);
        for (r, g) in reference.iter().zip(got) {
            s += f64::from(*r) * f64::from(*r);
            e += f64::from(r - g) * f64::from(r - g);
        }
        10.0 * (s / e.max(1e-12)).log10()
    }

    fn run(t: &mut OpusToAac, packets: &[Vec<u8>], start: u64) -> Vec<AacFrame> {
        let mut out = Vec::new();
        for (k, p) in packets.iter().enumerate() {
            t.push(p, start + k as u64 * 960);
            out.extend(std::iter::from_fn(|| t.pop()));
        }
        out
    }

    #[test]
    fn a_tone_survives_and_each_frame_is_stamped_with_the_time_of_its_audio() {
        let (packets, reference) = opus_tone(440.0, 150); // 3 s
        let mut t = OpusToAac::new(AacConfig::default()).unwrap();
        let frames = run(&mut t, &packets, 90_000);
        assert_eq!(frames.len(), 150 * 960 / 1024);
        for (k, f) in frames.iter().enumerate() {
            assert_eq!(f.timestamp, 90_000 + (k as i64 - 1) * 1024, "frame {k}");
        }
        // Frame 1 carries the input's sample 0: compare from there on.
        let pcm = decode_aac(&t.audio_specific_config(), &frames);
        let aligned = &pcm[1024 * 2..];
        let snr = snr_db(&reference[..aligned.len()], aligned);
        assert!(snr > 35.0, "SNR {snr:.1} dB");
        // One frame off would be noise: the timestamps are what aligns it.
        let off = snr_db(
            &reference[..aligned.len() - 2048],
            &pcm[..aligned.len() - 2048],
        );
        assert!(off < 5.0, "misaligned SNR {off:.1} dB");
        assert_eq!(t.stats().packets, 150);
        assert_eq!(t.poll_event(), None);
    }

    #[test]
    fn lost_packets_are_concealed_on_one_timeline() {
        let (packets, _) = opus_tone(440.0, 100);
        let mut t = OpusToAac::new(AacConfig::default()).unwrap();
        let mut frames = Vec::new();
        for (k, p) in packets.iter().enumerate() {
            if (40..50).contains(&k) {
                continue; // 200 ms lost
            }
            t.push(p, k as u64 * 960);
            frames.extend(std::iter::from_fn(|| t.pop()));
        }
        assert_eq!(t.poll_event(), Some(Event::GapFilled { samples: 9600 }));
        assert_eq!(frames.len(), 100 * 960 / 1024);
        assert!(
            frames
                .windows(2)
                .all(|w| w[1].timestamp - w[0].timestamp == 1024)
        );
        assert_eq!(t.stats().gap_samples, 9600);
    }

    #[test]
    fn a_jump_restarts_the_timeline_at_the_new_time() {
        let (packets, _) = opus_tone(440.0, 60);
        let mut t = OpusToAac::new(AacConfig::default()).unwrap();
        let first = run(&mut t, &packets[..30], 0);
        // Ten seconds later (past max_gap_fill), then back to the start.
        let later = run(&mut t, &packets[30..], 480_000);
        assert_eq!(t.poll_event(), Some(Event::Restart { timestamp: 480_000 }));
        // The flushed tail of the first timeline, then the new one.
        let tail: Vec<_> = later
            .iter()
            .take_while(|f| f.timestamp < 480_000 - 1024)
            .collect();
        assert_eq!(first.len() + tail.len(), 30 * 960 / 1024 + 2);
        let new: Vec<_> = later[tail.len()..].iter().map(|f| f.timestamp).collect();
        assert_eq!(new.first(), Some(&(480_000 - 1024)));
        assert!(new.windows(2).all(|w| w[1] - w[0] == 1024));
        let back = run(&mut t, &packets[..10], 0);
        assert_eq!(t.poll_event(), Some(Event::Restart { timestamp: 0 }));
        assert!(back.iter().any(|f| f.timestamp == -1024));
        assert_eq!(t.stats().restarts, 2);
    }

    #[test]
    fn garbage_is_concealed_reported_and_the_stream_goes_on() {
        let (packets, _) = opus_tone(440.0, 50);
        let mut t = OpusToAac::new(AacConfig::default()).unwrap();
        let mut frames = run(&mut t, &packets[..20], 0);
        // A TOC byte announcing more frames than the packet holds, then
        // bytes from nowhere.
        t.push(&[0xff, 0xff, 0xff], 20 * 960);
        t.push(&[0x03; 400], 21 * 960);
        for (k, p) in packets.iter().enumerate().skip(22) {
            t.push(p, k as u64 * 960);
        }
        frames.extend(std::iter::from_fn(|| t.pop()));
        let events: Vec<_> = std::iter::from_fn(|| t.poll_event()).collect();
        assert!(
            events
                .iter()
                .any(|e| matches!(e, Event::DecodeError { .. })),
            "{events:?}"
        );
        assert_eq!(frames.len(), 50 * 960 / 1024);
        assert!(
            frames
                .windows(2)
                .all(|w| w[1].timestamp - w[0].timestamp == 1024)
        );
    }

    #[test]
    fn the_queue_and_the_settings_are_bounded() {
        let (packets, _) = opus_tone(440.0, 50);
        let mut t = OpusToAac::new(AacConfig {
            max_queued_frames: 4,
            ..AacConfig::default()
        })
        .unwrap();
        for (k, p) in packets.iter().enumerate() {
            t.push(p, k as u64 * 960);
        }
        let kept: Vec<_> = std::iter::from_fn(|| t.pop()).collect();
        assert_eq!(kept.len(), 4);
        assert!(matches!(t.poll_event(), Some(Event::Overflow { .. })));
        for bitrate in [0, 8_000, 1_000_000] {
            let c = AacConfig {
                bitrate,
                ..AacConfig::default()
            };
            assert!(matches!(OpusToAac::new(c), Err(Error::InvalidSetting(_))));
        }
    }
}
