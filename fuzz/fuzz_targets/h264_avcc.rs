//! AVCDecoderConfigurationRecord: parsing never panics, and whatever parses
//! writes back to a record that parses to the same value.
#![no_main]

use bytes::Bytes;
use libfuzzer_sys::fuzz_target;
use rts_h264::avcc::AvcConfig;
use rts_h264::classify::Classifier;

fuzz_target!(|data: &[u8]| {
    let data = Bytes::copy_from_slice(data);
    if let Ok(c) = AvcConfig::parse(&data) {
        assert!(matches!(c.length_size, 1 | 2 | 4));
        let written = c.to_bytes().unwrap();
        assert!(written.len() <= data.len());
        assert_eq!(AvcConfig::parse(&written).unwrap(), c);
        let _ = Classifier::new().set_config(&c);
    }
});
