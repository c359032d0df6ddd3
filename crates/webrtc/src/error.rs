//! The crate's error type.

/// An error from the webrtc-rs stack (or the crypto and certificate crates
/// under it), kept as the source of an [`Error`].
pub type StackError = Box<dyn std::error::Error + Send + Sync + 'static>;

/// What went wrong in a peer.
///
/// What the remote sent wrong (an offer or answer we refuse) is kept apart
/// from caller mistakes ([`Error::Usage`]) and from failures inside the
/// stack ([`Error::Stack`]); errors that come from the stack keep it as
/// their [`source`](std::error::Error::source).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The offer is not SDP we take (our own checks: size, `v=0`, m-lines).
    #[error("malformed sdp offer: {0}")]
    MalformedOffer(String),
    /// The stack refused the offer.
    #[error("the sdp offer was refused: {0}")]
    OfferRefused(#[source] StackError),
    /// The answer to our offer (client side) was unusable: too large, or
    /// without H.264 or Opus.
    #[error("unusable sdp answer: {0}")]
    MalformedAnswer(String),
    /// The stack refused the answer to our offer (client side).
    #[error("the sdp answer was refused: {0}")]
    AnswerRefused(#[source] StackError),
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
    Stack(#[source] StackError),
}

impl Error {
    pub(crate) fn stack(e: impl Into<StackError>) -> Self {
        Self::Stack(e.into())
    }

    pub(crate) fn offer(e: impl Into<StackError>) -> Self {
        Self::OfferRefused(e.into())
    }

    pub(crate) fn answer(e: impl Into<StackError>) -> Self {
        Self::AnswerRefused(e.into())
    }
}
