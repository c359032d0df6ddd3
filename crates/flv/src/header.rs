//! The FLV file header (E.2 of the FLV specification, "The FLV header").

use bytes::{Buf, BufMut};

use crate::Error;

/// Size of the version 1 file header.
pub const HEADER_LEN: usize = 9;

/// The FLV file header: signature `FLV`, version, audio/video flags and
/// the offset of the body.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Header {
    /// File version (1 for every file in use).
    pub version: u8,
    /// TypeFlagsAudio.
    pub has_audio: bool,
    /// TypeFlagsVideo.
    pub has_video: bool,
    /// DataOffset: where the body starts (9 for version 1).
    pub data_offset: u32,
}

impl Header {
    /// A version 1 header announcing the given tracks.
    pub fn new(has_audio: bool, has_video: bool) -> Self {
        Header {
            version: 1,
            has_audio,
            has_video,
            data_offset: HEADER_LEN as u32,
        }
    }

    /// Parses the 9 fixed bytes; `Ok(None)` if fewer are given.
    ///
    /// The caller skips `data_offset - 9` further bytes (none in practice).
    pub fn parse(src: &[u8]) -> Result<Option<Header>, Error> {
        let Some(mut b) = src.get(..HEADER_LEN) else {
            return Ok(None);
        };
        if b.get(..3) != Some(b"FLV") {
            return Err(Error::BadSignature);
        }
        b.advance(3);
        let version = b.get_u8();
        let flags = b.get_u8();
        let data_offset = b.get_u32();
        if (data_offset as usize) < HEADER_LEN {
            return Err(Error::BadDataOffset(data_offset));
        }
        Ok(Some(Header {
            version,
            has_audio: flags & 0x04 != 0,
            has_video: flags & 0x01 != 0,
            data_offset,
        }))
    }

    /// Writes the header (and zero padding up to `data_offset`, if larger).
    pub fn encode(&self, dst: &mut impl BufMut) {
        dst.put_slice(b"FLV");
        dst.put_u8(self.version);
        dst.put_u8(u8::from(self.has_audio) << 2 | u8::from(self.has_video));
        let offset = self.data_offset.max(HEADER_LEN as u32);
        dst.put_u32(offset);
        dst.put_bytes(0, (offset as usize).saturating_sub(HEADER_LEN));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ffmpeg_header() {
        // First 9 bytes of every ffmpeg-written FLV with audio and video.
        let b = [b'F', b'L', b'V', 1, 5, 0, 0, 0, 9];
        let h = Header::parse(&b).unwrap().unwrap();
        assert_eq!(h, Header::new(true, true));
        let mut out = Vec::new();
        h.encode(&mut out);
        assert_eq!(out, b);
        assert_eq!(Header::parse(&b[..8]), Ok(None));
        assert_eq!(
            Header::parse(b"FLX\x01\x05\0\0\0\x09"),
            Err(Error::BadSignature)
        );
        assert_eq!(
            Header::parse(b"FLV\x01\x05\0\0\0\x08"),
            Err(Error::BadDataOffset(8))
        );
    }
}
