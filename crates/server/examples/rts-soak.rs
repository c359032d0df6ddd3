//! Soak test: an rts-server process under a steady mixed load for a long
//! time, checking that nothing leaks or drifts.
//!
//! ```text
//! cargo build --release -p rts-server --bins --examples
//! target/release/examples/rts-soak [--seconds 600] [--warmup 60] [--publishers 20]
//!     [--rtmp 4] [--flv 4] [--whep 2] [--file FLV] [--server PATH]
//! ```
//!
//! It starts `rts-server` (by default the one next to this example's
//! directory, `target/release/rts-server`) on free loopback ports with
//! signing on (and the per-address connection caps raised: every client is
//! on 127.0.0.1), then `--publishers` ffmpeg publishers (`-re -c copy` of a
//! fixture, looped: H.264 without B-frames and AAC, as OBS sends with its
//! defaults), and per publisher `--rtmp` RTMP viewers (rts-rtmp's client),
//! `--flv` HTTP-FLV viewers and `--whep` WebRTC viewers (rts-webrtc's client:
//! DTLS-SRTP, NACK; their audio goes through the server's AAC-to-Opus
//! conversion). The defaults make 20 publishers and 200 viewers.
//!
//! Every 10 s it prints the server's resident memory and CPU. At the end it
//! prints one JSON line and exits 1 unless:
//! - after `--warmup`, every sample of the server's RSS is within ±10 % of
//!   the first one;
//! - no viewer's session ended before the end, and each kept receiving;
//! - `rts_errors_total` is 0 for every kind;
//! - the server stops on SIGTERM with status 0.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, anyhow, bail, ensure};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

#[path = "support/whep.rs"]
mod whep;

const INGEST_KEY: &str = "soak-ingest-key";
const PLAY_KEY: &str = "soak-play-key";

struct Args {
    seconds: u64,
    warmup: u64,
    publishers: usize,
    rtmp: usize,
    flv: usize,
    whep: usize,
    file: Option<PathBuf>,
    server: Option<PathBuf>,
}

fn args() -> anyhow::Result<Args> {
    use lexopt::prelude::*;
    let mut a = Args {
        seconds: 600,
        warmup: 0,
        publishers: 20,
        rtmp: 4,
        flv: 4,
        whep: 2,
        file: None,
        server: None,
    };
    let mut warmup = None;
    let mut p = lexopt::Parser::from_env();
    while let Some(arg) = p.next()? {
        match arg {
            Long("seconds") => a.seconds = p.value()?.parse()?,
            Long("warmup") => warmup = Some(p.value()?.parse()?),
            Long("publishers") => a.publishers = p.value()?.parse()?,
            Long("rtmp") => a.rtmp = p.value()?.parse()?,
            Long("flv") => a.flv = p.value()?.parse()?,
            Long("whep") => a.whep = p.value()?.parse()?,
            Long("file") => a.file = Some(p.value()?.into()),
            Long("server") => a.server = Some(p.value()?.into()),
            Long("help") => {
                println!(
                    "usage: rts-soak [--seconds 600] [--warmup 60] [--publishers 20] [--rtmp 4] [--flv 4] [--whep 2] [--file FLV] [--server PATH]"
                );
                std::process::exit(0);
            }
            _ => return Err(arg.unexpected().into()),
        }
    }
    // A third of the run, at most a minute, warms up.
    a.warmup = warmup.unwrap_or((a.seconds / 3).min(60));
    ensure!(
        a.warmup < a.seconds,
        "--warmup must be shorter than --seconds"
    );
    Ok(a)
}

fn sign(uri: &str, key: &str) -> String {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    rts_auth::sign(uri, now, "0", "0", key).unwrap_or_default()
}

/// Kills the child on drop (SIGKILL): no ffmpeg or server is left behind.
struct Guard(Child);

impl Drop for Guard {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// What one viewer saw.
#[derive(Debug)]
struct Outcome {
    kind: &'static str,
    /// Media messages (RTMP, FLV) or RTP packets (WHEP) received.
    received: u64,
    /// Why it ended before the end of the soak, if it did.
    ended_early: Option<String>,
}

/// An RTMP player (rts-rtmp's client session) until `until`.
async fn rtmp_viewer(
    addr: SocketAddr,
    stream: String,
    until: Instant,
    got: Arc<AtomicU64>,
) -> Outcome {
    use rts_rtmp::session::{ClientEvent, ClientSession, Config};
    let end = |why: String| Outcome {
        kind: "rtmp",
        received: got.load(Ordering::Relaxed),
        ended_early: Some(why),
    };
    let Ok(mut sock) = tokio::net::TcpStream::connect(addr).await else {
        return end("connect failed".into());
    };
    let mut random = [0u8; rts_rtmp::handshake::RANDOM_LEN];
    if getrandom::fill(&mut random).is_err() {
        return end("no randomness".into());
    }
    let mut s = ClientSession::new(
        Config::default(),
        &format!("rtmp://{addr}/live"),
        "live",
        &random,
    );
    s.play(&format!(
        "{stream}?auth_key={}",
        sign(&format!("/live/{stream}"), PLAY_KEY)
    ));
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        while let Some(out) = s.poll_transmit() {
            if sock.write_all(&out).await.is_err() {
                return end("write failed".into());
            }
        }
        while let Some(ev) = s.poll_event() {
            match ev {
                ClientEvent::Media { .. } => {
                    got.fetch_add(1, Ordering::Relaxed);
                }
                ClientEvent::Error(e) => return end(e.to_string()),
                ClientEvent::Closed => return end("closed".into()),
                ClientEvent::Status { code, .. } if code.contains("Unpublish") => {
                    return end(code);
                }
                _ => {}
            }
        }
        let left = until.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Outcome {
                kind: "rtmp",
                received: got.load(Ordering::Relaxed),
                ended_early: None,
            };
        }
        match tokio::time::timeout(left, sock.read(&mut buf)).await {
            Err(_) => {}
            Ok(Ok(0)) => return end("the server closed the connection".into()),
            Ok(Ok(n)) => s.handle_input(Instant::now(), &buf[..n]),
            Ok(Err(e)) => return end(e.to_string()),
        }
    }
}

/// An HTTP-FLV viewer (HTTP/1.0: no chunked coding) until `until`,
/// counting FLV tags.
async fn flv_viewer(
    addr: SocketAddr,
    stream: String,
    until: Instant,
    got: Arc<AtomicU64>,
) -> Outcome {
    let end = |why: String| Outcome {
        kind: "flv",
        received: got.load(Ordering::Relaxed),
        ended_early: Some(why),
    };
    let Ok(mut sock) = tokio::net::TcpStream::connect(addr).await else {
        return end("connect failed".into());
    };
    let key = sign(&format!("/live/{stream}.flv"), PLAY_KEY);
    let req = format!("GET /live/{stream}.flv?auth_key={key} HTTP/1.0\r\nHost: x\r\n\r\n");
    if sock.write_all(req.as_bytes()).await.is_err() {
        return end("write failed".into());
    }
    let mut buf = bytes::BytesMut::with_capacity(256 * 1024);
    let mut in_body = false;
    let mut demux = rts_flv::Demuxer::new();
    loop {
        let left = until.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Outcome {
                kind: "flv",
                received: got.load(Ordering::Relaxed),
                ended_early: None,
            };
        }
        match tokio::time::timeout(left, sock.read_buf(&mut buf)).await {
            Err(_) => continue,
            Ok(Ok(0)) => return end("the response ended".into()),
            Ok(Err(e)) => return end(e.to_string()),
            Ok(Ok(_)) => {}
        }
        if !in_body {
            let Some(p) = buf.windows(4).position(|w| w == b"\r\n\r\n") else {
                continue;
            };
            let head = buf.split_to(p + 4);
            if !head.starts_with(b"HTTP/1.1 200") && !head.starts_with(b"HTTP/1.0 200") {
                return end(String::from_utf8_lossy(&head)
                    .lines()
                    .next()
                    .unwrap_or("")
                    .to_owned());
            }
            in_body = true;
        }
        loop {
            match demux.decode(&mut buf) {
                Ok(Some(_)) => {
                    got.fetch_add(1, Ordering::Relaxed);
                }
                Ok(None) => break,
                Err(e) => return end(format!("FLV: {e}")),
            }
        }
    }
}

/// The API over HTTP with the token: the body of `GET path`.
async fn api(addr: SocketAddr, token: &str, path: &str) -> anyhow::Result<String> {
    let mut s = tokio::net::TcpStream::connect(addr).await?;
    let req = format!(
        "GET {path} HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {token}\r\nConnection: close\r\n\r\n"
    );
    s.write_all(req.as_bytes()).await?;
    let mut out = String::new();
    s.read_to_string(&mut out).await?;
    let (head, body) = out.split_once("\r\n\r\n").context("no HTTP response")?;
    ensure!(
        head.starts_with("HTTP/1.1 200"),
        "GET {path}: {}",
        head.lines().next().unwrap_or("")
    );
    Ok(body.to_owned())
}

fn free_port() -> anyhow::Result<u16> {
    Ok(std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port())
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let a = args()?;
    let file = match &a.file {
        Some(f) => f.clone(),
        None => rts_testkit::fixture("media/baseline_aaclc44k.flv")
            .ok_or_else(|| anyhow!("no --file and no media fixture (docs/testing.md)"))?,
    };
    let server_bin = match &a.server {
        Some(p) => p.clone(),
        None => std::env::current_exe()?
            .parent()
            .and_then(|examples| examples.parent())
            .map(|dir| dir.join("rts-server"))
            .filter(|p| p.is_file())
            .ok_or_else(|| {
                anyhow!("no rts-server next to this example: `cargo build --release -p rts-server --bins`, or --server PATH")
            })?,
    };
    let (rtmp_port, http_port, rtc_port) = (free_port()?, free_port()?, free_port()?);
    // Every client comes from 127.0.0.1: the per-address caps (64 RTMP,
    // 512 HTTP by default) are for the internet, not for this.
    let config = std::env::temp_dir().join(format!("rts-soak-{}.toml", std::process::id()));
    std::fs::write(
        &config,
        "[limits]\nmax_rtmp_per_ip = 4096\nmax_http_per_ip = 16384\n",
    )?;
    let rtmp = SocketAddr::from(([127, 0, 0, 1], rtmp_port));
    let http = SocketAddr::from(([127, 0, 0, 1], http_port));
    let mut server = Guard(
        Command::new(&server_bin)
            .args(["--rtmp-listen", &rtmp.to_string()])
            .args(["--http-listen", &http.to_string()])
            .args(["--rtc-listen", &format!("127.0.0.1:{rtc_port}")])
            .args(["--auth-key", PLAY_KEY, "--ingest-key", INGEST_KEY])
            .arg("--config")
            .arg(&config)
            .env("RUST_LOG", "warn")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .with_context(|| format!("start {}", server_bin.display()))?,
    );
    let pid = server.0.id();
    let token = {
        use std::io::BufRead;
        let out = server.0.stdout.take().context("server stdout")?;
        let mut lines = std::io::BufReader::new(out).lines();
        let mut token = None;
        for line in lines.by_ref() {
            let line = line?;
            if let Some(t) = line.strip_prefix("API token: ") {
                token = Some(t.trim().to_owned());
            }
            if line.trim_start().starts_with("e.g.") {
                break;
            }
        }
        // Keep draining what it prints.
        std::thread::spawn(move || lines.for_each(drop));
        token.context("the server printed no API token")?
    };
    let _ = std::fs::remove_file(&config);
    let mut publishers = Vec::new();
    for i in 0..a.publishers {
        let name = format!("soak{i}");
        let key = sign(&format!("/live/{name}"), INGEST_KEY);
        publishers.push(Guard(
            Command::new("ffmpeg")
                .args([
                    "-hide_banner",
                    "-loglevel",
                    "error",
                    "-re",
                    "-stream_loop",
                    "-1",
                    "-i",
                ])
                .arg(&file)
                .args(["-c", "copy", "-f", "flv"])
                .arg(format!("rtmp://{rtmp}/live/{name}?auth_key={key}"))
                .stdin(Stdio::null())
                .spawn()
                .context("start ffmpeg (is it installed?)")?,
        ));
    }
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let body = api(http, &token, "/api/v1/streams").await?;
        let v: serde_json::Value = serde_json::from_str(&body)?;
        let up = v["streams"].as_array().map_or(0, |s| {
            s.iter().filter(|s| s["video_codec"].is_string()).count()
        });
        if up == a.publishers {
            break;
        }
        ensure!(
            Instant::now() < deadline,
            "{up} of {} publishers started",
            a.publishers
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let started = Instant::now();
    let until = started + Duration::from_secs(a.seconds);
    let cert = rts_webrtc::Certificate::generate()?;
    let mut viewers = tokio::task::JoinSet::new();
    let mut progress = Vec::new();
    for i in 0..a.publishers {
        let name = format!("soak{i}");
        for _ in 0..a.rtmp {
            let got = Arc::new(AtomicU64::new(0));
            progress.push(got.clone());
            viewers.spawn(rtmp_viewer(rtmp, name.clone(), until, got));
        }
        for _ in 0..a.flv {
            let got = Arc::new(AtomicU64::new(0));
            progress.push(got.clone());
            viewers.spawn(flv_viewer(http, name.clone(), until, got));
        }
        for _ in 0..a.whep {
            let key = sign(&format!("/live/{name}"), PLAY_KEY);
            let url = (http, format!("/live/{name}/whep?auth_key={key}"));
            let cert = cert.clone();
            let counters = Arc::new(whep::Counters::default());
            let got = Arc::new(AtomicU64::new(0));
            progress.push(got.clone());
            viewers.spawn(async move {
                let watch = {
                    let (counters, got) = (counters.clone(), got.clone());
                    tokio::spawn(async move {
                        loop {
                            got.store(counters.packets.load(Ordering::Relaxed), Ordering::Relaxed);
                            tokio::time::sleep(Duration::from_millis(500)).await;
                        }
                    })
                };
                let r = whep::play(&url, cert, &counters, until).await;
                watch.abort();
                got.store(counters.packets.load(Ordering::Relaxed), Ordering::Relaxed);
                Outcome {
                    kind: "whep",
                    received: counters.packets.load(Ordering::Relaxed),
                    ended_early: match r {
                        Ok(None) => None,
                        Ok(Some(why)) => Some(why.to_owned()),
                        Err(e) => Some(e.to_string()),
                    },
                }
            });
        }
    }
    let n_viewers = progress.len();
    // Sample every 10 s; each viewer must have received something new in
    // every window after the warm-up.
    let mut samples: Vec<(u64, u64, f64)> = Vec::new();
    let mut stalled = 0usize;
    let mut last: Vec<u64> = vec![0; n_viewers];
    let mut cpu_before = whep::sample(pid).map(|s| s.0).unwrap_or(0.0);
    while Instant::now() + Duration::from_secs(10) <= until {
        tokio::time::sleep(Duration::from_secs(10)).await;
        let t = started.elapsed().as_secs();
        let (cpu, rss) = whep::sample(pid).ok_or_else(|| anyhow!("the server exited"))?;
        let cores = (cpu - cpu_before) / 10.0;
        cpu_before = cpu;
        samples.push((t, rss, cores));
        let now: Vec<u64> = progress.iter().map(|g| g.load(Ordering::Relaxed)).collect();
        if t > a.warmup {
            stalled += now.iter().zip(&last).filter(|(n, l)| n <= l).count();
        }
        last = now;
        println!(
            "t={t:>4}s rss={:.1} MiB cpu={:.2} cores viewers={n_viewers}",
            rss as f64 / 1024.0,
            cores
        );
    }
    // Errors while everything still runs.
    let metrics = api(http, &token, "/metrics").await?;
    let errors: Vec<(String, u64)> = metrics
        .lines()
        .filter(|l| l.starts_with("rts_errors_total{"))
        .filter_map(|l| {
            let (k, v) = l.rsplit_once(' ')?;
            Some((k.to_owned(), v.parse().ok()?))
        })
        .filter(|(_, v)| *v > 0)
        .collect();
    let mut outcomes = Vec::new();
    while let Some(o) = viewers.join_next().await {
        outcomes.push(o?);
    }
    drop(publishers);
    // Graceful stop.
    let _ = Command::new("kill")
        .args(["-TERM", &pid.to_string()])
        .status();
    let stop = Instant::now();
    let status = loop {
        if let Some(s) = server.0.try_wait()? {
            break Some(s);
        }
        if stop.elapsed() > Duration::from_secs(10) {
            break None;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    let dropped: Vec<&Outcome> = outcomes
        .iter()
        .filter(|o| o.ended_early.is_some())
        .collect();
    let after: Vec<u64> = samples
        .iter()
        .filter(|(t, _, _)| *t > a.warmup)
        .map(|(_, rss, _)| *rss)
        .collect();
    let base = after.first().copied().unwrap_or(0);
    let (lo, hi) = (
        after.iter().min().copied().unwrap_or(0),
        after.iter().max().copied().unwrap_or(0),
    );
    let drift = |v: u64| (v as f64 - base as f64) / base.max(1) as f64 * 100.0;
    let received = |kind: &str| -> u64 {
        outcomes
            .iter()
            .filter(|o| o.kind == kind)
            .map(|o| o.received)
            .min()
            .unwrap_or(0)
    };
    let mean_cpu = samples.iter().map(|s| s.2).sum::<f64>() / samples.len().max(1) as f64;
    let report = serde_json::json!({
        "seconds": a.seconds,
        "warmup_s": a.warmup,
        "publishers": a.publishers,
        "viewers": {"rtmp": a.publishers * a.rtmp, "flv": a.publishers * a.flv, "whep": a.publishers * a.whep},
        "server_rss_mib": {"after_warmup": base as f64 / 1024.0, "min": lo as f64 / 1024.0, "max": hi as f64 / 1024.0},
        "rss_drift_percent": {"min": drift(lo), "max": drift(hi)},
        "server_cpu_cores_mean": (mean_cpu * 100.0).round() / 100.0,
        "least_received": {"rtmp_messages": received("rtmp"), "flv_tags": received("flv"), "whep_packets": received("whep")},
        "viewers_dropped": dropped.len(),
        "stalled_windows": stalled,
        "errors": errors,
        "server_exit": status.map(|s| s.to_string()),
    });
    println!("{report}");
    for o in &dropped {
        eprintln!(
            "dropped {} viewer: {}",
            o.kind,
            o.ended_early.as_deref().unwrap_or("")
        );
    }
    let mut failed = Vec::new();
    if after.is_empty() {
        failed.push("no sample after the warm-up".to_owned());
    }
    if drift(lo) < -10.0 || drift(hi) > 10.0 {
        failed.push(format!(
            "RSS moved {:.1}..{:.1} % after the warm-up",
            drift(lo),
            drift(hi)
        ));
    }
    if !dropped.is_empty() {
        failed.push(format!("{} viewers dropped", dropped.len()));
    }
    if stalled > 0 {
        failed.push(format!("{stalled} viewer windows without new media"));
    }
    if !errors.is_empty() {
        failed.push(format!("error counters: {errors:?}"));
    }
    if !status.is_some_and(|s| s.success()) {
        failed.push(format!("the server's exit on SIGTERM: {status:?}"));
    }
    if failed.is_empty() {
        println!("soak passed");
        Ok(())
    } else {
        bail!("soak failed: {}", failed.join("; "))
    }
}
