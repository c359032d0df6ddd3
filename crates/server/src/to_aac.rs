//! AAC for the RTMP and FLV players of an Opus stream (docs/conversion.md,
//! "Opus to AAC").
//!
//! A WHIP publisher (or an Enhanced RTMP one) sends Opus, which most RTMP
//! and FLV players cannot decode. The first such player of a stream starts
//! its *AAC feed*: a thread that reads the stream from the hub like any
//! viewer, passes video and metadata on untouched (the same `Bytes`),
//! turns Opus into AAC-LC ([`rts_audio::opus_to_aac`]) and publishes the
//! result under the same key in a second hub that only these players read.
//! One feed per stream, shared by all of its AAC players; it ends when the
//! stream ends (its players see the same reason) or when no player is left
//! for [`LINGER`]. Seconds converted while someone listens are metered in
//! the stream's `conversion.opus_to_aac`.
//!
//! Players that say they decode Opus (Enhanced RTMP's `fourCcList`, or
//! `?audio=opus` on an FLV URL) get the stream as published.

use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use bytes::{BufMut, Bytes, BytesMut};
use rts_audio::opus_to_aac::{AacConfig, OpusToAac};
use rts_flv::{AudioCodec, AudioPacketType, AudioTagHeader};

use crate::branch::Clock;
use crate::config::Limits;
use crate::hub::{
    EndReason, Frame, FrameKind, Hub, PlayError, Protocol, Publisher, StreamKey, Viewer,
};
use crate::metrics::{ErrorKind, Metrics};

/// A feed without players stops after this long.
pub(crate) const LINGER: Duration = Duration::from_secs(2);
/// How often the feed reports its players and metering to the hub.
const REPORT_EVERY: Duration = Duration::from_millis(500);

/// The AAC feeds of every stream.
#[derive(Debug)]
pub(crate) struct AacFeeds {
    hub: Hub,
    starting: Mutex<()>,
}

impl AacFeeds {
    pub(crate) fn new(limits: Limits, metrics: Arc<Metrics>) -> Self {
        Self {
            hub: Hub::new(limits, metrics),
            starting: Mutex::default(),
        }
    }

    /// The hub the feeds publish into.
    pub(crate) fn hub(&self) -> &Hub {
        &self.hub
    }

    /// A player of `key` over RTMP or FLV: the stream as published when it
    /// can play that (`opus` says whether it decodes Opus) or the audio is
    /// not Opus; the stream's AAC feed, started if need be, otherwise.
    pub(crate) fn play(
        &self,
        source: &Hub,
        key: &StreamKey,
        protocol: Protocol,
        opus: bool,
        now: Instant,
    ) -> Result<Viewer, PlayError> {
        if opus || source.audio_codec(key) != Some(AudioCodec::Opus) {
            return source.play(key, protocol, now);
        }
        // One start at a time (it takes microseconds): two players racing
        // for a feed that is not there get one feed.
        let _starting = self.starting.lock().unwrap_or_else(PoisonError::into_inner);
        match self.hub.play(key, protocol, now) {
            Ok(v) => Ok(v),
            Err(_) => self.start(source, key, protocol, now),
        }
    }

    fn start(
        &self,
        source: &Hub,
        key: &StreamKey,
        protocol: Protocol,
        now: Instant,
    ) -> Result<Viewer, PlayError> {
        let input = source.play(key, Protocol::Conversion, now)?;
        let transcoder = match OpusToAac::new(AacConfig::default()) {
            Ok(t) => t,
            Err(e) => {
                tracing::error!(stream = %key, "opus to aac: {e}; playing the stream as published");
                return source.play(key, protocol, now);
            }
        };
        let Ok(output) = self.hub.publish(key.clone(), now) else {
            // The AAC hub is full or shutting down: as published, then.
            return source.play(key, protocol, now);
        };
        let player = self.hub.play(key, protocol, now)?;
        let feed = Feed {
            key: key.clone(),
            source: source.clone(),
            aac_hub: self.hub.clone(),
            input,
            output: Some(output),
            convert: Converter::new(transcoder),
        };
        let rt = tokio::runtime::Handle::current();
        let name = format!("rts-aac {}/{}", key.app, key.stream);
        let spawned = std::thread::Builder::new()
            .name(name)
            .spawn(move || feed.run(&rt));
        if let Err(e) = spawned {
            tracing::error!(stream = %key, "opus to aac: no thread: {e}");
            return source.play(key, protocol, now);
        }
        source.update_conversion(key, |c, _| {
            c.opus_to_aac.running = true;
            c.opus_to_aac.starts = c.opus_to_aac.starts.saturating_add(1);
        });
        tracing::info!(stream = %key, "opus to aac started");
        Ok(player)
    }
}

/// One stream's feed, on its own thread.
struct Feed {
    key: StreamKey,
    source: Hub,
    aac_hub: Hub,
    input: Viewer,
    output: Option<Publisher>,
    convert: Converter,
}

impl Drop for Feed {
    /// However the feed ends (the stream ended, no player left, a panic, a
    /// thread that never started), its AAC stream ends now, without a
    /// grace period: a player that comes later starts a fresh feed rather
    /// than waiting on one that pushes nothing.
    fn drop(&mut self) {
        if let Some(p) = self.output.take() {
            p.end(EndReason::Unpublished);
        }
    }
}

impl Feed {
    fn run(mut self, rt: &tokio::runtime::Handle) {
        let key = self.key.clone();
        let source = self.source.clone();
        // A panic (a bug in a codec or here) ends this feed only: its
        // players are closed, and the next player starts a fresh one.
        let ran = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| self.pump(rt)));
        let why = match ran {
            Ok(why) => why,
            Err(_) => {
                source.metrics().error(ErrorKind::Internal);
                "the conversion failed (a panic, contained)".to_owned()
            }
        };
        source.update_conversion(&key, |c, _| {
            c.opus_to_aac.running = false;
            c.opus_to_aac.rtmp_viewers = 0;
            c.opus_to_aac.flv_viewers = 0;
        });
        tracing::info!(stream = %key, "opus to aac stopped: {why}");
    }

    fn pump(&mut self, rt: &tokio::runtime::Handle) -> String {
        let mut out = Vec::new();
        let mut unwatched_since: Option<Instant> = None;
        let mut last_report = Instant::now();
        loop {
            let got = rt.block_on(async {
                tokio::time::timeout(Duration::from_millis(100), self.input.recv(64)).await
            });
            match got {
                Err(_) => {}
                Ok(Ok(frames)) => frames.iter().for_each(|f| self.convert.push(f, &mut out)),
                Ok(Err(why)) => {
                    if let Some(p) = self.output.take() {
                        p.end(why);
                    }
                    return format!("stream ended: {why}");
                }
            }
            let Some(output) = self.output.as_mut() else {
                return "ended".into();
            };
            let now = Instant::now();
            for (kind, ts, payload) in out.drain(..) {
                if !output.push(now, kind, ts, payload) {
                    return "replaced".into();
                }
            }
            let viewers = self.aac_hub.viewers(&self.key);
            let watched = viewers.rtmp > 0 || viewers.flv > 0;
            match (watched, unwatched_since) {
                (true, _) => unwatched_since = None,
                (false, None) => unwatched_since = Some(now),
                (false, Some(t)) if now.saturating_duration_since(t) >= LINGER => {
                    if output.end_if_unwatched() {
                        self.output = None;
                        return "no player left".into();
                    }
                }
                (false, Some(_)) => {}
            }
            let dt = now.saturating_duration_since(last_report);
            if dt >= REPORT_EVERY {
                last_report = now;
                let secs = if watched && self.convert.converting {
                    dt.as_secs_f64()
                } else {
                    0.0
                };
                self.source.update_conversion(&self.key, |c, _| {
                    let a = &mut c.opus_to_aac;
                    a.running = true;
                    a.rtmp_viewers = viewers.rtmp;
                    a.flv_viewers = viewers.flv;
                    a.seconds += secs;
                });
            }
        }
    }
}

/// Frames of an Opus stream in, the same frames with AAC audio out.
struct Converter {
    transcoder: OpusToAac,
    clock: Clock,
    config_sent: bool,
    /// Opus packets arrived since the feed started.
    converting: bool,
}

impl Converter {
    fn new(transcoder: OpusToAac) -> Self {
        Self {
            transcoder,
            clock: Clock::default(),
            config_sent: false,
            converting: false,
        }
    }

    fn push(&mut self, frame: &Frame, out: &mut Vec<(FrameKind, u32, Bytes)>) {
        if frame.kind != FrameKind::Audio {
            out.push((frame.kind, frame.timestamp, frame.payload.clone()));
            return;
        }
        let t = self.clock.unwrap(frame.timestamp);
        let Ok((h, body)) = AudioTagHeader::parse(&frame.payload) else {
            return;
        };
        if h.codec != AudioCodec::Opus || h.multitrack.is_some() {
            // Not Opus (the publisher came back with AAC): as it is.
            out.push((frame.kind, frame.timestamp, frame.payload.clone()));
            return;
        }
        if h.packet_type != AudioPacketType::CodedFrames || body.is_empty() {
            return; // OpusHead: the AAC config replaces it.
        }
        self.converting = true;
        if !self.config_sent {
            self.config_sent = true;
            let asc = self.transcoder.audio_specific_config();
            if let Some(tag) = aac_tag(AudioPacketType::SequenceStart, &asc) {
                out.push((FrameKind::Audio, frame.timestamp, tag));
            }
        }
        let ticks = u64::try_from(t).unwrap_or(0).saturating_mul(48);
        self.transcoder.push(&body, ticks);
        while let Some(ev) = self.transcoder.poll_event() {
            tracing::debug!("opus to aac: {ev:?}");
        }
        while let Some(f) = self.transcoder.pop() {
            // The pre-roll frame of a stream that starts at 0 goes at 0.
            let ms = f.timestamp.max(0) / 48;
            if let Some(tag) = aac_tag(AudioPacketType::CodedFrames, &f.data) {
                out.push((FrameKind::Audio, ms as u32, tag));
            }
        }
    }
}

/// An FLV AAC audio tag body.
fn aac_tag(packet_type: AudioPacketType, data: &[u8]) -> Option<Bytes> {
    let mut body = BytesMut::with_capacity(data.len().saturating_add(2));
    AudioTagHeader::aac(packet_type).encode(&mut body).ok()?;
    body.put_slice(data);
    Some(body.freeze())
}

#[cfg(test)]
mod tests {
    use super::*;
    use rts_opus_sys::{Application, Encoder};

    fn frame(kind: FrameKind, timestamp: u32, payload: Bytes) -> Frame {
        Frame {
            kind,
            timestamp,
            payload,
            keyframe: false,
            config: false,
        }
    }

    fn opus_tag(packet_type: AudioPacketType, data: &[u8]) -> Bytes {
        let mut b = BytesMut::new();
        AudioTagHeader::enhanced(AudioCodec::Opus, packet_type)
            .encode(&mut b)
            .unwrap();
        b.put_slice(data);
        b.freeze()
    }

    #[test]
    fn opus_tags_become_an_aac_config_and_aac_tags_on_the_same_clock() {
        let mut conv = Converter::new(OpusToAac::new(AacConfig::default()).unwrap());
        let mut opus = Encoder::new(48_000, 2, Application::Audio).unwrap();
        let mut out = Vec::new();
        let video = Bytes::from_static(&[0x17, 1, 0, 0, 0, 0, 0, 0, 1, 0x65]);
        conv.push(&frame(FrameKind::Video, 1000, video.clone()), &mut out);
        let head = opus_tag(AudioPacketType::SequenceStart, b"OpusHead");
        conv.push(&frame(FrameKind::Audio, 1000, head), &mut out);
        let pcm = vec![0.1f32; 960 * 2];
        let mut packet = [0u8; 1275];
        for k in 0..50u32 {
            let n = opus.encode_float(&pcm, &mut packet).unwrap();
            let tag = opus_tag(AudioPacketType::CodedFrames, &packet[..n]);
            conv.push(&frame(FrameKind::Audio, 1000 + 20 * k, tag), &mut out);
        }
        // Video as it came, the same bytes (no copy).
        assert_eq!(out[0].0, FrameKind::Video);
        assert_eq!(out[0].2.as_ptr(), video.as_ptr());
        // The OpusHead is gone; an AAC sequence header leads the audio.
        let audio: Vec<_> = out.iter().filter(|f| f.0 == FrameKind::Audio).collect();
        let (h, asc) = AudioTagHeader::parse(&audio[0].2).unwrap();
        assert_eq!(
            (h.codec, h.packet_type),
            (AudioCodec::Aac, AudioPacketType::SequenceStart)
        );
        assert_eq!(&asc[..], [0x11, 0x90]);
        // 1 s of Opus: 46 whole AAC frames, each stamped with its audio's time.
        let frames = &audio[1..];
        assert_eq!(frames.len(), 50 * 960 / 1024);
        for (k, f) in frames.iter().enumerate() {
            let (h, _) = AudioTagHeader::parse(&f.2).unwrap();
            assert_eq!(h.packet_type, AudioPacketType::CodedFrames);
            let want = (48_000 + (k as i64 - 1) * 1024) / 48;
            assert_eq!(i64::from(f.1), want, "frame {k}");
        }
        assert!(conv.converting);
    }

    #[test]
    fn a_feed_that_ends_any_way_ends_its_aac_stream_at_once() {
        let limits = Limits::default();
        let (source, aac) = (
            Hub::new(limits, Arc::default()),
            Hub::new(limits, Arc::default()),
        );
        let key = StreamKey::new("ingest", "live", "s");
        let t = Instant::now();
        let _publisher = source.publish(key.clone(), t).unwrap();
        let feed = Feed {
            key: key.clone(),
            source: source.clone(),
            aac_hub: aac.clone(),
            input: source.play(&key, Protocol::Conversion, t).unwrap(),
            output: Some(aac.publish(key.clone(), t).unwrap()),
            convert: Converter::new(OpusToAac::new(AacConfig::default()).unwrap()),
        };
        let player = aac.play(&key, Protocol::Flv, t).unwrap();
        // What a panic in the feed's thread, or a thread that never
        // started, leaves: the feed dropped. No grace period for it.
        drop(feed);
        let _ = player.try_recv(usize::MAX);
        assert_eq!(player.try_recv(1), Err(EndReason::Unpublished));
        assert_eq!(
            aac.play(&key, Protocol::Flv, t).unwrap_err(),
            PlayError::NotFound
        );
        assert_eq!(source.viewers(&key).flv, 0);
    }

    #[test]
    fn audio_that_is_not_opus_passes_untouched() {
        let mut conv = Converter::new(OpusToAac::new(AacConfig::default()).unwrap());
        let mut out = Vec::new();
        let mut b = BytesMut::new();
        AudioTagHeader::aac(AudioPacketType::CodedFrames)
            .encode(&mut b)
            .unwrap();
        b.put_slice(&[0x21, 0x10]);
        let aac = b.freeze();
        conv.push(&frame(FrameKind::Audio, 5, aac.clone()), &mut out);
        assert_eq!(out.len(), 1);
        assert_eq!(out[0].2.as_ptr(), aac.as_ptr());
        assert!(!conv.converting);
    }
}
