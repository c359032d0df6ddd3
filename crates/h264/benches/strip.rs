//! Stripping 720p30 and 1080p30 High-profile B-pyramid input on one thread
//! (decode + encode), beside `ffmpeg -threads 1 ... libx264 -preset
//! ultrafast -tune zerolatency -bf 0` doing the same decode + encode of the
//! same file; and classification throughput.
//!
//! Inputs are generated with ffmpeg into target/h264-bench/ at start (skipped
//! with a message when ffmpeg is missing).

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use bytes::Bytes;
use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use rts_h264::avcc::AvcConfig;
use rts_h264::classify::Classifier;
use rts_h264::{AccessUnit, Mode, Output, Settings, Stripper};

const FRAMES: u32 = 60;

struct Input {
    name: &'static str,
    path: PathBuf,
    config: Bytes,
    aus: Vec<AccessUnit>,
}

fn bench_dir() -> PathBuf {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../target/h264-bench");
    std::fs::create_dir_all(&root).expect("create target/h264-bench");
    root
}

fn generate(name: &'static str, size: &str) -> Option<Input> {
    let path = bench_dir().join(format!("{name}.flv"));
    if !path.is_file() {
        let ok = Command::new("ffmpeg")
            .args([
                "-hide_banner",
                "-loglevel",
                "error",
                "-y",
                "-f",
                "lavfi",
                "-i",
            ])
            .arg(format!("testsrc2=size={size}:rate=30"))
            .args([
                "-frames:v",
                &FRAMES.to_string(),
                "-c:v",
                "libx264",
                "-profile:v",
                "high",
                "-preset",
                "medium",
            ])
            .args([
                "-bf",
                "3",
                "-x264-params",
                "b-pyramid=normal",
                "-g",
                "60",
                "-b:v",
                "4M",
                "-f",
                "flv",
            ])
            .arg(&path)
            .status()
            .is_ok_and(|s| s.success());
        if !ok {
            eprintln!(
                "SKIPPED: ffmpeg (with libx264) is needed to generate {}",
                path.display()
            );
            return None;
        }
    }
    let data = Bytes::from(std::fs::read(&path).ok()?);
    let mut pos = 13usize;
    let (mut config, mut aus) = (None, Vec::new());
    while pos + 11 <= data.len() {
        let size = u32::from_be_bytes([0, data[pos + 1], data[pos + 2], data[pos + 3]]) as usize;
        let ts = i64::from(u32::from_be_bytes([
            data[pos + 7],
            data[pos + 4],
            data[pos + 5],
            data[pos + 6],
        ]));
        let body = data.slice(pos + 11..pos + 11 + size);
        if data[pos] == 9 && body.len() > 5 {
            let cts = i64::from(i32::from_be_bytes([body[2], body[3], body[4], 0]) >> 8);
            match body[1] {
                0 => config = Some(body.slice(5..)),
                1 => aus.push(AccessUnit {
                    dts: ts,
                    pts: ts + cts,
                    data: body.slice(5..),
                }),
                _ => {}
            }
        }
        pos += 11 + size + 4;
    }
    Some(Input {
        name,
        path,
        config: config?,
        aus,
    })
}

fn strip_all(input: &Input) -> usize {
    let mut s = Stripper::new(Settings::new(Mode::Transcode));
    s.push_config(input.config.clone()).expect("config");
    let mut out = 0;
    for au in &input.aus {
        s.push(au.clone()).expect("push");
        while let Some(o) = s.pop() {
            out += usize::from(matches!(o, Output::Frame(_)));
        }
    }
    s.finish().expect("finish");
    while let Some(o) = s.pop() {
        out += usize::from(matches!(o, Output::Frame(_)));
    }
    assert_eq!(out, input.aus.len());
    out
}

/// Frames per second of the ffmpeg pipeline (best of three runs).
fn ffmpeg_fps(input: &Input) -> Option<f64> {
    let mut best = f64::MAX;
    for _ in 0..3 {
        let start = Instant::now();
        let ok = Command::new("ffmpeg")
            .args(["-hide_banner", "-loglevel", "error", "-threads", "1", "-i"])
            .arg(&input.path)
            .args([
                "-an",
                "-threads",
                "1",
                "-c:v",
                "libx264",
                "-preset",
                "ultrafast",
                "-tune",
                "zerolatency",
                "-bf",
                "0",
            ])
            .args(["-f", "null", "-"])
            .status()
            .is_ok_and(|s| s.success());
        if !ok {
            return None;
        }
        best = best.min(start.elapsed().as_secs_f64());
    }
    Some(input.aus.len() as f64 / best)
}

fn benches(c: &mut Criterion) {
    eprintln!("openh264 assembly: {}", rts_h264::ASM);
    let inputs: Vec<Input> = [
        ("high_bpyramid_720p30", "1280x720"),
        ("high_bpyramid_1080p30", "1920x1080"),
    ]
    .into_iter()
    .filter_map(|(n, s)| generate(n, s))
    .collect();
    let mut g = c.benchmark_group("strip_transcode");
    g.sample_size(10)
        .measurement_time(Duration::from_secs(3))
        .warm_up_time(Duration::from_secs(1));
    for input in &inputs {
        g.throughput(Throughput::Elements(input.aus.len() as u64));
        g.bench_function(input.name, |b| b.iter(|| strip_all(input)));
        match ffmpeg_fps(input) {
            Some(fps) => eprintln!(
                "ffmpeg -threads 1 libx264 ultrafast zerolatency -bf 0, {}: {fps:.1} fps",
                input.name
            ),
            None => eprintln!("SKIPPED: ffmpeg comparison for {}", input.name),
        }
    }
    g.finish();
    let mut g = c.benchmark_group("classify");
    g.measurement_time(Duration::from_secs(2))
        .warm_up_time(Duration::from_secs(1));
    for input in &inputs {
        g.throughput(Throughput::Elements(input.aus.len() as u64));
        g.bench_function(input.name, |b| {
            b.iter(|| {
                let mut cl = Classifier::new();
                cl.set_config(&AvcConfig::parse(&input.config).expect("record"))
                    .expect("config");
                input
                    .aus
                    .iter()
                    .filter(|au| cl.classify(&au.data).ok().flatten().is_some())
                    .count()
            })
        });
    }
    g.finish();
}

criterion_group!(strip, benches);
criterion_main!(strip);
