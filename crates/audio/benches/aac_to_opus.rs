//! AAC-LC 44.1 kHz stereo to Opus (48 kHz, 20 ms, 64 kbit/s), one core,
//! side by side with `ffmpeg -threads 1 -c:a libopus` on the same file.
//!
//! ```text
//! cargo bench -p rts-audio --bench aac_to_opus
//! ```
//!
//! Prints "x real time" for both; the criterion numbers are per whole file.

use std::hint::black_box;
use std::path::PathBuf;
use std::process::Command;
use std::time::{Duration, Instant};

use bytes::{Bytes, BytesMut};
use criterion::{Criterion, criterion_group, criterion_main};
use rts_audio::adts;
use rts_audio::transcode::{AacToOpus, Config};

const SECONDS: f64 = 20.0;

/// A 20 s 44.1 kHz stereo AAC-LC ADTS file made by ffmpeg's encoder.
fn input() -> Option<PathBuf> {
    let ffmpeg = rts_testkit::tool("ffmpeg")?;
    let path = std::env::temp_dir().join("rts-audio-bench-44k-stereo.aac");
    if !path.is_file() {
        let ok = Command::new(&ffmpeg)
            .args(["-hide_banner", "-loglevel", "error", "-y", "-f", "lavfi", "-i"])
            .arg("aevalsrc=0.3*sin(2*PI*440*t)+0.05*sin(2*PI*3000*t)+0.02*(random(0)-0.5)|0.3*sin(2*PI*660*t)+0.04*sin(2*PI*5000*t):s=44100:d=20")
            .args(["-c:a", "aac", "-b:a", "128k"])
            .arg(&path)
            .status()
            .ok()?
            .success();
        if !ok {
            return None;
        }
    }
    Some(path)
}

fn units(path: &PathBuf) -> (Vec<u8>, Vec<Bytes>) {
    let mut buf = BytesMut::from(&std::fs::read(path).unwrap()[..]);
    let mut d = adts::Decoder::new();
    let (mut asc, mut aus) = (Vec::new(), Vec::new());
    while let Some(f) = d.decode(&mut buf).unwrap() {
        asc = f.header.to_asc().to_bytes();
        aus.push(f.payload);
    }
    (asc, aus)
}

fn transcode(asc: &[u8], aus: &[Bytes], config: &Config) -> usize {
    let mut t = AacToOpus::new(config.clone()).unwrap();
    t.set_config(asc).unwrap();
    let mut bytes = 0;
    for (i, au) in aus.iter().enumerate() {
        let pts = Duration::from_nanos(i as u64 * 1024 * 1_000_000_000 / 44_100);
        t.push(au.clone(), pts).unwrap();
        while let Some(p) = t.pop() {
            bytes += p.data.len();
        }
    }
    t.flush().unwrap();
    while let Some(p) = t.pop() {
        bytes += p.data.len();
    }
    bytes
}

fn ffmpeg_libopus(path: &PathBuf, complexity: u32) -> Option<Duration> {
    let ffmpeg = rts_testkit::find_on_path("ffmpeg")?;
    let mut best = Duration::MAX;
    for _ in 0..3 {
        let start = Instant::now();
        let ok = Command::new(&ffmpeg)
            .args(["-hide_banner", "-loglevel", "error", "-threads", "1", "-i"])
            .arg(path)
            .args(["-c:a", "libopus", "-b:a", "64k", "-frame_duration", "20"])
            .args([
                "-compression_level",
                &complexity.to_string(),
                "-f",
                "null",
                "-",
            ])
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
    let Some(path) = input() else { return };
    let (asc, aus) = units(&path);
    let mut group = c.benchmark_group("aac_to_opus_44k_stereo_20s");
    group
        .sample_size(10)
        .measurement_time(Duration::from_secs(3))
        .warm_up_time(Duration::from_secs(1));
    for complexity in [5u8, 10] {
        let config = Config {
            complexity,
            ..Config::default()
        };
        group.bench_function(format!("rts-audio complexity {complexity}"), |b| {
            b.iter(|| black_box(transcode(&asc, &aus, &config)))
        });
        // Same run, outside criterion, to print the ratio next to ffmpeg's.
        let mut best = Duration::MAX;
        for _ in 0..3 {
            let start = Instant::now();
            black_box(transcode(&asc, &aus, &config));
            best = best.min(start.elapsed());
        }
        let ours = SECONDS / best.as_secs_f64();
        match ffmpeg_libopus(&path, u32::from(complexity)) {
            Some(ff) => println!(
                "complexity {complexity}: rts-audio {ours:.0}x real time ({:.3} s), ffmpeg -threads 1 libopus {:.0}x real time ({:.3} s, process incl. start-up)",
                best.as_secs_f64(),
                SECONDS / ff.as_secs_f64(),
                ff.as_secs_f64()
            ),
            None => println!(
                "complexity {complexity}: rts-audio {ours:.0}x real time; ffmpeg with libopus not available"
            ),
        }
    }
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
