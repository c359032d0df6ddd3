//! Enhanced RTMP / FLV (Veovera "Enhancing RTMP, FLV", v1 and v2): the
//! FourCC codec identifiers. The header layouts are in [`crate::audio`]
//! and [`crate::video`].

use std::fmt;

/// A four-character code naming a codec in an enhanced header.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct FourCc(pub [u8; 4]);

impl FourCc {
    /// H.264 / AVC.
    pub const AVC1: FourCc = FourCc(*b"avc1");
    /// H.265 / HEVC.
    pub const HVC1: FourCc = FourCc(*b"hvc1");
    /// AV1.
    pub const AV01: FourCc = FourCc(*b"av01");
    /// VP9.
    pub const VP09: FourCc = FourCc(*b"vp09");
    /// VP8.
    pub const VP08: FourCc = FourCc(*b"vp08");
    /// Opus.
    pub const OPUS: FourCc = FourCc(*b"Opus");
    /// FLAC.
    pub const FLAC: FourCc = FourCc(*b"fLaC");
    /// AC-3.
    pub const AC3: FourCc = FourCc(*b"ac-3");
    /// E-AC-3.
    pub const EAC3: FourCc = FourCc(*b"ec-3");
    /// MP3.
    pub const MP3: FourCc = FourCc(*b".mp3");
    /// AAC.
    pub const MP4A: FourCc = FourCc(*b"mp4a");
}

impl fmt::Display for FourCc {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for b in self.0 {
            if b.is_ascii_graphic() || b == b' ' {
                write!(f, "{}", char::from(b))?;
            } else {
                write!(f, "\\x{b:02x}")?;
            }
        }
        Ok(())
    }
}

impl fmt::Debug for FourCc {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "FourCc(\"{self}\")")
    }
}

/// Skips the ModEx prefixes of an enhanced header (E-RTMP v2 "ModEx"),
/// returning the final packet type. The modifiers (e.g. nanosecond
/// timestamp offsets) are not interpreted.
pub(crate) fn skip_mod_ex(
    mut packet_type: u8,
    buf: &mut crate::cursor::Cursor<'_>,
) -> Result<u8, crate::Error> {
    const MOD_EX: u8 = 7;
    // Each round consumes at least two bytes, so this ends with the input.
    while packet_type == MOD_EX {
        let mut size = usize::from(buf.u8()?).saturating_add(1);
        if size == 256 {
            size = usize::from(buf.u16()?).saturating_add(1);
        }
        buf.take(size)?;
        packet_type = buf.u8()? & 0x0f;
    }
    Ok(packet_type)
}
