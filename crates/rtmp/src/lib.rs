//! RTMP handshake, chunk stream codec, messages, commands and sans-IO server and client sessions.
//!
//! Work in progress: see the project's issue for this crate.
#![forbid(unsafe_code)]
#![deny(missing_docs)]
