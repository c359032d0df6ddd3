//! Audio tag bodies: the legacy AudioTagHeader (FLV specification E.4.2.1)
//! and the Enhanced RTMP ExAudioTagHeader (FourCC codecs such as Opus).

use bytes::{BufMut, Bytes};

use crate::Error;
use crate::cursor::Cursor;
use crate::enhanced::{FourCc, skip_mod_ex};

/// The audio codec, from a legacy SoundFormat or an enhanced FourCC.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum AudioCodec {
    /// 0: linear PCM, platform endian.
    LinearPcm,
    /// 1: ADPCM.
    Adpcm,
    /// 2, FourCC `.mp3`.
    Mp3,
    /// 3: linear PCM, little endian.
    LinearPcmLe,
    /// 4: Nellymoser 16 kHz mono.
    Nellymoser16kMono,
    /// 5: Nellymoser 8 kHz mono.
    Nellymoser8kMono,
    /// 6: Nellymoser.
    Nellymoser,
    /// 7: G.711 A-law.
    G711ALaw,
    /// 8: G.711 mu-law.
    G711MuLaw,
    /// 10, FourCC `mp4a`.
    Aac,
    /// 11: Speex.
    Speex,
    /// 14: MP3 8 kHz.
    Mp38k,
    /// 15: device-specific sound.
    DeviceSpecific,
    /// FourCC `Opus`.
    Opus,
    /// FourCC `fLaC`.
    Flac,
    /// FourCC `ac-3`.
    Ac3,
    /// FourCC `ec-3`.
    Eac3,
    /// A legacy SoundFormat this crate does not know (12, 13).
    UnknownId(u8),
    /// A FourCC this crate does not know.
    UnknownFourCc(FourCc),
}

const EX_HEADER: u8 = 9;

impl AudioCodec {
    /// From a legacy 4-bit SoundFormat (9 is the enhanced marker, not a codec).
    pub fn from_sound_format(id: u8) -> Self {
        match id {
            0 => AudioCodec::LinearPcm,
            1 => AudioCodec::Adpcm,
            2 => AudioCodec::Mp3,
            3 => AudioCodec::LinearPcmLe,
            4 => AudioCodec::Nellymoser16kMono,
            5 => AudioCodec::Nellymoser8kMono,
            6 => AudioCodec::Nellymoser,
            7 => AudioCodec::G711ALaw,
            8 => AudioCodec::G711MuLaw,
            10 => AudioCodec::Aac,
            11 => AudioCodec::Speex,
            14 => AudioCodec::Mp38k,
            15 => AudioCodec::DeviceSpecific,
            id => AudioCodec::UnknownId(id),
        }
    }

    /// The legacy SoundFormat, if it has one.
    pub fn sound_format(self) -> Option<u8> {
        Some(match self {
            AudioCodec::LinearPcm => 0,
            AudioCodec::Adpcm => 1,
            AudioCodec::Mp3 => 2,
            AudioCodec::LinearPcmLe => 3,
            AudioCodec::Nellymoser16kMono => 4,
            AudioCodec::Nellymoser8kMono => 5,
            AudioCodec::Nellymoser => 6,
            AudioCodec::G711ALaw => 7,
            AudioCodec::G711MuLaw => 8,
            AudioCodec::Aac => 10,
            AudioCodec::Speex => 11,
            AudioCodec::Mp38k => 14,
            AudioCodec::DeviceSpecific => 15,
            AudioCodec::UnknownId(id) if id < 16 && id != EX_HEADER => id,
            _ => return None,
        })
    }

    /// From an enhanced FourCC.
    pub fn from_fourcc(f: FourCc) -> Self {
        match f {
            FourCc::OPUS => AudioCodec::Opus,
            FourCc::FLAC => AudioCodec::Flac,
            FourCc::AC3 => AudioCodec::Ac3,
            FourCc::EAC3 => AudioCodec::Eac3,
            FourCc::MP3 => AudioCodec::Mp3,
            FourCc::MP4A => AudioCodec::Aac,
            f => AudioCodec::UnknownFourCc(f),
        }
    }

    /// The enhanced FourCC, if it has one.
    pub fn fourcc(self) -> Option<FourCc> {
        Some(match self {
            AudioCodec::Opus => FourCc::OPUS,
            AudioCodec::Flac => FourCc::FLAC,
            AudioCodec::Ac3 => FourCc::AC3,
            AudioCodec::Eac3 => FourCc::EAC3,
            AudioCodec::Mp3 => FourCc::MP3,
            AudioCodec::Aac => FourCc::MP4A,
            AudioCodec::UnknownFourCc(f) => f,
            _ => return None,
        })
    }
}

/// What the body holds. Legacy AACPacketType 0/1 map to sequence start and
/// coded frames; other legacy bodies are coded frames.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum AudioPacketType {
    /// 0: decoder configuration (AudioSpecificConfig, OpusHead, ...).
    SequenceStart,
    /// 1: coded frames.
    CodedFrames,
    /// 2 (enhanced): end of sequence.
    SequenceEnd,
    /// 4 (enhanced): multichannel configuration.
    MultichannelConfig,
    /// Any other value.
    Other(u8),
}

impl AudioPacketType {
    fn from_enhanced(c: u8) -> Self {
        match c {
            0 => AudioPacketType::SequenceStart,
            1 => AudioPacketType::CodedFrames,
            2 => AudioPacketType::SequenceEnd,
            4 => AudioPacketType::MultichannelConfig,
            c => AudioPacketType::Other(c),
        }
    }

    fn enhanced_code(self) -> u8 {
        match self {
            AudioPacketType::SequenceStart => 0,
            AudioPacketType::CodedFrames => 1,
            AudioPacketType::SequenceEnd => 2,
            AudioPacketType::MultichannelConfig => 4,
            AudioPacketType::Other(c) => c & 0x0f,
        }
    }
}

const MULTITRACK: u8 = 5;
const MANY_TRACKS_MANY_CODECS: u8 = 2;

/// The header at the start of an audio tag body, legacy or enhanced.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AudioTagHeader {
    /// True for the Enhanced RTMP form (SoundFormat 9).
    pub enhanced: bool,
    /// The codec.
    pub codec: AudioCodec,
    /// Legacy SoundRate (0: 5.5 kHz, 1: 11 kHz, 2: 22 kHz, 3: 44 kHz); 0 when enhanced.
    pub sound_rate: u8,
    /// Legacy SoundSize (0: 8 bit, 1: 16 bit); 0 when enhanced.
    pub sound_size: u8,
    /// Legacy SoundType (0: mono, 1: stereo); 0 when enhanced.
    pub sound_type: u8,
    /// Sequence start, coded frames, ...
    pub packet_type: AudioPacketType,
    /// Enhanced multitrack: the AvMultitrackType. The body then holds the
    /// per-track entries, not parsed here.
    pub multitrack: Option<u8>,
}

impl AudioTagHeader {
    /// The legacy AAC header RTMP publishers send: `0xaf` (44 kHz, 16 bit,
    /// stereo; the AudioSpecificConfig has the real values) and the
    /// AACPacketType.
    pub fn aac(packet_type: AudioPacketType) -> Self {
        AudioTagHeader {
            enhanced: false,
            codec: AudioCodec::Aac,
            sound_rate: 3,
            sound_size: 1,
            sound_type: 1,
            packet_type,
            multitrack: None,
        }
    }

    /// An enhanced (FourCC) header, e.g. Opus.
    pub fn enhanced(codec: AudioCodec, packet_type: AudioPacketType) -> Self {
        AudioTagHeader {
            enhanced: true,
            codec,
            sound_rate: 0,
            sound_size: 0,
            sound_type: 0,
            packet_type,
            multitrack: None,
        }
    }

    /// The legacy SoundRate in Hz.
    pub fn sound_rate_hz(&self) -> u32 {
        [5_512, 11_025, 22_050, 44_100]
            .get(usize::from(self.sound_rate & 3))
            .copied()
            .unwrap_or(44_100)
    }

    /// True for a decoder configuration record.
    pub fn is_sequence_header(&self) -> bool {
        self.packet_type == AudioPacketType::SequenceStart
    }

    /// Parses the header at the start of `data` (an audio tag body) and
    /// returns it with the rest of the body (zero copy).
    pub fn parse(data: &Bytes) -> Result<(AudioTagHeader, Bytes), Error> {
        let mut c = Cursor::new(data, "audio tag header");
        let b0 = c.u8()?;
        let format = b0 >> 4;
        let header = if format == EX_HEADER {
            let mut h = AudioTagHeader::enhanced(
                AudioCodec::UnknownFourCc(FourCc([0; 4])),
                AudioPacketType::CodedFrames,
            );
            let mut pt = skip_mod_ex(b0 & 0x0f, &mut c)?;
            if pt == MULTITRACK {
                let m = c.u8()?;
                let kind = m >> 4;
                pt = m & 0x0f;
                h.multitrack = Some(kind);
                if kind != MANY_TRACKS_MANY_CODECS {
                    h.codec = AudioCodec::from_fourcc(FourCc(c.array()?));
                }
            } else {
                h.codec = AudioCodec::from_fourcc(FourCc(c.array()?));
            }
            h.packet_type = AudioPacketType::from_enhanced(pt);
            h
        } else {
            let codec = AudioCodec::from_sound_format(format);
            let packet_type = if codec == AudioCodec::Aac {
                match c.u8()? {
                    0 => AudioPacketType::SequenceStart,
                    1 => AudioPacketType::CodedFrames,
                    n => AudioPacketType::Other(n),
                }
            } else {
                AudioPacketType::CodedFrames
            };
            AudioTagHeader {
                enhanced: false,
                codec,
                sound_rate: (b0 >> 2) & 3,
                sound_size: (b0 >> 1) & 1,
                sound_type: b0 & 1,
                packet_type,
                multitrack: None,
            }
        };
        let used = data.len().saturating_sub(c.remaining().len());
        Ok((header, data.slice(used..)))
    }

    /// Number of bytes [`encode`](Self::encode) writes.
    pub fn encoded_len(&self) -> usize {
        match (self.enhanced, self.multitrack) {
            (true, Some(MANY_TRACKS_MANY_CODECS)) => 2,
            (true, Some(_)) => 6,
            (true, None) => 5,
            (false, _) if self.codec == AudioCodec::Aac => 2,
            (false, _) => 1,
        }
    }

    /// Appends the header. Fails with [`Error::NotRepresentable`] when the
    /// codec or packet type has no code in the chosen form (e.g. Opus in a
    /// legacy header).
    pub fn encode(&self, dst: &mut impl BufMut) -> Result<(), Error> {
        let pt = self.packet_type.enhanced_code();
        if self.enhanced {
            if pt == MULTITRACK || pt == 7 {
                return Err(Error::NotRepresentable);
            }
            if let Some(kind) = self.multitrack {
                dst.put_u8(EX_HEADER << 4 | MULTITRACK);
                dst.put_u8((kind & 0x0f) << 4 | pt);
                if kind != MANY_TRACKS_MANY_CODECS {
                    let f = self.codec.fourcc().ok_or(Error::NotRepresentable)?;
                    dst.put_slice(&f.0);
                }
                return Ok(());
            }
            let f = self.codec.fourcc().ok_or(Error::NotRepresentable)?;
            dst.put_u8(EX_HEADER << 4 | pt);
            dst.put_slice(&f.0);
            return Ok(());
        }
        let format = self.codec.sound_format().ok_or(Error::NotRepresentable)?;
        let b0 = format << 4
            | (self.sound_rate & 3) << 2
            | (self.sound_size & 1) << 1
            | (self.sound_type & 1);
        if self.codec == AudioCodec::Aac {
            let aac_pt = match self.packet_type {
                AudioPacketType::SequenceStart => 0,
                AudioPacketType::CodedFrames => 1,
                AudioPacketType::Other(n) => n,
                _ => return Err(Error::NotRepresentable),
            };
            dst.put_u8(b0);
            dst.put_u8(aac_pt);
        } else {
            dst.put_u8(b0);
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn parse(b: &[u8]) -> Result<(AudioTagHeader, Bytes), Error> {
        AudioTagHeader::parse(&Bytes::copy_from_slice(b))
    }

    #[test]
    fn legacy_aac_and_mp3() {
        let (h, rest) = parse(&[0xaf, 0x00, 0x12, 0x10]).unwrap();
        assert_eq!(h, AudioTagHeader::aac(AudioPacketType::SequenceStart));
        assert_eq!(&rest[..], &[0x12, 0x10]);
        assert_eq!(h.sound_rate_hz(), 44_100);
        // MP3 22 kHz 16 bit mono: one-byte header.
        let (h, rest) = parse(&[0x2a, 0xff]).unwrap();
        assert_eq!(
            (h.codec, h.sound_rate, h.sound_size, h.sound_type),
            (AudioCodec::Mp3, 2, 1, 0)
        );
        assert_eq!(rest.len(), 1);
        assert_eq!(
            parse(&[0xaf]),
            Err(Error::UnexpectedEnd("audio tag header"))
        );
        assert_eq!(parse(&[0xd0]).unwrap().0.codec, AudioCodec::UnknownId(13));
    }

    #[test]
    fn enhanced_opus() {
        let (h, rest) = parse(b"\x90OpusHead").unwrap();
        assert_eq!(
            h,
            AudioTagHeader::enhanced(AudioCodec::Opus, AudioPacketType::SequenceStart)
        );
        assert_eq!(&rest[..], b"Head");
        let (h, _) = parse(b"\x91Opus").unwrap();
        assert_eq!(h.packet_type, AudioPacketType::CodedFrames);
        assert_eq!(
            parse(b"\x92fLaC").unwrap().0.packet_type,
            AudioPacketType::SequenceEnd
        );
        assert_eq!(
            parse(b"\x91abcd").unwrap().0.codec,
            AudioCodec::UnknownFourCc(FourCc(*b"abcd"))
        );
        assert_eq!(
            parse(b"\x91Op"),
            Err(Error::UnexpectedEnd("audio tag header"))
        );
        let mut out = Vec::new();
        AudioTagHeader::enhanced(AudioCodec::Opus, AudioPacketType::CodedFrames)
            .encode(&mut out)
            .unwrap();
        assert_eq!(out, b"\x91Opus");
        let legacy_opus = AudioTagHeader {
            enhanced: false,
            ..AudioTagHeader::enhanced(AudioCodec::Opus, AudioPacketType::CodedFrames)
        };
        assert_eq!(legacy_opus.encode(&mut out), Err(Error::NotRepresentable));
    }

    proptest! {
        #[test]
        fn parse_then_encode_round_trips(bytes in prop::collection::vec(any::<u8>(), 0..12)) {
            if let Ok((h, _)) = parse(&bytes) {
                let mut out = Vec::new();
                if h.encode(&mut out).is_ok() {
                    prop_assert_eq!(out.len(), h.encoded_len());
                    prop_assert_eq!(parse(&out).unwrap().0, h);
                }
            }
        }
    }
}
