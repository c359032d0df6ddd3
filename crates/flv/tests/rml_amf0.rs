//! AMF0 against an independent implementation, `rml_amf0` (used by the
//! rml_rtmp server): what we encode it decodes to the same values, and what
//! it encodes we decode to the same values, on the subset of AMF0 it supports.

use std::collections::HashMap;
use std::io::Cursor;

use bytes::BytesMut;
use proptest::prelude::*;
use rml_amf0::Amf0Value;
use rts_flv::amf0::{self, Value};

fn to_rml(v: &Value) -> Amf0Value {
    match v {
        Value::Number(n) => Amf0Value::Number(*n),
        Value::Boolean(b) => Amf0Value::Boolean(*b),
        Value::String(s) => Amf0Value::Utf8String(s.clone()),
        Value::Null => Amf0Value::Null,
        Value::Undefined => Amf0Value::Undefined,
        Value::Object(p) | Value::EcmaArray(p) => Amf0Value::Object(
            p.iter()
                .map(|(k, v)| (k.clone(), to_rml(v)))
                .collect::<HashMap<_, _>>(),
        ),
        Value::StrictArray(a) => Amf0Value::StrictArray(a.iter().map(to_rml).collect()),
        other => panic!("not in rml_amf0's subset: {other:?}"),
    }
}

fn arb_value() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        (-1e15f64..1e15).prop_map(Value::Number),
        any::<bool>().prop_map(Value::Boolean),
        "[a-zA-Z0-9 ?=&/:.]{0,24}".prop_map(Value::String),
        Just(Value::Null),
        Just(Value::Undefined),
    ];
    leaf.prop_recursive(3, 48, 6, |inner| {
        // Unique keys: rml_amf0 keeps properties in a HashMap.
        let props = prop::collection::btree_map("[a-zA-Z]{1,10}", inner.clone(), 0..6)
            .prop_map(|m| m.into_iter().collect::<Vec<_>>());
        prop_oneof![
            props.clone().prop_map(Value::Object),
            props.prop_map(Value::EcmaArray),
            prop::collection::vec(inner, 0..6).prop_map(Value::StrictArray),
        ]
    })
}

proptest! {
    #[test]
    fn rml_amf0_reads_what_we_write(values in prop::collection::vec(arb_value(), 1..5)) {
        let mut b = BytesMut::new();
        amf0::encode_all(&values, &mut b);
        let theirs = rml_amf0::deserialize(&mut Cursor::new(&b[..])).unwrap();
        let expected: Vec<Amf0Value> = values.iter().map(to_rml).collect();
        prop_assert_eq!(theirs, expected);
    }

    #[test]
    fn we_read_what_rml_amf0_writes(values in prop::collection::vec(arb_value(), 1..5)) {
        // rml_amf0 writes ECMA arrays as objects; compare in its model.
        let theirs: Vec<Amf0Value> = values.iter().map(to_rml).collect();
        let bytes = rml_amf0::serialize(&theirs).unwrap();
        let ours = amf0::decode_all(&bytes).unwrap();
        let back: Vec<Amf0Value> = ours.iter().map(to_rml).collect();
        prop_assert_eq!(back, theirs);
    }
}

#[test]
fn fixture_metadata_both_ways() {
    let Some(file) = rts_testkit::fixture("media/baseline_aaclc44k.flv") else {
        return;
    };
    let data = std::fs::read(file).unwrap();
    // The script tag body starts after the 13-byte file header and the
    // 11-byte tag header; its size is in the tag header.
    let size = usize::from(data[14]) << 16 | usize::from(data[15]) << 8 | usize::from(data[16]);
    let body = &data[24..24 + size];
    let ours = amf0::decode_all(body).unwrap();
    let theirs = rml_amf0::deserialize(&mut Cursor::new(body)).unwrap();
    assert_eq!(ours.iter().map(to_rml).collect::<Vec<_>>(), theirs);
    assert_eq!(ours[1].get("width").and_then(Value::as_f64), Some(640.0));
}
