//! The crate's error type.

/// What went wrong. Peer mistakes (malformed packets, bad payloads) are
/// cheap variants; caller mistakes (an MTU too small to carry anything) are
/// kept apart; RTCP parse failures carry the underlying `rtc-rtcp` error.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// Input ended before a field it announced.
    #[error("truncated {0}: the input ends inside it")]
    Truncated(&'static str),
    /// A NAL unit length prefix or an aggregation length is wrong.
    #[error("invalid {0}: a length field points outside the payload")]
    InvalidLength(&'static str),
    /// A payload this crate cannot interpret (reserved NAL type, FU-B, ...).
    #[error("unsupported payload: {0}")]
    Unsupported(&'static str),
    /// A header extension value has the wrong size.
    #[error("invalid header extension {name}: expected {expected} bytes, got {got}")]
    Extension {
        /// The extension's name.
        name: &'static str,
        /// What the extension's spec requires.
        expected: &'static str,
        /// What was given.
        got: usize,
    },
    /// The configured MTU leaves no room for a payload.
    #[error(
        "mtu {0} is too small: it must leave room for the RTP header and at least 3 payload bytes"
    )]
    MtuTooSmall(usize),
    /// A value exceeds a configured or protocol maximum.
    #[error("{what} is too large: {len} bytes (maximum {max})")]
    TooLarge {
        /// What was too large.
        what: &'static str,
        /// Its length.
        len: usize,
        /// The maximum allowed.
        max: usize,
    },
    /// An access unit's NAL framing is malformed (rts-h264's splitter).
    #[error("h264 access unit: {0}")]
    H264(#[from] rts_h264::Error),
    /// An AVC decoder configuration record is malformed (rts-flv's reader).
    #[error("avc decoder configuration: {0}")]
    Config(#[from] rts_flv::Error),
    /// RTCP or RTP wire parsing/encoding failed in `rtc-rtcp` / `rtc-rtp`.
    #[error("rtcp/rtp wire error: {0}")]
    Wire(#[from] rtc_shared::error::Error),
}
