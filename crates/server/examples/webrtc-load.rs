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

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, anyhow, bail};
use rts_webrtc::{Certificate, Config, Event, MediaKind, Peer, Role};

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

/// POSTs an offer; returns the answer.
fn post_offer(addr: SocketAddr, path: &str, offer: &str) -> anyhow::Result<String> {
    let mut s = TcpStream::connect(addr)?;
    s.set_read_timeout(Some(Duration::from_secs(10)))?;
    write!(
        s,
        "POST {path} HTTP/1.1\r\nHost: {addr}\r\nContent-Type: application/sdp\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{offer}",
        offer.len()
    )?;
    let mut out = String::new();
    s.read_to_string(&mut out)?;
    let (head, body) = out.split_once("\r\n\r\n").context("no HTTP response")?;
    if !head.starts_with("HTTP/1.1 201") {
        bail!("POST: {}", head.lines().next().unwrap_or(""));
    }
    Ok(body.to_owned())
}

#[derive(Default)]
struct Counters {
    connected: AtomicU64,
    failed: AtomicU64,
    packets: AtomicU64,
    bytes: AtomicU64,
    video: AtomicU64,
    audio: AtomicU64,
}

/// One viewer on its own socket until `until`.
async fn viewer(
    url: Arc<(SocketAddr, String)>,
    cert: Certificate,
    counters: Arc<Counters>,
    until: Instant,
) -> anyhow::Result<()> {
    let socket = tokio::net::UdpSocket::bind("127.0.0.1:0").await?;
    let local = socket.local_addr()?;
    let config = Config {
        local_addr: local,
        candidates: vec![local],
        certificate: cert,
        ice_ufrag: String::new(),
        ice_pwd: String::new(),
        video_ssrc: 1,
        audio_ssrc: 2,
        idle_timeout: Duration::from_secs(15),
        stats_interval: Duration::from_secs(1),
        tcp_candidates: Vec::new(),
    };
    let (mut peer, offer) = Peer::offer(Instant::now(), Role::Publisher, &config)?;
    // A server past its limit of sessions still connecting answers 503:
    // try again a little later, as a player would.
    let mut answer = None;
    for attempt in 0..8u32 {
        let (addr, path, offer) = (url.0, url.1.clone(), offer.clone());
        match tokio::task::spawn_blocking(move || post_offer(addr, &path, &offer)).await? {
            Ok(a) => {
                answer = Some(a);
                break;
            }
            Err(e) if e.to_string().contains("503") => {
                tokio::time::sleep(Duration::from_millis(200 << attempt.min(4))).await;
            }
            Err(e) => return Err(e),
        }
    }
    let answer = answer.ok_or_else(|| anyhow!("the server kept answering 503"))?;
    peer.accept_answer(Instant::now(), &answer)?;
    let mut buf = vec![0u8; 2048];
    let mut connected = false;
    while Instant::now() < until && !peer.is_closed() {
        while let Some(t) = peer.poll_transmit() {
            let _ = socket.send_to(&t.contents, t.destination).await;
        }
        while let Some(ev) = peer.poll_event() {
            match ev {
                Event::Connected => {
                    connected = true;
                    counters.connected.fetch_add(1, Ordering::Relaxed);
                }
                Event::Rtp { kind, packet, .. } => {
                    counters.packets.fetch_add(1, Ordering::Relaxed);
                    counters
                        .bytes
                        .fetch_add(packet.payload.len() as u64, Ordering::Relaxed);
                    let c = match kind {
                        MediaKind::Video => &counters.video,
                        MediaKind::Audio => &counters.audio,
                    };
                    c.fetch_add(1, Ordering::Relaxed);
                }
                _ => {}
            }
        }
        let wait = peer
            .poll_timeout()
            .map_or(Duration::from_millis(50), |t| {
                t.saturating_duration_since(Instant::now())
            })
            .min(Duration::from_millis(50));
        match tokio::time::timeout(wait, socket.recv_from(&mut buf)).await {
            Ok(Ok((n, from))) => {
                let _ = peer.handle_receive(Instant::now(), from, &buf[..n]);
            }
            _ => {
                let _ = peer.handle_timeout(Instant::now());
            }
        }
    }
    if !connected {
        counters.failed.fetch_add(1, Ordering::Relaxed);
    }
    peer.close();
    while let Some(t) = peer.poll_transmit() {
        let _ = socket.send_to(&t.contents, t.destination).await;
    }
    Ok(())
}

/// (CPU seconds, resident KiB) of a process.
fn sample(pid: u32) -> Option<(f64, u64)> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // Fields after the command name (which may hold spaces): 14 and 15 are
    // utime and stime in clock ticks.
    let rest = stat.rsplit_once(')')?.1;
    let f: Vec<&str> = rest.split_whitespace().collect();
    let ticks: f64 = f.get(11)?.parse::<f64>().ok()? + f.get(12)?.parse::<f64>().ok()?;
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let rss = status
        .lines()
        .find(|l| l.starts_with("VmRSS:"))?
        .split_whitespace()
        .nth(1)?
        .parse()
        .ok()?;
    // USER_HZ is 100 on Linux.
    Some((ticks / 100.0, rss))
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
        tasks.spawn(viewer(url.clone(), cert.clone(), counters.clone(), until));
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
