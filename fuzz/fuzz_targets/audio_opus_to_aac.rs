//! Arbitrary Opus packets at arbitrary times: no panic, AAC frames of at
//! most 6144 bits per channel, and within one timeline each frame 1024
//! ticks after the last.
#![no_main]

use libfuzzer_sys::fuzz_target;
use rts_audio::opus_to_aac::{AacConfig, Event, OpusToAac};

fuzz_target!(|data: &[u8]| {
    let mut t = OpusToAac::new(AacConfig::default()).unwrap();
    let mut rest = data;
    let mut ts: u64 = 0;
    let mut last: Option<i64> = None;
    // Each packet: 1 byte length, 1 byte step (in 2.5 ms units; 255 jumps
    // back 5 s, exercising restarts), the bytes.
    while let [len, step, tail @ ..] = rest {
        let n = usize::from(*len).min(tail.len());
        let (packet, next) = tail.split_at(n);
        rest = next;
        ts = if *step == 255 {
            ts.saturating_sub(240_000)
        } else {
            ts + u64::from(*step) * 120
        };
        t.push(packet, ts);
        let mut restarted = false;
        while let Some(e) = t.poll_event() {
            restarted |= matches!(e, Event::Restart { .. });
        }
        while let Some(f) = t.pop() {
            assert!(
                !f.data.is_empty() && f.data.len() <= 1536,
                "{}",
                f.data.len()
            );
            if let (Some(prev), false) = (last, restarted) {
                assert_eq!(f.timestamp - prev, 1024);
            }
            last = Some(f.timestamp);
        }
        if restarted {
            last = None;
        }
    }
    t.flush();
    while t.pop().is_some() {}
});
