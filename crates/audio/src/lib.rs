//! AudioSpecificConfig and ADTS parsing, and AAC to Opus transcoding.
//!
//! Work in progress: see the project's issue for this crate.
#![forbid(unsafe_code)]
#![deny(missing_docs)]
