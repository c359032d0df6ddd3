//! A WHEP viewer for the load tools (`webrtc-load`, `rts-soak`): the
//! rts-webrtc client side (full ICE, DTLS client, SRTP, receiver reports
//! and NACKs) on a UDP socket of its own.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, anyhow, bail};
use rts_webrtc::{Certificate, Config, Event, MediaKind, Peer, Role};

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

/// What viewers received, counted as it arrives.
#[derive(Default)]
pub(crate) struct Counters {
    pub(crate) connected: AtomicU64,
    pub(crate) failed: AtomicU64,
    pub(crate) packets: AtomicU64,
    pub(crate) bytes: AtomicU64,
    pub(crate) video: AtomicU64,
    pub(crate) audio: AtomicU64,
}

/// Plays `url` until `until`; `Ok(None)` when it played to the end,
/// `Ok(Some(reason))` when the session ended before.
pub(crate) async fn play(
    url: &(SocketAddr, String),
    cert: Certificate,
    counters: &Counters,
    until: Instant,
) -> anyhow::Result<Option<&'static str>> {
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
    let mut ended = None;
    while Instant::now() < until {
        while let Some(t) = peer.poll_transmit() {
            let _ = socket.send_to(&t.contents, t.destination).await;
        }
        while let Some(ev) = peer.poll_event() {
            match ev {
                Event::Connected => {
                    connected = true;
                    counters.connected.fetch_add(1, Ordering::Relaxed);
                }
                Event::Disconnected { reason } => ended = Some(reason),
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
        if ended.is_some() {
            break;
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
    Ok(ended)
}

/// (CPU seconds, resident KiB) of a process, from `/proc`.
pub(crate) fn sample(pid: u32) -> Option<(f64, u64)> {
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
