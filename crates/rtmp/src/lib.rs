//! RTMP handshake, chunk stream codec, messages, commands and sans-IO server and client sessions.
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

pub mod chunk;
mod error;
pub mod handshake;
pub mod message;

pub use chunk::{Decoder, Encoder, Limits, Message};
pub use error::Error;
