//! The stream hub: one publisher per {domain, app, stream}, fanned out to
//! any number of viewers without copying.
//!
//! A [`Publisher`] pushes FLV tag bodies ([`Frame`]s). The hub keeps what a
//! new viewer needs to start at once (metadata, the AVC and AAC sequence
//! headers, the frames since the last video keyframe) and appends each frame
//! to every viewer's bounded queue: the payload is one `Bytes`, shared.
//!
//! A viewer whose queue is full drops frames up to its next keyframe (others
//! are not affected); one that has been dropping for
//! [`Limits::max_behind_ms`](crate::config::Limits) is ended with
//! [`EndReason::TooSlow`]. When the publisher leaves, viewers stay for the
//! grace period; a publisher that comes back in time continues their stream
//! with timestamps that go on from where they were; otherwise [`Hub::tick`]
//! ends them with [`EndReason::Unpublished`].
//!
//! Nothing here reads the clock: every call takes `now`.

use std::collections::{HashMap, VecDeque};
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Instant;

use bytes::Bytes;
use rts_flv::{AudioCodec, AudioTagHeader, ScriptData, VideoCodec, VideoTagHeader};
use serde::Serialize;

use crate::branch::{AudioPath, Tier, VideoPath};
use crate::config::Limits;
use crate::metrics::{ErrorKind, Metrics};

/// Gap put between the last frame of a publisher and the first of the one
/// that replaces it within the grace period (ms).
const REPUBLISH_GAP_MS: u32 = 40;

/// Configs and metadata a viewer queue takes beyond its frame bound.
const CONFIG_SLACK: usize = 16;

/// Which stream: the ingest domain, the app and the stream name.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct StreamKey {
    /// Ingest domain name.
    pub domain: String,
    /// Application (`live`).
    pub app: String,
    /// Stream name (`demo`).
    pub stream: String,
}

impl StreamKey {
    /// A key.
    pub fn new(domain: &str, app: &str, stream: &str) -> Self {
        StreamKey {
            domain: domain.to_owned(),
            app: app.to_owned(),
            stream: stream.to_owned(),
        }
    }
}

impl std::fmt::Display for StreamKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}/{}", self.domain, self.app, self.stream)
    }
}

/// Audio, video or script data.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum FrameKind {
    /// FLV audio tag body.
    Audio,
    /// FLV video tag body.
    Video,
    /// `onMetaData` script tag body.
    Metadata,
}

/// One FLV tag body with its timestamp, as viewers get it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Frame {
    /// What it is.
    pub kind: FrameKind,
    /// Decoding timestamp in ms, continuous across a republish.
    pub timestamp: u32,
    /// The tag body (shared by every viewer).
    pub payload: Bytes,
    /// A point a viewer can start decoding from: a video keyframe, or any
    /// audio frame of a stream without video.
    pub keyframe: bool,
    /// A sequence header (decoder configuration) or metadata.
    pub config: bool,
}

/// The protocol a viewer plays over (for per-protocol counts).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Protocol {
    /// RTMP play.
    Rtmp,
    /// HTTP-FLV.
    Flv,
    /// WebRTC (ARTC / WHEP).
    Webrtc,
    /// The WebRTC conversion branch (one per stream, shared by its WebRTC
    /// viewers; not counted as a viewer).
    Conversion,
}

/// Why a viewer's stream ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum EndReason {
    /// The publisher left and did not come back within the grace period.
    #[error("the publisher stopped")]
    Unpublished,
    /// The viewer did not keep up for longer than allowed.
    #[error("the viewer fell too far behind and was disconnected")]
    TooSlow,
    /// The server is shutting down.
    #[error("the server is shutting down")]
    Shutdown,
}

/// Why a publish was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum PublishError {
    /// Someone publishes this stream already (and sent a frame less than
    /// `publisher_silence_ms` ago).
    #[error("stream already publishing")]
    AlreadyPublishing,
    /// The GOP caches of all streams hold `limits.max_buffered_bytes`.
    #[error(
        "the server is full: its streams buffer {buffered} bytes, the limit is {limit} (limits.max_buffered_bytes); try again later"
    )]
    ServerFull {
        /// Bytes buffered now.
        buffered: usize,
        /// The limit.
        limit: usize,
    },
    /// The hub is shutting down.
    #[error("the server is shutting down")]
    Shutdown,
}

/// Why a play was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum PlayError {
    /// Nothing publishes this stream.
    #[error("stream not found: nothing is publishing it")]
    NotFound,
}

/// What the API shows about a stream.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct StreamInfo {
    /// Ingest domain.
    pub domain: String,
    /// Application.
    pub app: String,
    /// Stream name.
    pub stream: String,
    /// Whether a publisher is connected (false during the grace period).
    pub publishing: bool,
    /// Video codec (`h264`, `hevc`, ...).
    pub video_codec: Option<String>,
    /// Audio codec (`aac`, `opus`, ...).
    pub audio_codec: Option<String>,
    /// Width in pixels (from metadata).
    pub width: Option<u32>,
    /// Height in pixels (from metadata).
    pub height: Option<u32>,
    /// Frames per second (metadata, else measured from timestamps).
    pub frame_rate: Option<f64>,
    /// Whether the video has B-frames (a non-zero composition time seen).
    pub b_frames: bool,
    /// Average input bitrate since publishing started, kbit/s.
    pub bitrate_in_kbps: f64,
    /// Bytes received from the publisher.
    pub bytes_in: u64,
    /// Bytes sent to viewers.
    pub bytes_out: u64,
    /// Viewers per protocol.
    pub viewers: ViewerCounts,
    /// Seconds since publishing started.
    pub uptime_s: f64,
    /// The WebRTC conversion branch and its metering.
    pub conversion: Conversion,
    /// Pushes of this stream to remote RTMP servers (the ingest domain's
    /// `push`).
    pub pushes: Vec<PushStatus>,
}

/// One push of a stream to a remote RTMP server, as the API shows it.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct PushStatus {
    /// The remote, `rtmp://host[:port]/app/{stream}` (without a key).
    pub url: String,
    /// `connecting`, `publishing`, `retrying` (waiting out the back-off) or
    /// `ended` (the stream ended).
    pub state: String,
    /// Connections tried so far.
    pub attempts: u64,
    /// Times it reached `publishing`.
    pub connects: u64,
    /// Why the last connection ended or failed.
    pub last_error: Option<String>,
    /// Bytes of media sent, over every connection.
    pub bytes_out: u64,
}

/// The WebRTC conversion branch of a stream (docs/conversion.md), as the
/// API shows it: what it does and how many seconds of
/// conversion it has metered since the stream was first published.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Conversion {
    /// Whether the branch runs now (at least one WebRTC viewer).
    pub running: bool,
    /// Whether a transcoding branch without viewers keeps decoding
    /// (`[webrtc] transcode_linger_s`), so the next viewer starts at once.
    pub warm: bool,
    /// Whether WebRTC viewers are being sent a WHIP publisher's RTP as it
    /// arrives (forwarded: nothing converted, nothing metered).
    pub forwarded: bool,
    /// Times a branch started for this stream.
    pub starts: u64,
    /// Times a warm branch took a viewer again (counted in `starts` too).
    pub resumes: u64,
    /// Video: `passthrough` (no B-frames), `transcode` (B-frames removed by
    /// decoding and re-encoding) or `unsupported` (not H.264).
    pub video: Option<VideoPath>,
    /// Audio: `passthrough` (Opus) or `aac-to-opus`.
    pub audio: Option<AudioPath>,
    /// Seconds of video transcoding, by source resolution tier (`SD` up to
    /// 640x480, `HD` 1280x720, `FHD` 1920x1080, `2K` 2560x1440, `4K` above).
    pub video_transcode_seconds: std::collections::BTreeMap<Tier, f64>,
    /// Seconds of audio transcoding (AAC to Opus).
    pub audio_transcode_seconds: f64,
    /// Opus turned into AAC for RTMP and FLV players (docs/conversion.md).
    pub opus_to_aac: OpusToAacInfo,
}

/// The Opus to AAC conversion of a stream, as the API shows it.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct OpusToAacInfo {
    /// Whether it runs now (at least one RTMP or FLV player that needs AAC).
    pub running: bool,
    /// Times it started.
    pub starts: u64,
    /// RTMP players it feeds (counted in the stream's `viewers` too).
    pub rtmp_viewers: u64,
    /// HTTP-FLV players it feeds (counted in the stream's `viewers` too).
    pub flv_viewers: u64,
    /// Seconds of audio converted while someone listened.
    pub seconds: f64,
}

/// Viewers per protocol.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct ViewerCounts {
    /// RTMP.
    pub rtmp: u64,
    /// HTTP-FLV.
    pub flv: u64,
    /// WebRTC.
    pub webrtc: u64,
}

#[derive(Debug, Default)]
struct Media {
    video_codec: Option<VideoCodec>,
    audio_codec: Option<AudioCodec>,
    width: Option<u32>,
    height: Option<u32>,
    meta_fps: Option<f64>,
    b_frames: bool,
    video_frames: u64,
    first_video_ts: Option<u32>,
    last_video_ts: u32,
    bytes_in: u64,
}

#[derive(Debug)]
struct State {
    publisher: Option<u64>,
    /// The publisher left at this time and may come back until the grace ends.
    left_at: Option<Instant>,
    started_at: Instant,
    metadata: Option<Frame>,
    video_config: Option<Frame>,
    audio_config: Option<Frame>,
    /// Frames since the last video keyframe; empty while it is too long.
    gop: Vec<Frame>,
    /// Payload bytes in `gop` (counted in [`Inner::buffered`] too).
    gop_bytes: usize,
    gop_overflow: bool,
    /// When the publisher last pushed a frame (or started).
    last_push: Instant,
    viewers: Vec<Arc<ViewerShared>>,
    /// Added to the publisher's timestamps.
    offset: u32,
    /// The next frame starts a new publication that continues the old one.
    rebase: bool,
    last_out_ts: Option<u32>,
    media: Media,
    conversion: Conversion,
    webrtc_viewers: u64,
    pushes: Vec<PushStatus>,
}

#[derive(Debug)]
struct StreamShared {
    key: StreamKey,
    state: Mutex<State>,
    bytes_out: AtomicU64,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    // A panic while holding a hub lock is a bug; the data stays usable.
    m.lock().unwrap_or_else(|e| e.into_inner())
}

#[derive(Debug)]
struct Inner {
    streams: Mutex<HashMap<StreamKey, Arc<StreamShared>>>,
    limits: Limits,
    next_id: AtomicU64,
    metrics: Arc<Metrics>,
    closed: Mutex<bool>,
    /// GOP bytes of every stream.
    buffered: AtomicUsize,
}

impl State {
    fn clear_gop(&mut self, buffered: &AtomicUsize) {
        self.gop.clear();
        buffered.fetch_sub(self.gop_bytes, Ordering::Relaxed);
        self.gop_bytes = 0;
    }

    fn push_gop(&mut self, frame: Frame, buffered: &AtomicUsize) {
        let n = frame.payload.len();
        self.gop_bytes = self.gop_bytes.saturating_add(n);
        buffered.fetch_add(n, Ordering::Relaxed);
        self.gop.push(frame);
    }
}

/// The hub. Cloning is cheap (shared).
#[derive(Debug, Clone)]
pub struct Hub {
    inner: Arc<Inner>,
}

impl Hub {
    /// A hub with these limits.
    pub fn new(limits: Limits, metrics: Arc<Metrics>) -> Self {
        Hub {
            inner: Arc::new(Inner {
                streams: Mutex::new(HashMap::new()),
                limits,
                next_id: AtomicU64::new(1),
                metrics,
                closed: Mutex::new(false),
                buffered: AtomicUsize::new(0),
            }),
        }
    }

    /// The metrics this hub counts into.
    pub fn metrics(&self) -> &Arc<Metrics> {
        &self.inner.metrics
    }

    fn id(&self) -> u64 {
        self.inner.next_id.fetch_add(1, Ordering::Relaxed)
    }

    /// Bytes held in the GOP caches of all streams.
    pub fn buffered_bytes(&self) -> usize {
        self.inner.buffered.load(Ordering::Relaxed)
    }

    /// Starts publishing `key`; refused when someone publishes it already
    /// and has sent a frame within `publisher_silence_ms`, or when the
    /// server buffers `max_buffered_bytes`. A publisher that replaces one
    /// that left less than the grace period ago, or one that went silent,
    /// keeps that one's viewers, whose timestamps continue.
    pub fn publish(&self, key: StreamKey, now: Instant) -> Result<Publisher, PublishError> {
        if *lock(&self.inner.closed) {
            return Err(PublishError::Shutdown);
        }
        let limits = self.inner.limits;
        let buffered = self.buffered_bytes();
        if buffered >= limits.max_buffered_bytes {
            return Err(PublishError::ServerFull {
                buffered,
                limit: limits.max_buffered_bytes,
            });
        }
        let id = self.id();
        let mut map = lock(&self.inner.streams);
        let stream = map
            .entry(key.clone())
            .or_insert_with(|| {
                Arc::new(StreamShared {
                    key,
                    state: Mutex::new(State {
                        publisher: None,
                        left_at: None,
                        started_at: now,
                        metadata: None,
                        video_config: None,
                        audio_config: None,
                        gop: Vec::new(),
                        gop_bytes: 0,
                        gop_overflow: false,
                        last_push: now,
                        viewers: Vec::new(),
                        offset: 0,
                        rebase: false,
                        last_out_ts: None,
                        media: Media::default(),
                        conversion: Conversion::default(),
                        webrtc_viewers: 0,
                        pushes: Vec::new(),
                    }),
                    bytes_out: AtomicU64::new(0),
                })
            })
            .clone();
        drop(map);
        let mut s = lock(&stream.state);
        if s.publisher.is_some() {
            let silent = now.saturating_duration_since(s.last_push);
            if silent < limits.publisher_silence() {
                return Err(PublishError::AlreadyPublishing);
            }
            // Half-open: nothing from it for publisher_silence_ms. The old
            // Publisher's pushes are ignored from now on (it sees
            // `push` return false) and the new one continues the stream.
            tracing::info!(
                stream = %stream.key,
                silent_ms = silent.as_millis(),
                "publisher replaced: nothing arrived from it for longer than publisher_silence_ms"
            );
            Metrics::add(&self.inner.metrics.publisher_takeovers, 1);
            s.publisher = None;
            s.left_at = Some(now);
        }
        s.publisher = Some(id);
        s.last_push = now;
        if s.left_at.take().is_some() {
            // Coming back within the grace period (or replacing a silent
            // publisher): what was kept belongs to the old encoder session.
            s.rebase = s.last_out_ts.is_some();
            s.metadata = None;
            s.video_config = None;
            s.audio_config = None;
            s.clear_gop(&self.inner.buffered);
            s.gop_overflow = false;
        }
        s.started_at = now;
        s.media = Media::default();
        drop(s);
        Ok(Publisher {
            hub: self.clone(),
            stream,
            id,
            left: false,
        })
    }

    /// Starts playing `key`: the viewer's queue starts with the metadata,
    /// the sequence headers and the current GOP.
    pub fn play(
        &self,
        key: &StreamKey,
        protocol: Protocol,
        now: Instant,
    ) -> Result<Viewer, PlayError> {
        let stream = lock(&self.inner.streams)
            .get(key)
            .cloned()
            .ok_or(PlayError::NotFound)?;
        let limits = self.inner.limits;
        let shared = Arc::new(ViewerShared {
            id: self.id(),
            protocol,
            queue: Mutex::new(Queue::default()),
            notify: tokio::sync::Notify::new(),
        });
        let mut s = lock(&stream.state);
        if s.publisher.is_none() && s.left_at.is_none() {
            return Err(PlayError::NotFound);
        }
        {
            let mut q = lock(&shared.queue);
            let start = [&s.metadata, &s.video_config, &s.audio_config];
            for f in start.into_iter().flatten() {
                q.push(f.clone(), now, &limits);
            }
            for f in &s.gop {
                q.push(f.clone(), now, &limits);
            }
        }
        s.viewers.push(shared.clone());
        drop(s);
        Ok(Viewer { shared, stream })
    }

    /// Ends streams whose publisher left more than the grace period ago;
    /// call it now and then (the server does, every 100 ms).
    pub fn tick(&self, now: Instant) {
        let grace = self.inner.limits.publisher_grace();
        let mut map = lock(&self.inner.streams);
        map.retain(|_, stream| {
            let mut s = lock(&stream.state);
            match s.left_at {
                Some(t) if now.saturating_duration_since(t) >= grace => {
                    end_all(&mut s, EndReason::Unpublished);
                    s.clear_gop(&self.inner.buffered);
                    false
                }
                _ => s.publisher.is_some() || s.left_at.is_some(),
            }
        });
    }

    /// Ends every viewer and refuses new publishers (server shutdown).
    pub fn shutdown(&self) {
        *lock(&self.inner.closed) = true;
        let map = std::mem::take(&mut *lock(&self.inner.streams));
        for stream in map.values() {
            let mut s = lock(&stream.state);
            end_all(&mut s, EndReason::Shutdown);
            s.clear_gop(&self.inner.buffered);
        }
    }

    /// What the API shows about every stream, sorted by key.
    pub fn streams(&self, now: Instant) -> Vec<StreamInfo> {
        let streams: Vec<_> = lock(&self.inner.streams).values().cloned().collect();
        let mut out: Vec<_> = streams.iter().map(|s| info(s, now)).collect();
        out.sort_by(|a, b| (&a.domain, &a.app, &a.stream).cmp(&(&b.domain, &b.app, &b.stream)));
        out
    }

    /// What the API shows about one stream.
    pub fn stream(&self, key: &StreamKey, now: Instant) -> Option<StreamInfo> {
        let s = lock(&self.inner.streams).get(key).cloned()?;
        Some(info(&s, now))
    }

    /// The audio codec `key` publishes now, once its first audio tag came.
    pub fn audio_codec(&self, key: &StreamKey) -> Option<AudioCodec> {
        let s = lock(&self.inner.streams).get(key).cloned()?;
        lock(&s.state).media.audio_codec
    }

    /// Viewers of `key` per protocol (zero for a stream the hub does not
    /// have).
    pub fn viewers(&self, key: &StreamKey) -> ViewerCounts {
        match lock(&self.inner.streams).get(key).cloned() {
            Some(s) => count_viewers(&lock(&s.state)),
            None => ViewerCounts::default(),
        }
    }

    /// Updates the API's view of the push of `key` to `url`.
    pub fn update_push(&self, key: &StreamKey, url: &str, f: impl FnOnce(&mut PushStatus)) {
        let Some(stream) = lock(&self.inner.streams).get(key).cloned() else {
            return;
        };
        let mut s = lock(&stream.state);
        let i = match s.pushes.iter().position(|p| p.url == url) {
            Some(i) => i,
            None => {
                s.pushes.push(PushStatus {
                    url: url.to_owned(),
                    ..PushStatus::default()
                });
                s.pushes.len().saturating_sub(1)
            }
        };
        if let Some(p) = s.pushes.get_mut(i) {
            f(p);
        }
    }

    /// Updates what the API shows of a stream's conversions and the number
    /// of WebRTC viewers. Nothing happens for a stream the hub no longer
    /// has.
    pub fn update_conversion(&self, key: &StreamKey, f: impl FnOnce(&mut Conversion, &mut u64)) {
        let Some(stream) = lock(&self.inner.streams).get(key).cloned() else {
            return;
        };
        let mut s = lock(&stream.state);
        let s = &mut *s;
        f(&mut s.conversion, &mut s.webrtc_viewers);
    }
}

fn end_all(s: &mut State, why: EndReason) {
    for v in s.viewers.drain(..) {
        lock(&v.queue).end.get_or_insert(why);
        v.notify.notify_one();
    }
}

fn count_viewers(s: &State) -> ViewerCounts {
    let mut viewers = ViewerCounts::default();
    for v in &s.viewers {
        let c = match v.protocol {
            Protocol::Rtmp => &mut viewers.rtmp,
            Protocol::Flv => &mut viewers.flv,
            Protocol::Webrtc => &mut viewers.webrtc,
            Protocol::Conversion => continue,
        };
        *c = c.saturating_add(1);
    }
    viewers
}

fn info(stream: &StreamShared, now: Instant) -> StreamInfo {
    let s = lock(&stream.state);
    let m = &s.media;
    let mut viewers = count_viewers(&s);
    viewers.webrtc = viewers.webrtc.saturating_add(s.webrtc_viewers);
    let aac = &s.conversion.opus_to_aac;
    viewers.rtmp = viewers.rtmp.saturating_add(aac.rtmp_viewers);
    viewers.flv = viewers.flv.saturating_add(aac.flv_viewers);
    let uptime = now.saturating_duration_since(s.started_at).as_secs_f64();
    let measured_fps = m.first_video_ts.and_then(|first| {
        let span = m.last_video_ts.wrapping_sub(first);
        (span > 0 && m.video_frames > 1)
            .then(|| (m.video_frames.saturating_sub(1)) as f64 * 1000.0 / f64::from(span))
    });
    StreamInfo {
        domain: stream.key.domain.clone(),
        app: stream.key.app.clone(),
        stream: stream.key.stream.clone(),
        publishing: s.publisher.is_some(),
        video_codec: m.video_codec.map(video_name),
        audio_codec: m.audio_codec.map(audio_name),
        width: m.width,
        height: m.height,
        frame_rate: m
            .meta_fps
            .or(measured_fps)
            .map(|f| (f * 100.0).round() / 100.0),
        b_frames: m.b_frames,
        bitrate_in_kbps: if uptime > 0.0 {
            (m.bytes_in as f64 * 8.0 / 1000.0 / uptime * 10.0).round() / 10.0
        } else {
            0.0
        },
        bytes_in: m.bytes_in,
        bytes_out: stream.bytes_out.load(Ordering::Relaxed),
        viewers,
        uptime_s: (uptime * 10.0).round() / 10.0,
        conversion: s.conversion.clone(),
        pushes: s.pushes.clone(),
    }
}

fn video_name(c: VideoCodec) -> String {
    match c {
        VideoCodec::Avc => "h264".into(),
        VideoCodec::Hevc => "hevc".into(),
        other => format!("{other:?}").to_ascii_lowercase(),
    }
}

fn audio_name(c: AudioCodec) -> String {
    match c {
        AudioCodec::Aac => "aac".into(),
        AudioCodec::Opus => "opus".into(),
        AudioCodec::Mp3 => "mp3".into(),
        other => format!("{other:?}").to_ascii_lowercase(),
    }
}

/// The publishing side of a stream. Dropping it is leaving.
#[derive(Debug)]
pub struct Publisher {
    hub: Hub,
    stream: Arc<StreamShared>,
    id: u64,
    left: bool,
}

impl Publisher {
    /// The stream.
    pub fn key(&self) -> &StreamKey {
        &self.stream.key
    }

    /// Pushes an FLV tag body of `kind`: an audio or video tag body at
    /// `timestamp` (ms), or an `onMetaData` script body (its timestamp is
    /// not used). False when this publisher no longer owns the stream (a
    /// new one replaced it after `publisher_silence_ms` without frames):
    /// nothing was pushed; close its connection.
    #[must_use = "false means the publisher lost its stream; close its connection"]
    pub fn push(&mut self, now: Instant, kind: FrameKind, timestamp: u32, payload: Bytes) -> bool {
        let mut s = lock(&self.stream.state);
        if s.publisher != Some(self.id) {
            return false;
        }
        s.last_push = now;
        match kind {
            FrameKind::Metadata => self.push_metadata(&mut s, now, payload),
            FrameKind::Audio | FrameKind::Video => {
                self.push_media(&mut s, now, kind, timestamp, payload);
            }
        }
        true
    }

    fn push_metadata(&self, s: &mut State, now: Instant, payload: Bytes) {
        if let Ok(script) = ScriptData::parse(&payload) {
            let num = |k: &str| script.number(k).filter(|v| v.is_finite() && *v > 0.0);
            s.media.width = num("width").map(|v| v as u32);
            s.media.height = num("height").map(|v| v as u32);
            s.media.meta_fps = num("framerate").or_else(|| num("videoframerate"));
        }
        let frame = self.frame(s, FrameKind::Metadata, 0, payload, false, true);
        s.metadata = Some(frame.clone());
        self.fan_out(s, frame, now);
    }

    fn push_media(
        &self,
        s: &mut State,
        now: Instant,
        kind: FrameKind,
        timestamp: u32,
        payload: Bytes,
    ) {
        let video = kind == FrameKind::Video;
        s.media.bytes_in = s.media.bytes_in.saturating_add(payload.len() as u64);
        let (kind, keyframe, config) = if video {
            match VideoTagHeader::parse(&payload) {
                Ok((h, _)) => {
                    s.media.video_codec = Some(h.codec);
                    if h.is_sequence_header() {
                        (FrameKind::Video, false, true)
                    } else {
                        if h.composition_time != 0 {
                            s.media.b_frames = true;
                        }
                        s.media.video_frames = s.media.video_frames.saturating_add(1);
                        s.media.first_video_ts.get_or_insert(timestamp);
                        s.media.last_video_ts = timestamp;
                        (FrameKind::Video, h.is_keyframe(), false)
                    }
                }
                Err(_) => {
                    self.hub.metrics().error(ErrorKind::Media);
                    (FrameKind::Video, false, false)
                }
            }
        } else {
            match AudioTagHeader::parse(&payload) {
                Ok((h, _)) => {
                    s.media.audio_codec = Some(h.codec);
                    let seq = h.is_sequence_header();
                    (FrameKind::Audio, !seq && s.video_config.is_none(), seq)
                }
                Err(_) => {
                    self.hub.metrics().error(ErrorKind::Media);
                    (FrameKind::Audio, false, false)
                }
            }
        };
        let frame = self.frame(s, kind, timestamp, payload, keyframe, config);
        let limits = &self.hub.inner.limits;
        let buffered = &self.hub.inner.buffered;
        if config {
            match kind {
                FrameKind::Video => s.video_config = Some(frame.clone()),
                _ => s.audio_config = Some(frame.clone()),
            }
        } else if keyframe {
            s.clear_gop(buffered);
            s.gop_overflow = frame.payload.len() > limits.max_gop_bytes;
            if !s.gop_overflow {
                s.push_gop(frame.clone(), buffered);
            }
        } else if !s.gop_overflow && !s.gop.is_empty() {
            let bytes = s.gop_bytes.saturating_add(frame.payload.len());
            if s.gop.len() >= limits.max_gop_frames || bytes > limits.max_gop_bytes {
                // Too long to cache: new viewers wait for the next keyframe.
                s.clear_gop(buffered);
                s.gop_overflow = true;
            } else {
                s.push_gop(frame.clone(), buffered);
            }
        }
        self.fan_out(s, frame, now);
    }

    fn frame(
        &self,
        s: &mut State,
        kind: FrameKind,
        timestamp: u32,
        payload: Bytes,
        keyframe: bool,
        config: bool,
    ) -> Frame {
        if s.rebase {
            s.rebase = false;
            let last = s.last_out_ts.unwrap_or(0);
            s.offset = last.wrapping_add(REPUBLISH_GAP_MS).wrapping_sub(timestamp);
        }
        let ts = timestamp.wrapping_add(s.offset);
        if kind != FrameKind::Metadata {
            s.last_out_ts = Some(ts);
        }
        Frame {
            kind,
            timestamp: ts,
            payload,
            keyframe,
            config,
        }
    }

    fn fan_out(&self, s: &mut State, frame: Frame, now: Instant) {
        let limits = &self.hub.inner.limits;
        let metrics = self.hub.metrics();
        s.viewers.retain(|v| {
            let keep = lock(&v.queue).push(frame.clone(), now, limits);
            v.notify.notify_one();
            if !keep {
                metrics.error(ErrorKind::SlowViewer);
            }
            keep
        });
    }

    /// Leaves: viewers stay for the grace period (ended by [`Hub::tick`]),
    /// or end now when the grace period is zero.
    pub fn leave(mut self, now: Instant) {
        self.leave_at(now);
    }

    /// Ends the stream now, without a grace period: its viewers get `why`
    /// and the name is free (a derived stream whose source ended).
    pub fn end(mut self, why: EndReason) {
        self.end_when(why, |_| true);
    }

    /// Ends the stream now if nobody watches it (viewers of protocol
    /// [`Protocol::Conversion`] aside), atomically with [`Hub::play`]: a
    /// viewer either joined before and the stream goes on, or finds no
    /// stream. Returns whether it ended.
    pub fn end_if_unwatched(&mut self) -> bool {
        self.end_when(EndReason::Unpublished, |s| {
            s.viewers.iter().all(|v| v.protocol == Protocol::Conversion)
        })
    }

    /// Ends the stream now if this publisher still owns it and `when`
    /// holds, under the streams' lock (so no [`Hub::play`] slips in);
    /// returns whether it is ended (also when it was no longer ours).
    fn end_when(&mut self, why: EndReason, when: impl FnOnce(&State) -> bool) -> bool {
        let mut map = lock(&self.hub.inner.streams);
        let mut s = lock(&self.stream.state);
        if s.publisher != Some(self.id) {
            self.left = true;
            return true;
        }
        if !when(&s) {
            return false;
        }
        s.publisher = None;
        end_all(&mut s, why);
        s.clear_gop(&self.hub.inner.buffered);
        drop(s);
        map.remove(&self.stream.key);
        self.left = true;
        true
    }

    /// Whether a new publisher took the stream over (after this one was
    /// silent for `publisher_silence_ms`).
    pub fn replaced(&self) -> bool {
        lock(&self.stream.state).publisher != Some(self.id) && !self.left
    }

    fn leave_at(&mut self, now: Instant) {
        if self.left {
            return;
        }
        self.left = true;
        let mut s = lock(&self.stream.state);
        if s.publisher != Some(self.id) {
            return;
        }
        s.publisher = None;
        s.left_at = Some(now);
        drop(s);
        if self.hub.inner.limits.publisher_grace_ms == 0 {
            self.hub.tick(now);
        }
    }
}

impl Drop for Publisher {
    fn drop(&mut self) {
        self.leave_at(Instant::now());
    }
}

#[derive(Debug)]
struct Queue {
    frames: VecDeque<Frame>,
    /// Payload bytes in `frames`.
    bytes: usize,
    /// Waiting for a keyframe: at the start, and after falling behind.
    need_key: bool,
    /// Dropping until the next keyframe, since this time.
    behind_since: Option<Instant>,
    dropped: u64,
    end: Option<EndReason>,
}

impl Default for Queue {
    fn default() -> Self {
        Queue {
            frames: VecDeque::new(),
            bytes: 0,
            need_key: true,
            behind_since: None,
            dropped: 0,
            end: None,
        }
    }
}

impl Queue {
    fn append(&mut self, frame: Frame) {
        self.bytes = self.bytes.saturating_add(frame.payload.len());
        self.frames.push_back(frame);
    }

    /// Appends a frame; false when the viewer is to be ended. Full at
    /// `viewer_queue_frames` frames or `max_gop_bytes` bytes: what a new
    /// viewer's cached GOP may take, so a joiner always fits.
    fn push(&mut self, frame: Frame, now: Instant, limits: &Limits) -> bool {
        if self.end.is_some() {
            return false;
        }
        let cap = limits.viewer_queue_frames;
        if frame.config {
            // Decoder configurations are never dropped (a viewer cannot
            // decode without them); they are rare and the slack bounds them.
            if self.frames.len() < cap.saturating_add(CONFIG_SLACK) {
                self.append(frame);
            }
            return true;
        }
        let full = self.frames.len() >= cap
            || self.bytes.saturating_add(frame.payload.len()) > limits.max_gop_bytes;
        if self.need_key {
            if frame.keyframe && !full {
                self.need_key = false;
                self.behind_since = None;
                self.append(frame);
            } else if let Some(since) = self.behind_since {
                self.dropped = self.dropped.saturating_add(1);
                if now.saturating_duration_since(since) >= limits.max_behind() {
                    self.end = Some(EndReason::TooSlow);
                    self.frames.clear();
                    self.bytes = 0;
                    return false;
                }
            }
        } else if full {
            self.need_key = true;
            self.behind_since = Some(now);
            self.dropped = self.dropped.saturating_add(1);
        } else {
            self.append(frame);
        }
        true
    }
}

#[derive(Debug)]
struct ViewerShared {
    id: u64,
    protocol: Protocol,
    queue: Mutex<Queue>,
    notify: tokio::sync::Notify,
}

/// The playing side of a stream. Dropping it leaves at once.
#[derive(Debug)]
pub struct Viewer {
    shared: Arc<ViewerShared>,
    stream: Arc<StreamShared>,
}

impl Viewer {
    /// The stream.
    pub fn key(&self) -> &StreamKey {
        &self.stream.key
    }

    /// Takes up to `max` queued frames without waiting: `Ok(empty)` when
    /// none is queued, `Err` once the stream ended and the queue is empty.
    pub fn try_recv(&self, max: usize) -> Result<Vec<Frame>, EndReason> {
        let mut q = lock(&self.shared.queue);
        if q.frames.is_empty()
            && let Some(e) = q.end
        {
            return Err(e);
        }
        let n = q.frames.len().min(max);
        let out: Vec<Frame> = q.frames.drain(..n).collect();
        let taken = out.iter().map(|f| f.payload.len()).sum::<usize>();
        q.bytes = q.bytes.saturating_sub(taken);
        Ok(out)
    }

    /// Waits for at least one frame and takes up to `max`.
    pub async fn recv(&self, max: usize) -> Result<Vec<Frame>, EndReason> {
        loop {
            let got = self.try_recv(max)?;
            if !got.is_empty() {
                return Ok(got);
            }
            self.shared.notify.notified().await;
        }
    }

    /// Frames this viewer dropped because it was behind.
    pub fn dropped(&self) -> u64 {
        lock(&self.shared.queue).dropped
    }

    /// Counts bytes sent to this viewer (for the API).
    pub fn count_bytes_out(&self, n: usize) {
        self.stream.bytes_out.fetch_add(n as u64, Ordering::Relaxed);
    }
}

impl Drop for Viewer {
    fn drop(&mut self) {
        let id = self.shared.id;
        lock(&self.stream.state).viewers.retain(|v| v.id != id);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn hub(limits: Limits) -> Hub {
        Hub::new(limits, Arc::new(Metrics::default()))
    }

    fn limits() -> Limits {
        Limits {
            viewer_queue_frames: 16,
            max_behind_ms: 1000,
            publisher_grace_ms: 2000,
            max_gop_frames: 64,
            ..Limits::default()
        }
    }

    const AVC_SEQ: &[u8] = &[0x17, 0, 0, 0, 0, 1, 0x64, 0, 0x1f];
    const AAC_SEQ: &[u8] = &[0xaf, 0, 0x12, 0x10];

    fn key_frame(n: u8) -> Bytes {
        Bytes::from(vec![0x17, 1, 0, 0, 0, n])
    }
    fn inter(n: u8) -> Bytes {
        Bytes::from(vec![0x27, 1, 0, 0, 0x21, n])
    }
    fn audio(n: u8) -> Bytes {
        Bytes::from(vec![0xaf, 1, n])
    }

    fn key() -> StreamKey {
        StreamKey::new("push.localhost", "live", "demo")
    }

    fn start(h: &Hub, t: Instant) -> Publisher {
        let mut p = h.publish(key(), t).unwrap();
        assert!(p.push(t, FrameKind::Video, 0, Bytes::from_static(AVC_SEQ)));
        assert!(p.push(t, FrameKind::Audio, 0, Bytes::from_static(AAC_SEQ)));
        p
    }

    fn all(v: &Viewer) -> Vec<Frame> {
        v.try_recv(usize::MAX).unwrap()
    }

    #[test]
    fn second_publisher_is_refused_first_goes_on() {
        let h = hub(limits());
        let t = Instant::now();
        let mut p = start(&h, t);
        assert_eq!(
            h.publish(key(), t).unwrap_err(),
            PublishError::AlreadyPublishing
        );
        assert_eq!(
            PublishError::AlreadyPublishing.to_string(),
            "stream already publishing"
        );
        assert!(p.push(t, FrameKind::Video, 0, key_frame(1)));
        let v = h.play(&key(), Protocol::Flv, t).unwrap();
        assert_eq!(all(&v).len(), 3);
        // Another stream name is free.
        assert!(
            h.publish(StreamKey::new("push.localhost", "live", "other"), t)
                .is_ok()
        );
    }

    #[test]
    fn new_viewer_starts_with_configs_and_gop_sharing_payloads() {
        let h = hub(limits());
        let t = Instant::now();
        assert_eq!(
            h.play(&key(), Protocol::Rtmp, t).unwrap_err(),
            PlayError::NotFound
        );
        let mut p = start(&h, t);
        let mut meta = bytes::BytesMut::new();
        ScriptData::metadata(rts_flv::amf0::Value::ecma_array([
            ("width", rts_flv::amf0::Value::from(640.0)),
            ("height", rts_flv::amf0::Value::from(360.0)),
            ("framerate", rts_flv::amf0::Value::from(30.0)),
        ]))
        .encode(&mut meta);
        assert!(p.push(t, FrameKind::Metadata, 0, meta.freeze()));
        assert!(p.push(t, FrameKind::Video, 0, key_frame(1)));
        assert!(p.push(t, FrameKind::Video, 33, inter(2)));
        assert!(p.push(t, FrameKind::Video, 66, key_frame(3)));
        assert!(p.push(t, FrameKind::Audio, 70, audio(4)));
        assert!(p.push(t, FrameKind::Video, 100, inter(5)));
        let v = h.play(&key(), Protocol::Flv, t).unwrap();
        let got = all(&v);
        let kinds: Vec<_> = got
            .iter()
            .map(|f| (f.kind, f.timestamp, f.keyframe, f.config))
            .collect();
        assert_eq!(
            kinds,
            [
                (FrameKind::Metadata, 0, false, true),
                (FrameKind::Video, 0, false, true),
                (FrameKind::Audio, 0, false, true),
                (FrameKind::Video, 66, true, false),
                (FrameKind::Audio, 70, false, false),
                (FrameKind::Video, 100, false, false),
            ]
        );
        // Live frames reach the viewer as the same allocation.
        let frame = inter(6);
        assert!(p.push(t, FrameKind::Video, 133, frame.clone()));
        let live = all(&v);
        assert_eq!(live[0].payload.as_ptr(), frame.as_ptr());
        let info = h.stream(&key(), t + Duration::from_secs(1)).unwrap();
        assert_eq!(
            (info.width, info.height, info.frame_rate),
            (Some(640), Some(360), Some(30.0))
        );
        assert_eq!(info.video_codec.as_deref(), Some("h264"));
        assert_eq!(info.audio_codec.as_deref(), Some("aac"));
        assert!(info.b_frames);
        assert_eq!(
            info.viewers,
            ViewerCounts {
                rtmp: 0,
                flv: 1,
                webrtc: 0
            }
        );
        drop(v);
        assert_eq!(h.stream(&key(), t).unwrap().viewers.flv, 0);
    }

    #[test]
    fn slow_viewer_drops_to_next_keyframe_alone_then_is_ended() {
        let h = hub(limits());
        let t = Instant::now();
        let mut p = start(&h, t);
        let slow = h.play(&key(), Protocol::Flv, t).unwrap();
        let fast = h.play(&key(), Protocol::Rtmp, t).unwrap();
        let mut fast_got = all(&fast).len();
        let mut ts = 0u32;
        let mut push = |p: &mut Publisher, at: Instant, key: bool| {
            ts += 33;
            assert!(p.push(
                at,
                FrameKind::Video,
                ts,
                if key { key_frame(0) } else { inter(0) },
            ));
        };
        // 30 frames: slow's queue (16) fills; it drops the rest.
        push(&mut p, t, true);
        for _ in 0..29 {
            push(&mut p, t, false);
            fast_got += all(&fast).len();
        }
        assert_eq!(fast_got, 2 + 30, "the fast viewer lost nothing");
        assert!(slow.dropped() > 0);
        // The slow viewer catches up: it gets the frames it had, then the
        // next keyframe, never an inter frame after a gap.
        let had = all(&slow);
        assert_eq!(had.len(), 16);
        push(&mut p, t, false);
        assert!(all(&slow).is_empty(), "dropping until the next keyframe");
        push(&mut p, t, true);
        let next = all(&slow);
        assert!(next[0].keyframe);
        // Now it stops reading for longer than max_behind: it is ended.
        for i in 0..40 {
            push(&mut p, t + Duration::from_millis(100 * i), i % 10 == 0);
            let _ = all(&fast);
        }
        assert!(h.stream(&key(), t).unwrap().viewers.flv == 0);
        let rest = slow.try_recv(usize::MAX);
        assert_eq!(rest, Err(EndReason::TooSlow));
        assert_eq!(h.metrics().errors(ErrorKind::SlowViewer), 1);
        assert_eq!(h.stream(&key(), t).unwrap().viewers.rtmp, 1);
    }

    #[test]
    fn republish_within_grace_continues_timestamps() {
        let h = hub(limits());
        let t = Instant::now();
        let mut p = start(&h, t);
        assert!(p.push(t, FrameKind::Video, 1000, key_frame(1)));
        assert!(p.push(t, FrameKind::Video, 1033, inter(2)));
        let v = h.play(&key(), Protocol::Rtmp, t).unwrap();
        let _ = all(&v);
        p.leave(t);
        h.tick(t + Duration::from_millis(1999));
        assert!(
            v.try_recv(1).unwrap().is_empty(),
            "still waiting within the grace"
        );
        let mut p2 = h.publish(key(), t + Duration::from_millis(1999)).unwrap();
        assert!(p2.push(t, FrameKind::Video, 0, Bytes::from_static(AVC_SEQ)));
        assert!(p2.push(t, FrameKind::Video, 0, key_frame(3)));
        assert!(p2.push(t, FrameKind::Video, 33, inter(4)));
        let got: Vec<_> = all(&v).iter().map(|f| f.timestamp).collect();
        assert_eq!(got, [1073, 1073, 1106]);
        // A new viewer gets only the new session's config and GOP.
        let v2 = h.play(&key(), Protocol::Flv, t).unwrap();
        assert_eq!(all(&v2).len(), 3);
        h.tick(t + Duration::from_secs(60));
        assert!(!all(&v).is_empty() || v.try_recv(1).is_ok());
    }

    #[test]
    fn a_silent_publisher_loses_the_stream_and_viewers_continue() {
        let h = hub(limits());
        let t = Instant::now();
        let mut p = start(&h, t);
        assert!(p.push(t, FrameKind::Video, 1000, key_frame(1)));
        let v = h.play(&key(), Protocol::Rtmp, t).unwrap();
        let _ = all(&v);
        // Still sending: a second publisher is refused.
        let soon = t + Duration::from_millis(2999);
        assert_eq!(
            h.publish(key(), soon).unwrap_err(),
            PublishError::AlreadyPublishing
        );
        // Nothing for publisher_silence_ms (3 s): the stream is taken over.
        let later = t + Duration::from_millis(3000);
        let mut p2 = h.publish(key(), later).unwrap();
        assert!(p2.push(later, FrameKind::Video, 0, Bytes::from_static(AVC_SEQ)));
        assert!(p2.push(later, FrameKind::Video, 0, key_frame(2)));
        // The same viewer goes on, timestamps continuing after 1000.
        let got: Vec<_> = all(&v).iter().map(|f| f.timestamp).collect();
        assert_eq!(got, [1040, 1040]);
        // The old publisher's late frames are refused and change nothing;
        // its leaving does not end the new one.
        assert!(!p.push(later, FrameKind::Video, 1033, key_frame(9)));
        assert!(p.replaced());
        p.leave(later);
        assert!(all(&v).is_empty());
        assert!(h.stream(&key(), later).unwrap().publishing);
        assert_eq!(h.metrics().publisher_takeovers.load(Ordering::Relaxed), 1);
    }

    #[test]
    fn gop_cache_is_bounded_in_bytes_per_stream_and_in_all() {
        let mut l = limits();
        l.max_gop_bytes = 100;
        l.max_buffered_bytes = 150;
        let h = hub(l);
        let t = Instant::now();
        let mut p = start(&h, t);
        let big = |n: u8, len: usize| {
            let mut b = vec![0x27, 1, 0, 0, 0];
            b.resize(len, n);
            Bytes::from(b)
        };
        assert!(p.push(t, FrameKind::Video, 0, key_frame(1)));
        assert!(p.push(t, FrameKind::Video, 33, big(2, 60)));
        assert_eq!(h.buffered_bytes(), 66);
        // A joiner gets the cached GOP (it fits its queue).
        let v = h.play(&key(), Protocol::Flv, t).unwrap();
        assert_eq!(all(&v).len(), 4, "2 configs + keyframe + inter");
        // Past 100 bytes the GOP is not cached; a joiner waits for the
        // next keyframe.
        assert!(p.push(t, FrameKind::Video, 66, big(3, 60)));
        assert_eq!(h.buffered_bytes(), 0);
        let late = h.play(&key(), Protocol::Flv, t).unwrap();
        assert_eq!(all(&late).len(), 2, "configs only");
        assert!(p.push(t, FrameKind::Video, 100, key_frame(4)));
        assert_eq!(all(&late).len(), 1);
        // All streams: past max_buffered_bytes a new publisher is refused.
        assert!(p.push(t, FrameKind::Video, 133, big(5, 90)));
        assert_eq!(h.buffered_bytes(), 96);
        let other = StreamKey::new("push.localhost", "live", "other");
        let mut q = h.publish(other.clone(), t).unwrap();
        assert!(q.push(t, FrameKind::Video, 0, key_frame(1)));
        assert!(q.push(t, FrameKind::Video, 33, big(6, 90)));
        assert_eq!(h.buffered_bytes(), 192);
        let third = StreamKey::new("push.localhost", "live", "third");
        let e = h.publish(third, t).unwrap_err();
        assert!(matches!(
            e,
            PublishError::ServerFull {
                buffered: 192,
                limit: 150
            }
        ));
        assert!(e.to_string().contains("max_buffered_bytes"), "{e}");
        // Streams that end give their bytes back.
        q.leave(t);
        h.tick(t + Duration::from_secs(3));
        assert_eq!(h.buffered_bytes(), 96);
    }

    #[test]
    fn publisher_gone_past_grace_ends_viewers_and_frees_the_name() {
        let h = hub(limits());
        let t = Instant::now();
        let p = start(&h, t);
        let v = h.play(&key(), Protocol::Rtmp, t).unwrap();
        let _ = all(&v);
        p.leave(t);
        h.tick(t + Duration::from_millis(2000));
        assert_eq!(v.try_recv(1), Err(EndReason::Unpublished));
        assert!(h.streams(t).is_empty());
        assert_eq!(
            h.play(&key(), Protocol::Rtmp, t).unwrap_err(),
            PlayError::NotFound
        );
        assert!(h.publish(key(), t).is_ok());
    }

    #[test]
    fn a_derived_stream_ends_at_once_or_only_when_unwatched() {
        let h = hub(limits());
        let t = Instant::now();
        let mut p = start(&h, t);
        let conversion = h.play(&key(), Protocol::Conversion, t).unwrap();
        let v = h.play(&key(), Protocol::Flv, t).unwrap();
        assert_eq!(h.viewers(&key()).flv, 1);
        assert!(!p.end_if_unwatched(), "a player watches");
        drop(v);
        assert!(p.end_if_unwatched(), "only a conversion reads it");
        let _ = all(&conversion);
        assert_eq!(conversion.try_recv(1), Err(EndReason::Unpublished));
        assert_eq!(
            h.play(&key(), Protocol::Flv, t).unwrap_err(),
            PlayError::NotFound
        );
        // No grace period for `end`: its viewers get the reason now.
        let p = start(&h, t);
        let v = h.play(&key(), Protocol::Rtmp, t).unwrap();
        let _ = all(&v);
        p.end(EndReason::Shutdown);
        assert_eq!(v.try_recv(1), Err(EndReason::Shutdown));
        assert!(h.streams(t).is_empty());
        assert!(h.publish(key(), t).is_ok());
    }

    #[test]
    fn zero_grace_ends_at_once_and_shutdown_ends_everyone() {
        let h = hub(Limits {
            publisher_grace_ms: 0,
            ..limits()
        });
        let t = Instant::now();
        let p = start(&h, t);
        let v = h.play(&key(), Protocol::Flv, t).unwrap();
        let _ = all(&v);
        drop(p);
        assert_eq!(v.try_recv(1), Err(EndReason::Unpublished));
        let _p = start(&h, t);
        let v = h.play(&key(), Protocol::Flv, t).unwrap();
        h.shutdown();
        assert_eq!(all(&v).len(), 2, "queued frames are still delivered");
        assert_eq!(v.try_recv(1), Err(EndReason::Shutdown));
        assert_eq!(h.publish(key(), t).unwrap_err(), PublishError::Shutdown);
    }

    #[test]
    fn audio_only_streams_start_at_any_frame_and_gop_is_bounded() {
        let h = hub(limits());
        let t = Instant::now();
        let mut p = h.publish(key(), t).unwrap();
        assert!(p.push(t, FrameKind::Audio, 0, Bytes::from_static(AAC_SEQ)));
        for i in 0..10 {
            assert!(p.push(t, FrameKind::Audio, i * 23, audio(i as u8)));
        }
        let v = h.play(&key(), Protocol::Flv, t).unwrap();
        assert_eq!(all(&v).len(), 2);
        // A GOP longer than max_gop_frames is not kept (but still relayed).
        assert!(p.push(t, FrameKind::Video, 0, Bytes::from_static(AVC_SEQ)));
        assert!(p.push(t, FrameKind::Video, 300, key_frame(0)));
        for i in 0..100 {
            assert!(p.push(t, FrameKind::Video, 300 + i, inter(0)));
            let _ = all(&v);
        }
        let v2 = h.play(&key(), Protocol::Flv, t).unwrap();
        assert_eq!(all(&v2).len(), 2, "configs only");
    }

    #[test]
    fn garbage_media_is_relayed_and_counted() {
        let h = hub(limits());
        let t = Instant::now();
        let mut p = h.publish(key(), t).unwrap();
        let v = h.play(&key(), Protocol::Flv, t).unwrap();
        assert!(p.push(t, FrameKind::Video, 0, Bytes::new()));
        assert!(p.push(t, FrameKind::Audio, 0, Bytes::new()));
        assert_eq!(h.metrics().errors(ErrorKind::Media), 2);
        assert_eq!(all(&v).len(), 0, "no keyframe yet: nothing starts a viewer");
    }

    #[tokio::test]
    async fn recv_wakes_on_push() {
        let h = hub(limits());
        let t = Instant::now();
        let mut p = start(&h, t);
        let v = h.play(&key(), Protocol::Flv, t).unwrap();
        let _ = all(&v);
        let task = tokio::spawn(async move { v.recv(8).await });
        tokio::task::yield_now().await;
        assert!(p.push(t, FrameKind::Video, 0, key_frame(1)));
        let got = tokio::time::timeout(Duration::from_secs(5), task)
            .await
            .unwrap()
            .unwrap()
            .unwrap();
        assert_eq!(got.len(), 1);
    }
}
