//! Load test of rts-server on loopback: P ffmpeg publishers (`-re -c copy`
//! of a fixture, looped) and V HTTP-FLV viewers per publisher for D seconds,
//! all against an in-process server.
//!
//! ```text
//! cargo run --release -p rts-server --example rts-server-load -- [--publishers 20] [--viewers 10]
//!     [--seconds 60] [--file FLV]   # default: the media fixture baseline_aaclc44k.flv
//! ```
//!
//! `--viewers` is per publisher (20 x 10 = 200 viewers). It prints, per
//! viewer class, the frames received, the largest timestamp step (a lost
//! frame shows as a step of a GOP), the viewers the server dropped, and the
//! process's peak resident memory (server and viewers together).

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use rts_server::Server;
use rts_server::config::Config;

fn arg(name: &str, default: &str) -> String {
    let args: Vec<String> = std::env::args().collect();
    args.iter()
        .position(|a| a == name)
        .and_then(|i| args.get(i + 1).cloned())
        .unwrap_or_else(|| default.to_owned())
}

/// Plays `/live/{stream}.flv` over HTTP/1.0 (no chunked coding) until the
/// response ends: (video frames, largest timestamp step in ms).
fn view(addr: SocketAddr, stream: &str) -> (u64, u32) {
    let Ok(mut s) = TcpStream::connect(addr) else {
        return (0, u32::MAX);
    };
    let _ = s.set_read_timeout(Some(Duration::from_secs(30)));
    if write!(s, "GET /live/{stream}.flv HTTP/1.0\r\nHost: x\r\n\r\n").is_err() {
        return (0, u32::MAX);
    }
    let mut buf = bytes::BytesMut::new();
    let mut chunk = vec![0u8; 64 * 1024];
    let mut in_body = false;
    let mut demux = rts_flv::Demuxer::new();
    let (mut frames, mut last, mut max_gap) = (0u64, None::<u32>, 0u32);
    loop {
        let n = match s.read(&mut chunk) {
            Ok(0) | Err(_) => break,
            Ok(n) => n,
        };
        buf.extend_from_slice(&chunk[..n]);
        if !in_body {
            match buf.windows(4).position(|w| w == b"\r\n\r\n") {
                Some(p) => {
                    let _ = buf.split_to(p + 4);
                    in_body = true;
                }
                None => continue,
            }
        }
        while let Ok(Some(tag)) = demux.decode(&mut buf) {
            if tag.tag_type != rts_flv::TagType::Video {
                continue;
            }
            let Ok((h, _)) = rts_flv::VideoTagHeader::parse(&tag.data) else {
                continue;
            };
            if h.is_sequence_header() {
                continue;
            }
            frames += 1;
            if let Some(l) = last {
                max_gap = max_gap.max(tag.timestamp.saturating_sub(l));
            }
            last = Some(tag.timestamp);
        }
    }
    (frames, max_gap)
}

fn peak_rss_kib() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmHWM:"))
                .and_then(|l| l.split_whitespace().nth(1)?.parse().ok())
        })
        .unwrap_or(0)
}

fn main() -> anyhow::Result<()> {
    let publishers: usize = arg("--publishers", "20").parse()?;
    let per: usize = arg("--viewers", "10").parse()?;
    let seconds: u64 = arg("--seconds", "60").parse()?;
    let file = match std::env::args().position(|a| a == "--file") {
        Some(_) => arg("--file", ""),
        None => rts_testkit::fixture("media/baseline_aaclc44k.flv")
            .ok_or_else(|| anyhow::anyhow!("no --file and no media fixture (docs/testing.md)"))?
            .display()
            .to_string(),
    };
    let mut config = Config::default();
    config.listen.rtmp = "127.0.0.1:0".parse()?;
    config.listen.http = "127.0.0.1:0".parse()?;
    config.listen.rtc = "127.0.0.1:0".parse()?;
    config.disable_signing();
    config.finish()?;
    let rt = tokio::runtime::Runtime::new()?;
    let server = rt.block_on(Server::bind(config))?;
    let (rtmp, http) = (server.rtmp_addr(), server.http_addr());
    let hub = server.hub().clone();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let done = rt.spawn(server.run(async {
        let _ = stopped.await;
    }));

    let mut children = Vec::new();
    for i in 0..publishers {
        let child = Command::new("ffmpeg")
            .args([
                "-hide_banner",
                "-loglevel",
                "error",
                "-re",
                "-stream_loop",
                "-1",
                "-i",
                &file,
            ])
            .args(["-t", &seconds.to_string(), "-c", "copy", "-f", "flv"])
            .arg(format!("rtmp://{rtmp}/live/load{i}"))
            .stdin(Stdio::null())
            .spawn()?;
        children.push(child);
    }
    let deadline = Instant::now() + Duration::from_secs(30);
    while hub
        .streams(Instant::now())
        .iter()
        .filter(|s| s.video_codec.is_some())
        .count()
        < publishers
    {
        anyhow::ensure!(Instant::now() < deadline, "publishers did not start");
        std::thread::sleep(Duration::from_millis(100));
    }
    let started = Instant::now();
    let mut viewers = Vec::new();
    for i in 0..publishers {
        for _ in 0..per {
            let name = format!("load{i}");
            viewers.push(std::thread::spawn(move || view(http, &name)));
        }
    }
    for mut c in children {
        c.wait()?;
    }
    let results: Vec<(u64, u32)> = viewers
        .into_iter()
        .map(|v| v.join().unwrap_or((0, u32::MAX)))
        .collect();
    let metrics = hub.metrics();
    let slow = metrics.errors(rts_server::metrics::ErrorKind::SlowViewer);
    let min = results.iter().map(|r| r.0).min().unwrap_or(0);
    let max = results.iter().map(|r| r.0).max().unwrap_or(0);
    let worst_gap = results.iter().map(|r| r.1).max().unwrap_or(0);
    let gapped = results.iter().filter(|r| r.1 >= 100).count();
    println!(
        "{publishers} publishers x {per} FLV viewers ({} viewers) for {:.1} s",
        results.len(),
        started.elapsed().as_secs_f64()
    );
    println!("video frames per viewer: min {min}, max {max}");
    println!("largest timestamp step: {worst_gap} ms; viewers with a gap >= 100 ms: {gapped}");
    println!("viewers dropped as too slow: {slow}");
    println!(
        "bytes in {} MB, out {} MB",
        metrics.bytes_in.load(std::sync::atomic::Ordering::Relaxed) / 1_000_000,
        metrics.bytes_out.load(std::sync::atomic::Ordering::Relaxed) / 1_000_000
    );
    println!(
        "peak resident memory (server + viewers): {} MiB",
        peak_rss_kib() / 1024
    );
    let _ = stop.send(());
    rt.block_on(done)??;
    Ok(())
}
