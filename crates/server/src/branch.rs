//! The WebRTC conversion branch of one stream (docs/ARCHITECTURE.md, "The
//! pipeline"; docs/conversion.md).
//!
//! One branch per stream, shared by all its WebRTC viewers: started by the
//! first, stopped after the last leaves. It subscribes to the hub like any
//! viewer and turns FLV tag bodies into RTP packets once for everyone:
//! - video: the rts-h264 [`Stripper`] (zero-copy passthrough while there are
//!   no B-frames; decode and re-encode without them otherwise), then the
//!   rts-rtp H.264 packetizer;
//! - audio: AAC through rts-audio's [`AacToOpus`]; Opus (Enhanced RTMP) is
//!   packetized as it comes.
//!
//! Transcoding is CPU work, so the branch runs on its own OS thread, never
//! on the async runtime. Both RTP clocks count from the stream's own
//! millisecond clock (video 90 kHz, audio 48 kHz, the Opus timestamps moved
//! back by the transcoder's delay). Each track leaves as soon as it is
//! ready, nothing is held for the other: every viewer's peer sends RTCP
//! sender reports that map both RTP clocks to one wall clock
//! (rts-webrtc's module `sync`), and the player aligns them.

use std::collections::VecDeque;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use bytes::Bytes;
use rts_audio::transcode::{AacToOpus, Config as OpusConfig, FrameDuration};
use rts_flv::{
    AudioCodec, AudioPacketType, AudioTagHeader, VideoCodec, VideoPacketType, VideoTagHeader,
};
use rts_h264::{AccessUnit, Mode, Output, Settings, Stripper};
use rts_rtp::Packet;
use rts_rtp::h264::{self as rtp_h264, Format};
use rts_rtp::opus as rtp_opus;
use serde::Serialize;

use crate::hub::{Frame, FrameKind, Hub, StreamKey, Viewer};
use crate::metrics::ErrorKind;

/// RTP payload budget: fits a 1280-byte datagram after SRTP and the
/// transport-cc extension.
const MTU: usize = 1200;
/// Media items waiting for the WebRTC loop.
const CHANNEL: usize = 2048;
/// How often the branch reports its metering to the hub.
const METER_EVERY: Duration = Duration::from_secs(1);

/// Packets of one access unit, or one audio packet.
#[derive(Debug, Clone)]
pub enum Media {
    /// The packets of one access unit.
    Video {
        /// Its RTP packets, in order.
        packets: Vec<Packet>,
        /// An IDR picture (a viewer can start here).
        keyframe: bool,
    },
    /// One Opus packet.
    Audio(Packet),
}

/// What the branch tells the WebRTC loop.
#[derive(Debug)]
pub(crate) enum BranchOut {
    /// Media for every viewer.
    Media(Media),
    /// The stream ended for its viewers, or the conversion failed: why.
    Ended(String),
}

/// What a branch sends its viewers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Delivery {
    /// What a browser plays: B-frames removed, AAC turned into Opus,
    /// metered.
    Converted,
    /// The video as published, B-frames kept (`?passthrough=1`: a player
    /// that decodes them itself), and Opus audio only; nothing converted
    /// or metered.
    AsPublished,
}

/// What the video does in the branch (the API shows it in kebab-case).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum VideoPath {
    /// H.264 without B-frames (or a passthrough branch): as published.
    Passthrough,
    /// B-frames removed by decoding and re-encoding.
    Transcode,
    /// Not H.264: not sent.
    Unsupported,
}

/// What the audio does in the branch (the API shows it in kebab-case).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum AudioPath {
    /// Opus as published.
    Passthrough,
    /// AAC decoded and encoded to Opus.
    AacToOpus,
    /// Neither (or HE-AAC without the `he-aac` feature): not sent.
    Unsupported,
}

/// The resolution tier a transcode is metered in (docs/conversion.md): SD
/// up to 640x480, HD up to 1280x720, FHD up to 1920x1080, 2K up to
/// 2560x1440, 4K above; portrait sizes count by their long side.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
pub enum Tier {
    /// Up to 640x480.
    #[serde(rename = "SD")]
    Sd,
    /// Up to 1280x720.
    #[serde(rename = "HD")]
    Hd,
    /// Up to 1920x1080.
    #[serde(rename = "FHD")]
    Fhd,
    /// Up to 2560x1440.
    #[serde(rename = "2K")]
    TwoK,
    /// Above 2560x1440.
    #[serde(rename = "4K")]
    FourK,
    /// The size is not known yet.
    #[serde(rename = "unknown")]
    Unknown,
}

impl Tier {
    /// The tier of a `width` x `height` picture.
    pub fn of(width: u32, height: u32) -> Tier {
        let (long, short) = (width.max(height), width.min(height));
        if long <= 640 && short <= 480 {
            Tier::Sd
        } else if long <= 1280 && short <= 720 {
            Tier::Hd
        } else if long <= 1920 && short <= 1080 {
            Tier::Fhd
        } else if long <= 2560 && short <= 1440 {
            Tier::TwoK
        } else {
            Tier::FourK
        }
    }

    /// Its name in the API and `/metrics`.
    pub fn as_str(self) -> &'static str {
        match self {
            Tier::Sd => "SD",
            Tier::Hd => "HD",
            Tier::Fhd => "FHD",
            Tier::TwoK => "2K",
            Tier::FourK => "4K",
            Tier::Unknown => "unknown",
        }
    }
}

/// Unwraps the hub's 32-bit millisecond timestamps into a continuous i64.
#[derive(Debug, Default)]
pub(crate) struct Clock {
    last: Option<(u32, i64)>,
}

impl Clock {
    pub(crate) fn unwrap(&mut self, ts: u32) -> i64 {
        let t = match self.last {
            None => i64::from(ts),
            Some((raw, t)) => t.saturating_add(i64::from(ts.wrapping_sub(raw) as i32)),
        };
        self.last = Some((ts, t));
        t
    }
}

fn rtp_time(ms: i64, rate_khz: i64) -> u32 {
    // RTP timestamps wrap (RFC 3550 5.1): keep the low 32 bits.
    ms.wrapping_mul(rate_khz) as u32
}

/// The sans-IO core of a branch: FLV tag bodies in (as the hub gives them),
/// RTP packets out (payload type and SSRC are the peer's to set).
///
/// ```
/// use rts_server::branch::{Converter, Delivery, Media};
/// use rts_server::hub::{Frame, FrameKind};
///
/// let mut c = Converter::new(rts_h264::Mode::Auto, None, Delivery::Converted).unwrap();
/// // An FLV video tag body that is not H.264 (Sorenson H.263): not sent.
/// c.push(&Frame { kind: FrameKind::Video, timestamp: 0, payload: bytes::Bytes::from_static(&[0x22, 0, 0]), keyframe: true, config: false });
/// assert!(c.pop().is_none());
/// ```
pub struct Converter {
    stripper: Stripper,
    length_size: u8,
    video_pk: rtp_h264::Packetizer,
    opus_pk: rtp_opus::Packetizer,
    aac: Option<Box<AacToOpus>>,
    clock: Clock,
    out: VecDeque<Media>,
    video: Option<VideoPath>,
    audio: Option<AudioPath>,
    /// Size of the transcoder's output (for the metering tier).
    dims: Option<(u32, u32)>,
    errors: u64,
    /// The Opus frame of the AAC conversion.
    opus_frame: FrameDuration,
    /// Newest video presentation time pushed (ms), where output resumes.
    newest_video: Option<i64>,
    /// No viewer: decoding only (see [`Converter::pause`]).
    paused: bool,
    /// Audio before this (ms) is not converted (the join backlog).
    audio_from: Option<i64>,
    /// Converted for browsers, or as published.
    delivery: Delivery,
    /// Tests: panic at the next frame (a bug in a codec, simulated).
    #[cfg(test)]
    panic_next: bool,
}

impl std::fmt::Debug for Converter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Converter")
            .field("video", &self.video)
            .field("audio", &self.audio)
            .field("errors", &self.errors)
            .finish_non_exhaustive()
    }
}

impl Converter {
    /// A converter removing B-frames in `mode`, the transcoder at `bitrate`
    /// bit/s (None: derived from the input). [`Delivery::AsPublished`]
    /// converts nothing: video goes as published (B-frames kept, for a
    /// player that decodes them) and only Opus audio is sent.
    pub fn new(
        mode: Mode,
        bitrate: Option<u32>,
        delivery: Delivery,
    ) -> Result<Self, rts_rtp::Error> {
        let mut settings = Settings::new(mode);
        if let Some(b) = bitrate {
            settings = settings.with_bitrate(b);
        }
        let video_pk = rtp_h264::Packetizer::new(rtp_h264::Config {
            mtu: MTU,
            ..Default::default()
        })?;
        Ok(Converter {
            stripper: Stripper::new(settings),
            length_size: 4,
            video_pk,
            opus_pk: rtp_opus::Packetizer::new(rtp_opus::Config::default()),
            aac: None,
            clock: Clock::default(),
            out: VecDeque::new(),
            video: None,
            audio: None,
            dims: None,
            errors: 0,
            audio_from: None,
            delivery,
            opus_frame: FrameDuration::Ms10,
            newest_video: None,
            paused: false,
            #[cfg(test)]
            panic_next: false,
        })
    }

    /// What the video does, once known.
    pub fn video_path(&self) -> Option<VideoPath> {
        self.video.map(|v| {
            if v == VideoPath::Passthrough && self.stripper.is_transcoding() {
                VideoPath::Transcode
            } else {
                v
            }
        })
    }

    /// What the audio does, once known.
    pub fn audio_path(&self) -> Option<AudioPath> {
        self.audio
    }

    /// The transcoder's picture size, while transcoding.
    pub fn dims(&self) -> Option<(u32, u32)> {
        self.dims
    }

    /// Asks the transcoder for an IDR as its next picture (a new viewer, a
    /// PLI). Returns false in passthrough, where only the source makes
    /// keyframes.
    pub fn request_keyframe(&mut self) -> bool {
        if self.stripper.is_transcoding() {
            self.stripper.request_keyframe();
            true
        } else {
            false
        }
    }

    /// Whether this branch converts (is metered).
    pub fn converts(&self) -> bool {
        self.delivery == Delivery::Converted
    }

    /// Whether the video is being transcoded.
    pub fn is_transcoding(&self) -> bool {
        self.stripper.is_transcoding()
    }

    /// Sets the Opus frame of the AAC → Opus conversion (default 10 ms).
    pub fn with_opus_frame(mut self, frame: FrameDuration) -> Self {
        self.opus_frame = frame;
        self
    }

    /// No viewer for now: video is still decoded, so that the pictures the
    /// next one needs as references are at hand, but nothing is encoded,
    /// audio is dropped and nothing comes out of [`Converter::pop`].
    pub fn pause(&mut self) {
        self.paused = true;
        self.stripper.skip_before(i64::MAX);
        self.audio_from = Some(i64::MAX);
        self.out.clear();
    }

    /// Output again after [`Converter::pause`]: the next picture, encoded
    /// as an IDR, and the audio from now on.
    pub fn resume(&mut self) {
        if !self.paused {
            return;
        }
        self.paused = false;
        self.stripper
            .skip_before(self.newest_video.map_or(i64::MIN, |t| t.saturating_add(1)));
        self.stripper.request_keyframe();
        self.audio_from = None;
    }

    /// Whether [`Converter::pause`] holds.
    pub fn is_paused(&self) -> bool {
        self.paused
    }

    /// The next converted media.
    pub fn pop(&mut self) -> Option<Media> {
        self.out.pop_front()
    }

    fn error(&mut self, what: &str, e: impl std::fmt::Display) {
        self.errors = self.errors.saturating_add(1);
        // The first ones and then one in a hundred: a broken stream must not
        // flood the log.
        if self.errors <= 5 || self.errors.is_multiple_of(100) {
            tracing::warn!("conversion: {what}: {e} ({} so far)", self.errors);
        }
    }

    /// Starts from the hub's backlog (configs and the GOP so far, which a
    /// new subscriber gets at once): the transcoder decodes the GOP for
    /// its references but its first output is an IDR of the newest
    /// picture, and the backlog's older audio is skipped, so the first
    /// viewer sees the live edge at once instead of a burst of the past.
    pub fn join(&mut self, backlog: &[Frame]) {
        let mut newest = None::<i64>;
        for f in backlog {
            if f.kind != FrameKind::Video || f.config {
                continue;
            }
            if let Ok((h, _)) = VideoTagHeader::parse(&f.payload) {
                let pts = i64::from(f.timestamp).saturating_add(i64::from(h.composition_time));
                newest = Some(newest.map_or(pts, |n| n.max(pts)));
            }
        }
        if let Some(t) = newest {
            self.stripper.skip_before(t);
            self.audio_from = Some(t);
        }
        let started = Instant::now();
        for f in backlog {
            self.push(f);
        }
        tracing::info!(
            "conversion: joined at {newest:?} ms, {} backlog frames in {} ms",
            backlog.len(),
            started.elapsed().as_millis()
        );
    }

    /// Converts one frame from the hub.
    pub fn push(&mut self, frame: &Frame) {
        #[cfg(test)]
        if self.panic_next {
            panic!("simulated codec bug");
        }
        match frame.kind {
            FrameKind::Video => self.push_video(frame),
            FrameKind::Audio => self.push_audio(frame),
            FrameKind::Metadata => {}
        }
    }

    fn push_video(&mut self, frame: &Frame) {
        let (h, body) = match VideoTagHeader::parse(&frame.payload) {
            Ok(x) => x,
            Err(e) => return self.error("video tag", e),
        };
        if h.codec != VideoCodec::Avc || h.multitrack.is_some() {
            if self.video != Some(VideoPath::Unsupported) {
                tracing::warn!(
                    "conversion: {:?} video cannot be played over WebRTC here (H.264 only); sending audio only",
                    h.codec
                );
            }
            self.video = Some(VideoPath::Unsupported);
            return;
        }
        self.video.get_or_insert(VideoPath::Passthrough);
        let t = self.clock.unwrap(frame.timestamp);
        if self.delivery == Delivery::AsPublished {
            return self.pass_video(&h, body, t);
        }
        let res = match h.packet_type {
            VideoPacketType::SequenceStart => self.stripper.push_config(body),
            VideoPacketType::CodedFrames | VideoPacketType::CodedFramesX => {
                if body.is_empty() {
                    Ok(())
                } else {
                    let pts = t.saturating_add(i64::from(h.composition_time));
                    self.newest_video = Some(self.newest_video.map_or(pts, |n| n.max(pts)));
                    self.stripper.push(AccessUnit {
                        dts: t,
                        pts,
                        data: body,
                    })
                }
            }
            _ => Ok(()),
        };
        if let Err(e) = res {
            self.error("video", e);
        }
        self.drain_stripper();
    }

    /// Passthrough: packetized as published, timestamps are presentation
    /// times (RFC 6184 5.1), so with B-frames they are not monotonic.
    fn pass_video(&mut self, h: &VideoTagHeader, body: Bytes, t: i64) {
        match h.packet_type {
            VideoPacketType::SequenceStart => self.set_video_config(&body),
            VideoPacketType::CodedFrames | VideoPacketType::CodedFramesX if !body.is_empty() => {
                let pts = t.saturating_add(i64::from(h.composition_time));
                if let Some(m) = self.packetize_video(&body, pts, h.is_keyframe()) {
                    self.out.push_back(m);
                }
            }
            _ => {}
        }
    }

    fn set_video_config(&mut self, record: &Bytes) {
        match self.video_pk.set_decoder_config(record) {
            Ok(ls) => self.length_size = ls,
            Err(e) => self.error("decoder configuration", e),
        }
    }

    /// The packets of one access unit presented at `time` ms.
    fn packetize_video(&mut self, data: &Bytes, time: i64, keyframe: bool) -> Option<Media> {
        let format = Format::Avcc {
            length_size: self.length_size,
        };
        let mut packets = Vec::new();
        match self
            .video_pk
            .packetize(data, format, rtp_time(time, 90), &mut packets)
        {
            Ok(_) if !packets.is_empty() => Some(Media::Video { packets, keyframe }),
            Ok(_) => None,
            Err(e) => {
                self.error("packetize", e);
                None
            }
        }
    }

    fn drain_stripper(&mut self) {
        while let Some(o) = self.stripper.pop() {
            match o {
                Output::Config(record) => self.set_video_config(&record),
                Output::Frame(f) => {
                    if let Some(m) = self.packetize_video(&f.data, f.time, f.keyframe) {
                        self.out.push_back(m);
                    }
                }
                Output::Event(e) => {
                    if let rts_h264::Event::EncoderConfigured { width, height, .. } = e {
                        self.dims = Some((width, height));
                    }
                    tracing::info!("conversion: {e:?}");
                }
                _ => {}
            }
        }
    }

    fn push_audio(&mut self, frame: &Frame) {
        let (h, body) = match AudioTagHeader::parse(&frame.payload) {
            Ok(x) => x,
            Err(e) => return self.error("audio tag", e),
        };
        let t = self.clock.unwrap(frame.timestamp);
        if !h.is_sequence_header() && self.audio_from.is_some_and(|from| t < from) {
            return;
        }
        match h.codec {
            AudioCodec::Opus if h.multitrack.is_none() => {
                self.audio = Some(AudioPath::Passthrough);
                if h.packet_type == AudioPacketType::CodedFrames && !body.is_empty() {
                    let p = self.opus_pk.packetize(body, rtp_time(t, 48));
                    self.out.push_back(Media::Audio(p));
                }
            }
            AudioCodec::Aac if h.multitrack.is_none() && self.converts() => {
                self.push_aac(&h, body, t)
            }
            other => {
                if self.audio != Some(AudioPath::Unsupported) {
                    tracing::warn!(
                        "conversion: {other:?} audio cannot be played over WebRTC here (AAC or Opus only); sending video only"
                    );
                }
                self.audio = Some(AudioPath::Unsupported);
            }
        }
    }

    fn push_aac(&mut self, h: &AudioTagHeader, body: Bytes, t: i64) {
        if self.audio == Some(AudioPath::Unsupported) && !h.is_sequence_header() {
            return;
        }
        if self.aac.is_none() {
            match AacToOpus::new(OpusConfig {
                frame: self.opus_frame,
                ..OpusConfig::default()
            }) {
                Ok(tx) => self.aac = Some(Box::new(tx)),
                Err(e) => {
                    self.audio = Some(AudioPath::Unsupported);
                    return self.error("opus encoder", e);
                }
            }
        }
        let Some(tx) = self.aac.as_deref_mut() else {
            return;
        };
        let res = if h.is_sequence_header() {
            let r = tx.set_config(&body);
            if r.is_ok() {
                self.audio = Some(AudioPath::AacToOpus);
            }
            r
        } else if h.packet_type == AudioPacketType::CodedFrames && tx.config().is_some() {
            let pts = Duration::from_millis(u64::try_from(t).unwrap_or(0));
            tx.push(body, pts)
        } else {
            Ok(())
        };
        while let Some(ev) = tx.poll_event() {
            tracing::debug!("conversion: audio {ev:?}");
        }
        let delay = u64::from(tx.delay());
        while let Some(p) = tx.pop() {
            let ts = p.timestamp.saturating_sub(delay);
            let packet = self.opus_pk.packetize(p.data, ts as u32);
            self.out.push_back(Media::Audio(packet));
        }
        if let Err(e) = res {
            if h.is_sequence_header() {
                // An unsupported profile (HE-AAC without the he-aac feature):
                // say so once and send no audio rather than degraded audio.
                self.audio = Some(AudioPath::Unsupported);
                tracing::warn!("conversion: audio not converted: {e}");
            } else {
                self.error("aac", e);
            }
        }
    }
}

/// Flags the WebRTC loop and the branch thread share.
#[derive(Debug, Default)]
pub(crate) struct Control {
    stop: AtomicBool,
    keyframe: AtomicBool,
    transcoding: AtomicBool,
    /// No viewer: decode only ([`Converter::pause`]).
    idle: AtomicBool,
}

impl Control {
    /// Asks for an IDR (honoured while transcoding).
    pub(crate) fn request_keyframe(&self) {
        self.keyframe.store(true, Ordering::Relaxed);
    }

    /// Whether the branch transcodes video now.
    pub(crate) fn transcoding(&self) -> bool {
        self.transcoding.load(Ordering::Relaxed)
    }

    /// Pauses (true) or resumes (false) the branch's output.
    fn set_idle(&self, idle: bool) {
        self.idle.store(idle, Ordering::Relaxed);
    }
}

/// A running branch; dropping it stops the thread.
#[derive(Debug)]
pub(crate) struct Branch {
    pub(crate) control: Arc<Control>,
    pub(crate) rx: tokio::sync::mpsc::Receiver<BranchOut>,
    /// When its last viewer left, while it lingers decoding.
    idle_since: Option<Instant>,
}

impl Branch {
    /// The last viewer left: keep decoding, output nothing.
    pub(crate) fn pause(&mut self, now: Instant) {
        self.idle_since.get_or_insert(now);
        self.control.set_idle(true);
    }

    /// A viewer again: output from the next picture, an IDR. True when it
    /// was paused.
    pub(crate) fn resume(&mut self) -> bool {
        self.control.set_idle(false);
        self.idle_since.take().is_some()
    }

    /// Since when it has had no viewer, if it lingers.
    pub(crate) fn idle_since(&self) -> Option<Instant> {
        self.idle_since
    }
}

impl Drop for Branch {
    fn drop(&mut self) {
        self.control.stop.store(true, Ordering::Relaxed);
        self.rx.close();
    }
}

/// Starts the branch of `key` on its own thread, reading `viewer`.
pub(crate) fn spawn(
    key: StreamKey,
    viewer: Viewer,
    hub: Hub,
    converter: Converter,
    wake: Arc<tokio::sync::Notify>,
) -> std::io::Result<Branch> {
    let (tx, rx) = tokio::sync::mpsc::channel(CHANNEL);
    let control = Arc::new(Control::default());
    let ctl = control.clone();
    let rt = tokio::runtime::Handle::current();
    std::thread::Builder::new()
        .name(format!("rts-branch {}/{}", key.app, key.stream))
        .spawn(move || {
            tracing::info!(stream = %key, "conversion branch started");
            // `running` is the WebRTC loop's to set: a new branch may have
            // started by the time this one is gone. A panic (a bug in a
            // codec or here) ends this branch only: its viewers are closed
            // with the reason, and the next viewer starts a fresh branch.
            let ran = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                run(&key, &viewer, &hub, converter, &ctl, &tx, &wake, &rt)
            }));
            match ran {
                Ok(why) => tracing::info!(stream = %key, "conversion branch stopped: {why}"),
                Err(_) => {
                    tracing::error!(stream = %key, "conversion branch failed (a panic, contained)");
                    hub.metrics().error(ErrorKind::Internal);
                    let _ = tx.try_send(BranchOut::Ended(
                        "the conversion failed; play again to restart it".into(),
                    ));
                    wake.notify_one();
                }
            }
        })?;
    Ok(Branch {
        control,
        rx,
        idle_since: None,
    })
}

#[allow(clippy::too_many_arguments)]
fn run(
    key: &StreamKey,
    viewer: &Viewer,
    hub: &Hub,
    mut conv: Converter,
    ctl: &Control,
    tx: &tokio::sync::mpsc::Sender<BranchOut>,
    wake: &tokio::sync::Notify,
    rt: &tokio::runtime::Handle,
) -> String {
    let mut last_meter = Instant::now();
    match viewer.try_recv(usize::MAX) {
        Ok(backlog) => conv.join(&backlog),
        Err(why) => return format!("stream ended: {why}"),
    }
    loop {
        if ctl.stop.load(Ordering::Relaxed) {
            return "no viewer left".into();
        }
        match (ctl.idle.load(Ordering::Relaxed), conv.is_paused()) {
            (true, false) => conv.pause(),
            (false, true) => conv.resume(),
            _ => {}
        }
        if ctl.keyframe.swap(false, Ordering::Relaxed) {
            conv.request_keyframe();
        }
        let got = rt.block_on(async {
            tokio::time::timeout(Duration::from_millis(100), viewer.recv(64)).await
        });
        match got {
            Err(_) => {}
            Ok(Ok(frames)) => frames.iter().for_each(|f| conv.push(f)),
            Ok(Err(why)) => {
                let _ = tx.blocking_send(BranchOut::Ended(why.to_string()));
                wake.notify_one();
                return format!("stream ended: {why}");
            }
        }
        let mut sent = false;
        while let Some(m) = conv.pop() {
            if tx.blocking_send(BranchOut::Media(m)).is_err() {
                return "no viewer left".into();
            }
            sent = true;
        }
        if sent {
            wake.notify_one();
        }
        ctl.transcoding
            .store(conv.is_transcoding(), Ordering::Relaxed);
        let now = Instant::now();
        let dt = now.saturating_duration_since(last_meter);
        if conv.is_paused() {
            // Decoding for a viewer to come is not a viewer's conversion.
            last_meter = now;
        } else if dt >= METER_EVERY && conv.converts() {
            last_meter = now;
            meter(hub, key, &conv, dt.as_secs_f64());
        }
    }
}

fn meter(hub: &Hub, key: &StreamKey, conv: &Converter, secs: f64) {
    let video = conv.video_path();
    let audio = conv.audio_path();
    let dims = conv.dims();
    hub.update_conversion(key, |c, _| {
        c.video = video;
        c.audio = audio;
        if video == Some(VideoPath::Transcode) {
            let t = dims.map_or(Tier::Unknown, |(w, h)| Tier::of(w, h));
            *c.video_transcode_seconds.entry(t).or_default() += secs;
        }
        if audio == Some(AudioPath::AacToOpus) {
            c.audio_transcode_seconds += secs;
        }
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tiers_follow_the_fee_table() {
        let t = |w, h| Tier::of(w, h).as_str();
        assert_eq!(t(640, 360), "SD");
        assert_eq!(t(640, 480), "SD");
        assert_eq!(t(360, 640), "SD");
        assert_eq!(t(1280, 720), "HD");
        assert_eq!(t(960, 540), "HD");
        assert_eq!(t(1920, 1080), "FHD");
        assert_eq!(t(2560, 1440), "2K");
        assert_eq!(t(3840, 2160), "4K");
        let json = serde_json::to_string(&[Tier::Sd, Tier::TwoK, Tier::FourK]).unwrap();
        assert_eq!(json, r#"["SD","2K","4K"]"#);
        assert_eq!(
            serde_json::to_string(&[VideoPath::Transcode]).unwrap(),
            r#"["transcode"]"#
        );
        assert_eq!(
            serde_json::to_string(&[AudioPath::AacToOpus]).unwrap(),
            r#"["aac-to-opus"]"#
        );
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_branch_that_panics_ends_its_viewers_with_a_reason() {
        use crate::config::Limits;
        use crate::hub::{FrameKind, Protocol};
        let hub = Hub::new(Limits::default(), Arc::default());
        let key = StreamKey::new("push.localhost", "live", "demo");
        let mut publisher = hub.publish(key.clone(), Instant::now()).unwrap();
        let viewer = hub
            .play(&key, Protocol::Conversion, Instant::now())
            .unwrap();
        let mut conv = Converter::new(Mode::Auto, None, Delivery::Converted).unwrap();
        conv.panic_next = true;
        let wake = Arc::new(tokio::sync::Notify::new());
        let mut branch = spawn(key.clone(), viewer, hub.clone(), conv, wake).unwrap();
        assert!(publisher.push(
            Instant::now(),
            FrameKind::Audio,
            0,
            Bytes::from_static(&[0xaf, 0, 0x12, 0x10]),
        ));
        let out = tokio::time::timeout(Duration::from_secs(10), branch.rx.recv())
            .await
            .expect("the branch reports before 10 s");
        match out {
            Some(BranchOut::Ended(why)) => assert!(why.contains("conversion failed"), "{why}"),
            other => panic!("expected the end of the branch, got {other:?}"),
        }
        assert_eq!(hub.metrics().errors(ErrorKind::Internal), 1);
        // The thread is gone: nothing more comes, the channel is closed.
        let rest = tokio::time::timeout(Duration::from_secs(10), branch.rx.recv()).await;
        assert!(matches!(rest, Ok(None)));
    }

    /// The fixture's tags as the hub hands them to a branch.
    fn frames(fixture: &str) -> Option<Vec<Frame>> {
        use crate::hub::FrameKind;
        let path = rts_testkit::fixture(fixture)?;
        let mut buf = bytes::BytesMut::from(&std::fs::read(path).unwrap()[..]);
        let mut demux = rts_flv::Demuxer::new();
        let mut out = Vec::new();
        while let Some(tag) = demux.decode(&mut buf).unwrap() {
            let (kind, config, keyframe) = match tag.tag_type {
                rts_flv::TagType::Video => {
                    let (h, _) = VideoTagHeader::parse(&tag.data).unwrap();
                    (FrameKind::Video, h.is_sequence_header(), h.is_keyframe())
                }
                rts_flv::TagType::Audio => {
                    let (h, _) = AudioTagHeader::parse(&tag.data).unwrap();
                    (FrameKind::Audio, h.is_sequence_header(), false)
                }
                _ => continue,
            };
            out.push(Frame {
                kind,
                timestamp: tag.timestamp,
                payload: tag.data,
                keyframe,
                config,
            });
        }
        Some(out)
    }

    #[test]
    fn a_paused_converter_decodes_only_and_resumes_with_an_idr() {
        let Some(frames) = frames("media/main_bframes_nonref_aaclc48k.flv") else {
            return;
        };
        let mut conv = Converter::new(Mode::Transcode, None, Delivery::Converted).unwrap();
        let video = |conv: &mut Converter| {
            let mut v = Vec::new();
            let mut audio = 0;
            while let Some(m) = conv.pop() {
                match m {
                    Media::Video { keyframe, .. } => v.push(keyframe),
                    Media::Audio(_) => audio += 1,
                }
            }
            (v, audio)
        };
        let (third, rest) = frames.split_at(frames.len() / 3);
        third.iter().for_each(|f| conv.push(f));
        let (before, audio) = video(&mut conv);
        assert!(
            before.len() > 10 && audio > 10,
            "{} video, {audio} audio",
            before.len()
        );

        conv.pause();
        let (second, last) = rest.split_at(rest.len() / 2);
        let mut out = 0;
        for f in second {
            conv.push(f);
            out += conv.pop().is_some() as usize;
        }
        assert_eq!(out, 0, "nothing comes out while paused");

        conv.resume();
        let mut first = None;
        for (i, f) in last.iter().enumerate() {
            conv.push(f);
            let (v, _) = video(&mut conv);
            if let Some(&k) = v.first() {
                first = Some((i, k));
                break;
            }
        }
        let (after, keyframe) = first.expect("video again after resume");
        assert!(keyframe, "the first picture after resume is an IDR");
        assert!(after < 10, "within a few frames of resume: {after} frames");
        let (_, audio) = video(&mut conv);
        let more: usize = last
            .iter()
            .skip(after + 1)
            .map(|f| {
                conv.push(f);
                video(&mut conv).1
            })
            .sum();
        assert!(audio + more > 10, "audio again after resume");
    }

    #[test]
    fn clock_unwraps_32_bit_milliseconds() {
        let mut c = Clock::default();
        assert_eq!(c.unwrap(u32::MAX - 10), i64::from(u32::MAX - 10));
        assert_eq!(c.unwrap(5), i64::from(u32::MAX) + 6);
        assert_eq!(c.unwrap(0), i64::from(u32::MAX) + 1);
    }
}
