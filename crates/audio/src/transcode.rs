//! AAC to Opus: decode (symphonia, AAC-LC), resample to 48 kHz (rubato),
//! encode (Opus, RFC 6716), with timestamps counted in samples.
//!
//! The loop is at the end of this text. Timing model:
//! - The first access unit after a (re)start anchors the timeline: its pts,
//!   in 48 kHz ticks, is the timestamp of the first Opus packet. Packet `k`
//!   after the anchor has timestamp `anchor + k * frame`, so timestamps never
//!   drift from the input: they are the input's sample count, resampled.
//! - The audio of a packet with timestamp `t` is the source's audio at
//!   `t - delay()` (resampler delay plus Opus lookahead): an Ogg writer puts
//!   `delay()` in OpusHead's pre-skip, a WebRTC sender subtracts it for lip
//!   sync.
//! - Each access unit's pts is compared with the time the sample count
//!   predicts. Within one AAC frame: jitter, ignored (FLV's millisecond
//!   timestamps). Later by up to [`Config::max_gap_fill`]: the gap is filled
//!   with silence. Later than that, or earlier by more than a frame: the
//!   pipeline is drained and the timeline restarts at the new pts (never
//!   before the end of the last packet: output timestamps are monotonic).
//!
//! A synchronous `push`/`pop` object (CPU-heavy: run it off the async
//! runtime). Time is passed in, nothing reads a clock:
//!
//! ```
//! use std::time::Duration;
//! use bytes::BytesMut;
//! use rts_audio::{adts, transcode::{AacToOpus, Config}};
//!
//! let file = std::fs::read(concat!(env!("CARGO_MANIFEST_DIR"), "/tests/data/tone440_48k_mono.aac"))?;
//! let mut input = BytesMut::from(&file[..]);
//! let mut frames = adts::Decoder::new();
//! let mut aac_to_opus = AacToOpus::new(Config::default())?;
//! let mut packets = Vec::new();
//! let mut pts = Duration::ZERO;
//! while let Some(frame) = frames.decode(&mut input)? {
//!     // From FLV: set_config with the sequence header, push each raw AAC frame.
//!     aac_to_opus.set_config(&frame.header.to_asc().to_bytes())?;
//!     aac_to_opus.push(frame.payload, pts)?;
//!     pts += Duration::from_micros(1024 * 1_000_000 / 48_000);
//!     while let Some(packet) = aac_to_opus.pop() {
//!         packets.push(packet); // packet.timestamp is in 48 kHz ticks
//!     }
//!     while let Some(event) = aac_to_opus.poll_event() {
//!         eprintln!("{event:?}"); // corrupt units, gaps, restarts
//!     }
//! }
//! aac_to_opus.flush()?;
//! packets.extend(std::iter::from_fn(|| aac_to_opus.pop()));
//! assert_eq!(packets[1].timestamp - packets[0].timestamp, 960);
//! // Lip sync: the audio of packet t is the source's audio at t - delay().
//! assert_eq!(aac_to_opus.delay(), 312); // 48 kHz in: Opus lookahead only
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!

use std::collections::VecDeque;
use std::time::Duration;

use bytes::Bytes;
use rubato::audioadapter_buffers::direct::InterleavedSlice;
use rubato::{Fft, FixedSync, Resampler};
use symphonia_codec_aac::AacDecoder;
use symphonia_core::codecs::audio::well_known::CODEC_ID_AAC;
use symphonia_core::codecs::audio::{AudioCodecParameters, AudioDecoder, AudioDecoderOptions};
use symphonia_core::packet::PacketRef;
use symphonia_core::units::{Duration as SymDuration, Timestamp as SymTimestamp};

use crate::Error;
use crate::asc::{AudioSpecificConfig, Profile};

/// Opus's clock: every Opus timestamp is in 48 kHz samples (RFC 7587 4.1).
pub const OPUS_RATE: u32 = 48_000;

/// Largest Opus packet (RFC 6716 3.4: 1275 bytes per frame, up to 3 frames
/// for 60 ms).
const MAX_PACKET: usize = 4000;

/// Opus frame duration.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum FrameDuration {
    /// 10 ms (480 samples).
    Ms10,
    /// 20 ms (960 samples), the WebRTC default.
    #[default]
    Ms20,
    /// 40 ms.
    Ms40,
    /// 60 ms.
    Ms60,
}

impl FrameDuration {
    /// Samples per channel at 48 kHz.
    pub fn samples(self) -> u32 {
        match self {
            Self::Ms10 => 480,
            Self::Ms20 => 960,
            Self::Ms40 => 1920,
            Self::Ms60 => 2880,
        }
    }
}

/// Opus application (RFC 6716 / libopus `OPUS_APPLICATION_*`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum Application {
    /// Speech-tuned.
    Voip,
    /// Music and general audio (default).
    #[default]
    Audio,
    /// Restricted low delay: CELT only, 2.5 ms lookahead instead of 6.5 ms.
    LowDelay,
}

/// Transcoder settings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Config {
    /// Opus frame duration (default 20 ms).
    pub frame: FrameDuration,
    /// Opus application (default Audio).
    pub application: Application,
    /// Encoder complexity 0..=10 (default 5: see
    /// docs/decisions/audio-opus-binding.md).
    pub complexity: u8,
    /// Bit rate in bit/s; `None` = 64 kbit/s stereo, 32 kbit/s mono.
    pub bitrate: Option<u32>,
    /// In-band FEC (default on).
    pub fec: bool,
    /// Expected packet loss in percent, 0..=100, tunes FEC (default 5).
    pub expected_loss_percent: u8,
    /// DTX (default off).
    pub dtx: bool,
    /// Gaps up to this long are filled with silence; longer ones restart the
    /// timeline (default 1 s, at most 10 s).
    pub max_gap_fill: Duration,
    /// Opus packets kept for [`AacToOpus::pop`] before the oldest is
    /// dropped (default 500 = 10 s of 20 ms packets).
    pub max_queued_packets: usize,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            frame: FrameDuration::Ms20,
            application: Application::Audio,
            complexity: 5,
            bitrate: None,
            fec: true,
            expected_loss_percent: 5,
            dtx: false,
            max_gap_fill: Duration::from_secs(1),
            max_queued_packets: 500,
        }
    }
}

/// One Opus packet with its timing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OpusPacket {
    /// The Opus packet (RFC 6716 3.1), one frame.
    pub data: Bytes,
    /// Timestamp in 48 kHz samples (see the module docs for its meaning).
    pub timestamp: u64,
    /// Duration in 48 kHz samples.
    pub duration: u32,
}

/// Something the caller may want to log or count.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Event {
    /// An access unit did not decode; a frame of silence took its place.
    DecodeError {
        /// The access unit's pts.
        pts: Duration,
        /// What the decoder said.
        error: Error,
    },
    /// A gap in the input was filled with this much silence.
    GapFilled {
        /// Silence inserted, in input samples.
        samples: u64,
    },
    /// The timeline restarted (big jump, backwards jump or new config).
    Restart {
        /// The pts that starts the new timeline.
        pts: Duration,
        /// The Opus timestamp it maps to.
        timestamp: u64,
    },
    /// The packet queue was full; this many old packets were dropped.
    Overflow {
        /// Packets dropped.
        dropped: u64,
    },
}

/// Counters for metrics.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Stats {
    /// Access units pushed.
    pub access_units: u64,
    /// Access units that did not decode.
    pub decode_errors: u64,
    /// Opus packets produced.
    pub packets: u64,
    /// Timeline restarts.
    pub restarts: u64,
    /// Input samples of silence inserted for gaps.
    pub gap_samples: u64,
}

/// The AAC decoder: symphonia for AAC-LC, libfdk-aac for HE-AAC with the
/// `he-aac` feature.
enum AacDec {
    Symphonia(Box<AacDecoder>),
    #[cfg(feature = "he-aac")]
    Fdk(Box<fdk_aac::dec::Decoder>, Vec<i16>),
}

impl AacDec {
    fn reset(&mut self) {
        match self {
            Self::Symphonia(d) => d.reset(),
            #[cfg(feature = "he-aac")]
            Self::Fdk(..) => {}
        }
    }
}

/// The decoder, resampler and encoder for one AudioSpecificConfig.
struct Pipeline {
    decoder: AacDec,
    input_rate: u32,
    channels: usize,
    frame_samples: usize,
    resampler: Option<Fft<f32>>,
    /// Interleaved input-rate samples waiting for the resampler.
    resample_in: Vec<f32>,
    /// Scratch output of one resampler call.
    resample_out: Vec<f32>,
    /// Interleaved 48 kHz samples waiting for the encoder.
    encode_in: Vec<f32>,
    encoder: rts_opus_sys::Encoder,
    frame: usize,
    lookahead: u32,
    resampler_delay: u32,
    /// Input samples (per channel) of real audio since the anchor.
    input_samples: u64,
    /// 48 kHz samples (per channel) handed to the encoder since the anchor.
    encoded_samples: u64,
    packet: Vec<u8>,
    decoded: Vec<f32>,
}

impl Pipeline {
    fn new(asc: &AudioSpecificConfig, config: &Config) -> Result<Self, Error> {
        let profile = asc.profile();
        let he_aac = matches!(profile, Profile::HeAac | Profile::HeAacV2);
        if profile != Profile::AacLc && !(he_aac && cfg!(feature = "he-aac")) {
            return Err(Error::Unsupported(format!(
                "{profile} is not supported: the AAC decoder (symphonia) has no SBR/PS and \
                 would play it degraded; publish AAC-LC (or build rts-audio with the he-aac \
                 feature)"
            )));
        }
        // HE-AAC v2's parametric stereo turns a mono core into stereo.
        let coded_channels = asc.channels().unwrap_or(0);
        // With libfdk-aac (he-aac feature), 3 to 8 channels are decoded and
        // downmixed to stereo by the decoder (its ITU-R BS.775 matrix).
        let fdk_downmix = cfg!(feature = "he-aac") && (3..=8).contains(&coded_channels);
        let channels = if profile == Profile::HeAacV2 || fdk_downmix {
            2
        } else {
            coded_channels
        };
        if !(1..=2).contains(&channels) {
            return Err(Error::Unsupported(format!(
                "AAC-LC with {channels} channels (channel configuration {}): the AAC decoder \
                 decodes mono and stereo only; publish mono or stereo (or build rts-audio \
                 with the he-aac feature, whose decoder downmixes)",
                asc.channel_configuration
            )));
        }
        if asc.samples_per_frame() != 1024 {
            return Err(Error::Unsupported(
                "AAC-LC with 960-sample frames: publish 1024-sample frames".into(),
            ));
        }
        let input_rate = asc.output_sample_rate();
        if !(8000..=96000).contains(&input_rate) || !(8000..=96000).contains(&asc.sample_rate()) {
            return Err(Error::Unsupported(format!(
                "AAC at {input_rate} Hz: rates from 8 to 96 kHz are supported"
            )));
        }
        let ch = usize::from(channels);
        // SBR doubles the rate (or keeps it, "downsampled SBR"): 2048 or 1024
        // output samples per access unit.
        let frame_samples = if input_rate == asc.sample_rate().saturating_mul(2) {
            2048
        } else {
            1024
        };
        let decoder = if he_aac || fdk_downmix {
            Self::fdk(asc, ch)?
        } else {
            let mut params = AudioCodecParameters::new();
            params
                .for_codec(CODEC_ID_AAC)
                .with_extra_data(asc.to_bytes().into_boxed_slice());
            AacDec::Symphonia(Box::new(
                AacDecoder::try_new(&params, &AudioDecoderOptions::default()).map_err(|e| {
                    Error::Unsupported(format!("AAC decoder refused the config: {e}"))
                })?,
            ))
        };
        let resampler = if input_rate == OPUS_RATE {
            None
        } else {
            Some(
                Fft::<f32>::new(
                    input_rate as usize,
                    OPUS_RATE as usize,
                    512,
                    ch,
                    FixedSync::Input,
                )
                .map_err(|e| Error::Resample(e.to_string()))?,
            )
        };
        let resampler_delay = resampler.as_ref().map_or(0, |r| r.output_delay() as u32);
        let application = match config.application {
            Application::Voip => rts_opus_sys::Application::Voip,
            Application::Audio => rts_opus_sys::Application::Audio,
            Application::LowDelay => rts_opus_sys::Application::LowDelay,
        };
        let enc_err = |e: rts_opus_sys::Error| Error::Encode(e.to_string());
        let mut encoder =
            rts_opus_sys::Encoder::new(OPUS_RATE, channels, application).map_err(enc_err)?;
        let bitrate = config
            .bitrate
            .unwrap_or(if ch == 1 { 32_000 } else { 64_000 });
        encoder
            .set_bitrate(bitrate.min(512_000) as i32)
            .map_err(enc_err)?;
        encoder
            .set_complexity(i32::from(config.complexity))
            .map_err(enc_err)?;
        encoder.set_inband_fec(config.fec).map_err(enc_err)?;
        encoder
            .set_packet_loss_perc(i32::from(config.expected_loss_percent))
            .map_err(enc_err)?;
        encoder.set_dtx(config.dtx).map_err(enc_err)?;
        // libopus: Fs/400 plus Fs/250 delay compensation (312 at 48 kHz),
        // Fs/400 (120) in restricted-low-delay.
        let lookahead = u32::try_from(encoder.lookahead().map_err(enc_err)?)
            .map_err(|_| Error::Encode("negative Opus lookahead".into()))?;
        Ok(Self {
            decoder,
            input_rate,
            channels: ch,
            frame_samples,
            resampler,
            resample_in: Vec::new(),
            resample_out: Vec::new(),
            encode_in: Vec::new(),
            encoder,
            frame: config.frame.samples() as usize,
            lookahead,
            resampler_delay,
            input_samples: 0,
            encoded_samples: 0,
            packet: vec![0; MAX_PACKET],
            decoded: Vec::new(),
        })
    }

    #[cfg(feature = "he-aac")]
    fn fdk(asc: &AudioSpecificConfig, channels: usize) -> Result<AacDec, Error> {
        let refused = |e: fdk_aac::dec::DecoderError| {
            Error::Unsupported(format!("libfdk-aac refused the config: {}", e.message()))
        };
        let mut d = fdk_aac::dec::Decoder::new(fdk_aac::dec::Transport::Raw);
        d.config_raw(&asc.to_bytes()).map_err(refused)?;
        d.set_min_output_channels(channels).map_err(refused)?;
        d.set_max_output_channels(channels).map_err(refused)?;
        Ok(AacDec::Fdk(Box::new(d), vec![0; 2048 * 8]))
    }

    #[cfg(not(feature = "he-aac"))]
    fn fdk(_: &AudioSpecificConfig, _: usize) -> Result<AacDec, Error> {
        Err(Error::Unsupported("HE-AAC needs the he-aac feature".into()))
    }

    fn delay(&self) -> u32 {
        self.resampler_delay.saturating_add(self.lookahead)
    }

    /// Decodes one access unit into `self.decoded` (silence on error).
    fn decode(&mut self, au: &[u8]) -> Result<(), Error> {
        self.decoded.clear();
        let (channels, frames) = (self.channels, self.frame_samples);
        let mismatch = |got_frames: usize, got_channels: usize| {
            Error::Decode(format!(
                "decoded {got_frames} frames of {got_channels} channels, expected {frames} of \
                 {channels}"
            ))
        };
        let result = if au.is_empty() {
            Err(Error::Decode("empty access unit".into()))
        } else {
            match &mut self.decoder {
                AacDec::Symphonia(d) => {
                    let packet =
                        PacketRef::new(0, SymTimestamp::new(0), SymDuration::new(1024), au);
                    match d.decode_ref(&packet) {
                        Ok(buf) => {
                            let got = buf.spec().channels().count();
                            if got == channels && buf.frames() == frames {
                                buf.copy_to_vec_interleaved::<f32>(&mut self.decoded);
                                Ok(())
                            } else {
                                Err(mismatch(buf.frames(), got))
                            }
                        }
                        Err(e) => Err(Error::Decode(e.to_string())),
                    }
                }
                #[cfg(feature = "he-aac")]
                AacDec::Fdk(d, pcm) => match d.fill(au).and_then(|_| d.decode_frame(pcm)) {
                    Ok(()) => {
                        let info = d.stream_info();
                        let got_ch = usize::try_from(info.numChannels).unwrap_or(0);
                        let got_frames = usize::try_from(info.frameSize).unwrap_or(0);
                        if got_ch == channels && got_frames == frames {
                            let n = frames.saturating_mul(channels);
                            self.decoded
                                .extend(pcm.iter().take(n).map(|s| f32::from(*s) / 32768.0));
                            Ok(())
                        } else {
                            Err(mismatch(got_frames, got_ch))
                        }
                    }
                    Err(e) => Err(Error::Decode(e.message().to_string())),
                },
            }
        };
        if result.is_err() {
            self.decoder.reset();
            self.decoded.clear();
            self.decoded.resize(frames.saturating_mul(channels), 0.0);
        }
        result
    }

    /// Feeds interleaved input-rate samples through the resampler and the
    /// encoder, appending packets to `out`.
    fn feed(&mut self, samples: &[f32], out: &mut Vec<(Bytes, u64)>) -> Result<(), Error> {
        let frames = samples.len().checked_div(self.channels).unwrap_or(0);
        self.input_samples = self.input_samples.saturating_add(frames as u64);
        match &mut self.resampler {
            None => self.encode_in.extend_from_slice(samples),
            Some(r) => {
                self.resample_in.extend_from_slice(samples);
                loop {
                    let need = r.input_frames_next();
                    if self.resample_in.len() < need.saturating_mul(self.channels) {
                        break;
                    }
                    let out_frames = r.output_frames_next();
                    self.resample_out
                        .resize(out_frames.saturating_mul(self.channels), 0.0);
                    let input = InterleavedSlice::new(&self.resample_in, self.channels, need)
                        .map_err(|e| Error::Resample(e.to_string()))?;
                    let mut output = InterleavedSlice::new_mut(
                        &mut self.resample_out,
                        self.channels,
                        out_frames,
                    )
                    .map_err(|e| Error::Resample(e.to_string()))?;
                    let (used, made) = r
                        .process_into_buffer(&input, &mut output, None)
                        .map_err(|e| Error::Resample(e.to_string()))?;
                    self.resample_in.drain(..used.saturating_mul(self.channels));
                    let made = made
                        .saturating_mul(self.channels)
                        .min(self.resample_out.len());
                    self.encode_in.extend(self.resample_out.iter().take(made));
                }
            }
        }
        self.encode_ready(out)
    }

    fn encode_ready(&mut self, out: &mut Vec<(Bytes, u64)>) -> Result<(), Error> {
        let chunk = self.frame.saturating_mul(self.channels);
        while self.encode_in.len() >= chunk {
            // A corrupt stream can decode to inf/NaN or absurd levels; the C
            // encoder gets finite samples within +-4 (12 dB of headroom,
            // legitimate AAC overshoot is kept).
            for s in self.encode_in.iter_mut().take(chunk) {
                *s = if s.is_finite() {
                    s.clamp(-4.0, 4.0)
                } else {
                    0.0
                };
            }
            let len = self
                .encoder
                .encode_float(self.encode_in.get(..chunk).unwrap_or(&[]), &mut self.packet)
                .map_err(|e| Error::Encode(e.to_string()))?;
            self.encode_in.drain(..chunk);
            let data = Bytes::copy_from_slice(self.packet.get(..len).unwrap_or(&[]));
            out.push((data, self.encoded_samples));
            self.encoded_samples = self.encoded_samples.saturating_add(self.frame as u64);
        }
        Ok(())
    }

    /// Pushes silence until every real input sample (plus the delays) is in
    /// an encoded packet.
    fn drain(&mut self, out: &mut Vec<(Bytes, u64)>) -> Result<(), Error> {
        // 48 kHz samples the real input maps to, plus the delays.
        let real = self
            .input_samples
            .saturating_mul(u64::from(OPUS_RATE))
            .div_ceil(u64::from(self.input_rate.max(1)))
            .saturating_add(u64::from(self.delay()));
        let zeros = vec![0.0f32; 256usize.saturating_mul(self.channels)];
        let input_before = self.input_samples;
        // Bounded: each round adds 256 input samples; the delays are < 1 s.
        for _ in 0..2000 {
            let produced =
                self.encoded_samples.saturating_add(
                    self.encode_in.len().checked_div(self.channels).unwrap_or(0) as u64,
                );
            if produced >= real {
                break;
            }
            self.feed(&zeros, out)?;
        }
        self.input_samples = input_before;
        let chunk = self.frame.saturating_mul(self.channels);
        if self.encoded_samples < real && !self.encode_in.is_empty() {
            self.encode_in.resize(chunk, 0.0);
            self.encode_ready(out)?;
        }
        self.encode_in.clear();
        self.resample_in.clear();
        Ok(())
    }
}

/// The AAC to Opus transcoder. See the module docs.
pub struct AacToOpus {
    config: Config,
    asc: Option<AudioSpecificConfig>,
    pipeline: Option<Pipeline>,
    /// Opus timestamp of the anchor (first sample of the current timeline).
    anchor_timestamp: u64,
    /// Input pts of the anchor, in microseconds.
    anchor_pts_us: u64,
    /// Set when the next access unit starts a new timeline.
    restart: bool,
    /// A timeline has been started before.
    started: bool,
    /// End (timestamp + duration) of the last packet produced.
    last_end: u64,
    packets: VecDeque<OpusPacket>,
    events: VecDeque<Event>,
    stats: Stats,
    scratch: Vec<(Bytes, u64)>,
}

const MAX_EVENTS: usize = 64;

impl AacToOpus {
    /// A transcoder; call [`AacToOpus::set_config`] before pushing.
    pub fn new(config: Config) -> Result<Self, Error> {
        if config.complexity > 10 {
            return Err(Error::InvalidSetting("complexity must be 0..=10"));
        }
        if config.expected_loss_percent > 100 {
            return Err(Error::InvalidSetting(
                "expected_loss_percent must be 0..=100",
            ));
        }
        if let Some(b) = config.bitrate
            && !(6_000..=510_000).contains(&b)
        {
            return Err(Error::InvalidSetting("bitrate must be 6000..=510000 bit/s"));
        }
        if config.max_gap_fill > Duration::from_secs(10) {
            return Err(Error::InvalidSetting("max_gap_fill must be at most 10 s"));
        }
        if config.max_queued_packets == 0 {
            return Err(Error::InvalidSetting(
                "max_queued_packets must be at least 1",
            ));
        }
        Ok(Self {
            config,
            asc: None,
            pipeline: None,
            anchor_timestamp: 0,
            anchor_pts_us: 0,
            restart: true,
            started: false,
            last_end: 0,
            packets: VecDeque::new(),
            events: VecDeque::new(),
            stats: Stats::default(),
            scratch: Vec::new(),
        })
    }

    /// Sets the AudioSpecificConfig (an FLV AAC sequence header body). The
    /// same config again is a no-op; a different one drains the current
    /// pipeline and reinitialises. An unsupported profile is an error that
    /// names it (nothing degraded is ever produced).
    pub fn set_config(&mut self, asc_bytes: &[u8]) -> Result<(), Error> {
        let asc = AudioSpecificConfig::parse(asc_bytes)?;
        if self.asc.as_ref() == Some(&asc) && self.pipeline.is_some() {
            return Ok(());
        }
        self.drain()?;
        self.pipeline = None;
        self.asc = None;
        let pipeline = Pipeline::new(&asc, &self.config)?;
        self.pipeline = Some(pipeline);
        self.asc = Some(asc);
        self.restart = true;
        Ok(())
    }

    /// The current config, if any.
    pub fn config(&self) -> Option<&AudioSpecificConfig> {
        self.asc.as_ref()
    }

    /// Total algorithmic delay in 48 kHz samples (resampler + Opus
    /// lookahead): the audio of a packet stamped `t` is the source at
    /// `t - delay()`. 0 before a config.
    pub fn delay(&self) -> u32 {
        self.pipeline.as_ref().map_or(0, Pipeline::delay)
    }

    /// Output channels (1 or 2), 0 before a config.
    pub fn channels(&self) -> u8 {
        self.pipeline.as_ref().map_or(0, |p| p.channels as u8)
    }

    /// Counters.
    pub fn stats(&self) -> Stats {
        self.stats
    }

    /// Pushes one raw AAC access unit (no ADTS header) with its
    /// presentation time. A corrupt access unit is replaced by silence and
    /// reported through [`AacToOpus::poll_event`]; `Err` is only for a
    /// missing config or an internal resampler/encoder failure.
    pub fn push(&mut self, access_unit: Bytes, pts: Duration) -> Result<(), Error> {
        if self.pipeline.is_none() {
            return Err(Error::NoConfig);
        }
        self.stats.access_units = self.stats.access_units.saturating_add(1);
        let pts_us = u64::try_from(pts.as_micros()).unwrap_or(u64::MAX);
        self.resync(pts, pts_us)?;
        let Some(p) = self.pipeline.as_mut() else {
            return Err(Error::NoConfig);
        };
        let decode_result = p.decode(&access_unit);
        let decoded = std::mem::take(&mut p.decoded);
        let result = p.feed(&decoded, &mut self.scratch);
        p.decoded = decoded;
        if let Err(error) = decode_result {
            self.stats.decode_errors = self.stats.decode_errors.saturating_add(1);
            self.event(Event::DecodeError { pts, error });
        }
        self.emit();
        result
    }

    /// Compares `pts` with the time the sample count predicts and fills,
    /// restarts or does nothing.
    fn resync(&mut self, pts: Duration, pts_us: u64) -> Result<(), Error> {
        let Some(p) = self.pipeline.as_ref() else {
            return Ok(());
        };
        let rate = u64::from(p.input_rate.max(1));
        if !self.restart {
            let expected_us = self.anchor_pts_us.saturating_add(
                p.input_samples
                    .saturating_mul(1_000_000)
                    .checked_div(rate)
                    .unwrap_or(0),
            );
            let frame_us = (p.frame_samples as u64)
                .saturating_mul(1_000_000)
                .checked_div(rate)
                .unwrap_or(0);
            let max_gap_us = u64::try_from(self.config.max_gap_fill.as_micros()).unwrap_or(0);
            if pts_us.saturating_add(frame_us) < expected_us {
                self.restart = true; // backwards
            } else if pts_us > expected_us.saturating_add(frame_us) {
                let gap_us = pts_us.saturating_sub(expected_us);
                if gap_us > max_gap_us {
                    self.restart = true;
                } else {
                    let samples = gap_us.saturating_mul(rate) / 1_000_000;
                    self.fill_silence(samples)?;
                }
            }
        }
        if self.restart {
            self.drain()?;
            self.restart = false;
            if let Some(p) = self.pipeline.as_mut() {
                p.input_samples = 0;
                p.encoded_samples = 0;
                p.decoder.reset();
                if let Some(r) = p.resampler.as_mut() {
                    r.reset();
                }
                // A fresh encoder state keeps the lookahead exact.
                let _ = p.encoder.reset_state();
            }
            // Nearest 48 kHz tick.
            let ts = u64::try_from(
                pts.as_nanos()
                    .saturating_mul(u128::from(OPUS_RATE))
                    .saturating_add(500_000_000)
                    / 1_000_000_000,
            )
            .unwrap_or(u64::MAX);
            self.anchor_timestamp = ts.max(self.last_end);
            self.anchor_pts_us = pts_us;
            if self.started {
                self.stats.restarts = self.stats.restarts.saturating_add(1);
                self.event(Event::Restart {
                    pts,
                    timestamp: self.anchor_timestamp,
                });
            }
            self.started = true;
        }
        Ok(())
    }

    fn fill_silence(&mut self, samples: u64) -> Result<(), Error> {
        self.stats.gap_samples = self.stats.gap_samples.saturating_add(samples);
        self.event(Event::GapFilled { samples });
        let mut left = samples;
        while left > 0 {
            let Some(p) = self.pipeline.as_mut() else {
                return Ok(());
            };
            let n = left.min(1024);
            let part = vec![0.0f32; (n as usize).saturating_mul(p.channels)];
            p.feed(&part, &mut self.scratch)?;
            left = left.saturating_sub(n);
            // Keeps the packet queue bounded while filling.
            self.emit();
        }
        Ok(())
    }

    /// Encodes everything still buffered (padding the last frame with
    /// silence): call at the end of a stream. The next push starts a new
    /// timeline.
    pub fn flush(&mut self) -> Result<(), Error> {
        self.drain()?;
        self.restart = true;
        Ok(())
    }

    fn drain(&mut self) -> Result<(), Error> {
        if let Some(p) = self.pipeline.as_mut()
            && (p.input_samples > 0 || !p.encode_in.is_empty())
        {
            p.drain(&mut self.scratch)?;
            self.emit();
        }
        Ok(())
    }

    /// The next Opus packet, in timestamp order.
    pub fn pop(&mut self) -> Option<OpusPacket> {
        self.packets.pop_front()
    }

    /// The next event (errors, gaps, restarts, overflows).
    pub fn poll_event(&mut self) -> Option<Event> {
        self.events.pop_front()
    }

    fn event(&mut self, e: Event) {
        if self.events.len() >= MAX_EVENTS {
            self.events.pop_front();
        }
        self.events.push_back(e);
    }

    fn emit(&mut self) {
        let duration = self.config.frame.samples();
        let mut dropped = 0u64;
        for (data, offset) in self.scratch.drain(..) {
            let timestamp = self.anchor_timestamp.saturating_add(offset);
            if self.packets.len() >= self.config.max_queued_packets {
                self.packets.pop_front();
                dropped = dropped.saturating_add(1);
            }
            self.last_end = timestamp.saturating_add(u64::from(duration));
            self.packets.push_back(OpusPacket {
                data,
                timestamp,
                duration,
            });
            self.stats.packets = self.stats.packets.saturating_add(1);
        }
        if dropped > 0 {
            self.event(Event::Overflow { dropped });
        }
    }
}

/// Downmixes interleaved multichannel audio in the AAC channel order
/// (ISO/IEC 14496-3 Table 1.19: C, L, R, Ls, Rs, LFE for 5.1) to stereo
/// with ITU-R BS.775 coefficients (centre and surrounds at -3 dB, LFE
/// dropped). Configurations 3 to 7 (3 to 8 channels); others keep the first
/// two channels.
pub fn downmix_to_stereo(input: &[f32], channels: usize, out: &mut Vec<f32>) {
    const M3: f32 = std::f32::consts::FRAC_1_SQRT_2;
    out.clear();
    if channels == 0 {
        return;
    }
    for f in input.chunks_exact(channels) {
        let s = |i: usize| f.get(i).copied().unwrap_or(0.0);
        let (l, r) = match channels {
            1 => (s(0), s(0)),
            2 => (s(0), s(1)),
            // C L R
            3 => (s(1) + M3 * s(0), s(2) + M3 * s(0)),
            // C L R Cs
            4 => (s(1) + M3 * s(0) + M3 * s(3), s(2) + M3 * s(0) + M3 * s(3)),
            // C L R Ls Rs [LFE]
            5 | 6 => (s(1) + M3 * s(0) + M3 * s(3), s(2) + M3 * s(0) + M3 * s(4)),
            // C Lc Rc L R Ls Rs LFE (config 7)
            _ => (
                s(1) + s(3) * M3 + M3 * s(0) + M3 * s(5),
                s(2) + s(4) * M3 + M3 * s(0) + M3 * s(6),
            ),
        };
        // Normalise so a full-scale signal in every channel cannot clip.
        let norm = match channels {
            1 | 2 => 1.0,
            3 => 1.0 / (1.0 + M3),
            _ => 1.0 / (1.0 + 2.0 * M3),
        };
        out.push(l * norm);
        out.push(r * norm);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::adts;
    use bytes::BytesMut;

    const STEREO_44K: &[u8] = include_bytes!("../tests/data/tone1k_44k_stereo.aac");
    const MONO_48K: &[u8] = include_bytes!("../tests/data/tone440_48k_mono.aac");

    /// (ASC bytes, access units) of an ADTS file made by ffmpeg.
    fn units(adts_bytes: &[u8]) -> (Vec<u8>, Vec<Bytes>) {
        let mut buf = BytesMut::from(adts_bytes);
        let mut d = adts::Decoder::new();
        let mut aus = Vec::new();
        let mut asc = None;
        while let Some(f) = d.decode(&mut buf).unwrap() {
            asc.get_or_insert_with(|| f.header.to_asc().to_bytes());
            aus.push(f.payload);
        }
        (asc.unwrap(), aus)
    }

    fn pts(i: usize, rate: u64) -> Duration {
        Duration::from_micros(i as u64 * 1024 * 1_000_000 / rate)
    }

    fn run(t: &mut AacToOpus, aus: &[Bytes], rate: u64, offset: usize) -> Vec<OpusPacket> {
        for (i, au) in aus.iter().enumerate() {
            t.push(au.clone(), pts(i + offset, rate)).unwrap();
        }
        t.flush().unwrap();
        std::iter::from_fn(|| t.pop()).collect()
    }

    fn assert_contiguous(p: &[OpusPacket]) {
        for w in p.windows(2) {
            assert_eq!(w[1].timestamp, w[0].timestamp + u64::from(w[0].duration));
        }
    }

    #[test]
    fn stereo_44k_timing() {
        let (asc, aus) = units(STEREO_44K);
        let mut t = AacToOpus::new(Config::default()).unwrap();
        assert_eq!(t.push(aus[0].clone(), Duration::ZERO), Err(Error::NoConfig));
        t.set_config(&asc).unwrap();
        assert_eq!(t.channels(), 2);
        assert!(
            t.delay() > 312 && t.delay() < 312 + 960,
            "delay {}",
            t.delay()
        );
        let p = run(&mut t, &aus, 44100, 0);
        assert_contiguous(&p);
        assert_eq!(p[0].timestamp, 0);
        let samples_48k = (aus.len() as u64 * 1024 * 48000).div_ceil(44100) + u64::from(t.delay());
        assert_eq!(p.len() as u64, samples_48k.div_ceil(960));
        assert!(p.iter().all(|p| !p.data.is_empty() && p.duration == 960));
        assert_eq!(t.poll_event(), None);
    }

    #[test]
    fn mono_48k_and_frame_sizes() {
        let (asc, aus) = units(MONO_48K);
        for (frame, n) in [
            (FrameDuration::Ms10, 480u64),
            (FrameDuration::Ms20, 960),
            (FrameDuration::Ms40, 1920),
            (FrameDuration::Ms60, 2880),
        ] {
            let mut t = AacToOpus::new(Config {
                frame,
                ..Config::default()
            })
            .unwrap();
            t.set_config(&asc).unwrap();
            assert_eq!((t.channels(), t.delay()), (1, 312));
            let p = run(&mut t, &aus, 48000, 100);
            assert_contiguous(&p);
            assert_eq!(p[0].timestamp, 100 * 1024);
            let total = aus.len() as u64 * 1024 + 312;
            assert_eq!(p.len() as u64, total.div_ceil(n));
            // TOC byte (RFC 6716 3.1): mono, one frame of the chosen size.
            assert_eq!(p[0].data[0] & 0b100, 0);
        }
    }

    #[test]
    fn corrupt_access_unit_becomes_silence() {
        let (asc, mut aus) = units(STEREO_44K);
        let mut t = AacToOpus::new(Config::default()).unwrap();
        t.set_config(&asc).unwrap();
        let clean = run(&mut t, &aus, 44100, 0).len();
        aus[5] = Bytes::from_static(&[0xde, 0xad, 0xbe, 0xef, 0x01]);
        aus[6] = Bytes::new();
        let mut t = AacToOpus::new(Config::default()).unwrap();
        t.set_config(&asc).unwrap();
        let p = run(&mut t, &aus, 44100, 0);
        assert_eq!(p.len(), clean);
        assert_contiguous(&p);
        assert!(matches!(t.poll_event(), Some(Event::DecodeError { .. })));
        assert_eq!(t.stats().decode_errors, 2);
    }

    #[test]
    fn short_gap_filled_long_gap_restarts() {
        let (asc, aus) = units(STEREO_44K);
        let mut t = AacToOpus::new(Config::default()).unwrap();
        t.set_config(&asc).unwrap();
        let clean = run(&mut t, &aus, 44100, 0);
        // Drop 5 access units but keep the timestamps: silence fills them.
        let mut t = AacToOpus::new(Config::default()).unwrap();
        t.set_config(&asc).unwrap();
        for (i, au) in aus.iter().enumerate() {
            if !(10..15).contains(&i) {
                t.push(au.clone(), pts(i, 44100)).unwrap();
            }
        }
        t.flush().unwrap();
        let p: Vec<_> = std::iter::from_fn(|| t.pop()).collect();
        assert_contiguous(&p);
        assert_eq!(p.len(), clean.len());
        match t.poll_event() {
            Some(Event::GapFilled { samples }) => {
                assert!((5 * 1024 - 1..=5 * 1024).contains(&samples))
            }
            other => panic!("{other:?}"),
        }
        // A 5 s jump restarts the timeline at the new pts.
        let mut t = AacToOpus::new(Config::default()).unwrap();
        t.set_config(&asc).unwrap();
        for (i, au) in aus.iter().enumerate() {
            let at = if i < 10 {
                pts(i, 44100)
            } else {
                pts(i, 44100) + Duration::from_secs(5)
            };
            t.push(au.clone(), at).unwrap();
        }
        t.flush().unwrap();
        let p: Vec<_> = std::iter::from_fn(|| t.pop()).collect();
        let restart = match t.poll_event() {
            Some(Event::Restart { timestamp, .. }) => timestamp,
            other => panic!("{other:?}"),
        };
        let at = pts(10, 44100) + Duration::from_secs(5);
        assert_eq!(
            restart as u128,
            (at.as_nanos() * 48000 + 500_000_000) / 1_000_000_000
        );
        assert!(p.iter().any(|p| p.timestamp == restart));
        assert!(p.windows(2).all(|w| w[1].timestamp >= w[0].timestamp + 960));
    }

    #[test]
    fn backwards_jump_keeps_output_monotonic() {
        let (asc, aus) = units(STEREO_44K);
        let mut t = AacToOpus::new(Config::default()).unwrap();
        t.set_config(&asc).unwrap();
        for (i, au) in aus.iter().enumerate() {
            t.push(au.clone(), pts(i % 8, 44100)).unwrap();
        }
        let p: Vec<_> = std::iter::from_fn(|| t.pop()).collect();
        assert!(p.windows(2).all(|w| w[1].timestamp >= w[0].timestamp + 960));
        assert!(t.stats().restarts >= 1);
    }

    #[test]
    fn new_config_reinitialises() {
        let (asc1, aus1) = units(STEREO_44K);
        let (asc2, aus2) = units(MONO_48K);
        let mut t = AacToOpus::new(Config::default()).unwrap();
        t.set_config(&asc1).unwrap();
        for (i, au) in aus1.iter().enumerate() {
            t.push(au.clone(), pts(i, 44100)).unwrap();
        }
        t.set_config(&asc1).unwrap(); // same config: nothing happens
        assert_eq!(t.channels(), 2);
        t.set_config(&asc2).unwrap();
        assert_eq!((t.channels(), t.delay()), (1, 312));
        let start = aus1.len() as u64 * 1024 * 1_000_000 / 44100;
        for (i, au) in aus2.iter().enumerate() {
            let at = Duration::from_micros(start + i as u64 * 1024 * 1_000_000 / 48000);
            t.push(au.clone(), at).unwrap();
        }
        t.flush().unwrap();
        let p: Vec<_> = std::iter::from_fn(|| t.pop()).collect();
        assert!(p.windows(2).all(|w| w[1].timestamp >= w[0].timestamp + 960));
        assert_eq!(t.stats().decode_errors, 0);
    }

    #[cfg(not(feature = "he-aac"))]
    #[test]
    fn he_aac_refused_with_profile_name() {
        let mut t = AacToOpus::new(Config::default()).unwrap();
        let err = t.set_config(&[0x2b, 0x92, 0x08, 0x00]).unwrap_err();
        assert!(err.to_string().contains("HE-AAC v1"), "{err}");
        let err = t.set_config(&[0xeb, 0x09, 0x88, 0x00]).unwrap_err();
        assert!(err.to_string().contains("HE-AAC v2"), "{err}");
        // 5.1: refused by name rather than decoded wrong.
        let err = t.set_config(&crate::asc::AudioSpecificConfig::aac_lc(48000, 6).to_bytes());
        assert!(err.unwrap_err().to_string().contains("6 channels"));
        assert!(
            AacToOpus::new(Config {
                complexity: 11,
                ..Config::default()
            })
            .is_err()
        );
    }

    #[test]
    fn downmix() {
        let mut out = Vec::new();
        // 5.1: C L R Ls Rs LFE, only L set -> only left.
        downmix_to_stereo(&[0.0, 1.0, 0.0, 0.0, 0.0, 1.0], 6, &mut out);
        assert!(out[0] > 0.4 && out[1] == 0.0);
        downmix_to_stereo(&[1.0; 12], 6, &mut out);
        assert_eq!(out.len(), 4);
        assert!(out.iter().all(|s| *s <= 1.0 + 1e-6));
    }

    /// HE-AAC v1 and v2 made by libfdk-aac's encoder (the only HE-AAC
    /// encoder here: Debian's ffmpeg has none), transcoded, then decoded by
    /// the Opus decoder: the tone is at the right frequency and the output
    /// is stereo at the SBR rate.
    #[cfg(feature = "he-aac")]
    #[test]
    fn he_aac_v1_and_v2_decode_with_fdk() {
        use fdk_aac::enc::{
            AudioObjectType, BitRate, ChannelMode, Encoder, EncoderParams, Transport,
        };
        for (aot, profile) in [
            (AudioObjectType::Mpeg4HeAac, Profile::HeAac),
            (AudioObjectType::Mpeg4HeAacV2, Profile::HeAacV2),
        ] {
            let enc = Encoder::new(EncoderParams {
                bit_rate: BitRate::Cbr(48_000),
                sample_rate: 44_100,
                transport: Transport::Raw,
                channels: ChannelMode::Stereo,
                audio_object_type: aot,
            })
            .unwrap();
            let info = enc.info().unwrap();
            let asc = info.confBuf[..info.confSize as usize].to_vec();
            assert_eq!(AudioSpecificConfig::parse(&asc).unwrap().profile(), profile);
            let pcm: Vec<i16> = (0..44_100 * 2)
                .map(|i| ((i / 2) as f64 * 1000.0 * std::f64::consts::TAU / 44_100.0).sin())
                .map(|v| (v * 12_000.0) as i16)
                .collect();
            let mut aus = Vec::new();
            let mut out = vec![0u8; 8192];
            for chunk in pcm.chunks(2048 * 2) {
                let r = enc.encode(chunk, &mut out).unwrap();
                if r.output_size > 0 {
                    aus.push(Bytes::copy_from_slice(&out[..r.output_size]));
                }
            }
            let mut t = AacToOpus::new(Config::default()).unwrap();
            t.set_config(&asc).unwrap();
            assert_eq!(t.channels(), 2);
            let p = run(&mut t, &aus, 44_100 / 2, 0);
            assert_eq!(t.stats().decode_errors, 0);
            assert_contiguous(&p);
            let mut dec = rts_opus_sys::Decoder::new(48_000, 2).unwrap();
            let mut decoded = Vec::new();
            let mut buf = vec![0f32; 960 * 2];
            for packet in &p {
                let n = dec.decode_float(&packet.data, &mut buf).unwrap();
                decoded.extend_from_slice(&buf[..n * 2]);
            }
            let left: Vec<f32> = decoded
                .iter()
                .step_by(2)
                .copied()
                .skip(9600)
                .take(19_200)
                .collect();
            let goertzel = |f: f64| {
                let c = 2.0 * (std::f64::consts::TAU * f / 48_000.0).cos();
                let (mut s1, mut s2) = (0.0, 0.0);
                for &v in &left {
                    let s0 = f64::from(v) + c * s1 - s2;
                    s2 = s1;
                    s1 = s0;
                }
                s1 * s1 + s2 * s2 - c * s1 * s2
            };
            assert!(goertzel(1000.0) > 100.0 * goertzel(700.0), "{profile}");
            assert!(goertzel(1000.0) > 100.0 * goertzel(1500.0), "{profile}");
        }
    }

    /// 5.1 AAC-LC from ffmpeg's encoder with a tone in front-left only:
    /// libfdk-aac downmixes to stereo and the tone stays left.
    #[cfg(feature = "he-aac")]
    #[test]
    fn surround_downmixed_with_fdk() {
        let Some(ffmpeg) = rts_testkit::tool("ffmpeg") else {
            return;
        };
        let path = std::env::temp_dir().join(format!("rts-audio-51-{}.aac", std::process::id()));
        let status = std::process::Command::new(ffmpeg)
            .args([
                "-hide_banner",
                "-loglevel",
                "error",
                "-y",
                "-f",
                "lavfi",
                "-i",
            ])
            .arg("sine=frequency=1000:sample_rate=48000:duration=1")
            .args(["-af", "pan=5.1|FL=c0", "-c:a", "aac", "-f", "adts"])
            .arg(&path)
            .status()
            .unwrap();
        assert!(status.success());
        let (asc, aus) = units(&std::fs::read(&path).unwrap());
        assert_eq!(
            AudioSpecificConfig::parse(&asc).unwrap().channels(),
            Some(6)
        );
        let mut t = AacToOpus::new(Config::default()).unwrap();
        t.set_config(&asc).unwrap();
        assert_eq!(t.channels(), 2);
        let p = run(&mut t, &aus, 48_000, 0);
        assert_eq!(t.stats().decode_errors, 0);
        let mut dec = rts_opus_sys::Decoder::new(48_000, 2).unwrap();
        let (mut l, mut r) = (0.0f64, 0.0f64);
        let mut buf = vec![0f32; 960 * 2];
        for packet in &p {
            let n = dec.decode_float(&packet.data, &mut buf).unwrap();
            for f in buf[..n * 2].chunks_exact(2) {
                l += f64::from(f[0]).powi(2);
                r += f64::from(f[1]).powi(2);
            }
        }
        assert!(l > 1.0 && l > 1000.0 * r, "left {l} right {r}");
    }
}
