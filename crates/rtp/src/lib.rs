//! RTP payload formats (H.264, Opus), retransmission history and RTCP helpers.
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

mod error;
pub mod ext;
pub mod h264;
pub mod opus;
pub mod packet;
pub mod timeline;

pub use error::Error;
pub use packet::{Packet, Payload};
pub use rtc_rtcp;
pub use rtc_rtp;
