//! FLV file and tag codec, AMF0, AVCDecoderConfigurationRecord and Enhanced RTMP tag headers.
//!
//! Work in progress: see the project's issue for this crate.
#![forbid(unsafe_code)]
#![deny(missing_docs)]
