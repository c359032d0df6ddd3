//! The `flv-strip-bframes` example on every media fixture, checked with
//! ffprobe: only I and P frames, `has_b_frames=0`, the same number of video
//! frames (transcode) and audio packets (copied untouched), strictly
//! increasing video timestamps with dts == pts.

use std::path::Path;
use std::process::Command;
use std::time::Duration;

/// A scratch folder of this test process, removed when dropped.
struct Scratch(std::path::PathBuf);
impl Scratch {
    fn new(name: &str) -> Self {
        let p = std::env::temp_dir().join(format!("rts-h264-{name}-{}", std::process::id()));
        std::fs::create_dir_all(&p).unwrap();
        Self(p)
    }
    fn path(&self) -> &Path {
        &self.0
    }
}
impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn strip(input: &Path, output: &Path, mode: &str) -> String {
    rts_testkit::run_ok(
        Command::new(rts_testkit::example_bin("flv-strip-bframes"))
            .arg(input)
            .arg(output)
            .args(["--mode", mode]),
        "flv-strip-bframes",
        Duration::from_secs(300),
    )
    .unwrap()
}

fn probe(ffprobe: &Path, file: &Path, args: &[&str]) -> String {
    rts_testkit::run_ok(
        Command::new(ffprobe)
            .args(["-v", "error", "-select_streams", "v:0"])
            .args(args)
            .args(["-of", "csv=p=0"])
            .arg(file),
        "ffprobe",
        Duration::from_secs(60),
    )
    .unwrap()
}

fn pict_types(ffprobe: &Path, file: &Path) -> String {
    probe(
        ffprobe,
        file,
        &["-show_frames", "-show_entries", "frame=pict_type"],
    )
    .lines()
    .filter_map(|l| l.split(',').next().map(str::trim).filter(|t| t.len() == 1))
    .collect()
}

#[test]
fn strips_every_fixture() {
    let Some(ffprobe) = rts_testkit::tool("ffprobe") else {
        return;
    };
    let Some(fixtures) = rts_testkit::media_fixtures() else {
        return;
    };
    let dir = Scratch::new("fixtures");
    for input in fixtures {
        let out = dir.path().join("out.flv");
        let summary = strip(&input, &out, "transcode");
        assert!(summary.contains("frames in 90, frames out 90"), "{summary}");
        let types = pict_types(&ffprobe, &out);
        assert_eq!(types.len(), 90, "{}: {types}", input.display());
        assert!(
            types.chars().all(|c| c == 'I' || c == 'P'),
            "{}: {types}",
            input.display()
        );
        assert_eq!(
            probe(&ffprobe, &out, &["-show_entries", "stream=has_b_frames"]).trim(),
            "0"
        );
        let (_, audio_in) =
            rts_testkit::ffprobe_packet_counts(&ffprobe, input.to_str().unwrap()).unwrap();
        let (video_out, audio_out) =
            rts_testkit::ffprobe_packet_counts(&ffprobe, out.to_str().unwrap()).unwrap();
        assert_eq!(
            (video_out, audio_out),
            (90, audio_in),
            "{}",
            input.display()
        );
        let times: Vec<(f64, f64)> = probe(
            &ffprobe,
            &out,
            &["-show_entries", "packet=dts_time,pts_time"],
        )
        .lines()
        .filter_map(|l| {
            let (a, b) = l.split_once(',')?;
            Some((a.trim().parse().ok()?, b.trim().parse().ok()?))
        })
        .collect();
        assert_eq!(times.len(), 90);
        assert!(times.iter().all(|(p, d)| p == d), "dts == pts");
        assert!(
            times.windows(2).all(|w| w[1].1 > w[0].1),
            "strictly increasing"
        );
    }
}

#[test]
fn drop_mode_and_its_refusal() {
    let Some(ffprobe) = rts_testkit::tool("ffprobe") else {
        return;
    };
    let Some(nonref) = rts_testkit::fixture("media/main_bframes_nonref_aaclc48k.flv") else {
        return;
    };
    let Some(pyramid) = rts_testkit::fixture("media/high_bpyramid_aaclc44k.flv") else {
        return;
    };
    let dir = Scratch::new("drop");
    let out = dir.path().join("dropped.flv");
    let summary = strip(&nonref, &out, "drop");
    assert!(summary.contains("frames in 90, frames out 38"), "{summary}");
    let types = pict_types(&ffprobe, &out);
    assert_eq!(types.len(), 38);
    assert!(types.chars().all(|c| c == 'I' || c == 'P'), "{types}");
    let res = rts_testkit::run(
        Command::new(rts_testkit::example_bin("flv-strip-bframes"))
            .arg(&pyramid)
            .arg(&out)
            .args(["--mode", "drop"]),
        "flv-strip-bframes",
        Duration::from_secs(60),
    )
    .unwrap();
    assert!(!res.status.success());
    assert!(
        String::from_utf8_lossy(&res.stderr).contains("referenced b-frame"),
        "{}",
        String::from_utf8_lossy(&res.stderr)
    );
}
