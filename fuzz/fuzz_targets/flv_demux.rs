//! Arbitrary bytes after an FLV header, fed in random splits: the demuxer
//! gives the same tags (or the same error) as with the input in one piece,
//! every tag accounts for exactly 11 + size + 4 consumed bytes, re-muxing
//! the tags reproduces the consumed input's framing, and the tag body
//! parsers never panic.
#![no_main]

use bytes::BytesMut;
use libfuzzer_sys::fuzz_target;
use rts_flv::{
    AudioTagHeader, AvcDecoderConfigurationRecord, Demuxer, Muxer, Tag, TagType, VideoTagHeader,
};

fn run(input: &[u8], cuts: &[usize]) -> (Vec<Tag>, Result<(), rts_flv::Error>, usize) {
    let mut d = Demuxer::new().with_max_tag_size(1 << 16);
    let mut buf = BytesMut::new();
    let mut tags = Vec::new();
    let mut start = 0;
    for &end in cuts.iter().chain(std::iter::once(&input.len())) {
        buf.extend_from_slice(&input[start..end]);
        start = end;
        loop {
            match d.decode(&mut buf) {
                Ok(Some(t)) => tags.push(t),
                Ok(None) => break,
                Err(e) => return (tags, Err(e), buf.len()),
            }
        }
    }
    (tags, Ok(()), buf.len())
}

fuzz_target!(|data: &[u8]| {
    let Some((&n, rest)) = data.split_first() else {
        return;
    };
    // The first byte chooses the cut points (seeded from the length).
    let mut input = b"FLV\x01\x05\0\0\0\x09".to_vec();
    input.extend_from_slice(rest);
    let mut cuts = Vec::new();
    let mut x = usize::from(n) | 1;
    for _ in 0..(n % 8) {
        x = x
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        cuts.push(x % (input.len() + 1));
    }
    cuts.sort_unstable();

    let whole = run(&input, &[]);
    let split = run(&input, &cuts);
    assert_eq!(whole.0, split.0);
    assert_eq!(whole.1, split.1);
    let (tags, result, left) = whole;
    if result.is_ok() {
        let consumed: usize = tags.iter().map(Tag::encoded_len).sum();
        if input.len() >= 13 {
            assert_eq!(13 + consumed + left, input.len());
            // Re-muxing gives the same bytes except the PreviousTagSize
            // fields (the demuxer is lenient about them).
            let mut out = BytesMut::new();
            let mut m = Muxer::tags_only();
            for t in &tags {
                m.encode(t, &mut out).unwrap();
            }
            let mut pos = 0;
            let body = &input[13..13 + consumed];
            for t in &tags {
                let len = 11 + t.data.len();
                assert_eq!(out[pos..pos + len][1..], body[pos..pos + len][1..]);
                assert_eq!(out[pos] & 0x3f, body[pos] & 0x3f);
                pos += len + 4;
            }
        }
    }
    for t in &tags {
        match t.tag_type {
            TagType::Video => {
                if let Ok((h, payload)) = VideoTagHeader::parse(&t.data) {
                    assert!(payload.len() < t.data.len());
                    if h.is_sequence_header() {
                        let _ = AvcDecoderConfigurationRecord::parse(&payload);
                    }
                }
            }
            TagType::Audio => {
                if let Ok((_, payload)) = AudioTagHeader::parse(&t.data) {
                    assert!(payload.len() < t.data.len());
                }
            }
            _ => {
                let _ = rts_flv::ScriptData::parse(&t.data);
            }
        }
    }
});
