//! rts: an open, self-hosted Real-Time Streaming system.
//!
//! This facade re-exports the protocol crates of the workspace so that an
//! application can depend on one crate. Each module is also its own crate
//! (`rts-auth`, `rts-flv`, …) for users who need only one protocol.
//!
//! Features:
//! - `transcode` (default): the codecs, [`h264::strip`] (OpenH264) and
//!   [`audio::transcode`] (symphonia, libopus). Without it every module is
//!   a codec-free parser and nothing is built from C.
//! - `server`: `rts::server`, the bundled server as a library (tokio,
//!   axum, rustls). The `rts-server` command is the `rts-server` crate's
//!   binary: `cargo install --path crates/server`.
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
#[cfg(feature = "server")]
pub use rts_server as server;
pub use rts_webrtc as webrtc;
pub use rts_whip as whip;
