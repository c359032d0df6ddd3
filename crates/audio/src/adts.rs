//! ADTS framing, ISO/IEC 13818-7 6.2 and ISO/IEC 14496-3 1.A.2.2
//! (`adts_fixed_header` + `adts_variable_header`, optional CRC).
//!
//! [`AdtsHeader::parse`] and [`AdtsHeader::write`] round-trip bit for bit;
//! [`Decoder`] splits a byte stream into frames (`Ok(None)` = need more).

use bytes::{BufMut, Bytes, BytesMut};

use crate::Error;
use crate::asc::{AudioSpecificConfig, SamplingFrequency};
use crate::bits::{BitReader, BitWriter};

/// The largest ADTS frame: aac_frame_length is 13 bits.
pub const MAX_FRAME_LEN: usize = 8191;

/// One ADTS header.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct AdtsHeader {
    /// ID: true for MPEG-2 AAC, false for MPEG-4.
    pub mpeg2: bool,
    /// layer (always 0 in valid streams; kept for round trip).
    pub layer: u8,
    /// profile_ObjectType: audio object type minus one (1 = AAC-LC).
    pub profile: u8,
    /// sampling_frequency_index (0..=12).
    pub frequency_index: u8,
    /// private_bit.
    pub private_bit: bool,
    /// channel_configuration (0..=7).
    pub channel_configuration: u8,
    /// original_copy.
    pub original_copy: bool,
    /// home.
    pub home: bool,
    /// copyright_identification_bit.
    pub copyright_id_bit: bool,
    /// copyright_identification_start.
    pub copyright_id_start: bool,
    /// aac_frame_length: header + payload, in bytes.
    pub frame_length: u16,
    /// adts_buffer_fullness (0x7FF = variable rate).
    pub buffer_fullness: u16,
    /// number_of_raw_data_blocks_in_frame (frame holds this + 1 blocks).
    pub raw_data_blocks: u8,
    /// crc_check when protection_absent is 0.
    pub crc: Option<u16>,
}

impl AdtsHeader {
    /// A header for one AAC access unit of `payload_len` bytes, without CRC.
    pub fn for_access_unit(asc: &AudioSpecificConfig, payload_len: usize) -> Result<Self, Error> {
        let frequency_index = match asc.frequency {
            SamplingFrequency::Index(i) => i,
            SamplingFrequency::Explicit(hz) => return Err(Error::InvalidFrequency(hz)),
        };
        if !(1..=4).contains(&asc.object_type) || asc.channel_configuration > 7 {
            return Err(Error::Unsupported(format!(
                "ADTS cannot carry object type {} with channel configuration {}",
                asc.object_type, asc.channel_configuration
            )));
        }
        let frame_length = payload_len
            .checked_add(7)
            .filter(|l| *l <= MAX_FRAME_LEN)
            .ok_or(Error::InvalidLength(payload_len))?;
        Ok(Self {
            mpeg2: false,
            layer: 0,
            profile: asc.object_type.saturating_sub(1),
            frequency_index,
            private_bit: false,
            channel_configuration: asc.channel_configuration,
            original_copy: false,
            home: false,
            copyright_id_bit: false,
            copyright_id_start: false,
            frame_length: frame_length as u16,
            buffer_fullness: 0x7FF,
            raw_data_blocks: 0,
            crc: None,
        })
    }

    /// Parses the header at the start of `data` (7 bytes, 9 with CRC).
    pub fn parse(data: &[u8]) -> Result<Self, Error> {
        let mut r = BitReader::new(data);
        if r.read(12)? != 0xFFF {
            return Err(Error::NoSyncword);
        }
        let mpeg2 = r.read_bool()?;
        let layer = r.read(2)? as u8;
        let protection_absent = r.read_bool()?;
        let profile = r.read(2)? as u8;
        let frequency_index = r.read(4)? as u8;
        if frequency_index > 12 {
            return Err(Error::ReservedFrequencyIndex(frequency_index));
        }
        let private_bit = r.read_bool()?;
        let channel_configuration = r.read(3)? as u8;
        let original_copy = r.read_bool()?;
        let home = r.read_bool()?;
        let copyright_id_bit = r.read_bool()?;
        let copyright_id_start = r.read_bool()?;
        let frame_length = r.read(13)? as u16;
        let buffer_fullness = r.read(11)? as u16;
        let raw_data_blocks = r.read(2)? as u8;
        let crc = if protection_absent {
            None
        } else {
            Some(r.read(16)? as u16)
        };
        let h = Self {
            mpeg2,
            layer,
            profile,
            frequency_index,
            private_bit,
            channel_configuration,
            original_copy,
            home,
            copyright_id_bit,
            copyright_id_start,
            frame_length,
            buffer_fullness,
            raw_data_blocks,
            crc,
        };
        if usize::from(frame_length) < h.header_len() {
            return Err(Error::InvalidLength(usize::from(frame_length)));
        }
        Ok(h)
    }

    /// 7, or 9 with a CRC.
    pub fn header_len(&self) -> usize {
        if self.crc.is_some() { 9 } else { 7 }
    }

    /// Bytes of payload after the header.
    pub fn payload_len(&self) -> usize {
        usize::from(self.frame_length).saturating_sub(self.header_len())
    }

    /// Appends the header to `dst`.
    pub fn write(&self, dst: &mut impl BufMut) {
        let mut w = BitWriter::default();
        w.write(0xFFF, 12);
        w.write_bool(self.mpeg2);
        w.write(u32::from(self.layer & 3), 2);
        w.write_bool(self.crc.is_none());
        w.write(u32::from(self.profile & 3), 2);
        w.write(u32::from(self.frequency_index & 15), 4);
        w.write_bool(self.private_bit);
        w.write(u32::from(self.channel_configuration & 7), 3);
        w.write_bool(self.original_copy);
        w.write_bool(self.home);
        w.write_bool(self.copyright_id_bit);
        w.write_bool(self.copyright_id_start);
        w.write(u32::from(self.frame_length & 0x1FFF), 13);
        w.write(u32::from(self.buffer_fullness & 0x7FF), 11);
        w.write(u32::from(self.raw_data_blocks & 3), 2);
        if let Some(crc) = self.crc {
            w.write(u32::from(crc), 16);
        }
        dst.put_slice(&w.finish());
    }

    /// The equivalent AudioSpecificConfig (object type = profile + 1).
    pub fn to_asc(&self) -> AudioSpecificConfig {
        let mut asc = AudioSpecificConfig::aac_lc(48000, self.channel_configuration);
        asc.object_type = self.profile.saturating_add(1);
        asc.frequency = SamplingFrequency::Index(self.frequency_index);
        asc
    }
}

/// One ADTS frame: header and payload (the raw access unit when
/// `raw_data_blocks` is 0).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Frame {
    /// The header.
    pub header: AdtsHeader,
    /// The bytes after the header (and CRC).
    pub payload: Bytes,
}

/// Splits an ADTS byte stream into frames.
#[derive(Debug, Default)]
pub struct Decoder {
    _private: (),
}

impl Decoder {
    /// A new decoder.
    pub fn new() -> Self {
        Self::default()
    }

    /// Takes one frame off the front of `src`; `Ok(None)` when more bytes
    /// are needed. Frames are at most [`MAX_FRAME_LEN`] bytes by
    /// construction, so nothing unbounded is reserved.
    pub fn decode(&mut self, src: &mut BytesMut) -> Result<Option<Frame>, Error> {
        if src.len() < 7 {
            return Ok(None);
        }
        let header = match AdtsHeader::parse(src) {
            Err(Error::UnexpectedEnd) => return Ok(None),
            other => other?,
        };
        let len = usize::from(header.frame_length);
        if src.len() < len {
            return Ok(None);
        }
        let mut frame = src.split_to(len).freeze();
        let payload = frame.split_off(header.header_len());
        Ok(Some(Frame { header, payload }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The first header of `ffmpeg -f lavfi -i sine=frequency=1000:sample_rate=22050
    /// -c:a aac -ac 1 -f adts`: ff f1 5c 40 3f 1f fc.
    #[test]
    fn ffmpeg_header() {
        let b = [0xff, 0xf1, 0x5c, 0x40, 0x3f, 0x1f, 0xfc];
        let h = AdtsHeader::parse(&b).unwrap();
        assert!(!h.mpeg2);
        assert_eq!(h.profile, 1);
        assert_eq!(h.frequency_index, 7);
        assert_eq!(h.channel_configuration, 1);
        assert_eq!(h.frame_length, 0x1f8);
        assert_eq!(h.buffer_fullness, 0x7ff);
        assert_eq!(h.crc, None);
        let asc = h.to_asc();
        assert_eq!((asc.sample_rate(), asc.channels()), (22050, Some(1)));
        let mut out = Vec::new();
        h.write(&mut out);
        assert_eq!(out, b);
        let built = AdtsHeader::for_access_unit(&asc, 0x1f8 - 7).unwrap();
        assert_eq!(built, h);
    }

    #[test]
    fn crc_round_trip_and_errors() {
        let mut h =
            AdtsHeader::for_access_unit(&AudioSpecificConfig::aac_lc(44100, 2), 100).unwrap();
        h.crc = Some(0xBEEF);
        h.frame_length = 109;
        let mut out = Vec::new();
        h.write(&mut out);
        assert_eq!(out.len(), 9);
        assert_eq!(AdtsHeader::parse(&out).unwrap(), h);
        assert_eq!(AdtsHeader::parse(&out[..8]), Err(Error::UnexpectedEnd));
        assert_eq!(AdtsHeader::parse(&[0u8; 9]), Err(Error::NoSyncword));
        out[1] = 0xF0; // frame length stays 109 but header says CRC present
        let mut short = out.clone();
        short[3] &= 0xFC;
        short[4] = 0;
        short[5] &= 0x1F; // frame_length 0
        assert_eq!(AdtsHeader::parse(&short), Err(Error::InvalidLength(0)));
    }

    #[test]
    fn decoder_splits_any_way() {
        let asc = AudioSpecificConfig::aac_lc(48000, 2);
        let mut stream = BytesMut::new();
        for n in [10usize, 0, 300] {
            AdtsHeader::for_access_unit(&asc, n)
                .unwrap()
                .write(&mut stream);
            stream.put_bytes(n as u8, n);
        }
        let all = stream.freeze();
        for split in [1usize, 7, 13, 64] {
            let mut d = Decoder::new();
            let mut buf = BytesMut::new();
            let mut got = Vec::new();
            for chunk in all.chunks(split) {
                buf.extend_from_slice(chunk);
                while let Some(f) = d.decode(&mut buf).unwrap() {
                    got.push(f.payload.len());
                }
            }
            assert_eq!(got, vec![10, 0, 300]);
        }
    }
}
