//! AudioSpecificConfig, ISO/IEC 14496-3 1.6.2.1 (with GASpecificConfig 4.4.1
//! and program_config_element 4.4.1.1).
//!
//! [`AudioSpecificConfig::parse`] keeps every bit it does not interpret
//! (a program config element, unknown trailing extensions, padding), so
//! [`AudioSpecificConfig::to_bytes`] gives back exactly the parsed bytes.

use crate::Error;
use crate::bits::{BitReader, BitWriter, Bits};

/// Sampling frequencies by index (14496-3 1.6.3.3, Table 1.18).
pub const FREQUENCIES: [u32; 13] = [
    96000, 88200, 64000, 48000, 44100, 32000, 24000, 22050, 16000, 12000, 11025, 8000, 7350,
];

/// Audio object types this crate names (14496-3 1.5.1.1, Table 1.17).
pub mod object_type {
    /// AAC Main.
    pub const AAC_MAIN: u8 = 1;
    /// AAC Low Complexity.
    pub const AAC_LC: u8 = 2;
    /// Spectral Band Replication (HE-AAC v1).
    pub const SBR: u8 = 5;
    /// Parametric Stereo (HE-AAC v2).
    pub const PS: u8 = 29;
}

const SYNC_EXTENSION_SBR: u32 = 0x2b7;
const SYNC_EXTENSION_PS: u32 = 0x548;

/// A sampling frequency as coded: by table index or explicit 24-bit value.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum SamplingFrequency {
    /// Index 0..=12 into [`FREQUENCIES`].
    Index(u8),
    /// Index 15 followed by the rate in 24 bits.
    Explicit(u32),
}

impl SamplingFrequency {
    /// The coded form of `hz`: a table index when there is one.
    pub fn from_hz(hz: u32) -> Self {
        match FREQUENCIES.iter().position(|f| *f == hz) {
            Some(i) => Self::Index(i as u8),
            None => Self::Explicit(hz),
        }
    }

    /// The rate in Hz.
    pub fn hz(self) -> u32 {
        match self {
            Self::Index(i) => FREQUENCIES.get(usize::from(i)).copied().unwrap_or(0),
            Self::Explicit(hz) => hz,
        }
    }

    fn read(r: &mut BitReader<'_>) -> Result<Self, Error> {
        let index = r.read(4)? as u8;
        match index {
            0..=12 => Ok(Self::Index(index)),
            15 => {
                let hz = r.read(24)?;
                if hz == 0 {
                    return Err(Error::InvalidFrequency(hz));
                }
                Ok(Self::Explicit(hz))
            }
            _ => Err(Error::ReservedFrequencyIndex(index)),
        }
    }

    fn write(self, w: &mut BitWriter) {
        match self {
            Self::Index(i) => w.write(u32::from(i), 4),
            Self::Explicit(hz) => {
                w.write(15, 4);
                w.write(hz & 0xFF_FFFF, 24);
            }
        }
    }
}

/// Number of output channels of a channel configuration (14496-3 1.6.3.4,
/// Table 1.19, with the 2009 additions 11, 12, 14 and 13 = 22.2). 0 means
/// "given by a program config element"; `None` means reserved.
pub fn channels_of_configuration(config: u8) -> Option<u8> {
    match config {
        0 => Some(0),
        1..=6 => Some(config),
        7 | 12 | 14 => Some(8),
        11 => Some(7),
        13 => Some(24),
        _ => None,
    }
}

/// How SBR (and PS) is signalled, 14496-3 1.6.5.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Signalling {
    /// No explicit SBR signalling (SBR may still be implicit in the stream).
    None,
    /// Explicit hierarchical signalling: the first object type is 5 (SBR) or
    /// 29 (PS), then the extension rate, then the core object type.
    Hierarchical {
        /// Object type 29 (PS) rather than 5 (SBR).
        ps: bool,
        /// The output (SBR) sampling frequency.
        extension_frequency: SamplingFrequency,
    },
    /// Explicit backward-compatible signalling: sync extension 0x2b7 after
    /// the core config, then object type 5 and sbrPresentFlag.
    BackwardCompatible {
        /// sbrPresentFlag.
        sbr_present: bool,
        /// The output rate when `sbr_present`.
        extension_frequency: Option<SamplingFrequency>,
        /// psPresentFlag when the 0x548 sync extension follows.
        ps_present: Option<bool>,
    },
}

/// GASpecificConfig (14496-3 4.4.1, Table 4.1).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct GaSpecificConfig {
    /// frameLengthFlag: 960-sample frames instead of 1024.
    pub frame_length_flag: bool,
    /// coreCoderDelay when dependsOnCoreCoder is set.
    pub core_coder_delay: Option<u16>,
    /// The program_config_element (present when channelConfiguration is 0).
    pub program_config: Option<ProgramConfig>,
    /// layerNr (object types 6 and 20).
    pub layer_nr: Option<u8>,
    /// The bits after extensionFlag=1 (their layout depends on the object
    /// type), or `None` when extensionFlag is 0.
    pub extension: Option<Bits>,
}

/// A program_config_element, kept verbatim, with its channel count.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct ProgramConfig {
    /// Front + side + back channels (a CPE counts two) + LFE channels.
    pub channels: u8,
    raw: Bits,
}

impl ProgramConfig {
    /// 14496-3 4.4.1.1, Table 4.2. `r` is positioned relative to the start
    /// of the AudioSpecificConfig (byte_alignment is relative to it).
    fn read(r: &mut BitReader<'_>) -> Result<Self, Error> {
        let start = r.position();
        let _tag = r.read(4)?;
        let _object_type = r.read(2)?;
        let _frequency_index = r.read(4)?;
        let front = r.read(4)?;
        let side = r.read(4)?;
        let back = r.read(4)?;
        let lfe = r.read(2)?;
        let assoc = r.read(3)?;
        let cc = r.read(4)?;
        // mono_mixdown, stereo_mixdown, matrix_mixdown (2-bit idx + pseudo surround)
        if r.read_bool()? {
            r.read(4)?;
        }
        if r.read_bool()? {
            r.read(4)?;
        }
        if r.read_bool()? {
            r.read(3)?;
        }
        let mut channels: u32 = 0;
        for _ in 0..front.saturating_add(side).saturating_add(back) {
            let is_cpe = r.read_bool()?;
            r.read(4)?;
            channels = channels.saturating_add(if is_cpe { 2 } else { 1 });
        }
        channels = channels.saturating_add(lfe);
        r.read(lfe.saturating_mul(4))?;
        for _ in 0..assoc {
            r.read(4)?;
        }
        for _ in 0..cc {
            r.read(5)?;
        }
        r.align();
        let comment = r.read(8)?;
        for _ in 0..comment {
            r.read(8)?;
        }
        Ok(Self {
            channels: channels.min(255) as u8,
            raw: r.bits_since(start),
        })
    }
}

/// AudioSpecificConfig (14496-3 1.6.2.1, Table 1.15).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct AudioSpecificConfig {
    /// The core audio object type (2 for AAC-LC, also under SBR/PS).
    pub object_type: u8,
    /// The core sampling frequency.
    pub frequency: SamplingFrequency,
    /// channelConfiguration (0 = see the program config element).
    pub channel_configuration: u8,
    /// SBR/PS signalling.
    pub signalling: Signalling,
    /// GASpecificConfig for the general-audio object types, else `None`
    /// (then everything after the channel configuration is in `rest`).
    pub ga: Option<GaSpecificConfig>,
    /// Bits after the parsed part (padding, unknown extensions), verbatim.
    pub rest: Bits,
}

/// The profile a stream decodes as, for messages and decisions.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Profile {
    /// AAC Low Complexity, no SBR.
    AacLc,
    /// HE-AAC v1 (AAC-LC + SBR).
    HeAac,
    /// HE-AAC v2 (AAC-LC + SBR + PS).
    HeAacV2,
    /// Any other object type.
    Other(u8),
}

impl std::fmt::Display for Profile {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::AacLc => f.write_str("AAC-LC"),
            Self::HeAac => f.write_str("HE-AAC v1 (SBR)"),
            Self::HeAacV2 => f.write_str("HE-AAC v2 (SBR+PS)"),
            Self::Other(t) => write!(f, "audio object type {t}"),
        }
    }
}

fn read_object_type(r: &mut BitReader<'_>) -> Result<u8, Error> {
    let t = r.read(5)?;
    if t == 31 {
        Ok(r.read(6)?.saturating_add(32) as u8)
    } else {
        Ok(t as u8)
    }
}

fn write_object_type(w: &mut BitWriter, t: u8) {
    if t >= 31 {
        w.write(31, 5);
        w.write(u32::from(t.saturating_sub(32)), 6);
    } else {
        w.write(u32::from(t), 5);
    }
}

fn is_general_audio(t: u8) -> bool {
    matches!(t, 1 | 2 | 3 | 4 | 6 | 7 | 17 | 19 | 20 | 21 | 22 | 23)
}

impl AudioSpecificConfig {
    /// A plain AAC-LC config for `hz` and a channel configuration 1..=7.
    pub fn aac_lc(hz: u32, channel_configuration: u8) -> Self {
        Self {
            object_type: object_type::AAC_LC,
            frequency: SamplingFrequency::from_hz(hz),
            channel_configuration,
            signalling: Signalling::None,
            ga: Some(GaSpecificConfig {
                frame_length_flag: false,
                core_coder_delay: None,
                program_config: None,
                layer_nr: None,
                extension: None,
            }),
            rest: Bits::default(),
        }
    }

    /// Parses an AudioSpecificConfig (the body of an FLV AAC sequence
    /// header, an MP4 `esds` DecoderSpecificInfo).
    pub fn parse(data: &[u8]) -> Result<Self, Error> {
        let mut r = BitReader::new(data);
        let mut object_type = read_object_type(&mut r)?;
        let frequency = SamplingFrequency::read(&mut r)?;
        let channel_configuration = r.read(4)? as u8;
        if channels_of_configuration(channel_configuration).is_none() {
            return Err(Error::ReservedChannelConfiguration(channel_configuration));
        }
        let mut signalling = Signalling::None;
        if object_type == object_type::SBR || object_type == object_type::PS {
            let ps = object_type == object_type::PS;
            let extension_frequency = SamplingFrequency::read(&mut r)?;
            object_type = read_object_type(&mut r)?;
            if object_type == 22 {
                // extensionChannelConfiguration (ER BSAC): not supported.
                return Err(Error::Unsupported("ER BSAC with SBR".into()));
            }
            signalling = Signalling::Hierarchical {
                ps,
                extension_frequency,
            };
        }
        let ga = if is_general_audio(object_type) {
            let frame_length_flag = r.read_bool()?;
            let core_coder_delay = if r.read_bool()? {
                Some(r.read(14)? as u16)
            } else {
                None
            };
            let extension_flag = r.read_bool()?;
            let program_config = if channel_configuration == 0 {
                Some(ProgramConfig::read(&mut r)?)
            } else {
                None
            };
            let layer_nr = if object_type == 6 || object_type == 20 {
                Some(r.read(3)? as u8)
            } else {
                None
            };
            let extension = if extension_flag {
                let start = r.position();
                if object_type == 22 {
                    r.read(16)?;
                }
                if matches!(object_type, 17 | 19 | 20 | 23) {
                    r.read(3)?;
                }
                r.read(1)?; // extensionFlag3
                Some(r.bits_since(start))
            } else {
                None
            };
            Some(GaSpecificConfig {
                frame_length_flag,
                core_coder_delay,
                program_config,
                layer_nr,
                extension,
            })
        } else {
            None
        };
        if ga.is_some() && signalling == Signalling::None && r.remaining() >= 16 {
            let mark = r.position();
            if r.read(11)? == SYNC_EXTENSION_SBR && read_object_type(&mut r)? == object_type::SBR {
                let sbr_present = r.read_bool()?;
                let mut extension_frequency = None;
                let mut ps_present = None;
                if sbr_present {
                    extension_frequency = Some(SamplingFrequency::read(&mut r)?);
                    if r.remaining() >= 12 {
                        let mark_ps = r.position();
                        if r.read(11)? == SYNC_EXTENSION_PS {
                            ps_present = Some(r.read_bool()?);
                        } else {
                            r.seek(mark_ps);
                        }
                    }
                }
                signalling = Signalling::BackwardCompatible {
                    sbr_present,
                    extension_frequency,
                    ps_present,
                };
            } else {
                r.seek(mark);
            }
        }
        let mut rest = r.take_rest();
        if rest.len() < 8 && rest.is_zero() {
            // Byte padding: to_bytes adds it back.
            rest = Bits::default();
        }
        Ok(Self {
            object_type,
            frequency,
            channel_configuration,
            signalling,
            ga,
            rest,
        })
    }

    /// The bytes of this config; `parse(x)?.to_bytes() == x` for any `x`
    /// that parses.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut w = BitWriter::default();
        match self.signalling {
            Signalling::Hierarchical {
                ps,
                extension_frequency,
            } => {
                write_object_type(
                    &mut w,
                    if ps {
                        object_type::PS
                    } else {
                        object_type::SBR
                    },
                );
                self.frequency.write(&mut w);
                w.write(u32::from(self.channel_configuration), 4);
                extension_frequency.write(&mut w);
                write_object_type(&mut w, self.object_type);
            }
            _ => {
                write_object_type(&mut w, self.object_type);
                self.frequency.write(&mut w);
                w.write(u32::from(self.channel_configuration), 4);
            }
        }
        if let Some(ga) = &self.ga {
            w.write_bool(ga.frame_length_flag);
            w.write_bool(ga.core_coder_delay.is_some());
            if let Some(d) = ga.core_coder_delay {
                w.write(u32::from(d), 14);
            }
            w.write_bool(ga.extension.is_some());
            if let Some(pce) = &ga.program_config {
                pce.raw.write_to(&mut w);
            }
            if let Some(l) = ga.layer_nr {
                w.write(u32::from(l), 3);
            }
            if let Some(ext) = &ga.extension {
                ext.write_to(&mut w);
            }
        }
        if let Signalling::BackwardCompatible {
            sbr_present,
            extension_frequency,
            ps_present,
        } = self.signalling
        {
            w.write(SYNC_EXTENSION_SBR, 11);
            write_object_type(&mut w, object_type::SBR);
            w.write_bool(sbr_present);
            if let Some(f) = extension_frequency {
                f.write(&mut w);
            }
            if let Some(ps) = ps_present {
                w.write(SYNC_EXTENSION_PS, 11);
                w.write_bool(ps);
            }
        }
        self.rest.write_to(&mut w);
        w.align();
        w.finish()
    }

    /// The core sampling rate in Hz (what the AAC core decodes at).
    pub fn sample_rate(&self) -> u32 {
        self.frequency.hz()
    }

    /// The output rate: the SBR extension rate when SBR is present.
    pub fn output_sample_rate(&self) -> u32 {
        match self.signalling {
            Signalling::Hierarchical {
                extension_frequency,
                ..
            } => extension_frequency.hz(),
            Signalling::BackwardCompatible {
                sbr_present: true,
                extension_frequency: Some(f),
                ..
            } => f.hz(),
            _ => self.sample_rate(),
        }
    }

    /// Number of channels, from the channel configuration or the program
    /// config element; `None` when neither says.
    pub fn channels(&self) -> Option<u8> {
        match channels_of_configuration(self.channel_configuration) {
            Some(0) => self
                .ga
                .as_ref()
                .and_then(|g| g.program_config.as_ref())
                .map(|p| p.channels),
            other => other,
        }
    }

    /// Samples per channel in one access unit (1024, or 960 with
    /// frameLengthFlag), at the core rate.
    pub fn samples_per_frame(&self) -> u32 {
        match &self.ga {
            Some(g) if g.frame_length_flag => 960,
            _ => 1024,
        }
    }

    /// The profile (AAC-LC, HE-AAC v1, HE-AAC v2, other).
    pub fn profile(&self) -> Profile {
        let (sbr, ps) = match self.signalling {
            Signalling::None => (false, false),
            Signalling::Hierarchical { ps, .. } => (true, ps),
            Signalling::BackwardCompatible {
                sbr_present,
                ps_present,
                ..
            } => (sbr_present, sbr_present && ps_present == Some(true)),
        };
        match (self.object_type, sbr, ps) {
            (object_type::AAC_LC, false, _) => Profile::AacLc,
            (object_type::AAC_LC, true, false) => Profile::HeAac,
            (object_type::AAC_LC, true, true) => Profile::HeAacV2,
            (t, _, _) => Profile::Other(t),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hex(s: &str) -> Vec<u8> {
        (0..s.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
            .collect()
    }

    /// The sequence headers of the media fixtures (docs/testing.md; ffmpeg 5.1's
    /// native AAC encoder writes backward-compatible signalling with
    /// sbrPresentFlag = 0).
    #[test]
    fn fixture_sequence_headers() {
        for (h, hz, ch) in [
            ("121056e500", 44100, 2),
            ("118856e500", 48000, 1),
            ("119056e500", 48000, 2),
        ] {
            let b = hex(h);
            let asc = AudioSpecificConfig::parse(&b).unwrap();
            assert_eq!(asc.object_type, 2);
            assert_eq!(asc.sample_rate(), hz);
            assert_eq!(asc.output_sample_rate(), hz);
            assert_eq!(asc.channels(), Some(ch));
            assert_eq!(asc.profile(), Profile::AacLc);
            assert_eq!(
                asc.signalling,
                Signalling::BackwardCompatible {
                    sbr_present: false,
                    extension_frequency: None,
                    ps_present: None
                }
            );
            assert_eq!(asc.to_bytes(), b);
        }
    }

    #[test]
    fn plain_lc_builds_two_bytes() {
        // 44.1 kHz stereo AAC-LC: 00010 0100 0010 000 -> 12 10
        assert_eq!(
            AudioSpecificConfig::aac_lc(44100, 2).to_bytes(),
            hex("1210")
        );
        let a = AudioSpecificConfig::parse(&hex("1210")).unwrap();
        assert_eq!(a, AudioSpecificConfig::aac_lc(44100, 2));
    }

    /// HE-AAC v1 explicit hierarchical: AOT 5, 24 kHz core, stereo, 48 kHz
    /// extension, core AOT 2 (what FDK writes: 2b 11 88 00).
    #[test]
    fn he_aac_hierarchical() {
        let b = hex("2b118800");
        let a = AudioSpecificConfig::parse(&b).unwrap();
        assert_eq!(a.profile(), Profile::HeAac);
        assert_eq!(a.sample_rate(), 24000);
        assert_eq!(a.output_sample_rate(), 48000);
        assert_eq!(a.channels(), Some(2));
        assert_eq!(a.to_bytes(), b);
    }

    /// HE-AAC v2 explicit hierarchical: AOT 29, 24 kHz core, mono, 48 kHz.
    #[test]
    fn he_aac_v2_hierarchical() {
        let b = hex("eb098800");
        let a = AudioSpecificConfig::parse(&b).unwrap();
        assert_eq!(a.profile(), Profile::HeAacV2);
        assert_eq!(a.channels(), Some(1));
        assert_eq!(a.output_sample_rate(), 48000);
        assert_eq!(a.to_bytes(), b);
    }

    /// The common FDK/Apple HE-AAC 44.1 kHz stereo config: 2b 92 08 00.
    #[test]
    fn he_aac_44k_stereo_real_world() {
        let b = hex("2b920800");
        let a = AudioSpecificConfig::parse(&b).unwrap();
        assert_eq!((a.sample_rate(), a.output_sample_rate()), (22050, 44100));
        assert_eq!(a.profile(), Profile::HeAac);
        assert_eq!(a.to_bytes(), b);
    }

    /// Backward-compatible SBR + PS signalling, built and re-parsed.
    #[test]
    fn backward_compatible_sbr_ps_round_trip() {
        let mut a = AudioSpecificConfig::aac_lc(24000, 1);
        a.signalling = Signalling::BackwardCompatible {
            sbr_present: true,
            extension_frequency: Some(SamplingFrequency::Index(3)),
            ps_present: Some(true),
        };
        let b = a.to_bytes();
        let p = AudioSpecificConfig::parse(&b).unwrap();
        assert_eq!(p, a);
        assert_eq!(p.profile(), Profile::HeAacV2);
        assert_eq!(p.output_sample_rate(), 48000);
    }

    #[test]
    fn explicit_frequency_and_escape() {
        let mut a = AudioSpecificConfig::aac_lc(44100, 2);
        a.frequency = SamplingFrequency::Explicit(44_056);
        let b = a.to_bytes();
        let p = AudioSpecificConfig::parse(&b).unwrap();
        assert_eq!(p.sample_rate(), 44_056);
        assert_eq!(p.to_bytes(), b);
        // Escape object type 31 -> 32 + 6 bits (here 42, USAC): not GA, kept raw.
        let mut a = AudioSpecificConfig::aac_lc(48000, 2);
        a.object_type = 42;
        a.ga = None;
        let b = a.to_bytes();
        assert_eq!(b[0] >> 3, 31);
        let p = AudioSpecificConfig::parse(&b).unwrap();
        assert_eq!(p.object_type, 42);
        assert_eq!(p.profile(), Profile::Other(42));
        assert_eq!(p.to_bytes(), b);
    }

    #[test]
    fn channel_configurations() {
        for (cfg, n) in [(1, 1), (2, 2), (3, 3), (4, 4), (5, 5), (6, 6), (7, 8)] {
            let a = AudioSpecificConfig::aac_lc(48000, cfg);
            let p = AudioSpecificConfig::parse(&a.to_bytes()).unwrap();
            assert_eq!(p.channels(), Some(n));
        }
        // 8..=10 and 15 are reserved
        assert_eq!(
            AudioSpecificConfig::parse(&hex("1240")),
            Err(Error::ReservedChannelConfiguration(8))
        );
    }

    /// channelConfiguration 0 with a PCE: 1 front CPE + 1 front SCE + 1 back
    /// CPE + 1 LFE = 6 channels, built by hand (14496-3 Table 4.2).
    #[test]
    fn program_config_element() {
        let mut w = BitWriter::default();
        w.write(2, 5); // AOT LC
        w.write(3, 4); // 48 kHz
        w.write(0, 4); // channel config 0
        w.write(0, 3); // GA flags
        w.write(0, 4); // tag
        w.write(1, 2); // object type
        w.write(3, 4); // freq index
        w.write(2, 4); // front
        w.write(0, 4); // side
        w.write(1, 4); // back
        w.write(1, 2); // lfe
        w.write(0, 3); // assoc
        w.write(0, 4); // cc
        w.write(0, 3); // mixdown flags
        w.write(0b0_0000, 5); // front SCE
        w.write(0b1_0000, 5); // front CPE
        w.write(0b1_0001, 5); // back CPE
        w.write(0, 4); // lfe tag
        w.align();
        w.write(2, 8); // comment bytes
        w.write(0x6869, 16);
        let b = w.finish();
        let a = AudioSpecificConfig::parse(&b).unwrap();
        assert_eq!(a.channels(), Some(6));
        assert_eq!(a.to_bytes(), b);
    }

    #[test]
    fn malformed() {
        assert_eq!(AudioSpecificConfig::parse(&[]), Err(Error::UnexpectedEnd));
        assert_eq!(
            AudioSpecificConfig::parse(&[0x12]),
            Err(Error::UnexpectedEnd)
        );
        // frequency index 13
        assert_eq!(
            AudioSpecificConfig::parse(&hex("1690")),
            Err(Error::ReservedFrequencyIndex(13))
        );
    }
}
