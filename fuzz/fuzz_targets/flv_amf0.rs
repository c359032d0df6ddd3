//! Arbitrary bytes as an AMF0 sequence: decoding never panics; whatever
//! decodes re-encodes to bytes that decode to the same values (compared by
//! their encoding, so NaN numbers count as equal), and `encoded_len` is the
//! encoded size.
#![no_main]

use bytes::BytesMut;
use libfuzzer_sys::fuzz_target;
use rts_flv::amf0::{self, Limits, Value};

fn encode(values: &[Value]) -> BytesMut {
    let mut b = BytesMut::new();
    amf0::encode_all(values, &mut b);
    assert_eq!(
        b.len(),
        values.iter().map(Value::encoded_len).sum::<usize>()
    );
    b
}

fuzz_target!(|data: &[u8]| {
    let limits = Limits {
        max_depth: 16,
        max_values: 10_000,
    };
    let Ok(values) = amf0::decode_all_with(data, limits) else {
        return;
    };
    let first = encode(&values);
    assert!(first.len() <= data.len() + 4 * values.len() + 8 * count(&values));
    let again = amf0::decode_all_with(&first, limits).expect("re-encoded values decode");
    assert_eq!(again.len(), values.len());
    assert_eq!(encode(&again), first);
    // The script-tag reader agrees with the plain decoder on the name.
    if let Ok(s) = rts_flv::ScriptData::parse(data) {
        assert!(matches!(values.first(), Some(Value::String(_))));
        let _ = s.is_metadata();
    }
});

/// Number of values at every level (each may gain an object end or count).
fn count(values: &[Value]) -> usize {
    values
        .iter()
        .map(|v| {
            1 + match v {
                Value::StrictArray(a) => count(a),
                Value::Object(p)
                | Value::EcmaArray(p)
                | Value::TypedObject { properties: p, .. } => {
                    p.iter().map(|(_, v)| count(std::slice::from_ref(v))).sum()
                }
                _ => 0,
            }
        })
        .sum()
}
