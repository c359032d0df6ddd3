//! The `aac-to-opus` example against real peers: ffmpeg's AAC encoder makes
//! the input, ffmpeg (libopus's decoder) decodes our Ogg Opus, and the test
//! compares the two signals: dominant frequency, SNR after delay alignment,
//! duration, stereo placement, and drift over ten minutes.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use rts_testkit::{run_ok, tool};

fn ffmpeg() -> Option<PathBuf> {
    tool("ffmpeg")
}

fn tmp(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("rts-audio-test-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    dir.join(name)
}

/// Runs ffmpeg with `args` (quiet, overwrite).
fn ff(ffmpeg: &Path, args: &[&str]) {
    let mut cmd = Command::new(ffmpeg);
    cmd.args(["-hide_banner", "-loglevel", "error", "-y"])
        .args(args);
    run_ok(&mut cmd, "ffmpeg", Duration::from_secs(120)).unwrap();
}

/// Decodes any file to interleaved f32 at 48 kHz with `channels`.
fn decode(ffmpeg: &Path, file: &Path, channels: u32) -> Vec<f32> {
    let raw = tmp(&format!(
        "{}.f32",
        file.file_name().unwrap().to_string_lossy()
    ));
    let ch = channels.to_string();
    ff(
        ffmpeg,
        &[
            "-i",
            file.to_str().unwrap(),
            "-f",
            "f32le",
            "-ar",
            "48000",
            "-ac",
            &ch,
            raw.to_str().unwrap(),
        ],
    );
    std::fs::read(&raw)
        .unwrap()
        .chunks_exact(4)
        .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
        .collect()
}

fn transcode(input: &Path, output: &Path, extra: &[&str]) -> String {
    let mut cmd = Command::new(rts_testkit::example_bin("aac-to-opus"));
    cmd.arg(input).arg(output).args(extra);
    run_ok(&mut cmd, "aac-to-opus", Duration::from_secs(300)).unwrap()
}

fn channel(x: &[f32], channels: usize, c: usize) -> Vec<f32> {
    x.iter().skip(c).step_by(channels).copied().collect()
}

/// Goertzel power of `f` Hz in `x` at 48 kHz.
fn power(x: &[f32], f: f64) -> f64 {
    let w = 2.0 * std::f64::consts::PI * f / 48_000.0;
    let coeff = 2.0 * w.cos();
    let (mut s1, mut s2) = (0.0f64, 0.0f64);
    for &v in x {
        let s0 = f64::from(v) + coeff * s1 - s2;
        s2 = s1;
        s1 = s0;
    }
    s1 * s1 + s2 * s2 - coeff * s1 * s2
}

/// The dominant frequency: a coarse scan then a fine one.
fn dominant(x: &[f32]) -> f64 {
    let coarse = &x[..x.len().min(4800)];
    let mut best = (0.0, 0.0);
    let mut f = 50.0;
    while f < 16_000.0 {
        let p = power(coarse, f);
        if p > best.1 {
            best = (f, p);
        }
        f += 10.0;
    }
    let fine = &x[..x.len().min(24_000)];
    let center = best.0;
    let mut best = (0.0, 0.0);
    let mut f = center - 15.0;
    while f <= center + 15.0 {
        let p = power(fine, f);
        if p > best.1 {
            best = (f, p);
        }
        f += 0.5;
    }
    best.0
}

/// Best SNR (dB) of `out` against `reference` over lags in -max..=max
/// samples, on the middle of the signal; returns (snr, lag).
fn aligned_snr(reference: &[f32], out: &[f32], max_lag: i64) -> (f64, i64) {
    let n = reference.len().min(out.len()) as i64;
    let (start, end) = (4800i64.min(n / 4), n - 4800i64.min(n / 4) - max_lag);
    let mut best = (f64::MIN, 0);
    for lag in -max_lag..=max_lag {
        let (mut sig, mut err) = (0.0f64, 0.0f64);
        for i in start.max(-lag)..end {
            let r = f64::from(reference[i as usize]);
            let o = f64::from(out[(i + lag) as usize]);
            sig += r * r;
            err += (o - r) * (o - r);
        }
        let snr = 10.0 * (sig / err.max(1e-20)).log10();
        if snr > best.0 {
            best = (snr, lag);
        }
    }
    best
}

#[test]
fn tones_survive_transcoding_decoded_by_ffmpeg() {
    let Some(ffmpeg) = ffmpeg() else { return };
    let mut failures = Vec::new();
    for rate in [22_050u32, 44_100, 48_000] {
        for channels in [1u32, 2] {
            for freq in [440u32, 1000, 6000] {
                let name = format!("tone_{freq}_{rate}_{channels}");
                let src = tmp(&format!("{name}.flv"));
                let ogg = tmp(&format!("{name}.ogg"));
                ff(
                    &ffmpeg,
                    &[
                        "-f",
                        "lavfi",
                        "-i",
                        &format!("sine=frequency={freq}:sample_rate={rate}:duration=1"),
                        "-c:a",
                        "aac",
                        "-b:a",
                        "128k",
                        "-ac",
                        &channels.to_string(),
                        src.to_str().unwrap(),
                    ],
                );
                let summary = transcode(&src, &ogg, &[]);
                assert!(summary.contains("AAC-LC"), "{summary}");
                let reference = decode(&ffmpeg, &src, channels);
                let out = decode(&ffmpeg, &ogg, channels);
                let c = channels as usize;
                let (r0, o0) = (channel(&reference, c, 0), channel(&out, c, 0));
                let f = dominant(&o0[4800..]);
                let (snr, lag) = aligned_snr(&r0, &o0, 48);
                let (ref_len, out_len) = (r0.len() as i64, o0.len() as i64);
                println!(
                    "{name}: dominant {f:.1} Hz, snr {snr:.1} dB at lag {lag}, {out_len} vs {ref_len} samples"
                );
                if (f - f64::from(freq)).abs() > f64::from(freq) * 0.01 {
                    failures.push(format!("{name}: dominant {f} Hz"));
                }
                if snr < 20.0 {
                    failures.push(format!("{name}: snr {snr:.1} dB"));
                }
                if (out_len - ref_len).abs() > 960 {
                    failures.push(format!("{name}: {out_len} samples vs {ref_len}"));
                }
                if c == 2 {
                    let (r1, o1) = (channel(&reference, 2, 1), channel(&out, 2, 1));
                    let (snr1, _) = aligned_snr(&r1, &o1, 48);
                    if snr1 < 20.0 {
                        failures.push(format!("{name}: right channel snr {snr1:.1} dB"));
                    }
                }
            }
        }
    }
    assert!(failures.is_empty(), "{failures:#?}");
}

#[test]
fn left_only_tone_stays_left() {
    let Some(ffmpeg) = ffmpeg() else { return };
    let src = tmp("left.aac");
    let ogg = tmp("left.ogg");
    ff(
        &ffmpeg,
        &[
            "-f",
            "lavfi",
            "-i",
            "sine=frequency=1000:sample_rate=44100:duration=1",
            "-af",
            "pan=stereo|c0=c0|c1=0*c0",
            "-c:a",
            "aac",
            "-b:a",
            "128k",
            src.to_str().unwrap(),
        ],
    );
    transcode(&src, &ogg, &[]);
    let out = decode(&ffmpeg, &ogg, 2);
    let energy = |x: &[f32]| x.iter().map(|v| f64::from(*v).powi(2)).sum::<f64>();
    let (l, r) = (energy(&channel(&out, 2, 0)), energy(&channel(&out, 2, 1)));
    let db = 10.0 * (l / r.max(1e-20)).log10();
    println!("left/right energy {db:.1} dB");
    assert!(db > 30.0, "left/right only {db:.1} dB apart");
}

/// Ten minutes with a 50 ms beep every 10 s, FLV (millisecond timestamps):
/// the beeps in ffmpeg's decode of our Ogg stay where the source has them,
/// within 1 ms, from the first to the last.
#[test]
fn ten_minutes_do_not_drift() {
    let Some(ffmpeg) = ffmpeg() else { return };
    let src = tmp("ten_minutes.flv");
    let ogg = tmp("ten_minutes.ogg");
    ff(
        &ffmpeg,
        &[
            "-f",
            "lavfi",
            "-i",
            "aevalsrc=if(lt(mod(t\\,10)\\,0.05)\\,0.5*sin(2*PI*2000*t)\\,0):s=44100:d=600",
            "-c:a",
            "aac",
            "-b:a",
            "64k",
            "-ac",
            "1",
            src.to_str().unwrap(),
        ],
    );
    let summary = transcode(&src, &ogg, &["--complexity", "0", "--frame", "60"]);
    println!("{summary}");
    assert!(
        summary.contains("0 restarts, 0 discontinuities"),
        "{summary}"
    );
    let reference = decode(&ffmpeg, &src, 1);
    let out = decode(&ffmpeg, &ogg, 1);
    // Onset of each beep: first sample above half the beep's amplitude.
    let onsets = |x: &[f32]| -> Vec<f64> {
        let mut v = Vec::new();
        let mut i = 0;
        while i < x.len() {
            if x[i].abs() > 0.25 {
                v.push(i as f64 / 48.0); // ms
                i += 48_000; // skip past this beep
            } else {
                i += 1;
            }
        }
        v
    };
    let (a, b) = (onsets(&reference), onsets(&out));
    assert_eq!(a.len(), 60, "beeps in the source");
    assert_eq!(b.len(), 60, "beeps in our output");
    let offset0 = b[0] - a[0];
    let worst = a
        .iter()
        .zip(&b)
        .map(|(x, y)| ((y - x) - offset0).abs())
        .fold(0.0, f64::max);
    println!("first offset {offset0:.3} ms, worst drift {worst:.3} ms over 10 min");
    assert!(worst <= 1.0, "drift {worst} ms");
    assert!(
        offset0.abs() <= 1.0,
        "constant offset {offset0} ms (pre-skip wrong?)"
    );
}

#[test]
fn every_fixture_and_container_transcodes() {
    let Some(files) = rts_testkit::media_fixtures() else {
        return;
    };
    let Some(ffmpeg) = ffmpeg() else { return };
    for file in files {
        let ogg = tmp(&format!(
            "{}.ogg",
            file.file_name().unwrap().to_string_lossy()
        ));
        let summary = transcode(&file, &ogg, &[]);
        assert!(summary.contains("0 corrupt access units"), "{summary}");
        let out = decode(&ffmpeg, &ogg, 1);
        let secs = out.len() as f64 / 48_000.0;
        assert!((secs - 3.0).abs() < 0.1, "{}: {secs} s", file.display());
    }
    // .m4a (symphonia's isomp4 demuxer) and .aac (ADTS) inputs.
    for ext in ["m4a", "aac"] {
        let src = tmp(&format!("container.{ext}"));
        let ogg = tmp(&format!("container_{ext}.ogg"));
        ff(
            &ffmpeg,
            &[
                "-f",
                "lavfi",
                "-i",
                "sine=frequency=1000:sample_rate=48000:duration=1",
                "-c:a",
                "aac",
                "-ac",
                "2",
                src.to_str().unwrap(),
            ],
        );
        transcode(&src, &ogg, &["--frame", "10"]);
        let out = decode(&ffmpeg, &ogg, 2);
        let f = dominant(&channel(&out, 2, 0)[4800..]);
        assert!((f - 1000.0).abs() < 10.0, "{ext}: {f} Hz");
    }
}
