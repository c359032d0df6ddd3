//! Any bytes as ADTS: a parsed header writes back to the same bytes, and
//! the framing decoder accounts for every byte it consumes.
#![no_main]

use bytes::BytesMut;
use libfuzzer_sys::fuzz_target;
use rts_audio::adts::{AdtsHeader, Decoder};

fuzz_target!(|data: &[u8]| {
    if let Ok(h) = AdtsHeader::parse(data) {
        let mut out = Vec::new();
        h.write(&mut out);
        assert_eq!(out.len(), h.header_len());
        assert_eq!(&out[..], &data[..h.header_len()]);
        assert_eq!(AdtsHeader::parse(&out).unwrap(), h);
        let _ = h.to_asc().to_bytes();
    }
    let mut buf = BytesMut::from(data);
    let mut d = Decoder::new();
    let mut consumed = 0;
    while let Ok(Some(frame)) = d.decode(&mut buf) {
        assert_eq!(
            frame.header.header_len() + frame.payload.len(),
            usize::from(frame.header.frame_length)
        );
        consumed += usize::from(frame.header.frame_length);
        assert_eq!(consumed + buf.len(), data.len());
    }
});
