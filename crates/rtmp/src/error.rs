//! The crate's error type.

/// Everything that can go wrong in this crate. Peer mistakes (malformed or
/// oversized input) end the session that received them; the caller's
/// mistakes are reported by the call that made them.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// C0/S0 asked for an RTMP version other than 3 (6 is RTMPE, which is
    /// not supported).
    #[error(
        "unsupported rtmp version {0}: only version 3 (plain rtmp) is supported; use rtmp:// without encryption"
    )]
    UnsupportedVersion(u8),
    /// A Set Chunk Size message carried 0 or a value with the top bit set.
    #[error("invalid chunk size {0}: must be between 1 and 2147483647")]
    InvalidChunkSize(u32),
    /// A message header announced a message larger than the configured
    /// maximum.
    #[error("message of {len} bytes exceeds the limit of {max} bytes")]
    MessageTooLarge {
        /// The announced length.
        len: u32,
        /// The configured limit.
        max: u32,
    },
    /// The peer used more chunk streams than the configured maximum.
    #[error("more than {0} chunk streams in use")]
    TooManyChunkStreams(usize),
    /// The partially received messages would need more memory than the
    /// configured maximum.
    #[error("partially received messages would exceed the buffer limit of {0} bytes")]
    BufferLimit(usize),
    /// A chunk with header format 1, 2 or 3 on a chunk stream that has no
    /// previous header to refer to.
    #[error("chunk stream {csid}: format {fmt} header without a previous format 0 header")]
    NoPreviousHeader {
        /// The chunk stream id.
        csid: u32,
        /// The header format (1 to 3).
        fmt: u8,
    },
    /// A message whose body does not match its type.
    #[error("malformed {what}: {why}")]
    Malformed {
        /// Which message.
        what: &'static str,
        /// What was wrong.
        why: &'static str,
    },
    /// An AMF0 value could not be decoded.
    #[error("malformed amf0 in {what}: {source}")]
    Amf {
        /// Which message.
        what: &'static str,
        /// The decoder's error.
        #[source]
        source: rts_flv::Error,
    },
    /// The peer closed or violated the command protocol (for example
    /// publishing before connect).
    #[error("protocol violation: {0}")]
    Protocol(&'static str),
    /// The peer sent nothing for longer than the configured idle timeout.
    #[error("no data from the peer for {0:?}: closing the idle connection")]
    IdleTimeout(std::time::Duration),
    /// The peer rejected our request (client side), with its status code
    /// and description.
    #[error("rejected by peer: {code}: {description}")]
    Rejected {
        /// The status code, for example `NetStream.Publish.BadName`.
        code: String,
        /// The peer's description.
        description: String,
    },
    /// The caller used the API in a state where it does not apply (for
    /// example accepting a request that is not pending).
    #[error("invalid use: {0}")]
    InvalidState(&'static str),
}
