//! AVCDecoderConfigurationRecord (ISO/IEC 14496-15 5.3.3.1), the body of an
//! FLV/RTMP AVC sequence header.
//!
//! The record is read by rts-flv (one reader for the workspace); this
//! module keeps the H.264 view of it (parameter sets as [`Nal`]s) and the
//! writer the transcoder uses for its new configurations.

use bytes::{BufMut, Bytes, BytesMut};
use rts_flv::AvcDecoderConfigurationRecord;

use crate::Error;
use crate::nal::Nal;

/// A parsed decoder configuration record. Parameter sets are slices of the
/// input (zero copy).
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct AvcConfig {
    /// `AVCProfileIndication`.
    pub profile: u8,
    /// `profile_compatibility`.
    pub compatibility: u8,
    /// `AVCLevelIndication`.
    pub level: u8,
    /// `lengthSizeMinusOne + 1`: 1, 2 or 4.
    pub length_size: u8,
    /// Sequence parameter set NAL units.
    pub sps: Vec<Nal>,
    /// Picture parameter set NAL units.
    pub pps: Vec<Nal>,
}

impl AvcConfig {
    /// Parses a record with rts-flv's reader and checks its parameter sets
    /// are NAL units. The optional High-profile trailer is read there but
    /// not kept.
    pub fn parse(data: &Bytes) -> Result<Self, Error> {
        let rec = AvcDecoderConfigurationRecord::parse(data).map_err(|e| match e {
            rts_flv::Error::UnexpectedEnd(_) => Error::UnexpectedEnd,
            rts_flv::Error::BadConfigurationVersion(_) => {
                Error::Invalid("avc configuration version is not 1")
            }
            rts_flv::Error::BadNalLengthSize => {
                Error::Invalid("avcc length size must be 1, 2 or 4")
            }
            _ => Error::Invalid("malformed avc configuration record"),
        })?;
        let length_size = rec.nal_length_size();
        let nals = |v: Vec<Bytes>| v.into_iter().map(Nal::new).collect::<Result<Vec<_>, _>>();
        Ok(Self {
            profile: rec.profile,
            compatibility: rec.compatibility,
            level: rec.level,
            length_size,
            sps: nals(rec.sps)?,
            pps: nals(rec.pps)?,
        })
    }

    /// A record for one SPS and one PPS (NAL units with headers), with
    /// 4-byte lengths. Profile, compatibility and level come from the SPS.
    pub fn from_parameter_sets(sps: Bytes, pps: Bytes) -> Result<Self, Error> {
        let sps = Nal::new(sps)?;
        let pps = Nal::new(pps)?;
        let b = sps.bytes();
        let byte = |i: usize| b.get(i).copied().ok_or(Error::UnexpectedEnd);
        Ok(Self {
            profile: byte(1)?,
            compatibility: byte(2)?,
            level: byte(3)?,
            length_size: 4,
            sps: vec![sps],
            pps: vec![pps],
        })
    }

    /// Writes the record. More than 31 SPS, 255 PPS or a parameter set over
    /// 65535 bytes is [`Error::Invalid`].
    pub fn write(&self, out: &mut BytesMut) -> Result<(), Error> {
        let too_many =
            Error::Invalid("too many or too large parameter sets for a configuration record");
        let num_sps = u8::try_from(self.sps.len())
            .ok()
            .filter(|&n| n <= 31)
            .ok_or(too_many)?;
        let num_pps = u8::try_from(self.pps.len()).map_err(|_| too_many)?;
        out.put_slice(&[1, self.profile, self.compatibility, self.level]);
        out.put_u8(0xfc | (self.length_size.saturating_sub(1) & 3));
        out.put_u8(0xe0 | num_sps);
        for s in &self.sps {
            out.put_u16(u16::try_from(s.bytes().len()).map_err(|_| too_many)?);
            out.put_slice(s.bytes());
        }
        out.put_u8(num_pps);
        for p in &self.pps {
            out.put_u16(u16::try_from(p.bytes().len()).map_err(|_| too_many)?);
            out.put_slice(p.bytes());
        }
        Ok(())
    }

    /// The record as bytes.
    pub fn to_bytes(&self) -> Result<Bytes, Error> {
        let mut out = BytesMut::new();
        self.write(&mut out)?;
        Ok(out.freeze())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// AVC sequence header body of fixtures/media/high_bpyramid_aaclc44k.flv
    /// (after the 5-byte FLV video tag header).
    pub(crate) const HIGH_720P_RECORD: &str = "0164001fffe1001a6764001facd9405005bb0110000003001000000303c0f183196001000568ebecb22cfdf8f800";

    #[test]
    fn fixture_record() {
        let data = Bytes::from(hex::decode(HIGH_720P_RECORD).unwrap());
        let c = AvcConfig::parse(&data).unwrap();
        assert_eq!(
            (c.profile, c.compatibility, c.level, c.length_size),
            (100, 0, 31, 4)
        );
        assert_eq!((c.sps.len(), c.pps.len()), (1, 1));
        assert_eq!(c.sps[0].bytes().len(), 26);
        assert_eq!(
            c.pps[0].bytes().as_ref(),
            hex::decode("68ebecb22c").unwrap()
        );
        // Writing drops only the High trailer.
        let back = c.to_bytes().unwrap();
        assert_eq!(back.as_ref(), &data[..data.len() - 4]);
        assert_eq!(AvcConfig::parse(&back).unwrap(), c);
        for len in 0..back.len() {
            assert!(AvcConfig::parse(&back.slice(..len)).is_err(), "len {len}");
        }
    }
}
