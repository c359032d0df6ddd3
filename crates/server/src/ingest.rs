//! WHIP ingest: a publisher's RTP as the hub's FLV tag bodies, sans-IO.
//!
//! The hub carries FLV tag bodies (what RTMP publishers send), so a WHIP
//! stream becomes the same thing, and every player of the hub (RTMP,
//! HTTP-FLV, WebRTC through its conversion branch) plays it:
//! - H.264 goes through rts-rtp's reorder buffer and depacketizer
//!   ([`H264Receiver`]); retransmissions on the RTX stream (RFC 4588) are
//!   unwrapped into it. SPS and PPS (sent in-band, in STAP-A or as single
//!   NAL units) are cached and leave the access units: an AVC sequence
//!   header goes out before the first keyframe and again whenever they
//!   change, with an `onMetaData` of the picture size. Access units go out
//!   in AVCC with 4-byte lengths and composition time 0 (WebRTC senders do
//!   not send B-frames).
//! - Opus goes through the reorder buffer ([`OpusReceiver`]) and becomes
//!   Enhanced FLV Opus: an `OpusHead` sequence start, then one packet per
//!   tag.
//! - Time: each track's RTP clock is anchored at the arrival of its first
//!   packet (in ms since the session began), so both tracks share one
//!   timeline; later packets follow their RTP timestamps (wrapping
//!   differences, so a wrap or reordering does not jump).
//!
//! Every packet also comes back as a [`Forward`]: the packet as received
//! (RTX unwrapped), its timestamp moved onto that shared timeline (video
//! at 90 kHz, audio at 48 kHz from one origin, as rts-webrtc's sender
//! reports expect), for SFU-style forwarding to WHEP viewers.
//!
//! A damaged or missing access unit makes the depacketizer wait for the
//! next keyframe; [`Ingest::take_keyframe_request`] then says to send the
//! publisher a PLI, at most once per [`KEYFRAME_REQUEST_INTERVAL`].

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use bytes::{BufMut, Bytes, BytesMut};
use rts_flv::amf0::Value;
use rts_flv::{
    AudioCodec, AudioPacketType, AudioTagHeader, AvcDecoderConfigurationRecord, FrameType,
    ScriptData, VideoPacketType, VideoTagHeader,
};
use rts_rtp::h264::{AccessUnit, Depacketizer, Event as H264Event};
use rts_rtp::receiver::{H264Receiver, OpusEvent, OpusReceiver};
use rts_webrtc::{Codec, MediaKind, RtpPacket};

use crate::hub::FrameKind;

/// Packets each reorder buffer holds at most.
const REORDER_CAPACITY: usize = 1024;
/// How long a missing packet is waited for (a retransmission after a NACK
/// arrives within one round trip).
const REORDER_WAIT: Duration = Duration::from_millis(120);
/// PLIs to the publisher are at most this frequent.
pub(crate) const KEYFRAME_REQUEST_INTERVAL: Duration = Duration::from_millis(500);
/// Tags waiting to be taken at most (the caller drains after every packet).
const MAX_TAGS: usize = 4096;
/// `OpusHead` (RFC 7845 5.1): version 1, 2 channels, pre-skip 312,
/// 48 kHz, gain 0, mapping family 0.
const OPUS_HEAD: [u8; 19] = [
    b'O', b'p', b'u', b's', b'H', b'e', b'a', b'd', 1, 2, 0x38, 0x01, 0x80, 0xbb, 0, 0, 0, 0, 0,
];

/// One tag body for the hub.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Tag {
    pub(crate) kind: FrameKind,
    /// Milliseconds on the session's timeline.
    pub(crate) timestamp: u32,
    pub(crate) payload: Bytes,
}

/// A publisher's packet to forward to viewers as it is.
#[derive(Debug, Clone)]
pub(crate) struct Forward {
    pub(crate) media: MediaKind,
    /// The publisher's packet; its timestamp on the shared timeline.
    pub(crate) packet: rts_rtp::Packet,
    /// The first packet of a keyframe (SPS or IDR at a new timestamp).
    pub(crate) keyframe_start: bool,
}

/// Counters of one ingest.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct IngestStats {
    pub(crate) video_frames: u64,
    pub(crate) audio_frames: u64,
    /// Access units dropped (damaged, or before a keyframe).
    pub(crate) video_dropped: u64,
    /// RTP packets of a codec we did not negotiate, or malformed.
    pub(crate) ignored: u64,
    /// Packets given up for lost after the reorder wait.
    pub(crate) lost: u64,
}

/// A track's RTP clock anchored on the session timeline.
#[derive(Debug, Clone, Copy)]
struct Anchor {
    rtp: u32,
    ms: i64,
    /// RTP ticks per millisecond.
    rate: i64,
}

impl Anchor {
    /// `rtp` on the shared timeline, in this track's clock.
    fn shared(&self, rtp: u32) -> u32 {
        let origin = self.ms.saturating_mul(self.rate);
        // Modulo 2^32, as RTP time is.
        (origin as u32).wrapping_add(rtp.wrapping_sub(self.rtp))
    }

    fn ms(&self, rtp: u32) -> u32 {
        // Wrapping difference, as signed: a wrap or a slightly older packet.
        let d = i64::from(rtp.wrapping_sub(self.rtp) as i32);
        let ms = self.ms.saturating_add(d.div_euclid(self.rate.max(1)));
        u32::try_from(ms.max(0)).unwrap_or(u32::MAX)
    }
}

/// One WHIP publisher's media, as tags (see the module docs).
#[derive(Debug)]
pub(crate) struct Ingest {
    start: Instant,
    video: H264Receiver,
    audio: OpusReceiver,
    video_clock: Option<Anchor>,
    audio_clock: Option<Anchor>,
    sps: Option<Bytes>,
    pps: Option<Bytes>,
    /// The parameter sets of the last sequence header sent.
    sent_params: Option<(Bytes, Bytes)>,
    opus_head_sent: bool,
    /// The RTP timestamp of the last video packet forwarded.
    last_video_ts: Option<u32>,
    tags: VecDeque<Tag>,
    keyframe_wanted: bool,
    last_keyframe_request: Option<Instant>,
    stats: IngestStats,
}

impl Ingest {
    /// A session whose timeline starts at `origin` (the stream's first
    /// publish, so that a republish continues it).
    pub(crate) fn new(origin: Instant) -> Self {
        Ingest {
            start: origin,
            video: H264Receiver::new(
                REORDER_CAPACITY,
                REORDER_WAIT,
                Depacketizer::DEFAULT_MAX_ACCESS_UNIT,
            ),
            audio: OpusReceiver::new(REORDER_CAPACITY, REORDER_WAIT),
            video_clock: None,
            audio_clock: None,
            sps: None,
            pps: None,
            sent_params: None,
            opus_head_sent: false,
            last_video_ts: None,
            tags: VecDeque::new(),
            keyframe_wanted: true,
            last_keyframe_request: None,
            stats: IngestStats::default(),
        }
    }

    /// Counters so far.
    pub(crate) fn stats(&self) -> IngestStats {
        let mut s = self.stats;
        s.video_dropped = self.video.depacketizer_stats().dropped;
        s.lost = self.video.reorder_stats().lost;
        s
    }

    /// One RTP packet of the publisher, arrived at `now`; returns it for
    /// forwarding (None: not H.264 or Opus, or padding-only RTX).
    pub(crate) fn handle_rtp(
        &mut self,
        now: Instant,
        media: MediaKind,
        codec: Codec,
        mut packet: RtpPacket,
    ) -> Option<Forward> {
        let forward = match (media, codec) {
            (MediaKind::Video, Codec::H264) => {
                self.anchor_video(now, packet.header.timestamp);
                let f = self.forward(MediaKind::Video, &packet);
                self.video.handle_packet(now, packet);
                f
            }
            (MediaKind::Video, Codec::Rtx) => {
                // RFC 4588 4: the original sequence number, then the
                // original payload. Padding-only RTX (bandwidth probes)
                // carries neither.
                let Some(&[hi, lo]) = packet.payload.get(..2) else {
                    return None;
                };
                packet.header.sequence_number = u16::from_be_bytes([hi, lo]);
                packet.payload = packet.payload.slice(2..);
                let f = self.forward(MediaKind::Video, &packet);
                self.video.handle_packet(now, packet);
                f
            }
            (MediaKind::Audio, Codec::Opus) => {
                if self.audio_clock.is_none() {
                    self.audio_clock = Some(self.anchor(now, packet.header.timestamp, 48));
                }
                let f = self.forward(MediaKind::Audio, &packet);
                self.audio.handle_packet(now, packet);
                f
            }
            _ => {
                self.stats.ignored = self.stats.ignored.saturating_add(1);
                None
            }
        };
        self.drain();
        forward
    }

    /// `packet` for viewers: its timestamp on the shared timeline.
    fn forward(&mut self, media: MediaKind, packet: &RtpPacket) -> Option<Forward> {
        let h = &packet.header;
        let clock = match media {
            MediaKind::Video => self.video_clock?,
            MediaKind::Audio => self.audio_clock?,
        };
        let keyframe_start = media == MediaKind::Video
            && self.last_video_ts != Some(h.timestamp)
            && rts_rtp::h264::payload_starts_keyframe(&packet.payload);
        if media == MediaKind::Video {
            self.last_video_ts = Some(h.timestamp);
        }
        Some(Forward {
            media,
            packet: rts_rtp::Packet {
                marker: h.marker,
                payload_type: h.payload_type,
                sequence_number: h.sequence_number,
                timestamp: clock.shared(h.timestamp),
                ssrc: h.ssrc,
                payload: rts_rtp::Payload::from_bytes(packet.payload.clone()),
            },
            keyframe_start,
        })
    }

    /// Time passed: packets waited for too long are given up.
    pub(crate) fn handle_timeout(&mut self, now: Instant) {
        self.video.handle_timeout(now);
        self.audio.handle_timeout(now);
        self.drain();
    }

    /// When [`Ingest::handle_timeout`] is due.
    pub(crate) fn poll_timeout(&self) -> Option<Instant> {
        [self.video.poll_timeout(), self.audio.poll_timeout()]
            .into_iter()
            .flatten()
            .min()
    }

    /// The next tag for the hub.
    pub(crate) fn poll_tag(&mut self) -> Option<Tag> {
        self.tags.pop_front()
    }

    /// Whether to ask the publisher for a keyframe now (a PLI): after
    /// damage, or before the first keyframe, at most once per
    /// [`KEYFRAME_REQUEST_INTERVAL`].
    pub(crate) fn take_keyframe_request(&mut self, now: Instant) -> bool {
        if !self.keyframe_wanted
            || self
                .last_keyframe_request
                .is_some_and(|t| now.saturating_duration_since(t) < KEYFRAME_REQUEST_INTERVAL)
        {
            return false;
        }
        self.last_keyframe_request = Some(now);
        true
    }

    fn anchor(&self, now: Instant, rtp: u32, rate: i64) -> Anchor {
        let ms = i64::try_from(now.saturating_duration_since(self.start).as_millis())
            .unwrap_or(i64::MAX);
        Anchor { rtp, ms, rate }
    }

    fn anchor_video(&mut self, now: Instant, rtp: u32) {
        if self.video_clock.is_none() {
            self.video_clock = Some(self.anchor(now, rtp, 90));
        }
    }

    fn drain(&mut self) {
        while let Some(ev) = self.video.poll_event() {
            match ev {
                H264Event::AccessUnit(au) => self.access_unit(au),
                H264Event::KeyframeNeeded => self.keyframe_wanted = true,
            }
        }
        while let Some(ev) = self.audio.poll_event() {
            match ev {
                OpusEvent::Frame { timestamp, data } => self.opus(timestamp, data),
                // Players conceal a gap themselves.
                OpusEvent::Lost(_) => {}
            }
        }
        while self.tags.len() > MAX_TAGS {
            self.tags.pop_front();
        }
    }

    fn access_unit(&mut self, au: AccessUnit) {
        let Some(clock) = self.video_clock else {
            return;
        };
        let ts = clock.ms(au.timestamp);
        let mut body_nals = Vec::with_capacity(au.nals.len());
        for nal in au.nals {
            match nal.first().map(|b| b & 0x1f) {
                Some(7) => self.sps = Some(nal),
                Some(8) => self.pps = Some(nal),
                // Access unit delimiters and filler data mean nothing in FLV.
                Some(9 | 12) => {}
                _ => body_nals.push(nal),
            }
        }
        if au.keyframe {
            self.keyframe_wanted = false;
            if let (Some(sps), Some(pps)) = (self.sps.clone(), self.pps.clone())
                && self
                    .sent_params
                    .as_ref()
                    .is_none_or(|(s, p)| *s != sps || *p != pps)
            {
                self.sequence_header(ts, sps, pps);
            }
        }
        if self.sent_params.is_none() || body_nals.is_empty() {
            // Nothing decodable yet (no parameter sets), or nothing left.
            if self.sent_params.is_none() {
                self.keyframe_wanted = true;
            }
            return;
        }
        let mut body = BytesMut::with_capacity(
            5usize.saturating_add(body_nals.iter().map(|n| n.len().saturating_add(4)).sum()),
        );
        let ft = if au.keyframe {
            FrameType::Key
        } else {
            FrameType::Inter
        };
        if VideoTagHeader::avc(ft, VideoPacketType::CodedFrames, 0)
            .encode(&mut body)
            .is_err()
        {
            return;
        }
        for n in &body_nals {
            body.put_u32(u32::try_from(n.len()).unwrap_or(u32::MAX));
            body.put_slice(n);
        }
        self.stats.video_frames = self.stats.video_frames.saturating_add(1);
        self.tags.push_back(Tag {
            kind: FrameKind::Video,
            timestamp: ts,
            payload: body.freeze(),
        });
    }

    fn sequence_header(&mut self, ts: u32, sps: Bytes, pps: Bytes) {
        let Ok(record) =
            AvcDecoderConfigurationRecord::from_parameter_sets(sps.clone(), vec![pps.clone()])
        else {
            self.stats.ignored = self.stats.ignored.saturating_add(1);
            return;
        };
        let mut body = BytesMut::new();
        if VideoTagHeader::avc(FrameType::Key, VideoPacketType::SequenceStart, 0)
            .encode(&mut body)
            .is_err()
            || record.encode(&mut body).is_err()
        {
            return;
        }
        if let Some(meta) = metadata(&sps) {
            self.tags.push_back(Tag {
                kind: FrameKind::Metadata,
                timestamp: ts,
                payload: meta,
            });
        }
        self.tags.push_back(Tag {
            kind: FrameKind::Video,
            timestamp: ts,
            payload: body.freeze(),
        });
        self.sent_params = Some((sps, pps));
    }

    fn opus(&mut self, timestamp: u32, data: Bytes) {
        let Some(clock) = self.audio_clock else {
            return;
        };
        let ts = clock.ms(timestamp);
        if !self.opus_head_sent {
            let mut body = BytesMut::new();
            if AudioTagHeader::enhanced(AudioCodec::Opus, AudioPacketType::SequenceStart)
                .encode(&mut body)
                .is_err()
            {
                return;
            }
            body.put_slice(&OPUS_HEAD);
            self.tags.push_back(Tag {
                kind: FrameKind::Audio,
                timestamp: ts,
                payload: body.freeze(),
            });
            self.opus_head_sent = true;
        }
        let mut body = BytesMut::with_capacity(data.len().saturating_add(5));
        if AudioTagHeader::enhanced(AudioCodec::Opus, AudioPacketType::CodedFrames)
            .encode(&mut body)
            .is_err()
        {
            return;
        }
        body.put_slice(&data);
        self.stats.audio_frames = self.stats.audio_frames.saturating_add(1);
        self.tags.push_back(Tag {
            kind: FrameKind::Audio,
            timestamp: ts,
            payload: body.freeze(),
        });
    }
}

/// `onMetaData` with the picture size and frame rate the SPS gives.
fn metadata(sps: &Bytes) -> Option<Bytes> {
    let nal = rts_h264::nal::Nal::new(sps.clone()).ok()?;
    let sps = rts_h264::sps::Sps::parse(&nal.rbsp()).ok()?;
    let mut props = vec![
        ("width", Value::Number(f64::from(sps.width()))),
        ("height", Value::Number(f64::from(sps.height()))),
        ("videocodecid", Value::Number(7.0)),
        ("encoder", Value::String("rts WHIP ingest".into())),
    ];
    if let Some(fps) = sps.frame_rate() {
        props.push(("framerate", Value::Number(fps)));
    }
    let mut b = BytesMut::new();
    ScriptData::metadata(Value::ecma_array(props)).encode(&mut b);
    Some(b.freeze())
}

#[cfg(test)]
mod tests {
    use super::*;
    use rts_flv::AudioTagHeader;

    fn rtp(pt: u8, seq: u16, ts: u32, marker: bool, payload: &[u8]) -> RtpPacket {
        let mut p = RtpPacket::default();
        p.header.version = 2;
        p.header.payload_type = pt;
        p.header.sequence_number = seq;
        p.header.timestamp = ts;
        p.header.marker = marker;
        p.header.ssrc = 1;
        p.payload = Bytes::copy_from_slice(payload);
        p
    }

    // x264 `-profile:v baseline`, 640x480 at 30 fps.
    const SPS: &[u8] = &[
        0x67, 0x42, 0xc0, 0x1e, 0xd9, 0x00, 0xa0, 0x3d, 0xb0, 0x11, 0x00, 0x00, 0x03, 0x00, 0x01,
        0x00, 0x00, 0x03, 0x00, 0x3c, 0x0f, 0x16, 0x2e, 0x48,
    ];
    const PPS: &[u8] = &[0x68, 0xcb, 0x83, 0xcb, 0x20];

    fn stap(nals: &[&[u8]]) -> Vec<u8> {
        let mut v = vec![24u8];
        for n in nals {
            v.extend_from_slice(&(n.len() as u16).to_be_bytes());
            v.extend_from_slice(n);
        }
        v
    }

    fn tags(i: &mut Ingest) -> Vec<Tag> {
        std::iter::from_fn(|| i.poll_tag()).collect()
    }

    #[test]
    fn keyframe_with_parameter_sets_becomes_metadata_header_and_frame() {
        let t0 = Instant::now();
        let mut i = Ingest::new(t0);
        assert!(
            i.take_keyframe_request(t0),
            "asks for a keyframe from the start"
        );
        // OBS style: SPS and PPS as single NAL unit packets, then the IDR.
        let t = t0 + Duration::from_millis(40);
        i.handle_rtp(
            t,
            MediaKind::Video,
            Codec::H264,
            rtp(102, 10, 9000, false, SPS),
        );
        i.handle_rtp(
            t,
            MediaKind::Video,
            Codec::H264,
            rtp(102, 11, 9000, false, PPS),
        );
        i.handle_rtp(
            t,
            MediaKind::Video,
            Codec::H264,
            rtp(102, 12, 9000, true, &[0x65, 0x88, 1, 2]),
        );
        let out = tags(&mut i);
        assert_eq!(out.len(), 3, "{out:?}");
        assert_eq!(out[0].kind, FrameKind::Metadata);
        let meta = ScriptData::parse(&out[0].payload).unwrap();
        assert_eq!(
            (meta.number("width"), meta.number("height")),
            (Some(640.0), Some(480.0))
        );
        let (h, rec) = VideoTagHeader::parse(&out[1].payload).unwrap();
        assert!(h.is_sequence_header());
        let rec = AvcDecoderConfigurationRecord::parse(&rec).unwrap();
        assert_eq!((rec.sps[0].as_ref(), rec.pps[0].as_ref()), (SPS, PPS));
        let (h, body) = VideoTagHeader::parse(&out[2].payload).unwrap();
        assert!(h.is_keyframe() && !h.is_sequence_header());
        // Only the IDR is left in the frame, with a 4-byte length.
        assert_eq!(body.as_ref(), &[0, 0, 0, 4, 0x65, 0x88, 1, 2]);
        assert_eq!(out[2].timestamp, 40);
        // 33 ms later on the 90 kHz clock; no new header for the same sets.
        i.handle_rtp(
            t,
            MediaKind::Video,
            Codec::H264,
            rtp(102, 13, 9000 + 2970, true, &[0x41, 9]),
        );
        let out = tags(&mut i);
        assert_eq!(out.len(), 1);
        assert_eq!(out[0].timestamp, 73);
        assert!(!i.take_keyframe_request(t), "the keyframe came");
    }

    #[test]
    fn changed_parameter_sets_send_a_new_header_and_rtx_fills_a_gap() {
        let t0 = Instant::now();
        let mut i = Ingest::new(t0);
        i.handle_rtp(
            t0,
            MediaKind::Video,
            Codec::H264,
            rtp(102, 1, 0, false, &stap(&[SPS, PPS])),
        );
        i.handle_rtp(
            t0,
            MediaKind::Video,
            Codec::H264,
            rtp(102, 2, 0, true, &[0x65, 1]),
        );
        assert_eq!(tags(&mut i).len(), 3);
        // Packet 3 is lost and comes back on the RTX stream.
        i.handle_rtp(
            t0,
            MediaKind::Video,
            Codec::H264,
            rtp(102, 4, 3000, true, &[0x41, 2]),
        );
        assert!(tags(&mut i).is_empty(), "waits for the missing packet");
        i.handle_rtp(
            t0,
            MediaKind::Video,
            Codec::Rtx,
            rtp(103, 77, 3000, false, &[0, 3, 0x41, 7]),
        );
        // 3 and 4 share a timestamp: one access unit of both slices.
        let out = tags(&mut i);
        assert_eq!(out.len(), 1, "{out:?}");
        let (_, body) = VideoTagHeader::parse(&out[0].payload).unwrap();
        assert_eq!(body.as_ref(), &[0, 0, 0, 2, 0x41, 7, 0, 0, 0, 2, 0x41, 2]);
        // A new PPS with the next keyframe: a new sequence header first.
        let pps2: &[u8] = &[0x68, 0xce, 0x3c, 0x80];
        i.handle_rtp(
            t0,
            MediaKind::Video,
            Codec::H264,
            rtp(102, 5, 6000, false, &stap(&[SPS, pps2])),
        );
        i.handle_rtp(
            t0,
            MediaKind::Video,
            Codec::H264,
            rtp(102, 6, 6000, true, &[0x65, 3]),
        );
        let out = tags(&mut i);
        assert_eq!(out.len(), 3, "metadata, header, frame: {out:?}");
        let (h, rec) = VideoTagHeader::parse(&out[1].payload).unwrap();
        assert!(h.is_sequence_header());
        assert_eq!(
            AvcDecoderConfigurationRecord::parse(&rec).unwrap().pps[0].as_ref(),
            pps2
        );
    }

    #[test]
    fn frames_before_parameter_sets_are_dropped_and_a_keyframe_is_asked() {
        let t0 = Instant::now();
        let mut i = Ingest::new(t0);
        assert!(i.take_keyframe_request(t0));
        i.handle_rtp(
            t0,
            MediaKind::Video,
            Codec::H264,
            rtp(102, 1, 0, true, &[0x65, 1]),
        );
        assert!(tags(&mut i).is_empty());
        assert!(
            !i.take_keyframe_request(t0 + Duration::from_millis(100)),
            "rate limited"
        );
        assert!(i.take_keyframe_request(t0 + KEYFRAME_REQUEST_INTERVAL));
    }

    #[test]
    fn opus_gets_a_head_then_one_tag_per_packet_on_the_shared_timeline() {
        let t0 = Instant::now();
        let mut i = Ingest::new(t0);
        let t = t0 + Duration::from_millis(25);
        i.handle_rtp(
            t,
            MediaKind::Audio,
            Codec::Opus,
            rtp(111, 100, 4_294_967_000, false, &[0xfc, 1]),
        );
        // The RTP clock wraps between the two packets.
        let next = 4_294_967_000u32.wrapping_add(960);
        i.handle_rtp(
            t,
            MediaKind::Audio,
            Codec::Opus,
            rtp(111, 101, next, false, &[0xfc, 2]),
        );
        let out = tags(&mut i);
        assert_eq!(out.len(), 3);
        let (h, head) = AudioTagHeader::parse(&out[0].payload).unwrap();
        assert!(h.is_sequence_header() && h.codec == AudioCodec::Opus);
        assert_eq!(head.as_ref(), &OPUS_HEAD);
        let (h, data) = AudioTagHeader::parse(&out[2].payload).unwrap();
        assert_eq!((h.codec, data.as_ref()), (AudioCodec::Opus, &[0xfc, 2][..]));
        assert_eq!((out[1].timestamp, out[2].timestamp), (25, 45));
        // VP8 or anything not negotiated is counted, not passed on.
        i.handle_rtp(t, MediaKind::Video, Codec::Other, rtp(96, 1, 0, true, &[1]));
        assert_eq!(i.stats().ignored, 1);
    }

    #[test]
    fn forwarded_packets_share_one_timeline_and_rtx_comes_back_as_the_original() {
        let t0 = Instant::now();
        let mut i = Ingest::new(t0);
        // Video's first packet 40 ms in, audio's 20 ms in, random offsets.
        let v = i
            .handle_rtp(
                t0 + Duration::from_millis(40),
                MediaKind::Video,
                Codec::H264,
                rtp(102, 7, 123_456, false, &stap(&[SPS, PPS])),
            )
            .unwrap();
        assert!(v.keyframe_start);
        assert_eq!(v.packet.timestamp, 40 * 90);
        let idr = i
            .handle_rtp(
                t0 + Duration::from_millis(40),
                MediaKind::Video,
                Codec::H264,
                rtp(102, 8, 123_456, true, &[0x65, 1]),
            )
            .unwrap();
        assert!(!idr.keyframe_start, "one start per access unit");
        let a = i
            .handle_rtp(
                t0 + Duration::from_millis(20),
                MediaKind::Audio,
                Codec::Opus,
                rtp(111, 500, 9_000_000, false, &[0xfc, 1]),
            )
            .unwrap();
        assert_eq!(a.packet.timestamp, 20 * 48);
        // 100 ms of media later on both clocks: 100 ms later on both.
        let a2 = i
            .handle_rtp(
                t0,
                MediaKind::Audio,
                Codec::Opus,
                rtp(111, 501, 9_000_000 + 4800, false, &[0xfc, 2]),
            )
            .unwrap();
        assert_eq!(a2.packet.timestamp, 120 * 48);
        let rtx = i
            .handle_rtp(
                t0,
                MediaKind::Video,
                Codec::Rtx,
                rtp(103, 40, 123_456 + 9000, true, &[0, 9, 0x41, 3]),
            )
            .unwrap();
        assert_eq!(
            rtx.packet.sequence_number, 9,
            "the original sequence number"
        );
        assert_eq!(rtx.packet.timestamp, 140 * 90);
        assert_eq!(rtx.packet.payload.to_bytes().as_ref(), &[0x41, 3]);
        assert!(
            i.handle_rtp(
                t0,
                MediaKind::Video,
                Codec::Rtx,
                rtp(103, 41, 0, false, &[])
            )
            .is_none(),
            "padding-only RTX is not forwarded"
        );
    }
}
