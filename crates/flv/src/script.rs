//! Script data tags (FLV specification E.4.4): an AMF0 name followed by a
//! value, in practice `onMetaData` and an ECMA array of stream properties.
//!
//! RTMP publishers send metadata as `@setDataFrame`, `onMetaData`, value;
//! a file or HTTP-FLV stream carries plain `onMetaData`, value.
//! [`ScriptData::parse`] accepts both, [`strip_set_data_frame`] turns the
//! first into the second without copying.

use bytes::{BufMut, Bytes};

use crate::Error;
use crate::amf0::{self, Value};

/// The name of the metadata script tag.
pub const ON_METADATA: &str = "onMetaData";
/// The RTMP data-message wrapper that asks the server to store metadata.
pub const SET_DATA_FRAME: &str = "@setDataFrame";

/// A decoded script tag.
#[derive(Debug, Clone, PartialEq)]
pub struct ScriptData {
    /// The handler name, e.g. `onMetaData` (`@setDataFrame` removed).
    pub name: String,
    /// The first argument (`Null` if there is none).
    pub value: Value,
}

impl ScriptData {
    /// An `onMetaData` tag body with `value` (normally an ECMA array).
    pub fn metadata(value: Value) -> Self {
        ScriptData {
            name: ON_METADATA.to_owned(),
            value,
        }
    }

    /// Parses a script tag body (or an RTMP data message), unwrapping
    /// `@setDataFrame`.
    pub fn parse(data: &[u8]) -> Result<Self, Error> {
        let mut values = amf0::decode_all(data)?.into_iter();
        let mut name = match values.next() {
            Some(Value::String(s)) => s,
            _ => return Err(Error::ScriptName),
        };
        if name == SET_DATA_FRAME {
            name = match values.next() {
                Some(Value::String(s)) => s,
                _ => return Err(Error::ScriptName),
            };
        }
        Ok(ScriptData {
            name,
            value: values.next().unwrap_or(Value::Null),
        })
    }

    /// True for `onMetaData`.
    pub fn is_metadata(&self) -> bool {
        self.name == ON_METADATA
    }

    /// A property of the metadata (`width`, `framerate`, ...).
    pub fn get(&self, key: &str) -> Option<&Value> {
        self.value.get(key)
    }

    /// A numeric property of the metadata.
    pub fn number(&self, key: &str) -> Option<f64> {
        self.get(key).and_then(Value::as_f64)
    }

    /// Appends the plain form: name, value.
    pub fn encode(&self, dst: &mut impl BufMut) {
        amf0::encode(&Value::String(self.name.clone()), dst);
        amf0::encode(&self.value, dst);
    }

    /// Appends the RTMP form: `@setDataFrame`, name, value.
    pub fn encode_set_data_frame(&self, dst: &mut impl BufMut) {
        amf0::encode(&Value::from(SET_DATA_FRAME), dst);
        self.encode(dst);
    }

    /// Number of bytes [`encode`](Self::encode) writes.
    pub fn encoded_len(&self) -> usize {
        Value::String(self.name.clone())
            .encoded_len()
            .saturating_add(self.value.encoded_len())
    }
}

/// If `data` starts with the AMF0 string `@setDataFrame`, the rest of it
/// (a zero-copy slice holding the plain `onMetaData` form); otherwise
/// `data` itself.
pub fn strip_set_data_frame(data: &Bytes) -> Bytes {
    const PREFIX: &[u8] = b"\x02\x00\x0d@setDataFrame";
    if data.starts_with(PREFIX) {
        data.slice(PREFIX.len()..)
    } else {
        data.clone()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::BytesMut;

    fn meta() -> ScriptData {
        ScriptData::metadata(Value::ecma_array([
            ("width", Value::from(640.0)),
            ("height", Value::from(360.0)),
            ("videocodecid", Value::from(7.0)),
            ("encoder", Value::from("Lavf59.27.100")),
        ]))
    }

    #[test]
    fn plain_and_wrapped() {
        let mut plain = BytesMut::new();
        meta().encode(&mut plain);
        assert_eq!(&plain[..13], b"\x02\x00\x0aonMetaData");
        assert_eq!(plain.len(), meta().encoded_len());
        let mut wrapped = BytesMut::new();
        meta().encode_set_data_frame(&mut wrapped);
        for body in [&plain, &wrapped] {
            let s = ScriptData::parse(body).unwrap();
            assert!(s.is_metadata());
            assert_eq!(s, meta());
            assert_eq!(s.number("width"), Some(640.0));
        }
        assert_eq!(strip_set_data_frame(&wrapped.freeze()), plain);
        let plain = plain.freeze();
        assert_eq!(strip_set_data_frame(&plain), plain);
    }

    #[test]
    fn fixture_metadata() {
        // The script tag of baseline_aaclc44k.flv (ffmpeg 5.1), from the
        // first value to the duration property.
        let body = b"\x02\x00\x0aonMetaData\x08\x00\x00\x00\x0d\x00\x08duration\x00\x40\x08\x2f\x1a\x9f\xbe\x76\xc9\x00\x00\x09";
        let s = ScriptData::parse(body).unwrap();
        assert!((s.number("duration").unwrap() - 3.023).abs() < 1e-9);
    }

    #[test]
    fn errors() {
        assert_eq!(ScriptData::parse(&[0x05]), Err(Error::ScriptName));
        assert_eq!(ScriptData::parse(&[]), Err(Error::ScriptName));
        assert_eq!(
            ScriptData::parse(b"\x02\x00\x0d@setDataFrame\x05"),
            Err(Error::ScriptName)
        );
        assert_eq!(
            ScriptData::parse(b"\x02\x00\x0aonMetaData\x08\x00"),
            Err(Error::UnexpectedEnd("amf0 value"))
        );
    }
}
