//! AVCDecoderConfigurationRecord (ISO/IEC 14496-15 5.3.3.1): the body of an
//! AVC sequence-start video tag.

use bytes::{BufMut, Bytes};

use crate::Error;
use crate::cursor::Cursor;

/// The chroma and bit-depth fields that follow the PPS list for the High
/// profiles (profile_idc 100, 110, 122, 144).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HighProfileExt {
    /// chroma_format (2 bits).
    pub chroma_format: u8,
    /// bit_depth_luma_minus8 (3 bits).
    pub bit_depth_luma_minus8: u8,
    /// bit_depth_chroma_minus8 (3 bits).
    pub bit_depth_chroma_minus8: u8,
    /// SequenceParameterSetExt NAL units.
    pub sps_ext: Vec<Bytes>,
}

/// An AVCDecoderConfigurationRecord. Parameter sets are zero-copy slices.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AvcDecoderConfigurationRecord {
    /// AVCProfileIndication (profile_idc of the SPS).
    pub profile: u8,
    /// profile_compatibility (the constraint_set flags byte of the SPS).
    pub compatibility: u8,
    /// AVCLevelIndication (level_idc of the SPS).
    pub level: u8,
    /// lengthSizeMinusOne: NAL unit length fields are this + 1 bytes (0, 1
    /// or 3; [`parse`](Self::parse) refuses 2, as ISO/IEC 14496-15 does).
    pub length_size_minus_one: u8,
    /// Sequence parameter set NAL units (at most 31).
    pub sps: Vec<Bytes>,
    /// Picture parameter set NAL units (at most 255).
    pub pps: Vec<Bytes>,
    /// The High-profile extension, when present (many encoders omit it).
    pub high_profile_ext: Option<HighProfileExt>,
}

fn is_high_profile(profile: u8) -> bool {
    matches!(profile, 100 | 110 | 122 | 144)
}

impl AvcDecoderConfigurationRecord {
    /// A record with the profile fields taken from `sps` (bytes 1..4 of the
    /// NAL unit), 4-byte NAL lengths and no High-profile extension.
    pub fn from_parameter_sets(sps: Bytes, pps: Vec<Bytes>) -> Result<Self, Error> {
        let Some(&[profile, compatibility, level]) = sps.get(1..4) else {
            return Err(Error::UnexpectedEnd("sequence parameter set"));
        };
        Ok(AvcDecoderConfigurationRecord {
            profile,
            compatibility,
            level,
            length_size_minus_one: 3,
            sps: vec![sps],
            pps,
            high_profile_ext: None,
        })
    }

    /// NAL unit length size in bytes: 1, 2 or 4 for a parsed record. This
    /// is the workspace's one rule for AVCC length sizes (ISO/IEC 14496-15
    /// 5.3.3.1.2); the NAL splitter (`rts_h264::nal`) takes the same three.
    pub fn nal_length_size(&self) -> u8 {
        (self.length_size_minus_one & 3).saturating_add(1)
    }

    /// Parses a record (the body after the video tag header). A record with
    /// 3-byte NAL lengths is [`Error::BadNalLengthSize`].
    pub fn parse(data: &Bytes) -> Result<Self, Error> {
        let mut c = Cursor::new(data, "avc decoder configuration record");
        let version = c.u8()?;
        if version != 1 {
            return Err(Error::BadConfigurationVersion(version));
        }
        let profile = c.u8()?;
        let compatibility = c.u8()?;
        let level = c.u8()?;
        let length_size_minus_one = c.u8()? & 0x03;
        if length_size_minus_one == 2 {
            return Err(Error::BadNalLengthSize);
        }
        let num_sps = c.u8()? & 0x1f;
        let slice = |c: &mut Cursor<'_>| -> Result<Bytes, Error> {
            let len = usize::from(c.u16()?);
            let start = data.len().saturating_sub(c.remaining().len());
            c.take(len)?;
            Ok(data.slice(start..start.saturating_add(len)))
        };
        let mut sps = Vec::with_capacity(usize::from(num_sps));
        for _ in 0..num_sps {
            sps.push(slice(&mut c)?);
        }
        let num_pps = c.u8()?;
        let mut pps = Vec::with_capacity(usize::from(num_pps).min(c.remaining().len()));
        for _ in 0..num_pps {
            pps.push(slice(&mut c)?);
        }
        // The extension is optional in practice: ffmpeg and others omit it
        // even for High profile, so only read it when bytes remain.
        let high_profile_ext = if is_high_profile(profile) && c.remaining().len() >= 4 {
            let chroma_format = c.u8()? & 0x03;
            let bit_depth_luma_minus8 = c.u8()? & 0x07;
            let bit_depth_chroma_minus8 = c.u8()? & 0x07;
            let n = c.u8()?;
            let mut sps_ext = Vec::with_capacity(usize::from(n).min(c.remaining().len()));
            for _ in 0..n {
                sps_ext.push(slice(&mut c)?);
            }
            Some(HighProfileExt {
                chroma_format,
                bit_depth_luma_minus8,
                bit_depth_chroma_minus8,
                sps_ext,
            })
        } else {
            None
        };
        Ok(AvcDecoderConfigurationRecord {
            profile,
            compatibility,
            level,
            length_size_minus_one,
            sps,
            pps,
            high_profile_ext,
        })
    }

    /// Number of bytes [`encode`](Self::encode) writes.
    pub fn encoded_len(&self) -> usize {
        let list = |v: &[Bytes]| {
            v.iter()
                .fold(0usize, |n, b| n.saturating_add(2).saturating_add(b.len()))
        };
        let mut n = 7usize
            .saturating_add(list(&self.sps))
            .saturating_add(list(&self.pps));
        if let Some(ext) = &self.high_profile_ext {
            n = n.saturating_add(4).saturating_add(list(&ext.sps_ext));
        }
        n
    }

    /// Appends the record. Fails with [`Error::ParameterSetTooLong`] if a
    /// list or NAL unit does not fit its length field (more than 31 SPS,
    /// 255 PPS, or a unit over 65535 bytes).
    pub fn encode(&self, dst: &mut impl BufMut) -> Result<(), Error> {
        let too_long = |v: &[Bytes], max: usize| {
            v.len() > max || v.iter().any(|b| b.len() > usize::from(u16::MAX))
        };
        let ext_too_long = self
            .high_profile_ext
            .as_ref()
            .is_some_and(|e| too_long(&e.sps_ext, 255));
        if too_long(&self.sps, 31) || too_long(&self.pps, 255) || ext_too_long {
            return Err(Error::ParameterSetTooLong);
        }
        let put_list = |dst: &mut dyn BufMut, v: &[Bytes]| {
            for b in v {
                // invariant: lengths checked above.
                dst.put_u16(u16::try_from(b.len()).unwrap_or(u16::MAX));
                dst.put_slice(b);
            }
        };
        dst.put_u8(1);
        dst.put_u8(self.profile);
        dst.put_u8(self.compatibility);
        dst.put_u8(self.level);
        dst.put_u8(0xfc | (self.length_size_minus_one & 3));
        dst.put_u8(0xe0 | (self.sps.len() as u8));
        put_list(dst, &self.sps);
        dst.put_u8(self.pps.len() as u8);
        put_list(dst, &self.pps);
        if let Some(ext) = &self.high_profile_ext {
            dst.put_u8(0xfc | (ext.chroma_format & 3));
            dst.put_u8(0xf8 | (ext.bit_depth_luma_minus8 & 7));
            dst.put_u8(0xf8 | (ext.bit_depth_chroma_minus8 & 7));
            dst.put_u8(ext.sps_ext.len() as u8);
            put_list(dst, &ext.sps_ext);
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    // The AVC sequence header of baseline_aaclc44k.flv (ffmpeg 5.1, x264,
    // Constrained Baseline level 3.0), after the 5-byte video tag header.
    const BASELINE: &[u8] = &[
        0x01, 0x42, 0xc0, 0x1e, 0xff, 0xe1, 0x00, 0x19, 0x67, 0x42, 0xc0, 0x1e, 0xd9, 0x00, 0xa0,
        0x2f, 0xf9, 0x70, 0x11, 0x00, 0x00, 0x03, 0x00, 0x01, 0x00, 0x00, 0x03, 0x00, 0x3c, 0x0f,
        0x16, 0x2e, 0x48, 0x01, 0x00, 0x04, 0x68, 0xcb, 0x8c, 0xb2,
    ];

    #[test]
    fn parse_and_build() {
        let r = AvcDecoderConfigurationRecord::parse(&Bytes::from_static(BASELINE)).unwrap();
        assert_eq!((r.profile, r.compatibility, r.level), (66, 0xc0, 30));
        assert_eq!(r.nal_length_size(), 4);
        assert_eq!((r.sps.len(), r.sps[0].len(), r.sps[0][0]), (1, 25, 0x67));
        assert_eq!(&r.pps[0][..], &[0x68, 0xcb, 0x8c, 0xb2]);
        assert_eq!(r.high_profile_ext, None);
        let mut out = Vec::new();
        r.encode(&mut out).unwrap();
        assert_eq!(out, BASELINE);
        assert_eq!(r.encoded_len(), BASELINE.len());
        let built =
            AvcDecoderConfigurationRecord::from_parameter_sets(r.sps[0].clone(), r.pps.clone())
                .unwrap();
        assert_eq!(built, r);
    }

    #[test]
    fn high_profile_extension() {
        let r = AvcDecoderConfigurationRecord {
            profile: 100,
            compatibility: 0,
            level: 31,
            length_size_minus_one: 3,
            sps: vec![Bytes::from_static(&[0x67, 100, 0, 31])],
            pps: vec![Bytes::from_static(&[0x68, 0xeb])],
            high_profile_ext: Some(HighProfileExt {
                chroma_format: 1,
                bit_depth_luma_minus8: 0,
                bit_depth_chroma_minus8: 2,
                sps_ext: vec![Bytes::from_static(&[0x6d, 1])],
            }),
        };
        let mut out = Vec::new();
        r.encode(&mut out).unwrap();
        assert_eq!(&out[out.len() - 8..], &[0xfd, 0xf8, 0xfa, 1, 0, 2, 0x6d, 1]);
        assert_eq!(
            AvcDecoderConfigurationRecord::parse(&out.into()).unwrap(),
            r
        );
    }

    #[test]
    fn errors() {
        let mut bad = BASELINE.to_vec();
        bad[0] = 0;
        assert_eq!(
            AvcDecoderConfigurationRecord::parse(&bad.into()),
            Err(Error::BadConfigurationVersion(0))
        );
        let mut three = BASELINE.to_vec();
        three[4] = 0xfe;
        assert_eq!(
            AvcDecoderConfigurationRecord::parse(&three.into()),
            Err(Error::BadNalLengthSize)
        );
        for n in 0..BASELINE.len() {
            assert_eq!(
                AvcDecoderConfigurationRecord::parse(&Bytes::from_static(&BASELINE[..n])),
                Err(Error::UnexpectedEnd("avc decoder configuration record")),
                "{n}"
            );
        }
    }

    proptest! {
        #[test]
        fn arbitrary_bytes(bytes in prop::collection::vec(any::<u8>(), 0..64)) {
            let b = Bytes::from(bytes);
            if let Ok(r) = AvcDecoderConfigurationRecord::parse(&b) {
                let mut out = Vec::new();
                r.encode(&mut out).unwrap();
                prop_assert_eq!(out.len(), r.encoded_len());
                prop_assert_eq!(AvcDecoderConfigurationRecord::parse(&out.into()).unwrap(), r);
            }
        }
    }
}
