//! Any bytes as an AudioSpecificConfig: no panic; whatever parses builds
//! back to exactly the same bytes and re-parses to the same value.
#![no_main]

use libfuzzer_sys::fuzz_target;
use rts_audio::asc::AudioSpecificConfig;

fuzz_target!(|data: &[u8]| {
    if let Ok(asc) = AudioSpecificConfig::parse(data) {
        let built = asc.to_bytes();
        assert_eq!(built, data, "{asc:?}");
        assert_eq!(AudioSpecificConfig::parse(&built).unwrap(), asc);
        let _ = (asc.profile(), asc.channels(), asc.output_sample_rate());
    }
});
