//! H.264 bitstream parsing (NAL, SPS, PPS, slice headers, SEI) and the B-frame stripper.
//!
//! Work in progress: see the project's issue for this crate.
#![forbid(unsafe_code)]
#![deny(missing_docs)]
