//! The crate's error type.

/// What went wrong while reading or writing FLV, AMF0 or a codec header.
///
/// Every variant except the `*TooLarge`/`NotRepresentable` caller cases is
/// a peer or file mistake. Values are cheap and `Copy`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The input ended in the middle of an item that must be complete
    /// (an AMF0 value inside a message, a tag body header, a config record).
    #[error("unexpected end of input while reading {0}")]
    UnexpectedEnd(&'static str),
    /// An AMF0 type marker this crate does not know.
    #[error("unknown amf0 type marker 0x{0:02x}")]
    UnknownMarker(u8),
    /// An AMF0 type marker that is valid but not supported: reference (0x07),
    /// movieclip (0x04), recordset (0x0e) or the AMF3 switch (0x11).
    #[error("unsupported amf0 type marker 0x{0:02x}")]
    UnsupportedMarker(u8),
    /// An object-end marker (0x09) where a value was expected.
    #[error("amf0 object-end marker outside an object")]
    UnexpectedObjectEnd,
    /// AMF0 nesting deeper than the configured limit.
    #[error("amf0 nesting deeper than {limit} levels")]
    TooDeep {
        /// The configured limit.
        limit: usize,
    },
    /// More AMF0 values than the configured limit.
    #[error("more than {limit} amf0 values")]
    TooManyValues {
        /// The configured limit.
        limit: usize,
    },
    /// An AMF0 string that is not UTF-8.
    #[error("amf0 string is not valid utf-8")]
    InvalidUtf8,
    /// The file does not start with `FLV`.
    #[error("not an flv file: bad signature (expected \"FLV\")")]
    BadSignature,
    /// The FLV header's data offset is smaller than the header.
    #[error("flv header data offset {0} is smaller than 9")]
    BadDataOffset(u32),
    /// A tag's data is larger than the configured maximum.
    #[error("flv tag of {size} bytes exceeds the maximum of {max}")]
    TagTooLarge {
        /// The tag's data size.
        size: usize,
        /// The configured maximum.
        max: usize,
    },
    /// A PreviousTagSize field does not match the tag before it (strict mode).
    #[error("previous tag size {found} does not match the tag size {expected}")]
    PreviousTagSize {
        /// 11 + the previous tag's data size.
        expected: u32,
        /// The field's value.
        found: u32,
    },
    /// An AVCDecoderConfigurationRecord whose configurationVersion is not 1.
    #[error("avc configuration version {0} is not 1")]
    BadConfigurationVersion(u8),
    /// lengthSizeMinusOne is 2: NAL unit lengths of 3 bytes, which ISO/IEC
    /// 14496-15 5.3.3.1.2 does not allow (only 1, 2 or 4 bytes).
    #[error("avc configuration gives nal unit lengths of 3 bytes; only 1, 2 or 4 are allowed")]
    BadNalLengthSize,
    /// A parameter-set list or NAL unit larger than its length field allows.
    #[error("avc parameter set list too long to encode")]
    ParameterSetTooLong,
    /// A codec that a legacy (or enhanced) header has no code for.
    #[error("codec cannot be written in this header form")]
    NotRepresentable,
    /// A script tag whose first value is not a string name.
    #[error("script tag does not start with a string name")]
    ScriptName,
}
