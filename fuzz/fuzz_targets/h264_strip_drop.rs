//! The stripper in drop mode on arbitrary access units (after a real
//! configuration, or one from the input): never panics; output times
//! strictly increase; exactly the access units a mirror classifier calls
//! non-B come out, zero-copy; a referenced B is the only refusal reason
//! besides malformed input.
#![no_main]

use bytes::Bytes;
use libfuzzer_sys::fuzz_target;
use rts_h264::avcc::AvcConfig;
use rts_h264::classify::{Classifier, FrameKind};
use rts_h264::{AccessUnit, Error, Mode, Output, Settings, Stripper};

/// x264 Main 640x360 (fixtures/media/main_bframes_nonref_aaclc48k.flv).
const RECORD: &[u8] = &[
    0x01, 0x4d, 0x40, 0x1e, 0xff, 0xe1, 0x00, 0x18, 0x67, 0x4d, 0x40, 0x1e, 0xe8, 0x80, 0x50, 0x17,
    0xfc, 0xb8, 0x08, 0x80, 0x00, 0x00, 0x03, 0x00, 0x80, 0x00, 0x00, 0x1e, 0x07, 0x8b, 0x16, 0x89,
    0x01, 0x00, 0x04, 0x68, 0xeb, 0xec, 0xb2,
];

fuzz_target!(|data: &[u8]| {
    let mut rest = data;
    let record = match rest.split_first() {
        Some((&n, tail)) if n & 1 == 1 && tail.len() >= usize::from(n) => {
            rest = &tail[usize::from(n)..];
            Bytes::copy_from_slice(&tail[..usize::from(n)])
        }
        Some((_, tail)) => {
            rest = tail;
            Bytes::from_static(RECORD)
        }
        None => return,
    };
    let mut s = Stripper::new(Settings::new(Mode::Drop));
    let mut mirror = Classifier::new();
    if s.push_config(record.clone()).is_err() {
        return;
    }
    mirror
        .set_config(&AvcConfig::parse(&record).unwrap())
        .unwrap();
    let mut dts = 0i64;
    let mut expected = Vec::new();
    let mut last: Option<i64> = None;
    let mut out = 0usize;
    while rest.len() >= 4 {
        let len = usize::from(u16::from_be_bytes([rest[0], rest[1]])).min(rest.len() - 4);
        dts += i64::from(rest[2]);
        let pts = dts + i64::from(rest[3] as i8);
        let au = Bytes::copy_from_slice(&rest[4..4 + len]);
        rest = &rest[4 + len..];
        let want = mirror.classify(&au);
        let res = s.push(AccessUnit {
            dts,
            pts,
            data: au.clone(),
        });
        match want {
            Ok(Some(c)) if c.kind == FrameKind::B || c.has_b_slice => {
                if c.referenced {
                    assert_eq!(res, Err(Error::ReferencedBFrame));
                } else {
                    assert!(res.is_ok());
                }
            }
            Ok(Some(_)) => {
                assert!(res.is_ok());
                expected.push(au);
            }
            Ok(None) => assert!(res.is_ok()),
            Err(_) => assert!(res.is_err()),
        }
        while let Some(o) = s.pop() {
            if let Output::Frame(f) = o {
                assert!(last.is_none_or(|l| f.time > l), "times must increase");
                last = Some(f.time);
                assert_eq!(f.data.as_ptr(), expected[out].as_ptr());
                out += 1;
            }
        }
    }
    assert_eq!(out, expected.len());
    assert!(!s.is_transcoding());
});
