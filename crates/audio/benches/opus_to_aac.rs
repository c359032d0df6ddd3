//! Opus (48 kHz stereo, 20 ms, 64 kbit/s) to AAC-LC (128 kbit/s), one
//! core, side by side with `ffmpeg -threads 1` decoding the same Opus and
//! encoding it with its native AAC encoder (`-c:a aac`).
//!
//! ```text
//! cargo bench -p rts-audio --bench opus_to_aac
//! ```
//!
//! Prints "x real time" for both and the SNR of our AAC against the
//! decoded Opus (the criterion numbers are per whole 20 s input).

use std::hint::black_box;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use criterion::{Criterion, criterion_group, criterion_main};
use rts_audio::opus_to_aac::{AacConfig, AacFrame, OpusToAac};
use rts_opus_sys::{Application, Decoder, Encoder};

const SECONDS: f64 = 20.0;

/// 20 s of music-like stereo (two tones, noise, a 3 kHz partial), made by
/// ffmpeg, as f32 at 48 kHz, and the same as an Ogg Opus file for ffmpeg.
fn input() -> Option<(Vec<f32>, PathBuf)> {
    let ffmpeg = rts_testkit::tool("ffmpeg")?;
    let src = "aevalsrc=0.3*sin(2*PI*440*t)+0.05*sin(2*PI*3000*t)+0.02*(random(0)-0.5)|0.3*sin(2*PI*660*t)+0.04*sin(2*PI*5000*t):s=48000:d=20";
    let out = Command::new(&ffmpeg)
        .args([
            "-hide_banner",
            "-loglevel",
            "error",
            "-f",
            "lavfi",
            "-i",
            src,
        ])
        .args(["-f", "f32le", "-"])
        .output()
        .ok()?;
    let pcm = out
        .stdout
        .chunks_exact(4)
        .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
        .collect();
    let ogg = std::env::temp_dir().join("rts-audio-bench-48k-stereo.opus");
    let ok = Command::new(&ffmpeg)
        .args([
            "-hide_banner",
            "-loglevel",
            "error",
            "-y",
            "-f",
            "lavfi",
            "-i",
            src,
        ])
        .args(["-c:a", "libopus", "-b:a", "64k", "-frame_duration", "20"])
        .arg(&ogg)
        .status()
        .ok()?
        .success();
    ok.then_some((pcm, ogg))
}

/// The Opus packets rts-server gets from a WHIP publisher, and what a
/// libopus decoder makes of them (the reference for the SNR).
fn opus_packets(pcm: &[f32]) -> (Vec<Vec<u8>>, Vec<f32>) {
    let mut enc = Encoder::new(48_000, 2, Application::Audio).unwrap();
    enc.set_bitrate(64_000).unwrap();
    let mut dec = Decoder::new(48_000, 2).unwrap();
    let (mut packets, mut decoded) = (Vec::new(), Vec::new());
    let mut buf = [0u8; 1275];
    let mut out = vec![0f32; 960 * 2];
    for frame in pcm.chunks_exact(960 * 2) {
        let n = enc.encode_float(frame, &mut buf).unwrap();
        let got = dec.decode_float(&buf[..n], &mut out).unwrap();
        decoded.extend_from_slice(&out[..got * 2]);
        packets.push(buf[..n].to_vec());
    }
    (packets, decoded)
}

fn transcode(packets: &[Vec<u8>]) -> Vec<AacFrame> {
    let mut t = OpusToAac::new(AacConfig::default()).unwrap();
    let mut out = Vec::with_capacity(packets.len());
    for (i, p) in packets.iter().enumerate() {
        t.push(p, i as u64 * 960);
        out.extend(std::iter::from_fn(|| t.pop()));
    }
    out
}

/// Our AAC decoded by ffmpeg, aligned by the frames' timestamps: SNR in dB
/// against the decoded Opus.
fn snr(asc: &[u8], frames: &[AacFrame], reference: &[f32]) -> Option<f64> {
    let ffmpeg = rts_testkit::tool("ffmpeg")?;
    let adts = std::env::temp_dir().join("rts-audio-bench-out.aac");
    let mut file = Vec::new();
    let header = rts_audio::asc::AudioSpecificConfig::parse(asc).ok()?;
    for f in frames {
        let h = rts_audio::adts::AdtsHeader::for_access_unit(&header, f.data.len()).ok()?;
        h.write(&mut file);
        file.extend_from_slice(&f.data);
    }
    std::fs::write(&adts, file).ok()?;
    let out = Command::new(&ffmpeg)
        .args(["-hide_banner", "-loglevel", "error", "-i"])
        .arg(&adts)
        .args(["-f", "f32le", "-"])
        .output()
        .ok()?;
    let got: Vec<f32> = out
        .stdout
        .chunks_exact(4)
        .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
        .collect();
    // Frame 1 carries the input's sample 0 (frame 0 is the pre-roll).
    let got = got.get(1024 * 2..)?;
    let (mut s, mut e) = (0f64, 0f64);
    for (r, g) in reference.iter().zip(got) {
        s += f64::from(*r).powi(2);
        e += f64::from(r - g).powi(2);
    }
    Some(10.0 * (s / e).log10())
}

fn ffmpeg_aac(ogg: &Path) -> Option<Duration> {
    let ffmpeg = rts_testkit::find_on_path("ffmpeg")?;
    let mut best = Duration::MAX;
    for _ in 0..3 {
        let start = Instant::now();
        let ok = Command::new(&ffmpeg)
            .args(["-hide_banner", "-loglevel", "error", "-threads", "1", "-i"])
            .arg(ogg)
            .args(["-c:a", "aac", "-b:a", "128k", "-f", "null", "-"])
            .status()
            .ok()?
            .success();
        if !ok {
            return None;
        }
        best = best.min(start.elapsed());
    }
    Some(best)
}

fn bench(c: &mut Criterion) {
    let Some((pcm, ogg)) = input() else { return };
    let (packets, reference) = opus_packets(&pcm);
    let mut group = c.benchmark_group("opus_to_aac_48k_stereo_20s");
    group
        .sample_size(10)
        .measurement_time(Duration::from_secs(3))
        .warm_up_time(Duration::from_secs(1));
    group.bench_function("rts-audio (libopus + syom)", |b| {
        b.iter(|| black_box(transcode(&packets)))
    });
    group.finish();
    let mut best = Duration::MAX;
    let mut frames = Vec::new();
    for _ in 0..3 {
        let start = Instant::now();
        frames = transcode(&packets);
        best = best.min(start.elapsed());
    }
    let asc = OpusToAac::new(AacConfig::default())
        .unwrap()
        .audio_specific_config();
    let quality =
        snr(&asc, &frames, &reference).map_or("SNR n/a".into(), |db| format!("SNR {db:.1} dB"));
    let ours = SECONDS / best.as_secs_f64();
    match ffmpeg_aac(&ogg) {
        Some(ff) => println!(
            "opus to aac: rts-audio {ours:.0}x real time ({:.3} s, {quality}), ffmpeg -threads 1 (libopus decode, native aac) {:.0}x real time ({:.3} s, process incl. start-up)",
            best.as_secs_f64(),
            SECONDS / ff.as_secs_f64(),
            ff.as_secs_f64()
        ),
        None => println!("opus to aac: rts-audio {ours:.0}x real time, {quality}; no ffmpeg"),
    }
}

criterion_group!(benches, bench);
criterion_main!(benches);
