//! The crate's error type.

/// What went wrong in a peer.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The offer could not be parsed as SDP.
    #[error("malformed sdp offer: {0}")]
    MalformedOffer(String),
    /// The answer to our offer (client side) was unusable: not SDP, too
    /// large, or without H.264 or Opus.
    #[error("unusable sdp answer: {0}")]
    MalformedAnswer(String),
    /// The offer has no codec this server can use.
    #[error(
        "the offer has no usable codec: {0}; offer H.264 (packetization-mode=1, constrained baseline \
         profile-level-id 42e0xx or 4200xx) and/or Opus 48000/2"
    )]
    NoUsableCodec(String),
    /// The offer's media directions do not fit the session (a viewer offer
    /// that only sends, a publisher offer that only receives).
    #[error("unsupported media direction: {0}")]
    Direction(String),
    /// The caller asked for something this peer cannot do.
    #[error("invalid use: {0}")]
    Usage(&'static str),
    /// The webrtc-rs stack reported an error.
    #[error("webrtc stack: {0}")]
    Stack(String),
}

impl Error {
    pub(crate) fn stack(e: impl std::fmt::Display) -> Self {
        Self::Stack(e.to_string())
    }
}
