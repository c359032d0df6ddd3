//! The stripper against real peers: ffprobe must see only I and P frames,
//! `has_b_frames=0`, the same frame count, strictly increasing timestamps
//! with dts == pts, and ffmpeg's PSNR against the source at least 35 dB.

mod common;

use rts_h264::{Mode, Settings};

#[test]
fn transcode_every_input_to_ip_only() {
    let Some(_) = rts_testkit::tool("ffprobe") else {
        return;
    };
    let Some(_) = rts_testkit::tool("ffmpeg") else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let Some(inputs) = common::all_inputs(dir.path(), true) else {
        return;
    };
    for input in inputs {
        let out = dir.path().join(format!("{}.stripped.flv", input.name));
        let s = common::strip_file(&input.path, &out, Settings::new(Mode::Transcode)).unwrap();
        let st = s.stats();
        let frames_in = common::ffprobe_frames(&input.path);
        let frames = common::ffprobe_frames(&out);
        let types: String = frames.iter().map(|f| f.0).collect();
        eprintln!(
            "{}: in {} out {} (B in {}), max pending {} (bound {}), types {types}",
            input.name,
            st.frames_in,
            st.frames_out,
            st.b_frames_in,
            s.max_pending_frames(),
            s.max_added_delay_frames()
        );
        assert!(
            types.chars().all(|c| c == 'I' || c == 'P'),
            "{}: {types}",
            input.name
        );
        assert_eq!(frames.len(), frames_in.len(), "{}: frame count", input.name);
        assert_eq!(st.frames_out, st.frames_in, "{}", input.name);
        assert_eq!(
            common::ffprobe_stream(&out, "has_b_frames"),
            "0",
            "{}",
            input.name
        );
        assert_eq!(
            common::ffprobe_stream(&out, "profile"),
            "Constrained Baseline",
            "{}",
            input.name
        );
        let packets = common::ffprobe_packet_times(&out);
        assert_eq!(packets.len(), frames.len());
        for w in packets.windows(2) {
            assert!(w[1].0 > w[0].0, "{}: dts not increasing {w:?}", input.name);
        }
        assert!(
            packets.iter().all(|p| p.0 == p.1),
            "{}: dts != pts",
            input.name
        );
        let psnr = common::psnr(&out, &input.path);
        eprintln!("{}: PSNR {psnr:.2} dB", input.name);
        assert!(psnr >= 35.0, "{}: PSNR {psnr:.2} dB below 35", input.name);
    }
}

#[test]
fn auto_mode_switch_keeps_pictures_at_their_times() {
    let Some(_) = rts_testkit::tool("ffprobe") else {
        return;
    };
    let Some(_) = rts_testkit::tool("ffmpeg") else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    for name in ["high_bpyramid_aaclc44k", "main_bframes_nonref_aaclc48k"] {
        let Some(input) = rts_testkit::fixture(&format!("media/{name}.flv")) else {
            return;
        };
        let out = dir.path().join(format!("{name}.auto.flv"));
        let s = common::strip_file(&input, &out, Settings::new(Mode::Auto)).unwrap();
        assert!(s.is_transcoding());
        let frames = common::ffprobe_frames(&out);
        let types: String = frames.iter().map(|f| f.0).collect();
        assert!(
            types.chars().all(|c| c == 'I' || c == 'P'),
            "{name}: {types}"
        );
        let input_frames = common::ffprobe_frames(&input).len();
        assert_eq!(frames.len(), input_frames, "{name}: one output per input");
        // A picture shown at another picture's time would drop PSNR far
        // below this (testsrc2 moves every frame).
        let psnr = common::psnr(&out, &input);
        eprintln!("{name} auto: {} frames, PSNR {psnr:.2} dB", frames.len());
        assert!(psnr >= 35.0, "{name}: PSNR {psnr:.2}");
    }
}
