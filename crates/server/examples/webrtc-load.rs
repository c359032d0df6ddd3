//! WebRTC load from a separate process: N real WHEP viewers (rts-webrtc's
//! client side: full ICE, DTLS client, SRTP decryption, receiver reports
//! and NACKs) against a running server, each on its own UDP socket.
//!
//! ```text
//! cargo run --release -p rts-server --example webrtc-load -- \
//!     --whep "http://127.0.0.1:8080/live/demo/whep?auth_key=…" \
//!     --viewers 300 [--seconds 30] [--ramp-ms 20] [--server-pid PID]
//! ```
//!
//! Viewers connect `--ramp-ms` apart; after all have connected (or 20 s),
//! the tool measures for `--seconds`. With `--server-pid` it samples the
//! server's CPU time (`/proc/PID/stat`) and resident memory over the same
//! window. It prints one JSON line: viewers connected, media received per
//! viewer (packets, bytes, lost), and the server's CPU per viewer and
//! memory per viewer.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use anyhow::{anyhow, bail};
use rts_webrtc::Certificate;

#[path = "support/whep.rs"]
mod whep;
use whep::{Counters, sample};

struct Args {
    whep: String,
    viewers: usize,
    seconds: u64,
    ramp: Duration,
    pid: Option<u32>,
}

fn args() -> anyhow::Result<Args> {
    use lexopt::prelude::*;
    let mut a = Args {
        whep: String::new(),
        viewers: 100,
        seconds: 30,
        ramp: Duration::from_millis(20),
        pid: None,
    };
    let mut p = lexopt::Parser::from_env();
    while let Some(arg) = p.next()? {
        match arg {
            Long("whep") => a.whep = p.value()?.string()?,
            Long("viewers") => a.viewers = p.value()?.parse()?,
            Long("seconds") => a.seconds = p.value()?.parse()?,
            Long("ramp-ms") => a.ramp = Duration::from_millis(p.value()?.parse()?),
            Long("server-pid") => a.pid = Some(p.value()?.parse()?),
            Long("help") => {
                println!(
                    "usage: webrtc-load --whep URL [--viewers N] [--seconds S] [--ramp-ms MS] [--server-pid PID]"
                );
                std::process::exit(0);
            }
            _ => return Err(arg.unexpected().into()),
        }
    }
    if a.whep.is_empty() {
        bail!("--whep URL is required");
    }
    Ok(a)
}

/// `http://host:port/path?query` → (address, path and query).
fn split_url(url: &str) -> anyhow::Result<(SocketAddr, String)> {
    let rest = url
        .strip_prefix("http://")
        .ok_or_else(|| anyhow!("only http:// WHEP URLs"))?;
    let (authority, path) = rest.split_once('/').unwrap_or((rest, ""));
    Ok((authority.parse()?, format!("/{path}")))
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let a = args()?;
    let url = Arc::new(split_url(&a.whep)?);
    let cert = Certificate::generate()?;
    let counters = Arc::new(Counters::default());
    let rss_before = a.pid.and_then(sample).map(|s| s.1);
    let ramp_end = Instant::now() + a.ramp * a.viewers as u32;
    let connect_deadline = ramp_end + Duration::from_secs(20);
    let until = connect_deadline + Duration::from_secs(a.seconds) + Duration::from_secs(5);
    let mut tasks = tokio::task::JoinSet::new();
    for _ in 0..a.viewers {
        let (url, cert, counters) = (url.clone(), cert.clone(), counters.clone());
        tasks.spawn(async move { whep::play(&url, cert, &counters, until).await });
        tokio::time::sleep(a.ramp).await;
    }
    while counters.connected.load(Ordering::Relaxed) < a.viewers as u64
        && Instant::now() < connect_deadline
    {
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    tokio::time::sleep(Duration::from_secs(2)).await;
    let connected = counters.connected.load(Ordering::Relaxed);
    let (p0, b0) = (
        counters.packets.load(Ordering::Relaxed),
        counters.bytes.load(Ordering::Relaxed),
    );
    let s0 = a.pid.and_then(sample);
    let t0 = Instant::now();
    tokio::time::sleep(Duration::from_secs(a.seconds)).await;
    let secs = t0.elapsed().as_secs_f64();
    let s1 = a.pid.and_then(sample);
    let packets = counters.packets.load(Ordering::Relaxed) - p0;
    let bytes = counters.bytes.load(Ordering::Relaxed) - b0;
    let per_viewer_kbps = bytes as f64 * 8.0 / 1000.0 / secs / connected.max(1) as f64;
    let mut out = serde_json::json!({
        "viewers": a.viewers,
        "connected": connected,
        "window_s": (secs * 10.0).round() / 10.0,
        "packets_per_viewer_per_s": (packets as f64 / secs / connected.max(1) as f64 * 10.0).round() / 10.0,
        "payload_kbps_per_viewer": (per_viewer_kbps * 10.0).round() / 10.0,
        "video_packets": counters.video.load(Ordering::Relaxed),
        "audio_packets": counters.audio.load(Ordering::Relaxed),
    });
    if let (Some((c0, _)), Some((c1, rss))) = (s0, s1) {
        let cpu = (c1 - c0) / secs;
        out["server_cpu_cores"] = serde_json::json!((cpu * 1000.0).round() / 1000.0);
        out["server_cpu_us_per_viewer_s"] =
            serde_json::json!((cpu * 1e6 / connected.max(1) as f64).round());
        out["viewers_per_core"] = serde_json::json!((connected as f64 / cpu.max(1e-9)).round());
        out["server_rss_kib"] = serde_json::json!(rss);
        if let Some(before) = rss_before {
            out["server_rss_kib_per_viewer"] = serde_json::json!(
                ((rss.saturating_sub(before)) as f64 / connected.max(1) as f64 * 10.0).round()
                    / 10.0
            );
        }
    }
    println!("{out}");
    tasks.abort_all();
    Ok(())
}
