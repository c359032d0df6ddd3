//! Arbitrary access units after a valid AudioSpecificConfig: no panic, and
//! the Opus packets that come out are well formed with monotonic,
//! non-overlapping timestamps.
#![no_main]

use std::time::Duration;

use bytes::Bytes;
use libfuzzer_sys::fuzz_target;
use rts_audio::transcode::{AacToOpus, Config};

const CONFIGS: [&[u8]; 4] = [
    &[0x12, 0x10, 0x56, 0xe5, 0x00], // 44.1 kHz stereo (ffmpeg)
    &[0x11, 0x88, 0x56, 0xe5, 0x00], // 48 kHz mono (ffmpeg)
    &[0x13, 0x90],                   // 22.05 kHz stereo
    &[0x15, 0x88],                   // 16 kHz mono
];

fuzz_target!(|data: &[u8]| {
    let Some((&first, mut rest)) = data.split_first() else {
        return;
    };
    let mut t = AacToOpus::new(Config::default()).unwrap();
    t.set_config(CONFIGS[usize::from(first % 4)]).unwrap();
    let mut pts_ms: u64 = 0;
    let mut last_end = 0u64;
    let mut check = |t: &mut AacToOpus| {
        while let Some(p) = t.pop() {
            assert!(p.timestamp >= last_end, "{} < {last_end}", p.timestamp);
            assert!(!p.data.is_empty() && p.data.len() <= 4000);
            last_end = p.timestamp + u64::from(p.duration);
        }
        while t.poll_event().is_some() {}
    };
    // Each unit: 1 byte length, 1 byte timestamp step (ms), the bytes.
    while let [len, step, tail @ ..] = rest {
        let n = usize::from(*len).min(tail.len());
        let (au, next) = tail.split_at(n);
        rest = next;
        pts_ms += u64::from(*step);
        // A step of 255 jumps backwards, exercising restarts.
        let pts = if *step == 255 {
            pts_ms.saturating_sub(5000)
        } else {
            pts_ms
        };
        t.push(Bytes::copy_from_slice(au), Duration::from_millis(pts))
            .unwrap();
        check(&mut t);
    }
    t.flush().unwrap();
    check(&mut t);
});
