//! AAC configuration parsing and AAC to Opus transcoding.
//!
//! - [`asc`]: AudioSpecificConfig, ISO/IEC 14496-3 1.6.2.1 (object types 1, 2,
//!   5 SBR, 29 PS; explicit hierarchical and backward-compatible SBR/PS
//!   signalling, 1.6.5; explicit 24-bit rates; channel configurations 0-7
//!   with the program config element, 4.4.1.1). Parse and build round-trip
//!   bit for bit.
//! - [`adts`]: ADTS headers and framing, ISO/IEC 13818-7 6.2 / 14496-3 1.A.
//!
//! ```
//! use rts_audio::asc::{AudioSpecificConfig, Profile};
//!
//! // The body of an FLV AAC sequence header written by ffmpeg.
//! let asc = AudioSpecificConfig::parse(&[0x12, 0x10, 0x56, 0xe5, 0x00])?;
//! assert_eq!((asc.sample_rate(), asc.channels()), (44100, Some(2)));
//! assert_eq!(asc.profile(), Profile::AacLc);
//! assert_eq!(asc.to_bytes(), [0x12, 0x10, 0x56, 0xe5, 0x00]);
//! # Ok::<(), rts_audio::Error>(())
//! ```
//!
//! # Errors and panics
//! Malformed input is an [`Error`]; nothing here panics on any input.
#![forbid(unsafe_code)]
#![deny(missing_docs)]
#![cfg_attr(
    not(test),
    warn(
        clippy::indexing_slicing,
        clippy::arithmetic_side_effects,
        clippy::unwrap_used
    )
)]

pub mod adts;
pub mod asc;
mod bits;
mod error;

pub use bits::Bits;
pub use error::Error;
