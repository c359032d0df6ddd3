//! Arbitrary tag bodies through the audio/video tag header parsers and the
//! AVCDecoderConfigurationRecord parser: no panic; whatever parses and can
//! be written back parses to the same value, with `encoded_len` bytes, and
//! the payload is exactly what follows the header.
#![no_main]

use bytes::Bytes;
use libfuzzer_sys::fuzz_target;
use rts_flv::{AudioTagHeader, AvcDecoderConfigurationRecord, VideoTagHeader};

fuzz_target!(|data: &[u8]| {
    let body = Bytes::copy_from_slice(data);
    if let Ok((h, payload)) = VideoTagHeader::parse(&body) {
        assert!(data.ends_with(&payload));
        let mut out = Vec::new();
        if h.encode(&mut out).is_ok() {
            assert_eq!(out.len(), h.encoded_len());
            assert_eq!(VideoTagHeader::parse(&Bytes::from(out)).unwrap().0, h);
        }
    }
    if let Ok((h, payload)) = AudioTagHeader::parse(&body) {
        assert!(data.ends_with(&payload));
        let mut out = Vec::new();
        if h.encode(&mut out).is_ok() {
            assert_eq!(out.len(), h.encoded_len());
            assert_eq!(AudioTagHeader::parse(&Bytes::from(out)).unwrap().0, h);
        }
    }
    if let Ok(r) = AvcDecoderConfigurationRecord::parse(&body) {
        let mut out = Vec::new();
        r.encode(&mut out)
            .expect("a parsed record fits its length fields");
        assert_eq!(out.len(), r.encoded_len());
        assert!(out.len() <= data.len());
        assert_eq!(
            AvcDecoderConfigurationRecord::parse(&Bytes::from(out)).unwrap(),
            r
        );
    }
});
