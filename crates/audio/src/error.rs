use thiserror::Error;

/// Everything that can go wrong in rts-audio.
///
/// Malformed input (from the publisher) and unsupported streams are separate
/// variants from caller mistakes ([`Error::InvalidSetting`]); none of them is
/// a panic.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum Error {
    /// The input ended in the middle of a structure.
    #[error("unexpected end of input")]
    UnexpectedEnd,
    /// An ADTS header did not start with the 0xFFF syncword.
    #[error("no ADTS syncword (0xFFF)")]
    NoSyncword,
    /// A sampling frequency index 13 or 14 (reserved).
    #[error("reserved sampling frequency index {0}")]
    ReservedFrequencyIndex(u8),
    /// A sampling frequency of zero or above 16 MHz.
    #[error("invalid sampling frequency {0} Hz")]
    InvalidFrequency(u32),
    /// A channel configuration the standard reserves.
    #[error("reserved channel configuration {0}")]
    ReservedChannelConfiguration(u8),
    /// A length field that cannot be right (ADTS frame shorter than its header).
    #[error("invalid length {0}")]
    InvalidLength(usize),
    /// A well-formed stream this crate does not transcode; the text names
    /// the profile and what to do.
    #[error("unsupported audio: {0}")]
    Unsupported(String),
    /// The AAC decoder rejected an access unit (corrupt or not AAC-LC).
    #[error("aac decode error: {0}")]
    Decode(String),
    /// The resampler failed (internal; reported, not panicked).
    #[error("resampler error: {0}")]
    Resample(String),
    /// The Opus or AAC encoder failed (internal; reported, not panicked).
    #[error("encoder error: {0}")]
    Encode(String),
    /// An access unit was pushed before any AudioSpecificConfig.
    #[error("no AudioSpecificConfig yet: call set_config first")]
    NoConfig,
    /// The caller passed a setting out of range.
    #[error("invalid setting: {0}")]
    InvalidSetting(&'static str),
}
