//! Video tag bodies: the legacy VideoTagHeader (FLV specification E.4.3.1)
//! and the Enhanced RTMP ExVideoTagHeader (FourCC codecs).

use bytes::{BufMut, Bytes};

use crate::Error;
use crate::cursor::Cursor;
use crate::enhanced::{FourCc, skip_mod_ex};

/// FrameType (legacy 4 bits, enhanced 3 bits).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum FrameType {
    /// 1: keyframe (seekable).
    Key,
    /// 2: inter frame.
    Inter,
    /// 3: disposable inter frame (H.263 only).
    DisposableInter,
    /// 4: generated keyframe (server use).
    GeneratedKey,
    /// 5: video info / command frame.
    Command,
    /// Any other value.
    Other(u8),
}

impl FrameType {
    /// The wire value.
    pub fn code(self) -> u8 {
        match self {
            FrameType::Key => 1,
            FrameType::Inter => 2,
            FrameType::DisposableInter => 3,
            FrameType::GeneratedKey => 4,
            FrameType::Command => 5,
            FrameType::Other(c) => c,
        }
    }

    /// From the wire value.
    pub fn from_code(c: u8) -> Self {
        match c {
            1 => FrameType::Key,
            2 => FrameType::Inter,
            3 => FrameType::DisposableInter,
            4 => FrameType::GeneratedKey,
            5 => FrameType::Command,
            c => FrameType::Other(c),
        }
    }
}

/// The video codec, from a legacy CodecID or an enhanced FourCC.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum VideoCodec {
    /// Legacy 2.
    SorensonH263,
    /// Legacy 3.
    ScreenVideo,
    /// Legacy 4.
    Vp6,
    /// Legacy 5.
    Vp6Alpha,
    /// Legacy 6.
    ScreenVideo2,
    /// Legacy 7, FourCC `avc1`.
    Avc,
    /// Legacy 12 (a widespread non-Adobe extension), FourCC `hvc1`.
    Hevc,
    /// FourCC `av01`.
    Av1,
    /// FourCC `vp09`.
    Vp9,
    /// FourCC `vp08`.
    Vp8,
    /// A legacy CodecID this crate does not know.
    UnknownId(u8),
    /// A FourCC this crate does not know.
    UnknownFourCc(FourCc),
}

impl VideoCodec {
    /// From a legacy 4-bit CodecID.
    pub fn from_codec_id(id: u8) -> Self {
        match id {
            2 => VideoCodec::SorensonH263,
            3 => VideoCodec::ScreenVideo,
            4 => VideoCodec::Vp6,
            5 => VideoCodec::Vp6Alpha,
            6 => VideoCodec::ScreenVideo2,
            7 => VideoCodec::Avc,
            12 => VideoCodec::Hevc,
            id => VideoCodec::UnknownId(id),
        }
    }

    /// The legacy CodecID, if it has one.
    pub fn codec_id(self) -> Option<u8> {
        Some(match self {
            VideoCodec::SorensonH263 => 2,
            VideoCodec::ScreenVideo => 3,
            VideoCodec::Vp6 => 4,
            VideoCodec::Vp6Alpha => 5,
            VideoCodec::ScreenVideo2 => 6,
            VideoCodec::Avc => 7,
            VideoCodec::Hevc => 12,
            VideoCodec::UnknownId(id) if id < 16 => id,
            _ => return None,
        })
    }

    /// From an enhanced FourCC.
    pub fn from_fourcc(f: FourCc) -> Self {
        match f {
            FourCc::AVC1 => VideoCodec::Avc,
            FourCc::HVC1 => VideoCodec::Hevc,
            FourCc::AV01 => VideoCodec::Av1,
            FourCc::VP09 => VideoCodec::Vp9,
            FourCc::VP08 => VideoCodec::Vp8,
            f => VideoCodec::UnknownFourCc(f),
        }
    }

    /// The enhanced FourCC, if it has one.
    pub fn fourcc(self) -> Option<FourCc> {
        Some(match self {
            VideoCodec::Avc => FourCc::AVC1,
            VideoCodec::Hevc => FourCc::HVC1,
            VideoCodec::Av1 => FourCc::AV01,
            VideoCodec::Vp9 => FourCc::VP09,
            VideoCodec::Vp8 => FourCc::VP08,
            VideoCodec::UnknownFourCc(f) => f,
            _ => return None,
        })
    }

    /// Codecs whose coded frames carry a composition time (B-frames).
    fn has_composition_time(self) -> bool {
        matches!(self, VideoCodec::Avc | VideoCodec::Hevc)
    }
}

/// What the body holds. Legacy AVCPacketType 0/1/2 map to sequence start,
/// coded frames and sequence end; legacy non-AVC bodies are coded frames.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum VideoPacketType {
    /// 0: decoder configuration (AVCDecoderConfigurationRecord etc.).
    SequenceStart,
    /// 1: coded frames (with a composition time for AVC and HEVC).
    CodedFrames,
    /// 2: end of sequence.
    SequenceEnd,
    /// 3 (enhanced): coded frames, composition time implicitly 0.
    CodedFramesX,
    /// 4 (enhanced): AMF0 metadata (e.g. HDR colour info).
    Metadata,
    /// 5 (enhanced): MPEG-2 TS sequence start.
    Mpeg2TsSequenceStart,
    /// Any other value (including enhanced Multitrack, 6, when nested).
    Other(u8),
}

impl VideoPacketType {
    fn from_enhanced(c: u8) -> Self {
        match c {
            0 => VideoPacketType::SequenceStart,
            1 => VideoPacketType::CodedFrames,
            2 => VideoPacketType::SequenceEnd,
            3 => VideoPacketType::CodedFramesX,
            4 => VideoPacketType::Metadata,
            5 => VideoPacketType::Mpeg2TsSequenceStart,
            c => VideoPacketType::Other(c),
        }
    }

    fn enhanced_code(self) -> u8 {
        match self {
            VideoPacketType::SequenceStart => 0,
            VideoPacketType::CodedFrames => 1,
            VideoPacketType::SequenceEnd => 2,
            VideoPacketType::CodedFramesX => 3,
            VideoPacketType::Metadata => 4,
            VideoPacketType::Mpeg2TsSequenceStart => 5,
            VideoPacketType::Other(c) => c & 0x0f,
        }
    }
}

const MULTITRACK: u8 = 6;
const MANY_TRACKS_MANY_CODECS: u8 = 2;

/// The header at the start of a video tag body, legacy or enhanced.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct VideoTagHeader {
    /// True for the Enhanced RTMP form (IsExHeader bit set).
    pub enhanced: bool,
    /// Keyframe, inter frame, command ...
    pub frame_type: FrameType,
    /// The codec.
    pub codec: VideoCodec,
    /// Sequence start, coded frames, ...
    pub packet_type: VideoPacketType,
    /// Composition time offset in ms (pts - dts), signed 24 bits; 0 when
    /// the form carries none.
    pub composition_time: i32,
    /// The command byte of a command frame (frame type 5), if any.
    pub command: Option<u8>,
    /// Enhanced multitrack: the AvMultitrackType. The body then holds the
    /// per-track entries, not parsed here.
    pub multitrack: Option<u8>,
}

impl VideoTagHeader {
    /// A legacy AVC header (the form every RTMP H.264 publisher sends).
    pub fn avc(frame_type: FrameType, packet_type: VideoPacketType, composition_time: i32) -> Self {
        VideoTagHeader {
            enhanced: false,
            frame_type,
            codec: VideoCodec::Avc,
            packet_type,
            composition_time,
            command: None,
            multitrack: None,
        }
    }

    /// An enhanced (FourCC) header.
    pub fn enhanced(
        frame_type: FrameType,
        codec: VideoCodec,
        packet_type: VideoPacketType,
        composition_time: i32,
    ) -> Self {
        VideoTagHeader {
            enhanced: true,
            frame_type,
            codec,
            packet_type,
            composition_time,
            command: None,
            multitrack: None,
        }
    }

    /// True for a keyframe (or generated keyframe).
    pub fn is_keyframe(&self) -> bool {
        matches!(self.frame_type, FrameType::Key | FrameType::GeneratedKey)
    }

    /// True for a decoder configuration record.
    pub fn is_sequence_header(&self) -> bool {
        self.packet_type == VideoPacketType::SequenceStart
    }

    /// Parses the header at the start of `data` (a video tag body) and
    /// returns it with the rest of the body (zero copy).
    pub fn parse(data: &Bytes) -> Result<(VideoTagHeader, Bytes), Error> {
        let mut c = Cursor::new(data, "video tag header");
        let b0 = c.u8()?;
        let header = if b0 & 0x80 != 0 {
            Self::parse_enhanced(b0, &mut c)?
        } else {
            Self::parse_legacy(b0, &mut c)?
        };
        let used = data.len().saturating_sub(c.remaining().len());
        Ok((header, data.slice(used..)))
    }

    fn parse_legacy(b0: u8, c: &mut Cursor<'_>) -> Result<Self, Error> {
        let frame_type = FrameType::from_code(b0 >> 4);
        let codec = VideoCodec::from_codec_id(b0 & 0x0f);
        let mut h = VideoTagHeader {
            enhanced: false,
            frame_type,
            codec,
            packet_type: VideoPacketType::CodedFrames,
            composition_time: 0,
            command: None,
            multitrack: None,
        };
        if frame_type == FrameType::Command {
            h.command = Some(c.u8()?);
        } else if codec.has_composition_time() {
            h.packet_type = match c.u8()? {
                0 => VideoPacketType::SequenceStart,
                1 => VideoPacketType::CodedFrames,
                2 => VideoPacketType::SequenceEnd,
                n => VideoPacketType::Other(n),
            };
            h.composition_time = c.i24()?;
        }
        Ok(h)
    }

    fn parse_enhanced(b0: u8, c: &mut Cursor<'_>) -> Result<Self, Error> {
        let frame_type = FrameType::from_code((b0 >> 4) & 0x07);
        let mut packet_type = skip_mod_ex(b0 & 0x0f, c)?;
        let mut h = VideoTagHeader::enhanced(
            frame_type,
            VideoCodec::UnknownFourCc(FourCc([0; 4])),
            VideoPacketType::CodedFrames,
            0,
        );
        if packet_type != 4 && frame_type == FrameType::Command {
            h.packet_type = VideoPacketType::from_enhanced(packet_type);
            h.command = Some(c.u8()?);
            return Ok(h);
        }
        if packet_type == MULTITRACK {
            let m = c.u8()?;
            let kind = m >> 4;
            packet_type = m & 0x0f;
            h.multitrack = Some(kind);
            h.packet_type = VideoPacketType::from_enhanced(packet_type);
            if kind != MANY_TRACKS_MANY_CODECS {
                h.codec = VideoCodec::from_fourcc(FourCc(c.array()?));
            }
            return Ok(h);
        }
        h.packet_type = VideoPacketType::from_enhanced(packet_type);
        h.codec = VideoCodec::from_fourcc(FourCc(c.array()?));
        if h.packet_type == VideoPacketType::CodedFrames && h.codec.has_composition_time() {
            h.composition_time = c.i24()?;
        }
        Ok(h)
    }

    /// Number of bytes [`encode`](Self::encode) writes.
    pub fn encoded_len(&self) -> usize {
        if self.enhanced {
            if self.command.is_some() && self.packet_type != VideoPacketType::Metadata {
                return 2;
            }
            if let Some(kind) = self.multitrack {
                return if kind == MANY_TRACKS_MANY_CODECS {
                    2
                } else {
                    6
                };
            }
            if self.packet_type == VideoPacketType::CodedFrames && self.codec.has_composition_time()
            {
                8
            } else {
                5
            }
        } else if self.frame_type == FrameType::Command {
            2
        } else if self.codec.has_composition_time() {
            5
        } else {
            1
        }
    }

    /// Appends the header. Fails with [`Error::NotRepresentable`] when the
    /// codec or packet type has no code in the chosen form (e.g. AV1 in a
    /// legacy header, metadata in a legacy header).
    pub fn encode(&self, dst: &mut impl BufMut) -> Result<(), Error> {
        if self.enhanced {
            return self.encode_enhanced(dst);
        }
        let id = self.codec.codec_id().ok_or(Error::NotRepresentable)?;
        let ft = self.frame_type.code();
        if ft > 0x0f {
            return Err(Error::NotRepresentable);
        }
        if self.frame_type == FrameType::Command {
            dst.put_u8(ft << 4 | id);
            dst.put_u8(self.command.unwrap_or(0));
            return Ok(());
        }
        if !self.codec.has_composition_time() {
            dst.put_u8(ft << 4 | id);
            return Ok(());
        }
        let pt = match self.packet_type {
            VideoPacketType::SequenceStart => 0,
            VideoPacketType::CodedFrames | VideoPacketType::CodedFramesX => 1,
            VideoPacketType::SequenceEnd => 2,
            VideoPacketType::Other(n) => n,
            VideoPacketType::Metadata | VideoPacketType::Mpeg2TsSequenceStart => {
                return Err(Error::NotRepresentable);
            }
        };
        dst.put_u8(ft << 4 | id);
        dst.put_u8(pt);
        put_i24(dst, self.composition_time);
        Ok(())
    }

    fn encode_enhanced(&self, dst: &mut impl BufMut) -> Result<(), Error> {
        let ft = self.frame_type.code();
        if ft > 0x07 {
            return Err(Error::NotRepresentable);
        }
        let pt = self.packet_type.enhanced_code();
        if let (Some(cmd), false) = (self.command, self.packet_type == VideoPacketType::Metadata) {
            dst.put_u8(0x80 | ft << 4 | pt);
            dst.put_u8(cmd);
            return Ok(());
        }
        if let Some(kind) = self.multitrack {
            dst.put_u8(0x80 | ft << 4 | MULTITRACK);
            dst.put_u8((kind & 0x0f) << 4 | pt);
            if kind != MANY_TRACKS_MANY_CODECS {
                let f = self.codec.fourcc().ok_or(Error::NotRepresentable)?;
                dst.put_slice(&f.0);
            }
            return Ok(());
        }
        let f = self.codec.fourcc().ok_or(Error::NotRepresentable)?;
        if pt == MULTITRACK || pt == 7 {
            return Err(Error::NotRepresentable);
        }
        dst.put_u8(0x80 | ft << 4 | pt);
        dst.put_slice(&f.0);
        if self.packet_type == VideoPacketType::CodedFrames && self.codec.has_composition_time() {
            put_i24(dst, self.composition_time);
        }
        Ok(())
    }
}

pub(crate) fn put_i24(dst: &mut impl BufMut, v: i32) {
    let [_, a, b, c] = v.to_be_bytes();
    dst.put_slice(&[a, b, c]);
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn parse(b: &[u8]) -> Result<(VideoTagHeader, Bytes), Error> {
        VideoTagHeader::parse(&Bytes::copy_from_slice(b))
    }

    #[test]
    fn legacy_avc() {
        // Keyframe AVC NALU, composition time -2 (0xfffffe).
        let (h, rest) = parse(&[0x17, 0x01, 0xff, 0xff, 0xfe, 0xaa]).unwrap();
        assert_eq!(
            h,
            VideoTagHeader::avc(FrameType::Key, VideoPacketType::CodedFrames, -2)
        );
        assert_eq!(&rest[..], &[0xaa]);
        let (h, _) = parse(&[0x27, 0x00, 0x00, 0x00, 0x50]).unwrap();
        assert_eq!(h.packet_type, VideoPacketType::SequenceStart);
        assert_eq!(h.composition_time, 80);
        assert_eq!(
            parse(&[0x17, 0x01, 0]),
            Err(Error::UnexpectedEnd("video tag header"))
        );
        assert_eq!(parse(&[]), Err(Error::UnexpectedEnd("video tag header")));
        // Sorenson H.263: a one-byte header.
        let (h, rest) = parse(&[0x22, 1, 2]).unwrap();
        assert_eq!(h.codec, VideoCodec::SorensonH263);
        assert_eq!(rest.len(), 2);
        // Unknown codec id: reported, not an error.
        assert_eq!(parse(&[0x1e]).unwrap().0.codec, VideoCodec::UnknownId(14));
    }

    #[test]
    fn enhanced_forms() {
        // hvc1 sequence start, keyframe.
        let (h, rest) = parse(b"\x90hvc1\x01\x02").unwrap();
        assert_eq!(
            h,
            VideoTagHeader::enhanced(
                FrameType::Key,
                VideoCodec::Hevc,
                VideoPacketType::SequenceStart,
                0
            )
        );
        assert_eq!(&rest[..], &[1, 2]);
        // hvc1 coded frames with composition time 66.
        let (h, _) = parse(b"\xa1hvc1\x00\x00\x42").unwrap();
        assert_eq!(h.composition_time, 66);
        assert_eq!(h.frame_type, FrameType::Inter);
        // av01 coded frames: no composition time.
        let (h, rest) = parse(b"\x91av01\x12").unwrap();
        assert_eq!(
            (h.codec, h.composition_time, rest.len()),
            (VideoCodec::Av1, 0, 1)
        );
        // CodedFramesX, SequenceEnd, Metadata.
        assert_eq!(
            parse(b"\xa3vp09").unwrap().0.packet_type,
            VideoPacketType::CodedFramesX
        );
        assert_eq!(
            parse(b"\x92avc1").unwrap().0.packet_type,
            VideoPacketType::SequenceEnd
        );
        assert_eq!(
            parse(b"\x94av01\x02").unwrap().0.packet_type,
            VideoPacketType::Metadata
        );
        // Unknown FourCC.
        assert_eq!(
            parse(b"\x91xyz1").unwrap().0.codec,
            VideoCodec::UnknownFourCc(FourCc(*b"xyz1"))
        );
        // Command frame: a command byte, no FourCC.
        let (h, rest) = parse(&[0xd1, 0x01]).unwrap();
        assert_eq!((h.command, rest.len()), (Some(1), 0));
        // ModEx prefix (size 1, data 0xab, then CodedFramesX) is skipped.
        let (h, _) = parse(b"\x97\x00\xab\x03vp09").unwrap();
        assert_eq!(
            (h.packet_type, h.codec),
            (VideoPacketType::CodedFramesX, VideoCodec::Vp9)
        );
        // Multitrack, one track: FourCC then the track entries.
        let (h, rest) = parse(b"\x96\x01av01\x00\xff").unwrap();
        assert_eq!(
            (h.multitrack, h.codec, rest.len()),
            (Some(0), VideoCodec::Av1, 2)
        );
    }

    #[test]
    fn not_representable() {
        let h = VideoTagHeader {
            enhanced: false,
            ..VideoTagHeader::enhanced(
                FrameType::Key,
                VideoCodec::Av1,
                VideoPacketType::CodedFrames,
                0,
            )
        };
        assert_eq!(h.encode(&mut Vec::new()), Err(Error::NotRepresentable));
        let h = VideoTagHeader::enhanced(
            FrameType::Key,
            VideoCodec::Vp6,
            VideoPacketType::CodedFrames,
            0,
        );
        assert_eq!(h.encode(&mut Vec::new()), Err(Error::NotRepresentable));
    }

    proptest! {
        #[test]
        fn parse_then_encode_round_trips(bytes in prop::collection::vec(any::<u8>(), 0..16)) {
            if let Ok((h, rest)) = parse(&bytes) {
                let mut out = Vec::new();
                if h.encode(&mut out).is_ok() {
                    prop_assert_eq!(out.len(), h.encoded_len());
                    let again = parse(&out).unwrap().0;
                    prop_assert_eq!(again, h);
                }
                prop_assert!(rest.len() <= bytes.len());
            }
        }

        #[test]
        fn build_then_parse(ct in -0x80_0000i32..0x80_0000, key in any::<bool>(), hevc in any::<bool>(), enhanced in any::<bool>()) {
            let ft = if key { FrameType::Key } else { FrameType::Inter };
            let codec = if hevc { VideoCodec::Hevc } else { VideoCodec::Avc };
            let h = VideoTagHeader { enhanced, codec, ..VideoTagHeader::avc(ft, VideoPacketType::CodedFrames, ct) };
            let mut out = Vec::new();
            h.encode(&mut out).unwrap();
            out.push(0x42);
            let (back, rest) = parse(&out).unwrap();
            prop_assert_eq!(back, h);
            prop_assert_eq!(&rest[..], &[0x42]);
        }
    }
}
