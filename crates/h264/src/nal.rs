//! NAL units (H.264 7.3.1), their framing in AVCC (ISO/IEC 14496-15 5.3.4:
//! a big-endian length of 1, 2 or 4 bytes before each unit) and Annex-B
//! (start codes, H.264 B.1), and emulation prevention (7.4.1).

use bytes::{BufMut, Bytes, BytesMut};

use crate::Error;

/// `nal_unit_type` values used here (Table 7-1).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum NalType {
    /// 1: coded slice of a non-IDR picture.
    Slice,
    /// 2..=4: slice data partitions A, B, C.
    SlicePartition(u8),
    /// 5: coded slice of an IDR picture.
    IdrSlice,
    /// 6: supplemental enhancement information.
    Sei,
    /// 7: sequence parameter set.
    Sps,
    /// 8: picture parameter set.
    Pps,
    /// 9: access unit delimiter.
    Aud,
    /// 10: end of sequence.
    EndOfSequence,
    /// 11: end of stream.
    EndOfStream,
    /// 12: filler data.
    Filler,
    /// 13: SPS extension.
    SpsExtension,
    /// Any other value.
    Other(u8),
}

impl NalType {
    /// The type of a `nal_unit_type` value (the low 5 bits are used).
    pub fn from_u8(v: u8) -> Self {
        match v & 0x1f {
            1 => Self::Slice,
            t @ 2..=4 => Self::SlicePartition(t),
            5 => Self::IdrSlice,
            6 => Self::Sei,
            7 => Self::Sps,
            8 => Self::Pps,
            9 => Self::Aud,
            10 => Self::EndOfSequence,
            11 => Self::EndOfStream,
            12 => Self::Filler,
            13 => Self::SpsExtension,
            t => Self::Other(t),
        }
    }

    /// The `nal_unit_type` value.
    pub fn to_u8(self) -> u8 {
        match self {
            Self::Slice => 1,
            Self::SlicePartition(t) => t,
            Self::IdrSlice => 5,
            Self::Sei => 6,
            Self::Sps => 7,
            Self::Pps => 8,
            Self::Aud => 9,
            Self::EndOfSequence => 10,
            Self::EndOfStream => 11,
            Self::Filler => 12,
            Self::SpsExtension => 13,
            Self::Other(t) => t & 0x1f,
        }
    }

    /// Whether this is a coded slice of a primary picture (types 1 and 5;
    /// partition A also starts a picture).
    pub fn is_vcl(self) -> bool {
        matches!(self, Self::Slice | Self::IdrSlice | Self::SlicePartition(2))
    }
}

/// A NAL unit: header byte and payload, still with emulation prevention
/// bytes. Cloning is cheap (a `Bytes`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Nal(Bytes);

impl Nal {
    /// Wraps the bytes of one NAL unit (header included). Empty input is
    /// [`Error::UnexpectedEnd`]; a set `forbidden_zero_bit` is [`Error::Invalid`].
    pub fn new(data: Bytes) -> Result<Self, Error> {
        let first = *data.first().ok_or(Error::UnexpectedEnd)?;
        if first & 0x80 != 0 {
            return Err(Error::Invalid("forbidden_zero_bit set"));
        }
        Ok(Self(data))
    }

    /// `nal_unit_type`.
    pub fn nal_type(&self) -> NalType {
        NalType::from_u8(self.header())
    }

    /// `nal_ref_idc` (0..=3): zero means no other picture references this one.
    pub fn ref_idc(&self) -> u8 {
        (self.header() >> 5) & 3
    }

    fn header(&self) -> u8 {
        self.0.first().copied().unwrap_or(0)
    }

    /// The whole unit, header included.
    pub fn bytes(&self) -> &Bytes {
        &self.0
    }

    /// The unit without its header byte, emulation prevention removed
    /// (the RBSP, 7.3.1).
    pub fn rbsp(&self) -> Vec<u8> {
        unescape(self.0.get(1..).unwrap_or_default())
    }

    /// At most `max` bytes of the RBSP: enough for headers without copying
    /// a whole slice.
    pub fn rbsp_prefix(&self, max: usize) -> Vec<u8> {
        let body = self.0.get(1..).unwrap_or_default();
        // Escaped length is at most 3/2 of the plain length.
        let take = (max.saturating_mul(3) / 2).saturating_add(3);
        let mut out = unescape(body.get(..take.min(body.len())).unwrap_or_default());
        out.truncate(max);
        out
    }
}

/// Removes emulation prevention bytes (`00 00 03` becomes `00 00`, 7.4.1).
pub fn unescape(data: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(data.len());
    let mut zeros = 0usize;
    for &b in data {
        if zeros >= 2 && b == 3 {
            zeros = 0;
            continue;
        }
        zeros = if b == 0 { zeros.saturating_add(1) } else { 0 };
        out.push(b);
    }
    out
}

/// Inserts emulation prevention bytes so that no `00 00 0x` (x <= 3)
/// appears, and a trailing zero is protected (7.4.1).
pub fn escape(rbsp: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(rbsp.len().saturating_add(rbsp.len() / 64).saturating_add(2));
    let mut zeros = 0usize;
    for &b in rbsp {
        if zeros >= 2 && b <= 3 {
            out.push(3);
            zeros = 0;
        }
        zeros = if b == 0 { zeros.saturating_add(1) } else { 0 };
        out.push(b);
    }
    if out.last() == Some(&0) {
        out.push(3);
    }
    out
}

/// How the NAL units of an access unit are delimited.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// Length-prefixed (ISO/IEC 14496-15 5.3.4, what FLV/RTMP and MP4
    /// carry); `length_size` is 1, 2 or 4, as the decoder configuration
    /// record gives it (`AvcDecoderConfigurationRecord::nal_length_size`).
    Avcc {
        /// Bytes of each length prefix.
        length_size: u8,
    },
    /// Start-code delimited (H.264 Annex B).
    AnnexB,
}

/// The NAL units of an access unit in either [`Format`]: the workspace's
/// one NAL splitter (RTP packetizing, the stripper, the probe).
#[derive(Debug, Clone)]
pub enum Nals {
    /// AVCC.
    Avcc(AvccIter),
    /// Annex B.
    AnnexB(AnnexBIter),
}

impl Iterator for Nals {
    type Item = Result<Nal, Error>;

    fn next(&mut self) -> Option<Self::Item> {
        match self {
            Nals::Avcc(it) => it.next(),
            Nals::AnnexB(it) => it.next(),
        }
    }
}

/// Splits `au` into its NAL units (zero-copy slices). A length size other
/// than 1, 2 or 4 is [`Error::Invalid`].
///
/// ```
/// use bytes::Bytes;
/// use rts_h264::nal::{split, Format, NalType};
///
/// let au = Bytes::from_static(&[0, 0, 0, 2, 0x09, 0xf0, 0, 0, 0, 3, 0x65, 0x88, 0x84]);
/// let types: Vec<NalType> = split(&au, Format::Avcc { length_size: 4 })?
///     .map(|n| n.map(|n| n.nal_type()))
///     .collect::<Result<_, _>>()?;
/// assert_eq!(types, [NalType::Aud, NalType::IdrSlice]);
/// # Ok::<(), rts_h264::Error>(())
/// ```
pub fn split(au: &Bytes, format: Format) -> Result<Nals, Error> {
    Ok(match format {
        Format::Avcc { length_size } => Nals::Avcc(AvccIter::new(au.clone(), length_size)?),
        Format::AnnexB => Nals::AnnexB(AnnexBIter::new(au.clone())),
    })
}

/// NAL units of one AVCC sample: each unit follows a big-endian length of
/// `length_size` bytes. Yields slices of the input (zero copy); units of
/// length zero are skipped (some muxers write them); a length that runs
/// past the end is an error, after which the iterator stops.
#[derive(Debug, Clone)]
pub struct AvccIter {
    data: Bytes,
    length_size: usize,
    failed: bool,
}

impl AvccIter {
    /// An iterator over `data` with lengths of `length_size` bytes (1, 2 or
    /// 4; anything else is [`Error::Invalid`]).
    pub fn new(data: Bytes, length_size: u8) -> Result<Self, Error> {
        match length_size {
            1 | 2 | 4 => Ok(Self {
                data,
                length_size: usize::from(length_size),
                failed: false,
            }),
            _ => Err(Error::Invalid("avcc length size must be 1, 2 or 4")),
        }
    }
}

impl Iterator for AvccIter {
    type Item = Result<Nal, Error>;

    fn next(&mut self) -> Option<Self::Item> {
        loop {
            if self.failed || self.data.is_empty() {
                return None;
            }
            if let Some(unit) = self.next_unit() {
                return Some(unit);
            }
        }
    }
}

impl AvccIter {
    /// The next unit, `None` for a zero-length one.
    fn next_unit(&mut self) -> Option<Result<Nal, Error>> {
        let head = self.data.get(..self.length_size);
        let Some(head) = head else {
            self.failed = true;
            return Some(Err(Error::UnexpectedEnd));
        };
        let len = head
            .iter()
            .fold(0usize, |acc, &b| (acc << 8) | usize::from(b));
        let end = self.length_size.saturating_add(len);
        if end > self.data.len() {
            self.failed = true;
            return Some(Err(Error::UnexpectedEnd));
        }
        let unit = self.data.slice(self.length_size..end);
        self.data = self.data.slice(end..);
        if unit.is_empty() {
            return None;
        }
        match Nal::new(unit) {
            Ok(n) => Some(Ok(n)),
            Err(e) => {
                self.failed = true;
                Some(Err(e))
            }
        }
    }
}

/// NAL units of an Annex-B byte stream (B.1): start codes `00 00 01` or
/// `00 00 00 01`; trailing zero bytes of a unit are dropped. Yields slices
/// of the input; empty units are skipped.
#[derive(Debug, Clone)]
pub struct AnnexBIter {
    data: Bytes,
    pos: usize,
}

impl AnnexBIter {
    /// An iterator over a complete Annex-B buffer.
    pub fn new(data: Bytes) -> Self {
        let pos = find_start_code(&data, 0).map_or(data.len(), |(_, after)| after);
        Self { data, pos }
    }
}

/// The next start code at or after `from`: `(index of its first zero, index after the 01)`.
fn find_start_code(data: &[u8], from: usize) -> Option<(usize, usize)> {
    let mut i = from;
    while let Some(window) = data.get(i..i.checked_add(3)?) {
        if window == [0, 0, 1] {
            return Some((i, i.checked_add(3)?));
        }
        // Skip ahead: a start code cannot begin before the next zero pair.
        i = i.checked_add(if window.get(2).copied().unwrap_or(1) > 1 {
            3
        } else {
            1
        })?;
    }
    None
}

impl Iterator for AnnexBIter {
    type Item = Result<Nal, Error>;

    fn next(&mut self) -> Option<Self::Item> {
        loop {
            if self.pos >= self.data.len() {
                return None;
            }
            let (end, next) =
                find_start_code(&self.data, self.pos).unwrap_or((self.data.len(), self.data.len()));
            let mut stop = end;
            // Trailing zeros (trailing_zero_8bits, or the 00 of a 4-byte start code).
            while stop > self.pos && self.data.get(stop.saturating_sub(1)) == Some(&0) {
                stop = stop.saturating_sub(1);
            }
            let unit = self.data.slice(self.pos..stop);
            self.pos = next;
            if unit.is_empty() {
                continue;
            }
            return Some(Nal::new(unit));
        }
    }
}

/// Writes NAL units in AVCC form with `length_size`-byte lengths. A unit too
/// long for the length field is [`Error::Invalid`].
pub fn write_avcc<'a>(
    nals: impl IntoIterator<Item = &'a [u8]>,
    length_size: u8,
    out: &mut BytesMut,
) -> Result<(), Error> {
    for nal in nals {
        let len = nal.len();
        match length_size {
            1 => out.put_u8(
                u8::try_from(len)
                    .map_err(|_| Error::Invalid("nal unit too long for its length field"))?,
            ),
            2 => out.put_u16(
                u16::try_from(len)
                    .map_err(|_| Error::Invalid("nal unit too long for its length field"))?,
            ),
            4 => out.put_u32(
                u32::try_from(len)
                    .map_err(|_| Error::Invalid("nal unit too long for its length field"))?,
            ),
            _ => return Err(Error::Invalid("avcc length size must be 1, 2 or 4")),
        }
        out.put_slice(nal);
    }
    Ok(())
}

/// Writes NAL units in Annex-B form, each after a 4-byte start code.
pub fn write_annexb<'a>(nals: impl IntoIterator<Item = &'a [u8]>, out: &mut Vec<u8>) {
    for nal in nals {
        out.extend_from_slice(&[0, 0, 0, 1]);
        out.extend_from_slice(nal);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escape_unescape() {
        let cases: [(&[u8], &[u8]); 4] = [
            (&[0, 0, 0], &[0, 0, 3, 0, 3]),
            (&[0, 0, 1, 0, 0, 2], &[0, 0, 3, 1, 0, 0, 3, 2]),
            (&[0, 0, 4, 0, 0, 0, 0], &[0, 0, 4, 0, 0, 3, 0, 0, 3]),
            (&[1, 2, 3], &[1, 2, 3]),
        ];
        for (plain, escaped) in cases {
            assert_eq!(escape(plain), escaped, "{plain:?}");
            let mut back = unescape(escaped);
            // The protecting 03 after a trailing zero is a cabac_zero_word style byte
            // and stays removed.
            while back.len() > plain.len() {
                back.pop();
            }
            assert_eq!(back, plain);
        }
    }

    #[test]
    fn avcc_all_length_sizes() {
        let nals: [&[u8]; 3] = [&[0x67, 1, 2], &[0x68, 3], &[0x65, 4, 5, 6, 7]];
        for size in [1u8, 2, 4] {
            let mut buf = BytesMut::new();
            write_avcc(nals, size, &mut buf).unwrap();
            let buf = buf.freeze();
            let got: Vec<Nal> = AvccIter::new(buf.clone(), size)
                .unwrap()
                .collect::<Result<_, _>>()
                .unwrap();
            assert_eq!(got.len(), 3);
            assert_eq!(got[0].nal_type(), NalType::Sps);
            assert_eq!(got[2].nal_type(), NalType::IdrSlice);
            assert_eq!(got[2].ref_idc(), 3);
            assert_eq!(got[1].bytes().as_ref(), nals[1]);
            // zero copy: the slice points into the input buffer
            assert_eq!(got[2].bytes().as_ptr(), buf[buf.len() - 5..].as_ptr());
            // truncated input errors once, then stops
            let mut it = AvccIter::new(buf.slice(..buf.len() - 1), size).unwrap();
            assert!(it.next().unwrap().is_ok());
            assert!(it.next().unwrap().is_ok());
            assert_eq!(it.next().unwrap(), Err(Error::UnexpectedEnd));
            assert!(it.next().is_none());
        }
        assert!(AvccIter::new(Bytes::new(), 3).is_err());
        let mut long = BytesMut::new();
        assert!(write_avcc([&[0x65u8; 300][..]], 1, &mut long).is_err());
    }

    #[test]
    fn annexb_start_codes() {
        let data = Bytes::from_static(&[
            0, 0, 0, 1, 0x67, 1, 0, 0, 1, 0x68, 2, 0, 0, 0, 0, 1, 0x65, 0, 0, 3, 1,
        ]);
        let got: Vec<Nal> = AnnexBIter::new(data).collect::<Result<_, _>>().unwrap();
        let types: Vec<NalType> = got.iter().map(Nal::nal_type).collect();
        assert_eq!(types, [NalType::Sps, NalType::Pps, NalType::IdrSlice]);
        assert_eq!(got[1].bytes().as_ref(), [0x68, 2]);
        assert_eq!(got[2].bytes().as_ref(), [0x65, 0, 0, 3, 1]);
        assert_eq!(got[2].rbsp(), [0, 0, 1]);
        let mut out = Vec::new();
        write_annexb(got.iter().map(|n| n.bytes().as_ref()), &mut out);
        assert_eq!(AnnexBIter::new(Bytes::from(out)).count(), 3);
        assert_eq!(AnnexBIter::new(Bytes::from_static(&[1, 2, 3])).count(), 0);
        assert!(
            AnnexBIter::new(Bytes::from_static(&[0, 0, 1, 0x80]))
                .next()
                .unwrap()
                .is_err()
        );
    }
}
