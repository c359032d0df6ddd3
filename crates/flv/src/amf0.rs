//! AMF0 (Action Message Format version 0), the encoding of RTMP command
//! messages and FLV script tags.
//!
//! Follows the AMF0 specification (Adobe, 2007), sections 2.2 to 2.18.
//! Every type is read and written except those the spec itself marks as
//! reserved or that only make sense to Flash Player: reference (2.9),
//! movieclip (2.5), recordset (2.14) and the AVM+ switch (3.1) are rejected
//! with [`Error::UnsupportedMarker`].
//!
//! ```
//! use bytes::BytesMut;
//! use rts_flv::amf0::{self, Value};
//!
//! // An RTMP `connect` command is a sequence of values.
//! let cmd = [
//!     Value::from("connect"),
//!     Value::from(1.0),
//!     Value::object([("app", Value::from("live")), ("objectEncoding", Value::from(0.0))]),
//! ];
//! let mut buf = BytesMut::new();
//! amf0::encode_all(&cmd, &mut buf);
//!
//! let values = amf0::decode_all(&buf)?;
//! assert_eq!(values[0].as_str(), Some("connect"));
//! assert_eq!(values[1].as_f64(), Some(1.0));
//! assert_eq!(values[2].get("app").and_then(Value::as_str), Some("live"));
//! # Ok::<(), rts_flv::Error>(())
//! ```
//!
//! Decoding reads a complete, already framed message: input that ends inside
//! a value is [`Error::UnexpectedEnd`]. Nesting depth and the number of values
//! are limited by [`Limits`]; array counts from the wire never size an
//! allocation beyond what the remaining input can hold.

use bytes::BufMut;

pub use crate::Error;

/// AMF0 type markers (AMF0 spec 2.1).
pub mod marker {
    /// 2.2 Number: IEEE-754 double, big endian.
    pub const NUMBER: u8 = 0x00;
    /// 2.3 Boolean.
    pub const BOOLEAN: u8 = 0x01;
    /// 2.4 String: u16 length + UTF-8.
    pub const STRING: u8 = 0x02;
    /// 2.5 Object: properties up to an object end.
    pub const OBJECT: u8 = 0x03;
    /// 2.6 Movieclip (reserved, not supported).
    pub const MOVIECLIP: u8 = 0x04;
    /// 2.7 Null.
    pub const NULL: u8 = 0x05;
    /// 2.8 Undefined.
    pub const UNDEFINED: u8 = 0x06;
    /// 2.9 Reference (not supported).
    pub const REFERENCE: u8 = 0x07;
    /// 2.10 ECMA array: u32 count hint + properties up to an object end.
    pub const ECMA_ARRAY: u8 = 0x08;
    /// 2.11 Object end.
    pub const OBJECT_END: u8 = 0x09;
    /// 2.12 Strict array: u32 count + values.
    pub const STRICT_ARRAY: u8 = 0x0a;
    /// 2.13 Date: double milliseconds + s16 time zone.
    pub const DATE: u8 = 0x0b;
    /// 2.14 Long string: u32 length + UTF-8.
    pub const LONG_STRING: u8 = 0x0c;
    /// 2.15 Unsupported.
    pub const UNSUPPORTED: u8 = 0x0d;
    /// 2.16 RecordSet (reserved, not supported).
    pub const RECORDSET: u8 = 0x0e;
    /// 2.17 XML document: u32 length + UTF-8.
    pub const XML_DOCUMENT: u8 = 0x0f;
    /// 2.18 Typed object: class name + properties up to an object end.
    pub const TYPED_OBJECT: u8 = 0x10;
    /// 3.1 Switch to AMF3 (not supported).
    pub const AVMPLUS_OBJECT: u8 = 0x11;
}

/// Ordered key/value pairs of an object, ECMA array or typed object.
pub type Properties = Vec<(String, Value)>;

/// One AMF0 value.
///
/// Strings are `String`: the spec says UTF-8. A string longer than 65535
/// bytes is written as a long string (2.14), a shorter one as a string
/// (2.4); both decode to [`Value::String`].
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    /// 2.2 Number.
    Number(f64),
    /// 2.3 Boolean.
    Boolean(bool),
    /// 2.4 String and 2.14 long string.
    String(String),
    /// 2.5 Anonymous object.
    Object(Properties),
    /// 2.7 Null.
    Null,
    /// 2.8 Undefined.
    Undefined,
    /// 2.10 ECMA array (associative).
    EcmaArray(Properties),
    /// 2.12 Strict array.
    StrictArray(Vec<Value>),
    /// 2.13 Date.
    Date {
        /// Milliseconds since the Unix epoch (UTC).
        millis: f64,
        /// Time zone field; the spec says it should be 0.
        time_zone: i16,
    },
    /// 2.15 Unsupported marker.
    Unsupported,
    /// 2.17 XML document.
    XmlDocument(String),
    /// 2.18 Typed object.
    TypedObject {
        /// The registered class name.
        class_name: String,
        /// The object's properties.
        properties: Properties,
    },
}

impl Value {
    /// An anonymous object from key/value pairs, in order.
    pub fn object<K: Into<String>>(pairs: impl IntoIterator<Item = (K, Value)>) -> Value {
        Value::Object(pairs.into_iter().map(|(k, v)| (k.into(), v)).collect())
    }

    /// An ECMA array from key/value pairs, in order (what `onMetaData` uses).
    pub fn ecma_array<K: Into<String>>(pairs: impl IntoIterator<Item = (K, Value)>) -> Value {
        Value::EcmaArray(pairs.into_iter().map(|(k, v)| (k.into(), v)).collect())
    }

    /// The string, if this is a string (or long string).
    pub fn as_str(&self) -> Option<&str> {
        match self {
            Value::String(s) => Some(s),
            _ => None,
        }
    }

    /// The number, if this is a number.
    pub fn as_f64(&self) -> Option<f64> {
        match self {
            Value::Number(n) => Some(*n),
            _ => None,
        }
    }

    /// The boolean, if this is a boolean.
    pub fn as_bool(&self) -> Option<bool> {
        match self {
            Value::Boolean(b) => Some(*b),
            _ => None,
        }
    }

    /// True for null and undefined.
    pub fn is_null(&self) -> bool {
        matches!(self, Value::Null | Value::Undefined)
    }

    /// The properties of an object, ECMA array or typed object.
    pub fn properties(&self) -> Option<&[(String, Value)]> {
        match self {
            Value::Object(p) | Value::EcmaArray(p) => Some(p),
            Value::TypedObject { properties, .. } => Some(properties),
            _ => None,
        }
    }

    /// Mutable properties of an object, ECMA array or typed object.
    pub fn properties_mut(&mut self) -> Option<&mut Properties> {
        match self {
            Value::Object(p) | Value::EcmaArray(p) => Some(p),
            Value::TypedObject { properties, .. } => Some(properties),
            _ => None,
        }
    }

    /// The first property named `key` of an object, ECMA array or typed object.
    pub fn get(&self, key: &str) -> Option<&Value> {
        self.properties()?
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v)
    }

    /// The elements of a strict array.
    pub fn as_array(&self) -> Option<&[Value]> {
        match self {
            Value::StrictArray(v) => Some(v),
            _ => None,
        }
    }

    /// Number of bytes [`encode`] writes for this value.
    pub fn encoded_len(&self) -> usize {
        fn props_len(p: &Properties) -> usize {
            p.iter().fold(3, |acc, (k, v)| {
                acc.saturating_add(2)
                    .saturating_add(key_bytes(k).len())
                    .saturating_add(v.encoded_len())
            })
        }
        match self {
            Value::Number(_) => 9,
            Value::Boolean(_) => 2,
            Value::String(s) if s.len() <= usize::from(u16::MAX) => 3usize.saturating_add(s.len()),
            Value::String(s) | Value::XmlDocument(s) => 5usize.saturating_add(long_bytes(s).len()),
            Value::Object(p) => 1usize.saturating_add(props_len(p)),
            Value::Null | Value::Undefined | Value::Unsupported => 1,
            Value::EcmaArray(p) => 5usize.saturating_add(props_len(p)),
            Value::StrictArray(v) => v
                .iter()
                .take(u32::MAX as usize)
                .fold(5usize, |acc, v| acc.saturating_add(v.encoded_len())),
            Value::Date { .. } => 11,
            Value::TypedObject {
                class_name,
                properties,
            } => 3usize
                .saturating_add(key_bytes(class_name).len())
                .saturating_add(props_len(properties)),
        }
    }
}

impl From<f64> for Value {
    fn from(n: f64) -> Self {
        Value::Number(n)
    }
}

impl From<u32> for Value {
    fn from(n: u32) -> Self {
        Value::Number(f64::from(n))
    }
}

impl From<bool> for Value {
    fn from(b: bool) -> Self {
        Value::Boolean(b)
    }
}

impl From<&str> for Value {
    fn from(s: &str) -> Self {
        Value::String(s.to_owned())
    }
}

impl From<String> for Value {
    fn from(s: String) -> Self {
        Value::String(s)
    }
}

/// Decoding limits.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Deepest nesting of objects and arrays (the top level is depth 1).
    pub max_depth: usize,
    /// Most values in one [`Decoder`] (all levels counted).
    pub max_values: usize,
}

impl Limits {
    /// Depth 32 and 1 048 576 values: far above what RTMP commands and
    /// `onMetaData` (including keyframe index arrays) need.
    pub const DEFAULT: Limits = Limits {
        max_depth: 32,
        max_values: 1 << 20,
    };
}

impl Default for Limits {
    fn default() -> Self {
        Limits::DEFAULT
    }
}

/// Reads AMF0 values one after the other from a byte slice.
#[derive(Debug, Clone)]
pub struct Decoder<'a> {
    buf: &'a [u8],
    limits: Limits,
    values: usize,
}

impl<'a> Decoder<'a> {
    /// A decoder over `buf` with [`Limits::DEFAULT`].
    pub fn new(buf: &'a [u8]) -> Self {
        Decoder {
            buf,
            limits: Limits::DEFAULT,
            values: 0,
        }
    }

    /// Use other limits.
    pub fn with_limits(mut self, limits: Limits) -> Self {
        self.limits = limits;
        self
    }

    /// The bytes not read yet.
    pub fn remaining(&self) -> &'a [u8] {
        self.buf
    }

    /// True when every byte has been read.
    pub fn is_empty(&self) -> bool {
        self.buf.is_empty()
    }

    /// The next value, or `Ok(None)` at the end of the input.
    ///
    /// On error the decoder's position is unspecified; stop reading.
    pub fn next_value(&mut self) -> Result<Option<Value>, Error> {
        if self.buf.is_empty() {
            return Ok(None);
        }
        self.value(1).map(Some)
    }

    /// The next value, which must be present.
    pub fn read_value(&mut self) -> Result<Value, Error> {
        self.value(1)
    }

    fn take(&mut self, n: usize) -> Result<&'a [u8], Error> {
        match self.buf.split_at_checked(n) {
            Some((head, tail)) => {
                self.buf = tail;
                Ok(head)
            }
            None => Err(Error::UnexpectedEnd("amf0 value")),
        }
    }

    fn array<const N: usize>(&mut self) -> Result<[u8; N], Error> {
        let bytes = self.take(N)?;
        // invariant: take(N) returned exactly N bytes.
        bytes
            .try_into()
            .map_err(|_| Error::UnexpectedEnd("amf0 value"))
    }

    fn u8(&mut self) -> Result<u8, Error> {
        Ok(self.array::<1>()?[0])
    }

    fn u16(&mut self) -> Result<u16, Error> {
        Ok(u16::from_be_bytes(self.array()?))
    }

    fn u32(&mut self) -> Result<u32, Error> {
        Ok(u32::from_be_bytes(self.array()?))
    }

    fn f64(&mut self) -> Result<f64, Error> {
        Ok(f64::from_be_bytes(self.array()?))
    }

    fn utf8(&mut self, len: usize) -> Result<String, Error> {
        let bytes = self.take(len)?;
        std::str::from_utf8(bytes)
            .map(str::to_owned)
            .map_err(|_| Error::InvalidUtf8)
    }

    fn short_string(&mut self) -> Result<String, Error> {
        let len = self.u16()?;
        self.utf8(usize::from(len))
    }

    fn long_string(&mut self) -> Result<String, Error> {
        let len = self.u32()?;
        let len = usize::try_from(len).map_err(|_| Error::UnexpectedEnd("amf0 value"))?;
        self.utf8(len)
    }

    fn count(&mut self) -> Result<(), Error> {
        self.values = self.values.saturating_add(1);
        if self.values > self.limits.max_values {
            return Err(Error::TooManyValues {
                limit: self.limits.max_values,
            });
        }
        Ok(())
    }

    fn value(&mut self, depth: usize) -> Result<Value, Error> {
        if depth > self.limits.max_depth {
            return Err(Error::TooDeep {
                limit: self.limits.max_depth,
            });
        }
        self.count()?;
        let inner = depth.saturating_add(1);
        let m = self.u8()?;
        Ok(match m {
            marker::NUMBER => Value::Number(self.f64()?),
            marker::BOOLEAN => Value::Boolean(self.u8()? != 0),
            marker::STRING => Value::String(self.short_string()?),
            marker::OBJECT => Value::Object(self.properties(inner, false)?),
            marker::NULL => Value::Null,
            marker::UNDEFINED => Value::Undefined,
            marker::ECMA_ARRAY => {
                // The count is only a hint (encoders write 0 or wrong values);
                // the object end terminates the array.
                let _hint = self.u32()?;
                Value::EcmaArray(self.properties(inner, true)?)
            }
            marker::OBJECT_END => return Err(Error::UnexpectedObjectEnd),
            marker::STRICT_ARRAY => {
                let n = self.u32()?;
                let n = usize::try_from(n).unwrap_or(usize::MAX);
                // Each value takes at least one byte: never reserve more than
                // the input can hold.
                let mut out = Vec::with_capacity(n.min(self.buf.len()));
                for _ in 0..n {
                    out.push(self.value(inner)?);
                }
                Value::StrictArray(out)
            }
            marker::DATE => {
                let millis = self.f64()?;
                let time_zone = i16::from_be_bytes(self.array()?);
                Value::Date { millis, time_zone }
            }
            marker::LONG_STRING => Value::String(self.long_string()?),
            marker::UNSUPPORTED => Value::Unsupported,
            marker::XML_DOCUMENT => Value::XmlDocument(self.long_string()?),
            marker::TYPED_OBJECT => {
                let class_name = self.short_string()?;
                Value::TypedObject {
                    class_name,
                    properties: self.properties(inner, false)?,
                }
            }
            marker::MOVIECLIP | marker::REFERENCE | marker::RECORDSET | marker::AVMPLUS_OBJECT => {
                return Err(Error::UnsupportedMarker(m));
            }
            other => return Err(Error::UnknownMarker(other)),
        })
    }

    /// Properties up to the object end (an empty key then 0x09).
    ///
    /// `lenient_end`: an ECMA array may end with the input instead of an
    /// object end (some encoders write `onMetaData` that way).
    fn properties(&mut self, depth: usize, lenient_end: bool) -> Result<Properties, Error> {
        if depth > self.limits.max_depth {
            return Err(Error::TooDeep {
                limit: self.limits.max_depth,
            });
        }
        let mut out = Vec::new();
        loop {
            if lenient_end && self.buf.is_empty() {
                return Ok(out);
            }
            let key = self.short_string()?;
            if key.is_empty() && self.buf.first() == Some(&marker::OBJECT_END) {
                self.take(1)?;
                return Ok(out);
            }
            if lenient_end && key.is_empty() && self.buf.is_empty() {
                return Ok(out);
            }
            let value = self.value(depth)?;
            out.push((key, value));
        }
    }
}

/// Decodes every value in `input` (a whole RTMP command or script tag body).
pub fn decode_all(input: &[u8]) -> Result<Vec<Value>, Error> {
    decode_all_with(input, Limits::DEFAULT)
}

/// [`decode_all`] with other limits.
pub fn decode_all_with(input: &[u8], limits: Limits) -> Result<Vec<Value>, Error> {
    let mut d = Decoder::new(input).with_limits(limits);
    let mut out = Vec::new();
    while let Some(v) = d.next_value()? {
        out.push(v);
    }
    Ok(out)
}

/// Decodes one value from the front of `input` and advances it past it.
pub fn decode(input: &mut &[u8]) -> Result<Value, Error> {
    let mut d = Decoder::new(input);
    let v = d.read_value()?;
    *input = d.remaining();
    Ok(v)
}

/// Keys and class names have a u16 length: longer ones (a caller mistake)
/// are cut at the last char boundary that fits.
fn key_bytes(s: &str) -> &[u8] {
    truncate(s, usize::from(u16::MAX))
}

fn long_bytes(s: &str) -> &[u8] {
    truncate(s, u32::MAX as usize)
}

fn truncate(s: &str, max: usize) -> &[u8] {
    if s.len() <= max {
        return s.as_bytes();
    }
    let mut end = max;
    while !s.is_char_boundary(end) {
        end = end.saturating_sub(1);
    }
    s.as_bytes().get(..end).unwrap_or_default()
}

fn put_key(dst: &mut impl BufMut, k: &str) {
    let b = key_bytes(k);
    // invariant: key_bytes() is at most u16::MAX long.
    dst.put_u16(u16::try_from(b.len()).unwrap_or(u16::MAX));
    dst.put_slice(b);
}

fn put_long(dst: &mut impl BufMut, s: &str) {
    let b = long_bytes(s);
    dst.put_u32(u32::try_from(b.len()).unwrap_or(u32::MAX));
    dst.put_slice(b);
}

fn put_properties(dst: &mut impl BufMut, p: &Properties) {
    for (k, v) in p {
        put_key(dst, k);
        encode(v, dst);
    }
    dst.put_u16(0);
    dst.put_u8(marker::OBJECT_END);
}

/// Appends one value to `dst`.
///
/// Infallible: strings longer than 65535 bytes become long strings; keys and
/// class names longer than 65535 bytes (no AMF0 form exists) are truncated.
pub fn encode(value: &Value, dst: &mut impl BufMut) {
    match value {
        Value::Number(n) => {
            dst.put_u8(marker::NUMBER);
            dst.put_f64(*n);
        }
        Value::Boolean(b) => {
            dst.put_u8(marker::BOOLEAN);
            dst.put_u8(u8::from(*b));
        }
        Value::String(s) => match u16::try_from(s.len()) {
            Ok(len) => {
                dst.put_u8(marker::STRING);
                dst.put_u16(len);
                dst.put_slice(s.as_bytes());
            }
            Err(_) => {
                dst.put_u8(marker::LONG_STRING);
                put_long(dst, s);
            }
        },
        Value::Object(p) => {
            dst.put_u8(marker::OBJECT);
            put_properties(dst, p);
        }
        Value::Null => dst.put_u8(marker::NULL),
        Value::Undefined => dst.put_u8(marker::UNDEFINED),
        Value::EcmaArray(p) => {
            dst.put_u8(marker::ECMA_ARRAY);
            dst.put_u32(u32::try_from(p.len()).unwrap_or(u32::MAX));
            put_properties(dst, p);
        }
        Value::StrictArray(v) => {
            dst.put_u8(marker::STRICT_ARRAY);
            let n = u32::try_from(v.len()).unwrap_or(u32::MAX);
            dst.put_u32(n);
            for e in v.iter().take(n as usize) {
                encode(e, dst);
            }
        }
        Value::Date { millis, time_zone } => {
            dst.put_u8(marker::DATE);
            dst.put_f64(*millis);
            dst.put_i16(*time_zone);
        }
        Value::Unsupported => dst.put_u8(marker::UNSUPPORTED),
        Value::XmlDocument(s) => {
            dst.put_u8(marker::XML_DOCUMENT);
            put_long(dst, s);
        }
        Value::TypedObject {
            class_name,
            properties,
        } => {
            dst.put_u8(marker::TYPED_OBJECT);
            put_key(dst, class_name);
            put_properties(dst, properties);
        }
    }
}

/// Appends every value in order (an RTMP command: name, transaction id,
/// command object, arguments).
pub fn encode_all<'v>(values: impl IntoIterator<Item = &'v Value>, dst: &mut impl BufMut) {
    for v in values {
        encode(v, dst);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::BytesMut;
    use proptest::prelude::*;

    fn enc(v: &Value) -> Vec<u8> {
        let mut b = BytesMut::new();
        encode(v, &mut b);
        assert_eq!(b.len(), v.encoded_len());
        b.to_vec()
    }

    #[test]
    fn spec_encodings() {
        // 2.2 number 1.0
        assert_eq!(
            enc(&Value::Number(1.0)),
            [0x00, 0x3f, 0xf0, 0, 0, 0, 0, 0, 0]
        );
        // 2.3, 2.4, 2.7, 2.8
        assert_eq!(enc(&Value::Boolean(true)), [0x01, 0x01]);
        assert_eq!(enc(&"ab".into()), [0x02, 0x00, 0x02, b'a', b'b']);
        assert_eq!(enc(&Value::Null), [0x05]);
        assert_eq!(enc(&Value::Undefined), [0x06]);
        // 2.5 object {a: null}
        assert_eq!(
            enc(&Value::object([("a", Value::Null)])),
            [0x03, 0, 1, b'a', 0x05, 0, 0, 0x09]
        );
        // 2.10 ECMA array with count
        assert_eq!(
            enc(&Value::ecma_array([("a", Value::Null)])),
            [0x08, 0, 0, 0, 1, 0, 1, b'a', 0x05, 0, 0, 0x09]
        );
        // 2.12 strict array
        assert_eq!(
            enc(&Value::StrictArray(vec![
                Value::Null,
                Value::Boolean(false)
            ])),
            [0x0a, 0, 0, 0, 2, 0x05, 0x01, 0x00]
        );
        // 2.13 date
        assert_eq!(
            enc(&Value::Date {
                millis: 0.0,
                time_zone: -1
            }),
            [0x0b, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff]
        );
        // 2.18 typed object
        assert_eq!(
            enc(&Value::TypedObject {
                class_name: "C".into(),
                properties: vec![]
            }),
            [0x10, 0, 1, b'C', 0, 0, 0x09]
        );
    }

    #[test]
    fn long_string_both_ways() {
        let s = "x".repeat(70_000);
        let bytes = enc(&Value::String(s.clone()));
        assert_eq!(bytes[0], marker::LONG_STRING);
        assert_eq!(&bytes[1..5], &70_000u32.to_be_bytes());
        assert_eq!(decode_all(&bytes).unwrap(), vec![Value::String(s)]);
        // A short string sent as a long string decodes to the same value.
        assert_eq!(
            decode_all(&[0x0c, 0, 0, 0, 1, b'z']).unwrap(),
            vec![Value::from("z")]
        );
    }

    #[test]
    fn ffmpeg_connect_command() {
        // The start of ffmpeg 5.1's connect command (from the rtmp fixture pcap).
        let mut b = BytesMut::new();
        encode_all(
            &[
                Value::from("connect"),
                Value::from(1.0),
                Value::object([
                    ("app", Value::from("live")),
                    ("type", Value::from("nonprivate")),
                    (
                        "flashVer",
                        Value::from("FMLE/3.0 (compatible; Lavf59.27.100)"),
                    ),
                    ("tcUrl", Value::from("rtmp://127.0.0.1:1935/live")),
                ]),
            ],
            &mut b,
        );
        let v = decode_all(&b).unwrap();
        assert_eq!(v.len(), 3);
        assert_eq!(
            v[2].get("tcUrl").and_then(Value::as_str),
            Some("rtmp://127.0.0.1:1935/live")
        );
        assert_eq!(v[2].get("missing"), None);
    }

    #[test]
    fn errors() {
        assert_eq!(
            decode_all(&[0x00, 1, 2]),
            Err(Error::UnexpectedEnd("amf0 value"))
        );
        assert_eq!(
            decode_all(&[0x02, 0, 5, b'a']),
            Err(Error::UnexpectedEnd("amf0 value"))
        );
        assert_eq!(
            decode_all(&[0x07, 0, 1]),
            Err(Error::UnsupportedMarker(0x07))
        );
        assert_eq!(decode_all(&[0x11]), Err(Error::UnsupportedMarker(0x11)));
        assert_eq!(decode_all(&[0x12]), Err(Error::UnknownMarker(0x12)));
        assert_eq!(decode_all(&[0x09]), Err(Error::UnexpectedObjectEnd));
        assert_eq!(decode_all(&[0x02, 0, 1, 0xff]), Err(Error::InvalidUtf8));
        // Object without its end.
        assert_eq!(
            decode_all(&[0x03, 0, 1, b'a', 0x05]),
            Err(Error::UnexpectedEnd("amf0 value"))
        );
        // A huge strict array count on a tiny input fails without allocating.
        assert_eq!(
            decode_all(&[0x0a, 0xff, 0xff, 0xff, 0xff, 0x05]),
            Err(Error::UnexpectedEnd("amf0 value"))
        );
    }

    #[test]
    fn ecma_array_without_end_at_end_of_input() {
        let v = decode_all(&[0x08, 0, 0, 0, 0, 0, 1, b'a', 0x05]).unwrap();
        assert_eq!(v, vec![Value::ecma_array([("a", Value::Null)])]);
    }

    #[test]
    fn nesting_bomb() {
        // 100 000 nested objects {"":{"":{...}}} and strict arrays [[[...]]]:
        // refused at the depth limit, no stack overflow.
        let mut obj = Vec::new();
        let mut arr = Vec::new();
        for _ in 0..100_000 {
            obj.extend_from_slice(&[0x03, 0, 1, b'k']);
            arr.extend_from_slice(&[0x0a, 0, 0, 0, 1]);
        }
        for bomb in [obj, arr] {
            assert_eq!(decode_all(&bomb), Err(Error::TooDeep { limit: 32 }));
        }
        // Exactly at the limit is fine.
        let mut ok = vec![];
        for _ in 0..31 {
            ok.extend_from_slice(&[0x0a, 0, 0, 0, 1]);
        }
        ok.push(0x05);
        assert!(decode_all(&ok).is_ok());
        ok.insert(0, 0x01);
        ok.splice(0..1, [0x0a, 0, 0, 0, 1]);
        assert_eq!(decode_all(&ok), Err(Error::TooDeep { limit: 32 }));
    }

    #[test]
    fn value_count_limit() {
        let bytes = [0x05u8; 100];
        let limits = Limits {
            max_depth: 4,
            max_values: 99,
        };
        assert_eq!(
            decode_all_with(&bytes, limits),
            Err(Error::TooManyValues { limit: 99 })
        );
        assert_eq!(decode_all(&bytes).unwrap().len(), 100);
    }

    #[test]
    fn decode_advances() {
        let mut b = BytesMut::new();
        encode_all(&[Value::from(2.0), Value::Null], &mut b);
        let mut s: &[u8] = &b;
        assert_eq!(decode(&mut s).unwrap(), Value::Number(2.0));
        assert_eq!(s, &[0x05]);
    }

    fn arb_value() -> impl Strategy<Value = Value> {
        let leaf = prop_oneof![
            any::<f64>()
                .prop_filter("nan", |f| !f.is_nan())
                .prop_map(Value::Number),
            any::<bool>().prop_map(Value::Boolean),
            ".{0,20}".prop_map(Value::String),
            Just(Value::Null),
            Just(Value::Undefined),
            Just(Value::Unsupported),
            (any::<i64>(), any::<i16>()).prop_map(|(m, t)| Value::Date {
                millis: m as f64,
                time_zone: t
            }),
            ".{0,20}".prop_map(Value::XmlDocument),
        ];
        leaf.prop_recursive(4, 64, 8, |inner| {
            let props = prop::collection::vec((".{0,8}", inner.clone()), 0..8);
            prop_oneof![
                props.clone().prop_map(Value::Object),
                props.clone().prop_map(Value::EcmaArray),
                prop::collection::vec(inner, 0..8).prop_map(Value::StrictArray),
                (".{0,8}", props).prop_map(|(class_name, properties)| Value::TypedObject {
                    class_name,
                    properties
                }),
            ]
        })
    }

    proptest! {
        #[test]
        fn round_trip(values in prop::collection::vec(arb_value(), 0..5)) {
            let mut b = BytesMut::new();
            encode_all(&values, &mut b);
            prop_assert_eq!(b.len(), values.iter().map(Value::encoded_len).sum::<usize>());
            prop_assert_eq!(decode_all(&b).unwrap(), values);
        }

        #[test]
        fn arbitrary_bytes_never_panic(bytes in prop::collection::vec(any::<u8>(), 0..256)) {
            if let Ok(values) = decode_all(&bytes) {
                let mut b = BytesMut::new();
                encode_all(&values, &mut b);
                let again = decode_all(&b).unwrap();
                let mut b2 = BytesMut::new();
                encode_all(&again, &mut b2);
                prop_assert_eq!(b, b2);
            }
        }
    }
}
