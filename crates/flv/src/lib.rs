//! FLV file and tag codec, AMF0, AVCDecoderConfigurationRecord and Enhanced RTMP tag headers.
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
mod cursor;
pub mod enhanced;
mod error;
pub mod video;

pub use error::Error;
pub mod header;
pub mod tag;

pub use audio::{AudioCodec, AudioPacketType, AudioTagHeader};
pub use enhanced::FourCc;
pub use header::Header;
pub use tag::{Demuxer, Muxer, Tag, TagType};
pub use video::{FrameType, VideoCodec, VideoPacketType, VideoTagHeader};
