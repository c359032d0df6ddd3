//! H.264 bitstream parsing (NAL, SPS, PPS, slice headers, SEI) and the
//! B-frame stripper.
//!
//! Specifications: ITU-T H.264 (08/2021) — NAL units 7.3.1 and 7.4.1
//! (emulation prevention), SPS 7.3.2.1.1, PPS 7.3.2.2, SEI 7.3.2.3 and
//! D.1.7 (user data unregistered), slice header 7.3.3, Exp-Golomb 9.1,
//! byte stream format Annex B, VUI E.1.1; ISO/IEC 14496-15 5.3.3.1
//! (AVCDecoderConfigurationRecord) and 5.3.4 (AVCC length-prefixed samples).
//!
//! ```
//! use bytes::Bytes;
//! use rts_h264::{avcc::AvcConfig, classify::{Classifier, FrameKind}};
//!
//! // An FLV AVC sequence header body (x264 High 3.1, 1280x720).
//! let record = Bytes::from_static(&[
//!     0x01, 0x64, 0x00, 0x1f, 0xff, 0xe1, 0x00, 0x1a, 0x67, 0x64, 0x00, 0x1f, 0xac, 0xd9,
//!     0x40, 0x50, 0x05, 0xbb, 0x01, 0x10, 0x00, 0x00, 0x03, 0x00, 0x10, 0x00, 0x00, 0x03,
//!     0x03, 0xc0, 0xf1, 0x83, 0x19, 0x60, 0x01, 0x00, 0x05, 0x68, 0xeb, 0xec, 0xb2, 0x2c,
//! ]);
//! let config = AvcConfig::parse(&record)?;
//! let mut classifier = Classifier::new();
//! classifier.set_config(&config)?;
//! let sps = classifier.active_sps().expect("an SPS");
//! assert_eq!((sps.width(), sps.height(), sps.reorder_depth()), (1280, 720, 2));
//! // A (truncated) IDR slice: first_mb 0, slice_type 7 (I), pps 0, frame_num 0.
//! let au = Bytes::from_static(&[0, 0, 0, 4, 0x65, 0x88, 0x84, 0x00]);
//! let c = classifier.classify(&au)?.expect("a picture");
//! assert_eq!(c.kind, FrameKind::Idr);
//! # Ok::<(), rts_h264::Error>(())
//! ```
//!
//! # The B-frame stripper (feature `transcode`, on by default)
//!
//! [`strip::Stripper`] turns access units with B-frames into ones a
//! browser's WebRTC decoder plays (no B-frames, dts == pts, strictly
//! increasing), decoding and re-encoding with OpenH264 when it must. It
//! needs the default `transcode` feature, which builds OpenH264 from C++
//! source; without it (`default-features = false`) this crate is the
//! codec-free parsers above, with no C dependency. See the [`strip`]
//! module for its I/O loop.
//!
//! # Errors and panics
//! Malformed input is an [`Error`] (cheap, `Copy`): reads past the end are
//! [`Error::UnexpectedEnd`], out-of-range values [`Error::Invalid`]. Nothing
//! in this crate panics on any input; lengths from the stream are checked
//! before use and queues are bounded. The stripper's errors are the same
//! enum: [`Error::ReferencedBFrame`] in drop mode, [`Error::Unsupported`]
//! for streams OpenH264 cannot decode (not 8-bit 4:2:0), [`Error::Codec`]
//! when OpenH264 fails to start; a picture OpenH264 refuses is an
//! [`Event::DecodeError`] and the stream resumes at the next IDR.
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

pub mod avcc;
pub mod bits;
pub mod classify;
pub mod nal;
pub mod pps;
pub mod sei;
pub mod slice;
pub mod sps;
#[cfg(feature = "transcode")]
pub mod strip;

#[cfg(feature = "transcode")]
pub use strip::{ASM, AccessUnit, Event, Frame, Mode, Output, Settings, Stats, Stripper};

/// What was wrong with the bitstream.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The input ended inside a field.
    #[error("h264 input ends early")]
    UnexpectedEnd,
    /// A field has a value the spec does not allow.
    #[error("invalid h264 data: {0}")]
    Invalid(&'static str),
    /// A slice refers to an SPS or PPS that was not received.
    #[error("slice refers to a parameter set that was not received")]
    MissingParameterSet,
    /// Drop mode met a B-frame that other pictures reference: dropping it
    /// would corrupt the picture; use transcode mode.
    #[error("a referenced b-frame cannot be dropped (b-pyramid); use transcode mode")]
    ReferencedBFrame,
    /// An access unit arrived before any decoder configuration.
    #[error("access unit before the avc sequence header")]
    NoConfig,
    /// Valid input this crate cannot process.
    #[error("unsupported h264 stream: {0}")]
    Unsupported(&'static str),
    /// OpenH264 failed.
    #[error("codec failure: {0}")]
    Codec(&'static str),
}
