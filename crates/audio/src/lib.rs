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
//! - [`transcode`] (feature `transcode`, on by default; without it this crate
//!   is the two parsers above and builds no C): [`transcode::AacToOpus`],
//!   AAC-LC access units in, Opus
//!   packets (RFC 6716) with 48 kHz timestamps out. AAC-LC is decoded by
//!   symphonia (ISO/IEC 14496-3 4, no container needed), resampled to 48 kHz
//!   by rubato's synchronous FFT resampler and encoded by the reference C
//!   libopus 1.5.2, built from vendored sources by the `cc` crate (no cmake;
//!   the FFI and its safe wrapper are in rts-opus-sys,
//!   docs/decisions/audio-opus-binding.md). HE-AAC v1/v2 is refused
//!   with an error naming the profile (symphonia has no SBR/PS and would play
//!   it degraded), unless the optional `he-aac` cargo feature is on: then
//!   libfdk-aac (built from source with the `cc` crate; Fraunhofer's own
//!   licence, hence off by default) decodes it at the SBR rate, v2 as
//!   stereo. Implicit SBR signalling (an AAC-LC config whose stream carries
//!   SBR data) is not detected: symphonia then plays the AAC-LC core only.
//!   More than two channels are refused by name without the feature
//!   (symphonia 0.6 decodes mono and stereo only); with `he-aac`, libfdk-aac
//!   decodes 3 to 8 channels and downmixes them to stereo
//!   ([`transcode::downmix_to_stereo`] is the same matrix for a decoder
//!   that does not).
//!
//! - [`opus_to_aac`] (feature `transcode`): [`opus_to_aac::OpusToAac`], Opus
//!   packets in, AAC-LC access units out, for players that know AAC only.
//!   libopus decodes; syom (pure Rust, MIT) encodes AAC-LC at 48 kHz
//!   stereo, so nothing is resampled (docs/decisions/aac-encoder.md).
//!
//! # Errors and panics
//! Malformed input is an [`Error`]; a corrupt access unit inside a stream is
//! an event plus a frame of silence, and decoding goes on. Every internal
//! buffer is bounded (one AAC frame, one resampler chunk, one Opus frame, and
//! the transcoder's `Config::max_queued_packets`). Nothing here panics on any
//! input.
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
#[cfg(feature = "transcode")]
pub mod opus_to_aac;
#[cfg(feature = "transcode")]
pub mod transcode;
