//! Classification (IDR/I/P/B from slice headers) against ffprobe's
//! `pict_type` for every frame of the fixtures and of streams generated with
//! ffmpeg/x264 and GStreamer x264enc.

mod common;

use rts_h264::avcc::AvcConfig;
use rts_h264::classify::{Classifier, FrameKind};

#[test]
fn classification_matches_ffprobe_for_every_frame() {
    let dir = tempfile::tempdir().unwrap();
    let Some(inputs) = common::all_inputs(dir.path(), true) else {
        return;
    };
    for input in inputs {
        let Some(expected) = common::ffprobe_pict_types(&input.path) else {
            return;
        };
        let (configs, aus) = common::video_of(&common::read_flv(&input.path));
        let mut c = Classifier::new();
        c.set_config(&AvcConfig::parse(&configs[0]).unwrap())
            .unwrap();
        let mut ours: Vec<(i64, FrameKind, bool)> = aus
            .iter()
            .map(|au| {
                let k = c.classify(&au.data).unwrap().expect("a picture");
                (au.dts + au.cts, k.kind, k.referenced)
            })
            .collect();
        ours.sort_by_key(|&(pts, _, _)| pts);
        let got: Vec<char> = ours.iter().map(|&(_, k, _)| k.pict_type()).collect();
        assert_eq!(
            got.iter().collect::<String>(),
            expected.iter().collect::<String>(),
            "{}: our classification (presentation order) differs from ffprobe",
            input.name
        );
        assert!(
            matches!(
                ours.iter().find(|o| o.0 == ours[0].0).unwrap().1,
                FrameKind::Idr
            ),
            "{} starts with an IDR",
            input.name
        );
        let b = ours.iter().filter(|o| o.1 == FrameKind::B).count();
        let b_ref = ours.iter().filter(|o| o.1 == FrameKind::B && o.2).count();
        eprintln!(
            "{}: {} frames, {} B ({} referenced)",
            input.name,
            got.len(),
            b,
            b_ref
        );
        if ["high_bpyramid", "normal", "strict"]
            .iter()
            .any(|n| input.name.contains(n))
        {
            assert!(
                b_ref > 0,
                "{}: b-pyramid has referenced B-frames",
                input.name
            );
        }
        if input.name.contains("nonref") || input.name.contains("nopyramid") {
            assert_eq!(b_ref, 0, "{}: no referenced B-frames", input.name);
        }
    }
}
