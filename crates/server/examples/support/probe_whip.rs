//! rts-probe's WHIP publisher: rts-webrtc's client side (full ICE, DTLS
//! client, SRTP; it answers NACKs from its send history and PLIs with an
//! IDR) sending the stamped H.264 frames, packetized by rts-rtp, on a UDP
//! socket of its own. Video only.

use std::io::{ErrorKind, Read, Write};
use std::net::{SocketAddr, TcpStream, ToSocketAddrs, UdpSocket};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use rts_rtp::h264::{Config as PacketizerConfig, Packetizer};
use rts_webrtc::{Certificate, Config, Event, MediaKind, Peer, Role};

use super::{Args, Shared, VideoSource, random_token};

/// `http://host[:port]/path?q` -> (address, host header, path?q).
fn split_http_url(url: &str) -> anyhow::Result<(SocketAddr, String, String)> {
    let rest = url.strip_prefix("http://").context("not an http:// URL")?;
    let (authority, path) = rest.split_once('/').unwrap_or((rest, ""));
    let addr = if authority.contains(':') {
        authority.to_owned()
    } else {
        format!("{authority}:80")
    };
    let sock = addr
        .to_socket_addrs()?
        .next()
        .context("the host has no address")?;
    Ok((sock, authority.to_owned(), format!("/{path}")))
}

/// One HTTP/1.1 request; returns the status, the `Location` and the body.
fn request(
    addr: SocketAddr,
    host: &str,
    method: &str,
    path: &str,
    body: &str,
) -> anyhow::Result<(u16, Option<String>, String)> {
    let mut s = TcpStream::connect(addr).with_context(|| format!("connect to {addr}"))?;
    s.set_read_timeout(Some(Duration::from_secs(10)))?;
    write!(
        s,
        "{method} {path} HTTP/1.1\r\nHost: {host}\r\nContent-Type: application/sdp\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    )?;
    let mut out = String::new();
    s.read_to_string(&mut out)?;
    let (head, body) = out.split_once("\r\n\r\n").context("no HTTP response")?;
    let status = head
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0);
    let location = head.lines().find_map(|l| {
        let (k, v) = l.split_once(':')?;
        k.eq_ignore_ascii_case("location")
            .then(|| v.trim().to_owned())
    });
    Ok((status, location, body.to_owned()))
}

/// Reads and answers the server until `until`: datagrams in, timers,
/// datagrams out; PLIs make the next frame an IDR.
fn service(
    peer: &mut Peer,
    socket: &UdpSocket,
    buf: &mut [u8],
    until: Instant,
    video: &mut VideoSource,
) -> anyhow::Result<()> {
    loop {
        while let Some(t) = peer.poll_transmit() {
            let _ = socket.send_to(&t.contents, t.destination);
        }
        while let Some(ev) = peer.poll_event() {
            match ev {
                Event::Disconnected { reason } => bail!("WHIP session ended: {reason}"),
                Event::KeyframeRequested(_) => video.encoder.force_intra_frame(),
                _ => {}
            }
        }
        let now = Instant::now();
        if now >= until {
            return Ok(());
        }
        let wait = peer
            .poll_timeout()
            .map_or(until, |t| t.min(until))
            .saturating_duration_since(now)
            .max(Duration::from_micros(200));
        socket.set_read_timeout(Some(wait))?;
        match socket.recv_from(buf) {
            Ok((n, from)) => {
                let _ = peer.handle_receive(Instant::now(), from, &buf[..n]);
            }
            Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {}
            Err(e) => return Err(e).context("udp receive"),
        }
        let now = Instant::now();
        if peer.poll_timeout().is_some_and(|t| t <= now) {
            let _ = peer.handle_timeout(now);
        }
    }
}

/// Publishes the stamped frames to the WHIP endpoint `url` for the probe's
/// duration, then DELETEs the session.
pub(crate) fn publish(url: &str, args: &Args, shared: &Shared) -> anyhow::Result<()> {
    let (server, host, path) = split_http_url(url)?;
    let route = UdpSocket::bind(if server.is_ipv4() {
        "0.0.0.0:0"
    } else {
        "[::]:0"
    })?;
    route.connect(server)?;
    let socket = UdpSocket::bind(SocketAddr::new(route.local_addr()?.ip(), 0))?;
    let _ = socket2::SockRef::from(&socket).set_send_buffer_size(4 << 20);
    let local = socket.local_addr()?;
    let ssrc = 0x5052_4f42; // "PROB"
    let config = Config {
        local_addr: local,
        candidates: vec![local],
        certificate: Certificate::generate()?,
        ice_ufrag: random_token(8),
        ice_pwd: random_token(24),
        video_ssrc: ssrc,
        audio_ssrc: ssrc.wrapping_add(1),
        idle_timeout: Duration::from_secs(10),
        stats_interval: Duration::from_secs(1),
        tcp_candidates: Vec::new(),
    };
    // Publishing: the remote (the server) is the viewer.
    let (mut peer, offer) = Peer::offer(Instant::now(), Role::Viewer, &config)?;
    let (status, location, answer) = request(server, &host, "POST", &path, &offer)?;
    if status != 201 {
        bail!("WHIP POST: {status}: {}", answer.trim());
    }
    peer.accept_answer(Instant::now(), &answer)?;
    let mut buf = vec![0u8; 2048];
    let mut video = VideoSource::new(args)?;
    let connect_by = Instant::now() + Duration::from_secs(10);
    while !peer.is_connected() {
        if Instant::now() > connect_by {
            bail!("WHIP: ICE/DTLS did not complete within 10 s");
        }
        let step = Instant::now() + Duration::from_millis(5);
        service(&mut peer, &socket, &mut buf, step, &mut video)?;
    }
    eprintln!("rts-probe: publishing {url} (WHIP, video only, {local})");
    let mut packetizer = Packetizer::new(PacketizerConfig {
        ssrc,
        ..PacketizerConfig::default()
    })?;
    let start = Instant::now();
    let total = (args.duration.as_secs_f64() * f64::from(args.fps)).ceil() as u32;
    let mut packets = Vec::new();
    for n in 0..total {
        let due = start + Duration::from_secs(1) * n / args.fps;
        service(&mut peer, &socket, &mut buf, due, &mut video)?;
        let f = video.encode(n, args, shared)?;
        packets.clear();
        packetizer.packetize_nals(&f.nals, f.ts.wrapping_mul(90), &mut packets);
        let now = Instant::now();
        for p in &packets {
            peer.send_rtp(now, MediaKind::Video, p)?;
        }
        while let Some(t) = peer.poll_transmit() {
            let _ = socket.send_to(&t.contents, t.destination);
        }
        if shared.done.load(std::sync::atomic::Ordering::Relaxed) {
            break;
        }
    }
    peer.close();
    while let Some(t) = peer.poll_transmit() {
        let _ = socket.send_to(&t.contents, t.destination);
    }
    if let Some(loc) = location {
        let _ = request(server, &host, "DELETE", &loc, "");
    }
    Ok(())
}
