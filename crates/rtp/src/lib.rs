//! RTP payload formats (H.264, Opus), retransmission history and RTCP helpers.
//!
//! Work in progress: see the project's issue for this crate.
#![forbid(unsafe_code)]
#![deny(missing_docs)]
