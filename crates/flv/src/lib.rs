//! FLV file and tag codec, AMF0, AVCDecoderConfigurationRecord and Enhanced
//! RTMP tag headers: the media layer that RTMP, HTTP-FLV and FLV files share.
//!
//! Specifications followed:
//! - Adobe Flash Video File Format Specification v10.1, annex E: the file
//!   header (E.2, [`header`]), the body and tags (E.3, E.4.1, [`tag`]), audio
//!   and video tag headers (E.4.2.1, E.4.3.1, [`audio`], [`video`]) and script
//!   data (E.4.4, [`script`]).
//! - Veovera "Enhancing RTMP, FLV" (E-RTMP v1 and v2): ExAudioTagHeader and
//!   ExVideoTagHeader with FourCC codecs (`avc1`, `hvc1`, `av01`, `vp09`,
//!   `Opus`, ...), sequence start/end, coded frames with and without
//!   composition time, metadata, ModEx (skipped) and multitrack (header only),
//!   see [`enhanced`].
//! - Adobe AMF0 specification, sections 2.2 to 2.18 ([`amf0`]).
//! - ISO/IEC 14496-15 5.3.3.1, AVCDecoderConfigurationRecord ([`avc`]).
//!
//! The crate is sans-IO: the [`Demuxer`] takes bytes as they arrive and
//! hands out whole tags whose bodies are zero-copy [`bytes::Bytes`] slices;
//! the [`Muxer`] appends to a caller-owned buffer.
//!
//! ```
//! use bytes::{Bytes, BytesMut};
//! use rts_flv::{Demuxer, Header, Muxer, Tag, TagType, VideoTagHeader};
//!
//! // Write a file: header, then tags.
//! let mut file = BytesMut::new();
//! let mut muxer = Muxer::new(Header::new(false, true));
//! let body = Bytes::from_static(&[0x17, 0x01, 0x00, 0x00, 0x21, 0, 0, 0, 1, 0x65]);
//! muxer.encode(&Tag::new(TagType::Video, 0, body), &mut file)?;
//!
//! // Read it back as a socket would deliver it: any split works.
//! let mut demuxer = Demuxer::new();
//! let mut buf = BytesMut::new();
//! for piece in file.chunks(7) {
//!     buf.extend_from_slice(piece);
//!     while let Some(tag) = demuxer.decode(&mut buf)? {
//!         let (video, payload) = VideoTagHeader::parse(&tag.data)?;
//!         assert!(video.is_keyframe());
//!         assert_eq!(video.composition_time, 33);
//!         assert_eq!(payload.len(), 5); // one AVCC NAL unit
//!     }
//! }
//! # Ok::<(), rts_flv::Error>(())
//! ```
//!
//! # Errors and panics
//! Every parser returns [`Error`] (cheap, `Copy`) for malformed input and
//! never panics: reads go through a bounds-checked cursor, lengths from the
//! wire are checked against limits ([`Demuxer::with_max_tag_size`],
//! [`amf0::Limits`]) before anything is reserved, and arithmetic on wire
//! values is checked or saturating. Framing decoders return `Ok(None)` when
//! they need more bytes; parsers of complete items (tag bodies, AMF0 in a
//! message, config records) return [`Error::UnexpectedEnd`]. Unknown codecs,
//! tag types and packet types are reported as `Unknown*`/`Other` values, not
//! errors. Caller mistakes when writing (a tag over 16 MiB, a codec with no
//! code in the chosen header form) are [`Error::TagTooLarge`] and
//! [`Error::NotRepresentable`].
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

pub mod amf0;
pub mod audio;
pub mod avc;
mod cursor;
pub mod enhanced;
mod error;
pub mod video;

/// The `bytes` crate this API uses (`Bytes`, `BytesMut`, `BufMut`).
pub use bytes;
pub use error::Error;
pub mod header;
pub mod script;
pub mod tag;

pub use audio::{AudioCodec, AudioPacketType, AudioTagHeader};
pub use avc::AvcDecoderConfigurationRecord;
pub use enhanced::FourCc;
pub use header::Header;
pub use script::ScriptData;
pub use tag::{Demuxer, Muxer, Tag, TagType};
pub use video::{FrameType, VideoCodec, VideoPacketType, VideoTagHeader};
