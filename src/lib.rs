//! rts: an open, self-hosted Real-Time Streaming system.
//!
//! This facade re-exports the protocol crates of the workspace so that an
//! application can depend on one crate. Each module is also published as its
//! own crate (`rts-auth`, …) for users who need only one protocol.
//!
//! See `docs/ARCHITECTURE.md` for how the crates fit together.
#![forbid(unsafe_code)]
#![deny(missing_docs)]

pub use rts_audio as audio;
pub use rts_auth as auth;
pub use rts_flv as flv;
pub use rts_h264 as h264;
pub use rts_rtmp as rtmp;
pub use rts_rtp as rtp;
pub use rts_server as server;
pub use rts_webrtc as webrtc;
pub use rts_whip as whip;
